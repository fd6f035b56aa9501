/* canon.c -- canonical JSON for webhook signatures (vendor's sorted, compact
 * form) */
#include "canon.h"

#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "json.h"

/* Python's json encoder with ensure_ascii=False; invalid UTF-8 (not what a
 * Python str can encode) is refused, Python could not have produced it. */
static int put_string(kb_buf_t *out, const char *s, size_t len)
{
        if (kb_json_put_string_ex(out, s, len, KB_JSON_UTF8_REFUSE) == -1)
                return errno == EILSEQ ? KB_ERR_INVALID_ARG : KB_ERR_NOMEM;
        return KB_OK;
}

/* Digits of m * 10^scale (trailing zeros dropped) and the decimal point
 * position: value = 0.DIGITS * 10^decpt. */
static void set_digits(unsigned long long m, int scale, char digits[24],
                       int *decpt)
{
        int nd = snprintf(digits, 24, "%llu", m), z;

        for (z = nd; z > 1 && digits[z - 1] == '0'; z--)
                ;
        digits[z] = '\0';
        *decpt = nd + scale;
}

/* The correctly rounded @p p-significant-digit decimal of @p d (glibc's
 * printf is exact) as m * 10^scale; non-zero when it reads back as @p d. */
static int try_precision(double d, int p, unsigned long long *m, int *scale)
{
        char buf[48], *e;
        unsigned long long v = 0;

        snprintf(buf, sizeof(buf), "%.*e", p - 1, d);
        /* buf: D[.DDD]e[+-]XX */
        for (e = buf; *e != 'e'; e++)
                if (*e >= '0' && *e <= '9')
                        v = v * 10 + (unsigned long long)(*e - '0');
        *m = v;
        *scale = (int)strtol(e + 1, NULL, 10) - (p - 1);
        return strtod(buf, NULL) == d;
}

static int reads_back(double d, unsigned long long m, int scale)
{
        char num[48];

        if (m == 0)
                return 0;
        snprintf(num, sizeof(num), "%llue%d", m, scale);
        return strtod(num, NULL) == d;
}

/*
 * Shortest decimal digits of a positive finite @p d that read back as @p d,
 * nearest to @p d among the shortest (what Python's repr uses), into
 * @p digits / @p decpt (see set_digits()).
 *
 * Away from a power of two the rounding interval of d is symmetric, so the
 * nearest p-digit decimal is the best p-digit candidate, and if it reads
 * back so does the nearest (p+1)-digit one (it is at least as close): the
 * shortest p can be bisected. At a power of two the interval below d is
 * half as wide as above, and the nearest p-digit decimal may fall just
 * outside below while its neighbour one unit up is inside: there every p is
 * tried in turn with both neighbours (46 powers of two need this).
 */
static void shortest_digits(double d, char digits[24], int *decpt)
{
        unsigned long long m, mid_m;
        uint64_t bits;
        int p, lo = 1, hi = 17, scale, mid_scale;

        memcpy(&bits, &d, sizeof(bits));
        if ((bits & ((1ULL << 52) - 1)) != 0) {
                while (lo < hi) {
                        int mid = (lo + hi) / 2;
                        if (try_precision(d, mid, &mid_m, &mid_scale))
                                hi = mid;
                        else
                                lo = mid + 1;
                }
                try_precision(d, lo, &m, &scale);
                set_digits(m, scale, digits, decpt);
                return;
        }
        for (p = 1; p <= 17; p++) {
                if (try_precision(d, p, &m, &scale)) {
                        set_digits(m, scale, digits, decpt);
                        return;
                }
                if (reads_back(d, m + 1, scale)) {
                        set_digits(m + 1, scale, digits, decpt);
                        return;
                }
                if (reads_back(d, m - 1, scale)) {
                        set_digits(m - 1, scale, digits, decpt);
                        return;
                }
        }
        /* 17 significant digits always read back: not reached */
        set_digits(0, 1, digits, decpt);
}

int kb_canon_double_repr(double d, char *out, size_t size)
{
        static const char zeros[] = "0000000000000000";
        char digits[24];
        int decpt, nd, n;
        const char *sign = "";

        if (!out || size < KB_CANON_REPR_BYTES || !isfinite(d))
                return KB_ERR_INVALID_ARG;
        if (signbit(d)) {
                sign = "-";
                d = -d;
        }
        if (d == 0.0) {
                snprintf(out, size, "%s0.0", sign);
                return KB_OK;
        }
        shortest_digits(d, digits, &decpt);
        nd = (int)strlen(digits);
        /* CPython format_float_short(), mode 'r' with ADD_DOT_0: exponent
         * form unless -4 < decpt <= 16, exponent with sign and >= 2 digits */
        if (decpt <= -4 || decpt > 16) {
                int x = decpt - 1;
                n = snprintf(out, size, "%s%c%s%se%c%02d", sign, digits[0],
                             nd > 1 ? "." : "", digits + 1, x < 0 ? '-' : '+',
                             x < 0 ? -x : x);
        } else if (decpt <= 0) {
                /* 0 <= -decpt <= 3 */
                n = snprintf(out, size, "%s0.%.*s%s", sign, -decpt, zeros,
                             digits);
        } else if (decpt >= nd) {
                /* decpt - nd <= 15 */
                n = snprintf(out, size, "%s%s%.*s.0", sign, digits, decpt - nd,
                             zeros);
        } else {
                n = snprintf(out, size, "%s%.*s.%s", sign, decpt, digits,
                             digits + decpt);
        }
        if (n < 0 || (size_t)n >= size)
                return KB_ERR_INVALID_ARG;
        return KB_OK;
}

