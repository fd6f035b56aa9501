/* vectors.h -- the envelope test vectors' keys and opener, built in memory
 * for the envelope targets (tests/vectors/envelope-v1, public test keys) */
#ifndef KB_FUZZ_VECTORS_H
#define KB_FUZZ_VECTORS_H

#include <sodium.h>

#include "fuzz.h"
#include "keys_int.h"

/* The opener "recipient" of tests/vectors/envelope-v1/manifest.json. */
#define VEC_RECIPIENT_APP "d3b07384-d9a0-4c9b-8f1e-3a5c7e9b1d2f"
#define VEC_ISSUER_APP    "6f1d2c3b-4a59-4e87-9b10-2c3d4e5f6a7b"
#define VEC_ISSUER2_APP   "0b7e8f90-1a2b-4c3d-8e4f-5a6b7c8d9e0f"

typedef struct vec_keys_s {
        kb_key_t *recipient; /* recipient.box.key: X25519 pair */
        kb_key_t *issuer;    /* issuer.sign.key: Ed25519 pair */
        kb_key_t *issuer2;   /* issuer2.sign.key */
        kb_keyring_t *box_keys, *signers;
        kb_envelope_opener_t opener;
} vec_keys_t;

/* A key pair from the secret_key= line of a vector key file; checks the
 * key id the file names. */
static inline kb_key_t *vec_key(kb_key_type_t type, const char *b64,
                                const char *key_id)
{
        unsigned char secret[32];
        size_t n = 0;
        kb_key_t *key;

        if (sodium_base642bin(secret, sizeof(secret), b64, strlen(b64), NULL,
                              &n, NULL,
                              sodium_base64_VARIANT_URLSAFE_NO_PADDING) != 0 ||
            n != sizeof(secret))
                abort();
        key = kb_keyint_from_secret(type, secret);
        sodium_memzero(secret, sizeof(secret));
        if (!key || strcmp(kb_key_id(key), key_id) != 0)
                abort();
        return key;
}

/* Public-only copy of @p key. */
static inline kb_key_t *vec_public(const kb_key_t *key)
{
        kb_key_t *pub =
            kb_key_from_public(kb_key_type(key), kb_key_public(key));

        if (!pub)
                abort();
        return pub;
}

/* The recipient's opener: its box key, both issuers' signing keys (public
 * halves, each owned by its issuer application), now = FUZZ_NOW. */
static inline void vec_keys_init(vec_keys_t *vk)
{
        memset(vk, 0, sizeof(*vk));
        vk->recipient =
            vec_key(KB_KEY_BOX, "a-HyOCnDt46YLVJhUrjEyLyvZBRKD0Stg90C2HHXx-c",
                    "a8fbaac8be692e9d");
        vk->issuer =
            vec_key(KB_KEY_SIGN, "GTiCDPuW5SL5pBVnZ3m4eJo9-CkGuChEcGGzE3O0dm0",
                    "72c0f6a043e4fc36");
        vk->issuer2 =
            vec_key(KB_KEY_SIGN, "Oq8J_dQWyNHvZ-srYgJeNCs6nH-MEhNrsVcFthAcdmQ",
                    "822f4af7c8cfe3a6");
        vk->box_keys = kb_keyring_new();
        vk->signers = kb_keyring_new();
        if (!vk->box_keys || !vk->signers)
                abort();
        /* the ring takes a copy of its own: vk->recipient stays ours */
        if (kb_keyring_add(vk->box_keys,
                           vec_key(KB_KEY_BOX,
                                   "a-HyOCnDt46YLVJhUrjEyLyvZBRKD0Stg90C2HHXx-"
                                   "c",
                                   "a8fbaac8be692e9d"),
                           NULL) != KB_OK ||
            kb_keyring_add(vk->signers, vec_public(vk->issuer),
                           VEC_ISSUER_APP) != KB_OK ||
            kb_keyring_add(vk->signers, vec_public(vk->issuer2),
                           VEC_ISSUER2_APP) != KB_OK)
                abort();
        vk->opener.my_application_id = VEC_RECIPIENT_APP;
        vk->opener.box_keys = vk->box_keys;
        vk->opener.signers = vk->signers;
        vk->opener.now = FUZZ_NOW;
}

/* Non-zero when every byte of @p p (@p n bytes) is zero. */
static inline int vec_all_zero(const void *p, size_t n)
{
        const unsigned char *c = p;
        size_t i;

        for (i = 0; i < n; i++)
                if (c[i])
                        return 0;
        return 1;
}

/* An opened envelope's fields keep the value rules (kb_envelope.h). */
static inline void vec_check_fields(const kb_envelope_fields_t *f)
{
        const char *ids[] = { f->issuer_application_id,
                              f->for_application_id,
                              f->share_id,
                              f->source_session_id,
                              f->recipient_key_id,
                              f->signer_key_id };
        size_t i;

        for (i = 0; i < sizeof(ids) / sizeof(ids[0]); i++)
                FUZZ_CHECK(kb_envelope_id_valid(ids[i], strlen(ids[i])));
        FUZZ_CHECK(!f->vendor_data_hint[0] ||
                   kb_envelope_id_valid(f->vendor_data_hint,
                                        strlen(f->vendor_data_hint)));
        FUZZ_CHECK(kb_session_kind2str(f->session_kind) != NULL);
        FUZZ_CHECK(f->created_at >= 0 && f->created_at <= f->expires_at);
        FUZZ_CHECK(f->expires_at <= INT64_C(9007199254740991));
}

#endif /* KB_FUZZ_VECTORS_H */
