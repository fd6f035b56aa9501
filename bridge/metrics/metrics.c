/* metrics.c -- the metrics registry: naming rules, families, children,
 * lock-free updates */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "metrics_int.h"

#define KB_METRICS_PREFIX     "kyc_bridge_"
#define KB_METRICS_PREFIX_LEN (sizeof(KB_METRICS_PREFIX) - 1)
#define KB_METRICS_DROPPED    "kyc_bridge_metrics_label_sets_dropped_total"

const double kb_metrics_buckets_seconds[KB_METRICS_BUCKETS_SECONDS_CNT] = {
        0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10,
};

/* Words that are not base units, with what to use instead. */
static const struct {
        const char *word;
        const char *use;
} bad_units[] = {
        { "ms", "_seconds" },          { "msec", "_seconds" },
        { "msecs", "_seconds" },       { "millis", "_seconds" },
        { "millisecond", "_seconds" }, { "milliseconds", "_seconds" },
        { "us", "_seconds" },          { "usec", "_seconds" },
        { "usecs", "_seconds" },       { "micros", "_seconds" },
        { "microsecond", "_seconds" }, { "microseconds", "_seconds" },
        { "ns", "_seconds" },          { "nsec", "_seconds" },
        { "nanosecond", "_seconds" },  { "nanoseconds", "_seconds" },
        { "sec", "_seconds" },         { "secs", "_seconds" },
        { "mins", "_seconds" },        { "minute", "_seconds" },
        { "minutes", "_seconds" },     { "hour", "_seconds" },
        { "hours", "_seconds" },       { "day", "_seconds" },
        { "days", "_seconds" },        { "kb", "_bytes" },
        { "kib", "_bytes" },           { "kilobyte", "_bytes" },
        { "kilobytes", "_bytes" },     { "mb", "_bytes" },
        { "mib", "_bytes" },           { "megabyte", "_bytes" },
        { "megabytes", "_bytes" },     { "gb", "_bytes" },
        { "gib", "_bytes" },           { "gigabyte", "_bytes" },
        { "gigabytes", "_bytes" },     { "percent", "_ratio (0..1)" },
        { "pct", "_ratio (0..1)" },
};

/* Series names a histogram (or a summary, or OpenMetrics) makes. */
static const char *const reserved_suffixes[] = {
        "_bucket",
        "_sum",
        "_count",
        "_created",
};

static void seterr(char *errstr, size_t errstr_size, const char *fmt, ...)
    KB_PRINTF(3, 4);

static void seterr(char *errstr, size_t errstr_size, const char *fmt, ...)
{
        va_list ap;

        if (!errstr || !errstr_size)
                return;
        va_start(ap, fmt);
        vsnprintf(errstr, errstr_size, fmt, ap);
        va_end(ap);
}

uint64_t kb_metrics_d2u(double d)
{
        uint64_t u;

        memcpy(&u, &d, sizeof(u));
        return u;
}

double kb_metrics_u2d(uint64_t u)
{
        double d;

        memcpy(&d, &u, sizeof(d));
        return d;
}

/* Adds @p v to the double kept in @p p (lock-free: compare and swap). */
static void atomic_add_double(_Atomic uint64_t *p, double v)
{
        uint64_t old = atomic_load_explicit(p, memory_order_relaxed);
        uint64_t nw;

        do {
                nw = kb_metrics_d2u(kb_metrics_u2d(old) + v);
        } while (!atomic_compare_exchange_weak_explicit(
            p, &old, nw, memory_order_relaxed, memory_order_relaxed));
}

static int ends_with(const char *s, const char *suffix)
{
        size_t n = strlen(s), m = strlen(suffix);

        return n >= m && !strcmp(s + n - m, suffix);
}

/* Non-zero if @p s is lowercase snake_case: [a-z0-9]+ words joined by
 * single '_', starting with a letter. */
