/* httpd.h -- a small in-process HTTP server: routes, JSON errors, answers
 * given later from any thread */
#ifndef KB_HTTPD_H
#define KB_HTTPD_H

#include <stddef.h>
#include <stdint.h>

#include "kyc_bridge.h"

/*
 * The daemons host one of these for the webhook intake (and, later,
 * /metrics, /livez, /readyz). libmicrohttpd with one epoll thread (or a
 * small pool). Every 4xx/5xx answer the server gives itself is a JSON
 * object {"detail": "..."}; every response leaves in one write (headers
 * and body together, TCP_NODELAY on each connection).
 *
 * Life cycle: kb_httpd_new(), kb_httpd_route() for each route,
 * kb_httpd_start(), ..., kb_httpd_destroy(). Routes cannot change once
 * started.
 */

typedef struct kb_httpd_s kb_httpd_t;
typedef struct kb_httpd_req_s kb_httpd_req_t;

/* Largest body kb_httpd_conf_t.body_max may allow. */
#define KB_HTTPD_BODY_MAX_LIMIT (16U * 1024U * 1024U)

typedef struct kb_httpd_conf_s {
        /* "HOST:PORT" with a numeric host: "127.0.0.1:8490", "[::1]:0"
         * (port 0: any free port, see kb_httpd_port()). */
        const char *listen;
        /* 0: refuse an address that is not loopback (127.0.0.0/8, ::1). */
        int allow_non_loopback;
        /* Largest request body in bytes (1..KB_HTTPD_BODY_MAX_LIMIT);
         * a larger one is answered 413 without reaching a handler. */
        size_t body_max;
        /* 1 (or 0): one epoll thread; more: an epoll thread pool. */
        unsigned threads;
        /* Connections at once (0: 256). */
        unsigned conn_limit;
        /* Idle connection timeout in seconds (0: 30). A request waiting
         * for its asynchronous answer is not idle. */
        unsigned conn_timeout_s;
        /* Log facility ("httpd" when NULL). Copied. */
        const char *name;
} kb_httpd_conf_t;

/*
 * A route's handler. Runs on one of the server's threads (concurrently
 * with itself when conf.threads > 1) and must not block. It must answer
 * @p req exactly once with kb_httpd_reply() / kb_httpd_reply_error():
 * either before it returns, or later from any thread -- the connection is
 * then suspended until the answer comes (an asynchronous answer).
 * kb_httpd_req_header() is valid only while the handler runs; the body
 * stays valid until the answer.
 */
typedef void(kb_httpd_handler_fn)(void *opaque, kb_httpd_req_t *req);

/**
 * New server (not listening yet). Checks @p conf: a numeric address, and
 * loopback unless allow_non_loopback. NULL with a reason in @p errstr and
 * *@p errp (may be NULL) KB_ERR_CONFIG for a bad @p conf or KB_ERR_NOMEM.
 */
kb_httpd_t *kb_httpd_new(const kb_httpd_conf_t *conf, int *errp, char *errstr,
                         size_t errstr_size);

/**
 * Adds a route: @p method ("POST") and exact @p path ("/webhooks/vendor";
 * the query string is ignored). A path with routes but not for the
 * request's method is answered 405 with an Allow header; an unknown path
 * 404. @p opaque is passed to @p fn. Before kb_httpd_start() only.
 * Returns KB_OK, KB_ERR_INVALID_ARG, KB_ERR_EXISTS (same method and path
 * twice), KB_ERR_STATE (started) or KB_ERR_NOMEM.
 */
int kb_httpd_route(kb_httpd_t *h, const char *method, const char *path,
                   kb_httpd_handler_fn *fn, void *opaque) KB_WUR;

/** Starts listening and serving. KB_OK, or KB_ERR_IO with a reason. */
int kb_httpd_start(kb_httpd_t *h, char *errstr, size_t errstr_size) KB_WUR;

/** The port listened on after kb_httpd_start(), 0 before. Any thread. */
int kb_httpd_port(const kb_httpd_t *h);

/**
 * Stops the server: new requests are answered 503; requests waiting for an
 * asynchronous answer are answered 503 "Shutting down." now (their
 * handler's later answer is then a no-op, and the request object lives
 * until it comes); waits up to @p grace_ms for those answers to be
 * written, then closes every connection and frees the server. NULL is a
 * no-op. Not from a handler.
 */
void kb_httpd_destroy(kb_httpd_t *h, int64_t grace_ms);

/* ---------------------------------------------------------------------- */
/* Requests (only inside a handler, or until the answer for the body) */

const char *kb_httpd_req_method(const kb_httpd_req_t *req);
const char *kb_httpd_req_path(const kb_httpd_req_t *req);
/** Header value (case-insensitive name) or NULL; valid during the handler
 * call only. */
const char *kb_httpd_req_header(const kb_httpd_req_t *req, const char *name);
/** The request body (NUL-terminated, "" when none); valid until the
 * answer. */
const char *kb_httpd_req_body(const kb_httpd_req_t *req, size_t *len);

/**
 * Answers @p req: @p status, @p content_type (NULL: none), @p body of
 * @p len bytes (copied), extra @p headers as NULL-terminated name, value
 * pairs (may be NULL). Any thread, exactly once per request; @p req must
 * not be used afterwards. Returns KB_OK; KB_ERR_STATE when the request was
 * already answered (by the server's shutdown, say: nothing is sent);
 * KB_ERR_NOMEM (the server then answers 500 itself). The request is
 * released in every case.
 */
int kb_httpd_reply(kb_httpd_req_t *req, int status, const char *content_type,
                   const void *body, size_t len, const char *const *headers);

/**
 * Answers with {"detail": @p detail} as application/json (kb_httpd_reply()
 * otherwise). @p detail is escaped; bytes that are not UTF-8 are replaced.
 */
int kb_httpd_reply_error(kb_httpd_req_t *req, int status, const char *detail,
                         const char *const *headers);

#endif /* KB_HTTPD_H */
