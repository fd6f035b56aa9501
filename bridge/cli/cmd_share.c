/* cmd_share.c -- "kyc-bridge share": mint, seal and publish one share */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cmd.h"
#include "conf.h"
#include "issuer.h"
#include "kb_envelope.h"
#include "log.h"
#include "utf8.h"
#include "util.h"

static void usage(FILE *fp)
{
        fprintf(fp,
                "Usage: kyc-bridge share -c FILE --session-id UUID --for "
                "APPLICATION_ID\n"
                "                        [--share-id ID] [--ttl SECONDS] "
                "[--vendor-data ID]\n"
                "                        [--out FILE|-] [-X key=value]...\n\n"
                "Does one share request by hand, with the issuer's "
                "configuration: mints a\nshare token for the session through "
                "the vendor API, seals and signs it for\nthe partner, and "
                "publishes the envelope to issuer.token_topic (and the\n"
                "share_id to issuer.state_topic) in one Kafka transaction. "
                "With --out the\nenvelope is written to FILE ('-' = stdout) "
                "instead and nothing goes to Kafka.\n\n"
                "  --session-id UUID    finished session to share\n"
                "  --for APP_ID         partner application (must be a "
                "configured partner)\n"
                "  --share-id ID        idempotency key (default: a new "
                "UUID)\n"
                "  --ttl SECONDS        token lifetime, 60..86400 (default "
                "issuer.default_ttl_s)\n"
                "  --vendor-data ID     hint the partner may use as its own "
                "id\n\n"
                "Unlike the daemon this does not consult the share_id state: "
                "a repeated\n--share-id is shared again. Prints the share_id "
                "on success.\n"
                "Exit status: 0 shared, 1 vendor or Kafka failure, 2 usage "
                "or configuration error.\n");
}

int kb_cmd_share(int argc, char **argv)
{
        kb_share_req_t req;
        kb_conf_t *conf = NULL;
        kb_issuer_t *is = NULL;
        const char *path = NULL, *out = NULL;
        char errstr[1024], *env = NULL;
        size_t env_len = 0;
        int i, rc = KB_EXIT_USAGE, cfg_err, r;
        int64_t ttl;

        memset(&req, 0, sizeof(req));
        for (i = 1; i < argc; i++) {
                const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
                char pa[256]; /* @a for a message */

                kb_str_printable(pa, sizeof(pa), a, strlen(a));
                if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
                        usage(stdout);
                        return KB_EXIT_OK;
                }
                if (!v) {
                        fprintf(stderr, "share: %s needs a value\n", pa);
                        goto usage;
                }
                i++;
                if (!strcmp(a, "-c") || !strcmp(a, "--config"))
                        path = v;
                else if (!strcmp(a, "--session-id"))
                        kb_strlcpy(req.session_id, v, sizeof(req.session_id));
                else if (!strcmp(a, "--for"))
                        kb_strlcpy(req.for_application_id, v,
                                   sizeof(req.for_application_id));
                else if (!strcmp(a, "--share-id") ||
                         !strcmp(a, "--vendor-data")) {
                        char *dst =
                            a[2] == 's' ? req.share_id : req.vendor_data;
                        /* the envelope's id rules are checked later; a
                         * longer value must not be cut to fit them */
                        if (strlen(v) > KB_ENVELOPE_MAX_ID) {
                                fprintf(stderr,
                                        "share: %s takes 1-128 "
                                        "bytes\n",
                                        a);
                                goto usage;
                        }
                        kb_strlcpy(dst, v, KB_ENVELOPE_MAX_ID + 1);
                } else if (!strcmp(a, "--out"))
                        out = v;
                else if (!strcmp(a, "--ttl")) {
                        if (kb_parse_i64(v, 60, 86400, &ttl)) {
                                fprintf(stderr, "share: --ttl takes 60 to "
                                                "86400\n");
                                goto usage;
                        }
                        req.ttl_in_seconds = (int)ttl;
                } else if (!strcmp(a, "-X"))
                        ; /* applied after the file */
                else {
                        fprintf(stderr, "share: unexpected argument '%s'\n",
                                pa);
                        goto usage;
                }
        }
        if (!path || !kb_is_uuid(req.session_id) ||
            !kb_is_uuid(req.for_application_id)) {
                fprintf(stderr, "share: -c FILE, --session-id UUID and --for "
                                "UUID are required\n");
                goto usage;
        }
        if (!req.share_id[0])
                kb_uuid4(req.share_id);
        conf = kb_conf_new();
        if (!conf || kb_cmd_conf_load(conf, path, argc, argv, 1, errstr,
                                      sizeof(errstr))) {
                fprintf(stderr, "%s\n", conf ? errstr : "out of memory");
                goto done;
        }
        {
                int lvl = kb_log_level_parse(kb_conf_get(conf, "log.level"));
                kb_log_setup(lvl < 0 ? KB_LOG_INFO : lvl,
                             !strcmp(kb_conf_get(conf, "log.format"), "json"),
                             2, "share");
        }
        is = kb_issuer_new(conf, &cfg_err, errstr, sizeof(errstr));
        if (!is) {
                fprintf(stderr, "share: %s\n", errstr);
                rc = cfg_err ? KB_EXIT_USAGE : KB_EXIT_FAIL;
                goto done;
        }
        r = kb_issuer_share_one(is, &req, out == NULL, &env, &env_len, errstr,
                                sizeof(errstr));
        if (r != KB_OK) {
                char ps[KB_ENVELOPE_MAX_ID + 1];
                kb_str_printable(ps, sizeof(ps), req.share_id,
                                 strlen(req.share_id));
                fprintf(stderr, "share: %s: %s\n", ps, errstr);
                /* a partner we do not have, or an id the envelope refuses:
                 * the command line's fault */
                rc = r == KB_ERR_NOT_FOUND || r == KB_ERR_INVALID_ARG
                         ? KB_EXIT_USAGE
                         : KB_EXIT_FAIL;
                goto done;
        }
        if (out) {
                if (!strcmp(out, "-")) {
                        fwrite(env, 1, env_len, stdout);
                        fputc('\n', stdout);
                } else if (kb_write_file_atomic(out, env, env_len, 0600)) {
                        fprintf(stderr, "share: %s: cannot write\n", out);
                        rc = KB_EXIT_FAIL;
                        goto done;
                }
        }
        if (!out || strcmp(out, "-"))
                printf("%s\n", req.share_id);
        rc = KB_EXIT_OK;
        goto done;
usage:
        usage(stderr);
done:
        free(env);
        kb_issuer_destroy(is);
        kb_conf_destroy(conf);
        return rc;
}
