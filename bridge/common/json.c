/* json.c -- strict JSON parsing (no duplicate keys) and json-c accessors */
#include "json.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "utf8.h"
#include "util.h"

/*
 * json-c silently keeps the last of duplicate keys. To reject them we count the
 * keys of every object as written, in document order, and compare with the
 * member counts of the parsed tree visited in the same (pre-)order: the first
 * object that had a duplicate is the first whose count differs, because every
 * object before it parsed to an identical subtree.
 */
typedef struct {
        size_t *counts;
        size_t n, cap;
} keycounts_t;

static int kc_push(keycounts_t *kc, size_t *idx)
{
        if (kc->n == kc->cap) {
                size_t ncap = kc->cap ? kc->cap * 2 : 16;
                size_t *p = realloc(kc->counts, ncap * sizeof(*p));
                if (!p)
                        return -1;
                kc->counts = p;
                kc->cap = ncap;
        }
        kc->counts[kc->n] = 0;
        *idx = kc->n++;
        return 0;
}

/*
 * Strict RFC 8259 scanner, run before json-c (whose STRICT mode still takes
 * single-quoted keys, NaN, Infinity, "1.", raw control characters in
 * strings and some invalid UTF-8). It checks the grammar, well-formed UTF-8,
 * paired surrogate escapes and the nesting depth, and counts the keys of
 * every object in document order for the duplicate check.
 */
typedef struct {
        const unsigned char *p, *end;
        keycounts_t *kc;
        int depth, max_depth;
        const char *why;
} scan_t;

static int scan_fail(scan_t *s, const char *why)
{
        if (!s->why)
                s->why = s->p >= s->end ? "truncated JSON" : why;
        return -1;
}

static void scan_ws(scan_t *s)
{
        while (s->p < s->end && (*s->p == ' ' || *s->p == '\t' ||
                                 *s->p == '\n' || *s->p == '\r'))
                s->p++;
}

static int scan_lit(scan_t *s, const char *lit)
{
        size_t n = strlen(lit), avail = (size_t)(s->end - s->p);

        if (avail < n) {
                if (memcmp(s->p, lit, avail))
                        return scan_fail(s, "invalid literal");
                s->p = s->end;
                return scan_fail(s, "");
        }
        if (memcmp(s->p, lit, n))
                return scan_fail(s, "invalid literal");
        s->p += n;
        return 0;
}

static int scan_digits(scan_t *s)
{
        const unsigned char *start = s->p;

        while (s->p < s->end && *s->p >= '0' && *s->p <= '9')
                s->p++;
        return s->p > start ? 0 : scan_fail(s, "invalid number");
}

static int scan_number(scan_t *s)
{
        if (*s->p == '-')
                s->p++;
        if (s->p < s->end && *s->p == '0')
                s->p++;
        else if (scan_digits(s))
                return -1;
        if (s->p < s->end && *s->p == '.') {
                s->p++;
                if (scan_digits(s))
                        return -1;
        }
        if (s->p < s->end && (*s->p == 'e' || *s->p == 'E')) {
                s->p++;
                if (s->p < s->end && (*s->p == '+' || *s->p == '-'))
                        s->p++;
                if (scan_digits(s))
                        return -1;
        }
        return 0;
}

/* Four hex digits after "\u"; the code unit in @p cu. */
static int scan_hex4(scan_t *s, unsigned *cu)
{
        int i;

        *cu = 0;
        for (i = 0; i < 4; i++, s->p++) {
                unsigned c;
                if (s->p >= s->end)
                        return scan_fail(s, "");
                c = *s->p;
                if (c >= '0' && c <= '9')
                        c -= '0';
                else if (c >= 'a' && c <= 'f')
                        c -= 'a' - 10;
                else if (c >= 'A' && c <= 'F')
                        c -= 'A' - 10;
                else
                        return scan_fail(s, "invalid \\u escape");
                *cu = (*cu << 4) | c;
        }
        return 0;
}

/* One UTF-8 sequence starting with a byte >= 0x80. */
static int scan_utf8(scan_t *s)
{
        size_t n = kb_utf8_next(s->p, (size_t)(s->end - s->p), NULL);

        if (!n)
                return scan_fail(s, "invalid UTF-8");
        s->p += n;
        return 0;
}

