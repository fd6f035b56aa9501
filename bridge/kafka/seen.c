/* seen.c -- remembered share_ids: a compacted Kafka topic written in the
 * same transactions as the outputs, read at start, caught up on assignment */
#include "seen.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>
#ifdef __GLIBC__
#include <malloc.h>
#include <stdint.h>
#include <sys/mman.h>
#endif

#include <sodium.h>

#include "hmap.h"
#include "json.h"
#include "kafka.h"
#include "log.h"
#include "util.h"

/* Default bound of one kb_seen_load(), all of it (kb_seen_set_load_timeout()).
 */
#define LOAD_TIMEOUT_MS 120000
/* Longest single metadata request of a load. */
#define MD_TIMEOUT_MS 30000
/* Longest wait for a new state reader to learn the partitions' leaders. */
#define PRIME_TIMEOUT_MS 5000

/*
 * The table. A share_id (and a ref) is remembered as a 96-bit digest:
 * SipHash-128 (crypto_shorthash_siphashx24) under a key drawn at
 * kb_seen_new(), cut to 96 bits. The key is secret and new at every start
 * (the table is rebuilt from the topic), so share_ids chosen by a client
 * collide no more often than random ones: with n = 10^6 share_ids
 * remembered, a new one is taken for a remembered one with probability
 * n / 2^96 ~ 1.3e-23, and any two of 10^8 share_ids (a century of 10^6 a
 * day) share a digest with probability below n^2 / 2^97 ~ 6.3e-14.
 *
 * Open addressing, linear probing, the slot of a digest its first word
 * scaled to the capacity (any capacity, no power of two, so the load
 * stays between NEW_LOAD and MAX_LOAD and memory follows the count).
 * Columns, not structs: key[] 12 bytes and until[] 4 bytes a slot; the
 * importer's refs add ref[] 12 bytes and ridx[] 4 bytes a slot (both
 * allocated at the first ref). So 16 (issuer) or 32 (importer) bytes a
 * slot, 19..23 or 38..45 bytes a share_id.
 *
 * A removed entry keeps its key (probe chains stay whole) with until =
 * DEAD; it is taken again by the same share_id, dropped by the next
 * rebuild. until is unix seconds, clamped to 0 .. UINT32_MAX - 1 (year
 * 2106). Pending entries (claimed, not committed: the records in flight,
 * a few thousand at most) are also in the small map `pending`.
 *
 * The refs: ref[i] is the digest of the ref entry i committed (0: none);
 * ridx is an open-addressed index over them (slot + 1, 0 empty), keyed
 * by the ref digest. An index entry whose slot no longer holds that ref
 * (the entry was removed, or committed another ref) is stale: lookups
 * skip it, the next rebuild drops it. A ref is held by one entry at a
 * time: the one that committed it last.
 */
#define MIN_CAP  64
#define MAX_LOAD 85 /* percent of the slots used (live and removed) */
#define NEW_LOAD 72 /* percent live after a rebuild */
#define DEAD     UINT32_MAX

typedef struct dig_s {
        uint32_t w[3];
} dig_t;

typedef struct table_s {
        dig_t *key;      /* all zero: empty */
        uint32_t *until; /* DEAD: removed */
        dig_t *ref;      /* NULL until the first ref */
        uint32_t *ridx;  /* with ref */
        size_t cap, used, live, nref;
} table_t;

