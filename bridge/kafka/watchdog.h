/* watchdog.h -- a deadline on a blocking call that may never return */
#ifndef KB_WATCHDOG_H
#define KB_WATCHDOG_H

#include <stdint.h>

/*
 * librdkafka's transactional calls take a timeout and keep to it -- except
 * where they are known not to: a call that waits on a condition with no
 * deadline once the producer hit a fatal error (begin_transaction(),
 * librdkafka #4420), a send_offsets_to_transaction() whose coordinator
 * lookup is never re-triggered (#3013, #5511), an abort that waited out a
 * cluster roll (#3779). The engine thread is then stuck inside the
 * producer: it can neither destroy that producer nor make a new one, and
 * nothing it holds is safe to touch from another thread.
 *
 * A watchdog is one thread that watches one call at a time: the caller
 * arms it with the call's own timeout plus a grace before the call and
 * disarms it after. If the call is still under way at the deadline the
 * watchdog calls its expiry function, from its own thread; the default
 * one logs (error) which call overran and by how much, and ends the
 * process with _exit(1). The process's supervisor (compose's
 * restart: on-failure, systemd's Restart=on-failure) then starts a new
 * one: a new producer, whose init_transactions() fences the stuck one's
 * epoch and settles its open transaction, and a consumer that resumes from
 * the committed offsets -- the path a SIGKILL at any instant takes, which
 * the chaos suite drives at every failpoint.
 */

typedef struct kb_watchdog_s kb_watchdog_t;

/* How long past its own timeout a transactional call may stay under way
 * before it counts as stuck: librdkafka keeps to a call's timeout by a
 * timed wait, so a call this late will not return. */
#define KB_WATCHDOG_TXN_GRACE_MS 15000

/**
 * What happens at the deadline, from the watchdog's thread: @p what the
 * armed call's name, @p limit_ms its limit. The default (NULL) logs and
 * calls _exit(1); a test passes its own. If it returns, the watchdog is
 * disarmed.
 */
typedef void(kb_watchdog_expired_cb)(void *opaque, const char *what,
                                     int64_t limit_ms);

/**
 * Starts a watchdog named @p name (its log lines'). @p on_expired NULL: the
 * default. Returns NULL if its thread cannot be started (out of memory or
 * threads).
 */
kb_watchdog_t *kb_watchdog_new(const char *name,
                               kb_watchdog_expired_cb *on_expired,
                               void *opaque);

/** Arms the watchdog for the call @p what (a string that outlives the
 *  call: a literal), which must return within @p limit_ms from now.
 *  Replaces an earlier arming. Any thread. */
void kb_watchdog_arm(kb_watchdog_t *wd, const char *what, int64_t limit_ms);

/** The call returned in time: disarms the watchdog. Any thread. */
void kb_watchdog_disarm(kb_watchdog_t *wd);

/** How often the watchdog expired since it was made. */
uint64_t kb_watchdog_expired(const kb_watchdog_t *wd);

/** Stops the thread and frees @p wd (NULL: nothing). */
void kb_watchdog_destroy(kb_watchdog_t *wd);

#endif /* KB_WATCHDOG_H */
