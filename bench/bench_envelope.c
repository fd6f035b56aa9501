/* bench_envelope.c -- CPU cost of kb_envelope_seal/open/peek, one core */
/*
 * Usage: bench_envelope [ITERATIONS] [TOKEN_BYTES]
 *
 * Seals ITERATIONS (default 5000) envelopes holding a TOKEN_BYTES (default
 * 400, about a vendor share token) token, then opens and peeks each, and
 * prints the median and 99th percentile per operation in microseconds and
 * the envelope size. Every open is checked; exit 1 if one fails.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "kyc_bridge.h"
#include "bench_stats.h"
#include "util.h"

int main(int argc, char **argv)
{
        int64_t n = 5000, tlen = 400, *t_seal, *t_open, *t_peek;
        kb_key_t *box = NULL, *sign = NULL;
        kb_keyring_t *boxes, *signers;
        kb_envelope_fields_t f;
        kb_envelope_opener_t op;
        char **envs, *token;
        size_t *lens, i;
        int rc = 0;

        if ((argc > 1 && kb_parse_i64(argv[1], 100, 10000000, &n) == -1) ||
            (argc > 2 &&
             kb_parse_i64(argv[2], 1, KB_ENVELOPE_MAX_TOKEN, &tlen) == -1) ||
            argc > 3) {
                fprintf(stderr, "usage: %s [ITERATIONS] [TOKEN_BYTES]\n",
                        argv[0]);
                return 2;
        }
        if (kb_init() != KB_OK)
                return 1;
        box = kb_key_generate(KB_KEY_BOX);
        sign = kb_key_generate(KB_KEY_SIGN);
        boxes = kb_keyring_new();
        signers = kb_keyring_new();
        if (!box || !sign || !boxes || !signers ||
            kb_keyring_add(signers,
                           kb_key_from_public(KB_KEY_SIGN, kb_key_public(sign)),
                           "6f1d2c3b-4a59-4e87-9b10-2c3d4e5f6a7b") != KB_OK ||
            kb_keyring_add(boxes, box, NULL) != KB_OK)
                return 1;

        memset(&f, 0, sizeof(f));
        kb_strlcpy(f.issuer_application_id,
                   "6f1d2c3b-4a59-4e87-9b10-2c3d4e5f6a7b",
                   sizeof(f.issuer_application_id));
        kb_strlcpy(f.for_application_id, "d3b07384-d9a0-4c9b-8f1e-3a5c7e9b1d2f",
                   sizeof(f.for_application_id));
        kb_strlcpy(f.source_session_id, "5c0ffee0-1234-4abc-9def-0123456789ab",
                   sizeof(f.source_session_id));
        f.session_kind = KB_SESSION_USER;
        f.created_at = kb_time_now();
        f.expires_at = f.created_at + 3600;
        token = malloc((size_t)tlen + 1);
        envs = calloc((size_t)n, sizeof(*envs));
        lens = calloc((size_t)n, sizeof(*lens));
        t_seal = calloc((size_t)n, sizeof(int64_t));
        t_open = calloc((size_t)n, sizeof(int64_t));
        t_peek = calloc((size_t)n, sizeof(int64_t));
        if (!token || !envs || !lens || !t_seal || !t_open || !t_peek)
                return 1;
        memset(token, 'J', (size_t)tlen);
        token[tlen] = '\0';

        for (i = 0; i < (size_t)n; i++) {
                int64_t t0;
                kb_snprintf(f.share_id, sizeof(f.share_id), "share-%zu", i);
                t0 = bench_now_ns();
                if (kb_envelope_seal(&f, token, (size_t)tlen, sign, box,
                                     &envs[i], &lens[i]) != KB_OK)
                        return 1;
                t_seal[i] = bench_now_ns() - t0;
        }
        op.my_application_id = f.for_application_id;
        op.box_keys = boxes;
        op.signers = signers;
        op.now = f.created_at;
        for (i = 0; i < (size_t)n; i++) {
                kb_envelope_header_t hdr;
                kb_envelope_fields_t g;
                char *tok = NULL;
                size_t tl = 0;
                int64_t t0 = bench_now_ns();
                int err = kb_envelope_open(envs[i], lens[i], &op, &hdr, &g,
                                           &tok, &tl);
                t_open[i] = bench_now_ns() - t0;
                if (err != KB_OK || tl != (size_t)tlen)
                        rc = 1;
                kb_envelope_token_free(tok);
                t0 = bench_now_ns();
                if (kb_envelope_peek(envs[i], lens[i], &hdr) != KB_OK)
                        rc = 1;
                t_peek[i] = bench_now_ns() - t0;
        }
        printf("%lld envelopes, token %lld bytes, envelope %zu bytes\n",
               (long long)n, (long long)tlen, lens[0]);
        bench_report("seal", t_seal, (long)n);
        bench_report("open", t_open, (long)n);
        bench_report("peek", t_peek, (long)n);
        if (rc)
                printf("FAILED: an envelope did not open\n");
        for (i = 0; i < (size_t)n; i++)
                free(envs[i]);
        free(envs);
        free(lens);
        free(t_seal);
        free(t_open);
        free(t_peek);
        free(token);
        kb_key_destroy(sign);
        kb_keyring_destroy(boxes);
        kb_keyring_destroy(signers);
        return rc;
}
