/* seen_topic.c -- the state topic behind the remembered share_ids: its
 * records (written in the same transactions as the outputs), read in full
 * at start and caught up on every assignment */
#include "seen_int.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>
#ifdef __GLIBC__
#include <malloc.h>
#endif

#include "json.h"
#include "jview.h"
#include "log.h"
#include "util.h"

const char *kb_seen_denied(const kb_seen_t *sn)
{
        return sn->denied;
}

/* The broker refused the state topic: say what, for kb_seen_denied(). */
static void set_denied(kb_seen_t *sn, rd_kafka_resp_err_t err, const char *text)
{
        char action[300];

        kb_snprintf(action, sizeof(action), "read topic %s", sn->topic);
        kb_kafka_denied_str(err, sn->principal, action, text, sn->denied,
                            sizeof(sn->denied));
}

void kb_sn_topic_free(kb_seen_t *sn)
{
        if (sn->rk) {
                /* Nothing to close: the reader never joined the group and
                 * never commits. */
                rd_kafka_destroy_flags(sn->rk,
                                       RD_KAFKA_DESTROY_F_NO_CONSUMER_CLOSE);
        }
        if (sn->hw)
                rd_kafka_destroy_flags(sn->hw,
                                       RD_KAFKA_DESTROY_F_NO_CONSUMER_CLOSE);
        if (sn->marks)
                rd_kafka_topic_partition_list_destroy(sn->marks);
}

char *kb_seen_record(const kb_seen_t *sn, const char *share_id,
                     const char *outcome, const char *ref, size_t *len)
{
        json_object *o = json_object_new_object();
        const char *txt;
        char *out = NULL;
        size_t tl;

        if (o && !kb_json_add_str(o, "share_id", share_id) &&
            !kb_json_add_str(o, "outcome", outcome) &&
            !kb_json_add_i64(o, "at", kb_sn_now(sn)) &&
            !kb_json_add_i64(o, "until", kb_sn_now(sn) + sn->window) &&
            !kb_json_add_str(o, "ref", ref) &&
            (!sn->obs.decorate ||
             sn->obs.decorate(sn->obs.opaque, share_id, o) == 0)) {
                txt = kb_json_str(o, &tl);
                out = strndup(txt, tl);
                if (out && len)
                        *len = tl;
        }
        json_object_put(o);
        return out;
}

int kb_seen_produce(kb_seen_t *sn, kb_rec_t *rec, const char *share_id,
                    const char *outcome, const char *ref)
{
        size_t len;
        char *txt = kb_seen_record(sn, share_id, outcome, ref, &len);
        int r;

        if (!txt)
                return KB_ERR_NOMEM;
        r = kb_rec_produce(rec, sn->topic, RD_KAFKA_PARTITION_UA, share_id,
                           strlen(share_id), txt, len, NULL);
        free(txt);
        return r;
}

/* A consumer handle for the state topic with @p extra settings. */
static rd_kafka_t *client_new(kb_seen_t *sn, const char *what,
                              const char *const *extra)
{
        rd_kafka_conf_t *rkc;
        rd_kafka_t *rk;
        char errstr[512];

        rkc = kb_kafka_conf_new(sn->conf, RD_KAFKA_CONSUMER, extra, errstr,
                                sizeof(errstr));
        if (!rkc) {
                kb_log_error(sn->who, "%s: %s", what, errstr);
                return NULL;
        }
        kb_kafka_principal(rkc, sn->principal, sizeof(sn->principal));
        rk = rd_kafka_new(RD_KAFKA_CONSUMER, rkc, errstr, sizeof(errstr));
        if (!rk) {
                rd_kafka_conf_destroy(rkc);
                kb_log_error(sn->who, "%s: %s", what, errstr);
                return NULL;
        }
        return rk;
}

/*
 * Creates the state reader (and the end finder, once): the bulk reader
 * for the first load, the catch-up reader after it. They differ in how
 * much they fetch ahead. librdkafka 2.0 stops fetching a partition whose
 * queue holds queued.max.messages.kbytes (or queued.min.messages records)
 * and looks again only about a second later: with 2 MB that caps a read
 * at ~3 MB/s, 110 s for the 330 MB an importer's 10^6 share_ids take.
 * The bulk reader may queue 128 MB a partition, whatever the count, so a
 * first load runs as fast as records are taken -- at the price of a peak:
 * what is fetched and not yet taken, up to the topic's size plus ~250
 * bytes a record. The catch-up reader, which fetches ahead between loads
 * what other instances write (the next load consumes it), queues only 2
 * MB. Every partition the seen reads already is assigned to a new reader
 * where it stands.
 */
