/* test_jwt.c -- HS256 JWT: known answers, tampering, header rules, limits */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <sodium.h>

#include "json.h"
#include "jwt.h"
#include "util.h"

static const unsigned char key[] = "sandbox-vendor-secret-0001";
#define KEYLEN (sizeof(key) - 1)

/*
 * Known answer, generated once with Python 3 stdlib:
 *   b64 = lambda b: base64.urlsafe_b64encode(b).rstrip(b"=").decode()
 *   h = b64(json.dumps({"alg":"HS256","typ":"JWT"},
 * separators=(",",":")).encode()) p = b64(json.dumps(claims,
 * separators=(",",":")).encode()) s = b64(hmac.new(key, (h+"."+p).encode(),
 * hashlib.sha256).digest())
 */
static const char kat_token[] =
    "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9."
    "eyJzZXNzaW9uX2lkIjoiNWYwYzZiMWUtOGE0My00YzJlLTlkN2EtM2IxZjJlNGQ1YzZh"
    "Iiwic2Vzc2lvbl9raW5kIjoidXNlciIsImZyb21fYXBwbGljYXRpb25faWQiOiIwYjdl"
    "M2M1Mi0xZDRmLTRhOGItOWU2Yy0yZjVhN2Q5YzFlM2IiLCJmb3JfYXBwbGljYXRpb25f"
    "aWQiOiJjNGQyZTZmOC0zYTViLTRjN2QtOGU5Zi0xYTJiM2M0ZDVlNmYiLCJpYXQiOjE3"
    "OTUzMTI4MDAsImV4cCI6MTc5NTMxNjQwMH0."
    "-jdLIpoDRWZHjNRyqQIjyiNhUX2eEed-SdDfkamchgE";

/* The vendor's own header style ({"alg":"HS256"}, no typ), claims
 * {"session_id":"x","note":"Łódź/é"} with raw UTF-8; same key. */
static const char kat_vendor_style[] =
    "eyJhbGciOiJIUzI1NiJ9."
    "eyJzZXNzaW9uX2lkIjoieCIsIm5vdGUiOiLFgcOzZMW6L8OpIn0."
    "X0xLtEztGIikaq2l6GERvYnDeCT54perYSBd2r66QI8";

static json_object *kat_claims(void)
{
        json_object *c = json_object_new_object();

        assert_non_null(c);
        assert_int_equal(
            kb_json_add_str(c, "session_id",
                            "5f0c6b1e-8a43-4c2e-9d7a-3b1f2e4d5c6a"),
            0);
        assert_int_equal(kb_json_add_str(c, "session_kind", "user"), 0);
        assert_int_equal(
            kb_json_add_str(c, "from_application_id",
                            "0b7e3c52-1d4f-4a8b-9e6c-2f5a7d9c1e3b"),
            0);
        assert_int_equal(
            kb_json_add_str(c, "for_application_id",
                            "c4d2e6f8-3a5b-4c7d-8e9f-1a2b3c4d5e6f"),
            0);
        assert_int_equal(kb_json_add_i64(c, "iat", 1795312800), 0);
        assert_int_equal(kb_json_add_i64(c, "exp", 1795316400), 0);
        return c;
}

static int verify_str(const char *tok, json_object **claims)
{
        return kb_jwt_hs256_verify(tok, strlen(tok), key, KEYLEN, claims);
}

/* Builds a token from arbitrary header/claims text with a correct HMAC, so
 * a rejection is provably due to the content, not the signature. */
static char *forge(const char *header, const char *claims)
{
        static char buf[4096];
        char *p = buf;
        unsigned char mac[32];
        unsigned int maclen = 0;

        sodium_bin2base64(p, sizeof(buf), (const unsigned char *)header,
                          strlen(header),
                          sodium_base64_VARIANT_URLSAFE_NO_PADDING);
        p += strlen(p);
        *p++ = '.';
        sodium_bin2base64(p, sizeof(buf) - (size_t)(p - buf),
                          (const unsigned char *)claims, strlen(claims),
                          sodium_base64_VARIANT_URLSAFE_NO_PADDING);
        p += strlen(p);
        assert_non_null(HMAC(EVP_sha256(), key, (int)KEYLEN,
                             (const unsigned char *)buf, (size_t)(p - buf), mac,
                             &maclen));
        assert_int_equal(maclen, 32);
        *p++ = '.';
        sodium_bin2base64(p, sizeof(buf) - (size_t)(p - buf), mac, maclen,
                          sodium_base64_VARIANT_URLSAFE_NO_PADDING);
        return buf;
}

