/* seen.h -- remembered share_ids: a compacted Kafka topic written in the
 * same transactions as the outputs, read at start, caught up on assignment */
#ifndef KB_SEEN_H
#define KB_SEEN_H

#include <stddef.h>
#include <stdint.h>

#include "conf.h"
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
 * -- and is remembered as taken by this share_id (kb_seen_ref_owner()).
 */
void kb_seen_commit(kb_seen_t *sn, const char *share_id, const char *ref);
/** The share_id that committed @p ref, or NULL. */
const char *kb_seen_ref_owner(const kb_seen_t *sn, const char *ref);
/** The claim's record was dropped: forget the pending entry. */
void kb_seen_forget(kb_seen_t *sn, const char *share_id);
/** Drops entries past their window. */
void kb_seen_expire(kb_seen_t *sn);
size_t kb_seen_count(const kb_seen_t *sn);

/**
 * Reads the state topic (read_committed) up to its current end into memory.
 * The first call creates the seen's one state reader (a consumer assigned
 * every partition, no group membership, kept until kb_seen_destroy()) and
 * reads the whole topic; every later call only catches up: one metadata
 * and one end-offsets request, then the records written since the previous
 * call (by any instance), nothing when there are none. So calling it on
 * every assignment costs what other instances wrote meanwhile, not a full
 * re-read. When it returns 0, every record committed before the call is
 * in memory: the daemons call it before touching newly assigned
 * partitions. -1 (logged) when the topic cannot be described or read to
 * its end within 120 s; a later call resumes where this one stopped.
 * Engine thread (not thread-safe).
 */
int kb_seen_load(kb_seen_t *sn);

typedef struct kb_seen_stats_s {
        uint64_t loads;           /* kb_seen_load() calls */
        uint64_t records_read;    /* state records consumed, in total */
        uint64_t readers_created; /* consumers created (1 once loaded) */
} kb_seen_stats_t;

void kb_seen_stats(const kb_seen_t *sn, kb_seen_stats_t *st);

/** Adds the state record for @p share_id (and its @p ref, may be NULL)
 * to @p rec's outputs. */
int kb_seen_produce(kb_seen_t *sn, kb_rec_t *rec, const char *share_id,
                    const char *outcome, const char *ref);

/** The record itself (JSON text, malloc()ed), for one-shot producers. */
char *kb_seen_record(const kb_seen_t *sn, const char *share_id,
                     const char *outcome, const char *ref, size_t *len);

const char *kb_seen_topic(const kb_seen_t *sn);

#endif /* KB_SEEN_H */
