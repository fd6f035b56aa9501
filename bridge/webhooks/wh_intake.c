/* wh_intake.c -- the webhook intake's HTTP side: limits, signature
 * verification with two secrets, replays, the action */
#include "wh_int.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "json.h"
#include "log.h"
#include "trace.h"

#define DEFAULT_REPLAY_MAX   65536U
#define DEFAULT_MARGIN_S     60
#define DEFAULT_KAFKA_TMO_MS 5000
#define DEFAULT_RETRY_AFTER  5
#define JSON_DEPTH           64

/* Answers with a JSON detail and counts the answer by status. */
static void reply_error(kb_wh_intake_t *wi, kb_httpd_req_t *req, int status,
                        const char *detail)
{
        switch (status) {
        case 400:
                atomic_fetch_add(&wi->st.malformed, 1);
                break;
        case 401:
                atomic_fetch_add(&wi->st.unauthorized, 1);
                break;
        case 409:
                atomic_fetch_add(&wi->st.conflicts, 1);
                break;
        case 413:
                atomic_fetch_add(&wi->st.too_large, 1);
                break;
        default:
                atomic_fetch_add(&wi->st.failed, 1);
                break;
        }
        kb_httpd_reply_error(req, status, detail, NULL);
}

void kb_wh_reply_unavailable(kb_wh_intake_t *wi, kb_httpd_req_t *req,
                             const char *detail)
{
        char ra[24];
        const char *hdrs[] = { "Retry-After", ra, NULL };

        snprintf(ra, sizeof(ra), "%d", wi->conf.retry_after_s);
        atomic_fetch_add(&wi->st.unavailable, 1);
        kb_httpd_reply_error(req, 503, detail, hdrs);
}

static void reply_ok(kb_httpd_req_t *req, const char *json)
{
        kb_httpd_reply(req, 200, "application/json", json, strlen(json), NULL);
}

/* A signature header as a replay key: lowercase (the verifier accepts
 * either case, a replay must not pass by changing it). */
static void sig_key(const char *sig, char out[KB_WEBHOOK_SIG_HEX_BYTES])
{
        size_t i;

        for (i = 0; sig[i] && i < KB_WEBHOOK_SIG_HEX_BYTES - 1; i++)
                out[i] = (char)tolower((unsigned char)sig[i]);
        out[i] = '\0';
}

/* Verifies with the current, then the previous secret. The index of the
 * secret that verified, or a negative kb_err_t. */
static int verify(kb_wh_intake_t *wi, const char *ts, const char *v2,
                  const char *simple, const char *body, size_t len, int64_t now)
{
        int i, rc = KB_ERR_AUTH;

        for (i = 0; i < 2; i++) {
                if (!wi->secret[i])
                        continue;
                rc = kb_webhook_verify(wi->secret[i], ts, v2, simple, body, len,
                                       now, wi->conf.tolerance_s);
                if (rc == KB_OK)
                        return i;
                if (rc != KB_ERR_AUTH)
                        return rc; /* malformed body, or resources */
        }
        return rc;
}

/* Adds header @p name = @p value (copied) to @p r. */
static int rec_header_add(kb_wh_rec_t *r, const char *name, const char *value)
{
        char **v = realloc(r->hdrs, (r->nhdrs + 1) * 2 * sizeof(*v));
        char *n, *val;

        if (!v)
                return KB_ERR_NOMEM;
        r->hdrs = v;
        n = strdup(name);
        val = strdup(value);
        if (!n || !val) {
                free(n);
                free(val);
                return KB_ERR_NOMEM;
        }
        v[2 * r->nhdrs] = n;
        v[2 * r->nhdrs + 1] = val;
        r->nhdrs++;
        return KB_OK;
}

/*
 * The delivery's trace context on every record it causes: traceparent
 * (this hop's span of the delivery's trace, or of one started here) and
 * tracestate, unless the action set a traceparent itself (then the
 * record is in the action's trace: neither is added); and kb-requested-at,
 * the delivery's receipt time, unless the action set one -- for a share
 * request a sharing rule made, when the share was requested
 * (docs/webhooks.md, "Trace context").
 */
static int trace_records(kb_wh_records_t *recs, const kb_trace_t *tr,
                         int64_t received_ms)
{
        char ms[24];
        size_t i;

        snprintf(ms, sizeof(ms), "%lld", (long long)received_ms);
        for (i = 0; i < recs->n; i++) {
                kb_wh_rec_t *r = &recs->v[i];
                if (!kb_wh_records_header(recs, i, "traceparent") &&
                    (rec_header_add(r, "traceparent", tr->traceparent) ||
                     (tr->tracestate[0] &&
                      rec_header_add(r, "tracestate", tr->tracestate))))
                        return KB_ERR_NOMEM;
                if (!kb_wh_records_header(recs, i, "kb-requested-at") &&
                    rec_header_add(r, "kb-requested-at", ms))
                        return KB_ERR_NOMEM;
        }
        return KB_OK;
}

