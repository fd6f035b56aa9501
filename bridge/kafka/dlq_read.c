/* dlq_read.c -- reading a dead-letter topic: its committed records, bounded */
#include "dlq_read.h"

#include <stdlib.h>
#include <string.h>

#include "json.h"
#include "kafka.h"
#include "util.h"

/* What is left of the time box, at least 1 ms. */
static int left_ms(int64_t deadline)
{
        int64_t left = deadline - kb_mono_ms();

        return left < 1 ? 1 : left > 1000000 ? 1000000 : (int)left;
}

static int metadata_err(rd_kafka_resp_err_t err, const char *topic,
                        char *errstr, size_t errstr_size)
{
        if (err == RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART ||
            err == RD_KAFKA_RESP_ERR__UNKNOWN_TOPIC) {
                kb_snprintf(errstr, errstr_size, "topic %s does not exist",
                            topic);
                return KB_ERR_NOT_FOUND;
        }
        if (err == RD_KAFKA_RESP_ERR__TIMED_OUT ||
            err == RD_KAFKA_RESP_ERR__TRANSPORT ||
            err == RD_KAFKA_RESP_ERR__ALL_BROKERS_DOWN) {
                kb_snprintf(errstr, errstr_size,
                            "topic %s: broker unreachable: %s", topic,
                            rd_kafka_err2str(err));
                return KB_ERR_TIMEOUT;
        }
        kb_snprintf(errstr, errstr_size, "topic %s: %s", topic,
                    rd_kafka_err2str(err));
        return KB_ERR_KAFKA;
}

/* Copies @p len bytes of @p p into a new NUL-terminated string. */
static char *dup_n(const void *p, size_t len)
{
        char *s = malloc(len + 1);

        if (s) {
                if (len)
                        memcpy(s, p, len);
                s[len] = '\0';
        }
        return s;
}

/* Hands one message to @p cb. Returns the callback's answer, or -1 when
 * out of memory. */
static int deliver(rd_kafka_message_t *m, kb_dlq_rec_cb *cb, void *opaque)
{
        rd_kafka_headers_t *hdrs = NULL;
        rd_kafka_timestamp_type_t tstype;
        char reason[128], perr[128];
        kb_dlq_rec_t rec;
        char *key = NULL, *val;
        int r;

        memset(&rec, 0, sizeof(rec));
        val = dup_n(m->payload, m->payload ? m->len : 0);
        if (m->key)
                key = dup_n(m->key, m->key_len);
        if (!val || (m->key && !key)) {
                free(val);
                free(key);
                return -1;
        }
        rec.partition = m->partition;
        rec.offset = m->offset;
        rec.ts_ms = rd_kafka_message_timestamp(m, &tstype);
        rec.key = key;
        if (rd_kafka_message_headers(m, &hdrs) == RD_KAFKA_RESP_ERR_NO_ERROR &&
            !kb_kafka_header_get(hdrs, "kb-reason", reason, sizeof(reason)))
                rec.reason = reason;
        rec.value = val;
        rec.value_len = m->payload ? m->len : 0;
        rec.doc = kb_json_parse(val, rec.value_len, 32, perr, sizeof(perr));
        if (rec.doc && !json_object_is_type(rec.doc, json_type_object)) {
                json_object_put(rec.doc);
                rec.doc = NULL;
        }
        r = cb(opaque, &rec);
        json_object_put(rec.doc);
        free(val);
        free(key);
        return r;
}

