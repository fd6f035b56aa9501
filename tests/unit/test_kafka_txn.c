/* test_kafka_txn.c -- the engine's transactions on librdkafka's mock
 * cluster: fatal errors stop it with their cause, a full producer queue
 * loses nothing, the offsets a real transactional commit sends, a slow
 * commit is waited for in one call; a failed final drain still leaves the
 * group before run returns */
#include "test_kafka_mock.h"

/* A fenced producer (the broker says another instance took our
 * transactional.id) is fatal: run returns KB_ERR_KAFKA and keeps the
 * cause; nothing of the failed transaction is committed. */
static void fenced(rd_kafka_resp_err_t inject)
{
        atomic_int stop = 0;
        t_shared_t *sh = calloc(1, sizeof(*sh));
        t_proc_t *p = calloc(1, sizeof(*p));
        kb_pipeline_stats_t st;
        kb_pipeline_t *pl;
        t_runner_t r;
        t_world_t w;
        int rc;

        assert_non_null(sh);
        assert_non_null(p);
        t_proc_init(p, sh, 3);
        t_world_new(&w);
        t_produce_inputs(&w, 0, T_NREC);
        pl = t_pipeline_new(&w, "fenced-test", "fenced-test-tx", NULL, 1, p,
                            NULL);
        /* the first commit's EndTxn */
        rd_kafka_mock_push_request_errors(w.mc, T_API_END_TXN, 1, inject);
        t_run_start(&r, pl, &stop);
        rc = t_run_join(&r); /* returns by itself: no stop */
        assert_int_equal(rc, KB_ERR_KAFKA);
        kb_log_notice("test", "last error: %s", kb_pipeline_last_error(pl));
        assert_non_null(
            strstr(kb_pipeline_last_error(pl), "commit_transaction: _FENCED"));
        kb_pipeline_stats(pl, &st);
        assert_int_equal((int)st.txn_commits, 0);
        assert_int_equal(p->finished_committed, 0);
        assert_int_equal(atomic_load(&p->commits), 0);
        t_proc_finish_all(p);
        kb_pipeline_destroy(pl);
        assert_int_equal(p->finished_dropped, p->started);
        t_world_destroy(&w);
        free(p);
        free(sh);
}

static void test_fatal_invalid_producer_epoch(void **state)
{
        (void)state;
        fenced(RD_KAFKA_RESP_ERR_INVALID_PRODUCER_EPOCH);
}

static void test_fatal_producer_fenced(void **state)
{
        (void)state;
        fenced(RD_KAFKA_RESP_ERR_PRODUCER_FENCED);
}

/* A local producer queue of 4 messages against transactions of up to 64:
 * produce waits for deliveries and goes on; nothing is lost or doubled. */
static void test_queue_full(void **state)
{
        static const char *const pextra[] = { "queue.buffering.max.messages",
                                              "4", "batch.num.messages", "2",
                                              NULL };
        atomic_int stop = 0;
        t_shared_t *sh = calloc(1, sizeof(*sh));
        t_proc_t *p = calloc(1, sizeof(*p));
        kb_pipeline_conf_t tweak;
        kb_pipeline_stats_t st;
        kb_pipeline_t *pl;
        t_runner_t r;
        t_world_t w;

        (void)state;
        assert_non_null(sh);
        assert_non_null(p);
        t_proc_init(p, sh, 5);
        p->delay_us = 0; /* all done at once: big transactions */
        t_world_new(&w);
        t_produce_inputs(&w, 0, T_NREC);
        memset(&tweak, 0, sizeof(tweak));
        tweak.commit_interval_ms = 200;
        pl = t_pipeline_new(&w, "qfull-test", "qfull-test-tx", pextra, 1, p,
                            &tweak);
        t_run_start(&r, pl, &stop);
        assert_true(t_wait_all_committed(sh));
        atomic_store(&stop, 1);
        assert_int_equal(t_run_join(&r), KB_OK);
        kb_pipeline_stats(pl, &st);
        kb_pipeline_destroy(pl);
        assert_true(st.queue_full > 0);
        assert_int_equal((int)st.produced, T_NREC);
        assert_int_equal((int)st.txn_aborts, 0);
        t_check_outputs(&w, sh);
        t_world_destroy(&w);
        free(p);
        free(sh);
}

/*
 * A real transactional commit (at_least_once = 0): the offsets go only
 * through send_offsets_to_transaction().
 *
 * Checked on this machine (Debian librdkafka 2.0.2): the mock broker
 * accepts TxnOffsetCommit but does not store the offsets; a fresh
 * consumer's rd_kafka_committed() returns RD_KAFKA_OFFSET_INVALID after
 * a committed transaction that sent offsets. So on this mock the test
 * checks the offsets the engine sent with each committed transaction (the
 * on_commit hook gets the very list given to send_offsets_to_transaction):
 * never going back, ending at the end of each input partition. Where the
 * broker does store them (a real Kafka, a newer mock), rd_kafka_committed()
 * must show the same offsets.
 */
