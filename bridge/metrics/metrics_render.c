/* metrics_render.c -- the Prometheus text exposition format (0.0.4): label
 * sets, escaping, numbers, collectors and the rendering */
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "metrics_int.h"
#include "utf8.h"

int kb_metrics_printable(const char *s, size_t len)
{
        const unsigned char *p = (const unsigned char *)s;
        uint32_t cp;
        size_t n;

        while (len > 0) {
                n = kb_utf8_next(p, len, &cp);
                if (n == 0 || kb_utf8_is_control(cp))
                        return 0;
                p += n;
                len -= n;
        }
        return 1;
}

int kb_metrics_escape(kb_buf_t *out, const char *s, size_t len, int label_value)
{
        size_t i, run = 0;
        const char *esc;

        for (i = 0; i < len; i++) {
                if (s[i] == '\\')
                        esc = "\\\\";
                else if (s[i] == '\n')
                        esc = "\\n";
                else if (s[i] == '"' && label_value)
                        esc = "\\\"";
                else
                        continue;
                if (kb_buf_append(out, s + run, i - run) != 0 ||
                    kb_buf_puts(out, esc) != 0)
                        return -1;
                run = i + 1;
        }
        return kb_buf_append(out, s + run, len - run);
}

void kb_metrics_fmt_double(double v, char buf[KB_METRICS_DOUBLE_BYTES])
{
        char *p;
        int prec;

        if (isnan(v)) {
                memcpy(buf, "NaN", 4);
                return;
        }
        if (isinf(v)) {
                memcpy(buf, v > 0 ? "+Inf" : "-Inf", 5);
                return;
        }
        /* Integers exactly (no exponent below 1e15). */
        if (v == trunc(v) && fabs(v) < 1e15) {
                snprintf(buf, KB_METRICS_DOUBLE_BYTES, "%.0f", v);
                return;
        }
        /* Any decimal of 15 significant digits or fewer survives the round
         * trip (DBL_DIG), so %.15g is the shortest when it reads back;
         * else 16, else 17 always does. */
        for (prec = 15; prec <= 17; prec++) {
                snprintf(buf, KB_METRICS_DOUBLE_BYTES, "%.*g", prec, v);
                if (strtod(buf, NULL) == v)
                        break;
        }
        /* A locale with a decimal comma: Prometheus wants a point. */
        if ((p = strchr(buf, ',')) != NULL)
                *p = '.';
}

int kb_metrics_labels_make(const kb_metric_family_t *fam,
                           const char *const *values, char **key,
                           size_t *keylen, char **labels)
{
        kb_buf_t k = KB_BUF_INIT, l = KB_BUF_INIT;
        size_t i, len;
        int r = KB_ERR_NOMEM;

        *key = *labels = NULL;
        *keylen = 0;
        for (i = 0; i < fam->label_cnt; i++) {
                if (!values[i])
                        return KB_ERR_INVALID_ARG;
                len = strlen(values[i]);
                if (len > KB_METRICS_LABEL_VALUE_MAX ||
                    !kb_metrics_printable(values[i], len))
                        return KB_ERR_INVALID_ARG;
        }
        for (i = 0; i < fam->label_cnt; i++) {
                len = strlen(values[i]);
                if (kb_buf_append(&k, values[i], len + 1) != 0)
                        goto out;
                if ((i > 0 && kb_buf_puts(&l, ",") != 0) ||
                    kb_buf_puts(&l, fam->label_names[i]) != 0 ||
                    kb_buf_puts(&l, "=\"") != 0 ||
                    kb_metrics_escape(&l, values[i], len, 1) != 0 ||
                    kb_buf_puts(&l, "\"") != 0)
                        goto out;
        }
        *keylen = k.len;
        *key = kb_buf_steal(&k, NULL);
        *labels = kb_buf_steal(&l, NULL);
        if (!*key || !*labels) {
                free(*key);
                free(*labels);
                *key = *labels = NULL;
                *keylen = 0;
                goto out;
        }
        r = KB_OK;
out:
        kb_buf_free(&k, 0);
        kb_buf_free(&l, 0);
        return r;
}

int kb_metrics_key_cmp(const char *a, size_t alen, const char *b, size_t blen)
{
        /* Values hold no NUL and each ends in one, which sorts below every
         * other byte: comparing the joined keys bytewise compares the
         * tuples value by value. */
        size_t n = alen < blen ? alen : blen;
        int c = n ? memcmp(a, b, n) : 0;

        if (c != 0)
                return c;
        return alen < blen ? -1 : alen > blen;
}

