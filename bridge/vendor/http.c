/* http.c -- asynchronous HTTP client engine over one libcurl multi handle */
#include "http.h"

#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <curl/curl.h>
#include <sodium.h>

#include "conf.h"
#include "kyc_bridge.h"
#include "log.h"
#include "util.h"

#define HTTP_MAX_URL      8192U
#define HTTP_BODY_INITIAL 2048U

typedef struct http_req_s {
        struct http_req_s *prev, *next; /* in-flight list */
        kb_http_t *h;
        CURL *easy;
        kb_http_cb *cb;
        void *opaque;
        kb_buf_t body; /* response body (wiped on release) */
        int too_large;
        int64_t content_length; /* from the header, -1 unknown */
        int64_t t0_us;
        int64_t retry_after_s, rl_limit, rl_remaining, rl_reset;
        char errbuf[CURL_ERROR_SIZE];
        /* An extra header of this request only, chained in front of the
         * engine's default headers (no allocation by libcurl). */
        struct curl_slist hdr_node;
        char hdr[KB_HTTP_HEADER_MAX + 1];
} http_req_t;

struct kb_http_s {
        CURLM *multi;
        char *base_url;
        char *ca_file;
        long timeout_ms, connect_timeout_ms;
        size_t max_body;
        int max_conns;
        /* Default headers: an optional first node we own, whose text (the
         * API key header) lives in sodium_malloc() memory, followed by a
         * libcurl-allocated list of the non-secret headers. */
        struct curl_slist key_node;
        char *key_hdr;
        struct curl_slist *std_hdrs;
        struct curl_slist *hdrs; /* what requests use */
        http_req_t *inflight;
        size_t n_inflight;
        CURL **pool; /* idle easy handles, reset, for reuse */
        size_t npool;
        int destroying;
        uint64_t completed, connections;
};

/* libcurl's global state is reference-counted by curl_global_init(). */
static int http_global_init(void)
{
        return curl_global_init(CURL_GLOBAL_DEFAULT) == CURLE_OK ? 0 : -1;
}

int kb_http_url_insecure(const char *url, char *host, size_t host_size)
{
        CURLU *u;
        char *scheme = NULL, *uhost = NULL;
        int r = -1;

        if (host_size)
                host[0] = '\0';
        if (!url || !(u = curl_url()))
                return -1;
        if (curl_url_set(u, CURLUPART_URL, url, 0) != CURLUE_OK ||
            curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) != CURLUE_OK ||
            curl_url_get(u, CURLUPART_HOST, &uhost, 0) != CURLUE_OK)
                goto out;
        if (!strcmp(scheme, "https")) {
                r = 0;
        } else if (!strcmp(scheme, "http")) {
                r = !kb_conf_host_is_loopback(uhost);
                if (r && host_size)
                        kb_strlcpy(host, uhost, host_size);
        }
out:
        curl_free(uhost);
        curl_free(scheme);
        curl_url_cleanup(u);
        return r;
}

