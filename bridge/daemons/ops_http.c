/* ops_http.c -- a daemon's operations endpoints: /livez, /readyz and
 * /metrics (metrics.listen), and the metrics the processor keeps */
#include "ops_http.h"

#include <limits.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

#include "log.h"
#include "metrics.h"
#include "util.h"

#define HTTPD_GRACE_MS 2000
#define LIVEZ_STALE_MS 10000
/* /readyz says "no broker reachable" after this many consecutive consumer
 * statistics (every 5 s) with no broker connection up: one sample alone
 * may catch a connection between a close and its reconnect */
#define NO_BROKER_SAMPLES       2
#define PRODUCER_STATS_EVERY_MS 5000
#define PROM_TYPE               "text/plain; version=0.0.4; charset=utf-8"

/* What the consumer's last statistics said (engine thread writes a
 * scratch copy, then swaps it in under the mutex). */
typedef struct {
        char topic[KB_METRICS_LABEL_VALUE_MAX + 1];
        int32_t partition;
        int64_t lag;
} lag_t;

typedef struct {
        char name[KB_METRICS_LABEL_VALUE_MAX + 1];
        int up;
} broker_t;

typedef struct {
        lag_t lag[KB_OPS_LAG_MAX];
        size_t lag_cnt;
        broker_t broker[KB_OPS_BROKERS_MAX];
        size_t broker_cnt;
} snap_t;

/* A broker's request timeouts as the statistics last said (engine
 * thread): the counter adds what is new since then. */
typedef struct {
        char name[KB_METRICS_LABEL_VALUE_MAX + 1];
        int64_t last;
        kb_metric_t *m;
} brk_to_t;

enum { CLIENT_CONSUMER, CLIENT_PRODUCER };

/* Bounds of the histograms. */
static const double vendor_buckets[] = { 0.005, 0.01, 0.025, 0.05, 0.1, 0.25,
                                         0.5,   1,    2.5,   5,    10,  30 };
static const double commit_buckets[] = { 0.005, 0.01, 0.025, 0.05, 0.1,
                                         0.25,  0.5,  1,     2.5,  5,
                                         10,    30,   60 };
static const double records_buckets[] = { 1,   2,   5,   10,   20,   50,
                                          100, 200, 500, 1000, 2000, 5000 };
/* a hand-off crosses two daemons, two companies and a vendor call each:
 * seconds when all runs, minutes to hours when one side was down; tokens
 * live 24 h, so a backlog after downtime or a redrive lands up to 86400 */
static const double handoff_buckets[] = { 0.1,  0.25, 0.5,  1,     2.5,  5,
                                          10,   30,   60,   120,   300,  600,
                                          1800, 3600, 7200, 21600, 86400 };

#define ARRAY_CNT(a) (sizeof(a) / sizeof((a)[0]))

/* Labelled children at most. */
#define VENDOR_REQ_CHILDREN 128 /* 5 endpoints x the statuses seen */
#define VENDOR_PAIRS_CACHED 32  /* (endpoint, status) pairs kept at hand */
#define KEY_IDS_CHILDREN    256
#define RULES_CHILDREN      256
#define KEY_ID_MAX          32 /* hex digits: a key id, never a key */

/* The vendor client's endpoint names (vendor.h, kb_vendor_observe_cb). */
static const char *const vendor_endpoints[] = { "share", "import",
                                                "list_sessions", "decision",
                                                "workflow" };
#define VENDOR_ENDPOINTS ARRAY_CNT(vendor_endpoints)

/* A child of kyc_bridge_vendor_requests_total looked up once. */
typedef struct {
        int endpoint; /* index in vendor_endpoints */
        int status;
        kb_metric_t *m;
} vreq_pair_t;

/* The vendor client's families, by what they count. */
enum {
        V_OK,
        V_ERROR,
        V_RETRIES,
        V_429,
        V_5XX,
        V_TIMEOUTS,
        V_IN_FLIGHT,
        V_PACED,
        V_PAUSED,
        V_ANSWERED,
        V_LATENCY,
        V_CNT
};

struct kb_ops_http_s {
        char role[16];
        char name[48];   /* log facility: "<role>-ops" */
        char listen[80]; /* as configured */
        int shared;      /* the routes live on the webhook intake's server */
        kb_httpd_t *h;   /* our own server, else NULL */
        kb_metrics_t *reg;
        kb_metric_family_t *dead;          /* {daemon,reason} */
        kb_metric_t *rec[KB_OPS_OUTCOMES]; /* by kb_ops_outcome_t */
        kb_metric_family_t *vreq;          /* {daemon,endpoint,status} */
        kb_metric_family_t *vdur;          /* {daemon,endpoint} */
        /* the vendor observer's children, looked up once (metrics.h):
         * vdur_ep of each endpoint at start, vreq_pair as pairs come, on
         * the vendor client's thread only (kb_ops_http_vendor_attempt()) */
        kb_metric_t *vdur_ep[VENDOR_ENDPOINTS];
        vreq_pair_t vreq_pair[VENDOR_PAIRS_CACHED];
        size_t vreq_pair_cnt;
        uint64_t vendor_lookups; /* kb_metric_child() calls of it */
        kb_metric_t *commit_dur, *txn_recs, *handoff;
        kb_metric_family_t *brk_to; /* {daemon,broker} */
        /* per client (CLIENT_CONSUMER, CLIENT_PRODUCER): the request
         * timeouts seen so far per broker; engine thread */
        brk_to_t brk_seen[2][KB_OPS_BROKERS_MAX];
        size_t brk_seen_cnt[2];
        int64_t producer_stats_ms; /* engine thread: last one read */
        kb_metric_family_t *keys;  /* {daemon,role,key_id} */
        kb_metric_family_t *rules; /* {daemon,rule} */
        kb_metric_t *txn[2];       /* committed, aborted */
        kb_metric_t *in_flight;
        uint64_t last_commits, last_aborts; /* engine thread */
        kb_metric_t *v[V_CNT];
        kb_vendor_stats_t last_vs; /* engine thread */
        pthread_mutex_t snap_mu;   /* guards snap (the pointer and data) */
        int snap_mu_ok;
        snap_t *snap;         /* what /metrics shows */
        snap_t *scratch;      /* engine thread: the next snapshot */
        atomic_llong beat_ms; /* kb_mono_ms() of the last loop turn */
        atomic_int state;     /* kb_ops_state_t */
        atomic_int no_broker; /* consecutive statistics with no broker
                                 connection up (ones without "brokers"
                                 do not count) */
        atomic_int port;
};

