/* dlq_redrive.c -- putting dead letters' inputs back, exactly once */
#include "dlq_redrive.h"

#include <stdlib.h>
#include <string.h>

#include "dlq.h"
#include "failpoint.h"
#include "json.h"
#include "kafka.h"
#include "util.h"
#include "watchdog.h"

/* Retries of a retriable error: init, abort, commit. */
#define TXN_RETRIES 3

struct kb_dlq_redrive_s {
        rd_kafka_t *rk;
        char txid[KB_DLQ_REDRIVE_TXID_MAX];
        int timeout_ms;
        int txn_timeout_ms; /* transaction.timeout.ms */
        int64_t txn_start;  /* kb_mono_ms() when the transaction began */
        int txn;            /* transactions begun */
        int failed;         /* delivery failures in the current transaction */
        rd_kafka_resp_err_t dr_code; /* the first one's */
        char dr_err[256];
        kb_watchdog_t *wd; /* on the transactional calls (watch()) */
};

/* The transactional call @p what with timeout @p timeout_ms begins: the
 * process ends if it is still under way KB_WATCHDOG_TXN_GRACE_MS after
 * (watchdog.h). unwatch() when it returned. */
static void watch(kb_dlq_redrive_t *rd, const char *what, int timeout_ms)
{
        kb_watchdog_arm(rd->wd, what,
                        (int64_t)timeout_ms + KB_WATCHDOG_TXN_GRACE_MS);
}

static void unwatch(kb_dlq_redrive_t *rd)
{
        kb_watchdog_disarm(rd->wd);
}

int kb_dlq_redrive_txid(const char *dlq_topic, char *out, size_t outsz)
{
        if (!dlq_topic || !*dlq_topic ||
            strlen(KB_DLQ_REDRIVE_TXID_PREFIX) + strlen(dlq_topic) >= outsz)
                return -1;
        kb_snprintf(out, outsz, "%s%s", KB_DLQ_REDRIVE_TXID_PREFIX, dlq_topic);
        return 0;
}

int kb_dlq_redrive_txn_timeout_ms(int timeout_ms)
{
        int64_t t = 2 * (int64_t)timeout_ms;

        if (t < 60000)
                t = 60000;
        if (t > KB_DLQ_REDRIVE_TXN_TIMEOUT_MAX_MS)
                t = KB_DLQ_REDRIVE_TXN_TIMEOUT_MAX_MS;
        return (int)t;
}

/* How long a wait inside the open transaction may last: --timeout, cut to
 * end a tenth of transaction.timeout.ms before the broker would abort the
 * transaction. 0 when that time is up. */
static int txn_wait_ms(const kb_dlq_redrive_t *rd)
{
        int64_t left = rd->txn_start + rd->txn_timeout_ms -
                       rd->txn_timeout_ms / 10 - kb_mono_ms();

        if (left <= 0)
                return 0;
        return left < rd->timeout_ms ? (int)left : rd->timeout_ms;
}

static void dr_cb(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque)
{
        kb_dlq_redrive_t *rd = opaque;

        (void)rk;
        if (m->err && !rd->failed++) {
                rd->dr_code = m->err;
                kb_snprintf(rd->dr_err, sizeof(rd->dr_err), "%s [%d]: %s",
                            rd_kafka_topic_name(m->rkt), (int)m->partition,
                            rd_kafka_err2str(m->err));
        }
}

static int is_fenced(rd_kafka_resp_err_t code)
{
        return code == RD_KAFKA_RESP_ERR__FENCED ||
               code == RD_KAFKA_RESP_ERR_PRODUCER_FENCED ||
               code == RD_KAFKA_RESP_ERR_INVALID_PRODUCER_EPOCH;
}

/* Has the open transaction outlived transaction.timeout.ms? (The broker
 * then aborts it and bumps the producer's epoch: to us, that looks like
 * being fenced.) */
static int txn_expired(const kb_dlq_redrive_t *rd)
{
        return rd->txn_start &&
               kb_mono_ms() - rd->txn_start >= rd->txn_timeout_ms;
}

