/* status.c -- status updates of imported sessions: the index and the
 * webhook action */
#include "status.h"

#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "hmap.h"
#include "importer.h"
#include "json.h"
#include "log.h"
#include "util.h"

#define EVENT_DOMAIN "kyc-bridge/session-status/v1"
/* a full sweep of the index at most this often */
#define SWEEP_EVERY_S 600

/* A status at its place in the vendor's log. */
typedef struct place_s {
        int64_t at, seq;
        unsigned char published; /* it went out as an update */
        char status[32], prev[32];
} place_t;

/* One imported session. The strings that never change live in data[]. */
typedef struct ent_s {
        int64_t until;
        /*
         * cur: the newest status decided on, which orders deliveries;
         * settled: the newest one that needs nothing more from Kafka (read
         * back from the state topic, imported, its records acked, or a
         * move that makes no record). They differ only while a change is
         * in flight (pending): its delivery's records acked, cur becomes
         * settled; not acked, cur goes back to settled, and the vendor's
         * retry makes the change again.
         */
        place_t cur, settled;
        uint64_t pending; /* the change in flight (its token), 0: none */
        unsigned staged;  /* share_ids staged for it, not committed or
                             forgotten yet */
        unsigned char full, committed;
        const char *share_id, *issuer, *from, *kind, *vd;
        char data[];
} ent_t;

struct kb_status_s {
        pthread_mutex_t lock;
        kb_hmap_t *sessions; /* session_id -> ent_t */
        kb_hmap_t *staged;   /* share_id -> session_id (malloc()ed) */
        char *topic, *state_topic, *name;
        char partner[129];
        int64_t window;
        int64_t (*clock)(void);
        int64_t next_sweep;
        uint64_t next_token; /* of the changes in flight */
        int ready;
        kb_status_stats_t st;
};

/* What the action's records settle (kb_wh_settled_fn's argument). */
typedef struct settle_s {
        kb_status_t *st;
        uint64_t token;
        place_t place;
        char session_id[129];
} settle_t;

/* What a record or an import says about a session (borrowed). */
typedef struct info_s {
        const char *session_id, *share_id, *issuer, *from, *kind, *vd;
        int full;
        const char *status, *prev;
        int64_t status_at, seq, until;
        int published;
} info_t;

static int64_t now_of(const kb_status_t *st)
{
        return st->clock ? st->clock() : kb_time_now();
}

/* ---- order ---- */

static int rank(const char *status)
{
        switch (kb_wh_status_canon(status)) {
        case KB_WH_ST_DECLINED:
                return 4;
        case KB_WH_ST_APPROVED:
                return 3;
        case KB_WH_ST_IN_REVIEW:
                return 2;
        default:
                return 1;
        }
}

int kb_status_cmp(int64_t seq_a, int64_t at_a, const char *a, int64_t seq_b,
                  int64_t at_b, const char *b)
{
        int c;

        if (seq_a != seq_b)
                return seq_a < seq_b ? -1 : 1;
        if (at_a != at_b)
                return at_a < at_b ? -1 : 1;
        c = strcmp(a, b);
        if (c == 0)
                return 0;
        if (rank(a) != rank(b))
                return rank(a) < rank(b) ? -1 : 1;
        return c < 0 ? -1 : 1;
}

/* The review log of @p session (a decision, as a webhook delivers it). */
static void log_of(json_object *session, kb_status_log_t *log)
{
        json_object *rv = kb_json_get(session, "reviews"), *last;
        size_t n;

        memset(log, 0, sizeof(*log));
        if (!rv || !json_object_is_type(rv, json_type_array))
                return;
        n = json_object_array_length(rv);
        log->reviews = (int64_t)n;
        if (n == 0)
                return;
        last = json_object_array_get_idx(rv, n - 1);
        log->last_status = kb_json_get_str(last, "new_status");
        log->last_at = kb_json_get_str(last, "created_at");
}

/*
 * Where @p status stands in the vendor's log of a session: *seq = the
 * number of reviews; *at = the newest review's created_at when that review
 * set @p status, else @p fallback.
 */
static void vendor_place(const kb_status_log_t *log, const char *status,
                         int64_t fallback, int64_t *at, int64_t *seq)
{
        *at = fallback;
        *seq = log->reviews;
        if (log->reviews > 0 && log->last_status && status &&
            !strcmp(log->last_status, status) && log->last_at)
                (void)kb_time_parse_iso8601(log->last_at, at);
}

