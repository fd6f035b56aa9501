/* daemon.h -- what the issuer and importer daemons share: Kafka set-up */
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

#endif /* KB_DAEMON_H */
