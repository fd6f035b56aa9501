/* test_canon.c -- canonical JSON against Python-generated expectations */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "canon.h"
#include "json.h"
#include "util.h"

/*
 * Inputs and the output of the vendor's Python sample
 *   json.dumps(process_value(json.loads(input)), sort_keys=True,
 *              ensure_ascii=False, separators=(",", ":"))
 * generated once with Python 3.11 and pasted here as literals (non-ASCII
 * bytes as octal escapes).
 */
static const struct {
        const char *in;
        const char *want;
} cases[] = {
        { "{\"b\":1,\"a\":2}", "{\"a\":2,\"b\":1}" },
        { " { \"z\" : [ 1 , 2 , { \"y\" : null , \"x\" : true } ] , \"a\" : "
          "false } ",
          "{\"a\":false,\"z\":[1,2,{\"x\":true,\"y\":null}]}" },
        /* code point order: U+E000 and U+FFFF sort before U+1F600 (UTF-16
         * code unit order would put the emoji's surrogates first) */
        { "{\"\\u00e9\":1,\"z\":2,\"Z\":3,\"a\":4,\"\\u00e4\":5,"
          "\"\\ud83d\\ude00\":"
          "6,\"\\uffff\":7,\"\\ue000\":8,\"\":9,\"aa\":10,\"a\\u0001\":11}",
          "{\"\":9,\"Z\":3,\"a\":4,\"a\\u0001\":11,\"aa\":10,\"z\":2,"
          "\"\303\244\":"
          "5,\"\303\251\":1,\"\356\200\200\":8,\"\357\277\277\":7,"
          "\"\360\237\230\200\":6}" },
        { "\"\\u0000\\u0001\\u0007\\b\\t\\n\\u000b\\f\\r\\u000e\\u001f "
          "\\\"\\\\/\\u007f\\u0080\\u2028\\u2029\\ud83d\\ude00\"",
          "\"\\u0000\\u0001\\u0007\\b\\t\\n\\u000b\\f\\r\\u000e\\u001f "
          "\\\"\\\\/\177\302\200\342\200\250\342\200\251\360\237\230\200\"" },
        { "\"caf\\u00e9 Stra\\u00dfe \305\201\303\263d\305\272 "
          "\346\235\261\344\272\254\"",
          "\"caf\303\251 Stra\303\237e \305\201\303\263d\305\272 "
          "\346\235\261\344\272\254\"" },
        { "[1.0,-0.0,1e2,1E2,1.5,0.1,1e-7,-1.5e-7,0.0001,1e-5,100.5,1e16,1e20,"
          "1.5e300,123456789.25]",
          "[1,0,100,100,1.5,0.1,1e-07,-1.5e-07,0.0001,1e-05,100.5,"
          "10000000000000000,100000000000000000000,"
          "15000000000000000787571403828066303730567028716622387323737811732677"
          "03686983362293679557062620671796065556665749325817265413784853040645"
          "86346718827718006047427258080138986370560674535069218213508905342985"
          "24561999176216785584514613201119791141702137418688881832300852642571"
          "73504208294580298189100810240,123456789.25]" },
        { "[0,-0,1,-1,9223372036854775807,-9223372036854775808,"
          "18446744073709551615,12345678901234567890]",
          "[0,0,1,-1,9223372036854775807,-9223372036854775808,"
          "18446744073709551615,12345678901234567890]" },
        { "[true,false,null,{},[],[{}],{\"a\":[]}, \"\"]",
          "[true,false,null,{},[],[{}],{\"a\":[]},\"\"]" },
        { "{\"session_id\":\"11111111-2222-4333-8444-555555555555\",\"status\":"
          "\"Approved\",\"webhook_type\":\"status.updated\",\"vendor_data\":"
          "\"user-123\",\"timestamp\":1627680000,\"decision\":{\"score\":87.50,"
          "\"face_match\":{\"score\":99.0,\"status\":\"Approved\"},"
          "\"warnings\":[]}}",
          "{\"decision\":{\"face_match\":{\"score\":99,\"status\":\"Approved\"}"
          ","
          "\"score\":87.5,\"warnings\":[]},\"session_id\":"
          "\"11111111-2222-4333-8444-555555555555\",\"status\":\"Approved\","
          "\"timestamp\":1627680000,\"vendor_data\":\"user-123\","
          "\"webhook_type\":\"status.updated\"}" },
        { "{\"a\":{\"c\":{\"e\":1,\"d\":2},\"b\":[{\"z\":0,\"y\":1}]}}",
          "{\"a\":{\"b\":[{\"y\":1,\"z\":0}],\"c\":{\"d\":2,\"e\":1}}}" },
        { "\"tab\\there\"", "\"tab\\there\"" },
};

