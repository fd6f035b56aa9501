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

/* One imported session. The strings that never change live in data[]. */
typedef struct ent_s {
        int64_t status_at, seq, until;
        unsigned char full, published, committed;
        char status[32], prev[32];
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
        int ready;
        kb_status_stats_t st;
};

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

/*
 * Where @p status stands in the vendor's log of @p session (a decision or
 * an import answer): *seq = the number of reviews; *at = the newest
 * review's created_at when that review set @p status, else @p fallback.
 */
static void vendor_place(json_object *session, const char *status,
                         int64_t fallback, int64_t *at, int64_t *seq)
{
        json_object *rv = kb_json_get(session, "reviews"), *last;
        const char *ns, *ca;
        size_t n;

        *at = fallback;
        *seq = 0;
        if (!rv || !json_object_is_type(rv, json_type_array))
                return;
        n = json_object_array_length(rv);
        *seq = (int64_t)n;
        if (n == 0)
                return;
        last = json_object_array_get_idx(rv, n - 1);
        ns = kb_json_get_str(last, "new_status");
        ca = kb_json_get_str(last, "created_at");
        if (ns && status && !strcmp(ns, status) && ca)
                (void)kb_time_parse_iso8601(ca, at);
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

static void set_status(ent_t *e, const info_t *in)
{
        kb_strlcpy(e->status, in->status, sizeof(e->status));
        kb_strlcpy(e->prev, in->prev ? in->prev : "", sizeof(e->prev));
        e->status_at = in->status_at;
        e->seq = in->seq;
        e->published = in->published ? 1 : 0;
}

/* Adds what @p in says to the index. 0, or -1 on ENOMEM. */
static int merge(kb_status_t *st, const info_t *in, int committed)
{
        ent_t *e = kb_hmap_gets(st->sessions, in->session_id);

        if (!e) {
                e = ent_new(in);
                if (!e)
                        return -1;
                set_status(e, in);
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
        switch (kb_status_cmp(in->seq, in->status_at, in->status, e->seq,
                              e->status_at, e->status)) {
        case 1:
                set_status(e, in);
                break;
        case 0:
                if (in->published && !e->published)
                        set_status(e, in);
                break;
        default:
                break;
        }
        return 0;
}

static void ent_del(kb_status_t *st, const char *session_id)
{
        free(kb_hmap_dels(st->sessions, session_id));
}

/* ---- feeding (engine thread) ---- */

int kb_status_stage(kb_status_t *st, const kb_status_import_t *imp)
{
        const char *status = kb_json_get_str(imp->session, "status");
        char *sid;
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
        vendor_place(imp->session, status, 0, &in.status_at, &in.seq);
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
        free(kb_hmap_dels(st->staged, imp->share_id));
        if (merge(st, &in, 0) == -1 ||
            kb_hmap_puts(st->staged, imp->share_id, sid) == -1) {
                ent_t *e = kb_hmap_gets(st->sessions, imp->session_id);
                if (e && !e->committed)
                        ent_del(st, imp->session_id);
                free(sid);
                r = KB_ERR_NOMEM;
        }
        pthread_mutex_unlock(&st->lock);
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
        if (e &&
            (kb_json_add_str(rec, "issuer_application_id", e->issuer) ||
             kb_json_add_str(rec, "shared_from_session", e->from) ||
             kb_json_add_str(rec, "session_kind", e->kind) ||
             kb_json_add_str(rec, "vendor_data", e->vd) ||
             kb_json_add_str(rec, "record", e->full ? "full" : "summary") ||
             kb_json_add_str(rec, "status", e->status) ||
             kb_json_add_i64(rec, "status_at", e->status_at) ||
             kb_json_add_i64(rec, "status_seq", e->seq)))
                r = -1;
        pthread_mutex_unlock(&st->lock);
        return r;
}

static void obs_commit(void *opaque, const char *share_id, const char *ref)
{
        kb_status_t *st = opaque;
        char *sid;
        ent_t *e;

        (void)ref;
        pthread_mutex_lock(&st->lock);
        sid = kb_hmap_dels(st->staged, share_id);
        e = sid ? kb_hmap_gets(st->sessions, sid) : NULL;
        if (e) {
                e->committed = 1;
                if (e->until < now_of(st) + st->window)
                        e->until = now_of(st) + st->window;
        }
        pthread_mutex_unlock(&st->lock);
        free(sid);
}

static void obs_forget(void *opaque, const char *share_id)
{
        kb_status_t *st = opaque;
        char *sid;
        ent_t *e;

        pthread_mutex_lock(&st->lock);
        sid = kb_hmap_dels(st->staged, share_id);
        e = sid ? kb_hmap_gets(st->sessions, sid) : NULL;
        if (e && !e->committed)
                ent_del(st, sid);
        pthread_mutex_unlock(&st->lock);
        free(sid);
}

/* A state record: the importer's "imported" record of a share, or the
 * index's own "status:<session_id>" record. */
static void obs_record(void *opaque, const char *key, size_t key_len,
                       json_object *rec)
{
        kb_status_t *st = opaque;
        const char *outcome = kb_json_get_str(rec, "outcome");
        const char *record = kb_json_get_str(rec, "record");
        int aux = key_len >= strlen(KB_SEEN_AUX_PREFIX) &&
                  !memcmp(key, KB_SEEN_AUX_PREFIX, strlen(KB_SEEN_AUX_PREFIX));
        int64_t at;
        info_t in;

        if (!outcome || strcmp(outcome, aux ? "status" : "imported") ||
            kb_json_get_i64(rec, "at", &at))
                return;
        memset(&in, 0, sizeof(in));
        in.session_id = kb_json_get_str(rec, "ref");
        in.share_id = kb_json_get_str(rec, "share_id");
        in.issuer = kb_json_get_str(rec, "issuer_application_id");
        in.from = kb_json_get_str(rec, "shared_from_session");
        in.kind = kb_json_get_str(rec, "session_kind");
        in.vd = kb_json_get_str(rec, "vendor_data");
        in.full = record && !strcmp(record, "full");
        in.status = kb_json_get_str(rec, "status");
        in.prev = kb_json_get_str(rec, "old_status");
        in.published = aux && in.prev != NULL;
        if (kb_json_get_i64(rec, "status_at", &in.status_at))
                in.status_at = 0;
        if (kb_json_get_i64(rec, "status_seq", &in.seq))
                in.seq = 0;
        in.until = at + st->window;
        /* records written before status updates existed lack the members:
         * those sessions are not tracked */
        if (!record || !info_valid(&in) || in.until < now_of(st))
                return;
        pthread_mutex_lock(&st->lock);
        if (merge(st, &in, 1) == -1)
                kb_log_warn(st->name,
                            "out of memory: session %s not tracked for "
                            "status updates",
                            in.session_id);
        pthread_mutex_unlock(&st->lock);
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
                        if (e->committed && e->until < now)
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
        kb_strlcpy(out->status, e->status, sizeof(out->status));
        kb_strlcpy(out->prev_status, e->prev, sizeof(out->prev_status));
        out->status_at = e->status_at;
        out->status_seq = e->seq;
        out->published = e->published;
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

int kb_status_action(void *opaque, const kb_wh_delivery_t *dlv,
                     kb_wh_records_t *out, char *errstr, size_t errstr_size)
{
        kb_status_t *st = opaque;
        const char *dsid = kb_json_get_str(dlv->decision, "session_id");
        enum { DROP, PUBLISH, REPEAT, ADVANCE } what = DROP;
        kb_status_entry_t snap;
        int64_t now = now_of(st), at, seq;
        ent_t *e;
        int c, r;

        vendor_place(dlv->decision, dlv->status, dlv->timestamp, &at, &seq);
        pthread_mutex_lock(&st->lock);
        if (!st->ready) {
                st->st.retried++;
                pthread_mutex_unlock(&st->lock);
                kb_snprintf(errstr, errstr_size,
                            "the importer has not read its state yet");
                return KB_ERR_RETRY;
        }
        e = kb_hmap_gets(st->sessions, dlv->session_id);
        if (!e || (e->committed && e->until < now)) {
                st->st.not_imported++;
                pthread_mutex_unlock(&st->lock);
                kb_log_info(st->name,
                            "session %s: not imported by the bridge (or past "
                            "importer.status_window_s); delivery ignored",
                            dlv->session_id);
                return KB_OK;
        }
        if (!e->committed) {
                st->st.retried++;
                pthread_mutex_unlock(&st->lock);
                kb_snprintf(errstr, errstr_size,
                            "the import of this session is not committed "
                            "yet");
                return KB_ERR_RETRY;
        }
        if (dlv->auth != KB_WH_AUTH_V2 ||
            (dsid && strcmp(dsid, dlv->session_id)) ||
            strlen(dlv->status) >= sizeof(e->status)) {
                st->st.refused++;
                pthread_mutex_unlock(&st->lock);
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
        c = kb_status_cmp(seq, at, dlv->status, e->seq, e->status_at,
                          e->status);
        if (c < 0) {
                st->st.stale++;
        } else if (c == 0) {
                /* the newest status again: the vendor retries only what
                 * was not answered 200 (or the replay cache was lost), so
                 * make it again, same event_id; never when it did not go
                 * out as an update */
                if (e->published) {
                        what = REPEAT;
                        st->st.repeats++;
                } else {
                        st->st.unchanged++;
                }
        } else if (!strcmp(dlv->status, e->status)) {
                /* newer, same status: no update, but remember the place
                 * (durably when the vendor's log grew) so that an older
                 * change redelivered later stays older */
                st->st.unchanged++;
                if (seq > e->seq)
                        what = ADVANCE;
                e->seq = seq;
                e->status_at = at;
                e->published = 0;
        } else {
                what = PUBLISH;
                st->st.published++;
                kb_strlcpy(e->prev, e->status, sizeof(e->prev));
                kb_strlcpy(e->status, dlv->status, sizeof(e->status));
                e->seq = seq;
                e->status_at = at;
                e->published = 1;
        }
        if (what != DROP && e->until < now + st->window)
                e->until = now + st->window;
        ent_copy(e, &snap);
        pthread_mutex_unlock(&st->lock);

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
                /* answered 500: the vendor's retry is the same status at
                 * the same place, which makes the records again */
                kb_wh_records_clear(out);
                kb_snprintf(errstr, errstr_size, "out of memory");
        }
        return r;
}

/* ---- life cycle ---- */

kb_status_t *kb_status_new(const kb_status_conf_t *conf)
{
        kb_status_t *st;

        if (!conf->topic || !conf->state_topic)
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