static void reply_json(kb_httpd_req_t *req, int status, const char *body)
{
        static const char *const hdrs[] = { "Cache-Control", "no-store", NULL };

        kb_httpd_reply(req, status, "application/json", body, strlen(body),
                       hdrs);
}

static void livez(void *opaque, kb_httpd_req_t *req)
{
        kb_ops_http_t *o = opaque;
        int64_t age = kb_mono_ms() - (int64_t)atomic_load(&o->beat_ms);

        if (age > LIVEZ_STALE_MS)
                kb_httpd_reply_error(req, 503,
                                     "the daemon's loop has not turned for "
                                     "over 10 s",
                                     NULL);
        else
                reply_json(req, 200, "{\"status\":\"ok\"}");
}

/* What /readyz and kyc_bridge_ready say, now: NULL when ready, else why
 * not. Atomics only: any thread, a collector too. */
static const char *not_ready(kb_ops_http_t *o)
{
        switch ((kb_ops_state_t)atomic_load(&o->state)) {
        case KB_OPS_RUNNING:
                if (atomic_load(&o->no_broker) >= NO_BROKER_SAMPLES)
                        return "no broker reachable: the consumer's last two "
                               "statistics showed no broker connection up";
                return NULL;
        case KB_OPS_STARTING:
                return "starting: the transactional producer is not "
                       "initialised yet";
        case KB_OPS_HELD:
                return "held: a vendor failure (such as our own API key "
                       "refused) or a resource failure stopped the daemon; "
                       "see the log";
        case KB_OPS_STOPPING:
        default:
                return "stopping";
        }
}

static void readyz(void *opaque, kb_httpd_req_t *req)
{
        const char *why = not_ready(opaque);

        if (why)
                kb_httpd_reply_error(req, 503, why, NULL);
        else
                reply_json(req, 200, "{\"status\":\"ready\"}");
}

static void metrics(void *opaque, kb_httpd_req_t *req)
{
        kb_ops_http_t *o = opaque;
        kb_buf_t b = KB_BUF_INIT;

        if (kb_metrics_render(o->reg, &b) != KB_OK) {
                kb_buf_free(&b, 0);
                kb_httpd_reply_error(req, 500, "out of memory", NULL);
                return;
        }
        kb_httpd_reply(req, 200, PROM_TYPE, b.data ? b.data : "", b.len, NULL);
        kb_buf_free(&b, 0);
}

static int add_routes(kb_ops_http_t *o, kb_httpd_t *h)
{
        int r;

        if ((r = kb_httpd_route(h, "GET", "/livez", livez, o)) ||
            (r = kb_httpd_route(h, "GET", "/readyz", readyz, o)) ||
            (r = kb_httpd_route(h, "GET", "/metrics", metrics, o)))
                return r;
        return KB_OK;
}

static int family(kb_ops_http_t *o, const char *name, const char *help,
                  kb_metric_type_t type, const char *const *labels,
                  size_t max_children, kb_metric_family_t **fam, char *errstr,
                  size_t errstr_size)
{
        kb_metric_desc_t d;

        memset(&d, 0, sizeof(d));
        d.name = name;
        d.help = help;
        d.type = type;
        d.labels = labels;
        d.max_children = max_children;
        return kb_metrics_register(o->reg, &d, fam, errstr, errstr_size);
}

static int histogram(kb_ops_http_t *o, const char *name, const char *help,
                     const char *const *labels, size_t max_children,
                     const double *buckets, size_t bucket_cnt,
                     kb_metric_family_t **fam, char *errstr, size_t errstr_size)
{
        kb_metric_desc_t d;

        memset(&d, 0, sizeof(d));
        d.name = name;
        d.help = help;
        d.type = KB_METRIC_HISTOGRAM;
        d.labels = labels;
        d.max_children = max_children;
        d.buckets = buckets;
        d.bucket_cnt = bucket_cnt;
        return kb_metrics_register(o->reg, &d, fam, errstr, errstr_size);
}

static void collect_lag(void *opaque, kb_metric_emit_t *emit)
{
        kb_ops_http_t *o = opaque;
        char part[16];
        size_t i;

        pthread_mutex_lock(&o->snap_mu);
        for (i = 0; i < o->snap->lag_cnt; i++) {
                const lag_t *l = &o->snap->lag[i];
                snprintf(part, sizeof(part), "%d", (int)l->partition);
                kb_metric_emit(emit, (double)l->lag, o->role, l->topic, part);
        }
        pthread_mutex_unlock(&o->snap_mu);
}

static void collect_brokers(void *opaque, kb_metric_emit_t *emit)
{
        kb_ops_http_t *o = opaque;
        size_t i;

        pthread_mutex_lock(&o->snap_mu);
        for (i = 0; i < o->snap->broker_cnt; i++)
                kb_metric_emit(emit, o->snap->broker[i].up ? 1.0 : 0.0, o->role,
                               o->snap->broker[i].name);
        pthread_mutex_unlock(&o->snap_mu);
}

static void collect_ready(void *opaque, kb_metric_emit_t *emit)
{
        kb_ops_http_t *o = opaque;

        kb_metric_emit(emit, not_ready(o) ? 0.0 : 1.0, o->role);
}

