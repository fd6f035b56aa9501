/* mkvectors.c -- generates the envelope format v1 test vectors (run once;
 * committed) */
/*
 * Usage: kb_mkvectors OUTDIR
 *
 * Writes fresh keys, one valid envelope per session kind and a set of
 * negative envelopes, each with its expected error, plus manifest.json, into
 * OUTDIR (created; must not exist). tests/vectors/envelope-v1/README.md says
 * how the committed set was made. The unit tests never run this program:
 * they check the committed files, so that a change of the wire format shows
 * up as a failing test instead of silently regenerated vectors.
 *
 * The forged vectors are built here with raw libsodium calls rather than with
 * kb_envelope_seal(), which makes this file a second, independent writer of
 * the format: the valid vectors are built by both and must agree.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <sodium.h>

#include "json.h"
#include "jwt.h"
#include "keys_int.h"
#include "kyc_bridge.h"
#include "util.h"

/* Fixed application ids and times of the vector set. */
#define ISSUER_APP    "6f1d2c3b-4a59-4e87-9b10-2c3d4e5f6a7b"
#define ISSUER2_APP   "0b7e8f90-1a2b-4c3d-8e4f-5a6b7c8d9e0f"
#define RECIPIENT_APP "d3b07384-d9a0-4c9b-8f1e-3a5c7e9b1d2f"
#define OTHER_APP     "9a8b7c6d-5e4f-4a3b-9c2d-1e0f9a8b7c6d"
#define T0            INT64_C(1795305600) /* 2026-11-22T00:00:00Z */
#define NOW           (T0 + 600)
#define VENDOR_SECRET "vector-vendor-secret (not a real key)"
#define PASSPHRASE    "correct horse battery staple"

static const char *outdir;
static kb_key_t *k_recipient, *k_other, *k_issuer, *k_issuer2, *k_unknown;
static json_object *manifest_vectors;

static void die(const char *what)
{
        fprintf(stderr, "mkvectors: %s\n", what);
        exit(1);
}

static void write_out(const char *name, const void *data, size_t len)
{
        char path[4096];

        kb_snprintf(path, sizeof(path), "%s/%s", outdir, name);
        if (kb_write_file_excl(path, data, len, 0644) == -1) {
                fprintf(stderr, "mkvectors: %s: %s\n", path, strerror(errno));
                exit(1);
        }
}

static void write_json(const char *name, json_object *o)
{
        const char *s = json_object_to_json_string_ext(
            o, JSON_C_TO_STRING_PRETTY | JSON_C_TO_STRING_SPACED |
                   JSON_C_TO_STRING_NOSLASHESCAPE);
        char *t;
        size_t len = strlen(s);

        t = malloc(len + 2);
        if (!t)
                die("out of memory");
        memcpy(t, s, len);
        t[len] = '\n';
        write_out(name, t, len + 1);
        free(t);
}

static kb_key_t *make_key(kb_key_type_t type, const char *file,
                          const char *pass)
{
        char path[4096], err[512];
        kb_key_t *key = kb_key_generate(type);

        if (!key)
                die("keygen failed");
        kb_snprintf(path, sizeof(path), "%s/%s", outdir, file);
        if (kb_key_save_secret(key, path, pass, pass ? strlen(pass) : 0, err,
                               sizeof(err)) != KB_OK)
                die(err);
        return key;
}

static void write_bundle(const char *file, const char *label,
                         const kb_key_t *key)
{
        kb_bundle_t *b = kb_bundle_new(label);
        char *json;

        if (!b || kb_bundle_add(b, key) != KB_OK ||
            !(json = kb_bundle_to_json(b)))
                die("bundle failed");
        write_out(file, json, strlen(json));
        free(json);
        kb_bundle_destroy(b);
}

