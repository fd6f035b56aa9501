/* sandbox_store.c -- the sandbox's in-memory model and its JSON renderings */
#include "sandbox.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <sodium.h>

#include "json.h"

static const char *const status_user[KB_SBX_ST_COUNT] = {
        "Not Started", "In Progress", "In Review", "Approved",
        "Declined",    "Abandoned",   "Expired",   "Resubmitted",
};
static const char *const status_business[KB_SBX_ST_COUNT] = {
        "NOT_STARTED", "IN_PROGRESS", "IN_REVIEW", "APPROVED",
        "DECLINED",    "ABANDONED",   "EXPIRED",   "RESUBMITTED",
};

/* The documented verification arrays of each kind and the feature name a
 * non-empty one stands for. */
typedef struct {
        const char *key;
        const char *feature;
} data_key_t;

static const data_key_t keys_user[] = {
        { "id_verifications", "ID_VERIFICATION" },
        { "liveness_checks", "LIVENESS" },
        { "face_matches", "FACE_MATCH" },
        { "aml_screenings", "AML" },
        { "database_validations", "DATABASE_VALIDATION" },
        { "proof_of_address", "PROOF_OF_ADDRESS" },
        { "location_checks", "IP_ANALYSIS" },
        { "phone_verifications", "PHONE" },
        { "email_verifications", "EMAIL" },
};
static const data_key_t keys_business[] = {
        { "registry_checks", "REGISTRY" },
        { "key_people_checks", "KEY_PEOPLE" },
        { "document_verifications", "DOCUMENT_VERIFICATION" },
        { "aml_screenings", "AML" },
        { "questionnaires", "QUESTIONNAIRE" },
};

static const char empty_user[] =
    "\"id_verifications\":[],\"liveness_checks\":[],\"face_matches\":[],"
    "\"aml_screenings\":[],\"database_validations\":[],"
    "\"proof_of_address\":[],\"location_checks\":[],"
    "\"phone_verifications\":[],\"email_verifications\":[]";
static const char empty_business[] =
    "\"registry_checks\":[],\"key_people_checks\":[],"
    "\"document_verifications\":[],\"aml_screenings\":[],"
    "\"questionnaires\":[]";

static const struct {
        unsigned bit;
        const char *name;
} wf_features[KB_SBX_WF_NFEATURES] = {
        { KB_SBX_WF_LIVENESS, "LIVENESS" },
        { KB_SBX_WF_FACE_MATCH, "FACE_MATCH" },
        { KB_SBX_WF_AML, "AML" },
        { KB_SBX_WF_PHONE, "PHONE" },
        { KB_SBX_WF_EMAIL, "EMAIL" },
        { KB_SBX_WF_DATABASE, "DATABASE_VALIDATION" },
        { KB_SBX_WF_IP, "IP_ANALYSIS" },
        { KB_SBX_WF_NFC, "NFC" },
        { KB_SBX_WF_POA, "PROOF_OF_ADDRESS" },
};

const char *kb_sbx_status_name(int kind, int status)
{
        if (status < 0 || status >= KB_SBX_ST_COUNT)
                return "?";
        return kind == KB_SBX_BUSINESS ? status_business[status]
                                       : status_user[status];
}

int kb_sbx_status_parse(int kind, const char *s)
{
        const char *const *tab =
            kind == KB_SBX_BUSINESS ? status_business : status_user;
        int i;

        if (!s)
                return -1;
        for (i = 0; i < KB_SBX_ST_COUNT; i++)
                if (!strcmp(tab[i], s))
                        return i;
        return -1;
}

int kb_sbx_status_finished(int status)
{
        return status == KB_SBX_ST_APPROVED || status == KB_SBX_ST_DECLINED ||
               status == KB_SBX_ST_IN_REVIEW;
}

const char *kb_sbx_kind_name(int kind)
{
        return kind == KB_SBX_BUSINESS ? "business" : "user";
}

/* ---------------------------------------------------------------------- */
/* JSON writing */

int kb_sbx_jstr(kb_buf_t *b, const char *s)
{
        if (!s)
                return kb_buf_append(b, "null", 4);
        return kb_json_put_string(b, s, strlen(s));
}

int kb_sbx_jkey(kb_buf_t *b, const char *key)
{
        if (kb_sbx_jstr(b, key) == -1)
                return -1;
        return kb_buf_append(b, ":", 1);
}

