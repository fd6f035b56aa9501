/* issuer.c -- the issuer daemon: share requests in, sealed envelopes out */
#include "issuer.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "failpoint.h"
#include "issuer_rules.h"
#include "json.h"
#include "jview.h"
#include "jwt.h"
#include "kafka.h"
#include "kb_envelope.h"
#include "kb_keys.h"
#include "log.h"
#include "partners.h"
#include "pipeline.h"
#include "processor.h"
#include "seen.h"
#include "trace.h"
#include "utf8.h"
#include "util.h"
#include "vendor.h"
#include "verdict.h"
#include "watchdog.h"

#define REQ_MAX_BYTES 65536
#define KB_TOPIC_MAX  256

/* One share request in flight; its lifetime is kb_job_t's (processor.h). */
typedef struct job_s {
        kb_job_t base; /* first */
        kb_share_req_t req;
        const kb_partner_t *partner;
        int ttl;
        int mint_status;       /* the mint's answer, while a follow-up */
        char mint_detail[256]; /* question about it is pending */
} job_t;

struct kb_issuer_s {
        kb_proc_t proc; /* first */
        kb_key_t *sign;
        char token_topic[256];
        int default_ttl;
        uint64_t n_published, n_dup;
        kb_wh_rules_t *rules; /* with a webhook intake, else NULL */
};

/* ---- requests ---- */

/* An id as the envelope takes it (docs/envelope.md, "Value rules"). */
static int valid_id(const char *s)
{
        return kb_envelope_id_valid(s, strlen(s));
}

/* String member @p key decoded into @p out (@p outsz bytes) when it is
 * there, a string without "\u0000" (kb_json_get_str()'s reading), fits
 * and @p ok says so; else @p out is all zeros and -1. */
static int req_str(const kb_jview_t *jv, const char *key,
                   int (*ok)(const char *s, size_t len), char *out,
                   size_t outsz)
{
        size_t len;

        if (kb_jval_str(kb_jview_get(jv, key), out, outsz, &len) == 0 &&
            ok(out, len))
                return 0;
        memset(out, 0, outsz); /* as if never written */
        return -1;
}

static int is_uuid_len(const char *s, size_t len)
{
        (void)len;
        return kb_is_uuid(s);
}

/* A member that json-c would hold: present and not null (json-c represents
 * null as NULL, so a null member counted as absent). */
static int req_has(const kb_jview_t *jv, const char *key)
{
        kb_jtype_t t = kb_jval_type(kb_jview_get(jv, key));

        return t != KB_JV_ABSENT && t != KB_JV_NULL;
}

/* An integer member in [min, max] as kb_json_get_i64() reads one: a JSON
 * number without fraction or exponent (json-c makes those doubles). 0 or
 * -1. */
static int req_int(const kb_jview_t *jv, const char *key, int64_t min,
                   int64_t max, int64_t *out)
{
        kb_jval_t v = kb_jview_get(jv, key);
        char num[24];

        if (kb_jval_type(v) != KB_JV_NUMBER || v.len >= sizeof(num) ||
            memchr(v.p, '.', v.len) || memchr(v.p, 'e', v.len) ||
            memchr(v.p, 'E', v.len))
                return -1;
        memcpy(num, v.p, v.len);
        num[v.len] = '\0';
        return kb_parse_i64(num, min, max, out);
}

/*
 * Read from a view of the record's text: no tree. Every check, its order
 * and its reason are the ones the json-c reading had (test_daemons and
 * test_issuer_path hold both to the same answers).
 */
