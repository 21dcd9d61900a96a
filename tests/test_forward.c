/*
 * Forward mode: tg_jvp's tangent sweep, tg_jvp_many's k directions at once,
 * tg_jacobian's forward path (blocks of 8 directions, replayed), and user
 * ops that state one derivative, checked in both dtypes.
 *
 * The oracles: derivatives by hand, central differences in float64, and for
 * tg_jvp_many the single-direction tg_jvp (the same derivative kernels, so
 * the same bits).
 *
 * The vector function used: y = [sin(x0) x1, exp(x1 - x2), log1p(x0^2) x2,
 * x0 / (1 + x1^2), tanh(x2) ...] over x of n elements and a matrix A, so
 * that y has more elements than x (tg_jacobian goes forward).
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

static tg_node *leaf(tg_tape *t, tg_dtype dt, int64_t n, const double *x) {
    tg_node *v = tg_tensor(t, dt, 1, &n, NULL);
    for (int64_t i = 0; i < n; i++) {
        if (dt == TG_F64)
            ((double *)tg_value(v))[i] = x[i];
        else
            ((float *)tg_value(v))[i] = (float)x[i];
    }
    return v;
}

/* y = tanh(A x) * sin(x)[0] + exp(b) (a [m] vector), from x [n] and b [m];
 * A is fixed, [m, n]. */
static tg_node *vector_fn(tg_tape *t, tg_node *x, tg_node *b, int64_t m, int64_t n) {
    int64_t shape[2] = {m, n}, col[2] = {n, 1}, row[1] = {m};
    tg_node *a = tg_input(t, tg_node_dtype(x), 2, shape, NULL);
    for (int64_t i = 0; i < m * n; i++) {
        double v = sin(0.7 * (double)i + 0.3);
        if (tg_node_dtype(x) == TG_F64)
            ((double *)tg_value(a))[i] = v;
        else
            ((float *)tg_value(a))[i] = (float)v;
    }
    tg_node *ax = tg_reshape(tg_matmul(a, tg_reshape(x, 2, col)), 1, row);
    tg_node *s = tg_sin(tg_sum(tg_mul(x, x)));
    return tg_add(tg_mul(tg_tanh(ax), s), tg_exp(tg_mul(b, b)));
}

static double value_of(tg_node *n, int64_t i) { return tg_value_at(n, i); }

/* How many nodes of op `name` the tape holds at positions [from, to). */
static int count_op(tg_tape *t, size_t from, size_t to, const char *name) {
    int c = 0;
    for (size_t i = from; i < to; i++) c += !strcmp(tg_node_op_name(tg_tape_node(t, i)), name);
    return c;
}

/* tg_jvp_many along k directions equals k tg_jvp calls bit for bit; it
 * shares each derivative node between the k directions (tanh_dx, sin_dx),
 * where a single pass fuses it into the tangent (unary_tangent). */
