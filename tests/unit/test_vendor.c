/* test_vendor.c -- unit tests of the vendor API client against the real sandbox
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "conf.h"
#include "http.h"
#include "json.h"
#include "kb_test_rawhttp.h"
#include "kb_test_sandbox.h"
#include "kyc_bridge.h"
#include "log.h"
#include "util.h"
#include "vendor.h"

static kbt_sandbox_t sb;
static kbt_app_t app_a, app_b;  /* issuer A, importer B */
static char wf_a[64], wf_b[64]; /* kyc workflows */
static char sess_a[64];         /* finished (Approved) session of A */
static char share_path[128];    /* "/v3/session/<sess_a>/share/" */
static int ttl_seq = 3600;      /* distinct TTLs give distinct tokens */

/* One finished operation, copied out of the callback. */
typedef struct res_s {
        int called;
        int status, err, attempts;
        char detail[256];
        char token[4096];           /* share_token of a share */
        char session_id[64];        /* session_id of an import/decision */
        char shared_from[64];       /* shared_from_session */
        char first_shared_from[64]; /* of results[0] in a list */
        char uuid[64];              /* of a workflow */
        int64_t count;              /* of a list */
        char trace_id[33];          /* the log trace id in the callback */
} res_t;

static void res_cb(const kb_vendor_result_t *r, void *opaque)
{
        res_t *t = opaque;
        const char *s;

        t->called++;
        kb_strlcpy(t->trace_id, kb_log_trace(), sizeof(t->trace_id));
        t->status = r->status;
        t->err = r->err;
        t->attempts = r->attempts;
        kb_strlcpy(t->detail, r->detail, sizeof(t->detail));
        if (r->view) {
                /* a share's or an import's answer: read where it lies */
                assert_null(r->body);
                kb_jval_str(kb_jview_get(r->view, "share_token"), t->token,
                            sizeof(t->token), NULL);
                kb_jval_str(kb_jview_get(r->view, "session_id"), t->session_id,
                            sizeof(t->session_id), NULL);
                kb_jval_str(kb_jview_get(r->view, "shared_from_session"),
                            t->shared_from, sizeof(t->shared_from), NULL);
                return;
        }
        if (!r->body)
                return;
        if ((s = kb_json_get_str(r->body, "share_token")))
                kb_strlcpy(t->token, s, sizeof(t->token));
        if ((s = kb_json_get_str(r->body, "session_id")))
                kb_strlcpy(t->session_id, s, sizeof(t->session_id));
        if ((s = kb_json_get_str(r->body, "shared_from_session")))
                kb_strlcpy(t->shared_from, s, sizeof(t->shared_from));
        if ((s = kb_json_get_str(r->body, "uuid")))
                kb_strlcpy(t->uuid, s, sizeof(t->uuid));
        if (kb_json_get_i64(r->body, "count", &t->count) == 0) {
                json_object *res = kb_json_get(r->body, "results");
                if (res && json_object_is_type(res, json_type_array) &&
                    json_object_array_length(res) > 0 &&
                    (s = kb_json_get_str(json_object_array_get_idx(res, 0),
                                         "shared_from_session")))
                        kb_strlcpy(t->first_shared_from, s,
                                   sizeof(t->first_shared_from));
        }
}

typedef struct vopts_s {
        const char *url; /* NULL: the sandbox */
        const char *key;
        int max_in_flight;
        int rate; /* vendor.rate_limit_per_minute */
        int timeout_ms;
        int backoff_ms, backoff_max_ms;
} vopts_t;

static void conf_set(kb_conf_t *conf, const char *k, const char *v)
{
        char err[256];

        if (kb_conf_set(conf, k, v, "test", err, sizeof(err)) != KB_OK)
                fail_msg("kb_conf_set %s: %s", k, err);
}

static void conf_seti(kb_conf_t *conf, const char *k, int v)
{
        char num[32];

        snprintf(num, sizeof(num), "%d", v);
        conf_set(conf, k, num);
}

static kb_vendor_t *mk(const vopts_t *o)
{
        kb_conf_t *conf = kb_conf_new();
        char err[256] = "";
        kb_vendor_t *v;

        assert_non_null(conf);
        setenv("KBT_VENDOR_KEY", o->key, 1);
        conf_set(conf, "vendor.url", o->url ? o->url : sb.url);
        conf_set(conf, "vendor.api_key", "env:KBT_VENDOR_KEY");
        conf_seti(conf, "vendor.max_in_flight",
                  o->max_in_flight ? o->max_in_flight : 64);
        conf_seti(conf, "vendor.rate_limit_per_minute", o->rate);
        conf_seti(conf, "vendor.timeout_ms",
                  o->timeout_ms ? o->timeout_ms : 10000);
        conf_seti(conf, "vendor.connect_timeout_ms", 2000);
        conf_seti(conf, "vendor.retry_backoff_ms",
                  o->backoff_ms ? o->backoff_ms : 50);
        conf_seti(conf, "vendor.retry_backoff_max_ms",
                  o->backoff_max_ms ? o->backoff_max_ms : 200);
        v = kb_vendor_new(conf, NULL, err, sizeof(err));
        if (!v)
                fail_msg("kb_vendor_new: %s", err);
        kb_conf_destroy(conf);
        /* The key was copied: the environment is not read again. */
        setenv("KBT_VENDOR_KEY", "gone", 1);
        return v;
}

static kb_vendor_t *mk_simple(const char *key)
{
        vopts_t o;

        memset(&o, 0, sizeof(o));
        o.key = key;
        return mk(&o);
}

/* Virtual time for the client's timers (kb_vendor_set_clock): pacing,
 * backoff and pauses are then checked exactly, whatever the load. */
static int64_t vclock_ms;

static int64_t vclock(void *opaque)
{
        (void)opaque;
        return vclock_ms;
}

static void use_vclock(kb_vendor_t *v)
{
        vclock_ms = 1000000;
        kb_vendor_set_clock(v, vclock, NULL);
}

static void wait_all(kb_vendor_t *v)
{
        assert_int_equal(kb_vendor_wait(v, 20000), KB_OK);
        assert_int_equal(kb_vendor_pending(v), 0);
}

