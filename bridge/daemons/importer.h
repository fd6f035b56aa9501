/* importer.h -- the importer daemon: envelopes in, imported sessions out */
#ifndef KB_IMPORTER_H
#define KB_IMPORTER_H

#include <signal.h>

#include <json-c/json.h>

#include "conf.h"

typedef struct kb_importer_s kb_importer_t;

/**
 * Validates @p conf for the importer role and builds everything that does
 * not need Kafka: own box keys, partners' signing keys, policies, vendor
 * client. @p conf must outlive the importer. NULL + reason on failure;
 * *is_config_error tells a configuration problem (exit 2) apart.
 */
kb_importer_t *kb_importer_new(const kb_conf_t *conf, int *is_config_error,
                               char *errstr, size_t errstr_size);

/** Connects to Kafka and runs until *stop (see kb_issuer_run()). */
int kb_importer_run(kb_importer_t *im, volatile sig_atomic_t *stop,
                    char *errstr, size_t errstr_size);

void kb_importer_destroy(kb_importer_t *im);

/**
 * The summary of a session for downstream consumers that must not receive
 * documents, images or AML details: the session's scalar members, and for
 * each verification array, per element only its status, score, method,
 * role, type and total_hits. Returns a new object or NULL on ENOMEM.
 */
json_object *kb_session_summary(json_object *session);

#endif /* KB_IMPORTER_H */
