/* hmap.c -- hash map from byte-string keys to pointers (SipHash, chaining) */
#include "hmap.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

typedef struct hentry_s {
        struct hentry_s *next;
        uint64_t hash;
        void *val;
        size_t keylen;
        unsigned char key[]; /* keylen bytes, then a NUL */
} hentry_t;

struct kb_hmap_s {
        hentry_t **buckets;
        size_t nbuckets; /* power of two */
        size_t count;
        unsigned char sipkey[crypto_shorthash_KEYBYTES];
};

static uint64_t hmap_hash(const kb_hmap_t *m, const void *key, size_t keylen)
{
        unsigned char out[crypto_shorthash_BYTES];
        uint64_t h;

        crypto_shorthash(out, key, keylen, m->sipkey);
        memcpy(&h, out, sizeof(h));
        return h;
}

kb_hmap_t *kb_hmap_new(void)
{
        kb_hmap_t *m = calloc(1, sizeof(*m));

        if (!m)
                return NULL;
        m->nbuckets = 16;
        m->buckets = calloc(m->nbuckets, sizeof(*m->buckets));
        if (!m->buckets) {
                free(m);
                return NULL;
        }
        crypto_shorthash_keygen(m->sipkey);
        return m;
}

void kb_hmap_destroy(kb_hmap_t *m)
{
        size_t i;

        if (!m)
                return;
        for (i = 0; i < m->nbuckets; i++) {
                hentry_t *e = m->buckets[i], *next;
                for (; e; e = next) {
                        next = e->next;
                        free(e);
                }
        }
        free(m->buckets);
        free(m);
}

static hentry_t **hmap_find(const kb_hmap_t *m, const void *key, size_t keylen,
                            uint64_t h)
{
        hentry_t **pp = &m->buckets[h & (m->nbuckets - 1)];

        for (; *pp; pp = &(*pp)->next) {
                if ((*pp)->hash == h && (*pp)->keylen == keylen &&
                    !memcmp((*pp)->key, key, keylen))
                        return pp;
        }
        return pp;
}

void *kb_hmap_get(const kb_hmap_t *m, const void *key, size_t keylen)
{
        hentry_t **pp = hmap_find(m, key, keylen, hmap_hash(m, key, keylen));

        return *pp ? (*pp)->val : NULL;
}

void *kb_hmap_gets(const kb_hmap_t *m, const char *key)
{
        return kb_hmap_get(m, key, strlen(key));
}

/* Doubles the bucket array; failure is harmless (chains just get longer). */
static void hmap_grow(kb_hmap_t *m)
{
        size_t n = m->nbuckets * 2, i;
        hentry_t **nb;

        if (n > SIZE_MAX / sizeof(*nb))
                return;
        nb = calloc(n, sizeof(*nb));
        if (!nb)
                return;
        for (i = 0; i < m->nbuckets; i++) {
                hentry_t *e = m->buckets[i], *next;
                for (; e; e = next) {
                        next = e->next;
                        e->next = nb[e->hash & (n - 1)];
                        nb[e->hash & (n - 1)] = e;
                }
        }
        free(m->buckets);
        m->buckets = nb;
        m->nbuckets = n;
}

int kb_hmap_put(kb_hmap_t *m, const void *key, size_t keylen, void *val)
{
        uint64_t h = hmap_hash(m, key, keylen);
        hentry_t **pp = hmap_find(m, key, keylen, h), *e;

        if (*pp) {
                (*pp)->val = val;
                return 0;
        }
        if (keylen > SIZE_MAX - sizeof(*e) - 1)
                return -1;
        e = malloc(sizeof(*e) + keylen + 1);
        if (!e)
                return -1;
        e->hash = h;
        e->val = val;
        e->keylen = keylen;
        memcpy(e->key, key, keylen);
        e->key[keylen] = '\0';
        e->next = NULL;
        *pp = e;
        m->count++;
        if (m->count > m->nbuckets)
                hmap_grow(m);
        return 0;
}

int kb_hmap_puts(kb_hmap_t *m, const char *key, void *val)
{
        return kb_hmap_put(m, key, strlen(key), val);
}

void *kb_hmap_del(kb_hmap_t *m, const void *key, size_t keylen)
{
        hentry_t **pp = hmap_find(m, key, keylen, hmap_hash(m, key, keylen));
        hentry_t *e = *pp;
        void *val;

        if (!e)
                return NULL;
        *pp = e->next;
        val = e->val;
        free(e);
        m->count--;
        return val;
}

void *kb_hmap_dels(kb_hmap_t *m, const char *key)
{
        return kb_hmap_del(m, key, strlen(key));
}

size_t kb_hmap_count(const kb_hmap_t *m)
{
        return m->count;
}

int kb_hmap_next(const kb_hmap_t *m, kb_hmap_iter_t *it, const void **key,
                 size_t *keylen, void **val)
{
        hentry_t *e = it->entry;

        if (e)
                e = e->next;
        while (!e && it->bucket < m->nbuckets)
                e = m->buckets[it->bucket++];
        it->entry = e;
        if (!e)
                return 0;
        if (key)
                *key = e->key;
        if (keylen)
                *keylen = e->keylen;
        if (val)
                *val = e->val;
        return 1;
}
