/* seen.h -- remembered share_ids: a compacted Kafka topic written in the
 * same transactions as the outputs, read at start, caught up on assignment */
#ifndef KB_SEEN_H
#define KB_SEEN_H

#include <stddef.h>
#include <stdint.h>

#include <json-c/json.h>

#include "conf.h"
#include "jview.h"
#include "pipeline.h"

/*
 * Each daemon remembers the share_ids it handled for a window: the issuer
 * so that a repeated request is not published twice, the importer so that
 * a replayed envelope is not imported (and published) twice. An entry is
 * "pending" from the moment a record claims it until its transaction
 * commits (then it is kept for the window) or the record is dropped (then
 * it is forgotten). Records in the state topic:
 * schemas/share-state.schema.json, key = share_id. Not thread-safe: the
 * daemon's loop only.
 *
 * What it costs does not grow per share_id with their number: a
 * share_id is kept as a 96-bit keyed digest (SipHash-128 under a key
 * drawn at kb_seen_new(); a collision is astronomically unlikely, see
 * seen_int.h) in an open-addressed table whose load stays between 72 and 85
 * %: 19..23 bytes a share_id, 38..45 with the refs the importer keeps
 * (kb_seen_table_bytes()); lookups and inserts are O(1), amortised over
 * the table's rebuilds. The share_id strings themselves are not kept.
 */
typedef struct kb_seen_s kb_seen_t;

/** @p conf supplies the Kafka settings for reading @p topic. NULL on ENOMEM. */
kb_seen_t *kb_seen_new(const kb_conf_t *conf, const char *topic,
                       int64_t window_s, const char *who);
void kb_seen_destroy(kb_seen_t *sn);

/** Non-zero if @p share_id is pending or remembered within the window. */
int kb_seen_has(const kb_seen_t *sn, const char *share_id);
/** Claims @p share_id as pending. 0, or -1 on ENOMEM. */
int kb_seen_claim(kb_seen_t *sn, const char *share_id);
/**
 * The claim's transaction committed: remember it for the window. @p ref
 * (may be NULL) is what the share_id produced -- the importer's session id
 * -- and is remembered as taken by this share_id for as long as the
 * share_id is (kb_seen_ref_taken_by_other()); a share_id not remembered
 * (never claimed, forgotten, expired) takes no ref.
 */
void kb_seen_commit(kb_seen_t *sn, const char *share_id, const char *ref);
/**
 * Non-zero when a share_id other than @p share_id is remembered as having
 * committed @p ref (the last one to commit it, here or in a state record
 * read); 0 when it is @p share_id's, nobody's, or @p ref is NULL.
 */
int kb_seen_ref_taken_by_other(const kb_seen_t *sn, const char *ref,
                               const char *share_id);
/** The claim's record was dropped: forget the pending entry. */
void kb_seen_forget(kb_seen_t *sn, const char *share_id);
/** Drops entries past their window (not pending ones), with their refs. */
void kb_seen_expire(kb_seen_t *sn);
/** Entries remembered: pending, within the window, or past it and not
 * expired yet. */
size_t kb_seen_count(const kb_seen_t *sn);
/** Bytes the table takes now (its arrays; not the pending set). */
size_t kb_seen_table_bytes(const kb_seen_t *sn);
/** The unix time the seen goes by (tests; NULL: kb_time_now()). */
void kb_seen_set_clock(kb_seen_t *sn, int64_t (*clock)(void));

/**
 * Reads the state topic (read_committed) up to its current end into memory.
 * The first call reads the whole topic with a bulk reader (a consumer
 * assigned every partition, no group membership, that may queue 128 MB
 * a partition: a peak of memory while it runs, see seen_topic.c),
 * then replaces it by the state reader kept until kb_seen_destroy() (the
 * same, queueing 2 MB); every later call only catches up: one metadata
 * request and one high-watermark query per partition, then the records
 * written since the previous call (by any instance), nothing when there
 * are none. So calling it on every assignment costs what other instances
 * wrote meanwhile, not a full re-read.
 *
 * "Its current end" is each partition's high watermark, asked of a second,
 * read_uncommitted client that never consumes (a read_committed end query
 * answers with the last stable offset, which any instance's open
 * transaction holds back: records another instance committed after that
 * transaction began -- the last ones it wrote before handing a partition
 * over -- would be missed). The reader reads read_committed up to there:
 * it skips aborted records and waits for transactions open at the call to
 * end. So when it returns 0, every record committed before the call is in
 * memory: the daemons call it before touching newly assigned partitions.
 * The wait is for transactions that end within a commit normally; a
 * writer that died inside one holds it open until its restart or the
 * broker's transaction timeout (transaction.timeout.ms) aborts it.
 *
 * Bounded as a whole by the load timeout (kb_seen_set_load_timeout(),
 * 120 s by default): -1 (logged) when the topic cannot be described or
 * read to its end within it; a later call resumes where this one stopped.
 * Engine thread (not thread-safe).
 */
