/* log.c -- levelled logging (text or JSON lines) with secret redaction */
#include "log.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <errno.h>
#include <sys/time.h>

#include <sodium.h>

#include "json.h"
#include "utf8.h"

volatile int kb_log_level = KB_LOG_INFO;

static int log_json;
static int log_fd = 2;
static char log_prog[32] = "kyc-bridge";

/* the record this thread works on (kb_log_set_trace()), or "" */
static _Thread_local char log_trace[KB_LOG_TRACE_BYTES];

static const char *level_names[] = { "emerg", "alert",  "crit", "error",
                                     "warn",  "notice", "info", "debug" };

void kb_log_setup(int level, int json, int fd, const char *program)
{
        if (level < KB_LOG_ERROR)
                level = KB_LOG_ERROR;
        if (level > KB_LOG_DEBUG)
                level = KB_LOG_DEBUG;
        kb_log_level = level;
        log_json = json;
        log_fd = fd;
        if (program)
                kb_strlcpy(log_prog, program, sizeof(log_prog));
}

int kb_log_level_parse(const char *s)
{
        int i;

        for (i = KB_LOG_ERROR; i <= KB_LOG_DEBUG; i++)
                if (!strcmp(s, level_names[i]))
                        return i;
        return -1;
}

const char *kb_log_level2str(int level)
{
        if (level < 0 || level > KB_LOG_DEBUG)
                return "?";
        return level_names[level];
}

void kb_log_set_trace(const char *trace_id)
{
        size_t i;

        /* checked before log_trace changes: @p trace_id may be
         * kb_log_trace() itself */
        for (i = 0; trace_id && i < 32; i++)
                if (!((trace_id[i] >= '0' && trace_id[i] <= '9') ||
                      (trace_id[i] >= 'a' && trace_id[i] <= 'f')))
                        break;
        if (!trace_id || i < 32 || trace_id[32] != '\0') {
                log_trace[0] = '\0';
                return;
        }
        memmove(log_trace, trace_id, KB_LOG_TRACE_BYTES);
}

void kb_log_trace_push(const char *trace_id, char saved[KB_LOG_TRACE_BYTES])
{
        memcpy(saved, log_trace, KB_LOG_TRACE_BYTES);
        kb_log_set_trace(trace_id);
}

void kb_log_trace_pop(const char saved[KB_LOG_TRACE_BYTES])
{
        /* "" (nothing was set) clears */
        kb_log_set_trace(saved);
}

const char *kb_log_trace(void)
{
        return log_trace;
}

static int is_b64url(char c)
{
        return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
               (c >= '0' && c <= '9') || c == '-' || c == '_';
}

/* Length of a JWT (three dot-separated base64url parts, first one starting
 * "eyJ") at @p s, or 0. On 0, @p skip says how many bytes can be copied
 * unchanged: a failed match fails for every start inside the same first
 * part too (the parts after it are the same), so scrubbing stays linear
 * even for input like "eyJeyJeyJ...". */
static size_t jwt_len(const char *s, size_t *skip)
{
        size_t i = 0;
        int part;

        *skip = 1;
        if (strncmp(s, "eyJ", 3) != 0)
                return 0;
        for (part = 0; part < 3; part++) {
                size_t start = i;
                while (is_b64url(s[i]))
                        i++;
                if (part == 0)
                        *skip = i;
                if (i == start && part < 2)
                        return 0;
                if (part < 2) {
                        if (s[i] != '.')
                                return 0;
                        i++;
                }
        }
        return i;
}

void kb_log_scrub(const char *s, char *out, size_t out_size)
{
        size_t o = 0;

        if (!out_size)
                return;
        while (*s && o + 1 < out_size) {
                size_t skip, n = jwt_len(s, &skip);
                if (n) {
                        char d[KB_DIGEST_STR_BYTES];
                        char rep[32];
                        size_t rl;
                        kb_digest_str(s, n, d);
                        rl = (size_t)snprintf(rep, sizeof(rep), "[jwt %s]", d);
                        if (o + rl >= out_size)
                                break;
                        memcpy(out + o, rep, rl);
                        o += rl;
                        s += n;
                        continue;
                }
                while (skip-- > 0 && o + 1 < out_size)
                        out[o++] = *s++;
        }
        out[o] = '\0';
}

