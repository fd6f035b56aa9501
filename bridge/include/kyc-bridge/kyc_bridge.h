/* kyc_bridge.h -- public API of libkycbridge: keys and sealed share envelopes
 */
#ifndef KYC_BRIDGE_H
#define KYC_BRIDGE_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define KB_VERSION_STR "0.1.0"

#if defined(__GNUC__)
#define KB_WUR __attribute__((warn_unused_result))
#else
#define KB_WUR
#endif

/*
 * Error codes. KB_OK is zero, every failure is negative. kb_err2str() gives a
 * short, stable, human-readable description (never secret material).
 */
typedef enum {
        KB_OK = 0,
        KB_ERR_INVALID_ARG = -1, /* caller passed something unusable */
        KB_ERR_NOMEM = -2,       /* allocation failed */
        KB_ERR_IO = -3,          /* file or socket error (see errno) */
        KB_ERR_MALFORMED = -4,   /* input does not parse (JSON, base64, ...) */
        KB_ERR_TOO_LARGE = -5,   /* input over a documented size limit */
        KB_ERR_VERSION = -6,     /* unsupported format version */
        KB_ERR_UNKNOWN_KEY = -7, /* no key with that key id is configured */
        KB_ERR_AUTH = -8,    /* authentication failed (which check: not said) */
        KB_ERR_EXPIRED = -9, /* authentic, but past its expiry */
        KB_ERR_NOT_FOR_US = -10, /* addressed to another application */
        KB_ERR_EXISTS = -11,     /* refusing to overwrite */
        KB_ERR_CONFIG = -12,     /* configuration invalid */
        KB_ERR_CRYPTO = -13, /* crypto library failure (not an auth failure) */
        KB_ERR_NOT_FOUND = -14, /* no such thing */
        KB_ERR_HTTP = -15,      /* HTTP transport failure */
        KB_ERR_TIMEOUT = -16,   /* operation timed out */
        KB_ERR_KAFKA = -17,     /* Kafka client error */
        KB_ERR_RETRY = -18,     /* transient: try again later */
        KB_ERR_STATE = -19,     /* call not valid in this state */
} kb_err_t;

/** Returns a static description of @p err. Thread-safe. */
const char *kb_err2str(kb_err_t err);

/** Returns a static, stable, machine-readable name ("KB_ERR_AUTH"). */
const char *kb_err2name(kb_err_t err);

/**
 * Initialises the library (libsodium). Call once before anything else; safe to
 * call again. Returns KB_OK or KB_ERR_CRYPTO.
 */
kb_err_t kb_init(void) KB_WUR;

#ifdef __cplusplus
}
#endif

#include "kb_keys.h"
#include "kb_envelope.h"

#endif /* KYC_BRIDGE_H */
