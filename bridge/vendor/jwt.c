/* jwt.c -- HS256 JSON Web Tokens (vendor share tokens): sign, verify, peek */
#include "jwt.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <sodium.h>

#include "json.h"
#include "jview.h"
#include "util.h"

#define JWT_HEADER     "{\"alg\":\"HS256\",\"typ\":\"JWT\"}"
#define JWT_SIG_BYTES  32U
#define JWT_JSON_DEPTH 32

/* A token cut into its three segments, each decoded. */
typedef struct {
        const char *seg[3];
        size_t seglen[3];
        unsigned char *raw[3];
        size_t rawlen[3];
} jwt_parts_t;

static void parts_free(jwt_parts_t *p)
{
        int i;

        for (i = 0; i < 3; i++)
                free(p->raw[i]);
}

static int b64url_append(kb_buf_t *b, const unsigned char *bin, size_t len)
{
        size_t enc = sodium_base64_encoded_len(
            len, sodium_base64_VARIANT_URLSAFE_NO_PADDING);

        if (kb_buf_reserve(b, enc) == -1)
                return KB_ERR_NOMEM;
        sodium_bin2base64(b->data + b->len, enc, bin, len,
                          sodium_base64_VARIANT_URLSAFE_NO_PADDING);
        b->len += enc - 1; /* enc counts the NUL */
        return KB_OK;
}

/* Strict base64url (no padding, no whitespace, canonical trailing bits).
 * The result is NUL-terminated for the JSON parser. */
static int b64url_decode(const char *s, size_t len, unsigned char **out,
                         size_t *out_len)
{
        size_t max = len / 4 * 3 + 3, n = 0;
        const char *end = NULL;
        unsigned char *bin;

        *out = NULL;
        bin = malloc(max + 1);
        if (!bin)
                return KB_ERR_NOMEM;
        if (sodium_base642bin(bin, max, s, len, NULL, &n, &end,
                              sodium_base64_VARIANT_URLSAFE_NO_PADDING) != 0 ||
            end != s + len) {
                free(bin);
                return KB_ERR_MALFORMED;
        }
        bin[n] = '\0';
        *out = bin;
        *out_len = n;
        return KB_OK;
}

/* Splits and base64-decodes. An empty signature segment is well-formed here
 * (an unsecured JWS); verify refuses it as a wrong signature. */
static int split_decode(const char *token, size_t len, jwt_parts_t *p)
{
        const char *d1, *d2;
        int i, rc;

        memset(p, 0, sizeof(*p));
        if (len > KB_JWT_MAX_TOKEN)
                return KB_ERR_TOO_LARGE;
        if (len == 0 || memchr(token, '\0', len))
                return KB_ERR_MALFORMED;
        d1 = memchr(token, '.', len);
        if (!d1)
                return KB_ERR_MALFORMED;
        d2 = memchr(d1 + 1, '.', len - (size_t)(d1 + 1 - token));
        if (!d2 || memchr(d2 + 1, '.', len - (size_t)(d2 + 1 - token)))
                return KB_ERR_MALFORMED;
        p->seg[0] = token;
        p->seglen[0] = (size_t)(d1 - token);
        p->seg[1] = d1 + 1;
        p->seglen[1] = (size_t)(d2 - d1 - 1);
        p->seg[2] = d2 + 1;
        p->seglen[2] = len - (size_t)(d2 + 1 - token);
        if (p->seglen[0] == 0 || p->seglen[1] == 0)
                return KB_ERR_MALFORMED;
        for (i = 0; i < 3; i++) {
                rc = b64url_decode(p->seg[i], p->seglen[i], &p->raw[i],
                                   &p->rawlen[i]);
                if (rc != KB_OK)
                        return rc;
        }
        return KB_OK;
}

static int parse_object(const unsigned char *raw, size_t len, json_object **out)
{
        char err[128];
        json_object *o = kb_json_parse((const char *)raw, len, JWT_JSON_DEPTH,
                                       err, sizeof(err));

        if (!o)
                return KB_ERR_MALFORMED;
        if (!json_object_is_type(o, json_type_object)) {
                json_object_put(o);
                return KB_ERR_MALFORMED;
        }
        *out = o;
        return KB_OK;
}

