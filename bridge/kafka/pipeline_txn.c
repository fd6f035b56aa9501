/* pipeline_txn.c -- the pipeline's transactions: commit, retry, abort */

/* Publishes the released records' outputs and their input offsets in one
 * Kafka transaction, following librdkafka's examples/transactions.c:
 * retriable -> retry, requires abort -> abort and rewind, fatal -> fatal;
 * and a refusal by the broker (an ACL) -> fatal at once, though librdkafka
 * says "abort" for most of them. */
#include "pipeline_int.h"

#include <string.h>
#include <time.h>

#include "failpoint.h"
#include "kafka.h"
#include "log.h"
#include "util.h"

/* After an aborted transaction the next one waits 100 ms, doubling with
 * every abort in a row up to 5 s: an error that persists (an ACL denying
 * an output topic: librdkafka then fails produce() at once until the
 * topic's metadata is refreshed) must not turn the loop into an abort
 * storm. */
#define KB_ABORT_BACKOFF_MS     100
#define KB_ABORT_BACKOFF_MAX_MS 5000

/* How long the abort of a transaction the broker refused may take: the
 * engine stops after it whatever it says (a restart's init_transactions()
 * aborts what is left open). */
#define KB_DENIED_ABORT_MS 10000

static void log_txn_error(const char *what, rd_kafka_error_t *error)
{
        kb_log_warn("pipeline", "%s: %s: %s%s%s", what,
                    rd_kafka_error_name(error), rd_kafka_error_string(error),
                    rd_kafka_error_is_fatal(error) ? " (fatal)" : "",
                    rd_kafka_error_txn_requires_abort(error)
                        ? " (abort required)"
                        : "");
}

/* The topics the released records write to, ", "-separated, into @p buf
 * (cut short when it is full). */
static void txn_topics(kb_pipeline_t *pl, char *buf, size_t bufsz)
{
        size_t n = 0, len;
        kb_rec_t *rec;
        kb_out_t *o;
        char *hit;

        buf[0] = '\0';
        for (rec = pl->rel_head; rec; rec = rec->next)
                for (o = rec->outs; o; o = o->next) {
                        len = strlen(o->topic);
                        for (hit = strstr(buf, o->topic); hit;
                             hit = strstr(hit + 1, o->topic))
                                if ((hit == buf || hit[-1] == ' ') &&
                                    (hit[len] == ',' || !hit[len]))
                                        break;
                        if (hit || n + len + 3 > bufsz)
                                continue;
                        n += (size_t)snprintf(buf + n, bufsz - n, "%s%s",
                                              n ? ", " : "", o->topic);
                }
}

/*
 * The broker refused what the transaction does (kb_kafka_err_denied(@p
 * code): an output topic, the group, the transactional id). Fatal at once,
 * whatever librdkafka says: it makes most of them abortable, and every
 * abort and retry would redo the records' vendor calls (a new mint each)
 * only to meet the same refusal until an operator grants the ACL. Aborts
 * the open transaction (best effort) and makes the engine fatal with what
 * was refused. Returns -1.
 */
static int txn_denied(kb_pipeline_t *pl, const char *what,
                      rd_kafka_resp_err_t code, const char *text)
{
        rd_kafka_error_t *error;
        char topics[256];

        txn_topics(pl, topics, sizeof(topics));
        kb_pl_set_denied(pl, what, code, topics[0] ? topics : "?", 1, text);
        pl->st.txn_aborts++;
        kb_pl_watch(pl, "abort_transaction", KB_DENIED_ABORT_MS);
        error = rd_kafka_abort_transaction(pl->producer, KB_DENIED_ABORT_MS);
        kb_pl_unwatch(pl);
        if (error) {
                log_txn_error("abort_transaction", error);
                rd_kafka_error_destroy(error);
        }
        return -1;
}

/* Makes the engine fatal with @p error of @p what (not destroyed): a
 * refusal named as kb_pl_set_denied() does, anything else as it is. */
