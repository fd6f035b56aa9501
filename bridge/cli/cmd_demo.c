/* cmd_demo.c -- "kyc-bridge demo": the whole hand-off in one command */
#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <stdatomic.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <curl/curl.h>
#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>
#include <sodium.h>

#include "cmd.h"
#include "conf.h"
#include "importer.h"
#include "issuer.h"
#include "processor.h"
#include "json.h"
#include "kafka.h"
#include "kyc_bridge.h"
#include "log.h"
#include "sandbox.h"
#include "sbx_client.h"
#include "util.h"
#include "wh_rules.h"

#define MAX_COUNT 10000
#define N_TOPICS  8
#define MAX_UPD   16 /* status updates remembered */
#define WH_PATH   "/webhooks/vendor"
#define RULE      "approved-kyc" /* the issuer's one sharing rule */

enum { T_REQ, T_TOK, T_IDLQ, T_STATE, T_OUT, T_MDLQ, T_MSTATE, T_STATUS };
static const char *const topic_suffix[N_TOPICS] = {
        "share-requests",    "share-tokens", "issuer-dlq",     "issuer-state",
        "imported-sessions", "importer-dlq", "importer-state", "session-status"
};
static const int topic_parts[N_TOPICS] = { 4, 4, 1, 1, 4, 1, 1, 4 };

typedef struct app_s {
        const char *label;
        char id[37];
        char key[256];
        char wf_user[37], wf_business[37];
        char key_path[PATH_MAX];
        char secret_path[PATH_MAX]; /* its webhook secret ("" none) */
        char intake[96];            /* its webhook URL ("" none) */
} app_t;

/* One share request and what became of it. */
typedef struct share_s {
        char share_id[37];
        char session_id[37];
        const char *rule;          /* requested by this rule's webhook,
                                      NULL: by a share request */
        const char *kind;          /* "user" / "business" */
        const char *source_status; /* as completed at the issuer */
        int partner;               /* 1 = Y, 2 = Z */
        const char *note;          /* why it is special, or NULL */
        int seen;                  /* records that named it */
        char where[160];           /* topic of its record */
        char status[32];           /* imported status */
        char vendor_data[129];
        char imported_id[37]; /* the session the partner's import made */
        char reason[64];      /* dead-letter reason */
        char hint[32];        /* vendor_data hint sent with it */
} share_t;

/* One status update read from the status topic (one per event_id). */
typedef struct upd_s {
        char event_id[40];
        char share_id[37];
        char session_id[37];
        char old_status[32], new_status[32];
        int seen; /* records with this event_id */
} upd_t;

typedef struct daemon_s {
        const char *name;
        int is_issuer;
        kb_conf_t *conf;
        kb_proc_t *proc;
        pthread_t th;
        int started;
        atomic_int stop; /* set by the main thread */
        int rc;
        char err[512];
} daemon_t;

typedef struct demo_s {
        int count, keep, verbose, timeout_s;
        const char *kafka;
        int allow_plaintext; /* --kafka-allow-plaintext */
        char dir[PATH_MAX];
        kb_sbx_t *sbx;
        kb_sbxc_t *sc;
        rd_kafka_t *host_rk;
        rd_kafka_mock_cluster_t *mcluster;
        char bootstrap[512];
        char topics[N_TOPICS][128];
        app_t apps[3]; /* X issuer, Y and Z partners */
        share_t *shares;
        int n_shares;
        upd_t upd[MAX_UPD];
        int n_upd, upd_lost;     /* distinct events; beyond MAX_UPD */
        const share_t *approved; /* Z's import its compliance team approves */
        daemon_t daemons[3];
        rd_kafka_t *producer, *consumer;
} demo_t;

static atomic_int interrupted; /* lock-free: set from a signal handler */

static void on_sigint(int sig)
{
        (void)sig;
        atomic_store(&interrupted, 1);
}

static void usage(FILE *fp)
{
        fprintf(fp,
                "Usage: kyc-bridge demo [--count N] [--kafka BOOTSTRAP "
                "[--kafka-allow-plaintext]]\n"
                "                       [--keep] [--verbose]\n\n"
                "Runs the whole hand-off on this machine: the sandbox as the "
                "vendor, an issuer\n(Service X) and two partners' importers "
                "(Service Y trusts X's review and takes\nfull records; "
                "Service Z re-reviews and takes summaries), with fresh "
                "keys.\n\n"
                "  1. share requests: it completes N KYC and KYB sessions "
                "(Approved, Declined,\n"
                "     In Review) and writes a share request for each, plus "
                "two that are meant\n"
                "     to be dead-lettered (an expired token, an unfinished "
                "session);\n"
                "  2. a sharing rule: one more session ends Approved and no "
                "request is written:\n"
                "     the vendor's signed webhook reaches the issuer's "
                "intake, and its rule\n"
                "     '" RULE "' shares the session with Y;\n"
                "  3. a status update: Z's compliance team approves one of "
                "Z's In Review\n"
                "     imports; Z's webhook reaches Z's importer, which "
                "publishes the change.\n\n"
                "It prints what became of each share and each status "
                "update.\n\n"
                "  --count N          sessions to share (default 12, 2 to "
                "%d)\n"
                "  --kafka BOOTSTRAP  use a real Kafka (exactly-once) instead "
                "of librdkafka's\n"
                "                     embedded mock cluster (at-least-once "
                "only)\n"
                "  --kafka-allow-plaintext\n"
                "                     BOOTSTRAP is not on loopback and speaks "
                "plaintext (a private\n"
                "                     network, a compose network): allow it "
                "(the daemons'\n"
                "                     kafka_allow_plaintext; refused without "
                "it)\n"
                "  --keep             leave everything running for "
                "exploration; Ctrl-C ends it\n"
                "  --verbose          show the daemons' logs (info level)\n\n"
                "The last line is 'demo: R requested, I imported, D "
                "dead-lettered' (R counts the\nrule's share too); the exit "
                "status is 0 only if every request ended as exactly\none "
                "record and the status update arrived exactly once.\n",
                MAX_COUNT);
}

static int fail(const char *what, const char *why)
{
        fprintf(stderr, "demo: %s: %s\n", what, why);
        return -1;
}

