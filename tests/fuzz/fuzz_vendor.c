/* fuzz_vendor.c -- vendor API responses: the vendor client's handling of
 * each answer (kb_vendor_*: status, Retry-After, body, detail) and what
 * the daemons then read from the body (the share token and its claims,
 * sealed as the issuer does; the imported or reconciled session and its
 * summary; the list results; the verdict table).
 *
 * The HTTP engine's I/O is replaced by a stand-in that answers from the
 * input (see below): no network. Timers run on a virtual
 * clock (kb_vendor_set_clock()).
 *
 * Input (tests/fuzz/README.md): the operation ("share", "import", "list",
 * "decision", "workflow"), then answers, each after a 0x1e byte: a line
 * "STATUS [RETRY_AFTER]" (or "T": a retryable transport failure, "X": a
 * final one, "B": a body over the size cap) and the body. */
/* fuzz-options: -max_len=70000 */
#include <errno.h>
#include <strings.h>

#include <sodium.h>

#include "conf.h"
#include "http.h"
#include "importer.h"
#include "issuer.h"
#include "jwt.h"
#include "json.h"
#include "vectors.h"
#include "vendor.h"
#include "verdict.h"

#define SESSION  "5c0ffee0-1234-4abc-9def-0123456789ab"
#define WORKFLOW "7a3c1e5f-2b4d-4c6e-8f0a-1b2c3d4e5f60"
#define MAX_REQ  8
#define MAX_POLL 64
/* the valid envelope vector's token was minted at */
#define TOKEN_IAT INT64_C(1795305600)

/* ---- the stand-in HTTP engine ----
 *
 * The linker sends vendor.c's calls of the engine's I/O functions here
 * (-Wl,--wrap=kb_http_new,... in CMakeLists.txt); the rest of http.c
 * (URL checks, Retry-After parsing) stays the real one. */

kb_http_t *__wrap_kb_http_new(const kb_http_conf_t *hc, char *errstr,
                              size_t errstr_size);
void __wrap_kb_http_destroy(kb_http_t *h);
int __wrap_kb_http_submit_hdr(kb_http_t *h, const char *method,
                              const char *path, const char *header,
                              const char *body, size_t body_len, kb_http_cb *cb,
                              void *opaque);
int __wrap_kb_http_submit(kb_http_t *h, const char *method, const char *path,
                          const char *body, size_t body_len, kb_http_cb *cb,
                          void *opaque);
int __wrap_kb_http_poll(kb_http_t *h, int timeout_ms);
size_t __wrap_kb_http_in_flight(const kb_http_t *h);
void __wrap_kb_http_counters(const kb_http_t *h, uint64_t *completed,
                             uint64_t *connections);

typedef struct {
        kb_http_cb *cb;
        void *opaque;
} req_t;

typedef struct fake_http_s {
        req_t req[MAX_REQ];
        size_t n;
} fake_http_t;

#define FAKE(h) ((fake_http_t *)(void *)(h))

/* The answers still to give, from the input. */
static const uint8_t *in_data;
static size_t in_size;
static int64_t vclock; /* virtual ms */
static size_t nrequests;

kb_http_t *__wrap_kb_http_new(const kb_http_conf_t *hc, char *errstr,
                              size_t errstr_size)
{
        fake_http_t *h;

        (void)errstr;
        (void)errstr_size;
        FUZZ_CHECK(hc->base_url && hc->api_key && hc->api_key_len > 0);
        h = calloc(1, sizeof(*h));
        if (!h)
                errno = ENOMEM;
        return (kb_http_t *)(void *)h;
}

static void complete(fake_http_t *h, const kb_http_resp_t *resp)
{
        req_t r = h->req[0];

        memmove(&h->req[0], &h->req[1], (h->n - 1) * sizeof(req_t));
        h->n--;
        r.cb(resp, r.opaque);
}

