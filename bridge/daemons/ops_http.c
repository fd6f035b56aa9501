/* ops_http.c -- a daemon's operations endpoints: /livez, /readyz and
 * /metrics (metrics.listen), and the metrics the processor keeps */
#include "ops_http.h"

#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "metrics.h"
#include "util.h"

#define HTTPD_GRACE_MS 2000
#define LIVEZ_STALE_MS 10000
#define PROM_TYPE      "text/plain; version=0.0.4; charset=utf-8"

struct kb_ops_http_s {
        char role[16];
        char name[48];   /* log facility: "<role>-ops" */
        char listen[80]; /* as configured */
        int shared;      /* the routes live on the webhook intake's server */
        kb_httpd_t *h;   /* our own server, else NULL */
        kb_metrics_t *reg;
        kb_metric_family_t *dead; /* {daemon,reason} */
        kb_metric_t *rec[3];      /* by kb_ops_outcome_t */
        kb_metric_t *txn[2];      /* committed, aborted */
        kb_metric_t *in_flight;
        uint64_t last_commits, last_aborts; /* engine thread */
        atomic_llong beat_ms; /* kb_mono_ms() of the last loop turn */
        atomic_int state;     /* kb_ops_state_t */
        atomic_int port;
};

static void reply_json(kb_httpd_req_t *req, int status, const char *body)
{
        static const char *const hdrs[] = { "Cache-Control", "no-store", NULL };

        kb_httpd_reply(req, status, "application/json", body, strlen(body),
                       hdrs);
}

static void livez(void *opaque, kb_httpd_req_t *req)
{
        kb_ops_http_t *o = opaque;
        int64_t age = kb_mono_ms() - (int64_t)atomic_load(&o->beat_ms);

        if (age > LIVEZ_STALE_MS)
                kb_httpd_reply_error(req, 503,
                                     "the daemon's loop has not turned for "
                                     "over 10 s",
                                     NULL);
        else
                reply_json(req, 200, "{\"status\":\"ok\"}");
}

static void readyz(void *opaque, kb_httpd_req_t *req)
{
        kb_ops_http_t *o = opaque;

        switch ((kb_ops_state_t)atomic_load(&o->state)) {
        case KB_OPS_RUNNING:
                reply_json(req, 200, "{\"status\":\"ready\"}");
                return;
        case KB_OPS_STARTING:
                kb_httpd_reply_error(req, 503,
                                     "starting: the transactional producer "
                                     "is not initialised yet",
                                     NULL);
                return;
        case KB_OPS_HELD:
                kb_httpd_reply_error(req, 503,
                                     "held: a vendor failure (such as our "
                                     "own API key refused) or a resource "
                                     "failure stopped the daemon; see the "
                                     "log",
                                     NULL);
                return;
        case KB_OPS_STOPPING:
        default:
                kb_httpd_reply_error(req, 503, "stopping", NULL);
                return;
        }
}

static void metrics(void *opaque, kb_httpd_req_t *req)
{
        kb_ops_http_t *o = opaque;
        kb_buf_t b = KB_BUF_INIT;

        if (kb_metrics_render(o->reg, &b) != KB_OK) {
                kb_buf_free(&b, 0);
                kb_httpd_reply_error(req, 500, "out of memory", NULL);
                return;
        }
        kb_httpd_reply(req, 200, PROM_TYPE, b.data ? b.data : "", b.len, NULL);
        kb_buf_free(&b, 0);
}

static int add_routes(kb_ops_http_t *o, kb_httpd_t *h)
{
        int r;

        if ((r = kb_httpd_route(h, "GET", "/livez", livez, o)) ||
            (r = kb_httpd_route(h, "GET", "/readyz", readyz, o)) ||
            (r = kb_httpd_route(h, "GET", "/metrics", metrics, o)))
                return r;
        return KB_OK;
}

static int family(kb_ops_http_t *o, const char *name, const char *help,
                  kb_metric_type_t type, const char *const *labels,
                  size_t max_children, kb_metric_family_t **fam, char *errstr,
                  size_t errstr_size)
{
        kb_metric_desc_t d;

        memset(&d, 0, sizeof(d));
        d.name = name;
        d.help = help;
        d.type = type;
        d.labels = labels;
        d.max_children = max_children;
        return kb_metrics_register(o->reg, &d, fam, errstr, errstr_size);
}

