/* test_seen.c -- share_id memory on librdkafka's mock cluster: the first
 * load reads the whole state topic, later loads only what was written
 * since, with one state reader after the first; and the table itself */
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
        assert_false(kb_seen_ref_taken_by_other(sn, "ref-7", "share-7"));
        assert_true(kb_seen_ref_taken_by_other(sn, "ref-7", "share-8"));
        assert_false(kb_seen_ref_taken_by_other(sn, "ref-none", "share-8"));

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
        /* the first load's bulk reader, then the catch-up reader */
        assert_int_equal((int)st.readers_created, 2);

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

/* ---- the table (no Kafka: kb_seen_new() with no configuration) ---- */

static int64_t fake_now = 1000000;

static int64_t fake_clock(void)
{
        return fake_now;
}

static kb_seen_t *table_new(int64_t window)
{
        kb_seen_t *sn = kb_seen_new(NULL, "state", window, "test");

        assert_non_null(sn);
        kb_seen_set_clock(sn, fake_clock);
        return sn;
}

typedef struct hooks_s {
        int commits, forgets, expires;
        char last_ref[64];
} hooks_t;

static void h_commit(void *opaque, const char *share_id, const char *ref)
{
        hooks_t *h = opaque;

        (void)share_id;
        h->commits++;
        snprintf(h->last_ref, sizeof(h->last_ref), "%s", ref ? ref : "");
}

static void h_forget(void *opaque, const char *share_id)
{
        (void)share_id;
        ((hooks_t *)opaque)->forgets++;
}

static void h_expire(void *opaque, int64_t now)
{
        (void)now;
        ((hooks_t *)opaque)->expires++;
}

/* claim -> pending; commit -> remembered; forget drops a pending claim
 * only; the observer hears each */
static void test_claim_commit_forget(void **state)
{
        kb_seen_t *sn = table_new(100);
        kb_seen_observer_t obs;
        hooks_t h;

        (void)state;
        memset(&h, 0, sizeof(h));
        memset(&obs, 0, sizeof(obs));
        obs.commit = h_commit;
        obs.forget = h_forget;
        obs.expire = h_expire;
        obs.opaque = &h;
        kb_seen_set_observer(sn, &obs);
        fake_now = 1000000;

        assert_false(kb_seen_has(sn, "a"));
        assert_int_equal(kb_seen_claim(sn, "a"), 0);
        assert_true(kb_seen_has(sn, "a"));
        assert_int_equal(kb_seen_count(sn), 1);
        kb_seen_forget(sn, "a");
        assert_false(kb_seen_has(sn, "a"));
        assert_int_equal(kb_seen_count(sn), 0);
        assert_int_equal(h.forgets, 1);

        /* taken again after a forget */
        assert_int_equal(kb_seen_claim(sn, "a"), 0);
        kb_seen_commit(sn, "a", "sess-a");
        assert_int_equal(h.commits, 1);
        assert_string_equal(h.last_ref, "sess-a");
        assert_true(kb_seen_has(sn, "a"));
        /* committed: a forget no longer drops it */
        kb_seen_forget(sn, "a");
        assert_true(kb_seen_has(sn, "a"));
        assert_int_equal(kb_seen_count(sn), 1);
        /* a claim of a remembered share_id changes nothing else */
        assert_int_equal(kb_seen_claim(sn, "a"), 0);
        assert_int_equal(kb_seen_count(sn), 1);
        kb_seen_commit(sn, "a", NULL);
        assert_false(kb_seen_has(sn, "b"));
        assert_false(kb_seen_has(sn, ""));
        kb_seen_expire(sn);
        assert_int_equal(h.expires, 1);
        kb_seen_destroy(sn);
}

/* the window: remembered until `until` (inclusive); past it the entry is
 * not "had" but counted until kb_seen_expire(); pending entries never
 * expire; an expired entry is claimed again */
static void test_expire(void **state)
{
        kb_seen_t *sn = table_new(100);

        (void)state;
        fake_now = 2000000;
        assert_int_equal(kb_seen_claim(sn, "old"), 0);
        kb_seen_commit(sn, "old", "sess-old");
        assert_int_equal(kb_seen_claim(sn, "inflight"), 0);
        fake_now += 100;
        assert_true(kb_seen_has(sn, "old"));
        fake_now++;
        assert_false(kb_seen_has(sn, "old"));
        assert_true(kb_seen_has(sn, "inflight"));
        assert_int_equal(kb_seen_count(sn), 2);
        assert_true(kb_seen_ref_taken_by_other(sn, "sess-old", "x"));
        kb_seen_expire(sn);
        assert_int_equal(kb_seen_count(sn), 1);
        assert_false(kb_seen_has(sn, "old"));
        /* its ref went with it */
        assert_false(kb_seen_ref_taken_by_other(sn, "sess-old", "x"));
        assert_true(kb_seen_has(sn, "inflight"));
        kb_seen_commit(sn, "inflight", NULL);
        /* committed: its until is the claim's (claimed 101 s ago) */
        assert_false(kb_seen_has(sn, "inflight"));
        kb_seen_expire(sn);
        assert_int_equal(kb_seen_count(sn), 0);

        /* an expired entry not swept yet is claimed again, for a new
         * window */
        assert_int_equal(kb_seen_claim(sn, "again"), 0);
        kb_seen_commit(sn, "again", NULL);
        fake_now += 101;
        assert_false(kb_seen_has(sn, "again"));
        assert_int_equal(kb_seen_claim(sn, "again"), 0);
        assert_true(kb_seen_has(sn, "again"));
        kb_seen_commit(sn, "again", NULL);
        fake_now += 100;
        assert_true(kb_seen_has(sn, "again"));
        assert_int_equal(kb_seen_count(sn), 1);
        kb_seen_destroy(sn);
}