struct kb_seen_s {
        const kb_conf_t *conf;
        table_t t;
        kb_hmap_t *pending; /* digests (12 bytes) of the pending entries */
        unsigned char sipkey[crypto_shorthash_siphashx24_KEYBYTES];
        int64_t (*clock)(void);
        char *topic;
        char who[32];
        int64_t window;
        /* The state reader: one consumer for the seen's lifetime, assigned
         * every partition of the topic (no group membership). Between loads
         * it is not polled: the fetcher reads ahead up to
         * queued.max.messages.kbytes, which the next load consumes.
         * (Pausing it instead makes librdkafka 2.0's rd_kafka_destroy()
         * hang.) marks[i].offset: everything before it is read
         * (from a record, or a partition-EOF event). */
        rd_kafka_t *rk;
        /* The end finder: a consumer that never consumes, read_uncommitted,
         * only asked for the partitions' high watermarks (see
         * kb_seen_load()). */
        rd_kafka_t *hw;
        rd_kafka_topic_partition_list_t *marks;
        int load_timeout_ms;
        int bulk;            /* rk is the bulk reader (see reader_new()) */
        char principal[192]; /* kb_kafka_principal() of the reader */
        char denied[448];    /* why the last load was refused, or "" */
        kb_seen_stats_t st;
        kb_seen_observer_t obs;
};

static int64_t now_of(const kb_seen_t *sn)
{
        return sn->clock ? sn->clock() : kb_time_now();
}

static void digest(const kb_seen_t *sn, const char *s, size_t len, dig_t *d)
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
static int put_loaded(kb_seen_t *sn, const dig_t *d, int64_t until)
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
static void ref_put(kb_seen_t *sn, const dig_t *d, const dig_t *r)
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
        if (sn->rk) {
                /* Nothing to close: the reader never joined the group and
                 * never commits. */
                rd_kafka_destroy_flags(sn->rk,
                                       RD_KAFKA_DESTROY_F_NO_CONSUMER_CLOSE);
        }
        if (sn->hw)
                rd_kafka_destroy_flags(sn->hw,
                                       RD_KAFKA_DESTROY_F_NO_CONSUMER_CLOSE);
        if (sn->marks)
                rd_kafka_topic_partition_list_destroy(sn->marks);
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

const char *kb_seen_denied(const kb_seen_t *sn)
{
        return sn->denied;
}

