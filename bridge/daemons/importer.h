/* importer.h -- the importer daemon: envelopes in, imported sessions out */
#ifndef KB_IMPORTER_H
#define KB_IMPORTER_H

#include <stdint.h>

#include <json-c/json.h>

#include "conf.h"
#include "jview.h"
#include "processor.h"
#include "util.h"
#include "wh_delivery.h"

typedef struct kb_importer_s kb_importer_t;
typedef struct kb_status_s kb_status_t;

/**
 * Validates @p conf for the importer role and builds everything that does
 * not need Kafka: own box keys, partners' signing keys, policies, vendor
 * client. @p conf must outlive the importer. NULL + reason on failure;
 * *is_config_error is 1 for a configuration problem (exit 2), 0 for any
 * other (out of memory: exit 1).
 */
kb_importer_t *kb_importer_new(const kb_conf_t *conf, int *is_config_error,
                               char *errstr, size_t errstr_size);

/** kb_importer_new() as its processor base (see kb_issuer_proc_new()). */
kb_proc_t *kb_importer_proc_new(const kb_conf_t *conf, int *is_config_error,
                                char *errstr, size_t errstr_size);

void kb_importer_destroy(kb_importer_t *im);

/**
 * The importer's webhook action (kb_wh_action_fn; @p opaque = its
 * kb_proc_t, i.e. the importer): the partner application's own
 * status.updated deliveries become status updates of the sessions it
 * imported (kb_status_action(), status.h). Any thread.
 */
int kb_importer_webhook_action(void *opaque, const kb_wh_delivery_t *dlv,
                               kb_wh_records_t *out, char *errstr,
                               size_t errstr_size);

/** The importer's index of imported sessions (status.h). */
kb_status_t *kb_importer_status(kb_importer_t *im);

/**
 * The summary of a session for downstream consumers that must not receive
 * documents, images or AML details: the session's scalar members, and for
 * each verification array, per element only its status, score, method,
 * role, type and total_hits. Returns a new object or NULL on ENOMEM.
 */
json_object *kb_session_summary(json_object *session);

/**
 * kb_session_summary() written as JSON text straight from a session's raw
 * text: appends to @p out the compact JSON of the summary of @p session's
 * root (an empty object when it is no object) -- the same members in the
 * same order with the same values as kb_json_str(kb_session_summary()),
 * numbers and strings copied as the session wrote them. Returns 0, or -1
 * on ENOMEM (@p out then holds part of it).
 */
int kb_session_summary_put(kb_buf_t *out, const kb_jview_t *session);

/**
 * Non-zero unless @p session (a list result) was created before @p iat
 * (unix seconds; 0: unknown): only a session created after the token was
 * minted can be its import (one clock: the vendor's). created_at is read
 * with its UTC offset; without a parsable one nothing is ruled out.
 */
int kb_session_created_after(json_object *session, int64_t iat);

#endif /* KB_IMPORTER_H */
