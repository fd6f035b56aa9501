/* trace.h -- W3C trace context (level 1): traceparent parse, format,
 * generate, and one hop's child span */
#ifndef KB_TRACE_H
#define KB_TRACE_H

#include <stddef.h>
#include <stdint.h>

/* Hex lengths (plus the NUL) of the ids and of a version-00 traceparent:
 * "00-" 32 "-" 16 "-" 2 = 55 characters. */
#define KB_TRACE_ID_BYTES    33U
#define KB_TRACE_SPAN_BYTES  17U
#define KB_TRACEPARENT_LEN   55U
#define KB_TRACEPARENT_BYTES (KB_TRACEPARENT_LEN + 1U)
/* The tracestate we carry: what W3C asks every vendor to propagate. A
 * longer one loses whole list members (see kb_trace_state_bound()). */
#define KB_TRACESTATE_MAX 512U
/* The sampled flag, the only trace-flags bit level 1 defines. */
#define KB_TRACE_FLAG_SAMPLED 0x01U

/*
 * One hop's trace context: the trace it belongs to and the span id this
 * hop (a daemon handling one record, the webhook intake handling one
 * delivery) sends as the parent-id of everything it causes -- the output
 * records and the vendor calls.
 */
typedef struct kb_trace_s {
        char trace_id[KB_TRACE_ID_BYTES];  /* 32 lowercase hex */
        char span_id[KB_TRACE_SPAN_BYTES]; /* 16 lowercase hex, this hop */
        uint8_t flags;                     /* trace-flags sent on */
        int continued; /* 1: trace_id came in; 0: started here */
        char traceparent[KB_TRACEPARENT_BYTES]; /* "00-<tid>-<span>-<fl>" */
        char tracestate[KB_TRACESTATE_MAX + 1]; /* as it came in, or "" */
} kb_trace_t;

/**
 * Parses a traceparent value (@p s, @p len bytes, not NUL-terminated) by
 * trace-context level 1: version 2 lowercase hex, "ff" invalid; version
 * "00" exactly 55 characters; a later version at least 55, whose first 55
 * follow the version-00 layout and, when longer, a '-' after them (the
 * fields it appends are ignored). trace-id 32 and parent-id 16 lowercase
 * hex, neither all zeros; trace-flags 2 lowercase hex. Fills @p trace_id,
 * @p parent_id and @p flags (each may be NULL) only when valid. Returns
 * KB_OK or KB_ERR_MALFORMED. Thread-safe.
 */
int kb_trace_parse(const char *s, size_t len, char trace_id[KB_TRACE_ID_BYTES],
                   char parent_id[KB_TRACE_SPAN_BYTES], uint8_t *flags);

/**
 * Writes "00-<trace_id>-<span_id>-<flags>" into @p out. The ids must be
 * valid (32 / 16 lowercase hex). Returns KB_OK or KB_ERR_INVALID_ARG.
 */
int kb_trace_format(const char *trace_id, const char *span_id, uint8_t flags,
                    char out[KB_TRACEPARENT_BYTES]);

/** A random (libsodium randombytes), non-zero id of @p hex_len (32 or 16)
 * lowercase hex characters into @p out (hex_len + 1 bytes). */
void kb_trace_random_id(char *out, size_t hex_len);

/**
 * This hop's context from what came in: @p traceparent / @p tracestate
 * (each may be NULL; lengths, not NUL-terminated). A valid traceparent
 * keeps its trace id and flags (unknown flag bits cleared) and gets a new
 * random span id; its tracestate is kept (kb_trace_state_bound()). An
 * absent or invalid one starts a new trace (random trace id and span id,
 * sampled) and its tracestate is dropped: it belongs to no trace we
 * know. Never fails. Thread-safe.
 */
void kb_trace_child(kb_trace_t *t, const char *traceparent, size_t tp_len,
                    const char *tracestate, size_t ts_len);

/**
 * A tracestate value bounded for carrying on: kept unchanged when it is
 * at most KB_TRACESTATE_MAX bytes of printable ASCII; otherwise, when
 * printable but longer, list members are removed (those over 128 bytes
 * first, then from the end, as W3C says) until it fits; "" when it is not
 * printable ASCII. Writes into @p out (KB_TRACESTATE_MAX + 1 bytes).
 * Returns the length written.
 */
size_t kb_trace_state_bound(const char *s, size_t len,
                            char out[KB_TRACESTATE_MAX + 1]);

/** Unix time in milliseconds (the clock of kb-requested-at). */
int64_t kb_trace_wall_ms(void);

#endif /* KB_TRACE_H */
