/* sandbox_http.c -- libmicrohttpd glue of the sandbox: bodies, routing, hooks
 */
#include "mhd.h"
#include "sandbox.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <microhttpd.h>

#include "json.h"
#include "log.h"
#include "metrics.h"

#define FAC "sandbox"

static kb_sbx_handler_fn h_metrics;

/* Endpoint label of a request no route took (404, 405). */
#define EP_UNMATCHED "unmatched"

/* Route flags */
#define R_AUTH  0x1U /* x-api-key required */
#define R_V3    0x2U /* vendor API: rate limited, X-RateLimit-* headers */
#define R_SLASH 0x4U /* a trailing slash is optional */

typedef struct route_s {
        const char *method;
        const char *pattern; /* "{}" matches one non-empty path segment */
        kb_sbx_handler_fn *fn;
        unsigned flags;
        int rl_class; /* -1: not rate limited */
} route_t;

static const route_t routes[] = {
        /* vendor API (API-CONTRACT.md) */
        { "POST", "/v3/session/", kb_sbx_h_session_create, R_AUTH | R_V3,
          KB_SBX_RL_SESSION_CREATE },
        { "POST", "/v3/session/import-shared/", kb_sbx_h_session_import,
          R_AUTH | R_V3, KB_SBX_RL_WRITES },
        { "POST", "/v3/session/{}/share/", kb_sbx_h_session_share,
          R_AUTH | R_V3, KB_SBX_RL_WRITES },
        { "GET", "/v3/session/{}/decision/", kb_sbx_h_session_decision,
          R_AUTH | R_V3, KB_SBX_RL_DECISION },
        { "DELETE", "/v3/session/{}/delete/", kb_sbx_h_session_delete,
          R_AUTH | R_V3, KB_SBX_RL_WRITES },
        { "PATCH", "/v3/session/{}/update-status/",
          kb_sbx_h_session_update_status, R_AUTH | R_V3, KB_SBX_RL_WRITES },
        { "GET", "/v3/sessions/", kb_sbx_h_sessions_list, R_AUTH | R_V3,
          KB_SBX_RL_READS },
        { "POST", "/v3/workflows/", kb_sbx_h_workflow_create, R_AUTH | R_V3,
          KB_SBX_RL_WRITES },
        { "GET", "/v3/workflows/", kb_sbx_h_workflow_list, R_AUTH | R_V3,
          KB_SBX_RL_READS },
        { "GET", "/v3/workflows/{}/", kb_sbx_h_workflow_get, R_AUTH | R_V3,
          KB_SBX_RL_READS },
        { "DELETE", "/v3/workflows/{}/", kb_sbx_h_workflow_delete,
          R_AUTH | R_V3, KB_SBX_RL_WRITES },
        { "GET", "/v3/webhook/", kb_sbx_h_webhook_get, R_AUTH | R_V3,
          KB_SBX_RL_READS },
        { "PATCH", "/v3/webhook/", kb_sbx_h_webhook_patch, R_AUTH | R_V3,
          KB_SBX_RL_WRITES },
        { "POST", "/v3/webhook/destinations/", kb_sbx_h_dest_create,
          R_AUTH | R_V3, KB_SBX_RL_WRITES },
        { "GET", "/v3/webhook/destinations/", kb_sbx_h_dest_list, R_AUTH | R_V3,
          KB_SBX_RL_READS },
        { "DELETE", "/v3/webhook/destinations/{}/", kb_sbx_h_dest_delete,
          R_AUTH | R_V3, KB_SBX_RL_WRITES },
        /* the page a session's url points at */
        { "GET", "/verify/{}", kb_sbx_h_verify_page, R_SLASH, -1 },
        /* sandbox extras */
        { "POST", "/sandbox/applications", kb_sbx_h_app_create, R_SLASH, -1 },
        { "GET", "/sandbox/applications", kb_sbx_h_app_list, R_SLASH, -1 },
        { "DELETE", "/sandbox/applications/{}", kb_sbx_h_app_delete, R_SLASH,
          -1 },
        { "POST", "/sandbox/sessions/{}/complete", kb_sbx_h_session_complete,
          R_AUTH | R_SLASH, -1 },
        { "GET", "/sandbox/entities", kb_sbx_h_entities, R_AUTH | R_SLASH, -1 },
        { "PUT", "/sandbox/faults", kb_sbx_h_faults_put, R_SLASH, -1 },
        { "GET", "/sandbox/faults", kb_sbx_h_faults_get, R_SLASH, -1 },
        { "DELETE", "/sandbox/faults", kb_sbx_h_faults_delete, R_SLASH, -1 },
        { "PUT", "/sandbox/rate-limits", kb_sbx_h_ratelimits_put, R_SLASH, -1 },
        { "GET", "/sandbox/rate-limits", kb_sbx_h_ratelimits_get, R_SLASH, -1 },
        { "DELETE", "/sandbox/rate-limits", kb_sbx_h_ratelimits_delete, R_SLASH,
          -1 },
        { "PUT", "/sandbox/clock", kb_sbx_h_clock_put, R_SLASH, -1 },
        { "GET", "/sandbox/clock", kb_sbx_h_clock_get, R_SLASH, -1 },
        { "GET", "/sandbox/health", kb_sbx_h_health, R_SLASH, -1 },
        /* operations: Prometheus metrics (no key: not a vendor route) */
        { "GET", "/metrics", h_metrics, 0, -1 },
};