static void test_many_is_k_singles(void **state) {
    (void)state;
    const int64_t n = 5, m = 7;
    const int k = 4;
    double x0[5] = {0.3, -0.7, 1.1, 0.25, -1.9}, b0[7] = {0.1, 0.2, -0.3, 0.4, 0.5, -0.6, 0.7};
    tg_dtype dts[2] = {TG_F64, TG_F32};
    for (int d = 0; d < 2; d++) {
        tg_tape *t = tg_tape_new();
        tg_node *x = leaf(t, dts[d], n, x0), *b = leaf(t, dts[d], m, b0);
        tg_node *y = vector_fn(t, x, b, m, n);
        tg_node *wrt[2] = {x, b}, *v[2 * 4], *jv[4], *one[4];
        for (int j = 0; j < k; j++) {
            double dx[5], db[7];
            for (int i = 0; i < n; i++) dx[i] = cos(1.3 * i + j);
            for (int i = 0; i < m; i++) db[i] = sin(0.9 * i - j);
            v[j * 2] = leaf(t, dts[d], n, dx);
            v[j * 2 + 1] = leaf(t, dts[d], m, db);
        }
        size_t before = tg_tape_size(t);
        assert_int_equal(tg_jvp_many(y, 2, wrt, k, v, jv), TG_OK);
        size_t mid = tg_tape_size(t), many = mid - before;
        for (int j = 0; j < k; j++) assert_int_equal(tg_jvp(y, 2, wrt, v + j * 2, &one[j]), TG_OK);
        size_t end = tg_tape_size(t), singles = end - mid;
        static const char *const shared[2] = {"tanh_dx", "sin_dx"};
        for (int o = 0; o < 2; o++) {
            /* once: the sweep's memo never evicts what it shares */
            int recorded = count_op(t, before, mid, shared[o]);
            if (recorded != 1)
                fail_msg("jvp_many recorded %s %d times for %d directions", shared[o], recorded, k);
            assert_int_equal(count_op(t, mid, end, shared[o]), 0);
        }
        assert_int_equal(count_op(t, before, mid, "unary_tangent"), 0);
        assert_int_equal(count_op(t, mid, end, "unary_tangent"), 2 * k);
        for (int j = 0; j < k; j++)
            for (int64_t i = 0; i < m; i++) {
                double a = value_of(jv[j], i), c = value_of(one[j], i);
                if (memcmp(&a, &c, sizeof a))
                    fail_msg("%s direction %d element %lld: jvp_many %.17g, jvp %.17g",
                             d ? "float32" : "float64", j, (long long)i, a, c);
            }
        print_message("%s: %d directions: jvp_many %zu nodes, %d x jvp %zu\n",
                      d ? "float32" : "float64", k, many, k, singles);
        tg_tape_free(t);
    }
}

/* On tensors of 4096 elements or more tg_jvp_many sweeps direction after
 * direction: W2's function sum(x_i x_{i+1} + sin(x_i) exp(-x_{i+1})) at
 * n = 5000 along 3 directions, bit for bit the single passes, sharing
 * sin_dx, and within rounding of the derivative by hand. */
static void test_many_by_direction(void **state) {
    (void)state;
    enum { N = 5000, K = 3 };
    double *x0 = malloc(N * sizeof *x0), *d0 = malloc(K * N * sizeof *d0);
    assert_non_null(x0);
    assert_non_null(d0);
    for (int i = 0; i < N; i++) x0[i] = sin(0.37 * i);
    for (int i = 0; i < K * N; i++) d0[i] = cos(0.11 * i + 1);
    for (int d = 0; d < 2; d++) {
        tg_dtype dt = d ? TG_F32 : TG_F64;
        tg_tape *t = tg_tape_new();
        tg_node *x = leaf(t, dt, N, x0), *v[K], *jv[K], *one[K];
        tg_node *a = tg_slice(x, 0, 0, N - 1), *b = tg_slice(x, 0, 1, N - 1);
        tg_node *f = tg_sum(tg_add(tg_mul(a, b), tg_mul(tg_sin(a), tg_exp(tg_neg(b)))));
        for (int j = 0; j < K; j++) v[j] = leaf(t, dt, N, d0 + j * N);
        size_t before = tg_tape_size(t);
        assert_int_equal(tg_jvp_many(f, 1, &x, K, v, jv), TG_OK);
        int shared = count_op(t, before, tg_tape_size(t), "sin_dx");
        if (shared != 1) fail_msg("sin_dx recorded %d times for %d directions", shared, K);
        for (int j = 0; j < K; j++) {
            assert_int_equal(tg_jvp(f, 1, &x, &v[j], &one[j]), TG_OK);
            double m = tg_value_scalar(jv[j]), s = tg_value_scalar(one[j]), want = 0, mag = 0;
            if (memcmp(&m, &s, sizeof m))
                fail_msg("%s direction %d: jvp_many %.17g, jvp %.17g", d ? "float32" : "float64", j,
                         m, s);
            const double *u = d0 + j * N;
            for (int i = 0; i < N - 1; i++) {
                double e = exp(-x0[i + 1]);
                double term = u[i] * x0[i + 1] + x0[i] * u[i + 1] + cos(x0[i]) * e * u[i] -
                              sin(x0[i]) * e * u[i + 1];
                want += term, mag += fabs(term);
            }
            if (!(fabs(m - want) <= (d ? 1e-5 : 1e-13) * mag))
                fail_msg("%s direction %d: %.17g, by hand %.17g", d ? "float32" : "float64", j, m,
                         want);
        }
        tg_tape_free(t);
    }
    free(x0);
    free(d0);
}

