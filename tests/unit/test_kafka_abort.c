/* test_kafka_abort.c -- abortable transaction errors on librdkafka's mock
 * cluster: the engine aborts, rewinds, processes the records again, and
 * every input ends up committed once with its outputs once */
#include "test_kafka_mock.h"

/* Injects @p n errors @p err on the first @p api requests, runs every input
 * through, checks at least one abort + rewind and the outcome. */
static void abortable(int16_t api, rd_kafka_resp_err_t err, const char *grp)
{
        kb_pipeline_conf_t tweak;
        atomic_int stop = 0;
        t_shared_t *sh = calloc(1, sizeof(*sh));
        t_proc_t *p = calloc(1, sizeof(*p));
        kb_pipeline_stats_t st;
        kb_pipeline_t *pl;
        t_runner_t r;
        t_world_t w;
        int64_t off[T_NPARTS];
        char txid[64];
        int i, again = 0;

        assert_non_null(sh);
        assert_non_null(p);
        t_proc_init(p, sh, 11);
        t_world_new(&w);
        t_produce_inputs(&w, 0, T_NREC);
        snprintf(txid, sizeof(txid), "%s-tx", grp);
        memset(&tweak, 0, sizeof(tweak));
        /* librdkafka fails produce() to a topic a broker denied until the
         * topic's metadata is refreshed: refresh often */
        tweak.metadata_refresh_ms = 500;
        pl = t_pipeline_new(&w, grp, txid, NULL, 1, p, &tweak);
        rd_kafka_mock_push_request_errors(w.mc, api, 1, err);
        t_run_start(&r, pl, &stop);
        assert_true(t_wait_all_committed(sh));
        atomic_store(&stop, 1);
        assert_int_equal(t_run_join(&r), KB_OK);
        assert_string_equal(kb_pipeline_last_error(pl), "");
        kb_pipeline_stats(pl, &st);
        t_proc_finish_all(p);
        kb_pipeline_destroy(pl);
        kb_log_notice("test",
                      "%s: %d abort(s), %d rewind(s), %d start(s), %d "
                      "commit(s)",
                      rd_kafka_err2name(err), (int)st.txn_aborts,
                      (int)st.rewinds, p->started, (int)st.txn_commits);
        assert_true(st.txn_aborts >= 1);
        assert_true(st.rewinds >= 1);
        /* the aborted records were consumed and processed again */
        assert_true(p->started > T_NREC);
        assert_true((int)st.consumed > T_NREC);
        for (i = 0; i < T_NREC; i++)
                if (atomic_load(&sh->attempts[i]) > 1)
                        again++;
        assert_true(again > 0);
        assert_int_equal(atomic_load(&p->offsets_backwards), 0);
        t_check_outputs(&w, sh);
        t_committed(&w, grp, off);
        for (i = 0; i < T_NPARTS; i++)
                assert_int_equal(off[i], T_NREC / T_NPARTS);
        t_world_destroy(&w);
        free(p);
        free(sh);
}

static void test_endtxn_abortable(void **state)
{
        (void)state;
        abortable(T_API_END_TXN, RD_KAFKA_RESP_ERR_GROUP_AUTHORIZATION_FAILED,
                  "abort-endtxn");
}

static void test_add_offsets_abortable(void **state)
{
        (void)state;
        abortable(T_API_ADD_OFFSETS_TXN,
                  RD_KAFKA_RESP_ERR_GROUP_AUTHORIZATION_FAILED,
                  "abort-addoffsets");
}

static void test_txn_offset_commit_abortable(void **state)
{
        (void)state;
        abortable(T_API_TXN_OFFSET_CMT,
                  RD_KAFKA_RESP_ERR_GROUP_AUTHORIZATION_FAILED,
                  "abort-txnoffsetcommit");
}

static void test_produce_abortable(void **state)
{
        (void)state;
        abortable(T_API_PRODUCE, RD_KAFKA_RESP_ERR_TOPIC_AUTHORIZATION_FAILED,
                  "abort-produce");
}

/*
 * A rewind goes back to what the engine itself committed last: the first
 * transaction commits, the second one's EndTxn fails (abortable), and with
 * at_least_once = 0 the mock broker (librdkafka 2.0.2) stores no offsets
 * at all, so rd_kafka_committed() knows nothing. Rewinding to the broker's
 * offsets would re-read the first transaction's inputs from the beginning
 * and commit them twice; the engine knows, per partition, the offsets it
 * committed in this assignment and must seek there.
 */
static void test_rewind_to_own_commits(void **state)
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
        t_proc_init(p, sh, 17);
        t_world_new(&w);
        t_produce_inputs(&w, 0, T_NREC);
        pl =
            t_pipeline_new(&w, "rewind-own", "rewind-own-tx", NULL, 0, p, NULL);
        /* the first commit's EndTxn passes, the second one's fails */
        rd_kafka_mock_push_request_errors(
            w.mc, T_API_END_TXN, 2, RD_KAFKA_RESP_ERR_NO_ERROR,
            RD_KAFKA_RESP_ERR_GROUP_AUTHORIZATION_FAILED);
        t_run_start(&r, pl, &stop);
        assert_true(t_wait_all_committed(sh));
        atomic_store(&stop, 1);
        assert_int_equal(t_run_join(&r), KB_OK);
        assert_string_equal(kb_pipeline_last_error(pl), "");
        kb_pipeline_stats(pl, &st);
        t_proc_finish_all(p);
        kb_pipeline_destroy(pl);
        kb_log_notice("test",
                      "%d abort(s), %d rewind(s), %d start(s), %d commit(s)",
                      (int)st.txn_aborts, (int)st.rewinds, p->started,
                      (int)st.txn_commits);
        assert_int_equal((int)st.txn_aborts, 1);
        assert_int_equal((int)st.rewinds, 1);
        assert_true(p->started > T_NREC);
        assert_int_equal(atomic_load(&p->offsets_backwards), 0);
        for (i = 0; i < T_NPARTS; i++)
                assert_int_equal(atomic_load(&p->committed_off[i]),
                                 T_NREC / T_NPARTS);
        /* every input committed once, the first transaction's too */
        t_check_outputs(&w, sh);
        t_world_destroy(&w);
        free(p);
        free(sh);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_endtxn_abortable),
                cmocka_unit_test(test_add_offsets_abortable),
                cmocka_unit_test(test_txn_offset_commit_abortable),
                cmocka_unit_test(test_produce_abortable),
                cmocka_unit_test(test_rewind_to_own_commits),
        };

        t_main_setup("test_kafka_abort", KB_LOG_NOTICE);
        return cmocka_run_group_tests(tests, NULL, NULL);
}
