/* httpd.c -- the in-process HTTP server: listen address, routes, bodies,
 * libmicrohttpd callbacks, shutdown */
#include "httpd_int.h"

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

/* Splits "HOST:PORT" / "[V6]:PORT" into h->host and h->port_req. */
static int parse_listen(kb_httpd_t *h, const char *listen, char *errstr,
                        size_t errstr_size)
{
        const char *colon, *host = listen;
        size_t hlen;
        int64_t port;

        if (!listen || !*listen)
                goto bad;
        if (listen[0] == '[') {
                const char *rb = strchr(listen, ']');
                if (!rb || rb[1] != ':')
                        goto bad;
                host = listen + 1;
                hlen = (size_t)(rb - host);
                colon = rb + 1;
        } else {
                colon = strrchr(listen, ':');
                if (!colon)
                        goto bad;
                hlen = (size_t)(colon - listen);
        }
        if (hlen == 0 || hlen >= sizeof(h->host) ||
            kb_parse_i64(colon + 1, 0, 65535, &port) == -1)
                goto bad;
        memcpy(h->host, host, hlen);
        h->host[hlen] = '\0';
        h->port_req = (int)port;
        return 0;
bad:
        kb_snprintf(errstr, errstr_size,
                    "listen address '%s' is not HOST:PORT with a numeric "
                    "host (127.0.0.1:8490, [::1]:8490)",
                    listen ? listen : "");
        return -1;
}

static int host_is_loopback(const char *host)
{
        struct in_addr a4;
        struct in6_addr a6;

        if (inet_pton(AF_INET, host, &a4) == 1)
                return (ntohl(a4.s_addr) >> 24) == 127;
        if (inet_pton(AF_INET6, host, &a6) == 1)
                return IN6_IS_ADDR_LOOPBACK(&a6);
        return 0;
}

kb_httpd_t *kb_httpd_new(const kb_httpd_conf_t *conf, char *errstr,
                         size_t errstr_size)
{
        kb_httpd_t *h;
        struct in_addr a4;
        struct in6_addr a6;

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
                return NULL;
        }
        h->conf = *conf;
        h->conf.listen = NULL;
        h->conf.name = NULL;
        kb_strlcpy(h->name, conf->name ? conf->name : "httpd", sizeof(h->name));
        if (parse_listen(h, conf->listen, errstr, errstr_size) == -1)
                goto fail;
        if (inet_pton(AF_INET, h->host, &a4) != 1 &&
            inet_pton(AF_INET6, h->host, &a6) != 1) {
                kb_snprintf(errstr, errstr_size,
                            "listen address '%s' is not a numeric address",
                            h->host);
                goto fail;
        }
        if (!conf->allow_non_loopback && !host_is_loopback(h->host)) {
                kb_snprintf(errstr, errstr_size,
                            "listen address '%s' is not loopback; put a TLS "
                            "reverse proxy in front, or allow it "
                            "explicitly",
                            h->host);
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

static void on_connection(void *cls, struct MHD_Connection *conn,
                          void **socket_context,
                          enum MHD_ConnectionNotificationCode toe)
{
        const union MHD_ConnectionInfo *ci;
        int one = 1;

        if (toe != MHD_CONNECTION_NOTIFY_STARTED)
                return;
        /* an answer must not wait for the peer's delayed ACK (Nagle), see
         * notes/performance-budget.md */
        ci = MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CONNECTION_FD);
        if (ci)
                setsockopt(ci->connect_fd, IPPROTO_TCP, TCP_NODELAY, &one,
                           sizeof(one));
}

static void on_mhd_log(void *cls, const char *fmt, va_list ap)
{
        kb_httpd_t *h = cls;
        char msg[512];
        size_t n;

        vsnprintf(msg, sizeof(msg), fmt, ap);
        n = strlen(msg);
        while (n > 0 && (msg[n - 1] == '\n' || msg[n - 1] == '\r'))
                msg[--n] = '\0';
        kb_log_info(h->name, "libmicrohttpd: %s", msg);
}

/* ---------------------------------------------------------------------- */
/* Life cycle */

int kb_httpd_start(kb_httpd_t *h, char *errstr, size_t errstr_size)
{
        unsigned flags = MHD_USE_EPOLL_INTERNAL_THREAD |
                         MHD_ALLOW_SUSPEND_RESUME | MHD_USE_ERROR_LOG;
        struct sockaddr_storage ss;
        socklen_t sl = sizeof(ss);
        struct sockaddr_in sin;
        struct sockaddr_in6 sin6;
        const struct sockaddr *sa;
        const union MHD_DaemonInfo *di;

        if (!h || h->d)
                return KB_ERR_STATE;
        memset(&sin, 0, sizeof(sin));
        memset(&sin6, 0, sizeof(sin6));
        if (inet_pton(AF_INET, h->host, &sin.sin_addr) == 1) {
                sin.sin_family = AF_INET;
                sin.sin_port = htons((uint16_t)h->port_req);
                sa = (const struct sockaddr *)&sin;
        } else {
                inet_pton(AF_INET6, h->host, &sin6.sin6_addr);
                sin6.sin6_family = AF_INET6;
                sin6.sin6_port = htons((uint16_t)h->port_req);
                sa = (const struct sockaddr *)&sin6;
                flags |= MHD_USE_IPv6;
        }
        {
                struct MHD_OptionItem mopts[] = {
                        { MHD_OPTION_SOCK_ADDR, 0, (void *)sa },
                        { MHD_OPTION_CONNECTION_LIMIT,
                          (intptr_t)h->conf.conn_limit, NULL },
                        { MHD_OPTION_CONNECTION_TIMEOUT,
                          (intptr_t)h->conf.conn_timeout_s, NULL },
                        { MHD_OPTION_CONNECTION_MEMORY_LIMIT, 32768, NULL },
                        { MHD_OPTION_NOTIFY_COMPLETED, (intptr_t)on_completed,
                          h },
                        { MHD_OPTION_NOTIFY_CONNECTION, (intptr_t)on_connection,
                          h },
                        { MHD_OPTION_EXTERNAL_LOGGER, (intptr_t)on_mhd_log, h },
                        { MHD_OPTION_THREAD_POOL_SIZE,
                          h->conf.threads > 1 ? (intptr_t)h->conf.threads : 0,
                          NULL },
                        { MHD_OPTION_END, 0, NULL },
                };
                h->d =
                    MHD_start_daemon(flags, 0, NULL, NULL, on_request, h,
                                     MHD_OPTION_ARRAY, mopts, MHD_OPTION_END);
        }
        if (!h->d) {
                kb_snprintf(errstr, errstr_size,
                            "cannot listen on %s port %d (in use, or no "
                            "permission)",
                            h->host, h->port_req);
                return KB_ERR_IO;
        }
        di = MHD_get_daemon_info(h->d, MHD_DAEMON_INFO_LISTEN_FD);
        if (!di || getsockname(di->listen_fd, (struct sockaddr *)&ss, &sl)) {
                kb_snprintf(errstr, errstr_size, "getsockname: %s",
                            strerror(errno));
                MHD_stop_daemon(h->d);
                h->d = NULL;
                return KB_ERR_IO;
        }
        if (ss.ss_family == AF_INET6)
                h->port = ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
        else
                h->port = ntohs(((struct sockaddr_in *)&ss)->sin_port);
        kb_log_info(h->name, "listening on %s port %d", h->host, h->port);
        return KB_OK;
}

int kb_httpd_port(const kb_httpd_t *h)
{
        return h->port;
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