static void test_table(void **state)
{
        size_t i;

        (void)state;
        for (i = 0; i < KB_ARRAY_SIZE(cases); i++) {
                char err[128];
                kb_buf_t b = KB_BUF_INIT;
                json_object *o = kb_json_parse(cases[i].in, strlen(cases[i].in),
                                               64, err, sizeof(err));
                assert_non_null(o);
                assert_int_equal(kb_canon_json(o, &b), KB_OK);
                if (strcmp(b.data, cases[i].want) != 0)
                        fail_msg("case %zu: got %s", i, b.data);
                assert_int_equal(b.len, strlen(cases[i].want));
                json_object_put(o);
                kb_buf_free(&b, 0);
        }
}

/* tests/vectors/canon/floats.txt: "<bits> <repr> <canonical>" per line, from
 * gen_floats.py (Python's repr and the vendor's whole-float-to-int rule). */
static void test_float_vectors(void **state)
{
        char path[4096], *text = NULL, *line, *save = NULL;
        size_t len, n = 0;

        (void)state;
        snprintf(path, sizeof(path), "%s/vectors/canon/floats.txt",
                 KB_TEST_DATA_DIR);
        assert_int_equal(kb_read_file(path, 4u << 20, &text, &len), 0);
        for (line = strtok_r(text, "\n", &save); line;
             line = strtok_r(NULL, "\n", &save)) {
                char *repr = strchr(line, ' '), *canon, rbuf[64];
                unsigned long long bits;
                double d;
                kb_buf_t b = KB_BUF_INIT;
                json_object *o;

                assert_non_null(repr);
                *repr++ = '\0';
                canon = strchr(repr, ' ');
                assert_non_null(canon);
                *canon++ = '\0';
                bits = strtoull(line, NULL, 16);
                memcpy(&d, &bits, sizeof(d));
                assert_int_equal(kb_canon_double_repr(d, rbuf, sizeof(rbuf)),
                                 KB_OK);
                if (strcmp(rbuf, repr) != 0)
                        fail_msg("repr(%s): got %s want %s", line, rbuf, repr);
                o = json_object_new_double(d);
                assert_non_null(o);
                assert_int_equal(kb_canon_json(o, &b), KB_OK);
                if (strcmp(b.data, canon) != 0)
                        fail_msg("canon(%s): got %s want %s", line, b.data,
                                 canon);
                json_object_put(o);
                kb_buf_free(&b, 0);
                n++;
        }
        free(text);
        assert_int_equal(n, 5000);
}

static void test_programmatic(void **state)
{
        kb_buf_t b = KB_BUF_INIT;
        json_object *o = json_object_new_object(), *a = json_object_new_array();

        (void)state;
        assert_non_null(o);
        assert_non_null(a);
        /* a double written as 1.0 or with a custom string is still a double */
        json_object_array_add(a, json_object_new_double(1.0));
        json_object_array_add(a, json_object_new_double_s(0.5, "0.50"));
        json_object_array_add(a, json_object_new_double(-0.0));
        json_object_array_add(a, json_object_new_uint64(UINT64_MAX));
        json_object_array_add(a, json_object_new_int64(INT64_MIN));
        json_object_array_add(a, json_object_new_string_len("a\0b", 3));
        json_object_array_add(a, NULL); /* json-c's null */
        json_object_object_add(o, "\xc3\xa9t\xc3\xa9", json_object_new_int(1));
        json_object_object_add(o, "list", a);
        json_object_object_add(o, "List", json_object_new_boolean(0));
        assert_int_equal(kb_buf_puts(&b, "prefix:"), 0);
        assert_int_equal(kb_canon_json(o, &b), KB_OK);
        assert_string_equal(b.data,
                            "prefix:{\"List\":false,\"list\":[1,0.5,0,"
                            "18446744073709551615,-9223372036854775808,"
                            "\"a\\u0000b\",null],\"\xc3\xa9t\xc3\xa9\":1}");
        json_object_put(o);
        kb_buf_reset(&b);
        assert_int_equal(kb_canon_json(NULL, &b), KB_OK);
        assert_string_equal(b.data, "null");
        kb_buf_free(&b, 0);
}