/* The verified delivery: replay check, action, records. Consumes @p req. */
static void act(kb_wh_intake_t *wi, kb_httpd_req_t *req, json_object *obj,
                const char *v2, const char *simple, int idx, int64_t now,
                const kb_trace_t *tr, int64_t received_ms)
{
        kb_wh_delivery_t dlv;
        kb_wh_records_t *recs = NULL;
        char key[KB_WEBHOOK_SIG_HEX_BYTES], key2[KB_WEBHOOK_SIG_HEX_BYTES];
        char err[256], ok[64];
        int res, rc;

        if (kb_wh_delivery_parse(obj, &dlv, err, sizeof(err)) != KB_OK) {
                reply_error(wi, req, 400, err);
                return;
        }
        dlv.auth = v2 ? KB_WH_AUTH_V2 : KB_WH_AUTH_SIMPLE;
        dlv.secret_index = idx;
        sig_key(v2 ? v2 : simple, key);
        key2[0] = '\0';
        /* a V2 delivery is also remembered under its Simple signature, so
         * that dropping the V2 header does not make its replay new */
        if (v2 && kb_webhook_sign_simple(wi->secret[idx], dlv.timestamp,
                                         dlv.session_id, dlv.status,
                                         dlv.webhook_type, key2) != KB_OK)
                key2[0] = '\0';

        res = kb_wh_replay_reserve(wi->replay, key, now);
        if (res == KB_WH_REPLAY_DONE) {
                kb_log_info(wi->name,
                            "replay of a delivery for session %s "
                            "acknowledged, not acted on",
                            dlv.session_id);
                atomic_fetch_add(&wi->st.duplicates, 1);
                reply_ok(req, "{\"result\":\"duplicate\"}");
                return;
        }
        if (res == KB_WH_REPLAY_PENDING) {
                reply_error(wi, req, 409,
                            "The same delivery is being processed.");
                return;
        }
        if (res == KB_WH_REPLAY_FULL) {
                kb_log_warn(wi->name,
                            "replay cache full: delivery for "
                            "session %s answered 503",
                            dlv.session_id);
                kb_wh_reply_unavailable(wi, req, "Too many deliveries.");
                return;
        }
        if (res != KB_WH_REPLAY_NEW) {
                reply_error(wi, req, 500, "Out of memory.");
                return;
        }
        if (strcmp(dlv.webhook_type, "status.updated")) {
                kb_log_debug(wi->name, "%s delivery for session %s ignored",
                             dlv.webhook_type, dlv.session_id);
                (void)kb_wh_replay_commit(wi->replay, key, now);
                atomic_fetch_add(&wi->st.ignored, 1);
                reply_ok(req, "{\"result\":\"ignored\"}");
                return;
        }

        /* One delivery at a time from here to its records' enqueueing:
         * with several HTTP threads, two deliveries of one session must
         * reach Kafka in the order the action decided on them. The action
         * must not block; producing only enqueues. */
        pthread_mutex_lock(&wi->act_lock);
        recs = kb_wh_records_new();
        err[0] = '\0';
        rc = recs ? wi->conf.action(wi->conf.opaque, &dlv, recs, err,
                                    sizeof(err))
                  : KB_ERR_NOMEM;
        if (rc == KB_OK)
                rc = trace_records(recs, tr, received_ms);
        if (rc != KB_OK) {
                kb_wh_records_settle(recs, 0); /* before the answer */
                kb_wh_replay_release(wi->replay, key);
                kb_log_notice(wi->name,
                              "delivery for session %s not acted "
                              "on: %s",
                              dlv.session_id, err[0] ? err : kb_err2str(rc));
                if (rc == KB_ERR_MALFORMED)
                        reply_error(wi, req, 400,
                                    err[0] ? err : "Cannot act on it.");
                else if (rc == KB_ERR_RETRY)
                        kb_wh_reply_unavailable(
                            wi, req, err[0] ? err : "Try again later.");
                else
                        reply_error(wi, req, 500, "Internal error.");
                goto out;
        }
        if (kb_wh_records_count(recs) == 0) {
                kb_wh_records_settle(recs, 1); /* nothing to wait for */
                (void)kb_wh_replay_commit(wi->replay, key, now);
                if (key2[0])
                        (void)kb_wh_replay_commit(wi->replay, key2, now);
                atomic_fetch_add(&wi->st.accepted, 1);
                snprintf(ok, sizeof(ok),
                         "{\"result\":\"accepted\",\"records\":0}");
                reply_ok(req, ok);
                goto out;
        }
        kb_wh_produce(wi, req, recs, key, key2, dlv.session_id, tr->trace_id);
out:
        pthread_mutex_unlock(&wi->act_lock);
        kb_wh_records_destroy(recs);
}