/* Maps a transactional API error @p code / @p text; fills @p errstr. */
static int map_err(const kb_dlq_redrive_t *rd, rd_kafka_resp_err_t code,
                   int fatal, const char *text, const char *what, char *errstr,
                   size_t errstr_size)
{
        if (is_fenced(code) && txn_expired(rd)) {
                kb_snprintf(errstr, errstr_size,
                            "%s: transaction timed out: open longer than "
                            "transaction.timeout.ms (%d ms), the broker "
                            "aborted it",
                            what, rd->txn_timeout_ms);
                return KB_ERR_TIMEOUT;
        }
        if (is_fenced(code)) {
                kb_snprintf(errstr, errstr_size,
                            "%s: fenced: another redrive run of this "
                            "dead-letter topic (transactional id %s) took "
                            "over",
                            what, rd->txid);
                return KB_ERR_STATE;
        }
        kb_snprintf(errstr, errstr_size, "%s: %s", what, text);
        if (code == RD_KAFKA_RESP_ERR__TIMED_OUT)
                return KB_ERR_TIMEOUT;
        return fatal ? KB_ERR_STATE : KB_ERR_KAFKA;
}

/* map_err() of a transactional API error. Destroys @p e. */
static int txn_err(const kb_dlq_redrive_t *rd, rd_kafka_error_t *e,
                   const char *what, char *errstr, size_t errstr_size)
{
        int r = map_err(rd, rd_kafka_error_code(e), rd_kafka_error_is_fatal(e),
                        rd_kafka_error_string(e), what, errstr, errstr_size);

        rd_kafka_error_destroy(e);
        return r;
}

/* A retriable error (a timeout included) that may be tried again. */
static int retry(rd_kafka_error_t *e, int tries)
{
        if (tries < TXN_RETRIES &&
            (rd_kafka_error_is_retriable(e) ||
             rd_kafka_error_code(e) == RD_KAFKA_RESP_ERR__TIMED_OUT) &&
            !rd_kafka_error_is_fatal(e)) {
                rd_kafka_error_destroy(e);
                return 1;
        }
        return 0;
}

kb_dlq_redrive_t *kb_dlq_redrive_new(const kb_conf_t *conf,
                                     const char *transactional_id,
                                     int timeout_ms, int *err_out, char *errstr,
                                     size_t errstr_size)
{
        /* A run that dies inside a transaction holds the input partitions'
         * last stable offset back -- the daemons read read_committed --
         * until a new run fences it or this timeout aborts it. */
        const char *extra[] = { "transactional.id", transactional_id,
                                "transaction.timeout.ms", NULL, NULL };
        kb_dlq_redrive_t *rd = calloc(1, sizeof(*rd));
        rd_kafka_error_t *e;
        rd_kafka_conf_t *rkc;
        char rerr[256], tmo[24];
        int err = KB_ERR_NOMEM, tries;

        if (!rd) {
                kb_snprintf(errstr, errstr_size, "out of memory");
                goto fail;
        }
        /* a test build's KB_FAILPOINTS; a bad one stops the run */
        if (KB_FAILPOINTS_SETUP(errstr, errstr_size)) {
                err = KB_ERR_CONFIG;
                goto fail;
        }
        kb_strlcpy(rd->txid, transactional_id, sizeof(rd->txid));
        rd->timeout_ms = timeout_ms > 0 ? timeout_ms : 1;
        rd->txn_timeout_ms = kb_dlq_redrive_txn_timeout_ms(rd->timeout_ms);
        kb_snprintf(tmo, sizeof(tmo), "%d", rd->txn_timeout_ms);
        extra[3] = tmo;
        rkc = kb_kafka_conf_new(conf, RD_KAFKA_PRODUCER, extra, errstr,
                                errstr_size);
        if (!rkc) {
                err = KB_ERR_CONFIG;
                goto fail;
        }
        if (!(rd->wd = kb_watchdog_new("redrive", NULL, NULL))) {
                rd_kafka_conf_destroy(rkc);
                kb_snprintf(errstr, errstr_size,
                            "cannot start the watchdog thread");
                goto fail;
        }
        rd_kafka_conf_set_dr_msg_cb(rkc, dr_cb);
        rd_kafka_conf_set_opaque(rkc, rd);
        rd->rk = rd_kafka_new(RD_KAFKA_PRODUCER, rkc, rerr, sizeof(rerr));
        if (!rd->rk) {
                rd_kafka_conf_destroy(rkc);
                kb_snprintf(errstr, errstr_size, "kafka producer: %s", rerr);
                err = KB_ERR_CONFIG;
                goto fail;
        }
        for (tries = 0;; tries++) {
                watch(rd, "init_transactions", rd->timeout_ms);
                e = rd_kafka_init_transactions(rd->rk, rd->timeout_ms);
                unwatch(rd);
                if (!e)
                        return rd;
                if (retry(e, tries))
                        continue;
                err = txn_err(rd, e, "initialising transactions", errstr,
                              errstr_size);
                goto fail;
        }
fail:
        if (err_out)
                *err_out = err;
        kb_dlq_redrive_destroy(rd);
        return NULL;
}

