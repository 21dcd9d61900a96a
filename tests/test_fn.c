/*
 * Function objects (tapegrad/fn.h), at points after the recording point:
 * every driver against hand-derived derivatives, against float64 central
 * differences of the object's own values, and against the existing drivers
 * on a fresh recording at that point; on the compact scalar tape, on
 * 64-byte nodes and on tensors (float64 and float32); the tape neither
 * grows nor allocates over 1,000 evaluations of every driver; branch
 * flips of where, abs and maximum (and a branch taken in C) reported, then
 * a re-recording that gives the derivative of the branch now taken; bad
 * input refused with messages.
 */
#include <math.h>
#include <setjmp.h>
#include <stdbool.h>
#include <stdlib.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "tapegrad.h"

#define N1 4

/* ------------------------------------------------------- the function -- */
/* f(x) = sin(x0 x1) + e^(x2/2) x3^2 + x0^2 x2, and what it is by hand. */

static double f1(const double *x) {
    return sin(x[0] * x[1]) + exp(0.5 * x[2]) * x[3] * x[3] + x[0] * x[0] * x[2];
}
static void f1_grad(const double *x, double *g) {
    double c = cos(x[0] * x[1]), e = exp(0.5 * x[2]);
    g[0] = x[1] * c + 2 * x[0] * x[2];
    g[1] = x[0] * c;
    g[2] = 0.5 * e * x[3] * x[3] + x[0] * x[0];
    g[3] = 2 * e * x[3];
}
static void f1_hess(const double *x, double *h) {
    double s = sin(x[0] * x[1]), c = cos(x[0] * x[1]), e = exp(0.5 * x[2]);
    double m[N1][N1] = {{-x[1] * x[1] * s + 2 * x[2], c - x[0] * x[1] * s, 2 * x[0], 0},
                        {0, -x[0] * x[0] * s, 0, 0},
                        {0, 0, 0.25 * e * x[3] * x[3], e * x[3]},
                        {0, 0, 0, 2 * e}};
    for (int i = 0; i < N1; i++)
        for (int j = 0; j < N1; j++) h[i * N1 + j] = i <= j ? m[i][j] : m[j][i];
}

/* The three kinds of recording of f1. */
enum { COMPACT, FULL, TENSOR, TENSOR32 };

static tg_node *f1_nodes(tg_tape *t, tg_node *const *v) {
    tg_node *a = tg_sin(tg_mul(v[0], v[1]));
    tg_node *b = tg_mul(tg_exp(tg_scale(v[2], 0.5)), tg_mul(v[3], v[3]));
    return tg_add(tg_add(a, b), tg_mul(tg_mul(v[0], v[0]), v[2]));
    (void)t;
}

static int rec_f1(tg_tape *t, const double *x, tg_node **in, tg_node **out, void *ctx) {
    int kind = *(const int *)ctx;
    if (kind == FULL) tg_set_scalar_tape(t, 0);
    if (kind == COMPACT || kind == FULL) {
        for (int i = 0; i < N1; i++) in[i] = tg_scalar(t, x[i]);
        out[0] = f1_nodes(t, in);
        return tg_status(t);
    }
    /* one [4] tensor seen through slices */
    const int64_t s4[1] = {N1};
    tg_dtype dt = kind == TENSOR ? TG_F64 : TG_F32;
    float xf[N1];
    for (int i = 0; i < N1; i++) xf[i] = (float)x[i];
    in[0] = tg_tensor(t, dt, 1, s4, dt == TG_F64 ? (const void *)x : (const void *)xf);
    tg_node *v[N1];
    for (int i = 0; i < N1; i++) v[i] = tg_slice(in[0], 0, i, 1);
    out[0] = tg_sum(f1_nodes(t, v));
    return tg_status(t);
}

static int nin_of(int kind) { return kind == COMPACT || kind == FULL ? N1 : 1; }

static tg_fn *make_f1(int *kind, const double *x0) {
    tg_error err;
    tg_fn *f = tg_fn_record(nin_of(*kind), 1, rec_f1, kind, x0, &err);
    if (!f) fail_msg("fn_record: %s", err.message);
    assert_int_equal(tg_fn_inputs(f), N1);
    assert_int_equal(tg_fn_outputs(f), 1);
    return f;
}

static unsigned long long rng = 12345;
static double uniform(double lo, double hi) {
    rng = rng * 6364136223846793005ull + 1442695040888963407ull;
    return lo + (hi - lo) * (double)(rng >> 11) / 9007199254740992.0;
}

static void near(double got, double want, double tol, const char *what, int i) {
    if (!(fabs(got - want) <= tol * (1 + fabs(want))))
        fail_msg("%s[%d]: %.17g, want %.17g (tol %g)", what, i, got, want, tol);
}

static void ok(int rc, const tg_error *err) {
    if (rc) fail_msg("%s: %s", tg_status_name(rc), err->message);
}

/* The existing drivers on a fresh recording of f1 at x: gradient, Hessian,
 * H v and J v. */
static void reference_f1(const double *x, const double *v, double *g, double *h, double *hv,
                         double *jv) {
    tg_tape *t = tg_tape_new();
    tg_node *in[N1], *vn[N1], *hvn[N1], *jvn;
    for (int i = 0; i < N1; i++) in[i] = tg_scalar(t, x[i]), vn[i] = tg_const(t, v[i]);
    tg_node *y = f1_nodes(t, in);
    assert_int_equal(tg_backward(y), TG_OK);
    for (int i = 0; i < N1; i++) g[i] = tg_grad_scalar(in[i]);
    assert_int_equal(tg_hessian(y, N1, in, h), TG_OK);
    assert_int_equal(tg_hvp(y, N1, in, vn, hvn), TG_OK);
    for (int i = 0; i < N1; i++) hv[i] = tg_value_scalar(hvn[i]);
    assert_int_equal(tg_jvp(y, N1, in, vn, &jvn), TG_OK);
    *jv = tg_value_scalar(jvn);
    tg_tape_free(t);
}