/* A response held back by an injected latency. */
typedef struct delayed_s {
        int64_t due_us; /* monotonic */
        struct MHD_Connection *conn;
} delayed_t;

struct kb_sbx_http_s {
        kb_sbx_t *sbx;
        struct MHD_Daemon *d;
        int port;
        atomic_long inflight;
        atomic_uint_fast64_t nreq;
        /* delayed-response timer */
        pthread_t timer;
        int timer_started;
        pthread_mutex_t tlock;
        pthread_cond_t tcond;
        delayed_t *heap; /* min-heap on due_us */
        size_t nheap, capheap;
        int timer_stop;    /* resume everything now and exit */
        long suspended;    /* connections currently suspended (tlock) */
        kb_metrics_t *reg; /* GET /metrics */
        kb_metric_family_t *m_req, *m_dur;
};

/* Per-request state (MHD's con_cls). */
typedef struct req_ctx_s {
        kb_buf_t body;
        int too_large;
        size_t discarded;
        int64_t t0_us;
        struct MHD_Response *pending; /* delayed response, queued on resume */
        int pending_status;
        const char *endpoint; /* metrics: route pattern, once answered */
} req_ctx_t;

/* ---------------------------------------------------------------------- */
/* Responses */

void kb_sbx_resp_error(kb_sbx_resp_t *resp, int status, const char *fmt, ...)
{
        char msg[512];
        va_list ap;

        va_start(ap, fmt);
        vsnprintf(msg, sizeof(msg), fmt, ap);
        va_end(ap);
        kb_buf_reset(&resp->body);
        if (kb_buf_puts(&resp->body, "{\"detail\":") == -1 ||
            kb_sbx_jstr(&resp->body, msg) == -1 ||
            kb_buf_puts(&resp->body, "}") == -1) {
                kb_buf_free(&resp->body, 0);
                resp->status = 500;
                return;
        }
        resp->status = status;
}

void kb_sbx_resp_json(kb_sbx_resp_t *resp, int status)
{
        resp->status = status;
}

json_object *kb_sbx_req_json(kb_sbx_req_t *req, kb_sbx_resp_t *resp)
{
        char err[128];
        json_object *obj;
        size_t i;

        for (i = 0; i < req->body_len; i++) {
                char c = req->body[i];
                if (c != ' ' && c != '\t' && c != '\r' && c != '\n')
                        break;
        }
        if (i == req->body_len) {
                obj = json_object_new_object();
                if (!obj)
                        kb_sbx_resp_error(resp, 500, "Out of memory.");
                return obj;
        }
        obj = kb_json_parse(req->body, req->body_len, 64, err, sizeof(err));
        if (!obj) {
                kb_sbx_resp_error(resp, 400, "JSON parse error - %s.", err);
                return NULL;
        }
        if (!json_object_is_type(obj, json_type_object)) {
                json_object_put(obj);
                kb_sbx_resp_error(resp, 400,
                                  "Invalid data. Expected a JSON object.");
                return NULL;
        }
        return obj;
}

int kb_sbx_lock_app(kb_sbx_req_t *req, kb_sbx_resp_t *resp)
{
        pthread_mutex_lock(&req->sbx->store.lock);
        if (req->app && req->app->deleted) {
                pthread_mutex_unlock(&req->sbx->store.lock);
                kb_sbx_resp_error(resp, 401, "Invalid API key.");
                return -1;
        }
        return 0;
}

kb_sbx_session_t *kb_sbx_lock_session(kb_sbx_req_t *req, kb_sbx_resp_t *resp)
{
        kb_sbx_session_t *s;

        if (kb_sbx_lock_app(req, resp) == -1)
                return NULL;
        s = kb_sbx_session_get(&req->sbx->store, req->app, req->id);
        if (!s) {
                pthread_mutex_unlock(&req->sbx->store.lock);
                kb_sbx_resp_error(resp, 404, "Session not found.");
        }
        return s;
}

kb_sbx_workflow_t *kb_sbx_lock_workflow(kb_sbx_req_t *req, kb_sbx_resp_t *resp)
{
        kb_sbx_workflow_t *wf;

        if (kb_sbx_lock_app(req, resp) == -1)
                return NULL;
        wf = kb_sbx_workflow_get(&req->sbx->store, req->app, req->id);
        if (!wf) {
                pthread_mutex_unlock(&req->sbx->store.lock);
                kb_sbx_resp_error(resp, 404, "Workflow not found.");
        }
        return wf;
}

