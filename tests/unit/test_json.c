/* test_json.c -- unit tests for json.c: strict parsing, duplicate keys, getters
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <errno.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "json.h"
#include "jview.h"
#include "kyc_bridge.h"
#include "util.h"

/* kb_json_parse(), and the view (jview.h) must agree: it accepts what the
 * tree parser accepts and refuses what it refuses (but a top-level null,
 * which json-c has no object for), with the same reason. */
static json_object *parse_n(const char *s, size_t len, int depth, char *err,
                            size_t errsz)
{
        json_object *o = kb_json_parse(s, len, depth, err, errsz);
        char verr[256] = "";
        kb_jview_t jv;
        int vr = kb_jview_init(&jv, s, len, depth, verr, sizeof(verr));

        if (o && vr != 0)
                fail_msg("the view refused <%.*s>: %s", (int)len, s, verr);
        if (!o && vr == 0 && kb_jval_type(jv.root) != KB_JV_NULL)
                fail_msg("the view accepted <%.*s>", (int)len, s);
        if (!o && vr != 0 && err && strcmp(err, verr))
                fail_msg("<%.*s>: reasons differ: '%s' / '%s'", (int)len, s,
                         err, verr);
        kb_jview_clear(&jv);
        return o;
}

/* Must parse; returns the object. */
static json_object *must_parse(const char *s, int depth)
{
        char err[256] = "";
        json_object *o = parse_n(s, strlen(s), depth, err, sizeof(err));

        if (!o)
                fail_msg("rejected valid JSON <%s>: %s", s, err);
        return o;
}

/* Must be rejected; the reason must be non-empty and must not quote the
 * input. Returns nothing; the reason goes to @p why when given. */
static void must_reject_n(const char *s, size_t len, int depth, char *why,
                          size_t whysz)
{
        char err[256] = "";
        json_object *o = parse_n(s, len, depth, err, sizeof(err));

        if (o) {
                json_object_put(o);
                fail_msg("accepted invalid JSON <%.*s>", (int)len, s);
        }
        assert_true(err[0] != '\0');
        if (why)
                kb_strlcpy(why, err, whysz);
}

static void must_reject(const char *s)
{
        must_reject_n(s, strlen(s), 16, NULL, 0);
}

/* ---------------------------------------------------------------- valid */

static void test_valid_documents(void **state)
{
        static const struct {
                const char *in, *out;
        } ok[] = {
                { "{}", "{}" },
                { "[]", "[]" },
                { " \t\r\n{ } \n\r\t ", "{}" },
                { "{\"a\":1,\"b\":[true,false,null],\"c\":{\"d\":\"e\"}}",
                  "{\"a\":1,\"b\":[true,false,null],\"c\":{\"d\":\"e\"}}" },
                { "[0,-0,1,-1,12.5,-0.25,1e3,1E-3,2.5e+10]",
                  "[0,0,1,-1,12.5,-0.25,1e3,1E-3,2.5e+10]" },
                { "{\"\":\"\"}", "{\"\":\"\"}" },
                { "[\"\\\"\\\\\\/\\b\\f\\n\\r\\t\"]",
                  "[\"\\\"\\\\/\\b\\f\\n\\r\\t\"]" },
                { "[\"\\u00e9\\u20AC\\ud83d\\ude00\"]",
                  "[\"\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80\"]" },
                { "[\"\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80\xef\xbf\xbf\"]",
                  "[\"\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80\xef\xbf\xbf\"]" },
                { "[\"\x7f\"]", "[\"\x7f\"]" },
                /* RFC 8259: any value at the top level */
                { "123", "123" },
                { "-7", "-7" },
                { "1.5", "1.5" },
                { "0", "0" },
                { "true", "true" },
                { "false", "false" },
                { "\"str\"", "\"str\"" },
                { " 42 ", "42" },
                /* braces, quotes and commas inside strings do not confuse
                 * the key counting */
                { "{\"{,\":1,\"}\":2,\"a\\\"b\":3}",
                  "{\"{,\":1,\"}\":2,\"a\\\"b\":3}" },
                { "{\"a\":\"\\\",\\\"a\\\":1\"}",
                  "{\"a\":\"\\\",\\\"a\\\":1\"}" },
                { "[{\"a\":1},{\"a\":2}]", "[{\"a\":1},{\"a\":2}]" },
                { "{\"a\":{\"a\":{\"a\":1}}}", "{\"a\":{\"a\":{\"a\":1}}}" },
                { "{\"a\":1,\"A\":2}", "{\"a\":1,\"A\":2}" },
        };
        size_t i, len;

        (void)state;
        for (i = 0; i < KB_ARRAY_SIZE(ok); i++) {
                json_object *o = must_parse(ok[i].in, 16);
                const char *s = kb_json_str(o, &len);
                assert_string_equal(s, ok[i].out);
                assert_int_equal(len, strlen(ok[i].out));
                json_object_put(o);
        }
}

