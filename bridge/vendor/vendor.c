/* vendor.c -- asynchronous vendor API client: admission, pacing, retries */
#include "vendor.h"

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "http.h"
#include "json.h"
#include "log.h"
#include "util.h"

#define VENDOR_FAC          "vendor"
#define VENDOR_JSON_DEPTH   64
#define VENDOR_MAX_PAUSE_MS (24LL * 3600 * 1000) /* sanity cap */

/* Pacing classes, as the vendor counts them (per API key, 60 s window). */
typedef enum { VCLASS_WRITE, VCLASS_READ, VCLASS_DECISION, VCLASS_N } vclass_t;

#define VENDOR_WRITES_PER_MIN    300
#define VENDOR_READS_PER_MIN     600
#define VENDOR_DECISIONS_PER_MIN 100

typedef enum {
        VOP_SHARE,
        VOP_IMPORT,
        VOP_LIST,
        VOP_DECISION,
        VOP_WORKFLOW,
} vop_kind_t;

static const char *const vop_names[] = { "share", "import", "list", "decision",
                                         "workflow" };

/* The endpoint names the observer gets (kb_vendor_set_observer()). */
static const char *const vop_endpoints[] = { "share", "import", "list_sessions",
                                             "decision", "workflow" };

/* "traceparent: " + the longest value kb_vendor_set_trace() takes. */
#define VENDOR_TRACE_NAME "traceparent: "
#define VENDOR_TRACE_MAX  (sizeof(VENDOR_TRACE_NAME) + KB_VENDOR_TRACE_MAX)

typedef struct vop_s {
        struct vop_s *prev, *next; /* in a class queue or the backoff list */
        kb_vendor_t *v;
        vop_kind_t kind;
        vclass_t cls;
        const char *method;
        char *path;
        kb_buf_t body;  /* request body; wiped on completion */
        char logid[64]; /* what logs may say about the op */
        kb_vendor_cb *cb;
        void *opaque;
        int attempts;
        uint64_t seq;           /* submission order */
        int64_t due_ms;         /* backoff: not before */
        int64_t paced_since_ms; /* head of its class, held by the pacer */
        char trace_hdr[VENDOR_TRACE_MAX]; /* "traceparent: ..." or "" */
} vop_t;

typedef struct vq_s {
        vop_t *head, *tail;
        size_t n;
} vq_t;

/* Token bucket; see vendor.h for the sizing rule. */
typedef struct bucket_s {
        int enabled;
        double tokens, cap, per_ms;
        int64_t last_ms;
} bucket_t;

struct kb_vendor_s {
        kb_http_t *http;
        int max_in_flight;
        int64_t backoff_ms, backoff_max_ms;
        vq_t queue[VCLASS_N]; /* waiting for admission, by seq */
        vq_t backoff;         /* waiting for a retry, by due_ms */
        size_t in_flight;
        bucket_t bucket[VCLASS_N];
        int64_t pause_until_ms;
        uint64_t seq;
        uint64_t callbacks; /* user callbacks run so far */
        int destroying;
        kb_vendor_stats_t st;
        kb_vendor_clock_cb *clock; /* NULL: kb_mono_ms() */
        void *clock_opaque;
        char trace_hdr[VENDOR_TRACE_MAX]; /* for ops submitted from now */
        kb_vendor_observe_cb *observe;    /* per finished attempt, or NULL */
        void *observe_opaque;
};

/* The clock of every timer: pacing, backoff, Retry-After pauses. */
static int64_t vnow(const kb_vendor_t *v)
{
        return v->clock ? v->clock(v->clock_opaque) : kb_mono_ms();
}

/* ---- queues ---- */

static void vq_remove(vq_t *q, vop_t *op)
{
        if (op->prev)
                op->prev->next = op->next;
        else
                q->head = op->next;
        if (op->next)
                op->next->prev = op->prev;
        else
                q->tail = op->prev;
        op->prev = op->next = NULL;
        q->n--;
}

/* Inserts before the first element for which @p before(op, el) holds. */
static void vq_insert_sorted(vq_t *q, vop_t *op,
                             int (*before)(const vop_t *a, const vop_t *b))
{
        vop_t *el = q->head;

        while (el && !before(op, el))
                el = el->next;
        op->next = el;
        if (el) {
                op->prev = el->prev;
                if (el->prev)
                        el->prev->next = op;
                else
                        q->head = op;
                el->prev = op;
        } else {
                op->prev = q->tail;
                if (q->tail)
                        q->tail->next = op;
                else
                        q->head = op;
                q->tail = op;
        }
        q->n++;
}

static int by_seq(const vop_t *a, const vop_t *b)
{
        return a->seq < b->seq;
}

static int by_due(const vop_t *a, const vop_t *b)
{
        return a->due_ms < b->due_ms;
}

static void vq_append(vq_t *q, vop_t *op)
{
        op->next = NULL;
        op->prev = q->tail;
        if (q->tail)
                q->tail->next = op;
        else
                q->head = op;
        q->tail = op;
        q->n++;
}

/* ---- pacing ---- */

