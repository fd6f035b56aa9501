/* bench_sandbox.c -- load generator: share-token imports against a sandbox */
/*
 * Starts nothing itself. Given --url of a running `kyc-bridge sandbox`, it
 *   1. creates an issuer and an importer application and a kyc workflow in
 *      each, and turns the rate limits off (PUT /sandbox/rate-limits
 *      {"per_minute":0}; this is global to the sandbox);
 *   2. creates and completes M sessions in the issuer and shares each to the
 *      importer: M distinct tokens (set-up, with --setup-conns connections);
 *   3. fires the M imports over C concurrent keep-alive connections (libcurl
 *      multi, TCP_NODELAY, NOSIGNAL) and prints requests/s, latency
 *      percentiles and error counts.
 * Exit status: 0 when every import answered 201, 1 otherwise, 2 on usage.
 */
#include <getopt.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <curl/curl.h>
#include <json-c/json.h>

#include "json.h"
#include "util.h"

#define BENCH_URL_MAX    512
#define BENCH_ID_MAX     128
#define BENCH_STATUS_MAX 600

typedef struct bench_s bench_t;

/* Builds request @p idx of a phase: method ("POST"/"PUT"), path, JSON body
 * and which key header list to send. Returns 0 or -1. */
typedef int(bench_build_fn)(bench_t *b, long idx, const char **method,
                            char *path, size_t path_size, kb_buf_t *body,
                            struct curl_slist **hdrs);
/* Consumes the answer to request @p idx (status 0: transport error). */
typedef void(bench_done_fn)(bench_t *b, long idx, long status,
                            const kb_buf_t *resp);

typedef struct slot_s {
        CURL *easy;
        kb_buf_t body;
        kb_buf_t resp;
        char url[BENCH_URL_MAX];
        long idx;
        int64_t t0_us;
} slot_t;

typedef struct phase_stats_s {
        long n;
        double secs;
        int64_t *lat_us; /* n entries */
        long status[BENCH_STATUS_MAX];
        long transport_err;
} phase_stats_t;

struct bench_s {
        const char *url;
        long m;
        long conns;
        long setup_conns;
        int quiet;
        char issuer_id[BENCH_ID_MAX], issuer_key[BENCH_ID_MAX];
        char importer_id[BENCH_ID_MAX], importer_key[BENCH_ID_MAX];
        char issuer_wf[BENCH_ID_MAX], importer_wf[BENCH_ID_MAX];
        struct curl_slist *hdr_none, *hdr_issuer, *hdr_importer;
        char **sids;   /* m session ids */
        char **tokens; /* m share tokens */
        long bad;      /* set-up answers that were not what we needed */
        /* set-up scratch for single requests */
        const char *one_method, *one_path, *one_body;
        struct curl_slist *one_hdrs;
        long one_status;
        kb_buf_t one_resp;
};

static size_t on_write(char *ptr, size_t size, size_t nmemb, void *userdata)
{
        kb_buf_t *buf = userdata;

        if (kb_buf_append(buf, ptr, size * nmemb) == -1)
                return 0;
        return size * nmemb;
}

static struct curl_slist *make_headers(const char *key)
{
        struct curl_slist *h = NULL, *t;
        char line[BENCH_ID_MAX + 16];
        const char *fixed[] = { "Content-Type: application/json", "Expect:" };
        size_t i;

        for (i = 0; i < KB_ARRAY_SIZE(fixed); i++) {
                t = curl_slist_append(h, fixed[i]);
                if (!t)
                        goto fail;
                h = t;
        }
        if (key) {
                kb_snprintf(line, sizeof(line), "x-api-key: %s", key);
                t = curl_slist_append(h, line);
                if (!t)
                        goto fail;
                h = t;
        }
        return h;
fail:
        curl_slist_free_all(h);
        return NULL;
}

