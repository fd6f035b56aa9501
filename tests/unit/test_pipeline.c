/* test_pipeline.c -- the pipeline engine on librdkafka's mock cluster:
 * out-of-order completion, ordered release, every record once, offsets,
 * stopping from another thread or a signal handler, partition counts */
#include <signal.h>

#include "test_kafka_mock.h"

static void test_out_of_order_completion_is_released_in_order(void **state)
{
        atomic_int stop = 0;
        t_shared_t *sh = calloc(1, sizeof(*sh));
        t_proc_t *p = calloc(1, sizeof(*p));
        kb_pipeline_stats_t st;
        kb_pipeline_t *pl;
        t_runner_t r;
        t_world_t w;
        int64_t deadline, off[T_NPARTS];
        int i;

        (void)state;
        assert_non_null(sh);
        assert_non_null(p);
        t_proc_init(p, sh, 42);
        t_world_new(&w);
        t_produce_inputs(&w, 0, T_NREC);
        /* the mock keeps no transactional offsets: at_least_once */
        pl = t_pipeline_new(&w, "pipeline-test", "pipeline-test-tx", NULL, 1, p,
                            NULL);
        t_run_start(&r, pl, &stop);
        deadline = kb_mono_ms() + T_WAIT_MS;
        while (atomic_load(&p->done_total) < T_NREC && kb_mono_ms() < deadline)
                usleep(10000);
        assert_int_equal(atomic_load(&p->done_total), T_NREC);
        /* no sleep for "the last commit": the stop drains and commits */
        atomic_store(&stop, 1);
        assert_int_equal(t_run_join(&r), KB_OK);
        kb_pipeline_stats(pl, &st);
        kb_pipeline_destroy(pl);

        assert_int_equal(p->started, T_NREC);
        assert_int_equal(p->finished_committed, T_NREC);
        assert_int_equal(p->finished_dropped, 0);
        assert_int_equal((int)st.consumed, T_NREC);
        assert_int_equal((int)st.produced, T_NREC);
        assert_true(st.txn_commits >= 2); /* 64 per transaction at most */
        assert_int_equal(atomic_load(&p->offsets_backwards), 0);
        t_check_outputs(&w, sh);
        t_committed(&w, "pipeline-test", off);
        for (i = 0; i < T_NPARTS; i++)
                assert_int_equal(off[i], T_NREC / T_NPARTS);
        t_world_destroy(&w);
        free(p);
        free(sh);
}

static kb_pipeline_t *sig_pl;

static void on_sigusr1(int sig)
{
        (void)sig;
        kb_pipeline_stop(sig_pl);
}

/* kb_pipeline_stop() from a signal handler run on another thread than the
 * engine's, with no stop flag at all: run drains, commits and returns. */
static void test_stop_from_signal_handler(void **state)
{
        struct sigaction sa, old;
        t_shared_t *sh = calloc(1, sizeof(*sh));
        t_proc_t *p = calloc(1, sizeof(*p));
        t_runner_t r;
        t_world_t w;

        (void)state;
        assert_non_null(sh);
        assert_non_null(p);
        t_proc_init(p, sh, 7);
        t_world_new(&w);
        t_produce_inputs(&w, 0, T_NREC);
        sig_pl =
            t_pipeline_new(&w, "stop-test", "stop-test-tx", NULL, 1, p, NULL);
        memset(&sa, 0, sizeof(sa));
        sa.sa_handler = on_sigusr1;
        sigemptyset(&sa.sa_mask);
        assert_int_equal(sigaction(SIGUSR1, &sa, &old), 0);
        t_run_start(&r, sig_pl, NULL);
        /* stop only once some work is done, so there is something to
         * drain and commit on the way out */
        {
                int64_t deadline = kb_mono_ms() + T_WAIT_MS;
                while (atomic_load(&p->done_total) < T_NREC / 2 &&
                       kb_mono_ms() < deadline)
                        usleep(10000);
        }
        assert_true(atomic_load(&p->done_total) >= T_NREC / 2);
        {
                /* the handler runs on this (the main) thread */
                sigset_t set;
                sigemptyset(&set);
                sigaddset(&set, SIGUSR1);
                pthread_sigmask(SIG_UNBLOCK, &set, NULL);
                assert_int_equal(raise(SIGUSR1), 0);
        }
        assert_int_equal(t_run_join(&r), KB_OK);
        sigaction(SIGUSR1, &old, NULL);
        assert_string_equal(kb_pipeline_last_error(sig_pl), "");
        /* everything started was drained and committed */
        assert_int_equal(p->npend, 0);
        assert_int_equal(p->finished_committed, p->started);
        kb_pipeline_destroy(sig_pl);
        t_world_destroy(&w);
        free(p);
        free(sh);
}

/* Partition counts come from the metadata fetched at start and are
 * refreshed by the pipeline's own thread; a failed refresh keeps them. */
static void test_partition_count(void **state)
{
        t_shared_t *sh = calloc(1, sizeof(*sh));
        t_proc_t *p = calloc(1, sizeof(*p));
        kb_pipeline_conf_t tweak;
        kb_pipeline_stats_t st;
        kb_pipeline_t *pl;
        t_world_t w;
        int64_t deadline;

        (void)state;
        assert_non_null(sh);
        assert_non_null(p);
        t_proc_init(p, sh, 1);
        t_world_new(&w);
        memset(&tweak, 0, sizeof(tweak));
        tweak.metadata_refresh_ms = 50;
        pl = t_pipeline_new(&w, "count-test", "count-test-tx", NULL, 1, p,
                            &tweak);
        assert_int_equal(kb_pipeline_partition_count(pl, "out"), T_NPARTS);
        assert_int_equal(kb_pipeline_partition_count(pl, "in"), -1);
        assert_int_equal(kb_pipeline_partition_count(pl, "nope"), -1);
        deadline = kb_mono_ms() + T_WAIT_MS;
        do {
                usleep(20000);
                kb_pipeline_stats(pl, &st);
        } while (st.metadata_refreshes < 2 && kb_mono_ms() < deadline);
        assert_true(st.metadata_refreshes >= 2);
        assert_int_equal(kb_pipeline_partition_count(pl, "out"), T_NPARTS);
        /* the topic cannot be described any more: the count stays */
        rd_kafka_mock_topic_set_error(w.mc, "out",
                                      RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART);
        {
                uint64_t n0 = st.metadata_refreshes;
                deadline = kb_mono_ms() + T_WAIT_MS;
                do {
                        usleep(20000);
                        kb_pipeline_stats(pl, &st);
                } while (st.metadata_refreshes < n0 + 2 &&
                         kb_mono_ms() < deadline);
                assert_true(st.metadata_refreshes >= n0 + 2);
        }
        assert_int_equal(kb_pipeline_partition_count(pl, "out"), T_NPARTS);
        rd_kafka_mock_topic_set_error(w.mc, "out", RD_KAFKA_RESP_ERR_NO_ERROR);
        kb_pipeline_destroy(pl);
        t_world_destroy(&w);
        free(p);
        free(sh);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(
                    test_out_of_order_completion_is_released_in_order),
                cmocka_unit_test(test_stop_from_signal_handler),
                cmocka_unit_test(test_partition_count),
        };

        t_main_setup("test_pipeline", KB_LOG_WARN);
        return cmocka_run_group_tests(tests, NULL, NULL);
}
