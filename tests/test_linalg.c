/*
 * The linear algebra ops of ops/lapack.c, two uses:
 *
 *   test_linalg          (ctest "linalg") refusals: every op given a singular
 *                        or indefinite matrix sets TG_ERR_SINGULAR with a
 *                        message naming the op and the pivot or leading
 *                        minor (and the matrix of a stack), its value NaN,
 *                        when recording, on replay (tg_forward) and, for
 *                        det's gradient, in tg_backward; shapes refused.
 *   test_linalg --dump   prints random cases for tests/linalg_ref.py, which
 *                        recomputes them in PyTorch float64
 *                        (tests/test_linalg_torch.sh).
 *
 * (Finite differences and second derivatives of every op are in test_ops.c,
 * the agreement of tg_backward, tg_grad and tg_jvp in test_agreement.c.)
 *
 * A dumped case is one op on float64 matrices of a chosen condition number
 * (1 to 1e8): A = Q1 diag(s) Q2^T with Q1, Q2 random orthogonal (modified
 * Gram-Schmidt of Gaussian matrices) and s log-spaced from 1 to 1/cond
 * (for the solves also one matrix shared by a stack of right-hand sides);
 * symmetric positive definite (Q diag(s) Q^T, made exactly symmetric) for
 * cholesky and logdet; a factor of such a matrix for the triangular ones.
 * The text, one item a line, values %.17g:
 *   case ID OP UPPER COND     OP's name; UPPER for triangular_solve
 *   a NDIM DIMS... VALUES...  the matrix (stack)
 *   b NDIM DIMS... VALUES...  the right-hand side (solves only)
 *   w VALUES...               weights: the scalar is f = sum(w * OP(a, b))
 *   va VALUES... / vb ...     a direction for a (and b)
 *   value ... grad_a ... grad_b ...   tapegrad's OP(a, b) and f's gradient
 *   jvp ...                   tg_jvp of OP(a, b) along (va, vb)
 *   hvp_a ... hvp_b ...       tg_hvp of f along (va, vb)
 */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include <tapegrad.h>

/* ------------------------------------------------------------ refusals -- */

static tg_node *mat(tg_tape *t, int nd, const int64_t *shape, const double *v) {
    return tg_tensor(t, TG_F64, nd, shape, v);
}

/* The status is TG_ERR_SINGULAR (or code), the message contains want, and
 * every element of y (when given) is NaN. Resets the tape. */
static void expect_refused(tg_tape *t, tg_node *y, int code, const char *want) {
    const char *msg = tg_status_message(t);
    if (tg_status(t) != code || !strstr(msg, want))
        fail_msg("status %s \"%s\"; want %s containing \"%s\"", tg_status_name(tg_status(t)), msg,
                 tg_status_name(code), want);
    for (int64_t i = 0; y && i < tg_numel(y); i++)
        if (!isnan(tg_value_at(y, i)))
            fail_msg("%s: element %lld is %g, not NaN", want, (long long)i, tg_value_at(y, i));
    tg_tape_reset(t);
}

static const int64_t s22[2] = {2, 2}, s21[2] = {2, 1}, s33[2] = {3, 3}, s31[2] = {3, 1};

