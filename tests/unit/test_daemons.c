/* test_daemons.c -- the daemons' pure parts: share requests, session
 * summaries, vendor_data templates, the partner registry */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "conf.h"
#include "importer.h"
#include "issuer.h"
#include "json.h"
#include "kyc_bridge.h"
#include "partners.h"
#include "util.h"

#define SID "0b6f1f8e-2f59-4a43-9a1e-5d2b0c8a7e11"
#define APP "7d1c5b9a-3e2f-4c6d-8a9b-0e1f2a3b4c5d"

static int parse(const char *json, kb_share_req_t *r)
{
        char err[256];

        return kb_share_req_parse(json, strlen(json), r, err, sizeof(err));
}

static void test_share_request_valid(void **state)
{
        kb_share_req_t r;

        (void)state;
        assert_int_equal(parse("{\"share_id\":\"s-1\",\"session_id\":\"" SID
                               "\",\"for_application_id\":\"" APP
                               "\",\"ttl_in_seconds\":600,"
                               "\"vendor_data\":\"cust 42\"}",
                               &r),
                         KB_OK);
        assert_string_equal(r.share_id, "s-1");
        assert_string_equal(r.session_id, SID);
        assert_string_equal(r.for_application_id, APP);
        assert_int_equal(r.ttl_in_seconds, 600);
        assert_string_equal(r.vendor_data, "cust 42");
        assert_int_equal(parse("{\"share_id\":\"s\",\"session_id\":\"" SID
                               "\",\"for_application_id\":\"" APP "\"}",
                               &r),
                         KB_OK);
        assert_int_equal(r.ttl_in_seconds, 0);
        assert_string_equal(r.vendor_data, "");
}

static void test_share_request_invalid(void **state)
{
        static const char *const bad[] = {
                "", "[]", "not json", "{}",
                /* missing or wrong members */
                "{\"session_id\":\"" SID "\",\"for_application_id\":\"" APP
                "\"}",
                "{\"share_id\":\"s\",\"session_id\":\"x\","
                "\"for_application_id\":\"" APP "\"}",
                "{\"share_id\":\"s\",\"session_id\":\"" SID
                "\",\"for_application_id\":42}",
                "{\"share_id\":\"\",\"session_id\":\"" SID
                "\",\"for_application_id\":\"" APP "\"}",
                "{\"share_id\":\"a\\nb\",\"session_id\":\"" SID
                "\",\"for_application_id\":\"" APP "\"}",
                /* ttl bounds and type */
                "{\"share_id\":\"s\",\"session_id\":\"" SID
                "\",\"for_application_id\":\"" APP "\",\"ttl_in_seconds\":59}",
                "{\"share_id\":\"s\",\"session_id\":\"" SID
                "\",\"for_application_id\":\"" APP
                "\",\"ttl_in_seconds\":86401}",
                "{\"share_id\":\"s\",\"session_id\":\"" SID
                "\",\"for_application_id\":\"" APP
                "\",\"ttl_in_seconds\":\"600\"}",
                /* unknown member, duplicate member */
                "{\"share_id\":\"s\",\"session_id\":\"" SID
                "\",\"for_application_id\":\"" APP "\",\"extra\":1}",
                "{\"share_id\":\"s\",\"share_id\":\"t\",\"session_id\":\"" SID
                "\",\"for_application_id\":\"" APP "\"}",
                NULL
        };
        kb_share_req_t r;
        char big[70000];
        int i;

        (void)state;
        for (i = 0; bad[i]; i++)
                assert_int_not_equal(parse(bad[i], &r), KB_OK);
        memset(big, ' ', sizeof(big) - 1);
        big[0] = '{';
        big[sizeof(big) - 2] = '}';
        big[sizeof(big) - 1] = '\0';
        assert_int_equal(parse(big, &r), KB_ERR_TOO_LARGE);
}

