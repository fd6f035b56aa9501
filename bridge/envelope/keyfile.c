/* keyfile.c -- secret key files (plain or passphrase-encrypted), passphrases */
#include "kyc_bridge.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sodium.h>

#include "keys_int.h"
#include "util.h"

/* The format is specified in docs/keys.md. */
#define KEYFILE_FORMAT "kyc-bridge-secret-key/1"
#define KEYFILE_KDF    "argon2id13"
#define KEYFILE_MAX    4096U /* bytes; a real file is about 400 */
#define KEYFILE_VALMAX 128U  /* longest value we accept, in bytes */
#define PASSPHRASE_MAX 1024U

/* Upper bounds on the KDF cost a file may ask for, so that a hostile file
 * cannot make the loader burn minutes or gigabytes. */
#define KDF_OPSLIMIT_MAX 32ULL
#define KDF_MEMLIMIT_MAX (2048ULL * 1024 * 1024)

enum {
        F_FORMAT,
        F_TYPE,
        F_KEY_ID,
        F_PUBLIC_KEY,
        F_SECRET_KEY,
        F_KDF,
        F_OPSLIMIT,
        F_MEMLIMIT,
        F_SALT,
        F_NONCE,
        F_SECRET_KEY_ENC,
        F_COUNT
};

static const char *const field_names[F_COUNT] = {
        "format",
        "type",
        "key_id",
        "public_key",
        "secret_key",
        "kdf",
        "opslimit",
        "memlimit",
        "salt",
        "nonce",
        "secret_key_encrypted",
};

/* Which fields each kind of file carries (and must carry). */
static const int plain_fields[] = { F_FORMAT, F_TYPE, F_KEY_ID, F_PUBLIC_KEY,
                                    F_SECRET_KEY };
static const int enc_fields[] = { F_FORMAT,        F_TYPE, F_KEY_ID,
                                  F_PUBLIC_KEY,    F_KDF,  F_OPSLIMIT,
                                  F_MEMLIMIT,      F_SALT, F_NONCE,
                                  F_SECRET_KEY_ENC };

typedef struct {
        char val[F_COUNT][KEYFILE_VALMAX + 1];
        int line[F_COUNT]; /* 0 = absent */
} keyfile_t;

static const char *type_name(kb_key_type_t type)
{
        return type == KB_KEY_BOX ? "x25519" : "ed25519";
}

/* Strict unpadded base64url decoding of exactly @p want bytes. */
static int b64_exact(const char *s, unsigned char *out, size_t want)
{
        size_t n = 0, slen = strlen(s);
        const char *end = NULL;

        if (sodium_base642bin(out, want, s, slen, NULL, &n, &end,
                              sodium_base64_VARIANT_URLSAFE_NO_PADDING) != 0)
                return -1;
        return (n == want && end == s + slen) ? 0 : -1;
}

static void b64_enc(char *out, size_t out_size, const unsigned char *in,
                    size_t len)
{
        sodium_bin2base64(out, out_size, in, len,
                          sodium_base64_VARIANT_URLSAFE_NO_PADDING);
}

static int is_keyid(const char *s)
{
        size_t i;

        for (i = 0; i < KB_KEYID_LEN; i++)
                if (!((s[i] >= '0' && s[i] <= '9') ||
                      (s[i] >= 'a' && s[i] <= 'f')))
                        return 0;
        return s[KB_KEYID_LEN] == '\0';
}

