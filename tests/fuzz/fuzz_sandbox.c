/* fuzz_sandbox.c -- the sandbox's request handlers (kb_sbx_h_*) on untrusted
 * request bodies, ids and query strings, in sequences against one fresh
 * in-memory sandbox per input: no server, no network, no state file.
 *
 * Input (tests/fuzz/README.md): one request a line,
 *   APP HANDLER ID QUERY BODY
 * APP "A" or "B" (the caller's application; anything else: none), HANDLER
 * a name of the table below, ID the path's {id} ("-": none), QUERY
 * "k=v&k=v" ("-": none), BODY the rest of the line. In ID and BODY, $A $B
 * (application ids), $S (A's Approved session), $ST (its session token),
 * $W $WK (A's KYC and KYB workflows), $WB (B's KYC workflow), $T (the
 * last share token answered), $L (the last session_id answered) and $D
 * (the last destination id) stand for the values of this run.
 *
 * libmicrohttpd's MHD_lookup_connection_value() is replaced here (the
 * handlers read the query and the Host header through it); the rest of
 * the sandbox runs as it is. KB_FUZZ_DUMP=1 in the environment prints
 * every answer (to make seeds: tests/fuzz/README.md). */
/* fuzz-options: -max_len=20000 */
#include <microhttpd.h>

#include "fuzz.h"
#include "json.h"
#include "sandbox.h"

#define MAX_LINES 24

/* ---- the request's headers and query, as libmicrohttpd would give ---- */

static const char *cur_query; /* "k=v&k=v" or NULL */
/* libmicrohttpd's values live as long as the request: a handler keeps
 * several at once, so each lookup gets a buffer of its own */
static char qval[8][1024];
static unsigned qnext;

const char *MHD_lookup_connection_value(struct MHD_Connection *connection,
                                        enum MHD_ValueKind kind,
                                        const char *key)
{
        const char *p;
        size_t kl = strlen(key);

        (void)connection;
        if (kind == MHD_HEADER_KIND)
                return !strcasecmp(key, "Host") ? "127.0.0.1:8480" : NULL;
        if (kind != MHD_GET_ARGUMENT_KIND || !cur_query)
                return NULL;
        for (p = cur_query; p && *p;
             p = strchr(p, '&') ? strchr(p, '&') + 1 : NULL) {
                if (!strncmp(p, key, kl) &&
                    (p[kl] == '=' || p[kl] == '&' || p[kl] == '\0')) {
                        const char *v = p[kl] == '=' ? p + kl + 1 : "";
                        size_t n = strcspn(v, "&");
                        char *q = qval[qnext++ % 8];
                        if (n >= sizeof(qval[0]))
                                n = sizeof(qval[0]) - 1;
                        memcpy(q, v, n);
                        q[n] = '\0';
                        return q;
                }
        }
        return NULL;
}

/* ---- handlers ---- */