/* ---- files ---- */

static int write_secret_file(const char *path, const char *data)
{
        return kb_write_file_atomic(path, data, strlen(data), 0600);
}

static int gen_keys(demo_t *d, const char *name, char *box, char *sign,
                    char *pub, size_t sz)
{
        kb_key_t *bk = kb_key_generate(KB_KEY_BOX);
        kb_key_t *sk = kb_key_generate(KB_KEY_SIGN);
        kb_bundle_t *b = kb_bundle_new(name);
        char err[512], *json = NULL;
        int r = -1;

        kb_snprintf(box, sz, "%s/%s.box.key", d->dir, name);
        kb_snprintf(sign, sz, "%s/%s.sign.key", d->dir, name);
        kb_snprintf(pub, sz, "%s/%s.pub.json", d->dir, name);
        if (!bk || !sk || !b || kb_bundle_add(b, bk) || kb_bundle_add(b, sk))
                goto out;
        if (kb_key_save_secret(bk, box, NULL, 0, err, sizeof(err)) ||
            kb_key_save_secret(sk, sign, NULL, 0, err, sizeof(err))) {
                fail("keys", err);
                goto out;
        }
        json = kb_bundle_to_json(b);
        if (!json || kb_write_file_atomic(pub, json, strlen(json), 0644))
                goto out;
        r = 0;
out:
        free(json);
        kb_bundle_destroy(b);
        kb_key_destroy(bk);
        kb_key_destroy(sk);
        return r;
}

static int write_conf(const char *path, kb_buf_t *b)
{
        return kb_write_file_atomic(path, b->data, b->len, 0600);
}

/* Options every daemon of the demo shares. */
static void conf_common(demo_t *d, kb_buf_t *b, const app_t *app)
{
        kb_buf_printf(b,
                      "# written by 'kyc-bridge demo'\n"
                      "application_id = %s\n"
                      "vendor.url = %s\n"
                      "vendor.api_key = file:%s\n"
                      "kafka.bootstrap.servers = %s\n"
                      "log.level = %s\n",
                      app->id, kb_sbx_base_url(d->sbx), app->key_path,
                      d->bootstrap, d->verbose ? "info" : "error");
        if (d->allow_plaintext)
                kb_buf_printf(b, "# --kafka-allow-plaintext\n"
                                 "kafka_allow_plaintext = true\n");
        if (!d->kafka)
                kb_buf_printf(b, "# librdkafka's mock cluster: see "
                                 "'kyc-bridge config options'\n"
                                 "pipeline.at_least_once = true\n"
                                 "kafka.consumer.session.timeout.ms = 6000\n"
                                 "kafka.consumer.heartbeat.interval.ms = 2000\n"
                                 "kafka.consumer.fetch.wait.max.ms = 10\n");
}

/* The webhook.* options of a daemon that takes @p app's webhooks: an
 * intake on a free loopback port (learnt once it listens), V2 signatures
 * only, and an ack timeout below the sandbox's HTTP timeout (5 s). */
static void conf_webhook(kb_buf_t *b, const app_t *app)
{
        kb_buf_printf(b,
                      "# the vendor's webhooks for this application (port 0: "
                      "any free port)\n"
                      "webhook.listen = 127.0.0.1:0\n"
                      "webhook.path = " WH_PATH "\n"
                      "webhook.secret = file:%s\n"
                      "webhook.allow_simple = false\n"
                      "webhook.kafka_timeout_ms = 3000\n",
                      app->secret_path);
}

/* Reads @p app's webhook secret from the vendor (GET /v3/webhook/) into
 * <dir>/<letter>.webhook-secret (0600). */
static int save_webhook_secret(demo_t *d, app_t *app, char letter)
{
        char secret[256], err[512];
        int r;

        if (kb_sbxc_webhook_secret(d->sc, app->key, secret, sizeof(secret), err,
                                   sizeof(err)))
                return fail("sandbox", err);
        kb_snprintf(app->secret_path, sizeof(app->secret_path),
                    "%s/%c.webhook-secret", d->dir, letter);
        r = write_secret_file(app->secret_path, secret);
        sodium_memzero(secret, sizeof(secret));
        if (r)
                return fail(app->secret_path, strerror(errno));
        return 0;
}

/* ---- Kafka ---- */

