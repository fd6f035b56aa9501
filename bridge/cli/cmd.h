/* cmd.h -- subcommand entry points and the helpers the command layer shares */
#ifndef KB_CMD_H
#define KB_CMD_H

#include <signal.h>
#include <stddef.h>
#include <stdio.h>

#include "conf.h"

/* Every subcommand: argv[0] is the subcommand name. Returns the exit status.
 * Exit statuses: 0 ok, 1 runtime failure, 2 usage or configuration error. */
typedef int(kb_cmd_fn)(int argc, char **argv);

typedef struct kb_cmd_s {
        const char *name;
        kb_cmd_fn *fn;
        const char *summary; /* one line for the top-level usage */
} kb_cmd_t;

/* A daemon subcommand: how to build, run and free it (cmd_daemon.c). */
typedef struct kb_cmd_daemon_s {
        const char *name;
        void (*usage)(FILE *fp);
        void *(*create)(const kb_conf_t *conf, int *is_config_error,
                        char *errstr, size_t errstr_size);
        int (*run)(void *obj, volatile sig_atomic_t *stop, char *errstr,
                   size_t errstr_size);
        void (*destroy)(void *obj);
} kb_cmd_daemon_t;

/** Runs a daemon subcommand; returns its exit status. */
int kb_cmd_daemon_main(int argc, char **argv, const kb_cmd_daemon_t *d);

#define KB_EXIT_OK    0
#define KB_EXIT_FAIL  1
#define KB_EXIT_USAGE 2

int kb_cmd_config(int argc, char **argv);
int kb_cmd_keygen(int argc, char **argv);
int kb_cmd_inspect(int argc, char **argv);
int kb_cmd_sandbox(int argc, char **argv);
int kb_cmd_issuer(int argc, char **argv);
int kb_cmd_importer(int argc, char **argv);
int kb_cmd_share(int argc, char **argv);
int kb_cmd_demo(int argc, char **argv);

#endif /* KB_CMD_H */