/* The broker refused the state topic: say what, for kb_seen_denied(). */
static void set_denied(kb_seen_t *sn, rd_kafka_resp_err_t err, const char *text)
{
        char action[300];

        kb_snprintf(action, sizeof(action), "read topic %s", sn->topic);
        kb_kafka_denied_str(err, sn->principal, action, text, sn->denied,
                            sizeof(sn->denied));
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

        digest(sn, share_id, strlen(share_id), &d);
        i = lookup(sn, &d);
        return i >= 0 &&
               ((int64_t)sn->t.until[i] >= now_of(sn) || is_pending(sn, &d));
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
        uint32_t until = until_of(now_of(sn) + sn->window);
        ptrdiff_t i;
        int fresh;
        dig_t d;

        digest(sn, share_id, strlen(share_id), &d);
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

        digest(sn, share_id, strlen(share_id), &d);
        pending_set(sn, &d, 0);
        if (ref && *ref) {
                digest(sn, ref, strlen(ref), &r);
                ref_put(sn, &d, &r);
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
        digest(sn, ref, strlen(ref), &r);
        for (j = home(&r, t->cap); t->ridx[j];
             j = j + 1 == t->cap ? 0 : j + 1) {
                size_t o = t->ridx[j] - 1;
                if (!dig_eq(&t->ref[o], &r))
                        continue;
                digest(sn, share_id, strlen(share_id), &d);
                return !dig_eq(&t->key[o], &d);
        }
        return 0;
}

void kb_seen_forget(kb_seen_t *sn, const char *share_id)
{
        ptrdiff_t i;
        dig_t d;

        digest(sn, share_id, strlen(share_id), &d);
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
        int64_t now = now_of(sn);
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

char *kb_seen_record(const kb_seen_t *sn, const char *share_id,
                     const char *outcome, const char *ref, size_t *len)
{
        json_object *o = json_object_new_object();
        const char *txt;
        char *out = NULL;
        size_t tl;

        if (o && !kb_json_add_str(o, "share_id", share_id) &&
            !kb_json_add_str(o, "outcome", outcome) &&
            !kb_json_add_i64(o, "at", now_of(sn)) &&
            !kb_json_add_i64(o, "until", now_of(sn) + sn->window) &&
            !kb_json_add_str(o, "ref", ref) &&
            (!sn->obs.decorate ||
             sn->obs.decorate(sn->obs.opaque, share_id, o) == 0)) {
                txt = kb_json_str(o, &tl);
                out = strndup(txt, tl);
                if (out && len)
                        *len = tl;
        }
        json_object_put(o);
        return out;
}

int kb_seen_produce(kb_seen_t *sn, kb_rec_t *rec, const char *share_id,
                    const char *outcome, const char *ref)
{
        size_t len;
        char *txt = kb_seen_record(sn, share_id, outcome, ref, &len);
        int r;

        if (!txt)
                return KB_ERR_NOMEM;
        r = kb_rec_produce(rec, sn->topic, RD_KAFKA_PARTITION_UA, share_id,
                           strlen(share_id), txt, len, NULL);
        free(txt);
        return r;
}

/* A consumer handle for the state topic with @p extra settings. */
static rd_kafka_t *client_new(kb_seen_t *sn, const char *what,
                              const char *const *extra)
{
        rd_kafka_conf_t *rkc;
        rd_kafka_t *rk;
        char errstr[512];

        rkc = kb_kafka_conf_new(sn->conf, RD_KAFKA_CONSUMER, extra, errstr,
                                sizeof(errstr));
        if (!rkc) {
                kb_log_error(sn->who, "%s: %s", what, errstr);
                return NULL;
        }
        kb_kafka_principal(rkc, sn->principal, sizeof(sn->principal));
        rk = rd_kafka_new(RD_KAFKA_CONSUMER, rkc, errstr, sizeof(errstr));
        if (!rk) {
                rd_kafka_conf_destroy(rkc);
                kb_log_error(sn->who, "%s: %s", what, errstr);
                return NULL;
        }
        return rk;
}

/*
 * Creates the state reader (and the end finder, once): the bulk reader
 * for the first load, the catch-up reader after it. They differ in how
 * much they fetch ahead. librdkafka 2.0 stops fetching a partition whose
 * queue holds queued.max.messages.kbytes (or queued.min.messages records)
 * and looks again only about a second later: with 2 MB that caps a read
 * at ~3 MB/s, 110 s for the 330 MB an importer's 10^6 share_ids take.
 * The bulk reader may queue 128 MB a partition, whatever the count, so a
 * first load runs as fast as records are taken -- at the price of a peak:
 * what is fetched and not yet taken, up to the topic's size plus ~250
 * bytes a record. The catch-up reader, which fetches ahead between loads
 * what other instances write (the next load consumes it), queues only 2
 * MB. Every partition the seen reads already is assigned to a new reader
 * where it stands.
 */
static int reader_new(kb_seen_t *sn, int bulk)
{
        /* group.id only because librdkafka 2.0 refuses assign() without
         * one: the reader never joins the group and never commits. */
        static const char *const extra[] = {
                "group.id", "kyc-bridge-state-reader", "enable.partition.eof",
                "true", "enable.auto.commit", "false",
                "enable.auto.offset.store", "false",
                /* only committed records count, whatever kafka.* says */
                "isolation.level", "read_committed",
                /* a mark before the log's start: from its start */
                "auto.offset.reset", "earliest", "queued.max.messages.kbytes",
                "2048", NULL
        };
        /* clang-format off */
        static const char *const bulk_extra[] = {
                "group.id", "kyc-bridge-state-reader",
                "enable.partition.eof", "true",
                "enable.auto.commit", "false",
                "enable.auto.offset.store", "false",
                "isolation.level", "read_committed",
                "auto.offset.reset", "earliest",
                "queued.max.messages.kbytes", "131072",
                /* 100,000 queued records (the default) stall a
                 * partition too */
                "queued.min.messages", "10000000",
                "fetch.max.bytes", "67108864",
                NULL
        };
        /* clang-format on */
        /* ListOffsets for the latest offset answers with the last stable
         * offset under read_committed (librdkafka sends the handle's
         * isolation.level), the high watermark only under
         * read_uncommitted */
        static const char *const hw_extra[] = { "isolation.level",
                                                "read_uncommitted", NULL };
        const rd_kafka_metadata_t *md;
        rd_kafka_error_t *error;
        rd_kafka_topic_t *rkt;

        if (!sn->hw && !(sn->hw = client_new(sn, "state end finder", hw_extra)))
                return -1;
        if (!sn->marks && !(sn->marks = rd_kafka_topic_partition_list_new(8)))
                return -1;
        sn->rk = client_new(sn, "state reader", bulk ? bulk_extra : extra);
        if (!sn->rk)
                return -1;
        sn->bulk = bulk;
        /* the partitions' leaders now: assigned without them, librdkafka
         * asks in the background and fetches a second or so later (a
         * failure here shows at the load's own metadata request) */
        rkt = rd_kafka_topic_new(sn->rk, sn->topic, NULL);
        if (rkt) {
                if (!rd_kafka_metadata(sn->rk, 0, rkt, &md, PRIME_TIMEOUT_MS))
                        rd_kafka_metadata_destroy(md);
                rd_kafka_topic_destroy(rkt);
        }
        if (sn->marks->cnt > 0) {
                error = rd_kafka_incremental_assign(sn->rk, sn->marks);
                if (error) {
                        kb_log_error(sn->who, "state reader assign: %s",
                                     rd_kafka_error_string(error));
                        rd_kafka_error_destroy(error);
                        rd_kafka_destroy_flags(
                            sn->rk, RD_KAFKA_DESTROY_F_NO_CONSUMER_CLOSE);
                        sn->rk = NULL;
                        return -1;
                }
        }
        /* Its main queue (error_cb: a broker down, an authentication
         * failure) is served by the consumer poll of each load: without
         * this nothing ever polls it and those errors never reach the
         * log. */
        rd_kafka_poll_set_consumer(sn->rk);
        sn->st.readers_created++;
        return 0;
}

/* Assigns partitions of the topic the reader does not read yet (all of
 * them the first time; later only ones added to the topic), from the
 * beginning. The topic is described by the end finder: the broker answers
 * a connection's requests in order, and the reader's connection holds a
 * fetch that waits up to fetch.wait.max.ms (500 ms) for new records. */
static int reader_assign_new(kb_seen_t *sn, int timeout_ms)
{
        const rd_kafka_metadata_t *md = NULL;
        rd_kafka_topic_t *rkt;
        rd_kafka_topic_partition_list_t *add = NULL;
        rd_kafka_resp_err_t err;
        rd_kafka_error_t *error;
        int i, r = -1;

        rkt = rd_kafka_topic_new(sn->hw, sn->topic, NULL);
        err = rkt ? rd_kafka_metadata(sn->hw, 0, rkt, &md, timeout_ms)
                  : RD_KAFKA_RESP_ERR__INVALID_ARG;
        if (!err && md && md->topic_cnt == 1 &&
            kb_kafka_err_denied(md->topics[0].err))
                set_denied(sn, md->topics[0].err,
                           rd_kafka_err2str(md->topics[0].err));
        if (err || !md || md->topic_cnt != 1 || md->topics[0].err) {
                kb_log_error(sn->who, "state topic %s: %s", sn->topic,
                             err ? rd_kafka_err2str(err)
                             : md && md->topic_cnt == 1
                                 ? rd_kafka_err2str(md->topics[0].err)
                                 : "no metadata");
                goto out;
        }
        add = rd_kafka_topic_partition_list_new(md->topics[0].partition_cnt);
        for (i = 0; i < md->topics[0].partition_cnt; i++) {
                int32_t id = md->topics[0].partitions[i].id;
                if (rd_kafka_topic_partition_list_find(sn->marks, sn->topic,
                                                       id))
                        continue;
                rd_kafka_topic_partition_list_add(add, sn->topic, id)->offset =
                    RD_KAFKA_OFFSET_BEGINNING;
        }
        if (add->cnt > 0) {
                error = rd_kafka_incremental_assign(sn->rk, add);
                if (error) {
                        kb_log_error(sn->who, "state reader assign: %s",
                                     rd_kafka_error_string(error));
                        rd_kafka_error_destroy(error);
                        goto out;
                }
                for (i = 0; i < add->cnt; i++)
                        rd_kafka_topic_partition_list_add(
                            sn->marks, sn->topic, add->elems[i].partition)
                            ->offset = 0;
        }
        r = 0;
out:
        if (add)
                rd_kafka_topic_partition_list_destroy(add);
        if (md)
                rd_kafka_metadata_destroy(md);
        if (rkt)
                rd_kafka_topic_destroy(rkt);
        return r;
}

static void mark_at_least(kb_seen_t *sn, int32_t partition, int64_t offset)
{
        rd_kafka_topic_partition_t *m =
            rd_kafka_topic_partition_list_find(sn->marks, sn->topic, partition);

        if (m && offset > m->offset)
                m->offset = offset;
}

/* Non-zero while a partition is not read up to its end in @p ends. */
static int behind(const kb_seen_t *sn,
                  const rd_kafka_topic_partition_list_t *ends)
{
        int i;

        for (i = 0; i < ends->cnt; i++)
                if (ends->elems[i].offset > sn->marks->elems[i].offset)
                        return 1;
        return 0;
}

/* The string @p v decoded into @p buf (@p bufsz) or, when longer, into
 * *@p heap (malloc()ed, the caller frees it); NULL when @p v is no string,
 * holds "\u0000" (kb_json_get_str() refuses those) or on ENOMEM. */
static const char *view_str(kb_jval_t v, char *buf, size_t bufsz, char **heap,
                            size_t *len)
{
        char *out = buf;

        if (kb_jval_type(v) != KB_JV_STRING)
                return NULL;
        if (v.len > bufsz && !(out = *heap = malloc(v.len)))
                return NULL;
        return kb_jval_str(v, out, v.len > bufsz ? v.len : bufsz, len) == 0
                   ? out
                   : NULL;
}

static void take_record(kb_seen_t *sn, const rd_kafka_message_t *rkm,
                        int64_t now, int64_t *loaded)
{
        static const char *const names[] = { "share_id", "until", "ref" };
        char sbuf[256], rbuf[256], *sheap = NULL, *rheap = NULL;
        const char *sid, *ref;
        kb_jval_t v[3];
        size_t sl, rl;
        kb_jview_t jv;
        int64_t until;
        dig_t d, r;

        /* the depth json-c was given: the view accepts what it did */
        if (kb_jview_init(&jv, rkm->payload, rkm->len, 4, NULL, 0) == -1) {
                kb_jview_clear(&jv);
                return;
        }
        if (sn->obs.record)
                sn->obs.record(sn->obs.opaque,
                               rkm->key ? (const char *)rkm->key : "",
                               rkm->key ? rkm->key_len : 0, &jv);
        if (rkm->key && rkm->key_len >= strlen(KB_SEEN_AUX_PREFIX) &&
            !memcmp(rkm->key, KB_SEEN_AUX_PREFIX, strlen(KB_SEEN_AUX_PREFIX)))
                goto out;
        kb_jview_pick(&jv, names, 3, v);
        sid = view_str(v[0], sbuf, sizeof(sbuf), &sheap, &sl);
        if (!sid || kb_jval_i64(v[1], &until) || until < now)
                goto out;
        digest(sn, sid, sl, &d);
        if (put_loaded(sn, &d, until) == -1)
                goto out;
        (*loaded)++;
        ref = view_str(v[2], rbuf, sizeof(rbuf), &rheap, &rl);
        if (ref) {
                digest(sn, ref, rl, &r);
                ref_put(sn, &d, &r);
        }
out:
        free(sheap);
        free(rheap);
        kb_jview_clear(&jv);
}

/* One event of the reader: a record, a partition's end, an error. -1
 * when the broker refuses the topic (logged). */
static int take_message(kb_seen_t *sn, const rd_kafka_message_t *rkm,
                        int64_t now, int64_t *loaded)
{
        if (rkm->err == RD_KAFKA_RESP_ERR__PARTITION_EOF) {
                /* the fetcher is at the end: also past any transaction
                 * markers, which are no records */
                mark_at_least(sn, rkm->partition, rkm->offset);
        } else if (rkm->err == RD_KAFKA_RESP_ERR_TOPIC_AUTHORIZATION_FAILED) {
                /* no wait for the load's timeout: it stays so. (Not
                 * GROUP_: the reader has a group.id only for assign(),
                 * never joins, and needs no ACL for it -- librdkafka looks
                 * its coordinator up all the same, and tells when that is
                 * refused.) */
                set_denied(sn, rkm->err, rd_kafka_message_errstr(rkm));
                kb_log_error(sn->who, "state topic %s: %s", sn->topic,
                             sn->denied);
                return -1;
        } else if (rkm->err) {
                kb_log_warn(sn->who, "state reader: %s",
                            rd_kafka_message_errstr(rkm));
        } else {
                sn->st.records_read++;
                mark_at_least(sn, rkm->partition, rkm->offset + 1);
                take_record(sn, rkm, now, loaded);
        }
        return 0;
}

/* Errors a partition leader election or a slow broker cause, which go
 * away by themselves. */
static int retriable(rd_kafka_resp_err_t err)
{
        switch (err) {
        case RD_KAFKA_RESP_ERR_NOT_LEADER_FOR_PARTITION:
        case RD_KAFKA_RESP_ERR_LEADER_NOT_AVAILABLE:
        case RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART:
        case RD_KAFKA_RESP_ERR_REQUEST_TIMED_OUT:
        case RD_KAFKA_RESP_ERR__TIMED_OUT:
        case RD_KAFKA_RESP_ERR__TRANSPORT:
        case RD_KAFKA_RESP_ERR__UNKNOWN_PARTITION:
        case RD_KAFKA_RESP_ERR_NOT_ENOUGH_REPLICAS:
        case RD_KAFKA_RESP_ERR_OFFSET_NOT_AVAILABLE:
                return 1;
        default:
                return 0;
        }
}

static int64_t remains_ms(int64_t deadline)
{
        int64_t r = deadline - kb_mono_ms();

        return r > 0 ? r : 0;
}

/* The high watermark of every partition in @p ends (copied from marks),
 * asked of the end finder, retried on errors that go away by themselves
 * until @p deadline. */
static rd_kafka_resp_err_t
high_watermarks(kb_seen_t *sn, rd_kafka_topic_partition_list_t *ends,
                int64_t deadline)
{
        rd_kafka_resp_err_t err = RD_KAFKA_RESP_ERR_NO_ERROR;
        int64_t lo, hi;
        int i;

        for (i = 0; i < ends->cnt; i++) {
                for (;;) {
                        int64_t left = remains_ms(deadline);
                        err = rd_kafka_query_watermark_offsets(
                            sn->hw, sn->topic, ends->elems[i].partition, &lo,
                            &hi, left > INT32_MAX ? INT32_MAX : (int)left);
                        /* a topic created a moment ago has no leader yet */
                        if (!err || !retriable(err) || kb_mono_ms() >= deadline)
                                break;
                        kb_log_debug(sn->who,
                                     "state topic %s [%d]: high watermark: "
                                     "%s; again",
                                     sn->topic, (int)ends->elems[i].partition,
                                     rd_kafka_err2str(err));
                        nanosleep(&(struct timespec){ 0, 200 * 1000000L },
                                  NULL);
                }
                if (err)
                        break;
                ends->elems[i].offset = hi;
        }
        /* the end finder's own errors (error_cb) */
        rd_kafka_poll(sn->hw, 0);
        return err;
}

int kb_seen_load(kb_seen_t *sn)
{
        rd_kafka_topic_partition_list_t *ends = NULL;
        rd_kafka_resp_err_t err;
        int64_t t0 = kb_mono_ms(), now = now_of(sn), loaded = 0;
        int64_t deadline = t0 + sn->load_timeout_ms;
        uint64_t read0 = sn->st.records_read;
        int r = -1;

        sn->st.loads++;
        sn->denied[0] = '\0';
        if (!sn->rk && reader_new(sn, sn->st.loads == 1) == -1)
                return -1;
        if (reader_assign_new(sn, (int)(remains_ms(deadline) < MD_TIMEOUT_MS
                                            ? remains_ms(deadline)
                                            : MD_TIMEOUT_MS)) == -1)
                return -1;
        /*
         * Where the topic ends now: its high watermark, not its last stable
         * offset (which a read_committed end query answers with). The LSO
         * stops at the first record of ANY writer's open transaction, and
         * records a writer committed after it lie beyond: the instance
         * that handed us a partition committed its last share_ids just
         * before, maybe behind another instance's transaction still open.
         * Reading up to the high watermark, read_committed, waits for every
         * transaction open now to end (the reader skips aborted records and
         * transaction markers, and a partition-EOF event says where it
         * stands), so every record committed before this call is read.
         */
        kb_log_debug(sn->who, "state: partitions assigned in %lld ms",
                     (long long)(kb_mono_ms() - t0));
        ends = rd_kafka_topic_partition_list_copy(sn->marks);
        err = high_watermarks(sn, ends, deadline);
        if (kb_kafka_err_denied(err))
                set_denied(sn, err, rd_kafka_err2str(err));
        if (err) {
                kb_log_error(sn->who, "state topic %s: end offsets: %s",
                             sn->topic, rd_kafka_err2str(err));
                goto out;
        }
        kb_log_debug(sn->who, "state: %d partition(s), ends found in %lld ms",
                     ends->cnt, (long long)(kb_mono_ms() - t0));
        while (behind(sn, ends) && kb_mono_ms() < deadline) {
                int64_t left = remains_ms(deadline);
                rd_kafka_message_t *rkm = rd_kafka_consumer_poll(
                    sn->rk, left < 200 ? (int)left : 200);
                int k;
                /* what is queued already, without a clock read each */
                for (k = 0; rkm; k++) {
                        int taken = take_message(sn, rkm, now, &loaded);
                        rd_kafka_message_destroy(rkm);
                        if (taken == -1)
                                goto out;
                        rkm = k < 1024 && behind(sn, ends)
                                  ? rd_kafka_consumer_poll(sn->rk, 0)
                                  : NULL;
                }
        }
        if (behind(sn, ends)) {
                kb_log_error(sn->who,
                             "state topic %s: not read to the end within %d "
                             "ms (a transaction still open?)",
                             sn->topic, sn->load_timeout_ms);
                goto out;
        }
        r = 0;
out:
        if (r == 0 && sn->bulk) {
                /* the bulk is read: from now on, the catch-up reader */
                rd_kafka_destroy_flags(sn->rk,
                                       RD_KAFKA_DESTROY_F_NO_CONSUMER_CLOSE);
                sn->rk = NULL;
#ifdef __GLIBC__
                /* the bulk reader's buffers were freed by its own threads,
                 * into malloc arenas glibc keeps: give them back */
                malloc_trim(0);
#endif
                if (reader_new(sn, 0) == -1)
                        kb_log_warn(sn->who, "state reader: made again at "
                                             "the next load");
        }
        if (r == 0 && sn->obs.loaded)
                sn->obs.loaded(sn->obs.opaque);
        if (r == 0)
                kb_log_info(sn->who,
                            "state: read %llu new record(s) in %lld ms, "
                            "%lld share_id(s) within the window added, %zu "
                            "known (table %zu bytes)",
                            (unsigned long long)(sn->st.records_read - read0),
                            (long long)(kb_mono_ms() - t0), (long long)loaded,
                            kb_seen_count(sn), kb_seen_table_bytes(sn));
        if (ends)
                rd_kafka_topic_partition_list_destroy(ends);
        return r;
}
