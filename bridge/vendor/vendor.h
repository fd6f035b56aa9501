/* vendor.h -- asynchronous vendor API client: admission, pacing, retries */
#ifndef KB_VENDOR_H
#define KB_VENDOR_H

#include <stddef.h>
#include <stdint.h>

#include <json-c/json.h>

#include "conf.h"
#include "jview.h"
#include "kyc_bridge.h"

/*
 * The vendor operations the bridge needs (share, import, list sessions,
 * decision, workflow), each asynchronous with a completion callback, over one
 * kb_http_t engine.
 *
 * Threading: a kb_vendor_t belongs to ONE thread (the daemon's event loop).
 * Every function, and every callback, runs on that thread; there are no
 * internal threads and no locks. Callbacks run only from kb_vendor_poll(),
 * kb_vendor_wait() and kb_vendor_destroy().
 *
 * Log context: a callback runs with the trace id of its operation's
 * traceparent (kb_vendor_set_trace()) as the thread's log trace id
 * (kb_log_trace_push(); none when the operation had none), and the
 * context before it is restored after; so do the client's own lines about
 * each attempt. A caller that resumes a record's work in a callback needs
 * no context of its own.
 *
 * Admission: an operation is queued by kb_vendor_share() & co. and started
 * by kb_vendor_poll() when (1) fewer than vendor.max_in_flight calls are in
 * flight, (2) the client-side pacer of its class has a token, and (3) no
 * Retry-After pause is active. Classes and their per-minute ceilings (the
 * vendor's documented budgets per API key):
 *   writes   (share, import)            W = vendor.rate_limit_per_minute (300)
 *   reads    (list sessions, workflow)  2 W (600)
 *   decision (decision)                 W / 3 (100), at least 1
 * W = 0 turns every pacer off (a vendor or sandbox without limits).
 * Each class is a token bucket holding B = clamp(N/60, 1, 10) tokens,
 * refilled at (N - B) per 60 s, so no 60-second window ever carries more
 * than N calls of the class (N >= 2) -- also right at start-up, where a
 * plain N/60 s refill plus a burst would overshoot the vendor's sliding
 * window by B. Every attempt, retries included, takes a token.
 *
 * Retries happen here, without an attempt limit (an outage must not drop
 * work): transport failures and timeouts, HTTP 408, 500, 502, 503, 504 are
 * retried after an exponential backoff with jitter (vendor.retry_backoff_ms
 * doubling up to vendor.retry_backoff_max_ms, each delay drawn uniformly
 * from [d/2, d]; a longer Retry-After on such an answer is honoured for
 * that operation); HTTP 429 pauses ALL operations for exactly the
 * Retry-After the server sent (the backoff delay when it sent none or 0),
 * then retries. Each retry is logged at notice level with the operation, the
 * attempt and the status (an id or a token digest, never a token).
 *
 * Final outcomes go to the callback: any 2xx (err KB_OK), any other status
 * (err KB_ERR_HTTP; res->status says which, res->detail has the vendor's
 * "detail"), a response over 4 MiB (KB_ERR_TOO_LARGE), a 2xx whose body is
 * not JSON (KB_ERR_MALFORMED), a transport failure that retrying cannot fix
 * -- bad URL, TLS verification, unreadable CA file -- (KB_ERR_HTTP with
 * status 0: treat as a configuration problem, not as a verdict on the
 * input), and shutdown (KB_ERR_STATE).
 *
 * Import is not idempotent: a retry after a timeout or a 5xx may meet 403
 * "already imported" for an import that did happen. That 403 is delivered
 * like any other (attempts > 1 tells it followed a retry); the caller
 * reconciles via kb_vendor_list_sessions()/kb_vendor_decision().
 *
 * Secrets: the API key is held in sodium_malloc() memory; request bodies
 * holding a share token are built in a buffer that is wiped when the
 * operation completes; share responses are wiped too. libcurl's and
 * json-c's internal copies are outside our reach (see http.h).
 */

typedef struct kb_vendor_s kb_vendor_t;

typedef struct kb_vendor_result_s {
        int status;        /* final HTTP status, 0 if never answered */
        int err;           /* KB_OK for 2xx; else a kb_err_t (see above) */
        json_object *body; /* parsed JSON body (borrowed; valid during the
                              callback only) or NULL; NULL for a 2xx
                              answer to a share or an import (see view) */
        /* share and import, 2xx only: the answer's text, validated
         * (kb_jview_init(), as strict as kb_json_parse()), and its view --
         * no tree is built for the hot paths; NULL otherwise. Borrowed,
         * valid during the callback only. */
        const kb_jview_t *view;
        char detail[256];   /* vendor's "detail" (scrubbed), or transport
                               error text; "" when none */
        int attempts;       /* HTTP attempts made (>= 1 unless never
                               started) */
        int64_t latency_us; /* of the final attempt */
} kb_vendor_result_t;

