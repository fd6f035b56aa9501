/* conf.h -- configuration: properties files, one option table, -X overrides */
#ifndef KB_CONF_H
#define KB_CONF_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "kyc_bridge.h"

typedef enum {
        KB_CONF_STR,    /* free text (validator may narrow it) */
        KB_CONF_INT,    /* base-10 integer within [min, max] */
        KB_CONF_BOOL,   /* true|false */
        KB_CONF_ENUM,   /* one of the '|'-separated words in .enums */
        KB_CONF_SECRET, /* "env:NAME" or "file:PATH"; never a literal */
        KB_CONF_LIST,   /* comma-separated non-empty items */
} kb_conf_type_t;

/* Which daemons an option concerns (for docs and required-checks). */
#define KB_SCOPE_ALL      0x0U
#define KB_SCOPE_ISSUER   0x1U
#define KB_SCOPE_IMPORTER 0x2U

#define KB_OPT_REQUIRED 0x1U /* required in each of its scopes */

typedef int(kb_conf_validator_fn)(const char *value, char *errstr,
                                  size_t errstr_size);

/*
 * One option. A name may hold one '*' segment ("partner.*.keys"): a section
 * whose name the user picks ([a-z0-9_-]{1,64}).
 */
typedef struct kb_conf_opt_s {
        const char *name;
        kb_conf_type_t type;
        const char *def; /* default as text; NULL: none */
        int64_t min, max;
        const char *enums;
        unsigned scope;
        unsigned flags;
        kb_conf_validator_fn *validate;
        const char *help;
} kb_conf_opt_t;

/* The option table (conf_options.c), terminated by a NULL name. */
extern const kb_conf_opt_t kb_conf_options[];

typedef struct kb_conf_s kb_conf_t;

/** New empty config (every option at its default). NULL on ENOMEM. */
kb_conf_t *kb_conf_new(void);
void kb_conf_destroy(kb_conf_t *conf);

/**
 * Loads a properties file: "key = value" lines, '#' or '!' comments, blank
 * lines; values are trimmed; no continuation lines. A key given twice in
 * one file is an error. Errors go to @p errstr as "path:line: reason".
 */
int kb_conf_load_file(kb_conf_t *conf, const char *path, char *errstr,
                      size_t errstr_size) KB_WUR;

/**
 * Sets @p key to @p value after validating it; @p origin ("path:line",
 * "-X", ...) is remembered for later messages. Later sets override earlier
 * ones. "kafka."-prefixed keys are checked against librdkafka here.
 * Errors: "<origin>: <key>: reason".
 */
int kb_conf_set(kb_conf_t *conf, const char *key, const char *value,
                const char *origin, char *errstr, size_t errstr_size) KB_WUR;

/** Applies "key=value" (a -X argument). */
int kb_conf_set_kv(kb_conf_t *conf, const char *kv, char *errstr,
                   size_t errstr_size) KB_WUR;

/** Effective value (set or default), NULL when neither. */
const char *kb_conf_get(const kb_conf_t *conf, const char *key);
/** Effective integer (options of type INT/BOOL only; 0 when unset). */
int64_t kb_conf_get_int(const kb_conf_t *conf, const char *key);
int kb_conf_get_bool(const kb_conf_t *conf, const char *key);
/** "path:line" where @p key was set, or "default". */
const char *kb_conf_origin(const kb_conf_t *conf, const char *key);
/** Non-zero when @p key was set explicitly (file or -X). */
int kb_conf_is_set(const kb_conf_t *conf, const char *key);

/** Splits a LIST value; returns a NULL-terminated malloc()ed array of
 * malloc()ed strings (free with kb_conf_list_free), or NULL. */
char **kb_conf_get_list(const kb_conf_t *conf, const char *key, size_t *n);
void kb_conf_list_free(char **list);

/**
 * Resolves a SECRET option (env:NAME or file:PATH; a file's trailing newline
 * is dropped) into sodium_malloc()ed memory, NUL-terminated; free with
 * kb_conf_secret_free(). Returns KB_ERR_NOT_FOUND when the option is unset,
 * KB_ERR_CONFIG (with "origin: key: reason") when it cannot be read.
 */
int kb_conf_get_secret(const kb_conf_t *conf, const char *key, char **out,
                       size_t *len, char *errstr, size_t errstr_size) KB_WUR;