static int slot_start(bench_t *b, CURLM *multi, slot_t *s, long idx,
                      bench_build_fn *build)
{
        const char *method = "POST";
        char path[BENCH_URL_MAX];
        struct curl_slist *hdrs = NULL;

        kb_buf_reset(&s->body);
        kb_buf_reset(&s->resp);
        if (build(b, idx, &method, path, sizeof(path), &s->body, &hdrs) == -1)
                return -1;
        if (kb_buf_puts(&s->body, "") == -1) /* never a NULL POSTFIELDS */
                return -1;
        kb_snprintf(s->url, sizeof(s->url), "%s%s", b->url, path);
        s->idx = idx;
        curl_easy_setopt(s->easy, CURLOPT_URL, s->url);
        curl_easy_setopt(s->easy, CURLOPT_HTTPHEADER, hdrs);
        curl_easy_setopt(s->easy, CURLOPT_POSTFIELDS, s->body.data);
        curl_easy_setopt(s->easy, CURLOPT_POSTFIELDSIZE, (long)s->body.len);
        curl_easy_setopt(s->easy, CURLOPT_CUSTOMREQUEST,
                         strcmp(method, "POST") ? method : NULL);
        s->t0_us = kb_mono_us();
        if (curl_multi_add_handle(multi, s->easy) != CURLM_OK)
                return -1;
        return 0;
}

static int cmp_i64(const void *a, const void *b)
{
        int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;

        return (x > y) - (x < y);
}

/* Runs @p n requests over @p conns keep-alive connections. */
static int run_phase(bench_t *b, long n, long conns, bench_build_fn *build,
                     bench_done_fn *done, phase_stats_t *st)
{
        CURLM *multi = NULL;
        slot_t *slots = NULL;
        long i, next = 0, inflight = 0;
        int64_t t0;
        int ret = -1;

        memset(st, 0, sizeof(*st));
        st->n = n;
        st->lat_us = calloc(n > 0 ? (size_t)n : 1, sizeof(*st->lat_us));
        if (conns > n)
                conns = n > 0 ? n : 1;
        slots = calloc((size_t)conns, sizeof(*slots));
        multi = curl_multi_init();
        if (!st->lat_us || !slots || !multi)
                goto out;
        curl_multi_setopt(multi, CURLMOPT_MAX_HOST_CONNECTIONS, conns);
        curl_multi_setopt(multi, CURLMOPT_MAX_TOTAL_CONNECTIONS, conns);
        curl_multi_setopt(multi, CURLMOPT_MAXCONNECTS, conns);
        for (i = 0; i < conns; i++) {
                slot_t *s = &slots[i];
                s->easy = curl_easy_init();
                if (!s->easy)
                        goto out;
                curl_easy_setopt(s->easy, CURLOPT_NOSIGNAL, 1L);
                curl_easy_setopt(s->easy, CURLOPT_TCP_NODELAY, 1L);
                curl_easy_setopt(s->easy, CURLOPT_TIMEOUT_MS, 60000L);
                curl_easy_setopt(s->easy, CURLOPT_WRITEFUNCTION, on_write);
                curl_easy_setopt(s->easy, CURLOPT_WRITEDATA, &s->resp);
                curl_easy_setopt(s->easy, CURLOPT_PRIVATE, s);
        }
        t0 = kb_mono_us();
        for (i = 0; i < conns && next < n; i++) {
                if (slot_start(b, multi, &slots[i], next++, build) == -1)
                        goto out;
                inflight++;
        }
        while (inflight > 0) {
                int running = 0, left = 0;
                CURLMsg *msg;

                if (curl_multi_perform(multi, &running) != CURLM_OK)
                        goto out;
                while ((msg = curl_multi_info_read(multi, &left))) {
                        slot_t *s;
                        char *priv = NULL;
                        long status = 0;

                        if (msg->msg != CURLMSG_DONE)
                                continue;
                        curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE,
                                          &priv);
                        s = (slot_t *)(void *)priv;
                        if (msg->data.result == CURLE_OK)
                                curl_easy_getinfo(
                                    s->easy, CURLINFO_RESPONSE_CODE, &status);
                        st->lat_us[s->idx] = kb_mono_us() - s->t0_us;
                        if (status > 0 && status < BENCH_STATUS_MAX)
                                st->status[status]++;
                        else
                                st->transport_err++;
                        curl_multi_remove_handle(multi, s->easy);
                        done(b, s->idx, status, &s->resp);
                        if (next < n) {
                                if (slot_start(b, multi, s, next++, build) ==
                                    -1)
                                        goto out;
                        } else {
                                inflight--;
                        }
                }
                if (inflight > 0 &&
                    curl_multi_poll(multi, NULL, 0, 1000, NULL) != CURLM_OK)
                        goto out;
        }
        st->secs = (double)(kb_mono_us() - t0) / 1e6;
        ret = 0;
