/* test_webhooks_rules.c -- sharing rules (KYC, KYB, no match, share_ids,
 * config errors), the replay cache, delivery parsing */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "json.h"
#include "log.h"
#include "util.h"
#include "wh_delivery.h"
#include "wh_replay.h"
#include "wh_rules.h"

#define WF_KYC  "0b5e7c1a-2d3f-4e5a-9b6c-7d8e9f0a1b2c"
#define WF_KYB  "1c6f8d2b-3e4a-4f6b-8c7d-8e9f0a1b2c3d"
#define APP_Y   "d3b07384-d9a0-4c9b-8f1e-3a5c7e9b1d2f"
#define APP_Z   "9a1b2c3d-4e5f-4a6b-8c7d-0e1f2a3b4c5d"
#define SESSION "6f1c0d2e-93a4-4c55-8b1e-0a2b3c4d5e6f"

static const char *partners(void *opaque, const char *name)
{
        (void)opaque;
        if (!strcmp(name, "y"))
                return APP_Y;
        if (!strcmp(name, "z"))
                return "9A1B2C3D-4E5F-4A6B-8C7D-0E1F2A3B4C5D"; /* folded */
        return NULL;
}

static kb_wh_rules_t *rules_new(char *err, size_t errsz)
{
        kb_wh_rule_conf_t rc[2];

        memset(rc, 0, sizeof(rc));
        rc[0].name = "kyc";
        rc[0].workflow_id = WF_KYC;
        rc[0].statuses = "Approved, In Review";
        rc[0].partners = "y,z";
        rc[0].ttl_s = 600;
        rc[0].vendor_data = "{partner}-{vendor_data}";
        rc[1].name = "kyb";
        rc[1].workflow_id = WF_KYB;
        rc[1].statuses = "APPROVED";
        rc[1].partners = "y, y";
        return kb_wh_rules_new(rc, 2, "requests", 0, partners, NULL, err,
                               errsz);
}

/* A parsed delivery for @p workflow / @p status. */
static json_object *delivery(kb_wh_delivery_t *dlv, const char *workflow,
                             const char *kind, const char *status, int auth)
{
        char body[1024], err[128];
        json_object *o;

        snprintf(body, sizeof(body),
                 "{\"session_id\":\"%s\",\"status\":\"%s\","
                 "\"webhook_type\":\"status.updated\",\"vendor_data\":"
                 "\"cust-7\",\"timestamp\":1795312800,\"decision\":"
                 "{\"workflow_id\":\"%s\",\"session_kind\":\"%s\"}}",
                 SESSION, status, workflow, kind);
        o = kb_json_parse(body, strlen(body), 16, err, sizeof(err));
        assert_non_null(o);
        assert_int_equal(kb_wh_delivery_parse(o, dlv, err, sizeof(err)), KB_OK);
        dlv->auth = auth;
        return o;
}

static json_object *record_json(kb_wh_records_t *recs, size_t i,
                                const char **key)
{
        const void *k, *v;
        size_t kl, vl;
        char err[128];
        json_object *o;

        assert_string_equal(kb_wh_records_get(recs, i, &k, &kl, &v, &vl),
                            "requests");
        o = kb_json_parse(v, vl, 8, err, sizeof(err));
        assert_non_null(o);
        /* keyed by share_id */
        assert_int_equal(kl, strlen(kb_json_get_str(o, "share_id")));
        assert_memory_equal(k, kb_json_get_str(o, "share_id"), kl);
        *key = k;
        return o;
}

