/* sandbox_webhook.c -- the sandbox's signed webhook deliveries, with retries */
#include "mhd.h"
#include "sandbox.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <curl/curl.h>
#include <sodium.h>

#include "json.h"
#include "log.h"
#include "webhook_sig.h"

#define FAC "sandbox"

/* The vendor tries three times in all: at once, then after 1 and 4 min. */
#define ATTEMPTS_MAX 3
#define INFLIGHT_MAX 64

typedef struct job_s {
        int64_t due_ms; /* monotonic */
        int attempts;   /* made so far */
        char app_id[37];
        char *url, *event, *session_id, *status, *vendor_data, *decision;
        /* while in flight */
        CURL *easy;
        struct curl_slist *hdrs;
        char *body;
        char errbuf[CURL_ERROR_SIZE];
} job_t;

struct kb_sbx_webhook_s {
        kb_sbx_t *sbx;
        int64_t backoff_ms, timeout_ms;
        pthread_t thr;
        int started;
        pthread_mutex_t lock;
        job_t **heap; /* min-heap on due_ms (lock) */
        size_t nheap, capheap;
        int stop; /* (lock) */
        CURLM *multi;
        job_t *active[INFLIGHT_MAX]; /* transfers in flight (worker only) */
        size_t inflight;
        atomic_uint_fast64_t ok, failed;
};

static pthread_once_t curl_once = PTHREAD_ONCE_INIT;
static CURLcode curl_init_rc = CURLE_FAILED_INIT;

static void curl_init_once(void)
{
        curl_init_rc = curl_global_init(CURL_GLOBAL_DEFAULT);
}

static void job_free(job_t *j)
{
        if (!j)
                return;
        if (j->easy)
                curl_easy_cleanup(j->easy);
        curl_slist_free_all(j->hdrs);
        free(j->url);
        free(j->event);
        free(j->session_id);
        free(j->status);
        free(j->vendor_data);
        free(j->decision);
        free(j->body);
        free(j);
}

static int heap_push(kb_sbx_webhook_t *wh, job_t *j)
{
        size_t i;

        if (wh->nheap == wh->capheap) {
                size_t nc = wh->capheap ? wh->capheap * 2 : 64;
                job_t **nh = realloc(wh->heap, nc * sizeof(*nh));
                if (!nh)
                        return -1;
                wh->heap = nh;
                wh->capheap = nc;
        }
        i = wh->nheap++;
        wh->heap[i] = j;
        while (i > 0 && wh->heap[(i - 1) / 2]->due_ms > wh->heap[i]->due_ms) {
                job_t *t = wh->heap[(i - 1) / 2];
                wh->heap[(i - 1) / 2] = wh->heap[i];
                wh->heap[i] = t;
                i = (i - 1) / 2;
        }
        return 0;
}

static job_t *heap_pop(kb_sbx_webhook_t *wh)
{
        job_t *top = wh->heap[0];
        size_t i = 0;

        wh->heap[0] = wh->heap[--wh->nheap];
        for (;;) {
                size_t l = 2 * i + 1, r = l + 1, m = i;
                job_t *t;
                if (l < wh->nheap && wh->heap[l]->due_ms < wh->heap[m]->due_ms)
                        m = l;
                if (r < wh->nheap && wh->heap[r]->due_ms < wh->heap[m]->due_ms)
                        m = r;
                if (m == i)
                        break;
                t = wh->heap[m];
                wh->heap[m] = wh->heap[i];
                wh->heap[i] = t;
                i = m;
        }
        return top;
}

