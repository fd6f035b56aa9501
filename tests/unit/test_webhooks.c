/* test_webhooks.c -- the webhook intake end to end: real signed deliveries
 * over HTTP, an idempotent producer on librdkafka's mock cluster */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <arpa/inet.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>

#include "httpd.h"
#include "httpd_int.h"
#include "json.h"
#include "log.h"
#include "trace.h"
#include "util.h"
#include "webhook_sig.h"
#include "wh_int.h" /* term_wait_ms, inflight */
#include "wh_intake.h"

#define SECRET     "whsec_current_unit"
#define SECRET_OLD "whsec_previous_unit"
#define SECRET_BAD "whsec_someone_else"
#define TOPIC      "shares"
#define SESSION    "6f1c0d2e-93a4-4c55-8b1e-0a2b3c4d5e6f"
#define WORKFLOW   "0b5e7c1a-2d3f-4e5a-9b6c-7d8e9f0a1b2c"
#define BODY_MAX   4096U
#define T_WAIT_MS  60000

/* ---------------------------------------------------------------------- */
/* HTTP client */

typedef struct resp_s {
        int status;
        char head[2048];
        char body[4096];
} resp_t;

/* One request, one answer (Connection: close). 0, or -1 when there was
 * no answer (no assertion: any thread). */
static int http_try(int port, const char *req, size_t req_len, resp_t *r)
{
        struct sockaddr_in sa;
        char buf[16384];
        size_t len = 0;
        char *eoh;
        int fd = socket(AF_INET, SOCK_STREAM, 0);

        memset(r, 0, sizeof(*r));
        if (fd < 0)
                return -1;
        memset(&sa, 0, sizeof(sa));
        sa.sin_family = AF_INET;
        sa.sin_port = htons((uint16_t)port);
        sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0 ||
            write(fd, req, req_len) != (ssize_t)req_len) {
                close(fd);
                return -1;
        }
        for (;;) {
                ssize_t n = read(fd, buf + len, sizeof(buf) - 1 - len);
                if (n <= 0 || len + (size_t)n == sizeof(buf) - 1)
                        break;
                len += (size_t)n;
        }
        close(fd);
        buf[len] = '\0';
        eoh = strstr(buf, "\r\n\r\n");
        if (!eoh || sscanf(buf, "HTTP/1.1 %d", &r->status) != 1)
                return -1;
        *eoh = '\0';
        kb_strlcpy(r->head, buf, sizeof(r->head));
        kb_strlcpy(r->body, eoh + 4, sizeof(r->body));
        return 0;
}

static void http_raw(int port, const char *req, size_t req_len, resp_t *r)
{
        assert_int_equal(http_try(port, req, req_len, r), 0);
}

/* The request, with @p extra header lines ("Name: value\r\n"..., may be
 * NULL); 0, or -1 on ENOMEM. */
static int post_req(kb_buf_t *req, const char *body, size_t len, const char *ts,
                    const char *v2, const char *simple, const char *extra)
{
        kb_buf_printf(req,
                      "POST /webhooks/vendor HTTP/1.1\r\nHost: x\r\n"
                      "Connection: close\r\nContent-Type: application/json\r\n"
                      "Content-Length: %zu\r\n",
                      len);
        if (ts)
                kb_buf_printf(req, "X-Timestamp: %s\r\n", ts);
        if (v2)
                kb_buf_printf(req, "X-Signature-V2: %s\r\n", v2);
        if (simple)
                kb_buf_printf(req, "X-Signature-Simple: %s\r\n", simple);
        if (extra)
                kb_buf_puts(req, extra);
        kb_buf_puts(req, "\r\n");
        return kb_buf_append(req, body, len) ? -1 : 0;
}

/* POSTs @p body with the given headers (NULL: left out). */
static void post(int port, const char *body, size_t len, const char *ts,
                 const char *v2, const char *simple, resp_t *r)
{
        kb_buf_t req = KB_BUF_INIT;

        assert_int_equal(post_req(&req, body, len, ts, v2, simple, NULL), 0);
        http_raw(port, req.data, req.len, r);
        kb_buf_free(&req, 0);
}

/* ---------------------------------------------------------------------- */
/* Signed deliveries, as the vendor (and the sandbox) build them */

typedef struct dlv_s {
        char body[2048];
        char ts[24];
        char v2[KB_WEBHOOK_SIG_HEX_BYTES];
        char simple[KB_WEBHOOK_SIG_HEX_BYTES];
} dlv_t;

