/* Gradient cases and forward-value tests of the shape and indexing ops (ops/shape.c) and batched matmul (ops/linalg.c). Included by test_ops.c,
 * after its harness: see the comment above its case table. */
#define CASES_SHAPE
#define TESTS_SHAPE
