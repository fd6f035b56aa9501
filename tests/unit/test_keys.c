/* test_keys.c -- unit tests for keys.c, keyfile.c, bundle.c and keyring.c */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <sodium.h>

#include "keys_int.h"
#include "kyc_bridge.h"
#include "util.h"

#define PASS "correct horse battery staple"

/*
 * kb_key_load_secret(), kb_bundle_load() and friends tell "out of memory"
 * (errno ENOMEM) from everything else. @p expr must fail; it runs with a
 * stale ENOMEM in errno, so a failure path that forgets to set errno is
 * caught, and must leave @p want.
 */
#define assert_null_errno(expr, want)                                          \
        do {                                                                   \
                const void *p_;                                                \
                int e_;                                                        \
                errno = ENOMEM;                                                \
                p_ = (expr);                                                   \
                e_ = errno;                                                    \
                assert_null(p_);                                               \
                assert_int_equal(e_, (want));                                  \
        } while (0)

/* ---- a private temporary directory per test ---- */

typedef struct {
        char dir[64];
        char path[256];
} tmp_t;

static int setup_tmp(void **state)
{
        tmp_t *t = calloc(1, sizeof(*t));

        if (!t)
                return -1;
        kb_strlcpy(t->dir, "/tmp/kb-test-keys-XXXXXX", sizeof(t->dir));
        if (!mkdtemp(t->dir)) {
                free(t);
                return -1;
        }
        *state = t;
        return 0;
}

static int teardown_tmp(void **state)
{
        tmp_t *t = *state;
        DIR *d = opendir(t->dir);
        struct dirent *de;
        char p[512];

        while (d && (de = readdir(d)) != NULL) {
                if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
                        continue;
                kb_snprintf(p, sizeof(p), "%s/%s", t->dir, de->d_name);
                unlink(p);
        }
        if (d)
                closedir(d);
        rmdir(t->dir);
        free(t);
        return 0;
}

static const char *tpath(tmp_t *t, const char *name)
{
        kb_snprintf(t->path, sizeof(t->path), "%s/%s", t->dir, name);
        return t->path;
}

static char *slurp(const char *path)
{
        char *buf = NULL;
        size_t len = 0;

        assert_int_equal(kb_read_file(path, 1 << 20, &buf, &len), 0);
        return buf;
}

static void spit(const char *path, const char *text)
{
        int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);

        assert_true(fd >= 0);
        assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
        close(fd);
}

/* Replaces the first occurrence of @p from in @p s (in place: same length or
 * shorter, or a fresh buffer). Returns a malloc()ed string. */
static char *replace(const char *s, const char *from, const char *to)
{
        const char *p = strstr(s, from);
        char *out;

        assert_non_null(p);
        out = malloc(strlen(s) - strlen(from) + strlen(to) + 1);
        assert_non_null(out);
        memcpy(out, s, (size_t)(p - s));
        strcpy(out + (p - s), to);
        strcat(out, p + strlen(from));
        return out;
}

/* The value of "name=" in a key file's text (static buffer). */
static const char *field(const char *text, const char *name)
{
        static char val[256];
        char pat[64];
        const char *p;
        size_t n;

        kb_snprintf(pat, sizeof(pat), "\n%s=", name);
        p = strstr(text, pat);
        assert_non_null(p);
        p += strlen(pat);
        n = strcspn(p, "\n");
        assert_true(n < sizeof(val));
        memcpy(val, p, n);
        val[n] = '\0';
        return val;
}

/* ---- key ids ---- */

static void test_key_id_known_answer(void **state)
{
        unsigned char pk[32];
        char id[KB_KEYID_BYTES];
        size_t i;

        (void)state;
        /* Expected values computed independently with Python:
         * hashlib.blake2b(bytes([t]) + pk, key=b"kyc-bridge key id v1",
         *                 digest_size=32).hexdigest()[:16] */
        for (i = 0; i < 32; i++)
                pk[i] = (unsigned char)i;
        kb_key_id_derive(KB_KEY_BOX, pk, id);
        assert_string_equal(id, "75e89a0aef2f9db1");
        kb_key_id_derive(KB_KEY_SIGN, pk, id);
        assert_string_equal(id, "e78bd37ce8afd1e0");
        memset(pk, 0, sizeof(pk));
        kb_key_id_derive(KB_KEY_BOX, pk, id);
        assert_string_equal(id, "2f8332fed0f60b72");
        kb_key_id_derive(KB_KEY_SIGN, pk, id);
        assert_string_equal(id, "8f0f51ca842bede7");
}

static void test_generate(void **state)
{
        kb_key_t *box = kb_key_generate(KB_KEY_BOX);
        kb_key_t *sign = kb_key_generate(KB_KEY_SIGN);
        kb_key_t *pub;
        char id[KB_KEYID_BYTES];
        unsigned char pk[32], sec[32];

        (void)state;
        assert_non_null(box);
        assert_non_null(sign);
        assert_null_errno(kb_key_generate((kb_key_type_t)3), EINVAL);
        assert_null_errno(
            kb_key_from_public((kb_key_type_t)0, kb_key_public(box)), EINVAL);
        assert_int_equal(kb_key_type(box), KB_KEY_BOX);
        assert_int_equal(kb_key_type(sign), KB_KEY_SIGN);
        assert_true(kb_key_has_secret(box));
        assert_true(kb_key_has_secret(sign));
        assert_int_equal(strlen(kb_key_id(box)), KB_KEYID_LEN);
        kb_key_id_derive(KB_KEY_BOX, kb_key_public(box), id);
        assert_string_equal(id, kb_key_id(box));
        kb_key_id_derive(KB_KEY_SIGN, kb_key_public(sign), id);
        assert_string_equal(id, kb_key_id(sign));

        /* the public half matches the secret one */
        assert_int_equal(kb_keyint_export_secret(box, sec), KB_OK);
        crypto_scalarmult_base(pk, sec);
        assert_memory_equal(pk, kb_key_public(box), 32);
        assert_int_equal(kb_keyint_export_secret(sign, sec), KB_OK);
        {
                unsigned char spk[32], ssk[64];
                crypto_sign_seed_keypair(spk, ssk, sec);
                assert_memory_equal(spk, kb_key_public(sign), 32);
                sodium_memzero(ssk, sizeof(ssk));
        }
        sodium_memzero(sec, sizeof(sec));

        /* a public-only copy has the same id and no secret */
        pub = kb_key_from_public(KB_KEY_BOX, kb_key_public(box));
        assert_non_null(pub);
        assert_false(kb_key_has_secret(pub));
        assert_string_equal(kb_key_id(pub), kb_key_id(box));
        assert_int_equal(kb_keyint_export_secret(pub, sec), KB_ERR_INVALID_ARG);
        kb_key_destroy(pub);

        /* same public bytes, other type: other id */
        pub = kb_key_from_public(KB_KEY_SIGN, kb_key_public(box));
        assert_string_not_equal(kb_key_id(pub), kb_key_id(box));
        kb_key_destroy(pub);

        /* two keys differ */
        pub = kb_key_generate(KB_KEY_BOX);
        assert_memory_not_equal(kb_key_public(pub), kb_key_public(box), 32);
        kb_key_destroy(pub);
        kb_key_destroy(box);
        kb_key_destroy(sign);
        kb_key_destroy(NULL);
}

