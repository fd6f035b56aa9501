/* test_ops_http.c -- unit tests of a daemon's operations endpoints: the
 * metric families of ops_http.c and /readyz, scraped over HTTP */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <arpa/inet.h>
#include <math.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "conf.h"
#include "issuer_rules.h"
#include "json.h"
#include "kyc_bridge.h"
#include "ops_http.h"
#include "util.h"
#include "wh_delivery.h"
#include "wh_rules.h"

/* One GET of our own server: the status, the body in @p body. */
static int get(const kb_ops_http_t *o, const char *path, char *body,
               size_t bodysz)
{
        char req[256], *buf, *b;
        size_t len = 0, cap = 1 << 20;
        struct sockaddr_in a;
        int fd, status = -1;

        buf = malloc(cap);
        assert_non_null(buf);
        fd = socket(AF_INET, SOCK_STREAM, 0);
        assert_true(fd >= 0);
        memset(&a, 0, sizeof(a));
        a.sin_family = AF_INET;
        a.sin_port = htons((uint16_t)kb_ops_http_port(o));
        a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        assert_int_equal(connect(fd, (struct sockaddr *)&a, sizeof(a)), 0);
        snprintf(req, sizeof(req),
                 "GET %s HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
                 path);
        assert_int_equal(write(fd, req, strlen(req)), (ssize_t)strlen(req));
        for (;;) {
                ssize_t n = read(fd, buf + len, cap - 1 - len);
                if (n <= 0)
                        break;
                len += (size_t)n;
        }
        close(fd);
        buf[len] = '\0';
        assert_int_equal(sscanf(buf, "HTTP/1.1 %d", &status), 1);
        b = strstr(buf, "\r\n\r\n");
        assert_non_null(b);
        kb_strlcpy(body, b + 4, bodysz);
        free(buf);
        return status;
}

static char text[1 << 20];

static const char *scrape(const kb_ops_http_t *o)
{
        assert_int_equal(get(o, "/metrics", text, sizeof(text)), 200);
        return text;
}

/* The value of the sample line that starts with @p series (name and
 * labels exactly as rendered), or NAN when there is none. */
static double sample(const char *t, const char *series)
{
        size_t n = strlen(series);
        const char *p = t;

        while ((p = strstr(p, series))) {
                if ((p == t || p[-1] == '\n') && p[n] == ' ')
                        return strtod(p + n + 1, NULL);
                p += n;
        }
        return NAN;
}

static kb_ops_http_t *mk(const char *role)
{
        kb_conf_t *conf = kb_conf_new();
        char err[256] = "";
        kb_ops_http_t *o = NULL;

        assert_non_null(conf);
        assert_int_equal(kb_conf_set(conf, "metrics.listen", "127.0.0.1:0",
                                     "test", err, sizeof(err)),
                         KB_OK);
        assert_int_equal(kb_ops_http_new(conf, role, &o, err, sizeof(err)),
                         KB_OK);
        assert_non_null(o);
        assert_int_equal(kb_ops_http_start(o, err, sizeof(err)), KB_OK);
        kb_conf_destroy(conf);
        kb_ops_http_beat(o, NULL);
        return o;
}

/* Each vendor attempt counts by endpoint and status; answered ones go
 * into the latency histogram, unanswered ones (status 0) do not. Every
 * endpoint's latency series exists from the start; each (endpoint,
 * status) pair is looked up in the family once, not per attempt. */