static void test_transactional_offsets(void **state)
{
        atomic_int stop = 0;
        t_shared_t *sh = calloc(1, sizeof(*sh));
        t_proc_t *p = calloc(1, sizeof(*p));
        kb_pipeline_stats_t st;
        kb_pipeline_t *pl;
        t_runner_t r;
        t_world_t w;
        int64_t off[T_NPARTS];
        int i;

        (void)state;
        assert_non_null(sh);
        assert_non_null(p);
        t_proc_init(p, sh, 9);
        t_world_new(&w);
        t_produce_inputs(&w, 0, T_NREC);
        pl =
            t_pipeline_new(&w, "txoff-test", "txoff-test-tx", NULL, 0, p, NULL);
        t_run_start(&r, pl, &stop);
        assert_true(t_wait_all_committed(sh));
        atomic_store(&stop, 1);
        assert_int_equal(t_run_join(&r), KB_OK);
        kb_pipeline_stats(pl, &st);
        kb_pipeline_destroy(pl);
        assert_int_equal(atomic_load(&p->commits), (int)st.txn_commits);
        assert_true(st.txn_commits >= 2);
        /* every input committed once; the last transaction's figures */
        assert_int_equal(st.txn_records, T_NREC);
        assert_true(st.last_txn_records >= 1);
        assert_true(st.last_txn_records <= T_NREC);
        assert_true(st.last_txn_us > 0);
        assert_int_equal(atomic_load(&p->offsets_backwards), 0);
        for (i = 0; i < T_NPARTS; i++)
                assert_int_equal(atomic_load(&p->committed_off[i]),
                                 T_NREC / T_NPARTS);
        t_check_outputs(&w, sh);
        t_committed(&w, "txoff-test", off);
        for (i = 0; i < T_NPARTS; i++) {
                if (off[i] == RD_KAFKA_OFFSET_INVALID) {
                        kb_log_notice("test",
                                      "in[%d]: the broker stored no "
                                      "transactional offset (mock)",
                                      i);
                        continue;
                }
                assert_int_equal(off[i], T_NREC / T_NPARTS);
        }
        t_world_destroy(&w);
        free(p);
        free(sh);
}

/*
 * librdkafka 2.0.2 matches a transactional call's answers to its requests
 * by order only (one "has_result" slot per handle, rdkafka_txnmgr.c). A
 * commit_transaction() that timed out and is called again to resume can
 * then take a late answer for the request it is about to send: it once
 * returned success while the producer was still in CommitNotAcked, the
 * next begin_transaction() returned the commit's acknowledgement as its own
 * success, and produce() failed with "Erroneous state" (seen under load).
 * So the engine must call commit_transaction() once per transaction, with
 * a timeout long enough to never need resuming. Counted here from
 * librdkafka's "eos" debug log (texts of rd_kafka_txn_curr_api_begin() and
 * _return(), unchanged since 2.0), with every EndTxn answered 100 ms late:
 * far longer than any short wait the engine might slice the commit into.
 */
static atomic_int commit_calls, commit_resumable;

static void count_txn_log(const rd_kafka_t *rk, int level, const char *fac,
                          const char *buf)
{
        (void)rk;
        (void)level;
        if (strstr(buf, "Transactional API called: commit_transaction"))
                atomic_fetch_add(&commit_calls, 1);
        if (strstr(buf, "commit_transaction return resumable"))
                atomic_fetch_add(&commit_resumable, 1);
        kb_log_debug("rdkafka", "%s: %s", fac, buf);
}

static void count_txn_hook(rd_kafka_conf_t *conf)
{
        char err[256];

        assert_int_equal(
            rd_kafka_conf_set(conf, "debug", "eos", err, sizeof(err)),
            RD_KAFKA_CONF_OK);
        rd_kafka_conf_set_log_cb(conf, count_txn_log);
}

