/* wh_intake.h -- the webhook intake: verify the vendor's deliveries, act on
 * each once, answer 200 only once what it caused is acked by Kafka */
#ifndef KB_WH_INTAKE_H
#define KB_WH_INTAKE_H

#include <stddef.h>
#include <stdint.h>

#include <librdkafka/rdkafka.h>

#include "httpd.h"
#include "kyc_bridge.h"
#include "wh_delivery.h"

/*
 * Answers (docs/webhooks.md "Status codes"), every non-200 body
 * {"detail": "..."}:
 *  200 acted on and every record acked ({"result":"accepted","records":N}),
 *      a replay of an accepted delivery ({"result":"duplicate"}), or a
 *      verified delivery of another type ({"result":"ignored"});
 *  400 not strict JSON (duplicate key, invalid UTF-8, ...) or a verified
 *      delivery lacking a member, or refused by the action;
 *  401 X-Timestamp or a signature header missing, or verification failed
 *      (forged, tampered, stale, future-dated, wrong secret: not said which);
 *  409 the same delivery is being acted on right now;
 *  413 body over body_max;
 *  503 (Retry-After) Kafka did not take every record (broker down, queue
 *      full, timeout), the replay cache is full, or shutting down.
 */

typedef struct kb_wh_intake_s kb_wh_intake_t;

typedef struct kb_wh_intake_conf_s {
        /* The vendor's secret_shared_key: [0] current (required), [1] the
         * previous one during a rotation (NULL: none). Copied into locked
         * memory; never logged. */
        const char *secrets[2];
        /* Accept X-Signature-Simple when X-Signature-V2 is absent. */
        int allow_simple;
        /* Replay window, seconds (0: KB_WEBHOOK_TOLERANCE_S). */
        int64_t tolerance_s;
        /* Largest body, bytes (0 or more than KB_WEBHOOK_MAX_BODY:
         * KB_WEBHOOK_MAX_BODY). */
        size_t body_max;
        /* Replay cache: entries at most (0: 65536); entries are kept
         * 2 * tolerance_s + margin_s (0: 60) after acceptance. */
        size_t replay_max;
        int64_t replay_margin_s;
        /* librdkafka message.timeout.ms: the longest a delivery waits for
         * Kafka before it is answered 503 (0: 5000). Keep it below the
         * vendor's HTTP timeout. */
        int kafka_timeout_ms;
        /* Retry-After of a 503, seconds (0: 5). */
        int retry_after_s;
        /* What a verified status.updated delivery causes. Required. */
        kb_wh_action_fn *action;
        void *opaque;
        /* Log facility ("webhook" when NULL). */
        const char *name;
} kb_wh_intake_conf_t;

/* Counters (monotonic since kb_wh_intake_new()). */
typedef struct kb_wh_intake_stats_s {
        uint64_t accepted;      /* 200 after acting (records acked) */
        uint64_t duplicates;    /* 200 for a replay */
        uint64_t ignored;       /* 200 for another webhook_type */
        uint64_t malformed;     /* 400 */
        uint64_t unauthorized;  /* 401 */
        uint64_t conflicts;     /* 409 */
        uint64_t too_large;     /* 413 */
        uint64_t unavailable;   /* 503 */
        uint64_t failed;        /* 500 */
        uint64_t records_acked; /* records whose delivery report succeeded */
} kb_wh_intake_stats_t;

/**
 * New intake with its own idempotent producer built from @p rkc (e.g.
 * kb_kafka_conf_new(conf, RD_KAFKA_PRODUCER, ...)); the intake sets
 * enable.idempotence=true, acks=all, message.timeout.ms and its delivery
 * report callback on it. Takes ownership of @p rkc in every case. Starts a
 * thread that serves delivery reports. NULL with a reason in @p errstr
 * (never a secret) and, when @p errp is not NULL, the cause in *errp:
 * KB_ERR_INVALID_ARG (@p conf), KB_ERR_NOMEM, or KB_ERR_KAFKA (the
 * producer or its thread); *errp is KB_OK on success.
 */
kb_wh_intake_t *kb_wh_intake_new(const kb_wh_intake_conf_t *conf,
                                 rd_kafka_conf_t *rkc, int *errp, char *errstr,
                                 size_t errstr_size);

/**
 * The HTTP handler (kb_httpd_handler_fn) with @p opaque = the intake:
 * kb_httpd_route(h, "POST", "/webhooks/vendor", kb_wh_intake_handler, wi).
 */
void kb_wh_intake_handler(void *opaque, kb_httpd_req_t *req);

/** Copies the counters. Thread-safe. */
void kb_wh_intake_stats(kb_wh_intake_t *wi, kb_wh_intake_stats_t *st);

/** The producer (for metrics, or a health check). Owned by the intake. */
rd_kafka_t *kb_wh_intake_producer(kb_wh_intake_t *wi);

/**
 * Stops: new deliveries are answered 503; waits up to @p flush_ms for the
 * records in flight, answering their deliveries as their reports come;
 * whatever is left is purged and answered 503 (not remembered as
 * accepted: the vendor's retry acts on it), also when the purged records'
 * reports do not come (every delivery is answered, every completion
 * settled, before this returns). Destroy the intake before the
 * HTTP server that routes to it, and make sure no request reaches
 * kb_wh_intake_handler() from the moment this is called: the server keeps
 * serving until it is destroyed, so route through a gate that answers 503
 * once the intake is gone (daemons/webhook_host.c does). NULL is a no-op.
 */
void kb_wh_intake_destroy(kb_wh_intake_t *wi, int flush_ms);

#endif /* KB_WH_INTAKE_H */
