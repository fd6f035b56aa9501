/* processor.c -- the processor base both daemons run on */
#include "processor.h"

#include <stdlib.h>
#include <string.h>

#include "daemon.h"
#include "dlq.h"
#include "json.h"
#include "kafka.h"
#include "log.h"
#include "trace.h"
#include "util.h"

#define STATS_EVERY_MS 10000
/* librdkafka statistics of the consumer: lag and broker states */
#define CONSUMER_STATS_MS "5000"
/* How long the start waits for a broker to answer the login probe: what
 * init_transactions() would wait after it. */
#define PROBE_TIMEOUT_MS 60000

/* ---- jobs ---- */

void kb_proc_done(kb_job_t *job)
{
        kb_rec_done(job->rec);
}

void kb_proc_fail(kb_proc_t *p, const char *why)
{
        kb_log_error(p->ops->role, "%s; stopping without committing", why);
        p->fatal = 1;
        kb_ops_http_state(p->opsh, KB_OPS_HELD);
        if (p->pl)
                kb_pipeline_fail(p->pl);
}

void kb_proc_hold(kb_job_t *job, const char *why)
{
        kb_proc_t *p = job->proc;

        kb_log_error(p->ops->role,
                     "share %s: %s; stopping without committing it",
                     job->share_id[0] ? job->share_id : "(unknown)", why);
        job->next = p->held;
        p->held = job;
        p->fatal = 1;
        kb_ops_http_state(p->opsh, KB_OPS_HELD);
        if (p->pl)
                kb_pipeline_fail(p->pl);
}

int kb_proc_claim(kb_job_t *job)
{
        if (kb_seen_has(job->proc->seen, job->share_id)) {
                job->outcome = KB_OPS_REPLAYED;
                return 1;
        }
        if (kb_seen_claim(job->proc->seen, job->share_id) == -1) {
                kb_proc_hold(job, "out of memory");
                return -1;
        }
        job->owns_seen = 1;
        return 0;
}

int kb_proc_state(kb_job_t *job, const char *outcome, const char *ref)
{
        int r = kb_seen_produce(job->proc->seen, job->rec, job->share_id,
                                outcome, ref);

        if (r == KB_OK) {
                job->state_written = 1;
                kb_strlcpy(job->ref, ref ? ref : "", sizeof(job->ref));
        }
        return r;
}

void kb_proc_dead_letter(kb_job_t *job, const char *stage, const char *reason,
                         const char *detail, int http_status)
{
        kb_proc_t *p = job->proc;
        const char *sid = job->share_id[0] ? job->share_id : NULL;
        json_object *x = p->ops->dlq_extra ? p->ops->dlq_extra(job) : NULL;

        if (http_status && !x)
                x = json_object_new_object();
        if (http_status && x)
                kb_json_add_i64(x, "http_status", http_status);
        if (kb_dlq_produce(job->rec, p->dlq_topic, stage, reason, detail, sid,
                           x) ||
            (sid && p->ops->dead_letter_state &&
             kb_proc_state(job, "dead_letter", NULL)))
                /* Cannot build the output: never commit a silent drop. */
                kb_proc_fail(p, "out of memory building a dead letter");
        p->n_dead++;
        job->dead = 1;
        kb_strlcpy(job->dl_reason, reason ? reason : "",
                   sizeof(job->dl_reason));
        kb_log_info(p->ops->role, "share %s: dead-lettered: %s",
                    sid ? sid : "(none)", reason);
        kb_rec_done(job->rec);
}

int kb_proc_vendor_settled(kb_job_t *job, const kb_vendor_result_t *res)
{
        char why[320];

        if (kb_rec_orphaned(job->rec)) {
                kb_rec_done(job->rec);
                return 1;
        }
        if (res->err == KB_ERR_STATE) {
                kb_proc_hold(job, "vendor client shut down");
                return 1;
        }
        if (res->err != KB_OK && res->status == 0) {
                kb_snprintf(why, sizeof(why), "vendor call failed for good: %s",
                            res->detail[0] ? res->detail
                                           : kb_err2str(res->err));
                kb_proc_hold(job, why);
                return 1;
        }
        return 0;
}