kb_http_t *kb_http_new(const kb_http_conf_t *hc, char *errstr,
                       size_t errstr_size)
{
        kb_http_t *h = NULL;
        size_t blen;
        static const char kprefix[] = "x-api-key: ";
        struct curl_slist *l;
        char host[256];
        int insecure;

        if (!hc || !hc->base_url ||
            (strncmp(hc->base_url, "http://", 7) &&
             strncmp(hc->base_url, "https://", 8))) {
                kb_snprintf(errstr, errstr_size,
                            "base URL must start with http:// or https://");
                errno = EINVAL;
                return NULL;
        }
        insecure = kb_http_url_insecure(hc->base_url, host, sizeof(host));
        if (insecure == -1) {
                /* no URL in the message: it may carry user:password@ */
                kb_snprintf(errstr, errstr_size,
                            "base URL does not parse as an http:// or "
                            "https:// URL");
                errno = EINVAL;
                return NULL;
        }
        if (insecure && !hc->allow_insecure_http) {
                kb_snprintf(errstr, errstr_size,
                            "refusing plain http:// to %s, which is not a "
                            "loopback address: the API key and share "
                            "tokens would cross the network unencrypted; "
                            "use https://",
                            host);
                errno = EINVAL;
                return NULL;
        }
        if (hc->max_connections < 1) {
                kb_snprintf(errstr, errstr_size,
                            "max_connections must be at least 1");
                errno = EINVAL;
                return NULL;
        }
        if (hc->api_key) {
                size_t i;
                if (hc->api_key_len == 0 || hc->api_key_len > 4096) {
                        kb_snprintf(errstr, errstr_size,
                                    "API key is empty or too long");
                        errno = EINVAL;
                        return NULL;
                }
                for (i = 0; i < hc->api_key_len; i++) {
                        unsigned char c = (unsigned char)hc->api_key[i];
                        if (c < 0x21 || c == 0x7f) {
                                kb_snprintf(errstr, errstr_size,
                                            "API key contains whitespace or "
                                            "control characters");
                                errno = EINVAL;
                                return NULL;
                        }
                }
        }
        if (http_global_init() == -1) {
                /* libcurl's own allocations or its TLS library: no
                 * configuration can fix that */
                kb_snprintf(errstr, errstr_size,
                            "libcurl initialisation failed");
                errno = EIO;
                return NULL;
        }
        h = calloc(1, sizeof(*h));
        if (!h)
                goto nomem;
        blen = strlen(hc->base_url);
        while (blen > 0 && hc->base_url[blen - 1] == '/')
                blen--;
        h->base_url = strndup(hc->base_url, blen);
        if (!h->base_url)
                goto nomem;
        if (hc->ca_file && *hc->ca_file) {
                h->ca_file = strdup(hc->ca_file);
                if (!h->ca_file)
                        goto nomem;
        }
        h->timeout_ms = hc->timeout_ms > 0 ? hc->timeout_ms : 0;
        h->connect_timeout_ms =
            hc->connect_timeout_ms > 0 ? hc->connect_timeout_ms : 0;
        h->max_body = hc->max_body ? hc->max_body : KB_HTTP_MAX_BODY_DEFAULT;
        h->max_conns = hc->max_connections;
        h->pool = calloc((size_t)h->max_conns, sizeof(*h->pool));
        if (!h->pool)
                goto nomem;

        /* Expect: (empty) stops libcurl from waiting for "100 Continue"
         * before sending larger POST bodies. */
        l = curl_slist_append(NULL, "Content-Type: application/json");
        if (l)
                h->std_hdrs = l;
        if (!l ||
            !(l = curl_slist_append(h->std_hdrs, "Accept: application/json")) ||
            !(l = curl_slist_append(h->std_hdrs, "Expect:")))
                goto nomem;
        h->hdrs = h->std_hdrs;
        if (hc->api_key) {
                size_t klen = sizeof(kprefix) - 1 + hc->api_key_len + 1;
                h->key_hdr = sodium_malloc(klen);
                if (!h->key_hdr)
                        goto nomem;
                memcpy(h->key_hdr, kprefix, sizeof(kprefix) - 1);
                memcpy(h->key_hdr + sizeof(kprefix) - 1, hc->api_key,
                       hc->api_key_len);
                h->key_hdr[klen - 1] = '\0';
                h->key_node.data = h->key_hdr;
                h->key_node.next = h->std_hdrs;
                h->hdrs = &h->key_node;
        }

        h->multi = curl_multi_init();
        if (!h->multi)
                goto nomem;
        /* One connection per request in flight, all kept alive. */
        curl_multi_setopt(h->multi, CURLMOPT_MAX_HOST_CONNECTIONS,
                          (long)h->max_conns);
        curl_multi_setopt(h->multi, CURLMOPT_MAXCONNECTS, (long)h->max_conns);
        return h;

nomem:
        kb_snprintf(errstr, errstr_size, "out of memory");
        if (h) {
                if (h->multi)
                        curl_multi_cleanup(h->multi);
                curl_slist_free_all(h->std_hdrs);
                if (h->key_hdr)
                        sodium_free(h->key_hdr);
                free(h->pool);
                free(h->ca_file);
                free(h->base_url);
                free(h);
        }
        curl_global_cleanup();
        errno = ENOMEM; /* after the frees, which may change it */
        return NULL;
}