static int reader_new(kb_seen_t *sn, int bulk)
{
        /* group.id only because librdkafka 2.0 refuses assign() without
         * one: the reader never joins the group and never commits. */
        static const char *const extra[] = {
                "group.id", "kyc-bridge-state-reader", "enable.partition.eof",
                "true", "enable.auto.commit", "false",
                "enable.auto.offset.store", "false",
                /* only committed records count, whatever kafka.* says */
                "isolation.level", "read_committed",
                /* a mark before the log's start: from its start */
                "auto.offset.reset", "earliest", "queued.max.messages.kbytes",
                "2048", NULL
        };
        /* clang-format off */
        static const char *const bulk_extra[] = {
                "group.id", "kyc-bridge-state-reader",
                "enable.partition.eof", "true",
                "enable.auto.commit", "false",
                "enable.auto.offset.store", "false",
                "isolation.level", "read_committed",
                "auto.offset.reset", "earliest",
                "queued.max.messages.kbytes", "131072",
                /* 100,000 queued records (the default) stall a
                 * partition too */
                "queued.min.messages", "10000000",
                "fetch.max.bytes", "67108864",
                NULL
        };
        /* clang-format on */
        /* ListOffsets for the latest offset answers with the last stable
         * offset under read_committed (librdkafka sends the handle's
         * isolation.level), the high watermark only under
         * read_uncommitted */
        static const char *const hw_extra[] = { "isolation.level",
                                                "read_uncommitted", NULL };
        const rd_kafka_metadata_t *md;
        rd_kafka_error_t *error;
        rd_kafka_topic_t *rkt;

        if (!sn->hw && !(sn->hw = client_new(sn, "state end finder", hw_extra)))
                return -1;
        if (!sn->marks && !(sn->marks = rd_kafka_topic_partition_list_new(8)))
                return -1;
        sn->rk = client_new(sn, "state reader", bulk ? bulk_extra : extra);
        if (!sn->rk)
                return -1;
        sn->bulk = bulk;
        /* the partitions' leaders now: assigned without them, librdkafka
         * asks in the background and fetches a second or so later (a
         * failure here shows at the load's own metadata request) */
        rkt = rd_kafka_topic_new(sn->rk, sn->topic, NULL);
        if (rkt) {
                if (!rd_kafka_metadata(sn->rk, 0, rkt, &md, PRIME_TIMEOUT_MS))
                        rd_kafka_metadata_destroy(md);
                rd_kafka_topic_destroy(rkt);
        }
        if (sn->marks->cnt > 0) {
                error = rd_kafka_incremental_assign(sn->rk, sn->marks);
                if (error) {
                        kb_log_error(sn->who, "state reader assign: %s",
                                     rd_kafka_error_string(error));
                        rd_kafka_error_destroy(error);
                        rd_kafka_destroy_flags(
                            sn->rk, RD_KAFKA_DESTROY_F_NO_CONSUMER_CLOSE);
                        sn->rk = NULL;
                        return -1;
                }
        }
        /* Its main queue (error_cb: a broker down, an authentication
         * failure) is served by the consumer poll of each load: without
         * this nothing ever polls it and those errors never reach the
         * log. */
        rd_kafka_poll_set_consumer(sn->rk);
        sn->st.readers_created++;
        return 0;
}

/* Assigns partitions of the topic the reader does not read yet (all of
 * them the first time; later only ones added to the topic), from the
 * beginning. The topic is described by the end finder: the broker answers
 * a connection's requests in order, and the reader's connection holds a
 * fetch that waits up to fetch.wait.max.ms (500 ms) for new records. */
