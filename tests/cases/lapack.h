/* Gradient cases, forward values and registry-walk rows of the linear
 * algebra ops (ops/lapack.c). Included by test_ops.c (TG_TEST_OPS: CASES_LAPACK
 * rows and TESTS_LAPACK entries), test_nonfinite.c and test_agreement.c
 * (TG_TEST_NONFINITE: REFS_LAPACK and BUILDS_LAPACK rows).
 *
 * The ops need valid matrices, so every builder makes one from its free
 * input X: A = X + c I (X's entries in [-1, 1], c = 4 for 3x3: strictly
 * diagonally dominant, so nonsingular, and its symmetric part positive
 * definite). The gradient is checked with respect to X, all of whose
 * entries move: a triangular op's entries outside its triangle must get a
 * zero gradient, cholesky's upper ones the symmetric share. The expected
 * values are worked by hand (2x2 and 3x3 matrices with exact inverses). */
#ifndef TG_TEST_CASES_LAPACK_H
#define TG_TEST_CASES_LAPACK_H

/* c I of x's dtype, shaped to broadcast against x's last two dimensions. */
static tg_node *la_eye(tg_node *x, double c) {
    int64_t shape[TG_MAX_DIMS];
    int nd = tg_shape(x, shape);
    int64_t n = shape[nd - 1], s[2] = {n, n};
    tg_node *e = tg_input(tg_node_tape(x), tg_node_dtype(x), 2, s, NULL);
    for (int64_t i = 0; i < n; i++) {
        if (tg_node_dtype(x) == TG_F64)
            ((double *)tg_value(e))[i * n + i] = c;
        else
            ((float *)tg_value(e))[i * n + i] = (float)c;
    }
    return e;
}
/* X + c I: nonsingular for X's entries in [-1, 1] when c > n - 1. */
static tg_node *la_shift(tg_node *x, double c) { return tg_add(x, la_eye(x, c)); }

#endif

#ifdef TG_TEST_OPS

#define LA_DOM {-1, 1, 0}

/* p selects upper (1) or lower (0) where it matters; the shift is 4. */
static tg_node *b_cholesky(tg_node *const *in, int p) {
    (void)p;
    return tg_cholesky(la_shift(in[0], 4));
}
static tg_node *b_cholesky_solve(tg_node *const *in, int p) {
    (void)p;
    return tg_cholesky_solve(la_shift(in[0], 4), in[1]);
}
static tg_node *b_triangular_solve(tg_node *const *in, int p) {
    return tg_triangular_solve(la_shift(in[0], 4), in[1], p);
}
static tg_node *b_solve(tg_node *const *in, int p) {
    (void)p;
    return tg_solve(la_shift(in[0], 4), in[1]);
}
static tg_node *b_inverse(tg_node *const *in, int p) {
    (void)p;
    return tg_inverse(la_shift(in[0], 4));
}
static tg_node *b_det(tg_node *const *in, int p) {
    (void)p;
    return tg_det(la_shift(in[0], 4));
}
/* p = 1: a negative determinant (X - 4I), which slogdet takes. */
static tg_node *b_slogdet(tg_node *const *in, int p) {
    return tg_slogdet(la_shift(in[0], p ? -4 : 4), NULL);
}
static tg_node *b_logdet(tg_node *const *in, int p) {
    (void)p;
    return tg_logdet(la_shift(in[0], 4));
}

#define LA1(op, p, nd, ...) {#op, b_##op, p, 1, {nd}, {{__VA_ARGS__}}, {LA_DOM}}
#define LA2(op, p, nd, ...) {#op, b_##op, p, 2, {nd, nd}, {__VA_ARGS__}, {LA_DOM, LA_DOM}}
/* Operands of different stacks, broadcast against each other. */
#define LA2B(op, p, nda, ndb, ...) {#op, b_##op, p, 2, {nda, ndb}, {__VA_ARGS__}, {LA_DOM, LA_DOM}}
#define CASES_LAPACK                                                                        \
    LA1(cholesky, 0, 2, 3, 3), LA1(cholesky, 0, 3, 2, 3, 3), LA1(cholesky, 0, 2, 1, 1),       \
    LA2(cholesky_solve, 0, 2, {3, 3}, {3, 2}), LA2(cholesky_solve, 0, 3, {2, 3, 3}, {2, 3, 1}), \
    LA2(triangular_solve, 0, 2, {3, 3}, {3, 2}), LA2(triangular_solve, 1, 2, {3, 3}, {3, 2}),  \
    LA2(triangular_solve, 1, 3, {2, 3, 3}, {2, 3, 1}),                                      \
    LA2(solve, 0, 2, {3, 3}, {3, 2}), LA2(solve, 0, 4, {2, 1, 3, 3}, {2, 1, 3, 1}),          \
    LA1(inverse, 0, 2, 3, 3), LA1(inverse, 0, 3, 2, 3, 3),                                  \
    LA1(det, 0, 2, 3, 3), LA1(det, 0, 3, 2, 3, 3),                                          \
    LA1(slogdet, 0, 2, 3, 3), LA1(slogdet, 1, 2, 3, 3), LA1(slogdet, 0, 3, 2, 3, 3),         \
    LA1(logdet, 0, 2, 3, 3), LA1(logdet, 0, 3, 2, 3, 3),                                  \
    LA2B(solve, 0, 2, 3, {3, 3}, {2, 3, 2}), LA2B(solve, 0, 4, 3, {2, 1, 3, 3}, {3, 3, 1}),   \
    LA2B(triangular_solve, 1, 3, 2, {2, 3, 3}, {3, 2}),                                     \
    LA2B(cholesky_solve, 0, 2, 3, {3, 3}, {2, 3, 2}),