/* Detaches @p r from the multi handle and the in-flight list. */
static void req_detach(kb_http_t *h, http_req_t *r)
{
        curl_multi_remove_handle(h->multi, r->easy);
        if (r->prev)
                r->prev->next = r->next;
        else
                h->inflight = r->next;
        if (r->next)
                r->next->prev = r->prev;
        r->prev = r->next = NULL;
        h->n_inflight--;
}

/* Frees @p r, wiping the response; keeps its easy handle for reuse. */
static void req_release(kb_http_t *h, http_req_t *r)
{
        kb_buf_free(&r->body, 1);
        if (r->easy) {
                if (!h->destroying && h->npool < (size_t)h->max_conns) {
                        curl_easy_reset(r->easy);
                        h->pool[h->npool++] = r->easy;
                } else {
                        curl_easy_cleanup(r->easy);
                }
        }
        free(r);
}

void kb_http_destroy(kb_http_t *h)
{
        size_t i;

        if (!h)
                return;
        h->destroying = 1;
        while (h->inflight) {
                http_req_t *r = h->inflight;
                kb_http_resp_t resp;

                req_detach(h, r);
                memset(&resp, 0, sizeof(resp));
                resp.err = KB_ERR_STATE;
                resp.body = "";
                resp.retry_after_s = resp.rl_limit = resp.rl_remaining =
                    resp.rl_reset = -1;
                resp.latency_us = kb_mono_us() - r->t0_us;
                kb_strlcpy(resp.errtext, "aborted: HTTP client destroyed",
                           sizeof(resp.errtext));
                r->cb(&resp, r->opaque);
                req_release(h, r);
        }
        for (i = 0; i < h->npool; i++)
                curl_easy_cleanup(h->pool[i]);
        curl_multi_cleanup(h->multi);
        curl_slist_free_all(h->std_hdrs);
        if (h->key_hdr)
                sodium_free(h->key_hdr); /* wipes */
        free(h->pool);
        free(h->ca_file);
        free(h->base_url);
        free(h);
        curl_global_cleanup();
}

/* Case-insensitive header name match; returns the trimmed value. */
static int header_is(const char *line, size_t len, const char *name, char *val,
                     size_t valsz)
{
        size_t nl = strlen(name), i, j;

        if (len <= nl || line[nl] != ':' || strncasecmp(line, name, nl))
                return 0;
        i = nl + 1;
        while (i < len && (line[i] == ' ' || line[i] == '\t'))
                i++;
        j = len;
        while (j > i && isspace((unsigned char)line[j - 1]))
                j--;
        if (j - i >= valsz)
                j = i + valsz - 1; /* long values are garbage for us */
        memcpy(val, line + i, j - i);
        val[j - i] = '\0';
        return 1;
}

static int64_t parse_nonneg(const char *s)
{
        int64_t v;

        return kb_parse_i64(s, 0, INT64_MAX / 4, &v) == 0 ? v : -1;
}

int64_t kb_http_parse_retry_after(const char *value, int64_t now)
{
        const char *p;
        int64_t v = 0;
        time_t t;

        if (!value || !*value)
                return -1;
        /* delta-seconds, saturating: the server's number is clamped before
         * anyone multiplies it (a huge value is "a long time", not an
         * overflow and not garbage) */
        for (p = value; *p >= '0' && *p <= '9'; p++)
                if (v <= KB_HTTP_RETRY_AFTER_MAX_S)
                        v = v * 10 + (*p - '0');
        if (p > value && !*p)
                return v > KB_HTTP_RETRY_AFTER_MAX_S ? KB_HTTP_RETRY_AFTER_MAX_S
                                                     : v;
        t = curl_getdate(value, NULL);
        if (t == (time_t)-1)
                return -1;
        if ((int64_t)t <= now)
                return 0;
        if ((int64_t)t - now > KB_HTTP_RETRY_AFTER_MAX_S)
                return KB_HTTP_RETRY_AFTER_MAX_S;
        return (int64_t)t - now;
}

