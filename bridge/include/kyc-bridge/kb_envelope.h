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
#define KB_ENVELOPE_VERSION   1
#define KB_ENVELOPE_MAX_BYTES 16384U /* whole serialised envelope */
#define KB_ENVELOPE_MAX_TOKEN 8192U  /* share token (JWT) */
#define KB_ENVELOPE_MAX_ID    128U   /* any id or share_id, in UTF-8 bytes */
#define KB_ENVELOPE_MAX_INNER 12288U /* signed inner document */

typedef enum {
        KB_SESSION_USER = 1,     /* KYC */
        KB_SESSION_BUSINESS = 2, /* KYB */
} kb_session_kind_t;

/**
 * Non-zero when the @p len bytes at @p s are a valid id for an envelope
 * (an application id, share_id, source_session_id or vendor_data_hint):
 * 1..KB_ENVELOPE_MAX_ID bytes of well-formed UTF-8 without control
 * characters (docs/envelope.md, "Value rules"). @p s need not be
 * NUL-terminated; an embedded NUL makes it invalid. NULL is invalid.
 * Thread-safe.
 */
int kb_envelope_id_valid(const char *s, size_t len);

/** "user" / "business", or NULL for an unknown value. */
const char *kb_session_kind2str(kb_session_kind_t kind);
/** Parses "user"/"business"; returns 0 when unknown. */
kb_session_kind_t kb_session_kind_parse(const char *s);

/*
 * Everything the importer relies on. On seal the caller fills the fields
 * (recipient/signer key ids are taken from the keys and need not be set); on
 * open they are filled from the authenticated inner document.
 * Strings are NUL-terminated, 1..KB_ENVELOPE_MAX_ID bytes of UTF-8 without
 * control characters (vendor_data_hint may be ""); times are 0..2^53-1 and
 * created_at <= expires_at (docs/envelope.md, "Value rules").
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
 * dead-letter record can name the share_id; check .valid). .valid is set once
 * all seven members passed their value rules, even if a later check (base64
 * of "sealed", keys, authenticity) fails: the values are then unauthenticated.
 * .version holds the "v" read when it was an integer, also on KB_ERR_VERSION.
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
 * Seals @p token (length @p token_len, 1..KB_ENVELOPE_MAX_TOKEN bytes of
 * 0x21..0x7e) with @p fields: signs the inner document with @p signer
 * (Ed25519 key pair) and seals it to @p recipient (X25519 public key; a key
 * pair works too). KB_ERR_TOO_LARGE also when JSON escaping pushes the inner
 * document over KB_ENVELOPE_MAX_INNER or the envelope over
 * KB_ENVELOPE_MAX_BYTES.
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
 * Verifies and opens @p env. Order of checks (first failure wins; the
 * table in docs/envelope.md, "Opening an envelope", is normative):
 * size (KB_ERR_TOO_LARGE, before parsing) -> JSON, "v" an integer
 * (KB_ERR_MALFORMED) -> "v" == 1 (KB_ERR_VERSION) -> the other members and
 * the base64 of "sealed" (KB_ERR_MALFORMED) -> header for_application_id
 * (KB_ERR_NOT_FOR_US) -> recipient key id among the box keys with a secret
 * half, signer key id among the signers (KB_ERR_UNKNOWN_KEY) -> unseal and
 * verify the signature (KB_ERR_AUTH) -> the authentic inner document's shape
 * (KB_ERR_MALFORMED: the signer wrote a broken document) -> every header
 * field equal to its signed copy, the signed key ids equal to the keys used,
 * the signer owned by the signed issuer_application_id, the signed
 * for_application_id ours (KB_ERR_AUTH: one code for all) -> now <
 * expires_at (KB_ERR_EXPIRED). KB_ERR_INVALID_ARG for NULL arguments,
 * KB_ERR_NOMEM.
 *
 * On KB_OK, @p fields is filled and *token is a sodium_malloc()ed,
 * NUL-terminated copy of the share token of length *token_len, which the
 * caller releases with kb_envelope_token_free(). On failure *token is NULL,
 * *token_len 0 and @p fields all zero (nothing unverified leaks out).
 * @p hdr (may be NULL) receives the outer header when it parsed.
 * Decrypted buffers are wiped before they are freed. Thread-safe: the
 * keyrings are only read, so many threads may share one opener.
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