static int scan_string(scan_t *s)
{
        s->p++; /* the opening quote */
        while (s->p < s->end) {
                unsigned c = *s->p, cu, lo;
                if (c == '"') {
                        s->p++;
                        return 0;
                }
                if (c < 0x20)
                        return scan_fail(s, "control character in string");
                if (c >= 0x80) {
                        if (scan_utf8(s))
                                return -1;
                        continue;
                }
                s->p++;
                if (c != '\\')
                        continue;
                if (s->p >= s->end)
                        break;
                c = *s->p++;
                if (c != 'u') {
                        if (!strchr("\"\\/bfnrt", (int)c) || !c)
                                return scan_fail(s, "invalid escape");
                        continue;
                }
                if (scan_hex4(s, &cu))
                        return -1;
                if (cu >= 0xdc00 && cu <= 0xdfff)
                        return scan_fail(s, "unpaired surrogate escape");
                if (cu < 0xd800 || cu > 0xdbff)
                        continue;
                /* a high surrogate must be followed by a low one */
                if (s->p < s->end && *s->p == '\\')
                        s->p++;
                else
                        return scan_fail(s, "unpaired surrogate escape");
                if (s->p < s->end && *s->p == 'u')
                        s->p++;
                else
                        return scan_fail(s, "unpaired surrogate escape");
                if (scan_hex4(s, &lo))
                        return -1;
                if (lo < 0xdc00 || lo > 0xdfff)
                        return scan_fail(s, "unpaired surrogate escape");
        }
        return scan_fail(s, "");
}

static int scan_value(scan_t *s);

/* Object or array at s->p ('{' or '['). */
static int scan_container(scan_t *s)
{
        int is_obj = *s->p == '{';
        unsigned char close = is_obj ? '}' : ']';
        size_t idx = 0;

        if (s->depth >= s->max_depth)
                return scan_fail(s, "JSON nested too deeply");
        if (is_obj && kc_push(s->kc, &idx) == -1)
                return scan_fail(s, "out of memory");
        s->depth++;
        s->p++;
        scan_ws(s);
        if (s->p < s->end && *s->p == close) {
                s->p++;
                s->depth--;
                return 0;
        }
        for (;;) {
                if (is_obj) {
                        if (s->p >= s->end || *s->p != '"')
                                return scan_fail(s, "expected a string key");
                        if (scan_string(s))
                                return -1;
                        s->kc->counts[idx]++;
                        scan_ws(s);
                        if (s->p >= s->end || *s->p != ':')
                                return scan_fail(s, "expected ':'");
                        s->p++;
                        scan_ws(s);
                }
                if (scan_value(s))
                        return -1;
                scan_ws(s);
                if (s->p >= s->end)
                        return scan_fail(s, "");
                if (*s->p == close) {
                        s->p++;
                        s->depth--;
                        return 0;
                }
                if (*s->p != ',')
                        return scan_fail(s, "expected ',' or a closing "
                                            "bracket");
                s->p++;
                scan_ws(s);
        }
}

static int scan_value(scan_t *s)
{
        if (s->p >= s->end)
                return scan_fail(s, "");
        switch (*s->p) {
        case '{':
        case '[':
                return scan_container(s);
        case '"':
                return scan_string(s);
        case 't':
                return scan_lit(s, "true");
        case 'f':
                return scan_lit(s, "false");
        case 'n':
                return scan_lit(s, "null");
        default:
                if (*s->p == '-' || (*s->p >= '0' && *s->p <= '9'))
                        return scan_number(s);
                return scan_fail(s, "unexpected character");
        }
}

/* Validates the whole input; 0, or -1 with a reason in *why. */
static int scan_document(const char *buf, size_t len, int max_depth,
                         keycounts_t *kc, const char **why)
{
        scan_t s;

        s.p = (const unsigned char *)buf;
        s.end = s.p + len;
        s.kc = kc;
        s.depth = 0;
        s.max_depth = max_depth;
        s.why = NULL;
        scan_ws(&s);
        if (scan_value(&s) == 0) {
                scan_ws(&s);
                if (s.p == s.end)
                        return 0;
                s.why = "trailing data after JSON value";
        }
        *why = s.why ? s.why : "invalid JSON";
        return -1;
}

static int compare_counts(json_object *o, const keycounts_t *kc, size_t *pos)
{
        if (json_object_is_type(o, json_type_object)) {
                struct json_object_iterator it, end;
                if (*pos >= kc->n ||
                    (size_t)json_object_object_length(o) != kc->counts[*pos])
                        return -1;
                (*pos)++;
                it = json_object_iter_begin(o);
                end = json_object_iter_end(o);
                while (!json_object_iter_equal(&it, &end)) {
                        if (compare_counts(json_object_iter_peek_value(&it), kc,
                                           pos) == -1)
                                return -1;
                        json_object_iter_next(&it);
                }
        } else if (json_object_is_type(o, json_type_array)) {
                size_t i, n = json_object_array_length(o);
                for (i = 0; i < n; i++)
                        if (compare_counts(json_object_array_get_idx(o, i), kc,
                                           pos) == -1)
                                return -1;
        }
        return 0;
}

