/* cmd_issuer.c -- "kyc-bridge issuer": run the issuer daemon */
#include <stdio.h>

#include "cmd.h"
#include "issuer.h"

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

static void *create(const kb_conf_t *conf, int *is_config_error, char *errstr,
                    size_t errstr_size)
{
        return kb_issuer_new(conf, is_config_error, errstr, errstr_size);
}

static int run(void *obj, volatile sig_atomic_t *stop, char *errstr,
               size_t errstr_size)
{
        return kb_issuer_run(obj, stop, errstr, errstr_size);
}

static void destroy(void *obj)
{
        kb_issuer_destroy(obj);
}

int kb_cmd_issuer(int argc, char **argv)
{
        static const kb_cmd_daemon_t d = { "issuer", usage, create, run,
                                           destroy };

        return kb_cmd_daemon_main(argc, argv, &d);
}
