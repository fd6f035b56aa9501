/* sandbox_extras.c -- the /sandbox/ handlers: apps, completion, faults, clock
 */
#include "sandbox.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "canon.h"
#include "json.h"
#include "log.h"

#define FAC "sandbox"

#define LOCK(req)   pthread_mutex_lock(&(req)->sbx->store.lock)
#define UNLOCK(req) pthread_mutex_unlock(&(req)->sbx->store.lock)

#define NAME_MAX_LEN     200
#define LATENCY_MAX_MS   60000
#define CLOCK_OFFSET_MAX (100LL * 366 * 86400)

/* Rejects members of @p obj not listed in @p allowed (NULL-terminated):
 * a typo in a test's knob should fail loudly, not be ignored. */
static int only_keys(json_object *obj, const char *const *allowed,
                     kb_sbx_resp_t *resp)
{
        json_object_object_foreach(obj, key, val)
        {
                size_t i;
                (void)val;
                for (i = 0; allowed[i]; i++)
                        if (!strcmp(allowed[i], key))
                                break;
                if (!allowed[i]) {
                        kb_sbx_resp_error(resp, 400, "Unknown field \"%s\".",
                                          key);
                        return -1;
                }
        }
        return 0;
}

/* Optional integer member in [min, max]: 0 absent, 1 present, -1 (400). */
static int opt_int(json_object *obj, const char *key, int64_t min, int64_t max,
                   int64_t *out, kb_sbx_resp_t *resp)
{
        json_object *v;

        if (!json_object_object_get_ex(obj, key, &v))
                return 0;
        if (!v || kb_json_get_i64(obj, key, out) == -1) {
                kb_sbx_resp_error(resp, 400, "%s: A valid integer is required.",
                                  key);
                return -1;
        }
        if (*out < min || *out > max) {
                kb_sbx_resp_error(resp, 400,
                                  "%s: Must be between %lld and %lld.", key,
                                  (long long)min, (long long)max);
                return -1;
        }
        return 1;
}

/* Optional boolean member @p key: 0 absent, 1 present, -1 (400). */
static int opt_bool(json_object *obj, const char *key, int *out,
                    kb_sbx_resp_t *resp)
{
        json_object *v;

        if (!json_object_object_get_ex(obj, key, &v))
                return 0;
        if (!v || !json_object_is_type(v, json_type_boolean)) {
                kb_sbx_resp_error(resp, 400, "%s: Must be true or false.", key);
                return -1;
        }
        *out = json_object_get_boolean(v) ? 1 : 0;
        return 1;
}

/* ---------------------------------------------------------------------- */
/* Applications */

static int render_app(kb_buf_t *b, const kb_sbx_app_t *app)
{
        if (kb_buf_printf(b,
                          "{\"application_id\":\"%s\",\"api_key\":\"%s\","
                          "\"name\":",
                          app->id, app->key) == -1 ||
            kb_sbx_jstr(b, app->name) == -1)
                return -1;
        return kb_buf_puts(b, "}");
}

void kb_sbx_h_app_create(kb_sbx_req_t *req, kb_sbx_resp_t *resp)
{
        static const char *const allowed[] = { "name", NULL };
        json_object *obj = kb_sbx_req_json(req, resp), *v;
        const char *name = "Sandbox application";
        kb_sbx_app_t *app;

        if (!obj)
                return;
        if (only_keys(obj, allowed, resp) == -1)
                goto out;
        if (json_object_object_get_ex(obj, "name", &v)) {
                if (!v || !json_object_is_type(v, json_type_string) ||
                    json_object_get_string_len(v) > NAME_MAX_LEN) {
                        kb_sbx_resp_error(resp, 400,
                                          "name: Must be a string of at most "
                                          "%d bytes.",
                                          NAME_MAX_LEN);
                        goto out;
                }
                name = json_object_get_string(v);
        }
        LOCK(req);
        app = kb_sbx_app_create(&req->sbx->store, name, req->now);
        if (!app || render_app(&resp->body, app) == -1) {
                UNLOCK(req);
                kb_sbx_resp_error(resp, 500, "Out of memory.");
                goto out;
        }
        kb_log_info(FAC, "application %s created", app->id);
        UNLOCK(req);
        kb_sbx_resp_json(resp, 201);
out:
        json_object_put(obj);
}

