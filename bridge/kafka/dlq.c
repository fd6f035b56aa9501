/* dlq.c -- dead-letter records: what failed, where, why (never secrets) */
#include "dlq.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>

#include "json.h"
#include "kafka.h"
#include "log.h"
#include "util.h"

const char *const kb_dlq_input_headers[] = { "traceparent", "tracestate",
                                             "kb-requested-at", NULL };

/*
 * Redrivable: the cause lies in our configuration, our keys, our software
 * or the vendor's state, and can be fixed; the same input then succeeds.
 * Refused: the input itself (its bytes, the token or session it names) can
 * never succeed, whatever is fixed on our side. Every reason code of
 * schemas/dead-letter.schema.json has a row (tests/unit/test_dlq.c).
 */
static const kb_dlq_reason_t reasons[] = {
        /* issuer */
        { "malformed_request", 0,
          "the request itself is broken: fix the system that wrote it and "
          "send a corrected share request" },
        { "request_too_large", 0,
          "the request is over the size limit (and was not kept): send a "
          "smaller share request" },
        { "unknown_partner", 1,
          "add the partner (partner.<name>.application_id and .keys) to the "
          "issuer's configuration and restart it" },
        { "session_not_finished", 1,
          "wait until the user finished the session" },
        { "session_not_found", 1,
          "only if the session exists for the issuer's vendor application "
          "(e.g. vendor.api_key was another application's): fix the "
          "configuration" },
        { "partner_application_unknown", 1,
          "fix the partner's application_id, or have the partner's "
          "application created at the vendor" },
        { "bad_request", 1, "read the vendor's detail and fix what it names" },
        { "vendor_rejected", 1,
          "read the vendor's detail (http_status) and fix what it names" },
        { "vendor_bad_response", 1,
          "the vendor's answer was unreadable: redrive once it answers "
          "normally (a new token is minted)" },
        { "token_unsealable", 1,
          "the vendor's token did not fit an envelope: redrive after an "
          "upgrade that carries it" },
        /* importer: opening the envelope */
        { "malformed_envelope", 0,
          "the envelope is broken: ask the issuer to share again" },
        { "envelope_too_large", 0,
          "the envelope is over the size limit (and was not kept): ask the "
          "issuer to share again" },
        { "unsupported_version", 1,
          "upgrade the importer to a version that reads this envelope "
          "format" },
        { "not_addressed_to_us", 0,
          "the envelope is for another application: ask the issuer to share "
          "again with our application id" },
        { "unknown_key", 1,
          "add the missing key: the issuer as a partner (partner.<name>.keys) "
          "or our box key (keys.box_secret), and restart the importer" },
        { "authentication_failed", 0,
          "the envelope is forged or damaged and never opens: tell the "
          "issuer, and ask it to share again" },
        { "expired", 0, "the token expired: ask the issuer to share again" },
        { "unknown_issuer", 1,
          "add the issuer to the partner registry and restart the importer" },
        { "no_workflow_for_kind", 1,
          "set partner.<name>.workflow_id.user or .business and restart the "
          "importer" },
        { "vendor_data_invalid", 1,
          "fix partner.<name>.vendor_data and restart the importer" },
        /* importer: the vendor */
        { "token_rejected", 0,
          "the vendor refused the token (expired or invalid): ask the issuer "
          "to share again" },
        { "forbidden", 0,
          "the token was redeemed elsewhere or is not for us: ask the issuer "
          "to share again" },
        { "source_session_gone", 0,
          "the issuer's session no longer exists: ask the issuer for a new "
          "session and share" },
        { "workflow_not_found", 1,
          "fix partner.<name>.workflow_id.* (a workflow of our application) "
          "and restart the importer" },
        { "reconcile_failed", 1,
          "redrive once the vendor answers: the import is refused as spent "
          "and the session is looked for again" },
};

