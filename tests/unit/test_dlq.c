/* test_dlq.c -- unit tests for dlq.c and dlq_redrive.c: the kept input
 * (base64, SHA-256, header allow-list; kept only when redrivable), its
 * decoding, the redrive reason table, the redrive's transactional id and
 * timeout, and the markers */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dlq.h"
#include "dlq_redrive.h"
#include "json.h"
#include "kyc_bridge.h"
#include "util.h"
#include "verdict.h"

/* FIPS 180-4 examples, and lengths around the padding boundaries checked
 * against libsodium's SHA-256. */
static void test_sha256(void **state)
{
        unsigned char buf[300], want[32];
        char hex[65], wanthex[65];
        size_t n;

        (void)state;
        kb_dlq_sha256_hex("abc", 3, hex);
        assert_string_equal(hex, "ba7816bf8f01cfea414140de5dae2223b00361a396"
                                 "177a9cb410ff61f20015ad");
        kb_dlq_sha256_hex("", 0, hex);
        assert_string_equal(hex, "e3b0c44298fc1c149afbf4c8996fb92427ae41e464"
                                 "9b934ca495991b7852b855");
        for (n = 0; n < sizeof(buf); n++)
                buf[n] = (unsigned char)(n * 7 + 1);
        for (n = 0; n < sizeof(buf); n++) {
                crypto_hash_sha256(want, buf, n);
                kb_hex(want, sizeof(want), wanthex);
                kb_dlq_sha256_hex(buf, n, hex);
                assert_string_equal(hex, wanthex);
        }
}

static rd_kafka_headers_t *test_headers(void)
{
        rd_kafka_headers_t *h = rd_kafka_headers_new(8);

        rd_kafka_header_add(h, "traceparent", -1,
                            "00-4bf92f3577b34da6a3ce929d0e0e4736-"
                            "00f067aa0ba902b7-01",
                            -1);
        rd_kafka_header_add(h, "kb-requested-at", -1, "1700000000123", -1);
        rd_kafka_header_add(h, "x-secret", -1, "canary-secret", -1);
        rd_kafka_header_add(h, "tracestate", -1, "bad\nvalue", -1);
        rd_kafka_header_add(h, "authorization", -1, "Bearer canary", -1);
        return h;
}

/* Every length 0..70 (all base64 paddings), a key and none: encoded,
 * decoded back byte for byte; only allow-listed, clean headers kept. */
static void test_input_round_trip(void **state)
{
        rd_kafka_headers_t *h = test_headers();
        unsigned char val[70];
        size_t n, i;

        (void)state;
        for (i = 0; i < sizeof(val); i++)
                val[i] = (unsigned char)(255 - i * 3);
        for (n = 0; n <= sizeof(val); n++) {
                json_object *in =
                    kb_dlq_input_json(n % 2 ? "app-key" : NULL, 7, val, n, h);
                const char *txt = kb_json_str(in, NULL);
                kb_dlq_input_t d;
                char err[128], dig[65];
                int64_t size;

                assert_non_null(in);
                assert_null(strstr(txt, "canary"));
                assert_null(strstr(txt, "tracestate"));
                assert_int_equal(kb_json_get_i64(in, "size", &size), 0);
                assert_int_equal(size, (int64_t)n);
                kb_dlq_sha256_hex(val, n, dig);
                assert_string_equal(kb_json_get_str(in, "sha256"), dig);
                assert_int_equal(kb_dlq_input_decode(in, &d, err, sizeof(err)),
                                 KB_OK);
                assert_int_equal(d.value_len, n);
                assert_memory_equal(d.value, val, n);
                if (n % 2) {
                        assert_int_equal(d.key_len, 7);
                        assert_memory_equal(d.key, "app-key", 7);
                } else {
                        assert_null(d.key);
                }
                assert_string_equal(d.headers[0], "traceparent");
                assert_string_equal(d.headers[2], "kb-requested-at");
                assert_string_equal(d.headers[3], "1700000000123");
                assert_null(d.headers[4]);
                kb_dlq_input_free(&d);
                json_object_put(in);
        }
        rd_kafka_headers_destroy(h);
}