/* ---- pipeline adapters ---- */

void kb_proc_log_stats(kb_proc_t *p)
{
        kb_pipeline_stats_t ps;
        kb_vendor_stats_t vs;
        char own[512] = "";

        memset(&ps, 0, sizeof(ps));
        if (p->pl)
                kb_pipeline_stats(p->pl, &ps);
        kb_vendor_stats(p->vendor, &vs);
        if (p->ops->counters)
                p->ops->counters(p, own, sizeof(own));
        if (p->webhook) {
                kb_wh_intake_stats_t ws;
                size_t n = strlen(own);
                kb_wh_host_stats(p->webhook, &ws);
                kb_snprintf(own + n, sizeof(own) - n,
                            "%swebhooks accepted %llu duplicate %llu "
                            "refused %llu unavailable %llu",
                            n ? ", " : "", (unsigned long long)ws.accepted,
                            (unsigned long long)ws.duplicates,
                            (unsigned long long)kb_wh_host_refused(&ws),
                            (unsigned long long)ws.unavailable);
        }
        kb_log_info(p->ops->role,
                    "consumed %llu, %s, dead-lettered %llu, in flight %lld, "
                    "txns %llu (aborted %llu, %llu/%llu ms "
                    "committing/blocking), vendor ok %llu retried %llu "
                    "429s %llu",
                    (unsigned long long)ps.consumed, own,
                    (unsigned long long)p->n_dead, (long long)ps.in_flight,
                    (unsigned long long)ps.txn_commits,
                    (unsigned long long)ps.txn_aborts,
                    (unsigned long long)(ps.txn_us / 1000),
                    (unsigned long long)(ps.txn_offsets_us / 1000),
                    (unsigned long long)vs.ok, (unsigned long long)vs.retried,
                    (unsigned long long)vs.http_429);
}

/*
 * A new record's hop: its trace context (the incoming traceparent
 * continued, or a trace started here) and when its share was requested
 * (kb-requested-at; see requested_at_from_record). The input's headers
 * are stamped with both, so that a dead letter built from them carries
 * them too (kb_rec_headers() is never NULL).
 */
static void job_trace(kb_job_t *job)
{
        rd_kafka_headers_t *in = kb_rec_headers(job->rec);

        kb_kafka_trace_get(in, &job->tr);
        job->requested_at = kb_kafka_requested_at(in);
        if (job->requested_at <= 0 &&
            job->proc->ops->requested_at_from_record) {
                job->requested_at = kb_rec_timestamp(job->rec);
                if (job->requested_at <= 0)
                        job->requested_at = kb_trace_wall_ms();
        }
        if (job->requested_at < 0)
                job->requested_at = 0;
        (void)kb_kafka_trace_stamp(in, &job->tr, job->requested_at);
}

static void op_start(void *opaque, kb_rec_t *rec)
{
        kb_proc_t *p = opaque;
        kb_job_t *job = calloc(1, p->ops->job_size);
        char saved[KB_LOG_TRACE_BYTES];

        if (!job) {
                kb_proc_fail(p, "out of memory");
                kb_rec_done(rec); /* nothing is committed after a fail */
                return;
        }
        job->proc = p;
        job->rec = rec;
        kb_rec_set_user(rec, job);
        job_trace(job);
        kb_log_trace_push(job->tr.trace_id, saved);
        kb_log_debug(p->ops->role, "%s[%d]@%lld: trace %s", kb_rec_topic(rec),
                     (int)kb_rec_partition(rec), (long long)kb_rec_offset(rec),
                     job->tr.continued ? "continued" : "started here");
        p->ops->start(job); /* the job may be gone after it */
        kb_log_trace_pop(saved);
}

/* Engine thread: the loop turns; publishes the pipeline's figures to the
 * operations endpoints (which read them from the HTTP thread). */
