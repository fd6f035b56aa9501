/* issuer.h -- the issuer daemon: share requests in, sealed envelopes out */
#ifndef KB_ISSUER_H
#define KB_ISSUER_H

#include <signal.h>

#include "conf.h"

typedef struct kb_issuer_s kb_issuer_t;

/**
 * Validates @p conf for the issuer role and builds everything that does not
 * need Kafka: signing key, partner registry, vendor client. @p conf must
 * outlive the issuer. Returns NULL with "file:line: reason" (or another
 * precise reason) in @p errstr; *is_config_error tells a configuration
 * problem (exit 2) from a runtime one (exit 1).
 */
kb_issuer_t *kb_issuer_new(const kb_conf_t *conf, int *is_config_error,
                           char *errstr, size_t errstr_size);

/**
 * Connects to Kafka, loads the share_id state and runs until *stop.
 * Returns KB_OK after an orderly stop, or an error (exit non-zero; nothing
 * uncommitted is lost, it is consumed again on restart).
 */
int kb_issuer_run(kb_issuer_t *is, volatile sig_atomic_t *stop, char *errstr,
                  size_t errstr_size);

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
 * API and seals. With @p publish, produces the envelope and the share_id
 * state record in one Kafka transaction (*env_out may be NULL then);
 * otherwise hands the envelope to the caller (*env_out malloc()ed).
 * Returns KB_OK or an error with a reason in @p errstr.
 */
int kb_issuer_share_one(kb_issuer_t *is, const struct kb_share_req_s *req,
                        int publish, char **env_out, size_t *env_len,
                        char *errstr, size_t errstr_size);

/** Parses and validates a request; reason (no input echoed) in errstr. */
int kb_share_req_parse(const void *buf, size_t len, kb_share_req_t *req,
                       char *errstr, size_t errstr_size);

#endif /* KB_ISSUER_H */
