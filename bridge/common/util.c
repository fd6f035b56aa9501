/* util.c -- small shared helpers: growable buffer, time, hex, digests, strings
 */
#include "util.h"
#include "utf8.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <sodium.h>

int kb_buf_reserve(kb_buf_t *b, size_t extra)
{
        size_t need, ncap;
        char *p;

        if (extra > SIZE_MAX - b->len - 1)
                return -1;
        need = b->len + extra + 1;
        if (need <= b->cap)
                return 0;
        ncap = b->cap ? b->cap : 64;
        while (ncap < need) {
                if (ncap > SIZE_MAX / 2)
                        return -1;
                ncap *= 2;
        }
        p = realloc(b->data, ncap);
        if (!p)
                return -1;
        b->data = p;
        b->cap = ncap;
        /* keep the "NUL-terminated when data != NULL" promise for a buffer
         * that was empty (kb_buf_steal, kb_read_file of an empty file) */
        b->data[b->len] = '\0';
        return 0;
}

int kb_buf_append(kb_buf_t *b, const void *p, size_t len)
{
        if (kb_buf_reserve(b, len) == -1)
                return -1;
        if (len)
                memcpy(b->data + b->len, p, len);
        b->len += len;
        b->data[b->len] = '\0';
        return 0;
}

int kb_buf_puts(kb_buf_t *b, const char *s)
{
        return kb_buf_append(b, s, strlen(s));
}

int kb_buf_printf(kb_buf_t *b, const char *fmt, ...)
{
        va_list ap;
        int n;

        va_start(ap, fmt);
        n = vsnprintf(NULL, 0, fmt, ap);
        va_end(ap);
        if (n < 0 || kb_buf_reserve(b, (size_t)n) == -1)
                return -1;
        va_start(ap, fmt);
        vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
        va_end(ap);
        b->len += (size_t)n;
        return 0;
}

void kb_buf_reset(kb_buf_t *b)
{
        b->len = 0;
        if (b->data)
                b->data[0] = '\0';
}

void kb_buf_free(kb_buf_t *b, int wipe)
{
        if (b->data && wipe)
                sodium_memzero(b->data, b->cap);
        free(b->data);
        b->data = NULL;
        b->len = b->cap = 0;
}

char *kb_buf_steal(kb_buf_t *b, size_t *len)
{
        char *p;

        if (!b->data && kb_buf_reserve(b, 0) == -1)
                return NULL;
        p = b->data;
        if (len)
                *len = b->len;
        b->data = NULL;
        b->len = b->cap = 0;
        return p;
}

int64_t kb_time_now(void)
{
        return (int64_t)time(NULL);
}

/* @p n decimal digits at @p s, or -1. */
static int digits_n(const char *s, int n)
{
        int v = 0, i;

        for (i = 0; i < n; i++) {
                if (s[i] < '0' || s[i] > '9')
                        return -1;
                v = v * 10 + (s[i] - '0');
        }
        return v;
}

/* Days since 1970-01-01 of a proleptic Gregorian date (timegm without the
 * TZ lookup; H. Hinnant's days_from_civil). */
static int64_t days_from_civil(int64_t y, int m, int d)
{
        int64_t era, yoe, doy, doe;

        y -= m <= 2;
        era = (y >= 0 ? y : y - 399) / 400;
        yoe = y - era * 400;
        doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
        doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
        return era * 146097 + doe - 719468;
}

