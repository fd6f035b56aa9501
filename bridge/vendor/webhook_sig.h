/* webhook_sig.h -- vendor webhook signatures: X-Signature-V2 and
 * X-Signature-Simple */
#ifndef KB_WEBHOOK_SIG_H
#define KB_WEBHOOK_SIG_H

#include <stddef.h>
#include <stdint.h>

#include <json-c/json.h>

#include "kyc_bridge.h"

/* Lowercase hex HMAC-SHA256 plus NUL. */
#define KB_WEBHOOK_SIG_HEX_BYTES 65U
/* The contract's replay window, seconds. */
#define KB_WEBHOOK_TOLERANCE_S 300
/* Largest delivery body kb_webhook_verify() parses (bytes). */
#define KB_WEBHOOK_MAX_BODY (1024U * 1024U)

/*
 * API-CONTRACT.md "Webhooks". The HMAC key is the UTF-8 bytes of the
 * application's secret_shared_key (the C string @p secret, which must not be
 * empty). The timestamp is written as a plain decimal integer.
 */

/**
 * X-Signature-V2: lowercase hex HMAC-SHA256 over
 * "<ts>:<canonical JSON of payload>" (kb_canon_json()). @p out receives 64
 * hex digits and a NUL. Returns KB_OK, KB_ERR_INVALID_ARG (NULL/empty
 * secret, NULL out, payload not canonicalisable: NaN, bad UTF-8),
 * KB_ERR_NOMEM or KB_ERR_CRYPTO. Thread-safe.
 */
int kb_webhook_sign_v2(const char *secret, int64_t ts, json_object *payload,
                       char out[65]) KB_WUR;

/**
 * X-Signature-Simple: lowercase hex HMAC-SHA256 over
 * "<ts>:<session_id>:<status>:<webhook_type>". Same returns as
 * kb_webhook_sign_v2().
 */
int kb_webhook_sign_simple(const char *secret, int64_t ts,
                           const char *session_id, const char *status,
                           const char *webhook_type, char out[65]) KB_WUR;

/**
 * Verifies one delivery from its raw @p body and header values (NULL when a
 * header is absent). Steps: the body must be strict JSON (kb_json_parse, at
 * most KB_WEBHOOK_MAX_BODY bytes) else KB_ERR_MALFORMED; then, all
 * failures being KB_ERR_AUTH with no detail:
 *  - the body is an object whose "timestamp" is a JSON integer;
 *  - @p ts_header is a plain decimal integer (no sign other than '-', no
 *    leading zeros or spaces: the form the signer hashed) equal to it;
 *  - |now - ts| <= @p tolerance_s (the contract uses
 *    KB_WEBHOOK_TOLERANCE_S);
 *  - if @p sig_v2 is given, it must match the V2 signature of the parsed
 *    body; else if @p sig_simple is given, it must match the Simple
 *    signature over the body's "session_id", "status" and "webhook_type"
 *    (strings); with neither header, fail. A signature header is 64 hex
 *    digits (either case) and is compared in constant time.
 * KB_ERR_INVALID_ARG for a NULL/empty secret, NULL body or negative
 * tolerance; KB_ERR_NOMEM / KB_ERR_CRYPTO when resources fail (never for a
 * forged delivery). Thread-safe.
 */
int kb_webhook_verify(const char *secret, const char *ts_header,
                      const char *sig_v2, const char *sig_simple,
                      const char *body, size_t body_len, int64_t now,
                      int64_t tolerance_s) KB_WUR;

#endif /* KB_WEBHOOK_SIG_H */
