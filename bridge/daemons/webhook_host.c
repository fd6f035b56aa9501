/* webhook_host.c -- a daemon's webhook intake: the HTTP server, the intake
 * and its producer, built from the webhook.* options */
#include "webhook_host.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <librdkafka/rdkafka.h>
#include <sodium.h>

#include "httpd.h"
#include "kafka.h"
#include "log.h"
#include "util.h"

#define HTTPD_GRACE_MS 2000

struct kb_wh_host_s {
        const kb_conf_t *conf;
        char name[48];   /* log facility: "<role>-webhook" */
        char listen[80]; /* as configured */
        char path[256];
        kb_httpd_t *h;
        kb_wh_intake_conf_t ic; /* secrets point into secret[] */
        rd_kafka_conf_t *rkc;   /* until the intake takes it */
        char *secret[2];        /* until the intake has its copies */
        size_t secret_len[2];
        /* The intake, NULL before start and after stop. Handlers read it
         * under the read lock; stopping takes the write lock, so that no
         * handler is inside the intake when it is freed. A handler that
         * sees closing answers 503 without taking the read lock: glibc's
         * rwlock prefers readers, and a steady stream of deliveries on
         * several threads would otherwise keep the stop from ever getting
         * the write lock. */
        pthread_rwlock_t gate;
        kb_wh_intake_t *wi;
        atomic_int closing;        /* set by the stop before the write lock */
        kb_wh_intake_stats_t last; /* counters when the intake stopped */
        int nsecrets;
        int started, stopped; /* the daemon's thread */
        atomic_int port;      /* bound port while listening (any thread) */
};

static void reply_closing(const kb_wh_host_t *wh, kb_httpd_req_t *req)
{
        char ra[24];
        const char *hdrs[] = { "Retry-After", ra, NULL };

        kb_snprintf(ra, sizeof(ra), "%d",
                    wh->ic.retry_after_s ? wh->ic.retry_after_s : 5);
        kb_httpd_reply_error(req, 503, "Shutting down.", hdrs);
}

/* The route's handler: the intake while there is one, 503 otherwise. */
static void host_handler(void *opaque, kb_httpd_req_t *req)
{
        kb_wh_host_t *wh = opaque;

        if (atomic_load(&wh->closing)) {
                reply_closing(wh, req);
                return;
        }
        pthread_rwlock_rdlock(&wh->gate);
        /* again: the stop may have begun while we waited */
        if (wh->wi && !atomic_load(&wh->closing))
                kb_wh_intake_handler(wh->wi, req);
        else
                reply_closing(wh, req);
        pthread_rwlock_unlock(&wh->gate);
}

uint64_t kb_wh_host_refused(const kb_wh_intake_stats_t *st)
{
        return st->malformed + st->unauthorized + st->conflicts + st->too_large;
}

static void secrets_free(kb_wh_host_t *wh)
{
        int i;

        for (i = 0; i < 2; i++) {
                if (wh->secret[i])
                        kb_conf_secret_free(wh->secret[i], wh->secret_len[i]);
                wh->secret[i] = NULL;
                wh->ic.secrets[i] = NULL;
        }
}

/* Resolves secret option @p key into slot @p i. KB_OK, KB_ERR_NOT_FOUND
 * (unset), KB_ERR_NOMEM or KB_ERR_CONFIG. */
static int secret_load(kb_wh_host_t *wh, int i, const char *key, char *errstr,
                       size_t errstr_size)
{
        int r = kb_conf_get_secret(wh->conf, key, &wh->secret[i],
                                   &wh->secret_len[i], errstr, errstr_size);

        if (r != KB_OK) {
                wh->secret[i] = NULL;
                return r == KB_ERR_NOT_FOUND || r == KB_ERR_NOMEM
                           ? r
                           : KB_ERR_CONFIG;
        }
        if (!wh->secret_len[i] || strlen(wh->secret[i]) != wh->secret_len[i]) {
                kb_snprintf(errstr, errstr_size,
                            "%s: %s: the secret is empty or holds a NUL byte",
                            kb_conf_origin(wh->conf, key), key);
                return KB_ERR_CONFIG;
        }
        wh->ic.secrets[i] = wh->secret[i];
        return KB_OK;
}

