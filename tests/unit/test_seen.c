/* test_seen.c -- share_id memory on librdkafka's mock cluster: the first
 * load reads the whole state topic, later loads only what was written
 * since, with one state reader for the seen's lifetime */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>

#include "conf.h"
#include "log.h"
#include "seen.h"
#include "util.h"

#define NPARTS 3

static void produce_state(const char *bootstrap, int from, int to)
{
        rd_kafka_conf_t *rkc = rd_kafka_conf_new();
        char err[256], key[32], val[160];
        rd_kafka_t *rk;
        int i;

        assert_int_equal(rd_kafka_conf_set(rkc, "bootstrap.servers", bootstrap,
                                           err, sizeof(err)),
                         RD_KAFKA_CONF_OK);
        rk = rd_kafka_new(RD_KAFKA_PRODUCER, rkc, err, sizeof(err));
        assert_non_null(rk);
        for (i = from; i < to; i++) {
                snprintf(key, sizeof(key), "share-%d", i);
                snprintf(val, sizeof(val),
                         "{\"share_id\":\"%s\",\"outcome\":\"published\","
                         "\"at\":%lld,\"until\":%lld,\"ref\":\"ref-%d\"}",
                         key, (long long)kb_time_now(),
                         (long long)kb_time_now() + 3600, i);
                assert_int_equal(
                    rd_kafka_producev(rk, RD_KAFKA_V_TOPIC("state"),
                                      RD_KAFKA_V_PARTITION(i % NPARTS),
                                      RD_KAFKA_V_KEY(key, strlen(key)),
                                      RD_KAFKA_V_VALUE(val, strlen(val)),
                                      RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
                                      RD_KAFKA_V_END),
                    0);
        }
        assert_int_equal(rd_kafka_flush(rk, 60000), 0);
        rd_kafka_destroy(rk);
}

static void test_load_is_incremental(void **state)
{
        rd_kafka_conf_t *hostconf = rd_kafka_conf_new();
        rd_kafka_mock_cluster_t *mc;
        kb_seen_stats_t st;
        kb_conf_t *conf;
        kb_seen_t *sn;
        rd_kafka_t *host;
        char err[256];

        (void)state;
        rd_kafka_conf_set(hostconf, "log_level", "3", err, sizeof(err));
        host = rd_kafka_new(RD_KAFKA_PRODUCER, hostconf, err, sizeof(err));
        assert_non_null(host);
        mc = rd_kafka_mock_cluster_new(host, 1);
        assert_non_null(mc);
        assert_int_equal(rd_kafka_mock_topic_create(mc, "state", NPARTS, 1), 0);
        conf = kb_conf_new();
        assert_non_null(conf);
        assert_int_equal(kb_conf_set(conf, "kafka.bootstrap.servers",
                                     rd_kafka_mock_cluster_bootstraps(mc),
                                     "test", err, sizeof(err)),
                         0);
        sn = kb_seen_new(conf, "state", 3600, "test");
        assert_non_null(sn);

        /* empty topic: nothing to read, the load returns */
        assert_int_equal(kb_seen_load(sn), 0);
        kb_seen_stats(sn, &st);
        assert_int_equal((int)st.records_read, 0);
        assert_int_equal(kb_seen_count(sn), 0);

        produce_state(rd_kafka_mock_cluster_bootstraps(mc), 0, 50);
        assert_int_equal(kb_seen_load(sn), 0);
        kb_seen_stats(sn, &st);
        assert_int_equal((int)st.records_read, 50);
        assert_int_equal(kb_seen_count(sn), 50);
        assert_true(kb_seen_has(sn, "share-0"));
        assert_true(kb_seen_has(sn, "share-49"));
        assert_string_equal(kb_seen_ref_owner(sn, "ref-7"), "share-7");

        /* nothing new: nothing read */
        assert_int_equal(kb_seen_load(sn), 0);
        kb_seen_stats(sn, &st);
        assert_int_equal((int)st.records_read, 50);

        /* 7 new records (on every partition): only those are read */
        produce_state(rd_kafka_mock_cluster_bootstraps(mc), 50, 57);
        assert_false(kb_seen_has(sn, "share-56"));
        assert_int_equal(kb_seen_load(sn), 0);
        kb_seen_stats(sn, &st);
        assert_int_equal((int)st.records_read, 57);
        assert_int_equal(kb_seen_count(sn), 57);
        assert_true(kb_seen_has(sn, "share-50"));
        assert_true(kb_seen_has(sn, "share-56"));
        assert_int_equal((int)st.loads, 4);
        assert_int_equal((int)st.readers_created, 1);

        kb_seen_destroy(sn);
        kb_conf_destroy(conf);
        rd_kafka_mock_cluster_destroy(mc);
        rd_kafka_destroy(host);
}

/* A state topic that does not exist fails the load (the daemons refuse to
 * start) instead of waiting. */
static void test_missing_topic_fails(void **state)
{
        rd_kafka_conf_t *hostconf = rd_kafka_conf_new();
        rd_kafka_mock_cluster_t *mc;
        kb_conf_t *conf;
        kb_seen_t *sn;
        rd_kafka_t *host;
        char err[256];

        (void)state;
        rd_kafka_conf_set(hostconf, "log_level", "3", err, sizeof(err));
        host = rd_kafka_new(RD_KAFKA_PRODUCER, hostconf, err, sizeof(err));
        assert_non_null(host);
        mc = rd_kafka_mock_cluster_new(host, 1);
        assert_non_null(mc);
        rd_kafka_mock_topic_set_error(mc, "nostate",
                                      RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART);
        conf = kb_conf_new();
        assert_non_null(conf);
        assert_int_equal(kb_conf_set(conf, "kafka.bootstrap.servers",
                                     rd_kafka_mock_cluster_bootstraps(mc),
                                     "test", err, sizeof(err)),
                         0);
        sn = kb_seen_new(conf, "nostate", 3600, "test");
        assert_non_null(sn);
        assert_int_equal(kb_seen_load(sn), -1);
        kb_seen_destroy(sn);
        kb_conf_destroy(conf);
        rd_kafka_mock_cluster_destroy(mc);
        rd_kafka_destroy(host);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_load_is_incremental),
                cmocka_unit_test(test_missing_topic_fails),
        };

        kb_log_setup(getenv("KB_TEST_LOG")
                         ? (int)strtol(getenv("KB_TEST_LOG"), NULL, 10)
                         : KB_LOG_WARN,
                     0, 2, "test_seen");
        return cmocka_run_group_tests(tests, NULL, NULL);
}
