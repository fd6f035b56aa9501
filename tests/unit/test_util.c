/* test_util.c -- unit tests for util.c: buffers, numbers, files, UUIDs, digests
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "kyc_bridge.h"
#include "utf8.h"
#include "util.h"

/* A fresh private directory per test; removed (with its files) afterwards. */
typedef struct {
        char dir[64];
} tmpdir_t;

static int setup_tmpdir(void **state)
{
        tmpdir_t *t = calloc(1, sizeof(*t));

        if (!t)
                return -1;
        kb_strlcpy(t->dir, "/tmp/kb-test-util-XXXXXX", sizeof(t->dir));
        if (!mkdtemp(t->dir)) {
                free(t);
                return -1;
        }
        *state = t;
        return 0;
}

static int teardown_tmpdir(void **state)
{
        tmpdir_t *t = *state;
        DIR *d = opendir(t->dir);
        struct dirent *de;
        char p[PATH_MAX];

        while (d && (de = readdir(d)) != NULL) {
                if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
                        continue;
                kb_snprintf(p, sizeof(p), "%s/%s", t->dir, de->d_name);
                if (unlink(p) == -1)
                        (void)rmdir(p);
        }
        if (d)
                closedir(d);
        (void)rmdir(t->dir);
        free(t);
        return 0;
}

/* Number of directory entries (excluding . and ..). */
static int count_entries(const char *dir)
{
        DIR *d = opendir(dir);
        struct dirent *de;
        int n = 0;

        assert_non_null(d);
        while ((de = readdir(d)) != NULL)
                if (strcmp(de->d_name, ".") && strcmp(de->d_name, ".."))
                        n++;
        closedir(d);
        return n;
}

static void write_raw(const char *path, const void *data, size_t len,
                      mode_t mode)
{
        int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, mode);

        assert_true(fd >= 0);
        assert_int_equal(write(fd, data, len), (ssize_t)len);
        assert_int_equal(close(fd), 0);
}

/* ------------------------------------------------------------------ buffer */

static void test_buf_growth(void **state)
{
        kb_buf_t b = KB_BUF_INIT;
        size_t i, prev_cap = 0;
        int grew = 0;

        (void)state;
        for (i = 0; i < 10000; i++) {
                char c = (char)('a' + (i % 26));
                assert_int_equal(kb_buf_append(&b, &c, 1), 0);
                assert_int_equal(b.len, i + 1);
                assert_true(b.cap >= b.len + 1);
                assert_int_equal(b.data[b.len], '\0');
                if (b.cap != prev_cap) {
                        /* growth is geometric, not one byte at a time */
                        if (prev_cap)
                                assert_true(b.cap >= 2 * prev_cap);
                        prev_cap = b.cap;
                        grew++;
                }
        }
        assert_true(grew < 20);
        for (i = 0; i < 10000; i++)
                assert_int_equal(b.data[i], (char)('a' + (i % 26)));
        assert_int_equal(strlen(b.data), 10000);
        kb_buf_free(&b, 1);
        assert_null(b.data);
        assert_int_equal(b.len, 0);
        assert_int_equal(b.cap, 0);
}

static void test_buf_append_binary_and_empty(void **state)
{
        kb_buf_t b = KB_BUF_INIT;
        static const char bin[] = { 'x', '\0', 'y' };

        (void)state;
        /* appending nothing still yields a valid, NUL-terminated buffer */
        assert_int_equal(kb_buf_append(&b, NULL, 0), 0);
        assert_non_null(b.data);
        assert_int_equal(b.len, 0);
        assert_string_equal(b.data, "");
        assert_int_equal(kb_buf_append(&b, bin, sizeof(bin)), 0);
        assert_int_equal(b.len, 3);
        assert_memory_equal(b.data, bin, 3);
        assert_int_equal(b.data[3], '\0');
        assert_int_equal(kb_buf_puts(&b, "zz"), 0);
        assert_int_equal(b.len, 5);
        assert_memory_equal(b.data + 3, "zz", 3);
        kb_buf_free(&b, 0);
}

static void test_buf_reserve_overflow(void **state)
{
        kb_buf_t b = KB_BUF_INIT;

        (void)state;
        assert_int_equal(kb_buf_puts(&b, "abc"), 0);
        assert_int_equal(kb_buf_reserve(&b, SIZE_MAX), -1);
        assert_int_equal(kb_buf_reserve(&b, SIZE_MAX - 3), -1);
        assert_int_equal(kb_buf_append(&b, "x", SIZE_MAX - 2), -1);
        /* the buffer is untouched by the failed calls */
        assert_int_equal(b.len, 3);
        assert_string_equal(b.data, "abc");
        assert_int_equal(kb_buf_reserve(&b, 1000), 0);
        assert_true(b.cap >= 1004);
        assert_string_equal(b.data, "abc");
        kb_buf_free(&b, 1);
}

static void test_buf_printf(void **state)
{
        kb_buf_t b = KB_BUF_INIT;
        char big[5001];
        const char *empty = "";

        (void)state;
        assert_int_equal(kb_buf_printf(&b, "%s", empty), 0);
        assert_non_null(b.data);
        assert_string_equal(b.data, "");
        assert_int_equal(
            kb_buf_printf(&b, "%d-%s-%lld", 42, "x", (long long)INT64_MIN), 0);
        assert_string_equal(b.data, "42-x--9223372036854775808");
        assert_int_equal(b.len, strlen(b.data));

        /* a formatted piece larger than the current capacity */
        memset(big, 'q', sizeof(big) - 1);
        big[sizeof(big) - 1] = '\0';
        assert_int_equal(kb_buf_printf(&b, "[%s]", big), 0);
        assert_int_equal(b.len, 25 + 5002);
        assert_int_equal(b.data[25], '[');
        assert_int_equal(b.data[25 + 5001], ']');
        assert_int_equal(b.data[b.len], '\0');
        assert_memory_equal(b.data, "42-x--9223372036854775808[qqq", 29);
        kb_buf_free(&b, 0);
}