int kb_wh_host_new(const kb_conf_t *conf, const char *role,
                   kb_wh_action_fn *action, void *opaque, kb_wh_host_t **out,
                   char *errstr, size_t errstr_size)
{
        const char *listen = kb_conf_get(conf, "webhook.listen");
        const char *path = kb_conf_get(conf, "webhook.path");
        const char *extra[] = { "client.id", NULL, NULL };
        char cid[64], herr[256];
        kb_httpd_conf_t hc;
        kb_wh_host_t *wh;
        int r;

        *out = NULL;
        if (!listen || !*listen)
                return KB_OK;
        if (!action) {
                kb_snprintf(errstr, errstr_size,
                            "%s: webhook.listen: the %s takes no webhook "
                            "deliveries",
                            kb_conf_origin(conf, "webhook.listen"), role);
                return KB_ERR_CONFIG;
        }
        if (!path || path[0] != '/' || strlen(path) >= 256 ||
            strpbrk(path, "?# \t")) {
                kb_snprintf(errstr, errstr_size,
                            "%s: webhook.path: an absolute path without a "
                            "query, at most 255 bytes",
                            kb_conf_origin(conf, "webhook.path"));
                return KB_ERR_CONFIG;
        }
        wh = calloc(1, sizeof(*wh));
        if (!wh)
                return KB_ERR_NOMEM;
        if (pthread_rwlock_init(&wh->gate, NULL)) {
                free(wh);
                return KB_ERR_NOMEM;
        }
        atomic_init(&wh->closing, 0);
        atomic_init(&wh->port, 0);
        wh->conf = conf;
        kb_snprintf(wh->name, sizeof(wh->name), "%s-webhook", role);
        kb_strlcpy(wh->listen, listen, sizeof(wh->listen));
        kb_strlcpy(wh->path, path, sizeof(wh->path));

        /* the server: checks the address, does not bind yet */
        memset(&hc, 0, sizeof(hc));
        hc.listen = listen;
        hc.allow_non_loopback =
            kb_conf_get_bool(conf, "webhook.allow_non_loopback");
        hc.body_max = (size_t)kb_conf_get_int(conf, "webhook.body_max");
        hc.threads = (unsigned)kb_conf_get_int(conf, "webhook.threads");
        hc.name = wh->name;
        wh->h = kb_httpd_new(&hc, &r, herr, sizeof(herr));
        if (!wh->h) {
                kb_snprintf(errstr, errstr_size, "%s: webhook.listen: %s",
                            kb_conf_origin(conf, "webhook.listen"), herr);
                goto fail;
        }
        r = kb_httpd_route(wh->h, "POST", wh->path, host_handler, wh);
        if (r != KB_OK) {
                kb_snprintf(errstr, errstr_size, "%s: webhook.path: %s",
                            kb_conf_origin(conf, "webhook.path"),
                            kb_err2str(r));
                r = r == KB_ERR_NOMEM ? r : KB_ERR_CONFIG;
                goto fail;
        }

        /* the secrets: the current one is required */
        r = secret_load(wh, 0, "webhook.secret", errstr, errstr_size);
        if (r == KB_ERR_NOT_FOUND)
                kb_snprintf(errstr, errstr_size,
                            "%s: webhook.secret: required with "
                            "webhook.listen (the vendor's secret_shared_key, "
                            "as env:NAME or file:PATH)",
                            kb_conf_origin(conf, "webhook.listen"));
        if (r != KB_OK) {
                if (r == KB_ERR_NOT_FOUND)
                        r = KB_ERR_CONFIG;
                goto fail;
        }
        r = secret_load(wh, 1, "webhook.secret_previous", errstr, errstr_size);
        if (r != KB_OK && r != KB_ERR_NOT_FOUND)
                goto fail;
        if (wh->secret[1] && wh->secret_len[1] == wh->secret_len[0] &&
            !sodium_memcmp(wh->secret[0], wh->secret[1], wh->secret_len[0]))
                kb_log_warn(wh->name, "webhook.secret_previous is the same "
                                      "secret as webhook.secret");

        wh->nsecrets = wh->secret[1] ? 2 : 1;
        wh->ic.allow_simple = kb_conf_get_bool(conf, "webhook.allow_simple");
        wh->ic.body_max = hc.body_max;
        wh->ic.replay_max = (size_t)kb_conf_get_int(conf, "webhook.replay_max");
        wh->ic.kafka_timeout_ms =
            (int)kb_conf_get_int(conf, "webhook.kafka_timeout_ms");
        wh->ic.retry_after_s =
            (int)kb_conf_get_int(conf, "webhook.retry_after_s");
        wh->ic.action = action;
        wh->ic.opaque = opaque;
        wh->ic.name = wh->name;

        /* the producer's configuration (the intake makes it idempotent
         * with acks=all and its own message.timeout.ms) */
        kb_snprintf(cid, sizeof(cid), "kyc-bridge-%s-webhook", role);
        extra[1] = cid;
        wh->rkc = kb_kafka_conf_new(conf, RD_KAFKA_PRODUCER, extra, errstr,
                                    errstr_size);
        if (!wh->rkc) {
                r = strcmp(errstr, "out of memory") ? KB_ERR_CONFIG
                                                    : KB_ERR_NOMEM;
                goto fail;
        }
        *out = wh;
        return KB_OK;
fail:
        kb_wh_host_destroy(wh);
        return r;
}

