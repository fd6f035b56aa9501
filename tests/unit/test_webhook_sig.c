/* test_webhook_sig.c -- webhook V2/Simple signatures: vendor vectors, window,
 * forgeries */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "canon.h"
#include "json.h"
#include "util.h"
#include "webhook_sig.h"

#define SECRET "whsec_sandbox_unit"
#define T0     1795312800

/*
 * tests/vectors/webhook/vectors.jsonl was generated with the vendor's own
 * Python sample (tests/blackbox/webhook_sig_check.py gen) and is checked
 * against it by the black-box test blackbox.webhook_sig_vectors.
 */
static void test_vendor_vectors(void **state)
{
        char path[4096], *text = NULL, *line, *save = NULL, err[128];
        size_t len, n = 0;

        (void)state;
        snprintf(path, sizeof(path), "%s/vectors/webhook/vectors.jsonl",
                 KB_TEST_DATA_DIR);
        assert_int_equal(kb_read_file(path, 8u << 20, &text, &len), 0);
        for (line = strtok_r(text, "\n", &save); line;
             line = strtok_r(NULL, "\n", &save)) {
                json_object *v, *payload;
                const char *secret, *tsh, *body, *want_v2, *want_simple,
                    *want_canon;
                char sig[65];
                int64_t ts;
                kb_buf_t canon = KB_BUF_INIT;

                v = kb_json_parse(line, strlen(line), 16, err, sizeof(err));
                assert_non_null(v);
                secret = kb_json_get_str(v, "secret");
                tsh = kb_json_get_str(v, "timestamp");
                body = kb_json_get_str(v, "body");
                want_v2 = kb_json_get_str(v, "sig_v2");
                want_simple = kb_json_get_str(v, "sig_simple");
                want_canon = kb_json_get_str(v, "canonical");
                assert_true(secret && tsh && body && want_v2 && want_simple &&
                            want_canon);
                assert_int_equal(kb_parse_i64(tsh, 0, INT64_MAX, &ts), 0);
                payload =
                    kb_json_parse(body, strlen(body), 64, err, sizeof(err));
                assert_non_null(payload);

                assert_int_equal(kb_canon_json(payload, &canon), KB_OK);
                if (strcmp(canon.data, want_canon) != 0)
                        fail_msg("%s: canonical differs:\n%s\n%s",
                                 kb_json_get_str(v, "name"), canon.data,
                                 want_canon);
                assert_int_equal(kb_webhook_sign_v2(secret, ts, payload, sig),
                                 KB_OK);
                assert_string_equal(sig, want_v2);
                assert_int_equal(
                    kb_webhook_sign_simple(
                        secret, ts, kb_json_get_str(payload, "session_id"),
                        kb_json_get_str(payload, "status"),
                        kb_json_get_str(payload, "webhook_type"), sig),
                    KB_OK);
                assert_string_equal(sig, want_simple);

                assert_int_equal(kb_webhook_verify(secret, tsh, want_v2, NULL,
                                                   body, strlen(body), ts,
                                                   KB_WEBHOOK_TOLERANCE_S),
                                 KB_OK);
                assert_int_equal(kb_webhook_verify(secret, tsh, NULL,
                                                   want_simple, body,
                                                   strlen(body), ts, 300),
                                 KB_OK);
                /* the other vector's secret is wrong here */
                assert_int_equal(kb_webhook_verify("whsec_other", tsh, want_v2,
                                                   NULL, body, strlen(body), ts,
                                                   300),
                                 KB_ERR_AUTH);
                kb_buf_free(&canon, 0);
                json_object_put(payload);
                json_object_put(v);
                n++;
        }
        free(text);
        assert_true(n >= 6);
}

/* A delivery body with @p ts as its "timestamp" (raw JSON text), signed
 * with the header value @p sig_ts. */
static char *delivery(const char *ts_json, int64_t sig_ts, char v2[65],
                      char simple[65])
{
        char err[128], *body = NULL;
        json_object *p;
        kb_buf_t b = KB_BUF_INIT;

        assert_int_equal(
            kb_buf_printf(&b,
                          "{\"session_id\":\"s-1\",\"status\":\"Approved\","
                          "\"webhook_type\":\"status.updated\","
                          "\"vendor_data\":\"u\",\"timestamp\":%s,"
                          "\"decision\":{\"score\":87.5,\"x\":1.0}}",
                          ts_json),
            0);
        p = kb_json_parse(b.data, b.len, 16, err, sizeof(err));
        assert_non_null(p);
        assert_int_equal(kb_webhook_sign_v2(SECRET, sig_ts, p, v2), KB_OK);
        assert_int_equal(kb_webhook_sign_simple(SECRET, sig_ts, "s-1",
                                                "Approved", "status.updated",
                                                simple),
                         KB_OK);
        json_object_put(p);
        body = kb_buf_steal(&b, NULL);
        assert_non_null(body);
        return body;
}

