/* sandbox.h -- the local vendor API sandbox: internal interfaces of its parts
 */
#ifndef KB_SANDBOX_H
#define KB_SANDBOX_H

/*
 * The sandbox serves the vendor API subset of API-CONTRACT.md plus the
 * /sandbox/ extras. Its parts:
 *
 *   sandbox.c            lifecycle: kb_sbx_new() wires the parts, shutdown
 *   sandbox_http.c       libmicrohttpd glue: bodies, routing table, auth,
 *                        rate-limit and fault hooks, delayed responses
 *   sandbox_store.c      the in-memory model (one mutex) and its JSON views
 *   sandbox_persist.c    --state: load at start, debounced atomic saves
 *   sandbox_api.c        the /v3/ handlers
 *   sandbox_extras.c     the /sandbox/ handlers, fault injection, clock
 *   sandbox_ratelimit.c  per-key, per-class 60 s sliding windows
 *   sandbox_webhook.c    signed webhook deliveries with retries (libcurl)
 *
 * Locking: the store mutex guards every model object (apps, workflows,
 * sessions, the rng). The rate limiter, the fault table, the webhook queue
 * and the delayed-response timer each have their own mutex; the only nesting
 * allowed is store -> webhook queue.
 */

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>

#include <json-c/json.h>

#include "hmap.h"
#include "sandbox_data.h"
#include "util.h"

#define KB_SBX_BODY_MAX           (1024 * 1024)
#define KB_SBX_DEFAULT_PORT       8480
#define KB_SBX_DEFAULT_BACKOFF_MS 60000
/* X-RateLimit-Limit/Remaining advertised for an unlimited (0) class */
#define KB_SBX_RL_UNLIMITED_ADVERTISED 2147483647LL
#define KB_SBX_RL_MAX_PER_MINUTE       1000000LL
/* Loopback webhook deliveries go to at most this many queued jobs. */
#define KB_SBX_WEBHOOK_QUEUE_MAX 100000U

typedef struct kb_sbx_s kb_sbx_t;

/* ---------------------------------------------------------------------- */
/* Configuration and lifecycle (used by cmd_sandbox.c and in-process tests) */

#define KB_SBX_MAX_WEBHOOK_HOSTS 8

typedef struct kb_sbx_conf_s {
        char host[64];          /* numeric IPv4/IPv6 address to bind */
        int port;               /* 0 = ephemeral */
        int allow_remote;       /* permit a non-loopback host */
        const char *state_path; /* NULL = no persistence */
        int have_seed;
        uint64_t seed;
        int threads;                /* libmicrohttpd polling threads */
        int64_t webhook_backoff_ms; /* first retry delay; then x4 */
        /* host names webhooks may go to besides loopback (a compose
         * network's service names); exact, case-insensitive */
        char webhook_hosts[KB_SBX_MAX_WEBHOOK_HOSTS][64];
        int n_webhook_hosts;
} kb_sbx_conf_t;

/** Fills the defaults: 127.0.0.1:8480, 2 threads, 60 s backoff, random seed. */
void kb_sbx_conf_init(kb_sbx_conf_t *conf);

/**
 * Parses "ADDR:PORT" ("127.0.0.1:8480", "[::1]:0", "localhost:9000") into
 * @p conf (kb_listen_parse()). Returns 0 or -1 with a reason in @p errstr.
 */
int kb_sbx_conf_listen(kb_sbx_conf_t *conf, const char *s, char *errstr,
                       size_t errstr_size);

/**
 * Creates the sandbox: loads the state file (if configured and present),
 * starts the HTTP server, the webhook worker and the state saver. Returns
 * NULL with a reason in @p errstr (bad state file, port in use, ...).
 */
kb_sbx_t *kb_sbx_new(const kb_sbx_conf_t *conf, char *errstr,
                     size_t errstr_size);

/** The port actually bound. */
int kb_sbx_port(const kb_sbx_t *sbx);

/** "http://127.0.0.1:PORT" (no trailing slash). */
const char *kb_sbx_base_url(const kb_sbx_t *sbx);