/* Mints a fresh share token of sess_a for B. */
static void mint(kb_vendor_t *va, res_t *r)
{
        memset(r, 0, sizeof(*r));
        assert_int_equal(
            kb_vendor_share(va, sess_a, app_b.id, ++ttl_seq, res_cb, r), KB_OK);
        wait_all(va);
        assert_int_equal(r->called, 1);
        assert_int_equal(r->status, 201);
        assert_true(strlen(r->token) > 20);
}

static int group_setup(void **state)
{
        (void)state;
        if (kb_init() != KB_OK || kbt_sandbox_start(&sb, 777) != 0)
                return -1;
        if (kbt_new_app(&sb, "issuer-a", &app_a) != 0 ||
            kbt_new_app(&sb, "importer-b", &app_b) != 0 ||
            kbt_new_workflow(&sb, &app_a, "kyc", wf_a, sizeof(wf_a)) != 0 ||
            kbt_new_workflow(&sb, &app_b, "kyc", wf_b, sizeof(wf_b)) != 0 ||
            kbt_new_session(&sb, &app_a, wf_a, "Approved", sess_a,
                            sizeof(sess_a)) != 0)
                return -1;
        snprintf(share_path, sizeof(share_path), "/v3/session/%s/share/",
                 sess_a);
        /* Server-side budgets off; the client's own pacing is tested. */
        if (kbt_req(&sb, "PUT", "/sandbox/rate-limits", NULL,
                    "{\"per_minute\":0}", NULL) != 200)
                return -1;
        return 0;
}

static int group_teardown(void **state)
{
        (void)state;
        kbt_sandbox_stop(&sb);
        return 0;
}

/* Before each test: no faults, no server-side budgets. */
static int clear_faults(void **state)
{
        (void)state;
        if (kbt_req(&sb, "PUT", "/sandbox/rate-limits", NULL,
                    "{\"per_minute\":0}", NULL) != 200)
                return -1;
        return kbt_faults_clear(&sb) == 200 ? 0 : -1;
}

static void put_fault(const char *path, int latency_ms, double rate, int status)
{
        char body[512];

        snprintf(body, sizeof(body),
                 "{\"path\":\"%s\",\"latency_ms\":%d,\"error_rate\":%.2f,"
                 "\"error_status\":%d}",
                 path, latency_ms, rate, status ? status : 503);
        assert_int_equal(kbt_faults_put(&sb, body), 200);
}

static void test_share_import_list_decision(void **state)
{
        kb_vendor_t *va = mk_simple(app_a.key), *vb = mk_simple(app_b.key);
        res_t sh, im, ls, de;
        kb_vendor_stats_t st;

        (void)state;
        mint(va, &sh);
        assert_int_equal(sh.err, KB_OK);
        assert_int_equal(sh.attempts, 1);
        assert_int_equal(sh.detail[0], '\0');

        memset(&im, 0, sizeof(im));
        assert_int_equal(kb_vendor_import(vb, sh.token, strlen(sh.token), wf_b,
                                          "partner-user-7", 0, res_cb, &im),
                         KB_OK);
        assert_int_equal(kb_vendor_pending(vb), 1);
        wait_all(vb);
        assert_int_equal(im.called, 1);
        assert_int_equal(im.status, 201);
        assert_int_equal(im.err, KB_OK);
        assert_int_equal(im.attempts, 1);
        assert_true(kb_is_uuid(im.session_id));
        assert_string_equal(im.shared_from, sess_a);

        /* The reconcile path: find it by vendor_data, read it back. */
        memset(&ls, 0, sizeof(ls));
        assert_int_equal(
            kb_vendor_list_sessions(vb, "partner-user-7", 0, 10, res_cb, &ls),
            KB_OK);
        memset(&de, 0, sizeof(de));
        assert_int_equal(kb_vendor_decision(vb, im.session_id, res_cb, &de),
                         KB_OK);
        wait_all(vb);
        assert_int_equal(ls.status, 200);
        assert_int_equal(ls.count, 1);
        assert_string_equal(ls.first_shared_from, sess_a);
        assert_int_equal(de.status, 200);
        assert_string_equal(de.session_id, im.session_id);

        kb_vendor_stats(vb, &st);
        assert_int_equal(st.submitted, 3);
        assert_int_equal(st.started, 3);
        assert_int_equal(st.ok, 3);
        assert_int_equal(st.final_errors, 0);
        assert_int_equal(st.retried, 0);
        assert_true(st.latency_us_max > 0);
        kb_vendor_destroy(vb);
        kb_vendor_destroy(va);
}

