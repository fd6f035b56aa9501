/* envelope.c -- seal and open share envelopes (format v1, docs/envelope.md) */
#include "kyc_bridge.h"

#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "envelope_int.h"
#include "json.h"
#include "keys_int.h"
#include "util.h"

/*
 * The signature covers this context string, its terminating 0x00 byte
 * included (23 bytes), followed by the inner document: a signature made for
 * anything else can never verify as an envelope, and vice versa.
 */
static const unsigned char sig_ctx[] = "kyc-bridge envelope v1";
#define SIG_CTX_BYTES sizeof(sig_ctx)   /* 23 */
#define SIG_BYTES     crypto_sign_BYTES /* 64 */

/* Timestamps: non-negative and exact in an IEEE double (2^53 - 1), so that
 * every JSON implementation reads the same number. */
#define MAX_TIME INT64_C(9007199254740991)

/* Members of the outer object and of the inner document. */
#define OUTER_MEMBERS 7
#define INNER_MEMBERS 11 /* plus vendor_data_hint when present */

/* Smallest inner document ("{}") behind the signature. */
#define MIN_SEALED (crypto_box_SEALBYTES + SIG_BYTES + 2)
#define MAX_SEALED (crypto_box_SEALBYTES + SIG_BYTES + KB_ENVELOPE_MAX_INNER)

#define B64_VARIANT sodium_base64_VARIANT_URLSAFE_NO_PADDING

const char *kb_session_kind2str(kb_session_kind_t kind)
{
        switch (kind) {
        case KB_SESSION_USER:
                return "user";
        case KB_SESSION_BUSINESS:
                return "business";
        }
        return NULL;
}

kb_session_kind_t kb_session_kind_parse(const char *s)
{
        if (s && !strcmp(s, "user"))
                return KB_SESSION_USER;
        if (s && !strcmp(s, "business"))
                return KB_SESSION_BUSINESS;
        return (kb_session_kind_t)0;
}

int kb_envelope_id_valid(const char *s, size_t len)
{
        return s && len >= 1 && len <= KB_ENVELOPE_MAX_ID &&
               kb_utf8_is_text(s, len);
}

static int keyid_ok(const char *s, size_t len)
{
        size_t i;

        if (len != KB_KEYID_LEN)
                return 0;
        for (i = 0; i < len; i++)
                if (!((s[i] >= '0' && s[i] <= '9') ||
                      (s[i] >= 'a' && s[i] <= 'f')))
                        return 0;
        return 1;
}

static int token_ok(const char *s, size_t len)
{
        size_t i;

        if (len < 1 || len > KB_ENVELOPE_MAX_TOKEN)
                return 0;
        for (i = 0; i < len; i++)
                if (s[i] < 0x21 || s[i] > 0x7e)
                        return 0;
        return 1;
}

static int time_ok(int64_t t)
{
        return t >= 0 && t <= MAX_TIME;
}

/* A NUL-terminated field of kb_envelope_fields_t that is a valid id. */
static int field_ok(const char *s)
{
        size_t len = strnlen(s, KB_ENVELOPE_MAX_ID + 1);

        return len <= KB_ENVELOPE_MAX_ID && kb_envelope_id_valid(s, len);
}

/* String member @p name checked as an id (or a key id) and copied to @p dst
 * (KB_ENVELOPE_MAX_ID + 1 bytes). 0 or -1. */
static int get_id(json_object *obj, const char *name, int is_keyid, char *dst)
{
        json_object *v = kb_json_get(obj, name);
        const char *s;
        size_t len;

        if (!v || !json_object_is_type(v, json_type_string))
                return -1;
        s = json_object_get_string(v);
        len = (size_t)json_object_get_string_len(v);
        if (is_keyid ? !keyid_ok(s, len) : !kb_envelope_id_valid(s, len))
                return -1;
        memcpy(dst, s, len);
        dst[len] = '\0';
        return 0;
}

static int get_time(json_object *obj, const char *name, int64_t *out)
{
        json_object *v = kb_json_get(obj, name);

        if (!v || !json_object_is_type(v, json_type_int))
                return -1;
        if (kb_json_get_i64(obj, name, out) == -1 || !time_ok(*out))
                return -1;
        return 0;
}

/*
 * "v" first: a JSON integer other than 1 is another version whatever else
 * the object holds. Returns KB_OK, KB_ERR_MALFORMED or KB_ERR_VERSION.
 */
