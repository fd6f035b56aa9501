/* sbx_client.c -- a small synchronous JSON client for the sandbox's
 * /sandbox/ extras and the /v3 calls a demo or a tool needs */
#include "sbx_client.h"

#include <stdlib.h>
#include <string.h>

#include <curl/curl.h>
#include <sodium.h>

#include "json.h"
#include "util.h"

struct kb_sbxc_s {
        CURL *curl;
        char *base;
};

kb_sbxc_t *kb_sbxc_new(const char *base_url)
{
        kb_sbxc_t *c = calloc(1, sizeof(*c));

        if (!c)
                return NULL;
        c->curl = curl_easy_init();
        c->base = strdup(base_url);
        if (!c->curl || !c->base) {
                kb_sbxc_destroy(c);
                return NULL;
        }
        return c;
}

void kb_sbxc_destroy(kb_sbxc_t *c)
{
        if (!c)
                return;
        if (c->curl)
                curl_easy_cleanup(c->curl);
        free(c->base);
        free(c);
}

static size_t on_data(char *p, size_t sz, size_t n, void *opaque)
{
        kb_buf_t *b = opaque;

        if (b->len + sz * n > 8 * 1024 * 1024 || kb_buf_append(b, p, sz * n))
                return 0;
        return sz * n;
}

int kb_sbxc_call(kb_sbxc_t *c, const char *method, const char *path,
                 json_object *body, const char *api_key, json_object **out,
                 char *errstr, size_t errstr_size)
{
        struct curl_slist *hdrs = NULL;
        kb_buf_t resp = KB_BUF_INIT;
        char url[1024], keyhdr[512];
        const char *txt = NULL;
        size_t tlen = 0;
        long status = 0;
        CURLcode cc;

        if (out)
                *out = NULL;
        kb_snprintf(url, sizeof(url), "%s%s", c->base, path);
        curl_easy_reset(c->curl);
        hdrs = curl_slist_append(hdrs, "Content-Type: application/json");
        hdrs = curl_slist_append(hdrs, "Expect:");
        if (api_key) {
                kb_snprintf(keyhdr, sizeof(keyhdr), "x-api-key: %s", api_key);
                hdrs = curl_slist_append(hdrs, keyhdr);
        }
        if (body)
                txt = kb_json_str(body, &tlen);
        curl_easy_setopt(c->curl, CURLOPT_URL, url);
        curl_easy_setopt(c->curl, CURLOPT_CUSTOMREQUEST, method);
        curl_easy_setopt(c->curl, CURLOPT_HTTPHEADER, hdrs);
        curl_easy_setopt(c->curl, CURLOPT_NOSIGNAL, 1L);
        curl_easy_setopt(c->curl, CURLOPT_TCP_NODELAY, 1L);
        curl_easy_setopt(c->curl, CURLOPT_TIMEOUT_MS, 30000L);
        curl_easy_setopt(c->curl, CURLOPT_WRITEFUNCTION, on_data);
        curl_easy_setopt(c->curl, CURLOPT_WRITEDATA, &resp);
        if (txt) {
                curl_easy_setopt(c->curl, CURLOPT_POSTFIELDS, txt);
                curl_easy_setopt(c->curl, CURLOPT_POSTFIELDSIZE, (long)tlen);
        }
        cc = curl_easy_perform(c->curl);
        sodium_memzero(keyhdr, sizeof(keyhdr));
        curl_slist_free_all(hdrs);
        if (cc != CURLE_OK) {
                kb_snprintf(errstr, errstr_size, "%s %s: %s", method, path,
                            curl_easy_strerror(cc));
                kb_buf_free(&resp, 1);
                return 0;
        }
        curl_easy_getinfo(c->curl, CURLINFO_RESPONSE_CODE, &status);
        if (out && resp.len)
                *out = kb_json_parse(resp.data, resp.len, 64, NULL, 0);
        if (status >= 300) {
                json_object *e = kb_json_parse(resp.data ? resp.data : "",
                                               resp.len, 8, NULL, 0);
                const char *d = kb_json_get_str(e, "detail");
                kb_snprintf(errstr, errstr_size, "%s %s: %ld %s", method, path,
                            status, d ? d : "");
                json_object_put(e);
        }
        /* answers carry API keys and webhook secrets */
        kb_buf_free(&resp, 1);
        return (int)status;
}

static json_object *obj1(const char *k, json_object *v)
{
        json_object *o = json_object_new_object();

        if (o)
                json_object_object_add(o, k, v);
        return o;
}

int kb_sbxc_app(kb_sbxc_t *c, const char *name, char *app_id, char *api_key,
                size_t api_key_size, char *errstr, size_t errstr_size)
{
        json_object *b = obj1("name", json_object_new_string(name)), *r;
        const char *id, *key;
        int st = kb_sbxc_call(c, "POST", "/sandbox/applications", b, NULL, &r,
                              errstr, errstr_size);

        json_object_put(b);
        id = kb_json_get_str(r, "application_id");
        key = kb_json_get_str(r, "api_key");
        if (st != 201 || !id || !key) {
                json_object_put(r);
                return -1;
        }
        kb_strlcpy(app_id, id, 37);
        kb_strlcpy(api_key, key, api_key_size);
        json_object_put(r);
        return 0;
}