void kb_sbx_h_app_list(kb_sbx_req_t *req, kb_sbx_resp_t *resp)
{
        kb_sbx_store_t *st = &req->sbx->store;
        size_t i, n = 0;
        int rc;

        LOCK(req);
        rc = kb_buf_puts(&resp->body, "[");
        for (i = 0; rc == 0 && i < st->napps; i++) {
                if (st->apps[i]->deleted)
                        continue;
                if (n++)
                        rc = kb_buf_puts(&resp->body, ",");
                if (rc == 0)
                        rc = render_app(&resp->body, st->apps[i]);
        }
        UNLOCK(req);
        if (rc == -1 || kb_buf_puts(&resp->body, "]") == -1)
                kb_buf_free(&resp->body, 0);
        kb_sbx_resp_json(resp, 200);
}

void kb_sbx_h_app_delete(kb_sbx_req_t *req, kb_sbx_resp_t *resp)
{
        kb_sbx_app_t *app;

        LOCK(req);
        app = kb_sbx_app_by_id(&req->sbx->store, req->id);
        if (!app) {
                UNLOCK(req);
                kb_sbx_resp_error(resp, 404, "Application not found.");
                return;
        }
        kb_sbx_app_delete(&req->sbx->store, app);
        kb_log_info(FAC, "application %s deleted", app->id);
        UNLOCK(req);
        kb_sbx_resp_json(resp, 204);
}

/* ---------------------------------------------------------------------- */
/* Completing a session with synthetic verification data */

void kb_sbx_h_session_complete(kb_sbx_req_t *req, kb_sbx_resp_t *resp)
{
        static const char *const allowed[] = { "status", NULL };
        kb_sbx_store_t *st = &req->sbx->store;
        json_object *obj = NULL, *data = NULL, *v;
        kb_sbx_session_t *s;
        const char *status_s;
        int status, kind;

        if (kb_sbx_lock_app(req, resp) == -1)
                goto out;
        s = kb_sbx_session_get(st, req->app, req->id);
        kind = s ? s->kind : KB_SBX_USER;
        UNLOCK(req);
        if (!s) {
                kb_sbx_resp_error(resp, 404, "Session not found.");
                return;
        }
        obj = kb_sbx_req_json(req, resp);
        if (!obj)
                return;
        if (only_keys(obj, allowed, resp) == -1)
                goto out;
        status_s = kb_sbx_status_name(kind, KB_SBX_ST_APPROVED);
        if (json_object_object_get_ex(obj, "status", &v)) {
                if (!v || !json_object_is_type(v, json_type_string)) {
                        kb_sbx_resp_error(resp, 400,
                                          "status: Not a valid string.");
                        goto out;
                }
                status_s = json_object_get_string(v);
        }
        status = kb_sbx_status_parse(kind, status_s);
        if (status < 0 || !kb_sbx_status_finished(status)) {
                kb_sbx_resp_error(
                    resp, 400,
                    "status: A %s session completes as %s, %s or %s.",
                    kb_sbx_kind_name(kind),
                    kb_sbx_status_name(kind, KB_SBX_ST_APPROVED),
                    kb_sbx_status_name(kind, KB_SBX_ST_DECLINED),
                    kb_sbx_status_name(kind, KB_SBX_ST_IN_REVIEW));
                goto out;
        }
        s = kb_sbx_lock_session(req, resp);
        if (!s)
                goto out;
        data = json_object_new_object();
        if (!data || kb_json_add_str(data, "session_id", s->id) ||
            kb_json_add_str(data, "session_kind", kb_sbx_kind_name(kind)) ||
            kb_json_add_str(data, "status", status_s) ||
            (s->vendor_data &&
             kb_json_add_str(data, "vendor_data", s->vendor_data)) ||
            kb_sbx_synth_fill(data, kind, status_s, &st->rng) != 0 ||
            kb_sbx_session_set_data(st, s, data) == -1 ||
            kb_sbx_session_set_status(st, s, status, "Completed in the sandbox",
                                      req->now) == -1 ||
            kb_sbx_render_session(&resp->body, s,
                                  KB_SBX_R_DATA | KB_SBX_R_DECISION) == -1) {
                UNLOCK(req);
                kb_sbx_resp_error(resp, 500,
                                  "Cannot generate the verification data.");
                goto out;
        }
        kb_sbx_fire_event(req->sbx, s, KB_SBX_EV_STATUS_UPDATED);
        UNLOCK(req);
        kb_sbx_resp_json(resp, 200);
out:
        json_object_put(data);
        json_object_put(obj);
}

/* ---------------------------------------------------------------------- */
/* Entities (User / Business records created per vendor_data) */

