/* sandbox_persist.c -- the sandbox's --state file: format, load, debounced
 * saves */
#include "sandbox.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <sodium.h>

#include "json.h"
#include "log.h"

#define FAC "sandbox"

#define STATE_FORMAT    "kyc-bridge-sandbox-state"
#define STATE_VERSION   1
#define STATE_MAX_BYTES ((size_t)4 << 30)
/* A change reaches the disk within this much (plus the save itself). */
#define SAVE_INTERVAL_MS 100

/*
 * The file is one JSON object:
 *   {"format":"kyc-bridge-sandbox-state","version":1,
 *    "secret":"<hex>", "rng":["<hex64>" x4], "next_review_id":N,
 *    "blobs":[{"kind":1|2,"data":{<arrays>}}],
 *    "apps":[{..., "workflows":[...], "destinations":[...],
 *             "entities":[...], "sessions":[{..., "blob":i|null}]}],
 *    "imported":["<sha256 hex>:<application id>", ...]}
 * Verification data is stored once per blob and shared by the sessions
 * (clones) that reference it, as in memory.
 */

/* ---------------------------------------------------------------------- */
/* Writing */

typedef struct save_ctx_s {
        kb_buf_t blobs;
        size_t nblobs;
        uint64_t gen;
} save_ctx_t;

static int save_time_key(kb_buf_t *b, const char *key, int64_t v)
{
        return kb_buf_printf(b, ",\"%s\":%lld", key, (long long)v);
}

static int save_blob_ref(kb_buf_t *b, save_ctx_t *sc, kb_sbx_blob_t *blob)
{
        if (!blob)
                return kb_buf_puts(b, ",\"blob\":null");
        if (blob->save_gen != sc->gen) {
                blob->save_gen = sc->gen;
                blob->save_idx = sc->nblobs++;
                if ((blob->save_idx && kb_buf_puts(&sc->blobs, ",") == -1) ||
                    kb_buf_printf(&sc->blobs, "{\"kind\":%d,\"data\":{",
                                  blob->kind) == -1 ||
                    kb_buf_append(&sc->blobs, blob->data, blob->len) == -1 ||
                    kb_buf_puts(&sc->blobs, "}}") == -1)
                        return -1;
        }
        return kb_buf_printf(b, ",\"blob\":%zu", blob->save_idx);
}

static int save_session(kb_buf_t *b, save_ctx_t *sc, kb_sbx_session_t *s)
{
        size_t i;

        if (kb_buf_printf(b,
                          "{\"id\":\"%s\",\"token\":\"%s\",\"number\":%lld,"
                          "\"workflow_id\":\"%s\",\"kind\":%d,\"status\":",
                          s->id, s->token, (long long)s->number, s->workflow_id,
                          s->kind) == -1 ||
            kb_sbx_jstr(b, kb_sbx_status_name(s->kind, s->status)) == -1 ||
            save_time_key(b, "created_at", s->created_at) == -1 ||
            kb_buf_puts(b, ",\"vendor_data\":") == -1 ||
            kb_sbx_jstr(b, s->vendor_data) == -1 ||
            kb_buf_puts(b, ",\"metadata\":") == -1 ||
            kb_buf_puts(b, s->metadata ? s->metadata : "null") == -1 ||
            kb_buf_puts(b, ",\"callback\":") == -1 ||
            kb_sbx_jstr(b, s->callback) == -1 ||
            kb_buf_puts(b, ",\"shared_from\":") == -1 ||
            kb_sbx_jstr(b, s->shared_from[0] ? s->shared_from : NULL) == -1 ||
            save_blob_ref(b, sc, s->blob) == -1 ||
            kb_buf_puts(b, ",\"reviews\":[") == -1)
                return -1;
        for (i = 0; i < s->nreviews; i++) {
                const kb_sbx_review_t *r = &s->reviews[i];
                if (kb_buf_printf(b, "%s{\"id\":%lld,\"old\":", i ? "," : "",
                                  (long long)r->id) == -1 ||
                    kb_sbx_jstr(
                        b, kb_sbx_status_name(s->kind, r->old_status)) == -1 ||
                    kb_buf_puts(b, ",\"new\":") == -1 ||
                    kb_sbx_jstr(
                        b, kb_sbx_status_name(s->kind, r->new_status)) == -1 ||
                    kb_buf_puts(b, ",\"note\":") == -1 ||
                    kb_sbx_jstr(b, r->note) == -1 ||
                    save_time_key(b, "created_at", r->created_at) == -1 ||
                    kb_buf_puts(b, "}") == -1)
                        return -1;
        }
        return kb_buf_puts(b, "]}");
}

