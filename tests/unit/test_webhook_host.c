/* test_webhook_host.c -- a daemon's webhook host: built from webhook.*
 * options, stopped under a steady stream of deliveries on several server
 * threads, its "refused" counter */
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
#include <unistd.h>

#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>
#include <sodium.h>

#include "conf.h"
#include "json.h"
#include "log.h"
#include "util.h"
#include "webhook_host.h"
#include "webhook_sig.h"

#define SECRET_ENV "KB_TEST_WEBHOOK_HOST_SECRET"
#define SECRET     "whsec_host_unit"
#define NCLIENTS   8
#define CLIENT_CAP_MS                                                          \
        20000 /* the clients stop by themselves after this at the latest */

typedef struct world_s {
        rd_kafka_t *host;
        rd_kafka_mock_cluster_t *mc;
        kb_conf_t *conf;
        kb_wh_host_t *wh;
        atomic_int actions;
} world_t;

/* Slow on purpose (the contract says "must not block"): with several
 * server threads, handlers then always hold the host's read lock while
 * they queue for the intake's action lock. Causes no record. */
static int slow_action(void *opaque, const kb_wh_delivery_t *dlv,
                       kb_wh_records_t *out, char *errstr, size_t errstr_size)
{
        world_t *w = opaque;

        (void)dlv;
        (void)out;
        (void)errstr;
        (void)errstr_size;
        atomic_fetch_add(&w->actions, 1);
        usleep(20000);
        return KB_OK;
}

static void set(kb_conf_t *conf, const char *key, const char *value)
{
        char err[256];

        if (kb_conf_set(conf, key, value, "test", err, sizeof(err)) != 0)
                fail_msg("%s: %s", key, err);
}

static void world_new(world_t *w, const char *threads)
{
        rd_kafka_conf_t *rkc = rd_kafka_conf_new();
        char err[512];

        memset(w, 0, sizeof(*w));
        atomic_init(&w->actions, 0);
        rd_kafka_conf_set(rkc, "log_level", "3", err, sizeof(err));
        w->host = rd_kafka_new(RD_KAFKA_PRODUCER, rkc, err, sizeof(err));
        assert_non_null(w->host);
        w->mc = rd_kafka_mock_cluster_new(w->host, 1);
        assert_non_null(w->mc);
        assert_int_equal(setenv(SECRET_ENV, SECRET, 1), 0);
        w->conf = kb_conf_new();
        assert_non_null(w->conf);
        set(w->conf, "kafka.bootstrap.servers",
            rd_kafka_mock_cluster_bootstraps(w->mc));
        set(w->conf, "webhook.listen", "127.0.0.1:0");
        set(w->conf, "webhook.secret", "env:" SECRET_ENV);
        set(w->conf, "webhook.threads", threads);
        set(w->conf, "webhook.kafka_timeout_ms", "1000");
        set(w->conf, "webhook.retry_after_s", "9");
        assert_int_equal(kb_wh_host_new(w->conf, "importer", slow_action, w,
                                        &w->wh, err, sizeof(err)),
                         KB_OK);
        assert_non_null(w->wh);
        if (kb_wh_host_start(w->wh, err, sizeof(err)) != KB_OK)
                fail_msg("kb_wh_host_start: %s", err);
        assert_true(kb_wh_host_port(w->wh) > 0);
}

static void world_destroy(world_t *w)
{
        kb_wh_host_destroy(w->wh);
        kb_conf_destroy(w->conf);
        rd_kafka_mock_cluster_destroy(w->mc);
        rd_kafka_destroy(w->host);
}

/* ---------------------------------------------------------------------- */
/* Clients: signed deliveries, one after the other, each new */

typedef struct client_s {
        pthread_t t;
        int id, port;
        atomic_int *stop;
        int64_t cap_ms; /* mono time at which to stop anyway */
        /* results (read after the join) */
        int ok, unavailable, other, failed;
        int retry_after; /* a 503 carried Retry-After: 9 */
} client_t;

