/* test_trace.c -- unit tests for trace.c: W3C traceparent parsing (level
 * 1), formatting, generation, a hop's child span, tracestate bounds */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kyc_bridge.h"
#include "trace.h"
#include "util.h"

#define TID  "4bf92f3577b34da6a3ce929d0e0e4736"
#define PID  "00f067aa0ba902b7"
#define ZT   "00000000000000000000000000000000"
#define ZP   "0000000000000000"
#define GOOD "00-" TID "-" PID "-01"

static int parse(const char *s)
{
        return kb_trace_parse(s, strlen(s), NULL, NULL, NULL);
}

/* The specification's example, and what it fills. */
static void test_parse_valid(void **state)
{
        char tid[KB_TRACE_ID_BYTES], pid[KB_TRACE_SPAN_BYTES];
        uint8_t flags = 0xaa;

        (void)state;
        assert_int_equal(kb_trace_parse(GOOD, strlen(GOOD), tid, pid, &flags),
                         KB_OK);
        assert_string_equal(tid, TID);
        assert_string_equal(pid, PID);
        assert_int_equal(flags, 1);
        assert_int_equal(parse("00-" TID "-" PID "-00"), KB_OK);
        /* unknown flags parse (they are cleared when sent on) */
        assert_int_equal(
            kb_trace_parse("00-" TID "-" PID "-ff", 55, NULL, NULL, &flags),
            KB_OK);
        assert_int_equal(flags, 0xff);
        /* only @p len bytes count: a longer buffer is fine */
        assert_int_equal(kb_trace_parse(GOOD "garbage", 55, NULL, NULL, NULL),
                         KB_OK);
}

/* Every way a version-00 value is invalid. */
static void test_parse_invalid(void **state)
{
        static const char *const bad[] = {
                "",
                "00",
                GOOD "-",               /* 00: 56 */
                GOOD "0",               /* 00: 56 */
                "00-" TID "-" PID "-1", /* 54 */
                "00-" ZT "-" PID "-01", /* zero trace */
                "00-" TID "-" ZP "-01", /* zero parent */
                "00-4BF92F3577B34DA6A3CE929D0E0E4736-" PID "-01", /* upper */
                "00-" TID "-00F067AA0BA902B7-01",                 /* upper */
                "00-" TID "-" PID "-0A", /* upper flags */
                "0A-" TID "-" PID "-01", /* upper version */
                "ff-" TID "-" PID "-01", /* version ff */
                "0g-" TID "-" PID "-01", /* not hex */
                "00-" TID "-" PID "-0x", /* not hex */
                "00-4bf92f3577b34da6a3ce929d0e0e473z-" PID "-01",
                "00_" TID "-" PID "-01", /* delimiters */
                "00-" TID "_" PID "-01",
                "00-" TID "-" PID "_01",
                " 00-" TID "-" PID "-0", /* shifted */
                "00-" TID "-" PID "-01 ",
                "00-4bf92f3577b34da6a3ce929d0e0e47-00f067aa0ba902b7aa-01",
        };
        size_t i;

        (void)state;
        for (i = 0; i < KB_ARRAY_SIZE(bad); i++)
                if (parse(bad[i]) != KB_ERR_MALFORMED)
                        fail_msg("accepted: \"%s\"", bad[i]);
        assert_int_equal(kb_trace_parse(NULL, 0, NULL, NULL, NULL),
                         KB_ERR_MALFORMED);
}

/* A later version: its first 55 characters as version 00's; more only
 * after a '-'; never shorter; the same id rules. */
static void test_parse_future_versions(void **state)
{
        char tid[KB_TRACE_ID_BYTES], pid[KB_TRACE_SPAN_BYTES];
        uint8_t flags;
        const char *f = "cc-" TID "-" PID "-01-what-the-future-will-be-like";

        (void)state;
        assert_int_equal(parse("01-" TID "-" PID "-01"), KB_OK);
        assert_int_equal(parse("cc-" TID "-" PID "-09"), KB_OK);
        assert_int_equal(kb_trace_parse(f, strlen(f), tid, pid, &flags), KB_OK);
        assert_string_equal(tid, TID);
        assert_string_equal(pid, PID);
        assert_int_equal(flags, 1);
        assert_int_equal(parse("cc-" TID "-" PID "-01-"), KB_OK);
        assert_int_equal(parse("cc-" TID "-" PID "-01what"), KB_ERR_MALFORMED);
        assert_int_equal(parse("cc-" TID "-" PID "-1"), KB_ERR_MALFORMED);
        assert_int_equal(parse("cc-" ZT "-" PID "-01-x"), KB_ERR_MALFORMED);
        assert_int_equal(parse("cc-" TID "-" ZP "-01"), KB_ERR_MALFORMED);
        assert_int_equal(parse("cc-" TID "-" PID "-0Z-x"), KB_ERR_MALFORMED);
        assert_int_equal(parse("ff-" TID "-" PID "-01-x"), KB_ERR_MALFORMED);
        assert_int_equal(parse("Cc-" TID "-" PID "-01"), KB_ERR_MALFORMED);
}