static int reader_assign_new(kb_seen_t *sn, int timeout_ms)
{
        const rd_kafka_metadata_t *md = NULL;
        rd_kafka_topic_t *rkt;
        rd_kafka_topic_partition_list_t *add = NULL;
        rd_kafka_resp_err_t err;
        rd_kafka_error_t *error;
        int i, r = -1;

        rkt = rd_kafka_topic_new(sn->hw, sn->topic, NULL);
        err = rkt ? rd_kafka_metadata(sn->hw, 0, rkt, &md, timeout_ms)
                  : RD_KAFKA_RESP_ERR__INVALID_ARG;
        if (!err && md && md->topic_cnt == 1 &&
            kb_kafka_err_denied(md->topics[0].err))
                set_denied(sn, md->topics[0].err,
                           rd_kafka_err2str(md->topics[0].err));
        if (err || !md || md->topic_cnt != 1 || md->topics[0].err) {
                kb_log_error(sn->who, "state topic %s: %s", sn->topic,
                             err ? rd_kafka_err2str(err)
                             : md && md->topic_cnt == 1
                                 ? rd_kafka_err2str(md->topics[0].err)
                                 : "no metadata");
                goto out;
        }
        add = rd_kafka_topic_partition_list_new(md->topics[0].partition_cnt);
        for (i = 0; i < md->topics[0].partition_cnt; i++) {
                int32_t id = md->topics[0].partitions[i].id;
                if (rd_kafka_topic_partition_list_find(sn->marks, sn->topic,
                                                       id))
                        continue;
                rd_kafka_topic_partition_list_add(add, sn->topic, id)->offset =
                    RD_KAFKA_OFFSET_BEGINNING;
        }
        if (add->cnt > 0) {
                error = rd_kafka_incremental_assign(sn->rk, add);
                if (error) {
                        kb_log_error(sn->who, "state reader assign: %s",
                                     rd_kafka_error_string(error));
                        rd_kafka_error_destroy(error);
                        goto out;
                }
                for (i = 0; i < add->cnt; i++)
                        rd_kafka_topic_partition_list_add(
                            sn->marks, sn->topic, add->elems[i].partition)
                            ->offset = 0;
        }
        r = 0;
out:
        if (add)
                rd_kafka_topic_partition_list_destroy(add);
        if (md)
                rd_kafka_metadata_destroy(md);
        if (rkt)
                rd_kafka_topic_destroy(rkt);
        return r;
}

static void mark_at_least(kb_seen_t *sn, int32_t partition, int64_t offset)
{
        rd_kafka_topic_partition_t *m =
            rd_kafka_topic_partition_list_find(sn->marks, sn->topic, partition);

        if (m && offset > m->offset)
                m->offset = offset;
}

/* Non-zero while a partition is not read up to its end in @p ends. */
static int behind(const kb_seen_t *sn,
                  const rd_kafka_topic_partition_list_t *ends)
{
        int i;

        for (i = 0; i < ends->cnt; i++)
                if (ends->elems[i].offset > sn->marks->elems[i].offset)
                        return 1;
        return 0;
}

/* The string @p v decoded into @p buf (@p bufsz) or, when longer, into
 * *@p heap (malloc()ed, the caller frees it); NULL when @p v is no string,
 * holds "\u0000" (kb_json_get_str() refuses those) or on ENOMEM. */
static const char *view_str(kb_jval_t v, char *buf, size_t bufsz, char **heap,
                            size_t *len)
{
        char *out = buf;

        if (kb_jval_type(v) != KB_JV_STRING)
                return NULL;
        if (v.len > bufsz && !(out = *heap = malloc(v.len)))
                return NULL;
        return kb_jval_str(v, out, v.len > bufsz ? v.len : bufsz, len) == 0
                   ? out
                   : NULL;
}

static void take_record(kb_seen_t *sn, const rd_kafka_message_t *rkm,
                        int64_t now, int64_t *loaded)
{
        static const char *const names[] = { "share_id", "until", "ref" };
        char sbuf[256], rbuf[256], *sheap = NULL, *rheap = NULL;
        const char *sid, *ref;
        kb_jval_t v[3];
        size_t sl, rl;
        kb_jview_t jv;
        int64_t until;
        dig_t d, r;

        /* the depth json-c was given: the view accepts what it did */
        if (kb_jview_init(&jv, rkm->payload, rkm->len, 4, NULL, 0) == -1) {
                kb_jview_clear(&jv);
                return;
        }
        if (sn->obs.record)
                sn->obs.record(sn->obs.opaque,
                               rkm->key ? (const char *)rkm->key : "",
                               rkm->key ? rkm->key_len : 0, &jv);
        if (rkm->key && rkm->key_len >= strlen(KB_SEEN_AUX_PREFIX) &&
            !memcmp(rkm->key, KB_SEEN_AUX_PREFIX, strlen(KB_SEEN_AUX_PREFIX)))
                goto out;
        kb_jview_pick(&jv, names, 3, v);
        sid = view_str(v[0], sbuf, sizeof(sbuf), &sheap, &sl);
        if (!sid || kb_jval_i64(v[1], &until) || until < now)
                goto out;
        kb_sn_digest(sn, sid, sl, &d);
        if (kb_sn_put_loaded(sn, &d, until) == -1)
                goto out;
        (*loaded)++;
        ref = view_str(v[2], rbuf, sizeof(rbuf), &rheap, &rl);
        if (ref) {
                kb_sn_digest(sn, ref, rl, &r);
                kb_sn_ref_put(sn, &d, &r);
        }
out:
        free(sheap);
        free(rheap);
        kb_jview_clear(&jv);
}