/** The seed in use (given or drawn at random). */
uint64_t kb_sbx_seed(const kb_sbx_t *sbx);

/**
 * Graceful stop: stops accepting, lets in-flight requests finish (at most
 * @p grace_ms), stops the webhook worker and writes the state file a last
 * time. Returns 0, or -1 when the final save failed. Idempotent.
 */
int kb_sbx_shutdown(kb_sbx_t *sbx, int64_t grace_ms);

/** Shuts down (if not done) and frees everything. NULL is a no-op. */
void kb_sbx_destroy(kb_sbx_t *sbx);

/* ---------------------------------------------------------------------- */
/* Model */

enum { KB_SBX_USER = 1, KB_SBX_BUSINESS = 2 }; /* == kb_sbx_synth_fill kinds */

typedef enum {
        KB_SBX_ST_NOT_STARTED = 0,
        KB_SBX_ST_IN_PROGRESS,
        KB_SBX_ST_IN_REVIEW,
        KB_SBX_ST_APPROVED,
        KB_SBX_ST_DECLINED,
        KB_SBX_ST_ABANDONED,
        KB_SBX_ST_EXPIRED,
        KB_SBX_ST_RESUBMITTED,
        KB_SBX_ST_COUNT
} kb_sbx_status_t;

/** "Approved" (user) or "APPROVED" (business). */
const char *kb_sbx_status_name(int kind, int status);
/** Status for @p s in the casing of @p kind, or -1 (unknown or wrong casing).
 */
int kb_sbx_status_parse(int kind, const char *s);
/** Approved, Declined or In Review. */
int kb_sbx_status_finished(int status);
/** "user" or "business". */
const char *kb_sbx_kind_name(int kind);

/* Webhook event bits */
#define KB_SBX_EV_STATUS_UPDATED 0x1U
#define KB_SBX_EV_DATA_UPDATED   0x2U

/* Immutable, shared verification data of a session: the KYC or KYB arrays
 * as a JSON object body without braces. Copy-on-write: a session whose data
 * changes gets a new blob, so a clone never sees its source change. */
typedef struct kb_sbx_blob_s {
        int refcnt;
        int kind;
        size_t len, features_len;
        char *data;        /* "\"id_verifications\":[...],..." */
        char *features;    /* "[\"ID_VERIFICATION\",...]" */
        uint64_t save_gen; /* scratch for the state writer */
        size_t save_idx;
} kb_sbx_blob_t;

typedef struct kb_sbx_review_s {
        int64_t id;
        int old_status, new_status;
        char *note; /* NULL: none */
        int64_t created_at;
} kb_sbx_review_t;

struct kb_sbx_app_s;

typedef struct kb_sbx_session_s {
        char id[37];
        char workflow_id[37];
        char shared_from[37]; /* "" when not imported */
        char token[33];       /* session_token; "" for imported sessions */
        struct kb_sbx_app_s *app;
        int64_t number;
        int kind;
        int status;
        int64_t created_at;
        char *vendor_data;   /* NULL: null */
        char *metadata;      /* compact JSON text, NULL: null */
        char *callback;      /* NULL: null */
        kb_sbx_blob_t *blob; /* NULL: empty arrays */
        kb_sbx_review_t *reviews;
        size_t nreviews;
        struct kb_sbx_session_s *prev, *next;       /* app list, by age */
        struct kb_sbx_session_s *vd_prev, *vd_next; /* same vendor_data */
} kb_sbx_session_t;

/* Per application and vendor_data: its sessions and its entities. */
typedef struct kb_sbx_vd_s {
        kb_sbx_session_t *head, *tail;
        size_t count;
        int has_user, has_business; /* User / Business entity exists */
        int64_t user_created_at, business_created_at;
        char vendor_data[]; /* NUL-terminated */
} kb_sbx_vd_t;

typedef struct kb_sbx_workflow_s {
        char id[37];
        struct kb_sbx_app_s *app;
        char *label;
        int kind; /* KB_SBX_USER (kyc) or KB_SBX_BUSINESS (kyb) */
        int is_default;
        unsigned features; /* KB_SBX_WF_* */
        int64_t created_at;
} kb_sbx_workflow_t;

