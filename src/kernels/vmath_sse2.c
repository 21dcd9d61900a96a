/* The SSE2 (every x86-64) loops of src/kernels/vmath.h (compile flags: none beyond the baseline; see vmath_isa.h). */
#ifdef TG_HAVE_SLEEF
#define VM_D(fn, u) Sleef_##fn##d2_##u##sse2
#define VM_F(fn, u) Sleef_##fn##f4_##u##sse2
#define VM_W_D 2
#define VM_W_F 4
#define VM_LOAD_D _mm_loadu_pd
#define VM_STORE_D _mm_storeu_pd
#define VM_LOAD_F _mm_loadu_ps
#define VM_STORE_F _mm_storeu_ps
#define VM_NAME(f) f##_sse2
#include "vmath_isa.h"
#else
typedef int tg__vmath_sse2_unused; /* ISO C wants a declaration in every file */
#endif