static void make(dlv_t *d, const char *secret, int64_t ts, const char *session,
                 const char *status, const char *type)
{
        json_object *o = json_object_new_object(), *dec;

        dec = json_object_new_object();
        assert_int_equal(kb_json_add_str(dec, "workflow_id", WORKFLOW), 0);
        assert_int_equal(kb_json_add_str(dec, "session_kind", "user"), 0);
        assert_int_equal(kb_json_add_str(o, "session_id", session), 0);
        assert_int_equal(kb_json_add_str(o, "status", status), 0);
        assert_int_equal(kb_json_add_str(o, "webhook_type", type), 0);
        assert_int_equal(kb_json_add_str(o, "vendor_data", "cust-1"), 0);
        assert_int_equal(kb_json_add_i64(o, "timestamp", ts), 0);
        json_object_object_add(o, "decision", dec);
        assert_int_equal(kb_webhook_sign_v2(secret, ts, o, d->v2), KB_OK);
        assert_int_equal(kb_webhook_sign_simple(secret, ts, session, status,
                                                type, d->simple),
                         KB_OK);
        kb_strlcpy(d->body, kb_json_str(o, NULL), sizeof(d->body));
        snprintf(d->ts, sizeof(d->ts), "%" PRId64, ts);
        json_object_put(o);
}

static void make_now(dlv_t *d, const char *secret, const char *status)
{
        make(d, secret, kb_time_now(), SESSION, status, "status.updated");
}

static void post_dlv(int port, const dlv_t *d, int with_v2, int with_simple,
                     resp_t *r)
{
        post(port, d->body, strlen(d->body), d->ts, with_v2 ? d->v2 : NULL,
             with_simple ? d->simple : NULL, r);
}

/* A V2-signed delivery with @p extra header lines (post_req()). */
static void post_dlv_extra(int port, const dlv_t *d, const char *extra,
                           resp_t *r)
{
        kb_buf_t req = KB_BUF_INIT;

        assert_int_equal(
            post_req(&req, d->body, strlen(d->body), d->ts, d->v2, NULL, extra),
            0);
        http_raw(port, req.data, req.len, r);
        kb_buf_free(&req, 0);
}

static void assert_detail(const resp_t *r, const char *want)
{
        char err[128];
        json_object *o =
            kb_json_parse(r->body, strlen(r->body), 8, err, sizeof(err));
        assert_non_null(o);
        assert_string_equal(kb_json_get_str(o, "detail"), want);
        json_object_put(o);
}

/* ---------------------------------------------------------------------- */
/* The world: mock cluster, server, intake, an action that counts */

typedef struct world_s {
        rd_kafka_t *host;
        rd_kafka_mock_cluster_t *mc;
        kb_httpd_t *h;
        kb_wh_intake_t *wi;
        int port;
        atomic_int actions;
        atomic_int last_auth;
        atomic_int last_secret;
        /* the action's completions: acked, not */
        atomic_int settled_ok;
        atomic_int settled_failed;
} world_t;

static void settled(void *arg, int acked)
{
        world_t *w = arg;

        atomic_fetch_add(acked ? &w->settled_ok : &w->settled_failed, 1);
}

/* The traceparent the action puts on the record of session "own-trace"
 * (a trace of its own, as a daemon's action could). */
#define OWN_TP "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-00"

/* One record per delivery: key = session id, value = status. A session
 * named "refuse-me" is refused as malformed; one named "own-trace" gets
 * the traceparent OWN_TP from the action. */
static int action(void *opaque, const kb_wh_delivery_t *dlv,
                  kb_wh_records_t *out, char *errstr, size_t errstr_size)
{
        world_t *w = opaque;
        const char *hdrs[] = { "kind", dlv->session_kind, NULL, NULL, NULL };

        atomic_fetch_add(&w->actions, 1);
        atomic_store(&w->last_auth, dlv->auth);
        atomic_store(&w->last_secret, dlv->secret_index);
        kb_wh_records_on_settled(out, settled, w);
        if (!strcmp(dlv->session_id, "refuse-me")) {
                kb_snprintf(errstr, errstr_size, "Not for us.");
                return KB_ERR_MALFORMED;
        }
        if (!strcmp(dlv->session_id, "own-trace")) {
                hdrs[2] = "traceparent";
                hdrs[3] = OWN_TP;
        }
        return kb_wh_records_add(out, TOPIC, dlv->session_id,
                                 strlen(dlv->session_id), dlv->status,
                                 strlen(dlv->status), hdrs);
}

