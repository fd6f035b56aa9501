/* test_session_view.c -- unit tests: the importer's text-built session
 * (summary and full) equals the json-c path's, and what each costs */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "importer.h"
#include "json.h"
#include "jview.h"
#include "kb_envelope.h"
#include "kyc_bridge.h"
#include "sandbox_data.h"
#include "util.h"

/* Serialised by json-c: equal text means equal members, order and values. */
static void assert_same_json(json_object *a, json_object *b, const char *what)
{
        const char *ta = kb_json_str(a, NULL), *tb;

        if (!json_object_equal(a, b))
                fail_msg("%s: trees differ", what);
        tb = kb_json_str(b, NULL);
        if (strcmp(ta, tb))
                fail_msg("%s: serialisations differ:\n%.400s\n%.400s", what, ta,
                         tb);
}

/* A string member read both ways. */
static void assert_same_str(json_object *tree, const kb_jview_t *jv,
                            const char *key)
{
        const char *t = kb_json_get_str(tree, key);
        kb_jval_t v = kb_jview_get(jv, key);
        char buf[512];

        if (!t) {
                assert_true(kb_jval_type(v) != KB_JV_STRING ||
                            kb_jval_str(v, buf, sizeof(buf), NULL) == -1);
                return;
        }
        assert_int_equal(kb_jval_str(v, buf, sizeof(buf), NULL), 0);
        assert_string_equal(buf, t);
}

/* The old path (tree, kb_session_summary(), kb_json_str()) and the new
 * one (view, kb_session_summary_put(), the raw text) agree on @p doc. */
static void check_equiv(const char *doc, size_t len, const char *what)
{
        char err[256] = "";
        json_object *tree = kb_json_parse(doc, len, 64, err, sizeof(err));
        json_object *old, *neu, *full;
        kb_buf_t out = KB_BUF_INIT;
        kb_jview_t jv;

        if (!tree)
                fail_msg("%s: not JSON: %s", what, err);
        assert_int_equal(kb_jview_init(&jv, doc, len, 64, err, sizeof(err)), 0);
        /* summary */
        old = kb_session_summary(tree);
        assert_non_null(old);
        assert_int_equal(kb_session_summary_put(&out, &jv), 0);
        neu = kb_json_parse(out.data, out.len, 64, err, sizeof(err));
        if (!neu)
                fail_msg("%s: the summary written is not JSON: %s", what, err);
        assert_same_json(old, neu, what);
        /* full: the session spliced in as it is */
        full = kb_json_parse(jv.root.p, jv.root.len, 64, err, sizeof(err));
        assert_non_null(full);
        assert_same_json(tree, full, what);
        /* what the record and the status index read */
        assert_same_str(tree, &jv, "session_id");
        assert_same_str(tree, &jv, "vendor_data");
        assert_same_str(tree, &jv, "status");
        {
                json_object *rv = kb_json_get(tree, "reviews");
                kb_jval_t vr = kb_jview_get(&jv, "reviews");
                if (rv && json_object_is_type(rv, json_type_array))
                        assert_int_equal(kb_jval_count(vr),
                                         json_object_array_length(rv));
                else
                        assert_true(kb_jval_type(vr) != KB_JV_ARRAY);
        }
        json_object_put(full);
        json_object_put(neu);
        json_object_put(old);
        json_object_put(tree);
        kb_buf_free(&out, 0);
        kb_jview_clear(&jv);
}

static char *read_vector(const char *name, size_t *len)
{
        char path[512], *buf = NULL;

        snprintf(path, sizeof(path), "%s/vectors/sessions/%s", KB_TEST_DATA_DIR,
                 name);
        if (kb_read_file(path, 1 << 22, &buf, len) == -1)
                fail_msg("cannot read %s", path);
        /* drop a final newline an editor may add */
        while (*len && buf[*len - 1] == '\n')
                (*len)--;
        return buf;
}

/* The real sandbox import answers in tests/vectors/sessions/. */
static const char *const vectors[] = { "import-kyc.json", "import-kyb.json" };

