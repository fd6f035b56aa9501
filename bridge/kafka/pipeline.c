/* pipeline.c -- exactly-once consume -> async work -> transactional produce */
#include "pipeline.h"

#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "log.h"
#include "util.h"

/* How long the delivery of a transaction's messages may take before the
 * transaction counts as failed (then aborted and redone), and how long
 * commit_transaction() is given after that (then fatal, see txn_end()),
 * unless kb_pipeline_conf_t.txn_timeout_ms says: librdkafka's own default
 * transaction.timeout.ms. */
#define KB_TXN_TIMEOUT_MS 60000

/* Longest wait of one idle run loop iteration in the consumer poll: how
 * late a stop request or a due commit may be noticed. */
#define KB_IDLE_WAIT_MS 20

/* Default out_topics metadata refresh interval, and the timeout of one
 * metadata request on the refresh thread. */
#define KB_MD_REFRESH_MS 60000

/* After an aborted transaction the next one waits 100 ms, doubling with
 * every abort in a row up to 5 s: an error that persists (an ACL denying
 * an output topic: librdkafka then fails produce() at once until the
 * topic's metadata is refreshed) must not turn the loop into an abort
 * storm. */
#define KB_ABORT_BACKOFF_MS     100
#define KB_ABORT_BACKOFF_MAX_MS 5000
#define KB_MD_TIMEOUT_MS        5000

/* An output topic and its partition count as last learnt. */
typedef struct out_topic_s {
        char *name;
        rd_kafka_topic_t *rkt;    /* producer's handle */
        atomic_int partition_cnt; /* -1: unknown */
} out_topic_t;

typedef struct kb_out_s {
        struct kb_out_s *next;
        char *topic;
        int32_t partition;
        void *key, *value;
        size_t key_len, value_len;
        rd_kafka_headers_t *hdrs;
} kb_out_t;

typedef struct part_s part_t;

struct kb_rec_s {
        kb_rec_t *next;          /* partition FIFO, then release list */
        kb_rec_t *sprev, *snext; /* start queue, while not started */
        kb_pipeline_t *pl;
        part_t *part; /* NULL once orphaned or released */
        char *topic;
        int32_t partition;
        int64_t offset;
        void *key, *value;
        size_t key_len, value_len;
        rd_kafka_headers_t *hdrs;
        void *user;
        kb_out_t *outs, **outs_tail;
        int done, orphaned, started;
};

struct part_s {
        part_t *next;
        char *topic;
        int32_t partition;
        kb_rec_t *head, *tail; /* consumed, not yet released, in order */
        int64_t commit_offset; /* next offset to commit; -1: nothing new */
        int64_t committed;     /* offset we committed last in this
                                  assignment; -1: none yet (see
                                  rewind_consumer()) */
};

struct kb_pipeline_s {
        rd_kafka_t *consumer, *producer;
        kb_pipeline_ops_t ops;
        void *opaque;
        part_t *parts;
        kb_rec_t *rel_head, **rel_tail; /* released, awaiting commit */
        int rel_count;
        int64_t rel_first_ms;
        int abort_streak;       /* aborts since the last commit */
        int64_t txn_not_before; /* no new transaction before (mono ms) */
        int buffered;           /* records alive, orphans included */
        int in_flight;          /* started, not done, not orphaned */
        int orphans_running;    /* started, not done, orphaned: the processor
                                   still holds them and finishes them only
                                   when it is polled */
        /* consumed, not started yet (waiting for processor capacity), in
         * consumption order */
        kb_rec_t *sq_head, *sq_tail;
        int paused;
        int fatal; /* stop now: err says why */
        int err;   /* KB_ERR_KAFKA or KB_ERR_NOMEM once fatal */
        char errstr[512];
        atomic_int stop_req; /* kb_pipeline_stop() */
        int closed;
        int failed;   /* processor asked to stop without committing */
        int draining; /* in drain_and_commit(): start nothing new */
        int commit_interval_ms, commit_max_records, max_buffered;
        int drain_timeout_ms, at_least_once, txn_timeout_ms;
        void (*on_commit)(void *opaque,
                          const rd_kafka_topic_partition_list_t *offsets);
        kb_pipeline_stats_t st;
        /* out_topics metadata, refreshed by md_thread */
        out_topic_t *outs;
        int out_cnt;
        int md_refresh_ms;
        pthread_t md_thread;
        pthread_mutex_t md_lock;
        pthread_cond_t md_cond;
        int md_started, md_stop; /* md_stop: under md_lock */
        atomic_uint_fast64_t md_refreshes;
};

/* Records the first fatal cause; later ones are only logged. */
#if defined(__GNUC__)
__attribute__((format(printf, 3, 4)))
#endif
static void
set_fatal(kb_pipeline_t *pl, int err, const char *fmt, ...)
{
        va_list ap;

        if (!pl->fatal || !pl->errstr[0]) {
                va_start(ap, fmt);
                vsnprintf(pl->errstr, sizeof(pl->errstr), fmt, ap);
                va_end(ap);
                pl->err = err;
        }
        pl->fatal = 1;
}

static void out_free(kb_out_t *o)
{
        free(o->topic);
        free(o->key);
        free(o->value);
        if (o->hdrs)
                rd_kafka_headers_destroy(o->hdrs);
        free(o);
}

static void rec_free(kb_rec_t *rec, int committed)
{
        kb_out_t *o, *n;

        if (rec->started && rec->pl->ops.on_finish)
                rec->pl->ops.on_finish(rec->pl->opaque, rec, committed);

        for (o = rec->outs; o; o = n) {
                n = o->next;
                out_free(o);
        }
        rec->pl->buffered--;
        free(rec->topic);
        free(rec->key);
        free(rec->value);
        if (rec->hdrs)
                rd_kafka_headers_destroy(rec->hdrs);
        free(rec);
}

/* ---- record API ---- */

const char *kb_rec_topic(const kb_rec_t *rec)
{
        return rec->topic;
}

int32_t kb_rec_partition(const kb_rec_t *rec)
{
        return rec->partition;
}

int64_t kb_rec_offset(const kb_rec_t *rec)
{
        return rec->offset;
}