static void test_vendor_attempts(void **state)
{
        static const char *const eps[] = { "share", "import", "list_sessions",
                                           "decision", "workflow" };
        kb_ops_http_t *o = mk("issuer");
        char series[256];
        const char *t;
        size_t i;

        (void)state;
        t = scrape(o);
        for (i = 0; i < KB_ARRAY_SIZE(eps); i++) {
                snprintf(series, sizeof(series),
                         "kyc_bridge_vendor_request_duration_seconds_count{"
                         "daemon=\"issuer\",endpoint=\"%s\"}",
                         eps[i]);
                assert_true(sample(t, series) == 0);
        }
        assert_int_equal(kb_ops_http_vendor_lookups(o), 0);
        kb_ops_http_vendor_attempt(o, "share", 201, 100000);
        kb_ops_http_vendor_attempt(o, "share", 201, 300000);
        kb_ops_http_vendor_attempt(o, "share", 0, 10000000);
        kb_ops_http_vendor_attempt(o, "share", 42, 1000); /* no status */
        kb_ops_http_vendor_attempt(o, "import", 503, 2000000);
        /* three pairs: share 201, share 0, import 503 */
        assert_int_equal(kb_ops_http_vendor_lookups(o), 3);
        for (i = 0; i < 1000; i++)
                kb_ops_http_vendor_attempt(o, "share", 201, 0);
        assert_int_equal(kb_ops_http_vendor_lookups(o), 3);
        t = scrape(o);
        assert_true(
            sample(t, "kyc_bridge_vendor_requests_total{daemon="
                      "\"issuer\",endpoint=\"share\",status=\"201\"}") == 1002);
        assert_true(sample(t,
                           "kyc_bridge_vendor_requests_total{daemon="
                           "\"issuer\",endpoint=\"share\",status=\"0\"}") == 2);
        assert_true(
            sample(t, "kyc_bridge_vendor_requests_total{daemon="
                      "\"issuer\",endpoint=\"import\",status=\"503\"}") == 1);
        assert_true(sample(t,
                           "kyc_bridge_vendor_request_duration_seconds_count"
                           "{daemon=\"issuer\",endpoint=\"share\"}") == 1002);
        assert_true(fabs(sample(t, "kyc_bridge_vendor_request_duration_"
                                   "seconds_sum{daemon=\"issuer\",endpoint="
                                   "\"share\"}") -
                         0.4) < 1e-9);
        assert_true(sample(t, "kyc_bridge_vendor_request_duration_seconds_"
                              "bucket{daemon=\"issuer\",endpoint=\"share\","
                              "le=\"0.1\"}") == 1001);
        assert_true(sample(t, "kyc_bridge_vendor_request_duration_seconds_"
                              "bucket{daemon=\"issuer\",endpoint=\"import\","
                              "le=\"2.5\"}") == 1);
        assert_non_null(
            strstr(t, "# TYPE kyc_bridge_vendor_requests_total counter\n"));
        assert_non_null(strstr(t, "# TYPE kyc_bridge_vendor_request_duration_"
                                  "seconds histogram\n"));
        kb_ops_http_destroy(o);
}

/* Past the cache's room (32 pairs), and for an endpoint name it does not
 * know, attempts still count right: looked up each time. */
static void test_vendor_attempts_uncached(void **state)
{
        kb_ops_http_t *o = mk("importer");
        char series[256];
        const char *t;
        int st, k;

        (void)state;
        for (k = 0; k < 2; k++)
                for (st = 200; st < 240; st++)
                        kb_ops_http_vendor_attempt(o, "decision", st, 1000);
        /* 40 pairs: 32 kept at the first round, 8 looked up each round */
        assert_int_equal(kb_ops_http_vendor_lookups(o), 40 + 8);
        kb_ops_http_vendor_attempt(o, "novel", 200, 1000);
        kb_ops_http_vendor_attempt(o, "novel", 200, 1000);
        /* the count and the latency child, each time */
        assert_int_equal(kb_ops_http_vendor_lookups(o), 48 + 4);
        t = scrape(o);
        for (st = 200; st < 240; st++) {
                snprintf(series, sizeof(series),
                         "kyc_bridge_vendor_requests_total{daemon="
                         "\"importer\",endpoint=\"decision\",status="
                         "\"%d\"}",
                         st);
                assert_true(sample(t, series) == 2);
        }
        assert_true(sample(t, "kyc_bridge_vendor_request_duration_seconds_count"
                              "{daemon=\"importer\",endpoint=\"decision\"}") ==
                    80);
        assert_true(sample(t, "kyc_bridge_vendor_requests_total{daemon="
                              "\"importer\",endpoint=\"novel\",status="
                              "\"200\"}") == 2);
        assert_true(sample(t, "kyc_bridge_vendor_request_duration_seconds_count"
                              "{daemon=\"importer\",endpoint=\"novel\"}") == 2);
        kb_ops_http_destroy(o);
}

