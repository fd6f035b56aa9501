/* wh_int.h -- internals of webhooks/: the record list, the intake shared by
 * wh_intake.c (HTTP, verification) and wh_produce.c (Kafka, answers) */
#ifndef KB_WH_INT_H
#define KB_WH_INT_H

#include <pthread.h>
#include <stdatomic.h>

#include <librdkafka/rdkafka.h>

#include "httpd.h"
#include "log.h"
#include "wh_intake.h"
#include "wh_replay.h"
#include "webhook_sig.h"

typedef struct kb_wh_rec_s {
        char *topic;
        void *key;
        size_t key_len;
        void *value;
        size_t value_len;
        char **hdrs; /* name, value, ... */
        size_t nhdrs;
} kb_wh_rec_t;

struct kb_wh_records_s {
        kb_wh_rec_t *v;
        size_t n, cap;
        kb_wh_settled_fn *settled; /* the action's completion, or NULL */
        void *settled_arg;
};

/* One delivery whose records are in flight. */
typedef struct kb_wh_pending_s {
        kb_wh_intake_t *wi;
        kb_httpd_req_t *req;
        pthread_mutex_t lock;
        int outstanding; /* (lock) reports still due, + 1 while producing */
        int failed;      /* (lock) a record was not acked */
        /* (lock) taken to be answered: by its last report (which then
         * frees it), or at shutdown before its reports came (then freed
         * by kb_wh_produce_term() once the producer is gone) */
        int answered;
        struct kb_wh_pending_s *prev, *next; /* (wi->plock) wi->pending */
        kb_wh_settled_fn *settled;           /* the action's completion */
        void *settled_arg;
        size_t nrecords;
        char key[KB_WEBHOOK_SIG_HEX_BYTES];  /* replay key (reserved) */
        char key2[KB_WEBHOOK_SIG_HEX_BYTES]; /* second key, or "" */
        char session_id[64];                 /* for the log (truncated) */
        /* the delivery's trace id (log.h), for the lines logged on the
         * producer's thread; "" for none */
        char trace_id[KB_LOG_TRACE_BYTES];
} kb_wh_pending_t;

struct kb_wh_intake_s {
        kb_wh_intake_conf_t conf;
        char name[32];
        char *secret[2]; /* sodium_malloc()ed, NUL-terminated */
        size_t secret_len[2];
        kb_wh_replay_t *replay;
        pthread_mutex_t act_lock; /* action + enqueue, one at a time */
        rd_kafka_t *rk;
        pthread_t poller;
        int poller_started;
        atomic_int stop_poller;
        atomic_int stopping;
        atomic_long inflight; /* pending deliveries not answered yet */
        pthread_mutex_t plock;
        kb_wh_pending_t *pending; /* (plock) every pending delivery */
        /* After the flush and the purge at shutdown, how long to wait for
         * the purged records' reports before the deliveries still waiting
         * are answered 503 without them (5000; tests lower it). */
        int term_wait_ms;
        struct {
                atomic_uint_fast64_t accepted, duplicates, ignored, malformed,
                    unauthorized, conflicts, too_large, unavailable, failed,
                    records_acked;
        } st;
};

/* wh_produce.c */

/** Builds the producer from @p rkc (consumed). KB_OK or KB_ERR_KAFKA. */
int kb_wh_produce_init(kb_wh_intake_t *wi, rd_kafka_conf_t *rkc, char *errstr,
                       size_t errstr_size);
/** Stops the report thread, flushes, purges, destroys the producer. */
void kb_wh_produce_term(kb_wh_intake_t *wi, int flush_ms);
/**
 * Produces @p recs for the delivery of @p req whose replay key @p key is
 * reserved (and @p key2 to remember too, may be ""); answers @p req (now
 * or when the last report comes) and commits or releases the keys. Takes
 * @p recs' completion and settles it just before the answer. The lines
 * logged about the delivery's records and its answer carry @p trace_id
 * (the delivery's trace id, NULL or "": none), on whichever thread they
 * are written.
 */
void kb_wh_produce(kb_wh_intake_t *wi, kb_httpd_req_t *req,
                   kb_wh_records_t *recs, const char *key, const char *key2,
                   const char *session_id, const char *trace_id);

/** Answers 503 with Retry-After (and counts it). */
void kb_wh_reply_unavailable(kb_wh_intake_t *wi, kb_httpd_req_t *req,
                             const char *detail);

#endif /* KB_WH_INT_H */
