/* cmd_config.c -- "kyc-bridge config": check, dump or describe configuration */
#include <stdio.h>
#include <string.h>

#include "cmd.h"
#include "conf.h"
#include "importer.h"
#include "issuer.h"

static void usage(FILE *fp)
{
        fprintf(
            fp,
            "Usage: kyc-bridge config check -c FILE [--role issuer|importer] "
            "[-X key=value]...\n"
            "       kyc-bridge config dump -c FILE [--role ROLE] "
            "[-X key=value]...\n"
            "       kyc-bridge config options [--markdown]\n\n"
            "  check    validate FILE (and overrides): syntax, types, "
            "ranges, secrets\n"
            "           resolvable; with --role also required options, "
            "key files,\n"
            "           passphrases, partner bundles, workflow ids, the "
            "webhook intake\n"
            "           (listen address, secrets) and sharing rules, as the "
            "daemon checks\n"
            "           them before it connects; errors read file:line: "
            "reason\n"
            "  dump     print the effective configuration (defaults "
            "included) with\n"
            "           each value's origin; secrets appear only as "
            "env:/file: references\n"
            "  options  list every option with type, default and help\n");
}

static int role_check(const kb_conf_t *conf, unsigned scope, char *errstr,
                      size_t errstr_size)
{
        int cfg_err = 0;

        if (scope == KB_SCOPE_ISSUER) {
                kb_issuer_t *is =
                    kb_issuer_new(conf, &cfg_err, errstr, errstr_size);
                kb_issuer_destroy(is);
                return is ? 0 : -1;
        } else {
                kb_importer_t *im =
                    kb_importer_new(conf, &cfg_err, errstr, errstr_size);
                kb_importer_destroy(im);
                return im ? 0 : -1;
        }
}

int kb_cmd_config(int argc, char **argv)
{
        const char *sub, *path = NULL;
        unsigned scope = 0;
        int markdown = 0, i, rc = KB_EXIT_OK;
        char errstr[1024];
        kb_conf_t *conf;

        if (argc < 2 || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) {
                usage(argc < 2 ? stderr : stdout);
                return argc < 2 ? KB_EXIT_USAGE : KB_EXIT_OK;
        }
        sub = argv[1];
        if (strcmp(sub, "check") && strcmp(sub, "dump") &&
            strcmp(sub, "options")) {
                fprintf(stderr, "config: unknown subcommand '%s'\n", sub);
                usage(stderr);
                return KB_EXIT_USAGE;
        }
        conf = kb_conf_new();
        if (!conf) {
                fprintf(stderr, "config: out of memory\n");
                return KB_EXIT_FAIL;
        }
        /* Options in order: -c first so that -X overrides it. */
        for (i = 2; i < argc; i++) {
                if ((!strcmp(argv[i], "-c") || !strcmp(argv[i], "--config")) &&
                    i + 1 < argc) {
                        path = argv[++i];
                } else if (!strcmp(argv[i], "--role") && i + 1 < argc) {
                        const char *r = argv[++i];
                        if (!strcmp(r, "issuer"))
                                scope = KB_SCOPE_ISSUER;
                        else if (!strcmp(r, "importer"))
                                scope = KB_SCOPE_IMPORTER;
                        else {
                                fprintf(stderr, "config: --role takes issuer "
                                                "or importer\n");
                                rc = KB_EXIT_USAGE;
                                goto out;
                        }
                } else if (!strcmp(argv[i], "-X") && i + 1 < argc) {
                        i++;
                } else if (!strcmp(argv[i], "--markdown")) {
                        markdown = 1;
                } else if (!strcmp(argv[i], "--help")) {
                        usage(stdout);
                        goto out;
                } else {
                        fprintf(stderr, "config: unexpected argument '%s'\n",
                                argv[i]);
                        rc = KB_EXIT_USAGE;
                        goto out;
                }
        }
        if (!strcmp(sub, "options")) {
                kb_conf_describe(stdout, markdown);
                goto out;
        }
        if (!path) {
                fprintf(stderr, "config %s: -c FILE is required\n", sub);
                rc = KB_EXIT_USAGE;
                goto out;
        }
        if (kb_cmd_conf_load(conf, path, argc, argv, 2, errstr,
                             sizeof(errstr)) != KB_OK) {
                fprintf(stderr, "%s\n", errstr);
                rc = KB_EXIT_USAGE;
                goto out;
        }
        if (!strcmp(sub, "check")) {
                /* without --role: no required-option check, but every
                 * secret that is set must resolve */
                if (kb_conf_check(conf, scope, errstr, sizeof(errstr))) {
                        fprintf(stderr, "%s\n", errstr);
                        rc = KB_EXIT_USAGE;
                        goto out;
                }
                /* With a role: everything the daemon checks before it
                 * connects -- key files, passphrases, partner bundles,
                 * workflow ids, the webhook intake and sharing rules --
                 * by building it (no network, nothing listening). */
                if (scope && role_check(conf, scope, errstr, sizeof(errstr))) {
                        fprintf(stderr, "%s\n", errstr);
                        rc = KB_EXIT_USAGE;
                        goto out;
                }
                printf("%s: OK\n", path);
        } else {
                kb_conf_dump(conf, scope, stdout);
        }
out:
        kb_conf_destroy(conf);
        return rc;
}
