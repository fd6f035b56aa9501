/* cmd_dlq_redrive.c -- "kyc-bridge dlq redrive": judge the selected dead
 * letters, put the inputs back in batches (bridge/kafka/dlq_redrive.c) */
#include <signal.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cmd.h"
#include "cmd_dlq.h"
#include "dlq.h"
#include "json.h"
#include "kyc_bridge.h"
#include "util.h"

/*
 * Test hook, for tests/blackbox/test_dlq.py only, compiled only into
 * builds with KB_TEST_HOOKS (KB_BUILD_TESTS=ON; never a demo, Docker or
 * release build -- there a set variable is ignored, with a warning). With
 * KB_TEST_REDRIVE_KILL=before-commit:N (or after-commit:N) in the
 * environment the process kills itself with SIGKILL inside its Nth
 * transaction once every record of it reached the broker (or right after
 * the Nth commit) -- an interrupted run, at a known point; with
 * stop-before-txn:N it stops itself (SIGSTOP) before it begins its Nth
 * transaction, after it read and judged the dead letters, until a SIGCONT
 * -- a run overtaken by another. Any other value is a usage error, and a
 * set hook is announced on stderr, so it is never on by accident.
 */
int kb_cmd_dlq_redrive_hook(kb_dlq_hook_t *hook)
{
        const char *v = getenv(KB_DLQ_HOOK_ENV);

        memset(hook, 0, sizeof(*hook));
        if (!v)
                return 0;
#ifdef KB_TEST_HOOKS
        {
                static const struct {
                        const char *name;
                        size_t off;
                } kinds[] = {
                        { "before-commit:",
                          offsetof(kb_dlq_hook_t, kill_before_commit) },
                        { "after-commit:",
                          offsetof(kb_dlq_hook_t, kill_after_commit) },
                        { "stop-before-txn:",
                          offsetof(kb_dlq_hook_t, stop_before_txn) },
                };
                size_t i, len;
                int64_t n;

                for (i = 0; i < sizeof(kinds) / sizeof(kinds[0]); i++) {
                        len = strlen(kinds[i].name);
                        if (!strncmp(v, kinds[i].name, len) &&
                            !kb_parse_i64(v + len, 1, 1000000, &n)) {
                                *(int *)((char *)hook + kinds[i].off) = (int)n;
                                break;
                        }
                }
                if (i == sizeof(kinds) / sizeof(kinds[0])) {
                        fprintf(stderr,
                                "dlq redrive: %s (a test hook) takes "
                                "before-commit:N, after-commit:N or "
                                "stop-before-txn:N\n",
                                KB_DLQ_HOOK_ENV);
                        return -1;
                }
                fprintf(stderr,
                        "dlq redrive: TEST HOOK %s=%s is set: this run "
                        "%s itself\n",
                        KB_DLQ_HOOK_ENV, v,
                        hook->stop_before_txn ? "stops" : "kills");
        }
#else
        fprintf(stderr,
                "dlq redrive: warning: %s is set but ignored: this build "
                "has no test hooks\n",
                KB_DLQ_HOOK_ENV);
#endif
        return 0;
}

#ifdef KB_TEST_HOOKS
static void before_commit_cb(void *opaque, int txn, size_t n)
{
        const kb_dlq_hook_t *hook = opaque;

        (void)n;
        if (hook->kill_before_commit == txn) {
                fflush(stdout);
                raise(SIGKILL);
        }
}
#define BEFORE_COMMIT before_commit_cb
#else
#define BEFORE_COMMIT NULL
#endif

/* One selected dead letter: what the redrive does with it. */
typedef struct {
        const kb_dlq_ent_t *e;
        const char *why; /* refused: why; NULL: redrive */
        const char *advice;
        kb_dlq_input_t in;
        /* its source: the input's topic, partition and offset */
        const char *topic;
        int64_t partition, offset;
        int has_src; /* all three known */
        long dup_of; /* same input as picks[dup_of]: marker only; -1 */
        int emitted; /* put into the item list */
        char err[160];
} pick_t;

static int is_input_topic(char *const *inputs, const char *t)
{
        size_t i;

        for (i = 0; t && inputs && inputs[i]; i++)
                if (!strcmp(inputs[i], t))
                        return 1;
        return 0;
}

/* Reads the dead letter's member source into @p p. */
static void read_source(pick_t *p)
{
        json_object *src = NULL;

        p->has_src = 0;
        p->partition = p->offset = -1;
        if (!p->e->doc ||
            !json_object_object_get_ex(p->e->doc, "source", &src) || !src)
                return;
        p->topic = kb_json_get_str(src, "topic");
        if (kb_json_get_i64(src, "partition", &p->partition) ||
            p->partition < 0 || p->partition > INT32_MAX)
                p->partition = -1;
        if (kb_json_get_i64(src, "offset", &p->offset) || p->offset < 0)
                p->offset = -1;
        p->has_src = p->topic && p->partition >= 0 && p->offset >= 0;
}

