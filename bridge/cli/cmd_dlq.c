/* cmd_dlq.c -- "kyc-bridge dlq": usage, options, list and show (redrive:
 * cmd_dlq_redrive.c) */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cmd.h"
#include "cmd_dlq.h"
#include "conf.h"
#include "dlq.h"
#include "dlq_read.h"
#include "dlq_redrive.h"
#include "json.h"
#include "kyc_bridge.h"
#include "log.h"
#include "util.h"

#define DLQ_TIMEOUT_S 30
#define REDRIVE_BATCH 100 /* dead letters per transaction */

static void usage(FILE *fp)
{
        const kb_dlq_reason_t *rr;
        size_t n, i;

        fprintf(fp,
                "Usage: kyc-bridge dlq list -c FILE [--role issuer|importer] "
                "[--reason R] [--json]\n"
                "                           [--timeout S] [-X key=value]...\n"
                "       kyc-bridge dlq show -c FILE [--role issuer|importer] "
                "(--offset P:O | --share-id ID)\n"
                "                           [--timeout S] [-X key=value]...\n"
                "       kyc-bridge dlq redrive -c FILE [--role "
                "issuer|importer] [--reason R]...\n"
                "                           [--share-id ID]... [--partition P "
                "[--from-offset A]\n"
                "                           [--to-offset B]] [--dry-run] "
                "[--batch N] [--timeout S]\n"
                "                           [-X key=value]...\n\n"
                "  list   read the whole dead-letter topic (read_committed, up "
                "to the end\n"
                "         found at start): a count per reason, the time range "
                "(first/last\n"
                "         \"at\", UTC) and one line per record: "
                "partition:offset, at,\n"
                "         reason, share_id, stage, redriven. --reason R keeps "
                "that reason\n"
                "         only; --json prints one JSON object per record "
                "instead\n"
                "  show   print one dead letter (every member; of a kept "
                "input only its\n"
                "         size, sha256 and headers) by partition:offset, or "
                "every dead\n"
                "         letter of a share_id; exit 1 when there is none\n"
                "  redrive  put the kept inputs of the selected dead letters "
                "back on the\n"
                "         daemon's input topic (same partition, key and "
                "trace headers,\n"
                "         plus kb-redrive-of), once the cause is fixed. "
                "Selection: every\n"
                "         --reason R and every --share-id ID given (each "
                "repeatable; one\n"
                "         of them must match) and the offset range "
                "--partition P\n"
                "         [--from-offset A] [--to-offset B] (inclusive) of "
                "the dead-letter\n"
                "         topic; at least one is required. Each batch of "
                "--batch N (default\n"
                "         %d) is one Kafka transaction that also writes a "
                "\"redriven\" marker\n"
                "         per dead letter to the dead-letter topic; marked "
                "ones are skipped,\n"
                "         so a run that was interrupted can simply be run "
                "again: nothing\n"
                "         is dropped or doubled. One run per dead-letter "
                "topic at a time\n"
                "         (transactional id kyc-bridge-dlq-redrive-<dlq "
                "topic>, whatever\n"
                "         the group_id): a second run fences the first, "
                "which stops with\n"
                "         \"fenced\". --dry-run prints what it would do and "
                "writes nothing.\n"
                "         Two dead letters of one input: the input goes "
                "back once.\n"
                "         Refused, with what to do instead: the reasons "
                "below that can\n"
                "         never succeed, and dead letters without a kept "
                "input.\n\n"
                "  The topic is issuer.dlq_topic or importer.dlq_topic of "
                "FILE: --role\n"
                "  (or --daemon) picks it; without it, the role FILE's "
                "options imply\n"
                "  (issuer or importer options, not both). --timeout S: "
                "give up a\n"
                "  Kafka wait after S seconds (default %d; broker "
                "unreachable). redrive:\n"
                "  a retriable Kafka error is retried up to 3 times; "
                "transaction.timeout.ms\n"
                "  is 2*S (60 s at least, 900 s at most), and the waits "
                "inside a\n"
                "  transaction end before it.\n"
                "  Exit: 0 ok (redrive: every selected dead letter redriven "
                "now or\n"
                "  before, or none matched), 1 not found or Kafka failure "
                "(redrive:\n"
                "  what was committed stays, a commit whose outcome is "
                "unknown is said\n"
                "  so; run it again: the markers tell), 2 usage or "
                "configuration\n"
                "  error, 3 redrive: some selected dead letters were refused "
                "(the rest\n"
                "  were redriven).\n\n"
                "  Reasons a redrive refuses:\n",
                REDRIVE_BATCH, DLQ_TIMEOUT_S);
        rr = kb_dlq_reasons(&n);
        for (i = 0; i < n; i++)
                if (!rr[i].redrivable)
                        fprintf(fp, "    %-22s %s\n", rr[i].reason,
                                rr[i].advice);
        fprintf(fp, "  Reasons it redrives (fix the cause first):\n");
        for (i = 0; i < n; i++)
                if (rr[i].redrivable)
                        fprintf(fp, "    %-28s %s\n", rr[i].reason,
                                rr[i].advice);
}

