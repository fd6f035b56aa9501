/* kb_envelope.h -- public API: seal and open share envelopes (format v1) */
#ifndef KB_ENVELOPE_H
#define KB_ENVELOPE_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/*
 * Envelope format v1 is specified in docs/envelope.md and
 * schemas/envelope-v1.schema.json. Size limits (bytes), enforced on both sides:
 */
#define KB_ENVELOPE_VERSION 1
#define KB_ENVELOPE_MAX_BYTES 16384U /* whole serialised envelope */
#define KB_ENVELOPE_MAX_TOKEN 8192U  /* share token (JWT) */
#define KB_ENVELOPE_MAX_ID 128U      /* any id or share_id, in chars */
#define KB_ENVELOPE_MAX_INNER 12288U /* signed inner document */

typedef enum {
        KB_SESSION_USER = 1,     /* KYC */
        KB_SESSION_BUSINESS = 2, /* KYB */
} kb_session_kind_t;

/** "user" / "business", or NULL for an unknown value. */
const char *kb_session_kind2str(kb_session_kind_t kind);
/** Parses "user"/"business"; returns 0 when unknown. */
kb_session_kind_t kb_session_kind_parse(const char *s);

/*
 * Everything the importer relies on. On seal the caller fills the fields
 * (recipient/signer key ids are taken from the keys and need not be set); on
 * open they are filled from the authenticated inner document.
 * Strings are NUL-terminated and at most KB_ENVELOPE_MAX_ID chars.
 */
typedef struct kb_envelope_fields_s {
        char issuer_application_id[KB_ENVELOPE_MAX_ID + 1];
        char for_application_id[KB_ENVELOPE_MAX_ID + 1];
        char share_id[KB_ENVELOPE_MAX_ID + 1];
        char source_session_id[KB_ENVELOPE_MAX_ID + 1];
        char vendor_data_hint[KB_ENVELOPE_MAX_ID + 1]; /* "" when none */
        char recipient_key_id[KB_ENVELOPE_MAX_ID + 1];
        char signer_key_id[KB_ENVELOPE_MAX_ID + 1];
        kb_session_kind_t session_kind;
        int64_t created_at; /* unix seconds */
        int64_t expires_at; /* unix seconds; the token's exp */
} kb_envelope_fields_t;

/*
 * The unencrypted outer header: only what routing needs. Filled by
 * kb_envelope_peek() and by kb_envelope_open() (also on most failures, so a
 * dead-letter record can name the share_id; check .valid).
 */
typedef struct kb_envelope_header_s {
        int valid; /* non-zero once the header parsed */
        int version;
        char for_application_id[KB_ENVELOPE_MAX_ID + 1];
        char recipient_key_id[KB_ENVELOPE_MAX_ID + 1];
        char signer_key_id[KB_ENVELOPE_MAX_ID + 1];
        char share_id[KB_ENVELOPE_MAX_ID + 1];
        int64_t expires_at;
} kb_envelope_header_t;

typedef struct kb_key_s kb_key_t;
typedef struct kb_keyring_s kb_keyring_t;

/**
 * Seals @p token (length @p token_len, at most KB_ENVELOPE_MAX_TOKEN) with
 * @p fields: signs the inner document with @p signer (Ed25519 secret key) and
 * seals it to @p recipient (X25519 public key).
 *
 * On success *out is a malloc()ed, NUL-terminated envelope (JSON text) and
 * *out_len its length without the NUL; the caller frees it. Thread-safe.
 * Returns KB_OK, KB_ERR_INVALID_ARG (missing/oversized field or wrong key
 * type), KB_ERR_TOO_LARGE, KB_ERR_NOMEM or KB_ERR_CRYPTO.
 */
int kb_envelope_seal(const kb_envelope_fields_t *fields, const char *token,
                     size_t token_len, const kb_key_t *signer,
                     const kb_key_t *recipient, char **out,
                     size_t *out_len) KB_WUR;

/**
 * Parses only the outer header of @p env (no crypto). Returns KB_OK,
 * KB_ERR_MALFORMED, KB_ERR_TOO_LARGE or KB_ERR_VERSION.
 */
int kb_envelope_peek(const char *env, size_t env_len,
                     kb_envelope_header_t *hdr) KB_WUR;

/*
 * What the opener trusts. @p my_application_id: only envelopes for it are
 * opened. @p box_keys: own X25519 secret keys, by key id. @p signers: allowed
 * issuer Ed25519 public keys, each owned by an issuer application id (the
 * inner issuer_application_id must equal the key's owner). @p now: unix
 * seconds used for the expiry check.
 */
typedef struct kb_envelope_opener_s {
        const char *my_application_id;
        const kb_keyring_t *box_keys;
        const kb_keyring_t *signers;
        int64_t now;
} kb_envelope_opener_t;

/**
 * Verifies and opens @p env. Order of checks (first failure wins):
 * size/JSON/base64/version (KB_ERR_TOO_LARGE, KB_ERR_MALFORMED,
 * KB_ERR_VERSION) -> header for_application_id (KB_ERR_NOT_FOR_US) ->
 * recipient and signer key ids known (KB_ERR_UNKNOWN_KEY) -> unseal, verify
 * signature, every header field equal to its signed copy, signer owned by the
 * signed issuer id, signed recipient key id equal to the key used
 * (KB_ERR_AUTH: one code for all) -> expiry (KB_ERR_EXPIRED).
 *
 * On KB_OK, @p fields is filled and *token is a sodium_malloc()ed,
 * NUL-terminated copy of the share token of length *token_len, which the
 * caller releases with kb_envelope_token_free(). On failure *token is NULL.
 * @p hdr (may be NULL) receives the outer header when it parsed.
 * Thread-safe for distinct outputs.
 */
int kb_envelope_open(const char *env, size_t env_len,
                     const kb_envelope_opener_t *opener,
                     kb_envelope_header_t *hdr, kb_envelope_fields_t *fields,
                     char **token, size_t *token_len) KB_WUR;

/** Wipes and frees a token returned by kb_envelope_open(). NULL is a no-op. */
void kb_envelope_token_free(char *token);

#ifdef __cplusplus
}
#endif

#endif /* KB_ENVELOPE_H */