static void test_singular_refused(void **state) {
    (void)state;
    tg_tape *t = tg_tape_new();
    /* Rank 1: LU's second pivot is exactly 0. */
    const double sing[] = {1, 2, 2, 4}, b[] = {1, 1};
    /* Symmetric, indefinite: the leading minor of order 2 is 1*1 - 3*3 < 0. */
    const double indef[] = {1, 3, 0, 3, 1, 0, 0, 0, 1};
    /* Lower triangular with a zero at [1,1]. */
    const double tri0[] = {2, 0, 1, 0};
    struct {
        const char *want;
        int which;
    } cases[] = {
        {"cholesky: [3,3] is not positive definite: its leading minor of order 2 is not "
         "positive",
         0},
        {"solve: [2,2] is singular: pivot 2 of its LU factorization (partial pivoting) is 0", 1},
        {"inverse: [2,2] is singular: pivot 2 of its LU factorization", 2},
        {"slogdet: [2,2] is singular: pivot 2", 3},
        {"logdet: [2,2] is singular: pivot 2", 4},
        {"triangular_solve: [2,2] is singular: its diagonal element [1,1] is 0", 5},
        {"cholesky_solve: [2,2] is singular: its diagonal element [1,1] is 0", 6},
        {"logdet: [2,2] has a negative determinant", 7},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        tg_node *y = NULL;
        switch (cases[i].which) {
        case 0: y = tg_cholesky(mat(t, 2, s33, indef)); break;
        case 1: y = tg_solve(mat(t, 2, s22, sing), mat(t, 2, s21, b)); break;
        case 2: y = tg_inverse(mat(t, 2, s22, sing)); break;
        case 3: y = tg_slogdet(mat(t, 2, s22, sing), NULL); break;
        case 4: y = tg_logdet(mat(t, 2, s22, sing)); break;
        case 5: y = tg_triangular_solve(mat(t, 2, s22, tri0), mat(t, 2, s21, b), 0); break;
        case 6: y = tg_cholesky_solve(mat(t, 2, s22, tri0), mat(t, 2, s21, b)); break;
        case 7: y = tg_logdet(mat(t, 2, s22, (const double[]){1, 2, 3, 4})); break;
        }
        expect_refused(t, y, TG_ERR_SINGULAR, cases[i].want);
    }
    /* Upper triangular_solve reads the upper triangle: [[2,5],[0,0]]. */
    tg_node *y = tg_triangular_solve(mat(t, 2, s22, (const double[]){2, 5, 7, 0}),
                                     mat(t, 2, s21, b), 1);
    expect_refused(t, y, TG_ERR_SINGULAR, "its diagonal element [1,1] is 0");
    /* Not positive definite at the first minor: a negative diagonal. */
    y = tg_cholesky(mat(t, 2, s22, (const double[]){-1, 0, 0, 1}));
    expect_refused(t, y, TG_ERR_SINGULAR, "leading minor of order 1 is not positive");
    /* In a stack, the matrix is named; every result is NaN. */
    const int64_t s322[3] = {3, 2, 2};
    y = tg_inverse(mat(t, 3, s322, (const double[]){1, 0, 0, 1, 2, 0, 0, 2, 1, 2, 2, 4}));
    expect_refused(t, y, TG_ERR_SINGULAR, "inverse: matrix 2 of [3,2,2] is singular: pivot 2");
    /* det of a singular matrix is 0, a value; its gradient needs A^-1. */
    tg_node *a = mat(t, 2, s22, sing);
    y = tg_det(a);
    assert_int_equal(tg_status(t), TG_OK);
    assert_true(tg_value_scalar(y) == 0);
    assert_int_equal(tg_backward(y), TG_ERR_SINGULAR);
    expect_refused(t, NULL, TG_ERR_SINGULAR, "inverse: [2,2] is singular");
    tg_tape_free(t);
}

/* Replay: a matrix that becomes singular after recording is refused by
 * tg_forward(), never silently turned into NaN or inf. */
static void test_replay_refused(void **state) {
    (void)state;
    tg_tape *t = tg_tape_new();
    tg_node *a = tg_input(t, TG_F64, 2, s22, (const double[]){2, 1, 1, 2});
    tg_node *x = tg_solve(a, mat(t, 2, s21, (const double[]){3, 3}));
    assert_int_equal(tg_status(t), TG_OK);
    assert_true(fabs(tg_value_at(x, 0) - 1) < 1e-15 && fabs(tg_value_at(x, 1) - 1) < 1e-15);
    double *v = tg_value(a);
    v[0] = 1, v[1] = 1, v[2] = 1, v[3] = 1;
    assert_int_equal(tg_forward(t), TG_ERR_SINGULAR);
    expect_refused(t, x, TG_ERR_SINGULAR, "solve: [2,2] is singular: pivot 2");
    tg_tape_free(t);
}

