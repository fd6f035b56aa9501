/* pipeline.c -- exactly-once consume -> async work -> transactional produce */

/* The engine's core: records, partitions, ordered release, rebalances, the
 * run loop, new/destroy. The transaction path is in pipeline_txn.c, the
 * output topics' metadata in pipeline_meta.c, what they share in
 * pipeline_int.h. */
#include "pipeline_int.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "failpoint.h"
#include "kafka.h"
#include "log.h"
#include "util.h"

/* How long the delivery of a transaction's messages may take before the
 * transaction counts as failed (then aborted and redone), and how long
 * commit_transaction() is given after that (then fatal, see txn_end() in
 * pipeline_txn.c), unless kb_pipeline_conf_t.txn_timeout_ms says:
 * librdkafka's own default transaction.timeout.ms. */
#define KB_TXN_TIMEOUT_MS 60000

/* How long init_transactions() may take: finding the coordinator, fencing
 * the previous instance and settling its open transaction. */
#define KB_INIT_TXN_MS 60000

/* Longest wait of one idle run loop iteration in the consumer poll: how
 * late a stop request or a due commit may be noticed. */
#define KB_IDLE_WAIT_MS 20

/* Default out_topics metadata refresh interval (the refresh thread is in
 * pipeline_meta.c). */
#define KB_MD_REFRESH_MS 60000

void kb_pl_watch(kb_pipeline_t *pl, const char *what, int timeout_ms)
{
        int64_t limit = timeout_ms < 0 ? pl->txn_timeout_ms : timeout_ms;

        kb_watchdog_arm(pl->wd, what, limit + KB_WATCHDOG_TXN_GRACE_MS);
}

void kb_pl_unwatch(kb_pipeline_t *pl)
{
        kb_watchdog_disarm(pl->wd);
}

/* Records the first fatal cause; later ones are only logged. */
void kb_pl_set_fatal(kb_pipeline_t *pl, int err, const char *fmt, ...)
{
        va_list ap;

        if (!pl->fatal || !pl->errstr[0]) {
                va_start(ap, fmt);
                vsnprintf(pl->errstr, sizeof(pl->errstr), fmt, ap);
                va_end(ap);
                pl->err = err;
        }
        pl->fatal = 1;
}

void kb_pl_set_denied(kb_pipeline_t *pl, const char *what,
                      rd_kafka_resp_err_t err, const char *topics, int writing,
                      const char *text)
{
        char action[320], d[448];

        switch (err) {
        case RD_KAFKA_RESP_ERR_TOPIC_AUTHORIZATION_FAILED:
                kb_snprintf(action, sizeof(action), "%s %s%s",
                            writing ? "write to" : "read",
                            strchr(topics, ',') ? "one of the topics "
                                                : "topic ",
                            topics);
                break;
        case RD_KAFKA_RESP_ERR_GROUP_AUTHORIZATION_FAILED:
                kb_snprintf(action, sizeof(action), "use group %s", pl->group);
                break;
        case RD_KAFKA_RESP_ERR_TRANSACTIONAL_ID_AUTHORIZATION_FAILED:
                kb_snprintf(action, sizeof(action), "use transactional id %s",
                            pl->txn_id);
                break;
        default: /* CLUSTER_AUTHORIZATION_FAILED, or the login */
                kb_strlcpy(action, "act on the cluster", sizeof(action));
                break;
        }
        kb_pl_set_fatal(pl, KB_ERR_KAFKA, "%s: %s", what,
                        kb_kafka_denied_str(err, pl->principal, action, text, d,
                                            sizeof(d)));
}

static void out_free(kb_out_t *o)
{
        free(o->topic);
        free(o->key);
        free(o->value);
        if (o->hdrs)
                rd_kafka_headers_destroy(o->hdrs);
        free(o);
}

void kb_pl_rec_free(kb_rec_t *rec, int committed)
{
        kb_out_t *o, *n;

        if (rec->started && rec->pl->ops.on_finish)
                rec->pl->ops.on_finish(rec->pl->opaque, rec, committed);

        for (o = rec->outs; o; o = n) {
                n = o->next;
                out_free(o);
        }
        rec->pl->buffered--;
        free(rec->topic);
        free(rec->key);
        free(rec->value);
        if (rec->hdrs)
                rd_kafka_headers_destroy(rec->hdrs);
        free(rec);
}

/* ---- record API ---- */

const char *kb_rec_topic(const kb_rec_t *rec)
{
        return rec->topic;
}

int32_t kb_rec_partition(const kb_rec_t *rec)
{
        return rec->partition;
}

