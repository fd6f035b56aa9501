/* http.h -- asynchronous HTTP client engine over one libcurl multi handle */
#ifndef KB_HTTP_H
#define KB_HTTP_H

#include <stddef.h>
#include <stdint.h>

/*
 * A thin engine for JSON APIs: one base URL, default headers (the API key,
 * JSON content type), keep-alive connections reused across requests, many
 * requests in flight, a completion callback per request.
 *
 * Threading: a kb_http_t and everything submitted to it belong to ONE
 * thread. No function here may be called concurrently on the same handle;
 * the engine starts no threads of its own (libcurl's threaded resolver aside)
 * and installs no signal handlers (CURLOPT_NOSIGNAL).
 *
 * Secrets: the API key lives in sodium_malloc() memory and is used as a
 * header by reference (libcurl still copies request headers into its own
 * send buffer, which it does not wipe). Request bodies are borrowed, never
 * copied by this module; response bodies are wiped when their request
 * completes. Nothing here logs URLs, headers or bodies.
 */

#define KB_HTTP_MAX_BODY_DEFAULT (4U * 1024U * 1024U) /* response cap */

typedef struct kb_http_s kb_http_t;

typedef struct kb_http_conf_s {
        const char *base_url; /* "http(s)://host[:port][/prefix]", no '/' end
                                 needed; paths are appended verbatim */
        const char *api_key;  /* sent as "x-api-key"; copied into
                                 sodium_malloc() memory; NULL: no key */
        size_t api_key_len;
        long timeout_ms;         /* whole request; 0 = none */
        long connect_timeout_ms; /* 0 = libcurl default */
        int max_connections;     /* keep-alive connections to the host; also
                                    the in-flight ceiling the caller keeps */
        const char *ca_file;     /* CA bundle for TLS; NULL/"" = system */
        size_t max_body;         /* response body cap; 0 = default 4 MiB */
        int allow_insecure_http; /* 0: refuse a plain http:// base_url whose
                                    host is not loopback (see
                                    kb_http_url_insecure()) */
} kb_http_conf_t;

/* Outcome of one request, valid only during the completion callback. */
typedef struct kb_http_resp_s {
        int err;          /* KB_OK when an HTTP response arrived (any
                             status); else KB_ERR_TIMEOUT, KB_ERR_HTTP
                             (transport), KB_ERR_TOO_LARGE (body over the
                             cap), KB_ERR_NOMEM, KB_ERR_STATE (aborted by
                             kb_http_destroy) */
        int retryable;    /* for err != KB_OK: the failure is transient
                             (connect/send/receive/timeout) rather than a
                             local or configuration problem (bad URL, TLS
                             verification, ...) */
        int status;       /* HTTP status, 0 when none */
        const char *body; /* response body, NUL-terminated; "" when none */
        size_t body_len;
        int64_t retry_after_s; /* Retry-After in seconds from now (an
                                  HTTP-date is converted), clamped to
                                  0..KB_HTTP_RETRY_AFTER_MAX_S; -1 absent
                                  or unparsable */
        int64_t rl_limit;      /* X-RateLimit-Limit, -1 absent */
        int64_t rl_remaining;  /* X-RateLimit-Remaining, -1 absent */
        int64_t rl_reset;      /* X-RateLimit-Reset (epoch s), -1 absent */
        int64_t latency_us;    /* submit to completion */
        long new_connections;  /* connections this request opened (0 when
                                  it reused a kept-alive one) */
        char errtext[160];     /* transport error text (no URL, no body) */
} kb_http_resp_t;

typedef void(kb_http_cb)(const kb_http_resp_t *resp, void *opaque);

/**
 * Creates an engine. Copies what it needs from @p hc (the caller may wipe
 * its copy of the key afterwards). Returns NULL with a reason in @p errstr
 * and errno set: EINVAL for a problem with @p hc (URL, plain http:// to a
 * host that is not loopback without allow_insecure_http, key,
 * connections), ENOMEM when memory ran out, EIO when libcurl could not
 * initialise.
 *
 * Requests never follow redirects (a 3xx is handed to the callback as it
 * is) and a response body over max_body fails with KB_ERR_TOO_LARGE.
 */