static void test_shapes_refused(void **state) {
    (void)state;
    tg_tape *t = tg_tape_new();
    const int64_t s23[2] = {2, 3}, s3[1] = {3};
    double z[18] = {0}; /* room for the largest, [2,3,3] */
    expect_refused(t, NULL, TG_OK, ""); /* a clean start */
    tg_cholesky(mat(t, 2, s23, z));
    expect_refused(t, NULL, TG_ERR_SHAPE, "cholesky: [2,3]: needs a square matrix");
    tg_det(mat(t, 1, s3, z));
    expect_refused(t, NULL, TG_ERR_SHAPE, "det: [3]: needs a square matrix");
    tg_solve(mat(t, 2, s33, z), mat(t, 2, s21, z));
    expect_refused(t, NULL, TG_ERR_SHAPE, "solve: [3,3] and [2,1]: the right-hand side must be");
    tg_solve(mat(t, 2, s33, z), mat(t, 1, s3, z));
    expect_refused(t, NULL, TG_ERR_SHAPE, "(a vector b: reshape it to [n,1])");
    const int64_t s233[3] = {2, 3, 3}, s331[3] = {3, 3, 1};
    tg_triangular_solve(mat(t, 3, s233, z), mat(t, 3, s331, z), 0);
    expect_refused(t, NULL, TG_ERR_SHAPE,
                   "triangular_solve: [2,3,3] and [3,3,1]: stack dimension -3 differs (2 vs 3)");
    tg_solve(mat(t, 2, s33, z), tg_tensor(t, TG_F32, 2, s31, NULL));
    expect_refused(t, NULL, TG_ERR_DTYPE, "solve: float64 [3,3] and float32 [3,1]: dtypes differ");
    tg_tape_free(t);
}

/* NaN or inf in a matrix: NaN throughout its result, no error (as every op
 * passes NaN on); the other matrices of a stack are unaffected. */
static void test_nonfinite_passes(void **state) {
    (void)state;
    tg_tape *t = tg_tape_new();
    const int64_t s222[3] = {2, 2, 2};
    tg_node *y = tg_inverse(mat(t, 3, s222, (const double[]){2, 0, 0, 4, 1, INFINITY, 0, 1}));
    assert_int_equal(tg_status(t), TG_OK);
    assert_true(tg_value_at(y, 0) == 0.5 && tg_value_at(y, 3) == 0.25);
    for (int i = 4; i < 8; i++) assert_true(isnan(tg_value_at(y, i)));
    tg_tape_free(t);
}

/* slogdet's sign is a value without derivative: d(sign * log|det A|)/dA is
 * sign * A^-T, worked by hand for A = [[1,2],[3,4]] (det -2, A^-1 =
 * [[-2,1],[1.5,-0.5]]), three ways. */
static void test_slogdet_sign(void **state) {
    (void)state;
    tg_tape *t = tg_tape_new();
    tg_node *a = mat(t, 2, s22, (const double[]){1, 2, 3, 4}), *sign, *g, *jv;
    tg_node *logabs = tg_slogdet(a, &sign), *f = tg_mul(logabs, sign);
    assert_true(tg_value_scalar(sign) == -1);
    const double want[4] = {2, -1.5, -1, 0.5}, dir[4] = {1, 0, 0, 0};
    assert_int_equal(tg_backward(f), TG_OK);
    assert_int_equal(tg_grad_nodes(f, 1, &a, &g), TG_OK);
    tg_node *v = tg_input(t, TG_F64, 2, s22, dir);
    assert_int_equal(tg_jvp(f, 1, &a, &v, &jv), TG_OK);
    for (int i = 0; i < 4; i++) {
        assert_true(fabs(tg_grad_at(a, i) - want[i]) < 1e-15);
        assert_true(fabs(tg_value_at(g, i) - want[i]) < 1e-15);
    }
    assert_true(fabs(tg_value_scalar(jv) - want[0]) < 1e-15);
    tg_tape_free(t);
}

/* ------------------------------------------------------------- the dump -- */

static tg_rng rng;

/* A random orthogonal n x n matrix (row-major into q). */
static void orthogonal(int n, double *q) {
    for (int i = 0; i < n * n; i++) q[i] = tg_rng_normal(&rng);
    for (int j = 0; j < n; j++) { /* columns, modified Gram-Schmidt, twice */
        for (int pass = 0; pass < 2; pass++)
            for (int p = 0; p < j; p++) {
                double d = 0;
                for (int i = 0; i < n; i++) d += q[i * n + p] * q[i * n + j];
                for (int i = 0; i < n; i++) q[i * n + j] -= d * q[i * n + p];
            }
        double s = 0;
        for (int i = 0; i < n; i++) s += q[i * n + j] * q[i * n + j];
        for (int i = 0; i < n; i++) q[i * n + j] /= sqrt(s);
    }
}

