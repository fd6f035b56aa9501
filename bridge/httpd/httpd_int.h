/* httpd_int.h -- internals shared by httpd.c (the server) and httpd_req.c
 * (requests and their answers) */
#ifndef KB_HTTPD_INT_H
#define KB_HTTPD_INT_H

#include <pthread.h>
#include <stdatomic.h>

#include <microhttpd.h>

#include "httpd.h"
#include "mhd.h"
#include "util.h"

typedef struct kb_httpd_route_s {
        char *method;
        char *path;
        kb_httpd_handler_fn *fn;
        void *opaque;
} kb_httpd_route_t;

/* A request's answer state (req->lock). */
typedef enum {
        KB_HTTPD_R_READING,   /* headers and body arriving */
        KB_HTTPD_R_HANDLER,   /* the handler runs, no answer yet */
        KB_HTTPD_R_SUSPENDED, /* connection suspended, waiting for the answer */
        KB_HTTPD_R_ANSWERED,  /* answer ready, not yet queued to MHD */
        KB_HTTPD_R_DONE,      /* answer queued (or the connection is gone) */
} kb_httpd_rstate_t;

struct kb_httpd_req_s {
        pthread_mutex_t lock;
        int refcnt;                  /* (lock) server's + handler's */
        kb_httpd_rstate_t state;     /* (lock) */
        struct MHD_Connection *conn; /* (lock) NULL once MHD is done */
        struct MHD_Response *resp;   /* (lock) answer waiting to be queued */
        unsigned status;             /* (lock) of resp */
        int suspended;               /* counted in h->nsuspended (lock) */
        /* server threads only */
        kb_httpd_t *h;
        const char *method, *path; /* MHD's strings, valid while conn */
        kb_buf_t body;
        int too_large;
        size_t discarded;
        int64_t t0_us;
        struct kb_httpd_req_s *prev, *next; /* (h->lock) handed to a handler */
        int listed;                         /* (h->lock) */
};

struct kb_httpd_s {
        kb_httpd_conf_t conf;
        char name[32];
        kb_listen_t addr; /* as configured */
        atomic_int port;  /* as bound; 0 until started (any thread) */
        kb_httpd_route_t *routes;
        size_t nroutes;
        struct MHD_Daemon *d;
        atomic_int stopping;
        atomic_long nsuspended;
        pthread_mutex_t lock;
        kb_httpd_req_t *live; /* (lock) requests handed to a handler */
};

/* httpd_req.c */

/** Builds an MHD response (body copied); NULL on ENOMEM. */
struct MHD_Response *kb_httpd_response(const char *content_type,
                                       const void *body, size_t len,
                                       const char *const *headers);
/** {"detail": ...} response, application/json. NULL on ENOMEM. */
struct MHD_Response *kb_httpd_error_response(const char *detail,
                                             const char *const *headers);
/**
 * Hands the answer @p mr / @p status to @p req if it still waits for one
 * (resuming a suspended connection). Consumes @p mr (NULL: the connection
 * will be closed without an answer). KB_OK or KB_ERR_STATE.
 */
int kb_httpd_req_deliver(kb_httpd_req_t *req, struct MHD_Response *mr,
                         unsigned status);
/** Drops one reference; frees at zero. */
void kb_httpd_req_unref(kb_httpd_req_t *req);

#endif /* KB_HTTPD_INT_H */