/* A share token as the sandbox mints it. */
static char *make_token(const char *session_id, const char *kind,
                        const char *for_app, int64_t iat, int64_t exp)
{
        json_object *c = json_object_new_object();
        char *tok = NULL;

        kb_json_add_str(c, "session_id", session_id);
        kb_json_add_str(c, "session_kind", kind);
        kb_json_add_str(c, "from_application_id", ISSUER_APP);
        kb_json_add_str(c, "for_application_id", for_app);
        kb_json_add_i64(c, "iat", iat);
        kb_json_add_i64(c, "exp", exp);
        if (kb_jwt_hs256_sign(c, (const unsigned char *)VENDOR_SECRET,
                              strlen(VENDOR_SECRET), &tok) != KB_OK)
                die("jwt sign failed");
        json_object_put(c);
        return tok;
}

static void base_fields(kb_envelope_fields_t *f, const char *share_id,
                        const char *for_app)
{
        memset(f, 0, sizeof(*f));
        kb_strlcpy(f->issuer_application_id, ISSUER_APP,
                   sizeof(f->issuer_application_id));
        kb_strlcpy(f->for_application_id, for_app,
                   sizeof(f->for_application_id));
        kb_strlcpy(f->share_id, share_id, sizeof(f->share_id));
        kb_strlcpy(f->source_session_id, "5c0ffee0-1234-4abc-9def-0123456789ab",
                   sizeof(f->source_session_id));
        f->session_kind = KB_SESSION_USER;
        f->created_at = T0;
        f->expires_at = T0 + 3600;
}

static char *seal_api(const kb_envelope_fields_t *f, const char *token,
                      const kb_key_t *signer, const kb_key_t *recipient)
{
        char *env = NULL;
        size_t len = 0;

        if (kb_envelope_seal(f, token, strlen(token), signer, recipient, &env,
                             &len) != KB_OK)
                die("kb_envelope_seal failed");
        return env;
}

/* ---- the independent writer ---- */

/* Inner document text with members in the documented order. */
static char *inner_text(const kb_envelope_fields_t *f, const char *rcpt_id,
                        const char *signer_id, const char *token,
                        int drop_source_session)
{
        json_object *o = json_object_new_object();
        char *s;

        kb_json_add_i64(o, "v", 1);
        kb_json_add_str(o, "issuer_application_id", f->issuer_application_id);
        kb_json_add_str(o, "for_application_id", f->for_application_id);
        kb_json_add_str(o, "recipient_key_id", rcpt_id);
        kb_json_add_str(o, "signer_key_id", signer_id);
        kb_json_add_str(o, "share_id", f->share_id);
        kb_json_add_str(o, "session_kind",
                        kb_session_kind2str(f->session_kind));
        if (!drop_source_session)
                kb_json_add_str(o, "source_session_id", f->source_session_id);
        if (f->vendor_data_hint[0])
                kb_json_add_str(o, "vendor_data_hint", f->vendor_data_hint);
        kb_json_add_i64(o, "created_at", f->created_at);
        kb_json_add_i64(o, "expires_at", f->expires_at);
        kb_json_add_str(o, "share_token", token);
        s = strdup(kb_json_str(o, NULL));
        json_object_put(o);
        if (!s)
                die("out of memory");
        return s;
}

/* sig || inner, the signature over ctx || inner (or inner alone when
 * @p with_ctx is 0, to prove the context matters). */
static unsigned char *sign_inner(const kb_key_t *signer, const char *inner,
                                 int with_ctx, size_t *out_len)
{
        static const unsigned char ctx[] = "kyc-bridge envelope v1";
        size_t ilen = strlen(inner), clen = with_ctx ? sizeof(ctx) : 0;
        unsigned char *msg = malloc(clen + ilen + 1);
        unsigned char *out = malloc(64 + ilen);

        if (!msg || !out)
                die("out of memory");
        memcpy(msg, ctx, clen);
        memcpy(msg + clen, inner, ilen);
        if (kb_keyint_sign_detached(signer, out, msg, clen + ilen) != KB_OK)
                die("sign failed");
        memcpy(out + 64, inner, ilen);
        free(msg);
        *out_len = 64 + ilen;
        return out;
}

