/*
 * Higher-order derivatives: tg_grad (differentiable gradients), tg_hvp,
 * tg_jvp, tg_hessian, tg_jacobian and tg_gradgradcheck, against derivatives
 * worked out by hand.
 *
 * The scalar function used throughout is
 *     f(x, y) = x^3 y + sin(x) y^2
 *     f_x  = 3 x^2 y + cos(x) y^2        f_y  = x^3 + 2 y sin(x)
 *     f_xx = 6 x y - sin(x) y^2          f_xy = 3 x^2 + 2 y cos(x)
 *     f_yy = 2 sin(x)
 * and the vector function y = tanh(A x), with J = diag(1 - y^2) A.
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

#include "cube_ops.h"

static const double X0 = 0.7, Y0 = -1.3;

static tg_node *f_of(tg_node *x, tg_node *y) {
    return tg_add(tg_mul(tg_pow(x, 3), y), tg_mul(tg_sin(x), tg_mul(y, y)));
}
static double fx(double x, double y) { return 3 * x * x * y + cos(x) * y * y; }
static double fy(double x, double y) { return x * x * x + 2 * y * sin(x); }
static double fxx(double x, double y) { return 6 * x * y - sin(x) * y * y; }
static double fxy(double x, double y) { return 3 * x * x + 2 * y * cos(x); }
static double fyy(double x, double y) { (void)y; return 2 * sin(x); }

static void expect_close(double got, double want, const char *what) {
    if (!(fabs(got - want) <= 1e-13 * fmax(1, fabs(want))))
        fail_msg("%s: got %.17g, want %.17g", what, got, want);
}

static void test_grad_values_and_second_order(void **state) {
    (void)state;
    tg_tape *t = tg_tape_new();
    tg_node *x = tg_scalar(t, X0), *y = tg_scalar(t, Y0);
    tg_node *f = f_of(x, y);
    tg_node *g[2];
    assert_int_equal(tg_grad(f, 2, (tg_node *[]){x, y}, g), TG_OK);
    expect_close(tg_value_scalar(g[0]), fx(X0, Y0), "f_x");
    expect_close(tg_value_scalar(g[1]), fy(X0, Y0), "f_y");
    /* tg_grad of a gradient node: a Hessian row */
    tg_node *h[2];
    assert_int_equal(tg_grad(g[0], 2, (tg_node *[]){x, y}, h), TG_OK);
    expect_close(tg_value_scalar(h[0]), fxx(X0, Y0), "f_xx");
    expect_close(tg_value_scalar(h[1]), fxy(X0, Y0), "f_xy");
    /* tg_backward over a gradient node gives the same row */
    assert_int_equal(tg_backward(g[1]), TG_OK);
    expect_close(tg_grad_scalar(x), fxy(X0, Y0), "f_yx by tg_backward");
    expect_close(tg_grad_scalar(y), fyy(X0, Y0), "f_yy by tg_backward");
    /* replay: new leaf values flow through the recorded gradient */
    *(double *)tg_value(x) = 0.2;
    *(double *)tg_value(y) = 1.5;
    assert_int_equal(tg_forward(t), TG_OK);
    expect_close(tg_value_scalar(g[0]), fx(0.2, 1.5), "f_x after replay");
    expect_close(tg_value_scalar(h[0]), fxx(0.2, 1.5), "f_xx after replay");
    tg_tape_free(t);
}

/* d^4/dx^4 of x^5 = 120 x, by four nested tg_grad calls. */
static void test_fourth_order(void **state) {
    (void)state;
    tg_tape *t = tg_tape_new();
    tg_node *x = tg_scalar(t, 1.3);
    tg_node *d = tg_mul(tg_mul(x, x), tg_mul(tg_mul(x, x), x));
    for (int k = 0; k < 4; k++) assert_int_equal(tg_grad(d, 1, &x, &d), TG_OK);
    expect_close(tg_value_scalar(d), 120 * 1.3, "x^5 fourth derivative");
    tg_tape_free(t);
}

