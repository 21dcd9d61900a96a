/* The AVX-512F loops of src/kernels/vmath.h (compile flags: -mavx512f; see vmath_isa.h). */
#ifdef TG_HAVE_SLEEF
#define VM_D(fn, u) Sleef_##fn##d8_##u##avx512f
#define VM_F(fn, u) Sleef_##fn##f16_##u##avx512f
#define VM_W_D 8
#define VM_W_F 16
#define VM_LOAD_D _mm512_loadu_pd
#define VM_STORE_D _mm512_storeu_pd
#define VM_LOAD_F _mm512_loadu_ps
#define VM_STORE_F _mm512_storeu_ps
#define VM_NAME(f) f##_avx512
#include "vmath_isa.h"
#else
typedef int tg__vmath_avx512_unused; /* ISO C wants a declaration in every file */
#endif
