/* test_log.c -- unit tests for log.c: levels, text/JSON lines, JWT scrubbing */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <regex.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "json.h"
#include "kyc_bridge.h"
#include "log.h"
#include "util.h"

/* A JWT-shaped token (HS256 header, payload, signature) and its pieces. */
#define JWT_HDR "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9"
#define JWT_PAY "eyJzdWIiOiJzaGFyZSIsImFwcCI6IjEyMyJ9"
#define JWT_SIG "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"
#define JWT     JWT_HDR "." JWT_PAY "." JWT_SIG

typedef struct {
        int rd, wr;
} logpipe_t;

static int setup_pipe(void **state)
{
        logpipe_t *p = calloc(1, sizeof(*p));
        int fds[2];

        if (!p || pipe(fds) == -1) {
                free(p);
                return -1;
        }
        if (fcntl(fds[0], F_SETFL, O_NONBLOCK) == -1) {
                close(fds[0]);
                close(fds[1]);
                free(p);
                return -1;
        }
        p->rd = fds[0];
        p->wr = fds[1];
        *state = p;
        return 0;
}

static int teardown_pipe(void **state)
{
        logpipe_t *p = *state;

        kb_log_setup(KB_LOG_INFO, 0, 2, "kyc-bridge");
        close(p->rd);
        close(p->wr);
        free(p);
        return 0;
}

/* Everything written to the pipe so far, as a malloc()ed string. */
static char *drain(logpipe_t *p)
{
        kb_buf_t b = KB_BUF_INIT;
        char chunk[4096];
        ssize_t n;

        assert_int_equal(kb_buf_reserve(&b, 0), 0);
        while ((n = read(p->rd, chunk, sizeof(chunk))) > 0)
                assert_int_equal(kb_buf_append(&b, chunk, (size_t)n), 0);
        assert_true(n == -1 && (errno == EAGAIN || errno == EWOULDBLOCK));
        return kb_buf_steal(&b, NULL);
}

static size_t count_char(const char *s, char c)
{
        size_t n = 0;

        for (; *s; s++)
                n += *s == c;
        return n;
}

/* Parses one JSON log line (without its '\n') strictly. */
static json_object *parse_line(const char *line, size_t len)
{
        char err[128] = "";
        json_object *o = kb_json_parse(line, len, 4, err, sizeof(err));

        if (!o)
                fail_msg("log line is not valid JSON (%s): %.*s", err, (int)len,
                         line);
        assert_true(json_object_is_type(o, json_type_object));
        return o;
}

/* --------------------------------------------------------------- scrub */

static void scrub_str(const char *in, char *out, size_t outsz)
{
        kb_log_scrub(in, out, outsz);
}

static void test_scrub_replaces_jwt(void **state)
{
        char out[512], want[512], d[KB_DIGEST_STR_BYTES];

        (void)state;
        kb_digest_str(JWT, strlen(JWT), d);
        scrub_str("token=" JWT " rest", out, sizeof(out));
        kb_snprintf(want, sizeof(want), "token=[jwt %s] rest", d);
        assert_string_equal(out, want);
        assert_null(strstr(out, "eyJ"));
        assert_null(strstr(out, JWT_SIG));

        /* at the very start and end, glued to other characters */
        scrub_str(JWT, out, sizeof(out));
        kb_snprintf(want, sizeof(want), "[jwt %s]", d);
        assert_string_equal(out, want);
        scrub_str("x" JWT "\"", out, sizeof(out));
        kb_snprintf(want, sizeof(want), "x[jwt %s]\"", d);
        assert_string_equal(out, want);

        /* two tokens, each with its own digest */
        {
                char d2[KB_DIGEST_STR_BYTES];
                static const char jwt2[] = "eyJ0eXAiOiJKV1QifQ.e30.";
                kb_digest_str(jwt2, strlen(jwt2), d2);
                scrub_str("a " JWT " b eyJ0eXAiOiJKV1QifQ.e30. c", out,
                          sizeof(out));
                kb_snprintf(want, sizeof(want), "a [jwt %s] b [jwt %s] c", d,
                            d2);
                assert_string_equal(out, want);
        }
}