int kb_key_save_secret(const kb_key_t *key, const char *path,
                       const char *passphrase, size_t passphrase_len,
                       char *errstr, size_t errstr_size)
{
        unsigned char secret[KB_KEYINT_SECRET_BYTES];
        unsigned char kek[crypto_secretbox_KEYBYTES];
        unsigned char salt[crypto_pwhash_SALTBYTES];
        unsigned char nonce[crypto_secretbox_NONCEBYTES];
        unsigned char ct[crypto_secretbox_MACBYTES + sizeof(secret)];
        char pk64[64], b64a[64], b64b[64], b64c[96];
        char text[1024];
        int n, err = KB_OK;

        if (!key || !path || !kb_key_has_secret(key)) {
                kb_snprintf(errstr, errstr_size, "%s: not a key pair",
                            path ? path : "(null)");
                return KB_ERR_INVALID_ARG;
        }
        if (passphrase && passphrase_len == 0) {
                kb_snprintf(errstr, errstr_size, "%s: empty passphrase", path);
                return KB_ERR_INVALID_ARG;
        }
        if (kb_keyint_export_secret(key, secret) != KB_OK) {
                kb_snprintf(errstr, errstr_size, "%s: not a key pair", path);
                return KB_ERR_INVALID_ARG;
        }
        b64_enc(pk64, sizeof(pk64), kb_key_public(key), 32);
        n = snprintf(text, sizeof(text),
                     "# kyc-bridge secret key -- keep private\n"
                     "# %s %s key; format: docs/keys.md\n"
                     "format=" KEYFILE_FORMAT "\n"
                     "type=%s\n"
                     "key_id=%s\n"
                     "public_key=%s\n",
                     type_name(kb_key_type(key)),
                     kb_key_type(key) == KB_KEY_BOX ? "(receive)" : "(sign)",
                     type_name(kb_key_type(key)), kb_key_id(key), pk64);
        if (!passphrase) {
                b64_enc(b64a, sizeof(b64a), secret, sizeof(secret));
                n += snprintf(text + n, sizeof(text) - (size_t)n,
                              "secret_key=%s\n", b64a);
        } else {
                randombytes_buf(salt, sizeof(salt));
                randombytes_buf(nonce, sizeof(nonce));
                if (crypto_pwhash(kek, sizeof(kek), passphrase, passphrase_len,
                                  salt, crypto_pwhash_OPSLIMIT_INTERACTIVE,
                                  crypto_pwhash_MEMLIMIT_INTERACTIVE,
                                  crypto_pwhash_ALG_ARGON2ID13) != 0) {
                        kb_snprintf(errstr, errstr_size,
                                    "%s: key derivation failed (out of "
                                    "memory?)",
                                    path);
                        err = KB_ERR_NOMEM;
                        goto out;
                }
                crypto_secretbox_easy(ct, secret, sizeof(secret), nonce, kek);
                b64_enc(b64a, sizeof(b64a), salt, sizeof(salt));
                b64_enc(b64b, sizeof(b64b), nonce, sizeof(nonce));
                b64_enc(b64c, sizeof(b64c), ct, sizeof(ct));
                n += snprintf(
                    text + n, sizeof(text) - (size_t)n,
                    "kdf=" KEYFILE_KDF "\n"
                    "opslimit=%llu\n"
                    "memlimit=%llu\n"
                    "salt=%s\n"
                    "nonce=%s\n"
                    "secret_key_encrypted=%s\n",
                    (unsigned long long)crypto_pwhash_OPSLIMIT_INTERACTIVE,
                    (unsigned long long)crypto_pwhash_MEMLIMIT_INTERACTIVE,
                    b64a, b64b, b64c);
        }
        if (n <= 0 || (size_t)n >= sizeof(text)) {
                kb_snprintf(errstr, errstr_size, "%s: internal error", path);
                err = KB_ERR_INVALID_ARG;
                goto out;
        }
        if (kb_write_file_excl(path, text, (size_t)n, 0600) == -1) {
                if (errno == EEXIST) {
                        kb_snprintf(errstr, errstr_size,
                                    "%s: already exists (refusing to "
                                    "overwrite)",
                                    path);
                        err = KB_ERR_EXISTS;
                } else {
                        kb_snprintf(errstr, errstr_size, "%s: %s", path,
                                    strerror(errno));
                        err = KB_ERR_IO;
                }
        }
out:
        sodium_memzero(secret, sizeof(secret));
        sodium_memzero(kek, sizeof(kek));
        sodium_memzero(b64a, sizeof(b64a));
        sodium_memzero(text, sizeof(text));
        return err;
}

/* The errno value of a failed system call, never 0. */
static int sys_errno(void)
{
        return errno ? errno : EIO;
}

/* Reads at most KEYFILE_MAX bytes of @p path into @p buf (size
 * KEYFILE_MAX + 1, NUL-terminated). 0, or an errno value with a reason: the
 * system's when the file cannot be read, EINVAL when it is not a regular
 * file, EFBIG when it is too large. */