static void test_slow_commit_is_one_call(void **state)
{
        atomic_int stop = 0;
        t_shared_t *sh = calloc(1, sizeof(*sh));
        t_proc_t *p = calloc(1, sizeof(*p));
        kb_pipeline_stats_t st;
        kb_pipeline_t *pl;
        t_runner_t r;
        t_world_t w;
        int i;

        (void)state;
        assert_non_null(sh);
        assert_non_null(p);
        t_proc_init(p, sh, 13);
        t_world_new(&w);
        t_produce_inputs(&w, 0, T_NREC);
        atomic_store(&commit_calls, 0);
        atomic_store(&commit_resumable, 0);
        t_producer_conf_hook = count_txn_hook;
        pl = t_pipeline_new(&w, "slowcommit-test", "slowcommit-test-tx", NULL,
                            1, p, NULL);
        t_producer_conf_hook = NULL;
        /* more slow EndTxn answers than there will be transactions */
        for (i = 0; i < T_NREC; i++)
                assert_int_equal(rd_kafka_mock_broker_push_request_error_rtts(
                                     w.mc, 1, T_API_END_TXN, 1,
                                     RD_KAFKA_RESP_ERR_NO_ERROR, 100),
                                 0);
        t_run_start(&r, pl, &stop);
        assert_true(t_wait_all_committed(sh));
        atomic_store(&stop, 1);
        assert_int_equal(t_run_join(&r), KB_OK);
        kb_pipeline_stats(pl, &st);
        kb_pipeline_destroy(pl);
        kb_log_notice("test",
                      "%d commit(s), %d commit_transaction() call(s), %d "
                      "resumable return(s)",
                      (int)st.txn_commits, atomic_load(&commit_calls),
                      atomic_load(&commit_resumable));
        assert_int_equal((int)st.txn_aborts, 0);
        assert_true(st.txn_commits >= 2);
        assert_int_equal(atomic_load(&commit_calls), (int)st.txn_commits);
        assert_int_equal(atomic_load(&commit_resumable), 0);
        t_check_outputs(&w, sh);
        t_world_destroy(&w);
        free(p);
        free(sh);
}

/*
 * The final drain's commit fails (fenced): kb_pipeline_run() must still
 * leave the group before it returns, dropping every record it holds, so
 * that kb_pipeline_destroy() -- after the processor went away -- closes
 * nothing, drains nothing and commits nothing. Records are released but
 * held back by a long commit interval, some are in flight (gate closed)
 * when the stop comes.
 */
static void test_failed_final_drain_closes(void **state)
{
        kb_pipeline_conf_t tweak;
        atomic_int stop = 0;
        t_shared_t *sh = calloc(1, sizeof(*sh));
        t_proc_t *p = calloc(1, sizeof(*p));
        kb_pipeline_stats_t st;
        kb_pipeline_t *pl;
        t_runner_t r;
        t_world_t w;
        int64_t deadline;
        int i, rc, tries, fin, held = 0;

        (void)state;
        assert_non_null(sh);
        assert_non_null(p);
        t_proc_init(p, sh, 31);
        t_world_new(&w);
        t_produce_inputs(&w, 0, T_NREC);
        memset(&tweak, 0, sizeof(tweak));
        tweak.commit_interval_ms = 600000;
        tweak.commit_max_records = 100000;
        tweak.no_idle_commit = 1;
        tweak.drain_timeout_ms = 500;
        pl = t_pipeline_new(&w, "drain-fail", "drain-fail-tx", NULL, 1, p,
                            &tweak);
        t_run_start(&r, pl, &stop);
        deadline = kb_mono_ms() + T_WAIT_MS;
        while (atomic_load(&p->done_total) < 100 && kb_mono_ms() < deadline)
                usleep(5000);
        assert_true(atomic_load(&p->done_total) >= 100);
        /* from now on records are started and held */
        atomic_store(&p->gate, 0);
        while (kb_mono_ms() < deadline) {
                for (i = 0, tries = 0; i < T_NREC; i++)
                        tries += atomic_load(&sh->attempts[i]);
                if (tries > atomic_load(&p->done_total))
                        break;
                usleep(5000);
        }
        rd_kafka_mock_push_request_errors(w.mc, T_API_END_TXN, 1,
                                          RD_KAFKA_RESP_ERR_PRODUCER_FENCED);
        atomic_store(&stop, 1);
        rc = t_run_join(&r);
        assert_int_equal(rc, KB_ERR_KAFKA);
        assert_non_null(
            strstr(kb_pipeline_last_error(pl), "commit_transaction: _FENCED"));
        kb_pipeline_stats(pl, &st);
        assert_int_equal((int)st.txn_commits, 0);
        assert_int_equal(p->finished_committed, 0);
        /* closed: what the processor still runs is orphaned, everything
         * else dropped already */
        for (i = 0; i < p->npend; i++, held++)
                assert_true(kb_rec_orphaned(p->pend[i].rec));
        assert_true(held > 0);
        assert_int_equal(p->finished_dropped, p->started - held);
        t_proc_finish_all(p);
        assert_int_equal(p->finished_dropped, p->started);
        /* the processor is gone: destroy must not call it */
        fin = p->finished_dropped + p->finished_committed;
        kb_pipeline_destroy(pl);
        assert_int_equal(p->finished_dropped + p->finished_committed, fin);
        t_world_destroy(&w);
        free(p);
        free(sh);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_fatal_invalid_producer_epoch),
                cmocka_unit_test(test_fatal_producer_fenced),
                cmocka_unit_test(test_queue_full),
                cmocka_unit_test(test_transactional_offsets),
                cmocka_unit_test(test_slow_commit_is_one_call),
                cmocka_unit_test(test_failed_final_drain_closes),
        };

        t_main_setup("test_kafka_txn", KB_LOG_NOTICE);
        return cmocka_run_group_tests(tests, NULL, NULL);
}