int64_t kb_rec_offset(const kb_rec_t *rec)
{
        return rec->offset;
}

const void *kb_rec_key(const kb_rec_t *rec, size_t *len)
{
        *len = rec->key_len;
        return rec->key;
}

const void *kb_rec_value(const kb_rec_t *rec, size_t *len)
{
        *len = rec->value_len;
        return rec->value;
}

rd_kafka_headers_t *kb_rec_headers(const kb_rec_t *rec)
{
        return rec->hdrs;
}

int64_t kb_rec_timestamp(const kb_rec_t *rec)
{
        return rec->timestamp;
}

void kb_rec_set_user(kb_rec_t *rec, void *user)
{
        rec->user = user;
}

void *kb_rec_user(const kb_rec_t *rec)
{
        return rec->user;
}

int kb_rec_orphaned(const kb_rec_t *rec)
{
        return rec->orphaned;
}

static void *dup_bytes(const void *p, size_t len)
{
        void *d;

        if (!p)
                return NULL;
        d = malloc(len ? len : 1);
        if (d && len)
                memcpy(d, p, len);
        return d;
}

int kb_rec_produce(kb_rec_t *rec, const char *topic, int32_t partition,
                   const void *key, size_t key_len, const void *value,
                   size_t value_len, rd_kafka_headers_t *hdrs)
{
        kb_out_t *o = calloc(1, sizeof(*o));

        if (!o)
                goto nomem;
        o->hdrs = hdrs;
        hdrs = NULL;
        o->topic = strdup(topic);
        o->partition = partition;
        o->key = dup_bytes(key, key_len);
        o->key_len = key ? key_len : 0;
        o->value = dup_bytes(value, value_len);
        o->value_len = value ? value_len : 0;
        if (!o->topic || (key && !o->key) || (value && !o->value)) {
                out_free(o);
                goto nomem;
        }
        *rec->outs_tail = o;
        rec->outs_tail = &o->next;
        return KB_OK;
nomem:
        if (hdrs)
                rd_kafka_headers_destroy(hdrs);
        return KB_ERR_NOMEM;
}

void kb_rec_done(kb_rec_t *rec)
{
        kb_pipeline_t *pl = rec->pl;

        if (rec->done) {
                kb_log_error("pipeline", "record %s[%d]@%lld completed twice",
                             rec->topic, (int)rec->partition,
                             (long long)rec->offset);
                return;
        }
        rec->done = 1;
        if (rec->orphaned) {
                pl->orphans_running--;
                kb_pl_rec_free(rec, 0);
                return;
        }
        pl->in_flight--;
}

/* ---- partitions ---- */

part_t *kb_pl_part_find(kb_pipeline_t *pl, const char *topic, int32_t p)
{
        part_t *pt;

        for (pt = pl->parts; pt; pt = pt->next)
                if (pt->partition == p && !strcmp(pt->topic, topic))
                        return pt;
        return NULL;
}

static part_t *part_get(kb_pipeline_t *pl, const char *topic, int32_t p)
{
        part_t *pt = kb_pl_part_find(pl, topic, p);

        if (pt)
                return pt;
        pt = calloc(1, sizeof(*pt));
        if (!pt)
                return NULL;
        pt->topic = strdup(topic);
        if (!pt->topic) {
                free(pt);
                return NULL;
        }
        pt->partition = p;
        pt->commit_offset = -1;
        pt->committed = -1;
        pt->next = pl->parts;
        pl->parts = pt;
        return pt;
}

static void sq_push(kb_pipeline_t *pl, kb_rec_t *rec)
{
        rec->snext = NULL;
        rec->sprev = pl->sq_tail;
        if (pl->sq_tail)
                pl->sq_tail->snext = rec;
        else
                pl->sq_head = rec;
        pl->sq_tail = rec;
}

static void sq_remove(kb_pipeline_t *pl, kb_rec_t *rec)
{
        if (rec->sprev)
                rec->sprev->snext = rec->snext;
        else
                pl->sq_head = rec->snext;
        if (rec->snext)
                rec->snext->sprev = rec->sprev;
        else
                pl->sq_tail = rec->sprev;
        rec->sprev = rec->snext = NULL;
}

/*
 * Starts waiting records, oldest first, while the processor has room.
 * Records wait here rather than in Kafka: pausing the partitions on every
 * full processor costs a fetch restart each time.
 */
int kb_pl_start_ready(kb_pipeline_t *pl)
{
        int n = 0;

        while (pl->sq_head && !pl->fatal && !pl->failed && !pl->draining &&
               pl->ops.has_capacity(pl->opaque)) {
                kb_rec_t *rec = pl->sq_head;
                sq_remove(pl, rec);
                rec->started = 1;
                pl->in_flight++;
                n++;
                pl->ops.start(pl->opaque, rec);
        }
        return n;
}

