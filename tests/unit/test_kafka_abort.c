/* test_kafka_abort.c -- abortable transaction errors on librdkafka's mock
 * cluster: the engine aborts, rewinds, processes the records again, and
 * every input ends up committed once with its outputs once -- also when
 * the processor claims ids and calls were running at the abort; the
 * backoff after aborts does not spin; a refusal by the broker (an ACL),
 * which librdkafka makes abortable too, stops the engine at once */
#include "test_kafka_mock.h"

#include "seen.h"

/* Kafka protocol ApiKey (test_kafka_mock.h has the others) */
#define T_API_ADD_PARTITIONS_TXN 24

/*
 * The abortable error the tests below inject: one that requires an abort
 * (rd_kafka_error_txn_requires_abort()) and is no refusal by the broker --
 * librdkafka (2.0.2, rdkafka_txnmgr.c and rd_kafka_handle_Produce_error())
 * makes every error it has no case for in a Produce, AddOffsetsToTxn,
 * TxnOffsetCommit or EndTxn answer abortable, and its own tests
 * (0105-transactions_mock.c) take this one for "any other error". The
 * *_AUTHORIZATION_FAILED codes, abortable in librdkafka as well, are
 * fatal in the engine (test_denied_* below).
 */
#define T_ABORTABLE RD_KAFKA_RESP_ERR_INVALID_MSG_SIZE

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
        /* a failed produce may leave librdkafka's view of the topic
         * stale until its metadata is refreshed: refresh often */
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
        abortable(T_API_END_TXN, T_ABORTABLE, "abort-endtxn");
}

static void test_add_offsets_abortable(void **state)
{
        (void)state;
        abortable(T_API_ADD_OFFSETS_TXN, T_ABORTABLE, "abort-addoffsets");
}

static void test_txn_offset_commit_abortable(void **state)
{
        (void)state;
        abortable(T_API_TXN_OFFSET_CMT, T_ABORTABLE, "abort-txnoffsetcommit");
}

static void test_produce_abortable(void **state)
{
        (void)state;
        abortable(T_API_PRODUCE, T_ABORTABLE, "abort-produce");
}

/*
 * The broker refuses what the first transaction does: librdkafka makes
 * that abortable (all four cases below), but an abort and retry would
 * process every record again -- the issuer mints a new vendor token each
 * time -- only to be refused again until an operator grants the ACL. Each
 * case injects @p err on the first @p api request of a world of its own;
 * its run must end by itself (a stop request after DENIED_WAIT_MS would
 * end a retrying loop with KB_OK), with KB_ERR_KAFKA and a reason naming
 * the error and @p names (what was refused); no record was started twice,
 * nothing was committed. The four run at once (each waits ~3 s for the
 * mock's group join).
 */
#define DENIED_WAIT_MS 30000

typedef struct denial_s {
        int16_t api;
        rd_kafka_resp_err_t err;
        const char *grp, *names;
        atomic_int stop;
        t_shared_t *sh;
        t_proc_t *p;
        kb_pipeline_t *pl;
        t_runner_t r;
        t_world_t w;
} denial_t;

static void denial_start(denial_t *d)
{
        char txid[64];

        d->sh = calloc(1, sizeof(*d->sh));
        d->p = calloc(1, sizeof(*d->p));
        assert_non_null(d->sh);
        assert_non_null(d->p);
        atomic_init(&d->stop, 0);
        t_proc_init(d->p, d->sh, 31);
        t_world_new(&d->w);
        t_produce_inputs(&d->w, 0, T_NREC);
        snprintf(txid, sizeof(txid), "%s-tx", d->grp);
        d->pl = t_pipeline_new(&d->w, d->grp, txid, NULL, 1, d->p, NULL);
        rd_kafka_mock_push_request_errors(d->w.mc, d->api, 1, d->err);
        t_run_start(&d->r, d->pl, &d->stop);
}

/* Sets every case's stop flag unless done is set within DENIED_WAIT_MS. */
typedef struct denial_watch_s {
        denial_t *d;
        size_t n;
        atomic_int done;
} denial_watch_t;