static void world_new(world_t *w, const char *prev, int allow_simple)
{
        rd_kafka_conf_t *rkc;
        kb_wh_intake_conf_t ic;
        kb_httpd_conf_t hc;
        char err[512];

        memset(w, 0, sizeof(*w));
        rkc = rd_kafka_conf_new();
        rd_kafka_conf_set(rkc, "log_level", "3", err, sizeof(err));
        w->host = rd_kafka_new(RD_KAFKA_PRODUCER, rkc, err, sizeof(err));
        assert_non_null(w->host);
        w->mc = rd_kafka_mock_cluster_new(w->host, 1);
        assert_non_null(w->mc);
        assert_int_equal(rd_kafka_mock_topic_create(w->mc, TOPIC, 1, 1), 0);

        memset(&ic, 0, sizeof(ic));
        ic.secrets[0] = SECRET;
        ic.secrets[1] = prev;
        ic.allow_simple = allow_simple;
        ic.body_max = BODY_MAX;
        ic.kafka_timeout_ms = 2000;
        ic.retry_after_s = 7;
        ic.action = action;
        ic.opaque = w;
        rkc = rd_kafka_conf_new();
        assert_int_equal(
            rd_kafka_conf_set(rkc, "bootstrap.servers",
                              rd_kafka_mock_cluster_bootstraps(w->mc), err,
                              sizeof(err)),
            RD_KAFKA_CONF_OK);
        rd_kafka_conf_set(rkc, "log_level", "2", err, sizeof(err));
        rd_kafka_conf_set(rkc, "linger.ms", "0", err, sizeof(err));
        rd_kafka_conf_set(rkc, "reconnect.backoff.max.ms", "500", err,
                          sizeof(err));
        w->wi = kb_wh_intake_new(&ic, rkc, NULL, err, sizeof(err));
        if (!w->wi)
                fail_msg("kb_wh_intake_new: %s", err);

        memset(&hc, 0, sizeof(hc));
        hc.listen = "127.0.0.1:0";
        hc.body_max = 2 * BODY_MAX; /* the intake's own limit is tested */
        hc.name = "webhook-test";
        w->h = kb_httpd_new(&hc, NULL, err, sizeof(err));
        assert_non_null(w->h);
        assert_int_equal(kb_httpd_route(w->h, "POST", "/webhooks/vendor",
                                        kb_wh_intake_handler, w->wi),
                         KB_OK);
        assert_int_equal(kb_httpd_start(w->h, err, sizeof(err)), KB_OK);
        w->port = kb_httpd_port(w->h);
}

static void world_destroy(world_t *w)
{
        kb_wh_intake_destroy(w->wi, 5000);
        kb_httpd_destroy(w->h, 2000);
        rd_kafka_mock_cluster_destroy(w->mc);
        rd_kafka_destroy(w->host);
}

/* Records on TOPIC now (read to the end by a fresh consumer). */
static int topic_count(world_t *w)
{
        rd_kafka_conf_t *rkc = rd_kafka_conf_new();
        rd_kafka_topic_partition_list_t *parts;
        char err[256];
        rd_kafka_t *rk;
        int n = 0, eof = 0;
        int64_t deadline = kb_mono_ms() + T_WAIT_MS;

        rd_kafka_conf_set(rkc, "bootstrap.servers",
                          rd_kafka_mock_cluster_bootstraps(w->mc), err,
                          sizeof(err));
        rd_kafka_conf_set(rkc, "group.id", "checker", err, sizeof(err));
        rd_kafka_conf_set(rkc, "enable.partition.eof", "true", err,
                          sizeof(err));
        rd_kafka_conf_set(rkc, "log_level", "2", err, sizeof(err));
        rk = rd_kafka_new(RD_KAFKA_CONSUMER, rkc, err, sizeof(err));
        assert_non_null(rk);
        parts = rd_kafka_topic_partition_list_new(1);
        rd_kafka_topic_partition_list_add(parts, TOPIC, 0)->offset =
            RD_KAFKA_OFFSET_BEGINNING;
        assert_int_equal(rd_kafka_assign(rk, parts), 0);
        rd_kafka_topic_partition_list_destroy(parts);
        while (!eof && kb_mono_ms() < deadline) {
                rd_kafka_message_t *m = rd_kafka_consumer_poll(rk, 100);
                if (!m)
                        continue;
                if (m->err == RD_KAFKA_RESP_ERR__PARTITION_EOF)
                        eof = 1;
                else if (!m->err)
                        n++;
                rd_kafka_message_destroy(m);
        }
        assert_true(eof);
        rd_kafka_consumer_close(rk);
        rd_kafka_destroy(rk);
        return n;
}

/* The headers of the record with key @p key on TOPIC (read to the end by
 * a fresh consumer; the last such record), NULL when there is none. The
 * caller destroys them. */