static int save_app(kb_buf_t *b, save_ctx_t *sc, kb_sbx_app_t *app)
{
        kb_hmap_iter_t it = KB_HMAP_ITER_INIT;
        kb_sbx_session_t *s;
        void *val;
        size_t i, n = 0;

        if (kb_buf_printf(b,
                          "{\"id\":\"%s\",\"key\":\"%s\",\"secret\":\"%s\","
                          "\"name\":",
                          app->id, app->key, app->secret) == -1 ||
            kb_sbx_jstr(b, app->name) == -1 ||
            kb_buf_printf(b, ",\"deleted\":%s",
                          app->deleted ? "true" : "false") == -1 ||
            save_time_key(b, "created_at", app->created_at) == -1 ||
            save_time_key(b, "next_number", app->next_number) == -1 ||
            kb_buf_puts(b, ",\"webhook_url\":") == -1 ||
            kb_sbx_jstr(b, app->webhook_url) == -1 ||
            kb_buf_puts(b, ",\"capture_method\":") == -1 ||
            kb_sbx_jstr(b, app->capture_method) == -1 ||
            save_time_key(b, "retention_months", app->retention_months) == -1 ||
            kb_buf_puts(b, ",\"destinations\":[") == -1)
                return -1;
        for (i = 0; i < app->ndests; i++) {
                const kb_sbx_dest_t *d = app->dests[i];
                if (kb_buf_printf(b, "%s{\"id\":\"%s\",\"url\":", i ? "," : "",
                                  d->id) == -1 ||
                    kb_sbx_jstr(b, d->url) == -1 ||
                    kb_buf_printf(b, ",\"events\":%u", d->events) == -1 ||
                    save_time_key(b, "created_at", d->created_at) == -1 ||
                    kb_buf_puts(b, "}") == -1)
                        return -1;
        }
        if (kb_buf_puts(b, "],\"workflows\":[") == -1)
                return -1;
        for (i = 0; i < app->nwfs; i++) {
                const kb_sbx_workflow_t *wf = app->wfs[i];
                if (kb_buf_printf(b, "%s{\"id\":\"%s\",\"label\":",
                                  i ? "," : "", wf->id) == -1 ||
                    kb_sbx_jstr(b, wf->label) == -1 ||
                    kb_buf_printf(b,
                                  ",\"kind\":%d,\"is_default\":%s,"
                                  "\"features\":%u",
                                  wf->kind, wf->is_default ? "true" : "false",
                                  wf->features) == -1 ||
                    save_time_key(b, "created_at", wf->created_at) == -1 ||
                    kb_buf_puts(b, "}") == -1)
                        return -1;
        }
        if (kb_buf_puts(b, "],\"entities\":[") == -1)
                return -1;
        while (app->vd && kb_hmap_next(app->vd, &it, NULL, NULL, &val)) {
                const kb_sbx_vd_t *vd = val;
                int k;
                for (k = KB_SBX_USER; k <= KB_SBX_BUSINESS; k++) {
                        int has =
                            k == KB_SBX_USER ? vd->has_user : vd->has_business;
                        int64_t at = k == KB_SBX_USER ? vd->user_created_at
                                                      : vd->business_created_at;
                        if (!has)
                                continue;
                        if ((n++ && kb_buf_puts(b, ",") == -1) ||
                            kb_buf_puts(b, "{\"vendor_data\":") == -1 ||
                            kb_sbx_jstr(b, vd->vendor_data) == -1 ||
                            kb_buf_printf(b, ",\"kind\":%d", k) == -1 ||
                            save_time_key(b, "created_at", at) == -1 ||
                            kb_buf_puts(b, "}") == -1)
                                return -1;
                }
        }
        if (kb_buf_puts(b, "],\"sessions\":[") == -1)
                return -1;
        for (s = app->head; s; s = s->next)
                if ((s != app->head && kb_buf_puts(b, ",") == -1) ||
                    save_session(b, sc, s) == -1)
                        return -1;
        return kb_buf_puts(b, "]}");
}

