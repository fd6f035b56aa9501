/* wh_produce.c -- the webhook intake's Kafka side: an idempotent producer,
 * delivery reports, and the answer once every record of a delivery is
 * acked (or not) */
#include "wh_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "util.h"

/* Answers the delivery, settles the action's completion and the replay
 * keys. The pending stays on the list (the caller unlinks it). */
static void pending_answer(kb_wh_pending_t *p, const char *why)
{
        kb_wh_intake_t *wi = p->wi;
        int64_t now = kb_time_now();
        char ok[64], saved[KB_LOG_TRACE_BYTES];

        /* the delivery's lines carry its trace id, also here on the
         * producer's thread */
        kb_log_trace_push(p->trace_id, saved);
        /* the action's state first: the vendor's next try must find it */
        if (p->settled)
                p->settled(p->settled_arg, !p->failed);
        p->settled = NULL;
        if (p->failed) {
                /* not remembered: the vendor's retry must act */
                kb_wh_replay_release(wi->replay, p->key);
                kb_log_warn(
                    wi->name, "delivery for session %s answered 503: %s",
                    p->session_id, why ? why : "Kafka did not ack its records");
                kb_wh_reply_unavailable(wi, p->req,
                                        why ? "Shutting down."
                                            : "Kafka is not available; "
                                              "retry later.");
        } else {
                (void)kb_wh_replay_commit(wi->replay, p->key, now);
                if (p->key2[0])
                        (void)kb_wh_replay_commit(wi->replay, p->key2, now);
                atomic_fetch_add(&wi->st.accepted, 1);
                kb_log_info(wi->name,
                            "delivery for session %s: %zu record(s) acked",
                            p->session_id, p->nrecords);
                snprintf(ok, sizeof(ok),
                         "{\"result\":\"accepted\",\"records\":%zu}",
                         p->nrecords);
                kb_httpd_reply(p->req, 200, "application/json", ok, strlen(ok),
                               NULL);
        }
        p->req = NULL;
        atomic_fetch_sub(&wi->inflight, 1);
        kb_log_trace_pop(saved);
}

static void pending_unlink(kb_wh_pending_t *p)
{
        kb_wh_intake_t *wi = p->wi;

        pthread_mutex_lock(&wi->plock);
        if (p->prev)
                p->prev->next = p->next;
        else
                wi->pending = p->next;
        if (p->next)
                p->next->prev = p->prev;
        p->prev = p->next = NULL;
        pthread_mutex_unlock(&wi->plock);
}

static void pending_free(kb_wh_pending_t *p)
{
        pthread_mutex_destroy(&p->lock);
        free(p);
}

/* One report (or the producing call itself) is done. */
static void pending_done(kb_wh_pending_t *p, int failed)
{
        int n, mine = 0;

        pthread_mutex_lock(&p->lock);
        if (failed)
                p->failed = 1;
        n = --p->outstanding;
        /* one answered at shutdown already is freed by
         * kb_wh_produce_term() */
        if (n == 0 && !p->answered)
                mine = p->answered = 1;
        pthread_mutex_unlock(&p->lock);
        if (mine) {
                pending_answer(p, NULL);
                pending_unlink(p);
                pending_free(p);
        }
}

static void dr_cb(rd_kafka_t *rk, const rd_kafka_message_t *rkm, void *opaque)
{
        kb_wh_pending_t *p = rkm->_private;

        (void)rk;
        (void)opaque;
        if (!p)
                return;
        if (rkm->err) {
                char saved[KB_LOG_TRACE_BYTES];
                kb_log_trace_push(p->trace_id, saved);
                kb_log_notice(p->wi->name,
                              "record for session %s not acked: %s",
                              p->session_id, rd_kafka_err2str(rkm->err));
                kb_log_trace_pop(saved);
        } else
                atomic_fetch_add(&p->wi->st.records_acked, 1);
        pending_done(p, rkm->err != RD_KAFKA_RESP_ERR_NO_ERROR);
}

