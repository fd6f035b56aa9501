/* seen.c -- remembered share_ids: a compacted Kafka topic written in the
 * same transactions as the outputs, read back at start and on assignment */
#include "seen.h"

#include <stdlib.h>
#include <string.h>

#include "hmap.h"
#include "json.h"
#include "kafka.h"
#include "log.h"
#include "util.h"

#define LOAD_TIMEOUT_MS 120000

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
        free(sn->topic);
        free(sn);
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
            !kb_json_add_str(o, "ref", ref)) {
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

int kb_seen_load(kb_seen_t *sn)
{
        static const char *const extra[] = { "group.id",
                                             "kyc-bridge-state-loader",
                                             "enable.partition.eof", "true",
                                             NULL };
        rd_kafka_conf_t *rkc;
        rd_kafka_t *rk;
        const rd_kafka_metadata_t *md = NULL;
        rd_kafka_topic_t *rkt;
        rd_kafka_topic_partition_list_t *parts = NULL;
        rd_kafka_resp_err_t err;
        char errstr[512];
        int np = 0, eofs = 0, i, r = -1;
        int64_t deadline, now = kb_time_now(), loaded = 0;

        rkc = kb_kafka_conf_new(sn->conf, RD_KAFKA_CONSUMER, extra, errstr,
                                sizeof(errstr));
        if (!rkc) {
                kb_log_error(sn->who, "state loader: %s", errstr);
                return -1;
        }
        rk = rd_kafka_new(RD_KAFKA_CONSUMER, rkc, errstr, sizeof(errstr));
        if (!rk) {
                rd_kafka_conf_destroy(rkc);
                kb_log_error(sn->who, "state loader: %s", errstr);
                return -1;
        }
        rkt = rd_kafka_topic_new(rk, sn->topic, NULL);
        err = rkt ? rd_kafka_metadata(rk, 0, rkt, &md, 30000)
                  : RD_KAFKA_RESP_ERR__INVALID_ARG;
        if (err || !md || md->topic_cnt != 1 || md->topics[0].err) {
                kb_log_error(sn->who, "state topic %s: %s", sn->topic,
                             err ? rd_kafka_err2str(err)
                             : md && md->topic_cnt == 1
                                 ? rd_kafka_err2str(md->topics[0].err)
                                 : "no metadata");
                goto out;
        }
        np = md->topics[0].partition_cnt;
        parts = rd_kafka_topic_partition_list_new(np);
        for (i = 0; i < np; i++)
                rd_kafka_topic_partition_list_add(
                    parts, sn->topic, md->topics[0].partitions[i].id)
                    ->offset = RD_KAFKA_OFFSET_BEGINNING;
        err = rd_kafka_assign(rk, parts);
        if (err) {
                kb_log_error(sn->who, "state loader assign: %s",
                             rd_kafka_err2str(err));
                goto out;
        }
        deadline = kb_mono_ms() + LOAD_TIMEOUT_MS;
        while (eofs < np && kb_mono_ms() < deadline) {
                rd_kafka_message_t *rkm = rd_kafka_consumer_poll(rk, 200);
                json_object *o;
                const char *sid;
                int64_t until;
                if (!rkm)
                        continue;
                if (rkm->err == RD_KAFKA_RESP_ERR__PARTITION_EOF) {
                        eofs++;
                } else if (rkm->err) {
                        kb_log_warn(sn->who, "state loader: %s",
                                    rd_kafka_message_errstr(rkm));
                } else if ((o = kb_json_parse(rkm->payload, rkm->len, 4, NULL,
                                              0))) {
                        sid = kb_json_get_str(o, "share_id");
                        if (sid && !kb_json_get_i64(o, "until", &until) &&
                            until >= now && put(sn, sid, until, 0) == 0) {
                                loaded++;
                                if (kb_json_get_str(o, "ref"))
                                        ref_put(sn, kb_json_get_str(o, "ref"),
                                                sid);
                        }
                        json_object_put(o);
                }
                rd_kafka_message_destroy(rkm);
        }
        if (eofs < np) {
                kb_log_error(sn->who,
                             "state topic %s: not read to the end within %d s",
                             sn->topic, LOAD_TIMEOUT_MS / 1000);
                goto out;
        }
        kb_log_info(sn->who, "state: %lld share_id(s) within the window",
                    (long long)loaded);
        r = 0;
out:
        if (parts)
                rd_kafka_topic_partition_list_destroy(parts);
        if (md)
                rd_kafka_metadata_destroy(md);
        if (rkt)
                rd_kafka_topic_destroy(rkt);
        rd_kafka_consumer_close(rk);
        rd_kafka_destroy(rk);
        return r;
}
