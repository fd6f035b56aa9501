/* test_metrics.c -- unit tests for metrics/: naming rules, updates from
 * several threads, bounded label sets, escaping, and the exposition text
 * read back by a strict parser
 *
 * test_threads renders and parses while four threads update and add
 * children; under ThreadSanitizer it also checks the lock-free paths:
 *   cmake -S . -B build-tsan -DCMAKE_C_FLAGS=-fsanitize=thread \
 *         -DCMAKE_EXE_LINKER_FLAGS=-fsanitize=thread
 *   cmake --build build-tsan --target test_metrics &&
 * build-tsan/tests/test_metrics
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kyc_bridge.h"
#include "metrics.h"
#include "util.h"

/* ---- a strict parser of the text format 0.0.4 ----------------------- */

typedef struct {
        char name[160];
        char labels[512]; /* as written between the braces, "" if none */
        double v;
} sample_t;

typedef struct {
        char name[160];
        char type[16];
        char help[600];
        size_t first, cnt; /* its samples */
} family_t;

typedef struct {
        sample_t *s;
        size_t scnt, scap;
        family_t f[64];
        size_t fcnt;
        char err[256];
} doc_t;

static void doc_free(doc_t *d)
{
        free(d->s);
        memset(d, 0, sizeof(*d));
}

static int doc_err(doc_t *d, const char *fmt, ...) KB_PRINTF(2, 3);

/* Notes why the document is refused (cut to fit); returns -1. */
static int doc_err(doc_t *d, const char *fmt, ...)
{
        va_list ap;

        va_start(ap, fmt);
        vsnprintf(d->err, sizeof(d->err), fmt, ap);
        va_end(ap);
        return -1;
}

#define FAIL(...) return doc_err(d, __VA_ARGS__)

static int is_name_char(char c, int first)
{
        return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' ||
               c == ':' || (!first && c >= '0' && c <= '9');
}

/* Reads a metric or label name at *p. */
static int parse_name(const char **p, char *out, size_t outsz)
{
        size_t n = 0;

        if (!is_name_char(**p, 1))
                return -1;
        while (is_name_char((*p)[n], 0)) {
                if (n + 1 >= outsz)
                        return -1;
                out[n] = (*p)[n];
                n++;
        }
        out[n] = '\0';
        *p += n;
        return 0;
}

/* Exactly the values the format allows: a float, +Inf, -Inf, NaN. */
static int parse_value(const char *s, double *v)
{
        char *end;

        if (!strcmp(s, "+Inf")) {
                *v = INFINITY;
                return 0;
        }
        if (!strcmp(s, "-Inf")) {
                *v = -INFINITY;
                return 0;
        }
        if (!strcmp(s, "NaN")) {
                *v = NAN;
                return 0;
        }
        if (!*s || strpbrk(s, "iInN ,"))
                return -1;
        *v = strtod(s, &end);
        return *end == '\0' ? 0 : -1;
}

/* Checks an escaped label value up to its closing quote; only \\ \" \n. */
static int scan_label_value(const char **p)
{
        const char *s = *p;

        for (;;) {
                if (*s == '\0' || *s == '\n')
                        return -1;
                if (*s == '"')
                        break;
                if (*s == '\\') {
                        if (s[1] != '\\' && s[1] != '"' && s[1] != 'n')
                                return -1;
                        s++;
                }
                s++;
        }
        *p = s + 1;
        return 0;
}

static const char *sample_family(const family_t *f, const char *name)
{
        size_t n = strlen(f->name);

        if (!strcmp(f->type, "histogram")) {
                if (strncmp(name, f->name, n) != 0)
                        return NULL;
                name += n;
                if (!strcmp(name, "_bucket") || !strcmp(name, "_sum") ||
                    !strcmp(name, "_count"))
                        return name;
                return NULL;
        }
        return !strcmp(name, f->name) ? "" : NULL;
}

static int parse_sample(doc_t *d, const char *line, family_t *fam)
{
        char lname[160], val[64];
        const char *p = line, *lab0;
        sample_t *s;
        size_t i;

        if (d->scnt == d->scap) {
                d->scap = d->scap ? d->scap * 2 : 64;
                d->s = realloc(d->s, d->scap * sizeof(*d->s));
                if (!d->s)
                        FAIL("oom");
        }
        s = &d->s[d->scnt];
        memset(s, 0, sizeof(*s));
        if (parse_name(&p, s->name, sizeof(s->name)) != 0)
                FAIL("bad sample name: %s", line);
        if (!fam || !sample_family(fam, s->name))
                FAIL("sample %s outside its family (TYPE first)", s->name);
        if (*p == '{') {
                lab0 = ++p;
                for (;;) {
                        if (parse_name(&p, lname, sizeof(lname)) != 0 ||
                            *p++ != '=' || *p++ != '"' ||
                            scan_label_value(&p) != 0)
                                FAIL("bad label set: %s", line);
                        if (*p == ',') {
                                p++;
                                continue;
                        }
                        if (*p != '}')
                                FAIL("bad label set end: %s", line);
                        break;
                }
                if ((size_t)(p - lab0) >= sizeof(s->labels))
                        FAIL("labels too long");
                memcpy(s->labels, lab0, (size_t)(p - lab0));
                p++;
        }
        if (*p++ != ' ')
                FAIL("no single space before the value: %s", line);
        if (strlen(p) >= sizeof(val) || strchr(p, ' '))
                FAIL("value with a timestamp or junk: %s", line);
        strcpy(val, p);
        if (parse_value(val, &s->v) != 0)
                FAIL("bad value \"%s\"", val);
        if (!strcmp(fam->type, "counter") && !(s->v >= 0))
                FAIL("counter %s is negative or NaN", s->name);
        for (i = fam->first; i < d->scnt; i++)
                if (!strcmp(d->s[i].name, s->name) &&
                    !strcmp(d->s[i].labels, s->labels))
                        FAIL("series %s{%s} twice", s->name, s->labels);
        d->scnt++;
        fam->cnt++;
        return 0;
}

/* Splits "a=\"x\",le=\"0.5\"" into the part without le and the le value. */
static int split_le(const char *labels, char *rest, size_t restsz, char *le,
                    size_t lesz)
{
        const char *p = strstr(labels, "le=\"");
        const char *q;

        if (!p || (p != labels && p[-1] != ','))
                return -1;
        q = strchr(p + 4, '"');
        if (!q || q[1] != '\0' || (size_t)(q - p - 4) >= lesz)
                return -1; /* le is the last label */
        memcpy(le, p + 4, (size_t)(q - p - 4));
        le[q - p - 4] = '\0';
        snprintf(rest, restsz, "%.*s", (int)(p == labels ? 0 : p - labels - 1),
                 labels);
        return 0;
}

