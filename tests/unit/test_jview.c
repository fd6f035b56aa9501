/* test_jview.c -- unit tests for jview.c: views of raw JSON text (the
 * strictness shared with kb_json_parse() is tested in test_json.c) */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "json.h"
#include "jview.h"
#include "util.h"

static void init_ok(kb_jview_t *jv, const char *s)
{
        char err[256] = "";

        if (kb_jview_init(jv, s, strlen(s), 16, err, sizeof(err)))
                fail_msg("refused <%s>: %s", s, err);
}

static void assert_span(kb_jval_t v, const char *want)
{
        if (!v.p)
                fail_msg("absent, want <%s>", want);
        if (v.len != strlen(want) || memcmp(v.p, want, v.len))
                fail_msg("<%.*s>, want <%s>", (int)v.len, v.p, want);
}

static void test_root_members(void **state)
{
        kb_jview_t jv;
        const char *doc = " \n{ \"a\" : 1 , \"b\":[1, {\"c\":2} ,\"x\"],"
                          "\"s\\u0074\":\"v\",\"n\":null,\"o\":{\"a\":true}}\t";

        (void)state;
        init_ok(&jv, doc);
        assert_int_equal(kb_jval_type(jv.root), KB_JV_OBJECT);
        assert_int_equal(jv.root.p - doc, 2);
        assert_int_equal(jv.root.p[jv.root.len - 1], '}');
        assert_int_equal(jv.n, 5);
        assert_span(jv.m[0].key, "\"a\"");
        assert_span(jv.m[0].val, "1");
        assert_span(kb_jview_get(&jv, "b"), "[1, {\"c\":2} ,\"x\"]");
        /* keys compare decoded */
        assert_span(kb_jview_get(&jv, "st"), "\"v\"");
        assert_int_equal(kb_jval_type(kb_jview_get(&jv, "n")), KB_JV_NULL);
        assert_int_equal(kb_jval_type(kb_jview_get(&jv, "o")), KB_JV_OBJECT);
        assert_int_equal(kb_jval_type(kb_jview_get(&jv, "c")), KB_JV_ABSENT);
        assert_null(kb_jview_get(&jv, "s\\u0074").p);
        kb_jview_clear(&jv);

        /* other roots have no members */
        init_ok(&jv, "[{\"a\":1}]");
        assert_int_equal(jv.n, 0);
        assert_null(kb_jview_get(&jv, "a").p);
        kb_jview_clear(&jv);
        init_ok(&jv, " null ");
        assert_int_equal(kb_jval_type(jv.root), KB_JV_NULL);
        assert_span(jv.root, "null");
        kb_jview_clear(&jv);
        init_ok(&jv, "-1.5e3");
        assert_int_equal(kb_jval_type(jv.root), KB_JV_NUMBER);
        assert_span(jv.root, "-1.5e3");
        kb_jview_clear(&jv);
}

static void test_iterate(void **state)
{
        static const char *const want[] = { "1",           "-2.5E+3",
                                            "\"a]\\\"}\"", "true",
                                            "false",       "null",
                                            "[ ]",         "{\"k\":[1,{}]}" };
        kb_jview_t jv;
        kb_jiter_t it;
        kb_jval_t k, v, arr, obj;
        size_t i = 0;

        (void)state;
        init_ok(&jv, "{\"arr\":[ 1 ,-2.5E+3,\"a]\\\"}\",true,false,null,[ ],"
                     "{\"k\":[1,{}]} ],\"obj\":{ \"x\" : 1, \"y\\n\":{\"z\":"
                     "[]} },\"e\":[],\"eo\":{}}");
        arr = kb_jview_get(&jv, "arr");
        assert_int_equal(kb_jval_count(arr), KB_ARRAY_SIZE(want));
        kb_jval_iter(arr, &it);
        while (kb_jiter_next(&it, &k, &v)) {
                assert_null(k.p);
                assert_true(i < KB_ARRAY_SIZE(want));
                assert_span(v, want[i++]);
        }
        assert_int_equal(i, KB_ARRAY_SIZE(want));
        assert_int_equal(kb_jiter_next(&it, &k, &v), 0);

        obj = kb_jview_get(&jv, "obj");
        assert_int_equal(kb_jval_count(obj), 2);
        kb_jval_iter(obj, &it);
        assert_int_equal(kb_jiter_next(&it, &k, &v), 1);
        assert_span(k, "\"x\"");
        assert_span(v, "1");
        assert_int_equal(kb_jiter_next(&it, NULL, &v), 1);
        assert_span(v, "{\"z\":[]}");
        assert_int_equal(kb_jiter_next(&it, &k, &v), 0);
        assert_span(kb_jval_member(obj, "y\n"), "{\"z\":[]}");
        assert_span(kb_jval_member(kb_jval_member(obj, "y\n"), "z"), "[]");
        assert_null(kb_jval_member(obj, "z").p);
        assert_null(kb_jval_member(arr, "x").p); /* no object */

        assert_int_equal(kb_jval_count(kb_jview_get(&jv, "e")), 0);
        assert_int_equal(kb_jval_count(kb_jview_get(&jv, "eo")), 0);
        assert_int_equal(kb_jval_count(kb_jview_get(&jv, "none")), 0);
        /* a scalar has no elements */
        kb_jval_iter(kb_jval_member(obj, "x"), &it);
        assert_int_equal(kb_jiter_next(&it, &k, &v), 0);
        kb_jview_clear(&jv);
}

