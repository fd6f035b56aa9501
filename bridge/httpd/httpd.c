/* httpd.c -- the in-process HTTP server: listen address, routes, bodies,
 * libmicrohttpd callbacks, shutdown */
#include "httpd_int.h"
#include "mhd.h"

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

#include "log.h"

#define DEFAULT_CONN_LIMIT 256U
#define DEFAULT_TIMEOUT_S  30U

/* ---------------------------------------------------------------------- */
/* Configuration */

kb_httpd_t *kb_httpd_new(const kb_httpd_conf_t *conf, int *errp, char *errstr,
                         size_t errstr_size)
{
        kb_httpd_t *h;
        int dummy;

        if (!errp)
                errp = &dummy;
        *errp = KB_ERR_CONFIG;
        if (!conf || conf->body_max == 0 ||
            conf->body_max > KB_HTTPD_BODY_MAX_LIMIT) {
                kb_snprintf(errstr, errstr_size,
                            "body limit must be 1..%u bytes",
                            KB_HTTPD_BODY_MAX_LIMIT);
                return NULL;
        }
        h = calloc(1, sizeof(*h));
        if (!h) {
                kb_snprintf(errstr, errstr_size, "out of memory");
                *errp = KB_ERR_NOMEM;
                return NULL;
        }
        h->conf = *conf;
        h->conf.listen = NULL;
        h->conf.name = NULL;
        kb_strlcpy(h->name, conf->name ? conf->name : "httpd", sizeof(h->name));
        if (kb_listen_parse(conf->listen, &h->addr, errstr, errstr_size) == -1)
                goto fail;
        if (!conf->allow_non_loopback && !kb_listen_is_loopback(h->addr.host)) {
                kb_snprintf(errstr, errstr_size,
                            "listen address '%s' is not loopback; put a TLS "
                            "reverse proxy in front, or allow it "
                            "explicitly",
                            h->addr.host);
                goto fail;
        }
        if (!h->conf.threads)
                h->conf.threads = 1;
        if (!h->conf.conn_limit)
                h->conf.conn_limit = DEFAULT_CONN_LIMIT;
        if (!h->conf.conn_timeout_s)
                h->conf.conn_timeout_s = DEFAULT_TIMEOUT_S;
        atomic_init(&h->stopping, 0);
        atomic_init(&h->nsuspended, 0);
        pthread_mutex_init(&h->lock, NULL);
        return h;
fail:
        free(h);
        return NULL;
}

int kb_httpd_route(kb_httpd_t *h, const char *method, const char *path,
                   kb_httpd_handler_fn *fn, void *opaque)
{
        kb_httpd_route_t *nr, *r;
        size_t i;

        if (!h || !method || !*method || !path || path[0] != '/' || !fn)
                return KB_ERR_INVALID_ARG;
        if (h->d)
                return KB_ERR_STATE;
        for (i = 0; i < h->nroutes; i++)
                if (!strcmp(h->routes[i].method, method) &&
                    !strcmp(h->routes[i].path, path))
                        return KB_ERR_EXISTS;
        nr = realloc(h->routes, (h->nroutes + 1) * sizeof(*nr));
        if (!nr)
                return KB_ERR_NOMEM;
        h->routes = nr;
        r = &h->routes[h->nroutes];
        r->method = strdup(method);
        r->path = strdup(path);
        r->fn = fn;
        r->opaque = opaque;
        if (!r->method || !r->path) {
                free(r->method);
                free(r->path);
                return KB_ERR_NOMEM;
        }
        h->nroutes++;
        return KB_OK;
}

/* ---------------------------------------------------------------------- */
/* Serving */

/* Finds the route; on a miss fills @p allow with the path's methods
 * ("" for an unknown path). */
static const kb_httpd_route_t *route_find(const kb_httpd_t *h,
                                          const char *method, const char *path,
                                          char *allow, size_t allow_size)
{
        size_t i;

        allow[0] = '\0';
        for (i = 0; i < h->nroutes; i++) {
                const kb_httpd_route_t *r = &h->routes[i];
                if (strcmp(r->path, path))
                        continue;
                if (!strcmp(r->method, method))
                        return r;
                if (strlen(allow) + strlen(r->method) + 3 < allow_size) {
                        if (allow[0])
                                strcat(allow, ", ");
                        strcat(allow, r->method);
                }
        }
        return NULL;
}

static enum MHD_Result queue(struct MHD_Connection *conn, unsigned status,
                             struct MHD_Response *mr)
{
        enum MHD_Result ret;

        if (!mr)
                return MHD_NO; /* out of memory: close the connection */
        ret = MHD_queue_response(conn, status, mr);
        MHD_destroy_response(mr);
        return ret;
}

static enum MHD_Result queue_error(struct MHD_Connection *conn, unsigned status,
                                   const char *detail,
                                   const char *const *headers)
{
        return queue(conn, status, kb_httpd_error_response(detail, headers));
}