/* Histogram rules: per label set, buckets with increasing le ending in
 * +Inf, cumulative counts, then _sum and _count == the +Inf bucket. */
static int check_histogram(doc_t *d, const family_t *f)
{
        char rest[512], le[64], prev_rest[512] = "";
        double prev_le = -INFINITY, prev_cnt = 0, inf_cnt = -1;
        size_t i;
        int in_buckets = 0, have_sum = 0;

        for (i = f->first; i < f->first + f->cnt; i++) {
                const sample_t *s = &d->s[i];
                const char *suf = s->name + strlen(f->name);
                double lev;

                if (!strcmp(suf, "_bucket")) {
                        if (split_le(s->labels, rest, sizeof(rest), le,
                                     sizeof(le)) != 0 ||
                            parse_value(le, &lev) != 0)
                                FAIL("%s: bucket without le last", f->name);
                        if (!in_buckets) {
                                in_buckets = 1;
                                have_sum = 0;
                                inf_cnt = -1;
                                prev_le = -INFINITY;
                                prev_cnt = 0;
                                snprintf(prev_rest, sizeof(prev_rest), "%s",
                                         rest);
                        } else if (strcmp(rest, prev_rest) != 0) {
                                FAIL("%s: buckets of %s do not end in +Inf",
                                     f->name, prev_rest);
                        }
                        if (!(lev > prev_le))
                                FAIL("%s: le not increasing", f->name);
                        if (s->v < prev_cnt)
                                FAIL("%s: buckets not cumulative", f->name);
                        prev_le = lev;
                        prev_cnt = s->v;
                        if (isinf(lev)) {
                                inf_cnt = s->v;
                                in_buckets = 0;
                        }
                        continue;
                }
                if (in_buckets || inf_cnt < 0)
                        FAIL("%s: %s before the +Inf bucket", f->name, suf);
                if (strcmp(s->labels, prev_rest) != 0)
                        FAIL("%s: %s of another label set", f->name, suf);
                if (!strcmp(suf, "_sum")) {
                        if (have_sum)
                                FAIL("%s: _sum twice", f->name);
                        have_sum = 1;
                } else {
                        if (!have_sum)
                                FAIL("%s: _count before _sum", f->name);
                        if (s->v != inf_cnt)
                                FAIL("%s: _count %g != +Inf bucket %g", f->name,
                                     s->v, inf_cnt);
                        inf_cnt = -1;
                }
        }
        if (in_buckets || inf_cnt >= 0)
                FAIL("%s: histogram series incomplete", f->name);
        return 0;
}

/* Samples of a counter/gauge family sorted by their label text (our
 * labels are in a fixed order, and byte order of the text matches the
 * order of the values when the label names are the same). */
static int check_sorted(doc_t *d, const family_t *f)
{
        size_t i;

        if (!strcmp(f->type, "histogram"))
                return 0;
        for (i = f->first + 1; i < f->first + f->cnt; i++)
                if (strcmp(d->s[i - 1].labels, d->s[i].labels) >= 0)
                        FAIL("%s: samples not sorted (%s, %s)", f->name,
                             d->s[i - 1].labels, d->s[i].labels);
        return 0;
}

static int parse_doc(doc_t *d, const char *text)
{
        char line[2048], name[160];
        family_t *fam = NULL;
        const char *p = text, *nl;
        size_t i, len;

        memset(d, 0, sizeof(*d));
        if (!*text)
                FAIL("empty");
        while (*p) {
                nl = strchr(p, '\n');
                if (!nl)
                        FAIL("last line without a newline");
                len = (size_t)(nl - p);
                if (len == 0 || len >= sizeof(line))
                        FAIL("empty or long line");
                memcpy(line, p, len);
                line[len] = '\0';
                p = nl + 1;
                if (!strncmp(line, "# HELP ", 7)) {
                        const char *q = line + 7, *h;

                        if (parse_name(&q, name, sizeof(name)) != 0 ||
                            *q != ' ')
                                FAIL("bad HELP: %s", line);
                        for (h = q + 1; *h; h++)
                                if (*h == '\\' && h[1] != '\\' && h[1] != 'n')
                                        FAIL("bad escape in HELP: %s", line);
                                else if (*h == '\\')
                                        h++;
                        for (i = 0; i < d->fcnt; i++)
                                if (!strcmp(d->f[i].name, name))
                                        FAIL("family %s twice", name);
                        if (d->fcnt > 0 &&
                            strcmp(d->f[d->fcnt - 1].name, name) >= 0)
                                FAIL("families not sorted at %s", name);
                        if (d->fcnt == KB_ARRAY_SIZE(d->f))
                                FAIL("too many families");
                        fam = &d->f[d->fcnt++];
                        memset(fam, 0, sizeof(*fam));
                        snprintf(fam->name, sizeof(fam->name), "%s", name);
                        snprintf(fam->help, sizeof(fam->help), "%s", q + 1);
                        fam->first = d->scnt;
                        continue;
                }
                if (!strncmp(line, "# TYPE ", 7)) {
                        const char *q = line + 7;

                        if (!fam || fam->type[0] || fam->cnt ||
                            parse_name(&q, name, sizeof(name)) != 0 ||
                            strcmp(name, fam->name) != 0 || *q != ' ')
                                FAIL("TYPE not right after its HELP: %s", line);
                        q++;
                        if (strcmp(q, "counter") && strcmp(q, "gauge") &&
                            strcmp(q, "histogram"))
                                FAIL("bad type: %s", line);
                        snprintf(fam->type, sizeof(fam->type), "%s", q);
                        continue;
                }
                if (line[0] == '#')
                        FAIL("unexpected comment: %s", line);
                if (!fam || !fam->type[0])
                        FAIL("sample before TYPE: %s", line);
                if (parse_sample(d, line, fam) != 0)
                        return -1;
        }
        for (i = 0; i < d->fcnt; i++) {
                if (!strcmp(d->f[i].type, "histogram") &&
                    check_histogram(d, &d->f[i]) != 0)
                        return -1;
                if (check_sorted(d, &d->f[i]) != 0)
                        return -1;
        }
        return 0;
}

/* The value of series @p name{@p labels}; asserts it is there once. */
static double doc_get(const doc_t *d, const char *name, const char *labels)
{
        size_t i;

        for (i = 0; i < d->scnt; i++)
                if (!strcmp(d->s[i].name, name) &&
                    !strcmp(d->s[i].labels, labels))
                        return d->s[i].v;
        fail_msg("no series %s{%s}", name, labels);
        return NAN;
}

