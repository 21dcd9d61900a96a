/* The AVX2 and FMA loops of src/kernels/vmath.h (compile flags: -mavx2 -mfma; see vmath_isa.h). */
#ifdef TG_HAVE_SLEEF
#define VM_D(fn, u) Sleef_##fn##d4_##u##avx2
#define VM_F(fn, u) Sleef_##fn##f8_##u##avx2
#define VM_W_D 4
#define VM_W_F 8
#define VM_LOAD_D _mm256_loadu_pd
#define VM_STORE_D _mm256_storeu_pd
#define VM_LOAD_F _mm256_loadu_ps
#define VM_STORE_F _mm256_storeu_ps
#define VM_NAME(f) f##_avx2
#include "vmath_isa.h"
#else
typedef int tg__vmath_avx2_unused; /* ISO C wants a declaration in every file */
#endif
