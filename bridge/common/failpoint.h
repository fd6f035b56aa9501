/* failpoint.h -- named spots where a test build can crash or delay itself */
#ifndef KB_FAILPOINT_H
#define KB_FAILPOINT_H

/*
 * A failpoint is a named spot in the code (KB_FAILPOINT("txn.before_commit"))
 * where a test can make the process die abruptly (SIGKILL of itself: no
 * clean-up, no flush, exactly what `kill -9` does at that instant) or
 * pause. They exist only in test builds: with KB_BUILD_TESTS=ON the targets
 * that hold failpoints are compiled with KB_FAILPOINTS; without it every
 * macro below expands to nothing, failpoint.c compiles to nothing, and no
 * failpoint name nor the variables' names are in the binary
 * (blackbox.failpoints_release_absent checks the release binary).
 *
 * Configured once per process from the environment, by the first
 * KB_FAILPOINTS_SETUP() (the daemons' and the pipeline's constructors):
 *
 *   KB_FAILPOINTS="issuer.after_mint=crash;txn.before_commit=crash@3;
 *                  importer.after_import=delay(2000)%25;
 *                  txn.during_commit=crash(0-20)"
 *   KB_FAILPOINTS_SEED=42      (the random choices: %P and MIN-MAX ranges)
 *
 * docs/failpoints.md lists the names, where each spot is, what a crash
 * there proves, and the whole syntax. When a failpoint fires it logs one
 * warn line ("failpoint NAME fired: crash (hit N)") before it acts, so a
 * harness can count kills per failpoint from the daemon's log.
 */

#include <stddef.h>
#include <stdint.h>

#ifdef KB_FAILPOINTS

/** The spot @p name (a string literal) is passed: fires if armed. */
#define KB_FAILPOINT(name) kb_failpoint_hit(name)
/** A call starts / has returned: a scope failpoint (txn.during_commit)
 *  crashes from a timer thread only while the call is in flight. */
#define KB_FAILPOINT_BEGIN(name) kb_failpoint_begin(name)
#define KB_FAILPOINT_END(name)   kb_failpoint_end(name)
/** Reads KB_FAILPOINTS once per process: 0, or -1 with @p errstr filled
 *  (a bad spec: a start-up error, the caller refuses to start). */
#define KB_FAILPOINTS_SETUP(errstr, errstr_size)                               \
        kb_failpoints_setup((errstr), (errstr_size))
/** Logs (notice) how often each armed failpoint was passed and fired. */
#define KB_FAILPOINTS_REPORT() kb_failpoints_report()

/**
 * Arms the failpoints of @p spec (syntax: docs/failpoints.md; NULL or ""
 * disarms all), the random choices seeded with @p seed. Replaces any
 * earlier configuration and zeroes every count. Returns 0, or -1 with
 * @p errstr filled ("KB_FAILPOINTS: ...") and the configuration unchanged.
 * Call before the threads that pass failpoints start (tests call it
 * directly; the daemons go through kb_failpoints_setup()).
 */
int kb_failpoints_configure(const char *spec, uint64_t seed, char *errstr,
                            size_t errstr_size);

/**
 * The first call reads KB_FAILPOINTS and KB_FAILPOINTS_SEED (default: from
 * the clock and pid, logged so a run can be repeated) and arms them,
 * logging (warn) what is armed; later calls return the first call's
 * result. Returns 0, or -1 with @p errstr filled on a bad spec or seed.
 */
int kb_failpoints_setup(char *errstr, size_t errstr_size);

/** Passes the spot @p name; any thread. Unknown names are ignored (the
 *  unit test checks every spot in the sources is a known name). */
void kb_failpoint_hit(const char *name);

/** The scope @p name begins: when armed and chosen, a timer thread kills
 *  the process crash(MS) after this unless kb_failpoint_end() comes
 *  first. One scope per name at a time (the engine thread's). */
void kb_failpoint_begin(const char *name);
/** The scope @p name ends: a pending crash is cancelled (logged). */
void kb_failpoint_end(const char *name);

/**
 * Counts of failpoint @p name since the last configuration: @p hits the
 * times the spot was passed (armed or not), @p fired the times it acted.
 * Either pointer may be NULL. Returns 0, or -1 for an unknown name.
 */
int kb_failpoint_counts(const char *name, uint64_t *hits, uint64_t *fired);

/** Every failpoint name, NULL-terminated (docs/failpoints.md lists them). */
const char *const *kb_failpoint_names(void);

/** See KB_FAILPOINTS_REPORT(). */
void kb_failpoints_report(void);

#else /* !KB_FAILPOINTS: a release build has none */

#define KB_FAILPOINT(name)                       ((void)0)
#define KB_FAILPOINT_BEGIN(name)                 ((void)0)
#define KB_FAILPOINT_END(name)                   ((void)0)
#define KB_FAILPOINTS_SETUP(errstr, errstr_size) 0
#define KB_FAILPOINTS_REPORT()                   ((void)0)

#endif /* KB_FAILPOINTS */

#endif /* KB_FAILPOINT_H */
