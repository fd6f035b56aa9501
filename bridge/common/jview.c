/* jview.c -- strict JSON validation, and read-only views of raw JSON text */
#include "jview.h"

#include <stdlib.h>
#include <string.h>

#include "utf8.h"
#include "util.h"

/* Objects with more members than this are checked for duplicate keys by
 * sorting their key hashes, smaller ones pair by pair. */
#define DUP_PAIRWISE_MAX 24

/* ---- decoding a validated string ---- */

static unsigned hexval(unsigned char c)
{
        if (c >= '0' && c <= '9')
                return c - '0';
        if (c >= 'a' && c <= 'f')
                return c - 'a' + 10;
        return c - 'A' + 10;
}

static uint32_t hex4(const unsigned char *p)
{
        return (hexval(p[0]) << 12) | (hexval(p[1]) << 8) |
               (hexval(p[2]) << 4) | hexval(p[3]);
}

/*
 * The code point at *pp inside a validated string (not at its closing
 * quote), advancing *pp past it: a raw UTF-8 character or an escape (a
 * surrogate pair of escapes is one code point).
 */
static uint32_t str_next(const unsigned char **pp)
{
        const unsigned char *p = *pp;
        uint32_t cp, lo;
        size_t n;

        if (*p != '\\') {
                /* validated: the whole sequence is there */
                n = kb_utf8_next(p, 4, &cp);
                *pp = p + (n ? n : 1);
                return n ? cp : *p;
        }
        switch (p[1]) {
        case 'b':
                cp = '\b';
                break;
        case 'f':
                cp = '\f';
                break;
        case 'n':
                cp = '\n';
                break;
        case 'r':
                cp = '\r';
                break;
        case 't':
                cp = '\t';
                break;
        case 'u':
                cp = hex4(p + 2);
                if (cp >= 0xd800 && cp <= 0xdbff) {
                        lo = hex4(p + 8); /* "\uXXXX\uYYYY" */
                        *pp = p + 12;
                        return 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
                }
                *pp = p + 6;
                return cp;
        default: /* " \ / */
                cp = p[1];
                break;
        }
        *pp = p + 2;
        return cp;
}

/* UTF-8 of @p cp (a scalar value) into @p out; its length. */
static size_t utf8_put(uint32_t cp, unsigned char out[4])
{
        if (cp < 0x80) {
                out[0] = (unsigned char)cp;
                return 1;
        }
        if (cp < 0x800) {
                out[0] = (unsigned char)(0xc0 | (cp >> 6));
                out[1] = (unsigned char)(0x80 | (cp & 0x3f));
                return 2;
        }
        if (cp < 0x10000) {
                out[0] = (unsigned char)(0xe0 | (cp >> 12));
                out[1] = (unsigned char)(0x80 | ((cp >> 6) & 0x3f));
                out[2] = (unsigned char)(0x80 | (cp & 0x3f));
                return 3;
        }
        out[0] = (unsigned char)(0xf0 | (cp >> 18));
        out[1] = (unsigned char)(0x80 | ((cp >> 12) & 0x3f));
        out[2] = (unsigned char)(0x80 | ((cp >> 6) & 0x3f));
        out[3] = (unsigned char)(0x80 | (cp & 0x3f));
        return 4;
}

#define FNV_BASIS 2166136261u
#define FNV_PRIME 16777619u

/* FNV-1a of a key's decoded bytes up to a first NUL; @p k the JSON string,
 * quotes included. */
static uint32_t key_hash(kb_jval_t k, int esc)
{
        const unsigned char *p = (const unsigned char *)k.p + 1;
        const unsigned char *end = (const unsigned char *)k.p + k.len - 1;
        uint32_t h = FNV_BASIS;

        if (!esc) {
                /* raw text holds no NUL: the bytes are the key */
                while (p < end)
                        h = (h ^ *p++) * FNV_PRIME;
                return h;
        }
        while (p < end) {
                unsigned char u[4];
                uint32_t cp = str_next(&p);
                size_t i, n;
                if (cp == 0)
                        break;
                n = utf8_put(cp, u);
                for (i = 0; i < n; i++)
                        h = (h ^ u[i]) * FNV_PRIME;
        }
        return h;
}