const void *kb_rec_key(const kb_rec_t *rec, size_t *len)
{
        *len = rec->key_len;
        return rec->key;
}

const void *kb_rec_value(const kb_rec_t *rec, size_t *len)
{
        *len = rec->value_len;
        return rec->value;
}

rd_kafka_headers_t *kb_rec_headers(const kb_rec_t *rec)
{
        return rec->hdrs;
}

void kb_rec_set_user(kb_rec_t *rec, void *user)
{
        rec->user = user;
}

void *kb_rec_user(const kb_rec_t *rec)
{
        return rec->user;
}

int kb_rec_orphaned(const kb_rec_t *rec)
{
        return rec->orphaned;
}

static void *dup_bytes(const void *p, size_t len)
{
        void *d;

        if (!p)
                return NULL;
        d = malloc(len ? len : 1);
        if (d && len)
                memcpy(d, p, len);
        return d;
}

int kb_rec_produce(kb_rec_t *rec, const char *topic, int32_t partition,
                   const void *key, size_t key_len, const void *value,
                   size_t value_len, rd_kafka_headers_t *hdrs)
{
        kb_out_t *o = calloc(1, sizeof(*o));

        if (!o)
                goto nomem;
        o->hdrs = hdrs;
        hdrs = NULL;
        o->topic = strdup(topic);
        o->partition = partition;
        o->key = dup_bytes(key, key_len);
        o->key_len = key ? key_len : 0;
        o->value = dup_bytes(value, value_len);
        o->value_len = value ? value_len : 0;
        if (!o->topic || (key && !o->key) || (value && !o->value)) {
                out_free(o);
                goto nomem;
        }
        *rec->outs_tail = o;
        rec->outs_tail = &o->next;
        return KB_OK;
nomem:
        if (hdrs)
                rd_kafka_headers_destroy(hdrs);
        return KB_ERR_NOMEM;
}

void kb_rec_done(kb_rec_t *rec)
{
        kb_pipeline_t *pl = rec->pl;

        if (rec->done) {
                kb_log_error("pipeline", "record %s[%d]@%lld completed twice",
                             rec->topic, (int)rec->partition,
                             (long long)rec->offset);
                return;
        }
        rec->done = 1;
        if (rec->orphaned) {
                pl->orphans_running--;
                rec_free(rec, 0);
                return;
        }
        pl->in_flight--;
}

/* ---- partitions ---- */

static part_t *part_find(kb_pipeline_t *pl, const char *topic, int32_t p)
{
        part_t *pt;

        for (pt = pl->parts; pt; pt = pt->next)
                if (pt->partition == p && !strcmp(pt->topic, topic))
                        return pt;
        return NULL;
}

static part_t *part_get(kb_pipeline_t *pl, const char *topic, int32_t p)
{
        part_t *pt = part_find(pl, topic, p);

        if (pt)
                return pt;
        pt = calloc(1, sizeof(*pt));
        if (!pt)
                return NULL;
        pt->topic = strdup(topic);
        if (!pt->topic) {
                free(pt);
                return NULL;
        }
        pt->partition = p;
        pt->commit_offset = -1;
        pt->committed = -1;
        pt->next = pl->parts;
        pl->parts = pt;
        return pt;
}

static void sq_push(kb_pipeline_t *pl, kb_rec_t *rec)
{
        rec->snext = NULL;
        rec->sprev = pl->sq_tail;
        if (pl->sq_tail)
                pl->sq_tail->snext = rec;
        else
                pl->sq_head = rec;
        pl->sq_tail = rec;
}

static void sq_remove(kb_pipeline_t *pl, kb_rec_t *rec)
{
        if (rec->sprev)
                rec->sprev->snext = rec->snext;
        else
                pl->sq_head = rec->snext;
        if (rec->snext)
                rec->snext->sprev = rec->sprev;
        else
                pl->sq_tail = rec->sprev;
        rec->sprev = rec->snext = NULL;
}

/*
 * Starts waiting records, oldest first, while the processor has room.
 * Records wait here rather than in Kafka: pausing the partitions on every
 * full processor costs a fetch restart each time.
 */
static int start_ready(kb_pipeline_t *pl)
{
        int n = 0;

        while (pl->sq_head && !pl->fatal && !pl->failed && !pl->draining &&
               pl->ops.has_capacity(pl->opaque)) {
                kb_rec_t *rec = pl->sq_head;
                sq_remove(pl, rec);
                rec->started = 1;
                pl->in_flight++;
                n++;
                pl->ops.start(pl->opaque, rec);
        }
        return n;
}

/* Abandons every record of @p pt that is not released. */
static void part_orphan_all(kb_pipeline_t *pl, part_t *pt)
{
        kb_rec_t *rec, *next;

        for (rec = pt->head; rec; rec = next) {
                next = rec->next;
                rec->next = NULL;
                rec->part = NULL;
                rec->orphaned = 1;
                pl->st.orphaned++;
                if (!rec->started) {
                        sq_remove(pl, rec);
                        rec_free(rec, 0);
                } else if (rec->done) {
                        rec_free(rec, 0);
                } else {
                        pl->in_flight--;
                        pl->orphans_running++;
                        /* the rewind re-reads it at once: the processor
                         * must not take it for a duplicate of itself */
                        if (pl->ops.on_orphan)
                                pl->ops.on_orphan(pl->opaque, rec);
                }
        }
        pt->head = pt->tail = NULL;
        pt->commit_offset = -1;
}

static void part_remove(kb_pipeline_t *pl, part_t *pt)
{
        part_t **pp;

        part_orphan_all(pl, pt);
        for (pp = &pl->parts; *pp; pp = &(*pp)->next)
                if (*pp == pt) {
                        *pp = pt->next;
                        break;
                }
        free(pt->topic);
        free(pt);
}