static void log_request(kb_httpd_t *h, kb_httpd_req_t *req, unsigned status)
{
        /* the route's path, never a query string or a body */
        KB_LOG(KB_LOG_DEBUG, h->name, "%s %s -> %u (%lld us)", req->method,
               req->path, status, (long long)(kb_mono_us() - req->t0_us));
}

/* The body is complete: route, run the handler, queue or suspend. */
static enum MHD_Result dispatch(kb_httpd_t *h, kb_httpd_req_t *req)
{
        struct MHD_Connection *conn = req->conn;
        const kb_httpd_route_t *r;
        struct MHD_Response *mr;
        char allow[128];
        unsigned status;

        if (req->too_large) {
                char detail[96];
                kb_snprintf(detail, sizeof(detail),
                            "Request body exceeds the limit of %zu bytes.",
                            h->conf.body_max);
                log_request(h, req, 413);
                return queue_error(conn, 413, detail, NULL);
        }
        r = route_find(h, req->method, req->path, allow, sizeof(allow));
        if (!r) {
                const char *hdrs[] = { MHD_HTTP_HEADER_ALLOW, allow, NULL };
                log_request(h, req, allow[0] ? 405 : 404);
                if (allow[0])
                        return queue_error(conn, 405, "Method not allowed.",
                                           hdrs);
                return queue_error(conn, 404, "Not found.", NULL);
        }
        pthread_mutex_lock(&h->lock);
        if (atomic_load(&h->stopping)) {
                pthread_mutex_unlock(&h->lock);
                log_request(h, req, 503);
                return queue_error(conn, 503, "Shutting down.", NULL);
        }
        /* listed while a handler may answer it, for the shutdown */
        req->next = h->live;
        if (h->live)
                h->live->prev = req;
        h->live = req;
        req->listed = 1;
        pthread_mutex_unlock(&h->lock);

        pthread_mutex_lock(&req->lock);
        req->refcnt++; /* the handler's, dropped by its answer */
        req->state = KB_HTTPD_R_HANDLER;
        pthread_mutex_unlock(&req->lock);

        r->fn(r->opaque, req);

        pthread_mutex_lock(&req->lock);
        if (req->state == KB_HTTPD_R_ANSWERED) {
                mr = req->resp;
                status = req->status;
                req->resp = NULL;
                req->state = KB_HTTPD_R_DONE;
                pthread_mutex_unlock(&req->lock);
                log_request(h, req, status);
                return queue(conn, status, mr);
        }
        /* answered later, from any thread (kb_httpd_req_deliver()) */
        MHD_suspend_connection(conn);
        req->state = KB_HTTPD_R_SUSPENDED;
        req->suspended = 1;
        atomic_fetch_add(&h->nsuspended, 1);
        pthread_mutex_unlock(&req->lock);
        return MHD_YES;
}

/* A suspended request was resumed with its answer. */
static enum MHD_Result resumed(kb_httpd_t *h, kb_httpd_req_t *req)
{
        struct MHD_Response *mr;
        unsigned status;

        pthread_mutex_lock(&req->lock);
        mr = req->resp;
        status = req->status;
        req->resp = NULL;
        req->state = KB_HTTPD_R_DONE;
        if (req->suspended) {
                req->suspended = 0;
                atomic_fetch_sub(&h->nsuspended, 1);
        }
        pthread_mutex_unlock(&req->lock);
        log_request(h, req, status);
        return queue(req->conn, status, mr);
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn,
                                  const char *url, const char *method,
                                  const char *version, const char *upload_data,
                                  size_t *upload_data_size, void **con_cls)
{
        kb_httpd_t *h = cls;
        kb_httpd_req_t *req = *con_cls;
        const char *cl;

        if (!req) {
                req = calloc(1, sizeof(*req));
                if (!req)
                        return MHD_NO;
                pthread_mutex_init(&req->lock, NULL);
                req->refcnt = 1; /* the server's, until on_completed */
                req->state = KB_HTTPD_R_READING;
                req->conn = conn;
                req->h = h;
                req->method = method;
                req->path = url;
                req->t0_us = kb_mono_us();
                *con_cls = req;
                cl = MHD_lookup_connection_value(
                    conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH);
                if (cl) {
                        int64_t n;
                        if (kb_parse_i64(cl, 0, INT64_MAX, &n) == -1 ||
                            (uint64_t)n > h->conf.body_max) {
                                /* answered from the header, body unread */
                                req->too_large = 1;
                                req->state = KB_HTTPD_R_DONE;
                                return dispatch(h, req);
                        }
                }
                return MHD_YES;
        }
        if (req->state == KB_HTTPD_R_ANSWERED)
                return resumed(h, req);
        if (req->state != KB_HTTPD_R_READING) {
                /* already answered (413 from the header): discard */
                *upload_data_size = 0;
                return MHD_YES;
        }
        if (*upload_data_size) {
                size_t n = *upload_data_size;
                *upload_data_size = 0;
                if (req->too_large) {
                        /* chunked upload past the limit: drain, then 413 */
                        req->discarded += n;
                        return req->discarded > 16U * h->conf.body_max
                                   ? MHD_NO
                                   : MHD_YES;
                }
                if (req->body.len + n > h->conf.body_max) {
                        req->too_large = 1;
                        kb_buf_free(&req->body, 1);
                        return MHD_YES;
                }
                return kb_buf_append(&req->body, upload_data, n) == -1
                           ? MHD_NO
                           : MHD_YES;
        }
        if (!req->body.data && kb_buf_reserve(&req->body, 0) == -1)
                return MHD_NO;
        return dispatch(h, req);
}

