/* kb_keys.h -- public API: key pairs, key ids, key files and keyrings */
#ifndef KB_KEYS_H
#define KB_KEYS_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define KB_BOX_PUBLICKEYBYTES  32U /* X25519 public key */
#define KB_BOX_SECRETKEYBYTES  32U /* X25519 secret key */
#define KB_SIGN_PUBLICKEYBYTES 32U /* Ed25519 public key */
#define KB_SIGN_SECRETKEYBYTES 64U /* Ed25519 secret key (libsodium layout) */

/* A key id is 16 lowercase hex characters; buffers hold the NUL too. */
#define KB_KEYID_LEN   16U
#define KB_KEYID_BYTES (KB_KEYID_LEN + 1U)

typedef enum {
        KB_KEY_BOX = 1,  /* X25519, receives sealed envelopes */
        KB_KEY_SIGN = 2, /* Ed25519, signs envelopes */
} kb_key_type_t;

/*
 * A key pair or a public key. The secret half, when present, lives in
 * sodium_malloc()ed, guarded, mlock()ed memory that is wiped on destroy.
 */
typedef struct kb_key_s kb_key_t;

/* The accessors below take a valid, non-NULL key. */

/** Key type of @p key. */
kb_key_type_t kb_key_type(const kb_key_t *key);
/** The key id (NUL-terminated, KB_KEYID_LEN chars). Valid while @p key lives.
 */
const char *kb_key_id(const kb_key_t *key);
/** Raw public key (32 bytes). */
const unsigned char *kb_key_public(const kb_key_t *key);
/** Non-zero if @p key holds a secret half. */
int kb_key_has_secret(const kb_key_t *key);
/** Frees @p key, wiping the secret half. NULL is a no-op. */
void kb_key_destroy(kb_key_t *key);

/**
 * Derives the key id of a public key: the first 8 bytes of
 * BLAKE2b-256(key = "kyc-bridge key id v1", msg = type_byte || pk), lowercase
 * hex. type_byte is 0x01 for box keys and 0x02 for signing keys. Writes
 * KB_KEYID_BYTES into @p out.
 */
void kb_key_id_derive(kb_key_type_t type, const unsigned char pk[32],
                      char out[KB_KEYID_BYTES]);

/** Generates a new key pair of @p type. Returns NULL on failure, with errno
 * ENOMEM when memory ran out (EINVAL for a bad @p type). */
kb_key_t *kb_key_generate(kb_key_type_t type);

/** Builds a public-only key from raw bytes. Returns NULL on failure, with
 * errno ENOMEM when memory ran out (EINVAL for a bad @p type). */
kb_key_t *kb_key_from_public(kb_key_type_t type, const unsigned char pk[32]);

/**
 * Writes the secret key file @p path (mode 0600, O_EXCL: refuses to replace an
 * existing file, KB_ERR_EXISTS). When @p passphrase is non-NULL the secret is
 * encrypted with a key derived by Argon2id (crypto_pwhash) and
 * XSalsa20-Poly1305 (crypto_secretbox). The file format is in docs/keys.md.
 */
int kb_key_save_secret(const kb_key_t *key, const char *path,
                       const char *passphrase, size_t passphrase_len,
                       char *errstr, size_t errstr_size);

/**
 * Reads a secret key file. @p passphrase is required when the file is
 * encrypted (and ignored when it is not). On failure returns NULL and writes
 * "path: reason" (or "path:line: reason") into @p errstr; a wrong passphrase
 * reads "path: wrong passphrase or corrupted key file". The file must name
 * its own key id and public key, and both must match the secret.
 *
 * On failure errno tells the caller whose problem it is:
 *  - ENOMEM: memory ran out (also in the passphrase's key derivation); the
 *    file may well be fine;
 *  - the errno of open(2), fstat(2) or read(2) (ENOENT, EACCES, ...) when the
 *    file cannot be read, EFBIG when it is too large for a key file;
 *  - EINVAL for everything else: not a regular file, not a valid key file, a
 *    missing or wrong passphrase, a NULL @p path.
 * Only ENOMEM means "out of memory" (a daemon's runtime failure, not a
 * configuration error).
 */