static void test_known_answer(void **state)
{
        json_object *c = kat_claims(), *got = NULL;
        char *tok = NULL;
        int64_t v;

        (void)state;
        assert_int_equal(kb_jwt_hs256_sign(c, key, KEYLEN, &tok), KB_OK);
        assert_string_equal(tok, kat_token);
        free(tok);
        json_object_put(c);

        assert_int_equal(verify_str(kat_token, &got), KB_OK);
        assert_non_null(got);
        assert_string_equal(kb_json_get_str(got, "session_id"),
                            "5f0c6b1e-8a43-4c2e-9d7a-3b1f2e4d5c6a");
        assert_string_equal(kb_json_get_str(got, "session_kind"), "user");
        assert_int_equal(kb_json_get_i64(got, "exp", &v), 0);
        assert_int_equal(v, 1795316400);
        json_object_put(got);

        assert_int_equal(verify_str(kat_vendor_style, &got), KB_OK);
        assert_string_equal(kb_json_get_str(got, "note"), "\xc5\x81\xc3\xb3"
                                                          "d\xc5\xba/\xc3\xa9");
        json_object_put(got);
}

static void test_roundtrip(void **state)
{
        json_object *c = json_object_new_object(), *got = NULL;
        char *tok = NULL;
        size_t len;

        (void)state;
        kb_json_add_str(c, "url", "https://sandbox.invalid/a/b");
        kb_json_add_str(c, "name", "Zo\xc3\xab \"quoted\"\n");
        kb_json_add_i64(c, "n", -42);
        assert_int_equal(kb_jwt_hs256_sign(c, key, KEYLEN, &tok), KB_OK);
        len = strlen(tok);
        assert_int_equal(kb_jwt_hs256_verify(tok, len, key, KEYLEN, &got),
                         KB_OK);
        assert_string_equal(kb_json_get_str(got, "name"),
                            "Zo\xc3\xab \"quoted\"\n");
        assert_string_equal(kb_json_get_str(got, "url"),
                            "https://sandbox.invalid/a/b");
        json_object_put(got);
        /* the length argument is honoured: a trailing byte is not part of
         * the token, a shorter length is a different (broken) token */
        assert_int_not_equal(
            kb_jwt_hs256_verify(tok, len - 1, key, KEYLEN, &got), KB_OK);
        assert_null(got);
        /* wrong key */
        assert_int_equal(kb_jwt_hs256_verify(
                             tok, len, (const unsigned char *)"other", 5, &got),
                         KB_ERR_AUTH);
        assert_null(got);
        free(tok);
        json_object_put(c);
}

static void test_tampered(void **state)
{
        char tok[sizeof(kat_token)];
        json_object *got = NULL;
        char *dot1, *dot2;

        (void)state;
        /* payload: one character changed (still valid base64url) */
        memcpy(tok, kat_token, sizeof(tok));
        dot1 = strchr(tok, '.');
        dot2 = strchr(dot1 + 1, '.');
        dot1[10] = dot1[10] == 'A' ? 'B' : 'A';
        assert_int_equal(verify_str(tok, &got), KB_ERR_AUTH);
        assert_null(got);
        /* signature: first character changed */
        memcpy(tok, kat_token, sizeof(tok));
        dot2[1] = dot2[1] == 'A' ? 'B' : 'A';
        assert_int_equal(verify_str(tok, &got), KB_ERR_AUTH);
        /* header swapped for the vendor style header: other signing input */
        {
                char swapped[sizeof(kat_token) + 8];
                snprintf(swapped, sizeof(swapped), "eyJhbGciOiJIUzI1NiJ9%s",
                         strchr(kat_token, '.'));
                assert_int_equal(verify_str(swapped, &got), KB_ERR_AUTH);
        }
        /* signature of another token */
        {
                char mixed[sizeof(kat_token) + 64];
                size_t hp = (size_t)(strrchr(kat_token, '.') - kat_token);
                snprintf(mixed, sizeof(mixed), "%.*s%s", (int)hp, kat_token,
                         strrchr(kat_vendor_style, '.'));
                assert_int_equal(verify_str(mixed, &got), KB_ERR_AUTH);
        }
        assert_null(got);
}