/* ----------------------------------------------------------- duplicates */

static void test_duplicate_keys(void **state)
{
        static const char *const dups[] = {
                "{\"a\":1,\"a\":2}",
                "{\"a\":1,\"a\":1}",
                "{\"\":1,\"\":2}",
                "{\"a\":1,\"b\":2,\"a\":3}",
                /* nested: in an object, in an array, deep down */
                "{\"x\":{\"a\":1,\"a\":2}}",
                "[1,{\"a\":1,\"a\":2}]",
                "[{\"a\":1},{\"b\":1,\"b\":2}]",
                "{\"x\":[{\"y\":{\"z\":[{\"k\":1,\"k\":2}]}}]}",
                /* the duplicate comes after a nested object */
                "{\"a\":{\"p\":1,\"q\":2},\"b\":3,\"a\":4}",
                "{\"a\":{\"p\":{\"q\":1}},\"a\":{\"p\":{\"q\":1}}}",
                /* discarded value is bigger / smaller than the kept one */
                "{\"a\":{\"x\":1,\"y\":2,\"z\":3},\"a\":{}}",
                "{\"a\":{},\"a\":{\"x\":1,\"y\":2,\"z\":3}}",
                /* keys that differ only by escaping */
                "{\"a\":1,\"\\u0061\":2}",
                "{\"\\u0061\":1,\"a\":2}",
                "{\"a/\":1,\"a\\/\":2}",
                "{\"\xc3\xa9\":1,\"\\u00e9\":2}",
                "{\"\\u00E9\":1,\"\\u00e9\":2}",
                "{\"\\ud83d\\ude00\":1,\"\xf0\x9f\x98\x80\":2}",
                "{\"tab\\t\":1,\"tab\\u0009\":2}",
                "{\"x\":[{\"k\":1},{\"n\":{\"\\u006b\":1,\"k\":2}}]}",
        };
        size_t i;

        (void)state;
        for (i = 0; i < KB_ARRAY_SIZE(dups); i++) {
                char why[256];
                must_reject_n(dups[i], strlen(dups[i]), 16, why, sizeof(why));
                if (!strstr(why, "duplicate"))
                        fail_msg("<%s>: reason '%s' does not say duplicate",
                                 dups[i], why);
        }
}

/* --------------------------------------------------------------- reject */

static void test_trailing_data(void **state)
{
        static const char *const bad[] = {
                "{} x", "{}}", "{}{}",       "[1] [2]", "1 2",   "\"a\" \"b\"",
                "{},",  "[]]", "true false", "null;",   "{} \f",
        };
        size_t i;

        (void)state;
        for (i = 0; i < KB_ARRAY_SIZE(bad); i++)
                must_reject(bad[i]);
}

