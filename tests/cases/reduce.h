/* Gradient cases and forward-value tests of the reductions max min logsumexp prod norm var (ops/reduce.c). Included by test_ops.c,
 * after its harness: see the comment above its case table. */
#define CASES_REDUCE
#define TESTS_REDUCE
