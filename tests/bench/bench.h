/*
 * What every benchmark program times with: a monotonic clock, the median of
 * a run of timings, and the xorshift64* stream their random data come from
 * (each program keeps its own seed, so its data stay what they were).
 */
#ifndef TG_BENCH_H
#define TG_BENCH_H

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* Seconds on the monotonic clock. */
static inline double bench_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static inline int bench_cmp(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* The median of v[0..k) (the mean of the two middle values when k is even);
 * v is left as it was. Returns NaN when out of memory. */
static inline double bench_median(const double *v, int k) {
    double *s = malloc((size_t)k * sizeof *s), m;
    if (!s) return NAN;
    memcpy(s, v, (size_t)k * sizeof *s);
    qsort(s, (size_t)k, sizeof *s, bench_cmp);
    m = k % 2 ? s[k / 2] : 0.5 * (s[k / 2 - 1] + s[k / 2]);
    free(s);
    return m;
}

/* The next 64 bits of the xorshift64* stream whose state is *s (nonzero). */
static inline unsigned long long bench_next(unsigned long long *s) {
    *s ^= *s >> 12, *s ^= *s << 25, *s ^= *s >> 27;
    return *s * 2685821657736338717ULL;
}

#endif