static void test_nul_bytes(void **state)
{
        (void)state;
        must_reject_n("{}\0", 3, 16, NULL, 0);
        must_reject_n("{\"a\0\":1}", 8, 16, NULL, 0);
        must_reject_n("[\"a\0b\"]", 7, 16, NULL, 0);
        must_reject_n("\0", 1, 16, NULL, 0);
}

static void test_invalid_utf8(void **state)
{
        static const char *const bad[] = {
                "[\"\xff\"]",                 /* never valid */
                "[\"\x80\"]",                 /* lone continuation */
                "[\"\xc3\"]",                 /* truncated 2-byte */
                "[\"\xe2\x82\"]",             /* truncated 3-byte */
                "[\"\xf0\x9f\x98\"]",         /* truncated 4-byte */
                "[\"\xc0\xaf\"]",             /* overlong '/' */
                "[\"\xc1\xbf\"]",             /* overlong */
                "[\"\xe0\x80\xaf\"]",         /* overlong 3-byte */
                "[\"\xf0\x80\x80\xaf\"]",     /* overlong 4-byte */
                "[\"\xed\xa0\x80\"]",         /* UTF-16 surrogate D800 */
                "[\"\xed\xbf\xbf\"]",         /* surrogate DFFF */
                "[\"\xf4\x90\x80\x80\"]",     /* above U+10FFFF */
                "[\"\xf8\x88\x80\x80\x80\"]", /* 5-byte form */
                "{\"\xff\":1}",               /* in a key */
                "[\"ok\",\"\xc3\x28\"]",      /* bad continuation */
                "[1]\xc3\xa9",                /* non-ASCII outside strings */
                "\xef\xbb\xbf{}",             /* byte order mark */
        };
        size_t i;

        (void)state;
        for (i = 0; i < KB_ARRAY_SIZE(bad); i++)
                must_reject(bad[i]);
}

/* Every proper prefix of a valid document is rejected (and does not crash
 * or leak). */
static void test_truncated(void **state)
{
        static const char *const docs[] = {
                "{\"a\":[1,2.5e-3,{\"b\":\"c\\u00e9\\\"\"}],\"d\":true,"
                "\"e\":null,\"f\":false}",
                "[\"\xf0\x9f\x98\x80\",-12]",
                "\"\\ud83d\\ude00\"",
        };
        size_t i, n;

        (void)state;
        for (i = 0; i < KB_ARRAY_SIZE(docs); i++) {
                json_object *o = must_parse(docs[i], 16);
                json_object_put(o);
                for (n = 0; n < strlen(docs[i]); n++) {
                        /* a number prefix like "[...,-1" is still a prefix
                         * of an array: always incomplete */
                        must_reject_n(docs[i], n, 16, NULL, 0);
                }
        }
        {
                char why[256];
                must_reject_n("{\"a\":", 5, 16, why, sizeof(why));
                assert_non_null(strstr(why, "truncated"));
        }
}

/* Nesting: exactly max_depth levels parse, one more does not. */
static void test_depth(void **state)
{
        char buf[1200];
        int depth, levels;

        (void)state;
        for (depth = 1; depth <= 10; depth++) {
                for (levels = depth; levels <= depth + 1; levels++) {
                        size_t o = 0;
                        int i;
                        json_object *obj;
                        char err[128] = "";
                        /* alternate arrays and objects */
                        for (i = 0; i < levels; i++)
                                o += (size_t)snprintf(buf + o, sizeof(buf) - o,
                                                      "%s",
                                                      i % 2 ? "{\"k\":" : "[");
                        o += (size_t)snprintf(buf + o, sizeof(buf) - o, "1");
                        for (i = levels - 1; i >= 0; i--)
                                o += (size_t)snprintf(buf + o, sizeof(buf) - o,
                                                      "%s", i % 2 ? "}" : "]");
                        obj = kb_json_parse(buf, o, depth, err, sizeof(err));
                        if (levels == depth && !obj)
                                fail_msg("%d levels rejected at max_depth %d: "
                                         "%s",
                                         levels, depth, err);
                        if (levels > depth && obj)
                                fail_msg("%d levels accepted at max_depth %d",
                                         levels, depth);
                        json_object_put(obj);
                }
        }
        /* out-of-range max_depth falls back to 64 */
        {
                size_t o = 0;
                int i;
                for (i = 0; i < 65; i++)
                        buf[o++] = '[';
                for (i = 0; i < 65; i++)
                        buf[o++] = ']';
                must_reject_n(buf, o, 0, NULL, 0);
                must_reject_n(buf, o, 1000, NULL, 0);
                must_reject_n(buf + 1, o - 2, 16, NULL, 0);
                {
                        json_object *obj =
                            kb_json_parse(buf + 1, o - 2, 0, NULL, 0);
                        assert_non_null(obj);
                        json_object_put(obj);
                }
        }
        /* deep nesting far beyond any limit is refused quickly, no crash */
        {
                size_t n = 100000, i;
                char *deep = malloc(n);
                assert_non_null(deep);
                for (i = 0; i < n; i++)
                        deep[i] = '[';
                must_reject_n(deep, n, 256, NULL, 0);
                free(deep);
        }
}