static int doc_has(const doc_t *d, const char *name, const char *labels)
{
        size_t i;

        for (i = 0; i < d->scnt; i++)
                if (!strcmp(d->s[i].name, name) &&
                    !strcmp(d->s[i].labels, labels))
                        return 1;
        return 0;
}

/* Renders @p reg and parses it strictly (fails the test otherwise). */
static void render_parse(kb_metrics_t *reg, doc_t *d, kb_buf_t *text)
{
        kb_buf_reset(text);
        assert_int_equal(kb_metrics_render(reg, text), KB_OK);
        if (parse_doc(d, text->data) != 0)
                fail_msg("strict parse: %s\n---\n%s", d->err, text->data);
}

/* ---- the parser itself must refuse bad input ------------------------ */

static void test_parser_refuses(void **state)
{
        static const char *const bad[] = {
                /* no TYPE */
                "# HELP kyc_bridge_a_total x\nkyc_bridge_a_total 1\n",
                /* two TYPE lines */
                "# HELP kyc_bridge_a_total x\n# TYPE kyc_bridge_a_total "
                "counter\n# TYPE kyc_bridge_a_total counter\n",
                /* no final newline */
                "# HELP kyc_bridge_a x\n# TYPE kyc_bridge_a gauge\n"
                "kyc_bridge_a 1",
                /* bad escape */
                "# HELP kyc_bridge_a x\n# TYPE kyc_bridge_a gauge\n"
                "kyc_bridge_a{l=\"\\t\"} 1\n",
                /* lowercase inf */
                "# HELP kyc_bridge_a x\n# TYPE kyc_bridge_a gauge\n"
                "kyc_bridge_a inf\n",
                /* histogram not cumulative */
                "# HELP kyc_bridge_h x\n# TYPE kyc_bridge_h histogram\n"
                "kyc_bridge_h_bucket{le=\"1\"} 2\n"
                "kyc_bridge_h_bucket{le=\"+Inf\"} 1\n"
                "kyc_bridge_h_sum 1\nkyc_bridge_h_count 1\n",
                /* histogram count != +Inf */
                "# HELP kyc_bridge_h x\n# TYPE kyc_bridge_h histogram\n"
                "kyc_bridge_h_bucket{le=\"1\"} 1\n"
                "kyc_bridge_h_bucket{le=\"+Inf\"} 2\n"
                "kyc_bridge_h_sum 1\nkyc_bridge_h_count 3\n",
                /* histogram without +Inf */
                "# HELP kyc_bridge_h x\n# TYPE kyc_bridge_h histogram\n"
                "kyc_bridge_h_bucket{le=\"1\"} 1\n"
                "kyc_bridge_h_sum 1\nkyc_bridge_h_count 1\n",
                /* unsorted families */
                "# HELP kyc_bridge_b x\n# TYPE kyc_bridge_b gauge\n"
                "kyc_bridge_b 1\n# HELP kyc_bridge_a x\n"
                "# TYPE kyc_bridge_a gauge\nkyc_bridge_a 1\n",
                /* duplicate series */
                "# HELP kyc_bridge_a x\n# TYPE kyc_bridge_a gauge\n"
                "kyc_bridge_a{l=\"x\"} 1\nkyc_bridge_a{l=\"x\"} 2\n",
        };
        doc_t d;
        size_t i;

        for (i = 0; i < KB_ARRAY_SIZE(bad); i++) {
                if (parse_doc(&d, bad[i]) == 0)
                        fail_msg("parser accepted bad input %zu", i);
                doc_free(&d);
        }
        assert_int_equal(
            parse_doc(&d, "# HELP kyc_bridge_h x \\\\ \\n y\n"
                          "# TYPE kyc_bridge_h histogram\n"
                          "kyc_bridge_h_bucket{a=\"\\\"\",le=\"1\"} 1\n"
                          "kyc_bridge_h_bucket{a=\"\\\"\",le=\"+Inf\"} 1\n"
                          "kyc_bridge_h_sum{a=\"\\\"\"} 0.5\n"
                          "kyc_bridge_h_count{a=\"\\\"\"} 1\n"),
            0);
        doc_free(&d);
}

/* ---- naming rules --------------------------------------------------- */

