/* test_issuer_path.c -- unit tests: the pieces of the issuer's per-token
 * path give the right answers, and what each costs (printed, never
 * asserted: the machine is shared) */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "issuer.h"
#include "json.h"
#include "jview.h"
#include "jwt.h"
#include "kb_envelope.h"
#include "kb_keys.h"
#include "kyc_bridge.h"
#include "util.h"
#include "vendor.h"

#define SID  "0b6f1f8e-2f59-4a43-9a1e-5d2b0c8a7e11"
#define APP  "7d1c5b9a-3e2f-4c6d-8a9b-0e1f2a3b4c5d"
#define APP2 "1e2d3c4b-5a69-4788-9a0b-1c2d3e4f5a6b"

/* Rounds per timing: enough to average out a timer tick, few enough for
 * a shared machine. KB_TEST_ROUNDS overrides. */
static long rounds(void)
{
        const char *s = getenv("KB_TEST_ROUNDS");
        int64_t v;

        if (s && kb_parse_i64(s, 1, 10000000, &v) == 0)
                return (long)v;
        return 20000;
}

/* A share token as the sandbox mints it (sandbox_api.c). */
static char *make_token(void)
{
        static const unsigned char key[32] = { 1, 2, 3, 4, 5, 6, 7, 8 };
        json_object *c = json_object_new_object();
        char *tok = NULL;

        assert_non_null(c);
        kb_json_add_str(c, "session_id", SID);
        kb_json_add_str(c, "session_kind", "user");
        kb_json_add_str(c, "from_application_id", APP2);
        kb_json_add_str(c, "for_application_id", APP);
        kb_json_add_i64(c, "iat", 1796000000);
        kb_json_add_i64(c, "exp", 1796003600);
        assert_int_equal(kb_jwt_hs256_sign(c, key, sizeof(key), &tok), KB_OK);
        json_object_put(c);
        return tok;
}

static void never_cb(const kb_vendor_result_t *res, void *opaque)
{
        (void)res;
        (void)opaque;
}

static const char req_txt[] =
    "{\"share_id\":\"share-000123\",\"session_id\":\"" SID
    "\",\"for_application_id\":\"" APP "\",\"ttl_in_seconds\":3600,"
    "\"vendor_data\":\"customer-42\"}";