/* A damaged input is refused: digest, size, base64, a header not on the
 * allow-list. */
static void test_input_decode_refuses(void **state)
{
        static const char *const bad[] = {
                /* wrong digest */
                "{\"key\":null,\"value\":\"YWJj\",\"size\":3,\"sha256\":"
                "\"ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f2"
                "0015ae\",\"headers\":{}}",
                /* wrong size */
                "{\"key\":null,\"value\":\"YWJj\",\"size\":4,\"sha256\":"
                "\"ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f2"
                "0015ad\",\"headers\":{}}",
                /* not base64 */
                "{\"key\":null,\"value\":\"YW=j\",\"size\":3,\"sha256\":"
                "\"ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f2"
                "0015ad\",\"headers\":{}}",
                /* a header off the list */
                "{\"key\":null,\"value\":\"YWJj\",\"size\":3,\"sha256\":"
                "\"ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f2"
                "0015ad\",\"headers\":{\"x-other\":\"1\"}}",
                /* no value */
                "{\"key\":null,\"size\":3,\"sha256\":\"00\"}", NULL
        };
        static const char good[] =
            "{\"key\":\"YQ==\",\"value\":\"YWJj\",\"size\":3,\"sha256\":"
            "\"ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015"
            "ad\",\"headers\":{\"kb-requested-at\":\"1\"}}";
        kb_dlq_input_t d;
        char err[128];
        size_t i;

        (void)state;
        for (i = 0; bad[i]; i++) {
                json_object *o =
                    kb_json_parse(bad[i], strlen(bad[i]), 8, err, sizeof(err));
                assert_non_null(o);
                assert_int_equal(kb_dlq_input_decode(o, &d, err, sizeof(err)),
                                 KB_ERR_MALFORMED);
                json_object_put(o);
        }
        assert_int_equal(kb_dlq_input_decode(NULL, &d, err, sizeof(err)),
                         KB_ERR_MALFORMED);
        {
                json_object *o =
                    kb_json_parse(good, strlen(good), 8, err, sizeof(err));
                assert_int_equal(kb_dlq_input_decode(o, &d, err, sizeof(err)),
                                 KB_OK);
                assert_int_equal(d.key_len, 1);
                assert_memory_equal(d.value, "abc", 3);
                kb_dlq_input_free(&d);
                json_object_put(o);
        }
}

/* The reason table: every reason of the schema, and every reason the
 * verdict table can give, has a row; the refused ones say what to do. */
static void test_reasons(void **state)
{
        static const kb_step_t steps[] = { KB_STEP_MINT, KB_STEP_IMPORT,
                                           KB_STEP_RECONCILE };
        const kb_dlq_reason_t *rr;
        json_object *schema, *e, *props, *reason;
        char *text = NULL, err[128];
        size_t len, n, i, s;
        int st, a, er;

        (void)state;
        assert_int_equal(kb_read_file(KB_TEST_DATA_DIR
                                      "/../schemas/dead-letter.schema.json",
                                      1 << 20, &text, &len),
                         KB_OK);
        schema = kb_json_parse(text, len, 16, err, sizeof(err));
        assert_non_null(schema);
        assert_true(json_object_object_get_ex(schema, "properties", &props));
        assert_true(json_object_object_get_ex(props, "reason", &reason));
        assert_true(json_object_object_get_ex(reason, "enum", &e));
        rr = kb_dlq_reasons(&n);
        assert_int_equal(n, json_object_array_length(e));
        for (i = 0; i < json_object_array_length(e); i++) {
                const char *code =
                    json_object_get_string(json_object_array_get_idx(e, i));
                const kb_dlq_reason_t *r = kb_dlq_reason(code);
                assert_non_null(r);
                assert_true(strlen(r->advice) > 10);
        }
        json_object_put(schema);
        free(text);
        for (i = 0; i < n; i++)
                assert_ptr_equal(kb_dlq_reason(rr[i].reason), &rr[i]);
        assert_null(kb_dlq_reason("no_such_reason"));
        assert_null(kb_dlq_reason(NULL));
        assert_false(kb_dlq_reason("expired")->redrivable);
        assert_false(kb_dlq_reason("authentication_failed")->redrivable);
        assert_non_null(strstr(kb_dlq_reason("expired")->advice,
                               "ask the issuer to share again"));
        assert_true(kb_dlq_reason("unknown_partner")->redrivable);
        assert_true(kb_dlq_reason("unknown_key")->redrivable);
        for (s = 0; s < sizeof(steps) / sizeof(steps[0]); s++)
                for (st = 0; st < 1000; st++)
                        for (a = KB_ANS_NONE; a <= KB_ANS_UNKNOWN; a++)
                                for (er = 0; er >= KB_ERR_STATE + 1; er--) {
                                        kb_verdict_t v = kb_verdict(
                                            steps[s], st, er, (kb_answer_t)a);
                                        if (v.act == KB_ACT_DEAD_LETTER)
                                                assert_non_null(
                                                    kb_dlq_reason(v.reason));
                                }
}

