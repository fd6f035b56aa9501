/* issuer.c -- the issuer daemon: share requests in, sealed envelopes out */
#include "issuer.h"

#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "daemon.h"
#include "dlq.h"
#include "hmap.h"
#include "json.h"
#include "jwt.h"
#include "kafka.h"
#include "kb_envelope.h"
#include "kb_keys.h"
#include "log.h"
#include "partners.h"
#include "pipeline.h"
#include "seen.h"
#include "util.h"
#include "vendor.h"

#define REQ_MAX_BYTES  65536
#define STATS_EVERY_MS 10000
#define KB_TOPIC_MAX   256

typedef struct job_s {
        struct job_s *next; /* held list */
        kb_issuer_t *is;
        kb_rec_t *rec;
        kb_share_req_t req;
        const kb_partner_t *partner;
        int ttl;
        int owns_seen; /* this record created the pending entry */
} job_t;

struct kb_issuer_s {
        const kb_conf_t *conf;
        char app_id[37];
        kb_key_t *sign;
        kb_partners_t partners;
        kb_vendor_t *vendor;
        kb_pipeline_t *pl;
        kb_seen_t *seen;       /* share_ids handled within the window */
        kb_hmap_t *nparts;     /* token topic -> its partition count (int *) */
        char **partner_topics; /* token topic of each partner (rendered) */
        char request_topic[256], token_topic[256], dlq_topic[256],
            state_topic[256];
        int default_ttl;
        int64_t dedup_window;
        job_t *held; /* records we refuse to finish (fatal vendor answer) */
        volatile sig_atomic_t *stop;
        int fatal;
        int64_t next_stats_ms;
        uint64_t n_published, n_dead, n_dup;
};

/* ---- requests ---- */

static int valid_text(const char *s, size_t max)
{
        size_t n = strlen(s), i;

        if (n == 0 || n > max)
                return 0;
        for (i = 0; i < n; i++)
                if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f)
                        return 0;
        return 1;
}

int kb_share_req_parse(const void *buf, size_t len, kb_share_req_t *req,
                       char *errstr, size_t errstr_size)
{
        static const char *const known[] = {
                "share_id",       "session_id",  "for_application_id",
                "ttl_in_seconds", "vendor_data", NULL
        };
        json_object *o;
        const char *s;
        char jerr[128];
        int64_t ttl;
        int r = KB_ERR_MALFORMED;

        memset(req, 0, sizeof(*req));
        if (len > REQ_MAX_BYTES) {
                kb_snprintf(errstr, errstr_size, "request over %d bytes",
                            REQ_MAX_BYTES);
                return KB_ERR_TOO_LARGE;
        }
        o = kb_json_parse(buf, len, 16, jerr, sizeof(jerr));
        if (!o) {
                kb_snprintf(errstr, errstr_size, "%s", jerr);
                return KB_ERR_MALFORMED;
        }
        if (!json_object_is_type(o, json_type_object)) {
                kb_snprintf(errstr, errstr_size, "request is not an object");
                goto out;
        }
        /* The share_id first, so that a dead letter for an otherwise bad
         * request still names it. */
        s = kb_json_get_str(o, "share_id");
        if (!s || !valid_text(s, 128)) {
                kb_snprintf(errstr, errstr_size,
                            "share_id: required string of 1-128 printable "
                            "characters");
                goto out;
        }
        kb_strlcpy(req->share_id, s, sizeof(req->share_id));
        {
                json_object_object_foreach(o, k, v)
                {
                        size_t i;
                        (void)v;
                        for (i = 0; known[i]; i++)
                                if (!strcmp(k, known[i]))
                                        break;
                        if (!known[i]) {
                                kb_snprintf(errstr, errstr_size,
                                            "unknown member in request");
                                goto out;
                        }
                }
        }
        s = kb_json_get_str(o, "session_id");
        if (!s || !kb_is_uuid(s)) {
                kb_snprintf(errstr, errstr_size,
                            "session_id: required UUID string");
                goto out;
        }
        kb_strlcpy(req->session_id, s, sizeof(req->session_id));
        s = kb_json_get_str(o, "for_application_id");
        if (!s || !kb_is_uuid(s)) {
                kb_snprintf(errstr, errstr_size,
                            "for_application_id: required UUID string");
                goto out;
        }
        kb_strlcpy(req->for_application_id, s, sizeof(req->for_application_id));
        if (kb_json_get(o, "ttl_in_seconds")) {
                if (kb_json_get_i64(o, "ttl_in_seconds", &ttl) || ttl < 60 ||
                    ttl > 86400) {
                        kb_snprintf(errstr, errstr_size,
                                    "ttl_in_seconds: integer from 60 to "
                                    "86400");
                        goto out;
                }
                req->ttl_in_seconds = (int)ttl;
        }
        if (kb_json_get(o, "vendor_data")) {
                s = kb_json_get_str(o, "vendor_data");
                if (!s || !valid_text(s, 128)) {
                        kb_snprintf(errstr, errstr_size,
                                    "vendor_data: string of 1-128 printable "
                                    "characters");
                        goto out;
                }
                kb_strlcpy(req->vendor_data, s, sizeof(req->vendor_data));
        }
        r = KB_OK;
out:
        json_object_put(o);
        return r;
}