typedef struct {
        const char *vendor_data;
        const char *type;
        int64_t created_at;
} entity_t;

static int entity_cmp(const void *a, const void *b)
{
        const entity_t *x = a, *y = b;
        int c;

        if (x->created_at != y->created_at)
                return x->created_at < y->created_at ? -1 : 1;
        c = strcmp(x->vendor_data, y->vendor_data);
        return c ? c : strcmp(x->type, y->type);
}

void kb_sbx_h_entities(kb_sbx_req_t *req, kb_sbx_resp_t *resp)
{
        const char *only = kb_sbx_req_query(req, "vendor_data");
        kb_hmap_iter_t it = KB_HMAP_ITER_INIT;
        entity_t *ents = NULL;
        size_t n = 0, cap, i;
        void *val;
        int rc = 0;

        if (only && !*only)
                only = NULL;
        if (kb_sbx_lock_app(req, resp) == -1)
                return;
        cap = 2 * kb_hmap_count(req->app->vd) + 1;
        ents = calloc(cap, sizeof(*ents));
        if (!ents) {
                UNLOCK(req);
                kb_sbx_resp_error(resp, 500, "Out of memory.");
                return;
        }
        while (kb_hmap_next(req->app->vd, &it, NULL, NULL, &val)) {
                kb_sbx_vd_t *vd = val;
                if (only && strcmp(only, vd->vendor_data))
                        continue;
                if (vd->has_user)
                        ents[n++] = (entity_t){ vd->vendor_data, "user",
                                                vd->user_created_at };
                if (vd->has_business)
                        ents[n++] = (entity_t){ vd->vendor_data, "business",
                                                vd->business_created_at };
        }
        qsort(ents, n, sizeof(*ents), entity_cmp);
        rc = kb_buf_printf(&resp->body, "{\"count\":%zu,\"results\":[", n);
        for (i = 0; rc == 0 && i < n; i++) {
                char iso[32];
                kb_sbx_iso8601(ents[i].created_at, iso);
                if ((i && kb_buf_puts(&resp->body, ",") == -1) ||
                    kb_buf_puts(&resp->body, "{\"vendor_data\":") == -1 ||
                    kb_sbx_jstr(&resp->body, ents[i].vendor_data) == -1 ||
                    kb_buf_printf(&resp->body,
                                  ",\"entity_type\":\"%s\","
                                  "\"created_at\":\"%s\"}",
                                  ents[i].type, iso) == -1)
                        rc = -1;
        }
        UNLOCK(req);
        free(ents);
        if (rc == -1 || kb_buf_puts(&resp->body, "]}") == -1)
                kb_buf_free(&resp->body, 0);
        kb_sbx_resp_json(resp, 200);
}

/* ---------------------------------------------------------------------- */
/* Fault injection */

void kb_sbx_faults_init(kb_sbx_faults_t *f, uint64_t seed)
{
        memset(f, 0, sizeof(*f));
        pthread_mutex_init(&f->lock, NULL);
        atomic_init(&f->active, 0);
        /* a stream of its own, so faults do not shift the ids */
        kb_rng_seed(&f->rng, seed ^ 0x9e3779b97f4a7c15ULL);
}

void kb_sbx_faults_destroy(kb_sbx_faults_t *f)
{
        free(f->v);
        f->v = NULL;
        f->n = 0;
        pthread_mutex_destroy(&f->lock);
}

/* A uniform draw in [0, 1) from the fault stream (lock held). */
static double faults_uniform(kb_sbx_faults_t *f)
{
        /* 53 random bits -> [0, 1) */
        return (double)(kb_rng_next(&f->rng) >> 11) *
               (1.0 / 9007199254740992.0);
}

/* Does the request path @p path match the fault path @p pat: equal, or
 * equal but for each "{}" of @p pat, which stands for one non-empty path
 * segment ("/v3/session/{}/share/")? */
static int fault_path_match(const char *pat, const char *path)
{
        while (*pat) {
                if (pat[0] == '{' && pat[1] == '}') {
                        if (!*path || *path == '/')
                                return 0;
                        while (*path && *path != '/')
                                path++;
                        pat += 2;
                        continue;
                }
                if (*pat++ != *path++)
                        return 0;
        }
        return *path == '\0';
}