static void test_secret_ops(void **state)
{
        kb_key_t *box = kb_key_generate(KB_KEY_BOX);
        kb_key_t *sign = kb_key_generate(KB_KEY_SIGN);
        const unsigned char msg[] = "hello";
        unsigned char c[crypto_box_SEALBYTES + sizeof(msg)], m[sizeof(msg)];
        unsigned char sig[64];

        (void)state;
        assert_int_equal(
            crypto_box_seal(c, msg, sizeof(msg), kb_key_public(box)), 0);
        assert_int_equal(kb_keyint_seal_open(box, m, c, sizeof(c)), KB_OK);
        assert_memory_equal(m, msg, sizeof(msg));
        c[5] ^= 1;
        assert_int_equal(kb_keyint_seal_open(box, m, c, sizeof(c)),
                         KB_ERR_AUTH);
        assert_int_equal(kb_keyint_seal_open(box, m, c, 10), KB_ERR_AUTH);
        assert_int_equal(kb_keyint_seal_open(sign, m, c, sizeof(c)),
                         KB_ERR_INVALID_ARG);

        assert_int_equal(kb_keyint_sign_detached(sign, sig, msg, sizeof(msg)),
                         KB_OK);
        assert_int_equal(crypto_sign_verify_detached(sig, msg, sizeof(msg),
                                                     kb_key_public(sign)),
                         0);
        assert_int_equal(kb_keyint_sign_detached(box, sig, msg, sizeof(msg)),
                         KB_ERR_INVALID_ARG);
        kb_key_destroy(box);
        kb_key_destroy(sign);
}

/* ---- secret key files ---- */

static void check_same_key(const kb_key_t *a, const kb_key_t *b)
{
        unsigned char sa[32], sb[32];

        assert_int_equal(kb_key_type(a), kb_key_type(b));
        assert_string_equal(kb_key_id(a), kb_key_id(b));
        assert_memory_equal(kb_key_public(a), kb_key_public(b), 32);
        assert_int_equal(kb_keyint_export_secret(a, sa), KB_OK);
        assert_int_equal(kb_keyint_export_secret(b, sb), KB_OK);
        assert_memory_equal(sa, sb, 32);
}

static void test_keyfile_plain(void **state)
{
        tmp_t *t = *state;
        char err[512], *text;
        struct stat st;
        int i;

        for (i = 0; i < 2; i++) {
                kb_key_type_t type = i ? KB_KEY_SIGN : KB_KEY_BOX;
                const char *name = i ? "k.sign.key" : "k.box.key";
                kb_key_t *key = kb_key_generate(type), *back;
                char path[256];

                kb_strlcpy(path, tpath(t, name), sizeof(path));
                assert_int_equal(
                    kb_key_save_secret(key, path, NULL, 0, err, sizeof(err)),
                    KB_OK);
                assert_int_equal(stat(path, &st), 0);
                assert_int_equal(st.st_mode & 0777, 0600);
                text = slurp(path);
                assert_non_null(strstr(text, "# kyc-bridge secret key -- "
                                             "keep private\n"));
                assert_non_null(
                    strstr(text, "\nformat=kyc-bridge-secret-key/1\n"));
                assert_non_null(
                    strstr(text, i ? "\ntype=ed25519\n" : "\ntype=x25519\n"));
                assert_string_equal(field(text, "key_id"), kb_key_id(key));
                assert_null(strstr(text, "kdf="));
                free(text);

                back = kb_key_load_secret(path, NULL, 0, err, sizeof(err));
                assert_non_null(back);
                check_same_key(key, back);
                kb_key_destroy(back);
                /* a passphrase given for a plain file is not needed */
                back = kb_key_load_secret(path, PASS, strlen(PASS), err,
                                          sizeof(err));
                assert_non_null(back);
                kb_key_destroy(back);

                /* never overwritten */
                text = slurp(path);
                assert_int_equal(
                    kb_key_save_secret(key, path, NULL, 0, err, sizeof(err)),
                    KB_ERR_EXISTS);
                assert_non_null(strstr(err, "already exists"));
                {
                        char *again = slurp(path);
                        assert_string_equal(again, text);
                        free(again);
                }
                free(text);
                kb_key_destroy(key);
        }
}