out:
        if (slots) {
                for (i = 0; i < conns; i++) {
                        if (!slots[i].easy)
                                continue;
                        curl_multi_remove_handle(multi, slots[i].easy);
                        curl_easy_cleanup(slots[i].easy);
                        kb_buf_free(&slots[i].body, 0);
                        kb_buf_free(&slots[i].resp, 0);
                }
                free(slots);
        }
        if (multi)
                curl_multi_cleanup(multi);
        return ret;
}

static void stats_free(phase_stats_t *st)
{
        free(st->lat_us);
        st->lat_us = NULL;
}

static void stats_print(const char *name, phase_stats_t *st, long conns,
                        long want_status)
{
        int64_t *lat = st->lat_us;
        long n = st->n, i, errs = st->transport_err;
        double rps = st->secs > 0 ? (double)n / st->secs : 0.0;

        qsort(lat, (size_t)n, sizeof(*lat), cmp_i64);
        for (i = 0; i < BENCH_STATUS_MAX; i++)
                if (i != want_status)
                        errs += st->status[i];
        printf("%-8s n=%ld conns=%ld: %.3f s, %.0f req/s, latency ms p50 "
               "%.3f p90 %.3f p99 %.3f max %.3f; %ld x %ld, errors %ld",
               name, n, conns, st->secs, rps,
               n ? (double)lat[n / 2] / 1000.0 : 0.0,
               n ? (double)lat[(n * 90) / 100] / 1000.0 : 0.0,
               n ? (double)lat[(n * 99) / 100] / 1000.0 : 0.0,
               n ? (double)lat[n - 1] / 1000.0 : 0.0, st->status[want_status],
               want_status, errs);
        if (errs) {
                printf(" (");
                for (i = 0; i < BENCH_STATUS_MAX; i++)
                        if (i != want_status && st->status[i])
                                printf("%ld x %ld ", st->status[i], i);
                printf("transport %ld)", st->transport_err);
        }
        printf("\n");
        fflush(stdout);
}

/* ---- single set-up requests ------------------------------------------ */

static int build_one(bench_t *b, long idx, const char **method, char *path,
                     size_t path_size, kb_buf_t *body, struct curl_slist **hdrs)
{
        (void)idx;
        *method = b->one_method;
        kb_strlcpy(path, b->one_path, path_size);
        *hdrs = b->one_hdrs;
        return kb_buf_puts(body, b->one_body);
}

static void done_one(bench_t *b, long idx, long status, const kb_buf_t *resp)
{
        (void)idx;
        b->one_status = status;
        kb_buf_reset(&b->one_resp);
        if (resp->len)
                kb_buf_append(&b->one_resp, resp->data, resp->len);
}

/* One request; on the expected status copies string members @p k1 / @p k2
 * of the JSON answer into @p v1 / @p v2 (BENCH_ID_MAX each). */
static int one(bench_t *b, const char *method, const char *path,
               struct curl_slist *hdrs, const char *body, long want,
               const char *k1, char *v1, const char *k2, char *v2)
{
        phase_stats_t st;
        json_object *j = NULL;
        char err[128];
        const char *s;
        int ret = -1;

        b->one_method = method;
        b->one_path = path;
        b->one_body = body;
        b->one_hdrs = hdrs;
        b->one_status = 0;
        if (run_phase(b, 1, 1, build_one, done_one, &st) == -1)
                goto out;
        if (b->one_status != want) {
                fprintf(stderr, "bench: %s %s: HTTP %ld (want %ld): %.300s\n",
                        method, path, b->one_status, want,
                        b->one_resp.data ? b->one_resp.data : "");
                goto out;
        }
        if (k1) {
                j = kb_json_parse(b->one_resp.data, b->one_resp.len, 64, err,
                                  sizeof(err));
                if (!j) {
                        fprintf(stderr, "bench: %s: bad JSON (%s)\n", path,
                                err);
                        goto out;
                }
                if (!(s = kb_json_get_str(j, k1)))
                        goto missing;
                kb_strlcpy(v1, s, BENCH_ID_MAX);
                if (k2) {
                        if (!(s = kb_json_get_str(j, k2)))
                                goto missing;
                        kb_strlcpy(v2, s, BENCH_ID_MAX);
                }
        }
        ret = 0;
        goto out;
missing:
        fprintf(stderr, "bench: %s: answer lacks %s/%s\n", path, k1,
                k2 ? k2 : "-");
out:
        if (j)
                json_object_put(j);
        stats_free(&st);
        return ret;
}