/* An output that does not depend on a wrt node gives a zero constant of its shape. */
static void test_unrelated_is_zero(void **state) {
    (void)state;
    tg_tape *t = tg_tape_new();
    int64_t n = 3;
    tg_node *x = tg_scalar(t, 2), *v = tg_tensor(t, TG_F64, 1, &n, NULL);
    tg_node *g[2];
    assert_int_equal(tg_grad(tg_exp(x), 2, (tg_node *[]){x, v}, g), TG_OK);
    expect_close(tg_value_scalar(g[0]), exp(2), "d exp(x)/dx");
    assert_int_equal(tg_numel(g[1]), 3);
    for (int i = 0; i < 3; i++) assert_true(tg_value_at(g[1], i) == 0);
    /* a wrt node recorded after the output (found by fuzzing) */
    tg_node *f = tg_exp(x), *later = tg_scalar(t, 1);
    assert_int_equal(tg_grad(f, 2, (tg_node *[]){later, x}, g), TG_OK);
    assert_true(tg_value_scalar(g[0]) == 0);
    expect_close(tg_value_scalar(g[1]), exp(2), "d exp(x)/dx");
    tg_tape_free(t);
}

static void test_hessian_and_hvp(void **state) {
    (void)state;
    tg_tape *t = tg_tape_new();
    tg_node *x = tg_scalar(t, X0), *y = tg_scalar(t, Y0);
    tg_node *f = f_of(x, y);
    /* leaf gradients from an earlier sweep must survive the Hessian */
    assert_int_equal(tg_backward(f), TG_OK);
    double h[4], want[4] = {fxx(X0, Y0), fxy(X0, Y0), fxy(X0, Y0), fyy(X0, Y0)};
    assert_int_equal(tg_hessian(f, 2, (tg_node *[]){x, y}, h), TG_OK);
    for (int i = 0; i < 4; i++) expect_close(h[i], want[i], "hessian");
    expect_close(tg_grad_scalar(x), fx(X0, Y0), "x's gradient kept");
    expect_close(tg_grad_scalar(y), fy(X0, Y0), "y's gradient kept");
    tg_node *v[2] = {tg_const(t, 0.25), tg_const(t, -2)}, *hv[2];
    assert_int_equal(tg_hvp(f, 2, (tg_node *[]){x, y}, v, hv), TG_OK);
    expect_close(tg_value_scalar(hv[0]), 0.25 * want[0] - 2 * want[1], "hvp[0]");
    expect_close(tg_value_scalar(hv[1]), 0.25 * want[2] - 2 * want[3], "hvp[1]");
    tg_tape_free(t);
}

/* y = tanh(A x) for A of m rows and 3 columns: m = 2 goes by reverse sweeps,
 * m = 4 by forward mode (more outputs than inputs). */
static void check_jacobian(int m) {
    static const double a[4][3] = {{0.5, -1, 0.25}, {2, 0.1, -0.3}, {-0.7, 0.4, 1.1}, {0, 1, 1}};
    static const double xv[3] = {0.3, -0.2, 0.9};
    tg_tape *t = tg_tape_new();
    int64_t sa[2] = {m, 3}, sx[2] = {3, 1};
    tg_node *an = tg_input(t, TG_F64, 2, sa, a);
    tg_node *x = tg_tensor(t, TG_F64, 2, sx, xv);
    tg_node *y = tg_tanh(tg_matmul(an, x));
    double jac[12], jv_want[4];
    assert_int_equal(tg_jacobian(y, 1, &x, jac), TG_OK);
    const double v[3] = {1, -0.5, 2};
    for (int r = 0; r < m; r++) {
        double z = 0;
        for (int c = 0; c < 3; c++) z += a[r][c] * xv[c];
        double d = 1 - tanh(z) * tanh(z);
        jv_want[r] = 0;
        for (int c = 0; c < 3; c++) {
            expect_close(jac[r * 3 + c], d * a[r][c], m == 2 ? "reverse jacobian" : "forward jacobian");
            jv_want[r] += d * a[r][c] * v[c];
        }
    }
    tg_node *vn = tg_input(t, TG_F64, 2, sx, v), *jv;
    assert_int_equal(tg_jvp(y, 1, &x, &vn, &jv), TG_OK);
    assert_int_equal(tg_numel(jv), m);
    for (int r = 0; r < m; r++) expect_close(tg_value_at(jv, r), jv_want[r], "jvp");
    tg_tape_free(t);
}

