/* conf_options.c -- the option table: every configuration key, in one place */
#include "conf.h"

#define I   KB_SCOPE_ISSUER
#define M   KB_SCOPE_IMPORTER
#define IM  (KB_SCOPE_ISSUER | KB_SCOPE_IMPORTER)
#define REQ KB_OPT_REQUIRED

/* name, type, default, min, max, enums, scope, flags, validator, help */
const kb_conf_opt_t kb_conf_options[] = {
        /* logging */
        { "log.level", KB_CONF_ENUM, "info", 0, 0,
          "error|warn|notice|info|debug", KB_SCOPE_ALL, 0, NULL,
          "Least severe level that is logged." },
        { "log.format", KB_CONF_ENUM, "text", 0, 0, "text|json", KB_SCOPE_ALL,
          0, NULL, "Log line format: text, or one JSON object per line." },

        /* identity */
        { "application_id", KB_CONF_STR, NULL, 0, 0, NULL, IM, REQ,
          kb_conf_valid_uuid, "This side's vendor application id (UUID)." },

        /* vendor API */
        { "vendor.url", KB_CONF_STR, "http://127.0.0.1:8480", 0, 0, NULL, IM, 0,
          kb_conf_valid_url,
          "Base URL of the vendor API (the sandbox by default)." },
        { "vendor.api_key", KB_CONF_SECRET, NULL, 0, 0, NULL, IM, REQ, NULL,
          "Vendor API key of this application." },
        { "vendor.timeout_ms", KB_CONF_INT, "30000", 100, 600000, NULL, IM, 0,
          NULL, "Whole-request timeout for one vendor API call." },
        { "vendor.connect_timeout_ms", KB_CONF_INT, "5000", 100, 60000, NULL,
          IM, 0, NULL, "Connection timeout for vendor API calls." },
        { "vendor.max_in_flight", KB_CONF_INT, "64", 1, 4096, NULL, IM, 0, NULL,
          "Vendor API calls kept in flight at once." },
        { "vendor.rate_limit_per_minute", KB_CONF_INT, "300", 0, 10000000, NULL,
          IM, 0, NULL,
          "Client-side pacing: vendor writes (share, import) per minute; "
          "reads and decisions keep the vendor's ratios (2x, 1/3); 0 = no "
          "pacing. The vendor allows 300." },
        { "vendor.retry_backoff_ms", KB_CONF_INT, "500", 10, 600000, NULL, IM,
          0, NULL, "First retry delay after a retryable vendor failure." },
        { "vendor.retry_backoff_max_ms", KB_CONF_INT, "30000", 100, 3600000,
          NULL, IM, 0, NULL, "Largest retry delay (exponential backoff)." },
        { "vendor.ca_file", KB_CONF_STR, "", 0, 0, NULL, IM, 0, NULL,
          "CA bundle for TLS to the vendor (empty: system default)." },
        { "vendor.allow_insecure_http", KB_CONF_BOOL, "false", 0, 0, NULL, IM,
          0, NULL,
          "Allow a plain http:// vendor.url whose host is not loopback "
          "(127.0.0.0/8, ::1, localhost): API key and share tokens travel "
          "unencrypted. Only on a private network (the sandbox in docker "
          "compose), never for the real vendor." },

        /* Kafka transport (the kafka.* pass-through is not in the table) */
        { "kafka_allow_plaintext", KB_CONF_BOOL, "false", 0, 0, NULL,
          KB_SCOPE_ALL, 0, NULL,
          "Allow kafka.security.protocol plaintext or sasl_plaintext (the "
          "librdkafka default is plaintext) with a bootstrap server that is "
          "not loopback (127.0.0.0/8, ::1, localhost). Only on a private "
          "network (the broker in docker compose)." },

        /* keys */
        { "keys.sign_secret", KB_CONF_STR, NULL, 0, 0, NULL, I, REQ, NULL,
          "Issuer: Ed25519 secret key file that signs envelopes." },
        { "keys.box_secret", KB_CONF_LIST, NULL, 0, 0, NULL, M, REQ, NULL,
          "Importer: X25519 secret key files that open envelopes (several "
          "during rotation)." },
        { "keys.passphrase", KB_CONF_SECRET, NULL, 0, 0, NULL, IM, 0, NULL,
          "Passphrase of encrypted secret key files." },

        /* the exactly-once pipeline (both daemons) */
        { "pipeline.commit_interval_ms", KB_CONF_INT, "100", 1, 60000, NULL, IM,
          0, NULL,
          "Longest wait of a finished record before its transaction "
          "commits." },
        { "pipeline.commit_max_records", KB_CONF_INT, "2000", 1, 100000, NULL,
          IM, 0, NULL, "Records per transaction at most." },
        { "pipeline.commit_when_idle", KB_CONF_BOOL, "true", 0, 0, NULL, IM, 0,
          NULL,
          "Commit at once when nothing is running or coming in (a record "
          "waits for its own commit, not for the interval); false: only "
          "when pipeline.commit_interval_ms or commit_max_records is "
          "reached." },
        { "pipeline.max_buffered", KB_CONF_INT, "10000", 1, 1000000, NULL, IM,
          0, NULL,
          "Input records held in memory at once (in flight or waiting for "
          "an earlier record)." },
        { "pipeline.drain_timeout_ms", KB_CONF_INT, "30000", 0, 600000, NULL,
          IM, 0, NULL,
          "On stop or partition revoke: how long to let running calls "
          "finish before leaving them to be redone." },
        { "pipeline.at_least_once", KB_CONF_BOOL, "false", 0, 0, NULL, IM, 0,
          NULL,
          "Also commit input offsets outside the transaction. Only for "
          "librdkafka's mock cluster (the embedded demo), which does not "
          "store transactional offsets: gives at-least-once. Never on a real "
          "broker." },

        /* webhook intake (both daemons; docs/webhooks.md) */
        { "webhook.listen", KB_CONF_STR, "", 0, 0, NULL, IM, 0, NULL,
          "Webhook intake address, numeric HOST:PORT (e.g. "
          "127.0.0.1:8490); empty: no intake. Loopback only unless "
          "webhook.allow_non_loopback; TLS belongs to a reverse proxy." },
        { "webhook.allow_non_loopback", KB_CONF_BOOL, "false", 0, 0, NULL, IM,
          0, NULL,
          "Allow a non-loopback webhook.listen address (a TLS proxy in "
          "front)." },
        { "metrics.listen", KB_CONF_STR, "", 0, 0, NULL, IM, 0, NULL,
          "Address of GET /livez, /readyz and /metrics, numeric HOST:PORT; "
          "empty: none. The same address as webhook.listen: served by the "
          "webhook intake's server. Loopback only unless "
          "metrics.allow_non_loopback." },
        { "metrics.allow_non_loopback", KB_CONF_BOOL, "false", 0, 0, NULL, IM,
          0, NULL, "Allow a non-loopback metrics.listen address." },
        { "webhook.path", KB_CONF_STR, "/webhooks/vendor", 0, 0, NULL, IM, 0,
          NULL, "Path the vendor POSTs its deliveries to." },
        { "webhook.secret", KB_CONF_SECRET, NULL, 0, 0, NULL, IM, 0, NULL,
          "The vendor's secret_shared_key for this application (required "
          "with webhook.listen)." },
        { "webhook.secret_previous", KB_CONF_SECRET, NULL, 0, 0, NULL, IM, 0,
          NULL,
          "The secret before the last rotate_secret_key, accepted too "
          "while deliveries signed with it may still come." },
        { "webhook.allow_simple", KB_CONF_BOOL, "true", 0, 0, NULL, IM, 0, NULL,
          "Accept X-Signature-Simple when X-Signature-V2 is absent (it "
          "does not cover the decision: rules ignore such deliveries "
          "unless issuer.rules_allow_simple)." },
        { "webhook.body_max", KB_CONF_INT, "1048576", 1024, 1048576, NULL, IM,
          0, NULL, "Largest delivery body in bytes (413 above)." },
        { "webhook.kafka_timeout_ms", KB_CONF_INT, "5000", 1000, 60000, NULL,
          IM, 0, NULL,
          "Longest wait for Kafka to ack what a delivery caused; then 503 "
          "and the vendor retries." },
        { "webhook.retry_after_s", KB_CONF_INT, "5", 1, 3600, NULL, IM, 0, NULL,
          "Retry-After of a 503 answer." },
        { "webhook.replay_max", KB_CONF_INT, "65536", 1024, 10000000, NULL, IM,
          0, NULL,
          "Accepted deliveries remembered (by signature) to acknowledge a "
          "replay without acting twice." },
        { "webhook.threads", KB_CONF_INT, "1", 1, 16, NULL, IM, 0, NULL,
          "HTTP threads of the intake." },

        /* sharing rules (issuer): rule.<name>.* */
        { "rule.*.workflow_id", KB_CONF_STR, NULL, 0, 0, NULL, I, REQ,
          kb_conf_valid_uuid,
          "Workflow whose finished sessions the rule shares (matched on "
          "the delivery's decision.workflow_id)." },
        { "rule.*.statuses", KB_CONF_LIST, NULL, 0, 0, NULL, I, REQ, NULL,
          "Statuses that trigger the rule: Approved, Declined, In Review "
          "(KYB casing matches too)." },
        { "rule.*.partners", KB_CONF_LIST, NULL, 0, 0, NULL, I, REQ, NULL,
          "Partner names (partner.<name>) each matching session is shared "
          "with." },
        { "rule.*.ttl_s", KB_CONF_INT, "0", 0, 86400, NULL, I, 0, NULL,
          "Token lifetime of the rule's shares (0: issuer.default_ttl_s; "
          "else 60..86400)." },
        { "rule.*.vendor_data", KB_CONF_STR, "", 0, 0, NULL, I, 0, NULL,
          "vendor_data hint of the rule's shares: a template over "
          "{session_id} {status} {vendor_data} {workflow_id} "
          "{session_kind} {rule} {partner} {timestamp} (empty: none)." },

        /* issuer */
        { "issuer.request_topic", KB_CONF_STR, "kyc-bridge.share-requests", 0,
          0, NULL, I, 0, kb_conf_valid_topic,
          "Topic of share requests (JSON, "
          "schemas/share-request.schema.json)." },
        { "issuer.token_topic", KB_CONF_STR, "kyc-bridge.share-tokens", 0, 0,
          NULL, I, 0, kb_conf_valid_topic_template,
          "Topic for sealed envelopes; may contain {for_application_id}." },
        { "issuer.dlq_topic", KB_CONF_STR, "kyc-bridge.issuer-dlq", 0, 0, NULL,
          I, 0, kb_conf_valid_topic,
          "Dead-letter topic for requests that cannot be shared." },
        { "issuer.state_topic", KB_CONF_STR, "kyc-bridge.issuer-state", 0, 0,
          NULL, I, 0, kb_conf_valid_topic,
          "Compacted topic remembering handled share_ids; read in full at "
          "start-up, and what is new on every partition assignment." },
        { "issuer.group_id", KB_CONF_STR, "kyc-bridge-issuer", 0, 0, NULL, I, 0,
          NULL, "Consumer group of the issuer instances." },
        { "issuer.transactional_id", KB_CONF_STR, "", 0, 0, NULL, I, 0, NULL,
          "Transactional id, unique and stable per instance (empty: "
          "<group_id>-<hostname>)." },
        { "issuer.default_ttl_s", KB_CONF_INT, "3600", 60, 86400, NULL, I, 0,
          NULL, "Token lifetime when a request gives none." },
        { "issuer.rules_allow_simple", KB_CONF_BOOL, "false", 0, 0, NULL, I, 0,
          NULL,
          "Let sharing rules act on deliveries authenticated by "
          "X-Signature-Simple only (it does not cover the decision)." },
        { "issuer.dedup_window_s", KB_CONF_INT, "86400", 0, 172800, NULL, I, 0,
          NULL,
          "How long a share_id is remembered: a repeat within it is not "
          "published again." },

        /* importer */
        { "importer.token_topics", KB_CONF_LIST, "kyc-bridge.share-tokens", 0,
          0, NULL, M, 0, kb_conf_valid_topic,
          "Topics of sealed envelopes to consume." },
        { "importer.output_topic", KB_CONF_STR, "kyc-bridge.imported-sessions",
          0, 0, NULL, M, 0, kb_conf_valid_topic,
          "Topic of imported session records "
          "(schemas/imported-session.schema.json)." },
        { "importer.dlq_topic", KB_CONF_STR, "kyc-bridge.importer-dlq", 0, 0,
          NULL, M, 0, kb_conf_valid_topic,
          "Dead-letter topic for envelopes that cannot be imported." },
        { "importer.state_topic", KB_CONF_STR, "kyc-bridge.importer-state", 0,
          0, NULL, M, 0, kb_conf_valid_topic,
          "Compacted topic remembering imported share_ids (a replayed "
          "envelope is not imported twice); read in full at start-up, and "
          "what is new on every partition assignment." },
        { "importer.status_topic", KB_CONF_STR, "kyc-bridge.session-status", 0,
          0, NULL, M, 0, kb_conf_valid_topic,
          "Topic of status updates of imported sessions, from the partner "
          "application's webhooks (schemas/session-status.schema.json)." },
        { "importer.status_window_s", KB_CONF_INT, "2592000", 3600, 31622400,
          NULL, M, 0, NULL,
          "How long after its last record an imported session is still "
          "known to the status updates (about 350 bytes of memory each); "
          "later deliveries for it are ignored." },
        { "importer.group_id", KB_CONF_STR, "kyc-bridge-importer", 0, 0, NULL,
          M, 0, NULL, "Consumer group of the importer instances." },
        { "importer.transactional_id", KB_CONF_STR, "", 0, 0, NULL, M, 0, NULL,
          "Transactional id, unique and stable per instance (empty: "
          "<group_id>-<hostname>)." },

        /* partners: the other side of each relationship */
        { "partner.*.application_id", KB_CONF_STR, NULL, 0, 0, NULL, IM, REQ,
          kb_conf_valid_uuid, "The partner's vendor application id." },
        { "partner.*.keys", KB_CONF_STR, NULL, 0, 0, NULL, IM, REQ, NULL,
          "The partner's public key bundle (kyc-bridge keygen *.pub.json)." },

        { "partner.*.workflow_id.user", KB_CONF_STR, "", 0, 0, NULL, M, 0, NULL,
          "Importer: workflow that imported KYC (user) sessions land "
          "in." },
        { "partner.*.workflow_id.business", KB_CONF_STR, "", 0, 0, NULL, M, 0,
          NULL,
          "Importer: workflow that imported KYB (business) sessions "
          "land in." },
        { "partner.*.trust_review", KB_CONF_BOOL, "false", 0, 0, NULL, M, 0,
          NULL,
          "Importer: keep the partner's decision (true) or land in In "
          "Review (false)." },
        { "partner.*.vendor_data", KB_CONF_STR, "hint", 0, 0, NULL, M, 0,
          kb_conf_valid_vendor_data,
          "Importer: our vendor_data: 'hint' (the issuer's hint, else the "
          "share_id) or a template over {vendor_data_hint} {share_id} "
          "{source_session_id} {issuer_application_id} {session_kind}." },
        { "partner.*.record", KB_CONF_ENUM, "summary", 0, 0, "summary|full", M,
          0, NULL,
          "Importer: downstream record carries the full session or a "
          "summary without documents, images and AML details." },

        { NULL, 0, NULL, 0, 0, NULL, 0, 0, NULL, NULL }
};