static void test_final_errors(void **state)
{
        kb_vendor_t *va = mk_simple(app_a.key), *vb = mk_simple(app_b.key);
        kb_vendor_t *vx = mk_simple("not-a-valid-key");
        char open_sess[64], unknown[37];
        res_t sh, r400, r401, r404, i1, i2, i3;
        kb_vendor_stats_t st;

        (void)state;
        /* 400: an unfinished session cannot be shared. */
        assert_int_equal(kbt_new_session(&sb, &app_a, wf_a, NULL, open_sess,
                                         sizeof(open_sess)),
                         0);
        memset(&r400, 0, sizeof(r400));
        assert_int_equal(
            kb_vendor_share(va, open_sess, app_b.id, 0, res_cb, &r400), KB_OK);
        /* 404: unknown session. */
        kb_uuid4(unknown);
        memset(&r404, 0, sizeof(r404));
        assert_int_equal(
            kb_vendor_share(va, unknown, app_b.id, 0, res_cb, &r404), KB_OK);
        /* 401: bad key. */
        memset(&r401, 0, sizeof(r401));
        assert_int_equal(
            kb_vendor_share(vx, sess_a, app_b.id, 0, res_cb, &r401), KB_OK);
        wait_all(va);
        wait_all(vx);
        assert_int_equal(r400.status, 400);
        assert_int_equal(r400.err, KB_ERR_HTTP);
        assert_int_equal(r400.attempts, 1);
        assert_non_null(strstr(r400.detail, "finished"));
        assert_int_equal(r404.status, 404);
        assert_int_equal(r404.err, KB_ERR_HTTP);
        assert_true(r404.detail[0] != '\0');
        assert_int_equal(r401.status, 401);
        assert_int_equal(r401.err, KB_ERR_HTTP);
        assert_true(r401.detail[0] != '\0');

        /* 403 twice: not for A; then imported twice by B. */
        mint(va, &sh);
        memset(&i1, 0, sizeof(i1));
        memset(&i2, 0, sizeof(i2));
        memset(&i3, 0, sizeof(i3));
        assert_int_equal(kb_vendor_import(va, sh.token, strlen(sh.token), wf_a,
                                          NULL, 0, res_cb, &i1),
                         KB_OK);
        wait_all(va);
        assert_int_equal(i1.status, 403);
        assert_non_null(strstr(i1.detail, "not intended"));
        assert_int_equal(kb_vendor_import(vb, sh.token, strlen(sh.token), wf_b,
                                          NULL, 1, res_cb, &i2),
                         KB_OK);
        wait_all(vb);
        assert_int_equal(i2.status, 201);
        assert_int_equal(kb_vendor_import(vb, sh.token, strlen(sh.token), wf_b,
                                          NULL, 1, res_cb, &i3),
                         KB_OK);
        wait_all(vb);
        assert_int_equal(i3.status, 403);
        assert_int_equal(i3.err, KB_ERR_HTTP);
        assert_non_null(strstr(i3.detail, "already imported"));
        /* The detail never carries a token. */
        assert_null(strstr(i3.detail, "eyJ"));

        kb_vendor_stats(va, &st);
        assert_int_equal(st.final_errors, 3);
        assert_int_equal(st.retried, 0);

        /* An id that needs escapes reaches the vendor as its JSON string:
         * the body parsed, the id itself was refused. */
        memset(&r400, 0, sizeof(r400));
        assert_int_equal(
            kb_vendor_share(va, sess_a, "a\"b\\c\n", 0, res_cb, &r400), KB_OK);
        wait_all(va);
        assert_int_equal(r400.status, 400);
        assert_non_null(strstr(r400.detail, "Must be a valid UUID"));

        /* Refused synchronously: the callback never runs. */
        assert_int_equal(
            kb_vendor_share(va, "../../etc", app_b.id, 0, res_cb, &sh),
            KB_ERR_INVALID_ARG);
        assert_int_equal(kb_vendor_share(va, sess_a, "\xff", 0, res_cb, &sh),
                         KB_ERR_INVALID_ARG);
        assert_int_equal(kb_vendor_decision(va, "x/y", res_cb, &sh),
                         KB_ERR_INVALID_ARG);
        assert_int_equal(
            kb_vendor_import(va, "", 0, wf_a, NULL, 0, res_cb, &sh),
            KB_ERR_INVALID_ARG);
        assert_int_equal(kb_vendor_list_sessions(va, NULL, -1, 0, res_cb, &sh),
                         KB_ERR_INVALID_ARG);
        assert_int_equal(kb_vendor_pending(va), 0);
        kb_vendor_destroy(vx);
        kb_vendor_destroy(vb);
        kb_vendor_destroy(va);
}

/* Polls @p v until @p cond holds or @p ms passed; returns cond. */
#define POLL_UNTIL(v, cond, ms)                                                \
        do {                                                                   \
                int64_t end_ = kb_mono_ms() + (ms);                            \
                while (!(cond) && kb_mono_ms() < end_)                         \
                        assert_true(kb_vendor_poll((v), 10) >= 0);             \
        } while (0)

static void test_retry_5xx_until_cleared(void **state)
{
        kb_vendor_t *va = mk_simple(app_a.key);
        kb_vendor_stats_t st;
        res_t r;

        (void)state;
        put_fault(share_path, 0, 1.0, 503);
        memset(&r, 0, sizeof(r));
        assert_int_equal(
            kb_vendor_share(va, sess_a, app_b.id, ++ttl_seq, res_cb, &r),
            KB_OK);
        POLL_UNTIL(va, (kb_vendor_stats(va, &st), st.http_5xx >= 3), 20000);
        assert_true(st.http_5xx >= 3);
        assert_int_equal(r.called, 0); /* not delivered: retried */
        assert_int_equal(kb_vendor_pending(va), 1);
        assert_int_equal(kbt_faults_clear(&sb), 200);
        wait_all(va);
        assert_int_equal(r.called, 1);
        assert_int_equal(r.status, 201);
        assert_int_equal(r.err, KB_OK);
        assert_true(r.attempts >= 4);
        kb_vendor_stats(va, &st);
        assert_int_equal(st.retried, (uint64_t)r.attempts - 1);
        assert_int_equal(st.http_5xx, (uint64_t)r.attempts - 1);
        assert_int_equal(st.started, (uint64_t)r.attempts);
        assert_int_equal(st.ok, 1);
        assert_int_equal(st.final_errors, 0);
        kb_vendor_destroy(va);
}

/* The Retry-After the sandbox sends on an injected 429 (via kb_http). */
static void probe_retry_after_cb(const kb_http_resp_t *resp, void *opaque)
{
        int64_t *out = opaque;

        *out = resp->status == 429 ? resp->retry_after_s : -2;
}

static int64_t probe_retry_after(const char *path)
{
        kb_http_conf_t hc;
        kb_http_t *h;
        char err[128];
        int64_t ra = -3, end = kb_mono_ms() + 5000;

        memset(&hc, 0, sizeof(hc));
        hc.base_url = sb.url;
        hc.api_key = app_a.key;
        hc.api_key_len = strlen(app_a.key);
        hc.max_connections = 1;
        hc.timeout_ms = 5000;
        h = kb_http_new(&hc, err, sizeof(err));
        assert_non_null(h);
        assert_int_equal(
            kb_http_submit(h, "POST", path, "{}", 2, probe_retry_after_cb, &ra),
            KB_OK);
        while (ra == -3 && kb_mono_ms() < end)
                kb_http_poll(h, 100);
        kb_http_destroy(h);
        return ra;
}

/* Polls (real time, bounded) until @p v has nothing in flight. */
static void settle(kb_vendor_t *v)
{
        kb_vendor_stats_t st;
        int64_t end = kb_mono_ms() + 20000;

        assert_true(kb_vendor_poll(v, 0) >= 0);
        kb_vendor_stats(v, &st);
        while (st.in_flight > 0 && kb_mono_ms() < end) {
                assert_true(kb_vendor_poll(v, 10) >= 0);
                kb_vendor_stats(v, &st);
        }
        assert_int_equal(st.in_flight, 0);
        /* what finished may have freed room: let it start */
        assert_true(kb_vendor_poll(v, 0) >= 0);
}