static void ops_beat(kb_proc_t *p)
{
        kb_pipeline_stats_t ps;

        if (!p->opsh)
                return;
        memset(&ps, 0, sizeof(ps));
        if (p->pl)
                kb_pipeline_stats(p->pl, &ps);
        kb_ops_http_beat(p->opsh, p->pl ? &ps : NULL);
        if (p->vendor) {
                kb_vendor_stats_t vs;
                kb_vendor_stats(p->vendor, &vs);
                kb_ops_http_vendor(p->opsh, &vs);
        }
}

/* Inside rd_kafka_consumer_poll(), on the engine thread. The consumer's
 * opaque is its pipeline (the engine's), whose opaque is the daemon. */
static int op_consumer_stats(rd_kafka_t *rk, char *json, size_t json_len,
                             void *opaque)
{
        kb_proc_t *p = opaque ? kb_pipeline_opaque(opaque) : NULL;

        (void)rk;
        if (p)
                (void)kb_ops_http_consumer_stats(p->opsh, json, json_len);
        return 0; /* librdkafka frees json */
}

/*
 * The producer's statistics callback, served by the engine's run loop
 * (it polls the transactional producer on every turn, busy or idle,
 * whereas op_poll() runs only while records are in flight): the heartbeat
 * of /livez, and the producer's broker request timeouts.
 */
static int op_producer_stats(rd_kafka_t *rk, char *json, size_t json_len,
                             void *opaque)
{
        kb_proc_t *p = opaque;

        (void)rk;
        ops_beat(p);
        (void)kb_ops_http_producer_stats(p->opsh, json, json_len);
        return 0; /* librdkafka frees json */
}

static int op_poll(void *opaque, int timeout_ms)
{
        kb_proc_t *p = opaque;
        int64_t now = kb_mono_ms();

        if (now >= p->next_stats_ms) {
                p->next_stats_ms = now + STATS_EVERY_MS;
                kb_proc_log_stats(p);
                kb_seen_expire(p->seen);
        }
        ops_beat(p);
        return kb_vendor_poll(p->vendor, timeout_ms);
}

static int op_has_capacity(void *opaque)
{
        kb_proc_t *p = opaque;

        return kb_vendor_has_capacity(p->vendor);
}

static int op_on_assign(void *opaque,
                        const rd_kafka_topic_partition_list_t *parts)
{
        kb_proc_t *p = opaque;

        (void)parts;
        /* Another instance may have handled share_ids since we last read
         * the state: read it again before touching the new partitions. */
        return kb_seen_load(p->seen);
}

/* Metrics: the outcome of a record whose offset was committed. */
static void count_outcome(kb_proc_t *p, const kb_job_t *job)
{
        if (job->dead)
                kb_ops_http_dead_letter(p->opsh, job->dl_reason);
        else if (job->outcome)
                kb_ops_http_record(p->opsh, (kb_ops_outcome_t)job->outcome);
        else
                kb_ops_http_record(p->opsh, job->state_written
                                                ? KB_OPS_PUBLISHED
                                                : KB_OPS_SKIPPED);
}

/* Metrics: a transaction committed (the engine's figures of it). */
static void op_on_commit(void *opaque,
                         const rd_kafka_topic_partition_list_t *offsets)
{
        kb_proc_t *p = opaque;
        kb_pipeline_stats_t ps;

        (void)offsets;
        if (!p->opsh || !p->pl)
                return;
        kb_pipeline_stats(p->pl, &ps);
        kb_ops_http_commit(p->opsh, (double)ps.last_txn_us / 1e6,
                           ps.last_txn_records);
}

/* Metrics: the key ids of the partners we seal to (issuer) or whose
 * signatures we trust (importer); our own keys are the daemon's. */