static const struct {
        const char *name;
        kb_sbx_handler_fn *fn;
        const char *path; /* for the fault table and the rate limiter */
        int rl_class;     /* -1: an unauthenticated route (no x-api-key) */
} handlers[] = {
        { "session_create", kb_sbx_h_session_create, "/v3/session/",
          KB_SBX_RL_SESSION_CREATE },
        { "session_import", kb_sbx_h_session_import,
          "/v3/session/import-shared/", KB_SBX_RL_WRITES },
        { "session_share", kb_sbx_h_session_share, "/v3/session/x/share/",
          KB_SBX_RL_WRITES },
        { "session_decision", kb_sbx_h_session_decision,
          "/v3/session/x/decision/", KB_SBX_RL_DECISION },
        { "session_delete", kb_sbx_h_session_delete, "/v3/session/x/delete/",
          KB_SBX_RL_WRITES },
        { "session_update_status", kb_sbx_h_session_update_status,
          "/v3/session/x/update-status/", KB_SBX_RL_WRITES },
        { "sessions_list", kb_sbx_h_sessions_list, "/v3/sessions/",
          KB_SBX_RL_READS },
        { "workflow_create", kb_sbx_h_workflow_create, "/v3/workflows/",
          KB_SBX_RL_WRITES },
        { "workflow_list", kb_sbx_h_workflow_list, "/v3/workflows/",
          KB_SBX_RL_READS },
        { "workflow_get", kb_sbx_h_workflow_get, "/v3/workflows/x/",
          KB_SBX_RL_READS },
        { "workflow_delete", kb_sbx_h_workflow_delete, "/v3/workflows/x/",
          KB_SBX_RL_WRITES },
        { "webhook_get", kb_sbx_h_webhook_get, "/v3/webhook/",
          KB_SBX_RL_READS },
        { "webhook_patch", kb_sbx_h_webhook_patch, "/v3/webhook/",
          KB_SBX_RL_WRITES },
        { "dest_create", kb_sbx_h_dest_create, "/v3/webhook/destinations/",
          KB_SBX_RL_WRITES },
        { "dest_list", kb_sbx_h_dest_list, "/v3/webhook/destinations/",
          KB_SBX_RL_READS },
        { "dest_delete", kb_sbx_h_dest_delete, "/v3/webhook/destinations/x/",
          KB_SBX_RL_WRITES },
        { "verify", kb_sbx_h_verify_page, "/verify/x", -1 },
        { "app_create", kb_sbx_h_app_create, "/sandbox/applications", -1 },
        { "app_list", kb_sbx_h_app_list, "/sandbox/applications", -1 },
        { "app_delete", kb_sbx_h_app_delete, "/sandbox/applications/x", -1 },
        /* these two need a key but are not rate limited */
        { "session_complete", kb_sbx_h_session_complete,
          "/sandbox/sessions/x/complete", -2 },
        { "entities", kb_sbx_h_entities, "/sandbox/entities", -2 },
        { "faults_put", kb_sbx_h_faults_put, "/sandbox/faults", -1 },
        { "faults_get", kb_sbx_h_faults_get, "/sandbox/faults", -1 },
        { "faults_delete", kb_sbx_h_faults_delete, "/sandbox/faults", -1 },
        { "ratelimits_put", kb_sbx_h_ratelimits_put, "/sandbox/rate-limits",
          -1 },
        { "ratelimits_get", kb_sbx_h_ratelimits_get, "/sandbox/rate-limits",
          -1 },
        { "ratelimits_delete", kb_sbx_h_ratelimits_delete,
          "/sandbox/rate-limits", -1 },
        { "clock_put", kb_sbx_h_clock_put, "/sandbox/clock", -1 },
        { "clock_get", kb_sbx_h_clock_get, "/sandbox/clock", -1 },
        { "health", kb_sbx_h_health, "/sandbox/health", -1 },
};

/* ---- one run's sandbox ---- */

typedef struct {
        kb_sbx_t *sbx;
        kb_sbx_app_t *a, *b;
        char s[37], st[33], w[37], wk[37], wb[37];
        char t[8200], l[129], d[129];
        int64_t ms; /* rate limiter clock */
} run_t;

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
        (void)argc;
        (void)argv;
        fuzz_init(0);
        return 0;
}

static int64_t run_now(run_t *r)
{
        return FUZZ_NOW + atomic_load(&r->sbx->clock_offset);
}

/* Copies string member @p name of @p o into @p out. */
static void remember(json_object *o, const char *name, char *out, size_t size)
{
        json_object *v;

        if (o && json_object_is_type(o, json_type_object) &&
            json_object_object_get_ex(o, name, &v) &&
            json_object_is_type(v, json_type_string))
                kb_strlcpy(out, json_object_get_string(v), size);
}

/* @p in with the run's $-names replaced; malloc()ed. */
static char *subst(run_t *r, const char *in)
{
        const struct {
                const char *name, *val;
        } vars[] = {
                /* longest first: $ST before $S, $WK before $W */
                { "$ST", r->st },   { "$WK", r->wk },   { "$WB", r->wb },
                { "$A", r->a->id }, { "$B", r->b->id }, { "$S", r->s },
                { "$W", r->w },     { "$T", r->t },     { "$L", r->l },
                { "$D", r->d },
        };
        kb_buf_t b = KB_BUF_INIT;
        size_t i;

        if (kb_buf_puts(&b, "") == -1)
                abort();
        while (*in) {
                for (i = 0; i < KB_ARRAY_SIZE(vars); i++) {
                        size_t n = strlen(vars[i].name);
                        if (!strncmp(in, vars[i].name, n)) {
                                if (kb_buf_puts(&b, vars[i].val) == -1)
                                        abort();
                                in += n;
                                break;
                        }
                }
                if (i == KB_ARRAY_SIZE(vars)) {
                        if (kb_buf_append(&b, in, 1) == -1)
                                abort();
                        in++;
                }
        }
        return kb_buf_steal(&b, NULL);
}