static void test_truncated(void **state)
{
        size_t len = strlen(kat_token), i;
        json_object *got = NULL;
        char sigless[sizeof(kat_token)];

        (void)state;
        /* every prefix fails, with MALFORMED or AUTH, never OK */
        for (i = 0; i < len; i++) {
                int rc = kb_jwt_hs256_verify(kat_token, i, key, KEYLEN, &got);
                assert_true(rc == KB_ERR_MALFORMED || rc == KB_ERR_AUTH);
                assert_null(got);
        }
        /* no signature segment, empty signature, short signature */
        i = (size_t)(strrchr(kat_token, '.') - kat_token);
        assert_int_equal(kb_jwt_hs256_verify(kat_token, i, key, KEYLEN, &got),
                         KB_ERR_MALFORMED);
        assert_int_equal(
            kb_jwt_hs256_verify(kat_token, i + 1, key, KEYLEN, &got),
            KB_ERR_AUTH);
        memcpy(sigless, kat_token, i + 1);
        memcpy(sigless + i + 1, "AAAA", 5); /* 3-byte signature */
        assert_int_equal(verify_str(sigless, &got), KB_ERR_AUTH);
        assert_null(got);
}

static void expect(const char *header, const char *claims, int want)
{
        json_object *got = NULL;
        int rc = verify_str(forge(header, claims), &got);

        if (rc != want)
                fail_msg("header %s claims %s: got %d want %d", header, claims,
                         rc, want);
        if (rc == KB_OK)
                json_object_put(got);
        else
                assert_null(got);
}

static void test_header_rules(void **state)
{
        const char *c = "{\"session_id\":\"x\"}";
        json_object *got = NULL;
        char none_tok[512];

        (void)state;
        /* the forger itself is right */
        expect("{\"alg\":\"HS256\",\"typ\":\"JWT\"}", c, KB_OK);
        expect("{\"typ\":\"jwt\",\"alg\":\"HS256\",\"kid\":\"k1\"}", c, KB_OK);
        /* other algorithms, even with a correct HMAC */
        expect("{\"alg\":\"none\"}", c, KB_ERR_AUTH);
        expect("{\"alg\":\"HS512\",\"typ\":\"JWT\"}", c, KB_ERR_AUTH);
        expect("{\"alg\":\"hs256\"}", c, KB_ERR_AUTH);
        expect("{\"alg\":\"HS256\\u0000\"}", c, KB_ERR_AUTH);
        expect("{\"alg\":\"RS256\"}", c, KB_ERR_AUTH);
        /* shape */
        expect("{\"typ\":\"JWT\"}", c, KB_ERR_MALFORMED);
        expect("{\"alg\":null}", c, KB_ERR_MALFORMED);
        expect("{\"alg\":256}", c, KB_ERR_MALFORMED);
        expect("{\"alg\":\"HS256\",\"alg\":\"HS256\"}", c, KB_ERR_MALFORMED);
        expect("{\"alg\":\"none\",\"alg\":\"HS256\"}", c, KB_ERR_MALFORMED);
        expect("{\"alg\":\"HS256\",\"crit\":[\"exp\"]}", c, KB_ERR_MALFORMED);
        expect("{\"alg\":\"HS256\",\"typ\":\"JOSE\"}", c, KB_ERR_MALFORMED);
        expect("{\"alg\":\"HS256\",\"typ\":1}", c, KB_ERR_MALFORMED);
        expect("[\"HS256\"]", c, KB_ERR_MALFORMED);
        expect("{\"alg\":\"HS256\"} ", c, KB_OK); /* JSON whitespace is ok */
        expect("{\"alg\":\"HS256\"}x", c, KB_ERR_MALFORMED);
        expect("{\"alg\":'HS256'}", c, KB_ERR_MALFORMED);
        /* claims: signed, but not a strict JSON object */
        expect("{\"alg\":\"HS256\"}", "[1]", KB_ERR_MALFORMED);
        expect("{\"alg\":\"HS256\"}", "{\"a\":1,\"a\":2}", KB_ERR_MALFORMED);
        expect("{\"alg\":\"HS256\"}", "{\"a\":1", KB_ERR_MALFORMED);
        expect("{\"alg\":\"HS256\"}", "{\"a\":\"\xff\"}", KB_ERR_MALFORMED);
        /* the classic unsigned token */
        snprintf(none_tok, sizeof(none_tok), "eyJhbGciOiJub25lIn0.%s.",
                 "eyJzZXNzaW9uX2lkIjoieCJ9");
        assert_int_equal(verify_str(none_tok, &got), KB_ERR_AUTH);
        assert_null(got);
}

