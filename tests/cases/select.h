/* Gradient cases and forward-value tests of the two-input math ops (ops/binary.c), comparisons (ops/compare.c), where and clamp (ops/select.c). Included by test_ops.c,
 * after its harness: see the comment above its case table. */
#define CASES_SELECT
#define TESTS_SELECT