int kb_sbx_webhook_url_ok(const kb_sbx_conf_t *conf, const char *url,
                          char *errstr, size_t errstr_size)
{
        int i;

        CURLU *u = curl_url();
        char *scheme = NULL, *host = NULL;
        int rc = -1;

        if (!u) {
                kb_snprintf(errstr, errstr_size, "out of memory");
                return -1;
        }
        if (curl_url_set(u, CURLUPART_URL, url, 0) != CURLUE_OK ||
            curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) != CURLUE_OK ||
            curl_url_get(u, CURLUPART_HOST, &host, 0) != CURLUE_OK) {
                kb_snprintf(errstr, errstr_size,
                            "Not a valid absolute http(s) URL.");
                goto out;
        }
        if (strcmp(scheme, "http") && strcmp(scheme, "https")) {
                kb_snprintf(errstr, errstr_size,
                            "Only http and https URLs can receive webhooks.");
                goto out;
        }
        if (!strcmp(host, "localhost") || !strcmp(host, "[::1]") ||
            (!strncmp(host, "127.", 4) && kb_listen_is_loopback(host))) {
                rc = 0;
                goto out;
        }
        for (i = 0; conf && i < conf->n_webhook_hosts; i++)
                if (!strcasecmp(host, conf->webhook_hosts[i])) {
                        rc = 0;
                        goto out;
                }
        kb_snprintf(errstr, errstr_size,
                    "The sandbox delivers webhooks only to loopback receivers "
                    "(127.0.0.0/8, [::1] or localhost) and to the hosts "
                    "given with --webhook-allow-host, so that tests never "
                    "reach out of the machine.");
out:
        curl_free(scheme);
        curl_free(host);
        curl_url_cleanup(u);
        return rc;
}

static char *dup_or_null(const char *s, int *oom)
{
        char *d;

        if (!s)
                return NULL;
        d = strdup(s);
        if (!d)
                *oom = 1;
        return d;
}

int kb_sbx_webhook_enqueue(kb_sbx_webhook_t *wh, const char *app_id,
                           const char *url, const char *event,
                           const char *session_id, const char *status,
                           const char *vendor_data, const char *decision_json)
{
        job_t *j = calloc(1, sizeof(*j));
        int oom = 0;

        if (!j)
                return -1;
        kb_strlcpy(j->app_id, app_id, sizeof(j->app_id));
        j->url = dup_or_null(url, &oom);
        j->event = dup_or_null(event, &oom);
        j->session_id = dup_or_null(session_id, &oom);
        j->status = dup_or_null(status, &oom);
        j->vendor_data = dup_or_null(vendor_data, &oom);
        j->decision = dup_or_null(decision_json, &oom);
        j->due_ms = kb_mono_ms();
        if (oom) {
                job_free(j);
                return -1;
        }
        pthread_mutex_lock(&wh->lock);
        if (wh->stop || wh->nheap >= KB_SBX_WEBHOOK_QUEUE_MAX ||
            heap_push(wh, j) == -1) {
                pthread_mutex_unlock(&wh->lock);
                kb_log_warn(FAC, "webhook for session %s dropped: queue full",
                            session_id);
                job_free(j);
                return -1;
        }
        pthread_mutex_unlock(&wh->lock);
        curl_multi_wakeup(wh->multi);
        return 0;
}

/* The receiver's answer is not used (its status code is). */
static size_t discard(char *p, size_t sz, size_t n, void *opaque)
{
        (void)p;
        (void)opaque;
        return sz * n;
}

/* Builds and signs the delivery for the current attempt and adds it to the
 * multi handle. Returns 0, or -1 (the job is finished for good). */