static char *b64url(const unsigned char *bin, size_t len)
{
        size_t n = sodium_base64_ENCODED_LEN(
            len, sodium_base64_VARIANT_URLSAFE_NO_PADDING);
        char *s = malloc(n);

        if (!s)
                die("out of memory");
        sodium_bin2base64(s, n, bin, len,
                          sodium_base64_VARIANT_URLSAFE_NO_PADDING);
        return s;
}

static char *seal_to(const unsigned char *m, size_t mlen,
                     const kb_key_t *recipient)
{
        unsigned char *c = malloc(crypto_box_SEALBYTES + mlen);
        char *s;

        if (!c || crypto_box_seal(c, m, mlen, kb_key_public(recipient)) != 0)
                die("seal failed");
        s = b64url(c, crypto_box_SEALBYTES + mlen);
        free(c);
        return s;
}

static char *outer_text(const char *for_app, const char *rcpt_id,
                        const char *signer_id, const char *share_id,
                        int64_t expires_at, const char *sealed)
{
        json_object *o = json_object_new_object();
        char *s;

        kb_json_add_i64(o, "v", 1);
        kb_json_add_str(o, "for_application_id", for_app);
        kb_json_add_str(o, "recipient_key_id", rcpt_id);
        kb_json_add_str(o, "signer_key_id", signer_id);
        kb_json_add_str(o, "share_id", share_id);
        kb_json_add_i64(o, "expires_at", expires_at);
        kb_json_add_str(o, "sealed", sealed);
        s = strdup(kb_json_str(o, NULL));
        json_object_put(o);
        if (!s)
                die("out of memory");
        return s;
}

/* Whole forged envelope from an inner text. */
static char *forge(const kb_envelope_fields_t *f, const char *inner,
                   const kb_key_t *signer, int with_ctx,
                   const kb_key_t *seal_key, const char *hdr_rcpt_id)
{
        size_t slen;
        unsigned char *si = sign_inner(signer, inner, with_ctx, &slen);
        char *sealed = seal_to(si, slen, seal_key);
        char *env =
            outer_text(f->for_application_id, hdr_rcpt_id, kb_key_id(signer),
                       f->share_id, f->expires_at, sealed);

        free(si);
        free(sealed);
        return env;
}

/* Rewrites one member of an envelope's outer object. */
static char *edit_outer(const char *env, const char *member, json_object *val)
{
        json_object *o = kb_json_parse(env, strlen(env), 4, NULL, 0);
        char *s;

        if (!o)
                die("edit_outer: parse");
        json_object_object_add(o, member, val);
        s = strdup(kb_json_str(o, NULL));
        json_object_put(o);
        return s;
}

static void vector(const char *file, const char *text, size_t len,
                   const char *opener, const char *expect, const char *peek,
                   const char *share_id, const char *expected_file,
                   const char *what)
{
        json_object *v = json_object_new_object();

        write_out(file, text, len);
        kb_json_add_str(v, "file", file);
        kb_json_add_str(v, "opener", opener);
        kb_json_add_str(v, "expect", expect);
        kb_json_add_str(v, "peek", peek);
        json_object_object_add(v, "header_share_id",
                               share_id ? json_object_new_string(share_id)
                                        : NULL);
        kb_json_add_str(v, "expected", expected_file);
        kb_json_add_str(v, "description", what);
        json_object_array_add(manifest_vectors, v);
}

static void vec(const char *file, const char *text, const char *opener,
                const char *expect, const char *peek, const char *share_id,
                const char *what)
{
        vector(file, text, strlen(text), opener, expect, peek, share_id, NULL,
               what);
}

/* Opens @p env with the recipient's key: the signed inner, as bytes. */
static unsigned char *unseal(const char *env, const kb_key_t *box,
                             size_t *out_len)
{
        json_object *o = kb_json_parse(env, strlen(env), 4, NULL, 0);
        const char *b64 = kb_json_get_str(o, "sealed");
        unsigned char *c = malloc(strlen(b64)), *m;
        size_t clen = 0;

        if (!c ||
            sodium_base642bin(c, strlen(b64), b64, strlen(b64), NULL, &clen,
                              NULL, sodium_base64_VARIANT_URLSAFE_NO_PADDING))
                die("unseal: base64");
        m = malloc(clen);
        if (!m || kb_keyint_seal_open(box, m, c, clen) != KB_OK)
                die("unseal: open");
        *out_len = clen - crypto_box_SEALBYTES;
        free(c);
        json_object_put(o);
        return m;
}

