/* Gradient cases and forward-value tests of the elementwise math ops of one input (ops/unary.c). Included by test_ops.c,
 * after its harness: see the comment above its case table. */
#define CASES_MATH
#define TESTS_MATH