static void test_naming_refusals(void **state)
{
        static const char *const one[] = { "endpoint", NULL };
        static const char *const le[] = { "le", NULL };
        static const char *const dunder[] = { "__x", NULL };
        static const char *const upper[] = { "Endpoint", NULL };
        static const char *const twice[] = { "a", "a", NULL };
        static const char *const nine[] = { "a", "b", "c", "d", "e",
                                            "f", "g", "h", "i", NULL };
        static const double b_ok[] = { 0.1, 1 };
        static const double b_down[] = { 1, 0.5 };
        static const double b_inf[] = { 1, INFINITY };
        static const struct {
                kb_metric_desc_t d;
                const char *why; /* part of the message */
        } bad[] = {
                { { .name = "records_total",
                    .help = "h",
                    .type = KB_METRIC_COUNTER },
                  "start with" },
                { { .name = "kyc_bridge_",
                    .help = "h",
                    .type = KB_METRIC_GAUGE },
                  "start with" },
                { { .name = "kyc_bridge_kyc_bridge_records_total",
                    .help = "h",
                    .type = KB_METRIC_COUNTER },
                  "one" },
                { { .name = "kyc_bridge_Records_total",
                    .help = "h",
                    .type = KB_METRIC_COUNTER },
                  "snake_case" },
                { { .name = "kyc_bridge_records__total",
                    .help = "h",
                    .type = KB_METRIC_COUNTER },
                  "snake_case" },
                { { .name = "kyc_bridge_records-x_total",
                    .help = "h",
                    .type = KB_METRIC_COUNTER },
                  "snake_case" },
                { { .name = "kyc_bridge_records",
                    .help = "h",
                    .type = KB_METRIC_COUNTER },
                  "_total" },
                { { .name = "kyc_bridge_inflight_total",
                    .help = "h",
                    .type = KB_METRIC_GAUGE },
                  "only counter" },
                { { .name = "kyc_bridge_latency_ms",
                    .help = "h",
                    .type = KB_METRIC_HISTOGRAM,
                    .buckets = b_ok,
                    .bucket_cnt = 2 },
                  "base unit" },
                { { .name = "kyc_bridge_wait_milliseconds_total",
                    .help = "h",
                    .type = KB_METRIC_COUNTER },
                  "base unit" },
                { { .name = "kyc_bridge_body_kb",
                    .help = "h",
                    .type = KB_METRIC_GAUGE },
                  "_bytes" },
                { { .name = "kyc_bridge_cpu_percent",
                    .help = "h",
                    .type = KB_METRIC_GAUGE },
                  "_ratio" },
                { { .name = "kyc_bridge_queue_count",
                    .help = "h",
                    .type = KB_METRIC_GAUGE },
                  "_count" },
                { { .name = "kyc_bridge_lat_seconds_bucket",
                    .help = "h",
                    .type = KB_METRIC_GAUGE },
                  "_bucket" },
                { { .name = "kyc_bridge_x",
                    .help = "",
                    .type = KB_METRIC_GAUGE },
                  "help" },
                { { .name = "kyc_bridge_x",
                    .help = "two\nlines",
                    .type = KB_METRIC_GAUGE },
                  "help" },
                { { .name = "kyc_bridge_x",
                    .help = "h",
                    .type = (kb_metric_type_t)9 },
                  "type" },
                { { .name = "kyc_bridge_x",
                    .help = "h",
                    .type = KB_METRIC_GAUGE,
                    .labels = one },
                  "max_children" },
                { { .name = "kyc_bridge_x",
                    .help = "h",
                    .type = KB_METRIC_GAUGE,
                    .labels = one,
                    .max_children = KB_METRICS_CHILDREN_MAX + 1 },
                  "max_children" },
                { { .name = "kyc_bridge_x_seconds",
                    .help = "h",
                    .type = KB_METRIC_HISTOGRAM,
                    .labels = le,
                    .max_children = 4,
                    .buckets = b_ok,
                    .bucket_cnt = 2 },
                  "reserved" },
                { { .name = "kyc_bridge_x",
                    .help = "h",
                    .type = KB_METRIC_GAUGE,
                    .labels = dunder,
                    .max_children = 4 },
                  "snake_case" },
                { { .name = "kyc_bridge_x",
                    .help = "h",
                    .type = KB_METRIC_GAUGE,
                    .labels = upper,
                    .max_children = 4 },
                  "snake_case" },
                { { .name = "kyc_bridge_x",
                    .help = "h",
                    .type = KB_METRIC_GAUGE,
                    .labels = twice,
                    .max_children = 4 },
                  "twice" },
                { { .name = "kyc_bridge_x",
                    .help = "h",
                    .type = KB_METRIC_GAUGE,
                    .labels = nine,
                    .max_children = 4 },
                  "labels" },
                { { .name = "kyc_bridge_x_seconds",
                    .help = "h",
                    .type = KB_METRIC_HISTOGRAM },
                  "bucket" },
                { { .name = "kyc_bridge_x_seconds",
                    .help = "h",
                    .type = KB_METRIC_HISTOGRAM,
                    .buckets = b_down,
                    .bucket_cnt = 2 },
                  "increasing" },
                { { .name = "kyc_bridge_x_seconds",
                    .help = "h",
                    .type = KB_METRIC_HISTOGRAM,
                    .buckets = b_inf,
                    .bucket_cnt = 2 },
                  "finite" },
                { { .name = "kyc_bridge_x",
                    .help = "h",
                    .type = KB_METRIC_GAUGE,
                    .buckets = b_ok,
                    .bucket_cnt = 2 },
                  "only histograms" },
        };
        kb_metric_desc_t ok = { .name = "kyc_bridge_records_total",
                                .help = "Records \"done\" \\ by outcome.",
                                .type = KB_METRIC_COUNTER,
                                .labels = one,
                                .max_children = 8 };
        kb_metric_family_t *fam = (kb_metric_family_t *)1;
        char errstr[256];
        kb_metrics_t *reg;
        size_t i;

        reg = kb_metrics_new(errstr, sizeof(errstr));
        assert_non_null(reg);
        for (i = 0; i < KB_ARRAY_SIZE(bad); i++) {
                errstr[0] = '\0';
                if (kb_metrics_register(reg, &bad[i].d, &fam, errstr,
                                        sizeof(errstr)) != KB_ERR_INVALID_ARG)
                        fail_msg("bad metric %zu (%s) accepted", i,
                                 bad[i].d.name);
                assert_null(fam);
                if (!strstr(errstr, bad[i].why))
                        fail_msg("metric %zu: message \"%s\" lacks \"%s\"", i,
                                 errstr, bad[i].why);
        }
        assert_int_equal(
            kb_metrics_register(reg, &ok, &fam, errstr, sizeof(errstr)), KB_OK);
        assert_non_null(fam);
        assert_int_equal(
            kb_metrics_register(reg, &ok, &fam, errstr, sizeof(errstr)),
            KB_ERR_EXISTS);
        assert_non_null(strstr(errstr, "twice"));
        /* The registry's own name and the two helpers' names are taken. */
        assert_int_equal(
            kb_metrics_add_build_info(reg, "1.2.3", errstr, sizeof(errstr)),
            KB_OK);
        assert_int_equal(
            kb_metrics_add_build_info(reg, "1.2.3", errstr, sizeof(errstr)),
            KB_ERR_EXISTS);
        assert_int_equal(
            kb_metrics_add_process_start_time(reg, 0, errstr, sizeof(errstr)),
            KB_OK);
        assert_int_equal(
            kb_metrics_add_process_start_time(reg, 0, errstr, sizeof(errstr)),
            KB_ERR_EXISTS);
        /* ... and process_start_time_seconds is for the helper only. */
        ok.name = "process_start_time_seconds";
        ok.type = KB_METRIC_GAUGE;
        ok.labels = NULL;
        assert_int_equal(
            kb_metrics_register(reg, &ok, &fam, errstr, sizeof(errstr)),
            KB_ERR_INVALID_ARG);
        assert_int_equal(kb_metrics_add_build_info(reg, "bad\nversion", errstr,
                                                   sizeof(errstr)),
                         KB_ERR_INVALID_ARG);
        kb_metrics_destroy(reg);
}

/* ---- numbers and escaping ------------------------------------------- */

static void test_fmt_double(void **state)
{
        static const struct {
                double v;
                const char *s;
        } cases[] = {
                { 0, "0" },
                { 1, "1" },
                { -3, "-3" },
                { 42, "42" },
                { 0.1, "0.1" },
                { 0.005, "0.005" },
                { 2.5, "2.5" },
                { 1e-9, "1e-09" },
                { 123456789012345.0, "123456789012345" },
                { 1e15, "1e+15" },
                { 1.0 / 3.0, "0.3333333333333333" },
                { 0.1 + 0.2, "0.30000000000000004" },
                { 1.7976931348623157e308, "1.7976931348623157e+308" },
        };
        char buf[KB_METRICS_DOUBLE_BYTES];
        size_t i;

        for (i = 0; i < KB_ARRAY_SIZE(cases); i++) {
                kb_metrics_fmt_double(cases[i].v, buf);
                assert_string_equal(buf, cases[i].s);
                assert_true(strtod(buf, NULL) == cases[i].v);
        }
        kb_metrics_fmt_double(INFINITY, buf);
        assert_string_equal(buf, "+Inf");
        kb_metrics_fmt_double(-INFINITY, buf);
        assert_string_equal(buf, "-Inf");
        kb_metrics_fmt_double(NAN, buf);
        assert_string_equal(buf, "NaN");
}

