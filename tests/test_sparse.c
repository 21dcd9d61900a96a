/*
 * Sparse Jacobians and Hessians (tapegrad/sparse.h) against the dense
 * drivers and hand-derived formulas:
 *   - random sparse compositions reaching every built-in op (each family's
 *     ops and their derivative ops, in the recorded gradients): the pattern
 *     holds every nonzero of tg_jacobian / tg_hessian and the values equal
 *     them entry for entry, at the recording point and after new leaf
 *     values;
 *   - a user op (dense over its input) and an interior wrt node;
 *   - a chained Rosenbrock function: its tridiagonal Hessian by hand, in 3
 *     colours (its rows have 3 nonzeros), at many points without growth of
 *     the tape;
 *   - the Lagrangian of HS071 by hand;
 *   - the colourings themselves on random graphs: every column colouring
 *     separates the columns of a row, every star colouring leaves no path
 *     on four vertices in two colours (checked by brute force);
 *   - bad input, each with its message.
 * The colour counts are printed against the most nonzeros in a row.
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
#include <tapegrad/sparse.h>

#include "cube_ops.h"
#include "sparse_internal.h" /* the colourings, tested on their own */

/* ------------------------------------------------------------ helpers -- */

static long stat_dense, stat_pattern, stat_colors, stat_maxrow, stat_hcolors, stat_hmaxrow;

static uint64_t rng_state;
static uint64_t next_u64(void) {
    rng_state = rng_state * 6364136223846793005u + 1442695040888963407u;
    return rng_state >> 11;
}
static int rnd(int n) { return (int)(next_u64() % (uint64_t)n); }
static double unif(double lo, double hi) {
    return lo + (hi - lo) * (double)next_u64() / 9007199254740992.0; /* 53 bits */
}

/* The sparse object's values spread into a dense rows x cols matrix (the
 * Hessian's lower triangle mirrored), and a mask of the pattern. */
static void spread(const tg_sparse *sp, const double *vals, double *dense, char *mask,
                   bool symmetric) {
    tg_sparse_info in;
    assert_int_equal(tg_sparse_info_get(sp, &in), TG_OK);
    memset(dense, 0, sizeof *dense * (size_t)(in.rows * in.cols));
    memset(mask, 0, (size_t)(in.rows * in.cols));
    for (int64_t r = 0; r < in.rows; r++)
        for (int64_t q = in.row_start[r]; q < in.row_start[r + 1]; q++) {
            int64_t c = in.col[q];
            dense[r * in.cols + c] = vals[q];
            mask[r * in.cols + c] = 1;
            if (symmetric) {
                dense[c * in.cols + r] = vals[q];
                mask[c * in.cols + r] = 1;
            }
        }
}

/* Every nonzero of want is in the mask, and got equals want entry for entry
 * (to tol, relative: the compressed sums add exact zeros in another order). */
static void compare(const char *what, int seed, int64_t rows, int64_t cols, const double *got,
                    const char *mask, const double *want, double tol, long *dense_nnz,
                    long *pat_nnz) {
    for (int64_t i = 0; i < rows * cols; i++) {
        if (want[i] != 0 && !mask[i])
            fail_msg("%s, seed %d: entry (%lld, %lld) = %g is missing from the pattern", what,
                     seed, (long long)(i / cols), (long long)(i % cols), want[i]);
        if (!(fabs(got[i] - want[i]) <= tol * (1 + fabs(want[i]))))
            fail_msg("%s, seed %d: entry (%lld, %lld): sparse %.17g, dense %.17g", what, seed,
                     (long long)(i / cols), (long long)(i % cols), got[i], want[i]);
        *dense_nnz += want[i] != 0;
        *pat_nnz += mask[i];
    }
}

/* -------------------------------------------- random compositions -- */

#define N 12 /* variables */

static tg_node *slice_of(tg_node *x, int len) {
    return tg_slice(x, 0, rnd(N - len + 1), len);
}
static tg_node *mat_of(tg_node *x, int r, int c) {
    return tg_reshape(slice_of(x, r * c), 2, (int64_t[]){r, c});
}
/* Positive, away from 0: a safe argument for logs, roots and divisions. */
static tg_node *positive(tg_node *a) { return tg_add(tg_const(tg_node_tape(a), 1.5), tg_square(a)); }
static tg_node *unit_range(tg_node *a) { return tg_scale(tg_tanh(a), 0.7); }

typedef tg_node *(*unary_fn)(tg_node *);
static tg_node *u_log(tg_node *a) { return tg_log(positive(a)); }
static tg_node *u_sqrt(tg_node *a) { return tg_sqrt(positive(a)); }
static tg_node *u_recip(tg_node *a) { return tg_reciprocal(positive(a)); }
static tg_node *u_asin(tg_node *a) { return tg_asin(unit_range(a)); }
static tg_node *u_acos(tg_node *a) { return tg_acos(unit_range(a)); }
static tg_node *u_atanh(tg_node *a) { return tg_atanh(unit_range(a)); }
static tg_node *u_acosh(tg_node *a) { return tg_acosh(positive(a)); }
static tg_node *u_log1p(tg_node *a) { return tg_log1p(tg_square(a)); }
static tg_node *u_log2(tg_node *a) { return tg_log2(positive(a)); }
static tg_node *u_log10(tg_node *a) { return tg_log10(positive(a)); }
static tg_node *u_cbrt(tg_node *a) { return tg_cbrt(positive(a)); }
static tg_node *u_tan(tg_node *a) { return tg_tan(unit_range(a)); }
static tg_node *u_step(tg_node *a) { return tg_mul(tg_add(tg_floor(a), tg_sign(a)), tg_sin(a)); }
static tg_node *u_round(tg_node *a) { return tg_add(tg_round(a), tg_mul(tg_ceil(a), a)); }
static const unary_fn unary[] = {
    tg_neg,   tg_exp,    tg_sin,    tg_cos,   tg_tanh,  tg_sigmoid, tg_atan, tg_sinh,
    tg_cosh,  tg_asinh,  tg_erf,    tg_erfc,  tg_expm1, tg_exp2,    tg_square, tg_softplus,
    tg_gelu,  tg_silu,   tg_abs,    tg_relu,  u_log,    u_sqrt,     u_recip, u_asin,
    u_acos,   u_atanh,   u_acosh,   u_log1p,  u_log2,   u_log10,    u_cbrt,  u_tan,
    u_step,   u_round,
};
#define NUNARY (int)(sizeof unary / sizeof *unary)