/* Decides for @p p: redrive or refuse (p->why). -1 when out of memory. */
static int judge(pick_t *p, char *const *inputs)
{
        const kb_dlq_reason_t *rr = kb_dlq_reason(kb_dlq_ent_reason(p->e));
        json_object *in = NULL;
        int r;

        if (!rr) {
                p->why = "a reason this version does not know";
                p->advice = "upgrade kyc-bridge";
                return 0;
        }
        if (!rr->redrivable) {
                p->why = "can never succeed by redriving";
                p->advice = rr->advice;
                return 0;
        }
        if (!p->e->doc || !json_object_object_get_ex(p->e->doc, "input", &in) ||
            !in) {
                p->why = "its input was not kept (written by an older "
                         "version)";
                p->advice = "have the input sent again";
                return 0;
        }
        if (!is_input_topic(inputs, p->topic)) {
                p->why = "its source topic is not an input topic of this "
                         "daemon's configuration";
                p->advice = "check -c FILE and --role";
                return 0;
        }
        if (p->partition < 0) {
                /* never guess a partition: another one breaks the order
                 * of the share_id's records */
                p->why = "source partition missing";
                p->advice = "have the input sent again";
                return 0;
        }
        r = kb_dlq_input_decode(in, &p->in, p->err, sizeof(p->err));
        if (r == KB_ERR_NOMEM)
                return -1;
        if (r != KB_OK) {
                p->why = p->err;
                p->advice = "have the input sent again";
        }
        return 0;
}

/* Orders pick indexes by source (topic, partition, offset), then by the
 * dead letter's position. */
static const pick_t *sort_picks;

static int src_cmp(const void *a, const void *b)
{
        const pick_t *x = &sort_picks[*(const size_t *)a],
                     *y = &sort_picks[*(const size_t *)b];
        int c;

        if (x->has_src != y->has_src)
                return x->has_src ? -1 : 1;
        if (x->has_src) {
                if ((c = strcmp(x->topic, y->topic)))
                        return c;
                if (x->partition != y->partition)
                        return x->partition < y->partition ? -1 : 1;
                if (x->offset != y->offset)
                        return x->offset < y->offset ? -1 : 1;
        }
        if (x->e->partition != y->e->partition)
                return x->e->partition < y->e->partition ? -1 : 1;
        return x->e->offset < y->e->offset ? -1 : x->e->offset > y->e->offset;
}

static int same_src(const pick_t *x, const pick_t *y)
{
        return x->has_src && y->has_src && !strcmp(x->topic, y->topic) &&
               x->partition == y->partition && x->offset == y->offset;
}

/*
 * Dead letters for one input (pipeline.at_least_once can write two):
 * the input goes back once. Within each group of the same source, the
 * first dead letter already redriven -- or else the first to redrive --
 * carries the input; every other one to redrive gets only its marker
 * (dup_of). Returns how many. -1 when out of memory.
 */
static long find_dups(pick_t *picks, size_t n)
{
        size_t *ix = malloc((n ? n : 1) * sizeof(*ix)), i, j, k;
        long dups = 0;

        if (!ix)
                return -1;
        for (i = 0; i < n; i++)
                ix[i] = i;
        sort_picks = picks;
        qsort(ix, n, sizeof(*ix), src_cmp);
        for (i = 0; i < n; i = j) {
                long first = -1;

                for (j = i + 1; j < n && same_src(&picks[ix[i]], &picks[ix[j]]);
                     j++)
                        ;
                for (k = i; k < j && first < 0; k++)
                        if (picks[ix[k]].e->redriven)
                                first = (long)ix[k];
                for (k = i; k < j && first < 0; k++)
                        if (!picks[ix[k]].why)
                                first = (long)ix[k];
                for (k = i; k < j; k++) {
                        pick_t *p = &picks[ix[k]];

                        if ((long)ix[k] != first && !p->e->redriven &&
                            !p->why) {
                                p->dup_of = first;
                                dups++;
                        }
                }
        }
        free(ix);
        return dups;
}

static void print_refused(const pick_t *p)
{
        const char *sid = kb_dlq_ent_str(p->e, "share_id");
        char line[1024];

        kb_snprintf(line, sizeof(line),
                    "refused %d:%lld share_id %s reason %s: %s; instead: %s\n",
                    (int)p->e->partition, (long long)p->e->offset,
                    sid ? sid : "-", kb_dlq_ent_reason(p->e), p->why,
                    p->advice);
        kb_dlq_put_scrubbed(stdout, line);
}