static void *denial_watch_main(void *arg)
{
        denial_watch_t *wd = arg;
        int64_t deadline = kb_mono_ms() + DENIED_WAIT_MS;
        size_t i;

        while (!atomic_load(&wd->done) && kb_mono_ms() < deadline)
                usleep(20000);
        for (i = 0; !atomic_load(&wd->done) && i < wd->n; i++)
                atomic_store(&wd->d[i].stop, 1);
        return NULL;
}

/* Joins the run, checks, frees. */
static void denial_check(denial_t *d)
{
        kb_pipeline_stats_t st;
        int64_t off[T_NPARTS];
        char why[512];
        int i, rc, twice = 0;

        rc = t_run_join(&d->r);
        kb_strlcpy(why, kb_pipeline_last_error(d->pl), sizeof(why));
        kb_pipeline_stats(d->pl, &st);
        t_proc_finish_all(d->p);
        kb_pipeline_destroy(d->pl);
        for (i = 0; i < T_NREC; i++)
                if (atomic_load(&d->sh->attempts[i]) > 1)
                        twice++;
        kb_log_notice("test",
                      "%s: rc %d, %d start(s), %d twice, %d abort(s), %d "
                      "commit(s): %s",
                      rd_kafka_err2name(d->err), rc, d->p->started, twice,
                      (int)st.txn_aborts, (int)st.txn_commits, why);
        assert_int_equal(rc, KB_ERR_KAFKA);
        assert_non_null(strstr(why, rd_kafka_err2name(d->err)));
        assert_non_null(strstr(why, d->names));
        /* not one record processed again: no second mint */
        assert_int_equal(twice, 0);
        assert_true(d->p->started <= T_NREC);
        assert_int_equal((int)st.rewinds, 0);
        assert_int_equal((int)st.txn_commits, 0);
        assert_int_equal(atomic_load(&d->p->commits), 0);
        t_committed(&d->w, d->grp, off);
        for (i = 0; i < T_NPARTS; i++)
                assert_true(off[i] < 0);
        t_world_destroy(&d->w);
        free(d->p);
        free(d->sh);
}

static void test_denied_is_fatal(void **state)
{
        denial_t d[] = {
                /* the output topic: Describe granted, Write not -- the
                 * broker refuses to add its partitions to the
                 * transaction, and librdkafka's produce() and
                 * send_offsets_to_transaction() then say only __STATE */
                { .api = T_API_ADD_PARTITIONS_TXN,
                  .err = RD_KAFKA_RESP_ERR_TOPIC_AUTHORIZATION_FAILED,
                  .grp = "deny-addparts",
                  .names = "this client may not write to topic out" },
                { .api = T_API_PRODUCE,
                  .err = RD_KAFKA_RESP_ERR_TOPIC_AUTHORIZATION_FAILED,
                  .grp = "deny-produce",
                  .names = "may not write to topic out" },
                { .api = T_API_TXN_OFFSET_CMT,
                  .err = RD_KAFKA_RESP_ERR_GROUP_AUTHORIZATION_FAILED,
                  .grp = "deny-txnoffsetcommit",
                  .names = "may not use group deny-txnoffsetcommit" },
                { .api = T_API_END_TXN,
                  .err = RD_KAFKA_RESP_ERR_GROUP_AUTHORIZATION_FAILED,
                  .grp = "deny-endtxn",
                  .names = "may not use group deny-endtxn" },
        };
        denial_watch_t wd = { d, sizeof(d) / sizeof(d[0]), 0 };
        pthread_t wdt;
        size_t i;

        (void)state;
        for (i = 0; i < wd.n; i++)
                denial_start(&d[i]);
        assert_int_equal(pthread_create(&wdt, NULL, denial_watch_main, &wd), 0);
        /* each run must end by itself: the watchdog's stop would end a
         * retrying one with KB_OK */
        for (i = 0; i < wd.n; i++)
                denial_check(&d[i]);
        atomic_store(&wd.done, 1);
        assert_int_equal(pthread_join(wdt, NULL), 0);
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
            w.mc, T_API_END_TXN, 2, RD_KAFKA_RESP_ERR_NO_ERROR, T_ABORTABLE);
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