static void test_scrub_leaves_other_text(void **state)
{
        static const char *const keep[] = {
                "",
                "plain text, nothing to see",
                "e.g. eyJ alone",
                "eyJhbGciOiJIUzI1NiJ9 without dots",
                "eyJabc.def has two parts only",
                "eyJ.abc missing header body",
                "version 1.2.3 and host a.b.c",
                "eyj.lower.case is not a JWT header",
                "unicode \xc3\xa9\xe2\x82\xac stays",
                "\"quoted\" and \\back\\slashes",
        };
        char out[256];
        size_t i;

        (void)state;
        for (i = 0; i < KB_ARRAY_SIZE(keep); i++) {
                scrub_str(keep[i], out, sizeof(out));
                assert_string_equal(out, keep[i]);
        }
}

/* Property: for every output size, the output is NUL-terminated within the
 * buffer, a prefix of the full scrubbed text, and never holds a piece of
 * the token. */
static void test_scrub_truncation(void **state)
{
        static const char in[] = "pre " JWT " mid " JWT " post";
        char full[512], out[512];
        size_t sz, flen;

        (void)state;
        scrub_str(in, full, sizeof(full));
        flen = strlen(full);
        assert_null(strstr(full, "eyJ"));
        for (sz = 1; sz < flen + 8; sz++) {
                memset(out, 'Z', sizeof(out));
                scrub_str(in, out, sz);
                assert_true(strlen(out) < sz);
                assert_memory_equal(out, full, strlen(out));
                assert_null(strstr(out, "eyJ"));
                assert_null(strstr(out, JWT_PAY));
                /* nothing written past the buffer */
                assert_int_equal(out[sz], 'Z');
        }
        /* size 0: nothing written at all */
        memset(out, 'Z', sizeof(out));
        scrub_str(in, out, 0);
        assert_int_equal(out[0], 'Z');
}

/* Worst-case input for a naive scanner (runs of "eyJ" that never complete
 * a token) is scrubbed in linear time, and a token after it is still
 * found. */
static void test_scrub_linear_time(void **state)
{
        size_t n = 4u << 20, i, shape;
        char *in = malloc(n + sizeof(JWT) + 16);
        char *out = malloc(n + 64);
        int64_t t0;

        (void)state;
        assert_non_null(in);
        assert_non_null(out);
        for (shape = 0; shape < 3; shape++) {
                /* 0: eyJeyJ...   1: eyJa.eyJeyJ...   2: eyJ...eyJ.eyJ...eyJ */
                size_t dot = shape == 0 ? n : shape == 1 ? 4 : n / 2;
                for (i = 0; i + 3 <= n; i += 3)
                        memcpy(in + i, "eyJ", 3);
                if (shape == 1)
                        in[3] = 'a';
                if (dot < n)
                        in[dot] = '.';
                in[i] = ' ';
                memcpy(in + i + 1, JWT, sizeof(JWT));
                t0 = kb_mono_ms();
                kb_log_scrub(in, out, n + 64);
                /* a quadratic scan would take hours here */
                if (kb_mono_ms() - t0 > 10000)
                        fail_msg("scrubbing 4 MiB (shape %zu) took %lld ms",
                                 shape, (long long)(kb_mono_ms() - t0));
                assert_memory_equal(out, in, i + 1);
                assert_memory_equal(out + i + 1, "[jwt d:", 7);
                assert_null(strstr(out, JWT_SIG));
        }
        free(in);
        free(out);
}

/* ------------------------------------------------------------- levels */

static void test_level_parse(void **state)
{
        static const char *const names[] = { "error", "warn", "notice", "info",
                                             "debug" };
        size_t i;

        (void)state;
        for (i = 0; i < KB_ARRAY_SIZE(names); i++) {
                int l = kb_log_level_parse(names[i]);
                assert_int_equal(l, KB_LOG_ERROR + (int)i);
                assert_string_equal(kb_log_level2str(l), names[i]);
        }
        assert_int_equal(kb_log_level_parse("INFO"), -1);
        assert_int_equal(kb_log_level_parse("verbose"), -1);
        assert_int_equal(kb_log_level_parse(""), -1);
        assert_int_equal(kb_log_level_parse("emerg"), -1);
        assert_string_equal(kb_log_level2str(99), "?");
        assert_string_equal(kb_log_level2str(-1), "?");
}

static int side_effects;

static int bump(void)
{
        return ++side_effects;
}

