/* cmd_importer.c -- "kyc-bridge importer": run the importer daemon */
#include <stdio.h>

#include "cmd.h"
#include "importer.h"

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

static void *create(const kb_conf_t *conf, int *is_config_error, char *errstr,
                    size_t errstr_size)
{
        return kb_importer_new(conf, is_config_error, errstr, errstr_size);
}

static int run(void *obj, volatile sig_atomic_t *stop, char *errstr,
               size_t errstr_size)
{
        return kb_importer_run(obj, stop, errstr, errstr_size);
}

static void destroy(void *obj)
{
        kb_importer_destroy(obj);
}

int kb_cmd_importer(int argc, char **argv)
{
        static const kb_cmd_daemon_t d = { "importer", usage, create, run,
                                           destroy };

        return kb_cmd_daemon_main(argc, argv, &d);
}