void kb_status_event_id(const char *session_id, const char *status,
                        int64_t status_at, int64_t status_seq, char out[36])
{
        crypto_generichash_state hs;
        unsigned char h[16];
        char num[2][24];
        const char *parts[4];
        size_t i;

        snprintf(num[0], sizeof(num[0]), "%" PRId64, status_at);
        snprintf(num[1], sizeof(num[1]), "%" PRId64, status_seq);
        parts[0] = session_id;
        parts[1] = status;
        parts[2] = num[0];
        parts[3] = num[1];
        crypto_generichash_init(&hs, NULL, 0, sizeof(h));
        crypto_generichash_update(&hs, (const unsigned char *)EVENT_DOMAIN,
                                  sizeof(EVENT_DOMAIN)); /* with its NUL */
        for (i = 0; i < 4; i++)
                crypto_generichash_update(&hs, (const unsigned char *)parts[i],
                                          strlen(parts[i]) + (i < 3));
        crypto_generichash_final(&hs, h, sizeof(h));
        memcpy(out, "ev-", 3);
        kb_hex(h, sizeof(h), out + 3);
}

/* ---- the index (callers hold the lock) ---- */

static int fits(const char *s, size_t max)
{
        return s && *s && strlen(s) < max;
}

static ent_t *ent_new(const info_t *in)
{
        const char *src[5] = { in->share_id, in->issuer,
                               in->from ? in->from : "", in->kind, in->vd };
        size_t len[5], total = 0, i;
        ent_t *e;
        char *p;

        for (i = 0; i < 5; i++)
                total += (len[i] = strlen(src[i])) + 1;
        e = calloc(1, sizeof(*e) + total);
        if (!e)
                return NULL;
        p = e->data;
        for (i = 0; i < 5; i++) {
                memcpy(p, src[i], len[i] + 1);
                if (i == 0)
                        e->share_id = p;
                else if (i == 1)
                        e->issuer = p;
                else if (i == 2)
                        e->from = p;
                else if (i == 3)
                        e->kind = p;
                else
                        e->vd = p;
                p += len[i] + 1;
        }
        e->full = in->full ? 1 : 0;
        return e;
}

/* Complete enough to stand for a session. */
static int info_valid(const info_t *in)
{
        return fits(in->session_id, 129) && fits(in->share_id, 129) &&
               fits(in->issuer, 129) && fits(in->kind, 16) &&
               fits(in->vd, 129) && fits(in->status, 32) &&
               (!in->from || strlen(in->from) < 129) &&
               (!in->prev || strlen(in->prev) < 32);
}

static void place_of(const info_t *in, place_t *p)
{
        memset(p, 0, sizeof(*p));
        kb_strlcpy(p->status, in->status, sizeof(p->status));
        kb_strlcpy(p->prev, in->prev ? in->prev : "", sizeof(p->prev));
        p->at = in->status_at;
        p->seq = in->seq;
        p->published = in->published ? 1 : 0;
}

static int place_cmp(const place_t *a, const place_t *b)
{
        return kb_status_cmp(a->seq, a->at, a->status, b->seq, b->at,
                             b->status);
}

/* *to = *p when @p p is newer (or the same status at the same place,
 * known to have gone out as an update). */
static void place_merge(place_t *to, const place_t *p)
{
        int c = place_cmp(p, to);

        if (c > 0 || (c == 0 && p->published && !to->published))
                *to = *p;
}

/* Adds what @p in says to the index. 0, or -1 on ENOMEM. */
static int merge(kb_status_t *st, const info_t *in, int committed)
{
        ent_t *e = kb_hmap_gets(st->sessions, in->session_id);
        place_t p;

        place_of(in, &p);
        if (!e) {
                e = ent_new(in);
                if (!e)
                        return -1;
                e->cur = e->settled = p;
                e->committed = committed ? 1 : 0;
                e->until = in->until;
                if (kb_hmap_puts(st->sessions, in->session_id, e) == -1) {
                        free(e);
                        return -1;
                }
                return 0;
        }
        if (committed)
                e->committed = 1;
        if (in->until > e->until)
                e->until = in->until;
        /* what a record or an import says needs nothing more */
        place_merge(&e->settled, &p);
        place_merge(&e->cur, &p);
        return 0;
}