static int check_version(json_object *root, int *version)
{
        json_object *v = kb_json_get(root, "v");
        int64_t n;

        if (!v || !json_object_is_type(v, json_type_int))
                return KB_ERR_MALFORMED;
        n = json_object_get_int64(v);
        if (version)
                *version = (n >= INT_MIN && n <= INT_MAX) ? (int)n : -1;
        return n == KB_ENVELOPE_VERSION ? KB_OK : KB_ERR_VERSION;
}

/*
 * Size, JSON, version and shape of the outer envelope. Fills @p hdr (valid
 * = 1) once every header member checked out, then decodes "sealed" into a
 * malloc()ed *sealed when @p sealed is non-NULL.
 */
static int parse_outer(const char *env, size_t env_len,
                       kb_envelope_header_t *hdr, unsigned char **sealed,
                       size_t *sealed_len)
{
        json_object *root = NULL, *jsealed;
        const char *b64, *b64_end = NULL;
        unsigned char *bin = NULL;
        size_t b64_len, bin_len = 0;
        int rc;

        memset(hdr, 0, sizeof(*hdr));
        if (sealed)
                *sealed = NULL;
        if (sealed_len)
                *sealed_len = 0;
        if (!env)
                return KB_ERR_MALFORMED;
        if (env_len > KB_ENVELOPE_MAX_BYTES)
                return KB_ERR_TOO_LARGE;
        root = kb_json_parse(env, env_len, 4, NULL, 0);
        if (!root || !json_object_is_type(root, json_type_object)) {
                rc = KB_ERR_MALFORMED;
                goto out;
        }
        rc = check_version(root, &hdr->version);
        if (rc != KB_OK)
                goto out;
        rc = KB_ERR_MALFORMED;
        jsealed = kb_json_get(root, "sealed");
        if (json_object_object_length(root) != OUTER_MEMBERS ||
            get_id(root, "for_application_id", 0, hdr->for_application_id) ||
            get_id(root, "recipient_key_id", 1, hdr->recipient_key_id) ||
            get_id(root, "signer_key_id", 1, hdr->signer_key_id) ||
            get_id(root, "share_id", 0, hdr->share_id) ||
            get_time(root, "expires_at", &hdr->expires_at) || !jsealed ||
            !json_object_is_type(jsealed, json_type_string)) {
                int version = hdr->version;
                memset(hdr, 0, sizeof(*hdr));
                hdr->version = version;
                goto out;
        }
        hdr->valid = 1;
        b64 = json_object_get_string(jsealed);
        b64_len = (size_t)json_object_get_string_len(jsealed);
        /* Decoding never yields more than 3/4 of the input. */
        bin = malloc(b64_len / 4 * 3 + 3);
        if (!bin) {
                rc = KB_ERR_NOMEM;
                goto out;
        }
        if (sodium_base642bin(bin, b64_len / 4 * 3 + 3, b64, b64_len, NULL,
                              &bin_len, &b64_end, B64_VARIANT) != 0 ||
            b64_end != b64 + b64_len)
                goto out;
        if (bin_len > MAX_SEALED) {
                rc = KB_ERR_TOO_LARGE;
                goto out;
        }
        rc = KB_OK;
        if (sealed) {
                *sealed = bin;
                *sealed_len = bin_len;
                bin = NULL;
        }
out:
        free(bin);
        json_object_put(root);
        return rc;
}

int kb_envelope_peek(const char *env, size_t env_len, kb_envelope_header_t *hdr)
{
        kb_envelope_header_t tmp;

        return parse_outer(env, env_len, hdr ? hdr : &tmp, NULL, NULL);
}

/*
 * Shape of the authenticated inner document. On KB_OK @p fields is filled,
 * *tok points into *root (the caller wipes and releases it).
 */
