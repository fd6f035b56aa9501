/* test_envelope.c -- unit tests for envelope.c: vectors, round trips, mutations
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "envelope_int.h"
#include "json.h"
#include "keys_int.h"
#include "kyc_bridge.h"
#include "util.h"

#define VEC_DIR                KB_TEST_DATA_DIR "/vectors/envelope-v1"
#define ROUNDTRIPS             2000
#define MUTATIONS_PER_ENVELOPE 400
#define MUTATED_ENVELOPES      16

/* ---- a small deterministic PRNG (xorshift64*); seed from KB_TEST_SEED ---- */

static uint64_t rng_state;

static void rng_seed(void)
{
        const char *s = getenv("KB_TEST_SEED");
        int64_t v;

        rng_state = UINT64_C(0x6b79632d62726467);
        if (s && kb_parse_i64(s, 1, INT64_MAX, &v) == 0)
                rng_state = (uint64_t)v;
        print_message("random seed %llu (set KB_TEST_SEED to replay)\n",
                      (unsigned long long)rng_state);
}

static uint64_t rng(void)
{
        rng_state ^= rng_state >> 12;
        rng_state ^= rng_state << 25;
        rng_state ^= rng_state >> 27;
        return rng_state * UINT64_C(2685821657736338717);
}

static uint32_t rng_below(uint32_t n)
{
        return (uint32_t)(rng() % n);
}

/* ---- helpers ---- */

static char *read_vec(const char *name, size_t *len)
{
        char path[1024], *buf = NULL;
        size_t n = 0;

        kb_snprintf(path, sizeof(path), "%s/%s", VEC_DIR, name);
        if (kb_read_file(path, 1 << 20, &buf, &n) != 0)
                fail_msg("cannot read %s", path);
        if (len)
                *len = n;
        return buf;
}

static kb_key_t *load_key(const char *name)
{
        char path[1024], err[512];
        kb_key_t *key;

        kb_snprintf(path, sizeof(path), "%s/%s", VEC_DIR, name);
        key = kb_key_load_secret(path, NULL, 0, err, sizeof(err));
        if (!key)
                fail_msg("%s", err);
        return key;
}

static kb_bundle_t *load_bundle(const char *name)
{
        char path[1024], err[512];
        kb_bundle_t *b;

        kb_snprintf(path, sizeof(path), "%s/%s", VEC_DIR, name);
        b = kb_bundle_load(path, err, sizeof(err));
        if (!b)
                fail_msg("%s", err);
        return b;
}

typedef struct {
        char app_id[KB_ENVELOPE_MAX_ID + 1];
        kb_keyring_t *box, *signers;
        kb_envelope_opener_t op;
} opener_t;

static void opener_load(json_object *o, opener_t *op)
{
        json_object *boxes = kb_json_get(o, "box_keys");
        json_object *signers = kb_json_get(o, "signers");
        size_t i;

        memset(op, 0, sizeof(*op));
        kb_strlcpy(op->app_id, kb_json_get_str(o, "app_id"),
                   sizeof(op->app_id));
        op->box = kb_keyring_new();
        op->signers = kb_keyring_new();
        for (i = 0; i < json_object_array_length(boxes); i++)
                assert_int_equal(
                    kb_keyring_add(op->box,
                                   load_key(json_object_get_string(
                                       json_object_array_get_idx(boxes, i))),
                                   NULL),
                    KB_OK);
        for (i = 0; i < json_object_array_length(signers); i++) {
                json_object *s = json_object_array_get_idx(signers, i);
                kb_bundle_t *b = load_bundle(kb_json_get_str(s, "bundle"));
                assert_int_equal(
                    kb_keyring_add_bundle(op->signers, b, KB_KEY_SIGN,
                                          kb_json_get_str(s, "app_id")),
                    KB_OK);
                kb_bundle_destroy(b);
        }
        op->op.my_application_id = op->app_id;
        op->op.box_keys = op->box;
        op->op.signers = op->signers;
        assert_int_equal(kb_json_get_i64(o, "now", &op->op.now), 0);
}

static void opener_free(opener_t *op)
{
        kb_keyring_destroy(op->box);
        kb_keyring_destroy(op->signers);
}

static json_object *load_manifest(void)
{
        size_t len;
        char *txt = read_vec("manifest.json", &len);
        char err[128];
        json_object *m = kb_json_parse(txt, len, 16, err, sizeof(err));

        if (!m)
                fail_msg("manifest.json: %s", err);
        free(txt);
        assert_string_equal(kb_json_get_str(m, "format"),
                            "kyc-bridge-envelope-vectors/1");
        return m;
}

static void check_fields_json(json_object *exp, const kb_envelope_fields_t *f)
{
        int64_t t;

        assert_string_equal(kb_json_get_str(exp, "issuer_application_id"),
                            f->issuer_application_id);
        assert_string_equal(kb_json_get_str(exp, "for_application_id"),
                            f->for_application_id);
        assert_string_equal(kb_json_get_str(exp, "recipient_key_id"),
                            f->recipient_key_id);
        assert_string_equal(kb_json_get_str(exp, "signer_key_id"),
                            f->signer_key_id);
        assert_string_equal(kb_json_get_str(exp, "share_id"), f->share_id);
        assert_string_equal(kb_json_get_str(exp, "session_kind"),
                            kb_session_kind2str(f->session_kind));
        assert_string_equal(kb_json_get_str(exp, "source_session_id"),
                            f->source_session_id);
        assert_string_equal(kb_json_get_str(exp, "vendor_data_hint"),
                            f->vendor_data_hint);
        assert_int_equal(kb_json_get_i64(exp, "created_at", &t), 0);
        assert_int_equal(t, f->created_at);
        assert_int_equal(kb_json_get_i64(exp, "expires_at", &t), 0);
        assert_int_equal(t, f->expires_at);
}

/* Fills fields from an expected-file "fields" object. */
static void fields_from_json(json_object *exp, kb_envelope_fields_t *f)
{
        memset(f, 0, sizeof(*f));
        kb_strlcpy(f->issuer_application_id,
                   kb_json_get_str(exp, "issuer_application_id"),
                   sizeof(f->issuer_application_id));
        kb_strlcpy(f->for_application_id,
                   kb_json_get_str(exp, "for_application_id"),
                   sizeof(f->for_application_id));
        kb_strlcpy(f->share_id, kb_json_get_str(exp, "share_id"),
                   sizeof(f->share_id));
        kb_strlcpy(f->source_session_id,
                   kb_json_get_str(exp, "source_session_id"),
                   sizeof(f->source_session_id));
        kb_strlcpy(f->vendor_data_hint,
                   kb_json_get_str(exp, "vendor_data_hint"),
                   sizeof(f->vendor_data_hint));
        f->session_kind =
            kb_session_kind_parse(kb_json_get_str(exp, "session_kind"));
        kb_json_get_i64(exp, "created_at", &f->created_at);
        kb_json_get_i64(exp, "expires_at", &f->expires_at);
}

/* ---- the committed vectors ---- */

