/* test_http.c -- unit tests of the async HTTP engine against the real sandbox
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <errno.h>

#include "http.h"
#include "kb_test_rawhttp.h"
#include "kb_test_sandbox.h"
#include "kyc_bridge.h"
#include "util.h"

static kbt_sandbox_t sb;
static kbt_app_t app;

/* One finished request, copied out of the callback. */
typedef struct got_s {
        int called;
        int err, retryable, status;
        int64_t retry_after_s, rl_limit, rl_remaining, rl_reset;
        int64_t latency_us;
        long new_connections;
        char body[4096];
        size_t body_len;
        char errtext[160];
} got_t;

static void got_cb(const kb_http_resp_t *r, void *opaque)
{
        got_t *g = opaque;

        g->called++;
        g->err = r->err;
        g->retryable = r->retryable;
        g->status = r->status;
        g->retry_after_s = r->retry_after_s;
        g->rl_limit = r->rl_limit;
        g->rl_remaining = r->rl_remaining;
        g->rl_reset = r->rl_reset;
        g->latency_us = r->latency_us;
        g->new_connections = r->new_connections;
        g->body_len = r->body_len;
        kb_strlcpy(g->body, r->body, sizeof(g->body));
        kb_strlcpy(g->errtext, r->errtext, sizeof(g->errtext));
}

static kb_http_t *mk(const char *url, const char *key, long timeout_ms,
                     int max_conns, size_t max_body)
{
        kb_http_conf_t hc;
        char err[256] = "";
        kb_http_t *h;

        memset(&hc, 0, sizeof(hc));
        hc.base_url = url;
        hc.api_key = key;
        hc.api_key_len = key ? strlen(key) : 0;
        hc.timeout_ms = timeout_ms;
        hc.connect_timeout_ms = 2000;
        hc.max_connections = max_conns;
        hc.max_body = max_body;
        h = kb_http_new(&hc, err, sizeof(err));
        if (!h)
                fprintf(stderr, "kb_http_new: %s\n", err);
        return h;
}

/* Polls until @p n callbacks ran in total or 10 s passed. */
static void run_until(kb_http_t *h, int *counter, int n)
{
        int64_t end = kb_mono_ms() + 10000;

        while (*counter < n && kb_mono_ms() < end)
                assert_true(kb_http_poll(h, 100) >= 0);
        assert_int_equal(*counter, n);
}

/* One request, run to completion. */
static void one(kb_http_t *h, const char *method, const char *path,
                const char *body, got_t *g)
{
        memset(g, 0, sizeof(*g));
        assert_int_equal(kb_http_submit(h, method, path, body,
                                        body ? strlen(body) : 0, got_cb, g),
                         KB_OK);
        run_until(h, &g->called, 1);
}