int kb_sbxc_workflow(kb_sbxc_t *c, const char *api_key, const char *type,
                     char *uuid, char *errstr, size_t errstr_size)
{
        json_object *b = json_object_new_object(), *r = NULL;
        const char *id;
        int st;

        kb_json_add_str(b, "workflow_label", type);
        kb_json_add_str(b, "workflow_type", type);
        st = kb_sbxc_call(c, "POST", "/v3/workflows/", b, api_key, &r, errstr,
                          errstr_size);
        json_object_put(b);
        id = kb_json_get_str(r, "uuid");
        if (st != 201 || !id) {
                json_object_put(r);
                return -1;
        }
        kb_strlcpy(uuid, id, 37);
        json_object_put(r);
        return 0;
}

int kb_sbxc_session(kb_sbxc_t *c, const char *api_key, const char *workflow,
                    const char *vendor_data, const char *status,
                    char *session_id, char *errstr, size_t errstr_size)
{
        json_object *b = json_object_new_object(), *r = NULL;
        char path[256];
        const char *id;
        int st;

        kb_json_add_str(b, "workflow_id", workflow);
        kb_json_add_str(b, "vendor_data", vendor_data);
        st = kb_sbxc_call(c, "POST", "/v3/session/", b, api_key, &r, errstr,
                          errstr_size);
        json_object_put(b);
        id = kb_json_get_str(r, "session_id");
        if (st != 201 || !id) {
                json_object_put(r);
                return -1;
        }
        kb_strlcpy(session_id, id, 37);
        json_object_put(r);
        if (!status)
                return 0;
        b = obj1("status", json_object_new_string(status));
        kb_snprintf(path, sizeof(path), "/sandbox/sessions/%s/complete",
                    session_id);
        st = kb_sbxc_call(c, "POST", path, b, api_key, NULL, errstr,
                          errstr_size);
        json_object_put(b);
        return st == 200 ? 0 : -1;
}

int kb_sbxc_update_status(kb_sbxc_t *c, const char *api_key,
                          const char *session_id, const char *new_status,
                          const char *comment, char *errstr, size_t errstr_size)
{
        json_object *b = obj1("new_status", json_object_new_string(new_status));
        char path[256];
        int st;

        if (comment)
                kb_json_add_str(b, "comment", comment);
        kb_snprintf(path, sizeof(path), "/v3/session/%s/update-status/",
                    session_id);
        st = kb_sbxc_call(c, "PATCH", path, b, api_key, NULL, errstr,
                          errstr_size);
        json_object_put(b);
        return st == 200 ? 0 : -1;
}

int kb_sbxc_webhook_url(kb_sbxc_t *c, const char *api_key, const char *url,
                        char *errstr, size_t errstr_size)
{
        json_object *b = obj1("webhook_url", json_object_new_string(url)), *r;
        int st;

        kb_json_add_str(b, "webhook_version", "v3");
        /* the answer carries the secret too: parsed, then dropped */
        st = kb_sbxc_call(c, "PATCH", "/v3/webhook/", b, api_key, &r, errstr,
                          errstr_size);
        json_object_put(b);
        json_object_put(r);
        return st == 200 ? 0 : -1;
}

int kb_sbxc_webhook_secret(kb_sbxc_t *c, const char *api_key, char *secret,
                           size_t secret_size, char *errstr, size_t errstr_size)
{
        json_object *r = NULL;
        const char *v;
        int st = kb_sbxc_call(c, "GET", "/v3/webhook/", NULL, api_key, &r,
                              errstr, errstr_size);
        int rc = -1;

        v = kb_json_get_str(r, "secret_shared_key");
        if (st != 200) {
                /* errstr says why */
        } else if (!v || !*v) {
                kb_snprintf(errstr, errstr_size,
                            "GET /v3/webhook/: no secret_shared_key");
        } else if (strlen(v) >= secret_size) {
                sodium_memzero(secret, secret_size);
                kb_snprintf(errstr, errstr_size,
                            "GET /v3/webhook/: secret_shared_key too long");
        } else {
                kb_strlcpy(secret, v, secret_size);
                rc = 0;
        }
        json_object_put(r);
        return rc;
}

int kb_sbxc_clock(kb_sbxc_t *c, long long offset_s, char *errstr,
                  size_t errstr_size)
{
        json_object *b = obj1("offset_s", json_object_new_int64(offset_s));
        int st = kb_sbxc_call(c, "PUT", "/sandbox/clock", b, NULL, NULL, errstr,
                              errstr_size);

        json_object_put(b);
        return st == 200 ? 0 : -1;
}

int kb_sbxc_rate_limits(kb_sbxc_t *c, long long per_minute, char *errstr,
                        size_t errstr_size)
{
        json_object *b = obj1("per_minute", json_object_new_int64(per_minute));
        int st = kb_sbxc_call(c, "PUT", "/sandbox/rate-limits", b, NULL, NULL,
                              errstr, errstr_size);

        json_object_put(b);
        return st == 200 ? 0 : -1;
}