static void ent_del(kb_status_t *st, const char *session_id)
{
        free(kb_hmap_dels(st->sessions, session_id));
}

/* A share_id staged for @p session_id is committed (@p committed) or
 * dropped: an entry no import stands for any more is deleted. */
static void unstage(kb_status_t *st, const char *session_id, int committed)
{
        ent_t *e = session_id ? kb_hmap_gets(st->sessions, session_id) : NULL;

        if (!e)
                return;
        if (e->staged)
                e->staged--;
        if (committed) {
                e->committed = 1;
                if (e->until < now_of(st) + st->window)
                        e->until = now_of(st) + st->window;
        } else if (!e->committed && !e->staged) {
                ent_del(st, session_id);
        }
}

/* ---- feeding (engine thread) ---- */

int kb_status_stage(kb_status_t *st, const kb_status_import_t *imp)
{
        const char *status = imp->status;
        char *sid, *old;
        info_t in;
        int r = KB_OK;

        memset(&in, 0, sizeof(in));
        in.session_id = imp->session_id;
        in.share_id = imp->share_id;
        in.issuer = imp->issuer_application_id;
        in.from = imp->shared_from_session;
        in.kind = imp->session_kind;
        in.vd = imp->vendor_data;
        in.full = imp->full_record;
        in.status = status;
        vendor_place(&imp->log, status, 0, &in.status_at, &in.seq);
        in.until = now_of(st) + st->window;
        if (!info_valid(&in)) {
                kb_log_warn(st->name,
                            "share %s: the imported session cannot be "
                            "tracked for status updates (a member is "
                            "missing or too long)",
                            imp->share_id ? imp->share_id : "?");
                return KB_ERR_INVALID_ARG;
        }
        sid = strdup(imp->session_id);
        if (!sid)
                return KB_ERR_NOMEM;
        pthread_mutex_lock(&st->lock);
        /* the share staged again (its import retried): the session it
         * was staged for loses it once this one holds */
        old = kb_hmap_dels(st->staged, imp->share_id);
        if (merge(st, &in, 0) == -1 ||
            kb_hmap_puts(st->staged, imp->share_id, sid) == -1) {
                free(sid);
                r = KB_ERR_NOMEM;
        } else {
                ent_t *e = kb_hmap_gets(st->sessions, imp->session_id);
                e->staged++;
        }
        unstage(st, old, 0);
        if (r != KB_OK) {
                /* made for this import only: gone with it */
                ent_t *e = kb_hmap_gets(st->sessions, imp->session_id);
                if (e && !e->committed && !e->staged)
                        ent_del(st, imp->session_id);
        }
        pthread_mutex_unlock(&st->lock);
        free(old);
        return r;
}

static int obs_decorate(void *opaque, const char *share_id, json_object *rec)
{
        kb_status_t *st = opaque;
        const char *sid;
        ent_t *e;
        int r = 0;

        pthread_mutex_lock(&st->lock);
        sid = kb_hmap_gets(st->staged, share_id);
        e = sid ? kb_hmap_gets(st->sessions, sid) : NULL;
        /* the settled status: a change in flight may not be acked */
        if (e &&
            (kb_json_add_str(rec, "issuer_application_id", e->issuer) ||
             kb_json_add_str(rec, "shared_from_session", e->from) ||
             kb_json_add_str(rec, "session_kind", e->kind) ||
             kb_json_add_str(rec, "vendor_data", e->vd) ||
             kb_json_add_str(rec, "record", e->full ? "full" : "summary") ||
             kb_json_add_str(rec, "status", e->settled.status) ||
             kb_json_add_i64(rec, "status_at", e->settled.at) ||
             kb_json_add_i64(rec, "status_seq", e->settled.seq)))
                r = -1;
        pthread_mutex_unlock(&st->lock);
        return r;
}

static void obs_commit(void *opaque, const char *share_id, const char *ref)
{
        kb_status_t *st = opaque;
        char *sid;

        (void)ref;
        pthread_mutex_lock(&st->lock);
        sid = kb_hmap_dels(st->staged, share_id);
        unstage(st, sid, 1);
        pthread_mutex_unlock(&st->lock);
        free(sid);
}

/* The import's transaction is dropped: the session is forgotten unless
 * committed, or staged for another share_id too. */