static void txn_set_fatal(kb_pipeline_t *pl, const char *what,
                          const rd_kafka_error_t *error)
{
        char topics[256];

        txn_topics(pl, topics, sizeof(topics));
        if (kb_kafka_err_denied(rd_kafka_error_code(error)))
                kb_pl_set_denied(pl, what, rd_kafka_error_code(error),
                                 topics[0] ? topics : "?", 1,
                                 rd_kafka_error_string(error));
        else
                kb_pl_set_fatal(pl, KB_ERR_KAFKA, "%s: %s: %s", what,
                                rd_kafka_error_name(error),
                                rd_kafka_error_string(error));
}

/*
 * Why the transaction failed, when the call under way says only __STATE:
 * librdkafka keeps the cause of a failed transaction (an AddPartitionsToTxn
 * the broker refused, say) and a call that was under way or comes after
 * it -- produce(), send_offsets_to_transaction() between its two requests
 * -- answers "Operation not valid in state"; every transactional call made
 * in the failed state returns the kept cause itself. Asks
 * send_offsets_to_transaction() for it: in that state it sends nothing
 * (and the transaction is aborted after anyway). The error, or NULL.
 */
static rd_kafka_error_t *
txn_cause(kb_pipeline_t *pl, const rd_kafka_topic_partition_list_t *offsets)
{
        rd_kafka_consumer_group_metadata_t *cgmd;
        rd_kafka_error_t *error;

        cgmd = rd_kafka_consumer_group_metadata(pl->consumer);
        kb_pl_watch(pl, "send_offsets_to_transaction", -1);
        error = rd_kafka_send_offsets_to_transaction(pl->producer, offsets,
                                                     cgmd, -1);
        kb_pl_unwatch(pl);
        rd_kafka_consumer_group_metadata_destroy(cgmd);
        return error;
}

/* ---- the transaction thread ----
 *
 * send_offsets_to_transaction() and commit_transaction() wait for round
 * trips to the broker -- a good part of every commit interval under load.
 * They are made on a thread of their own while the engine thread keeps the
 * vendor calls moving: it starts waiting records and takes the answers, as
 * it does while the transaction's messages are delivered
 * (txn_wait_delivery()); records that finish meanwhile are released into
 * the next transaction, never this one, and nothing is produced until the
 * call has returned (librdkafka refuses a produce() during a commit). */

static void *txn_thread_main(void *arg)
{
        kb_pipeline_t *pl = arg;
        rd_kafka_error_t *res;

        pthread_mutex_lock(&pl->txn_lock);
        for (;;) {
                while (!pl->txn_posted && !pl->txn_quit)
                        pthread_cond_wait(&pl->txn_cond, &pl->txn_lock);
                if (pl->txn_quit)
                        break;
                pl->txn_posted = 0;
                pthread_mutex_unlock(&pl->txn_lock);
                res = pl->txn_fn(pl, pl->txn_arg);
                pthread_mutex_lock(&pl->txn_lock);
                pl->txn_res = res;
                pl->txn_done = 1;
                pthread_cond_broadcast(&pl->txn_cond);
        }
        pthread_mutex_unlock(&pl->txn_lock);
        return NULL;
}

int kb_pl_txn_thread_start(kb_pipeline_t *pl)
{
        pthread_condattr_t ca;

        if (pthread_mutex_init(&pl->txn_lock, NULL))
                return -1;
        pthread_condattr_init(&ca);
        pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
        if (pthread_cond_init(&pl->txn_cond, &ca)) {
                pthread_condattr_destroy(&ca);
                pthread_mutex_destroy(&pl->txn_lock);
                return -1;
        }
        pthread_condattr_destroy(&ca);
        if (pthread_create(&pl->txn_thread, NULL, txn_thread_main, pl)) {
                pthread_cond_destroy(&pl->txn_cond);
                pthread_mutex_destroy(&pl->txn_lock);
                return -1;
        }
        pl->txn_started = 1;
        return 0;
}

