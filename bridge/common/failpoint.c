/* failpoint.c -- named spots where a test build can crash or delay itself */
#include "failpoint.h"

#ifdef KB_FAILPOINTS

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "log.h"
#include "util.h"

#define FP_ENV      "KB_FAILPOINTS"
#define FP_SEED_ENV "KB_FAILPOINTS_SEED"
#define FP_MAX_MS   3600000 /* an hour: anything longer is a typo */

/*
 * Every failpoint: its name and whether it is a scope (KB_FAILPOINT_BEGIN /
 * _END around a call, crashing from a timer thread while the call is in
 * flight) or a spot (KB_FAILPOINT). docs/failpoints.md says where each one
 * is; test_failpoint checks that the sources name no other.
 */
#define FP_LIST(X)                                                             \
        X("issuer.after_mint", 0)                                              \
        X("importer.after_import", 0)                                          \
        X("txn.after_produce", 0)                                              \
        X("txn.before_send_offsets", 0)                                        \
        X("txn.after_send_offsets", 0)                                         \
        X("txn.before_commit", 0)                                              \
        X("txn.during_commit", 1)                                              \
        X("redrive.before_commit", 0)

typedef enum { FP_OFF = 0, FP_CRASH, FP_DELAY } fp_act_t;

/* What a failpoint does, as configured. */
typedef struct {
        fp_act_t act;
        int min_ms, max_ms; /* delay(MS), a scope's crash(MS); MIN-MAX */
        uint64_t nth;       /* @N: the Nth hit only; 0: every hit */
        double pct;         /* %P: each hit with this chance, in percent */
} fp_conf_t;

typedef struct {
        const char *name;
        int scope;
        fp_conf_t c; /* set before the threads that pass it run */
        atomic_uint_fast64_t hits, fired;
        /* a scope's pending crash, under fp_lock */
        int open, timer_started;
        int crash_ms;
        uint64_t hit_no;
        struct timespec begun, due; /* CLOCK_MONOTONIC */
        pthread_t timer;
} fp_t;

#define FP_NAME(n, s)  n,
#define FP_ENTRY(n, s) { .name = n, .scope = s },
static const char *const fp_names[] = { FP_LIST(FP_NAME) NULL };
static fp_t fps[] = { FP_LIST(FP_ENTRY) };
#define FP_N KB_ARRAY_SIZE(fps)

static pthread_mutex_t fp_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t fp_cond;
static pthread_once_t fp_cond_once = PTHREAD_ONCE_INIT;
static uint64_t fp_rng; /* splitmix64 state, under fp_lock */
static atomic_int fp_armed;

static void fp_cond_init(void)
{
        pthread_condattr_t ca;

        pthread_condattr_init(&ca);
        pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
        pthread_cond_init(&fp_cond, &ca);
        pthread_condattr_destroy(&ca);
}

/* splitmix64: small, and the same sequence for the same seed everywhere */
static uint64_t fp_rand(void)
{
        uint64_t z = (fp_rng += 0x9e3779b97f4a7c15ULL);

        z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
        z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
        return z ^ (z >> 31);
}

static fp_t *fp_find(const char *name)
{
        size_t i;

        for (i = 0; i < FP_N; i++)
                if (!strcmp(fps[i].name, name))
                        return &fps[i];
        return NULL;
}

const char *const *kb_failpoint_names(void)
{
        return fp_names;
}

/* ---- the spec ---- */

static int fp_err(char *errstr, size_t errstr_size, const char *entry,
                  size_t entry_len, const char *why)
{
        kb_snprintf(errstr, errstr_size, "%s: \"%.*s\": %s", FP_ENV,
                    (int)(entry_len > 120 ? 120 : entry_len), entry, why);
        return -1;
}

/* Digits only (no sign, no blanks), at most @p max. 0 or -1. */
static int fp_uint(const char *s, size_t len, uint64_t max, uint64_t *out)
{
        char buf[24];
        unsigned long long v;
        char *end;
        size_t i;

        if (len == 0 || len >= sizeof(buf))
                return -1;
        for (i = 0; i < len; i++)
                if (s[i] < '0' || s[i] > '9')
                        return -1;
        memcpy(buf, s, len);
        buf[len] = '\0';
        errno = 0;
        v = strtoull(buf, &end, 10);
        if (errno || *end || v > max)
                return -1;
        *out = v;
        return 0;
}