static void test_keyfile_umask(void **state)
{
        tmp_t *t = *state;
        kb_key_t *key = kb_key_generate(KB_KEY_BOX);
        char err[256];
        struct stat st;
        mode_t old = umask(0);

        /* a permissive umask must not widen the mode */
        assert_int_equal(kb_key_save_secret(key, tpath(t, "u.key"), NULL, 0,
                                            err, sizeof(err)),
                         KB_OK);
        umask(old);
        assert_int_equal(stat(t->path, &st), 0);
        assert_int_equal(st.st_mode & 0777, 0600);
        /* nor follow a symlink planted at the path */
        assert_int_equal(symlink(tpath(t, "target"), tpath(t, "link.key")), 0);
        assert_int_equal(
            kb_key_save_secret(key, t->path, NULL, 0, err, sizeof(err)),
            KB_ERR_EXISTS);
        assert_int_equal(access(tpath(t, "target"), F_OK), -1);
        /* a directory that does not exist is an I/O error */
        assert_int_equal(kb_key_save_secret(key, tpath(t, "nodir/x.key"), NULL,
                                            0, err, sizeof(err)),
                         KB_ERR_IO);
        kb_key_destroy(key);
}

static void test_keyfile_passphrase(void **state)
{
        tmp_t *t = *state;
        kb_key_t *key = kb_key_generate(KB_KEY_SIGN), *back;
        char err[512], path[256], *text, *bad;
        const char *plain_secret;
        unsigned char sec[32];
        char sec64[64];
        struct stat st;

        kb_strlcpy(path, tpath(t, "enc.sign.key"), sizeof(path));
        assert_int_equal(kb_key_save_secret(key, path, "", 0, err, sizeof(err)),
                         KB_ERR_INVALID_ARG);
        assert_int_equal(
            kb_key_save_secret(key, path, PASS, strlen(PASS), err, sizeof(err)),
            KB_OK);
        assert_int_equal(stat(path, &st), 0);
        assert_int_equal(st.st_mode & 0777, 0600);
        text = slurp(path);
        assert_string_equal(field(text, "kdf"), "argon2id13");
        assert_null(strstr(text, "\nsecret_key="));
        /* the secret does not appear in the file */
        assert_int_equal(kb_keyint_export_secret(key, sec), KB_OK);
        sodium_bin2base64(sec64, sizeof(sec64), sec, 32,
                          sodium_base64_VARIANT_URLSAFE_NO_PADDING);
        assert_null(strstr(text, sec64));
        plain_secret = sec64;

        back = kb_key_load_secret(path, PASS, strlen(PASS), err, sizeof(err));
        assert_non_null(back);
        check_same_key(key, back);
        kb_key_destroy(back);

        assert_null_errno(kb_key_load_secret(path, NULL, 0, err, sizeof(err)),
                          EINVAL);
        assert_non_null(strstr(err, "a passphrase is required"));
        assert_null_errno(
            kb_key_load_secret(path, "wrong", 5, err, sizeof(err)), EINVAL);
        assert_non_null(strstr(err, "wrong passphrase or corrupted key file"));
        assert_non_null(strstr(err, path));
        assert_null(strstr(err, plain_secret));

        /* one flipped character of the ciphertext */
        {
                char enc[128];
                kb_strlcpy(enc, field(text, "secret_key_encrypted"),
                           sizeof(enc));
                {
                        char tampered[128];
                        char line[300], newline[300];
                        kb_strlcpy(tampered, enc, sizeof(tampered));
                        tampered[10] = tampered[10] == 'A' ? 'B' : 'A';
                        kb_snprintf(line, sizeof(line),
                                    "secret_key_encrypted=%s", enc);
                        kb_snprintf(newline, sizeof(newline),
                                    "secret_key_encrypted=%s", tampered);
                        bad = replace(text, line, newline);
                }
        }
        spit(tpath(t, "tampered.key"), bad);
        free(bad);
        assert_null_errno(
            kb_key_load_secret(t->path, PASS, strlen(PASS), err, sizeof(err)),
            EINVAL);
        assert_non_null(strstr(err, "wrong passphrase or corrupted key file"));

        /* a hostile cost is refused before any work is done */
        bad = replace(text, "\nmemlimit=", "\nmemlimit=99");
        spit(tpath(t, "costly.key"), bad);
        free(bad);
        assert_null_errno(
            kb_key_load_secret(t->path, PASS, strlen(PASS), err, sizeof(err)),
            EINVAL);
        assert_non_null(strstr(err, "memlimit must be"));
        bad = replace(text, "\nkdf=argon2id13", "\nkdf=scrypt");
        spit(tpath(t, "kdf.key"), bad);
        free(bad);
        assert_null_errno(
            kb_key_load_secret(t->path, PASS, strlen(PASS), err, sizeof(err)),
            EINVAL);
        assert_non_null(strstr(err, "unsupported kdf"));

        /* a plain secret_key in an encrypted file */
        {
                char *more = malloc(strlen(text) + 80);
                sprintf(more, "%ssecret_key=%s\n", text, plain_secret);
                spit(tpath(t, "mixed.key"), more);
                free(more);
        }
        assert_null_errno(
            kb_key_load_secret(t->path, PASS, strlen(PASS), err, sizeof(err)),
            EINVAL);
        assert_non_null(strstr(err, "not allowed in an encrypted key file"));
        assert_null(strstr(err, plain_secret));

        sodium_memzero(sec, sizeof(sec));
        free(text);
        kb_key_destroy(key);
}

/*
 * Argon2 that cannot get its memory is out of memory (ENOMEM), not a bad
 * key file: a child whose address space is limited loads a file that asks
 * for the largest cost a file may ask for (2 GiB); the mapping fails at
 * once. (The allocation injection of test_daemons cannot reach libsodium's
 * own allocations.)
 */
