/* Gradient cases and forward-value tests of the shape and indexing ops (ops/shape.c) and batched matmul (ops/linalg.c). Included by test_ops.c,
 * after its harness: see the comment above its case table.
 *
 * test_ops.c includes it with TG_TEST_OPS defined: CASES_SHAPE is a list of
 * gradient-case rows, TESTS_SHAPE a list of cmocka_unit_test() entries (each
 * item ending in a comma). test_nonfinite.c includes it with
 * TG_TEST_NONFINITE defined: REFS_SHAPE lists {name, arity, ref} rows for
 * elementwise ops (ref computes the op's definition from libm in double),
 * BUILDS_SHAPE {name, build, expect} rows for the other ops (see that file). */
#ifdef TG_TEST_OPS
#define CASES_SHAPE
#define TESTS_SHAPE
#endif

#ifdef TG_TEST_NONFINITE
#define REFS_SHAPE
#define BUILDS_SHAPE
#endif
