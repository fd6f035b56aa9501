/* fuzz_webhook.c -- a vendor webhook delivery as the intake gets it:
 * kb_webhook_verify() (signature check, canonical JSON), then
 * kb_wh_delivery_parse() and the issuer's sharing rules
 * (kb_wh_rules_apply()), whose share requests must parse
 * (kb_share_req_parse()).
 *
 * Input: "X-Timestamp\nX-Signature-V2\nX-Signature-Simple\nbody", a header
 * "-" being absent (tests/fuzz/README.md). Every body is also checked with
 * signatures the target makes itself, so the accepting path is fuzzed too. */
/* fuzz-options: -max_len=70000 */
#include <inttypes.h>

#include "fuzz.h"
#include "issuer.h"
#include "json.h"
#include "webhook_sig.h"
#include "wh_delivery.h"
#include "wh_rules.h"

/* tests/vectors/webhook/vectors.jsonl's secret and time */
#define SECRET      "whsec_sandbox_0123456789abcdef"
#define VECTORS_NOW INT64_C(1795312800)
#define WORKFLOW    "7a3c1e5f-2b4d-4c6e-8f0a-1b2c3d4e5f60"

static kb_wh_rules_t *rules, *rules_simple;

static const char *partner(void *opaque, const char *name)
{
        (void)opaque;
        if (!strcmp(name, "y"))
                return "1F2E3D4C-5B6A-4798-8A7B-6C5D4E3F2A1B";
        if (!strcmp(name, "z"))
                return "9a8b7c6d-5e4f-4a3b-9c2d-1e0f9a8b7c6d";
        return NULL;
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
        static const kb_wh_rule_conf_t rc[] = {
                { "approved-kyc", WORKFLOW, "Approved,IN_REVIEW", "y,z", 3600,
                  "{vendor_data}", "-", "-", "-", "-", "-" },
                { "all", WORKFLOW, "APPROVED,Declined,In Review", "z", 0,
                  "{rule}:{partner}:{status}:{session_kind}:{workflow_id}:"
                  "{timestamp}:{session_id}",
                  "-", "-", "-", "-", "-" },
        };
        char err[512];

        (void)argc;
        (void)argv;
        fuzz_init(1);
        rules = kb_wh_rules_new(rc, 2, "share-requests", 0, partner, NULL, err,
                                sizeof(err));
        rules_simple = kb_wh_rules_new(rc, 2, "share-requests", 1, partner,
                                       NULL, err, sizeof(err));
        if (!rules || !rules_simple) {
                fprintf(stderr, "fuzz_webhook: rules: %s\n", err);
                abort();
        }
        return 0;
}

static const char *hdr(const char *s)
{
        return strcmp(s, "-") ? s : NULL;
}

/* The rules' share requests are requests the issuer takes when the
 * delivery's session id is one (a UUID). */
static void apply_rules(kb_wh_rules_t *rs, const kb_wh_delivery_t *dlv)
{
        kb_wh_records_t *recs = kb_wh_records_new();
        size_t i, n;
        int r;

        FUZZ_CHECK(recs != NULL);
        r = kb_wh_rules_apply(rs, dlv, recs);
        FUZZ_CHECK(r >= 0);
        n = kb_wh_records_count(recs);
        FUZZ_CHECK((size_t)r == n);
        for (i = 0; i < n; i++) {
                const void *key, *value;
                size_t klen = 0, vlen = 0;
                const char *topic;
                kb_share_req_t req;
                char err[256];
                topic = kb_wh_records_get(recs, i, &key, &klen, &value, &vlen);
                FUZZ_CHECK(topic && !strcmp(topic, "share-requests"));
                r = kb_share_req_parse(value, vlen, &req, err, sizeof(err));
                if (kb_is_uuid(dlv->session_id)) {
                        if (r != KB_OK)
                                fprintf(stderr, "share request refused: %s\n",
                                        err);
                        FUZZ_CHECK(r == KB_OK);
                        FUZZ_CHECK(klen == strlen(req.share_id) &&
                                   !memcmp(key, req.share_id, klen));
                } else {
                        FUZZ_CHECK(r == KB_ERR_MALFORMED);
                }
        }
        kb_wh_records_destroy(recs);
}