static void test_keyfile_kdf_out_of_memory(void **state)
{
        tmp_t *t = *state;
        kb_key_t *key = kb_key_generate(KB_KEY_BOX);
        char err[512], line[64], *text, *bad;
        int status;
        pid_t pid;

        assert_int_equal(kb_key_save_secret(key, tpath(t, "enc.key"), PASS,
                                            strlen(PASS), err, sizeof(err)),
                         KB_OK);
        kb_key_destroy(key);
        text = slurp(t->path);
        kb_snprintf(line, sizeof(line), "\nmemlimit=%s\n",
                    field(text, "memlimit"));
        bad = replace(text, line, "\nmemlimit=2147483648\n");
        spit(tpath(t, "costly.key"), bad);
        free(bad);
        free(text);
        pid = fork();
        assert_true(pid >= 0);
        if (pid == 0) {
                /* what the process maps now, and 256 MiB more */
                unsigned long long pages = 0;
                struct rlimit rl;
                FILE *fp = fopen("/proc/self/statm", "r");
                kb_key_t *k;

                if (!fp || fscanf(fp, "%llu", &pages) != 1)
                        _exit(10);
                fclose(fp);
                rl.rlim_cur = rl.rlim_max =
                    (rlim_t)(pages * (unsigned long long)sysconf(_SC_PAGESIZE) +
                             (256ULL << 20));
                if (setrlimit(RLIMIT_AS, &rl) == -1)
                        _exit(11);
                errno = 0;
                k = kb_key_load_secret(t->path, PASS, strlen(PASS), err,
                                       sizeof(err));
                if (k)
                        _exit(12); /* the limit did not hold */
                if (errno != ENOMEM || !strstr(err, "out of memory"))
                        _exit(13);
                _exit(0);
        }
        assert_int_equal(waitpid(pid, &status, 0), pid);
        assert_true(WIFEXITED(status));
        assert_int_equal(WEXITSTATUS(status), 0);
}

/* Writes @p text to a file and expects loading it to fail with @p msg and
 * errno @p want (set over a stale ENOMEM). */
static void expect_load_errno(tmp_t *t, const char *text, const char *msg,
                              int want)
{
        char err[512];
        kb_key_t *key;
        int e;

        spit(tpath(t, "bad.key"), text);
        err[0] = '\0';
        errno = ENOMEM;
        key = kb_key_load_secret(t->path, NULL, 0, err, sizeof(err));
        e = errno;
        if (key || !strstr(err, msg))
                fail_msg("expected error containing '%s', got '%s'", msg,
                         key ? "(loaded)" : err);
        if (e != want)
                fail_msg("'%s': errno %d (%s), expected %d (%s)", err, e,
                         strerror(e), want, strerror(want));
        assert_true(strncmp(err, t->path, strlen(t->path)) == 0);
        unlink(t->path);
}

/* The same for a file that is not a valid key file: EINVAL. */
static void expect_load_error(tmp_t *t, const char *text, const char *msg)
{
        expect_load_errno(t, text, msg, EINVAL);
}

static void test_keyfile_tampered(void **state)
{
        tmp_t *t = *state;
        kb_key_t *key = kb_key_generate(KB_KEY_BOX), *other, *back;
        char err[512], path[256], *text, *bad, line[200], line2[200];
        char secret_value[100], *p;

        kb_strlcpy(path, tpath(t, "good.key"), sizeof(path));
        assert_int_equal(
            kb_key_save_secret(key, path, NULL, 0, err, sizeof(err)), KB_OK);
        text = slurp(path);
        kb_strlcpy(secret_value, field(text, "secret_key"),
                   sizeof(secret_value));

        /* CRLF line endings and extra comments / blank lines are fine */
        {
                kb_buf_t b = KB_BUF_INIT;
                for (p = text; *p; p++) {
                        if (*p == '\n')
                                kb_buf_puts(&b, "\r\n\r\n# note\n");
                        else
                                kb_buf_append(&b, p, 1);
                }
                spit(tpath(t, "crlf.key"), b.data);
                kb_buf_free(&b, 1);
                back = kb_key_load_secret(t->path, NULL, 0, err, sizeof(err));
                assert_non_null(back);
                check_same_key(key, back);
                kb_key_destroy(back);
        }

        /* the secret of another key with this public key */
        other = kb_key_generate(KB_KEY_BOX);
        {
                unsigned char sec[32];
                char sec64[64];
                kb_keyint_export_secret(other, sec);
                sodium_bin2base64(sec64, sizeof(sec64), sec, 32,
                                  sodium_base64_VARIANT_URLSAFE_NO_PADDING);
                bad = replace(text, secret_value, sec64);
                sodium_memzero(sec, sizeof(sec));
        }
        expect_load_error(t, bad, "public_key does not belong to the secret");
        free(bad);
        kb_key_destroy(other);

        /* key_id not matching public_key: "path:line: reason" */
        kb_snprintf(line, sizeof(line), "key_id=%s", kb_key_id(key));
        bad = replace(text, line, "key_id=0000000000000000");
        expect_load_error(t, bad, ":5: key_id does not match public_key");
        free(bad);
        bad = replace(text, line, "key_id=00000000000000AA");
        expect_load_error(t, bad, ":5: key_id must be 16 lowercase hex");
        free(bad);

        /* public_key altered */
        kb_snprintf(line, sizeof(line), "public_key=%s",
                    field(text, "public_key"));
        kb_strlcpy(line2, line, sizeof(line2));
        line2[15] = line2[15] == 'A' ? 'B' : 'A';
        bad = replace(text, line, line2);
        expect_load_error(t, bad, ":5: key_id does not match public_key");
        free(bad);
        bad = replace(text, line, "public_key=AAAA");
        expect_load_error(t, bad, ":6: public_key must be 32 bytes");
        free(bad);

        bad = replace(text, "format=kyc-bridge-secret-key/1",
                      "format=kyc-bridge-secret-key/2");
        expect_load_error(t, bad, ":3: unsupported format");
        free(bad);
        bad = replace(text, "type=x25519", "type=rsa");
        expect_load_error(t, bad, ":4: type must be x25519 or ed25519");
        free(bad);
        bad = replace(text, "type=x25519", "type=ed25519");
        expect_load_error(t, bad, ":5: key_id does not match public_key");
        free(bad);
        bad = replace(text, "type=x25519\n", "type=x25519\nlabel=x\n");
        expect_load_error(t, bad, ":5: unknown field 'label'");
        free(bad);
        bad = replace(text, "type=x25519\n", "type=x25519\ntype=x25519\n");
        expect_load_error(t, bad,
                          ":5: duplicate field 'type' (first on line 4)");
        free(bad);
        bad = replace(text, "type=x25519\n", "");
        expect_load_error(t, bad, ": missing field 'type'");
        free(bad);
        bad = replace(text, "format=kyc-bridge-secret-key/1\n", "");
        expect_load_error(t, bad, "no 'format' field");
        free(bad);
        bad = replace(text, "type=x25519\n", "type =x25519\n");
        expect_load_error(t, bad, ":4: unknown field");
        free(bad);
        bad = replace(text, "type=x25519\n", "type=\n");
        expect_load_error(t, bad, ":4: bad length for 'type'");
        free(bad);
        bad = replace(text, "type=x25519\n", "opslimit=2\n");
        expect_load_error(t, bad, "missing field 'type'");
        free(bad);
        {
                char *more = malloc(strlen(text) + 20);
                sprintf(more, "%snonce=AAAA\n", text);
                expect_load_error(t, more,
                                  ":8: field 'nonce' is only allowed "
                                  "in an encrypted key file");
                free(more);
        }
        /* a stray secret on a line of its own is not quoted back */
        kb_snprintf(line, sizeof(line), "secret_key=%s", secret_value);
        bad = replace(text, line, secret_value);
        expect_load_error(t, bad, ":7: expected key=value");
        free(bad);
        kb_snprintf(line2, sizeof(line2), "%s=x", secret_value);
        bad = replace(text, line, line2);
        spit(tpath(t, "leak.key"), bad);
        free(bad);
        assert_null_errno(
            kb_key_load_secret(t->path, NULL, 0, err, sizeof(err)), EINVAL);
        assert_null(strstr(err, secret_value));
        assert_non_null(strstr(err, ":7: unknown field"));

        expect_load_error(t, "", "no 'format' field");
        expect_load_error(t, "# only a comment\n", "no 'format' field");
        {
                char big[5000];
                memset(big, '#', sizeof(big) - 1);
                big[sizeof(big) - 1] = '\0';
                expect_load_errno(t, big, "too large for a key file", EFBIG);
        }
        {
                /* NUL byte */
                int fd = open(tpath(t, "nul.key"), O_WRONLY | O_CREAT, 0600);
                assert_int_equal(write(fd, "format=\0x\n", 10), 10);
                close(fd);
                assert_null_errno(
                    kb_key_load_secret(t->path, NULL, 0, err, sizeof(err)),
                    EINVAL);
                assert_non_null(strstr(err, "NUL byte"));
        }
        /* a file that cannot be read: the system's reason */
        assert_null_errno(kb_key_load_secret(tpath(t, "missing.key"), NULL, 0,
                                             err, sizeof(err)),
                          ENOENT);
        assert_non_null(strstr(err, "No such file"));
        assert_null_errno(kb_key_load_secret(t->dir, NULL, 0, err, sizeof(err)),
                          EINVAL);
        assert_non_null(strstr(err, "not a regular file"));
        assert_null_errno(kb_key_load_secret(NULL, NULL, 0, err, sizeof(err)),
                          EINVAL);
        free(text);
        kb_key_destroy(key);
}