static void test_key_is(void **state)
{
        kb_jval_t k;

        (void)state;
        k.p = "\"abc\"";
        k.len = 5;
        assert_true(kb_jval_key_is(k, "abc"));
        assert_false(kb_jval_key_is(k, "ab"));
        assert_false(kb_jval_key_is(k, "abcd"));
        k.p = "\"a\\u0062\\/\\u00e9\\ud83d\\ude00\"";
        k.len = strlen(k.p);
        assert_true(kb_jval_key_is(k, "ab/\xc3\xa9\xf0\x9f\x98\x80"));
        assert_false(kb_jval_key_is(k, "ab/\xc3\xa9"));
        assert_false(kb_jval_key_is(k, "ab/\xc3\xa9\xf0\x9f\x98\x80x"));
        /* up to a NUL, as json-c keys */
        k.p = "\"type\\u0000y\"";
        k.len = strlen(k.p);
        assert_true(kb_jval_key_is(k, "type"));
        assert_false(kb_jval_key_is(k, "typ"));
        k.p = "1";
        k.len = 1;
        assert_false(kb_jval_key_is(k, "1"));
}

static void test_str(void **state)
{
        kb_jview_t jv;
        kb_jval_t v;
        char out[64];
        size_t len = 99;
        const char *want = "q\"b\\/\b\f\n\r\t\xc3\xa9\xe2\x82\xac"
                           "\xf0\x9f\x98\x80 raw \xc3\xa9";

        (void)state;
        init_ok(&jv, "{\"s\":\"q\\\"b\\\\\\/\\b\\f\\n\\r\\t\\u00e9\\u20AC"
                     "\\ud83d\\ude00 raw \xc3\xa9\",\"z\":\"a\\u0000b\","
                     "\"e\":\"\",\"n\":12}");
        v = kb_jview_get(&jv, "s");
        assert_int_equal(kb_jval_str(v, out, sizeof(out), &len), 0);
        assert_string_equal(out, want);
        assert_int_equal(len, strlen(want));
        /* exactly fitting, one byte short */
        assert_int_equal(kb_jval_str(v, out, strlen(want) + 1, NULL), 0);
        assert_int_equal(kb_jval_str(v, out, strlen(want), NULL), -1);
        assert_string_equal(out, "");
        /* the span's length always fits */
        {
                char *big = malloc(v.len);
                assert_non_null(big);
                assert_int_equal(kb_jval_str(v, big, v.len, NULL), 0);
                free(big);
        }
        /* a NUL character, no string, absent */
        assert_int_equal(
            kb_jval_str(kb_jview_get(&jv, "z"), out, sizeof(out), NULL), -1);
        assert_int_equal(
            kb_jval_str(kb_jview_get(&jv, "n"), out, sizeof(out), NULL), -1);
        assert_int_equal(
            kb_jval_str(kb_jview_get(&jv, "x"), out, sizeof(out), NULL), -1);
        assert_int_equal(
            kb_jval_str(kb_jview_get(&jv, "e"), out, sizeof(out), &len), 0);
        assert_string_equal(out, "");
        assert_int_equal(len, 0);
        kb_jview_clear(&jv);
}