int kb_sbx_faults_draw(kb_sbx_faults_t *f, const char *path,
                       int64_t *latency_ms, int *latency_only_2xx,
                       int *error_status, int64_t *retry_after,
                       int *corrupt_body)
{
        const kb_sbx_fault_t *hit = NULL;
        size_t i;

        *latency_ms = 0;
        *latency_only_2xx = 0;
        *error_status = 0;
        *retry_after = 0;
        *corrupt_body = 0;
        if (atomic_load(&f->active) == 0)
                return 0;
        pthread_mutex_lock(&f->lock);
        for (i = 0; i < f->n; i++) {
                if (!strcmp(f->v[i].path, "*")) {
                        if (!hit)
                                hit = &f->v[i];
                } else if (fault_path_match(f->v[i].path, path)) {
                        hit = &f->v[i];
                        break;
                }
        }
        if (!hit) {
                pthread_mutex_unlock(&f->lock);
                return 0;
        }
        *latency_ms = hit->latency_ms;
        *latency_only_2xx = hit->latency_only_2xx;
        if (hit->error_rate > 0 && faults_uniform(f) < hit->error_rate) {
                *error_status = hit->error_status;
                *retry_after = hit->retry_after;
        }
        /* only a request that is processed has an answer to garble */
        if (!*error_status && hit->corrupt_body_rate > 0 &&
            faults_uniform(f) < hit->corrupt_body_rate)
                *corrupt_body = 1;
        pthread_mutex_unlock(&f->lock);
        return 1;
}

static int render_fault(kb_buf_t *b, const kb_sbx_fault_t *ft)
{
        char rate[KB_CANON_REPR_BYTES], corrupt[KB_CANON_REPR_BYTES];

        /* shortest form: 0.2, not 0.20000000000000001 */
        if (kb_canon_double_repr(ft->error_rate, rate, sizeof(rate)) != KB_OK)
                kb_strlcpy(rate, "0", sizeof(rate));
        if (kb_canon_double_repr(ft->corrupt_body_rate, corrupt,
                                 sizeof(corrupt)) != KB_OK)
                kb_strlcpy(corrupt, "0", sizeof(corrupt));
        if (kb_buf_puts(b, "{\"path\":") == -1 ||
            kb_sbx_jstr(b, ft->path) == -1 ||
            kb_buf_printf(b,
                          ",\"latency_ms\":%lld,\"error_rate\":%s,"
                          "\"error_status\":%d,\"retry_after\":%lld,"
                          "\"corrupt_body_rate\":%s,"
                          "\"latency_only_2xx\":%s}",
                          (long long)ft->latency_ms, rate, ft->error_status,
                          (long long)ft->retry_after, corrupt,
                          ft->latency_only_2xx ? "true" : "false") == -1)
                return -1;
        return 0;
}

/* Optional member @p key, a number in [0, 1]: 0 absent, 1 present, -1
 * (400). */
static int opt_rate(json_object *obj, const char *key, double *out,
                    kb_sbx_resp_t *resp)
{
        json_object *v;

        if (!json_object_object_get_ex(obj, key, &v))
                return 0;
        if (!v || (!json_object_is_type(v, json_type_double) &&
                   !json_object_is_type(v, json_type_int))) {
                kb_sbx_resp_error(resp, 400,
                                  "%s: A number between 0 and 1 is required.",
                                  key);
                return -1;
        }
        *out = json_object_get_double(v);
        if (!(*out >= 0.0 && *out <= 1.0)) {
                kb_sbx_resp_error(resp, 400, "%s: Must be between 0 and 1.",
                                  key);
                return -1;
        }
        return 1;
}

static int render_faults(kb_buf_t *b, kb_sbx_faults_t *f)
{
        size_t i;
        int rc;

        pthread_mutex_lock(&f->lock);
        rc = kb_buf_puts(b, "{\"faults\":[");
        for (i = 0; rc == 0 && i < f->n; i++) {
                if (i)
                        rc = kb_buf_puts(b, ",");
                if (rc == 0)
                        rc = render_fault(b, &f->v[i]);
        }
        pthread_mutex_unlock(&f->lock);
        if (rc == 0)
                rc = kb_buf_puts(b, "]}");
        return rc;
}