typedef tg_node *(*binary_fn)(tg_node *, tg_node *);
static tg_node *b_div(tg_node *a, tg_node *b) { return tg_div(a, positive(b)); }
static tg_node *b_pow(tg_node *a, tg_node *b) { return tg_pow_var(positive(a), b); }
static tg_node *b_powc(tg_node *a, tg_node *b) { return tg_mul(tg_pow(positive(a), 2.5), b); }
static tg_node *b_where(tg_node *a, tg_node *b) {
    return tg_where(tg_gt(a, b), tg_mul(a, b), tg_sin(a));
}
static tg_node *b_clamp(tg_node *a, tg_node *b) {
    return tg_clamp(tg_scale(a, 3), tg_sub(b, tg_const(tg_node_tape(a), 0.5)), tg_add(b, tg_const(tg_node_tape(a), 0.5)));
}
/* The activations with a variable parameter (their _dp derivative ops). */
static tg_node *b_leaky(tg_node *a, tg_node *b) { /* the parameter: one element */
    return tg_mul(tg_call("leaky_relu", a, tg_scale(tg_tanh(tg_sum(b)), 0.3)), b);
}
static tg_node *b_elu(tg_node *a, tg_node *b) {
    return tg_add(tg_call("elu", a, tg_sigmoid(tg_sum(b))), tg_mul(a, b));
}
static tg_node *b_cmp(tg_node *a, tg_node *b) {
    return tg_mul(tg_add(tg_add(tg_le(a, b), tg_ne(a, b)), tg_ge(b, a)), tg_mul(a, b));
}
static const binary_fn binary[] = {tg_add,   tg_sub,     tg_mul, b_div,   b_pow,  b_powc,
                                   tg_atan2, tg_hypot,   tg_maximum, tg_minimum, b_where,
                                   b_clamp,  b_leaky,    b_elu,  b_cmp};
#define NBINARY (int)(sizeof binary / sizeof *binary)

/* One piece: an op family on a few elements of src. */
/* The unary and binary ops in turn, so that every one is reached. */
static int next_unary, next_binary;
static unary_fn some_unary(void) { return unary[next_unary++ % NUNARY]; }
static binary_fn some_binary(void) { return binary[next_binary++ % NBINARY]; }

static tg_node *piece(tg_node *src) {
    tg_tape *t = tg_node_tape(src);
    int axis = rnd(2);
    switch (rnd(9)) {
    case 0:
        return some_unary()(slice_of(src, 1 + rnd(4)));
    case 1: { /* broadcasting: [L] with [1], or [2,3] with [1,3] */
        /* (each random draw in a statement of its own: the order in which a
         * compiler evaluates arguments must not change the test) */
        bool vec = rnd(2);
        tg_node *a = vec ? slice_of(src, 1 + rnd(4)) : mat_of(src, 2, 3);
        tg_node *b = vec ? slice_of(src, 1) : mat_of(src, 1, 3);
        return some_binary()(a, b);
    }
    case 2: { /* reductions */
        tg_node *m = mat_of(src, 2, 3);
        switch (rnd(9)) {
        case 0: return tg_sum_axis(m, axis);
        case 1: return tg_mean_axis(tg_sin(m), axis);
        case 2: return tg_max_axis(m, axis);
        case 3: return tg_min(m);
        case 4: return tg_logsumexp_axis(m, axis);
        case 5: return tg_prod_axis(m, axis);
        case 6: return tg_norm_axis(m, axis);
        case 7: return tg_var_axis(m, axis);
        default: return tg_mul(tg_argmax_axis(m, axis), tg_sum_axis(m, axis));
        }
    }
    case 3: { /* softmax */
        tg_node *m = mat_of(src, 2, 3);
        return rnd(2) ? tg_softmax(m, axis) : tg_log_softmax(m, axis);
    }
    case 4: { /* matmul, plain and batched; linear algebra (dense over its inputs) */
        int r = rnd(10);
        if (r < 2) {
            bool plain = r;
            tg_node *a = plain ? mat_of(src, 2, 2) : tg_reshape(slice_of(src, 8), 3, (int64_t[]){2, 2, 2});
            tg_node *b = plain ? mat_of(src, 2, 3) : mat_of(src, 2, 1);
            return tg_matmul(a, b);
        }
        /* well conditioned: M M^T + diag(1.5 + d^2), positive definite */
        tg_node *m = mat_of(src, 2, 2);
        tg_node *spd = tg_add(tg_matmul(m, tg_transpose(m)),
                              tg_mul(positive(mat_of(src, 2, 1)),
                                     tg_input(t, TG_F64, 2, (int64_t[]){2, 2},
                                              (const double[]){1, 0, 0, 1})));
        tg_node *b = mat_of(src, 2, 2), *sign;
        switch (r) {
        case 2: return tg_cholesky(spd);
        case 3: return tg_cholesky_solve(tg_cholesky(spd), b);
        case 4: return tg_triangular_solve(tg_cholesky(spd), b, 0);
        case 5: return tg_solve(spd, b);
        case 6: return tg_inverse(spd);
        case 7: return tg_det(spd);
        case 8: {
            tg_node *l = tg_slogdet(spd, &sign); /* sign is set by the call */
            return tg_mul(l, sign);
        }
        default: return tg_logdet(spd);
        }
    }
    case 5: { /* moves */
        tg_node *m = mat_of(src, 2, 3);
        int r = rnd(8);
        switch (r) {
        case 0: return tg_mul(tg_transpose(m), tg_transpose(mat_of(src, 2, 3)));
        case 1: return tg_sin(tg_permute(tg_reshape(slice_of(src, 8), 3, (int64_t[]){2, 2, 2}), (int[]){2, 0, 1}));
        case 2: return tg_mul(tg_broadcast_to(mat_of(src, 1, 3), 2, (int64_t[]){2, 3}), m);
        case 3:
        case 4: {
            tg_node *sq = mat_of(src, 3, 3);
            int64_t k = rnd(3) - 1;
            return r == 3 ? tg_exp(tg_tril(sq, k)) : tg_cos(tg_triu(sq, k));
        }
        case 5: {
            int64_t idx[5];
            for (int i = 0; i < 5; i++) idx[i] = rnd(3);
            return tg_square(tg_index_select(m, 1, idx, 5));
        }
        case 6: {
            int64_t idx[3];
            for (int i = 0; i < 3; i++) idx[i] = rnd(4);
            return tg_sin(tg_index_add(m, 1, idx, 4));
        }
        default:
            return tg_tanh(tg_concat(2, (tg_node *[]){m, mat_of(src, 1, 3)}, 0));
        }
    }
    case 6: { /* losses: dense over their inputs */
        tg_node *a = slice_of(src, 3), *b = slice_of(src, 3);
        tg_node *z = mat_of(src, 2, 3);
        switch (rnd(6)) {
        case 0: return tg_mse(a, b);
        case 1: /* delta a variable too (huber_dc) */
            return tg_call_n("huber", 3, (tg_node *[]){a, b, positive(slice_of(src, 1))});
        case 2: return tg_bce_with_logits(a, tg_sigmoid(b));
        case 3: {
            int32_t labels[2];
            for (int i = 0; i < 2; i++) labels[i] = rnd(3);
            return tg_cross_entropy(z, tg_labels(z, labels));
        }
        case 4: return tg_nll_loss(tg_log_softmax(z, 1), tg_labels(z, (const int32_t[]){2, 0}));
        default: return tg_softmax_xent(z, tg_softmax(mat_of(src, 2, 3), 1));
        }
    }
    case 7: { /* a composition of two pieces */
        tg_node *inner = tg_sum(piece(src));
        return tg_mul(inner, some_unary()(slice_of(src, 2)));
    }
    default: { /* a constant times a slice: linear */
        tg_node *a = slice_of(src, 2);
        return tg_scale(a, unif(-2, 2));
    }
    }
    (void)t;
}