static rd_kafka_resp_err_t produce_one(kb_wh_intake_t *wi, const kb_wh_rec_t *r,
                                       void *opaque)
{
        rd_kafka_headers_t *hdrs = NULL;
        rd_kafka_resp_err_t err;
        size_t i;

        if (r->nhdrs) {
                hdrs = rd_kafka_headers_new(r->nhdrs);
                for (i = 0; i < r->nhdrs; i++)
                        rd_kafka_header_add(hdrs, r->hdrs[2 * i], -1,
                                            r->hdrs[2 * i + 1], -1);
        }
        err = rd_kafka_producev(wi->rk, RD_KAFKA_V_TOPIC(r->topic),
                                RD_KAFKA_V_KEY(r->key, r->key_len),
                                RD_KAFKA_V_VALUE(r->value, r->value_len),
                                RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
                                RD_KAFKA_V_OPAQUE(opaque),
                                RD_KAFKA_V_HEADERS(hdrs), RD_KAFKA_V_END);
        if (err && hdrs)
                rd_kafka_headers_destroy(hdrs); /* owned by us on failure */
        return err;
}

void kb_wh_produce(kb_wh_intake_t *wi, kb_httpd_req_t *req,
                   kb_wh_records_t *recs, const char *key, const char *key2,
                   const char *session_id, const char *trace_id)
{
        kb_wh_pending_t *p = calloc(1, sizeof(*p));
        size_t i;

        if (!p) {
                kb_wh_records_settle(recs, 0);
                kb_wh_replay_release(wi->replay, key);
                kb_wh_reply_unavailable(wi, req, "Out of memory.");
                return;
        }
        p->wi = wi;
        p->req = req;
        p->nrecords = recs->n;
        /* the completion goes with the delivery */
        p->settled = recs->settled;
        p->settled_arg = recs->settled_arg;
        recs->settled = NULL;
        recs->settled_arg = NULL;
        kb_strlcpy(p->key, key, sizeof(p->key));
        kb_strlcpy(p->key2, key2, sizeof(p->key2));
        kb_strlcpy(p->session_id, session_id, sizeof(p->session_id));
        kb_strlcpy(p->trace_id, trace_id ? trace_id : "", sizeof(p->trace_id));
        pthread_mutex_init(&p->lock, NULL);
        /* one for this call: a report may come before the loop ends */
        p->outstanding = 1;
        atomic_fetch_add(&wi->inflight, 1);
        pthread_mutex_lock(&wi->plock);
        p->next = wi->pending;
        if (p->next)
                p->next->prev = p;
        wi->pending = p;
        pthread_mutex_unlock(&wi->plock);
        for (i = 0; i < recs->n; i++) {
                rd_kafka_resp_err_t err;
                pthread_mutex_lock(&p->lock);
                p->outstanding++;
                pthread_mutex_unlock(&p->lock);
                err = produce_one(wi, &recs->v[i], p);
                if (err) {
                        /* queue full, unknown topic, fatal: 503; the
                         * records already queued still report */
                        if (err == RD_KAFKA_RESP_ERR__FATAL)
                                kb_log_error(wi->name,
                                             "producer failed for good: %s",
                                             rd_kafka_err2str(err));
                        else
                                kb_log_notice(wi->name,
                                              "record for session %s not "
                                              "queued: %s",
                                              p->session_id,
                                              rd_kafka_err2str(err));
                        pending_done(p, 1);
                        break;
                }
        }
        pending_done(p, 0);
}

static void *poller_main(void *arg)
{
        kb_wh_intake_t *wi = arg;

        while (!atomic_load(&wi->stop_poller))
                rd_kafka_poll(wi->rk, 100);
        return NULL;
}