static void test_level_filtering(void **state)
{
        logpipe_t *p = *state;
        char *out;

        kb_log_setup(KB_LOG_INFO, 0, p->wr, "t");
        side_effects = 0;
        kb_log_debug("fac", "debug line %d", bump());
        /* the macro checks the level before evaluating its arguments */
        assert_int_equal(side_effects, 0);
        out = drain(p);
        assert_string_equal(out, "");
        free(out);

        kb_log_info("fac", "info line %d", bump());
        kb_log_notice("fac", "notice line");
        kb_log_warn("fac", "warn line");
        kb_log_error("fac", "error line");
        out = drain(p);
        assert_int_equal(count_char(out, '\n'), 4);
        assert_non_null(strstr(out, "info line 1"));
        assert_non_null(strstr(out, "error line"));
        assert_null(strstr(out, "debug line"));
        free(out);

        /* a direct call (e.g. from librdkafka's log callback) is filtered
         * the same way */
        kb_log_write(KB_LOG_DEBUG, "rdkafka", "chatty %s", "debug");
        out = drain(p);
        assert_string_equal(out, "");
        free(out);

        kb_log_setup(KB_LOG_ERROR, 0, p->wr, "t");
        kb_log_warn("fac", "warn line");
        kb_log_error("fac", "error only");
        out = drain(p);
        assert_int_equal(count_char(out, '\n'), 1);
        assert_non_null(strstr(out, "error only"));
        free(out);

        kb_log_setup(KB_LOG_DEBUG, 0, p->wr, "t");
        kb_log_debug("fac", "now visible %d", bump());
        assert_int_equal(side_effects, 2);
        out = drain(p);
        assert_non_null(strstr(out, "now visible 2"));
        free(out);

        /* out-of-range levels are clamped */
        kb_log_setup(99, 0, p->wr, "t");
        assert_int_equal(kb_log_level, KB_LOG_DEBUG);
        kb_log_setup(0, 0, p->wr, "t");
        assert_int_equal(kb_log_level, KB_LOG_ERROR);
}

/* -------------------------------------------------------------- text */

static void test_text_format(void **state)
{
        logpipe_t *p = *state;
        regex_t re;
        char *out;
        int saved;

        kb_log_setup(KB_LOG_INFO, 0, p->wr, "kyc-test");
        errno = EPIPE;
        kb_log_write(KB_LOG_WARN, "conf", "value %d of %s", 7, "x");
        saved = errno;
        assert_int_equal(saved, EPIPE); /* errno preserved */
        kb_log_write(KB_LOG_INFO, NULL, "no facility");
        out = drain(p);
        assert_int_equal(
            regcomp(&re,
                    "^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:"
                    "[0-9]{2}\\.[0-9]{3}Z kyc-test warn   conf: "
                    "value 7 of x\n"
                    "[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9:.]{12}Z "
                    "kyc-test info   -: no facility\n$",
                    REG_EXTENDED),
            0);
        if (regexec(&re, out, 0, NULL, 0) != 0)
                fail_msg("unexpected text log output: %s", out);
        regfree(&re);
        free(out);
}

/* One call, one line: embedded newlines and control characters cannot
 * forge extra lines in text mode. */
static void test_text_one_line(void **state)
{
        logpipe_t *p = *state;
        char *out;

        kb_log_setup(KB_LOG_INFO, 0, p->wr, "t");
        kb_log_info("fac", "first\n2026-11-22T00:00:00.000Z t error forged: "
                           "x\rcr\x1b[31mesc");
        out = drain(p);
        assert_int_equal(count_char(out, '\n'), 1);
        assert_null(strchr(out, '\r'));
        assert_null(strchr(out, '\x1b'));
        assert_non_null(strstr(out, "first"));
        assert_non_null(strstr(out, "forged"));
        free(out);
}

/* Text lines carry no C1 control (U+009B is a terminal's CSI too) and no
 * broken UTF-8: both come out as \xNN; good UTF-8 stays as it is. */
static void test_text_escapes_c1_and_bad_utf8(void **state)
{
        logpipe_t *p = *state;
        char *out;

        kb_log_setup(KB_LOG_INFO, 0, p->wr, "t");
        kb_log_info("fac", "a\xc2\x9b"
                           "31m b\xff c\xc3 d\xe2\x82\xac e\tf\\g");
        out = drain(p);
        assert_int_equal(count_char(out, '\n'), 1);
        assert_non_null(strstr(out, "a\\xc2\\x9b31m b\\xff c\\xc3 "
                                    "d\xe2\x82\xac e\tf\\g\n"));
        assert_null(strstr(out, "\xc2\x9b"));
        assert_null(strchr(out, '\xff'));
        free(out);
}