/* Optional workflow features (request booleans is_*_enabled) */
#define KB_SBX_WF_LIVENESS   0x01U
#define KB_SBX_WF_FACE_MATCH 0x02U
#define KB_SBX_WF_AML        0x04U
#define KB_SBX_WF_PHONE      0x08U
#define KB_SBX_WF_EMAIL      0x10U
#define KB_SBX_WF_DATABASE   0x20U
#define KB_SBX_WF_IP         0x40U
#define KB_SBX_WF_NFC        0x80U
#define KB_SBX_WF_POA        0x100U
#define KB_SBX_WF_NFEATURES  9

typedef struct kb_sbx_dest_s {
        char id[37];
        char *url;
        unsigned events; /* KB_SBX_EV_* */
        int64_t created_at;
} kb_sbx_dest_t;

/* Sliding-window log of one rate-limit class for one key. */
typedef struct kb_sbx_rl_log_s {
        int64_t *ts; /* ring of request times (ms), capacity cap */
        size_t cap, head, count;
} kb_sbx_rl_log_t;

typedef enum {
        KB_SBX_RL_WRITES = 0,
        KB_SBX_RL_READS,
        KB_SBX_RL_SESSION_CREATE,
        KB_SBX_RL_DECISION,
        KB_SBX_RL_NCLASSES
} kb_sbx_rl_class_t;

typedef struct kb_sbx_rl_key_s {
        kb_sbx_rl_log_t log[KB_SBX_RL_NCLASSES];
        uint64_t epoch;
} kb_sbx_rl_key_t;

typedef struct kb_sbx_app_s {
        char id[37];
        char key[48];
        char *name;
        int deleted;
        int64_t created_at;
        int64_t next_number; /* next session_number */
        /* webhook configuration */
        char *webhook_url; /* NULL: not configured */
        char secret[72];   /* secret_shared_key */
        char capture_method[8];
        int64_t retention_months; /* 0: null */
        kb_sbx_dest_t **dests;
        size_t ndests;
        /* workflows in creation order */
        kb_sbx_workflow_t **wfs;
        size_t nwfs;
        /* sessions, oldest first */
        kb_sbx_session_t *head, *tail;
        size_t nsessions;
        kb_hmap_t *vd; /* vendor_data -> kb_sbx_vd_t */
        /* guarded by the rate limiter's mutex, not the store's */
        kb_sbx_rl_key_t rl;
} kb_sbx_app_t;

typedef struct kb_sbx_store_s {
        pthread_mutex_t lock;
        kb_rng_t rng;
        unsigned char secret[32]; /* share-token HS256 key */
        kb_hmap_t *apps_by_key, *apps_by_id, *sessions, *tokens, *workflows,
            *imported;
        kb_sbx_app_t **apps; /* creation order, deleted ones included */
        size_t napps, capps;
        int64_t next_review_id;
        atomic_uint_fast64_t version; /* bumped by every mutation */
} kb_sbx_store_t;

/* Store: every function below expects the caller to hold store->lock
 * unless it says otherwise. Pointers returned stay valid while the lock is
 * held; applications are never freed before the store. */

/** Initialises an empty store; @p seed seeds the rng. With @p random_secret
 * the share-token key comes from the OS, else from the rng. 0 or -1. */
int kb_sbx_store_init(kb_sbx_store_t *st, uint64_t seed, int random_secret);
void kb_sbx_store_free(kb_sbx_store_t *st);
/** Marks the store changed (for the state saver). */
void kb_sbx_store_touch(kb_sbx_store_t *st);

/** 43 random base64url characters from the store rng (for keys, secrets). */
void kb_sbx_store_random_str(kb_sbx_store_t *st, char *out, size_t nchars);
void kb_sbx_store_uuid(kb_sbx_store_t *st, char out[37]);

kb_sbx_app_t *kb_sbx_app_create(kb_sbx_store_t *st, const char *name,
                                int64_t now);
