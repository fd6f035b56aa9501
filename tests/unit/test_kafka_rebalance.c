/* test_kafka_rebalance.c -- partitions revoked from a member while its
 * calls are in flight, on librdkafka's mock cluster: the records it could
 * not finish within the drain are abandoned (and finished by the processor
 * later), the new owner processes them, every input is committed once */
#include "test_kafka_mock.h"

static void test_revoke_with_calls_in_flight(void **state)
{
        atomic_int stop_a = 0, stop_b = 0;
        t_shared_t *sh = calloc(1, sizeof(*sh));
        t_proc_t *a = calloc(1, sizeof(*a)), *b = calloc(1, sizeof(*b));
        kb_pipeline_conf_t tweak;
        kb_pipeline_stats_t sa, sb;
        kb_pipeline_t *pa, *pb;
        t_runner_t ra, rb;
        t_world_t w;
        int64_t deadline;

        (void)state;
        assert_non_null(sh);
        assert_non_null(a);
        assert_non_null(b);
        t_proc_init(a, sh, 21);
        t_proc_init(b, sh, 22);
        /* A holds every call it starts until the test opens its gate:
         * when B joins, A's calls on the partitions it must give up are
         * in flight, and stay so past the drain timeout. */
        atomic_store(&a->gate, 0);
        a->max_pending = T_NREC; /* takes in every record: all partitions */
        t_world_new(&w);
        t_produce_inputs(&w, 0, T_NREC);
        memset(&tweak, 0, sizeof(tweak));
        tweak.drain_timeout_ms = 200;
        pa = t_pipeline_new(&w, "rebalance-test", "rebalance-a", NULL, 1, a,
                            &tweak);
        t_run_start(&ra, pa, &stop_a);
        deadline = kb_mono_ms() + T_WAIT_MS;
        while ((!atomic_load(&sh->attempts[0]) ||
                !atomic_load(&sh->attempts[1]) ||
                !atomic_load(&sh->attempts[2])) &&
               kb_mono_ms() < deadline)
                usleep(20000);
        /* A has calls in flight on every partition */
        assert_true(atomic_load(&sh->attempts[0]) > 0);
        assert_true(atomic_load(&sh->attempts[1]) > 0);
        assert_true(atomic_load(&sh->attempts[2]) > 0);
        pb = t_pipeline_new(&w, "rebalance-test", "rebalance-b", NULL, 1, b,
                            &tweak);
        t_run_start(&rb, pb, &stop_b);
        /* B gets a partition of its own and works through it */
        deadline = kb_mono_ms() + T_WAIT_MS;
        while (atomic_load(&b->done_total) == 0 && kb_mono_ms() < deadline)
                usleep(20000);
        assert_true(atomic_load(&b->done_total) > 0);
        atomic_store(&a->gate, 1);
        assert_true(t_wait_all_committed(sh));
        atomic_store(&stop_a, 1);
        atomic_store(&stop_b, 1);
        assert_int_equal(t_run_join(&ra), KB_OK);
        assert_int_equal(t_run_join(&rb), KB_OK);
        kb_pipeline_stats(pa, &sa);
        kb_pipeline_stats(pb, &sb);
        t_proc_finish_all(a);
        t_proc_finish_all(b);
        kb_pipeline_destroy(pa);
        kb_pipeline_destroy(pb);
        kb_log_notice("test",
                      "A: %d started, %d orphaned, %d orphans finished; B: "
                      "%d started",
                      a->started, (int)sa.orphaned, a->orphans_done,
                      b->started);
        /* A's held calls on the revoked partition were abandoned, and
         * finished by its processor afterwards without outputs */
        assert_true(sa.orphaned > 0);
        assert_true(a->orphans_done > 0);
        assert_true(a->finished_dropped > 0);
        /* and processed by B */
        assert_true(b->finished_committed > 0);
        assert_int_equal(a->finished_committed + b->finished_committed, T_NREC);
        t_check_outputs(&w, sh);
        t_world_destroy(&w);
        free(a);
        free(b);
        free(sh);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_revoke_with_calls_in_flight),
        };

        t_main_setup("test_kafka_rebalance", KB_LOG_NOTICE);
        return cmocka_run_group_tests(tests, NULL, NULL);
}