static int verify(const char *tsh, const char *v2, const char *simple,
                  const char *body, int64_t now)
{
        return kb_webhook_verify(SECRET, tsh, v2, simple, body, strlen(body),
                                 now, KB_WEBHOOK_TOLERANCE_S);
}

static void test_window(void **state)
{
        char v2[65], simple[65], *body = delivery("1795312800", T0, v2, simple);

        (void)state;
        assert_int_equal(verify("1795312800", v2, NULL, body, T0), KB_OK);
        assert_int_equal(verify("1795312800", v2, NULL, body, T0 + 300), KB_OK);
        assert_int_equal(verify("1795312800", v2, NULL, body, T0 - 300), KB_OK);
        assert_int_equal(verify("1795312800", v2, NULL, body, T0 + 301),
                         KB_ERR_AUTH);
        assert_int_equal(verify("1795312800", v2, NULL, body, T0 - 301),
                         KB_ERR_AUTH);
        assert_int_equal(verify("1795312800", NULL, simple, body, T0 + 301),
                         KB_ERR_AUTH);
        /* extreme clocks do not overflow */
        assert_int_equal(verify("1795312800", v2, NULL, body, INT64_MIN),
                         KB_ERR_AUTH);
        assert_int_equal(verify("1795312800", v2, NULL, body, INT64_MAX),
                         KB_ERR_AUTH);
        /* a custom tolerance */
        assert_int_equal(kb_webhook_verify(SECRET, "1795312800", v2, NULL, body,
                                           strlen(body), T0 + 10, 5),
                         KB_ERR_AUTH);
        assert_int_equal(kb_webhook_verify(SECRET, "1795312800", v2, NULL, body,
                                           strlen(body), T0 + 5, 5),
                         KB_OK);
        free(body);
}

static void test_timestamp_rules(void **state)
{
        char v2[65], simple[65], *body;

        (void)state;
        /* header and payload disagree, though the signature is over the
         * header's value */
        body = delivery("1795312800", T0 + 1, v2, simple);
        assert_int_equal(verify("1795312801", v2, NULL, body, T0), KB_ERR_AUTH);
        assert_int_equal(verify("1795312801", NULL, simple, body, T0),
                         KB_ERR_AUTH);
        free(body);
        /* header not in the signer's exact form */
        body = delivery("1795312800", T0, v2, simple);
        assert_int_equal(verify("+1795312800", v2, NULL, body, T0),
                         KB_ERR_AUTH);
        assert_int_equal(verify("01795312800", v2, NULL, body, T0),
                         KB_ERR_AUTH);
        assert_int_equal(verify(" 1795312800", v2, NULL, body, T0),
                         KB_ERR_AUTH);
        assert_int_equal(verify("1795312800 ", v2, NULL, body, T0),
                         KB_ERR_AUTH);
        assert_int_equal(verify("1795312800.0", v2, NULL, body, T0),
                         KB_ERR_AUTH);
        assert_int_equal(verify("", v2, NULL, body, T0), KB_ERR_AUTH);
        assert_int_equal(verify(NULL, v2, NULL, body, T0), KB_ERR_AUTH);
        assert_int_equal(verify("99999999999999999999", v2, NULL, body, T0),
                         KB_ERR_AUTH);
        free(body);
        /* payload timestamp not an integer, or missing */
        body = delivery("\"1795312800\"", T0, v2, simple);
        assert_int_equal(verify("1795312800", v2, NULL, body, T0), KB_ERR_AUTH);
        free(body);
        body = delivery("1795312800.0", T0, v2, simple);
        assert_int_equal(verify("1795312800", v2, NULL, body, T0), KB_ERR_AUTH);
        free(body);
        body = delivery("null", T0, v2, simple);
        assert_int_equal(verify("1795312800", v2, NULL, body, T0), KB_ERR_AUTH);
        free(body);
}