static void handle(kb_wh_intake_t *wi, kb_httpd_req_t *req,
                   const kb_trace_t *tr, int64_t received_ms);

/*
 * One delivery, in its trace: the delivery's traceparent (and tracestate)
 * continued, or a trace started here; its id is on every line logged
 * while the delivery is handled on this thread.
 */
void kb_wh_intake_handler(void *opaque, kb_httpd_req_t *req)
{
        kb_wh_intake_t *wi = opaque;
        const char *tp = kb_httpd_req_header(req, "traceparent");
        const char *ts = kb_httpd_req_header(req, "tracestate");
        int64_t received_ms = kb_trace_wall_ms();
        kb_trace_t tr;
        char saved[KB_LOG_TRACE_BYTES];

        kb_trace_child(&tr, tp, tp ? strlen(tp) : 0, ts, ts ? strlen(ts) : 0);
        kb_log_trace_push(tr.trace_id, saved);
        handle(wi, req, &tr, received_ms);
        kb_log_trace_pop(saved);
}

static void handle(kb_wh_intake_t *wi, kb_httpd_req_t *req,
                   const kb_trace_t *tr, int64_t received_ms)
{
        const char *body, *ts, *v2, *simple = NULL;
        json_object *obj;
        char err[128], detail[192];
        size_t len;
        int64_t now;
        int idx;

        if (atomic_load(&wi->stopping)) {
                kb_wh_reply_unavailable(wi, req, "Shutting down.");
                return;
        }
        body = kb_httpd_req_body(req, &len);
        if (len > wi->conf.body_max) {
                snprintf(detail, sizeof(detail),
                         "Request body exceeds the limit of %zu bytes.",
                         wi->conf.body_max);
                reply_error(wi, req, 413, detail);
                return;
        }
        /* nothing in the delivery is trusted before this passes */
        ts = kb_httpd_req_header(req, "X-Timestamp");
        v2 = kb_httpd_req_header(req, "X-Signature-V2");
        if (wi->conf.allow_simple)
                simple = kb_httpd_req_header(req, "X-Signature-Simple");
        if (!ts) {
                reply_error(wi, req, 401, "Missing X-Timestamp header.");
                return;
        }
        if (!v2 && !simple) {
                reply_error(wi, req, 401,
                            wi->conf.allow_simple
                                ? "Missing X-Signature-V2 header (or "
                                  "X-Signature-Simple)."
                                : "Missing X-Signature-V2 header.");
                return;
        }
        now = kb_time_now();
        idx = verify(wi, ts, v2, simple, body, len, now);
        if (idx == KB_ERR_MALFORMED) {
                /* the reason names the defect, never quotes the input */
                obj = kb_json_parse(body, len, JSON_DEPTH, err, sizeof(err));
                json_object_put(obj);
                snprintf(detail, sizeof(detail),
                         "The body is not strict JSON: %s.",
                         obj ? "too large or too deep" : err);
                reply_error(wi, req, 400, detail);
                return;
        }
        if (idx == KB_ERR_AUTH) {
                kb_log_notice(wi->name, "delivery refused: signature "
                                        "verification failed");
                reply_error(wi, req, 401, "Signature verification failed.");
                return;
        }
        if (idx < 0) {
                reply_error(wi, req, 500, "Internal error.");
                return;
        }
        obj = kb_json_parse(body, len, JSON_DEPTH, err, sizeof(err));
        if (!obj) {
                reply_error(wi, req, 400, "The body is not strict JSON.");
                return;
        }
        act(wi, req, obj, v2, v2 ? NULL : simple, idx, now, tr, received_ms);
        json_object_put(obj);
}

/* ---------------------------------------------------------------------- */
/* Life cycle */

static int secret_copy(kb_wh_intake_t *wi, int i, const char *s)
{
        size_t n = strlen(s);

        wi->secret[i] = sodium_malloc(n + 1);
        if (!wi->secret[i])
                return -1;
        memcpy(wi->secret[i], s, n + 1);
        wi->secret_len[i] = n + 1;
        return 0;
}