/*
 * GET /v3/workflows/{uuid}/: 200 for a workflow of the caller's
 * application, 404 for another application's and for an unknown one; a
 * path that is no UUID is refused up front. It is a read: with 60 writes
 * a minute the read pacer holds a burst of 2 (the write and decision
 * pacers 1), so in frozen virtual time exactly two of three start.
 */
static void test_workflow(void **state)
{
        kb_vendor_t *vb;
        kb_vendor_stats_t st;
        res_t own, other, unknown, r[3];
        char nobody[37];
        vopts_t o;
        int i;

        (void)state;
        vb = mk_simple(app_b.key);
        memset(&own, 0, sizeof(own));
        memset(&other, 0, sizeof(other));
        memset(&unknown, 0, sizeof(unknown));
        kb_uuid4(nobody);
        assert_int_equal(kb_vendor_workflow(vb, wf_b, res_cb, &own), KB_OK);
        assert_int_equal(kb_vendor_workflow(vb, wf_a, res_cb, &other), KB_OK);
        assert_int_equal(kb_vendor_workflow(vb, nobody, res_cb, &unknown),
                         KB_OK);
        wait_all(vb);
        assert_int_equal(own.called, 1);
        assert_int_equal(own.status, 200);
        assert_int_equal(own.err, KB_OK);
        assert_string_equal(own.uuid, wf_b);
        assert_int_equal(other.status, 404);
        assert_int_equal(other.err, KB_ERR_HTTP);
        assert_int_equal(unknown.status, 404);
        assert_int_equal(unknown.err, KB_ERR_HTTP);
        assert_int_equal(kb_vendor_workflow(vb, "../sessions", res_cb, &own),
                         KB_ERR_INVALID_ARG);
        assert_int_equal(kb_vendor_workflow(vb, NULL, res_cb, &own),
                         KB_ERR_INVALID_ARG);
        assert_int_equal(kb_vendor_pending(vb), 0);
        assert_int_equal(own.called, 1);
        kb_vendor_destroy(vb);

        memset(&o, 0, sizeof(o));
        o.key = app_b.key;
        o.rate = 60;
        vb = mk(&o);
        use_vclock(vb);
        memset(r, 0, sizeof(r));
        for (i = 0; i < 3; i++)
                assert_int_equal(kb_vendor_workflow(vb, wf_b, res_cb, &r[i]),
                                 KB_OK);
        settle(vb);
        kb_vendor_stats(vb, &st);
        assert_int_equal(st.started, 2);
        assert_int_equal(st.queued, 1);
        vclock_ms += 60000;
        settle(vb);
        kb_vendor_stats(vb, &st);
        assert_int_equal(st.started, 3);
        for (i = 0; i < 3; i++)
                assert_int_equal(r[i].status, 200);
        kb_vendor_destroy(vb);
}

static void test_429_pauses_everything(void **state)
{
        kb_vendor_t *va = mk_simple(app_a.key);
        kb_vendor_stats_t st;
        res_t r, d;
        int64_t ra, t429;
        char body[512];

        (void)state;
        use_vclock(va);
        snprintf(body, sizeof(body),
                 "{\"path\":\"%s\",\"error_rate\":1.0,"
                 "\"error_status\":429,\"retry_after\":2}",
                 share_path);
        assert_int_equal(kbt_faults_put(&sb, body), 200);
        /* What the server says, read with the engine underneath. */
        ra = probe_retry_after(share_path);
        assert_int_equal(ra, 2);

        memset(&r, 0, sizeof(r));
        assert_int_equal(
            kb_vendor_share(va, sess_a, app_b.id, ++ttl_seq, res_cb, &r),
            KB_OK);
        POLL_UNTIL(va, (kb_vendor_stats(va, &st), st.http_429 >= 1), 20000);
        t429 = vclock_ms;
        assert_int_equal(st.http_429, 1);
        /* virtual time stood still: exactly the server's word */
        assert_int_equal(st.pause_left_ms, ra * 1000);
        assert_int_equal(st.paused_ms, (uint64_t)ra * 1000);
        assert_int_equal(st.started, 1);
        /* The server has recovered, but its word stands: nothing may be
         * sent before the pause ends -- not even another class's call. */
        assert_int_equal(kbt_faults_clear(&sb), 200);
        memset(&d, 0, sizeof(d));
        assert_int_equal(kb_vendor_decision(va, sess_a, res_cb, &d), KB_OK);
        while (vclock_ms < t429 + ra * 1000 - 1) {
                vclock_ms += 100;
                if (vclock_ms > t429 + ra * 1000 - 1)
                        vclock_ms = t429 + ra * 1000 - 1;
                assert_true(kb_vendor_poll(va, 2) >= 0);
                kb_vendor_stats(va, &st);
                assert_int_equal(st.started, 1);
                assert_int_equal(st.pause_left_ms,
                                 t429 + ra * 1000 - vclock_ms);
        }
        assert_int_equal(r.called, 0);
        /* the last millisecond of the pause: both go */
        vclock_ms++;
        settle(va);
        kb_vendor_stats(va, &st);
        assert_int_equal(st.pause_left_ms, 0);
        assert_int_equal(st.started, 3);
        assert_int_equal(r.called, 1);
        assert_int_equal(r.status, 201);
        assert_int_equal(r.attempts, 2);
        assert_int_equal(d.called, 1);
        assert_int_equal(d.status, 200);
        assert_int_equal(d.attempts, 1);
        assert_int_equal(st.http_429, 1);
        assert_int_equal(st.paused_ms, (uint64_t)ra * 1000);
        kb_vendor_destroy(va);
}

/*
 * A Retry-After far beyond any sane value (found by fuzzing: multiplied by
 * 1000 it overflows int64) means the 24 h cap -- not a negative or tiny
 * pause and a tight retry loop. On a 429 all calls pause, on a 503 the
 * call is retried no earlier than the cap. Virtual time: no waiting.
 */