static int registry_build(kb_ops_http_t *o, char *errstr, size_t errstr_size)
{
        static const char *const rec_l[] = { "daemon", "outcome", NULL };
        static const char *const dead_l[] = { "daemon", "reason", NULL };
        static const char *const txn_l[] = { "daemon", "result", NULL };
        static const char *const d_l[] = { "daemon", NULL };
        kb_metric_family_t *rec, *txn, *infl;
        int r;

        o->reg = kb_metrics_new(errstr, errstr_size);
        if (!o->reg)
                return KB_ERR_NOMEM;
        if ((r = kb_metrics_add_build_info(o->reg, KB_VERSION_STR, errstr,
                                           errstr_size)) ||
            (r = kb_metrics_add_process_start_time(o->reg, 0, errstr,
                                                   errstr_size)) ||
            (r = family(o, "kyc_bridge_records_total",
                        "Input records whose outcome was committed, by "
                        "outcome (published, dead_lettered, skipped).",
                        KB_METRIC_COUNTER, rec_l, 8, &rec, errstr,
                        errstr_size)) ||
            (r = family(o, "kyc_bridge_dead_letters_total",
                        "Dead letters committed, by reason.", KB_METRIC_COUNTER,
                        dead_l, 64, &o->dead, errstr, errstr_size)) ||
            (r = family(o, "kyc_bridge_transactions_total",
                        "Kafka transactions, by result (committed, "
                        "aborted).",
                        KB_METRIC_COUNTER, txn_l, 4, &txn, errstr,
                        errstr_size)) ||
            (r = family(o, "kyc_bridge_records_in_flight",
                        "Input records taken and not yet finished.",
                        KB_METRIC_GAUGE, d_l, 2, &infl, errstr, errstr_size)))
                return r == KB_ERR_NOMEM ? r : KB_ERR_STATE;
        o->rec[KB_OPS_PUBLISHED] = kb_metric_child(rec, o->role, "published");
        o->rec[KB_OPS_DEAD_LETTERED] =
            kb_metric_child(rec, o->role, "dead_lettered");
        o->rec[KB_OPS_SKIPPED] = kb_metric_child(rec, o->role, "skipped");
        o->txn[0] = kb_metric_child(txn, o->role, "committed");
        o->txn[1] = kb_metric_child(txn, o->role, "aborted");
        o->in_flight = kb_metric_child(infl, o->role);
        if (!o->rec[0] || !o->rec[1] || !o->rec[2] || !o->txn[0] ||
            !o->txn[1] || !o->in_flight) {
                kb_snprintf(errstr, errstr_size, "out of memory");
                return KB_ERR_NOMEM;
        }
        return KB_OK;
}

int kb_ops_http_new(const kb_conf_t *conf, const char *role,
                    kb_ops_http_t **out, char *errstr, size_t errstr_size)
{
        const char *listen = kb_conf_get(conf, "metrics.listen");
        const char *wl = kb_conf_get(conf, "webhook.listen");
        char herr[256];
        kb_httpd_conf_t hc;
        kb_ops_http_t *o;
        int r;

        *out = NULL;
        if (!listen || !*listen)
                return KB_OK;
        o = calloc(1, sizeof(*o));
        if (!o)
                return KB_ERR_NOMEM;
        atomic_init(&o->beat_ms, (long long)kb_mono_ms());
        atomic_init(&o->state, KB_OPS_STARTING);
        atomic_init(&o->port, 0);
        kb_strlcpy(o->role, role, sizeof(o->role));
        kb_snprintf(o->name, sizeof(o->name), "%s-ops", role);
        kb_strlcpy(o->listen, listen, sizeof(o->listen));

        /* checks the address (loopback unless allowed) in every case; the
         * server is used only when not shared, and never bound here */
        memset(&hc, 0, sizeof(hc));
        hc.listen = listen;
        hc.allow_non_loopback =
            kb_conf_get_bool(conf, "metrics.allow_non_loopback");
        hc.body_max = 1024;
        hc.threads = 1;
        hc.name = o->name;
        o->h = kb_httpd_new(&hc, &r, herr, sizeof(herr));
        if (!o->h) {
                kb_snprintf(errstr, errstr_size, "%s: metrics.listen: %s",
                            kb_conf_origin(conf, "metrics.listen"), herr);
                goto fail;
        }
        o->shared = wl && !strcmp(wl, listen);
        if (o->shared) {
                kb_httpd_destroy(o->h, 0);
                o->h = NULL;
        } else if ((r = add_routes(o, o->h)) != KB_OK) {
                kb_snprintf(errstr, errstr_size, "metrics routes: %s",
                            kb_err2str(r));
                goto fail;
        }
        r = registry_build(o, errstr, errstr_size);
        if (r != KB_OK) {
                if (r == KB_ERR_STATE) /* a name refused: our bug */
                        r = KB_ERR_CONFIG;
                goto fail;
        }
        *out = o;
        return KB_OK;
fail:
        kb_ops_http_destroy(o);
        return r == KB_ERR_NOMEM ? r : KB_ERR_CONFIG;
}

