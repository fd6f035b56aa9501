/* dlq.h -- dead-letter records: what failed, where, why (never secrets) */
#ifndef KB_DLQ_H
#define KB_DLQ_H

#include <json-c/json.h>

#include "pipeline.h"

/*
 * Adds a dead-letter output to @p rec: a JSON record (format
 * "kyc-bridge-dead-letter/1", schemas/dead-letter.schema.json) with the
 * share_id (may be NULL when the input did not say), the stage and a stable
 * reason code, a human detail (JWT-shaped text is scrubbed), the input's
 * topic/partition/offset and the time. Members of @p extra (may be NULL;
 * reference taken) are added too. Key = share_id. Returns KB_OK or an error.
 */
int kb_dlq_produce(kb_rec_t *rec, const char *topic, const char *stage,
                   const char *reason, const char *detail, const char *share_id,
                   json_object *extra);

#endif /* KB_DLQ_H */
