/* processor.h -- the processor base both daemons run on: jobs, holds, the
 * share_id state, dead letters, stats and the pipeline adapters */
#ifndef KB_PROCESSOR_H
#define KB_PROCESSOR_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include <json-c/json.h>

#include "conf.h"
#include "ops_http.h"
#include "partners.h"
#include "pipeline.h"
#include "seen.h"
#include "trace.h"
#include "vendor.h"
#include "webhook_host.h"
#include "wh_delivery.h"

typedef struct kb_proc_s kb_proc_t;

/*
 * A job: one input record in the hands of a processor.
 *
 * Lifetime. Everything below happens on the engine thread (the thread in
 * kb_pipeline_run(), or in kb_proc_destroy() for the last step):
 *  - allocated (zeroed, ops->job_size bytes, the daemon's job type with a
 *    kb_job_t as its first member) by the base when the engine hands it a
 *    record, and attached to the record with kb_rec_set_user();
 *  - the daemon's ops->start() then decides; from then on the job ends in
 *    exactly one of three ways, each of which calls kb_rec_done() for the
 *    record exactly once: kb_proc_done() (outputs, if any, are final),
 *    kb_proc_dead_letter() (adds the dead letter, then done), or
 *    kb_proc_hold() (never done while the daemon runs: the record is left
 *    uncommitted and the daemon stops; kb_proc_destroy() calls
 *    kb_rec_done() on the orphaned record at the end). While a vendor call
 *    is pending, the job is owned by that call and ends in its callback;
 *  - freed by the base in the engine's on_finish (inside kb_rec_done() for
 *    a record still in flight, or later when its transaction commits or
 *    is dropped), after the share_id it claimed is committed to or
 *    forgotten by the state. Never free a job yourself, and never touch a
 *    job after it ended.
 *  - orphaning: a record abandoned by a rewind or a revoke stays owned by
 *    its job; the next vendor callback sees kb_rec_orphaned() (see
 *    kb_proc_vendor_settled()) and ends it with kb_rec_done() at once.
 */
typedef struct kb_job_s {
        struct kb_job_s *next; /* held list */
        kb_proc_t *proc;
        kb_rec_t *rec;
        char share_id[129];   /* "" until the input names one */
        char ref[129];        /* committed with share_id (may stay "") */
        int owns_seen;        /* this record claimed share_id */
        int state_written;    /* its state record is in the transaction */
        int dead;             /* ended by kb_proc_dead_letter() */
        char dl_reason[64];   /* its reason (metrics, when committed) */
        int outcome;          /* metrics: KB_OPS_REPLAYED or KB_OPS_RECONCILED
                                 (kb_proc_claim(), the importer), else 0:
                                 published with a state record, or skipped */
        kb_trace_t tr;        /* this hop's trace context (set before start) */
        int64_t requested_at; /* kb-requested-at, unix ms; 0: unknown */
} kb_job_t;

/* What each daemon decides for itself. */
typedef struct kb_proc_ops_s {
        const char *role;      /* "issuer" / "importer": log tag and the
                                  prefix of <role>.group_id and
                                  <role>.transactional_id */
        unsigned scope;        /* KB_SCOPE_* for the checks and partners */
        size_t job_size;       /* >= sizeof(kb_job_t) */
        int dead_letter_state; /* also remember dead-lettered share_ids */
        /* A record without kb-requested-at was requested when it was
         * written (its Kafka timestamp, else now): the issuer, where the
         * request starts. 0: unknown (the importer: an envelope without
         * one gives a downstream record without one). */
        int requested_at_from_record;
        /* A new record, its job allocated; see the job's lifetime. */
        void (*start)(kb_job_t *job);
        /* Members for a dead letter of @p job (share_id, stage, reason,
         * detail, source and http_status are added by the base); NULL
         * when there are none or on ENOMEM. */
        json_object *(*dlq_extra)(const kb_job_t *job);
        /* The daemon's own counters for the stats line,
         * "published 3, repeats 0". */
        void (*counters)(const kb_proc_t *p, char *buf, size_t bufsz);
        /* Frees the whole daemon (kb_proc_free()). */
        void (*destroy)(kb_proc_t *p);
        /* What a verified webhook delivery causes (webhook_host.h), its
         * opaque the kb_proc_t *; called on an HTTP thread, concurrently
         * with the engine thread and with itself: must not block and may
         * only read what does not change while the daemon runs. NULL: the
         * daemon takes no deliveries (webhook.listen is then a
         * configuration error). */
        kb_wh_action_fn *webhook_action;
} kb_proc_ops_t;

/*
 * The part of a daemon the base owns. Embedded as the daemon's first
 * member; the daemon reads these fields, processor.c writes them.
 */
