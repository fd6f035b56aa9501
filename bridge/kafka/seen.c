/* seen.c -- remembered share_ids: the compact table the daemons ask and
 * update (claim, commit, forget, expire); seen_topic.c reads and writes the
 * compacted Kafka topic behind it */
#include "seen_int.h"

#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "log.h"
#include "util.h"

int64_t kb_sn_now(const kb_seen_t *sn)
{
        return sn->clock ? sn->clock() : kb_time_now();
}

void kb_sn_digest(const kb_seen_t *sn, const char *s, size_t len, dig_t *d)
{
        unsigned char out[crypto_shorthash_siphashx24_BYTES];

        crypto_shorthash_siphashx24(out, (const unsigned char *)s, len,
                                    sn->sipkey);
        memcpy(d->w, out, sizeof(d->w));
        /* all zero marks an empty slot (one digest in 2^96 moves) */
        if (!(d->w[0] | d->w[1] | d->w[2]))
                d->w[0] = 1;
}

static int dig_eq(const dig_t *a, const dig_t *b)
{
        return a->w[0] == b->w[0] && a->w[1] == b->w[1] && a->w[2] == b->w[2];
}

static int dig_zero(const dig_t *a)
{
        return !(a->w[0] | a->w[1] | a->w[2]);
}

static size_t home(const dig_t *d, size_t cap)
{
        return (size_t)(((uint64_t)d->w[1] * cap) >> 32);
}

static int pending_set(kb_seen_t *sn, const dig_t *d, int on);

static uint32_t until_of(int64_t until)
{
        if (until < 0)
                return 0;
        if (until >= (int64_t)DEAD)
                return DEAD - 1;
        return (uint32_t)until;
}

/* The slot of @p d, or where it would go; *@p found says which. */
static size_t find(const table_t *t, const dig_t *d, int *found)
{
        size_t i = home(d, t->cap);

        while (!dig_zero(&t->key[i])) {
                if (dig_eq(&t->key[i], d)) {
                        *found = 1;
                        return i;
                }
                if (++i == t->cap)
                        i = 0;
        }
        *found = 0;
        return i;
}

/* The slot holding @p d live, or -1. */
static ptrdiff_t lookup(const kb_seen_t *sn, const dig_t *d)
{
        int found;
        size_t i;

        if (!sn->t.cap)
                return -1;
        i = find(&sn->t, d, &found);
        return found && sn->t.until[i] != DEAD ? (ptrdiff_t)i : -1;
}

static int is_pending(const kb_seen_t *sn, const dig_t *d)
{
        return kb_hmap_count(sn->pending) &&
               kb_hmap_get(sn->pending, d->w, sizeof(d->w)) != NULL;
}

/* Indexes ref[i] (not there yet) in ridx. */
static void ridx_add(table_t *t, size_t i)
{
        size_t j = home(&t->ref[i], t->cap);

        while (t->ridx[j])
                if (++j == t->cap)
                        j = 0;
        t->ridx[j] = (uint32_t)(i + 1);
        t->nref++;
}

/*
 * The table's columns: zeroed, and from the kernel directly once they are
 * large (mmap), so that a table given up in a rebuild goes back to the
 * system at once. From the heap, columns of 5-20 MB (10^6 share_ids) fell
 * under glibc's sliding mmap threshold and left holes it kept: the RSS
 * after a first load of 10^6 share_ids varied by 25 MB from run to run.
 */
#define COL_MMAP_MIN (256 * 1024)