kb_sbx_app_t *kb_sbx_app_by_key(kb_sbx_store_t *st, const char *key);
/** Live (non-deleted) application, or NULL. */
kb_sbx_app_t *kb_sbx_app_by_id(kb_sbx_store_t *st, const char *id);
/** Any application including deleted ones, or NULL. */
kb_sbx_app_t *kb_sbx_app_by_id_any(kb_sbx_store_t *st, const char *id);
/** Deletes an application: its key stops working, its sessions, workflows
 * and destinations are removed. The record stays (as deleted). */
void kb_sbx_app_delete(kb_sbx_store_t *st, kb_sbx_app_t *app);
/** Replaces the app's secret_shared_key with a fresh one. */
void kb_sbx_app_rotate_secret(kb_sbx_store_t *st, kb_sbx_app_t *app);
kb_sbx_dest_t *kb_sbx_dest_add(kb_sbx_store_t *st, kb_sbx_app_t *app,
                               const char *url, unsigned events, int64_t now);
/** Removes the destination @p id of @p app; 0 or -1 when unknown. */
int kb_sbx_dest_delete(kb_sbx_store_t *st, kb_sbx_app_t *app, const char *id);

kb_sbx_workflow_t *kb_sbx_workflow_create(kb_sbx_store_t *st, kb_sbx_app_t *app,
                                          const char *label, int kind,
                                          int is_default, unsigned features,
                                          int64_t now);
/** The workflow @p id of @p app, or NULL (unknown or another app's). */
kb_sbx_workflow_t *kb_sbx_workflow_get(kb_sbx_store_t *st, kb_sbx_app_t *app,
                                       const char *id);
void kb_sbx_workflow_delete(kb_sbx_store_t *st, kb_sbx_workflow_t *wf);

/**
 * Creates a session in @p app. @p with_token: give it a session_token (a
 * fresh verification) or not (an import). Creates the User/Business entity
 * for @p vendor_data when absent. Strings are copied. NULL on ENOMEM.
 */
kb_sbx_session_t *kb_sbx_session_create(kb_sbx_store_t *st, kb_sbx_app_t *app,
                                        const char *workflow_id, int kind,
                                        int status, const char *vendor_data,
                                        const char *metadata,
                                        const char *callback, int with_token,
                                        int64_t now);
/** The session @p id of @p app (any app when @p app is NULL), or NULL. */
kb_sbx_session_t *kb_sbx_session_get(kb_sbx_store_t *st, kb_sbx_app_t *app,
                                     const char *id);
kb_sbx_session_t *kb_sbx_session_by_token(kb_sbx_store_t *st,
                                          const char *token);
void kb_sbx_session_delete(kb_sbx_store_t *st, kb_sbx_session_t *s);
/** Sets the status and appends a review entry (note may be NULL). 0/-1. */
int kb_sbx_session_set_status(kb_sbx_store_t *st, kb_sbx_session_t *s,
                              int status, const char *note, int64_t now);
/**
 * Replaces the session's verification data with the array members of
 * @p data (a JSON object, e.g. filled by kb_sbx_synth_fill()); the kind's
 * documented arrays missing from it are rendered empty. 0 or -1.
 */
int kb_sbx_session_set_data(kb_sbx_store_t *st, kb_sbx_session_t *s,
                            json_object *data);
/** Makes @p dst share @p src's (immutable) verification data. */
void kb_sbx_session_copy_data(kb_sbx_session_t *dst,
                              const kb_sbx_session_t *src);

/** Verification data of @p kind from the array members of @p data (the
 * kind's documented arrays first, missing ones empty). One reference. */
kb_sbx_blob_t *kb_sbx_blob_new(int kind, json_object *data);
void kb_sbx_blob_release(kb_sbx_blob_t *blob);
/** Points @p s at @p blob (takes a new reference; NULL: empty arrays). */
void kb_sbx_session_set_blob(kb_sbx_session_t *s, kb_sbx_blob_t *blob);

/* Restore primitives for the state loader: objects with a given identity.
 * NULL / -1 on ENOMEM or when the identity is already taken. */
kb_sbx_app_t *kb_sbx_app_restore(kb_sbx_store_t *st, const char *id,
                                 const char *key, const char *secret,
                                 const char *name, int deleted,
                                 int64_t created_at);