static rd_kafka_headers_t *record_headers(world_t *w, const char *key)
{
        rd_kafka_conf_t *rkc = rd_kafka_conf_new();
        rd_kafka_topic_partition_list_t *parts;
        rd_kafka_headers_t *found = NULL;
        char err[256];
        rd_kafka_t *rk;
        int eof = 0;
        int64_t deadline = kb_mono_ms() + T_WAIT_MS;

        rd_kafka_conf_set(rkc, "bootstrap.servers",
                          rd_kafka_mock_cluster_bootstraps(w->mc), err,
                          sizeof(err));
        rd_kafka_conf_set(rkc, "group.id", "checker", err, sizeof(err));
        rd_kafka_conf_set(rkc, "enable.partition.eof", "true", err,
                          sizeof(err));
        rd_kafka_conf_set(rkc, "log_level", "2", err, sizeof(err));
        rk = rd_kafka_new(RD_KAFKA_CONSUMER, rkc, err, sizeof(err));
        assert_non_null(rk);
        parts = rd_kafka_topic_partition_list_new(1);
        rd_kafka_topic_partition_list_add(parts, TOPIC, 0)->offset =
            RD_KAFKA_OFFSET_BEGINNING;
        assert_int_equal(rd_kafka_assign(rk, parts), 0);
        rd_kafka_topic_partition_list_destroy(parts);
        while (!eof && kb_mono_ms() < deadline) {
                rd_kafka_message_t *m = rd_kafka_consumer_poll(rk, 100);
                rd_kafka_headers_t *h;
                if (!m)
                        continue;
                if (m->err == RD_KAFKA_RESP_ERR__PARTITION_EOF)
                        eof = 1;
                else if (!m->err && m->key_len == strlen(key) &&
                         !memcmp(m->key, key, m->key_len) &&
                         rd_kafka_message_headers(m, &h) == 0) {
                        if (found)
                                rd_kafka_headers_destroy(found);
                        found = rd_kafka_headers_copy(h);
                }
                rd_kafka_message_destroy(m);
        }
        assert_true(eof);
        rd_kafka_consumer_close(rk);
        rd_kafka_destroy(rk);
        return found;
}

/* Header @p name of @p h as a string into @p out; 0, or -1 when absent. */
static int header_str(rd_kafka_headers_t *h, const char *name, char *out,
                      size_t out_size)
{
        const void *v;
        size_t len;

        out[0] = '\0';
        if (!h || rd_kafka_header_get_last(h, name, &v, &len) ||
            len >= out_size)
                return -1;
        memcpy(out, v, len);
        out[len] = '\0';
        return 0;
}

/* Log lines go to a file while a test looks at them (several threads
 * write: the HTTP threads and the producer's). */
static int log_capture(int level, char *path, size_t path_size)
{
        int fd;

        kb_strlcpy(path, "/tmp/kb-test-webhooks-log-XXXXXX", path_size);
        fd = mkstemp(path);
        assert_true(fd >= 0);
        kb_log_setup(level, 0, fd, "test_webhooks");
        return fd;
}

/* Ends the capture; the lines written, malloc()ed. */
static char *log_captured(int fd, const char *path)
{
        struct stat st;
        char *out;
        ssize_t n;

        kb_log_setup(KB_LOG_WARN, 0, 2, "test_webhooks");
        assert_int_equal(fstat(fd, &st), 0);
        out = malloc((size_t)st.st_size + 1);
        assert_non_null(out);
        n = pread(fd, out, (size_t)st.st_size, 0);
        assert_int_equal(n, st.st_size);
        out[n] = '\0';
        close(fd);
        unlink(path);
        return out;
}

/* The line of @p log containing @p needle ends with " trace_id=" @p tid:
 * asserted, with the line shown when it fails. */
static void assert_line_traced(const char *log, const char *needle,
                               const char *tid)
{
        const char *at = strstr(log, needle), *bol, *eol;
        char line[1024], want[64];
        size_t n;

        if (!at)
                fail_msg("no log line with \"%s\" in:\n%s", needle, log);
        for (bol = at; bol > log && bol[-1] != '\n'; bol--)
                ;
        eol = strchr(at, '\n');
        n = eol ? (size_t)(eol - bol) : strlen(bol);
        if (n >= sizeof(line))
                n = sizeof(line) - 1;
        memcpy(line, bol, n);
        line[n] = '\0';
        snprintf(want, sizeof(want), " trace_id=%s", tid);
        if (n < strlen(want) || strcmp(line + n - strlen(want), want))
                fail_msg("log line without trace_id=%s: %s", tid, line);
}

/* ---------------------------------------------------------------------- */
/* Tests */

/* A traceparent a delivery comes with. */
#define IN_TID  "4bf92f3577b34da6a3ce929d0e0e4736"
#define IN_SPAN "00f067aa0ba902b7"
#define IN_TP   "00-" IN_TID "-" IN_SPAN "-01"