static void test_forgeries(void **state)
{
        char v2[65], simple[65], up[65], *body, *p;
        const char *tampered =
            "{\"session_id\":\"s-1\",\"status\":\"Approved\","
            "\"webhook_type\":\"status.updated\",\"vendor_data\":\"u\","
            "\"timestamp\":1795312800,\"decision\":{\"score\":87.6,"
            "\"x\":1.0}}";
        const char *reordered =
            "{ \"decision\" : { \"x\" : 1, \"score\" : 87.50 },\n"
            "\"timestamp\":1795312800,\"vendor_data\":\"u\","
            "\"webhook_type\":\"status.updated\",\"status\":\"Approved\","
            "\"session_id\":\"s-1\"}";
        size_t i;

        (void)state;
        body = delivery("1795312800", T0, v2, simple);
        /* same document, other key order and spelling: canonical form equal */
        assert_int_equal(verify("1795312800", v2, NULL, reordered, T0), KB_OK);
        assert_int_equal(verify("1795312800", v2, NULL, tampered, T0),
                         KB_ERR_AUTH);
        /* Simple covers only the key fields: the tampered decision passes
         * it, as the vendor documents (it is the weaker fallback) */
        assert_int_equal(verify("1795312800", NULL, simple, tampered, T0),
                         KB_OK);
        assert_int_equal(kb_webhook_verify("whsec_sandbox_unix", "1795312800",
                                           v2, NULL, body, strlen(body), T0,
                                           300),
                         KB_ERR_AUTH);
        /* V2 takes precedence over Simple */
        assert_int_equal(verify("1795312800", simple, v2, body, T0),
                         KB_ERR_AUTH);
        assert_int_equal(verify("1795312800", NULL, NULL, body, T0),
                         KB_ERR_AUTH);
        /* signature header shape: either hex case, exactly 64 digits */
        for (i = 0; i < 65; i++)
                up[i] =
                    (v2[i] >= 'a' && v2[i] <= 'f') ? (char)(v2[i] - 32) : v2[i];
        assert_int_equal(verify("1795312800", up, NULL, body, T0), KB_OK);
        up[63] = '\0';
        assert_int_equal(verify("1795312800", up, NULL, body, T0), KB_ERR_AUTH);
        assert_int_equal(verify("1795312800", "", NULL, body, T0), KB_ERR_AUTH);
        memcpy(up, v2, 65);
        up[10] = 'g';
        assert_int_equal(verify("1795312800", up, NULL, body, T0), KB_ERR_AUTH);
        memcpy(up, v2, 65);
        up[0] = up[0] == '0' ? '1' : '0';
        assert_int_equal(verify("1795312800", up, NULL, body, T0), KB_ERR_AUTH);
        /* body shape: not JSON is MALFORMED, JSON of another shape AUTH */
        assert_int_equal(verify("1795312800", v2, NULL, "{\"a\":", T0),
                         KB_ERR_MALFORMED);
        assert_int_equal(verify("1795312800", v2, NULL, "", T0),
                         KB_ERR_MALFORMED);
        assert_int_equal(verify("1795312800", v2, NULL,
                                "{\"timestamp\":1,\"timestamp\":1795312800}",
                                T0),
                         KB_ERR_MALFORMED);
        assert_int_equal(verify("1795312800", v2, NULL, "[1795312800]", T0),
                         KB_ERR_AUTH);
        assert_int_equal(verify("1795312800", NULL, simple,
                                "{\"timestamp\":1795312800,\"status\":"
                                "\"Approved\",\"webhook_type\":"
                                "\"status.updated\"}",
                                T0),
                         KB_ERR_AUTH);
        p = malloc(KB_WEBHOOK_MAX_BODY + 2);
        assert_non_null(p);
        memset(p, ' ', KB_WEBHOOK_MAX_BODY + 1);
        memcpy(p, body, strlen(body));
        assert_int_equal(kb_webhook_verify(SECRET, "1795312800", v2, NULL, p,
                                           KB_WEBHOOK_MAX_BODY + 1, T0, 300),
                         KB_ERR_MALFORMED);
        free(p);
        free(body);
}

static void test_args(void **state)
{
        char sig[65];
        json_object *o = json_object_new_object();

        (void)state;
        assert_int_equal(kb_webhook_sign_v2(NULL, 1, o, sig),
                         KB_ERR_INVALID_ARG);
        assert_int_equal(kb_webhook_sign_v2("", 1, o, sig), KB_ERR_INVALID_ARG);
        assert_int_equal(kb_webhook_sign_simple("k", 1, NULL, "a", "b", sig),
                         KB_ERR_INVALID_ARG);
        assert_int_equal(kb_webhook_verify("", "1", "x", NULL, "{}", 2, 1, 300),
                         KB_ERR_INVALID_ARG);
        assert_int_equal(
            kb_webhook_verify("k", "1", "x", NULL, NULL, 0, 1, 300),
            KB_ERR_INVALID_ARG);
        assert_int_equal(kb_webhook_verify("k", "1", "x", NULL, "{}", 2, 1, -1),
                         KB_ERR_INVALID_ARG);
        json_object_object_add(o, "bad", json_object_new_double(NAN));
        assert_int_equal(kb_webhook_sign_v2("k", 1, o, sig),
                         KB_ERR_INVALID_ARG);
        json_object_put(o);
        /* a negative timestamp is written with its sign (Python f-string) */
        assert_int_equal(kb_webhook_sign_simple("k", -5, "a", "b", "c", sig),
                         KB_OK);
        assert_int_equal(strlen(sig), 64);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_vendor_vectors),
                cmocka_unit_test(test_window),
                cmocka_unit_test(test_timestamp_rules),
                cmocka_unit_test(test_forgeries),
                cmocka_unit_test(test_args),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