static void test_format(void **state)
{
        char out[KB_TRACEPARENT_BYTES];

        (void)state;
        assert_int_equal(kb_trace_format(TID, PID, 1, out), KB_OK);
        assert_string_equal(out, GOOD);
        assert_int_equal(kb_trace_format(TID, PID, 0, out), KB_OK);
        assert_string_equal(out, "00-" TID "-" PID "-00");
        assert_int_equal(kb_trace_format(ZT, PID, 1, out), KB_ERR_INVALID_ARG);
        assert_string_equal(out, "");
        assert_int_equal(kb_trace_format(TID, ZP, 1, out), KB_ERR_INVALID_ARG);
        assert_int_equal(kb_trace_format(TID, "00F067AA0BA902B7", 1, out),
                         KB_ERR_INVALID_ARG);
        assert_int_equal(kb_trace_format(TID, PID "0", 1, out),
                         KB_ERR_INVALID_ARG);
        assert_int_equal(kb_trace_format(NULL, PID, 1, out),
                         KB_ERR_INVALID_ARG);
}

static int all_lchex(const char *s)
{
        for (; *s; s++)
                if (!((*s >= '0' && *s <= '9') || (*s >= 'a' && *s <= 'f')))
                        return 0;
        return 1;
}

/* Random ids: the right length, lowercase hex, never zero, all apart. */
static void test_random_ids(void **state)
{
        char t[20][KB_TRACE_ID_BYTES], s[KB_TRACE_SPAN_BYTES];
        size_t i, j;

        (void)state;
        for (i = 0; i < 20; i++) {
                kb_trace_random_id(t[i], 32);
                assert_int_equal(strlen(t[i]), 32);
                assert_true(all_lchex(t[i]));
                assert_string_not_equal(t[i], ZT);
                for (j = 0; j < i; j++)
                        assert_string_not_equal(t[i], t[j]);
        }
        kb_trace_random_id(s, 16);
        assert_int_equal(strlen(s), 16);
        assert_true(all_lchex(s));
        assert_string_not_equal(s, ZP);
}

/* A valid traceparent in: the trace id and sampled flag kept, a new span
 * id (never the parent's, and another one per hop), tracestate carried. */
static void test_child_continues(void **state)
{
        kb_trace_t a, b;
        char tid[KB_TRACE_ID_BYTES], pid[KB_TRACE_SPAN_BYTES];
        uint8_t flags;

        (void)state;
        kb_trace_child(&a, GOOD, strlen(GOOD), "congo=t61rcWkgMzE",
                       strlen("congo=t61rcWkgMzE"));
        assert_int_equal(a.continued, 1);
        assert_string_equal(a.trace_id, TID);
        assert_string_not_equal(a.span_id, PID);
        assert_int_equal(a.flags, 1);
        assert_string_equal(a.tracestate, "congo=t61rcWkgMzE");
        assert_int_equal(strlen(a.traceparent), 55);
        assert_int_equal(kb_trace_parse(a.traceparent, strlen(a.traceparent),
                                        tid, pid, &flags),
                         KB_OK);
        assert_string_equal(tid, TID);
        assert_string_equal(pid, a.span_id);
        assert_int_equal(flags, 1);
        assert_memory_equal(a.traceparent, "00-", 3);
        /* the next hop: child of the child */
        kb_trace_child(&b, a.traceparent, strlen(a.traceparent), NULL, 0);
        assert_int_equal(b.continued, 1);
        assert_string_equal(b.trace_id, TID);
        assert_string_not_equal(b.span_id, a.span_id);
        assert_string_not_equal(b.span_id, PID);
        assert_string_equal(b.tracestate, "");
        /* unknown flags go on as zero; a later version's value is
         * continued as version 00 */
        kb_trace_child(&a, "cc-" TID "-" PID "-fe-more",
                       strlen("cc-" TID "-" PID "-fe-more"), NULL, 0);
        assert_int_equal(a.continued, 1);
        assert_string_equal(a.trace_id, TID);
        assert_int_equal(a.flags, 0);
        assert_memory_equal(a.traceparent, "00-" TID "-", 36);
        assert_string_equal(a.traceparent + 52, "-00");
}