const kb_dlq_reason_t *kb_dlq_reason(const char *reason)
{
        size_t i;

        for (i = 0; reason && i < sizeof(reasons) / sizeof(reasons[0]); i++)
                if (!strcmp(reasons[i].reason, reason))
                        return &reasons[i];
        return NULL;
}

const kb_dlq_reason_t *kb_dlq_reasons(size_t *n)
{
        *n = sizeof(reasons) / sizeof(reasons[0]);
        return reasons;
}

/* ---- SHA-256 (FIPS 180-4): the kafka part links no crypto library ---- */

static const uint32_t sha_k[64] = {
        0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1,
        0x923f82a4, 0xab1c5ed5, 0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3,
        0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174, 0xe49b69c1, 0xefbe4786,
        0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
        0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147,
        0x06ca6351, 0x14292967, 0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13,
        0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85, 0xa2bfe8a1, 0xa81a664b,
        0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
        0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a,
        0x5b9cca4f, 0x682e6ff3, 0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208,
        0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2
};

#define ROR(x, n) (((x) >> (n)) | ((x) << (32 - (n))))

static void sha_block(uint32_t h[8], const unsigned char *p)
{
        uint32_t w[64], a, b, c, d, e, f, g, hh, t1, t2;
        int i;

        for (i = 0; i < 16; i++)
                w[i] = (uint32_t)p[4 * i] << 24 | (uint32_t)p[4 * i + 1] << 16 |
                       (uint32_t)p[4 * i + 2] << 8 | (uint32_t)p[4 * i + 3];
        for (i = 16; i < 64; i++)
                w[i] =
                    (ROR(w[i - 2], 17) ^ ROR(w[i - 2], 19) ^ (w[i - 2] >> 10)) +
                    w[i - 7] +
                    (ROR(w[i - 15], 7) ^ ROR(w[i - 15], 18) ^
                     (w[i - 15] >> 3)) +
                    w[i - 16];
        a = h[0], b = h[1], c = h[2], d = h[3];
        e = h[4], f = h[5], g = h[6], hh = h[7];
        for (i = 0; i < 64; i++) {
                t1 = hh + (ROR(e, 6) ^ ROR(e, 11) ^ ROR(e, 25)) +
                     ((e & f) ^ (~e & g)) + sha_k[i] + w[i];
                t2 = (ROR(a, 2) ^ ROR(a, 13) ^ ROR(a, 22)) +
                     ((a & b) ^ (a & c) ^ (b & c));
                hh = g, g = f, f = e, e = d + t1;
                d = c, c = b, b = a, a = t1 + t2;
        }
        h[0] += a, h[1] += b, h[2] += c, h[3] += d;
        h[4] += e, h[5] += f, h[6] += g, h[7] += hh;
}

void kb_dlq_sha256_hex(const void *p, size_t len, char out[65])
{
        uint32_t h[8] = { 0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a,
                          0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19 };
        const unsigned char *s = p;
        unsigned char tail[128], dig[32];
        uint64_t bits = (uint64_t)len * 8;
        size_t n = len, t;
        int i;

        for (; n >= 64; n -= 64, s += 64)
                sha_block(h, s);
        memset(tail, 0, sizeof(tail));
        if (n)
                memcpy(tail, s, n);
        tail[n] = 0x80;
        t = n < 56 ? 64 : 128;
        for (i = 0; i < 8; i++)
                tail[t - 1 - i] = (unsigned char)(bits >> (8 * i));
        sha_block(h, tail);
        if (t == 128)
                sha_block(h, tail + 64);
        for (i = 0; i < 32; i++)
                dig[i] = (unsigned char)(h[i / 4] >> (24 - 8 * (i % 4)));
        kb_hex(dig, sizeof(dig), out);
}

/* ---- base64, standard alphabet, padded ---- */