/* A percentage: digits with at most one '.', 0 < P <= 100. */
static int fp_pct(const char *s, size_t len, double *out)
{
        char buf[24];
        double v;
        char *end;
        size_t i, dots = 0;

        if (len == 0 || len >= sizeof(buf))
                return -1;
        for (i = 0; i < len; i++) {
                if (s[i] == '.')
                        dots++;
                else if (s[i] < '0' || s[i] > '9')
                        return -1;
        }
        if (dots > 1 || s[0] == '.' || s[len - 1] == '.')
                return -1;
        memcpy(buf, s, len);
        buf[len] = '\0';
        errno = 0;
        v = strtod(buf, &end);
        if (errno || *end || !(v > 0.0 && v <= 100.0))
                return -1;
        *out = v;
        return 0;
}

/* "MS" or "MIN-MAX" (milliseconds) between the parentheses. */
static int fp_range(const char *s, size_t len, fp_conf_t *c)
{
        const char *dash = memchr(s, '-', len);
        uint64_t a, b;

        if (!dash) {
                if (fp_uint(s, len, FP_MAX_MS, &a))
                        return -1;
                b = a;
        } else if (fp_uint(s, (size_t)(dash - s), FP_MAX_MS, &a) ||
                   fp_uint(dash + 1, len - (size_t)(dash - s) - 1, FP_MAX_MS,
                           &b) ||
                   a > b) {
                return -1;
        }
        c->min_ms = (int)a;
        c->max_ms = (int)b;
        return 0;
}

static int fp_is_blank(char ch)
{
        return ch == ' ' || ch == '\t' || ch == '\n' || ch == '\r';
}

/* One "NAME=ACTION[@N|%P]" entry [s, s+len) into @p confs (by fps index).
 */
static int fp_parse_entry(const char *s, size_t len, fp_conf_t *confs,
                          char *errstr, size_t errstr_size)
{
        const char *eq = memchr(s, '=', len), *a, *end = s + len, *close;
        size_t nlen, i;
        fp_conf_t c = { FP_OFF, 0, 0, 0, 100.0 };
        fp_t *fp = NULL;
        char why[512];
        uint64_t n;

        if (!eq)
                return fp_err(errstr, errstr_size, s, len,
                              "expected NAME=ACTION");
        nlen = (size_t)(eq - s);
        while (nlen > 0 && fp_is_blank(s[nlen - 1]))
                nlen--;
        for (i = 0; i < FP_N; i++)
                if (strlen(fps[i].name) == nlen &&
                    !memcmp(fps[i].name, s, nlen))
                        fp = &fps[i];
        if (!fp) {
                kb_buf_t b = KB_BUF_INIT;
                for (i = 0; i < FP_N; i++)
                        kb_buf_printf(&b, "%s%s", i ? ", " : "", fps[i].name);
                kb_snprintf(why, sizeof(why), "unknown failpoint (known: %s)",
                            b.data ? b.data : "?");
                kb_buf_free(&b, 0);
                return fp_err(errstr, errstr_size, s, len, why);
        }
        if (confs[fp - fps].act != FP_OFF)
                return fp_err(errstr, errstr_size, s, len,
                              "failpoint named twice");
        a = eq + 1;
        while (a < end && fp_is_blank(*a))
                a++;
        while (end > a && fp_is_blank(end[-1]))
                end--;
        if ((size_t)(end - a) >= 5 && !memcmp(a, "crash", 5)) {
                c.act = FP_CRASH;
                a += 5;
        } else if ((size_t)(end - a) >= 5 && !memcmp(a, "delay", 5)) {
                c.act = FP_DELAY;
                a += 5;
        } else {
                return fp_err(errstr, errstr_size, s, len,
                              "unknown action (crash, crash(MS), "
                              "delay(MS), optionally @N or %P)");
        }
        if (a < end && *a == '(') {
                close = memchr(a, ')', (size_t)(end - a));
                if (!close || fp_range(a + 1, (size_t)(close - a - 1), &c))
                        return fp_err(errstr, errstr_size, s, len,
                                      "expected (MS) or (MIN-MAX): "
                                      "milliseconds, 0 to 3600000");
                a = close + 1;
        } else if (c.act == FP_DELAY) {
                return fp_err(errstr, errstr_size, s, len,
                              "delay needs its milliseconds: delay(MS)");
        }
        if (a < end && *a == '@') {
                if (fp_uint(a + 1, (size_t)(end - a - 1), UINT32_MAX, &n) ||
                    n == 0)
                        return fp_err(errstr, errstr_size, s, len,
                                      "@N: N must be a hit number from 1");
                c.nth = n;
                a = end;
        } else if (a < end && *a == '%') {
                if (fp_pct(a + 1, (size_t)(end - a - 1), &c.pct))
                        return fp_err(errstr, errstr_size, s, len,
                                      "%P: P must be a percentage, more "
                                      "than 0 and at most 100");
                a = end;
        }
        if (a != end)
                return fp_err(errstr, errstr_size, s, len,
                              "unexpected text after the action");
        if (fp->scope && c.act == FP_DELAY)
                return fp_err(errstr, errstr_size, s, len,
                              "a call in flight cannot be delayed from "
                              "outside: only crash(MS) or crash(MIN-MAX) "
                              "(ms into the call)");
        if (!fp->scope && c.act == FP_CRASH && c.max_ms > 0)
                return fp_err(errstr, errstr_size, s, len,
                              "crash(MS) is for txn.during_commit only; "
                              "here crash is at once");
        confs[fp - fps] = c;
        return 0;
}