void kb_sbx_h_faults_put(kb_sbx_req_t *req, kb_sbx_resp_t *resp)
{
        static const char *const allowed[] = { "path",
                                               "latency_ms",
                                               "error_rate",
                                               "error_status",
                                               "retry_after",
                                               "corrupt_body_rate",
                                               "latency_only_2xx",
                                               NULL };
        kb_sbx_faults_t *f = &req->sbx->faults;
        json_object *obj = kb_sbx_req_json(req, resp);
        kb_sbx_fault_t ft;
        const char *path;
        int64_t n;
        size_t i;

        if (!obj)
                return;
        memset(&ft, 0, sizeof(ft));
        ft.error_status = 503;
        ft.retry_after = 1;
        if (only_keys(obj, allowed, resp) == -1)
                goto out;
        path = kb_json_get_str(obj, "path");
        if (!path || !*path || strlen(path) >= sizeof(ft.path) ||
            (strcmp(path, "*") && path[0] != '/')) {
                kb_sbx_resp_error(resp, 400,
                                  "path: Required: a request path "
                                  "(\"/v3/session/import-shared/\", "
                                  "\"/v3/session/{}/share/\": {} stands for "
                                  "one path segment) or \"*\".");
                goto out;
        }
        if (!strncmp(path, "/sandbox", 8)) {
                kb_sbx_resp_error(resp, 400,
                                  "path: Faults cannot target the /sandbox/ "
                                  "endpoints.");
                goto out;
        }
        kb_strlcpy(ft.path, path, sizeof(ft.path));
        if (opt_int(obj, "latency_ms", 0, LATENCY_MAX_MS, &ft.latency_ms,
                    resp) == -1)
                goto out;
        if (opt_int(obj, "error_status", 400, 599, &n, resp) == -1)
                goto out;
        if (json_object_object_get_ex(obj, "error_status", NULL))
                ft.error_status = (int)n;
        if (opt_int(obj, "retry_after", 1, 3600, &ft.retry_after, resp) == -1)
                goto out;
        if (opt_rate(obj, "error_rate", &ft.error_rate, resp) == -1 ||
            opt_rate(obj, "corrupt_body_rate", &ft.corrupt_body_rate, resp) ==
                -1 ||
            opt_bool(obj, "latency_only_2xx", &ft.latency_only_2xx, resp) == -1)
                goto out;
        pthread_mutex_lock(&f->lock);
        for (i = 0; i < f->n; i++)
                if (!strcmp(f->v[i].path, ft.path))
                        break;
        if (i == f->n) {
                kb_sbx_fault_t *nv = realloc(f->v, (f->n + 1) * sizeof(*nv));
                if (!nv) {
                        pthread_mutex_unlock(&f->lock);
                        kb_sbx_resp_error(resp, 500, "Out of memory.");
                        goto out;
                }
                f->v = nv;
                f->n++;
        }
        f->v[i] = ft;
        atomic_store(&f->active, f->n);
        pthread_mutex_unlock(&f->lock);
        kb_log_info(FAC,
                    "fault set: path=%s latency_ms=%lld error_rate=%g "
                    "error_status=%d corrupt_body_rate=%g",
                    ft.path, (long long)ft.latency_ms, ft.error_rate,
                    ft.error_status, ft.corrupt_body_rate);
        if (render_fault(&resp->body, &ft) == -1)
                kb_buf_free(&resp->body, 0);
        kb_sbx_resp_json(resp, 200);
out:
        json_object_put(obj);
}

void kb_sbx_h_faults_get(kb_sbx_req_t *req, kb_sbx_resp_t *resp)
{
        if (render_faults(&resp->body, &req->sbx->faults) == -1)
                kb_buf_free(&resp->body, 0);
        kb_sbx_resp_json(resp, 200);
}

void kb_sbx_h_faults_delete(kb_sbx_req_t *req, kb_sbx_resp_t *resp)
{
        kb_sbx_faults_t *f = &req->sbx->faults;

        pthread_mutex_lock(&f->lock);
        free(f->v);
        f->v = NULL;
        f->n = 0;
        atomic_store(&f->active, 0);
        pthread_mutex_unlock(&f->lock);
        kb_log_info(FAC, "faults cleared");
        if (render_faults(&resp->body, f) == -1)
                kb_buf_free(&resp->body, 0);
        kb_sbx_resp_json(resp, 200);
}

/* ---------------------------------------------------------------------- */
/* Rate limits */

static void render_limits(kb_sbx_req_t *req, kb_sbx_resp_t *resp)
{
        int64_t lim[KB_SBX_RL_NCLASSES];
        int i, rc;

        kb_sbx_rl_get(&req->sbx->rl, lim);
        rc = kb_buf_puts(&resp->body, "{");
        for (i = 0; rc == 0 && i < KB_SBX_RL_NCLASSES; i++)
                rc = kb_buf_printf(&resp->body, "%s\"%s\":%lld", i ? "," : "",
                                   kb_sbx_rl_class_name(i), (long long)lim[i]);
        if (rc == -1 || kb_buf_puts(&resp->body, "}") == -1)
                kb_buf_free(&resp->body, 0);
        kb_sbx_resp_json(resp, 200);
}