int kb_wh_produce_init(kb_wh_intake_t *wi, rd_kafka_conf_t *rkc, char *errstr,
                       size_t errstr_size)
{
        char tmo[24], err[256];
        const char *const set[] = { "enable.idempotence", "true", "acks", "all",
                                    "message.timeout.ms", tmo,    NULL };
        size_t i;

        if (!rkc) {
                kb_snprintf(errstr, errstr_size, "no Kafka configuration");
                return KB_ERR_INVALID_ARG;
        }
        snprintf(tmo, sizeof(tmo), "%d", wi->conf.kafka_timeout_ms);
        for (i = 0; set[i]; i += 2)
                if (rd_kafka_conf_set(rkc, set[i], set[i + 1], err,
                                      sizeof(err)) != RD_KAFKA_CONF_OK) {
                        kb_snprintf(errstr, errstr_size, "%s: %s", set[i], err);
                        rd_kafka_conf_destroy(rkc);
                        return KB_ERR_KAFKA;
                }
        rd_kafka_conf_set_dr_msg_cb(rkc, dr_cb);
        wi->rk = rd_kafka_new(RD_KAFKA_PRODUCER, rkc, err, sizeof(err));
        if (!wi->rk) {
                kb_snprintf(errstr, errstr_size, "webhook producer: %s", err);
                rd_kafka_conf_destroy(rkc);
                return KB_ERR_KAFKA;
        }
        if (pthread_create(&wi->poller, NULL, poller_main, wi) != 0) {
                kb_snprintf(errstr, errstr_size,
                            "cannot start the webhook producer thread");
                return KB_ERR_KAFKA;
        }
        wi->poller_started = 1;
        return KB_OK;
}

/* The deliveries whose reports did not come after the purge: answered
 * 503 now (the vendor retries), kept until the producer is gone (a late
 * report then finds them answered). Only the stopping thread serves
 * reports by now. Returns how many. */
static long pending_abandon(kb_wh_intake_t *wi)
{
        kb_wh_pending_t *p;
        long n = 0;

        pthread_mutex_lock(&wi->plock);
        for (p = wi->pending; p; p = p->next) {
                int mine = 0;
                pthread_mutex_lock(&p->lock);
                if (!p->answered) {
                        mine = p->answered = 1;
                        p->failed = 1;
                }
                pthread_mutex_unlock(&p->lock);
                if (!mine)
                        continue; /* being answered by its last report */
                pending_answer(p, "no report from Kafka at shutdown");
                n++;
        }
        pthread_mutex_unlock(&wi->plock);
        return n;
}

void kb_wh_produce_term(kb_wh_intake_t *wi, int flush_ms)
{
        kb_wh_pending_t *p, *next;
        int64_t deadline;
        long n;

        if (wi->poller_started) {
                atomic_store(&wi->stop_poller, 1);
                pthread_join(wi->poller, NULL);
                wi->poller_started = 0;
        }
        if (!wi->rk)
                return;
        /* reports answer their deliveries as they come (in this thread) */
        rd_kafka_flush(wi->rk, flush_ms > 0 ? flush_ms : 0);
        rd_kafka_purge(wi->rk,
                       RD_KAFKA_PURGE_F_QUEUE | RD_KAFKA_PURGE_F_INFLIGHT);
        deadline = kb_mono_ms() + wi->term_wait_ms;
        while (atomic_load(&wi->inflight) > 0 && kb_mono_ms() < deadline)
                rd_kafka_poll(wi->rk, 50);
        n = pending_abandon(wi);
        if (n > 0)
                kb_log_warn(wi->name,
                            "%ld delivery(ies) answered 503 at shutdown "
                            "without their delivery reports",
                            n);
        rd_kafka_destroy(wi->rk);
        wi->rk = NULL;
        /* no report can come any more */
        pthread_mutex_lock(&wi->plock);
        p = wi->pending;
        wi->pending = NULL;
        pthread_mutex_unlock(&wi->plock);
        for (; p; p = next) {
                next = p->next;
                pending_free(p);
        }
}