int kb_failpoints_configure(const char *spec, uint64_t seed, char *errstr,
                            size_t errstr_size)
{
        fp_conf_t confs[FP_N];
        const char *s = spec ? spec : "", *e;
        size_t i, len;
        int armed = 0;

        memset(confs, 0, sizeof(confs));
        while (*s) {
                e = strchr(s, ';');
                len = e ? (size_t)(e - s) : strlen(s);
                while (len > 0 && fp_is_blank(*s)) {
                        s++;
                        len--;
                }
                while (len > 0 && fp_is_blank(s[len - 1]))
                        len--;
                if (len > 0 &&
                    fp_parse_entry(s, len, confs, errstr, errstr_size))
                        return -1;
                if (!e)
                        break;
                s = e + 1;
        }
        pthread_mutex_lock(&fp_lock);
        for (i = 0; i < FP_N; i++) {
                fps[i].c = confs[i];
                atomic_store(&fps[i].hits, 0);
                atomic_store(&fps[i].fired, 0);
                if (confs[i].act != FP_OFF)
                        armed = 1;
        }
        fp_rng = seed;
        atomic_store(&fp_armed, armed);
        pthread_mutex_unlock(&fp_lock);
        return 0;
}

/* "NAME=crash@3" as configured, for the start-up line. */
static void fp_describe(const fp_t *fp, kb_buf_t *b)
{
        const fp_conf_t *c = &fp->c;

        kb_buf_printf(b, "%s=%s", fp->name,
                      c->act == FP_CRASH ? "crash" : "delay");
        if (c->act == FP_DELAY || c->max_ms > 0) {
                if (c->min_ms == c->max_ms)
                        kb_buf_printf(b, "(%d)", c->min_ms);
                else
                        kb_buf_printf(b, "(%d-%d)", c->min_ms, c->max_ms);
        }
        if (c->nth)
                kb_buf_printf(b, "@%" PRIu64, c->nth);
        else if (c->pct < 100.0)
                kb_buf_printf(b, "%%%g", c->pct);
}

int kb_failpoints_setup(char *errstr, size_t errstr_size)
{
        static pthread_mutex_t setup_lock = PTHREAD_MUTEX_INITIALIZER;
        static int done, result;
        static char first_err[512];
        const char *spec, *seed_s;
        kb_buf_t b = KB_BUF_INIT;
        uint64_t seed;
        size_t i;

        pthread_mutex_lock(&setup_lock);
        if (done)
                goto out;
        done = 1;
        spec = getenv(FP_ENV);
        if (!spec || !*spec)
                goto out;
        seed_s = getenv(FP_SEED_ENV);
        if (seed_s && *seed_s) {
                if (fp_uint(seed_s, strlen(seed_s), UINT64_MAX, &seed)) {
                        kb_snprintf(first_err, sizeof(first_err),
                                    "%s: \"%.40s\": not a decimal number",
                                    FP_SEED_ENV, seed_s);
                        result = -1;
                        goto out;
                }
        } else {
                seed = (uint64_t)time(NULL) ^ ((uint64_t)getpid() << 32) ^
                       (uint64_t)kb_mono_us();
        }
        if (kb_failpoints_configure(spec, seed, first_err, sizeof(first_err))) {
                result = -1;
                goto out;
        }
        for (i = 0; i < FP_N; i++)
                if (fps[i].c.act != FP_OFF) {
                        if (b.len)
                                kb_buf_puts(&b, ";");
                        fp_describe(&fps[i], &b);
                }
        /* at warn whatever the level: a harness reads it */
        kb_log_write(KB_LOG_WARN, "failpoint",
                     "failpoints armed (test build), %s=%" PRIu64 ": %s",
                     FP_SEED_ENV, seed, b.data ? b.data : "none");
        kb_buf_free(&b, 0);
out:
        if (result)
                kb_strlcpy(errstr, first_err, errstr_size);
        pthread_mutex_unlock(&setup_lock);
        return result;
}