static void test_jacobian_and_jvp(void **state) {
    (void)state;
    check_jacobian(2);
    check_jacobian(4);
}

/* A node named twice among wrt gets its derivative in every place it is
 * named, as tg_grad gives it: f = a*a*b at a = 3, b = 2 with wrt {a, b, a}
 * has gradient [2ab, a^2, 2ab] = [12, 9, 12] and Hessian
 * [[2b, 2a, 2b], [2a, 0, 2a], [2b, 2a, 2b]]; y = [a, 2a, -a] (forward
 * columns, more outputs than inputs) has Jacobian rows [c, c] for c the
 * coefficient. Both dtypes. */
static void test_repeated_wrt(void **state) {
    (void)state;
    for (int dt = TG_F32; dt <= TG_F64; dt++) {
        tg_tape *t = tg_tape_new();
        const int64_t one = 1, three = 3;
        const double av = 3, bv = 2, cv[3] = {1, 2, -1};
        const float af = 3, bf = 2, cf[3] = {1, 2, -1}; /* data is in the node's dtype */
        int f64 = dt == TG_F64;
        tg_node *a = tg_tensor(t, (tg_dtype)dt, 1, &one, f64 ? (const void *)&av : &af);
        tg_node *b = tg_tensor(t, (tg_dtype)dt, 1, &one, f64 ? (const void *)&bv : &bf);
        tg_node *f = tg_sum(tg_mul(tg_mul(a, a), b));
        tg_node *wrt[3] = {a, b, a};
        double h[9], jac[3], hwant[9] = {4, 6, 4, 6, 0, 6, 4, 6, 4}, jwant[3] = {12, 9, 12};
        assert_int_equal(tg_hessian(f, 3, wrt, h), TG_OK);
        for (int i = 0; i < 9; i++) expect_close(h[i], hwant[i], "hessian, repeated wrt");
        assert_int_equal(tg_jacobian(f, 3, wrt, jac), TG_OK); /* reverse: 1 row */
        for (int i = 0; i < 3; i++) expect_close(jac[i], jwant[i], "reverse jacobian, repeated wrt");
        tg_node *y = tg_mul(a, tg_input(t, (tg_dtype)dt, 1, &three, f64 ? (const void *)cv : cf));
        double fj[6];
        assert_int_equal(tg_jacobian(y, 2, (tg_node *[]){a, a}, fj), TG_OK); /* forward */
        for (int r = 0; r < 3; r++)
            for (int c = 0; c < 2; c++)
                expect_close(fj[r * 2 + c], cv[r], "forward jacobian, repeated wrt");
        tg_tape_free(t);
    }
}

/* Second derivatives through broadcasting, reductions, softmax and the costs,
 * in float32 and float64, against float64 finite differences of the
 * gradient (tg_gradgradcheck). */
static tg_node *net(tg_tape *t, tg_node *const *in, int n, void *ctx) {
    (void)n, (void)ctx;
    int64_t s[2] = {2, 3};
    double yv[6] = {1, 0, 0, 0, 0.5, 0.5};
    tg_node *y = tg_input(t, TG_F64, 2, s, yv);
    tg_node *z = tg_add(tg_matmul(in[0], in[1]), in[2]); /* [2,4] x [4,3] + [3] */
    tg_node *a = tg_sigmoid(tg_mul(tg_tanh(z), tg_exp(tg_scale(z, 0.3))));
    return tg_add(tg_softmax_xent(a, y),
                  tg_add(tg_mse(tg_log_softmax(z, 0), y), tg_mean(tg_sqrt(tg_pow(in[2], 2)))));
}