/* Header shape; returns KB_OK and sets *alg_ok when alg is exactly HS256. */
static int check_header(const jwt_parts_t *p, int *alg_ok)
{
        json_object *hdr = NULL, *v;
        int rc;

        rc = parse_object(p->raw[0], p->rawlen[0], &hdr);
        if (rc != KB_OK)
                return rc;
        rc = KB_ERR_MALFORMED;
        v = kb_json_get(hdr, "alg");
        if (!v || !json_object_is_type(v, json_type_string))
                goto out;
        *alg_ok = strcmp(json_object_get_string(v), "HS256") == 0 &&
                  json_object_get_string_len(v) == 5;
        v = kb_json_get(hdr, "typ");
        if (v && (!json_object_is_type(v, json_type_string) ||
                  strcasecmp(json_object_get_string(v), "JWT") != 0 ||
                  json_object_get_string_len(v) != 3))
                goto out;
        /* RFC 7515 4.1.11: we understand no extension, so any crit fails */
        if (json_object_object_get_ex(hdr, "crit", NULL))
                goto out;
        rc = KB_OK;
out:
        json_object_put(hdr);
        return rc;
}

static int hmac_sha256(const unsigned char *key, size_t keylen, const void *msg,
                       size_t msglen, unsigned char mac[JWT_SIG_BYTES])
{
        unsigned int maclen = 0;

        if (!HMAC(EVP_sha256(), key, (int)keylen, msg, msglen, mac, &maclen) ||
            maclen != JWT_SIG_BYTES)
                return KB_ERR_CRYPTO;
        return KB_OK;
}

int kb_jwt_hs256_sign(json_object *claims, const unsigned char *key,
                      size_t keylen, char **out)
{
        kb_buf_t b = KB_BUF_INIT;
        unsigned char mac[JWT_SIG_BYTES];
        const char *json;
        size_t jlen = 0;
        int rc;

        if (out)
                *out = NULL;
        if (!claims || !key || keylen == 0 || keylen > INT32_MAX || !out ||
            !json_object_is_type(claims, json_type_object))
                return KB_ERR_INVALID_ARG;
        json = kb_json_str(claims, &jlen);
        if (!json)
                return KB_ERR_NOMEM;
        rc = b64url_append(&b, (const unsigned char *)JWT_HEADER,
                           sizeof(JWT_HEADER) - 1);
        if (rc == KB_OK && kb_buf_append(&b, ".", 1) == -1)
                rc = KB_ERR_NOMEM;
        if (rc == KB_OK)
                rc = b64url_append(&b, (const unsigned char *)json, jlen);
        if (rc == KB_OK)
                rc = hmac_sha256(key, keylen, b.data, b.len, mac);
        if (rc == KB_OK && kb_buf_append(&b, ".", 1) == -1)
                rc = KB_ERR_NOMEM;
        if (rc == KB_OK)
                rc = b64url_append(&b, mac, sizeof(mac));
        if (rc == KB_OK) {
                b.data[b.len] = '\0';
                *out = kb_buf_steal(&b, NULL);
                if (!*out)
                        rc = KB_ERR_NOMEM;
        }
        kb_buf_free(&b, 0);
        return rc;
}

int kb_jwt_hs256_verify(const char *token, size_t len, const unsigned char *key,
                        size_t keylen, json_object **claims)
{
        jwt_parts_t p;
        unsigned char mac[JWT_SIG_BYTES];
        int rc, alg_ok = 0;

        if (claims)
                *claims = NULL;
        if (!token || !key || keylen == 0 || keylen > INT32_MAX || !claims)
                return KB_ERR_INVALID_ARG;
        rc = split_decode(token, len, &p);
        if (rc != KB_OK)
                goto out;
        rc = check_header(&p, &alg_ok);
        if (rc != KB_OK)
                goto out;
        if (!alg_ok || p.rawlen[2] != JWT_SIG_BYTES) {
                rc = KB_ERR_AUTH;
                goto out;
        }
        /* signing input: the first two segments exactly as transmitted */
        rc =
            hmac_sha256(key, keylen, token, p.seglen[0] + 1 + p.seglen[1], mac);
        if (rc != KB_OK)
                goto out;
        if (CRYPTO_memcmp(mac, p.raw[2], JWT_SIG_BYTES) != 0) {
                rc = KB_ERR_AUTH;
                goto out;
        }
        rc = parse_object(p.raw[1], p.rawlen[1], claims);
out:
        parts_free(&p);
        return rc;
}