static size_t on_header(char *ptr, size_t size, size_t nmemb, void *ud)
{
        http_req_t *r = ud;
        size_t len = size * nmemb;
        char val[128];

        if (len >= 5 && !strncmp(ptr, "HTTP/", 5)) {
                /* A new response (after 1xx): forget earlier headers. */
                r->retry_after_s = r->rl_limit = r->rl_remaining = r->rl_reset =
                    r->content_length = -1;
        } else if (header_is(ptr, len, "retry-after", val, sizeof(val))) {
                r->retry_after_s =
                    kb_http_parse_retry_after(val, kb_time_now());
        } else if (header_is(ptr, len, "x-ratelimit-limit", val, sizeof(val))) {
                r->rl_limit = parse_nonneg(val);
        } else if (header_is(ptr, len, "x-ratelimit-remaining", val,
                             sizeof(val))) {
                r->rl_remaining = parse_nonneg(val);
        } else if (header_is(ptr, len, "x-ratelimit-reset", val, sizeof(val))) {
                r->rl_reset = parse_nonneg(val);
        } else if (header_is(ptr, len, "content-length", val, sizeof(val))) {
                r->content_length = parse_nonneg(val);
        }
        return len;
}

static size_t on_write(char *ptr, size_t size, size_t nmemb, void *ud)
{
        http_req_t *r = ud;
        size_t len = size * nmemb;
        kb_http_t *h = r->h;

        if (len > h->max_body - r->body.len) {
                r->too_large = 1;
                return 0; /* aborts the transfer: CURLE_WRITE_ERROR */
        }
        if (!r->body.data) {
                /* Size the buffer once from Content-Length so that growing
                 * it does not leave unwiped copies of the body behind. */
                size_t want = HTTP_BODY_INITIAL;
                if (r->content_length > 0 &&
                    (uint64_t)r->content_length <= h->max_body &&
                    (size_t)r->content_length > want)
                        want = (size_t)r->content_length;
                if (kb_buf_reserve(&r->body, want) == -1)
                        return 0;
        }
        if (r->body.len + len + 1 > r->body.cap) {
                /* Grow by hand, wiping the old block. */
                kb_buf_t nb = KB_BUF_INIT;
                size_t want = r->body.cap * 2;
                if (want < r->body.len + len)
                        want = r->body.len + len;
                if (kb_buf_reserve(&nb, want) == -1 ||
                    kb_buf_append(&nb, r->body.data, r->body.len) == -1) {
                        kb_buf_free(&nb, 1);
                        return 0;
                }
                kb_buf_free(&r->body, 1);
                r->body = nb;
        }
        if (kb_buf_append(&r->body, ptr, len) == -1)
                return 0;
        return len;
}

int kb_http_submit(kb_http_t *h, const char *method, const char *path,
                   const char *body, size_t body_len, kb_http_cb *cb,
                   void *opaque)
{
        return kb_http_submit_hdr(h, method, path, NULL, body, body_len, cb,
                                  opaque);
}

/* "Name: value" of printable ASCII, a token name, no CR/LF: what may go
 * into a request as it is. */
static int header_line_ok(const char *line)
{
        const char *colon = strchr(line, ':');
        const char *p;

        if (!colon || colon == line || strlen(line) > KB_HTTP_HEADER_MAX)
                return 0;
        for (p = line; p < colon; p++)
                if (!isalnum((unsigned char)*p) && *p != '-' && *p != '_')
                        return 0;
        for (p = colon + 1; *p; p++)
                if ((unsigned char)*p < 0x20 || (unsigned char)*p > 0x7e)
                        return 0;
        return 1;
}