static void bucket_init(bucket_t *b, int64_t per_minute, int64_t now)
{
        double burst;

        memset(b, 0, sizeof(*b));
        if (per_minute <= 0)
                return;
        burst = (double)(per_minute / 60);
        if (burst < 1)
                burst = 1;
        if (burst > 10)
                burst = 10;
        b->enabled = 1;
        b->cap = burst;
        b->tokens = burst;
        /* Refill (N - B) per minute so that B + refill never exceeds N in
         * any 60 s window; with N < 2 that would be nothing, so allow N. */
        if ((double)per_minute - burst >= 1)
                b->per_ms = ((double)per_minute - burst) / 60000.0;
        else
                b->per_ms = (double)per_minute / 60000.0;
        b->last_ms = now;
}

static void bucket_refill(bucket_t *b, int64_t now)
{
        if (!b->enabled || now <= b->last_ms)
                return;
        b->tokens += (double)(now - b->last_ms) * b->per_ms;
        if (b->tokens > b->cap)
                b->tokens = b->cap;
        b->last_ms = now;
}

static int bucket_ok(bucket_t *b, int64_t now)
{
        bucket_refill(b, now);
        return !b->enabled || b->tokens >= 1.0;
}

static void bucket_take(bucket_t *b)
{
        if (b->enabled)
                b->tokens -= 1.0;
}

/* When the next token is there (absolute ms). */
static int64_t bucket_next_ms(const bucket_t *b, int64_t now)
{
        double need;

        if (!b->enabled || b->tokens >= 1.0)
                return now;
        need = (1.0 - b->tokens) / b->per_ms;
        return b->last_ms + (int64_t)need + 1;
}

/* ---- operation lifecycle ---- */

static void op_free(vop_t *op)
{
        kb_buf_free(&op->body, 1);
        free(op->path);
        free(op);
}

/* Wipes the share token the vendor sent back in a share response that
 * came as a tree (a 2xx one comes as a view of the wiped response body). */
static void wipe_share_token(json_object *body)
{
        json_object *t;

        if (body && json_object_object_get_ex(body, "share_token", &t) &&
            json_object_is_type(t, json_type_string)) {
                char *s = (char *)json_object_get_string(t);
                sodium_memzero(s, (size_t)json_object_get_string_len(t));
        }
}

/* Runs the callback of a detached @p op and frees it. */
/*
 * The trace id of @p op's traceparent ("traceparent: 00-<32 hex>-...")
 * into @p out, "" when it has none: the lines logged about an attempt --
 * retries, rate limits, final failures -- carry it like the daemon's own.
 */
static void op_trace_id(const vop_t *op, char out[KB_LOG_TRACE_BYTES])
{
        size_t at = sizeof(VENDOR_TRACE_NAME) - 1 + 3;

        out[0] = '\0';
        if (strlen(op->trace_hdr) >= at + KB_LOG_TRACE_BYTES - 1) {
                memcpy(out, op->trace_hdr + at, KB_LOG_TRACE_BYTES - 1);
                out[KB_LOG_TRACE_BYTES - 1] = '\0';
        }
}

/* The callback runs with the operation's trace id as the thread's log
 * context (vendor.h), the context before it restored after. */
static void op_finish(kb_vendor_t *v, vop_t *op, kb_vendor_result_t *res)
{
        char id[KB_LOG_TRACE_BYTES], saved[KB_LOG_TRACE_BYTES];

        res->attempts = op->attempts;
        if (res->err == KB_OK)
                v->st.ok++;
        else if (res->err == KB_ERR_STATE)
                v->st.aborted++;
        else
                v->st.final_errors++;
        v->callbacks++;
        op_trace_id(op, id);
        kb_log_trace_push(id[0] ? id : NULL, saved);
        op->cb(res, op->opaque);
        kb_log_trace_pop(saved);
        if (op->kind == VOP_SHARE)
                wipe_share_token(res->body);
        op_free(op);
}

static void op_abort(kb_vendor_t *v, vop_t *op, const char *why)
{
        kb_vendor_result_t res;

        memset(&res, 0, sizeof(res));
        res.err = KB_ERR_STATE;
        kb_strlcpy(res.detail, why, sizeof(res.detail));
        op_finish(v, op, &res);
}

/* Exponential backoff with jitter: uniform in [d/2, d]. */
static int64_t backoff_delay(const kb_vendor_t *v, int attempts)
{
        int64_t d = v->backoff_ms;
        int i;
        uint32_t half;

        for (i = 1; i < attempts && d < v->backoff_max_ms; i++)
                d *= 2;
        if (d > v->backoff_max_ms)
                d = v->backoff_max_ms;
        half = (uint32_t)(d / 2);
        return d - half + (int64_t)randombytes_uniform(half + 1);
}

static void op_schedule_retry(kb_vendor_t *v, vop_t *op, int64_t delay_ms,
                              const char *what)
{
        op->due_ms = vnow(v) + delay_ms;
        op->paced_since_ms = 0;
        v->st.retried++;
        kb_log_notice(VENDOR_FAC,
                      "%s %s: attempt %d failed (%s); retrying in %lld ms",
                      vop_names[op->kind], op->logid, op->attempts, what,
                      (long long)delay_ms);
        vq_insert_sorted(&v->backoff, op, by_due);
}

