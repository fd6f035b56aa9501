/* webhook_sig.c -- vendor webhook signatures: X-Signature-V2 and
 * X-Signature-Simple */
#include "webhook_sig.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <sodium.h>

#include "canon.h"
#include "json.h"
#include "util.h"

#define SIG_BYTES          32U
#define WEBHOOK_JSON_DEPTH 64

/* HMAC-SHA256(secret, msg) into 32 bytes. */
static int mac_raw(const char *secret, const kb_buf_t *msg,
                   unsigned char mac[SIG_BYTES])
{
        size_t klen = strlen(secret);
        unsigned int maclen = 0;

        if (klen > INT32_MAX)
                return KB_ERR_INVALID_ARG;
        if (!HMAC(EVP_sha256(), secret, (int)klen,
                  (const unsigned char *)msg->data, msg->len, mac, &maclen) ||
            maclen != SIG_BYTES)
                return KB_ERR_CRYPTO;
        return KB_OK;
}

/* Builds "<ts>:<canonical payload>". */
static int msg_v2(int64_t ts, json_object *payload, kb_buf_t *msg)
{
        if (kb_buf_printf(msg, "%" PRId64 ":", ts) == -1)
                return KB_ERR_NOMEM;
        return kb_canon_json(payload, msg);
}

/* Builds "<ts>:<session_id>:<status>:<webhook_type>". */
static int msg_simple(int64_t ts, const char *session_id, const char *status,
                      const char *webhook_type, kb_buf_t *msg)
{
        if (kb_buf_printf(msg, "%" PRId64 ":%s:%s:%s", ts, session_id, status,
                          webhook_type) == -1)
                return KB_ERR_NOMEM;
        return KB_OK;
}

static int sign_hex(const char *secret, const kb_buf_t *msg, char out[65])
{
        unsigned char mac[SIG_BYTES];
        int rc = mac_raw(secret, msg, mac);

        if (rc == KB_OK)
                kb_hex(mac, sizeof(mac), out);
        return rc;
}

int kb_webhook_sign_v2(const char *secret, int64_t ts, json_object *payload,
                       char out[65])
{
        kb_buf_t msg = KB_BUF_INIT;
        int rc;

        if (!secret || !*secret || !out)
                return KB_ERR_INVALID_ARG;
        out[0] = '\0';
        rc = msg_v2(ts, payload, &msg);
        if (rc == KB_OK)
                rc = sign_hex(secret, &msg, out);
        kb_buf_free(&msg, 0);
        return rc;
}

int kb_webhook_sign_simple(const char *secret, int64_t ts,
                           const char *session_id, const char *status,
                           const char *webhook_type, char out[65])
{
        kb_buf_t msg = KB_BUF_INIT;
        int rc;

        if (!secret || !*secret || !out || !session_id || !status ||
            !webhook_type)
                return KB_ERR_INVALID_ARG;
        out[0] = '\0';
        rc = msg_simple(ts, session_id, status, webhook_type, &msg);
        if (rc == KB_OK)
                rc = sign_hex(secret, &msg, out);
        kb_buf_free(&msg, 0);
        return rc;
}

/* 64 hex digits -> 32 bytes; -1 on any other shape. */
static int sig_decode(const char *hex, unsigned char bin[SIG_BYTES])
{
        size_t n = 0;
        const char *end = NULL;

        if (strlen(hex) != 2 * SIG_BYTES)
                return -1;
        if (sodium_hex2bin(bin, SIG_BYTES, hex, 2 * SIG_BYTES, NULL, &n,
                           &end) != 0 ||
            n != SIG_BYTES || end != hex + 2 * SIG_BYTES)
                return -1;
        return 0;
}

/* The header must be exactly the decimal the signer wrote (the vendor signs
 * the header text), so "+5", "05" or " 5" do not pass for 5. */
static int parse_ts_header(const char *s, int64_t *ts)
{
        char canon[24];

        if (kb_parse_i64(s, INT64_MIN, INT64_MAX, ts) != 0)
                return -1;
        snprintf(canon, sizeof(canon), "%" PRId64, *ts);
        return strcmp(canon, s) == 0 ? 0 : -1;
}

static int within(int64_t now, int64_t ts, int64_t tolerance_s)
{
        uint64_t d = now >= ts ? (uint64_t)now - (uint64_t)ts
                               : (uint64_t)ts - (uint64_t)now;

        return d <= (uint64_t)tolerance_s;
}

int kb_webhook_verify(const char *secret, const char *ts_header,
                      const char *sig_v2, const char *sig_simple,
                      const char *body, size_t body_len, int64_t now,
                      int64_t tolerance_s)
{
        char err[128];
        json_object *payload = NULL;
        unsigned char want[SIG_BYTES], got[SIG_BYTES];
        kb_buf_t msg = KB_BUF_INIT;
        int64_t ts_hdr, ts_body;
        int rc;

        if (!secret || !*secret || !body || tolerance_s < 0)
                return KB_ERR_INVALID_ARG;
        if (body_len > KB_WEBHOOK_MAX_BODY)
                return KB_ERR_MALFORMED;
        payload =
            kb_json_parse(body, body_len, WEBHOOK_JSON_DEPTH, err, sizeof(err));
        if (!payload)
                return KB_ERR_MALFORMED;
        rc = KB_ERR_AUTH;
        if (!json_object_is_type(payload, json_type_object) ||
            kb_json_get_i64(payload, "timestamp", &ts_body) != 0)
                goto out;
        if (!ts_header || parse_ts_header(ts_header, &ts_hdr) != 0 ||
            ts_hdr != ts_body || !within(now, ts_hdr, tolerance_s))
                goto out;
        if (sig_v2) {
                if (sig_decode(sig_v2, got) != 0)
                        goto out;
                rc = msg_v2(ts_hdr, payload, &msg);
        } else if (sig_simple) {
                const char *sid = kb_json_get_str(payload, "session_id");
                const char *st = kb_json_get_str(payload, "status");
                const char *wt = kb_json_get_str(payload, "webhook_type");

                if (sig_decode(sig_simple, got) != 0 || !sid || !st || !wt)
                        goto out;
                rc = msg_simple(ts_hdr, sid, st, wt, &msg);
        } else {
                goto out;
        }
        if (rc == KB_OK)
                rc = mac_raw(secret, &msg, want);
        if (rc == KB_ERR_NOMEM || rc == KB_ERR_CRYPTO)
                goto out;
        /* a body that cannot be canonicalised cannot carry a valid V2 */
        if (rc != KB_OK || CRYPTO_memcmp(want, got, SIG_BYTES) != 0) {
                rc = KB_ERR_AUTH;
                goto out;
        }
        rc = KB_OK;
out:
        kb_buf_free(&msg, 0);
        json_object_put(payload);
        return rc;
}