/* Abandons every record of @p pt that is not released. */
static void part_orphan_all(kb_pipeline_t *pl, part_t *pt)
{
        kb_rec_t *rec, *next;

        for (rec = pt->head; rec; rec = next) {
                next = rec->next;
                rec->next = NULL;
                rec->part = NULL;
                rec->orphaned = 1;
                pl->st.orphaned++;
                if (!rec->started) {
                        sq_remove(pl, rec);
                        kb_pl_rec_free(rec, 0);
                } else if (rec->done) {
                        kb_pl_rec_free(rec, 0);
                } else {
                        pl->in_flight--;
                        pl->orphans_running++;
                        /* the rewind re-reads it at once: the processor
                         * must not take it for a duplicate of itself */
                        if (pl->ops.on_orphan)
                                pl->ops.on_orphan(pl->opaque, rec);
                }
        }
        pt->head = pt->tail = NULL;
        pt->commit_offset = -1;
}

static void part_remove(kb_pipeline_t *pl, part_t *pt)
{
        part_t **pp;

        part_orphan_all(pl, pt);
        for (pp = &pl->parts; *pp; pp = &(*pp)->next)
                if (*pp == pt) {
                        *pp = pt->next;
                        break;
                }
        free(pt->topic);
        free(pt);
}

/* Moves every done record at the head of a partition to the release list. */
static void release_ready(kb_pipeline_t *pl)
{
        part_t *pt;

        for (pt = pl->parts; pt; pt = pt->next) {
                while (pt->head && pt->head->done) {
                        kb_rec_t *rec = pt->head;
                        pt->head = rec->next;
                        if (!pt->head)
                                pt->tail = NULL;
                        rec->next = NULL;
                        rec->part = NULL;
                        pt->commit_offset = rec->offset + 1;
                        if (pl->rel_count == 0)
                                pl->rel_first_ms = kb_mono_ms();
                        *pl->rel_tail = rec;
                        pl->rel_tail = &rec->next;
                        pl->rel_count++;
                        pl->st.released++;
                }
        }
}

static void release_list_free(kb_pipeline_t *pl)
{
        kb_rec_t *rec, *next;

        for (rec = pl->rel_head; rec; rec = next) {
                next = rec->next;
                kb_pl_rec_free(rec, 0);
        }
        pl->rel_head = NULL;
        pl->rel_tail = &pl->rel_head;
        pl->rel_count = 0;
}

/* ---- rewind ---- */

/*
 * Seeks every assigned partition back to its committed offset: the one this
 * engine committed last in the current assignment where there is one, else
 * the group's as the broker has it (rd_kafka_committed(), for those
 * partitions only).
 *
 * Why our own knowledge is right: while a partition is assigned to us, the
 * group's offset for it moves only by our commits (another member's would
 * carry an older generation and be rejected; that is what fencing is for).
 * pt->committed is set only after commit_transaction() succeeded, to the
 * very offsets that transaction sent, and is forgotten with the partition
 * on a revoke or loss (part_remove()) and reset on every assignment, so it
 * never outlives the assignment it was learnt in. An aborted transaction
 * leaves it alone: nothing of it was committed. So it equals what a real
 * broker returns, without the round trip, and it is also right where the
 * broker keeps no transactional offsets (librdkafka's mock cluster:
 * rewinding to its "none" would re-read and commit everything again).
 */