int kb_http_submit_hdr(kb_http_t *h, const char *method, const char *path,
                       const char *header, const char *body, size_t body_len,
                       kb_http_cb *cb, void *opaque)
{
        http_req_t *r;
        CURL *e;
        char url[HTTP_MAX_URL];
        size_t bl, pl;

        if (!h || !method || !path || path[0] != '/' || !cb || h->destroying)
                return KB_ERR_INVALID_ARG;
        if (header && *header && !header_line_ok(header))
                return KB_ERR_INVALID_ARG;
        bl = strlen(h->base_url);
        pl = strlen(path);
        if (bl + pl + 1 > sizeof(url))
                return KB_ERR_INVALID_ARG;
        memcpy(url, h->base_url, bl);
        memcpy(url + bl, path, pl + 1);

        r = calloc(1, sizeof(*r));
        if (!r)
                return KB_ERR_NOMEM;
        if (h->npool > 0) {
                e = h->pool[--h->npool];
        } else {
                e = curl_easy_init();
                if (!e) {
                        free(r);
                        return KB_ERR_NOMEM;
                }
        }
        r->h = h;
        r->easy = e;
        r->cb = cb;
        r->opaque = opaque;
        r->retry_after_s = r->rl_limit = r->rl_remaining = r->rl_reset =
            r->content_length = -1;

        if (curl_easy_setopt(e, CURLOPT_URL, url) != CURLE_OK)
                goto fail;
        curl_easy_setopt(e, CURLOPT_PRIVATE, r);
        if (header && *header) {
                kb_strlcpy(r->hdr, header, sizeof(r->hdr));
                r->hdr_node.data = r->hdr;
                r->hdr_node.next = h->hdrs;
                curl_easy_setopt(e, CURLOPT_HTTPHEADER, &r->hdr_node);
        } else {
                curl_easy_setopt(e, CURLOPT_HTTPHEADER, h->hdrs);
        }
        curl_easy_setopt(e, CURLOPT_USERAGENT, "kyc-bridge/" KB_VERSION_STR);
        curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
        curl_easy_setopt(e, CURLOPT_TCP_NODELAY, 1L);
        curl_easy_setopt(e, CURLOPT_TCP_KEEPALIVE, 1L);
        curl_easy_setopt(e, CURLOPT_FOLLOWLOCATION, 0L);
#if LIBCURL_VERSION_NUM >= 0x075500
        curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
#else
        curl_easy_setopt(e, CURLOPT_PROTOCOLS,
                         (long)(CURLPROTO_HTTP | CURLPROTO_HTTPS));
#endif
        if (h->timeout_ms)
                curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, h->timeout_ms);
        if (h->connect_timeout_ms)
                curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS,
                                 h->connect_timeout_ms);
        if (h->ca_file)
                curl_easy_setopt(e, CURLOPT_CAINFO, h->ca_file);
        /* Plain http was allowed for the host of the URL (loopback, or
         * vendor.allow_insecure_http): a proxy from the environment
         * (http_proxy, ALL_PROXY) would carry the API key in clear to
         * another host. https may go through one (CONNECT keeps TLS end
         * to end). */
        if (!strncmp(h->base_url, "http://", 7))
                curl_easy_setopt(e, CURLOPT_PROXY, "");
        curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_write);
        curl_easy_setopt(e, CURLOPT_WRITEDATA, r);
        curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, on_header);
        curl_easy_setopt(e, CURLOPT_HEADERDATA, r);
        curl_easy_setopt(e, CURLOPT_ERRORBUFFER, r->errbuf);

        if (!strcmp(method, "GET")) {
                curl_easy_setopt(e, CURLOPT_HTTPGET, 1L);
        } else {
                if (body || !strcmp(method, "POST")) {
                        /* Borrowed, not copied (CURLOPT_POSTFIELDS). */
                        curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE,
                                         (curl_off_t)(body ? body_len : 0));
                        curl_easy_setopt(e, CURLOPT_POSTFIELDS,
                                         body ? body : "");
                }
                if (strcmp(method, "POST") &&
                    curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, method) !=
                        CURLE_OK)
                        goto fail;
        }

        r->t0_us = kb_mono_us();
        if (curl_multi_add_handle(h->multi, e) != CURLM_OK)
                goto fail;
        r->next = h->inflight;
        if (h->inflight)
                h->inflight->prev = r;
        h->inflight = r;
        h->n_inflight++;
        return KB_OK;

fail:
        req_release(h, r);
        return KB_ERR_NOMEM;
}