static void test_vectors(void **state)
{
        /* every case the format promises to catch has a vector */
        static const char *const required[] = {
                "valid.json",
                "valid-kyb.json",
                "tampered-share-id.json",
                "tampered-expires-at.json",
                "tampered-ciphertext.json",
                "wrong-recipient.json",
                "unknown-recipient-key.json",
                "unknown-signer.json",
                "signer-of-other-issuer.json",
                "resealed-to-third-party.json",
                "expired.json",
                "wrong-version.json",
                "truncated.json",
                "oversized.json",
                "bad-base64.json",
                "duplicate-key.json",
                "extra-member.json",
                "not-for-us.json",
                "signature-without-context.json",
                "inner-not-json.json",
        };
        json_object *m = load_manifest(), *openers, *vecs;
        opener_t rcpt, other;
        size_t i, j, n, found = 0, ok = 0;

        (void)state;
        openers = kb_json_get(m, "openers");
        opener_load(kb_json_get(openers, "recipient"), &rcpt);
        opener_load(kb_json_get(openers, "other"), &other);
        vecs = kb_json_get(m, "vectors");
        n = json_object_array_length(vecs);
        assert_true(n >= 28);
        for (j = 0; j < KB_ARRAY_SIZE(required); j++) {
                for (i = 0; i < n; i++)
                        if (!strcmp(
                                kb_json_get_str(
                                    json_object_array_get_idx(vecs, i), "file"),
                                required[j]))
                                break;
                if (i == n)
                        fail_msg("manifest lacks %s", required[j]);
                found++;
        }
        assert_int_equal(found, KB_ARRAY_SIZE(required));

        for (i = 0; i < n; i++) {
                json_object *v = json_object_array_get_idx(vecs, i);
                const char *file = kb_json_get_str(v, "file");
                const char *expect = kb_json_get_str(v, "expect");
                const char *peek = kb_json_get_str(v, "peek");
                json_object *hsid = kb_json_get(v, "header_share_id");
                opener_t *op = !strcmp(kb_json_get_str(v, "opener"), "other")
                                   ? &other
                                   : &rcpt;
                kb_envelope_header_t hdr;
                kb_envelope_fields_t f;
                char *env, *token = (char *)1;
                size_t len, token_len = 99;
                int rc;

                env = read_vec(file, &len);
                rc = kb_envelope_open(env, len, &op->op, &hdr, &f, &token,
                                      &token_len);
                if (strcmp(kb_err2name(rc), expect) != 0)
                        fail_msg("%s: got %s, expected %s", file,
                                 kb_err2name(rc), expect);
                /* the header is reported whenever it parsed */
                if (hsid) {
                        if (!hdr.valid)
                                fail_msg("%s: header not reported", file);
                        assert_string_equal(hdr.share_id,
                                            json_object_get_string(hsid));
                } else if (hdr.valid) {
                        fail_msg("%s: header reported valid", file);
                }
                rc = kb_envelope_peek(env, len, &hdr);
                if (strcmp(kb_err2name(rc), peek) != 0)
                        fail_msg("%s: peek got %s, expected %s", file,
                                 kb_err2name(rc), peek);
                if (strcmp(expect, "KB_OK") != 0) {
                        assert_null(token);
                        assert_int_equal(token_len, 0);
                        /* nothing unverified leaks out on failure */
                        assert_string_equal(f.share_id, "");
                        assert_string_equal(f.issuer_application_id, "");
                } else {
                        size_t elen;
                        char *etxt =
                            read_vec(kb_json_get_str(v, "expected"), &elen);
                        json_object *e = kb_json_parse(etxt, elen, 8, NULL, 0);
                        char digest[KB_DIGEST_STR_BYTES];

                        assert_non_null(e);
                        check_fields_json(kb_json_get(e, "fields"), &f);
                        assert_int_equal(token_len, strlen(kb_json_get_str(
                                                        e, "share_token")));
                        assert_string_equal(token,
                                            kb_json_get_str(e, "share_token"));
                        kb_digest_str(token, token_len, digest);
                        assert_string_equal(
                            digest, kb_json_get_str(e, "share_token_digest"));
                        /* header and signed copy agree */
                        assert_string_equal(hdr.share_id, f.share_id);
                        assert_int_equal(hdr.expires_at, f.expires_at);
                        kb_envelope_token_free(token);
                        json_object_put(e);
                        free(etxt);
                        ok++;
                }
                free(env);
        }
        assert_int_equal(ok, 2);
        opener_free(&rcpt);
        opener_free(&other);
        json_object_put(m);
}

/* Unseals @p env with @p box using libsodium directly (not envelope.c). */
static unsigned char *raw_unseal(const char *env, size_t len,
                                 const kb_key_t *box, size_t *out_len)
{
        json_object *o = kb_json_parse(env, len, 4, NULL, 0);
        const char *b64 = kb_json_get_str(o, "sealed");
        size_t blen = strlen(b64), clen = 0;
        unsigned char *c = malloc(blen), *m;

        assert_non_null(c);
        assert_int_equal(
            sodium_base642bin(c, blen, b64, blen, NULL, &clen, NULL,
                              sodium_base64_VARIANT_URLSAFE_NO_PADDING),
            0);
        m = malloc(clen);
        assert_int_equal(kb_keyint_seal_open(box, m, c, clen), KB_OK);
        *out_len = clen - crypto_box_SEALBYTES;
        free(c);
        json_object_put(o);
        return m;
}

/* The deterministic parts of the wire format, byte for byte. */
static void test_vector_bytes(void **state)
{
        static const unsigned char ctx[23] = "kyc-bridge envelope v1";
        kb_key_t *rkey = load_key("recipient.box.key");
        kb_key_t *ikey = load_key("issuer.sign.key");
        kb_bundle_t *ib = load_bundle("issuer.pub.json");
        kb_bundle_t *rb = load_bundle("recipient.pub.json");
        size_t vlen, ilen, blen, si_len, si2_len, elen;
        char *valid = read_vec("valid.json", &vlen);
        char *inner = read_vec("valid.inner.json", &ilen);
        char *b64 = read_vec("valid.signed_inner.b64", &blen);
        char *etxt = read_vec("valid.expected.json", &elen);
        json_object *e = kb_json_parse(etxt, elen, 8, NULL, 0);
        unsigned char *si, *si2, *msg, committed[4096];
        size_t clen = 0;
        kb_envelope_fields_t f;
        const char *tok = kb_json_get_str(e, "share_token");
        char *env = NULL, *a, *b;
        size_t env_len = 0;

        (void)state;
        assert_int_equal(
            sodium_base642bin(committed, sizeof(committed), b64, blen, NULL,
                              &clen, NULL,
                              sodium_base64_VARIANT_URLSAFE_NO_PADDING),
            0);
        /* the committed envelope holds exactly the committed signed inner */
        si = raw_unseal(valid, vlen, rkey, &si_len);
        assert_int_equal(si_len, clen);
        assert_memory_equal(si, committed, clen);
        assert_int_equal(si_len, 64 + ilen);
        assert_memory_equal(si + 64, inner, ilen);
        /* the signature covers "kyc-bridge envelope v1" 0x00 || inner */
        msg = malloc(sizeof(ctx) + ilen);
        memcpy(msg, ctx, sizeof(ctx));
        memcpy(msg + sizeof(ctx), inner, ilen);
        assert_int_equal(crypto_sign_verify_detached(
                             si, msg, sizeof(ctx) + ilen,
                             kb_key_public(kb_bundle_get(ib, KB_KEY_SIGN, 0))),
                         0);
        assert_int_not_equal(
            crypto_sign_verify_detached(
                si, (const unsigned char *)inner, ilen,
                kb_key_public(kb_bundle_get(ib, KB_KEY_SIGN, 0))),
            0);

        /* sealing the same fields again gives the same signed inner (Ed25519
         * is deterministic) and the same outer text but for "sealed" */
        fields_from_json(kb_json_get(e, "fields"), &f);
        assert_int_equal(kb_envelope_seal(&f, tok, strlen(tok), ikey,
                                          kb_bundle_get(rb, KB_KEY_BOX, 0),
                                          &env, &env_len),
                         KB_OK);
        assert_int_equal(strlen(env), env_len);
        si2 = raw_unseal(env, env_len, rkey, &si2_len);
        assert_int_equal(si2_len, si_len);
        assert_memory_equal(si2, si, si_len);
        a = strstr(valid, "\"sealed\":\"");
        b = strstr(env, "\"sealed\":\"");
        assert_non_null(a);
        assert_non_null(b);
        assert_int_equal(a - valid, b - env);
        assert_memory_equal(valid, env, (size_t)(a - valid));
        assert_string_not_equal(a, b);   /* fresh ephemeral key */
        assert_int_equal(vlen, env_len); /* same size: no padding variance */

        kb_key_destroy(rkey);
        kb_key_destroy(ikey);
        kb_bundle_destroy(ib);
        kb_bundle_destroy(rb);
        free(valid);
        free(inner);
        free(b64);
        free(etxt);
        free(msg);
        free(si);
        free(si2);
        free(env);
        json_object_put(e);
}