/* -------------------------------------------------------------- JSON */

static void test_json_lines_valid(void **state)
{
        static const char *const msgs[] = {
                "simple",
                "quote \" backslash \\ slash /",
                "newline\nand\r\ncarriage\ttab",
                "control \x01\x02\x1f\x7f bytes",
                "utf-8 \xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80",
                "{\"looks\":\"like json\"}",
                "",
        };
        logpipe_t *p = *state;
        char *out, *line, *nl;
        size_t i;

        kb_log_setup(KB_LOG_DEBUG, 1, p->wr, "pr\"og");
        for (i = 0; i < KB_ARRAY_SIZE(msgs); i++)
                kb_log_write(KB_LOG_NOTICE, "fa\nc", "%s", msgs[i]);
        out = drain(p);
        assert_int_equal(count_char(out, '\n'), KB_ARRAY_SIZE(msgs));
        line = out;
        for (i = 0; i < KB_ARRAY_SIZE(msgs); i++) {
                json_object *o;
                const char *ts;
                nl = strchr(line, '\n');
                assert_non_null(nl);
                o = parse_line(line, (size_t)(nl - line));
                assert_string_equal(kb_json_get_str(o, "msg"), msgs[i]);
                assert_string_equal(kb_json_get_str(o, "level"), "notice");
                assert_string_equal(kb_json_get_str(o, "prog"), "pr\"og");
                assert_string_equal(kb_json_get_str(o, "fac"), "fa\nc");
                ts = kb_json_get_str(o, "ts");
                assert_non_null(ts);
                assert_int_equal(strlen(ts), 24);
                assert_int_equal(ts[23], 'Z');
                assert_int_equal(json_object_object_length(o), 5);
                json_object_put(o);
                line = nl + 1;
        }
        assert_string_equal(line, "");
        free(out);
}

/* Bytes that are not UTF-8 must not make the line invalid JSON. */
static void test_json_invalid_utf8(void **state)
{
        static const char *const msgs[] = {
                "bad \xff byte",          "lone continuation \x80 here",
                "truncated \xc3",         "overlong \xc0\xaf",
                "surrogate \xed\xa0\x80", "too big \xf4\x90\x80\x80",
        };
        logpipe_t *p = *state;
        char *out, *line, *nl;
        size_t i;

        kb_log_setup(KB_LOG_INFO, 1, p->wr, "t");
        for (i = 0; i < KB_ARRAY_SIZE(msgs); i++)
                kb_log_info("f", "%s", msgs[i]);
        out = drain(p);
        line = out;
        for (i = 0; i < KB_ARRAY_SIZE(msgs); i++) {
                json_object *o;
                const char *m;
                nl = strchr(line, '\n');
                assert_non_null(nl);
                o = parse_line(line, (size_t)(nl - line));
                m = kb_json_get_str(o, "msg");
                assert_non_null(m);
                /* the readable part survives */
                assert_memory_equal(m, msgs[i], 4);
                json_object_put(o);
                line = nl + 1;
        }
        free(out);
}

/* A long message is cut, but the line stays valid JSON even when the cut
 * falls inside a multi-byte character. */
static void test_json_long_message(void **state)
{
        logpipe_t *p = *state;
        kb_buf_t m = KB_BUF_INIT;
        char *out;
        json_object *o;
        size_t i, len;
        int shift;

        kb_log_setup(KB_LOG_INFO, 1, p->wr, "t");
        for (shift = 0; shift < 4; shift++) {
                kb_buf_reset(&m);
                for (i = 0; i < (size_t)shift; i++)
                        kb_buf_puts(&m, "a");
                for (i = 0; i < 3000; i++)
                        kb_buf_puts(&m, "\xe2\x82\xac"); /* euro sign */
                kb_log_info("f", "%s", m.data);
                out = drain(p);
                len = strlen(out);
                assert_true(len > 1000);
                assert_int_equal(out[len - 1], '\n');
                assert_int_equal(count_char(out, '\n'), 1);
                o = parse_line(out, len - 1);
                assert_non_null(kb_json_get_str(o, "msg"));
                json_object_put(o);
                free(out);
        }
        kb_buf_free(&m, 0);
}