int kb_seen_load(kb_seen_t *sn);

/**
 * Bounds every later kb_seen_load() as a whole to @p timeout_ms (<= 0: the
 * default, 120 s). A load on assignment runs inside the rebalance
 * callback, so inside the engine's consumer poll, possibly right after a
 * revoke's drain in the same poll: the daemons give it what
 * max.poll.interval.ms leaves after pipeline.drain_timeout_ms, so the
 * member is not thrown out of the group for a slow load. (Assigning the
 * partitions paused and loading outside the callback would lift the
 * bound; not done.)
 */
void kb_seen_set_load_timeout(kb_seen_t *sn, int timeout_ms);

typedef struct kb_seen_stats_s {
        uint64_t loads;        /* kb_seen_load() calls */
        uint64_t records_read; /* state records consumed, in total */
        /* consumers created: 2 once loaded (the first load's bulk reader,
         * then the catch-up reader for the seen's lifetime) */
        uint64_t readers_created;
} kb_seen_stats_t;

void kb_seen_stats(const kb_seen_t *sn, kb_seen_stats_t *st);

/*
 * What else a daemon keeps from the state topic (the importer's index of
 * imported sessions, status.h). Every hook is optional and runs on the
 * engine thread, inside the kb_seen_* call that causes it.
 */
typedef struct kb_seen_observer_s {
        /* A record kb_seen_load() read, whatever its key and age, before
         * its share_id is taken: a view of its JSON (validated as
         * kb_json_parse() would, depth 4), borrowed for the call. Records
         * whose key starts with KB_SEEN_AUX_PREFIX are the observer's
         * own: the seen does not take a share_id from them. */
        void (*record)(void *opaque, const char *key, size_t key_len,
                       const kb_jview_t *rec);
        /* kb_seen_load() returned 0: every committed record is read. */
        void (*loaded)(void *opaque);
        /* A state record for @p share_id is being built (kb_seen_record(),
         * kb_seen_produce()): add members to @p rec; a failure to add one
         * returns -1 and the record is not made (ENOMEM). */
        int (*decorate)(void *opaque, const char *share_id, json_object *rec);
        /* kb_seen_commit() / kb_seen_forget() of a pending claim. */
        void (*commit)(void *opaque, const char *share_id, const char *ref);
        void (*forget)(void *opaque, const char *share_id);
        /* kb_seen_expire() ran, at unix time @p now. */
        void (*expire)(void *opaque, int64_t now);
        void *opaque;
} kb_seen_observer_t;

/* Keys of state records that carry no share_id of their own. */
#define KB_SEEN_AUX_PREFIX "status:"

/** Installs @p obs (copied; NULL removes it). Engine thread. */
void kb_seen_set_observer(kb_seen_t *sn, const kb_seen_observer_t *obs);

/** Adds the state record for @p share_id (and its @p ref, may be NULL)
 * to @p rec's outputs. */
int kb_seen_produce(kb_seen_t *sn, kb_rec_t *rec, const char *share_id,
                    const char *outcome, const char *ref);

/** The record itself (JSON text, malloc()ed), for one-shot producers. */
char *kb_seen_record(const kb_seen_t *sn, const char *share_id,
                     const char *outcome, const char *ref, size_t *len);

const char *kb_seen_topic(const kb_seen_t *sn);

/** After a kb_seen_load() that returned -1 because the broker refused the
 * state topic (an ACL): "ERR_NAME: PRINCIPAL may not read topic T: why"
 * (kb_kafka_denied_str()); else "". */
const char *kb_seen_denied(const kb_seen_t *sn);

#endif /* KB_SEEN_H */