static int job_start(kb_sbx_webhook_t *wh, job_t *j)
{
        kb_sbx_store_t *st = &wh->sbx->store;
        json_object *payload = NULL, *decision;
        char secret[sizeof(((kb_sbx_app_t *)0)->secret)];
        char sig2[KB_WEBHOOK_SIG_HEX_BYTES], sigs[KB_WEBHOOK_SIG_HEX_BYTES];
        char hdr[128], err[128];
        const char *body;
        kb_sbx_app_t *app;
        int64_t ts;
        int rc = -1;

        /* the application's secret as of now (a rotation applies at once) */
        pthread_mutex_lock(&st->lock);
        app = kb_sbx_app_by_id(st, j->app_id);
        if (app)
                memcpy(secret, app->secret, sizeof(secret));
        pthread_mutex_unlock(&st->lock);
        if (!app) {
                kb_log_info(FAC,
                            "webhook for session %s dropped: application "
                            "deleted",
                            j->session_id);
                return -1;
        }
        decision = kb_json_parse(j->decision, strlen(j->decision), 128, err,
                                 sizeof(err));
        payload = json_object_new_object();
        ts = kb_sbx_now(wh->sbx);
        if (!decision || !payload) {
                json_object_put(decision);
                goto out;
        }
        if (kb_json_add_str(payload, "session_id", j->session_id) ||
            kb_json_add_str(payload, "status", j->status) ||
            kb_json_add_str(payload, "webhook_type", j->event) ||
            json_object_object_add(payload, "vendor_data",
                                   j->vendor_data
                                       ? json_object_new_string(j->vendor_data)
                                       : NULL) ||
            kb_json_add_i64(payload, "timestamp", ts) ||
            json_object_object_add(payload, "decision", decision)) {
                json_object_put(decision);
                goto out;
        }
        if (kb_webhook_sign_v2(secret, ts, payload, sig2) != KB_OK ||
            kb_webhook_sign_simple(secret, ts, j->session_id, j->status,
                                   j->event, sigs) != KB_OK)
                goto out;
        body = kb_json_str(payload, NULL);
        free(j->body);
        j->body = body ? strdup(body) : NULL;
        if (!j->body)
                goto out;

        curl_slist_free_all(j->hdrs);
        j->hdrs = NULL;
        j->hdrs = curl_slist_append(j->hdrs, "Content-Type: application/json");
        snprintf(hdr, sizeof(hdr), "X-Timestamp: %lld", (long long)ts);
        j->hdrs = curl_slist_append(j->hdrs, hdr);
        snprintf(hdr, sizeof(hdr), "X-Signature-V2: %s", sig2);
        j->hdrs = curl_slist_append(j->hdrs, hdr);
        snprintf(hdr, sizeof(hdr), "X-Signature-Simple: %s", sigs);
        j->hdrs = curl_slist_append(j->hdrs, hdr);
        j->hdrs = curl_slist_append(j->hdrs, "Expect:");
        if (!j->hdrs)
                goto out;
        if (!j->easy)
                j->easy = curl_easy_init();
        else
                curl_easy_reset(j->easy);
        if (!j->easy)
                goto out;
        j->errbuf[0] = '\0';
        curl_easy_setopt(j->easy, CURLOPT_URL, j->url);
        curl_easy_setopt(j->easy, CURLOPT_PROTOCOLS_STR, "http,https");
        curl_easy_setopt(j->easy, CURLOPT_POST, 1L);
        curl_easy_setopt(j->easy, CURLOPT_POSTFIELDS, j->body);
        curl_easy_setopt(j->easy, CURLOPT_POSTFIELDSIZE_LARGE,
                         (curl_off_t)strlen(j->body));
        curl_easy_setopt(j->easy, CURLOPT_HTTPHEADER, j->hdrs);
        curl_easy_setopt(j->easy, CURLOPT_USERAGENT,
                         "kyc-bridge-sandbox/" KB_VERSION_STR);
        curl_easy_setopt(j->easy, CURLOPT_NOSIGNAL, 1L);
        curl_easy_setopt(j->easy, CURLOPT_TCP_NODELAY, 1L);
        curl_easy_setopt(j->easy, CURLOPT_FOLLOWLOCATION, 0L);
        curl_easy_setopt(j->easy, CURLOPT_NOPROXY, "*");
        curl_easy_setopt(j->easy, CURLOPT_TIMEOUT_MS, (long)wh->timeout_ms);
        curl_easy_setopt(j->easy, CURLOPT_CONNECTTIMEOUT_MS,
                         (long)wh->timeout_ms);
        curl_easy_setopt(j->easy, CURLOPT_ERRORBUFFER, j->errbuf);
        curl_easy_setopt(j->easy, CURLOPT_WRITEFUNCTION, discard);
        curl_easy_setopt(j->easy, CURLOPT_PRIVATE, j);
        if (curl_multi_add_handle(wh->multi, j->easy) != CURLM_OK)
                goto out;
        j->attempts++;
        wh->active[wh->inflight++] = j;
        rc = 0;
out:
        sodium_memzero(secret, sizeof(secret));
        json_object_put(payload);
        if (rc == -1)
                kb_log_warn(FAC,
                            "webhook for session %s dropped: cannot build "
                            "the delivery",
                            j->session_id);
        return rc;
}