static void test_real_import_answers(void **state)
{
        size_t i, len;

        (void)state;
        for (i = 0; i < KB_ARRAY_SIZE(vectors); i++) {
                char *doc = read_vector(vectors[i], &len);
                check_equiv(doc, len, vectors[i]);
                free(doc);
        }
}

/* A synthetic session as the sandbox fills them, with the scalars of an
 * import answer and a review log. */
static char *synth(int kind, const char *status, uint64_t seed, size_t *len)
{
        json_object *s = json_object_new_object(), *rv, *r;
        kb_rng_t rng;
        char *txt;

        assert_non_null(s);
        kb_json_add_str(s, "session_id",
                        "3f0c6f7e-8a4b-4d2e-9c1a-2b3c4d5e6f70");
        kb_json_add_i64(s, "session_number", (int64_t)seed);
        kb_json_add_str(s, "status", status);
        kb_json_add_str(s, "vendor_data", "partner-7");
        json_object_object_add(s, "features", json_object_new_object());
        kb_rng_seed(&rng, seed);
        assert_int_equal(kb_sbx_synth_fill(s, kind, status, &rng), KB_OK);
        rv = json_object_new_array();
        r = json_object_new_object();
        kb_json_add_str(r, "new_status", status);
        kb_json_add_str(r, "created_at", "2026-12-05T16:19:34.5+02:00");
        json_object_array_add(rv, r);
        json_object_object_add(s, "reviews", rv);
        txt = strdup(kb_json_str(s, len));
        assert_non_null(txt);
        json_object_put(s);
        return txt;
}

static void test_synthetic_sessions(void **state)
{
        static const struct {
                int kind;
                const char *status;
        } v[] = {
                { KB_SESSION_USER, "Approved" },
                { KB_SESSION_USER, "Declined" },
                { KB_SESSION_USER, "In Review" },
                { KB_SESSION_BUSINESS, "APPROVED" },
                { KB_SESSION_BUSINESS, "DECLINED" },
                { KB_SESSION_BUSINESS, "IN_REVIEW" },
        };
        size_t i, len;
        uint64_t seed;

        (void)state;
        for (i = 0; i < KB_ARRAY_SIZE(v); i++)
                for (seed = 1; seed <= 5; seed++) {
                        char *doc = synth(v[i].kind, v[i].status, seed, &len);
                        check_equiv(doc, len, v[i].status);
                        free(doc);
                }
}

/* What the summary keeps and drops at the edges. */
static void test_edge_sessions(void **state)
{
        static const char *const docs[] = {
                /* nulls: kept at the top, dropped in elements */
                "{\"a\":null,\"b\":[null,1,\"x\",[1],{\"status\":null,"
                "\"score\":1.50,\"method\":{\"x\":1},\"role\":[1],\"type\":"
                "\"t\",\"total_hits\":-0,\"other\":1}],\"c\":{\"d\":1},"
                "\"e\":\"\\u00e9\\/\\n\\ud83d\\ude00\",\"f\":1e3,\"g\":true,"
                "\"h\":[],\"i\":[{}],\"j\":false}",
                /* kept members come in summary order, not the element's */
                "{\"l\":[{\"total_hits\":3,\"type\":\"x\",\"role\":\"r\","
                "\"method\":\"m\",\"score\":0.1,\"status\":\"S\"}]}",
                /* escaped keys */
                "{\"st\\u0061tus\":\"A\",\"arr\":[{\"st\\u0061tus\":\"B\","
                "\"\\u0073core\":2,\"\\/x\":1}]}",
                /* keys up to a NUL: json-c's keys */
                "{\"status\\u0000x\":\"A\",\"l\":[{\"type\\u0000y\":1}]}",
                /* numbers json-c clamps or keeps as written */
                "{\"n\":123456789012345678901234567890,\"m\":-"
                "9223372036854775809,"
                "\"x\":0.1,\"y\":1E+2,\"z\":-1.0e-5,\"l\":[{\"score\":1e400}]}",
                /* whitespace everywhere */
                " { \"a\" : [ { \"status\" : \"x\" , \"k\" : { } } , 2 ] ,\n"
                "\t\"b\" : \"c\" } ",
                /* not an object: an empty summary */
                "[1,2]",
                "\"str\"",
                "12",
                "{}",
        };
        size_t i;

        (void)state;
        for (i = 0; i < KB_ARRAY_SIZE(docs); i++)
                check_equiv(docs[i], strlen(docs[i]), docs[i]);
}

