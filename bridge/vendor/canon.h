/* canon.h -- canonical JSON for webhook signatures (vendor's sorted, compact
 * form) */
#ifndef KB_CANON_H
#define KB_CANON_H

#include <stddef.h>

#include <json-c/json.h>

#include "kyc_bridge.h"
#include "util.h"

/*
 * Canonical JSON as API-CONTRACT.md "Webhooks" specifies, byte for byte what
 * the vendor's Python sample produces:
 *
 *   json.dumps(process_value(obj), sort_keys=True, ensure_ascii=False,
 *              separators=(",", ":"))
 *
 * where process_value() turns every float that is a whole number into an int.
 *
 * - Object keys sorted by Unicode code point, recursively. Python compares
 *   str by code point; for valid UTF-8 a bytewise (unsigned) comparison gives
 *   exactly code point order, so keys are sorted with strcmp(). (This is NOT
 *   JavaScript's UTF-16 code unit order, which differs for keys mixing
 *   U+E000..U+FFFF with astral characters.)
 * - No whitespace.
 * - Integers as integers (json-c int64, and uint64 above INT64_MAX); doubles
 *   that are whole numbers as the exact integer (1.0 -> 1, -0.0 -> 0,
 *   1e20 -> 100000000000000000000, like Python's int(x)); other doubles in
 *   Python repr() form (shortest round-trip digits; exponent form when the
 *   decimal exponent is < -4, e.g. 1e-05, 1.5e-07; else fixed, 0.0001).
 * - Strings: \" \\ \b \f \n \r \t, other control characters U+0000..U+001F
 *   as \u00xx (lowercase hex), everything else raw UTF-8 (including DEL,
 *   U+2028, U+2029 and "/").
 * - true, false, null (a NULL json_object * is JSON null in json-c).
 *
 * Known limits inherited from json-c (the signature then simply does not
 * match): integers outside [INT64_MIN, UINT64_MAX] are clamped by the json-c
 * parser, and an object key containing U+0000 is truncated there.
 */

/**
 * Appends the canonical JSON of @p obj to @p out. On failure @p out is left
 * as it was (its length restored). Returns KB_OK, KB_ERR_NOMEM,
 * KB_ERR_INVALID_ARG (NaN or infinity, a string or key that is not valid
 * UTF-8, nesting deeper than KB_CANON_MAX_DEPTH, or @p out NULL).
 * Thread-safe (does not modify @p obj).
 */
int kb_canon_json(json_object *obj, kb_buf_t *out) KB_WUR;

#define KB_CANON_MAX_DEPTH 512

/* Longest output of kb_canon_double_repr(), with NUL
 * ("-2.2250738585072014e-308"). */
#define KB_CANON_REPR_BYTES 32U

/**
 * Formats a finite double exactly like Python's repr(float): shortest digits
 * that round-trip, "1e-05", "0.0001", "1e+16", "1234.5", "1.0", "-0.0".
 * (Canonical JSON uses this only for non-whole values.) @p size must be at
 * least KB_CANON_REPR_BYTES. Returns KB_OK or KB_ERR_INVALID_ARG (NaN,
 * infinity, small buffer).
 */
int kb_canon_double_repr(double d, char *out, size_t size) KB_WUR;

#endif /* KB_CANON_H */