static void test_encoding(void **state)
{
        char buf[sizeof(kat_token) + 16];
        json_object *got = NULL;
        size_t hp = (size_t)(strchr(kat_token, '.') - kat_token);

        (void)state;
        /* padding, whitespace, standard-alphabet characters, extra segment */
        snprintf(buf, sizeof(buf), "%s=", kat_token);
        assert_int_equal(verify_str(buf, &got), KB_ERR_MALFORMED);
        snprintf(buf, sizeof(buf), "%.*s %s", (int)hp, kat_token,
                 kat_token + hp);
        assert_int_equal(verify_str(buf, &got), KB_ERR_MALFORMED);
        snprintf(buf, sizeof(buf), "%s", kat_token);
        *strrchr(buf, '-') = '+';
        assert_int_equal(verify_str(buf, &got), KB_ERR_MALFORMED);
        snprintf(buf, sizeof(buf), "%s.e30", kat_token);
        assert_int_equal(verify_str(buf, &got), KB_ERR_MALFORMED);
        /* non-canonical trailing bits in the signature's last character */
        snprintf(buf, sizeof(buf), "%s", kat_token);
        assert_int_equal(buf[strlen(buf) - 1], 'E');
        buf[strlen(buf) - 1] = 'F';
        assert_int_equal(verify_str(buf, &got), KB_ERR_MALFORMED);
        /* embedded NUL within the given length */
        memcpy(buf, kat_token, sizeof(kat_token));
        buf[5] = '\0';
        assert_int_equal(
            kb_jwt_hs256_verify(buf, strlen(kat_token), key, KEYLEN, &got),
            KB_ERR_MALFORMED);
        assert_int_equal(verify_str("", &got), KB_ERR_MALFORMED);
        assert_int_equal(verify_str("..", &got), KB_ERR_MALFORMED);
        assert_int_equal(verify_str("a.b.c", &got), KB_ERR_MALFORMED);
        assert_null(got);
}

static void test_limits(void **state)
{
        char *big = malloc(KB_JWT_MAX_TOKEN + 2), *tok = NULL;
        json_object *got = NULL, *c = json_object_new_object();
        size_t pad;

        (void)state;
        assert_non_null(big);
        memset(big, 'a', KB_JWT_MAX_TOKEN + 1);
        big[KB_JWT_MAX_TOKEN + 1] = '\0';
        assert_int_equal(
            kb_jwt_hs256_verify(big, KB_JWT_MAX_TOKEN + 1, key, KEYLEN, &got),
            KB_ERR_TOO_LARGE);
        assert_int_equal(
            kb_jwt_decode_unverified(big, KB_JWT_MAX_TOKEN + 1, &got),
            KB_ERR_TOO_LARGE);
        /* the largest token that fits still verifies */
        for (pad = 5900; pad < 6200; pad++) {
                memset(big, 'x', pad);
                big[pad] = '\0';
                json_object_object_add(c, "pad", json_object_new_string(big));
                free(tok);
                tok = NULL;
                assert_int_equal(kb_jwt_hs256_sign(c, key, KEYLEN, &tok),
                                 KB_OK);
                if (strlen(tok) >= KB_JWT_MAX_TOKEN - 2)
                        break;
        }
        assert_true(strlen(tok) <= KB_JWT_MAX_TOKEN);
        assert_true(strlen(tok) >= KB_JWT_MAX_TOKEN - 2);
        assert_int_equal(verify_str(tok, &got), KB_OK);
        json_object_put(got);
        free(tok);
        free(big);
        json_object_put(c);
}