static void print_done(const pick_t *picks, const pick_t *p, const char *what)
{
        const char *sid = kb_dlq_ent_str(p->e, "share_id");
        char line[1024], also[96] = "";

        if (p->dup_of >= 0)
                kb_snprintf(also, sizeof(also),
                            " (the same input as %d:%lld: marked only)",
                            (int)picks[p->dup_of].e->partition,
                            (long long)picks[p->dup_of].e->offset);
        kb_snprintf(line, sizeof(line),
                    "%s %d:%lld share_id %s reason %s -> %s [%lld]%s\n", what,
                    (int)p->e->partition, (long long)p->e->offset,
                    sid ? sid : "-", kb_dlq_ent_reason(p->e), p->topic,
                    (long long)p->partition, also);
        kb_dlq_put_scrubbed(stdout, line);
}

static void set_item(kb_dlq_redrive_item_t *it, const pick_t *p)
{
        it->dlq_partition = p->e->partition;
        it->dlq_offset = p->e->offset;
        it->share_id = kb_dlq_ent_str(p->e, "share_id");
        it->topic = p->topic;
        it->partition = (int32_t)p->partition;
        it->marker_only = p->dup_of >= 0;
        if (it->marker_only)
                return;
        it->key = p->in.key;
        it->key_len = p->in.key_len;
        it->value = p->in.value;
        it->value_len = p->in.value_len;
        it->headers = p->in.headers;
}

/* The daemon's input topics into *@p out (NULL-terminated,
 * kb_conf_list_free()). Returns KB_EXIT_OK, or an exit status with the
 * reason on stderr. */
static int input_topics(kb_conf_t *conf, const char *role, char ***out)
{
        int issuer = !strcmp(role, "issuer");
        const char *name =
            issuer ? "issuer.request_topic" : "importer.token_topics";
        const char *t = kb_conf_get(conf, name);
        char **inputs;

        *out = NULL;
        if (!t || !*t) {
                fprintf(stderr,
                        "dlq redrive: %s is empty: no input topic to "
                        "redrive to\n",
                        name);
                return KB_EXIT_USAGE;
        }
        if (issuer) {
                inputs = calloc(2, sizeof(*inputs));
                if (inputs && !(inputs[0] = strdup(t))) {
                        free(inputs);
                        inputs = NULL;
                }
        } else {
                inputs = kb_conf_get_list(conf, name, NULL);
        }
        if (!inputs) {
                fprintf(stderr, "dlq redrive: out of memory\n");
                return KB_EXIT_FAIL;
        }
        *out = inputs;
        return KB_EXIT_OK;
}

