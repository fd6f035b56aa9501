/* webhook_host.h -- a daemon's webhook intake: the HTTP server, the intake
 * and its producer, built from the webhook.* options */
#ifndef KB_WEBHOOK_HOST_H
#define KB_WEBHOOK_HOST_H

#include <stddef.h>
#include <stdint.h>

#include "conf.h"
#include "httpd.h"
#include "wh_delivery.h"
#include "wh_intake.h"

/*
 * Life cycle (processor.c drives it; a daemon only supplies the action):
 *  - kb_wh_host_new() in the daemon's constructor: checks every webhook.*
 *    option (listen address, secrets, producer configuration) without
 *    listening or connecting, so that "config check --role" finds what is
 *    wrong;
 *  - kb_wh_host_start() when the daemon runs: builds the intake and its
 *    idempotent producer, then listens;
 *  - kb_wh_host_stop(): the intake first (deliveries in flight are
 *    answered as their records are acked, the rest 503), then the server;
 *    requests that reach the server from the start of the stop are
 *    answered 503 (whatever the number of webhook.threads and the stream
 *    of deliveries, the stop does not wait for more than those already
 *    inside the intake);
 *  - kb_wh_host_destroy().
 * The secrets live in sodium_malloc()ed memory until the intake has its
 * own copy, and are never logged.
 */
typedef struct kb_wh_host_s kb_wh_host_t;

/**
 * Builds the host from the webhook.* options of @p conf when
 * webhook.listen is non-empty; *out stays NULL when it is empty.
 * @p action (opaque @p opaque) is what a verified status.updated delivery
 * causes; NULL: the daemon takes no deliveries, and webhook.listen is then
 * a configuration error. @p role names the log facility
 * ("<role>-webhook"). Returns KB_OK, KB_ERR_CONFIG ("origin: key: reason"
 * in @p errstr: bad listen address, webhook.secret missing or unreadable)
 * or KB_ERR_NOMEM.
 */
int kb_wh_host_new(const kb_conf_t *conf, const char *role,
                   kb_wh_action_fn *action, void *opaque, kb_wh_host_t **out,
                   char *errstr, size_t errstr_size) KB_WUR;

/**
 * Builds the intake (its producer connects in the background: a broker
 * that is down means 503 answers, not a failure) and starts listening;
 * logs the address and port. KB_OK, KB_ERR_KAFKA or KB_ERR_IO (cannot
 * listen) with a reason in @p errstr. Once.
 */
int kb_wh_host_start(kb_wh_host_t *h, char *errstr, size_t errstr_size) KB_WUR;

/** The port listened on after kb_wh_host_start() and until
 * kb_wh_host_stop(), else 0. Any thread. */
int kb_wh_host_port(const kb_wh_host_t *h);

/** The server, so that another part may add its routes to it (the
 * operations endpoints when metrics.listen is the same address): before
 * kb_wh_host_start() only; owned by the host (gone after
 * kb_wh_host_stop()). */
kb_httpd_t *kb_wh_host_httpd(kb_wh_host_t *h);

/** The intake's counters (zero before kb_wh_host_start()). Any thread. */
void kb_wh_host_stats(kb_wh_host_t *h, kb_wh_intake_stats_t *st);

/** The deliveries of @p st refused with a 4xx answer: malformed (400),
 * unauthorized (401), conflicts (409) and too large (413) -- the
 * "refused" of every log line that reports the intake's counters. */
uint64_t kb_wh_host_refused(const kb_wh_intake_stats_t *st);

/** Stops taking deliveries: the intake (waiting up to
 * webhook.kafka_timeout_ms for records in flight), then the server.
 * Idempotent; NULL is a no-op. Not from a handler. */
void kb_wh_host_stop(kb_wh_host_t *h);

/** Stops (if needed) and frees. NULL is a no-op. */
void kb_wh_host_destroy(kb_wh_host_t *h);

#endif /* KB_WEBHOOK_HOST_H */