/* A top-level null is valid JSON, but json-c has no object for it and NULL
 * means failure here: it is refused with a reason that says so. */
static void test_top_level_null(void **state)
{
        char why[256];

        (void)state;
        must_reject_n(" null ", 6, 4, why, sizeof(why));
        assert_non_null(strstr(why, "null"));
}

static void test_non_rfc_syntax(void **state)
{
        static const char *const bad[] = {
                /* comments */
                "{} // comment",
                "/* c */ {}",
                "{\"a\":1 /* c */}",
                "# c\n{}",
                /* single quotes */
                "{'a':1}",
                "{\"a\":'x'}",
                "['x']",
                /* trailing commas */
                "[1,]",
                "{\"a\":1,}",
                "[1,,2]",
                "[,1]",
                "{,}",
                /* numbers */
                "[01]",
                "[-01]",
                "[+1]",
                "[.5]",
                "[1.]",
                "[-]",
                "[1e]",
                "[1e+]",
                "[0x10]",
                "[NaN]",
                "[Infinity]",
                "[-Infinity]",
                "[1.5.5]",
                "[--1]",
                "[1_000]",
                /* literals */
                "[True]",
                "[tru]",
                "[nul]",
                "[falsey]",
                "[undefined]",
                /* strings */
                "[\"a\tb\"]",
                "[\"a\nb\"]",
                "[\"\x01\"]",
                "[\"\\x41\"]",
                "[\"\\u12\"]",
                "[\"\\u12g4\"]",
                "[\"\\'\"]",
                "[\"\\U0041\"]",
                "[\"unterminated]",
                /* surrogate escapes must pair up */
                "[\"\\ud800\"]",
                "[\"\\udc00\"]",
                "[\"\\ud800\\u0041\"]",
                "[\"\\ude00\\ud83d\"]",
                /* structure */
                "{a:1}",
                "{\"a\" 1}",
                "{\"a\":}",
                "{\"a\"}",
                "{1:2}",
                "[1 2]",
                "{\"a\":1 \"b\":2}",
                "]",
                "}",
                ":",
                ",",
                "",
                "   ",
                "[",
                "{",
        };
        size_t i;

        (void)state;
        for (i = 0; i < KB_ARRAY_SIZE(bad); i++)
                must_reject(bad[i]);
}

