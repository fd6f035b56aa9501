/* metrics_int.h -- the registry's insides, shared by metrics*.c only */
#ifndef KB_METRICS_INT_H
#define KB_METRICS_INT_H

#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "hmap.h"
#include "metrics.h"

/*
 * A child. Its key (the label values joined, each followed by a NUL) and
 * its rendered label text never change once the child is published, so
 * the renderer reads them without a lock. The values are atomics:
 * - counter: n (integer adds) + the double in bits (kb_metric_add_f());
 * - gauge: the double in bits;
 * - histogram: bits is the sum (a double), buckets[] the per-bucket counts
 *   (not cumulative; the last one is +Inf), so _count is their total and
 *   always equals the +Inf bucket.
 */
struct kb_metric_s {
        kb_metric_type_t type;
        const kb_metric_family_t *fam;
        _Atomic uint64_t n;
        _Atomic uint64_t bits;
        char *key;       /* "v1\0v2\0", NUL-separated values */
        size_t keylen;   /* including the last NUL (0 without labels) */
        char *labels;    /* `a="x",b="y"` escaped, "" without labels */
        size_t bucket_n; /* histogram: bounds + 1 (+Inf), else 0 */
        _Atomic uint64_t buckets[];
};

struct kb_metric_family_s {
        kb_metrics_t *reg;
        char *name;
        char *help;
        kb_metric_type_t type;
        char **label_names;
        size_t label_cnt;
        size_t max_children;
        double *bounds; /* histogram: bound_cnt finite bounds */
        size_t bound_cnt;
        kb_metric_collect_fn *collect;
        void *opaque;

        /* Children: the map and the array (max_children + 1 slots,
         * allocated at registration, so never moved) change under lock;
         * child_cnt is published with release order for the renderer. */
        pthread_mutex_t lock;
        kb_hmap_t *map;
        kb_metric_t **children;
        _Atomic size_t child_cnt;
        size_t regular_cnt;    /* children other than the overflow one */
        kb_metric_t *solo;     /* the child of a family without labels */
        kb_metric_t *overflow; /* created when first needed */
        _Atomic uint64_t dropped;
};

struct kb_metrics_s {
        /* Families sorted by name; changed and rendered under lock. */
        pthread_mutex_t lock;
        kb_metric_family_t **fams;
        size_t fam_cnt;
        size_t fam_cap;
};

/* One sample a collector emitted. */
typedef struct kb_metric_sample_s {
        char *key;
        size_t keylen;
        char *labels;
        double v;
} kb_metric_sample_t;

struct kb_metric_emit_s {
        kb_metric_family_t *fam;
        kb_metric_sample_t *samples;
        size_t cnt;
        size_t cap;
        int nomem;
};

/* Builds a child's key and escaped label text from @p values; checks
 * each. Returns KB_OK, KB_ERR_INVALID_ARG (a value is not printable UTF-8
 * or is too long) or KB_ERR_NOMEM. The caller frees *key and *labels. */
int kb_metrics_labels_make(const kb_metric_family_t *fam,
                           const char *const *values, char **key,
                           size_t *keylen, char **labels);

/* Order of two keys: label tuples compared value by value, bytewise. */
int kb_metrics_key_cmp(const char *a, size_t alen, const char *b, size_t blen);

/* Non-zero if @p s / @p len is printable UTF-8 (no C0, DEL or C1). */
int kb_metrics_printable(const char *s, size_t len);

/* Double <-> bits for the atomics. */
uint64_t kb_metrics_d2u(double d);
double kb_metrics_u2d(uint64_t u);

#endif /* KB_METRICS_INT_H */
