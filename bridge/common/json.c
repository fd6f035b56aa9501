/* json.c -- strict JSON parsing (no duplicate keys) and json-c accessors */
#include "json.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "jview.h"
#include "utf8.h"
#include "util.h"

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
        enum json_tokener_error jerr;
        kb_jview_t jv;

        /* the strict checks, duplicate keys included: json-c alone would
         * take more and keep the last of duplicate keys */
        if (kb_jview_init(&jv, buf, len, max_depth, errstr, errstr_size))
                return NULL;
        kb_jview_clear(&jv);
        if (max_depth < 1 || max_depth > 256)
                max_depth = 64;
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
        tok_give(tok, max_depth + 1);
        return obj;
fail:
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