/* Every driver at 5 points after the recording point. */
static void drivers_f1(int kind) {
    double tol = kind == TENSOR32 ? 2e-5 : 1e-12, fdtol = kind == TENSOR32 ? 5e-2 : 1e-7;
    const double x0[N1] = {0.3, -0.7, 0.5, 1.1};
    tg_fn *f = make_f1(&kind, x0);
    tg_error err;
    for (int p = 0; p < 5; p++) {
        double x[N1], v[3 * N1], fx, y, g[N1], gh[N1], h[N1 * N1], hh[N1 * N1];
        for (int i = 0; i < N1; i++) x[i] = uniform(-1.5, 1.5);
        for (int i = 0; i < 3 * N1; i++) v[i] = uniform(-1, 1);
        ok(tg_fn_eval(f, x, &y, &err), &err);
        near(y, f1(x), tol, "value", 0);
        ok(tg_fn_grad(f, x, &fx, g, &err), &err);
        near(fx, f1(x), tol, "grad's value", 0);
        f1_grad(x, gh);
        for (int i = 0; i < N1; i++) near(g[i], gh[i], tol, "gradient", i);
        ok(tg_fn_hessian(f, x, h, &err), &err);
        f1_hess(x, hh);
        for (int i = 0; i < N1 * N1; i++) near(h[i], hh[i], tol, "Hessian", i);
        /* H v and J v for 1 and 3 directions, w^T J for 2 weights */
        double hv[3 * N1], jv[3], wj[2 * N1], w[2] = {1.5, -0.25};
        ok(tg_fn_hvp(f, x, 3, v, hv, &err), &err);
        for (int j = 0; j < 3; j++)
            for (int i = 0; i < N1; i++) {
                double want = 0;
                for (int c = 0; c < N1; c++) want += hh[i * N1 + c] * v[j * N1 + c];
                near(hv[j * N1 + i], want, tol, "H v", j * N1 + i);
            }
        double hv1[N1];
        ok(tg_fn_hvp(f, NULL, 1, v + N1, hv1, &err), &err);
        for (int i = 0; i < N1; i++) near(hv1[i], hv[N1 + i], tol, "H v (one)", i);
        ok(tg_fn_jvp(f, x, 3, v, jv, &err), &err);
        for (int j = 0; j < 3; j++) {
            double want = 0;
            for (int c = 0; c < N1; c++) want += gh[c] * v[j * N1 + c];
            near(jv[j], want, tol, "J v", j);
        }
        ok(tg_fn_vjp(f, x, 2, w, wj, &err), &err);
        for (int j = 0; j < 2; j++)
            for (int i = 0; i < N1; i++) near(wj[j * N1 + i], w[j] * gh[i], tol, "w J", i);
        double jac[N1];
        ok(tg_fn_jacobian(f, x, jac, &err), &err);
        for (int i = 0; i < N1; i++) near(jac[i], gh[i], tol, "Jacobian", i);
        /* central differences of the object's own values, and of its gradient */
        for (int i = 0; i < N1; i++) {
            double hstep = kind == TENSOR32 ? 1e-2 : 1e-6, xp[N1], xm[N1], yp, ym, gp[N1], gm[N1];
            memcpy(xp, x, sizeof x), memcpy(xm, x, sizeof x);
            xp[i] += hstep, xm[i] -= hstep;
            ok(tg_fn_grad(f, xp, &yp, gp, &err), &err);
            ok(tg_fn_grad(f, xm, &ym, gm, &err), &err);
            near(g[i], (yp - ym) / (2 * hstep), fdtol, "gradient by differences", i);
            for (int r = 0; r < N1; r++)
                near(h[r * N1 + i], (gp[r] - gm[r]) / (2 * hstep), fdtol, "Hessian by differences",
                     r * N1 + i);
        }
        /* the existing drivers on a recording at x */
        if (kind != TENSOR32) {
            double rg[N1], rh[N1 * N1], rhv[N1], rjv;
            reference_f1(x, v, rg, rh, rhv, &rjv);
            for (int i = 0; i < N1; i++) near(g[i], rg[i], 1e-14, "gradient vs tg_backward", i);
            for (int i = 0; i < N1 * N1; i++) near(h[i], rh[i], 1e-14, "Hessian vs tg_hessian", i);
            for (int i = 0; i < N1; i++) near(hv[i], rhv[i], 1e-14, "H v vs tg_hvp", i);
            near(jv[0], rjv, 1e-14, "J v vs tg_jvp", 0);
        }
    }
    tg_fn_free(f);
}

static void test_drivers_compact(void **state) { (void)state, drivers_f1(COMPACT); }
static void test_drivers_full(void **state) { (void)state, drivers_f1(FULL); }
static void test_drivers_tensor(void **state) { (void)state, drivers_f1(TENSOR); }
static void test_drivers_float32(void **state) { (void)state, drivers_f1(TENSOR32); }

/* ------------------------------------------------- several outputs -- */
/* G(x, s) = (x * x * s, sum(e^x) + s^2), x a [3] tensor, s a scalar: M = N
 * = 4 (the Jacobian by reverse sweeps); and K(a, b) = c a + b^2 for a [5]
 * constant c: N = 2 < M = 5 (by forward columns). */

