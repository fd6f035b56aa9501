/* pipeline.h -- exactly-once consume -> async work -> transactional produce */
#ifndef KB_PIPELINE_H
#define KB_PIPELINE_H

#include <stdatomic.h>
#include <stdint.h>

#include <librdkafka/rdkafka.h>

#include "kyc_bridge.h"

/*
 * The engine both daemons run on. It consumes input records, hands each to a
 * processor that works on it asynchronously (many at once, several from one
 * partition), and when a record is done it holds the record's output records
 * until every earlier record of the same partition is done too. Released
 * records are published in one Kafka transaction together with their input
 * offsets, so after any crash each input record has either all of its outputs
 * committed with its offset, or none of them and is consumed again.
 *
 * Threading: everything runs on the thread that calls kb_pipeline_run(),
 * including every processor callback, except where a function says "any
 * thread" (kb_pipeline_stop(), kb_pipeline_partition_count()).
 *
 * Partition counts of the output topics: fetched (and checked) by
 * kb_pipeline_new(), then refreshed every metadata_refresh_ms by a small
 * thread of the pipeline's own, which blocks on the metadata request
 * instead of the engine thread: a slow or unreachable broker then delays
 * the refresh, never the processor's calls or a commit. (A short-timeout
 * request between transactions would still stall every call in flight for
 * up to that timeout, and give up when the broker is slow.) The counts
 * are kept in atomics, so kb_pipeline_partition_count() never blocks and
 * never talks to Kafka: call it from processor callbacks freely.
 */

typedef struct kb_pipeline_s kb_pipeline_t;
typedef struct kb_rec_s kb_rec_t;

typedef struct kb_pipeline_ops_s {
        /* A new input record. The processor must call kb_rec_done() exactly
         * once for it, now or later. */
        void (*start)(void *opaque, kb_rec_t *rec);
        /* Drives the processor's I/O for up to @p timeout_ms (0: no wait). */
        int (*poll)(void *opaque, int timeout_ms);
        /* Non-zero while the processor accepts more records. */
        int (*has_capacity)(void *opaque);
        /* Partitions are being assigned; nothing from them has been started
         * yet. Non-zero return is fatal. May be NULL. */
        int (*on_assign)(void *opaque,
                         const rd_kafka_topic_partition_list_t *parts);
        /* Called exactly once per record, right before it is freed:
         * @p committed is non-zero when its outputs and offset were
         * committed, zero when it was dropped (abort, revoke, stop) and will
         * be consumed again by this or another member. For an in-flight
         * record this happens inside kb_rec_done(). May be NULL. */
        void (*on_finish)(void *opaque, kb_rec_t *rec, int committed);
        /* A started record that is not done yet was orphaned (an aborted
         * transaction's rewind, a revoke or lost partition, the stop):
         * its outputs will be dropped, and the same input may be consumed
         * and started again right away -- before this record is done,
         * while the processor's call for it still runs. Called once per
         * such record, on the engine thread, from inside the engine (the
         * run loop, the rebalance callback, or kb_pipeline_destroy()),
         * never from inside a processor callback; kb_rec_orphaned() is
         * already non-zero. Release here whatever would stop the
         * re-consumed record from being processed (a claim on its id);
         * the record stays the processor's until it calls kb_rec_done(),
         * and on_finish(committed 0) still follows. May be NULL. */
        void (*on_orphan)(void *opaque, kb_rec_t *rec);
} kb_pipeline_ops_t;