/* One event of the reader: a record, a partition's end, an error. -1
 * when the broker refuses the topic (logged). */
static int take_message(kb_seen_t *sn, const rd_kafka_message_t *rkm,
                        int64_t now, int64_t *loaded)
{
        if (rkm->err == RD_KAFKA_RESP_ERR__PARTITION_EOF) {
                /* the fetcher is at the end: also past any transaction
                 * markers, which are no records */
                mark_at_least(sn, rkm->partition, rkm->offset);
        } else if (rkm->err == RD_KAFKA_RESP_ERR_TOPIC_AUTHORIZATION_FAILED) {
                /* no wait for the load's timeout: it stays so. (Not
                 * GROUP_: the reader has a group.id only for assign(),
                 * never joins, and needs no ACL for it -- librdkafka looks
                 * its coordinator up all the same, and tells when that is
                 * refused.) */
                set_denied(sn, rkm->err, rd_kafka_message_errstr(rkm));
                kb_log_error(sn->who, "state topic %s: %s", sn->topic,
                             sn->denied);
                return -1;
        } else if (rkm->err) {
                kb_log_warn(sn->who, "state reader: %s",
                            rd_kafka_message_errstr(rkm));
        } else {
                sn->st.records_read++;
                mark_at_least(sn, rkm->partition, rkm->offset + 1);
                take_record(sn, rkm, now, loaded);
        }
        return 0;
}

/* Errors a partition leader election or a slow broker cause, which go
 * away by themselves. */
static int retriable(rd_kafka_resp_err_t err)
{
        switch (err) {
        case RD_KAFKA_RESP_ERR_NOT_LEADER_FOR_PARTITION:
        case RD_KAFKA_RESP_ERR_LEADER_NOT_AVAILABLE:
        case RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART:
        case RD_KAFKA_RESP_ERR_REQUEST_TIMED_OUT:
        case RD_KAFKA_RESP_ERR__TIMED_OUT:
        case RD_KAFKA_RESP_ERR__TRANSPORT:
        case RD_KAFKA_RESP_ERR__UNKNOWN_PARTITION:
        case RD_KAFKA_RESP_ERR_NOT_ENOUGH_REPLICAS:
        case RD_KAFKA_RESP_ERR_OFFSET_NOT_AVAILABLE:
                return 1;
        default:
                return 0;
        }
}

static int64_t remains_ms(int64_t deadline)
{
        int64_t r = deadline - kb_mono_ms();

        return r > 0 ? r : 0;
}

/* The high watermark of every partition in @p ends (copied from marks),
 * asked of the end finder, retried on errors that go away by themselves
 * until @p deadline. */
static rd_kafka_resp_err_t
high_watermarks(kb_seen_t *sn, rd_kafka_topic_partition_list_t *ends,
                int64_t deadline)
{
        rd_kafka_resp_err_t err = RD_KAFKA_RESP_ERR_NO_ERROR;
        int64_t lo, hi;
        int i;

        for (i = 0; i < ends->cnt; i++) {
                for (;;) {
                        int64_t left = remains_ms(deadline);
                        err = rd_kafka_query_watermark_offsets(
                            sn->hw, sn->topic, ends->elems[i].partition, &lo,
                            &hi, left > INT32_MAX ? INT32_MAX : (int)left);
                        /* a topic created a moment ago has no leader yet */
                        if (!err || !retriable(err) || kb_mono_ms() >= deadline)
                                break;
                        kb_log_debug(sn->who,
                                     "state topic %s [%d]: high watermark: "
                                     "%s; again",
                                     sn->topic, (int)ends->elems[i].partition,
                                     rd_kafka_err2str(err));
                        nanosleep(&(struct timespec){ 0, 200 * 1000000L },
                                  NULL);
                }
                if (err)
                        break;
                ends->elems[i].offset = hi;
        }
        /* the end finder's own errors (error_cb) */
        rd_kafka_poll(sn->hw, 0);
        return err;
}