static int setup_apps(bench_t *b)
{
        char wfbody[] = "{\"workflow_label\":\"bench\",\"workflow_type\":"
                        "\"kyc\"}";

        if (one(b, "POST", "/sandbox/applications", b->hdr_none,
                "{\"name\":\"bench-issuer\"}", 201, "application_id",
                b->issuer_id, "api_key", b->issuer_key) == -1 ||
            one(b, "POST", "/sandbox/applications", b->hdr_none,
                "{\"name\":\"bench-importer\"}", 201, "application_id",
                b->importer_id, "api_key", b->importer_key) == -1)
                return -1;
        b->hdr_issuer = make_headers(b->issuer_key);
        b->hdr_importer = make_headers(b->importer_key);
        if (!b->hdr_issuer || !b->hdr_importer)
                return -1;
        if (one(b, "PUT", "/sandbox/rate-limits", b->hdr_none,
                "{\"per_minute\":0}", 200, NULL, NULL, NULL, NULL) == -1)
                return -1;
        if (one(b, "POST", "/v3/workflows/", b->hdr_issuer, wfbody, 201, "uuid",
                b->issuer_wf, NULL, NULL) == -1 ||
            one(b, "POST", "/v3/workflows/", b->hdr_importer, wfbody, 201,
                "uuid", b->importer_wf, NULL, NULL) == -1)
                return -1;
        return 0;
}

/* ---- the phases -------------------------------------------------------- */

static char *json_member_dup(const kb_buf_t *resp, const char *key)
{
        json_object *j;
        const char *s;
        char err[64], *out = NULL;

        if (!resp->data)
                return NULL;
        j = kb_json_parse(resp->data, resp->len, 64, err, sizeof(err));
        if (!j)
                return NULL;
        if ((s = kb_json_get_str(j, key)))
                out = strdup(s);
        json_object_put(j);
        return out;
}

static int build_create(bench_t *b, long idx, const char **method, char *path,
                        size_t path_size, kb_buf_t *body,
                        struct curl_slist **hdrs)
{
        (void)method;
        kb_strlcpy(path, "/v3/session/", path_size);
        *hdrs = b->hdr_issuer;
        return kb_buf_printf(body,
                             "{\"workflow_id\":\"%s\",\"vendor_data\":"
                             "\"bench-user-%ld\"}",
                             b->issuer_wf, idx);
}

static void done_create(bench_t *b, long idx, long status, const kb_buf_t *resp)
{
        if (status != 201 ||
            !(b->sids[idx] = json_member_dup(resp, "session_id")))
                b->bad++;
}

static int build_complete(bench_t *b, long idx, const char **method, char *path,
                          size_t path_size, kb_buf_t *body,
                          struct curl_slist **hdrs)
{
        (void)method;
        kb_snprintf(path, path_size, "/sandbox/sessions/%s/complete",
                    b->sids[idx] ? b->sids[idx] : "none");
        *hdrs = b->hdr_issuer;
        return kb_buf_puts(body, "{\"status\":\"Approved\"}");
}

static void done_complete(bench_t *b, long idx, long status,
                          const kb_buf_t *resp)
{
        (void)idx;
        (void)resp;
        if (status != 200)
                b->bad++;
}

static int build_share(bench_t *b, long idx, const char **method, char *path,
                       size_t path_size, kb_buf_t *body,
                       struct curl_slist **hdrs)
{
        (void)method;
        kb_snprintf(path, path_size, "/v3/session/%s/share/",
                    b->sids[idx] ? b->sids[idx] : "none");
        *hdrs = b->hdr_issuer;
        return kb_buf_printf(body,
                             "{\"for_application_id\":\"%s\","
                             "\"ttl_in_seconds\":86400}",
                             b->importer_id);
}

static void done_share(bench_t *b, long idx, long status, const kb_buf_t *resp)
{
        if (status != 201 ||
            !(b->tokens[idx] = json_member_dup(resp, "share_token")))
                b->bad++;
}

static int build_import(bench_t *b, long idx, const char **method, char *path,
                        size_t path_size, kb_buf_t *body,
                        struct curl_slist **hdrs)
{
        (void)method;
        kb_strlcpy(path, "/v3/session/import-shared/", path_size);
        *hdrs = b->hdr_importer;
        return kb_buf_printf(body,
                             "{\"share_token\":\"%s\",\"workflow_id\":\"%s\","
                             "\"vendor_data\":\"partner-%ld\","
                             "\"trust_review\":true}",
                             b->tokens[idx] ? b->tokens[idx] : "none",
                             b->importer_wf, idx);
}