static void test_gradgradcheck_composite(void **state) {
    (void)state;
    double a[8], w[12], b[3] = {0.4, -0.9, 1.2};
    for (int i = 0; i < 8; i++) a[i] = sin(1.7 * i + 0.3);
    for (int i = 0; i < 12; i++) w[i] = cos(2.3 * i + 0.1);
    tg_gradcheck_input in[3] = {
        {TG_F64, 2, {2, 4}, a, 0}, {TG_F64, 2, {4, 3}, w, 0}, {TG_F64, 1, {3}, b, 0}};
    tg_gradcheck_report rep;
    assert_int_equal(tg_gradgradcheck(net, 3, in, NULL, NULL, &rep), TG_OK);
    if (!rep.passed)
        fail_msg("input %d [%lld]: analytic %.17g numeric %.17g", rep.worst.input,
                 (long long)rep.worst.index, rep.worst.analytic, rep.worst.numeric);
    assert_true(rep.checked == 23 + 23); /* H w's pairs, then the gradient's elements */
    assert_int_equal(rep.grad_mismatches, 0);
    assert_string_equal(rep.message, "");
}

/* A user op whose vjp rule is wrong fails gradgradcheck; without a rule,
 * tg_grad names the op. */
static const tg_op cube_twice = {"higher_cube_twice", 1, NULL, cube_forward, cube_backward,
                                 cube_vjp_twice, NULL};
static const tg_op cube_ok = {"higher_cube", 1, NULL, cube_forward, cube_backward, cube_vjp, NULL};
static const tg_op cube_bad = {"higher_cube_bad", 1, NULL, cube_forward, cube_backward,
                               cube_vjp_wrong, NULL};
static const tg_op cube_none = {"higher_cube_none", 1, NULL, cube_forward, cube_backward, NULL, NULL};

static tg_node *apply_named(tg_tape *t, tg_node *const *in, int n, void *ctx) {
    (void)t, (void)n;
    return tg_call(ctx, in[0], NULL);
}

static void test_user_op_rules(void **state) {
    (void)state;
    assert_int_equal(tg_op_register(&cube_ok), TG_OK);
    assert_int_equal(tg_op_register(&cube_bad), TG_OK);
    assert_int_equal(tg_op_register(&cube_none), TG_OK);
    double x = 0.8;
    tg_gradcheck_input in = {TG_F64, 0, {0}, &x, 0};
    tg_gradcheck_report rep;
    assert_int_equal(tg_gradgradcheck(apply_named, 1, &in, "higher_cube", NULL, &rep), TG_OK);
    assert_true(rep.passed);
    expect_close(rep.worst.analytic, 6 * x, "d2 x^3");
    assert_int_equal(tg_gradgradcheck(apply_named, 1, &in, "higher_cube_bad", NULL, &rep), TG_OK);
    assert_false(rep.passed);
    expect_close(rep.worst.analytic, 3 * x, "the wrong rule's second derivative");
    assert_int_equal(tg_op_register(&cube_twice), TG_OK);
    assert_int_equal(tg_gradgradcheck(apply_named, 1, &in, "higher_cube_twice", NULL, &rep), TG_OK);
    assert_false(rep.passed);
    expect_close(rep.worst.analytic, 6 * x * x, "the recorded gradient");
    expect_close(rep.worst.numeric, 3 * x * x, "the kernel's gradient");
    assert_int_equal(tg_gradgradcheck(apply_named, 1, &in, "higher_cube_none", NULL, &rep),
                     TG_ERR_STATE);
    assert_non_null(strstr(rep.message, "higher_cube_none"));
    assert_non_null(strstr(rep.message, "no differentiable backward rule"));
}

/* What tmp holds, from its start, as a string (freed by the caller). */
static char *slurp(FILE *tmp) {
    long n = ftell(tmp);
    char *text = calloc((size_t)n + 1, 1);
    rewind(tmp);
    assert_int_equal(fread(text, 1, (size_t)n, tmp), (size_t)n);
    return text;
}

/* A gradient recorded by tg_grad that disagrees with the backward kernels
 * (higher_cube_twice records 6 x^2, the kernel computes 3 x^2): the report
 * says what failed and where, in its fields, its message and its printed
 * form. The expected figures are the rule's by hand at x = 0.8. */
