/* wh_rules.c -- issuer sharing rules: checking, matching, share requests
 * with deterministic share_ids */
#include "wh_rules.h"

#include <ctype.h>
#include <inttypes.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <sodium.h>

#include "conf.h"
#include "json.h"
#include "log.h"
#include "util.h"

#define FAC             "webhook"
#define SHARE_ID_DOMAIN "kyc-bridge/webhook-share/v1"
#define ID_MAX          128 /* docs/envelope.md "id" */

typedef struct rule_s {
        char *name;
        char workflow_id[37]; /* lowercase */
        unsigned statuses;    /* 1 << kb_wh_status_t */
        char **partners;      /* names */
        char **app_ids;       /* lowercase, same order */
        size_t npartners;
        int64_t ttl_s;
        char *vendor_data; /* NULL: none */
} rule_t;

struct kb_wh_rules_s {
        rule_t *rules;
        size_t n;
        char *topic;
        int allow_simple;
        atomic_uint_fast64_t matched, unmatched, unverified, shares;
        kb_wh_rules_share_fn *observe; /* set before use, then read-only */
        void *observe_opaque;
};

/* Template variables of .vendor_data. */
static const char *const tmpl_vars[] = {
        "session_id", "status",  "vendor_data", "workflow_id", "session_kind",
        "rule",       "partner", "timestamp",   NULL
};

typedef struct tmpl_ctx_s {
        const kb_wh_delivery_t *dlv;
        const char *rule, *partner;
        char ts[24];
} tmpl_ctx_t;

static const char *tmpl_lookup(void *opaque, const char *name)
{
        tmpl_ctx_t *c = opaque;
        size_t i;

        if (!c->dlv) {
                /* checking a template: any known name */
                for (i = 0; tmpl_vars[i]; i++)
                        if (!strcmp(tmpl_vars[i], name))
                                return "x";
                return NULL;
        }
        if (!strcmp(name, "session_id"))
                return c->dlv->session_id;
        if (!strcmp(name, "status"))
                return c->dlv->status;
        if (!strcmp(name, "vendor_data"))
                return c->dlv->vendor_data ? c->dlv->vendor_data : "";
        if (!strcmp(name, "workflow_id"))
                return c->dlv->workflow_id ? c->dlv->workflow_id : "";
        if (!strcmp(name, "session_kind"))
                return c->dlv->session_kind ? c->dlv->session_kind : "";
        if (!strcmp(name, "rule"))
                return c->rule;
        if (!strcmp(name, "partner"))
                return c->partner;
        if (!strcmp(name, "timestamp"))
                return c->ts;
        return NULL;
}

static void lower(char *s)
{
        for (; *s; s++)
                *s = (char)tolower((unsigned char)*s);
}

static void rule_free(rule_t *r)
{
        size_t i;

        free(r->name);
        for (i = 0; i < r->npartners; i++) {
                free(r->partners[i]);
                free(r->app_ids[i]);
        }
        free(r->partners);
        free(r->app_ids);
        free(r->vendor_data);
}

void kb_wh_rules_destroy(kb_wh_rules_t *rs)
{
        size_t i;

        if (!rs)
                return;
        for (i = 0; i < rs->n; i++)
                rule_free(&rs->rules[i]);
        free(rs->rules);
        free(rs->topic);
        free(rs);
}

/* Splits a comma list (items trimmed, empty ones refused). NULL-terminated
 * array of strings, or NULL (*bad set when an item is empty). */
static char **split_list(const char *s, size_t *n, int *bad)
{
        char **v = NULL, **nv;
        const char *p = s;

        *n = 0;
        *bad = 0;
        for (;;) {
                const char *end = strchr(p, ',');
                size_t len = end ? (size_t)(end - p) : strlen(p);
                while (len && isspace((unsigned char)*p)) {
                        p++;
                        len--;
                }
                while (len && isspace((unsigned char)p[len - 1]))
                        len--;
                if (!len) {
                        *bad = 1;
                        goto fail;
                }
                nv = realloc(v, (*n + 2) * sizeof(*v));
                if (!nv)
                        goto fail;
                v = nv;
                v[*n] = strndup(p, len);
                if (!v[*n])
                        goto fail;
                v[++*n] = NULL;
                if (!end)
                        return v;
                p = end + 1;
        }
fail:
        while (v && *n > 0)
                free(v[--*n]);
        free(v);
        return NULL;
}

static void free_list(char **v)
{
        size_t i;

        for (i = 0; v && v[i]; i++)
                free(v[i]);
        free(v);
}