int kb_cmd_dlq_redrive(kb_conf_t *conf, kb_dlq_coll_t *c,
                       const kb_dlq_redrive_opts_t *o)
{
        char errstr[1024], txid[KB_DLQ_REDRIVE_TXID_MAX], by[64];
        char **inputs = NULL;
        kb_dlq_redrive_item_t *items = NULL;
        kb_dlq_redrive_t *rd = NULL;
        pick_t *picks = NULL;
        size_t *pick_of = NULL, i, j, k, n_ok = 0, n_ref = 0, n_skip = 0,
               n_items = 0, n_txn = 0;
        long dups = 0;
        int rc = KB_EXIT_OK, r, err = 0;

        if ((rc = input_topics(conf, o->role, &inputs)) != KB_EXIT_OK)
                return rc;
        if (kb_dlq_redrive_txid(o->topic, txid, sizeof(txid))) {
                fprintf(stderr,
                        "dlq redrive: topic name too long for a "
                        "transactional id: %s\n",
                        o->topic);
                rc = KB_EXIT_USAGE;
                goto out;
        }
        kb_snprintf(by, sizeof(by), "kyc-bridge %s", KB_VERSION_STR);
        /* fence an earlier run first (its open transaction is aborted),
         * then read which dead letters are marked: so its markers are
         * final when read */
        if (!o->dry_run) {
                rd = kb_dlq_redrive_new(conf, txid, o->timeout_ms, &err, errstr,
                                        sizeof(errstr));
                if (!rd) {
                        fprintf(stderr, "dlq redrive: %s\n", errstr);
                        rc =
                            err == KB_ERR_CONFIG ? KB_EXIT_USAGE : KB_EXIT_FAIL;
                        goto out;
                }
        }
        r = kb_dlq_read(conf, o->topic, -1, 0, KB_DLQ_READ_ALL_COMMITTED,
                        o->timeout_ms, kb_dlq_coll_cb, c, errstr,
                        sizeof(errstr));
        if (r != KB_OK || c->oom) {
                fprintf(stderr, "dlq redrive: %s\n",
                        r == KB_OK ? "out of memory" : errstr);
                rc = r == KB_ERR_CONFIG ? KB_EXIT_USAGE : KB_EXIT_FAIL;
                goto out;
        }
        kb_dlq_coll_done(c);
        if (!c->n) {
                printf("topic %s: no dead letter matches; nothing to "
                       "redrive\n",
                       o->topic);
                goto out;
        }
        picks = calloc(c->n, sizeof(*picks));
        items = calloc(c->n, sizeof(*items));
        pick_of = calloc(c->n, sizeof(*pick_of));
        if (!picks || !items || !pick_of)
                goto oom;
        for (i = 0; i < c->n; i++) {
                picks[i].e = &c->v[i];
                picks[i].dup_of = -1;
                read_source(&picks[i]);
                if (c->v[i].redriven) {
                        n_skip++;
                        continue;
                }
                if (judge(&picks[i], inputs))
                        goto oom;
                if (picks[i].why) {
                        print_refused(&picks[i]);
                        n_ref++;
                        continue;
                }
                n_ok++;
        }
        if ((dups = find_dups(picks, c->n)) < 0)
                goto oom;
        printf("topic %s: %zu selected: %zu to redrive, %zu already "
               "redriven, %zu refused",
               o->topic, c->n, n_ok, n_skip, n_ref);
        if (dups)
                printf(" (%ld of them the same input as another: marked "
                       "only, the input goes back once)",
                       dups);
        printf("\n");
        /* the items, each input's other dead letters right after it (in
         * its transaction) */
        for (i = 0; i < c->n; i++) {
                pick_t *p = &picks[i];

                if (p->e->redriven || p->why || p->emitted ||
                    (p->dup_of >= 0 && !picks[p->dup_of].e->redriven))
                        continue;
                for (j = i; j < c->n; j++) {
                        pick_t *q = &picks[j];

                        if (j != i && (q->dup_of != (long)i || q->emitted))
                                continue;
                        q->emitted = 1;
                        if (o->dry_run) {
                                print_done(picks, q, "would redrive");
                                continue;
                        }
                        set_item(&items[n_items], q);
                        pick_of[n_items++] = j;
                }
        }
        /* n_items items in transactions of o->batch (one input's dead
         * letters are never split) */
        for (i = 0; i < n_items; i = j) {
                int txn = (int)++n_txn;

                j = i + (size_t)o->batch < n_items ? i + (size_t)o->batch
                                                   : n_items;
                while (j < n_items && items[j].marker_only)
                        j++;
#ifdef KB_TEST_HOOKS
                if (o->hook.stop_before_txn == txn) {
                        fflush(stdout);
                        raise(SIGSTOP);
                }
#endif
                r = kb_dlq_redrive_txn(rd, o->topic, items + i, j - i, by,
                                       BEFORE_COMMIT, (void *)&o->hook, errstr,
                                       sizeof(errstr));
                if (r == KB_ERR_RETRY) {
                        fprintf(stderr,
                                "dlq redrive: transaction %d (%zu dead "
                                "letters): outcome unknown -- run it again; "
                                "the markers tell: %s; %zu of %zu redriven "
                                "before it\n",
                                txn, j - i, errstr, i, n_items);
                        rc = KB_EXIT_FAIL;
                        goto out;
                }
                if (r != KB_OK) {
                        fprintf(stderr,
                                "dlq redrive: transaction %d (%zu dead "
                                "letters) not committed: %s; %zu of %zu "
                                "redriven -- run it again to redrive the "
                                "rest\n",
                                txn, j - i, errstr, i, n_items);
                        rc = KB_EXIT_FAIL;
                        goto out;
                }
                /* what the commit made final */
                for (k = i; k < j; k++)
                        print_done(picks, &picks[pick_of[k]], "redriven");
                fflush(stdout);
#ifdef KB_TEST_HOOKS
                if (o->hook.kill_after_commit == txn)
                        raise(SIGKILL);
#endif
        }
        if (n_items)
                printf("redriven: %zu in %zu transaction%s\n", n_items, n_txn,
                       n_txn == 1 ? "" : "s");
        if (n_ref)
                rc = KB_EXIT_REFUSED;
        goto out;
oom:
        fprintf(stderr, "dlq redrive: out of memory\n");
        rc = KB_EXIT_FAIL;
out:
        for (i = 0; picks && i < c->n; i++)
                kb_dlq_input_free(&picks[i].in);
        free(picks);
        free(pick_of);
        free(items);
        kb_dlq_redrive_destroy(rd);
        kb_conf_list_free(inputs);
        return rc;
}
