/* test_daemons.c -- the daemons' pure parts: share requests, session
 * summaries, vendor_data templates, the partner registry, the verdict
 * table, reconcile's time window; out of memory in the constructors */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

/* ASan builds check for leaks after each injected failure, not only at
 * exit, so that a leak names the allocation whose failure caused it. */
#if defined(__SANITIZE_ADDRESS__)
#define KB_TEST_LSAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define KB_TEST_LSAN 1
#endif
#endif
#ifdef KB_TEST_LSAN
#include <sanitizer/lsan_interface.h>
#endif

#include "conf.h"
#include "importer.h"
#include "issuer.h"
#include "json.h"
#include "kb_keys.h"
#include "kyc_bridge.h"
#include "partners.h"
#include "processor.h"
#include "util.h"
#include "verdict.h"

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

/* Ids break no envelope rule: broken UTF-8, DEL, over 128 bytes. */
static void test_share_request_ids_follow_envelope_rules(void **state)
{
        static const char *const bad_ids[] = { "a\\u007fb", /* DEL */
                                               "\xff\xfe",  /* not UTF-8 */
                                               "\xc3", /* truncated sequence */
                                               "\xe0\x80\xaf", /* overlong */
                                               NULL };
        char json[512], big[200];
        kb_share_req_t r;
        int i;

        (void)state;
        for (i = 0; bad_ids[i]; i++) {
                snprintf(json, sizeof(json),
                         "{\"share_id\":\"%s\",\"session_id\":\"" SID
                         "\",\"for_application_id\":\"" APP "\"}",
                         bad_ids[i]);
                assert_int_equal(parse(json, &r), KB_ERR_MALFORMED);
                snprintf(json, sizeof(json),
                         "{\"share_id\":\"s\",\"session_id\":\"" SID
                         "\",\"for_application_id\":\"" APP
                         "\",\"vendor_data\":\"%s\"}",
                         bad_ids[i]);
                assert_int_equal(parse(json, &r), KB_ERR_MALFORMED);
        }
        /* 129 bytes: two-byte characters count as two */
        memset(big, 0, sizeof(big));
        for (i = 0; i < 64; i++)
                memcpy(big + 2 * i, "\xc3\xa9", 2); /* 128 bytes of e-acute */
        snprintf(json, sizeof(json),
                 "{\"share_id\":\"%s\",\"session_id\":\"" SID
                 "\",\"for_application_id\":\"" APP "\"}",
                 big);
        assert_int_equal(parse(json, &r), KB_OK);
        assert_string_equal(r.share_id, big);
        big[128] = 'x';
        snprintf(json, sizeof(json),
                 "{\"share_id\":\"%s\",\"session_id\":\"" SID
                 "\",\"for_application_id\":\"" APP "\"}",
                 big);
        assert_int_equal(parse(json, &r), KB_ERR_MALFORMED);
}

/* The reason comes from the status (and the follow-up answer), never from
 * the vendor's detail: kb_verdict() does not even see it. */