const char *kb_sbx_req_query(kb_sbx_req_t *req, const char *name)
{
        return MHD_lookup_connection_value(req->conn, MHD_GET_ARGUMENT_KIND,
                                           name);
}

void kb_sbx_req_base_url(kb_sbx_req_t *req, char *out, size_t size)
{
        const char *host = MHD_lookup_connection_value(
            req->conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_HOST);
        size_t i, n;

        if (host) {
                n = strlen(host);
                for (i = 0; i < n; i++) {
                        char c = host[i];
                        if (!((c >= 'a' && c <= 'z') ||
                              (c >= 'A' && c <= 'Z') ||
                              (c >= '0' && c <= '9') || c == '.' || c == ':' ||
                              c == '-' || c == '[' || c == ']'))
                                break;
                }
                if (n > 0 && n < 200 && i == n) {
                        kb_snprintf(out, size, "http://%s", host);
                        return;
                }
        }
        kb_strlcpy(out, kb_sbx_base_url(req->sbx), size);
}

static struct MHD_Response *mhd_response(kb_sbx_resp_t *r)
{
        struct MHD_Response *mr;
        char num[32];
        char *data = NULL;
        size_t len = 0;

        if (r->status != 204) {
                if (!r->body.data) {
                        r->status = 500;
                        kb_buf_puts(&r->body,
                                    "{\"detail\":\"Out of memory.\"}");
                }
                data = kb_buf_steal(&r->body, &len);
        }
        if (data)
                mr = MHD_create_response_from_buffer(len, data,
                                                     MHD_RESPMEM_MUST_FREE);
        else
                mr = MHD_create_response_from_buffer(0, (void *)"",
                                                     MHD_RESPMEM_PERSISTENT);
        if (!mr) {
                free(data);
                return NULL;
        }
        if (r->status != 204)
                MHD_add_response_header(mr, MHD_HTTP_HEADER_CONTENT_TYPE,
                                        r->content_type ? r->content_type
                                                        : "application/json");
        if (r->rl_set) {
                snprintf(num, sizeof(num), "%lld", (long long)r->rl.limit);
                MHD_add_response_header(mr, "X-RateLimit-Limit", num);
                snprintf(num, sizeof(num), "%lld", (long long)r->rl.remaining);
                MHD_add_response_header(mr, "X-RateLimit-Remaining", num);
                snprintf(num, sizeof(num), "%lld", (long long)r->rl.reset);
                MHD_add_response_header(mr, "X-RateLimit-Reset", num);
        }
        if (r->retry_after >= 0) {
                snprintf(num, sizeof(num), "%lld", (long long)r->retry_after);
                MHD_add_response_header(mr, MHD_HTTP_HEADER_RETRY_AFTER, num);
        }
        if (r->allow[0])
                MHD_add_response_header(mr, MHD_HTTP_HEADER_ALLOW, r->allow);
        return mr;
}

/* ---------------------------------------------------------------------- */
/* Delayed responses: suspended connections resumed by a timer thread */

static void heap_swap(delayed_t *a, delayed_t *b)
{
        delayed_t t = *a;
        *a = *b;
        *b = t;
}

static int heap_push(kb_sbx_http_t *h, int64_t due_us,
                     struct MHD_Connection *conn)
{
        size_t i;

        if (h->nheap == h->capheap) {
                size_t nc = h->capheap ? h->capheap * 2 : 64;
                delayed_t *nh = realloc(h->heap, nc * sizeof(*nh));
                if (!nh)
                        return -1;
                h->heap = nh;
                h->capheap = nc;
        }
        i = h->nheap++;
        h->heap[i].due_us = due_us;
        h->heap[i].conn = conn;
        while (i > 0 && h->heap[(i - 1) / 2].due_us > h->heap[i].due_us) {
                heap_swap(&h->heap[(i - 1) / 2], &h->heap[i]);
                i = (i - 1) / 2;
        }
        return 0;
}

static delayed_t heap_pop(kb_sbx_http_t *h)
{
        delayed_t top = h->heap[0];
        size_t i = 0;

        h->heap[0] = h->heap[--h->nheap];
        for (;;) {
                size_t l = 2 * i + 1, r = l + 1, m = i;
                if (l < h->nheap && h->heap[l].due_us < h->heap[m].due_us)
                        m = l;
                if (r < h->nheap && h->heap[r].due_us < h->heap[m].due_us)
                        m = r;
                if (m == i)
                        break;
                heap_swap(&h->heap[m], &h->heap[i]);
                i = m;
        }
        return top;
}

