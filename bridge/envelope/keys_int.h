/* keys_int.h -- library-internal key operations (never exported, not installed)
 */
#ifndef KB_KEYS_INT_H
#define KB_KEYS_INT_H

#include <stddef.h>

#include "kyc_bridge.h"

/*
 * The secret half of a kb_key_t never leaves keys.c except through these
 * functions. They are deliberately not named kb_key_* so that the export map
 * of the shared library (kb_key_*) does not publish them.
 */

/* Bytes of the storable secret: the X25519 scalar or the Ed25519 seed. */
#define KB_KEYINT_SECRET_BYTES 32U

/**
 * Builds a key pair from its storable secret (@p secret, 32 bytes: an X25519
 * scalar for KB_KEY_BOX, an Ed25519 seed for KB_KEY_SIGN). The public half is
 * derived. The caller keeps (and wipes) @p secret. NULL on failure.
 */
kb_key_t *kb_keyint_from_secret(kb_key_type_t type,
                                const unsigned char secret[32]);

/**
 * Copies the storable secret of @p key into @p out (32 bytes; the caller
 * wipes it). Returns KB_OK or KB_ERR_INVALID_ARG for a public-only key.
 */
int kb_keyint_export_secret(const kb_key_t *key, unsigned char out[32]);

/**
 * Ed25519 detached signature over @p m with the secret of signing key @p key.
 * Returns KB_OK, KB_ERR_INVALID_ARG (wrong type / no secret) or
 * KB_ERR_CRYPTO.
 */
int kb_keyint_sign_detached(const kb_key_t *key, unsigned char sig[64],
                            const unsigned char *m, size_t mlen) KB_WUR;

/**
 * crypto_box_seal_open() of @p c (@p clen bytes) with box key @p key into
 * @p m (clen - crypto_box_SEALBYTES bytes). Returns KB_OK, KB_ERR_AUTH or
 * KB_ERR_INVALID_ARG (wrong type / no secret / too short).
 */
int kb_keyint_seal_open(const kb_key_t *key, unsigned char *m,
                        const unsigned char *c, size_t clen) KB_WUR;

/**
 * Reads a passphrase for a secret key file from the environment variable
 * @p env_name or from the file @p path (exactly one of them non-NULL). One
 * trailing "\n" or "\r\n" is removed from a file. The result lives in
 * sodium_malloc()ed memory: release it with kb_keyint_passphrase_free().
 * Returns KB_OK, or an error with a reason (never the passphrase) in errstr.
 */
int kb_keyint_passphrase_read(const char *env_name, const char *path,
                              char **out, size_t *out_len, char *errstr,
                              size_t errstr_size);
void kb_keyint_passphrase_free(char *pass);

#endif /* KB_KEYS_INT_H */
