/* Gradient cases and forward-value tests of the activations (ops/activation.c) and losses (ops/loss.c) for training. Included by test_ops.c,
 * after its harness: see the comment above its case table.
 *
 * test_ops.c includes it with TG_TEST_OPS defined: CASES_TRAINING is a list of
 * gradient-case rows, TESTS_TRAINING a list of cmocka_unit_test() entries (each
 * item ending in a comma). test_nonfinite.c includes it with
 * TG_TEST_NONFINITE defined: REFS_TRAINING lists {name, arity, ref} rows for
 * elementwise ops (ref computes the op's definition from libm in double),
 * BUILDS_TRAINING {name, build, expect} rows for the other ops (see that file). */
#ifdef TG_TEST_OPS
#define CASES_TRAINING
#define TESTS_TRAINING
#endif

#ifdef TG_TEST_NONFINITE
#define REFS_TRAINING
#define BUILDS_TRAINING
#endif