static void *timer_main(void *arg)
{
        kb_sbx_http_t *h = arg;

        pthread_mutex_lock(&h->tlock);
        for (;;) {
                int64_t now = kb_mono_us();

                while (h->nheap > 0 &&
                       (h->timer_stop || h->heap[0].due_us <= now)) {
                        delayed_t d = heap_pop(h);
                        h->suspended--;
                        MHD_resume_connection(d.conn);
                }
                if (h->timer_stop)
                        break;
                if (h->nheap == 0) {
                        pthread_cond_wait(&h->tcond, &h->tlock);
                } else {
                        struct timespec ts;
                        int64_t due = h->heap[0].due_us;
                        ts.tv_sec = (time_t)(due / 1000000);
                        ts.tv_nsec = (long)(due % 1000000) * 1000L;
                        pthread_cond_timedwait(&h->tcond, &h->tlock, &ts);
                }
        }
        pthread_mutex_unlock(&h->tlock);
        return NULL;
}

/* Suspends @p conn and arranges its resumption at @p due_us (monotonic). */
static int delay_connection(kb_sbx_http_t *h, struct MHD_Connection *conn,
                            int64_t due_us)
{
        int rc;

        pthread_mutex_lock(&h->tlock);
        if (h->timer_stop) {
                pthread_mutex_unlock(&h->tlock);
                return -1;
        }
        /* suspend before the timer can see it, so resume follows suspend */
        MHD_suspend_connection(conn);
        rc = heap_push(h, due_us, conn);
        if (rc == -1) {
                pthread_mutex_unlock(&h->tlock);
                MHD_resume_connection(conn);
                return 0; /* resumed at once: still answered */
        }
        h->suspended++;
        pthread_cond_signal(&h->tcond);
        pthread_mutex_unlock(&h->tlock);
        return 0;
}

/* ---------------------------------------------------------------------- */
/* Routing and dispatch */

/* Matches @p path (length @p plen) against @p pat; the first "{}" segment
 * goes to *id_off / *id_len. */
static int pattern_match(const char *pat, const char *path, size_t plen,
                         size_t *id_off, size_t *id_len)
{
        size_t i = 0;
        int captured = 0;

        while (*pat) {
                if (pat[0] == '{' && pat[1] == '}') {
                        size_t start = i;
                        while (i < plen && path[i] != '/')
                                i++;
                        if (i == start)
                                return 0;
                        if (!captured) {
                                *id_off = start;
                                *id_len = i - start;
                                captured = 1;
                        }
                        pat += 2;
                        continue;
                }
                if (i >= plen || path[i] != *pat)
                        return 0;
                i++;
                pat++;
        }
        return i == plen;
}

static int route_match(const route_t *r, const char *path, size_t *id_off,
                       size_t *id_len)
{
        size_t plen = strlen(path);

        *id_len = 0;
        if (pattern_match(r->pattern, path, plen, id_off, id_len))
                return 1;
        if ((r->flags & R_SLASH) && plen > 1 && path[plen - 1] == '/')
                return pattern_match(r->pattern, path, plen - 1, id_off,
                                     id_len);
        return 0;
}