static int read_small(const char *path, char *buf, size_t *len, char *errstr,
                      size_t errstr_size)
{
        struct stat st;
        size_t off = 0;
        int fd, e = 0;

        fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd == -1) {
                e = sys_errno();
                kb_snprintf(errstr, errstr_size, "%s: %s", path, strerror(e));
                return e;
        }
        if (fstat(fd, &st) == -1) {
                e = sys_errno();
                kb_snprintf(errstr, errstr_size, "%s: %s", path, strerror(e));
                goto out;
        }
        if (!S_ISREG(st.st_mode)) {
                kb_snprintf(errstr, errstr_size, "%s: not a regular file",
                            path);
                e = EINVAL;
                goto out;
        }
        for (;;) {
                ssize_t r = read(fd, buf + off, KEYFILE_MAX + 1 - off);
                if (r < 0) {
                        if (errno == EINTR)
                                continue;
                        e = sys_errno();
                        kb_snprintf(errstr, errstr_size, "%s: %s", path,
                                    strerror(e));
                        goto out;
                }
                if (r == 0)
                        break;
                off += (size_t)r;
                if (off > KEYFILE_MAX) {
                        kb_snprintf(errstr, errstr_size,
                                    "%s: too large for a key file (over %u "
                                    "bytes)",
                                    path, KEYFILE_MAX);
                        e = EFBIG;
                        goto out;
                }
        }
        buf[off] = '\0';
        *len = off;
out:
        close(fd);
        return e;
}

/* Splits the file into fields; "path:line: reason" on error. */
static int parse_lines(const char *path, char *buf, size_t len, keyfile_t *kf,
                       char *errstr, size_t errstr_size)
{
        char *p = buf, *end = buf + len;
        int lineno = 0;

        if (memchr(buf, '\0', len)) {
                kb_snprintf(errstr, errstr_size, "%s: NUL byte in key file",
                            path);
                return -1;
        }
        while (p < end) {
                char *nl = memchr(p, '\n', (size_t)(end - p));
                char *eol = nl ? nl : end, *eq;
                size_t klen, vlen;
                int f;

                lineno++;
                if (eol > p && eol[-1] == '\r')
                        eol--;
                *eol = '\0';
                if (*p == '\0' || *p == '#')
                        goto next;
                eq = strchr(p, '=');
                if (!eq) {
                        kb_snprintf(errstr, errstr_size,
                                    "%s:%d: expected key=value", path, lineno);
                        return -1;
                }
                klen = (size_t)(eq - p);
                for (f = 0; f < F_COUNT; f++)
                        if (strlen(field_names[f]) == klen &&
                            !memcmp(field_names[f], p, klen))
                                break;
                if (f == F_COUNT) {
                        /* Name the field only when it looks like a name: a
                         * stray secret must not end up in a message. */
                        size_t i;
                        int plain = klen > 0 && klen <= 32;
                        for (i = 0; plain && i < klen; i++)
                                plain =
                                    (p[i] >= 'a' && p[i] <= 'z') || p[i] == '_';
                        if (plain)
                                kb_snprintf(errstr, errstr_size,
                                            "%s:%d: unknown field '%.*s'", path,
                                            lineno, (int)klen, p);
                        else
                                kb_snprintf(errstr, errstr_size,
                                            "%s:%d: unknown field", path,
                                            lineno);
                        return -1;
                }
                if (kf->line[f]) {
                        kb_snprintf(errstr, errstr_size,
                                    "%s:%d: duplicate field '%s' (first on "
                                    "line %d)",
                                    path, lineno, field_names[f], kf->line[f]);
                        return -1;
                }
                vlen = strlen(eq + 1);
                if (vlen == 0 || vlen > KEYFILE_VALMAX) {
                        kb_snprintf(errstr, errstr_size,
                                    "%s:%d: bad length for '%s'", path, lineno,
                                    field_names[f]);
                        return -1;
                }
                memcpy(kf->val[f], eq + 1, vlen + 1);
                kf->line[f] = lineno;
        next:
                p = nl ? nl + 1 : end;
        }
        return 0;
}

