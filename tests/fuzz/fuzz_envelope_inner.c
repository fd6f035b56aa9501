/* fuzz_envelope_inner.c -- kb_envelope_open() past the signature: the input
 * is an inner document, which the target signs and seals with the vector
 * keys, so that the parts of open a forger cannot reach (the authentic
 * document's shape, its agreement with the header, expiry) are fuzzed too */
/* fuzz-options: -max_len=12400 */
#include <json-c/json.h>

#include "vectors.h"

static vec_keys_t vk;

/* The header of tests/vectors/envelope-v1/valid.json, for documents whose
 * own values cannot stand in an outer header. */
#define FIXED_SHARE_ID "share-0001"
#define FIXED_EXPIRES  INT64_C(1795309200)

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
        (void)argc;
        (void)argv;
        fuzz_init(1);
        vec_keys_init(&vk);
        return 0;
}

/* A string member of @p o, else @p dflt (the harness reads the document
 * leniently, with json-c alone: it only picks header values). */
static const char *member_str(json_object *o, const char *name,
                              const char *dflt)
{
        json_object *v;

        if (o && json_object_object_get_ex(o, name, &v) &&
            json_object_is_type(v, json_type_string))
                return json_object_get_string(v);
        return dflt;
}

static int64_t member_int(json_object *o, const char *name, int64_t dflt)
{
        json_object *v;

        if (o && json_object_object_get_ex(o, name, &v) &&
            json_object_is_type(v, json_type_int))
                return json_object_get_int64(v);
        return dflt;
}

/*
 * The envelope: outer header (from the document when @p doc is non-NULL,
 * else valid.json's) and sealed = base64url(seal(sig || inner)). The
 * signature covers the context "kyc-bridge envelope v1\0" || inner
 * (docs/envelope.md). malloc()ed JSON text.
 */
static char *build(const kb_key_t *signer, const uint8_t *inner, size_t len,
                   json_object *doc, size_t *out_len)
{
        static const unsigned char ctx[] = "kyc-bridge envelope v1";
        unsigned char *m, *sealed;
        unsigned long long siglen = 0;
        unsigned char sk[64], seed[32], pk[32];
        size_t mlen = sizeof(ctx) + len, slen = 64 + len, b64len;
        json_object *outer;
        char *b64, *txt;

        m = malloc(mlen);
        sealed = malloc(crypto_box_SEALBYTES + slen);
        b64len =
            sodium_base64_ENCODED_LEN(crypto_box_SEALBYTES + slen,
                                      sodium_base64_VARIANT_URLSAFE_NO_PADDING);
        b64 = malloc(b64len);
        if (!m || !sealed || !b64)
                abort();
        memcpy(m, ctx, sizeof(ctx));
        if (len)
                memcpy(m + sizeof(ctx), inner, len);
        if (kb_keyint_export_secret(signer, seed) != KB_OK ||
            crypto_sign_seed_keypair(pk, sk, seed) != 0)
                abort();
        /* signed = sig || inner, reusing m's tail */
        {
                unsigned char *signed_inner = malloc(slen);
                if (!signed_inner)
                        abort();
                crypto_sign_detached(signed_inner, &siglen, m, mlen, sk);
                if (len)
                        memcpy(signed_inner + 64, inner, len);
                if (crypto_box_seal(sealed, signed_inner, slen,
                                    kb_key_public(vk.recipient)) != 0)
                        abort();
                free(signed_inner);
        }
        sodium_memzero(sk, sizeof(sk));
        sodium_memzero(seed, sizeof(seed));
        sodium_bin2base64(b64, b64len, sealed, crypto_box_SEALBYTES + slen,
                          sodium_base64_VARIANT_URLSAFE_NO_PADDING);

        outer = json_object_new_object();
        json_object_object_add(outer, "v", json_object_new_int(1));
        json_object_object_add(
            outer, "for_application_id",
            json_object_new_string(
                member_str(doc, "for_application_id", VEC_RECIPIENT_APP)));
        json_object_object_add(
            outer, "recipient_key_id",
            json_object_new_string(
                member_str(doc, "recipient_key_id", kb_key_id(vk.recipient))));
        json_object_object_add(outer, "signer_key_id",
                               json_object_new_string(kb_key_id(signer)));
        json_object_object_add(outer, "share_id",
                               json_object_new_string(member_str(
                                   doc, "share_id", FIXED_SHARE_ID)));
        json_object_object_add(outer, "expires_at",
                               json_object_new_int64(member_int(
                                   doc, "expires_at", FIXED_EXPIRES)));
        json_object_object_add(outer, "sealed", json_object_new_string(b64));
        txt = strdup(json_object_to_json_string_ext(
            outer, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE));
        if (!txt)
                abort();
        *out_len = strlen(txt);
        json_object_put(outer);
        free(m);
        free(sealed);
        free(b64);
        return txt;
}

