/* Gradient cases and forward-value tests of the reductions max min logsumexp prod norm var (ops/reduce.c). Included by test_ops.c,
 * after its harness: see the comment above its case table.
 *
 * test_ops.c includes it with TG_TEST_OPS defined: CASES_REDUCE is a list of
 * gradient-case rows, TESTS_REDUCE a list of cmocka_unit_test() entries (each
 * item ending in a comma). test_nonfinite.c includes it with
 * TG_TEST_NONFINITE defined: REFS_REDUCE lists {name, arity, ref} rows for
 * elementwise ops (ref computes the op's definition from libm in double),
 * BUILDS_REDUCE {name, build, expect} rows for the other ops (see that file). */
#ifdef TG_TEST_OPS
#define CASES_REDUCE
#define TESTS_REDUCE
#endif

#ifdef TG_TEST_NONFINITE
#define REFS_REDUCE
#define BUILDS_REDUCE
#endif