static int parse_inner(const char *inner, size_t inner_len,
                       kb_envelope_fields_t *fields, json_object **root,
                       json_object **tok)
{
        json_object *o, *hint, *kind, *t;
        int members = INNER_MEMBERS;

        *tok = NULL;
        o = *root = kb_json_parse(inner, inner_len, 4, NULL, 0);
        if (!o || !json_object_is_type(o, json_type_object) ||
            check_version(o, NULL) != KB_OK)
                return KB_ERR_MALFORMED;
        hint = kb_json_get(o, "vendor_data_hint");
        if (hint) {
                members++;
                if (get_id(o, "vendor_data_hint", 0, fields->vendor_data_hint))
                        return KB_ERR_MALFORMED;
        }
        kind = kb_json_get(o, "session_kind");
        t = kb_json_get(o, "share_token");
        if (json_object_object_length(o) != members ||
            get_id(o, "issuer_application_id", 0,
                   fields->issuer_application_id) ||
            get_id(o, "for_application_id", 0, fields->for_application_id) ||
            get_id(o, "recipient_key_id", 1, fields->recipient_key_id) ||
            get_id(o, "signer_key_id", 1, fields->signer_key_id) ||
            get_id(o, "share_id", 0, fields->share_id) ||
            get_id(o, "source_session_id", 0, fields->source_session_id) ||
            get_time(o, "created_at", &fields->created_at) ||
            get_time(o, "expires_at", &fields->expires_at) || !kind ||
            !json_object_is_type(kind, json_type_string) || !t ||
            !json_object_is_type(t, json_type_string))
                return KB_ERR_MALFORMED;
        *tok = t;
        fields->session_kind =
            kb_session_kind_parse(json_object_get_string(kind));
        if (!fields->session_kind ||
            (size_t)json_object_get_string_len(kind) !=
                strlen(json_object_get_string(kind)) ||
            fields->created_at > fields->expires_at ||
            !token_ok(json_object_get_string(t),
                      (size_t)json_object_get_string_len(t)))
                return KB_ERR_MALFORMED;
        return KB_OK;
}

/* Wipes the string a json-c string object holds (its own heap copy). */
static void wipe_json_string(json_object *s)
{
        if (s && json_object_is_type(s, json_type_string))
                sodium_memzero((char *)json_object_get_string(s),
                               (size_t)json_object_get_string_len(s));
}

/* A token out of kb_envelope_open() lives in guarded, locked memory
 * (sodium_malloc()): guard pages around it, never swapped, wiped when
 * freed. Setting such a region up and down costs system calls (mmap,
 * mprotect, mlock, and their undoing, with a TLB shoot-down on every
 * core), a good part of an open; so regions for tokens of up to
 * TOKEN_CAP - 1 bytes are kept for the next token (wiped first), at most
 * TOKEN_POOL_MAX of them. A region starts with its capacity (TOKEN_HDR
 * bytes) and ends at its trailing guard page, where sodium_malloc() places
 * it: a write past the capacity faults. */
#define TOKEN_HDR      16
#define TOKEN_CAP      (4096 - 64 - TOKEN_HDR)
#define TOKEN_POOL_MAX 128

static pthread_mutex_t token_pool_lock = PTHREAD_MUTEX_INITIALIZER;
static unsigned char *token_pool[TOKEN_POOL_MAX];
static int token_pool_n;

static char *token_alloc(size_t need)
{
        unsigned char *base = NULL;
        size_t cap = need <= TOKEN_CAP ? TOKEN_CAP : need;

        if (cap == TOKEN_CAP) {
                pthread_mutex_lock(&token_pool_lock);
                if (token_pool_n > 0)
                        base = token_pool[--token_pool_n];
                pthread_mutex_unlock(&token_pool_lock);
        }
        if (!base) {
                if (cap > SIZE_MAX - TOKEN_HDR)
                        return NULL;
                base = sodium_malloc(TOKEN_HDR + cap);
                if (!base)
                        return NULL;
                memcpy(base, &cap, sizeof(cap));
        }
        return (char *)base + TOKEN_HDR;
}

