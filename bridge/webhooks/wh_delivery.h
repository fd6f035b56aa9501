/* wh_delivery.h -- one verified webhook delivery, the Kafka records it
 * causes, and the action callback that maps one to the other */
#ifndef KB_WH_DELIVERY_H
#define KB_WH_DELIVERY_H

#include <stddef.h>
#include <stdint.h>

#include <json-c/json.h>

#include "kyc_bridge.h"

/* How a delivery was authenticated. */
#define KB_WH_AUTH_V2 1 /* X-Signature-V2: the whole body */
#define KB_WH_AUTH_SIMPLE                                                      \
        2 /* X-Signature-Simple: only timestamp,                               \
           * session_id, status and webhook_type */

/* A finished status, casing family folded (see kb_wh_status_canon()). */
typedef enum {
        KB_WH_ST_OTHER = 0, /* not finished, or unknown */
        KB_WH_ST_APPROVED,
        KB_WH_ST_DECLINED,
        KB_WH_ST_IN_REVIEW,
} kb_wh_status_t;

/*
 * A delivery (API-CONTRACT.md "Webhooks") after its signature was checked.
 * Every pointer is borrowed from @p body and valid during the action call.
 */
typedef struct kb_wh_delivery_s {
        json_object *body;        /* the whole parsed delivery */
        const char *session_id;   /* non-empty */
        const char *status;       /* as sent ("Approved", "IN_REVIEW", ...) */
        const char *webhook_type; /* "status.updated", ... */
        const char *vendor_data;  /* NULL when null or absent */
        int64_t timestamp;        /* unix seconds, equal to X-Timestamp */
        json_object *decision;    /* NULL when absent or not an object */
        /* decision.workflow_id / decision.session_kind, or NULL: the
         * delivery itself carries neither */
        const char *workflow_id;
        const char *session_kind;
        int auth;         /* KB_WH_AUTH_V2 or KB_WH_AUTH_SIMPLE */
        int secret_index; /* 0: current secret, 1: previous */
} kb_wh_delivery_t;

/**
 * Fills @p dlv from a parsed delivery @p body (borrowed): session_id,
 * status and webhook_type must be non-empty strings and timestamp an
 * integer. Leaves auth and secret_index 0. KB_OK, or KB_ERR_MALFORMED with
 * the member at fault in @p errstr. Thread-safe.
 */
int kb_wh_delivery_parse(json_object *body, kb_wh_delivery_t *dlv, char *errstr,
                         size_t errstr_size) KB_WUR;

/**
 * Folds a status name to a finished status: "Approved"/"APPROVED",
 * "Declined"/"DECLINED", "In Review"/"IN_REVIEW" (exact casing, as the
 * contract writes them); anything else KB_WH_ST_OTHER.
 */
kb_wh_status_t kb_wh_status_canon(const char *status);
/** "APPROVED", "DECLINED", "IN_REVIEW" or NULL. */
const char *kb_wh_status_name(kb_wh_status_t st);

/* ---------------------------------------------------------------------- */
/* Records a delivery causes */

typedef struct kb_wh_records_s kb_wh_records_t;

/** New empty list. NULL on ENOMEM. */
kb_wh_records_t *kb_wh_records_new(void);
/** Settles its completion, if any, with acked 0; frees. NULL: no-op. */
void kb_wh_records_destroy(kb_wh_records_t *recs);
/** Empties the list (keeps its memory); settles its completion, if any,
 * with acked 0 (kb_wh_records_settle()). */
void kb_wh_records_clear(kb_wh_records_t *recs);

/**
 * Appends a record for @p topic with @p key (may be NULL) and @p value,
 * and @p headers as NULL-terminated name, value pairs of strings (may be
 * NULL). Everything is copied. KB_OK, KB_ERR_INVALID_ARG or KB_ERR_NOMEM.
 */
int kb_wh_records_add(kb_wh_records_t *recs, const char *topic, const void *key,
                      size_t key_len, const void *value, size_t value_len,
                      const char *const *headers) KB_WUR;

size_t kb_wh_records_count(const kb_wh_records_t *recs);

/** Record @p i: its topic, key, value; NULL when out of range. Borrowed. */
const char *kb_wh_records_get(const kb_wh_records_t *recs, size_t i,
                              const void **key, size_t *key_len,
                              const void **value, size_t *value_len);

/** Header @p name of record @p i, or NULL. Borrowed. */
const char *kb_wh_records_header(const kb_wh_records_t *recs, size_t i,
                                 const char *name);

/*
 * What became of the records an action appended (see kb_wh_action_fn):
 * @p acked 1 when Kafka acked every one of them (or there were none) and
 * the delivery is about to be answered 200; 0 when they were not all
 * acked (not queued, a delivery report failed or did not come in time,
 * purged at shutdown) or never produced (the action failed, the list was
 * cleared or destroyed first) -- the delivery is then answered 503, 4xx or
 * 500 and the vendor's retry acts again. Called exactly once per
 * kb_wh_records_on_settled(), before the delivery is answered, on an HTTP
 * thread, the intake's report thread or the thread that destroys the
 * intake; must not block and must not call into the intake.
 */
typedef void(kb_wh_settled_fn)(void *arg, int acked);

/**
 * Asks to be told what became of @p recs' records (@p fn with @p arg, see
 * kb_wh_settled_fn). One per list: a completion already set is settled
 * first with acked 0. Set it from the action.
 */
void kb_wh_records_on_settled(kb_wh_records_t *recs, kb_wh_settled_fn *fn,
                              void *arg);

/**
 * Calls @p recs' completion, if any, with @p acked, and removes it. The
 * intake calls it; so do tests of an action, standing in for Kafka.
 * kb_wh_records_clear() and kb_wh_records_destroy() settle with acked 0.
 */
void kb_wh_records_settle(kb_wh_records_t *recs, int acked);

/*
 * What a verified "status.updated" delivery causes: appends its Kafka
 * records to @p out (none is fine) and returns KB_OK; or returns
 * KB_ERR_MALFORMED (answered 400 with @p errstr as the detail: the
 * delivery can never be acted on), KB_ERR_RETRY (503: try again later) or
 * another error (500). @p errstr must never hold a secret. Called on an
 * HTTP server thread (concurrently when the server has several): must not
 * block, must be thread-safe. An action whose state must follow what Kafka
 * acked sets a completion on @p out (kb_wh_records_on_settled()).
 */
typedef int(kb_wh_action_fn)(void *opaque, const kb_wh_delivery_t *dlv,
                             kb_wh_records_t *out, char *errstr,
                             size_t errstr_size);

#endif /* KB_WH_DELIVERY_H */