static int rec_g(tg_tape *t, const double *x, tg_node **in, tg_node **out, void *ctx) {
    (void)ctx;
    const int64_t s3[1] = {3};
    in[0] = tg_tensor(t, TG_F64, 1, s3, x);
    in[1] = tg_scalar(t, x[3]);
    out[0] = tg_mul(tg_mul(in[0], in[0]), in[1]);
    out[1] = tg_add(tg_sum(tg_exp(in[0])), tg_mul(in[1], in[1]));
    return tg_status(t);
}
static void g_jac(const double *x, double *j) {
    memset(j, 0, 16 * sizeof *j);
    for (int i = 0; i < 3; i++) {
        j[i * 4 + i] = 2 * x[i] * x[3];
        j[i * 4 + 3] = x[i] * x[i];
        j[3 * 4 + i] = exp(x[i]);
    }
    j[15] = 2 * x[3];
}

static const double kc[5] = {1, -2, 0.5, 3, -0.25};
static int rec_k(tg_tape *t, const double *x, tg_node **in, tg_node **out, void *ctx) {
    (void)ctx;
    const int64_t s5[1] = {5};
    in[0] = tg_scalar(t, x[0]);
    in[1] = tg_scalar(t, x[1]);
    out[0] = tg_add(tg_mul(tg_input(t, TG_F64, 1, s5, kc), in[0]), tg_mul(in[1], in[1]));
    return tg_status(t);
}

static void test_several_outputs(void **state) {
    (void)state;
    tg_error err;
    double x0[4] = {0.1, 0.2, 0.3, 0.4};
    tg_fn *f = tg_fn_record(2, 2, rec_g, NULL, x0, &err);
    if (!f) fail_msg("%s", err.message);
    assert_int_equal(tg_fn_outputs(f), 4);
    for (int p = 0; p < 4; p++) {
        double x[4], jac[16], want[16], y[4], w[8], wj[8], v[8], jv[8];
        for (int i = 0; i < 4; i++) x[i] = uniform(-1, 1);
        for (int i = 0; i < 8; i++) w[i] = uniform(-1, 1), v[i] = uniform(-1, 1);
        ok(tg_fn_eval(f, x, y, &err), &err);
        for (int i = 0; i < 3; i++) near(y[i], x[i] * x[i] * x[3], 1e-15, "G", i);
        near(y[3], exp(x[0]) + exp(x[1]) + exp(x[2]) + x[3] * x[3], 1e-15, "G", 3);
        ok(tg_fn_jacobian(f, x, jac, &err), &err);
        g_jac(x, want);
        for (int i = 0; i < 16; i++) near(jac[i], want[i], 1e-14, "Jacobian of G", i);
        ok(tg_fn_vjp(f, x, 2, w, wj, &err), &err);
        ok(tg_fn_jvp(f, x, 2, v, jv, &err), &err);
        for (int j = 0; j < 2; j++)
            for (int c = 0; c < 4; c++) {
                double a = 0, b = 0;
                for (int r = 0; r < 4; r++) a += w[j * 4 + r] * want[r * 4 + c];
                for (int r = 0; r < 4; r++) b += want[c * 4 + r] * v[j * 4 + r];
                near(wj[j * 4 + c], a, 1e-14, "w^T J of G", j * 4 + c);
                near(jv[j * 4 + c], b, 1e-14, "J v of G", j * 4 + c);
            }
        /* the existing driver, output by output, on a recording at x */
        tg_tape *t = tg_tape_new();
        tg_node *in[2], *out[2];
        assert_int_equal(rec_g(t, x, in, out, NULL), TG_OK);
        double r0[12], r1[4];
        assert_int_equal(tg_jacobian(out[0], 2, in, r0), TG_OK);
        assert_int_equal(tg_jacobian(out[1], 2, in, r1), TG_OK);
        for (int i = 0; i < 12; i++) near(jac[i], r0[i], 1e-15, "G vs tg_jacobian", i);
        for (int i = 0; i < 4; i++) near(jac[12 + i], r1[i], 1e-15, "G vs tg_jacobian", 12 + i);
        tg_tape_free(t);
        /* the gradient needs one output element */
        double g[4];
        assert_int_equal(tg_fn_grad(f, x, NULL, g, &err), TG_ERR_SHAPE);
        assert_non_null(strstr(err.message, "4 output elements"));
    }
    tg_fn_free(f);

    f = tg_fn_record(2, 1, rec_k, NULL, x0, &err);
    if (!f) fail_msg("%s", err.message);
    for (int p = 0; p < 3; p++) {
        double x[2] = {uniform(-2, 2), uniform(-2, 2)}, jac[10], fd[10], yp[5], ym[5];
        ok(tg_fn_jacobian(f, x, jac, &err), &err);
        for (int r = 0; r < 5; r++) {
            near(jac[r * 2], kc[r], 1e-15, "Jacobian of K", r * 2);
            near(jac[r * 2 + 1], 2 * x[1], 1e-15, "Jacobian of K", r * 2 + 1);
        }
        for (int c = 0; c < 2; c++) {
            double xp[2] = {x[0], x[1]}, xm[2] = {x[0], x[1]};
            xp[c] += 1e-6, xm[c] -= 1e-6;
            ok(tg_fn_eval(f, xp, yp, &err), &err);
            ok(tg_fn_eval(f, xm, ym, &err), &err);
            for (int r = 0; r < 5; r++) fd[r * 2 + c] = (yp[r] - ym[r]) / 2e-6;
        }
        for (int i = 0; i < 10; i++) near(jac[i], fd[i], 1e-7, "K by differences", i);
    }
    tg_fn_free(f);
}

/* ------------------------------------------------------------ growth -- */

static long allocations;
static void *count_malloc(size_t n, void *ctx) { return (void)ctx, allocations++, malloc(n); }
static void *count_realloc(void *p, size_t n, void *ctx) {
    return (void)ctx, allocations++, realloc(p, n);
}
static void count_free(void *p, void *ctx) { (void)ctx, free(p); }