struct kb_proc_s {
        const kb_proc_ops_t *ops;
        const kb_conf_t *conf;
        char app_id[37];
        kb_partners_t partners;
        kb_vendor_t *vendor;
        kb_seen_t *seen;
        kb_pipeline_t *pl;
        char dlq_topic[256];
        char **in_topics;  /* NULL-terminated, malloc()ed */
        char **out_topics; /* NULL-terminated, malloc()ed */
        kb_job_t *held;    /* records we refuse to finish */
        /* the webhook intake (webhook.listen set), else NULL: built by
         * kb_proc_init(), started and stopped by kb_proc_run() */
        kb_wh_host_t *webhook;
        /* /livez, /readyz, /metrics (metrics.listen set), else NULL:
         * built by kb_proc_init(), started by kb_proc_run() */
        kb_ops_http_t *opsh;
        int fatal;
        int64_t next_stats_ms;
        uint64_t n_dead;
};

/**
 * Checks @p conf for ops->scope and builds what both daemons need: our
 * application id, the partners, the share_id state (<role>.state_topic,
 * remembered for @p window_s), the vendor client; <role>.dlq_topic is an
 * output. With webhook.listen, also the webhook intake's host (p->webhook:
 * every webhook.* option checked, nothing listening or connected yet;
 * ops->webhook_action is called only after kb_proc_run() started it, so
 * the daemon may finish building what its action reads after this).
 * Returns KB_OK, KB_ERR_CONFIG (reason
 * "origin: key: reason" in @p errstr), KB_ERR_NOMEM, or KB_ERR_HTTP
 * (libcurl could not initialise; a runtime failure). @p conf must outlive
 * @p p. On failure call kb_proc_destroy() all the same.
 */
int kb_proc_init(kb_proc_t *p, const kb_proc_ops_t *ops, const kb_conf_t *conf,
                 int64_t window_s, char *errstr, size_t errstr_size);

/** Adds an input (@p out 0) or output (@p out 1) topic. KB_OK or
 * KB_ERR_NOMEM. */
int kb_proc_topic(kb_proc_t *p, int out, const char *topic);

/**
 * Connects to Kafka, loads the share_id state, starts the webhook intake
 * (if any) and runs until @p stop becomes non-zero (or kb_pipeline_stop());
 * then stops the intake (deliveries in flight answered) before returning.
 * Returns KB_OK after an orderly stop; KB_ERR_CONFIG for a configuration
 * problem only; otherwise an error whose cause is in @p errstr (nothing
 * uncommitted is lost).
 */
int kb_proc_run(kb_proc_t *p, atomic_int *stop, char *errstr,
                size_t errstr_size);

/** Frees what kb_proc_init() built: the webhook intake, then the vendor
 * (its callbacks end orphaned records, for which the pipeline must still
 * exist). Not @p p. */
void kb_proc_destroy(kb_proc_t *p);

/**
 * The end of a failed daemon constructor: "out of memory" in @p errstr for
 * @p r KB_ERR_NOMEM, *is_config_error = (@p r == KB_ERR_CONFIG), and the
 * daemon freed (ops->destroy; kb_proc_init() must have run). Returns NULL.
 */
void *kb_proc_new_failed(kb_proc_t *p, int r, int *is_config_error,
                         char *errstr, size_t errstr_size);

/** Frees the daemon @p p is the base of (ops->destroy). NULL ok. */
void kb_proc_free(kb_proc_t *p);

/** Ends @p job: its outputs are final. */
void kb_proc_done(kb_job_t *job);

/**
 * Adds a dead letter for @p job (its share_id, when known) and ends it.
 * @p http_status 0: none. With ops->dead_letter_state the share_id's state
 * record ("dead_letter") goes into the same transaction.
 */
void kb_proc_dead_letter(kb_job_t *job, const char *stage, const char *reason,
                         const char *detail, int http_status);

/** Keeps @p job's record uncommitted and stops the daemon (@p why is
 * logged): input that must be handled again after a fix. */
void kb_proc_hold(kb_job_t *job, const char *why);

/** Stops the daemon without committing (a failure with no job). */
void kb_proc_fail(kb_proc_t *p, const char *why);

/**
 * Claims job->share_id in the state. Returns 0 (claimed), 1 (already
 * handled within the window or in flight: the caller ends the job), or -1
 * (ENOMEM: the job is held and the daemon stops).
 */
int kb_proc_claim(kb_job_t *job);

/** Adds job->share_id's state record (@p outcome, @p ref may be NULL) to
 * the job's outputs; committed with it. KB_OK or KB_ERR_NOMEM. */
int kb_proc_state(kb_job_t *job, const char *outcome, const char *ref);

/**
 * The first thing every vendor callback calls. Returns 1 when the base
 * ended the job: its record was orphaned (done at once), or the call
 * failed for a reason that is no verdict on the input -- shutdown, or a
 * transport failure retrying cannot fix (held; the daemon stops). 0: the
 * daemon decides.
 */
int kb_proc_vendor_settled(kb_job_t *job, const kb_vendor_result_t *res);

/** Logs the stats line now. */
void kb_proc_log_stats(kb_proc_t *p);

#endif /* KB_PROCESSOR_H */