/* The input is kept only where a redrive can use it: a known, redrivable
 * reason and at most KB_DLQ_INPUT_MAX_BYTES. */
static void test_keeps_input(void **state)
{
        static const char *const never[] = { "expired",
                                             "malformed_request",
                                             "malformed_envelope",
                                             "authentication_failed",
                                             "request_too_large",
                                             "envelope_too_large",
                                             "not_addressed_to_us",
                                             "token_rejected",
                                             "forbidden",
                                             "source_session_gone",
                                             "no_such_reason",
                                             NULL };
        const kb_dlq_reason_t *rr;
        size_t n, i;

        (void)state;
        for (i = 0; never[i]; i++)
                assert_false(kb_dlq_keeps_input(never[i], 10));
        assert_false(kb_dlq_keeps_input(NULL, 10));
        assert_true(kb_dlq_keeps_input("unknown_key", 0));
        assert_true(
            kb_dlq_keeps_input("unknown_partner", KB_DLQ_INPUT_MAX_BYTES));
        assert_false(
            kb_dlq_keeps_input("unknown_partner", KB_DLQ_INPUT_MAX_BYTES + 1));
        rr = kb_dlq_reasons(&n);
        for (i = 0; i < n; i++)
                assert_int_equal(!!kb_dlq_keeps_input(rr[i].reason, 100),
                                 !!rr[i].redrivable);
}

/* One transactional id per dead-letter topic, whatever the group; any
 * valid topic name (up to 249 characters) fits. */
static void test_redrive_txid(void **state)
{
        char out[KB_DLQ_REDRIVE_TXID_MAX], topic[250];

        (void)state;
        assert_int_equal(
            kb_dlq_redrive_txid("acme.importer-dlq", out, sizeof(out)), 0);
        assert_string_equal(out, "kyc-bridge-dlq-redrive-acme.importer-dlq");
        memset(topic, 'a', 249);
        topic[249] = '\0';
        assert_int_equal(kb_dlq_redrive_txid(topic, out, sizeof(out)), 0);
        assert_int_equal(strlen(out), strlen(KB_DLQ_REDRIVE_TXID_PREFIX) + 249);
        assert_int_equal(kb_dlq_redrive_txid(topic, out, 100), -1);
        assert_int_equal(kb_dlq_redrive_txid("", out, sizeof(out)), -1);
        assert_int_equal(kb_dlq_redrive_txid(NULL, out, sizeof(out)), -1);
}

/* transaction.timeout.ms: twice --timeout, 60 s at least, never over the
 * broker's default maximum. */
static void test_redrive_txn_timeout(void **state)
{
        (void)state;
        assert_int_equal(kb_dlq_redrive_txn_timeout_ms(1), 60000);
        assert_int_equal(kb_dlq_redrive_txn_timeout_ms(30000), 60000);
        assert_int_equal(kb_dlq_redrive_txn_timeout_ms(45000), 90000);
        assert_int_equal(kb_dlq_redrive_txn_timeout_ms(450000), 900000);
        assert_int_equal(kb_dlq_redrive_txn_timeout_ms(3600000),
                         KB_DLQ_REDRIVE_TXN_TIMEOUT_MAX_MS);
}