static void rewind_consumer(kb_pipeline_t *pl)
{
        rd_kafka_topic_partition_list_t *offsets = NULL, *ask = NULL;
        rd_kafka_resp_err_t err;
        rd_kafka_error_t *error;
        int i, j;

        err = rd_kafka_assignment(pl->consumer, &offsets);
        if (err || !offsets || offsets->cnt == 0)
                goto out;
        ask = rd_kafka_topic_partition_list_new(offsets->cnt);
        for (i = 0; i < offsets->cnt; i++) {
                rd_kafka_topic_partition_t *tp = &offsets->elems[i];
                part_t *pt = kb_pl_part_find(pl, tp->topic, tp->partition);
                if (pt && pt->committed >= 0)
                        tp->offset = pt->committed;
                else
                        rd_kafka_topic_partition_list_add(ask, tp->topic,
                                                          tp->partition);
        }
        if (ask->cnt > 0) {
                err = rd_kafka_committed(pl->consumer, ask, 10000);
                if (err) {
                        kb_log_error("pipeline",
                                     "cannot read committed offsets: %s",
                                     rd_kafka_err2str(err));
                        kb_pl_set_fatal(
                            pl, KB_ERR_KAFKA,
                            "rewind: cannot read committed offsets: %s",
                            rd_kafka_err2str(err));
                        goto out;
                }
                for (j = 0; j < ask->cnt; j++) {
                        rd_kafka_topic_partition_t *tp =
                            rd_kafka_topic_partition_list_find(
                                offsets, ask->elems[j].topic,
                                ask->elems[j].partition);
                        tp->offset = ask->elems[j].offset >= 0
                                         ? ask->elems[j].offset
                                         : RD_KAFKA_OFFSET_BEGINNING;
                }
        }
        error = rd_kafka_seek_partitions(pl->consumer, offsets, 10000);
        if (error) {
                kb_log_error("pipeline", "seek failed: %s",
                             rd_kafka_error_string(error));
                kb_pl_set_fatal(pl, KB_ERR_KAFKA, "rewind: seek failed: %s",
                                rd_kafka_error_string(error));
                rd_kafka_error_destroy(error);
        }
out:
        if (ask)
                rd_kafka_topic_partition_list_destroy(ask);
        if (offsets)
                rd_kafka_topic_partition_list_destroy(offsets);
}

/* Forgets everything not committed; with @p seek, re-reads it from Kafka
 * (without: the partitions are gone, another member reads them). */
void kb_pl_rewind_all(kb_pipeline_t *pl, int seek)
{
        part_t *pt;

        pl->st.rewinds++;
        release_list_free(pl);
        for (pt = pl->parts; pt; pt = pt->next)
                part_orphan_all(pl, pt);
        if (seek)
                rewind_consumer(pl);
}

static int parts_in_flight(kb_pipeline_t *pl,
                           const rd_kafka_topic_partition_list_t *parts)
{
        int i;

        for (i = 0; parts && i < parts->cnt; i++) {
                part_t *pt = kb_pl_part_find(pl, parts->elems[i].topic,
                                             parts->elems[i].partition);
                kb_rec_t *rec;
                for (rec = pt ? pt->head : NULL; rec; rec = rec->next)
                        if (rec->started && !rec->done)
                                return 1;
        }
        return 0;
}

/* Waits (bounded) for the records of @p parts (all when NULL) to finish,
 * then commits everything that is done. */
static int drain_and_commit(kb_pipeline_t *pl,
                            const rd_kafka_topic_partition_list_t *parts)
{
        int64_t deadline = kb_mono_ms() + pl->drain_timeout_ms;
        int r;

        /* Fatal, failed or closed: nothing is committed any more, so there
         * is nothing to wait for (and after pipeline_close() the
         * processor may be gone). */
        if (pl->fatal)
                return -1;
        if (pl->failed || pl->closed)
                return 0;
        /* nothing new starts while partitions are handed over or we stop */
        pl->draining = 1;
        while ((parts ? parts_in_flight(pl, parts) : pl->in_flight > 0) &&
               kb_mono_ms() < deadline && !pl->fatal)
                pl->ops.poll(pl->opaque, 20);
        release_ready(pl);
        r = kb_pl_txn_commit(pl);
        pl->draining = 0;
        return r;
}

/* ---- consumer group ---- */