static int collected(kb_ops_http_t *o, const char *name, const char *help,
                     const char *const *labels, size_t max_children,
                     kb_metric_collect_fn *fn, char *errstr, size_t errstr_size)
{
        kb_metric_family_t *fam;
        kb_metric_desc_t d;

        memset(&d, 0, sizeof(d));
        d.name = name;
        d.help = help;
        d.type = KB_METRIC_GAUGE;
        d.labels = labels;
        d.max_children = max_children;
        d.collect = fn;
        d.opaque = o;
        return kb_metrics_register(o->reg, &d, &fam, errstr, errstr_size);
}

/* The vendor client's families and their children. */
static int vendor_build(kb_ops_http_t *o, char *errstr, size_t errstr_size)
{
        static const char *const res_l[] = { "daemon", "result", NULL };
        static const char *const st_l[] = { "daemon", "status_class", NULL };
        static const char *const d_l[] = { "daemon", NULL };
        static const struct {
                const char *name, *help;
                kb_metric_type_t type;
        } one[] = {
                [V_RETRIES] = { "kyc_bridge_vendor_retries_total",
                                "Vendor HTTP attempts scheduled again (429, "
                                "5xx, timeout, transport failure).",
                                KB_METRIC_COUNTER },
                [V_TIMEOUTS] = { "kyc_bridge_vendor_timeouts_total",
                                 "Vendor HTTP attempts that timed out.",
                                 KB_METRIC_COUNTER },
                [V_IN_FLIGHT] = { "kyc_bridge_vendor_in_flight",
                                  "Vendor HTTP requests in flight now.",
                                  KB_METRIC_GAUGE },
                [V_PACED] = { "kyc_bridge_vendor_pacing_delay_seconds_total",
                              "Time vendor calls waited for the client's "
                              "own rate limit (vendor.rate_limit_per_minute).",
                              KB_METRIC_COUNTER },
                [V_PAUSED] = { "kyc_bridge_vendor_retry_after_seconds_total",
                               "Retry-After pauses the vendor asked for.",
                               KB_METRIC_COUNTER },
                [V_ANSWERED] = { "kyc_bridge_vendor_answered_total",
                                 "Vendor HTTP attempts that got an HTTP "
                                 "response.",
                                 KB_METRIC_COUNTER },
                [V_LATENCY] = { "kyc_bridge_vendor_latency_seconds_total",
                                "Sum of the latencies of the vendor HTTP "
                                "attempts that got a response (divide by "
                                "kyc_bridge_vendor_answered_total).",
                                KB_METRIC_COUNTER },
        };
        kb_metric_family_t *calls, *resp, *fam;
        size_t i;
        int r;

        if ((r = family(o, "kyc_bridge_vendor_calls_total",
                        "Vendor operations finished, by final result (ok: "
                        "a 2xx answer; error: any other final outcome).",
                        KB_METRIC_COUNTER, res_l, 4, &calls, errstr,
                        errstr_size)) ||
            (r = family(o, "kyc_bridge_vendor_responses_total",
                        "Vendor HTTP answers by status class (429, 5xx).",
                        KB_METRIC_COUNTER, st_l, 4, &resp, errstr,
                        errstr_size)))
                return r;
        o->v[V_OK] = kb_metric_child(calls, o->role, "ok");
        o->v[V_ERROR] = kb_metric_child(calls, o->role, "error");
        o->v[V_429] = kb_metric_child(resp, o->role, "429");
        o->v[V_5XX] = kb_metric_child(resp, o->role, "5xx");
        for (i = 0; i < sizeof(one) / sizeof(one[0]); i++) {
                if (!one[i].name)
                        continue;
                if ((r = family(o, one[i].name, one[i].help, one[i].type, d_l,
                                2, &fam, errstr, errstr_size)))
                        return r;
                o->v[i] = kb_metric_child(fam, o->role);
        }
        for (i = 0; i < V_CNT; i++)
                if (!o->v[i]) {
                        kb_snprintf(errstr, errstr_size, "out of memory");
                        return KB_ERR_NOMEM;
                }
        return KB_OK;
}

/* The families of issue 10: per-attempt vendor figures, commits,
 * hand-offs, broker timeouts, key ids, webhook rules. */