/* A string without escapes read where it lies; with one, refused. */
static void test_str_raw(void **state)
{
        const char *doc =
            "{\"p\":\"plain \xc3\xa9 text\",\"e\":\"\",\"q\":\"a\\/b\","
            "\"n\":12,\"o\":{\"k\":\"v\"}}";
        kb_jview_t jv;
        const char *s = NULL;
        size_t len = 99;

        (void)state;
        init_ok(&jv, doc);
        assert_int_equal(kb_jval_str_raw(kb_jview_get(&jv, "p"), &s, &len), 0);
        assert_ptr_equal(s, doc + 6);
        assert_int_equal(len, strlen("plain \xc3\xa9 text"));
        assert_memory_equal(s, "plain \xc3\xa9 text", len);
        assert_int_equal(kb_jval_str_raw(kb_jview_get(&jv, "e"), &s, &len), 0);
        assert_int_equal(len, 0);
        /* an escape, no string, absent */
        s = NULL;
        assert_int_equal(kb_jval_str_raw(kb_jview_get(&jv, "q"), &s, &len), -1);
        assert_int_equal(kb_jval_str_raw(kb_jview_get(&jv, "n"), &s, &len), -1);
        assert_int_equal(kb_jval_str_raw(kb_jview_get(&jv, "o"), &s, &len), -1);
        assert_int_equal(kb_jval_str_raw(kb_jview_get(&jv, "x"), &s, &len), -1);
        assert_null(s);
        kb_jview_clear(&jv);
}

/* Many members: the view's member list leaves its inline room; big
 * objects are checked for duplicates by hash. */
static void test_many_members(void **state)
{
        kb_buf_t b = KB_BUF_INIT;
        kb_jview_t jv;
        char err[128], key[16];
        int i, n = 3 * KB_JVIEW_INLINE;

        (void)state;
        kb_buf_puts(&b, "{");
        for (i = 0; i < n; i++)
                kb_buf_printf(&b, "%s\"k%d\":{\"in%d\":[%d,{\"x\":1,\"y\":2}]}",
                              i ? "," : "", i, i, i);
        kb_buf_puts(&b, "}");
        assert_int_equal(kb_jview_init(&jv, b.data, b.len, 8, err, sizeof(err)),
                         0);
        assert_int_equal(jv.n, (size_t)n);
        for (i = 0; i < n; i += 7) {
                char want[64];
                snprintf(key, sizeof(key), "k%d", i);
                snprintf(want, sizeof(want),
                         "{\"in%d\":[%d,{\"x\":1,\"y\":2}]}", i, i);
                assert_span(kb_jview_get(&jv, key), want);
        }
        kb_jview_clear(&jv);
        /* a duplicate at the end, written another way */
        b.len--;
        kb_buf_puts(&b, ",\"k\\u0037\":1}");
        assert_int_equal(kb_jview_init(&jv, b.data, b.len, 8, err, sizeof(err)),
                         -1);
        assert_non_null(strstr(err, "duplicate"));
        assert_int_equal(jv.n, 0);
        kb_jview_clear(&jv);
        /* and deep down, in an object of its own */
        kb_buf_reset(&b);
        kb_buf_puts(&b, "[{\"a\":1},{");
        for (i = 0; i < 100; i++)
                kb_buf_printf(&b, "\"x%d\":%d,", i, i);
        kb_buf_puts(&b, "\"x4\\u0032\":0}]");
        assert_int_equal(kb_jview_init(&jv, b.data, b.len, 8, err, sizeof(err)),
                         -1);
        assert_non_null(strstr(err, "duplicate"));
        kb_jview_clear(&jv);
        kb_buf_free(&b, 0);
}

/* Keys equal up to a NUL are duplicates (json-c would merge them); keys
 * that differ are not. kb_json_parse() says the same (test_json.c). */
static void test_duplicates_as_json_c(void **state)
{
        static const char *const dup[] = {
                "{\"a\\u0000b\":1,\"a\\u0000c\":2}",
                "{\"a\\u0000b\":1,\"a\":2}",
                "{\"a\":1,\"a\\u0000\":2}",
                "{\"\\u00e9\":1,\"\xc3\xa9\":2}",
        };
        static const char *const ok[] = {
                "{\"a\":1,\"a\\u0001\":2}",
                "{\"\\u00e9\":1,\"\\u00e8\":2}",
                "{\"a\":{\"a\":1},\"b\":{\"a\":1}}",
        };
        kb_jview_t jv;
        char err[128];
        size_t i;

        (void)state;
        for (i = 0; i < KB_ARRAY_SIZE(dup); i++) {
                json_object *o =
                    kb_json_parse(dup[i], strlen(dup[i]), 8, NULL, 0);
                assert_null(o);
                assert_int_equal(kb_jview_init(&jv, dup[i], strlen(dup[i]), 8,
                                               err, sizeof(err)),
                                 -1);
                assert_non_null(strstr(err, "duplicate"));
                kb_jview_clear(&jv);
        }
        for (i = 0; i < KB_ARRAY_SIZE(ok); i++) {
                json_object *o =
                    kb_json_parse(ok[i], strlen(ok[i]), 8, NULL, 0);
                assert_non_null(o);
                json_object_put(o);
                init_ok(&jv, ok[i]);
                kb_jview_clear(&jv);
        }
}