int kb_time_parse_iso8601(const char *s, int64_t *epoch_s)
{
        static const int mdays[] = { 31, 28, 31, 30, 31, 30,
                                     31, 31, 30, 31, 30, 31 };
        int y, mo, d, h, mi, sec, oh = 0, om = 0, dim;
        int64_t t, off = 0;

        if (!s || !epoch_s)
                return -1;
        /* every field has a fixed width: check the separators first so the
         * digit reads never run past the terminator */
        if ((y = digits_n(s, 4)) < 0 || s[4] != '-' ||
            (mo = digits_n(s + 5, 2)) < 0 || s[7] != '-' ||
            (d = digits_n(s + 8, 2)) < 0 || (s[10] != 'T' && s[10] != 't') ||
            (h = digits_n(s + 11, 2)) < 0 || s[13] != ':' ||
            (mi = digits_n(s + 14, 2)) < 0 || s[16] != ':' ||
            (sec = digits_n(s + 17, 2)) < 0)
                return -1;
        if (mo < 1 || mo > 12 || h > 23 || mi > 59 || sec > 60)
                return -1;
        dim = mdays[mo - 1];
        if (mo == 2 && y % 4 == 0 && (y % 100 != 0 || y % 400 == 0))
                dim = 29;
        if (d < 1 || d > dim)
                return -1;
        s += 19;
        if (*s == '.') {
                /* a fraction has at least one digit; at most nanoseconds */
                int n = 0;
                for (s++; *s >= '0' && *s <= '9'; s++)
                        n++;
                if (n < 1 || n > 9)
                        return -1;
        }
        if (*s == 'Z' || *s == 'z') {
                s++;
        } else if (*s == '+' || *s == '-') {
                int sign = *s == '-' ? -1 : 1;
                if ((oh = digits_n(s + 1, 2)) < 0)
                        return -1;
                if (s[3] == ':') {
                        if ((om = digits_n(s + 4, 2)) < 0)
                                return -1;
                        s += 6;
                } else {
                        if ((om = digits_n(s + 3, 2)) < 0)
                                return -1;
                        s += 5;
                }
                if (oh > 23 || om > 59)
                        return -1;
                off = sign * (int64_t)(oh * 3600 + om * 60);
        }
        if (*s != '\0')
                return -1;
        t = days_from_civil(y, mo, d) * 86400 + h * 3600 + mi * 60 + sec;
        /* local time = UTC + offset */
        *epoch_s = t - off;
        return 0;
}

int64_t kb_mono_us(void)
{
        struct timespec ts;

        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

int64_t kb_mono_ms(void)
{
        return kb_mono_us() / 1000;
}

void kb_hex(const unsigned char *in, size_t len, char *out)
{
        static const char digits[] = "0123456789abcdef";
        size_t i;

        for (i = 0; i < len; i++) {
                out[2 * i] = digits[in[i] >> 4];
                out[2 * i + 1] = digits[in[i] & 0xf];
        }
        out[2 * len] = '\0';
}

void kb_digest_str(const void *secret, size_t len,
                   char out[KB_DIGEST_STR_BYTES])
{
        unsigned char h[32];

        crypto_generichash(h, sizeof(h), secret, len, NULL, 0);
        out[0] = 'd';
        out[1] = ':';
        kb_hex(h, 6, out + 2);
}

void kb_strlcpy(char *dst, const char *src, size_t size)
{
        size_t n;

        if (!dst || size == 0)
                return;
        n = strlen(src);
        if (n >= size)
                n = size - 1;
        memcpy(dst, src, n);
        dst[n] = '\0';
}

void kb_snprintf(char *dst, size_t size, const char *fmt, ...)
{
        va_list ap;

        if (!dst || size == 0)
                return;
        va_start(ap, fmt);
        vsnprintf(dst, size, fmt, ap);
        va_end(ap);
}

int kb_parse_i64(const char *s, int64_t min, int64_t max, int64_t *out)
{
        char *end;
        long long v;

        if (!s || !*s)
                return -1;
        /* strtoll accepts leading space and '+': be strict. */
        if (!(*s == '-' || (*s >= '0' && *s <= '9')))
                return -1;
        errno = 0;
        v = strtoll(s, &end, 10);
        if (errno != 0 || *end != '\0' || end == s)
                return -1;
        if (v < min || v > max)
                return -1;
        *out = (int64_t)v;
        return 0;
}

int kb_read_file(const char *path, size_t max, char **out, size_t *out_len)
{
        FILE *fp;
        kb_buf_t b = KB_BUF_INIT;
        char chunk[4096];
        size_t n;
        int err = 0;

        fp = fopen(path, "rb");
        if (!fp)
                return -1;
        while ((n = fread(chunk, 1, sizeof(chunk), fp)) > 0) {
                if (b.len + n > max) {
                        err = EFBIG;
                        break;
                }
                if (kb_buf_append(&b, chunk, n) == -1) {
                        err = ENOMEM;
                        break;
                }
        }
        if (!err && ferror(fp))
                err = EIO;
        fclose(fp);
        if (!err && kb_buf_reserve(&b, 0) == -1)
                err = ENOMEM;
        sodium_memzero(chunk, sizeof(chunk));
        if (err) {
                kb_buf_free(&b, 1);
                errno = err;
                return -1;
        }
        *out = kb_buf_steal(&b, out_len);
        return 0;
}

/* Writes all of @p data to @p fd (unless @p err is already set), fsyncs and
 * closes it. Returns the first errno met, or 0. */
static int write_sync_close(int fd, const void *data, size_t len, int err)
{
        const char *p = data;
        size_t off = 0;

        while (!err && off < len) {
                ssize_t w = write(fd, p + off, len - off);
                if (w < 0) {
                        if (errno == EINTR)
                                continue;
                        err = errno;
                        break;
                }
                off += (size_t)w;
        }
        if (!err && fsync(fd) == -1)
                err = errno;
        if (close(fd) == -1 && !err)
                err = errno;
        return err;
}

int kb_write_file_atomic(const char *path, const void *data, size_t len,
                         unsigned mode)
{
        char tmp[PATH_MAX];
        int fd, err = 0;

        /* A unique, newly created temporary file (mkstemp: O_EXCL, mode
         * 0600): a stale or planted file or symlink of a predictable name
         * is never reused or followed, and concurrent writers in one
         * process do not share a temporary file. */
        if ((size_t)snprintf(tmp, sizeof(tmp), "%s.tmp.XXXXXX", path) >=
            sizeof(tmp)) {
                errno = ENAMETOOLONG;
                return -1;
        }
        fd = mkstemp(tmp);
        if (fd == -1)
                return -1;
        if (fcntl(fd, F_SETFD, FD_CLOEXEC) == -1 ||
            fchmod(fd, (mode_t)(mode & 07777)) == -1)
                err = errno;
        err = write_sync_close(fd, data, len, err);
        if (!err && rename(tmp, path) == -1)
                err = errno;
        if (err) {
                unlink(tmp);
                errno = err;
                return -1;
        }
        return 0;
}

void kb_uuid4(char out[37])
{
        unsigned char r[16];
        char hex[33];

        randombytes_buf(r, sizeof(r));
        r[6] = (unsigned char)((r[6] & 0x0f) | 0x40);
        r[8] = (unsigned char)((r[8] & 0x3f) | 0x80);
        kb_hex(r, sizeof(r), hex);
        snprintf(out, 37, "%.8s-%.4s-%.4s-%.4s-%.12s", hex, hex + 8, hex + 12,
                 hex + 16, hex + 20);
}

int kb_is_uuid(const char *s)
{
        size_t i;

        if (!s || strlen(s) != 36)
                return 0;
        for (i = 0; i < 36; i++) {
                char c = s[i];
                if (i == 8 || i == 13 || i == 18 || i == 23) {
                        if (c != '-')
                                return 0;
                } else if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') ||
                             (c >= 'A' && c <= 'F'))) {
                        return 0;
                }
        }
        return 1;
}