/* Commit duration, records per transaction, hand-off latency. */
static void test_commit_and_handoff(void **state)
{
        kb_ops_http_t *o = mk("importer");
        const char *t;

        (void)state;
        kb_ops_http_commit(o, 0.02, 7);
        kb_ops_http_commit(o, 1.5, 2000);
        kb_ops_http_handoff(o, 90);
        kb_ops_http_handoff(o, -5); /* clocks apart: 0 */
        kb_ops_http_handoff(o, NAN);
        /* a backlog after downtime, a redrive: hours, up to the tokens'
         * 24 h, each in a bucket of its own rather than all in +Inf */
        kb_ops_http_handoff(o, 5000);
        kb_ops_http_handoff(o, 20000);
        kb_ops_http_handoff(o, 80000);
        kb_ops_http_handoff(o, 90000);
        t = scrape(o);
        assert_true(sample(t, "kyc_bridge_transaction_commit_duration_seconds_"
                              "count{daemon=\"importer\"}") == 2);
        assert_true(sample(t, "kyc_bridge_transaction_commit_duration_seconds_"
                              "bucket{daemon=\"importer\",le=\"0.025\"}") == 1);
        assert_true(fabs(sample(t, "kyc_bridge_transaction_commit_duration_"
                                   "seconds_sum{daemon=\"importer\"}") -
                         1.52) < 1e-9);
        assert_true(sample(t, "kyc_bridge_transaction_records_bucket{daemon="
                              "\"importer\",le=\"10\"}") == 1);
        assert_true(sample(t, "kyc_bridge_transaction_records_bucket{daemon="
                              "\"importer\",le=\"2000\"}") == 2);
        assert_true(sample(t, "kyc_bridge_transaction_records_sum{daemon="
                              "\"importer\"}") == 2007);
        assert_true(sample(t, "kyc_bridge_handoff_latency_seconds_count{daemon="
                              "\"importer\"}") == 6);
        assert_true(sample(t, "kyc_bridge_handoff_latency_seconds_sum{daemon="
                              "\"importer\"}") == 195090);
        assert_true(sample(t,
                           "kyc_bridge_handoff_latency_seconds_bucket{daemon="
                           "\"importer\",le=\"60\"}") == 1);
        assert_true(sample(t,
                           "kyc_bridge_handoff_latency_seconds_bucket{daemon="
                           "\"importer\",le=\"120\"}") == 2);
        assert_true(sample(t,
                           "kyc_bridge_handoff_latency_seconds_bucket{daemon="
                           "\"importer\",le=\"3600\"}") == 2);
        assert_true(sample(t,
                           "kyc_bridge_handoff_latency_seconds_bucket{daemon="
                           "\"importer\",le=\"7200\"}") == 3);
        assert_true(sample(t,
                           "kyc_bridge_handoff_latency_seconds_bucket{daemon="
                           "\"importer\",le=\"21600\"}") == 4);
        assert_true(sample(t,
                           "kyc_bridge_handoff_latency_seconds_bucket{daemon="
                           "\"importer\",le=\"86400\"}") == 5);
        assert_true(sample(t,
                           "kyc_bridge_handoff_latency_seconds_bucket{daemon="
                           "\"importer\",le=\"+Inf\"}") == 6);
        kb_ops_http_destroy(o);
}

/* librdkafka statistics with one real broker, its coordinator view,
 * the bootstrap entries of a plaintext and a TLS listener (nodeid -1) and
 * librdkafka's internal one. */
