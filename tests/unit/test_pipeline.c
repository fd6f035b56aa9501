/* test_pipeline.c -- the pipeline engine on librdkafka's mock cluster:
 * out-of-order completion, ordered release, every record once, offsets */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <pthread.h>
#include <stdatomic.h>
#include <unistd.h>
#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>

#include "kafka.h"
#include "log.h"
#include "pipeline.h"
#include "util.h"

#define N_RECORDS   300
#define N_PARTS     3
#define MAX_PENDING 40

typedef struct pend_s {
        kb_rec_t *rec;
        int64_t due_us;
} pend_t;

typedef struct proc_s {
        pend_t pend[MAX_PENDING * 4];
        int npend;
        int started, finished_committed, finished_dropped;
        _Atomic int done_total; /* read by the test's main thread */
        unsigned seed;
} proc_t;

static void p_start(void *opaque, kb_rec_t *rec)
{
        proc_t *p = opaque;

        assert_true(p->npend < (int)KB_ARRAY_SIZE(p->pend));
        p->pend[p->npend].rec = rec;
        /* finish in 0..20 ms: records complete out of order */
        p->pend[p->npend].due_us = kb_mono_us() + rand_r(&p->seed) % 20000;
        p->npend++;
        p->started++;
}

static int p_poll(void *opaque, int timeout_ms)
{
        proc_t *p = opaque;
        int64_t now = kb_mono_us();
        int i, n = 0;

        (void)timeout_ms;
        for (i = 0; i < p->npend;) {
                pend_t *e = &p->pend[i];
                if (e->due_us <= now) {
                        size_t vlen;
                        const void *v = kb_rec_value(e->rec, &vlen);
                        /* same partition number out as in: the output
                         * order per partition shows the release order */
                        assert_int_equal(
                            kb_rec_produce(e->rec, "out",
                                           kb_rec_partition(e->rec), NULL, 0, v,
                                           vlen, NULL),
                            KB_OK);
                        kb_rec_done(e->rec);
                        p->done_total++;
                        *e = p->pend[--p->npend];
                        n++;
                } else {
                        i++;
                }
        }
        return n;
}

static int p_has_capacity(void *opaque)
{
        proc_t *p = opaque;

        return p->npend < MAX_PENDING;
}

static void p_on_finish(void *opaque, kb_rec_t *rec, int committed)
{
        proc_t *p = opaque;

        (void)rec;
        if (committed)
                p->finished_committed++;
        else
                p->finished_dropped++;
}

typedef struct runner_s {
        kb_pipeline_t *pl;
        volatile sig_atomic_t *stop;
        int rc;
} runner_t;

static void *run_pipeline(void *arg)
{
        runner_t *r = arg;

        r->rc = kb_pipeline_run(r->pl, r->stop);
        return NULL;
}

static void produce_inputs(const char *bootstrap)
{
        rd_kafka_conf_t *rkc = rd_kafka_conf_new();
        char err[256], val[32];
        rd_kafka_t *rk;
        int i;

        assert_int_equal(rd_kafka_conf_set(rkc, "bootstrap.servers", bootstrap,
                                           err, sizeof(err)),
                         RD_KAFKA_CONF_OK);
        rk = rd_kafka_new(RD_KAFKA_PRODUCER, rkc, err, sizeof(err));
        assert_non_null(rk);
        for (i = 0; i < N_RECORDS; i++) {
                snprintf(val, sizeof(val), "%d:%04d", i % N_PARTS, i);
                assert_int_equal(
                    rd_kafka_producev(rk, RD_KAFKA_V_TOPIC("in"),
                                      RD_KAFKA_V_PARTITION(i % N_PARTS),
                                      RD_KAFKA_V_VALUE(val, strlen(val)),
                                      RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
                                      RD_KAFKA_V_END),
                    0);
        }
        assert_int_equal(rd_kafka_flush(rk, 10000), 0);
        rd_kafka_destroy(rk);
}

