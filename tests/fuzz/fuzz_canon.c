/* fuzz_canon.c -- the strict JSON reader every parser starts with
 * (kb_json_parse()), the webhook canonicaliser (kb_canon_json(),
 * kb_canon_double_repr()) and the one JSON string writer
 * (kb_json_put_string_ex()) */
/* fuzz-options: -max_len=70000 */
#include <errno.h>
#include <math.h>

#include "canon.h"
#include "fuzz.h"
#include "json.h"
#include "jview.h"
#include "utf8.h"

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
        (void)argc;
        (void)argv;
        fuzz_init(0);
        return 0;
}

/* Non-zero when @p o holds a whole double of magnitude >= 2^63: canonical
 * JSON writes it as an exact integer that json-c reads back clamped
 * (canon.h, "Known limits"), so it does not canonicalise twice alike. */
static int has_huge_whole(json_object *o)
{
        switch (json_object_get_type(o)) {
        case json_type_double: {
                double d = json_object_get_double(o);
                return isfinite(d) && d == floor(d) &&
                       fabs(d) >= 9223372036854775808.0;
        }
        case json_type_object: {
                json_object_object_foreach(o, k, v)
                {
                        (void)k;
                        if (has_huge_whole(v))
                                return 1;
                }
                return 0;
        }
        case json_type_array: {
                size_t i, n = json_object_array_length(o);
                for (i = 0; i < n; i++)
                        if (has_huge_whole(json_object_array_get_idx(o, i)))
                                return 1;
                return 0;
        }
        default:
                return 0;
        }
}

/* Canonical objects list their members sorted, recursively. */
static void check_sorted(json_object *o)
{
        if (json_object_is_type(o, json_type_object)) {
                const char *prev = NULL;
                json_object_object_foreach(o, k, v)
                {
                        FUZZ_CHECK(!prev || strcmp(prev, k) < 0);
                        prev = k;
                        check_sorted(v);
                }
        } else if (json_object_is_type(o, json_type_array)) {
                size_t i, n = json_object_array_length(o);
                for (i = 0; i < n; i++)
                        check_sorted(json_object_array_get_idx(o, i));
        }
}

static void canon(json_object *obj)
{
        kb_buf_t out = KB_BUF_INIT, again = KB_BUF_INIT;
        json_object *back;
        char err[128];
        int r;

        /* appends after what is there; on failure restores it */
        kb_buf_puts(&out, "ts:");
        r = kb_canon_json(obj, &out);
        if (r != KB_OK) {
                FUZZ_CHECK(r == KB_ERR_INVALID_ARG);
                FUZZ_CHECK(out.len == 3 && !strcmp(out.data, "ts:"));
                kb_buf_free(&out, 0);
                return;
        }
        /* the canonical text is strict JSON in valid UTF-8, sorted, and a
         * fixed point */
        FUZZ_CHECK(kb_utf8_valid(out.data, out.len));
        FUZZ_CHECK(!memchr(out.data, ' ', out.len) ||
                   json_object_is_type(obj, json_type_string) ||
                   json_object_is_type(obj, json_type_object) ||
                   json_object_is_type(obj, json_type_array));
        back = kb_json_parse(out.data + 3, out.len - 3, 256, err, sizeof(err));
        FUZZ_CHECK(back != NULL);
        check_sorted(back);
        if (!has_huge_whole(obj)) {
                FUZZ_CHECK(kb_canon_json(back, &again) == KB_OK);
                FUZZ_CHECK(again.len == out.len - 3 &&
                           !memcmp(again.data, out.data + 3, again.len));
        }
        json_object_put(back);
        kb_buf_free(&again, 0);
        kb_buf_free(&out, 0);
}

/* Python's repr(float): reads back as the same double, one digit string. */
static void repr(const uint8_t *data, size_t size)
{
        char buf[KB_CANON_REPR_BYTES], *end;
        double d, back;

        if (size < sizeof(d))
                return;
        memcpy(&d, data, sizeof(d));
        if (kb_canon_double_repr(d, buf, sizeof(buf)) != KB_OK) {
                FUZZ_CHECK(!isfinite(d));
                return;
        }
        FUZZ_CHECK(isfinite(d));
        back = strtod(buf, &end);
        FUZZ_CHECK(*end == '\0');
        FUZZ_CHECK(!memcmp(&back, &d, sizeof(d)));
        /* always a float in form: a '.' or an exponent */
        FUZZ_CHECK(strchr(buf, '.') || strchr(buf, 'e'));
}

/* The string writer: refuses exactly what is not UTF-8, and what it
 * writes reads back as the input. */
static void string(const uint8_t *data, size_t size)
{
        kb_buf_t out = KB_BUF_INIT;
        json_object *back;
        char err[128];
        int valid = kb_utf8_valid((const char *)data, size), r;

        r = kb_json_put_string_ex(&out, (const char *)data, size,
                                  KB_JSON_UTF8_REFUSE);
        FUZZ_CHECK((r == 0) == (valid != 0));
        if (r == 0) {
                back = kb_json_parse(out.data, out.len, 1, err, sizeof(err));
                FUZZ_CHECK(back && json_object_is_type(back, json_type_string));
                FUZZ_CHECK((size_t)json_object_get_string_len(back) == size);
                FUZZ_CHECK(!size ||
                           !memcmp(json_object_get_string(back), data, size));
                json_object_put(back);
        } else {
                FUZZ_CHECK(errno == EILSEQ);
                FUZZ_CHECK(out.len == 0);
        }
        kb_buf_reset(&out);
        FUZZ_CHECK(kb_json_put_string_ex(&out, (const char *)data, size,
                                         KB_JSON_UTF8_REPLACE) == 0);
        FUZZ_CHECK(kb_utf8_valid(out.data, out.len));
        back = kb_json_parse(out.data, out.len, 1, err, sizeof(err));
        FUZZ_CHECK(back && json_object_is_type(back, json_type_string));
        json_object_put(back);
        kb_buf_free(&out, 0);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        json_object *obj, *again;
        char err[128], *buf;
        const char *txt;
        size_t len;

        buf = malloc(size ? size : 1);
        if (!buf)
                abort();
        if (size)
                memcpy(buf, data, size);
        memset(err, 'x', sizeof(err));
        obj = kb_json_parse(buf, size, 64, err, sizeof(err));
        {
                /* the view (jview.h) takes what the tree parser takes, but
                 * a top-level null, which json-c has no object for */
                kb_jview_t jv;
                int vr = kb_jview_init(&jv, buf, size, 64, NULL, 0);
                FUZZ_CHECK(!obj ==
                           (vr != 0 || kb_jval_type(jv.root) == KB_JV_NULL));
                kb_jview_clear(&jv);
        }
        if (!obj) {
                FUZZ_CHECK(memchr(err, '\0', sizeof(err)) && err[0]);
        } else {
                /* what was accepted is valid UTF-8 without NUL bytes */
                FUZZ_CHECK(kb_utf8_valid(buf, size));
                FUZZ_CHECK(!memchr(buf, '\0', size));
                /* json-c's own text of it reads back under the same rules
                 * (the importer republishes vendor documents this way) */
                txt = kb_json_str(obj, &len);
                FUZZ_CHECK(txt != NULL);
                again = kb_json_parse(txt, len, 64, err, sizeof(err));
                FUZZ_CHECK(again != NULL);
                json_object_put(again);
                canon(obj);
                json_object_put(obj);
        }
        repr(data, size);
        if (size <= 4096)
                string(data, size);
        free(buf);
        return 0;
}