typedef struct kb_pipeline_conf_s {
        rd_kafka_conf_t *consumer_conf; /* ownership taken by _new */
        rd_kafka_conf_t *producer_conf; /* ownership taken by _new */
        const char *const *topics;      /* NULL-terminated input topics */
        const char *const *out_topics;  /* NULL-terminated output topics:
                                           checked to exist and their
                                           metadata fetched at start, so the
                                           first transaction does not wait
                                           for it (may be NULL) */
        int commit_interval_ms;         /* max wait of a done record */
        int commit_max_records;         /* records per transaction */
        int no_idle_commit;             /* commit only when the interval or
                                           the batch is full, never at once
                                           when the engine is idle */
        int max_buffered;               /* records held at once, all states */
        int drain_timeout_ms;           /* wait for in-flight on revoke/stop */
        int txn_timeout_ms;             /* the producer's
                                           transaction.timeout.ms: how long
                                           a transaction's delivery and its
                                           commit_transaction() may take
                                           (0: 60 s, librdkafka's default) */
        int at_least_once;              /* embedded mock broker: also commit
                                           offsets with rd_kafka_commit() */
        int metadata_refresh_ms;        /* out_topics partition counts
                                           refreshed this often (0: 60 s) */
        int defer_subscribe;            /* kb_pipeline_new() does not
                                           subscribe: the caller calls
                                           kb_pipeline_subscribe() */
        /* Called on the engine thread after each committed transaction with
         * the input offsets (next offset to read) it committed, as sent
         * with send_offsets_to_transaction(); opaque is the pipeline's.
         * kb_pipeline_stats() then has the transaction's last_txn_records
         * and last_txn_us. For metrics and tests. May be NULL. */
        void (*on_commit)(void *opaque,
                          const rd_kafka_topic_partition_list_t *offsets);
} kb_pipeline_conf_t;

typedef struct kb_pipeline_stats_s {
        uint64_t consumed, released, produced, txn_commits, txn_aborts, rewinds,
            orphaned;
        uint64_t txn_us;             /* time spent committing, in total */
        uint64_t txn_offsets_us;     /* of it: up to send_offsets (blocking) */
        uint64_t queue_full;         /* produce waits on a full local queue */
        uint64_t metadata_refreshes; /* out_topics metadata refreshed */
        uint64_t loops;              /* run loop iterations (an idle engine
                                        makes about 50 a second) */
        uint64_t txn_records;        /* input records committed, in total */
        /* The last committed transaction, set before on_commit is called
         * (so a hook can read them with kb_pipeline_stats()): its input
         * records and its time from the start of the commit (produce,
         * send_offsets, delivery, commit_transaction) to its end. */
        uint64_t last_txn_records;
        uint64_t last_txn_us;
        int64_t buffered, in_flight;
} kb_pipeline_stats_t;

/**
 * Subscribes the consumer to @p topics (NULL-terminated): for a pipeline
 * made with pc->defer_subscribe, once the caller's own start-up reads are
 * done. 0, or -1 with @p errstr filled.
 */
int kb_pipeline_subscribe(kb_pipeline_t *pl, const char *const *topics,
                          char *errstr, size_t errstr_size);

/**
 * Creates the consumer (subscribed to conf->topics unless
 * conf->defer_subscribe) and the transactional
 * producer (init_transactions done), fetches the out_topics' metadata and
 * starts the metadata refresh thread. Returns NULL + errstr on failure
 * (errstr starts with "out of memory" when that was the cause); the
 * rd_kafka_conf_t objects are consumed either way.
 */
kb_pipeline_t *kb_pipeline_new(kb_pipeline_conf_t *pc,
                               const kb_pipeline_ops_t *ops, void *opaque,
                               char *errstr, size_t errstr_size);

/**
 * Runs until *stop (may be NULL) becomes non-zero or kb_pipeline_stop() is
 * called, then drains in-flight work (bounded by drain_timeout_ms), commits
 * what is done and returns KB_OK. Whatever way it returns, it has left the
 * consumer group first: every record still held was dropped (on_orphan /
 * on_finish called; records still running stay the processor's until
 * kb_rec_done()), and nothing is committed after it returns. Returns
 * KB_ERR_KAFKA on a fatal Kafka error, KB_ERR_NOMEM when the engine ran out of
 * memory (either way the process should exit non-zero and be restarted; nothing
 * uncommitted is lost; kb_pipeline_last_error() says why), KB_ERR_STATE after
 * kb_pipeline_fail(). Call from one thread, once.
 */