static void test_passphrase_read(void **state)
{
        tmp_t *t = *state;
        char err[256], *pass = NULL;
        size_t len = 0;

        setenv("KB_TEST_PASS", "s3cret pass", 1);
        assert_int_equal(kb_keyint_passphrase_read("KB_TEST_PASS", NULL, &pass,
                                                   &len, err, sizeof(err)),
                         KB_OK);
        assert_int_equal(len, 11);
        assert_string_equal(pass, "s3cret pass");
        kb_keyint_passphrase_free(pass);
        setenv("KB_TEST_PASS", "", 1);
        assert_int_equal(kb_keyint_passphrase_read("KB_TEST_PASS", NULL, &pass,
                                                   &len, err, sizeof(err)),
                         KB_ERR_CONFIG);
        assert_null(pass);
        unsetenv("KB_TEST_PASS");
        assert_int_equal(kb_keyint_passphrase_read("KB_TEST_PASS", NULL, &pass,
                                                   &len, err, sizeof(err)),
                         KB_ERR_CONFIG);
        assert_non_null(strstr(err, "KB_TEST_PASS is not set"));

        spit(tpath(t, "p1"), "line one\r\n");
        assert_int_equal(kb_keyint_passphrase_read(NULL, t->path, &pass, &len,
                                                   err, sizeof(err)),
                         KB_OK);
        assert_string_equal(pass, "line one");
        kb_keyint_passphrase_free(pass);
        spit(tpath(t, "p2"), "two newlines\n\n");
        assert_int_equal(kb_keyint_passphrase_read(NULL, t->path, &pass, &len,
                                                   err, sizeof(err)),
                         KB_OK);
        assert_string_equal(pass, "two newlines\n");
        kb_keyint_passphrase_free(pass);
        spit(tpath(t, "p3"), "\n");
        assert_int_equal(kb_keyint_passphrase_read(NULL, t->path, &pass, &len,
                                                   err, sizeof(err)),
                         KB_ERR_CONFIG);
        assert_int_equal(kb_keyint_passphrase_read(NULL, tpath(t, "none"),
                                                   &pass, &len, err,
                                                   sizeof(err)),
                         KB_ERR_IO);
        assert_int_equal(kb_keyint_passphrase_read(NULL, NULL, &pass, &len, err,
                                                   sizeof(err)),
                         KB_ERR_INVALID_ARG);
}

/* ---- bundles ---- */