typedef void(kb_vendor_cb)(const kb_vendor_result_t *res, void *opaque);

typedef struct kb_vendor_stats_s {
        uint64_t submitted;    /* operations accepted */
        uint64_t started;      /* HTTP attempts sent (retries included) */
        uint64_t ok;           /* final 2xx */
        uint64_t final_errors; /* final non-2xx or other final failure,
                                  aborted ones excluded */
        uint64_t aborted;      /* completed with KB_ERR_STATE by destroy */
        uint64_t retried;      /* attempts that were scheduled again */
        uint64_t http_429;
        uint64_t http_5xx;         /* 500/502/503/504 answers */
        uint64_t timeouts;         /* attempts that timed out */
        uint64_t transport_errors; /* other transport failures */
        uint64_t paced_ms;         /* time operations waited only for a pacer
                                      token (summed over the head of each class) */
        uint64_t paused_ms;        /* total Retry-After pause scheduled */
        uint64_t latency_us_sum;   /* over answered attempts */
        uint64_t latency_us_max;
        uint64_t answered; /* attempts that got an HTTP response */
        size_t queued;     /* waiting for admission */
        size_t in_flight;
        size_t backoff;        /* waiting for a retry */
        int64_t pause_left_ms; /* Retry-After pause still to run, 0: none */
        int64_t rl_remaining;  /* last X-RateLimit-Remaining seen, -1 */
} kb_vendor_stats_t;

/**
 * Creates a client from the vendor.* options of @p conf (vendor.url,
 * vendor.api_key, vendor.timeout_ms, vendor.connect_timeout_ms,
 * vendor.max_in_flight, vendor.rate_limit_per_minute,
 * vendor.retry_backoff_ms, vendor.retry_backoff_max_ms, vendor.ca_file,
 * vendor.allow_insecure_http: a plain http:// vendor.url to a host that is
 * not loopback is refused without it). @p conf is not kept. Returns NULL with a
 * reason in @p errstr and the kind of failure in *err (@p err may be NULL):
 * KB_ERR_CONFIG (the options: URL, key, limits), KB_ERR_NOMEM (out of memory)
 * or KB_ERR_HTTP (libcurl could not initialise); KB_OK on success.
 */
kb_vendor_t *kb_vendor_new(const kb_conf_t *conf, int *err, char *errstr,
                           size_t errstr_size);

/**
 * Aborts everything: operations queued, in flight or waiting for a retry
 * complete with err KB_ERR_STATE (callbacks run from here; they must not
 * call into @p v). Frees @p v. Must not be called from a callback. NULL ok.
 */
void kb_vendor_destroy(kb_vendor_t *v);

/**
 * POST /v3/session/{session_id}/share/: mints a share token for
 * @p for_application_id. @p ttl_in_seconds 0 = the vendor's default.
 * 201 body: {"share_token", "for_application_id", "session_kind"}, as
 * res->view (res->body NULL; a JSON null answer counts as not JSON); the
 * answer's text is wiped after the callback returns, so copy the token
 * during it (kb_jval_str_raw() reads it without a copy).
 * @p session_id must be a UUID, @p for_application_id UTF-8.
 * Returns KB_OK (cb will run exactly once), or KB_ERR_INVALID_ARG,
 * KB_ERR_NOMEM, KB_ERR_STATE (cb will not run).
 */
int kb_vendor_share(kb_vendor_t *v, const char *session_id,
                    const char *for_application_id, int ttl_in_seconds,
                    kb_vendor_cb *cb, void *opaque);

/**
 * POST /v3/session/import-shared/ with the @p token_len bytes of
 * @p share_token (copied into a wiped-on-completion buffer; the caller may
 * wipe its copy right after this returns), @p workflow_id, optional
 * @p vendor_data and @p trust_review. Returns as kb_vendor_share();
 * KB_ERR_INVALID_ARG also for a token that is not UTF-8 (no JSON string
 * can carry it). A 2xx answer (the session made) comes as res->view,
 * res->body NULL; a JSON null answer counts as not JSON.
 */
int kb_vendor_import(kb_vendor_t *v, const char *share_token, size_t token_len,
                     const char *workflow_id, const char *vendor_data,
                     int trust_review, kb_vendor_cb *cb, void *opaque);