static void partner_key_ids(kb_proc_t *p)
{
        size_t i, k;

        for (i = 0; p->opsh && i < p->partners.n; i++) {
                const kb_partner_t *pt = &p->partners.v[i];
                if (p->ops->scope & KB_SCOPE_ISSUER && pt->box)
                        (void)kb_ops_http_key_id(p->opsh, "partner_box",
                                                 kb_key_id(pt->box));
                for (k = 0; p->ops->scope & KB_SCOPE_IMPORTER &&
                            k < kb_bundle_count(pt->bundle, KB_KEY_SIGN);
                     k++)
                        (void)kb_ops_http_key_id(
                            p->opsh, "partner_sign",
                            kb_key_id(
                                kb_bundle_get(pt->bundle, KB_KEY_SIGN, k)));
        }
}

/*
 * Metrics: an importer record whose downstream record committed -- the
 * hand-off latency from when the share was requested (kb-requested-at,
 * which the issuer carried onto the envelope and the importer stamped on
 * its input). The two clocks are two companies': a skew that makes it
 * negative counts as 0.
 */
static void count_handoff(kb_proc_t *p, const kb_job_t *job, kb_rec_t *rec)
{
        int64_t at, ms;

        if (!(p->ops->scope & KB_SCOPE_IMPORTER) || job->dead ||
            !job->state_written)
                return;
        at = kb_kafka_requested_at(kb_rec_headers(rec));
        if (at <= 0)
                return;
        ms = kb_trace_wall_ms() - at;
        kb_ops_http_handoff(p->opsh, ms > 0 ? (double)ms / 1000.0 : 0.0);
}

static void op_on_finish(void *opaque, kb_rec_t *rec, int committed)
{
        kb_proc_t *p = opaque;
        kb_job_t *job = kb_rec_user(rec);

        if (!job)
                return;
        if (committed) {
                count_outcome(p, job);
                count_handoff(p, job, rec);
        }
        if (job->owns_seen) {
                if (committed && job->state_written)
                        kb_seen_commit(p->seen, job->share_id,
                                       job->ref[0] ? job->ref : NULL);
                else
                        kb_seen_forget(p->seen, job->share_id);
        }
        free(job);
}

/*
 * The record was orphaned while its job runs (a vendor call still in
 * flight, or held): the rewind or the partition's next owner reads the
 * same input again at once, and its new job must be able to claim the
 * share_id -- with our claim still pending it would take the input for a
 * duplicate in flight, end with no output and have its offset committed:
 * a request never published, a token spent with no downstream record.
 * So the claim is forgotten now, not when the call finishes, and the job
 * no longer owns it (its on_finish must not forget the new job's claim).
 * That the orphan's call and the new job's may both reach the vendor is
 * harmless: a second mint is never published, a second import is refused
 * (403) and reconciled (docs/pipeline.md). The status observer's forget
 * drops only what this job staged, which is nothing: an importer job
 * stages in the step that ends it.
 */
static void op_on_orphan(void *opaque, kb_rec_t *rec)
{
        kb_proc_t *p = opaque;
        kb_job_t *job = kb_rec_user(rec);

        if (!job || !job->owns_seen)
                return;
        kb_seen_forget(p->seen, job->share_id);
        job->owns_seen = 0;
}

/* ---- life cycle ---- */

int kb_proc_topic(kb_proc_t *p, int out, const char *topic)
{
        char ***list = out ? &p->out_topics : &p->in_topics;
        char **v;
        size_t n = 0;

        while (*list && (*list)[n])
                n++;
        v = realloc(*list, (n + 2) * sizeof(*v));
        if (!v)
                return KB_ERR_NOMEM;
        *list = v;
        v[n] = strdup(topic);
        v[n + 1] = NULL;
        return v[n] ? KB_OK : KB_ERR_NOMEM;
}

static void topics_free(char **v)
{
        size_t i;

        for (i = 0; v && v[i]; i++)
                free(v[i]);
        free(v);
}