static int group_setup(void **state)
{
        (void)state;
        if (kb_init() != KB_OK || kbt_sandbox_start(&sb, 4242) != 0)
                return -1;
        if (kbt_new_app(&sb, "http-test", &app) != 0)
                return -1;
        /* Unlimited budgets: these tests are about the engine. */
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

static int clear_faults(void **state)
{
        (void)state;
        return kbt_faults_clear(&sb) == 200 ? 0 : -1;
}

static void test_get_and_keepalive(void **state)
{
        kb_http_t *h = mk(sb.url, NULL, 5000, 4, 0);
        got_t g;
        uint64_t done, conns;
        int i;

        (void)state;
        assert_non_null(h);
        one(h, "GET", "/sandbox/applications", NULL, &g);
        assert_int_equal(g.err, KB_OK);
        assert_int_equal(g.status, 200);
        assert_true(g.body_len > 0);
        assert_non_null(strstr(g.body, app.id));
        assert_int_equal(g.new_connections, 1);
        assert_true(g.latency_us > 0);
        /* Sequential requests reuse the kept-alive connection. */
        for (i = 0; i < 5; i++) {
                one(h, "GET", "/sandbox/applications", NULL, &g);
                assert_int_equal(g.status, 200);
                assert_int_equal(g.new_connections, 0);
        }
        kb_http_counters(h, &done, &conns);
        assert_int_equal(done, 6);
        assert_int_equal(conns, 1);
        kb_http_destroy(h);
}

/* A proxy from the environment is not used for plain http: the request
 * goes straight to the (loopback) host of the URL, not in clear to the
 * proxy (an address where nothing listens: used, the call would fail). */
static void test_plain_http_ignores_proxy(void **state)
{
        static const char *const vars[] = { "http_proxy", "HTTP_PROXY",
                                            "ALL_PROXY", "all_proxy" };
        kb_http_t *h;
        got_t g;
        size_t i;

        (void)state;
        for (i = 0; i < sizeof(vars) / sizeof(vars[0]); i++)
                setenv(vars[i], "http://127.0.0.1:9", 1);
        unsetenv("no_proxy");
        unsetenv("NO_PROXY");
        h = mk(sb.url, NULL, 5000, 4, 0);
        assert_non_null(h);
        one(h, "GET", "/sandbox/applications", NULL, &g);
        for (i = 0; i < sizeof(vars) / sizeof(vars[0]); i++)
                unsetenv(vars[i]);
        assert_int_equal(g.err, KB_OK);
        assert_int_equal(g.status, 200);
        kb_http_destroy(h);
}

static void test_post_with_key_and_ratelimit_headers(void **state)
{
        kb_http_t *h = mk(sb.url, app.key, 5000, 4, 0);
        json_object *o;
        got_t g;

        (void)state;
        assert_non_null(h);
        one(h, "POST", "/v3/workflows/",
            "{\"workflow_label\":\"w\",\"workflow_type\":\"kyc\"}", &g);
        assert_int_equal(g.err, KB_OK);
        assert_int_equal(g.status, 201);
        o = json_tokener_parse(g.body);
        assert_non_null(o);
        assert_non_null(json_object_object_get(o, "uuid"));
        json_object_put(o);
        /* Every vendor response carries the rate-limit headers. */
        assert_true(g.rl_limit > 0);
        assert_true(g.rl_remaining >= 0);
        assert_true(g.rl_reset > 0);
        assert_int_equal(g.retry_after_s, -1);

        one(h, "GET", "/v3/workflows/", NULL, &g);
        assert_int_equal(g.status, 200);
        kb_http_destroy(h);
}

static void test_error_statuses(void **state)
{
        kb_http_t *h = mk(sb.url, app.key, 5000, 4, 0);
        kb_http_t *bad = mk(sb.url, "no-such-key", 5000, 4, 0);
        got_t g;

        (void)state;
        assert_non_null(h);
        assert_non_null(bad);
        one(h, "GET", "/v3/no-such-route/", NULL, &g);
        assert_int_equal(g.err, KB_OK); /* an answer is not a failure here */
        assert_int_equal(g.status, 404);
        assert_non_null(strstr(g.body, "detail"));
        one(h, "DELETE", "/v3/session/import-shared/", NULL, &g);
        assert_int_equal(g.status, 405);
        one(bad, "GET", "/v3/workflows/", NULL, &g);
        assert_int_equal(g.status, 401);
        assert_non_null(strstr(g.body, "detail"));
        kb_http_destroy(bad);
        kb_http_destroy(h);
}

static void test_retry_after_on_429(void **state)
{
        kb_http_t *h = mk(sb.url, app.key, 5000, 4, 0);
        got_t g;

        (void)state;
        assert_non_null(h);
        assert_int_equal(kbt_faults_put(&sb, "{\"path\":\"/v3/workflows/\","
                                             "\"error_rate\":1.0,"
                                             "\"error_status\":429}"),
                         200);
        one(h, "GET", "/v3/workflows/", NULL, &g);
        assert_int_equal(g.status, 429);
        assert_true(g.retry_after_s >= 1);
        assert_true(g.retry_after_s <= 3600);
        kb_http_destroy(h);
}

static void test_timeout(void **state)
{
        kb_http_t *h = mk(sb.url, app.key, 200, 4, 0);
        got_t g;

        (void)state;
        assert_non_null(h);
        assert_int_equal(kbt_faults_put(&sb, "{\"path\":\"/v3/workflows/\","
                                             "\"latency_ms\":5000,"
                                             "\"error_rate\":0}"),
                         200);
        one(h, "GET", "/v3/workflows/", NULL, &g);
        assert_int_equal(g.err, KB_ERR_TIMEOUT);
        assert_int_equal(g.retryable, 1);
        assert_int_equal(g.status, 0);
        /* the 200 ms timeout, not the 5 s answer (wide: a loaded machine
         * or ASan may be late to notice) */
        assert_true(g.latency_us >= 190000);
        assert_true(g.latency_us < 4000000);
        assert_true(g.errtext[0] != '\0');
        kb_http_destroy(h);
}

static void test_connection_refused(void **state)
{
        /* Port 1 on loopback: nothing listens there. */
        kb_http_t *h = mk("http://127.0.0.1:1", NULL, 2000, 1, 0);
        got_t g;

        (void)state;
        assert_non_null(h);
        one(h, "GET", "/", NULL, &g);
        assert_int_equal(g.err, KB_ERR_HTTP);
        assert_int_equal(g.retryable, 1);
        assert_int_equal(g.status, 0);
        kb_http_destroy(h);
}

static void test_body_cap(void **state)
{
        kb_http_t *h = mk(sb.url, NULL, 5000, 1, 64);
        got_t g;

        (void)state;
        assert_non_null(h);
        one(h, "GET", "/sandbox/applications", NULL, &g);
        assert_int_equal(g.err, KB_ERR_TOO_LARGE);
        assert_int_equal(g.retryable, 0);
        assert_int_equal(g.body_len, 0);
        kb_http_destroy(h);
}

static void test_parse_retry_after(void **state)
{
        /* curl_getdate("Wed, 21 Oct 2026 07:28:00 GMT") */
        const int64_t t = 1792567680;

        (void)state;
        assert_int_equal(kb_http_parse_retry_after("120", 0), 120);
        assert_int_equal(kb_http_parse_retry_after("0", 0), 0);
        assert_int_equal(
            kb_http_parse_retry_after("Wed, 21 Oct 2026 07:28:00 GMT", t - 30),
            30);
        assert_int_equal(
            kb_http_parse_retry_after("Wed, 21 Oct 2026 07:28:00 GMT", t + 30),
            0);
        /* a huge number is clamped to 24 h before anyone multiplies it */
        assert_int_equal(kb_http_parse_retry_after("86400", 0), 86400);
        assert_int_equal(kb_http_parse_retry_after("86401", 0), 86400);
        assert_int_equal(kb_http_parse_retry_after("23058430092169390", 0),
                         KB_HTTP_RETRY_AFTER_MAX_S);
        assert_int_equal(kb_http_parse_retry_after("9300000000000000", 0),
                         86400);
        assert_int_equal(
            kb_http_parse_retry_after("99999999999999999999999999999", 0),
            86400);
        assert_int_equal(
            kb_http_parse_retry_after("Wed, 21 Oct 2026 07:28:00 GMT", 0),
            86400);
        assert_int_equal(kb_http_parse_retry_after("12x", 0), -1);
        assert_int_equal(kb_http_parse_retry_after(NULL, 0), -1);
        assert_int_equal(kb_http_parse_retry_after("soon", 0), -1);
        assert_int_equal(kb_http_parse_retry_after("-5", 0), -1);
        assert_int_equal(kb_http_parse_retry_after("", 0), -1);
}

static void test_new_rejects(void **state)
{
        kb_http_conf_t hc;
        char err[128];

        (void)state;
        memset(&hc, 0, sizeof(hc));
        hc.base_url = "ftp://127.0.0.1/";
        hc.max_connections = 1;
        assert_null(kb_http_new(&hc, err, sizeof(err)));
        assert_non_null(strstr(err, "http"));
        hc.base_url = "http://127.0.0.1:1";
        hc.api_key = "abc\r\nx-evil: 1";
        hc.api_key_len = strlen(hc.api_key);
        assert_null(kb_http_new(&hc, err, sizeof(err)));
        assert_non_null(strstr(err, "API key"));
        hc.api_key = NULL;
        hc.max_connections = 0;
        assert_null(kb_http_new(&hc, err, sizeof(err)));
        hc.max_connections = 1;
        assert_int_equal(
            kb_http_submit(NULL, "GET", "/", NULL, 0, got_cb, NULL),
            KB_ERR_INVALID_ARG);
}

/* Which URLs would carry the API key unencrypted to another machine:
 * libcurl's parser decides what the host is. */
static void test_url_insecure(void **state)
{
        static const struct {
                const char *url;
                int want;
                const char *host; /* for want 1 */
        } v[] = {
                { "http://127.0.0.1:8480", 0, NULL },
                { "http://127.9.9.9/prefix/", 0, NULL },
                { "http://localhost:1/x", 0, NULL },
                { "http://LOCALHOST", 0, NULL },
                { "http://[::1]:8480", 0, NULL },
                { "http://[::ffff:127.0.0.1]/", 0, NULL },
                { "http://user:pw@127.0.0.1:8480/", 0, NULL },
                { "https://vendor.example.com", 0, NULL },
                { "https://10.0.0.1:443/v", 0, NULL },
                { "http://sandbox:8480", 1, "sandbox" },
                { "http://10.0.0.1", 1, "10.0.0.1" },
                { "HTTP://vendor.example.com/", 1, "vendor.example.com" },
                { "http://127.0.0.1@evil.example/", 1, "evil.example" },
                { "http://127.0.0.1.evil.example/", 1,
                  "127.0.0.1.evil.example" },
                { "http://localhost.evil.example:80", 1,
                  "localhost.evil.example" },
                { "http://0.0.0.0:8480", 1, "0.0.0.0" },
                { "http://[::2]/", 1, "[::2]" },
                { "http://[2001:db8::1]:8480", 1, "[2001:db8::1]" },
                { "ftp://127.0.0.1/", -1, NULL },
                { "http://", -1, NULL },
                { "127.0.0.1:8480", -1, NULL },
                { "", -1, NULL },
        };
        char host[256];
        size_t i;

        (void)state;
        for (i = 0; i < KB_ARRAY_SIZE(v); i++) {
                int r = kb_http_url_insecure(v[i].url, host, sizeof(host));
                if (r != v[i].want || (r == 1 && strcmp(host, v[i].host)) ||
                    (r != 1 && host[0]))
                        fail_msg("%s: %d, host \"%s\"", v[i].url, r, host);
        }
        assert_int_equal(kb_http_url_insecure(NULL, host, sizeof(host)), -1);
}

static void test_new_refuses_plain_remote(void **state)
{
        static const char *const refused[] = {
                "http://sandbox:8480",
                "http://vendor.example.com/api",
                "http://127.0.0.1@vendor.example.com/",
                "http://192.168.1.10:8480",
        };
        static const char *const fine[] = {
                "http://127.0.0.1:8480",
                "http://localhost:8480",
                "http://[::1]:8480",
                "https://vendor.example.com",
        };
        kb_http_conf_t hc;
        kb_http_t *h;
        char err[512];
        size_t i;

        (void)state;
        memset(&hc, 0, sizeof(hc));
        hc.max_connections = 1;
        hc.api_key = "k";
        hc.api_key_len = 1;
        for (i = 0; i < KB_ARRAY_SIZE(refused); i++) {
                hc.base_url = refused[i];
                hc.allow_insecure_http = 0;
                err[0] = '\0';
                errno = 0;
                assert_null(kb_http_new(&hc, err, sizeof(err)));
                assert_int_equal(errno, EINVAL);
                assert_non_null(strstr(err, "refusing plain http://"));
                assert_non_null(strstr(err, "not a loopback address"));
                /* the host, never the whole URL (it may hold a password) */
                assert_null(strstr(err, refused[i]));
                /* the caller may allow it */
                hc.allow_insecure_http = 1;
                h = kb_http_new(&hc, err, sizeof(err));
                if (!h)
                        fail_msg("%s allowed: %s", refused[i], err);
                kb_http_destroy(h);
        }
        hc.allow_insecure_http = 0;
        for (i = 0; i < KB_ARRAY_SIZE(fine); i++) {
                hc.base_url = fine[i];
                h = kb_http_new(&hc, err, sizeof(err));
                if (!h)
                        fail_msg("%s: %s", fine[i], err);
                kb_http_destroy(h);
        }
        hc.base_url = "http://[::1";
        assert_null(kb_http_new(&hc, err, sizeof(err)));
        assert_int_equal(errno, EINVAL);
}

/* A 3xx is the answer: the engine follows no Location, to another server
 * (which would get the API key) or to its own. */
static void test_no_redirect(void **state)
{
        static const int codes[] = { 301, 302, 303, 307, 308 };
        kbt_raw_t from, to;
        size_t i, k;

        (void)state;
        assert_int_equal(kbt_raw_start(&to, "HTTP/1.1 200 OK\r\n"
                                            "Content-Length: 2\r\n"
                                            "Connection: close\r\n\r\n{}"),
                         0);
        assert_int_equal(kbt_raw_start(&from, ""), 0);
        for (i = 0; i < KB_ARRAY_SIZE(codes); i++) {
                for (k = 0; k < 2; k++) {
                        char resp[512];
                        kb_http_t *h = mk(from.url, "k", 5000, 1, 0);
                        got_t g;
                        int64_t end;
                        int before = atomic_load(&from.requests);

                        assert_non_null(h);
                        /* elsewhere, then back to the same server */
                        snprintf(resp, sizeof(resp),
                                 "HTTP/1.1 %d Moved\r\n"
                                 "Location: %s/v3/elsewhere/\r\n"
                                 "Content-Length: 9\r\n"
                                 "Connection: close\r\n\r\nredirect!",
                                 codes[i], k == 0 ? to.url : "");
                        kbt_raw_set(&from, resp);
                        one(h, "POST", "/v3/workflows/", "{}", &g);
                        assert_int_equal(g.err, KB_OK);
                        assert_int_equal(g.status, codes[i]);
                        assert_string_equal(g.body, "redirect!");
                        /* the server counts after it answered: wait for
                         * it, then give a follow-up request time to come */
                        end = kb_mono_ms() + 5000;
                        while (atomic_load(&from.requests) == before &&
                               kb_mono_ms() < end)
                                usleep(5000);
                        usleep(100000);
                        assert_int_equal(atomic_load(&from.requests),
                                         before + 1);
                        kb_http_destroy(h);
                }
        }
        assert_int_equal(atomic_load(&to.requests), 0);
        kbt_raw_stop(&from);
        kbt_raw_stop(&to);
}

/* max_body is a hard cap: exactly max_body bytes arrive, one more fails
 * the request, with or without a Content-Length. */
static void test_body_cap_edges(void **state)
{
        enum { CAP = 100 };
        static const struct {
                size_t len;
                int content_length; /* 0: close-delimited body */
                int want;
        } v[] = {
                { CAP, 1, KB_OK },
                { CAP, 0, KB_OK },
                { CAP + 1, 1, KB_ERR_TOO_LARGE },
                { CAP + 1, 0, KB_ERR_TOO_LARGE },
                { 1500, 1, KB_ERR_TOO_LARGE },
                { 1500, 0, KB_ERR_TOO_LARGE },
        };
        kbt_raw_t raw;
        size_t i;

        (void)state;
        assert_int_equal(kbt_raw_start(&raw, ""), 0);
        for (i = 0; i < KB_ARRAY_SIZE(v); i++) {
                char body[1600], resp[2048], cl[64] = "";
                kb_http_t *h = mk(raw.url, "k", 5000, 1, CAP);
                got_t g;

                assert_non_null(h);
                memset(body, 'x', v[i].len);
                body[v[i].len] = '\0';
                if (v[i].content_length)
                        snprintf(cl, sizeof(cl), "Content-Length: %zu\r\n",
                                 v[i].len);
                snprintf(resp, sizeof(resp),
                         "HTTP/1.1 200 OK\r\n%sConnection: close\r\n\r\n%s", cl,
                         body);
                kbt_raw_set(&raw, resp);
                one(h, "GET", "/v3/workflows/", NULL, &g);
                if (g.err != v[i].want)
                        fail_msg("%zu bytes%s: err %d", v[i].len,
                                 v[i].content_length ? " (Content-Length)" : "",
                                 g.err);
                if (v[i].want == KB_OK) {
                        assert_int_equal(g.body_len, v[i].len);
                        assert_string_equal(g.body, body);
                } else {
                        assert_int_equal(g.retryable, 0);
                        assert_int_equal(g.body_len, 0);
                }
                kb_http_destroy(h);
        }
        kbt_raw_stop(&raw);
}

static void test_destroy_aborts_in_flight(void **state)
{
        kb_http_t *h = mk(sb.url, app.key, 10000, 4, 0);
        got_t g[3];
        int i;

        (void)state;
        assert_non_null(h);
        assert_int_equal(kbt_faults_put(&sb, "{\"path\":\"/v3/workflows/\","
                                             "\"latency_ms\":3000}"),
                         200);
        memset(g, 0, sizeof(g));
        for (i = 0; i < 3; i++)
                assert_int_equal(kb_http_submit(h, "GET", "/v3/workflows/",
                                                NULL, 0, got_cb, &g[i]),
                                 KB_OK);
        assert_int_equal(kb_http_in_flight(h), 3);
        assert_int_equal(kb_http_poll(h, 100), 0); /* sent, not answered */
        kb_http_destroy(h);
        for (i = 0; i < 3; i++) {
                assert_int_equal(g[i].called, 1);
                assert_int_equal(g[i].err, KB_ERR_STATE);
        }
}

static void test_concurrency(void **state)
{
        enum { N = 32 };
        kb_http_t *h = mk(sb.url, app.key, 10000, N, 0);
        got_t *g = calloc(N, sizeof(*g));
        int i, done = 0;
        int64_t t0, el, end;
        uint64_t conns;

        (void)state;
        assert_non_null(h);
        assert_non_null(g);
        assert_int_equal(kbt_faults_put(&sb, "{\"path\":\"/v3/workflows/\","
                                             "\"latency_ms\":200}"),
                         200);
        t0 = kb_mono_ms();
        for (i = 0; i < N; i++)
                assert_int_equal(kb_http_submit(h, "GET", "/v3/workflows/",
                                                NULL, 0, got_cb, &g[i]),
                                 KB_OK);
        end = t0 + 20000;
        while (done < N && kb_mono_ms() < end) {
                int r = kb_http_poll(h, 100);
                assert_true(r >= 0);
                done += r;
        }
        el = kb_mono_ms() - t0;
        assert_int_equal(done, N);
        for (i = 0; i < N; i++)
                assert_int_equal(g[i].status, 200);
        /* 32 x 200 ms one after another would be 6.4 s; concurrent, 0.2 s
         * plus overhead. Half the serial time leaves room for a loaded
         * machine or ASan and still catches serialisation. */
        assert_true(el >= 195);
        assert_true(el < 3200);
        kb_http_counters(h, NULL, &conns);
        assert_true(conns <= N);
        fprintf(stderr,
                "# %d requests with 200 ms latency in %lld ms over "
                "%llu connections\n",
                N, (long long)el, (unsigned long long)conns);
        kb_http_destroy(h);
        free(g);
}

/* Numbers in headers the sandbox would never send: Retry-After is clamped
 * to 24 h at parse, X-RateLimit-* values that do not fit are "absent". */
static void test_absurd_header_numbers(void **state)
{
        static const struct {
                const char *hdrs;
                int64_t ra, limit, remaining, reset;
        } v[] = {
                { "Retry-After: 23058430092169390\r\n", 86400, -1, -1, -1 },
                { "Retry-After: 9300000000000000\r\n", 86400, -1, -1, -1 },
                { "Retry-After: 999999999999999999999999999\r\n", 86400, -1, -1,
                  -1 },
                { "Retry-After: 7\r\n"
                  "X-RateLimit-Limit: 99999999999999999999\r\n"
                  "X-RateLimit-Remaining: -3\r\n"
                  "X-RateLimit-Reset: 1e9\r\n",
                  7, -1, -1, -1 },
                { "X-RateLimit-Limit: 300\r\n"
                  "X-RateLimit-Remaining: 0\r\n"
                  "X-RateLimit-Reset: 1796487574\r\n",
                  -1, 300, 0, 1796487574 },
        };
        kbt_raw_t raw;
        size_t i;

        (void)state;
        assert_int_equal(kbt_raw_start(&raw, ""), 0);
        for (i = 0; i < KB_ARRAY_SIZE(v); i++) {
                char resp[1024];
                kb_http_t *h = mk(raw.url, "k", 5000, 1, 0);
                got_t g;

                assert_non_null(h);
                snprintf(resp, sizeof(resp),
                         "HTTP/1.1 429 Too Many Requests\r\n%s"
                         "Content-Length: 2\r\nConnection: close\r\n\r\n{}",
                         v[i].hdrs);
                kbt_raw_set(&raw, resp);
                one(h, "GET", "/v3/workflows/", NULL, &g);
                assert_int_equal(g.err, KB_OK);
                assert_int_equal(g.status, 429);
                assert_int_equal(g.retry_after_s, v[i].ra);
                assert_int_equal(g.rl_limit, v[i].limit);
                assert_int_equal(g.rl_remaining, v[i].remaining);
                assert_int_equal(g.rl_reset, v[i].reset);
                assert_string_equal(g.body, "{}");
                kb_http_destroy(h);
        }
        kbt_raw_stop(&raw);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test_setup(test_get_and_keepalive, clear_faults),
                cmocka_unit_test_setup(test_post_with_key_and_ratelimit_headers,
                                       clear_faults),
                cmocka_unit_test_setup(test_error_statuses, clear_faults),
                cmocka_unit_test_setup(test_retry_after_on_429, clear_faults),
                cmocka_unit_test_setup(test_timeout, clear_faults),
                cmocka_unit_test_setup(test_plain_http_ignores_proxy,
                                       clear_faults),
                cmocka_unit_test(test_connection_refused),
                cmocka_unit_test_setup(test_body_cap, clear_faults),
                cmocka_unit_test(test_parse_retry_after),
                cmocka_unit_test(test_absurd_header_numbers),
                cmocka_unit_test(test_new_rejects),
                cmocka_unit_test(test_url_insecure),
                cmocka_unit_test(test_new_refuses_plain_remote),
                cmocka_unit_test(test_no_redirect),
                cmocka_unit_test(test_body_cap_edges),
                cmocka_unit_test_setup(test_destroy_aborts_in_flight,
                                       clear_faults),
                cmocka_unit_test_setup(test_concurrency, clear_faults),
        };

        return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