static void test_costs(void **state)
{
        long n = rounds(), i;
        char *tok = make_token(), answer[2048], *env;
        size_t tl = strlen(tok), env_len, alen;
        kb_key_t *sign = kb_key_generate(KB_KEY_SIGN);
        kb_key_t *box = kb_key_generate(KB_KEY_BOX);
        kb_envelope_fields_t f;
        kb_share_req_t req;
        char err[256];
        int64_t t0, exp;
        double us_req, us_tree, us_view, us_jwt, us_jwt_view, us_seal, us_mint,
            us_digest;
        char dig[KB_DIGEST_STR_BYTES];

        (void)state;
        assert_non_null(sign);
        assert_non_null(box);
        alen =
            (size_t)snprintf(answer, sizeof(answer),
                             "{\"share_token\":\"%s\",\"for_application_id\":"
                             "\"" APP "\",\"session_kind\":\"user\"}",
                             tok);

        /* 1. the share request */
        t0 = kb_mono_us();
        for (i = 0; i < n; i++)
                assert_int_equal(kb_share_req_parse(req_txt,
                                                    sizeof(req_txt) - 1, &req,
                                                    err, sizeof(err)),
                                 KB_OK);
        us_req = (double)(kb_mono_us() - t0) / (double)n;
        assert_string_equal(req.share_id, "share-000123");

        /* 2. the vendor's share answer: a tree, or a view */
        t0 = kb_mono_us();
        for (i = 0; i < n; i++) {
                json_object *o =
                    kb_json_parse(answer, alen, 32, err, sizeof(err));
                assert_non_null(kb_json_get_str(o, "share_token"));
                assert_non_null(kb_json_get_str(o, "session_kind"));
                json_object_put(o);
        }
        us_tree = (double)(kb_mono_us() - t0) / (double)n;
        t0 = kb_mono_us();
        for (i = 0; i < n; i++) {
                kb_jview_t jv;
                char kind[16];
                assert_int_equal(
                    kb_jview_init(&jv, answer, alen, 32, err, sizeof(err)), 0);
                assert_int_equal(kb_jval_type(kb_jview_get(&jv, "share_token")),
                                 KB_JV_STRING);
                assert_int_equal(kb_jval_str(kb_jview_get(&jv, "session_kind"),
                                             kind, sizeof(kind), NULL),
                                 0);
                kb_jview_clear(&jv);
        }
        us_view = (double)(kb_mono_us() - t0) / (double)n;

        /* 3. the token's exp */
        t0 = kb_mono_us();
        for (i = 0; i < n; i++) {
                json_object *claims = NULL;
                assert_int_equal(kb_jwt_decode_unverified(tok, tl, &claims),
                                 KB_OK);
                assert_int_equal(kb_json_get_i64(claims, "exp", &exp), 0);
                json_object_put(claims);
        }
        us_jwt = (double)(kb_mono_us() - t0) / (double)n;
        assert_int_equal(exp, 1796003600);
        t0 = kb_mono_us();
        for (i = 0; i < n; i++) {
                exp = 0;
                assert_int_equal(kb_jwt_exp_unverified(tok, tl, &exp), KB_OK);
        }
        us_jwt_view = (double)(kb_mono_us() - t0) / (double)n;
        assert_int_equal(exp, 1796003600);

        /* 4. the seal */
        memset(&f, 0, sizeof(f));
        strcpy(f.issuer_application_id, APP2);
        strcpy(f.for_application_id, APP);
        strcpy(f.share_id, req.share_id);
        strcpy(f.source_session_id, SID);
        strcpy(f.vendor_data_hint, req.vendor_data);
        f.session_kind = KB_SESSION_USER;
        f.created_at = 1796000000;
        f.expires_at = exp;
        t0 = kb_mono_us();
        for (i = 0; i < n / 4; i++) {
                assert_int_equal(
                    kb_envelope_seal(&f, tok, tl, sign, box, &env, &env_len),
                    KB_OK);
                free(env);
        }
        us_seal = (double)(kb_mono_us() - t0) / (double)(n / 4);

        /* 5. the mint request (queued only: the client is never polled) */
        {
                kb_conf_t *conf = kb_conf_new();
                kb_vendor_t *v;
                char ve[256];
                assert_non_null(conf);
                setenv("KBT_COST_KEY", "k", 1);
                assert_int_equal(kb_conf_set(conf, "vendor.url",
                                             "http://127.0.0.1:9", "test", ve,
                                             sizeof(ve)),
                                 KB_OK);
                assert_int_equal(kb_conf_set(conf, "vendor.api_key",
                                             "env:KBT_COST_KEY", "test", ve,
                                             sizeof(ve)),
                                 KB_OK);
                v = kb_vendor_new(conf, NULL, ve, sizeof(ve));
                if (!v)
                        fail_msg("kb_vendor_new: %s", ve);
                t0 = kb_mono_us();
                for (i = 0; i < n; i++)
                        assert_int_equal(
                            kb_vendor_share(v, SID, APP, 3600, never_cb, NULL),
                            KB_OK);
                us_mint = (double)(kb_mono_us() - t0) / (double)n;
                kb_vendor_destroy(v);
                kb_conf_destroy(conf);
        }
        /* 6. the token's digest (for a debug line) */
        t0 = kb_mono_us();
        for (i = 0; i < n; i++)
                kb_digest_str(tok, tl, dig);
        us_digest = (double)(kb_mono_us() - t0) / (double)n;

        print_message("issuer path, us per token: mint request %.2f, "
                      "token digest %.2f\n",
                      us_mint, us_digest);
        print_message("issuer path, us per token: request %.2f, share answer "
                      "tree %.2f view %.2f, token exp tree %.2f view %.2f, "
                      "seal %.2f\n",
                      us_req, us_tree, us_view, us_jwt, us_jwt_view, us_seal);
        kb_key_destroy(sign);
        kb_key_destroy(box);
        free(tok);
}

/* ---- the share request: the view against the tree it replaced ---- */

/* kb_share_req_parse() as it was with a json-c tree (issuer.c before the
 * view): the reference the view's reading must equal. */