/* Forward values against hand-worked ones, both dtypes. */
static void test_lapack_values(void **state) {
    (void)state;
    tg_tape *t = tg_tape_new();
    for (int d = 0; d < 2; d++) {
        tg_dtype dt = d ? TG_F32 : TG_F64;
        double tol = d ? 1e-6 : 1e-14, r2 = sqrt(2.0);
        /* [[4,2],[2,3]] = L L^T, L = [[2,0],[1,sqrt 2]]. */
        const double spd[] = {4, 2, 2, 3}, l[] = {2, 0, 1, r2};
        expect_values(tg_cholesky(mat(t, dt, 2, 2, spd)), l, 4, tol, "cholesky");
        /* Only the symmetric part counts: [[4,1],[3,3]] has the same one. */
        expect_values(tg_cholesky(mat(t, dt, 2, 2, (const double[]){4, 1, 3, 3})), l, 4, tol,
                      "cholesky of the symmetric part");
        /* (L L^T)^-1 = [[3,-2],[-2,4]] / 8. */
        tg_node *b12 = mat(t, dt, 2, 1, (const double[]){1, 2});
        expect_values(tg_cholesky_solve(mat(t, dt, 2, 2, l), b12),
                      (const double[]){-1.0 / 8, 6.0 / 8}, 2, tol, "cholesky_solve");
        /* The other triangle holds junk that must not be read. */
        expect_values(tg_triangular_solve(mat(t, dt, 2, 2, (const double[]){2, 99, 1, 4}),
                                          mat(t, dt, 2, 1, (const double[]){2, 9}), 0),
                      (const double[]){1, 2}, 2, tol, "triangular_solve lower");
        expect_values(tg_triangular_solve(mat(t, dt, 2, 2, (const double[]){2, 1, 99, 4}),
                                          mat(t, dt, 2, 2, (const double[]){4, 2, 8, 4}), 1),
                      (const double[]){1, 0.5, 2, 1}, 4, tol, "triangular_solve upper");
        /* [[1,2],[3,4]]^-1 = [[-2,1],[1.5,-0.5]] (det -2: LU pivots on row 2). */
        const double a[] = {1, 2, 3, 4};
        expect_values(tg_inverse(mat(t, dt, 2, 2, a)), (const double[]){-2, 1, 1.5, -0.5}, 4, tol,
                      "inverse");
        expect_values(tg_solve(mat(t, dt, 2, 2, a), mat(t, dt, 2, 2, (const double[]){5, 1, 6, 0})),
                      (const double[]){-4, -2, 4.5, 1.5}, 4, tol, "solve");
        expect_values(tg_det(mat(t, dt, 2, 2, a)), (const double[]){-2}, 1, tol, "det");
        /* A cyclic permutation (even, det 1) and a swap (odd, det -1). */
        const double cyc[] = {0, 1, 0, 0, 0, 1, 1, 0, 0}, swp[] = {0, 1, 0, 1, 0, 0, 0, 0, 1};
        expect_values(tg_det(mat(t, dt, 3, 3, cyc)), (const double[]){1}, 1, tol, "det cyclic");
        expect_values(tg_det(mat(t, dt, 3, 3, swp)), (const double[]){-1}, 1, tol, "det swap");
        /* A singular matrix has det 0, a value. */
        tg_node *rank1 = mat(t, dt, 2, 2, (const double[]){1, 2, 2, 4});
        expect_values(tg_det(rank1), (const double[]){0}, 1, tol, "det singular");
        tg_node *sign;
        expect_values(tg_slogdet(mat(t, dt, 2, 2, a), &sign), (const double[]){log(2.0)}, 1, tol,
                      "slogdet");
        expect_values(sign, (const double[]){-1}, 1, 0, "slogdet sign");
        expect_values(tg_logdet(mat(t, dt, 2, 2, spd)), (const double[]){log(8.0)}, 1, tol,
                      "logdet");
        /* A stack: diag(2,3) and [[4,2],[2,3]]: one value per matrix. */
        const int64_t s3[3] = {2, 2, 2};
        tg_node *st = tg_reshape(vec(t, dt, 8, (const double[]){2, 0, 0, 3, 4, 2, 2, 3}), 3, s3);
        expect_values(tg_logdet(st), (const double[]){log(6.0), log(8.0)}, 2, tol, "logdet stack");
        expect_values(tg_det(st), (const double[]){6, 8}, 2, tol, "det stack");
        /* One matrix for a stack of two right-hand sides (broadcast). */
        const int64_t s221[3] = {2, 2, 1};
        tg_node *bs = tg_reshape(vec(t, dt, 4, (const double[]){5, 6, 1, 0}), 3, s221);
        expect_values(tg_solve(mat(t, dt, 2, 2, a), bs), (const double[]){-4, 4.5, -2, 1.5}, 4, tol,
                      "solve broadcast");
        tg_tape_reset(t);
    }
    tg_tape_free(t);
}