void kb_dlq_redrive_destroy(kb_dlq_redrive_t *rd)
{
        if (!rd)
                return;
        if (rd->rk)
                rd_kafka_destroy(rd->rk);
        kb_watchdog_destroy(rd->wd);
        free(rd);
}

/* The marker record (schemas/dead-letter-redriven.schema.json). */
static char *marker_json(const char *dlq_topic, const kb_dlq_redrive_item_t *it,
                         const char *by, size_t *len)
{
        json_object *o = json_object_new_object(), *of = NULL, *to = NULL;
        const char *txt;
        char *s = NULL;

        if (!o)
                return NULL;
        of = json_object_new_object();
        to = json_object_new_object();
        if (!of || !to || kb_json_add_str(of, "topic", dlq_topic) ||
            kb_json_add_i64(of, "partition", it->dlq_partition) ||
            kb_json_add_i64(of, "offset", it->dlq_offset) ||
            kb_json_add_str(to, "topic", it->topic) ||
            kb_json_add_i64(to, "partition", it->partition))
                goto out;
        if (kb_json_add_str(o, "format", KB_DLQ_REDRIVEN_FORMAT) ||
            json_object_object_add(
                o, "share_id",
                it->share_id ? json_object_new_string(it->share_id) : NULL) ||
            json_object_object_add(o, "of", of))
                goto out;
        of = NULL;
        if (json_object_object_add(o, "to", to))
                goto out;
        to = NULL;
        if (kb_json_add_i64(o, "at", kb_time_now()) ||
            kb_json_add_str(o, "by", by))
                goto out;
        txt = kb_json_str(o, len);
        s = txt ? strdup(txt) : NULL;
out:
        json_object_put(of);
        json_object_put(to);
        json_object_put(o);
        return s;
}

/* Produces one item's input (unless marker_only). KB_OK or an error in
 * @p errstr. */
static int produce_input(kb_dlq_redrive_t *rd, const char *dlq_topic,
                         const kb_dlq_redrive_item_t *it, char *errstr,
                         size_t errstr_size)
{
        rd_kafka_headers_t *h;
        rd_kafka_resp_err_t err;
        char of[KB_DLQ_REDRIVE_TXID_MAX + 48];
        size_t i;

        if (it->marker_only)
                return KB_OK;
        h = rd_kafka_headers_new(8);
        if (!h) {
                kb_snprintf(errstr, errstr_size, "out of memory");
                return KB_ERR_NOMEM;
        }
        kb_snprintf(of, sizeof(of), "%s/%d/%lld", dlq_topic,
                    (int)it->dlq_partition, (long long)it->dlq_offset);
        for (i = 0; it->headers && it->headers[i] && it->headers[i + 1]; i += 2)
                rd_kafka_header_add(h, it->headers[i], -1, it->headers[i + 1],
                                    -1);
        rd_kafka_header_add(h, "kb-redrive-of", -1, of, -1);
        err = rd_kafka_producev(
            rd->rk, RD_KAFKA_V_TOPIC(it->topic),
            RD_KAFKA_V_PARTITION(it->partition),
            RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
            RD_KAFKA_V_KEY(it->key, it->key ? it->key_len : 0),
            RD_KAFKA_V_VALUE((void *)it->value, it->value_len),
            RD_KAFKA_V_HEADERS(h), RD_KAFKA_V_END);
        if (err) {
                rd_kafka_headers_destroy(h);
                kb_snprintf(errstr, errstr_size, "producing to %s [%d]: %s",
                            it->topic, (int)it->partition,
                            rd_kafka_err2str(err));
                return KB_ERR_KAFKA;
        }
        return KB_OK;
}

