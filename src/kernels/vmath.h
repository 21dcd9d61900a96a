/*
 * Vector math for the elementwise kernels (ops/unary.c): y[i] = f(x[i]) for
 * i < n, in float and double, for the functions below. Each call goes to
 * SLEEF's 1-ulp functions (u10; erfc: u15) for the widest vector unit this
 * CPU has (AVX-512F, AVX2+FMA, SSE2), chosen at run time, so the library is
 * built for any x86-64; without SLEEF (or off x86-64) to libm loops. NaN,
 * inf, +-0 and subnormals give what C's libm gives. x and y may be the same
 * array, not otherwise overlap.
 *
 * The level can be forced by the environment variable TG_VMATH (scalar,
 * sse2, avx2, avx512; read once, at the first call) or tg__vmath_set (tests
 * and benchmarks); a level the CPU lacks is never used.
 */
#ifndef TG_VMATH_H
#define TG_VMATH_H

#include <stddef.h>

#define TG_VMATH_FUNCS(X) X(exp) X(log) X(sin) X(cos) X(tan) X(tanh) X(erf) X(erfc) X(log1p) X(expm1)

#define TG_VMATH_DECL(fn)                                                                  \
    void tg__v##fn##_f32(size_t n, const float *x, float *y);                              \
    void tg__v##fn##_f64(size_t n, const double *x, double *y);
TG_VMATH_FUNCS(TG_VMATH_DECL)
#undef TG_VMATH_DECL

/* For the loops that finish a formula around the vector calls (ops/unary.c):
 * compiled for AVX-512F, AVX2 and the baseline, the loader picking one for
 * the CPU (function multiversioning, an ifunc: GCC and clang on Linux).
 * Not under ThreadSanitizer, whose instrumented ifunc resolvers run before
 * its runtime is up and crash at load. */
#if defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define TG_NO_CLONES 1
#endif
#endif
#if defined(__SANITIZE_THREAD__) && !defined(TG_NO_CLONES)
#define TG_NO_CLONES 1
#endif
#if defined(__x86_64__) && defined(__linux__) && !defined(TG_NO_CLONES)
#define TG_VMATH_CLONES __attribute__((target_clones("avx512f", "avx2", "default")))
#else
#define TG_VMATH_CLONES
#endif

/* The levels, in order of preference from the last. */
enum { TG_VMATH_SCALAR, TG_VMATH_SSE2, TG_VMATH_AVX2, TG_VMATH_AVX512, TG_VMATH_LEVELS };

/* Uses level (one of the enum; -1 = the best this CPU has) from now on, for
 * every thread; returns the level in use afterwards, which is lower when the
 * CPU or the build lacks the one asked for. Call it when no kernel runs. */
int tg__vmath_set(int level);
/* The level in use and its name. */
int tg__vmath_level(void);
const char *tg__vmath_name(int level);

#endif