void __wrap_kb_http_destroy(kb_http_t *hh)
{
        fake_http_t *h = FAKE(hh);
        kb_http_resp_t resp;

        if (!h)
                return;
        while (h->n) {
                memset(&resp, 0, sizeof(resp));
                resp.err = KB_ERR_STATE;
                resp.body = "";
                resp.retry_after_s = resp.rl_limit = resp.rl_remaining =
                    resp.rl_reset = -1;
                complete(h, &resp);
        }
        free(h);
}

int __wrap_kb_http_submit_hdr(kb_http_t *hh, const char *method,
                              const char *path, const char *header,
                              const char *body, size_t body_len, kb_http_cb *cb,
                              void *opaque)
{
        fake_http_t *h = FAKE(hh);

        FUZZ_CHECK(method && path && path[0] == '/' && cb);
        FUZZ_CHECK(!body || strlen(body) == body_len);
        FUZZ_CHECK(!header || strlen(header) <= KB_HTTP_HEADER_MAX);
        if (h->n == MAX_REQ)
                return KB_ERR_NOMEM;
        h->req[h->n].cb = cb;
        h->req[h->n].opaque = opaque;
        h->n++;
        nrequests++;
        return KB_OK;
}

int __wrap_kb_http_submit(kb_http_t *h, const char *method, const char *path,
                          const char *body, size_t body_len, kb_http_cb *cb,
                          void *opaque)
{
        return __wrap_kb_http_submit_hdr(h, method, path, NULL, body, body_len,
                                         cb, opaque);
}

/* One answer from the input to the oldest request; with none in flight,
 * time passes (the caller would have slept). */
int __wrap_kb_http_poll(kb_http_t *hh, int timeout_ms)
{
        fake_http_t *h = FAKE(hh);
        kb_http_resp_t resp;
        char *head, *body;
        const uint8_t *p;
        size_t n;

        if (!h->n) {
                /* a retry or a pause is due: hours pass, so that even a
                 * 24 h Retry-After ends within a few polls */
                (void)timeout_ms;
                vclock += INT64_C(6) * 3600 * 1000;
                return 0;
        }
        if (!in_data)
                return 0;
        /* one answer: up to the next 0x1e */
        p = memchr(in_data, 0x1e, in_size);
        n = p ? (size_t)(p - in_data) : in_size;
        {
                const uint8_t *a = in_data;
                size_t an = n;
                head = fuzz_field(&a, &an, '\n');
                body = a ? fuzz_strndup(a, an) : fuzz_strndup(NULL, 0);
        }
        if (p) {
                in_size -= n + 1;
                in_data = p + 1;
        } else {
                in_data = NULL;
                in_size = 0;
        }
        memset(&resp, 0, sizeof(resp));
        resp.retry_after_s = resp.rl_limit = resp.rl_remaining = resp.rl_reset =
            -1;
        resp.body = "";
        resp.latency_us = 1000;
        if (head[0] == 'T' || head[0] == 'X') {
                resp.err = head[0] == 'T' ? KB_ERR_TIMEOUT : KB_ERR_HTTP;
                resp.retryable = head[0] == 'T';
                snprintf(resp.errtext, sizeof(resp.errtext), "stand-in");
        } else if (head[0] == 'B') {
                resp.err = KB_ERR_TOO_LARGE;
                snprintf(resp.errtext, sizeof(resp.errtext), "too large");
        } else {
                char *end;
                long st = strtol(head, &end, 10), ra;
                resp.status = st >= 100 && st <= 599 ? (int)st : 200;
                ra = strtol(end, &end, 10);
                if (ra > 0)
                        resp.retry_after_s = ra > KB_HTTP_RETRY_AFTER_MAX_S
                                                 ? KB_HTTP_RETRY_AFTER_MAX_S
                                                 : ra;
                resp.body = body;
                resp.body_len = strlen(body);
                resp.rl_remaining = 5;
        }
        complete(h, &resp);
        free(head);
        free(body);
        return 1;
}

size_t __wrap_kb_http_in_flight(const kb_http_t *h)
{
        return ((const fake_http_t *)(const void *)h)->n;
}