/* JSON string (kb_json_put_string_ex): bytes that are not UTF-8 (binary
 * data, a character cut by truncation) become U+FFFD, so that every line
 * is valid JSON. */
static void json_escape_into(kb_buf_t *b, const char *s)
{
        (void)kb_json_put_string_ex(b, s, strlen(s), KB_JSON_UTF8_REPLACE);
}

/* Text lines: control characters and bytes that are not UTF-8 are escaped
 * so that one call can never produce more than one line (or terminal
 * escape sequences). */
static void text_escape_into(kb_buf_t *b, const char *s)
{
        (void)kb_utf8_escape_text(b, s, strlen(s), KB_UTF8_ESC_LINE);
}

void kb_log_write(int level, const char *fac, const char *fmt, ...)
{
        char msg[2048], clean[2048], ts[40];
        kb_buf_t line = KB_BUF_INIT;
        struct timeval tv;
        struct tm tm;
        va_list ap;
        size_t off = 0;
        char *big = NULL;
        int saved_errno = errno, n;

        /* direct callers (librdkafka's log callback) bypass the macros */
        if (level > kb_log_level)
                return;
        va_start(ap, fmt);
        n = vsnprintf(msg, sizeof(msg), fmt, ap);
        va_end(ap);
        if (n < 0) {
                msg[0] = '\0';
                n = 0;
        }
        /* Scrub the whole message before cutting it: a token cut in two by
         * the cut would no longer look like a JWT and would leak. */
        if (n >= (int)sizeof(msg)) {
                big = malloc((size_t)n + 1);
                if (big) {
                        va_start(ap, fmt);
                        vsnprintf(big, (size_t)n + 1, fmt, ap);
                        va_end(ap);
                }
        }
        kb_log_scrub(big ? big : msg, clean, sizeof(clean));
        if (big) {
                sodium_memzero(big, (size_t)n);
                free(big);
        } else if (n >= (int)sizeof(msg)) {
                /* no memory for the whole message: drop the cut-off tail
                 * word, which may be the start of a token */
                char *sp = strrchr(clean, ' ');
                if (sp)
                        *sp = '\0';
                else
                        clean[0] = '\0';
        }

        gettimeofday(&tv, NULL);
        gmtime_r(&tv.tv_sec, &tm);
        strftime(ts, sizeof(ts), "%Y-%m-%dT%H:%M:%S", &tm);

        if (log_json) {
                kb_buf_printf(&line,
                              "{\"ts\":\"%s.%03ldZ\",\"level\":\"%s\","
                              "\"prog\":",
                              ts, (long)(tv.tv_usec / 1000),
                              kb_log_level2str(level));
                json_escape_into(&line, log_prog);
                kb_buf_puts(&line, ",\"fac\":");
                json_escape_into(&line, fac ? fac : "");
                kb_buf_puts(&line, ",\"msg\":");
                json_escape_into(&line, clean);
                if (log_trace[0])
                        kb_buf_printf(&line, ",\"trace_id\":\"%s\"", log_trace);
                kb_buf_puts(&line, "}\n");
        } else {
                kb_buf_printf(&line, "%s.%03ldZ %s %-6s %s: ", ts,
                              (long)(tv.tv_usec / 1000), log_prog,
                              kb_log_level2str(level), fac ? fac : "-");
                text_escape_into(&line, clean);
                if (log_trace[0])
                        kb_buf_printf(&line, " trace_id=%s", log_trace);
                kb_buf_puts(&line, "\n");
        }
        if (line.data) {
                while (off < line.len) {
                        ssize_t w =
                            write(log_fd, line.data + off, line.len - off);
                        if (w < 0 && errno == EINTR)
                                continue;
                        if (w <= 0)
                                break;
                        off += (size_t)w;
                }
        }
        kb_buf_free(&line, 0);
        errno = saved_errno;
}