/* The tangent of a product whose two factors both move is one addcmul pass
 * over tensors (ta b + a tb), and the same bits as tg_backward's two
 * contributions g b and g a added in turn; on the compact scalar tape it
 * stays two records (add of mul), not a 64-byte node. For y = x * sin(x)
 * along v = 1 and g = 1: sin(x) + x cos(x) both ways. */
static void test_product_tangent(void **state) {
    (void)state;
    const double x0[4] = {0.3, -0.7, 1.1, 2.5};
    for (int d = 0; d < 2; d++) {
        tg_dtype dt = d ? TG_F32 : TG_F64;
        tg_tape *t = tg_tape_new();
        const double ones[4] = {1, 1, 1, 1};
        const float ones32[4] = {1, 1, 1, 1};
        tg_node *x = leaf(t, dt, 4, x0), *y = tg_mul(x, tg_sin(x));
        tg_node *v = leaf(t, dt, 4, ones), *jv;
        assert_int_equal(tg_jvp(y, 1, &x, &v, &jv), TG_OK);
        assert_string_equal(tg_node_op_name(jv), "addcmul");
        assert_int_equal(tg_backward_seeded(y, d ? (const void *)ones32 : ones), TG_OK);
        for (int64_t i = 0; i < 4; i++) {
            double a = tg_value_at(jv, i), b = tg_grad_at(x, i);
            if (memcmp(&a, &b, sizeof a))
                fail_msg("%s element %lld: jvp %.17g, backward %.17g", d ? "float32" : "float64",
                         (long long)i, a, b);
            double want = sin(x0[i]) + x0[i] * cos(x0[i]);
            assert_true(fabs(a - want) <= (d ? 1e-6 : 1e-15) * (1 + fabs(want)));
        }
        tg_tape_free(t);
    }
    tg_tape *t = tg_tape_new();
    tg_node *x = tg_scalar(t, 0.3), *one = tg_const(t, 1), *jv;
    assert_int_equal(tg_jvp(tg_mul(x, tg_sin(x)), 1, &x, &one, &jv), TG_OK);
    assert_string_equal(tg_node_op_name(jv), "add");
    assert_true(fabs(tg_value_scalar(jv) - (sin(0.3) + 0.3 * cos(0.3))) <= 1e-15);
    tg_tape_free(t);
}

/* exp's derivative is its output: its tangent is y times t with y the exp
 * node itself, one pass recorded (no derivative node copying y), and its
 * recorded gradient g times y; both the same bits as y * v in C. */