/* ---- firing ---- */

/* Whether hit @p n fires; @p ms the milliseconds of the action. */
static int fp_choose(fp_t *fp, uint64_t n, int *ms)
{
        const fp_conf_t *c = &fp->c;
        int go = 1;

        if (c->act == FP_OFF || (c->nth && n != c->nth))
                return 0;
        *ms = c->min_ms;
        if (c->pct >= 100.0 && c->max_ms == c->min_ms)
                return 1;
        pthread_mutex_lock(&fp_lock);
        if (c->pct < 100.0)
                go = (double)(fp_rand() >> 11) * (100.0 / 9007199254740992.0) <
                     c->pct;
        if (go && c->max_ms > c->min_ms)
                *ms += (int)(fp_rand() % (uint64_t)(c->max_ms - c->min_ms + 1));
        pthread_mutex_unlock(&fp_lock);
        return go;
}

/* The line first (stderr is unbuffered, and kb_log_write() is one
 * write(2), but flush anyway), then SIGKILL of the whole process: no exit
 * handler, no librdkafka clean-up, no buffered output -- what `kill -9`
 * does at this instant. */
static void fp_die(const fp_t *fp, uint64_t n, const char *how)
{
        kb_log_write(KB_LOG_WARN, "failpoint",
                     "failpoint %s fired: crash%s (hit %" PRIu64 ")", fp->name,
                     how, n);
        fflush(stderr);
        kill(getpid(), SIGKILL);
        for (;;)
                pause();
}

static void fp_sleep(int ms)
{
        struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000L };

        while (nanosleep(&ts, &ts) == -1 && errno == EINTR)
                ;
}

void kb_failpoint_hit(const char *name)
{
        fp_t *fp = fp_find(name);
        uint64_t n;
        int ms;

        if (!fp || fp->scope)
                return;
        n = atomic_fetch_add(&fp->hits, 1) + 1;
        if (!atomic_load(&fp_armed) || !fp_choose(fp, n, &ms))
                return;
        atomic_fetch_add(&fp->fired, 1);
        if (fp->c.act == FP_CRASH)
                fp_die(fp, n, "");
        kb_log_write(KB_LOG_WARN, "failpoint",
                     "failpoint %s fired: delay %d ms (hit %" PRIu64 ")",
                     fp->name, ms, n);
        fp_sleep(ms);
}

static int64_t fp_us_since(const struct timespec *t)
{
        struct timespec now;

        clock_gettime(CLOCK_MONOTONIC, &now);
        return (int64_t)(now.tv_sec - t->tv_sec) * 1000000 +
               (now.tv_nsec - t->tv_nsec) / 1000;
}

/* A scope's timer: kills the process at fp->due unless the scope ended
 * first. The check and the kill happen under fp_lock, so
 * kb_failpoint_end() cannot mark the call returned in between. */
static void *fp_timer_main(void *arg)
{
        fp_t *fp = arg;
        char how[64];

        pthread_mutex_lock(&fp_lock);
        while (fp->open && pthread_cond_timedwait(&fp_cond, &fp_lock,
                                                  &fp->due) != ETIMEDOUT)
                ;
        if (fp->open) {
                atomic_fetch_add(&fp->fired, 1);
                kb_snprintf(how, sizeof(how), " %lld ms into the call",
                            (long long)(fp_us_since(&fp->begun) / 1000));
                fp_die(fp, fp->hit_no, how);
        }
        pthread_mutex_unlock(&fp_lock);
        return NULL;
}

