/* dlq.h -- dead-letter records: what failed, where, why (never secrets) */
#ifndef KB_DLQ_H
#define KB_DLQ_H

#include <stddef.h>

#include <json-c/json.h>

#include "pipeline.h"

#define KB_DLQ_FORMAT          "kyc-bridge-dead-letter/1"
#define KB_DLQ_REDRIVEN_FORMAT "kyc-bridge-dead-letter-redriven/1"
/* Inputs up to this size are kept in their dead letter (member "input"). */
#define KB_DLQ_INPUT_MAX_BYTES 65536U
/* Header values longer than this are not carried. */
#define KB_DLQ_HEADER_MAX_BYTES 512U

/*
 * The hop-context headers a dead letter carries (as its own Kafka headers
 * and in its kept input), and a redrive puts back on the input: an
 * allow-list, as an issuer's systems may put anything in theirs.
 * NULL-terminated. Their values are the daemon's as it handled the input
 * (the daemon rewrites traceparent with its own span id), not necessarily
 * the input's own.
 */
extern const char *const kb_dlq_input_headers[];

/*
 * Adds a dead-letter output to @p rec: a JSON record (format
 * KB_DLQ_FORMAT, schemas/dead-letter.schema.json) with the share_id (may
 * be NULL when the input did not say), the stage and a stable reason code,
 * a human detail (JWT-shaped text is scrubbed), the input's
 * topic/partition/offset, the time and -- when kb_dlq_keeps_input() says
 * so -- the input itself (member "input", see kb_dlq_input_json()), so
 * that it can be redriven after the input topic's retention. The
 * allow-listed hop-context headers of @p rec (kb_dlq_input_headers, as the
 * daemon stamped them) go onto the dead-letter record too. Members of
 * @p extra (may be NULL; reference taken) are added too. Key = share_id.
 * Returns KB_OK or an error.
 */
int kb_dlq_produce(kb_rec_t *rec, const char *topic, const char *stage,
                   const char *reason, const char *detail, const char *share_id,
                   json_object *extra);

/**
 * Does a dead letter of @p reason keep its input of @p value_len bytes?
 * Only when a redrive could use it: the reason is known and redrivable
 * (kb_dlq_reason()) and the input at most KB_DLQ_INPUT_MAX_BYTES. A dead
 * letter that can never be redriven (expired, malformed, forged, ...)
 * carries no sealed token or raw request nobody can use.
 */
int kb_dlq_keeps_input(const char *reason, size_t value_len);

/*
 * The "input" member of a dead letter: {"key": base64 or null, "value":
 * base64, "size": value bytes, "sha256": lowercase hex of the value,
 * "headers": {name: value} of the allow-listed headers of @p hdrs (may be
 * NULL; the daemon's stamped hop context) that are text of at most
 * KB_DLQ_HEADER_MAX_BYTES}. Base64 is the
 * standard alphabet with padding. Returns a new object, NULL on ENOMEM.
 */
json_object *kb_dlq_input_json(const void *key, size_t key_len,
                               const void *value, size_t value_len,
                               rd_kafka_headers_t *hdrs);

/* A dead letter's input, decoded (kb_dlq_input_decode()). */
typedef struct kb_dlq_input_s {
        unsigned char *key; /* NULL when the input had none */
        size_t key_len;
        unsigned char *value;
        size_t value_len;
        /* name, value pairs of the allow-listed headers, NULL-terminated;
         * borrowed from the JSON object decoded */
        const char *headers[16];
} kb_dlq_input_t;

/*
 * Decodes the "input" member @p input of a dead letter into @p out and
 * checks it: base64, the size and the sha256 digest of the value, header
 * names on the allow-list. Returns KB_OK, KB_ERR_MALFORMED (reason in
 * @p errstr; nothing to free) or KB_ERR_NOMEM. Free with
 * kb_dlq_input_free(); the header strings live as long as @p input.
 */
int kb_dlq_input_decode(json_object *input, kb_dlq_input_t *out, char *errstr,
                        size_t errstr_size);
void kb_dlq_input_free(kb_dlq_input_t *in);

/** SHA-256 of @p len bytes at @p p as lowercase hex (65 bytes with NUL). */
void kb_dlq_sha256_hex(const void *p, size_t len, char out[65]);

/* What a redrive can do about a reason. */
typedef struct kb_dlq_reason_s {
        const char *reason;
        int redrivable; /* the cause can be fixed on our side */
        /* refused: what to do instead; redrivable: what to fix first */
        const char *advice;
} kb_dlq_reason_t;

/** The row of @p reason, or NULL for a reason this version does not know
 * (a redrive refuses those). */
const kb_dlq_reason_t *kb_dlq_reason(const char *reason);
/** Every row (every reason code of schemas/dead-letter.schema.json). */
const kb_dlq_reason_t *kb_dlq_reasons(size_t *n);

#endif /* KB_DLQ_H */