static void test_exp_tangent_reads_y(void **state) {
    (void)state;
    const double x0[4] = {0.3, -0.7, 1.1, 2.5}, v0[4] = {1.5, -0.25, 3, 0.125};
    for (int d = 0; d < 2; d++) {
        tg_dtype dt = d ? TG_F32 : TG_F64;
        tg_tape *t = tg_tape_new();
        tg_node *x = leaf(t, dt, 4, x0), *v = leaf(t, dt, 4, v0), *y = tg_exp(x), *jv, *g;
        size_t before = tg_tape_size(t);
        assert_int_equal(tg_jvp(y, 1, &x, &v, &jv), TG_OK);
        assert_int_equal(tg_tape_size(t) - before, 1);
        assert_string_equal(tg_node_op_name(jv), "mul");
        assert_ptr_equal(tg_node_input(jv, 0), y);
        assert_ptr_equal(tg_node_input(jv, 1), v);
        assert_int_equal(tg_grad_nodes(tg_sum(y), 1, &x, &g), TG_OK);
        for (int64_t i = 0; i < 4; i++) {
            double want = d ? (double)((float)tg_value_at(y, i) * (float)tg_value_at(v, i))
                            : tg_value_at(y, i) * tg_value_at(v, i);
            double a = tg_value_at(jv, i), b = tg_value_at(g, i), e = tg_value_at(y, i);
            if (memcmp(&a, &want, sizeof a) || memcmp(&b, &e, sizeof b))
                fail_msg("%s element %lld: jvp %.17g (want %.17g), grad %.17g (want %.17g)",
                         d ? "float32" : "float64", (long long)i, a, want, b, e);
        }
        tg_tape_free(t);
    }
}

/* A unary op's tangent in a single pass is one node, unary_tangent(x, y, t),
 * of value f'(x) t (cos x t for sin, against libm in float64); the
 * constructor refuses a y that is not a differentiable unary op's output
 * (neg and exp have their own rules), and a t of another shape or dtype. */
static void test_unary_tangent(void **state) {
    (void)state;
    const double x0[4] = {0.3, -0.7, 1.1, 2.5}, v0[4] = {1.5, -0.25, 3, 0.125};
    tg_tape *t = tg_tape_new();
    tg_node *x = leaf(t, TG_F64, 4, x0), *v = leaf(t, TG_F64, 4, v0), *y = tg_sin(x), *jv;
    size_t before = tg_tape_size(t);
    assert_int_equal(tg_jvp(y, 1, &x, &v, &jv), TG_OK);
    assert_int_equal(tg_tape_size(t) - before, 1);
    assert_string_equal(tg_node_op_name(jv), "unary_tangent");
    for (int64_t i = 0; i < 4; i++)
        assert_true(fabs(tg_value_at(jv, i) - cos(x0[i]) * v0[i]) <= 1e-15 * fabs(v0[i]));
    static const struct {
        const char *why;
        int status;
    } refused[] = {{"an output of 'add'", TG_ERR_ARG}, {"an output of 'exp'", TG_ERR_ARG},
                   {"[4] and tangent [3]", TG_ERR_SHAPE}, {"dtypes differ", TG_ERR_DTYPE}};
    for (size_t c = 0; c < sizeof refused / sizeof *refused; c++) {
        tg_tape *u = tg_tape_new();
        tg_node *a = leaf(u, TG_F64, 4, x0), *w = leaf(u, TG_F64, 4, v0);
        tg_node *r = c == 0   ? tg_unary_tangent(tg_add(a, a), w)
                     : c == 1 ? tg_unary_tangent(tg_exp(a), w)
                     : c == 2 ? tg_unary_tangent(tg_sin(a), leaf(u, TG_F64, 3, v0))
                              : tg_unary_tangent(tg_sin(a), leaf(u, TG_F32, 4, v0));
        assert_non_null(r);
        assert_int_equal(tg_status(u), refused[c].status);
        if (!strstr(tg_status_message(u), refused[c].why))
            fail_msg("refusal %zu: '%s' does not say '%s'", c, tg_status_message(u), refused[c].why);
        tg_tape_free(u);
    }
    tg_tape_free(t);
}

/* tg_jacobian's forward path (19 inputs, 3 blocks of up to 8 directions)
 * against central differences of the same function in float64, and against
 * one tg_jvp per column. */