static int ref_req_parse(const void *buf, size_t len, kb_share_req_t *req,
                         char *errstr, size_t errstr_size)
{
        static const char *const known[] = {
                "share_id",       "session_id",  "for_application_id",
                "ttl_in_seconds", "vendor_data", NULL
        };
        json_object *o;
        const char *s;
        char jerr[128];
        int64_t ttl;
        int r = KB_ERR_MALFORMED;

        memset(req, 0, sizeof(*req));
        if (len > 65536) {
                kb_snprintf(errstr, errstr_size, "request over %d bytes",
                            65536);
                return KB_ERR_TOO_LARGE;
        }
        o = kb_json_parse(buf, len, 16, jerr, sizeof(jerr));
        if (!o) {
                kb_snprintf(errstr, errstr_size, "%s", jerr);
                return KB_ERR_MALFORMED;
        }
        if (!json_object_is_type(o, json_type_object)) {
                kb_snprintf(errstr, errstr_size, "request is not an object");
                goto out;
        }
        s = kb_json_get_str(o, "share_id");
        if (!s || !kb_envelope_id_valid(s, strlen(s))) {
                kb_snprintf(errstr, errstr_size,
                            "share_id: required string of 1-128 bytes of "
                            "UTF-8 without control characters");
                goto out;
        }
        kb_strlcpy(req->share_id, s, sizeof(req->share_id));
        {
                json_object_object_foreach(o, k, v)
                {
                        size_t i;
                        (void)v;
                        for (i = 0; known[i]; i++)
                                if (!strcmp(k, known[i]))
                                        break;
                        if (!known[i]) {
                                kb_snprintf(errstr, errstr_size,
                                            "unknown member in request");
                                goto out;
                        }
                }
        }
        s = kb_json_get_str(o, "session_id");
        if (!s || !kb_is_uuid(s)) {
                kb_snprintf(errstr, errstr_size,
                            "session_id: required UUID string");
                goto out;
        }
        kb_strlcpy(req->session_id, s, sizeof(req->session_id));
        s = kb_json_get_str(o, "for_application_id");
        if (!s || !kb_is_uuid(s)) {
                kb_snprintf(errstr, errstr_size,
                            "for_application_id: required UUID string");
                goto out;
        }
        kb_strlcpy(req->for_application_id, s, sizeof(req->for_application_id));
        if (kb_json_get(o, "ttl_in_seconds")) {
                if (kb_json_get_i64(o, "ttl_in_seconds", &ttl) || ttl < 60 ||
                    ttl > 86400) {
                        kb_snprintf(errstr, errstr_size,
                                    "ttl_in_seconds: integer from 60 to "
                                    "86400");
                        goto out;
                }
                req->ttl_in_seconds = (int)ttl;
        }
        if (kb_json_get(o, "vendor_data")) {
                s = kb_json_get_str(o, "vendor_data");
                if (!s || !kb_envelope_id_valid(s, strlen(s))) {
                        kb_snprintf(errstr, errstr_size,
                                    "vendor_data: string of 1-128 bytes of "
                                    "UTF-8 without control characters");
                        goto out;
                }
                kb_strlcpy(req->vendor_data, s, sizeof(req->vendor_data));
        }
        r = KB_OK;
out:
        json_object_put(o);
        return r;
}

/* xorshift64*: deterministic, KB_TEST_SEED replays another run */
static uint64_t rng_state = UINT64_C(0x69737375657221);

static uint32_t rng_below(uint32_t n)
{
        rng_state ^= rng_state >> 12;
        rng_state ^= rng_state << 25;
        rng_state ^= rng_state >> 27;
        return (uint32_t)((rng_state * UINT64_C(2685821657736338717)) >> 33) %
               n;
}

static void rng_seed(void)
{
        const char *s = getenv("KB_TEST_SEED");
        int64_t v;

        if (s && kb_parse_i64(s, 1, INT64_MAX, &v) == 0)
                rng_state = (uint64_t)v;
        print_message("random seed %llu (set KB_TEST_SEED to replay)\n",
                      (unsigned long long)rng_state);
}

static void check_req_same(const char *doc, size_t len)
{
        kb_share_req_t a, b;
        char ea[256], eb[256];
        int ra, rb;

        memset(ea, 'x', sizeof(ea));
        memset(eb, 'x', sizeof(eb));
        ea[255] = eb[255] = '\0';
        ra = kb_share_req_parse(doc, len, &a, ea, sizeof(ea));
        rb = ref_req_parse(doc, len, &b, eb, sizeof(eb));
        if (ra != rb || memcmp(&a, &b, sizeof(a)) ||
            (ra != KB_OK && strcmp(ea, eb)))
                fail_msg("<%.*s>: view %d \"%s\" share_id \"%s\", tree %d "
                         "\"%s\" share_id \"%s\"",
                         (int)len, doc, ra, ea, a.share_id, rb, eb, b.share_id);
}