static void test_huge_retry_after(void **state)
{
        static const char *const values[] = {
                "23058430092169390",
                "9300000000000000",
                "9223372036854775807",
                "99999999999999999999999999",
        };
        static const int statuses[] = { 429, 503 };
        const int64_t cap = 24LL * 3600 * 1000;
        kbt_raw_t raw;
        size_t i, k;

        (void)state;
        assert_int_equal(kbt_raw_start(&raw, ""), 0);
        for (i = 0; i < KB_ARRAY_SIZE(values); i++) {
                for (k = 0; k < KB_ARRAY_SIZE(statuses); k++) {
                        char resp[512];
                        kb_vendor_stats_t st;
                        kb_vendor_t *v;
                        vopts_t o;
                        res_t r;
                        int64_t t0;

                        snprintf(resp, sizeof(resp),
                                 "HTTP/1.1 %d Oops\r\nRetry-After: %s\r\n"
                                 "Content-Length: 2\r\n"
                                 "Connection: close\r\n\r\n{}",
                                 statuses[k], values[i]);
                        kbt_raw_set(&raw, resp);
                        memset(&o, 0, sizeof(o));
                        o.url = raw.url;
                        o.key = "k";
                        v = mk(&o);
                        use_vclock(v);
                        t0 = vclock_ms;
                        memset(&r, 0, sizeof(r));
                        assert_int_equal(
                            kb_vendor_share(v, sess_a, app_b.id, 0, res_cb, &r),
                            KB_OK);
                        POLL_UNTIL(v,
                                   (kb_vendor_stats(v, &st),
                                    st.http_429 + st.http_5xx >= 1),
                                   20000);
                        assert_int_equal(st.http_429 + st.http_5xx, 1);
                        assert_int_equal(st.started, 1);
                        if (statuses[k] == 429) {
                                assert_int_equal(st.pause_left_ms, cap);
                                assert_int_equal(st.paused_ms, (uint64_t)cap);
                                assert_int_equal(st.queued, 1);
                        } else {
                                assert_int_equal(st.pause_left_ms, 0);
                                assert_int_equal(st.backoff, 1);
                        }
                        /* nothing goes out a millisecond before the cap */
                        vclock_ms = t0 + cap - 1;
                        assert_true(kb_vendor_poll(v, 20) >= 0);
                        kb_vendor_stats(v, &st);
                        assert_int_equal(st.started, 1);
                        /* and the retry does go out at the cap */
                        vclock_ms = t0 + cap;
                        POLL_UNTIL(v,
                                   (kb_vendor_stats(v, &st), st.started >= 2),
                                   20000);
                        assert_int_equal(st.started, 2);
                        assert_int_equal(r.called, 0);
                        kb_vendor_destroy(v);
                        assert_int_equal(r.called, 1);
                        assert_int_equal(r.err, KB_ERR_STATE);
                }
        }
        kbt_raw_stop(&raw);
}

/* A share token no JSON string can carry is refused up front (it used to
 * go out as an invalid request body). */
static void test_import_refuses_non_utf8_token(void **state)
{
        kb_vendor_t *vb = mk_simple(app_b.key);
        res_t r;

        (void)state;
        memset(&r, 0, sizeof(r));
        assert_int_equal(
            kb_vendor_import(vb, "eyJ\xff.x.y", 8, wf_b, NULL, 0, res_cb, &r),
            KB_ERR_INVALID_ARG);
        assert_int_equal(
            kb_vendor_import(vb, "eyJ\xc3", 4, wf_b, NULL, 0, res_cb, &r),
            KB_ERR_INVALID_ARG);
        assert_int_equal(kb_vendor_pending(vb), 0);
        assert_int_equal(r.called, 0);
        /* control characters are escaped, not refused: the vendor says
         * no, the request was well-formed */
        assert_int_equal(
            kb_vendor_import(vb, "eyJ\n\"x", 6, wf_b, NULL, 0, res_cb, &r),
            KB_OK);
        wait_all(vb);
        assert_int_equal(r.called, 1);
        assert_true(r.status >= 400 && r.status < 500);
        assert_int_equal(r.err, KB_ERR_HTTP);
        kb_vendor_destroy(vb);
}

static void test_concurrency_is_real(void **state)
{
        enum { N = 64 };
        vopts_t o;
        kb_vendor_t *va;
        res_t *r = calloc(N, sizeof(*r));
        int64_t t0, el;
        int i, round;
        kb_vendor_stats_t st;

        (void)state;
        memset(&o, 0, sizeof(o));
        o.key = app_a.key;
        o.max_in_flight = N;
        o.rate = 0;
        va = mk(&o);
        assert_non_null(r);
        put_fault(share_path, 200, 0.0, 0);
        for (round = 0; round < 2; round++) { /* 2nd: kept-alive conns */
                memset(r, 0, N * sizeof(*r));
                t0 = kb_mono_ms();
                for (i = 0; i < N; i++) {
                        assert_int_equal(kb_vendor_share(va, sess_a, app_b.id,
                                                         0, res_cb, &r[i]),
                                         KB_OK);
                        assert_int_equal(kb_vendor_has_capacity(va), i + 1 < N);
                }
                wait_all(va);
                el = kb_mono_ms() - t0;
                for (i = 0; i < N; i++) {
                        assert_int_equal(r[i].called, 1);
                        assert_int_equal(r[i].status, 201);
                }
                /* One after another: 12.8 s; concurrent: 0.2 s plus
                 * overhead. Half the serial time leaves room for a loaded
                 * machine or ASan and still catches serialisation. */
                assert_true(el >= 200);
                assert_true(el < 6400);
                fprintf(stderr,
                        "# round %d: %d shares, 200 ms latency, "
                        "in %lld ms\n",
                        round, N, (long long)el);
        }
        kb_vendor_stats(va, &st);
        assert_int_equal(st.ok, 2 * N);
        assert_true(st.latency_us_max >= 200000);
        kb_vendor_destroy(va);
        free(r);
}

/*
 * 120 writes a minute: a burst of 2, then one every 60000 / 118 ms (the
 * refill keeps burst + refill within the budget of any 60 s window). In
 * virtual time, advanced only while nothing is in flight, each start is
 * seen within the 10 ms step after its token is due.
 */