static void rebalance_cb(rd_kafka_t *rk, rd_kafka_resp_err_t err,
                         rd_kafka_topic_partition_list_t *parts, void *opaque)
{
        kb_pipeline_t *pl = opaque;
        int cooperative =
            !strcmp(rd_kafka_rebalance_protocol(rk), "COOPERATIVE");
        rd_kafka_error_t *error = NULL;
        rd_kafka_resp_err_t aerr = 0;
        int i;

        if (err == RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS) {
                kb_log_info("pipeline", "assigned %d partition(s)", parts->cnt);
                pl->assigned = 1;
                for (i = 0; i < parts->cnt; i++) {
                        part_t *pt = part_get(pl, parts->elems[i].topic,
                                              parts->elems[i].partition);
                        if (!pt)
                                kb_pl_set_fatal(
                                    pl, KB_ERR_NOMEM,
                                    "out of memory taking an assigned "
                                    "partition");
                        else /* another member may have committed since */
                                pt->committed = -1;
                }
                /* not while leaving the group (a start-up that failed
                 * after subscribe(), a stop): nothing will be read */
                if (pl->ops.on_assign && !pl->closed &&
                    pl->ops.on_assign(pl->opaque, parts) != 0)
                        kb_pl_set_fatal(
                            pl, KB_ERR_KAFKA,
                            "the processor could not take %d assigned "
                            "partition(s) (see log)",
                            parts->cnt);
                if (cooperative)
                        error = rd_kafka_incremental_assign(rk, parts);
                else
                        aerr = rd_kafka_assign(rk, parts);
                if (pl->paused)
                        rd_kafka_pause_partitions(rk, parts);
        } else {
                int lost = rd_kafka_assignment_lost(rk);
                kb_log_info("pipeline", "%s %d partition(s)",
                            lost ? "lost" : "revoked", parts->cnt);
                if (lost) {
                        /* Our commits would be fenced: forget it all. */
                        kb_pl_rewind_all(pl, 0);
                } else {
                        /* on -1 the cause is recorded already */
                        (void)drain_and_commit(pl, parts);
                }
                for (i = 0; i < parts->cnt; i++) {
                        part_t *pt = kb_pl_part_find(pl, parts->elems[i].topic,
                                                     parts->elems[i].partition);
                        if (pt)
                                part_remove(pl, pt);
                }
                if (cooperative)
                        error = rd_kafka_incremental_unassign(rk, parts);
                else
                        aerr = rd_kafka_assign(rk, NULL);
        }
        if (error) {
                kb_log_error("pipeline", "rebalance: %s",
                             rd_kafka_error_string(error));
                kb_pl_set_fatal(pl, KB_ERR_KAFKA, "rebalance: %s",
                                rd_kafka_error_string(error));
                rd_kafka_error_destroy(error);
        }
        if (aerr) {
                kb_log_error("pipeline", "rebalance: %s",
                             rd_kafka_err2str(aerr));
                kb_pl_set_fatal(pl, KB_ERR_KAFKA, "rebalance: %s",
                                rd_kafka_err2str(aerr));
        }
}

static void set_paused(kb_pipeline_t *pl, int pause)
{
        rd_kafka_topic_partition_list_t *parts = NULL;

        if (pl->paused == pause)
                return;
        if (rd_kafka_assignment(pl->consumer, &parts) == 0 && parts) {
                if (pause)
                        rd_kafka_pause_partitions(pl->consumer, parts);
                else
                        rd_kafka_resume_partitions(pl->consumer, parts);
                rd_kafka_topic_partition_list_destroy(parts);
        }
        pl->paused = pause;
}

/* Takes one consumed message into its partition's FIFO and the start
 * queue; returns 1 if a record was taken. */
static int take_message(kb_pipeline_t *pl, rd_kafka_message_t *rkm)
{
        kb_rec_t *rec;
        part_t *pt;
        rd_kafka_headers_t *hdrs = NULL;

        if (rkm->err) {
                if (rkm->err == RD_KAFKA_RESP_ERR__PARTITION_EOF)
                        return 0;
                kb_log_warn("pipeline", "consumer: %s: %s",
                            rd_kafka_err2name(rkm->err),
                            rd_kafka_message_errstr(rkm));
                if (rkm->err == RD_KAFKA_RESP_ERR__FATAL) {
                        char why[256];
                        rd_kafka_resp_err_t orig = rd_kafka_fatal_error(
                            pl->consumer, why, sizeof(why));
                        kb_pl_set_fatal(pl, KB_ERR_KAFKA, "consumer: %s: %s",
                                        rd_kafka_err2name(orig), why);
                } else if (kb_kafka_err_denied(rkm->err)) {
                        /* librdkafka goes on asking, and the group
                         * consumes nothing until an operator grants the
                         * ACL: stop and say so */
                        kb_pl_set_denied(
                            pl, "consumer", rkm->err,
                            rkm->rkt ? rd_kafka_topic_name(rkm->rkt) : "?", 0,
                            rd_kafka_message_errstr(rkm));
                }
                return 0;
        }
        pt = kb_pl_part_find(pl, rd_kafka_topic_name(rkm->rkt), rkm->partition);
        if (!pt) {
                /* not (or no longer) ours: a revoke raced the fetch */
                return 0;
        }
        rec = calloc(1, sizeof(*rec));
        if (!rec)
                goto nomem;
        rec->pl = pl;
        rec->outs_tail = &rec->outs;
        rec->topic = strdup(pt->topic);
        rec->partition = rkm->partition;
        rec->offset = rkm->offset;
        rec->key = dup_bytes(rkm->key, rkm->key_len);
        rec->key_len = rkm->key ? rkm->key_len : 0;
        rec->value = dup_bytes(rkm->payload, rkm->len);
        rec->value_len = rkm->payload ? rkm->len : 0;
        rec->timestamp = rd_kafka_message_timestamp(rkm, NULL);
        /* never NULL: a processor stamps its hop's trace context on the
         * input's headers, so that a dead letter built from them carries
         * it even when the input came with no headers at all */
        if (rd_kafka_message_headers(rkm, &hdrs) == 0 && hdrs)
                rec->hdrs = rd_kafka_headers_copy(hdrs);
        else
                rec->hdrs = rd_kafka_headers_new(4);
        pl->buffered++;
        if (!rec->topic || !rec->hdrs || (rkm->key && !rec->key) ||
            (rkm->payload && !rec->value)) {
                kb_pl_rec_free(rec, 0);
                goto nomem;
        }
        rec->part = pt;
        if (pt->tail)
                pt->tail->next = rec;
        else
                pt->head = rec;
        pt->tail = rec;
        pl->st.consumed++;
        sq_push(pl, rec);
        return 1;
nomem:
        /* Not consumed as far as offsets go: rewind so it is read again. */
        kb_log_error("pipeline", "out of memory taking a record; rewinding");
        kb_pl_rewind_all(pl, 1);
        return 0;
}
int kb_pipeline_subscribe(kb_pipeline_t *pl, const char *const *topics,
                          char *errstr, size_t errstr_size)
{
        rd_kafka_topic_partition_list_t *l;
        rd_kafka_resp_err_t err;
        const char *const *t;

        l = rd_kafka_topic_partition_list_new(4);
        if (!l) {
                kb_snprintf(errstr, errstr_size, "out of memory");
                return -1;
        }
        for (t = topics; t && *t; t++)
                rd_kafka_topic_partition_list_add(l, *t, RD_KAFKA_PARTITION_UA);
        err = rd_kafka_subscribe(pl->consumer, l);
        rd_kafka_topic_partition_list_destroy(l);
        if (err) {
                kb_snprintf(errstr, errstr_size, "subscribe: %s",
                            rd_kafka_err2str(err));
                return -1;
        }
        pl->subscribed = 1;
        return 0;
}