static void test_buf_reset_keeps_memory(void **state)
{
        kb_buf_t b = KB_BUF_INIT;
        char *mem;
        size_t cap;

        (void)state;
        kb_buf_reset(&b); /* on an empty buffer: no crash */
        assert_null(b.data);
        assert_int_equal(kb_buf_puts(&b, "hello world"), 0);
        mem = b.data;
        cap = b.cap;
        kb_buf_reset(&b);
        assert_int_equal(b.len, 0);
        assert_ptr_equal(b.data, mem);
        assert_int_equal(b.cap, cap);
        assert_string_equal(b.data, "");
        assert_int_equal(kb_buf_puts(&b, "x"), 0);
        assert_string_equal(b.data, "x");
        kb_buf_free(&b, 1);
}

static void test_buf_steal(void **state)
{
        kb_buf_t b = KB_BUF_INIT;
        size_t len = 99;
        char *p;

        (void)state;
        assert_int_equal(kb_buf_printf(&b, "abc%d", 123), 0);
        p = kb_buf_steal(&b, &len);
        assert_non_null(p);
        assert_string_equal(p, "abc123");
        assert_int_equal(len, 6);
        assert_null(b.data);
        assert_int_equal(b.len, 0);
        assert_int_equal(b.cap, 0);
        free(p);

        /* the buffer is reusable after a steal */
        assert_int_equal(kb_buf_puts(&b, "again"), 0);
        assert_string_equal(b.data, "again");
        kb_buf_free(&b, 0);

        /* stealing an empty buffer gives an empty, freeable string */
        len = 99;
        p = kb_buf_steal(&b, &len);
        assert_non_null(p);
        assert_string_equal(p, "");
        assert_int_equal(len, 0);
        free(p);
        p = kb_buf_steal(&b, NULL);
        assert_non_null(p);
        free(p);
}

/* ------------------------------------------------------------- parse_i64 */

static void test_parse_i64_valid(void **state)
{
        static const struct {
                const char *s;
                int64_t want;
        } ok[] = {
                { "0", 0 },
                { "-0", 0 },
                { "7", 7 },
                { "-7", -7 },
                { "000123", 123 },
                { "9223372036854775807", INT64_MAX },
                { "-9223372036854775808", INT64_MIN },
        };
        size_t i;

        (void)state;
        for (i = 0; i < KB_ARRAY_SIZE(ok); i++) {
                int64_t v = 12345;
                assert_int_equal(
                    kb_parse_i64(ok[i].s, INT64_MIN, INT64_MAX, &v), 0);
                assert_true(v == ok[i].want);
        }
}

static void test_parse_i64_invalid(void **state)
{
        static const char *const bad[] = {
                "",
                "+1",
                "+0",
                " 1",
                "\t1",
                "\n1",
                "1 ",
                "1\n",
                "1a",
                "a1",
                "-",
                "--1",
                "-+1",
                "- 1",
                "0x10",
                "1.0",
                "1e3",
                "1,000",
                "9223372036854775808",
                "-9223372036854775809",
                "99999999999999999999999999",
                "-99999999999999999999999999",
        };
        size_t i;

        (void)state;
        for (i = 0; i < KB_ARRAY_SIZE(bad); i++) {
                int64_t v = 4242;
                if (kb_parse_i64(bad[i], INT64_MIN, INT64_MAX, &v) != -1)
                        fail_msg("kb_parse_i64 accepted \"%s\"", bad[i]);
                /* the output is untouched on failure */
                assert_true(v == 4242);
        }
        {
                int64_t v = 1;
                assert_int_equal(kb_parse_i64(NULL, 0, 10, &v), -1);
                assert_true(v == 1);
        }
}

static void test_parse_i64_bounds(void **state)
{
        int64_t v = 0;

        (void)state;
        assert_int_equal(kb_parse_i64("10", 0, 10, &v), 0);
        assert_true(v == 10);
        assert_int_equal(kb_parse_i64("0", 0, 10, &v), 0);
        assert_true(v == 0);
        v = 77;
        assert_int_equal(kb_parse_i64("11", 0, 10, &v), -1);
        assert_int_equal(kb_parse_i64("-1", 0, 10, &v), -1);
        assert_true(v == 77);
        assert_int_equal(kb_parse_i64("-5", -5, -5, &v), 0);
        assert_true(v == -5);
        assert_int_equal(kb_parse_i64("-4", -5, -5, &v), -1);
        assert_int_equal(kb_parse_i64("100", 100, 600000, &v), 0);
        assert_int_equal(kb_parse_i64("99", 100, 600000, &v), -1);
        assert_int_equal(kb_parse_i64("600001", 100, 600000, &v), -1);
}

/* ---------------------------------------------------------------- files */