static int child_cmp(const void *pa, const void *pb)
{
        const kb_metric_t *a = *(const kb_metric_t *const *)pa;
        const kb_metric_t *b = *(const kb_metric_t *const *)pb;

        return kb_metrics_key_cmp(a->key, a->keylen, b->key, b->keylen);
}

static int sample_cmp(const void *pa, const void *pb)
{
        const kb_metric_sample_t *a = pa, *b = pb;

        return kb_metrics_key_cmp(a->key, a->keylen, b->key, b->keylen);
}

int kb_metric_emitv(kb_metric_emit_t *emit, const char *const *values,
                    size_t value_cnt, double v)
{
        kb_metric_family_t *fam;
        kb_metric_sample_t *s;
        int r;

        if (!emit || !(fam = emit->fam) || value_cnt != fam->label_cnt)
                return KB_ERR_INVALID_ARG;
        if (fam->type == KB_METRIC_COUNTER && !(v >= 0))
                return KB_ERR_INVALID_ARG;
        /* Duplicates are only found once sorted, so keep up to twice the
         * bound here and cut to the bound afterwards. */
        if (emit->cnt >= 2 * fam->max_children) {
                atomic_fetch_add_explicit(&fam->dropped, 1,
                                          memory_order_relaxed);
                return KB_ERR_TOO_LARGE;
        }
        if (emit->cnt == emit->cap) {
                size_t cap = emit->cap ? emit->cap * 2 : 16;

                s = realloc(emit->samples, cap * sizeof(*s));
                if (!s) {
                        emit->nomem = 1;
                        return KB_ERR_NOMEM;
                }
                emit->samples = s;
                emit->cap = cap;
        }
        s = &emit->samples[emit->cnt];
        r = kb_metrics_labels_make(fam, values, &s->key, &s->keylen,
                                   &s->labels);
        if (r == KB_ERR_INVALID_ARG) {
                atomic_fetch_add_explicit(&fam->dropped, 1,
                                          memory_order_relaxed);
                return r;
        }
        if (r != KB_OK) {
                emit->nomem = 1;
                return r;
        }
        s->v = v;
        emit->cnt++;
        return KB_OK;
}

static int put_series(kb_buf_t *out, const char *name, const char *suffix,
                      const char *labels, const char *extra, const char *val)
{
        int has = labels && *labels;

        if (kb_buf_puts(out, name) != 0 || kb_buf_puts(out, suffix) != 0)
                return -1;
        if (has || extra) {
                if (kb_buf_puts(out, "{") != 0 ||
                    (has && kb_buf_puts(out, labels) != 0) ||
                    (has && extra && kb_buf_puts(out, ",") != 0) ||
                    (extra && kb_buf_puts(out, extra) != 0) ||
                    kb_buf_puts(out, "}") != 0)
                        return -1;
        }
        if (kb_buf_puts(out, " ") != 0 || kb_buf_puts(out, val) != 0 ||
            kb_buf_puts(out, "\n") != 0)
                return -1;
        return 0;
}

static int render_collected(kb_metric_family_t *fam, kb_buf_t *out)
{
        kb_metric_emit_t emit = { .fam = fam };
        char num[KB_METRICS_DOUBLE_BYTES];
        size_t i, kept = 0;
        int r = KB_ERR_NOMEM;

        fam->collect(fam->opaque, &emit);
        if (emit.nomem)
                goto out;
        if (emit.cnt > 1)
                qsort(emit.samples, emit.cnt, sizeof(*emit.samples),
                      sample_cmp);
        for (i = 0; i < emit.cnt; i++) {
                const kb_metric_sample_t *s = &emit.samples[i];

                if (i > 0 && !sample_cmp(s, s - 1))
                        continue; /* the first one counts */
                if (kept == fam->max_children) {
                        atomic_fetch_add_explicit(&fam->dropped, 1,
                                                  memory_order_relaxed);
                        continue;
                }
                kept++;
                kb_metrics_fmt_double(s->v, num);
                if (put_series(out, fam->name, "", s->labels, NULL, num) != 0)
                        goto out;
        }
        r = KB_OK;
out:
        for (i = 0; i < emit.cnt; i++) {
                free(emit.samples[i].key);
                free(emit.samples[i].labels);
        }
        free(emit.samples);
        return r;
}