kb_pipeline_t *kb_pipeline_new(kb_pipeline_conf_t *pc,
                               const kb_pipeline_ops_t *ops, void *opaque,
                               char *errstr, size_t errstr_size)
{
        kb_pipeline_t *pl = NULL;
        rd_kafka_error_t *error;
        char rerr[512];

        /* the transaction path's failpoints (a test build's KB_FAILPOINTS,
         * read once per process): a bad spec is a start-up error */
        if (KB_FAILPOINTS_SETUP(errstr, errstr_size))
                goto fail;
        pl = calloc(1, sizeof(*pl));
        if (!pl) {
                kb_snprintf(errstr, errstr_size, "out of memory");
                goto fail;
        }
        pl->ops = *ops;
        pl->opaque = opaque;
        pl->rel_tail = &pl->rel_head;
        pl->commit_interval_ms = pc->commit_interval_ms;
        pl->commit_max_records = pc->commit_max_records;
        pl->no_idle_commit = pc->no_idle_commit;
        pl->max_buffered = pc->max_buffered;
        pl->drain_timeout_ms = pc->drain_timeout_ms;
        pl->at_least_once = pc->at_least_once;
        pl->txn_timeout_ms =
            pc->txn_timeout_ms > 0 ? pc->txn_timeout_ms : KB_TXN_TIMEOUT_MS;
        pl->on_commit = pc->on_commit;
        pl->md_refresh_ms = pc->metadata_refresh_ms > 0
                                ? pc->metadata_refresh_ms
                                : KB_MD_REFRESH_MS;
        atomic_init(&pl->stop_req, 0);
        atomic_init(&pl->md_refreshes, 0);

        kb_kafka_principal(pc->producer_conf, pl->principal,
                           sizeof(pl->principal));
        kb_kafka_conf_get(pc->producer_conf, "transactional.id", pl->txn_id,
                          sizeof(pl->txn_id));
        pl->producer = rd_kafka_new(RD_KAFKA_PRODUCER, pc->producer_conf, rerr,
                                    sizeof(rerr));
        if (!pl->producer) {
                kb_snprintf(errstr, errstr_size, "producer: %s", rerr);
                goto fail;
        }
        pc->producer_conf = NULL;
        kb_kafka_conf_get(pc->consumer_conf, "group.id", pl->group,
                          sizeof(pl->group));
        rd_kafka_conf_set_rebalance_cb(pc->consumer_conf, rebalance_cb);
        rd_kafka_conf_set_opaque(pc->consumer_conf, pl);
        pl->consumer = rd_kafka_new(RD_KAFKA_CONSUMER, pc->consumer_conf, rerr,
                                    sizeof(rerr));
        if (!pl->consumer) {
                kb_snprintf(errstr, errstr_size, "consumer: %s", rerr);
                goto fail;
        }
        pc->consumer_conf = NULL;
        rd_kafka_poll_set_consumer(pl->consumer);

        pl->wd = kb_watchdog_new("pipeline", NULL, NULL);
        if (!pl->wd) {
                kb_snprintf(errstr, errstr_size,
                            "cannot start the watchdog thread");
                goto fail;
        }
        if (kb_pl_txn_thread_start(pl) == -1) {
                kb_snprintf(errstr, errstr_size,
                            "cannot start the transaction thread");
                goto fail;
        }
        kb_pl_watch(pl, "init_transactions", KB_INIT_TXN_MS);
        error = rd_kafka_init_transactions(pl->producer, KB_INIT_TXN_MS);
        kb_pl_unwatch(pl);
        if (error) {
                if (kb_kafka_err_denied(rd_kafka_error_code(error))) {
                        kb_pl_set_denied(pl, "init_transactions",
                                         rd_kafka_error_code(error), "?", 1,
                                         rd_kafka_error_string(error));
                        kb_strlcpy(errstr, pl->errstr, errstr_size);
                } else {
                        kb_snprintf(errstr, errstr_size,
                                    "init_transactions: %s",
                                    rd_kafka_error_string(error));
                }
                rd_kafka_error_destroy(error);
                goto fail;
        }
        if (kb_pl_outs_init(pl, pc->out_topics, errstr, errstr_size))
                goto fail;
        if (!pc->defer_subscribe &&
            kb_pipeline_subscribe(pl, pc->topics, errstr, errstr_size))
                goto fail;
        return pl;
fail:
        if (pc->producer_conf)
                rd_kafka_conf_destroy(pc->producer_conf);
        if (pc->consumer_conf)
                rd_kafka_conf_destroy(pc->consumer_conf);
        pc->producer_conf = pc->consumer_conf = NULL;
        kb_pipeline_destroy(pl);
        return NULL;
}

