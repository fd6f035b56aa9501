/* ops_http.h -- a daemon's operations endpoints: /livez, /readyz and
 * /metrics (metrics.listen), and the metrics the processor keeps */
#ifndef KB_OPS_HTTP_H
#define KB_OPS_HTTP_H

#include <stddef.h>
#include <stdint.h>

#include "conf.h"
#include "httpd.h"
#include "pipeline.h"

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
 * The handlers read atomics and the registry only: they never call out
 * and never touch the pipeline. Every function takes NULL as a no-op.
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
        KB_OPS_PUBLISHED = 0,
        KB_OPS_DEAD_LETTERED = 1,
        KB_OPS_SKIPPED = 2,
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

/** Sets what /readyz says. Any thread. */
void kb_ops_http_state(kb_ops_http_t *o, kb_ops_state_t st);

/** A record whose @p outcome was committed. Any thread. */
void kb_ops_http_record(kb_ops_http_t *o, kb_ops_outcome_t outcome);

/** A committed dead letter with @p reason (a fixed word of the daemon,
 * never a personal value); also counts the outcome. Any thread. */
void kb_ops_http_dead_letter(kb_ops_http_t *o, const char *reason);

/** Stops our own server, frees everything. A shared server must be gone
 * first (kb_wh_host_stop()). NULL is a no-op. */
void kb_ops_http_destroy(kb_ops_http_t *o);

#endif /* KB_OPS_HTTP_H */