static int setup_kafka(demo_t *d)
{
        char err[512], pfx[64];
        rd_kafka_conf_t *rkc;
        int i;

        kb_snprintf(pfx, sizeof(pfx), "kyc-bridge.demo-%lld",
                    (long long)kb_time_now());
        for (i = 0; i < N_TOPICS; i++)
                kb_snprintf(d->topics[i], sizeof(d->topics[i]), "%s.%s", pfx,
                            topic_suffix[i]);
        if (!d->kafka) {
                rkc = rd_kafka_conf_new();
                /* the host handle talks to no cluster: keep it quiet */
                rd_kafka_conf_set(rkc, "log_level", "3", err, sizeof(err));
                d->host_rk =
                    rd_kafka_new(RD_KAFKA_PRODUCER, rkc, err, sizeof(err));
                if (!d->host_rk)
                        return fail("embedded Kafka", err);
                d->mcluster = rd_kafka_mock_cluster_new(d->host_rk, 1);
                if (!d->mcluster)
                        return fail("embedded Kafka", "cannot start");
                kb_strlcpy(d->bootstrap,
                           rd_kafka_mock_cluster_bootstraps(d->mcluster),
                           sizeof(d->bootstrap));
                for (i = 0; i < N_TOPICS; i++)
                        if (rd_kafka_mock_topic_create(
                                d->mcluster, d->topics[i], topic_parts[i], 1))
                                return fail("embedded Kafka",
                                            "cannot create topics");
                return 0;
        }
        kb_strlcpy(d->bootstrap, d->kafka, sizeof(d->bootstrap));
        {
                rd_kafka_NewTopic_t *nt[N_TOPICS];
                rd_kafka_queue_t *q;
                rd_kafka_event_t *ev;
                const rd_kafka_CreateTopics_result_t *res;
                const rd_kafka_topic_result_t **tr;
                size_t n, j;
                int r = 0;

                rkc = rd_kafka_conf_new();
                if (rd_kafka_conf_set(rkc, "bootstrap.servers", d->bootstrap,
                                      err, sizeof(err)) != RD_KAFKA_CONF_OK) {
                        rd_kafka_conf_destroy(rkc);
                        return fail("--kafka", err);
                }
                d->host_rk =
                    rd_kafka_new(RD_KAFKA_PRODUCER, rkc, err, sizeof(err));
                if (!d->host_rk)
                        return fail("--kafka", err);
                for (i = 0; i < N_TOPICS; i++) {
                        nt[i] = rd_kafka_NewTopic_new(
                            d->topics[i], topic_parts[i], 1, err, sizeof(err));
                        if (i == T_STATE || i == T_MSTATE)
                                rd_kafka_NewTopic_set_config(
                                    nt[i], "cleanup.policy", "compact");
                }
                q = rd_kafka_queue_new(d->host_rk);
                rd_kafka_CreateTopics(d->host_rk, nt, N_TOPICS, NULL, q);
                ev = rd_kafka_queue_poll(q, 60000);
                res = ev ? rd_kafka_event_CreateTopics_result(ev) : NULL;
                if (!res) {
                        r = fail("--kafka", ev ? rd_kafka_event_error_string(ev)
                                               : "no answer from the broker "
                                                 "within 60 s");
                } else {
                        tr = rd_kafka_CreateTopics_result_topics(res, &n);
                        for (j = 0; j < n; j++)
                                if (rd_kafka_topic_result_error(tr[j]) &&
                                    rd_kafka_topic_result_error(tr[j]) !=
                                        RD_KAFKA_RESP_ERR_TOPIC_ALREADY_EXISTS)
                                        r = fail(
                                            rd_kafka_topic_result_name(tr[j]),
                                            rd_kafka_topic_result_error_string(
                                                tr[j]));
                }
                if (ev)
                        rd_kafka_event_destroy(ev);
                rd_kafka_queue_destroy(q);
                rd_kafka_NewTopic_destroy_array(nt, N_TOPICS);
                return r;
        }
}

static rd_kafka_t *client(demo_t *d, rd_kafka_type_t kind)
{
        rd_kafka_conf_t *rkc = rd_kafka_conf_new();
        char err[512];
        rd_kafka_t *rk;

        rd_kafka_conf_set(rkc, "bootstrap.servers", d->bootstrap, err,
                          sizeof(err));
        if (kind == RD_KAFKA_CONSUMER) {
                rd_kafka_conf_set(rkc, "group.id", "kyc-bridge-demo-watch", err,
                                  sizeof(err));
                rd_kafka_conf_set(rkc, "enable.auto.commit", "false", err,
                                  sizeof(err));
                rd_kafka_conf_set(rkc, "isolation.level", "read_committed", err,
                                  sizeof(err));
                rd_kafka_conf_set(rkc, "fetch.wait.max.ms", "10", err,
                                  sizeof(err));
        } else {
                rd_kafka_conf_set(rkc, "enable.idempotence", "true", err,
                                  sizeof(err));
        }
        rk = rd_kafka_new(kind, rkc, err, sizeof(err));
        if (!rk)
                fail("Kafka client", err);
        return rk;
}

/* Assigns every partition of the output topics (and the token topic) from
 * the beginning. */
static int watch_outputs(demo_t *d)
{
        static const int watched[] = { T_TOK, T_IDLQ, T_OUT, T_MDLQ, T_STATUS };
        rd_kafka_topic_partition_list_t *parts;
        size_t i;
        int p;

        d->consumer = client(d, RD_KAFKA_CONSUMER);
        if (!d->consumer)
                return -1;
        parts = rd_kafka_topic_partition_list_new(20);
        for (i = 0; i < KB_ARRAY_SIZE(watched); i++)
                for (p = 0; p < topic_parts[watched[i]]; p++)
                        rd_kafka_topic_partition_list_add(
                            parts, d->topics[watched[i]], p)
                            ->offset = RD_KAFKA_OFFSET_BEGINNING;
        if (rd_kafka_assign(d->consumer, parts)) {
                rd_kafka_topic_partition_list_destroy(parts);
                return fail("watch", "cannot assign partitions");
        }
        rd_kafka_topic_partition_list_destroy(parts);
        return 0;
}

/* "imported-sessions" for "<prefix>.imported-sessions" */
static const char *topic_short(const demo_t *d, const char *topic)
{
        int i;

        for (i = 0; i < N_TOPICS; i++)
                if (!strcmp(topic, d->topics[i]))
                        return topic_suffix[i];
        return topic;
}

static share_t *find_share(demo_t *d, const char *id)
{
        int i;

        for (i = 0; id && i < d->n_shares; i++)
                if (!strcmp(d->shares[i].share_id, id))
                        return &d->shares[i];
        return NULL;
}

/* A record of the status topic: counted once per event_id. */
static void on_status_update(demo_t *d, json_object *o)
{
        const char *ev = kb_json_get_str(o, "event_id");
        const char *old = kb_json_get_str(o, "old_status");
        const char *nw = kb_json_get_str(o, "new_status");
        const char *share = kb_json_get_str(o, "share_id");
        const char *ses = kb_json_get_str(o, "session_id");
        upd_t *u = NULL;
        int i;

        if (!ev)
                return;
        for (i = 0; i < d->n_upd && !u; i++)
                if (!strcmp(d->upd[i].event_id, ev))
                        u = &d->upd[i];
        if (!u) {
                if (d->n_upd == MAX_UPD) {
                        d->upd_lost++;
                        return;
                }
                u = &d->upd[d->n_upd++];
                kb_strlcpy(u->event_id, ev, sizeof(u->event_id));
                kb_strlcpy(u->share_id, share ? share : "?",
                           sizeof(u->share_id));
                kb_strlcpy(u->session_id, ses ? ses : "?",
                           sizeof(u->session_id));
                /* old_status is null when the importer knew none */
                kb_strlcpy(u->old_status, old ? old : "(unknown)",
                           sizeof(u->old_status));
                kb_strlcpy(u->new_status, nw ? nw : "?", sizeof(u->new_status));
        }
        u->seen++;
}