static void test_kyc_match(void **state)
{
        char err[256], sid[KB_WH_SHARE_ID_BYTES];
        kb_wh_rules_t *rs = rules_new(err, sizeof(err));
        kb_wh_records_t *recs = kb_wh_records_new();
        kb_wh_delivery_t dlv;
        json_object *d, *o;
        const char *key;
        int64_t ttl;

        (void)state;
        assert_non_null(rs);
        d = delivery(&dlv, WF_KYC, "user", "Approved", KB_WH_AUTH_V2);
        assert_int_equal(kb_wh_rules_apply(rs, &dlv, recs), 2);
        assert_int_equal(kb_wh_records_count(recs), 2);

        o = record_json(recs, 0, &key);
        kb_wh_share_id(SESSION, APP_Y, "kyc", KB_WH_ST_APPROVED, sid);
        assert_string_equal(kb_json_get_str(o, "share_id"), sid);
        assert_int_equal(strncmp(sid, "wh-", 3), 0);
        assert_int_equal(strlen(sid), 35);
        assert_string_equal(kb_json_get_str(o, "session_id"), SESSION);
        assert_string_equal(kb_json_get_str(o, "for_application_id"), APP_Y);
        assert_int_equal(kb_json_get_i64(o, "ttl_in_seconds", &ttl), 0);
        assert_int_equal(ttl, 600);
        assert_string_equal(kb_json_get_str(o, "vendor_data"), "y-cust-7");
        /* exactly the schema's members */
        assert_int_equal(json_object_object_length(o), 5);
        json_object_put(o);

        o = record_json(recs, 1, &key);
        assert_string_equal(kb_json_get_str(o, "for_application_id"), APP_Z);
        assert_string_equal(kb_json_get_str(o, "vendor_data"), "z-cust-7");
        json_object_put(o);
        json_object_put(d);

        /* In Review too; Declined is not in the rule */
        kb_wh_records_clear(recs);
        d = delivery(&dlv, WF_KYC, "user", "In Review", KB_WH_AUTH_V2);
        assert_int_equal(kb_wh_rules_apply(rs, &dlv, recs), 2);
        json_object_put(d);
        kb_wh_records_clear(recs);
        d = delivery(&dlv, WF_KYC, "user", "Declined", KB_WH_AUTH_V2);
        assert_int_equal(kb_wh_rules_apply(rs, &dlv, recs), 0);
        json_object_put(d);
        kb_wh_records_destroy(recs);
        kb_wh_rules_destroy(rs);
}

static void test_kyb_and_no_match(void **state)
{
        char err[256], sid[KB_WH_SHARE_ID_BYTES];
        kb_wh_rules_t *rs = rules_new(err, sizeof(err));
        kb_wh_records_t *recs = kb_wh_records_new();
        kb_wh_rules_stats_t st;
        kb_wh_delivery_t dlv;
        json_object *d, *o;
        const char *key;

        (void)state;
        /* KYB casing; the partner listed twice gives one share */
        d = delivery(&dlv, WF_KYB, "business", "APPROVED", KB_WH_AUTH_V2);
        assert_int_equal(kb_wh_rules_apply(rs, &dlv, recs), 1);
        o = record_json(recs, 0, &key);
        kb_wh_share_id(SESSION, APP_Y, "kyb", KB_WH_ST_APPROVED, sid);
        assert_string_equal(key, sid);
        assert_null(kb_json_get(o, "ttl_in_seconds"));
        assert_null(kb_json_get(o, "vendor_data"));
        json_object_put(o);
        json_object_put(d);

        kb_wh_records_clear(recs);
        /* the KYC rule's "Approved" also matches the KYB casing */
        d = delivery(&dlv, WF_KYC, "business", "APPROVED", KB_WH_AUTH_V2);
        assert_int_equal(kb_wh_rules_apply(rs, &dlv, recs), 2);
        json_object_put(d);
        kb_wh_records_clear(recs);
        /* no match: other workflow, unfinished status, Simple only */
        d = delivery(&dlv, "2d7a9e3c-4f5b-4a7c-9d8e-9fa0b1c2d3e4", "user",
                     "Approved", KB_WH_AUTH_V2);
        assert_int_equal(kb_wh_rules_apply(rs, &dlv, recs), 0);
        json_object_put(d);
        d = delivery(&dlv, WF_KYC, "user", "In Progress", KB_WH_AUTH_V2);
        assert_int_equal(kb_wh_rules_apply(rs, &dlv, recs), 0);
        json_object_put(d);
        d = delivery(&dlv, WF_KYC, "user", "Approved", KB_WH_AUTH_SIMPLE);
        assert_int_equal(kb_wh_rules_apply(rs, &dlv, recs), 0);
        json_object_put(d);
        assert_int_equal(kb_wh_records_count(recs), 0);
        kb_wh_rules_stats(rs, &st);
        assert_int_equal(st.matched, 2);
        assert_int_equal(st.unmatched, 2);
        assert_int_equal(st.unverified, 1);
        assert_int_equal(st.shares, 3);
        kb_wh_records_destroy(recs);
        kb_wh_rules_destroy(rs);
}