static void test_escape(void **state)
{
        kb_buf_t b = KB_BUF_INIT;

        assert_int_equal(kb_metrics_escape(&b, "a\\b\"c\nd", 8, 1), 0);
        assert_string_equal(b.data, "a\\\\b\\\"c\\nd");
        kb_buf_reset(&b);
        assert_int_equal(kb_metrics_escape(&b, "a\\b\"c\nd", 8, 0), 0);
        assert_string_equal(b.data, "a\\\\b\"c\\nd");
        kb_buf_reset(&b);
        assert_int_equal(kb_metrics_escape(&b, "", 0, 1), 0);
        assert_string_equal(b.data, "");
        kb_buf_free(&b, 0);
}

/* Label values are escaped in the output; values that are not printable
 * UTF-8 (or too long) never reach it: they count under "other". */
static void test_label_values(void **state)
{
        static const char *const labels[] = { "rule", "status", NULL };
        kb_metric_desc_t desc = { .name = "kyc_bridge_rule_requests_total",
                                  .help = "Share requests by rule \\ status.",
                                  .type = KB_METRIC_COUNTER,
                                  .labels = labels,
                                  .max_children = 16 };
        char long_value[KB_METRICS_LABEL_VALUE_MAX + 2];
        kb_metric_family_t *fam;
        kb_buf_t text = KB_BUF_INIT;
        kb_metrics_t *reg;
        kb_metric_t *m, *other;
        doc_t d;

        reg = kb_metrics_new(NULL, 0);
        assert_non_null(reg);
        assert_int_equal(kb_metrics_register(reg, &desc, &fam, NULL, 0), KB_OK);
        m = kb_metric_child(fam, "a\\b\"c", "200");
        assert_non_null(m);
        assert_ptr_equal(kb_metric_child(fam, "a\\b\"c", "200"), m);
        kb_metric_inc(m);
        kb_metric_add(kb_metric_child(fam, "caf\xc3\xa9", "500"), 2);
        assert_int_equal(kb_metric_family_dropped(fam), 0);

        /* Refused values: newline, control, broken UTF-8, C1, too long. */
        other = kb_metric_child(fam, "x\ny", "200");
        assert_non_null(other);
        assert_ptr_equal(kb_metric_child(fam, "x\x01", "200"), other);
        assert_ptr_equal(kb_metric_child(fam, "x", "\xc3("), other);
        assert_ptr_equal(kb_metric_child(fam, "\xc2\x85", "1"), other);
        memset(long_value, 'v', sizeof(long_value) - 1);
        long_value[sizeof(long_value) - 1] = '\0';
        assert_ptr_equal(kb_metric_child(fam, long_value, "1"), other);
        long_value[KB_METRICS_LABEL_VALUE_MAX] = '\0'; /* at the limit */
        assert_ptr_not_equal(kb_metric_child(fam, long_value, "1"), other);
        assert_int_equal(kb_metric_family_dropped(fam), 5);
        kb_metric_add(other, 5);
        /* Wrong arity is a programming error: NULL, and updates no-ops. */
        assert_null(kb_metric_child(fam, "only one"));
        kb_metric_inc(kb_metric_child(fam, "only one"));
        assert_null(kb_metric_child0(fam));

        render_parse(reg, &d, &text);
        assert_true(doc_get(&d, "kyc_bridge_rule_requests_total",
                            "rule=\"a\\\\b\\\"c\",status=\"200\"") == 1);
        assert_true(doc_get(&d, "kyc_bridge_rule_requests_total",
                            "rule=\"caf\xc3\xa9\",status=\"500\"") == 2);
        assert_true(doc_get(&d, "kyc_bridge_rule_requests_total",
                            "rule=\"other\",status=\"other\"") == 5);
        assert_true(doc_get(&d, "kyc_bridge_metrics_label_sets_dropped_total",
                            "family=\"kyc_bridge_rule_requests_total\"") == 5);
        assert_non_null(strstr(text.data,
                               "# HELP kyc_bridge_rule_requests_total Share "
                               "requests by rule \\\\ status.\n"));
        assert_null(strstr(text.data, "x\ny"));
        doc_free(&d);
        kb_buf_free(&text, 0);
        kb_metrics_destroy(reg);
}

/* ---- bounded label sets --------------------------------------------- */

static void test_overflow_child(void **state)
{
        static const char *const labels[] = { "endpoint", NULL };
        static const double b[] = { 0.1, 1 };
        kb_metric_desc_t desc = { .name = "kyc_bridge_vendor_request_seconds",
                                  .help = "Vendor call latency.",
                                  .type = KB_METRIC_HISTOGRAM,
                                  .labels = labels,
                                  .max_children = 3,
                                  .buckets = b,
                                  .bucket_cnt = 2 };
        const char *names[] = { "a", "b", "c", "d", "e" };
        kb_metric_t *kids[5];
        kb_metric_family_t *fam;
        kb_buf_t text = KB_BUF_INIT;
        kb_metrics_t *reg;
        doc_t d;
        size_t i;

        reg = kb_metrics_new(NULL, 0);
        assert_non_null(reg);
        assert_int_equal(kb_metrics_register(reg, &desc, &fam, NULL, 0), KB_OK);
        for (i = 0; i < 5; i++) {
                kids[i] = kb_metric_child(fam, names[i]);
                assert_non_null(kids[i]);
                kb_metric_observe(kids[i], 0.5);
        }
        assert_ptr_not_equal(kids[0], kids[1]);
        assert_ptr_not_equal(kids[1], kids[2]);
        assert_ptr_equal(kids[3], kids[4]); /* both the overflow child */
        assert_ptr_not_equal(kids[2], kids[3]);
        assert_int_equal(kb_metric_family_dropped(fam), 2);
        /* Known tuples are still found once the family is full. */
        assert_ptr_equal(kb_metric_child(fam, "b"), kids[1]);
        /* An explicit "other" is the overflow child, not a new one. */
        assert_ptr_equal(kb_metric_child(fam, "other"), kids[3]);
        assert_int_equal(kb_metric_family_dropped(fam), 2);
        assert_int_equal(kb_metric_hist_count(kids[3]), 2);

        render_parse(reg, &d, &text);
        assert_true(doc_get(&d, "kyc_bridge_vendor_request_seconds_count",
                            "endpoint=\"other\"") == 2);
        assert_true(doc_get(&d, "kyc_bridge_vendor_request_seconds_bucket",
                            "endpoint=\"other\",le=\"0.1\"") == 0);
        assert_true(doc_get(&d, "kyc_bridge_vendor_request_seconds_bucket",
                            "endpoint=\"other\",le=\"1\"") == 2);
        assert_false(doc_has(&d, "kyc_bridge_vendor_request_seconds_count",
                             "endpoint=\"d\""));
        assert_true(doc_get(&d, "kyc_bridge_metrics_label_sets_dropped_total",
                            "family=\"kyc_bridge_vendor_request_seconds\"") ==
                    2);
        doc_free(&d);
        kb_buf_free(&text, 0);
        kb_metrics_destroy(reg);
}

