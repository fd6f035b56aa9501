/* wh_replay.c -- bounded memory of accepted webhook deliveries */
#include "wh_replay.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "hmap.h"

typedef struct entry_s {
        int done;
        int64_t expires;             /* done only */
        struct entry_s *prev, *next; /* expiry order, done only */
        char key[];
} entry_t;

struct kb_wh_replay_s {
        pthread_mutex_t lock;
        kb_hmap_t *map;       /* key -> entry_t */
        entry_t *head, *tail; /* done entries, oldest commit first */
        size_t max;
        int64_t keep_s;
};

kb_wh_replay_t *kb_wh_replay_new(size_t max_entries, int64_t keep_s)
{
        kb_wh_replay_t *rc;

        if (max_entries == 0 || keep_s < 1)
                return NULL;
        rc = calloc(1, sizeof(*rc));
        if (!rc)
                return NULL;
        rc->map = kb_hmap_new();
        if (!rc->map) {
                free(rc);
                return NULL;
        }
        pthread_mutex_init(&rc->lock, NULL);
        rc->max = max_entries;
        rc->keep_s = keep_s;
        return rc;
}

void kb_wh_replay_destroy(kb_wh_replay_t *rc)
{
        kb_hmap_iter_t it = KB_HMAP_ITER_INIT;
        void *val;

        if (!rc)
                return;
        while (kb_hmap_next(rc->map, &it, NULL, NULL, &val))
                free(val);
        kb_hmap_destroy(rc->map);
        pthread_mutex_destroy(&rc->lock);
        free(rc);
}

static void unlink_entry(kb_wh_replay_t *rc, entry_t *e)
{
        if (e->prev)
                e->prev->next = e->next;
        else
                rc->head = e->next;
        if (e->next)
                e->next->prev = e->prev;
        else
                rc->tail = e->prev;
        e->prev = e->next = NULL;
}

static void append_entry(kb_wh_replay_t *rc, entry_t *e)
{
        e->prev = rc->tail;
        e->next = NULL;
        if (rc->tail)
                rc->tail->next = e;
        else
                rc->head = e;
        rc->tail = e;
}

/* Drops done entries past their time. Commits come in time order, so the
 * list is ordered by expiry (unless the wall clock steps back: then an
 * entry is kept a little longer, never shorter). */
static void expire(kb_wh_replay_t *rc, int64_t now)
{
        while (rc->head && rc->head->expires <= now) {
                entry_t *e = rc->head;
                unlink_entry(rc, e);
                kb_hmap_dels(rc->map, e->key);
                free(e);
        }
}

int kb_wh_replay_reserve(kb_wh_replay_t *rc, const char *key, int64_t now)
{
        entry_t *e;
        size_t klen = strlen(key);
        int res;

        pthread_mutex_lock(&rc->lock);
        expire(rc, now);
        e = kb_hmap_gets(rc->map, key);
        if (e) {
                res = e->done ? KB_WH_REPLAY_DONE : KB_WH_REPLAY_PENDING;
                goto out;
        }
        if (kb_hmap_count(rc->map) >= rc->max) {
                res = KB_WH_REPLAY_FULL;
                goto out;
        }
        e = calloc(1, sizeof(*e) + klen + 1);
        if (!e || kb_hmap_puts(rc->map, key, e) == -1) {
                free(e);
                res = KB_ERR_NOMEM;
                goto out;
        }
        memcpy(e->key, key, klen + 1);
        res = KB_WH_REPLAY_NEW;
out:
        pthread_mutex_unlock(&rc->lock);
        return res;
}

int kb_wh_replay_commit(kb_wh_replay_t *rc, const char *key, int64_t now)
{
        entry_t *e;
        size_t klen = strlen(key);
        int rv = KB_OK;

        pthread_mutex_lock(&rc->lock);
        expire(rc, now);
        e = kb_hmap_gets(rc->map, key);
        if (!e) {
                /* a second key of an accepted delivery: allowed past max
                 * (bounded by the first key's count) */
                e = calloc(1, sizeof(*e) + klen + 1);
                if (!e || kb_hmap_puts(rc->map, key, e) == -1) {
                        free(e);
                        rv = KB_ERR_NOMEM;
                        goto out;
                }
                memcpy(e->key, key, klen + 1);
        } else if (e->done) {
                unlink_entry(rc, e);
        }
        e->done = 1;
        e->expires = now + rc->keep_s;
        append_entry(rc, e);
out:
        pthread_mutex_unlock(&rc->lock);
        return rv;
}

void kb_wh_replay_release(kb_wh_replay_t *rc, const char *key)
{
        entry_t *e;

        pthread_mutex_lock(&rc->lock);
        e = kb_hmap_gets(rc->map, key);
        if (e && !e->done) {
                kb_hmap_dels(rc->map, key);
                free(e);
        }
        pthread_mutex_unlock(&rc->lock);
}

size_t kb_wh_replay_count(kb_wh_replay_t *rc)
{
        size_t n;

        pthread_mutex_lock(&rc->lock);
        n = kb_hmap_count(rc->map);
        pthread_mutex_unlock(&rc->lock);
        return n;
}