static void test_valid_and_replays(void **state)
{
        world_t w;
        dlv_t d;
        resp_t r;
        kb_wh_intake_stats_t st;
        char upper[KB_WEBHOOK_SIG_HEX_BYTES];
        size_t i;

        (void)state;
        world_new(&w, NULL, 1);
        make_now(&d, SECRET, "Approved");
        post_dlv(w.port, &d, 1, 1, &r);
        assert_int_equal(r.status, 200);
        assert_string_equal(r.body, "{\"result\":\"accepted\",\"records\":1}");
        assert_int_equal(atomic_load(&w.actions), 1);
        assert_int_equal(atomic_load(&w.last_auth), KB_WH_AUTH_V2);

        /* what the action caused is settled before the answer */
        assert_int_equal(atomic_load(&w.settled_ok), 1);

        /* the same delivery again: acknowledged, not acted on */
        post_dlv(w.port, &d, 1, 1, &r);
        assert_int_equal(r.status, 200);
        assert_string_equal(r.body, "{\"result\":\"duplicate\"}");
        /* without its V2 header (Simple only), or in upper case */
        post_dlv(w.port, &d, 0, 1, &r);
        assert_int_equal(r.status, 200);
        assert_string_equal(r.body, "{\"result\":\"duplicate\"}");
        for (i = 0; d.v2[i]; i++)
                upper[i] =
                    (char)(d.v2[i] >= 'a' && d.v2[i] <= 'f' ? d.v2[i] - 32
                                                            : d.v2[i]);
        upper[i] = '\0';
        post(w.port, d.body, strlen(d.body), d.ts, upper, NULL, &r);
        assert_int_equal(r.status, 200);
        assert_string_equal(r.body, "{\"result\":\"duplicate\"}");
        assert_int_equal(atomic_load(&w.actions), 1);

        /* another type is acknowledged and ignored */
        make(&d, SECRET, kb_time_now(), SESSION, "Approved", "data.updated");
        post_dlv(w.port, &d, 1, 0, &r);
        assert_int_equal(r.status, 200);
        assert_string_equal(r.body, "{\"result\":\"ignored\"}");
        assert_int_equal(atomic_load(&w.actions), 1);

        /* an action's refusal: 400 with its detail, nothing remembered */
        make(&d, SECRET, kb_time_now(), "refuse-me", "Approved",
             "status.updated");
        post_dlv(w.port, &d, 1, 0, &r);
        assert_int_equal(r.status, 400);
        assert_detail(&r, "Not for us.");
        post_dlv(w.port, &d, 1, 0, &r);
        assert_int_equal(r.status, 400);
        assert_int_equal(atomic_load(&w.actions), 3);
        assert_int_equal(atomic_load(&w.settled_ok), 1);
        assert_int_equal(atomic_load(&w.settled_failed), 2);

        kb_wh_intake_stats(w.wi, &st);
        assert_int_equal(st.accepted, 1);
        assert_int_equal(st.duplicates, 3);
        assert_int_equal(st.ignored, 1);
        assert_int_equal(st.malformed, 2);
        assert_int_equal(st.records_acked, 1);
        assert_int_equal(topic_count(&w), 1);
        world_destroy(&w);
}

static void test_refused(void **state)
{
        world_t w;
        dlv_t d, other;
        resp_t r;
        char body[BODY_MAX + 64];
        int64_t now = kb_time_now();
        kb_wh_intake_stats_t st;

        (void)state;
        world_new(&w, NULL, 1);

        /* forged: a signature that is not the body's */
        make_now(&d, SECRET, "Approved");
        make_now(&other, SECRET, "Declined");
        post(w.port, d.body, strlen(d.body), d.ts, other.v2, NULL, &r);
        assert_int_equal(r.status, 401);
        assert_detail(&r, "Signature verification failed.");
        /* a V2 signature that fails is not rescued by a Simple one */
        post(w.port, d.body, strlen(d.body), d.ts, other.v2, d.simple, &r);
        assert_int_equal(r.status, 401);
        /* tampered: the body changed after signing */
        kb_strlcpy(body, d.body, sizeof(body));
        memcpy(strstr(body, "Approved"), "Declined", 8);
        post(w.port, body, strlen(body), d.ts, d.v2, NULL, &r);
        assert_int_equal(r.status, 401);
        /* the timestamp header is not the signed one */
        post(w.port, d.body, strlen(d.body), "1795312800", d.v2, NULL, &r);
        assert_int_equal(r.status, 401);
        /* stale and future-dated (window 300 s) */
        make(&other, SECRET, now - 400, SESSION, "Approved", "status.updated");
        post_dlv(w.port, &other, 1, 1, &r);
        assert_int_equal(r.status, 401);
        make(&other, SECRET, now + 400, SESSION, "Approved", "status.updated");
        post_dlv(w.port, &other, 1, 1, &r);
        assert_int_equal(r.status, 401);
        /* wrong secret */
        make_now(&other, SECRET_BAD, "Approved");
        post_dlv(w.port, &other, 1, 1, &r);
        assert_int_equal(r.status, 401);
        /* missing headers */
        post(w.port, d.body, strlen(d.body), NULL, d.v2, d.simple, &r);
        assert_int_equal(r.status, 401);
        assert_detail(&r, "Missing X-Timestamp header.");
        post(w.port, d.body, strlen(d.body), d.ts, NULL, NULL, &r);
        assert_int_equal(r.status, 401);
        /* duplicate key, invalid UTF-8: not strict JSON */
        snprintf(body, sizeof(body),
                 "{\"session_id\":\"%s\",\"status\":\"Approved\","
                 "\"status\":\"Declined\",\"webhook_type\":\"status.updated\","
                 "\"timestamp\":%s}",
                 SESSION, d.ts);
        post(w.port, body, strlen(body), d.ts, d.v2, NULL, &r);
        assert_int_equal(r.status, 400);
        snprintf(body, sizeof(body),
                 "{\"session_id\":\"%s\",\"status\":\"Appr\xc3\x28ved\","
                 "\"webhook_type\":\"status.updated\",\"timestamp\":%s}",
                 SESSION, d.ts);
        post(w.port, body, strlen(body), d.ts, d.v2, NULL, &r);
        assert_int_equal(r.status, 400);
        /* oversized */
        memset(body, ' ', sizeof(body));
        memcpy(body, "{}", 2);
        post(w.port, body, BODY_MAX + 1, d.ts, d.v2, NULL, &r);
        assert_int_equal(r.status, 413);

        /* none of it reached the action or Kafka, and no secret leaked
         * into an answer */
        assert_int_equal(atomic_load(&w.actions), 0);
        assert_null(strstr(r.body, SECRET));
        kb_wh_intake_stats(w.wi, &st);
        assert_int_equal(st.unauthorized, 9);
        assert_int_equal(st.malformed, 2);
        assert_int_equal(st.too_large, 1);
        assert_int_equal(st.accepted, 0);
        assert_int_equal(topic_count(&w), 0);

        /* and the genuine delivery still goes through */
        post_dlv(w.port, &d, 1, 1, &r);
        assert_int_equal(r.status, 200);
        assert_int_equal(atomic_load(&w.actions), 1);
        world_destroy(&w);
}

