/* bench_stats.h -- timing and the median/p99 line the micro benchmarks
 * print (bench/bench.py reads "NAME median X us") */
#ifndef KB_BENCH_STATS_H
#define KB_BENCH_STATS_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

static inline int64_t bench_now_ns(void)
{
        struct timespec ts;

        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static inline int bench_cmp_i64(const void *a, const void *b)
{
        int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;

        return x < y ? -1 : x > y;
}

/* Sorts the @p n durations @p ns and prints what, median, p99, ops/s. */
static inline void bench_report(const char *what, int64_t *ns, long n)
{
        qsort(ns, (size_t)n, sizeof(*ns), bench_cmp_i64);
        printf("%-16s median %7.1f us   p99 %7.1f us   %8.0f ops/s\n", what,
               (double)ns[n / 2] / 1000.0, (double)ns[n * 99 / 100] / 1000.0,
               1e9 / (double)ns[n / 2]);
}

#endif /* KB_BENCH_STATS_H */