/* A random function of x: pieces of x and of x mixed with a permutation
 * of itself, flattened and joined. */
static tg_node *composition(tg_node *x, int pieces) {
    int64_t perm[N];
    for (int i = 0; i < N; i++) perm[i] = i;
    for (int i = N - 1; i > 0; i--) {
        int j = rnd(i + 1);
        int64_t s = perm[i];
        perm[i] = perm[j];
        perm[j] = s;
    }
    tg_node *mixed = tg_mul(x, tg_sin(tg_index_select(x, 0, perm, N)));
    tg_node *parts[8];
    for (int k = 0; k < pieces; k++) {
        tg_node *p = piece(rnd(3) ? x : mixed);
        parts[k] = tg_reshape(p, 1, (int64_t[]){-1});
    }
    return tg_concat(pieces, parts, 0);
}


/* The object's values at the tape's current point against the dense
 * driver's (tg_jacobian, or tg_hessian when hessian), entry for entry,
 * the pattern holding every dense nonzero; *in gets the object's info. */
static void against_dense(tg_sparse *sp, tg_node *out, int n, tg_node *const *wrt, bool hessian,
                          const char *what, int seed, double tol, tg_sparse_info *in) {
    assert_int_equal(tg_sparse_info_get(sp, in), TG_OK);
    int64_t rows = in->rows, cols = in->cols;
    double *want = malloc(sizeof(double) * (size_t)(rows * cols));
    double *got = malloc(sizeof(double) * (size_t)(rows * cols));
    double *vals = malloc(sizeof(double) * (size_t)(in->nnz + 1));
    char *mask = malloc((size_t)(rows * cols));
    assert_true(want && got && vals && mask);
    assert_int_equal(tg_sparse_eval(sp, vals), TG_OK);
    assert_int_equal(hessian ? tg_hessian(out, n, wrt, want) : tg_jacobian(out, n, wrt, want),
                     TG_OK);
    spread(sp, vals, got, mask, hessian);
    compare(what, seed, rows, cols, got, mask, want, tol, &stat_dense, &stat_pattern);
    if (hessian) /* the lower triangle only */
        for (int64_t r = 0; r < in->rows; r++)
            for (int64_t q = in->row_start[r]; q < in->row_start[r + 1]; q++)
                assert_true(in->col[q] <= r);
    free(want);
    free(got);
    free(vals);
    free(mask);
}