int kb_envelope_open(const char *env, size_t env_len,
                     const kb_envelope_opener_t *opener,
                     kb_envelope_header_t *hdr, kb_envelope_fields_t *fields,
                     char **token, size_t *token_len)
{
        kb_envelope_header_t hdr_local;
        const kb_key_t *box, *signer;
        const char *owner = NULL;
        unsigned char *sealed = NULL, *plain = NULL;
        unsigned char sig[SIG_BYTES];
        size_t sealed_len = 0, plain_len = 0, inner_len;
        json_object *root = NULL, *tok = NULL;
        const char *inner;
        int rc;

        if (!hdr)
                hdr = &hdr_local;
        memset(hdr, 0, sizeof(*hdr));
        if (fields)
                memset(fields, 0, sizeof(*fields));
        if (token)
                *token = NULL;
        if (token_len)
                *token_len = 0;
        if (!opener || !opener->my_application_id || !opener->box_keys ||
            !opener->signers || !fields || !token || !token_len)
                return KB_ERR_INVALID_ARG;

        rc = parse_outer(env, env_len, hdr, &sealed, &sealed_len);
        if (rc != KB_OK)
                goto out;
        if (strcmp(hdr->for_application_id, opener->my_application_id) != 0) {
                rc = KB_ERR_NOT_FOR_US;
                goto out;
        }
        box = kb_keyring_find(opener->box_keys, KB_KEY_BOX,
                              hdr->recipient_key_id, NULL);
        signer = kb_keyring_find(opener->signers, KB_KEY_SIGN,
                                 hdr->signer_key_id, &owner);
        if (!box || !kb_key_has_secret(box) || !signer) {
                rc = KB_ERR_UNKNOWN_KEY;
                goto out;
        }

        /* From here on every failure up to the signature is KB_ERR_AUTH. */
        rc = KB_ERR_AUTH;
        if (sealed_len < MIN_SEALED)
                goto out;
        plain_len = sealed_len - crypto_box_SEALBYTES;
        plain = malloc(plain_len);
        if (!plain) {
                rc = KB_ERR_NOMEM;
                goto out;
        }
        if (kb_keyint_seal_open(box, plain, sealed, sealed_len) != KB_OK)
                goto out;
        /* plain = sig || inner. Put the context right before inner, in the
         * bytes the signature occupied, to verify without another copy. */
        memcpy(sig, plain, SIG_BYTES);
        memcpy(plain + SIG_BYTES - SIG_CTX_BYTES, sig_ctx, SIG_CTX_BYTES);
        inner = (const char *)plain + SIG_BYTES;
        inner_len = plain_len - SIG_BYTES;
        if (crypto_sign_verify_detached(sig, plain + SIG_BYTES - SIG_CTX_BYTES,
                                        SIG_CTX_BYTES + inner_len,
                                        kb_key_public(signer)) != 0)
                goto out;

        /* Authentic. A document the signer got wrong is malformed... */
        if (inner_len > KB_ENVELOPE_MAX_INNER) {
                rc = KB_ERR_MALFORMED;
                goto out;
        }
        rc = parse_inner(inner, inner_len, fields, &root, &tok);
        if (rc != KB_OK)
                goto out;
        /* ...but one that disagrees with its header or with the keys it
         * came with was tampered with or replayed: one code for all. */
        rc = KB_ERR_AUTH;
        if (strcmp(fields->for_application_id, hdr->for_application_id) ||
            strcmp(fields->recipient_key_id, hdr->recipient_key_id) ||
            strcmp(fields->signer_key_id, hdr->signer_key_id) ||
            strcmp(fields->share_id, hdr->share_id) ||
            fields->expires_at != hdr->expires_at ||
            strcmp(fields->recipient_key_id, kb_key_id(box)) ||
            strcmp(fields->signer_key_id, kb_key_id(signer)) || !owner ||
            strcmp(fields->issuer_application_id, owner) ||
            strcmp(fields->for_application_id, opener->my_application_id))
                goto out;
        if (opener->now >= fields->expires_at) {
                rc = KB_ERR_EXPIRED;
                goto out;
        }
        *token_len = (size_t)json_object_get_string_len(tok);
        *token = token_alloc(*token_len + 1);
        if (!*token) {
                *token_len = 0;
                rc = KB_ERR_NOMEM;
                goto out;
        }
        memcpy(*token, json_object_get_string(tok), *token_len);
        (*token)[*token_len] = '\0';
        rc = KB_OK;
out:
        wipe_json_string(tok);
        json_object_put(root);
        if (plain) {
                sodium_memzero(plain, plain_len);
                free(plain);
        }
        free(sealed);
        sodium_memzero(sig, sizeof(sig));
        if (rc != KB_OK && fields)
                memset(fields, 0, sizeof(*fields));
        return rc;
}

void kb_envelope_token_free(char *token)
{
        unsigned char *base;
        size_t cap;

        if (!token)
                return;
        base = (unsigned char *)token - TOKEN_HDR;
        memcpy(&cap, base, sizeof(cap));
        sodium_memzero(token, cap);
        if (cap == TOKEN_CAP) {
                pthread_mutex_lock(&token_pool_lock);
                if (token_pool_n < TOKEN_POOL_MAX) {
                        token_pool[token_pool_n++] = base;
                        base = NULL;
                }
                pthread_mutex_unlock(&token_pool_lock);
        }
        if (base)
                sodium_free(base);
}

