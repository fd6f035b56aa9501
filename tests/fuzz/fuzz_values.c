/* fuzz_values.c -- the small parsers of single untrusted values: Kafka
 * record headers of the trace context (kb_kafka_trace_get(): they come
 * with a partner's records), traceparent / tracestate, the vendor's
 * Retry-After and ISO 8601 times, integers, UUIDs, listen addresses, and
 * the printable copies and scrubbing every log line and message gets.
 *
 * Input: header lines "name=value" (tests/fuzz/README.md); every value
 * also goes through each value parser. */
/* fuzz-options: -max_len=8192 */
#include <librdkafka/rdkafka.h>
#include <time.h>

#include "conf.h"
#include "fuzz.h"
#include "http.h"
#include "kafka.h"
#include "mhd.h"
#include "trace.h"
#include "utf8.h"

#define MAX_HDRS 16

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
        (void)argc;
        (void)argv;
        fuzz_init(0);
        return 0;
}

static int lchex(const char *s, size_t n)
{
        size_t i;

        for (i = 0; i < n; i++)
                if (!((s[i] >= '0' && s[i] <= '9') ||
                      (s[i] >= 'a' && s[i] <= 'f')))
                        return 0;
        return s[n] == '\0';
}

static void trace_value(const char *v, size_t len)
{
        char tid[KB_TRACE_ID_BYTES], pid[KB_TRACE_SPAN_BYTES],
            tp[KB_TRACEPARENT_BYTES], tid2[KB_TRACE_ID_BYTES],
            pid2[KB_TRACE_SPAN_BYTES], ts[KB_TRACESTATE_MAX + 1];
        uint8_t fl = 0, fl2 = 0;
        size_t n, i;

        if (kb_trace_parse(v, len, tid, pid, &fl) == KB_OK) {
                FUZZ_CHECK(len >= KB_TRACEPARENT_LEN);
                FUZZ_CHECK(lchex(tid, 32) && lchex(pid, 16));
                FUZZ_CHECK(strspn(tid, "0") != 32 && strspn(pid, "0") != 16);
                /* formats back to what parses the same */
                FUZZ_CHECK(kb_trace_format(tid, pid, fl, tp) == KB_OK);
                FUZZ_CHECK(kb_trace_parse(tp, strlen(tp), tid2, pid2, &fl2) ==
                           KB_OK);
                FUZZ_CHECK(!strcmp(tid, tid2) && !strcmp(pid, pid2) &&
                           fl == fl2);
                FUZZ_CHECK(len > KB_TRACEPARENT_LEN ||
                           !memcmp(tp + 2, v + 2, KB_TRACEPARENT_LEN - 2));
        }
        n = kb_trace_state_bound(v, len, ts);
        FUZZ_CHECK(n <= KB_TRACESTATE_MAX && strlen(ts) == n);
        for (i = 0; i < n; i++)
                FUZZ_CHECK(ts[i] >= 0x20 && ts[i] <= 0x7e);
        if (len <= KB_TRACESTATE_MAX && n == len)
                FUZZ_CHECK(!memcmp(ts, v, n));
}

/* An ISO 8601 "YYYY-MM-DDTHH:MM:SSZ" the parser took is gmtime's reading
 * of the same instant. */
static void time_value(const char *v)
{
        int64_t t;
        struct tm tm;
        time_t tt;
        char back[64];

        if (kb_time_parse_iso8601(v, &t) != 0)
                return;
        /* (RFC 3339 also takes 't' and 'z'; gmtime writes 'T' and 'Z') */
        if (strlen(v) != 20 || v[10] != 'T' || v[19] != 'Z' ||
            !strncmp(v + 17, "60", 2))
                return;
        tt = (time_t)t;
        FUZZ_CHECK(gmtime_r(&tt, &tm) != NULL);
        /* (strftime's %Y does not pad years before 1000) */
        snprintf(back, sizeof(back), "%04d-%02d-%02dT%02d:%02d:%02dZ",
                 tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour,
                 tm.tm_min, tm.tm_sec);
        FUZZ_CHECK(!strcmp(back, v));
}