static void test_share_ids(void **state)
{
        char a[KB_WH_SHARE_ID_BYTES], b[KB_WH_SHARE_ID_BYTES];
        size_t i;

        (void)state;
        kb_wh_share_id(SESSION, APP_Y, "kyc", KB_WH_ST_APPROVED, a);
        kb_wh_share_id(SESSION, APP_Y, "kyc", KB_WH_ST_APPROVED, b);
        assert_string_equal(a, b);
        /* fixed vector (the derivation is documented), computed apart with
         * Python: "wh-" + hashlib.blake2b(b"kyc-bridge/webhook-share/v1\0"
         * + session + b"\0" + app + b"\0" + b"kyc\0" + b"APPROVED",
         * digest_size=16).hexdigest() */
        assert_string_equal(a, "wh-9a4d599b46dde857529124b3c2c7a223");
        for (i = 3; a[i]; i++)
                assert_non_null(strchr("0123456789abcdef", a[i]));
        /* the application id's casing does not matter, each input does */
        kb_wh_share_id(SESSION, "D3B07384-D9A0-4C9B-8F1E-3A5C7E9B1D2F", "kyc",
                       KB_WH_ST_APPROVED, b);
        assert_string_equal(a, b);
        kb_wh_share_id(SESSION, APP_Z, "kyc", KB_WH_ST_APPROVED, b);
        assert_string_not_equal(a, b);
        kb_wh_share_id(SESSION, APP_Y, "kyb", KB_WH_ST_APPROVED, b);
        assert_string_not_equal(a, b);
        kb_wh_share_id(SESSION, APP_Y, "kyc", KB_WH_ST_DECLINED, b);
        assert_string_not_equal(a, b);
        kb_wh_share_id("7f1c0d2e-93a4-4c55-8b1e-0a2b3c4d5e6f", APP_Y, "kyc",
                       KB_WH_ST_APPROVED, b);
        assert_string_not_equal(a, b);
}

static void expect_error(kb_wh_rule_conf_t *rc, const char *want)
{
        char err[512];
        kb_wh_rules_t *rs = kb_wh_rules_new(rc, 1, "requests", 0, partners,
                                            NULL, err, sizeof(err));
        assert_null(rs);
        if (strcmp(err, want))
                fail_msg("got '%s', want '%s'", err, want);
}

static void test_config_errors(void **state)
{
        kb_wh_rule_conf_t rc;

        (void)state;
        memset(&rc, 0, sizeof(rc));
        rc.name = "r1";
        rc.workflow_id = WF_KYC;
        rc.statuses = "Approved,Aproved";
        rc.partners = "y";
        rc.origin_workflow_id = "/etc/kb.conf:10";
        rc.origin_statuses = "/etc/kb.conf:11";
        rc.origin_partners = "/etc/kb.conf:12";
        rc.origin_ttl_s = "/etc/kb.conf:13";
        rc.origin_vendor_data = "/etc/kb.conf:14";
        expect_error(&rc, "/etc/kb.conf:11: rule.r1.statuses: 'Aproved' is "
                          "not a finished status (Approved, Declined, In "
                          "Review; KYB: APPROVED, DECLINED, IN_REVIEW)");
        rc.statuses = "Approved,approved";
        expect_error(&rc, "/etc/kb.conf:11: rule.r1.statuses: 'approved' is "
                          "not a finished status (Approved, Declined, In "
                          "Review; KYB: APPROVED, DECLINED, IN_REVIEW)");
        rc.statuses = "Approved,,Declined";
        expect_error(&rc, "/etc/kb.conf:11: rule.r1.statuses: empty item");
        rc.statuses = "IN_REVIEW";
        rc.partners = "y,x";
        expect_error(&rc, "/etc/kb.conf:12: rule.r1.partners: unknown "
                          "partner 'x' (no partner.x.application_id)");
        rc.partners = "y";
        rc.workflow_id = "not-a-uuid";
        expect_error(&rc, "/etc/kb.conf:10: rule.r1.workflow_id: not a UUID");
        rc.workflow_id = WF_KYC;
        rc.ttl_s = 30;
        expect_error(&rc, "/etc/kb.conf:13: rule.r1.ttl_s: must be 60..86400");
        rc.ttl_s = 0;
        rc.vendor_data = "{customer}";
        expect_error(&rc, "/etc/kb.conf:14: rule.r1.vendor_data: unknown "
                          "variable or unbalanced brace (known: {session_id} "
                          "{status} {vendor_data} {workflow_id} {session_kind} "
                          "{rule} {partner} {timestamp})");
        rc.vendor_data = NULL;
        rc.partners = NULL;
        rc.origin_partners = NULL;
        expect_error(&rc, "config: rule.r1.partners: required");
}