/* ---- outputs ---- */

static json_object *req_extra(const kb_share_req_t *req, int http_status)
{
        json_object *x = json_object_new_object();

        if (!x)
                return NULL;
        if (req->session_id[0])
                kb_json_add_str(x, "session_id", req->session_id);
        if (req->for_application_id[0])
                kb_json_add_str(x, "for_application_id",
                                req->for_application_id);
        if (http_status)
                kb_json_add_i64(x, "http_status", http_status);
        return x;
}

/* Dead-letters the request of @p rec and finishes it. */
static void dead_letter(kb_issuer_t *is, kb_rec_t *rec,
                        const kb_share_req_t *req, const char *stage,
                        const char *reason, const char *detail, int http_status)
{
        const char *sid = req && req->share_id[0] ? req->share_id : NULL;

        if (kb_dlq_produce(rec, is->dlq_topic, stage, reason, detail, sid,
                           req ? req_extra(req, http_status) : NULL) ||
            (sid && kb_seen_produce(is->seen, rec, sid, "dead_letter", NULL))) {
                /* Cannot build the output: never commit a silent drop. */
                kb_log_error("issuer", "out of memory building a dead letter");
                is->fatal = 1;
                kb_pipeline_fail(is->pl);
        }
        is->n_dead++;
        kb_log_info("issuer", "share %s: dead-lettered: %s",
                    sid ? sid : "(none)", reason);
}

static const char *token_topic_lookup(void *opaque, const char *name)
{
        return !strcmp(name, "for_application_id") ? (const char *)opaque
                                                   : NULL;
}

/* Seals @p token for @p req's partner; *env malloc()ed, @p topic the
 * rendered token topic. */
static int seal_envelope(kb_issuer_t *is, const kb_share_req_t *req,
                         const kb_partner_t *partner, int ttl,
                         const char *token, size_t token_len,
                         kb_session_kind_t kind, kb_envelope_fields_t *f,
                         char **env, size_t *env_len, char *topic,
                         size_t topicsz)
{
        json_object *claims = NULL;
        int64_t exp = 0;
        int r;

        memset(f, 0, sizeof(*f));
        kb_strlcpy(f->issuer_application_id, is->app_id,
                   sizeof(f->issuer_application_id));
        kb_strlcpy(f->for_application_id, req->for_application_id,
                   sizeof(f->for_application_id));
        kb_strlcpy(f->share_id, req->share_id, sizeof(f->share_id));
        kb_strlcpy(f->source_session_id, req->session_id,
                   sizeof(f->source_session_id));
        kb_strlcpy(f->vendor_data_hint, req->vendor_data,
                   sizeof(f->vendor_data_hint));
        f->session_kind = kind;
        f->created_at = kb_time_now();
        /* The token's own exp is the truth; the vendor may round. */
        if (kb_jwt_decode_unverified(token, token_len, &claims) == KB_OK) {
                if (kb_json_get_i64(claims, "exp", &exp))
                        exp = 0;
                json_object_put(claims);
        }
        f->expires_at = exp > 0 ? exp : f->created_at + ttl;
        if (f->expires_at < f->created_at)
                f->expires_at = f->created_at;
        r = kb_envelope_seal(f, token, token_len, is->sign, partner->box, env,
                             env_len);
        if (r != KB_OK)
                return r;
        if (kb_conf_expand(is->token_topic, token_topic_lookup,
                           (void *)req->for_application_id, topic,
                           topicsz) == -1) {
                free(*env);
                *env = NULL;
                return KB_ERR_CONFIG;
        }
        return KB_OK;
}