static void expected_file(const char *file, const kb_envelope_fields_t *f,
                          const char *rcpt_id, const char *signer_id,
                          const char *token)
{
        json_object *o = json_object_new_object(), *fo;
        char digest[KB_DIGEST_STR_BYTES];

        fo = json_object_new_object();
        kb_json_add_str(fo, "issuer_application_id", f->issuer_application_id);
        kb_json_add_str(fo, "for_application_id", f->for_application_id);
        kb_json_add_str(fo, "recipient_key_id", rcpt_id);
        kb_json_add_str(fo, "signer_key_id", signer_id);
        kb_json_add_str(fo, "share_id", f->share_id);
        kb_json_add_str(fo, "session_kind",
                        kb_session_kind2str(f->session_kind));
        kb_json_add_str(fo, "source_session_id", f->source_session_id);
        kb_json_add_str(fo, "vendor_data_hint", f->vendor_data_hint);
        kb_json_add_i64(fo, "created_at", f->created_at);
        kb_json_add_i64(fo, "expires_at", f->expires_at);
        json_object_object_add(o, "fields", fo);
        kb_json_add_str(o, "share_token", token);
        kb_digest_str(token, strlen(token), digest);
        kb_json_add_str(o, "share_token_digest", digest);
        write_json(file, o);
        json_object_put(o);
}

static json_object *opener_json(const char *app, const char *box_file,
                                const char *const *signer_apps,
                                const char *const *signer_files, int nsigners)
{
        json_object *o = json_object_new_object(), *boxes, *signers, *s;
        int i;

        kb_json_add_str(o, "app_id", app);
        boxes = json_object_new_array();
        json_object_array_add(boxes, json_object_new_string(box_file));
        json_object_object_add(o, "box_keys", boxes);
        signers = json_object_new_array();
        for (i = 0; i < nsigners; i++) {
                s = json_object_new_object();
                kb_json_add_str(s, "app_id", signer_apps[i]);
                kb_json_add_str(s, "bundle", signer_files[i]);
                json_object_array_add(signers, s);
        }
        json_object_object_add(o, "signers", signers);
        kb_json_add_i64(o, "now", NOW);
        return o;
}

