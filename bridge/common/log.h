/* log.h -- levelled logging (text or JSON lines) with secret redaction */
#ifndef KB_LOG_H
#define KB_LOG_H

#include "util.h"

/* syslog numbering, as librdkafka uses it */
typedef enum {
        KB_LOG_ERROR = 3,
        KB_LOG_WARN = 4,
        KB_LOG_NOTICE = 5,
        KB_LOG_INFO = 6,
        KB_LOG_DEBUG = 7,
} kb_log_level_t;

/* Current threshold; read by the macros before any formatting happens. */
extern volatile int kb_log_level;

/**
 * Configures logging. @p json: one JSON object per line instead of text.
 * @p fd: where lines go (2 = stderr). @p program: the "prog" field.
 * May be called again (e.g. after the config file is read). Not thread-safe
 * against concurrent log calls; call it before starting threads.
 */
void kb_log_setup(int level, int json, int fd, const char *program);

/** Parses "error|warn|notice|info|debug"; -1 when unknown. */
int kb_log_level_parse(const char *s);
const char *kb_log_level2str(int level);

/**
 * Writes one line. Thread-safe (one write(2) per line). Any substring that
 * looks like a JWT ("eyJ...\.[...]\.[...]") is replaced by "[jwt d:<digest>]"
 * as a last line of defence; callers must still never pass secrets.
 */
void kb_log_write(int level, const char *fac, const char *fmt, ...)
    KB_PRINTF(3, 4);

#define KB_LOG(lvl, fac, ...)                                                  \
        do {                                                                   \
                if (kb_log_level >= (lvl))                                     \
                        kb_log_write((lvl), (fac), __VA_ARGS__);               \
        } while (0)

#define kb_log_error(fac, ...)  KB_LOG(KB_LOG_ERROR, fac, __VA_ARGS__)
#define kb_log_warn(fac, ...)   KB_LOG(KB_LOG_WARN, fac, __VA_ARGS__)
#define kb_log_notice(fac, ...) KB_LOG(KB_LOG_NOTICE, fac, __VA_ARGS__)
#define kb_log_info(fac, ...)   KB_LOG(KB_LOG_INFO, fac, __VA_ARGS__)
#define kb_log_debug(fac, ...)  KB_LOG(KB_LOG_DEBUG, fac, __VA_ARGS__)

/* Bytes of a saved trace context (kb_log_trace_push()): 32 hex + NUL. */
#define KB_LOG_TRACE_BYTES 33U

/**
 * Sets the calling thread's record context: while set, every line this
 * thread writes carries @p trace_id (text: " trace_id=<id>" at the end of
 * the line; JSON: a "trace_id" member), so that one record's lines can be
 * found across processes. @p trace_id must be 32 lowercase hex characters
 * (a W3C trace id, trace.h); anything else, or NULL, clears it. Copied.
 * This replaces whatever was set: code that may run inside other work on
 * the same thread (a callback, which may be called from another record's
 * callback) uses kb_log_trace_push() / kb_log_trace_pop() instead.
 */
void kb_log_set_trace(const char *trace_id);

/**
 * Work on a record starts or resumes (a callback): saves the calling
 * thread's context into @p saved and sets @p trace_id as
 * kb_log_set_trace() does (anything but a trace id clears it, so the
 * work carries no id rather than the outer work's). Pair every push with
 * a kb_log_trace_pop(@p saved) on every path out of that work, innermost
 * first: nested work then gives the outer work its context back.
 */
void kb_log_trace_push(const char *trace_id, char saved[KB_LOG_TRACE_BYTES]);

/** Restores the context kb_log_trace_push() saved in @p saved. */
void kb_log_trace_pop(const char saved[KB_LOG_TRACE_BYTES]);

/** The calling thread's trace id, or "" when none is set. */
const char *kb_log_trace(void);

/**
 * Replaces JWT-shaped substrings of @p s in place-safe fashion into @p out
 * (size @p out_size). Exposed for tests and for error strings that leave the
 * process (dead-letter details).
 */
void kb_log_scrub(const char *s, char *out, size_t out_size);

#endif /* KB_LOG_H */