kb_wh_intake_t *kb_wh_intake_new(const kb_wh_intake_conf_t *conf,
                                 rd_kafka_conf_t *rkc, int *errp, char *errstr,
                                 size_t errstr_size)
{
        kb_wh_intake_t *wi = NULL;
        size_t keep;
        int i, err = KB_ERR_INVALID_ARG;

        if (!conf || !conf->action || !conf->secrets[0] || !*conf->secrets[0] ||
            (conf->secrets[1] && !*conf->secrets[1]) || conf->tolerance_s < 0 ||
            conf->replay_margin_s < 0 || conf->kafka_timeout_ms < 0 ||
            conf->retry_after_s < 0) {
                kb_snprintf(errstr, errstr_size,
                            "webhook intake: an action and a non-empty "
                            "current secret are required");
                goto fail;
        }
        err = KB_ERR_NOMEM;
        if (sodium_init() < 0) {
                kb_snprintf(errstr, errstr_size, "libsodium init failed");
                goto fail;
        }
        wi = calloc(1, sizeof(*wi));
        if (!wi) {
                kb_snprintf(errstr, errstr_size, "out of memory");
                goto fail;
        }
        pthread_mutex_init(&wi->act_lock, NULL);
        pthread_mutex_init(&wi->plock, NULL);
        wi->term_wait_ms = 5000;
        wi->conf = *conf;
        wi->conf.secrets[0] = wi->conf.secrets[1] = NULL;
        wi->conf.name = NULL;
        kb_strlcpy(wi->name, conf->name ? conf->name : "webhook",
                   sizeof(wi->name));
        if (!wi->conf.tolerance_s)
                wi->conf.tolerance_s = KB_WEBHOOK_TOLERANCE_S;
        if (!wi->conf.body_max || wi->conf.body_max > KB_WEBHOOK_MAX_BODY)
                wi->conf.body_max = KB_WEBHOOK_MAX_BODY;
        if (!wi->conf.replay_max)
                wi->conf.replay_max = DEFAULT_REPLAY_MAX;
        if (!wi->conf.replay_margin_s)
                wi->conf.replay_margin_s = DEFAULT_MARGIN_S;
        if (!wi->conf.kafka_timeout_ms)
                wi->conf.kafka_timeout_ms = DEFAULT_KAFKA_TMO_MS;
        if (!wi->conf.retry_after_s)
                wi->conf.retry_after_s = DEFAULT_RETRY_AFTER;
        for (i = 0; i < 2; i++)
                if (conf->secrets[i] && secret_copy(wi, i, conf->secrets[i])) {
                        kb_snprintf(errstr, errstr_size, "out of memory");
                        goto fail;
                }
        /* a timestamp up to tolerance_s in the future is accepted: its
         * replays stay verifiable until ts + tolerance_s, at most
         * now + 2 * tolerance_s */
        keep = (size_t)(2 * wi->conf.tolerance_s + wi->conf.replay_margin_s);
        wi->replay = kb_wh_replay_new(wi->conf.replay_max, (int64_t)keep);
        if (!wi->replay) {
                kb_snprintf(errstr, errstr_size, "out of memory");
                goto fail;
        }
        atomic_init(&wi->stopping, 0);
        atomic_init(&wi->stop_poller, 0);
        atomic_init(&wi->inflight, 0);
        err = kb_wh_produce_init(wi, rkc, errstr, errstr_size);
        rkc = NULL; /* consumed */
        if (err != KB_OK)
                goto fail;
        if (errp)
                *errp = KB_OK;
        return wi;
fail:
        if (rkc)
                rd_kafka_conf_destroy(rkc);
        kb_wh_intake_destroy(wi, 0);
        if (errp)
                *errp = err;
        return NULL;
}

void kb_wh_intake_stats(kb_wh_intake_t *wi, kb_wh_intake_stats_t *st)
{
        st->accepted = atomic_load(&wi->st.accepted);
        st->duplicates = atomic_load(&wi->st.duplicates);
        st->ignored = atomic_load(&wi->st.ignored);
        st->malformed = atomic_load(&wi->st.malformed);
        st->unauthorized = atomic_load(&wi->st.unauthorized);
        st->conflicts = atomic_load(&wi->st.conflicts);
        st->too_large = atomic_load(&wi->st.too_large);
        st->unavailable = atomic_load(&wi->st.unavailable);
        st->failed = atomic_load(&wi->st.failed);
        st->records_acked = atomic_load(&wi->st.records_acked);
}

rd_kafka_t *kb_wh_intake_producer(kb_wh_intake_t *wi)
{
        return wi->rk;
}

void kb_wh_intake_destroy(kb_wh_intake_t *wi, int flush_ms)
{
        int i;

        if (!wi)
                return;
        atomic_store(&wi->stopping, 1);
        kb_wh_produce_term(wi, flush_ms);
        kb_wh_replay_destroy(wi->replay);
        for (i = 0; i < 2; i++)
                if (wi->secret[i])
                        sodium_free(wi->secret[i]); /* wipes */
        pthread_mutex_destroy(&wi->act_lock);
        pthread_mutex_destroy(&wi->plock);
        free(wi);
}
