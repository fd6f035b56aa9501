/* json.c -- strict JSON parsing (no duplicate keys) and json-c accessors */
#include "json.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

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

/* Counts keys per object. Only meaningful for input json-c accepts; must be
 * memory-safe for any input. */
static int count_keys(const char *buf, size_t len, int max_depth,
                      keycounts_t *kc)
{
        /* stack of object-count indexes; SIZE_MAX marks an array */
        size_t stack[256];
        int depth = 0, expect_key = 0;
        size_t i;

        if (max_depth > (int)KB_ARRAY_SIZE(stack))
                max_depth = (int)KB_ARRAY_SIZE(stack);
        for (i = 0; i < len; i++) {
                char c = buf[i];
                if (c == '"') {
                        if (expect_key && depth > 0 &&
                            stack[depth - 1] != SIZE_MAX) {
                                kc->counts[stack[depth - 1]]++;
                        }
                        expect_key = 0;
                        for (i++; i < len && buf[i] != '"'; i++)
                                if (buf[i] == '\\')
                                        i++;
                        continue;
                }
                switch (c) {
                case '{':
                        if (depth >= max_depth)
                                return -1;
                        if (kc_push(kc, &stack[depth]) == -1)
                                return -1;
                        depth++;
                        expect_key = 1;
                        break;
                case '[':
                        if (depth >= max_depth)
                                return -1;
                        stack[depth++] = SIZE_MAX;
                        expect_key = 0;
                        break;
                case '}':
                case ']':
                        if (depth > 0)
                                depth--;
                        expect_key = 0;
                        break;
                case ',':
                        expect_key = depth > 0 && stack[depth - 1] != SIZE_MAX;
                        break;
                default:
                        break;
                }
        }
        return 0;
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
                        if (compare_counts(json_object_iter_peek_value(&it),
                                           kc, pos) == -1)
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

json_object *kb_json_parse(const char *buf, size_t len, int max_depth,
                           char *errstr, size_t errstr_size)
{
        json_tokener *tok = NULL;
        json_object *obj = NULL;
        keycounts_t kc = { NULL, 0, 0 };
        enum json_tokener_error jerr;
        size_t off, pos = 0;

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
        tok = json_tokener_new_ex(max_depth);
        if (!tok) {
                kb_snprintf(errstr, errstr_size, "out of memory");
                return NULL;
        }
        json_tokener_set_flags(tok, JSON_TOKENER_STRICT |
                                            JSON_TOKENER_VALIDATE_UTF8);
        obj = json_tokener_parse_ex(tok, buf, (int)len);
        jerr = json_tokener_get_error(tok);
        if (!obj && jerr == json_tokener_continue) {
                kb_snprintf(errstr, errstr_size, "truncated JSON");
                goto fail;
        }
        if (jerr != json_tokener_success) {
                kb_snprintf(errstr, errstr_size, "invalid JSON: %s",
                            json_tokener_error_desc(jerr));
                goto fail;
        }
        off = json_tokener_get_parse_end(tok);
        for (; off < len; off++) {
                char c = buf[off];
                if (c != ' ' && c != '\t' && c != '\n' && c != '\r') {
                        kb_snprintf(errstr, errstr_size,
                                    "trailing data after JSON value");
                        goto fail;
                }
        }
        if (count_keys(buf, len, max_depth, &kc) == -1) {
                kb_snprintf(errstr, errstr_size, "JSON nested too deeply");
                goto fail;
        }
        if (compare_counts(obj, &kc, &pos) == -1 || pos != kc.n) {
                kb_snprintf(errstr, errstr_size, "duplicate key in JSON object");
                goto fail;
        }
        free(kc.counts);
        json_tokener_free(tok);
        return obj;
fail:
        free(kc.counts);
        json_object_put(obj);
        json_tokener_free(tok);
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
        return json_object_get_string(v);
}

int kb_json_get_i64(json_object *obj, const char *key, int64_t *out)
{
        json_object *v = kb_json_get(obj, key);

        if (!v || !json_object_is_type(v, json_type_int))
                return -1;
        errno = 0;
        *out = json_object_get_int64(v);
        /* json-c clamps out-of-range integers and sets errno */
        if (errno == ERANGE)
                return -1;
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
                obj, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE,
                len);
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
