/* importer.c -- the importer daemon: envelopes in, imported sessions out */
#include "importer.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "daemon.h"
#include "dlq.h"
#include "json.h"
#include "jwt.h"
#include "kb_envelope.h"
#include "kb_keys.h"
#include "log.h"
#include "partners.h"
#include "pipeline.h"
#include "seen.h"
#include "util.h"
#include "vendor.h"

#define STATS_EVERY_MS 10000
#define LIST_PAGE      100
#define LIST_MAX_PAGES 50
/* Tokens live at most 24 h: a replay older than that is expired anyway. */
#define KB_IMPORTER_STATE_WINDOW_S (86400 + 3600)

typedef struct job_s {
        struct job_s *next; /* held list */
        kb_importer_t *im;
        kb_rec_t *rec;
        kb_envelope_fields_t f;
        const kb_partner_t *partner;
        char workflow_id[129];
        char vendor_data[129];
        char detail403[256];
        int list_offset, pages;
        int64_t token_iat;    /* the token's iat (unverified), 0 if none */
        int owns_seen;        /* claimed the share_id in the state */
        int published;        /* a downstream record was added */
        char session_id[129]; /* ... for this session of ours */
} job_t;

struct kb_importer_s {
        const kb_conf_t *conf;
        char app_id[37];
        kb_keyring_t *box_keys;
        kb_keyring_t *signers;
        kb_partners_t partners;
        kb_vendor_t *vendor;
        kb_pipeline_t *pl;
        char **token_topics;
        char output_topic[256], dlq_topic[256];
        kb_seen_t *seen; /* share_ids imported within the window */
        job_t *held;
        int fatal;
        int64_t next_stats_ms;
        uint64_t n_foreign, n_imported, n_reconciled, n_dead, n_replayed;
};

/* ---- outputs ---- */

static void fail_hard(kb_importer_t *im, const char *why)
{
        kb_log_error("importer", "%s; stopping without committing", why);
        im->fatal = 1;
        if (im->pl)
                kb_pipeline_fail(im->pl);
}

static void dead_letter(kb_importer_t *im, kb_rec_t *rec, const char *share_id,
                        const char *stage, const char *reason,
                        const char *detail, const kb_envelope_fields_t *f,
                        int http_status)
{
        json_object *x = json_object_new_object();

        if (x && f && f->issuer_application_id[0])
                kb_json_add_str(x, "issuer_application_id",
                                f->issuer_application_id);
        if (x && f && f->source_session_id[0])
                kb_json_add_str(x, "source_session_id", f->source_session_id);
        if (x && http_status)
                kb_json_add_i64(x, "http_status", http_status);
        if (!x || kb_dlq_produce(rec, im->dlq_topic, stage, reason, detail,
                                 share_id && *share_id ? share_id : NULL, x))
                fail_hard(im, "out of memory building a dead letter");
        im->n_dead++;
        kb_log_info("importer", "share %s: dead-lettered: %s",
                    share_id && *share_id ? share_id : "(unknown)", reason);
}

static int is_scalar(json_object *v)
{
        return !v || (!json_object_is_type(v, json_type_object) &&
                      !json_object_is_type(v, json_type_array));
}

json_object *kb_session_summary(json_object *session)
{
        static const char *const keep[] = { "status", "score", "method",
                                            "role",   "type",  "total_hits",
                                            NULL };
        json_object *out = json_object_new_object();

        if (!out || !json_object_is_type(session, json_type_object))
                return out;
        json_object_object_foreach(session, k, v)
        {
                if (is_scalar(v)) {
                        json_object_object_add(out, k, json_object_get(v));
                } else if (json_object_is_type(v, json_type_array)) {
                        json_object *arr = json_object_new_array();
                        size_t i, n = json_object_array_length(v);
                        if (!arr)
                                goto nomem;
                        for (i = 0; i < n; i++) {
                                json_object *el =
                                    json_object_array_get_idx(v, i);
                                json_object *s = json_object_new_object();
                                size_t j;
                                if (!s) {
                                        json_object_put(arr);
                                        goto nomem;
                                }
                                for (j = 0; keep[j]; j++) {
                                        json_object *m =
                                            kb_json_get(el, keep[j]);
                                        if (m && is_scalar(m))
                                                json_object_object_add(
                                                    s, keep[j],
                                                    json_object_get(m));
                                }
                                json_object_array_add(arr, s);
                        }
                        json_object_object_add(out, k, arr);
                }
                /* nested objects (documents, images, features) are left
                 * out of a summary */
        }
        return out;
nomem:
        json_object_put(out);
        return NULL;
}