int kb_share_req_parse(const void *buf, size_t len, kb_share_req_t *req,
                       char *errstr, size_t errstr_size)
{
        static const char *const known[] = {
                "share_id",       "session_id",  "for_application_id",
                "ttl_in_seconds", "vendor_data", NULL
        };
        kb_jview_t jv;
        char jerr[128];
        int64_t ttl;
        size_t i, k;
        int r = KB_ERR_MALFORMED;

        memset(req, 0, sizeof(*req));
        if (len > REQ_MAX_BYTES) {
                kb_snprintf(errstr, errstr_size, "request over %d bytes",
                            REQ_MAX_BYTES);
                return KB_ERR_TOO_LARGE;
        }
        if (kb_jview_init(&jv, buf, len, 16, jerr, sizeof(jerr))) {
                kb_snprintf(errstr, errstr_size, "%s", jerr);
                return KB_ERR_MALFORMED;
        }
        if (kb_jval_type(jv.root) == KB_JV_NULL) {
                /* kb_json_parse()'s answer */
                kb_snprintf(errstr, errstr_size,
                            "JSON null at the top level is not supported");
                goto out;
        }
        if (kb_jval_type(jv.root) != KB_JV_OBJECT) {
                kb_snprintf(errstr, errstr_size, "request is not an object");
                goto out;
        }
        /* The share_id first, so that a dead letter for an otherwise bad
         * request still names it. */
        if (req_str(&jv, "share_id", kb_envelope_id_valid, req->share_id,
                    sizeof(req->share_id))) {
                kb_snprintf(errstr, errstr_size,
                            "share_id: required string of 1-128 bytes of "
                            "UTF-8 without control characters");
                goto out;
        }
        for (i = 0; i < jv.n; i++) {
                for (k = 0; known[k]; k++)
                        if (kb_jval_key_is(jv.m[i].key, known[k]))
                                break;
                if (!known[k]) {
                        kb_snprintf(errstr, errstr_size,
                                    "unknown member in request");
                        goto out;
                }
        }
        if (req_str(&jv, "session_id", is_uuid_len, req->session_id,
                    sizeof(req->session_id))) {
                kb_snprintf(errstr, errstr_size,
                            "session_id: required UUID string");
                goto out;
        }
        if (req_str(&jv, "for_application_id", is_uuid_len,
                    req->for_application_id, sizeof(req->for_application_id))) {
                kb_snprintf(errstr, errstr_size,
                            "for_application_id: required UUID string");
                goto out;
        }
        if (req_has(&jv, "ttl_in_seconds")) {
                if (req_int(&jv, "ttl_in_seconds", 60, 86400, &ttl)) {
                        kb_snprintf(errstr, errstr_size,
                                    "ttl_in_seconds: integer from 60 to "
                                    "86400");
                        goto out;
                }
                req->ttl_in_seconds = (int)ttl;
        }
        if (req_has(&jv, "vendor_data") &&
            req_str(&jv, "vendor_data", kb_envelope_id_valid, req->vendor_data,
                    sizeof(req->vendor_data))) {
                kb_snprintf(errstr, errstr_size,
                            "vendor_data: string of 1-128 bytes of "
                            "UTF-8 without control characters");
                goto out;
        }
        r = KB_OK;
out:
        kb_jview_clear(&jv);
        return r;
}

/* ---- outputs ---- */