void __wrap_kb_http_counters(const kb_http_t *h, uint64_t *completed,
                             uint64_t *connections)
{
        (void)h;
        if (completed)
                *completed = 0;
        if (connections)
                *connections = 0;
}

/* ---- the target ---- */

static kb_conf_t *conf;
static vec_keys_t vk;

static int64_t clock_cb(void *opaque)
{
        (void)opaque;
        return vclock;
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
        static const char *const set[] = { "vendor.url",
                                           "http://127.0.0.1:9",
                                           "vendor.api_key",
                                           "env:KB_FUZZ_VENDOR_KEY",
                                           "vendor.max_in_flight",
                                           "4",
                                           "vendor.retry_backoff_ms",
                                           "100",
                                           "vendor.retry_backoff_max_ms",
                                           "2000",
                                           NULL };
        char err[256];
        size_t i;

        (void)argc;
        (void)argv;
        fuzz_init(0);
        vec_keys_init(&vk);
        setenv("KB_FUZZ_VENDOR_KEY", "fuzz-api-key", 1);
        conf = kb_conf_new();
        if (!conf)
                abort();
        for (i = 0; set[i]; i += 2)
                if (kb_conf_set(conf, set[i], set[i + 1], "fuzz", err,
                                sizeof(err)) != KB_OK) {
                        fprintf(stderr, "fuzz_vendor: %s\n", err);
                        abort();
                }
        return 0;
}

typedef enum { OP_SHARE, OP_IMPORT, OP_LIST, OP_DECISION, OP_WORKFLOW } op_t;

typedef struct {
        op_t op;
        int done;
} ctx_t;

/* The issuer: the minted token, read from the answer's view as the tree
 * reads it (kb_share_answer_read()), sealed for the partner
 * (seal_envelope() in issuer.c), opens again. */
static void minted(const kb_jview_t *jv)
{
        json_object *tree =
            kb_json_parse(jv->root.p, jv->root.len, 64, NULL, 0);
        const char *ttok = kb_json_get_str(tree, "share_token");
        const char *k = kb_json_get_str(tree, "session_kind");
        kb_session_kind_t kind;
        kb_envelope_fields_t f, g;
        const char *tok;
        char *env = NULL, *t2 = NULL, *owned = NULL, *tokz;
        size_t env_len = 0, t2_len = 0, tl = 0;
        int64_t exp = 0;
        int r;

        FUZZ_CHECK(tree != NULL);
        r = kb_share_answer_read(jv, &tok, &tl, &owned, &kind);
        FUZZ_CHECK(r == KB_OK || r == KB_ERR_MALFORMED);
        FUZZ_CHECK((r == KB_OK) == (ttok && *ttok));
        FUZZ_CHECK(kind == (k && kb_session_kind_parse(k)
                                ? kb_session_kind_parse(k)
                                : KB_SESSION_USER));
        if (r != KB_OK) {
                json_object_put(tree);
                return;
        }
        FUZZ_CHECK(tl == strlen(ttok) && !memcmp(tok, ttok, tl));
        tokz = fuzz_strndup((const uint8_t *)tok, tl);
        if (owned)
                sodium_free(owned);
        json_object_put(tree);
        tok = tokz;
        memset(&f, 0, sizeof(f));
        kb_strlcpy(f.issuer_application_id, VEC_ISSUER_APP,
                   sizeof(f.issuer_application_id));
        kb_strlcpy(f.for_application_id, VEC_RECIPIENT_APP,
                   sizeof(f.for_application_id));
        kb_strlcpy(f.share_id, "share-fuzz", sizeof(f.share_id));
        kb_strlcpy(f.source_session_id, SESSION, sizeof(f.source_session_id));
        f.session_kind = kind;
        f.created_at = FUZZ_NOW;
        if (kb_jwt_exp_unverified(tok, strlen(tok), &exp) != KB_OK)
                exp = 0;
        f.expires_at = exp > 0 ? exp : f.created_at + 3600;
        if (f.expires_at < f.created_at)
                f.expires_at = f.created_at;
        r = kb_envelope_seal(&f, tok, strlen(tok), vk.issuer, vk.recipient,
                             &env, &env_len);
        /* the issuer dead-letters these as token_unsealable */
        if (r == KB_ERR_TOO_LARGE || r == KB_ERR_INVALID_ARG) {
                FUZZ_CHECK(env == NULL);
                free(tokz);
                return;
        }
        FUZZ_CHECK(r == KB_OK);
        r = kb_envelope_open(env, env_len, &vk.opener, NULL, &g, &t2, &t2_len);
        if (f.expires_at > FUZZ_NOW) {
                FUZZ_CHECK(r == KB_OK);
                FUZZ_CHECK(t2_len == strlen(tok) && !strcmp(t2, tok));
                FUZZ_CHECK(g.expires_at == f.expires_at);
        } else {
                FUZZ_CHECK(r == KB_ERR_EXPIRED);
        }
        kb_envelope_token_free(t2);
        free(env);
        free(tokz);
}

