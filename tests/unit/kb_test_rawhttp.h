/* kb_test_rawhttp.h -- unit-test helper: a canned-response HTTP server */
#ifndef KB_TEST_RAWHTTP_H
#define KB_TEST_RAWHTTP_H

/*
 * A one-thread HTTP/1.1 server on 127.0.0.1 (ephemeral port) that answers
 * every request with the same raw bytes (status line, headers, body) and
 * closes the connection: for responses the sandbox cannot be made to send
 * (absurd Retry-After or X-RateLimit-* values). Header-only (static inline)
 * so each test program can include it.
 */

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

typedef struct kbt_raw_s {
        int fd;
        int port;
        char url[64];
        char resp[2048];
        atomic_int requests; /* answered so far */
        atomic_int stop;
        pthread_mutex_t lock; /* guards resp */
        pthread_t thr;
} kbt_raw_t;

/* Reads one request (headers, then Content-Length bytes of body). */
static inline int kbt_raw_read_request(int c)
{
        char buf[8192];
        size_t len = 0;
        long body = 0;
        char *end = NULL, *cl;

        while (!end) {
                ssize_t n;
                if (len + 1 >= sizeof(buf))
                        return -1;
                n = read(c, buf + len, sizeof(buf) - 1 - len);
                if (n <= 0)
                        return -1;
                len += (size_t)n;
                buf[len] = '\0';
                end = strstr(buf, "\r\n\r\n");
        }
        for (cl = buf; cl < end; cl++)
                if (!strncasecmp(cl, "\r\nContent-Length:", 17)) {
                        body = strtol(cl + 17, NULL, 10);
                        break;
                }
        body -= (long)(len - (size_t)(end + 4 - buf));
        while (body > 0) {
                ssize_t n = read(c, buf, sizeof(buf));
                if (n <= 0)
                        return -1;
                body -= n;
        }
        return 0;
}

static inline void *kbt_raw_main(void *arg)
{
        kbt_raw_t *s = arg;

        while (!atomic_load(&s->stop)) {
                struct pollfd pfd = { s->fd, POLLIN, 0 };
                char out[sizeof(s->resp)];
                size_t len, off = 0;
                int c;

                if (poll(&pfd, 1, 50) <= 0)
                        continue;
                c = accept(s->fd, NULL, NULL);
                if (c < 0)
                        continue;
                if (kbt_raw_read_request(c) == 0) {
                        pthread_mutex_lock(&s->lock);
                        memcpy(out, s->resp, sizeof(out));
                        pthread_mutex_unlock(&s->lock);
                        len = strlen(out);
                        while (off < len) {
                                ssize_t n = write(c, out + off, len - off);
                                if (n <= 0)
                                        break;
                                off += (size_t)n;
                        }
                        atomic_fetch_add(&s->requests, 1);
                }
                close(c);
        }
        return NULL;
}

/* Sets the raw response (a complete HTTP/1.1 message; the helper does not
 * add "Connection: close", say it). */
static inline void kbt_raw_set(kbt_raw_t *s, const char *resp)
{
        pthread_mutex_lock(&s->lock);
        snprintf(s->resp, sizeof(s->resp), "%s", resp);
        pthread_mutex_unlock(&s->lock);
}

static inline int kbt_raw_start(kbt_raw_t *s, const char *resp)
{
        struct sockaddr_in a;
        socklen_t alen = sizeof(a);

        memset(s, 0, sizeof(*s));
        pthread_mutex_init(&s->lock, NULL);
        kbt_raw_set(s, resp);
        s->fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (s->fd < 0)
                return -1;
        memset(&a, 0, sizeof(a));
        a.sin_family = AF_INET;
        a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        if (bind(s->fd, (struct sockaddr *)&a, sizeof(a)) != 0 ||
            listen(s->fd, 16) != 0 ||
            getsockname(s->fd, (struct sockaddr *)&a, &alen) != 0) {
                close(s->fd);
                return -1;
        }
        s->port = ntohs(a.sin_port);
        snprintf(s->url, sizeof(s->url), "http://127.0.0.1:%d", s->port);
        if (pthread_create(&s->thr, NULL, kbt_raw_main, s) != 0) {
                close(s->fd);
                return -1;
        }
        return 0;
}

static inline void kbt_raw_stop(kbt_raw_t *s)
{
        atomic_store(&s->stop, 1);
        pthread_join(s->thr, NULL);
        close(s->fd);
        pthread_mutex_destroy(&s->lock);
}

#endif /* KB_TEST_RAWHTTP_H */