/* Non-zero when keys @p a and @p b are the same key (decoded, up to a
 * first NUL). */
static int key_eq(const kb_jmember_t *a, const kb_jmember_t *b)
{
        const unsigned char *pa, *pb, *ea, *eb;

        if (a->hash != b->hash)
                return 0;
        if (!a->esc && !b->esc)
                return a->key.len == b->key.len &&
                       !memcmp(a->key.p, b->key.p, a->key.len);
        pa = (const unsigned char *)a->key.p + 1;
        ea = (const unsigned char *)a->key.p + a->key.len - 1;
        pb = (const unsigned char *)b->key.p + 1;
        eb = (const unsigned char *)b->key.p + b->key.len - 1;
        for (;;) {
                uint32_t ca = pa < ea ? str_next(&pa) : 0;
                uint32_t cb = pb < eb ? str_next(&pb) : 0;
                if (ca != cb)
                        return 0;
                if (ca == 0)
                        return 1;
        }
}

/* ---- the scanner ---- */

/*
 * Strict RFC 8259 scanner (json-c's STRICT mode still takes single-quoted
 * keys, NaN, Infinity, "1.", raw control characters in strings and some
 * invalid UTF-8). It checks the grammar, well-formed UTF-8, paired
 * surrogate escapes and the nesting depth. The keys of the objects being
 * scanned sit on a stack (jv->stack): each object's keys are checked for
 * duplicates when it closes and popped, except the root object's, which
 * the view keeps.
 */