static int64_t wall_ms(void)
{
        struct timespec ts;

        clock_gettime(CLOCK_REALTIME, &ts);
        return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int is_vendor_path(const char *path)
{
        return !strncmp(path, "/v3/", 4) || !strcmp(path, "/v3");
}

/* Runs one complete request; fills @p resp. Returns the matched route. */
static const route_t *dispatch(kb_sbx_http_t *h, struct MHD_Connection *conn,
                               const char *url, const char *method,
                               req_ctx_t *ctx, kb_sbx_resp_t *resp)
{
        kb_sbx_t *sbx = h->sbx;
        const route_t *route = NULL;
        kb_sbx_req_t req;
        char idbuf[256];
        size_t i, id_off = 0, id_len = 0;
        int path_known = 0, v3 = is_vendor_path(url);
        int rl_class =
            !strcmp(method, "GET") ? KB_SBX_RL_READS : KB_SBX_RL_WRITES;

        memset(&req, 0, sizeof(req));
        req.sbx = sbx;
        req.http = h;
        req.conn = conn;
        req.method = method;
        req.path = url;
        req.now = kb_sbx_now(sbx);

        if (ctx->too_large) {
                kb_sbx_resp_error(resp, 413,
                                  "Request body exceeds the limit of %d bytes.",
                                  KB_SBX_BODY_MAX);
                goto headers;
        }
        for (i = 0; i < KB_ARRAY_SIZE(routes); i++) {
                size_t off, len;
                if (!route_match(&routes[i], url, &off, &len))
                        continue;
                if (!path_known) {
                        resp->allow[0] = '\0';
                        path_known = 1;
                }
                if (!strcmp(routes[i].method, method)) {
                        route = &routes[i];
                        id_off = off;
                        id_len = len;
                        break;
                }
                if (strlen(resp->allow) + strlen(routes[i].method) + 3 <
                    sizeof(resp->allow)) {
                        if (resp->allow[0])
                                strcat(resp->allow, ", ");
                        strcat(resp->allow, routes[i].method);
                }
        }
        if (!route) {
                if (path_known)
                        kb_sbx_resp_error(resp, 405,
                                          "Method \"%s\" not allowed.", method);
                else
                        kb_sbx_resp_error(resp, 404, "Not found.");
                goto headers;
        }
        resp->allow[0] = '\0';
        rl_class = route->rl_class;
        if (id_len) {
                if (id_len >= sizeof(idbuf)) {
                        kb_sbx_resp_error(resp, 404, "Not found.");
                        goto headers;
                }
                memcpy(idbuf, url + id_off, id_len);
                idbuf[id_len] = '\0';
                req.id = idbuf;
        }
        if (route->flags & R_AUTH) {
                const char *key = MHD_lookup_connection_value(
                    conn, MHD_HEADER_KIND, "x-api-key");
                if (!key || !*key) {
                        kb_sbx_resp_error(
                            resp, 401,
                            "Authentication credentials were not provided.");
                        goto headers;
                }
                pthread_mutex_lock(&sbx->store.lock);
                req.app = kb_sbx_app_by_key(&sbx->store, key);
                pthread_mutex_unlock(&sbx->store.lock);
                if (!req.app) {
                        kb_sbx_resp_error(resp, 401, "Invalid API key.");
                        goto headers;
                }
        }
        if ((route->flags & R_V3) && req.app && rl_class >= 0) {
                resp->rl_set = 1;
                if (kb_sbx_rl_take(&sbx->rl, &req.app->rl, rl_class, wall_ms(),
                                   &resp->rl) == 1) {
                        kb_sbx_resp_error(resp, 429,
                                          "Request was throttled. Expected "
                                          "available in %lld seconds.",
                                          (long long)resp->rl.retry_after);
                        resp->retry_after = resp->rl.retry_after;
                        return route;
                }
        }
        req.body = ctx->body.data ? ctx->body.data : "";
        req.body_len = ctx->body.len;
        route->fn(&req, resp);
headers:
        if (v3 && !resp->rl_set && rl_class >= 0) {
                resp->rl_set = 1;
                kb_sbx_rl_peek(&sbx->rl, rl_class, wall_ms(), &resp->rl);
        }
        return route;
}

/* Metrics: the response of @p ctx goes out now (counted before it is
 * queued, so a client that read it finds it counted). */
static void count_response(kb_sbx_http_t *h, const req_ctx_t *ctx, int status)
{
        char st[16];

        if (!ctx->endpoint)
                return;
        snprintf(st, sizeof(st), "%d", status);
        kb_metric_inc(kb_metric_child(h->m_req, ctx->endpoint, st));
        kb_metric_observe(kb_metric_child(h->m_dur, ctx->endpoint),
                          (double)(kb_mono_us() - ctx->t0_us) / 1e6);
}

static enum MHD_Result queue_or_delay(kb_sbx_http_t *h,
                                      struct MHD_Connection *conn,
                                      req_ctx_t *ctx, kb_sbx_resp_t *resp,
                                      int64_t latency_ms)
{
        struct MHD_Response *mr = mhd_response(resp);
        enum MHD_Result ret;

        if (!mr)
                return MHD_NO;
        /* the injected latency counts from the request's arrival */
        if (latency_ms > 0 && kb_mono_us() < ctx->t0_us + latency_ms * 1000) {
                ctx->pending = mr;
                ctx->pending_status = resp->status;
                if (delay_connection(h, conn, ctx->t0_us + latency_ms * 1000) ==
                    0)
                        return MHD_YES;
                ctx->pending = NULL;
        }
        count_response(h, ctx, resp->status);
        ret = MHD_queue_response(conn, (unsigned)resp->status, mr);
        MHD_destroy_response(mr);
        return ret;
}

/* The pattern of the route @p method @p url would take, else
 * EP_UNMATCHED: the endpoint label (never the path, which carries ids). */
static const char *endpoint_of(const route_t *route, const char *url,
                               const char *method)
{
        size_t i, off, len;

        if (route)
                return route->pattern;
        for (i = 0; i < KB_ARRAY_SIZE(routes); i++)
                if (!strcmp(routes[i].method, method) &&
                    route_match(&routes[i], url, &off, &len))
                        return routes[i].pattern;
        return EP_UNMATCHED;
}

static void log_request(const char *method, const route_t *route,
                        const char *url, int status, int64_t t0_us)
{
        /* the route pattern, not the path: paths carry session tokens */
        KB_LOG(KB_LOG_DEBUG, FAC, "%s %s -> %d (%lld us)", method,
               route ? route->pattern : (is_vendor_path(url) ? "/v3/?" : "?"),
               status, (long long)(kb_mono_us() - t0_us));
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn,
                                  const char *url, const char *method,
                                  const char *version, const char *upload_data,
                                  size_t *upload_data_size, void **con_cls)
{
        kb_sbx_http_t *h = cls;
        req_ctx_t *ctx = *con_cls;
        kb_sbx_resp_t resp;
        const route_t *route;
        int64_t latency = 0, retry_after = 0;
        int fault_status = 0, corrupt = 0, latency_2xx = 0;
        enum MHD_Result ret;

        if (!ctx) {
                const char *cl;
                ctx = calloc(1, sizeof(*ctx));
                if (!ctx)
                        return MHD_NO;
                *con_cls = ctx;
                atomic_fetch_add(&h->inflight, 1);
                atomic_fetch_add(&h->nreq, 1);
                ctx->t0_us = kb_mono_us();
                cl = MHD_lookup_connection_value(
                    conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH);
                if (cl) {
                        int64_t n;
                        if (kb_parse_i64(cl, 0, INT64_MAX, &n) == -1 ||
                            n > KB_SBX_BODY_MAX) {
                                /* answer from the header, body unread */
                                ctx->too_large = 1;
                                memset(&resp, 0, sizeof(resp));
                                resp.retry_after = -1;
                                route =
                                    dispatch(h, conn, url, method, ctx, &resp);
                                log_request(method, route, url, resp.status,
                                            ctx->t0_us);
                                ctx->endpoint = endpoint_of(route, url, method);
                                ret = queue_or_delay(h, conn, ctx, &resp, 0);
                                kb_buf_free(&resp.body, 0);
                                return ret;
                        }
                }
                return MHD_YES;
        }
        if (ctx->pending) {
                /* resumed after an injected latency */
                struct MHD_Response *mr = ctx->pending;
                ctx->pending = NULL;
                count_response(h, ctx, ctx->pending_status);
                ret =
                    MHD_queue_response(conn, (unsigned)ctx->pending_status, mr);
                MHD_destroy_response(mr);
                return ret;
        }
        if (*upload_data_size) {
                size_t n = *upload_data_size;
                *upload_data_size = 0;
                if (ctx->too_large) {
                        /* chunked upload past the limit: drain, then 413 */
                        ctx->discarded += n;
                        return ctx->discarded > 64U * KB_SBX_BODY_MAX ? MHD_NO
                                                                      : MHD_YES;
                }
                if (ctx->body.len + n > KB_SBX_BODY_MAX) {
                        ctx->too_large = 1;
                        kb_buf_free(&ctx->body, 0);
                        return MHD_YES;
                }
                return kb_buf_append(&ctx->body, upload_data, n) == -1
                           ? MHD_NO
                           : MHD_YES;
        }

        memset(&resp, 0, sizeof(resp));
        resp.retry_after = -1;
        if (strncmp(url, "/sandbox/", 9) != 0 && strcmp(url, "/sandbox") &&
            strcmp(url, "/metrics") &&
            kb_sbx_faults_draw(&h->sbx->faults, url, &latency, &latency_2xx,
                               &fault_status, &retry_after, &corrupt) &&
            fault_status) {
                /* an injected error: the request is not processed */
                kb_sbx_resp_error(&resp, fault_status,
                                  "Injected fault (sandbox): HTTP %d.",
                                  fault_status);
                if (fault_status == 429)
                        resp.retry_after = retry_after;
                if (is_vendor_path(url)) {
                        resp.rl_set = 1;
                        kb_sbx_rl_peek(&h->sbx->rl,
                                       !strcmp(method, "GET")
                                           ? KB_SBX_RL_READS
                                           : KB_SBX_RL_WRITES,
                                       wall_ms(), &resp.rl);
                }
                route = NULL;
        } else {
                route = dispatch(h, conn, url, method, ctx, &resp);
        }
        if (corrupt && resp.status >= 200 && resp.status < 300 &&
            resp.body.len > 0) {
                /* processed (the vendor did it), but the answer is lost in
                 * transit: what the client reads is no JSON */
                kb_buf_free(&resp.body, 1);
                if (kb_buf_append(&resp.body, KB_SBX_CORRUPT_BODY,
                                  sizeof(KB_SBX_CORRUPT_BODY) - 1) == -1)
                        kb_buf_free(&resp.body, 0);
                KB_LOG(KB_LOG_DEBUG, FAC, "%s %s: 2xx body garbled (fault)",
                       method,
                       route ? route->pattern
                             : (is_vendor_path(url) ? "/v3/?" : "?"));
        }
        /* a fault that delays only what the vendor did: a 2xx answer */
        if (latency_2xx && !(resp.status >= 200 && resp.status < 300))
                latency = 0;
        log_request(method, route, url, resp.status, ctx->t0_us);
        ctx->endpoint = endpoint_of(route, url, method);
        ret = queue_or_delay(h, conn, ctx, &resp, latency);
        kb_buf_free(&resp.body, 0);
        return ret;
}

static void on_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
                         enum MHD_RequestTerminationCode toe)
{
        kb_sbx_http_t *h = cls;
        req_ctx_t *ctx = *con_cls;