int kb_pipeline_run(kb_pipeline_t *pl, atomic_int *stop);

/**
 * Asks kb_pipeline_run() to return (same drain as *stop). Any thread, also
 * a signal handler (one lock-free atomic store).
 */
void kb_pipeline_stop(kb_pipeline_t *pl);

/**
 * Why kb_pipeline_run() returned an error: the first fatal cause, with
 * librdkafka's error text ("commit_transaction: Local: This instance has
 * been fenced ..."), or "" when there was none. Valid until
 * kb_pipeline_destroy(). Engine thread, or any thread after run returned.
 */
const char *kb_pipeline_last_error(const kb_pipeline_t *pl);

/**
 * Partition count of output topic @p topic (one of conf->out_topics), as
 * of the last metadata fetch: > 0, or -1 when unknown (not an out_topic).
 * Never blocks, never calls Kafka. Any thread.
 */
int kb_pipeline_partition_count(const kb_pipeline_t *pl, const char *topic);

/**
 * Makes kb_pipeline_run() return KB_ERR_STATE soon: nothing
 * more is started, nothing more is committed, no drain. For a processor
 * that met a condition it must not commit past (e.g. the vendor refused
 * our API key). Safe from processor callbacks.
 */
void kb_pipeline_fail(kb_pipeline_t *pl);

/** Joins the refresh thread, closes both clients. Not while run runs. */
void kb_pipeline_destroy(kb_pipeline_t *pl);
void kb_pipeline_stats(const kb_pipeline_t *pl, kb_pipeline_stats_t *st);
/** The transactional producer. Processor callbacks must not make
 * blocking calls on it (rd_kafka_metadata(): use
 * kb_pipeline_partition_count()). */
rd_kafka_t *kb_pipeline_producer(kb_pipeline_t *pl);

/**
 * The processor's @p opaque given to kb_pipeline_new(). The engine's own
 * clients carry the pipeline as their librdkafka opaque, so a callback set
 * on pc->consumer_conf (e.g. rd_kafka_conf_set_stats_cb()) receives the
 * pipeline and finds its processor through this. Any thread.
 */
void *kb_pipeline_opaque(const kb_pipeline_t *pl);

/* Input record accessors: valid until kb_rec_done() (+ commit). */
const char *kb_rec_topic(const kb_rec_t *rec);
int32_t kb_rec_partition(const kb_rec_t *rec);
int64_t kb_rec_offset(const kb_rec_t *rec);
const void *kb_rec_key(const kb_rec_t *rec, size_t *len);
const void *kb_rec_value(const kb_rec_t *rec, size_t *len);
/* The input's headers, a copy the processor may change (add, replace);
 * never NULL: an empty list when the input had none. */
rd_kafka_headers_t *kb_rec_headers(const kb_rec_t *rec);
/* The input's timestamp (unix ms, its producer's CreateTime or the
 * broker's LogAppendTime), -1 when it has none. */
int64_t kb_rec_timestamp(const kb_rec_t *rec);
/** The processor's per-record pointer. */
void kb_rec_set_user(kb_rec_t *rec, void *user);
void *kb_rec_user(const kb_rec_t *rec);
/** Non-zero once the record was abandoned by a rewind or a revoke: its
 * outputs will be dropped; the processor should finish quickly. */
int kb_rec_orphaned(const kb_rec_t *rec);

/**
 * Adds an output record, published when @p rec is released. @p partition
 * may be RD_KAFKA_PARTITION_UA. Copies key and value; takes ownership of
 * @p hdrs (may be NULL) in every case. Returns KB_OK or KB_ERR_NOMEM.
 */
int kb_rec_produce(kb_rec_t *rec, const char *topic, int32_t partition,
                   const void *key, size_t key_len, const void *value,
                   size_t value_len, rd_kafka_headers_t *hdrs);

/** Marks @p rec done; its outputs are final. Call exactly once. */
void kb_rec_done(kb_rec_t *rec);

#endif /* KB_PIPELINE_H */