/* 1,000 evaluations of every driver at new points: the tape's positions and
 * bytes stay as after the first, and nothing is allocated. */
static void no_growth(int kind) {
    const double x0[N1] = {0.3, -0.7, 0.5, 1.1};
    tg_fn *f = make_f1(&kind, x0);
    tg_error err;
    double x[N1], v[10 * N1], out[10 * N1], h[N1 * N1], fx;
    for (int i = 0; i < 10 * N1; i++) v[i] = uniform(-1, 1);
    size_t size = 0, bytes = 0;
    for (int it = 0; it < 1001; it++) {
        if (it == 1) {
            size = tg_tape_size(tg_fn_tape(f));
            bytes = tg_tape_bytes(tg_fn_tape(f));
            allocations = 0;
            tg_set_allocator(&(tg_allocator){count_malloc, count_realloc, count_free, NULL});
        }
        for (int i = 0; i < N1; i++) x[i] = uniform(-1, 1);
        ok(tg_fn_eval(f, x, out, &err), &err);
        x[0] += 0.01;
        ok(tg_fn_grad(f, x, &fx, out, &err), &err);
        x[1] += 0.01;
        ok(tg_fn_hvp(f, x, 1, v, out, &err), &err);
        ok(tg_fn_hvp(f, NULL, 10, v, out, &err), &err);
        x[2] += 0.01;
        ok(tg_fn_jvp(f, x, 1, v, out, &err), &err);
        ok(tg_fn_jvp(f, NULL, 10, v, out, &err), &err);
        ok(tg_fn_vjp(f, NULL, 3, v, out, &err), &err);
        x[3] += 0.01;
        ok(tg_fn_jacobian(f, x, out, &err), &err);
        ok(tg_fn_hessian(f, NULL, h, &err), &err);
        double want[N1 * N1];
        f1_hess(x, want);
        for (int i = 0; i < N1 * N1; i++) near(h[i], want[i], kind == TENSOR32 ? 2e-5 : 1e-12, "H", i);
    }
    tg_set_allocator(NULL);
    assert_int_equal(tg_tape_size(tg_fn_tape(f)), size);
    assert_int_equal(tg_tape_bytes(tg_fn_tape(f)), bytes);
    assert_int_equal(allocations, 0);
    tg_fn_free(f);
}

static void test_no_growth_compact(void **state) { (void)state, no_growth(COMPACT); }
static void test_no_growth_tensor(void **state) { (void)state, no_growth(TENSOR); }

/* The same function adopted from the caller's tape. */
static void test_adopt(void **state) {
    (void)state;
    tg_tape *t = tg_tape_new();
    tg_node *in[N1];
    const double x0[N1] = {0.3, -0.7, 0.5, 1.1};
    for (int i = 0; i < N1; i++) in[i] = tg_scalar(t, x0[i]);
    tg_node *y = f1_nodes(t, in);
    tg_error err;
    tg_fn *f = tg_fn_adopt(N1, in, 1, &y, &err);
    if (!f) fail_msg("%s", err.message);
    assert_ptr_equal(tg_fn_tape(f), t);
    double x[N1] = {1, 0.5, -0.5, 2}, g[N1], gh[N1], h[N1 * N1], hh[N1 * N1];
    ok(tg_fn_grad(f, x, NULL, g, &err), &err);
    f1_grad(x, gh);
    for (int i = 0; i < N1; i++) near(g[i], gh[i], 1e-14, "adopted gradient", i);
    ok(tg_fn_hessian(f, x, h, &err), &err);
    f1_hess(x, hh);
    for (int i = 0; i < N1 * N1; i++) near(h[i], hh[i], 1e-14, "adopted Hessian", i);
    size_t size = tg_tape_size(t);
    for (int it = 0; it < 1000; it++) {
        x[it % N1] += 1e-3;
        ok(tg_fn_hessian(f, x, h, &err), &err);
    }
    assert_int_equal(tg_tape_size(t), size);
    /* the caller's rewind takes the nodes away: refused from then on */
    tg_mark m = tg_tape_mark(t);
    tg_scalar(t, 1);
    tg_tape_rewind(t, &m);
    assert_int_equal(tg_fn_grad(f, x, NULL, g, &err), TG_ERR_STATE);
    assert_non_null(strstr(err.message, "reset or rewound"));
    tg_fn_free(f);
    tg_tape_free(t);
}

/* ---------------------------------------------------------- branches -- */
/* b(x) = where(x0 > 0, x0^2, -x0) + abs(x1) x2 + maximum(x1, x2) x0 */

static int rec_b(tg_tape *t, const double *x, tg_node **in, tg_node **out, void *ctx) {
    int kind = ctx ? *(const int *)ctx : COMPACT;
    if (kind == FULL) tg_set_scalar_tape(t, 0);
    for (int i = 0; i < 3; i++) in[i] = tg_scalar(t, x[i]);
    tg_node *zero = tg_const(t, 0);
    tg_node *w = tg_where(tg_gt(in[0], zero), tg_mul(in[0], in[0]), tg_neg(in[0]));
    tg_node *a = tg_mul(tg_abs(in[1]), in[2]);
    out[0] = tg_add(tg_add(w, a), tg_mul(tg_maximum(in[1], in[2]), in[0]));
    return tg_status(t);
}
static void b_grad(const double *x, double *g) {
    double m = x[1] > x[2] ? x[1] : x[2];
    g[0] = (x[0] > 0 ? 2 * x[0] : -1) + m;
    g[1] = (x[1] > 0 ? 1 : -1) * x[2] + (x[1] > x[2] ? x[0] : 0);
    g[2] = fabs(x[1]) + (x[1] > x[2] ? 0 : x[0]);
}