kb_sbx_workflow_t *kb_sbx_workflow_restore(kb_sbx_store_t *st,
                                           kb_sbx_app_t *app, const char *id,
                                           const char *label, int kind,
                                           int is_default, unsigned features,
                                           int64_t created_at);
kb_sbx_dest_t *kb_sbx_dest_restore(kb_sbx_store_t *st, kb_sbx_app_t *app,
                                   const char *id, const char *url,
                                   unsigned events, int64_t created_at);
kb_sbx_session_t *kb_sbx_session_restore(
    kb_sbx_store_t *st, kb_sbx_app_t *app, const char *id, const char *token,
    int64_t number, const char *workflow_id, int kind, int status,
    const char *vendor_data, const char *metadata, const char *callback,
    const char *shared_from, int64_t created_at);
/** Records the User (KYC) or Business (KYB) entity for @p vendor_data
 * unless it exists. 0 or -1. */
int kb_sbx_entity_restore(kb_sbx_app_t *app, const char *vendor_data, int kind,
                          int64_t created_at);
int kb_sbx_review_restore(kb_sbx_store_t *st, kb_sbx_session_t *s, int64_t id,
                          int old_status, int new_status, const char *note,
                          int64_t created_at);

/** Imported-token set, keyed by (SHA-256 of the token, application). */
int kb_sbx_imported_has(kb_sbx_store_t *st, const unsigned char hash[32],
                        const kb_sbx_app_t *app);
int kb_sbx_imported_add(kb_sbx_store_t *st, const unsigned char hash[32],
                        const kb_sbx_app_t *app);

/* Rendering (store lock held). Flags for kb_sbx_render_session(): */
#define KB_SBX_R_DATA     0x1U /* the KYC/KYB arrays */
#define KB_SBX_R_DECISION 0x2U /* features, reviews, metadata, callback */
int kb_sbx_render_session(kb_buf_t *b, const kb_sbx_session_t *s,
                          unsigned flags);
/** One /v3/sessions/ list item. */
int kb_sbx_render_session_summary(kb_buf_t *b, const kb_sbx_session_t *s);
int kb_sbx_render_workflow(kb_buf_t *b, const kb_sbx_workflow_t *wf);
int kb_sbx_render_webhook_config(kb_buf_t *b, const kb_sbx_app_t *app);
int kb_sbx_render_dest(kb_buf_t *b, const kb_sbx_dest_t *d);
/** ISO 8601 UTC "2026-11-22T10:00:00Z" (21 bytes with NUL). */
void kb_sbx_iso8601(int64_t t, char out[32]);

/* JSON writing helpers: a quoted, escaped string (or null for NULL). */
int kb_sbx_jstr(kb_buf_t *b, const char *s);
/** `"key":` */
int kb_sbx_jkey(kb_buf_t *b, const char *key);

/* ---------------------------------------------------------------------- */
/* Persistence (sandbox_persist.c) */

/** Loads @p path into the empty store. 1 loaded, 0 no such file, -1 error
 * (reason in errstr; the file is left untouched). */
int kb_sbx_state_load(kb_sbx_store_t *st, const char *path, char *errstr,
                      size_t errstr_size);
/** Serialises the store (takes the lock) and writes @p path atomically. */
int kb_sbx_state_save(kb_sbx_store_t *st, const char *path);

typedef struct kb_sbx_saver_s kb_sbx_saver_t;
/** Starts the thread that saves within ~100 ms of any change. */
kb_sbx_saver_t *kb_sbx_saver_start(kb_sbx_store_t *st, const char *path,
                                   char *errstr, size_t errstr_size);
/** Stops the thread and saves a last time. 0 or -1 (last save failed). */
int kb_sbx_saver_stop(kb_sbx_saver_t *sv);

/* ---------------------------------------------------------------------- */
/* Rate limiting (sandbox_ratelimit.c) */

typedef struct kb_sbx_rl_s {
        pthread_mutex_t lock;
        int64_t limit[KB_SBX_RL_NCLASSES]; /* per minute, 0 = unlimited */
        int64_t defaults[KB_SBX_RL_NCLASSES];
        uint64_t epoch; /* bumped when limits change: windows restart */
} kb_sbx_rl_t;