/* Serialises the whole store into @p out (store lock held). */
static int save_store(kb_sbx_store_t *st, kb_buf_t *out)
{
        static uint64_t gen; /* under the store lock */
        save_ctx_t sc;
        kb_buf_t apps = KB_BUF_INIT;
        kb_hmap_iter_t it = KB_HMAP_ITER_INIT;
        const void *key;
        size_t keylen, i, n = 0;
        char hex[2 * 32 + 1];
        int rc = -1;

        memset(&sc, 0, sizeof(sc));
        sc.gen = ++gen;
        for (i = 0; i < st->napps; i++)
                if ((i && kb_buf_puts(&apps, ",") == -1) ||
                    save_app(&apps, &sc, st->apps[i]) == -1)
                        goto out;
        kb_hex(st->secret, sizeof(st->secret), hex);
        if (kb_buf_printf(out,
                          "{\"format\":\"%s\",\"version\":%d,"
                          "\"secret\":\"%s\",\"rng\":[",
                          STATE_FORMAT, STATE_VERSION, hex) == -1)
                goto out;
        sodium_memzero(hex, sizeof(hex));
        for (i = 0; i < 4; i++)
                if (kb_buf_printf(out, "%s\"%016llx\"", i ? "," : "",
                                  (unsigned long long)st->rng.s[i]) == -1)
                        goto out;
        if (kb_buf_printf(out, "],\"next_review_id\":%lld,\"blobs\":[",
                          (long long)st->next_review_id) == -1 ||
            (sc.blobs.len &&
             kb_buf_append(out, sc.blobs.data, sc.blobs.len) == -1) ||
            kb_buf_puts(out, "],\n\"apps\":[") == -1 ||
            (apps.len && kb_buf_append(out, apps.data, apps.len) == -1) ||
            kb_buf_puts(out, "],\n\"imported\":[") == -1)
                goto out;
        while (kb_hmap_next(st->imported, &it, &key, &keylen, NULL)) {
                if (keylen != 32 + 36)
                        continue;
                kb_hex(key, 32, hex);
                if (kb_buf_printf(out, "%s\"%s:%.36s\"", n++ ? "," : "", hex,
                                  (const char *)key + 32) == -1)
                        goto out;
        }
        if (kb_buf_puts(out, "]}\n") == -1)
                goto out;
        rc = 0;
out:
        kb_buf_free(&sc.blobs, 0);
        kb_buf_free(&apps, 1);
        return rc;
}

int kb_sbx_state_save(kb_sbx_store_t *st, const char *path)
{
        kb_buf_t b = KB_BUF_INIT;
        int rc;

        pthread_mutex_lock(&st->lock);
        rc = save_store(st, &b);
        pthread_mutex_unlock(&st->lock);
        if (rc == 0 && kb_write_file_atomic(path, b.data, b.len, 0600) == -1) {
                int err = errno;
                kb_log_warn(FAC, "cannot write state file %s: %s", path,
                            strerror(err));
                rc = -1;
        } else if (rc != 0) {
                kb_log_warn(FAC, "cannot serialise the state: out of memory");
        }
        kb_buf_free(&b, 1);
        return rc;
}

/* ---------------------------------------------------------------------- */
/* Reading */