int kb_seen_load(kb_seen_t *sn)
{
        rd_kafka_topic_partition_list_t *ends = NULL;
        rd_kafka_resp_err_t err;
        int64_t t0 = kb_mono_ms(), now = kb_sn_now(sn), loaded = 0;
        int64_t deadline = t0 + sn->load_timeout_ms;
        uint64_t read0 = sn->st.records_read;
        int r = -1;

        sn->st.loads++;
        sn->denied[0] = '\0';
        if (!sn->rk && reader_new(sn, sn->st.loads == 1) == -1)
                return -1;
        if (reader_assign_new(sn, (int)(remains_ms(deadline) < MD_TIMEOUT_MS
                                            ? remains_ms(deadline)
                                            : MD_TIMEOUT_MS)) == -1)
                return -1;
        /*
         * Where the topic ends now: its high watermark, not its last stable
         * offset (which a read_committed end query answers with). The LSO
         * stops at the first record of ANY writer's open transaction, and
         * records a writer committed after it lie beyond: the instance
         * that handed us a partition committed its last share_ids just
         * before, maybe behind another instance's transaction still open.
         * Reading up to the high watermark, read_committed, waits for every
         * transaction open now to end (the reader skips aborted records and
         * transaction markers, and a partition-EOF event says where it
         * stands), so every record committed before this call is read.
         */
        kb_log_debug(sn->who, "state: partitions assigned in %lld ms",
                     (long long)(kb_mono_ms() - t0));
        ends = rd_kafka_topic_partition_list_copy(sn->marks);
        err = high_watermarks(sn, ends, deadline);
        if (kb_kafka_err_denied(err))
                set_denied(sn, err, rd_kafka_err2str(err));
        if (err) {
                kb_log_error(sn->who, "state topic %s: end offsets: %s",
                             sn->topic, rd_kafka_err2str(err));
                goto out;
        }
        kb_log_debug(sn->who, "state: %d partition(s), ends found in %lld ms",
                     ends->cnt, (long long)(kb_mono_ms() - t0));
        while (behind(sn, ends) && kb_mono_ms() < deadline) {
                int64_t left = remains_ms(deadline);
                rd_kafka_message_t *rkm = rd_kafka_consumer_poll(
                    sn->rk, left < 200 ? (int)left : 200);
                int k;
                /* what is queued already, without a clock read each */
                for (k = 0; rkm; k++) {
                        int taken = take_message(sn, rkm, now, &loaded);
                        rd_kafka_message_destroy(rkm);
                        if (taken == -1)
                                goto out;
                        rkm = k < 1024 && behind(sn, ends)
                                  ? rd_kafka_consumer_poll(sn->rk, 0)
                                  : NULL;
                }
        }
        if (behind(sn, ends)) {
                kb_log_error(sn->who,
                             "state topic %s: not read to the end within %d "
                             "ms (a transaction still open?)",
                             sn->topic, sn->load_timeout_ms);
                goto out;
        }
        r = 0;
out:
        if (r == 0 && sn->bulk) {
                /* the bulk is read: from now on, the catch-up reader */
                rd_kafka_destroy_flags(sn->rk,
                                       RD_KAFKA_DESTROY_F_NO_CONSUMER_CLOSE);
                sn->rk = NULL;
#ifdef __GLIBC__
                /* the bulk reader's buffers were freed by its own threads,
                 * into malloc arenas glibc keeps: give them back */
                malloc_trim(0);
#endif
                if (reader_new(sn, 0) == -1)
                        kb_log_warn(sn->who, "state reader: made again at "
                                             "the next load");
        }
        if (r == 0 && sn->obs.loaded)
                sn->obs.loaded(sn->obs.opaque);
        if (r == 0)
                kb_log_info(sn->who,
                            "state: read %llu new record(s) in %lld ms, "
                            "%lld share_id(s) within the window added, %zu "
                            "known (table %zu bytes)",
                            (unsigned long long)(sn->st.records_read - read0),
                            (long long)(kb_mono_ms() - t0), (long long)loaded,
                            kb_seen_count(sn), kb_seen_table_bytes(sn));
        if (ends)
                rd_kafka_topic_partition_list_destroy(ends);
        return r;
}