static int more_build(kb_ops_http_t *o, char *errstr, size_t errstr_size)
{
        static const char *const vreq_l[] = { "daemon", "endpoint", "status",
                                              NULL };
        static const char *const vdur_l[] = { "daemon", "endpoint", NULL };
        static const char *const d_l[] = { "daemon", NULL };
        static const char *const brk_l[] = { "daemon", "broker", NULL };
        static const char *const key_l[] = { "daemon", "role", "key_id", NULL };
        static const char *const rule_l[] = { "daemon", "rule", NULL };
        kb_metric_family_t *cd, *tr, *ho;
        size_t i;
        int r;

        if ((r = family(o, "kyc_bridge_vendor_requests_total",
                        "Vendor HTTP attempts (retries each count), by "
                        "endpoint (share, import, list_sessions, decision, "
                        "workflow) and HTTP status; status 0: no answer "
                        "(transport failure or timeout).",
                        KB_METRIC_COUNTER, vreq_l, VENDOR_REQ_CHILDREN,
                        &o->vreq, errstr, errstr_size)) ||
            (r = histogram(o, "kyc_bridge_vendor_request_duration_seconds",
                           "Latency of the vendor HTTP attempts that got an "
                           "answer, by endpoint.",
                           vdur_l, 8, vendor_buckets, ARRAY_CNT(vendor_buckets),
                           &o->vdur, errstr, errstr_size)) ||
            (r = histogram(o, "kyc_bridge_transaction_commit_duration_seconds",
                           "Time a committed Kafka transaction took, from "
                           "producing its records to the end of "
                           "commit_transaction().",
                           d_l, 2, commit_buckets, ARRAY_CNT(commit_buckets),
                           &cd, errstr, errstr_size)) ||
            (r = histogram(o, "kyc_bridge_transaction_records",
                           "Input records per committed Kafka transaction.",
                           d_l, 2, records_buckets, ARRAY_CNT(records_buckets),
                           &tr, errstr, errstr_size)) ||
            (r = histogram(o, "kyc_bridge_handoff_latency_seconds",
                           "Importer: time from the share request (the "
                           "issuer's input record, or the webhook delivery) "
                           "to the committed downstream record, across both "
                           "companies' clocks (a negative difference counts "
                           "as 0; a redrive counts from the first request).",
                           d_l, 2, handoff_buckets, ARRAY_CNT(handoff_buckets),
                           &ho, errstr, errstr_size)) ||
            (r = family(o, "kyc_bridge_broker_request_timeouts_total",
                        "Requests of the daemon's Kafka clients (the "
                        "consumer and the transactional producer) to a "
                        "broker that timed out, from librdkafka's "
                        "statistics (req_timeouts).",
                        KB_METRIC_COUNTER, brk_l, KB_OPS_BROKERS_MAX,
                        &o->brk_to, errstr, errstr_size)) ||
            (r = family(o, "kyc_bridge_key_ids",
                        "1 for each key id in use, by role: sign (our "
                        "signing key), box (our opening keys, whose public "
                        "halves envelopes to us are sealed to), "
                        "partner_box (the partner keys we seal to), "
                        "partner_sign (the partner signing keys we trust). "
                        "Key ids are public digests, never key material.",
                        KB_METRIC_GAUGE, key_l, KEY_IDS_CHILDREN, &o->keys,
                        errstr, errstr_size)) ||
            (r = family(o, "kyc_bridge_webhook_share_requests_total",
                        "Share requests the webhook sharing rules made, by "
                        "rule (rule.<name>.*), one per partner; counted "
                        "when made, so a delivery the vendor sends again "
                        "after a failure counts again.",
                        KB_METRIC_COUNTER, rule_l, RULES_CHILDREN, &o->rules,
                        errstr, errstr_size)))
                return r;
        o->commit_dur = kb_metric_child(cd, o->role);
        o->txn_recs = kb_metric_child(tr, o->role);
        o->handoff = kb_metric_child(ho, o->role);
        if (!o->commit_dur || !o->txn_recs || !o->handoff) {
                kb_snprintf(errstr, errstr_size, "out of memory");
                return KB_ERR_NOMEM;
        }
        /* the latency of each endpoint, shown (count 0) from the start */
        for (i = 0; i < VENDOR_ENDPOINTS; i++) {
                o->vdur_ep[i] =
                    kb_metric_child(o->vdur, o->role, vendor_endpoints[i]);
                if (!o->vdur_ep[i]) {
                        kb_snprintf(errstr, errstr_size, "out of memory");
                        return KB_ERR_NOMEM;
                }
        }
        return KB_OK;
}

static int registry_build(kb_ops_http_t *o, char *errstr, size_t errstr_size)
{
        static const char *const rec_l[] = { "daemon", "outcome", NULL };
        static const char *const dead_l[] = { "daemon", "reason", NULL };
        static const char *const txn_l[] = { "daemon", "result", NULL };
        static const char *const d_l[] = { "daemon", NULL };
        static const char *const lag_l[] = { "daemon", "topic", "partition",
                                             NULL };
        static const char *const brk_l[] = { "daemon", "broker", NULL };
        kb_metric_family_t *rec, *txn, *infl;
        int r;

        o->reg = kb_metrics_new(errstr, errstr_size);
        if (!o->reg)
                return KB_ERR_NOMEM;
        if ((r = kb_metrics_add_build_info(o->reg, KB_VERSION_STR, errstr,
                                           errstr_size)) ||
            (r = kb_metrics_add_process_start_time(o->reg, 0, errstr,
                                                   errstr_size)) ||
            (r = family(o, "kyc_bridge_records_total",
                        "Input records whose outcome was committed, by "
                        "outcome: published (issuer: envelope published; "
                        "importer: imported), reconciled (importer: an "
                        "import refused as already done after a retry, "
                        "found and published), replayed (a share_id "
                        "already handled or in flight: nothing published "
                        "again), dead_lettered (see "
                        "kyc_bridge_dead_letters_total), skipped (nothing "
                        "to do: another partner's record on a shared "
                        "topic).",
                        KB_METRIC_COUNTER, rec_l, 8, &rec, errstr,
                        errstr_size)) ||
            (r = family(o, "kyc_bridge_dead_letters_total",
                        "Dead letters committed, by reason.", KB_METRIC_COUNTER,
                        dead_l, 64, &o->dead, errstr, errstr_size)) ||
            (r = family(o, "kyc_bridge_transactions_total",
                        "Kafka transactions, by result (committed, "
                        "aborted).",
                        KB_METRIC_COUNTER, txn_l, 4, &txn, errstr,
                        errstr_size)) ||
            (r = family(o, "kyc_bridge_records_in_flight",
                        "Input records taken and not yet finished.",
                        KB_METRIC_GAUGE, d_l, 2, &infl, errstr, errstr_size)) ||
            (r = vendor_build(o, errstr, errstr_size)) ||
            (r = more_build(o, errstr, errstr_size)) ||
            (r = collected(o, "kyc_bridge_consumer_lag",
                           "Records of an assigned input partition not "
                           "read yet: its end (last stable offset) minus "
                           "the consumer's position, from librdkafka's "
                           "statistics.",
                           lag_l, KB_OPS_LAG_MAX, collect_lag, errstr,
                           errstr_size)) ||
            (r = collected(o, "kyc_bridge_broker_state_up",
                           "1 while the consumer's connection to a broker "
                           "is up, else 0, from librdkafka's statistics "
                           "(bootstrap entries left out).",
                           brk_l, KB_OPS_BROKERS_MAX, collect_brokers, errstr,
                           errstr_size)) ||
            (r = collected(o, "kyc_bridge_ready",
                           "1 exactly when GET /readyz would answer 200 "
                           "(computed when scraped, like /readyz), else 0.",
                           d_l, 1, collect_ready, errstr, errstr_size)))
                return r == KB_ERR_NOMEM ? r : KB_ERR_STATE;
        o->rec[KB_OPS_PUBLISHED] = kb_metric_child(rec, o->role, "published");
        o->rec[KB_OPS_DEAD_LETTERED] =
            kb_metric_child(rec, o->role, "dead_lettered");
        o->rec[KB_OPS_SKIPPED] = kb_metric_child(rec, o->role, "skipped");
        o->rec[KB_OPS_REPLAYED] = kb_metric_child(rec, o->role, "replayed");
        o->rec[KB_OPS_RECONCILED] = kb_metric_child(rec, o->role, "reconciled");
        o->txn[0] = kb_metric_child(txn, o->role, "committed");
        o->txn[1] = kb_metric_child(txn, o->role, "aborted");
        o->in_flight = kb_metric_child(infl, o->role);
        if (!o->rec[0] || !o->rec[1] || !o->rec[2] || !o->rec[3] ||
            !o->rec[4] || !o->txn[0] || !o->txn[1] || !o->in_flight) {
                kb_snprintf(errstr, errstr_size, "out of memory");
                return KB_ERR_NOMEM;
        }
        return KB_OK;
}

