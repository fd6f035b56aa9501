/* utf8.c -- the one UTF-8 decoder, and printable copies of untrusted text */
#include "utf8.h"

#include <string.h>

size_t kb_utf8_next(const unsigned char *s, size_t len, uint32_t *cp)
{
        unsigned c, lo = 0x80, hi = 0xbf;
        uint32_t v;
        size_t n, i;

        if (!len)
                return 0;
        c = s[0];
        if (c < 0x80) {
                if (cp)
                        *cp = c;
                return 1;
        }
        /* RFC 3629 section 4: the second byte's range depends on the lead
         * byte, which rules out overlong forms, surrogates and code points
         * above U+10FFFF without decoding first */
        if (c >= 0xc2 && c <= 0xdf) {
                n = 2;
                v = c & 0x1f;
        } else if (c >= 0xe0 && c <= 0xef) {
                n = 3;
                v = c & 0x0f;
        } else if (c >= 0xf0 && c <= 0xf4) {
                n = 4;
                v = c & 0x07;
        } else {
                return 0; /* continuation, C0/C1 overlong lead, or > F4 */
        }
        if (c == 0xe0)
                lo = 0xa0; /* overlong */
        else if (c == 0xed)
                hi = 0x9f; /* surrogates */
        else if (c == 0xf0)
                lo = 0x90; /* overlong */
        else if (c == 0xf4)
                hi = 0x8f; /* above U+10FFFF */
        if (len < n)
                return 0;
        for (i = 1; i < n; i++) {
                if (s[i] < lo || s[i] > hi)
                        return 0;
                v = (v << 6) | (s[i] & 0x3fU);
                lo = 0x80;
                hi = 0xbf;
        }
        if (cp)
                *cp = v;
        return n;
}

int kb_utf8_valid(const char *s, size_t len)
{
        const unsigned char *p = (const unsigned char *)s;
        size_t i = 0;

        while (i < len) {
                size_t n = kb_utf8_next(p + i, len - i, NULL);
                if (!n)
                        return 0;
                i += n;
        }
        return 1;
}

int kb_utf8_is_control(uint32_t cp)
{
        return cp < 0x20 || (cp >= 0x7f && cp <= 0x9f);
}

void kb_str_printable(char *dst, size_t dstsz, const char *src, size_t len)
{
        const unsigned char *p = (const unsigned char *)src;
        size_t i = 0, o = 0;

        if (!dst || !dstsz)
                return;
        if (!src)
                len = 0;
        while (i < len) {
                uint32_t cp;
                size_t n = kb_utf8_next(p + i, len - i, &cp);

                if (!n || kb_utf8_is_control(cp)) {
                        /* one '?' per byte of a broken sequence: the
                         * next byte may start a good character */
                        if (o + 1 >= dstsz)
                                break;
                        dst[o++] = '?';
                        i += n ? n : 1;
                        continue;
                }
                if (o + n >= dstsz)
                        break;
                memcpy(dst + o, p + i, n);
                o += n;
                i += n;
        }
        dst[o] = '\0';
}

int kb_utf8_escape_text(kb_buf_t *out, const char *s, size_t len,
                        unsigned flags)
{
        static const char hex[] = "0123456789abcdef";
        const unsigned char *p = (const unsigned char *)s;
        size_t i = 0, run = 0;

        while (i < len) {
                uint32_t cp = 0;
                size_t n = kb_utf8_next(p + i, len - i, &cp), k;
                char esc[16];
                size_t elen = 0;

                if (n && !kb_utf8_is_control(cp) &&
                    !(cp == '\\' && (flags & KB_UTF8_ESC_BACKSLASH))) {
                        i += n;
                        continue;
                }
                if (n && (flags & KB_UTF8_ESC_LINE) && cp == '\t') {
                        i += n;
                        continue;
                }
                if (n && (flags & KB_UTF8_ESC_LINE) &&
                    (cp == '\n' || cp == '\r')) {
                        esc[0] = '\\';
                        esc[1] = cp == '\n' ? 'n' : 'r';
                        elen = 2;
                } else {
                        /* a control character: all its bytes; a broken
                         * sequence: the one bad byte (the next may start a
                         * good character) */
                        if (!n)
                                n = 1;
                        for (k = 0; k < n; k++) {
                                esc[elen++] = '\\';
                                esc[elen++] = 'x';
                                esc[elen++] = hex[p[i + k] >> 4];
                                esc[elen++] = hex[p[i + k] & 0xf];
                        }
                }
                if ((i > run && kb_buf_append(out, s + run, i - run) == -1) ||
                    kb_buf_append(out, esc, elen) == -1)
                        return -1;
                i += n;
                run = i;
        }
        if (len > run && kb_buf_append(out, s + run, len - run) == -1)
                return -1;
        return 0;
}