/* Produces one item's input and marker. KB_OK or an error in @p errstr. */
static int produce_item(kb_dlq_redrive_t *rd, const char *dlq_topic,
                        const kb_dlq_redrive_item_t *it, const char *by,
                        char *errstr, size_t errstr_size)
{
        rd_kafka_headers_t *mh;
        rd_kafka_resp_err_t err;
        char *marker;
        size_t mlen = 0;
        int r;

        if ((r = produce_input(rd, dlq_topic, it, errstr, errstr_size)))
                return r;
        marker = marker_json(dlq_topic, it, by, &mlen);
        mh = rd_kafka_headers_new(1);
        if (!marker || !mh) {
                free(marker);
                if (mh)
                        rd_kafka_headers_destroy(mh);
                kb_snprintf(errstr, errstr_size, "out of memory");
                return KB_ERR_NOMEM;
        }
        rd_kafka_header_add(mh, "content-type", -1, "application/json", -1);
        err = rd_kafka_producev(
            rd->rk, RD_KAFKA_V_TOPIC(dlq_topic),
            RD_KAFKA_V_PARTITION(it->dlq_partition),
            RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
            RD_KAFKA_V_KEY(it->share_id,
                           it->share_id ? strlen(it->share_id) : 0),
            RD_KAFKA_V_VALUE(marker, mlen), RD_KAFKA_V_HEADERS(mh),
            RD_KAFKA_V_END);
        free(marker);
        if (err) {
                rd_kafka_headers_destroy(mh);
                kb_snprintf(errstr, errstr_size, "producing to %s [%d]: %s",
                            dlq_topic, (int)it->dlq_partition,
                            rd_kafka_err2str(err));
                return KB_ERR_KAFKA;
        }
        return KB_OK;
}

/* Aborts the current transaction (retrying a retriable error); returns
 * @p r, or KB_ERR_STATE when the abort failed (the producer is of no more
 * use; the broker aborts the transaction after transaction.timeout.ms),
 * said in @p errstr after the first error. */
static int abort_txn(kb_dlq_redrive_t *rd, int r, char *errstr,
                     size_t errstr_size)
{
        rd_kafka_error_t *e;
        size_t len;
        int tries;

        for (tries = 0;; tries++) {
                watch(rd, "abort_transaction", rd->timeout_ms);
                e = rd_kafka_abort_transaction(rd->rk, rd->timeout_ms);
                unwatch(rd);
                if (!e)
                        return r;
                if (!retry(e, tries))
                        break;
        }
        len = strlen(errstr);
        if (len < errstr_size)
                kb_snprintf(errstr + len, errstr_size - len,
                            " (and the abort failed: %s; the broker aborts "
                            "the transaction after %d ms)",
                            rd_kafka_error_string(e), rd->txn_timeout_ms);
        rd_kafka_error_destroy(e);
        return KB_ERR_STATE;
}

/* A fatal producer error raised in the background (fenced while
 * producing): KB_OK when none. */
static int fatal_err(kb_dlq_redrive_t *rd, const char *what, char *errstr,
                     size_t errstr_size)
{
        char text[256];
        rd_kafka_resp_err_t code =
            rd_kafka_fatal_error(rd->rk, text, sizeof(text));

        if (!code)
                return KB_OK;
        return map_err(rd, code, 1, text, what, errstr, errstr_size);
}