#define ORIGIN(o) ((o) ? (o) : "config")

/* Compiles one rule; 0 or -1 with the reason in errstr. */
static int rule_compile(rule_t *r, const kb_wh_rule_conf_t *rc,
                        kb_wh_partner_fn *partner, void *opaque, char *errstr,
                        size_t errstr_size)
{
        char **items = NULL;
        size_t n, i, k;
        int bad;

        r->name = strdup(rc->name);
        if (!r->name)
                goto nomem;
        if (!rc->workflow_id || !kb_is_uuid(rc->workflow_id)) {
                kb_snprintf(errstr, errstr_size, "%s: rule.%s.workflow_id: %s",
                            ORIGIN(rc->origin_workflow_id), rc->name,
                            rc->workflow_id ? "not a UUID" : "required");
                return -1;
        }
        kb_strlcpy(r->workflow_id, rc->workflow_id, sizeof(r->workflow_id));
        lower(r->workflow_id);

        if (!rc->statuses || !*rc->statuses) {
                kb_snprintf(errstr, errstr_size,
                            "%s: rule.%s.statuses: "
                            "required",
                            ORIGIN(rc->origin_statuses), rc->name);
                return -1;
        }
        items = split_list(rc->statuses, &n, &bad);
        if (!items) {
                if (!bad)
                        goto nomem;
                kb_snprintf(errstr, errstr_size,
                            "%s: rule.%s.statuses: "
                            "empty item",
                            ORIGIN(rc->origin_statuses), rc->name);
                return -1;
        }
        for (i = 0; i < n; i++) {
                kb_wh_status_t st = kb_wh_status_canon(items[i]);
                if (st == KB_WH_ST_OTHER) {
                        kb_snprintf(errstr, errstr_size,
                                    "%s: rule.%s.statuses: '%.64s' is not a "
                                    "finished status (Approved, Declined, "
                                    "In Review; KYB: APPROVED, DECLINED, "
                                    "IN_REVIEW)",
                                    ORIGIN(rc->origin_statuses), rc->name,
                                    items[i]);
                        free_list(items);
                        return -1;
                }
                r->statuses |= 1U << st;
        }
        free_list(items);

        if (!rc->partners || !*rc->partners) {
                kb_snprintf(errstr, errstr_size,
                            "%s: rule.%s.partners: "
                            "required",
                            ORIGIN(rc->origin_partners), rc->name);
                return -1;
        }
        items = split_list(rc->partners, &n, &bad);
        if (!items) {
                if (!bad)
                        goto nomem;
                kb_snprintf(errstr, errstr_size,
                            "%s: rule.%s.partners: "
                            "empty item",
                            ORIGIN(rc->origin_partners), rc->name);
                return -1;
        }
        r->partners = calloc(n, sizeof(char *));
        r->app_ids = calloc(n, sizeof(char *));
        if (!r->partners || !r->app_ids) {
                free_list(items);
                goto nomem;
        }
        for (i = 0; i < n; i++) {
                const char *app = partner ? partner(opaque, items[i]) : NULL;
                if (!app || !kb_is_uuid(app)) {
                        kb_snprintf(errstr, errstr_size,
                                    "%s: rule.%s.partners: unknown partner "
                                    "'%.64s' (no partner.%.64s.application_id)",
                                    ORIGIN(rc->origin_partners), rc->name,
                                    items[i], items[i]);
                        free_list(items);
                        return -1;
                }
                for (k = 0; k < r->npartners; k++)
                        if (!strcasecmp(r->app_ids[k], app))
                                break;
                if (k < r->npartners)
                        continue; /* listed twice: one share */
                r->partners[r->npartners] = strdup(items[i]);
                r->app_ids[r->npartners] = strdup(app);
                if (!r->partners[r->npartners] || !r->app_ids[r->npartners]) {
                        free(r->partners[r->npartners]);
                        free(r->app_ids[r->npartners]);
                        free_list(items);
                        goto nomem;
                }
                lower(r->app_ids[r->npartners]);
                r->npartners++;
        }
        free_list(items);

        if (rc->ttl_s != 0 && (rc->ttl_s < 60 || rc->ttl_s > 86400)) {
                kb_snprintf(errstr, errstr_size,
                            "%s: rule.%s.ttl_s: must be 60..86400",
                            ORIGIN(rc->origin_ttl_s), rc->name);
                return -1;
        }
        r->ttl_s = rc->ttl_s;

        if (rc->vendor_data && *rc->vendor_data) {
                tmpl_ctx_t c = { NULL, NULL, NULL, "" };
                char out[4096];
                if (kb_conf_expand(rc->vendor_data, tmpl_lookup, &c, out,
                                   sizeof(out)) == -1) {
                        kb_snprintf(errstr, errstr_size,
                                    "%s: rule.%s.vendor_data: unknown "
                                    "variable or unbalanced brace (known: "
                                    "{session_id} {status} {vendor_data} "
                                    "{workflow_id} {session_kind} {rule} "
                                    "{partner} {timestamp})",
                                    ORIGIN(rc->origin_vendor_data), rc->name);
                        return -1;
                }
                r->vendor_data = strdup(rc->vendor_data);
                if (!r->vendor_data)
                        goto nomem;
        }
        return 0;
nomem:
        kb_snprintf(errstr, errstr_size, "out of memory");
        return -1;
}