/* A thread's json-c tokeners, kept from one parse to the next:
 * json_tokener_new_ex() allocates a stack of max_depth entries and a
 * buffer, a tenth of a small document's parse. One per depth in use (each
 * caller passes a constant, so a few). Taken out of the cache while in use;
 * freed with the thread (the key's destructor) or, the main thread's, left
 * reachable until the process ends. */
#define TOK_CACHE 4

typedef struct tok_cache_s {
        json_tokener *tok[TOK_CACHE];
        int depth[TOK_CACHE];
} tok_cache_t;

static pthread_key_t tok_key;
static pthread_once_t tok_once = PTHREAD_ONCE_INIT;
static int tok_key_ok;

static void tok_cache_free(void *p)
{
        tok_cache_t *c = p;
        int i;

        for (i = 0; i < TOK_CACHE; i++)
                if (c->tok[i])
                        json_tokener_free(c->tok[i]);
        free(c);
}

static void tok_key_init(void)
{
        tok_key_ok = pthread_key_create(&tok_key, tok_cache_free) == 0;
}

static json_tokener *tok_take(int depth)
{
        tok_cache_t *c;
        json_tokener *t;
        int i;

        pthread_once(&tok_once, tok_key_init);
        c = tok_key_ok ? pthread_getspecific(tok_key) : NULL;
        for (i = 0; c && i < TOK_CACHE; i++) {
                if (c->tok[i] && c->depth[i] == depth) {
                        t = c->tok[i];
                        c->tok[i] = NULL;
                        json_tokener_reset(t);
                        return t;
                }
        }
        return json_tokener_new_ex(depth);
}

static void tok_give(json_tokener *t, int depth)
{
        tok_cache_t *c = tok_key_ok ? pthread_getspecific(tok_key) : NULL;
        int i;

        if (!c && tok_key_ok) {
                c = calloc(1, sizeof(*c));
                if (c && pthread_setspecific(tok_key, c)) {
                        free(c);
                        c = NULL;
                }
        }
        for (i = 0; c && i < TOK_CACHE; i++) {
                if (!c->tok[i]) {
                        c->tok[i] = t;
                        c->depth[i] = depth;
                        return;
                }
        }
        json_tokener_free(t);
}

json_object *kb_json_parse(const char *buf, size_t len, int max_depth,
                           char *errstr, size_t errstr_size)
{
        json_tokener *tok = NULL;
        json_object *obj = NULL;
        keycounts_t kc = { NULL, 0, 0 };
        enum json_tokener_error jerr;
        const char *why = NULL;
        size_t pos = 0;

        if (!buf || len == 0) {
                kb_snprintf(errstr, errstr_size, "empty input");
                return NULL;
        }
        if (memchr(buf, '\0', len)) {
                kb_snprintf(errstr, errstr_size, "NUL byte in JSON input");
                return NULL;
        }
        if (len > (size_t)INT32_MAX) {
                kb_snprintf(errstr, errstr_size, "JSON input too large");
                return NULL;
        }
        if (max_depth < 1 || max_depth > 256)
                max_depth = 64;
        if (scan_document(buf, len, max_depth, &kc, &why) == -1) {
                kb_snprintf(errstr, errstr_size, "%s", why);
                goto fail;
        }
        /* json-c counts the top level as one level of its own */
        tok = tok_take(max_depth + 1);
        if (!tok) {
                kb_snprintf(errstr, errstr_size, "out of memory");
                goto fail;
        }
        json_tokener_set_flags(tok, JSON_TOKENER_STRICT |
                                        JSON_TOKENER_VALIDATE_UTF8);
        obj = json_tokener_parse_ex(tok, buf, (int)len);
        jerr = json_tokener_get_error(tok);
        if (!obj && jerr == json_tokener_continue) {
                /* a top-level number has no end of its own: json-c wants
                 * the terminating NUL to finish it */
                obj = json_tokener_parse_ex(tok, "", 1);
                jerr = json_tokener_get_error(tok);
        }
        if (!obj && jerr == json_tokener_success) {
                /* json-c represents null as NULL: nothing to return */
                kb_snprintf(errstr, errstr_size,
                            "JSON null at the top level is not supported");
                goto fail;
        }
        if (!obj || jerr != json_tokener_success) {
                kb_snprintf(errstr, errstr_size, "invalid JSON: %s",
                            json_tokener_error_desc(jerr));
                goto fail;
        }
        if (compare_counts(obj, &kc, &pos) == -1 || pos != kc.n) {
                kb_snprintf(errstr, errstr_size,
                            "duplicate key in JSON object");
                goto fail;
        }
        free(kc.counts);
        tok_give(tok, max_depth + 1);
        return obj;
fail:
        free(kc.counts);
        json_object_put(obj);
        if (tok) /* json_tokener_free(NULL) crashes */
                tok_give(tok, max_depth + 1);
        return NULL;
}