static void obs_forget(void *opaque, const char *share_id)
{
        kb_status_t *st = opaque;
        char *sid;

        pthread_mutex_lock(&st->lock);
        sid = kb_hmap_dels(st->staged, share_id);
        unstage(st, sid, 0);
        pthread_mutex_unlock(&st->lock);
        free(sid);
}

/* Decoded strings of one record: in buf while they fit, else each in a
 * malloc()ed copy of its own. */
typedef struct recstr_s {
        char buf[1024];
        size_t used;
        char *heap[12];
        size_t nheap;
} recstr_t;

/* @p v as kb_json_get_str() gives a member from a tree: NULL when
 * absent, no string or holding "\u0000" (and on ENOMEM). */
static const char *rec_str(kb_jval_t v, recstr_t *rs)
{
        int inbuf = v.len <= sizeof(rs->buf) - rs->used;
        char *out;
        size_t len;

        if (kb_jval_type(v) != KB_JV_STRING)
                return NULL;
        /* decoded, a string is never longer than its text */
        if (inbuf) {
                out = rs->buf + rs->used;
        } else {
                if (rs->nheap == sizeof(rs->heap) / sizeof(rs->heap[0]) ||
                    !(out = malloc(v.len)))
                        return NULL;
                rs->heap[rs->nheap++] = out;
        }
        if (kb_jval_str(v, out, v.len, &len) == -1)
                return NULL;
        if (inbuf)
                rs->used += len + 1;
        return out;
}

/* A state record: the importer's "imported" record of a share, or the
 * index's own "status:<session_id>" record. */
static void obs_record(void *opaque, const char *key, size_t key_len,
                       const kb_jview_t *rec)
{
        /* the members read, in one pass */
        enum {
                M_OUTCOME,
                M_RECORD,
                M_AT,
                M_REF,
                M_SHARE_ID,
                M_ISSUER,
                M_FROM,
                M_KIND,
                M_VD,
                M_STATUS,
                M_OLD,
                M_STATUS_AT,
                M_SEQ,
                M_N
        };
        static const char *const names[M_N] = { "outcome",
                                                "record",
                                                "at",
                                                "ref",
                                                "share_id",
                                                "issuer_application_id",
                                                "shared_from_session",
                                                "session_kind",
                                                "vendor_data",
                                                "status",
                                                "old_status",
                                                "status_at",
                                                "status_seq" };
        kb_status_t *st = opaque;
        kb_jval_t v[M_N];
        recstr_t rs;
        const char *outcome, *record;
        int aux = key_len >= strlen(KB_SEEN_AUX_PREFIX) &&
                  !memcmp(key, KB_SEEN_AUX_PREFIX, strlen(KB_SEEN_AUX_PREFIX));
        int64_t at;
        info_t in;
        size_t i;

        rs.used = 0;
        rs.nheap = 0;
        kb_jview_pick(rec, names, M_N, v);
        outcome = rec_str(v[M_OUTCOME], &rs);
        record = rec_str(v[M_RECORD], &rs);
        /* anyone who may write the topic wrote it: at + window must not
         * overflow */
        if (!outcome || strcmp(outcome, aux ? "status" : "imported") ||
            kb_jval_i64(v[M_AT], &at) || at < 0 || at > INT64_MAX - st->window)
                goto out;
        memset(&in, 0, sizeof(in));
        in.session_id = rec_str(v[M_REF], &rs);
        in.share_id = rec_str(v[M_SHARE_ID], &rs);
        in.issuer = rec_str(v[M_ISSUER], &rs);
        in.from = rec_str(v[M_FROM], &rs);
        in.kind = rec_str(v[M_KIND], &rs);
        in.vd = rec_str(v[M_VD], &rs);
        in.full = record && !strcmp(record, "full");
        in.status = rec_str(v[M_STATUS], &rs);
        in.prev = rec_str(v[M_OLD], &rs);
        in.published = aux && in.prev != NULL;
        if (kb_jval_i64(v[M_STATUS_AT], &in.status_at))
                in.status_at = 0;
        if (kb_jval_i64(v[M_SEQ], &in.seq))
                in.seq = 0;
        in.until = at + st->window;
        /* records written before status updates existed lack the members:
         * those sessions are not tracked */
        if (!record || !info_valid(&in) || in.until < now_of(st))
                goto out;
        pthread_mutex_lock(&st->lock);
        if (merge(st, &in, 1) == -1)
                kb_log_warn(st->name,
                            "out of memory: session %s not tracked for "
                            "status updates",
                            in.session_id);
        pthread_mutex_unlock(&st->lock);
out:
        for (i = 0; i < rs.nheap; i++)
                free(rs.heap[i]);
}