/* ---- several threads ------------------------------------------------ */

#define THREADS 4
#define ROUNDS  100000

typedef struct {
        kb_metrics_t *reg;
        kb_metric_family_t *counter, *gauge, *hist;
        kb_metric_t *inflight;
        int id;
        atomic_int *stop;
        pthread_barrier_t *go;
        int renders;
        char err[256];
} worker_t;

static void *worker(void *arg)
{
        static const char *const endpoints[] = { "mint", "import", "status" };
        worker_t *w = arg;
        kb_metric_t *c[3], *h;
        char own[16];
        int i;

        /* Every thread looks the same tuples up: one child each. */
        for (i = 0; i < 3; i++)
                c[i] = kb_metric_child(w->counter, endpoints[i], "200");
        h = kb_metric_child(w->hist, "mint");
        snprintf(own, sizeof(own), "t%d", w->id);
        pthread_barrier_wait(w->go); /* all at once: contention */
        for (i = 0; i < ROUNDS; i++) {
                kb_metric_inc(c[i % 3]);
                kb_metric_add(c[0], 2);
                kb_metric_add_f(c[1], 0.5);
                kb_metric_inc(w->inflight);
                kb_metric_observe(h, (double)(i % 4)); /* 0, 1, 2, 3 */
                kb_metric_dec(w->inflight);
                if (i % 5000 == 0) {
                        /* New children while the others update/render. */
                        kb_metric_add(kb_metric_child(w->counter, own, "500"),
                                      1);
                        kb_metric_set(kb_metric_child(w->gauge, own),
                                      (double)i);
                }
        }
        return NULL;
}

static void *renderer(void *arg)
{
        kb_buf_t text = KB_BUF_INIT;
        worker_t *w = arg;
        doc_t d;

        while (!atomic_load(w->stop)) {
                kb_buf_reset(&text);
                if (kb_metrics_render(w->reg, &text) != KB_OK) {
                        snprintf(w->err, sizeof(w->err), "render failed");
                        break;
                }
                if (parse_doc(&d, text.data) != 0) {
                        snprintf(w->err, sizeof(w->err), "%s", d.err);
                        doc_free(&d);
                        break;
                }
                doc_free(&d);
                w->renders++;
        }
        kb_buf_free(&text, 0);
        return NULL;
}

static void test_threads(void **state)
{
        static const char *const cl[] = { "endpoint", "status", NULL };
        static const char *const gl[] = { "thread", NULL };
        static const char *const hl[] = { "endpoint", NULL };
        static const double b[] = { 0.5, 1.5, 2.5 };
        kb_metric_desc_t cd = { .name = "kyc_bridge_vendor_requests_total",
                                .help = "Vendor calls.",
                                .type = KB_METRIC_COUNTER,
                                .labels = cl,
                                .max_children = 16 };
        kb_metric_desc_t gd = { .name = "kyc_bridge_thread_round",
                                .help = "Last round.",
                                .type = KB_METRIC_GAUGE,
                                .labels = gl,
                                .max_children = 16 };
        kb_metric_desc_t id = { .name = "kyc_bridge_vendor_in_flight",
                                .help = "Calls in flight.",
                                .type = KB_METRIC_GAUGE };
        kb_metric_desc_t hd = { .name = "kyc_bridge_vendor_latency_seconds",
                                .help = "Latency.",
                                .type = KB_METRIC_HISTOGRAM,
                                .labels = hl,
                                .max_children = 4,
                                .buckets = b,
                                .bucket_cnt = 3 };
        worker_t w[THREADS + 1];
        pthread_t t[THREADS + 1];
        kb_metric_family_t *inflight;
        kb_buf_t text = KB_BUF_INIT;
        pthread_barrier_t go;
        atomic_int stop = 0;
        kb_metrics_t *reg;
        doc_t d;
        int i;

        reg = kb_metrics_new(NULL, 0);
        assert_non_null(reg);
        memset(w, 0, sizeof(w));
        assert_int_equal(kb_metrics_register(reg, &cd, &w[0].counter, NULL, 0),
                         KB_OK);
        assert_int_equal(kb_metrics_register(reg, &gd, &w[0].gauge, NULL, 0),
                         KB_OK);
        assert_int_equal(kb_metrics_register(reg, &id, &inflight, NULL, 0),
                         KB_OK);
        assert_int_equal(kb_metrics_register(reg, &hd, &w[0].hist, NULL, 0),
                         KB_OK);
        for (i = 0; i <= THREADS; i++) {
                w[i] = w[0];
                w[i].reg = reg;
                w[i].inflight = kb_metric_child0(inflight);
                w[i].id = i;
                w[i].stop = &stop;
                w[i].go = &go;
        }
        assert_int_equal(pthread_barrier_init(&go, NULL, THREADS), 0);
        assert_int_equal(
            pthread_create(&t[THREADS], NULL, renderer, &w[THREADS]), 0);
        for (i = 0; i < THREADS; i++)
                assert_int_equal(pthread_create(&t[i], NULL, worker, &w[i]), 0);
        for (i = 0; i < THREADS; i++)
                pthread_join(t[i], NULL);
        atomic_store(&stop, 1);
        pthread_join(t[THREADS], NULL);
        pthread_barrier_destroy(&go);
        if (w[THREADS].err[0])
                fail_msg("render during updates: %s", w[THREADS].err);
        assert_true(w[THREADS].renders > 0);

        render_parse(reg, &d, &text);
        /* mint: ROUNDS/3 rounded up incs + 2 per round, per thread */
        assert_true(doc_get(&d, "kyc_bridge_vendor_requests_total",
                            "endpoint=\"mint\",status=\"200\"") ==
                    (double)THREADS * ((ROUNDS + 2) / 3 + 2 * ROUNDS));
        assert_true(doc_get(&d, "kyc_bridge_vendor_requests_total",
                            "endpoint=\"import\",status=\"200\"") ==
                    (double)THREADS * ((ROUNDS + 1) / 3 + 0.5 * ROUNDS));
        assert_true(doc_get(&d, "kyc_bridge_vendor_requests_total",
                            "endpoint=\"status\",status=\"200\"") ==
                    (double)THREADS * (ROUNDS / 3));
        assert_true(doc_get(&d, "kyc_bridge_vendor_requests_total",
                            "endpoint=\"t0\",status=\"500\"") == ROUNDS / 5000);
        assert_true(doc_get(&d, "kyc_bridge_thread_round", "thread=\"t3\"") ==
                    ROUNDS - 5000);
        assert_true(doc_get(&d, "kyc_bridge_vendor_in_flight", "") == 0);
        assert_true(doc_get(&d, "kyc_bridge_vendor_latency_seconds_count",
                            "endpoint=\"mint\"") == THREADS * ROUNDS);
        assert_true(doc_get(&d, "kyc_bridge_vendor_latency_seconds_bucket",
                            "endpoint=\"mint\",le=\"0.5\"") ==
                    THREADS * ROUNDS / 4);
        assert_true(doc_get(&d, "kyc_bridge_vendor_latency_seconds_bucket",
                            "endpoint=\"mint\",le=\"2.5\"") ==
                    THREADS * ROUNDS * 3 / 4);
        assert_true(doc_get(&d, "kyc_bridge_vendor_latency_seconds_sum",
                            "endpoint=\"mint\"") ==
                    (double)THREADS * (ROUNDS / 4) * (0 + 1 + 2 + 3));
        assert_int_equal(kb_metric_family_dropped(w[0].counter), 0);
        doc_free(&d);
        kb_buf_free(&text, 0);
        kb_metrics_destroy(reg);
}

