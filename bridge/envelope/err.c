/* err.c -- error codes, their names and descriptions; library init */
#include "kyc_bridge.h"

#include <sodium.h>

static const struct {
        kb_err_t err;
        const char *name;
        const char *desc;
} errs[] = {
        { KB_OK, "KB_OK", "success" },
        { KB_ERR_INVALID_ARG, "KB_ERR_INVALID_ARG", "invalid argument" },
        { KB_ERR_NOMEM, "KB_ERR_NOMEM", "out of memory" },
        { KB_ERR_IO, "KB_ERR_IO", "I/O error" },
        { KB_ERR_MALFORMED, "KB_ERR_MALFORMED", "malformed input" },
        { KB_ERR_TOO_LARGE, "KB_ERR_TOO_LARGE", "input exceeds size limit" },
        { KB_ERR_VERSION, "KB_ERR_VERSION", "unsupported format version" },
        { KB_ERR_UNKNOWN_KEY, "KB_ERR_UNKNOWN_KEY", "unknown key id" },
        { KB_ERR_AUTH, "KB_ERR_AUTH", "authentication failed" },
        { KB_ERR_EXPIRED, "KB_ERR_EXPIRED", "expired" },
        { KB_ERR_NOT_FOR_US, "KB_ERR_NOT_FOR_US",
          "addressed to another application" },
        { KB_ERR_EXISTS, "KB_ERR_EXISTS", "already exists" },
        { KB_ERR_CONFIG, "KB_ERR_CONFIG", "invalid configuration" },
        { KB_ERR_CRYPTO, "KB_ERR_CRYPTO", "crypto library failure" },
        { KB_ERR_NOT_FOUND, "KB_ERR_NOT_FOUND", "not found" },
        { KB_ERR_HTTP, "KB_ERR_HTTP", "HTTP transport error" },
        { KB_ERR_TIMEOUT, "KB_ERR_TIMEOUT", "timed out" },
        { KB_ERR_KAFKA, "KB_ERR_KAFKA", "Kafka error" },
        { KB_ERR_RETRY, "KB_ERR_RETRY", "transient failure, retry later" },
        { KB_ERR_STATE, "KB_ERR_STATE", "invalid state for this call" },
};

const char *kb_err2str(kb_err_t err)
{
        size_t i;

        for (i = 0; i < sizeof(errs) / sizeof(errs[0]); i++)
                if (errs[i].err == err)
                        return errs[i].desc;
        return "unknown error";
}

const char *kb_err2name(kb_err_t err)
{
        size_t i;

        for (i = 0; i < sizeof(errs) / sizeof(errs[0]); i++)
                if (errs[i].err == err)
                        return errs[i].name;
        return "KB_ERR_UNKNOWN";
}

kb_err_t kb_init(void)
{
        return sodium_init() < 0 ? KB_ERR_CRYPTO : KB_OK;
}