static void flips(int kind) {
    tg_error err;
    const double a[3] = {0.5, 0.75, 0.25}; /* x0 > 0, x1 > 0, x1 > x2 */
    const double b[3] = {-0.5, -0.25, 0.5}; /* every one flipped */
    tg_fn *f = tg_fn_record(3, 1, rec_b, &kind, a, &err);
    if (!f) fail_msg("%s", err.message);
    ok(tg_fn_set_branch_mode(f, TG_FN_BRANCH_FAIL, &err), &err);
    /* gt, where, abs, maximum: one element each */
    assert_int_equal(tg_fn_decisions(f), 4);
    double g[3], want[3], near_a[3] = {0.6, 0.7, 0.3};
    ok(tg_fn_grad(f, near_a, NULL, g, &err), &err);
    assert_int_equal(tg_fn_branch_changes(f, NULL, NULL, 0), 0);
    assert_int_equal(tg_fn_grad(f, b, NULL, g, &err), TG_ERR_BRANCH);
    assert_non_null(strstr(err.message, "4 branch decisions at 4 nodes differ"));
    size_t el, pos[8];
    assert_int_equal(tg_fn_branch_changes(f, &el, pos, 8), 4);
    assert_int_equal(el, 4);
    const char *names[4] = {"gt", "where", "abs", "maximum"};
    for (int i = 0; i < 4; i++)
        assert_string_equal(tg_node_op_name(tg_tape_node(tg_fn_tape(f), pos[i])), names[i]);
    /* the same point again, or NULL: still refused */
    assert_int_equal(tg_fn_grad(f, NULL, NULL, g, &err), TG_ERR_BRANCH);
    /* one flip only */
    double c[3] = {0.5, 0.75, 0.9};
    assert_int_equal(tg_fn_eval(f, c, g, &err), TG_ERR_BRANCH);
    assert_int_equal(tg_fn_branch_changes(f, &el, pos, 8), 1);
    assert_string_equal(tg_node_op_name(tg_tape_node(tg_fn_tape(f), pos[0])), "maximum");
    /* re-recorded at b: that branch's derivative */
    ok(tg_fn_retape(f, b, &err), &err);
    assert_int_equal(tg_fn_retapes(f), 1);
    ok(tg_fn_grad(f, b, NULL, g, &err), &err);
    b_grad(b, want);
    for (int i = 0; i < 3; i++) near(g[i], want[i], 1e-15, "gradient after retape", i);
    /* and back at a, now a flip from b */
    assert_int_equal(tg_fn_grad(f, a, NULL, g, &err), TG_ERR_BRANCH);
    /* automatic retapes */
    ok(tg_fn_set_branch_mode(f, TG_FN_BRANCH_RETAPE, &err), &err);
    ok(tg_fn_grad(f, a, NULL, g, &err), &err);
    b_grad(a, want);
    for (int i = 0; i < 3; i++) near(g[i], want[i], 1e-15, "gradient after a retape", i);
    assert_int_equal(tg_fn_retapes(f), 2);
    tg_fn_free(f);
}
static void test_flips_compact(void **state) { (void)state, flips(COMPACT); }
static void test_flips_full(void **state) { (void)state, flips(FULL); }

/* Elementwise on tensors, with broadcasting: each element counts. */
static int rec_bt(tg_tape *t, const double *x, tg_node **in, tg_node **out, void *ctx) {
    (void)ctx;
    const int64_t s4[1] = {4};
    in[0] = tg_tensor(t, TG_F64, 1, s4, x);
    in[1] = tg_scalar(t, x[4]);
    tg_node *zero = tg_const(t, 0);
    tg_node *w = tg_where(tg_gt(in[0], zero), tg_mul(in[0], in[0]), tg_neg(in[0]));
    tg_node *m = tg_maximum(tg_abs(in[0]), in[1]);
    tg_node *c = tg_clamp_const(in[0], -1, 1);
    out[0] = tg_sum(tg_add(tg_add(w, m), tg_max(tg_mul(c, in[1]))));
    return tg_status(t);
}
static void test_flips_tensor(void **state) {
    (void)state;
    tg_error err;
    const double a[5] = {0.5, -0.5, 1.5, -2, 0.75};
    tg_fn *f = tg_fn_record(2, 1, rec_bt, NULL, a, &err);
    if (!f) fail_msg("%s", err.message);
    ok(tg_fn_set_branch_mode(f, TG_FN_BRANCH_FAIL, &err), &err);
    /* gt 4, where 4, abs 4, maximum 4, clamp 4, max 1 */
    assert_int_equal(tg_fn_decisions(f), 21);
    double g[5], b[5] = {0.6, -0.4, 1.4, -1.9, 0.7};
    ok(tg_fn_grad(f, b, NULL, g, &err), &err);
    b[0] = -0.1; /* gt, where, abs; maximum |x0| vs s stays; clamp stays inside */
    assert_int_equal(tg_fn_grad(f, b, NULL, g, &err), TG_ERR_BRANCH);
    size_t el;
    assert_int_equal(tg_fn_branch_changes(f, &el, NULL, 0), 3);
    assert_int_equal(el, 3);
    /* clamp of x2 now inside, max(|x2|, s) the other way, max(c s) at x0 */
    b[0] = 0.66, b[1] = -0.4, b[2] = 0.65, b[3] = -1.9, b[4] = 0.7;
    assert_int_equal(tg_fn_grad(f, b, NULL, g, &err), TG_ERR_BRANCH);
    assert_int_equal(tg_fn_branch_changes(f, &el, NULL, 0), 3);
    tg_fn_free(f);
}