typedef struct kb_sbx_rl_info_s {
        int64_t limit, remaining, reset; /* reset: epoch seconds */
        int64_t retry_after;             /* seconds, when refused */
} kb_sbx_rl_info_t;

void kb_sbx_rl_init(kb_sbx_rl_t *rl);
void kb_sbx_rl_destroy(kb_sbx_rl_t *rl);
const char *kb_sbx_rl_class_name(int cls);
/**
 * Counts one request of class @p cls for @p key at @p now_ms (wall clock).
 * Returns 0 when allowed, 1 when refused (nothing counted). @p info gets the
 * header values either way.
 */
int kb_sbx_rl_take(kb_sbx_rl_t *rl, kb_sbx_rl_key_t *key, int cls,
                   int64_t now_ms, kb_sbx_rl_info_t *info);
/** Header values for a request that is not counted (no key). */
void kb_sbx_rl_peek(kb_sbx_rl_t *rl, int cls, int64_t now_ms,
                    kb_sbx_rl_info_t *info);
/** Sets the per-minute limits (entries < 0 keep their value); restarts all
 * windows. */
void kb_sbx_rl_set(kb_sbx_rl_t *rl, const int64_t limit[KB_SBX_RL_NCLASSES]);
/** Restores the start-up limits; restarts all windows. */
void kb_sbx_rl_reset(kb_sbx_rl_t *rl);
void kb_sbx_rl_get(kb_sbx_rl_t *rl, int64_t limit[KB_SBX_RL_NCLASSES]);
void kb_sbx_rl_key_free(kb_sbx_rl_key_t *key);

/* ---------------------------------------------------------------------- */
/* Fault injection (sandbox_extras.c) */

typedef struct kb_sbx_fault_s {
        char path[256]; /* exact request path, or "*" */
        int64_t latency_ms;
        double error_rate;
        int error_status;
        int64_t retry_after;      /* seconds, for error_status 429 */
        double corrupt_body_rate; /* processed, then a 2xx body garbled */
        int latency_only_2xx;     /* the latency delays 2xx answers only */
} kb_sbx_fault_t;

typedef struct kb_sbx_faults_s {
        pthread_mutex_t lock;
        kb_sbx_fault_t *v;
        size_t n;
        atomic_size_t active; /* == n, read without the lock */
        kb_rng_t rng;
} kb_sbx_faults_t;

void kb_sbx_faults_init(kb_sbx_faults_t *f, uint64_t seed);
void kb_sbx_faults_destroy(kb_sbx_faults_t *f);
/**
 * Looks up the fault for @p path. Returns 0 when none applies; else fills
 * the latency (*latency_only_2xx: whether it delays only a 2xx answer)
 * and, when an error is drawn, *error_status (0 otherwise) and
 * *retry_after; when no error is drawn, *corrupt_body says whether the
 * request's 2xx body is to be garbled (0 otherwise). Returns 1.
 */
int kb_sbx_faults_draw(kb_sbx_faults_t *f, const char *path,
                       int64_t *latency_ms, int *latency_only_2xx,
                       int *error_status, int64_t *retry_after,
                       int *corrupt_body);

/* What a 2xx body garbled by a corrupt_body_rate fault becomes: no JSON
 * text (and no UTF-8) starts like this. */
#define KB_SBX_CORRUPT_BODY "<\xff\xfe garbled in transit (sandbox fault)>"

/* ---------------------------------------------------------------------- */
/* Webhook deliveries (sandbox_webhook.c) */

typedef struct kb_sbx_webhook_s kb_sbx_webhook_t;

/** Starts the delivery thread. NULL with a reason on failure. */
kb_sbx_webhook_t *kb_sbx_webhook_new(kb_sbx_t *sbx, int64_t backoff_ms,
                                     char *errstr, size_t errstr_size);
/**
 * Queues one delivery of event @p event to @p url (copies every string).
 * Never blocks on the network. Thread-safe. 0, or -1 when the queue is full.
 */
