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
        double us_req, us_tree, us_view, us_jwt, us_seal;

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

        print_message("issuer path, us per token: request %.2f, share answer "
                      "tree %.2f view %.2f, token exp %.2f, seal %.2f\n",
                      us_req, us_tree, us_view, us_jwt, us_seal);
        kb_key_destroy(sign);
        kb_key_destroy(box);
        free(tok);
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
                cmocka_unit_test(test_share_answer),
                cmocka_unit_test(test_costs),
        };

        if (sodium_init() < 0)
                return 1;
        return cmocka_run_group_tests(tests, NULL, NULL);
}
