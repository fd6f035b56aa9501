/* sandbox.c -- the vendor API sandbox: configuration, start-up and shutdown */
#include "sandbox.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "log.h"
#include "mhd.h"

#define FAC "sandbox"

void kb_sbx_conf_init(kb_sbx_conf_t *conf)
{
        memset(conf, 0, sizeof(*conf));
        kb_strlcpy(conf->host, "127.0.0.1", sizeof(conf->host));
        conf->port = KB_SBX_DEFAULT_PORT;
        conf->threads = 2;
        conf->webhook_backoff_ms = KB_SBX_DEFAULT_BACKOFF_MS;
}

int kb_sbx_conf_listen(kb_sbx_conf_t *conf, const char *s, char *errstr,
                       size_t errstr_size)
{
        kb_listen_t addr;

        if (kb_listen_parse(s, &addr, errstr, errstr_size) == -1)
                return -1;
        kb_strlcpy(conf->host, addr.host, sizeof(conf->host));
        conf->port = addr.port;
        return 0;
}

kb_sbx_t *kb_sbx_new(const kb_sbx_conf_t *conf, char *errstr,
                     size_t errstr_size)
{
        kb_sbx_t *sbx = calloc(1, sizeof(*sbx));
        int loaded = 0;

        if (!sbx) {
                kb_snprintf(errstr, errstr_size, "out of memory");
                return NULL;
        }
        sbx->conf = *conf;
        if (conf->state_path) {
                sbx->state_path = strdup(conf->state_path);
                if (!sbx->state_path) {
                        kb_snprintf(errstr, errstr_size, "out of memory");
                        goto fail;
                }
        }
        sbx->conf.state_path = sbx->state_path;
        if (!sbx->conf.host[0])
                kb_strlcpy(sbx->conf.host, "127.0.0.1", sizeof(sbx->conf.host));
        if (!conf->allow_remote && !kb_listen_is_loopback(sbx->conf.host)) {
                kb_snprintf(errstr, errstr_size,
                            "refusing to listen on non-loopback address %s: "
                            "the sandbox has unauthenticated admin endpoints "
                            "(/sandbox/...); pass --allow-remote to do it "
                            "anyway",
                            sbx->conf.host);
                goto fail;
        }
        atomic_init(&sbx->clock_offset, 0);
        if (conf->have_seed)
                sbx->seed = conf->seed;
        else
                randombytes_buf(&sbx->seed, sizeof(sbx->seed));
        if (kb_sbx_store_init(&sbx->store, sbx->seed, !conf->have_seed) == -1) {
                kb_snprintf(errstr, errstr_size, "out of memory");
                goto fail;
        }
        sbx->store_ready = 1;
        kb_sbx_rl_init(&sbx->rl);
        sbx->rl_ready = 1;
        kb_sbx_faults_init(&sbx->faults, sbx->seed);
        sbx->faults_ready = 1;
        if (sbx->state_path) {
                loaded = kb_sbx_state_load(&sbx->store, sbx->state_path, errstr,
                                           errstr_size);
                if (loaded == -1)
                        goto fail;
        }
        sbx->wh = kb_sbx_webhook_new(sbx, sbx->conf.webhook_backoff_ms, errstr,
                                     errstr_size);
        if (!sbx->wh)
                goto fail;
        if (sbx->state_path) {
                sbx->saver = kb_sbx_saver_start(&sbx->store, sbx->state_path,
                                                errstr, errstr_size);
                if (!sbx->saver)
                        goto fail;
        }
        sbx->http = kb_sbx_http_start(sbx, errstr, errstr_size);
        if (!sbx->http)
                goto fail;
        sbx->port = kb_sbx_http_port(sbx->http);
        if (strchr(sbx->conf.host, ':'))
                kb_snprintf(sbx->base_url, sizeof(sbx->base_url),
                            "http://[%s]:%d", sbx->conf.host, sbx->port);
        else
                kb_snprintf(sbx->base_url, sizeof(sbx->base_url),
                            "http://%s:%d", sbx->conf.host, sbx->port);
        if (loaded == 1)
                kb_log_notice(FAC,
                              "state loaded from %s: %zu application(s), %zu "
                              "session(s)",
                              sbx->state_path, sbx->store.napps,
                              kb_hmap_count(sbx->store.sessions));
        kb_log_notice(
            FAC, "listening on %s (%s %llu%s, %d thread(s))", sbx->base_url,
            loaded == 1 ? "rng continued from the state file, not" : "seed",
            (unsigned long long)sbx->seed, conf->have_seed ? "" : " (random)",
            sbx->conf.threads);
        return sbx;
fail:
        kb_sbx_destroy(sbx);
        return NULL;
}

int kb_sbx_port(const kb_sbx_t *sbx)
{
        return sbx->port;
}

const char *kb_sbx_base_url(const kb_sbx_t *sbx)
{
        return sbx->base_url;
}

uint64_t kb_sbx_seed(const kb_sbx_t *sbx)
{
        return sbx->seed;
}

int kb_sbx_shutdown(kb_sbx_t *sbx, int64_t grace_ms)
{
        int rc = 0;

        if (!sbx || sbx->shut_down)
                return 0;
        sbx->shut_down = 1;
        if (sbx->http) {
                kb_sbx_http_quiesce(sbx->http, grace_ms);
                kb_sbx_http_stop(sbx->http);
                sbx->http = NULL;
        }
        if (sbx->wh) {
                kb_sbx_webhook_destroy(sbx->wh);
                sbx->wh = NULL;
        }
        if (sbx->saver) {
                rc = kb_sbx_saver_stop(sbx->saver);
                sbx->saver = NULL;
                if (rc == 0)
                        kb_log_notice(FAC, "state saved to %s",
                                      sbx->state_path);
        }
        return rc;
}

void kb_sbx_destroy(kb_sbx_t *sbx)
{
        if (!sbx)
                return;
        /* the wait ends as soon as nothing is in flight */
        kb_sbx_shutdown(sbx, 5000);
        if (sbx->faults_ready)
                kb_sbx_faults_destroy(&sbx->faults);
        if (sbx->rl_ready)
                kb_sbx_rl_destroy(&sbx->rl);
        if (sbx->store_ready)
                kb_sbx_store_free(&sbx->store);
        free(sbx->state_path);
        free(sbx);
}