/* Pauses every operation until now + @p ms (never shortens a pause). */
static void pause_all(kb_vendor_t *v, int64_t ms)
{
        int64_t now = vnow(v), until;

        if (ms > VENDOR_MAX_PAUSE_MS)
                ms = VENDOR_MAX_PAUSE_MS;
        until = now + ms;
        if (until <= v->pause_until_ms)
                return;
        v->st.paused_ms +=
            (uint64_t)(until -
                       (v->pause_until_ms > now ? v->pause_until_ms : now));
        v->pause_until_ms = until;
}

/* A Retry-After in ms, at most the pause cap: the seconds are clamped
 * before they are multiplied (kb_http clamps them too; a value that does
 * not come from kb_http must not overflow here either). */
static int64_t retry_after_ms(int64_t s)
{
        if (s <= 0)
                return 0;
        if (s > VENDOR_MAX_PAUSE_MS / 1000)
                return VENDOR_MAX_PAUSE_MS;
        return s * 1000;
}

static int is_retryable_status(int status)
{
        return status == 408 || status == 500 || status == 502 ||
               status == 503 || status == 504;
}

/* The vendor's {"detail": "..."} or a stand-in, scrubbed of tokens. */
static void fill_detail(kb_vendor_result_t *res, json_object *body)
{
        const char *d = body ? kb_json_get_str(body, "detail") : NULL;

        if (d)
                kb_log_scrub(d, res->detail, sizeof(res->detail));
        else if (res->status >= 300)
                kb_snprintf(res->detail, sizeof(res->detail), "HTTP %d",
                            res->status);
}

static void attempt_done(const kb_http_resp_t *resp, vop_t *op)
{
        kb_vendor_t *v = op->v;
        kb_vendor_result_t res;
        json_object *body = NULL;
        kb_jview_t jv;
        char what[200];
        int ok, jv_ok = 0;

        v->in_flight--;
        memset(&res, 0, sizeof(res));
        res.latency_us = resp->latency_us;

        if (resp->err == KB_ERR_STATE || v->destroying) {
                op_abort(v, op, "vendor client destroyed");
                return;
        }
        if (v->observe)
                v->observe(v->observe_opaque, vop_endpoints[op->kind],
                           resp->err == KB_OK ? resp->status : 0,
                           resp->latency_us);
        if (resp->err != KB_OK) {
                if (resp->err == KB_ERR_TIMEOUT)
                        v->st.timeouts++;
                else
                        v->st.transport_errors++;
                if (resp->retryable) {
                        kb_snprintf(what, sizeof(what), "%s", resp->errtext);
                        op_schedule_retry(v, op, backoff_delay(v, op->attempts),
                                          what);
                        return;
                }
                res.err = resp->err;
                kb_strlcpy(res.detail, resp->errtext, sizeof(res.detail));
                kb_log_warn(VENDOR_FAC, "%s %s: failed for good: %s",
                            vop_names[op->kind], op->logid, res.detail);
                op_finish(v, op, &res);
                return;
        }

        v->st.answered++;
        v->st.latency_us_sum += (uint64_t)resp->latency_us;
        if ((uint64_t)resp->latency_us > v->st.latency_us_max)
                v->st.latency_us_max = (uint64_t)resp->latency_us;
        if (resp->rl_remaining >= 0)
                v->st.rl_remaining = resp->rl_remaining;
        res.status = resp->status;

        if (resp->status == 429) {
                int64_t ms = resp->retry_after_s > 0
                                 ? retry_after_ms(resp->retry_after_s)
                                 : backoff_delay(v, op->attempts);
                v->st.http_429++;
                pause_all(v, ms);
                kb_log_notice(VENDOR_FAC,
                              "%s %s: attempt %d rate limited (HTTP 429); "
                              "pausing all vendor calls for %lld ms",
                              vop_names[op->kind], op->logid, op->attempts,
                              (long long)ms);
                /* Eligible again as soon as the pause ends. */
                op->paced_since_ms = 0;
                v->st.retried++;
                vq_insert_sorted(&v->queue[op->cls], op, by_seq);
                return;
        }
        if (is_retryable_status(resp->status)) {
                int64_t d = backoff_delay(v, op->attempts);
                if (resp->status != 408)
                        v->st.http_5xx++;
                /* A server that says when to come back is believed. */
                if (resp->retry_after_s > 0 &&
                    retry_after_ms(resp->retry_after_s) > d)
                        d = retry_after_ms(resp->retry_after_s);
                kb_snprintf(what, sizeof(what), "HTTP %d", resp->status);
                op_schedule_retry(v, op, d, what);
                return;
        }

        /* Final. */
        ok = resp->status >= 200 && resp->status < 300;
        if ((op->kind == VOP_IMPORT || op->kind == VOP_SHARE) && ok) {
                /* the daemons' hot paths: checked as strictly as a tree,
                 * but read where it lies (vendor.h); a share answer's
                 * token then stays in the response body, which kb_http
                 * wipes, and no tree holds a copy */
                char perr[128] = "empty input";
                if (resp->body_len > 0 &&
                    kb_jview_init(&jv, resp->body, resp->body_len,
                                  VENDOR_JSON_DEPTH, perr, sizeof(perr)) == 0) {
                        jv_ok = 1;
                        if (kb_jval_type(jv.root) != KB_JV_NULL)
                                res.view = &jv;
                        else
                                kb_strlcpy(perr,
                                           "JSON null at the top level is "
                                           "not supported",
                                           sizeof(perr));
                }
                if (!res.view && resp->body_len > 0) {
                        res.err = KB_ERR_MALFORMED;
                        kb_snprintf(res.detail, sizeof(res.detail),
                                    "HTTP %d with unusable body: %s",
                                    resp->status, perr);
                }
        } else if (resp->body_len > 0) {
                char perr[128];
                body = kb_json_parse(resp->body, resp->body_len,
                                     VENDOR_JSON_DEPTH, perr, sizeof(perr));
                if (!body && ok) {
                        res.err = KB_ERR_MALFORMED;
                        kb_snprintf(res.detail, sizeof(res.detail),
                                    "HTTP %d with unusable body: %s",
                                    resp->status, perr);
                }
        }
        res.body = body;
        if (res.err == KB_OK) {
                if (resp->status >= 200 && resp->status < 300) {
                        res.err = KB_OK;
                } else {
                        res.err = KB_ERR_HTTP;
                        fill_detail(&res, body);
                }
        }
        if (res.err != KB_OK)
                kb_log_info(VENDOR_FAC, "%s %s: HTTP %d after %d attempt(s)",
                            vop_names[op->kind], op->logid, resp->status,
                            op->attempts);
        op_finish(v, op, &res);
        if (body)
                json_object_put(body);
        if (jv_ok)
                kb_jview_clear(&jv);
}

