/* log.c -- levelled logging (text or JSON lines) with secret redaction */
#include "log.h"

#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <errno.h>
#include <sys/time.h>

volatile int kb_log_level = KB_LOG_INFO;

static int log_json;
static int log_fd = 2;
static char log_prog[32] = "kyc-bridge";

static const char *level_names[] = { "emerg", "alert", "crit",   "error",
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

static int is_b64url(char c)
{
        return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
               (c >= '0' && c <= '9') || c == '-' || c == '_';
}

/* Length of a JWT (three dot-separated base64url parts, first one starting
 * "eyJ") at @p s, or 0. */
static size_t jwt_len(const char *s)
{
        size_t i = 0;
        int part;

        if (strncmp(s, "eyJ", 3) != 0)
                return 0;
        for (part = 0; part < 3; part++) {
                size_t start = i;
                while (is_b64url(s[i]))
                        i++;
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
                size_t n = jwt_len(s);
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
                out[o++] = *s++;
        }
        out[o] = '\0';
}

static void json_escape_into(kb_buf_t *b, const char *s)
{
        for (; *s; s++) {
                unsigned char c = (unsigned char)*s;
                switch (c) {
                case '"':
                        kb_buf_puts(b, "\\\"");
                        break;
                case '\\':
                        kb_buf_puts(b, "\\\\");
                        break;
                case '\n':
                        kb_buf_puts(b, "\\n");
                        break;
                case '\r':
                        kb_buf_puts(b, "\\r");
                        break;
                case '\t':
                        kb_buf_puts(b, "\\t");
                        break;
                default:
                        if (c < 0x20)
                                kb_buf_printf(b, "\\u%04x", c);
                        else
                                kb_buf_append(b, s, 1);
                }
        }
}

void kb_log_write(int level, const char *fac, const char *fmt, ...)
{
        char msg[2048], clean[2048], ts[40];
        kb_buf_t line = KB_BUF_INIT;
        struct timeval tv;
        struct tm tm;
        va_list ap;
        size_t off = 0;
        int saved_errno = errno;

        va_start(ap, fmt);
        vsnprintf(msg, sizeof(msg), fmt, ap);
        va_end(ap);
        kb_log_scrub(msg, clean, sizeof(clean));

        gettimeofday(&tv, NULL);
        gmtime_r(&tv.tv_sec, &tm);
        strftime(ts, sizeof(ts), "%Y-%m-%dT%H:%M:%S", &tm);

        if (log_json) {
                kb_buf_printf(&line, "{\"ts\":\"%s.%03ldZ\",\"level\":\"%s\","
                              "\"prog\":\"", ts, (long)(tv.tv_usec / 1000),
                              kb_log_level2str(level));
                json_escape_into(&line, log_prog);
                kb_buf_puts(&line, "\",\"fac\":\"");
                json_escape_into(&line, fac ? fac : "");
                kb_buf_puts(&line, "\",\"msg\":\"");
                json_escape_into(&line, clean);
                kb_buf_puts(&line, "\"}\n");
        } else {
                kb_buf_printf(&line, "%s.%03ldZ %s %-6s %s: %s\n", ts,
                              (long)(tv.tv_usec / 1000), log_prog,
                              kb_log_level2str(level), fac ? fac : "-", clean);
        }
        if (line.data) {
                while (off < line.len) {
                        ssize_t w = write(log_fd, line.data + off,
                                          line.len - off);
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