/* A token never reaches the log, in either format, wherever it sits. */
static void test_jwt_never_written(void **state)
{
        logpipe_t *p = *state;
        char d[KB_DIGEST_STR_BYTES], *out;
        kb_buf_t pad = KB_BUF_INIT;
        int json;
        size_t i;

        kb_digest_str(JWT, strlen(JWT), d);
        for (json = 0; json < 2; json++) {
                kb_log_setup(KB_LOG_INFO, json, p->wr, "t");
                kb_log_error("vendor", "share failed for token %s", JWT);
                kb_log_warn("vendor", "%s", "{\"share_token\":\"" JWT "\"}");
                out = drain(p);
                assert_null(strstr(out, JWT_HDR));
                assert_null(strstr(out, JWT_PAY));
                assert_null(strstr(out, JWT_SIG));
                assert_non_null(strstr(out, d));
                free(out);

                /* the token straddles the message length limit: no piece of
                 * it may be written */
                for (i = 1900; i < 2100; i += 7) {
                        kb_buf_reset(&pad);
                        while (pad.len < i)
                                kb_buf_puts(&pad, "x");
                        kb_log_info("f", "%s%s tail", pad.data, JWT);
                        out = drain(p);
                        assert_int_equal(count_char(out, '\n'), 1);
                        if (strstr(out, "eyJ") || strstr(out, JWT_SIG + 10))
                                fail_msg("token piece written with %zu bytes "
                                         "of padding (json=%d)",
                                         i, json);
                        free(out);
                }
        }
        kb_buf_free(&pad, 0);
}

/* -------------------------------------------------------------- threads */

#define THREADS 4
#define LINES   200

static void *log_thread(void *arg)
{
        int id = (int)(intptr_t)arg, i;

        for (i = 0; i < LINES; i++)
                kb_log_info("thr", "thread %d line %d %s", id, i,
                            "padding padding padding padding padding");
        return NULL;
}

typedef struct {
        int fd;
        kb_buf_t out;
} reader_t;

/* Reads until end of file, so that writers never block on a full pipe. */
static void *reader_thread(void *arg)
{
        reader_t *r = arg;
        char chunk[4096];
        ssize_t n;

        while ((n = read(r->fd, chunk, sizeof(chunk))) != 0) {
                if (n < 0 && errno == EINTR)
                        continue;
                if (n < 0 || kb_buf_append(&r->out, chunk, (size_t)n) == -1)
                        break;
        }
        return NULL;
}

/* Lines from concurrent threads never interleave (one write per line). */
static void test_threads_whole_lines(void **state)
{
        pthread_t th[THREADS], rd;
        reader_t r = { -1, KB_BUF_INIT };
        int seen[THREADS] = { 0 };
        char *line, *nl;
        int i, n = 0, fds[2];

        (void)state;
        assert_int_equal(pipe(fds), 0);
        r.fd = fds[0];
        assert_int_equal(kb_buf_reserve(&r.out, 0), 0);
        assert_int_equal(pthread_create(&rd, NULL, reader_thread, &r), 0);
        kb_log_setup(KB_LOG_INFO, 1, fds[1], "t");
        for (i = 0; i < THREADS; i++)
                assert_int_equal(pthread_create(&th[i], NULL, log_thread,
                                                (void *)(intptr_t)i),
                                 0);
        for (i = 0; i < THREADS; i++)
                pthread_join(th[i], NULL);
        kb_log_setup(KB_LOG_INFO, 0, 2, "kyc-bridge");
        close(fds[1]);
        pthread_join(rd, NULL);
        close(fds[0]);
        for (line = r.out.data; (nl = strchr(line, '\n')) != NULL;
             line = nl + 1) {
                json_object *o = parse_line(line, (size_t)(nl - line));
                int id = -1, ln = -1;
                const char *m = kb_json_get_str(o, "msg");
                assert_non_null(m);
                assert_int_equal(sscanf(m, "thread %d line %d", &id, &ln), 2);
                assert_true(id >= 0 && id < THREADS);
                assert_int_equal(ln, seen[id]); /* in order per thread */
                seen[id]++;
                n++;
                json_object_put(o);
        }
        assert_string_equal(line, "");
        assert_int_equal(n, THREADS * LINES);
        kb_buf_free(&r.out, 0);
}

/* ------------------------------------------------- the trace context */

