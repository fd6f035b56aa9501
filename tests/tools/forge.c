/* forge.c -- test tool: seal an arbitrary token into an envelope (v1) with
 * given keys and fields, for black-box tests that need envelopes no honest
 * issuer would make (a token minted for someone else, a key the importer
 * does not hold). Not installed; never used by the product. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kyc_bridge.h"
#include "util.h"

static void usage(void)
{
        fprintf(stderr,
                "usage: kb_forge --sign SIGN.key --to BUNDLE.pub.json "
                "--issuer APP --for APP --share-id ID --session SID "
                "--kind user|business --token TOKEN [--expires-at UNIX] "
                "[--vendor-data HINT]\n");
}

int main(int argc, char **argv)
{
        kb_envelope_fields_t f;
        const char *sign = NULL, *to = NULL, *token = NULL;
        char err[512], *env = NULL;
        size_t env_len;
        kb_key_t *sk;
        kb_bundle_t *b;
        int64_t exp = 0;
        int i, r;

        memset(&f, 0, sizeof(f));
        f.session_kind = KB_SESSION_USER;
        for (i = 1; i + 1 < argc; i += 2) {
                const char *a = argv[i], *v = argv[i + 1];
                if (!strcmp(a, "--sign"))
                        sign = v;
                else if (!strcmp(a, "--to"))
                        to = v;
                else if (!strcmp(a, "--token"))
                        token = v;
                else if (!strcmp(a, "--issuer"))
                        kb_strlcpy(f.issuer_application_id, v,
                                   sizeof(f.issuer_application_id));
                else if (!strcmp(a, "--for"))
                        kb_strlcpy(f.for_application_id, v,
                                   sizeof(f.for_application_id));
                else if (!strcmp(a, "--share-id"))
                        kb_strlcpy(f.share_id, v, sizeof(f.share_id));
                else if (!strcmp(a, "--session"))
                        kb_strlcpy(f.source_session_id, v,
                                   sizeof(f.source_session_id));
                else if (!strcmp(a, "--vendor-data"))
                        kb_strlcpy(f.vendor_data_hint, v,
                                   sizeof(f.vendor_data_hint));
                else if (!strcmp(a, "--kind"))
                        f.session_kind = kb_session_kind_parse(v);
                else if (!strcmp(a, "--expires-at")) {
                        if (kb_parse_i64(v, 0, INT64_MAX, &exp)) {
                                usage();
                                return 2;
                        }
                } else {
                        usage();
                        return 2;
                }
        }
        if (i != argc || !sign || !to || !token || !f.session_kind ||
            kb_init() != KB_OK) {
                usage();
                return 2;
        }
        f.created_at = kb_time_now();
        f.expires_at = exp ? exp : f.created_at + 3600;
        sk = kb_key_load_secret(sign, NULL, 0, err, sizeof(err));
        b = kb_bundle_load(to, err, sizeof(err));
        if (!sk || !b || !kb_bundle_get(b, KB_KEY_BOX, 0)) {
                fprintf(stderr, "kb_forge: %s\n", err);
                return 1;
        }
        r = kb_envelope_seal(&f, token, strlen(token), sk,
                             kb_bundle_get(b, KB_KEY_BOX, 0), &env, &env_len);
        if (r != KB_OK) {
                fprintf(stderr, "kb_forge: %s\n", kb_err2str(r));
                return 1;
        }
        fwrite(env, 1, env_len, stdout);
        free(env);
        kb_key_destroy(sk);
        kb_bundle_destroy(b);
        return 0;
}
