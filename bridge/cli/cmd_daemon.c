/* cmd_daemon.c -- the life of a daemon subcommand (issuer, importer): load the
 * config, build, run until a signal, map the outcome to an exit status */
#include <signal.h>
#include <stdio.h>
#include <string.h>

#include "cmd.h"
#include "log.h"

static kb_conf_t *daemon_load(int argc, char **argv, const char *prog,
                              void (*usage)(FILE *fp), int *exit_code)
{
        const char *path = NULL;
        kb_conf_t *conf;
        char errstr[1024];
        int i, lvl;

        *exit_code = 2;
        for (i = 1; i < argc; i++) {
                if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
                        usage(stdout);
                        *exit_code = 0;
                        return NULL;
                } else if ((!strcmp(argv[i], "-c") ||
                            !strcmp(argv[i], "--config")) &&
                           i + 1 < argc) {
                        path = argv[++i];
                } else if (!strcmp(argv[i], "-X") && i + 1 < argc) {
                        i++;
                } else {
                        fprintf(stderr, "%s: unexpected argument '%s'\n", prog,
                                argv[i]);
                        usage(stderr);
                        return NULL;
                }
        }
        if (!path) {
                fprintf(stderr, "%s: -c FILE is required\n", prog);
                usage(stderr);
                return NULL;
        }
        conf = kb_conf_new();
        if (!conf) {
                fprintf(stderr, "%s: out of memory\n", prog);
                *exit_code = 1;
                return NULL;
        }
        if (kb_conf_load_file(conf, path, errstr, sizeof(errstr)))
                goto fail;
        for (i = 1; i < argc; i++)
                if (!strcmp(argv[i], "-X") && i + 1 < argc &&
                    kb_conf_set_kv(conf, argv[++i], errstr, sizeof(errstr)))
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

static volatile sig_atomic_t *stop_flag;

static void on_signal(int sig)
{
        (void)sig;
        if (stop_flag)
                *stop_flag = 1;
}

static void daemon_signals(volatile sig_atomic_t *flag)
{
        struct sigaction sa;

        stop_flag = flag;
        memset(&sa, 0, sizeof(sa));
        sa.sa_handler = on_signal;
        sigemptyset(&sa.sa_mask);
        sigaction(SIGINT, &sa, NULL);
        sigaction(SIGTERM, &sa, NULL);
        sa.sa_handler = SIG_IGN;
        sigaction(SIGPIPE, &sa, NULL);
}

int kb_cmd_daemon_main(int argc, char **argv, const kb_cmd_daemon_t *d)
{
        static volatile sig_atomic_t stop;
        kb_conf_t *conf;
        void *obj;
        char errstr[1024];
        int rc, cfg_err;

        conf = daemon_load(argc, argv, d->name, d->usage, &rc);
        if (!conf)
                return rc;
        obj = d->create(conf, &cfg_err, errstr, sizeof(errstr));
        if (!obj) {
                fprintf(stderr, "%s: %s\n", d->name, errstr);
                kb_conf_destroy(conf);
                return cfg_err ? KB_EXIT_USAGE : KB_EXIT_FAIL;
        }
        daemon_signals(&stop);
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