/* Is an option of only @p scope set in @p conf? (Wildcard options: in any
 * section.) */
static int scope_used(const kb_conf_t *conf, unsigned scope)
{
        const kb_conf_opt_t *o;
        char key[256], prefix[128];
        int used = 0;

        for (o = kb_conf_options; o->name && !used; o++) {
                const char *star = strstr(o->name, ".*.");
                char **secs;
                size_t i;

                if (o->scope != scope)
                        continue;
                if (!star) {
                        used = kb_conf_is_set(conf, o->name);
                        continue;
                }
                kb_snprintf(prefix, sizeof(prefix), "%.*s",
                            (int)(star - o->name), o->name);
                secs = kb_conf_sections(conf, prefix, NULL);
                for (i = 0; secs && secs[i] && !used; i++) {
                        kb_snprintf(key, sizeof(key), "%s.%s.%s", prefix,
                                    secs[i], star + 3);
                        used = kb_conf_is_set(conf, key);
                }
                kb_conf_list_free(secs);
        }
        return used;
}

static void iso_utc(int64_t t, char *out, size_t outsz)
{
        time_t tt = (time_t)t;
        struct tm tm;

        if (!gmtime_r(&tt, &tm) ||
            !strftime(out, outsz, "%Y-%m-%dT%H:%M:%SZ", &tm))
                kb_snprintf(out, outsz, "%lld", (long long)t);
}

/* Prints @p s with anything JWT-shaped replaced (kb_log_scrub). */
void kb_dlq_put_scrubbed(FILE *fp, const char *s)
{
        size_t len = strlen(s), cap = len * 2 + 64;
        char *clean = malloc(cap);

        if (!clean) {
                fputs("[out of memory]\n", fp);
                return;
        }
        kb_log_scrub(s, clean, cap);
        fputs(clean, fp);
        free(clean);
}

const char *kb_dlq_ent_str(const kb_dlq_ent_t *e, const char *member)
{
        const char *s = e->doc ? kb_json_get_str(e->doc, member) : NULL;

        return s;
}

const char *kb_dlq_ent_reason(const kb_dlq_ent_t *e)
{
        const char *s = kb_dlq_ent_str(e, "reason");

        return s ? s : e->hdr_reason ? e->hdr_reason : "(unknown)";
}

static char *dup0(const char *s)
{
        return s ? strdup(s) : NULL;
}

static int in_list(const char *const *v, size_t n, const char *s)
{
        size_t i;

        for (i = 0; s && i < n; i++)
                if (!strcmp(v[i], s))
                        return 1;
        return 0;
}