/* Moves every done record at the head of a partition to the release list. */
static void release_ready(kb_pipeline_t *pl)
{
        part_t *pt;

        for (pt = pl->parts; pt; pt = pt->next) {
                while (pt->head && pt->head->done) {
                        kb_rec_t *rec = pt->head;
                        pt->head = rec->next;
                        if (!pt->head)
                                pt->tail = NULL;
                        rec->next = NULL;
                        rec->part = NULL;
                        pt->commit_offset = rec->offset + 1;
                        if (pl->rel_count == 0)
                                pl->rel_first_ms = kb_mono_ms();
                        *pl->rel_tail = rec;
                        pl->rel_tail = &rec->next;
                        pl->rel_count++;
                        pl->st.released++;
                }
        }
}

static void release_list_free(kb_pipeline_t *pl)
{
        kb_rec_t *rec, *next;

        for (rec = pl->rel_head; rec; rec = next) {
                next = rec->next;
                rec_free(rec, 0);
        }
        pl->rel_head = NULL;
        pl->rel_tail = &pl->rel_head;
        pl->rel_count = 0;
}

/* ---- transactions ---- */

static void log_txn_error(const char *what, rd_kafka_error_t *error)
{
        kb_log_warn("pipeline", "%s: %s: %s%s%s", what,
                    rd_kafka_error_name(error), rd_kafka_error_string(error),
                    rd_kafka_error_is_fatal(error) ? " (fatal)" : "",
                    rd_kafka_error_txn_requires_abort(error)
                        ? " (abort required)"
                        : "");
}

/*
 * Seeks every assigned partition back to its committed offset: the one this
 * engine committed last in the current assignment where there is one, else
 * the group's as the broker has it (rd_kafka_committed(), for those
 * partitions only).
 *
 * Why our own knowledge is right: while a partition is assigned to us, the
 * group's offset for it moves only by our commits (another member's would
 * carry an older generation and be rejected; that is what fencing is for).
 * pt->committed is set only after commit_transaction() succeeded, to the
 * very offsets that transaction sent, and is forgotten with the partition
 * on a revoke or loss (part_remove()) and reset on every assignment, so it
 * never outlives the assignment it was learnt in. An aborted transaction
 * leaves it alone: nothing of it was committed. So it equals what a real
 * broker returns, without the round trip, and it is also right where the
 * broker keeps no transactional offsets (librdkafka's mock cluster:
 * rewinding to its "none" would re-read and commit everything again).
 */
static void rewind_consumer(kb_pipeline_t *pl)
{
        rd_kafka_topic_partition_list_t *offsets = NULL, *ask = NULL;
        rd_kafka_resp_err_t err;
        rd_kafka_error_t *error;
        int i, j;

        err = rd_kafka_assignment(pl->consumer, &offsets);
        if (err || !offsets || offsets->cnt == 0)
                goto out;
        ask = rd_kafka_topic_partition_list_new(offsets->cnt);
        for (i = 0; i < offsets->cnt; i++) {
                rd_kafka_topic_partition_t *tp = &offsets->elems[i];
                part_t *pt = part_find(pl, tp->topic, tp->partition);
                if (pt && pt->committed >= 0)
                        tp->offset = pt->committed;
                else
                        rd_kafka_topic_partition_list_add(ask, tp->topic,
                                                          tp->partition);
        }
        if (ask->cnt > 0) {
                err = rd_kafka_committed(pl->consumer, ask, 10000);
                if (err) {
                        kb_log_error("pipeline",
                                     "cannot read committed offsets: %s",
                                     rd_kafka_err2str(err));
                        set_fatal(pl, KB_ERR_KAFKA,
                                  "rewind: cannot read committed offsets: %s",
                                  rd_kafka_err2str(err));
                        goto out;
                }
                for (j = 0; j < ask->cnt; j++) {
                        rd_kafka_topic_partition_t *tp =
                            rd_kafka_topic_partition_list_find(
                                offsets, ask->elems[j].topic,
                                ask->elems[j].partition);
                        tp->offset = ask->elems[j].offset >= 0
                                         ? ask->elems[j].offset
                                         : RD_KAFKA_OFFSET_BEGINNING;
                }
        }
        error = rd_kafka_seek_partitions(pl->consumer, offsets, 10000);
        if (error) {
                kb_log_error("pipeline", "seek failed: %s",
                             rd_kafka_error_string(error));
                set_fatal(pl, KB_ERR_KAFKA, "rewind: seek failed: %s",
                          rd_kafka_error_string(error));
                rd_kafka_error_destroy(error);
        }
out:
        if (ask)
                rd_kafka_topic_partition_list_destroy(ask);
        if (offsets)
                rd_kafka_topic_partition_list_destroy(offsets);
}

/* Forgets everything not committed; with @p seek, re-reads it from Kafka
 * (without: the partitions are gone, another member reads them). */
static void rewind_all(kb_pipeline_t *pl, int seek)
{
        part_t *pt;

        pl->st.rewinds++;
        release_list_free(pl);
        for (pt = pl->parts; pt; pt = pt->next)
                part_orphan_all(pl, pt);
        if (seek)
                rewind_consumer(pl);
}