/* A = Q1 diag(s) Q2^T, s from 1 down to 1/cond; spd: Q2 = Q1, symmetrised. */
static void conditioned(int n, double cond, int spd, double *a) {
    double q1[64], q2[64], s[8];
    orthogonal(n, q1);
    if (spd)
        memcpy(q2, q1, sizeof q1);
    else
        orthogonal(n, q2);
    for (int i = 0; i < n; i++) s[i] = n == 1 ? 1 / sqrt(cond) : pow(cond, -(double)i / (n - 1));
    for (int i = 0; i < n; i++)
        for (int j = 0; j < n; j++) {
            double v = 0;
            for (int p = 0; p < n; p++) v += q1[i * n + p] * s[p] * q2[j * n + p];
            a[i * n + j] = v;
        }
    for (int i = 0; spd && i < n; i++)
        for (int j = 0; j < i; j++) a[j * n + i] = a[i * n + j];
}

enum { OP_CHOL, OP_CHOLSOLVE, OP_TRI, OP_SOLVE, OP_INV, OP_DET, OP_SLOGDET, OP_LOGDET, NOPS };
static const char *const op_names[NOPS] = {"cholesky", "cholesky_solve", "triangular_solve",
                                           "solve", "inverse", "det", "slogdet", "logdet"};
static const int op_has_b[NOPS] = {0, 1, 1, 1, 0, 0, 0, 0};
/* Which matrices the op takes: 0 general, 1 symmetric positive definite,
 * 2 triangular (the Cholesky factor of an SPD matrix of cond^2, so of
 * condition about cond). */
static const int op_kind[NOPS] = {1, 2, 2, 0, 0, 0, 0, 1};

static void print_values(const char *tag, const tg_node *x) {
    printf("%s", tag);
    for (int64_t i = 0; i < tg_numel(x); i++) printf(" %.17g", tg_value_at(x, i));
    printf("\n");
}
static void print_leaf(const char *tag, const tg_node *x) {
    int64_t shape[TG_MAX_DIMS];
    int nd = tg_shape(x, shape);
    printf("%s %d", tag, nd);
    for (int i = 0; i < nd; i++) printf(" %lld", (long long)shape[i]);
    for (int64_t i = 0; i < tg_numel(x); i++) printf(" %.17g", tg_value_at(x, i));
    printf("\n");
}
static void print_grad(const char *tag, const tg_node *x) {
    printf("%s", tag);
    for (int64_t i = 0; i < tg_numel(x); i++) printf(" %.17g", tg_grad_at(x, i));
    printf("\n");
}

static tg_node *random_like(tg_tape *t, const tg_node *x, int wants_grad) {
    int64_t shape[TG_MAX_DIMS];
    int nd = tg_shape(x, shape);
    tg_node *v = (wants_grad ? tg_tensor : tg_input)(t, TG_F64, nd, shape, NULL);
    for (int64_t i = 0; i < tg_numel(v); i++) ((double *)tg_value(v))[i] = tg_rng_normal(&rng);
    return v;
}

static tg_node *apply_op(int op, int upper, tg_node *a, tg_node *b) {
    switch (op) {
    case OP_CHOL: return tg_cholesky(a);
    case OP_CHOLSOLVE: return tg_cholesky_solve(a, b);
    case OP_TRI: return tg_triangular_solve(a, b, upper);
    case OP_SOLVE: return tg_solve(a, b);
    case OP_INV: return tg_inverse(a);
    case OP_DET: return tg_det(a);
    case OP_SLOGDET: return tg_slogdet(a, NULL);
    default: return tg_logdet(a);
    }
}

/* One case: returns 0, or the tape's status. shared: one matrix for the
 * stack of right-hand sides (broadcast). */