/* Many members at the top (the view's member list grows) and deep
 * nesting inside arrays. */
static void test_large_sessions(void **state)
{
        kb_buf_t b = KB_BUF_INIT;
        int i;

        (void)state;
        kb_buf_puts(&b, "{");
        for (i = 0; i < 300; i++)
                kb_buf_printf(&b,
                              "%s\"k%d\":[{\"status\":\"s%d\",\"score\":%d,"
                              "\"n\":{\"a\":[[{\"b\":%d}]]}}],\"v%d\":%d",
                              i ? "," : "", i, i, i, i, i, i);
        kb_buf_puts(&b, "}");
        check_equiv(b.data, b.len, "300 arrays");
        kb_buf_free(&b, 0);
}

/* Per-document cost of the old and the new way (printed; nothing about
 * time is asserted). */
static void time_doc(const char *name, const char *doc, size_t len)
{
        int n = 20000000 / (int)(len + 1000), i;
        kb_buf_t out = KB_BUF_INIT;
        int64_t t0;
        double us[4];
        int full;

        if (n < 50)
                n = 50;
        for (full = 0; full < 2; full++) {
                t0 = kb_mono_us();
                for (i = 0; i < n; i++) {
                        json_object *t = kb_json_parse(doc, len, 64, NULL, 0);
                        json_object *s =
                            full ? json_object_get(t) : kb_session_summary(t);
                        size_t l;
                        const char *txt = kb_json_str(s, &l);
                        assert_non_null(txt);
                        assert_non_null(kb_json_get_str(t, "session_id"));
                        (void)kb_json_get(t, "reviews");
                        json_object_put(s);
                        json_object_put(t);
                }
                us[full * 2] = (double)(kb_mono_us() - t0) / n;
                t0 = kb_mono_us();
                for (i = 0; i < n; i++) {
                        kb_jview_t jv;
                        char sid[64];
                        assert_int_equal(
                            kb_jview_init(&jv, doc, len, 64, NULL, 0), 0);
                        kb_buf_reset(&out);
                        if (full)
                                kb_buf_append(&out, jv.root.p, jv.root.len);
                        else
                                kb_session_summary_put(&out, &jv);
                        assert_int_equal(
                            kb_jval_str(kb_jview_get(&jv, "session_"
                                                          "id"),
                                        sid, sizeof(sid), NULL),
                            0);
                        (void)kb_jview_get(&jv, "reviews");
                        kb_jview_clear(&jv);
                }
                us[full * 2 + 1] = (double)(kb_mono_us() - t0) / n;
        }
        print_message("%s (%zu bytes, %d runs): summary %.1f -> %.1f us, "
                      "full %.1f -> %.1f us per document\n",
                      name, len, n, us[0], us[1], us[2], us[3]);
        kb_buf_free(&out, 0);
}

static void test_cost(void **state)
{
        size_t i, len;

        (void)state;
        for (i = 0; i < KB_ARRAY_SIZE(vectors); i++) {
                char *doc = read_vector(vectors[i], &len);
                time_doc(vectors[i], doc, len);
                free(doc);
        }
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_real_import_answers),
                cmocka_unit_test(test_synthetic_sessions),
                cmocka_unit_test(test_edge_sessions),
                cmocka_unit_test(test_large_sessions),
                cmocka_unit_test(test_cost),
        };

        return cmocka_run_group_tests(tests, NULL, NULL);
}