static void test_verdict_table(void **state)
{
        kb_verdict_t v;

        (void)state;
        /* mint */
        assert_int_equal(kb_verdict(KB_STEP_MINT, 201, KB_OK, 0).act,
                         KB_ACT_PUBLISH);
        v = kb_verdict(KB_STEP_MINT, 201, KB_ERR_MALFORMED, 0);
        assert_int_equal(v.act, KB_ACT_DEAD_LETTER);
        assert_string_equal(v.reason, "vendor_bad_response");
        assert_int_equal(kb_verdict(KB_STEP_MINT, 401, KB_ERR_HTTP, 0).act,
                         KB_ACT_HOLD);
        assert_int_equal(kb_verdict(KB_STEP_MINT, 403, KB_ERR_HTTP, 0).act,
                         KB_ACT_HOLD);
        assert_int_equal(kb_verdict(KB_STEP_MINT, 0, KB_ERR_HTTP, 0).act,
                         KB_ACT_HOLD);
        assert_int_equal(kb_verdict(KB_STEP_MINT, 404, KB_ERR_HTTP, 0).act,
                         KB_ACT_ASK);
        assert_int_equal(kb_verdict(KB_STEP_MINT, 400, KB_ERR_HTTP, 0).act,
                         KB_ACT_ASK);
        assert_string_equal(
            kb_verdict(KB_STEP_MINT, 404, KB_ERR_HTTP, KB_ANS_GONE).reason,
            "session_not_found");
        assert_string_equal(
            kb_verdict(KB_STEP_MINT, 404, KB_ERR_HTTP, KB_ANS_FINISHED).reason,
            "partner_application_unknown");
        assert_string_equal(
            kb_verdict(KB_STEP_MINT, 400, KB_ERR_HTTP, KB_ANS_UNFINISHED)
                .reason,
            "session_not_finished");
        assert_string_equal(
            kb_verdict(KB_STEP_MINT, 400, KB_ERR_HTTP, KB_ANS_FINISHED).reason,
            "bad_request");
        assert_string_equal(
            kb_verdict(KB_STEP_MINT, 409, KB_ERR_HTTP, 0).reason,
            "vendor_rejected");
        /* import: an unreadable 2xx spent the token: reconcile, never a
         * dead letter straight away */
        assert_int_equal(kb_verdict(KB_STEP_IMPORT, 201, KB_OK, 0).act,
                         KB_ACT_PUBLISH);
        assert_int_equal(
            kb_verdict(KB_STEP_IMPORT, 201, KB_ERR_MALFORMED, 0).act,
            KB_ACT_RECONCILE);
        assert_int_equal(
            kb_verdict(KB_STEP_IMPORT, 200, KB_ERR_TOO_LARGE, 0).act,
            KB_ACT_RECONCILE);
        v = kb_verdict(KB_STEP_IMPORT, 201, KB_ERR_MALFORMED, KB_ANS_GONE);
        assert_int_equal(v.act, KB_ACT_DEAD_LETTER);
        assert_string_equal(v.stage, "reconcile");
        assert_string_equal(v.reason, "reconcile_failed");
        assert_int_equal(kb_verdict(KB_STEP_IMPORT, 403, KB_ERR_HTTP, 0).act,
                         KB_ACT_RECONCILE);
        assert_string_equal(
            kb_verdict(KB_STEP_IMPORT, 403, KB_ERR_HTTP, KB_ANS_GONE).reason,
            "forbidden");
        assert_string_equal(
            kb_verdict(KB_STEP_IMPORT, 401, KB_ERR_HTTP, 0).reason,
            "token_rejected");
        /* 404: the workflow question tells the source session's end
         * from an unknown workflow */
        assert_int_equal(kb_verdict(KB_STEP_IMPORT, 404, KB_ERR_HTTP, 0).act,
                         KB_ACT_ASK);
        v = kb_verdict(KB_STEP_IMPORT, 404, KB_ERR_HTTP, KB_ANS_GONE);
        assert_int_equal(v.act, KB_ACT_DEAD_LETTER);
        assert_string_equal(v.stage, "import");
        assert_string_equal(v.reason, "workflow_not_found");
        v = kb_verdict(KB_STEP_IMPORT, 404, KB_ERR_HTTP, KB_ANS_EXISTS);
        assert_int_equal(v.act, KB_ACT_DEAD_LETTER);
        assert_string_equal(v.stage, "import");
        assert_string_equal(v.reason, "source_session_gone");
        assert_string_equal(
            kb_verdict(KB_STEP_IMPORT, 404, KB_ERR_HTTP, KB_ANS_UNKNOWN).reason,
            "vendor_rejected");
        assert_string_equal(
            kb_verdict(KB_STEP_IMPORT, 400, KB_ERR_HTTP, 0).reason,
            "bad_request");
        assert_int_equal(kb_verdict(KB_STEP_IMPORT, 0, KB_ERR_HTTP, 0).act,
                         KB_ACT_HOLD);
        /* shutdown is never a verdict */
        assert_int_equal(kb_verdict(KB_STEP_IMPORT, 201, KB_ERR_STATE, 0).act,
                         KB_ACT_HOLD);
        /* reconcile */
        assert_string_equal(
            kb_verdict(KB_STEP_RECONCILE, 400, KB_ERR_HTTP, 0).reason,
            "reconcile_failed");
        assert_int_equal(kb_status_finished("In Review"), 1);
        assert_int_equal(kb_status_finished("IN_REVIEW"), 1);
        assert_int_equal(kb_status_finished("Not Started"), 0);
        assert_int_equal(kb_status_finished("approved"), 0);
        assert_int_equal(kb_status_finished(NULL), 0);
}