/* Reads what arrived; returns the number of shares settled so far. */
static int drain_outputs(demo_t *d, int wait_ms, const char **token_seen)
{
        rd_kafka_message_t *rkm;
        int64_t until = kb_mono_ms() + wait_ms;
        int settled = 0, i;

        while (
            (rkm = rd_kafka_consumer_poll(
                 d->consumer,
                 (int)(until - kb_mono_ms() > 0 ? until - kb_mono_ms() : 0)))) {
                const char *topic;
                json_object *o;
                share_t *s;

                if (rkm->err) {
                        rd_kafka_message_destroy(rkm);
                        continue;
                }
                topic = rd_kafka_topic_name(rkm->rkt);
                if (!strcmp(topic, d->topics[T_TOK])) {
                        rd_kafka_headers_t *h = NULL;
                        char sid[129];
                        if (token_seen && *token_seen &&
                            rd_kafka_message_headers(rkm, &h) == 0 &&
                            kb_kafka_header_get(h, "kb-share-id", sid,
                                                sizeof(sid)) == 0 &&
                            !strcmp(sid, *token_seen))
                                *token_seen = NULL;
                        rd_kafka_message_destroy(rkm);
                        continue;
                }
                o = kb_json_parse(rkm->payload, rkm->len, 64, NULL, 0);
                if (!strcmp(topic, d->topics[T_STATUS])) {
                        on_status_update(d, o);
                        json_object_put(o);
                        rd_kafka_message_destroy(rkm);
                        if (kb_mono_ms() >= until)
                                break;
                        continue;
                }
                s = find_share(d, kb_json_get_str(o, "share_id"));
                if (s) {
                        s->seen++;
                        kb_strlcpy(s->where, topic_short(d, topic),
                                   sizeof(s->where));
                        if (!strcmp(topic, d->topics[T_OUT])) {
                                const char *st = kb_json_get_str(o, "status");
                                const char *vd =
                                    kb_json_get_str(o, "vendor_data");
                                const char *im =
                                    kb_json_get_str(o, "session_id");
                                kb_strlcpy(s->status, st ? st : "?",
                                           sizeof(s->status));
                                kb_strlcpy(s->imported_id, im ? im : "",
                                           sizeof(s->imported_id));
                                kb_strlcpy(s->vendor_data, vd ? vd : "",
                                           sizeof(s->vendor_data));
                        } else {
                                const char *r = kb_json_get_str(o, "reason");
                                kb_strlcpy(s->reason, r ? r : "?",
                                           sizeof(s->reason));
                        }
                }
                json_object_put(o);
                rd_kafka_message_destroy(rkm);
                if (kb_mono_ms() >= until)
                        break;
        }
        for (i = 0; i < d->n_shares; i++)
                settled += d->shares[i].seen > 0;
        return settled;
}

static int produce_request(demo_t *d, const share_t *s)
{
        json_object *o = json_object_new_object();
        const char *txt;
        size_t len;
        rd_kafka_resp_err_t err;

        kb_json_add_str(o, "share_id", s->share_id);
        kb_json_add_str(o, "session_id", s->session_id);
        kb_json_add_str(o, "for_application_id", d->apps[s->partner].id);
        kb_json_add_str(o, "vendor_data", s->hint);
        txt = kb_json_str(o, &len);
        err = rd_kafka_producev(
            d->producer, RD_KAFKA_V_TOPIC(d->topics[T_REQ]),
            RD_KAFKA_V_KEY(s->share_id, strlen(s->share_id)),
            RD_KAFKA_V_VALUE((void *)txt, len),
            RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_END);
        json_object_put(o);
        if (err)
                return fail("produce", rd_kafka_err2str(err));
        return 0;
}

/* ---- daemons ---- */

static void *daemon_main(void *p)
{
        daemon_t *dm = p;

        dm->rc = kb_proc_run(dm->proc, &dm->stop, dm->err, sizeof(dm->err));
        return NULL;
}

static int start_daemon(daemon_t *dm, const char *name, int is_issuer,
                        const char *path)
{
        char err[1024];
        int cfg_err;

        dm->name = name;
        dm->is_issuer = is_issuer;
        dm->conf = kb_conf_new();
        if (!dm->conf || kb_conf_load_file(dm->conf, path, err, sizeof(err)))
                return fail(name, dm->conf ? err : "out of memory");
        dm->proc =
            is_issuer
                ? kb_issuer_proc_new(dm->conf, &cfg_err, err, sizeof(err))
                : kb_importer_proc_new(dm->conf, &cfg_err, err, sizeof(err));
        if (!dm->proc)
                return fail(name, err);
        if (pthread_create(&dm->th, NULL, daemon_main, dm))
                return fail(name, "cannot start a thread");
        dm->started = 1;
        return 0;
}

static void stop_daemons(demo_t *d)
{
        int i;

        for (i = 0; i < 3; i++)
                atomic_store(&d->daemons[i].stop, 1);
        for (i = 0; i < 3; i++) {
                daemon_t *dm = &d->daemons[i];
                if (dm->started) {
                        pthread_join(dm->th, NULL);
                        dm->started = 0;
                        if (dm->rc != KB_OK)
                                fprintf(stderr, "demo: %s: %s\n", dm->name,
                                        dm->err);
                }
                kb_proc_free(dm->proc);
                dm->proc = NULL;
                kb_conf_destroy(dm->conf);
                dm->conf = NULL;
        }
}

/* ---- the world: applications, workflows, sessions, configs ---- */