static void test_bundle_roundtrip(void **state)
{
        kb_key_t *b1 = kb_key_generate(KB_KEY_BOX);
        kb_key_t *b2 = kb_key_generate(KB_KEY_BOX);
        kb_key_t *s1 = kb_key_generate(KB_KEY_SIGN);
        kb_bundle_t *bundle = kb_bundle_new("Acme Bank \xe2\x80\x94 prod");
        kb_bundle_t *back;
        char err[256], *json, *json2;

        (void)state;
        assert_non_null(bundle);
        assert_int_equal(kb_bundle_add(bundle, b1), KB_OK);
        assert_int_equal(kb_bundle_add(bundle, s1), KB_OK);
        assert_int_equal(kb_bundle_add(bundle, b2), KB_OK);
        assert_int_equal(kb_bundle_add(bundle, b1), KB_ERR_EXISTS);
        assert_int_equal(kb_bundle_count(bundle, KB_KEY_BOX), 2);
        assert_int_equal(kb_bundle_count(bundle, KB_KEY_SIGN), 1);
        assert_string_equal(kb_key_id(kb_bundle_get(bundle, KB_KEY_BOX, 0)),
                            kb_key_id(b1));
        assert_string_equal(kb_key_id(kb_bundle_get(bundle, KB_KEY_BOX, 1)),
                            kb_key_id(b2));
        assert_null(kb_bundle_get(bundle, KB_KEY_BOX, 2));
        assert_false(kb_key_has_secret(kb_bundle_get(bundle, KB_KEY_BOX, 0)));

        json = kb_bundle_to_json(bundle);
        assert_non_null(json);
        assert_non_null(
            strstr(json, "\"format\": \"kyc-bridge-public-keys/1\""));
        assert_non_null(strstr(json, kb_key_id(s1)));
        assert_int_equal(json[strlen(json) - 1], '\n');
        back = kb_bundle_parse(json, strlen(json), err, sizeof(err));
        assert_non_null(back);
        assert_string_equal(kb_bundle_label(back), kb_bundle_label(bundle));
        assert_int_equal(kb_bundle_count(back, KB_KEY_BOX), 2);
        assert_string_equal(kb_key_id(kb_bundle_get(back, KB_KEY_BOX, 1)),
                            kb_key_id(b2));
        assert_memory_equal(kb_key_public(kb_bundle_get(back, KB_KEY_SIGN, 0)),
                            kb_key_public(s1), 32);
        json2 = kb_bundle_to_json(back);
        assert_string_equal(json, json2);
        free(json2);
        free(json);
        kb_bundle_destroy(back);
        kb_bundle_destroy(bundle);

        /* no label: no member */
        bundle = kb_bundle_new(NULL);
        kb_bundle_add(bundle, s1);
        json = kb_bundle_to_json(bundle);
        assert_null(strstr(json, "label"));
        back = kb_bundle_parse(json, strlen(json), err, sizeof(err));
        assert_non_null(back);
        assert_null(kb_bundle_label(back));
        kb_bundle_destroy(back);
        free(json);
        kb_bundle_destroy(bundle);

        assert_null_errno(kb_bundle_new(""), EINVAL);
        assert_null_errno(kb_bundle_new("tab\there"), EINVAL);
        assert_null_errno(kb_bundle_new("bad utf8 \xc3("), EINVAL);
        kb_key_destroy(b1);
        kb_key_destroy(b2);
        kb_key_destroy(s1);
}

static void expect_bundle_error(const char *json, const char *msg)
{
        char err[256];
        kb_bundle_t *b;
        int e;

        err[0] = '\0';
        errno = ENOMEM; /* stale: the failure must set its own */
        b = kb_bundle_parse(json, strlen(json), err, sizeof(err));
        e = errno;
        if (b || !strstr(err, msg))
                fail_msg("bundle %s: expected '%s', got '%s'", json, msg,
                         b ? "(parsed)" : err);
        if (e != EINVAL)
                fail_msg("bundle %s: '%s': errno %d (%s), expected EINVAL",
                         json, err, e, strerror(e));
}

static void test_bundle_errors(void **state)
{
        kb_key_t *k = kb_key_generate(KB_KEY_SIGN);
        char pk64[64], good[512], bad[700];
        const char *id = kb_key_id(k);

        (void)state;
        sodium_bin2base64(pk64, sizeof(pk64), kb_key_public(k), 32,
                          sodium_base64_VARIANT_URLSAFE_NO_PADDING);
        kb_snprintf(good, sizeof(good),
                    "{\"format\":\"kyc-bridge-public-keys/1\",\"keys\":[{"
                    "\"type\":\"ed25519\",\"key_id\":\"%s\",\"public_key\":"
                    "\"%s\"}]}",
                    id, pk64);
        {
                char err[256];
                kb_bundle_t *b =
                    kb_bundle_parse(good, strlen(good), err, sizeof(err));
                assert_non_null(b);
                kb_bundle_destroy(b);
        }
        expect_bundle_error("", "empty input");
        expect_bundle_error("[]", "not a JSON object");
        expect_bundle_error("{\"format\":\"kyc-bridge-public-keys/2\","
                            "\"keys\":[]}",
                            "format must be");
        expect_bundle_error("{\"format\":\"kyc-bridge-public-keys/1\"}",
                            "keys must be an array");
        expect_bundle_error("{\"format\":\"kyc-bridge-public-keys/1\","
                            "\"keys\":[]}",
                            "keys must hold 1..64 entries");
        kb_snprintf(bad, sizeof(bad),
                    "{\"format\":\"kyc-bridge-public-keys/1\",\"x\":1,"
                    "\"keys\":[{\"type\":\"ed25519\",\"key_id\":\"%s\","
                    "\"public_key\":\"%s\"}]}",
                    id, pk64);
        expect_bundle_error(bad, "unknown member");
        kb_snprintf(bad, sizeof(bad),
                    "{\"format\":\"kyc-bridge-public-keys/1\",\"keys\":[{"
                    "\"type\":\"x25519\",\"key_id\":\"%s\",\"public_key\":"
                    "\"%s\"}]}",
                    id, pk64);
        expect_bundle_error(bad, "keys[0]: key_id does not match public_key");
        kb_snprintf(bad, sizeof(bad),
                    "{\"format\":\"kyc-bridge-public-keys/1\",\"keys\":[{"
                    "\"type\":\"ed25519\",\"key_id\":\"%s\",\"public_key\":"
                    "\"%s=\"}]}",
                    id, pk64);
        expect_bundle_error(bad, "keys[0]: public_key must be 32 bytes");
        kb_snprintf(bad, sizeof(bad),
                    "{\"format\":\"kyc-bridge-public-keys/1\",\"keys\":[{"
                    "\"type\":\"ed25519\",\"key_id\":\"%s\",\"public_key\":"
                    "\"%s\",\"extra\":1}]}",
                    id, pk64);
        expect_bundle_error(bad, "keys[0]: expected exactly");
        kb_snprintf(bad, sizeof(bad),
                    "{\"format\":\"kyc-bridge-public-keys/1\",\"keys\":[{"
                    "\"type\":\"ed25519\",\"key_id\":\"%s\\u0000zz\","
                    "\"public_key\":\"%s\"}]}",
                    id, pk64);
        expect_bundle_error(bad, "keys[0]: "); /* NUL inside key_id */
        kb_snprintf(bad, sizeof(bad),
                    "{\"format\":\"kyc-bridge-public-keys/1\",\"keys\":[{"
                    "\"type\":\"rsa\",\"key_id\":\"%s\",\"public_key\":"
                    "\"%s\"}]}",
                    id, pk64);
        expect_bundle_error(bad, "keys[0]: type must be");
        kb_snprintf(bad, sizeof(bad),
                    "{\"format\":\"kyc-bridge-public-keys/1\",\"keys\":["
                    "{\"type\":\"ed25519\",\"key_id\":\"%s\",\"public_key\":"
                    "\"%s\"},{\"type\":\"ed25519\",\"key_id\":\"%s\","
                    "\"public_key\":\"%s\"}]}",
                    id, pk64, id, pk64);
        expect_bundle_error(bad, "keys[1]: duplicate key_id");
        kb_snprintf(bad, sizeof(bad),
                    "{\"format\":\"kyc-bridge-public-keys/1\",\"label\":\"\","
                    "\"keys\":[{\"type\":\"ed25519\",\"key_id\":\"%s\","
                    "\"public_key\":\"%s\"}]}",
                    id, pk64);
        expect_bundle_error(bad, "label must be");
        kb_snprintf(bad, sizeof(bad),
                    "{\"format\":\"kyc-bridge-public-keys/1\",\"format\":"
                    "\"kyc-bridge-public-keys/1\",\"keys\":[{\"type\":"
                    "\"ed25519\",\"key_id\":\"%s\",\"public_key\":\"%s\"}]}",
                    id, pk64);
        expect_bundle_error(bad, "duplicate key");
        kb_key_destroy(k);
}

