/* conf_options.c -- the option table: every configuration key, in one place */
#include "conf.h"

#define I KB_SCOPE_ISSUER
#define M KB_SCOPE_IMPORTER
#define IM (KB_SCOPE_ISSUER | KB_SCOPE_IMPORTER)
#define REQ KB_OPT_REQUIRED

/* name, type, default, min, max, enums, scope, flags, validator, help */
const kb_conf_opt_t kb_conf_options[] = {
        /* logging */
        { "log.level", KB_CONF_ENUM, "info", 0, 0,
          "error|warn|notice|info|debug", KB_SCOPE_ALL, 0, NULL,
          "Least severe level that is logged." },
        { "log.format", KB_CONF_ENUM, "text", 0, 0, "text|json",
          KB_SCOPE_ALL, 0, NULL,
          "Log line format: text, or one JSON object per line." },

        /* identity */
        { "application_id", KB_CONF_STR, NULL, 0, 0, NULL, IM, REQ,
          kb_conf_valid_uuid,
          "This side's vendor application id (UUID)." },

        /* vendor API */
        { "vendor.url", KB_CONF_STR, "http://127.0.0.1:8480", 0, 0, NULL, IM,
          0, kb_conf_valid_url,
          "Base URL of the vendor API (the sandbox by default)." },
        { "vendor.api_key", KB_CONF_SECRET, NULL, 0, 0, NULL, IM, REQ, NULL,
          "Vendor API key of this application." },
        { "vendor.timeout_ms", KB_CONF_INT, "30000", 100, 600000, NULL, IM, 0,
          NULL, "Whole-request timeout for one vendor API call." },
        { "vendor.connect_timeout_ms", KB_CONF_INT, "5000", 100, 60000, NULL,
          IM, 0, NULL, "Connection timeout for vendor API calls." },
        { "vendor.max_in_flight", KB_CONF_INT, "64", 1, 4096, NULL, IM, 0,
          NULL, "Vendor API calls kept in flight at once." },
        { "vendor.rate_limit_per_minute", KB_CONF_INT, "300", 0, 10000000,
          NULL, IM, 0, NULL,
          "Client-side pacing of vendor writes per minute (0 = off); the "
          "vendor allows 300." },
        { "vendor.retry_backoff_ms", KB_CONF_INT, "500", 10, 600000, NULL, IM,
          0, NULL, "First retry delay after a retryable vendor failure." },
        { "vendor.retry_backoff_max_ms", KB_CONF_INT, "30000", 100, 3600000,
          NULL, IM, 0, NULL, "Largest retry delay (exponential backoff)." },
        { "vendor.ca_file", KB_CONF_STR, "", 0, 0, NULL, IM, 0, NULL,
          "CA bundle for TLS to the vendor (empty: system default)." },

        /* keys */
        { "keys.sign_secret", KB_CONF_STR, NULL, 0, 0, NULL, I, REQ, NULL,
          "Issuer: Ed25519 secret key file that signs envelopes." },
        { "keys.box_secret", KB_CONF_LIST, NULL, 0, 0, NULL, M, REQ, NULL,
          "Importer: X25519 secret key files that open envelopes (several "
          "during rotation)." },
        { "keys.passphrase", KB_CONF_SECRET, NULL, 0, 0, NULL, IM, 0, NULL,
          "Passphrase of encrypted secret key files." },

        /* partners: the other side of each relationship */
        { "partner.*.application_id", KB_CONF_STR, NULL, 0, 0, NULL, IM, REQ,
          kb_conf_valid_uuid, "The partner's vendor application id." },
        { "partner.*.keys", KB_CONF_STR, NULL, 0, 0, NULL, IM, REQ, NULL,
          "The partner's public key bundle (kyc-bridge keygen *.pub.json)." },

        { NULL, 0, NULL, 0, 0, NULL, 0, 0, NULL, NULL }
};
