/* bench_vendor.c -- micro benchmark: vendor share/import ops/s against a
 * sandbox */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#include "../tests/unit/kb_test_sandbox.h"
#include "conf.h"
#include "json.h"
#include "kyc_bridge.h"
#include "log.h"
#include "util.h"
#include "vendor.h"

/*
 * Usage: bench_vendor [--url http://127.0.0.1:8480 | --kb-bin PATH]
 *                     [--ops N] [--in-flight N] [--latency MS[,MS...]]
 *
 * Without --url it starts `$KB_BIN sandbox` (or --kb-bin) on an ephemeral
 * loopback port. It creates two applications, a finished session, turns the
 * sandbox's rate limits off and, for each injected latency (default "0,100"),
 * measures N shares and then N imports of the tokens minted, with the
 * client's pacing off and --in-flight calls in flight (default 64).
 */

typedef struct bench_s {
        char **tokens;
        size_t ntok;
        size_t done, ok;
        int64_t *lat_us;
} bench_t;

static bench_t B;

static void on_share(const kb_vendor_result_t *r, void *opaque)
{
        const char *t;
        size_t tl;

        (void)opaque;
        B.lat_us[B.done++] = r->latency_us;
        if (r->err != KB_OK || !r->view)
                return;
        B.ok++;
        if (kb_jval_str_raw(kb_jview_get(r->view, "share_token"), &t, &tl) ==
                0 &&
            tl)
                B.tokens[B.ntok++] = strndup(t, tl);
}

static void on_import(const kb_vendor_result_t *r, void *opaque)
{
        (void)opaque;
        B.lat_us[B.done++] = r->latency_us;
        if (r->err == KB_OK)
                B.ok++;
}

static int cmp_i64(const void *a, const void *b)
{
        int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;

        return x < y ? -1 : x > y;
}

static double cpu_s(void)
{
        struct rusage ru;

        getrusage(RUSAGE_SELF, &ru);
        return (double)ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6 +
               (double)ru.ru_stime.tv_sec + ru.ru_stime.tv_usec / 1e6;
}

static kb_vendor_t *mk_vendor(const char *url, const char *key, int inflight)
{
        kb_conf_t *conf = kb_conf_new();
        char err[256], num[32];
        kb_vendor_t *v = NULL;

        if (!conf)
                return NULL;
        setenv("KB_BENCH_KEY", key, 1);
        snprintf(num, sizeof(num), "%d", inflight);
        if (kb_conf_set(conf, "vendor.url", url, "bench", err, sizeof(err)) ||
            kb_conf_set(conf, "vendor.api_key", "env:KB_BENCH_KEY", "bench",
                        err, sizeof(err)) ||
            kb_conf_set(conf, "vendor.max_in_flight", num, "bench", err,
                        sizeof(err)) ||
            kb_conf_set(conf, "vendor.rate_limit_per_minute", "0", "bench", err,
                        sizeof(err)) ||
            kb_conf_set(conf, "vendor.retry_backoff_ms", "20", "bench", err,
                        sizeof(err)) ||
            kb_conf_set(conf, "vendor.retry_backoff_max_ms", "200", "bench",
                        err, sizeof(err))) {
                fprintf(stderr, "config: %s\n", err);
                goto out;
        }
        v = kb_vendor_new(conf, NULL, err, sizeof(err));
        if (!v)
                fprintf(stderr, "kb_vendor_new: %s\n", err);
out:
        kb_conf_destroy(conf);
        return v;
}

/* Runs N ops keeping the pipeline full; prints one result line. */
static int run(const char *what, kb_vendor_t *v, size_t n, int latency,
               int (*submit)(kb_vendor_t *v, size_t i))
{
        size_t sub = 0;
        int64_t t0 = kb_mono_us(), el;
        double c0 = cpu_s(), cpu;
        kb_vendor_stats_t st;

        B.done = B.ok = 0;
        while (B.done < n) {
                while (sub < n && kb_vendor_has_capacity(v)) {
                        if (submit(v, sub) != KB_OK)
                                return -1;
                        sub++;
                }
                if (kb_vendor_poll(v, 100) < 0)
                        return -1;
        }
        el = kb_mono_us() - t0;
        cpu = cpu_s() - c0;
        qsort(B.lat_us, n, sizeof(*B.lat_us), cmp_i64);
        kb_vendor_stats(v, &st);
        printf("%-7s latency=%3d ms  ops=%zu ok=%zu  %8.0f ops/s  "
               "p50=%.2f ms p99=%.2f ms  client cpu %.1f us/op  "
               "retries=%llu\n",
               what, latency, n, B.ok, (double)n * 1e6 / (double)el,
               B.lat_us[n / 2] / 1000.0, B.lat_us[(n * 99) / 100] / 1000.0,
               cpu * 1e6 / (double)n, (unsigned long long)st.retried);
        return B.ok == n ? 0 : -1;
}

static const char *g_sess, *g_for_app, *g_wf;
static int g_ttl;

static int submit_share(kb_vendor_t *v, size_t i)
{
        (void)i;
        /* Distinct TTLs: distinct tokens even within one second. */
        return kb_vendor_share(v, g_sess, g_for_app, g_ttl++, on_share, NULL);
}