static void test_write_pacing(void **state)
{
        enum { N = 10 };
        const double gap = 60000.0 / 118;
        vopts_t o;
        kb_vendor_t *va;
        res_t r[N];
        int64_t t0, at[N];
        uint64_t seen = 0;
        int i, steps = 0;
        kb_vendor_stats_t st;

        (void)state;
        memset(&o, 0, sizeof(o));
        o.key = app_a.key;
        o.rate = 120;
        va = mk(&o);
        use_vclock(va);
        t0 = vclock_ms;
        memset(r, 0, sizeof(r));
        for (i = 0; i < N; i++)
                assert_int_equal(
                    kb_vendor_share(va, sess_a, app_b.id, 0, res_cb, &r[i]),
                    KB_OK);
        for (;;) {
                settle(va);
                kb_vendor_stats(va, &st);
                while (seen < st.started)
                        at[seen++] = vclock_ms - t0;
                if (seen == N)
                        break;
                assert_true(++steps < 1000);
                vclock_ms += 10;
        }
        settle(va);
        for (i = 0; i < N; i++) {
                double due = i < 2 ? 0 : (i - 1) * gap;
                if (at[i] < due - 1 || at[i] > due + 11)
                        fail_msg("write %d started at +%lld ms, due +%.0f", i,
                                 (long long)at[i], due);
                assert_int_equal(r[i].called, 1);
                assert_int_equal(r[i].status, 201);
        }
        kb_vendor_stats(va, &st);
        /* the head waited from its predecessor's start to its own */
        assert_true(st.paced_ms >= (uint64_t)((N - 2) * gap) - 20);
        assert_true(st.paced_ms <= (uint64_t)((N - 1) * gap) + 20);
        assert_int_equal(st.http_429, 0);
        assert_int_equal(st.started, N);
        fprintf(stderr, "# %d writes at 120/min: last at +%lld ms virtual\n", N,
                (long long)at[N - 1]);
        kb_vendor_destroy(va);
}

static void test_timeouts_are_retried(void **state)
{
        vopts_t o;
        kb_vendor_t *va;
        kb_vendor_stats_t st;
        res_t r;

        (void)state;
        memset(&o, 0, sizeof(o));
        o.key = app_a.key;
        o.timeout_ms = 500;
        va = mk(&o);
        put_fault(share_path, 2000, 0.0, 0);
        memset(&r, 0, sizeof(r));
        assert_int_equal(
            kb_vendor_share(va, sess_a, app_b.id, ++ttl_seq, res_cb, &r),
            KB_OK);
        POLL_UNTIL(va, (kb_vendor_stats(va, &st), st.timeouts >= 1), 20000);
        assert_int_equal(st.timeouts, 1);
        assert_int_equal(r.called, 0);
        assert_int_equal(kbt_faults_clear(&sb), 200);
        wait_all(va);
        assert_int_equal(r.status, 201);
        assert_true(r.attempts >= 2);
        kb_vendor_stats(va, &st);
        assert_int_equal(st.retried, (uint64_t)r.attempts - 1);
        kb_vendor_destroy(va);
}

static void test_destroy_completes_pending(void **state)
{
        vopts_t o;
        kb_vendor_t *va;
        kb_vendor_stats_t st;
        char dpath[128];
        res_t d, r[5];
        int i;

        (void)state;
        memset(&o, 0, sizeof(o));
        o.key = app_a.key;
        o.max_in_flight = 3;
        o.backoff_ms = 5000;
        o.backoff_max_ms = 5000;
        va = mk(&o);
        snprintf(dpath, sizeof(dpath), "/v3/session/%s/decision/", sess_a);
        put_fault(dpath, 0, 1.0, 503);
        put_fault(share_path, 3000, 0.0, 0);
        memset(&d, 0, sizeof(d));
        memset(r, 0, sizeof(r));
        assert_int_equal(kb_vendor_decision(va, sess_a, res_cb, &d), KB_OK);
        for (i = 0; i < 5; i++)
                assert_int_equal(
                    kb_vendor_share(va, sess_a, app_b.id, 0, res_cb, &r[i]),
                    KB_OK);
        assert_int_equal(kb_vendor_has_capacity(va), 0);
        POLL_UNTIL(va, (kb_vendor_stats(va, &st), st.http_5xx >= 1), 3000);
        /* One op backing off, three in flight, two queued. */
        assert_int_equal(st.backoff, 1);
        assert_int_equal(st.in_flight, 3);
        assert_int_equal(st.queued, 2);
        assert_int_equal(kb_vendor_pending(va), 6);
        /* A one-shot caller's wait gives up without losing anything. */
        assert_int_equal(kb_vendor_wait(va, 50), KB_ERR_TIMEOUT);
        assert_int_equal(kb_vendor_pending(va), 6);
        kb_vendor_destroy(va);
        assert_int_equal(d.called, 1);
        assert_int_equal(d.err, KB_ERR_STATE);
        assert_int_equal(d.attempts, 1);
        for (i = 0; i < 5; i++) {
                assert_int_equal(r[i].called, 1);
                assert_int_equal(r[i].err, KB_ERR_STATE);
                assert_int_equal(r[i].status, 0);
        }
}

/* Every configuration problem says so in *err (processor.c tells a
 * configuration error, exit 2, from a runtime failure by it). */
static void test_config_errors(void **state)
{
        kb_conf_t *conf = kb_conf_new();
        kb_vendor_t *v;
        char err[256];
        int code = 0;

        (void)state;
        assert_non_null(conf);
        conf_set(conf, "vendor.url", sb.url);
        assert_null(kb_vendor_new(conf, &code, err, sizeof(err)));
        assert_non_null(strstr(err, "vendor.api_key"));
        assert_int_equal(code, KB_ERR_CONFIG);
        unsetenv("KBT_NO_SUCH_VAR");
        conf_set(conf, "vendor.api_key", "env:KBT_NO_SUCH_VAR");
        code = 0;
        assert_null(kb_vendor_new(conf, &code, err, sizeof(err)));
        assert_non_null(strstr(err, "KBT_NO_SUCH_VAR"));
        assert_int_equal(code, KB_ERR_CONFIG);
        setenv("KBT_VENDOR_KEY", "k", 1);
        conf_set(conf, "vendor.api_key", "env:KBT_VENDOR_KEY");
        conf_set(conf, "vendor.retry_backoff_ms", "5000");
        conf_set(conf, "vendor.retry_backoff_max_ms", "1000");
        code = 0;
        assert_null(kb_vendor_new(conf, &code, err, sizeof(err)));
        assert_non_null(strstr(err, "retry_backoff_max_ms"));
        assert_int_equal(code, KB_ERR_CONFIG);
        /* found by kb_http_new(): still the configuration */
        conf_set(conf, "vendor.retry_backoff_max_ms", "10000");
        setenv("KBT_VENDOR_KEY", "k with spaces", 1);
        code = 0;
        assert_null(kb_vendor_new(conf, &code, err, sizeof(err)));
        assert_non_null(strstr(err, "whitespace"));
        assert_int_equal(code, KB_ERR_CONFIG);
        /* and NULL is fine where the caller does not care */
        assert_null(kb_vendor_new(conf, NULL, err, sizeof(err)));
        setenv("KBT_VENDOR_KEY", "k", 1);
        code = -1;
        v = kb_vendor_new(conf, &code, err, sizeof(err));
        assert_non_null(v);
        assert_int_equal(code, KB_OK);
        kb_vendor_destroy(v);
        kb_conf_destroy(conf);
}