static rd_kafka_headers_t *envelope_headers(const kb_envelope_fields_t *f)
{
        rd_kafka_headers_t *hdrs = rd_kafka_headers_new(6);

        if (!hdrs)
                return NULL;
        rd_kafka_header_add(hdrs, "kb-format", -1, "1", 1);
        rd_kafka_header_add(hdrs, "kb-share-id", -1, f->share_id, -1);
        rd_kafka_header_add(hdrs, "kb-for", -1, f->for_application_id, -1);
        rd_kafka_header_add(hdrs, "kb-issuer", -1, f->issuer_application_id,
                            -1);
        rd_kafka_header_add(hdrs, "content-type", -1, "application/json", -1);
        return hdrs;
}

/*
 * The partition of an envelope. The key stays for_application_id (what the
 * partner filters on), but partitioning by it would put all of one
 * partner's envelopes in one partition, and one importer instance would do
 * all the work: spread by a hash of the share_id instead. UA when the
 * topic's size cannot be learnt (then the key decides).
 */
static int32_t token_partition(kb_issuer_t *is, const char *topic,
                               const char *share_id)
{
        int *n = kb_hmap_gets(is->nparts, topic);
        uint32_t h = 2166136261u; /* FNV-1a */
        const unsigned char *p;

        if (!n) {
                const rd_kafka_metadata_t *md = NULL;
                rd_kafka_t *rk = kb_pipeline_producer(is->pl);
                rd_kafka_topic_t *rkt = rd_kafka_topic_new(rk, topic, NULL);
                int cnt = 0;
                if (rkt && rd_kafka_metadata(rk, 0, rkt, &md, 5000) == 0 &&
                    md->topic_cnt == 1 && !md->topics[0].err)
                        cnt = md->topics[0].partition_cnt;
                if (md)
                        rd_kafka_metadata_destroy(md);
                if (rkt)
                        rd_kafka_topic_destroy(rkt);
                if (cnt <= 0)
                        return RD_KAFKA_PARTITION_UA;
                n = malloc(sizeof(*n));
                if (!n)
                        return RD_KAFKA_PARTITION_UA;
                *n = cnt;
                if (kb_hmap_puts(is->nparts, topic, n) == -1) {
                        free(n);
                        return RD_KAFKA_PARTITION_UA;
                }
        }
        for (p = (const unsigned char *)share_id; *p; p++)
                h = (h ^ *p) * 16777619u;
        return (int32_t)(h % (uint32_t)*n);
}

/* Seals @p token for the job's partner and adds the envelope output. */
static int publish_envelope(kb_issuer_t *is, job_t *job, const char *token,
                            size_t token_len, kb_session_kind_t kind)
{
        kb_envelope_fields_t f;
        rd_kafka_headers_t *hdrs;
        char topic[512], *env = NULL;
        size_t env_len;
        int r;

        r = seal_envelope(is, &job->req, job->partner, job->ttl, token,
                          token_len, kind, &f, &env, &env_len, topic,
                          sizeof(topic));
        if (r != KB_OK)
                return r;
        hdrs = envelope_headers(&f);
        if (!hdrs) {
                free(env);
                return KB_ERR_NOMEM;
        }
        r = kb_rec_produce(job->rec, topic,
                           token_partition(is, topic, f.share_id),
                           f.for_application_id, strlen(f.for_application_id),
                           env, env_len, hdrs);
        free(env);
        if (r == KB_OK)
                r = kb_seen_produce(is->seen, job->rec, f.share_id, "published",
                                    NULL);
        if (r == KB_OK) {
                char d[KB_DIGEST_STR_BYTES];
                kb_digest_str(token, token_len, d);
                kb_log_debug("issuer",
                             "share %s: envelope for %s, token %s, expires "
                             "%lld",
                             f.share_id, f.for_application_id, d,
                             (long long)f.expires_at);
                is->n_published++;
        }
        return r;
}

/* Keeps @p job's record unfinished: the vendor refused our credentials or
 * the configuration is broken; the input must be handled again after a
 * fix, so it must not be committed. */