typedef struct load_ctx_s {
        char *errstr;
        size_t errstr_size;
        kb_sbx_blob_t **blobs;
        size_t nblobs;
} load_ctx_t;

#define LOAD_FAIL(lc, ...)                                                     \
        do {                                                                   \
                kb_snprintf((lc)->errstr, (lc)->errstr_size, __VA_ARGS__);     \
                return -1;                                                     \
        } while (0)

/* String member, or NULL for null/absent (when @p nullable). */
static int get_str(load_ctx_t *lc, json_object *o, const char *key,
                   int nullable, const char **out, const char *where)
{
        json_object *v;

        *out = NULL;
        if (!json_object_object_get_ex(o, key, &v) || !v) {
                if (nullable)
                        return 0;
                LOAD_FAIL(lc, "%s: \"%s\" missing", where, key);
        }
        if (!json_object_is_type(v, json_type_string))
                LOAD_FAIL(lc, "%s: \"%s\" is not a string", where, key);
        *out = json_object_get_string(v);
        return 0;
}

static int get_int(load_ctx_t *lc, json_object *o, const char *key,
                   int64_t *out, const char *where)
{
        if (kb_json_get_i64(o, key, out) == -1)
                LOAD_FAIL(lc, "%s: \"%s\" is not an integer", where, key);
        return 0;
}

static json_object *get_array(json_object *o, const char *key)
{
        json_object *v = kb_json_get(o, key);

        return v && json_object_is_type(v, json_type_array) ? v : NULL;
}

static int get_kind(load_ctx_t *lc, json_object *o, int *kind,
                    const char *where)
{
        int64_t k;

        if (get_int(lc, o, "kind", &k, where) == -1)
                return -1;
        if (k != KB_SBX_USER && k != KB_SBX_BUSINESS)
                LOAD_FAIL(lc, "%s: bad kind", where);
        *kind = (int)k;
        return 0;
}

static int get_status(load_ctx_t *lc, json_object *o, const char *key, int kind,
                      int *status, const char *where)
{
        const char *s;

        if (get_str(lc, o, key, 0, &s, where) == -1)
                return -1;
        *status = kb_sbx_status_parse(kind, s);
        if (*status < 0)
                LOAD_FAIL(lc, "%s: bad \"%s\"", where, key);
        return 0;
}

static int load_session(load_ctx_t *lc, kb_sbx_store_t *st, kb_sbx_app_t *app,
                        json_object *o, const char *where)
{
        const char *id, *token, *wf, *vd, *cb, *from, *note;
        json_object *meta, *bref, *reviews;
        int64_t number, created, rid, rat;
        int kind, status, rold, rnew;
        kb_sbx_session_t *s;
        size_t i, n;

        if (get_str(lc, o, "id", 0, &id, where) == -1 ||
            get_str(lc, o, "token", 0, &token, where) == -1 ||
            get_str(lc, o, "workflow_id", 0, &wf, where) == -1 ||
            get_str(lc, o, "vendor_data", 1, &vd, where) == -1 ||
            get_str(lc, o, "callback", 1, &cb, where) == -1 ||
            get_str(lc, o, "shared_from", 1, &from, where) == -1 ||
            get_int(lc, o, "number", &number, where) == -1 ||
            get_int(lc, o, "created_at", &created, where) == -1 ||
            get_kind(lc, o, &kind, where) == -1 ||
            get_status(lc, o, "status", kind, &status, where) == -1)
                return -1;
        if (!kb_is_uuid(id) || !kb_is_uuid(wf) || strlen(token) > 32 ||
            (from && !kb_is_uuid(from)))
                LOAD_FAIL(lc, "%s: bad id, token or workflow_id", where);
        meta = kb_json_get(o, "metadata");
        s = kb_sbx_session_restore(st, app, id, token, number, wf, kind, status,
                                   vd, meta ? kb_json_str(meta, NULL) : NULL,
                                   cb, from, created);
        if (!s)
                LOAD_FAIL(lc,
                          "%s: duplicate session id/token, or out of "
                          "memory",
                          where);
        bref = kb_json_get(o, "blob");
        if (bref) {
                int64_t bi;
                if (kb_json_get_i64(o, "blob", &bi) == -1 || bi < 0 ||
                    (size_t)bi >= lc->nblobs || lc->blobs[bi]->kind != kind)
                        LOAD_FAIL(lc, "%s: bad blob reference", where);
                kb_sbx_session_set_blob(s, lc->blobs[bi]);
        }
        reviews = get_array(o, "reviews");
        n = reviews ? json_object_array_length(reviews) : 0;
        for (i = 0; i < n; i++) {
                json_object *r = json_object_array_get_idx(reviews, i);
                if (!json_object_is_type(r, json_type_object) ||
                    get_int(lc, r, "id", &rid, where) == -1 ||
                    get_int(lc, r, "created_at", &rat, where) == -1 ||
                    get_status(lc, r, "old", kind, &rold, where) == -1 ||
                    get_status(lc, r, "new", kind, &rnew, where) == -1 ||
                    get_str(lc, r, "note", 1, &note, where) == -1)
                        LOAD_FAIL(lc, "%s: bad review", where);
                if (kb_sbx_review_restore(st, s, rid, rold, rnew, note, rat) ==
                    -1)
                        LOAD_FAIL(lc, "%s: out of memory", where);
        }
        return 0;
}