/* The passphrase-protected copy of the recipient key opens the vector. */
static void test_vector_encrypted_key(void **state)
{
        char path[1024], err[512];
        size_t plen;
        char *pass = read_vec("recipient-encrypted.passphrase", &plen);
        kb_key_t *enc, *plain = load_key("recipient.box.key");

        (void)state;
        assert_true(plen > 1 && pass[plen - 1] == '\n');
        kb_snprintf(path, sizeof(path), "%s/recipient-encrypted.box.key",
                    VEC_DIR);
        enc = kb_key_load_secret(path, pass, plen - 1, err, sizeof(err));
        if (!enc)
                fail_msg("%s", err);
        assert_string_equal(kb_key_id(enc), kb_key_id(plain));
        assert_null(kb_key_load_secret(path, pass, plen, err, sizeof(err)));
        kb_key_destroy(enc);
        kb_key_destroy(plain);
        free(pass);
}

/* ---- random round trips ---- */

/* Appends one random code point (no controls) to @p s if it fits in @p max
 * bytes; returns the new length. @p ascii_only limits to 0x20..0x7e. */
static size_t rand_char(char *s, size_t len, size_t max)
{
        uint32_t cp, kind = rng_below(8);
        unsigned char u[4];
        size_t n;

        if (kind < 4) {
                cp = 0x20 + rng_below(0x7f - 0x20);
        } else if (kind < 6) {
                cp = 0x80 + rng_below(0x800 - 0x80);
        } else if (kind < 7) {
                do
                        cp = 0x800 + rng_below(0x10000 - 0x800);
                while (cp >= 0xd800 && cp <= 0xdfff);
        } else {
                cp = 0x10000 + rng_below(0x110000 - 0x10000);
        }
        if (cp < 0x80) {
                u[0] = (unsigned char)cp;
                n = 1;
        } else if (cp < 0x800) {
                u[0] = (unsigned char)(0xc0 | (cp >> 6));
                u[1] = (unsigned char)(0x80 | (cp & 0x3f));
                n = 2;
        } else if (cp < 0x10000) {
                u[0] = (unsigned char)(0xe0 | (cp >> 12));
                u[1] = (unsigned char)(0x80 | ((cp >> 6) & 0x3f));
                u[2] = (unsigned char)(0x80 | (cp & 0x3f));
                n = 3;
        } else {
                u[0] = (unsigned char)(0xf0 | (cp >> 18));
                u[1] = (unsigned char)(0x80 | ((cp >> 12) & 0x3f));
                u[2] = (unsigned char)(0x80 | ((cp >> 6) & 0x3f));
                u[3] = (unsigned char)(0x80 | (cp & 0x3f));
                n = 4;
        }
        if (len + n > max)
                return len;
        memcpy(s + len, u, n);
        return len + n;
}

/* A random id of 1..KB_ENVELOPE_MAX_ID bytes; a quarter are as long as the
 * limit allows. */
static void rand_id(char *s)
{
        size_t target = rng_below(4) == 0 ? KB_ENVELOPE_MAX_ID
                                          : 1 + rng_below(KB_ENVELOPE_MAX_ID);
        size_t len = 0, tries = 0;

        while (len < target && tries++ < 4 * KB_ENVELOPE_MAX_ID)
                len = rand_char(s, len, target);
        if (len == 0)
                s[len++] = 'x';
        s[len] = '\0';
        assert_true(kb_utf8_is_text(s, len));
}

static size_t rand_token(char *t)
{
        size_t len = rng_below(4) == 0 ? KB_ENVELOPE_MAX_TOKEN
                                       : 1 + rng_below(KB_ENVELOPE_MAX_TOKEN);
        size_t i;

        for (i = 0; i < len; i++)
                t[i] = (char)(0x21 + rng_below(0x7f - 0x21));
        t[len] = '\0';
        return len;
}

static void rand_fields(kb_envelope_fields_t *f)
{
        memset(f, 0, sizeof(*f));
        rand_id(f->issuer_application_id);
        rand_id(f->for_application_id);
        rand_id(f->share_id);
        rand_id(f->source_session_id);
        if (rng_below(3))
                rand_id(f->vendor_data_hint);
        f->session_kind = rng_below(2) ? KB_SESSION_USER : KB_SESSION_BUSINESS;
        switch (rng_below(4)) {
        case 0:
                f->created_at = 0;
                break;
        case 1:
                f->created_at =
                    INT64_C(9007199254740991) - 1 - (int64_t)rng_below(1000);
                break;
        default:
                f->created_at = 1700000000 + (int64_t)rng_below(1u << 30);
        }
        f->expires_at = f->created_at + 1 + (int64_t)rng_below(86400);
        if (f->expires_at > INT64_C(9007199254740991))
                f->expires_at = INT64_C(9007199254740991);
}

static void assert_fields_equal(const kb_envelope_fields_t *a,
                                const kb_envelope_fields_t *b)
{
        assert_string_equal(a->issuer_application_id, b->issuer_application_id);
        assert_string_equal(a->for_application_id, b->for_application_id);
        assert_string_equal(a->share_id, b->share_id);
        assert_string_equal(a->source_session_id, b->source_session_id);
        assert_string_equal(a->vendor_data_hint, b->vendor_data_hint);
        assert_string_equal(a->recipient_key_id, b->recipient_key_id);
        assert_string_equal(a->signer_key_id, b->signer_key_id);
        assert_int_equal(a->session_kind, b->session_kind);
        assert_int_equal(a->created_at, b->created_at);
        assert_int_equal(a->expires_at, b->expires_at);
}

typedef struct {
        kb_key_t *box, *sign;
        kb_keyring_t *box_ring, *sign_ring;
} keys_t;

static void keys_new(keys_t *k)
{
        kb_key_t *pub;

        k->box = kb_key_generate(KB_KEY_BOX);
        k->sign = kb_key_generate(KB_KEY_SIGN);
        k->box_ring = kb_keyring_new();
        k->sign_ring = kb_keyring_new();
        /* the ring owns a copy of the box key pair via its file format */
        {
                unsigned char sec[32];
                kb_keyint_export_secret(k->box, sec);
                assert_int_equal(
                    kb_keyring_add(k->box_ring,
                                   kb_keyint_from_secret(KB_KEY_BOX, sec),
                                   NULL),
                    KB_OK);
                sodium_memzero(sec, sizeof(sec));
        }
        pub = kb_key_from_public(KB_KEY_SIGN, kb_key_public(k->sign));
        assert_int_equal(kb_keyring_add(k->sign_ring, pub, "unused"), KB_OK);
}

static void keys_free(keys_t *k)
{
        kb_key_destroy(k->box);
        kb_key_destroy(k->sign);
        kb_keyring_destroy(k->box_ring);
        kb_keyring_destroy(k->sign_ring);
}

/* A ring of one signing key owned by @p owner (fresh for every owner). */
static kb_keyring_t *signer_ring(const kb_key_t *sign, const char *owner)
{
        kb_keyring_t *r = kb_keyring_new();

        assert_int_equal(
            kb_keyring_add(
                r, kb_key_from_public(KB_KEY_SIGN, kb_key_public(sign)), owner),
            KB_OK);
        return r;
}

