/* util.h -- small shared helpers: growable buffer, time, hex, digests, strings
 */
#ifndef KB_UTIL_H
#define KB_UTIL_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#define KB_ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

#if defined(__GNUC__)
#define KB_PRINTF(fmt, args) __attribute__((format(printf, fmt, args)))
#define KB_UNUSED            __attribute__((unused))
#else
#define KB_PRINTF(fmt, args)
#define KB_UNUSED
#endif

/* Growable byte buffer, always NUL-terminated when data != NULL. */
typedef struct kb_buf_s {
        char *data;
        size_t len;
        size_t cap;
} kb_buf_t;

#define KB_BUF_INIT                                                            \
        {                                                                      \
                NULL, 0, 0                                                     \
        }

/** Ensures room for @p extra more bytes plus the NUL. -1 on ENOMEM. */
int kb_buf_reserve(kb_buf_t *b, size_t extra);
/** Appends @p len bytes. 0 or -1 on ENOMEM. */
int kb_buf_append(kb_buf_t *b, const void *p, size_t len);
/** Appends a NUL-terminated string. */
int kb_buf_puts(kb_buf_t *b, const char *s);
/** Appends printf-formatted text. */
int kb_buf_printf(kb_buf_t *b, const char *fmt, ...) KB_PRINTF(2, 3);
/** Empties the buffer, keeping its memory. */
void kb_buf_reset(kb_buf_t *b);
/** Frees the memory (and wipes it first when @p wipe). */
void kb_buf_free(kb_buf_t *b, int wipe);
/** Hands the data to the caller (malloc()ed) and resets @p b. */
char *kb_buf_steal(kb_buf_t *b, size_t *len);

/** Wall clock, unix seconds. */
int64_t kb_time_now(void);
/**
 * Parses an RFC 3339 / ISO 8601 date-time as the vendor and the sandbox
 * write them -- "2026-12-05T16:19:34Z", "...T16:19:34.123456+02:00",
 * "...-0530", "...T16:19:34" (no offset: UTC) -- into unix seconds
 * (fractional seconds are dropped, the offset is applied; a leap second
 * :60 counts as the next second). Strict: fixed-width fields, real calendar
 * dates, offsets up to 23:59, nothing after the value. Does not depend on
 * TZ. Returns 0, or -1 (and leaves @p epoch_s alone) on any malformed
 * input.
 */
int kb_time_parse_iso8601(const char *s, int64_t *epoch_s);
/** Monotonic clock in milliseconds. */
int64_t kb_mono_ms(void);
/** Monotonic clock in microseconds. */
int64_t kb_mono_us(void);

/** Lowercase hex of @p len bytes into @p out (2*len+1 bytes). */
void kb_hex(const unsigned char *in, size_t len, char *out);

/*
 * Short, non-reversible digest of a secret for logs and error messages:
 * "d:" + 12 hex chars of BLAKE2b-256(secret). KB_DIGEST_STR_BYTES with NUL.
 */
#define KB_DIGEST_STR_BYTES 15U
void kb_digest_str(const void *secret, size_t len,
                   char out[KB_DIGEST_STR_BYTES]);

/** snprintf that never overflows and tolerates size 0 / NULL. */
void kb_strlcpy(char *dst, const char *src, size_t size);
void kb_snprintf(char *dst, size_t size, const char *fmt, ...) KB_PRINTF(3, 4);

/**
 * Parses a base-10 integer with range check; rejects empty, trailing garbage
 * and overflow. Returns 0 on success, -1 otherwise.
 */
int kb_parse_i64(const char *s, int64_t min, int64_t max, int64_t *out);

/** Reads a whole file (at most @p max bytes) into a malloc()ed NUL-terminated
 * buffer. Returns 0, or -1 with errno set (EFBIG when over @p max). */
int kb_read_file(const char *path, size_t max, char **out, size_t *out_len);

/** Writes @p len bytes to @p path atomically (new unique temp file + fsync +
 * rename), with exactly @p mode (regardless of the umask). Returns 0 or -1
 * with errno set; no temporary file is left behind. */
int kb_write_file_atomic(const char *path, const void *data, size_t len,
                         unsigned mode);

/** Generates a random RFC 4122 version 4 UUID string (37 bytes with NUL). */
void kb_uuid4(char out[37]);

/** Non-zero if @p s is a canonical lowercase/uppercase UUID string. */
int kb_is_uuid(const char *s);

/**
 * Creates @p path exclusively (O_CREAT|O_EXCL, never following a symlink),
 * writes @p len bytes, sets exactly @p mode (regardless of the umask) and
 * fsyncs it. Refuses to replace anything: errno EEXIST. On any failure the
 * partly written file is removed. Returns 0 or -1 with errno set.
 */
int kb_write_file_excl(const char *path, const void *data, size_t len,
                       unsigned mode);

/**
 * Non-zero if @p s / @p len is well-formed UTF-8 (shortest form, no
 * surrogates, at most U+10FFFF) without control characters: no byte below
 * 0x20 (so no NUL) and no 0x7f. Empty input counts as text.
 */
int kb_utf8_is_text(const char *s, size_t len);

#endif /* KB_UTIL_H */