#define TID  "4bf92f3577b34da6a3ce929d0e0e4736"
#define TID2 "0af7651916cd43dd8448eb211c80319c"

/* Text: " trace_id=<id>" ends every line the thread writes while set;
 * cleared, nothing. */
static void test_trace_text(void **state)
{
        logpipe_t *p = *state;
        char *out, *nl;

        kb_log_setup(KB_LOG_INFO, 0, p->wr, "t");
        kb_log_set_trace(TID);
        assert_string_equal(kb_log_trace(), TID);
        kb_log_info("fac", "share s1: published");
        kb_log_set_trace(NULL);
        assert_string_equal(kb_log_trace(), "");
        kb_log_info("fac", "no record");
        out = drain(p);
        nl = strchr(out, '\n');
        assert_non_null(nl);
        *nl = '\0';
        assert_non_null(strstr(out, "fac: share s1: published trace_id=" TID));
        assert_int_equal(strlen(strstr(out, "trace_id=")),
                         strlen("trace_id=") + 32);
        assert_null(strstr(nl + 1, "trace_id"));
        assert_non_null(strstr(nl + 1, "fac: no record\n"));
        free(out);
}

/* JSON: a "trace_id" member, the line still valid JSON. */
static void test_trace_json(void **state)
{
        logpipe_t *p = *state;
        json_object *o;
        char *out, *nl;

        kb_log_setup(KB_LOG_INFO, 1, p->wr, "t");
        kb_log_set_trace(TID);
        kb_log_info("fac", "with \"quotes\"");
        kb_log_set_trace(NULL);
        kb_log_info("fac", "without");
        out = drain(p);
        nl = strchr(out, '\n');
        assert_non_null(nl);
        o = parse_line(out, (size_t)(nl - out));
        assert_string_equal(kb_json_get_str(o, "trace_id"), TID);
        assert_string_equal(kb_json_get_str(o, "msg"), "with \"quotes\"");
        assert_int_equal(json_object_object_length(o), 6);
        json_object_put(o);
        o = parse_line(nl + 1, strlen(nl + 1) - 1);
        assert_null(kb_json_get(o, "trace_id"));
        assert_int_equal(json_object_object_length(o), 5);
        json_object_put(o);
        free(out);
}

/* Only a trace id (32 lowercase hex) is taken: anything else clears the
 * context, so nothing else can reach a line through it. */
static void test_trace_refuses_other_text(void **state)
{
        static const char *const bad[] = {
                "",
                "4BF92F3577B34DA6A3CE929D0E0E4736",   /* uppercase */
                "4bf92f3577b34da6a3ce929d0e0e473",    /* 31 */
                "4bf92f3577b34da6a3ce929d0e0e47361",  /* 33 */
                "4bf92f3577b34da6a3ce929d0e0e473g",   /* not hex */
                "4bf92f3577b34da6\na3ce929d0e0e4736", /* a newline */
        };
        size_t i;

        (void)state;
        for (i = 0; i < KB_ARRAY_SIZE(bad); i++) {
                kb_log_set_trace(TID);
                kb_log_set_trace(bad[i]);
                assert_string_equal(kb_log_trace(), "");
        }
}

static void *other_thread(void *arg)
{
        char *seen = arg;

        /* starts clear, whatever the creating thread has set */
        strcpy(seen, kb_log_trace());
        kb_log_set_trace(TID2);
        kb_log_info("thr", "other");
        return NULL;
}

/* Per thread: a context set on one thread is not on another's lines, and
 * the other's does not change ours. */
static void test_trace_per_thread(void **state)
{
        logpipe_t *p = *state;
        char seen[64] = "x", *out, *a, *b;
        pthread_t th;

        kb_log_setup(KB_LOG_INFO, 0, p->wr, "t");
        kb_log_set_trace(TID);
        assert_int_equal(pthread_create(&th, NULL, other_thread, seen), 0);
        assert_int_equal(pthread_join(th, NULL), 0);
        assert_string_equal(seen, "");
        assert_string_equal(kb_log_trace(), TID);
        kb_log_info("main", "mine");
        kb_log_set_trace(NULL);
        out = drain(p);
        a = strstr(out, "thr: other trace_id=" TID2 "\n");
        b = strstr(out, "main: mine trace_id=" TID "\n");
        assert_non_null(a);
        assert_non_null(b);
        free(out);
}