static void test_read_file_sizes(void **state)
{
        tmpdir_t *t = *state;
        char path[PATH_MAX], *out = NULL;
        unsigned char data[10000];
        size_t i, len = 0;

        for (i = 0; i < sizeof(data); i++)
                data[i] = (unsigned char)(i * 7 + (i >> 8));
        data[17] = '\0'; /* binary content, NUL bytes included */
        kb_snprintf(path, sizeof(path), "%s/f", t->dir);
        write_raw(path, data, sizeof(data), 0600);

        /* exactly at the limit: accepted, NUL-terminated, byte exact */
        assert_int_equal(kb_read_file(path, sizeof(data), &out, &len), 0);
        assert_int_equal(len, sizeof(data));
        assert_memory_equal(out, data, sizeof(data));
        assert_int_equal(out[len], '\0');
        free(out);

        /* one byte over the limit (and far over it): EFBIG, nothing out */
        out = (char *)0x1;
        errno = 0;
        assert_int_equal(kb_read_file(path, sizeof(data) - 1, &out, &len), -1);
        assert_int_equal(errno, EFBIG);
        assert_ptr_equal(out, (char *)0x1);
        errno = 0;
        assert_int_equal(kb_read_file(path, 10, &out, &len), -1);
        assert_int_equal(errno, EFBIG);
        errno = 0;
        assert_int_equal(kb_read_file(path, 0, &out, &len), -1);
        assert_int_equal(errno, EFBIG);

        /* an empty file reads as "" */
        kb_snprintf(path, sizeof(path), "%s/empty", t->dir);
        write_raw(path, "", 0, 0600);
        out = NULL;
        len = 99;
        assert_int_equal(kb_read_file(path, 0, &out, &len), 0);
        assert_non_null(out);
        assert_int_equal(len, 0);
        assert_string_equal(out, "");
        free(out);

        /* missing file: errno from open */
        kb_snprintf(path, sizeof(path), "%s/missing", t->dir);
        errno = 0;
        assert_int_equal(kb_read_file(path, 100, &out, &len), -1);
        assert_int_equal(errno, ENOENT);
}

static void test_write_file_atomic_content_mode(void **state)
{
        tmpdir_t *t = *state;
        char path[PATH_MAX], *out = NULL;
        struct stat st;
        size_t len;
        mode_t old = umask(022);

        kb_snprintf(path, sizeof(path), "%s/out.json", t->dir);
        assert_int_equal(kb_write_file_atomic(path, "{\"a\":1}\n", 8, 0600), 0);
        assert_int_equal(stat(path, &st), 0);
        assert_int_equal(st.st_mode & 07777, 0600);
        assert_int_equal(kb_read_file(path, 100, &out, &len), 0);
        assert_int_equal(len, 8);
        assert_string_equal(out, "{\"a\":1}\n");
        free(out);
        assert_int_equal(count_entries(t->dir), 1);

        /* replacing: new (shorter) content and the new mode */
        assert_int_equal(kb_write_file_atomic(path, "xy", 2, 0644), 0);
        assert_int_equal(stat(path, &st), 0);
        assert_int_equal(st.st_mode & 07777, 0644);
        assert_int_equal(kb_read_file(path, 100, &out, &len), 0);
        assert_int_equal(len, 2);
        assert_string_equal(out, "xy");
        free(out);

        /* empty content */
        assert_int_equal(kb_write_file_atomic(path, "", 0, 0600), 0);
        assert_int_equal(stat(path, &st), 0);
        assert_int_equal(st.st_size, 0);
        /* no temporary file is left behind */
        assert_int_equal(count_entries(t->dir), 1);
        umask(old);
}

/* The mode is applied exactly, even when a stale temporary file (same pid,
 * e.g. after a crash) is lying around with a wider mode. */
static void test_write_file_atomic_stale_temp(void **state)
{
        tmpdir_t *t = *state;
        char path[PATH_MAX], tmp[PATH_MAX + 32], *out = NULL;
        struct stat st;
        size_t len;
        mode_t old = umask(0);

        kb_snprintf(path, sizeof(path), "%s/secret.key", t->dir);
        kb_snprintf(tmp, sizeof(tmp), "%s.tmp.%ld", path, (long)getpid());
        write_raw(tmp, "stale stale stale", 17, 0666);
        assert_int_equal(chmod(tmp, 0666), 0);
        assert_int_equal(kb_write_file_atomic(path, "k", 1, 0600), 0);
        umask(old);
        assert_int_equal(stat(path, &st), 0);
        assert_int_equal(st.st_mode & 07777, 0600);
        assert_int_equal(kb_read_file(path, 100, &out, &len), 0);
        assert_string_equal(out, "k");
        free(out);
}

/* A symlink where a temporary file could go must never be followed. */
static void test_write_file_atomic_no_symlink_follow(void **state)
{
        tmpdir_t *t = *state;
        char path[PATH_MAX], tmp[PATH_MAX + 32], victim[PATH_MAX];
        char *out = NULL;
        size_t len;

        kb_snprintf(path, sizeof(path), "%s/target", t->dir);
        kb_snprintf(victim, sizeof(victim), "%s/victim", t->dir);
        kb_snprintf(tmp, sizeof(tmp), "%s.tmp.%ld", path, (long)getpid());
        write_raw(victim, "original", 8, 0600);
        assert_int_equal(symlink(victim, tmp), 0);
        assert_int_equal(kb_write_file_atomic(path, "new", 3, 0600), 0);
        assert_int_equal(kb_read_file(victim, 100, &out, &len), 0);
        assert_string_equal(out, "original");
        free(out);
        assert_int_equal(kb_read_file(path, 100, &out, &len), 0);
        assert_string_equal(out, "new");
        free(out);
}