int kb_dlq_coll_cb(void *opaque, const kb_dlq_rec_t *rec)
{
        kb_dlq_coll_t *c = opaque;
        const char *reason, *sid;
        kb_dlq_ent_t *e;

        switch (kb_dlq_marks_add(&c->marks, rec->doc)) {
        case 0:
                break; /* a dead letter */
        case 1:
                return 0;
        default:
                c->oom = 1;
                return 1;
        }
        c->total++;
        if (c->partition >= 0 && (rec->partition != c->partition ||
                                  rec->offset < c->from || rec->offset > c->to))
                return 0;
        reason = rec->doc ? kb_json_get_str(rec->doc, "reason") : NULL;
        if (!reason)
                reason = rec->reason ? rec->reason : "(unknown)";
        if (c->n_reasons && !in_list(c->reasons, c->n_reasons, reason))
                return 0;
        if (c->n_share_ids) {
                sid = rec->doc ? kb_json_get_str(rec->doc, "share_id") : NULL;
                if (!in_list(c->share_ids, c->n_share_ids, sid) &&
                    !in_list(c->share_ids, c->n_share_ids, rec->key))
                        return 0;
        }
        if (c->n == c->cap) {
                size_t nc = c->cap ? c->cap * 2 : 64;
                kb_dlq_ent_t *nv = realloc(c->v, nc * sizeof(*nv));
                if (!nv) {
                        c->oom = 1;
                        return 1;
                }
                c->v = nv;
                c->cap = nc;
        }
        e = &c->v[c->n];
        memset(e, 0, sizeof(*e));
        e->partition = rec->partition;
        e->offset = rec->offset;
        e->ts_ms = rec->ts_ms;
        e->key = dup0(rec->key);
        e->hdr_reason = dup0(rec->reason);
        if (rec->doc)
                e->doc = json_object_get(rec->doc);
        else
                e->raw = dup0(rec->value);
        if ((rec->key && !e->key) || (rec->reason && !e->hdr_reason) ||
            (!rec->doc && !e->raw)) {
                free(e->key);
                free(e->hdr_reason);
                free(e->raw);
                json_object_put(e->doc);
                c->oom = 1;
                return 1;
        }
        c->n++;
        return 0;
}

/* A copy of a dead letter for printing: the kept input without its bytes
 * (an envelope is sealed, but a dead letter is shown, never its input):
 * size, sha256 and headers only. NULL on ENOMEM. */
static json_object *display_doc(json_object *doc)
{
        json_object *copy = NULL, *in;

        if (json_object_deep_copy(doc, &copy, NULL))
                return NULL;
        if (json_object_object_get_ex(copy, "input", &in) &&
            json_object_is_type(in, json_type_object)) {
                json_object_object_del(in, "value");
                json_object_object_del(in, "key");
        }
        return copy;
}

void kb_dlq_coll_free(kb_dlq_coll_t *c)
{
        size_t i;

        for (i = 0; i < c->n; i++) {
                free(c->v[i].key);
                free(c->v[i].hdr_reason);
                free(c->v[i].raw);
                json_object_put(c->v[i].doc);
        }
        free(c->v);
        kb_dlq_marks_free(&c->marks);
}

static int ent_cmp(const void *a, const void *b)
{
        const kb_dlq_ent_t *x = a, *y = b;

        if (x->partition != y->partition)
                return x->partition < y->partition ? -1 : 1;
        return x->offset < y->offset ? -1 : x->offset > y->offset;
}

void kb_dlq_coll_done(kb_dlq_coll_t *c)
{
        size_t i;

        if (c->n)
                qsort(c->v, c->n, sizeof(*c->v), ent_cmp);
        for (i = 0; i < c->n; i++)
                c->v[i].redriven = kb_dlq_redrive_marked(
                    &c->marks, c->v[i].partition, c->v[i].offset);
}

static int reason_cmp(const void *a, const void *b)
{
        return strcmp(*(const char *const *)a, *(const char *const *)b);
}

