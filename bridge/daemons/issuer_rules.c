/* issuer_rules.c -- the issuer's sharing rules, from the rule.<name>.*
 * sections of the configuration */
#include "issuer_rules.h"

#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "util.h"

#define NFIELDS 5

static const char *const fields[NFIELDS] = { "workflow_id", "statuses",
                                             "partners", "ttl_s",
                                             "vendor_data" };

/* kb_wh_partner_fn over the registry: a partner.<name> section's id. */
static const char *partner_app_id(void *opaque, const char *name)
{
        const kb_partners_t *ps = opaque;
        size_t i;

        for (i = 0; i < ps->n; i++)
                if (!strcmp(ps->v[i].name, name))
                        return ps->v[i].application_id;
        return NULL;
}

int kb_issuer_rules_load(const kb_conf_t *conf, const kb_partners_t *ps,
                         int have_intake, kb_wh_rules_t **out, char *errstr,
                         size_t errstr_size)
{
        char **names;
        kb_wh_rule_conf_t *rc = NULL;
        char(*keys)[NFIELDS][128] = NULL;
        const char *origin[NFIELDS];
        size_t n = 0, i, f;
        int r = KB_ERR_NOMEM;

        *out = NULL;
        names = kb_conf_sections(conf, "rule", &n);
        if (!names)
                return KB_ERR_NOMEM;
        if (!have_intake) {
                r = KB_OK;
                if (n) {
                        /* a rule acts on webhook deliveries only */
                        char key[128];
                        kb_snprintf(key, sizeof(key), "rule.%s.workflow_id",
                                    names[0]);
                        kb_snprintf(errstr, errstr_size,
                                    "%s: rule.%s: sharing rules act on "
                                    "webhook deliveries and would never "
                                    "fire: set webhook.listen (and "
                                    "webhook.secret), or remove the rule",
                                    kb_conf_origin(conf, key), names[0]);
                        r = KB_ERR_CONFIG;
                }
                goto out;
        }
        if (n && (!(rc = calloc(n, sizeof(*rc))) ||
                  !(keys = calloc(n, sizeof(*keys)))))
                goto out;
        for (i = 0; i < n; i++) {
                for (f = 0; f < NFIELDS; f++) {
                        kb_snprintf(keys[i][f], sizeof(keys[i][f]),
                                    "rule.%s.%s", names[i], fields[f]);
                        origin[f] = kb_conf_origin(conf, keys[i][f]);
                }
                rc[i].name = names[i];
                rc[i].workflow_id = kb_conf_get(conf, keys[i][0]);
                rc[i].statuses = kb_conf_get(conf, keys[i][1]);
                rc[i].partners = kb_conf_get(conf, keys[i][2]);
                rc[i].ttl_s = kb_conf_get_int(conf, keys[i][3]);
                rc[i].vendor_data = kb_conf_get(conf, keys[i][4]);
                rc[i].origin_workflow_id = origin[0];
                rc[i].origin_statuses = origin[1];
                rc[i].origin_partners = origin[2];
                rc[i].origin_ttl_s = origin[3];
                rc[i].origin_vendor_data = origin[4];
        }
        *out =
            kb_wh_rules_new(rc, n, kb_conf_get(conf, "issuer.request_topic"),
                            kb_conf_get_bool(conf, "issuer.rules_allow_simple"),
                            partner_app_id, (void *)ps, errstr, errstr_size);
        if (!*out) {
                r = strcmp(errstr, "out of memory") ? KB_ERR_CONFIG
                                                    : KB_ERR_NOMEM;
                goto out;
        }
        if (!n)
                kb_log_warn("issuer",
                            "webhook.listen without any rule.<name>.*: "
                            "deliveries are counted, none is shared");
        r = KB_OK;
out:
        free(keys);
        free(rc);
        kb_conf_list_free(names);
        return r;
}

void kb_issuer_rules_metrics(kb_wh_rules_t *rs, kb_ops_http_t *opsh)
{
        size_t i;

        if (!rs || !opsh)
                return;
        for (i = 0; i < kb_wh_rules_count(rs); i++)
                kb_ops_http_rule(opsh, kb_wh_rules_name(rs, i));
        kb_wh_rules_set_observer(rs, kb_ops_http_rule_shares, opsh);
}
