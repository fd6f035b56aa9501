/* test_httpd.c -- the in-process HTTP server: routes, 404/405/413, JSON
 * details, asynchronous answers, shutdown with a suspended request */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "httpd.h"
#include "json.h"
#include "log.h"
#include "util.h"

/* ---------------------------------------------------------------------- */
/* A raw HTTP/1.1 client: one request per connection (Connection: close) */

typedef struct resp_s {
        int status;
        char head[2048];
        char body[8192];
} resp_t;

static int http_raw(int port, const char *req, size_t req_len, resp_t *r)
{
        struct sockaddr_in sa;
        char buf[16384];
        size_t len = 0;
        char *eoh;
        int fd = socket(AF_INET, SOCK_STREAM, 0);

        memset(r, 0, sizeof(*r));
        assert_true(fd >= 0);
        memset(&sa, 0, sizeof(sa));
        sa.sin_family = AF_INET;
        sa.sin_port = htons((uint16_t)port);
        sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        assert_int_equal(connect(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
        assert_int_equal(write(fd, req, req_len), (ssize_t)req_len);
        for (;;) {
                ssize_t n = read(fd, buf + len, sizeof(buf) - 1 - len);
                if (n <= 0)
                        break;
                len += (size_t)n;
                if (len == sizeof(buf) - 1)
                        break;
        }
        close(fd);
        buf[len] = '\0';
        eoh = strstr(buf, "\r\n\r\n");
        if (!eoh || sscanf(buf, "HTTP/1.1 %d", &r->status) != 1)
                return -1;
        kb_strlcpy(r->head, buf,
                   (size_t)(eoh - buf) + 1 < sizeof(r->head)
                       ? (size_t)(eoh - buf) + 1
                       : sizeof(r->head));
        kb_strlcpy(r->body, eoh + 4, sizeof(r->body));
        return 0;
}

static int http_req(int port, const char *method, const char *path,
                    const char *body, resp_t *r)
{
        char req[4096];
        int n =
            snprintf(req, sizeof(req),
                     "%s %s HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
                     "X-Test: t1\r\nContent-Length: %zu\r\n\r\n%s",
                     method, path, body ? strlen(body) : 0, body ? body : "");
        return http_raw(port, req, (size_t)n, r);
}

/* The detail of a JSON error body. */
static void assert_detail(const resp_t *r, const char *want)
{
        char err[128];
        json_object *o =
            kb_json_parse(r->body, strlen(r->body), 8, err, sizeof(err));
        assert_non_null(o);
        assert_string_equal(kb_json_get_str(o, "detail"), want);
        assert_non_null(strstr(r->head, "application/json"));
        json_object_put(o);
}

/* ---------------------------------------------------------------------- */
/* Handlers */

static void h_echo(void *opaque, kb_httpd_req_t *req)
{
        size_t len;
        const char *body = kb_httpd_req_body(req, &len);
        const char *x = kb_httpd_req_header(req, "x-test");
        const char *hdrs[] = { "X-Seen", x ? x : "-", NULL };
        (void)opaque;
        assert_int_equal(
            kb_httpd_reply(req, 200, "text/plain", body, len, hdrs), KB_OK);
}

/* Parks requests for the test to answer later, from its own thread. */
typedef struct park_s {
        pthread_mutex_t lock;
        kb_httpd_req_t *req[8];
        int n;
} park_t;

static void h_park(void *opaque, kb_httpd_req_t *req)
{
        park_t *p = opaque;
        pthread_mutex_lock(&p->lock);
        p->req[p->n++] = req;
        pthread_mutex_unlock(&p->lock);
}

static kb_httpd_req_t *park_wait(park_t *p, int i)
{
        int64_t deadline = kb_mono_ms() + 30000;
        kb_httpd_req_t *r = NULL;

        while (!r && kb_mono_ms() < deadline) {
                pthread_mutex_lock(&p->lock);
                if (p->n > i)
                        r = p->req[i];
                pthread_mutex_unlock(&p->lock);
                if (!r)
                        usleep(2000);
        }
        assert_non_null(r);
        return r;
}

static kb_httpd_t *server(park_t *park)
{
        kb_httpd_conf_t c = { 0 };
        char err[256];
        kb_httpd_t *h;

        c.listen = "127.0.0.1:0";
        c.body_max = 64;
        c.name = "test";
        h = kb_httpd_new(&c, NULL, err, sizeof(err));
        assert_non_null(h);
        assert_int_equal(kb_httpd_route(h, "POST", "/echo", h_echo, NULL),
                         KB_OK);
        assert_int_equal(kb_httpd_route(h, "PUT", "/echo", h_echo, NULL),
                         KB_OK);
        assert_int_equal(kb_httpd_route(h, "POST", "/echo", h_echo, NULL),
                         KB_ERR_EXISTS);
        if (park)
                assert_int_equal(
                    kb_httpd_route(h, "POST", "/park", h_park, park), KB_OK);
        assert_int_equal(kb_httpd_start(h, err, sizeof(err)), KB_OK);
        assert_int_equal(kb_httpd_route(h, "GET", "/late", h_echo, NULL),
                         KB_ERR_STATE);
        return h;
}

/* ---------------------------------------------------------------------- */
/* Tests */

static void test_routes_and_errors(void **state)
{
        kb_httpd_t *h = server(NULL);
        int port = kb_httpd_port(h);
        resp_t r;
        char big[256];

        (void)state;
        assert_int_equal(http_req(port, "POST", "/echo", "hello", &r), 0);
        assert_int_equal(r.status, 200);
        assert_string_equal(r.body, "hello");
        assert_non_null(strstr(r.head, "X-Seen: t1"));

        /* query strings do not matter */
        assert_int_equal(http_req(port, "PUT", "/echo?a=1", "x", &r), 0);
        assert_int_equal(r.status, 200);

        assert_int_equal(http_req(port, "POST", "/nope", "x", &r), 0);
        assert_int_equal(r.status, 404);
        assert_detail(&r, "Not found.");

        assert_int_equal(http_req(port, "GET", "/echo", NULL, &r), 0);
        assert_int_equal(r.status, 405);
        assert_detail(&r, "Method not allowed.");
        assert_non_null(strstr(r.head, "Allow: POST, PUT"));

        /* over the limit by Content-Length: refused from the header */
        memset(big, 'a', sizeof(big) - 1);
        big[sizeof(big) - 1] = '\0';
        assert_int_equal(http_req(port, "POST", "/echo", big, &r), 0);
        assert_int_equal(r.status, 413);
        assert_detail(&r, "Request body exceeds the limit of 64 bytes.");

        /* over the limit in chunks */
        {
                const char *chunked =
                    "POST /echo HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
                    "Transfer-Encoding: chunked\r\n\r\n"
                    "28\r\naaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\n"
                    "28\r\naaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\n"
                    "0\r\n\r\n";
                assert_int_equal(http_raw(port, chunked, strlen(chunked), &r),
                                 0);
                assert_int_equal(r.status, 413);
                assert_detail(&r,
                              "Request body exceeds the limit of 64 bytes.");
        }
        kb_httpd_destroy(h, 1000);
}

typedef struct client_s {
        int port;
        const char *path;
        resp_t r;
        int rc;
        pthread_t th;
} client_t;

static void *client_main(void *arg)
{
        client_t *c = arg;
        c->rc = http_req(c->port, "POST", c->path, "{}", &c->r);
        return NULL;
}

static void test_async_answer(void **state)
{
        park_t park;
        kb_httpd_t *h;
        client_t c[2];
        kb_httpd_req_t *r0, *r1;
        int i;

        (void)state;
        memset(&park, 0, sizeof(park));
        pthread_mutex_init(&park.lock, NULL);
        h = server(&park);
        for (i = 0; i < 2; i++) {
                c[i].port = kb_httpd_port(h);
                c[i].path = "/park";
                assert_int_equal(
                    pthread_create(&c[i].th, NULL, client_main, &c[i]), 0);
        }
        r0 = park_wait(&park, 0);
        r1 = park_wait(&park, 1);
        /* both are suspended; the server still answers others */
        {
                resp_t r;
                assert_int_equal(
                    http_req(kb_httpd_port(h), "POST", "/echo", "x", &r), 0);
                assert_int_equal(r.status, 200);
        }
        /* answered from this thread, the second first */
        assert_int_equal(
            kb_httpd_reply(r1, 202, "application/json", "{\"n\":1}", 7, NULL),
            KB_OK);
        assert_int_equal(kb_httpd_reply_error(r0, 503, "later", NULL), KB_OK);
        for (i = 0; i < 2; i++) {
                pthread_join(c[i].th, NULL);
                assert_int_equal(c[i].rc, 0);
        }
        /* which client got which answer depends on arrival order */
        assert_true((c[0].r.status == 202 && c[1].r.status == 503) ||
                    (c[0].r.status == 503 && c[1].r.status == 202));
        for (i = 0; i < 2; i++)
                if (c[i].r.status == 503)
                        assert_detail(&c[i].r, "later");
                else
                        assert_string_equal(c[i].r.body, "{\"n\":1}");
        kb_httpd_destroy(h, 1000);
        pthread_mutex_destroy(&park.lock);
}

static void test_shutdown_with_suspended(void **state)
{
        park_t park;
        kb_httpd_t *h;
        client_t c;
        kb_httpd_req_t *r0;

        (void)state;
        memset(&park, 0, sizeof(park));
        pthread_mutex_init(&park.lock, NULL);
        h = server(&park);
        c.port = kb_httpd_port(h);
        c.path = "/park";
        assert_int_equal(pthread_create(&c.th, NULL, client_main, &c), 0);
        r0 = park_wait(&park, 0);
        /* the server answers it at shutdown ... */
        kb_httpd_destroy(h, 5000);
        pthread_join(c.th, NULL);
        assert_int_equal(c.rc, 0);
        assert_int_equal(c.r.status, 503);
        assert_detail(&c.r, "Shutting down.");
        /* ... and the handler's late answer is a no-op that frees it */
        assert_int_equal(kb_httpd_reply(r0, 200, NULL, "x", 1, NULL),
                         KB_ERR_STATE);
        pthread_mutex_destroy(&park.lock);
}

static void test_listen_checks(void **state)
{
        kb_httpd_conf_t c = { 0 };
        char err[256];
        kb_httpd_t *h;

        (void)state;
        c.body_max = 1024;
        c.listen = "0.0.0.0:8490";
        {
                int e = 0;
                assert_null(kb_httpd_new(&c, &e, err, sizeof(err)));
                assert_int_equal(e, KB_ERR_CONFIG);
        }
        assert_non_null(strstr(err, "not loopback"));
        c.listen = "[::]:8490";
        assert_null(kb_httpd_new(&c, NULL, err, sizeof(err)));
        c.listen = "example.com:8490"; /* names are not resolved */
        assert_null(kb_httpd_new(&c, NULL, err, sizeof(err)));
        assert_non_null(strstr(err, "numeric"));
        c.listen = "localhost:0"; /* the one name: 127.0.0.1 */
        h = kb_httpd_new(&c, NULL, err, sizeof(err));
        assert_non_null(h);
        kb_httpd_destroy(h, 0);
        c.listen = "127.0.0.1";
        assert_null(kb_httpd_new(&c, NULL, err, sizeof(err)));
        c.listen = "127.0.0.1:70000";
        assert_null(kb_httpd_new(&c, NULL, err, sizeof(err)));
        c.listen = "[::1]:0";
        h = kb_httpd_new(&c, NULL, err, sizeof(err));
        assert_non_null(h);
        kb_httpd_destroy(h, 0);
        c.listen = "127.5.0.1:0";
        h = kb_httpd_new(&c, NULL, err, sizeof(err));
        assert_non_null(h);
        kb_httpd_destroy(h, 0);
        c.listen = "0.0.0.0:0";
        c.allow_non_loopback = 1;
        h = kb_httpd_new(&c, NULL, err, sizeof(err));
        assert_non_null(h);
        kb_httpd_destroy(h, 0);
        c.body_max = 0;
        assert_null(kb_httpd_new(&c, NULL, err, sizeof(err)));
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_routes_and_errors),
                cmocka_unit_test(test_async_answer),
                cmocka_unit_test(test_shutdown_with_suspended),
                cmocka_unit_test(test_listen_checks),
        };

        kb_log_setup(KB_LOG_WARN, 0, 2, "test_httpd");
        return cmocka_run_group_tests(tests, NULL, NULL);
}