/*
 * A stand-in for the daemons' processor base (bridge/daemons/processor.c):
 * each input names a share_id, claimed in a kb_seen_t before a slow
 * "vendor call", committed to or forgotten by on_finish, and forgotten
 * by on_orphan. A record whose share_id is pending or remembered is a
 * duplicate: it ends at once with no output (kb_proc_claim() returning
 * 1). An orphaned record ends only when its call returns, as with the
 * real vendor client.
 */
typedef struct c_job_s {
        int attempt, owns, skipped;
        char sid[32];
} c_job_t;

typedef struct c_proc_s {
        t_proc_t t; /* first: the harness's on_commit takes it */
        kb_seen_t *seen;
        /* room for every record twice (orphans and their re-reads):
         * whatever is re-read starts at once, as with a vendor client
         * that is not full */
        t_pend_t pend[2 * T_NREC];
        int npend;
        int call_min_us, call_max_us;
        int orphan_hooks;        /* on_orphan calls */
        int bad_orphan_hooks;    /* ... for a record that is not started,
                                    done or not orphaned */
        int skipped_committed;   /* a duplicate's empty result committed */
        int skipped_uncommitted; /* ... dropped */
} c_proc_t;

static void c_start(void *opaque, kb_rec_t *rec)
{
        c_proc_t *cp = opaque;
        t_proc_t *p = &cp->t;
        int idx = t_rec_index(rec);
        c_job_t *job = calloc(1, sizeof(*job));

        assert_non_null(job);
        job->attempt = atomic_fetch_add(&p->sh->attempts[idx], 1) + 1;
        snprintf(job->sid, sizeof(job->sid), "share-%d", idx);
        kb_rec_set_user(rec, job);
        p->started++;
        if (kb_seen_has(cp->seen, job->sid)) {
                /* "already handled or in flight": ends with no output */
                job->skipped = 1;
                kb_rec_done(rec);
                return;
        }
        assert_int_equal(kb_seen_claim(cp->seen, job->sid), 0);
        job->owns = 1;
        assert_true(cp->npend < 2 * T_NREC);
        cp->pend[cp->npend].rec = rec;
        cp->pend[cp->npend].due_us =
            kb_mono_us() + cp->call_min_us +
            rand_r(&p->seed) % (cp->call_max_us - cp->call_min_us);
        cp->npend++;
}

static int c_poll(void *opaque, int timeout_ms)
{
        c_proc_t *cp = opaque;
        t_proc_t *p = &cp->t;
        int64_t now = kb_mono_us();
        int i, n = 0;

        for (i = 0; i < cp->npend;) {
                t_pend_t *e = &cp->pend[i];
                if (e->due_us > now) {
                        i++;
                        continue;
                }
                /* the call returned */
                if (kb_rec_orphaned(e->rec)) {
                        p->orphans_done++;
                } else {
                        c_job_t *job = kb_rec_user(e->rec);
                        char val[48];
                        int idx = t_rec_index(e->rec);
                        snprintf(val, sizeof(val), "%d:%d:%d",
                                 (int)kb_rec_partition(e->rec), idx,
                                 job->attempt);
                        assert_int_equal(
                            kb_rec_produce(e->rec, "out",
                                           kb_rec_partition(e->rec), NULL, 0,
                                           val, strlen(val), NULL),
                            KB_OK);
                        atomic_fetch_add(&p->done_total, 1);
                }
                kb_rec_done(e->rec);
                *e = cp->pend[--cp->npend];
                n++;
        }
        if (n == 0 && timeout_ms > 0)
                usleep((useconds_t)(timeout_ms > 5 ? 5 : timeout_ms) * 1000);
        return n;
}

static int c_has_capacity(void *opaque)
{
        c_proc_t *cp = opaque;

        return cp->npend < 2 * T_NREC;
}