int kb_ops_http_new(const kb_conf_t *conf, const char *role,
                    kb_ops_http_t **out, char *errstr, size_t errstr_size)
{
        const char *listen = kb_conf_get(conf, "metrics.listen");
        const char *wl = kb_conf_get(conf, "webhook.listen");
        char herr[256];
        kb_httpd_conf_t hc;
        kb_ops_http_t *o;
        int r;

        *out = NULL;
        if (!listen || !*listen)
                return KB_OK;
        o = calloc(1, sizeof(*o));
        if (!o)
                return KB_ERR_NOMEM;
        atomic_init(&o->beat_ms, (long long)kb_mono_ms());
        atomic_init(&o->state, KB_OPS_STARTING);
        atomic_init(&o->port, 0);
        atomic_init(&o->no_broker, 0);
        kb_strlcpy(o->role, role, sizeof(o->role));
        kb_snprintf(o->name, sizeof(o->name), "%s-ops", role);
        kb_strlcpy(o->listen, listen, sizeof(o->listen));
        o->snap = calloc(1, sizeof(*o->snap));
        o->scratch = calloc(1, sizeof(*o->scratch));
        if (!o->snap || !o->scratch ||
            pthread_mutex_init(&o->snap_mu, NULL) != 0) {
                kb_snprintf(errstr, errstr_size, "out of memory");
                r = KB_ERR_NOMEM;
                goto fail;
        }
        o->snap_mu_ok = 1;

        /* checks the address (loopback unless allowed) in every case; the
         * server is used only when not shared, and never bound here */
        memset(&hc, 0, sizeof(hc));
        hc.listen = listen;
        hc.allow_non_loopback =
            kb_conf_get_bool(conf, "metrics.allow_non_loopback");
        hc.body_max = 1024;
        hc.threads = 1;
        hc.name = o->name;
        o->h = kb_httpd_new(&hc, &r, herr, sizeof(herr));
        if (!o->h) {
                kb_snprintf(errstr, errstr_size, "%s: metrics.listen: %s",
                            kb_conf_origin(conf, "metrics.listen"), herr);
                goto fail;
        }
        o->shared = wl && !strcmp(wl, listen);
        if (o->shared) {
                kb_httpd_destroy(o->h, 0);
                o->h = NULL;
        } else if ((r = add_routes(o, o->h)) != KB_OK) {
                kb_snprintf(errstr, errstr_size, "metrics routes: %s",
                            kb_err2str(r));
                goto fail;
        }
        r = registry_build(o, errstr, errstr_size);
        if (r != KB_OK) {
                if (r == KB_ERR_STATE) /* a name refused: our bug */
                        r = KB_ERR_CONFIG;
                goto fail;
        }
        *out = o;
        return KB_OK;
fail:
        kb_ops_http_destroy(o);
        return r == KB_ERR_NOMEM ? r : KB_ERR_CONFIG;
}

int kb_ops_http_wants_share(const kb_ops_http_t *o)
{
        return o && o->shared;
}

int kb_ops_http_share(kb_ops_http_t *o, kb_httpd_t *h)
{
        return o ? add_routes(o, h) : KB_OK;
}

int kb_ops_http_start(kb_ops_http_t *o, char *errstr, size_t errstr_size)
{
        char herr[256];

        if (!o)
                return KB_OK;
        atomic_store(&o->beat_ms, (long long)kb_mono_ms());
        if (o->shared) {
                kb_log_notice(o->name,
                              "GET /livez, /readyz, /metrics on the webhook "
                              "intake's server (%s)",
                              o->listen);
                return KB_OK;
        }
        if (kb_httpd_start(o->h, herr, sizeof(herr)) != KB_OK) {
                kb_snprintf(errstr, errstr_size,
                            "metrics.listen %s: cannot listen: %s", o->listen,
                            herr);
                return KB_ERR_IO;
        }
        atomic_store(&o->port, kb_httpd_port(o->h));
        kb_log_notice(o->name,
                      "listening on %s (port %d): GET /livez, /readyz, "
                      "/metrics",
                      o->listen, kb_httpd_port(o->h));
        return KB_OK;
}

int kb_ops_http_port(const kb_ops_http_t *o)
{
        return o ? atomic_load(&((kb_ops_http_t *)o)->port) : 0;
}