static void test_write_file_atomic_failures(void **state)
{
        tmpdir_t *t = *state;
        char path[PATH_MAX];

        /* missing directory */
        kb_snprintf(path, sizeof(path), "%s/nodir/x", t->dir);
        errno = 0;
        assert_int_equal(kb_write_file_atomic(path, "a", 1, 0600), -1);
        assert_int_equal(errno, ENOENT);
        assert_int_equal(count_entries(t->dir), 0);

        /* the target is a directory: rename fails, temp file removed */
        kb_snprintf(path, sizeof(path), "%s/adir", t->dir);
        assert_int_equal(mkdir(path, 0700), 0);
        errno = 0;
        assert_int_equal(kb_write_file_atomic(path, "a", 1, 0600), -1);
        assert_true(errno == EISDIR || errno == ENOTEMPTY || errno == EEXIST);
        assert_int_equal(count_entries(t->dir), 1);
}

static void test_write_file_excl(void **state)
{
        tmpdir_t *t = *state;
        char path[PATH_MAX], link[PATH_MAX], *out = NULL;
        struct stat st;
        size_t len;
        mode_t old = umask(077);

        kb_snprintf(path, sizeof(path), "%s/pub.json", t->dir);
        /* exact mode regardless of the umask */
        assert_int_equal(kb_write_file_excl(path, "pub", 3, 0644), 0);
        umask(old);
        assert_int_equal(stat(path, &st), 0);
        assert_int_equal(st.st_mode & 07777, 0644);
        /* never replaces */
        errno = 0;
        assert_int_equal(kb_write_file_excl(path, "other", 5, 0600), -1);
        assert_int_equal(errno, EEXIST);
        assert_int_equal(kb_read_file(path, 100, &out, &len), 0);
        assert_string_equal(out, "pub");
        free(out);
        /* never follows a (dangling) symlink */
        kb_snprintf(link, sizeof(link), "%s/link", t->dir);
        assert_int_equal(symlink("dangling-target", link), 0);
        assert_int_equal(kb_write_file_excl(link, "x", 1, 0600), -1);
        kb_snprintf(path, sizeof(path), "%s/dangling-target", t->dir);
        assert_int_equal(access(path, F_OK), -1);
}

/* ----------------------------------------------------------------- uuid */

static int is_lower_hex(char c)
{
        return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f');
}

static void test_uuid4_format(void **state)
{
        char u[37], prev[37] = "";
        int i, j;

        (void)state;
        for (i = 0; i < 200; i++) {
                memset(u, 'Z', sizeof(u));
                kb_uuid4(u);
                assert_int_equal(strlen(u), 36);
                for (j = 0; j < 36; j++) {
                        if (j == 8 || j == 13 || j == 18 || j == 23)
                                assert_int_equal(u[j], '-');
                        else
                                assert_true(is_lower_hex(u[j]));
                }
                /* version 4, RFC 4122 variant (10xx) */
                assert_int_equal(u[14], '4');
                assert_non_null(strchr("89ab", u[19]));
                assert_true(kb_is_uuid(u));
                assert_string_not_equal(u, prev);
                memcpy(prev, u, sizeof(u));
        }
}

static void test_is_uuid(void **state)
{
        static const char *const good[] = {
                "123e4567-e89b-42d3-a456-426614174000",
                "123E4567-E89B-42D3-A456-426614174000",
                "00000000-0000-0000-0000-000000000000",
                "ffffffff-FFFF-ffff-FFFF-ffffffffffff",
        };
        static const char *const bad[] = {
                "",
                "123e4567-e89b-42d3-a456-42661417400",
                "123e4567-e89b-42d3-a456-4266141740000",
                "123e4567e89b-42d3-a456-4266141740000",
                "123e4567-e89b-42d3-a4564-26614174000",
                "123e4567-e89b-42d3-a456-42661417400g",
                "{23e4567-e89b-42d3-a456-42661417400}",
                " 123e4567-e89b-42d3-a456-42661417400",
                "123e4567-e89b-42d3-a456-42661417400\n",
                "123e4567+e89b-42d3-a456-426614174000",
        };
        size_t i;

        (void)state;
        for (i = 0; i < KB_ARRAY_SIZE(good); i++)
                assert_true(kb_is_uuid(good[i]));
        for (i = 0; i < KB_ARRAY_SIZE(bad); i++)
                if (kb_is_uuid(bad[i]))
                        fail_msg("kb_is_uuid accepted \"%s\"", bad[i]);
        assert_false(kb_is_uuid(NULL));
}

/* --------------------------------------------------------------- digest */

static void test_digest_str(void **state)
{
        static const char secret[] = "eyJhbGciOiJIUzI1NiJ9.c2VjcmV0.c2ln";
        static const char hexlike[] = "0123456789ab";
        char d1[KB_DIGEST_STR_BYTES], d2[KB_DIGEST_STR_BYTES];
        int i;

        (void)state;
        /* known answers: "d:" + first 6 bytes of BLAKE2b-256 */
        kb_digest_str("", 0, d1);
        assert_string_equal(d1, "d:0e5751c026e5");
        kb_digest_str("abc", 3, d1);
        assert_string_equal(d1, "d:bddd813c6342");

        /* stable */
        kb_digest_str(secret, strlen(secret), d1);
        kb_digest_str(secret, strlen(secret), d2);
        assert_string_equal(d1, d2);
        assert_int_equal(strlen(d1), KB_DIGEST_STR_BYTES - 1);
        assert_memory_equal(d1, "d:", 2);
        for (i = 2; i < 14; i++)
                assert_true(is_lower_hex(d1[i]));
        /* does not contain the input, or any 6-byte piece of it */
        assert_null(strstr(d1, "eyJ"));
        for (i = 0; i + 6 <= (int)strlen(secret); i++) {
                char piece[7];
                memcpy(piece, secret + i, 6);
                piece[6] = '\0';
                assert_null(strstr(d1, piece));
        }
        kb_digest_str(hexlike, strlen(hexlike), d2);
        assert_string_not_equal(d2, "d:0123456789ab");
        /* a one-byte change changes the digest */
        kb_digest_str(secret, strlen(secret) - 1, d2);
        assert_string_not_equal(d1, d2);
}

