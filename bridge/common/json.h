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
 * value, nesting at most @p max_depth, and no object with a duplicate key.
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

/**
 * Appends @p s (@p len bytes, not checked for UTF-8) as a JSON string with
 * minimal escaping: \" \\ \b \f \n \r \t, other control characters as
 * \u00xx, everything else raw -- what Python's json module writes with
 * ensure_ascii=False (canonical JSON relies on it). 0, or -1 on ENOMEM.
 */
int kb_json_put_string(kb_buf_t *out, const char *s, size_t len);

/** Adds a string member (ignores NULL values). 0 or -1. */
int kb_json_add_str(json_object *obj, const char *key, const char *val);
/** Adds an integer member. 0 or -1. */
int kb_json_add_i64(json_object *obj, const char *key, int64_t val);

#endif /* KB_JSON_H */