/* Writes the three daemons' configs and starts them. 0, or -1 said. */
static int start_daemons(demo_t *d, char box[3][PATH_MAX],
                         char sign[3][PATH_MAX], char pub[3][PATH_MAX])
{
        static const char letters[] = "xyz";
        char path[PATH_MAX + 32];
        kb_buf_t b = KB_BUF_INIT;
        int i, r = -1;

        /* issuer */
        conf_common(d, &b, &d->apps[0]);
        kb_buf_printf(&b,
                      "keys.sign_secret = %s\n"
                      "issuer.request_topic = %s\nissuer.token_topic = %s\n"
                      "issuer.dlq_topic = %s\nissuer.state_topic = %s\n"
                      "issuer.group_id = %s.issuer\n"
                      "partner.y.application_id = %s\npartner.y.keys = %s\n"
                      "partner.z.application_id = %s\npartner.z.keys = %s\n",
                      sign[0], d->topics[T_REQ], d->topics[T_TOK],
                      d->topics[T_IDLQ], d->topics[T_STATE], d->topics[T_REQ],
                      d->apps[1].id, pub[1], d->apps[2].id, pub[2]);
        conf_webhook(&b, &d->apps[0]);
        kb_buf_printf(&b,
                      "# a sharing rule: X's KYC sessions that end Approved "
                      "go to Y\n"
                      "rule." RULE ".workflow_id = %s\n"
                      "rule." RULE ".statuses = Approved\n"
                      "rule." RULE ".partners = y\n"
                      "rule." RULE ".vendor_data = {partner}-{vendor_data}\n",
                      d->apps[0].wf_user);
        kb_snprintf(path, sizeof(path), "%s/issuer.conf", d->dir);
        if (write_conf(path, &b)) {
                r = fail(path, strerror(errno));
                goto out;
        }
        if (start_daemon(&d->daemons[0], "issuer", 1, path))
                goto out;
        for (i = 1; i < 3; i++) {
                kb_buf_reset(&b);
                conf_common(d, &b, &d->apps[i]);
                kb_buf_printf(&b,
                              "keys.box_secret = %s\n"
                              "importer.token_topics = %s\n"
                              "importer.output_topic = %s\n"
                              "importer.dlq_topic = %s\n"
                              "importer.state_topic = %s\n"
                              "importer.status_topic = %s\n"
                              "importer.group_id = %s.importer-%c\n"
                              "partner.x.application_id = %s\n"
                              "partner.x.keys = %s\n"
                              "partner.x.workflow_id.user = %s\n"
                              "partner.x.workflow_id.business = %s\n"
                              "partner.x.trust_review = %s\n"
                              "partner.x.record = %s\n",
                              box[i], d->topics[T_TOK], d->topics[T_OUT],
                              d->topics[T_MDLQ], d->topics[T_MSTATE],
                              d->topics[T_STATUS], d->topics[T_REQ], letters[i],
                              d->apps[0].id, pub[0], d->apps[i].wf_user,
                              d->apps[i].wf_business, i == 1 ? "true" : "false",
                              i == 1 ? "full" : "summary");
                if (i == 2)
                        conf_webhook(&b, &d->apps[2]);
                kb_snprintf(path, sizeof(path), "%s/importer-%c.conf", d->dir,
                            letters[i]);
                if (write_conf(path, &b)) {
                        r = fail(path, strerror(errno));
                        goto out;
                }
                if (start_daemon(&d->daemons[i],
                                 i == 1 ? "importer-y" : "importer-z", 0, path))
                        goto out;
        }
        r = 0;
out:
        kb_buf_free(&b, 0);
        return r;
}

static int setup_world(demo_t *d)
{
        static const char letters[] = "xyz";
        static const char *const labels[3] = {
                "Service X (issuer)", "Service Y (partner, trusts X)",
                "Service Z (partner, re-reviews)"
        };
        static const char *const user_st[3] = { "Approved", "Declined",
                                                "In Review" };
        static const char *const biz_st[3] = { "APPROVED", "DECLINED",
                                               "IN_REVIEW" };
        char err[512], box[3][PATH_MAX], sign[3][PATH_MAX], pub[3][PATH_MAX];
        int i;

        for (i = 0; i < 3; i++) {
                app_t *a = &d->apps[i];
                a->label = labels[i];
                if (kb_sbxc_app(d->sc, labels[i], a->id, a->key, sizeof(a->key),
                                err, sizeof(err)) ||
                    kb_sbxc_workflow(d->sc, a->key, "kyc", a->wf_user, err,
                                     sizeof(err)) ||
                    kb_sbxc_workflow(d->sc, a->key, "kyb", a->wf_business, err,
                                     sizeof(err)))
                        return fail("sandbox", err);
                kb_snprintf(a->key_path, sizeof(a->key_path), "%s/%c.api-key",
                            d->dir, letters[i]);
                if (write_secret_file(a->key_path, a->key))
                        return fail(a->key_path, strerror(errno));
                if (gen_keys(d,
                             i == 0   ? "service-x"
                             : i == 1 ? "service-y"
                                      : "service-z",
                             box[i], sign[i], pub[i], PATH_MAX))
                        return fail("keys", "cannot generate");
                /* X's and Z's daemons take their application's webhooks:
                 * the secret the vendor signs them with, into a file */
                if (i != 1 && save_webhook_secret(d, a, letters[i]))
                        return -1;
        }
        if (start_daemons(d, box, sign, pub))
                return -1;

        /* sessions: the requested mix, then the two dead-letter examples */
        /* + the rule's share (step 2) */
        d->shares = calloc((size_t)d->count + 3, sizeof(*d->shares));
        if (!d->shares)
                return fail("demo", "out of memory");
        for (i = 0; i < d->count + 2; i++) {
                share_t *s = &d->shares[i];
                int biz = i % 3 == 2;
                const char *st;
                char vd[64];
                s->kind = biz ? "business" : "user";
                st = biz ? biz_st[(i / 3) % 3] : user_st[i % 3];
                s->partner = 1 + i % 2;
                if (i >= d->count) {
                        /* the two dead-letter examples are KYC sessions */
                        biz = 0;
                        s->kind = "user";
                        s->note = i == d->count ? "token already expired"
                                                : "session never finished";
                        st = i == d->count ? "Approved" : NULL;
                }
                s->source_status = st ? st : "Not Started";
                kb_uuid4(s->share_id);
                kb_snprintf(vd, sizeof(vd), "x-customer-%04d", i);
                kb_snprintf(s->hint, sizeof(s->hint), "%c-customer-%04d",
                            "xyz"[s->partner], i);
                if (kb_sbxc_session(d->sc, d->apps[0].key,
                                    biz ? d->apps[0].wf_business
                                        : d->apps[0].wf_user,
                                    vd, st, s->session_id, err, sizeof(err)))
                        return fail("sandbox", err);
                d->n_shares++;
        }
        return 0;
}

/* ---- webhooks ---- */