/* A branch taken in C on a value read while recording: f(x) = x^2 for
 * x > 0, else -x^3, with the decision recorded as a witness comparison. */
static int rec_c(tg_tape *t, const double *x, tg_node **in, tg_node **out, void *ctx) {
    bool witness = ctx != NULL;
    in[0] = tg_scalar(t, x[0]);
    if (witness) tg_gt(in[0], tg_const(t, 0));
    out[0] = x[0] > 0 ? tg_mul(in[0], in[0]) : tg_neg(tg_pow(in[0], 3));
    return tg_status(t);
}
static void test_branch_in_c(void **state) {
    (void)state;
    tg_error err;
    double x = 0.5, g, fx;
    int witness = 1;
    /* without a witness the object cannot know: the recorded branch's
     * derivative at -1 is 2x = -2 (the defect the witness is for) */
    tg_fn *f = tg_fn_record(1, 1, rec_c, NULL, &x, &err);
    x = -1;
    ok(tg_fn_grad(f, &x, &fx, &g, &err), &err);
    assert_true(g == -2 && fx == 1);
    tg_fn_free(f);
    /* with one, the default mode re-records: -3x^2 = -3 */
    x = 0.5;
    f = tg_fn_record(1, 1, rec_c, &witness, &x, &err);
    x = -1;
    ok(tg_fn_grad(f, &x, &fx, &g, &err), &err);
    assert_true(g == -3 && fx == 1);
    assert_int_equal(tg_fn_retapes(f), 1);
    /* no check at all: the recording as it is */
    ok(tg_fn_set_branch_mode(f, TG_FN_BRANCH_IGNORE, &err), &err);
    x = 2;
    ok(tg_fn_grad(f, &x, &fx, &g, &err), &err);
    assert_true(g == -12 && fx == -8);
    tg_fn_free(f);
}

/* Every kind of decision: one op of x per row, recorded at x0; a point on
 * the same side (x1: TG_OK) and one across (x2: TG_ERR_BRANCH naming the
 * op). */
typedef tg_node *(*one_op)(tg_tape *t, tg_node *x);
static tg_node *o_abs(tg_tape *t, tg_node *x) { return (void)t, tg_abs(x); }
static tg_node *o_relu(tg_tape *t, tg_node *x) { return (void)t, tg_relu(x); }
static tg_node *o_leaky(tg_tape *t, tg_node *x) { return (void)t, tg_leaky_relu(x, 0.1); }
static tg_node *o_elu(tg_tape *t, tg_node *x) { return (void)t, tg_elu(x, 1); }
static tg_node *o_sign(tg_tape *t, tg_node *x) { return tg_add(tg_sign(x), tg_mul(x, tg_const(t, 2))); }
static tg_node *o_floor(tg_tape *t, tg_node *x) { return tg_add(tg_floor(x), tg_mul(x, tg_const(t, 2))); }
static tg_node *o_ceil(tg_tape *t, tg_node *x) { return tg_add(tg_ceil(x), tg_mul(x, tg_const(t, 2))); }
static tg_node *o_round(tg_tape *t, tg_node *x) { return tg_add(tg_round(x), tg_mul(x, tg_const(t, 2))); }
static tg_node *o_minimum(tg_tape *t, tg_node *x) { return tg_minimum(x, tg_const(t, 0)); }
static tg_node *o_clamp(tg_tape *t, tg_node *x) { return (void)t, tg_clamp_const(x, -0.5, 0.5); }
static tg_node *o_huber(tg_tape *t, tg_node *x) { return tg_huber(x, tg_const(t, 0), 0.5); }
static tg_node *o_le(tg_tape *t, tg_node *x) { return tg_add(x, tg_le(x, tg_const(t, 0))); }
static tg_node *pair(tg_tape *t, tg_node *x) { /* [x, 0] */
    const int64_t s1[1] = {1};
    tg_node *z = tg_input(t, TG_F64, 1, s1, (const double[]){0});
    return tg_concat(2, (tg_node *[]){tg_reshape(x, 1, s1), z}, 0);
}
static tg_node *o_max(tg_tape *t, tg_node *x) { return tg_max(pair(t, x)); }
static tg_node *o_min(tg_tape *t, tg_node *x) { return tg_min(pair(t, x)); }
static tg_node *o_argmax(tg_tape *t, tg_node *x) { return tg_add(x, tg_argmax(pair(t, x))); }
static tg_node *o_abs_dx(tg_tape *t, tg_node *x) { /* the gradient of |x| x, recorded */
    tg_node *g, *y = tg_mul(tg_abs(x), x);
    tg_grad_nodes(y, 1, &x, &g);
    return (void)t, g;
}
static const struct {
    const char *name; /* the node reported */
    one_op op;
    double x0, x1, x2;
} kinks[] = {
    {"abs", o_abs, 0.5, 0.7, -0.5},        {"relu", o_relu, 0.5, 0.7, -0.5},
    {"leaky_relu", o_leaky, 0.5, 0.7, -0.5}, {"elu", o_elu, -0.5, -0.7, 0.5},
    {"sign", o_sign, 0.5, 0.7, -0.5},      {"floor", o_floor, 0.5, 0.7, 1.5},
    {"ceil", o_ceil, 0.5, 0.7, -0.5},      {"round", o_round, 0.7, 0.8, 0.2},
    {"minimum", o_minimum, 0.5, 0.7, -0.5}, {"clamp", o_clamp, 0.2, 0.3, 0.7},
    {"huber", o_huber, 0.2, -0.3, 0.7},    {"le", o_le, 0.5, 0.7, -0.5},
    {"max", o_max, 0.5, 0.7, -0.5},        {"min", o_min, 0.5, 0.7, -0.5},
    {"argmax", o_argmax, 0.5, 0.7, -0.5},  {"abs_dx", o_abs_dx, 0.5, 0.7, -0.5},
};
static int rec_kink(tg_tape *t, const double *x, tg_node **in, tg_node **out, void *ctx) {
    in[0] = tg_scalar(t, x[0]);
    out[0] = kinks[*(const int *)ctx].op(t, in[0]);
    return tg_status(t);
}
static void test_every_decision(void **state) {
    (void)state;
    for (int i = 0; i < (int)(sizeof kinks / sizeof *kinks); i++) {
        tg_error err;
        tg_fn *f = tg_fn_record(1, 1, rec_kink, &i, &kinks[i].x0, &err);
        if (!f) fail_msg("%s: %s", kinks[i].name, err.message);
        ok(tg_fn_set_branch_mode(f, TG_FN_BRANCH_FAIL, &err), &err);
        double y, g;
        ok(tg_fn_grad(f, &kinks[i].x1, &y, &g, &err), &err);
        if (tg_fn_grad(f, &kinks[i].x2, &y, &g, &err) != TG_ERR_BRANCH)
            fail_msg("%s: no branch change noticed from %g to %g", kinks[i].name, kinks[i].x0,
                     kinks[i].x2);
        size_t pos[4], n = tg_fn_branch_changes(f, NULL, pos, 4);
        bool named = false;
        for (size_t k = 0; k < n && k < 4; k++)
            named |= !strcmp(tg_node_op_name(tg_tape_node(tg_fn_tape(f), pos[k])), kinks[i].name);
        if (!named) fail_msg("%s: not among the %zu nodes reported: %s", kinks[i].name, n, err.message);
        tg_fn_free(f);
    }
}

