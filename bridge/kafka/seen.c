/* seen.c -- remembered share_ids: a compacted Kafka topic written in the
 * same transactions as the outputs, read at start, caught up on assignment */
#include "seen.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "hmap.h"
#include "json.h"
#include "kafka.h"
#include "log.h"
#include "util.h"

/* Default bound of one kb_seen_load(), all of it (kb_seen_set_load_timeout()).
 */
#define LOAD_TIMEOUT_MS 120000
/* Longest single metadata request of a load. */
#define MD_TIMEOUT_MS 30000

typedef struct entry_s {
        int64_t until; /* forget after (unix s) */
        int pending;   /* claimed, not committed */
} entry_t;

struct kb_seen_s {
        const kb_conf_t *conf;
        kb_hmap_t *map;
        kb_hmap_t *refs; /* ref -> share_id (malloc()ed strings) */
        char *topic;
        char who[32];
        int64_t window;
        /* The state reader: one consumer for the seen's lifetime, assigned
         * every partition of the topic (no group membership). Between loads
         * it is not polled: the fetcher reads ahead up to
         * queued.max.messages.kbytes, which the next load consumes.
         * (Pausing it instead makes librdkafka 2.0's rd_kafka_destroy()
         * hang.) marks[i].offset: everything before it is read
         * (from a record, or a partition-EOF event). */
        rd_kafka_t *rk;
        /* The end finder: a consumer that never consumes, read_uncommitted,
         * only asked for the partitions' high watermarks (see
         * kb_seen_load()). */
        rd_kafka_t *hw;
        rd_kafka_topic_partition_list_t *marks;
        int load_timeout_ms;
        char principal[192]; /* kb_kafka_principal() of the reader */
        char denied[448];    /* why the last load was refused, or "" */
        kb_seen_stats_t st;
        kb_seen_observer_t obs;
};

kb_seen_t *kb_seen_new(const kb_conf_t *conf, const char *topic,
                       int64_t window_s, const char *who)
{
        kb_seen_t *sn = calloc(1, sizeof(*sn));

        if (!sn)
                return NULL;
        sn->conf = conf;
        sn->map = kb_hmap_new();
        sn->refs = kb_hmap_new();
        sn->topic = strdup(topic);
        sn->window = window_s;
        sn->load_timeout_ms = LOAD_TIMEOUT_MS;
        kb_strlcpy(sn->who, who, sizeof(sn->who));
        if (!sn->map || !sn->refs || !sn->topic) {
                kb_seen_destroy(sn);
                return NULL;
        }
        return sn;
}

void kb_seen_destroy(kb_seen_t *sn)
{
        kb_hmap_iter_t it = KB_HMAP_ITER_INIT;
        void *v;

        if (!sn)
                return;
        if (sn->map) {
                while (kb_hmap_next(sn->map, &it, NULL, NULL, &v))
                        free(v);
                kb_hmap_destroy(sn->map);
        }
        if (sn->refs) {
                kb_hmap_iter_t ri = KB_HMAP_ITER_INIT;
                while (kb_hmap_next(sn->refs, &ri, NULL, NULL, &v))
                        free(v);
                kb_hmap_destroy(sn->refs);
        }
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
        free(sn->topic);
        free(sn);
}

void kb_seen_stats(const kb_seen_t *sn, kb_seen_stats_t *st)
{
        *st = sn->st;
}

void kb_seen_set_load_timeout(kb_seen_t *sn, int timeout_ms)
{
        sn->load_timeout_ms = timeout_ms > 0 ? timeout_ms : LOAD_TIMEOUT_MS;
}

void kb_seen_set_observer(kb_seen_t *sn, const kb_seen_observer_t *obs)
{
        if (obs)
                sn->obs = *obs;
        else
                memset(&sn->obs, 0, sizeof(sn->obs));
}

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

const char *kb_seen_topic(const kb_seen_t *sn)
{
        return sn->topic;
}

size_t kb_seen_count(const kb_seen_t *sn)
{
        return kb_hmap_count(sn->map);
}

int kb_seen_has(const kb_seen_t *sn, const char *share_id)
{
        entry_t *e = kb_hmap_gets(sn->map, share_id);

        return e && (e->pending || e->until >= kb_time_now());
}