static void test_errors_do_not_quote_input(void **state)
{
        static const char *const bad[] = {
                "{\"SECRETVALUE\":1,\"SECRETVALUE\":2}",
                "[\"SECRETVALUE\" x]",
                "{\"a\":\"SECRETVALUE\"} SECRETVALUE",
                "[\"SECRETVALUE\xff\"]",
                "{\"a\":SECRETVALUE}",
        };
        size_t i;

        (void)state;
        for (i = 0; i < KB_ARRAY_SIZE(bad); i++) {
                char why[256];
                must_reject_n(bad[i], strlen(bad[i]), 16, why, sizeof(why));
                assert_null(strstr(why, "SECRET"));
        }
        /* no error buffer at all is fine */
        assert_null(kb_json_parse("[", 1, 4, NULL, 0));
        assert_null(kb_json_parse(NULL, 0, 4, NULL, 0));
        {
                char why[8] = "zzzzzzz";
                assert_null(kb_json_parse("[", 1, 4, why, sizeof(why)));
                assert_true(strlen(why) < sizeof(why));
        }
}

/* ------------------------------------------------------------- getters */

static void test_getters(void **state)
{
        json_object *o = must_parse(
            "{\"s\":\"str\",\"i\":-42,\"b\":true,\"f\":false,\"d\":1.0,"
            "\"n\":null,\"a\":[1],\"o\":{\"x\":1},\"si\":\"1\","
            "\"e\":1e2}",
            4);
        json_object *arr = must_parse("[1,2]", 4);
        int64_t v = 7;
        int b = 7;

        (void)state;
        assert_string_equal(kb_json_get_str(o, "s"), "str");
        assert_null(kb_json_get_str(o, "i"));
        assert_null(kb_json_get_str(o, "b"));
        assert_null(kb_json_get_str(o, "n"));
        assert_null(kb_json_get_str(o, "o"));
        assert_null(kb_json_get_str(o, "missing"));
        assert_null(kb_json_get_str(arr, "s"));
        assert_null(kb_json_get_str(NULL, "s"));

        assert_int_equal(kb_json_get_i64(o, "i", &v), 0);
        assert_true(v == -42);
        v = 7;
        assert_int_equal(kb_json_get_i64(o, "s", &v), -1);
        assert_int_equal(kb_json_get_i64(o, "si", &v), -1);
        assert_int_equal(kb_json_get_i64(o, "d", &v), -1);
        assert_int_equal(kb_json_get_i64(o, "e", &v), -1);
        assert_int_equal(kb_json_get_i64(o, "b", &v), -1);
        assert_int_equal(kb_json_get_i64(o, "n", &v), -1);
        assert_int_equal(kb_json_get_i64(o, "missing", &v), -1);
        assert_int_equal(kb_json_get_i64(arr, "i", &v), -1);
        assert_true(v == 7);

        assert_int_equal(kb_json_get_bool(o, "b", &b), 0);
        assert_int_equal(b, 1);
        assert_int_equal(kb_json_get_bool(o, "f", &b), 0);
        assert_int_equal(b, 0);
        b = 7;
        assert_int_equal(kb_json_get_bool(o, "i", &b), -1);
        assert_int_equal(kb_json_get_bool(o, "s", &b), -1);
        assert_int_equal(kb_json_get_bool(o, "n", &b), -1);
        assert_int_equal(kb_json_get_bool(o, "missing", &b), -1);
        assert_int_equal(b, 7);

        /* json-c represents null as NULL: a null member reads as absent */
        assert_null(kb_json_get(o, "n"));
        assert_non_null(kb_json_get(o, "o"));
        assert_true(json_object_is_type(kb_json_get(o, "a"), json_type_array));
        assert_null(kb_json_get(o, "missing"));
        assert_null(kb_json_get(arr, "a"));
        assert_null(kb_json_get(NULL, "a"));
        json_object_put(arr);
        json_object_put(o);
}

/* json-c clamps out-of-range integers; the getter must not return a
 * clamped value as if it had been in the document. */