static void test_summary_drops_documents_images_and_hits(void **state)
{
        const char *src =
            "{\"session_id\":\"s1\",\"status\":\"Approved\","
            "\"vendor_data\":\"v\",\"features\":{\"x\":1},"
            "\"id_verifications\":[{\"status\":\"Approved\","
            "\"document_number\":\"X123\",\"portrait_image\":\"u\","
            "\"score\":97}],"
            "\"aml_screenings\":[{\"status\":\"In Review\",\"total_hits\":2,"
            "\"hits\":[{\"name\":\"A. Person\"}]}],"
            "\"key_people_checks\":[{\"role\":\"UBO\",\"status\":\"APPROVED\","
            "\"kyc\":{\"id_verifications\":[]}}]}";
        json_object *in = kb_json_parse(src, strlen(src), 16, NULL, 0), *out;
        const char *txt;

        (void)state;
        assert_non_null(in);
        out = kb_session_summary(in);
        assert_non_null(out);
        txt = kb_json_str(out, NULL);
        assert_non_null(strstr(txt, "\"session_id\":\"s1\""));
        assert_non_null(strstr(txt, "\"status\":\"Approved\""));
        assert_non_null(strstr(txt, "\"score\":97"));
        assert_non_null(strstr(txt, "\"total_hits\":2"));
        assert_non_null(strstr(txt, "\"role\":\"UBO\""));
        assert_null(strstr(txt, "X123"));
        assert_null(strstr(txt, "portrait_image"));
        assert_null(strstr(txt, "A. Person"));
        assert_null(strstr(txt, "\"kyc\""));
        assert_null(strstr(txt, "features"));
        json_object_put(in);
        json_object_put(out);
}

static const char *lookup(void *opaque, const char *name)
{
        (void)opaque;
        if (!strcmp(name, "share_id"))
                return "S";
        if (!strcmp(name, "session_kind"))
                return "user";
        return NULL;
}

static void test_template_expand(void **state)
{
        char out[16];

        (void)state;
        assert_int_equal(kb_conf_expand("x-{share_id}-{session_kind}", lookup,
                                        NULL, out, sizeof(out)),
                         0);
        assert_string_equal(out, "x-S-user");
        assert_int_equal(
            kb_conf_expand("{nope}", lookup, NULL, out, sizeof(out)), -1);
        assert_int_equal(
            kb_conf_expand("{share_id", lookup, NULL, out, sizeof(out)), -1);
        assert_int_equal(kb_conf_expand("a}b", lookup, NULL, out, sizeof(out)),
                         -1);
        assert_int_equal(
            kb_conf_expand("0123456789abcdef", lookup, NULL, out, sizeof(out)),
            -1);
}

/* Writes a public bundle with a box and/or a signing key into @p dir. */
static void write_bundle(const char *path, int box, int sign)
{
        kb_bundle_t *b = kb_bundle_new("t");
        kb_key_t *bk = kb_key_generate(KB_KEY_BOX);
        kb_key_t *sk = kb_key_generate(KB_KEY_SIGN);
        char *json;

        if (box)
                assert_int_equal(kb_bundle_add(b, bk), KB_OK);
        if (sign)
                assert_int_equal(kb_bundle_add(b, sk), KB_OK);
        json = kb_bundle_to_json(b);
        assert_non_null(json);
        assert_int_equal(kb_write_file_atomic(path, json, strlen(json), 0644),
                         0);
        free(json);
        kb_bundle_destroy(b);
        kb_key_destroy(bk);
        kb_key_destroy(sk);
}

static kb_conf_t *conf_of(const char *text, const char *dir)
{
        char path[512], err[512];
        kb_conf_t *c = kb_conf_new();

        snprintf(path, sizeof(path), "%s/test.conf", dir);
        assert_int_equal(kb_write_file_atomic(path, text, strlen(text), 0600),
                         0);
        if (kb_conf_load_file(c, path, err, sizeof(err)) != KB_OK)
                fail_msg("%s", err);
        return c;
}

