/* envelope_int.h -- library-internal envelope writers (never exported, not
 * installed) */
#ifndef KB_ENVELOPE_INT_H
#define KB_ENVELOPE_INT_H

#include <stddef.h>

#include "kyc_bridge.h"
#include "util.h"

/*
 * The envelope's JSON, written as text: byte for byte what json-c's
 * compact serialisation (kb_json_str()) made of the trees the seal built
 * before -- members in the order below, strings escaped by
 * kb_json_put_string(), integers in decimal -- so that envelopes and the
 * signed inner documents are the same whichever wrote them
 * (test_envelope compares both over generated values). Named kb_envint_*
 * so that the library's export map (kb_envelope_*) leaves them out.
 */

/**
 * Bytes kb_envint_inner_put() may append at most for @p f and a token of
 * @p token_len bytes (every string byte escaped as \u00xx): with as much
 * reserved, the buffer is never reallocated, and no copy of the token is
 * left behind.
 */
size_t kb_envint_inner_bound(const kb_envelope_fields_t *f, size_t token_len,
                             const char *recipient_key_id,
                             const char *signer_key_id);

/**
 * Appends the inner document for @p f, the token @p token / @p token_len
 * and the two key ids to @p b:
 * {"v":1,"issuer_application_id","for_application_id","recipient_key_id",
 * "signer_key_id","share_id","session_kind","source_session_id",
 * ["vendor_data_hint" when not ""],"created_at","expires_at","share_token"}
 * (a session_kind that kb_session_kind2str() does not know is left out, as
 * json-c left a NULL string out). Returns KB_OK, KB_ERR_NOMEM, or
 * KB_ERR_INVALID_ARG for a string that is not UTF-8 (json-c would have
 * written its bytes raw; the seal checks every field before). On failure
 * @p b keeps its old length.
 */
int kb_envint_inner_put(kb_buf_t *b, const kb_envelope_fields_t *f,
                        const char *token, size_t token_len,
                        const char *recipient_key_id,
                        const char *signer_key_id);

/**
 * Appends the outer envelope:
 * {"v":1,"for_application_id","recipient_key_id","signer_key_id",
 * "share_id","expires_at","sealed"} with @p sealed / @p sealed_len as
 * unpadded base64url. Returns as kb_envint_inner_put().
 */
int kb_envint_outer_put(kb_buf_t *b, const kb_envelope_fields_t *f,
                        const char *recipient_key_id, const char *signer_key_id,
                        const unsigned char *sealed, size_t sealed_len);

#endif /* KB_ENVELOPE_INT_H */