static int copy_member(json_object *dst, json_object *src, const char *key)
{
        json_object *v = kb_json_get(src, key);

        return json_object_object_add(dst, key, v ? json_object_get(v) : NULL);
}

/* Publishes the downstream record for @p session (the import response or
 * the decision of a reconciled session) and finishes the job's record. */
static void publish_record(kb_importer_t *im, job_t *job, json_object *session,
                           int reconciled)
{
        json_object *o = json_object_new_object(), *sess;
        rd_kafka_headers_t *hdrs = NULL;
        const char *txt, *vd;
        size_t len;
        int r = KB_ERR_NOMEM;

        if (!o)
                goto out;
        sess = job->partner->full_record ? json_object_get(session)
                                         : kb_session_summary(session);
        if (!sess)
                goto out;
        vd = kb_json_get_str(session, "vendor_data");
        if (!vd)
                vd = job->vendor_data;
        if (kb_json_add_str(o, "format", "kyc-bridge-imported-session/1") ||
            kb_json_add_str(o, "share_id", job->f.share_id) ||
            kb_json_add_str(o, "issuer_application_id",
                            job->f.issuer_application_id) ||
            kb_json_add_str(o, "partner_application_id", im->app_id) ||
            copy_member(o, session, "session_id") ||
            copy_member(o, session, "session_number") ||
            kb_json_add_str(o, "shared_from_session",
                            job->f.source_session_id) ||
            kb_json_add_str(o, "session_kind",
                            kb_session_kind2str(job->f.session_kind)) ||
            copy_member(o, session, "status") ||
            kb_json_add_str(o, "vendor_data", vd) ||
            kb_json_add_str(o, "workflow_id", job->workflow_id) ||
            kb_json_add_i64(o, "imported_at", kb_time_now()) ||
            json_object_object_add(o, "reconciled",
                                   json_object_new_boolean(reconciled)) ||
            kb_json_add_str(o, "record",
                            job->partner->full_record ? "full" : "summary") ||
            json_object_object_add(o, "session", sess))
                goto out;
        txt = kb_json_str(o, &len);
        hdrs = rd_kafka_headers_new(4);
        if (!hdrs)
                goto out;
        rd_kafka_header_add(hdrs, "kb-share-id", -1, job->f.share_id, -1);
        rd_kafka_header_add(hdrs, "kb-issuer", -1, job->f.issuer_application_id,
                            -1);
        rd_kafka_header_add(hdrs, "content-type", -1, "application/json", -1);
        r = kb_rec_produce(job->rec, im->output_topic, RD_KAFKA_PARTITION_UA,
                           vd, strlen(vd), txt, len, hdrs);
        if (r == KB_OK)
                r = kb_seen_produce(im->seen, job->rec, job->f.share_id,
                                    "imported",
                                    kb_json_get_str(session, "session_id"));
        if (r == KB_OK) {
                const char *sid = kb_json_get_str(session, "session_id");
                job->published = 1;
                kb_strlcpy(job->session_id, sid ? sid : "",
                           sizeof(job->session_id));
        }
out:
        json_object_put(o);
        if (r != KB_OK) {
                fail_hard(im, "cannot build the downstream record");
        } else {
                if (reconciled)
                        im->n_reconciled++;
                else
                        im->n_imported++;
                kb_log_debug("importer", "share %s: imported as session %s%s",
                             job->f.share_id,
                             kb_json_get_str(session, "session_id")
                                 ? kb_json_get_str(session, "session_id")
                                 : "?",
                             reconciled ? " (reconciled)" : "");
        }
        kb_rec_done(job->rec);
}

/* ---- reconciliation after a 403 ---- */

static void list_done(const kb_vendor_result_t *res, void *opaque);