static void on_http_done(const kb_http_resp_t *resp, void *opaque)
{
        vop_t *op = opaque;
        char id[KB_LOG_TRACE_BYTES], saved[KB_LOG_TRACE_BYTES];

        op_trace_id(op, id); /* op may be freed by attempt_done() */
        kb_log_trace_push(id[0] ? id : NULL, saved);
        attempt_done(resp, op);
        kb_log_trace_pop(saved);
}

/* Sends one attempt of @p op (already detached from every queue). */
static void op_start(kb_vendor_t *v, vop_t *op)
{
        int r;

        op->attempts++;
        v->st.started++;
        r = kb_http_submit_hdr(v->http, op->method, op->path, op->trace_hdr,
                               op->body.data ? op->body.data : NULL,
                               op->body.len, on_http_done, op);
        if (r == KB_OK) {
                v->in_flight++;
                return;
        }
        /* Out of memory: transient; try again later. */
        v->st.transport_errors++;
        op_schedule_retry(v, op, backoff_delay(v, op->attempts), kb_err2str(r));
}

/* Moves retries whose time has come back into their class queue. */
static void promote_due(kb_vendor_t *v, int64_t now)
{
        while (v->backoff.head && v->backoff.head->due_ms <= now) {
                vop_t *op = v->backoff.head;
                vq_remove(&v->backoff, op);
                vq_insert_sorted(&v->queue[op->cls], op, by_seq);
        }
}

/* Starts what admission allows: in-flight room, pacer token, no pause. */
static void start_ready(kb_vendor_t *v, int64_t now)
{
        if (now < v->pause_until_ms)
                return;
        while (v->in_flight < (size_t)v->max_in_flight) {
                int c, best = -1;
                vop_t *op;

                for (c = 0; c < VCLASS_N; c++) {
                        vop_t *h = v->queue[c].head;
                        if (!h)
                                continue;
                        if (!bucket_ok(&v->bucket[c], now)) {
                                if (!h->paced_since_ms)
                                        h->paced_since_ms = now;
                                continue;
                        }
                        if (best < 0 || h->seq < v->queue[best].head->seq)
                                best = c;
                }
                if (best < 0)
                        return;
                op = v->queue[best].head;
                vq_remove(&v->queue[best], op);
                bucket_take(&v->bucket[best]);
                if (op->paced_since_ms) {
                        v->st.paced_ms += (uint64_t)(now - op->paced_since_ms);
                        op->paced_since_ms = 0;
                }
                op_start(v, op);
        }
}

/* The next moment a timer (retry, pause end, pacer token) needs us. */
static int64_t next_wake(kb_vendor_t *v, int64_t now)
{
        int64_t wake = INT64_MAX;
        int c;

        if (v->backoff.head)
                wake = v->backoff.head->due_ms;
        if (v->in_flight >= (size_t)v->max_in_flight)
                return wake;
        for (c = 0; c < VCLASS_N; c++) {
                int64_t t;
                if (!v->queue[c].head)
                        continue;
                t = now < v->pause_until_ms
                        ? v->pause_until_ms
                        : bucket_next_ms(&v->bucket[c], now);
                if (t < wake)
                        wake = t;
        }
        return wake;
}

/* ---- public API ---- */