static void test_rotation(void **state)
{
        world_t w;
        dlv_t d;
        resp_t r;

        (void)state;
        world_new(&w, SECRET_OLD, 0);
        make_now(&d, SECRET_OLD, "Approved");
        post_dlv(w.port, &d, 1, 0, &r);
        assert_int_equal(r.status, 200);
        assert_int_equal(atomic_load(&w.last_secret), 1);
        make_now(&d, SECRET, "Declined");
        post_dlv(w.port, &d, 1, 0, &r);
        assert_int_equal(r.status, 200);
        assert_int_equal(atomic_load(&w.last_secret), 0);
        make_now(&d, SECRET_BAD, "In Review");
        post_dlv(w.port, &d, 1, 0, &r);
        assert_int_equal(r.status, 401);
        assert_int_equal(atomic_load(&w.actions), 2);
        assert_int_equal(topic_count(&w), 2);
        world_destroy(&w);
}

static void test_simple_fallback(void **state)
{
        world_t w;
        dlv_t d;
        resp_t r;

        (void)state;
        /* on: a Simple-only delivery is accepted, and said to be */
        world_new(&w, NULL, 1);
        make_now(&d, SECRET, "Approved");
        post_dlv(w.port, &d, 0, 1, &r);
        assert_int_equal(r.status, 200);
        assert_int_equal(atomic_load(&w.last_auth), KB_WH_AUTH_SIMPLE);
        world_destroy(&w);

        /* off: the Simple header is not even looked at */
        world_new(&w, NULL, 0);
        post_dlv(w.port, &d, 0, 1, &r);
        assert_int_equal(r.status, 401);
        assert_detail(&r, "Missing X-Signature-V2 header.");
        assert_int_equal(atomic_load(&w.actions), 0);
        world_destroy(&w);
}

static void test_broker_down(void **state)
{
        world_t w;
        dlv_t d;
        resp_t r;
        char path[64], *log;
        int tries, fd;

        (void)state;
        world_new(&w, NULL, 0);
        /* warm up: the producer knows the cluster */
        make(&d, SECRET, kb_time_now(), "warm-up", "Approved",
             "status.updated");
        post_dlv(w.port, &d, 1, 0, &r);
        assert_int_equal(r.status, 200);

        assert_int_equal(rd_kafka_mock_broker_set_down(w.mc, 1), 0);
        make_now(&d, SECRET, "Approved");
        /* its lines carry its trace id, also those written on the
         * producer's thread when the report comes */
        fd = log_capture(KB_LOG_NOTICE, path, sizeof(path));
        post_dlv_extra(w.port, &d, "traceparent: " IN_TP "\r\n", &r);
        log = log_captured(fd, path);
        assert_line_traced(log, "record for session " SESSION " not acked",
                           IN_TID);
        assert_line_traced(log, "delivery for session " SESSION " answered 503",
                           IN_TID);
        free(log);
        assert_int_equal(r.status, 503);
        assert_non_null(strstr(r.head, "Retry-After: 7"));
        assert_detail(&r, "Kafka is not available; retry later.");
        assert_int_equal(atomic_load(&w.actions), 2);
        assert_int_equal(atomic_load(&w.settled_ok), 1);
        assert_int_equal(atomic_load(&w.settled_failed), 1);

        /* the broker is back: the same delivery (not remembered) acts,
         * retried as the vendor does until the producer reconnected */
        assert_int_equal(rd_kafka_mock_broker_set_up(w.mc, 1), 0);
        for (tries = 0; tries < 30; tries++) {
                post_dlv(w.port, &d, 1, 0, &r);
                if (r.status != 503)
                        break;
                usleep(500000);
        }
        assert_int_equal(r.status, 200);
        assert_string_equal(r.body, "{\"result\":\"accepted\",\"records\":1}");
        assert_int_equal(atomic_load(&w.actions), 3 + tries);
        assert_int_equal(atomic_load(&w.settled_ok), 2);
        assert_int_equal(atomic_load(&w.settled_failed), 1 + tries);
        post_dlv(w.port, &d, 1, 0, &r);
        assert_string_equal(r.body, "{\"result\":\"duplicate\"}");
        /* warm-up + exactly one record of the delivery */
        assert_int_equal(topic_count(&w), 2);
        world_destroy(&w);
}

