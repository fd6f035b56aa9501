/* ops_http.h -- a daemon's operations endpoints: /livez, /readyz and
 * /metrics (metrics.listen), and the metrics the processor keeps */
#ifndef KB_OPS_HTTP_H
#define KB_OPS_HTTP_H

#include <stddef.h>
#include <stdint.h>

#include "conf.h"
#include "httpd.h"
#include "pipeline.h"
#include "vendor.h"

/*
 * Life cycle (processor.c drives it):
 *  - kb_ops_http_new() in kb_proc_init(): checks metrics.listen (numeric
 *    HOST:PORT, loopback unless metrics.allow_non_loopback) and builds the
 *    registry; nothing listens yet;
 *  - when metrics.listen equals webhook.listen, kb_ops_http_share() puts
 *    the routes on the webhook intake's server (before it starts), else
 *    kb_ops_http_start() listens on a server of its own;
 *  - the engine thread reports: kb_ops_http_beat() from the poll
 *    callback, kb_ops_http_record() / kb_ops_http_dead_letter() as
 *    records' outcomes commit, kb_ops_http_state() as the daemon goes;
 *  - kb_ops_http_destroy() once nothing reports any more.
 * The handlers read atomics, the registry and a snapshot of the
 * consumer's statistics (kb_ops_http_consumer_stats(), copied under a
 * mutex): they never call out and never touch the pipeline, the consumer
 * or the vendor client. Every function takes NULL as a no-op.
 */
typedef struct kb_ops_http_s kb_ops_http_t;

/* What /readyz says. */
typedef enum {
        KB_OPS_STARTING = 0, /* the transactional producer not ready yet */
        KB_OPS_RUNNING = 1,  /* the pipeline runs */
        KB_OPS_HELD = 2,     /* stopped on a vendor (credential) or
                                resource failure: input held */
        KB_OPS_STOPPING = 3, /* an orderly stop */
} kb_ops_state_t;

/* Outcomes of kyc_bridge_records_total. */
typedef enum {
        KB_OPS_PUBLISHED = 0,     /* issuer: published; importer: imported */
        KB_OPS_DEAD_LETTERED = 1, /* use kb_ops_http_dead_letter() */
        KB_OPS_SKIPPED = 2,       /* nothing to do (another partner's) */
        KB_OPS_REPLAYED = 3,      /* share_id already handled / in flight */
        KB_OPS_RECONCILED = 4,    /* importer: 403 after a retry, found */
        KB_OPS_OUTCOMES = 5
} kb_ops_outcome_t;

/**
 * Builds the endpoints of daemon @p role from metrics.listen of @p conf;
 * *out stays NULL when it is empty. KB_OK, KB_ERR_CONFIG ("origin: key:
 * reason" in @p errstr) or KB_ERR_NOMEM.
 */
int kb_ops_http_new(const kb_conf_t *conf, const char *role,
                    kb_ops_http_t **out, char *errstr,
                    size_t errstr_size) KB_WUR;

/** Non-zero when metrics.listen is the same address as webhook.listen:
 * the routes then belong on the intake's server (kb_ops_http_share()). */
int kb_ops_http_wants_share(const kb_ops_http_t *o);

/** Adds the routes to @p h (not started; the webhook intake's server),
 * instead of a server of our own. KB_OK or an error of kb_httpd_route(). */
int kb_ops_http_share(kb_ops_http_t *o, kb_httpd_t *h) KB_WUR;

/** Starts our own server (no-op when shared). KB_OK or KB_ERR_IO with a
 * reason in @p errstr. Logs the address and port. */
int kb_ops_http_start(kb_ops_http_t *o, char *errstr,
                      size_t errstr_size) KB_WUR;

/** The port our own server listens on, else 0. Any thread. */
int kb_ops_http_port(const kb_ops_http_t *o);

/** Engine thread: the loop turns (for /livez); with @p ps (may be NULL),
 * also publishes the transactions and records in flight. */
void kb_ops_http_beat(kb_ops_http_t *o, const kb_pipeline_stats_t *ps);

/** Engine thread: publishes the vendor client's figures (from
 * kb_vendor_stats() on the same thread; counters add what is new since
 * the last call). */
void kb_ops_http_vendor(kb_ops_http_t *o, const kb_vendor_stats_t *vs);

/* Partitions and brokers a statistics snapshot keeps at most. */
#define KB_OPS_LAG_MAX     256
#define KB_OPS_BROKERS_MAX 32

/**
 * Engine thread (the consumer's statistics callback): reads the
 * @p len bytes of librdkafka statistics JSON @p json and replaces the
 * snapshot /metrics shows: the lag of each partition assigned to us
 * (topics -> partitions; partition -1, unassigned ones and unknown
 * offsets left out; at most KB_OPS_LAG_MAX) and the state of each broker
 * (at most KB_OPS_BROKERS_MAX) by librdkafka's name, "host:port/id"
 * ("ssl://host:port/id" and the like on other than plaintext
 * listeners), leaving out its bootstrap entries ("host:port/bootstrap",
 * node id -1: not brokers of the cluster), coordinators and the internal
 * one; adds each such broker's new request timeouts (req_timeouts; a
 * figure that went down is a new client's, all new) and counts the
 * consecutive statistics in which no broker connection (a coordinator's
 * or a bootstrap one included) was UP, for /readyz (statistics without a
 * "brokers" object leave that count as it was). KB_OK,
 * KB_ERR_INVALID_ARG (not such JSON: nothing changes) or KB_ERR_NOMEM.
 */
