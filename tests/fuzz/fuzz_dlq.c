/* fuzz_dlq.c -- dead-letter records as `kyc-bridge dlq list|show|redrive`
 * reads them off a dead-letter topic (anything may have been written
 * there): the record as dlq_read.c hands it over, the collector and the
 * redrive markers (kb_dlq_coll_cb(), kb_dlq_marks_add()), and the kept
 * input a redrive decodes (kb_dlq_input_decode()).
 *
 * Input: records separated by 0x1e bytes, each "KEY\nKB-REASON\nVALUE"
 * ("-": no key / no header; tests/fuzz/README.md). */
/* fuzz-options: -max_len=140000 */
#include "cmd_dlq.h"
#include "dlq.h"
#include "fuzz.h"
#include "json.h"

#define MAX_RECS 32

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
        (void)argc;
        (void)argv;
        fuzz_init(0);
        return 0;
}

typedef struct {
        char *key, *reason, *value;
        size_t value_len;
        json_object *doc;
} rec_t;

/* What dlq_read.c's deliver() makes of a message: the value parsed when
 * it is a JSON object (depth 32). */
static void parse_rec(const uint8_t *data, size_t size, rec_t *r)
{
        char *k = fuzz_field(&data, &size, '\n');
        char *h = fuzz_field(&data, &size, '\n');

        memset(r, 0, sizeof(*r));
        r->key = k && strcmp(k, "-") ? k : (free(k), NULL);
        r->reason = h && strcmp(h, "-") ? h : (free(h), NULL);
        r->value_len = data ? size : 0;
        r->value = fuzz_strndup(data, r->value_len);
        r->doc = kb_json_parse(r->value, r->value_len, 32, NULL, 0);
        if (r->doc && !json_object_is_type(r->doc, json_type_object)) {
                json_object_put(r->doc);
                r->doc = NULL;
        }
}

static void free_rec(rec_t *r)
{
        free(r->key);
        free(r->reason);
        free(r->value);
        json_object_put(r->doc);
}

/* A redrive's view of one dead letter. */
static void redrive_view(const kb_dlq_ent_t *e, FILE *fp)
{
        kb_dlq_input_t in;
        char err[256], dig[65], line[1024];
        const char *reason = kb_dlq_ent_reason(e), *sid;
        const kb_dlq_reason_t *row;
        json_object *input;
        int r;

        FUZZ_CHECK(reason != NULL);
        row = kb_dlq_reason(reason);
        FUZZ_CHECK(!row || (row->reason && row->advice));
        sid = kb_dlq_ent_str(e, "share_id");
        snprintf(line, sizeof(line), "%s %s %s\n", reason, sid ? sid : "-",
                 e->key ? e->key : "-");
        kb_dlq_put_scrubbed(fp, line);
        input = e->doc ? kb_json_get(e->doc, "input") : NULL;
        memset(err, 'x', sizeof(err));
        r = kb_dlq_input_decode(input, &in, err, sizeof(err));
        FUZZ_CHECK(r == KB_OK || r == KB_ERR_MALFORMED);
        if (r != KB_OK) {
                FUZZ_CHECK(memchr(err, '\0', sizeof(err)) && err[0]);
                FUZZ_CHECK(in.value == NULL && in.key == NULL);
                return;
        }
        /* what decodes is what the digest says */
        FUZZ_CHECK(in.value != NULL);
        kb_dlq_sha256_hex(in.value, in.value_len, dig);
        FUZZ_CHECK(!strcmp(dig, kb_json_get_str(input, "sha256")));
        {
                size_t i;
                for (i = 0; in.headers[i]; i += 2)
                        FUZZ_CHECK(i + 1 < KB_ARRAY_SIZE(in.headers) &&
                                   in.headers[i + 1]);
        }
        /* and encodes back to an input that decodes the same */
        {
                json_object *again = kb_dlq_input_json(
                    in.key, in.key_len, in.value, in.value_len, NULL);
                kb_dlq_input_t in2;
                FUZZ_CHECK(again != NULL);
                FUZZ_CHECK(kb_dlq_input_decode(again, &in2, err, sizeof(err)) ==
                           KB_OK);
                FUZZ_CHECK(in2.value_len == in.value_len &&
                           !memcmp(in2.value, in.value, in.value_len));
                FUZZ_CHECK((in2.key == NULL) == (in.key == NULL));
                FUZZ_CHECK(!in.key || (in2.key_len == in.key_len &&
                                       !memcmp(in2.key, in.key, in.key_len)));
                kb_dlq_input_free(&in2);
                json_object_put(again);
        }
        kb_dlq_input_free(&in);
}

static void collect(rec_t *recs, size_t n, int filtered)
{
        kb_dlq_coll_t c;
        char *out = NULL;
        size_t olen = 0, i;
        FILE *fp;

        memset(&c, 0, sizeof(c));
        c.topic = "kyc-bridge.issuer-dlq";
        c.marks.topic = c.topic;
        c.partition = -1;
        if (filtered) {
                c.reasons[c.n_reasons++] = "vendor_unavailable";
                c.reasons[c.n_reasons++] = "malformed_request";
                c.share_ids[c.n_share_ids++] = "share-1";
                c.share_ids[c.n_share_ids++] = "k";
                c.partition = 0;
                c.from = 1;
                c.to = 20;
        }
        for (i = 0; i < n; i++) {
                kb_dlq_rec_t rec;
                memset(&rec, 0, sizeof(rec));
                rec.partition = (int32_t)(i % 2);
                rec.offset = (int64_t)(n - i); /* not in order */
                rec.ts_ms = FUZZ_NOW * 1000;
                rec.key = recs[i].key;
                rec.reason = recs[i].reason;
                rec.value = recs[i].value;
                rec.value_len = recs[i].value_len;
                rec.doc = recs[i].doc;
                if (kb_dlq_coll_cb(&c, &rec) != 0)
                        break;
        }
        kb_dlq_coll_done(&c);
        FUZZ_CHECK(!c.oom);
        FUZZ_CHECK(c.n <= c.total && c.total <= n);
        fp = open_memstream(&out, &olen);
        FUZZ_CHECK(fp != NULL);
        for (i = 0; i < c.n; i++) {
                /* sorted by position */
                FUZZ_CHECK(i == 0 || c.v[i - 1].partition < c.v[i].partition ||
                           (c.v[i - 1].partition == c.v[i].partition &&
                            c.v[i - 1].offset <= c.v[i].offset));
                redrive_view(&c.v[i], fp);
        }
        fclose(fp);
        /* what is printed carries no token */
        FUZZ_CHECK(!out || !fuzz_has_jwt(out));
        free(out);
        kb_dlq_coll_free(&c);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        rec_t recs[MAX_RECS];
        size_t n = 0, i;

        while (data && n < MAX_RECS) {
                const uint8_t *end = memchr(data, 0x1e, size);
                size_t len = end ? (size_t)(end - data) : size;
                parse_rec(data, len, &recs[n++]);
                if (!end)
                        break;
                size -= len + 1;
                data = end + 1;
        }
        collect(recs, n, 0);
        collect(recs, n, 1);
        for (i = 0; i < n; i++)
                free_rec(&recs[i]);
        return 0;
}