/* A delivery's trace context reaches the record it causes: its trace id
 * with a new span id (this hop's), its tracestate, and kb-requested-at,
 * the receipt time; a delivery without a traceparent gets a trace of its
 * own; an action's own traceparent is kept, kb-requested-at still added.
 * The delivery's lines carry its trace id, the "acked" one too (written on
 * the producer's thread). */
static void test_trace_to_record(void **state)
{
        world_t w;
        dlv_t d;
        resp_t r;
        rd_kafka_headers_t *h, *h_traced, *h_untraced, *h_own;
        const void *v;
        size_t len;
        char tp[128], ts[600], at[32], tid[KB_TRACE_ID_BYTES],
            span[KB_TRACE_SPAN_BYTES], path[64], *log, *end;
        uint8_t flags;
        int64_t before, after, ms;
        int fd;

        (void)state;
        fd = log_capture(KB_LOG_INFO, path, sizeof(path));
        world_new(&w, NULL, 0);
        before = kb_trace_wall_ms();
        make(&d, SECRET, kb_time_now(), "traced", "Approved", "status.updated");
        post_dlv_extra(w.port, &d,
                       "traceparent: " IN_TP "\r\n"
                       "tracestate: vendor=t61rcWkgMzE,other=x\r\n",
                       &r);
        assert_int_equal(r.status, 200);
        make(&d, SECRET, kb_time_now(), "untraced", "Approved",
             "status.updated");
        post_dlv_extra(w.port, &d, NULL, &r);
        assert_int_equal(r.status, 200);
        make(&d, SECRET, kb_time_now(), "own-trace", "Approved",
             "status.updated");
        post_dlv_extra(w.port, &d, "traceparent: " IN_TP "\r\n", &r);
        assert_int_equal(r.status, 200);
        after = kb_trace_wall_ms();
        h_traced = record_headers(&w, "traced");
        h_untraced = record_headers(&w, "untraced");
        h_own = record_headers(&w, "own-trace");
        world_destroy(&w);
        log = log_captured(fd, path);

        /* continued: same trace id and flags, a new span id */
        h = h_traced;
        assert_non_null(h);
        assert_int_equal(header_str(h, "traceparent", tp, sizeof(tp)), 0);
        assert_int_equal(kb_trace_parse(tp, strlen(tp), tid, span, &flags),
                         KB_OK);
        assert_string_equal(tid, IN_TID);
        assert_string_not_equal(span, IN_SPAN);
        assert_int_equal(flags, 1);
        assert_int_equal(header_str(h, "tracestate", ts, sizeof(ts)), 0);
        assert_string_equal(ts, "vendor=t61rcWkgMzE,other=x");
        assert_int_equal(header_str(h, "kb-requested-at", at, sizeof(at)), 0);
        ms = strtoll(at, &end, 10);
        assert_true(*end == '\0' && ms >= before && ms <= after);
        rd_kafka_headers_destroy(h);
        assert_line_traced(log, "session traced: 1 record(s) acked", IN_TID);

        /* none came: a trace started here, its id on the lines */
        h = h_untraced;
        assert_non_null(h);
        assert_int_equal(header_str(h, "traceparent", tp, sizeof(tp)), 0);
        assert_int_equal(kb_trace_parse(tp, strlen(tp), tid, span, &flags),
                         KB_OK);
        assert_string_not_equal(tid, IN_TID);
        assert_int_equal(flags, KB_TRACE_FLAG_SAMPLED);
        assert_int_equal(header_str(h, "tracestate", ts, sizeof(ts)), -1);
        assert_int_equal(header_str(h, "kb-requested-at", at, sizeof(at)), 0);
        ms = strtoll(at, &end, 10);
        assert_true(*end == '\0' && ms >= before && ms <= after);
        rd_kafka_headers_destroy(h);
        assert_line_traced(log, "session untraced: 1 record(s) acked", tid);

        /* the action's own trace: kept as it is (one traceparent, no
         * tracestate of another trace), kb-requested-at added all the
         * same; the delivery's lines are in the delivery's trace */
        h = h_own;
        assert_non_null(h);
        assert_int_equal(header_str(h, "traceparent", tp, sizeof(tp)), 0);
        assert_string_equal(tp, OWN_TP);
        assert_int_equal(rd_kafka_header_get(h, 1, "traceparent", &v, &len),
                         RD_KAFKA_RESP_ERR__NOENT);
        assert_int_equal(header_str(h, "tracestate", ts, sizeof(ts)), -1);
        assert_int_equal(header_str(h, "kb-requested-at", at, sizeof(at)), 0);
        ms = strtoll(at, &end, 10);
        assert_true(*end == '\0' && ms >= before && ms <= after);
        rd_kafka_headers_destroy(h);
        assert_line_traced(log, "session own-trace: 1 record(s) acked", IN_TID);
        free(log);
}