static void test_roundtrip_random(void **state)
{
        static char tok[KB_ENVELOPE_MAX_TOKEN + 1];
        keys_t k;
        int i, max_token_seen = 0, max_id_seen = 0;

        (void)state;
        rng_seed();
        keys_new(&k);
        for (i = 0; i < ROUNDTRIPS; i++) {
                kb_envelope_fields_t f, g;
                kb_envelope_header_t hdr, phdr;
                kb_envelope_opener_t op;
                kb_keyring_t *signers;
                size_t tok_len = rand_token(tok), env_len = 0, out_len = 0;
                char *env = NULL, *out = NULL;
                int rc;

                rand_fields(&f);
                max_token_seen |= tok_len == KB_ENVELOPE_MAX_TOKEN;
                max_id_seen |= strlen(f.share_id) == KB_ENVELOPE_MAX_ID;
                rc = kb_envelope_seal(&f, tok, tok_len, k.sign, k.box, &env,
                                      &env_len);
                if (rc != KB_OK)
                        fail_msg("round %d: seal: %s", i, kb_err2name(rc));
                assert_true(env_len <= KB_ENVELOPE_MAX_BYTES);
                signers = signer_ring(k.sign, f.issuer_application_id);
                op.my_application_id = f.for_application_id;
                op.box_keys = k.box_ring;
                op.signers = signers;
                op.now = f.created_at;
                rc = kb_envelope_open(env, env_len, &op, &hdr, &g, &out,
                                      &out_len);
                if (rc != KB_OK)
                        fail_msg("round %d: open: %s", i, kb_err2name(rc));
                kb_strlcpy(f.recipient_key_id, kb_key_id(k.box),
                           sizeof(f.recipient_key_id));
                kb_strlcpy(f.signer_key_id, kb_key_id(k.sign),
                           sizeof(f.signer_key_id));
                assert_fields_equal(&f, &g);
                assert_int_equal(out_len, tok_len);
                assert_memory_equal(out, tok, tok_len);
                assert_int_equal(out[out_len], '\0');
                assert_true(hdr.valid);
                assert_string_equal(hdr.share_id, f.share_id);
                assert_string_equal(hdr.for_application_id,
                                    f.for_application_id);
                assert_int_equal(kb_envelope_peek(env, env_len, &phdr), KB_OK);
                assert_memory_equal(&phdr, &hdr, sizeof(hdr));
                /* expiry is exclusive: at expires_at it is expired */
                kb_envelope_token_free(out);
                op.now = f.expires_at;
                assert_int_equal(kb_envelope_open(env, env_len, &op, &hdr, &g,
                                                  &out, &out_len),
                                 KB_ERR_EXPIRED);
                assert_null(out);
                kb_keyring_destroy(signers);
                free(env);
        }
        /* the generator did reach the limits */
        assert_true(max_token_seen);
        assert_true(max_id_seen);
        keys_free(&k);
}

/* ---- single-byte mutations never yield a different opened envelope ---- */

static void test_mutations(void **state)
{
        static char tok[KB_ENVELOPE_MAX_TOKEN + 1];
        keys_t k;
        int e, m, opened_same = 0, refused = 0;

        (void)state;
        rng_seed();
        keys_new(&k);
        for (e = 0; e < MUTATED_ENVELOPES; e++) {
                kb_envelope_fields_t f, g;
                kb_envelope_header_t hdr;
                kb_envelope_opener_t op;
                kb_keyring_t *signers;
                size_t tok_len, env_len = 0, out_len;
                char *env = NULL, *mut, *out;

                rand_fields(&f);
                if (e % 2) {
                        /* short, realistic ids: mutations hit every part */
                        kb_strlcpy(f.share_id, "share-1", sizeof(f.share_id));
                        tok_len = 1 + rng_below(200);
                        memset(tok, 'T', tok_len);
                        tok[tok_len] = '\0';
                } else {
                        tok_len = rand_token(tok);
                        if (tok_len > 600)
                                tok_len = 1 + rng_below(600);
                        tok[tok_len] = '\0';
                }
                assert_int_equal(kb_envelope_seal(&f, tok, tok_len, k.sign,
                                                  k.box, &env, &env_len),
                                 KB_OK);
                kb_strlcpy(f.recipient_key_id, kb_key_id(k.box),
                           sizeof(f.recipient_key_id));
                kb_strlcpy(f.signer_key_id, kb_key_id(k.sign),
                           sizeof(f.signer_key_id));
                signers = signer_ring(k.sign, f.issuer_application_id);
                op.my_application_id = f.for_application_id;
                op.box_keys = k.box_ring;
                op.signers = signers;
                op.now = f.created_at;
                mut = malloc(env_len);
                assert_non_null(mut);
                for (m = 0; m < MUTATIONS_PER_ENVELOPE; m++) {
                        size_t pos = rng_below((uint32_t)env_len);
                        unsigned char nb;
                        int rc;

                        memcpy(mut, env, env_len);
                        do
                                nb = (unsigned char)rng_below(256);
                        while (nb == (unsigned char)env[pos]);
                        mut[pos] = (char)nb;
                        out = NULL;
                        out_len = 0;
                        rc = kb_envelope_open(mut, env_len, &op, &hdr, &g, &out,
                                              &out_len);
                        if (rc == KB_OK) {
                                /* only a change that means nothing may
                                 * open, and then to the same content */
                                assert_fields_equal(&f, &g);
                                assert_int_equal(out_len, tok_len);
                                assert_memory_equal(out, tok, tok_len);
                                kb_envelope_token_free(out);
                                opened_same++;
                        } else {
                                assert_null(out);
                                refused++;
                        }
                }
                free(mut);
                kb_keyring_destroy(signers);
                free(env);
        }
        print_message("mutations: %d refused, %d opened unchanged\n", refused,
                      opened_same);
        /* compact JSON leaves almost no meaning-free byte */
        assert_true(refused >=
                    MUTATED_ENVELOPES * MUTATIONS_PER_ENVELOPE * 95 / 100);
        keys_free(&k);
}

/* ---- argument checks and the order of checks ---- */

static void base_fields(kb_envelope_fields_t *f)
{
        memset(f, 0, sizeof(*f));
        kb_strlcpy(f->issuer_application_id, "issuer-app",
                   sizeof(f->issuer_application_id));
        kb_strlcpy(f->for_application_id, "partner-app",
                   sizeof(f->for_application_id));
        kb_strlcpy(f->share_id, "share-42", sizeof(f->share_id));
        kb_strlcpy(f->source_session_id, "session-7",
                   sizeof(f->source_session_id));
        f->session_kind = KB_SESSION_USER;
        f->created_at = 1000;
        f->expires_at = 2000;
}

static int seal_rc(const kb_envelope_fields_t *f, const char *tok, size_t len,
                   const kb_key_t *s, const kb_key_t *r)
{
        char *env = (char *)1;
        size_t env_len = 7;
        int rc = kb_envelope_seal(f, tok, len, s, r, &env, &env_len);

        if (rc == KB_OK) {
                free(env);
        } else {
                assert_null(env);
                assert_int_equal(env_len, 0);
        }
        return rc;
}