static void hold_and_stop(kb_issuer_t *is, job_t *job, const char *why)
{
        kb_log_error("issuer", "share %s: %s; stopping without committing it",
                     job->req.share_id, why);
        job->next = is->held;
        is->held = job;
        is->fatal = 1;
        if (is->pl)
                kb_pipeline_fail(is->pl);
}

static void share_done(const kb_vendor_result_t *res, void *opaque)
{
        job_t *job = opaque;
        kb_issuer_t *is = job->is;
        kb_rec_t *rec = job->rec;
        const char *tok;
        char why[320];

        if (kb_rec_orphaned(rec) || res->err == KB_ERR_STATE) {
                if (!kb_rec_orphaned(rec)) {
                        hold_and_stop(is, job, "vendor client shut down");
                        return;
                }
                kb_rec_done(rec);
                return;
        }
        if (res->err == KB_OK && res->status == 201) {
                size_t tl;
                kb_session_kind_t kind = KB_SESSION_USER;
                const char *k = kb_json_get_str(res->body, "session_kind");
                int r;
                tok = kb_json_get_str(res->body, "share_token");
                if (k && kb_session_kind_parse(k))
                        kind = kb_session_kind_parse(k);
                if (!tok || !(tl = strlen(tok))) {
                        dead_letter(is, rec, &job->req, "mint",
                                    "vendor_bad_response",
                                    "201 without a share_token", 201);
                        kb_rec_done(rec);
                        return;
                }
                r = publish_envelope(is, job, tok, tl, kind);
                if (r == KB_ERR_TOO_LARGE || r == KB_ERR_INVALID_ARG) {
                        dead_letter(is, rec, &job->req, "seal",
                                    "token_unsealable", kb_err2str(r), 201);
                } else if (r != KB_OK) {
                        kb_snprintf(why, sizeof(why), "sealing failed: %s",
                                    kb_err2str(r));
                        hold_and_stop(is, job, why);
                        return;
                }
                kb_rec_done(rec);
                return;
        }
        switch (res->status) {
        case 400:
                dead_letter(is, rec, &job->req, "mint",
                            strstr(res->detail, "finished")
                                ? "session_not_finished"
                                : "bad_request",
                            res->detail, 400);
                break;
        case 404:
                dead_letter(is, rec, &job->req, "mint",
                            strstr(res->detail, "pplication")
                                ? "partner_application_unknown"
                                : "session_not_found",
                            res->detail, 404);
                break;
        case 0:
        case 401:
        case 403:
                kb_snprintf(why, sizeof(why), "vendor refused us (%d %s)",
                            res->status, res->detail);
                hold_and_stop(is, job, why);
                return;
        default:
                dead_letter(is, rec, &job->req, "mint", "vendor_rejected",
                            res->detail, res->status);
        }
        kb_rec_done(rec);
}

/* ---- pipeline ops ---- */

static void op_start(void *opaque, kb_rec_t *rec)
{
        kb_issuer_t *is = opaque;
        const void *val;
        size_t len;
        char err[256];
        job_t *job = calloc(1, sizeof(*job));
        int r;

        if (!job) {
                kb_log_error("issuer", "out of memory");
                is->fatal = 1;
                kb_pipeline_fail(is->pl);
                kb_rec_done(rec); /* nothing is committed after a fail */
                return;
        }
        job->is = is;
        job->rec = rec;
        kb_rec_set_user(rec, job);
        val = kb_rec_value(rec, &len);
        r = kb_share_req_parse(val, len, &job->req, err, sizeof(err));
        if (r != KB_OK) {
                dead_letter(is, rec, &job->req, "request",
                            r == KB_ERR_TOO_LARGE ? "request_too_large"
                                                  : "malformed_request",
                            err, 0);
                kb_rec_done(rec);
                return;
        }
        if (kb_seen_has(is->seen, job->req.share_id)) {
                is->n_dup++;
                kb_log_info("issuer",
                            "share %s: repeated within the dedup "
                            "window; not published again",
                            job->req.share_id);
                kb_rec_done(rec);
                return;
        }
        if (kb_seen_claim(is->seen, job->req.share_id) == -1) {
                hold_and_stop(is, job, "out of memory");
                return;
        }
        job->owns_seen = 1;
        job->partner =
            kb_partners_find(&is->partners, job->req.for_application_id);
        if (!job->partner) {
                dead_letter(is, rec, &job->req, "request", "unknown_partner",
                            "for_application_id is not a configured partner",
                            0);
                kb_rec_done(rec);
                return;
        }
        job->ttl =
            job->req.ttl_in_seconds ? job->req.ttl_in_seconds : is->default_ttl;
        r = kb_vendor_share(is->vendor, job->req.session_id,
                            job->req.for_application_id, job->ttl, share_done,
                            job);
        if (r != KB_OK)
                hold_and_stop(is, job, kb_err2str(r));
}