typedef struct {
        const unsigned char *p, *end;
        kb_jview_t *jv;
        size_t top; /* entries on jv->stack */
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

/* A byte that stands for itself in a string: printable ASCII but '"' and
 * '\\' (most of a document's bytes: skipped in a tight loop). */
static int is_plain(unsigned c)
{
        return c >= 0x20 && c < 0x80 && c != '"' && c != '\\';
}

/* A string at s->p; *esc set when it holds an escape. */
static int scan_string(scan_t *s, int *esc)
{
        s->p++; /* the opening quote */
        while (s->p < s->end) {
                unsigned c, cu, lo;
                while (s->p < s->end && is_plain(*s->p))
                        s->p++;
                if (s->p >= s->end)
                        break;
                c = *s->p;
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
                *esc = 1;
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

/* A free entry on the key stack, or NULL on ENOMEM. */
static kb_jmember_t *key_push(scan_t *s)
{
        kb_jview_t *jv = s->jv;

        if (s->top == jv->cap) {
                size_t ncap = jv->cap * 2;
                kb_jmember_t *p;
                if (jv->stack == jv->inl) {
                        p = malloc(ncap * sizeof(*p));
                        if (p)
                                memcpy(p, jv->inl, sizeof(jv->inl));
                } else {
                        p = realloc(jv->stack, ncap * sizeof(*p));
                }
                if (!p)
                        return NULL;
                jv->stack = p;
                jv->cap = ncap;
        }
        return &jv->stack[s->top++];
}

typedef struct {
        uint32_t hash;
        uint32_t idx;
} hidx_t;

static int hidx_cmp(const void *a, const void *b)
{
        const hidx_t *x = a, *y = b;

        if (x->hash != y->hash)
                return x->hash < y->hash ? -1 : 1;
        return x->idx < y->idx ? -1 : x->idx > y->idx;
}

/* 1 when two of the @p n keys at @p m are the same key, 0 when not, -1 on
 * ENOMEM. */
static int has_dup(const kb_jmember_t *m, size_t n)
{
        hidx_t *h;
        size_t i, j;
        int r = 0;

        if (n <= DUP_PAIRWISE_MAX) {
                for (i = 1; i < n; i++)
                        for (j = 0; j < i; j++)
                                if (key_eq(&m[i], &m[j]))
                                        return 1;
                return 0;
        }
        h = malloc(n * sizeof(*h));
        if (!h)
                return -1;
        for (i = 0; i < n; i++) {
                h[i].hash = m[i].hash;
                h[i].idx = (uint32_t)i;
        }
        qsort(h, n, sizeof(*h), hidx_cmp);
        for (i = 0; i < n && !r; i++)
                for (j = i + 1; j < n && h[j].hash == h[i].hash && !r; j++)
                        r = key_eq(&m[h[i].idx], &m[h[j].idx]);
        free(h);
        return r;
}

static int scan_value(scan_t *s);

/* Object or array at s->p ('{' or '['). */
static int scan_container(scan_t *s)
{
        int is_obj = *s->p == '{';
        unsigned char close = is_obj ? '}' : ']';
        size_t base = s->top;

        if (s->depth >= s->max_depth)
                return scan_fail(s, "JSON nested too deeply");
        s->depth++;
        s->p++;
        scan_ws(s);
        if (s->p < s->end && *s->p == close) {
                s->p++;
                s->depth--;
                return 0;
        }
        for (;;) {
                kb_jmember_t *m = NULL;
                if (is_obj) {
                        const unsigned char *k = s->p;
                        int esc = 0;
                        if (s->p >= s->end || *s->p != '"')
                                return scan_fail(s, "expected a string key");
                        if (scan_string(s, &esc))
                                return -1;
                        m = key_push(s);
                        if (!m)
                                return scan_fail(s, "out of memory");
                        m->key.p = (const char *)k;
                        m->key.len = (size_t)(s->p - k);
                        m->esc = esc;
                        m->hash = key_hash(m->key, esc);
                        scan_ws(s);
                        if (s->p >= s->end || *s->p != ':')
                                return scan_fail(s, "expected ':'");
                        s->p++;
                        scan_ws(s);
                        /* the stack may move while the value is scanned:
                         * its entry is found again by index */
                        m->val.p = (const char *)s->p;
                }
                if (scan_value(s))
                        return -1;
                if (is_obj) {
                        m = &s->jv->stack[s->top - 1];
                        /* nested objects popped their keys: ours is on
                         * top again */
                        m->val.len = (size_t)((const char *)s->p - m->val.p);
                }
                scan_ws(s);
                if (s->p >= s->end)
                        return scan_fail(s, "");
                if (*s->p == close)
                        break;
                if (*s->p != ',')
                        return scan_fail(s, "expected ',' or a closing "
                                            "bracket");
                s->p++;
                scan_ws(s);
        }
        s->p++;
        s->depth--;
        if (is_obj) {
                int d = has_dup(&s->jv->stack[base], s->top - base);
                if (d) {
                        if (!s->why)
                                s->why = d > 0 ? "duplicate key in JSON object"
                                               : "out of memory";
                        return -1;
                }
                /* the root object's keys stay for the view */
                if (s->depth > 0)
                        s->top = base;
        }
        return 0;
}

static int scan_value(scan_t *s)
{
        if (s->p >= s->end)
                return scan_fail(s, "");
        switch (*s->p) {
        case '{':
        case '[':
                return scan_container(s);
        case '"': {
                int esc = 0;
                return scan_string(s, &esc);
        }
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

void kb_jview_clear(kb_jview_t *jv)
{
        if (!jv)
                return;
        if (jv->stack && jv->stack != jv->inl)
                free(jv->stack);
        jv->stack = jv->inl;
        jv->cap = KB_JVIEW_INLINE;
        jv->root.p = NULL;
        jv->root.len = 0;
        jv->m = jv->inl;
        jv->n = 0;
}

int kb_jview_init(kb_jview_t *jv, const char *buf, size_t len, int max_depth,
                  char *errstr, size_t errstr_size)
{
        const char *why = NULL;
        scan_t s;

        jv->stack = NULL;
        kb_jview_clear(jv);
        if (!buf || len == 0) {
                kb_snprintf(errstr, errstr_size, "empty input");
                return -1;
        }
        if (memchr(buf, '\0', len)) {
                kb_snprintf(errstr, errstr_size, "NUL byte in JSON input");
                return -1;
        }
        if (len > (size_t)INT32_MAX) {
                kb_snprintf(errstr, errstr_size, "JSON input too large");
                return -1;
        }
        if (max_depth < 1 || max_depth > 256)
                max_depth = 64;
        s.p = (const unsigned char *)buf;
        s.end = s.p + len;
        s.jv = jv;
        s.top = 0;
        s.depth = 0;
        s.max_depth = max_depth;
        s.why = NULL;
        scan_ws(&s);
        jv->root.p = (const char *)s.p;
        if (scan_value(&s) == 0) {
                jv->root.len = (size_t)((const char *)s.p - jv->root.p);
                scan_ws(&s);
                if (s.p == s.end) {
                        jv->m = jv->stack;
                        jv->n = *jv->root.p == '{' ? s.top : 0;
                        return 0;
                }
                s.why = "trailing data after JSON value";
        }
        why = s.why ? s.why : "invalid JSON";
        kb_snprintf(errstr, errstr_size, "%s", why);
        kb_jview_clear(jv);
        return -1;
}

/* ---- reading validated text ---- */

static const char *skip_ws(const char *p)
{
        while (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r')
                p++;
        return p;
}

/* Past the string at @p p (at its opening quote). */
static const char *skip_string(const char *p)
{
        for (p++;; p++) {
                if (*p == '\\')
                        p++;
                else if (*p == '"')
                        return p + 1;
        }
}

/* Past the value at @p p, which something follows inside its container
 * (a number or literal ends at the first byte that cannot be part of it). */
static const char *skip_value(const char *p)
{
        int depth = 0;

        switch (*p) {
        case '"':
                return skip_string(p);
        case '{':
        case '[':
                for (;;) {
                        switch (*p) {
                        case '"':
                                p = skip_string(p);
                                continue;
                        case '{':
                        case '[':
                                depth++;
                                break;
                        case '}':
                        case ']':
                                if (--depth == 0)
                                        return p + 1;
                                break;
                        default:
                                break;
                        }
                        p++;
                }
        default:
                while (*p != ',' && *p != ']' && *p != '}' && *p != ' ' &&
                       *p != '\t' && *p != '\n' && *p != '\r')
                        p++;
                return p;
        }
}

kb_jtype_t kb_jval_type(kb_jval_t v)
{
        if (!v.p || !v.len)
                return KB_JV_ABSENT;
        switch (*v.p) {
        case 'n':
                return KB_JV_NULL;
        case 't':
        case 'f':
                return KB_JV_BOOL;
        case '"':
                return KB_JV_STRING;
        case '[':
                return KB_JV_ARRAY;
        case '{':
                return KB_JV_OBJECT;
        default:
                return KB_JV_NUMBER;
        }
}

void kb_jval_iter(kb_jval_t container, kb_jiter_t *it)
{
        kb_jtype_t t = kb_jval_type(container);

        it->obj = t == KB_JV_OBJECT;
        it->p = t == KB_JV_OBJECT || t == KB_JV_ARRAY ? container.p + 1 : NULL;
}

int kb_jiter_next(kb_jiter_t *it, kb_jval_t *key, kb_jval_t *val)
{
        const char *p = it->p, *q;

        if (!p)
                return 0;
        p = skip_ws(p);
        if (*p == ',')
                p = skip_ws(p + 1);
        if (*p == ']' || *p == '}') {
                it->p = NULL;
                return 0;
        }
        if (key) {
                key->p = NULL;
                key->len = 0;
        }
        if (it->obj) {
                q = skip_string(p);
                if (key) {
                        key->p = p;
                        key->len = (size_t)(q - p);
                }
                p = skip_ws(skip_ws(q) + 1); /* past ':' */
        }
        q = skip_value(p);
        val->p = p;
        val->len = (size_t)(q - p);
        it->p = q;
        return 1;
}

size_t kb_jval_count(kb_jval_t container)
{
        kb_jiter_t it;
        kb_jval_t v;
        size_t n = 0;

        kb_jval_iter(container, &it);
        while (kb_jiter_next(&it, NULL, &v))
                n++;
        return n;
}

int kb_jval_key_is(kb_jval_t key, const char *name)
{
        const unsigned char *p, *e, *q = (const unsigned char *)name;
        size_t n;

        if (kb_jval_type(key) != KB_JV_STRING)
                return 0;
        p = (const unsigned char *)key.p + 1;
        e = (const unsigned char *)key.p + key.len - 1;
        if (!memchr(p, '\\', (size_t)(e - p))) {
                n = strlen(name);
                return (size_t)(e - p) == n && !memcmp(p, name, n);
        }
        /* decoded, up to a first NUL (see jview.h) */
        for (;;) {
                uint32_t c = p < e ? str_next(&p) : 0;
                unsigned char u[4];
                size_t k, m;
                if (c == 0)
                        return *q == '\0';
                m = utf8_put(c, u);
                for (k = 0; k < m; k++)
                        if (*q++ != u[k])
                                return 0;
        }
}

kb_jval_t kb_jval_member(kb_jval_t obj, const char *key)
{
        kb_jval_t k, v, none = { NULL, 0 };
        kb_jiter_t it;

        if (kb_jval_type(obj) != KB_JV_OBJECT)
                return none;
        kb_jval_iter(obj, &it);
        while (kb_jiter_next(&it, &k, &v))
                if (kb_jval_key_is(k, key))
                        return v;
        return none;
}

kb_jval_t kb_jview_get(const kb_jview_t *jv, const char *key)
{
        kb_jval_t none = { NULL, 0 };
        size_t i;

        for (i = 0; i < jv->n; i++)
                if (kb_jval_key_is(jv->m[i].key, key))
                        return jv->m[i].val;
        return none;
}

void kb_jview_pick(const kb_jview_t *jv, const char *const *names, size_t n,
                   kb_jval_t *out)
{
        size_t i, j, left = n;

        for (j = 0; j < n; j++) {
                out[j].p = NULL;
                out[j].len = 0;
        }
        for (i = 0; i < jv->n && left; i++) {
                const kb_jmember_t *m = &jv->m[i];
                for (j = 0; j < n; j++) {
                        /* a key without escapes is its raw text */
                        if (out[j].p ||
                            (m->esc ? !kb_jval_key_is(m->key, names[j])
                                    : m->key.len - 2 != strlen(names[j]) ||
                                          memcmp(m->key.p + 1, names[j],
                                                 m->key.len - 2)))
                                continue;
                        /* keys are unique (the scanner refuses others) */
                        out[j] = m->val;
                        left--;
                        break;
                }
        }
}

int kb_jval_str(kb_jval_t v, char *out, size_t outsz, size_t *outlen)
{
        const unsigned char *p, *e;
        size_t o = 0;

        if (outsz)
                out[0] = '\0';
        if (kb_jval_type(v) != KB_JV_STRING)
                return -1;
        p = (const unsigned char *)v.p + 1;
        e = (const unsigned char *)v.p + v.len - 1;
        while (p < e) {
                const unsigned char *run = p;
                unsigned char u[4];
                uint32_t c;
                size_t m;
                /* copy plain runs as they are */
                while (p < e && *p != '\\')
                        p++;
                if (p > run) {
                        if (o + (size_t)(p - run) >= outsz)
                                goto toolong;
                        memcpy(out + o, run, (size_t)(p - run));
                        o += (size_t)(p - run);
                        continue;
                }
                c = str_next(&p);
                if (c == 0)
                        goto toolong;
                m = utf8_put(c, u);
                if (o + m >= outsz)
                        goto toolong;
                memcpy(out + o, u, m);
                o += m;
        }
        if (o >= outsz)
                goto toolong;
        out[o] = '\0';
        if (outlen)
                *outlen = o;
        return 0;
toolong:
        if (outsz)
                out[0] = '\0';
        return -1;
}

int kb_jval_i64(kb_jval_t v, int64_t *out)
{
        uint64_t acc = 0;
        size_t i = 0;
        int neg = 0;

        if (!v.p || v.len == 0)
                return -1;
        if (v.p[0] == '-')
                neg = i = 1;
        if (i == v.len)
                return -1;
        for (; i < v.len; i++) {
                unsigned d = (unsigned)((unsigned char)v.p[i] - '0');
                /* a fraction or an exponent: json-c makes a double of it */
                if (d > 9)
                        return -1;
                if (acc > (UINT64_MAX - d) / 10)
                        return -1;
                acc = acc * 10 + d;
        }
        /* INT64_MIN too: kb_json_get_i64() cannot tell it from json-c's
         * clamp */
        if (acc > (uint64_t)INT64_MAX)
                return -1;
        *out = neg ? -(int64_t)acc : (int64_t)acc;
        return 0;
}

int kb_jval_str_raw(kb_jval_t v, const char **s, size_t *len)
{
        if (kb_jval_type(v) != KB_JV_STRING || memchr(v.p + 1, '\\', v.len - 2))
                return -1;
        *s = v.p + 1;
        *len = v.len - 2;
        return 0;
}