static void c_on_finish(void *opaque, kb_rec_t *rec, int committed)
{
        c_proc_t *cp = opaque;
        c_job_t *job = kb_rec_user(rec);
        int idx = t_rec_index(rec);

        if (committed) {
                cp->t.finished_committed++;
                atomic_fetch_add(&cp->t.sh->committed[idx], 1);
                atomic_store(&cp->t.sh->committed_attempt[idx], job->attempt);
                if (job->skipped)
                        cp->skipped_committed++;
        } else {
                cp->t.finished_dropped++;
                if (job->skipped)
                        cp->skipped_uncommitted++;
        }
        if (job->owns) {
                if (committed)
                        kb_seen_commit(cp->seen, job->sid, NULL);
                else
                        kb_seen_forget(cp->seen, job->sid);
        }
        free(job);
}

static void c_on_orphan(void *opaque, kb_rec_t *rec)
{
        c_proc_t *cp = opaque;
        c_job_t *job = kb_rec_user(rec);

        cp->orphan_hooks++;
        if (!job || job->skipped || !kb_rec_orphaned(rec))
                cp->bad_orphan_hooks++;
        if (job && job->owns) {
                kb_seen_forget(cp->seen, job->sid);
                job->owns = 0;
        }
}

static const kb_pipeline_ops_t c_ops = { c_start, c_poll,      c_has_capacity,
                                         NULL,    c_on_finish, c_on_orphan };

/*
 * An aborted transaction while vendor calls run: the rewind re-reads
 * their records at once, while the orphans' calls still run and their
 * share_ids are still claimed. Unless the engine tells the processor
 * (on_orphan) and it forgets the orphans' claims there, the re-read
 * records find their own share_ids pending, take themselves for
 * duplicates, end with no output, and their offsets are committed: the
 * request is never published. Every input must instead be processed
 * again and its output committed exactly once.
 */
static void test_orphan_releases_its_claim(void **state)
{
        kb_pipeline_conf_t tweak;
        atomic_int stop = 0;
        t_shared_t *sh = calloc(1, sizeof(*sh));
        c_proc_t *cp = calloc(1, sizeof(*cp));
        kb_pipeline_stats_t st;
        kb_pipeline_t *pl;
        t_runner_t r;
        t_world_t w;
        int64_t off[T_NPARTS];
        char sid[32];
        int i, again = 0;

        (void)state;
        assert_non_null(sh);
        assert_non_null(cp);
        t_proc_init(&cp->t, sh, 23);
        cp->seen = kb_seen_new(NULL, "state", 3600, "test");
        assert_non_null(cp->seen);
        /* calls far slower than a re-read (fetch.wait.max.ms 10), and
         * spread widely, so that the first commit -- after the quickest
         * calls -- fails while most calls still run, also on a loaded
         * machine (with 200-500 ms, a slow first commit once found every
         * call finished and nothing to orphan) */
        cp->call_min_us = 200000;
        cp->call_max_us = 4000000;
        t_world_new(&w);
        t_produce_inputs(&w, 0, T_NREC);
        memset(&tweak, 0, sizeof(tweak));
        t_pipeline_ops = &c_ops;
        pl = t_pipeline_new(&w, "orphan-claim", "orphan-claim-tx", NULL, 1,
                            &cp->t, &tweak);
        t_pipeline_ops = NULL;
        /* the first commit's EndTxn: abortable, while calls run */
        rd_kafka_mock_push_request_errors(w.mc, T_API_END_TXN, 1, T_ABORTABLE);
        t_run_start(&r, pl, &stop);
        assert_true(t_wait_all_committed(sh));
        atomic_store(&stop, 1);
        assert_int_equal(t_run_join(&r), KB_OK);
        kb_pipeline_stats(pl, &st);
        while (cp->npend > 0)
                kb_rec_done(cp->pend[--cp->npend].rec);
        kb_pipeline_destroy(pl);
        kb_log_notice("test",
                      "%d abort(s), %d start(s), %d on_orphan, %d "
                      "duplicate(s) committed, %d dropped",
                      (int)st.txn_aborts, cp->t.started, cp->orphan_hooks,
                      cp->skipped_committed, cp->skipped_uncommitted);
        assert_int_equal((int)st.txn_aborts, 1);
        for (i = 0; i < T_NREC; i++)
                if (atomic_load(&sh->attempts[i]) > 1)
                        again++;
        assert_true(again > 0);
        /* no input was taken for a duplicate of its own orphan */
        assert_int_equal(cp->skipped_committed, 0);
        /* every input's committed attempt has its output, once */
        t_check_outputs(&w, sh);
        /* calls were running at the abort: orphaned, hooked once each */
        assert_true(cp->orphan_hooks > 0);
        assert_int_equal(cp->bad_orphan_hooks, 0);
        t_committed(&w, "orphan-claim", off);
        for (i = 0; i < T_NPARTS; i++)
                assert_int_equal(off[i], T_NREC / T_NPARTS);
        /* every share_id remembered, none left pending */
        assert_int_equal((int)kb_seen_count(cp->seen), T_NREC);
        for (i = 0; i < T_NREC; i++) {
                snprintf(sid, sizeof(sid), "share-%d", i);
                assert_true(kb_seen_has(cp->seen, sid));
        }
        kb_seen_destroy(cp->seen);
        t_world_destroy(&w);
        free(cp);
        free(sh);
}