void kb_ops_http_beat(kb_ops_http_t *o, const kb_pipeline_stats_t *ps)
{
        if (!o)
                return;
        atomic_store(&o->beat_ms, (long long)kb_mono_ms());
        if (!ps)
                return;
        /* counters only grow: add what is new since the last beat */
        if (ps->txn_commits > o->last_commits)
                kb_metric_add(o->txn[0], ps->txn_commits - o->last_commits);
        if (ps->txn_aborts > o->last_aborts)
                kb_metric_add(o->txn[1], ps->txn_aborts - o->last_aborts);
        o->last_commits = ps->txn_commits;
        o->last_aborts = ps->txn_aborts;
        kb_metric_set(o->in_flight, (double)ps->in_flight);
}

/* Counters only grow: adds what is new since @p *last. */
static void add_new(kb_metric_t *m, uint64_t now, uint64_t *last)
{
        if (now > *last)
                kb_metric_add(m, now - *last);
        *last = now;
}

static void add_new_f(kb_metric_t *m, uint64_t now, uint64_t *last, double unit)
{
        if (now > *last)
                kb_metric_add_f(m, (double)(now - *last) / unit);
        *last = now;
}

void kb_ops_http_vendor(kb_ops_http_t *o, const kb_vendor_stats_t *vs)
{
        kb_vendor_stats_t *l;

        if (!o || !vs)
                return;
        l = &o->last_vs;
        add_new(o->v[V_OK], vs->ok, &l->ok);
        add_new(o->v[V_ERROR], vs->final_errors, &l->final_errors);
        add_new(o->v[V_RETRIES], vs->retried, &l->retried);
        add_new(o->v[V_429], vs->http_429, &l->http_429);
        add_new(o->v[V_5XX], vs->http_5xx, &l->http_5xx);
        add_new(o->v[V_TIMEOUTS], vs->timeouts, &l->timeouts);
        add_new(o->v[V_ANSWERED], vs->answered, &l->answered);
        add_new_f(o->v[V_PACED], vs->paced_ms, &l->paced_ms, 1e3);
        add_new_f(o->v[V_PAUSED], vs->paused_ms, &l->paused_ms, 1e3);
        add_new_f(o->v[V_LATENCY], vs->latency_us_sum, &l->latency_us_sum, 1e6);
        kb_metric_set(o->v[V_IN_FLIGHT], (double)vs->in_flight);
}

/* An integer member of @p obj, else -1. */
static int64_t int_of(json_object *obj, const char *key)
{
        json_object *v;

        if (!json_object_object_get_ex(obj, key, &v) ||
            !json_object_is_type(v, json_type_int))
                return -1;
        return json_object_get_int64(v);
}

static const char *str_of(json_object *obj, const char *key)
{
        json_object *v;

        if (!json_object_object_get_ex(obj, key, &v) ||
            !json_object_is_type(v, json_type_string))
                return "";
        return json_object_get_string(v);
}

/* The partitions of topic @p name assigned to us into @p s. */
static void snap_topic(snap_t *s, const char *name, json_object *topic)
{
        struct json_object_iterator it, end;
        json_object *parts, *desired;

        if (strlen(name) > KB_METRICS_LABEL_VALUE_MAX ||
            !json_object_object_get_ex(topic, "partitions", &parts) ||
            !json_object_is_type(parts, json_type_object))
                return;
        it = json_object_iter_begin(parts);
        end = json_object_iter_end(parts);
        for (; !json_object_iter_equal(&it, &end); json_object_iter_next(&it)) {
                json_object *p = json_object_iter_peek_value(&it);
                int64_t part = int_of(p, "partition");
                int64_t stable = int_of(p, "ls_offset");
                int64_t hi = int_of(p, "hi_offset");
                int64_t pos = int_of(p, "app_offset");
                int64_t committed = int_of(p, "committed_offset");
                int64_t endo = stable >= 0 ? stable : hi;
                lag_t *l;

                if (committed > pos)
                        pos = committed;
                /* nothing read nor committed yet: the consumer starts at
                 * the earliest record (auto.offset.reset) */
                if (pos < 0)
                        pos = int_of(p, "lo_offset");
                /* partition -1 (librdkafka's unassigned messages), a
                 * partition not assigned to us, an unknown offset */
                if (part < 0 || part > INT32_MAX ||
                    !json_object_object_get_ex(p, "desired", &desired) ||
                    !json_object_get_boolean(desired) || endo < 0 || pos < 0 ||
                    s->lag_cnt >= KB_OPS_LAG_MAX)
                        continue;
                l = &s->lag[s->lag_cnt++];
                kb_strlcpy(l->topic, name, sizeof(l->topic));
                l->partition = (int32_t)part;
                l->lag = endo > pos ? endo - pos : 0;
        }
}

/*
 * Engine thread: broker @p name has had @p now request timeouts, as the
 * statistics of @p client say. The figure is the client instance's own
 * and only grows; one below what we saw last is a new client (created
 * again), whose whole figure is new. Both clients' timeouts add up in
 * one series per broker; each client's figure is followed on its own.
 */
static void broker_timeouts(kb_ops_http_t *o, int client, const char *name,
                            int64_t now)
{
        brk_to_t *seen = o->brk_seen[client], *t = NULL;
        size_t i, *cnt = &o->brk_seen_cnt[client];

        if (now < 0)
                return;
        for (i = 0; i < *cnt && !t; i++)
                if (!strcmp(seen[i].name, name))
                        t = &seen[i];
        if (!t) {
                if (*cnt >= KB_OPS_BROKERS_MAX)
                        return;
                t = &seen[*cnt];
                t->m = kb_metric_child(o->brk_to, o->role, name);
                if (!t->m)
                        return; /* out of memory: next time */
                kb_strlcpy(t->name, name, sizeof(t->name));
                t->last = 0;
                (*cnt)++;
        }
        kb_metric_add(t->m, (uint64_t)(now >= t->last ? now - t->last : now));
        t->last = now;
}