/**
 * GET /v3/sessions/?vendor_data=&offset=&limit= (@p vendor_data NULL: no
 * filter; @p limit 0: the vendor's default). Returns as kb_vendor_share().
 */
int kb_vendor_list_sessions(kb_vendor_t *v, const char *vendor_data, int offset,
                            int limit, kb_vendor_cb *cb, void *opaque);

/** GET /v3/session/{session_id}/decision/. Returns as kb_vendor_share(). */
int kb_vendor_decision(kb_vendor_t *v, const char *session_id, kb_vendor_cb *cb,
                       void *opaque);

/**
 * GET /v3/workflows/{workflow_id}/: one workflow of the caller's
 * application (200 with it; 404 when the application has no such
 * workflow). A read (pacing class "reads"). @p workflow_id must be a UUID.
 * Returns as kb_vendor_share().
 */
int kb_vendor_workflow(kb_vendor_t *v, const char *workflow_id,
                       kb_vendor_cb *cb, void *opaque);

/**
 * Drives everything: starts admissible operations, performs I/O, runs
 * retry timers and callbacks. Blocks at most @p timeout_ms (0: never),
 * returning early once callbacks have run. Returns the number of callbacks
 * run, or a negative kb_err_t.
 */
int kb_vendor_poll(kb_vendor_t *v, int timeout_ms);

/**
 * Polls until nothing is pending or @p timeout_ms passed (< 0: no limit).
 * For one-shot commands. KB_OK, KB_ERR_TIMEOUT (operations still pending),
 * or a negative kb_err_t from kb_vendor_poll().
 */
int kb_vendor_wait(kb_vendor_t *v, int64_t timeout_ms);

/** Operations queued + in flight + waiting for a retry. */
size_t kb_vendor_pending(const kb_vendor_t *v);

/**
 * Non-zero when a new operation would start soon: pending <
 * vendor.max_in_flight. A daemon stops consuming input while this is 0.
 */
int kb_vendor_has_capacity(const kb_vendor_t *v);

/* Longest traceparent value kb_vendor_set_trace() passes on (a W3C
 * version-00 one has 55 bytes; later versions may append fields). */
#define KB_VENDOR_TRACE_MAX 256U

/**
 * traceparent header sent with every HTTP attempt (retries included) of
 * the operations submitted after this call, until the next call (NULL or
 * "": none). Copied. A value that is not one header value (visible ASCII
 * without ',' or ';', at most KB_VENDOR_TRACE_MAX bytes) is not sent: as
 * NULL. The vendor client belongs to one thread, so a daemon sets it
 * right before kb_vendor_share()/kb_vendor_import() etc. of a record.
 */
void kb_vendor_set_trace(kb_vendor_t *v, const char *traceparent);

/**
 * Called once per finished HTTP attempt (retries each count; aborted ones
 * at destroy do not) on the client's thread, from kb_vendor_poll() &co.:
 * @p endpoint is a fixed name ("share", "import", "list_sessions",
 * "decision", "workflow"), @p status the HTTP status, 0 when no answer
 * came (transport failure, timeout, response over the cap),
 * @p latency_us the attempt's submit-to-completion time. It must not call
 * into the client.
 */
typedef void(kb_vendor_observe_cb)(void *opaque, const char *endpoint,
                                   int status, int64_t latency_us);

/** Sets (or with @p cb NULL, clears) the per-attempt observer. Same
 * thread as kb_vendor_poll(). */
void kb_vendor_set_observer(kb_vendor_t *v, kb_vendor_observe_cb *cb,
                            void *opaque);

/** A monotonic millisecond clock (see kb_vendor_set_clock()). */
typedef int64_t(kb_vendor_clock_cb)(void *opaque);

/**
 * Test hook: runs every timer of @p v -- pacing, retry backoff, Retry-After
 * pauses, kb_vendor_stats() pause_left_ms -- on @p clock (NULL: back to
 * kb_mono_ms()), so that tests can check them in virtual time. The pacers
 * are refilled and any pause is dropped. kb_vendor_poll()'s and
 * kb_vendor_wait()'s timeouts stay in real time. Call before submitting
 * anything; same thread as kb_vendor_poll().
 */
void kb_vendor_set_clock(kb_vendor_t *v, kb_vendor_clock_cb *clock,
                         void *opaque);

/** Counters and gauges (see kb_vendor_stats_t). */
void kb_vendor_stats(const kb_vendor_t *v, kb_vendor_stats_t *st);

#endif /* KB_VENDOR_H */