int kb_sbx_webhook_enqueue(kb_sbx_webhook_t *wh, const char *app_id,
                           const char *url, const char *event,
                           const char *session_id, const char *status,
                           const char *vendor_data, const char *decision_json);
/** Stops the thread; pending deliveries are dropped (and logged). */
void kb_sbx_webhook_destroy(kb_sbx_webhook_t *wh);
/** Deliveries made / failed for good / pending, for logs and tests. */
void kb_sbx_webhook_stats(kb_sbx_webhook_t *wh, uint64_t *ok, uint64_t *failed,
                          uint64_t *pending);

/**
 * Fires @p event for @p s to the app's webhook_url and subscribed
 * destinations (store lock held). A no-op without targets.
 */
void kb_sbx_fire_event(kb_sbx_t *sbx, const kb_sbx_session_t *s,
                       unsigned event);

/**
 * 0 if @p url is an http(s) URL the sandbox may deliver webhooks to: a
 * loopback host, or one of @p conf's webhook_hosts; else -1 and a reason.
 */
int kb_sbx_webhook_url_ok(const kb_sbx_conf_t *conf, const char *url,
                          char *errstr, size_t errstr_size);

/* ---------------------------------------------------------------------- */
/* HTTP (sandbox_http.c) */

typedef struct kb_sbx_http_s kb_sbx_http_t;

/* One request as the handlers see it. */
typedef struct kb_sbx_req_s {
        kb_sbx_t *sbx;
        kb_sbx_http_t *http; /* the server answering */
        void *conn;          /* struct MHD_Connection * */
        const char *method;
        const char *path;
        const char *id; /* first {id} path segment, or NULL */
        const char *body;
        size_t body_len;
        kb_sbx_app_t *app; /* authenticated application, or NULL */
        int64_t now;       /* sandbox clock (seconds), fixed per request */
} kb_sbx_req_t;

/* The response a handler builds. */
typedef struct kb_sbx_resp_s {
        int status;
        kb_buf_t body;            /* JSON; empty for 204 */
        const char *content_type; /* NULL: application/json */
        char allow[64];
        int64_t retry_after; /* -1: no Retry-After */
        int rl_set;
        kb_sbx_rl_info_t rl;
} kb_sbx_resp_t;

typedef void(kb_sbx_handler_fn)(kb_sbx_req_t *req, kb_sbx_resp_t *resp);

/** Sets an error response {"detail": ...}. */
void kb_sbx_resp_error(kb_sbx_resp_t *resp, int status, const char *fmt, ...)
    KB_PRINTF(3, 4);
/** Sets @p status; the body is already in resp->body (or the buffer failed
 * to grow, then a 500 is sent). */
void kb_sbx_resp_json(kb_sbx_resp_t *resp, int status);

/**
 * Parses the request body as a JSON object (an empty body is {}). On
 * failure sets a 400 (or 500) on @p resp and returns NULL.
 */
json_object *kb_sbx_req_json(kb_sbx_req_t *req, kb_sbx_resp_t *resp);
/**
 * Takes the store lock for a handler that uses req->app. Returns 0 with the
 * lock held, or -1 without it after setting a 401 on @p resp when the
 * application was deleted since the request was authenticated.
 */
int kb_sbx_lock_app(kb_sbx_req_t *req, kb_sbx_resp_t *resp);
/**
 * kb_sbx_lock_app(), then the caller's session req->id. Returns it with the
 * lock held, or NULL without the lock after setting a 401 or a 404
 * ("Session not found.") on @p resp.
 */
kb_sbx_session_t *kb_sbx_lock_session(kb_sbx_req_t *req, kb_sbx_resp_t *resp);
/** The same for the caller's workflow req->id ("Workflow not found."). */
kb_sbx_workflow_t *kb_sbx_lock_workflow(kb_sbx_req_t *req, kb_sbx_resp_t *resp);
/** Query parameter (unescaped) or NULL. */
const char *kb_sbx_req_query(kb_sbx_req_t *req, const char *name);
/** "http://host:port" the client used (Host header when sane). */
void kb_sbx_req_base_url(kb_sbx_req_t *req, char *out, size_t size);

