/* utf8.h -- the one UTF-8 decoder, and printable copies of untrusted text */
#ifndef KB_UTF8_H
#define KB_UTF8_H

#include <stddef.h>
#include <stdint.h>

#include "util.h"

/**
 * Decodes the character at @p s (at most @p len bytes are read). Returns
 * the length (1-4) of a well-formed UTF-8 sequence -- shortest form, no
 * surrogates, at most U+10FFFF (RFC 3629) -- and its code point in @p cp
 * (may be NULL); 0 when @p len is 0 or the bytes at @p s are not such a
 * sequence (a stray continuation byte, an overlong form, a truncated
 * sequence, ...). Every byte below 0x80, NUL and control characters
 * included, is a valid one-byte sequence: callers decide about those.
 */
size_t kb_utf8_next(const unsigned char *s, size_t len, uint32_t *cp);

/** Non-zero if @p s / @p len is entirely well-formed UTF-8 (NUL and
 * control characters allowed). Empty input is valid. */
int kb_utf8_valid(const char *s, size_t len);

/** Non-zero if @p cp is a C0 or C1 control character or DEL
 * (U+0000-U+001F, U+007F-U+009F). */
int kb_utf8_is_control(uint32_t cp);

/**
 * Copies @p src / @p len into @p dst (size @p dstsz) for an error message
 * or a log line: each control character (C0, DEL, C1) and each byte that is
 * not part of well-formed UTF-8 becomes one '?'; output that does not fit
 * is cut before a whole character, never inside one. @p dst is always
 * NUL-terminated (when @p dstsz > 0). @p src may be NULL (empty result).
 */
void kb_str_printable(char *dst, size_t dstsz, const char *src, size_t len);

/* kb_utf8_escape_text() flags */
#define KB_UTF8_ESC_LINE      0x1 /* "\\n" "\\r" for CR/LF, tab kept raw */
#define KB_UTF8_ESC_BACKSLASH 0x2 /* '\\' as \\x5c: the output reads back */

/**
 * Appends @p s / @p len to @p out for a terminal or a text log line: well-
 * formed printable UTF-8 as is; each control character (C0, DEL, C1 -- all
 * bytes of it) and each byte that is not part of well-formed UTF-8 as
 * "\\xNN" (lowercase hex), so no output can hold a line break, a terminal
 * escape sequence or broken UTF-8. @p flags: KB_UTF8_ESC_*. Returns 0 or
 * -1 on ENOMEM.
 */
int kb_utf8_escape_text(kb_buf_t *out, const char *s, size_t len,
                        unsigned flags);

#endif /* KB_UTF8_H */