kb_wh_rules_t *kb_wh_rules_new(const kb_wh_rule_conf_t *rules, size_t n,
                               const char *topic, int allow_simple,
                               kb_wh_partner_fn *partner, void *opaque,
                               char *errstr, size_t errstr_size)
{
        kb_wh_rules_t *rs;
        size_t i;

        if (!topic || !*topic || (n && !rules)) {
                kb_snprintf(errstr, errstr_size, "rules: no topic");
                return NULL;
        }
        if (sodium_init() < 0) {
                kb_snprintf(errstr, errstr_size, "libsodium init failed");
                return NULL;
        }
        rs = calloc(1, sizeof(*rs));
        if (!rs || !(rs->topic = strdup(topic)) ||
            (n && !(rs->rules = calloc(n, sizeof(*rs->rules))))) {
                kb_snprintf(errstr, errstr_size, "out of memory");
                goto fail;
        }
        rs->allow_simple = allow_simple;
        for (i = 0; i < n; i++) {
                if (!rules[i].name || !*rules[i].name) {
                        kb_snprintf(errstr, errstr_size, "rule without a name");
                        goto fail;
                }
                rs->n++;
                if (rule_compile(&rs->rules[i], &rules[i], partner, opaque,
                                 errstr, errstr_size) == -1)
                        goto fail;
        }
        atomic_init(&rs->matched, 0);
        atomic_init(&rs->unmatched, 0);
        atomic_init(&rs->unverified, 0);
        atomic_init(&rs->shares, 0);
        return rs;
fail:
        kb_wh_rules_destroy(rs);
        return NULL;
}

void kb_wh_share_id(const char *session_id, const char *for_application_id,
                    const char *rule, kb_wh_status_t status,
                    char out[KB_WH_SHARE_ID_BYTES])
{
        crypto_generichash_state st;
        unsigned char h[16];
        char app[64];
        const char *stname = kb_wh_status_name(status);

        kb_strlcpy(app, for_application_id, sizeof(app));
        lower(app);
        if (!stname)
                stname = "";
        crypto_generichash_init(&st, NULL, 0, sizeof(h));
        crypto_generichash_update(&st, (const unsigned char *)SHARE_ID_DOMAIN,
                                  sizeof(SHARE_ID_DOMAIN)); /* with NUL */
        crypto_generichash_update(&st, (const unsigned char *)session_id,
                                  strlen(session_id) + 1);
        crypto_generichash_update(&st, (const unsigned char *)app,
                                  strlen(app) + 1);
        crypto_generichash_update(&st, (const unsigned char *)rule,
                                  strlen(rule) + 1);
        crypto_generichash_update(&st, (const unsigned char *)stname,
                                  strlen(stname));
        crypto_generichash_final(&st, h, sizeof(h));
        memcpy(out, "wh-", 3);
        kb_hex(h, sizeof(h), out + 3);
}