/* Checks that exactly the fields of one kind of file are present. */
static int check_field_set(const char *path, const keyfile_t *kf, int *enc,
                           char *errstr, size_t errstr_size)
{
        const int *want;
        size_t nwant, i;
        int f, wanted;

        *enc = kf->line[F_SECRET_KEY_ENC] != 0 || kf->line[F_KDF] != 0;
        if (*enc && kf->line[F_SECRET_KEY]) {
                kb_snprintf(errstr, errstr_size,
                            "%s:%d: 'secret_key' is not allowed in an "
                            "encrypted key file",
                            path, kf->line[F_SECRET_KEY]);
                return -1;
        }
        want = *enc ? enc_fields : plain_fields;
        nwant = *enc ? KB_ARRAY_SIZE(enc_fields) : KB_ARRAY_SIZE(plain_fields);
        for (i = 0; i < nwant; i++)
                if (!kf->line[want[i]]) {
                        kb_snprintf(errstr, errstr_size,
                                    "%s: missing field '%s'", path,
                                    field_names[want[i]]);
                        return -1;
                }
        for (f = 0; f < F_COUNT; f++) {
                if (!kf->line[f])
                        continue;
                for (wanted = 0, i = 0; i < nwant; i++)
                        wanted |= want[i] == f;
                if (!wanted) {
                        kb_snprintf(errstr, errstr_size,
                                    "%s:%d: field '%s' is only allowed in an "
                                    "encrypted key file",
                                    path, kf->line[f], field_names[f]);
                        return -1;
                }
        }
        return 0;
}

/* Decrypts secret_key_encrypted into @p secret. 0, or an errno value with a
 * reason: ENOMEM when the key derivation ran out of memory, EINVAL for
 * anything wrong with the file or the passphrase. */
static int decrypt_secret(const char *path, const keyfile_t *kf,
                          const char *passphrase, size_t passphrase_len,
                          unsigned char secret[32], char *errstr,
                          size_t errstr_size)
{
        unsigned char salt[crypto_pwhash_SALTBYTES];
        unsigned char nonce[crypto_secretbox_NONCEBYTES];
        unsigned char ct[crypto_secretbox_MACBYTES + KB_KEYINT_SECRET_BYTES];
        unsigned char kek[crypto_secretbox_KEYBYTES];
        int64_t ops, mem;
        int rc = EINVAL;

        if (strcmp(kf->val[F_KDF], KEYFILE_KDF) != 0) {
                kb_snprintf(errstr, errstr_size,
                            "%s:%d: unsupported kdf (expected " KEYFILE_KDF ")",
                            path, kf->line[F_KDF]);
                return EINVAL;
        }
        if (kb_parse_i64(kf->val[F_OPSLIMIT],
                         (int64_t)crypto_pwhash_OPSLIMIT_MIN,
                         (int64_t)KDF_OPSLIMIT_MAX, &ops) == -1) {
                kb_snprintf(errstr, errstr_size,
                            "%s:%d: opslimit must be an integer in "
                            "[%llu, %llu]",
                            path, kf->line[F_OPSLIMIT],
                            (unsigned long long)crypto_pwhash_OPSLIMIT_MIN,
                            KDF_OPSLIMIT_MAX);
                return EINVAL;
        }
        if (kb_parse_i64(kf->val[F_MEMLIMIT],
                         (int64_t)crypto_pwhash_MEMLIMIT_MIN,
                         (int64_t)KDF_MEMLIMIT_MAX, &mem) == -1) {
                kb_snprintf(errstr, errstr_size,
                            "%s:%d: memlimit must be an integer in "
                            "[%llu, %llu]",
                            path, kf->line[F_MEMLIMIT],
                            (unsigned long long)crypto_pwhash_MEMLIMIT_MIN,
                            KDF_MEMLIMIT_MAX);
                return EINVAL;
        }
        if (b64_exact(kf->val[F_SALT], salt, sizeof(salt)) == -1) {
                kb_snprintf(errstr, errstr_size,
                            "%s:%d: salt must be %u bytes of base64url", path,
                            kf->line[F_SALT], (unsigned)sizeof(salt));
                return EINVAL;
        }
        if (b64_exact(kf->val[F_NONCE], nonce, sizeof(nonce)) == -1) {
                kb_snprintf(errstr, errstr_size,
                            "%s:%d: nonce must be %u bytes of base64url", path,
                            kf->line[F_NONCE], (unsigned)sizeof(nonce));
                return EINVAL;
        }
        if (b64_exact(kf->val[F_SECRET_KEY_ENC], ct, sizeof(ct)) == -1) {
                kb_snprintf(errstr, errstr_size,
                            "%s:%d: secret_key_encrypted must be %u bytes "
                            "of base64url",
                            path, kf->line[F_SECRET_KEY_ENC],
                            (unsigned)sizeof(ct));
                return EINVAL;
        }
        if (!passphrase) {
                kb_snprintf(errstr, errstr_size,
                            "%s: key file is encrypted: a passphrase is "
                            "required",
                            path);
                return EINVAL;
        }
        errno = 0;
        if (crypto_pwhash(kek, sizeof(kek), passphrase, passphrase_len, salt,
                          (unsigned long long)ops, (size_t)mem,
                          crypto_pwhash_ALG_ARGON2ID13) != 0) {
                /* the parameters are checked above: what is left is the
                 * memory Argon2 could not get (errno ENOMEM) */
                if (errno == ENOMEM) {
                        kb_snprintf(errstr, errstr_size,
                                    "%s: key derivation: out of memory "
                                    "(memlimit %lld bytes)",
                                    path, (long long)mem);
                        rc = ENOMEM;
                } else {
                        kb_snprintf(errstr, errstr_size,
                                    "%s: key derivation failed", path);
                }
                goto out;
        }
        if (crypto_secretbox_open_easy(secret, ct, sizeof(ct), nonce, kek) !=
            0) {
                kb_snprintf(errstr, errstr_size,
                            "%s: wrong passphrase or corrupted key file", path);
                goto out;
        }
        rc = 0;
out:
        sodium_memzero(kek, sizeof(kek));
        return rc;
}