static void stats_json(char *js, size_t jssz, const char *state,
                       int64_t timeouts, const char *coord_state,
                       const char *boot_state)
{
        snprintf(js, jssz,
                 "{\"name\":\"c#consumer-1\",\"type\":\"consumer\","
                 "\"brokers\":{"
                 "\"localhost:9092/1\":{\"name\":\"localhost:9092/1\","
                 "\"nodeid\":1,\"source\":\"learned\",\"state\":\"%s\","
                 "\"req_timeouts\":%lld},"
                 "\"GroupCoordinator\":{\"name\":\"GroupCoordinator\","
                 "\"nodeid\":1,\"source\":\"logical\",\"state\":\"%s\","
                 "\"req_timeouts\":100},"
                 "\"localhost:9092/bootstrap\":{\"name\":"
                 "\"localhost:9092/bootstrap\",\"nodeid\":-1,\"source\":"
                 "\"configured\",\"state\":\"%s\",\"req_timeouts\":100},"
                 "\"ssl://kafka-2:9093/bootstrap\":{\"name\":"
                 "\"ssl://kafka-2:9093/bootstrap\",\"nodeid\":-1,\"source\":"
                 "\"configured\",\"state\":\"DOWN\",\"req_timeouts\":100},"
                 "\":0/internal\":{\"name\":\":0/internal\",\"nodeid\":-1,"
                 "\"source\":\"internal\",\"state\":\"UP\","
                 "\"req_timeouts\":100}},"
                 "\"topics\":{}}",
                 state, (long long)timeouts, coord_state, boot_state);
}

static int feed(kb_ops_http_t *o, const char *state, int64_t timeouts,
                const char *coord_state, const char *boot_state)
{
        char js[4096];

        stats_json(js, sizeof(js), state, timeouts, coord_state, boot_state);
        return kb_ops_http_consumer_stats(o, js, strlen(js));
}

static int feed_producer(kb_ops_http_t *o, const char *state, int64_t timeouts)
{
        char js[4096];

        stats_json(js, sizeof(js), state, timeouts, state, state);
        return kb_ops_http_producer_stats(o, js, strlen(js));
}

#define BRK_TO                                                                 \
        "kyc_bridge_broker_request_timeouts_total{daemon=\"importer\","        \
        "broker=\"localhost:9092/1\"}"
#define READY "kyc_bridge_ready{daemon=\"importer\"}"

/* GET /readyz, and kyc_bridge_ready says the same at once: 1 exactly
 * when /readyz answers 200. The status; the body in @p body. */
static int readyz(kb_ops_http_t *o, char *body, size_t bodysz)
{
        int st = get(o, "/readyz", body, bodysz);

        assert_true(st == 200 || st == 503);
        assert_true(sample(scrape(o), READY) == (st == 200 ? 1 : 0));
        return st;
}

/* /readyz: 503 "no broker reachable" once two statistics in a row showed
 * no broker connection up (one alone keeps 200), 200 again at the first
 * one with a connection up; STARTING, HELD and STOPPING answer as before
 * whatever the brokers; kyc_bridge_ready agrees at every step. Request
 * timeouts only grow, across a restart of librdkafka's figure too. */