/*
 * A session can only be the import of this token if it was created after
 * the token was minted (one clock: the vendor's). This keeps an older
 * import of the same source session -- another share, or a token meant for
 * someone else -- from being taken for this one. Without a parsable
 * created_at nothing can be ruled out.
 */
static int created_after(json_object *session, int64_t iat)
{
        const char *c = kb_json_get_str(session, "created_at");
        struct tm tm;
        int64_t t;

        if (!iat || !c)
                return 1;
        memset(&tm, 0, sizeof(tm));
        if (sscanf(c, "%4d-%2d-%2dT%2d:%2d:%2d", &tm.tm_year, &tm.tm_mon,
                   &tm.tm_mday, &tm.tm_hour, &tm.tm_min, &tm.tm_sec) != 6)
                return 1;
        tm.tm_year -= 1900;
        tm.tm_mon -= 1;
        t = (int64_t)timegm(&tm);
        return t >= iat;
}

static int handle_common(const kb_vendor_result_t *res, job_t *job)
{
        if (kb_rec_orphaned(job->rec)) {
                kb_rec_done(job->rec);
                return 1;
        }
        if (res->err == KB_ERR_STATE ||
            (res->err != KB_OK && res->status == 0)) {
                char why[320];
                kb_snprintf(why, sizeof(why),
                            "share %s: vendor call "
                            "failed for good: %s",
                            job->f.share_id,
                            res->detail[0] ? res->detail
                                           : kb_err2str(res->err));
                job->next = job->im->held;
                job->im->held = job;
                fail_hard(job->im, why);
                return 1;
        }
        return 0;
}

static void decision_done(const kb_vendor_result_t *res, void *opaque)
{
        job_t *job = opaque;

        if (handle_common(res, job))
                return;
        if (res->err == KB_OK && res->body) {
                publish_record(job->im, job, res->body, 1);
                return;
        }
        dead_letter(job->im, job->rec, job->f.share_id, "reconcile",
                    "reconcile_failed", res->detail, &job->f, res->status);
        kb_rec_done(job->rec);
}

static void list_done(const kb_vendor_result_t *res, void *opaque)
{
        job_t *job = opaque;
        kb_importer_t *im = job->im;
        json_object *results;
        const char *best = NULL;
        int64_t best_no = -1;
        size_t i, n;

        if (handle_common(res, job))
                return;
        if (res->err != KB_OK) {
                dead_letter(im, job->rec, job->f.share_id, "reconcile",
                            "reconcile_failed", res->detail, &job->f,
                            res->status);
                kb_rec_done(job->rec);
                return;
        }
        results = kb_json_get(res->body, "results");
        n = results && json_object_is_type(results, json_type_array)
                ? json_object_array_length(results)
                : 0;
        for (i = 0; i < n; i++) {
                json_object *s = json_object_array_get_idx(results, i);
                const char *from = kb_json_get_str(s, "shared_from_session");
                const char *sid = kb_json_get_str(s, "session_id");
                const char *owner;
                int64_t no = 0;
                if (!from || !sid || strcasecmp(from, job->f.source_session_id))
                        continue;
                if (!created_after(s, job->token_iat))
                        continue;
                /* a session that another share's record already stands
                 * for is not this share's import */
                owner = kb_seen_ref_owner(im->seen, sid);
                if (owner && strcmp(owner, job->f.share_id))
                        continue;
                kb_json_get_i64(s, "session_number", &no);
                if (no > best_no) {
                        best_no = no;
                        best = sid;
                }
        }
        if (best) {
                char sid[129];
                kb_strlcpy(sid, best, sizeof(sid));
                kb_log_info("importer",
                            "share %s: already imported as "
                            "session %s; reconciled",
                            job->f.share_id, sid);
                if (kb_vendor_decision(im->vendor, sid, decision_done, job)) {
                        job->next = im->held;
                        im->held = job;
                        fail_hard(im, "cannot queue a vendor call");
                }
                return;
        }
        if (kb_json_get_str(res->body, "next") && n > 0 &&
            ++job->pages < LIST_MAX_PAGES) {
                job->list_offset += (int)n;
                if (kb_vendor_list_sessions(im->vendor, job->vendor_data,
                                            job->list_offset, LIST_PAGE,
                                            list_done, job)) {
                        job->next = im->held;
                        im->held = job;
                        fail_hard(im, "cannot queue a vendor call");
                }
                return;
        }
        /* No session of ours came from it: the 403 meant "not for us". */
        dead_letter(im, job->rec, job->f.share_id, "import", "forbidden",
                    job->detail403, &job->f, 403);
        kb_rec_done(job->rec);
}

