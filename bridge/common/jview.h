/* jview.h -- strict JSON validation, and read-only views of raw JSON text */
#ifndef KB_JVIEW_H
#define KB_JVIEW_H

#include <stddef.h>
#include <stdint.h>

/*
 * A view reads a JSON document where it lies, without building a tree.
 * kb_jview_init() validates the text once -- RFC 8259 grammar only, valid
 * UTF-8, no NUL bytes, paired surrogate escapes, nothing but whitespace
 * after the value, nesting at most max_depth, no object with a duplicate
 * key -- and keeps where the root object's members are. This is the one
 * strict JSON scanner of the code base: kb_json_parse() runs it before
 * json-c.
 *
 * Keys are compared decoded (escapes resolved) and up to a first U+0000,
 * which is what json-c makes of a key: "a" and "\u0061" are the same key,
 * so are "a\u0000b" and "a\u0000c". A view and a json-c tree of the same
 * text therefore agree on which members an object has.
 *
 * Values are kb_jval_t: spans of the document's text (borrowed: valid
 * while the text is), the raw JSON of the value without surrounding
 * whitespace, ready to be copied into other JSON as it is. The accessors
 * assume text that kb_jview_init() accepted and never read outside a
 * value's span. A view belongs to one thread; views and values hold no
 * locks.
 */

/* What a value is (from its first byte). */
typedef enum {
        KB_JV_ABSENT = 0, /* no value (a member that is not there) */
        KB_JV_NULL,
        KB_JV_BOOL,
        KB_JV_NUMBER,
        KB_JV_STRING,
        KB_JV_ARRAY,
        KB_JV_OBJECT,
} kb_jtype_t;

/* A value of a validated document: @p p / @p len of its raw text. */
typedef struct kb_jval_s {
        const char *p; /* NULL: absent */
        size_t len;
} kb_jval_t;

/* A member of an object: its key (the JSON string, quotes included) and
 * its value. hash and esc are the scanner's. */
typedef struct kb_jmember_s {
        kb_jval_t key, val;
        uint32_t hash; /* of the decoded key */
        int esc;       /* the key holds an escape */
} kb_jmember_t;

/* Members kept in the view itself before it allocates. */
#define KB_JVIEW_INLINE 48

/* A validated document. Never copy one (m may point into it). */
typedef struct kb_jview_s {
        kb_jval_t root;        /* the document's value */
        const kb_jmember_t *m; /* the root object's members, in document
                                  order */
        size_t n;              /* how many; 0 when the root is no object */
        /* private */
        kb_jmember_t *stack;
        size_t cap;
        kb_jmember_t inl[KB_JVIEW_INLINE];
} kb_jview_t;

/**
 * Validates @p buf / @p len (see above; @p max_depth outside 1..256 means
 * 64) and sets up @p jv over it; @p buf must stay as it is while @p jv is
 * used. Any value may stand at the top level, null included. Returns 0,
 * or -1 with a reason in @p errstr (never quoting the input) and @p jv
 * cleared. Either way kb_jview_clear() may be called.
 */
int kb_jview_init(kb_jview_t *jv, const char *buf, size_t len, int max_depth,
                  char *errstr, size_t errstr_size);

/** Frees what kb_jview_init() allocated (a document with many members at
 * one level); @p jv may be reused. NULL ok. */
void kb_jview_clear(kb_jview_t *jv);

/** Member @p key of the root object; absent (p NULL) when there is none
 * or the root is no object. */
kb_jval_t kb_jview_get(const kb_jview_t *jv, const char *key);

/**
 * Members @p names[0..@p n) of the root object into @p out[0..@p n)
 * (absent for those not there), in one pass over the members: what @p n
 * calls of kb_jview_get() give, for the cost of about one.
 */
void kb_jview_pick(const kb_jview_t *jv, const char *const *names, size_t n,
                   kb_jval_t *out);

/** The kind of @p v. */
kb_jtype_t kb_jval_type(kb_jval_t v);

/* Walks the elements of an array or the members of an object. */
typedef struct kb_jiter_s {
        const char *p; /* NULL: done */
        int obj;
} kb_jiter_t;

/** Starts walking @p container (a value of any kind: other than an array
 * or an object, it has no elements). */
void kb_jval_iter(kb_jval_t container, kb_jiter_t *it);

/**
 * The next element: returns 1 with its value in @p val and, in an object,
 * its key in @p key (absent for an array element; @p key may be NULL), or
 * 0 at the end.
 */
int kb_jiter_next(kb_jiter_t *it, kb_jval_t *key, kb_jval_t *val);

/** Member @p key of @p obj (linear in its members); absent when there is
 * none or @p obj is no object. */
kb_jval_t kb_jval_member(kb_jval_t obj, const char *key);

/** Elements of an array or members of an object; 0 for anything else. */
size_t kb_jval_count(kb_jval_t container);

/** Non-zero when @p key (a JSON string) decodes to @p name (compared as
 * keys are, see above). */
int kb_jval_key_is(kb_jval_t key, const char *name);

/**
 * Decodes the string @p v (escapes resolved, UTF-8) into @p out, NUL-
 * terminated, its length in @p outlen (may be NULL). The decoded length is
 * never more than @p v.len - 2, so @p outsz = @p v.len always fits.
 * Returns 0, or -1 when @p v is no string, holds a NUL character
 * ("\u0000") or does not fit (then @p out is "" when @p outsz > 0).
 */
int kb_jval_str(kb_jval_t v, char *out, size_t outsz, size_t *outlen);

/**
 * The integer @p v into @p out, as kb_json_get_i64() reads one from a
 * json-c tree: 0 for a number written without fraction or exponent in
 * INT64_MIN + 1 .. INT64_MAX, else -1 (@p out untouched).
 */
int kb_jval_i64(kb_jval_t v, int64_t *out);

/**
 * The characters of the string @p v where they lie, when it holds no
 * escape: *s (borrowed, not NUL-terminated; the text between the quotes)
 * and *len, returning 0. Returns -1 when @p v is no string or holds an
 * escape (kb_jval_str() decodes it then). Costs one scan for a backslash,
 * no copy: for a value the caller must not copy around (a secret) or
 * reads once.
 */
int kb_jval_str_raw(kb_jval_t v, const char **s, size_t *len);

#endif /* KB_JVIEW_H */