void kb_pl_txn_thread_stop(kb_pipeline_t *pl)
{
        if (!pl->txn_started)
                return;
        pthread_mutex_lock(&pl->txn_lock);
        pl->txn_quit = 1;
        pthread_cond_broadcast(&pl->txn_cond);
        pthread_mutex_unlock(&pl->txn_lock);
        pthread_join(pl->txn_thread, NULL);
        pthread_cond_destroy(&pl->txn_cond);
        pthread_mutex_destroy(&pl->txn_lock);
        pl->txn_started = 0;
}

/* Makes @p fn (@p arg) on the transaction thread and serves the vendor
 * calls until it returns (on the engine thread without one). Its result. */
static rd_kafka_error_t *txn_call(kb_pipeline_t *pl, kb_pl_txn_fn_t *fn,
                                  void *arg)
{
        int done = 0;

        if (!pl->txn_started)
                return fn(pl, arg);
        pthread_mutex_lock(&pl->txn_lock);
        pl->txn_fn = fn;
        pl->txn_arg = arg;
        pl->txn_res = NULL;
        pl->txn_done = 0;
        pl->txn_posted = 1;
        pthread_cond_broadcast(&pl->txn_cond);
        pthread_mutex_unlock(&pl->txn_lock);
        while (!done) {
                kb_pl_start_ready(pl);
                if (pl->in_flight > 0 || pl->orphans_running > 0)
                        pl->ops.poll(pl->opaque, 1);
                pthread_mutex_lock(&pl->txn_lock);
                if (!pl->txn_done && pl->in_flight == 0 &&
                    pl->orphans_running == 0) {
                        /* nothing to serve: sleep until it returns */
                        struct timespec ts;
                        clock_gettime(CLOCK_MONOTONIC, &ts);
                        ts.tv_nsec += 5 * 1000000L;
                        if (ts.tv_nsec >= 1000000000L) {
                                ts.tv_sec++;
                                ts.tv_nsec -= 1000000000L;
                        }
                        pthread_cond_timedwait(&pl->txn_cond, &pl->txn_lock,
                                               &ts);
                }
                done = pl->txn_done;
                pthread_mutex_unlock(&pl->txn_lock);
        }
        return pl->txn_res;
}

typedef struct send_offsets_s {
        const rd_kafka_topic_partition_list_t *offsets;
        const rd_kafka_consumer_group_metadata_t *cgmd;
} send_offsets_t;

static rd_kafka_error_t *call_send_offsets(kb_pipeline_t *pl, void *arg)
{
        send_offsets_t *a = arg;

        return rd_kafka_send_offsets_to_transaction(pl->producer, a->offsets,
                                                    a->cgmd, -1);
}

static rd_kafka_error_t *call_commit(kb_pipeline_t *pl, void *arg)
{
        rd_kafka_error_t *error;

        (void)arg;
        /* "during": a timer thread kills the process crash(MS) after the
         * call began if it has not returned by then (docs/failpoints.md) */
        KB_FAILPOINT_BEGIN("txn.during_commit");
        error = rd_kafka_commit_transaction(pl->producer, pl->txn_timeout_ms);
        KB_FAILPOINT_END("txn.during_commit");
        return error;
}

/* Aborts the open transaction, then rewinds. Returns -1 if fatal. */
static int abort_and_rewind(kb_pipeline_t *pl)
{
        rd_kafka_error_t *error;

        pl->st.txn_aborts++;
        /* not -1 ("the transaction's remaining time"): librdkafka 2.0.2
         * then waits for as long as the broker does not answer
         * (failpoints.TestBrokerFreezeMidTransaction saw it outlive the
         * watchdog); a timed-out abort is fatal, never resumed */
        kb_pl_watch(pl, "abort_transaction", pl->txn_timeout_ms);
        error = rd_kafka_abort_transaction(pl->producer, pl->txn_timeout_ms);
        kb_pl_unwatch(pl);
        if (error) {
                log_txn_error("abort_transaction", error);
                txn_set_fatal(pl, "abort_transaction", error);
                rd_kafka_error_destroy(error);
                return -1;
        }
        kb_pl_rewind_all(pl, 1);
        {
                int64_t backoff = KB_ABORT_BACKOFF_MS;
                int i;
                for (i = 0;
                     i < pl->abort_streak && backoff < KB_ABORT_BACKOFF_MAX_MS;
                     i++)
                        backoff *= 2;
                if (backoff > KB_ABORT_BACKOFF_MAX_MS)
                        backoff = KB_ABORT_BACKOFF_MAX_MS;
                pl->abort_streak++;
                pl->txn_not_before = kb_mono_ms() + backoff;
        }
        return pl->fatal ? -1 : 0;
}