static int load_app(load_ctx_t *lc, kb_sbx_store_t *st, json_object *o,
                    size_t idx)
{
        const char *id, *key, *secret, *name, *url, *capture;
        json_object *arr, *del;
        int64_t created, next, retention;
        kb_sbx_app_t *app;
        char where[96];
        size_t i, n;

        kb_snprintf(where, sizeof(where), "apps[%zu]", idx);
        if (!json_object_is_type(o, json_type_object))
                LOAD_FAIL(lc, "%s: not an object", where);
        if (get_str(lc, o, "id", 0, &id, where) == -1 ||
            get_str(lc, o, "key", 0, &key, where) == -1 ||
            get_str(lc, o, "secret", 0, &secret, where) == -1 ||
            get_str(lc, o, "name", 0, &name, where) == -1 ||
            get_str(lc, o, "webhook_url", 1, &url, where) == -1 ||
            get_str(lc, o, "capture_method", 0, &capture, where) == -1 ||
            get_int(lc, o, "created_at", &created, where) == -1 ||
            get_int(lc, o, "next_number", &next, where) == -1 ||
            get_int(lc, o, "retention_months", &retention, where) == -1)
                return -1;
        del = kb_json_get(o, "deleted");
        if (!kb_is_uuid(id) || !*key || !*secret)
                LOAD_FAIL(lc, "%s: bad id, key or secret", where);
        app = kb_sbx_app_restore(st, id, key, secret, name,
                                 del && json_object_get_boolean(del), created);
        if (!app)
                LOAD_FAIL(lc, "%s: duplicate application id or key", where);
        if (url && !(app->webhook_url = strdup(url)))
                LOAD_FAIL(lc, "%s: out of memory", where);
        kb_strlcpy(app->capture_method, capture, sizeof(app->capture_method));
        app->retention_months = retention;

        arr = get_array(o, "destinations");
        n = arr ? json_object_array_length(arr) : 0;
        for (i = 0; i < n; i++) {
                json_object *d = json_object_array_get_idx(arr, i);
                const char *did, *durl;
                int64_t ev, at;
                if (get_str(lc, d, "id", 0, &did, where) == -1 ||
                    get_str(lc, d, "url", 0, &durl, where) == -1 ||
                    get_int(lc, d, "events", &ev, where) == -1 ||
                    get_int(lc, d, "created_at", &at, where) == -1)
                        return -1;
                if (!kb_is_uuid(did) ||
                    !kb_sbx_dest_restore(st, app, did, durl, (unsigned)ev, at))
                        LOAD_FAIL(lc, "%s: bad destination", where);
        }
        arr = get_array(o, "workflows");
        n = arr ? json_object_array_length(arr) : 0;
        for (i = 0; i < n; i++) {
                json_object *w = json_object_array_get_idx(arr, i), *dflt;
                const char *wid, *label;
                int64_t feat, at;
                int kind;
                if (get_str(lc, w, "id", 0, &wid, where) == -1 ||
                    get_str(lc, w, "label", 0, &label, where) == -1 ||
                    get_kind(lc, w, &kind, where) == -1 ||
                    get_int(lc, w, "features", &feat, where) == -1 ||
                    get_int(lc, w, "created_at", &at, where) == -1)
                        return -1;
                dflt = kb_json_get(w, "is_default");
                if (!kb_is_uuid(wid) ||
                    !kb_sbx_workflow_restore(st, app, wid, label, kind,
                                             dflt &&
                                                 json_object_get_boolean(dflt),
                                             (unsigned)feat, at))
                        LOAD_FAIL(lc, "%s: bad or duplicate workflow", where);
        }
        arr = get_array(o, "entities");
        n = arr ? json_object_array_length(arr) : 0;
        for (i = 0; i < n; i++) {
                json_object *e = json_object_array_get_idx(arr, i);
                const char *vd;
                int64_t at;
                int kind;
                if (get_str(lc, e, "vendor_data", 0, &vd, where) == -1 ||
                    get_kind(lc, e, &kind, where) == -1 ||
                    get_int(lc, e, "created_at", &at, where) == -1)
                        return -1;
                if (kb_sbx_entity_restore(app, vd, kind, at) == -1)
                        LOAD_FAIL(lc, "%s: out of memory", where);
        }
        arr = get_array(o, "sessions");
        n = arr ? json_object_array_length(arr) : 0;
        for (i = 0; i < n; i++) {
                char sw[128];
                json_object *so = json_object_array_get_idx(arr, i);
                kb_snprintf(sw, sizeof(sw), "%s.sessions[%zu]", where, i);
                if (!json_object_is_type(so, json_type_object))
                        LOAD_FAIL(lc, "%s: not an object", sw);
                if (load_session(lc, st, app, so, sw) == -1)
                        return -1;
        }
        /* session numbers never go back, even after deletions */
        if (next > app->next_number)
                app->next_number = next;
        return 0;
}