/* One POST; the status, or -1 when there was no answer. */
static int post_once(int port, const char *body, const char *ts, const char *v2,
                     int *retry_after)
{
        struct sockaddr_in sa;
        char req[4096], buf[8192];
        size_t len = 0;
        int n, status = -1, fd = socket(AF_INET, SOCK_STREAM, 0);

        if (fd < 0)
                return -1;
        n = snprintf(req, sizeof(req),
                     "POST /webhooks/vendor HTTP/1.1\r\nHost: x\r\n"
                     "Connection: close\r\nContent-Type: application/json\r\n"
                     "Content-Length: %zu\r\nX-Timestamp: %s\r\n"
                     "X-Signature-V2: %s\r\n\r\n%s",
                     strlen(body), ts, v2, body);
        memset(&sa, 0, sizeof(sa));
        sa.sin_family = AF_INET;
        sa.sin_port = htons((uint16_t)port);
        sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        if (n <= 0 || (size_t)n >= sizeof(req) ||
            connect(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0 ||
            write(fd, req, (size_t)n) != n)
                goto out;
        for (;;) {
                ssize_t r = read(fd, buf + len, sizeof(buf) - 1 - len);
                if (r <= 0 || len + (size_t)r == sizeof(buf) - 1)
                        break;
                len += (size_t)r;
        }
        buf[len] = '\0';
        if (sscanf(buf, "HTTP/1.1 %d", &status) != 1)
                status = -1;
        if (status == 503 && strstr(buf, "Retry-After: 9\r\n"))
                *retry_after = 1;
out:
        close(fd);
        return status;
}

static void *client_main(void *arg)
{
        client_t *c = arg;
        char sid[64], ts[24], v2[KB_WEBHOOK_SIG_HEX_BYTES];
        int i;

        for (i = 0; !atomic_load(c->stop) && kb_mono_ms() < c->cap_ms; i++) {
                json_object *o = json_object_new_object();
                int64_t now = kb_time_now();
                int st;

                snprintf(sid, sizeof(sid), "session-%d-%d", c->id, i);
                snprintf(ts, sizeof(ts), "%" PRId64, now);
                if (!o || kb_json_add_str(o, "session_id", sid) ||
                    kb_json_add_str(o, "status", "Approved") ||
                    kb_json_add_str(o, "webhook_type", "status.updated") ||
                    kb_json_add_i64(o, "timestamp", now) ||
                    kb_webhook_sign_v2(SECRET, now, o, v2) != KB_OK) {
                        json_object_put(o);
                        c->failed++;
                        break;
                }
                st = post_once(c->port, kb_json_str(o, NULL), ts, v2,
                               &c->retry_after);
                json_object_put(o);
                if (st == 200)
                        c->ok++;
                else if (st == 503)
                        c->unavailable++;
                else if (st == -1)
                        usleep(1000); /* the server is gone */
                else
                        c->other++;
        }
        return NULL;
}

typedef struct stopper_s {
        kb_wh_host_t *wh;
        atomic_int done;
} stopper_t;

static void *stopper_main(void *arg)
{
        stopper_t *s = arg;

        kb_wh_host_stop(s->wh);
        atomic_store(&s->done, 1);
        return NULL;
}

/* webhook.threads 4 and a steady stream of deliveries that keeps every
 * server thread inside the intake: the stop must not wait for the
 * stream to end (glibc's rwlock prefers readers). */
static void test_stop_under_load(void **state)
{
        world_t w;
        client_t c[NCLIENTS];
        stopper_t s;
        pthread_t t;
        atomic_int stop;
        kb_wh_intake_stats_t ws;
        int64_t t0, took, deadline;
        int i, ok = 0, unavailable = 0, other = 0, retry_after = 0;

        (void)state;
        world_new(&w, "4");
        atomic_init(&stop, 0);
        memset(c, 0, sizeof(c));
        for (i = 0; i < NCLIENTS; i++) {
                c[i].id = i;
                c[i].port = kb_wh_host_port(w.wh);
                c[i].stop = &stop;
                c[i].cap_ms = kb_mono_ms() + CLIENT_CAP_MS;
                assert_int_equal(
                    pthread_create(&c[i].t, NULL, client_main, &c[i]), 0);
        }
        /* the stream is on: the action runs */
        deadline = kb_mono_ms() + 10000;
        while (atomic_load(&w.actions) < 20 && kb_mono_ms() < deadline)
                usleep(10000);
        assert_true(atomic_load(&w.actions) >= 20);

        s.wh = w.wh;
        atomic_init(&s.done, 0);
        t0 = kb_mono_ms();
        assert_int_equal(pthread_create(&t, NULL, stopper_main, &s), 0);
        /* the clients keep going until the stop returned (or their cap) */
        while (!atomic_load(&s.done) && kb_mono_ms() < t0 + CLIENT_CAP_MS)
                usleep(5000);
        took = kb_mono_ms() - t0;
        atomic_store(&stop, 1);
        pthread_join(t, NULL);
        for (i = 0; i < NCLIENTS; i++) {
                pthread_join(c[i].t, NULL);
                assert_int_equal(c[i].failed, 0);
                ok += c[i].ok;
                unavailable += c[i].unavailable;
                other += c[i].other;
                retry_after |= c[i].retry_after;
        }
        print_message("stop took %lld ms; %d accepted, %d answered 503\n",
                      (long long)took, ok, unavailable);
        /* the stop waited for the handlers inside the intake, not for
         * the stream: well under the clients' cap */
        assert_true(took < 8000);
        assert_int_equal(other, 0);
        assert_true(ok >= 20);
        /* the stop's answer while it waited: 503 with Retry-After */
        assert_true(unavailable > 0);
        assert_true(retry_after);
        assert_int_equal(kb_wh_host_port(w.wh), 0);
        kb_wh_host_stats(w.wh, &ws);
        assert_int_equal((int)ws.accepted, atomic_load(&w.actions));
        world_destroy(&w);
}

/* "refused" is every 4xx answer, 409 included (one helper for every log
 * line that reports it). */
static void test_refused(void **state)
{
        kb_wh_intake_stats_t st;

        (void)state;
        memset(&st, 0, sizeof(st));
        st.accepted = 1000;
        st.duplicates = 2000;
        st.ignored = 3000;
        st.malformed = 1;
        st.unauthorized = 20;
        st.conflicts = 300;
        st.too_large = 4000;
        st.unavailable = 50000;
        st.failed = 600000;
        st.records_acked = 7000000;
        assert_int_equal(kb_wh_host_refused(&st), 4321);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_refused),
                cmocka_unit_test(test_stop_under_load),
        };
        const char *l = getenv("KB_TEST_LOG");

        if (sodium_init() < 0)
                return 1;
        kb_log_setup(l && *l ? (int)strtol(l, NULL, 10) : KB_LOG_WARN, 0, 2,
                     "test_webhook_host");
        return cmocka_run_group_tests(tests, NULL, NULL);
}