static void scalar_values(const char *v, size_t len)
{
        char out[600], err[256];
        kb_buf_t b = KB_BUF_INIT;
        kb_listen_t la;
        int64_t x, ra;
        size_t cap = 2 * len + 64;
        char *scrub;

        ra = kb_http_parse_retry_after(v, FUZZ_NOW);
        FUZZ_CHECK(ra == -1 || (ra >= 0 && ra <= KB_HTTP_RETRY_AFTER_MAX_S));
        if (kb_parse_i64(v, INT64_MIN, INT64_MAX, &x) == 0) {
                char back[32];
                snprintf(back, sizeof(back), "%lld", (long long)x);
                FUZZ_CHECK(strtoll(v, NULL, 10) == x);
                FUZZ_CHECK(v[0] == '-' || (v[0] >= '0' && v[0] <= '9'));
        }
        time_value(v);
        if (kb_is_uuid(v))
                FUZZ_CHECK(len == 36);
        if (kb_listen_parse(v, &la, err, sizeof(err)) == 0)
                FUZZ_CHECK(la.port >= 0 && la.port <= 65535 && la.host[0]);
        (void)kb_listen_is_loopback(v);
        (void)kb_conf_valid_url(v, err, sizeof(err));
        (void)kb_conf_valid_topic(v, err, sizeof(err));
        (void)kb_conf_valid_topic_template(v, err, sizeof(err));
        (void)kb_conf_valid_vendor_data(v, err, sizeof(err));
        (void)kb_session_kind_parse(v);
        if (kb_envelope_id_valid(v, len))
                FUZZ_CHECK(len >= 1 && len <= KB_ENVELOPE_MAX_ID &&
                           kb_utf8_valid(v, len));

        /* printable copies: valid UTF-8, no control character */
        kb_str_printable(out, sizeof(out), v, len);
        FUZZ_CHECK(memchr(out, '\0', sizeof(out)) != NULL);
        FUZZ_CHECK(kb_utf8_is_text(out, strlen(out)));
        FUZZ_CHECK(kb_utf8_escape_text(&b, v, len, 0) == 0);
        FUZZ_CHECK(b.len == 0 || kb_utf8_is_text(b.data, b.len));
        kb_buf_reset(&b);
        FUZZ_CHECK(
            kb_utf8_escape_text(&b, v, len,
                                KB_UTF8_ESC_LINE | KB_UTF8_ESC_BACKSLASH) == 0);
        FUZZ_CHECK(b.len == 0 || kb_utf8_valid(b.data, b.len));
        FUZZ_CHECK(!b.len || (!memchr(b.data, '\n', b.len) &&
                              !memchr(b.data, '\r', b.len) &&
                              !memchr(b.data, 0x1b, b.len)));
        kb_buf_free(&b, 0);
        /* scrubbing leaves no token behind */
        scrub = malloc(cap);
        if (!scrub)
                abort();
        kb_log_scrub(v, scrub, cap);
        FUZZ_CHECK(!fuzz_has_jwt(scrub));
        free(scrub);
        kb_log_write(KB_LOG_DEBUG, "fuzz", "value %s", v);
}

static void check_trace(const kb_trace_t *t)
{
        char tid[KB_TRACE_ID_BYTES], pid[KB_TRACE_SPAN_BYTES];
        uint8_t fl;
        size_t i;

        FUZZ_CHECK(lchex(t->trace_id, 32) && lchex(t->span_id, 16));
        FUZZ_CHECK(kb_trace_parse(t->traceparent, strlen(t->traceparent), tid,
                                  pid, &fl) == KB_OK);
        FUZZ_CHECK(!strcmp(tid, t->trace_id) && !strcmp(pid, t->span_id));
        FUZZ_CHECK(strlen(t->tracestate) <= KB_TRACESTATE_MAX);
        for (i = 0; t->tracestate[i]; i++)
                FUZZ_CHECK(t->tracestate[i] >= 0x20 &&
                           t->tracestate[i] <= 0x7e);
        FUZZ_CHECK(t->continued || !t->tracestate[0]);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        rd_kafka_headers_t *hdrs = rd_kafka_headers_new(MAX_HDRS);
        char *tp_last = NULL, buf[256];
        kb_trace_t t;
        int n = 0;

        FUZZ_CHECK(hdrs != NULL);
        while (data && n++ < MAX_HDRS) {
                char *line = fuzz_field(&data, &size, '\n');
                char *eq = strchr(line, '=');
                const char *name = line, *v = eq ? eq + 1 : "";
                size_t vl = strlen(v);

                if (eq)
                        *eq = '\0';
                /* a header value may hold any byte; ours stop at NUL */
                rd_kafka_header_add(hdrs, name, -1, v, (ssize_t)vl);
                if (!strcmp(name, KB_HDR_TRACEPARENT)) {
                        free(tp_last);
                        tp_last = strdup(v);
                }
                trace_value(v, vl);
                scalar_values(v, vl);
                free(line);
        }
        kb_kafka_trace_get(hdrs, &t);
        check_trace(&t);
        if (tp_last) {
                char tid[KB_TRACE_ID_BYTES];
                /* the last traceparent decides: valid, its trace goes on */
                if (kb_trace_parse(tp_last, strlen(tp_last), tid, NULL, NULL) ==
                    KB_OK) {
                        FUZZ_CHECK(t.continued);
                        FUZZ_CHECK(!strcmp(t.trace_id, tid));
                } else {
                        FUZZ_CHECK(!t.continued);
                }
        }
        if (kb_kafka_header_get(hdrs, KB_HDR_REQUESTED_AT, buf, sizeof(buf)) ==
            0)
                FUZZ_CHECK(memchr(buf, '\0', sizeof(buf)) != NULL);
        free(tp_last);
        rd_kafka_headers_destroy(hdrs);
        return 0;
}