json_object *kb_json_get(json_object *obj, const char *key)
{
        json_object *v = NULL;

        if (!obj || !json_object_is_type(obj, json_type_object))
                return NULL;
        if (!json_object_object_get_ex(obj, key, &v))
                return NULL;
        return v;
}

const char *kb_json_get_str(json_object *obj, const char *key)
{
        json_object *v = kb_json_get(obj, key);

        if (!v || !json_object_is_type(v, json_type_string))
                return NULL;
        /* "\u0000" would silently shorten the C string */
        if ((size_t)json_object_get_string_len(v) !=
            strlen(json_object_get_string(v)))
                return NULL;
        return json_object_get_string(v);
}

int kb_json_get_i64(json_object *obj, const char *key, int64_t *out)
{
        json_object *v = kb_json_get(obj, key);
        int64_t i;

        if (!v || !json_object_is_type(v, json_type_int))
                return -1;
        /*
         * json-c parses out-of-range integers without error, clamped to
         * INT64_MIN or UINT64_MAX, and json_object_get_int64() clamps
         * values above INT64_MAX again, without setting errno. A
         * non-negative value must read the same as uint64; INT64_MIN is
         * refused because it cannot be told apart from a clamped value.
         */
        i = json_object_get_int64(v);
        if (i == INT64_MIN ||
            (i >= 0 && json_object_get_uint64(v) != (uint64_t)i))
                return -1;
        *out = i;
        return 0;
}

int kb_json_get_bool(json_object *obj, const char *key, int *out)
{
        json_object *v = kb_json_get(obj, key);

        if (!v || !json_object_is_type(v, json_type_boolean))
                return -1;
        *out = json_object_get_boolean(v) ? 1 : 0;
        return 0;
}

const char *kb_json_str(json_object *obj, size_t *len)
{
        return json_object_to_json_string_length(
            obj, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE, len);
}

int kb_json_add_str(json_object *obj, const char *key, const char *val)
{
        json_object *v;

        if (!val)
                return 0;
        v = json_object_new_string(val);
        if (!v)
                return -1;
        if (json_object_object_add(obj, key, v) != 0) {
                json_object_put(v);
                return -1;
        }
        return 0;
}

int kb_json_add_i64(json_object *obj, const char *key, int64_t val)
{
        json_object *v = json_object_new_int64(val);

        if (!v)
                return -1;
        if (json_object_object_add(obj, key, v) != 0) {
                json_object_put(v);
                return -1;
        }
        return 0;
}

int kb_json_put_string_ex(kb_buf_t *out, const char *s, size_t len, int utf8)
{
        static const char hex[] = "0123456789abcdef";
        const unsigned char *p = (const unsigned char *)s;
        size_t i = 0, run = 0, start = out->len;

        if (kb_buf_reserve(out, len + 2) == -1 ||
            kb_buf_append(out, "\"", 1) == -1)
                goto nomem;
        while (i < len) {
                unsigned char c = p[i];
                char esc[7];
                size_t elen = 2, n;

                if (c >= 0x80) {
                        n = kb_utf8_next(p + i, len - i, NULL);
                        if (n) {
                                i += n;
                                continue;
                        }
                        if (utf8 != KB_JSON_UTF8_REPLACE) {
                                out->len = start;
                                out->data[start] = '\0';
                                errno = EILSEQ;
                                return -1;
                        }
                        memcpy(esc, "\\ufffd", 6);
                        elen = 6;
                } else if (c >= 0x20 && c != '"' && c != '\\') {
                        i++;
                        continue;
                } else {
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
                }
                /* flush the raw run before this byte, then its escape */
                if ((i > run && kb_buf_append(out, s + run, i - run) == -1) ||
                    kb_buf_append(out, esc, elen) == -1)
                        goto nomem;
                run = ++i;
        }
        if ((len > run && kb_buf_append(out, s + run, len - run) == -1) ||
            kb_buf_append(out, "\"", 1) == -1)
                goto nomem;
        return 0;
nomem:
        if (out->data) {
                out->len = start;
                out->data[start] = '\0';
        }
        errno = ENOMEM;
        return -1;
}

int kb_json_put_string(kb_buf_t *out, const char *s, size_t len)
{
        return kb_json_put_string_ex(out, s, len, KB_JSON_UTF8_REFUSE);
}
