/* keyring.c -- sets of keys looked up by key id, each tagged with its owner */
#include "kyc_bridge.h"

#include <stdlib.h>
#include <string.h>

typedef struct {
        kb_key_t *key;
        char *owner; /* application id the key belongs to, or NULL */
} ring_entry_t;

struct kb_keyring_s {
        ring_entry_t *v;
        size_t n, cap;
};

kb_keyring_t *kb_keyring_new(void)
{
        return calloc(1, sizeof(kb_keyring_t));
}

void kb_keyring_destroy(kb_keyring_t *ring)
{
        size_t i;

        if (!ring)
                return;
        for (i = 0; i < ring->n; i++) {
                kb_key_destroy(ring->v[i].key);
                free(ring->v[i].owner);
        }
        free(ring->v);
        free(ring);
}

static int ring_reserve(kb_keyring_t *ring, size_t extra)
{
        ring_entry_t *v;
        size_t ncap;

        if (ring->n + extra <= ring->cap)
                return 0;
        ncap = ring->cap ? ring->cap : 4;
        while (ncap < ring->n + extra)
                ncap *= 2;
        v = realloc(ring->v, ncap * sizeof(*v));
        if (!v)
                return -1;
        ring->v = v;
        ring->cap = ncap;
        return 0;
}

static ring_entry_t *ring_lookup(const kb_keyring_t *ring, kb_key_type_t type,
                                 const char *key_id)
{
        size_t i;

        for (i = 0; i < ring->n; i++)
                if (kb_key_type(ring->v[i].key) == type &&
                    !strcmp(kb_key_id(ring->v[i].key), key_id))
                        return &ring->v[i];
        return NULL;
}

int kb_keyring_add(kb_keyring_t *ring, kb_key_t *key, const char *owner_app_id)
{
        char *owner = NULL;

        if (!ring || !key)
                return KB_ERR_INVALID_ARG;
        if (ring_lookup(ring, kb_key_type(key), kb_key_id(key)))
                return KB_ERR_EXISTS;
        if (ring_reserve(ring, 1) == -1)
                return KB_ERR_NOMEM;
        if (owner_app_id && !(owner = strdup(owner_app_id)))
                return KB_ERR_NOMEM;
        ring->v[ring->n].key = key;
        ring->v[ring->n].owner = owner;
        ring->n++;
        return KB_OK;
}

int kb_keyring_add_bundle(kb_keyring_t *ring, const kb_bundle_t *bundle,
                          kb_key_type_t type, const char *owner_app_id)
{
        size_t i, j, n;
        size_t start;
        const kb_key_t *key;

        if (!ring || !bundle)
                return KB_ERR_INVALID_ARG;
        n = kb_bundle_count(bundle, type);
        /* all or nothing: check first, then add */
        for (i = 0; i < n; i++)
                if (ring_lookup(ring, type,
                                kb_key_id(kb_bundle_get(bundle, type, i))))
                        return KB_ERR_EXISTS;
        if (ring_reserve(ring, n) == -1)
                return KB_ERR_NOMEM;
        start = ring->n;
        for (i = 0; i < n; i++) {
                kb_key_t *copy;
                char *owner = NULL;

                key = kb_bundle_get(bundle, type, i);
                copy = kb_key_from_public(type, kb_key_public(key));
                if (!copy ||
                    (owner_app_id && !(owner = strdup(owner_app_id)))) {
                        kb_key_destroy(copy);
                        for (j = start; j < ring->n; j++) {
                                kb_key_destroy(ring->v[j].key);
                                free(ring->v[j].owner);
                        }
                        ring->n = start;
                        return KB_ERR_NOMEM;
                }
                ring->v[ring->n].key = copy;
                ring->v[ring->n].owner = owner;
                ring->n++;
        }
        return KB_OK;
}

const kb_key_t *kb_keyring_find(const kb_keyring_t *ring, kb_key_type_t type,
                                const char *key_id, const char **owner_app_id)
{
        const ring_entry_t *e;

        if (owner_app_id)
                *owner_app_id = NULL;
        if (!ring || !key_id)
                return NULL;
        e = ring_lookup(ring, type, key_id);
        if (!e)
                return NULL;
        if (owner_app_id)
                *owner_app_id = e->owner;
        return e->key;
}

size_t kb_keyring_count(const kb_keyring_t *ring)
{
        return ring ? ring->n : 0;
}