/*
 * librdkafka's entry of a bootstrap server (bootstrap.servers) before or
 * besides the broker it turns out to be: named "<host:port>/bootstrap"
 * (with "<proto>://" before it on other than plaintext listeners), node
 * id -1, source "configured". Not a broker of the cluster: the same
 * broker has its own entry once learned ("<host:port>/<node id>").
 */
static int is_bootstrap(const char *name, json_object *b)
{
        static const char sfx[] = "/bootstrap";
        size_t n = strlen(name);
        json_object *v;

        if (n >= sizeof(sfx) - 1 && !strcmp(name + n - (sizeof(sfx) - 1), sfx))
                return 1;
        return json_object_object_get_ex(b, "nodeid", &v) &&
               json_object_is_type(v, json_type_int) &&
               json_object_get_int64(v) < 0;
}

/* librdkafka's statistics document @p json into *@p rootp (an object;
 * the caller puts it). KB_OK, KB_ERR_INVALID_ARG (not a JSON object) or
 * KB_ERR_NOMEM. */
static int stats_parse(const char *json, size_t len, json_object **rootp)
{
        json_tokener *tok;
        json_object *root;

        if (len > INT_MAX)
                return KB_ERR_INVALID_ARG;
        tok = json_tokener_new();
        if (!tok)
                return KB_ERR_NOMEM;
        root = json_tokener_parse_ex(tok, json, (int)len);
        if (json_tokener_get_error(tok) != json_tokener_success ||
            !json_object_is_type(root, json_type_object)) {
                json_tokener_free(tok);
                json_object_put(root);
                return KB_ERR_INVALID_ARG;
        }
        json_tokener_free(tok);
        *rootp = root;
        return KB_OK;
}

int kb_ops_http_consumer_stats(kb_ops_http_t *o, const char *json, size_t len)
{
        struct json_object_iterator it, end;
        json_object *root, *topics, *brokers;
        snap_t *s;
        int up, r;

        if (!o)
                return KB_OK;
        if ((r = stats_parse(json, len, &root)) != KB_OK)
                return r;
        s = o->scratch;
        s->lag_cnt = s->broker_cnt = 0;
        up = -1;
        if (json_object_object_get_ex(root, "topics", &topics) &&
            json_object_is_type(topics, json_type_object)) {
                it = json_object_iter_begin(topics);
                end = json_object_iter_end(topics);
                for (; !json_object_iter_equal(&it, &end);
                     json_object_iter_next(&it))
                        snap_topic(s, json_object_iter_peek_name(&it),
                                   json_object_iter_peek_value(&it));
        }
        if (json_object_object_get_ex(root, "brokers", &brokers) &&
            json_object_is_type(brokers, json_type_object)) {
                it = json_object_iter_begin(brokers);
                end = json_object_iter_end(brokers);
                up = 0;
                for (; !json_object_iter_equal(&it, &end);
                     json_object_iter_next(&it)) {
                        const char *name = json_object_iter_peek_name(&it);
                        json_object *b = json_object_iter_peek_value(&it);
                        const char *src = str_of(b, "source");

                        /* a connection to a broker, a coordinator's too
                         * (a logical view of a real broker with its own
                         * connection) and a bootstrap one, is a broker
                         * reached; "internal" is librdkafka's own */
                        if (strcmp(src, "internal") &&
                            !strcmp(str_of(b, "state"), "UP"))
                                up++;
                        /* shown: the brokers of the cluster, by name */
                        if (!strcmp(src, "logical") ||
                            !strcmp(src, "internal") || is_bootstrap(name, b) ||
                            strlen(name) > KB_METRICS_LABEL_VALUE_MAX ||
                            s->broker_cnt >= KB_OPS_BROKERS_MAX)
                                continue;
                        broker_timeouts(o, CLIENT_CONSUMER, name,
                                        int_of(b, "req_timeouts"));
                        kb_strlcpy(s->broker[s->broker_cnt].name, name,
                                   sizeof(s->broker[0].name));
                        s->broker[s->broker_cnt++].up =
                            !strcmp(str_of(b, "state"), "UP");
                }
        }
        json_object_put(root);
        pthread_mutex_lock(&o->snap_mu);
        o->scratch = o->snap;
        o->snap = s;
        pthread_mutex_unlock(&o->snap_mu);
        /* statistics without "brokers" say nothing either way */
        if (up > 0)
                atomic_store(&o->no_broker, 0);
        else if (up == 0 && atomic_load(&o->no_broker) < INT_MAX)
                atomic_fetch_add(&o->no_broker, 1);
        return KB_OK;
}

int kb_ops_http_producer_stats(kb_ops_http_t *o, const char *json, size_t len)
{
        struct json_object_iterator it, end;
        json_object *root, *brokers;
        int64_t now = kb_mono_ms();
        int r;

        if (!o)
                return KB_OK;
        /* the producer reports every second (the /livez heartbeat); its
         * timeouts are read at the consumer's pace */
        if (o->producer_stats_ms &&
            now - o->producer_stats_ms < PRODUCER_STATS_EVERY_MS)
                return KB_OK;
        if ((r = stats_parse(json, len, &root)) != KB_OK)
                return r;
        o->producer_stats_ms = now;
        if (json_object_object_get_ex(root, "brokers", &brokers) &&
            json_object_is_type(brokers, json_type_object)) {
                it = json_object_iter_begin(brokers);
                end = json_object_iter_end(brokers);
                for (; !json_object_iter_equal(&it, &end);
                     json_object_iter_next(&it)) {
                        const char *name = json_object_iter_peek_name(&it);
                        json_object *b = json_object_iter_peek_value(&it);
                        const char *src = str_of(b, "source");

                        if (!strcmp(src, "logical") ||
                            !strcmp(src, "internal") || is_bootstrap(name, b) ||
                            strlen(name) > KB_METRICS_LABEL_VALUE_MAX)
                                continue;
                        broker_timeouts(o, CLIENT_PRODUCER, name,
                                        int_of(b, "req_timeouts"));
                }
        }
        json_object_put(root);
        return KB_OK;
}