static void test_get_i64_range(void **state)
{
        static const struct {
                const char *num;
                int ok;
                int64_t want;
        } cases[] = {
                { "9223372036854775807", 1, INT64_MAX },
                { "-9223372036854775807", 1, -INT64_MAX },
                { "0", 1, 0 },
                { "-0", 1, 0 },
                { "9223372036854775808", 0, 0 },
                { "18446744073709551615", 0, 0 },
                { "18446744073709551616", 0, 0 },
                { "99999999999999999999999", 0, 0 },
                { "-9223372036854775809", 0, 0 },
                { "-99999999999999999999999", 0, 0 },
        };
        size_t i;

        (void)state;
        for (i = 0; i < KB_ARRAY_SIZE(cases); i++) {
                char doc[128];
                json_object *o;
                int64_t v = 12345;
                int r;
                kb_snprintf(doc, sizeof(doc), "{\"n\":%s}", cases[i].num);
                o = must_parse(doc, 4);
                r = kb_json_get_i64(o, "n", &v);
                if (cases[i].ok && (r != 0 || v != cases[i].want))
                        fail_msg("%s: r=%d v=%lld", cases[i].num, r,
                                 (long long)v);
                if (!cases[i].ok && r != -1)
                        fail_msg("%s accepted as %lld", cases[i].num,
                                 (long long)v);
                json_object_put(o);
        }
}

/* An escaped NUL cannot be represented in a C string: the string getter
 * refuses it rather than returning a silently shortened value. */
static void test_get_str_embedded_nul(void **state)
{
        json_object *o = must_parse("{\"a\":\"x\\u0000y\",\"b\":\"\"}", 4);

        (void)state;
        assert_null(kb_json_get_str(o, "a"));
        assert_string_equal(kb_json_get_str(o, "b"), "");
        json_object_put(o);
}

static void test_serialise_and_add(void **state)
{
        json_object *o =
            must_parse(" { \"a\" : [ 1 , 2 ] , \"url\" : \"http://x/y\" } ", 4);
        size_t len = 0;
        const char *s;
        int64_t v;

        (void)state;
        s = kb_json_str(o, &len);
        assert_string_equal(s, "{\"a\":[1,2],\"url\":\"http://x/y\"}");
        assert_int_equal(len, strlen(s));

        assert_int_equal(kb_json_add_str(o, "k", "v\"q"), 0);
        assert_int_equal(kb_json_add_str(o, "none", NULL), 0);
        assert_null(kb_json_get(o, "none"));
        assert_int_equal(kb_json_add_i64(o, "big", INT64_MAX), 0);
        assert_int_equal(kb_json_add_i64(o, "neg", -5), 0);
        assert_int_equal(kb_json_add_str(o, "k", "replaced"), 0);
        assert_string_equal(kb_json_get_str(o, "k"), "replaced");
        assert_int_equal(kb_json_get_i64(o, "big", &v), 0);
        assert_true(v == INT64_MAX);
        assert_int_equal(kb_json_get_i64(o, "neg", &v), 0);
        assert_true(v == -5);
        s = kb_json_str(o, NULL);
        assert_string_equal(s, "{\"a\":[1,2],\"url\":\"http://x/y\",\"k\":"
                               "\"replaced\",\"big\":9223372036854775807,"
                               "\"neg\":-5}");
        /* what we serialise, we parse back */
        {
                json_object *back = must_parse(s, 4);
                assert_true(json_object_equal(back, o));
                json_object_put(back);
        }
        json_object_put(o);
}

/* Mutations of a valid document: whatever is accepted must re-serialise to
 * something that is accepted again; nothing may crash or leak (ASan). */