static void test_brokers_readyz(void **state)
{
        kb_ops_http_t *o = mk("importer");
        char body[4096];

        (void)state;
        assert_int_equal(readyz(o, body, sizeof(body)), 503);
        assert_non_null(strstr(body, "starting"));
        assert_non_null(strstr(text, "# TYPE kyc_bridge_ready gauge\n"));
        kb_ops_http_state(o, KB_OPS_RUNNING);
        /* no statistics yet: nothing says a broker is down */
        assert_int_equal(readyz(o, body, sizeof(body)), 200);

        assert_int_equal(feed(o, "UP", 3, "UP", "UP"), KB_OK);
        assert_int_equal(readyz(o, body, sizeof(body)), 200);
        assert_true(sample(scrape(o), BRK_TO) == 3);
        /* the logical, bootstrap and internal entries are not shown */
        assert_null(strstr(text, "GroupCoordinator"));
        assert_null(strstr(text, "internal"));
        assert_null(strstr(text, "/bootstrap\""));
        assert_true(sample(text,
                           "kyc_bridge_broker_state_up{daemon="
                           "\"importer\",broker=\"localhost:9092/1\"}") == 1);

        /* the coordinator alone up, or a bootstrap connection alone: a
         * broker is still reached */
        assert_int_equal(feed(o, "DOWN", 3, "UP", "DOWN"), KB_OK);
        assert_int_equal(feed(o, "DOWN", 3, "UP", "DOWN"), KB_OK);
        assert_int_equal(readyz(o, body, sizeof(body)), 200);
        assert_int_equal(feed(o, "DOWN", 3, "DOWN", "UP"), KB_OK);
        assert_int_equal(feed(o, "DOWN", 3, "DOWN", "UP"), KB_OK);
        assert_int_equal(readyz(o, body, sizeof(body)), 200);

        /* one sample with none up: still ready (a reconnect in between) */
        assert_int_equal(feed(o, "DOWN", 4, "DOWN", "DOWN"), KB_OK);
        assert_int_equal(readyz(o, body, sizeof(body)), 200);
        /* one with a connection up starts the count again */
        assert_int_equal(feed(o, "UP", 4, "DOWN", "DOWN"), KB_OK);
        assert_int_equal(feed(o, "DOWN", 4, "DOWN", "DOWN"), KB_OK);
        assert_int_equal(readyz(o, body, sizeof(body)), 200);
        /* two in a row: not ready */
        assert_int_equal(feed(o, "DOWN", 5, "DOWN", "DOWN"), KB_OK);
        assert_int_equal(readyz(o, body, sizeof(body)), 503);
        assert_non_null(strstr(body, "no broker reachable"));
        assert_int_equal(feed(o, "DOWN", 5, "DOWN", "DOWN"), KB_OK);
        assert_int_equal(readyz(o, body, sizeof(body)), 503);
        assert_true(sample(scrape(o), BRK_TO) == 5);
        assert_true(sample(text,
                           "kyc_bridge_broker_state_up{daemon="
                           "\"importer\",broker=\"localhost:9092/1\"}") == 0);
        /* held and stopping say so, brokers or not */
        kb_ops_http_state(o, KB_OPS_HELD);
        assert_int_equal(readyz(o, body, sizeof(body)), 503);
        assert_non_null(strstr(body, "held"));
        kb_ops_http_state(o, KB_OPS_RUNNING);
        /* not statistics JSON, or statistics naming no broker: the last
         * ones still count */
        assert_int_equal(kb_ops_http_consumer_stats(o, "{", 1),
                         KB_ERR_INVALID_ARG);
        assert_int_equal(kb_ops_http_consumer_stats(o, "{}", 2), KB_OK);
        assert_int_equal(readyz(o, body, sizeof(body)), 503);

        /* back: one sample with a connection up is enough; a new
         * client's figure (2 < 5): all of it is new */
        assert_int_equal(feed(o, "UP", 2, "UP", "DOWN"), KB_OK);
        assert_int_equal(readyz(o, body, sizeof(body)), 200);
        assert_true(sample(scrape(o), BRK_TO) == 7);
        assert_int_equal(feed(o, "UP", 4, "UP", "DOWN"), KB_OK);
        assert_true(sample(scrape(o), BRK_TO) == 9);
        kb_ops_http_state(o, KB_OPS_STOPPING);
        assert_int_equal(readyz(o, body, sizeof(body)), 503);
        assert_non_null(strstr(body, "stopping"));
        kb_ops_http_destroy(o);
}

/* The producer's request timeouts add to the same series as the
 * consumer's, each client's figure followed on its own; the producer's
 * statistics are read at most every 5 s and never move /readyz. */
static void test_producer_timeouts(void **state)
{
        kb_ops_http_t *o = mk("importer");
        char body[4096];

        (void)state;
        kb_ops_http_state(o, KB_OPS_RUNNING);
        assert_int_equal(feed(o, "UP", 3, "UP", "UP"), KB_OK);
        assert_true(sample(scrape(o), BRK_TO) == 3);
        /* the producer's 2 are not the consumer's 3 going down */
        assert_int_equal(feed_producer(o, "DOWN", 2), KB_OK);
        assert_true(sample(scrape(o), BRK_TO) == 5);
        /* within 5 s of the last one read: skipped */
        assert_int_equal(feed_producer(o, "DOWN", 6), KB_OK);
        assert_true(sample(scrape(o), BRK_TO) == 5);
        /* the consumer's own figure goes on from its 3 */
        assert_int_equal(feed(o, "UP", 4, "UP", "UP"), KB_OK);
        assert_true(sample(scrape(o), BRK_TO) == 6);
        /* the producer's brokers all down: /readyz follows the consumer */
        assert_int_equal(readyz(o, body, sizeof(body)), 200);
        kb_ops_http_destroy(o);
}