/* ---- collectors and the whole text ---------------------------------- */

static void lag_collect(void *opaque, kb_metric_emit_t *emit)
{
        int *calls = opaque;

        (*calls)++;
        /* Out of order, one duplicate, one invalid, one past the bound. */
        assert_int_equal(kb_metric_emit(emit, 7, "shares", "2"), KB_OK);
        assert_int_equal(kb_metric_emit(emit, 5, "shares", "10"), KB_OK);
        assert_int_equal(kb_metric_emit(emit, 9, "shares", "2"), KB_OK);
        assert_int_equal(kb_metric_emit(emit, 1, "envelopes", "0"), KB_OK);
        assert_int_equal(kb_metric_emit(emit, 1, "bad\n", "0"),
                         KB_ERR_INVALID_ARG);
        assert_int_equal(kb_metric_emit(emit, 3, "zz", "0"), KB_OK);
        assert_int_equal(kb_metric_emitv(emit, NULL, 0, 1), KB_ERR_INVALID_ARG);
}

static void timeouts_collect(void *opaque, kb_metric_emit_t *emit)
{
        assert_int_equal(kb_metric_emitv(emit, NULL, 0, -1),
                         KB_ERR_INVALID_ARG);
        assert_int_equal(kb_metric_emitv(emit, NULL, 0, 12), KB_OK);
}

static void test_collector(void **state)
{
        static const char *const ll[] = { "topic", "partition", NULL };
        int calls = 0;
        kb_metric_desc_t lag = { .name = "kyc_bridge_consumer_lag_messages",
                                 .help = "Consumer lag.",
                                 .type = KB_METRIC_GAUGE,
                                 .labels = ll,
                                 .max_children = 3,
                                 .collect = lag_collect,
                                 .opaque = &calls };
        kb_metric_desc_t tmo = { .name = "kyc_bridge_broker_timeouts_total",
                                 .help = "Request timeouts.",
                                 .type = KB_METRIC_COUNTER,
                                 .collect = timeouts_collect };
        kb_metric_family_t *fam, *tfam;
        kb_buf_t text = KB_BUF_INIT;
        kb_metrics_t *reg;
        doc_t d;

        reg = kb_metrics_new(NULL, 0);
        assert_non_null(reg);
        assert_int_equal(kb_metrics_register(reg, &lag, &fam, NULL, 0), KB_OK);
        assert_int_equal(kb_metrics_register(reg, &tmo, &tfam, NULL, 0), KB_OK);
        assert_null(kb_metric_child(fam, "a", "b"));
        assert_null(kb_metric_child0(tfam));
        render_parse(reg, &d, &text);
        assert_int_equal(calls, 1);
        /* Sorted by values bytewise: "10" < "2"; the first "2" counts;
         * "zz" sorts last and is past the bound of 3. */
        assert_non_null(strstr(
            text.data, "kyc_bridge_consumer_lag_messages{topic=\"envelopes\","
                       "partition=\"0\"} 1\n"
                       "kyc_bridge_consumer_lag_messages{topic=\"shares\","
                       "partition=\"10\"} 5\n"
                       "kyc_bridge_consumer_lag_messages{topic=\"shares\","
                       "partition=\"2\"} 7\n# HELP "));
        assert_false(doc_has(&d, "kyc_bridge_consumer_lag_messages",
                             "topic=\"zz\",partition=\"0\""));
        /* invalid + past the bound */
        assert_int_equal(kb_metric_family_dropped(fam), 2);
        assert_true(doc_get(&d, "kyc_bridge_broker_timeouts_total", "") == 12);
        doc_free(&d);
        kb_buf_free(&text, 0);
        kb_metrics_destroy(reg);
}