static void test_random_compositions(void **state) {
    (void)state;
    const int seeds = 120;
    stat_dense = stat_pattern = stat_colors = stat_maxrow = stat_hcolors = stat_hmaxrow = 0;
    bool reached[256] = {false};
    for (int seed = 1; seed <= seeds; seed++) {
        rng_state = (uint64_t)seed * 0x9e3779b97f4a7c15u;
        tg_tape *t = tg_tape_new();
        double x0[N];
        for (int i = 0; i < N; i++) x0[i] = unif(-1.2, 1.2);
        tg_node *x = tg_tensor(t, TG_F64, 1, (int64_t[]){N}, x0);
        tg_node *out = composition(x, 2 + rnd(4));
        tg_node *f = tg_sum(tg_mul(out, tg_tanh(out)));
        if (tg_status(t)) fail_msg("seed %d: %s", seed, tg_status_message(t));
        tg_sparse *jac, *hes;
        if (tg_sparse_jacobian_new(out, 1, &x, &jac) || tg_sparse_hessian_new(f, 1, &x, &hes))
            fail_msg("seed %d: %s", seed, tg_status_message(t));
        size_t size = tg_tape_size(t);
        for (int point = 0; point < 3; point++) { /* the recording point, then new ones */
            tg_sparse_info in;
            against_dense(jac, out, 1, &x, false, "jacobian", seed, 1e-11, &in);
            stat_colors += in.colors;
            stat_maxrow += in.max_row_nnz;
            assert_true(in.colors >= in.max_row_nnz);
            against_dense(hes, f, 1, &x, true, "hessian", seed, 1e-11, &in);
            /* no bound to assert: a star colouring may use fewer colours than
             * a row has nonzeros (an arrowhead takes 2) */
            stat_hcolors += in.colors;
            stat_hmaxrow += in.max_row_nnz;
            double *xv = tg_value(x);
            for (int i = 0; i < N; i++) xv[i] = unif(-1.2, 1.2);
        }
        assert_int_equal(tg_tape_size(t), size); /* the evaluations record nothing */
        for (size_t i = 0; i < size; i++) { /* which ops the compositions reached */
            const tg_op *op = tg_op_find(tg_node_op_name(tg_tape_node(t, i)));
            for (int k = 0; op && k < tg_op_count(); k++) reached[k] |= tg_op_at(k) == op;
        }
        tg_sparse_free(jac);
        tg_sparse_free(hes);
        tg_tape_free(t);
    }
    printf("sparse: %d random compositions x 3 points: %ld dense nonzeros, %ld pattern "
           "entries; Jacobians: %ld colours in all against %ld (the sum of the most nonzeros "
           "in a row, a lower bound); Hessians: %ld colours against %ld\n",
           seeds, stat_dense, stat_pattern, stat_colors, stat_maxrow, stat_hcolors, stat_hmaxrow);
    int count = 0;
    printf("sparse: ops not reached:");
    for (int k = 0; k < tg_op_count(); k++) {
        count += reached[k];
        if (!reached[k]) printf(" %s", tg_op_at(k)->name);
    }
    printf("\nsparse: %d of %d registered ops reached\n", count, tg_op_count());
    assert_int_equal(count, tg_op_count()); /* every built-in op (no user op yet) */
}


/* ------------------------------------------- chained Rosenbrock -- */

/* f = sum_i 100 (x[i+1] - x[i]^2)^2 + (1 - x[i])^2, i < n - 1: a tridiagonal
 * Hessian, H[i][i] = 1200 x[i]^2 - 400 x[i+1] + 2 (i < n - 1) + 200 (i > 0),
 * H[i+1][i] = -400 x[i]. */
static double rosen_h(const double *x, int n, int r, int c) {
    if (r == c)
        return (r < n - 1 ? 1200 * x[r] * x[r] - 400 * x[r + 1] + 2 : 0) + (r > 0 ? 200 : 0);
    if (r == c + 1) return -400 * x[c];
    return 0;
}

static tg_node *rosenbrock(tg_node *x, int n) {
    tg_tape *t = tg_node_tape(x);
    tg_node *a = tg_slice(x, 0, 0, n - 1), *b = tg_slice(x, 0, 1, n - 1);
    tg_node *d = tg_sub(b, tg_square(a)), *e = tg_sub(tg_const(t, 1), a);
    return tg_sum(tg_add(tg_scale(tg_square(d), 100), tg_square(e)));
}

/* The hand Hessian at x equals vals, entry for entry, in the lower
 * triangle's tridiagonal pattern. */
static void check_rosen(const tg_sparse *sp, const double *vals, const double *x, int n) {
    tg_sparse_info in;
    assert_int_equal(tg_sparse_info_get(sp, &in), TG_OK);
    assert_int_equal(in.nnz, 2 * n - 1);
    for (int r = 0; r < n; r++) {
        assert_int_equal(in.row_start[r + 1] - in.row_start[r], r ? 2 : 1);
        for (int64_t q = in.row_start[r]; q < in.row_start[r + 1]; q++) {
            double want = rosen_h(x, n, r, in.col[q]);
            if (!(fabs(vals[q] - want) <= 1e-12 * (1 + fabs(want))))
                fail_msg("H[%d][%d]: sparse %.17g, by hand %.17g", r, in.col[q], vals[q], want);
        }
    }
}

static void test_rosenbrock_by_hand(void **state) {
    (void)state;
    enum { n = 200 };
    rng_state = 11;
    tg_tape *t = tg_tape_new();
    double x0[n];
    for (int i = 0; i < n; i++) x0[i] = unif(-2, 2);
    tg_node *x = tg_tensor(t, TG_F64, 1, (int64_t[]){n}, x0);
    tg_node *f = rosenbrock(x, n);
    tg_sparse *sp;
    assert_int_equal(tg_sparse_hessian_new(f, 1, &x, &sp), TG_OK);
    tg_sparse_info in;
    tg_sparse_info_get(sp, &in);
    printf("sparse: Rosenbrock n = %d: %d colours, rows of at most %lld nonzeros\n", n,
           in.colors, (long long)in.max_row_nnz);
    assert_int_equal(in.colors, 3); /* a path's star colouring */
    assert_int_equal(in.max_row_nnz, 3);
    double vals[2 * n - 1];
    size_t size = tg_tape_size(t), bytes = tg_tape_bytes(t);
    for (int it = 0; it < 1000; it++) {
        double *xv = tg_value(x);
        for (int i = 0; i < n; i++) xv[i] = unif(-2, 2);
        assert_int_equal(tg_sparse_eval(sp, vals), TG_OK);
        check_rosen(sp, vals, xv, n);
    }
    assert_int_equal(tg_tape_size(t), size);
    assert_int_equal(tg_tape_bytes(t), bytes);
    int32_t rows[2 * n - 1], cols[2 * n - 1];
    assert_int_equal(tg_sparse_triplets(sp, rows, cols), TG_OK);
    for (int k = 0; k < 2 * n - 1; k++) /* row r's entries: (r, r-1), (r, r) */
        assert_true(rows[k] == (k + 1) / 2 && cols[k] == k / 2);
    tg_sparse_free(sp);
    tg_tape_free(t);
}

