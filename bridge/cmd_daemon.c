/* cmd_daemon.c -- the life of a daemon subcommand (issuer, importer): load the
 * config, build, run until a signal, map the outcome to an exit status */
#include <stdio.h>

#include "cmd.h"
#include "daemon.h"
#include "log.h"

int kb_cmd_daemon_main(int argc, char **argv, const kb_cmd_daemon_t *d)
{
        static volatile sig_atomic_t stop;
        kb_conf_t *conf;
        void *obj;
        char errstr[1024];
        int rc, cfg_err;

        conf = kb_daemon_load(argc, argv, d->name, d->usage, &rc);
        if (!conf)
                return rc;
        obj = d->create(conf, &cfg_err, errstr, sizeof(errstr));
        if (!obj) {
                fprintf(stderr, "%s: %s\n", d->name, errstr);
                kb_conf_destroy(conf);
                return cfg_err ? KB_EXIT_USAGE : KB_EXIT_FAIL;
        }
        kb_daemon_signals(&stop);
        rc = d->run(obj, &stop, errstr, sizeof(errstr));
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
        d->destroy(obj);
        kb_conf_destroy(conf);
        return rc;
}