static void on_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
                         enum MHD_RequestTerminationCode toe)
{
        kb_httpd_t *h = cls;
        kb_httpd_req_t *req = *con_cls;

        if (!req)
                return;
        *con_cls = NULL;
        pthread_mutex_lock(&h->lock);
        if (req->listed) {
                if (req->prev)
                        req->prev->next = req->next;
                else
                        h->live = req->next;
                if (req->next)
                        req->next->prev = req->prev;
                req->listed = 0;
        }
        pthread_mutex_unlock(&h->lock);
        pthread_mutex_lock(&req->lock);
        req->conn = NULL;
        req->state = KB_HTTPD_R_DONE;
        if (req->suspended) {
                req->suspended = 0;
                atomic_fetch_sub(&h->nsuspended, 1);
        }
        pthread_mutex_unlock(&req->lock);
        kb_httpd_req_unref(req);
}

/* ---------------------------------------------------------------------- */
/* Life cycle */

int kb_httpd_start(kb_httpd_t *h, char *errstr, size_t errstr_size)
{
        unsigned flags = MHD_USE_EPOLL_INTERNAL_THREAD |
                         MHD_ALLOW_SUSPEND_RESUME | MHD_USE_ERROR_LOG;
        int port = 0;

        if (!h || h->d)
                return KB_ERR_STATE;
        {
                struct MHD_OptionItem mopts[] = {
                        { MHD_OPTION_CONNECTION_LIMIT,
                          (intptr_t)h->conf.conn_limit, NULL },
                        { MHD_OPTION_CONNECTION_TIMEOUT,
                          (intptr_t)h->conf.conn_timeout_s, NULL },
                        { MHD_OPTION_CONNECTION_MEMORY_LIMIT, 32768, NULL },
                        { MHD_OPTION_NOTIFY_COMPLETED, (intptr_t)on_completed,
                          h },
                        /* last: a pool only for more than one thread
                         * (libmicrohttpd warns about a pool of 0) */
                        { h->conf.threads > 1 ? MHD_OPTION_THREAD_POOL_SIZE
                                              : MHD_OPTION_END,
                          (intptr_t)h->conf.threads, NULL },
                        { MHD_OPTION_END, 0, NULL },
                };
                h->d = kb_mhd_start(&h->addr, flags, on_request, h, mopts,
                                    h->name, &port, errstr, errstr_size);
        }
        if (!h->d)
                return KB_ERR_IO;
        atomic_store(&h->port, port);
        kb_log_info(h->name, "listening on %s port %d", h->addr.host, port);
        return KB_OK;
}

int kb_httpd_port(const kb_httpd_t *h)
{
        return atomic_load(&((kb_httpd_t *)h)->port);
}

/* Answers every request still waiting for its handler's answer. */
static size_t answer_all(kb_httpd_t *h)
{
        kb_httpd_req_t *req;
        size_t n = 0;

        pthread_mutex_lock(&h->lock);
        for (req = h->live; req; req = req->next) {
                struct MHD_Response *mr =
                    kb_httpd_error_response("Shutting down.", NULL);
                if (kb_httpd_req_deliver(req, mr, 503) == KB_OK)
                        n++;
        }
        pthread_mutex_unlock(&h->lock);
        return n;
}

void kb_httpd_destroy(kb_httpd_t *h, int64_t grace_ms)
{
        size_t i, n;
        int64_t deadline;

        if (!h)
                return;
        /* No MHD_quiesce_daemon(): libmicrohttpd 0.9.75 can abort removing
         * the listen socket from an epoll pool worker's set (seen in the
         * sandbox). New requests get 503 until the daemon stops. */
        atomic_store(&h->stopping, 1);
        if (h->d) {
                n = answer_all(h);
                if (n)
                        kb_log_notice(h->name,
                                      "%zu request(s) answered 503 at "
                                      "shutdown",
                                      n);
                deadline = kb_mono_ms() + (grace_ms > 0 ? grace_ms : 0);
                while (atomic_load(&h->nsuspended) > 0 &&
                       kb_mono_ms() < deadline) {
                        struct timespec ts = { 0, 5 * 1000000L };
                        nanosleep(&ts, NULL);
                }
                if (atomic_load(&h->nsuspended) > 0)
                        kb_log_warn(h->name,
                                    "%ld suspended request(s) at shutdown",
                                    (long)atomic_load(&h->nsuspended));
                MHD_stop_daemon(h->d);
        }
        for (i = 0; i < h->nroutes; i++) {
                free(h->routes[i].method);
                free(h->routes[i].path);
        }
        free(h->routes);
        pthread_mutex_destroy(&h->lock);
        free(h);
}