int kb_proc_init(kb_proc_t *p, const kb_proc_ops_t *ops, const kb_conf_t *conf,
                 int64_t window_s, char *errstr, size_t errstr_size)
{
        char key[64];
        const char *v;
        int r;

        p->ops = ops;
        p->conf = conf;
        if ((r = kb_conf_check(conf, ops->scope, errstr, errstr_size)))
                return r == KB_ERR_NOMEM ? r : KB_ERR_CONFIG;
        v = kb_conf_get(conf, "application_id");
        kb_strlcpy(p->app_id, v ? v : "", sizeof(p->app_id));
        kb_snprintf(key, sizeof(key), "%s.dlq_topic", ops->role);
        v = kb_conf_get(conf, key);
        kb_strlcpy(p->dlq_topic, v ? v : "", sizeof(p->dlq_topic));
        r = kb_partners_load(&p->partners, conf, ops->scope, errstr,
                             errstr_size);
        if (r == KB_ERR_NOMEM)
                kb_snprintf(errstr, errstr_size, "out of memory");
        if (r)
                return r == KB_ERR_NOMEM ? r : KB_ERR_CONFIG;
        kb_snprintf(key, sizeof(key), "%s.state_topic", ops->role);
        p->seen =
            kb_seen_new(conf, kb_conf_get(conf, key), window_s, ops->role);
        if (!p->seen || kb_proc_topic(p, 1, p->dlq_topic) ||
            kb_proc_topic(p, 1, kb_seen_topic(p->seen))) {
                kb_snprintf(errstr, errstr_size, "out of memory");
                return KB_ERR_NOMEM;
        }
        p->vendor = kb_vendor_new(conf, &r, errstr, errstr_size);
        if (!p->vendor)
                return r;
        r = kb_wh_host_new(conf, ops->role, ops->webhook_action, p, &p->webhook,
                           errstr, errstr_size);
        if (r != KB_OK)
                return r;
        r = kb_ops_http_new(conf, ops->role, &p->opsh, errstr, errstr_size);
        if (r == KB_OK && p->opsh) {
                kb_vendor_set_observer(p->vendor, kb_ops_http_vendor_attempt,
                                       p->opsh);
                partner_key_ids(p);
        }
        if (r != KB_OK || !kb_ops_http_wants_share(p->opsh))
                return r;
        if (!p->webhook) {
                kb_snprintf(errstr, errstr_size,
                            "%s: metrics.listen: same as webhook.listen, "
                            "which is not in use",
                            kb_conf_origin(conf, "metrics.listen"));
                return KB_ERR_CONFIG;
        }
        r = kb_ops_http_share(p->opsh, kb_wh_host_httpd(p->webhook));
        if (r != KB_OK) {
                kb_snprintf(errstr, errstr_size,
                            "%s: metrics.listen: cannot share the webhook "
                            "server: %s",
                            kb_conf_origin(conf, "metrics.listen"),
                            kb_err2str(r));
                return r == KB_ERR_NOMEM ? r : KB_ERR_CONFIG;
        }
        return KB_OK;
}

/*
 * What a load of the state on assignment may take: it runs in the
 * rebalance callback, inside the engine's consumer poll, and in the worst
 * case in the same poll as a revoke that drained for up to
 * pipeline.drain_timeout_ms (and then committed). Three quarters of what
 * kafka.max.poll.interval.ms leaves after the drain, the rest for that
 * commit; never more than the load's default (0 = that default), never
 * under a second.
 */
static int assign_load_timeout(const kb_pipeline_conf_t *pc)
{
        char buf[32];
        int64_t poll_ms = 0, left;

        kb_kafka_conf_get(pc->consumer_conf, "max.poll.interval.ms", buf,
                          sizeof(buf));
        if (kb_parse_i64(buf, 1, INT32_MAX, &poll_ms) == -1)
                return 0;
        left = (poll_ms - pc->drain_timeout_ms) * 3 / 4;
        if (left > 120000)
                return 0;
        return left < 1000 ? 1000 : (int)left;
}

static void join_topics(char *const *v, char *buf, size_t bufsz)
{
        size_t i, n = 0;

        buf[0] = '\0';
        for (i = 0; v && v[i] && n < bufsz; i++)
                n += (size_t)snprintf(buf + n, bufsz - n, "%s%s", i ? "," : "",
                                      v[i]);
}