static void test_bundle_load(void **state)
{
        tmp_t *t = *state;
        kb_bundle_t *b = kb_bundle_new("x"), *back;
        kb_key_t *k = kb_key_generate(KB_KEY_BOX);
        char err[512], *json;

        kb_bundle_add(b, k);
        json = kb_bundle_to_json(b);
        spit(tpath(t, "b.pub.json"), json);
        back = kb_bundle_load(t->path, err, sizeof(err));
        assert_non_null(back);
        assert_string_equal(kb_key_id(kb_bundle_get(back, KB_KEY_BOX, 0)),
                            kb_key_id(k));
        kb_bundle_destroy(back);
        spit(tpath(t, "bad.pub.json"), "{\"format\":1}");
        assert_null_errno(kb_bundle_load(t->path, err, sizeof(err)), EINVAL);
        assert_true(strncmp(err, t->path, strlen(t->path)) == 0);
        assert_non_null(strstr(err, ": format must be"));
        spit(tpath(t, "bad.pub.json"), "{\"format\":");
        assert_null_errno(kb_bundle_load(t->path, err, sizeof(err)), EINVAL);
        /* a file that cannot be read: the system's reason */
        assert_null_errno(
            kb_bundle_load(tpath(t, "none.json"), err, sizeof(err)), ENOENT);
        assert_non_null(strstr(err, "No such file"));
        assert_null_errno(kb_bundle_load(t->dir, err, sizeof(err)), EIO);
        assert_null_errno(kb_bundle_load(NULL, err, sizeof(err)), EINVAL);
        {
                char *big = malloc(70000);
                assert_non_null(big);
                memset(big, ' ', 69999);
                big[69999] = '\0';
                spit(tpath(t, "big.pub.json"), big);
                free(big);
                assert_null_errno(kb_bundle_load(t->path, err, sizeof(err)),
                                  EFBIG);
                assert_non_null(strstr(err, "file too large"));
        }
        free(json);
        kb_key_destroy(k);
        kb_bundle_destroy(b);
}

/* ---- keyrings ---- */