kb_vendor_t *kb_vendor_new(const kb_conf_t *conf, int *err, char *errstr,
                           size_t errstr_size)
{
        kb_vendor_t *v = NULL;
        kb_http_conf_t hc;
        char *key = NULL, host[256];
        size_t keylen = 0;
        int64_t now, writes, decisions;
        int r, dummy;

        if (!err)
                err = &dummy;
        *err = KB_ERR_CONFIG;
        if (!conf) {
                kb_snprintf(errstr, errstr_size, "no configuration");
                return NULL;
        }
        r = kb_conf_get_secret(conf, "vendor.api_key", &key, &keylen, errstr,
                               errstr_size);
        if (r != KB_OK) {
                if (r == KB_ERR_NOMEM)
                        *err = KB_ERR_NOMEM;
                return NULL;
        }

        v = calloc(1, sizeof(*v));
        if (!v) {
                kb_snprintf(errstr, errstr_size, "out of memory");
                *err = KB_ERR_NOMEM;
                goto fail;
        }
        v->max_in_flight = (int)kb_conf_get_int(conf, "vendor.max_in_flight");
        v->backoff_ms = kb_conf_get_int(conf, "vendor.retry_backoff_ms");
        v->backoff_max_ms =
            kb_conf_get_int(conf, "vendor.retry_backoff_max_ms");
        if (v->max_in_flight < 1 || v->backoff_ms < 1) {
                kb_snprintf(errstr, errstr_size,
                            "vendor.max_in_flight and vendor.retry_backoff_ms "
                            "must be positive");
                goto fail;
        }
        if (v->backoff_max_ms < v->backoff_ms) {
                kb_snprintf(errstr, errstr_size,
                            "%s: vendor.retry_backoff_max_ms (%lld) is below "
                            "vendor.retry_backoff_ms (%lld)",
                            kb_conf_origin(conf, "vendor.retry_backoff_max_ms"),
                            (long long)v->backoff_max_ms,
                            (long long)v->backoff_ms);
                goto fail;
        }

        memset(&hc, 0, sizeof(hc));
        hc.base_url = kb_conf_get(conf, "vendor.url");
        hc.api_key = key;
        hc.api_key_len = keylen;
        hc.timeout_ms = (long)kb_conf_get_int(conf, "vendor.timeout_ms");
        hc.connect_timeout_ms =
            (long)kb_conf_get_int(conf, "vendor.connect_timeout_ms");
        hc.max_connections = v->max_in_flight;
        hc.ca_file = kb_conf_get(conf, "vendor.ca_file");
        hc.allow_insecure_http =
            kb_conf_get_bool(conf, "vendor.allow_insecure_http");
        if (!hc.base_url) {
                kb_snprintf(errstr, errstr_size, "vendor.url: not set");
                goto fail;
        }
        /* kb_http_new() refuses it too; here the message can name the
         * option and where the URL came from */
        if (kb_http_url_insecure(hc.base_url, host, sizeof(host)) == 1) {
                if (!hc.allow_insecure_http) {
                        kb_snprintf(errstr, errstr_size,
                                    "%s: vendor.url: plain http:// to %s, "
                                    "which is not a loopback address: the "
                                    "API key and share tokens would cross "
                                    "the network unencrypted; use https://, "
                                    "or set vendor.allow_insecure_http = "
                                    "true if the network to it is private",
                                    kb_conf_origin(conf, "vendor.url"), host);
                        goto fail;
                }
                kb_log_warn("vendor",
                            "vendor.url: plain http:// to %s, not loopback, "
                            "allowed by vendor.allow_insecure_http: the API "
                            "key and share tokens travel unencrypted",
                            host);
        }
        v->http = kb_http_new(&hc, errstr, errstr_size);
        if (!v->http) {
                *err = errno == EINVAL   ? KB_ERR_CONFIG
                       : errno == ENOMEM ? KB_ERR_NOMEM
                                         : KB_ERR_HTTP;
                goto fail;
        }
        kb_conf_secret_free(key, keylen);
        key = NULL;

        now = kb_mono_ms();
        writes = kb_conf_get_int(conf, "vendor.rate_limit_per_minute");
        /* The other classes keep the vendor's documented ratios to the
         * write budget (300 : 600 : 100); 0 turns all pacing off, e.g.
         * for the sandbox with its limits off. */
        bucket_init(&v->bucket[VCLASS_WRITE], writes, now);
        bucket_init(&v->bucket[VCLASS_READ],
                    writes * VENDOR_READS_PER_MIN / VENDOR_WRITES_PER_MIN, now);
        decisions = writes * VENDOR_DECISIONS_PER_MIN / VENDOR_WRITES_PER_MIN;
        bucket_init(&v->bucket[VCLASS_DECISION],
                    writes && !decisions ? 1 : decisions, now);
        v->st.rl_remaining = -1;
        *err = KB_OK;
        return v;

fail:
        if (key)
                kb_conf_secret_free(key, keylen);
        if (v) {
                kb_http_destroy(v->http);
                free(v);
        }
        return NULL;
}

void kb_vendor_destroy(kb_vendor_t *v)
{
        int c;

        if (!v)
                return;
        v->destroying = 1;
        /* In-flight requests come back through on_http_done. */
        kb_http_destroy(v->http);
        v->http = NULL;
        for (c = 0; c < VCLASS_N; c++) {
                while (v->queue[c].head) {
                        vop_t *op = v->queue[c].head;
                        vq_remove(&v->queue[c], op);
                        op_abort(v, op, "vendor client destroyed");
                }
        }
        while (v->backoff.head) {
                vop_t *op = v->backoff.head;
                vq_remove(&v->backoff, op);
                op_abort(v, op, "vendor client destroyed");
        }
        free(v);
}