int kb_wh_host_start(kb_wh_host_t *wh, char *errstr, size_t errstr_size)
{
        kb_wh_intake_t *wi;
        char herr[256];
        rd_kafka_conf_t *rkc = wh->rkc;
        int r;

        if (wh->started) {
                kb_snprintf(errstr, errstr_size, "webhook intake: started");
                return KB_ERR_STATE;
        }
        wh->started = 1;
        wh->rkc = NULL; /* the intake takes it in every case */
        wi = kb_wh_intake_new(&wh->ic, rkc, &r, errstr, errstr_size);
        secrets_free(wh); /* the intake holds its own copies */
        if (!wi)
                return r == KB_ERR_NOMEM ? r : KB_ERR_KAFKA;
        pthread_rwlock_wrlock(&wh->gate);
        wh->wi = wi;
        pthread_rwlock_unlock(&wh->gate);
        if (kb_httpd_start(wh->h, herr, sizeof(herr)) != KB_OK) {
                kb_snprintf(errstr, errstr_size,
                            "webhook.listen %s: cannot listen: %s", wh->listen,
                            herr);
                kb_wh_host_stop(wh);
                return KB_ERR_IO;
        }
        atomic_store(&wh->port, kb_httpd_port(wh->h));
        kb_log_notice(wh->name,
                      "listening on %s (port %d): POST %s, %d secret(s), "
                      "X-Signature-Simple %s",
                      wh->listen, kb_httpd_port(wh->h), wh->path, wh->nsecrets,
                      wh->ic.allow_simple ? "accepted" : "refused");
        return KB_OK;
}

int kb_wh_host_port(const kb_wh_host_t *wh)
{
        return wh ? atomic_load(&((kb_wh_host_t *)wh)->port) : 0;
}

kb_httpd_t *kb_wh_host_httpd(kb_wh_host_t *wh)
{
        return wh && !wh->started ? wh->h : NULL;
}

void kb_wh_host_stats(kb_wh_host_t *wh, kb_wh_intake_stats_t *st)
{
        pthread_rwlock_rdlock(&wh->gate);
        if (wh->wi)
                kb_wh_intake_stats(wh->wi, st);
        else
                *st = wh->last;
        pthread_rwlock_unlock(&wh->gate);
}

void kb_wh_host_stop(kb_wh_host_t *wh)
{
        kb_wh_intake_t *wi;

        if (!wh || wh->stopped)
                return;
        wh->stopped = 1;
        atomic_store(&wh->port, 0);
        /* from now on handlers answer 503 without the read lock; those
         * already past the check finish, then no handler is inside the
         * intake once we hold the write lock */
        atomic_store(&wh->closing, 1);
        pthread_rwlock_wrlock(&wh->gate);
        wi = wh->wi;
        wh->wi = NULL;
        if (wi)
                kb_wh_intake_stats(wi, &wh->last);
        pthread_rwlock_unlock(&wh->gate);
        if (wi) {
                kb_wh_intake_destroy(wi, wh->ic.kafka_timeout_ms);
                kb_log_info(wh->name,
                            "stopped: accepted %llu, duplicates %llu, "
                            "refused %llu, unavailable %llu",
                            (unsigned long long)wh->last.accepted,
                            (unsigned long long)wh->last.duplicates,
                            (unsigned long long)kb_wh_host_refused(&wh->last),
                            (unsigned long long)wh->last.unavailable);
        }
        kb_httpd_destroy(wh->h, HTTPD_GRACE_MS);
        wh->h = NULL;
}

void kb_wh_host_destroy(kb_wh_host_t *wh)
{
        if (!wh)
                return;
        kb_wh_host_stop(wh);
        if (wh->rkc)
                rd_kafka_conf_destroy(wh->rkc);
        secrets_free(wh);
        pthread_rwlock_destroy(&wh->gate);
        free(wh);
}
