/* issuer_rules.h -- the issuer's sharing rules, from the rule.<name>.*
 * sections of the configuration */
#ifndef KB_ISSUER_RULES_H
#define KB_ISSUER_RULES_H

#include <stddef.h>

#include "conf.h"
#include "ops_http.h"
#include "partners.h"
#include "wh_rules.h"

/**
 * Compiles every rule.<name>.* section of @p conf (wh_rules.h): partner
 * names looked up in @p ps (their configured application ids), share
 * requests to issuer.request_topic, issuer.rules_allow_simple. Only with
 * an intake (@p have_intake: webhook.listen set): *out is NULL without
 * one, and a rule without one is a configuration error, since it could
 * never fire. Returns KB_OK, KB_ERR_CONFIG ("origin: rule.<name>.<field>:
 * reason" in @p errstr) or KB_ERR_NOMEM.
 */
int kb_issuer_rules_load(const kb_conf_t *conf, const kb_partners_t *ps,
                         int have_intake, kb_wh_rules_t **out, char *errstr,
                         size_t errstr_size) KB_WUR;

/**
 * Metrics: shows kyc_bridge_webhook_share_requests_total{daemon,rule} of every
 * rule of @p rs at 0 and counts the share requests each makes into
 * @p opsh. Start-up, before the intake starts. NULL either: no-op.
 */
void kb_issuer_rules_metrics(kb_wh_rules_t *rs, kb_ops_http_t *opsh);

#endif /* KB_ISSUER_RULES_H */
