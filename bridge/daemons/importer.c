/* importer.c -- the importer daemon: envelopes in, imported sessions out */
#include "importer.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "failpoint.h"
#include "json.h"
#include "kafka.h"
#include "jwt.h"
#include "kb_envelope.h"
#include "kb_keys.h"
#include "log.h"
#include "partners.h"
#include "pipeline.h"
#include "processor.h"
#include "seen.h"
#include "status.h"
#include "trace.h"
#include "util.h"
#include "vendor.h"
#include "verdict.h"

#define LIST_PAGE      100
#define LIST_MAX_PAGES 50
/* Tokens live at most 24 h: a replay older than that is expired anyway. */
#define KB_IMPORTER_STATE_WINDOW_S (86400 + 3600)

/* One envelope in flight; its lifetime is kb_job_t's (processor.h). */
typedef struct job_s {
        kb_job_t base; /* first */
        kb_envelope_fields_t f;
        const kb_partner_t *partner;
        char workflow_id[129];
        char vendor_data[129];
        /* the import's answer, while a reconcile or a follow-up question
         * about it is pending */
        int import_status, import_err;
        char import_detail[256];
        int list_offset, pages;
        int64_t token_iat; /* the token's iat (unverified), 0 if none */
} job_t;

struct kb_importer_s {
        kb_proc_t proc; /* first */
        kb_keyring_t *box_keys;
        kb_keyring_t *signers;
        char output_topic[256];
        uint64_t n_foreign, n_imported, n_reconciled, n_replayed;
        kb_status_t *status; /* imported sessions, for status updates */
        kb_buf_t rec;        /* the downstream record being written */
};

/* ---- outputs ---- */

static json_object *env_extra(const kb_job_t *base)
{
        const kb_envelope_fields_t *f = &((const job_t *)base)->f;
        json_object *x = json_object_new_object();

        if (x && f->issuer_application_id[0])
                kb_json_add_str(x, "issuer_application_id",
                                f->issuer_application_id);
        if (x && f->source_session_id[0])
                kb_json_add_str(x, "source_session_id", f->source_session_id);
        return x;
}

static int is_scalar(json_object *v)
{
        return !v || (!json_object_is_type(v, json_type_object) &&
                      !json_object_is_type(v, json_type_array));
}

/* What a summary keeps of each element of a verification array. */
static const char *const summary_keep[] = { "status", "score", "method",
                                            "role",   "type",  "total_hits",
                                            NULL };
#define SUMMARY_KEEP (KB_ARRAY_SIZE(summary_keep) - 1)