static int submit_import(kb_vendor_t *v, size_t i)
{
        return kb_vendor_import(v, B.tokens[i], strlen(B.tokens[i]), g_wf, NULL,
                                1, on_import, NULL);
}

int main(int argc, char **argv)
{
        static const struct option lo[] = {
                { "url", required_argument, NULL, 'u' },
                { "kb-bin", required_argument, NULL, 'b' },
                { "ops", required_argument, NULL, 'n' },
                { "in-flight", required_argument, NULL, 'f' },
                { "latency", required_argument, NULL, 'l' },
                { NULL, 0, NULL, 0 },
        };
        kbt_sandbox_t sb;
        kbt_app_t a, b;
        char wf_a[64], wf_b[64], sess[64], lat_list[128] = "0,100";
        const char *url = NULL;
        int64_t n = 2000, inflight = 64;
        int c, rc = 1, started = 0;
        char *save = NULL, *tok;
        size_t i;

        memset(&sb, 0, sizeof(sb));
        while ((c = getopt_long(argc, argv, "u:b:n:f:l:", lo, NULL)) != -1) {
                switch (c) {
                case 'u':
                        url = optarg;
                        break;
                case 'b':
                        setenv("KB_BIN", optarg, 1);
                        break;
                case 'n':
                        if (kb_parse_i64(optarg, 1, 20000, &n))
                                goto usage;
                        break;
                case 'f':
                        if (kb_parse_i64(optarg, 1, 4096, &inflight))
                                goto usage;
                        break;
                case 'l':
                        kb_strlcpy(lat_list, optarg, sizeof(lat_list));
                        break;
                default:
                        goto usage;
                }
        }
        if (kb_init() != KB_OK)
                return 1;
        kb_log_setup(KB_LOG_WARN, 0, 2, "bench_vendor");
        if (url) {
                kb_strlcpy(sb.url, url, sizeof(sb.url));
        } else {
                if (kbt_sandbox_start(&sb, 1) != 0) {
                        fprintf(stderr, "cannot start the sandbox (set "
                                        "KB_BIN or --kb-bin, or give --url)\n");
                        return 1;
                }
                started = 1;
        }
        if (kbt_new_app(&sb, "bench-issuer", &a) ||
            kbt_new_app(&sb, "bench-importer", &b) ||
            kbt_new_workflow(&sb, &a, "kyc", wf_a, sizeof(wf_a)) ||
            kbt_new_workflow(&sb, &b, "kyc", wf_b, sizeof(wf_b)) ||
            kbt_new_session(&sb, &a, wf_a, "Approved", sess, sizeof(sess)) ||
            kbt_req(&sb, "PUT", "/sandbox/rate-limits", NULL,
                    "{\"per_minute\":0}", NULL) != 200) {
                fprintf(stderr, "sandbox set-up failed\n");
                goto out;
        }
        g_sess = sess;
        g_for_app = b.id;
        g_wf = wf_b;
        g_ttl = 60;
        B.tokens = calloc((size_t)n, sizeof(char *));
        B.lat_us = calloc((size_t)n, sizeof(int64_t));
        if (!B.tokens || !B.lat_us)
                goto out;
        printf("# sandbox %s, in flight %lld, client pacing off, sandbox "
               "rate limits off\n",
               sb.url, (long long)inflight);
        for (tok = strtok_r(lat_list, ",", &save); tok;
             tok = strtok_r(NULL, ",", &save)) {
                int64_t lat;
                char fault[160];
                kb_vendor_t *va, *vb;
                int r;

                if (kb_parse_i64(tok, 0, 60000, &lat))
                        goto usage_out;
                snprintf(fault, sizeof(fault),
                         "{\"path\":\"*\",\"latency_ms\":%lld,"
                         "\"error_rate\":0}",
                         (long long)lat);
                if (kbt_faults_clear(&sb) != 200 ||
                    (lat > 0 && kbt_faults_put(&sb, fault) != 200)) {
                        fprintf(stderr, "cannot set faults\n");
                        goto out;
                }
                va = mk_vendor(sb.url, a.key, (int)inflight);
                vb = mk_vendor(sb.url, b.key, (int)inflight);
                for (i = 0; i < B.ntok; i++)
                        free(B.tokens[i]);
                B.ntok = 0;
                r = va && vb
                        ? run("share", va, (size_t)n, (int)lat, submit_share)
                        : -1;
                if (r == 0 && B.ntok == (size_t)n)
                        r = run("import", vb, (size_t)n, (int)lat,
                                submit_import);
                kb_vendor_destroy(va);
                kb_vendor_destroy(vb);
                if (r != 0) {
                        fprintf(stderr, "benchmark run failed\n");
                        goto out;
                }
        }
        kbt_faults_clear(&sb);
        rc = 0;
        goto out;

usage_out:
        rc = 2;
out:
        for (i = 0; i < B.ntok; i++)
                free(B.tokens[i]);
        free(B.tokens);
        free(B.lat_us);
        if (started)
                kbt_sandbox_stop(&sb);
        return rc;
usage:
        fprintf(stderr,
                "usage: %s [--url URL | --kb-bin PATH] [--ops N] "
                "[--in-flight N] [--latency MS[,MS...]]\n",
                argv[0]);
        return 2;
}