/* The whole exposition text of a small registry, byte for byte. */
static void test_render_exact(void **state)
{
        static const char *const rl[] = { "daemon", "outcome", NULL };
        static const double b[] = { 0.25, 1 };
        kb_metric_desc_t rec = { .name = "kyc_bridge_records_total",
                                 .help = "Records by daemon and outcome.",
                                 .type = KB_METRIC_COUNTER,
                                 .labels = rl,
                                 .max_children = 8 };
        kb_metric_desc_t lat = { .name = "kyc_bridge_commit_seconds",
                                 .help = "Transaction commit latency.",
                                 .type = KB_METRIC_HISTOGRAM,
                                 .buckets = b,
                                 .bucket_cnt = 2 };
        kb_metric_desc_t wait = { .name = "kyc_bridge_retry_after_wait_"
                                          "seconds_total",
                                  .help = "Time spent waiting on "
                                          "Retry-After.",
                                  .type = KB_METRIC_COUNTER };
        static const char expect[] =
            "# HELP kyc_bridge_build_info Always 1; the version label is "
            "the kyc-bridge version running.\n"
            "# TYPE kyc_bridge_build_info gauge\n"
            "kyc_bridge_build_info{version=\"0.1.0\"} 1\n"
            "# HELP kyc_bridge_commit_seconds Transaction commit "
            "latency.\n"
            "# TYPE kyc_bridge_commit_seconds histogram\n"
            "kyc_bridge_commit_seconds_bucket{le=\"0.25\"} 1\n"
            "kyc_bridge_commit_seconds_bucket{le=\"1\"} 3\n"
            "kyc_bridge_commit_seconds_bucket{le=\"+Inf\"} 4\n"
            "kyc_bridge_commit_seconds_sum 3.35\n"
            "kyc_bridge_commit_seconds_count 4\n"
            "# HELP kyc_bridge_metrics_label_sets_dropped_total Label sets "
            "a metric family refused (past its bound, or not printable "
            "UTF-8) and counted under \"other\" instead.\n"
            "# TYPE kyc_bridge_metrics_label_sets_dropped_total counter\n"
            "kyc_bridge_metrics_label_sets_dropped_total{family=\"kyc_"
            "bridge_build_info\"} 0\n"
            "kyc_bridge_metrics_label_sets_dropped_total{family=\"kyc_"
            "bridge_records_total\"} 0\n"
            "# HELP kyc_bridge_records_total Records by daemon and "
            "outcome.\n"
            "# TYPE kyc_bridge_records_total counter\n"
            "kyc_bridge_records_total{daemon=\"importer\",outcome="
            "\"dead_lettered\"} 1\n"
            "kyc_bridge_records_total{daemon=\"importer\",outcome="
            "\"published\"} 3\n"
            "kyc_bridge_records_total{daemon=\"issuer\",outcome="
            "\"published\"} 18446744073709551615\n"
            "# HELP kyc_bridge_retry_after_wait_seconds_total Time spent "
            "waiting on Retry-After.\n"
            "# TYPE kyc_bridge_retry_after_wait_seconds_total counter\n"
            "kyc_bridge_retry_after_wait_seconds_total 1.5\n"
            "# HELP process_start_time_seconds Start time of the process "
            "since unix epoch in seconds.\n"
            "# TYPE process_start_time_seconds gauge\n"
            "process_start_time_seconds 1767225600.25\n";
        kb_metric_family_t *frec, *flat, *fwait;
        kb_buf_t text = KB_BUF_INIT;
        kb_metrics_t *reg;
        kb_metric_t *m;
        doc_t d;

        reg = kb_metrics_new(NULL, 0);
        assert_non_null(reg);
        assert_int_equal(kb_metrics_register(reg, &rec, &frec, NULL, 0), KB_OK);
        assert_int_equal(kb_metrics_register(reg, &lat, &flat, NULL, 0), KB_OK);
        assert_int_equal(kb_metrics_register(reg, &wait, &fwait, NULL, 0),
                         KB_OK);
        assert_int_equal(kb_metrics_add_build_info(reg, "0.1.0", NULL, 0),
                         KB_OK);
        assert_int_equal(
            kb_metrics_add_process_start_time(reg, 1767225600.25, NULL, 0),
            KB_OK);
        /* created in another order than they sort */
        kb_metric_add(kb_metric_child(frec, "issuer", "published"), UINT64_MAX);
        kb_metric_add(kb_metric_child(frec, "importer", "published"), 3);
        kb_metric_inc(kb_metric_child(frec, "importer", "dead_lettered"));
        m = kb_metric_child0(flat);
        kb_metric_observe(m, 0.25); /* le is inclusive */
        kb_metric_observe(m, 0.5);
        kb_metric_observe(m, 1);
        kb_metric_observe(m, 1.6);
        kb_metric_observe(m, NAN); /* ignored */
        kb_metric_add_f(kb_metric_child0(fwait), 1.5);
        kb_metric_add_f(kb_metric_child0(fwait), -1);  /* ignored */
        kb_metric_set(kb_metric_child0(fwait), 7);     /* not a gauge */
        kb_metric_observe(kb_metric_child0(fwait), 1); /* not a histogram */

        assert_int_equal(kb_metrics_render(reg, &text), KB_OK);
        assert_string_equal(text.data, expect);
        assert_int_equal(parse_doc(&d, text.data), 0);
        doc_free(&d);
        /* Appends to what the buffer holds. */
        kb_buf_reset(&text);
        assert_int_equal(kb_buf_puts(&text, "x"), 0);
        assert_int_equal(kb_metrics_render(reg, &text), KB_OK);
        assert_int_equal(text.len, 1 + strlen(expect));
        assert_string_equal(text.data + 1, expect);
        kb_buf_free(&text, 0);
        kb_metrics_destroy(reg);
}

/* Gauges go both ways and render NaN and infinities as the format says. */
static void test_gauge_values(void **state)
{
        kb_metric_desc_t g = { .name = "kyc_bridge_queue_depth",
                               .help = "Queue depth.",
                               .type = KB_METRIC_GAUGE };
        kb_buf_t text = KB_BUF_INIT;
        kb_metric_family_t *fam;
        kb_metrics_t *reg;
        kb_metric_t *m;
        doc_t d;

        reg = kb_metrics_new(NULL, 0);
        assert_non_null(reg);
        assert_int_equal(kb_metrics_register(reg, &g, &fam, NULL, 0), KB_OK);
        m = kb_metric_child0(fam);
        kb_metric_set(m, 2.5);
        kb_metric_add_f(m, -4);
        kb_metric_dec(m);
        kb_metric_add(m, 1);
        assert_true(kb_metric_value(m) == -1.5);
        render_parse(reg, &d, &text);
        assert_true(doc_get(&d, "kyc_bridge_queue_depth", "") == -1.5);
        doc_free(&d);
        kb_metric_set(m, NAN);
        render_parse(reg, &d, &text);
        assert_true(isnan(doc_get(&d, "kyc_bridge_queue_depth", "")));
        doc_free(&d);
        kb_metric_set(m, -INFINITY);
        render_parse(reg, &d, &text);
        assert_non_null(strstr(text.data, "kyc_bridge_queue_depth -Inf\n"));
        doc_free(&d);
        kb_buf_free(&text, 0);
        kb_metrics_destroy(reg);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_parser_refuses),
                cmocka_unit_test(test_naming_refusals),
                cmocka_unit_test(test_fmt_double),
                cmocka_unit_test(test_escape),
                cmocka_unit_test(test_label_values),
                cmocka_unit_test(test_overflow_child),
                cmocka_unit_test(test_threads),
                cmocka_unit_test(test_collector),
                cmocka_unit_test(test_render_exact),
                cmocka_unit_test(test_gauge_values),
        };

        return cmocka_run_group_tests(tests, NULL, NULL);
}