static void delivery(json_object *body, int auth)
{
        kb_wh_delivery_t dlv;
        char err[256];

        memset(&dlv, 0xa5, sizeof(dlv));
        if (kb_wh_delivery_parse(body, &dlv, err, sizeof(err)) != KB_OK)
                return;
        FUZZ_CHECK(dlv.body == body);
        FUZZ_CHECK(dlv.session_id && dlv.session_id[0]);
        FUZZ_CHECK(dlv.status && dlv.status[0]);
        FUZZ_CHECK(dlv.webhook_type && dlv.webhook_type[0]);
        FUZZ_CHECK(dlv.auth == 0 && dlv.secret_index == 0);
        dlv.auth = auth;
        apply_rules(rules, &dlv);
        apply_rules(rules_simple, &dlv);
}

/* Signs @p body the way the vendor does and checks that it verifies. */
static void roundtrip(const char *body, size_t len)
{
        json_object *o;
        char err[128], ts[24], v2[KB_WEBHOOK_SIG_HEX_BYTES],
            simple[KB_WEBHOOK_SIG_HEX_BYTES];
        const char *sid, *st, *wt;
        int64_t t;
        int r;

        o = kb_json_parse(body, len, 64, err, sizeof(err));
        if (!o)
                return;
        if (!json_object_is_type(o, json_type_object) ||
            kb_json_get_i64(o, "timestamp", &t) != 0) {
                json_object_put(o);
                return;
        }
        snprintf(ts, sizeof(ts), "%" PRId64, t);
        r = kb_webhook_sign_v2(SECRET, t, o, v2);
        if (r == KB_OK) {
                FUZZ_CHECK(strlen(v2) == 64);
                FUZZ_CHECK(kb_webhook_verify(SECRET, ts, v2, NULL, body, len, t,
                                             0) == KB_OK);
                /* the V2 header wins over a bad Simple one */
                FUZZ_CHECK(kb_webhook_verify(SECRET, ts, v2, "00", body, len, t,
                                             0) == KB_OK);
                /* another secret, another time: refused */
                FUZZ_CHECK(kb_webhook_verify("x", ts, v2, NULL, body, len, t,
                                             0) == KB_ERR_AUTH);
                FUZZ_CHECK(kb_webhook_verify(SECRET, ts, v2, NULL, body, len,
                                             t == INT64_MIN ? 1 : t - 1,
                                             0) == KB_ERR_AUTH);
                delivery(o, KB_WH_AUTH_V2);
        } else {
                /* only what canonical JSON cannot write: NaN, bad UTF-8 */
                FUZZ_CHECK(r == KB_ERR_INVALID_ARG);
                FUZZ_CHECK(kb_webhook_verify(SECRET, ts, NULL, NULL, body, len,
                                             t, 0) == KB_ERR_AUTH);
        }
        sid = kb_json_get_str(o, "session_id");
        st = kb_json_get_str(o, "status");
        wt = kb_json_get_str(o, "webhook_type");
        if (sid && st && wt) {
                FUZZ_CHECK(kb_webhook_sign_simple(SECRET, t, sid, st, wt,
                                                  simple) == KB_OK);
                FUZZ_CHECK(kb_webhook_verify(SECRET, ts, NULL, simple, body,
                                             len, t, 0) == KB_OK);
                delivery(o, KB_WH_AUTH_SIMPLE);
        }
        json_object_put(o);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        char *ts, *v2, *simple, *body;
        size_t body_len;
        int r;

        ts = fuzz_field(&data, &size, '\n');
        v2 = fuzz_field(&data, &size, '\n');
        simple = fuzz_field(&data, &size, '\n');
        if (!ts || !v2 || !simple) {
                free(ts);
                free(v2);
                free(simple);
                return 0;
        }
        /* the body as received: exactly its bytes */
        body_len = data ? size : 0;
        body = malloc(body_len ? body_len : 1);
        if (!body)
                abort();
        if (body_len)
                memcpy(body, data, body_len);

        r = kb_webhook_verify(SECRET, hdr(ts), hdr(v2), hdr(simple), body,
                              body_len, VECTORS_NOW, KB_WEBHOOK_TOLERANCE_S);
        FUZZ_CHECK(r == KB_OK || r == KB_ERR_AUTH || r == KB_ERR_MALFORMED);
        if (r == KB_OK)
                FUZZ_CHECK(hdr(ts) && (hdr(v2) || hdr(simple)));
        roundtrip(body, body_len);

        free(body);
        free(ts);
        free(v2);
        free(simple);
        return 0;
}