/*
 * Aborts in a row hold the next transaction back (100, 200, 400, 800 ms):
 * meanwhile the records are done and released and nothing is in flight.
 * The loop must wait in the consumer poll then, not spin with timeout 0:
 * it counts its iterations, and an idle one takes up to 20 ms. (A spinning
 * loop makes tens of thousands a second; the bound is loose.)
 */
static void test_backoff_does_not_spin(void **state)
{
        atomic_int stop = 0;
        t_shared_t *sh = calloc(1, sizeof(*sh));
        t_proc_t *p = calloc(1, sizeof(*p));
        kb_pipeline_stats_t st;
        kb_pipeline_t *pl;
        t_runner_t r;
        t_world_t w;
        int64_t t0, ms;

        (void)state;
        assert_non_null(sh);
        assert_non_null(p);
        t_proc_init(p, sh, 29);
        p->delay_us = 0; /* done at the next poll */
        t_world_new(&w);
        t_produce_inputs(&w, 0, T_NREC);
        pl = t_pipeline_new(&w, "backoff-spin", "backoff-spin-tx", NULL, 1, p,
                            NULL);
        /* four commits fail, the aborts (EndTxn too) pass */
        rd_kafka_mock_push_request_errors(
            w.mc, T_API_END_TXN, 7, T_ABORTABLE, RD_KAFKA_RESP_ERR_NO_ERROR,
            T_ABORTABLE, RD_KAFKA_RESP_ERR_NO_ERROR, T_ABORTABLE,
            RD_KAFKA_RESP_ERR_NO_ERROR, T_ABORTABLE);
        t0 = kb_mono_ms();
        t_run_start(&r, pl, &stop);
        assert_true(t_wait_all_committed(sh));
        atomic_store(&stop, 1);
        assert_int_equal(t_run_join(&r), KB_OK);
        ms = kb_mono_ms() - t0;
        kb_pipeline_stats(pl, &st);
        t_proc_finish_all(p);
        kb_pipeline_destroy(pl);
        kb_log_notice("test", "%d abort(s), %llu loop(s) in %lld ms",
                      (int)st.txn_aborts, (unsigned long long)st.loops,
                      (long long)ms);
        assert_int_equal((int)st.txn_aborts, 4);
        /* at least the backoffs' 1.5 s went by */
        assert_true(ms >= 1500);
        assert_true(st.loops < (uint64_t)ms + 2000);
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
                cmocka_unit_test(test_orphan_releases_its_claim),
                cmocka_unit_test(test_backoff_does_not_spin),
                cmocka_unit_test(test_denied_is_fatal),
        };

        t_main_setup("test_kafka_abort", KB_LOG_NOTICE);
        return cmocka_run_group_tests(tests, NULL, NULL);
}