static void print_list(const kb_dlq_coll_t *c, const char *topic, size_t n_sel)
{
        const char **reasons = NULL;
        int64_t first = 0, last = 0, at;
        int have_at = 0;
        char t1[32], t2[32];
        size_t i, j, redriven = 0;

        for (i = 0; i < c->n; i++)
                redriven += c->v[i].redriven;
        printf("topic %s: %zu dead letter%s", topic, c->n,
               c->n == 1 ? "" : "s");
        if (n_sel)
                printf(" with reason %s (of %zu)", c->reasons[0], c->total);
        printf(", %zu redriven\n", redriven);
        for (i = 0; i < c->n; i++) {
                if (c->v[i].doc && !kb_json_get_i64(c->v[i].doc, "at", &at)) {
                        if (!have_at || at < first)
                                first = at;
                        if (!have_at || at > last)
                                last = at;
                        have_at = 1;
                }
        }
        if (have_at) {
                iso_utc(first, t1, sizeof(t1));
                iso_utc(last, t2, sizeof(t2));
                printf("time range: %s .. %s\n", t1, t2);
        }
        if (c->n)
                reasons = malloc(c->n * sizeof(*reasons));
        if (reasons) {
                for (i = 0; i < c->n; i++)
                        reasons[i] = kb_dlq_ent_reason(&c->v[i]);
                qsort(reasons, c->n, sizeof(*reasons), reason_cmp);
                printf("by reason:\n");
                for (i = 0; i < c->n; i = j) {
                        for (j = i; j < c->n && !strcmp(reasons[i], reasons[j]);
                             j++)
                                ;
                        printf("  %-28s %zu\n", reasons[i], j - i);
                }
                free(reasons);
        }
        if (!c->n)
                return;
        printf("\n%-12s %-20s %-28s %-36s %-9s %s\n", "PART:OFFSET", "AT",
               "REASON", "SHARE_ID", "STAGE", "REDRIVEN");
        for (i = 0; i < c->n; i++) {
                const kb_dlq_ent_t *e = &c->v[i];
                const char *sid = kb_dlq_ent_str(e, "share_id"),
                           *stage = kb_dlq_ent_str(e, "stage");
                char po[48], line[1024];

                if (e->doc && !kb_json_get_i64(e->doc, "at", &at))
                        iso_utc(at, t1, sizeof(t1));
                else
                        kb_strlcpy(t1, "-", sizeof(t1));
                kb_snprintf(po, sizeof(po), "%d:%lld", (int)e->partition,
                            (long long)e->offset);
                kb_snprintf(line, sizeof(line),
                            "%-12s %-20s %-28s %-36s %-9s %s\n", po, t1,
                            kb_dlq_ent_reason(e), sid ? sid : "-",
                            stage ? stage : "-", e->redriven ? "yes" : "-");
                kb_dlq_put_scrubbed(stdout, line);
        }
}

/* One record as a JSON object: where it is, its Kafka key and header,
 * whether it was redriven, and the dead letter itself without its input's
 * bytes (or its raw value when that is no JSON object). */
static json_object *ent_json(const kb_dlq_ent_t *e)
{
        json_object *o = json_object_new_object(), *d = NULL;

        if (!o)
                return NULL;
        if (e->doc && !(d = display_doc(e->doc)))
                goto fail;
        if (kb_json_add_i64(o, "partition", e->partition) ||
            kb_json_add_i64(o, "offset", e->offset) ||
            (e->ts_ms >= 0 && kb_json_add_i64(o, "timestamp_ms", e->ts_ms)) ||
            json_object_object_add(
                o, "key", e->key ? json_object_new_string(e->key) : NULL) ||
            json_object_object_add(
                o, "kb_reason",
                e->hdr_reason ? json_object_new_string(e->hdr_reason) : NULL) ||
            json_object_object_add(o, "redriven",
                                   json_object_new_boolean(e->redriven)))
                goto fail;
        if (json_object_object_add(o, "dead_letter", d))
                goto fail;
        d = NULL;
        if (e->raw && kb_json_add_str(o, "raw_value", e->raw))
                goto fail;
        return o;
fail:
        json_object_put(d);
        json_object_put(o);
        return NULL;
}

static int print_json_lines(const kb_dlq_coll_t *c)
{
        size_t i;

        for (i = 0; i < c->n; i++) {
                json_object *o = ent_json(&c->v[i]);
                if (!o)
                        return -1;
                kb_dlq_put_scrubbed(stdout, kb_json_str(o, NULL));
                fputc('\n', stdout);
                json_object_put(o);
        }
        return 0;
}