/* Runs one request; checks what every response must be. */
static int request(run_t *r, kb_sbx_app_t *app, size_t h, const char *id,
                   const char *query, const char *body, size_t body_len)
{
        kb_sbx_req_t req;
        kb_sbx_resp_t resp;
        int64_t lat = 0, ra = 0;
        int fst = 0, corrupt = 0, only2xx = 0, status;
        json_object *doc = NULL;

        memset(&req, 0, sizeof(req));
        memset(&resp, 0, sizeof(resp));
        resp.retry_after = -1;
        req.sbx = r->sbx;
        req.method = "X";
        req.path = handlers[h].path;
        req.id = id;
        req.body = body;
        req.body_len = body_len;
        req.app = app;
        req.now = run_now(r);
        cur_query = query;
        /* what the server does around the handler: faults, rate limits */
        (void)kb_sbx_faults_draw(&r->sbx->faults, handlers[h].path, &lat,
                                 &only2xx, &fst, &ra, &corrupt);
        if (app && handlers[h].rl_class >= 0) {
                r->ms += 250;
                (void)kb_sbx_rl_take(&r->sbx->rl, &app->rl,
                                     handlers[h].rl_class, r->ms, &resp.rl);
        }
        handlers[h].fn(&req, &resp);
        cur_query = NULL;

        /* the handler gave the store lock back */
        FUZZ_CHECK(pthread_mutex_trylock(&r->sbx->store.lock) == 0);
        pthread_mutex_unlock(&r->sbx->store.lock);
        status = resp.status;
        FUZZ_CHECK(status >= 200 && status <= 599);
        /* every body the sandbox writes is JSON (an out-of-memory 500 may
         * come without one) */
        if (resp.body.len) {
                doc =
                    kb_json_parse(resp.body.data, resp.body.len, 128, NULL, 0);
                if (!doc)
                        fprintf(stderr, "%s -> %d: not JSON: %.*s\n",
                                handlers[h].name, status, (int)resp.body.len,
                                resp.body.data);
                FUZZ_CHECK(doc != NULL);
        } else {
                FUZZ_CHECK(status == 204 || status == 500 ||
                           resp.body.data == NULL);
        }
        if (getenv("KB_FUZZ_DUMP"))
                fprintf(stderr, "%s %s -> %d %.*s\n", handlers[h].name,
                        id ? id : "-", status, (int)resp.body.len,
                        resp.body.data ? resp.body.data : "");
        if (status >= 200 && status < 300) {
                remember(doc, "share_token", r->t, sizeof(r->t));
                remember(doc, "session_id", r->l, sizeof(r->l));
                remember(doc, "id", r->d, sizeof(r->d));
        }
        json_object_put(doc);
        kb_buf_free(&resp.body, 1);
        return status;
}

/* Does the handler's route have an {id} segment? */
static int has_id(size_t h)
{
        const char *p = handlers[h].path;

        return strstr(p, "/x/") ||
               (strlen(p) > 2 && !strcmp(p + strlen(p) - 2, "/x"));
}

static size_t handler_index(const char *name)
{
        size_t i;

        for (i = 0; i < KB_ARRAY_SIZE(handlers); i++)
                if (!strcmp(handlers[i].name, name))
                        return i;
        return KB_ARRAY_SIZE(handlers);
}

