/* sandbox_api.c -- the sandbox's /v3/ handlers (the vendor API subset) */
#include "sandbox.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "json.h"
#include "jwt.h"
#include "kyc_bridge.h"
#include "log.h"

#define FAC "sandbox"

#define LOCK(req)   pthread_mutex_lock(&(req)->sbx->store.lock)
#define UNLOCK(req) pthread_mutex_unlock(&(req)->sbx->store.lock)

#define TTL_DEFAULT        3600
#define TTL_MIN            60
#define TTL_MAX            86400
#define LIST_LIMIT_DEFAULT 20
#define LIST_LIMIT_MAX     200
#define SHARE_TOKEN_MAX    8192

/* ---------------------------------------------------------------------- */
/* Body field validation. Each returns 0 (value or NULL when absent/null)
 * or -1 after setting a 400 on @p resp. */

static int field_str(json_object *obj, const char *key, int required,
                     const char **out, kb_sbx_resp_t *resp)
{
        json_object *v = kb_json_get(obj, key);

        *out = NULL;
        if (!v) {
                if (!required)
                        return 0;
                kb_sbx_resp_error(resp, 400, "%s: This field is required.",
                                  key);
                return -1;
        }
        if (!json_object_is_type(v, json_type_string)) {
                kb_sbx_resp_error(resp, 400, "%s: Not a valid string.", key);
                return -1;
        }
        *out = json_object_get_string(v);
        return 0;
}

/* Optional boolean: -1 absent/null stays *out. */
static int field_bool(json_object *obj, const char *key, int *out,
                      kb_sbx_resp_t *resp)
{
        json_object *v = kb_json_get(obj, key);

        if (!v)
                return 0;
        if (!json_object_is_type(v, json_type_boolean)) {
                kb_sbx_resp_error(resp, 400, "%s: Must be a valid boolean.",
                                  key);
                return -1;
        }
        *out = json_object_get_boolean(v) ? 1 : 0;
        return 0;
}