/*
 * A stand-in vendor that keeps what it saw: for each request, its
 * traceparent header (or none). Its answers follow a script, one letter a
 * request: 'c' closes the connection without an answer, '5' answers 503,
 * anything else (and past the script) 200 with "{}".
 */
#define CAP_MAX 16

typedef struct cap_s {
        int fd;
        char url[64];
        char script[CAP_MAX + 1];
        atomic_int n; /* requests seen */
        char trace[CAP_MAX][300];
        int has_trace[CAP_MAX];
        atomic_int stop;
        pthread_t thr;
} cap_t;

static void cap_write(int c, const char *s)
{
        size_t off = 0, len = strlen(s);

        while (off < len) {
                ssize_t n = write(c, s + off, len - off);
                if (n <= 0)
                        return;
                off += (size_t)n;
        }
}

static void *cap_main(void *arg)
{
        cap_t *s = arg;

        while (!atomic_load(&s->stop)) {
                struct pollfd pfd = { s->fd, POLLIN, 0 };
                char buf[8192], *end = NULL, *h;
                size_t len = 0;
                int c, i;

                if (poll(&pfd, 1, 50) <= 0)
                        continue;
                c = accept(s->fd, NULL, NULL);
                if (c < 0)
                        continue;
                while (!end && len + 1 < sizeof(buf)) {
                        ssize_t n = read(c, buf + len, sizeof(buf) - 1 - len);
                        if (n <= 0)
                                break;
                        len += (size_t)n;
                        buf[len] = '\0';
                        end = strstr(buf, "\r\n\r\n");
                }
                i = atomic_load(&s->n);
                if (!end || i >= CAP_MAX) {
                        close(c);
                        continue;
                }
                /* the body is small and arrived with the headers (or is
                 * ignored: we close the connection after answering) */
                *end = '\0';
                for (h = buf; (h = strstr(h, "\r\n")); h += 2)
                        if (!strncasecmp(h + 2, "traceparent:", 12)) {
                                char *v = h + 14, *e = strstr(v, "\r\n");
                                size_t vl = e ? (size_t)(e - v) : strlen(v);
                                while (*v == ' ')
                                        v++, vl--;
                                if (vl >= sizeof(s->trace[i]))
                                        vl = sizeof(s->trace[i]) - 1;
                                memcpy(s->trace[i], v, vl);
                                s->trace[i][vl] = '\0';
                                s->has_trace[i]++;
                        }
                /* counted before the answer: the client may check the
                 * count as soon as it has read it */
                atomic_store(&s->n, i + 1);
                if (s->script[i] == 'c') {
                        /* no answer at all: a transport failure */
                } else if (s->script[i] == '5') {
                        cap_write(c,
                                  "HTTP/1.1 503 Busy\r\nContent-Length: 2\r\n"
                                  "Connection: close\r\n\r\n{}");
                } else {
                        cap_write(c, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n"
                                     "Content-Type: application/json\r\n"
                                     "Connection: close\r\n\r\n{}");
                }
                close(c);
        }
        return NULL;
}

static void cap_start(cap_t *s, const char *script)
{
        struct sockaddr_in a;
        socklen_t alen = sizeof(a);

        memset(s, 0, sizeof(*s));
        kb_strlcpy(s->script, script, sizeof(s->script));
        s->fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        assert_true(s->fd >= 0);
        memset(&a, 0, sizeof(a));
        a.sin_family = AF_INET;
        a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        assert_int_equal(bind(s->fd, (struct sockaddr *)&a, sizeof(a)), 0);
        assert_int_equal(listen(s->fd, 16), 0);
        assert_int_equal(getsockname(s->fd, (struct sockaddr *)&a, &alen), 0);
        snprintf(s->url, sizeof(s->url), "http://127.0.0.1:%d",
                 ntohs(a.sin_port));
        assert_int_equal(pthread_create(&s->thr, NULL, cap_main, s), 0);
}

static void cap_stop(cap_t *s)
{
        atomic_store(&s->stop, 1);
        pthread_join(s->thr, NULL);
        close(s->fd);
}

static kb_vendor_t *mk_cap(const cap_t *c)
{
        vopts_t o;

        memset(&o, 0, sizeof(o));
        o.url = c->url;
        o.key = "k";
        o.backoff_ms = 10;
        o.backoff_max_ms = 100;
        return mk(&o);
}

#define TP1 "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
#define TP2 "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-00"

/* kb_vendor_set_trace(): the header goes with every attempt (retries
 * too) of the operations submitted after the call, as it was at their
 * submission; after NULL (or an unusable value) none is sent. */