/* Where a second derivative is not finite, the Hessian's rows come from
 * reverse sweeps, as tg_hessian's: cbrt(x0) + x0 x1 at x0 = 0. */
static int rec_cbrt(tg_tape *t, const double *x, tg_node **in, tg_node **out, void *ctx) {
    (void)ctx;
    in[0] = tg_scalar(t, x[0]);
    in[1] = tg_scalar(t, x[1]);
    out[0] = tg_add(tg_cbrt(in[0]), tg_mul(in[0], in[1]));
    return tg_status(t);
}
static void test_hessian_infinite(void **state) {
    (void)state;
    tg_error err;
    double x0[2] = {1, 2}, x[2] = {0, 3}, h[4], want[4];
    tg_fn *f = tg_fn_record(2, 1, rec_cbrt, NULL, x0, &err);
    ok(tg_fn_hessian(f, x, h, &err), &err);
    tg_tape *t = tg_tape_new();
    tg_node *in[2], *out;
    rec_cbrt(t, x, in, &out, NULL);
    assert_int_equal(tg_hessian(out, 2, in, want), TG_OK);
    /* cbrt''(0) is NaN (its formula's inf - inf); forward mode would
     * multiply it by the zero tangents into the mixed entries too */
    assert_true(isnan(want[0]) && want[1] == 1 && want[2] == 1 && want[3] == 0);
    assert_true(isnan(h[0]));
    assert_memory_equal(h + 1, want + 1, 3 * sizeof *h);
    tg_tape_free(t);
    tg_fn_free(f);
}

/* An input the output does not depend on gets zeros (no gradient memory
 * of its own); inputs recorded apart from each other. */
static int rec_unused(tg_tape *t, const double *x, tg_node **in, tg_node **out, void *ctx) {
    (void)ctx;
    in[0] = tg_scalar(t, x[0]);
    tg_node *sq = tg_mul(in[0], in[0]);
    in[1] = tg_scalar(t, x[1]);
    in[2] = tg_scalar(t, x[2]);
    out[0] = tg_add(sq, tg_mul(in[2], tg_const(t, 3)));
    return tg_status(t);
}
static void test_unused_input(void **state) {
    (void)state;
    tg_error err;
    double x0[3] = {1, 2, 3}, g[3], h[9];
    tg_fn *f = tg_fn_record(3, 1, rec_unused, NULL, x0, &err);
    for (int p = 0; p < 3; p++) {
        double x[3] = {uniform(-1, 1), uniform(-1, 1), uniform(-1, 1)};
        ok(tg_fn_grad(f, x, NULL, g, &err), &err);
        assert_true(g[0] == 2 * x[0] && g[1] == 0 && g[2] == 3);
        ok(tg_fn_hessian(f, x, h, &err), &err);
        for (int i = 0; i < 9; i++) assert_true(h[i] == (i == 0 ? 2 : 0));
    }
    tg_fn_free(f);
}

/* ------------------------------------------------------------ errors -- */

static int rec_fails(tg_tape *t, const double *x, tg_node **in, tg_node **out, void *ctx) {
    (void)ctx;
    in[0] = tg_scalar(t, x[0]);
    out[0] = tg_log(in[0]);
    return x[0] < 0 ? TG_ERR_ARG : TG_OK;
}
static int rec_constant_input(tg_tape *t, const double *x, tg_node **in, tg_node **out, void *ctx) {
    (void)ctx;
    in[0] = tg_const(t, x[0]);
    out[0] = tg_exp(in[0]);
    return TG_OK;
}
static int rec_shape_changes(tg_tape *t, const double *x, tg_node **in, tg_node **out, void *ctx) {
    (void)ctx;
    const int64_t s[1] = {x[0] > 0 ? 1 : 2};
    in[0] = tg_tensor(t, TG_F64, 1, s, (const double[]){x[0], x[0]});
    tg_gt(in[0], tg_const(t, 0));
    out[0] = tg_sum(in[0]);
    return TG_OK;
}

