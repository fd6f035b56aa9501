/* wh_replay.h -- bounded memory of accepted webhook deliveries, so that a
 * replay is acknowledged without acting twice */
#ifndef KB_WH_REPLAY_H
#define KB_WH_REPLAY_H

#include <stddef.h>
#include <stdint.h>

#include "kyc_bridge.h"

/*
 * Keys are strings (the intake uses lowercase signature hex). An entry is
 * PENDING from kb_wh_replay_reserve() until kb_wh_replay_commit() (then
 * DONE, remembered for keep_s seconds from the commit) or
 * kb_wh_replay_release() (forgotten). Pending entries never expire. All
 * functions are thread-safe.
 */
typedef struct kb_wh_replay_s kb_wh_replay_t;

typedef enum {
        KB_WH_REPLAY_NEW = 0,     /* unknown: now reserved by the caller */
        KB_WH_REPLAY_DONE = 1,    /* accepted before: a replay */
        KB_WH_REPLAY_PENDING = 2, /* being acted on right now */
        KB_WH_REPLAY_FULL = 3,    /* max_entries unexpired entries: retry */
} kb_wh_replay_res_t;

/** New cache of at most @p max_entries (>= 1) entries, DONE ones kept
 * @p keep_s (>= 1) seconds. NULL on ENOMEM or bad arguments. */
kb_wh_replay_t *kb_wh_replay_new(size_t max_entries, int64_t keep_s);
void kb_wh_replay_destroy(kb_wh_replay_t *rc);

/**
 * Looks @p key up at time @p now (unix seconds; expired entries are
 * dropped first). A kb_wh_replay_res_t, or KB_ERR_NOMEM (negative).
 */
int kb_wh_replay_reserve(kb_wh_replay_t *rc, const char *key, int64_t now);

/**
 * Marks @p key DONE until @p now + keep_s (inserting it if absent: also
 * used to remember a second key of the same delivery). KB_OK or
 * KB_ERR_NOMEM (the key is then not remembered).
 */
int kb_wh_replay_commit(kb_wh_replay_t *rc, const char *key, int64_t now);

/** Forgets a PENDING @p key (a DONE one stays). */
void kb_wh_replay_release(kb_wh_replay_t *rc, const char *key);

/** Entries held (pending and done). */
size_t kb_wh_replay_count(kb_wh_replay_t *rc);

#endif /* KB_WH_REPLAY_H */