static void test_mutations(void **state)
{
        static const char seed[] =
            "{\"share_token\":\"eyJ.x.y\",\"n\":[1,-2.5e3,true,null],"
            "\"o\":{\"\\u00e9\":\"\xc3\xa9\",\"k\":\"\\\"\"}}";
        static const char alphabet[] = "{}[]\":,\\u0aeE.-+ \x80\xc3\xff\0'/";
        char buf[sizeof(seed)];
        uint32_t rnd = 12345;
        int iter, accepted = 0;

        (void)state;
        for (iter = 0; iter < 20000; iter++) {
                size_t len = sizeof(seed) - 1, pos;
                json_object *o;
                memcpy(buf, seed, len);
                rnd = rnd * 1103515245u + 12345u;
                pos = (rnd >> 8) % len;
                rnd = rnd * 1103515245u + 12345u;
                buf[pos] = alphabet[(rnd >> 8) % (sizeof(alphabet) - 1)];
                if (iter % 3 == 0) {
                        rnd = rnd * 1103515245u + 12345u;
                        len = (rnd >> 8) % (len + 1);
                }
                o = kb_json_parse(buf, len, 8, NULL, 0);
                if (o) {
                        size_t sl;
                        const char *s = kb_json_str(o, &sl);
                        json_object *again = kb_json_parse(s, sl, 8, NULL, 0);
                        if (!again)
                                fail_msg("re-serialised form rejected: %s", s);
                        json_object_put(again);
                        json_object_put(o);
                        accepted++;
                }
        }
        /* the mutations are not all fatal (the test exercises both paths) */
        assert_true(accepted > 100);
        assert_true(accepted < 20000);
}

static void test_large_document(void **state)
{
        kb_buf_t b = KB_BUF_INIT;
        json_object *o;
        int i;

        (void)state;
        kb_buf_puts(&b, "{\"items\":[");
        for (i = 0; i < 50000; i++)
                kb_buf_printf(&b, "%s{\"id\":%d,\"name\":\"n%d\"}",
                              i ? "," : "", i, i);
        kb_buf_puts(&b, "]}");
        o = kb_json_parse(b.data, b.len, 8, NULL, 0);
        assert_non_null(o);
        assert_int_equal(json_object_array_length(kb_json_get(o, "items")),
                         50000);
        json_object_put(o);
        /* one duplicate at the very end is still found */
        b.len -= 2;
        kb_buf_puts(&b, ",{\"id\":1,\"id\":2}]}");
        assert_null(kb_json_parse(b.data, b.len, 8, NULL, 0));
        kb_buf_free(&b, 0);
}

/* ------------------------------------------------ the one string escaper */

static void put_str_ok(const char *in, size_t len, int mode, const char *want)
{
        kb_buf_t b = KB_BUF_INIT;

        assert_int_equal(kb_buf_puts(&b, "x"), 0);
        assert_int_equal(kb_json_put_string_ex(&b, in, len, mode), 0);
        assert_string_equal(b.data + 1, want);
        kb_buf_free(&b, 0);
}