#define TESTS_LAPACK cmocka_unit_test(test_lapack_values),

#endif /* TG_TEST_OPS */

#ifdef TG_TEST_NONFINITE
/* A = 4I + tanh(X) / 2 (X filled by the walk): nonsingular, with a positive
 * definite symmetric part, for any finite X; NaN where X is. Right-hand
 * sides are tanh(X) too: the special values test NaN's propagation here,
 * not overflow of a solution near the largest float. */
static tg_node *la_filled(tg_tape *t, tg_dtype dt, int nd, const int64_t *shape, double fill) {
    tg_node *x = tg_scale(tg_tanh(filled(t, dt, nd, shape, fill)), 0.5);
    return la_shift(x, 4);
}
static tg_node *la_rhs(tg_tape *t, tg_dtype dt, double fill) {
    return tg_tanh(filled(t, dt, 2, (const int64_t[]){3, 2}, fill));
}
static const int64_t la_s33[2] = {3, 3}, la_s233[3] = {2, 3, 3};
static tg_node *build_cholesky(tg_tape *t, tg_dtype dt, double fill) {
    return tg_cholesky(la_filled(t, dt, 2, la_s33, fill));
}
static tg_node *build_cholesky_solve(tg_tape *t, tg_dtype dt, double fill) {
    return tg_cholesky_solve(la_filled(t, dt, 2, la_s33, fill), la_rhs(t, dt, fill));
}
static tg_node *build_triangular_solve(tg_tape *t, tg_dtype dt, double fill) {
    return tg_triangular_solve(la_filled(t, dt, 2, la_s33, fill), la_rhs(t, dt, fill), 1);
}
static tg_node *build_solve(tg_tape *t, tg_dtype dt, double fill) {
    return tg_solve(la_filled(t, dt, 2, la_s33, fill), la_rhs(t, dt, fill));
}
static tg_node *build_inverse(tg_tape *t, tg_dtype dt, double fill) {
    return tg_inverse(la_filled(t, dt, 2, la_s33, fill));
}
static tg_node *build_det(tg_tape *t, tg_dtype dt, double fill) {
    return tg_det(la_filled(t, dt, 3, la_s233, fill));
}
static tg_node *build_slogdet(tg_tape *t, tg_dtype dt, double fill) {
    return tg_slogdet(la_filled(t, dt, 2, la_s33, fill), NULL);
}
static tg_node *build_logdet(tg_tape *t, tg_dtype dt, double fill) {
    return tg_logdet(la_filled(t, dt, 3, la_s233, fill));
}
#define REFS_LAPACK
#define BUILDS_LAPACK                                                                      \
    {"cholesky", build_cholesky, NF_ALL}, {"cholesky_solve", build_cholesky_solve, NF_ALL}, \
        {"triangular_solve", build_triangular_solve, NF_ALL}, {"solve", build_solve, NF_ALL}, \
        {"inverse", build_inverse, NF_ALL}, {"det", build_det, NF_ALL},                     \
        {"slogdet", build_slogdet, NF_ALL}, {"logdet", build_logdet, NF_ALL},
#endif
