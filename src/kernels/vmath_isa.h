/*
 * The SLEEF loops of src/kernels/vmath.h for one instruction set, included by
 * vmath_sse2.c, vmath_avx2.c and vmath_avx512.c after they name it:
 * VM_D(fn, u) and VM_F(fn, u) the SLEEF functions of W_D doubles and W_F
 * floats, VM_LOAD_D/VM_STORE_D/VM_LOAD_F/VM_STORE_F the unaligned moves,
 * VM_NAME(f) the suffix of the loops' names. Each including file is compiled
 * with its instruction set enabled (CMakeLists.txt), and vmath.c calls its
 * loops only on a CPU that has it, so the rest of the library stays
 * baseline x86-64.
 */
#include "vmath.h"

#include <immintrin.h>
#include <sleef.h>
#include <string.h>

/* The last W - 1 elements or fewer go through one padded vector (zeros in
 * the padding, whose results are dropped; no exception traps are enabled). */
#define VM_LOOP(T, W, LOAD, STORE, name, sleef)                                            \
    void name(size_t n, const T *x, T *y);                                                 \
    void name(size_t n, const T *x, T *y) {                                                \
        size_t i = 0;                                                                      \
        for (; i + (W) <= n; i += (W)) STORE(y + i, sleef(LOAD(x + i)));                   \
        if (i < n) {                                                                       \
            T a[W] = {0};                                                                  \
            memcpy(a, x + i, (n - i) * sizeof *a);                                         \
            STORE(a, sleef(LOAD(a)));                                                      \
            memcpy(y + i, a, (n - i) * sizeof *a);                                         \
        }                                                                                  \
    }
/* u10: SLEEF's functions with a 1.0-ulp bound (erfc has none; u15 is its
 * most accurate). */
#define VM_FN(fn, u)                                                                       \
    VM_LOOP(double, VM_W_D, VM_LOAD_D, VM_STORE_D, VM_NAME(tg__vm_##fn##_f64), VM_D(fn, u)) \
    VM_LOOP(float, VM_W_F, VM_LOAD_F, VM_STORE_F, VM_NAME(tg__vm_##fn##_f32), VM_F(fn, u))
VM_FN(exp, u10)
VM_FN(log, u10)
VM_FN(sin, u10)
VM_FN(cos, u10)
VM_FN(tan, u10)
VM_FN(tanh, u10)
VM_FN(erf, u10)
VM_FN(erfc, u15)
VM_FN(log1p, u10)
VM_FN(expm1, u10)
