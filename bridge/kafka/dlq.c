/* dlq.c -- dead-letter records: what failed, where, why (never secrets) */
#include "dlq.h"

#include <string.h>

#include "json.h"
#include "log.h"
#include "util.h"

int kb_dlq_produce(kb_rec_t *rec, const char *topic, const char *stage,
                   const char *reason, const char *detail, const char *share_id,
                   json_object *extra)
{
        json_object *o = json_object_new_object(), *src;
        rd_kafka_headers_t *hdrs;
        char clean[1024];
        const char *txt;
        size_t len;
        int r = KB_ERR_NOMEM;

        if (!o)
                goto out;
        kb_log_scrub(detail ? detail : "", clean, sizeof(clean));
        if (kb_json_add_str(o, "format", "kyc-bridge-dead-letter/1") ||
            json_object_object_add(o, "share_id",
                                   share_id ? json_object_new_string(share_id)
                                            : NULL) ||
            kb_json_add_str(o, "stage", stage) ||
            kb_json_add_str(o, "reason", reason) ||
            kb_json_add_str(o, "detail", clean) ||
            kb_json_add_i64(o, "at", kb_time_now()))
                goto out;
        src = json_object_new_object();
        if (!src || json_object_object_add(o, "source", src)) {
                json_object_put(src);
                goto out;
        }
        if (kb_json_add_str(src, "topic", kb_rec_topic(rec)) ||
            kb_json_add_i64(src, "partition", kb_rec_partition(rec)) ||
            kb_json_add_i64(src, "offset", kb_rec_offset(rec)))
                goto out;
        if (extra) {
                json_object_object_foreach(extra, k, v)
                {
                        if (json_object_object_add(o, k, json_object_get(v)))
                                goto out;
                }
        }
        txt = kb_json_str(o, &len);
        hdrs = rd_kafka_headers_new(2);
        if (!hdrs)
                goto out;
        rd_kafka_header_add(hdrs, "kb-reason", -1, reason, -1);
        rd_kafka_header_add(hdrs, "content-type", -1, "application/json", -1);
        r = kb_rec_produce(rec, topic, RD_KAFKA_PARTITION_UA, share_id,
                           share_id ? strlen(share_id) : 0, txt, len, hdrs);
out:
        json_object_put(extra);
        json_object_put(o);
        return r;
}