/* Key ids in use: only key ids (short lowercase hex) under a known role;
 * anything that could be key material is refused and never shown. */
static void test_key_ids(void **state)
{
        static const char key[] = "9f86d081884c7d659a2feaa0c55ad015"
                                  "a3bf4f1b2b0b822cd15d6c15b0f00a08";
        kb_ops_http_t *o = mk("importer");
        const char *t;

        (void)state;
        assert_int_equal(kb_ops_http_key_id(o, "box", "3c2a1f0e9d8b7a65"),
                         KB_OK);
        assert_int_equal(kb_ops_http_key_id(o, "box", "0011223344556677"),
                         KB_OK);
        assert_int_equal(
            kb_ops_http_key_id(o, "partner_sign", "aabbccddeeff0011"), KB_OK);
        assert_int_equal(kb_ops_http_key_id(o, "box", key), KB_ERR_INVALID_ARG);
        assert_int_equal(kb_ops_http_key_id(o, "box", "3C2A1F0E9D8B7A65"),
                         KB_ERR_INVALID_ARG);
        assert_int_equal(kb_ops_http_key_id(o, "box", ""), KB_ERR_INVALID_ARG);
        assert_int_equal(kb_ops_http_key_id(o, "secret", "3c2a1f0e9d8b7a65"),
                         KB_ERR_INVALID_ARG);
        assert_int_equal(kb_ops_http_key_id(NULL, "box", key), KB_OK);
        t = scrape(o);
        assert_true(sample(t, "kyc_bridge_key_ids{daemon=\"importer\",role="
                              "\"box\",key_id=\"3c2a1f0e9d8b7a65\"}") == 1);
        assert_true(sample(t, "kyc_bridge_key_ids{daemon=\"importer\",role="
                              "\"box\",key_id=\"0011223344556677\"}") == 1);
        assert_true(
            sample(t, "kyc_bridge_key_ids{daemon=\"importer\",role="
                      "\"partner_sign\",key_id=\"aabbccddeeff0011\"}") == 1);
        assert_null(strstr(t, "9f86d081884c7d65"));
        assert_null(strstr(t, "3C2A"));
        assert_null(strstr(t, "secret"));
        assert_non_null(strstr(t, "# TYPE kyc_bridge_key_ids gauge\n"));
        /* box keys are the ones envelopes to us are sealed to */
        assert_null(strstr(t, "sealing keys"));
        assert_non_null(strstr(t, "box (our opening keys"));
        kb_ops_http_destroy(o);
}

/* Every outcome has its own series from the start. */
static void test_outcomes(void **state)
{
        static const char *const outcomes[] = { "published", "dead_lettered",
                                                "skipped", "replayed",
                                                "reconciled" };
        kb_ops_http_t *o = mk("importer");
        char series[256];
        const char *t;
        size_t i;

        (void)state;
        kb_ops_http_record(o, KB_OPS_REPLAYED);
        kb_ops_http_record(o, KB_OPS_REPLAYED);
        kb_ops_http_record(o, KB_OPS_RECONCILED);
        kb_ops_http_record(o, KB_OPS_PUBLISHED);
        kb_ops_http_record(o, KB_OPS_OUTCOMES); /* not an outcome */
        kb_ops_http_dead_letter(o, "expired");
        t = scrape(o);
        for (i = 0; i < KB_ARRAY_SIZE(outcomes); i++) {
                snprintf(series, sizeof(series),
                         "kyc_bridge_records_total{daemon=\"importer\","
                         "outcome=\"%s\"}",
                         outcomes[i]);
                assert_true(sample(t, series) == (i == 3 ? 2 : i == 2 ? 0 : 1));
        }
        kb_ops_http_destroy(o);
}

#define WF_KYC  "0b5e7c1a-2d3f-4e5a-9b6c-7d8e9f0a1b2c"
#define APP_Y   "d3b07384-d9a0-4c9b-8f1e-3a5c7e9b1d2f"
#define APP_Z   "9a1b2c3d-4e5f-4a6b-8c7d-0e1f2a3b4c5d"
#define SESSION "6f1c0d2e-93a4-4c55-8b1e-0a2b3c4d5e6f"

