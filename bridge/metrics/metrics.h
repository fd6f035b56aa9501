/* metrics.h -- a thread-safe metrics registry and the Prometheus text format
 */
#ifndef KB_METRICS_H
#define KB_METRICS_H

#include <stddef.h>
#include <stdint.h>

#include "kyc_bridge.h"
#include "util.h"

/*
 * Counters, gauges and histograms the way a C daemon keeps them without a
 * client library, rendered in the Prometheus text exposition format 0.0.4.
 *
 * A registry (kb_metrics_t) holds families (kb_metric_family_t): a name, a
 * help text, a type and fixed label names. A family has one child
 * (kb_metric_t) per tuple of label values, created on first use; a hot
 * path looks its child up once and keeps the pointer, after which every
 * update is a lock-free C11 atomic operation. Label sets are bounded: a
 * family declares how many children it may have; a new tuple past that
 * bound, or a label value that is not printable UTF-8 (or is longer than
 * KB_METRICS_LABEL_VALUE_MAX), goes to one overflow child whose label
 * values are all "other", and counts in
 * kyc_bridge_metrics_label_sets_dropped_total{family="..."}.
 *
 * Naming rules are enforced at registration (see kb_metrics_register()):
 * one "kyc_bridge_" prefix, snake_case, counters end in "_total", base
 * units only (seconds, bytes). A refusal is a programming error reported
 * as a return code with a message; nothing here aborts.
 *
 * Threads: create the registry and register the families at start-up on
 * one thread (registering later is safe too, it takes the registry lock).
 * Look up children and update them from any thread. Render from any one
 * thread (the HTTP server's) while the others update: a rendering sees
 * each value at some moment during the rendering, and a histogram's
 * _count always equals its +Inf bucket. Destroy only when no other thread
 * uses the registry or a pointer into it.
 *
 * Nothing here ever takes a personal value: never pass a share id, a token,
 * a session id or any unbounded value as a label value.
 */

typedef struct kb_metrics_s kb_metrics_t;
typedef struct kb_metric_family_s kb_metric_family_t;
typedef struct kb_metric_s kb_metric_t;
typedef struct kb_metric_emit_s kb_metric_emit_t;

typedef enum {
        KB_METRIC_COUNTER = 1,
        KB_METRIC_GAUGE = 2,
        KB_METRIC_HISTOGRAM = 3,
} kb_metric_type_t;

/* Limits, all checked at registration. */
#define KB_METRICS_NAME_MAX        128U  /* bytes in a family name */
#define KB_METRICS_HELP_MAX        512U  /* bytes in a help text */
#define KB_METRICS_LABELS_MAX      8U    /* label names per family */
#define KB_METRICS_LABEL_VALUE_MAX 128U  /* bytes in a label value */
#define KB_METRICS_CHILDREN_MAX    4096U /* max_children at most */
#define KB_METRICS_BUCKETS_MAX     64U   /* histogram bounds at most */
#define KB_METRICS_FAMILIES_MAX    1024U /* families per registry */

/* Label value of the overflow child (every label of it). */
#define KB_METRICS_OVERFLOW_VALUE "other"

/* Room for any number kb_metrics_fmt_double() writes, with the NUL. */
#define KB_METRICS_DOUBLE_BYTES 32U

/*
 * Collector of a family whose values are computed at scrape time (consumer
 * lag from librdkafka's statistics, a queue depth): called by
 * kb_metrics_render() on the rendering thread, with the registry locked,
 * once per rendering. It reports each sample with kb_metric_emit() and
 * must not call any other kb_metrics_* / kb_metric_* function; it must
 * not block. Samples may come in any order: they are sorted; a tuple
 * emitted twice keeps its first value; past max_children distinct tuples
 * the ones that sort last are left out, and each left out (or refused)
 * sample adds one to the family's dropped count on every rendering.
 */
typedef void(kb_metric_collect_fn)(void *opaque, kb_metric_emit_t *emit);

/* What kb_metrics_register() registers. Nothing here is kept: copied. */
typedef struct kb_metric_desc_s {
        /* "kyc_bridge_vendor_requests_total" */
        const char *name;
        /* One line of plain text: what is counted, when. */
        const char *help;
        kb_metric_type_t type;
        /* NULL-terminated label names ("endpoint", "status", NULL), in
         * the order the values are given; NULL: no labels. */
        const char *const *labels;
        /* Children at most (1..KB_METRICS_CHILDREN_MAX), not counting the
         * overflow child; required when there are labels, ignored (1)
         * without. */
        size_t max_children;
        /* Histograms: upper bounds, finite and strictly increasing, 1 to
         * KB_METRICS_BUCKETS_MAX of them; +Inf is added. NULL otherwise. */
        const double *buckets;
        size_t bucket_cnt;
        /* Counters and gauges only: compute the values at scrape time.
         * Such a family has no children; kb_metric_child*() return NULL. */
        kb_metric_collect_fn *collect;
        void *opaque;
} kb_metric_desc_t;