static void test_refusals(void **state)
{
        kb_jview_t jv;
        char err[128];

        (void)state;
        assert_int_equal(kb_jview_init(&jv, NULL, 0, 8, err, sizeof(err)), -1);
        assert_int_equal(kb_jview_init(&jv, "{}", 0, 8, err, sizeof(err)), -1);
        assert_int_equal(kb_jview_init(&jv, "[[1]]", 5, 1, err, sizeof(err)),
                         -1);
        assert_non_null(strstr(err, "deeply"));
        assert_int_equal(kb_jview_init(&jv, "{\"a\":1} x", 9, 8, NULL, 0), -1);
        assert_null(jv.root.p);
        kb_jview_clear(&jv);
        kb_jview_clear(NULL);
        /* reusable after a clear */
        init_ok(&jv, "{\"a\":1}");
        kb_jview_clear(&jv);
        init_ok(&jv, "{\"b\":2}");
        assert_span(kb_jview_get(&jv, "b"), "2");
        kb_jview_clear(&jv);
}

/* kb_jview_pick() finds what kb_jview_get() finds, escaped keys too */
static void test_pick(void **state)
{
        static const char doc[] =
            "{\"share_id\":\"s\",\"r\\u0065f\":\"x\",\"until\":5,\"n\":null}";
        static const char *const names[] = { "until", "ref", "share_id",
                                             "absent", "n" };
        kb_jval_t v[5];
        kb_jview_t jv;
        size_t i;

        (void)state;
        assert_int_equal(kb_jview_init(&jv, doc, sizeof(doc) - 1, 4, NULL, 0),
                         0);
        kb_jview_pick(&jv, names, 5, v);
        for (i = 0; i < 5; i++) {
                kb_jval_t g = kb_jview_get(&jv, names[i]);
                assert_ptr_equal(v[i].p, g.p);
                assert_int_equal(v[i].len, g.len);
        }
        assert_non_null(v[1].p);
        assert_null(v[3].p);
        kb_jview_clear(&jv);
}

/* kb_jval_i64() reads what kb_json_get_i64() reads */
static void test_i64(void **state)
{
        static const struct {
                const char *num;
                int ok;
                int64_t want;
        } c[] = {
                { "0", 1, 0 },
                { "-0", 1, 0 },
                { "42", 1, 42 },
                { "-42", 1, -42 },
                { "9223372036854775807", 1, INT64_MAX },
                { "9223372036854775808", 0, 0 },
                { "-9223372036854775807", 1, -INT64_MAX },
                { "-9223372036854775808", 0, 0 },
                { "18446744073709551616", 0, 0 },
                { "1.0", 0, 0 },
                { "1e3", 0, 0 },
                { "\"7\"", 0, 0 },
                { "true", 0, 0 },
        };
        char doc[64];
        size_t i;

        (void)state;
        for (i = 0; i < sizeof(c) / sizeof(c[0]); i++) {
                kb_jview_t jv;
                int64_t v = 0;
                snprintf(doc, sizeof(doc), "{\"v\":%s}", c[i].num);
                assert_int_equal(
                    kb_jview_init(&jv, doc, strlen(doc), 4, NULL, 0), 0);
                assert_int_equal(kb_jval_i64(kb_jview_get(&jv, "v"), &v),
                                 c[i].ok ? 0 : -1);
                if (c[i].ok)
                        assert_true(v == c[i].want);
                kb_jview_clear(&jv);
                /* the tree says the same */
                {
                        json_object *o =
                            kb_json_parse(doc, strlen(doc), 4, NULL, 0);
                        int64_t w = 0;
                        assert_non_null(o);
                        assert_int_equal(kb_json_get_i64(o, "v", &w),
                                         c[i].ok ? 0 : -1);
                        assert_true(w == v);
                        json_object_put(o);
                }
        }
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_pick),
                cmocka_unit_test(test_i64),
                cmocka_unit_test(test_root_members),
                cmocka_unit_test(test_iterate),
                cmocka_unit_test(test_key_is),
                cmocka_unit_test(test_str),
                cmocka_unit_test(test_str_raw),
                cmocka_unit_test(test_many_members),
                cmocka_unit_test(test_duplicates_as_json_c),
                cmocka_unit_test(test_refusals),
        };

        return cmocka_run_group_tests(tests, NULL, NULL);
}