static int is_snake(const char *s)
{
        const char *p;

        if (!(*s >= 'a' && *s <= 'z'))
                return 0;
        for (p = s; *p; p++) {
                if ((*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9'))
                        continue;
                if (*p != '_' || p[1] == '_' || p[1] == '\0')
                        return 0;
        }
        return 1;
}

/* The first word of @p name that is not a base unit, or -1. */
static int bad_unit_word(const char *name)
{
        const char *w = name;
        size_t i, len;

        while (*w) {
                len = strcspn(w, "_");
                for (i = 0; i < KB_ARRAY_SIZE(bad_units); i++) {
                        if (strlen(bad_units[i].word) == len &&
                            !strncmp(w, bad_units[i].word, len))
                                return (int)i;
                }
                w += len;
                if (*w == '_')
                        w++;
        }
        return -1;
}

static int check_name(const char *name, kb_metric_type_t type, char *errstr,
                      size_t errstr_size)
{
        size_t i, len;
        int u;

        if (!name || !*name) {
                seterr(errstr, errstr_size, "metric without a name");
                return KB_ERR_INVALID_ARG;
        }
        len = strlen(name);
        if (len > KB_METRICS_NAME_MAX) {
                seterr(errstr, errstr_size, "metric name longer than %u bytes",
                       KB_METRICS_NAME_MAX);
                return KB_ERR_INVALID_ARG;
        }
        if (!kb_metrics_printable(name, len)) {
                seterr(errstr, errstr_size, "metric name is not text");
                return KB_ERR_INVALID_ARG;
        }
        if (strncmp(name, KB_METRICS_PREFIX, KB_METRICS_PREFIX_LEN) != 0 ||
            name[KB_METRICS_PREFIX_LEN] == '\0') {
                seterr(errstr, errstr_size,
                       "%s: metric names start with \"" KB_METRICS_PREFIX
                       "\" and go on",
                       name);
                return KB_ERR_INVALID_ARG;
        }
        if (strstr(name + KB_METRICS_PREFIX_LEN, "kyc_bridge")) {
                seterr(errstr, errstr_size,
                       "%s: one \"" KB_METRICS_PREFIX "\" prefix only", name);
                return KB_ERR_INVALID_ARG;
        }
        if (!is_snake(name)) {
                seterr(errstr, errstr_size,
                       "%s: metric names are lowercase snake_case "
                       "([a-z0-9] words joined by single '_')",
                       name);
                return KB_ERR_INVALID_ARG;
        }
        if (type == KB_METRIC_COUNTER && !ends_with(name, "_total")) {
                seterr(errstr, errstr_size,
                       "%s: counter names end in \"_total\"", name);
                return KB_ERR_INVALID_ARG;
        }
        if (type != KB_METRIC_COUNTER && ends_with(name, "_total")) {
                seterr(errstr, errstr_size,
                       "%s: only counter names end in \"_total\"", name);
                return KB_ERR_INVALID_ARG;
        }
        for (i = 0; i < KB_ARRAY_SIZE(reserved_suffixes); i++) {
                if (ends_with(name, reserved_suffixes[i])) {
                        seterr(errstr, errstr_size,
                               "%s: \"%s\" is a histogram series suffix, "
                               "not for a metric name",
                               name, reserved_suffixes[i]);
                        return KB_ERR_INVALID_ARG;
                }
        }
        u = bad_unit_word(name + KB_METRICS_PREFIX_LEN);
        if (u >= 0) {
                seterr(errstr, errstr_size,
                       "%s: \"%s\" is not a base unit; use %s", name,
                       bad_units[u].word, bad_units[u].use);
                return KB_ERR_INVALID_ARG;
        }
        return KB_OK;
}

static int check_desc(const kb_metric_desc_t *d, int internal, char *errstr,
                      size_t errstr_size)
{
        size_t i, j, label_cnt = 0, hlen;
        int r;

        if (d->type != KB_METRIC_COUNTER && d->type != KB_METRIC_GAUGE &&
            d->type != KB_METRIC_HISTOGRAM) {
                seterr(errstr, errstr_size, "%s: unknown metric type %d",
                       d->name ? d->name : "(null)", (int)d->type);
                return KB_ERR_INVALID_ARG;
        }
        if (!internal &&
            (r = check_name(d->name, d->type, errstr, errstr_size)) != KB_OK)
                return r;
        hlen = d->help ? strlen(d->help) : 0;
        if (hlen == 0 || hlen > KB_METRICS_HELP_MAX ||
            !kb_metrics_printable(d->help, hlen)) {
                seterr(errstr, errstr_size,
                       "%s: help text must be 1..%u bytes of printable "
                       "UTF-8",
                       d->name, KB_METRICS_HELP_MAX);
                return KB_ERR_INVALID_ARG;
        }
        for (i = 0; d->labels && d->labels[i]; i++) {
                const char *l = d->labels[i];

                if (i >= KB_METRICS_LABELS_MAX) {
                        seterr(errstr, errstr_size, "%s: more than %u labels",
                               d->name, KB_METRICS_LABELS_MAX);
                        return KB_ERR_INVALID_ARG;
                }
                if (strlen(l) > KB_METRICS_NAME_MAX || !is_snake(l)) {
                        seterr(errstr, errstr_size,
                               "%s: label \"%.64s\" is not lowercase "
                               "snake_case",
                               d->name,
                               kb_metrics_printable(l, strlen(l)) ? l : "?");
                        return KB_ERR_INVALID_ARG;
                }
                if (!strcmp(l, "le") || !strcmp(l, "quantile")) {
                        seterr(errstr, errstr_size,
                               "%s: label \"%s\" is reserved", d->name, l);
                        return KB_ERR_INVALID_ARG;
                }
                for (j = 0; j < i; j++) {
                        if (!strcmp(d->labels[j], l)) {
                                seterr(errstr, errstr_size,
                                       "%s: label \"%s\" twice", d->name, l);
                                return KB_ERR_INVALID_ARG;
                        }
                }
                label_cnt++;
        }
        if (label_cnt && (d->max_children < 1 ||
                          d->max_children > KB_METRICS_CHILDREN_MAX)) {
                seterr(errstr, errstr_size,
                       "%s: max_children must be 1..%u (label sets are "
                       "bounded)",
                       d->name, KB_METRICS_CHILDREN_MAX);
                return KB_ERR_INVALID_ARG;
        }
        if (d->type == KB_METRIC_HISTOGRAM) {
                if (d->collect) {
                        seterr(errstr, errstr_size,
                               "%s: histograms cannot have a collector",
                               d->name);
                        return KB_ERR_INVALID_ARG;
                }
                if (!d->buckets || d->bucket_cnt < 1 ||
                    d->bucket_cnt > KB_METRICS_BUCKETS_MAX) {
                        seterr(errstr, errstr_size,
                               "%s: a histogram needs 1..%u bucket bounds",
                               d->name, KB_METRICS_BUCKETS_MAX);
                        return KB_ERR_INVALID_ARG;
                }
                for (i = 0; i < d->bucket_cnt; i++) {
                        if (!isfinite(d->buckets[i]) ||
                            (i > 0 && !(d->buckets[i] > d->buckets[i - 1]))) {
                                seterr(errstr, errstr_size,
                                       "%s: bucket bounds must be finite "
                                       "and strictly increasing (+Inf is "
                                       "added)",
                                       d->name);
                                return KB_ERR_INVALID_ARG;
                        }
                }
        } else if (d->buckets || d->bucket_cnt) {
                seterr(errstr, errstr_size,
                       "%s: only histograms have bucket bounds", d->name);
                return KB_ERR_INVALID_ARG;
        }
        return KB_OK;
}

/* New child (not yet published). Takes ownership of @p key and @p labels
 * on success. */
static kb_metric_t *child_new(const kb_metric_family_t *fam, char *key,
                              size_t keylen, char *labels)
{
        size_t bucket_n, i;
        kb_metric_t *m;

        bucket_n = fam->type == KB_METRIC_HISTOGRAM ? fam->bound_cnt + 1 : 0;
        m = calloc(1, sizeof(*m) + bucket_n * sizeof(m->buckets[0]));
        if (!m)
                return NULL;
        m->type = fam->type;
        m->fam = fam;
        atomic_init(&m->n, 0);
        atomic_init(&m->bits, kb_metrics_d2u(0.0));
        m->key = key;
        m->keylen = keylen;
        m->labels = labels;
        m->bucket_n = bucket_n;
        for (i = 0; i < bucket_n; i++)
                atomic_init(&m->buckets[i], 0);
        return m;
}

static void child_destroy(kb_metric_t *m)
{
        if (!m)
                return;
        free(m->key);
        free(m->labels);
        free(m);
}

static void family_destroy(kb_metric_family_t *fam)
{
        size_t i, n;

        if (!fam)
                return;
        n = atomic_load(&fam->child_cnt);
        for (i = 0; i < n; i++)
                child_destroy(fam->children[i]);
        free(fam->children);
        kb_hmap_destroy(fam->map);
        pthread_mutex_destroy(&fam->lock);
        for (i = 0; i < fam->label_cnt; i++)
                free(fam->label_names[i]);
        free(fam->label_names);
        free(fam->bounds);
        free(fam->help);
        free(fam->name);
        free(fam);
}

/* Publishes @p m as the family's next child (lock held, or no other thread
 * yet). */
static void family_publish(kb_metric_family_t *fam, kb_metric_t *m)
{
        size_t n = atomic_load_explicit(&fam->child_cnt, memory_order_relaxed);

        fam->children[n] = m;
        atomic_store_explicit(&fam->child_cnt, n + 1, memory_order_release);
}

static kb_metric_family_t *family_new(kb_metrics_t *reg,
                                      const kb_metric_desc_t *d)
{
        kb_metric_family_t *fam;
        size_t i, slots;
        char *labels;

        fam = calloc(1, sizeof(*fam));
        if (!fam)
                return NULL;
        if (pthread_mutex_init(&fam->lock, NULL) != 0) {
                free(fam);
                return NULL;
        }
        atomic_init(&fam->child_cnt, 0);
        atomic_init(&fam->dropped, 0);
        fam->reg = reg;
        fam->type = d->type;
        fam->collect = d->collect;
        fam->opaque = d->opaque;
        for (i = 0; d->labels && d->labels[i]; i++)
                ;
        fam->label_cnt = i;
        fam->max_children = fam->label_cnt ? d->max_children : 1;
        if (!(fam->name = strdup(d->name)) || !(fam->help = strdup(d->help)))
                goto err;
        if (fam->label_cnt) {
                fam->label_names =
                    calloc(fam->label_cnt, sizeof(*fam->label_names));
                if (!fam->label_names)
                        goto err;
                for (i = 0; i < fam->label_cnt; i++)
                        if (!(fam->label_names[i] = strdup(d->labels[i])))
                                goto err;
        }
        if (d->type == KB_METRIC_HISTOGRAM) {
                fam->bounds = malloc(d->bucket_cnt * sizeof(*fam->bounds));
                if (!fam->bounds)
                        goto err;
                memcpy(fam->bounds, d->buckets,
                       d->bucket_cnt * sizeof(*fam->bounds));
                fam->bound_cnt = d->bucket_cnt;
        }
        if (fam->collect)
                return fam;
        /* max_children plus the overflow child; never reallocated, so the
         * renderer reads it without the lock. */
        slots = fam->max_children + (fam->label_cnt ? 1 : 0);
        fam->children = calloc(slots, sizeof(*fam->children));
        if (!fam->children)
                goto err;
        if (fam->label_cnt) {
                if (!(fam->map = kb_hmap_new()))
                        goto err;
                return fam;
        }
        if (!(labels = strdup("")))
                goto err;
        if (!(fam->solo = child_new(fam, NULL, 0, labels))) {
                free(labels);
                goto err;
        }
        family_publish(fam, fam->solo);
        fam->regular_cnt = 1;
        return fam;
err:
        family_destroy(fam);
        return NULL;
}

/* Binary search by name: the index of @p name, or where it would go. */
static size_t fam_find(const kb_metrics_t *reg, const char *name, int *found)
{
        size_t lo = 0, hi = reg->fam_cnt, mid;
        int c;

        *found = 0;
        while (lo < hi) {
                mid = lo + (hi - lo) / 2;
                c = strcmp(reg->fams[mid]->name, name);
                if (c == 0) {
                        *found = 1;
                        return mid;
                }
                if (c < 0)
                        lo = mid + 1;
                else
                        hi = mid;
        }
        return lo;
}

static int do_register(kb_metrics_t *reg, const kb_metric_desc_t *d,
                       int internal, kb_metric_family_t **famp, char *errstr,
                       size_t errstr_size)
{
        kb_metric_family_t *fam, **fams;
        size_t at;
        int r, found;

        if (famp)
                *famp = NULL;
        if (!reg || !d) {
                seterr(errstr, errstr_size, "no registry or description");
                return KB_ERR_INVALID_ARG;
        }
        if ((r = check_desc(d, internal, errstr, errstr_size)) != KB_OK)
                return r;
        if (!(fam = family_new(reg, d))) {
                seterr(errstr, errstr_size, "%s: out of memory", d->name);
                return KB_ERR_NOMEM;
        }

        pthread_mutex_lock(&reg->lock);
        at = fam_find(reg, fam->name, &found);
        if (found) {
                seterr(errstr, errstr_size, "%s: registered twice", d->name);
                r = KB_ERR_EXISTS;
                goto out;
        }
        if (reg->fam_cnt >= KB_METRICS_FAMILIES_MAX) {
                seterr(errstr, errstr_size, "%s: more than %u metrics", d->name,
                       KB_METRICS_FAMILIES_MAX);
                r = KB_ERR_TOO_LARGE;
                goto out;
        }
        if (reg->fam_cnt == reg->fam_cap) {
                size_t cap = reg->fam_cap ? reg->fam_cap * 2 : 16;

                fams = realloc(reg->fams, cap * sizeof(*fams));
                if (!fams) {
                        seterr(errstr, errstr_size, "%s: out of memory",
                               d->name);
                        r = KB_ERR_NOMEM;
                        goto out;
                }
                reg->fams = fams;
                reg->fam_cap = cap;
        }
        memmove(reg->fams + at + 1, reg->fams + at,
                (reg->fam_cnt - at) * sizeof(*reg->fams));
        reg->fams[at] = fam;
        reg->fam_cnt++;
        if (famp)
                *famp = fam;
        fam = NULL;
        r = KB_OK;
out:
        pthread_mutex_unlock(&reg->lock);
        family_destroy(fam);
        return r;
}

int kb_metrics_register(kb_metrics_t *reg, const kb_metric_desc_t *desc,
                        kb_metric_family_t **famp, char *errstr,
                        size_t errstr_size)
{
        return do_register(reg, desc, 0, famp, errstr, errstr_size);
}

/* The registry's own family: dropped label sets per family (runs with the
 * registry locked, from kb_metrics_render()). */
static void dropped_collect(void *opaque, kb_metric_emit_t *emit)
{
        kb_metrics_t *reg = opaque;
        size_t i;

        for (i = 0; i < reg->fam_cnt; i++) {
                const kb_metric_family_t *fam = reg->fams[i];

                if (fam == emit->fam || fam->label_cnt == 0)
                        continue;
                (void)kb_metric_emit(
                    emit, (double)kb_metric_family_dropped(fam), fam->name);
        }
}

kb_metrics_t *kb_metrics_new(char *errstr, size_t errstr_size)
{
        static const char *const fam_label[] = { "family", NULL };
        kb_metric_desc_t d = {
                .name = KB_METRICS_DROPPED,
                .help = "Label sets a metric family refused (past its "
                        "bound, or not printable UTF-8) and counted under "
                        "\"other\" instead.",
                .type = KB_METRIC_COUNTER,
                .labels = fam_label,
                .max_children = KB_METRICS_FAMILIES_MAX,
        };
        kb_metrics_t *reg;

        reg = calloc(1, sizeof(*reg));
        if (!reg || pthread_mutex_init(&reg->lock, NULL) != 0) {
                free(reg);
                seterr(errstr, errstr_size, "out of memory");
                return NULL;
        }
        d.collect = dropped_collect;
        d.opaque = reg;
        if (do_register(reg, &d, 0, NULL, errstr, errstr_size) != KB_OK) {
                kb_metrics_destroy(reg);
                return NULL;
        }
        return reg;
}

void kb_metrics_destroy(kb_metrics_t *reg)
{
        size_t i;

        if (!reg)
                return;
        for (i = 0; i < reg->fam_cnt; i++)
                family_destroy(reg->fams[i]);
        free(reg->fams);
        pthread_mutex_destroy(&reg->lock);
        free(reg);
}

int kb_metrics_add_build_info(kb_metrics_t *reg, const char *version,
                              char *errstr, size_t errstr_size)
{
        static const char *const ver_label[] = { "version", NULL };
        kb_metric_desc_t d = {
                .name = "kyc_bridge_build_info",
                .help = "Always 1; the version label is the kyc-bridge "
                        "version running.",
                .type = KB_METRIC_GAUGE,
                .labels = ver_label,
                .max_children = 1,
        };
        kb_metric_family_t *fam;
        kb_metric_t *m;
        int r;

        if (!version || strlen(version) > KB_METRICS_LABEL_VALUE_MAX ||
            !kb_metrics_printable(version, strlen(version))) {
                seterr(errstr, errstr_size,
                       "kyc_bridge_build_info: the version must be printable "
                       "UTF-8 of at most %u bytes",
                       KB_METRICS_LABEL_VALUE_MAX);
                return KB_ERR_INVALID_ARG;
        }
        if ((r = kb_metrics_register(reg, &d, &fam, errstr, errstr_size)) !=
            KB_OK)
                return r;
        if (!(m = kb_metric_child(fam, version))) {
                seterr(errstr, errstr_size,
                       "kyc_bridge_build_info: out of memory");
                return KB_ERR_NOMEM;
        }
        kb_metric_set(m, 1);
        return KB_OK;
}

int kb_metrics_add_process_start_time(kb_metrics_t *reg, double start_unix_s,
                                      char *errstr, size_t errstr_size)
{
        kb_metric_desc_t d = {
                .name = "process_start_time_seconds",
                .help = "Start time of the process since unix epoch in "
                        "seconds.",
                .type = KB_METRIC_GAUGE,
        };
        kb_metric_family_t *fam;
        struct timespec ts;
        int r;

        if (start_unix_s <= 0) {
                clock_gettime(CLOCK_REALTIME, &ts);
                start_unix_s = (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
        }
        /* internal: the one name outside the kyc_bridge_ prefix rule */
        if ((r = do_register(reg, &d, 1, &fam, errstr, errstr_size)) != KB_OK)
                return r;
        kb_metric_set(kb_metric_child0(fam), start_unix_s);
        return KB_OK;
}

/* The overflow child, created when first needed (family lock held). */
static kb_metric_t *overflow_child(kb_metric_family_t *fam)
{
        const char *vals[KB_METRICS_LABELS_MAX];
        char *key = NULL, *labels = NULL;
        kb_metric_t *m;
        size_t i, keylen;

        if (fam->overflow)
                return fam->overflow;
        for (i = 0; i < fam->label_cnt; i++)
                vals[i] = KB_METRICS_OVERFLOW_VALUE;
        if (kb_metrics_labels_make(fam, vals, &key, &keylen, &labels) != KB_OK)
                return NULL;
        /* A real tuple of "other"s may have taken the name already. */
        if ((m = kb_hmap_get(fam->map, key, keylen)) != NULL) {
                free(key);
                free(labels);
                fam->overflow = m;
                return m;
        }
        if (!(m = child_new(fam, key, keylen, labels))) {
                free(key);
                free(labels);
                return NULL;
        }
        if (kb_hmap_put(fam->map, key, keylen, m) != 0) {
                child_destroy(m);
                return NULL;
        }
        family_publish(fam, m);
        fam->overflow = m;
        return m;
}

kb_metric_t *kb_metric_childv(kb_metric_family_t *fam,
                              const char *const *values, size_t value_cnt)
{
        char kbuf[KB_METRICS_LABELS_MAX * (KB_METRICS_LABEL_VALUE_MAX + 1)];
        char *key = NULL, *labels = NULL;
        kb_metric_t *m = NULL;
        size_t i, len, keylen = 0;
        int valid = 1;

        if (!fam || fam->collect || value_cnt != fam->label_cnt)
                return NULL;
        if (!fam->label_cnt)
                return fam->solo;

        /* The key on the stack: finding an existing child allocates
         * nothing. */
        for (i = 0; i < value_cnt && valid; i++) {
                len = values[i] ? strlen(values[i]) : 0;
                if (!values[i] || len > KB_METRICS_LABEL_VALUE_MAX ||
                    !kb_metrics_printable(values[i], len)) {
                        valid = 0;
                        break;
                }
                memcpy(kbuf + keylen, values[i], len + 1);
                keylen += len + 1;
        }

        pthread_mutex_lock(&fam->lock);
        if (!valid) {
                atomic_fetch_add_explicit(&fam->dropped, 1,
                                          memory_order_relaxed);
                m = overflow_child(fam);
                goto out;
        }
        if ((m = kb_hmap_get(fam->map, kbuf, keylen)) != NULL)
                goto out;
        if (fam->regular_cnt >= fam->max_children) {
                atomic_fetch_add_explicit(&fam->dropped, 1,
                                          memory_order_relaxed);
                m = overflow_child(fam);
                goto out;
        }
        /* A new child (rare): under the lock, so two threads asking for
         * the same new tuple get the same child. */
        if (kb_metrics_labels_make(fam, values, &key, &keylen, &labels) !=
            KB_OK)
                goto out;
        if (!(m = child_new(fam, key, keylen, labels)))
                goto out;
        if (kb_hmap_put(fam->map, key, keylen, m) != 0) {
                m->key = NULL;
                m->labels = NULL;
                child_destroy(m);
                m = NULL;
                goto out;
        }
        key = labels = NULL; /* the child's now */
        family_publish(fam, m);
        fam->regular_cnt++;
out:
        pthread_mutex_unlock(&fam->lock);
        free(key);
        free(labels);
        return m;
}

kb_metric_t *kb_metric_child0(kb_metric_family_t *fam)
{
        return fam ? fam->solo : NULL;
}

void kb_metric_inc(kb_metric_t *m)
{
        kb_metric_add(m, 1);
}

void kb_metric_dec(kb_metric_t *m)
{
        if (m && m->type == KB_METRIC_GAUGE)
                atomic_add_double(&m->bits, -1.0);
}

void kb_metric_add(kb_metric_t *m, uint64_t n)
{
        if (!m)
                return;
        if (m->type == KB_METRIC_COUNTER)
                atomic_fetch_add_explicit(&m->n, n, memory_order_relaxed);
        else if (m->type == KB_METRIC_GAUGE)
                atomic_add_double(&m->bits, (double)n);
}

void kb_metric_add_f(kb_metric_t *m, double v)
{
        if (!m)
                return;
        if (m->type == KB_METRIC_COUNTER) {
                if (v > 0) /* also refuses NaN */
                        atomic_add_double(&m->bits, v);
        } else if (m->type == KB_METRIC_GAUGE) {
                atomic_add_double(&m->bits, v);
        }
}

void kb_metric_set(kb_metric_t *m, double v)
{
        if (m && m->type == KB_METRIC_GAUGE)
                atomic_store_explicit(&m->bits, kb_metrics_d2u(v),
                                      memory_order_relaxed);
}

void kb_metric_observe(kb_metric_t *m, double v)
{
        const double *bounds;
        size_t lo, hi, mid;

        if (!m || m->type != KB_METRIC_HISTOGRAM || isnan(v))
                return;
        /* The first bound >= v ("le" is inclusive), else +Inf. */
        bounds = m->fam->bounds;
        lo = 0;
        hi = m->bucket_n - 1;
        while (lo < hi) {
                mid = lo + (hi - lo) / 2;
                if (bounds[mid] >= v)
                        hi = mid;
                else
                        lo = mid + 1;
        }
        atomic_fetch_add_explicit(&m->buckets[lo], 1, memory_order_relaxed);
        atomic_add_double(&m->bits, v);
}

double kb_metric_value(const kb_metric_t *m)
{
        uint64_t n;
        double f;

        if (!m)
                return 0;
        f = kb_metrics_u2d(atomic_load_explicit((_Atomic uint64_t *)&m->bits,
                                                memory_order_relaxed));
        if (m->type == KB_METRIC_GAUGE)
                return f;
        if (m->type != KB_METRIC_COUNTER)
                return 0;
        n = atomic_load_explicit((_Atomic uint64_t *)&m->n,
                                 memory_order_relaxed);
        return (double)n + f;
}

uint64_t kb_metric_hist_count(const kb_metric_t *m)
{
        uint64_t total = 0;
        size_t i;

        if (!m || m->type != KB_METRIC_HISTOGRAM)
                return 0;
        for (i = 0; i < m->bucket_n; i++)
                total += atomic_load_explicit(
                    (_Atomic uint64_t *)&m->buckets[i], memory_order_relaxed);
        return total;
}

double kb_metric_hist_sum(const kb_metric_t *m)
{
        if (!m || m->type != KB_METRIC_HISTOGRAM)
                return 0;
        return kb_metrics_u2d(atomic_load_explicit((_Atomic uint64_t *)&m->bits,
                                                   memory_order_relaxed));
}

uint64_t kb_metric_family_dropped(const kb_metric_family_t *fam)
{
        if (!fam)
                return 0;
        return atomic_load_explicit((_Atomic uint64_t *)&fam->dropped,
                                    memory_order_relaxed);
}