static void test_put_string(void **state)
{
        static const int modes[] = { KB_JSON_UTF8_REFUSE,
                                     KB_JSON_UTF8_REPLACE };
        kb_buf_t b = KB_BUF_INIT;
        size_t i, cap;

        (void)state;
        /* valid input: the same bytes in both modes (Python's json.dumps
         * with ensure_ascii=False) */
        for (i = 0; i < KB_ARRAY_SIZE(modes); i++) {
                put_str_ok("", 0, modes[i], "\"\"");
                put_str_ok("plain / text", 12, modes[i], "\"plain / text\"");
                put_str_ok("q\"b\\", 4, modes[i], "\"q\\\"b\\\\\"");
                put_str_ok("\b\f\n\r\t", 5, modes[i], "\"\\b\\f\\n\\r\\t\"");
                put_str_ok("\x01\x1f\x7f", 3, modes[i],
                           "\"\\u0001\\u001f\x7f\"");
                put_str_ok("a\0b", 3, modes[i], "\"a\\u0000b\"");
                put_str_ok("\xc3\xa9\xe2\x80\xa8\xf0\x9f\x98\x80", 9, modes[i],
                           "\"\xc3\xa9\xe2\x80\xa8\xf0\x9f\x98\x80\"");
        }
        /* invalid UTF-8, replaced: one U+FFFD per bad byte, the rest kept */
        put_str_ok("a\xff"
                   "b",
                   3, KB_JSON_UTF8_REPLACE, "\"a\\ufffdb\"");
        put_str_ok("\xc3(", 2, KB_JSON_UTF8_REPLACE, "\"\\ufffd(\"");
        put_str_ok("\xed\xa0\x80", 3, KB_JSON_UTF8_REPLACE,
                   "\"\\ufffd\\ufffd\\ufffd\"");
        put_str_ok("\xc0\xaf\n", 3, KB_JSON_UTF8_REPLACE,
                   "\"\\ufffd\\ufffd\\n\"");
        put_str_ok("end \xe2\x82", 6, KB_JSON_UTF8_REPLACE,
                   "\"end \\ufffd\\ufffd\"");
        /* refused: -1, EILSEQ, the buffer as it was */
        {
                static const char *const bad[] = {
                        "\xff",
                        "a\x80",
                        "\xc3",
                        "\xe2\x82",
                        "\xc0\xaf",
                        "\xed\xa0\x80",
                        "\xf4\x90\x80\x80",
                        "ok\xf8",
                };
                for (i = 0; i < KB_ARRAY_SIZE(bad); i++) {
                        kb_buf_reset(&b);
                        assert_int_equal(kb_buf_puts(&b, "keep"), 0);
                        errno = 0;
                        assert_int_equal(
                            kb_json_put_string(&b, bad[i], strlen(bad[i])), -1);
                        assert_int_equal(errno, EILSEQ);
                        assert_int_equal(b.len, 4);
                        assert_string_equal(b.data, "keep");
                }
        }
        /* 6 * len + 2 reserved: never reallocates (vendor.c's token body) */
        kb_buf_free(&b, 0);
        assert_int_equal(kb_buf_reserve(&b, 6 * 4 + 2), 0);
        cap = b.cap;
        {
                char *before = b.data;
                assert_int_equal(kb_json_put_string(&b, "\x01\x02\x03\x04", 4),
                                 0);
                assert_ptr_equal(b.data, before);
                assert_int_equal(b.cap, cap);
                assert_string_equal(b.data, "\"\\u0001\\u0002\\u0003\\u0004\"");
        }
        kb_buf_free(&b, 0);
}

/* what the escaper writes reads back through the strict parser */
static void test_put_string_round_trip(void **state)
{
        unsigned char in[256];
        kb_buf_t b = KB_BUF_INIT;
        char err[128];
        json_object *o;
        size_t i;

        (void)state;
        for (i = 0; i < 128; i++)
                in[i] = (unsigned char)i;
        memcpy(in + 128, "\xc3\xa9\xef\xbf\xbf", 5);
        assert_int_equal(kb_json_put_string(&b, (const char *)in, 133), 0);
        o = kb_json_parse(b.data, b.len, 4, err, sizeof(err));
        assert_non_null(o);
        assert_int_equal(json_object_get_string_len(o), 133);
        assert_memory_equal(json_object_get_string(o), in, 133);
        json_object_put(o);
        kb_buf_free(&b, 0);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_valid_documents),
                cmocka_unit_test(test_duplicate_keys),
                cmocka_unit_test(test_trailing_data),
                cmocka_unit_test(test_nul_bytes),
                cmocka_unit_test(test_invalid_utf8),
                cmocka_unit_test(test_truncated),
                cmocka_unit_test(test_depth),
                cmocka_unit_test(test_top_level_null),
                cmocka_unit_test(test_non_rfc_syntax),
                cmocka_unit_test(test_errors_do_not_quote_input),
                cmocka_unit_test(test_getters),
                cmocka_unit_test(test_get_i64_range),
                cmocka_unit_test(test_get_str_embedded_nul),
                cmocka_unit_test(test_serialise_and_add),
                cmocka_unit_test(test_mutations),
                cmocka_unit_test(test_large_document),
                cmocka_unit_test(test_put_string),
                cmocka_unit_test(test_put_string_round_trip),
        };

        if (kb_init() != KB_OK)
                return 1;
        return cmocka_run_group_tests(tests, NULL, NULL);
}