int main(int argc, char **argv)
{
        static const char *const r_apps[] = { ISSUER_APP, ISSUER2_APP };
        static const char *const r_files[] = { "issuer.pub.json",
                                               "issuer2.pub.json" };
        kb_envelope_fields_t f;
        json_object *manifest, *openers;
        char *tok, *env, *inner, *t, *valid, *sealed;
        unsigned char *si, *rnd;
        size_t si_len, n;
        kb_key_t *enc;

        if (argc != 2) {
                fprintf(stderr, "usage: %s OUTDIR (must not exist)\n", argv[0]);
                return 2;
        }
        if (kb_init() != KB_OK)
                die("libsodium init");
        outdir = argv[1];
        if (mkdir(outdir, 0755) == -1) {
                fprintf(stderr, "mkvectors: %s: %s\n", outdir, strerror(errno));
                return 1;
        }

        /* keys */
        k_recipient = make_key(KB_KEY_BOX, "recipient.box.key", NULL);
        k_other = make_key(KB_KEY_BOX, "other.box.key", NULL);
        k_issuer = make_key(KB_KEY_SIGN, "issuer.sign.key", NULL);
        k_issuer2 = make_key(KB_KEY_SIGN, "issuer2.sign.key", NULL);
        k_unknown = make_key(KB_KEY_SIGN, "unknown.sign.key", NULL);
        {
                /* the recipient's key once more, passphrase-protected */
                unsigned char sec[32];
                char path[4096], err[512];
                if (kb_keyint_export_secret(k_recipient, sec) != KB_OK ||
                    !(enc = kb_keyint_from_secret(KB_KEY_BOX, sec)))
                        die("copy key");
                sodium_memzero(sec, sizeof(sec));
                kb_snprintf(path, sizeof(path), "%s/%s", outdir,
                            "recipient-encrypted.box.key");
                if (kb_key_save_secret(enc, path, PASSPHRASE,
                                       strlen(PASSPHRASE), err,
                                       sizeof(err)) != KB_OK)
                        die(err);
                kb_key_destroy(enc);
                write_out("recipient-encrypted.passphrase", PASSPHRASE "\n",
                          strlen(PASSPHRASE) + 1);
        }
        write_bundle("recipient.pub.json", "vector recipient", k_recipient);
        write_bundle("other.pub.json", "vector third party", k_other);
        write_bundle("issuer.pub.json", "vector issuer", k_issuer);
        write_bundle("issuer2.pub.json", "vector second issuer", k_issuer2);
        write_bundle("unknown.pub.json", "vector unknown signer", k_unknown);

        manifest = json_object_new_object();
        manifest_vectors = json_object_new_array();
        openers = json_object_new_object();
        kb_json_add_str(manifest, "format", "kyc-bridge-envelope-vectors/1");
        json_object_object_add(openers, "recipient",
                               opener_json(RECIPIENT_APP, "recipient.box.key",
                                           r_apps, r_files, 2));
        json_object_object_add(
            openers, "other",
            opener_json(OTHER_APP, "other.box.key", r_apps, r_files, 1));
        json_object_object_add(manifest, "openers", openers);

        /* 1. valid (KYC): built by the library... */
        base_fields(&f, "share-0001", RECIPIENT_APP);
        tok = make_token(f.source_session_id, "user", RECIPIENT_APP, T0,
                         T0 + 3600);
        valid = seal_api(&f, tok, k_issuer, k_recipient);
        vector("valid.json", valid, strlen(valid), "recipient", "KB_OK",
               "KB_OK", f.share_id, "valid.expected.json",
               "valid KYC envelope: opens to valid.expected.json");
        expected_file("valid.expected.json", &f, kb_key_id(k_recipient),
                      kb_key_id(k_issuer), tok);
        si = unseal(valid, k_recipient, &si_len);
        write_out("valid.inner.json", si + 64, si_len - 64);
        t = b64url(si, si_len);
        write_out("valid.signed_inner.b64", t, strlen(t));
        free(t);
        /* ...and by the independent writer, which must agree byte for byte
         * (Ed25519 is deterministic; only the sealed box is random) */
        inner =
            inner_text(&f, kb_key_id(k_recipient), kb_key_id(k_issuer), tok, 0);
        if (strlen(inner) != si_len - 64 ||
            memcmp(inner, si + 64, si_len - 64) != 0)
                die("the two writers disagree on the inner document");
        {
                size_t l2;
                unsigned char *si2 = sign_inner(k_issuer, inner, 1, &l2);
                if (l2 != si_len || memcmp(si2, si, si_len) != 0)
                        die("the two writers disagree on the signature");
                free(si2);
        }
        free(inner);

        /* 2. valid (KYB) with a vendor_data_hint and non-ASCII text */
        {
                kb_envelope_fields_t g;
                char *tok2, *env2;
                base_fields(&g, "share-0002-kyb", RECIPIENT_APP);
                g.session_kind = KB_SESSION_BUSINESS;
                kb_strlcpy(g.vendor_data_hint,
                           "M\xc3\xbcller & S\xc3\xb6hne GmbH / \"acct\" 42",
                           sizeof(g.vendor_data_hint));
                kb_strlcpy(g.source_session_id,
                           "b1e2c3d4-0000-4000-8000-00000000kyb0",
                           sizeof(g.source_session_id));
                tok2 = make_token(g.source_session_id, "business",
                                  RECIPIENT_APP, T0, T0 + 7200);
                g.expires_at = T0 + 7200;
                env2 = seal_api(&g, tok2, k_issuer, k_recipient);
                vector("valid-kyb.json", env2, strlen(env2), "recipient",
                       "KB_OK", "KB_OK", g.share_id, "valid-kyb.expected.json",
                       "valid KYB envelope with vendor_data_hint: opens to "
                       "valid-kyb.expected.json");
                expected_file("valid-kyb.expected.json", &g,
                              kb_key_id(k_recipient), kb_key_id(k_issuer),
                              tok2);
                free(env2);
                free(tok2);
        }

        /* header fields changed after sealing */
        env = edit_outer(valid, "share_id",
                         json_object_new_string("share-0001-x"));
        vec("tampered-share-id.json", env, "recipient", "KB_ERR_AUTH", "KB_OK",
            "share-0001-x", "header share_id differs from the signed copy");
        free(env);
        env =
            edit_outer(valid, "expires_at", json_object_new_int64(T0 + 86400));
        vec("tampered-expires-at.json", env, "recipient", "KB_ERR_AUTH",
            "KB_OK", "share-0001",
            "header expires_at differs from the signed copy");
        free(env);

        /* one ciphertext byte flipped */
        {
                size_t clen = 0;
                json_object *o =
                    kb_json_parse(valid, strlen(valid), 4, NULL, 0);
                const char *b64 = kb_json_get_str(o, "sealed");
                unsigned char *c = malloc(strlen(b64));
                if (!c || sodium_base642bin(
                              c, strlen(b64), b64, strlen(b64), NULL, &clen,
                              NULL, sodium_base64_VARIANT_URLSAFE_NO_PADDING))
                        die("b64");
                c[clen / 2] ^= 0x01;
                sealed = b64url(c, clen);
                env =
                    edit_outer(valid, "sealed", json_object_new_string(sealed));
                vec("tampered-ciphertext.json", env, "recipient", "KB_ERR_AUTH",
                    "KB_OK", "share-0001", "one bit of the sealed box flipped");
                free(env);
                free(sealed);
                free(c);
                json_object_put(o);
        }

        /* sealed to 'other' while header and inner name our key */
        inner =
            inner_text(&f, kb_key_id(k_recipient), kb_key_id(k_issuer), tok, 0);
        env = forge(&f, inner, k_issuer, 1, k_other, kb_key_id(k_recipient));
        vec("wrong-recipient.json", env, "recipient", "KB_ERR_AUTH", "KB_OK",
            "share-0001",
            "sealed to another X25519 key than the one the header names");
        free(env);

        /* signature over the inner document without the context string */
        env =
            forge(&f, inner, k_issuer, 0, k_recipient, kb_key_id(k_recipient));
        vec("signature-without-context.json", env, "recipient", "KB_ERR_AUTH",
            "KB_OK", "share-0001",
            "Ed25519 signature over inner_json alone, not context || "
            "inner_json");
        free(env);
        free(inner);

        /* addressed to us, sealed to a key we do not have */
        env = seal_api(&f, tok, k_issuer, k_other);
        vec("unknown-recipient-key.json", env, "recipient",
            "KB_ERR_UNKNOWN_KEY", "KB_OK", "share-0001",
            "recipient_key_id is not one of our box keys");
        free(env);

        /* signed by a key nobody trusts */
        env = seal_api(&f, tok, k_unknown, k_recipient);
        vec("unknown-signer.json", env, "recipient", "KB_ERR_UNKNOWN_KEY",
            "KB_OK", "share-0001",
            "signer_key_id is not an allowed issuer key");
        free(env);

        /* a trusted issuer (issuer2) claims to be another issuer */
        env = seal_api(&f, tok, k_issuer2, k_recipient);
        vec("signer-of-other-issuer.json", env, "recipient", "KB_ERR_AUTH",
            "KB_OK", "share-0001",
            "signed by the key of issuer 2 while issuer_application_id "
            "names issuer 1");
        free(env);

        /* the partner re-seals the authentic signed inner to a third party */
        {
                char *sealed3 = seal_to(si, si_len, k_other);
                env = outer_text(OTHER_APP, kb_key_id(k_other),
                                 kb_key_id(k_issuer), f.share_id, f.expires_at,
                                 sealed3);
                vec("resealed-to-third-party.json", env, "other", "KB_ERR_AUTH",
                    "KB_OK", "share-0001",
                    "recipient re-sealed the authentic signed inner to a "
                    "third party with a rewritten header; the third party "
                    "must refuse it");
                free(env);
                free(sealed3);
        }

        /* authentic but past its expiry */
        {
                kb_envelope_fields_t g = f;
                char *tok2;
                kb_strlcpy(g.share_id, "share-0003-expired",
                           sizeof(g.share_id));
                g.created_at = T0 - 7200;
                g.expires_at = T0 - 3600;
                tok2 = make_token(g.source_session_id, "user", RECIPIENT_APP,
                                  g.created_at, g.expires_at);
                env = seal_api(&g, tok2, k_issuer, k_recipient);
                vec("expired.json", env, "recipient", "KB_ERR_EXPIRED", "KB_OK",
                    g.share_id, "authentic, expires_at before now");
                free(env);
                free(tok2);
        }

        /* envelope for another application */
        {
                kb_envelope_fields_t g = f;
                kb_strlcpy(g.for_application_id, OTHER_APP,
                           sizeof(g.for_application_id));
                env = seal_api(&g, tok, k_issuer, k_other);
                vec("not-for-us.json", env, "recipient", "KB_ERR_NOT_FOR_US",
                    "KB_OK", "share-0001",
                    "for_application_id is another application");
                free(env);
        }

        /* signed garbage: authentic, unparsable */
        env = forge(&f, "this is not JSON", k_issuer, 1, k_recipient,
                    kb_key_id(k_recipient));
        vec("inner-not-json.json", env, "recipient", "KB_ERR_MALFORMED",
            "KB_OK", "share-0001",
            "authentic signature over an inner that is not JSON");
        free(env);
        inner =
            inner_text(&f, kb_key_id(k_recipient), kb_key_id(k_issuer), tok, 1);
        env =
            forge(&f, inner, k_issuer, 1, k_recipient, kb_key_id(k_recipient));
        vec("inner-missing-member.json", env, "recipient", "KB_ERR_MALFORMED",
            "KB_OK", "share-0001", "authentic inner without source_session_id");
        free(env);
        free(inner);
        {
                kb_envelope_fields_t g = f;
                g.created_at = g.expires_at + 1;
                inner = inner_text(&g, kb_key_id(k_recipient),
                                   kb_key_id(k_issuer), tok, 0);
                env = forge(&g, inner, k_issuer, 1, k_recipient,
                            kb_key_id(k_recipient));
                vec("inner-created-after-expiry.json", env, "recipient",
                    "KB_ERR_MALFORMED", "KB_OK", "share-0001",
                    "authentic inner with created_at > expires_at");
                free(env);
                free(inner);
        }

        /* outer shape */
        env = edit_outer(valid, "v", json_object_new_int(2));
        vec("wrong-version.json", env, "recipient", "KB_ERR_VERSION",
            "KB_ERR_VERSION", NULL, "\"v\": 2");
        free(env);
        env = edit_outer(valid, "v", json_object_new_string("1"));
        vec("version-as-string.json", env, "recipient", "KB_ERR_MALFORMED",
            "KB_ERR_MALFORMED", NULL, "\"v\": \"1\" (a string)");
        free(env);
        vector("truncated.json", valid, strlen(valid) / 2, "recipient",
               "KB_ERR_MALFORMED", "KB_ERR_MALFORMED", NULL, NULL,
               "first half of valid.json");
        n = 12300;
        rnd = malloc(n);
        if (!rnd)
                die("out of memory");
        randombytes_buf(rnd, n);
        t = b64url(rnd, n);
        env = edit_outer(valid, "sealed", json_object_new_string(t));
        if (strlen(env) <= KB_ENVELOPE_MAX_BYTES)
                die("oversized vector is not oversized");
        vec("oversized.json", env, "recipient", "KB_ERR_TOO_LARGE",
            "KB_ERR_TOO_LARGE", NULL,
            "over 16384 bytes (a 12300-byte sealed member)");
        free(env);
        free(t);
        t = b64url(rnd, 40);
        env = edit_outer(valid, "sealed", json_object_new_string(t));
        vec("sealed-too-short.json", env, "recipient", "KB_ERR_AUTH", "KB_OK",
            "share-0001", "sealed holds 40 bytes: shorter than any box");
        free(env);
        free(t);
        free(rnd);
        {
                json_object *o =
                    kb_json_parse(valid, strlen(valid), 4, NULL, 0);
                char *s = strdup(kb_json_get_str(o, "sealed"));
                char *p = strchr(s, '-');
                if (!p)
                        p = strchr(s, '_');
                if (!p)
                        die("no URL-safe character to replace");
                *p = *p == '-' ? '+' : '/';
                env = edit_outer(valid, "sealed", json_object_new_string(s));
                vec("bad-base64.json", env, "recipient", "KB_ERR_MALFORMED",
                    "KB_ERR_MALFORMED", "share-0001",
                    "sealed uses the standard base64 alphabet ('+' or '/')");
                free(env);
                free(s);
                json_object_put(o);
        }
        {
                json_object *o =
                    kb_json_parse(valid, strlen(valid), 4, NULL, 0);
                char *s = malloc(strlen(kb_json_get_str(o, "sealed")) + 2);
                sprintf(s, "%s=", kb_json_get_str(o, "sealed"));
                env = edit_outer(valid, "sealed", json_object_new_string(s));
                vec("padded-base64.json", env, "recipient", "KB_ERR_MALFORMED",
                    "KB_ERR_MALFORMED", "share-0001",
                    "sealed ends with a '=' padding character");
                free(env);
                free(s);
                json_object_put(o);
        }
        {
                size_t vl = strlen(valid);
                const char *dup = "{\"share_id\":\"share-0001\",";
                char *s = malloc(vl + strlen(dup) + 1);
                sprintf(s, "%s%s", dup, valid + 1);
                vec("duplicate-key.json", s, "recipient", "KB_ERR_MALFORMED",
                    "KB_ERR_MALFORMED", NULL,
                    "share_id member given twice (same value)");
                free(s);
        }
        env = edit_outer(valid, "note", json_object_new_string("hello"));
        vec("extra-member.json", env, "recipient", "KB_ERR_MALFORMED",
            "KB_ERR_MALFORMED", NULL, "an eighth member \"note\"");
        free(env);
        env = edit_outer(valid, "recipient_key_id",
                         json_object_new_string("ABCDEF0123456789"));
        vec("uppercase-key-id.json", env, "recipient", "KB_ERR_MALFORMED",
            "KB_ERR_MALFORMED", NULL, "recipient_key_id in uppercase hex");
        free(env);
        env = edit_outer(valid, "expires_at", json_object_new_double(1.5e9));
        vec("expires-at-float.json", env, "recipient", "KB_ERR_MALFORMED",
            "KB_ERR_MALFORMED", NULL, "expires_at is not an integer");
        free(env);
        env = edit_outer(valid, "share_id",
                         json_object_new_string("share\x01id"));
        vec("control-char-in-id.json", env, "recipient", "KB_ERR_MALFORMED",
            "KB_ERR_MALFORMED", NULL,
            "share_id holds a control character (\\u0001)");
        free(env);

        json_object_object_add(manifest, "vectors", manifest_vectors);
        write_json("manifest.json", manifest);
        json_object_put(manifest);
        free(si);
        free(valid);
        free(tok);
        kb_key_destroy(k_recipient);
        kb_key_destroy(k_other);
        kb_key_destroy(k_issuer);
        kb_key_destroy(k_issuer2);
        kb_key_destroy(k_unknown);
        printf("mkvectors: wrote %s\n", outdir);
        return 0;
}
