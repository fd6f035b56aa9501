/* issuer.h -- the issuer daemon: share requests in, sealed envelopes out */
#ifndef KB_ISSUER_H
#define KB_ISSUER_H

#include "conf.h"
#include "jview.h"
#include "kb_envelope.h"
#include "processor.h"

typedef struct kb_issuer_s kb_issuer_t;

/**
 * Validates @p conf for the issuer role and builds everything that does not
 * need Kafka: signing key, partner registry, vendor client. @p conf must
 * outlive the issuer. Returns NULL with "file:line: reason" (or another
 * precise reason) in @p errstr; *is_config_error is 1 for a configuration
 * problem (exit 2), 0 for any other failure (out of memory: exit 1).
 */
kb_issuer_t *kb_issuer_new(const kb_conf_t *conf, int *is_config_error,
                           char *errstr, size_t errstr_size);

/**
 * kb_issuer_new() as its processor base, for a caller that only runs it:
 * kb_proc_run() connects to Kafka, loads the share_id state and runs until
 * a C11 atomic stop flag is set (from any thread or a signal handler);
 * kb_proc_free() frees it.
 */
kb_proc_t *kb_issuer_proc_new(const kb_conf_t *conf, int *is_config_error,
                              char *errstr, size_t errstr_size);

void kb_issuer_destroy(kb_issuer_t *is);

/*
 * One share request, as parsed from the request topic (and built by
 * "kyc-bridge share"): schemas/share-request.schema.json.
 */
typedef struct kb_share_req_s {
        char share_id[129];
        char session_id[129];
        char for_application_id[37];
        char vendor_data[129]; /* "" when absent */
        int ttl_in_seconds;    /* 0 when absent */
} kb_share_req_t;

/**
 * One request, synchronously ("kyc-bridge share"): mints through the vendor
 * API and seals. The request's share_id and vendor_data must follow the
 * envelope's id rules (else KB_ERR_INVALID_ARG); for_application_id must be
 * a configured partner, compared case-insensitively (else
 * KB_ERR_NOT_FOUND), and the envelope carries the id as configured. With @p
 * publish, produces the envelope and the share_id state record in one Kafka
 * transaction (*env_out may be NULL then); otherwise hands the envelope to the
 * caller (*env_out malloc()ed). Returns KB_OK or an error with a reason in @p
 * errstr.
 */
int kb_issuer_share_one(kb_issuer_t *is, const struct kb_share_req_s *req,
                        int publish, char **env_out, size_t *env_len,
                        char *errstr, size_t errstr_size);

/** Parses and validates a request (share_id and vendor_data by the
 * envelope's id rules); reason (no input echoed) in errstr. */
int kb_share_req_parse(const void *buf, size_t len, kb_share_req_t *req,
                       char *errstr, size_t errstr_size);

/**
 * The share_token and session_kind of the vendor's answer to a share
 * (@p jv: a 2xx answer's view, vendor.h; NULL: none). The token is read
 * where it lies, in the answer's text, which the vendor client wipes; one
 * holding an escape is decoded into *owned (sodium_malloc()ed: the caller
 * sodium_free()s it; NULL when not needed), and *tok points there. *kind
 * is KB_SESSION_USER unless the answer names another. Returns KB_OK,
 * KB_ERR_MALFORMED when there is no usable token (absent, no string,
 * empty, holding "\u0000": *tok NULL) or KB_ERR_NOMEM.
 */
int kb_share_answer_read(const kb_jview_t *jv, const char **tok, size_t *tl,
                         char **owned, kb_session_kind_t *kind);

#endif /* KB_ISSUER_H */