static void log_stats(kb_issuer_t *is);

static int op_poll(void *opaque, int timeout_ms)
{
        kb_issuer_t *is = opaque;
        int64_t now = kb_mono_ms();

        if (now >= is->next_stats_ms) {
                is->next_stats_ms = now + STATS_EVERY_MS;
                log_stats(is);
                kb_seen_expire(is->seen);
        }
        return kb_vendor_poll(is->vendor, timeout_ms);
}

static int op_has_capacity(void *opaque)
{
        kb_issuer_t *is = opaque;

        return kb_vendor_has_capacity(is->vendor);
}

static int op_on_assign(void *opaque,
                        const rd_kafka_topic_partition_list_t *parts)
{
        kb_issuer_t *is = opaque;

        (void)parts;
        /* Another instance may have handled share_ids since we last read
         * the state: read it again before touching the new partitions. */
        return kb_seen_load(is->seen);
}

static void op_on_finish(void *opaque, kb_rec_t *rec, int committed)
{
        kb_issuer_t *is = opaque;
        job_t *job = kb_rec_user(rec);

        if (!job)
                return;
        if (job->owns_seen) {
                if (committed)
                        kb_seen_commit(is->seen, job->req.share_id, NULL);
                else
                        kb_seen_forget(is->seen, job->req.share_id);
        }
        free(job);
}

/* ---- life cycle ---- */

static int copy_opt(const kb_conf_t *conf, const char *key, char *out,
                    size_t outsz)
{
        const char *v = kb_conf_get(conf, key);

        kb_strlcpy(out, v ? v : "", outsz);
        return v && *v ? 0 : -1;
}

kb_issuer_t *kb_issuer_new(const kb_conf_t *conf, int *is_config_error,
                           char *errstr, size_t errstr_size)
{
        kb_issuer_t *is = calloc(1, sizeof(*is));
        char *pass = NULL;
        size_t pass_len = 0, i;
        const char *path;
        char kerr[512];

        *is_config_error = 1;
        if (!is) {
                kb_snprintf(errstr, errstr_size, "out of memory");
                *is_config_error = 0;
                return NULL;
        }
        is->conf = conf;
        if (kb_conf_check(conf, KB_SCOPE_ISSUER, errstr, errstr_size))
                goto fail;
        copy_opt(conf, "application_id", is->app_id, sizeof(is->app_id));
        copy_opt(conf, "issuer.request_topic", is->request_topic,
                 sizeof(is->request_topic));
        copy_opt(conf, "issuer.token_topic", is->token_topic,
                 sizeof(is->token_topic));
        copy_opt(conf, "issuer.dlq_topic", is->dlq_topic,
                 sizeof(is->dlq_topic));
        copy_opt(conf, "issuer.state_topic", is->state_topic,
                 sizeof(is->state_topic));
        is->default_ttl = (int)kb_conf_get_int(conf, "issuer.default_ttl_s");
        is->dedup_window = kb_conf_get_int(conf, "issuer.dedup_window_s");
        if (kb_conf_is_set(conf, "keys.passphrase") &&
            kb_conf_get_secret(conf, "keys.passphrase", &pass, &pass_len,
                               errstr, errstr_size))
                goto fail;
        path = kb_conf_get(conf, "keys.sign_secret");
        is->sign = kb_key_load_secret(path, pass, pass_len, kerr, sizeof(kerr));
        if (pass)
                kb_conf_secret_free(pass, pass_len);
        if (!is->sign) {
                kb_snprintf(errstr, errstr_size, "%s: keys.sign_secret: %s",
                            kb_conf_origin(conf, "keys.sign_secret"), kerr);
                goto fail;
        }
        if (kb_key_type(is->sign) != KB_KEY_SIGN) {
                kb_snprintf(errstr, errstr_size,
                            "%s: keys.sign_secret: not an ed25519 key",
                            kb_conf_origin(conf, "keys.sign_secret"));
                goto fail;
        }
        if (kb_partners_load(&is->partners, conf, KB_SCOPE_ISSUER, errstr,
                             errstr_size))
                goto fail;
        is->seen =
            kb_seen_new(conf, is->state_topic, is->dedup_window, "issuer");
        is->nparts = kb_hmap_new();
        if (!is->seen || !is->nparts) {
                kb_snprintf(errstr, errstr_size, "out of memory");
                goto fail;
        }
        is->partner_topics = calloc(is->partners.n + 1, sizeof(char *));
        if (!is->partner_topics) {
                kb_snprintf(errstr, errstr_size, "out of memory");
                goto fail;
        }
        for (i = 0; i < is->partners.n; i++) {
                is->partner_topics[i] = malloc(KB_TOPIC_MAX);
                if (!is->partner_topics[i] ||
                    kb_conf_expand(is->token_topic, token_topic_lookup,
                                   is->partners.v[i].application_id,
                                   is->partner_topics[i], KB_TOPIC_MAX)) {
                        kb_snprintf(errstr, errstr_size,
                                    "%s: issuer.token_topic: cannot render "
                                    "for partner %s",
                                    kb_conf_origin(conf, "issuer.token_topic"),
                                    is->partners.v[i].name);
                        goto fail;
                }
        }
        is->vendor = kb_vendor_new(conf, errstr, errstr_size);
        if (!is->vendor)
                goto fail;
        *is_config_error = 0;
        return is;
fail:
        kb_issuer_destroy(is);
        return NULL;
}