/* The same function on the compact scalar tape, one wrt node per variable. */
static void test_rosenbrock_scalars(void **state) {
    (void)state;
    enum { n = 40 };
    rng_state = 12;
    tg_tape *t = tg_tape_new();
    tg_node *x[n], *f = tg_const(t, 0);
    for (int i = 0; i < n; i++) x[i] = tg_scalar(t, unif(-2, 2));
    for (int i = 0; i + 1 < n; i++) {
        tg_node *d = tg_sub(x[i + 1], tg_mul(x[i], x[i])), *e = tg_sub(tg_const(t, 1), x[i]);
        f = tg_add(f, tg_add(tg_scale(tg_mul(d, d), 100), tg_mul(e, e)));
    }
    tg_sparse *sp;
    assert_int_equal(tg_sparse_hessian_new(f, n, x, &sp), TG_OK);
    double vals[2 * n - 1], xv[n];
    for (int it = 0; it < 5; it++) {
        for (int i = 0; i < n; i++) *(double *)tg_value(x[i]) = xv[i] = unif(-2, 2);
        assert_int_equal(tg_sparse_eval(sp, vals), TG_OK);
        check_rosen(sp, vals, xv, n);
    }
    tg_sparse_free(sp);
    tg_tape_free(t);
}

/* --------------------------------------------------- HS071 Lagrangian -- */

/* f = x0 x3 (x0 + x1 + x2) + x2, c = (x0 x1 x2 x3, |x|^2): the Hessian of
 * sigma f + l0 c0 + l1 c1 by hand, lower triangle. */
static double hs071_h(const double *x, double s, const double *l, int r, int c) {
    static const int other[4][4][2] = {{{0}, {2, 3}, {1, 3}, {1, 2}},
                                       {{2, 3}, {0}, {0, 3}, {0, 2}},
                                       {{1, 3}, {0, 3}, {0}, {0, 1}},
                                       {{1, 2}, {0, 2}, {0, 1}, {0}}};
    double fh[4][4] = {{2 * x[3], x[3], x[3], 2 * x[0] + x[1] + x[2]},
                       {x[3], 0, 0, x[0]},
                       {x[3], 0, 0, x[0]},
                       {2 * x[0] + x[1] + x[2], x[0], x[0], 0}};
    double c0 = r == c ? 0 : x[other[r][c][0]] * x[other[r][c][1]];
    return s * fh[r][c] + l[0] * c0 + l[1] * (r == c ? 2 : 0);
}

static void test_lagrangian_hs071(void **state) {
    (void)state;
    tg_tape *t = tg_tape_new();
    double x0[4] = {1, 5, 5, 1};
    tg_node *x[4];
    for (int i = 0; i < 4; i++) x[i] = tg_scalar(t, x0[i]);
    tg_node *f = tg_add(tg_mul(tg_mul(x[0], x[3]), tg_add(tg_add(x[0], x[1]), x[2])), x[2]);
    tg_node *c0 = tg_mul(tg_mul(x[0], x[1]), tg_mul(x[2], x[3]));
    tg_node *c1 = tg_add(tg_add(tg_mul(x[0], x[0]), tg_mul(x[1], x[1])),
                         tg_add(tg_mul(x[2], x[2]), tg_mul(x[3], x[3])));
    tg_node *c = tg_concat(2, (tg_node *[]){tg_reshape(c0, 1, (int64_t[]){1}),
                                            tg_reshape(c1, 1, (int64_t[]){1})}, 0);
    tg_sparse *h, *j;
    assert_int_equal(tg_sparse_lagrangian_new(f, c, 4, x, &h), TG_OK);
    assert_int_equal(tg_sparse_jacobian_new(c, 4, x, &j), TG_OK);
    tg_sparse_info hi, ji;
    tg_sparse_info_get(h, &hi);
    tg_sparse_info_get(j, &ji);
    assert_int_equal(hi.nnz, 10);
    assert_int_equal(ji.nnz, 8);
    rng_state = 5;
    for (int it = 0; it < 20; it++) {
        double xv[4], l[2] = {unif(-2, 2), unif(-2, 2)}, s = unif(0, 2), hv[10], jv[8];
        for (int i = 0; i < 4; i++) *(double *)tg_value(x[i]) = xv[i] = unif(1, 5);
        assert_int_equal(tg_sparse_eval_lagrangian(h, s, l, hv), TG_OK);
        for (int r = 0, q = 0; r < 4; r++)
            for (int cc = 0; cc <= r; cc++, q++) {
                assert_int_equal(hi.col[q], cc);
                double want = hs071_h(xv, s, l, r, cc);
                if (!(fabs(hv[q] - want) <= 1e-13 * (1 + fabs(want))))
                    fail_msg("H[%d][%d]: %.17g, by hand %.17g", r, cc, hv[q], want);
            }
        assert_int_equal(tg_sparse_eval(j, jv), TG_OK);
        for (int i = 0; i < 4; i++) {
            double p = 1;
            for (int k = 0; k < 4; k++) p *= k == i ? 1 : xv[k];
            assert_true(fabs(jv[i] - p) <= 1e-13 * fabs(p));
            assert_true(fabs(jv[4 + i] - 2 * xv[i]) <= 1e-15);
        }
        /* the objective alone: sigma = 1, lambda = 0 */
        assert_int_equal(tg_sparse_eval(h, hv), TG_OK);
        for (int r = 0, q = 0; r < 4; r++)
            for (int cc = 0; cc <= r; cc++, q++)
                assert_true(fabs(hv[q] - hs071_h(xv, 1, (double[]){0, 0}, r, cc)) <= 1e-13);
    }
    tg_sparse_free(h);
    tg_sparse_free(j);
    tg_tape_free(t);
}