int kb_dlq_read(const kb_conf_t *conf, const char *topic, int32_t partition,
                int64_t offset, int flags, int timeout_ms, kb_dlq_rec_cb *cb,
                void *opaque, char *errstr, size_t errstr_size)
{
        /* assign() needs a group id; it is never joined (no subscribe)
         * and nothing is committed to it */
        static const char *const extra[] = { "enable.partition.eof",
                                             "true",
                                             "isolation.level",
                                             "read_committed",
                                             "group.id",
                                             "kyc-bridge-dlq-reader",
                                             NULL };
        int64_t deadline = kb_mono_ms() + (timeout_ms > 0 ? timeout_ms : 1);
        const struct rd_kafka_metadata *md = NULL;
        rd_kafka_topic_partition_list_t *assign = NULL;
        rd_kafka_topic_t *rkt = NULL;
        rd_kafka_conf_t *rkc;
        rd_kafka_t *rk = NULL, *rke = NULL;
        rd_kafka_resp_err_t err;
        int64_t *hi = NULL, *next = NULL;
        char *done = NULL, rerr[256];
        int np, i, pending = 0, r = KB_ERR_KAFKA, stop = 0;

        rkc = kb_kafka_conf_new(conf, RD_KAFKA_CONSUMER, extra, errstr,
                                errstr_size);
        if (!rkc)
                return KB_ERR_CONFIG;
        rk = rd_kafka_new(RD_KAFKA_CONSUMER, rkc, rerr, sizeof(rerr));
        if (!rk) {
                rd_kafka_conf_destroy(rkc);
                kb_snprintf(errstr, errstr_size, "kafka consumer: %s", rerr);
                return KB_ERR_CONFIG;
        }
        if (flags & KB_DLQ_READ_ALL_COMMITTED) {
                /* the end finder: a read_committed query answers with the
                 * last stable offset, which any open transaction holds
                 * back -- records committed after it began would be
                 * missed */
                static const char *const unc[] = {
                        "isolation.level", "read_uncommitted", "group.id",
                        "kyc-bridge-dlq-reader", NULL
                };
                rkc = kb_kafka_conf_new(conf, RD_KAFKA_CONSUMER, unc, errstr,
                                        errstr_size);
                if (!rkc) {
                        r = KB_ERR_CONFIG;
                        goto out;
                }
                rke = rd_kafka_new(RD_KAFKA_CONSUMER, rkc, rerr, sizeof(rerr));
                if (!rke) {
                        rd_kafka_conf_destroy(rkc);
                        kb_snprintf(errstr, errstr_size, "kafka consumer: %s",
                                    rerr);
                        r = KB_ERR_CONFIG;
                        goto out;
                }
        }
        rkt = rd_kafka_topic_new(rk, topic, NULL);
        if (!rkt) {
                kb_snprintf(errstr, errstr_size, "topic %s: %s", topic,
                            rd_kafka_err2str(rd_kafka_last_error()));
                goto out;
        }
        err = rd_kafka_metadata(rk, 0, rkt, &md, left_ms(deadline));
        if (err) {
                r = metadata_err(err, topic, errstr, errstr_size);
                goto out;
        }
        if (md->topic_cnt != 1 || md->topics[0].err) {
                r = metadata_err(md->topic_cnt != 1
                                     ? RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART
                                     : md->topics[0].err,
                                 topic, errstr, errstr_size);
                goto out;
        }
        np = md->topics[0].partition_cnt;
        if (partition >= np) {
                kb_snprintf(errstr, errstr_size,
                            "topic %s has no partition %d (%d partitions)",
                            topic, (int)partition, np);
                r = KB_ERR_NOT_FOUND;
                goto out;
        }
        hi = calloc((size_t)np + 1, sizeof(*hi));
        next = calloc((size_t)np + 1, sizeof(*next));
        done = calloc((size_t)np + 1, 1);
        assign = rd_kafka_topic_partition_list_new(np > 0 ? np : 1);
        if (!hi || !next || !done || !assign) {
                kb_snprintf(errstr, errstr_size, "out of memory");
                r = KB_ERR_NOMEM;
                goto out;
        }
        for (i = 0; i < np; i++) {
                int32_t p = md->topics[0].partitions[i].id;
                int64_t lo, start;

                if (partition >= 0 && p != partition)
                        continue;
                err = rd_kafka_query_watermark_offsets(
                    rke ? rke : rk, topic, p, &lo, &hi[i], left_ms(deadline));
                if (err) {
                        r = metadata_err(err, topic, errstr, errstr_size);
                        goto out;
                }
                start = partition >= 0 && offset > lo ? offset : lo;
                if (start >= hi[i])
                        continue; /* nothing to read there */
                rd_kafka_topic_partition_list_add(assign, topic, p)->offset =
                    start;
                next[i] = start;
                pending++;
        }
        if (pending) {
                err = rd_kafka_assign(rk, assign);
                if (err) {
                        kb_snprintf(errstr, errstr_size, "topic %s: assign: %s",
                                    topic, rd_kafka_err2str(err));
                        goto out;
                }
        }
        while (pending && !stop) {
                rd_kafka_message_t *m;
                int idx = -1;

                if (kb_mono_ms() >= deadline) {
                        kb_snprintf(errstr, errstr_size,
                                    "topic %s: end not reached after %d ms "
                                    "(broker unreachable, or a transaction "
                                    "still open)",
                                    topic, timeout_ms);
                        r = KB_ERR_TIMEOUT;
                        goto out;
                }
                m = rd_kafka_consumer_poll(
                    rk, left_ms(deadline) < 100 ? left_ms(deadline) : 100);
                if (!m)
                        continue;
                for (i = 0; i < np; i++)
                        if (md->topics[0].partitions[i].id == m->partition)
                                idx = i;
                if (m->err == RD_KAFKA_RESP_ERR__PARTITION_EOF) {
                        if (idx >= 0 && !done[idx] && m->offset >= hi[idx]) {
                                done[idx] = 1;
                                pending--;
                        }
                } else if (m->err) {
                        err = m->err;
                        rd_kafka_message_destroy(m);
                        if (err == RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART ||
                            err == RD_KAFKA_RESP_ERR__UNKNOWN_TOPIC ||
                            err ==
                                RD_KAFKA_RESP_ERR_TOPIC_AUTHORIZATION_FAILED) {
                                r = metadata_err(err, topic, errstr,
                                                 errstr_size);
                                goto out;
                        }
                        continue; /* transient: librdkafka retries */
                } else if (idx >= 0 && !done[idx]) {
                        /* a record handed over before (the client
                         * re-fetched from an earlier offset) is not
                         * handed over again */
                        if (m->offset >= next[idx] && m->offset < hi[idx]) {
                                int cr;

                                next[idx] = m->offset + 1;
                                cr = deliver(m, cb, opaque);
                                if (cr < 0) {
                                        rd_kafka_message_destroy(m);
                                        kb_snprintf(errstr, errstr_size,
                                                    "out of memory");
                                        r = KB_ERR_NOMEM;
                                        goto out;
                                }
                                stop = cr;
                        }
                        if (m->offset >= hi[idx] - 1) {
                                done[idx] = 1;
                                pending--;
                        }
                }
                rd_kafka_message_destroy(m);
        }
        r = KB_OK;
out:
        if (assign)
                rd_kafka_topic_partition_list_destroy(assign);
        if (md)
                rd_kafka_metadata_destroy(md);
        if (rkt)
                rd_kafka_topic_destroy(rkt);
        if (rk) {
                rd_kafka_consumer_close(rk);
                rd_kafka_destroy(rk);
        }
        if (rke)
                rd_kafka_destroy(rke);
        free(hi);
        free(next);
        free(done);
        return r;
}