/* A record's callback (outer) in which another record's vendor call
 * completes (inner), as when a vendor call finishes synchronously: the
 * inner work's lines carry its own id, and after it the outer work's
 * lines carry the outer id again; after the outer work, none. */
static void inner_callback(const char *id)
{
        char saved[KB_LOG_TRACE_BYTES];

        kb_log_trace_push(id, saved);
        kb_log_info("cb", "inner");
        kb_log_trace_pop(saved);
}

static void test_trace_nested(void **state)
{
        logpipe_t *p = *state;
        char saved[KB_LOG_TRACE_BYTES], *out;

        kb_log_setup(KB_LOG_INFO, 0, p->wr, "t");
        kb_log_set_trace(NULL);
        kb_log_trace_push(TID, saved);
        assert_string_equal(saved, "");
        kb_log_info("cb", "outer before");
        inner_callback(TID2);
        assert_string_equal(kb_log_trace(), TID);
        kb_log_info("cb", "outer after");
        /* inner work without a trace id: its lines carry none, not ours */
        inner_callback(NULL);
        inner_callback("not a trace id");
        assert_string_equal(kb_log_trace(), TID);
        kb_log_info("cb", "outer last");
        kb_log_trace_pop(saved);
        assert_string_equal(kb_log_trace(), "");
        kb_log_info("cb", "after");
        out = drain(p);
        assert_non_null(strstr(out, "cb: outer before trace_id=" TID "\n"));
        assert_non_null(strstr(out, "cb: inner trace_id=" TID2 "\n"));
        assert_non_null(strstr(out, "cb: outer after trace_id=" TID "\n"));
        assert_non_null(strstr(out, "cb: inner\n"));
        assert_null(strstr(out, "cb: inner trace_id=" TID "\n"));
        assert_non_null(strstr(out, "cb: outer last trace_id=" TID "\n"));
        assert_non_null(strstr(out, "cb: after\n"));
        free(out);

        /* setting the current id again keeps it */
        kb_log_set_trace(TID);
        kb_log_set_trace(kb_log_trace());
        assert_string_equal(kb_log_trace(), TID);
        kb_log_trace_push(kb_log_trace(), saved);
        assert_string_equal(saved, TID);
        assert_string_equal(kb_log_trace(), TID);
        kb_log_trace_pop(saved);
        assert_string_equal(kb_log_trace(), TID);
        kb_log_set_trace(NULL);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_scrub_replaces_jwt),
                cmocka_unit_test(test_scrub_leaves_other_text),
                cmocka_unit_test(test_scrub_truncation),
                cmocka_unit_test(test_scrub_linear_time),
                cmocka_unit_test(test_level_parse),
                cmocka_unit_test_setup_teardown(test_level_filtering,
                                                setup_pipe, teardown_pipe),
                cmocka_unit_test_setup_teardown(test_text_format, setup_pipe,
                                                teardown_pipe),
                cmocka_unit_test_setup_teardown(test_text_one_line, setup_pipe,
                                                teardown_pipe),
                cmocka_unit_test_setup_teardown(
                    test_text_escapes_c1_and_bad_utf8, setup_pipe,
                    teardown_pipe),
                cmocka_unit_test_setup_teardown(test_json_lines_valid,
                                                setup_pipe, teardown_pipe),
                cmocka_unit_test_setup_teardown(test_json_invalid_utf8,
                                                setup_pipe, teardown_pipe),
                cmocka_unit_test_setup_teardown(test_json_long_message,
                                                setup_pipe, teardown_pipe),
                cmocka_unit_test_setup_teardown(test_jwt_never_written,
                                                setup_pipe, teardown_pipe),
                cmocka_unit_test(test_threads_whole_lines),
                cmocka_unit_test_setup_teardown(test_trace_text, setup_pipe,
                                                teardown_pipe),
                cmocka_unit_test_setup_teardown(test_trace_json, setup_pipe,
                                                teardown_pipe),
                cmocka_unit_test(test_trace_refuses_other_text),
                cmocka_unit_test_setup_teardown(test_trace_per_thread,
                                                setup_pipe, teardown_pipe),
                cmocka_unit_test_setup_teardown(test_trace_nested, setup_pipe,
                                                teardown_pipe),
        };

        if (kb_init() != KB_OK)
                return 1;
        return cmocka_run_group_tests(tests, NULL, NULL);
}