kb_sbx_http_t *kb_sbx_http_start(kb_sbx_t *sbx, char *errstr,
                                 size_t errstr_size);
int kb_sbx_http_port(const kb_sbx_http_t *h);
/** Stops accepting; waits up to @p grace_ms for in-flight requests. */
void kb_sbx_http_quiesce(kb_sbx_http_t *h, int64_t grace_ms);
void kb_sbx_http_stop(kb_sbx_http_t *h);
/** Requests served so far. */
uint64_t kb_sbx_http_requests(const kb_sbx_http_t *h);
/* GET /metrics (Prometheus text, no API key: not a vendor route):
 * kyc_bridge_sandbox_requests_total{endpoint,status} and
 * kyc_bridge_sandbox_request_duration_seconds{endpoint} by route pattern
 * ("unmatched" for none), counted when the response went out;
 * kyc_bridge_sandbox_webhook_deliveries_total{result} (delivered,
 * failed), kyc_bridge_sandbox_webhook_deliveries_pending, build info and
 * process start time. */

/* Handlers (sandbox_api.c) */
kb_sbx_handler_fn kb_sbx_h_session_create;
kb_sbx_handler_fn kb_sbx_h_session_import;
kb_sbx_handler_fn kb_sbx_h_session_share;
kb_sbx_handler_fn kb_sbx_h_session_decision;
kb_sbx_handler_fn kb_sbx_h_session_delete;
kb_sbx_handler_fn kb_sbx_h_session_update_status;
kb_sbx_handler_fn kb_sbx_h_sessions_list;
kb_sbx_handler_fn kb_sbx_h_workflow_create;
kb_sbx_handler_fn kb_sbx_h_workflow_list;
kb_sbx_handler_fn kb_sbx_h_workflow_get;
kb_sbx_handler_fn kb_sbx_h_workflow_delete;
kb_sbx_handler_fn kb_sbx_h_webhook_get;
kb_sbx_handler_fn kb_sbx_h_webhook_patch;
kb_sbx_handler_fn kb_sbx_h_dest_create;
kb_sbx_handler_fn kb_sbx_h_dest_list;
kb_sbx_handler_fn kb_sbx_h_dest_delete;
kb_sbx_handler_fn kb_sbx_h_verify_page;

/* Handlers (sandbox_extras.c) */
kb_sbx_handler_fn kb_sbx_h_app_create;
kb_sbx_handler_fn kb_sbx_h_app_list;
kb_sbx_handler_fn kb_sbx_h_app_delete;
kb_sbx_handler_fn kb_sbx_h_session_complete;
kb_sbx_handler_fn kb_sbx_h_entities;
kb_sbx_handler_fn kb_sbx_h_faults_put;
kb_sbx_handler_fn kb_sbx_h_faults_get;
kb_sbx_handler_fn kb_sbx_h_faults_delete;
kb_sbx_handler_fn kb_sbx_h_ratelimits_put;
kb_sbx_handler_fn kb_sbx_h_ratelimits_get;
kb_sbx_handler_fn kb_sbx_h_ratelimits_delete;
kb_sbx_handler_fn kb_sbx_h_clock_put;
kb_sbx_handler_fn kb_sbx_h_clock_get;
kb_sbx_handler_fn kb_sbx_h_health;

/* ---------------------------------------------------------------------- */
/* The sandbox object */

struct kb_sbx_s {
        kb_sbx_conf_t conf;
        char *state_path; /* owned copy of conf.state_path */
        uint64_t seed;
        kb_sbx_store_t store;
        kb_sbx_rl_t rl;
        kb_sbx_faults_t faults;
        kb_sbx_webhook_t *wh;
        kb_sbx_saver_t *saver;
        kb_sbx_http_t *http;
        atomic_int_fast64_t clock_offset; /* seconds added to the wall clock */
        int port;
        char base_url[96];
        int shut_down;
        int store_ready, rl_ready, faults_ready;
};

/** The sandbox clock: wall clock + PUT /sandbox/clock offset (seconds). */
int64_t kb_sbx_now(kb_sbx_t *sbx);

#endif /* KB_SANDBOX_H */