/* float32 leaves: the values through float32 tangents. */
static void test_float32(void **state) {
    (void)state;
    tg_tape *t = tg_tape_new();
    float x0[6] = {0.5f, -1, 0.25f, 2, -0.75f, 1.5f};
    tg_node *x = tg_tensor(t, TG_F32, 1, (int64_t[]){6}, x0);
    tg_node *y = tg_mul(tg_sin(tg_slice(x, 0, 0, 5)), tg_slice(x, 0, 1, 5));
    tg_node *f = tg_sum(tg_mul(y, y));
    tg_sparse *j, *h;
    assert_int_equal(tg_sparse_jacobian_new(y, 1, &x, &j), TG_OK);
    assert_int_equal(tg_sparse_hessian_new(f, 1, &x, &h), TG_OK);
    tg_sparse_info in;
    against_dense(j, y, 1, &x, false, "float32 jacobian", 0, 1e-6, &in);
    against_dense(h, f, 1, &x, true, "float32 hessian", 0, 1e-5, &in);
    tg_sparse_free(j);
    tg_sparse_free(h);
    tg_tape_free(t);
}


/* Dense matrices: 40 colours, more than are recorded at once, so the
 * evaluation goes in blocks of directions. */
static void test_many_colours(void **state) {
    (void)state;
    enum { n = 40 };
    tg_tape *t = tg_tape_new();
    double x0[n];
    for (int i = 0; i < n; i++) x0[i] = cos(i * 0.37);
    tg_node *x = tg_tensor(t, TG_F64, 1, (int64_t[]){n}, x0);
    tg_node *y = tg_mul(x, tg_sum(tg_sin(x)));
    tg_node *f = tg_add(tg_square(tg_sum(x)), tg_sum(tg_mul(tg_sin(x), x)));
    tg_sparse *j, *h;
    assert_int_equal(tg_sparse_jacobian_new(y, 1, &x, &j), TG_OK);
    assert_int_equal(tg_sparse_hessian_new(f, 1, &x, &h), TG_OK);
    tg_sparse_info ji, hi;
    tg_sparse_info_get(j, &ji);
    tg_sparse_info_get(h, &hi);
    assert_int_equal(ji.colors, n);
    assert_int_equal(hi.colors, n);
    for (int point = 0; point < 2; point++) {
        against_dense(j, y, 1, &x, false, "jacobian in blocks", point, 1e-11, &ji);
        against_dense(h, f, 1, &x, true, "hessian in blocks", point, 1e-11, &hi);
        for (int i = 0; i < n; i++) ((double *)tg_value(x))[i] = sin(i * 1.3 + 0.2);
    }
    tg_sparse_free(j);
    tg_sparse_free(h);
    tg_tape_free(t);
}


/* A user op (x^3 by its vjp rule) is taken as dense over its input; a wrt
 * node inside the recording is a seed, as for tg_jacobian; wrt nodes of
 * which one depends on another are refused (forward seeds and a reverse
 * sweep would mean different derivatives). */
static void expect_error(tg_tape *t, int rc, int code, const char *words);
static const tg_op cube_op = {"sparse_test_cube", 1, NULL, cube_forward, cube_backward, cube_vjp,
                              NULL};

static void test_user_op_and_interior_wrt(void **state) {
    (void)state;
    (void)cube_vjp_wrong, (void)cube_vjp_twice; /* the header's other rules */
    assert_int_equal(tg_op_register(&cube_op), TG_OK);
    tg_tape *t = tg_tape_new();
    double x0[5] = {0.3, -0.7, 1.1, 0.5, -1.4};
    tg_node *x = tg_tensor(t, TG_F64, 1, (int64_t[]){5}, x0);
    tg_node *mid = tg_sin(x); /* an interior wrt node */
    tg_node *y = tg_mul(tg_apply(&cube_op, tg_slice(mid, 0, 0, 3), NULL), tg_slice(x, 0, 2, 3));
    tg_node *f = tg_sum(tg_mul(y, y));
    tg_sparse *j, *h;
    expect_error(t, tg_sparse_jacobian_new(y, 2, (tg_node *[]){x, mid}, &j), TG_ERR_ARG,
                 "wrt[1] depends on another wrt node");
    assert_null(j);
    tg_tape_free(t);
    t = tg_tape_new();
    x = tg_tensor(t, TG_F64, 1, (int64_t[]){5}, x0);
    mid = tg_sin(x);
    y = tg_mul(tg_apply(&cube_op, tg_slice(mid, 0, 0, 3), NULL), tg_slice(x, 0, 2, 3));
    f = tg_sum(tg_mul(y, y));
    assert_int_equal(tg_sparse_jacobian_new(y, 1, &mid, &j), TG_OK);
    assert_int_equal(tg_sparse_hessian_new(f, 1, &mid, &h), TG_OK);
    tg_sparse_info in;
    against_dense(j, y, 1, &mid, false, "user op jacobian", 0, 1e-11, &in);
    for (int r = 0; r < 3; r++) /* the cube is dense over its 3 inputs */
        for (int c = 0; c < 3; c++) {
            int64_t q = in.row_start[r];
            while (q < in.row_start[r + 1] && in.col[q] != c) q++;
            assert_true(q < in.row_start[r + 1]);
        }
    against_dense(h, f, 1, &mid, true, "user op hessian", 0, 1e-11, &in);
    tg_sparse_free(j);
    tg_sparse_free(h);
    tg_tape_free(t);
}


