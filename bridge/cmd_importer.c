/* cmd_importer.c -- "kyc-bridge importer": run the importer daemon */
#include <stdio.h>

#include "cmd.h"
#include "daemon.h"
#include "importer.h"
#include "log.h"

static void usage(FILE *fp)
{
        fprintf(fp,
                "Usage: kyc-bridge importer -c FILE [-X key=value]...\n\n"
                "Consumes sealed share envelopes (importer.token_topics) as a "
                "consumer group,\nskips records keyed to other applications, "
                "verifies and opens the rest,\nredeems each token once "
                "through the vendor's import endpoint and publishes\nthe "
                "imported session (full or summary, per partner) to "
                "importer.output_topic\nkeyed by vendor_data -- in one Kafka "
                "transaction with the input offset.\nA 403 after a retry or "
                "crash is reconciled: the session already created is\nfound "
                "and published once. Everything else that cannot be imported "
                "goes to\nimporter.dlq_topic with a reason.\n\n"
                "  -c FILE        configuration (see 'kyc-bridge config "
                "options')\n"
                "  -X key=value   override one option (repeatable)\n\n"
                "Exit status: 0 after SIGTERM/SIGINT, 1 on a runtime "
                "failure (nothing\nuncommitted is lost), 2 on a "
                "configuration error.\n");
}

int kb_cmd_importer(int argc, char **argv)
{
        static volatile sig_atomic_t stop;
        kb_conf_t *conf;
        kb_importer_t *is;
        char errstr[1024];
        int rc, cfg_err;

        conf = kb_daemon_load(argc, argv, "importer", usage, &rc);
        if (!conf)
                return rc;
        is = kb_importer_new(conf, &cfg_err, errstr, sizeof(errstr));
        if (!is) {
                fprintf(stderr, "importer: %s\n", errstr);
                kb_conf_destroy(conf);
                return cfg_err ? KB_EXIT_USAGE : KB_EXIT_FAIL;
        }
        kb_daemon_signals(&stop);
        rc = kb_importer_run(is, &stop, errstr, sizeof(errstr));
        if (rc == KB_ERR_CONFIG) {
                fprintf(stderr, "importer: %s\n", errstr);
                rc = KB_EXIT_USAGE;
        } else if (rc != KB_OK) {
                kb_log_error("importer", "%s", errstr);
                rc = KB_EXIT_FAIL;
        } else {
                kb_log_notice("importer", "stopped");
                rc = KB_EXIT_OK;
        }
        kb_importer_destroy(is);
        kb_conf_destroy(conf);
        return rc;
}