/* The importer: the downstream record's session, full or summary. */
static void session(json_object *body)
{
        json_object *sum = kb_session_summary(body);
        const char *txt;
        size_t len;

        FUZZ_CHECK(sum != NULL);
        FUZZ_CHECK(json_object_is_type(sum, json_type_object));
        txt = kb_json_str(sum, &len);
        FUZZ_CHECK(txt && strlen(txt) == len);
        json_object_put(sum);
        txt = kb_json_str(body, &len);
        FUZZ_CHECK(txt != NULL);
        (void)kb_json_get_str(body, "session_id");
        (void)kb_json_get_str(body, "vendor_data");
        (void)kb_status_finished(kb_json_get_str(body, "status"));
}

/* The importer's import answer, read where it lies: the summary written
 * from the text is the tree's. */
static void session_view(const kb_jview_t *jv)
{
        json_object *tree, *a, *b = NULL;
        kb_buf_t out = KB_BUF_INIT;
        char s[256];

        FUZZ_CHECK(kb_session_summary_put(&out, jv) == 0);
        tree = kb_json_parse(jv->root.p, jv->root.len, 64, NULL, 0);
        FUZZ_CHECK(tree != NULL);
        a = kb_session_summary(tree);
        b = kb_json_parse(out.data, out.len, 64, NULL, 0);
        FUZZ_CHECK(a && b && json_object_equal(a, b));
        (void)kb_jval_str(kb_jview_get(jv, "session_id"), s, sizeof(s), NULL);
        (void)kb_jval_count(kb_jview_get(jv, "reviews"));
        json_object_put(a);
        json_object_put(b);
        json_object_put(tree);
        kb_buf_free(&out, 0);
}

/* The importer's reconcile: the list results made from our token. */
static void list(json_object *body)
{
        json_object *results = kb_json_get(body, "results");
        size_t i, n = results && json_object_is_type(results, json_type_array)
                          ? json_object_array_length(results)
                          : 0;
        int64_t no, best = -1;

        for (i = 0; i < n; i++) {
                json_object *s = json_object_array_get_idx(results, i);
                const char *from = kb_json_get_str(s, "shared_from_session");
                const char *sid = kb_json_get_str(s, "session_id");
                if (!from || !sid || strcasecmp(from, SESSION))
                        continue;
                if (!kb_session_created_after(s, TOKEN_IAT))
                        continue;
                no = 0;
                kb_json_get_i64(s, "session_number", &no);
                if (no > best)
                        best = no;
        }
        (void)kb_json_get_str(body, "next");
}

static void verdicts(int status, int err)
{
        static const kb_step_t steps[] = { KB_STEP_MINT, KB_STEP_IMPORT,
                                           KB_STEP_RECONCILE };
        size_t i;
        int a;

        for (i = 0; i < KB_ARRAY_SIZE(steps); i++)
                for (a = KB_ANS_NONE; a <= KB_ANS_UNKNOWN; a++) {
                        kb_verdict_t v =
                            kb_verdict(steps[i], status, err, (kb_answer_t)a);
                        FUZZ_CHECK(v.act >= KB_ACT_PUBLISH &&
                                   v.act <= KB_ACT_RECONCILE);
                        if (v.act == KB_ACT_DEAD_LETTER)
                                FUZZ_CHECK(v.stage && v.reason);
                }
}