/* A transfer ended: done, retry later, or give up. */
static void job_done(kb_sbx_webhook_t *wh, job_t *j, CURLcode res)
{
        long code = 0;

        size_t i;

        curl_multi_remove_handle(wh->multi, j->easy);
        for (i = 0; i < wh->inflight; i++)
                if (wh->active[i] == j) {
                        wh->active[i] = wh->active[--wh->inflight];
                        break;
                }
        if (res == CURLE_OK)
                curl_easy_getinfo(j->easy, CURLINFO_RESPONSE_CODE, &code);
        if (res == CURLE_OK && code >= 200 && code < 300) {
                kb_log_info(FAC,
                            "webhook %s for session %s delivered (HTTP %ld, "
                            "attempt %d)",
                            j->event, j->session_id, code, j->attempts);
                atomic_fetch_add(&wh->ok, 1);
                job_free(j);
                return;
        }
        if (j->attempts < ATTEMPTS_MAX) {
                /* backoff, 4 x backoff: 1 and 4 minutes by default */
                int64_t delay = wh->backoff_ms;
                int k;
                for (k = 1; k < j->attempts; k++)
                        delay *= 4;
                kb_log_info(FAC,
                            "webhook %s for session %s failed (%s%ld%s), "
                            "retry %d in %lld ms",
                            j->event, j->session_id,
                            res == CURLE_OK ? "HTTP " : "",
                            res == CURLE_OK ? code : (long)res,
                            res == CURLE_OK ? "" : " curl error", j->attempts,
                            (long long)delay);
                j->due_ms = kb_mono_ms() + delay;
                pthread_mutex_lock(&wh->lock);
                if (!wh->stop && heap_push(wh, j) == 0) {
                        pthread_mutex_unlock(&wh->lock);
                        return;
                }
                pthread_mutex_unlock(&wh->lock);
        } else {
                kb_log_warn(FAC,
                            "webhook %s for session %s failed after %d "
                            "attempts (%s%ld)",
                            j->event, j->session_id, j->attempts,
                            res == CURLE_OK ? "HTTP " : "curl error ",
                            res == CURLE_OK ? code : (long)res);
        }
        atomic_fetch_add(&wh->failed, 1);
        job_free(j);
}

static void *worker_main(void *arg)
{
        kb_sbx_webhook_t *wh = arg;

        for (;;) {
                job_t *due[INFLIGHT_MAX];
                size_t ndue = 0, i;
                int64_t now = kb_mono_ms(), wait_ms = 1000;
                int running = 0, msgs;
                CURLMsg *m;

                pthread_mutex_lock(&wh->lock);
                if (wh->stop) {
                        pthread_mutex_unlock(&wh->lock);
                        break;
                }
                while (wh->nheap > 0 && wh->heap[0]->due_ms <= now &&
                       wh->inflight + ndue < INFLIGHT_MAX)
                        due[ndue++] = heap_pop(wh);
                pthread_mutex_unlock(&wh->lock);

                for (i = 0; i < ndue; i++)
                        if (job_start(wh, due[i]) == -1) {
                                atomic_fetch_add(&wh->failed, 1);
                                job_free(due[i]);
                        }
                curl_multi_perform(wh->multi, &running);
                while ((m = curl_multi_info_read(wh->multi, &msgs))) {
                        job_t *j = NULL;
                        if (m->msg != CURLMSG_DONE)
                                continue;
                        curl_easy_getinfo(m->easy_handle, CURLINFO_PRIVATE,
                                          (char **)&j);
                        if (j)
                                job_done(wh, j, m->data.result);
                }
                /* sleep until the next due job (retries included, which
                 * job_done() may just have queued), a socket event or a
                 * wakeup from kb_sbx_webhook_enqueue() */
                pthread_mutex_lock(&wh->lock);
                if (wh->nheap > 0 && wh->inflight < INFLIGHT_MAX) {
                        wait_ms = wh->heap[0]->due_ms - kb_mono_ms();
                        if (wait_ms > 1000)
                                wait_ms = 1000;
                        if (wait_ms < 0)
                                wait_ms = 0;
                }
                pthread_mutex_unlock(&wh->lock);
                if (wait_ms > 0)
                        curl_multi_poll(wh->multi, NULL, 0, (int)wait_ms, NULL);
        }
        return NULL;
}