void kb_sbx_h_ratelimits_put(kb_sbx_req_t *req, kb_sbx_resp_t *resp)
{
        static const char *const allowed[] = { "per_minute", "writes",
                                               "reads",      "session_create",
                                               "decision",   NULL };
        json_object *obj = kb_sbx_req_json(req, resp);
        int64_t lim[KB_SBX_RL_NCLASSES], v;
        int i, rc, any = 0;

        if (!obj)
                return;
        if (only_keys(obj, allowed, resp) == -1)
                goto out;
        for (i = 0; i < KB_SBX_RL_NCLASSES; i++)
                lim[i] = -1;
        rc = opt_int(obj, "per_minute", 0, KB_SBX_RL_MAX_PER_MINUTE, &v, resp);
        if (rc == -1)
                goto out;
        if (rc == 1) {
                any = 1;
                for (i = 0; i < KB_SBX_RL_NCLASSES; i++)
                        lim[i] = v;
        }
        for (i = 0; i < KB_SBX_RL_NCLASSES; i++) {
                rc = opt_int(obj, kb_sbx_rl_class_name(i), 0,
                             KB_SBX_RL_MAX_PER_MINUTE, &v, resp);
                if (rc == -1)
                        goto out;
                if (rc == 1) {
                        any = 1;
                        lim[i] = v;
                }
        }
        if (!any) {
                kb_sbx_resp_error(resp, 400,
                                  "Give per_minute, or one or more of writes, "
                                  "reads, session_create, decision "
                                  "(requests per minute and key, 0 = "
                                  "unlimited).");
                goto out;
        }
        kb_sbx_rl_set(&req->sbx->rl, lim);
        kb_log_info(FAC, "rate limits changed; windows restarted");
        render_limits(req, resp);
out:
        json_object_put(obj);
}

void kb_sbx_h_ratelimits_get(kb_sbx_req_t *req, kb_sbx_resp_t *resp)
{
        render_limits(req, resp);
}

void kb_sbx_h_ratelimits_delete(kb_sbx_req_t *req, kb_sbx_resp_t *resp)
{
        kb_sbx_rl_reset(&req->sbx->rl);
        kb_log_info(FAC, "rate limits restored to the defaults");
        render_limits(req, resp);
}

/* ---------------------------------------------------------------------- */
/* Clock */

int64_t kb_sbx_now(kb_sbx_t *sbx)
{
        return kb_time_now() + (int64_t)atomic_load(&sbx->clock_offset);
}

void kb_sbx_h_clock_put(kb_sbx_req_t *req, kb_sbx_resp_t *resp)
{
        static const char *const allowed[] = { "offset_s", NULL };
        json_object *obj = kb_sbx_req_json(req, resp);
        int64_t off;
        int rc;

        if (!obj)
                return;
        if (only_keys(obj, allowed, resp) == -1)
                goto out;
        rc = opt_int(obj, "offset_s", -CLOCK_OFFSET_MAX, CLOCK_OFFSET_MAX, &off,
                     resp);
        if (rc == -1)
                goto out;
        if (rc == 0) {
                kb_sbx_resp_error(resp, 400,
                                  "offset_s: This field is "
                                  "required.");
                goto out;
        }
        atomic_store(&req->sbx->clock_offset, off);
        kb_log_info(FAC, "clock offset set to %lld s", (long long)off);
        if (kb_buf_printf(&resp->body, "{\"offset_s\":%lld}", (long long)off) ==
            -1)
                kb_buf_free(&resp->body, 0);
        kb_sbx_resp_json(resp, 200);
out:
        json_object_put(obj);
}

void kb_sbx_h_clock_get(kb_sbx_req_t *req, kb_sbx_resp_t *resp)
{
        if (kb_buf_printf(&resp->body, "{\"offset_s\":%lld,\"now\":%lld}",
                          (long long)atomic_load(&req->sbx->clock_offset),
                          (long long)kb_sbx_now(req->sbx)) == -1)
                kb_buf_free(&resp->body, 0);
        kb_sbx_resp_json(resp, 200);
}

void kb_sbx_h_health(kb_sbx_req_t *req, kb_sbx_resp_t *resp)
{
        if (kb_buf_puts(&resp->body, "{\"status\":\"ok\"}") == -1)
                kb_buf_free(&resp->body, 0);
        kb_sbx_resp_json(resp, 200);
}