        if (!ctx)
                return;
        if (ctx->pending)
                MHD_destroy_response(ctx->pending);
        kb_buf_free(&ctx->body, 1);
        free(ctx);
        *con_cls = NULL;
        atomic_fetch_sub(&h->inflight, 1);
}

/* ---------------------------------------------------------------------- */
/* Lifecycle */

/* ---------------------------------------------------------------------- */
/* Metrics */

static void h_metrics(kb_sbx_req_t *req, kb_sbx_resp_t *resp)
{
        kb_buf_reset(&resp->body);
        if (kb_metrics_render(req->http->reg, &resp->body) != KB_OK) {
                kb_sbx_resp_error(resp, 500, "Out of memory.");
                return;
        }
        /* an empty rendering still needs a buffer (mhd_response) */
        if (!resp->body.data && kb_buf_puts(&resp->body, "") == -1) {
                kb_sbx_resp_error(resp, 500, "Out of memory.");
                return;
        }
        resp->content_type = "text/plain; version=0.0.4; charset=utf-8";
        resp->status = 200;
}

static void collect_webhooks(void *opaque, kb_metric_emit_t *emit)
{
        kb_sbx_http_t *h = opaque;
        uint64_t ok = 0, failed = 0, pending = 0;

        if (h->sbx->wh)
                kb_sbx_webhook_stats(h->sbx->wh, &ok, &failed, &pending);
        kb_metric_emit(emit, (double)ok, "delivered");
        kb_metric_emit(emit, (double)failed, "failed");
}