/* What a step of kb_pl_txn_commit() returns to go on with the next step; any
 * other value is kb_pl_txn_commit()'s result. */
#define TXN_GO 1

/*
 * Handles @p error from send_offsets_to_transaction(), as librdkafka's
 * examples/transactions.c does: fatal -> fatal; requires abort -> abort
 * and rewind; retriable -> retry (1), at most 10 times and while the
 * transaction is younger than transaction.timeout.ms (past it the broker
 * aborts it anyway: a broker that does not answer must not keep the engine
 * retrying for ten timeouts), then abort and rewind (nothing is lost, it
 * is all consumed again); anything else
 * (__STATE, __CONFLICT, ...: a call the producer refuses in its state) is
 * no condition a retry or an abort gets out of: fatal; so is a refusal by
 * the broker (txn_denied()). Returns 1 to retry the call, 0 after
 * abort+rewind, -1 when fatal. Destroys @p error.
 */
static int txn_error(kb_pipeline_t *pl, const char *what,
                     rd_kafka_error_t *error, int *retries)
{
        log_txn_error(what, error);
        if (kb_kafka_err_denied(rd_kafka_error_code(error))) {
                int r = txn_denied(pl, what, rd_kafka_error_code(error),
                                   rd_kafka_error_string(error));
                rd_kafka_error_destroy(error);
                return r;
        }
        if (!rd_kafka_error_is_fatal(error) &&
            rd_kafka_error_txn_requires_abort(error)) {
                rd_kafka_error_destroy(error);
                return abort_and_rewind(pl);
        }
        if (!rd_kafka_error_is_fatal(error) &&
            rd_kafka_error_is_retriable(error)) {
                rd_kafka_error_destroy(error);
                if (++*retries <= 10 &&
                    kb_mono_ms() - pl->txn_begun_ms < pl->txn_timeout_ms)
                        return 1;
                return abort_and_rewind(pl);
        }
        txn_set_fatal(pl, what, error);
        rd_kafka_error_destroy(error);
        return -1;
}

/* Hands one output to the producer: 0, or the error. */
static rd_kafka_resp_err_t produce_out(kb_pipeline_t *pl, kb_out_t *o)
{
        rd_kafka_resp_err_t err;
        int tries = 0;

        for (;;) {
                rd_kafka_headers_t *h =
                    o->hdrs ? rd_kafka_headers_copy(o->hdrs) : NULL;
                err =
                    rd_kafka_producev(pl->producer, RD_KAFKA_V_TOPIC(o->topic),
                                      RD_KAFKA_V_PARTITION(o->partition),
                                      RD_KAFKA_V_KEY(o->key, o->key_len),
                                      RD_KAFKA_V_VALUE(o->value, o->value_len),
                                      RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
                                      RD_KAFKA_V_HEADERS(h), RD_KAFKA_V_END);
                if (!err)
                        return 0;
                if (h)
                        rd_kafka_headers_destroy(h);
                if (err != RD_KAFKA_RESP_ERR__QUEUE_FULL || ++tries > 600) {
                        kb_log_error("pipeline", "produce to %s failed: %s",
                                     o->topic, rd_kafka_err2str(err));
                        return err;
                }
                /* the transaction's own messages fill the queue: wait
                 * for some to be delivered, then try again */
                pl->st.queue_full++;
                rd_kafka_poll(pl->producer, 50);
        }
}

static rd_kafka_topic_partition_list_t *commit_offsets(kb_pipeline_t *pl)
{
        rd_kafka_topic_partition_list_t *offsets;
        part_t *pt;

        offsets = rd_kafka_topic_partition_list_new(8);
        for (pt = pl->parts; pt; pt = pt->next)
                if (pt->commit_offset >= 0)
                        rd_kafka_topic_partition_list_add(offsets, pt->topic,
                                                          pt->partition)
                            ->offset = pt->commit_offset;
        return offsets;
}

