/* fuzz_envelope.c -- kb_envelope_peek() and kb_envelope_open() on untrusted
 * envelope bytes (what an importer reads from its partner's topic) */
/* fuzz-options: -max_len=17000 */
#include "vectors.h"

static vec_keys_t vk;

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
        (void)argc;
        (void)argv;
        fuzz_init(0);
        vec_keys_init(&vk);
        return 0;
}

static void check_header(const kb_envelope_header_t *h)
{
        if (!h->valid)
                return;
        FUZZ_CHECK(kb_envelope_id_valid(h->for_application_id,
                                        strlen(h->for_application_id)));
        FUZZ_CHECK(kb_envelope_id_valid(h->share_id, strlen(h->share_id)));
        FUZZ_CHECK(strlen(h->recipient_key_id) == KB_KEYID_LEN);
        FUZZ_CHECK(strlen(h->signer_key_id) == KB_KEYID_LEN);
        FUZZ_CHECK(h->version == KB_ENVELOPE_VERSION);
        FUZZ_CHECK(h->expires_at >= 0);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        kb_envelope_header_t peek, hdr;
        kb_envelope_fields_t f;
        char *token = (char *)"not touched";
        size_t token_len = 1;
        int rp, ro;

        /* the bytes as they come off Kafka: not NUL-terminated (a copy of
         * exactly @p size bytes lets ASan see any read past the end) */
        char *env = malloc(size ? size : 1);

        if (!env)
                return 0;
        if (size)
                memcpy(env, data, size);

        rp = kb_envelope_peek(env, size, &peek);
        ro = kb_envelope_open(env, size, &vk.opener, &hdr, &f, &token,
                              &token_len);

        if (getenv("KB_FUZZ_DUMP"))
                fprintf(stderr, "peek: %s open: %s\n", kb_err2name(rp),
                        kb_err2name(ro));
        check_header(&peek);
        check_header(&hdr);
        /* peek's answer is open's first answer: the same checks, in the same
         * order, come before anything open does on its own */
        if (rp != KB_OK)
                FUZZ_CHECK(ro == rp);
        FUZZ_CHECK(rp == KB_OK || rp == KB_ERR_MALFORMED ||
                   rp == KB_ERR_TOO_LARGE || rp == KB_ERR_VERSION);
        /* both report the same header, and "valid" means the same */
        FUZZ_CHECK(peek.valid == hdr.valid);
        FUZZ_CHECK(memcmp(&peek, &hdr, sizeof(peek)) == 0);

        if (ro == KB_OK) {
                FUZZ_CHECK(token != NULL);
                FUZZ_CHECK(token_len == strlen(token));
                FUZZ_CHECK(token_len >= 1 &&
                           token_len <= KB_ENVELOPE_MAX_TOKEN);
                vec_check_fields(&f);
                FUZZ_CHECK(!strcmp(f.share_id, hdr.share_id));
                FUZZ_CHECK(!strcmp(f.for_application_id, VEC_RECIPIENT_APP));
                FUZZ_CHECK(f.expires_at == hdr.expires_at);
                FUZZ_CHECK(f.expires_at > FUZZ_NOW);
                kb_envelope_token_free(token);
        } else {
                /* nothing unverified leaks out */
                FUZZ_CHECK(token == NULL && token_len == 0);
                FUZZ_CHECK(vec_all_zero(&f, sizeof(f)));
        }
        free(env);
        return 0;
}
