/* watchdog.c -- a deadline on a blocking call that may never return */
#include "watchdog.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

#include "log.h"
#include "util.h"

struct kb_watchdog_s {
        char name[64];
        kb_watchdog_expired_cb *on_expired;
        void *opaque;
        pthread_t thread;
        pthread_mutex_t lock;
        pthread_cond_t cond; /* on CLOCK_MONOTONIC */
        /* under lock */
        int stop;
        const char *what; /* the armed call, NULL when disarmed */
        int64_t limit_ms;
        struct timespec due;
        atomic_uint_fast64_t expired;
};

static void default_expired(void *opaque, const char *what, int64_t limit_ms)
{
        const kb_watchdog_t *wd = opaque;

        kb_log_error("watchdog",
                     "%s: %s has not returned within %lld ms: librdkafka is "
                     "stuck in it; ending the process (exit status 1) so "
                     "that its supervisor starts a new one with a new "
                     "producer",
                     wd->name, what, (long long)limit_ms);
        _exit(1);
}

static void *watch(void *arg)
{
        kb_watchdog_t *wd = arg;
        struct timespec now;
        const char *what;
        int64_t limit;

        pthread_mutex_lock(&wd->lock);
        while (!wd->stop) {
                if (!wd->what) {
                        pthread_cond_wait(&wd->cond, &wd->lock);
                        continue;
                }
                if (pthread_cond_timedwait(&wd->cond, &wd->lock, &wd->due) !=
                    ETIMEDOUT)
                        continue; /* disarmed, re-armed or stopped: look
                                     again */
                clock_gettime(CLOCK_MONOTONIC, &now);
                if (!wd->what || wd->stop || now.tv_sec < wd->due.tv_sec ||
                    (now.tv_sec == wd->due.tv_sec &&
                     now.tv_nsec < wd->due.tv_nsec))
                        continue;
                what = wd->what;
                limit = wd->limit_ms;
                wd->what = NULL;
                atomic_fetch_add(&wd->expired, 1);
                pthread_mutex_unlock(&wd->lock);
                if (wd->on_expired)
                        wd->on_expired(wd->opaque, what, limit);
                else
                        default_expired(wd, what, limit);
                pthread_mutex_lock(&wd->lock);
        }
        pthread_mutex_unlock(&wd->lock);
        return NULL;
}

kb_watchdog_t *kb_watchdog_new(const char *name,
                               kb_watchdog_expired_cb *on_expired, void *opaque)
{
        pthread_condattr_t ca;
        kb_watchdog_t *wd;

        if (!(wd = calloc(1, sizeof(*wd))))
                return NULL;
        kb_snprintf(wd->name, sizeof(wd->name), "%s", name);
        wd->on_expired = on_expired;
        wd->opaque = opaque;
        atomic_init(&wd->expired, 0);
        if (pthread_condattr_init(&ca)) {
                free(wd);
                return NULL;
        }
        pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
        if (pthread_cond_init(&wd->cond, &ca)) {
                pthread_condattr_destroy(&ca);
                free(wd);
                return NULL;
        }
        pthread_condattr_destroy(&ca);
        pthread_mutex_init(&wd->lock, NULL);
        if (pthread_create(&wd->thread, NULL, watch, wd)) {
                pthread_cond_destroy(&wd->cond);
                pthread_mutex_destroy(&wd->lock);
                free(wd);
                return NULL;
        }
        return wd;
}

void kb_watchdog_arm(kb_watchdog_t *wd, const char *what, int64_t limit_ms)
{
        struct timespec due;

        clock_gettime(CLOCK_MONOTONIC, &due);
        if (limit_ms < 0)
                limit_ms = 0;
        due.tv_sec += (time_t)(limit_ms / 1000);
        due.tv_nsec += (long)(limit_ms % 1000) * 1000000L;
        if (due.tv_nsec >= 1000000000L) {
                due.tv_sec++;
                due.tv_nsec -= 1000000000L;
        }
        pthread_mutex_lock(&wd->lock);
        wd->what = what;
        wd->limit_ms = limit_ms;
        wd->due = due;
        pthread_cond_signal(&wd->cond);
        pthread_mutex_unlock(&wd->lock);
}

void kb_watchdog_disarm(kb_watchdog_t *wd)
{
        pthread_mutex_lock(&wd->lock);
        wd->what = NULL;
        pthread_cond_signal(&wd->cond);
        pthread_mutex_unlock(&wd->lock);
}

uint64_t kb_watchdog_expired(const kb_watchdog_t *wd)
{
        return (uint64_t)atomic_load(&wd->expired);
}

void kb_watchdog_destroy(kb_watchdog_t *wd)
{
        if (!wd)
                return;
        pthread_mutex_lock(&wd->lock);
        wd->stop = 1;
        pthread_cond_signal(&wd->cond);
        pthread_mutex_unlock(&wd->lock);
        pthread_join(wd->thread, NULL);
        pthread_cond_destroy(&wd->cond);
        pthread_mutex_destroy(&wd->lock);
        free(wd);
}