static void expect(int rc, int code, const tg_error *err, const char *words) {
    if (rc != code || err->code != code || !strstr(err->message, words))
        fail_msg("got %s \"%s\", want %s with \"%s\"", tg_status_name(rc), err->message,
                 tg_status_name(code), words);
}

static void test_errors(void **state) {
    (void)state;
    tg_error err;
    double x = 1, y, g[4];
    expect(tg_fn_eval(NULL, &x, &y, &err), TG_ERR_NULL, &err, "function is NULL");
    assert_null(tg_fn_record(1, 1, NULL, NULL, &x, &err));
    expect(err.code, TG_ERR_NULL, &err, "recorder is NULL");
    assert_null(tg_fn_record(0, 1, rec_fails, NULL, &x, &err));
    expect(err.code, TG_ERR_ARG, &err, "0 inputs");
    x = -1;
    assert_null(tg_fn_record(1, 1, rec_fails, NULL, &x, &err));
    expect(err.code, TG_ERR_ARG, &err, "the recorder failed (TG_ERR_ARG)");
    assert_null(tg_fn_record(1, 1, rec_constant_input, NULL, &x, &err));
    expect(err.code, TG_ERR_ARG, &err, "input 0 (node 0, leaf) is not a leaf that wants a gradient");
    x = 2;
    tg_fn *f = tg_fn_record(1, 1, rec_fails, NULL, &x, &err);
    assert_non_null(f);
    expect(tg_fn_grad(f, &x, NULL, NULL, &err), TG_ERR_NULL, &err, "fn_grad: g is NULL");
    expect(tg_fn_hvp(f, &x, 0, g, g, &err), TG_ERR_ARG, &err, "k = 0 vectors");
    expect(tg_fn_jvp(f, &x, 1, NULL, g, &err), TG_ERR_NULL, &err, "the vectors is NULL");
    expect(tg_fn_set_branch_mode(f, (tg_fn_branch_mode)7, &err), TG_ERR_ARG, &err, "mode 7");
    /* a re-recording that fails keeps the old one */
    x = -3;
    expect(tg_fn_retape(f, &x, &err), TG_ERR_ARG, &err, "the recorder failed");
    ok(tg_fn_grad(f, NULL, &y, g, &err), &err);
    assert_true(y == log(2) && g[0] == 0.5);
    tg_fn_free(f);
    /* a recording of another layout */
    x = 1;
    f = tg_fn_record(1, 1, rec_shape_changes, NULL, &x, &err);
    assert_non_null(f);
    x = -1;
    expect(tg_fn_eval(f, &x, &y, &err), TG_ERR_SHAPE, &err, "input 0 has another shape");
    tg_fn_free(f);

    /* adopted nodes */
    tg_tape *t = tg_tape_new(), *u = tg_tape_new();
    tg_node *a = tg_scalar(t, 1), *b = tg_scalar(u, 2), *c = tg_const(t, 3);
    tg_node *s = tg_mul(a, a), *o = tg_exp(b);
    tg_node *in2[2] = {a, b}, *dup[2] = {a, a};
    assert_null(tg_fn_adopt(2, in2, 1, &s, &err));
    expect(err.code, TG_ERR_TAPE, &err, "input 1 is on another tape");
    assert_null(tg_fn_adopt(1, &a, 1, &o, &err));
    expect(err.code, TG_ERR_TAPE, &err, "output 0 is on another tape");
    assert_null(tg_fn_adopt(2, dup, 1, &s, &err));
    expect(err.code, TG_ERR_ARG, &err, "inputs 0 and 1 are the same node");
    assert_null(tg_fn_adopt(1, &s, 1, &s, &err));
    expect(err.code, TG_ERR_ARG, &err, "is not a leaf");
    assert_null(tg_fn_adopt(1, &c, 1, &s, &err));
    expect(err.code, TG_ERR_ARG, &err, "is not a leaf");
    assert_null(tg_fn_adopt(1, NULL, 1, &s, &err));
    expect(err.code, TG_ERR_NULL, &err, "in is NULL");
    f = tg_fn_adopt(1, &a, 1, &s, &err);
    assert_non_null(f);
    expect(tg_fn_retape(f, NULL, &err), TG_ERR_STATE, &err, "no recorder");
    expect(tg_fn_set_branch_mode(f, TG_FN_BRANCH_RETAPE, &err), TG_ERR_ARG, &err, "needs a recorder");
    /* an error on the tape stops the object, naming it */
    tg_matmul(a, c);
    expect(tg_fn_grad(f, &x, NULL, g, &err), TG_ERR_SHAPE, &err, "the tape's status is TG_ERR_SHAPE");
    tg_fn_free(f);
    tg_tape_reset(t);
    a = tg_scalar(t, 1);
    s = tg_mul(a, a);
    f = tg_fn_adopt(1, &a, 1, &s, &err);
    tg_tape_reset(t);
    expect(tg_fn_grad(f, &x, NULL, g, &err), TG_ERR_STATE, &err, "reset or rewound");
    tg_fn_free(f);
    tg_tape_free(t);
    tg_tape_free(u);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_drivers_compact), cmocka_unit_test(test_drivers_full),
        cmocka_unit_test(test_drivers_tensor),  cmocka_unit_test(test_drivers_float32),
        cmocka_unit_test(test_several_outputs), cmocka_unit_test(test_no_growth_compact),
        cmocka_unit_test(test_no_growth_tensor), cmocka_unit_test(test_adopt),
        cmocka_unit_test(test_flips_compact),   cmocka_unit_test(test_flips_full),
        cmocka_unit_test(test_flips_tensor),    cmocka_unit_test(test_branch_in_c),
        cmocka_unit_test(test_every_decision), cmocka_unit_test(test_hessian_infinite),
        cmocka_unit_test(test_unused_input),
        cmocka_unit_test(test_errors),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