/* Allocates an op; @p path is taken over (freed on failure too). */
static vop_t *op_new(kb_vendor_t *v, vop_kind_t kind, char *path,
                     kb_vendor_cb *cb, void *opaque)
{
        vop_t *op = calloc(1, sizeof(*op));

        if (!op) {
                free(path);
                return NULL;
        }
        op->v = v;
        op->kind = kind;
        op->path = path;
        op->cb = cb;
        op->opaque = opaque;
        memcpy(op->trace_hdr, v->trace_hdr, sizeof(op->trace_hdr));
        switch (kind) {
        case VOP_SHARE:
        case VOP_IMPORT:
                op->cls = VCLASS_WRITE;
                op->method = "POST";
                break;
        case VOP_LIST:
        case VOP_WORKFLOW:
                op->cls = VCLASS_READ;
                op->method = "GET";
                break;
        case VOP_DECISION:
                op->cls = VCLASS_DECISION;
                op->method = "GET";
                break;
        }
        return op;
}

static void op_enqueue(kb_vendor_t *v, vop_t *op)
{
        op->seq = ++v->seq;
        v->st.submitted++;
        vq_append(&v->queue[op->cls], op);
}

static int check_common(const kb_vendor_t *v, kb_vendor_cb *cb)
{
        if (!v || !cb)
                return KB_ERR_INVALID_ARG;
        if (v->destroying)
                return KB_ERR_STATE;
        return KB_OK;
}

/* "/v3/session/" + @p id + @p suffix, malloc()ed, or NULL. */
static char *session_path(const char *id, const char *suffix)
{
        kb_buf_t b = KB_BUF_INIT;

        if (kb_buf_puts(&b, "/v3/session/") == -1 ||
            kb_buf_puts(&b, id) == -1 || kb_buf_puts(&b, suffix) == -1) {
                kb_buf_free(&b, 0);
                return NULL;
        }
        return kb_buf_steal(&b, NULL);
}

int kb_vendor_share(kb_vendor_t *v, const char *session_id,
                    const char *for_application_id, int ttl_in_seconds,
                    kb_vendor_cb *cb, void *opaque)
{
        size_t alen;
        vop_t *op;
        int r = check_common(v, cb);

        if (r != KB_OK)
                return r;
        if (!session_id || !kb_is_uuid(session_id) || !for_application_id ||
            !*for_application_id || ttl_in_seconds < 0)
                return KB_ERR_INVALID_ARG;
        op = op_new(v, VOP_SHARE, session_path(session_id, "/share/"), cb,
                    opaque);
        if (!op)
                return KB_ERR_NOMEM;
        if (!op->path)
                goto nomem;
        /* written as text, as json-c wrote it:
         * {"for_application_id":"...","ttl_in_seconds":N} */
        alen = strlen(for_application_id);
        if (kb_buf_reserve(&op->body, 6 * alen + 64) == -1 ||
            kb_buf_puts(&op->body, "{\"for_application_id\":") == -1)
                goto nomem;
        if (kb_json_put_string(&op->body, for_application_id, alen) == -1) {
                if (errno != EILSEQ)
                        goto nomem;
                /* not UTF-8: no JSON string can carry it */
                op_free(op);
                return KB_ERR_INVALID_ARG;
        }
        if ((ttl_in_seconds > 0 &&
             kb_buf_printf(&op->body, ",\"ttl_in_seconds\":%d",
                           ttl_in_seconds) == -1) ||
            kb_buf_append(&op->body, "}", 1) == -1)
                goto nomem;
        kb_snprintf(op->logid, sizeof(op->logid), "session %s", session_id);
        op_enqueue(v, op);
        return KB_OK;

nomem:
        op_free(op);
        return KB_ERR_NOMEM;
}

