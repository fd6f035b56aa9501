/* mhd.c -- what every libmicrohttpd server of ours shares: listen
 * addresses, loopback checks, TCP_NODELAY, the log bridge, starting */
#include "mhd.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>

#include "log.h"
#include "util.h"

int kb_listen_parse(const char *s, kb_listen_t *out, char *errstr,
                    size_t errstr_size)
{
        const char *colon, *hs = s, *he;
        unsigned char buf[sizeof(struct in6_addr)];
        char host[sizeof(out->host)];
        int64_t port;

        if (!s || !*s) {
                kb_snprintf(errstr, errstr_size,
                            "listen address '': expected ADDR:PORT");
                return -1;
        }
        if (s[0] == '[') {
                he = strchr(s, ']');
                if (!he || he[1] != ':') {
                        kb_snprintf(errstr, errstr_size,
                                    "listen address '%s': expected [IPv6]:PORT",
                                    s);
                        return -1;
                }
                hs = s + 1;
                colon = he + 1;
        } else {
                colon = strrchr(s, ':');
                if (!colon) {
                        kb_snprintf(errstr, errstr_size,
                                    "listen address '%s': expected ADDR:PORT",
                                    s);
                        return -1;
                }
                he = colon;
        }
        if (he == hs || (size_t)(he - hs) >= sizeof(host)) {
                kb_snprintf(errstr, errstr_size,
                            "listen address '%s': bad host", s);
                return -1;
        }
        memcpy(host, hs, (size_t)(he - hs));
        host[he - hs] = '\0';
        if (kb_parse_i64(colon + 1, 0, 65535, &port) == -1) {
                kb_snprintf(errstr, errstr_size,
                            "listen address '%s': port must be 0..65535", s);
                return -1;
        }
        if (!strcmp(host, "localhost"))
                kb_strlcpy(host, "127.0.0.1", sizeof(host));
        if (inet_pton(AF_INET, host, buf) != 1 &&
            inet_pton(AF_INET6, host, buf) != 1) {
                kb_snprintf(errstr, errstr_size,
                            "listen address '%s': host must be a numeric IPv4 "
                            "or IPv6 address (or localhost)",
                            s);
                return -1;
        }
        kb_strlcpy(out->host, host, sizeof(out->host));
        out->port = (int)port;
        return 0;
}

int kb_listen_is_loopback(const char *host)
{
        struct in_addr a4;
        struct in6_addr a6;

        if (inet_pton(AF_INET, host, &a4) == 1)
                return (ntohl(a4.s_addr) >> 24) == 127;
        if (inet_pton(AF_INET6, host, &a6) == 1) {
                if (IN6_IS_ADDR_LOOPBACK(&a6))
                        return 1;
                return IN6_IS_ADDR_V4MAPPED(&a6) && a6.s6_addr[12] == 127;
        }
        return 0;
}

static void on_connection(void *cls, struct MHD_Connection *conn,
                          void **socket_context,
                          enum MHD_ConnectionNotificationCode toe)
{
        const union MHD_ConnectionInfo *ci;
        int one = 1;

        (void)cls;
        (void)socket_context;
        if (toe != MHD_CONNECTION_NOTIFY_STARTED)
                return;
        ci = MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CONNECTION_FD);
        if (ci)
                setsockopt(ci->connect_fd, IPPROTO_TCP, TCP_NODELAY, &one,
                           sizeof(one));
}

/* libmicrohttpd's own format and arguments (a vprintf-style callback) */
#if defined(__GNUC__)
__attribute__((format(printf, 2, 0)))
#endif
static void
on_mhd_log(void *cls, const char *fmt, va_list ap)
{
        char msg[512];
        size_t n;

        vsnprintf(msg, sizeof(msg), fmt, ap);
        n = strlen(msg);
        while (n > 0 && (msg[n - 1] == '\n' || msg[n - 1] == '\r'))
                msg[--n] = '\0';
        kb_log_info((const char *)cls, "libmicrohttpd: %s", msg);
}

struct MHD_Daemon *kb_mhd_start(const kb_listen_t *addr, unsigned flags,
                                MHD_AccessHandlerCallback handler,
                                void *handler_cls,
                                const struct MHD_OptionItem *extra,
                                const char *fac, int *port_out, char *errstr,
                                size_t errstr_size)
{
        static const struct MHD_OptionItem none[] = {
                { MHD_OPTION_END, 0, NULL },
        };
        struct sockaddr_storage ss;
        socklen_t sl = sizeof(ss);
        struct sockaddr_in sin;
        struct sockaddr_in6 sin6;
        const struct sockaddr *sa;
        const union MHD_DaemonInfo *di;
        struct MHD_Daemon *d;

        memset(&sin, 0, sizeof(sin));
        memset(&sin6, 0, sizeof(sin6));
        if (inet_pton(AF_INET, addr->host, &sin.sin_addr) == 1) {
                sin.sin_family = AF_INET;
                sin.sin_port = htons((uint16_t)addr->port);
                sa = (const struct sockaddr *)&sin;
        } else if (inet_pton(AF_INET6, addr->host, &sin6.sin6_addr) == 1) {
                sin6.sin6_family = AF_INET6;
                sin6.sin6_port = htons((uint16_t)addr->port);
                sa = (const struct sockaddr *)&sin6;
                flags |= MHD_USE_IPv6;
        } else {
                kb_snprintf(errstr, errstr_size,
                            "listen address '%s' is not a numeric address",
                            addr->host);
                return NULL;
        }
        d = MHD_start_daemon(
            flags, 0, NULL, NULL, handler, handler_cls, MHD_OPTION_SOCK_ADDR,
            sa, MHD_OPTION_NOTIFY_CONNECTION, on_connection, NULL,
            MHD_OPTION_EXTERNAL_LOGGER, on_mhd_log, (void *)fac,
            MHD_OPTION_ARRAY, extra ? extra : none, MHD_OPTION_END);
        if (!d) {
                kb_snprintf(errstr, errstr_size,
                            "cannot listen on %s port %d (in use, or no "
                            "permission)",
                            addr->host, addr->port);
                return NULL;
        }
        di = MHD_get_daemon_info(d, MHD_DAEMON_INFO_LISTEN_FD);
        if (!di || getsockname(di->listen_fd, (struct sockaddr *)&ss, &sl)) {
                kb_snprintf(errstr, errstr_size, "getsockname: %s",
                            strerror(errno));
                MHD_stop_daemon(d);
                return NULL;
        }
        if (ss.ss_family == AF_INET6)
                *port_out = ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
        else
                *port_out = ntohs(((struct sockaddr_in *)&ss)->sin_port);
        return d;
}
