/* partners.c -- the partner registry: who we share with / import from */
#include "partners.h"

#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "hmap.h"
#include "util.h"

/* @p app lower-cased into @p out (application ids are compared without
 * case); the length, 0 when it does not fit. */
static size_t app_key(const char *app, char *out, size_t outsz)
{
        size_t i, l = strlen(app);

        if (l >= outsz)
                return 0;
        for (i = 0; i < l; i++)
                out[i] = (char)tolower((unsigned char)app[i]);
        out[l] = '\0';
        return l;
}

static const char *get_sec(const kb_conf_t *conf, const char *sec,
                           const char *opt, char *key, size_t keysz)
{
        kb_snprintf(key, keysz, "partner.%s.%s", sec, opt);
        return kb_conf_get(conf, key);
}

int kb_partners_load(kb_partners_t *ps, const kb_conf_t *conf, unsigned scope,
                     char *errstr, size_t errstr_size)
{
        char **secs;
        size_t n, i;
        char key[256], berr[512], low[64];
        int r = KB_OK;

        ps->v = NULL;
        ps->n = 0;
        ps->by_app = NULL;
        secs = kb_conf_sections(conf, "partner", &n);
        if (!secs)
                return KB_ERR_NOMEM;
        if (n == 0) {
                kb_snprintf(errstr, errstr_size,
                            "%s: no partner configured (partner.<name>."
                            "application_id and partner.<name>.keys)",
                            kb_conf_path(conf));
                kb_conf_list_free(secs);
                return KB_ERR_CONFIG;
        }
        ps->v = calloc(n, sizeof(*ps->v));
        ps->by_app = kb_hmap_new();
        if (!ps->v || !ps->by_app) {
                kb_partners_free(ps);
                kb_conf_list_free(secs);
                return KB_ERR_NOMEM;
        }
        for (i = 0; i < n && !r; i++) {
                kb_partner_t *p = &ps->v[i];
                const char *app, *path, *v;

                ps->n++;
                kb_strlcpy(p->name, secs[i], sizeof(p->name));
                app =
                    get_sec(conf, secs[i], "application_id", key, sizeof(key));
                if (!app) {
                        kb_snprintf(errstr, errstr_size,
                                    "%s: %s: required option is not set",
                                    kb_conf_path(conf), key);
                        r = KB_ERR_CONFIG;
                        break;
                }
                kb_strlcpy(p->application_id, app, sizeof(p->application_id));
                if (kb_conf_get(conf, "application_id") &&
                    !strcasecmp(app, kb_conf_get(conf, "application_id"))) {
                        kb_snprintf(errstr, errstr_size,
                                    "%s: %s: is our own application_id",
                                    kb_conf_origin(conf, key), key);
                        r = KB_ERR_CONFIG;
                        break;
                }
                {
                        size_t kl =
                            app_key(p->application_id, low, sizeof(low));
                        const kb_partner_t *o =
                            kb_hmap_get(ps->by_app, low, kl);
                        if (o) {
                                kb_snprintf(errstr, errstr_size,
                                            "%s: %s: application id already "
                                            "used by partner '%s'",
                                            kb_conf_origin(conf, key), key,
                                            o->name);
                                r = KB_ERR_CONFIG;
                                break;
                        }
                        if (kb_hmap_put(ps->by_app, low, kl, p)) {
                                kb_snprintf(errstr, errstr_size,
                                            "out of memory");
                                r = KB_ERR_NOMEM;
                                break;
                        }
                }
                path = get_sec(conf, secs[i], "keys", key, sizeof(key));
                if (!path) {
                        kb_snprintf(errstr, errstr_size,
                                    "%s: %s: required option is not set",
                                    kb_conf_path(conf), key);
                        r = KB_ERR_CONFIG;
                        break;
                }
                p->bundle = kb_bundle_load(path, berr, sizeof(berr));
                if (!p->bundle && errno == ENOMEM) {
                        /* the file may be fine: not the config's fault */
                        kb_snprintf(errstr, errstr_size, "out of memory");
                        r = KB_ERR_NOMEM;
                        break;
                }
                if (!p->bundle) {
                        kb_snprintf(errstr, errstr_size, "%s: %s: %s",
                                    kb_conf_origin(conf, key), key, berr);
                        r = KB_ERR_CONFIG;
                        break;
                }
                p->box = kb_bundle_get(p->bundle, KB_KEY_BOX, 0);
                if ((scope & KB_SCOPE_ISSUER) && !p->box) {
                        kb_snprintf(errstr, errstr_size,
                                    "%s: %s: bundle has no x25519 key to "
                                    "seal to",
                                    kb_conf_origin(conf, key), key);
                        r = KB_ERR_CONFIG;
                        break;
                }
                if ((scope & KB_SCOPE_IMPORTER) &&
                    kb_bundle_count(p->bundle, KB_KEY_SIGN) == 0) {
                        kb_snprintf(errstr, errstr_size,
                                    "%s: %s: bundle has no ed25519 signing "
                                    "key",
                                    kb_conf_origin(conf, key), key);
                        r = KB_ERR_CONFIG;
                        break;
                }
                v = get_sec(conf, secs[i], "workflow_id.user", key,
                            sizeof(key));
                kb_strlcpy(p->workflow_user, v ? v : "",
                           sizeof(p->workflow_user));
                v = get_sec(conf, secs[i], "workflow_id.business", key,
                            sizeof(key));
                kb_strlcpy(p->workflow_business, v ? v : "",
                           sizeof(p->workflow_business));
                if ((scope & KB_SCOPE_IMPORTER) && !p->workflow_user[0] &&
                    !p->workflow_business[0]) {
                        kb_snprintf(key, sizeof(key),
                                    "partner.%s.application_id", secs[i]);
                        kb_snprintf(errstr, errstr_size,
                                    "%s: partner.%s: set workflow_id.user "
                                    "and/or workflow_id.business",
                                    kb_conf_origin(conf, key), secs[i]);
                        r = KB_ERR_CONFIG;
                        break;
                }
                get_sec(conf, secs[i], "trust_review", key, sizeof(key));
                p->trust_review = kb_conf_get_bool(conf, key);
                v = get_sec(conf, secs[i], "vendor_data", key, sizeof(key));
                kb_strlcpy(p->vendor_data, v ? v : "hint",
                           sizeof(p->vendor_data));
                v = get_sec(conf, secs[i], "record", key, sizeof(key));
                p->full_record = v && !strcmp(v, "full");
        }
        kb_conf_list_free(secs);
        if (r)
                kb_partners_free(ps);
        return r;
}

const kb_partner_t *kb_partners_find(const kb_partners_t *ps,
                                     const char *application_id)
{
        char low[64];
        size_t i, kl;

        if (ps->by_app) {
                kl = app_key(application_id, low, sizeof(low));
                return kl ? kb_hmap_get(ps->by_app, low, kl) : NULL;
        }
        for (i = 0; i < ps->n; i++)
                if (!strcasecmp(ps->v[i].application_id, application_id))
                        return &ps->v[i];
        return NULL;
}

void kb_partners_free(kb_partners_t *ps)
{
        size_t i;

        for (i = 0; ps->v && i < ps->n; i++)
                kb_bundle_destroy(ps->v[i].bundle);
        free(ps->v);
        kb_hmap_destroy(ps->by_app);
        ps->by_app = NULL;
        ps->v = NULL;
        ps->n = 0;
}

const char *kb_partner_workflow(const kb_partner_t *p, kb_session_kind_t kind)
{
        return kind == KB_SESSION_BUSINESS ? p->workflow_business
                                           : p->workflow_user;
}