static void test_seal_args(void **state)
{
        static char tok[KB_ENVELOPE_MAX_TOKEN + 2];
        kb_key_t *box = kb_key_generate(KB_KEY_BOX);
        kb_key_t *sign = kb_key_generate(KB_KEY_SIGN);
        kb_key_t *sign_pub =
            kb_key_from_public(KB_KEY_SIGN, kb_key_public(sign));
        kb_envelope_fields_t f, g;
        char *env = NULL;
        size_t len = 0;

        (void)state;
        base_fields(&f);
        assert_int_equal(seal_rc(&f, "tok", 3, sign, box), KB_OK);
        /* keys of the wrong type or without their secret */
        assert_int_equal(seal_rc(&f, "tok", 3, box, box), KB_ERR_INVALID_ARG);
        assert_int_equal(seal_rc(&f, "tok", 3, sign, sign), KB_ERR_INVALID_ARG);
        assert_int_equal(seal_rc(&f, "tok", 3, sign_pub, box),
                         KB_ERR_INVALID_ARG);
        assert_int_equal(seal_rc(NULL, "tok", 3, sign, box),
                         KB_ERR_INVALID_ARG);
        assert_int_equal(seal_rc(&f, NULL, 3, sign, box), KB_ERR_INVALID_ARG);
        assert_int_equal(kb_envelope_seal(&f, "tok", 3, sign, box, NULL, &len),
                         KB_ERR_INVALID_ARG);
        assert_int_equal(kb_envelope_seal(&f, "tok", 3, sign, box, &env, NULL),
                         KB_ERR_INVALID_ARG);

        /* fields */
#define BAD_FIELD(stmt, want)                                                  \
        do {                                                                   \
                g = f;                                                         \
                stmt;                                                          \
                assert_int_equal(seal_rc(&g, "tok", 3, sign, box), want);      \
        } while (0)
        BAD_FIELD(g.share_id[0] = '\0', KB_ERR_INVALID_ARG);
        BAD_FIELD(g.issuer_application_id[0] = '\0', KB_ERR_INVALID_ARG);
        BAD_FIELD(g.for_application_id[0] = '\0', KB_ERR_INVALID_ARG);
        BAD_FIELD(g.source_session_id[0] = '\0', KB_ERR_INVALID_ARG);
        BAD_FIELD(g.share_id[2] = '\n', KB_ERR_INVALID_ARG);
        BAD_FIELD(g.share_id[2] = 0x7f, KB_ERR_INVALID_ARG);
        BAD_FIELD(g.share_id[2] = (char)0xc3, KB_ERR_INVALID_ARG);
        BAD_FIELD(kb_strlcpy(g.vendor_data_hint, "a\tb", 4),
                  KB_ERR_INVALID_ARG);
        BAD_FIELD(memset(g.share_id, 'x', sizeof(g.share_id)),
                  KB_ERR_INVALID_ARG); /* not terminated within 129 */
        BAD_FIELD((memset(g.share_id, 'x', KB_ENVELOPE_MAX_ID),
                   g.share_id[KB_ENVELOPE_MAX_ID] = '\0'),
                  KB_OK);
        BAD_FIELD(g.session_kind = (kb_session_kind_t)0, KB_ERR_INVALID_ARG);
        BAD_FIELD(g.session_kind = (kb_session_kind_t)3, KB_ERR_INVALID_ARG);
        BAD_FIELD(g.created_at = 2001, KB_ERR_INVALID_ARG);
        BAD_FIELD(g.created_at = -1, KB_ERR_INVALID_ARG);
        BAD_FIELD(g.expires_at = INT64_C(9007199254740992), KB_ERR_INVALID_ARG);
        BAD_FIELD(g.created_at = g.expires_at, KB_OK);
#undef BAD_FIELD

        /* tokens */
        assert_int_equal(seal_rc(&f, "", 0, sign, box), KB_ERR_INVALID_ARG);
        assert_int_equal(seal_rc(&f, "a b", 3, sign, box), KB_ERR_INVALID_ARG);
        assert_int_equal(seal_rc(&f, "a\x80", 2, sign, box),
                         KB_ERR_INVALID_ARG);
        assert_int_equal(seal_rc(&f, "ab\0", 3, sign, box), KB_ERR_INVALID_ARG);
        memset(tok, 'A', sizeof(tok));
        assert_int_equal(seal_rc(&f, tok, KB_ENVELOPE_MAX_TOKEN, sign, box),
                         KB_OK);
        assert_int_equal(seal_rc(&f, tok, KB_ENVELOPE_MAX_TOKEN + 1, sign, box),
                         KB_ERR_TOO_LARGE);
        /* within the token limit, but JSON escaping makes the inner document
         * too large */
        memset(tok, '"', KB_ENVELOPE_MAX_TOKEN);
        assert_int_equal(seal_rc(&f, tok, KB_ENVELOPE_MAX_TOKEN, sign, box),
                         KB_ERR_TOO_LARGE);
        /* the inner limit holds, the whole envelope does not */
        memset(tok, '"', 2000);
        memset(tok + 2000, 'A', KB_ENVELOPE_MAX_TOKEN - 2000);
        g = f;
        memset(g.vendor_data_hint, '"', KB_ENVELOPE_MAX_ID);
        memset(g.issuer_application_id, '"', KB_ENVELOPE_MAX_ID);
        memset(g.source_session_id, '"', KB_ENVELOPE_MAX_ID);
        memset(g.share_id, '"', KB_ENVELOPE_MAX_ID);
        memset(g.for_application_id, '"', KB_ENVELOPE_MAX_ID);
        assert_int_equal(seal_rc(&g, tok, KB_ENVELOPE_MAX_TOKEN, sign, box),
                         KB_ERR_TOO_LARGE);

        kb_key_destroy(box);
        kb_key_destroy(sign);
        kb_key_destroy(sign_pub);
}

typedef struct {
        keys_t k;
        kb_keyring_t *signers;
        kb_envelope_opener_t op;
        kb_envelope_fields_t f;
} ctx_t;

static void ctx_new(ctx_t *c)
{
        keys_new(&c->k);
        base_fields(&c->f);
        c->signers = signer_ring(c->k.sign, "issuer-app");
        c->op.my_application_id = "partner-app";
        c->op.box_keys = c->k.box_ring;
        c->op.signers = c->signers;
        c->op.now = 1500;
}

static void ctx_free(ctx_t *c)
{
        keys_free(&c->k);
        kb_keyring_destroy(c->signers);
}

static char *seal_ok(const ctx_t *c, const kb_envelope_fields_t *f, size_t *len)
{
        char *env = NULL;

        assert_int_equal(
            kb_envelope_seal(f, "eyJ.x.y", 7, c->k.sign, c->k.box, &env, len),
            KB_OK);
        return env;
}

static int open_rc(const ctx_t *c, const char *env, size_t len,
                   kb_envelope_header_t *hdr)
{
        kb_envelope_fields_t g;
        char *tok = NULL;
        size_t tl = 0;
        int rc = kb_envelope_open(env, len, &c->op, hdr, &g, &tok, &tl);

        kb_envelope_token_free(tok);
        return rc;
}

/* Replaces the first @p from in @p env (malloc()ed result). */
static char *edit(const char *env, const char *from, const char *to)
{
        const char *p = strstr(env, from);
        char *out;

        assert_non_null(p);
        out = malloc(strlen(env) + strlen(to) + 1);
        memcpy(out, env, (size_t)(p - env));
        strcpy(out + (p - env), to);
        strcat(out, p + strlen(from));
        return out;
}