/* A client on its own thread (no assertions there). */
typedef struct client_s {
        int port;
        const dlv_t *d;
        resp_t r;
        int rc;
        atomic_int done;
} client_t;

static void *client_main(void *arg)
{
        client_t *c = arg;
        kb_buf_t req = KB_BUF_INIT;

        c->rc = post_req(&req, c->d->body, strlen(c->d->body), c->d->ts,
                         c->d->v2, NULL, NULL);
        if (c->rc == 0)
                c->rc = http_try(c->port, req.data, req.len, &c->r);
        kb_buf_free(&req, 0);
        atomic_store(&c->done, 1);
        return NULL;
}

/* Records whose reports do not come even after the purge at shutdown:
 * their delivery is answered 503 by the intake itself (not left to the
 * server's own shutdown), its completion settled, nothing leaked. */
static void test_shutdown_answers_the_rest(void **state)
{
        world_t w;
        dlv_t d;
        resp_t r;
        client_t c;
        pthread_t t;
        int64_t deadline;
        int done;

        (void)state;
        world_new(&w, NULL, 0);
        make(&d, SECRET, kb_time_now(), "warm-up", "Approved",
             "status.updated");
        post_dlv(w.port, &d, 1, 0, &r);
        assert_int_equal(r.status, 200);
        assert_int_equal(rd_kafka_mock_broker_set_down(w.mc, 1), 0);

        make_now(&d, SECRET, "Approved");
        memset(&c, 0, sizeof(c));
        c.port = w.port;
        c.d = &d;
        atomic_init(&c.done, 0);
        assert_int_equal(pthread_create(&t, NULL, client_main, &c), 0);
        /* wait until the handler has returned with its delivery in flight
         * (its request suspended): an intake is destroyed only once no
         * handler is inside it -- the daemons' webhook host gates the
         * route for that; this test has no gate */
        deadline = kb_mono_ms() + 10000;
        while ((atomic_load(&w.wi->inflight) == 0 ||
                atomic_load(&w.h->nsuspended) == 0) &&
               kb_mono_ms() < deadline)
                usleep(10000);
        assert_int_equal(atomic_load(&w.wi->inflight), 1);
        assert_int_equal(atomic_load(&w.h->nsuspended), 1);

        /* no wait for the purged records' reports: they never come */
        w.wi->term_wait_ms = 0;
        kb_wh_intake_destroy(w.wi, 0);
        w.wi = NULL;
        deadline = kb_mono_ms() + 10000;
        while (!atomic_load(&c.done) && kb_mono_ms() < deadline)
                usleep(10000);
        done = atomic_load(&c.done);
        /* the server's shutdown would answer it too: checked before */
        kb_httpd_destroy(w.h, 2000);
        w.h = NULL;
        pthread_join(t, NULL);
        assert_true(done);
        assert_int_equal(c.rc, 0);
        assert_int_equal(c.r.status, 503);
        assert_non_null(strstr(c.r.head, "Retry-After: 7"));
        assert_int_equal(atomic_load(&w.settled_ok), 1);
        assert_int_equal(atomic_load(&w.settled_failed), 1);
        assert_int_equal(atomic_load(&w.actions), 2);
        world_destroy(&w);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_valid_and_replays),
                cmocka_unit_test(test_refused),
                cmocka_unit_test(test_rotation),
                cmocka_unit_test(test_simple_fallback),
                cmocka_unit_test(test_broker_down),
                cmocka_unit_test(test_shutdown_answers_the_rest),
                cmocka_unit_test(test_trace_to_record),
        };
        const char *l = getenv("KB_TEST_LOG");

        kb_log_setup(l && *l ? (int)strtol(l, NULL, 10) : KB_LOG_WARN, 0, 2,
                     "test_webhooks");
        return cmocka_run_group_tests(tests, NULL, NULL);
}