static void log_stats(kb_issuer_t *is)
{
        kb_pipeline_stats_t ps;
        kb_vendor_stats_t vs;

        kb_pipeline_stats(is->pl, &ps);
        kb_vendor_stats(is->vendor, &vs);
        kb_log_info("issuer",
                    "consumed %llu, published %llu, dead-lettered %llu, "
                    "repeats %llu, in flight %lld, txns %llu (aborted %llu, "
                    "%llu/%llu ms committing/blocking), "
                    "vendor ok %llu retried %llu 429s %llu",
                    (unsigned long long)ps.consumed,
                    (unsigned long long)is->n_published,
                    (unsigned long long)is->n_dead,
                    (unsigned long long)is->n_dup, (long long)ps.in_flight,
                    (unsigned long long)ps.txn_commits,
                    (unsigned long long)ps.txn_aborts,
                    (unsigned long long)(ps.txn_us / 1000),
                    (unsigned long long)(ps.txn_offsets_us / 1000),
                    (unsigned long long)vs.ok, (unsigned long long)vs.retried,
                    (unsigned long long)vs.http_429);
}

int kb_issuer_run(kb_issuer_t *is, volatile sig_atomic_t *stop, char *errstr,
                  size_t errstr_size)
{
        static const kb_pipeline_ops_t ops = { op_start, op_poll,
                                               op_has_capacity, op_on_assign,
                                               op_on_finish };
        const char *topics[2];
        const char **outs;
        kb_pipeline_conf_t pc;
        size_t i;
        int r;

        is->stop = stop;
        memset(&pc, 0, sizeof(pc));
        if (kb_daemon_kafka_confs(
                is->conf, kb_conf_get(is->conf, "issuer.group_id"),
                "issuer.transactional_id", &pc, errstr, errstr_size))
                return KB_ERR_CONFIG;
        topics[0] = is->request_topic;
        topics[1] = NULL;
        pc.topics = topics;
        if (kb_seen_load(is->seen) == -1) {
                kb_snprintf(errstr, errstr_size,
                            "cannot read state topic %s (does it exist?)",
                            is->state_topic);
                rd_kafka_conf_destroy(pc.consumer_conf);
                rd_kafka_conf_destroy(pc.producer_conf);
                return KB_ERR_KAFKA;
        }
        /* every topic we write to: each partner's token topic, the dead
         * letters, the state */
        outs = calloc(is->partners.n + 3, sizeof(*outs));
        if (!outs) {
                kb_snprintf(errstr, errstr_size, "out of memory");
                rd_kafka_conf_destroy(pc.consumer_conf);
                rd_kafka_conf_destroy(pc.producer_conf);
                return KB_ERR_NOMEM;
        }
        outs[0] = is->dlq_topic;
        outs[1] = is->state_topic;
        for (i = 0; i < is->partners.n; i++)
                outs[2 + i] = is->partner_topics[i];
        pc.out_topics = outs;
        is->pl = kb_pipeline_new(&pc, &ops, is, errstr, errstr_size);
        free(outs);
        if (!is->pl)
                return KB_ERR_KAFKA;
        kb_log_notice("issuer",
                      "running: %s -> %s (application %s, %zu "
                      "partner(s))",
                      is->request_topic, is->token_topic, is->app_id,
                      is->partners.n);
        is->next_stats_ms = kb_mono_ms() + STATS_EVERY_MS;
        r = kb_pipeline_run(is->pl, stop);
        log_stats(is);
        if (is->fatal) {
                kb_snprintf(errstr, errstr_size,
                            "stopped on a vendor or resource failure (see "
                            "log); unfinished requests were not committed");
                r = KB_ERR_STATE;
        } else if (r != KB_OK) {
                kb_snprintf(errstr, errstr_size, "Kafka failure (see log)");
        }
        return r;
}