static int print_show(const kb_dlq_coll_t *c, const char *topic)
{
        size_t i;
        int64_t at;
        char t[32];

        for (i = 0; i < c->n; i++) {
                const kb_dlq_ent_t *e = &c->v[i];
                char head[1024];

                if (i)
                        printf("\n");
                kb_snprintf(head, sizeof(head),
                            "topic:      %s\nrecord:     %d:%lld\n"
                            "key:        %s\nkb-reason:  %s\n"
                            "redriven:   %s\n",
                            topic, (int)e->partition, (long long)e->offset,
                            e->key ? e->key : "(none)",
                            e->hdr_reason ? e->hdr_reason : "(none)",
                            e->redriven ? "yes" : "no");
                kb_dlq_put_scrubbed(stdout, head);
                if (e->doc && !kb_json_get_i64(e->doc, "at", &at)) {
                        iso_utc(at, t, sizeof(t));
                        printf("at:         %s\n", t);
                }
                if (e->doc) {
                        json_object *d = display_doc(e->doc);
                        if (!d)
                                return -1;
                        kb_dlq_put_scrubbed(
                            stdout, json_object_to_json_string_ext(
                                        d, JSON_C_TO_STRING_PRETTY |
                                               JSON_C_TO_STRING_SPACED |
                                               JSON_C_TO_STRING_NOSLASHESCAPE));
                        printf("\n");
                        json_object_put(d);
                } else {
                        printf("value (not a JSON object):\n");
                        kb_dlq_put_scrubbed(stdout, e->raw ? e->raw : "");
                        printf("\n");
                }
        }
        return 0;
}

/* "P:O" -> partition and offset. */
static int parse_pos(const char *s, int32_t *p, int64_t *o)
{
        const char *colon = strchr(s, ':');
        char part[16];
        int64_t v;

        if (!colon || (size_t)(colon - s) >= sizeof(part) || colon == s)
                return -1;
        memcpy(part, s, (size_t)(colon - s));
        part[colon - s] = '\0';
        if (kb_parse_i64(part, 0, INT32_MAX, &v) ||
            kb_parse_i64(colon + 1, 0, INT64_MAX, o))
                return -1;
        *p = (int32_t)v;
        return 0;
}

static int add_sel(const char **v, size_t *n, const char *s, const char *what)
{
        if (*n >= KB_DLQ_MAX_SEL) {
                fprintf(stderr, "dlq: at most %d %s options\n", KB_DLQ_MAX_SEL,
                        what);
                return -1;
        }
        v[(*n)++] = s;
        return 0;
}

