/* dlq_redrive.h -- putting dead letters' inputs back, exactly once */
#ifndef KB_DLQ_REDRIVE_H
#define KB_DLQ_REDRIVE_H

#include <stddef.h>
#include <stdint.h>

#include <json-c/json.h>

#include "conf.h"

/*
 * A redrive writes, in one Kafka transaction per batch, each dead letter's
 * input back to the topic and partition it was read from (its key, value
 * and allow-listed headers, plus header kb-redrive-of:
 * "<dlq topic>/<partition>/<offset>") and a marker record to the dead-letter
 * topic itself (format KB_DLQ_REDRIVEN_FORMAT,
 * schemas/dead-letter-redriven.schema.json, key = share_id, in the dead
 * letter's partition). Readers of the dead-letter topic take a dead letter
 * with a committed marker as redriven. The transactional.id is fixed per
 * dead-letter topic (kb_dlq_redrive_txid()): a new run fences a running or
 * dead one -- whatever its configuration or consumer group -- whose open
 * transaction is aborted, before it reads which dead letters are marked
 * (kb_dlq_read() with KB_DLQ_READ_ALL_COMMITTED): so an interrupted run
 * and its restart, or two runs started at once, together redrive each dead
 * letter once.
 */
typedef struct kb_dlq_redrive_s kb_dlq_redrive_t;

/* Prefix of a redrive's transactional.id; the dead-letter topic follows. */
#define KB_DLQ_REDRIVE_TXID_PREFIX "kyc-bridge-dlq-redrive-"
/* Room for a transactional.id: the prefix and a topic name (at most 249
 * characters of [a-zA-Z0-9._-], Kafka's rule), with the NUL. */
#define KB_DLQ_REDRIVE_TXID_MAX 300
/* The broker's default transaction.max.timeout.ms: a producer asking for
 * more is refused at init. */
#define KB_DLQ_REDRIVE_TXN_TIMEOUT_MAX_MS 900000

/**
 * The transactional.id of every redrive of @p dlq_topic into @p out:
 * KB_DLQ_REDRIVE_TXID_PREFIX followed by the topic name. Returns 0, or -1
 * when @p dlq_topic is empty or it does not fit in @p outsz.
 */
int kb_dlq_redrive_txid(const char *dlq_topic, char *out, size_t outsz);

/**
 * The transaction.timeout.ms of a redrive whose Kafka waits are bounded by
 * @p timeout_ms: twice that, at least 60000 and at most
 * KB_DLQ_REDRIVE_TXN_TIMEOUT_MAX_MS. Waits inside a transaction (the
 * flush, the commit and its retries) are cut to end before it.
 */
int kb_dlq_redrive_txn_timeout_ms(int timeout_ms);

/* One dead letter to redrive (all borrowed for the call). */
typedef struct kb_dlq_redrive_item_s {
        int32_t dlq_partition;
        int64_t dlq_offset;
        const char *share_id; /* may be NULL */
        const char *topic;    /* the input's topic and partition */
        int32_t partition;
        const void *key; /* may be NULL */
        size_t key_len;
        const void *value;
        size_t value_len;
        const char *const *headers; /* name, value pairs; NULL-terminated */
        /* only the marker: another dead letter of the same input carries
         * the input (an earlier item of this transaction, or one redriven
         * before); key, value and headers unused */
        int marker_only;
} kb_dlq_redrive_item_t;

/*
 * Creates the transactional producer (kb_kafka_conf_new() from @p conf,
 * transactional.id @p transactional_id, transaction.timeout.ms
 * kb_dlq_redrive_txn_timeout_ms(@p timeout_ms)) and initialises its
 * transactions, which fences any earlier producer of that id and aborts its
 * open transaction. Each Kafka wait is bounded by @p timeout_ms; a
 * retriable error (a timeout included) is retried up to 3 times. NULL with
 * a reason in @p errstr (*err_out: KB_ERR_CONFIG, KB_ERR_TIMEOUT,
 * KB_ERR_KAFKA, KB_ERR_STATE or KB_ERR_NOMEM; @p err_out may be NULL).
 */
kb_dlq_redrive_t *kb_dlq_redrive_new(const kb_conf_t *conf,
                                     const char *transactional_id,
                                     int timeout_ms, int *err_out, char *errstr,
                                     size_t errstr_size);
void kb_dlq_redrive_destroy(kb_dlq_redrive_t *rd);

/*
 * Called inside the transaction once every record of it reached the
 * broker, right before the commit (@p txn counts from 1). For progress
 * output, and for the CLI's test hook.
 */
typedef void(kb_dlq_redrive_cb)(void *opaque, int txn, size_t n);

/*
 * Redrives @p n items (n >= 1) in one transaction, with markers in
 * @p dlq_topic saying "at" now and "by" @p by (the tool's version).
 * Returns KB_OK (committed) or, with a reason in @p errstr:
 * - not committed (the transaction was aborted, or the broker aborted it:
 *   nothing of it is visible): KB_ERR_KAFKA (a record failed, or the
 *   commit), KB_ERR_STATE (fenced: another run of the same transactional
 *   id took over; or a fatal producer error), KB_ERR_TIMEOUT (records not
 *   delivered in time, or the transaction outlived transaction.timeout.ms
 *   -- "transaction timed out"), KB_ERR_NOMEM;
 * - KB_ERR_RETRY: the commit's outcome is unknown (retriable errors or
 *   timeouts until the retries or the transaction's time ran out): the
 *   markers tell, run again.
 * After any error destroy @p rd.
 */
int kb_dlq_redrive_txn(kb_dlq_redrive_t *rd, const char *dlq_topic,
                       const kb_dlq_redrive_item_t *items, size_t n,
                       const char *by, kb_dlq_redrive_cb *before_commit,
                       void *opaque, char *errstr, size_t errstr_size);

/* ---- which dead letters were redriven: the markers ---- */

/* A dead letter's position in its topic. */
typedef struct kb_dlq_pos_s {
        int32_t partition;
        int64_t offset;
} kb_dlq_pos_t;

/* The dead letters of one dead-letter topic named by redrive markers.
 * Zero it and set @p topic; free with kb_dlq_marks_free(). */
typedef struct kb_dlq_marks_s {
        const char *topic; /* the dead-letter topic (borrowed) */
        kb_dlq_pos_t *v;
        size_t n, cap;
        int sorted;
} kb_dlq_marks_t;

/** Is @p doc (a parsed record of a dead-letter topic; may be NULL) a
 * redrive marker (format KB_DLQ_REDRIVEN_FORMAT)? */
int kb_dlq_is_marker(json_object *doc);

/**
 * Takes one record of the dead-letter topic, as read (@p doc may be NULL):
 * when it is a redrive marker, remembers the dead letter it names -- when
 * that is of m->topic and the marker well-formed -- and returns 1; returns
 * 0 for any other record (a dead letter), -1 when out of memory.
 */
int kb_dlq_marks_add(kb_dlq_marks_t *m, json_object *doc);

/** Was the dead letter at @p partition : @p offset of m->topic redriven
 * (named by a marker given to kb_dlq_marks_add())? */
int kb_dlq_redrive_marked(kb_dlq_marks_t *m, int32_t partition, int64_t offset);

void kb_dlq_marks_free(kb_dlq_marks_t *m);

#endif /* KB_DLQ_REDRIVE_H */