void kb_issuer_destroy(kb_issuer_t *is)
{
        job_t *job, *next;

        if (!is)
                return;
        /* Vendor first: its callbacks finish (orphaned) records, which the
         * pipeline must still exist for. */
        kb_vendor_destroy(is->vendor);
        for (job = is->held; job; job = next) {
                next = job->next;
                kb_rec_done(job->rec); /* orphaned by the stop: freed */
        }
        kb_pipeline_destroy(is->pl);
        if (is->partner_topics) {
                size_t i;
                for (i = 0; i < is->partners.n; i++)
                        free(is->partner_topics[i]);
                free(is->partner_topics);
        }
        kb_partners_free(&is->partners);
        kb_key_destroy(is->sign);
        kb_seen_destroy(is->seen);
        if (is->nparts) {
                kb_hmap_iter_t it = KB_HMAP_ITER_INIT;
                void *v;
                while (kb_hmap_next(is->nparts, &it, NULL, NULL, &v))
                        free(v);
                kb_hmap_destroy(is->nparts);
        }
        free(is);
}

/* ---- one request from the command line ---- */

typedef struct one_s {
        int done, status, err;
        char detail[256];
        char *token; /* sodium_malloc()ed copy */
        size_t token_len;
        kb_session_kind_t kind;
} one_t;

static void one_done(const kb_vendor_result_t *res, void *opaque)
{
        one_t *o = opaque;
        const char *tok = kb_json_get_str(res->body, "share_token");
        const char *k = kb_json_get_str(res->body, "session_kind");

        o->done = 1;
        o->status = res->status;
        o->err = res->err;
        kb_strlcpy(o->detail, res->detail, sizeof(o->detail));
        o->kind = k && kb_session_kind_parse(k) ? kb_session_kind_parse(k)
                                                : KB_SESSION_USER;
        if (res->err == KB_OK && tok) {
                o->token_len = strlen(tok);
                o->token = sodium_malloc(o->token_len + 1);
                if (o->token)
                        memcpy(o->token, tok, o->token_len + 1);
        }
}