static int created_after(const char *created_at, int64_t iat)
{
        char txt[128];
        json_object *s;
        int r;

        snprintf(txt, sizeof(txt), "{\"created_at\":\"%s\"}", created_at);
        s = kb_json_parse(txt, strlen(txt), 4, NULL, 0);
        assert_non_null(s);
        r = kb_session_created_after(s, iat);
        json_object_put(s);
        return r;
}

/* Reconcile's window reads created_at with its UTC offset. */
static void test_created_after_honours_offset(void **state)
{
        /* 2026-12-05T12:00:00Z */
        const int64_t noon = 1796472000;

        (void)state;
        assert_int_equal(created_after("2026-12-05T12:00:00Z", noon), 1);
        assert_int_equal(created_after("2026-12-05T11:59:59Z", noon), 0);
        /* 13:30+02:00 is 11:30Z: before the token */
        assert_int_equal(created_after("2026-12-05T13:30:00+02:00", noon), 0);
        /* 09:30-03:00 is 12:30Z: after it */
        assert_int_equal(created_after("2026-12-05T09:30:00-03:00", noon), 1);
        assert_int_equal(created_after("2026-12-05T12:00:01.5+00:00", noon), 1);
        /* unknown iat or no parsable time: nothing is ruled out */
        assert_int_equal(created_after("2026-12-05T13:30:00+02:00", 0), 1);
        assert_int_equal(created_after("yesterday", noon), 1);
}

#ifndef KB_TEST_ALLOC_FAIL
#error "test_daemons needs the allocation wrappers: see tests/CMakeLists.txt"
#endif
/*
 * Allocation failures on demand. tests/CMakeLists.txt links this program
 * with -Wl,--wrap=malloc,--wrap=calloc,--wrap=realloc,--wrap=strdup,
 * --wrap=strndup (and defines KB_TEST_ALLOC_FAIL), so every such call made
 * by our own code -- the static kb_* libraries and this file -- comes here;
 * shared libraries (libcurl, json-c, libsodium, librdkafka) allocate as
 * usual. Armed, the fail_at-th call from then on (counting from 0) fails
 * with ENOMEM, once. Under ASan the __real_* functions are still the C
 * library's names, which ASan's runtime intercepts: no recursion, and the
 * leak check sees every block.
 */
void *__real_malloc(size_t n);
void *__real_calloc(size_t k, size_t n);
void *__real_realloc(void *p, size_t n);
char *__real_strdup(const char *s);
char *__real_strndup(const char *s, size_t n);

static long fail_at = -1; /* -1: off */
static int failed;        /* the armed failure happened */

static int fail_now(void)
{
        if (fail_at < 0 || fail_at-- != 0)
                return 0;
        failed = 1;
        errno = ENOMEM;
        return 1;
}

void *__wrap_malloc(size_t n);
void *__wrap_calloc(size_t k, size_t n);
void *__wrap_realloc(void *p, size_t n);
char *__wrap_strdup(const char *s);
char *__wrap_strndup(const char *s, size_t n);

void *__wrap_malloc(size_t n)
{
        return fail_now() ? NULL : __real_malloc(n);
}

void *__wrap_calloc(size_t k, size_t n)
{
        return fail_now() ? NULL : __real_calloc(k, n);
}

void *__wrap_realloc(void *p, size_t n)
{
        return fail_now() ? NULL : __real_realloc(p, n);
}

char *__wrap_strdup(const char *s)
{
        return fail_now() ? NULL : __real_strdup(s);
}

char *__wrap_strndup(const char *s, size_t n)
{
        return fail_now() ? NULL : __real_strndup(s, n);
}