int kb_ops_http_consumer_stats(kb_ops_http_t *o, const char *json, size_t len);

/**
 * Engine thread, from the transactional producer's statistics callback:
 * adds the growth of each broker's request timeouts (req_timeouts) to
 * kyc_bridge_broker_request_timeouts_total, followed apart from the
 * consumer's. Reads at most one statistics document every 5 s (the
 * producer reports every second, as the heartbeat of /livez); returns
 * KB_OK for one skipped. KB_OK, KB_ERR_INVALID_ARG (not such JSON) or
 * KB_ERR_NOMEM.
 */
int kb_ops_http_producer_stats(kb_ops_http_t *o, const char *json, size_t len);

/** Sets what /readyz says (while RUNNING, /readyz also answers 503 "no
 * broker reachable" once the consumer's last two statistics in a row, see
 * kb_ops_http_consumer_stats(), showed no broker connection up, until one
 * shows one up). The gauge kyc_bridge_ready{daemon} is 1 exactly when
 * /readyz answers 200 (one function computes both at the time asked).
 * Any thread. */
void kb_ops_http_state(kb_ops_http_t *o, kb_ops_state_t st);

/** A record whose @p outcome was committed. Any thread. */
void kb_ops_http_record(kb_ops_http_t *o, kb_ops_outcome_t outcome);

/** A committed dead letter with @p reason (a fixed word of the daemon,
 * never a personal value); also counts the outcome. Any thread. */
void kb_ops_http_dead_letter(kb_ops_http_t *o, const char *reason);

/**
 * kb_vendor_observe_cb (vendor.h) with @p opaque the kb_ops_http_t: one
 * finished vendor HTTP attempt. Counts
 * kyc_bridge_vendor_requests_total{daemon,endpoint,status} (status 0: no
 * answer) and, when answered, observes
 * kyc_bridge_vendor_request_duration_seconds{daemon,endpoint}. Set it
 * with kb_vendor_set_observer(); the vendor client calls it from
 * kb_vendor_poll()/kb_vendor_wait(), on its one thread (the engine
 * thread; kb_issuer_share_one()'s caller, with no engine) -- only ever
 * one thread per kb_ops_http_t: the children it uses are looked up once
 * (the five endpoints' latency children at start, each (endpoint,
 * status) pair at its first attempt, up to 32 pairs) and kept in a cache
 * of that thread's.
 */
void kb_ops_http_vendor_attempt(void *opaque, const char *endpoint, int status,
                                int64_t latency_us);

/** Test hook: the family look-ups (kb_metric_child()) that
 * kb_ops_http_vendor_attempt() made so far -- one per new pair once
 * cached. Same thread as kb_ops_http_vendor_attempt(). */
uint64_t kb_ops_http_vendor_lookups(const kb_ops_http_t *o);

/** Engine thread: a Kafka transaction committed after @p seconds with
 * @p records input records (kyc_bridge_transaction_commit_duration_seconds,
 * kyc_bridge_transaction_records). */
void kb_ops_http_commit(kb_ops_http_t *o, double seconds, uint64_t records);

/** Observes kyc_bridge_handoff_latency_seconds (request made ->
 * downstream record committed): call when the record's transaction
 * committed. Negative (clocks apart) counts as 0, NaN not at all. Any
 * thread. */
void kb_ops_http_handoff(kb_ops_http_t *o, double seconds);

/**
 * kyc_bridge_key_ids{daemon,role,key_id} = 1: key @p key_id is in use as
 * @p role: "sign" (our signing key), "box" (one of our opening keys, whose
 * public halves envelopes to us are sealed to),
 * "partner_box" (a partner key we seal to), "partner_sign" (a partner
 * signing key we trust). @p key_id must be a key id (1..32 lowercase hex
 * digits): anything else, and another role, is refused with
 * KB_ERR_INVALID_ARG and not shown. Start-up, any thread.
 */
int kb_ops_http_key_id(kb_ops_http_t *o, const char *role, const char *key_id);

/** Shows kyc_bridge_webhook_share_requests_total{daemon,rule} of @p rule at 0
 * (start-up: every configured rule, so that rates exist from the start). */
void kb_ops_http_rule(kb_ops_http_t *o, const char *rule);

/** kb_wh_rules_share_fn (wh_rules.h) with @p opaque the kb_ops_http_t:
 * rule @p rule made @p n share requests. Any thread. */
void kb_ops_http_rule_shares(void *opaque, const char *rule, unsigned n);

/** Stops our own server, frees everything. A shared server must be gone
 * first (kb_wh_host_stop()). NULL is a no-op. */
void kb_ops_http_destroy(kb_ops_http_t *o);

#endif /* KB_OPS_HTTP_H */