int kb_ops_http_wants_share(const kb_ops_http_t *o)
{
        return o && o->shared;
}

int kb_ops_http_share(kb_ops_http_t *o, kb_httpd_t *h)
{
        return o ? add_routes(o, h) : KB_OK;
}

int kb_ops_http_start(kb_ops_http_t *o, char *errstr, size_t errstr_size)
{
        char herr[256];

        if (!o)
                return KB_OK;
        atomic_store(&o->beat_ms, (long long)kb_mono_ms());
        if (o->shared) {
                kb_log_notice(o->name,
                              "GET /livez, /readyz, /metrics on the webhook "
                              "intake's server (%s)",
                              o->listen);
                return KB_OK;
        }
        if (kb_httpd_start(o->h, herr, sizeof(herr)) != KB_OK) {
                kb_snprintf(errstr, errstr_size,
                            "metrics.listen %s: cannot listen: %s", o->listen,
                            herr);
                return KB_ERR_IO;
        }
        atomic_store(&o->port, kb_httpd_port(o->h));
        kb_log_notice(o->name,
                      "listening on %s (port %d): GET /livez, /readyz, "
                      "/metrics",
                      o->listen, kb_httpd_port(o->h));
        return KB_OK;
}

int kb_ops_http_port(const kb_ops_http_t *o)
{
        return o ? atomic_load(&((kb_ops_http_t *)o)->port) : 0;
}

void kb_ops_http_beat(kb_ops_http_t *o, const kb_pipeline_stats_t *ps)
{
        if (!o)
                return;
        atomic_store(&o->beat_ms, (long long)kb_mono_ms());
        if (!ps)
                return;
        /* counters only grow: add what is new since the last beat */
        if (ps->txn_commits > o->last_commits)
                kb_metric_add(o->txn[0], ps->txn_commits - o->last_commits);
        if (ps->txn_aborts > o->last_aborts)
                kb_metric_add(o->txn[1], ps->txn_aborts - o->last_aborts);
        o->last_commits = ps->txn_commits;
        o->last_aborts = ps->txn_aborts;
        kb_metric_set(o->in_flight, (double)ps->in_flight);
}

void kb_ops_http_state(kb_ops_http_t *o, kb_ops_state_t st)
{
        if (o)
                atomic_store(&o->state, (int)st);
}

void kb_ops_http_record(kb_ops_http_t *o, kb_ops_outcome_t outcome)
{
        if (o && (unsigned)outcome < 3)
                kb_metric_inc(o->rec[outcome]);
}

void kb_ops_http_dead_letter(kb_ops_http_t *o, const char *reason)
{
        if (!o)
                return;
        kb_metric_inc(o->rec[KB_OPS_DEAD_LETTERED]);
        kb_metric_inc(kb_metric_child(o->dead, o->role,
                                      reason && *reason ? reason : "unknown"));
}

void kb_ops_http_destroy(kb_ops_http_t *o)
{
        if (!o)
                return;
        atomic_store(&o->port, 0);
        kb_httpd_destroy(o->h, HTTPD_GRACE_MS);
        kb_metrics_destroy(o->reg);
        free(o);
}