static const char *partners(void *opaque, const char *name)
{
        (void)opaque;
        return !strcmp(name, "y") ? APP_Y : !strcmp(name, "z") ? APP_Z : NULL;
}

static void apply(kb_wh_rules_t *rs, const char *status, int want)
{
        kb_wh_records_t *recs = kb_wh_records_new();
        kb_wh_delivery_t dlv;
        char body[1024], err[128];
        json_object *d;

        assert_non_null(recs);
        snprintf(body, sizeof(body),
                 "{\"session_id\":\"%s\",\"status\":\"%s\","
                 "\"webhook_type\":\"status.updated\",\"timestamp\":"
                 "1795312800,\"decision\":{\"workflow_id\":\"%s\","
                 "\"session_kind\":\"user\"}}",
                 SESSION, status, WF_KYC);
        d = kb_json_parse(body, strlen(body), 16, err, sizeof(err));
        assert_non_null(d);
        assert_int_equal(kb_wh_delivery_parse(d, &dlv, err, sizeof(err)),
                         KB_OK);
        dlv.auth = KB_WH_AUTH_V2;
        assert_int_equal(kb_wh_rules_apply(rs, &dlv, recs), want);
        json_object_put(d);
        kb_wh_records_destroy(recs);
}

/* Share requests of the webhook rules, by rule: every rule shown at 0
 * from the start, each match adds one per partner. */
static void test_rules(void **state)
{
        kb_ops_http_t *o = mk("issuer");
        kb_wh_rule_conf_t rc[2];
        kb_wh_rules_t *rs;
        char err[256];
        const char *t;

        (void)state;
        memset(rc, 0, sizeof(rc));
        rc[0].name = "kyc_approved";
        rc[0].workflow_id = WF_KYC;
        rc[0].statuses = "Approved";
        rc[0].partners = "y,z";
        rc[1].name = "kyc_declined";
        rc[1].workflow_id = WF_KYC;
        rc[1].statuses = "Declined";
        rc[1].partners = "y";
        rs = kb_wh_rules_new(rc, 2, "requests", 0, partners, NULL, err,
                             sizeof(err));
        assert_non_null(rs);
        assert_int_equal(kb_wh_rules_count(rs), 2);
        assert_string_equal(kb_wh_rules_name(rs, 1), "kyc_declined");
        assert_null(kb_wh_rules_name(rs, 2));
        kb_issuer_rules_metrics(rs, o);
        t = scrape(o);
        assert_true(sample(t, "kyc_bridge_webhook_share_requests_total{daemon="
                              "\"issuer\",rule="
                              "\"kyc_approved\"}") == 0);
        assert_true(sample(t, "kyc_bridge_webhook_share_requests_total{daemon="
                              "\"issuer\",rule="
                              "\"kyc_declined\"}") == 0);
        apply(rs, "Approved", 2);
        apply(rs, "Approved", 2);
        apply(rs, "Declined", 1);
        apply(rs, "In Review", 0);
        t = scrape(o);
        assert_true(sample(t, "kyc_bridge_webhook_share_requests_total{daemon="
                              "\"issuer\",rule="
                              "\"kyc_approved\"}") == 4);
        assert_true(sample(t, "kyc_bridge_webhook_share_requests_total{daemon="
                              "\"issuer\",rule="
                              "\"kyc_declined\"}") == 1);
        kb_wh_rules_destroy(rs);
        kb_ops_http_destroy(o);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_vendor_attempts),
                cmocka_unit_test(test_vendor_attempts_uncached),
                cmocka_unit_test(test_commit_and_handoff),
                cmocka_unit_test(test_brokers_readyz),
                cmocka_unit_test(test_producer_timeouts),
                cmocka_unit_test(test_key_ids),
                cmocka_unit_test(test_outcomes),
                cmocka_unit_test(test_rules),
        };

        if (kb_init() != KB_OK)
                return 1;
        return cmocka_run_group_tests(tests, NULL, NULL);
}