/* Default latency bounds in seconds (5 ms .. 10 s), 11 of them. */
extern const double kb_metrics_buckets_seconds[];
#define KB_METRICS_BUCKETS_SECONDS_CNT 11U

/**
 * New empty registry. It already holds one family of its own,
 * kyc_bridge_metrics_label_sets_dropped_total{family}. NULL with a reason
 * in @p errstr on ENOMEM. Free with kb_metrics_destroy().
 */
kb_metrics_t *kb_metrics_new(char *errstr, size_t errstr_size);

/** Frees the registry, its families and their children (every pointer
 * into it becomes invalid). No other thread may use it any more. NULL is
 * a no-op. */
void kb_metrics_destroy(kb_metrics_t *reg);

/**
 * Registers a family described by @p desc (copied) and stores it in
 * @p famp (owned by the registry, valid until kb_metrics_destroy()).
 * The rules, each refused with KB_ERR_INVALID_ARG and a message naming
 * the metric and the rule in @p errstr:
 * - name: "kyc_bridge_" then lowercase snake_case words ([a-z0-9]+ joined
 *   by single '_'), not a second "kyc_bridge_"; counters end in "_total",
 *   other types do not; no name ends in "_bucket", "_sum", "_count" or
 *   "_created" (they are the series names of histograms); base units only:
 *   no word such as "ms", "milliseconds", "us", "minutes", "kb", "mb",
 *   "kilobytes", "percent" (use _seconds, _bytes, _ratio);
 * - help: 1..KB_METRICS_HELP_MAX bytes of printable UTF-8;
 * - labels: at most KB_METRICS_LABELS_MAX distinct lowercase snake_case
 *   names, none starting with "__", no "le" or "quantile";
 * - max_children in 1..KB_METRICS_CHILDREN_MAX when there are labels;
 * - histogram bounds finite, strictly increasing, 1..KB_METRICS_BUCKETS_MAX
 *   of them, and no collector; counters and gauges take no bounds.
 * Returns KB_OK, KB_ERR_INVALID_ARG, KB_ERR_EXISTS (name taken),
 * KB_ERR_TOO_LARGE (KB_METRICS_FAMILIES_MAX reached) or KB_ERR_NOMEM.
 * Any thread; normally the start-up thread.
 */
int kb_metrics_register(kb_metrics_t *reg, const kb_metric_desc_t *desc,
                        kb_metric_family_t **famp, char *errstr,
                        size_t errstr_size) KB_WUR;

/**
 * Registers the gauge kyc_bridge_build_info{version="@p version"} with the
 * value 1. Returns what kb_metrics_register() does (KB_ERR_INVALID_ARG for
 * a version that is not printable UTF-8 of at most
 * KB_METRICS_LABEL_VALUE_MAX bytes).
 */
int kb_metrics_add_build_info(kb_metrics_t *reg, const char *version,
                              char *errstr, size_t errstr_size) KB_WUR;

/**
 * Registers the gauge process_start_time_seconds (unix time in seconds;
 * @p start_unix_s <= 0: now). This is the conventional name every
 * Prometheus client library exports and dashboards query as
 * time() - process_start_time_seconds, so it is the one family without
 * the kyc_bridge_ prefix. Returns what kb_metrics_register() does.
 */
int kb_metrics_add_process_start_time(kb_metrics_t *reg, double start_unix_s,
                                      char *errstr, size_t errstr_size) KB_WUR;

/**
 * The child of @p fam for the label values @p values (@p value_cnt of
 * them, in the order of the family's label names), created on first use.
 * Keep the pointer: it stays valid until kb_metrics_destroy(). A value
 * that is not printable UTF-8 or is longer than KB_METRICS_LABEL_VALUE_MAX,
 * or a new tuple past max_children, gives the overflow child (and counts a
 * dropped label set). Returns NULL when @p value_cnt is not the family's
 * label count, the family has a collector, or on ENOMEM -- the update
 * functions take NULL as a no-op, so a caller need not check. Any thread;
 * takes the family's lock (a short critical section), so look up once and
 * keep the pointer on hot paths.
 */
kb_metric_t *kb_metric_childv(kb_metric_family_t *fam,
                              const char *const *values, size_t value_cnt);