static int unhex(const char *s, unsigned char *out, size_t n)
{
        size_t i;

        if (strlen(s) != 2 * n)
                return -1;
        for (i = 0; i < 2 * n; i++) {
                char c = s[i];
                int v = c >= '0' && c <= '9'   ? c - '0'
                        : c >= 'a' && c <= 'f' ? c - 'a' + 10
                                               : -1;
                if (v < 0)
                        return -1;
                if (i % 2 == 0)
                        out[i / 2] = (unsigned char)(v << 4);
                else
                        out[i / 2] |= (unsigned char)v;
        }
        return 0;
}

static int load_root(load_ctx_t *lc, kb_sbx_store_t *st, json_object *root)
{
        json_object *arr;
        const char *s;
        int64_t v;
        size_t i, n;

        if (!json_object_is_type(root, json_type_object))
                LOAD_FAIL(lc, "not a JSON object");
        if (get_str(lc, root, "format", 0, &s, "state") == -1)
                return -1;
        if (strcmp(s, STATE_FORMAT))
                LOAD_FAIL(lc, "not a sandbox state file");
        if (get_int(lc, root, "version", &v, "state") == -1)
                return -1;
        if (v != STATE_VERSION)
                LOAD_FAIL(lc, "unsupported state version %lld", (long long)v);
        if (get_str(lc, root, "secret", 0, &s, "state") == -1)
                return -1;
        if (unhex(s, st->secret, sizeof(st->secret)) == -1)
                LOAD_FAIL(lc, "bad secret");
        arr = get_array(root, "rng");
        if (!arr || json_object_array_length(arr) != 4)
                LOAD_FAIL(lc, "bad rng state");
        for (i = 0; i < 4; i++) {
                unsigned char b[8];
                size_t k;
                json_object *e = json_object_array_get_idx(arr, i);
                if (!json_object_is_type(e, json_type_string) ||
                    unhex(json_object_get_string(e), b, 8) == -1)
                        LOAD_FAIL(lc, "bad rng state");
                st->rng.s[i] = 0;
                for (k = 0; k < 8; k++)
                        st->rng.s[i] = (st->rng.s[i] << 8) | b[k];
        }
        if (get_int(lc, root, "next_review_id", &st->next_review_id, "state") ==
            -1)
                return -1;

        arr = get_array(root, "blobs");
        n = arr ? json_object_array_length(arr) : 0;
        lc->blobs = calloc(n + 1, sizeof(*lc->blobs));
        if (!lc->blobs)
                LOAD_FAIL(lc, "out of memory");
        for (i = 0; i < n; i++) {
                json_object *b = json_object_array_get_idx(arr, i), *data;
                int kind;
                if (!json_object_is_type(b, json_type_object) ||
                    get_kind(lc, b, &kind, "blobs") == -1)
                        LOAD_FAIL(lc, "blobs[%zu]: bad entry", i);
                data = kb_json_get(b, "data");
                if (!data || !json_object_is_type(data, json_type_object))
                        LOAD_FAIL(lc, "blobs[%zu]: bad data", i);
                lc->blobs[i] = kb_sbx_blob_new(kind, data);
                if (!lc->blobs[i])
                        LOAD_FAIL(lc, "out of memory");
                lc->nblobs++;
        }
        arr = get_array(root, "apps");
        n = arr ? json_object_array_length(arr) : 0;
        for (i = 0; i < n; i++)
                if (load_app(lc, st, json_object_array_get_idx(arr, i), i) ==
                    -1)
                        return -1;
        arr = get_array(root, "imported");
        n = arr ? json_object_array_length(arr) : 0;
        for (i = 0; i < n; i++) {
                json_object *e = json_object_array_get_idx(arr, i);
                unsigned char key[32 + 36];
                const char *es = json_object_is_type(e, json_type_string)
                                     ? json_object_get_string(e)
                                     : "";
                char hex[65];
                if (strlen(es) != 64 + 1 + 36 || es[64] != ':')
                        LOAD_FAIL(lc, "imported[%zu]: bad entry", i);
                memcpy(hex, es, 64);
                hex[64] = '\0';
                if (unhex(hex, key, 32) == -1 || !kb_is_uuid(es + 65))
                        LOAD_FAIL(lc, "imported[%zu]: bad entry", i);
                memcpy(key + 32, es + 65, 36);
                if (kb_hmap_put(st->imported, key, sizeof(key), st) == -1)
                        LOAD_FAIL(lc, "out of memory");
        }
        return 0;
}