static void test_unverified(void **state)
{
        json_object *got = NULL;
        char none_tok[128];

        (void)state;
        assert_int_equal(
            kb_jwt_decode_unverified(kat_token, strlen(kat_token), &got),
            KB_OK);
        assert_string_equal(kb_json_get_str(got, "for_application_id"),
                            "c4d2e6f8-3a5b-4c7d-8e9f-1a2b3c4d5e6f");
        json_object_put(got);
        /* no crypto: an unsigned token decodes (hints only) */
        snprintf(none_tok, sizeof(none_tok), "eyJhbGciOiJub25lIn0.%s.",
                 "eyJzZXNzaW9uX2lkIjoieCJ9");
        assert_int_equal(
            kb_jwt_decode_unverified(none_tok, strlen(none_tok), &got), KB_OK);
        assert_string_equal(kb_json_get_str(got, "session_id"), "x");
        json_object_put(got);
        assert_int_equal(kb_jwt_decode_unverified("abc", 3, &got),
                         KB_ERR_MALFORMED);
        assert_int_equal(kb_jwt_decode_unverified("e30.W10.", 8, &got),
                         KB_ERR_MALFORMED); /* {} header, [] claims */
        assert_null(got);
}

/* kb_jwt_exp_unverified() answers what kb_jwt_decode_unverified() and
 * kb_json_get_i64() answered together. */
static void check_exp_same(const char *tok, size_t len)
{
        json_object *claims = NULL;
        int64_t want = 0, got = 99;
        int rw = kb_jwt_decode_unverified(tok, len, &claims), rg;

        if (rw == KB_OK && kb_json_get_i64(claims, "exp", &want) == -1) {
                rw = KB_ERR_MALFORMED;
                want = 0;
        }
        json_object_put(claims);
        rg = kb_jwt_exp_unverified(tok, len, &got);
        if (rg != rw || got != want)
                fail_msg("<%.*s>: view %d exp %lld, tree %d exp %lld",
                         (int)(len > 200 ? 200 : len), tok, rg, (long long)got,
                         rw, (long long)want);
}

