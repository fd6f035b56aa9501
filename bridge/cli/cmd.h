/* cmd.h -- subcommand entry points and the helpers the command layer shares */
#ifndef KB_CMD_H
#define KB_CMD_H

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

#define KB_EXIT_OK    0
#define KB_EXIT_FAIL  1
#define KB_EXIT_USAGE 2

/**
 * Loads the configuration file @p path into @p conf, then applies every
 * "-X key=value" of @p argv from index @p first on, in order (the command's
 * own option parsing has checked their form). KB_OK, or the loader's error
 * with "file:line: reason" (or "-X ...: reason") in @p errstr.
 */
int kb_cmd_conf_load(kb_conf_t *conf, const char *path, int argc, char **argv,
                     int first, char *errstr, size_t errstr_size);

/**
 * Raises the soft limit on open descriptors towards the hard one (at most
 * 16384): a server with many keep-alive clients, or a daemon with
 * vendor.max_in_flight connections to the vendor, needs more than the usual
 * 1024. Nothing happens when it cannot.
 */
void kb_cmd_raise_nofile(void);

int kb_cmd_config(int argc, char **argv);
int kb_cmd_dlq(int argc, char **argv);
int kb_cmd_keygen(int argc, char **argv);
int kb_cmd_inspect(int argc, char **argv);
int kb_cmd_sandbox(int argc, char **argv);
/* the daemons (cmd_daemon.c) */
int kb_cmd_issuer(int argc, char **argv);
int kb_cmd_importer(int argc, char **argv);
int kb_cmd_share(int argc, char **argv);
int kb_cmd_demo(int argc, char **argv);

#endif /* KB_CMD_H */