static void collect_pending(void *opaque, kb_metric_emit_t *emit)
{
        kb_sbx_http_t *h = opaque;
        uint64_t ok = 0, failed = 0, pending = 0;

        if (h->sbx->wh)
                kb_sbx_webhook_stats(h->sbx->wh, &ok, &failed, &pending);
        kb_metric_emitv(emit, NULL, 0, (double)pending);
}

static int metrics_build(kb_sbx_http_t *h, char *errstr, size_t errstr_size)
{
        static const char *const req_l[] = { "endpoint", "status", NULL };
        static const char *const ep_l[] = { "endpoint", NULL };
        static const char *const res_l[] = { "result", NULL };
        kb_metric_family_t *fam;
        kb_metric_desc_t d[4];
        size_t i;
        int r;

        h->reg = kb_metrics_new(errstr, errstr_size);
        if (!h->reg)
                return -1;
        memset(d, 0, sizeof(d));
        d[0].name = "kyc_bridge_sandbox_requests_total";
        d[0].help = "Requests the sandbox answered, by endpoint (the route "
                    "pattern, such as /v3/session/{}/share/; unmatched: no "
                    "route) and HTTP status, injected faults included.";
        d[0].type = KB_METRIC_COUNTER;
        d[0].labels = req_l;
        d[0].max_children = 512;
        d[1].name = "kyc_bridge_sandbox_request_duration_seconds";
        d[1].help = "Time from a request's arrival to its response, "
                    "injected latency included, by endpoint.";
        d[1].type = KB_METRIC_HISTOGRAM;
        d[1].labels = ep_l;
        d[1].max_children = 64;
        d[1].buckets = kb_metrics_buckets_seconds;
        d[1].bucket_cnt = KB_METRICS_BUCKETS_SECONDS_CNT;
        d[2].name = "kyc_bridge_sandbox_webhook_deliveries_total";
        d[2].help = "Webhook deliveries the sandbox finished, by result "
                    "(delivered: a 2xx answer; failed: given up after its "
                    "retries).";
        d[2].type = KB_METRIC_COUNTER;
        d[2].labels = res_l;
        d[2].max_children = 2;
        d[2].collect = collect_webhooks;
        d[2].opaque = h;
        d[3].name = "kyc_bridge_sandbox_webhook_deliveries_pending";
        d[3].help = "Webhook deliveries queued or waiting for a retry.";
        d[3].type = KB_METRIC_GAUGE;
        d[3].collect = collect_pending;
        d[3].opaque = h;
        for (i = 0; i < KB_ARRAY_SIZE(d); i++) {
                r = kb_metrics_register(h->reg, &d[i], &fam, errstr,
                                        errstr_size);
                if (r != KB_OK)
                        return -1;
                if (i == 0)
                        h->m_req = fam;
                else if (i == 1)
                        h->m_dur = fam;
        }
        if (kb_metrics_add_build_info(h->reg, KB_VERSION_STR, errstr,
                                      errstr_size) != KB_OK ||
            kb_metrics_add_process_start_time(h->reg, 0, errstr, errstr_size) !=
                KB_OK)
                return -1;
        return 0;
}