void kb_status_set_ready(kb_status_t *st)
{
        pthread_mutex_lock(&st->lock);
        st->ready = 1;
        pthread_mutex_unlock(&st->lock);
}

static void obs_loaded(void *opaque)
{
        kb_status_set_ready(opaque);
}

size_t kb_status_expire(kb_status_t *st, int64_t now)
{
        kb_hmap_iter_t it = KB_HMAP_ITER_INIT;
        const void *k;
        size_t kl, n = 0, i;
        void *v;
        char **gone;

        pthread_mutex_lock(&st->lock);
        gone = calloc(kb_hmap_count(st->sessions) + 1, sizeof(char *));
        if (gone) {
                while (kb_hmap_next(st->sessions, &it, &k, &kl, &v)) {
                        ent_t *e = v;
                        /* staged again: the import still needs it */
                        if (e->committed && !e->staged && e->until < now)
                                gone[n++] = strndup(k, kl);
                }
                for (i = 0; i < n; i++) {
                        if (gone[i])
                                ent_del(st, gone[i]);
                        free(gone[i]);
                }
                free(gone);
        }
        pthread_mutex_unlock(&st->lock);
        return n;
}

static void obs_expire(void *opaque, int64_t now)
{
        kb_status_t *st = opaque;
        size_t n;

        if (now < st->next_sweep)
                return;
        st->next_sweep = now + SWEEP_EVERY_S;
        n = kb_status_expire(st, now);
        if (n)
                kb_log_info(st->name,
                            "status index: %zu session(s) past "
                            "importer.status_window_s forgotten",
                            n);
}

void kb_status_observer(kb_status_t *st, kb_seen_observer_t *obs)
{
        memset(obs, 0, sizeof(*obs));
        obs->record = obs_record;
        obs->loaded = obs_loaded;
        obs->decorate = obs_decorate;
        obs->commit = obs_commit;
        obs->forget = obs_forget;
        obs->expire = obs_expire;
        obs->opaque = st;
}

/* ---- reading ---- */

static void ent_copy(const ent_t *e, kb_status_entry_t *out)
{
        memset(out, 0, sizeof(*out));
        kb_strlcpy(out->share_id, e->share_id, sizeof(out->share_id));
        kb_strlcpy(out->issuer_application_id, e->issuer,
                   sizeof(out->issuer_application_id));
        kb_strlcpy(out->shared_from_session, e->from,
                   sizeof(out->shared_from_session));
        kb_strlcpy(out->session_kind, e->kind, sizeof(out->session_kind));
        kb_strlcpy(out->vendor_data, e->vd, sizeof(out->vendor_data));
        out->full_record = e->full;
        kb_strlcpy(out->status, e->cur.status, sizeof(out->status));
        kb_strlcpy(out->prev_status, e->cur.prev, sizeof(out->prev_status));
        out->status_at = e->cur.at;
        out->status_seq = e->cur.seq;
        out->published = e->cur.published;
        out->in_flight = e->pending != 0;
        kb_strlcpy(out->settled_status, e->settled.status,
                   sizeof(out->settled_status));
        out->settled_at = e->settled.at;
        out->settled_seq = e->settled.seq;
        out->committed = e->committed;
        out->until = e->until;
}

int kb_status_lookup(kb_status_t *st, const char *session_id,
                     kb_status_entry_t *out)
{
        ent_t *e;
        int r = -1;

        pthread_mutex_lock(&st->lock);
        e = kb_hmap_gets(st->sessions, session_id);
        if (e && (!e->committed || e->until >= now_of(st))) {
                ent_copy(e, out);
                r = 0;
        }
        pthread_mutex_unlock(&st->lock);
        return r;
}

void kb_status_stats(kb_status_t *st, kb_status_stats_t *out)
{
        pthread_mutex_lock(&st->lock);
        *out = st->st;
        out->sessions = kb_hmap_count(st->sessions);
        pthread_mutex_unlock(&st->lock);
}

/* ---- the action ---- */

