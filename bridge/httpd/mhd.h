/* mhd.h -- what every libmicrohttpd server of ours shares: listen
 * addresses, loopback checks, TCP_NODELAY, the log bridge, starting */
#ifndef KB_MHD_H
#define KB_MHD_H

#include <stddef.h>

#include <microhttpd.h>

/* A listen address: numeric host and port (0: any free port). */
typedef struct kb_listen_s {
        char host[64];
        int port;
} kb_listen_t;

/**
 * Parses "HOST:PORT", "[V6]:PORT" or "localhost:PORT" (read as
 * 127.0.0.1) with a numeric host and a port of 0..65535. Returns 0, or -1
 * with "listen address 'S': reason" in @p errstr.
 */
int kb_listen_parse(const char *s, kb_listen_t *out, char *errstr,
                    size_t errstr_size);

/** Non-zero for 127.0.0.0/8, ::1 and ::ffff:127.x.x.x. */
int kb_listen_is_loopback(const char *host);

/**
 * Starts a libmicrohttpd daemon listening on @p addr, with @p flags (IPv6
 * is added for a v6 host), @p handler / @p handler_cls, every connection's
 * TCP_NODELAY set (an answer must not wait for the peer's delayed ACK:
 * notes/performance-budget.md), libmicrohttpd's own messages logged at
 * info under facility @p fac (a string that outlives the daemon), and the
 * caller's options @p extra (MHD_OPTION_END-terminated; may be NULL).
 * *@p port_out receives the port bound. Returns the daemon, or NULL with
 * a reason in @p errstr.
 */
struct MHD_Daemon *kb_mhd_start(const kb_listen_t *addr, unsigned flags,
                                MHD_AccessHandlerCallback handler,
                                void *handler_cls,
                                const struct MHD_OptionItem *extra,
                                const char *fac, int *port_out, char *errstr,
                                size_t errstr_size);

#endif /* KB_MHD_H */
