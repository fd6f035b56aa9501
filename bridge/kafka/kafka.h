/* kafka.h -- librdkafka configuration, logging and small helpers */
#ifndef KB_KAFKA_H
#define KB_KAFKA_H

#include <stdatomic.h>

#include <librdkafka/rdkafka.h>

#include "conf.h"
#include "trace.h"

/*
 * Builds a librdkafka configuration for a client of @p kind with kyc-bridge's
 * defaults, then every "kafka.*" option of @p conf on top (the user wins),
 * then @p extra (NULL-terminated key, value pairs) on top of that. librdkafka
 * logs and errors are routed into log.h. Returns NULL with "origin: key:
 * reason" in @p errstr on failure -- among them a bootstrap server that is
 * not loopback reached by plaintext or sasl_plaintext, unless @p conf sets
 * kafka_allow_plaintext (kb_kafka_conf_plaintext()).
 */
rd_kafka_conf_t *kb_kafka_conf_new(const kb_conf_t *conf, rd_kafka_type_t kind,
                                   const char *const *extra, char *errstr,
                                   size_t errstr_size);

/**
 * kb_conf_kafka_plaintext() on @p rkc's effective bootstrap.servers and
 * security.protocol: 0, -1 with the refused broker in @p bad, or
 * KB_ERR_NOMEM. The protocol ("plaintext" when unset) goes to @p proto.
 */
int kb_kafka_conf_plaintext(rd_kafka_conf_t *rkc, char *bad, size_t bad_size,
                            char *proto, size_t proto_size);

/**
 * Non-zero for an error that means the broker refused this client: an ACL
 * (TOPIC_, GROUP_, TRANSACTIONAL_ID_, CLUSTER_AUTHORIZATION_FAILED) or the
 * login (SASL_AUTHENTICATION_FAILED, __AUTHENTICATION). No retry gets past
 * one until an operator acts, and a retry may redo work (a vendor call).
 */
int kb_kafka_err_denied(rd_kafka_resp_err_t err);

/**
 * The principal the broker knows a client of @p rkc by, where the
 * configuration tells it: "User:NAME" for a SASL PLAIN or SCRAM login,
 * else "" (a TLS client certificate, GSSAPI, OAUTHBEARER: the broker's
 * mapping decides). Into @p buf, which is returned.
 */
const char *kb_kafka_principal(rd_kafka_conf_t *rkc, char *buf, size_t bufsz);

/**
 * What the broker refused, for an error kb_kafka_err_denied() takes:
 * "ERR_NAME: PRINCIPAL may not ACTION: TEXT" into @p buf (returned), with
 * "this client" for a @p principal of "" or NULL, and "log in" for a
 * refused login whatever @p action says. @p text: librdkafka's own words.
 */
const char *kb_kafka_denied_str(rd_kafka_resp_err_t err, const char *principal,
                                const char *action, const char *text, char *buf,
                                size_t bufsz);

/**
 * Logs in to the cluster with @p conf's kafka.* settings and asks a broker
 * for metadata, before a daemon's clients start (a refused login makes
 * those wait for their own timeouts, init_transactions() 60 s, and never
 * say why). KB_OK once a broker answered, or as soon as *@p stop (may be
 * NULL) is set -- the caller checks it; else KB_ERR_KAFKA with @p errstr
 * saying why: a refused login or TLS handshake at once, naming the
 * principal, or no answer within @p timeout_ms (KB_ERR_CONFIG for a bad
 * kafka.* setting). Blocks; any thread.
 */
int kb_kafka_probe(const kb_conf_t *conf, int timeout_ms, atomic_int *stop,
                   char *errstr, size_t errstr_size);

/** Gets a property's value from @p rkc into @p buf; "" when unset. */
const char *kb_kafka_conf_get(rd_kafka_conf_t *rkc, const char *name, char *buf,
                              size_t bufsz);

/** Finds a header's value (NUL-terminated copy into @p buf); -1 if absent. */
int kb_kafka_header_get(rd_kafka_headers_t *hdrs, const char *name, char *buf,
                        size_t bufsz);

/* Record headers of the trace context (docs/pipeline.md, "Trace
 * context"). */
#define KB_HDR_TRACEPARENT  "traceparent"
#define KB_HDR_TRACESTATE   "tracestate"
#define KB_HDR_REQUESTED_AT "kb-requested-at"

/**
 * This hop's trace context for a record with headers @p hdrs (may be
 * NULL): kb_trace_child() of its traceparent and tracestate headers (the
 * last of each), so a new trace when it has no valid traceparent.
 */
void kb_kafka_trace_get(rd_kafka_headers_t *hdrs, kb_trace_t *t);

/**
 * Adds @p t's traceparent, its tracestate (when not ""), and
 * kb-requested-at (when @p requested_at_ms > 0, decimal unix
 * milliseconds) to @p hdrs. KB_OK, or KB_ERR_NOMEM (or KB_ERR_INVALID_ARG
 * for a NULL @p hdrs or @p t).
 */
int kb_kafka_trace_add(rd_kafka_headers_t *hdrs, const kb_trace_t *t,
                       int64_t requested_at_ms);

/**
 * Replaces @p hdrs' traceparent, tracestate and kb-requested-at with
 * @p t's and @p requested_at_ms (as kb_kafka_trace_add()). A daemon stamps
 * its input record's headers with its hop's context this way, so that
 * what is built from the input's headers later (a dead letter) carries
 * it. KB_OK or an error as kb_kafka_trace_add().
 */
int kb_kafka_trace_stamp(rd_kafka_headers_t *hdrs, const kb_trace_t *t,
                         int64_t requested_at_ms);

/** The kb-requested-at header of @p hdrs (may be NULL): unix
 * milliseconds > 0, or -1 when absent or not a decimal number. */
int64_t kb_kafka_requested_at(rd_kafka_headers_t *hdrs);

/** Fills @p out with the hostname (for default transactional ids). */
void kb_kafka_hostname(char *out, size_t outsz);

/**
 * Destroys the group consumer @p rk, closed already
 * (rd_kafka_consumer_close()). @p mid_join: it subscribed but never
 * received an assignment, so it may have joined a generation whose
 * SyncGroup never came back (a stop during its first rebalance, or while
 * the broker was gone). librdkafka before 2.3.0 aborts destroying such a
 * consumer (its cooperative-sticky assignor has no state yet:
 * confluentinc/librdkafka#4312); there @p rk is parked instead -- kept,
 * never destroyed, its memory and threads reclaimed when the process
 * ends -- and a notice logged. Returns 1 if parked, 0 if destroyed.
 */
int kb_kafka_consumer_destroy(rd_kafka_t *rk, int mid_join);

/**
 * How many consumers kb_kafka_consumer_destroy() has parked in this
 * process. A process that parked one should end with _exit() (after
 * flushing its output): exit handlers such as OpenSSL's clean-up would
 * run while the parked consumer's threads may still use the libraries.
 */
int kb_kafka_parked(void);

#endif /* KB_KAFKA_H */