static void test_replay_cache(void **state)
{
        kb_wh_replay_t *rc = kb_wh_replay_new(2, 100);

        (void)state;
        assert_non_null(rc);
        assert_int_equal(kb_wh_replay_reserve(rc, "a", 1000), KB_WH_REPLAY_NEW);
        assert_int_equal(kb_wh_replay_reserve(rc, "a", 1000),
                         KB_WH_REPLAY_PENDING);
        assert_int_equal(kb_wh_replay_reserve(rc, "b", 1000), KB_WH_REPLAY_NEW);
        /* full of live entries: the caller answers 503 */
        assert_int_equal(kb_wh_replay_reserve(rc, "c", 1000),
                         KB_WH_REPLAY_FULL);
        kb_wh_replay_release(rc, "b");
        assert_int_equal(kb_wh_replay_count(rc), 1);
        assert_int_equal(kb_wh_replay_commit(rc, "a", 1000), KB_OK);
        assert_int_equal(kb_wh_replay_commit(rc, "a2", 1010), KB_OK);
        kb_wh_replay_release(rc, "a"); /* done stays */
        assert_int_equal(kb_wh_replay_reserve(rc, "a", 1099),
                         KB_WH_REPLAY_DONE);
        assert_int_equal(kb_wh_replay_reserve(rc, "a2", 1099),
                         KB_WH_REPLAY_DONE);
        /* kept keep_s after the commit, then forgotten */
        assert_int_equal(kb_wh_replay_reserve(rc, "a", 1100), KB_WH_REPLAY_NEW);
        assert_int_equal(kb_wh_replay_reserve(rc, "a2", 1100),
                         KB_WH_REPLAY_DONE);
        assert_int_equal(kb_wh_replay_reserve(rc, "a2", 1110),
                         KB_WH_REPLAY_NEW);
        kb_wh_replay_destroy(rc);
        assert_null(kb_wh_replay_new(0, 100));
}

static void test_delivery_parse(void **state)
{
        const char *bad[] = {
                "{\"status\":\"Approved\",\"webhook_type\":\"t\","
                "\"timestamp\":1}",
                "{\"session_id\":\"\",\"status\":\"Approved\","
                "\"webhook_type\":\"t\",\"timestamp\":1}",
                "{\"session_id\":\"s\",\"status\":\"Approved\","
                "\"webhook_type\":\"t\",\"timestamp\":1.5}",
                "{\"session_id\":\"s\",\"status\":7,\"webhook_type\":\"t\","
                "\"timestamp\":1}",
                "[1]",
        };
        kb_wh_delivery_t dlv;
        char err[128];
        size_t i;

        (void)state;
        for (i = 0; i < KB_ARRAY_SIZE(bad); i++) {
                json_object *o =
                    kb_json_parse(bad[i], strlen(bad[i]), 8, err, sizeof(err));
                assert_non_null(o);
                assert_int_equal(
                    kb_wh_delivery_parse(o, &dlv, err, sizeof(err)),
                    KB_ERR_MALFORMED);
                json_object_put(o);
        }
        assert_int_equal(kb_wh_status_canon("In Review"), KB_WH_ST_IN_REVIEW);
        assert_int_equal(kb_wh_status_canon("IN_REVIEW"), KB_WH_ST_IN_REVIEW);
        assert_int_equal(kb_wh_status_canon("in review"), KB_WH_ST_OTHER);
        assert_int_equal(kb_wh_status_canon("Resubmitted"), KB_WH_ST_OTHER);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_kyc_match),
                cmocka_unit_test(test_kyb_and_no_match),
                cmocka_unit_test(test_share_ids),
                cmocka_unit_test(test_config_errors),
                cmocka_unit_test(test_replay_cache),
                cmocka_unit_test(test_delivery_parse),
        };

        kb_log_setup(KB_LOG_WARN, 0, 2, "test_webhooks_rules");
        return cmocka_run_group_tests(tests, NULL, NULL);
}