/* --------------------------------------------------------- strings, hex */

static void test_hex(void **state)
{
        static const unsigned char in[] = { 0x00, 0x01, 0xab, 0xff, 0x7f };
        char out[11];

        (void)state;
        memset(out, 'Z', sizeof(out));
        kb_hex(in, sizeof(in), out);
        assert_string_equal(out, "0001abff7f");
        kb_hex(in, 0, out);
        assert_string_equal(out, "");
}

static void test_strlcpy_snprintf(void **state)
{
        char b[8];

        (void)state;
        memset(b, 'Z', sizeof(b));
        kb_strlcpy(b, "0123456789", sizeof(b));
        assert_string_equal(b, "0123456");
        kb_strlcpy(b, "ab", sizeof(b));
        assert_string_equal(b, "ab");
        memset(b, 'Z', sizeof(b));
        kb_strlcpy(b, "xyz", 1);
        assert_int_equal(b[0], '\0');
        assert_int_equal(b[1], 'Z');
        kb_strlcpy(b, "xyz", 0); /* no write at all */
        assert_int_equal(b[1], 'Z');
        kb_strlcpy(NULL, "xyz", 10);

        kb_snprintf(b, sizeof(b), "%d:%s", 12345, "abcdef");
        assert_string_equal(b, "12345:a");
        memset(b, 'Z', sizeof(b));
        kb_snprintf(b, 0, "%s", "x");
        assert_int_equal(b[0], 'Z');
        kb_snprintf(NULL, 10, "%s", "x");
}

/* ----------------------------------------------------------------- time */

static void test_time(void **state)
{
        int64_t now = kb_time_now(), t0, t1, us;
        struct timespec ts = { 0, 20 * 1000 * 1000 };

        (void)state;
        /* 2026-11-22 is the project's "today"; anything after 2020 is sane */
        assert_true(now > 1577836800);
        assert_true(now - (int64_t)time(NULL) <= 1);
        t0 = kb_mono_ms();
        us = kb_mono_us();
        assert_true(us / 1000 >= t0);
        nanosleep(&ts, NULL);
        t1 = kb_mono_ms();
        assert_true(t1 - t0 >= 19);
        assert_true(t1 - t0 < 5000);
}

/* ----------------------------------------------------------------- UTF-8 */

static void test_utf8_next(void **state)
{
        static const struct {
                const char *s;
                size_t len, want;
                uint32_t cp;
        } v[] = {
                { "a", 1, 1, 'a' },
                { "\0", 1, 1, 0 },
                { "\x7f", 1, 1, 0x7f },
                { "\xc2\x80", 2, 2, 0x80 },
                { "\xc3\xbc", 2, 2, 0xfc },
                { "\xdf\xbf", 2, 2, 0x7ff },
                { "\xe0\xa0\x80", 3, 3, 0x800 },
                { "\xe2\x82\xac", 3, 3, 0x20ac },
                { "\xed\x9f\xbf", 3, 3, 0xd7ff },
                { "\xee\x80\x80", 3, 3, 0xe000 },
                { "\xef\xbf\xbd", 3, 3, 0xfffd },
                { "\xf0\x90\x80\x80", 4, 4, 0x10000 },
                { "\xf0\x9f\x98\x80", 4, 4, 0x1f600 },
                { "\xf4\x8f\xbf\xbf", 4, 4, 0x10ffff },
                /* reads only the first character */
                { "\xc3\xbcx", 3, 2, 0xfc },
                { "", 0, 0, 0 },
                { "\x80", 1, 0, 0 }, /* stray continuation */
                { "\xbf", 1, 0, 0 },
                { "\xc0\xaf", 2, 0, 0 },         /* overlong '/' */
                { "\xc1\xbf", 2, 0, 0 },         /* overlong */
                { "\xe0\x80\xaf", 3, 0, 0 },     /* overlong */
                { "\xe0\x9f\xbf", 3, 0, 0 },     /* overlong */
                { "\xf0\x8f\xbf\xbf", 4, 0, 0 }, /* overlong */
                { "\xed\xa0\x80", 3, 0, 0 },     /* surrogate D800 */
                { "\xed\xbf\xbf", 3, 0, 0 },     /* surrogate DFFF */
                { "\xf4\x90\x80\x80", 4, 0, 0 }, /* above U+10FFFF */
                { "\xf5\x80\x80\x80", 4, 0, 0 },
                { "\xfe", 1, 0, 0 },
                { "\xff", 1, 0, 0 },
                { "\xc3\x28", 2, 0, 0 }, /* not a continuation */
                { "\xe2\x82\x28", 3, 0, 0 },
                { "\xf0\x9f\x98\x28", 4, 0, 0 },
        };
        size_t i;

        (void)state;
        for (i = 0; i < KB_ARRAY_SIZE(v); i++) {
                uint32_t cp = 0xdeadbeef;
                size_t n =
                    kb_utf8_next((const unsigned char *)v[i].s, v[i].len, &cp);
                assert_int_equal(n, v[i].want);
                if (n)
                        assert_int_equal(cp, v[i].cp);
        }
        /* a sequence cut by the length is invalid even if the bytes after
         * the end would complete it */
        assert_int_equal(
            kb_utf8_next((const unsigned char *)"\xc3\xbc", 1, NULL), 0);
        assert_int_equal(
            kb_utf8_next((const unsigned char *)"\xe2\x82\xac", 2, NULL), 0);
        assert_int_equal(
            kb_utf8_next((const unsigned char *)"\xf0\x9f\x98\x80", 3, NULL),
            0);
        assert_int_equal(kb_utf8_next((const unsigned char *)"a", 1, NULL), 1);

        assert_true(kb_utf8_valid("", 0));
        assert_true(kb_utf8_valid("a\0b\n", 4));
        assert_true(kb_utf8_valid("M\xc3\xbcller \xe2\x82\xac", 11));
        assert_false(kb_utf8_valid("M\xc3", 2));
        assert_false(kb_utf8_valid("\xed\xa0\x80\xed\xb0\x80", 6)); /* CESU */

        assert_true(kb_utf8_is_control(0));
        assert_true(kb_utf8_is_control(0x1f));
        assert_true(kb_utf8_is_control(0x7f));
        assert_true(kb_utf8_is_control(0x9b)); /* C1 CSI */
        assert_false(kb_utf8_is_control(' '));
        assert_false(kb_utf8_is_control(0xa0));
        assert_false(kb_utf8_is_control(0x20ac));
}