static void test_forward_jacobian(void **state) {
    (void)state;
    enum { N = 12, M = 30, COLS = N + 7 };
    double x0[N], b0[7];
    for (int i = 0; i < N; i++) x0[i] = 0.1 * i - 0.55;
    for (int i = 0; i < 7; i++) b0[i] = 0.05 * i;
    tg_tape *t = tg_tape_new();
    /* b has 7 elements and broadcasts: y = vector_fn + sum of b's squares */
    tg_node *x = leaf(t, TG_F64, N, x0), *b = leaf(t, TG_F64, 7, b0);
    tg_node *y = tg_add(vector_fn(t, x, tg_broadcast_to(tg_sum(b), 1, (int64_t[]){M}), M, N),
                        tg_sum(tg_mul(b, b)));
    tg_node *wrt[2] = {x, b};
    static double jac[M * COLS];
    assert_int_equal(tg_jacobian(y, 2, wrt, jac), TG_OK);
    /* central differences, recomputing the function on a fresh tape */
    for (int c = 0; c < COLS; c++) {
        double col[2][M];
        for (int s = 0; s < 2; s++) {
            double xs[N], bs[7], h = 1e-6;
            memcpy(xs, x0, sizeof xs);
            memcpy(bs, b0, sizeof bs);
            if (c < N)
                xs[c] += s ? -h : h;
            else
                bs[c - N] += s ? -h : h;
            tg_tape *u = tg_tape_new();
            tg_node *xu = leaf(u, TG_F64, N, xs), *bu = leaf(u, TG_F64, 7, bs);
            tg_node *yu =
                tg_add(vector_fn(u, xu, tg_broadcast_to(tg_sum(bu), 1, (int64_t[]){M}), M, N),
                       tg_sum(tg_mul(bu, bu)));
            for (int r = 0; r < M; r++) col[s][r] = value_of(yu, r);
            tg_tape_free(u);
        }
        for (int r = 0; r < M; r++) {
            double fd = (col[0][r] - col[1][r]) / 2e-6;
            if (!(fabs(jac[r * COLS + c] - fd) <= 1e-7 * fmax(1, fabs(fd))))
                fail_msg("J[%d][%d] = %.17g, central difference %.17g", r, c, jac[r * COLS + c], fd);
        }
    }
    tg_tape_free(t);
}

/* A user op that states only its vjp (f(x) = x^3 as public ops), and one
 * that states only its jvp, give every derivative in both dtypes:
 * tg_backward (derived backward), tg_grad, tg_jvp, the Hessian, gradcheck
 * and gradgradcheck. */
static void cube_forward(tg_args *a) {
    const tg_arg *x = &a->in[0];
    for (int64_t i = 0; i < (int64_t)a->out.numel; i++) {
        double v = (x->dtype == TG_F64 ? ((const double *)x->value)[i] : ((const float *)x->value)[i]);
        if (a->out.dtype == TG_F64)
            ((double *)a->out.value)[i] = v * v * v;
        else
            ((float *)a->out.value)[i] = (float)(v * v * v);
    }
}
static void cube_vjp(tg_node *out, tg_node *g, tg_node **gin) {
    tg_node *x = tg_node_input(out, 0);
    gin[0] = tg_mul(g, tg_scale(tg_mul(x, x), 3));
}
static tg_node *cube_jvp(tg_node *out, tg_node *const *tin) {
    tg_node *x = tg_node_input(out, 0);
    return tg_mul(tg_scale(tg_mul(x, x), 3), tin[0]);
}
static const tg_op cube_by_vjp = {"forward_cube_vjp", 1, NULL, cube_forward, NULL, cube_vjp, NULL};
static const tg_op cube_by_jvp = {"forward_cube_jvp", 1, NULL, cube_forward, NULL, NULL, cube_jvp};

static tg_node *apply_op(tg_tape *t, tg_node *const *in, int n, void *ctx) {
    (void)t, (void)n;
    return tg_apply(ctx, in[0], NULL);
}
/* sum(sin(op(x))): one element, with a second derivative that mixes the
 * elements' rules */