int kb_sbx_state_load(kb_sbx_store_t *st, const char *path, char *errstr,
                      size_t errstr_size)
{
        load_ctx_t lc;
        json_object *root;
        char *data = NULL, perr[128];
        size_t len = 0, i;
        int rc;

        if (kb_read_file(path, STATE_MAX_BYTES, &data, &len) == -1) {
                if (errno == ENOENT)
                        return 0;
                kb_snprintf(errstr, errstr_size, "%s: %s", path,
                            strerror(errno));
                return -1;
        }
        root = kb_json_parse(data, len, 128, perr, sizeof(perr));
        sodium_memzero(data, len);
        free(data);
        if (!root) {
                kb_snprintf(errstr, errstr_size, "%s: %s", path, perr);
                return -1;
        }
        memset(&lc, 0, sizeof(lc));
        lc.errstr = perr;
        lc.errstr_size = sizeof(perr);
        pthread_mutex_lock(&st->lock);
        rc = load_root(&lc, st, root);
        pthread_mutex_unlock(&st->lock);
        for (i = 0; i < lc.nblobs; i++)
                kb_sbx_blob_release(lc.blobs[i]);
        free(lc.blobs);
        json_object_put(root);
        if (rc == -1) {
                kb_snprintf(errstr, errstr_size, "%s: %s", path, perr);
                return -1;
        }
        return 1;
}