static void test_keyring(void **state)
{
        kb_keyring_t *ring = kb_keyring_new();
        kb_key_t *box = kb_key_generate(KB_KEY_BOX);
        kb_key_t *sign = kb_key_generate(KB_KEY_SIGN);
        kb_key_t *dup;
        kb_bundle_t *bundle = kb_bundle_new(NULL);
        kb_key_t *s2 = kb_key_generate(KB_KEY_SIGN);
        kb_key_t *s3 = kb_key_generate(KB_KEY_SIGN);
        const char *owner = "x";
        char boxid[KB_KEYID_BYTES], signid[KB_KEYID_BYTES];

        (void)state;
        kb_strlcpy(boxid, kb_key_id(box), sizeof(boxid));
        kb_strlcpy(signid, kb_key_id(sign), sizeof(signid));
        assert_int_equal(kb_keyring_count(ring), 0);
        assert_int_equal(kb_keyring_add(ring, box, NULL), KB_OK);
        assert_int_equal(kb_keyring_add(ring, sign, "issuer-a"), KB_OK);
        assert_int_equal(kb_keyring_count(ring), 2);

        assert_ptr_equal(kb_keyring_find(ring, KB_KEY_BOX, boxid, &owner), box);
        assert_null(owner);
        assert_ptr_equal(kb_keyring_find(ring, KB_KEY_SIGN, signid, &owner),
                         sign);
        assert_string_equal(owner, "issuer-a");
        /* type and id must both match */
        assert_null(kb_keyring_find(ring, KB_KEY_SIGN, boxid, &owner));
        assert_null(owner);
        assert_null(
            kb_keyring_find(ring, KB_KEY_BOX, "0000000000000000", NULL));
        assert_null(kb_keyring_find(ring, KB_KEY_BOX, NULL, NULL));

        /* the same key id again: refused, ownership stays with the caller */
        dup = kb_key_from_public(KB_KEY_SIGN, kb_key_public(sign));
        assert_int_equal(kb_keyring_add(ring, dup, "issuer-b"), KB_ERR_EXISTS);
        assert_int_equal(kb_keyring_count(ring), 2);
        kb_keyring_find(ring, KB_KEY_SIGN, signid, &owner);
        assert_string_equal(owner, "issuer-a");

        /* bundles: all or nothing */
        kb_bundle_add(bundle, s2);
        kb_bundle_add(bundle, dup);
        kb_bundle_add(bundle, box); /* a box key: not added as KB_KEY_SIGN */
        assert_int_equal(
            kb_keyring_add_bundle(ring, bundle, KB_KEY_SIGN, "issuer-b"),
            KB_ERR_EXISTS);
        assert_int_equal(kb_keyring_count(ring), 2);
        assert_null(kb_keyring_find(ring, KB_KEY_SIGN, kb_key_id(s2), NULL));
        kb_bundle_destroy(bundle);
        bundle = kb_bundle_new(NULL);
        kb_bundle_add(bundle, s2);
        kb_bundle_add(bundle, s3);
        assert_int_equal(
            kb_keyring_add_bundle(ring, bundle, KB_KEY_SIGN, "issuer-b"),
            KB_OK);
        assert_int_equal(kb_keyring_count(ring), 4);
        assert_non_null(
            kb_keyring_find(ring, KB_KEY_SIGN, kb_key_id(s3), &owner));
        assert_string_equal(owner, "issuer-b");
        /* copies: the bundle can go */
        kb_bundle_destroy(bundle);
        assert_non_null(
            kb_keyring_find(ring, KB_KEY_SIGN, kb_key_id(s2), &owner));
        assert_int_equal(kb_keyring_add(NULL, dup, NULL), KB_ERR_INVALID_ARG);
        assert_int_equal(kb_keyring_add(ring, NULL, NULL), KB_ERR_INVALID_ARG);

        kb_key_destroy(dup);
        kb_key_destroy(s2);
        kb_key_destroy(s3);
        kb_keyring_destroy(ring); /* frees box and sign */
        kb_keyring_destroy(NULL);
}

/* ---- the util helpers these modules added ---- */

static void test_utf8_is_text(void **state)
{
        (void)state;
        assert_true(kb_utf8_is_text("", 0));
        assert_true(kb_utf8_is_text("abc ~", 5));
        assert_true(kb_utf8_is_text("M\xc3\xbcller", 7));
        assert_true(kb_utf8_is_text("\xe2\x82\xac", 3));     /* U+20AC */
        assert_true(kb_utf8_is_text("\xf0\x9f\x98\x80", 4)); /* U+1F600 */
        assert_true(kb_utf8_is_text("\xf4\x8f\xbf\xbf", 4)); /* U+10FFFF */
        assert_false(kb_utf8_is_text("a\nb", 3));
        assert_false(kb_utf8_is_text("a\x7f", 2));
        assert_false(kb_utf8_is_text("a\0b", 3));
        assert_false(kb_utf8_is_text("\xc0\xaf", 2));         /* overlong */
        assert_false(kb_utf8_is_text("\xe0\x80\xaf", 3));     /* overlong */
        assert_false(kb_utf8_is_text("\xed\xa0\x80", 3));     /* surrogate */
        assert_false(kb_utf8_is_text("\xf4\x90\x80\x80", 4)); /* > 10FFFF */
        assert_false(kb_utf8_is_text("\xc3", 1));             /* truncated */
        assert_false(kb_utf8_is_text("\xe2\x82", 2));
        assert_false(kb_utf8_is_text("\x80", 1));
        assert_false(kb_utf8_is_text("\xc3\x28", 2));
        assert_false(kb_utf8_is_text("\xff", 1));
}

static void test_write_file_excl(void **state)
{
        tmp_t *t = *state;
        struct stat st;
        char *s;

        assert_int_equal(kb_write_file_excl(tpath(t, "f"), "abc", 3, 0640), 0);
        assert_int_equal(stat(t->path, &st), 0);
        assert_int_equal(st.st_mode & 0777, 0640);
        assert_int_equal(kb_write_file_excl(t->path, "xyz", 3, 0640), -1);
        assert_int_equal(errno, EEXIST);
        s = slurp(t->path);
        assert_string_equal(s, "abc");
        free(s);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_key_id_known_answer),
                cmocka_unit_test(test_generate),
                cmocka_unit_test(test_secret_ops),
                cmocka_unit_test_setup_teardown(test_keyfile_plain, setup_tmp,
                                                teardown_tmp),
                cmocka_unit_test_setup_teardown(test_keyfile_umask, setup_tmp,
                                                teardown_tmp),
                cmocka_unit_test_setup_teardown(test_keyfile_passphrase,
                                                setup_tmp, teardown_tmp),
                cmocka_unit_test_setup_teardown(test_keyfile_tampered,
                                                setup_tmp, teardown_tmp),
                cmocka_unit_test_setup_teardown(test_keyfile_kdf_out_of_memory,
                                                setup_tmp, teardown_tmp),
                cmocka_unit_test_setup_teardown(test_passphrase_read, setup_tmp,
                                                teardown_tmp),
                cmocka_unit_test(test_bundle_roundtrip),
                cmocka_unit_test(test_bundle_errors),
                cmocka_unit_test_setup_teardown(test_bundle_load, setup_tmp,
                                                teardown_tmp),
                cmocka_unit_test(test_keyring),
                cmocka_unit_test(test_utf8_is_text),
                cmocka_unit_test_setup_teardown(test_write_file_excl, setup_tmp,
                                                teardown_tmp),
        };

        if (kb_init() != KB_OK)
                return 1;
        return cmocka_run_group_tests(tests, NULL, NULL);
}
