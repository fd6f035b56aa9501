/* wh_records.c -- the list of Kafka records a delivery causes */
#include "wh_delivery.h"
#include "wh_int.h"

#include <stdlib.h>
#include <string.h>

kb_wh_records_t *kb_wh_records_new(void)
{
        return calloc(1, sizeof(kb_wh_records_t));
}

static void rec_free(kb_wh_rec_t *r)
{
        size_t i;

        free(r->topic);
        free(r->key);
        free(r->value);
        for (i = 0; i < r->nhdrs * 2; i++)
                free(r->hdrs[i]);
        free(r->hdrs);
        memset(r, 0, sizeof(*r));
}

void kb_wh_records_on_settled(kb_wh_records_t *recs, kb_wh_settled_fn *fn,
                              void *arg)
{
        if (!recs)
                return;
        kb_wh_records_settle(recs, 0);
        recs->settled = fn;
        recs->settled_arg = fn ? arg : NULL;
}

void kb_wh_records_settle(kb_wh_records_t *recs, int acked)
{
        kb_wh_settled_fn *fn;
        void *arg;

        if (!recs || !recs->settled)
                return;
        /* cleared first: exactly once, even if @p fn looks at @p recs */
        fn = recs->settled;
        arg = recs->settled_arg;
        recs->settled = NULL;
        recs->settled_arg = NULL;
        fn(arg, acked ? 1 : 0);
}

void kb_wh_records_clear(kb_wh_records_t *recs)
{
        size_t i;

        if (!recs)
                return;
        kb_wh_records_settle(recs, 0);
        for (i = 0; i < recs->n; i++)
                rec_free(&recs->v[i]);
        recs->n = 0;
}

void kb_wh_records_destroy(kb_wh_records_t *recs)
{
        if (!recs)
                return;
        kb_wh_records_clear(recs);
        free(recs->v);
        free(recs);
}

static void *memdup(const void *p, size_t len)
{
        /* one extra NUL byte: values are often text */
        char *d = malloc(len + 1);

        if (!d)
                return NULL;
        if (len)
                memcpy(d, p, len);
        d[len] = '\0';
        return d;
}

int kb_wh_records_add(kb_wh_records_t *recs, const char *topic, const void *key,
                      size_t key_len, const void *value, size_t value_len,
                      const char *const *headers)
{
        kb_wh_rec_t r;
        size_t nh = 0, i;

        if (!recs || !topic || !*topic || (!value && value_len))
                return KB_ERR_INVALID_ARG;
        while (headers && headers[nh * 2] && headers[nh * 2 + 1])
                nh++;
        if (recs->n == recs->cap) {
                size_t nc = recs->cap ? recs->cap * 2 : 4;
                kb_wh_rec_t *nv = realloc(recs->v, nc * sizeof(*nv));
                if (!nv)
                        return KB_ERR_NOMEM;
                recs->v = nv;
                recs->cap = nc;
        }
        memset(&r, 0, sizeof(r));
        r.topic = strdup(topic);
        r.key = key ? memdup(key, key_len) : NULL;
        r.key_len = key ? key_len : 0;
        r.value = memdup(value ? value : "", value_len);
        r.value_len = value_len;
        if (nh)
                r.hdrs = calloc(nh * 2, sizeof(*r.hdrs));
        r.nhdrs = r.hdrs ? nh : 0;
        if (!r.topic || (key && !r.key) || !r.value || (nh && !r.hdrs))
                goto nomem;
        for (i = 0; i < nh * 2; i++)
                if (!(r.hdrs[i] = strdup(headers[i])))
                        goto nomem;
        recs->v[recs->n++] = r;
        return KB_OK;
nomem:
        rec_free(&r);
        return KB_ERR_NOMEM;
}

size_t kb_wh_records_count(const kb_wh_records_t *recs)
{
        return recs ? recs->n : 0;
}

const char *kb_wh_records_get(const kb_wh_records_t *recs, size_t i,
                              const void **key, size_t *key_len,
                              const void **value, size_t *value_len)
{
        const kb_wh_rec_t *r;

        if (!recs || i >= recs->n)
                return NULL;
        r = &recs->v[i];
        if (key)
                *key = r->key;
        if (key_len)
                *key_len = r->key_len;
        if (value)
                *value = r->value;
        if (value_len)
                *value_len = r->value_len;
        return r->topic;
}

const char *kb_wh_records_header(const kb_wh_records_t *recs, size_t i,
                                 const char *name)
{
        const kb_wh_rec_t *r;
        size_t k;

        if (!recs || i >= recs->n || !name)
                return NULL;
        r = &recs->v[i];
        for (k = 0; k < r->nhdrs; k++)
                if (!strcmp(r->hdrs[2 * k], name))
                        return r->hdrs[2 * k + 1];
        return NULL;
}