/* A produce() of the transaction failed with @p err: a refusal is fatal
 * (txn_denied()), and so is a fatal error behind a __STATE; anything else
 * aborts and rewinds. kb_pl_txn_commit()'s result. */
static int txn_produce_failed(kb_pipeline_t *pl,
                              const rd_kafka_topic_partition_list_t *offsets,
                              rd_kafka_resp_err_t err)
{
        rd_kafka_error_t *cause = NULL;
        int r;

        if (err == RD_KAFKA_RESP_ERR__STATE)
                cause = txn_cause(pl, offsets);
        if (cause) {
                log_txn_error("produce", cause);
                err = rd_kafka_error_code(cause);
        }
        if (kb_kafka_err_denied(err)) {
                r = txn_denied(pl, "produce", err,
                               cause ? rd_kafka_error_string(cause)
                                     : rd_kafka_err2str(err));
        } else if (cause && rd_kafka_error_is_fatal(cause)) {
                txn_set_fatal(pl, "produce", cause);
                r = -1;
        } else {
                r = abort_and_rewind(pl);
        }
        if (cause)
                rd_kafka_error_destroy(cause);
        return r;
}

/* Begins the transaction and produces every released record's outputs
 * (*nout counts them). TXN_GO, or kb_pl_txn_commit()'s result. */
static int txn_produce(kb_pipeline_t *pl,
                       const rd_kafka_topic_partition_list_t *offsets,
                       int *nout)
{
        rd_kafka_error_t *error;
        rd_kafka_resp_err_t err;
        kb_rec_t *rec;
        kb_out_t *o;

        kb_pl_watch(pl, "begin_transaction", 0);
        error = rd_kafka_begin_transaction(pl->producer);
        kb_pl_unwatch(pl);
        pl->txn_begun_ms = kb_mono_ms();
        if (error) {
                /* begin never needs a retry; anything here is a bug or
                 * fatal state */
                log_txn_error("begin_transaction", error);
                txn_set_fatal(pl, "begin_transaction", error);
                rd_kafka_error_destroy(error);
                return -1;
        }
        for (rec = pl->rel_head; rec; rec = rec->next)
                for (o = rec->outs; o; o = o->next) {
                        if ((err = produce_out(pl, o)))
                                return txn_produce_failed(pl, offsets, err);
                        (*nout)++;
                }
        /* outputs handed to the producer (maybe at the broker), the
         * transaction open, no offsets in it */
        KB_FAILPOINT("txn.after_produce");
        return TXN_GO;
}

/* Adds the input offsets to the transaction. TXN_GO, or kb_pl_txn_commit()'s
 * result. */
static int txn_send_offsets(kb_pipeline_t *pl,
                            const rd_kafka_topic_partition_list_t *offsets)
{
        rd_kafka_consumer_group_metadata_t *cgmd;
        rd_kafka_error_t *error;
        int retries = 0, r = TXN_GO;

        KB_FAILPOINT("txn.before_send_offsets");
        cgmd = rd_kafka_consumer_group_metadata(pl->consumer);
        for (;;) {
                send_offsets_t a = { offsets, cgmd };
                kb_pl_watch(pl, "send_offsets_to_transaction", -1);
                error = txn_call(pl, call_send_offsets, &a);
                kb_pl_unwatch(pl);
                if (!error)
                        break;
                if (rd_kafka_error_code(error) == RD_KAFKA_RESP_ERR__STATE &&
                    rd_kafka_error_txn_requires_abort(error)) {
                        /* failed while under way: say why */
                        rd_kafka_error_t *cause = txn_cause(pl, offsets);
                        if (cause) {
                                log_txn_error("send_offsets_to_transaction",
                                              error);
                                rd_kafka_error_destroy(error);
                                error = cause;
                        }
                }
                r = txn_error(pl, "send_offsets_to_transaction", error,
                              &retries);
                if (r != 1)
                        break;
                r = TXN_GO;
        }
        rd_kafka_consumer_group_metadata_destroy(cgmd);
        /* the offsets are in the open transaction: a crash now must not
         * commit them without the outputs, nor lose either */
        if (r == TXN_GO)
                KB_FAILPOINT("txn.after_send_offsets");
        return r;
}