static const char b64[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

static char *b64_encode(const unsigned char *p, size_t len)
{
        char *out = malloc((len + 2) / 3 * 4 + 1), *o = out;
        size_t i;

        if (!out)
                return NULL;
        for (i = 0; i + 2 < len; i += 3) {
                uint32_t v =
                    (uint32_t)p[i] << 16 | (uint32_t)p[i + 1] << 8 | p[i + 2];
                *o++ = b64[v >> 18];
                *o++ = b64[(v >> 12) & 63];
                *o++ = b64[(v >> 6) & 63];
                *o++ = b64[v & 63];
        }
        if (i < len) {
                uint32_t v = (uint32_t)p[i] << 16 |
                             (i + 1 < len ? (uint32_t)p[i + 1] << 8 : 0);
                *o++ = b64[v >> 18];
                *o++ = b64[(v >> 12) & 63];
                *o++ = i + 1 < len ? b64[(v >> 6) & 63] : '=';
                *o++ = '=';
        }
        *o = '\0';
        return out;
}

static int b64_val(char c)
{
        const char *p = c ? strchr(b64, c) : NULL;

        return p ? (int)(p - b64) : -1;
}

/* Strict: length a multiple of 4, padding only at the end. -1 malformed,
 * -2 ENOMEM. */
static int b64_decode(const char *s, unsigned char **out, size_t *out_len)
{
        size_t len = strlen(s), i, n = 0, pad = 0;
        unsigned char *buf;

        if (len % 4)
                return -1;
        if (len && s[len - 1] == '=')
                pad++;
        if (len > 1 && s[len - 2] == '=')
                pad++;
        buf = malloc(len / 4 * 3 + 1);
        if (!buf)
                return -2;
        for (i = 0; i < len; i += 4) {
                int v[4], j, last = i + 4 == len;
                uint32_t x;

                for (j = 0; j < 4; j++) {
                        v[j] = b64_val(s[i + j]);
                        if (v[j] < 0 &&
                            !(last && s[i + j] == '=' && j >= 4 - (int)pad)) {
                                free(buf);
                                return -1;
                        }
                        if (v[j] < 0)
                                v[j] = 0;
                }
                x = (uint32_t)v[0] << 18 | (uint32_t)v[1] << 12 |
                    (uint32_t)v[2] << 6 | (uint32_t)v[3];
                buf[n++] = (unsigned char)(x >> 16);
                if (!last || pad < 2)
                        buf[n++] = (unsigned char)(x >> 8);
                if (!last || pad < 1)
                        buf[n++] = (unsigned char)x;
        }
        *out = buf;
        *out_len = n;
        return 0;
}

/* ---- the input kept in a dead letter ---- */

/* A header value we carry: text, no control characters, bounded. */
static int header_ok(const void *v, size_t len)
{
        const unsigned char *p = v;
        size_t i;

        if (!v || len > KB_DLQ_HEADER_MAX_BYTES)
                return 0;
        for (i = 0; i < len; i++)
                if (p[i] < 0x20 || p[i] > 0x7e)
                        return 0;
        return 1;
}

json_object *kb_dlq_input_json(const void *key, size_t key_len,
                               const void *value, size_t value_len,
                               rd_kafka_headers_t *hdrs)
{
        json_object *o = json_object_new_object(), *h = NULL;
        char *k64 = NULL, *v64 = NULL, dig[65], hv[KB_DLQ_HEADER_MAX_BYTES + 1];
        size_t i;
        int ok = 0;

        if (!o)
                return NULL;
        kb_dlq_sha256_hex(value ? value : "", value ? value_len : 0, dig);
        v64 =
            b64_encode(value ? value : (const void *)"", value ? value_len : 0);
        if (key)
                k64 = b64_encode(key, key_len);
        h = json_object_new_object();
        if (!v64 || (key && !k64) || !h)
                goto out;
        for (i = 0; hdrs && kb_dlq_input_headers[i]; i++) {
                const void *v;
                size_t vl;

                if (rd_kafka_header_get_last(hdrs, kb_dlq_input_headers[i], &v,
                                             &vl) ||
                    !header_ok(v, vl))
                        continue;
                memcpy(hv, v, vl);
                hv[vl] = '\0';
                if (kb_json_add_str(h, kb_dlq_input_headers[i], hv))
                        goto out;
        }
        if (json_object_object_add(o, "key",
                                   k64 ? json_object_new_string(k64) : NULL) ||
            kb_json_add_str(o, "value", v64) ||
            kb_json_add_i64(o, "size", (int64_t)(value ? value_len : 0)) ||
            kb_json_add_str(o, "sha256", dig) ||
            json_object_object_add(o, "headers", h))
                goto out;
        h = NULL;
        ok = 1;
out:
        json_object_put(h);
        free(k64);
        free(v64);
        if (!ok) {
                json_object_put(o);
                o = NULL;
        }
        return o;
}

static int allowed_header(const char *name)
{
        size_t i;

        for (i = 0; kb_dlq_input_headers[i]; i++)
                if (!strcmp(kb_dlq_input_headers[i], name))
                        return 1;
        return 0;
}

void kb_dlq_input_free(kb_dlq_input_t *in)
{
        free(in->key);
        free(in->value);
        memset(in, 0, sizeof(*in));
}

int kb_dlq_input_decode(json_object *input, kb_dlq_input_t *out, char *errstr,
                        size_t errstr_size)
{
        const char *v64, *k64, *dig;
        json_object *h = NULL, *kv = NULL;
        char got[65];
        int64_t size;
        size_t nh = 0;
        int r;

        memset(out, 0, sizeof(*out));
        if (!input || !json_object_is_type(input, json_type_object)) {
                kb_snprintf(errstr, errstr_size, "no input kept");
                return KB_ERR_MALFORMED;
        }
        v64 = kb_json_get_str(input, "value");
        dig = kb_json_get_str(input, "sha256");
        if (!v64 || !dig || kb_json_get_i64(input, "size", &size)) {
                kb_snprintf(errstr, errstr_size,
                            "input lacks value, size or sha256");
                return KB_ERR_MALFORMED;
        }
        json_object_object_get_ex(input, "key", &kv);
        k64 = kv && json_object_is_type(kv, json_type_string)
                  ? json_object_get_string(kv)
                  : NULL;
        if (kv && !k64) {
                kb_snprintf(errstr, errstr_size, "input key is no string");
                return KB_ERR_MALFORMED;
        }
        r = b64_decode(v64, &out->value, &out->value_len);
        if (!r && k64)
                r = b64_decode(k64, &out->key, &out->key_len);
        if (r) {
                kb_dlq_input_free(out);
                if (r == -2)
                        return KB_ERR_NOMEM;
                kb_snprintf(errstr, errstr_size, "input is not base64");
                return KB_ERR_MALFORMED;
        }
        kb_dlq_sha256_hex(out->value, out->value_len, got);
        if ((int64_t)out->value_len != size || strcmp(got, dig)) {
                kb_dlq_input_free(out);
                kb_snprintf(errstr, errstr_size,
                            "input does not match its size and sha256");
                return KB_ERR_MALFORMED;
        }
        if (json_object_object_get_ex(input, "headers", &h) && h) {
                if (!json_object_is_type(h, json_type_object)) {
                        kb_dlq_input_free(out);
                        kb_snprintf(errstr, errstr_size,
                                    "input headers are no object");
                        return KB_ERR_MALFORMED;
                }
                json_object_object_foreach(h, name, val)
                {
                        const char *s = json_object_get_string(val);

                        if (!allowed_header(name) ||
                            !json_object_is_type(val, json_type_string) ||
                            !header_ok(s, strlen(s)) ||
                            nh + 3 > sizeof(out->headers) /
                                         sizeof(out->headers[0])) {
                                kb_dlq_input_free(out);
                                kb_snprintf(errstr, errstr_size,
                                            "input header %.64s not allowed",
                                            name);
                                return KB_ERR_MALFORMED;
                        }
                        out->headers[nh++] = name;
                        out->headers[nh++] = s;
                }
        }
        out->headers[nh] = NULL;
        return KB_OK;
}

/* ---- producing a dead letter ---- */

int kb_dlq_keeps_input(const char *reason, size_t value_len)
{
        const kb_dlq_reason_t *rr = kb_dlq_reason(reason);

        return rr && rr->redrivable && value_len <= KB_DLQ_INPUT_MAX_BYTES;
}

int kb_dlq_produce(kb_rec_t *rec, const char *topic, const char *stage,
                   const char *reason, const char *detail, const char *share_id,
                   json_object *extra)
{
        json_object *o = json_object_new_object(), *src, *in;
        rd_kafka_headers_t *hdrs, *ih = kb_rec_headers(rec);
        const void *key, *val;
        char clean[1024], rof[300];
        const char *txt;
        size_t len, klen, vlen, i;
        int r = KB_ERR_NOMEM;

        if (!o)
                goto out;
        kb_log_scrub(detail ? detail : "", clean, sizeof(clean));
        if (kb_json_add_str(o, "format", KB_DLQ_FORMAT) ||
            json_object_object_add(o, "share_id",
                                   share_id ? json_object_new_string(share_id)
                                            : NULL) ||
            kb_json_add_str(o, "stage", stage) ||
            kb_json_add_str(o, "reason", reason) ||
            kb_json_add_str(o, "detail", clean) ||
            kb_json_add_i64(o, "at", kb_time_now()))
                goto out;
        src = json_object_new_object();
        if (!src || json_object_object_add(o, "source", src)) {
                json_object_put(src);
                goto out;
        }
        if (kb_json_add_str(src, "topic", kb_rec_topic(rec)) ||
            kb_json_add_i64(src, "partition", kb_rec_partition(rec)) ||
            kb_json_add_i64(src, "offset", kb_rec_offset(rec)))
                goto out;
        key = kb_rec_key(rec, &klen);
        val = kb_rec_value(rec, &vlen);
        if (kb_dlq_keeps_input(reason, val ? vlen : 0)) {
                in = kb_dlq_input_json(key, klen, val, val ? vlen : 0, ih);
                if (!in || json_object_object_add(o, "input", in)) {
                        json_object_put(in);
                        goto out;
                }
        }
        /* a redriven input that failed again names the dead letter it
         * came from */
        if (ih && !kb_kafka_header_get(ih, "kb-redrive-of", rof, sizeof(rof)) &&
            header_ok(rof, strlen(rof)) &&
            kb_json_add_str(o, "redrive_of", rof))
                goto out;
        if (extra) {
                json_object_object_foreach(extra, k, v)
                {
                        if (json_object_object_add(o, k, json_object_get(v)))
                                goto out;
                }
        }
        txt = kb_json_str(o, &len);
        hdrs = rd_kafka_headers_new(5);
        if (!hdrs)
                goto out;
        rd_kafka_header_add(hdrs, "kb-reason", -1, reason, -1);
        rd_kafka_header_add(hdrs, "content-type", -1, "application/json", -1);
        for (i = 0; ih && kb_dlq_input_headers[i]; i++) {
                const void *v;
                size_t vl;

                if (!rd_kafka_header_get_last(ih, kb_dlq_input_headers[i], &v,
                                              &vl) &&
                    header_ok(v, vl))
                        rd_kafka_header_add(hdrs, kb_dlq_input_headers[i], -1,
                                            v, (ssize_t)vl);
        }
        r = kb_rec_produce(rec, topic, RD_KAFKA_PARTITION_UA, share_id,
                           share_id ? strlen(share_id) : 0, txt, len, hdrs);
out:
        json_object_put(extra);
        json_object_put(o);
        return r;
}
