/* wh_rules.h -- issuer sharing rules: which verified status change is
 * shared with which partners, as share requests */
#ifndef KB_WH_RULES_H
#define KB_WH_RULES_H

#include <stddef.h>
#include <stdint.h>

#include "kyc_bridge.h"
#include "wh_delivery.h"

/* "wh-" + 32 lowercase hex digits + NUL. */
#define KB_WH_SHARE_ID_BYTES 36U

/*
 * One rule as the config gives it (rule.<name>.*). The caller fills it
 * from its configuration; the origin_* strings ("path:line", "-X",
 * "default") only go into error messages. Borrowed during
 * kb_wh_rules_new().
 */
typedef struct kb_wh_rule_conf_s {
        const char *name;        /* <name>: [a-z0-9_-]{1,64} */
        const char *workflow_id; /* rule.<name>.workflow_id (UUID) */
        const char *statuses;    /* .statuses: comma list of finished
                                  * statuses, either casing family */
        const char *partners;    /* .partners: comma list of names */
        int64_t ttl_s;           /* .ttl_s: 60..86400, 0 = issuer default */
        const char *vendor_data; /* .vendor_data template ("" / NULL: none) */
        const char *origin_workflow_id, *origin_statuses, *origin_partners,
            *origin_ttl_s, *origin_vendor_data;
} kb_wh_rule_conf_t;

/* The partner registry: the application id of partner @p name, or NULL
 * when there is no such partner. Called during kb_wh_rules_new() only. */
typedef const char *(kb_wh_partner_fn)(void *opaque, const char *name);

typedef struct kb_wh_rules_s kb_wh_rules_t;

typedef struct kb_wh_rules_stats_s {
        uint64_t matched;    /* deliveries that matched at least one rule */
        uint64_t unmatched;  /* deliveries that matched none */
        uint64_t unverified; /* Simple-only deliveries not trusted */
        uint64_t shares;     /* share requests made */
} kb_wh_rules_stats_t;

/**
 * Checks and compiles @p n rules. Share requests go to @p topic
 * (issuer.request_topic). @p allow_simple: act on deliveries authenticated
 * by X-Signature-Simple alone (which does not cover the decision, hence
 * not the workflow id a rule matches on); else they match nothing and are
 * counted as unverified. Errors read "origin: rule.<name>.<field>: reason"
 * (unknown status, unknown partner, bad workflow id, ttl, template). NULL
 * then. Thread-safe afterwards (kb_wh_rules_apply() from any thread).
 */
kb_wh_rules_t *kb_wh_rules_new(const kb_wh_rule_conf_t *rules, size_t n,
                               const char *topic, int allow_simple,
                               kb_wh_partner_fn *partner, void *opaque,
                               char *errstr, size_t errstr_size);
void kb_wh_rules_destroy(kb_wh_rules_t *rs);

/**
 * Appends one share request (schemas/share-request.schema.json, keyed by
 * its share_id) per partner of every rule that matches @p dlv: its
 * status is one of the rule's (casing folded) and decision.workflow_id is
 * the rule's. Returns the number appended (0: no rule matched, counted and
 * logged with the session id only), or KB_ERR_NOMEM.
 */
int kb_wh_rules_apply(kb_wh_rules_t *rs, const kb_wh_delivery_t *dlv,
                      kb_wh_records_t *out);

/** kb_wh_action_fn over kb_wh_rules_apply() (@p opaque: the rules). */
int kb_wh_rules_action(void *opaque, const kb_wh_delivery_t *dlv,
                       kb_wh_records_t *out, char *errstr, size_t errstr_size);

void kb_wh_rules_stats(kb_wh_rules_t *rs, kb_wh_rules_stats_t *st);

/* Rule @p rule made @p n share requests (one per partner) for one
 * delivery. Called from kb_wh_rules_apply()'s thread, after all of the
 * delivery's requests were made; must not block. */
typedef void(kb_wh_rules_share_fn)(void *opaque, const char *rule, unsigned n);

/** Sets the share observer (metrics), @p fn NULL: none. Before the
 * rules are applied from other threads (at start-up). */
void kb_wh_rules_set_observer(kb_wh_rules_t *rs, kb_wh_rules_share_fn *fn,
                              void *opaque);

/** The number of rules, and the name of rule @p idx (NULL past the end);
 * owned by @p rs. */
size_t kb_wh_rules_count(const kb_wh_rules_t *rs);
const char *kb_wh_rules_name(const kb_wh_rules_t *rs, size_t idx);

/**
 * The share_id of a rule's share: "wh-" + lowercase hex of the 16-byte
 * BLAKE2b of "kyc-bridge/webhook-share/v1" NUL session_id NUL
 * for_application_id (lowercased) NUL rule NUL folded status
 * ("APPROVED", "DECLINED", "IN_REVIEW"). Deterministic; an id by
 * docs/envelope.md's rules (35 ASCII bytes).
 */
void kb_wh_share_id(const char *session_id, const char *for_application_id,
                    const char *rule, kb_wh_status_t status,
                    char out[KB_WH_SHARE_ID_BYTES]);

#endif /* KB_WH_RULES_H */
