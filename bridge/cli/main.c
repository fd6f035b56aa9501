/* main.c -- kyc-bridge: the subcommand table and top-level usage */
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "cmd.h"
#include "kafka.h"
#include "kyc_bridge.h"
#include "log.h"

static const kb_cmd_t cmds[] = {
        { "demo", kb_cmd_demo,
          "run the whole hand-off on this machine, with one command" },
        { "keygen", kb_cmd_keygen,
          "create an X25519 (receive) and an Ed25519 (sign) key pair" },
        { "inspect", kb_cmd_inspect,
          "verify and open an envelope; print its header and signed fields" },
        { "issuer", kb_cmd_issuer,
          "run the issuer daemon: share requests in, sealed tokens out" },
        { "importer", kb_cmd_importer,
          "run the importer daemon: sealed tokens in, imported sessions out" },
        { "share", kb_cmd_share,
          "mint, seal and publish one share by hand (scripts, ops)" },
        { "sandbox", kb_cmd_sandbox,
          "serve a local stand-in for the vendor API on loopback" },
        { "config", kb_cmd_config,
          "check a config file, print the effective config or the options" },
        { "dlq", kb_cmd_dlq,
          "list a daemon's dead letters, show one, redrive them once fixed" },
};

static void usage(FILE *fp)
{
        size_t i;

        fprintf(fp,
                "kyc-bridge %s -- carries one-time KYC/KYB share tokens "
                "between partners over Kafka\n\n"
                "Usage: kyc-bridge <command> [options]\n"
                "       kyc-bridge <command> --help\n\nCommands:\n",
                KB_VERSION_STR);
        for (i = 0; i < sizeof(cmds) / sizeof(cmds[0]); i++)
                fprintf(fp, "  %-10s %s\n", cmds[i].name, cmds[i].summary);
        fprintf(fp, "  %-10s %s\n", "version", "print the version");
}

/* A command's end: a consumer parked by kb_kafka_consumer_destroy() still
 * has threads, so the process ends without running exit handlers. */
static int finish(int rc)
{
        if (kb_kafka_parked()) {
                fflush(NULL);
                _exit(rc);
        }
        return rc;
}

int main(int argc, char **argv)
{
        size_t i;

        if (argc < 2) {
                usage(stderr);
                return KB_EXIT_USAGE;
        }
        if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") ||
            !strcmp(argv[1], "help")) {
                usage(stdout);
                return KB_EXIT_OK;
        }
        if (!strcmp(argv[1], "version") || !strcmp(argv[1], "--version")) {
                printf("kyc-bridge %s\n", KB_VERSION_STR);
                return KB_EXIT_OK;
        }
        if (kb_init() != KB_OK) {
                fprintf(stderr, "kyc-bridge: cannot initialise libsodium\n");
                return KB_EXIT_FAIL;
        }
        for (i = 0; i < sizeof(cmds) / sizeof(cmds[0]); i++)
                if (!strcmp(argv[1], cmds[i].name))
                        return finish(cmds[i].fn(argc - 1, argv + 1));
        fprintf(stderr, "kyc-bridge: unknown command '%s' (see --help)\n",
                argv[1]);
        return KB_EXIT_USAGE;
}