/* Nothing valid in: a new trace (random id, sampled), and a tracestate
 * that came with an invalid traceparent is not carried. */
static void test_child_starts(void **state)
{
        kb_trace_t a, b;
        const char *bad = "00-" ZT "-" PID "-01";

        (void)state;
        kb_trace_child(&a, NULL, 0, NULL, 0);
        assert_int_equal(a.continued, 0);
        assert_int_equal(strlen(a.trace_id), 32);
        assert_int_equal(a.flags, 1);
        assert_int_equal(parse(a.traceparent), KB_OK);
        assert_string_equal(a.tracestate, "");
        kb_trace_child(&b, bad, strlen(bad), "k=v", 3);
        assert_int_equal(b.continued, 0);
        assert_string_not_equal(b.trace_id, ZT);
        assert_string_not_equal(b.trace_id, a.trace_id);
        assert_string_equal(b.tracestate, "");
        assert_int_equal(parse(b.traceparent), KB_OK);
        kb_trace_child(&b, "ff-" TID "-" PID "-01", 55, "k=v", 3);
        assert_int_equal(b.continued, 0);
        assert_string_not_equal(b.trace_id, TID);
}

/* tracestate: unchanged up to 512 bytes; longer loses members over 128
 * bytes first, then from the end; not printable ASCII: dropped. */
static void test_state_bound(void **state)
{
        char out[KB_TRACESTATE_MAX + 1], in[2048], big[200];
        size_t n, i;

        (void)state;
        assert_int_equal(kb_trace_state_bound("a=1, b=2", 8, out), 8);
        assert_string_equal(out, "a=1, b=2");
        assert_int_equal(kb_trace_state_bound("a=1\n", 4, out), 0);
        assert_string_equal(out, "");
        assert_int_equal(kb_trace_state_bound("a=\xc3\xa9", 4, out), 0);
        assert_int_equal(kb_trace_state_bound(NULL, 0, out), 0);
        /* exactly 512: kept */
        memset(in, 'x', 512);
        memcpy(in, "k=", 2);
        assert_int_equal(kb_trace_state_bound(in, 512, out), 512);
        assert_memory_equal(out, in, 512);
        /* 30 members of 20 bytes and one of 150 in the middle: 770 */
        memset(big, 'b', sizeof(big));
        memcpy(big, "big=", 4);
        n = 0;
        for (i = 0; i < 30; i++) {
                if (i == 5) {
                        memcpy(in + n, big, 150);
                        n += 150;
                        in[n++] = ',';
                }
                n += (size_t)snprintf(in + n, sizeof(in) - n,
                                      "m%02zu=aaaaaaaaaaaaaaa%s", i,
                                      i < 29 ? "," : "");
        }
        assert_true(n > 512);
        n = kb_trace_state_bound(in, n, out);
        assert_true(n <= 512);
        assert_int_equal(strlen(out), n);
        assert_null(strstr(out, "big="));
        /* the first members stay, in order; the last went */
        assert_memory_equal(out, "m00=aaaaaaaaaaaaaaa,m01=", 24);
        assert_non_null(strstr(out, "m05=aaaaaaaaaaaaaaa,m06="));
        assert_null(strstr(out, "m25="));
        /* 25 members of 19 bytes + 24 commas = 499 (26 would be 519) */
        assert_int_equal(n, 25 * 19 + 24);
        assert_non_null(strstr(out, ",m24=aaaaaaaaaaaaaaa"));
        assert_int_equal(out[n - 1], 'a');
        /* the child carries the bounded one */
        {
                kb_trace_t t;
                kb_trace_child(&t, GOOD, strlen(GOOD), in, strlen(in));
                assert_true(strlen(t.tracestate) <= 512);
                assert_null(strstr(t.tracestate, "big="));
        }
}

static void test_wall_ms(void **state)
{
        int64_t a = kb_trace_wall_ms();

        (void)state;
        assert_true(a > (int64_t)1700000000 * 1000);
        assert_true(a / 1000 - kb_time_now() <= 1);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_parse_valid),
                cmocka_unit_test(test_parse_invalid),
                cmocka_unit_test(test_parse_future_versions),
                cmocka_unit_test(test_format),
                cmocka_unit_test(test_random_ids),
                cmocka_unit_test(test_child_continues),
                cmocka_unit_test(test_child_starts),
                cmocka_unit_test(test_state_bound),
                cmocka_unit_test(test_wall_ms),
        };

        if (kb_init() != KB_OK)
                return 1;
        return cmocka_run_group_tests(tests, NULL, NULL);
}
