/* Gradient cases and forward-value tests of the elementwise math ops of one input (ops/unary.c). Included by test_ops.c,
 * after its harness: see the comment above its case table.
 *
 * test_ops.c includes it with TG_TEST_OPS defined: CASES_MATH is a list of
 * gradient-case rows, TESTS_MATH a list of cmocka_unit_test() entries (each
 * item ending in a comma). test_nonfinite.c includes it with
 * TG_TEST_NONFINITE defined: REFS_MATH lists {name, arity, ref} rows for
 * elementwise ops (ref computes the op's definition from libm in double),
 * BUILDS_MATH {name, build, expect} rows for the other ops (see that file). */
#ifdef TG_TEST_OPS
#define CASES_MATH
#define TESTS_MATH
#endif

#ifdef TG_TEST_NONFINITE
#define REFS_MATH
#define BUILDS_MATH
#endif