/* Maps a libcurl result to (err, retryable). */
static int map_curl_error(CURLcode rc, int too_large, int *retryable)
{
        *retryable = 0;
        switch (rc) {
        case CURLE_OK:
                return KB_OK;
        case CURLE_OPERATION_TIMEDOUT:
                *retryable = 1;
                return KB_ERR_TIMEOUT;
        case CURLE_WRITE_ERROR:
                if (too_large)
                        return KB_ERR_TOO_LARGE;
                *retryable = 1; /* our buffer could not grow */
                return KB_ERR_NOMEM;
        case CURLE_OUT_OF_MEMORY:
                *retryable = 1;
                return KB_ERR_NOMEM;
        case CURLE_COULDNT_RESOLVE_HOST:
        case CURLE_COULDNT_RESOLVE_PROXY:
        case CURLE_COULDNT_CONNECT:
        case CURLE_SEND_ERROR:
        case CURLE_RECV_ERROR:
        case CURLE_GOT_NOTHING:
        case CURLE_PARTIAL_FILE:
        case CURLE_SSL_CONNECT_ERROR:
        case CURLE_WEIRD_SERVER_REPLY:
        case CURLE_HTTP2:
        case CURLE_HTTP2_STREAM:
        case CURLE_AGAIN:
                *retryable = 1;
                return KB_ERR_HTTP;
        default:
                /* Bad URL, unsupported protocol, TLS verification or CA
                 * file problems, ...: retrying will not help. */
                return KB_ERR_HTTP;
        }
}

/* Runs the callbacks of finished transfers. Returns how many ran. */
static int drain_done(kb_http_t *h)
{
        CURLMsg *msg;
        int left, fired = 0;

        while ((msg = curl_multi_info_read(h->multi, &left))) {
                CURL *e = msg->easy_handle;
                CURLcode rc = msg->data.result;
                http_req_t *r = NULL;
                kb_http_resp_t resp;
                long code = 0, nconn = 0;
                char *pv = NULL;

                if (msg->msg != CURLMSG_DONE)
                        continue;
                curl_easy_getinfo(e, CURLINFO_PRIVATE, &pv);
                r = (http_req_t *)(void *)pv;
                curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, &code);
                curl_easy_getinfo(e, CURLINFO_NUM_CONNECTS, &nconn);
                req_detach(h, r); /* msg is invalid from here on */

                memset(&resp, 0, sizeof(resp));
                resp.err = map_curl_error(rc, r->too_large, &resp.retryable);
                resp.status = rc == CURLE_OK ? (int)code : 0;
                resp.body = r->body.data && rc == CURLE_OK ? r->body.data : "";
                resp.body_len = rc == CURLE_OK ? r->body.len : 0;
                resp.retry_after_s = r->retry_after_s;
                resp.rl_limit = r->rl_limit;
                resp.rl_remaining = r->rl_remaining;
                resp.rl_reset = r->rl_reset;
                resp.latency_us = kb_mono_us() - r->t0_us;
                resp.new_connections = nconn;
                h->completed++;
                h->connections += (uint64_t)(nconn > 0 ? nconn : 0);
                if (rc != CURLE_OK) {
                        char raw[sizeof(resp.errtext)];
                        if (r->too_large)
                                kb_snprintf(raw, sizeof(raw),
                                            "response body over %zu bytes",
                                            h->max_body);
                        else
                                kb_snprintf(raw, sizeof(raw), "%s%s%s",
                                            curl_easy_strerror(rc),
                                            r->errbuf[0] ? ": " : "",
                                            r->errbuf);
                        kb_log_scrub(raw, resp.errtext, sizeof(resp.errtext));
                }
                r->cb(&resp, r->opaque);
                req_release(h, r);
                fired++;
        }
        return fired;
}

int kb_http_poll(kb_http_t *h, int timeout_ms)
{
        int64_t deadline;
        int running, fired;

        if (!h)
                return KB_ERR_INVALID_ARG;
        if (timeout_ms < 0)
                timeout_ms = 0;
        deadline = kb_mono_ms() + timeout_ms;
        for (;;) {
                int64_t left;

                if (curl_multi_perform(h->multi, &running) != CURLM_OK)
                        return KB_ERR_HTTP;
                fired = drain_done(h);
                if (fired > 0)
                        return fired;
                left = deadline - kb_mono_ms();
                if (left <= 0)
                        return 0;
                if (curl_multi_poll(h->multi, NULL, 0, (int)left, NULL) !=
                    CURLM_OK)
                        return KB_ERR_HTTP;
        }
}

size_t kb_http_in_flight(const kb_http_t *h)
{
        return h ? h->n_inflight : 0;
}

void kb_http_counters(const kb_http_t *h, uint64_t *completed,
                      uint64_t *connections)
{
        if (completed)
                *completed = h ? h->completed : 0;
        if (connections)
                *connections = h ? h->connections : 0;
}