int kb_proc_run(kb_proc_t *p, atomic_int *stop, char *errstr,
                size_t errstr_size)
{
        static const kb_pipeline_ops_t ops = { op_start,        op_poll,
                                               op_has_capacity, op_on_assign,
                                               op_on_finish,    op_on_orphan };
        kb_pipeline_conf_t pc;
        char key[2][64], in[512], out[512];
        int r, assign_to;

        memset(&pc, 0, sizeof(pc));
        kb_snprintf(key[0], sizeof(key[0]), "%s.group_id", p->ops->role);
        kb_snprintf(key[1], sizeof(key[1]), "%s.transactional_id",
                    p->ops->role);
        r = kb_daemon_kafka_confs(p->conf, kb_conf_get(p->conf, key[0]), key[1],
                                  &pc, errstr, errstr_size);
        if (r != KB_OK)
                return r;
        /* our own server listens from the start: /readyz says 503 until
         * the transactional producer is initialised */
        if ((r = kb_ops_http_start(p->opsh, errstr, errstr_size)) != KB_OK) {
                rd_kafka_conf_destroy(pc.consumer_conf);
                rd_kafka_conf_destroy(pc.producer_conf);
                return r;
        }
        /* a refused login stops the start at once, and says why: the
         * clients below would wait out their timeouts (SIGTERM unserved) */
        r = kb_kafka_probe(p->conf, PROBE_TIMEOUT_MS, stop, errstr,
                           errstr_size);
        if (r != KB_OK || (stop && atomic_load(stop))) {
                rd_kafka_conf_destroy(pc.consumer_conf);
                rd_kafka_conf_destroy(pc.producer_conf);
                return r;
        }
        if (p->opsh) {
                /* the heartbeat: nothing else in kyc-bridge uses the
                 * producer's opaque or statistics */
                char e[128];
                rd_kafka_conf_set_opaque(pc.producer_conf, p);
                rd_kafka_conf_set_stats_cb(pc.producer_conf, op_producer_stats);
                rd_kafka_conf_set_stats_cb(pc.consumer_conf, op_consumer_stats);
                if (rd_kafka_conf_set(pc.producer_conf,
                                      "statistics.interval.ms", "1000", e,
                                      sizeof(e)) != RD_KAFKA_CONF_OK ||
                    rd_kafka_conf_set(
                        pc.consumer_conf, "statistics.interval.ms",
                        CONSUMER_STATS_MS, e, sizeof(e)) != RD_KAFKA_CONF_OK) {
                        kb_snprintf(errstr, errstr_size,
                                    "statistics.interval.ms: %s", e);
                        rd_kafka_conf_destroy(pc.consumer_conf);
                        rd_kafka_conf_destroy(pc.producer_conf);
                        return KB_ERR_KAFKA;
                }
        }
        pc.topics = (const char *const *)p->in_topics;
        pc.out_topics = (const char *const *)p->out_topics;
        if (p->opsh)
                pc.on_commit = op_on_commit;
        assign_to = assign_load_timeout(&pc); /* before pc is consumed */
        /* subscribed after the state load below: a consumer destroyed
         * while its first join is under way (a load that failed) trips an
         * assertion in librdkafka 2.0.2's sticky assignor (SIGABRT) */
        pc.defer_subscribe = 1;
        kb_ops_http_beat(p->opsh, NULL);
        p->pl = kb_pipeline_new(&pc, &ops, p, errstr, errstr_size);
        if (!p->pl)
                return strncmp(errstr, "out of memory", 13) ? KB_ERR_KAFKA
                                                            : KB_ERR_NOMEM;
        kb_ops_http_beat(p->opsh, NULL);
        /* The state is read after kb_pipeline_new()'s init_transactions():
         * a transaction that a killed run of this instance (the same
         * transactional.id) left open is aborted by it at once. Read before
         * that, it would hold the read_committed load at its first offset
         * until the broker's transaction.timeout.ms (60 s) ran out. The
         * consumer subscribes after it: nothing is assigned or consumed
         * before the load is done. */
        if (kb_seen_load(p->seen) == -1) {
                if (*kb_seen_denied(p->seen))
                        kb_snprintf(errstr, errstr_size,
                                    "cannot read state topic %s: %s",
                                    kb_seen_topic(p->seen),
                                    kb_seen_denied(p->seen));
                else
                        kb_snprintf(errstr, errstr_size,
                                    "cannot read state topic %s (does it "
                                    "exist?)",
                                    kb_seen_topic(p->seen));
                return KB_ERR_KAFKA;
        }
        /* that one ran before joining; the next ones run in a rebalance */
        kb_seen_set_load_timeout(p->seen, assign_to);
        if (kb_pipeline_subscribe(p->pl, pc.topics, errstr, errstr_size))
                return KB_ERR_KAFKA;
        kb_ops_http_beat(p->opsh, NULL);
        join_topics(p->in_topics, in, sizeof(in));
        join_topics(p->out_topics, out, sizeof(out));
        kb_log_notice(p->ops->role,
                      "running: %s -> %s (application %s, %zu partner(s))", in,
                      out, p->app_id, p->partners.n);
        if (p->webhook &&
            (r = kb_wh_host_start(p->webhook, errstr, errstr_size)) != KB_OK)
                return r;
        p->next_stats_ms = kb_mono_ms() + STATS_EVERY_MS;
        if (!p->fatal)
                kb_ops_http_state(p->opsh, KB_OPS_RUNNING);
        r = kb_pipeline_run(p->pl, stop);
        if (p->opsh) {
                ops_beat(p); /* the engine's last commits, its thread */
                if (!p->fatal)
                        kb_ops_http_state(p->opsh, r == KB_OK ? KB_OPS_STOPPING
                                                              : KB_OPS_HELD);
        }
        /* deliveries in flight are answered before the pipeline goes */
        kb_wh_host_stop(p->webhook);
        kb_proc_log_stats(p);
        if (p->fatal) {
                kb_snprintf(errstr, errstr_size,
                            "stopped on a vendor or resource failure (see "
                            "log); unfinished input was not committed");
                r = KB_ERR_STATE;
        } else if (r != KB_OK) {
                /* the engine's first fatal cause, never "see log" */
                const char *why = kb_pipeline_last_error(p->pl);
                kb_snprintf(errstr, errstr_size, "%s",
                            why && *why ? why : kb_err2str(r));
                if (r == KB_ERR_CONFIG) /* only kb_proc_init() says that */
                        r = KB_ERR_KAFKA;
        }
        return r;
}

