/* daemon.h -- what the issuer and importer daemons share: Kafka set-up,
 * option parsing, signals */
#ifndef KB_DAEMON_H
#define KB_DAEMON_H

#include <signal.h>

#include "conf.h"
#include "pipeline.h"

/**
 * Fills @p pc from the pipeline.* options and builds the consumer
 * (group @p group) and transactional producer configurations; the
 * transactional id comes from option @p tid_opt, or "<group>-<hostname>".
 * Checks that the timeouts agree with each other (a transaction must be able
 * to commit before transaction.timeout.ms; a drain on revoke must end before
 * max.poll.interval.ms). Errors read "origin: key: reason".
 */
int kb_daemon_kafka_confs(const kb_conf_t *conf, const char *group,
                          const char *tid_opt, kb_pipeline_conf_t *pc,
                          char *errstr, size_t errstr_size);

/**
 * Parses "-c FILE" (required), "-X key=value" (repeatable) and "--help"
 * for a daemon subcommand, loads the config and sets up logging.
 * Returns the config, or NULL after printing the reason (*exit_code set: 0
 * after --help, 2 for usage/config errors).
 */
kb_conf_t *kb_daemon_load(int argc, char **argv, const char *prog,
                          void (*usage)(FILE *fp), int *exit_code);

/** Installs SIGINT/SIGTERM handlers that set *flag; ignores SIGPIPE. */
void kb_daemon_signals(volatile sig_atomic_t *flag);

#endif /* KB_DAEMON_H */