kb_http_t *kb_http_new(const kb_http_conf_t *hc, char *errstr,
                       size_t errstr_size);

/**
 * Aborts every request still in flight (their callbacks run, with err
 * KB_ERR_STATE), closes the connections and frees @p h. Callbacks run
 * from here must not call kb_http_submit() on @p h. NULL is a no-op.
 */
void kb_http_destroy(kb_http_t *h);

/**
 * Starts a request: @p method ("GET", "POST", "PATCH", "DELETE", ...) on
 * base_url + @p path (which must start with '/' and be already
 * percent-encoded). @p body (JSON, may be NULL for none) is BORROWED: it
 * must stay valid and unchanged until @p cb has run; the caller owns and
 * wipes it. @p cb runs exactly once, from kb_http_poll() or
 * kb_http_destroy(), never from inside this call.
 * Returns KB_OK, KB_ERR_INVALID_ARG or KB_ERR_NOMEM (cb will not run).
 */
int kb_http_submit(kb_http_t *h, const char *method, const char *path,
                   const char *body, size_t body_len, kb_http_cb *cb,
                   void *opaque);

/* Longest extra header line kb_http_submit_hdr() takes. */
#define KB_HTTP_HEADER_MAX 512U

/**
 * kb_http_submit() with one more request header, @p header ("Name: value",
 * a token name and printable ASCII, at most KB_HTTP_HEADER_MAX bytes;
 * copied; NULL or "": none), sent with this request only. A header line
 * that is not such text is refused with KB_ERR_INVALID_ARG (cb will not
 * run): nothing can smuggle a CR/LF into the request.
 */
int kb_http_submit_hdr(kb_http_t *h, const char *method, const char *path,
                       const char *header, const char *body, size_t body_len,
                       kb_http_cb *cb, void *opaque);

/**
 * Drives I/O: waits at most @p timeout_ms (0 = do not block) for activity,
 * then runs the callbacks of completed requests. It returns early as soon
 * as one or more requests completed. With nothing in flight it sleeps for
 * @p timeout_ms. Returns the number of callbacks run, or a negative
 * kb_err_t on a multi-handle failure.
 */
int kb_http_poll(kb_http_t *h, int timeout_ms);

/** Requests in flight (submitted, callback not yet run). */
size_t kb_http_in_flight(const kb_http_t *h);

/** Totals since kb_http_new(): requests completed, connections opened. */
void kb_http_counters(const kb_http_t *h, uint64_t *completed,
                      uint64_t *connections);

/**
 * Would requests to @p url go unencrypted to another machine? Parses
 * @p url with libcurl's own URL parser (the one the requests use, so
 * "http://127.0.0.1@example.com/" is example.com). Returns 1 for http://
 * to a host that is not loopback (kb_conf_host_is_loopback(): 127.0.0.0/8,
 * ::1, "localhost"; a DNS name that resolves to loopback does not count),
 * with the host copied to @p host; 0 for https://, or http:// to loopback;
 * -1 when the URL does not parse or is neither http nor https.
 */
int kb_http_url_insecure(const char *url, char *host, size_t host_size);

/* Longest Retry-After believed (24 h): larger values are clamped to it. */
#define KB_HTTP_RETRY_AFTER_MAX_S 86400

/**
 * Parses a Retry-After value: delta-seconds, or an HTTP-date converted to
 * seconds after @p now (unix seconds), clamped to
 * 0..KB_HTTP_RETRY_AFTER_MAX_S (so a caller may multiply it by 1000 without
 * overflow). -1 if unparsable.
 */
int64_t kb_http_parse_retry_after(const char *value, int64_t now);

#endif /* KB_HTTP_H */