/* Reads every record of "out"; checks each input once, in order per
 * partition. */
static void check_outputs(const char *bootstrap)
{
        rd_kafka_conf_t *rkc = rd_kafka_conf_new();
        rd_kafka_topic_partition_list_t *parts;
        char err[256];
        rd_kafka_t *rk;
        int seen[N_RECORDS] = { 0 }, last[N_PARTS], got = 0, i;
        int64_t deadline = kb_mono_ms() + 15000;

        for (i = 0; i < N_PARTS; i++)
                last[i] = -1;
        rd_kafka_conf_set(rkc, "bootstrap.servers", bootstrap, err,
                          sizeof(err));
        rd_kafka_conf_set(rkc, "group.id", "checker", err, sizeof(err));
        rk = rd_kafka_new(RD_KAFKA_CONSUMER, rkc, err, sizeof(err));
        assert_non_null(rk);
        parts = rd_kafka_topic_partition_list_new(N_PARTS);
        for (i = 0; i < N_PARTS; i++)
                rd_kafka_topic_partition_list_add(parts, "out", i)->offset =
                    RD_KAFKA_OFFSET_BEGINNING;
        assert_int_equal(rd_kafka_assign(rk, parts), 0);
        rd_kafka_topic_partition_list_destroy(parts);
        while (got < N_RECORDS && kb_mono_ms() < deadline) {
                rd_kafka_message_t *m = rd_kafka_consumer_poll(rk, 100);
                char buf[32];
                int part, idx;
                if (!m)
                        continue;
                if (!m->err) {
                        assert_true(m->len < sizeof(buf));
                        memcpy(buf, m->payload, m->len);
                        buf[m->len] = '\0';
                        assert_int_equal(sscanf(buf, "%d:%d", &part, &idx), 2);
                        assert_int_equal(part, m->partition);
                        assert_true(idx > last[part]);
                        last[part] = idx;
                        seen[idx]++;
                        got++;
                }
                rd_kafka_message_destroy(m);
        }
        for (i = 0; i < N_RECORDS; i++)
                assert_int_equal(seen[i], 1);
        rd_kafka_consumer_close(rk);
        rd_kafka_destroy(rk);
}

static void check_committed(const char *bootstrap)
{
        rd_kafka_conf_t *rkc = rd_kafka_conf_new();
        rd_kafka_topic_partition_list_t *parts;
        char err[256];
        rd_kafka_t *rk;
        int i;

        rd_kafka_conf_set(rkc, "bootstrap.servers", bootstrap, err,
                          sizeof(err));
        rd_kafka_conf_set(rkc, "group.id", "pipeline-test", err, sizeof(err));
        rk = rd_kafka_new(RD_KAFKA_CONSUMER, rkc, err, sizeof(err));
        assert_non_null(rk);
        parts = rd_kafka_topic_partition_list_new(N_PARTS);
        for (i = 0; i < N_PARTS; i++)
                rd_kafka_topic_partition_list_add(parts, "in", i);
        assert_int_equal(rd_kafka_committed(rk, parts, 10000), 0);
        for (i = 0; i < N_PARTS; i++)
                assert_int_equal(parts->elems[i].offset, N_RECORDS / N_PARTS);
        rd_kafka_topic_partition_list_destroy(parts);
        rd_kafka_destroy(rk);
}

