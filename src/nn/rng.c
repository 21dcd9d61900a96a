/*
 * The seeded generator behind initialisers and shuffling: xoshiro256**
 * (Blackman & Vigna), its state filled from the seed by splitmix64. Written
 * from the published recurrences; integer-only, so the sequence of bits is
 * the same on every platform.
 */
#include "tape.h"

#include <math.h>

static uint64_t rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }

static uint64_t splitmix64(uint64_t *x) {
    uint64_t z = (*x += 0x9E3779B97F4A7C15u);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9u;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBu;
    return z ^ (z >> 31);
}

void tg_rng_seed(tg_rng *r, uint64_t seed) {
    if (!r) return;
    for (int i = 0; i < 4; i++) r->s[i] = splitmix64(&seed);
}

uint64_t tg_rng_next(tg_rng *r) {
    uint64_t *s = r->s;
    uint64_t out = rotl(s[1] * 5, 7) * 9, t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 45);
    return out;
}

double tg_rng_uniform(tg_rng *r) { return (double)(tg_rng_next(r) >> 11) * 0x1.0p-53; }

double tg_rng_normal(tg_rng *r) {
    /* 1 - u is in (0, 1], so the log is finite. */
    double u = 1.0 - tg_rng_uniform(r), v = tg_rng_uniform(r);
    return sqrt(-2.0 * log(u)) * cos(6.283185307179586 * v);
}

uint64_t tg_rng_below(tg_rng *r, uint64_t n) {
    if (n == 0) return 0;
    /* Reject the top partial block of 2^64 so every residue is equally likely. */
    uint64_t limit = UINT64_MAX - UINT64_MAX % n, x;
    do x = tg_rng_next(r);
    while (x >= limit);
    return x % n;
}

void tg_rng_shuffle(tg_rng *r, uint32_t *idx, size_t n) {
    if (!r || !idx) return;
    for (size_t i = n; i > 1; i--) {
        size_t j = (size_t)tg_rng_below(r, i);
        uint32_t t = idx[i - 1];
        idx[i - 1] = idx[j];
        idx[j] = t;
    }
}