static int publish_one(kb_issuer_t *is, const kb_envelope_fields_t *f,
                       const char *topic, const char *env, size_t env_len,
                       char *errstr, size_t errstr_size)
{
        const char *extra[3] = { "transactional.id", NULL, NULL };
        char tid[128], uuid[37], errbuf[512];
        rd_kafka_conf_t *rkc;
        rd_kafka_t *rk;
        rd_kafka_error_t *error = NULL;
        rd_kafka_resp_err_t err;
        char *stxt = NULL;
        size_t slen;
        int r = KB_ERR_KAFKA;

        kb_uuid4(uuid);
        kb_snprintf(tid, sizeof(tid), "kyc-bridge-share-%s", uuid);
        extra[1] = tid;
        rkc = kb_kafka_conf_new(is->conf, RD_KAFKA_PRODUCER, extra, errstr,
                                errstr_size);
        if (!rkc)
                return KB_ERR_CONFIG;
        rk = rd_kafka_new(RD_KAFKA_PRODUCER, rkc, errbuf, sizeof(errbuf));
        if (!rk) {
                rd_kafka_conf_destroy(rkc);
                kb_snprintf(errstr, errstr_size, "producer: %s", errbuf);
                return KB_ERR_KAFKA;
        }
        if ((error = rd_kafka_init_transactions(rk, 30000)) ||
            (error = rd_kafka_begin_transaction(rk)))
                goto out;
        stxt = kb_seen_record(is->seen, f->share_id, "published", NULL, &slen);
        if (!stxt) {
                kb_snprintf(errstr, errstr_size, "out of memory");
                r = KB_ERR_NOMEM;
                goto abort;
        }
        err = rd_kafka_producev(rk, RD_KAFKA_V_TOPIC(topic),
                                RD_KAFKA_V_KEY(f->for_application_id,
                                               strlen(f->for_application_id)),
                                RD_KAFKA_V_VALUE((void *)env, env_len),
                                RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
                                RD_KAFKA_V_HEADERS(envelope_headers(f)),
                                RD_KAFKA_V_END);
        if (!err)
                err = rd_kafka_producev(
                    rk, RD_KAFKA_V_TOPIC(is->state_topic),
                    RD_KAFKA_V_KEY(f->share_id, strlen(f->share_id)),
                    RD_KAFKA_V_VALUE((void *)stxt, slen),
                    RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_END);
        if (err) {
                kb_snprintf(errstr, errstr_size, "produce: %s",
                            rd_kafka_err2str(err));
                goto abort;
        }
        error = rd_kafka_commit_transaction(rk, 60000);
        if (!error) {
                r = KB_OK;
                goto out;
        }
abort:
        if (!error)
                error = rd_kafka_abort_transaction(rk, 30000);
out:
        if (error) {
                kb_snprintf(errstr, errstr_size, "transaction: %s",
                            rd_kafka_error_string(error));
                rd_kafka_error_destroy(error);
                r = KB_ERR_KAFKA;
        }
        free(stxt);
        rd_kafka_destroy(rk);
        return r;
}

int kb_issuer_share_one(kb_issuer_t *is, const kb_share_req_t *req, int publish,
                        char **env_out, size_t *env_len, char *errstr,
                        size_t errstr_size)
{
        const kb_partner_t *partner;
        kb_envelope_fields_t f;
        one_t one;
        char topic[512], *env = NULL;
        size_t elen = 0;
        int r, ttl;

        memset(&one, 0, sizeof(one));
        if (env_out)
                *env_out = NULL;
        partner = kb_partners_find(&is->partners, req->for_application_id);
        if (!partner) {
                kb_snprintf(errstr, errstr_size,
                            "%s is not a configured partner",
                            req->for_application_id);
                return KB_ERR_NOT_FOUND;
        }
        ttl = req->ttl_in_seconds ? req->ttl_in_seconds : is->default_ttl;
        r = kb_vendor_share(is->vendor, req->session_id,
                            req->for_application_id, ttl, one_done, &one);
        if (r == KB_OK)
                r = kb_vendor_wait(
                    is->vendor,
                    kb_conf_get_int(is->conf, "vendor.timeout_ms") * 4);
        if (r != KB_OK || !one.done) {
                kb_snprintf(errstr, errstr_size, "vendor: %s",
                            kb_err2str(r ? r : KB_ERR_TIMEOUT));
                r = r ? r : KB_ERR_TIMEOUT;
                goto out;
        }
        if (one.err != KB_OK || !one.token) {
                kb_snprintf(errstr, errstr_size, "vendor answered %d: %s",
                            one.status, one.detail[0] ? one.detail : "?");
                r = KB_ERR_HTTP;
                goto out;
        }
        r = seal_envelope(is, req, partner, ttl, one.token, one.token_len,
                          one.kind, &f, &env, &elen, topic, sizeof(topic));
        if (r != KB_OK) {
                kb_snprintf(errstr, errstr_size, "seal: %s", kb_err2str(r));
                goto out;
        }
        if (publish) {
                r = publish_one(is, &f, topic, env, elen, errstr, errstr_size);
                if (r == KB_OK)
                        kb_log_info("share", "share %s: published to %s",
                                    f.share_id, topic);
        }
        if (r == KB_OK && env_out) {
                *env_out = env;
                *env_len = elen;
                env = NULL;
        }
out:
        free(env);
        if (one.token)
                sodium_free(one.token);
        return r;
}
