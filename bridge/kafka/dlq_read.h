/* dlq_read.h -- reading a dead-letter topic: its committed records, bounded */
#ifndef KB_DLQ_READ_H
#define KB_DLQ_READ_H

#include <stddef.h>
#include <stdint.h>

#include <json-c/json.h>

#include "conf.h"

/* One dead-letter record as read (borrowed: valid during the callback). */
typedef struct kb_dlq_rec_s {
        int32_t partition;
        int64_t offset;
        int64_t ts_ms;      /* Kafka timestamp; -1 when unknown */
        const char *key;    /* NUL-terminated copy of the key; NULL if none */
        const char *reason; /* header kb-reason; NULL if absent */
        const char *value;  /* the raw value (NUL-terminated copy) */
        size_t value_len;
        json_object *doc; /* parsed value (an object); NULL if it is not */
} kb_dlq_rec_t;

/* Called per record, once each, in offset order within a partition
 * (partitions may interleave; a record the client fetched again is not
 * handed over again). Non-zero stops the read (kb_dlq_read() then returns
 * KB_OK). */
typedef int(kb_dlq_rec_cb)(void *opaque, const kb_dlq_rec_t *rec);

/* kb_dlq_read() flags */
/* Read up to the high watermark (asked of a read_uncommitted client), not
 * the last stable offset: waits for transactions open at the start to end,
 * so every record committed before the call is read. */
#define KB_DLQ_READ_ALL_COMMITTED 0x1

/*
 * Reads @p topic with a consumer built by kb_kafka_conf_new() from @p conf
 * (read_committed, no consumer group, nothing committed), from the start
 * of each partition (or, when @p partition >= 0, only that partition from
 * @p offset) up to the end offsets found when it starts: records written
 * later are not read, so the read always ends. The end is each
 * partition's last stable offset, or with KB_DLQ_READ_ALL_COMMITTED in
 * @p flags its high watermark (see there). Gives up after
 * @p timeout_ms in all. Returns KB_OK, KB_ERR_NOT_FOUND (no such topic or
 * partition), KB_ERR_TIMEOUT (broker unreachable, or the end not reached
 * in time), KB_ERR_CONFIG or KB_ERR_KAFKA, with a reason in @p errstr.
 */
int kb_dlq_read(const kb_conf_t *conf, const char *topic, int32_t partition,
                int64_t offset, int flags, int timeout_ms, kb_dlq_rec_cb *cb,
                void *opaque, char *errstr, size_t errstr_size);

#endif /* KB_DLQ_READ_H */