/* kb_metric_child(fam, "vendor", "200"): the values as arguments. */
#define kb_metric_child(fam, ...)                                              \
        kb_metric_childv((fam), (const char *const[]){ __VA_ARGS__ },          \
                         sizeof((const char *const[]){ __VA_ARGS__ }) /        \
                             sizeof(const char *))

/** The only child of a family without labels (NULL for one with labels
 * or a collector). Lock-free, any thread. */
kb_metric_t *kb_metric_child0(kb_metric_family_t *fam);

/*
 * Updates: lock-free, any thread, NULL is a no-op, and so is a call that
 * does not fit the child's type (a programming error, never a crash).
 */

/** Counter or gauge: adds 1. */
void kb_metric_inc(kb_metric_t *m);
/** Gauge: subtracts 1. */
void kb_metric_dec(kb_metric_t *m);
/** Counter or gauge: adds @p n (exact for counters up to 2^64). */
void kb_metric_add(kb_metric_t *m, uint64_t n);
/** Counter: adds @p v (>= 0; NaN and negatives are ignored). Gauge: adds
 * @p v (may be negative). */
void kb_metric_add_f(kb_metric_t *m, double v);
/** Gauge: sets the value. */
void kb_metric_set(kb_metric_t *m, double v);
/** Histogram: counts @p v in the first bucket whose bound is >= @p v (the
 * +Inf one past the last bound) and adds it to the sum. NaN is ignored. */
void kb_metric_observe(kb_metric_t *m, double v);

/*
 * Reads (for tests and /readyz-style checks): the value as it is now.
 * kb_metric_value(): counter or gauge value; kb_metric_hist_count():
 * histogram observations; kb_metric_hist_sum(): histogram sum. 0 for
 * NULL or the wrong type.
 */
double kb_metric_value(const kb_metric_t *m);
uint64_t kb_metric_hist_count(const kb_metric_t *m);
double kb_metric_hist_sum(const kb_metric_t *m);

/** Label sets of @p fam that went to its overflow child so far. */
uint64_t kb_metric_family_dropped(const kb_metric_family_t *fam);

/**
 * From a collector: reports one sample of the family being collected, for
 * the label values @p values (@p value_cnt of them). Values are checked
 * like kb_metric_childv() ones; a sample with an invalid one is dropped
 * and counted (a collector's samples have no overflow child: adding up
 * gauges of unrelated tuples would be meaningless). Returns KB_OK,
 * KB_ERR_INVALID_ARG (wrong count, invalid value, counter value negative
 * or NaN), KB_ERR_TOO_LARGE (over twice max_children samples in one
 * collection: dropped and counted) or KB_ERR_NOMEM (the rendering then
 * fails with KB_ERR_NOMEM).
 */
int kb_metric_emitv(kb_metric_emit_t *emit, const char *const *values,
                    size_t value_cnt, double v);

/* kb_metric_emit(emit, 42.0, "topic", "3"): the values as arguments. */
#define kb_metric_emit(emit, v, ...)                                           \
        kb_metric_emitv((emit), (const char *const[]){ __VA_ARGS__ },          \
                        sizeof((const char *const[]){ __VA_ARGS__ }) /         \
                            sizeof(const char *),                              \
                        (v))

/**
 * Appends the exposition text (format 0.0.4, Content-Type
 * "text/plain; version=0.0.4; charset=utf-8") of every family to @p out:
 * families sorted by name, each "# HELP" then "# TYPE" then its samples
 * sorted by label values (byte order, labels in declaration order);
 * histograms as name_bucket{...,le="..."} (cumulative, ending in +Inf),
 * name_sum, name_count per child. Runs the collectors. Returns KB_OK, or
 * KB_ERR_NOMEM with @p out as it was. Any thread, concurrently with
 * updates and child look-ups; renderings are serialised.
 */
int kb_metrics_render(kb_metrics_t *reg, kb_buf_t *out) KB_WUR;

/**
 * Formats @p v the way Prometheus reads it: "+Inf", "-Inf", "NaN", else
 * the shortest decimal that reads back as exactly @p v ("0.1", "1e-09",
 * "42"), with a '.' whatever the locale. @p buf holds
 * KB_METRICS_DOUBLE_BYTES bytes.
 */
void kb_metrics_fmt_double(double v, char buf[KB_METRICS_DOUBLE_BYTES]);

/**
 * Appends @p s / @p len escaped for the exposition format: '\\' as "\\\\"
 * and newline as "\\n", and, when @p label_value, '"' as "\\\"" (help
 * texts keep their quotes). Returns 0 or -1 on ENOMEM.
 */
int kb_metrics_escape(kb_buf_t *out, const char *s, size_t len,
                      int label_value);

#endif /* KB_METRICS_H */