/* a ref belongs to the share_id that committed it last, while that one
 * is remembered */
static void test_ref_owner(void **state)
{
        kb_seen_t *sn = table_new(100);
        char sid[32], ref[32], other[32];
        int i;

        (void)state;
        fake_now = 3000000;
        assert_false(kb_seen_ref_taken_by_other(sn, "r1", "s1"));
        assert_false(kb_seen_ref_taken_by_other(sn, NULL, "s1"));
        assert_int_equal(kb_seen_claim(sn, "s1"), 0);
        kb_seen_commit(sn, "s1", "r1");
        assert_false(kb_seen_ref_taken_by_other(sn, "r1", "s1"));
        assert_true(kb_seen_ref_taken_by_other(sn, "r1", "s2"));
        assert_false(kb_seen_ref_taken_by_other(sn, "r2", "s2"));
        /* s2 commits the same ref: it is s2's now */
        assert_int_equal(kb_seen_claim(sn, "s2"), 0);
        kb_seen_commit(sn, "s2", "r1");
        assert_true(kb_seen_ref_taken_by_other(sn, "r1", "s1"));
        assert_false(kb_seen_ref_taken_by_other(sn, "r1", "s2"));
        /* s1 commits another ref: r1 stays s2's */
        kb_seen_commit(sn, "s1", "r3");
        assert_false(kb_seen_ref_taken_by_other(sn, "r1", "s2"));
        assert_true(kb_seen_ref_taken_by_other(sn, "r3", "s2"));
        /* a share_id never claimed takes no ref */
        kb_seen_commit(sn, "s9", "r9");
        assert_false(kb_seen_ref_taken_by_other(sn, "r9", "s1"));

        /* across many rebuilds every ref keeps its owner */
        for (i = 0; i < 100000; i++) {
                snprintf(sid, sizeof(sid), "share-%d", i);
                snprintf(ref, sizeof(ref), "sess-%d", i);
                assert_int_equal(kb_seen_claim(sn, sid), 0);
                kb_seen_commit(sn, sid, ref);
        }
        for (i = 0; i < 100000; i++) {
                snprintf(sid, sizeof(sid), "share-%d", i);
                snprintf(ref, sizeof(ref), "sess-%d", i);
                snprintf(other, sizeof(other), "share-%d", i + 1);
                assert_false(kb_seen_ref_taken_by_other(sn, ref, sid));
                assert_true(kb_seen_ref_taken_by_other(sn, ref, other));
        }
        assert_true(kb_seen_ref_taken_by_other(sn, "r1", "s1"));
        kb_seen_destroy(sn);
}

/* 1,000,000 share_ids, each with a ref: none taken for another (no
 * digest collision merged two), none of 1,000,000 others "had", under 46
 * bytes a share_id; expired, the memory goes back */
static void test_million(void **state)
{
        kb_seen_t *sn = table_new(100);
        char sid[32], ref[32];
        size_t bytes;
        int i;

        (void)state;
        fake_now = 4000000;
        for (i = 0; i < 1000000; i++) {
                snprintf(sid, sizeof(sid), "%08x-share-%d", i * 2654435761u, i);
                snprintf(ref, sizeof(ref), "sess-%d", i);
                assert_int_equal(kb_seen_claim(sn, sid), 0);
                kb_seen_commit(sn, sid, ref);
        }
        assert_int_equal(kb_seen_count(sn), 1000000);
        bytes = kb_seen_table_bytes(sn);
        print_message("table: %zu bytes, %.1f a share_id (with refs)\n", bytes,
                      (double)bytes / 1000000);
        assert_true(bytes < 46u * 1000000);
        for (i = 0; i < 1000000; i++) {
                snprintf(sid, sizeof(sid), "%08x-share-%d", i * 2654435761u, i);
                assert_true(kb_seen_has(sn, sid));
                snprintf(sid, sizeof(sid), "%08x-other-%d", i * 2654435761u, i);
                assert_false(kb_seen_has(sn, sid));
        }
        fake_now += 101;
        kb_seen_expire(sn);
        assert_int_equal(kb_seen_count(sn), 0);
        assert_true(kb_seen_table_bytes(sn) < 4096);
        kb_seen_destroy(sn);
}

/* the issuer's table (no refs): 16 bytes a slot */
static void test_issuer_bytes(void **state)
{
        kb_seen_t *sn = table_new(100);
        char sid[40];
        size_t n, bytes;

        (void)state;
        fake_now = 5000000;
        for (n = 1; n <= 300000; n++) {
                snprintf(sid, sizeof(sid), "req-%zu", n);
                assert_int_equal(kb_seen_claim(sn, sid), 0);
                kb_seen_commit(sn, sid, NULL);
                bytes = kb_seen_table_bytes(sn);
                /* 16 bytes a slot, the load never below 72 % once grown */
                if (n > 1000)
                        assert_true(bytes <= 24 * n);
        }
        kb_seen_destroy(sn);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_load_is_incremental),
                cmocka_unit_test(test_missing_topic_fails),
                cmocka_unit_test(test_claim_commit_forget),
                cmocka_unit_test(test_expire),
                cmocka_unit_test(test_ref_owner),
                cmocka_unit_test(test_million),
                cmocka_unit_test(test_issuer_bytes),
        };

        kb_log_setup(getenv("KB_TEST_LOG")
                         ? (int)strtol(getenv("KB_TEST_LOG"), NULL, 10)
                         : KB_LOG_WARN,
                     0, 2, "test_seen");
        return cmocka_run_group_tests(tests, NULL, NULL);
}