json_object *kb_session_summary(json_object *session)
{
        const char *const *keep = summary_keep;
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

/* "key": -- @p key needs no escaping (our own names). */
static int put_key(kb_buf_t *b, const char *key)
{
        return kb_buf_append(b, "\"", 1) || kb_buf_puts(b, key) ||
               kb_buf_append(b, "\":", 2);
}

/* Which summary_keep[] entry key @p k (a JSON string) is; -1: none. */
static int keep_index(kb_jval_t k)
{
        const char *p = k.p + 1;
        size_t n = k.len - 2, j;

        if (!memchr(p, '\\', n)) {
                for (j = 0; j < SUMMARY_KEEP; j++)
                        if (strlen(summary_keep[j]) == n &&
                            !memcmp(summary_keep[j], p, n))
                                return (int)j;
                return -1;
        }
        for (j = 0; j < SUMMARY_KEEP; j++)
                if (kb_jval_key_is(k, summary_keep[j]))
                        return (int)j;
        return -1;
}

/* The summary of a verification array: per element its kept scalar
 * members (not null), in summary_keep[] order. */
static int put_summary_array(kb_buf_t *out, kb_jval_t arr)
{
        kb_jiter_t it, mit;
        kb_jval_t el, k, v;
        int n = 0;

        if (kb_buf_append(out, "[", 1))
                return -1;
        kb_jval_iter(arr, &it);
        while (kb_jiter_next(&it, NULL, &el)) {
                kb_jval_t kept[SUMMARY_KEEP];
                size_t j;
                int first = 1;
                memset(kept, 0, sizeof(kept));
                if (kb_jval_type(el) == KB_JV_OBJECT) {
                        kb_jval_iter(el, &mit);
                        while (kb_jiter_next(&mit, &k, &v)) {
                                int x = keep_index(k);
                                if (x >= 0)
                                        kept[x] = v;
                        }
                }
                if (kb_buf_puts(out, n ? ",{" : "{"))
                        return -1;
                n++;
                for (j = 0; j < SUMMARY_KEEP; j++) {
                        kb_jtype_t t = kb_jval_type(kept[j]);
                        if (t == KB_JV_ABSENT || t == KB_JV_NULL ||
                            t == KB_JV_ARRAY || t == KB_JV_OBJECT)
                                continue;
                        if ((!first && kb_buf_append(out, ",", 1)) ||
                            put_key(out, summary_keep[j]) ||
                            kb_buf_append(out, kept[j].p, kept[j].len))
                                return -1;
                        first = 0;
                }
                if (kb_buf_append(out, "}", 1))
                        return -1;
        }
        return kb_buf_append(out, "]", 1);
}

int kb_session_summary_put(kb_buf_t *out, const kb_jview_t *session)
{
        size_t i;
        int first = 1;

        if (kb_buf_append(out, "{", 1))
                return -1;
        for (i = 0; i < session->n; i++) {
                const kb_jmember_t *m = &session->m[i];
                kb_jtype_t t = kb_jval_type(m->val);
                /* nested objects (documents, images, features) are left
                 * out of a summary */
                if (t == KB_JV_OBJECT)
                        continue;
                if ((!first && kb_buf_append(out, ",", 1)) ||
                    kb_buf_append(out, m->key.p, m->key.len) ||
                    kb_buf_append(out, ":", 1))
                        return -1;
                first = 0;
                if (t == KB_JV_ARRAY ? put_summary_array(out, m->val)
                                     : kb_buf_append(out, m->val.p, m->val.len))
                        return -1;
        }
        return kb_buf_append(out, "}", 1);
}

/* The string @p v decoded into *out (malloc()ed), NULL when it is no
 * string or holds a NUL (as kb_json_get_str()). 0, or -1 on ENOMEM. */
static int dup_str(kb_jval_t v, char **out)
{
        *out = NULL;
        if (kb_jval_type(v) != KB_JV_STRING)
                return 0;
        *out = malloc(v.len);
        if (!*out)
                return -1;
        if (kb_jval_str(v, *out, v.len, NULL) == -1) {
                free(*out);
                *out = NULL;
        }
        return 0;
}

/* ,"key":"val" -- nothing when @p val is NULL (as kb_json_add_str()). */
static int put_str(kb_buf_t *b, const char *key, const char *val)
{
        if (!val)
                return 0;
        if (kb_buf_append(b, ",", 1) || put_key(b, key))
                return -1;
        return kb_json_put_string(b, val, strlen(val));
}

/* ,"key":<the raw value>, null when absent. */
static int put_raw(kb_buf_t *b, const char *key, kb_jval_t v)
{
        if (kb_buf_append(b, ",", 1) || put_key(b, key))
                return -1;
        return v.p ? kb_buf_append(b, v.p, v.len) : kb_buf_puts(b, "null");
}

/* What the status index needs from the session (strings malloc()ed into
 * @p own: status, last new_status, last created_at). 0 or -1 on ENOMEM. */
static int status_of(const kb_jview_t *session, kb_status_log_t *log,
                     char *own[3])
{
        kb_jval_t rv = kb_jview_get(session, "reviews"), el, last = { 0 };
        kb_jiter_t it;

        memset(log, 0, sizeof(*log));
        if (dup_str(kb_jview_get(session, "status"), &own[0]))
                return -1;
        if (kb_jval_type(rv) != KB_JV_ARRAY)
                return 0;
        kb_jval_iter(rv, &it);
        while (kb_jiter_next(&it, NULL, &el)) {
                log->reviews++;
                last = el;
        }
        if (!log->reviews)
                return 0;
        if (dup_str(kb_jval_member(last, "new_status"), &own[1]) ||
            dup_str(kb_jval_member(last, "created_at"), &own[2]))
                return -1;
        log->last_status = own[1];
        log->last_at = own[2];
        return 0;
}

/*
 * Publishes the downstream record for @p session (the import response or
 * the decision of a reconciled session; NULL: it could not be read) and
 * finishes the job's record. The record is written as JSON text, the
 * session spliced in as the vendor wrote it (or its summary written from
 * that text): no tree is built.
 */
static void publish_record(kb_importer_t *im, job_t *job,
                           const kb_jview_t *session, int reconciled)
{
        kb_buf_t *b = &im->rec;
        rd_kafka_headers_t *hdrs = NULL;
        char *sid = NULL, *vdv = NULL, *own[3] = { NULL, NULL, NULL };
        const char *vd;
        int r = KB_ERR_NOMEM, full = job->partner->full_record;

        kb_buf_reset(b);
        if (!session || dup_str(kb_jview_get(session, "session_id"), &sid) ||
            dup_str(kb_jview_get(session, "vendor_data"), &vdv))
                goto out;
        vd = vdv ? vdv : job->vendor_data;
        if (kb_buf_puts(b, "{\"format\":\"kyc-bridge-imported-session/1\"") ||
            put_str(b, "share_id", job->f.share_id) ||
            put_str(b, "issuer_application_id", job->f.issuer_application_id) ||
            put_str(b, "partner_application_id", im->proc.app_id) ||
            put_raw(b, "session_id", kb_jview_get(session, "session_id")) ||
            put_raw(b, "session_number",
                    kb_jview_get(session, "session_number")) ||
            put_str(b, "shared_from_session", job->f.source_session_id) ||
            put_str(b, "session_kind",
                    kb_session_kind2str(job->f.session_kind)) ||
            put_raw(b, "status", kb_jview_get(session, "status")) ||
            put_str(b, "vendor_data", vd) ||
            put_str(b, "workflow_id", job->workflow_id) ||
            kb_buf_printf(b, ",\"imported_at\":%lld,\"reconciled\":%s",
                          (long long)kb_time_now(),
                          reconciled ? "true" : "false") ||
            put_str(b, "record", full ? "full" : "summary") ||
            kb_buf_puts(b, ",\"session\":") ||
            (full ? kb_buf_append(b, session->root.p, session->root.len)
                  : kb_session_summary_put(b, session)) ||
            kb_buf_append(b, "}", 1))
                goto out;
        hdrs = rd_kafka_headers_new(8);
        if (!hdrs)
                goto out;
        if (kb_kafka_trace_add(hdrs, &job->base.tr, job->base.requested_at)) {
                rd_kafka_headers_destroy(hdrs);
                goto out;
        }
        rd_kafka_header_add(hdrs, "kb-share-id", -1, job->f.share_id, -1);
        rd_kafka_header_add(hdrs, "kb-issuer", -1, job->f.issuer_application_id,
                            -1);
        rd_kafka_header_add(hdrs, "content-type", -1, "application/json", -1);
        r = kb_rec_produce(job->base.rec, im->output_topic,
                           RD_KAFKA_PARTITION_UA, vd, strlen(vd), b->data,
                           b->len, hdrs);
        if (r == KB_OK) {
                /* the state record carries what status updates need */
                kb_status_import_t si = {
                        job->f.share_id,
                        sid,
                        job->f.source_session_id,
                        job->f.issuer_application_id,
                        kb_session_kind2str(job->f.session_kind),
                        vd,
                        full,
                        NULL,
                        { 0, NULL, NULL },
                };
                if (status_of(session, &si.log, own))
                        r = KB_ERR_NOMEM;
                si.status = own[0];
                if (r == KB_OK)
                        r = kb_status_stage(im->status, &si);
                if (r == KB_ERR_INVALID_ARG) /* logged; not tracked */
                        r = KB_OK;
        }
        if (r == KB_OK)
                r = kb_proc_state(&job->base, "imported", sid);
out:
        if (r != KB_OK) {
                kb_proc_fail(&im->proc, "cannot build the downstream record");
        } else {
                if (reconciled)
                        im->n_reconciled++;
                else
                        im->n_imported++;
                /* metrics: records_total{outcome="reconciled"} */
                if (reconciled)
                        job->base.outcome = KB_OPS_RECONCILED;
                kb_log_debug("importer", "share %s: imported as session %s%s",
                             job->f.share_id, sid ? sid : "?",
                             reconciled ? " (reconciled)" : "");
        }
        free(sid);
        free(vdv);
        free(own[0]);
        free(own[1]);
        free(own[2]);
        kb_proc_done(&job->base);
}

/* ---- reconciliation: the token may be spent ---- */

static void list_done(const kb_vendor_result_t *res, void *opaque);

int kb_session_created_after(json_object *session, int64_t iat)
{
        const char *c = kb_json_get_str(session, "created_at");
        int64_t t;

        if (!iat || !c || kb_time_parse_iso8601(c, &t) == -1)
                return 1;
        return t >= iat;
}

/* Dead-letters a reconcile step's failure, or holds on one that is no
 * verdict on the input. */
static void reconcile_failed(job_t *job, const kb_vendor_result_t *res)
{
        kb_verdict_t v =
            kb_verdict(KB_STEP_RECONCILE, res->status, res->err, KB_ANS_NONE);

        if (v.act == KB_ACT_DEAD_LETTER)
                kb_proc_dead_letter(&job->base, v.stage, v.reason, res->detail,
                                    res->status);
        else
                kb_proc_hold(&job->base, "reconcile: vendor call failed");
}

static void decision_done(const kb_vendor_result_t *res, void *opaque)
{
        job_t *job = opaque;

        if (kb_proc_vendor_settled(&job->base, res))
                return;
        if (res->err == KB_OK && res->body) {
                /* rare: the decision's tree as text once, then the
                 * import's way */
                kb_jview_t jv;
                size_t len;
                const char *txt = kb_json_str(res->body, &len);
                int ok = kb_jview_init(&jv, txt, len, 0, NULL, 0) == 0;
                publish_record((kb_importer_t *)job->base.proc, job,
                               ok ? &jv : NULL, 1);
                if (ok)
                        kb_jview_clear(&jv);
                return;
        }
        reconcile_failed(job, res);
}

/* Looks for the session the import made (page @p offset). */
static void reconcile(job_t *job, int offset)
{
        kb_importer_t *im = (kb_importer_t *)job->base.proc;

        int r;

        job->list_offset = offset;
        kb_vendor_set_trace(im->proc.vendor, job->base.tr.traceparent);
        r = kb_vendor_list_sessions(im->proc.vendor, job->vendor_data, offset,
                                    LIST_PAGE, list_done, job);
        kb_vendor_set_trace(im->proc.vendor, NULL);
        if (r)
                kb_proc_hold(&job->base, "cannot queue a vendor call");
}

static void list_done(const kb_vendor_result_t *res, void *opaque)
{
        job_t *job = opaque;
        kb_importer_t *im = (kb_importer_t *)job->base.proc;
        json_object *results;
        const char *best = NULL;
        kb_verdict_t v;
        int64_t best_no = -1;
        size_t i, n;
        int r;

        if (kb_proc_vendor_settled(&job->base, res))
                return;
        if (res->err != KB_OK) {
                reconcile_failed(job, res);
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
                int64_t no = 0;
                if (!from || !sid || strcasecmp(from, job->f.source_session_id))
                        continue;
                if (!kb_session_created_after(s, job->token_iat))
                        continue;
                /* a session that another share's record already stands
                 * for is not this share's import */
                if (kb_seen_ref_taken_by_other(im->proc.seen, sid,
                                               job->f.share_id))
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
                kb_vendor_set_trace(im->proc.vendor, job->base.tr.traceparent);
                r = kb_vendor_decision(im->proc.vendor, sid, decision_done,
                                       job);
                kb_vendor_set_trace(im->proc.vendor, NULL);
                if (r)
                        kb_proc_hold(&job->base, "cannot queue a vendor call");
                return;
        }
        if (kb_json_get_str(res->body, "next") && n > 0 &&
            ++job->pages < LIST_MAX_PAGES) {
                reconcile(job, job->list_offset + (int)n);
                return;
        }
        /* No session of ours came from it: after a 403 that meant "not for
         * us"; after an unreadable 2xx we cannot tell what happened. */
        v = kb_verdict(KB_STEP_IMPORT, job->import_status, job->import_err,
                       KB_ANS_GONE);
        if (v.act != KB_ACT_DEAD_LETTER) {
                kb_proc_hold(&job->base, "reconcile found nothing");
                return;
        }
        kb_proc_dead_letter(&job->base, v.stage, v.reason,
                            job->import_status == 403
                                ? job->import_detail
                                : "the import's answer could not be read and "
                                  "no session made from the token was found",
                            job->import_status);
}

/* ---- import ---- */

static void workflow_done(const kb_vendor_result_t *res, void *opaque);

/* Acts on the import's answer (kept in job->import_*; @p body the import
 * response, NULL after a follow-up) and @p ans, what the follow-up
 * question said (KB_ANS_NONE before it was asked). */
static void import_decide(job_t *job, kb_answer_t ans, const kb_jview_t *body)
{
        kb_importer_t *im = (kb_importer_t *)job->base.proc;
        kb_verdict_t v = kb_verdict(KB_STEP_IMPORT, job->import_status,
                                    job->import_err, ans);
        int r;

        switch (v.act) {
        case KB_ACT_PUBLISH:
                /* the vendor made the session (2xx): nothing committed
                 * says so yet; after a crash here the restart must
                 * reconcile, not import twice nor dead-letter */
                KB_FAILPOINT("importer.after_import");
                publish_record(im, job, body, 0);
                return;
        case KB_ACT_RECONCILE:
                /* Already imported by us (a retry, or a crash before the
                 * commit) or not addressed to us: the real vendor says the
                 * same for both. Or an answer we could not read. Either
                 * way, look for the session we made. */
                reconcile(job, 0);
                return;
        case KB_ACT_ASK:
                /* 404: the source session is gone or our workflow is
                 * unknown; the workflow tells which. An id that is no
                 * UUID names no vendor workflow: no need to ask. */
                if (!kb_is_uuid(job->workflow_id)) {
                        import_decide(job, KB_ANS_GONE, NULL);
                        return;
                }
                kb_vendor_set_trace(im->proc.vendor, job->base.tr.traceparent);
                r = kb_vendor_workflow(im->proc.vendor, job->workflow_id,
                                       workflow_done, job);
                kb_vendor_set_trace(im->proc.vendor, NULL);
                if (r)
                        kb_proc_hold(&job->base, "cannot queue a vendor call");
                return;
        case KB_ACT_DEAD_LETTER:
                kb_proc_dead_letter(&job->base, v.stage, v.reason,
                                    job->import_detail, job->import_status);
                return;
        default:
                kb_proc_hold(&job->base, "import: vendor call failed");
        }
}

static void workflow_done(const kb_vendor_result_t *res, void *opaque)
{
        job_t *job = opaque;
        kb_answer_t ans = KB_ANS_UNKNOWN;

        if (kb_proc_vendor_settled(&job->base, res))
                return;
        /* only the status counts: a 2xx says the workflow is there,
         * whatever its body */
        if (res->status == 404)
                ans = KB_ANS_GONE;
        else if (res->status >= 200 && res->status < 300)
                ans = KB_ANS_EXISTS;
        import_decide(job, ans, NULL);
}

static void import_done(const kb_vendor_result_t *res, void *opaque)
{
        job_t *job = opaque;

        if (kb_proc_vendor_settled(&job->base, res))
                return;
        /* a 2xx without a readable session is no import we can use */
        job->import_err =
            res->err == KB_OK && !res->view ? KB_ERR_MALFORMED : res->err;
        job->import_status = res->status;
        kb_strlcpy(job->import_detail, res->detail, sizeof(job->import_detail));
        import_decide(job, KB_ANS_NONE, res->view);
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

/* ---- the processor's decisions ---- */

/* An envelope: the processor set the job's trace context. */
static void importer_start(kb_job_t *base)
{
        job_t *job = (job_t *)base;
        kb_importer_t *im = (kb_importer_t *)base->proc;
        kb_envelope_opener_t op;
        kb_envelope_header_t hdr;
        const void *key, *val;
        size_t klen, vlen, tlen = 0;
        char *token = NULL;
        int r;

        key = kb_rec_key(base->rec, &klen);
        if (!key || klen != strlen(im->proc.app_id) ||
            strncasecmp(key, im->proc.app_id, klen)) {
                /* another partner's record on a shared topic: not ours to
                 * open, not ours to dead-letter */
                im->n_foreign++;
                kb_proc_done(base);
                return;
        }
        op.my_application_id = im->proc.app_id;
        op.box_keys = im->box_keys;
        op.signers = im->signers;
        op.now = kb_time_now();
        memset(&hdr, 0, sizeof(hdr));
        val = kb_rec_value(base->rec, &vlen);
        r = kb_envelope_open(val, vlen, &op, &hdr, &job->f, &token, &tlen);
        if (r != KB_OK) {
                memset(&job->f, 0, sizeof(job->f));
                if (hdr.valid)
                        kb_strlcpy(base->share_id, hdr.share_id,
                                   sizeof(base->share_id));
                kb_proc_dead_letter(base, "envelope", open_reason(r),
                                    kb_err2str(r), 0);
                return;
        }
        kb_strlcpy(base->share_id, job->f.share_id, sizeof(base->share_id));
        r = kb_proc_claim(base);
        if (r == 1) {
                /* imported and committed before (or in flight now): a
                 * replay of the same envelope, by a producer retry or by
                 * anyone with write access to the topic */
                im->n_replayed++;
                kb_log_notice("importer",
                              "share %s: envelope already imported; "
                              "replay skipped",
                              base->share_id);
                kb_proc_done(base);
        }
        if (r != 0)
                goto out;
        {
                json_object *claims = NULL;
                if (kb_jwt_decode_unverified(token, tlen, &claims) == KB_OK) {
                        if (kb_json_get_i64(claims, "iat", &job->token_iat))
                                job->token_iat = 0;
                        json_object_put(claims);
                }
        }
        job->partner =
            kb_partners_find(&im->proc.partners, job->f.issuer_application_id);
        if (!job->partner) {
                /* cannot happen: the signer's owner is a partner */
                kb_proc_dead_letter(base, "envelope", "unknown_issuer",
                                    "issuer is not a partner", 0);
                goto out;
        }
        kb_strlcpy(job->workflow_id,
                   kb_partner_workflow(job->partner, job->f.session_kind),
                   sizeof(job->workflow_id));
        if (!job->workflow_id[0]) {
                kb_proc_dead_letter(base, "import", "no_workflow_for_kind",
                                    job->f.session_kind == KB_SESSION_BUSINESS
                                        ? "no workflow_id.business for this "
                                          "partner"
                                        : "no workflow_id.user for this "
                                          "partner",
                                    0);
                goto out;
        }
        if (choose_vendor_data(job->partner, &job->f, job->vendor_data,
                               sizeof(job->vendor_data)) == -1) {
                kb_proc_dead_letter(base, "import", "vendor_data_invalid",
                                    "vendor_data template gave nothing usable",
                                    0);
                goto out;
        }
        kb_vendor_set_trace(im->proc.vendor, job->base.tr.traceparent);
        r = kb_vendor_import(im->proc.vendor, token, tlen, job->workflow_id,
                             job->vendor_data, job->partner->trust_review,
                             import_done, job);
        kb_vendor_set_trace(im->proc.vendor, NULL);
        if (r != KB_OK)
                kb_proc_hold(base, "cannot queue a vendor call");
out:
        kb_envelope_token_free(token);
}

static void importer_counters(const kb_proc_t *p, char *buf, size_t bufsz)
{
        const kb_importer_t *im = (const kb_importer_t *)p;
        kb_status_stats_t ss;

        kb_status_stats(im->status, &ss);
        kb_snprintf(
            buf, bufsz,
            "imported %llu, reconciled %llu, replays %llu, other "
            "partners' %llu, status updates %llu, status repeats "
            "%llu, status stale %llu, status unchanged %llu, status "
            "not imported %llu",
            (unsigned long long)im->n_imported,
            (unsigned long long)im->n_reconciled,
            (unsigned long long)im->n_replayed,
            (unsigned long long)im->n_foreign, (unsigned long long)ss.published,
            (unsigned long long)ss.repeats, (unsigned long long)ss.stale,
            (unsigned long long)ss.unchanged,
            (unsigned long long)ss.not_imported);
}

static void importer_free(kb_proc_t *p)
{
        kb_importer_destroy((kb_importer_t *)p);
}

static const kb_proc_ops_t importer_ops = {
        .role = "importer",
        .scope = KB_SCOPE_IMPORTER,
        .job_size = sizeof(job_t),
        .dead_letter_state = 0,
        .requested_at_from_record = 0, /* the issuer's, or unknown */
        .start = importer_start,
        .dlq_extra = env_extra,
        .counters = importer_counters,
        .destroy = importer_free,
        .webhook_action = kb_importer_webhook_action,
};

/* ---- life cycle ---- */

static int load_box_keys(kb_importer_t *im, const kb_conf_t *conf, char *errstr,
                         size_t errstr_size)
{
        char **paths, *pass = NULL, kerr[512];
        size_t n, i, pass_len = 0;
        int r = KB_OK;

        if (kb_conf_is_set(conf, "keys.passphrase") &&
            (r = kb_conf_get_secret(conf, "keys.passphrase", &pass, &pass_len,
                                    errstr, errstr_size)) != KB_OK)
                return r == KB_ERR_NOMEM ? r : KB_ERR_CONFIG;
        paths = kb_conf_get_list(conf, "keys.box_secret", &n);
        if (!paths) {
                r = KB_ERR_NOMEM;
                goto out;
        }
        for (i = 0; i < n && !r; i++) {
                kb_key_t *k = kb_key_load_secret(paths[i], pass, pass_len, kerr,
                                                 sizeof(kerr));
                int ar;

                if (!k && errno == ENOMEM) {
                        /* the file may be fine: not the config's fault */
                        r = KB_ERR_NOMEM;
                } else if (!k || kb_key_type(k) != KB_KEY_BOX) {
                        kb_snprintf(errstr, errstr_size,
                                    "%s: keys.box_secret: %s",
                                    kb_conf_origin(conf, "keys.box_secret"),
                                    k ? "not an x25519 key" : kerr);
                        kb_key_destroy(k);
                        r = KB_ERR_CONFIG;
                } else if ((ar = kb_keyring_add(im->box_keys, k,
                                                im->proc.app_id))) {
                        if (ar == KB_ERR_EXISTS)
                                kb_snprintf(
                                    errstr, errstr_size,
                                    "%s: keys.box_secret: key %s listed twice",
                                    kb_conf_origin(conf, "keys.box_secret"),
                                    kb_key_id(k));
                        kb_key_destroy(k);
                        r = ar == KB_ERR_EXISTS ? KB_ERR_CONFIG : ar;
                } else {
                        /* metrics: key ids in use (ops_http.h); k is the
                         * ring's now, alive as long as the importer */
                        (void)kb_ops_http_key_id(im->proc.opsh, "box",
                                                 kb_key_id(k));
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
        char **topics = NULL;
        const char *v;
        size_t i;
        int r;

        *is_config_error = 0;
        /* a test build's KB_FAILPOINTS; a bad one stops the start */
        if (KB_FAILPOINTS_SETUP(errstr, errstr_size)) {
                *is_config_error = 1;
                free(im);
                return NULL;
        }
        if (!im) {
                kb_snprintf(errstr, errstr_size, "out of memory");
                return NULL;
        }
        r = kb_proc_init(&im->proc, &importer_ops, conf,
                         KB_IMPORTER_STATE_WINDOW_S, errstr, errstr_size);
        if (r != KB_OK)
                goto fail;
        {
                kb_status_conf_t sc = {
                        kb_conf_get(conf, "importer.status_topic"),
                        kb_seen_topic(im->proc.seen),
                        im->proc.app_id,
                        kb_conf_get_int(conf, "importer.status_window_s"),
                        NULL,
                        "importer"
                };
                kb_seen_observer_t obs;
                im->status = kb_status_new(&sc);
                if (!im->status)
                        goto nomem;
                kb_status_observer(im->status, &obs);
                kb_seen_set_observer(im->proc.seen, &obs);
        }
        v = kb_conf_get(conf, "importer.output_topic");
        kb_strlcpy(im->output_topic, v ? v : "", sizeof(im->output_topic));
        topics = kb_conf_get_list(conf, "importer.token_topics", NULL);
        im->box_keys = kb_keyring_new();
        im->signers = kb_keyring_new();
        if (!topics || !im->box_keys || !im->signers ||
            kb_proc_topic(&im->proc, 1, im->output_topic))
                goto nomem;
        for (i = 0; topics[i]; i++)
                if (kb_proc_topic(&im->proc, 0, topics[i]))
                        goto nomem;
        r = load_box_keys(im, conf, errstr, errstr_size);
        if (r == KB_ERR_NOMEM)
                goto nomem;
        if (r != KB_OK)
                goto fail;
        for (i = 0; i < im->proc.partners.n; i++) {
                kb_partner_t *p = &im->proc.partners.v[i];
                r = kb_keyring_add_bundle(im->signers, p->bundle, KB_KEY_SIGN,
                                          p->application_id);
                if (r == KB_ERR_NOMEM)
                        goto nomem;
                if (r != KB_OK) {
                        char key[128];
                        kb_snprintf(key, sizeof(key), "partner.%s.keys",
                                    p->name);
                        kb_snprintf(errstr, errstr_size,
                                    "%s: %s: a signing key is also listed "
                                    "for another partner",
                                    kb_conf_origin(conf, key), key);
                        r = KB_ERR_CONFIG;
                        goto fail;
                }
        }
        kb_conf_list_free(topics);
        return im;
nomem:
        r = KB_ERR_NOMEM;
fail:
        kb_conf_list_free(topics);
        return kb_proc_new_failed(&im->proc, r, is_config_error, errstr,
                                  errstr_size);
}

void kb_importer_destroy(kb_importer_t *im)
{
        if (!im)
                return;
        /* the base first: its last commits still reach the index */
        kb_proc_destroy(&im->proc);
        KB_FAILPOINTS_REPORT();
        kb_status_destroy(im->status);
        kb_buf_free(&im->rec, 0);
        kb_keyring_destroy(im->box_keys);
        kb_keyring_destroy(im->signers);
        free(im);
}

int kb_importer_webhook_action(void *opaque, const kb_wh_delivery_t *dlv,
                               kb_wh_records_t *out, char *errstr,
                               size_t errstr_size)
{
        kb_importer_t *im = opaque;

        return kb_status_action(im->status, dlv, out, errstr, errstr_size);
}

kb_status_t *kb_importer_status(kb_importer_t *im)
{
        return im->status;
}

kb_proc_t *kb_importer_proc_new(const kb_conf_t *conf, int *is_config_error,
                                char *errstr, size_t errstr_size)
{
        kb_importer_t *im =
            kb_importer_new(conf, is_config_error, errstr, errstr_size);

        return im ? &im->proc : NULL;
}
