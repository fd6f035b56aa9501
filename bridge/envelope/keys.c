/* keys.c -- key pairs and key ids; the only place that touches secret halves */
#include "kyc_bridge.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "keys_int.h"
#include "util.h"

/* BLAKE2b key of the key id derivation: 20 bytes, no terminator. */
static const unsigned char keyid_key[] = "kyc-bridge key id v1";
#define KEYID_KEY_BYTES (sizeof(keyid_key) - 1U)

struct kb_key_s {
        kb_key_type_t type;
        char id[KB_KEYID_BYTES];
        unsigned char pk[32];
        /* sodium_malloc()ed, read-only once filled: X25519 scalar (32) or
         * Ed25519 secret key in libsodium layout, seed || pk (64). NULL for a
         * public-only key. */
        unsigned char *sk;
};

static size_t sk_bytes(kb_key_type_t type)
{
        return type == KB_KEY_BOX ? KB_BOX_SECRETKEYBYTES
                                  : KB_SIGN_SECRETKEYBYTES;
}

static int type_ok(kb_key_type_t type)
{
        return type == KB_KEY_BOX || type == KB_KEY_SIGN;
}

kb_key_type_t kb_key_type(const kb_key_t *key)
{
        return key->type;
}

const char *kb_key_id(const kb_key_t *key)
{
        return key->id;
}

const unsigned char *kb_key_public(const kb_key_t *key)
{
        return key->pk;
}

int kb_key_has_secret(const kb_key_t *key)
{
        return key && key->sk != NULL;
}

void kb_key_destroy(kb_key_t *key)
{
        if (!key)
                return;
        /* sodium_free() makes the region writable again and wipes it */
        if (key->sk)
                sodium_free(key->sk);
        sodium_memzero(key, sizeof(*key));
        free(key);
}

void kb_key_id_derive(kb_key_type_t type, const unsigned char pk[32],
                      char out[KB_KEYID_BYTES])
{
        unsigned char msg[1 + 32];
        unsigned char h[32];

        msg[0] = (unsigned char)type; /* 0x01 box, 0x02 sign */
        memcpy(msg + 1, pk, 32);
        crypto_generichash(h, sizeof(h), msg, sizeof(msg), keyid_key,
                           KEYID_KEY_BYTES);
        kb_hex(h, KB_KEYID_LEN / 2, out);
}

/* NULL with errno EINVAL (bad type) or ENOMEM. */
static kb_key_t *key_alloc(kb_key_type_t type, int with_secret)
{
        kb_key_t *key;

        if (!type_ok(type)) {
                errno = EINVAL;
                return NULL;
        }
        key = calloc(1, sizeof(*key));
        if (!key) {
                errno = ENOMEM;
                return NULL;
        }
        key->type = type;
        if (with_secret) {
                key->sk = sodium_malloc(sk_bytes(type));
                if (!key->sk) {
                        free(key);
                        errno = ENOMEM;
                        return NULL;
                }
        }
        return key;
}

/* Seals the secret half against writes and fixes the id. On failure frees
 * @p key and returns NULL with mprotect()'s errno. */
static kb_key_t *key_finish(kb_key_t *key)
{
        int e;

        if (key->sk && sodium_mprotect_readonly(key->sk) != 0) {
                e = errno ? errno : EINVAL;
                kb_key_destroy(key);
                errno = e;
                return NULL;
        }
        kb_key_id_derive(key->type, key->pk, key->id);
        return key;
}

/* Fills pk and sk of @p key from a 32-byte secret (scalar or seed). */
static int key_fill(kb_key_t *key, const unsigned char secret[32])
{
        if (key->type == KB_KEY_BOX) {
                memcpy(key->sk, secret, 32);
                return crypto_scalarmult_base(key->pk, key->sk) == 0 ? 0 : -1;
        }
        return crypto_sign_seed_keypair(key->pk, key->sk, secret) == 0 ? 0 : -1;
}

/* NULL with errno ENOMEM when memory ran out, otherwise another value (the
 * loaders in keyfile.c tell the two apart). */
kb_key_t *kb_keyint_from_secret(kb_key_type_t type,
                                const unsigned char secret[32])
{
        kb_key_t *key = key_alloc(type, 1);

        if (!key)
                return NULL;
        if (key_fill(key, secret) == -1) {
                kb_key_destroy(key);
                errno = EINVAL; /* not a usable secret */
                return NULL;
        }
        return key_finish(key);
}

kb_key_t *kb_key_generate(kb_key_type_t type)
{
        unsigned char secret[32];
        kb_key_t *key;

        if (!type_ok(type)) {
                errno = EINVAL;
                return NULL;
        }
        /* Both types are generated from 32 random bytes, which is exactly
         * what the key file stores (crypto_box_keypair() does the same). */
        randombytes_buf(secret, sizeof(secret));
        key = kb_keyint_from_secret(type, secret);
        sodium_memzero(secret, sizeof(secret));
        return key;
}

kb_key_t *kb_key_from_public(kb_key_type_t type, const unsigned char pk[32])
{
        kb_key_t *key = key_alloc(type, 0);

        if (!key)
                return NULL;
        memcpy(key->pk, pk, 32);
        return key_finish(key);
}

int kb_keyint_export_secret(const kb_key_t *key, unsigned char out[32])
{
        if (!key || !key->sk)
                return KB_ERR_INVALID_ARG;
        if (key->type == KB_KEY_BOX)
                memcpy(out, key->sk, 32);
        else
                crypto_sign_ed25519_sk_to_seed(out, key->sk);
        return KB_OK;
}

int kb_keyint_sign_detached(const kb_key_t *key, unsigned char sig[64],
                            const unsigned char *m, size_t mlen)
{
        if (!key || key->type != KB_KEY_SIGN || !key->sk)
                return KB_ERR_INVALID_ARG;
        if (crypto_sign_detached(sig, NULL, m, mlen, key->sk) != 0)
                return KB_ERR_CRYPTO;
        return KB_OK;
}

int kb_keyint_seal_open(const kb_key_t *key, unsigned char *m,
                        const unsigned char *c, size_t clen)
{
        if (!key || key->type != KB_KEY_BOX || !key->sk)
                return KB_ERR_INVALID_ARG;
        if (clen < crypto_box_SEALBYTES)
                return KB_ERR_AUTH;
        if (crypto_box_seal_open(m, c, clen, key->pk, key->sk) != 0)
                return KB_ERR_AUTH;
        return KB_OK;
}