static void on_result(const kb_vendor_result_t *res, void *opaque)
{
        ctx_t *c = opaque;

        FUZZ_CHECK(!c->done);
        c->done = 1;
        FUZZ_CHECK(memchr(res->detail, '\0', sizeof(res->detail)));
        FUZZ_CHECK(res->attempts >= 0);
        /* a 2xx; its body may be absent (empty), never unparsable */
        if (res->err == KB_OK)
                FUZZ_CHECK(res->status >= 200 && res->status < 300);
        /* the detail is scrubbed: no token gets out this way */
        FUZZ_CHECK(!fuzz_has_jwt(res->detail));
        verdicts(res->status, res->err);
        if (res->view) {
                FUZZ_CHECK((c->op == OP_IMPORT || c->op == OP_SHARE) &&
                           res->err == KB_OK && !res->body);
                if (c->op == OP_SHARE)
                        minted(res->view);
                else
                        session_view(res->view);
                return;
        }
        if (!res->body)
                return;
        switch (c->op) {
        case OP_SHARE: /* a 2xx came as a view */
                break;
        case OP_IMPORT:
        case OP_DECISION:
                if (res->err == KB_OK)
                        session(res->body);
                break;
        case OP_LIST:
                if (res->err == KB_OK)
                        list(res->body);
                break;
        case OP_WORKFLOW:
                break;
        }
        /* the issuer asks a decision after a 400/404 mint: its status */
        (void)kb_status_finished(kb_json_get_str(res->body, "status"));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        static const char *const ops[] = { "share",    "import",   "list",
                                           "decision", "workflow", NULL };
        const char *tok = "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.e30.c2ln";
        kb_vendor_t *v;
        kb_vendor_stats_t st;
        char err[256], *first;
        ctx_t c = { OP_SHARE, 0 };
        int i, r = KB_ERR_INVALID_ARG;

        in_data = data;
        in_size = size;
        first = fuzz_field(&in_data, &in_size, 0x1e);
        if (!first)
                return 0;
        for (i = 0; ops[i]; i++)
                if (!strncmp(first, ops[i], strlen(ops[i])))
                        c.op = (op_t)i;
        free(first);
        vclock = 1000000;
        nrequests = 0;
        v = kb_vendor_new(conf, NULL, err, sizeof(err));
        if (!v) {
                fprintf(stderr, "fuzz_vendor: %s\n", err);
                abort();
        }
        kb_vendor_set_clock(v, clock_cb, NULL);
        kb_vendor_set_trace(
            v, "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01");
        switch (c.op) {
        case OP_SHARE:
                r = kb_vendor_share(v, SESSION, VEC_RECIPIENT_APP, 3600,
                                    on_result, &c);
                break;
        case OP_IMPORT:
                r = kb_vendor_import(v, tok, strlen(tok), WORKFLOW, "vd-1", 1,
                                     on_result, &c);
                break;
        case OP_LIST:
                r = kb_vendor_list_sessions(v, "vd 1/ä", 0, 100, on_result, &c);
                break;
        case OP_DECISION:
                r = kb_vendor_decision(v, SESSION, on_result, &c);
                break;
        case OP_WORKFLOW:
                r = kb_vendor_workflow(v, WORKFLOW, on_result, &c);
                break;
        }
        FUZZ_CHECK(r == KB_OK);
        for (i = 0; i < MAX_POLL && !c.done && (in_data || !nrequests); i++)
                FUZZ_CHECK(kb_vendor_poll(v, 0) >= 0);
        kb_vendor_stats(v, &st);
        FUZZ_CHECK(st.submitted == 1);
        FUZZ_CHECK(st.started == nrequests);
        kb_vendor_destroy(v);
        /* exactly one callback, answered or aborted */
        FUZZ_CHECK(c.done);
        return 0;
}