/* Requests made of members and values that touch every check: the view's
 * answer -- code, reason, every field -- equals the tree's. */
static void test_request_as_tree(void **state)
{
        static const char *const keys[] = {
                "share_id",           "session_id",       "for_application_id",
                "ttl_in_seconds",     "vendor_data",      "extra",
                "share\\u005fid",     "share_id\\u0000x", "",
                "vendor_data\\u0000", "SHARE_ID",         "ttl_in_seconds ",
        };
        static const char *const vals[] = {
                "\"s-1\"",
                "\"" SID "\"",
                "\"" APP "\"",
                "\"0B6F1F8E-2F59-4A43-9A1E-5D2B0C8A7E11\"",
                "\"" SID "x\"",
                "\"\"",
                "\"a\\nb\"",
                "\"a\\u0000b\"",
                "\"a\\u007fb\"",
                "\"\xc3\xa9t\xc3\xa9\"",
                "\"\\u00e9\\ud83d\\ude00\"",
                "\"q\\\"b\\\\c\\/d\"",
                "\"tab\\there\"",
                "\"\x7f\"",
                "60",
                "59",
                "600",
                "86400",
                "86401",
                "600.0",
                "6e2",
                "6E2",
                "-0",
                "0",
                "-60",
                "99999999999999999999",
                "-9223372036854775808",
                "9223372036854775807",
                "18446744073709551615",
                "null",
                "true",
                "false",
                "[]",
                "{}",
                "[\"s\"]",
                "{\"a\":1}",
                "\"600\"",
                NULL, /* 128 and 129 byte strings go here */
                NULL,
        };
        const size_t nk = sizeof(keys) / sizeof(keys[0]);
        const size_t nv = sizeof(vals) / sizeof(vals[0]);
        static const char *const whole[] = {
                "",
                " ",
                "null",
                " null ",
                "[]",
                "42",
                "\"s\"",
                "{",
                "{}",
                "{\"share_id\":\"s\"}x",
                "\xff",
                "{\"share_id\":\"s\",\"share_id\":\"t\"}",
                "{\"share_id\":\"s\",\"share\\u005fid\":\"t\"}",
                "[[[[[[[[[[[[[[[[[[[[1]]]]]]]]]]]]]]]]]]]",
                "{\"share_id\":\"s\",\"vendor_data\":{\"a\":{\"b\":{\"c\":{"
                "\"d\":{"
                "\"e\":{\"f\":{\"g\":{\"h\":{\"i\":{\"j\":{\"k\":{\"l\":{\"m\":"
                "{"
                "\"n\":{\"o\":{}}}}}}}}}}}}}}}}}}",
                NULL,
        };
        char v128[140], v129[140], *doc;
        const char *vv[sizeof(vals) / sizeof(vals[0])];
        kb_buf_t b = KB_BUF_INIT;
        size_t i, m, n;
        int rounds_n = 20000, r;

        (void)state;
        rng_seed();
        memcpy(vv, vals, sizeof(vals));
        v128[0] = v129[0] = '"';
        memset(v128 + 1, 'a', 128);
        memcpy(v128 + 1 + 126, "\xc3\xa9", 2); /* multi-byte at the end */
        strcpy(v128 + 129, "\"");
        memset(v129 + 1, 'b', 129);
        strcpy(v129 + 130, "\"");
        vv[nv - 2] = v128;
        vv[nv - 1] = v129;
        for (i = 0; whole[i]; i++)
                check_req_same(whole[i], strlen(whole[i]));
        for (r = 0; r < rounds_n; r++) {
                kb_buf_reset(&b);
                kb_buf_puts(&b, "{");
                /* mostly the right members with mostly good values */
                n = 2 + rng_below(5);
                for (m = 0; m < n; m++) {
                        size_t k = rng_below(4) ? m % 5 : rng_below(nk);
                        size_t v;
                        if (k == 0 && rng_below(2))
                                v = 0;
                        else if ((k == 1 || k == 2) && rng_below(3))
                                v = k;
                        else if (k == 3 && rng_below(2))
                                v = 14 + rng_below(5);
                        else
                                v = rng_below(nv);
                        kb_buf_printf(&b, "%s\"%s\":%s", m ? "," : "", keys[k],
                                      vv[v]);
                }
                kb_buf_puts(&b, "}");
                check_req_same(b.data, b.len);
        }
        /* and over the size limit */
        doc = malloc(65538);
        assert_non_null(doc);
        memset(doc, ' ', 65537);
        doc[0] = '{';
        doc[65536] = '}';
        check_req_same(doc, 65537);
        check_req_same(doc + 1, 65536);
        free(doc);
        kb_buf_free(&b, 0);
}

