/*
 * One kernel source, both dtypes. A file of kernels is laid out as
 *
 *     #ifndef T
 *     ... includes ...
 *     #include "dtypes.h"      compiles the part below twice
 *     ... op tables, dispatching with TG_KERNEL(node, name) ...
 *     #else
 *     ... kernels over a type T, named S(name) ...
 *     #endif
 *
 * This header includes the file being compiled (__BASE_FILE__, gcc and
 * clang) again with T = float, S(f) = f_f32, then T = double, S(f) = f_f64.
 */
#define T float
#define S(f) f##_f32
#include __BASE_FILE__
#undef T
#undef S
#define T double
#define S(f) f##_f64
#include __BASE_FILE__
#undef T
#undef S