static void test_exp_unverified(void **state)
{
        static const char *const headers[] = {
                "{\"alg\":\"HS256\",\"typ\":\"JWT\"}",
                "{\"alg\":\"none\"}",
                "{\"typ\":\"jwt\",\"alg\":\"HS256\",\"kid\":\"k1\"}",
                "{\"alg\":\"HS256\",\"typ\":\"J\\u0057T\"}",
                "{\"alg\":\"HS256\",\"typ\":\"JW\\u0000\"}",
                "{\"alg\":\"HS256\",\"typ\":\"JWTX\"}",
                "{\"alg\":\"HS256\",\"typ\":null}",
                "{\"typ\":\"JWT\"}",
                "{\"alg\":null}",
                "{\"alg\":256}",
                "{\"alg\":\"HS256\",\"alg\":\"HS256\"}",
                "{\"alg\":\"HS256\",\"crit\":[\"exp\"]}",
                "{\"alg\":\"HS256\",\"crit\":null}",
                "{\"alg\":\"HS256\",\"cr\\u0069t\":1}",
                "{\"alg\":\"HS256\",\"typ\":1}",
                "[\"HS256\"]",
                "null",
                "{\"alg\":\"HS256\"} ",
                "{\"alg\":\"HS256\"}x",
        };
        static const char *const exps[] = {
                "1795316400",
                "0",
                "-1",
                "1.5",
                "1e9",
                "1E9",
                "1795316400.0",
                "\"123\"",
                "null",
                "true",
                "[1]",
                "{\"exp\":1}",
                "9223372036854775807",
                "9223372036854775808",
                "-9223372036854775807",
                "-9223372036854775808",
                "-9223372036854775809",
                "18446744073709551615",
                "18446744073709551616",
                "99999999999999999999999999999999",
                "-0",
        };
        /* around the value: before, after */
        static const char *const shapes[][2] = {
                { "{\"exp\":", "}" },
                { "{\"iat\":1,\"exp\":", ",\"session_id\":\"x\"}" },
                { "{\"e\\u0078p\":", "}" },
                { "{\"exp\\u0000x\":", "}" },
                { "{\"exp\":", ",\"exp\":1}" },
                { "{\"expx\":", "}" },
                { "[", "]" },
                { "{\"exp\":", "" },
        };
        char claims[256];
        size_t h, e, sh;

        (void)state;
        check_exp_same(kat_token, strlen(kat_token));
        check_exp_same(kat_vendor_style, strlen(kat_vendor_style));
        check_exp_same("abc", 3);
        check_exp_same("e30.W10.", 8);
        check_exp_same("e30.e30.", 8);
        check_exp_same("", 0);
        for (h = 0; h < KB_ARRAY_SIZE(headers); h++)
                for (e = 0; e < KB_ARRAY_SIZE(exps); e++)
                        for (sh = 0; sh < KB_ARRAY_SIZE(shapes); sh++) {
                                const char *t;
                                snprintf(claims, sizeof(claims), "%s%s%s",
                                         shapes[sh][0], exps[e], shapes[sh][1]);
                                t = forge(headers[h], claims);
                                check_exp_same(t, strlen(t));
                        }
        {
                int64_t x = 5;
                assert_int_equal(kb_jwt_exp_unverified(NULL, 0, &x),
                                 KB_ERR_INVALID_ARG);
                assert_int_equal(x, 0);
                assert_int_equal(kb_jwt_exp_unverified(kat_token, 3, NULL),
                                 KB_ERR_INVALID_ARG);
                assert_int_equal(
                    kb_jwt_exp_unverified(kat_token, strlen(kat_token), &x),
                    KB_OK);
                assert_int_equal(x, 1795316400);
        }
}

static void test_args(void **state)
{
        json_object *arr = json_object_new_array(), *obj;
        char *tok = (char *)"untouched";
        json_object *got = (json_object *)&tok;

        (void)state;
        obj = json_object_new_object();
        assert_int_equal(kb_jwt_hs256_sign(arr, key, KEYLEN, &tok),
                         KB_ERR_INVALID_ARG);
        assert_null(tok);
        assert_int_equal(kb_jwt_hs256_sign(obj, key, 0, &tok),
                         KB_ERR_INVALID_ARG);
        assert_int_equal(kb_jwt_hs256_sign(NULL, key, KEYLEN, &tok),
                         KB_ERR_INVALID_ARG);
        assert_int_equal(
            kb_jwt_hs256_verify(kat_token, strlen(kat_token), key, 0, &got),
            KB_ERR_INVALID_ARG);
        assert_null(got);
        assert_int_equal(kb_jwt_hs256_verify(NULL, 0, key, KEYLEN, &got),
                         KB_ERR_INVALID_ARG);
        assert_int_equal(kb_jwt_hs256_sign(obj, key, KEYLEN, &tok), KB_OK);
        /* Python: same recipe as the known answer, claims {} */
        assert_string_equal(tok, "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.e30."
                                 "YrkWAkvn6ilekRrGhT_jjPos6dht_BwZGfgooZMRHp4");
        free(tok);
        json_object_put(arr);
        json_object_put(obj);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_known_answer),
                cmocka_unit_test(test_roundtrip),
                cmocka_unit_test(test_tampered),
                cmocka_unit_test(test_truncated),
                cmocka_unit_test(test_header_rules),
                cmocka_unit_test(test_encoding),
                cmocka_unit_test(test_limits),
                cmocka_unit_test(test_unverified),
                cmocka_unit_test(test_exp_unverified),
                cmocka_unit_test(test_args),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