int kb_cmd_dlq(int argc, char **argv)
{
        const char *sub, *path = NULL, *role = NULL, *pos = NULL, *topic;
        int json = 0, i, rc = KB_EXIT_OK, r, have_from = 0, have_to = 0;
        int64_t timeout_s = DLQ_TIMEOUT_S, v;
        kb_dlq_redrive_opts_t ro;
        char errstr[1024];
        kb_conf_t *conf = NULL;
        kb_dlq_coll_t c;

        memset(&c, 0, sizeof(c));
        memset(&ro, 0, sizeof(ro));
        ro.batch = REDRIVE_BATCH;
        c.partition = -1;
        c.to = INT64_MAX;
        if (argc < 2 || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") ||
            !strcmp(argv[1], "help")) {
                usage(argc < 2 ? stderr : stdout);
                return argc < 2 ? KB_EXIT_USAGE : KB_EXIT_OK;
        }
        sub = argv[1];
        if (strcmp(sub, "list") && strcmp(sub, "show") &&
            strcmp(sub, "redrive")) {
                fprintf(stderr, "dlq: unknown subcommand '%s'\n", sub);
                usage(stderr);
                return KB_EXIT_USAGE;
        }
        for (i = 2; i < argc; i++) {
                const char *a = argv[i];
                int has = i + 1 < argc, redr = !strcmp(sub, "redrive");

                if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
                        usage(stdout);
                        return KB_EXIT_OK;
                } else if ((!strcmp(a, "-c") || !strcmp(a, "--config")) &&
                           has) {
                        path = argv[++i];
                } else if ((!strcmp(a, "--role") || !strcmp(a, "--daemon")) &&
                           has) {
                        role = argv[++i];
                        if (strcmp(role, "issuer") &&
                            strcmp(role, "importer")) {
                                fprintf(stderr,
                                        "dlq: %s takes issuer or "
                                        "importer\n",
                                        a);
                                return KB_EXIT_USAGE;
                        }
                } else if (!strcmp(a, "-X") && has) {
                        i++;
                } else if (!strcmp(a, "--timeout") && has) {
                        if (kb_parse_i64(argv[++i], 1, 3600, &timeout_s)) {
                                fprintf(stderr, "dlq: --timeout takes "
                                                "seconds, 1..3600\n");
                                return KB_EXIT_USAGE;
                        }
                } else if (strcmp(sub, "show") && !strcmp(a, "--reason") &&
                           has) {
                        if ((!redr && c.n_reasons) ||
                            add_sel(c.reasons, &c.n_reasons, argv[++i],
                                    "--reason")) {
                                if (!redr)
                                        fprintf(stderr, "dlq list: one "
                                                        "--reason\n");
                                return KB_EXIT_USAGE;
                        }
                } else if (!strcmp(sub, "list") && !strcmp(a, "--json")) {
                        json = 1;
                } else if (!strcmp(sub, "show") && !strcmp(a, "--offset") &&
                           has) {
                        pos = argv[++i];
                        if (parse_pos(pos, &c.partition, &c.from)) {
                                fprintf(stderr,
                                        "dlq show: --offset takes "
                                        "PARTITION:OFFSET (e.g. 0:42), not "
                                        "'%s'\n",
                                        pos);
                                return KB_EXIT_USAGE;
                        }
                        c.to = c.from;
                } else if ((redr || !strcmp(sub, "show")) &&
                           !strcmp(a, "--share-id") && has) {
                        if ((!redr && c.n_share_ids) ||
                            add_sel(c.share_ids, &c.n_share_ids, argv[++i],
                                    "--share-id")) {
                                if (!redr)
                                        fprintf(stderr, "dlq show: one "
                                                        "--share-id\n");
                                return KB_EXIT_USAGE;
                        }
                } else if (redr && !strcmp(a, "--partition") && has) {
                        if (kb_parse_i64(argv[++i], 0, INT32_MAX, &v)) {
                                fprintf(stderr, "dlq redrive: --partition "
                                                "takes a partition number\n");
                                return KB_EXIT_USAGE;
                        }
                        c.partition = (int32_t)v;
                } else if (redr &&
                           (!strcmp(a, "--from-offset") ||
                            !strcmp(a, "--to-offset")) &&
                           has) {
                        if (kb_parse_i64(argv[++i], 0, INT64_MAX, &v)) {
                                fprintf(stderr,
                                        "dlq redrive: %s takes an offset\n", a);
                                return KB_EXIT_USAGE;
                        }
                        if (a[2] == 'f')
                                c.from = v, have_from = 1;
                        else
                                c.to = v, have_to = 1;
                } else if (redr && !strcmp(a, "--dry-run")) {
                        ro.dry_run = 1;
                } else if (redr && !strcmp(a, "--batch") && has) {
                        if (kb_parse_i64(argv[++i], 1, 1000, &ro.batch)) {
                                fprintf(stderr, "dlq redrive: --batch takes "
                                                "1..1000\n");
                                return KB_EXIT_USAGE;
                        }
                } else {
                        fprintf(stderr,
                                "dlq %s: unexpected argument '%s' (see "
                                "kyc-bridge dlq --help)\n",
                                sub, a);
                        return KB_EXIT_USAGE;
                }
        }
        if (!path) {
                fprintf(stderr, "dlq %s: -c FILE is required\n", sub);
                return KB_EXIT_USAGE;
        }
        if (!strcmp(sub, "show") && !pos == !c.n_share_ids) {
                fprintf(stderr, "dlq show: give one of --offset "
                                "PARTITION:OFFSET or --share-id ID\n");
                return KB_EXIT_USAGE;
        }
        if (!strcmp(sub, "redrive")) {
                if ((have_from || have_to) && c.partition < 0) {
                        fprintf(stderr, "dlq redrive: --from-offset and "
                                        "--to-offset need --partition\n");
                        return KB_EXIT_USAGE;
                }
                if (c.from > c.to) {
                        fprintf(stderr, "dlq redrive: --from-offset is past "
                                        "--to-offset\n");
                        return KB_EXIT_USAGE;
                }
                if (!c.n_reasons && !c.n_share_ids && c.partition < 0) {
                        fprintf(stderr, "dlq redrive: select what to redrive: "
                                        "--reason R, --share-id ID and/or "
                                        "--partition P [--from-offset A] "
                                        "[--to-offset B]\n");
                        return KB_EXIT_USAGE;
                }
                if (kb_cmd_dlq_redrive_hook(&ro.hook))
                        return KB_EXIT_USAGE;
        }
        kb_log_setup(KB_LOG_ERROR, 0, 2, "kyc-bridge");
        conf = kb_conf_new();
        if (!conf) {
                fprintf(stderr, "dlq: out of memory\n");
                return KB_EXIT_FAIL;
        }
        if (kb_cmd_conf_load(conf, path, argc, argv, 2, errstr,
                             sizeof(errstr)) != KB_OK) {
                fprintf(stderr, "%s\n", errstr);
                rc = KB_EXIT_USAGE;
                goto out;
        }
        if (kb_conf_check(conf, 0, errstr, sizeof(errstr))) {
                fprintf(stderr, "%s\n", errstr);
                rc = KB_EXIT_USAGE;
                goto out;
        }
        if (!role) {
                int is = scope_used(conf, KB_SCOPE_ISSUER),
                    im = scope_used(conf, KB_SCOPE_IMPORTER);
                if (is == im) {
                        fprintf(stderr,
                                "dlq %s: %s sets %s: cannot tell whose "
                                "dead-letter topic to read; give --role "
                                "issuer or --role importer\n",
                                sub, path,
                                is ? "both issuer and importer options"
                                   : "neither issuer nor importer options");
                        rc = KB_EXIT_USAGE;
                        goto out;
                }
                role = is ? "issuer" : "importer";
        }
        topic =
            kb_conf_get(conf, !strcmp(role, "issuer") ? "issuer.dlq_topic"
                                                      : "importer.dlq_topic");
        if (!topic || !*topic) {
                fprintf(stderr, "dlq %s: %s.dlq_topic is empty\n", sub, role);
                rc = KB_EXIT_USAGE;
                goto out;
        }
        c.topic = topic;
        c.marks.topic = topic;
        if (!strcmp(sub, "redrive")) {
                ro.role = role;
                ro.topic = topic;
                ro.timeout_ms = (int)(timeout_s * 1000);
                rc = kb_cmd_dlq_redrive(conf, &c, &ro);
                goto out;
        }
        r = kb_dlq_read(conf, topic, -1, 0, 0, (int)(timeout_s * 1000),
                        kb_dlq_coll_cb, &c, errstr, sizeof(errstr));
        if (r == KB_ERR_CONFIG) {
                fprintf(stderr, "dlq %s: %s\n", sub, errstr);
                rc = KB_EXIT_USAGE;
                goto out;
        }
        if (r != KB_OK || c.oom) {
                fprintf(stderr, "dlq %s: %s\n", sub,
                        r == KB_OK ? "out of memory" : errstr);
                rc = KB_EXIT_FAIL;
                goto out;
        }
        kb_dlq_coll_done(&c);
        if (!strcmp(sub, "list")) {
                if (json ? print_json_lines(&c)
                         : (print_list(&c, topic, c.n_reasons), 0)) {
                        fprintf(stderr, "dlq list: out of memory\n");
                        rc = KB_EXIT_FAIL;
                }
                goto out;
        }
        if (!c.n) {
                if (pos)
                        fprintf(stderr,
                                "dlq show: no dead letter at %s in topic %s\n",
                                pos, topic);
                else
                        fprintf(stderr,
                                "dlq show: no dead letter with share_id %s in "
                                "topic %s\n",
                                c.share_ids[0], topic);
                rc = KB_EXIT_FAIL;
                goto out;
        }
        if (print_show(&c, topic)) {
                fprintf(stderr, "dlq show: out of memory\n");
                rc = KB_EXIT_FAIL;
        }
out:
        if (fflush(stdout) && rc == KB_EXIT_OK)
                rc = KB_EXIT_FAIL;
        kb_dlq_coll_free(&c);
        kb_conf_destroy(conf);
        return rc;
}