kb_sbx_http_t *kb_sbx_http_start(kb_sbx_t *sbx, char *errstr,
                                 size_t errstr_size)
{
        kb_sbx_http_t *h = calloc(1, sizeof(*h));
        unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL |
                         MHD_ALLOW_SUSPEND_RESUME | MHD_USE_ERROR_LOG;
        pthread_condattr_t ca;
        unsigned threads;

        if (!h) {
                kb_snprintf(errstr, errstr_size, "out of memory");
                return NULL;
        }
        h->sbx = sbx;
        atomic_init(&h->inflight, 0);
        atomic_init(&h->nreq, 0);
        pthread_mutex_init(&h->tlock, NULL);
        pthread_condattr_init(&ca);
        pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
        pthread_cond_init(&h->tcond, &ca);
        pthread_condattr_destroy(&ca);
        if (pthread_create(&h->timer, NULL, timer_main, h) != 0) {
                kb_snprintf(errstr, errstr_size, "cannot start timer thread");
                goto fail;
        }
        h->timer_started = 1;
        if (metrics_build(h, errstr, errstr_size) != 0)
                goto fail;

        threads = sbx->conf.threads > 0 ? (unsigned)sbx->conf.threads : 1U;
        {
                struct MHD_OptionItem mopts[] = {
                        { MHD_OPTION_CONNECTION_LIMIT, 4096, NULL },
                        { MHD_OPTION_CONNECTION_TIMEOUT, 60, NULL },
                        /* MHD zeroes the whole pool between requests: keep
                         * it small (headers and read buffer fit easily) */
                        { MHD_OPTION_CONNECTION_MEMORY_LIMIT, 16384, NULL },
                        { MHD_OPTION_LISTEN_BACKLOG_SIZE, 1024, NULL },
                        { MHD_OPTION_NOTIFY_COMPLETED, (intptr_t)on_completed,
                          h },
                        /* last: a pool only for more than one thread
                         * (libmicrohttpd warns about a pool of 0) */
                        { threads > 1 ? MHD_OPTION_THREAD_POOL_SIZE
                                      : MHD_OPTION_END,
                          (intptr_t)threads, NULL },
                        { MHD_OPTION_END, 0, NULL },
                };
                kb_listen_t addr;
                kb_strlcpy(addr.host, sbx->conf.host, sizeof(addr.host));
                addr.port = sbx->conf.port;
                h->d = kb_mhd_start(&addr, flags, on_request, h, mopts, FAC,
                                    &h->port, errstr, errstr_size);
        }
        if (!h->d)
                goto fail;
        return h;
fail:
        kb_sbx_http_stop(h);
        return NULL;
}

int kb_sbx_http_port(const kb_sbx_http_t *h)
{
        return h->port;
}

uint64_t kb_sbx_http_requests(const kb_sbx_http_t *h)
{
        return atomic_load(&((kb_sbx_http_t *)h)->nreq);
}

static void timer_stop(kb_sbx_http_t *h)
{
        if (!h->timer_started)
                return;
        pthread_mutex_lock(&h->tlock);
        h->timer_stop = 1;
        pthread_cond_signal(&h->tcond);
        pthread_mutex_unlock(&h->tlock);
        pthread_join(h->timer, NULL);
        h->timer_started = 0;
}

void kb_sbx_http_quiesce(kb_sbx_http_t *h, int64_t grace_ms)
{
        int64_t deadline = kb_mono_ms() + grace_ms;

        if (!h || !h->d)
                return;
        /* No MHD_quiesce_daemon(): with an epoll thread pool, libmicrohttpd
         * 0.9.75 can panic (abort) removing a listen socket that a worker
         * had taken out of its epoll set for the moment. New connections
         * may still arrive during the grace period; MHD_stop_daemon() ends
         * them all. */
        /* delayed responses go out now */
        timer_stop(h);
        while (atomic_load(&h->inflight) > 0 && kb_mono_ms() < deadline) {
                struct timespec ts = { 0, 10 * 1000000L };
                nanosleep(&ts, NULL);
        }
        if (atomic_load(&h->inflight) > 0)
                kb_log_warn(FAC, "%ld request(s) still in flight at shutdown",
                            (long)atomic_load(&h->inflight));
}

void kb_sbx_http_stop(kb_sbx_http_t *h)
{
        if (!h)
                return;
        timer_stop(h);
        if (h->d)
                MHD_stop_daemon(h->d);
        pthread_cond_destroy(&h->tcond);
        pthread_mutex_destroy(&h->tlock);
        kb_metrics_destroy(h->reg);
        free(h->heap);
        free(h);
}
