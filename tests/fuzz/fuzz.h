/* fuzz.h -- what every libFuzzer target of tests/fuzz/ shares */
#ifndef KB_FUZZ_H
#define KB_FUZZ_H

#include <fcntl.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "kyc_bridge.h"
#include "log.h"
#include "util.h"

/* libFuzzer's entry points (no header ships them for C). */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerInitialize(int *argc, char ***argv);

/*
 * An invariant the code under test must keep. A failure is a finding:
 * abort() makes libFuzzer save the input as a crash.
 */
#define FUZZ_CHECK(cond)                                                       \
        do {                                                                   \
                if (!(cond)) {                                                 \
                        fprintf(stderr, "%s:%d: invariant failed: %s\n",       \
                                __FILE__, __LINE__, #cond);                    \
                        abort();                                               \
                }                                                              \
        } while (0)

/*
 * Once per process: libsodium, and the log at debug level into /dev/null
 * (so that every log line a parser writes is formatted and scrubbed, as in
 * production, without flooding the fuzzer's output). @p json: JSON lines
 * instead of text.
 */
static inline void fuzz_init(int json)
{
        int fd;

        if (kb_init() != KB_OK)
                abort();
        fd = open("/dev/null", O_WRONLY | O_CLOEXEC);
        if (fd < 0)
                abort();
        kb_log_setup(KB_LOG_DEBUG, json, fd, "fuzz");
}

/* A NUL-terminated malloc()ed copy of @p size bytes at @p data (aborts on
 * ENOMEM: never a finding). */
static inline char *fuzz_strndup(const uint8_t *data, size_t size)
{
        char *s = malloc(size + 1);

        if (!s)
                abort();
        if (size)
                memcpy(s, data, size);
        s[size] = '\0';
        return s;
}

/*
 * Splits an input into fields at @p sep: each call returns the next field
 * (a malloc()ed NUL-terminated copy, free() it) and advances *data and *size
 * past the separator; the last field runs to the end of the input.
 * NULL once the input is used up.
 */
static inline char *fuzz_field(const uint8_t **data, size_t *size, char sep)
{
        const uint8_t *p = *data, *end;
        size_t n;
        char *s;

        if (!p)
                return NULL;
        end = memchr(p, sep, *size);
        n = end ? (size_t)(end - p) : *size;
        s = fuzz_strndup(p, n);
        if (end) {
                *size -= n + 1;
                *data = end + 1;
        } else {
                *size = 0;
                *data = NULL;
        }
        return s;
}

/*
 * Non-zero when @p s holds a JWT-shaped substring as kb_log_scrub()
 * defines it (log.c): "eyJ" starting a base64url run, '.', a non-empty
 * base64url run, '.', a base64url run. Scrubbed text must hold none.
 */
static inline int fuzz_has_jwt(const char *s)
{
        const char *p;

        for (p = s; (p = strstr(p, "eyJ")) != NULL; p++) {
                size_t i = 0;
                int part, ok = 1;
#define FUZZ_B64URL(c)                                                         \
        (((c) >= 'A' && (c) <= 'Z') || ((c) >= 'a' && (c) <= 'z') ||           \
         ((c) >= '0' && (c) <= '9') || (c) == '-' || (c) == '_')
                for (part = 0; part < 2 && ok; part++) {
                        size_t start = i;
                        while (FUZZ_B64URL(p[i]))
                                i++;
                        ok = i > start && p[i] == '.';
                        i++;
                }
#undef FUZZ_B64URL
                if (ok)
                        return 1;
        }
        return 0;
}

/* Unix time the targets use as "now": the envelope vectors' opener time
 * (2026-11-22T00:10:00Z), so that the seeds made from them are in date. */
#define FUZZ_NOW INT64_C(1795306200)

#endif /* KB_FUZZ_H */