static int render_histogram(const kb_metric_family_t *fam, const kb_metric_t *m,
                            kb_buf_t *out)
{
        uint64_t counts[KB_METRICS_BUCKETS_MAX + 1], cum = 0;
        char num[KB_METRICS_DOUBLE_BYTES], le[KB_METRICS_DOUBLE_BYTES + 8];
        char cnt[24];
        double sum;
        size_t i;

        /* One snapshot of the buckets: cumulative counts that never go
         * down, and a _count equal to the +Inf bucket. */
        for (i = 0; i < m->bucket_n; i++)
                counts[i] = atomic_load_explicit(
                    (_Atomic uint64_t *)&m->buckets[i], memory_order_relaxed);
        sum = kb_metrics_u2d(atomic_load_explicit((_Atomic uint64_t *)&m->bits,
                                                  memory_order_relaxed));
        for (i = 0; i < m->bucket_n; i++) {
                cum += counts[i];
                if (i < fam->bound_cnt)
                        kb_metrics_fmt_double(fam->bounds[i], num);
                else
                        memcpy(num, "+Inf", 5);
                snprintf(le, sizeof(le), "le=\"%s\"", num);
                snprintf(cnt, sizeof(cnt), "%" PRIu64, cum);
                if (put_series(out, fam->name, "_bucket", m->labels, le, cnt) !=
                    0)
                        return -1;
        }
        kb_metrics_fmt_double(sum, num);
        if (put_series(out, fam->name, "_sum", m->labels, NULL, num) != 0 ||
            put_series(out, fam->name, "_count", m->labels, NULL, cnt) != 0)
                return -1;
        return 0;
}

static int render_child(const kb_metric_family_t *fam, const kb_metric_t *m,
                        kb_buf_t *out)
{
        char num[KB_METRICS_DOUBLE_BYTES];
        uint64_t n;
        double f;

        if (fam->type == KB_METRIC_HISTOGRAM)
                return render_histogram(fam, m, out);
        f = kb_metrics_u2d(atomic_load_explicit((_Atomic uint64_t *)&m->bits,
                                                memory_order_relaxed));
        if (fam->type == KB_METRIC_COUNTER) {
                n = atomic_load_explicit((_Atomic uint64_t *)&m->n,
                                         memory_order_relaxed);
                if (f == 0) /* integer counts exactly, even past 2^53 */
                        snprintf(num, sizeof(num), "%" PRIu64, n);
                else
                        kb_metrics_fmt_double((double)n + f, num);
        } else {
                kb_metrics_fmt_double(f, num);
        }
        return put_series(out, fam->name, "", m->labels, NULL, num);
}

static int render_family(kb_metric_family_t *fam, kb_buf_t *out)
{
        static const char *const type_names[] = {
                [KB_METRIC_COUNTER] = "counter",
                [KB_METRIC_GAUGE] = "gauge",
                [KB_METRIC_HISTOGRAM] = "histogram",
        };
        kb_metric_t **snap = NULL;
        size_t i, n;
        int r = KB_ERR_NOMEM;

        if (kb_buf_puts(out, "# HELP ") != 0 ||
            kb_buf_puts(out, fam->name) != 0 || kb_buf_puts(out, " ") != 0 ||
            kb_metrics_escape(out, fam->help, strlen(fam->help), 0) != 0 ||
            kb_buf_printf(out, "\n# TYPE %s %s\n", fam->name,
                          type_names[fam->type]) != 0)
                return KB_ERR_NOMEM;
        if (fam->collect)
                return render_collected(fam, out);

        /* Children are published with release order into an array that
         * never moves: a snapshot needs no lock. */
        n = atomic_load_explicit(&fam->child_cnt, memory_order_acquire);
        if (n == 0)
                return KB_OK;
        if (!(snap = malloc(n * sizeof(*snap))))
                return KB_ERR_NOMEM;
        memcpy(snap, fam->children, n * sizeof(*snap));
        if (n > 1)
                qsort(snap, n, sizeof(*snap), child_cmp);
        for (i = 0; i < n; i++)
                if (render_child(fam, snap[i], out) != 0)
                        goto out;
        r = KB_OK;
out:
        free(snap);
        return r;
}

int kb_metrics_render(kb_metrics_t *reg, kb_buf_t *out)
{
        size_t i, len0;
        int r = KB_OK;

        if (!reg || !out)
                return KB_ERR_INVALID_ARG;
        len0 = out->len;
        pthread_mutex_lock(&reg->lock);
        for (i = 0; i < reg->fam_cnt && r == KB_OK; i++)
                r = render_family(reg->fams[i], out);
        pthread_mutex_unlock(&reg->lock);
        if (r != KB_OK && out->data) {
                out->len = len0;
                out->data[len0] = '\0';
        }
        return r;
}
