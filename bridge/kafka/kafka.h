/* kafka.h -- librdkafka configuration, logging and small helpers */
#ifndef KB_KAFKA_H
#define KB_KAFKA_H

#include <librdkafka/rdkafka.h>

#include "conf.h"

/*
 * Builds a librdkafka configuration for a client of @p kind with kyc-bridge's
 * defaults, then every "kafka.*" option of @p conf on top (the user wins),
 * then @p extra (NULL-terminated key, value pairs) on top of that. librdkafka
 * logs and errors are routed into log.h. Returns NULL with "origin: key:
 * reason" in @p errstr on failure.
 */
rd_kafka_conf_t *kb_kafka_conf_new(const kb_conf_t *conf, rd_kafka_type_t kind,
                                   const char *const *extra, char *errstr,
                                   size_t errstr_size);

/** Gets a property's value from @p rkc into @p buf; "" when unset. */
const char *kb_kafka_conf_get(rd_kafka_conf_t *rkc, const char *name, char *buf,
                              size_t bufsz);

/** Finds a header's value (NUL-terminated copy into @p buf); -1 if absent. */
int kb_kafka_header_get(rd_kafka_headers_t *hdrs, const char *name, char *buf,
                        size_t bufsz);

/** Fills @p out with the hostname (for default transactional ids). */
void kb_kafka_hostname(char *out, size_t outsz);

#endif /* KB_KAFKA_H */