static void test_out_of_order_completion_is_released_in_order(void **state)
{
        static const char *const topics[] = { "in", NULL };
        static const char *const cextra[] = { "group.id",
                                              "pipeline-test",
                                              "session.timeout.ms",
                                              "6000",
                                              "heartbeat.interval.ms",
                                              "2000",
                                              "fetch.wait.max.ms",
                                              "10",
                                              NULL };
        static const char *const pextra[] = { "transactional.id",
                                              "pipeline-test-tx", NULL };
        static const kb_pipeline_ops_t ops = { p_start, p_poll, p_has_capacity,
                                               NULL, p_on_finish };
        volatile sig_atomic_t stop = 0;
        rd_kafka_mock_cluster_t *mc;
        rd_kafka_conf_t *hostconf = rd_kafka_conf_new();
        kb_pipeline_conf_t pc;
        kb_pipeline_stats_t st;
        kb_pipeline_t *pl;
        rd_kafka_t *host;
        char err[512], bootstrap[256];
        proc_t *p = calloc(1, sizeof(*p));

        (void)state;
        assert_non_null(p);
        p->seed = 42;
        rd_kafka_conf_set(hostconf, "log_level", "3", err, sizeof(err));
        host = rd_kafka_new(RD_KAFKA_PRODUCER, hostconf, err, sizeof(err));
        assert_non_null(host);
        mc = rd_kafka_mock_cluster_new(host, 1);
        assert_non_null(mc);
        kb_strlcpy(bootstrap, rd_kafka_mock_cluster_bootstraps(mc),
                   sizeof(bootstrap));
        assert_int_equal(rd_kafka_mock_topic_create(mc, "in", N_PARTS, 1), 0);
        assert_int_equal(rd_kafka_mock_topic_create(mc, "out", N_PARTS, 1), 0);
        produce_inputs(bootstrap);

        memset(&pc, 0, sizeof(pc));
        pc.consumer_conf = kb_kafka_conf_new(NULL, RD_KAFKA_CONSUMER, cextra,
                                             err, sizeof(err));
        pc.producer_conf = kb_kafka_conf_new(NULL, RD_KAFKA_PRODUCER, pextra,
                                             err, sizeof(err));
        assert_non_null(pc.consumer_conf);
        assert_non_null(pc.producer_conf);
        rd_kafka_conf_set(pc.consumer_conf, "bootstrap.servers", bootstrap, err,
                          sizeof(err));
        rd_kafka_conf_set(pc.producer_conf, "bootstrap.servers", bootstrap, err,
                          sizeof(err));
        pc.topics = topics;
        pc.commit_interval_ms = 50;
        pc.commit_max_records = 64;
        pc.max_buffered = 1000;
        pc.drain_timeout_ms = 5000;
        pc.at_least_once = 1; /* the mock keeps no transactional offsets */
        pl = kb_pipeline_new(&pc, &ops, p, err, sizeof(err));
        assert_non_null(pl);
        {
                runner_t r = { pl, &stop, -1 };
                pthread_t th;
                int64_t deadline = kb_mono_ms() + 60000;
                assert_int_equal(pthread_create(&th, NULL, run_pipeline, &r),
                                 0);
                while (atomic_load(&p->done_total) < N_RECORDS &&
                       kb_mono_ms() < deadline)
                        usleep(10000);
                usleep(500000); /* let the last transaction commit */
                stop = 1;
                assert_int_equal(pthread_join(th, NULL), 0);
                assert_int_equal(r.rc, KB_OK);
        }
        kb_pipeline_stats(pl, &st);
        kb_pipeline_destroy(pl);

        assert_int_equal(p->started, N_RECORDS);
        assert_int_equal(p->finished_committed, N_RECORDS);
        assert_int_equal(p->finished_dropped, 0);
        assert_int_equal((int)st.consumed, N_RECORDS);
        assert_int_equal((int)st.produced, N_RECORDS);
        assert_true(st.txn_commits >= 2); /* 64 per transaction at most */
        check_outputs(bootstrap);
        check_committed(bootstrap);
        rd_kafka_mock_cluster_destroy(mc);
        rd_kafka_destroy(host);
        free(p);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(
                    test_out_of_order_completion_is_released_in_order),
        };

        kb_log_setup(KB_LOG_WARN, 0, 2, "test_pipeline");
        return cmocka_run_group_tests(tests, NULL, NULL);
}