/* ---- import ---- */

static void import_done(const kb_vendor_result_t *res, void *opaque)
{
        job_t *job = opaque;
        kb_importer_t *im = job->im;
        const char *reason;

        if (handle_common(res, job))
                return;
        if (res->err == KB_OK && res->body) {
                publish_record(im, job, res->body, 0);
                return;
        }
        switch (res->status) {
        case 403:
                /* Already imported by us (a retry, or a crash before the
                 * commit) or not addressed to us: the real vendor says the
                 * same for both, so look for the session we made. */
                kb_strlcpy(job->detail403, res->detail, sizeof(job->detail403));
                job->list_offset = 0;
                if (kb_vendor_list_sessions(im->vendor, job->vendor_data, 0,
                                            LIST_PAGE, list_done, job)) {
                        job->next = im->held;
                        im->held = job;
                        fail_hard(im, "cannot queue a vendor call");
                }
                return;
        case 401:
                reason = "token_rejected";
                break;
        case 404:
                reason = strstr(res->detail, "orkflow") ? "workflow_not_found"
                                                        : "source_session_gone";
                break;
        case 400:
                reason = "bad_request";
                break;
        default:
                reason = "vendor_rejected";
        }
        dead_letter(im, job->rec, job->f.share_id, "import", reason,
                    res->detail, &job->f, res->status);
        kb_rec_done(job->rec);
}

static const char *vd_lookup(void *opaque, const char *name)
{
        const kb_envelope_fields_t *f = opaque;

        if (!strcmp(name, "vendor_data_hint"))
                return f->vendor_data_hint;
        if (!strcmp(name, "share_id"))
                return f->share_id;
        if (!strcmp(name, "source_session_id"))
                return f->source_session_id;
        if (!strcmp(name, "issuer_application_id"))
                return f->issuer_application_id;
        if (!strcmp(name, "session_kind"))
                return kb_session_kind2str(f->session_kind);
        return NULL;
}

static int choose_vendor_data(const kb_partner_t *p,
                              const kb_envelope_fields_t *f, char *out,
                              size_t outsz)
{
        if (!strcmp(p->vendor_data, "hint")) {
                kb_strlcpy(out,
                           f->vendor_data_hint[0] ? f->vendor_data_hint
                                                  : f->share_id,
                           outsz);
                return 0;
        }
        if (kb_conf_expand(p->vendor_data, vd_lookup, (void *)f, out, outsz) ==
                -1 ||
            !out[0])
                return -1;
        return 0;
}

static const char *open_reason(int err)
{
        switch (err) {
        case KB_ERR_TOO_LARGE:
                return "envelope_too_large";
        case KB_ERR_VERSION:
                return "unsupported_version";
        case KB_ERR_NOT_FOR_US:
                return "not_addressed_to_us";
        case KB_ERR_UNKNOWN_KEY:
                return "unknown_key";
        case KB_ERR_AUTH:
                return "authentication_failed";
        case KB_ERR_EXPIRED:
                return "expired";
        case KB_ERR_MALFORMED:
        default:
                return "malformed_envelope";
        }
}