/* One share request for @p r's partner @p i. */
static int add_share(kb_wh_rules_t *rs, const rule_t *r, size_t i,
                     const kb_wh_delivery_t *dlv, kb_wh_status_t st,
                     kb_wh_records_t *out)
{
        char share_id[KB_WH_SHARE_ID_BYTES], vd[ID_MAX + 1];
        json_object *o = json_object_new_object();
        const char *js;
        size_t len;
        int rc = KB_ERR_NOMEM;

        if (!o)
                return KB_ERR_NOMEM;
        kb_wh_share_id(dlv->session_id, r->app_ids[i], r->name, st, share_id);
        if (kb_json_add_str(o, "share_id", share_id) ||
            kb_json_add_str(o, "session_id", dlv->session_id) ||
            kb_json_add_str(o, "for_application_id", r->app_ids[i]) ||
            (r->ttl_s && kb_json_add_i64(o, "ttl_in_seconds", r->ttl_s)))
                goto out;
        if (r->vendor_data) {
                tmpl_ctx_t c;
                c.dlv = dlv;
                c.rule = r->name;
                c.partner = r->partners[i];
                snprintf(c.ts, sizeof(c.ts), "%" PRId64, dlv->timestamp);
                /* an id (docs/envelope.md): else the share goes without */
                if (kb_conf_expand(r->vendor_data, tmpl_lookup, &c, vd,
                                   sizeof(vd)) == -1 ||
                    !*vd || !kb_utf8_is_text(vd, strlen(vd)))
                        kb_log_warn(FAC,
                                    "rule %s: vendor_data for session %s is "
                                    "empty, too long or not text: shared "
                                    "without it",
                                    r->name, dlv->session_id);
                else if (kb_json_add_str(o, "vendor_data", vd))
                        goto out;
        }
        js = kb_json_str(o, &len);
        if (!js)
                goto out;
        rc = kb_wh_records_add(out, rs->topic, share_id, strlen(share_id), js,
                               len, NULL);
out:
        json_object_put(o);
        return rc;
}

int kb_wh_rules_apply(kb_wh_rules_t *rs, const kb_wh_delivery_t *dlv,
                      kb_wh_records_t *out)
{
        kb_wh_status_t st = kb_wh_status_canon(dlv->status);
        size_t i, k;
        int n = 0, rc;

        if (dlv->auth != KB_WH_AUTH_V2 && !rs->allow_simple) {
                atomic_fetch_add(&rs->unverified, 1);
                kb_log_notice(FAC,
                              "delivery for session %s authenticated by "
                              "X-Signature-Simple only: no rule applied",
                              dlv->session_id);
                return 0;
        }
        for (i = 0; st != KB_WH_ST_OTHER && dlv->workflow_id && i < rs->n;
             i++) {
                const rule_t *r = &rs->rules[i];
                if (!(r->statuses & (1U << st)) ||
                    strcasecmp(r->workflow_id, dlv->workflow_id))
                        continue;
                for (k = 0; k < r->npartners; k++) {
                        rc = add_share(rs, r, k, dlv, st, out);
                        if (rc != KB_OK)
                                return rc;
                        n++;
                }
        }
        if (n == 0) {
                atomic_fetch_add(&rs->unmatched, 1);
                kb_log_info(FAC, "delivery for session %s matched no rule",
                            dlv->session_id);
                return 0;
        }
        atomic_fetch_add(&rs->matched, 1);
        atomic_fetch_add(&rs->shares, (uint_fast64_t)n);
        /* every request made: tell the observer, rule by rule */
        for (i = 0; rs->observe && i < rs->n; i++) {
                const rule_t *r = &rs->rules[i];
                if ((r->statuses & (1U << st)) &&
                    !strcasecmp(r->workflow_id, dlv->workflow_id) &&
                    r->npartners > 0)
                        rs->observe(rs->observe_opaque, r->name,
                                    (unsigned)r->npartners);
        }
        return n;
}

void kb_wh_rules_set_observer(kb_wh_rules_t *rs, kb_wh_rules_share_fn *fn,
                              void *opaque)
{
        if (!rs)
                return;
        rs->observe = fn;
        rs->observe_opaque = fn ? opaque : NULL;
}

size_t kb_wh_rules_count(const kb_wh_rules_t *rs)
{
        return rs ? rs->n : 0;
}

const char *kb_wh_rules_name(const kb_wh_rules_t *rs, size_t idx)
{
        return rs && idx < rs->n ? rs->rules[idx].name : NULL;
}

int kb_wh_rules_action(void *opaque, const kb_wh_delivery_t *dlv,
                       kb_wh_records_t *out, char *errstr, size_t errstr_size)
{
        int rc = kb_wh_rules_apply(opaque, dlv, out);

        if (rc < 0) {
                kb_snprintf(errstr, errstr_size, "%s", kb_err2str(rc));
                return rc;
        }
        return KB_OK;
}

void kb_wh_rules_stats(kb_wh_rules_t *rs, kb_wh_rules_stats_t *st)
{
        st->matched = atomic_load(&rs->matched);
        st->unmatched = atomic_load(&rs->unmatched);
        st->unverified = atomic_load(&rs->unverified);
        st->shares = atomic_load(&rs->shares);
}