static void test_trace_header(void **state)
{
        kb_vendor_t *v;
        res_t r1, r2, r3, r4;
        cap_t c;
        FILE *logf;
        char logbuf[4096];

        (void)state;
        /* the vendor's own lines about an attempt carry its trace id */
        logf = tmpfile();
        assert_non_null(logf);
        kb_log_setup(KB_LOG_NOTICE, 0, fileno(logf), "test");
        /* op1: 503 then 200; op2: 200; op3 (NULL): 200; op4 (bad): 200 */
        cap_start(&c, "5ooo");
        v = mk_cap(&c);
        memset(&r1, 0, sizeof(r1));
        memset(&r2, 0, sizeof(r2));
        memset(&r3, 0, sizeof(r3));
        memset(&r4, 0, sizeof(r4));
        kb_vendor_set_trace(v, TP1);
        assert_int_equal(kb_vendor_share(v, sess_a, app_b.id, 0, res_cb, &r1),
                         KB_OK);
        /* a later call changes later operations only */
        kb_vendor_set_trace(v, TP2);
        wait_all(v);
        assert_int_equal(r1.called, 1);
        assert_int_equal(r1.status, 200);
        assert_int_equal(r1.attempts, 2);
        kb_log_setup(KB_LOG_INFO, 0, 2, "test");
        memset(logbuf, 0, sizeof(logbuf));
        rewind(logf);
        assert_true(fread(logbuf, 1, sizeof(logbuf) - 1, logf) > 0);
        fclose(logf);
        assert_non_null(strstr(logbuf, "retrying"));
        assert_non_null(
            strstr(logbuf, " trace_id=4bf92f3577b34da6a3ce929d0e0e4736\n"));
        assert_string_equal(kb_log_trace(), ""); /* restored */
        /* the callback ran with the operation's trace id */
        assert_string_equal(r1.trace_id, "4bf92f3577b34da6a3ce929d0e0e4736");
        assert_int_equal(kb_vendor_decision(v, sess_a, res_cb, &r2), KB_OK);
        wait_all(v);
        kb_vendor_set_trace(v, NULL);
        assert_int_equal(kb_vendor_workflow(v, wf_a, res_cb, &r3), KB_OK);
        wait_all(v);
        kb_vendor_set_trace(v, TP1);
        kb_vendor_set_trace(v, "00-abc\r\nX-Injected: 1");
        assert_int_equal(kb_vendor_list_sessions(v, NULL, 0, 0, res_cb, &r4),
                         KB_OK);
        wait_all(v);
        assert_int_equal(r4.status, 200);
        assert_string_equal(r2.trace_id, "0af7651916cd43dd8448eb211c80319c");
        assert_string_equal(r3.trace_id, ""); /* an operation without one */
        assert_string_equal(kb_log_trace(), "");
        assert_int_equal(atomic_load(&c.n), 5);
        assert_int_equal(c.has_trace[0], 1);
        assert_string_equal(c.trace[0], TP1);
        assert_int_equal(c.has_trace[1], 1); /* the retry */
        assert_string_equal(c.trace[1], TP1);
        assert_int_equal(c.has_trace[2], 1);
        assert_string_equal(c.trace[2], TP2);
        assert_int_equal(c.has_trace[3], 0);
        assert_int_equal(c.has_trace[4], 0);
        kb_vendor_destroy(v);
        cap_stop(&c);
}

typedef struct obs_s {
        int n;
        char endpoint[8][32];
        int status[8];
        int64_t latency_us[8];
} obs_t;

static void obs_cb(void *opaque, const char *endpoint, int status,
                   int64_t latency_us)
{
        obs_t *o = opaque;

        if (o->n < 8) {
                kb_strlcpy(o->endpoint[o->n], endpoint, sizeof(o->endpoint[0]));
                o->status[o->n] = status;
                o->latency_us[o->n] = latency_us;
        }
        o->n++;
}

/* kb_vendor_set_observer(): once per finished attempt, with the fixed
 * endpoint name, the status (0: no answer) and the attempt's latency. */
static void test_observer(void **state)
{
        static const char *const names[] = { "share",         "share",
                                             "share",         "import",
                                             "list_sessions", "decision",
                                             "workflow" };
        static const int statuses[] = { 0, 503, 200, 200, 200, 200, 200 };
        kb_vendor_t *v;
        res_t r;
        obs_t o;
        cap_t c;
        size_t i;

        (void)state;
        cap_start(&c, "c5o");
        v = mk_cap(&c);
        memset(&o, 0, sizeof(o));
        kb_vendor_set_observer(v, obs_cb, &o);
        memset(&r, 0, sizeof(r));
        assert_int_equal(kb_vendor_share(v, sess_a, app_b.id, 0, res_cb, &r),
                         KB_OK);
        wait_all(v);
        assert_int_equal(r.attempts, 3);
        assert_int_equal(
            kb_vendor_import(v, "tok", 3, wf_b, NULL, 0, res_cb, &r), KB_OK);
        wait_all(v);
        assert_int_equal(kb_vendor_list_sessions(v, NULL, 0, 0, res_cb, &r),
                         KB_OK);
        wait_all(v);
        assert_int_equal(kb_vendor_decision(v, sess_a, res_cb, &r), KB_OK);
        wait_all(v);
        assert_int_equal(kb_vendor_workflow(v, wf_a, res_cb, &r), KB_OK);
        wait_all(v);
        assert_int_equal(o.n, (int)KB_ARRAY_SIZE(names));
        for (i = 0; i < KB_ARRAY_SIZE(names); i++) {
                assert_string_equal(o.endpoint[i], names[i]);
                assert_int_equal(o.status[i], statuses[i]);
                assert_true(o.latency_us[i] > 0);
        }
        /* cleared: no more calls */
        kb_vendor_set_observer(v, NULL, NULL);
        assert_int_equal(kb_vendor_decision(v, sess_a, res_cb, &r), KB_OK);
        wait_all(v);
        assert_int_equal(o.n, (int)KB_ARRAY_SIZE(names));
        kb_vendor_destroy(v);
        cap_stop(&c);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test_setup(test_share_import_list_decision,
                                       clear_faults),
                cmocka_unit_test_setup(test_final_errors, clear_faults),
                cmocka_unit_test_setup(test_workflow, clear_faults),
                cmocka_unit_test_setup(test_retry_5xx_until_cleared,
                                       clear_faults),
                cmocka_unit_test_setup(test_429_pauses_everything,
                                       clear_faults),
                cmocka_unit_test(test_huge_retry_after),
                cmocka_unit_test_setup(test_import_refuses_non_utf8_token,
                                       clear_faults),
                cmocka_unit_test_setup(test_concurrency_is_real, clear_faults),
                cmocka_unit_test_setup(test_write_pacing, clear_faults),
                cmocka_unit_test_setup(test_timeouts_are_retried, clear_faults),
                cmocka_unit_test_setup(test_destroy_completes_pending,
                                       clear_faults),
                cmocka_unit_test(test_config_errors),
                cmocka_unit_test(test_trace_header),
                cmocka_unit_test(test_observer),
        };

        return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