/* Makes a new directory entry durable; best effort (errors ignored). */
static void fsync_parent_dir(const char *path)
{
        char dir[PATH_MAX];
        const char *slash = strrchr(path, '/');
        int fd;

        if (!slash)
                kb_strlcpy(dir, ".", sizeof(dir));
        else if (slash == path)
                kb_strlcpy(dir, "/", sizeof(dir));
        else if ((size_t)(slash - path) < sizeof(dir))
                kb_snprintf(dir, sizeof(dir), "%.*s", (int)(slash - path),
                            path);
        else
                return;
        fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (fd == -1)
                return;
        (void)fsync(fd);
        close(fd);
}

int kb_write_file_excl(const char *path, const void *data, size_t len,
                       unsigned mode)
{
        int fd, err = 0;

        fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW,
                  (mode_t)(mode & 0777));
        if (fd == -1)
                return -1;
        /* the umask may have narrowed the mode: set exactly what was asked */
        if (fchmod(fd, (mode_t)(mode & 0777)) == -1)
                err = errno;
        err = write_sync_close(fd, data, len, err);
        if (err) {
                unlink(path);
                errno = err;
                return -1;
        }
        fsync_parent_dir(path);
        return 0;
}

int kb_utf8_is_text(const char *s, size_t len)
{
        const unsigned char *p = (const unsigned char *)s;
        size_t i = 0;

        while (i < len) {
                uint32_t cp;
                size_t n = kb_utf8_next(p + i, len - i, &cp);
                if (!n || cp < 0x20 || cp == 0x7f)
                        return 0;
                i += n;
        }
        return 1;
}