/* ---- writing the envelope's JSON (envelope_int.h) ---- */

/*
 * Unpadded base64url of @p bin into @p out (4 * ceil(n / 3) bytes at most,
 * no NUL), returning the length: what sodium_bin2base64() writes with
 * B64_VARIANT, by table lookup. sodium's encoder takes constant time,
 * which a secret needs and a sealed box -- public, the envelope carries it
 * -- does not: the lookup costs a fifth of it.
 */
static size_t b64url_put(char *out, const unsigned char *bin, size_t n)
{
        static const char tab[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
                                  "abcdefghijklmnopqrstuvwxyz0123456789-_";
        char *o = out;
        size_t i = 0;

        for (; i + 3 <= n; i += 3) {
                uint32_t v = (uint32_t)bin[i] << 16 |
                             (uint32_t)bin[i + 1] << 8 | bin[i + 2];
                *o++ = tab[v >> 18];
                *o++ = tab[(v >> 12) & 63];
                *o++ = tab[(v >> 6) & 63];
                *o++ = tab[v & 63];
        }
        if (n - i == 1) {
                *o++ = tab[bin[i] >> 2];
                *o++ = tab[(bin[i] & 3) << 4];
        } else if (n - i == 2) {
                uint32_t v = (uint32_t)bin[i] << 8 | bin[i + 1];
                *o++ = tab[v >> 10];
                *o++ = tab[(v >> 4) & 63];
                *o++ = tab[(v & 15) << 2];
        }
        return (size_t)(o - out);
}

/* Appends @p n in decimal, as json-c prints an int64. */
static int put_i64(kb_buf_t *b, int64_t n)
{
        char d[24], *p = d + sizeof(d);
        uint64_t u = n < 0 ? 0 - (uint64_t)n : (uint64_t)n;

        do
                *--p = (char)('0' + u % 10);
        while ((u /= 10) != 0);
        if (n < 0)
                *--p = '-';
        return kb_buf_append(b, p, (size_t)(d + sizeof(d) - p)) ? KB_ERR_NOMEM
                                                                : KB_OK;
}

/* Appends the literal @p lit (a member's punctuation and key), then the
 * string @p s / @p len as a JSON string. */
static int put_str(kb_buf_t *b, const char *lit, const char *s, size_t len)
{
        if (kb_buf_puts(b, lit) == -1)
                return KB_ERR_NOMEM;
        if (kb_json_put_string(b, s, len) == -1)
                return errno == EILSEQ ? KB_ERR_INVALID_ARG : KB_ERR_NOMEM;
        return KB_OK;
}

/* A string member's text at most: the key and its punctuation (@p lit),
 * every byte escaped as \u00xx, the quotes. */
#define STR_BOUND(lit, len) (sizeof(lit) - 1 + 6 * (len) + 2)
#define I64_BOUND(lit)      (sizeof(lit) - 1 + 20)

#define IN_V     "{\"v\":"
#define IN_ISS   ",\"issuer_application_id\":"
#define IN_FOR   ",\"for_application_id\":"
#define IN_RKID  ",\"recipient_key_id\":"
#define IN_SKID  ",\"signer_key_id\":"
#define IN_SHARE ",\"share_id\":"
#define IN_KIND  ",\"session_kind\":"
#define IN_SRC   ",\"source_session_id\":"
#define IN_HINT  ",\"vendor_data_hint\":"
#define IN_CRE   ",\"created_at\":"
#define IN_EXP   ",\"expires_at\":"
#define IN_TOK   ",\"share_token\":"

size_t kb_envint_inner_bound(const kb_envelope_fields_t *f, size_t token_len,
                             const char *recipient_key_id,
                             const char *signer_key_id)
{
        const char *kind = kb_session_kind2str(f->session_kind);

        return I64_BOUND(IN_V) +
               STR_BOUND(IN_ISS, strlen(f->issuer_application_id)) +
               STR_BOUND(IN_FOR, strlen(f->for_application_id)) +
               STR_BOUND(IN_RKID, strlen(recipient_key_id)) +
               STR_BOUND(IN_SKID, strlen(signer_key_id)) +
               STR_BOUND(IN_SHARE, strlen(f->share_id)) +
               STR_BOUND(IN_KIND, kind ? strlen(kind) : 0) +
               STR_BOUND(IN_SRC, strlen(f->source_session_id)) +
               STR_BOUND(IN_HINT, strlen(f->vendor_data_hint)) +
               I64_BOUND(IN_CRE) + I64_BOUND(IN_EXP) +
               STR_BOUND(IN_TOK, token_len) + 1;
}

int kb_envint_inner_put(kb_buf_t *b, const kb_envelope_fields_t *f,
                        const char *token, size_t token_len,
                        const char *recipient_key_id, const char *signer_key_id)
{
        const char *kind = kb_session_kind2str(f->session_kind);
        size_t start = b->len;
        int rc;

#define S(lit, s) put_str(b, lit, s, strlen(s))
        if ((rc = kb_buf_puts(b, IN_V) ? KB_ERR_NOMEM : KB_OK) ||
            (rc = put_i64(b, KB_ENVELOPE_VERSION)) ||
            (rc = S(IN_ISS, f->issuer_application_id)) ||
            (rc = S(IN_FOR, f->for_application_id)) ||
            (rc = S(IN_RKID, recipient_key_id)) ||
            (rc = S(IN_SKID, signer_key_id)) ||
            (rc = S(IN_SHARE, f->share_id)) ||
            (kind && (rc = S(IN_KIND, kind))) ||
            (rc = S(IN_SRC, f->source_session_id)) ||
            (f->vendor_data_hint[0] &&
             (rc = S(IN_HINT, f->vendor_data_hint))) ||
            (rc = kb_buf_puts(b, IN_CRE) ? KB_ERR_NOMEM : KB_OK) ||
            (rc = put_i64(b, f->created_at)) ||
            (rc = kb_buf_puts(b, IN_EXP) ? KB_ERR_NOMEM : KB_OK) ||
            (rc = put_i64(b, f->expires_at)) ||
            (rc = put_str(b, IN_TOK, token, token_len)) ||
            (rc = kb_buf_append(b, "}", 1) ? KB_ERR_NOMEM : KB_OK)) {
                if (b->data) {
                        b->len = start;
                        b->data[start] = '\0';
                }
                return rc;
        }
#undef S
        return KB_OK;
}

int kb_envint_outer_put(kb_buf_t *b, const kb_envelope_fields_t *f,
                        const char *recipient_key_id, const char *signer_key_id,
                        const unsigned char *sealed, size_t sealed_len)
{
        size_t start = b->len,
               enc = sodium_base64_ENCODED_LEN(sealed_len, B64_VARIANT);
        int rc;

#define S(lit, s) put_str(b, lit, s, strlen(s))
        /* one allocation for all of it (every id byte escaped at most) */
        if (kb_buf_reserve(b,
                           6 * (strlen(f->for_application_id) +
                                strlen(recipient_key_id) +
                                strlen(signer_key_id) + strlen(f->share_id)) +
                               enc + 160) == -1)
                return KB_ERR_NOMEM;
        if ((rc = kb_buf_puts(b, IN_V) ? KB_ERR_NOMEM : KB_OK) ||
            (rc = put_i64(b, KB_ENVELOPE_VERSION)) ||
            (rc = S(IN_FOR, f->for_application_id)) ||
            (rc = S(IN_RKID, recipient_key_id)) ||
            (rc = S(IN_SKID, signer_key_id)) ||
            (rc = S(IN_SHARE, f->share_id)) ||
            (rc = kb_buf_puts(b, IN_EXP) ? KB_ERR_NOMEM : KB_OK) ||
            (rc = put_i64(b, f->expires_at)) ||
            (rc = kb_buf_puts(b, ",\"sealed\":\"") ? KB_ERR_NOMEM : KB_OK) ||
            (rc = kb_buf_reserve(b, enc + 2) ? KB_ERR_NOMEM : KB_OK))
                goto fail;
#undef S
        /* base64url needs no escape: written in place */
        b->len += b64url_put(b->data + b->len, sealed, sealed_len);
        b->data[b->len] = '\0';
        if (kb_buf_append(b, "\"}", 2) == -1) {
                rc = KB_ERR_NOMEM;
                goto fail;
        }
        return KB_OK;
fail:
        if (b->data) {
                b->len = start;
                b->data[start] = '\0';
        }
        return rc;
}

static int check_seal_args(const kb_envelope_fields_t *f, const char *token,
                           size_t token_len, const kb_key_t *signer,
                           const kb_key_t *recipient)
{
        if (!f || !token || !signer || !recipient)
                return KB_ERR_INVALID_ARG;
        if (kb_key_type(signer) != KB_KEY_SIGN || !kb_key_has_secret(signer) ||
            kb_key_type(recipient) != KB_KEY_BOX)
                return KB_ERR_INVALID_ARG;
        if (!field_ok(f->issuer_application_id) ||
            !field_ok(f->for_application_id) || !field_ok(f->share_id) ||
            !field_ok(f->source_session_id) ||
            (f->vendor_data_hint[0] && !field_ok(f->vendor_data_hint)) ||
            !kb_session_kind2str(f->session_kind) || !time_ok(f->created_at) ||
            !time_ok(f->expires_at) || f->created_at > f->expires_at)
                return KB_ERR_INVALID_ARG;
        if (token_len > KB_ENVELOPE_MAX_TOKEN)
                return KB_ERR_TOO_LARGE;
        if (!token_ok(token, token_len))
                return KB_ERR_INVALID_ARG;
        return KB_OK;
}

int kb_envelope_seal(const kb_envelope_fields_t *fields, const char *token,
                     size_t token_len, const kb_key_t *signer,
                     const kb_key_t *recipient, char **out, size_t *out_len)
{
        /* si = sig || inner: the only buffer holding the token (wiped) */
        kb_buf_t si = KB_BUF_INIT, env = KB_BUF_INIT;
        unsigned char *sealed = NULL;
        unsigned char sig[SIG_BYTES];
        const char *rid, *sid;
        size_t inner_len, sealed_len;
        int rc;

        if (!out || !out_len)
                return KB_ERR_INVALID_ARG;
        *out = NULL;
        *out_len = 0;
        rc = check_seal_args(fields, token, token_len, signer, recipient);
        if (rc != KB_OK)
                return rc;
        rid = kb_key_id(recipient);
        sid = kb_key_id(signer);

        /* Sized once for the worst case, so that no realloc leaves a copy
         * of the token behind; the signature's bytes come first. */
        rc = KB_ERR_NOMEM;
        if (kb_buf_reserve(&si,
                           SIG_BYTES + kb_envint_inner_bound(fields, token_len,
                                                             rid, sid)) == -1)
                goto out;
        si.len = SIG_BYTES;
        rc = kb_envint_inner_put(&si, fields, token, token_len, rid, sid);
        if (rc != KB_OK)
                goto out;
        inner_len = si.len - SIG_BYTES;
        if (inner_len > KB_ENVELOPE_MAX_INNER) {
                rc = KB_ERR_TOO_LARGE;
                goto out;
        }
        sealed_len = crypto_box_SEALBYTES + si.len;
        sealed = malloc(sealed_len);
        if (!sealed) {
                rc = KB_ERR_NOMEM;
                goto out;
        }
        /* sign ctx || inner where the context temporarily sits in the
         * bytes the signature will take */
        memcpy(si.data + SIG_BYTES - SIG_CTX_BYTES, sig_ctx, SIG_CTX_BYTES);
        rc = kb_keyint_sign_detached(
            signer, sig, (unsigned char *)si.data + SIG_BYTES - SIG_CTX_BYTES,
            SIG_CTX_BYTES + inner_len);
        if (rc != KB_OK)
                goto out;
        memcpy(si.data, sig, SIG_BYTES);
        if (crypto_box_seal(sealed, (unsigned char *)si.data, si.len,
                            kb_key_public(recipient)) != 0) {
                rc = KB_ERR_CRYPTO;
                goto out;
        }
        rc = kb_envint_outer_put(&env, fields, rid, sid, sealed, sealed_len);
        if (rc != KB_OK)
                goto out;
        if (env.len > KB_ENVELOPE_MAX_BYTES) {
                rc = KB_ERR_TOO_LARGE;
                goto out;
        }
        *out_len = env.len;
        *out = kb_buf_steal(&env, NULL);
        rc = KB_OK;
out:
        if (si.data) {
                /* what was written: the rest of the buffer never was */
                sodium_memzero(si.data, si.len + 1);
                free(si.data);
        }
        sodium_memzero(sig, sizeof(sig));
        free(sealed);
        kb_buf_free(&env, 0);
        return rc;
}
