/* jwt.h -- HS256 JSON Web Tokens (vendor share tokens): sign, verify, peek */
#ifndef KB_JWT_H
#define KB_JWT_H

#include <stddef.h>

#include <json-c/json.h>

#include "kyc_bridge.h"

/* Longest token accepted by verify/decode (bytes, without NUL). */
#define KB_JWT_MAX_TOKEN 8192U

/*
 * Compact JWS (RFC 7515/7519) with HMAC-SHA256 only. Segments are base64url
 * without padding (RFC 7515 section 2); decoding is strict: no padding, no
 * whitespace, no non-zero trailing bits, so every token has one spelling.
 */

/**
 * Signs @p claims (a JSON object, serialised compactly with members in
 * insertion order, non-ASCII as raw UTF-8, "/" unescaped) with the header
 * {"alg":"HS256","typ":"JWT"} and HMAC key @p key / @p keylen (keylen > 0).
 * On KB_OK *out is a malloc()ed NUL-terminated token the caller frees.
 * Returns KB_OK, KB_ERR_INVALID_ARG (NULL argument, empty key, @p claims not
 * an object), KB_ERR_NOMEM or KB_ERR_CRYPTO. Thread-safe.
 */
int kb_jwt_hs256_sign(json_object *claims, const unsigned char *key,
                      size_t keylen, char **out) KB_WUR;

/**
 * Verifies @p token (@p len bytes, no NUL needed) against @p key.
 * Checks, in order (first failure wins):
 *  - size: len > KB_JWT_MAX_TOKEN -> KB_ERR_TOO_LARGE;
 *  - shape: exactly three segments, each strict base64url, header and
 *    claims strict JSON objects (kb_json_parse: no duplicate keys), header
 *    "alg" present and a string, "typ" if present "JWT" (any case), no
 *    "crit" -> else KB_ERR_MALFORMED;
 *  - algorithm: "alg" exactly "HS256" (so "none", "HS512", "hs256" are
 *    refused) -> else KB_ERR_AUTH;
 *  - signature: 32 bytes equal (constant time) to HMAC-SHA256 over the
 *    first two segments as transmitted -> else KB_ERR_AUTH (an empty or
 *    short signature segment, as in an unsecured "h.p." token, included).
 * Claims are parsed only after the signature verified (the base64 of every
 * segment is checked before). Does NOT check "exp"/"iat"/"nbf": that needs
 * the caller's clock.
 * On KB_OK *claims is a new reference (json_object_put() it); otherwise NULL.
 * KB_ERR_INVALID_ARG for a NULL argument or an empty key. Thread-safe.
 */
int kb_jwt_hs256_verify(const char *token, size_t len, const unsigned char *key,
                        size_t keylen, json_object **claims) KB_WUR;

/**
 * Decodes the claims of @p token WITHOUT verifying anything cryptographic
 * (for hints only: routing, skipping expired tokens). Same shape checks as
 * kb_jwt_hs256_verify() except that "alg" and the signature are not looked
 * at (the signature segment must still be base64url). KB_OK with *claims a
 * new reference, KB_ERR_MALFORMED, KB_ERR_TOO_LARGE or KB_ERR_INVALID_ARG.
 */
int kb_jwt_decode_unverified(const char *token, size_t len,
                             json_object **claims) KB_WUR;

/**
 * The "exp" claim of @p token, unverified (a hint, as
 * kb_jwt_decode_unverified()): the same checks of the token's shape, then
 * "exp" read as kb_json_get_i64() reads it (a JSON integer, not a float;
 * INT64_MIN and out-of-range values refused) -- without building a tree.
 * KB_OK with *exp set; KB_ERR_MALFORMED (the shape, or no such integer),
 * KB_ERR_TOO_LARGE or KB_ERR_INVALID_ARG, *exp 0. Thread-safe.
 */
int kb_jwt_exp_unverified(const char *token, size_t len, int64_t *exp) KB_WUR;

#endif /* KB_JWT_H */
