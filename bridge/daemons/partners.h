/* partners.h -- the partner registry: who we share with / import from */
#ifndef KB_PARTNERS_H
#define KB_PARTNERS_H

#include "conf.h"
#include "kb_envelope.h"
#include "kb_keys.h"

/* One "partner.<name>.*" section of the configuration. */
typedef struct kb_partner_s {
        char name[65];
        char application_id[37];
        kb_bundle_t *bundle; /* their public keys */
        const kb_key_t *box; /* newest box key (issuer seals to it) */
        /* importer policy */
        char workflow_user[129];
        char workflow_business[129];
        int trust_review;
        char vendor_data[256]; /* "hint" or a template */
        int full_record;
} kb_partner_t;

typedef struct kb_partners_s {
        kb_partner_t *v;
        size_t n;
        /* application_id, lower-cased -> partner: finding one costs the
         * same with 10,000 partners as with one (NULL: v is scanned) */
        struct kb_hmap_s *by_app;
} kb_partners_t;

/**
 * Loads every partner section of @p conf and its key bundle. For
 * KB_SCOPE_ISSUER each bundle must hold a box key; for KB_SCOPE_IMPORTER a
 * signing key and at least one workflow id. Duplicate application ids are
 * rejected. Errors read "origin: key: reason". Either way
 * kb_partners_free() may be called.
 */
int kb_partners_load(kb_partners_t *ps, const kb_conf_t *conf, unsigned scope,
                     char *errstr, size_t errstr_size);
const kb_partner_t *kb_partners_find(const kb_partners_t *ps,
                                     const char *application_id);
void kb_partners_free(kb_partners_t *ps);

/** The workflow for @p kind ("" when none is configured). */
const char *kb_partner_workflow(const kb_partner_t *p, kb_session_kind_t kind);

#endif /* KB_PARTNERS_H */