/* every code point, every encoding a decoder could be fooled by */
static void test_utf8_next_exhaustive(void **state)
{
        unsigned char b[4];
        uint32_t cp, got;

        (void)state;
        for (cp = 0; cp <= 0x10ffff; cp++) {
                size_t n, want;
                if (cp < 0x80) {
                        b[0] = (unsigned char)cp;
                        want = 1;
                } else if (cp < 0x800) {
                        b[0] = (unsigned char)(0xc0 | (cp >> 6));
                        b[1] = (unsigned char)(0x80 | (cp & 0x3f));
                        want = 2;
                } else if (cp < 0x10000) {
                        b[0] = (unsigned char)(0xe0 | (cp >> 12));
                        b[1] = (unsigned char)(0x80 | ((cp >> 6) & 0x3f));
                        b[2] = (unsigned char)(0x80 | (cp & 0x3f));
                        want = 3;
                } else {
                        b[0] = (unsigned char)(0xf0 | (cp >> 18));
                        b[1] = (unsigned char)(0x80 | ((cp >> 12) & 0x3f));
                        b[2] = (unsigned char)(0x80 | ((cp >> 6) & 0x3f));
                        b[3] = (unsigned char)(0x80 | (cp & 0x3f));
                        want = 4;
                }
                n = kb_utf8_next(b, want, &got);
                if (cp >= 0xd800 && cp <= 0xdfff) {
                        assert_int_equal(n, 0);
                        continue;
                }
                assert_int_equal(n, want);
                assert_int_equal(got, cp);
                /* the same code point one byte longer is overlong */
                if (want < 4) {
                        unsigned char o[4];
                        uint32_t x = cp;
                        if (want == 1) {
                                o[0] = (unsigned char)(0xc0 | (x >> 6));
                                o[1] = (unsigned char)(0x80 | (x & 0x3f));
                        } else if (want == 2) {
                                o[0] = (unsigned char)(0xe0 | (x >> 12));
                                o[1] =
                                    (unsigned char)(0x80 | ((x >> 6) & 0x3f));
                                o[2] = (unsigned char)(0x80 | (x & 0x3f));
                        } else {
                                o[0] = 0xf0;
                                o[1] =
                                    (unsigned char)(0x80 | ((x >> 12) & 0x3f));
                                o[2] =
                                    (unsigned char)(0x80 | ((x >> 6) & 0x3f));
                                o[3] = (unsigned char)(0x80 | (x & 0x3f));
                        }
                        assert_int_equal(kb_utf8_next(o, want + 1, NULL), 0);
                }
        }
}

static void test_utf8_is_text(void **state)
{
        (void)state;
        assert_true(kb_utf8_is_text("", 0));
        assert_true(
            kb_utf8_is_text("M\xc3\xbcller \xc2\x85", 10)); /* as before */
        assert_false(kb_utf8_is_text("a\tb", 3));
        assert_false(kb_utf8_is_text("a\x7f", 2));
        assert_false(kb_utf8_is_text("\xe2\x82", 2));
        assert_false(kb_utf8_is_text("\xed\xa0\x80", 3));
}