kb_key_t *kb_key_load_secret(const char *path, const char *passphrase,
                             size_t passphrase_len, char *errstr,
                             size_t errstr_size);

/*
 * Public key bundle: the JSON file one party hands to its partners (format
 * "kyc-bridge-public-keys/1", schemas/public-keys.schema.json). It lists box
 * keys (to seal to) and signing keys (to verify), newest first.
 */
typedef struct kb_bundle_s kb_bundle_t;

/** Creates an empty bundle; @p label is optional free text (may be NULL).
 * NULL with errno EINVAL (a label that is not 1..256 bytes of text) or
 * ENOMEM. */
kb_bundle_t *kb_bundle_new(const char *label);
void kb_bundle_destroy(kb_bundle_t *bundle);
/**
 * Appends the public half of @p key (copied): add the newest key first.
 * KB_ERR_EXISTS for a key id already in the bundle, KB_ERR_TOO_LARGE past 64
 * keys.
 */
int kb_bundle_add(kb_bundle_t *bundle, const kb_key_t *key);
/** Serialises to JSON text (malloc()ed, caller frees). NULL on failure. */
char *kb_bundle_to_json(const kb_bundle_t *bundle);
/**
 * Parses a bundle from @p json / @p len. NULL + errstr on failure, with errno
 * ENOMEM when memory ran out and EINVAL when the text is not a valid bundle.
 */
kb_bundle_t *kb_bundle_parse(const char *json, size_t len, char *errstr,
                             size_t errstr_size);
/**
 * Reads and parses the bundle file @p path. NULL + "path: reason" on
 * failure, with errno: ENOMEM when memory ran out; the errno of the failed
 * open or read (ENOENT, EACCES, ...; EFBIG over 64 KiB) when the file cannot
 * be read; EINVAL when it is not a valid bundle (or @p path is NULL). Only
 * ENOMEM means "out of memory".
 */
kb_bundle_t *kb_bundle_load(const char *path, char *errstr, size_t errstr_size);
/** The bundle's label, or NULL when it has none. Owned by the bundle. */
const char *kb_bundle_label(const kb_bundle_t *bundle);
/** Number of keys of @p type in the bundle. */
size_t kb_bundle_count(const kb_bundle_t *bundle, kb_key_type_t type);
/** The @p idx-th key of @p type (0 = newest), or NULL. Owned by the bundle. */
const kb_key_t *kb_bundle_get(const kb_bundle_t *bundle, kb_key_type_t type,
                              size_t idx);

/*
 * Keyring: a set of keys looked up by key id. Used by the importer for its own
 * box secret keys (several during rotation) and for the allowlist of issuer
 * signing keys, each tagged with the issuer application id it belongs to.
 */
typedef struct kb_keyring_s kb_keyring_t;

kb_keyring_t *kb_keyring_new(void);
/** Frees the ring and every key in it. */
void kb_keyring_destroy(kb_keyring_t *ring);
/**
 * Adds @p key, taking ownership on success. @p owner_app_id (may be NULL) is
 * the application the key belongs to (for signing keys: the issuer; a signing
 * key without an owner vouches for no issuer, so envelopes it signed fail
 * with KB_ERR_AUTH). Adding a key id twice returns KB_ERR_EXISTS and does not
 * take ownership. A ring is not locked: fill it first, then share it
 * read-only between threads.
 */
int kb_keyring_add(kb_keyring_t *ring, kb_key_t *key, const char *owner_app_id);
/**
 * Adds copies of every key of @p type in @p bundle, owned by @p owner_app_id.
 * All or nothing: KB_ERR_EXISTS (and nothing added) when one of them is
 * already in the ring.
 */
int kb_keyring_add_bundle(kb_keyring_t *ring, const kb_bundle_t *bundle,
                          kb_key_type_t type, const char *owner_app_id);
/** Finds a key by id and type; NULL if absent. @p owner_app_id optional out. */
const kb_key_t *kb_keyring_find(const kb_keyring_t *ring, kb_key_type_t type,
                                const char *key_id, const char **owner_app_id);
size_t kb_keyring_count(const kb_keyring_t *ring);

#ifdef __cplusplus
}
#endif

#endif /* KB_KEYS_H */
