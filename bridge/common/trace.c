/* trace.c -- W3C trace context (level 1): traceparent parse, format,
 * generate, and one hop's child span */
#include "trace.h"

#include <stdio.h>
#include <string.h>
#include <time.h>

#include <sodium.h>

#include "kyc_bridge.h"
#include "util.h"

static int is_lchex(char c)
{
        return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f');
}

static int hexval(char c)
{
        return c <= '9' ? c - '0' : c - 'a' + 10;
}

/* @p n lowercase hex characters at @p s; *nonzero set when one is not
 * '0'. */
static int lchex_run(const char *s, size_t n, int *nonzero)
{
        size_t i;

        if (nonzero)
                *nonzero = 0;
        for (i = 0; i < n; i++) {
                if (!is_lchex(s[i]))
                        return 0;
                if (nonzero && s[i] != '0')
                        *nonzero = 1;
        }
        return 1;
}

int kb_trace_parse(const char *s, size_t len, char trace_id[KB_TRACE_ID_BYTES],
                   char parent_id[KB_TRACE_SPAN_BYTES], uint8_t *flags)
{
        int nz_t, nz_p;

        /* version: 2 lowercase hex, ff is invalid */
        if (!s || len < 2 || !lchex_run(s, 2, NULL) ||
            (s[0] == 'f' && s[1] == 'f'))
                return KB_ERR_MALFORMED;
        if (s[0] == '0' && s[1] == '0') {
                if (len != KB_TRACEPARENT_LEN)
                        return KB_ERR_MALFORMED;
        } else {
                /* a later version: its first 55 characters are read as
                 * version 00's; anything appended starts with '-' */
                if (len < KB_TRACEPARENT_LEN ||
                    (len > KB_TRACEPARENT_LEN && s[KB_TRACEPARENT_LEN] != '-'))
                        return KB_ERR_MALFORMED;
        }
        if (s[2] != '-' || s[35] != '-' || s[52] != '-' ||
            !lchex_run(s + 3, 32, &nz_t) || !lchex_run(s + 36, 16, &nz_p) ||
            !lchex_run(s + 53, 2, NULL) || !nz_t || !nz_p)
                return KB_ERR_MALFORMED;
        if (trace_id) {
                memcpy(trace_id, s + 3, 32);
                trace_id[32] = '\0';
        }
        if (parent_id) {
                memcpy(parent_id, s + 36, 16);
                parent_id[16] = '\0';
        }
        if (flags)
                *flags = (uint8_t)(hexval(s[53]) << 4 | hexval(s[54]));
        return KB_OK;
}

int kb_trace_format(const char *trace_id, const char *span_id, uint8_t flags,
                    char out[KB_TRACEPARENT_BYTES])
{
        int nz_t, nz_p;

        out[0] = '\0';
        if (!trace_id || !span_id || strlen(trace_id) != 32 ||
            strlen(span_id) != 16 || !lchex_run(trace_id, 32, &nz_t) ||
            !lchex_run(span_id, 16, &nz_p) || !nz_t || !nz_p)
                return KB_ERR_INVALID_ARG;
        snprintf(out, KB_TRACEPARENT_BYTES, "00-%s-%s-%02x", trace_id, span_id,
                 (unsigned)flags);
        return KB_OK;
}

void kb_trace_random_id(char *out, size_t hex_len)
{
        unsigned char raw[16];
        size_t n = hex_len / 2, i;
        int nonzero;

        if (n > sizeof(raw))
                n = sizeof(raw);
        do {
                randombytes_buf(raw, n);
                for (i = 0, nonzero = 0; i < n; i++)
                        nonzero |= raw[i];
        } while (!nonzero); /* all zeros is the invalid id */
        sodium_bin2hex(out, n * 2 + 1, raw, n);
}

static int printable(const char *s, size_t len)
{
        size_t i;

        for (i = 0; i < len; i++)
                if (s[i] < 0x20 || s[i] > 0x7e)
                        return 0;
        return 1;
}

/* Members of a tracestate list we look at: W3C allows 32. */
#define STATE_MEMBERS_MAX 64

size_t kb_trace_state_bound(const char *s, size_t len,
                            char out[KB_TRACESTATE_MAX + 1])
{
        size_t off[STATE_MEMBERS_MAX], mlen[STATE_MEMBERS_MAX];
        size_t n = 0, i, start, total = 0, o = 0;

        out[0] = '\0';
        if (!s || !len || !printable(s, len))
                return 0;
        if (len <= KB_TRACESTATE_MAX) {
                memcpy(out, s, len);
                out[len] = '\0';
                return len;
        }
        /* the members up to 128 bytes (longer ones go first) */
        for (i = 0, start = 0; i <= len && n < STATE_MEMBERS_MAX; i++) {
                if (i < len && s[i] != ',')
                        continue;
                if (i > start && i - start <= 128) {
                        off[n] = start;
                        mlen[n] = i - start;
                        total += mlen[n] + (n ? 1 : 0);
                        n++;
                }
                start = i + 1;
        }
        /* then members from the end, until the list fits */
        while (n > 0 && total > KB_TRACESTATE_MAX) {
                n--;
                total -= mlen[n] + (n ? 1 : 0);
        }
        for (i = 0; i < n; i++) {
                if (i)
                        out[o++] = ',';
                memcpy(out + o, s + off[i], mlen[i]);
                o += mlen[i];
        }
        out[o] = '\0';
        return o;
}

void kb_trace_child(kb_trace_t *t, const char *traceparent, size_t tp_len,
                    const char *tracestate, size_t ts_len)
{
        uint8_t flags = 0;

        memset(t, 0, sizeof(*t));
        if (traceparent && kb_trace_parse(traceparent, tp_len, t->trace_id,
                                          NULL, &flags) == KB_OK) {
                t->continued = 1;
                /* level 1 defines only "sampled"; other bits are sent on
                 * as zero */
                t->flags = flags & KB_TRACE_FLAG_SAMPLED;
                if (tracestate)
                        kb_trace_state_bound(tracestate, ts_len, t->tracestate);
        } else {
                kb_trace_random_id(t->trace_id, 32);
                t->flags = KB_TRACE_FLAG_SAMPLED;
        }
        kb_trace_random_id(t->span_id, 16);
        (void)kb_trace_format(t->trace_id, t->span_id, t->flags,
                              t->traceparent);
}

int64_t kb_trace_wall_ms(void)
{
        struct timespec ts;

        clock_gettime(CLOCK_REALTIME, &ts);
        return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}