static void test_str_printable(void **state)
{
        char out[32], small[6];

        (void)state;
        kb_str_printable(out, sizeof(out), "plain text", 10);
        assert_string_equal(out, "plain text");
        /* controls (C0, DEL, C1) become one '?' each */
        kb_str_printable(out, sizeof(out), "a\nb\rc\x1b[2Jd\x7f", 11);
        assert_string_equal(out, "a?b?c?[2Jd?");
        kb_str_printable(out, sizeof(out),
                         "x\xc2\x9b"
                         "1m",
                         5);
        assert_string_equal(out, "x?1m");
        /* an embedded NUL does not end the copy */
        kb_str_printable(out, sizeof(out), "a\0b", 3);
        assert_string_equal(out, "a?b");
        /* good UTF-8 is kept */
        kb_str_printable(out, sizeof(out), "M\xc3\xbcller \xe2\x82\xac", 11);
        assert_string_equal(out, "M\xc3\xbcller \xe2\x82\xac");
        /* each bad byte becomes '?', the good character after it stays */
        kb_str_printable(out, sizeof(out), "\xff\xc3(\xe2\x82\xc3\xbc", 7);
        assert_string_equal(out, "?"
                                 "?(?"
                                 "?\xc3\xbc");
        kb_str_printable(out, sizeof(out), "\xed\xa0\x80!", 4);
        assert_string_equal(out, "??"
                                 "?!");
        kb_str_printable(out, sizeof(out), "\xc0\xaf", 2);
        assert_string_equal(out, "??");
        /* a character cut by the length is broken too */
        kb_str_printable(out, sizeof(out), "ab\xe2\x82\xac", 4);
        assert_string_equal(out, "ab??");

        /* truncation: on a character boundary, always terminated */
        kb_str_printable(small, sizeof(small), "abcdefgh", 8);
        assert_string_equal(small, "abcde");
        kb_str_printable(small, sizeof(small), "abcd\xc3\xbc", 6);
        assert_string_equal(small, "abcd");
        kb_str_printable(small, sizeof(small), "ab\xe2\x82\xac", 5);
        assert_string_equal(small, "ab\xe2\x82\xac");
        kb_str_printable(small, sizeof(small), "abc\xe2\x82\xac", 6);
        assert_string_equal(small, "abc");
        kb_str_printable(small, sizeof(small),
                         "\xf0\x9f\x98\x80\xf0\x9f\x98\x80", 8);
        assert_string_equal(small, "\xf0\x9f\x98\x80");
        kb_str_printable(small, 1, "abc", 3);
        assert_string_equal(small, "");

        /* NULL source, zero-size or NULL destination */
        memset(out, 'x', sizeof(out));
        kb_str_printable(out, sizeof(out), NULL, 5);
        assert_string_equal(out, "");
        memset(small, 'x', sizeof(small));
        kb_str_printable(small, 0, "abc", 3);
        assert_int_equal(small[0], 'x');
        kb_str_printable(NULL, 10, "abc", 3);
}

static void esc_is(const char *in, size_t len, unsigned flags, const char *want)
{
        kb_buf_t b = KB_BUF_INIT;

        assert_int_equal(kb_buf_puts(&b, ">"), 0);
        assert_int_equal(kb_utf8_escape_text(&b, in, len, flags), 0);
        assert_string_equal(b.data + 1, want);
        kb_buf_free(&b, 0);
}

static void test_utf8_escape_text(void **state)
{
        (void)state;
        esc_is("", 0, 0, "");
        esc_is("plain \xc3\xa9\xe2\x82\xac", 11, 0,
               "plain \xc3\xa9\xe2\x82\xac");
        /* C0, DEL, C1: every byte */
        esc_is("a\x1b[1m\x7f\xc2\x9b", 8, 0, "a\\x1b[1m\\x7f\\xc2\\x9b");
        esc_is("\0", 1, 0, "\\x00");
        /* broken UTF-8: the bad byte only, the next character survives */
        esc_is("\xff\xc3\xa9\xc3", 4, 0, "\\xff\xc3\xa9\\xc3");
        esc_is("\xed\xa0\x80", 3, 0, "\\xed\\xa0\\x80");
        /* line mode: \n \r readable, tab kept; otherwise all escaped */
        esc_is("a\nb\rc\td", 7, KB_UTF8_ESC_LINE, "a\\nb\\rc\td");
        esc_is("a\nb\rc\td", 7, 0, "a\\x0ab\\x0dc\\x09d");
        /* backslash: kept, or escaped so the output reads back */
        esc_is("a\\b", 3, 0, "a\\b");
        esc_is("a\\b", 3, KB_UTF8_ESC_BACKSLASH, "a\\x5cb");
}

/* ------------------------------------------------------- ISO 8601 times */