/* ---------------------------------------------------------------------- */
/* The saver thread */

struct kb_sbx_saver_s {
        kb_sbx_store_t *st;
        char *path;
        pthread_t thr;
        pthread_mutex_t lock;
        pthread_cond_t cond;
        int stop;
        uint64_t saved; /* store version last written */
        int failing;
};

/* Saves if the store changed since the last good save. 0 or -1. */
static int saver_tick(kb_sbx_saver_t *sv, int force)
{
        uint64_t v = atomic_load(&sv->st->version);

        if (!force && v == sv->saved && !sv->failing)
                return 0;
        if (kb_sbx_state_save(sv->st, sv->path) == -1) {
                sv->failing = 1;
                return -1;
        }
        if (sv->failing)
                kb_log_notice(FAC, "state file %s written again", sv->path);
        sv->failing = 0;
        sv->saved = v;
        return 0;
}

static void *saver_main(void *arg)
{
        kb_sbx_saver_t *sv = arg;

        pthread_mutex_lock(&sv->lock);
        while (!sv->stop) {
                struct timespec ts;
                pthread_mutex_unlock(&sv->lock);
                saver_tick(sv, 0);
                pthread_mutex_lock(&sv->lock);
                if (sv->stop)
                        break;
                clock_gettime(CLOCK_MONOTONIC, &ts);
                ts.tv_nsec += SAVE_INTERVAL_MS * 1000000L;
                if (ts.tv_nsec >= 1000000000L) {
                        ts.tv_sec++;
                        ts.tv_nsec -= 1000000000L;
                }
                pthread_cond_timedwait(&sv->cond, &sv->lock, &ts);
        }
        pthread_mutex_unlock(&sv->lock);
        return NULL;
}

kb_sbx_saver_t *kb_sbx_saver_start(kb_sbx_store_t *st, const char *path,
                                   char *errstr, size_t errstr_size)
{
        kb_sbx_saver_t *sv = calloc(1, sizeof(*sv));
        pthread_condattr_t ca;

        if (!sv || !(sv->path = strdup(path))) {
                free(sv);
                kb_snprintf(errstr, errstr_size, "out of memory");
                return NULL;
        }
        sv->st = st;
        /* write once at start: the share-token secret must be on disk before
         * the first token is handed out */
        if (saver_tick(sv, 1) == -1) {
                kb_snprintf(errstr, errstr_size,
                            "cannot write state file %s: %s", path,
                            strerror(errno));
                free(sv->path);
                free(sv);
                return NULL;
        }
        pthread_mutex_init(&sv->lock, NULL);
        pthread_condattr_init(&ca);
        pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
        pthread_cond_init(&sv->cond, &ca);
        pthread_condattr_destroy(&ca);
        if (pthread_create(&sv->thr, NULL, saver_main, sv) != 0) {
                kb_snprintf(errstr, errstr_size, "cannot start saver thread");
                pthread_cond_destroy(&sv->cond);
                pthread_mutex_destroy(&sv->lock);
                free(sv->path);
                free(sv);
                return NULL;
        }
        return sv;
}

int kb_sbx_saver_stop(kb_sbx_saver_t *sv)
{
        int rc;

        if (!sv)
                return 0;
        pthread_mutex_lock(&sv->lock);
        sv->stop = 1;
        pthread_cond_signal(&sv->cond);
        pthread_mutex_unlock(&sv->lock);
        pthread_join(sv->thr, NULL);
        rc = saver_tick(sv, 1);
        pthread_cond_destroy(&sv->cond);
        pthread_mutex_destroy(&sv->lock);
        free(sv->path);
        free(sv);
        return rc;
}