/* The config of a daemon that starts: keys, a partner, everything set. */
static kb_conf_t *daemon_conf(const char *dir, int importer)
{
        char path[600], bundle[600], text[4096], err[512];
        kb_key_t *k = kb_key_generate(importer ? KB_KEY_BOX : KB_KEY_SIGN);

        assert_non_null(k);
        snprintf(path, sizeof(path), "%s/%s.key", dir,
                 importer ? "box" : "sign");
        assert_int_equal(kb_key_save_secret(k, path, NULL, 0, err, sizeof(err)),
                         KB_OK);
        kb_key_destroy(k);
        snprintf(bundle, sizeof(bundle), "%s/partner.pub.json", dir);
        write_bundle(bundle, 1, 1);
        setenv("KBT_DAEMON_KEY", "test-api-key", 1);
        snprintf(text, sizeof(text),
                 "application_id = " SID "\n"
                 "vendor.api_key = env:KBT_DAEMON_KEY\n"
                 "kafka.bootstrap.servers = 127.0.0.1:9\n"
                 "%s = %s\n"
                 "partner.a.application_id = " APP "\n"
                 "partner.a.keys = %s\n"
                 "partner.a.workflow_id.user = " SID "\n",
                 importer ? "keys.box_secret" : "keys.sign_secret", path,
                 bundle);
        return conf_of(text, dir);
}

/* Under ASan: nothing the constructor allocated is lost (a leak report is
 * printed above the failure). Without ASan the check at exit is missing
 * too; the ASan build (-DKB_SANITIZE=ON) is the one that sees leaks. */
static void assert_no_leak(const char *name, long n)
{
#ifdef KB_TEST_LSAN
        if (__lsan_do_recoverable_leak_check())
                fail_msg("%s: allocation %ld failed: memory leaked (report "
                         "above)",
                         name, n);
#else
        (void)name;
        (void)n;
#endif
}

/*
 * Out of memory anywhere in a daemon's constructor is a runtime failure
 * (exit 1), never a configuration error (exit 2, "fix your config"): each
 * allocation the constructor makes fails in turn, and every failure must
 * come back with is_config_error 0, say "out of memory" and, under ASan,
 * leave no leak behind.
 */
static void test_constructor_out_of_memory(void **state)
{
        char dir[] = "/tmp/kb-test-oom.XXXXXX", cmd[600];
        int role;

        (void)state;
        for (role = 0; role < 2; role++) {
                const char *name = role ? "importer" : "issuer";
                kb_conf_t *c;
                long n, nfail = 0;

                assert_non_null(mkdtemp(dir));
                c = daemon_conf(dir, role);
                for (n = 0;; n++) {
                        char err[512] = "";
                        int cfg = -1;
                        kb_proc_t *p;

                        failed = 0;
                        fail_at = n;
                        p = role
                                ? kb_importer_proc_new(c, &cfg, err,
                                                       sizeof(err))
                                : kb_issuer_proc_new(c, &cfg, err, sizeof(err));
                        fail_at = -1;
                        if (!failed) {
                                /* all n allocations passed: it starts */
                                if (!p)
                                        fail_msg("%s: %s", name, err);
                                kb_proc_free(p);
                                assert_no_leak(name, n);
                                break;
                        }
                        if (p) { /* coped without that allocation */
                                kb_proc_free(p);
                                assert_no_leak(name, n);
                                continue;
                        }
                        nfail++;
                        if (cfg != 0)
                                fail_msg("%s: allocation %ld failed: "
                                         "is_config_error %d (%s)",
                                         name, n, cfg, err);
                        if (!strstr(err, "out of memory"))
                                fail_msg("%s: allocation %ld failed: \"%s\"",
                                         name, n, err);
                        assert_no_leak(name, n);
                        assert_true(n < 100000);
                }
                fprintf(stderr,
                        "# %s: %ld allocations, %ld failures refused as "
                        "runtime failures\n",
                        name, n, nfail);
                /* the injection did reach the constructor */
                assert_true(nfail >= 10);
                kb_conf_destroy(c);
                snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
                assert_int_equal(system(cmd), 0);
                memcpy(dir + sizeof(dir) - 7, "XXXXXX", 6);
        }
}