static void op_start(void *opaque, kb_rec_t *rec)
{
        kb_importer_t *im = opaque;
        kb_envelope_opener_t op;
        kb_envelope_header_t hdr;
        const void *key, *val;
        size_t klen, vlen, tlen = 0;
        char *token = NULL;
        job_t *job;
        int r;

        key = kb_rec_key(rec, &klen);
        if (!key || klen != strlen(im->app_id) ||
            strncasecmp(key, im->app_id, klen)) {
                /* another partner's record on a shared topic: not ours to
                 * open, not ours to dead-letter */
                im->n_foreign++;
                kb_rec_done(rec);
                return;
        }
        job = calloc(1, sizeof(*job));
        if (!job) {
                fail_hard(im, "out of memory");
                kb_rec_done(rec);
                return;
        }
        job->im = im;
        job->rec = rec;
        kb_rec_set_user(rec, job);
        op.my_application_id = im->app_id;
        op.box_keys = im->box_keys;
        op.signers = im->signers;
        op.now = kb_time_now();
        memset(&hdr, 0, sizeof(hdr));
        val = kb_rec_value(rec, &vlen);
        r = kb_envelope_open(val, vlen, &op, &hdr, &job->f, &token, &tlen);
        if (r != KB_OK) {
                dead_letter(im, rec, hdr.valid ? hdr.share_id : NULL,
                            "envelope", open_reason(r), kb_err2str(r), NULL, 0);
                kb_rec_done(rec);
                return;
        }
        if (kb_seen_has(im->seen, job->f.share_id)) {
                /* imported and committed before (or in flight now): a
                 * replay of the same envelope, by a producer retry or by
                 * anyone with write access to the topic */
                im->n_replayed++;
                kb_log_notice("importer",
                              "share %s: envelope already imported; "
                              "replay skipped",
                              job->f.share_id);
                goto done;
        }
        if (kb_seen_claim(im->seen, job->f.share_id) == -1) {
                fail_hard(im, "out of memory");
                goto done;
        }
        job->owns_seen = 1;
        {
                json_object *claims = NULL;
                if (kb_jwt_decode_unverified(token, tlen, &claims) == KB_OK) {
                        if (kb_json_get_i64(claims, "iat", &job->token_iat))
                                job->token_iat = 0;
                        json_object_put(claims);
                }
        }
        job->partner =
            kb_partners_find(&im->partners, job->f.issuer_application_id);
        if (!job->partner) {
                /* cannot happen: the signer's owner is a partner */
                dead_letter(im, rec, job->f.share_id, "envelope",
                            "unknown_issuer", "issuer is not a partner",
                            &job->f, 0);
                goto done;
        }
        kb_strlcpy(job->workflow_id,
                   kb_partner_workflow(job->partner, job->f.session_kind),
                   sizeof(job->workflow_id));
        if (!job->workflow_id[0]) {
                dead_letter(im, rec, job->f.share_id, "import",
                            "no_workflow_for_kind",
                            job->f.session_kind == KB_SESSION_BUSINESS
                                ? "no workflow_id.business for this "
                                  "partner"
                                : "no workflow_id.user for this partner",
                            &job->f, 0);
                goto done;
        }
        if (choose_vendor_data(job->partner, &job->f, job->vendor_data,
                               sizeof(job->vendor_data)) == -1) {
                dead_letter(
                    im, rec, job->f.share_id, "import", "vendor_data_invalid",
                    "vendor_data template gave nothing usable", &job->f, 0);
                goto done;
        }
        r = kb_vendor_import(im->vendor, token, tlen, job->workflow_id,
                             job->vendor_data, job->partner->trust_review,
                             import_done, job);
        kb_envelope_token_free(token);
        if (r != KB_OK) {
                job->next = im->held;
                im->held = job;
                fail_hard(im, "cannot queue a vendor call");
        }
        return;
done:
        kb_envelope_token_free(token);
        kb_rec_done(rec);
}

static void log_stats(kb_importer_t *im)
{
        kb_pipeline_stats_t ps;
        kb_vendor_stats_t vs;

        kb_pipeline_stats(im->pl, &ps);
        kb_vendor_stats(im->vendor, &vs);
        kb_log_info(
            "importer",
            "consumed %llu, imported %llu, reconciled %llu, "
            "dead-lettered %llu, replays %llu, other partners' %llu, in flight "
            "%lld, txns %llu (aborted %llu, %llu/%llu ms committing/blocking), "
            "vendor ok %llu "
            "retried %llu 429s %llu",
            (unsigned long long)ps.consumed, (unsigned long long)im->n_imported,
            (unsigned long long)im->n_reconciled,
            (unsigned long long)im->n_dead, (unsigned long long)im->n_replayed,
            (unsigned long long)im->n_foreign, (long long)ps.in_flight,
            (unsigned long long)ps.txn_commits,
            (unsigned long long)ps.txn_aborts,
            (unsigned long long)(ps.txn_us / 1000),
            (unsigned long long)(ps.txn_offsets_us / 1000),
            (unsigned long long)vs.ok, (unsigned long long)vs.retried,
            (unsigned long long)vs.http_429);
}

