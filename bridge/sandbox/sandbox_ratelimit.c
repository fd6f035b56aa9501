/* sandbox_ratelimit.c -- per-key, per-class 60 s sliding-window rate limits */
#include "sandbox.h"

#include <stdlib.h>
#include <string.h>

#define WINDOW_MS 60000

/* The vendor's documented budgets per key and minute (API-CONTRACT.md). */
static const int64_t default_limits[KB_SBX_RL_NCLASSES] = {
        [KB_SBX_RL_WRITES] = 300,
        [KB_SBX_RL_READS] = 600,
        [KB_SBX_RL_SESSION_CREATE] = 600,
        [KB_SBX_RL_DECISION] = 100,
};

static const char *const class_names[KB_SBX_RL_NCLASSES] = {
        [KB_SBX_RL_WRITES] = "writes",
        [KB_SBX_RL_READS] = "reads",
        [KB_SBX_RL_SESSION_CREATE] = "session_create",
        [KB_SBX_RL_DECISION] = "decision",
};

const char *kb_sbx_rl_class_name(int cls)
{
        if (cls < 0 || cls >= KB_SBX_RL_NCLASSES)
                return "?";
        return class_names[cls];
}

void kb_sbx_rl_init(kb_sbx_rl_t *rl)
{
        pthread_mutex_init(&rl->lock, NULL);
        memcpy(rl->limit, default_limits, sizeof(rl->limit));
        memcpy(rl->defaults, default_limits, sizeof(rl->defaults));
        rl->epoch = 1;
}

void kb_sbx_rl_destroy(kb_sbx_rl_t *rl)
{
        pthread_mutex_destroy(&rl->lock);
}

void kb_sbx_rl_key_free(kb_sbx_rl_key_t *key)
{
        int i;

        for (i = 0; i < KB_SBX_RL_NCLASSES; i++) {
                free(key->log[i].ts);
                memset(&key->log[i], 0, sizeof(key->log[i]));
        }
        key->epoch = 0;
}

/* Seconds, rounded up. */
static int64_t ceil_s(int64_t ms)
{
        return ms <= 0 ? 0 : (ms + 999) / 1000;
}

/* Drops the entries that left the window (now - 60 s, now]. */
static void log_expire(kb_sbx_rl_log_t *lg, int64_t now_ms)
{
        while (lg->count > 0 && lg->ts[lg->head] <= now_ms - WINDOW_MS) {
                lg->head = (lg->head + 1) % lg->cap;
                lg->count--;
        }
}

static void fill_unlimited(kb_sbx_rl_info_t *info, int64_t now_ms)
{
        info->limit = KB_SBX_RL_UNLIMITED_ADVERTISED;
        info->remaining = KB_SBX_RL_UNLIMITED_ADVERTISED;
        info->reset = ceil_s(now_ms);
        info->retry_after = 0;
}

int kb_sbx_rl_take(kb_sbx_rl_t *rl, kb_sbx_rl_key_t *key, int cls,
                   int64_t now_ms, kb_sbx_rl_info_t *info)
{
        kb_sbx_rl_log_t *lg;
        int64_t limit;
        int refused = 0;

        if (cls < 0 || cls >= KB_SBX_RL_NCLASSES) {
                fill_unlimited(info, now_ms);
                return 0;
        }
        pthread_mutex_lock(&rl->lock);
        if (key->epoch != rl->epoch) {
                /* limits changed since this key was last seen: restart */
                kb_sbx_rl_key_free(key);
                key->epoch = rl->epoch;
        }
        limit = rl->limit[cls];
        lg = &key->log[cls];
        if (limit == 0) {
                pthread_mutex_unlock(&rl->lock);
                fill_unlimited(info, now_ms);
                return 0;
        }
        if (lg->cap != (size_t)limit) {
                int64_t *ts = calloc((size_t)limit, sizeof(*ts));
                if (!ts) {
                        /* out of memory: let the request through */
                        pthread_mutex_unlock(&rl->lock);
                        fill_unlimited(info, now_ms);
                        return 0;
                }
                free(lg->ts);
                lg->ts = ts;
                lg->cap = (size_t)limit;
                lg->head = lg->count = 0;
        }
        log_expire(lg, now_ms);
        if (lg->count >= lg->cap) {
                refused = 1;
                info->retry_after =
                    ceil_s(lg->ts[lg->head] + WINDOW_MS - now_ms);
                if (info->retry_after < 1)
                        info->retry_after = 1;
        } else {
                lg->ts[(lg->head + lg->count) % lg->cap] = now_ms;
                lg->count++;
                info->retry_after = 0;
        }
        info->limit = limit;
        info->remaining = limit - (int64_t)lg->count;
        /* when the oldest request in the window leaves it (a slot frees) */
        info->reset = ceil_s(lg->ts[lg->head] + WINDOW_MS);
        pthread_mutex_unlock(&rl->lock);
        return refused;
}

void kb_sbx_rl_peek(kb_sbx_rl_t *rl, int cls, int64_t now_ms,
                    kb_sbx_rl_info_t *info)
{
        int64_t limit;

        if (cls < 0 || cls >= KB_SBX_RL_NCLASSES) {
                fill_unlimited(info, now_ms);
                return;
        }
        pthread_mutex_lock(&rl->lock);
        limit = rl->limit[cls];
        pthread_mutex_unlock(&rl->lock);
        if (limit == 0) {
                fill_unlimited(info, now_ms);
                return;
        }
        info->limit = limit;
        info->remaining = limit;
        info->reset = ceil_s(now_ms);
        info->retry_after = 0;
}

void kb_sbx_rl_set(kb_sbx_rl_t *rl, const int64_t limit[KB_SBX_RL_NCLASSES])
{
        int i;

        pthread_mutex_lock(&rl->lock);
        for (i = 0; i < KB_SBX_RL_NCLASSES; i++)
                if (limit[i] >= 0)
                        rl->limit[i] = limit[i];
        rl->epoch++;
        pthread_mutex_unlock(&rl->lock);
}

void kb_sbx_rl_reset(kb_sbx_rl_t *rl)
{
        pthread_mutex_lock(&rl->lock);
        memcpy(rl->limit, rl->defaults, sizeof(rl->limit));
        rl->epoch++;
        pthread_mutex_unlock(&rl->lock);
}

void kb_sbx_rl_get(kb_sbx_rl_t *rl, int64_t limit[KB_SBX_RL_NCLASSES])
{
        pthread_mutex_lock(&rl->lock);
        memcpy(limit, rl->limit, sizeof(rl->limit));
        pthread_mutex_unlock(&rl->lock);
}