/*
 * Most of a commit is waiting for the transaction's messages to be
 * delivered (partition registration, produce round trips): wait for that
 * in short slices of rd_kafka_flush(), which is no transactional call, and
 * keep the vendor calls moving meanwhile. Records released from here on go
 * into the next transaction; the ones being committed are not touched.
 * Slices of 1 ms: the producer has no delivery report callback, so nothing
 * wakes flush when the last message is acknowledged and every slice runs
 * to its end (with 10 ms slices, every commit took at least 10 ms).
 * TXN_GO, or kb_pl_txn_commit()'s result.
 */
static int txn_wait_delivery(kb_pipeline_t *pl)
{
        int64_t deadline = kb_mono_ms() + pl->txn_timeout_ms;

        while (rd_kafka_flush(pl->producer, 1) ==
               RD_KAFKA_RESP_ERR__TIMED_OUT) {
                if (kb_mono_ms() >= deadline) {
                        kb_log_warn("pipeline",
                                    "transaction's messages not delivered "
                                    "within %d ms: aborting it",
                                    pl->txn_timeout_ms);
                        return abort_and_rewind(pl);
                }
                kb_pl_start_ready(pl);
                if (pl->in_flight > 0 || pl->orphans_running > 0)
                        pl->ops.poll(pl->opaque, 0);
        }
        return TXN_GO;
}

/*
 * One commit_transaction() call, which is left with the EndTxn round trip,
 * never a short timeout to resume from: librdkafka (up to 2.0.2 at least,
 * rdkafka_txnmgr.c) matches the answers of a transactional call to its
 * requests by order only. A call that timed out leaves a request or an
 * answer behind (EndTxn completing while the resumed call waits for its
 * first request), the resumed call takes it for its own, returns success
 * while the commit is not acknowledged, and the next begin_transaction()
 * takes the acknowledgement for its own success: produce() then fails with
 * "Erroneous state" in a transaction that never began. So no error of
 * commit_transaction() is retried: one that requires an abort aborts and
 * rewinds, every other one (a timeout, a retriable error: both mean "call
 * again to resume") is fatal -- abort_transaction() is refused while the
 * commit can be resumed, and resuming runs into the above; the restart's
 * init_transactions() settles the transaction, and what was not committed
 * is consumed again. TXN_GO, or kb_pl_txn_commit()'s result.
 */
static int txn_end(kb_pipeline_t *pl)
{
        rd_kafka_error_t *error;

        /* the watchdog is armed before the failpoint: a delay there that
         * outlasts the commit's limit is a stuck commit_transaction(), and
         * how test_failpoints.TestWatchdog makes one */
        kb_pl_watch(pl, "commit_transaction", pl->txn_timeout_ms);
        /* outputs delivered and offsets sent, EndTxn not yet */
        KB_FAILPOINT("txn.before_commit");
        error = txn_call(pl, call_commit, NULL);
        kb_pl_unwatch(pl);
        if (!error)
                return TXN_GO;
        log_txn_error("commit_transaction", error);
        if (kb_kafka_err_denied(rd_kafka_error_code(error))) {
                int r = txn_denied(pl, "commit_transaction",
                                   rd_kafka_error_code(error),
                                   rd_kafka_error_string(error));
                rd_kafka_error_destroy(error);
                return r;
        }
        if (!rd_kafka_error_is_fatal(error) &&
            rd_kafka_error_txn_requires_abort(error)) {
                rd_kafka_error_destroy(error);
                return abort_and_rewind(pl);
        }
        if (rd_kafka_error_code(error) == RD_KAFKA_RESP_ERR__TIMED_OUT)
                kb_pl_set_fatal(
                    pl, KB_ERR_KAFKA,
                    "commit_transaction: no answer within %d ms: %s",
                    pl->txn_timeout_ms, rd_kafka_error_string(error));
        else
                txn_set_fatal(pl, "commit_transaction", error);
        rd_kafka_error_destroy(error);
        return -1;
}