static int put(kb_seen_t *sn, const char *share_id, int64_t until, int pending)
{
        entry_t *e = kb_hmap_gets(sn->map, share_id);

        if (e) {
                if (until > e->until)
                        e->until = until;
                e->pending = pending && e->pending;
                return 0;
        }
        e = malloc(sizeof(*e));
        if (!e)
                return -1;
        e->until = until;
        e->pending = pending;
        if (kb_hmap_puts(sn->map, share_id, e) == -1) {
                free(e);
                return -1;
        }
        return 0;
}

int kb_seen_claim(kb_seen_t *sn, const char *share_id)
{
        entry_t *e = kb_hmap_gets(sn->map, share_id);

        if (e) { /* an expired entry: claim it again */
                e->pending = 1;
                e->until = kb_time_now() + sn->window;
                return 0;
        }
        return put(sn, share_id, kb_time_now() + sn->window, 1);
}

static void ref_put(kb_seen_t *sn, const char *ref, const char *share_id)
{
        char *owner = strdup(share_id);
        char *old;

        if (!owner)
                return; /* only costs a reconcile its extra check */
        old = kb_hmap_gets(sn->refs, ref);
        if (kb_hmap_puts(sn->refs, ref, owner) == -1) {
                free(owner);
                return;
        }
        free(old);
}

void kb_seen_commit(kb_seen_t *sn, const char *share_id, const char *ref)
{
        entry_t *e = kb_hmap_gets(sn->map, share_id);

        if (e)
                e->pending = 0;
        if (ref && *ref)
                ref_put(sn, ref, share_id);
        if (sn->obs.commit)
                sn->obs.commit(sn->obs.opaque, share_id, ref);
}

const char *kb_seen_ref_owner(const kb_seen_t *sn, const char *ref)
{
        return ref ? kb_hmap_gets(sn->refs, ref) : NULL;
}

void kb_seen_forget(kb_seen_t *sn, const char *share_id)
{
        entry_t *e = kb_hmap_gets(sn->map, share_id);

        if (e && e->pending) {
                kb_hmap_dels(sn->map, share_id);
                free(e);
        }
        if (sn->obs.forget)
                sn->obs.forget(sn->obs.opaque, share_id);
}