void kb_failpoint_begin(const char *name)
{
        fp_t *fp = fp_find(name);
        uint64_t n;
        int ms;

        if (!fp || !fp->scope)
                return;
        n = atomic_fetch_add(&fp->hits, 1) + 1;
        if (!atomic_load(&fp_armed) || !fp_choose(fp, n, &ms))
                return;
        pthread_once(&fp_cond_once, fp_cond_init);
        pthread_mutex_lock(&fp_lock);
        if (fp->timer_started) {
                /* one scope at a time per name: not this one */
                pthread_mutex_unlock(&fp_lock);
                return;
        }
        clock_gettime(CLOCK_MONOTONIC, &fp->begun);
        fp->due = fp->begun;
        fp->due.tv_sec += ms / 1000;
        fp->due.tv_nsec += (long)(ms % 1000) * 1000000L;
        if (fp->due.tv_nsec >= 1000000000L) {
                fp->due.tv_sec++;
                fp->due.tv_nsec -= 1000000000L;
        }
        fp->crash_ms = ms;
        fp->hit_no = n;
        fp->open = 1;
        if (pthread_create(&fp->timer, NULL, fp_timer_main, fp)) {
                fp->open = 0;
                pthread_mutex_unlock(&fp_lock);
                kb_log_write(KB_LOG_WARN, "failpoint",
                             "failpoint %s: no timer thread: not armed for "
                             "this call (hit %" PRIu64 ")",
                             fp->name, n);
                return;
        }
        fp->timer_started = 1;
        pthread_mutex_unlock(&fp_lock);
        kb_log_notice("failpoint",
                      "failpoint %s: crash due %d ms into this call (hit "
                      "%" PRIu64 ")",
                      fp->name, ms, n);
}

void kb_failpoint_end(const char *name)
{
        fp_t *fp = fp_find(name);
        int64_t took_us;
        uint64_t n;
        int ms;

        if (!fp || !fp->scope)
                return;
        pthread_mutex_lock(&fp_lock);
        if (!fp->timer_started) {
                pthread_mutex_unlock(&fp_lock);
                return;
        }
        fp->open = 0;
        took_us = fp_us_since(&fp->begun);
        ms = fp->crash_ms;
        n = fp->hit_no;
        pthread_cond_broadcast(&fp_cond);
        pthread_mutex_unlock(&fp_lock);
        pthread_join(fp->timer, NULL);
        pthread_mutex_lock(&fp_lock);
        fp->timer_started = 0;
        pthread_mutex_unlock(&fp_lock);
        if (took_us < (int64_t)ms * 1000)
                kb_log_write(KB_LOG_WARN, "failpoint",
                             "failpoint %s not fired: the call returned after "
                             "%lld ms, before the crash due at %d ms (hit "
                             "%" PRIu64 ")",
                             fp->name, (long long)(took_us / 1000), ms, n);
        else /* a loaded machine: the timer thread ran too late */
                kb_log_write(KB_LOG_WARN, "failpoint",
                             "failpoint %s not fired: the call returned after "
                             "%lld ms; the crash was due at %d ms but the "
                             "timer thread had not run yet (hit %" PRIu64 ")",
                             fp->name, (long long)(took_us / 1000), ms, n);
}

int kb_failpoint_counts(const char *name, uint64_t *hits, uint64_t *fired)
{
        fp_t *fp = fp_find(name);

        if (!fp)
                return -1;
        if (hits)
                *hits = atomic_load(&fp->hits);
        if (fired)
                *fired = atomic_load(&fp->fired);
        return 0;
}

void kb_failpoints_report(void)
{
        kb_buf_t b = KB_BUF_INIT;
        size_t i;

        if (!atomic_load(&fp_armed))
                return;
        for (i = 0; i < FP_N; i++)
                if (fps[i].c.act != FP_OFF)
                        kb_buf_printf(&b,
                                      "%s%s passed %" PRIu64 ", fired %" PRIu64,
                                      b.len ? "; " : "", fps[i].name,
                                      (uint64_t)atomic_load(&fps[i].hits),
                                      (uint64_t)atomic_load(&fps[i].fired));
        kb_log_notice("failpoint", "failpoints: %s", b.data ? b.data : "");
        kb_buf_free(&b, 0);
}

#else /* !KB_FAILPOINTS */

/* a release build: nothing (ISO C wants a declaration in every file) */
typedef int kb_failpoint_none_t;

#endif /* KB_FAILPOINTS */
