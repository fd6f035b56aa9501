/* fuzz_share_request.c -- kb_share_req_parse(): the JSON share requests the
 * issuer reads from its input topic (schemas/share-request.schema.json) */
/* fuzz-options: -max_len=70000 */
#include "fuzz.h"
#include "issuer.h"

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
        (void)argc;
        (void)argv;
        fuzz_init(0);
        return 0;
}

/* A NUL-terminated member of @p buf (size @p n) of at most max bytes. */
static int terminated(const char *buf, size_t n, size_t max)
{
        const char *z = memchr(buf, '\0', n);

        return z && (size_t)(z - buf) <= max;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        kb_share_req_t req, req2;
        char err[256], *buf;
        int r, r2;

        /* exactly @p size bytes, as a Kafka record value is */
        buf = malloc(size ? size : 1);
        if (!buf)
                abort();
        if (size)
                memcpy(buf, data, size);
        memset(err, 'x', sizeof(err));
        r = kb_share_req_parse(buf, size, &req, err, sizeof(err));
        FUZZ_CHECK(r == KB_OK || r == KB_ERR_MALFORMED ||
                   r == KB_ERR_TOO_LARGE);
        FUZZ_CHECK(terminated(req.share_id, sizeof(req.share_id), 128));
        if (r != KB_OK) {
                /* a reason, NUL-terminated, that never quotes the input */
                FUZZ_CHECK(memchr(err, '\0', sizeof(err)) != NULL);
                FUZZ_CHECK(err[0] != '\0');
                /* even a bad request names its share_id when it can: then
                 * it is an id by the envelope's rules */
                FUZZ_CHECK(
                    !req.share_id[0] ||
                    kb_envelope_id_valid(req.share_id, strlen(req.share_id)));
                free(buf);
                return 0;
        }
        FUZZ_CHECK(kb_envelope_id_valid(req.share_id, strlen(req.share_id)));
        FUZZ_CHECK(terminated(req.session_id, sizeof(req.session_id), 128));
        FUZZ_CHECK(kb_is_uuid(req.session_id));
        FUZZ_CHECK(terminated(req.for_application_id,
                              sizeof(req.for_application_id), 36));
        FUZZ_CHECK(kb_is_uuid(req.for_application_id));
        FUZZ_CHECK(terminated(req.vendor_data, sizeof(req.vendor_data), 128));
        FUZZ_CHECK(
            !req.vendor_data[0] ||
            kb_envelope_id_valid(req.vendor_data, strlen(req.vendor_data)));
        FUZZ_CHECK(req.ttl_in_seconds == 0 ||
                   (req.ttl_in_seconds >= 60 && req.ttl_in_seconds <= 86400));
        /* a request rebuilt from what was read parses to the same */
        {
                char again[1024];
                int n = snprintf(again, sizeof(again),
                                 "{\"share_id\":\"%s\",\"session_id\":\"%s\","
                                 "\"for_application_id\":\"%s\"",
                                 req.share_id, req.session_id,
                                 req.for_application_id);
                /* ids may hold '"' or '\\': only rebuild plain ones */
                if (!strpbrk(req.share_id, "\"\\") &&
                    !strpbrk(req.vendor_data, "\"\\")) {
                        if (req.vendor_data[0])
                                n += snprintf(again + n, sizeof(again) - n,
                                              ",\"vendor_data\":\"%s\"",
                                              req.vendor_data);
                        if (req.ttl_in_seconds)
                                n += snprintf(again + n, sizeof(again) - n,
                                              ",\"ttl_in_seconds\":%d",
                                              req.ttl_in_seconds);
                        n += snprintf(again + n, sizeof(again) - n, "}");
                        r2 = kb_share_req_parse(again, (size_t)n, &req2, err,
                                                sizeof(err));
                        FUZZ_CHECK(r2 == KB_OK);
                        FUZZ_CHECK(!memcmp(&req, &req2, sizeof(req)));
                }
        }
        free(buf);
        return 0;
}