static int open_env(const char *env, size_t len, kb_envelope_fields_t *f,
                    char **token, size_t *token_len)
{
        kb_envelope_header_t hdr;

        return kb_envelope_open(env, len, &vk.opener, &hdr, f, token,
                                token_len);
}

/* seal(open(x)) opens to the same fields and token. */
static void reseal(const kb_envelope_fields_t *f, const char *token,
                   size_t token_len)
{
        const kb_key_t *signer =
            !strcmp(f->signer_key_id, kb_key_id(vk.issuer2)) ? vk.issuer2
                                                             : vk.issuer;
        kb_envelope_fields_t f2;
        char *env = NULL, *tok2 = NULL;
        size_t env_len = 0, tok2_len = 0;
        int r;

        r = kb_envelope_seal(f, token, token_len, signer, vk.recipient, &env,
                             &env_len);
        /* escaping may push a document that fit over the size limits */
        if (r == KB_ERR_TOO_LARGE)
                return;
        FUZZ_CHECK(r == KB_OK);
        r = open_env(env, env_len, &f2, &tok2, &tok2_len);
        FUZZ_CHECK(r == KB_OK);
        FUZZ_CHECK(memcmp(f, &f2, sizeof(f2)) == 0);
        FUZZ_CHECK(tok2_len == token_len && !memcmp(tok2, token, token_len));
        kb_envelope_token_free(tok2);
        free(env);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        kb_envelope_fields_t f;
        kb_envelope_header_t hdr;
        json_object *doc = NULL;
        const kb_key_t *signer;
        char *env, *token = NULL;
        size_t env_len, token_len = 0;
        int r;

        if (size > KB_ENVELOPE_MAX_INNER + 64)
                return 0;
        /* header values from the document itself when it has them, so that
         * open gets past "header equals its signed copy" */
        {
                json_tokener *tk = json_tokener_new();
                if (!tk)
                        abort();
                doc = json_tokener_parse_ex(tk, (const char *)data, (int)size);
                json_tokener_free(tk);
                if (doc && !json_object_is_type(doc, json_type_object)) {
                        json_object_put(doc);
                        doc = NULL;
                }
        }
        signer =
            !strcmp(member_str(doc, "signer_key_id", ""), kb_key_id(vk.issuer2))
                ? vk.issuer2
                : vk.issuer;
        env = build(signer, data, size, doc, &env_len);
        if (kb_envelope_peek(env, env_len, &hdr) != KB_OK) {
                /* the document's values are no header: use valid.json's */
                free(env);
                env = build(signer, data, size, NULL, &env_len);
        }

        r = open_env(env, env_len, &f, &token, &token_len);
        if (getenv("KB_FUZZ_DUMP"))
                fprintf(stderr, "open: %s\n", kb_err2name(r));
        /* authentic, so never an authentication failure unless the
         * document disagrees with its header or keys; never a key or
         * recipient problem (the header names ours) */
        FUZZ_CHECK(r == KB_OK || r == KB_ERR_MALFORMED || r == KB_ERR_AUTH ||
                   r == KB_ERR_EXPIRED || r == KB_ERR_TOO_LARGE ||
                   r == KB_ERR_NOT_FOR_US || r == KB_ERR_UNKNOWN_KEY);
        if (r == KB_OK) {
                vec_check_fields(&f);
                FUZZ_CHECK(token_len == strlen(token));
                FUZZ_CHECK(
                    !strcmp(f.share_id, member_str(doc, "share_id", "")));
                FUZZ_CHECK(!strcmp(f.issuer_application_id,
                                   signer == vk.issuer2 ? VEC_ISSUER2_APP
                                                        : VEC_ISSUER_APP));
                reseal(&f, token, token_len);
                kb_envelope_token_free(token);
        } else {
                FUZZ_CHECK(token == NULL && vec_all_zero(&f, sizeof(f)));
        }
        json_object_put(doc);
        free(env);
        return 0;
}