static void *col_new(size_t cap, size_t size)
{
        void *p;

        if (cap > SIZE_MAX / size)
                return NULL;
        if (cap * size < COL_MMAP_MIN)
                return calloc(cap, size);
        p = mmap(NULL, cap * size, PROT_READ | PROT_WRITE,
                 MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        return p == MAP_FAILED ? NULL : p;
}

static void col_free(void *p, size_t cap, size_t size)
{
        if (!p)
                return;
        if (cap * size < COL_MMAP_MIN)
                free(p);
        else
                munmap(p, cap * size);
}

/* Frees the columns of @p t (not @p t). */
static void table_free(table_t *t)
{
        col_free(t->key, t->cap, sizeof(*t->key));
        col_free(t->until, t->cap, sizeof(*t->until));
        col_free(t->ref, t->cap, sizeof(*t->ref));
        col_free(t->ridx, t->cap, sizeof(*t->ridx));
}
/* Moves every live entry of @p sn's table (but the ones expired at @p now
 * when @p expire is set) into a new table for @p extra more; -1 on ENOMEM
 * (the table is unchanged). */
static int rebuild(kb_seen_t *sn, size_t extra, int expire, int64_t now)
{
        table_t *o = &sn->t, n;
        size_t i, keep = 0;
        int found;

        for (i = 0; i < o->cap; i++)
                if (o->until[i] != DEAD && !dig_zero(&o->key[i]))
                        keep++;
        memset(&n, 0, sizeof(n));
        n.cap = (keep + extra) * 100 / NEW_LOAD + 1;
        if (n.cap < MIN_CAP)
                n.cap = MIN_CAP;
        if (n.cap >= DEAD) /* slots are numbered in 32 bits */
                return -1;
        n.key = col_new(n.cap, sizeof(*n.key));
        n.until = col_new(n.cap, sizeof(*n.until));
        if (o->ref) {
                n.ref = col_new(n.cap, sizeof(*n.ref));
                n.ridx = col_new(n.cap, sizeof(*n.ridx));
        }
        if (!n.key || !n.until || (o->ref && (!n.ref || !n.ridx))) {
                table_free(&n);
                return -1;
        }
        for (i = 0; i < o->cap; i++) {
                size_t j;
                if (o->until[i] == DEAD || dig_zero(&o->key[i]))
                        continue;
                if (expire && (int64_t)o->until[i] < now &&
                    !is_pending(sn, &o->key[i]))
                        continue;
                j = find(&n, &o->key[i], &found);
                n.key[j] = o->key[i];
                n.until[j] = o->until[i];
                n.used++;
                n.live++;
                if (o->ref && !dig_zero(&o->ref[i])) {
                        n.ref[j] = o->ref[i];
                        ridx_add(&n, j);
                }
        }
        table_free(o);
        *o = n;
        return 0;
}

/* Makes room for one more slot. A rebuild after every ~0.18 n inserts
 * moves n entries: O(1) amortised per insert. */
static int room(kb_seen_t *sn)
{
        if (sn->t.cap && (sn->t.used + 1) * 100 <= sn->t.cap * MAX_LOAD)
                return 0;
        return rebuild(sn, 1, 0, 0);
}

/* Takes @p d for the window: a new entry, or one removed before taken
 * again. The slot, or -1 on ENOMEM. */
static ptrdiff_t take(kb_seen_t *sn, const dig_t *d, uint32_t until)
{
        size_t i;
        int found;

        if (room(sn) == -1)
                return -1;
        i = find(&sn->t, d, &found);
        if (!found) {
                sn->t.key[i] = *d;
                sn->t.used++;
        } else if (sn->t.until[i] != DEAD) {
                return (ptrdiff_t)i;
        }
        sn->t.until[i] = until;
        if (sn->t.ref)
                memset(&sn->t.ref[i], 0, sizeof(sn->t.ref[i]));
        sn->t.live++;
        return (ptrdiff_t)i;
}

static void remove_at(kb_seen_t *sn, size_t i)
{
        sn->t.until[i] = DEAD;
        if (sn->t.ref)
                memset(&sn->t.ref[i], 0, sizeof(sn->t.ref[i]));
        sn->t.live--;
}

/* A record read says @p d is remembered until @p until (not pending: the
 * claim of another instance committed). -1 on ENOMEM. */
int kb_sn_put_loaded(kb_seen_t *sn, const dig_t *d, int64_t until)
{
        uint32_t u = until_of(until);
        ptrdiff_t i = lookup(sn, d);

        if (i < 0)
                return take(sn, d, u) < 0 ? -1 : 0;
        if (u > sn->t.until[i])
                sn->t.until[i] = u;
        pending_set(sn, d, 0);
        return 0;
}

/* The entry of @p d (live) committed ref @p r: it holds it now, and no
 * other entry does. */
void kb_sn_ref_put(kb_seen_t *sn, const dig_t *d, const dig_t *r)
{
        table_t *t = &sn->t;
        ptrdiff_t i = lookup(sn, d);
        size_t j;

        if (i < 0)
                return;
        if (!t->ref) {
                t->ref = col_new(t->cap, sizeof(*t->ref));
                t->ridx = col_new(t->cap, sizeof(*t->ridx));
                if (!t->ref || !t->ridx) {
                        col_free(t->ref, t->cap, sizeof(*t->ref));
                        col_free(t->ridx, t->cap, sizeof(*t->ridx));
                        t->ref = NULL;
                        t->ridx = NULL;
                        return; /* only costs a reconcile its extra check */
                }
        }
        for (j = home(r, t->cap); t->ridx[j]; j = j + 1 == t->cap ? 0 : j + 1) {
                size_t o = t->ridx[j] - 1;
                if (!dig_eq(&t->ref[o], r))
                        continue; /* stale */
                if (o != (size_t)i) {
                        memset(&t->ref[o], 0, sizeof(t->ref[o]));
                        t->ridx[j] = (uint32_t)(i + 1);
                }
                t->ref[i] = *r;
                return;
        }
        if ((t->nref + 1) * 100 > t->cap * MAX_LOAD) {
                /* stale index entries dropped; the entry moves */
                if (rebuild(sn, 1, 0, 0) == -1)
                        return;
                i = lookup(sn, d);
        }
        t->ref[i] = *r;
        ridx_add(t, (size_t)i);
}

kb_seen_t *kb_seen_new(const kb_conf_t *conf, const char *topic,
                       int64_t window_s, const char *who)
{
        kb_seen_t *sn = calloc(1, sizeof(*sn));

        if (!sn)
                return NULL;
        sn->conf = conf;
        sn->pending = kb_hmap_new();
        sn->topic = strdup(topic);
        sn->window = window_s;
        sn->load_timeout_ms = LOAD_TIMEOUT_MS;
        kb_strlcpy(sn->who, who, sizeof(sn->who));
        randombytes_buf(sn->sipkey, sizeof(sn->sipkey));
        if (!sn->pending || !sn->topic || rebuild(sn, 0, 0, 0) == -1) {
                kb_seen_destroy(sn);
                return NULL;
        }
        return sn;
}

void kb_seen_destroy(kb_seen_t *sn)
{
        if (!sn)
                return;
        kb_hmap_destroy(sn->pending);
        table_free(&sn->t);
        kb_sn_topic_free(sn);
        free(sn->topic);
        free(sn);
}

void kb_seen_stats(const kb_seen_t *sn, kb_seen_stats_t *st)
{
        *st = sn->st;
}

void kb_seen_set_load_timeout(kb_seen_t *sn, int timeout_ms)
{
        sn->load_timeout_ms = timeout_ms > 0 ? timeout_ms : LOAD_TIMEOUT_MS;
}

void kb_seen_set_clock(kb_seen_t *sn, int64_t (*clock)(void))
{
        sn->clock = clock;
}

void kb_seen_set_observer(kb_seen_t *sn, const kb_seen_observer_t *obs)
{
        if (obs)
                sn->obs = *obs;
        else
                memset(&sn->obs, 0, sizeof(sn->obs));
}

const char *kb_seen_topic(const kb_seen_t *sn)
{
        return sn->topic;
}

size_t kb_seen_count(const kb_seen_t *sn)
{
        return sn->t.live;
}

size_t kb_seen_table_bytes(const kb_seen_t *sn)
{
        const table_t *t = &sn->t;

        return t->cap * (sizeof(*t->key) + sizeof(*t->until)) +
               (t->ref ? t->cap * (sizeof(*t->ref) + sizeof(*t->ridx)) : 0);
}

int kb_seen_has(const kb_seen_t *sn, const char *share_id)
{
        ptrdiff_t i;
        dig_t d;

        kb_sn_digest(sn, share_id, strlen(share_id), &d);
        i = lookup(sn, &d);
        return i >= 0 &&
               ((int64_t)sn->t.until[i] >= kb_sn_now(sn) || is_pending(sn, &d));
}

/* Marks @p d pending (@p on) or not; -1 on ENOMEM. */
static int pending_set(kb_seen_t *sn, const dig_t *d, int on)
{
        if (!on) {
                if (kb_hmap_count(sn->pending))
                        kb_hmap_del(sn->pending, d->w, sizeof(d->w));
                return 0;
        }
        /* any non-NULL value: the map is a set */
        return kb_hmap_put(sn->pending, d->w, sizeof(d->w), sn);
}

int kb_seen_claim(kb_seen_t *sn, const char *share_id)
{
        uint32_t until = until_of(kb_sn_now(sn) + sn->window);
        ptrdiff_t i;
        int fresh;
        dig_t d;

        kb_sn_digest(sn, share_id, strlen(share_id), &d);
        i = lookup(sn, &d);
        fresh = i < 0;
        if (fresh && (i = take(sn, &d, until)) < 0)
                return -1;
        /* an expired entry is claimed again */
        sn->t.until[i] = until;
        if (pending_set(sn, &d, 1) == -1) {
                if (fresh)
                        remove_at(sn, (size_t)i);
                return -1;
        }
        return 0;
}

void kb_seen_commit(kb_seen_t *sn, const char *share_id, const char *ref)
{
        dig_t d, r;

        kb_sn_digest(sn, share_id, strlen(share_id), &d);
        pending_set(sn, &d, 0);
        if (ref && *ref) {
                kb_sn_digest(sn, ref, strlen(ref), &r);
                kb_sn_ref_put(sn, &d, &r);
        }
        if (sn->obs.commit)
                sn->obs.commit(sn->obs.opaque, share_id, ref);
}

int kb_seen_ref_taken_by_other(const kb_seen_t *sn, const char *ref,
                               const char *share_id)
{
        const table_t *t = &sn->t;
        dig_t r, d;
        size_t j;

        if (!ref || !t->ref)
                return 0;
        kb_sn_digest(sn, ref, strlen(ref), &r);
        for (j = home(&r, t->cap); t->ridx[j];
             j = j + 1 == t->cap ? 0 : j + 1) {
                size_t o = t->ridx[j] - 1;
                if (!dig_eq(&t->ref[o], &r))
                        continue;
                kb_sn_digest(sn, share_id, strlen(share_id), &d);
                return !dig_eq(&t->key[o], &d);
        }
        return 0;
}

void kb_seen_forget(kb_seen_t *sn, const char *share_id)
{
        ptrdiff_t i;
        dig_t d;

        kb_sn_digest(sn, share_id, strlen(share_id), &d);
        i = lookup(sn, &d);
        if (i >= 0 && is_pending(sn, &d)) {
                pending_set(sn, &d, 0);
                remove_at(sn, (size_t)i);
        }
        if (sn->obs.forget)
                sn->obs.forget(sn->obs.opaque, share_id);
}

void kb_seen_expire(kb_seen_t *sn)
{
        table_t *t = &sn->t;
        int64_t now = kb_sn_now(sn);
        size_t i;

        for (i = 0; i < t->cap; i++)
                if (t->until[i] != DEAD && (int64_t)t->until[i] < now &&
                    !dig_zero(&t->key[i]) && !is_pending(sn, &t->key[i]))
                        remove_at(sn, i);
        /* the window holds far fewer than it did: give the memory back */
        if (t->cap > MIN_CAP && t->live * 100 < t->cap * (NEW_LOAD / 3))
                rebuild(sn, 0, 1, now);
        if (sn->obs.expire)
                sn->obs.expire(sn->obs.opaque, now);
}
