/* canon.c -- canonical JSON for webhook signatures (vendor's sorted, compact
 * form) */
#include "canon.h"

#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Returns non-zero when @p s[0..len) is valid UTF-8 (no overlongs, no
 * surrogates, nothing above U+10FFFF): what a Python str can encode. */
static int utf8_valid(const unsigned char *s, size_t len)
{
        size_t i = 0;

        while (i < len) {
                unsigned char c = s[i];
                size_t n, k;
                uint32_t cp;

                if (c < 0x80) {
                        i++;
                        continue;
                } else if (c >= 0xc2 && c <= 0xdf) {
                        n = 1;
                        cp = c & 0x1fU;
                } else if (c >= 0xe0 && c <= 0xef) {
                        n = 2;
                        cp = c & 0x0fU;
                } else if (c >= 0xf0 && c <= 0xf4) {
                        n = 3;
                        cp = c & 0x07U;
                } else {
                        return 0;
                }
                if (len - i - 1 < n)
                        return 0;
                for (k = 1; k <= n; k++) {
                        if ((s[i + k] & 0xc0) != 0x80)
                                return 0;
                        cp = (cp << 6) | (s[i + k] & 0x3fU);
                }
                if ((n == 2 && cp < 0x800) || (n == 3 && cp < 0x10000) ||
                    cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
                        return 0;
                i += n + 1;
        }
        return 1;
}

/* Python's json encoder with ensure_ascii=False escapes exactly these. */
static int put_string(kb_buf_t *out, const char *s, size_t len)
{
        static const char hex[] = "0123456789abcdef";
        size_t i, run = 0;

        if (!utf8_valid((const unsigned char *)s, len))
                return KB_ERR_INVALID_ARG;
        if (kb_buf_reserve(out, len + 2) == -1)
                return KB_ERR_NOMEM;
        if (kb_buf_append(out, "\"", 1) == -1)
                return KB_ERR_NOMEM;
        for (i = 0; i < len; i++) {
                unsigned char c = (unsigned char)s[i];
                char esc[7];
                size_t elen = 2;

                if (c >= 0x20 && c != '"' && c != '\\')
                        continue;
                /* flush the raw run before this byte */
                if (i > run && kb_buf_append(out, s + run, i - run) == -1)
                        return KB_ERR_NOMEM;
                run = i + 1;
                esc[0] = '\\';
                switch (c) {
                case '"':
                        esc[1] = '"';
                        break;
                case '\\':
                        esc[1] = '\\';
                        break;
                case '\b':
                        esc[1] = 'b';
                        break;
                case '\f':
                        esc[1] = 'f';
                        break;
                case '\n':
                        esc[1] = 'n';
                        break;
                case '\r':
                        esc[1] = 'r';
                        break;
                case '\t':
                        esc[1] = 't';
                        break;
                default:
                        esc[1] = 'u';
                        esc[2] = '0';
                        esc[3] = '0';
                        esc[4] = hex[c >> 4];
                        esc[5] = hex[c & 0xf];
                        elen = 6;
                        break;
                }
                if (kb_buf_append(out, esc, elen) == -1)
                        return KB_ERR_NOMEM;
        }
        if (len > run && kb_buf_append(out, s + run, len - run) == -1)
                return KB_ERR_NOMEM;
        if (kb_buf_append(out, "\"", 1) == -1)
                return KB_ERR_NOMEM;
        return KB_OK;
}

/*
 * Shortest decimal digits of a positive finite @p d that read back as @p d,
 * nearest to @p d among the shortest (what Python's repr uses). For each
 * precision the correctly rounded candidate (printf is exact in glibc) is the
 * nearest; at a power of two the rounding interval is lopsided, so the
 * neighbour one unit away on the wide side may round-trip when the nearest
 * does not: try it too. On return @p digits holds the significant digits
 * (no trailing zeros) and @p decpt the position of the decimal point:
 * d = 0.DIGITS * 10^decpt.
 */
static void shortest_digits(double d, char digits[24], int *decpt)
{
        char buf[48];
        int p;

        for (p = 1; p <= 17; p++) {
                unsigned long long m = 0, cand[3];
                char *e;
                int exp10, k;

                snprintf(buf, sizeof(buf), "%.*e", p - 1, d);
                /* buf: D[.DDD]e[+-]XX */
                for (e = buf; *e != 'e'; e++)
                        if (*e >= '0' && *e <= '9')
                                m = m * 10 + (unsigned long long)(*e - '0');
                exp10 = (int)strtol(e + 1, NULL, 10);
                cand[0] = m;
                cand[1] = m + 1;
                cand[2] = m - 1;
                for (k = 0; k < 3; k++) {
                        char num[48];
                        int scale = exp10 - (p - 1), nd, z;

                        if (cand[k] == 0)
                                continue;
                        snprintf(num, sizeof(num), "%llue%d", cand[k], scale);
                        if (strtod(num, NULL) != d)
                                continue;
                        nd = snprintf(digits, 24, "%llu", cand[k]);
                        for (z = nd; z > 1 && digits[z - 1] == '0'; z--)
                                ;
                        digits[z] = '\0';
                        *decpt = nd + scale;
                        return;
                }
        }
        /* 17 significant digits always round-trip: not reached */
        snprintf(digits, 24, "0");
        *decpt = 1;
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