kb_sbx_webhook_t *kb_sbx_webhook_new(kb_sbx_t *sbx, int64_t backoff_ms,
                                     char *errstr, size_t errstr_size)
{
        kb_sbx_webhook_t *wh;

        pthread_once(&curl_once, curl_init_once);
        if (curl_init_rc != CURLE_OK) {
                kb_snprintf(errstr, errstr_size, "libcurl init failed");
                return NULL;
        }
        wh = calloc(1, sizeof(*wh));
        if (!wh) {
                kb_snprintf(errstr, errstr_size, "out of memory");
                return NULL;
        }
        wh->sbx = sbx;
        wh->backoff_ms = backoff_ms > 0 ? backoff_ms : 1;
        /* a hanging receiver must not outlast the retry schedule by much */
        wh->timeout_ms = 5 * wh->backoff_ms;
        if (wh->timeout_ms < 1000)
                wh->timeout_ms = 1000;
        if (wh->timeout_ms > 10000)
                wh->timeout_ms = 10000;
        pthread_mutex_init(&wh->lock, NULL);
        atomic_init(&wh->ok, 0);
        atomic_init(&wh->failed, 0);
        wh->multi = curl_multi_init();
        if (!wh->multi) {
                kb_snprintf(errstr, errstr_size, "curl_multi_init failed");
                goto fail;
        }
        if (pthread_create(&wh->thr, NULL, worker_main, wh) != 0) {
                kb_snprintf(errstr, errstr_size,
                            "cannot start the webhook thread");
                goto fail;
        }
        wh->started = 1;
        return wh;
fail:
        kb_sbx_webhook_destroy(wh);
        return NULL;
}

void kb_sbx_webhook_stats(kb_sbx_webhook_t *wh, uint64_t *ok, uint64_t *failed,
                          uint64_t *pending)
{
        *ok = atomic_load(&wh->ok);
        *failed = atomic_load(&wh->failed);
        pthread_mutex_lock(&wh->lock);
        *pending = wh->nheap;
        pthread_mutex_unlock(&wh->lock);
}

void kb_sbx_webhook_destroy(kb_sbx_webhook_t *wh)
{
        size_t dropped = 0;

        if (!wh)
                return;
        if (wh->started) {
                pthread_mutex_lock(&wh->lock);
                wh->stop = 1;
                pthread_mutex_unlock(&wh->lock);
                curl_multi_wakeup(wh->multi);
                pthread_join(wh->thr, NULL);
        }
        /* transfers still in flight */
        while (wh->inflight > 0) {
                job_t *j = wh->active[--wh->inflight];
                curl_multi_remove_handle(wh->multi, j->easy);
                job_free(j);
                dropped++;
        }
        while (wh->nheap > 0) {
                job_free(heap_pop(wh));
                dropped++;
        }
        if (dropped)
                kb_log_notice(FAC,
                              "%zu webhook delivery(ies) dropped at "
                              "shutdown",
                              dropped);
        free(wh->heap);
        if (wh->multi)
                curl_multi_cleanup(wh->multi);
        pthread_mutex_destroy(&wh->lock);
        free(wh);
}

void kb_sbx_fire_event(kb_sbx_t *sbx, const kb_sbx_session_t *s, unsigned event)
{
        const kb_sbx_app_t *app = s->app;
        const char *name =
            event == KB_SBX_EV_DATA_UPDATED ? "data.updated" : "status.updated";
        kb_buf_t dec = KB_BUF_INIT;
        size_t i, ntargets = app->webhook_url ? 1 : 0;

        if (!sbx->wh)
                return;
        for (i = 0; i < app->ndests; i++)
                if (app->dests[i]->events & event)
                        ntargets++;
        if (ntargets == 0)
                return;
        if (kb_sbx_render_session(&dec, s, KB_SBX_R_DATA | KB_SBX_R_DECISION) ==
            -1) {
                kb_log_warn(FAC,
                            "webhook for session %s dropped: out of "
                            "memory",
                            s->id);
                kb_buf_free(&dec, 0);
                return;
        }
        if (app->webhook_url)
                kb_sbx_webhook_enqueue(sbx->wh, app->id, app->webhook_url, name,
                                       s->id,
                                       kb_sbx_status_name(s->kind, s->status),
                                       s->vendor_data, dec.data);
        for (i = 0; i < app->ndests; i++)
                if (app->dests[i]->events & event)
                        kb_sbx_webhook_enqueue(
                            sbx->wh, app->id, app->dests[i]->url, name, s->id,
                            kb_sbx_status_name(s->kind, s->status),
                            s->vendor_data, dec.data);
        kb_buf_free(&dec, 0);
}