static json_object *parse(const char *s)
{
        char err[128];
        json_object *o = kb_json_parse(s, strlen(s), 8, err, sizeof(err));

        assert_non_null(o);
        return o;
}

/* Markers: recognised by format, counted for their own topic only,
 * looked up by position whatever the order they came in. */
static void test_marks(void **state)
{
        static const char *const marks[] = {
                "{\"format\":\"kyc-bridge-dead-letter-redriven/1\","
                "\"of\":{\"topic\":\"dlq\",\"partition\":2,\"offset\":"
                "7}}",
                "{\"format\":\"kyc-bridge-dead-letter-redriven/1\","
                "\"of\":{\"topic\":\"dlq\",\"partition\":0,\"offset\":"
                "9}}",
                "{\"format\":\"kyc-bridge-dead-letter-redriven/1\","
                "\"of\":{\"topic\":\"dlq\",\"partition\":0,\"offset\":"
                "3}}",
                /* another topic's */
                "{\"format\":\"kyc-bridge-dead-letter-redriven/1\","
                "\"of\":{\"topic\":\"other\",\"partition\":1,"
                "\"offset\":1}}",
                /* no offset: a marker, naming nothing */
                "{\"format\":\"kyc-bridge-dead-letter-redriven/1\","
                "\"of\":{\"topic\":\"dlq\",\"partition\":1}}",
                NULL
        };
        static const char dead_letter[] =
            "{\"format\":\"kyc-bridge-dead-letter/1\",\"reason\":"
            "\"unknown_key\",\"source\":{\"topic\":\"t\","
            "\"partition\":1,\"offset\":1}}";
        kb_dlq_marks_t m;
        json_object *o;
        size_t i;

        (void)state;
        memset(&m, 0, sizeof(m));
        m.topic = "dlq";
        assert_int_equal(kb_dlq_redrive_marked(&m, 0, 3), 0);
        for (i = 0; marks[i]; i++) {
                o = parse(marks[i]);
                assert_true(kb_dlq_is_marker(o));
                assert_int_equal(kb_dlq_marks_add(&m, o), 1);
                json_object_put(o);
        }
        o = parse(dead_letter);
        assert_false(kb_dlq_is_marker(o));
        assert_int_equal(kb_dlq_marks_add(&m, o), 0);
        json_object_put(o);
        assert_false(kb_dlq_is_marker(NULL));
        assert_int_equal(kb_dlq_marks_add(&m, NULL), 0);
        assert_int_equal(m.n, 3);
        assert_true(kb_dlq_redrive_marked(&m, 0, 3));
        assert_true(kb_dlq_redrive_marked(&m, 0, 9));
        assert_true(kb_dlq_redrive_marked(&m, 2, 7));
        assert_false(kb_dlq_redrive_marked(&m, 0, 7));
        assert_false(kb_dlq_redrive_marked(&m, 1, 1));
        assert_false(kb_dlq_redrive_marked(&m, 2, 3));
        /* one added after a lookup is found too */
        o = parse("{\"format\":\"kyc-bridge-dead-letter-redriven/1\","
                  "\"of\":{\"topic\":\"dlq\",\"partition\":0,"
                  "\"offset\":1}}");
        assert_int_equal(kb_dlq_marks_add(&m, o), 1);
        json_object_put(o);
        assert_true(kb_dlq_redrive_marked(&m, 0, 1));
        assert_true(kb_dlq_redrive_marked(&m, 0, 3));
        kb_dlq_marks_free(&m);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_sha256),
                cmocka_unit_test(test_input_round_trip),
                cmocka_unit_test(test_input_decode_refuses),
                cmocka_unit_test(test_reasons),
                cmocka_unit_test(test_keeps_input),
                cmocka_unit_test(test_redrive_txid),
                cmocka_unit_test(test_redrive_txn_timeout),
                cmocka_unit_test(test_marks),
        };

        return cmocka_run_group_tests(tests, NULL, NULL);
}