void kb_seen_expire(kb_seen_t *sn)
{
        kb_hmap_iter_t it = KB_HMAP_ITER_INIT;
        const void *k;
        size_t kl, n = 0, i;
        void *v;
        char **gone;
        int64_t now = kb_time_now();

        gone = calloc(kb_hmap_count(sn->map) + 1, sizeof(char *));
        if (!gone)
                return;
        while (kb_hmap_next(sn->map, &it, &k, &kl, &v)) {
                entry_t *e = v;
                if (!e->pending && e->until < now)
                        gone[n++] = strndup(k, kl);
        }
        for (i = 0; i < n; i++) {
                if (gone[i])
                        free(kb_hmap_dels(sn->map, gone[i]));
                free(gone[i]);
        }
        free(gone);
        if (sn->obs.expire)
                sn->obs.expire(sn->obs.opaque, now);
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
            !kb_json_add_i64(o, "at", kb_time_now()) &&
            !kb_json_add_i64(o, "until", kb_time_now() + sn->window) &&
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

/* Creates the state reader and the end finder (once). */
static int reader_new(kb_seen_t *sn)
{
        /* group.id only because librdkafka 2.0 refuses assign() without
         * one: the reader never joins the group and never commits. */
        static const char *const extra[] = {
                "group.id", "kyc-bridge-state-reader", "enable.partition.eof",
                "true", "enable.auto.commit", "false",
                "enable.auto.offset.store", "false",
                /* only committed records count, whatever kafka.* says */
                "isolation.level", "read_committed",
                /* it fetches ahead between
                 * loads: keep that small */
                "queued.max.messages.kbytes", "2048", NULL
        };
        /* ListOffsets for the latest offset answers with the last stable
         * offset under read_committed (librdkafka sends the handle's
         * isolation.level), the high watermark only under
         * read_uncommitted */
        static const char *const hw_extra[] = { "isolation.level",
                                                "read_uncommitted", NULL };

        if (!sn->hw && !(sn->hw = client_new(sn, "state end finder", hw_extra)))
                return -1;
        if (!sn->marks && !(sn->marks = rd_kafka_topic_partition_list_new(8)))
                return -1;
        sn->rk = client_new(sn, "state reader", extra);
        if (!sn->rk)
                return -1;
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
 * beginning. */
static int reader_assign_new(kb_seen_t *sn, int timeout_ms)
{
        const rd_kafka_metadata_t *md = NULL;
        rd_kafka_topic_t *rkt;
        rd_kafka_topic_partition_list_t *add = NULL;
        rd_kafka_resp_err_t err;
        rd_kafka_error_t *error;
        int i, r = -1;

        rkt = rd_kafka_topic_new(sn->rk, sn->topic, NULL);
        err = rkt ? rd_kafka_metadata(sn->rk, 0, rkt, &md, timeout_ms)
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

static void take_record(kb_seen_t *sn, const rd_kafka_message_t *rkm,
                        int64_t now, int64_t *loaded)
{
        json_object *o = kb_json_parse(rkm->payload, rkm->len, 4, NULL, 0);
        const char *sid;
        int64_t until;

        if (!o)
                return;
        if (sn->obs.record)
                sn->obs.record(sn->obs.opaque,
                               rkm->key ? (const char *)rkm->key : "",
                               rkm->key ? rkm->key_len : 0, o);
        if (rkm->key && rkm->key_len >= strlen(KB_SEEN_AUX_PREFIX) &&
            !memcmp(rkm->key, KB_SEEN_AUX_PREFIX, strlen(KB_SEEN_AUX_PREFIX))) {
                json_object_put(o);
                return;
        }
        sid = kb_json_get_str(o, "share_id");
        if (sid && !kb_json_get_i64(o, "until", &until) && until >= now &&
            put(sn, sid, until, 0) == 0) {
                (*loaded)++;
                if (kb_json_get_str(o, "ref"))
                        ref_put(sn, kb_json_get_str(o, "ref"), sid);
        }
        json_object_put(o);
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
        int64_t t0 = kb_mono_ms(), now = kb_time_now(), loaded = 0;
        int64_t deadline = t0 + sn->load_timeout_ms;
        uint64_t read0 = sn->st.records_read;
        int r = -1;

        sn->st.loads++;
        sn->denied[0] = '\0';
        if (!sn->rk && reader_new(sn) == -1)
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
        ends = rd_kafka_topic_partition_list_copy(sn->marks);
        err = high_watermarks(sn, ends, deadline);
        if (kb_kafka_err_denied(err))
                set_denied(sn, err, rd_kafka_err2str(err));
        if (err) {
                kb_log_error(sn->who, "state topic %s: end offsets: %s",
                             sn->topic, rd_kafka_err2str(err));
                goto out;
        }
        while (behind(sn, ends) && kb_mono_ms() < deadline) {
                int64_t left = remains_ms(deadline);
                rd_kafka_message_t *rkm = rd_kafka_consumer_poll(
                    sn->rk, left < 200 ? (int)left : 200);
                if (!rkm)
                        continue;
                if (rkm->err == RD_KAFKA_RESP_ERR__PARTITION_EOF) {
                        /* the fetcher is at the end: also past any
                         * transaction markers, which are no records */
                        mark_at_least(sn, rkm->partition, rkm->offset);
                } else if (rkm->err ==
                           RD_KAFKA_RESP_ERR_TOPIC_AUTHORIZATION_FAILED) {
                        /* no wait for the load's timeout: it stays so.
                         * (Not GROUP_: the reader has a group.id only for
                         * assign(), never joins, and needs no ACL for it
                         * -- librdkafka looks its coordinator up all the
                         * same, and tells when that is refused.) */
                        set_denied(sn, rkm->err, rd_kafka_message_errstr(rkm));
                        kb_log_error(sn->who, "state topic %s: %s", sn->topic,
                                     sn->denied);
                        rd_kafka_message_destroy(rkm);
                        goto out;
                } else if (rkm->err) {
                        kb_log_warn(sn->who, "state reader: %s",
                                    rd_kafka_message_errstr(rkm));
                } else {
                        sn->st.records_read++;
                        mark_at_least(sn, rkm->partition, rkm->offset + 1);
                        take_record(sn, rkm, now, &loaded);
                }
                rd_kafka_message_destroy(rkm);
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
        if (r == 0 && sn->obs.loaded)
                sn->obs.loaded(sn->obs.opaque);
        if (r == 0)
                kb_log_info(sn->who,
                            "state: read %llu new record(s) in %lld ms, "
                            "%lld share_id(s) within the window added, %zu "
                            "known",
                            (unsigned long long)(sn->st.records_read - read0),
                            (long long)(kb_mono_ms() - t0), (long long)loaded,
                            kb_seen_count(sn));
        if (ends)
                rd_kafka_topic_partition_list_destroy(ends);
        return r;
}