int kb_vendor_import(kb_vendor_t *v, const char *share_token, size_t token_len,
                     const char *workflow_id, const char *vendor_data,
                     int trust_review, kb_vendor_cb *cb, void *opaque)
{
        static const char pre[] = "{\"share_token\":";
        json_object *obj = NULL, *jb;
        const char *rest;
        size_t rest_len, elen;
        char *path;
        vop_t *op;
        char d[KB_DIGEST_STR_BYTES];
        int r = check_common(v, cb);

        if (r != KB_OK)
                return r;
        if (!share_token || token_len == 0 || !workflow_id || !*workflow_id)
                return KB_ERR_INVALID_ARG;
        path = strdup("/v3/session/import-shared/");
        op = op_new(v, VOP_IMPORT, path, cb, opaque);
        if (!op)
                return KB_ERR_NOMEM;
        if (!op->path)
                goto nomem;
        /*
         * The non-secret members go through json-c; the token is spliced
         * in front by hand, into a buffer sized once (no realloc leaves a
         * copy behind) and wiped when the operation completes.
         */
        obj = json_object_new_object();
        if (!obj || kb_json_add_str(obj, "workflow_id", workflow_id) == -1 ||
            kb_json_add_str(obj, "vendor_data", vendor_data) == -1)
                goto nomem;
        jb = json_object_new_boolean(trust_review ? 1 : 0);
        if (!jb || json_object_object_add(obj, "trust_review", jb) != 0) {
                json_object_put(jb);
                goto nomem;
        }
        rest = kb_json_str(obj, &rest_len);
        if (!rest || rest_len < 2 || rest[0] != '{')
                goto nomem;
        rest++; /* "workflow_id":...} */
        rest_len--;
        /* room for the worst case (every byte escaped as \u00xx), so the
         * escaper never reallocates */
        if (token_len > (SIZE_MAX / 2 - rest_len) / 6)
                goto nomem;
        elen = 6 * token_len + 2;
        if (kb_buf_reserve(&op->body, sizeof(pre) - 1 + elen + 1 + rest_len) ==
            -1)
                goto nomem;
        kb_buf_append(&op->body, pre, sizeof(pre) - 1);
        if (kb_json_put_string(&op->body, share_token, token_len) == -1) {
                if (errno != EILSEQ)
                        goto nomem;
                /* not UTF-8: no JSON string can carry it */
                json_object_put(obj);
                op_free(op);
                return KB_ERR_INVALID_ARG;
        }
        kb_buf_append(&op->body, ",", 1);
        kb_buf_append(&op->body, rest, rest_len);
        json_object_put(obj);

        kb_digest_str(share_token, token_len, d);
        kb_snprintf(op->logid, sizeof(op->logid), "token %s", d);
        op_enqueue(v, op);
        return KB_OK;

nomem:
        json_object_put(obj);
        op_free(op);
        return KB_ERR_NOMEM;
}

/* Appends @p s percent-encoded (RFC 3986 unreserved characters kept). */
static int pct_append(kb_buf_t *b, const char *s)
{
        static const char hex[] = "0123456789ABCDEF";

        for (; *s; s++) {
                unsigned char c = (unsigned char)*s;
                if ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
                    (c >= '0' && c <= '9') || c == '-' || c == '.' ||
                    c == '_' || c == '~') {
                        if (kb_buf_append(b, s, 1) == -1)
                                return -1;
                } else {
                        char e[3] = { '%', hex[c >> 4], hex[c & 0xf] };
                        if (kb_buf_append(b, e, 3) == -1)
                                return -1;
                }
        }
        return 0;
}

int kb_vendor_list_sessions(kb_vendor_t *v, const char *vendor_data, int offset,
                            int limit, kb_vendor_cb *cb, void *opaque)
{
        kb_buf_t p = KB_BUF_INIT;
        const char *sep = "?";
        vop_t *op;
        int r = check_common(v, cb);

        if (r != KB_OK)
                return r;
        if (offset < 0 || limit < 0)
                return KB_ERR_INVALID_ARG;
        if (kb_buf_puts(&p, "/v3/sessions/") == -1)
                goto nomem;
        if (vendor_data) {
                if (kb_buf_puts(&p, "?vendor_data=") == -1 ||
                    pct_append(&p, vendor_data) == -1)
                        goto nomem;
                sep = "&";
        }
        if (offset > 0) {
                if (kb_buf_printf(&p, "%soffset=%d", sep, offset) == -1)
                        goto nomem;
                sep = "&";
        }
        if (limit > 0 && kb_buf_printf(&p, "%slimit=%d", sep, limit) == -1)
                goto nomem;
        op = op_new(v, VOP_LIST, kb_buf_steal(&p, NULL), cb, opaque);
        if (!op)
                return KB_ERR_NOMEM;
        if (!op->path) {
                op_free(op);
                return KB_ERR_NOMEM;
        }
        /* vendor_data may identify a person: logs show the page only. */
        kb_snprintf(op->logid, sizeof(op->logid), "offset %d", offset);
        op_enqueue(v, op);
        return KB_OK;

nomem:
        kb_buf_free(&p, 0);
        return KB_ERR_NOMEM;
}

int kb_vendor_decision(kb_vendor_t *v, const char *session_id, kb_vendor_cb *cb,
                       void *opaque)
{
        vop_t *op;
        int r = check_common(v, cb);

        if (r != KB_OK)
                return r;
        if (!session_id || !kb_is_uuid(session_id))
                return KB_ERR_INVALID_ARG;
        op = op_new(v, VOP_DECISION, session_path(session_id, "/decision/"), cb,
                    opaque);
        if (!op)
                return KB_ERR_NOMEM;
        if (!op->path) {
                op_free(op);
                return KB_ERR_NOMEM;
        }
        kb_snprintf(op->logid, sizeof(op->logid), "session %s", session_id);
        op_enqueue(v, op);
        return KB_OK;
}

int kb_vendor_workflow(kb_vendor_t *v, const char *workflow_id,
                       kb_vendor_cb *cb, void *opaque)
{
        kb_buf_t p = KB_BUF_INIT;
        vop_t *op;
        int r = check_common(v, cb);

        if (r != KB_OK)
                return r;
        if (!workflow_id || !kb_is_uuid(workflow_id))
                return KB_ERR_INVALID_ARG;
        if (kb_buf_printf(&p, "/v3/workflows/%s/", workflow_id) == -1) {
                kb_buf_free(&p, 0);
                return KB_ERR_NOMEM;
        }
        op = op_new(v, VOP_WORKFLOW, kb_buf_steal(&p, NULL), cb, opaque);
        if (!op)
                return KB_ERR_NOMEM;
        if (!op->path) {
                op_free(op);
                return KB_ERR_NOMEM;
        }
        kb_strlcpy(op->logid, workflow_id, sizeof(op->logid));
        op_enqueue(v, op);
        return KB_OK;
}