/* The port @p dm's webhook intake listens on, once it does (the daemon
 * starts it with its pipeline, on its own thread); 0 when it does not
 * within 30 s or the daemon stopped. */
static int intake_port(daemon_t *dm)
{
        int64_t until = kb_mono_ms() + 30000;
        int port;

        while (!(port = kb_wh_host_port(dm->proc->webhook)) &&
               kb_mono_ms() < until && !atomic_load(&interrupted))
                usleep(20 * 1000);
        return port;
}

/* Points @p app's webhook at the intake of @p dm (PATCH /v3/webhook/). */
static int register_intake(demo_t *d, daemon_t *dm, app_t *app)
{
        char err[512];
        int port = intake_port(dm);

        if (!port)
                return fail(dm->name, "its webhook intake is not listening "
                                      "(see --verbose)");
        kb_snprintf(app->intake, sizeof(app->intake),
                    "http://127.0.0.1:%d" WH_PATH, port);
        if (kb_sbxc_webhook_url(d->sc, app->key, app->intake, err, sizeof(err)))
                return fail("sandbox", err);
        return 0;
}

/* Drains until @p done says so; 0, or -1 after @p timeout_s. */
static int wait_for(demo_t *d, int (*done)(const demo_t *), int timeout_s)
{
        int64_t until = kb_mono_ms() + (int64_t)timeout_s * 1000;

        while (!done(d)) {
                if (kb_mono_ms() >= until || atomic_load(&interrupted))
                        return -1;
                drain_outputs(d, 100, NULL);
        }
        return 0;
}

static int rule_share_arrived(const demo_t *d)
{
        return d->shares[d->n_shares - 1].seen > 0;
}

/* The update of the approved import, or NULL while none arrived. */
static const upd_t *expected_update(const demo_t *d)
{
        int i;

        for (i = 0; d->approved && i < d->n_upd; i++)
                if (!strcmp(d->upd[i].session_id, d->approved->imported_id) &&
                    !strcmp(d->upd[i].new_status, "Approved"))
                        return &d->upd[i];
        return NULL;
}

static int update_arrived(const demo_t *d)
{
        return expected_update(d) != NULL;
}

/* Step 2: X's webhooks go to the issuer's intake; one more KYC session
 * ends Approved and nobody writes a share request for it: the sandbox's
 * signed status.updated delivery matches the rule, whose share request
 * (share_id derived from session, partner, rule, status) the issuer
 * handles like any other. */
static int step_rule(demo_t *d)
{
        share_t *s = &d->shares[d->n_shares];
        const app_t *y = &d->apps[1];
        char err[512], vd[64];
        int i = d->n_shares;

        if (register_intake(d, &d->daemons[0], &d->apps[0]))
                return -1;
        printf("\ndemo: [2/3] a sharing rule. Service X's webhooks now go to "
               "the issuer's\n"
               "      intake, %s (signed with the\n"
               "      secret in x.webhook-secret). Its rule '" RULE "' shares "
               "X's KYC\n"
               "      sessions that end Approved with Y.\n",
               d->apps[0].intake);
        s->kind = "user";
        s->source_status = "Approved";
        s->partner = 1;
        s->rule = RULE;
        kb_snprintf(vd, sizeof(vd), "x-customer-%04d", i);
        /* the rule's vendor_data template: {partner}-{vendor_data} */
        kb_snprintf(s->hint, sizeof(s->hint), "y-%s", vd);
        if (kb_sbxc_session(d->sc, d->apps[0].key, d->apps[0].wf_user, vd,
                            "Approved", s->session_id, err, sizeof(err)))
                return fail("sandbox", err);
        kb_wh_share_id(s->session_id, y->id, RULE, KB_WH_ST_APPROVED,
                       s->share_id);
        d->n_shares++;
        printf("demo:   session %.8s ended Approved; nobody wrote a share "
               "request.\n"
               "        The vendor's webhook triggers share %s\n",
               s->session_id, s->share_id);
        if (wait_for(d, rule_share_arrived, 60))
                return fail("demo", "the rule's share did not arrive within "
                                    "60 s");
        if (s->reason[0])
                printf("demo:   share %.8s dead-lettered: %s: %s\n",
                       s->share_id, s->where, s->reason);
        else
                printf("demo:   share %.8s arrived at Y: imported %s (%s)\n",
                       s->share_id, s->status, s->where);
        return 0;
}

/* Step 3: Z's webhooks go to Z's importer; Z's compliance team approves
 * one of Z's In Review imports, and the importer publishes the change. */
static int step_status(demo_t *d)
{
        const upd_t *u;
        char err[512];
        int i;

        for (i = 0; i < d->n_shares && !d->approved; i++) {
                const share_t *s = &d->shares[i];
                if (s->partner == 2 && s->seen && !s->reason[0] &&
                    s->imported_id[0] && !strcmp(s->status, "In Review"))
                        d->approved = s;
        }
        if (!d->approved) {
                return fail("demo", "Z imported no KYC session In Review: "
                                    "nothing for its compliance team to "
                                    "approve");
        }
        if (register_intake(d, &d->daemons[2], &d->apps[2]))
                return -1;
        printf("\ndemo: [3/3] a status update. Service Z's webhooks now go to "
               "Z's importer's\n"
               "      intake, %s. Z's compliance team\n"
               "      approves its In Review import %.8s (share %.8s):\n"
               "      PATCH /v3/session/%.8s.../update-status/ "
               "{\"new_status\": \"Approved\"}\n",
               d->apps[2].intake, d->approved->imported_id,
               d->approved->share_id, d->approved->imported_id);
        if (kb_sbxc_update_status(
                d->sc, d->apps[2].key, d->approved->imported_id, "Approved",
                "approved by Z's compliance team", err, sizeof(err)))
                return fail("sandbox", err);
        if (wait_for(d, update_arrived, 60))
                return fail("demo", "no status update within 60 s");
        u = expected_update(d);
        printf("demo:   published on %s: %.8s %s -> %s\n",
               topic_suffix[T_STATUS], u->session_id, u->old_status,
               u->new_status);
        return 0;
}

/* ---- output ---- */

#define ROW_FMT "%-8.8s %-8s %-11s %-17s %-14s %-10s %-17s "

