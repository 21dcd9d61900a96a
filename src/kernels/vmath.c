/*
 * The dispatch of src/kernels/vmath.h: one table row per function, indexed by the
 * level in use, and the portable loops of the scalar level (libm, except
 * float exp: see below). The SLEEF loops are in vmath_isa.h.
 */
#ifndef T
#include "vmath.h"

#include <float.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <tgmath.h>

#include "dtypes.h"

#ifdef TG_HAVE_SLEEF
#define ISA_DECL(fn, dt, ty)                                                               \
    void tg__vm_##fn##_##dt##_sse2(size_t, const ty *, ty *);                              \
    void tg__vm_##fn##_##dt##_avx2(size_t, const ty *, ty *);                              \
    void tg__vm_##fn##_##dt##_avx512(size_t, const ty *, ty *);
#define ISA_ROW(fn, dt) , tg__vm_##fn##_##dt##_sse2, tg__vm_##fn##_##dt##_avx2, tg__vm_##fn##_##dt##_avx512
#else
#define ISA_DECL(fn, dt, ty)
#define ISA_ROW(fn, dt)
#endif

static const char *const level_names[TG_VMATH_LEVELS] = {"scalar", "sse2", "avx2", "avx512"};

static int best_level(void) {
#ifdef TG_HAVE_SLEEF
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx512f")) return TG_VMATH_AVX512;
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) return TG_VMATH_AVX2;
    return TG_VMATH_SSE2;
#else
    return TG_VMATH_SCALAR;
#endif
}

/* -1 until the first call decides; threads racing there store the same. */
static atomic_int level_in_use = -1;

int tg__vmath_set(int level) {
    int best = best_level();
    if (level < 0 || level > best) level = best;
    atomic_store_explicit(&level_in_use, level, memory_order_relaxed);
    return level;
}

int tg__vmath_level(void) {
    int level = atomic_load_explicit(&level_in_use, memory_order_relaxed);
    if (level >= 0) return level;
    const char *env = getenv("TG_VMATH");
    level = -1;
    for (int i = 0; env && i < TG_VMATH_LEVELS; i++)
        if (!strcmp(env, level_names[i])) level = i;
    return tg__vmath_set(level);
}

const char *tg__vmath_name(int level) {
    return level >= 0 && level < TG_VMATH_LEVELS ? level_names[level] : "?";
}

/* SLEEF's tan and log1p give 0 for the smallest subnormal (where both are
 * x), and its log1p overflows from 2^1020 (float: 2^127) on; elements
 * outside [lo, hi] in magnitude (and NaN) are sent to libm after the vector
 * call, so that every level gives what libm gives there. */
#define RANGE_exp(dt) 0, 0
#define RANGE_log(dt) 0, 0
#define RANGE_sin(dt) 0, 0
#define RANGE_cos(dt) 0, 0
#define RANGE_tan(dt) TINY_##dt, INFINITY
#define RANGE_tanh(dt) 0, 0
#define RANGE_erf(dt) 0, 0
#define RANGE_erfc(dt) 0, 0
#define RANGE_log1p(dt) TINY_##dt, HUGE_##dt
#define RANGE_expm1(dt) 0, 0
#define TINY_f32 FLT_MIN
#define TINY_f64 DBL_MIN
#define HUGE_f32 0x1p120f
#define HUGE_f64 0x1p1000

#define DISPATCH(fn)                                                                       \
    ISA_DECL(fn, f32, float)                                                               \
    ISA_DECL(fn, f64, double)                                                              \
    void tg__v##fn##_f32(size_t n, const float *x, float *y) {                             \
        static void (*const row[])(size_t, const float *, float *) = {scalar_##fn##_f32 ISA_ROW(fn, f32)}; \
        int level = tg__vmath_level();                                                     \
        ranged_f32(level ? row[level] : NULL, scalar_##fn##_f32, RANGE_##fn(f32), n, x, y); \
    }                                                                                      \
    void tg__v##fn##_f64(size_t n, const double *x, double *y) {                           \
        static void (*const row[])(size_t, const double *, double *) = {scalar_##fn##_f64 ISA_ROW(fn, f64)}; \
        int level = tg__vmath_level();                                                     \
        ranged_f64(level ? row[level] : NULL, scalar_##fn##_f64, RANGE_##fn(f64), n, x, y); \
    }
TG_VMATH_FUNCS(DISPATCH)

#else /* the scalar loops, once per dtype */

#define SCALAR(fn)                                                                         \
    static void S(scalar_##fn)(size_t n, const T *x, T *y) {                               \
        for (size_t i = 0; i < n; i++) y[i] = fn(x[i]);                                    \
    }
SCALAR(log)
SCALAR(sin)
SCALAR(cos)
SCALAR(tan)
SCALAR(tanh)
SCALAR(erf)
SCALAR(erfc)
SCALAR(log1p)
SCALAR(expm1)

/* vec (NULL at the scalar level) over x, then libm over the elements whose
 * magnitude is outside [lo, hi] (none when hi = 0): in blocks, from a copy,
 * since y may be x. */
static void S(ranged)(void (*vec)(size_t, const T *, T *), void (*libm)(size_t, const T *, T *),
                      T lo, T hi, size_t n, const T *x, T *y) {
    if (!vec || hi == 0) {
        (vec ? vec : libm)(n, x, y);
        return;
    }
    T c[256];
    for (size_t i0 = 0; i0 < n; i0 += 256) {
        size_t m = n - i0 < 256 ? n - i0 : 256;
        memcpy(c, x + i0, m * sizeof *c);
        vec(m, c, y + i0);
        for (size_t i = 0; i < m; i++)
            if (!(fabs(c[i]) >= lo && fabs(c[i]) <= hi)) libm(1, c + i, y + i0 + i);
    }
}

#if TG_PASS_F32
/* e^x in float, written so that the loop vectorises (glibc's expf is a
 * scalar call; sigmoid, silu and softplus lean on it): t = k ln2 + r with
 * |r| <= ln2/2, e^r by its degree-7 Taylor polynomial (error < 6e-9), and
 * 2^k from exponent bits in two halves, so that results below 2^-126 round
 * once into subnormals and those above FLT_MAX overflow to inf. */
static inline float exp_f32(float x) {
    /* e^-104 rounds to 0 and e^89 to inf; NaN lands on -104 */
    float t = x > -104.0f ? (x < 89.0f ? x : 89.0f) : -104.0f;
    float kf = (t * 1.44269504f + 12582912.0f) - 12582912.0f; /* round(t / ln 2) */
    float r = (t - kf * 0.693145752f) - kf * 1.42860677e-6f;  /* ln 2 in two parts */
    float p = 1.0f + r * (1.0f + r * (0.5f + r * (1.0f / 6 + r * (1.0f / 24 +
                         r * (1.0f / 120 + r * (1.0f / 720 + r * (1.0f / 5040)))))));
    int32_t k = (int32_t)kf, k1 = k / 2;
    uint32_t b1 = (uint32_t)(k1 + 127) << 23, b2 = (uint32_t)(k - k1 + 127) << 23;
    float s1, s2;
    memcpy(&s1, &b1, sizeof s1);
    memcpy(&s2, &b2, sizeof s2);
    /* The clamp sent NaN to -104 (a NaN kf would make the int conversion
     * undefined); this select gives it back and, being a select, keeps the
     * loop vectorised. */
    return x == x ? p * s1 * s2 : x;
}
static void scalar_exp_f32(size_t n, const float *x, float *y) {
    for (size_t i = 0; i < n; i++) y[i] = exp_f32(x[i]);
}
#else
SCALAR(exp)
#endif

#endif