static int op_poll(void *opaque, int timeout_ms)
{
        kb_importer_t *im = opaque;
        int64_t now = kb_mono_ms();

        if (now >= im->next_stats_ms) {
                im->next_stats_ms = now + STATS_EVERY_MS;
                log_stats(im);
                kb_seen_expire(im->seen);
        }
        return kb_vendor_poll(im->vendor, timeout_ms);
}

static int op_has_capacity(void *opaque)
{
        kb_importer_t *im = opaque;

        return kb_vendor_has_capacity(im->vendor);
}

static int op_on_assign(void *opaque,
                        const rd_kafka_topic_partition_list_t *parts)
{
        kb_importer_t *im = opaque;

        (void)parts;
        return kb_seen_load(im->seen);
}

static void op_on_finish(void *opaque, kb_rec_t *rec, int committed)
{
        kb_importer_t *im = opaque;
        job_t *job = kb_rec_user(rec);

        if (!job)
                return;
        if (job->owns_seen) {
                if (committed && job->published)
                        kb_seen_commit(im->seen, job->f.share_id,
                                       job->session_id);
                else
                        kb_seen_forget(im->seen, job->f.share_id);
        }
        free(job);
}

/* ---- life cycle ---- */

static int load_box_keys(kb_importer_t *im, const kb_conf_t *conf, char *errstr,
                         size_t errstr_size)
{
        char **paths, *pass = NULL, kerr[512];
        size_t n, i, pass_len = 0;
        int r = KB_OK;

        if (kb_conf_is_set(conf, "keys.passphrase") &&
            kb_conf_get_secret(conf, "keys.passphrase", &pass, &pass_len,
                               errstr, errstr_size))
                return KB_ERR_CONFIG;
        paths = kb_conf_get_list(conf, "keys.box_secret", &n);
        if (!paths) {
                r = KB_ERR_NOMEM;
                goto out;
        }
        for (i = 0; i < n && !r; i++) {
                kb_key_t *k = kb_key_load_secret(paths[i], pass, pass_len, kerr,
                                                 sizeof(kerr));
                if (!k || kb_key_type(k) != KB_KEY_BOX) {
                        kb_snprintf(errstr, errstr_size,
                                    "%s: keys.box_secret: %s",
                                    kb_conf_origin(conf, "keys.box_secret"),
                                    k ? "not an x25519 key" : kerr);
                        kb_key_destroy(k);
                        r = KB_ERR_CONFIG;
                } else if (kb_keyring_add(im->box_keys, k, im->app_id)) {
                        kb_snprintf(errstr, errstr_size,
                                    "%s: keys.box_secret: key %s listed twice",
                                    kb_conf_origin(conf, "keys.box_secret"),
                                    kb_key_id(k));
                        kb_key_destroy(k);
                        r = KB_ERR_CONFIG;
                }
        }
out:
        kb_conf_list_free(paths);
        if (pass)
                kb_conf_secret_free(pass, pass_len);
        return r;
}

