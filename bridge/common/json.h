/* json.h -- strict JSON parsing (no duplicate keys) and json-c accessors */
#ifndef KB_JSON_H
#define KB_JSON_H

#include <stddef.h>
#include <stdint.h>

#include <json-c/json.h>

#include "util.h"

/**
 * Parses exactly one JSON value from @p buf / @p len, strictly: RFC 8259
 * grammar only, valid UTF-8, no NUL bytes, nothing but whitespace after the
 * value, nesting at most @p max_depth, and no object with a duplicate key
 * (kb_jview_init() checks all that; keys compare as jview.h says).
 * Any value may stand at the top level except null (json-c has no object
 * for it). Returns a new reference (json_object_put() it) or NULL with a
 * reason in @p errstr (the reason never quotes the input).
 */
json_object *kb_json_parse(const char *buf, size_t len, int max_depth,
                           char *errstr, size_t errstr_size);

/** String member @p key, or NULL when absent, not a string or holding a
 * NUL character ("\u0000"). */
const char *kb_json_get_str(json_object *obj, const char *key);
/** Integer member (a JSON integer, not a float). 0 ok, -1 absent/wrong type
 * or out of range (INT64_MIN itself counts as out of range: json-c clamps
 * smaller numbers to it). */
int kb_json_get_i64(json_object *obj, const char *key, int64_t *out);
/** Boolean member. 0 ok, -1 absent/wrong type. */
int kb_json_get_bool(json_object *obj, const char *key, int *out);
/** Member of any type, or NULL (also for a JSON null: json-c represents
 * null as NULL). Borrowed reference. */
json_object *kb_json_get(json_object *obj, const char *key);

/** Compact serialisation (no spaces, "/" unescaped). Owned by @p obj. */
const char *kb_json_str(json_object *obj, size_t *len);

/* What kb_json_put_string_ex() does with bytes that are not UTF-8. */
#define KB_JSON_UTF8_REFUSE  0 /* fail with errno EILSEQ, @p out unchanged */
#define KB_JSON_UTF8_REPLACE 1 /* write \ufffd for each such byte */

/**
 * Appends @p s (@p len bytes) as a JSON string with minimal escaping:
 * \" \\ \b \f \n \r \t, other control characters U+0000..U+001F as
 * \u00xx (lowercase hex), everything else raw UTF-8 (DEL, U+2028, "/"
 * included) -- what Python's json module writes with ensure_ascii=False
 * (canonical JSON relies on it). This is the one JSON string escaper of the
 * code base. Bytes that are not well-formed UTF-8 (kb_utf8_next()) are
 * handled as @p utf8 says: KB_JSON_UTF8_REFUSE or KB_JSON_UTF8_REPLACE (the
 * log, whose lines must stay valid JSON whatever the message holds).
 * Returns 0, or -1 with errno ENOMEM or EILSEQ; on failure @p out keeps its
 * old length. Never reallocates when 6 * @p len + 2 bytes were reserved.
 */
int kb_json_put_string_ex(kb_buf_t *out, const char *s, size_t len, int utf8);

/** kb_json_put_string_ex() with KB_JSON_UTF8_REFUSE. */
int kb_json_put_string(kb_buf_t *out, const char *s, size_t len);

/** Adds a string member (ignores NULL values). 0 or -1. */
int kb_json_add_str(json_object *obj, const char *key, const char *val);
/** Adds an integer member. 0 or -1. */
int kb_json_add_i64(json_object *obj, const char *key, int64_t val);

#endif /* KB_JSON_H */