static void done_import(bench_t *b, long idx, long status, const kb_buf_t *resp)
{
        (void)b;
        (void)idx;
        (void)status;
        (void)resp;
}

static void usage(FILE *fp)
{
        fprintf(fp, "Usage: bench_sandbox --url http://127.0.0.1:PORT [-m M] "
                    "[-c C] [--setup-conns N]\n"
                    "  -m, --imports M      tokens to mint and import (default "
                    "2000)\n"
                    "  -c, --conns C        concurrent keep-alive connections "
                    "for the imports (default 16)\n"
                    "      --setup-conns N  connections for the set-up phases "
                    "(default 32)\n"
                    "The sandbox must already run; its rate limits are turned "
                    "off.\n");
}

static int parse_long(const char *s, long min, long max, long *out)
{
        int64_t v;

        if (kb_parse_i64(s, min, max, &v) == -1)
                return -1;
        *out = (long)v;
        return 0;
}

int main(int argc, char **argv)
{
        static const struct option opts[] = {
                { "url", required_argument, NULL, 'u' },
                { "imports", required_argument, NULL, 'm' },
                { "conns", required_argument, NULL, 'c' },
                { "setup-conns", required_argument, NULL, 's' },
                { "help", no_argument, NULL, 'h' },
                { NULL, 0, NULL, 0 }
        };
        bench_t b;
        phase_stats_t st;
        long i;
        int c, rc = 1;

        memset(&b, 0, sizeof(b));
        b.m = 2000;
        b.conns = 16;
        b.setup_conns = 32;
        while ((c = getopt_long(argc, argv, "u:m:c:h", opts, NULL)) != -1) {
                switch (c) {
                case 'u':
                        b.url = optarg;
                        break;
                case 'm':
                        if (parse_long(optarg, 1, 10000000, &b.m) == -1)
                                goto bad_usage;
                        break;
                case 'c':
                        if (parse_long(optarg, 1, 4096, &b.conns) == -1)
                                goto bad_usage;
                        break;
                case 's':
                        if (parse_long(optarg, 1, 4096, &b.setup_conns) == -1)
                                goto bad_usage;
                        break;
                case 'h':
                        usage(stdout);
                        return 0;
                default:
                        goto bad_usage;
                }
        }
        if (!b.url || optind != argc)
                goto bad_usage;

        if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
                fprintf(stderr, "bench: curl_global_init failed\n");
                return 1;
        }
        b.sids = calloc((size_t)b.m, sizeof(*b.sids));
        b.tokens = calloc((size_t)b.m, sizeof(*b.tokens));
        b.hdr_none = make_headers(NULL);
        if (!b.sids || !b.tokens || !b.hdr_none)
                goto out;
        if (setup_apps(&b) == -1)
                goto out;

        if (run_phase(&b, b.m, b.setup_conns, build_create, done_create, &st) ==
            -1)
                goto out;
        stats_print("create", &st, b.setup_conns, 201);
        stats_free(&st);
        if (run_phase(&b, b.m, b.setup_conns, build_complete, done_complete,
                      &st) == -1)
                goto out;
        stats_print("complete", &st, b.setup_conns, 200);
        stats_free(&st);
        if (run_phase(&b, b.m, b.setup_conns, build_share, done_share, &st) ==
            -1)
                goto out;
        stats_print("share", &st, b.setup_conns, 201);
        stats_free(&st);
        if (b.bad) {
                fprintf(stderr, "bench: %ld set-up requests failed\n", b.bad);
                goto out;
        }

        if (run_phase(&b, b.m, b.conns, build_import, done_import, &st) == -1)
                goto out;
        stats_print("import", &st, b.conns, 201);
        rc = st.status[201] == b.m ? 0 : 1;
        stats_free(&st);
out:
        for (i = 0; i < b.m; i++) {
                if (b.sids)
                        free(b.sids[i]);
                if (b.tokens)
                        free(b.tokens[i]);
        }
        free(b.sids);
        free(b.tokens);
        curl_slist_free_all(b.hdr_none);
        curl_slist_free_all(b.hdr_issuer);
        curl_slist_free_all(b.hdr_importer);
        kb_buf_free(&b.one_resp, 0);
        curl_global_cleanup();
        return rc;
bad_usage:
        usage(stderr);
        return 2;
}