kb_key_t *kb_key_load_secret(const char *path, const char *passphrase,
                             size_t passphrase_len, char *errstr,
                             size_t errstr_size)
{
        char buf[KEYFILE_MAX + 1];
        keyfile_t kf;
        unsigned char pk[32], secret[KB_KEYINT_SECRET_BYTES];
        char id[KB_KEYID_BYTES];
        kb_key_type_t type;
        kb_key_t *key = NULL;
        size_t len = 0;
        int enc, e = EINVAL; /* errno on failure: see kb_keys.h */

        memset(&kf, 0, sizeof(kf));
        if (!path) {
                kb_snprintf(errstr, errstr_size, "(null): no path");
                errno = EINVAL;
                return NULL;
        }
        if ((e = read_small(path, buf, &len, errstr, errstr_size)) != 0)
                goto out;
        e = EINVAL;
        if (parse_lines(path, buf, len, &kf, errstr, errstr_size) == -1)
                goto out;
        if (!kf.line[F_FORMAT]) {
                kb_snprintf(errstr, errstr_size,
                            "%s: not a kyc-bridge secret key file (no "
                            "'format' field)",
                            path);
                goto out;
        }
        if (strcmp(kf.val[F_FORMAT], KEYFILE_FORMAT) != 0) {
                kb_snprintf(
                    errstr, errstr_size,
                    "%s:%d: unsupported format (expected " KEYFILE_FORMAT ")",
                    path, kf.line[F_FORMAT]);
                goto out;
        }
        if (check_field_set(path, &kf, &enc, errstr, errstr_size) == -1)
                goto out;
        if (!strcmp(kf.val[F_TYPE], "x25519")) {
                type = KB_KEY_BOX;
        } else if (!strcmp(kf.val[F_TYPE], "ed25519")) {
                type = KB_KEY_SIGN;
        } else {
                kb_snprintf(errstr, errstr_size,
                            "%s:%d: type must be x25519 or ed25519", path,
                            kf.line[F_TYPE]);
                goto out;
        }
        if (!is_keyid(kf.val[F_KEY_ID])) {
                kb_snprintf(errstr, errstr_size,
                            "%s:%d: key_id must be 16 lowercase hex digits",
                            path, kf.line[F_KEY_ID]);
                goto out;
        }
        if (b64_exact(kf.val[F_PUBLIC_KEY], pk, sizeof(pk)) == -1) {
                kb_snprintf(errstr, errstr_size,
                            "%s:%d: public_key must be 32 bytes of base64url",
                            path, kf.line[F_PUBLIC_KEY]);
                goto out;
        }
        kb_key_id_derive(type, pk, id);
        if (strcmp(id, kf.val[F_KEY_ID]) != 0) {
                kb_snprintf(errstr, errstr_size,
                            "%s:%d: key_id does not match public_key", path,
                            kf.line[F_KEY_ID]);
                goto out;
        }
        if (enc) {
                e = decrypt_secret(path, &kf, passphrase, passphrase_len,
                                   secret, errstr, errstr_size);
                if (e != 0)
                        goto out;
                e = EINVAL;
        } else if (b64_exact(kf.val[F_SECRET_KEY], secret, sizeof(secret)) ==
                   -1) {
                kb_snprintf(errstr, errstr_size,
                            "%s:%d: secret_key must be 32 bytes of base64url",
                            path, kf.line[F_SECRET_KEY]);
                goto out;
        }
        key = kb_keyint_from_secret(type, secret);
        if (!key) {
                e = errno == ENOMEM ? ENOMEM : EINVAL;
                if (e == ENOMEM)
                        kb_snprintf(errstr, errstr_size, "%s: out of memory",
                                    path);
                else
                        kb_snprintf(errstr, errstr_size,
                                    "%s: not a usable secret key", path);
                goto out;
        }
        if (sodium_memcmp(kb_key_public(key), pk, sizeof(pk)) != 0) {
                kb_snprintf(errstr, errstr_size,
                            "%s: public_key does not belong to the secret "
                            "key (corrupted key file)",
                            path);
                kb_key_destroy(key);
                key = NULL;
        }
out:
        sodium_memzero(buf, sizeof(buf));
        sodium_memzero(&kf, sizeof(kf));
        sodium_memzero(secret, sizeof(secret));
        if (!key)
                errno = e; /* last, after everything that could change it */
        return key;
}