int kb_jwt_decode_unverified(const char *token, size_t len,
                             json_object **claims)
{
        jwt_parts_t p;
        int rc, alg_ok = 0;

        if (claims)
                *claims = NULL;
        if (!token || !claims)
                return KB_ERR_INVALID_ARG;
        rc = split_decode(token, len, &p);
        if (rc == KB_OK)
                rc = check_header(&p, &alg_ok);
        if (rc == KB_OK)
                rc = parse_object(p.raw[1], p.rawlen[1], claims);
        parts_free(&p);
        return rc;
}

/* check_header() on a view: "alg" a string, "typ" if there and not null
 * "JWT" in any case, no "crit". */
static int check_header_view(const kb_jview_t *hdr)
{
        kb_jval_t typ = kb_jview_get(hdr, "typ");
        char t[8];
        size_t tl;

        if (kb_jval_type(kb_jview_get(hdr, "alg")) != KB_JV_STRING)
                return KB_ERR_MALFORMED;
        /* a null "typ" is none, as kb_json_get() had it; a null "crit" is
         * one (json_object_object_get_ex()) */
        if (typ.p && kb_jval_type(typ) != KB_JV_NULL &&
            (kb_jval_str(typ, t, sizeof(t), &tl) == -1 || tl != 3 ||
             strcasecmp(t, "JWT") != 0))
                return KB_ERR_MALFORMED;
        if (kb_jview_get(hdr, "crit").p)
                return KB_ERR_MALFORMED;
        return KB_OK;
}

/* Reads "exp" as kb_json_get_i64() reads it from json-c's tree: a JSON
 * number without fraction or exponent that is an int64 other than
 * INT64_MIN. */
static int exp_of(const kb_jview_t *claims, int64_t *exp)
{
        kb_jval_t v = kb_jview_get(claims, "exp");
        char num[32];

        if (kb_jval_type(v) != KB_JV_NUMBER || v.len >= sizeof(num) ||
            memchr(v.p, '.', v.len) || memchr(v.p, 'e', v.len) ||
            memchr(v.p, 'E', v.len))
                return KB_ERR_MALFORMED;
        memcpy(num, v.p, v.len);
        num[v.len] = '\0';
        return kb_parse_i64(num, INT64_MIN + 1, INT64_MAX, exp) == 0
                   ? KB_OK
                   : KB_ERR_MALFORMED;
}

/* kb_jwt_decode_unverified() and kb_json_get_i64() in one, on views: the
 * issuer's per-token path builds no tree for the token's expiry. */
int kb_jwt_exp_unverified(const char *token, size_t len, int64_t *exp)
{
        jwt_parts_t p;
        kb_jview_t hdr, claims;
        int rc, views = 0;

        if (exp)
                *exp = 0;
        if (!token || !exp)
                return KB_ERR_INVALID_ARG;
        rc = split_decode(token, len, &p);
        if (rc == KB_OK) {
                rc = KB_ERR_MALFORMED;
                if (kb_jview_init(&hdr, (const char *)p.raw[0], p.rawlen[0],
                                  JWT_JSON_DEPTH, NULL, 0) == 0) {
                        views |= 1;
                        if (kb_jval_type(hdr.root) == KB_JV_OBJECT)
                                rc = check_header_view(&hdr);
                }
        }
        if (rc == KB_OK) {
                rc = KB_ERR_MALFORMED;
                if (kb_jview_init(&claims, (const char *)p.raw[1], p.rawlen[1],
                                  JWT_JSON_DEPTH, NULL, 0) == 0) {
                        views |= 2;
                        if (kb_jval_type(claims.root) == KB_JV_OBJECT)
                                rc = exp_of(&claims, exp);
                }
        }
        if (views & 1)
                kb_jview_clear(&hdr);
        if (views & 2)
                kb_jview_clear(&claims);
        parts_free(&p);
        if (rc != KB_OK)
                *exp = 0;
        return rc;
}