/* Two applications, three workflows, one Approved session of A. */
static void setup(run_t *r)
{
        kb_sbx_conf_t conf;
        kb_sbx_store_t *st;
        kb_sbx_workflow_t *w, *wk, *wb;
        kb_sbx_session_t *s;

        memset(r, 0, sizeof(*r));
        r->sbx = calloc(1, sizeof(*r->sbx));
        if (!r->sbx)
                abort();
        kb_sbx_conf_init(&conf);
        conf.have_seed = 1;
        conf.seed = 20261122;
        r->sbx->conf = conf;
        r->sbx->seed = conf.seed;
        atomic_init(&r->sbx->clock_offset, 0);
        kb_strlcpy(r->sbx->base_url, "http://127.0.0.1:8480",
                   sizeof(r->sbx->base_url));
        r->sbx->port = 8480;
        if (kb_sbx_store_init(&r->sbx->store, conf.seed, 0) == -1)
                abort();
        r->sbx->store_ready = 1;
        kb_sbx_rl_init(&r->sbx->rl);
        r->sbx->rl_ready = 1;
        kb_sbx_faults_init(&r->sbx->faults, conf.seed);
        r->sbx->faults_ready = 1;
        r->ms = FUZZ_NOW * 1000;

        st = &r->sbx->store;
        pthread_mutex_lock(&st->lock);
        r->a = kb_sbx_app_create(st, "Service X", FUZZ_NOW);
        r->b = kb_sbx_app_create(st, "Service Y", FUZZ_NOW);
        if (!r->a || !r->b)
                abort();
        w = kb_sbx_workflow_create(st, r->a, "KYC", KB_SBX_USER, 1, 0x1ff,
                                   FUZZ_NOW);
        wk = kb_sbx_workflow_create(st, r->a, "KYB", KB_SBX_BUSINESS, 0, 0,
                                    FUZZ_NOW);
        wb = kb_sbx_workflow_create(st, r->b, "KYC", KB_SBX_USER, 1, 0,
                                    FUZZ_NOW);
        if (!w || !wk || !wb)
                abort();
        s = kb_sbx_session_create(st, r->a, w->id, KB_SBX_USER,
                                  KB_SBX_ST_NOT_STARTED, "user-1", "{\"k\":1}",
                                  NULL, 1, FUZZ_NOW);
        if (!s)
                abort();
        memcpy(r->s, s->id, sizeof(r->s));
        memcpy(r->st, s->token, sizeof(r->st));
        memcpy(r->w, w->id, sizeof(r->w));
        memcpy(r->wk, wk->id, sizeof(r->wk));
        memcpy(r->wb, wb->id, sizeof(r->wb));
        pthread_mutex_unlock(&st->lock);
        /* finished with synthetic data, as the demo does */
        FUZZ_CHECK(request(r, r->a, handler_index("session_complete"), r->s,
                           NULL, "", 0) == 200);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        run_t r;
        int lines = 0;

        setup(&r);
        while (data && lines++ < MAX_LINES) {
                char *line = fuzz_field(&data, &size, '\n');
                const uint8_t *lp = (const uint8_t *)line;
                size_t ll = strlen(line);
                char *app, *name, *id, *query, *body, *sid, *sbody;
                kb_sbx_app_t *caller;
                size_t h;

                app = fuzz_field(&lp, &ll, ' ');
                name = fuzz_field(&lp, &ll, ' ');
                id = fuzz_field(&lp, &ll, ' ');
                query = fuzz_field(&lp, &ll, ' ');
                body = lp ? fuzz_strndup(lp, ll) : fuzz_strndup(NULL, 0);
                h = name ? handler_index(name) : KB_ARRAY_SIZE(handlers);
                caller = !app                ? NULL
                         : !strcmp(app, "A") ? r.a
                         : !strcmp(app, "B") ? r.b
                                             : NULL;
                /* the server answers 401 before a keyed route's handler
                 * runs without a key: such requests are not made */
                if (h < KB_ARRAY_SIZE(handlers) &&
                    (caller || handlers[h].rl_class == -1)) {
                        /* a route with an {id} segment always has a
                         * non-empty one; the others have none */
                        sid = NULL;
                        if (has_id(h)) {
                                sid = subst(&r,
                                            id && !strchr(id, '/') ? id : "-");
                                if (!sid[0]) {
                                        free(sid);
                                        sid = strdup("-");
                                }
                        }
                        sbody = subst(&r, body);
                        if (handlers[h].rl_class == -1)
                                caller = NULL; /* the server sets none */
                        (void)request(&r, caller, h, sid,
                                      query && strcmp(query, "-") ? query
                                                                  : NULL,
                                      sbody, strlen(sbody));
                        free(sid);
                        free(sbody);
                }
                free(app);
                free(name);
                free(id);
                free(query);
                free(body);
                free(line);
        }
        kb_sbx_destroy(r.sbx);
        return 0;
}