static void test_time_parse_iso8601(void **state)
{
        static const struct {
                const char *s;
                int64_t t;
        } good[] = {
                { "1970-01-01T00:00:00Z", 0 },
                { "2026-12-05T16:19:34Z", 1796487574 },
                { "2026-12-05t16:19:34z", 1796487574 },
                { "2026-12-05T16:19:34", 1796487574 }, /* no offset: UTC */
                { "2026-12-05T16:19:34.123456Z", 1796487574 },
                { "2026-12-05T16:19:34.9Z", 1796487574 },
                { "2026-12-05T16:19:34.123456789+00:00", 1796487574 },
                { "2026-12-05T18:19:34+02:00", 1796487574 },
                { "2026-12-05T18:19:34.5+0200", 1796487574 },
                { "2026-12-05T10:49:34-05:30", 1796487574 },
                { "2026-12-05T10:49:34-0530", 1796487574 },
                { "2026-12-05T16:19:34-00:00", 1796487574 },
                /* offsets that change the day, month and year */
                { "2027-01-01T01:00:00+09:00", 1798732800 },
                { "2026-12-31T15:00:00-09:00", 1798761600 },
                { "2024-02-29T00:00:00Z", 1709164800 },
                { "2000-02-29T23:59:59Z", 951868799 },
                { "1969-12-31T23:59:59Z", -1 },
                { "1900-01-01T00:00:00Z", -2208988800LL },
                { "9999-12-31T23:59:59Z", 253402300799LL },
                { "2016-12-31T23:59:60Z", 1483228800 }, /* leap second */
                { "2026-06-30T23:59:59+23:59", 1782777659 },
        };
        static const char *const bad[] = {
                "",
                "2026",
                "2026-12-05",
                "2026-12-05T16:19",
                "2026-12-05T16:19Z",
                "2026-12-05 16:19:34Z",
                "2026-12-5T16:19:34Z",
                "26-12-05T16:19:34Z",
                "+2026-12-05T16:19:34Z",
                " 2026-12-05T16:19:34Z",
                "2026-12-05T16:19:34Z ",
                "2026-12-05T16:19:34Zjunk",
                "2026-12-05T16:19:34ZZ",
                "2026-12-05T16:19:34+02:00x",
                "2026-12-05T16:19:34+02",
                "2026-12-05T16:19:34+2:00",
                "2026-12-05T16:19:34+02:0",
                "2026-12-05T16:19:34+020",
                "2026-12-05T16:19:34+24:00",
                "2026-12-05T16:19:34+02:60",
                "2026-12-05T16:19:34.Z",
                "2026-12-05T16:19:34.",
                "2026-12-05T16:19:34.1234567890Z",
                "2026-12-05T16:19:34,5Z",
                "2026-00-05T16:19:34Z",
                "2026-13-05T16:19:34Z",
                "2026-12-00T16:19:34Z",
                "2026-12-32T16:19:34Z",
                "2026-02-29T16:19:34Z", /* not a leap year */
                "1900-02-29T16:19:34Z",
                "2026-04-31T16:19:34Z",
                "2026-12-05T24:00:00Z",
                "2026-12-05T16:60:34Z",
                "2026-12-05T16:19:61Z",
                "2026-12-05T16:19:3aZ",
                "2026-12-05T-1:19:34Z",
                "2026/12/05T16:19:34Z",
                "2026-12-05T16-19-34Z",
                "1796487574",
                "not a date",
        };
        int64_t t;
        size_t i;

        (void)state;
        for (i = 0; i < KB_ARRAY_SIZE(good); i++) {
                t = 42;
                if (kb_time_parse_iso8601(good[i].s, &t) != 0)
                        fail_msg("rejected %s", good[i].s);
                if (t != good[i].t)
                        fail_msg("%s: %lld, want %lld", good[i].s, (long long)t,
                                 (long long)good[i].t);
        }
        for (i = 0; i < KB_ARRAY_SIZE(bad); i++) {
                t = 42;
                if (kb_time_parse_iso8601(bad[i], &t) != -1)
                        fail_msg("accepted \"%s\"", bad[i]);
                assert_int_equal(t, 42);
        }
        assert_int_equal(kb_time_parse_iso8601(NULL, &t), -1);
        assert_int_equal(kb_time_parse_iso8601("2026-12-05T16:19:34Z", NULL),
                         -1);
}

/* the result does not depend on the local time zone */
static void test_time_parse_iso8601_tz(void **state)
{
        const char *old = getenv("TZ");
        char *saved = old ? strdup(old) : NULL;
        int64_t t = 0;

        (void)state;
        setenv("TZ", "America/St_Johns", 1);
        tzset();
        assert_int_equal(kb_time_parse_iso8601("2026-07-01T12:00:00+02:00", &t),
                         0);
        assert_int_equal(t, 1782900000);
        /* and agrees with the C library's own UTC conversion */
        {
                struct tm tm;
                time_t tt = (time_t)t;
                assert_non_null(gmtime_r(&tt, &tm));
                assert_int_equal(tm.tm_hour, 10);
                assert_int_equal(tm.tm_mday, 1);
                assert_int_equal(tm.tm_mon, 6);
        }
        if (saved) {
                setenv("TZ", saved, 1);
                free(saved);
        } else {
                unsetenv("TZ");
        }
        tzset();
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_buf_growth),
                cmocka_unit_test(test_buf_append_binary_and_empty),
                cmocka_unit_test(test_buf_reserve_overflow),
                cmocka_unit_test(test_buf_printf),
                cmocka_unit_test(test_buf_reset_keeps_memory),
                cmocka_unit_test(test_buf_steal),
                cmocka_unit_test(test_parse_i64_valid),
                cmocka_unit_test(test_parse_i64_invalid),
                cmocka_unit_test(test_parse_i64_bounds),
                cmocka_unit_test_setup_teardown(test_read_file_sizes,
                                                setup_tmpdir, teardown_tmpdir),
                cmocka_unit_test_setup_teardown(
                    test_write_file_atomic_content_mode, setup_tmpdir,
                    teardown_tmpdir),
                cmocka_unit_test_setup_teardown(
                    test_write_file_atomic_stale_temp, setup_tmpdir,
                    teardown_tmpdir),
                cmocka_unit_test_setup_teardown(
                    test_write_file_atomic_no_symlink_follow, setup_tmpdir,
                    teardown_tmpdir),
                cmocka_unit_test_setup_teardown(test_write_file_atomic_failures,
                                                setup_tmpdir, teardown_tmpdir),
                cmocka_unit_test_setup_teardown(test_write_file_excl,
                                                setup_tmpdir, teardown_tmpdir),
                cmocka_unit_test(test_uuid4_format),
                cmocka_unit_test(test_is_uuid),
                cmocka_unit_test(test_digest_str),
                cmocka_unit_test(test_hex),
                cmocka_unit_test(test_strlcpy_snprintf),
                cmocka_unit_test(test_time),
                cmocka_unit_test(test_utf8_next),
                cmocka_unit_test(test_utf8_next_exhaustive),
                cmocka_unit_test(test_utf8_is_text),
                cmocka_unit_test(test_str_printable),
                cmocka_unit_test(test_utf8_escape_text),
                cmocka_unit_test(test_time_parse_iso8601),
                cmocka_unit_test(test_time_parse_iso8601_tz),
        };

        if (kb_init() != KB_OK)
                return 1;
        return cmocka_run_group_tests(tests, NULL, NULL);
}