/* The index's state record for @p e (its status just set). */
static int add_state_record(kb_status_t *st, kb_wh_records_t *out,
                            const char *session_id, const kb_status_entry_t *e,
                            int64_t now)
{
        json_object *o = json_object_new_object();
        char key[8 + 129];
        const char *txt;
        size_t len;
        int r = KB_ERR_NOMEM;

        snprintf(key, sizeof(key), KB_SEEN_AUX_PREFIX "%s", session_id);
        if (!o || kb_json_add_str(o, "share_id", e->share_id) ||
            kb_json_add_str(o, "outcome", "status") ||
            kb_json_add_i64(o, "at", now) ||
            kb_json_add_i64(o, "until", now + st->window) ||
            kb_json_add_str(o, "ref", session_id) ||
            kb_json_add_str(o, "issuer_application_id",
                            e->issuer_application_id) ||
            kb_json_add_str(o, "shared_from_session", e->shared_from_session) ||
            kb_json_add_str(o, "session_kind", e->session_kind) ||
            kb_json_add_str(o, "vendor_data", e->vendor_data) ||
            kb_json_add_str(o, "record", e->full_record ? "full" : "summary") ||
            kb_json_add_str(o, "status", e->status) ||
            kb_json_add_i64(o, "status_at", e->status_at) ||
            kb_json_add_i64(o, "status_seq", e->status_seq) ||
            (e->published && kb_json_add_str(o, "old_status", e->prev_status)))
                goto out;
        txt = kb_json_str(o, &len);
        r = kb_wh_records_add(out, st->state_topic, key, strlen(key), txt, len,
                              NULL);
out:
        json_object_put(o);
        return r;
}

/* The session-status record. */
static int add_status_record(kb_status_t *st, kb_wh_records_t *out,
                             const kb_wh_delivery_t *dlv,
                             const kb_status_entry_t *e, int64_t now)
{
        json_object *o = json_object_new_object(), *dec = NULL;
        const char *hdrs[9];
        char ev[36];
        const char *txt;
        size_t len;
        int r = KB_ERR_NOMEM;

        kb_status_event_id(dlv->session_id, e->status, e->status_at,
                           e->status_seq, ev);
        if (dlv->decision) {
                dec = e->full_record ? json_object_get(dlv->decision)
                                     : kb_session_summary(dlv->decision);
                if (!dec)
                        goto out;
        }
        if (!o || kb_json_add_str(o, "format", "kyc-bridge-session-status/1") ||
            kb_json_add_str(o, "event_id", ev) ||
            kb_json_add_str(o, "share_id", e->share_id) ||
            kb_json_add_str(o, "session_id", dlv->session_id) ||
            kb_json_add_str(o, "shared_from_session", e->shared_from_session) ||
            kb_json_add_str(o, "issuer_application_id",
                            e->issuer_application_id) ||
            kb_json_add_str(o, "partner_application_id", st->partner) ||
            kb_json_add_str(o, "session_kind", e->session_kind) ||
            kb_json_add_str(o, "vendor_data", e->vendor_data) ||
            json_object_object_add(o, "old_status",
                                   e->prev_status[0]
                                       ? json_object_new_string(e->prev_status)
                                       : NULL) ||
            kb_json_add_str(o, "new_status", e->status) ||
            kb_json_add_i64(o, "status_at", e->status_at) ||
            kb_json_add_i64(o, "status_seq", e->status_seq) ||
            kb_json_add_i64(o, "received_at", now) ||
            kb_json_add_str(o, "record", e->full_record ? "full" : "summary"))
                goto out;
        if (json_object_object_add(o, "decision", dec))
                goto out;
        dec = NULL; /* owned by o */
        txt = kb_json_str(o, &len);
        hdrs[0] = "kb-share-id";
        hdrs[1] = e->share_id;
        hdrs[2] = "kb-issuer";
        hdrs[3] = e->issuer_application_id;
        hdrs[4] = "kb-event-id";
        hdrs[5] = ev;
        hdrs[6] = "content-type";
        hdrs[7] = "application/json";
        hdrs[8] = NULL;
        r = kb_wh_records_add(out, st->topic, e->vendor_data,
                              strlen(e->vendor_data), txt, len, hdrs);
out:
        json_object_put(dec);
        json_object_put(o);
        return r;
}

/* kb_wh_settled_fn of a change's records: the change is settled when
 * Kafka acked them, undone when not (the vendor's retry makes it again). */