int kb_vendor_poll(kb_vendor_t *v, int timeout_ms)
{
        int64_t deadline, now, rnow;
        uint64_t before;

        if (!v)
                return KB_ERR_INVALID_ARG;
        if (v->destroying)
                return KB_ERR_STATE;
        if (timeout_ms < 0)
                timeout_ms = 0;
        before = v->callbacks;
        /* @p timeout_ms is real time (how long the caller may block); the
         * timers run on vnow(), which a test may have replaced */
        now = vnow(v);
        rnow = kb_mono_ms();
        deadline = rnow + timeout_ms;
        for (;;) {
                int64_t wake, left;
                int r;

                promote_due(v, now);
                start_ready(v, now);
                wake = next_wake(v, now);
                left = deadline - rnow;
                if (wake - now < left)
                        left = wake > now ? wake - now : 0;
                r = kb_http_poll(v->http, (int)left);
                if (r < 0)
                        return r;
                now = vnow(v);
                rnow = kb_mono_ms();
                if (v->callbacks != before || rnow >= deadline)
                        break;
        }
        /* Refill the pipeline right away: callbacks freed room. */
        promote_due(v, now);
        start_ready(v, now);
        return (int)(v->callbacks - before);
}

int kb_vendor_wait(kb_vendor_t *v, int64_t timeout_ms)
{
        int64_t deadline;

        if (!v)
                return KB_ERR_INVALID_ARG;
        deadline = timeout_ms < 0 ? INT64_MAX : kb_mono_ms() + timeout_ms;
        while (kb_vendor_pending(v) > 0) {
                int64_t left = deadline - kb_mono_ms();
                int r;

                if (left <= 0)
                        return KB_ERR_TIMEOUT;
                r = kb_vendor_poll(v, left > 1000 ? 1000 : (int)left);
                if (r < 0)
                        return r;
        }
        return KB_OK;
}

void kb_vendor_set_clock(kb_vendor_t *v, kb_vendor_clock_cb *clock,
                         void *opaque)
{
        int64_t now;
        int c;

        if (!v)
                return;
        v->clock = clock;
        v->clock_opaque = opaque;
        /* the pacers start full, at the new clock's now */
        now = vnow(v);
        for (c = 0; c < VCLASS_N; c++) {
                v->bucket[c].last_ms = now;
                v->bucket[c].tokens = v->bucket[c].cap;
        }
        v->pause_until_ms = 0;
}

/* A traceparent value we pass on: visible ASCII, no ',' or ';' (one
 * value, not a list), at most KB_VENDOR_TRACE_MAX bytes. The format
 * itself (version-traceid-parentid-flags) is the caller's business. */
static int trace_value_ok(const char *s)
{
        size_t n = 0;

        for (; s[n]; n++)
                if (n >= KB_VENDOR_TRACE_MAX || (unsigned char)s[n] <= 0x20 ||
                    (unsigned char)s[n] > 0x7e || s[n] == ',' || s[n] == ';')
                        return 0;
        return n > 0;
}

void kb_vendor_set_trace(kb_vendor_t *v, const char *traceparent)
{
        if (!v)
                return;
        v->trace_hdr[0] = '\0';
        if (!traceparent || !*traceparent)
                return;
        if (!trace_value_ok(traceparent)) {
                kb_log_debug(VENDOR_FAC,
                             "traceparent not sent: not a header value");
                return;
        }
        kb_snprintf(v->trace_hdr, sizeof(v->trace_hdr), "%s%s",
                    VENDOR_TRACE_NAME, traceparent);
}

void kb_vendor_set_observer(kb_vendor_t *v, kb_vendor_observe_cb *cb,
                            void *opaque)
{
        if (!v)
                return;
        v->observe = cb;
        v->observe_opaque = cb ? opaque : NULL;
}

size_t kb_vendor_pending(const kb_vendor_t *v)
{
        size_t n;
        int c;

        if (!v)
                return 0;
        n = v->in_flight + v->backoff.n;
        for (c = 0; c < VCLASS_N; c++)
                n += v->queue[c].n;
        return n;
}

int kb_vendor_has_capacity(const kb_vendor_t *v)
{
        return v && !v->destroying &&
               kb_vendor_pending(v) < (size_t)v->max_in_flight;
}

void kb_vendor_stats(const kb_vendor_t *v, kb_vendor_stats_t *st)
{
        int64_t now;
        int c;

        if (!v || !st)
                return;
        *st = v->st;
        st->queued = 0;
        for (c = 0; c < VCLASS_N; c++)
                st->queued += v->queue[c].n;
        st->in_flight = v->in_flight;
        st->backoff = v->backoff.n;
        now = vnow(v);
        st->pause_left_ms =
            v->pause_until_ms > now ? v->pause_until_ms - now : 0;
}