int kb_keyint_passphrase_read(const char *env_name, const char *path,
                              char **out, size_t *out_len, char *errstr,
                              size_t errstr_size)
{
        char buf[PASSPHRASE_MAX + 2];
        const char *src;
        size_t len = 0;
        int fd, err = KB_OK;

        *out = NULL;
        *out_len = 0;
        if ((env_name == NULL) == (path == NULL)) {
                kb_snprintf(errstr, errstr_size,
                            "give exactly one passphrase source");
                return KB_ERR_INVALID_ARG;
        }
        if (env_name) {
                src = getenv(env_name);
                if (!src) {
                        kb_snprintf(errstr, errstr_size,
                                    "environment variable %s is not set",
                                    env_name);
                        return KB_ERR_CONFIG;
                }
                len = strlen(src);
                if (len > PASSPHRASE_MAX) {
                        kb_snprintf(errstr, errstr_size,
                                    "passphrase in %s is longer than %u "
                                    "bytes",
                                    env_name, PASSPHRASE_MAX);
                        return KB_ERR_CONFIG;
                }
                memcpy(buf, src, len);
        } else {
                fd = open(path, O_RDONLY | O_CLOEXEC);
                if (fd == -1) {
                        kb_snprintf(errstr, errstr_size, "%s: %s", path,
                                    strerror(errno));
                        return KB_ERR_IO;
                }
                for (;;) {
                        ssize_t r = read(fd, buf + len, sizeof(buf) - len);
                        if (r < 0 && errno == EINTR)
                                continue;
                        if (r < 0) {
                                kb_snprintf(errstr, errstr_size, "%s: %s", path,
                                            strerror(errno));
                                err = KB_ERR_IO;
                                break;
                        }
                        if (r == 0)
                                break;
                        len += (size_t)r;
                        if (len == sizeof(buf))
                                break;
                }
                close(fd);
                if (err)
                        goto out;
                /* one trailing newline is the file's, not the passphrase's */
                if (len > 0 && buf[len - 1] == '\n') {
                        len--;
                        if (len > 0 && buf[len - 1] == '\r')
                                len--;
                }
                if (len > PASSPHRASE_MAX) {
                        kb_snprintf(errstr, errstr_size,
                                    "%s: passphrase longer than %u bytes", path,
                                    PASSPHRASE_MAX);
                        err = KB_ERR_CONFIG;
                        goto out;
                }
        }
        if (len == 0 || memchr(buf, '\0', len)) {
                kb_snprintf(
                    errstr, errstr_size, "%s: %s", env_name ? env_name : path,
                    len ? "NUL byte in passphrase" : "empty passphrase");
                err = KB_ERR_CONFIG;
                goto out;
        }
        *out = sodium_malloc(len + 1);
        if (!*out) {
                kb_snprintf(errstr, errstr_size, "out of memory");
                err = KB_ERR_NOMEM;
                goto out;
        }
        memcpy(*out, buf, len);
        (*out)[len] = '\0';
        *out_len = len;
out:
        sodium_memzero(buf, sizeof(buf));
        return err;
}

void kb_keyint_passphrase_free(char *pass)
{
        if (pass)
                sodium_free(pass);
}