static void change_settled(void *arg, int acked)
{
        settle_t *sa = arg;
        kb_status_t *st = sa->st;
        char back[32] = "";
        ent_t *e;

        pthread_mutex_lock(&st->lock);
        e = kb_hmap_gets(st->sessions, sa->session_id);
        if (e && e->pending == sa->token) {
                e->pending = 0;
                if (acked) {
                        place_merge(&e->settled, &sa->place);
                        place_merge(&e->cur, &e->settled);
                } else {
                        e->cur = e->settled;
                        kb_strlcpy(back, e->cur.status, sizeof(back));
                }
        }
        pthread_mutex_unlock(&st->lock);
        if (back[0])
                kb_log_info(st->name,
                            "session %s: %s (review %" PRId64
                            ") not acked by Kafka; back to %s until the "
                            "vendor retries",
                            sa->session_id, sa->place.status, sa->place.seq,
                            back);
        free(sa);
}

int kb_status_action(void *opaque, const kb_wh_delivery_t *dlv,
                     kb_wh_records_t *out, char *errstr, size_t errstr_size)
{
        kb_status_t *st = opaque;
        const char *dsid = kb_json_get_str(dlv->decision, "session_id");
        enum { DROP, PUBLISH, REPEAT, ADVANCE } what = DROP;
        kb_status_entry_t snap;
        /* a change's records settle it: allocated before the lock */
        settle_t *sa = calloc(1, sizeof(*sa));
        place_t np;
        int64_t now = now_of(st), at, seq;
        kb_status_log_t log;
        ent_t *e;
        int c, r;

        log_of(dlv->decision, &log);
        vendor_place(&log, dlv->status, dlv->timestamp, &at, &seq);
        pthread_mutex_lock(&st->lock);
        if (!st->ready) {
                st->st.retried++;
                pthread_mutex_unlock(&st->lock);
                free(sa);
                kb_snprintf(errstr, errstr_size,
                            "the importer has not read its state yet");
                return KB_ERR_RETRY;
        }
        e = kb_hmap_gets(st->sessions, dlv->session_id);
        if (!e || (e->committed && e->until < now)) {
                st->st.not_imported++;
                pthread_mutex_unlock(&st->lock);
                free(sa);
                kb_log_info(st->name,
                            "session %s: not imported by the bridge (or past "
                            "importer.status_window_s); delivery ignored",
                            dlv->session_id);
                return KB_OK;
        }
        if (!e->committed) {
                st->st.retried++;
                pthread_mutex_unlock(&st->lock);
                free(sa);
                kb_snprintf(errstr, errstr_size,
                            "the import of this session is not committed "
                            "yet");
                return KB_ERR_RETRY;
        }
        if (dlv->auth != KB_WH_AUTH_V2 ||
            (dsid && strcmp(dsid, dlv->session_id)) ||
            strlen(dlv->status) >= sizeof(e->cur.status)) {
                st->st.refused++;
                pthread_mutex_unlock(&st->lock);
                free(sa);
                kb_snprintf(errstr, errstr_size, "%s",
                            dlv->auth != KB_WH_AUTH_V2
                                ? "status updates need X-Signature-V2 (the "
                                  "decision is not covered by "
                                  "X-Signature-Simple)"
                            : dsid && strcmp(dsid, dlv->session_id)
                                ? "the decision is another session's"
                                : "status too long");
                return KB_ERR_MALFORMED;
        }
        memset(&np, 0, sizeof(np));
        kb_strlcpy(np.status, dlv->status, sizeof(np.status));
        np.at = at;
        np.seq = seq;
        if (e->pending) {
                /* a change of this session is in flight: whatever is not
                 * older than the settled status waits for its outcome
                 * (one change at a time keeps the records in order and
                 * lets a change that was not acked be undone) */
                c = kb_status_cmp(seq, at, dlv->status, e->settled.seq,
                                  e->settled.at, e->settled.status);
                if (c >= 0) {
                        st->st.retried++;
                        pthread_mutex_unlock(&st->lock);
                        free(sa);
                        kb_snprintf(errstr, errstr_size,
                                    "another status change of this session "
                                    "is being published");
                        return KB_ERR_RETRY;
                }
                st->st.stale++;
        } else if ((c = place_cmp(&np, &e->cur)) < 0) {
                st->st.stale++;
        } else if (c == 0) {
                /* the newest status again: the vendor retries only what
                 * was not answered 200 (or the replay cache was lost), so
                 * make it again, same event_id; never when it did not go
                 * out as an update */
                if (e->cur.published) {
                        what = REPEAT;
                        st->st.repeats++;
                } else {
                        st->st.unchanged++;
                }
        } else if (!strcmp(dlv->status, e->cur.status)) {
                /* newer, same status: no update, but remember the place
                 * (durably when the vendor's log grew, once acked) so that
                 * an older change redelivered later stays older */
                st->st.unchanged++;
                kb_strlcpy(np.prev, e->cur.prev, sizeof(np.prev));
                if (seq > e->cur.seq) {
                        what = ADVANCE;
                } else {
                        e->cur = e->settled = np; /* no record to wait for */
                }
        } else {
                what = PUBLISH;
                kb_strlcpy(np.prev, e->cur.status, sizeof(np.prev));
                np.published = 1;
        }
        if (what == PUBLISH || what == ADVANCE) {
                if (!sa) {
                        pthread_mutex_unlock(&st->lock);
                        kb_snprintf(errstr, errstr_size, "out of memory");
                        return KB_ERR_NOMEM;
                }
                if (what == PUBLISH)
                        st->st.published++;
                e->cur = np;
                e->pending = st->next_token++;
                sa->st = st;
                sa->token = e->pending;
                sa->place = np;
                kb_strlcpy(sa->session_id, dlv->session_id,
                           sizeof(sa->session_id));
        }
        if (what != DROP && e->until < now + st->window)
                e->until = now + st->window;
        ent_copy(e, &snap);
        pthread_mutex_unlock(&st->lock);

        if (what == PUBLISH || what == ADVANCE) {
                /* settled with acked 0 if anything below fails */
                kb_wh_records_on_settled(out, change_settled, sa);
        } else {
                free(sa);
        }
        switch (what) {
        case DROP:
                kb_log_info(st->name,
                            "session %s: %s (review %" PRId64 ", at %" PRId64
                            ") is %s than the last known %s; no update",
                            dlv->session_id, dlv->status, seq, at,
                            c < 0 ? "older" : "no newer", snap.status);
                return KB_OK;
        case ADVANCE:
                r = add_state_record(st, out, dlv->session_id, &snap, now);
                break;
        default:
                r = add_status_record(st, out, dlv, &snap, now);
                if (r == KB_OK)
                        r = add_state_record(st, out, dlv->session_id, &snap,
                                             now);
                if (r == KB_OK)
                        kb_log_info(st->name, "session %s: %s -> %s%s",
                                    dlv->session_id, snap.prev_status,
                                    snap.status,
                                    what == REPEAT ? " (again)" : "");
                break;
        }
        if (r != KB_OK) {
                /* answered 500, the change undone (the records' completion
                 * settles with acked 0): the vendor's retry makes it
                 * again */
                kb_wh_records_clear(out);
                kb_snprintf(errstr, errstr_size, "out of memory");
        }
        return r;
}