void kb_sbx_iso8601(int64_t t, char out[32])
{
        struct tm tm;
        time_t tt = (time_t)t;

        /* snprintf, not strftime: no locale machinery on the hot path */
        if (!gmtime_r(&tt, &tm) || tm.tm_year + 1900 < 0 ||
            tm.tm_year + 1900 > 9999) {
                kb_strlcpy(out, "1970-01-01T00:00:00Z", 32);
                return;
        }
        /* the "% N" bounds let the compiler see every field fits */
        snprintf(out, 32, "%04u-%02u-%02uT%02u:%02u:%02uZ",
                 (unsigned)(tm.tm_year + 1900) % 10000u,
                 (unsigned)(tm.tm_mon + 1) % 100u, (unsigned)tm.tm_mday % 100u,
                 (unsigned)tm.tm_hour % 100u, (unsigned)tm.tm_min % 100u,
                 (unsigned)tm.tm_sec % 100u);
}

/* ---------------------------------------------------------------------- */
/* Store */

int kb_sbx_store_init(kb_sbx_store_t *st, uint64_t seed, int random_secret)
{
        memset(st, 0, sizeof(*st));
        if (pthread_mutex_init(&st->lock, NULL) != 0)
                return -1;
        kb_rng_seed(&st->rng, seed);
        if (random_secret) {
                randombytes_buf(st->secret, sizeof(st->secret));
        } else {
                size_t i;
                for (i = 0; i < sizeof(st->secret); i += 8) {
                        uint64_t r = kb_rng_next(&st->rng);
                        memcpy(st->secret + i, &r, 8);
                }
        }
        st->next_review_id = 1;
        atomic_init(&st->version, 0);
        st->apps_by_key = kb_hmap_new();
        st->apps_by_id = kb_hmap_new();
        st->sessions = kb_hmap_new();
        st->tokens = kb_hmap_new();
        st->workflows = kb_hmap_new();
        st->imported = kb_hmap_new();
        if (!st->apps_by_key || !st->apps_by_id || !st->sessions ||
            !st->tokens || !st->workflows || !st->imported) {
                kb_sbx_store_free(st);
                return -1;
        }
        return 0;
}

static void blob_release(kb_sbx_blob_t *blob)
{
        if (!blob || --blob->refcnt > 0)
                return;
        free(blob->data);
        free(blob->features);
        free(blob);
}

static void session_free(kb_sbx_session_t *s)
{
        size_t i;

        for (i = 0; i < s->nreviews; i++)
                free(s->reviews[i].note);
        free(s->reviews);
        free(s->vendor_data);
        free(s->metadata);
        free(s->callback);
        blob_release(s->blob);
        free(s);
}

static void app_free_contents(kb_sbx_app_t *app)
{
        kb_sbx_session_t *s, *next;
        kb_hmap_iter_t it = KB_HMAP_ITER_INIT;
        void *val;
        size_t i;

        for (s = app->head; s; s = next) {
                next = s->next;
                session_free(s);
        }
        app->head = app->tail = NULL;
        app->nsessions = 0;
        for (i = 0; i < app->nwfs; i++) {
                free(app->wfs[i]->label);
                free(app->wfs[i]);
        }
        free(app->wfs);
        app->wfs = NULL;
        app->nwfs = 0;
        for (i = 0; i < app->ndests; i++) {
                free(app->dests[i]->url);
                free(app->dests[i]);
        }
        free(app->dests);
        app->dests = NULL;
        app->ndests = 0;
        if (app->vd) {
                while (kb_hmap_next(app->vd, &it, NULL, NULL, &val))
                        free(val);
                kb_hmap_destroy(app->vd);
                app->vd = NULL;
        }
}

void kb_sbx_store_free(kb_sbx_store_t *st)
{
        size_t i;

        for (i = 0; i < st->napps; i++) {
                kb_sbx_app_t *app = st->apps[i];
                app_free_contents(app);
                kb_sbx_rl_key_free(&app->rl);
                free(app->name);
                free(app->webhook_url);
                sodium_memzero(app->key, sizeof(app->key));
                sodium_memzero(app->secret, sizeof(app->secret));
                free(app);
        }
        free(st->apps);
        kb_hmap_destroy(st->apps_by_key);
        kb_hmap_destroy(st->apps_by_id);
        kb_hmap_destroy(st->sessions);
        kb_hmap_destroy(st->tokens);
        kb_hmap_destroy(st->workflows);
        kb_hmap_destroy(st->imported);
        sodium_memzero(st->secret, sizeof(st->secret));
        pthread_mutex_destroy(&st->lock);
        memset(st, 0, sizeof(*st));
}

void kb_sbx_store_touch(kb_sbx_store_t *st)
{
        atomic_fetch_add(&st->version, 1);
}