static void test_partners(void **state)
{
        char dir[] = "/tmp/kb-test-partners.XXXXXX", text[2048], err[512];
        char full[600], signonly[600];
        kb_partners_t ps;
        kb_conf_t *c;

        (void)state;
        assert_non_null(mkdtemp(dir));
        snprintf(full, sizeof(full), "%s/full.pub.json", dir);
        snprintf(signonly, sizeof(signonly), "%s/sign.pub.json", dir);
        write_bundle(full, 1, 1);
        write_bundle(signonly, 0, 1);

        /* importer: workflow ids and policy */
        snprintf(text, sizeof(text),
                 "partner.a.application_id = " APP "\n"
                 "partner.a.keys = %s\n"
                 "partner.a.workflow_id.user = wf-u\n"
                 "partner.a.trust_review = true\n"
                 "partner.a.record = full\n",
                 full);
        c = conf_of(text, dir);
        assert_int_equal(
            kb_partners_load(&ps, c, KB_SCOPE_IMPORTER, err, sizeof(err)),
            KB_OK);
        assert_int_equal((int)ps.n, 1);
        assert_non_null(kb_partners_find(&ps, APP));
        assert_null(kb_partners_find(&ps, SID));
        assert_string_equal(kb_partner_workflow(&ps.v[0], KB_SESSION_USER),
                            "wf-u");
        assert_string_equal(kb_partner_workflow(&ps.v[0], KB_SESSION_BUSINESS),
                            "");
        assert_int_equal(ps.v[0].trust_review, 1);
        assert_int_equal(ps.v[0].full_record, 1);
        assert_string_equal(ps.v[0].vendor_data, "hint");
        kb_partners_free(&ps);
        kb_conf_destroy(c);

        /* importer without any workflow id */
        snprintf(text, sizeof(text),
                 "partner.a.application_id = " APP "\npartner.a.keys = %s\n",
                 full);
        c = conf_of(text, dir);
        assert_int_equal(
            kb_partners_load(&ps, c, KB_SCOPE_IMPORTER, err, sizeof(err)),
            KB_ERR_CONFIG);
        assert_non_null(strstr(err, "workflow_id"));
        /* ... is fine for an issuer */
        assert_int_equal(
            kb_partners_load(&ps, c, KB_SCOPE_ISSUER, err, sizeof(err)), KB_OK);
        assert_non_null(ps.v[0].box);
        kb_partners_free(&ps);
        kb_conf_destroy(c);

        /* issuer: a bundle without a box key cannot be sealed to */
        snprintf(text, sizeof(text),
                 "partner.a.application_id = " APP "\npartner.a.keys = %s\n",
                 signonly);
        c = conf_of(text, dir);
        assert_int_equal(
            kb_partners_load(&ps, c, KB_SCOPE_ISSUER, err, sizeof(err)),
            KB_ERR_CONFIG);
        assert_non_null(strstr(err, "x25519"));
        kb_conf_destroy(c);

        /* the same application twice */
        snprintf(text, sizeof(text),
                 "partner.a.application_id = " APP "\npartner.a.keys = %s\n"
                 "partner.b.application_id = " APP "\npartner.b.keys = %s\n",
                 full, full);
        c = conf_of(text, dir);
        assert_int_equal(
            kb_partners_load(&ps, c, KB_SCOPE_ISSUER, err, sizeof(err)),
            KB_ERR_CONFIG);
        assert_non_null(strstr(err, "already used"));
        assert_non_null(strstr(err, "test.conf:3"));
        kb_conf_destroy(c);

        /* no partner at all; a missing bundle file */
        c = conf_of("log.level = info\n", dir);
        assert_int_equal(
            kb_partners_load(&ps, c, KB_SCOPE_ISSUER, err, sizeof(err)),
            KB_ERR_CONFIG);
        kb_conf_destroy(c);
        c = conf_of("partner.a.application_id = " APP "\n"
                    "partner.a.keys = /nonexistent.pub.json\n",
                    dir);
        assert_int_equal(
            kb_partners_load(&ps, c, KB_SCOPE_ISSUER, err, sizeof(err)),
            KB_ERR_CONFIG);
        assert_non_null(strstr(err, "test.conf:2"));
        kb_conf_destroy(c);

        snprintf(text, sizeof(text), "rm -rf '%s'", dir);
        assert_int_equal(system(text), 0);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_share_request_valid),
                cmocka_unit_test(test_share_request_invalid),
                cmocka_unit_test(test_summary_drops_documents_images_and_hits),
                cmocka_unit_test(test_template_expand),
                cmocka_unit_test(test_partners),
        };

        if (kb_init() != KB_OK)
                return 1;
        return cmocka_run_group_tests(tests, NULL, NULL);
}