static void print_summary(demo_t *d)
{
        int i;

        printf("\n" ROW_FMT "%s\n", "share", "kind", "source", "requested by",
               "partner", "imported", "vendor_data", "where");
        for (i = 0; i < d->n_shares; i++) {
                share_t *s = &d->shares[i];
                const char *partner =
                    s->partner == 1 ? "Y (trusts X)" : "Z (re-reviews)";
                char by[32];

                kb_snprintf(by, sizeof(by), "%s%s",
                            s->rule ? "rule " : "share request",
                            s->rule ? s->rule : "");
                if (s->seen && !s->reason[0])
                        printf(ROW_FMT "%s\n", s->share_id, s->kind,
                               s->source_status, by, partner, s->status,
                               s->vendor_data, s->where);
                else
                        printf(ROW_FMT "%s%s%s\n", s->share_id, s->kind,
                               s->source_status, by, partner, "-", "-",
                               s->seen ? s->where : "(nothing yet)",
                               s->seen ? ": " : "", s->reason);
                if (s->seen > 1)
                        printf("         ^ arrived %d times (at-least-once "
                               "delivery of the embedded broker)\n",
                               s->seen);
        }
}

static void print_updates(demo_t *d)
{
        int i;

        printf("\nstatus updates (topic %s, from Z's own webhooks):\n",
               topic_suffix[T_STATUS]);
        if (!d->n_upd)
                printf("  (none)\n");
        for (i = 0; i < d->n_upd; i++) {
                const upd_t *u = &d->upd[i];
                const share_t *s = find_share(d, u->share_id);
                printf("  session %.8s (Z's import of share %.8s, %s): "
                       "%s -> %s\n",
                       u->session_id, u->share_id,
                       s && s->vendor_data[0] ? s->vendor_data : "?",
                       u->old_status, u->new_status);
                if (u->seen > 1)
                        printf("  ^ arrived %d times (the same event_id)\n",
                               u->seen);
        }
}

static void print_keep(demo_t *d)
{
        int i;

        printf("\ndemo: --keep: everything keeps running until Ctrl-C\n");
        printf("  sandbox (vendor API): %s\n", kb_sbx_base_url(d->sbx));
        printf("  Kafka bootstrap:      %s%s\n", d->bootstrap,
               d->kafka ? "" : " (embedded mock cluster)");
        for (i = 0; i < 3; i++)
                printf("  %-32s application %s, API key in %s\n",
                       d->apps[i].label, d->apps[i].id, d->apps[i].key_path);
        printf("  keys and configs:     %s\n", d->dir);
        printf("  webhook intakes:      issuer (X's webhooks) %s\n"
               "                        importer Z (Z's webhooks) %s\n",
               d->apps[0].intake, d->apps[2].intake);
        for (i = 0; i < N_TOPICS; i++)
                printf("  topic %-18s %s\n", topic_suffix[i], d->topics[i]);
        printf("  watch the downstream topic:\n"
               "    kcat -b %s -C -t %s -X isolation.level=read_committed "
               "-f '%%k %%s\\n'\n",
               d->bootstrap, d->topics[T_OUT]);
        printf("  share another session: kyc-bridge share -c %s/issuer.conf "
               "--session-id <uuid> --for %s\n",
               d->dir, d->apps[1].id);
        printf("  decide another of Z's imports (In Review), then watch "
               "topic %s:\n"
               "    curl -X PATCH %s/v3/session/<session_id>/update-status/ "
               "-H \"x-api-key: $(cat %s)\" \\\n"
               "         -H 'Content-Type: application/json' -d "
               "'{\"new_status\": \"Declined\"}'\n",
               topic_suffix[T_STATUS], kb_sbx_base_url(d->sbx),
               d->apps[2].key_path);
        fflush(stdout);
}