static tg_node *apply_op_sum(tg_tape *t, tg_node *const *in, int n, void *ctx) {
    return tg_sum(tg_sin(apply_op(t, in, n, ctx)));
}

static void test_user_op_one_rule(void **state) {
    (void)state;
    assert_int_equal(tg_op_register(&cube_by_vjp), TG_OK);
    assert_int_equal(tg_op_register(&cube_by_jvp), TG_OK);
    const tg_op *ops[2] = {&cube_by_vjp, &cube_by_jvp};
    tg_dtype dts[2] = {TG_F64, TG_F32};
    const double x0 = 0.8;
    for (int o = 0; o < 2; o++)
        for (int d = 0; d < 2; d++) {
            const char *what = o ? "jvp only" : "vjp only";
            double tol = d ? 1e-6 : 1e-14;
            tg_tape *t = tg_tape_new();
            int64_t one = 1;
            tg_node *x = leaf(t, dts[d], one, &x0);
            tg_node *y = tg_sum(tg_apply(ops[o], x, NULL));
            assert_int_equal(tg_backward(y), TG_OK);
            double g = tg_grad_at(x, 0), want = 3 * x0 * x0;
            if (!(fabs(g - want) <= tol * want)) fail_msg("%s: backward %.17g, want %.17g", what, g, want);
            tg_node *gx, *jv, *v = leaf(t, dts[d], one, (double[]){1});
            assert_int_equal(tg_grad(y, 1, &x, &gx), TG_OK);
            assert_int_equal(tg_jvp(y, 1, &x, &v, &jv), TG_OK);
            if (!(fabs(tg_value_at(gx, 0) - want) <= tol * want)) fail_msg("%s: tg_grad", what);
            if (!(fabs(tg_value_at(jv, 0) - want) <= tol * want)) fail_msg("%s: tg_jvp", what);
            double h;
            assert_int_equal(tg_hessian(y, 1, &x, &h), TG_OK);
            if (!(fabs(h - 6 * x0) <= tol * 6 * x0)) fail_msg("%s: Hessian %.17g", what, h);
            tg_tape_free(t);
            /* gradcheck promotes float32 data to float64: checked once per op */
            if (d) continue;
            tg_gradcheck_report rep;
            const double data[3] = {0.3, -1.2, 2.1};
            const tg_gradcheck_input in = {TG_F64, 1, {3}, data, 0};
            assert_int_equal(tg_gradcheck(apply_op, 1, &in, (void *)ops[o], NULL, &rep), TG_OK);
            if (!rep.passed) fail_msg("%s: gradcheck: %s", what, rep.message);
            int rc = tg_gradgradcheck(apply_op_sum, 1, &in, (void *)ops[o], NULL, &rep);
            if (rc || !rep.passed) fail_msg("%s: gradgradcheck: %d %s", what, rc, rep.message);
        }
}

static void test_errors(void **state) {
    (void)state;
    tg_tape *t = tg_tape_new();
    tg_node *x = tg_scalar(t, 1), *y = tg_sin(x), *jv[2];
    assert_int_equal(tg_jvp_many(y, 1, &x, 0, &x, jv), TG_ERR_ARG);
    assert_non_null(strstr(tg_status_message(t), "k = 0"));
    tg_tape_reset(t);
    x = tg_scalar(t, 1);
    y = tg_sin(x);
    assert_int_equal(tg_jvp_many(y, 1, &x, 2, NULL, jv), TG_ERR_NULL);
    tg_tape_free(t);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_many_is_k_singles),
        cmocka_unit_test(test_many_by_direction),
        cmocka_unit_test(test_product_tangent),
        cmocka_unit_test(test_exp_tangent_reads_y),
        cmocka_unit_test(test_unary_tangent),
        cmocka_unit_test(test_forward_jacobian),
        cmocka_unit_test(test_user_op_one_rule),
        cmocka_unit_test(test_errors),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