static void test_recorded_mismatch_report(void **state) {
    (void)state;
    if (!tg_op_find("higher_cube_twice")) assert_int_equal(tg_op_register(&cube_twice), TG_OK);
    double x = 0.8;
    tg_gradcheck_input in = {TG_F64, 0, {0}, &x, 0};
    tg_gradcheck_elem entries[1];
    tg_gradcheck_opts o = tg_gradcheck_defaults();
    o.entries = entries;
    o.max_entries = 1;
    tg_gradcheck_report rep;
    assert_int_equal(tg_gradgradcheck(apply_named, 1, &in, "higher_cube_twice", &o, &rep), TG_OK);
    assert_int_equal(rep.status, TG_OK);
    assert_false(rep.passed);
    assert_int_equal(rep.grad_mismatches, 1);
    assert_int_equal(rep.failed, 1);
    assert_int_equal(rep.checked, 2); /* the Hessian's one entry, the gradient's one element */
    assert_int_equal(rep.worst.input, 0);
    assert_int_equal(rep.worst.index, 0);
    assert_int_equal(rep.worst.row, -1);
    assert_false(rep.worst.ok);
    expect_close(rep.worst.analytic, 6 * x * x, "the recorded gradient");
    expect_close(rep.worst.numeric, 3 * x * x, "the kernel's gradient");
    expect_close(rep.worst.abs_err, 3 * x * x, "abs_err");
    expect_close(rep.worst.rel_err, 1, "rel_err");
    assert_non_null(strstr(rep.message, "disagrees with the backward kernels' at 1 of 1 "
                                        "elements; worst input 0 [0]: recorded 3.84"));
    FILE *tmp = tmpfile();
    assert_non_null(tmp);
    assert_int_equal(tg_gradcheck_print(tmp, &rep, &o), 0);
    char *text = slurp(tmp);
    fclose(tmp);
    if (!strstr(text, "\nFAIL: the gradient tg_grad records (the ops' vjp rules) disagrees with "
                      "the backward kernels' at 1 of 1 elements; worst input 0 [0]: "
                      "3.84") ||
        !strstr(text, "recorded, 1.92") || !strstr(text, "row 0, input 0 [0]"))
        fail_msg("printed:\n%s", text);
    free(text);
}

static void test_errors(void **state) {
    (void)state;
    tg_tape *t = tg_tape_new();
    int64_t n = 2;
    tg_node *x = tg_scalar(t, 1), *c = tg_const(t, 2), *v = tg_tensor(t, TG_F64, 1, &n, NULL);
    tg_node *g;
    assert_int_equal(tg_grad(tg_mul(x, c), 1, &c, &g), TG_ERR_ARG);
    assert_non_null(strstr(tg_status_message(t), "does not want a gradient"));
    tg_tape_reset(t);
    x = tg_scalar(t, 1);
    v = tg_tensor(t, TG_F64, 1, &n, NULL);
    assert_int_equal(tg_grad(tg_mul(x, v), 1, &x, &g), TG_ERR_STATE);
    assert_non_null(strstr(tg_status_message(t), "must have one element"));
    tg_tape_reset(t);
    x = tg_scalar(t, 1);
    v = tg_tensor(t, TG_F64, 1, &n, NULL);
    tg_node *hv;
    assert_int_equal(tg_hvp(tg_mul(x, x), 1, &x, &v, &hv), TG_ERR_SHAPE);
    assert_non_null(strstr(tg_status_message(t), "hvp: v[0] has shape [2]"));
    assert_true(isnan(tg_value_scalar(hv))); /* the poison node, never uninitialised */
    /* on a tape already in error, the outputs are the poison node too */
    g = NULL;
    assert_int_equal(tg_grad(tg_mul(x, x), 1, &x, &g), TG_ERR_SHAPE);
    assert_non_null(g);
    assert_true(isnan(tg_value_scalar(g)));
    tg_tape_free(t);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_grad_values_and_second_order),
        cmocka_unit_test(test_fourth_order),
        cmocka_unit_test(test_unrelated_is_zero),
        cmocka_unit_test(test_hessian_and_hvp),
        cmocka_unit_test(test_jacobian_and_jvp),
        cmocka_unit_test(test_repeated_wrt),
        cmocka_unit_test(test_gradgradcheck_composite),
        cmocka_unit_test(test_user_op_rules),
        cmocka_unit_test(test_recorded_mismatch_report),
        cmocka_unit_test(test_errors),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