/* Leaves the group while the processor still exists (the revoke callback
 * may call it); whatever is still running is orphaned. */
static int pipeline_close(kb_pipeline_t *pl)
{
        part_t *pt;
        rd_kafka_resp_err_t err;

        if (pl->closed)
                return pl->fatal ? pl->err : KB_OK;
        for (pt = pl->parts; pt; pt = pt->next)
                part_orphan_all(pl, pt);
        release_list_free(pl);
        pl->closed = 1;
        err = rd_kafka_consumer_close(pl->consumer);
        if (err)
                kb_log_warn("pipeline", "consumer close: %s",
                            rd_kafka_err2str(err));
        return pl->fatal ? pl->err : KB_OK;
}

void kb_pipeline_fail(kb_pipeline_t *pl)
{
        pl->failed = 1;
}

void kb_pipeline_stop(kb_pipeline_t *pl)
{
        atomic_store(&pl->stop_req, 1);
}

const char *kb_pipeline_last_error(const kb_pipeline_t *pl)
{
        return pl->errstr;
}

static int stop_requested(kb_pipeline_t *pl, atomic_int *stop)
{
        return (stop && atomic_load(stop)) || atomic_load(&pl->stop_req);
}

/*
 * How long the run loop may wait in the consumer poll when nothing else
 * waits: 0 while a record is in flight or orphaned (the processor's poll
 * then waits instead, and returns as soon as a call completes), else until
 * the held commit is due -- no earlier than txn_not_before (the backoff
 * after an abort) and, below commit_max_records, no earlier than
 * commit_interval_ms after the first release -- and at most
 * KB_IDLE_WAIT_MS. A message that arrives ends the wait at once. Without
 * it a loop with released records and nothing in flight polls everything
 * with timeout 0 for the whole backoff or interval: a core at 100%.
 */
static int idle_wait_ms(const kb_pipeline_t *pl)
{
        int64_t now, due;

        if (pl->in_flight > 0 || pl->orphans_running > 0)
                return 0;
        if (pl->rel_count == 0)
                return KB_IDLE_WAIT_MS;
        now = kb_mono_ms();
        due = pl->rel_count >= pl->commit_max_records
                  ? now
                  : pl->rel_first_ms + pl->commit_interval_ms;
        if (pl->txn_not_before > due)
                due = pl->txn_not_before;
        if (due <= now)
                return 0;
        return due - now > KB_IDLE_WAIT_MS ? KB_IDLE_WAIT_MS : (int)(due - now);
}