/* The transaction that sent @p offsets committed: remember the offsets,
 * tell on_commit, and free the released records (on_finish committed). */
static void txn_after_commit(kb_pipeline_t *pl,
                             const rd_kafka_topic_partition_list_t *offsets,
                             int nout, int64_t t0)
{
        int64_t took = kb_mono_us() - t0;
        kb_rec_t *rec, *next;
        part_t *pt;
        int i;

        pl->st.txn_commits++;
        pl->abort_streak = 0;
        pl->st.txn_us += (uint64_t)took;
        pl->st.last_txn_us = (uint64_t)(took > 0 ? took : 0);
        pl->st.last_txn_records = (uint64_t)pl->rel_count;
        pl->st.txn_records += (uint64_t)pl->rel_count;
        pl->st.produced += (uint64_t)nout;
        for (i = 0; i < offsets->cnt; i++) {
                pt = kb_pl_part_find(pl, offsets->elems[i].topic,
                                     offsets->elems[i].partition);
                if (pt)
                        pt->committed = offsets->elems[i].offset;
        }
        if (pl->on_commit)
                pl->on_commit(pl->opaque, offsets);
        if (pl->at_least_once) {
                /* The mock broker does not store transactional offsets. */
                rd_kafka_resp_err_t err =
                    rd_kafka_commit(pl->consumer, offsets, 0);
                if (err)
                        kb_log_warn("pipeline", "offset commit failed: %s",
                                    rd_kafka_err2str(err));
        }
        for (rec = pl->rel_head; rec; rec = next) {
                next = rec->next;
                kb_pl_rec_free(rec, 1);
        }
        pl->rel_head = NULL;
        pl->rel_tail = &pl->rel_head;
        pl->rel_count = 0;
        for (pt = pl->parts; pt; pt = pt->next)
                pt->commit_offset = -1;
}

/*
 * Publishes every released record's outputs and the matching input offsets
 * in one transaction. Returns 0 (committed, nothing to commit, or aborted
 * and rewound) or -1 on a fatal error. Does nothing once the engine is
 * fatal, failed or closed: whatever is still held then is dropped, never
 * committed (the processor may be going away).
 */
int kb_pl_txn_commit(kb_pipeline_t *pl)
{
        rd_kafka_topic_partition_list_t *offsets;
        int r, nout = 0, nrec;
        int64_t t0, t1 = 0, t2 = 0, t3 = 0;

        if (pl->fatal)
                return -1;
        if (pl->failed || pl->closed)
                return 0;
        t0 = kb_mono_us();
        offsets = commit_offsets(pl);
        if (offsets->cnt == 0 && pl->rel_count == 0) {
                rd_kafka_topic_partition_list_destroy(offsets);
                return 0;
        }
        nrec = pl->rel_count;
        r = txn_produce(pl, offsets, &nout);
        if (r == TXN_GO) {
                t1 = kb_mono_us();
                r = txn_send_offsets(pl, offsets);
                t2 = kb_mono_us();
                pl->st.txn_offsets_us += (uint64_t)(t2 - t0);
        }
        if (r == TXN_GO) {
                r = txn_wait_delivery(pl);
                t3 = kb_mono_us();
        }
        if (r == TXN_GO)
                r = txn_end(pl);
        if (r == TXN_GO) {
                txn_after_commit(pl, offsets, nout, t0);
                /* where a commit's time goes, for latency work */
                kb_log_debug("pipeline",
                             "committed %d record(s), %d output(s) in %lld "
                             "us: produce %lld, offsets %lld, delivery "
                             "%lld, end %lld",
                             nrec, nout, (long long)(kb_mono_us() - t0),
                             (long long)(t1 - t0), (long long)(t2 - t1),
                             (long long)(t3 - t2),
                             (long long)(kb_mono_us() - t3));
                r = 0;
        }
        rd_kafka_topic_partition_list_destroy(offsets);
        return r;
}
