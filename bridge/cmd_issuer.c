/* cmd_issuer.c -- "kyc-bridge issuer": run the issuer daemon */
#include <stdio.h>

#include "cmd.h"
#include "daemon.h"
#include "issuer.h"
#include "log.h"

static void usage(FILE *fp)
{
        fprintf(fp,
                "Usage: kyc-bridge issuer -c FILE [-X key=value]...\n\n"
                "Consumes share requests (issuer.request_topic), mints a "
                "share token for each\nthrough the vendor API, seals it to "
                "the partner's key, signs it, and publishes\nthe envelope to "
                "issuer.token_topic keyed by for_application_id -- in one "
                "Kafka\ntransaction with the request's offset, so a crash "
                "never publishes twice.\nRequests that cannot be shared go to "
                "issuer.dlq_topic with a reason.\n\n"
                "  -c FILE        configuration (see 'kyc-bridge config "
                "options')\n"
                "  -X key=value   override one option (repeatable)\n\n"
                "Exit status: 0 after SIGTERM/SIGINT, 1 on a runtime "
                "failure (nothing\nuncommitted is lost), 2 on a "
                "configuration error.\n");
}

int kb_cmd_issuer(int argc, char **argv)
{
        static volatile sig_atomic_t stop;
        kb_conf_t *conf;
        kb_issuer_t *is;
        char errstr[1024];
        int rc, cfg_err;

        conf = kb_daemon_load(argc, argv, "issuer", usage, &rc);
        if (!conf)
                return rc;
        is = kb_issuer_new(conf, &cfg_err, errstr, sizeof(errstr));
        if (!is) {
                fprintf(stderr, "issuer: %s\n", errstr);
                kb_conf_destroy(conf);
                return cfg_err ? KB_EXIT_USAGE : KB_EXIT_FAIL;
        }
        kb_daemon_signals(&stop);
        rc = kb_issuer_run(is, &stop, errstr, sizeof(errstr));
        if (rc == KB_ERR_CONFIG) {
                fprintf(stderr, "issuer: %s\n", errstr);
                rc = KB_EXIT_USAGE;
        } else if (rc != KB_OK) {
                kb_log_error("issuer", "%s", errstr);
                rc = KB_EXIT_FAIL;
        } else {
                kb_log_notice("issuer", "stopped");
                rc = KB_EXIT_OK;
        }
        kb_issuer_destroy(is);
        kb_conf_destroy(conf);
        return rc;
}