void *kb_proc_new_failed(kb_proc_t *p, int r, int *is_config_error,
                         char *errstr, size_t errstr_size)
{
        if (r == KB_ERR_NOMEM)
                kb_snprintf(errstr, errstr_size, "out of memory");
        *is_config_error = r == KB_ERR_CONFIG;
        kb_proc_free(p);
        return NULL;
}

void kb_proc_free(kb_proc_t *p)
{
        if (p)
                p->ops->destroy(p);
}

void kb_proc_destroy(kb_proc_t *p)
{
        kb_job_t *job, *next;

        /* The intake first: its producer and threads are its own, and it
         * must take no delivery while the daemon goes away. */
        kb_wh_host_destroy(p->webhook);
        p->webhook = NULL;
        /* Then the vendor: its callbacks finish (orphaned) records, which
         * the pipeline must still exist for. */
        kb_vendor_destroy(p->vendor);
        p->vendor = NULL;
        for (job = p->held; job; job = next) {
                next = job->next;
                kb_rec_done(job->rec); /* orphaned by the stop: freed */
        }
        p->held = NULL;
        kb_pipeline_destroy(p->pl);
        p->pl = NULL;
        /* last: the records finished above counted into its registry */
        kb_ops_http_destroy(p->opsh);
        p->opsh = NULL;
        kb_partners_free(&p->partners);
        kb_seen_destroy(p->seen);
        p->seen = NULL;
        topics_free(p->in_topics);
        topics_free(p->out_topics);
        p->in_topics = p->out_topics = NULL;
}