void kb_sbx_store_random_str(kb_sbx_store_t *st, char *out, size_t nchars)
{
        static const char alpha[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
                                    "abcdefghijklmnopqrstuvwxyz0123456789";
        size_t i;

        for (i = 0; i < nchars; i++)
                out[i] = alpha[kb_rng_range(&st->rng, sizeof(alpha) - 1)];
        out[nchars] = '\0';
}

void kb_sbx_store_uuid(kb_sbx_store_t *st, char out[37])
{
        kb_rng_uuid4(&st->rng, out);
}

/* Appends @p p to a growable pointer array. */
static int ptr_push(void ***arr, size_t *n, void *p)
{
        void **na = realloc(*arr, (*n + 1) * sizeof(**arr));

        if (!na)
                return -1;
        na[(*n)++] = p;
        *arr = na;
        return 0;
}

static void ptr_remove(void **arr, size_t *n, const void *p)
{
        size_t i;

        for (i = 0; i < *n; i++) {
                if (arr[i] == p) {
                        memmove(arr + i, arr + i + 1,
                                (*n - i - 1) * sizeof(*arr));
                        (*n)--;
                        return;
                }
        }
}

static void app_new_secret(kb_sbx_store_t *st, kb_sbx_app_t *app)
{
        memcpy(app->secret, "whsec_", 6);
        kb_sbx_store_random_str(st, app->secret + 6, 40);
}

kb_sbx_app_t *kb_sbx_app_restore(kb_sbx_store_t *st, const char *id,
                                 const char *key, const char *secret,
                                 const char *name, int deleted,
                                 int64_t created_at)
{
        kb_sbx_app_t *app;

        if (strlen(id) >= sizeof(app->id) || strlen(key) >= sizeof(app->key) ||
            strlen(secret) >= sizeof(app->secret) ||
            kb_hmap_gets(st->apps_by_id, id) ||
            (!deleted && kb_hmap_gets(st->apps_by_key, key)))
                return NULL;
        app = calloc(1, sizeof(*app));
        if (!app)
                return NULL;
        app->name = strdup(name ? name : "");
        app->vd = kb_hmap_new();
        if (!app->name || !app->vd)
                goto fail;
        kb_strlcpy(app->id, id, sizeof(app->id));
        kb_strlcpy(app->key, key, sizeof(app->key));
        kb_strlcpy(app->secret, secret, sizeof(app->secret));
        kb_strlcpy(app->capture_method, "both", sizeof(app->capture_method));
        app->created_at = created_at;
        app->next_number = 1;
        app->deleted = deleted;
        if (st->napps == st->capps) {
                size_t nc = st->capps ? st->capps * 2 : 16;
                kb_sbx_app_t **na = realloc(st->apps, nc * sizeof(*na));
                if (!na)
                        goto fail;
                st->apps = na;
                st->capps = nc;
        }
        if (!deleted && kb_hmap_puts(st->apps_by_key, app->key, app) == -1)
                goto fail;
        if (kb_hmap_puts(st->apps_by_id, app->id, app) == -1) {
                kb_hmap_dels(st->apps_by_key, app->key);
                goto fail;
        }
        st->apps[st->napps++] = app;
        kb_sbx_store_touch(st);
        return app;
fail:
        kb_hmap_destroy(app->vd);
        free(app->name);
        free(app);
        return NULL;
}

kb_sbx_app_t *kb_sbx_app_create(kb_sbx_store_t *st, const char *name,
                                int64_t now)
{
        char id[37], key[41], secret[47];

        kb_sbx_store_uuid(st, id);
        kb_sbx_store_random_str(st, key, 40);
        memcpy(secret, "whsec_", 6);
        kb_sbx_store_random_str(st, secret + 6, 40);
        return kb_sbx_app_restore(st, id, key, secret, name, 0, now);
}

kb_sbx_app_t *kb_sbx_app_by_key(kb_sbx_store_t *st, const char *key)
{
        return kb_hmap_gets(st->apps_by_key, key);
}

kb_sbx_app_t *kb_sbx_app_by_id_any(kb_sbx_store_t *st, const char *id)
{
        return kb_hmap_gets(st->apps_by_id, id);
}

kb_sbx_app_t *kb_sbx_app_by_id(kb_sbx_store_t *st, const char *id)
{
        kb_sbx_app_t *app = kb_hmap_gets(st->apps_by_id, id);

        return app && !app->deleted ? app : NULL;
}

void kb_sbx_app_delete(kb_sbx_store_t *st, kb_sbx_app_t *app)
{
        kb_sbx_session_t *s;
        size_t i;

        if (app->deleted)
                return;
        for (s = app->head; s; s = s->next) {
                kb_hmap_dels(st->sessions, s->id);
                if (s->token[0])
                        kb_hmap_dels(st->tokens, s->token);
        }
        for (i = 0; i < app->nwfs; i++)
                kb_hmap_dels(st->workflows, app->wfs[i]->id);
        app_free_contents(app);
        kb_hmap_dels(st->apps_by_key, app->key);
        app->deleted = 1;
        kb_sbx_store_touch(st);
}

void kb_sbx_app_rotate_secret(kb_sbx_store_t *st, kb_sbx_app_t *app)
{
        app_new_secret(st, app);
        kb_sbx_store_touch(st);
}

kb_sbx_dest_t *kb_sbx_dest_restore(kb_sbx_store_t *st, kb_sbx_app_t *app,
                                   const char *id, const char *url,
                                   unsigned events, int64_t created_at)
{
        kb_sbx_dest_t *d = calloc(1, sizeof(*d));

        if (!d)
                return NULL;
        d->url = strdup(url);
        if (!d->url || ptr_push((void ***)&app->dests, &app->ndests, d) == -1) {
                free(d->url);
                free(d);
                return NULL;
        }
        kb_strlcpy(d->id, id, sizeof(d->id));
        d->events = events;
        d->created_at = created_at;
        kb_sbx_store_touch(st);
        return d;
}

kb_sbx_dest_t *kb_sbx_dest_add(kb_sbx_store_t *st, kb_sbx_app_t *app,
                               const char *url, unsigned events, int64_t now)
{
        char id[37];

        kb_sbx_store_uuid(st, id);
        return kb_sbx_dest_restore(st, app, id, url, events, now);
}

int kb_sbx_dest_delete(kb_sbx_store_t *st, kb_sbx_app_t *app, const char *id)
{
        size_t i;

        for (i = 0; i < app->ndests; i++) {
                kb_sbx_dest_t *d = app->dests[i];
                if (strcmp(d->id, id) != 0)
                        continue;
                ptr_remove((void **)app->dests, &app->ndests, d);
                free(d->url);
                free(d);
                kb_sbx_store_touch(st);
                return 0;
        }
        return -1;
}

kb_sbx_workflow_t *kb_sbx_workflow_restore(kb_sbx_store_t *st,
                                           kb_sbx_app_t *app, const char *id,
                                           const char *label, int kind,
                                           int is_default, unsigned features,
                                           int64_t created_at)
{
        kb_sbx_workflow_t *wf;
        size_t i;

        if (strlen(id) >= sizeof(wf->id) || kb_hmap_gets(st->workflows, id))
                return NULL;
        wf = calloc(1, sizeof(*wf));
        if (!wf)
                return NULL;
        kb_strlcpy(wf->id, id, sizeof(wf->id));
        wf->label = strdup(label);
        if (!wf->label)
                goto fail;
        wf->app = app;
        wf->kind = kind;
        wf->is_default = is_default;
        wf->features = features;
        wf->created_at = created_at;
        if (kb_hmap_puts(st->workflows, wf->id, wf) == -1)
                goto fail;
        if (ptr_push((void ***)&app->wfs, &app->nwfs, wf) == -1) {
                kb_hmap_dels(st->workflows, wf->id);
                goto fail;
        }
        /* one default workflow per application */
        if (is_default)
                for (i = 0; i + 1 < app->nwfs; i++)
                        app->wfs[i]->is_default = 0;
        kb_sbx_store_touch(st);
        return wf;
fail:
        free(wf->label);
        free(wf);
        return NULL;
}

kb_sbx_workflow_t *kb_sbx_workflow_create(kb_sbx_store_t *st, kb_sbx_app_t *app,
                                          const char *label, int kind,
                                          int is_default, unsigned features,
                                          int64_t now)
{
        char id[37];

        kb_sbx_store_uuid(st, id);
        return kb_sbx_workflow_restore(st, app, id, label, kind, is_default,
                                       features, now);
}

kb_sbx_workflow_t *kb_sbx_workflow_get(kb_sbx_store_t *st, kb_sbx_app_t *app,
                                       const char *id)
{
        kb_sbx_workflow_t *wf = kb_hmap_gets(st->workflows, id);

        return wf && wf->app == app ? wf : NULL;
}

void kb_sbx_workflow_delete(kb_sbx_store_t *st, kb_sbx_workflow_t *wf)
{
        kb_hmap_dels(st->workflows, wf->id);
        ptr_remove((void **)wf->app->wfs, &wf->app->nwfs, wf);
        free(wf->label);
        free(wf);
        kb_sbx_store_touch(st);
}

/* The vendor_data record of @p app, created when absent. */
static kb_sbx_vd_t *vd_get(kb_sbx_app_t *app, const char *vendor_data,
                           int create)
{
        kb_sbx_vd_t *vd = kb_hmap_gets(app->vd, vendor_data);
        size_t len;

        if (vd || !create)
                return vd;
        len = strlen(vendor_data);
        vd = calloc(1, sizeof(*vd) + len + 1);
        if (!vd)
                return NULL;
        memcpy(vd->vendor_data, vendor_data, len + 1);
        if (kb_hmap_put(app->vd, vendor_data, len, vd) == -1) {
                free(vd);
                return NULL;
        }
        return vd;
}

/* Links @p s at the tail of the app list and of its vendor_data list. */
static void session_link(kb_sbx_app_t *app, kb_sbx_session_t *s,
                         kb_sbx_vd_t *vd)
{
        s->prev = app->tail;
        s->next = NULL;
        if (app->tail)
                app->tail->next = s;
        else
                app->head = s;
        app->tail = s;
        app->nsessions++;
        if (vd) {
                s->vd_prev = vd->tail;
                s->vd_next = NULL;
                if (vd->tail)
                        vd->tail->vd_next = s;
                else
                        vd->head = s;
                vd->tail = s;
                vd->count++;
        }
}

static void session_unlink(kb_sbx_app_t *app, kb_sbx_session_t *s)
{
        kb_sbx_vd_t *vd =
            s->vendor_data ? vd_get(app, s->vendor_data, 0) : NULL;

        if (s->prev)
                s->prev->next = s->next;
        else
                app->head = s->next;
        if (s->next)
                s->next->prev = s->prev;
        else
                app->tail = s->prev;
        app->nsessions--;
        if (vd) {
                if (s->vd_prev)
                        s->vd_prev->vd_next = s->vd_next;
                else
                        vd->head = s->vd_next;
                if (s->vd_next)
                        s->vd_next->vd_prev = s->vd_prev;
                else
                        vd->tail = s->vd_prev;
                vd->count--;
        }
}

/* Creates and links a session with the given identity. */
static kb_sbx_session_t *
session_insert(kb_sbx_store_t *st, kb_sbx_app_t *app, const char *id,
               const char *token, int64_t number, const char *workflow_id,
               int kind, int status, const char *vendor_data,
               const char *metadata, const char *callback, int64_t now)
{
        kb_sbx_session_t *s = calloc(1, sizeof(*s));
        kb_sbx_vd_t *vd = NULL;

        if (!s)
                return NULL;
        if ((vendor_data && !(s->vendor_data = strdup(vendor_data))) ||
            (metadata && !(s->metadata = strdup(metadata))) ||
            (callback && !(s->callback = strdup(callback))))
                goto fail;
        if (vendor_data && !(vd = vd_get(app, vendor_data, 1)))
                goto fail;
        kb_strlcpy(s->id, id, sizeof(s->id));
        kb_strlcpy(s->token, token ? token : "", sizeof(s->token));
        kb_strlcpy(s->workflow_id, workflow_id, sizeof(s->workflow_id));
        s->app = app;
        s->kind = kind;
        s->status = status;
        s->created_at = now;
        s->number = number;
        if (kb_hmap_puts(st->sessions, s->id, s) == -1)
                goto fail;
        if (s->token[0] && kb_hmap_puts(st->tokens, s->token, s) == -1) {
                kb_hmap_dels(st->sessions, s->id);
                goto fail;
        }
        session_link(app, s, vd);
        kb_sbx_store_touch(st);
        return s;
fail:
        session_free(s);
        return NULL;
}

kb_sbx_session_t *kb_sbx_session_create(kb_sbx_store_t *st, kb_sbx_app_t *app,
                                        const char *workflow_id, int kind,
                                        int status, const char *vendor_data,
                                        const char *metadata,
                                        const char *callback, int with_token,
                                        int64_t now)
{
        kb_sbx_session_t *s;
        char id[37], token[33] = "";

        kb_sbx_store_uuid(st, id);
        if (with_token)
                kb_sbx_store_random_str(st, token, 32);
        s = session_insert(st, app, id, token, app->next_number, workflow_id,
                           kind, status, vendor_data, metadata, callback, now);
        if (!s)
                return NULL;
        app->next_number++;
        /* the User (KYC) or Business (KYB) entity for vendor_data */
        if (vendor_data)
                kb_sbx_entity_restore(app, vendor_data, kind, now);
        return s;
}

kb_sbx_session_t *kb_sbx_session_restore(
    kb_sbx_store_t *st, kb_sbx_app_t *app, const char *id, const char *token,
    int64_t number, const char *workflow_id, int kind, int status,
    const char *vendor_data, const char *metadata, const char *callback,
    const char *shared_from, int64_t created_at)
{
        kb_sbx_session_t *s;

        if (kb_hmap_gets(st->sessions, id) ||
            (token && *token && kb_hmap_gets(st->tokens, token)))
                return NULL;
        s = session_insert(st, app, id, token, number, workflow_id, kind,
                           status, vendor_data, metadata, callback, created_at);
        if (s && shared_from)
                kb_strlcpy(s->shared_from, shared_from, sizeof(s->shared_from));
        if (s && number >= app->next_number)
                app->next_number = number + 1;
        return s;
}

int kb_sbx_entity_restore(kb_sbx_app_t *app, const char *vendor_data, int kind,
                          int64_t created_at)
{
        kb_sbx_vd_t *vd = vd_get(app, vendor_data, 1);

        if (!vd)
                return -1;
        if (kind == KB_SBX_BUSINESS && !vd->has_business) {
                vd->has_business = 1;
                vd->business_created_at = created_at;
        } else if (kind == KB_SBX_USER && !vd->has_user) {
                vd->has_user = 1;
                vd->user_created_at = created_at;
        }
        return 0;
}

int kb_sbx_review_restore(kb_sbx_store_t *st, kb_sbx_session_t *s, int64_t id,
                          int old_status, int new_status, const char *note,
                          int64_t created_at)
{
        kb_sbx_review_t *nr, *r;

        nr = realloc(s->reviews, (s->nreviews + 1) * sizeof(*nr));
        if (!nr)
                return -1;
        s->reviews = nr;
        r = &nr[s->nreviews];
        r->note = NULL;
        if (note && !(r->note = strdup(note)))
                return -1;
        r->id = id;
        r->old_status = old_status;
        r->new_status = new_status;
        r->created_at = created_at;
        s->nreviews++;
        if (id >= st->next_review_id)
                st->next_review_id = id + 1;
        return 0;
}

kb_sbx_session_t *kb_sbx_session_get(kb_sbx_store_t *st, kb_sbx_app_t *app,
                                     const char *id)
{
        kb_sbx_session_t *s = kb_hmap_gets(st->sessions, id);

        if (s && app && s->app != app)
                return NULL;
        return s;
}

kb_sbx_session_t *kb_sbx_session_by_token(kb_sbx_store_t *st, const char *token)
{
        return kb_hmap_gets(st->tokens, token);
}

void kb_sbx_session_delete(kb_sbx_store_t *st, kb_sbx_session_t *s)
{
        kb_hmap_dels(st->sessions, s->id);
        if (s->token[0])
                kb_hmap_dels(st->tokens, s->token);
        session_unlink(s->app, s);
        session_free(s);
        kb_sbx_store_touch(st);
}

int kb_sbx_session_set_status(kb_sbx_store_t *st, kb_sbx_session_t *s,
                              int status, const char *note, int64_t now)
{
        if (kb_sbx_review_restore(st, s, st->next_review_id, s->status, status,
                                  note, now) == -1)
                return -1;
        s->status = status;
        kb_sbx_store_touch(st);
        return 0;
}

static int is_documented_key(const data_key_t *keys, size_t n, const char *k)
{
        size_t i;

        for (i = 0; i < n; i++)
                if (!strcmp(keys[i].key, k))
                        return 1;
        return 0;
}

kb_sbx_blob_t *kb_sbx_blob_new(int kind, json_object *data)
{
        const data_key_t *keys =
            kind == KB_SBX_BUSINESS ? keys_business : keys_user;
        size_t nkeys = kind == KB_SBX_BUSINESS ? KB_ARRAY_SIZE(keys_business)
                                               : KB_ARRAY_SIZE(keys_user);
        kb_buf_t d = KB_BUF_INIT, f = KB_BUF_INIT;
        kb_sbx_blob_t *blob;
        size_t i, nfeat = 0;

        if (kb_buf_puts(&f, "[") == -1)
                goto fail;
        for (i = 0; i < nkeys; i++) {
                json_object *v = kb_json_get(data, keys[i].key);
                const char *txt = "[]";
                int nonempty = 0;

                if (v && json_object_is_type(v, json_type_array)) {
                        txt = kb_json_str(v, NULL);
                        nonempty = json_object_array_length(v) > 0;
                }
                if ((i && kb_buf_puts(&d, ",") == -1) ||
                    kb_sbx_jkey(&d, keys[i].key) == -1 ||
                    kb_buf_puts(&d, txt) == -1)
                        goto fail;
                if (nonempty && ((nfeat++ && kb_buf_puts(&f, ",") == -1) ||
                                 kb_sbx_jstr(&f, keys[i].feature) == -1))
                        goto fail;
        }
        /* arrays beyond the documented ones are kept as they are */
        json_object_object_foreach(data, k, v)
        {
                if (!json_object_is_type(v, json_type_array) ||
                    is_documented_key(keys, nkeys, k))
                        continue;
                if (kb_buf_puts(&d, ",") == -1 || kb_sbx_jkey(&d, k) == -1 ||
                    kb_buf_puts(&d, kb_json_str(v, NULL)) == -1)
                        goto fail;
        }
        if (kb_buf_puts(&f, "]") == -1)
                goto fail;
        blob = calloc(1, sizeof(*blob));
        if (!blob)
                goto fail;
        blob->refcnt = 1;
        blob->kind = kind;
        blob->data = kb_buf_steal(&d, &blob->len);
        blob->features = kb_buf_steal(&f, &blob->features_len);
        if (!blob->data || !blob->features) {
                free(blob->data);
                free(blob->features);
                free(blob);
                goto fail;
        }
        return blob;
fail:
        kb_buf_free(&d, 0);
        kb_buf_free(&f, 0);
        return NULL;
}

void kb_sbx_blob_release(kb_sbx_blob_t *blob)
{
        blob_release(blob);
}

void kb_sbx_session_set_blob(kb_sbx_session_t *s, kb_sbx_blob_t *blob)
{
        if (blob)
                blob->refcnt++;
        blob_release(s->blob);
        s->blob = blob;
}

int kb_sbx_session_set_data(kb_sbx_store_t *st, kb_sbx_session_t *s,
                            json_object *data)
{
        kb_sbx_blob_t *blob = kb_sbx_blob_new(s->kind, data);

        if (!blob)
                return -1;
        blob_release(s->blob);
        s->blob = blob;
        kb_sbx_store_touch(st);
        return 0;
}

void kb_sbx_session_copy_data(kb_sbx_session_t *dst,
                              const kb_sbx_session_t *src)
{
        blob_release(dst->blob);
        dst->blob = src->blob;
        if (dst->blob)
                dst->blob->refcnt++;
}

/* Imported-token set key: 32 bytes of hash, then the application id. */
static size_t imported_key(unsigned char key[32 + 36],
                           const unsigned char hash[32],
                           const kb_sbx_app_t *app)
{
        memcpy(key, hash, 32);
        memcpy(key + 32, app->id, 36);
        return 32 + 36;
}

int kb_sbx_imported_has(kb_sbx_store_t *st, const unsigned char hash[32],
                        const kb_sbx_app_t *app)
{
        unsigned char key[32 + 36];
        size_t n = imported_key(key, hash, app);

        return kb_hmap_get(st->imported, key, n) != NULL;
}

int kb_sbx_imported_add(kb_sbx_store_t *st, const unsigned char hash[32],
                        const kb_sbx_app_t *app)
{
        unsigned char key[32 + 36];
        size_t n = imported_key(key, hash, app);

        /* the value only has to be non-NULL */
        if (kb_hmap_put(st->imported, key, n, st) == -1)
                return -1;
        kb_sbx_store_touch(st);
        return 0;
}

/* ---------------------------------------------------------------------- */
/* Renderings */

static int render_time(kb_buf_t *b, const char *key, int64_t t)
{
        char iso[32];

        kb_sbx_iso8601(t, iso);
        if (kb_sbx_jkey(b, key) == -1)
                return -1;
        return kb_sbx_jstr(b, iso);
}

static int render_common(kb_buf_t *b, const kb_sbx_session_t *s)
{
        if (kb_buf_printf(b,
                          "{\"session_id\":\"%s\",\"session_number\":%lld,"
                          "\"session_kind\":\"%s\",\"status\":",
                          s->id, (long long)s->number,
                          kb_sbx_kind_name(s->kind)) == -1 ||
            kb_sbx_jstr(b, kb_sbx_status_name(s->kind, s->status)) == -1 ||
            kb_buf_printf(b, ",\"workflow_id\":\"%s\",\"vendor_data\":",
                          s->workflow_id) == -1 ||
            kb_sbx_jstr(b, s->vendor_data) == -1 ||
            kb_buf_puts(b, ",\"shared_from_session\":") == -1 ||
            kb_sbx_jstr(b, s->shared_from[0] ? s->shared_from : NULL) == -1 ||
            kb_buf_puts(b, ",") == -1 ||
            render_time(b, "created_at", s->created_at) == -1)
                return -1;
        return 0;
}

static int render_review(kb_buf_t *b, const kb_sbx_session_t *s,
                         const kb_sbx_review_t *r)
{
        if (kb_buf_printf(b,
                          "{\"id\":%lld,\"action\":\"status_change\","
                          "\"old_status\":",
                          (long long)r->id) == -1 ||
            kb_sbx_jstr(b, kb_sbx_status_name(s->kind, r->old_status)) == -1 ||
            kb_buf_puts(b, ",\"new_status\":") == -1 ||
            kb_sbx_jstr(b, kb_sbx_status_name(s->kind, r->new_status)) == -1 ||
            kb_buf_puts(b, ",\"note\":") == -1 ||
            kb_sbx_jstr(b, r->note) == -1 || kb_buf_puts(b, ",") == -1 ||
            render_time(b, "created_at", r->created_at) == -1 ||
            kb_buf_puts(b, "}") == -1)
                return -1;
        return 0;
}

int kb_sbx_render_session(kb_buf_t *b, const kb_sbx_session_t *s,
                          unsigned flags)
{
        size_t i;

        if (render_common(b, s) == -1)
                return -1;
        if (flags & KB_SBX_R_DECISION) {
                if (kb_buf_puts(b, ",\"metadata\":") == -1 ||
                    kb_buf_puts(b, s->metadata ? s->metadata : "null") == -1 ||
                    kb_buf_puts(b, ",\"callback\":") == -1 ||
                    kb_sbx_jstr(b, s->callback) == -1 ||
                    kb_buf_puts(b, ",\"features\":") == -1 ||
                    kb_buf_puts(b, s->blob ? s->blob->features : "[]") == -1 ||
                    kb_buf_puts(b, ",\"reviews\":[") == -1)
                        return -1;
                for (i = 0; i < s->nreviews; i++)
                        if ((i && kb_buf_puts(b, ",") == -1) ||
                            render_review(b, s, &s->reviews[i]) == -1)
                                return -1;
                if (kb_buf_puts(b, "]") == -1)
                        return -1;
        }
        if (flags & KB_SBX_R_DATA) {
                const char *d = s->blob                      ? s->blob->data
                                : s->kind == KB_SBX_BUSINESS ? empty_business
                                                             : empty_user;
                if (kb_buf_puts(b, ",") == -1 || kb_buf_puts(b, d) == -1)
                        return -1;
        }
        return kb_buf_puts(b, "}");
}

int kb_sbx_render_session_summary(kb_buf_t *b, const kb_sbx_session_t *s)
{
        if (render_common(b, s) == -1)
                return -1;
        return kb_buf_puts(b, "}");
}

int kb_sbx_render_workflow(kb_buf_t *b, const kb_sbx_workflow_t *wf)
{
        size_t i;

        if (kb_buf_printf(b, "{\"uuid\":\"%s\",\"workflow_label\":", wf->id) ==
                -1 ||
            kb_sbx_jstr(b, wf->label) == -1 ||
            kb_buf_printf(
                b,
                ",\"workflow_type\":\"%s\",\"is_default\":%s,"
                "\"features\":[\"%s\"",
                wf->kind == KB_SBX_BUSINESS ? "kyb" : "kyc",
                wf->is_default ? "true" : "false",
                wf->kind == KB_SBX_BUSINESS ? "KYB" : "ID_VERIFICATION") == -1)
                return -1;
        for (i = 0; i < KB_SBX_WF_NFEATURES; i++)
                if ((wf->features & wf_features[i].bit) &&
                    kb_buf_printf(b, ",\"%s\"", wf_features[i].name) == -1)
                        return -1;
        if (kb_buf_puts(b, "],") == -1 ||
            render_time(b, "created_at", wf->created_at) == -1)
                return -1;
        return kb_buf_puts(b, "}");
}

int kb_sbx_render_webhook_config(kb_buf_t *b, const kb_sbx_app_t *app)
{
        if (kb_buf_puts(b, "{\"webhook_url\":") == -1 ||
            kb_sbx_jstr(b, app->webhook_url) == -1 ||
            kb_buf_puts(b, ",\"webhook_version\":\"v3\","
                           "\"secret_shared_key\":") == -1 ||
            kb_sbx_jstr(b, app->secret) == -1 ||
            kb_buf_puts(b, ",\"capture_method\":") == -1 ||
            kb_sbx_jstr(b, app->capture_method) == -1)
                return -1;
        if (app->retention_months > 0)
                return kb_buf_printf(b, ",\"data_retention_months\":%lld}",
                                     (long long)app->retention_months);
        return kb_buf_puts(b, ",\"data_retention_months\":null}");
}

int kb_sbx_render_dest(kb_buf_t *b, const kb_sbx_dest_t *d)
{
        int n = 0;

        if (kb_buf_printf(b, "{\"uuid\":\"%s\",\"url\":", d->id) == -1 ||
            kb_sbx_jstr(b, d->url) == -1 ||
            kb_buf_puts(b, ",\"subscribed_events\":[") == -1)
                return -1;
        if ((d->events & KB_SBX_EV_STATUS_UPDATED) &&
            kb_buf_printf(b, "%s\"status.updated\"", n++ ? "," : "") == -1)
                return -1;
        if ((d->events & KB_SBX_EV_DATA_UPDATED) &&
            kb_buf_printf(b, "%s\"data.updated\"", n++ ? "," : "") == -1)
                return -1;
        if (kb_buf_puts(b, "],") == -1 ||
            render_time(b, "created_at", d->created_at) == -1)
                return -1;
        return kb_buf_puts(b, "}");
}