int kb_dlq_redrive_txn(kb_dlq_redrive_t *rd, const char *dlq_topic,
                       const kb_dlq_redrive_item_t *items, size_t n,
                       const char *by, kb_dlq_redrive_cb *before_commit,
                       void *opaque, char *errstr, size_t errstr_size)
{
        rd_kafka_error_t *e;
        size_t i;
        int r, tries, wait;

        rd->failed = 0;
        rd->dr_err[0] = '\0';
        rd->dr_code = RD_KAFKA_RESP_ERR_NO_ERROR;
        rd->txn_start = 0;
        watch(rd, "begin_transaction", 0);
        e = rd_kafka_begin_transaction(rd->rk);
        unwatch(rd);
        if (e)
                return txn_err(rd, e, "beginning a transaction", errstr,
                               errstr_size);
        rd->txn_start = kb_mono_ms();
        rd->txn++;
        for (i = 0; i < n; i++) {
                r = produce_item(rd, dlq_topic, &items[i], by, errstr,
                                 errstr_size);
                if (r != KB_OK)
                        return abort_txn(rd, r, errstr, errstr_size);
        }
        /* every record at the broker (inside the open transaction) before
         * the commit: a delivery failure aborts the whole batch */
        wait = txn_wait_ms(rd);
        if (rd_kafka_flush(rd->rk, wait > 0 ? wait : 1) ||
            rd_kafka_outq_len(rd->rk) > 0) {
                if ((r = fatal_err(rd, "producing", errstr, errstr_size)))
                        return r;
                kb_snprintf(errstr, errstr_size,
                            "records not delivered within %d ms", wait);
                return abort_txn(rd, KB_ERR_TIMEOUT, errstr, errstr_size);
        }
        if ((r = fatal_err(rd, "producing", errstr, errstr_size)))
                return r;
        if (rd->failed) {
                r = KB_ERR_KAFKA;
                kb_snprintf(errstr, errstr_size, "delivery failed: %s",
                            rd->dr_err);
                if (is_fenced(rd->dr_code))
                        r = map_err(rd, rd->dr_code, 0, rd->dr_err,
                                    "delivery failed", errstr, errstr_size);
                return abort_txn(rd, r, errstr, errstr_size);
        }
        if (before_commit)
                before_commit(opaque, rd->txn, n);
        /* the batch and its markers delivered in the open transaction */
        KB_FAILPOINT("redrive.before_commit");
        for (tries = 0;; tries++) {
                wait = txn_wait_ms(rd);
                if (!wait && !tries) {
                        /* too late to commit before the broker aborts it */
                        kb_snprintf(errstr, errstr_size,
                                    "transaction timed out: no time left to "
                                    "commit within transaction.timeout.ms "
                                    "(%d ms)",
                                    rd->txn_timeout_ms);
                        return abort_txn(rd, KB_ERR_TIMEOUT, errstr,
                                         errstr_size);
                }
                watch(rd, "commit_transaction", wait > 0 ? wait : 1);
                e = rd_kafka_commit_transaction(rd->rk, wait > 0 ? wait : 1);
                unwatch(rd);
                if (!e)
                        return KB_OK;
                if (rd_kafka_error_txn_requires_abort(e)) {
                        r = txn_err(rd, e, "committing", errstr, errstr_size);
                        return abort_txn(rd, r, errstr, errstr_size);
                }
                if (is_fenced(rd_kafka_error_code(e)))
                        /* not committed: fenced (or timed out and aborted) */
                        return txn_err(rd, e, "committing", errstr,
                                       errstr_size);
                if (txn_wait_ms(rd) > 0 && retry(e, tries))
                        continue;
                /* fatal, or retriable for too long: whether it committed
                 * is unknown here; the next run's read tells */
                txn_err(rd, e, "committing", errstr, errstr_size);
                return KB_ERR_RETRY;
        }
}

/* ---- the markers ---- */

int kb_dlq_is_marker(json_object *doc)
{
        const char *f = doc ? kb_json_get_str(doc, "format") : NULL;

        return f && !strcmp(f, KB_DLQ_REDRIVEN_FORMAT);
}

int kb_dlq_marks_add(kb_dlq_marks_t *m, json_object *doc)
{
        json_object *of;
        const char *t;
        int64_t p, o;

        if (!kb_dlq_is_marker(doc))
                return 0;
        if (!json_object_object_get_ex(doc, "of", &of) ||
            !(t = kb_json_get_str(of, "topic")) || !m->topic ||
            strcmp(t, m->topic) || kb_json_get_i64(of, "partition", &p) ||
            kb_json_get_i64(of, "offset", &o) || p < 0 || p > INT32_MAX ||
            o < 0)
                return 1;
        if (m->n == m->cap) {
                size_t nc = m->cap ? m->cap * 2 : 64;
                kb_dlq_pos_t *nv = realloc(m->v, nc * sizeof(*nv));

                if (!nv)
                        return -1;
                m->v = nv;
                m->cap = nc;
        }
        m->v[m->n].partition = (int32_t)p;
        m->v[m->n].offset = o;
        m->n++;
        m->sorted = 0;
        return 1;
}

static int pos_cmp(const void *a, const void *b)
{
        const kb_dlq_pos_t *x = a, *y = b;

        if (x->partition != y->partition)
                return x->partition < y->partition ? -1 : 1;
        return x->offset < y->offset ? -1 : x->offset > y->offset;
}

int kb_dlq_redrive_marked(kb_dlq_marks_t *m, int32_t partition, int64_t offset)
{
        kb_dlq_pos_t k = { partition, offset };

        if (!m->n)
                return 0;
        if (!m->sorted) {
                qsort(m->v, m->n, sizeof(*m->v), pos_cmp);
                m->sorted = 1;
        }
        return bsearch(&k, m->v, m->n, sizeof(*m->v), pos_cmp) != NULL;
}

void kb_dlq_marks_free(kb_dlq_marks_t *m)
{
        free(m->v);
        m->v = NULL;
        m->n = m->cap = 0;
}