/* ---- life cycle ---- */

kb_status_t *kb_status_new(const kb_status_conf_t *conf)
{
        kb_status_t *st;

        if (!conf->topic || !conf->state_topic || conf->window_s < 0)
                return NULL;
        st = calloc(1, sizeof(*st));
        if (!st)
                return NULL;
        pthread_mutex_init(&st->lock, NULL);
        st->sessions = kb_hmap_new();
        st->staged = kb_hmap_new();
        st->topic = strdup(conf->topic);
        st->state_topic = strdup(conf->state_topic);
        st->name = strdup(conf->name ? conf->name : "importer");
        kb_strlcpy(st->partner,
                   conf->partner_application_id ? conf->partner_application_id
                                                : "",
                   sizeof(st->partner));
        st->window = conf->window_s;
        st->clock = conf->clock;
        st->next_token = 1;
        if (!st->sessions || !st->staged || !st->topic || !st->state_topic ||
            !st->name) {
                kb_status_destroy(st);
                return NULL;
        }
        return st;
}

static void map_free(kb_hmap_t *m)
{
        kb_hmap_iter_t it = KB_HMAP_ITER_INIT;
        void *v;

        if (!m)
                return;
        while (kb_hmap_next(m, &it, NULL, NULL, &v))
                free(v);
        kb_hmap_destroy(m);
}

void kb_status_destroy(kb_status_t *st)
{
        if (!st)
                return;
        map_free(st->sessions);
        map_free(st->staged);
        free(st->topic);
        free(st->state_topic);
        free(st->name);
        pthread_mutex_destroy(&st->lock);
        free(st);
}