int kb_pipeline_run(kb_pipeline_t *pl, atomic_int *stop)
{
        while (!stop_requested(pl, stop) && !pl->fatal && !pl->failed) {
                int taken = 0, started;
                rd_kafka_message_t *rkm;
                int wait = idle_wait_ms(pl);

                pl->st.loops++;

                /* Pause only when the buffer is full; resume at half, so
                 * the fetcher is not toggled on every record. */
                if (pl->buffered >= pl->max_buffered)
                        set_paused(pl, 1);
                else if (pl->buffered <= pl->max_buffered / 2)
                        set_paused(pl, 0);
                /* Always poll the consumer: it serves rebalances and keeps
                 * the membership alive while we are paused. */
                do {
                        rkm = rd_kafka_consumer_poll(pl->consumer,
                                                     taken ? 0 : wait);
                        if (!rkm)
                                break;
                        taken += take_message(pl, rkm);
                        rd_kafka_message_destroy(rkm);
                } while (pl->buffered < pl->max_buffered && taken < 1000 &&
                         !pl->fatal);
                started = kb_pl_start_ready(pl);
                /* Orphans too: a processor holding abandoned records may
                 * have no room for new ones until it is polled and
                 * finishes them. */
                if (pl->in_flight > 0 || pl->orphans_running > 0) {
                        /* returns as soon as a call completes */
                        if (pl->ops.poll(pl->opaque,
                                         taken || started ? 0 : 10) > 0)
                                kb_pl_start_ready(pl);
                }
                rd_kafka_poll(pl->producer, 0);
                release_ready(pl);
                /* Commit when the interval or the batch is full, and at
                 * once when the engine is idle (nothing came in, nothing
                 * runs or waits to start): at a low rate a record waits
                 * for its commit, not for the interval; under load the
                 * records that come in during a commit make the next
                 * one's batch. */
                if (pl->rel_count > 0 && kb_mono_ms() >= pl->txn_not_before &&
                    ((!pl->no_idle_commit && taken == 0 && !pl->sq_head &&
                      pl->in_flight == 0 && pl->orphans_running == 0) ||
                     pl->rel_count >= pl->commit_max_records ||
                     kb_mono_ms() - pl->rel_first_ms >= pl->commit_interval_ms))
                        if (kb_pl_txn_commit(pl) == -1)
                                break;
        }
        if (!pl->fatal && !pl->failed) {
                /* Orderly stop: take nothing new, finish what is running
                 * (on -1 the cause is recorded). */
                set_paused(pl, 1);
                (void)drain_and_commit(pl, NULL);
        }
        /* Always leave the group here, while the processor exists: every
         * record still held is dropped now, and the revoke that
         * rd_kafka_consumer_close() runs finds nothing to commit.
         * kb_pipeline_destroy() must never be the one to close (its
         * revoke would drain and commit after the processor is gone). */
        pipeline_close(pl);
        if (pl->fatal)
                return pl->err;
        return pl->failed ? KB_ERR_STATE : KB_OK;
}

void kb_pipeline_destroy(kb_pipeline_t *pl)
{
        part_t *pt, *next;

        if (!pl)
                return;
        if (pl->consumer) {
                if (!pl->closed) {
                        /* kb_pipeline_run() never ran (it always closes):
                         * the revoke this runs must commit nothing */
                        pl->closed = 1;
                        rd_kafka_consumer_close(pl->consumer);
                }
                kb_kafka_consumer_destroy(pl->consumer,
                                          pl->subscribed && !pl->assigned);
        }
        release_list_free(pl);
        for (pt = pl->parts; pt; pt = next) {
                next = pt->next;
                part_orphan_all(pl, pt);
                free(pt->topic);
                free(pt);
        }
        /* the refresh and transaction threads use the producer: stop
         * them first */
        kb_pl_outs_destroy(pl);
        kb_pl_txn_thread_stop(pl);
        if (pl->producer) {
                rd_kafka_flush(pl->producer, 5000);
                rd_kafka_destroy(pl->producer);
        }
        kb_watchdog_destroy(pl->wd);
        free(pl);
}

void kb_pipeline_stats(const kb_pipeline_t *pl, kb_pipeline_stats_t *st)
{
        *st = pl->st;
        st->metadata_refreshes =
            atomic_load((atomic_uint_fast64_t *)&pl->md_refreshes);
        st->buffered = pl->buffered;
        st->in_flight = pl->in_flight;
}

rd_kafka_t *kb_pipeline_producer(kb_pipeline_t *pl)
{
        return pl->producer;
}

void *kb_pipeline_opaque(const kb_pipeline_t *pl)
{
        return pl->opaque;
}