static void test_open_order(void **state)
{
        ctx_t c;
        kb_envelope_header_t hdr;
        kb_envelope_fields_t g;
        kb_keyring_t *ring;
        char *env, *e2, *big;
        size_t len;

        (void)state;
        ctx_new(&c);
        env = seal_ok(&c, &c.f, &len);
        assert_int_equal(open_rc(&c, env, len, &hdr), KB_OK);

        /* size before anything: a valid envelope padded past the limit */
        big = malloc(KB_ENVELOPE_MAX_BYTES + 2);
        memcpy(big, env, len);
        memset(big + len, ' ', KB_ENVELOPE_MAX_BYTES + 1 - len);
        assert_int_equal(open_rc(&c, big, KB_ENVELOPE_MAX_BYTES + 1, &hdr),
                         KB_ERR_TOO_LARGE);
        assert_false(hdr.valid);
        /* trailing whitespace within the limit is fine (JSON) */
        assert_int_equal(open_rc(&c, big, KB_ENVELOPE_MAX_BYTES, &hdr), KB_OK);
        memcpy(big, "{\"v\":1}", 7);
        assert_int_equal(open_rc(&c, big, KB_ENVELOPE_MAX_BYTES + 1, &hdr),
                         KB_ERR_TOO_LARGE);
        free(big);

        /* version wins over any other shape problem */
        e2 = edit(env, "{\"v\":1,", "{\"v\":7,\"x\":[1,2],");
        assert_int_equal(open_rc(&c, e2, strlen(e2), &hdr), KB_ERR_VERSION);
        assert_int_equal(hdr.version, 7);
        assert_false(hdr.valid);
        free(e2);
        assert_int_equal(open_rc(&c, "{\"v\":1e0}", 9, &hdr), KB_ERR_MALFORMED);
        assert_int_equal(open_rc(&c, "{\"v\":99999999999999999999}", 26, &hdr),
                         KB_ERR_VERSION);
        assert_int_equal(open_rc(&c, "{\"v\":-1}", 8, &hdr), KB_ERR_VERSION);
        assert_int_equal(open_rc(&c, "[1]", 3, &hdr), KB_ERR_MALFORMED);
        assert_int_equal(open_rc(&c, "{}", 2, &hdr), KB_ERR_MALFORMED);
        assert_int_equal(open_rc(&c, "", 0, &hdr), KB_ERR_MALFORMED);
        assert_int_equal(open_rc(&c, NULL, 0, &hdr), KB_ERR_MALFORMED);
        e2 = edit(env, "\"share_id\":\"share-42\"",
                  "\"share_id\":\"share\\u0000-42\"");
        assert_int_equal(open_rc(&c, e2, strlen(e2), &hdr), KB_ERR_MALFORMED);
        free(e2);
        e2 = edit(env, "\"share_id\":\"share-42\"", "\"share_id\":\"\"");
        assert_int_equal(open_rc(&c, e2, strlen(e2), &hdr), KB_ERR_MALFORMED);
        free(e2);
        e2 = edit(env, "\"expires_at\":2000", "\"expires_at\":-5");
        assert_int_equal(open_rc(&c, e2, strlen(e2), &hdr), KB_ERR_MALFORMED);
        free(e2);
        e2 = edit(env, "\"expires_at\":2000", "\"expires_at\":\"2000\"");
        assert_int_equal(open_rc(&c, e2, strlen(e2), &hdr), KB_ERR_MALFORMED);
        free(e2);

        /* not for us wins over unknown keys and tampering */
        g = c.f;
        kb_strlcpy(g.for_application_id, "someone-else",
                   sizeof(g.for_application_id));
        e2 = seal_ok(&c, &g, &len);
        assert_int_equal(open_rc(&c, e2, len, &hdr), KB_ERR_NOT_FOR_US);
        assert_true(hdr.valid);
        assert_string_equal(hdr.for_application_id, "someone-else");
        {
                kb_keyring_t *empty = kb_keyring_new();
                kb_envelope_opener_t op = c.op;
                kb_envelope_fields_t out;
                char *tok = NULL;
                size_t tl = 0;
                op.box_keys = empty;
                op.signers = empty;
                assert_int_equal(
                    kb_envelope_open(e2, len, &op, &hdr, &out, &tok, &tl),
                    KB_ERR_NOT_FOR_US);
                /* for us, but no keys at all */
                free(e2);
                e2 = seal_ok(&c, &c.f, &len);
                assert_int_equal(
                    kb_envelope_open(e2, len, &op, &hdr, &out, &tok, &tl),
                    KB_ERR_UNKNOWN_KEY);
                /* a box key without its secret is no key to open with */
                op.signers = c.signers;
                op.box_keys = empty;
                assert_int_equal(
                    kb_keyring_add(
                        empty,
                        kb_key_from_public(KB_KEY_BOX, kb_key_public(c.k.box)),
                        NULL),
                    KB_OK);
                assert_int_equal(
                    kb_envelope_open(e2, len, &op, &hdr, &out, &tok, &tl),
                    KB_ERR_UNKNOWN_KEY);
                assert_null(tok);
                kb_keyring_destroy(empty);
        }
        free(e2);

        /* unknown key wins over tampering; tampering wins over expiry */
        e2 =
            edit(env, "\"share_id\":\"share-42\"", "\"share_id\":\"share-43\"");
        assert_int_equal(open_rc(&c, e2, strlen(e2), &hdr), KB_ERR_AUTH);
        assert_true(hdr.valid);
        assert_string_equal(hdr.share_id, "share-43");
        c.op.now = 5000;
        assert_int_equal(open_rc(&c, e2, strlen(e2), &hdr), KB_ERR_AUTH);
        assert_int_equal(open_rc(&c, env, len, &hdr), KB_ERR_EXPIRED);
        c.op.now = 1500;
        ring = kb_keyring_new();
        {
                kb_envelope_opener_t op = c.op;
                op.signers = ring;
                kb_envelope_fields_t out;
                char *tok = NULL;
                size_t tl = 0;
                assert_int_equal(kb_envelope_open(e2, strlen(e2), &op, &hdr,
                                                  &out, &tok, &tl),
                                 KB_ERR_UNKNOWN_KEY);
                /* a signing key known but with no owner cannot vouch for
                 * any issuer */
                assert_int_equal(
                    kb_keyring_add(ring,
                                   kb_key_from_public(KB_KEY_SIGN,
                                                      kb_key_public(c.k.sign)),
                                   NULL),
                    KB_OK);
                assert_int_equal(kb_envelope_open(env, strlen(env), &op, &hdr,
                                                  &out, &tok, &tl),
                                 KB_ERR_AUTH);
        }
        kb_keyring_destroy(ring);
        free(e2);

        /* an issuer id that differs only after a NUL-free prefix */
        ring = signer_ring(c.k.sign, "issuer-ap");
        {
                kb_envelope_opener_t op = c.op;
                kb_envelope_fields_t out;
                char *tok = NULL;
                size_t tl = 0;
                op.signers = ring;
                assert_int_equal(kb_envelope_open(env, strlen(env), &op, &hdr,
                                                  &out, &tok, &tl),
                                 KB_ERR_AUTH);
        }
        kb_keyring_destroy(ring);

        /* bad arguments */
        {
                kb_envelope_fields_t out;
                char *tok = NULL;
                size_t tl = 0;
                kb_envelope_opener_t op = c.op;
                assert_int_equal(
                    kb_envelope_open(env, len, NULL, &hdr, &out, &tok, &tl),
                    KB_ERR_INVALID_ARG);
                assert_int_equal(
                    kb_envelope_open(env, len, &c.op, &hdr, NULL, &tok, &tl),
                    KB_ERR_INVALID_ARG);
                assert_int_equal(
                    kb_envelope_open(env, len, &c.op, &hdr, &out, NULL, &tl),
                    KB_ERR_INVALID_ARG);
                op.my_application_id = NULL;
                assert_int_equal(
                    kb_envelope_open(env, len, &op, &hdr, &out, &tok, &tl),
                    KB_ERR_INVALID_ARG);
                /* hdr is optional */
                assert_int_equal(
                    kb_envelope_open(env, len, &c.op, NULL, &out, &tok, &tl),
                    KB_OK);
                kb_envelope_token_free(tok);
        }
        assert_int_equal(kb_envelope_peek(env, len, NULL), KB_OK);
        kb_envelope_token_free(NULL);
        free(env);
        ctx_free(&c);
}

/* ---- the text writers against json-c (envelope_int.h) ---- */

/* The inner document as the seal built it with json-c before the text
 * writer: the reference, serialised by kb_json_str(). */
static json_object *ref_inner(const kb_envelope_fields_t *f, const char *token,
                              size_t token_len, const char *rid,
                              const char *sid)
{
        json_object *o = json_object_new_object();

        assert_non_null(o);
        assert_int_equal(
            kb_json_add_i64(o, "v", KB_ENVELOPE_VERSION) ||
                kb_json_add_str(o, "issuer_application_id",
                                f->issuer_application_id) ||
                kb_json_add_str(o, "for_application_id",
                                f->for_application_id) ||
                kb_json_add_str(o, "recipient_key_id", rid) ||
                kb_json_add_str(o, "signer_key_id", sid) ||
                kb_json_add_str(o, "share_id", f->share_id) ||
                kb_json_add_str(o, "session_kind",
                                kb_session_kind2str(f->session_kind)) ||
                kb_json_add_str(o, "source_session_id", f->source_session_id) ||
                kb_json_add_str(o, "vendor_data_hint",
                                f->vendor_data_hint[0] ? f->vendor_data_hint
                                                       : NULL) ||
                kb_json_add_i64(o, "created_at", f->created_at) ||
                kb_json_add_i64(o, "expires_at", f->expires_at) ||
                json_object_object_add(
                    o, "share_token",
                    json_object_new_string_len(token, (int)token_len)),
            0);
        return o;
}

