/* hmap.h -- hash map from byte-string keys to pointers (SipHash, chaining) */
#ifndef KB_HMAP_H
#define KB_HMAP_H

#include <stddef.h>

/*
 * A hash map from arbitrary byte strings to caller-owned pointers. Keys are
 * copied into the map; values are not owned (the map never frees them).
 * Buckets are keyed with SipHash-2-4 under a random per-map key, so inputs
 * chosen by a client cannot degrade lookups to linear scans.
 * Not thread-safe: callers serialise access.
 */
typedef struct kb_hmap_s kb_hmap_t;

/* Iterator state; initialise with KB_HMAP_ITER_INIT. */
typedef struct kb_hmap_iter_s {
        size_t bucket;
        void *entry;
} kb_hmap_iter_t;

#define KB_HMAP_ITER_INIT                                                      \
        {                                                                      \
                0, NULL                                                        \
        }

/** Creates an empty map. NULL on ENOMEM. */
kb_hmap_t *kb_hmap_new(void);

/** Frees the map and its keys (not the values). NULL is a no-op. */
void kb_hmap_destroy(kb_hmap_t *m);

/** The value stored under @p key, or NULL. */
void *kb_hmap_get(const kb_hmap_t *m, const void *key, size_t keylen);

/** Shorthand for NUL-terminated keys. */
void *kb_hmap_gets(const kb_hmap_t *m, const char *key);

/**
 * Stores @p val (not NULL) under @p key, replacing any previous value.
 * Returns 0, or -1 on ENOMEM (the map is unchanged).
 */
int kb_hmap_put(kb_hmap_t *m, const void *key, size_t keylen, void *val);

/** Shorthand for NUL-terminated keys. */
int kb_hmap_puts(kb_hmap_t *m, const char *key, void *val);

/** Removes @p key; returns the value it had, or NULL. */
void *kb_hmap_del(kb_hmap_t *m, const void *key, size_t keylen);

/** Shorthand for NUL-terminated keys. */
void *kb_hmap_dels(kb_hmap_t *m, const char *key);

/** Number of entries. */
size_t kb_hmap_count(const kb_hmap_t *m);

/**
 * Iterates in unspecified order: returns 1 and fills the outputs (any may be
 * NULL) while entries remain, then 0. The map must not be modified during an
 * iteration.
 */
int kb_hmap_next(const kb_hmap_t *m, kb_hmap_iter_t *it, const void **key,
                 size_t *keylen, void **val);

#endif /* KB_HMAP_H */