/* 10,000 partners (an importer's file is ~2.5 MB, over the old 1 MiB
 * limit): every one loaded and found, without case, and one id given
 * twice found out */
static void test_many_partners(void **state)
{
        char dir[] = "/tmp/kb-test-partners.XXXXXX", path[600], err[512];
        char bundle[600], app[40], wf[64], *text;
        size_t cap = 4 * 1024 * 1024, len = 0;
        kb_partners_t ps;
        kb_conf_t *c;
        int i, n = 10000;

        (void)state;
        assert_non_null(mkdtemp(dir));
        snprintf(bundle, sizeof(bundle), "%s/full.pub.json", dir);
        write_bundle(bundle, 1, 1);
        text = malloc(cap);
        assert_non_null(text);
        for (i = 0; i < n; i++)
                len += (size_t)snprintf(
                    text + len, cap - len,
                    "partner.p%d.application_id = %08X-0000-4000-8000-%012d\n"
                    "partner.p%d.keys = %s\n"
                    "partner.p%d.workflow_id.user = "
                    "wf-user-of-a-realistic-length-0000-0000-%d\n",
                    i, i, i, i, bundle, i, i);
        assert_true(len > 1024 * 1024);
        snprintf(path, sizeof(path), "%s/many.conf", dir);
        assert_int_equal(kb_write_file_atomic(path, text, len, 0600), 0);
        c = kb_conf_new();
        if (kb_conf_load_file(c, path, err, sizeof(err)) != KB_OK)
                fail_msg("%s", err);
        assert_int_equal(
            kb_partners_load(&ps, c, KB_SCOPE_IMPORTER, err, sizeof(err)),
            KB_OK);
        assert_int_equal((int)ps.n, n);
        for (i = 0; i < n; i += 997) {
                snprintf(app, sizeof(app), "%08x-0000-4000-8000-%012d", i, i);
                assert_non_null(kb_partners_find(&ps, app));
                snprintf(wf, sizeof(wf),
                         "wf-user-of-a-realistic-length-0000-0000-%d", i);
                assert_string_equal(kb_partners_find(&ps, app)->workflow_user,
                                    wf);
        }
        assert_null(kb_partners_find(&ps, SID));
        kb_partners_free(&ps);
        kb_conf_destroy(c);

        /* the last one takes the first one's id */
        len += (size_t)snprintf(text + len, cap - len,
                                "partner.q.application_id = "
                                "00000000-0000-4000-8000-000000000000\n"
                                "partner.q.keys = %s\n"
                                "partner.q.workflow_id.user = wf\n",
                                bundle);
        assert_int_equal(kb_write_file_atomic(path, text, len, 0600), 0);
        c = kb_conf_new();
        if (kb_conf_load_file(c, path, err, sizeof(err)) != KB_OK)
                fail_msg("%s", err);
        assert_int_equal(
            kb_partners_load(&ps, c, KB_SCOPE_IMPORTER, err, sizeof(err)),
            KB_ERR_CONFIG);
        assert_non_null(strstr(err, "already used by partner 'p0'"));
        kb_partners_free(&ps);
        kb_conf_destroy(c);
        free(text);
        unlink(path);
        unlink(bundle);
        rmdir(dir);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_share_request_valid),
                cmocka_unit_test(test_share_request_invalid),
                cmocka_unit_test(test_summary_drops_documents_images_and_hits),
                cmocka_unit_test(test_template_expand),
                cmocka_unit_test(test_partners),
                cmocka_unit_test(test_many_partners),
                cmocka_unit_test(test_share_request_ids_follow_envelope_rules),
                cmocka_unit_test(test_verdict_table),
                cmocka_unit_test(test_created_after_honours_offset),
                cmocka_unit_test(test_constructor_out_of_memory),
        };

        if (kb_init() != KB_OK)
                return 1;
        return cmocka_run_group_tests(tests, NULL, NULL);
}