/* The outer envelope as json-c wrote it. */
static json_object *ref_outer(const kb_envelope_fields_t *f, const char *rid,
                              const char *sid, const char *b64)
{
        json_object *o = json_object_new_object();

        assert_non_null(o);
        assert_int_equal(kb_json_add_i64(o, "v", KB_ENVELOPE_VERSION) ||
                             kb_json_add_str(o, "for_application_id",
                                             f->for_application_id) ||
                             kb_json_add_str(o, "recipient_key_id", rid) ||
                             kb_json_add_str(o, "signer_key_id", sid) ||
                             kb_json_add_str(o, "share_id", f->share_id) ||
                             kb_json_add_i64(o, "expires_at", f->expires_at) ||
                             kb_json_add_str(o, "sealed", b64),
                         0);
        return o;
}

static void assert_text_equal(const char *got, size_t got_len, json_object *ref,
                              const char *what)
{
        size_t len = 0;
        const char *want = kb_json_str(ref, &len);

        if (got_len != len || memcmp(got, want, len)) {
                size_t i = 0;
                while (i < len && i < got_len && got[i] == want[i])
                        i++;
                fail_msg("%s differs from json-c's at byte %zu:\n  <%.60s>\n"
                         "  <%.60s>",
                         what, i, got + (i > 20 ? i - 20 : 0),
                         want + (i > 20 ? i - 20 : 0));
        }
}

/* Any UTF-8 text without NUL, up to @p max bytes (@p max itself in a
 * quarter of the cases): what needs an escape (quote, backslash, every
 * control character), "/", DEL, U+2028, non-ASCII of every length. */
static size_t rand_text(char *s, size_t max)
{
        static const char *const odd[] = {
                "\"",           "\\",      "/",    "\b",
                "\f",           "\n",      "\r",   "\t",
                "\x01",         "\x1f",    "\x7f", "\xe2\x80\xa8",
                "\xef\xbb\xbf", "\\u0041",
        };
        size_t target = rng_below(4) == 0 ? max : 1 + rng_below((uint32_t)max);
        size_t len = 0, tries = 0;

        while (len < target && tries++ < 4 * max) {
                uint32_t k = rng_below(10);
                if (k < 3) {
                        const char *o = odd[rng_below(KB_ARRAY_SIZE(odd))];
                        if (len + strlen(o) <= target) {
                                memcpy(s + len, o, strlen(o));
                                len += strlen(o);
                        }
                } else if (k < 4) {
                        s[len++] = (char)(1 + rng_below(0x1f));
                } else {
                        len = rand_char(s, len, target);
                }
        }
        s[len] = '\0';
        return len;
}

static int64_t rand_time(void)
{
        static const int64_t edge[] = {
                0, 1, -1, 9007199254740991, INT64_MAX, INT64_MIN, 1796000000
        };

        if (rng_below(3) == 0)
                return edge[rng_below(KB_ARRAY_SIZE(edge))];
        return (int64_t)(((uint64_t)rng() >> rng_below(64)) *
                         (rng_below(4) ? 1 : (uint64_t)-1));
}

/* kb_envint_inner_put() and kb_envint_outer_put() write byte for byte
 * what json-c wrote, whatever the values: escapes, control characters,
 * non-ASCII, the longest ids and tokens, any integer; and never more than
 * kb_envint_inner_bound(). */
static void test_writer_as_json_c(void **state)
{
        static char token[KB_ENVELOPE_MAX_TOKEN + 1];
        kb_envelope_fields_t f;
        char rid[KB_ENVELOPE_MAX_ID + 1], sid[KB_ENVELOPE_MAX_ID + 1];
        unsigned char sealed[600];
        char b64[1024];
        kb_buf_t b = KB_BUF_INIT;
        size_t tl, slen, bound;
        int i;

        (void)state;
        rng_seed();
        for (i = 0; i < ROUNDTRIPS; i++) {
                json_object *ref;

                memset(&f, 0, sizeof(f));
                rand_text(f.issuer_application_id, KB_ENVELOPE_MAX_ID);
                rand_text(f.for_application_id, KB_ENVELOPE_MAX_ID);
                rand_text(f.share_id, KB_ENVELOPE_MAX_ID);
                rand_text(f.source_session_id, KB_ENVELOPE_MAX_ID);
                if (rng_below(2))
                        rand_text(f.vendor_data_hint, KB_ENVELOPE_MAX_ID);
                rand_text(rid, KB_ENVELOPE_MAX_ID);
                rand_text(sid, KB_ENVELOPE_MAX_ID);
                f.session_kind = (kb_session_kind_t)rng_below(3);
                f.created_at = rand_time();
                f.expires_at = rand_time();
                tl = rng_below(2) ? rand_token(token)
                                  : rand_text(token, KB_ENVELOPE_MAX_TOKEN);

                /* inner: into a buffer that already holds something */
                kb_buf_reset(&b);
                kb_buf_puts(&b, "prefix");
                bound = kb_envint_inner_bound(&f, tl, rid, sid);
                assert_int_equal(
                    kb_envint_inner_put(&b, &f, token, tl, rid, sid), KB_OK);
                assert_true(b.len - 6 <= bound);
                assert_memory_equal(b.data, "prefix", 6);
                ref = ref_inner(&f, token, tl, rid, sid);
                assert_text_equal(b.data + 6, b.len - 6, ref, "inner");
                json_object_put(ref);

                /* outer */
                slen = rng_below(sizeof(sealed));
                randombytes_buf(sealed, slen);
                sodium_bin2base64(b64, sizeof(b64), sealed, slen,
                                  sodium_base64_VARIANT_URLSAFE_NO_PADDING);
                kb_buf_reset(&b);
                assert_int_equal(
                    kb_envint_outer_put(&b, &f, rid, sid, sealed, slen), KB_OK);
                assert_int_equal(strlen(b.data), b.len);
                ref = ref_outer(&f, rid, sid, b64);
                assert_text_equal(b.data, b.len, ref, "outer");
                json_object_put(ref);
        }
        /* a string that is not UTF-8 is refused, the buffer as it was */
        memset(&f, 0, sizeof(f));
        strcpy(f.issuer_application_id, "a\xff");
        strcpy(f.for_application_id, "b");
        strcpy(f.share_id, "c");
        strcpy(f.source_session_id, "d");
        kb_buf_reset(&b);
        kb_buf_puts(&b, "keep");
        assert_int_equal(kb_envint_inner_put(&b, &f, "t", 1, "r", "s"),
                         KB_ERR_INVALID_ARG);
        assert_int_equal(b.len, 4);
        assert_string_equal(b.data, "keep");
        kb_buf_free(&b, 0);
}

/* What kb_envelope_seal() signs and sends, taken apart: the inner
 * document under the signature and the outer text are json-c's for the
 * same values (with the "sealed" the envelope carries). */
static void test_seal_as_json_c(void **state)
{
        static char token[KB_ENVELOPE_MAX_TOKEN + 1];
        kb_key_t *sign = kb_key_generate(KB_KEY_SIGN);
        kb_key_t *box = kb_key_generate(KB_KEY_BOX);
        kb_envelope_fields_t f;
        unsigned char *si;
        size_t tl, env_len, si_len;
        char *env;
        int i, rc;

        (void)state;
        rng_seed();
        assert_non_null(sign);
        assert_non_null(box);
        for (i = 0; i < ROUNDTRIPS / 10; i++) {
                json_object *ref, *o;

                rand_fields(&f);
                tl = rand_token(token);
                rc = kb_envelope_seal(&f, token, tl, sign, box, &env, &env_len);
                if (rc == KB_ERR_TOO_LARGE)
                        continue; /* escapes took the inner over its limit */
                assert_int_equal(rc, KB_OK);
                si = raw_unseal(env, env_len, box, &si_len);
                ref = ref_inner(&f, token, tl, kb_key_id(box), kb_key_id(sign));
                assert_text_equal((const char *)si + 64, si_len - 64, ref,
                                  "signed inner");
                json_object_put(ref);
                o = kb_json_parse(env, env_len, 4, NULL, 0);
                assert_non_null(o);
                ref = ref_outer(&f, kb_key_id(box), kb_key_id(sign),
                                kb_json_get_str(o, "sealed"));
                assert_text_equal(env, env_len, ref, "envelope");
                assert_int_equal(strlen(env), env_len);
                json_object_put(ref);
                json_object_put(o);
                free(si);
                free(env);
        }
        kb_key_destroy(sign);
        kb_key_destroy(box);
}

