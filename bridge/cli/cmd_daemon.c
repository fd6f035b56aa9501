/* cmd_daemon.c -- "kyc-bridge issuer" and "kyc-bridge importer": one
 * table-driven command that loads the config, builds the daemon, runs it
 * until a signal and maps the outcome to an exit status */
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>

#include "cmd.h"
#include "importer.h"
#include "issuer.h"
#include "log.h"
#include "processor.h"
#include "utf8.h"

#define ISSUER_HELP                                                            \
        "Consumes share requests (issuer.request_topic), mints a share token " \
        "for each\n"                                                           \
        "through the vendor API, seals it to the partner's key, signs it, "    \
        "and publishes\n"                                                      \
        "the envelope to issuer.token_topic keyed by for_application_id -- "   \
        "in one Kafka\n"                                                       \
        "transaction with the request's offset, so a crash never publishes "   \
        "twice.\n"                                                             \
        "Requests that cannot be shared go to issuer.dlq_topic with a "        \
        "reason.\n"                                                            \
        "With webhook.listen, also takes the vendor's signed status.updated "  \
        "webhooks\n"                                                           \
        "and turns those matching a sharing rule (rule.<name>.*) into share "  \
        "requests\n"                                                           \
        "(docs/webhooks.md).\n"

#define IMPORTER_HELP                                                          \
        "Consumes sealed share envelopes (importer.token_topics) as a "        \
        "consumer group,\n"                                                    \
        "skips records keyed to other applications, verifies and opens the "   \
        "rest,\n"                                                              \
        "redeems each token once through the vendor's import endpoint and "    \
        "publishes\n"                                                          \
        "the imported session (full or summary, per partner) to "              \
        "importer.output_topic\n"                                              \
        "keyed by vendor_data -- in one Kafka transaction with the input "     \
        "offset.\n"                                                            \
        "A 403 after a retry or crash is reconciled: the session already "     \
        "created is\n"                                                         \
        "found and published once. Everything else that cannot be imported "   \
        "goes to\n"                                                            \
        "importer.dlq_topic with a reason.\n"

/* A signal handler may only store to a lock-free atomic. */
_Static_assert(ATOMIC_INT_LOCK_FREE == 2, "atomic_int must be lock-free");

typedef struct daemon_s {
        const char *name;
        const char *help; /* --help text after the common usage line */
        kb_proc_t *(*create)(const kb_conf_t *conf, int *is_config_error,
                             char *errstr, size_t errstr_size);
} daemon_t;

static const daemon_t daemons[] = {
        { "issuer", ISSUER_HELP, kb_issuer_proc_new },
        { "importer", IMPORTER_HELP, kb_importer_proc_new },
};

static void usage(const daemon_t *d, FILE *fp)
{
        fprintf(fp,
                "Usage: kyc-bridge %s -c FILE [-X key=value]...\n\n%s\n"
                "  -c FILE        configuration (see 'kyc-bridge config "
                "options')\n"
                "  -X key=value   override one option (repeatable)\n\n"
                "Exit status: 0 after SIGTERM/SIGINT, 1 on a runtime "
                "failure (nothing\nuncommitted is lost), 2 on a "
                "configuration error.\n",
                d->name, d->help);
}

static kb_conf_t *daemon_load(int argc, char **argv, const daemon_t *d,
                              int *exit_code)
{
        const char *prog = d->name;
        const char *path = NULL;
        kb_conf_t *conf;
        char errstr[1024];
        int i, lvl;

        *exit_code = 2;
        for (i = 1; i < argc; i++) {
                if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
                        usage(d, stdout);
                        *exit_code = 0;
                        return NULL;
                } else if ((!strcmp(argv[i], "-c") ||
                            !strcmp(argv[i], "--config")) &&
                           i + 1 < argc) {
                        path = argv[++i];
                } else if (!strcmp(argv[i], "-X") && i + 1 < argc) {
                        i++;
                } else {
                        char arg[256];
                        kb_str_printable(arg, sizeof(arg), argv[i],
                                         strlen(argv[i]));
                        fprintf(stderr, "%s: unexpected argument '%s'\n", prog,
                                arg);
                        usage(d, stderr);
                        return NULL;
                }
        }
        if (!path) {
                fprintf(stderr, "%s: -c FILE is required\n", prog);
                usage(d, stderr);
                return NULL;
        }
        conf = kb_conf_new();
        if (!conf) {
                fprintf(stderr, "%s: out of memory\n", prog);
                *exit_code = 1;
                return NULL;
        }
        if (kb_cmd_conf_load(conf, path, argc, argv, 1, errstr, sizeof(errstr)))
                goto fail;
        lvl = kb_log_level_parse(kb_conf_get(conf, "log.level"));
        kb_log_setup(lvl < 0 ? KB_LOG_INFO : lvl,
                     !strcmp(kb_conf_get(conf, "log.format"), "json"), 2, prog);
        return conf;
fail:
        fprintf(stderr, "%s\n", errstr);
        kb_conf_destroy(conf);
        return NULL;
}

static atomic_int stop_flag;

static void on_signal(int sig)
{
        (void)sig;
        atomic_store(&stop_flag, 1);
}

static void daemon_signals(void)
{
        struct sigaction sa;

        memset(&sa, 0, sizeof(sa));
        sa.sa_handler = on_signal;
        sigemptyset(&sa.sa_mask);
        sigaction(SIGINT, &sa, NULL);
        sigaction(SIGTERM, &sa, NULL);
        sa.sa_handler = SIG_IGN;
        sigaction(SIGPIPE, &sa, NULL);
}

static int daemon_main(int argc, char **argv, const daemon_t *d)
{
        kb_conf_t *conf;
        kb_proc_t *p;
        char errstr[1024];
        int rc, cfg_err;

        /* first: a SIGTERM during start-up (creating the daemon, reaching
         * the broker) is a clean stop too, not death by the signal --
         * kb_proc_run() sees the flag and returns before it starts */
        daemon_signals();
        /* one descriptor per vendor call in flight (vendor.max_in_flight,
         * up to 4096) */
        kb_cmd_raise_nofile();
        conf = daemon_load(argc, argv, d, &rc);
        if (!conf)
                return rc;
        p = d->create(conf, &cfg_err, errstr, sizeof(errstr));
        if (!p) {
                fprintf(stderr, "%s: %s\n", d->name, errstr);
                kb_conf_destroy(conf);
                return cfg_err ? KB_EXIT_USAGE : KB_EXIT_FAIL;
        }
        rc = kb_proc_run(p, &stop_flag, errstr, sizeof(errstr));
        if (rc == KB_ERR_CONFIG) {
                fprintf(stderr, "%s: %s\n", d->name, errstr);
                rc = KB_EXIT_USAGE;
        } else if (rc != KB_OK) {
                kb_log_error(d->name, "%s", errstr);
                rc = KB_EXIT_FAIL;
        } else {
                kb_log_notice(d->name, "stopped");
                rc = KB_EXIT_OK;
        }
        kb_proc_free(p);
        kb_conf_destroy(conf);
        return rc;
}

int kb_cmd_issuer(int argc, char **argv)
{
        return daemon_main(argc, argv, &daemons[0]);
}

int kb_cmd_importer(int argc, char **argv)
{
        return daemon_main(argc, argv, &daemons[1]);
}