static json_object *req_extra(const kb_job_t *base)
{
        const kb_share_req_t *req = &((const job_t *)base)->req;
        json_object *x = json_object_new_object();

        if (!x)
                return NULL;
        if (req->session_id[0])
                kb_json_add_str(x, "session_id", req->session_id);
        if (req->for_application_id[0])
                kb_json_add_str(x, "for_application_id",
                                req->for_application_id);
        return x;
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
        int64_t exp = 0;
        int r;

        memset(f, 0, sizeof(*f));
        kb_strlcpy(f->issuer_application_id, is->proc.app_id,
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
        if (kb_jwt_exp_unverified(token, token_len, &exp) != KB_OK)
                exp = 0;
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

/* The envelope record's headers: what it is, and the trace context
 * (docs/pipeline.md, "Trace context"). */
static rd_kafka_headers_t *envelope_headers(const kb_envelope_fields_t *f,
                                            const kb_trace_t *tr,
                                            int64_t requested_at)
{
        rd_kafka_headers_t *hdrs = rd_kafka_headers_new(8);

        if (!hdrs)
                return NULL;
        if (kb_kafka_trace_add(hdrs, tr, requested_at) != KB_OK) {
                rd_kafka_headers_destroy(hdrs);
                return NULL;
        }
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
 * all the work: spread by a hash of the share_id instead. UA while the
 * topic's size is not known (then the key decides). Never blocks: the
 * engine learns partition counts from metadata it fetches itself.
 */
static int32_t token_partition(kb_issuer_t *is, const char *topic,
                               const char *share_id)
{
        int n = kb_pipeline_partition_count(is->proc.pl, topic);
        uint32_t h = 2166136261u; /* FNV-1a */
        const unsigned char *p;

        if (n <= 0)
                return RD_KAFKA_PARTITION_UA;
        for (p = (const unsigned char *)share_id; *p; p++)
                h = (h ^ *p) * 16777619u;
        return (int32_t)(h % (uint32_t)n);
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
        hdrs = envelope_headers(&f, &job->base.tr, job->base.requested_at);
        if (!hdrs) {
                free(env);
                return KB_ERR_NOMEM;
        }
        r = kb_rec_produce(job->base.rec, topic,
                           token_partition(is, topic, f.share_id),
                           f.for_application_id, strlen(f.for_application_id),
                           env, env_len, hdrs);
        free(env);
        if (r == KB_OK)
                r = kb_proc_state(&job->base, "published", NULL);
        if (r == KB_OK) {
                /* the digest only for a line that is written: a hash of
                 * the token per record otherwise */
                if (kb_log_level >= KB_LOG_DEBUG) {
                        char d[KB_DIGEST_STR_BYTES];
                        kb_digest_str(token, token_len, d);
                        kb_log_debug("issuer",
                                     "share %s: envelope for %s, token %s, "
                                     "expires %lld",
                                     f.share_id, f.for_application_id, d,
                                     (long long)f.expires_at);
                }
                is->n_published++;
        }
        return r;
}

/* Read in place: no tree, no copy of the token (issuer.h). */
int kb_share_answer_read(const kb_jview_t *jv, const char **tok, size_t *tl,
                         char **owned, kb_session_kind_t *kind)
{
        kb_jval_t t;
        char k[16];

        *tok = NULL;
        *tl = 0;
        *owned = NULL;
        *kind = KB_SESSION_USER;
        if (!jv)
                return KB_ERR_MALFORMED;
        if (kb_jval_str(kb_jview_get(jv, "session_kind"), k, sizeof(k), NULL) ==
                0 &&
            kb_session_kind_parse(k))
                *kind = kb_session_kind_parse(k);
        t = kb_jview_get(jv, "share_token");
        if (kb_jval_str_raw(t, tok, tl) == 0) {
                if (*tl)
                        return KB_OK;
                *tok = NULL;
                return KB_ERR_MALFORMED;
        }
        if (kb_jval_type(t) != KB_JV_STRING)
                return KB_ERR_MALFORMED;
        /* decoded, never longer than the text */
        if (!(*owned = sodium_malloc(t.len)))
                return KB_ERR_NOMEM;
        if (kb_jval_str(t, *owned, t.len, tl) == -1 || !*tl) {
                sodium_free(*owned);
                *owned = NULL;
                *tl = 0;
                return KB_ERR_MALFORMED;
        }
        *tok = *owned;
        return KB_OK;
}

/* The vendor minted a token (201): seal and publish it. */
static void minted(kb_issuer_t *is, job_t *job, const kb_jview_t *answer)
{
        kb_session_kind_t kind;
        const char *tok;
        char why[320], *owned;
        size_t tl;
        int r;

        /* the vendor minted (and may bill for) a token no output holds yet:
         * a crash here must end in one envelope after the restart */
        KB_FAILPOINT("issuer.after_mint");
        r = kb_share_answer_read(answer, &tok, &tl, &owned, &kind);
        if (r == KB_ERR_NOMEM) {
                kb_proc_hold(&job->base, "out of memory");
                return;
        }
        if (r != KB_OK) {
                kb_proc_dead_letter(&job->base, "mint", "vendor_bad_response",
                                    "201 without a share_token", 201);
                return;
        }
        r = publish_envelope(is, job, tok, tl, kind);
        if (owned)
                sodium_free(owned);
        if (r == KB_ERR_TOO_LARGE || r == KB_ERR_INVALID_ARG) {
                kb_proc_dead_letter(&job->base, "seal", "token_unsealable",
                                    kb_err2str(r), 201);
        } else if (r != KB_OK) {
                kb_snprintf(why, sizeof(why), "sealing failed: %s",
                            kb_err2str(r));
                kb_proc_hold(&job->base, why);
        } else {
                kb_proc_done(&job->base);
        }
}

static void ask_done(const kb_vendor_result_t *res, void *opaque);

/* Acts on the mint's final answer (@p ans: what the follow-up question
 * about the source session said, KB_ANS_NONE before it was asked). */
static void decide(job_t *job, int status, int err, kb_answer_t ans,
                   const char *detail, const kb_jview_t *answer)
{
        kb_issuer_t *is = (kb_issuer_t *)job->base.proc;
        kb_verdict_t v = kb_verdict(KB_STEP_MINT, status, err, ans);
        char why[320], pd[256];
        int r;

        switch (v.act) {
        case KB_ACT_PUBLISH:
                minted(is, job, answer);
                return;
        case KB_ACT_ASK:
                /* 400 and 404 each have two meanings: the source
                 * session's own state tells which */
                job->mint_status = status;
                kb_strlcpy(job->mint_detail, detail, sizeof(job->mint_detail));
                kb_vendor_set_trace(is->proc.vendor, job->base.tr.traceparent);
                r = kb_vendor_decision(is->proc.vendor, job->req.session_id,
                                       ask_done, job);
                kb_vendor_set_trace(is->proc.vendor, NULL);
                if (r)
                        kb_proc_hold(&job->base, "cannot queue a vendor call");
                return;
        case KB_ACT_DEAD_LETTER:
                kb_proc_dead_letter(&job->base, v.stage, v.reason, detail,
                                    status);
                return;
        default:
                kb_str_printable(pd, sizeof(pd), detail, strlen(detail));
                kb_snprintf(why, sizeof(why), "vendor refused us (%d %s)",
                            status, pd);
                kb_proc_hold(&job->base, why);
        }
}

static void share_done(const kb_vendor_result_t *res, void *opaque)
{
        job_t *job = opaque;
        if (kb_proc_vendor_settled(&job->base, res))
                return;
        decide(job, res->status, res->err, KB_ANS_NONE, res->detail, res->view);
}

static void ask_done(const kb_vendor_result_t *res, void *opaque)
{
        job_t *job = opaque;
        kb_answer_t ans = KB_ANS_UNKNOWN;

        if (kb_proc_vendor_settled(&job->base, res))
                return;
        if (res->status == 404)
                ans = KB_ANS_GONE;
        else if (res->err == KB_OK && res->body)
                ans = kb_status_finished(kb_json_get_str(res->body, "status"))
                          ? KB_ANS_FINISHED
                          : KB_ANS_UNFINISHED;
        decide(job, job->mint_status, KB_ERR_HTTP, ans, job->mint_detail, NULL);
}

/* ---- the processor's decisions ---- */

/* A share request: the processor set the job's trace context. */
static void issuer_start(kb_job_t *base)
{
        job_t *job = (job_t *)base;
        kb_issuer_t *is = (kb_issuer_t *)base->proc;
        const void *val;
        size_t len;
        char err[256];
        int r;

        val = kb_rec_value(base->rec, &len);
        r = kb_share_req_parse(val, len, &job->req, err, sizeof(err));
        /* even a bad request names its share_id when it can */
        kb_strlcpy(base->share_id, job->req.share_id, sizeof(base->share_id));
        if (r != KB_OK) {
                kb_proc_dead_letter(base, "request",
                                    r == KB_ERR_TOO_LARGE ? "request_too_large"
                                                          : "malformed_request",
                                    err, 0);
                return;
        }
        r = kb_proc_claim(base);
        if (r == 1) {
                is->n_dup++;
                kb_log_info("issuer",
                            "share %s: repeated within the dedup "
                            "window; not published again",
                            base->share_id);
                kb_proc_done(base);
        }
        if (r != 0)
                return;
        job->partner =
            kb_partners_find(&is->proc.partners, job->req.for_application_id);
        if (!job->partner) {
                kb_proc_dead_letter(base, "request", "unknown_partner",
                                    "for_application_id is not a configured "
                                    "partner",
                                    0);
                return;
        }
        /* The vendor compares application ids case-insensitively, the
         * envelope byte for byte: use the id the partner configured. */
        kb_strlcpy(job->req.for_application_id, job->partner->application_id,
                   sizeof(job->req.for_application_id));
        job->ttl =
            job->req.ttl_in_seconds ? job->req.ttl_in_seconds : is->default_ttl;
        kb_vendor_set_trace(is->proc.vendor, job->base.tr.traceparent);
        r = kb_vendor_share(is->proc.vendor, job->req.session_id,
                            job->req.for_application_id, job->ttl, share_done,
                            job);
        kb_vendor_set_trace(is->proc.vendor, NULL);
        if (r != KB_OK)
                kb_proc_hold(base, kb_err2str(r));
}

static void issuer_counters(const kb_proc_t *p, char *buf, size_t bufsz)
{
        const kb_issuer_t *is = (const kb_issuer_t *)p;
        kb_wh_rules_stats_t rs;

        kb_snprintf(buf, bufsz, "published %llu, repeats %llu",
                    (unsigned long long)is->n_published,
                    (unsigned long long)is->n_dup);
        if (is->rules) {
                size_t n = strlen(buf);
                kb_wh_rules_stats(is->rules, &rs);
                kb_snprintf(buf + n, bufsz - n,
                            ", rules matched %llu unmatched %llu "
                            "unverified %llu shares %llu",
                            (unsigned long long)rs.matched,
                            (unsigned long long)rs.unmatched,
                            (unsigned long long)rs.unverified,
                            (unsigned long long)rs.shares);
        }
}

/* A verified webhook delivery: the sharing rules' share requests, to the
 * request topic (an HTTP thread; the rules are read-only). */
static int issuer_webhook(void *opaque, const kb_wh_delivery_t *dlv,
                          kb_wh_records_t *out, char *errstr,
                          size_t errstr_size)
{
        kb_issuer_t *is = opaque; /* its kb_proc_t is the first member */

        return kb_wh_rules_action(is->rules, dlv, out, errstr, errstr_size);
}

static void issuer_free(kb_proc_t *p);

static const kb_proc_ops_t issuer_ops = {
        .role = "issuer",
        .scope = KB_SCOPE_ISSUER,
        .job_size = sizeof(job_t),
        .dead_letter_state = 1,
        .requested_at_from_record = 1, /* the share is requested here */
        .start = issuer_start,
        .dlq_extra = req_extra,
        .counters = issuer_counters,
        .destroy = issuer_free,
        .webhook_action = issuer_webhook,
};

/* ---- life cycle ---- */

kb_issuer_t *kb_issuer_new(const kb_conf_t *conf, int *is_config_error,
                           char *errstr, size_t errstr_size)
{
        kb_issuer_t *is = calloc(1, sizeof(*is));
        char *pass = NULL, topic[KB_TOPIC_MAX], kerr[512];
        size_t pass_len = 0, i;
        const char *v;
        int r, e;

        *is_config_error = 0;
        /* a test build's KB_FAILPOINTS; a bad one stops the start */
        if (KB_FAILPOINTS_SETUP(errstr, errstr_size)) {
                *is_config_error = 1;
                free(is);
                return NULL;
        }
        if (!is) {
                kb_snprintf(errstr, errstr_size, "out of memory");
                return NULL;
        }
        r = kb_proc_init(&is->proc, &issuer_ops, conf,
                         kb_conf_get_int(conf, "issuer.dedup_window_s"), errstr,
                         errstr_size);
        if (r != KB_OK)
                goto fail;
        r = KB_ERR_CONFIG;
        v = kb_conf_get(conf, "issuer.token_topic");
        kb_strlcpy(is->token_topic, v ? v : "", sizeof(is->token_topic));
        is->default_ttl = (int)kb_conf_get_int(conf, "issuer.default_ttl_s");
        if (kb_conf_is_set(conf, "keys.passphrase") &&
            (e = kb_conf_get_secret(conf, "keys.passphrase", &pass, &pass_len,
                                    errstr, errstr_size)) != KB_OK) {
                if (e == KB_ERR_NOMEM)
                        goto nomem;
                goto fail;
        }
        v = kb_conf_get(conf, "keys.sign_secret");
        is->sign = kb_key_load_secret(v, pass, pass_len, kerr, sizeof(kerr));
        e = errno; /* ENOMEM: out of memory, not the key file's fault */
        if (pass)
                kb_conf_secret_free(pass, pass_len);
        if (!is->sign && e == ENOMEM)
                goto nomem;
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
        /* metrics: key ids in use (ops_http.h) */
        (void)kb_ops_http_key_id(is->proc.opsh, "sign", kb_key_id(is->sign));
        if (kb_proc_topic(&is->proc, 0,
                          kb_conf_get(conf, "issuer.request_topic")))
                goto nomem;
        /* every topic we write to: each partner's token topic too */
        for (i = 0; i < is->proc.partners.n; i++) {
                if (kb_conf_expand(is->token_topic, token_topic_lookup,
                                   is->proc.partners.v[i].application_id, topic,
                                   sizeof(topic))) {
                        kb_snprintf(errstr, errstr_size,
                                    "%s: issuer.token_topic: cannot render "
                                    "for partner %s",
                                    kb_conf_origin(conf, "issuer.token_topic"),
                                    is->proc.partners.v[i].name);
                        goto fail;
                }
                if (kb_proc_topic(&is->proc, 1, topic))
                        goto nomem;
        }
        /* sharing rules: share requests from webhook deliveries */
        r = kb_issuer_rules_load(conf, &is->proc.partners,
                                 is->proc.webhook != NULL, &is->rules, errstr,
                                 errstr_size);
        if (r != KB_OK)
                goto fail;
        /* metrics: share requests by rule (issuer_rules.h) */
        kb_issuer_rules_metrics(is->rules, is->proc.opsh);
        return is;
nomem:
        r = KB_ERR_NOMEM;
fail:
        return kb_proc_new_failed(&is->proc, r, is_config_error, errstr,
                                  errstr_size);
}

static void issuer_free(kb_proc_t *p)
{
        kb_issuer_destroy((kb_issuer_t *)p);
}

void kb_issuer_destroy(kb_issuer_t *is)
{
        if (!is)
                return;
        kb_proc_destroy(&is->proc); /* stops the intake first */
        KB_FAILPOINTS_REPORT();
        kb_wh_rules_destroy(is->rules);
        kb_key_destroy(is->sign);
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
        const char *tok;
        char *owned;
        size_t tl;

        o->done = 1;
        o->status = res->status;
        o->err = res->err;
        kb_strlcpy(o->detail, res->detail, sizeof(o->detail));
        if (kb_share_answer_read(res->view, &tok, &tl, &owned, &o->kind) !=
                KB_OK ||
            res->err != KB_OK)
                tok = NULL;
        if (tok) {
                o->token_len = tl;
                o->token = sodium_malloc(tl + 1);
                if (o->token) {
                        memcpy(o->token, tok, tl);
                        o->token[tl] = '\0';
                }
        }
        if (owned)
                sodium_free(owned);
}

static int publish_one(kb_issuer_t *is, const kb_envelope_fields_t *f,
                       const kb_trace_t *tr, int64_t requested_at,
                       const char *topic, const char *env, size_t env_len,
                       char *errstr, size_t errstr_size)
{
        const char *extra[3] = { "transactional.id", NULL, NULL };
        char tid[128], uuid[37], errbuf[512];
        rd_kafka_conf_t *rkc;
        rd_kafka_t *rk;
        rd_kafka_error_t *error = NULL;
        rd_kafka_resp_err_t err;
        kb_watchdog_t *wd;
        char *stxt = NULL;
        size_t slen;
        int r = KB_ERR_KAFKA;

        kb_uuid4(uuid);
        kb_snprintf(tid, sizeof(tid), "kyc-bridge-share-%s", uuid);
        extra[1] = tid;
        rkc = kb_kafka_conf_new(is->proc.conf, RD_KAFKA_PRODUCER, extra, errstr,
                                errstr_size);
        if (!rkc)
                return KB_ERR_CONFIG;
        if (!(wd = kb_watchdog_new("share", NULL, NULL))) {
                rd_kafka_conf_destroy(rkc);
                kb_snprintf(errstr, errstr_size,
                            "cannot start the watchdog thread");
                return KB_ERR_NOMEM;
        }
        rk = rd_kafka_new(RD_KAFKA_PRODUCER, rkc, errbuf, sizeof(errbuf));
        if (!rk) {
                rd_kafka_conf_destroy(rkc);
                kb_watchdog_destroy(wd);
                kb_snprintf(errstr, errstr_size, "producer: %s", errbuf);
                return KB_ERR_KAFKA;
        }
        /* each transactional call under the watchdog (watchdog.h) */
        kb_watchdog_arm(wd, "init_transactions",
                        30000 + KB_WATCHDOG_TXN_GRACE_MS);
        error = rd_kafka_init_transactions(rk, 30000);
        if (!error) {
                kb_watchdog_arm(wd, "begin_transaction",
                                KB_WATCHDOG_TXN_GRACE_MS);
                error = rd_kafka_begin_transaction(rk);
        }
        kb_watchdog_disarm(wd);
        if (error)
                goto out;
        stxt = kb_seen_record(is->proc.seen, f->share_id, "published", NULL,
                              &slen);
        if (!stxt) {
                kb_snprintf(errstr, errstr_size, "out of memory");
                r = KB_ERR_NOMEM;
                goto abort;
        }
        err = rd_kafka_producev(
            rk, RD_KAFKA_V_TOPIC(topic),
            RD_KAFKA_V_KEY(f->for_application_id,
                           strlen(f->for_application_id)),
            RD_KAFKA_V_VALUE((void *)env, env_len),
            RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
            RD_KAFKA_V_HEADERS(envelope_headers(f, tr, requested_at)),
            RD_KAFKA_V_END);
        if (!err)
                err = rd_kafka_producev(
                    rk, RD_KAFKA_V_TOPIC(kb_seen_topic(is->proc.seen)),
                    RD_KAFKA_V_KEY(f->share_id, strlen(f->share_id)),
                    RD_KAFKA_V_VALUE((void *)stxt, slen),
                    RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_END);
        if (err) {
                kb_snprintf(errstr, errstr_size, "produce: %s",
                            rd_kafka_err2str(err));
                goto abort;
        }
        kb_watchdog_arm(wd, "commit_transaction",
                        60000 + KB_WATCHDOG_TXN_GRACE_MS);
        error = rd_kafka_commit_transaction(rk, 60000);
        kb_watchdog_disarm(wd);
        if (!error) {
                r = KB_OK;
                goto out;
        }
abort:
        if (!error) {
                kb_watchdog_arm(wd, "abort_transaction",
                                30000 + KB_WATCHDOG_TXN_GRACE_MS);
                error = rd_kafka_abort_transaction(rk, 30000);
                kb_watchdog_disarm(wd);
        }
out:
        if (error) {
                kb_snprintf(errstr, errstr_size, "transaction: %s",
                            rd_kafka_error_string(error));
                rd_kafka_error_destroy(error);
                r = KB_ERR_KAFKA;
        }
        free(stxt);
        rd_kafka_destroy(rk);
        kb_watchdog_destroy(wd);
        return r;
}

int kb_issuer_share_one(kb_issuer_t *is, const kb_share_req_t *req, int publish,
                        char **env_out, size_t *env_len, char *errstr,
                        size_t errstr_size)
{
        const kb_partner_t *partner;
        kb_envelope_fields_t f;
        kb_share_req_t nreq;
        kb_trace_t tr;
        int64_t requested_at = kb_trace_wall_ms();
        one_t one;
        char topic[512], *env = NULL, saved[KB_LOG_TRACE_BYTES];
        size_t elen = 0;
        int r, ttl;

        memset(&one, 0, sizeof(one));
        if (env_out)
                *env_out = NULL;
        if (!valid_id(req->share_id) ||
            (req->vendor_data[0] && !valid_id(req->vendor_data))) {
                kb_snprintf(errstr, errstr_size,
                            "%s: 1-128 bytes of UTF-8 without control "
                            "characters",
                            valid_id(req->share_id) ? "vendor data"
                                                    : "share id");
                return KB_ERR_INVALID_ARG;
        }
        partner = kb_partners_find(&is->proc.partners, req->for_application_id);
        if (!partner) {
                char pf[64];
                kb_str_printable(pf, sizeof(pf), req->for_application_id,
                                 strlen(req->for_application_id));
                kb_snprintf(errstr, errstr_size,
                            "%s is not a configured partner", pf);
                return KB_ERR_NOT_FOUND;
        }
        /* as the daemon does: the id the partner configured */
        nreq = *req;
        kb_strlcpy(nreq.for_application_id, partner->application_id,
                   sizeof(nreq.for_application_id));
        req = &nreq;
        ttl = req->ttl_in_seconds ? req->ttl_in_seconds : is->default_ttl;
        /* a share from the command line starts a trace */
        kb_trace_child(&tr, NULL, 0, NULL, 0);
        kb_log_trace_push(tr.trace_id, saved);
        kb_vendor_set_trace(is->proc.vendor, tr.traceparent);
        r = kb_vendor_share(is->proc.vendor, req->session_id,
                            req->for_application_id, ttl, one_done, &one);
        kb_vendor_set_trace(is->proc.vendor, NULL);
        if (r == KB_OK)
                r = kb_vendor_wait(
                    is->proc.vendor,
                    kb_conf_get_int(is->proc.conf, "vendor.timeout_ms") * 4);
        if (r != KB_OK || !one.done) {
                kb_snprintf(errstr, errstr_size, "vendor: %s",
                            kb_err2str(r ? r : KB_ERR_TIMEOUT));
                r = r ? r : KB_ERR_TIMEOUT;
                goto out;
        }
        if (one.err != KB_OK || !one.token) {
                char pd[256];
                kb_str_printable(pd, sizeof(pd), one.detail,
                                 strlen(one.detail));
                kb_snprintf(errstr, errstr_size, "vendor answered %d: %s",
                            one.status, pd[0] ? pd : "?");
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
                r = publish_one(is, &f, &tr, requested_at, topic, env, elen,
                                errstr, errstr_size);
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
        kb_log_trace_pop(saved);
        free(env);
        if (one.token)
                sodium_free(one.token);
        return r;
}

kb_proc_t *kb_issuer_proc_new(const kb_conf_t *conf, int *is_config_error,
                              char *errstr, size_t errstr_size)
{
        kb_issuer_t *is =
            kb_issuer_new(conf, is_config_error, errstr, errstr_size);

        return is ? &is->proc : NULL;
}
