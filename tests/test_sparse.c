/*
 * Sparse Jacobians and Hessians (tapegrad/sparse.h) against the dense
 * drivers and hand-derived formulas:
 *   - random sparse compositions of every op family: the pattern holds
 *     every nonzero of tg_jacobian / tg_hessian and the values equal them
 *     entry for entry, at the recording point and after new leaf values;
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

#include "sparse_internal.h" /* the colourings, tested on their own */

/* ------------------------------------------------------------ helpers -- */

static uint64_t rng_state;
static uint64_t next_u64(void) {
    rng_state = rng_state * 6364136223846793005u + 1442695040888963407u;
    return rng_state >> 11;
}
static int rnd(int n) { return (int)(next_u64() % (uint64_t)n); }
static double unif(double lo, double hi) {
    return lo + (hi - lo) * (double)(next_u64() >> 11) / 9007199254740992.0;
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
 * (to rounding: the compressed sums add exact zeros in another order). */
static void compare(const char *what, int seed, int64_t rows, int64_t cols, const double *got,
                    const char *mask, const double *want, long *dense_nnz, long *pat_nnz) {
    for (int64_t i = 0; i < rows * cols; i++) {
        if (want[i] != 0 && !mask[i])
            fail_msg("%s, seed %d: entry (%lld, %lld) = %g is missing from the pattern", what,
                     seed, (long long)(i / cols), (long long)(i % cols), want[i]);
        if (!(fabs(got[i] - want[i]) <= 1e-11 * (1 + fabs(want[i]))))
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
static tg_node *b_leaky(tg_node *a, tg_node *b) { return tg_mul(tg_leaky_relu(a, 0.1), b); }
static tg_node *b_elu(tg_node *a, tg_node *b) { return tg_add(tg_elu(a, 0.8), tg_mul(a, b)); }
static tg_node *b_cmp(tg_node *a, tg_node *b) {
    return tg_mul(tg_add(tg_le(a, b), tg_ne(a, b)), tg_mul(a, b));
}
static const binary_fn binary[] = {tg_add,   tg_sub,     tg_mul, b_div,   b_pow,  b_powc,
                                   tg_atan2, tg_hypot,   tg_maximum, tg_minimum, b_where,
                                   b_clamp,  b_leaky,    b_elu,  b_cmp};
#define NBINARY (int)(sizeof binary / sizeof *binary)

/* One piece: an op family on a few elements of src. */
static tg_node *piece(tg_node *src) {
    tg_tape *t = tg_node_tape(src);
    int axis = rnd(2);
    switch (rnd(9)) {
    case 0:
        return unary[rnd(NUNARY)](slice_of(src, 1 + rnd(4)));
    case 1: { /* broadcasting: [L] with [1], or [2,3] with [1,3] */
        if (rnd(2)) return binary[rnd(NBINARY)](slice_of(src, 1 + rnd(4)), slice_of(src, 1));
        return binary[rnd(NBINARY)](mat_of(src, 2, 3), mat_of(src, 1, 3));
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
    case 4: /* matmul, plain and batched */
        if (rnd(2)) return tg_matmul(mat_of(src, 2, 2), mat_of(src, 2, 3));
        return tg_matmul(tg_reshape(slice_of(src, 8), 3, (int64_t[]){2, 2, 2}), mat_of(src, 2, 1));
    case 5: { /* moves */
        tg_node *m = mat_of(src, 2, 3);
        switch (rnd(8)) {
        case 0: return tg_mul(tg_transpose(m), tg_transpose(mat_of(src, 2, 3)));
        case 1: return tg_sin(tg_permute(tg_reshape(slice_of(src, 8), 3, (int64_t[]){2, 2, 2}), (int[]){2, 0, 1}));
        case 2: return tg_mul(tg_broadcast_to(mat_of(src, 1, 3), 2, (int64_t[]){2, 3}), m);
        case 3: return tg_exp(tg_tril(mat_of(src, 3, 3), rnd(3) - 1));
        case 4: return tg_cos(tg_triu(mat_of(src, 3, 3), rnd(3) - 1));
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
        switch (rnd(4)) {
        case 0: return tg_mse(a, b);
        case 1: return tg_huber(a, b, 0.5);
        case 2: return tg_bce_with_logits(a, tg_sigmoid(b));
        default: return tg_softmax_xent(mat_of(src, 2, 3), tg_softmax(mat_of(src, 2, 3), 1));
        }
    }
    case 7: /* a composition of two pieces */
        return tg_mul(tg_sum(piece(src)), unary[rnd(NUNARY)](slice_of(src, 2)));
    default: /* a constant times a slice: linear */
        return tg_scale(slice_of(src, 2), unif(-2, 2));
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

static long stat_dense, stat_pattern, stat_colors, stat_maxrow, stat_hcolors, stat_hmaxrow;

static void check_jacobian(tg_tape *t, tg_node *x, tg_node *out, int seed, tg_sparse *sp) {
    int64_t m = tg_numel(out);
    double *jd = malloc(sizeof(double) * (size_t)(m * N)), *js = malloc(sizeof(double) * (size_t)(m * N));
    char *mask = malloc((size_t)(m * N));
    tg_sparse_info in;
    assert_int_equal(tg_sparse_info_get(sp, &in), TG_OK);
    double *vals = malloc(sizeof(double) * (size_t)(in.nnz + 1));
    assert_int_equal(tg_sparse_eval(sp, vals), TG_OK);
    assert_int_equal(tg_jacobian(out, 1, &x, jd), TG_OK);
    spread(sp, vals, js, mask, false);
    compare("jacobian", seed, m, N, js, mask, jd, &stat_dense, &stat_pattern);
    stat_colors += in.colors;
    stat_maxrow += in.max_row_nnz;
    assert_true(in.colors >= in.max_row_nnz);
    (void)t;
    free(jd);
    free(js);
    free(mask);
    free(vals);
}

static void check_hessian(tg_node *x, tg_node *f, int seed, tg_sparse *sp) {
    double *hd = malloc(sizeof(double) * N * N), *hs = malloc(sizeof(double) * N * N);
    char *mask = malloc(N * N);
    tg_sparse_info in;
    assert_int_equal(tg_sparse_info_get(sp, &in), TG_OK);
    double *vals = malloc(sizeof(double) * (size_t)(in.nnz + 1));
    assert_int_equal(tg_sparse_eval(sp, vals), TG_OK);
    assert_int_equal(tg_hessian(f, 1, &x, hd), TG_OK);
    spread(sp, vals, hs, mask, true);
    compare("hessian", seed, N, N, hs, mask, hd, &stat_dense, &stat_pattern);
    for (int64_t r = 0; r < in.rows; r++) /* the lower triangle only */
        for (int64_t q = in.row_start[r]; q < in.row_start[r + 1]; q++) assert_true(in.col[q] <= r);
    /* no bound to assert: a star colouring may use fewer colours than a row
     * has nonzeros (an arrowhead takes 2) */
    stat_hcolors += in.colors;
    stat_hmaxrow += in.max_row_nnz;
    free(hd);
    free(hs);
    free(mask);
    free(vals);
}

static void test_random_compositions(void **state) {
    (void)state;
    const int seeds = 120;
    stat_dense = stat_pattern = stat_colors = stat_maxrow = stat_hcolors = stat_hmaxrow = 0;
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
            check_jacobian(t, x, out, seed, jac);
            check_hessian(x, f, seed, hes);
            double *xv = tg_value(x);
            for (int i = 0; i < N; i++) xv[i] = unif(-1.2, 1.2);
        }
        assert_int_equal(tg_tape_size(t), size); /* the evaluations record nothing */
        tg_sparse_free(jac);
        tg_sparse_free(hes);
        tg_tape_free(t);
    }
    printf("sparse: %d random compositions x 3 points: %ld dense nonzeros, %ld pattern "
           "entries; Jacobians: %ld colours in all against %ld (the sum of the most nonzeros "
           "in a row, a lower bound); Hessians: %ld colours against %ld\n",
           seeds, stat_dense, stat_pattern, stat_colors, stat_maxrow, stat_hcolors, stat_hmaxrow);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_random_compositions),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
