/* Gradient cases and forward-value tests of the two-input math ops (ops/binary.c), comparisons (ops/compare.c), where and clamp (ops/select.c). Included by test_ops.c,
 * after its harness: see the comment above its case table.
 *
 * test_ops.c includes it with TG_TEST_OPS defined: CASES_SELECT is a list of
 * gradient-case rows, TESTS_SELECT a list of cmocka_unit_test() entries (each
 * item ending in a comma). test_nonfinite.c includes it with
 * TG_TEST_NONFINITE defined: REFS_SELECT lists {name, arity, ref} rows for
 * elementwise ops (ref computes the op's definition from libm in double),
 * BUILDS_SELECT {name, build, expect} rows for the other ops (see that file). */
#ifdef TG_TEST_OPS
#define CASES_SELECT
#define TESTS_SELECT
#endif

#ifdef TG_TEST_NONFINITE
#define REFS_SELECT
#define BUILDS_SELECT
#endif