void kb_conf_secret_free(char *secret, size_t len);

/**
 * Section names used in the config for a sectioned prefix ("partner"), in
 * first-appearance order. Returns a NULL-terminated array (free with
 * kb_conf_list_free).
 */
char **kb_conf_sections(const kb_conf_t *conf, const char *prefix, size_t *n);

/** Calls @p cb for every explicitly set "kafka.*" key (prefix stripped),
 * secrets already resolved. Stops at the first non-zero return. */
int kb_conf_foreach_kafka(const kb_conf_t *conf,
                          int (*cb)(void *opaque, const char *key,
                                    const char *value, const char *origin),
                          void *opaque, char *errstr, size_t errstr_size);

/**
 * Checks that every option REQUIRED in @p scope is set (for sectioned
 * options: in every section that exists) and every secret of @p scope
 * resolves (@p scope 0: no required options, every secret that is set).
 * Also refuses a plaintext Kafka listener that is not loopback (the
 * effective bootstrap.servers and security.protocol of the consumers and
 * of the producers, see kb_conf_kafka_plaintext()) unless
 * kafka_allow_plaintext. Errors: "<origin or path>: key: reason".
 */
int kb_conf_check(const kb_conf_t *conf, unsigned scope, char *errstr,
                  size_t errstr_size) KB_WUR;

/** The table entry for @p key, or NULL (kafka.* and unknown keys). */
const kb_conf_opt_t *kb_conf_find_opt(const char *key);

/**
 * Writes the effective configuration as a properties file: every option in
 * @p scope (0 = all) with its value and origin; secrets as their reference
 * only; kafka.* secrets redacted. Never writes secret values.
 */
void kb_conf_dump(const kb_conf_t *conf, unsigned scope, FILE *fp);

/** Writes the option reference (name, type, default, help): text or
 * Markdown table. */
void kb_conf_describe(FILE *fp, int markdown);

/** The config file path given at load time ("" if none). */
const char *kb_conf_path(const kb_conf_t *conf);

/*
 * Transport security (docs/operations.md, "Transport security").
 *
 * kb_conf_host_is_loopback(): non-zero when @p host names this machine's
 * loopback: "localhost" (any case), an IPv4 address in 127.0.0.0/8, ::1 or
 * ::ffff:127.x.y.z (IPv6 with or without brackets). Only literal addresses
 * count: a DNS name that resolves to loopback does not.
 */
int kb_conf_host_is_loopback(const char *host);

/**
 * Checks a Kafka broker list (bootstrap.servers syntax: entries
 * "[proto://]host[:port]" separated by commas or spaces) for a broker that
 * would be reached without encryption from somewhere else: a non-loopback
 * host while @p protocol (security.protocol; NULL or "" = librdkafka's
 * default, plaintext) or the entry's own "proto://" is plaintext or
 * sasl_plaintext (any case). Returns 0 when there is none, else -1 with
 * the first such entry, as written, in @p bad.
 */
int kb_conf_kafka_plaintext(const char *servers, const char *protocol,
                            char *bad, size_t bad_size);

/* How to resolve kb_conf_kafka_plaintext()'s refusal (ends its messages). */
#define KB_CONF_KAFKA_PLAINTEXT_HINT                                           \
        "use kafka.security.protocol = SASL_SSL (or SSL), or set "             \
        "kafka_allow_plaintext = true if the network to the broker is "        \
        "private"

/* Validators usable in the table. */
int kb_conf_valid_uuid(const char *v, char *errstr, size_t errstr_size);
int kb_conf_valid_url(const char *v, char *errstr, size_t errstr_size);
int kb_conf_valid_topic(const char *v, char *errstr, size_t errstr_size);
int kb_conf_valid_topic_template(const char *v, char *errstr,
                                 size_t errstr_size);
int kb_conf_valid_vendor_data(const char *v, char *errstr, size_t errstr_size);

/*
 * Expands a template: each "{name}" is replaced by the value @p lookup
 * returns for it (NULL: unknown name -> error). Writes at most @p outsz
 * bytes with the NUL. Returns 0, or -1 (unknown variable, unbalanced brace
 * or result too long).
 */
int kb_conf_expand(const char *tmpl,
                   const char *(*lookup)(void *opaque, const char *name),
                   void *opaque, char *out, size_t outsz);

#endif /* KB_CONF_H */