static void expect_invalid(json_object *o)
{
        kb_buf_t b = KB_BUF_INIT;

        assert_int_equal(kb_buf_puts(&b, "keep"), 0);
        assert_int_equal(kb_canon_json(o, &b), KB_ERR_INVALID_ARG);
        /* output restored on failure */
        assert_string_equal(b.data, "keep");
        assert_int_equal(b.len, 4);
        kb_buf_free(&b, 0);
        json_object_put(o);
}

static void test_invalid(void **state)
{
        json_object *o, *deep, *cur;
        kb_buf_t b = KB_BUF_INIT;
        char buf[KB_CANON_REPR_BYTES];
        int i;

        (void)state;
        o = json_object_new_array();
        json_object_array_add(o, json_object_new_int(1));
        json_object_array_add(o, json_object_new_double(NAN));
        expect_invalid(o);
        o = json_object_new_object();
        json_object_object_add(o, "x", json_object_new_double(INFINITY));
        expect_invalid(o);
        expect_invalid(json_object_new_double(-INFINITY));
        /* invalid UTF-8: bare continuation, overlong, surrogate, > U+10FFFF,
         * truncated sequence */
        expect_invalid(json_object_new_string("\x80"));
        expect_invalid(json_object_new_string("\xc0\xaf"));
        expect_invalid(json_object_new_string("\xed\xa0\x80"));
        expect_invalid(json_object_new_string("\xf4\x90\x80\x80"));
        expect_invalid(json_object_new_string("ab\xe2\x82"));
        o = json_object_new_object();
        json_object_object_add(o, "\xff", json_object_new_int(1));
        expect_invalid(o);
        /* too deep */
        deep = json_object_new_array();
        cur = deep;
        for (i = 0; i < KB_CANON_MAX_DEPTH + 5; i++) {
                json_object *n = json_object_new_array();
                json_object_array_add(cur, n);
                cur = n;
        }
        expect_invalid(deep);
        assert_int_equal(kb_canon_json(NULL, NULL), KB_ERR_INVALID_ARG);
        assert_int_equal(kb_canon_double_repr(NAN, buf, sizeof(buf)),
                         KB_ERR_INVALID_ARG);
        assert_int_equal(kb_canon_double_repr(1.0, buf, 8), KB_ERR_INVALID_ARG);
        /* 100 levels is fine */
        deep = json_object_new_array();
        cur = deep;
        for (i = 0; i < 100; i++) {
                json_object *n = json_object_new_array();
                json_object_array_add(cur, n);
                cur = n;
        }
        assert_int_equal(kb_canon_json(deep, &b), KB_OK);
        assert_int_equal(b.len, 202);
        json_object_put(deep);
        kb_buf_free(&b, 0);
}

static void test_repr_spot(void **state)
{
        /* a few values from Python's repr(), for a readable failure */
        static const struct {
                double d;
                const char *want;
        } t[] = {
                { 0.1, "0.1" },          { 1e-07, "1e-07" },
                { 1e16, "1e+16" },       { 1e15, "1000000000000000.0" },
                { 1.5e300, "1.5e+300" }, { 0.0001, "0.0001" },
                { -0.0, "-0.0" },        { 5e-324, "5e-324" },
                { 100.0, "100.0" },      { 123.456, "123.456" },
                { 1e22, "1e+22" },
        };
        size_t i;
        char buf[KB_CANON_REPR_BYTES];

        (void)state;
        for (i = 0; i < KB_ARRAY_SIZE(t); i++) {
                assert_int_equal(kb_canon_double_repr(t[i].d, buf, sizeof(buf)),
                                 KB_OK);
                assert_string_equal(buf, t[i].want);
        }
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_table),
                cmocka_unit_test(test_float_vectors),
                cmocka_unit_test(test_programmatic),
                cmocka_unit_test(test_invalid),
                cmocka_unit_test(test_repr_spot),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