kb_importer_t *kb_importer_new(const kb_conf_t *conf, int *is_config_error,
                               char *errstr, size_t errstr_size)
{
        kb_importer_t *im = calloc(1, sizeof(*im));
        size_t i;

        *is_config_error = 1;
        if (!im) {
                kb_snprintf(errstr, errstr_size, "out of memory");
                *is_config_error = 0;
                return NULL;
        }
        im->conf = conf;
        if (kb_conf_check(conf, KB_SCOPE_IMPORTER, errstr, errstr_size))
                goto fail;
        kb_strlcpy(im->app_id, kb_conf_get(conf, "application_id"),
                   sizeof(im->app_id));
        kb_strlcpy(im->output_topic, kb_conf_get(conf, "importer.output_topic"),
                   sizeof(im->output_topic));
        kb_strlcpy(im->dlq_topic, kb_conf_get(conf, "importer.dlq_topic"),
                   sizeof(im->dlq_topic));
        im->token_topics =
            kb_conf_get_list(conf, "importer.token_topics", NULL);
        im->box_keys = kb_keyring_new();
        im->signers = kb_keyring_new();
        if (!im->token_topics || !im->box_keys || !im->signers) {
                kb_snprintf(errstr, errstr_size, "out of memory");
                goto fail;
        }
        if (load_box_keys(im, conf, errstr, errstr_size))
                goto fail;
        if (kb_partners_load(&im->partners, conf, KB_SCOPE_IMPORTER, errstr,
                             errstr_size))
                goto fail;
        for (i = 0; i < im->partners.n; i++) {
                kb_partner_t *p = &im->partners.v[i];
                if (kb_keyring_add_bundle(im->signers, p->bundle, KB_KEY_SIGN,
                                          p->application_id)) {
                        char key[128];
                        kb_snprintf(key, sizeof(key), "partner.%s.keys",
                                    p->name);
                        kb_snprintf(errstr, errstr_size,
                                    "%s: %s: a signing key is also listed "
                                    "for another partner",
                                    kb_conf_origin(conf, key), key);
                        goto fail;
                }
        }
        im->seen = kb_seen_new(conf, kb_conf_get(conf, "importer.state_topic"),
                               KB_IMPORTER_STATE_WINDOW_S, "importer");
        if (!im->seen) {
                kb_snprintf(errstr, errstr_size, "out of memory");
                goto fail;
        }
        im->vendor = kb_vendor_new(conf, errstr, errstr_size);
        if (!im->vendor)
                goto fail;
        *is_config_error = 0;
        return im;
fail:
        kb_importer_destroy(im);
        return NULL;
}

int kb_importer_run(kb_importer_t *im, volatile sig_atomic_t *stop,
                    char *errstr, size_t errstr_size)
{
        static const kb_pipeline_ops_t ops = { op_start, op_poll,
                                               op_has_capacity, op_on_assign,
                                               op_on_finish };
        kb_pipeline_conf_t pc;
        const char *outs[4];
        int r;

        memset(&pc, 0, sizeof(pc));
        if (kb_daemon_kafka_confs(
                im->conf, kb_conf_get(im->conf, "importer.group_id"),
                "importer.transactional_id", &pc, errstr, errstr_size))
                return KB_ERR_CONFIG;
        pc.topics = (const char *const *)im->token_topics;
        outs[0] = im->output_topic;
        outs[1] = im->dlq_topic;
        outs[2] = kb_seen_topic(im->seen);
        outs[3] = NULL;
        pc.out_topics = outs;
        if (kb_seen_load(im->seen) == -1) {
                kb_snprintf(errstr, errstr_size,
                            "cannot read state topic %s (does it exist?)",
                            kb_seen_topic(im->seen));
                rd_kafka_conf_destroy(pc.consumer_conf);
                rd_kafka_conf_destroy(pc.producer_conf);
                return KB_ERR_KAFKA;
        }
        im->pl = kb_pipeline_new(&pc, &ops, im, errstr, errstr_size);
        if (!im->pl)
                return KB_ERR_KAFKA;
        kb_log_notice("importer",
                      "running: %s -> %s (application %s, %zu "
                      "partner(s), %zu key(s))",
                      im->token_topics[0], im->output_topic, im->app_id,
                      im->partners.n, kb_keyring_count(im->box_keys));
        im->next_stats_ms = kb_mono_ms() + STATS_EVERY_MS;
        r = kb_pipeline_run(im->pl, stop);
        log_stats(im);
        if (im->fatal) {
                kb_snprintf(errstr, errstr_size,
                            "stopped on a vendor or resource failure (see "
                            "log); unfinished envelopes were not committed");
                r = KB_ERR_STATE;
        } else if (r != KB_OK) {
                kb_snprintf(errstr, errstr_size, "Kafka failure (see log)");
        }
        return r;
}

void kb_importer_destroy(kb_importer_t *im)
{
        job_t *job, *next;

        if (!im)
                return;
        kb_vendor_destroy(im->vendor);
        for (job = im->held; job; job = next) {
                next = job->next;
                kb_rec_done(job->rec);
        }
        kb_pipeline_destroy(im->pl);
        kb_partners_free(&im->partners);
        kb_keyring_destroy(im->box_keys);
        kb_keyring_destroy(im->signers);
        kb_seen_destroy(im->seen);
        kb_conf_list_free(im->token_topics);
        free(im);
}
