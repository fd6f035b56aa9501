/* cmd_dlq.c -- "kyc-bridge dlq": list and show a daemon's dead letters */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cmd.h"
#include "conf.h"
#include "dlq_read.h"
#include "json.h"
#include "log.h"
#include "util.h"

#define DLQ_TIMEOUT_S 30

static void usage(FILE *fp)
{
        fprintf(fp,
                "Usage: kyc-bridge dlq list -c FILE [--role issuer|importer] "
                "[--reason R] [--json]\n"
                "                           [--timeout S] [-X key=value]...\n"
                "       kyc-bridge dlq show -c FILE [--role issuer|importer] "
                "(--offset P:O | --share-id ID)\n"
                "                           [--timeout S] [-X key=value]...\n\n"
                "  list   read the whole dead-letter topic (read_committed, up "
                "to the end\n"
                "         found at start): a count per reason, the time range "
                "(first/last\n"
                "         \"at\", UTC) and one line per record: "
                "partition:offset, at,\n"
                "         reason, share_id, stage. --reason R keeps that "
                "reason only;\n"
                "         --json prints one JSON object per record instead\n"
                "  show   print one dead letter (every member) by "
                "partition:offset, or\n"
                "         every dead letter of a share_id; exit 1 when there "
                "is none\n\n"
                "  The topic is issuer.dlq_topic or importer.dlq_topic of "
                "FILE: --role\n"
                "  picks it; without --role, the role FILE's options imply "
                "(issuer or\n"
                "  importer options, not both). --timeout S: give up after S "
                "seconds\n"
                "  (default %d; broker unreachable). Exit: 0 ok, 1 not found "
                "or Kafka\n"
                "  failure, 2 usage or configuration error.\n",
                DLQ_TIMEOUT_S);
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
static void put_scrubbed(FILE *fp, const char *s)
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

typedef struct {
        int32_t partition;
        int64_t offset, ts_ms;
        char *key, *hdr_reason, *raw; /* raw: value when not a JSON object */
        json_object *doc;             /* own reference */
} ent_t;

typedef struct {
        /* filters */
        const char *reason;
        const char *share_id;
        int32_t partition;
        int64_t offset;
        /* collected */
        ent_t *v;
        size_t n, cap;
        size_t total;
        int oom;
} coll_t;

static const char *ent_str(const ent_t *e, const char *member)
{
        const char *s = e->doc ? kb_json_get_str(e->doc, member) : NULL;

        return s;
}

static const char *ent_reason(const ent_t *e)
{
        const char *s = ent_str(e, "reason");

        return s ? s : e->hdr_reason ? e->hdr_reason : "(unknown)";
}

static char *dup0(const char *s)
{
        return s ? strdup(s) : NULL;
}

static int collect_cb(void *opaque, const kb_dlq_rec_t *rec)
{
        coll_t *c = opaque;
        const char *reason, *sid;
        ent_t *e;

        c->total++;
        if (c->partition >= 0) {
                /* show by offset: the first record read is the one asked
                 * for, or the asked offset holds none (marker, aborted) */
                if (rec->partition != c->partition || rec->offset != c->offset)
                        return 1;
        }
        reason = rec->doc ? kb_json_get_str(rec->doc, "reason") : NULL;
        if (!reason)
                reason = rec->reason ? rec->reason : "(unknown)";
        if (c->reason && strcmp(c->reason, reason))
                return 0;
        if (c->share_id) {
                sid = rec->doc ? kb_json_get_str(rec->doc, "share_id") : NULL;
                if (!(sid && !strcmp(sid, c->share_id)) &&
                    !(rec->key && !strcmp(rec->key, c->share_id)))
                        return 0;
        }
        if (c->n == c->cap) {
                size_t nc = c->cap ? c->cap * 2 : 64;
                ent_t *nv = realloc(c->v, nc * sizeof(*nv));
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
        return c->partition >= 0; /* by offset: one record is all */
}

static void coll_free(coll_t *c)
{
        size_t i;

        for (i = 0; i < c->n; i++) {
                free(c->v[i].key);
                free(c->v[i].hdr_reason);
                free(c->v[i].raw);
                json_object_put(c->v[i].doc);
        }
        free(c->v);
}

static int ent_cmp(const void *a, const void *b)
{
        const ent_t *x = a, *y = b;

        if (x->partition != y->partition)
                return x->partition < y->partition ? -1 : 1;
        return x->offset < y->offset ? -1 : x->offset > y->offset;
}

static int reason_cmp(const void *a, const void *b)
{
        return strcmp(*(const char *const *)a, *(const char *const *)b);
}

static void print_list(const coll_t *c, const char *topic)
{
        const char **reasons = NULL;
        int64_t first = 0, last = 0, at;
        int have_at = 0;
        char t1[32], t2[32];
        size_t i, j;

        printf("topic %s: %zu dead letter%s", topic, c->n,
               c->n == 1 ? "" : "s");
        if (c->reason)
                printf(" with reason %s (of %zu)", c->reason, c->total);
        printf("\n");
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
                        reasons[i] = ent_reason(&c->v[i]);
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
        printf("\n%-12s %-20s %-28s %-36s %s\n", "PART:OFFSET", "AT", "REASON",
               "SHARE_ID", "STAGE");
        for (i = 0; i < c->n; i++) {
                const ent_t *e = &c->v[i];
                const char *sid = ent_str(e, "share_id"),
                           *stage = ent_str(e, "stage");
                char po[48], line[1024];

                if (e->doc && !kb_json_get_i64(e->doc, "at", &at))
                        iso_utc(at, t1, sizeof(t1));
                else
                        kb_strlcpy(t1, "-", sizeof(t1));
                kb_snprintf(po, sizeof(po), "%d:%lld", (int)e->partition,
                            (long long)e->offset);
                kb_snprintf(line, sizeof(line), "%-12s %-20s %-28s %-36s %s\n",
                            po, t1, ent_reason(e), sid ? sid : "-",
                            stage ? stage : "-");
                put_scrubbed(stdout, line);
        }
}

/* One record as a JSON object: where it is, its Kafka key and header, and
 * the dead letter itself (or its raw value when that is no JSON object). */
static json_object *ent_json(const ent_t *e)
{
        json_object *o = json_object_new_object();

        if (!o)
                return NULL;
        if (kb_json_add_i64(o, "partition", e->partition) ||
            kb_json_add_i64(o, "offset", e->offset) ||
            (e->ts_ms >= 0 && kb_json_add_i64(o, "timestamp_ms", e->ts_ms)) ||
            json_object_object_add(
                o, "key", e->key ? json_object_new_string(e->key) : NULL) ||
            json_object_object_add(
                o, "kb_reason",
                e->hdr_reason ? json_object_new_string(e->hdr_reason) : NULL) ||
            json_object_object_add(o, "dead_letter",
                                   e->doc ? json_object_get(e->doc) : NULL) ||
            (e->raw && kb_json_add_str(o, "raw_value", e->raw))) {
                json_object_put(o);
                return NULL;
        }
        return o;
}

static int print_json_lines(const coll_t *c)
{
        size_t i;

        for (i = 0; i < c->n; i++) {
                json_object *o = ent_json(&c->v[i]);
                if (!o)
                        return -1;
                put_scrubbed(stdout, kb_json_str(o, NULL));
                fputc('\n', stdout);
                json_object_put(o);
        }
        return 0;
}

static int print_show(const coll_t *c, const char *topic)
{
        size_t i;
        int64_t at;
        char t[32];

        for (i = 0; i < c->n; i++) {
                const ent_t *e = &c->v[i];
                char head[1024];

                if (i)
                        printf("\n");
                kb_snprintf(head, sizeof(head),
                            "topic:      %s\nrecord:     %d:%lld\n"
                            "key:        %s\nkb-reason:  %s\n",
                            topic, (int)e->partition, (long long)e->offset,
                            e->key ? e->key : "(none)",
                            e->hdr_reason ? e->hdr_reason : "(none)");
                put_scrubbed(stdout, head);
                if (e->doc && !kb_json_get_i64(e->doc, "at", &at)) {
                        iso_utc(at, t, sizeof(t));
                        printf("at:         %s\n", t);
                }
                if (e->doc) {
                        put_scrubbed(
                            stdout,
                            json_object_to_json_string_ext(
                                e->doc, JSON_C_TO_STRING_PRETTY |
                                            JSON_C_TO_STRING_SPACED |
                                            JSON_C_TO_STRING_NOSLASHESCAPE));
                        printf("\n");
                } else {
                        printf("value (not a JSON object):\n");
                        put_scrubbed(stdout, e->raw ? e->raw : "");
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

int kb_cmd_dlq(int argc, char **argv)
{
        const char *sub, *path = NULL, *role = NULL, *pos = NULL, *topic;
        int json = 0, i, rc = KB_EXIT_OK, r;
        int64_t timeout_s = DLQ_TIMEOUT_S;
        char errstr[1024];
        kb_conf_t *conf = NULL;
        coll_t c;

        memset(&c, 0, sizeof(c));
        c.partition = -1;
        if (argc < 2 || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") ||
            !strcmp(argv[1], "help")) {
                usage(argc < 2 ? stderr : stdout);
                return argc < 2 ? KB_EXIT_USAGE : KB_EXIT_OK;
        }
        sub = argv[1];
        if (strcmp(sub, "list") && strcmp(sub, "show")) {
                fprintf(stderr, "dlq: unknown subcommand '%s'\n", sub);
                usage(stderr);
                return KB_EXIT_USAGE;
        }
        for (i = 2; i < argc; i++) {
                const char *a = argv[i];
                int has = i + 1 < argc;

                if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
                        usage(stdout);
                        return KB_EXIT_OK;
                } else if ((!strcmp(a, "-c") || !strcmp(a, "--config")) &&
                           has) {
                        path = argv[++i];
                } else if (!strcmp(a, "--role") && has) {
                        role = argv[++i];
                        if (strcmp(role, "issuer") &&
                            strcmp(role, "importer")) {
                                fprintf(stderr, "dlq: --role takes issuer or "
                                                "importer\n");
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
                } else if (!strcmp(sub, "list") && !strcmp(a, "--reason") &&
                           has) {
                        c.reason = argv[++i];
                } else if (!strcmp(sub, "list") && !strcmp(a, "--json")) {
                        json = 1;
                } else if (!strcmp(sub, "show") && !strcmp(a, "--offset") &&
                           has) {
                        pos = argv[++i];
                        if (parse_pos(pos, &c.partition, &c.offset)) {
                                fprintf(stderr,
                                        "dlq show: --offset takes "
                                        "PARTITION:OFFSET (e.g. 0:42), not "
                                        "'%s'\n",
                                        pos);
                                return KB_EXIT_USAGE;
                        }
                } else if (!strcmp(sub, "show") && !strcmp(a, "--share-id") &&
                           has) {
                        c.share_id = argv[++i];
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
        if (!strcmp(sub, "show") && !pos == !c.share_id) {
                fprintf(stderr, "dlq show: give one of --offset "
                                "PARTITION:OFFSET or --share-id ID\n");
                return KB_EXIT_USAGE;
        }
        kb_log_setup(KB_LOG_ERROR, 0, 2, "kyc-bridge");
        conf = kb_conf_new();
        if (!conf) {
                fprintf(stderr, "dlq: out of memory\n");
                return KB_EXIT_FAIL;
        }
        if (kb_conf_load_file(conf, path, errstr, sizeof(errstr)) != KB_OK) {
                fprintf(stderr, "%s\n", errstr);
                rc = KB_EXIT_USAGE;
                goto out;
        }
        for (i = 2; i < argc; i++) {
                if (!strcmp(argv[i], "-X") && i + 1 < argc &&
                    kb_conf_set_kv(conf, argv[++i], errstr, sizeof(errstr))) {
                        fprintf(stderr, "%s\n", errstr);
                        rc = KB_EXIT_USAGE;
                        goto out;
                }
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
        r = kb_dlq_read(conf, topic, c.partition, c.offset,
                        (int)(timeout_s * 1000), collect_cb, &c, errstr,
                        sizeof(errstr));
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
        qsort(c.v, c.n, sizeof(*c.v), ent_cmp);
        if (!strcmp(sub, "list")) {
                if (json ? print_json_lines(&c) : (print_list(&c, topic), 0)) {
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
                                c.share_id, topic);
                rc = KB_EXIT_FAIL;
                goto out;
        }
        print_show(&c, topic);
out:
        if (fflush(stdout) && rc == KB_EXIT_OK)
                rc = KB_EXIT_FAIL;
        coll_free(&c);
        kb_conf_destroy(conf);
        return rc;
}