/* A share answer's token and kind, read from the view, against the tree's
 * reading (kb_json_get_str()) of the same text. */
static void test_share_answer(void **state)
{
        static const struct {
                const char *doc;
                int rc;          /* expected */
                const char *tok; /* expected token */
                int owned;       /* decoded into a copy */
                kb_session_kind_t kind;
        } cases[] = {
                { "{\"share_token\":\"a.b.c\",\"session_kind\":\"user\"}",
                  KB_OK, "a.b.c", 0, KB_SESSION_USER },
                { "{\"session_kind\":\"business\",\"share_token\":\"x\"}",
                  KB_OK, "x", 0, KB_SESSION_BUSINESS },
                { "{\"share_token\":\"a\\/b\\u0041\"}", KB_OK, "a/bA", 1,
                  KB_SESSION_USER },
                { "{\"share_token\":\"t\",\"session_kind\":\"robot\"}", KB_OK,
                  "t", 0, KB_SESSION_USER },
                { "{\"share_token\":\"t\",\"session_kind\":7}", KB_OK, "t", 0,
                  KB_SESSION_USER },
                { "{\"share_token\":\"t\",\"session_kind\":"
                  "\"business\\u0000\"}",
                  KB_OK, "t", 0, KB_SESSION_USER },
                { "{\"share_token\":\"\"}", KB_ERR_MALFORMED, NULL, 0,
                  KB_SESSION_USER },
                { "{\"share_token\":\"a\\u0000b\"}", KB_ERR_MALFORMED, NULL, 0,
                  KB_SESSION_USER },
                { "{\"share_token\":42}", KB_ERR_MALFORMED, NULL, 0,
                  KB_SESSION_USER },
                { "{\"share_token\":null}", KB_ERR_MALFORMED, NULL, 0,
                  KB_SESSION_USER },
                { "{\"detail\":\"x\"}", KB_ERR_MALFORMED, NULL, 0,
                  KB_SESSION_USER },
                { "[\"share_token\"]", KB_ERR_MALFORMED, NULL, 0,
                  KB_SESSION_USER },
                { "\"share_token\"", KB_ERR_MALFORMED, NULL, 0,
                  KB_SESSION_USER },
        };
        kb_session_kind_t kind;
        const char *tok;
        char err[128], *owned;
        size_t i, tl;

        (void)state;
        for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
                const char *doc = cases[i].doc;
                json_object *tree =
                    kb_json_parse(doc, strlen(doc), 32, err, sizeof(err));
                const char *ttok = kb_json_get_str(tree, "share_token");
                kb_jview_t jv;

                assert_int_equal(
                    kb_jview_init(&jv, doc, strlen(doc), 32, err, sizeof(err)),
                    0);
                assert_int_equal(
                    kb_share_answer_read(&jv, &tok, &tl, &owned, &kind),
                    cases[i].rc);
                assert_int_equal(kind, cases[i].kind);
                /* what the tree gave, empty refused */
                assert_int_equal(cases[i].rc == KB_OK, ttok && *ttok);
                if (cases[i].rc == KB_OK) {
                        assert_int_equal(tl, strlen(cases[i].tok));
                        assert_memory_equal(tok, cases[i].tok, tl);
                        assert_memory_equal(tok, ttok, tl);
                        assert_int_equal(owned != NULL, cases[i].owned);
                        /* in place: a pointer into the answer's text */
                        if (!owned)
                                assert_true(tok > doc &&
                                            tok + tl < doc + strlen(doc));
                        else
                                assert_ptr_equal(tok, owned);
                } else {
                        assert_null(tok);
                        assert_null(owned);
                }
                if (owned)
                        sodium_free(owned);
                kb_jview_clear(&jv);
                json_object_put(tree);
        }
        assert_int_equal(kb_share_answer_read(NULL, &tok, &tl, &owned, &kind),
                         KB_ERR_MALFORMED);
        assert_null(tok);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_request_as_tree),
                cmocka_unit_test(test_share_answer),
                cmocka_unit_test(test_costs),
        };

        if (sodium_init() < 0)
                return 1;
        return cmocka_run_group_tests(tests, NULL, NULL);
}