static int dump_case(int id, int op, int n, int batch, int k, int shared, double cond) {
    tg_tape *t = tg_tape_new();
    int upper = op == OP_TRI && (id & 1), abatch = shared ? 1 : batch;
    int64_t sa[3] = {abatch, n, n}, sb[3] = {batch, n, k};
    int nd = batch > 1 ? 3 : 2, off = batch > 1 ? 0 : 1, nda = abatch > 1 ? 3 : 2;
    tg_node *a = tg_tensor(t, TG_F64, nda, sa + 3 - nda, NULL);
    double *av = tg_value(a), m[64];
    for (int i = 0; i < abatch; i++) {
        double *ai = av + (size_t)i * n * n;
        conditioned(n, op_kind[op] == 2 ? cond * cond : cond, op_kind[op] != 0, ai);
        if (op_kind[op] != 2) continue;
        /* The lower Cholesky factor by the textbook recurrence (not the op
         * under test), transposed for an upper solve. */
        memset(m, 0, sizeof m);
        for (int r = 0; r < n; r++)
            for (int c = 0; c <= r; c++) {
                double s = ai[r * n + c];
                for (int p = 0; p < c; p++) s -= m[r * n + p] * m[c * n + p];
                m[r * n + c] = r == c ? sqrt(s) : s / m[c * n + c];
            }
        for (int r = 0; r < n; r++)
            for (int c = 0; c < n; c++) ai[r * n + c] = upper ? m[c * n + r] : m[r * n + c];
    }
    tg_node *b = op_has_b[op] ? random_like(t, tg_tensor(t, TG_F64, nd, sb + off, NULL), 1) : NULL;
    tg_node *y = apply_op(op, upper, a, b);
    tg_node *w = random_like(t, y, 0), *va = random_like(t, a, 0);
    tg_node *vb = b ? random_like(t, b, 0) : NULL;
    tg_node *f = tg_sum(tg_mul(w, y));
    int rc = tg_backward(f);
    tg_node *wrt[2] = {a, b}, *v[2] = {va, vb}, *jv, *hv[2];
    int nw = b ? 2 : 1;
    if (!rc) rc = tg_jvp(y, nw, wrt, v, &jv);
    if (!rc) rc = tg_hvp(f, nw, wrt, v, hv);
    if (rc) {
        fprintf(stderr, "case %d (%s, n %d, cond %g): %s\n", id, op_names[op], n, cond,
                tg_status_message(t));
        tg_tape_free(t);
        return rc;
    }
    printf("case %d %s %d %.17g\n", id, op_names[op], upper, cond);
    print_leaf("a", a);
    if (b) print_leaf("b", b);
    print_values("w", w);
    print_values("va", va);
    if (b) print_values("vb", vb);
    print_values("value", y);
    print_grad("grad_a", a);
    if (b) print_grad("grad_b", b);
    print_values("jvp", jv);
    print_values("hvp_a", hv[0]);
    if (b) print_values("hvp_b", hv[1]);
    tg_tape_free(t);
    return 0;
}

/* Every op at sizes 1, 3 and 5 (and a stack of 2; the solves also one
 * matrix for a stack of 2 right-hand sides), at condition numbers 1, 1e2,
 * 1e4 and 1e8. */
static int dump(void) {
    static const double conds[] = {1, 1e2, 1e4, 1e8};
    static const struct {
        int n, batch, k, shared;
    } sizes[] = {{1, 1, 1, 0}, {3, 1, 2, 0}, {5, 1, 3, 0}, {3, 2, 2, 0}, {4, 2, 2, 1}};
    tg_rng_seed(&rng, 23);
    int id = 0;
    for (int op = 0; op < NOPS; op++)
        for (size_t s = 0; s < sizeof sizes / sizeof *sizes; s++)
            for (size_t c = 0; c < sizeof conds / sizeof *conds; c++) {
                if (sizes[s].n == 1 && c > 0) continue; /* one 1x1 case an op */
                if (sizes[s].shared && !op_has_b[op]) continue;
                if (dump_case(id++, op, sizes[s].n, sizes[s].batch, sizes[s].k, sizes[s].shared,
                              conds[c]))
                    return 1;
            }
    fprintf(stderr, "test_linalg: %d cases\n", id);
    return 0;
}

int main(int argc, char **argv) {
    if (argc == 2 && !strcmp(argv[1], "--dump")) return dump();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_singular_refused),
        cmocka_unit_test(test_replay_refused),
        cmocka_unit_test(test_shapes_refused),
        cmocka_unit_test(test_nonfinite_passes),
        cmocka_unit_test(test_slogdet_sign),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