/* An arrowhead: one variable coupled to all others. Its hub is coloured on
 * its own, the rest (diagonal) in one colour: 2 colours where the row has
 * n nonzeros, the values those of tg_hessian. */
static void test_arrowhead(void **state) {
    (void)state;
    enum { n = 300 };
    tg_tape *t = tg_tape_new();
    double x0[n];
    for (int i = 0; i < n; i++) x0[i] = sin(i * 0.71);
    tg_node *x = tg_tensor(t, TG_F64, 1, (int64_t[]){n}, x0);
    tg_node *rest = tg_slice(x, 0, 1, n - 1), *hub = tg_slice(x, 0, 0, 1);
    tg_node *f = tg_add(tg_sum(tg_sin(tg_mul(rest, hub))), tg_sum(tg_mul(tg_square(x), x)));
    tg_sparse *h;
    assert_int_equal(tg_sparse_hessian_new(f, 1, &x, &h), TG_OK);
    tg_sparse_info in;
    against_dense(h, f, 1, &x, true, "arrowhead", 0, 1e-11, &in);
    printf("sparse: arrowhead n = %d: %d colours, rows of at most %lld nonzeros\n", n, in.colors,
           (long long)in.max_row_nnz);
    assert_int_equal(in.colors, 2);
    assert_int_equal(in.max_row_nnz, n);
    tg_sparse_free(h);
    tg_tape_free(t);
}

/* ------------------------------------------------------ colourings -- */

static void random_pattern(tg_csr *m, int64_t rows, int64_t cols, double p, bool symmetric) {
    m->rows = rows;
    m->cols = cols;
    m->start = malloc(sizeof *m->start * (size_t)(rows + 1));
    m->col = malloc(sizeof *m->col * (size_t)(rows * cols));
    char *dense = calloc((size_t)(rows * cols), 1);
    for (int64_t r = 0; r < rows; r++)
        for (int64_t c = 0; c < cols; c++)
            if (unif(0, 1) < p) {
                dense[r * cols + c] = 1;
                if (symmetric) dense[c * cols + r] = 1;
            }
    int64_t at = 0;
    m->start[0] = 0;
    for (int64_t r = 0; r < rows; r++) {
        for (int64_t c = 0; c < cols; c++)
            if (dense[r * cols + c]) m->col[at++] = (int32_t)c;
        m->start[r + 1] = at;
    }
    free(dense);
}

/* Joins hubs vertices (the first ones) to every vertex: dense rows. */
static void add_hubs(tg_csr *g, int hubs) {
    int64_t n = g->rows;
    char *dense = calloc((size_t)(n * n), 1);
    for (int64_t r = 0; r < n; r++)
        for (int64_t q = g->start[r]; q < g->start[r + 1]; q++) dense[r * n + g->col[q]] = 1;
    for (int h = 0; h < hubs; h++)
        for (int64_t v = 0; v < n; v++) dense[h * n + v] = dense[v * n + h] = 1;
    free(g->col);
    g->col = malloc(sizeof *g->col * (size_t)(n * n));
    int64_t at = 0;
    for (int64_t r = 0; r < n; r++) {
        for (int64_t c = 0; c < n; c++)
            if (dense[r * n + c]) g->col[at++] = (int32_t)c;
        g->start[r + 1] = at;
    }
    free(dense);
}

static void test_colourings(void **state) {
    (void)state;
    rng_state = 99;
    long colours = 0, bound = 0, star = 0, degree = 0;
    for (int trial = 0; trial < 200; trial++) {
        tg_csr m;
        int rows = 5 + rnd(40), cols = 5 + rnd(40);
        random_pattern(&m, rows, cols, unif(0.02, 0.3), false);
        int32_t color[256];
        int k = tg__color_columns(&m, color);
        int64_t most = 0;
        for (int r = 0; r < rows; r++) { /* a row's columns all differ */
            int64_t len = m.start[r + 1] - m.start[r];
            if (len > most) most = len;
            for (int64_t a = m.start[r]; a < m.start[r + 1]; a++)
                for (int64_t b = a + 1; b < m.start[r + 1]; b++)
                    if (color[m.col[a]] == color[m.col[b]])
                        fail_msg("trial %d: columns %d and %d of row %d share colour %d", trial,
                                 m.col[a], m.col[b], r, color[m.col[a]]);
        }
        for (int c = 0; c < cols; c++) assert_true(color[c] >= 0 && color[c] < k);
        assert_true(k >= most);
        colours += k;
        bound += most;
        free(m.start);
        free(m.col);

        tg_csr g; /* a symmetric graph: distance 1, and no two-coloured path of 4 */
        /* some with dense hubs, some with degrees past the scan's limit (32) */
        int n = trial % 10 == 0 ? 150 + rnd(100) : trial % 10 == 5 ? 90 + rnd(20) : 5 + rnd(40);
        random_pattern(&g, n, n, trial % 10 == 0 ? 0.01 : trial % 10 == 5 ? 0.25 : unif(0.02, 0.2),
                       true);
        if (trial % 10 == 0) add_hubs(&g, 1 + rnd(3));
        k = tg__color_star(&g, color);
        int64_t maxdeg = 0;
        for (int32_t b = 0; b < n; b++) {
            if (g.start[b + 1] - g.start[b] > maxdeg) maxdeg = g.start[b + 1] - g.start[b];
            for (int64_t q = g.start[b]; q < g.start[b + 1]; q++) {
                int32_t c = g.col[q];
                if (c == b) continue;
                if (color[b] == color[c]) fail_msg("trial %d: neighbours %d %d share a colour", trial, b, c);
                for (int64_t qa = g.start[b]; qa < g.start[b + 1]; qa++)
                    for (int64_t qd = g.start[c]; qd < g.start[c + 1]; qd++) {
                        int32_t a = g.col[qa], d = g.col[qd];
                        if (a == b || a == c || d == b || d == c || a == d) continue;
                        if (color[a] == color[c] && color[b] == color[d])
                            fail_msg("trial %d: path %d-%d-%d-%d has two colours", trial, a, b, c, d);
                    }
            }
        }
        star += k;
        degree += maxdeg;
        free(g.start);
        free(g.col);
    }
    printf("sparse: 200 random patterns: column colourings %ld colours against %ld (the most "
           "nonzeros in a row); star colourings %ld colours, most nonzeros in a row %ld\n",
           colours, bound, star, degree);
}