/* The optional member and the escapes survive a round trip. */
static void test_hint_and_escapes(void **state)
{
        ctx_t c;
        kb_envelope_header_t hdr;
        kb_envelope_fields_t g;
        char *env, *tok = NULL;
        size_t len, tl = 0;
        const char weird[] = "a\"b\\c/d{}[]:,";

        (void)state;
        ctx_new(&c);
        kb_strlcpy(c.f.vendor_data_hint, "user \"42\" \\ \xe2\x82\xac",
                   sizeof(c.f.vendor_data_hint));
        assert_int_equal(kb_envelope_seal(&c.f, weird, strlen(weird), c.k.sign,
                                          c.k.box, &env, &len),
                         KB_OK);
        assert_int_equal(kb_envelope_open(env, len, &c.op, &hdr, &g, &tok, &tl),
                         KB_OK);
        assert_string_equal(g.vendor_data_hint, c.f.vendor_data_hint);
        assert_string_equal(tok, weird);
        assert_int_equal(g.session_kind, KB_SESSION_USER);
        kb_envelope_token_free(tok);
        /* the header carries no hint and no token */
        assert_null(strstr(env, "vendor_data_hint"));
        assert_null(strstr(env, "share_token"));
        assert_null(strstr(env, "issuer_application_id"));
        free(env);
        ctx_free(&c);
}

static void test_session_kind(void **state)
{
        (void)state;
        assert_string_equal(kb_session_kind2str(KB_SESSION_USER), "user");
        assert_string_equal(kb_session_kind2str(KB_SESSION_BUSINESS),
                            "business");
        assert_null(kb_session_kind2str((kb_session_kind_t)0));
        assert_int_equal(kb_session_kind_parse("user"), KB_SESSION_USER);
        assert_int_equal(kb_session_kind_parse("business"),
                         KB_SESSION_BUSINESS);
        assert_int_equal(kb_session_kind_parse("User"), 0);
        assert_int_equal(kb_session_kind_parse(""), 0);
        assert_int_equal(kb_session_kind_parse(NULL), 0);
}

/* ---- the id rule, as one function ---- */

/* kb_envelope_id_valid() is the rule seal (and open) apply to every id:
 * what it accepts, a share_id may be, and nothing else. */
static void test_id_valid(void **state)
{
        static const struct {
                const char *s;
                size_t len;
                int ok;
        } cases[] = {
                { "a", 1, 1 },
                { "share-42", 8, 1 },
                { "M\xc3\xbcller", 7, 1 },
                { "\xe2\x82\xac \xf0\x9f\x98\x80", 8, 1 }, /* U+20AC U+1F600 */
                { "\xf4\x8f\xbf\xbf", 4, 1 },              /* U+10FFFF */
                { "abcdef", 3, 1 },           /* need not be terminated */
                { "", 0, 0 },                 /* empty */
                { "a\nb", 3, 0 },             /* control character */
                { "a\tb", 3, 0 },             /* control character */
                { "a\x7f", 2, 0 },            /* DEL */
                { "a\0b", 3, 0 },             /* embedded NUL */
                { "\xc0\xaf", 2, 0 },         /* overlong */
                { "\xed\xa0\x80", 3, 0 },     /* surrogate */
                { "\xf4\x90\x80\x80", 4, 0 }, /* above U+10FFFF */
                { "ab\xc3", 3, 0 },           /* truncated sequence */
                { "\xff", 1, 0 },
        };
        kb_key_t *box = kb_key_generate(KB_KEY_BOX);
        kb_key_t *sign = kb_key_generate(KB_KEY_SIGN);
        kb_envelope_fields_t f, g;
        char big[KB_ENVELOPE_MAX_ID + 2];
        size_t i;

        (void)state;
        assert_non_null(box);
        assert_non_null(sign);
        base_fields(&f);
        for (i = 0; i < KB_ARRAY_SIZE(cases); i++) {
                if (kb_envelope_id_valid(cases[i].s, cases[i].len) !=
                    cases[i].ok)
                        fail_msg("case %zu: want %d", i, cases[i].ok);
                /* seal agrees (NUL-terminated ids only: a field is one) */
                if (cases[i].len == strlen(cases[i].s)) {
                        g = f;
                        memcpy(g.share_id, cases[i].s, cases[i].len + 1);
                        assert_int_equal(seal_rc(&g, "tok", 3, sign, box),
                                         cases[i].ok ? KB_OK
                                                     : KB_ERR_INVALID_ARG);
                }
        }
        assert_false(kb_envelope_id_valid(NULL, 1));
        assert_false(kb_envelope_id_valid(NULL, 0));
        /* 128 bytes, counted in bytes: 64 two-byte characters */
        for (i = 0; i < KB_ENVELOPE_MAX_ID / 2; i++)
                memcpy(big + 2 * i, "\xc3\xa9", 2);
        assert_true(kb_envelope_id_valid(big, KB_ENVELOPE_MAX_ID));
        big[KB_ENVELOPE_MAX_ID] = 'x';
        assert_false(kb_envelope_id_valid(big, KB_ENVELOPE_MAX_ID + 1));
        memset(big, 'x', sizeof(big));
        assert_true(kb_envelope_id_valid(big, KB_ENVELOPE_MAX_ID));
        assert_false(kb_envelope_id_valid(big, KB_ENVELOPE_MAX_ID + 1));
        kb_key_destroy(box);
        kb_key_destroy(sign);
}

/* ---- concurrent opens share keyrings safely ---- */

typedef struct {
        const ctx_t *c;
        const char *env;
        size_t len;
        int ok;
} thr_t;

static void *thr_open(void *arg)
{
        thr_t *t = arg;
        int i;

        for (i = 0; i < 200; i++) {
                kb_envelope_fields_t g;
                kb_envelope_header_t hdr;
                char *tok = NULL;
                size_t tl = 0;
                if (kb_envelope_open(t->env, t->len, &t->c->op, &hdr, &g, &tok,
                                     &tl) == KB_OK &&
                    tl == 7 && !memcmp(tok, "eyJ.x.y", 7) &&
                    !strcmp(g.share_id, "share-42"))
                        t->ok++;
                kb_envelope_token_free(tok);
        }
        return NULL;
}

static void test_threads(void **state)
{
        ctx_t c;
        pthread_t th[4];
        thr_t t[4];
        char *env;
        size_t len;
        int i;

        (void)state;
        ctx_new(&c);
        env = seal_ok(&c, &c.f, &len);
        for (i = 0; i < 4; i++) {
                t[i].c = &c;
                t[i].env = env;
                t[i].len = len;
                t[i].ok = 0;
                assert_int_equal(pthread_create(&th[i], NULL, thr_open, &t[i]),
                                 0);
        }
        for (i = 0; i < 4; i++) {
                pthread_join(th[i], NULL);
                assert_int_equal(t[i].ok, 200);
        }
        free(env);
        ctx_free(&c);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_vectors),
                cmocka_unit_test(test_vector_bytes),
                cmocka_unit_test(test_vector_encrypted_key),
                cmocka_unit_test(test_roundtrip_random),
                cmocka_unit_test(test_mutations),
                cmocka_unit_test(test_seal_args),
                cmocka_unit_test(test_open_order),
                cmocka_unit_test(test_writer_as_json_c),
                cmocka_unit_test(test_seal_as_json_c),
                cmocka_unit_test(test_hint_and_escapes),
                cmocka_unit_test(test_session_kind),
                cmocka_unit_test(test_id_valid),
                cmocka_unit_test(test_threads),
        };

        if (kb_init() != KB_OK)
                return 1;
        return cmocka_run_group_tests(tests, NULL, NULL);
}
