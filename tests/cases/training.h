/* Gradient cases and forward-value tests of the activations (ops/activation.c) and losses (ops/loss.c) for training. Included by test_ops.c,
 * after its harness: see the comment above its case table. */
#define CASES_TRAINING
#define TESTS_TRAINING
