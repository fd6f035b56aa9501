/* pipeline_int.h -- pipeline engine internals shared by pipeline*.c */
#ifndef KB_PIPELINE_INT_H
#define KB_PIPELINE_INT_H

/*
 * Not a public header: only pipeline.c (the core), pipeline_txn.c (the
 * transaction path) and pipeline_meta.c (the output topics' metadata)
 * include it. Everything here runs on the engine thread (the one that calls
 * kb_pipeline_run() / kb_pipeline_new() / kb_pipeline_destroy()), except
 * the metadata refresh thread, which only touches out_topic_t's atomic
 * count and the md_* fields under md_lock, and the transaction thread,
 * which only makes the librdkafka call kb_pl_txn_call() hands it (the
 * txn_* fields under txn_lock).
 */

#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include <librdkafka/rdkafka.h>

#include "pipeline.h"
#include "watchdog.h"

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
        int64_t timestamp; /* unix ms, -1: none */
        void *key, *value;
        size_t key_len, value_len;
        rd_kafka_headers_t *hdrs; /* never NULL once taken */
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

/* A blocking transactional call of librdkafka, made on the transaction
 * thread by kb_pl_txn_call(): its error, or NULL. */
typedef rd_kafka_error_t *(kb_pl_txn_fn_t)(kb_pipeline_t *pl, void *arg);

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
        int64_t txn_begun_ms;   /* kb_mono_ms() the open one began at */
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
        /* who we are to the broker, for the message of a denial */
        char principal[192]; /* kb_kafka_principal(), "" if not known */
        char group[192];     /* the consumer's group.id */
        char txn_id[192];    /* the producer's transactional.id */
        atomic_int stop_req; /* kb_pipeline_stop() */
        int closed;
        int subscribed; /* rd_kafka_subscribe() succeeded */
        int assigned;   /* an assignment (even empty) has been received */
        int failed;     /* processor asked to stop without committing */
        int draining;   /* in drain_and_commit(): start nothing new */
        int commit_interval_ms, commit_max_records, max_buffered;
        int no_idle_commit;
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
        kb_watchdog_t *wd; /* on the transactional calls (kb_pl_watch()) */
        /* the transaction thread (kb_pl_txn_call()) */
        pthread_t txn_thread;
        pthread_mutex_t txn_lock;
        pthread_cond_t txn_cond;
        int txn_started;          /* the thread runs */
        int txn_posted, txn_done; /* a call handed over / returned */
        int txn_quit;             /* the thread is to end */
        kb_pl_txn_fn_t *txn_fn;   /* the call */
        void *txn_arg;
        rd_kafka_error_t *txn_res; /* what it returned */
};

/* ---- pipeline_txn.c: the transaction thread ---- */

/* Starts the transaction thread (kb_pipeline_new()); -1 if it cannot: the
 * calls are then made on the engine thread. */
int kb_pl_txn_thread_start(kb_pipeline_t *pl);
/* Ends it (kb_pipeline_destroy(), before the producer goes). */
void kb_pl_txn_thread_stop(kb_pipeline_t *pl);

/* ---- pipeline.c: the core ---- */

/* The transactional call @p what, with librdkafka timeout @p timeout_ms
 * (-1: the transaction's remaining time, at most txn_timeout_ms; 0: none,
 * a call that only changes local state), begins: arms the watchdog at that
 * timeout plus KB_WATCHDOG_TXN_GRACE_MS. kb_pl_unwatch() when it returned. */
void kb_pl_watch(kb_pipeline_t *pl, const char *what, int timeout_ms);
void kb_pl_unwatch(kb_pipeline_t *pl);

/* Makes the engine fatal with KB_ERR_KAFKA/KB_ERR_NOMEM @p err and a
 * printf-style reason; the first cause is kept, later ones only set the
 * flag. */
#if defined(__GNUC__)
__attribute__((format(printf, 3, 4)))
#endif
void kb_pl_set_fatal(kb_pipeline_t *pl, int err, const char *fmt, ...);

/* The broker refused what @p what did (kb_kafka_err_denied(@p err)): the
 * engine is fatal at once, with a reason naming the principal and what
 * was refused -- the group, the transactional id, the cluster, or for
 * TOPIC_AUTHORIZATION_FAILED the topic(s) @p topics with @p writing
 * (1: "write to", 0: "read") -- and librdkafka's @p text. */
void kb_pl_set_denied(kb_pipeline_t *pl, const char *what,
                      rd_kafka_resp_err_t err, const char *topics, int writing,
                      const char *text);

/* Frees @p rec and its outputs, calling on_finish (with @p committed) if it
 * was started; drops it from pl->buffered. The caller has unlinked it. */
void kb_pl_rec_free(kb_rec_t *rec, int committed);

/* The assigned partition @p topic / @p p, or NULL. */
part_t *kb_pl_part_find(kb_pipeline_t *pl, const char *topic, int32_t p);

/* Starts waiting records while the processor has room (never while fatal,
 * failed or draining). Returns how many it started. */
int kb_pl_start_ready(kb_pipeline_t *pl);

/* Forgets everything not committed (released records freed, unreleased
 * ones orphaned); with @p seek, seeks the consumer back to the committed
 * offsets so it is all read again. Fatal if the seek fails. */
void kb_pl_rewind_all(kb_pipeline_t *pl, int seek);

/* ---- pipeline_txn.c: the transaction path ---- */

/* Publishes every released record's outputs and the matching input offsets
 * in one transaction. Returns 0 (committed, nothing to commit, or aborted
 * and rewound) or -1 on a fatal error (cause recorded with
 * kb_pl_set_fatal()). Does nothing once fatal, failed or closed. */
int kb_pl_txn_commit(kb_pipeline_t *pl);

/* ---- pipeline_meta.c: the output topics' metadata ---- */

/* Takes the output topics (NULL-terminated @p topics), checks each exists
 * and learns its partition count (blocking, up to 30 s a topic), then
 * starts the refresh thread. Returns 0, or -1 with @p errstr filled;
 * kb_pl_outs_destroy() cleans up either way. */
int kb_pl_outs_init(kb_pipeline_t *pl, const char *const *topics, char *errstr,
                    size_t errstr_size);

/* Stops and joins the refresh thread (if started), then frees the output
 * topics. Call before the producer is destroyed. Idempotent. */
void kb_pl_outs_destroy(kb_pipeline_t *pl);

#endif /* KB_PIPELINE_INT_H */