static int put_double(kb_buf_t *out, double d)
{
        char buf[KB_CANON_REPR_BYTES];

        if (!isfinite(d))
                return KB_ERR_INVALID_ARG;
        if (d == floor(d)) {
                /* Python: int(d), exact. -0.0 becomes 0. */
                if (d >= -9223372036854775808.0 && d < 9223372036854775808.0)
                        return kb_buf_printf(out, "%" PRId64, (int64_t)d) == -1
                                   ? KB_ERR_NOMEM
                                   : KB_OK;
                /* glibc prints the exact decimal value of a double */
                return kb_buf_printf(out, "%.0f", d) == -1 ? KB_ERR_NOMEM
                                                           : KB_OK;
        }
        if (kb_canon_double_repr(d, buf, sizeof(buf)) != KB_OK)
                return KB_ERR_INVALID_ARG;
        return kb_buf_puts(out, buf) == -1 ? KB_ERR_NOMEM : KB_OK;
}

static int put_int(kb_buf_t *out, json_object *o)
{
        int64_t v = json_object_get_int64(o);

        /* json-c keeps values above INT64_MAX as uint64 */
        if (v == INT64_MAX) {
                uint64_t u = json_object_get_uint64(o);
                return kb_buf_printf(out, "%" PRIu64, u) == -1 ? KB_ERR_NOMEM
                                                               : KB_OK;
        }
        return kb_buf_printf(out, "%" PRId64, v) == -1 ? KB_ERR_NOMEM : KB_OK;
}

typedef struct {
        const char *key;
        json_object *val;
} member_t;

static int member_cmp(const void *a, const void *b)
{
        /* strcmp compares as unsigned char: UTF-8 byte order = code points */
        return strcmp(((const member_t *)a)->key, ((const member_t *)b)->key);
}

static int put_value(kb_buf_t *out, json_object *o, int depth);

static int put_object(kb_buf_t *out, json_object *o, int depth)
{
        struct json_object_iterator it, end;
        member_t *m = NULL;
        size_t n = (size_t)json_object_object_length(o), i = 0;
        int rc = KB_OK;

        if (n > 0) {
                m = calloc(n, sizeof(*m));
                if (!m)
                        return KB_ERR_NOMEM;
        }
        it = json_object_iter_begin(o);
        end = json_object_iter_end(o);
        while (!json_object_iter_equal(&it, &end) && i < n) {
                m[i].key = json_object_iter_peek_name(&it);
                m[i].val = json_object_iter_peek_value(&it);
                i++;
                json_object_iter_next(&it);
        }
        n = i;
        if (n > 1)
                qsort(m, n, sizeof(*m), member_cmp);
        if (kb_buf_append(out, "{", 1) == -1) {
                rc = KB_ERR_NOMEM;
                goto out;
        }
        for (i = 0; i < n; i++) {
                if (i > 0 && kb_buf_append(out, ",", 1) == -1) {
                        rc = KB_ERR_NOMEM;
                        goto out;
                }
                rc = put_string(out, m[i].key, strlen(m[i].key));
                if (rc != KB_OK)
                        goto out;
                if (kb_buf_append(out, ":", 1) == -1) {
                        rc = KB_ERR_NOMEM;
                        goto out;
                }
                rc = put_value(out, m[i].val, depth + 1);
                if (rc != KB_OK)
                        goto out;
        }
        if (kb_buf_append(out, "}", 1) == -1)
                rc = KB_ERR_NOMEM;
out:
        free(m);
        return rc;
}

static int put_array(kb_buf_t *out, json_object *o, int depth)
{
        size_t i, n = json_object_array_length(o);
        int rc;

        if (kb_buf_append(out, "[", 1) == -1)
                return KB_ERR_NOMEM;
        for (i = 0; i < n; i++) {
                if (i > 0 && kb_buf_append(out, ",", 1) == -1)
                        return KB_ERR_NOMEM;
                rc = put_value(out, json_object_array_get_idx(o, i), depth + 1);
                if (rc != KB_OK)
                        return rc;
        }
        return kb_buf_append(out, "]", 1) == -1 ? KB_ERR_NOMEM : KB_OK;
}

static int put_value(kb_buf_t *out, json_object *o, int depth)
{
        if (depth > KB_CANON_MAX_DEPTH)
                return KB_ERR_INVALID_ARG;
        switch (json_object_get_type(o)) {
        case json_type_null:
                return kb_buf_puts(out, "null") == -1 ? KB_ERR_NOMEM : KB_OK;
        case json_type_boolean:
                return kb_buf_puts(out, json_object_get_boolean(o)
                                            ? "true"
                                            : "false") == -1
                           ? KB_ERR_NOMEM
                           : KB_OK;
        case json_type_int:
                return put_int(out, o);
        case json_type_double:
                return put_double(out, json_object_get_double(o));
        case json_type_string:
                return put_string(out, json_object_get_string(o),
                                  (size_t)json_object_get_string_len(o));
        case json_type_object:
                return put_object(out, o, depth);
        case json_type_array:
                return put_array(out, o, depth);
        }
        return KB_ERR_INVALID_ARG;
}

int kb_canon_json(json_object *obj, kb_buf_t *out)
{
        size_t start;
        int rc;

        if (!out)
                return KB_ERR_INVALID_ARG;
        start = out->len;
        rc = put_value(out, obj, 0);
        if (rc != KB_OK && out->data) {
                out->len = start;
                out->data[start] = '\0';
        }
        return rc;
}
