/*
 * One kernel source, both dtypes. A file of kernels is laid out as
 *
 *     #ifndef T
 *     ... includes ...
 *     #include "dtypes.h"      compiles the part below twice
 *     ... op tables, dispatching with TG_ARG_KERNEL(arg, name) ...
 *     #else
 *     ... kernels over a type T, named S(name) ...
 *     #endif
 *
 * This header includes the file being compiled (__BASE_FILE__, gcc and
 * clang) again with T = float, S(f) = f_f32, then T = double, S(f) = f_f64.
 * TG_PASS_F32 is 1 in the float pass, for the rare kernel that needs a
 * dtype-specific helper.
 */
#define T float
#define S(f) f##_f32
#define TG_PASS_F32 1
#include __BASE_FILE__
#undef T
#undef S
#undef TG_PASS_F32
#define T double
#define S(f) f##_f64
#define TG_PASS_F32 0
#include __BASE_FILE__
#undef T
#undef S
#undef TG_PASS_F32