int kb_cmd_demo(int argc, char **argv)
{
        demo_t d;
        kb_sbx_conf_t sc;
        char err[1024];
        const char *pending_token = NULL;
        int i, settled = 0, last = -1, rc = KB_EXIT_FAIL, imported = 0,
               dead = 0, exact = 1;
        int64_t deadline;
        struct sigaction sa;

        memset(&d, 0, sizeof(d));
        d.count = 12;
        d.timeout_s = 120;
        for (i = 1; i < argc; i++) {
                int64_t n;
                if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
                        usage(stdout);
                        return KB_EXIT_OK;
                } else if (!strcmp(argv[i], "--count") && i + 1 < argc) {
                        /* 2: Z must import a KYC session (step 3) */
                        if (kb_parse_i64(argv[++i], 2, MAX_COUNT, &n)) {
                                fprintf(stderr,
                                        "demo: --count takes 2 to "
                                        "%d\n",
                                        MAX_COUNT);
                                return KB_EXIT_USAGE;
                        }
                        d.count = (int)n;
                } else if (!strcmp(argv[i], "--kafka") && i + 1 < argc) {
                        d.kafka = argv[++i];
                } else if (!strcmp(argv[i], "--kafka-allow-plaintext")) {
                        d.allow_plaintext = 1;
                } else if (!strcmp(argv[i], "--keep")) {
                        d.keep = 1;
                } else if (!strcmp(argv[i], "--verbose")) {
                        d.verbose = 1;
                } else {
                        fprintf(stderr, "demo: unexpected argument '%s'\n",
                                argv[i]);
                        usage(stderr);
                        return KB_EXIT_USAGE;
                }
        }
        if (d.allow_plaintext && !d.kafka) {
                fprintf(stderr, "demo: --kafka-allow-plaintext goes with "
                                "--kafka BOOTSTRAP\n");
                return KB_EXIT_USAGE;
        }
        if (d.kafka && !d.allow_plaintext) {
                char bad[256];

                /* the daemons would refuse it; say so before any work */
                if (kb_conf_kafka_plaintext(d.kafka, NULL, bad, sizeof(bad))) {
                        fprintf(stderr,
                                "demo: --kafka: broker %s is not loopback and "
                                "would be reached in plaintext (the Kafka "
                                "traffic not encrypted); add "
                                "--kafka-allow-plaintext if the network to it "
                                "is private\n",
                                bad);
                        return KB_EXIT_USAGE;
                }
        }
        memset(&sa, 0, sizeof(sa));
        sa.sa_handler = on_sigint;
        sigaction(SIGINT, &sa, NULL);
        sigaction(SIGTERM, &sa, NULL);
        sa.sa_handler = SIG_IGN;
        sigaction(SIGPIPE, &sa, NULL);
        curl_global_init(CURL_GLOBAL_DEFAULT);
        kb_log_setup(d.verbose ? KB_LOG_INFO : KB_LOG_ERROR, 0, 2, "demo");
        setvbuf(stdout, NULL, _IOLBF, 0);

        kb_snprintf(d.dir, sizeof(d.dir), "%s/kyc-bridge-demo.XXXXXX",
                    getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
        if (!mkdtemp(d.dir)) {
                fail("work dir", strerror(errno));
                goto out;
        }
        printf("demo: kyc-bridge %s -- work dir %s\n", KB_VERSION_STR, d.dir);
        if (d.kafka)
                printf("demo: Kafka: %s (real broker: transactions give "
                       "exactly-once)\n",
                       d.kafka);
        else
                printf("demo: Kafka: librdkafka's embedded mock cluster. It "
                       "gives AT-LEAST-ONCE only:\n"
                       "      it keeps no transactional offsets and ignores "
                       "read_committed, so a crash\n"
                       "      could repeat a record. A real Kafka gives "
                       "exactly-once: --kafka HOST:PORT\n");

        kb_sbx_conf_init(&sc);
        sc.port = 0;
        sc.webhook_backoff_ms = 1000;
        d.sbx = kb_sbx_new(&sc, err, sizeof(err));
        if (!d.sbx) {
                fail("sandbox", err);
                goto out;
        }
        d.sc = kb_sbxc_new(kb_sbx_base_url(d.sbx));
        printf("demo: vendor: the sandbox at %s\n", kb_sbx_base_url(d.sbx));
        if (!d.sc || setup_kafka(&d))
                goto out;
        d.producer = client(&d, RD_KAFKA_PRODUCER);
        if (!d.producer || watch_outputs(&d))
                goto out;
        printf("demo: starting the issuer and two importers, creating %d "
               "sessions...\n",
               d.count + 2);
        if (setup_world(&d))
                goto out;

        /* The expired example first, alone: minted while the vendor's clock
         * is two hours behind, so the token is born expired. */
        if (kb_sbxc_clock(d.sc, -7200, err, sizeof(err)) ||
            produce_request(&d, &d.shares[d.count])) {
                fail("sandbox clock", err);
                goto out;
        }
        rd_kafka_flush(d.producer, 10000);
        pending_token = d.shares[d.count].share_id;
        deadline = kb_mono_ms() + 30000;
        while (pending_token && kb_mono_ms() < deadline &&
               !atomic_load(&interrupted))
                drain_outputs(&d, 200, &pending_token);
        kb_sbxc_clock(d.sc, 0, err, sizeof(err));
        if (pending_token) {
                fail("demo", "the issuer did not publish within 30 s");
                goto out;
        }
        for (i = 0; i < d.n_shares; i++)
                if (i != d.count && produce_request(&d, &d.shares[i]))
                        goto out;
        rd_kafka_flush(d.producer, 10000);
        printf("\ndemo: [1/3] share requests, as an issuer system writes "
               "them. %d sent to\n"
               "      %s; waiting for every one to arrive\n",
               d.n_shares, d.topics[T_REQ]);

        deadline = kb_mono_ms() + (int64_t)d.timeout_s * 1000;
        while (!atomic_load(&interrupted) && kb_mono_ms() < deadline) {
                settled = drain_outputs(&d, 250, NULL);
                if (settled != last) {
                        int imp = 0;
                        for (i = 0; i < d.n_shares; i++)
                                imp +=
                                    d.shares[i].seen && !d.shares[i].reason[0];
                        printf("demo:   %d/%d settled: %d imported, %d "
                               "dead-lettered\n",
                               settled, d.n_shares, imp, settled - imp);
                        last = settled;
                }
                if (settled == d.n_shares)
                        break;
        }
        if (settled != d.n_shares) {
                fail("demo", atomic_load(&interrupted)
                                 ? "interrupted"
                                 : "not every share request settled in time");
                goto report;
        }
        if (step_rule(&d) || step_status(&d))
                goto report;
        /* a moment more to catch duplicates, then the verdict */
        drain_outputs(&d, 500, NULL);
        rc = KB_EXIT_OK;
report:
        print_summary(&d);
        for (i = 0; i < d.n_shares; i++) {
                share_t *s = &d.shares[i];
                if (s->seen != 1)
                        exact = 0;
                if (s->seen && !s->reason[0])
                        imported++;
                else if (s->seen)
                        dead++;
        }
        printf("\ndead letters explained:\n");
        for (i = 0; i < d.n_shares; i++)
                if (d.shares[i].reason[0])
                        printf("  %.8s %s: %s%s%s\n", d.shares[i].share_id,
                               d.shares[i].reason, d.shares[i].where,
                               d.shares[i].note ? " -- " : "",
                               d.shares[i].note ? d.shares[i].note : "");
        print_updates(&d);
        if (!exact || d.n_upd != 1 || !expected_update(&d) ||
            d.upd[0].seen != 1)
                rc = KB_EXIT_FAIL;
        if (d.keep && !atomic_load(&interrupted)) {
                print_keep(&d);
                while (!atomic_load(&interrupted))
                        drain_outputs(&d, 500, NULL);
        }
out:
        stop_daemons(&d);
        if (d.consumer) {
                rd_kafka_consumer_close(d.consumer);
                rd_kafka_destroy(d.consumer);
        }
        if (d.producer)
                rd_kafka_destroy(d.producer);
        kb_sbxc_destroy(d.sc);
        kb_sbx_destroy(d.sbx);
        if (d.mcluster)
                rd_kafka_mock_cluster_destroy(d.mcluster);
        if (d.host_rk)
                rd_kafka_destroy(d.host_rk);
        free(d.shares);
        curl_global_cleanup();
        printf("demo: %d status update(s) published\n", d.n_upd + d.upd_lost);
        printf("demo: %d requested, %d imported, %d dead-lettered\n",
               d.n_shares, imported, dead);
        return rc;
}
