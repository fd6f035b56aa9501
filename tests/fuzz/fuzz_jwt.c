/* fuzz_jwt.c -- share tokens: kb_jwt_decode_unverified() (the importer
 * reads a token's iat) and kb_jwt_exp_unverified() (the issuer its exp) and
 * kb_jwt_hs256_verify() (the sandbox checks the tokens it minted) on untrusted
 * token bytes */
/* fuzz-options: -max_len=9000 */
#include "fuzz.h"
#include "json.h"
#include "jwt.h"

static const unsigned char key[32] = "fuzz-share-token-hmac-key-32-byt";

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
        (void)argc;
        (void)argv;
        fuzz_init(0);
        return 0;
}

/* Signing what was decoded gives a token that verifies to the same claims.
 */
static void resign(json_object *claims)
{
        json_object *back = NULL, *peek = NULL;
        char *tok = NULL;

        FUZZ_CHECK(kb_jwt_hs256_sign(claims, key, sizeof(key), &tok) == KB_OK);
        FUZZ_CHECK(!strncmp(tok, "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.", 37));
        if (strlen(tok) > KB_JWT_MAX_TOKEN) {
                FUZZ_CHECK(kb_jwt_hs256_verify(tok, strlen(tok), key,
                                               sizeof(key),
                                               &back) == KB_ERR_TOO_LARGE);
                free(tok);
                return;
        }
        FUZZ_CHECK(kb_jwt_hs256_verify(tok, strlen(tok), key, sizeof(key),
                                       &back) == KB_OK);
        FUZZ_CHECK(json_object_equal(back, claims));
        FUZZ_CHECK(kb_jwt_decode_unverified(tok, strlen(tok), &peek) == KB_OK);
        FUZZ_CHECK(json_object_equal(peek, claims));
        json_object_put(peek);
        /* one byte less of signature is a wrong signature, never a crash */
        FUZZ_CHECK(kb_jwt_hs256_verify(tok, strlen(tok) - 1, key, sizeof(key),
                                       &peek) != KB_OK &&
                   peek == NULL);
        json_object_put(back);
        free(tok);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        json_object *claims = (json_object *)1, *vclaims = (json_object *)1;
        char *tok;
        int rd, rv;

        /* exactly @p size bytes: the API takes a length, no NUL */
        tok = malloc(size ? size : 1);
        if (!tok)
                abort();
        if (size)
                memcpy(tok, data, size);
        rd = kb_jwt_decode_unverified(tok, size, &claims);
        rv = kb_jwt_hs256_verify(tok, size, key, sizeof(key), &vclaims);
        FUZZ_CHECK(rd == KB_OK || rd == KB_ERR_MALFORMED ||
                   rd == KB_ERR_TOO_LARGE);
        FUZZ_CHECK(rv == KB_OK || rv == KB_ERR_MALFORMED ||
                   rv == KB_ERR_TOO_LARGE || rv == KB_ERR_AUTH);
        FUZZ_CHECK((rd == KB_OK) == (claims != NULL));
        FUZZ_CHECK((rv == KB_OK) == (vclaims != NULL));
        /* the shape checks are the same: verify fails on shape exactly when
         * decode does */
        FUZZ_CHECK((rd == KB_ERR_MALFORMED) == (rv == KB_ERR_MALFORMED) ||
                   rv == KB_ERR_AUTH);
        FUZZ_CHECK((rd == KB_ERR_TOO_LARGE) == (rv == KB_ERR_TOO_LARGE));
        if (rv == KB_OK) {
                FUZZ_CHECK(rd == KB_OK);
                FUZZ_CHECK(json_object_equal(claims, vclaims));
        }
        /* the issuer's exp, read from views: what the tree said */
        {
                int64_t want = 0, got = 1;
                int rw = rd, rg = kb_jwt_exp_unverified(tok, size, &got);
                if (rw == KB_OK && kb_json_get_i64(claims, "exp", &want)) {
                        rw = KB_ERR_MALFORMED;
                        want = 0;
                }
                FUZZ_CHECK(rg == rw && got == want);
        }
        if (rd == KB_OK) {
                FUZZ_CHECK(json_object_is_type(claims, json_type_object));
                resign(claims);
        }
        json_object_put(claims);
        json_object_put(vclaims);
        free(tok);
        return 0;
}