void kb_ops_http_state(kb_ops_http_t *o, kb_ops_state_t st)
{
        if (o)
                atomic_store(&o->state, (int)st);
}

void kb_ops_http_record(kb_ops_http_t *o, kb_ops_outcome_t outcome)
{
        if (o && (unsigned)outcome < KB_OPS_OUTCOMES)
                kb_metric_inc(o->rec[outcome]);
}

/* The vendor client's thread: the child of (@p endpoint, @p status) of
 * kyc_bridge_vendor_requests_total, looked up once per pair while the
 * cache has room (@p ep: index in vendor_endpoints, -1 for a name we do
 * not know: looked up each time). */
static kb_metric_t *vreq_child(kb_ops_http_t *o, int ep, const char *endpoint,
                               int status)
{
        kb_metric_t *m;
        vreq_pair_t *c;
        char st[16];
        size_t i;

        for (i = 0; ep >= 0 && i < o->vreq_pair_cnt; i++)
                if (o->vreq_pair[i].endpoint == ep &&
                    o->vreq_pair[i].status == status)
                        return o->vreq_pair[i].m;
        snprintf(st, sizeof(st), "%d", status);
        o->vendor_lookups++;
        m = kb_metric_child(o->vreq, o->role, endpoint, st);
        if (ep < 0 || !m || o->vreq_pair_cnt >= VENDOR_PAIRS_CACHED)
                return m; /* not kept: looked up again next time */
        c = &o->vreq_pair[o->vreq_pair_cnt++];
        c->endpoint = ep;
        c->status = status;
        c->m = m;
        return m;
}

void kb_ops_http_vendor_attempt(void *opaque, const char *endpoint, int status,
                                int64_t latency_us)
{
        kb_ops_http_t *o = opaque;
        kb_metric_t *dur;
        int ep = -1;
        size_t i;

        if (!o || !endpoint)
                return;
        /* an HTTP status has three digits; anything else is no answer */
        if (status < 100 || status > 599)
                status = 0;
        for (i = 0; i < VENDOR_ENDPOINTS && ep < 0; i++)
                if (!strcmp(endpoint, vendor_endpoints[i]))
                        ep = (int)i;
        kb_metric_inc(vreq_child(o, ep, endpoint, status));
        if (!status)
                return;
        if (ep >= 0) {
                dur = o->vdur_ep[ep];
        } else {
                o->vendor_lookups++;
                dur = kb_metric_child(o->vdur, o->role, endpoint);
        }
        kb_metric_observe(dur, latency_us > 0 ? (double)latency_us / 1e6 : 0.0);
}

uint64_t kb_ops_http_vendor_lookups(const kb_ops_http_t *o)
{
        return o ? o->vendor_lookups : 0;
}

void kb_ops_http_commit(kb_ops_http_t *o, double seconds, uint64_t records)
{
        if (!o)
                return;
        kb_metric_observe(o->commit_dur, seconds > 0 ? seconds : 0.0);
        kb_metric_observe(o->txn_recs, (double)records);
}

void kb_ops_http_handoff(kb_ops_http_t *o, double seconds)
{
        if (!o || seconds != seconds) /* NaN */
                return;
        kb_metric_observe(o->handoff, seconds > 0 ? seconds : 0.0);
}

int kb_ops_http_key_id(kb_ops_http_t *o, const char *role, const char *key_id)
{
        size_t i, n;

        if (!o)
                return KB_OK;
        if (!role || !key_id)
                return KB_ERR_INVALID_ARG;
        /* lowercase hex and short: whatever the caller passes, a key (32
         * bytes, 64 hex digits) or anything else cannot get out here */
        n = strlen(key_id);
        if (n == 0 || n > KEY_ID_MAX)
                return KB_ERR_INVALID_ARG;
        for (i = 0; i < n; i++)
                if (!((key_id[i] >= '0' && key_id[i] <= '9') ||
                      (key_id[i] >= 'a' && key_id[i] <= 'f')))
                        return KB_ERR_INVALID_ARG;
        if (strcmp(role, "sign") && strcmp(role, "box") &&
            strcmp(role, "partner_box") && strcmp(role, "partner_sign"))
                return KB_ERR_INVALID_ARG;
        kb_metric_set(kb_metric_child(o->keys, o->role, role, key_id), 1.0);
        return KB_OK;
}

void kb_ops_http_rule(kb_ops_http_t *o, const char *rule)
{
        if (o && rule)
                (void)kb_metric_child(o->rules, o->role, rule);
}

void kb_ops_http_rule_shares(void *opaque, const char *rule, unsigned n)
{
        kb_ops_http_t *o = opaque;

        if (o && rule)
                kb_metric_add(kb_metric_child(o->rules, o->role, rule), n);
}

void kb_ops_http_dead_letter(kb_ops_http_t *o, const char *reason)
{
        if (!o)
                return;
        kb_metric_inc(o->rec[KB_OPS_DEAD_LETTERED]);
        kb_metric_inc(kb_metric_child(o->dead, o->role,
                                      reason && *reason ? reason : "unknown"));
}

void kb_ops_http_destroy(kb_ops_http_t *o)
{
        if (!o)
                return;
        atomic_store(&o->port, 0);
        kb_httpd_destroy(o->h, HTTPD_GRACE_MS);
        kb_metrics_destroy(o->reg);
        if (o->snap_mu_ok)
                pthread_mutex_destroy(&o->snap_mu);
        free(o->snap);
        free(o->scratch);
        free(o);
}