/* Optional integer in [min, max]; *present tells whether it was given. */
static int field_int(json_object *obj, const char *key, int64_t min,
                     int64_t max, int64_t *out, int *present,
                     kb_sbx_resp_t *resp)
{
        json_object *v = kb_json_get(obj, key);

        *present = 0;
        if (!v)
                return 0;
        if (kb_json_get_i64(obj, key, out) == -1) {
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
        *present = 1;
        return 0;
}

/* Optional object (or null). */
static int field_object(json_object *obj, const char *key, kb_sbx_resp_t *resp)
{
        json_object *v = kb_json_get(obj, key);

        if (v && !json_object_is_type(v, json_type_object)) {
                kb_sbx_resp_error(resp, 400, "%s: Expected a JSON object.",
                                  key);
                return -1;
        }
        return 0;
}

static void lower_copy(char *dst, const char *src, size_t size)
{
        size_t i;

        for (i = 0; i + 1 < size && src[i]; i++)
                dst[i] = (char)tolower((unsigned char)src[i]);
        dst[i] = '\0';
}

/* ---------------------------------------------------------------------- */
/* Sessions */

void kb_sbx_h_session_create(kb_sbx_req_t *req, kb_sbx_resp_t *resp)
{
        json_object *obj = kb_sbx_req_json(req, resp), *v;
        const char *workflow_id, *vendor_data, *callback, *s;
        const char *metadata = NULL;
        kb_sbx_workflow_t *wf;
        kb_sbx_session_t *ses;
        char base[256];

        if (!obj)
                return;
        if (field_str(obj, "workflow_id", 1, &workflow_id, resp) == -1 ||
            field_str(obj, "vendor_data", 0, &vendor_data, resp) == -1 ||
            field_str(obj, "callback", 0, &callback, resp) == -1 ||
            field_str(obj, "callback_method", 0, &s, resp) == -1 ||
            field_str(obj, "language", 0, &s, resp) == -1 ||
            field_object(obj, "contact_details", resp) == -1 ||
            field_object(obj, "expected_details", resp) == -1)
                goto out;
        v = kb_json_get(obj, "metadata");
        if (v)
                metadata = kb_json_str(v, NULL);
        kb_sbx_req_base_url(req, base, sizeof(base));
        if (kb_sbx_lock_app(req, resp) == -1)
                goto out;
        wf = kb_sbx_workflow_get(&req->sbx->store, req->app, workflow_id);
        if (!wf) {
                UNLOCK(req);
                kb_sbx_resp_error(resp, 404, "Workflow not found.");
                goto out;
        }
        ses = kb_sbx_session_create(
            &req->sbx->store, req->app, wf->id, wf->kind, KB_SBX_ST_NOT_STARTED,
            vendor_data, metadata, callback, 1, req->now);
        if (!ses ||
            kb_buf_printf(&resp->body,
                          "{\"session_id\":\"%s\",\"session_number\":%lld,"
                          "\"session_token\":\"%s\",\"url\":",
                          ses->id, (long long)ses->number, ses->token) == -1 ||
            kb_buf_printf(&resp->body,
                          "\"%s/verify/%s\",\"status\":\"%s\","
                          "\"workflow_id\":\"%s\"}",
                          base, ses->token,
                          kb_sbx_status_name(ses->kind, ses->status),
                          ses->workflow_id) == -1) {
                UNLOCK(req);
                kb_sbx_resp_error(resp, 500, "Out of memory.");
                goto out;
        }
        UNLOCK(req);
        kb_sbx_resp_json(resp, 201);
out:
        json_object_put(obj);
}

/* Verifies a share token against the sandbox secret and clock. Returns the
 * claims, or NULL (401 set on @p resp). */
static json_object *share_token_verify(kb_sbx_req_t *req, const char *token,
                                       kb_sbx_resp_t *resp)
{
        json_object *claims = NULL;
        size_t len = strlen(token);
        int64_t exp;
        const char *kind;

        if (len == 0 || len > SHARE_TOKEN_MAX ||
            kb_jwt_hs256_verify(token, len, req->sbx->store.secret,
                                sizeof(req->sbx->store.secret),
                                &claims) != KB_OK)
                goto invalid;
        if (kb_json_get_i64(claims, "exp", &exp) == -1 ||
            !kb_json_get_str(claims, "session_id") ||
            !kb_json_get_str(claims, "for_application_id"))
                goto invalid;
        kind = kb_json_get_str(claims, "session_kind");
        if (kb_json_get(claims, "session_kind") &&
            (!kind || (strcmp(kind, "user") && strcmp(kind, "business"))))
                goto invalid;
        if (req->now >= exp) {
                json_object_put(claims);
                kb_sbx_resp_error(resp, 401, "Share token has expired.");
                return NULL;
        }
        return claims;
invalid:
        json_object_put(claims);
        kb_sbx_resp_error(resp, 401, "Share token is invalid.");
        return NULL;
}

void kb_sbx_h_session_import(kb_sbx_req_t *req, kb_sbx_resp_t *resp)
{
        json_object *obj = kb_sbx_req_json(req, resp), *claims = NULL;
        const char *token, *workflow_id, *vendor_data, *kind_s;
        kb_sbx_store_t *st = &req->sbx->store;
        unsigned char hash[crypto_hash_sha256_BYTES];
        kb_sbx_session_t *src, *ses;
        kb_sbx_workflow_t *wf;
        int trust = 0, kind, status;

        if (!obj)
                return;
        /* body shape (400) */
        if (field_str(obj, "share_token", 1, &token, resp) == -1 ||
            field_str(obj, "workflow_id", 1, &workflow_id, resp) == -1 ||
            field_str(obj, "vendor_data", 0, &vendor_data, resp) == -1 ||
            field_bool(obj, "trust_review", &trust, resp) == -1)
                goto out;
        /* token signature and exp (401) */
        claims = share_token_verify(req, token, resp);
        if (!claims)
                goto out;
        /* addressed to the caller (403) */
        if (strcmp(kb_json_get_str(claims, "for_application_id"),
                   req->app->id) != 0) {
                kb_sbx_resp_error(
                    resp, 403,
                    "Share token is not intended for this application.");
                goto out;
        }
        kind_s = kb_json_get_str(claims, "session_kind");
        kind = kind_s && !strcmp(kind_s, "business") ? KB_SBX_BUSINESS
                                                     : KB_SBX_USER;
        crypto_hash_sha256(hash, (const unsigned char *)token, strlen(token));

        if (kb_sbx_lock_app(req, resp) == -1)
                goto out;
        /* not yet imported by the caller (403) */
        if (kb_sbx_imported_has(st, hash, req->app)) {
                UNLOCK(req);
                kb_sbx_resp_error(resp, 403,
                                  "This share token was already imported into "
                                  "this application.");
                goto out;
        }
        /* source session exists (404) */
        src =
            kb_sbx_session_get(st, NULL, kb_json_get_str(claims, "session_id"));
        if (!src) {
                UNLOCK(req);
                kb_sbx_resp_error(resp, 404,
                                  "The shared session no longer exists.");
                goto out;
        }
        /* workflow of the caller's application (404) */
        wf = kb_sbx_workflow_get(st, req->app, workflow_id);
        if (!wf) {
                UNLOCK(req);
                kb_sbx_resp_error(resp, 404,
                                  "Workflow not found in this application.");
                goto out;
        }
        /* workflow kind matches (400) */
        if (wf->kind != kind) {
                UNLOCK(req);
                kb_sbx_resp_error(resp, 400,
                                  "Workflow type \"%s\" does not match the "
                                  "shared session kind \"%s\".",
                                  wf->kind == KB_SBX_BUSINESS ? "kyb" : "kyc",
                                  kb_sbx_kind_name(kind));
                goto out;
        }
        status = trust ? src->status : KB_SBX_ST_IN_REVIEW;
        ses = kb_sbx_session_create(st, req->app, wf->id, kind, status,
                                    vendor_data, NULL, NULL, 0, req->now);
        if (!ses) {
                UNLOCK(req);
                kb_sbx_resp_error(resp, 500, "Out of memory.");
                goto out;
        }
        memcpy(ses->shared_from, src->id, sizeof(ses->shared_from));
        kb_sbx_session_copy_data(ses, src);
        if (kb_sbx_imported_add(st, hash, req->app) == -1 ||
            kb_sbx_render_session(&resp->body, ses, KB_SBX_R_DATA) == -1) {
                kb_sbx_session_delete(st, ses);
                UNLOCK(req);
                kb_sbx_resp_error(resp, 500, "Out of memory.");
                goto out;
        }
        kb_sbx_fire_event(req->sbx, ses, KB_SBX_EV_STATUS_UPDATED);
        UNLOCK(req);
        kb_sbx_resp_json(resp, 201);
out:
        json_object_put(claims);
        json_object_put(obj);
}

void kb_sbx_h_session_share(kb_sbx_req_t *req, kb_sbx_resp_t *resp)
{
        kb_sbx_store_t *st = &req->sbx->store;
        json_object *obj = NULL, *claims = NULL;
        const char *for_app_in;
        char for_app[37], session_id[37];
        kb_sbx_session_t *s;
        int64_t ttl = TTL_DEFAULT;
        int present, kind;
        char *token = NULL;

        /* session of the caller (404), finished (400) */
        s = kb_sbx_lock_session(req, resp);
        if (!s)
                return;
        if (!kb_sbx_status_finished(s->status)) {
                UNLOCK(req);
                kb_sbx_resp_error(resp, 400,
                                  "Only finished sessions (Approved, Declined "
                                  "or In Review) can be shared.");
                return;
        }
        kind = s->kind;
        memcpy(session_id, s->id, sizeof(session_id));
        UNLOCK(req);

        /* body (400) */
        obj = kb_sbx_req_json(req, resp);
        if (!obj)
                return;
        if (field_str(obj, "for_application_id", 1, &for_app_in, resp) == -1 ||
            field_int(obj, "ttl_in_seconds", TTL_MIN, TTL_MAX, &ttl, &present,
                      resp) == -1)
                goto out;
        if (!kb_is_uuid(for_app_in)) {
                kb_sbx_resp_error(resp, 400,
                                  "for_application_id: Must be a valid UUID.");
                goto out;
        }
        lower_copy(for_app, for_app_in, sizeof(for_app));
        if (!strcmp(for_app, req->app->id)) {
                kb_sbx_resp_error(resp, 400,
                                  "for_application_id: A session cannot be "
                                  "shared with its own application.");
                goto out;
        }
        /* target application exists and is not deleted (404) */
        if (kb_sbx_lock_app(req, resp) == -1)
                goto out;
        if (!kb_sbx_app_by_id(st, for_app)) {
                UNLOCK(req);
                kb_sbx_resp_error(resp, 404, "Application not found.");
                goto out;
        }
        UNLOCK(req);

        claims = json_object_new_object();
        if (!claims || kb_json_add_str(claims, "session_id", session_id) ||
            kb_json_add_str(claims, "session_kind", kb_sbx_kind_name(kind)) ||
            kb_json_add_str(claims, "from_application_id", req->app->id) ||
            kb_json_add_str(claims, "for_application_id", for_app) ||
            kb_json_add_i64(claims, "iat", req->now) ||
            kb_json_add_i64(claims, "exp", req->now + ttl) ||
            kb_jwt_hs256_sign(claims, st->secret, sizeof(st->secret), &token) !=
                KB_OK) {
                kb_sbx_resp_error(resp, 500, "Cannot mint the share token.");
                goto out;
        }
        if (kb_buf_puts(&resp->body, "{\"share_token\":") == -1 ||
            kb_sbx_jstr(&resp->body, token) == -1 ||
            kb_buf_printf(&resp->body,
                          ",\"for_application_id\":\"%s\","
                          "\"session_kind\":\"%s\"}",
                          for_app, kb_sbx_kind_name(kind)) == -1) {
                kb_sbx_resp_error(resp, 500, "Out of memory.");
                goto out;
        }
        kb_sbx_resp_json(resp, 201);
out:
        if (token) {
                sodium_memzero(token, strlen(token));
                free(token);
        }
        json_object_put(claims);
        json_object_put(obj);
}

void kb_sbx_h_session_decision(kb_sbx_req_t *req, kb_sbx_resp_t *resp)
{
        kb_sbx_session_t *s;

        s = kb_sbx_lock_session(req, resp);
        if (!s)
                return;
        if (kb_sbx_render_session(&resp->body, s,
                                  KB_SBX_R_DATA | KB_SBX_R_DECISION) == -1)
                kb_buf_free(&resp->body, 0);
        UNLOCK(req);
        kb_sbx_resp_json(resp, 200);
}

void kb_sbx_h_session_delete(kb_sbx_req_t *req, kb_sbx_resp_t *resp)
{
        kb_sbx_session_t *s;

        s = kb_sbx_lock_session(req, resp);
        if (!s)
                return;
        kb_sbx_session_delete(&req->sbx->store, s);
        UNLOCK(req);
        kb_sbx_resp_json(resp, 204);
}

void kb_sbx_h_session_update_status(kb_sbx_req_t *req, kb_sbx_resp_t *resp)
{
        kb_sbx_store_t *st = &req->sbx->store;
        json_object *obj = NULL, *nodes;
        const char *new_status, *comment, *email, *lang;
        kb_sbx_session_t *s;
        int st_new, send_email = 0, kind;

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
        if (field_str(obj, "new_status", 1, &new_status, resp) == -1 ||
            field_str(obj, "comment", 0, &comment, resp) == -1 ||
            field_bool(obj, "send_email", &send_email, resp) == -1 ||
            field_str(obj, "email_address", 0, &email, resp) == -1 ||
            field_str(obj, "email_language", 0, &lang, resp) == -1)
                goto out;
        nodes = kb_json_get(obj, "nodes_to_resubmit");
        if (nodes && !json_object_is_type(nodes, json_type_array)) {
                kb_sbx_resp_error(resp, 400,
                                  "nodes_to_resubmit: Expected a list.");
                goto out;
        }
        if (send_email && !email) {
                kb_sbx_resp_error(resp, 400,
                                  "email_address: Required when send_email "
                                  "is true.");
                goto out;
        }
        st_new = kb_sbx_status_parse(kind, new_status);
        if (st_new != KB_SBX_ST_APPROVED && st_new != KB_SBX_ST_DECLINED &&
            st_new != KB_SBX_ST_RESUBMITTED) {
                kb_sbx_resp_error(
                    resp, 400, "new_status: Must be one of %s, %s, %s.",
                    kb_sbx_status_name(kind, KB_SBX_ST_APPROVED),
                    kb_sbx_status_name(kind, KB_SBX_ST_DECLINED),
                    kb_sbx_status_name(kind, KB_SBX_ST_RESUBMITTED));
                goto out;
        }
        /* looked up again: it may have been deleted meanwhile */
        s = kb_sbx_lock_session(req, resp);
        if (!s)
                goto out;
        if (st_new == KB_SBX_ST_RESUBMITTED &&
            s->status != KB_SBX_ST_DECLINED &&
            s->status != KB_SBX_ST_IN_REVIEW &&
            s->status != KB_SBX_ST_ABANDONED) {
                UNLOCK(req);
                kb_sbx_resp_error(resp, 400,
                                  "Only Declined, In Review or Abandoned "
                                  "sessions can be resubmitted.");
                goto out;
        }
        if (kb_sbx_session_set_status(st, s, st_new, comment, req->now) == -1 ||
            kb_sbx_render_session(&resp->body, s,
                                  KB_SBX_R_DATA | KB_SBX_R_DECISION) == -1) {
                UNLOCK(req);
                kb_sbx_resp_error(resp, 500, "Out of memory.");
                goto out;
        }
        kb_sbx_fire_event(req->sbx, s, KB_SBX_EV_STATUS_UPDATED);
        UNLOCK(req);
        kb_sbx_resp_json(resp, 200);
out:
        json_object_put(obj);
}

/* Appends @p s percent-encoded (RFC 3986 unreserved characters kept). */
static int url_encode(kb_buf_t *b, const char *s)
{
        static const char hex[] = "0123456789ABCDEF";

        for (; *s; s++) {
                unsigned char c = (unsigned char)*s;
                char e[3];
                if (isalnum(c) || c == '-' || c == '.' || c == '_' ||
                    c == '~') {
                        if (kb_buf_append(b, s, 1) == -1)
                                return -1;
                        continue;
                }
                e[0] = '%';
                e[1] = hex[c >> 4];
                e[2] = hex[c & 15];
                if (kb_buf_append(b, e, 3) == -1)
                        return -1;
        }
        return 0;
}

static int page_url(kb_buf_t *b, const char *base, int64_t limit,
                    int64_t offset, const char *vendor_data, const char *status,
                    const char *workflow_id)
{
        if (kb_buf_puts(b, "\"") == -1 || kb_buf_puts(b, base) == -1 ||
            kb_buf_printf(b, "/v3/sessions/?limit=%lld&offset=%lld",
                          (long long)limit, (long long)offset) == -1)
                return -1;
        if (vendor_data && (kb_buf_puts(b, "&vendor_data=") == -1 ||
                            url_encode(b, vendor_data) == -1))
                return -1;
        if (status &&
            (kb_buf_puts(b, "&status=") == -1 || url_encode(b, status) == -1))
                return -1;
        if (workflow_id && (kb_buf_puts(b, "&workflow_id=") == -1 ||
                            url_encode(b, workflow_id) == -1))
                return -1;
        return kb_buf_puts(b, "\"");
}

/* A query parameter; empty counts as absent. */
static const char *query(kb_sbx_req_t *req, const char *name)
{
        const char *v = kb_sbx_req_query(req, name);

        return v && *v ? v : NULL;
}

void kb_sbx_h_sessions_list(kb_sbx_req_t *req, kb_sbx_resp_t *resp)
{
        const char *vendor_data = query(req, "vendor_data");
        const char *status = query(req, "status");
        const char *workflow_id = query(req, "workflow_id");
        const char *offset_s = query(req, "offset");
        const char *limit_s = query(req, "limit");
        int64_t offset = 0, limit = LIST_LIMIT_DEFAULT, count = 0, shown = 0;
        kb_buf_t items = KB_BUF_INIT;
        kb_sbx_session_t *s;
        char base[256];
        int by_vd = 0;

        if (offset_s && kb_parse_i64(offset_s, 0, INT64_MAX / 2, &offset)) {
                kb_sbx_resp_error(resp, 400,
                                  "offset: A valid non-negative integer is "
                                  "required.");
                return;
        }
        if (limit_s && kb_parse_i64(limit_s, 1, INT64_MAX / 2, &limit)) {
                kb_sbx_resp_error(resp, 400,
                                  "limit: A valid positive integer is "
                                  "required.");
                return;
        }
        if (limit > LIST_LIMIT_MAX)
                limit = LIST_LIMIT_MAX;
        kb_sbx_req_base_url(req, base, sizeof(base));

        if (kb_sbx_lock_app(req, resp) == -1)
                return;
        if (vendor_data) {
                kb_sbx_vd_t *vd = kb_hmap_gets(req->app->vd, vendor_data);
                s = vd ? vd->tail : NULL;
                by_vd = 1;
        } else {
                s = req->app->tail;
        }
        /* newest first */
        for (; s; s = by_vd ? s->vd_prev : s->prev) {
                if (status &&
                    strcmp(status, kb_sbx_status_name(s->kind, s->status)))
                        continue;
                if (workflow_id && strcmp(workflow_id, s->workflow_id))
                        continue;
                if (count >= offset && shown < limit) {
                        if ((shown && kb_buf_puts(&items, ",") == -1) ||
                            kb_sbx_render_session_summary(&items, s) == -1) {
                                UNLOCK(req);
                                kb_buf_free(&items, 0);
                                kb_sbx_resp_error(resp, 500, "Out of memory.");
                                return;
                        }
                        shown++;
                }
                count++;
        }
        UNLOCK(req);

        if (kb_buf_printf(&resp->body, "{\"count\":%lld,\"next\":",
                          (long long)count) == -1 ||
            (offset + limit < count
                 ? page_url(&resp->body, base, limit, offset + limit,
                            vendor_data, status, workflow_id)
                 : kb_buf_puts(&resp->body, "null")) == -1 ||
            kb_buf_puts(&resp->body, ",\"previous\":") == -1 ||
            (offset > 0 ? page_url(&resp->body, base, limit,
                                   offset > limit ? offset - limit : 0,
                                   vendor_data, status, workflow_id)
                        : kb_buf_puts(&resp->body, "null")) == -1 ||
            kb_buf_puts(&resp->body, ",\"results\":[") == -1 ||
            (items.len &&
             kb_buf_append(&resp->body, items.data, items.len) == -1) ||
            kb_buf_puts(&resp->body, "]}") == -1)
                kb_buf_free(&resp->body, 0);
        kb_buf_free(&items, 0);
        kb_sbx_resp_json(resp, 200);
}

/* ---------------------------------------------------------------------- */
/* Workflows */

static const struct {
        const char *key;
        unsigned bit;
} wf_flags[] = {
        { "is_liveness_enabled", KB_SBX_WF_LIVENESS },
        { "is_face_match_enabled", KB_SBX_WF_FACE_MATCH },
        { "is_aml_enabled", KB_SBX_WF_AML },
        { "is_phone_verification_enabled", KB_SBX_WF_PHONE },
        { "is_email_verification_enabled", KB_SBX_WF_EMAIL },
        { "is_database_validation_enabled", KB_SBX_WF_DATABASE },
        { "is_ip_analysis_enabled", KB_SBX_WF_IP },
        { "is_nfc_enabled", KB_SBX_WF_NFC },
        { "is_proof_of_address_enabled", KB_SBX_WF_POA },
};

void kb_sbx_h_workflow_create(kb_sbx_req_t *req, kb_sbx_resp_t *resp)
{
        json_object *obj = kb_sbx_req_json(req, resp);
        const char *label, *type;
        kb_sbx_workflow_t *wf;
        unsigned features = 0;
        int is_default = 0, kind;
        size_t i;

        if (!obj)
                return;
        if (field_str(obj, "workflow_label", 0, &label, resp) == -1 ||
            field_str(obj, "workflow_type", 0, &type, resp) == -1 ||
            field_bool(obj, "is_default", &is_default, resp) == -1)
                goto out;
        for (i = 0; i < KB_ARRAY_SIZE(wf_flags); i++) {
                int on = 0;
                if (field_bool(obj, wf_flags[i].key, &on, resp) == -1)
                        goto out;
                if (on)
                        features |= wf_flags[i].bit;
        }
        if (!type || !strcmp(type, "kyc")) {
                kind = KB_SBX_USER;
        } else if (!strcmp(type, "kyb")) {
                kind = KB_SBX_BUSINESS;
        } else {
                kb_sbx_resp_error(resp, 400,
                                  "workflow_type: The sandbox supports \"kyc\" "
                                  "(user sessions) and \"kyb\" (business "
                                  "sessions).");
                goto out;
        }
        if (!label)
                label =
                    kind == KB_SBX_BUSINESS ? "KYB workflow" : "KYC workflow";
        if (kb_sbx_lock_app(req, resp) == -1)
                goto out;
        wf = kb_sbx_workflow_create(&req->sbx->store, req->app, label, kind,
                                    is_default, features, req->now);
        if (!wf || kb_sbx_render_workflow(&resp->body, wf) == -1) {
                UNLOCK(req);
                kb_sbx_resp_error(resp, 500, "Out of memory.");
                goto out;
        }
        UNLOCK(req);
        kb_sbx_resp_json(resp, 201);
out:
        json_object_put(obj);
}

void kb_sbx_h_workflow_list(kb_sbx_req_t *req, kb_sbx_resp_t *resp)
{
        size_t i;
        int rc;

        if (kb_sbx_lock_app(req, resp) == -1)
                return;
        rc = kb_buf_puts(&resp->body, "[");
        for (i = 0; rc == 0 && i < req->app->nwfs; i++) {
                if (i)
                        rc = kb_buf_puts(&resp->body, ",");
                if (rc == 0)
                        rc = kb_sbx_render_workflow(&resp->body,
                                                    req->app->wfs[i]);
        }
        UNLOCK(req);
        if (rc == -1 || kb_buf_puts(&resp->body, "]") == -1)
                kb_buf_free(&resp->body, 0);
        kb_sbx_resp_json(resp, 200);
}

void kb_sbx_h_workflow_get(kb_sbx_req_t *req, kb_sbx_resp_t *resp)
{
        kb_sbx_workflow_t *wf;

        wf = kb_sbx_lock_workflow(req, resp);
        if (!wf)
                return;
        if (kb_sbx_render_workflow(&resp->body, wf) == -1)
                kb_buf_free(&resp->body, 0);
        UNLOCK(req);
        kb_sbx_resp_json(resp, 200);
}

void kb_sbx_h_workflow_delete(kb_sbx_req_t *req, kb_sbx_resp_t *resp)
{
        kb_sbx_workflow_t *wf;

        wf = kb_sbx_lock_workflow(req, resp);
        if (!wf)
                return;
        kb_sbx_workflow_delete(&req->sbx->store, wf);
        UNLOCK(req);
        kb_sbx_resp_json(resp, 204);
}

/* ---------------------------------------------------------------------- */
/* Webhook configuration */

void kb_sbx_h_webhook_get(kb_sbx_req_t *req, kb_sbx_resp_t *resp)
{
        if (kb_sbx_lock_app(req, resp) == -1)
                return;
        if (kb_sbx_render_webhook_config(&resp->body, req->app) == -1)
                kb_buf_free(&resp->body, 0);
        UNLOCK(req);
        kb_sbx_resp_json(resp, 200);
}

void kb_sbx_h_webhook_patch(kb_sbx_req_t *req, kb_sbx_resp_t *resp)
{
        json_object *obj = kb_sbx_req_json(req, resp), *v;
        const char *url = NULL, *version, *capture;
        char why[160];
        int set_url = 0, rotate = 0, set_retention = 0;
        int64_t retention = 0;
        char *url_copy = NULL;

        if (!obj)
                return;
        v = kb_json_get(obj, "webhook_url");
        if (json_object_object_get_ex(obj, "webhook_url", NULL)) {
                set_url = 1;
                if (v && !json_object_is_type(v, json_type_string)) {
                        kb_sbx_resp_error(resp, 400,
                                          "webhook_url: Must be a string or "
                                          "null.");
                        goto out;
                }
                url = v ? json_object_get_string(v) : NULL;
                if (url && !*url)
                        url = NULL;
                if (url && kb_sbx_webhook_url_ok(&req->sbx->conf, url, why,
                                                 sizeof(why))) {
                        kb_sbx_resp_error(resp, 400, "webhook_url: %s", why);
                        goto out;
                }
        }
        if (field_str(obj, "webhook_version", 0, &version, resp) == -1 ||
            field_bool(obj, "rotate_secret_key", &rotate, resp) == -1 ||
            field_str(obj, "capture_method", 0, &capture, resp) == -1)
                goto out;
        if (version && strcmp(version, "v3")) {
                kb_sbx_resp_error(resp, 400,
                                  "webhook_version: The sandbox delivers "
                                  "only \"v3\" webhooks.");
                goto out;
        }
        if (capture && strcmp(capture, "mobile") &&
            strcmp(capture, "desktop") && strcmp(capture, "both")) {
                kb_sbx_resp_error(resp, 400,
                                  "capture_method: Must be \"mobile\", "
                                  "\"desktop\" or \"both\".");
                goto out;
        }
        if (json_object_object_get_ex(obj, "data_retention_months", &v)) {
                int present;
                if (v && field_int(obj, "data_retention_months", 1, 120,
                                   &retention, &present, resp) == -1)
                        goto out;
                set_retention = 1;
        }
        if (url && !(url_copy = strdup(url))) {
                kb_sbx_resp_error(resp, 500, "Out of memory.");
                goto out;
        }
        if (kb_sbx_lock_app(req, resp) == -1)
                goto out;
        if (set_url) {
                free(req->app->webhook_url);
                req->app->webhook_url = url_copy;
                url_copy = NULL;
        }
        if (rotate)
                kb_sbx_app_rotate_secret(&req->sbx->store, req->app);
        if (capture)
                kb_strlcpy(req->app->capture_method, capture,
                           sizeof(req->app->capture_method));
        if (set_retention)
                req->app->retention_months = retention;
        kb_sbx_store_touch(&req->sbx->store);
        if (kb_sbx_render_webhook_config(&resp->body, req->app) == -1)
                kb_buf_free(&resp->body, 0);
        UNLOCK(req);
        kb_sbx_resp_json(resp, 200);
out:
        free(url_copy);
        json_object_put(obj);
}

void kb_sbx_h_dest_create(kb_sbx_req_t *req, kb_sbx_resp_t *resp)
{
        json_object *obj = kb_sbx_req_json(req, resp), *ev;
        const char *url;
        unsigned events = 0;
        kb_sbx_dest_t *d;
        char why[160];
        size_t i, n;

        if (!obj)
                return;
        if (field_str(obj, "url", 1, &url, resp) == -1)
                goto out;
        if (kb_sbx_webhook_url_ok(&req->sbx->conf, url, why, sizeof(why))) {
                kb_sbx_resp_error(resp, 400, "url: %s", why);
                goto out;
        }
        ev = kb_json_get(obj, "subscribed_events");
        if (!ev) {
                events = KB_SBX_EV_STATUS_UPDATED;
        } else if (!json_object_is_type(ev, json_type_array) ||
                   (n = json_object_array_length(ev)) == 0) {
                kb_sbx_resp_error(resp, 400,
                                  "subscribed_events: Expected a non-empty "
                                  "list of event names.");
                goto out;
        } else {
                for (i = 0; i < n; i++) {
                        json_object *e = json_object_array_get_idx(ev, i);
                        const char *name =
                            json_object_is_type(e, json_type_string)
                                ? json_object_get_string(e)
                                : "";
                        if (!strcmp(name, "status.updated")) {
                                events |= KB_SBX_EV_STATUS_UPDATED;
                        } else if (!strcmp(name, "data.updated")) {
                                events |= KB_SBX_EV_DATA_UPDATED;
                        } else {
                                kb_sbx_resp_error(
                                    resp, 400,
                                    "subscribed_events: Each must be "
                                    "\"status.updated\" or "
                                    "\"data.updated\".");
                                goto out;
                        }
                }
        }
        if (kb_sbx_lock_app(req, resp) == -1)
                goto out;
        d = kb_sbx_dest_add(&req->sbx->store, req->app, url, events, req->now);
        if (!d || kb_sbx_render_dest(&resp->body, d) == -1) {
                UNLOCK(req);
                kb_sbx_resp_error(resp, 500, "Out of memory.");
                goto out;
        }
        UNLOCK(req);
        kb_sbx_resp_json(resp, 201);
out:
        json_object_put(obj);
}

void kb_sbx_h_dest_list(kb_sbx_req_t *req, kb_sbx_resp_t *resp)
{
        size_t i;
        int rc;

        if (kb_sbx_lock_app(req, resp) == -1)
                return;
        rc = kb_buf_puts(&resp->body, "[");
        for (i = 0; rc == 0 && i < req->app->ndests; i++) {
                if (i)
                        rc = kb_buf_puts(&resp->body, ",");
                if (rc == 0)
                        rc =
                            kb_sbx_render_dest(&resp->body, req->app->dests[i]);
        }
        UNLOCK(req);
        if (rc == -1 || kb_buf_puts(&resp->body, "]") == -1)
                kb_buf_free(&resp->body, 0);
        kb_sbx_resp_json(resp, 200);
}

void kb_sbx_h_dest_delete(kb_sbx_req_t *req, kb_sbx_resp_t *resp)
{
        int rc;

        if (kb_sbx_lock_app(req, resp) == -1)
                return;
        rc = kb_sbx_dest_delete(&req->sbx->store, req->app, req->id);
        UNLOCK(req);
        if (rc == -1) {
                kb_sbx_resp_error(resp, 404, "Destination not found.");
                return;
        }
        kb_sbx_resp_json(resp, 204);
}

/* ---------------------------------------------------------------------- */
/* The page a session's url points at (the hosted flow, in the real thing) */

void kb_sbx_h_verify_page(kb_sbx_req_t *req, kb_sbx_resp_t *resp)
{
        kb_sbx_session_t *s;

        LOCK(req);
        s = kb_sbx_session_by_token(&req->sbx->store, req->id);
        if (!s) {
                UNLOCK(req);
                kb_sbx_resp_error(resp, 404, "Not found.");
                return;
        }
        if (kb_buf_printf(&resp->body,
                          "{\"session_id\":\"%s\",\"session_kind\":\"%s\","
                          "\"status\":\"%s\",\"detail\":\"This sandbox has "
                          "no hosted verification flow: finish the session "
                          "with POST /sandbox/sessions/%s/complete.\"}",
                          s->id, kb_sbx_kind_name(s->kind),
                          kb_sbx_status_name(s->kind, s->status), s->id) == -1)
                kb_buf_free(&resp->body, 0);
        UNLOCK(req);
        kb_sbx_resp_json(resp, 200);
}