/* Aborts the open transaction, then rewinds. Returns -1 if fatal. */
static int abort_and_rewind(kb_pipeline_t *pl)
{
        rd_kafka_error_t *error;

        pl->st.txn_aborts++;
        error = rd_kafka_abort_transaction(pl->producer, -1);
        if (error) {
                log_txn_error("abort_transaction", error);
                set_fatal(pl, KB_ERR_KAFKA, "abort_transaction: %s: %s",
                          rd_kafka_error_name(error),
                          rd_kafka_error_string(error));
                rd_kafka_error_destroy(error);
                return -1;
        }
        rewind_all(pl, 1);
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

/* What a step of txn_commit() returns to go on with the next step; any
 * other value is txn_commit()'s result. */
#define TXN_GO 1

/*
 * Handles @p error from send_offsets_to_transaction(), as librdkafka's
 * examples/transactions.c does: fatal -> fatal; requires abort -> abort
 * and rewind; retriable -> retry (1), at most 10 times, then abort and
 * rewind (nothing is lost, it is all consumed again); anything else
 * (__STATE, __CONFLICT, ...: a call the producer refuses in its state) is
 * no condition a retry or an abort gets out of: fatal. Returns 1 to retry
 * the call, 0 after abort+rewind, -1 when fatal. Destroys @p error.
 */
static int txn_error(kb_pipeline_t *pl, const char *what,
                     rd_kafka_error_t *error, int *retries)
{
        log_txn_error(what, error);
        if (!rd_kafka_error_is_fatal(error) &&
            rd_kafka_error_txn_requires_abort(error)) {
                rd_kafka_error_destroy(error);
                return abort_and_rewind(pl);
        }
        if (!rd_kafka_error_is_fatal(error) &&
            rd_kafka_error_is_retriable(error)) {
                rd_kafka_error_destroy(error);
                if (++*retries <= 10)
                        return 1;
                return abort_and_rewind(pl);
        }
        set_fatal(pl, KB_ERR_KAFKA, "%s: %s: %s", what,
                  rd_kafka_error_name(error), rd_kafka_error_string(error));
        rd_kafka_error_destroy(error);
        return -1;
}

static int produce_out(kb_pipeline_t *pl, kb_out_t *o)
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
                        return -1;
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

/* Begins the transaction and produces every released record's outputs
 * (*nout counts them). TXN_GO, or txn_commit()'s result. */
static int txn_produce(kb_pipeline_t *pl, int *nout)
{
        rd_kafka_error_t *error;
        kb_rec_t *rec;
        kb_out_t *o;

        error = rd_kafka_begin_transaction(pl->producer);
        if (error) {
                /* begin never needs a retry; anything here is a bug or
                 * fatal state */
                log_txn_error("begin_transaction", error);
                set_fatal(pl, KB_ERR_KAFKA, "begin_transaction: %s: %s",
                          rd_kafka_error_name(error),
                          rd_kafka_error_string(error));
                rd_kafka_error_destroy(error);
                return -1;
        }
        for (rec = pl->rel_head; rec; rec = rec->next)
                for (o = rec->outs; o; o = o->next) {
                        if (produce_out(pl, o) == -1)
                                return abort_and_rewind(pl);
                        (*nout)++;
                }
        return TXN_GO;
}

/* Adds the input offsets to the transaction. TXN_GO, or txn_commit()'s
 * result. */
static int txn_send_offsets(kb_pipeline_t *pl,
                            const rd_kafka_topic_partition_list_t *offsets)
{
        rd_kafka_consumer_group_metadata_t *cgmd;
        rd_kafka_error_t *error;
        int retries = 0, r = TXN_GO;

        cgmd = rd_kafka_consumer_group_metadata(pl->consumer);
        for (;;) {
                error = rd_kafka_send_offsets_to_transaction(pl->producer,
                                                             offsets, cgmd, -1);
                if (!error)
                        break;
                r = txn_error(pl, "send_offsets_to_transaction", error,
                              &retries);
                if (r != 1)
                        break;
                r = TXN_GO;
        }
        rd_kafka_consumer_group_metadata_destroy(cgmd);
        return r;
}

/*
 * Most of a commit is waiting for the transaction's messages to be
 * delivered (partition registration, produce round trips): wait for that
 * in short slices of rd_kafka_flush(), which is no transactional call, and
 * keep the vendor calls moving meanwhile. Records released from here on go
 * into the next transaction; the ones being committed are not touched.
 * TXN_GO, or txn_commit()'s result.
 */
static int txn_wait_delivery(kb_pipeline_t *pl)
{
        int64_t deadline = kb_mono_ms() + pl->txn_timeout_ms;

        while (rd_kafka_flush(pl->producer, 10) ==
               RD_KAFKA_RESP_ERR__TIMED_OUT) {
                if (kb_mono_ms() >= deadline) {
                        kb_log_warn("pipeline",
                                    "transaction's messages not delivered "
                                    "within %d ms: aborting it",
                                    pl->txn_timeout_ms);
                        return abort_and_rewind(pl);
                }
                start_ready(pl);
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
 * is consumed again. TXN_GO, or txn_commit()'s result.
 */
static int txn_end(kb_pipeline_t *pl)
{
        rd_kafka_error_t *error;

        error = rd_kafka_commit_transaction(pl->producer, pl->txn_timeout_ms);
        if (!error)
                return TXN_GO;
        log_txn_error("commit_transaction", error);
        if (!rd_kafka_error_is_fatal(error) &&
            rd_kafka_error_txn_requires_abort(error)) {
                rd_kafka_error_destroy(error);
                return abort_and_rewind(pl);
        }
        if (rd_kafka_error_code(error) == RD_KAFKA_RESP_ERR__TIMED_OUT)
                set_fatal(pl, KB_ERR_KAFKA,
                          "commit_transaction: no answer within %d ms: %s",
                          pl->txn_timeout_ms, rd_kafka_error_string(error));
        else
                set_fatal(pl, KB_ERR_KAFKA, "commit_transaction: %s: %s",
                          rd_kafka_error_name(error),
                          rd_kafka_error_string(error));
        rd_kafka_error_destroy(error);
        return -1;
}

/* The transaction that sent @p offsets committed: remember the offsets,
 * tell on_commit, and free the released records (on_finish committed). */
static void txn_after_commit(kb_pipeline_t *pl,
                             const rd_kafka_topic_partition_list_t *offsets,
                             int nout, int64_t t0)
{
        kb_rec_t *rec, *next;
        part_t *pt;
        int i;

        pl->st.txn_commits++;
        pl->abort_streak = 0;
        pl->st.txn_us += (uint64_t)(kb_mono_us() - t0);
        pl->st.produced += (uint64_t)nout;
        for (i = 0; i < offsets->cnt; i++) {
                pt = part_find(pl, offsets->elems[i].topic,
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
                rec_free(rec, 1);
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
static int txn_commit(kb_pipeline_t *pl)
{
        rd_kafka_topic_partition_list_t *offsets;
        int r, nout = 0;
        int64_t t0;

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
        r = txn_produce(pl, &nout);
        if (r == TXN_GO) {
                r = txn_send_offsets(pl, offsets);
                pl->st.txn_offsets_us += (uint64_t)(kb_mono_us() - t0);
        }
        if (r == TXN_GO)
                r = txn_wait_delivery(pl);
        if (r == TXN_GO)
                r = txn_end(pl);
        if (r == TXN_GO) {
                txn_after_commit(pl, offsets, nout, t0);
                r = 0;
        }
        rd_kafka_topic_partition_list_destroy(offsets);
        return r;
}

static int parts_in_flight(kb_pipeline_t *pl,
                           const rd_kafka_topic_partition_list_t *parts)
{
        int i;

        for (i = 0; parts && i < parts->cnt; i++) {
                part_t *pt = part_find(pl, parts->elems[i].topic,
                                       parts->elems[i].partition);
                kb_rec_t *rec;
                for (rec = pt ? pt->head : NULL; rec; rec = rec->next)
                        if (rec->started && !rec->done)
                                return 1;
        }
        return 0;
}

/* Waits (bounded) for the records of @p parts (all when NULL) to finish,
 * then commits everything that is done. */
static int drain_and_commit(kb_pipeline_t *pl,
                            const rd_kafka_topic_partition_list_t *parts)
{
        int64_t deadline = kb_mono_ms() + pl->drain_timeout_ms;
        int r;

        /* Fatal, failed or closed: nothing is committed any more, so there
         * is nothing to wait for (and after pipeline_close() the
         * processor may be gone). */
        if (pl->fatal)
                return -1;
        if (pl->failed || pl->closed)
                return 0;
        /* nothing new starts while partitions are handed over or we stop */
        pl->draining = 1;
        while ((parts ? parts_in_flight(pl, parts) : pl->in_flight > 0) &&
               kb_mono_ms() < deadline && !pl->fatal)
                pl->ops.poll(pl->opaque, 20);
        release_ready(pl);
        r = txn_commit(pl);
        pl->draining = 0;
        return r;
}

/* ---- consumer group ---- */

static void rebalance_cb(rd_kafka_t *rk, rd_kafka_resp_err_t err,
                         rd_kafka_topic_partition_list_t *parts, void *opaque)
{
        kb_pipeline_t *pl = opaque;
        int cooperative =
            !strcmp(rd_kafka_rebalance_protocol(rk), "COOPERATIVE");
        rd_kafka_error_t *error = NULL;
        rd_kafka_resp_err_t aerr = 0;
        int i;

        if (err == RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS) {
                kb_log_info("pipeline", "assigned %d partition(s)", parts->cnt);
                for (i = 0; i < parts->cnt; i++) {
                        part_t *pt = part_get(pl, parts->elems[i].topic,
                                              parts->elems[i].partition);
                        if (!pt)
                                set_fatal(pl, KB_ERR_NOMEM,
                                          "out of memory taking an assigned "
                                          "partition");
                        else /* another member may have committed since */
                                pt->committed = -1;
                }
                if (pl->ops.on_assign &&
                    pl->ops.on_assign(pl->opaque, parts) != 0)
                        set_fatal(pl, KB_ERR_KAFKA,
                                  "the processor could not take %d assigned "
                                  "partition(s) (see log)",
                                  parts->cnt);
                if (cooperative)
                        error = rd_kafka_incremental_assign(rk, parts);
                else
                        aerr = rd_kafka_assign(rk, parts);
                if (pl->paused)
                        rd_kafka_pause_partitions(rk, parts);
        } else {
                int lost = rd_kafka_assignment_lost(rk);
                kb_log_info("pipeline", "%s %d partition(s)",
                            lost ? "lost" : "revoked", parts->cnt);
                if (lost) {
                        /* Our commits would be fenced: forget it all. */
                        rewind_all(pl, 0);
                } else {
                        /* on -1 the cause is recorded already */
                        (void)drain_and_commit(pl, parts);
                }
                for (i = 0; i < parts->cnt; i++) {
                        part_t *pt = part_find(pl, parts->elems[i].topic,
                                               parts->elems[i].partition);
                        if (pt)
                                part_remove(pl, pt);
                }
                if (cooperative)
                        error = rd_kafka_incremental_unassign(rk, parts);
                else
                        aerr = rd_kafka_assign(rk, NULL);
        }
        if (error) {
                kb_log_error("pipeline", "rebalance: %s",
                             rd_kafka_error_string(error));
                set_fatal(pl, KB_ERR_KAFKA, "rebalance: %s",
                          rd_kafka_error_string(error));
                rd_kafka_error_destroy(error);
        }
        if (aerr) {
                kb_log_error("pipeline", "rebalance: %s",
                             rd_kafka_err2str(aerr));
                set_fatal(pl, KB_ERR_KAFKA, "rebalance: %s",
                          rd_kafka_err2str(aerr));
        }
}

static void set_paused(kb_pipeline_t *pl, int pause)
{
        rd_kafka_topic_partition_list_t *parts = NULL;

        if (pl->paused == pause)
                return;
        if (rd_kafka_assignment(pl->consumer, &parts) == 0 && parts) {
                if (pause)
                        rd_kafka_pause_partitions(pl->consumer, parts);
                else
                        rd_kafka_resume_partitions(pl->consumer, parts);
                rd_kafka_topic_partition_list_destroy(parts);
        }
        pl->paused = pause;
}

/* Takes one consumed message into its partition's FIFO and the start
 * queue; returns 1 if a record was taken. */
static int take_message(kb_pipeline_t *pl, rd_kafka_message_t *rkm)
{
        kb_rec_t *rec;
        part_t *pt;
        rd_kafka_headers_t *hdrs = NULL;

        if (rkm->err) {
                if (rkm->err == RD_KAFKA_RESP_ERR__PARTITION_EOF)
                        return 0;
                kb_log_warn("pipeline", "consumer: %s: %s",
                            rd_kafka_err2name(rkm->err),
                            rd_kafka_message_errstr(rkm));
                if (rkm->err == RD_KAFKA_RESP_ERR__FATAL) {
                        char why[256];
                        rd_kafka_resp_err_t orig = rd_kafka_fatal_error(
                            pl->consumer, why, sizeof(why));
                        set_fatal(pl, KB_ERR_KAFKA, "consumer: %s: %s",
                                  rd_kafka_err2name(orig), why);
                }
                return 0;
        }
        pt = part_find(pl, rd_kafka_topic_name(rkm->rkt), rkm->partition);
        if (!pt) {
                /* not (or no longer) ours: a revoke raced the fetch */
                return 0;
        }
        rec = calloc(1, sizeof(*rec));
        if (!rec)
                goto nomem;
        rec->pl = pl;
        rec->outs_tail = &rec->outs;
        rec->topic = strdup(pt->topic);
        rec->partition = rkm->partition;
        rec->offset = rkm->offset;
        rec->key = dup_bytes(rkm->key, rkm->key_len);
        rec->key_len = rkm->key ? rkm->key_len : 0;
        rec->value = dup_bytes(rkm->payload, rkm->len);
        rec->value_len = rkm->payload ? rkm->len : 0;
        if (rd_kafka_message_headers(rkm, &hdrs) == 0 && hdrs)
                rec->hdrs = rd_kafka_headers_copy(hdrs);
        pl->buffered++;
        if (!rec->topic || (rkm->key && !rec->key) ||
            (rkm->payload && !rec->value)) {
                rec_free(rec, 0);
                goto nomem;
        }
        rec->part = pt;
        if (pt->tail)
                pt->tail->next = rec;
        else
                pt->head = rec;
        pt->tail = rec;
        pl->st.consumed++;
        sq_push(pl, rec);
        return 1;
nomem:
        /* Not consumed as far as offsets go: rewind so it is read again. */
        kb_log_error("pipeline", "out of memory taking a record; rewinding");
        rewind_all(pl, 1);
        return 0;
}

/* ---- output topics' metadata ---- */

/* Fetches @p ot's metadata (into the producer, so the first transaction
 * does not wait for it) and stores its partition count. Blocks up to
 * @p timeout_ms. Returns the error; a failed fetch keeps the count. */
static rd_kafka_resp_err_t md_fetch(kb_pipeline_t *pl, out_topic_t *ot,
                                    int timeout_ms)
{
        const rd_kafka_metadata_t *md = NULL;
        rd_kafka_resp_err_t err;

        err = rd_kafka_metadata(pl->producer, 0, ot->rkt, &md, timeout_ms);
        if (!err && md->topic_cnt != 1)
                err = RD_KAFKA_RESP_ERR__UNKNOWN_TOPIC;
        if (!err)
                err = md->topics[0].err;
        if (!err && md->topics[0].partition_cnt > 0)
                atomic_store(&ot->partition_cnt, md->topics[0].partition_cnt);
        if (md)
                rd_kafka_metadata_destroy(md);
        return err;
}

/*
 * The refresh thread: every md_refresh_ms, one metadata request per output
 * topic. Its blocking is its own: the engine thread only reads the atomic
 * counts. A topic that cannot be described keeps its last count (a broker
 * hiccup must not make a processor fall back to other partitioning).
 */
static void *md_main(void *arg)
{
        kb_pipeline_t *pl = arg;
        struct timespec until;
        int i, stop;

        pthread_mutex_lock(&pl->md_lock);
        for (;;) {
                clock_gettime(CLOCK_MONOTONIC, &until);
                until.tv_sec += pl->md_refresh_ms / 1000;
                until.tv_nsec += (long)(pl->md_refresh_ms % 1000) * 1000000L;
                if (until.tv_nsec >= 1000000000L) {
                        until.tv_sec++;
                        until.tv_nsec -= 1000000000L;
                }
                while (!pl->md_stop &&
                       pthread_cond_timedwait(&pl->md_cond, &pl->md_lock,
                                              &until) != ETIMEDOUT)
                        ;
                if (pl->md_stop)
                        break;
                pthread_mutex_unlock(&pl->md_lock);
                for (i = 0; i < pl->out_cnt; i++) {
                        rd_kafka_resp_err_t err =
                            md_fetch(pl, &pl->outs[i], KB_MD_TIMEOUT_MS);
                        if (err)
                                kb_log_warn(
                                    "pipeline",
                                    "metadata of %s: %s (keeping %d "
                                    "partition(s))",
                                    pl->outs[i].name, rd_kafka_err2str(err),
                                    atomic_load(&pl->outs[i].partition_cnt));
                }
                atomic_fetch_add(&pl->md_refreshes, 1);
                pthread_mutex_lock(&pl->md_lock);
                stop = pl->md_stop;
                if (stop)
                        break;
        }
        pthread_mutex_unlock(&pl->md_lock);
        return NULL;
}

/* Takes the output topics, checks each exists (the daemons never create
 * topics) and learns its partition count, then starts the refresh
 * thread. */
static int outs_init(kb_pipeline_t *pl, const char *const *topics, char *errstr,
                     size_t errstr_size)
{
        pthread_condattr_t ca;
        const char *const *t;
        int n = 0, i, e;

        for (t = topics; t && *t; t++)
                n++;
        pl->outs = calloc(n ? (size_t)n : 1, sizeof(*pl->outs));
        if (!pl->outs) {
                kb_snprintf(errstr, errstr_size, "out of memory");
                return -1;
        }
        for (i = 0; i < n; i++) {
                out_topic_t *ot = &pl->outs[i];
                rd_kafka_resp_err_t err;

                atomic_init(&ot->partition_cnt, -1);
                ot->name = strdup(topics[i]);
                if (!ot->name) {
                        kb_snprintf(errstr, errstr_size, "out of memory");
                        return -1;
                }
                pl->out_cnt = i + 1;
                ot->rkt = rd_kafka_topic_new(pl->producer, ot->name, NULL);
                if (!ot->rkt) {
                        kb_snprintf(errstr, errstr_size, "output topic %s: %s",
                                    ot->name,
                                    rd_kafka_err2str(rd_kafka_last_error()));
                        return -1;
                }
                err = md_fetch(pl, ot, 30000);
                if (err) {
                        kb_snprintf(errstr, errstr_size,
                                    "output topic %s: %s (the daemons never "
                                    "create topics)",
                                    ot->name, rd_kafka_err2str(err));
                        return -1;
                }
        }
        /* the pthread functions return their error, errno is not set */
        if ((e = pthread_condattr_init(&ca))) {
                kb_snprintf(errstr, errstr_size, "metadata thread: %s",
                            strerror(e));
                return -1;
        }
        if (!(e = pthread_condattr_setclock(&ca, CLOCK_MONOTONIC)))
                e = pthread_cond_init(&pl->md_cond, &ca);
        pthread_condattr_destroy(&ca);
        if (e) {
                kb_snprintf(errstr, errstr_size, "metadata thread: %s",
                            strerror(e));
                return -1;
        }
        if ((e = pthread_mutex_init(&pl->md_lock, NULL))) {
                pthread_cond_destroy(&pl->md_cond);
                kb_snprintf(errstr, errstr_size, "metadata thread: %s",
                            strerror(e));
                return -1;
        }
        if ((e = pthread_create(&pl->md_thread, NULL, md_main, pl))) {
                pthread_mutex_destroy(&pl->md_lock);
                pthread_cond_destroy(&pl->md_cond);
                kb_snprintf(errstr, errstr_size, "metadata thread: %s",
                            strerror(e));
                return -1;
        }
        pl->md_started = 1;
        return 0;
}

static void outs_destroy(kb_pipeline_t *pl)
{
        int i;

        if (pl->md_started) {
                pthread_mutex_lock(&pl->md_lock);
                pl->md_stop = 1;
                pthread_cond_signal(&pl->md_cond);
                pthread_mutex_unlock(&pl->md_lock);
                pthread_join(pl->md_thread, NULL);
                pthread_mutex_destroy(&pl->md_lock);
                pthread_cond_destroy(&pl->md_cond);
                pl->md_started = 0;
        }
        for (i = 0; i < pl->out_cnt; i++) {
                if (pl->outs[i].rkt)
                        rd_kafka_topic_destroy(pl->outs[i].rkt);
                free(pl->outs[i].name);
        }
        free(pl->outs);
        pl->outs = NULL;
        pl->out_cnt = 0;
}

int kb_pipeline_partition_count(const kb_pipeline_t *pl, const char *topic)
{
        int i;

        for (i = 0; i < pl->out_cnt; i++)
                if (!strcmp(pl->outs[i].name, topic))
                        return atomic_load(
                            (atomic_int *)&pl->outs[i].partition_cnt);
        return -1;
}

kb_pipeline_t *kb_pipeline_new(kb_pipeline_conf_t *pc,
                               const kb_pipeline_ops_t *ops, void *opaque,
                               char *errstr, size_t errstr_size)
{
        kb_pipeline_t *pl = calloc(1, sizeof(*pl));
        rd_kafka_topic_partition_list_t *topics = NULL;
        rd_kafka_error_t *error;
        rd_kafka_resp_err_t err;
        const char *const *t;
        char rerr[512];

        if (!pl) {
                kb_snprintf(errstr, errstr_size, "out of memory");
                goto fail;
        }
        pl->ops = *ops;
        pl->opaque = opaque;
        pl->rel_tail = &pl->rel_head;
        pl->commit_interval_ms = pc->commit_interval_ms;
        pl->commit_max_records = pc->commit_max_records;
        pl->max_buffered = pc->max_buffered;
        pl->drain_timeout_ms = pc->drain_timeout_ms;
        pl->at_least_once = pc->at_least_once;
        pl->txn_timeout_ms =
            pc->txn_timeout_ms > 0 ? pc->txn_timeout_ms : KB_TXN_TIMEOUT_MS;
        pl->on_commit = pc->on_commit;
        pl->md_refresh_ms = pc->metadata_refresh_ms > 0
                                ? pc->metadata_refresh_ms
                                : KB_MD_REFRESH_MS;
        atomic_init(&pl->stop_req, 0);
        atomic_init(&pl->md_refreshes, 0);

        pl->producer = rd_kafka_new(RD_KAFKA_PRODUCER, pc->producer_conf, rerr,
                                    sizeof(rerr));
        if (!pl->producer) {
                kb_snprintf(errstr, errstr_size, "producer: %s", rerr);
                goto fail;
        }
        pc->producer_conf = NULL;
        rd_kafka_conf_set_rebalance_cb(pc->consumer_conf, rebalance_cb);
        rd_kafka_conf_set_opaque(pc->consumer_conf, pl);
        pl->consumer = rd_kafka_new(RD_KAFKA_CONSUMER, pc->consumer_conf, rerr,
                                    sizeof(rerr));
        if (!pl->consumer) {
                kb_snprintf(errstr, errstr_size, "consumer: %s", rerr);
                goto fail;
        }
        pc->consumer_conf = NULL;
        rd_kafka_poll_set_consumer(pl->consumer);

        error = rd_kafka_init_transactions(pl->producer, 60000);
        if (error) {
                kb_snprintf(errstr, errstr_size, "init_transactions: %s",
                            rd_kafka_error_string(error));
                rd_kafka_error_destroy(error);
                goto fail;
        }
        if (outs_init(pl, pc->out_topics, errstr, errstr_size))
                goto fail;
        topics = rd_kafka_topic_partition_list_new(4);
        for (t = pc->topics; t && *t; t++)
                rd_kafka_topic_partition_list_add(topics, *t,
                                                  RD_KAFKA_PARTITION_UA);
        err = rd_kafka_subscribe(pl->consumer, topics);
        rd_kafka_topic_partition_list_destroy(topics);
        if (err) {
                kb_snprintf(errstr, errstr_size, "subscribe: %s",
                            rd_kafka_err2str(err));
                goto fail;
        }
        return pl;
fail:
        if (pc->producer_conf)
                rd_kafka_conf_destroy(pc->producer_conf);
        if (pc->consumer_conf)
                rd_kafka_conf_destroy(pc->consumer_conf);
        pc->producer_conf = pc->consumer_conf = NULL;
        kb_pipeline_destroy(pl);
        return NULL;
}

/* Leaves the group while the processor still exists (the revoke callback
 * may call it); whatever is still running is orphaned. */
static int pipeline_close(kb_pipeline_t *pl)
{
        part_t *pt;
        rd_kafka_resp_err_t err;

        if (pl->closed)
                return pl->fatal ? pl->err : KB_OK;
        for (pt = pl->parts; pt; pt = pt->next)
                part_orphan_all(pl, pt);
        release_list_free(pl);
        pl->closed = 1;
        err = rd_kafka_consumer_close(pl->consumer);
        if (err)
                kb_log_warn("pipeline", "consumer close: %s",
                            rd_kafka_err2str(err));
        return pl->fatal ? pl->err : KB_OK;
}

void kb_pipeline_fail(kb_pipeline_t *pl)
{
        pl->failed = 1;
}

void kb_pipeline_stop(kb_pipeline_t *pl)
{
        atomic_store(&pl->stop_req, 1);
}

const char *kb_pipeline_last_error(const kb_pipeline_t *pl)
{
        return pl->errstr;
}

static int stop_requested(kb_pipeline_t *pl, atomic_int *stop)
{
        return (stop && atomic_load(stop)) || atomic_load(&pl->stop_req);
}

/*
 * How long the run loop may wait in the consumer poll when nothing else
 * waits: 0 while a record is in flight or orphaned (the processor's poll
 * then waits instead, and returns as soon as a call completes), else until
 * the held commit is due -- no earlier than txn_not_before (the backoff
 * after an abort) and, below commit_max_records, no earlier than
 * commit_interval_ms after the first release -- and at most
 * KB_IDLE_WAIT_MS. A message that arrives ends the wait at once. Without
 * it a loop with released records and nothing in flight polls everything
 * with timeout 0 for the whole backoff or interval: a core at 100%.
 */
static int idle_wait_ms(const kb_pipeline_t *pl)
{
        int64_t now, due;

        if (pl->in_flight > 0 || pl->orphans_running > 0)
                return 0;
        if (pl->rel_count == 0)
                return KB_IDLE_WAIT_MS;
        now = kb_mono_ms();
        due = pl->rel_count >= pl->commit_max_records
                  ? now
                  : pl->rel_first_ms + pl->commit_interval_ms;
        if (pl->txn_not_before > due)
                due = pl->txn_not_before;
        if (due <= now)
                return 0;
        return due - now > KB_IDLE_WAIT_MS ? KB_IDLE_WAIT_MS : (int)(due - now);
}

int kb_pipeline_run(kb_pipeline_t *pl, atomic_int *stop)
{
        while (!stop_requested(pl, stop) && !pl->fatal && !pl->failed) {
                int taken = 0, started;
                rd_kafka_message_t *rkm;
                int wait = idle_wait_ms(pl);

                pl->st.loops++;

                /* Pause only when the buffer is full; resume at half, so
                 * the fetcher is not toggled on every record. */
                if (pl->buffered >= pl->max_buffered)
                        set_paused(pl, 1);
                else if (pl->buffered <= pl->max_buffered / 2)
                        set_paused(pl, 0);
                /* Always poll the consumer: it serves rebalances and keeps
                 * the membership alive while we are paused. */
                do {
                        rkm = rd_kafka_consumer_poll(pl->consumer,
                                                     taken ? 0 : wait);
                        if (!rkm)
                                break;
                        taken += take_message(pl, rkm);
                        rd_kafka_message_destroy(rkm);
                } while (pl->buffered < pl->max_buffered && taken < 1000 &&
                         !pl->fatal);
                started = start_ready(pl);
                /* Orphans too: a processor holding abandoned records may
                 * have no room for new ones until it is polled and
                 * finishes them. */
                if (pl->in_flight > 0 || pl->orphans_running > 0) {
                        /* returns as soon as a call completes */
                        if (pl->ops.poll(pl->opaque,
                                         taken || started ? 0 : 10) > 0)
                                start_ready(pl);
                }
                rd_kafka_poll(pl->producer, 0);
                release_ready(pl);
                if (pl->rel_count > 0 && kb_mono_ms() >= pl->txn_not_before &&
                    (pl->rel_count >= pl->commit_max_records ||
                     kb_mono_ms() - pl->rel_first_ms >= pl->commit_interval_ms))
                        if (txn_commit(pl) == -1)
                                break;
        }
        if (!pl->fatal && !pl->failed) {
                /* Orderly stop: take nothing new, finish what is running
                 * (on -1 the cause is recorded). */
                set_paused(pl, 1);
                (void)drain_and_commit(pl, NULL);
        }
        /* Always leave the group here, while the processor exists: every
         * record still held is dropped now, and the revoke that
         * rd_kafka_consumer_close() runs finds nothing to commit.
         * kb_pipeline_destroy() must never be the one to close (its
         * revoke would drain and commit after the processor is gone). */
        pipeline_close(pl);
        if (pl->fatal)
                return pl->err;
        return pl->failed ? KB_ERR_STATE : KB_OK;
}

void kb_pipeline_destroy(kb_pipeline_t *pl)
{
        part_t *pt, *next;

        if (!pl)
                return;
        if (pl->consumer) {
                if (!pl->closed) {
                        /* kb_pipeline_run() never ran (it always closes):
                         * the revoke this runs must commit nothing */
                        pl->closed = 1;
                        rd_kafka_consumer_close(pl->consumer);
                }
                rd_kafka_destroy(pl->consumer);
        }
        release_list_free(pl);
        for (pt = pl->parts; pt; pt = next) {
                next = pt->next;
                part_orphan_all(pl, pt);
                free(pt->topic);
                free(pt);
        }
        /* the refresh thread uses the producer: stop it first */
        outs_destroy(pl);
        if (pl->producer) {
                rd_kafka_flush(pl->producer, 5000);
                rd_kafka_destroy(pl->producer);
        }
        free(pl);
}

void kb_pipeline_stats(const kb_pipeline_t *pl, kb_pipeline_stats_t *st)
{
        *st = pl->st;
        st->metadata_refreshes =
            atomic_load((atomic_uint_fast64_t *)&pl->md_refreshes);
        st->buffered = pl->buffered;
        st->in_flight = pl->in_flight;
}

rd_kafka_t *kb_pipeline_producer(kb_pipeline_t *pl)
{
        return pl->producer;
}