/* ------------------------------------------------------------ errors -- */

static void expect_error(tg_tape *t, int rc, int code, const char *words) {
    if (rc != code || !strstr(tg_status_message(t), words))
        fail_msg("got %s \"%s\", want %s with \"%s\"", tg_status_name(rc), tg_status_message(t),
                 tg_status_name(code), words);
}

static void test_bad_input(void **state) {
    (void)state;
    tg_sparse *sp = (tg_sparse *)&sp;
    assert_int_equal(tg_sparse_jacobian_new(NULL, 1, NULL, &sp), TG_ERR_NULL);
    assert_null(sp);
    assert_int_equal(tg_sparse_hessian_new(NULL, 1, NULL, &sp), TG_ERR_NULL);
    assert_int_equal(tg_sparse_lagrangian_new(NULL, NULL, 1, NULL, &sp), TG_ERR_NULL);
    assert_int_equal(tg_sparse_eval(NULL, NULL), TG_ERR_NULL);
    assert_int_equal(tg_sparse_info_get(NULL, NULL), TG_ERR_NULL);
    tg_sparse_free(NULL);

    struct {
        int code;
        const char *words;
    } cases[] = {
        {TG_ERR_NULL, "sp is NULL"},          {TG_ERR_ARG, "no wrt nodes"},
        {TG_ERR_NULL, "wrt[0] is NULL"},      {TG_ERR_ARG, "wrt[0] does not want a gradient"},
        {TG_ERR_TAPE, "wrt[0] is on another tape"},
        {TG_ERR_ARG, "it must have one element"},
        {TG_ERR_NULL, "values is NULL"},      {TG_ERR_ARG, "not a Lagrangian"},
        {TG_ERR_NULL, "lambda is NULL"},      {TG_ERR_NULL, "rows is NULL"},
        {TG_ERR_STATE, "make it again"},     {TG_ERR_STATE, "make it again"},
    };
    int ncases = (int)(sizeof cases / sizeof *cases);
    for (int i = 0; i < ncases; i++) {
        tg_tape *t = tg_tape_new(), *other = tg_tape_new();
        tg_node *x = tg_tensor(t, TG_F64, 1, (int64_t[]){3}, (double[]){1, 2, 3});
        tg_node *k = tg_input(t, TG_F64, 1, (int64_t[]){3}, NULL);
        tg_node *y = tg_mul(tg_sin(x), x), *f = tg_sum(y);
        tg_node *far = tg_scalar(other, 1);
        tg_sparse *j = NULL, *l = NULL;
        double vals[16];
        int rc = -1;
        switch (i) {
        case 0: rc = tg_sparse_jacobian_new(y, 1, &x, NULL); break;
        case 1: rc = tg_sparse_hessian_new(f, 0, &x, &j); break;
        case 2: rc = tg_sparse_jacobian_new(y, 1, (tg_node *[]){NULL}, &j); break;
        case 3: rc = tg_sparse_jacobian_new(y, 1, &k, &j); break;
        case 4: rc = tg_sparse_hessian_new(f, 1, &far, &j); break;
        case 5: rc = tg_sparse_lagrangian_new(y, NULL, 1, &x, &j); break;
        case 6:
            assert_int_equal(tg_sparse_jacobian_new(y, 1, &x, &j), TG_OK);
            rc = tg_sparse_eval(j, NULL);
            break;
        case 7:
            assert_int_equal(tg_sparse_hessian_new(f, 1, &x, &j), TG_OK);
            rc = tg_sparse_eval_lagrangian(j, 1, NULL, vals);
            break;
        case 8:
            assert_int_equal(tg_sparse_lagrangian_new(f, y, 1, &x, &l), TG_OK);
            rc = tg_sparse_eval_lagrangian(l, 1, NULL, vals);
            break;
        case 9:
            assert_int_equal(tg_sparse_jacobian_new(y, 1, &x, &j), TG_OK);
            rc = tg_sparse_triplets(j, NULL, (int32_t[16]){0});
            break;
        case 10:
            assert_int_equal(tg_sparse_hessian_new(f, 1, &x, &j), TG_OK);
            tg_tape_reset(t);
            rc = tg_sparse_eval(j, vals);
            break;
        case 11: { /* reset, and more nodes recorded than the object had */
            assert_int_equal(tg_sparse_hessian_new(f, 1, &x, &j), TG_OK);
            size_t had = tg_tape_size(t);
            tg_tape_reset(t);
            tg_node *z = tg_tensor(t, TG_F64, 1, (int64_t[]){7}, NULL);
            while (tg_tape_size(t) < 2 * had) z = tg_sin(z);
            rc = tg_sparse_eval(j, vals);
            break;
        }
        }
        expect_error(t, rc, cases[i].code, cases[i].words);
        if (i < 6) assert_null(j);
        tg_sparse_free(j);
        tg_sparse_free(l);
        tg_tape_free(t);
        tg_tape_free(other);
    }
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_random_compositions), cmocka_unit_test(test_rosenbrock_by_hand),
        cmocka_unit_test(test_rosenbrock_scalars),  cmocka_unit_test(test_lagrangian_hs071),
        cmocka_unit_test(test_float32),             cmocka_unit_test(test_colourings),
        cmocka_unit_test(test_bad_input),           cmocka_unit_test(test_many_colours),
        cmocka_unit_test(test_user_op_and_interior_wrt), cmocka_unit_test(test_arrowhead),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
