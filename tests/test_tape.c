/*
 * The tape and the reverse sweep, through the public API: the seeds' worked
 * examples, fan-out, reset, gradient accumulation, caller-owned buffers,
 * poison composition, unreached nodes, float32 and interior outputs.
 */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "scalar.h"

/* cmocka's assert_float_equal compares in float; this compares doubles. */
#define assert_near(a, b, tol) assert_near_at((a), (b), (tol), __LINE__)
static void assert_near_at(double a, double b, double tol, int line) {
    if (!(fabs(a - b) <= tol)) fail_msg("line %d: %.17g != %.17g (tolerance %g)", line, a, b, tol);
}

/* The circuit f = (x + y) * z of the seeds, to the last bit. */
static void test_circuit(void **state) {
    (void)state;
    tg_tape *t = tg_tape_new();
    assert_non_null(t);
    tg_node *x = tg_scalar(t, -2), *y = tg_scalar(t, 5), *z = tg_scalar(t, -4);
    tg_node *q = tg_add(x, y);
    tg_node *f = tg_mul(q, z);
    assert_int_equal(tg_backward(f), TG_OK);
    assert_int_equal(tg_status(t), TG_OK);
    assert_string_equal(tg_status_message(t), "");
    assert_true(tg_value_scalar(q) == 3.0);
    assert_true(tg_value_scalar(f) == -12.0);
    assert_true(tg_grad_scalar(f) == 1.0);
    assert_true(tg_grad_scalar(q) == -4.0); /* df/dq = z */
    assert_true(tg_grad_scalar(x) == -4.0);
    assert_true(tg_grad_scalar(y) == -4.0);
    assert_true(tg_grad_scalar(z) == 3.0);
    /* The tape holds the five nodes in creation order. */
    assert_int_equal(tg_tape_size(t), 5);
    assert_ptr_equal(tg_tape_node(t, 0), x);
    assert_ptr_equal(tg_tape_node(t, 4), f);
    assert_string_equal(tg_node_op_name(f), "mul");
    assert_string_equal(tg_node_op_name(x), "leaf");
    assert_ptr_equal(tg_node_input(f, 0), q);
    assert_ptr_equal(tg_node_input(f, 1), z);
    tg_tape_free(t);
}

/* f = x * x * x uses x three times; its gradient is the sum over the paths. */
static void test_fanout_cube(void **state) {
    (void)state;
    tg_tape *t = tg_tape_new();
    tg_node *x = tg_scalar(t, 3);
    tg_node *f = tg_mul(tg_mul(x, x), x);
    assert_int_equal(tg_backward(f), TG_OK);
    assert_true(tg_value_scalar(f) == 27.0);
    assert_true(tg_grad_scalar(x) == 27.0); /* 3 x^2 */
    tg_tape_free(t);
}

/* f = ab + ac + a: df/da = b + c + 1, df/db = a, df/dc = a. */
static void test_fanout_sum(void **state) {
    (void)state;
    tg_tape *t = tg_tape_new();
    const double av = 2.5, bv = -3.0, cv = 7.25;
    tg_node *a = tg_scalar(t, av), *b = tg_scalar(t, bv), *c = tg_scalar(t, cv);
    tg_node *f = tg_add(tg_add(tg_mul(a, b), tg_mul(a, c)), a);
    assert_int_equal(tg_backward(f), TG_OK);
    assert_true(tg_value_scalar(f) == av * bv + av * cv + av);
    assert_true(tg_grad_scalar(a) == bv + cv + 1);
    assert_true(tg_grad_scalar(b) == av);
    assert_true(tg_grad_scalar(c) == av);
    tg_tape_free(t);
}

/* One define-by-run step: a tensor expression with scalars and a reduction,
 * checked against its closed form, then the tape is reset. */
static void define_by_run_step(tg_tape *t, int step) {
    const int64_t shape[2] = {3, 4};
    double w[12];
    for (int i = 0; i < 12; i++) w[i] = 0.1 * (i + step % 7);
    tg_node *W = tg_tensor(t, TG_F64, 2, shape, w);
    tg_node *s = tg_scalar(t, 1.5);
    /* f = sum(W * s) + s^2: df/dW = s, df/ds = sum(W) + 2 s */
    tg_node *f = tg_add(tg_sum(tg_mul(W, s)), tg_mul(s, s));
    assert_int_equal(tg_backward(f), TG_OK);
    double sw = 0;
    for (int i = 0; i < 12; i++) sw += w[i];
    assert_near(tg_value_scalar(f), 1.5 * sw + 2.25, 1e-12);
    for (int i = 0; i < 12; i++) assert_true(tg_grad_at(W, i) == 1.5);
    assert_near(tg_grad_scalar(s), sw + 3.0, 1e-12);
    tg_tape_reset(t);
    assert_int_equal(tg_tape_size(t), 0);
}

/* A define-by-run loop keeps working across resets and stops allocating:
 * the tape's memory after the first step is all it ever holds. */
static void test_reset_reuses_memory(void **state) {
    (void)state;
    tg_tape *t = tg_tape_new();
    define_by_run_step(t, 0);
    size_t bytes = tg_tape_bytes(t);
    assert_true(bytes > 0);
    for (int step = 1; step < 200; step++) {
        define_by_run_step(t, step);
        assert_int_equal(tg_tape_bytes(t), bytes);
    }
    /* A reset also clears a failed status. */
    tg_node *a = tg_scalar(t, 1);
    const int64_t s2[1] = {2};
    tg_node *v = tg_tensor(t, TG_F64, 1, s2, NULL);
    tg_matmul(a, v);
    assert_int_equal(tg_status(t), TG_ERR_SHAPE);
    tg_tape_reset(t);
    assert_int_equal(tg_status(t), TG_OK);
    assert_string_equal(tg_status_message(t), "");
    define_by_run_step(t, 0);
    assert_int_equal(tg_tape_bytes(t), bytes);
    tg_tape_free(t);
}

/* A tape longer than one chunk of nodes: f = sum_i c_i * x over 5000 terms. */
static void test_long_tape(void **state) {
    (void)state;
    tg_tape *t = tg_tape_new();
    tg_node *x = tg_scalar(t, 0.5);
    tg_node *f = tg_const(t, 0);
    double want = 0;
    for (int i = 1; i <= 5000; i++) {
        f = tg_add(f, tg_mul(tg_const(t, (double)i), x));
        want += i;
    }
    assert_true(tg_tape_size(t) > 3 * TG_CHUNK_NODES);
    assert_int_equal(tg_backward(f), TG_OK);
    assert_true(tg_grad_scalar(x) == want);
    assert_true(tg_value_scalar(f) == 0.5 * want);
    tg_tape_free(t);
}

/* Leaf gradients add up across sweeps until tg_zero_grad(); interior ones are
 * recomputed by each sweep. */
static void test_accumulate_and_zero_grad(void **state) {
    (void)state;
    tg_tape *t = tg_tape_new();
    const int64_t shape[1] = {3};
    const double wv[3] = {1, 2, 3};
    tg_node *x = tg_scalar(t, 2), *w = tg_tensor(t, TG_F64, 1, shape, wv);
    tg_node *xx = tg_mul(x, x);
    tg_node *f = tg_sum(tg_mul(w, xx)); /* x^2 sum(w) */
    assert_int_equal(tg_backward(f), TG_OK);
    assert_true(tg_grad_scalar(x) == 24.0); /* 2 x sum(w) */
    assert_true(tg_grad_scalar(xx) == 6.0);
    for (int i = 0; i < 3; i++) assert_true(tg_grad_at(w, i) == 4.0);
    assert_int_equal(tg_backward(f), TG_OK);
    assert_true(tg_grad_scalar(x) == 48.0);
    assert_true(tg_grad_scalar(xx) == 6.0); /* interior: not doubled */
    assert_true(tg_grad_scalar(f) == 1.0);
    for (int i = 0; i < 3; i++) assert_true(tg_grad_at(w, i) == 8.0);
    tg_zero_grad(t);
    assert_true(tg_grad_scalar(x) == 0.0);
    for (int i = 0; i < 3; i++) assert_true(tg_grad_at(w, i) == 0.0);
    assert_int_equal(tg_backward(f), TG_OK);
    assert_true(tg_grad_scalar(x) == 24.0);
    for (int i = 0; i < 3; i++) assert_true(tg_grad_at(w, i) == 4.0);
    tg_tape_free(t);
}

/* tg_view leaves: the tape reads the caller's values and adds into the
 * caller's gradient buffer, which outlives tg_tape_reset(). */
static void test_view_buffers(void **state) {
    (void)state;
    tg_tape *t = tg_tape_new();
    double w[4] = {1, -2, 3, -4}, gw[4] = {10, 10, 10, 10};
    double b[2] = {0.5, -0.5}; /* an input view: no gradient */
    const int64_t sw[2] = {2, 2}, sb[1] = {2};
    for (int step = 0; step < 2; step++) {
        tg_node *W = tg_view(t, TG_F64, 2, sw, w, gw);
        tg_node *B = tg_view(t, TG_F64, 1, sb, b, NULL);
        assert_ptr_equal(tg_value(W), w);
        assert_ptr_equal(tg_grad(W), gw);
        assert_true(tg_requires_grad(W));
        assert_false(tg_requires_grad(B));
        /* f = sum((W + B)^2), B broadcast over rows: df/dW = 2 (W + B) */
        tg_node *f = tg_sum(tg_pow(tg_add(W, B), 2));
        assert_int_equal(tg_backward(f), TG_OK);
        assert_null(tg_grad(B));
        tg_tape_reset(t);
    }
    for (int i = 0; i < 4; i++)
        assert_true(gw[i] == 10 + 2 * 2 * (w[i] + b[i % 2])); /* two sweeps */
    /* tg_zero_grad clears the caller's buffer too. */
    tg_node *W = tg_view(t, TG_F64, 2, sw, w, gw);
    (void)W;
    tg_zero_grad(t);
    for (int i = 0; i < 4; i++) assert_true(gw[i] == 0);
    const double w0[4] = {1, -2, 3, -4};
    for (int i = 0; i < 4; i++) assert_true(w[i] == w0[i]);
    tg_tape_free(t);
}

/* After the first error every op returns the poison node, and the status and
 * message stay those of the first error. */
static void test_poison(void **state) {
    (void)state;
    tg_tape *t = tg_tape_new();
    const int64_t s23[2] = {2, 3}, s45[2] = {4, 5};
    tg_node *a = tg_tensor(t, TG_F64, 2, s23, NULL), *b = tg_tensor(t, TG_F64, 2, s45, NULL);
    tg_node *x = tg_scalar(t, 1);
    size_t before = tg_tape_size(t);
    tg_node *p = tg_matmul(a, b);
    assert_non_null(p);
    assert_int_equal(tg_status(t), TG_ERR_SHAPE);
    const char *want = "matmul: [2,3] x [4,5]: inner dimensions differ";
    assert_string_equal(tg_status_message(t), want);
    assert_int_equal(tg_tape_size(t), before); /* the failed op left nothing */
    assert_true(isnan(tg_value_scalar(p)));
    /* Everything composes, yielding the poison node, even ops that would fail
     * in their own right. */
    assert_ptr_equal(tg_add(p, x), p);
    assert_ptr_equal(tg_sigmoid(tg_mul(x, x)), p);
    assert_ptr_equal(tg_matmul(x, x), p);
    assert_ptr_equal(tg_sum_axis(x, 7), p);
    assert_ptr_equal(tg_reshape(a, 1, (const int64_t[]){5}), p);
    assert_ptr_equal(tg_mse(p, p), p);
    assert_ptr_equal(tg_scalar(t, 2), p);
    assert_ptr_equal(tg_tensor(t, TG_F64, 2, s23, NULL), p);
    assert_ptr_equal(tg_call("no such op", x, NULL), p);
    assert_ptr_equal(tg_node_tape(p), t);
    assert_int_equal(tg_backward(tg_add(tg_mul(p, x), x)), TG_ERR_SHAPE);
    assert_int_equal(tg_backward(x), TG_ERR_SHAPE);
    assert_int_equal(tg_forward(t), TG_ERR_SHAPE);
    assert_int_equal(tg_tape_size(t), before);
    assert_int_equal(tg_status(t), TG_ERR_SHAPE);
    assert_string_equal(tg_status_message(t), want);
    tg_tape_free(t);
}

/* Nodes off every path from a wanted leaf to the output get no gradient. */
static void test_unreached(void **state) {
    (void)state;
    tg_tape *t = tg_tape_new();
    const int64_t s2[1] = {2};
    tg_node *x = tg_scalar(t, 3), *w = tg_scalar(t, 4), *c = tg_const(t, 5);
    tg_node *in = tg_input(t, TG_F64, 1, s2, (const double[]){1, 2});
    tg_node *side = tg_mul(w, x);        /* uses x, but f does not use it */
    tg_node *cc = tg_exp(c);             /* constants only: wants no gradient */
    tg_node *f = tg_mul(tg_mul(x, cc), tg_sum(in));
    assert_false(tg_requires_grad(cc));
    assert_true(tg_requires_grad(side));
    assert_int_equal(tg_backward(f), TG_OK);
    assert_near(tg_grad_scalar(x), exp(5.0) * 3, 1e-9);
    assert_null(tg_grad(w));
    assert_true(tg_grad_scalar(w) == 0);
    assert_null(tg_grad(side));
    assert_null(tg_grad(c));
    assert_null(tg_grad(cc));
    assert_null(tg_grad(in));
    assert_true(tg_grad_at(in, 1) == 0);
    tg_tape_free(t);
}

/* An identity op that counts how often its backward rule runs. */
static int probe_backward_calls;
static void probe_forward(tg_args *a) {
    *(double *)a->out.value = *(const double *)a->in[0].value;
}
static void probe_backward(tg_args *a) {
    probe_backward_calls++;
    double *gx = a->in[0].grad;
    if (gx) *gx += *(const double *)a->out.grad;
}
static const tg_op probe = {"tape_test_probe", 1, NULL, probe_forward, probe_backward, NULL, NULL};

/* The sweep runs the backward rule of exactly the nodes on a path from a
 * leaf that wants a gradient to the output, each once. */
static void test_sweep_visits_only_paths(void **state) {
    (void)state;
    assert_int_equal(tg_op_register(&probe), TG_OK);
    tg_tape *t = tg_tape_new();
    tg_node *x = tg_scalar(t, 2), *w = tg_scalar(t, 3), *c = tg_const(t, 4);
    tg_node *px = tg_apply(&probe, x, NULL);  /* on the path, used twice below */
    tg_node *pw = tg_apply(&probe, w, NULL);  /* wants a gradient, not used by f */
    tg_node *pc = tg_apply(&probe, c, NULL);  /* used by f, wants no gradient */
    tg_node *f = tg_mul(tg_mul(px, px), pc);  /* 4 x^2 */
    tg_node *after = tg_apply(&probe, f, NULL); /* after the output */
    assert_int_equal(tg_status(t), TG_OK);
    assert_false(tg_requires_grad(pc));
    probe_backward_calls = 0;
    assert_int_equal(tg_backward(f), TG_OK);
    assert_int_equal(probe_backward_calls, 1); /* px only */
    assert_true(tg_grad_scalar(x) == 16);
    assert_null(tg_grad(pw));
    assert_null(tg_grad(w));
    assert_null(tg_grad(pc));
    assert_null(tg_grad(after));
    /* From the last node, the probe after f joins the path. */
    tg_zero_grad(t);
    probe_backward_calls = 0;
    assert_int_equal(tg_backward(after), TG_OK);
    assert_int_equal(probe_backward_calls, 2);
    assert_true(tg_grad_scalar(x) == 16);
    tg_tape_free(t);
}

/* float32 tensors go through the same ops and the same sweep. */
static void test_float32(void **state) {
    (void)state;
    tg_tape *t = tg_tape_new();
    const int64_t s23[2] = {2, 3}, s3[1] = {3};
    const float av[6] = {0.5f, -1, 2, 0.25f, 3, -0.75f}, bv[3] = {1, -2, 0.5f};
    tg_node *a = tg_tensor(t, TG_F32, 2, s23, av), *b = tg_tensor(t, TG_F32, 1, s3, bv);
    tg_node *two = tg_const_as(t, TG_F32, 2);
    /* f = sum(sigmoid(a * b) * 2) */
    tg_node *f = tg_sum(tg_mul(tg_sigmoid(tg_mul(a, b)), two));
    assert_int_equal(tg_node_dtype(f), TG_F32);
    assert_int_equal(tg_backward(f), TG_OK);
    double want = 0;
    for (int i = 0; i < 6; i++) {
        double z = (double)av[i] * bv[i % 3], s = 1 / (1 + exp(-z));
        want += 2 * s;
        assert_near(tg_grad_at(a, i), 2 * s * (1 - s) * bv[i % 3], 1e-6);
        assert_near(((const float *)tg_grad(a))[i], 2 * s * (1 - s) * bv[i % 3], 1e-6);
    }
    for (int j = 0; j < 3; j++) {
        double g = 0;
        for (int r = 0; r < 2; r++) {
            double z = (double)av[r * 3 + j] * bv[j], s = 1 / (1 + exp(-z));
            g += 2 * s * (1 - s) * av[r * 3 + j];
        }
        assert_near(tg_grad_at(b, j), g, 1e-6);
    }
    assert_near(tg_value_scalar(f), want, 1e-5);
    /* float32 and float64 do not mix. */
    tg_add(a, tg_scalar(t, 1));
    assert_int_equal(tg_status(t), TG_ERR_DTYPE);
    tg_tape_free(t);
}

/* A backward sweep may start at any node: d(x + y)/d(x, y, z) = (1, 1, 0). */
static void test_interior_backward(void **state) {
    (void)state;
    tg_tape *t = tg_tape_new();
    tg_node *x = tg_scalar(t, -2), *y = tg_scalar(t, 5), *z = tg_scalar(t, -4);
    tg_node *q = tg_add(x, y);
    tg_node *f = tg_mul(q, z);
    assert_int_equal(tg_backward(q), TG_OK);
    assert_true(tg_grad_scalar(x) == 1 && tg_grad_scalar(y) == 1);
    assert_null(tg_grad(z)); /* after q on the tape: not on the path */
    assert_null(tg_grad(f));
    tg_zero_grad(t);
    assert_int_equal(tg_backward(f), TG_OK);
    assert_true(tg_grad_scalar(x) == -4 && tg_grad_scalar(y) == -4 && tg_grad_scalar(z) == 3);
    assert_true(tg_grad_scalar(q) == -4);
    /* And from q again: q's stale gradient from the sweep of f is not reused. */
    tg_zero_grad(t);
    assert_int_equal(tg_backward(q), TG_OK);
    assert_true(tg_grad_scalar(x) == 1 && tg_grad_scalar(y) == 1);
    assert_true(tg_grad_scalar(q) == 1);
    tg_tape_free(t);
}

/* A non-scalar output with an explicit seed: d(seed . (W * x))/dW = seed * x. */
static void test_seeded(void **state) {
    (void)state;
    tg_tape *t = tg_tape_new();
    const int64_t s3[1] = {3};
    tg_node *w = tg_tensor(t, TG_F64, 1, s3, (const double[]){1, 2, 3});
    tg_node *x = tg_scalar(t, -0.5);
    tg_node *y = tg_mul(w, x);
    const double seed[3] = {0.25, -1, 4};
    assert_int_equal(tg_backward_seeded(y, seed), TG_OK);
    for (int i = 0; i < 3; i++) assert_true(tg_grad_at(w, i) == seed[i] * -0.5);
    assert_true(tg_grad_scalar(x) == 0.25 * 1 - 1 * 2 + 4 * 3);
    tg_tape_free(t);
}

/* Shapes and accessors, and the node layout the design promises. */
static void test_nodes(void **state) {
    (void)state;
    assert_int_equal(sizeof(struct tg_node), 64);
    tg_tape *t = tg_tape_new();
    const int64_t s[4] = {2, 1, 3, 2};
    tg_node *a = tg_tensor(t, TG_F32, 4, s, NULL);
    int64_t got[TG_MAX_DIMS];
    assert_int_equal(tg_shape(a, got), 4);
    assert_memory_equal(got, s, sizeof s);
    assert_int_equal(tg_ndim(a), 4);
    assert_int_equal(tg_numel(a), 12);
    assert_int_equal(tg_node_dtype(a), TG_F32);
    for (int i = 0; i < 12; i++) assert_true(tg_value_at(a, i) == 0);
    assert_true(isnan(tg_value_at(a, 12)));
    assert_true(isnan(tg_value_scalar(a))); /* not one element */
    tg_node *x = tg_scalar(t, 1);
    assert_int_equal(tg_ndim(x), 0);
    assert_int_equal(tg_numel(x), 1);
    assert_int_equal(tg_node_index(x), 1);
    assert_int_equal(tg_node_arity(x), 0);
    assert_int_equal(tg_node_arity(tg_neg(x)), 1);
    tg_tape_free(t);
}

/* A small tape is small: one scalar, a scalar expression with its sweep,
 * the 30-point fit and a small tensor each stay within the figures
 * tapegrad.h states for tg_tape_bytes, and a long scalar tape costs about
 * its records (17 bytes a position, plus partials and gradients). */
static void test_small_tapes_are_small(void **state) {
    (void)state;
    tg_tape *t = tg_tape_new();
    tg_node *x = tg_scalar(t, 2);
    size_t one = tg_tape_bytes(t);
    if (one > 24 * 1024) fail_msg("a tape holding one scalar takes %zu bytes", one);
    tg_backward(tg_sin(tg_mul(x, x)));
    size_t swept = tg_tape_bytes(t);
    if (swept > 48 * 1024) fail_msg("sin(x*x) and its sweep take %zu bytes", swept);
    const int64_t n = 30;
    tg_node *v = tg_tensor(t, TG_F64, 1, &n, NULL);
    tg_backward(tg_sum(tg_mul(v, v)));
    size_t tensor = tg_tape_bytes(t);
    if (tensor > 128 * 1024) fail_msg("with a 30-vector: %zu bytes", tensor);
    assert_int_equal(tg_status(t), TG_OK);
    tg_tape_free(t);

    /* a 30-point least-squares fit a exp(b u_i) ~ i, recorded as scalars */
    t = tg_tape_new();
    tg_node *a = tg_scalar(t, 1), *b = tg_scalar(t, 0.1), *s = tg_const(t, 0);
    for (int i = 0; i < 30; i++) {
        tg_node *r = tg_sub(tg_mul(a, tg_exp(tg_mul(b, tg_const(t, 0.1 * i)))), tg_const(t, i));
        s = tg_add(s, tg_mul(r, r));
    }
    tg_backward(s);
    size_t fit = tg_tape_bytes(t);
    if (fit > 48 * 1024) fail_msg("a 30-point fit takes %zu bytes", fit);
    tg_tape_free(t);

    /* long: the bytes grow with the positions, not by a fixed big step */
    t = tg_tape_new();
    x = tg_scalar(t, 0.5);
    s = x;
    size_t positions[3] = {10000, 100000, 1000000}, done = 1;
    for (int k = 0; k < 3; k++) {
        while (done < positions[k]) {
            s = tg_add(tg_sin(s), x);
            done = tg_tape_size(t);
        }
        tg_backward(s);
        double per = (double)tg_tape_bytes(t) / (double)done;
        if (per > 36) fail_msg("%zu positions: %.1f bytes a position", done, per);
    }
    tg_tape_free(t);
}

/* Marks and rewinds: what is recorded after a mark goes, its memory is
 * reused (the tape stops growing), the nodes before it keep their values. */
static void test_rewind(void **state) {
    (void)state;
    tg_tape *t = tg_tape_new();
    const int64_t s3[1] = {3};
    tg_node *x = tg_tensor(t, TG_F64, 1, s3, (const double[]){0.5, -1, 2});
    tg_node *y = tg_scale(tg_sin(x), 2);
    tg_node *c = tg_scalar(t, 0.25); /* a compact scalar before the mark */
    tg_mark m = tg_tape_mark(t);
    size_t size = tg_tape_size(t), bytes = 0;
    for (int round = 0; round < 100; round++) {
        /* tensors, compact scalars with partials, tensor ops reading them */
        tg_node *z = tg_sum(tg_mul(tg_exp(y), x));
        tg_node *w = tg_add(tg_mul(tg_sin(c), c), z);
        double want = 0.25 * sin(0.25);
        for (int i = 0; i < 3; i++) {
            double xi = ((const double *)tg_value(x))[i];
            want += exp(2 * sin(xi)) * xi;
        }
        assert_true(fabs(tg_value_scalar(w) - want) <= 1e-15 * fabs(want));
        assert_int_equal(tg_backward(w), TG_OK);
        assert_true(fabs(tg_grad_scalar(c) - (sin(0.25) + 0.25 * cos(0.25))) <= 1e-15);
        tg_zero_grad(t);
        assert_int_equal(tg_tape_rewind(t, &m), TG_OK);
        assert_int_equal(tg_tape_size(t), size);
        if (round == 1) bytes = tg_tape_bytes(t);
        if (round > 1) assert_int_equal(tg_tape_bytes(t), bytes); /* no growth */
        /* a node recorded after the mark is gone */
        assert_true(tg_status(tg_node_tape(z)) == TG_OK);
    }
    assert_true(fabs(tg_value_at(y, 2) - 2 * sin(2)) <= 1e-15); /* before the mark: kept */
    /* A stale handle is refused. */
    tg_node *z = tg_exp(y);
    assert_int_equal(tg_tape_rewind(t, &m), TG_OK);
    tg_sum(z);
    assert_int_equal(tg_status(t), TG_ERR_STATE);
    tg_tape_reset(t);
    /* A mark from before a reset, or after an earlier mark that was rewound
     * to, is refused. */
    assert_int_equal(tg_tape_rewind(t, &m), TG_ERR_ARG);
    assert_non_null(strstr(tg_status_message(t), "not valid"));
    tg_tape_reset(t);
    x = tg_scalar(t, 1);
    tg_mark a = tg_tape_mark(t);
    tg_sin(x);
    tg_mark b = tg_tape_mark(t);
    tg_cos(x);
    assert_int_equal(tg_tape_rewind(t, &a), TG_OK);
    tg_exp(x);
    tg_exp(x);
    assert_int_equal(tg_tape_rewind(t, &b), TG_ERR_ARG);
    tg_tape_free(t);
}

/* Gradient memory a sweep after the mark gave a tensor node before it is
 * given back: the node reads as having no gradient, and the next sweep
 * gives it memory again. */
static void test_rewind_gradient_memory(void **state) {
    (void)state;
    tg_tape *t = tg_tape_new();
    const int64_t s4[1] = {4};
    tg_node *x = tg_tensor(t, TG_F64, 1, s4, (const double[]){1, 2, 3, 4});
    tg_node *y = tg_mul(x, x);
    tg_mark m = tg_tape_mark(t);
    for (int round = 0; round < 3; round++) {
        assert_int_equal(tg_backward(tg_sum(y)), TG_OK);
        assert_non_null(tg_grad(y));
        assert_true(tg_grad_at(x, 3) == 8 * (round + 1)); /* the leaf accumulates */
        assert_int_equal(tg_tape_rewind(t, &m), TG_OK);
        assert_null(tg_grad(y));
    }
    tg_tape_free(t);
}

/* The dense drivers rewind what they record: a solver calling them every
 * iteration does not grow the tape, and gets the same numbers. */
static void test_drivers_do_not_grow(void **state) {
    (void)state;
    tg_tape *t = tg_tape_new();
    tg_node *p[2] = {tg_scalar(t, 0.7), tg_scalar(t, -0.3)};
    const int64_t s5[1] = {5};
    tg_node *ts = tg_input(t, TG_F64, 1, s5, (const double[]){0, 0.5, 1, 1.5, 2});
    /* residuals r_i = p0 exp(p1 t_i): 5 outputs, 2 parameters (forward) */
    tg_node *r = tg_mul(p[0], tg_exp(tg_mul(p[1], ts)));
    tg_node *f = tg_sum(tg_mul(r, r));
    double jac0[10], h0[4];
    assert_int_equal(tg_jacobian(r, 2, p, jac0), TG_OK);
    assert_int_equal(tg_hessian(f, 2, p, h0), TG_OK);
    size_t size = tg_tape_size(t), bytes = tg_tape_bytes(t);
    for (int it = 0; it < 1000; it++) {
        double jac[10], h[4];
        assert_int_equal(tg_jacobian(r, 2, p, jac), TG_OK);
        assert_int_equal(tg_hessian(f, 2, p, h), TG_OK);
        assert_memory_equal(jac, jac0, sizeof jac);
        assert_memory_equal(h, h0, sizeof h);
    }
    assert_int_equal(tg_tape_size(t), size);
    assert_int_equal(tg_tape_bytes(t), bytes);
    /* By hand, e_i = exp(p1 t_i): dr_i/dp0 = e_i, dr_i/dp1 = p0 t_i e_i, and
     * f = sum r^2 has H = 2 sum (grad r grad r^T + r Hess r), Hess r_i =
     * [0, t_i e_i; t_i e_i, p0 t_i^2 e_i]. */
    double p0 = 0.7, p1 = -0.3, h[4] = {0, 0, 0, 0};
    for (int i = 0; i < 5; i++) {
        double ti = 0.5 * i, e = exp(p1 * ti), ri = p0 * e, d0 = e, d1 = p0 * ti * e;
        assert_true(fabs(jac0[i * 2] - d0) <= 1e-15 * fabs(d0));
        assert_true(fabs(jac0[i * 2 + 1] - d1) <= 1e-15 * fmax(1, fabs(d1)));
        h[0] += 2 * d0 * d0;
        h[1] += 2 * (d0 * d1 + ri * ti * e);
        h[3] += 2 * (d1 * d1 + ri * p0 * ti * ti * e);
    }
    h[2] = h[1];
    for (int i = 0; i < 4; i++)
        if (!(fabs(h0[i] - h[i]) <= 1e-14 * fmax(1, fabs(h[i]))))
            fail_msg("H[%d] = %.17g, by hand %.17g", i, h0[i], h[i]);
    tg_tape_free(t);
}

/* The constants the library records for itself (slice starts, tg_scale's
 * factor) are one node per value on a tape: 50 slices at two starts and 50
 * scalings by 3 record 50 + 50 nodes and 3 constants, not 100 more. A
 * rewind forgets a constant recorded after the mark, and an op recorded
 * after it gets a live one with the right value, in both dtypes. */
static void test_shared_constants(void **state) {
    (void)state;
    for (int d = 0; d < 2; d++) {
        tg_dtype dt = d ? TG_F32 : TG_F64;
        tg_tape *t = tg_tape_new();
        const double v[6] = {1, 2, 3, 4, 5, 6};
        int64_t six = 6;
        const float v32[6] = {1, 2, 3, 4, 5, 6};
        tg_node *x = tg_input(t, dt, 1, &six, d ? (const void *)v32 : v);
        size_t before = tg_tape_size(t);
        for (int i = 0; i < 50; i++) tg_slice(x, 0, i % 2, 3);
        for (int i = 0; i < 50; i++) tg_scale(x, 3);
        assert_int_equal(tg_tape_size(t) - before, 100 + 3);
        tg_mark m = tg_tape_mark(t);
        tg_node *y = tg_slice(x, 0, 4, 2); /* a start recorded after the mark */
        assert_true(tg_value_at(y, 0) == 5);
        assert_int_equal(tg_tape_rewind(t, &m), TG_OK);
        tg_node *z = tg_add(x, x); /* takes the rewound constant's position */
        y = tg_slice(x, 0, 4, 2);
        assert_int_equal(tg_status(t), TG_OK);
        assert_true(tg_value_at(y, 0) == 5 && tg_value_at(y, 1) == 6 && tg_value_at(z, 0) == 2);
        assert_true(tg_value_at(tg_slice(x, 0, 1, 3), 0) == 2); /* shared from before */
        tg_tape_free(t);
    }
}

/* reshape copies nothing: its value is its input's memory, at recording and
 * after replay, and the tape holds no second copy of a large tensor; its
 * gradient is its own and flows back. The same for a slice of leading rows. */
static void test_reshape_is_a_view(void **state) {
    (void)state;
    tg_tape *t = tg_tape_new();
    int64_t s1[1] = {1 << 16}, s2[2] = {256, 256};
    tg_node *x = tg_tensor(t, TG_F64, 1, s1, NULL);
    size_t before = tg_tape_bytes(t);
    tg_node *y = tg_reshape(x, 2, s2);
    assert_ptr_equal(tg_value(y), tg_value(x));
    assert_true(tg_tape_bytes(t) - before < (size_t)s1[0] * sizeof(double));
    tg_node *f = tg_sum(tg_mul(y, y));
    ((double *)tg_value(x))[3] = 2;
    assert_int_equal(tg_forward(t), TG_OK);
    assert_true(tg_value_scalar(f) == 4 && tg_value_at(y, 3) == 2);
    assert_int_equal(tg_backward(f), TG_OK);
    assert_true(tg_grad_at(x, 3) == 4 && tg_grad_at(x, 4) == 0);
    /* a slice that is one block of memory (rows 2..4 of [256,256]) too; one
     * across rows (a column block) is a copy */
    before = tg_tape_bytes(t);
    tg_node *rows = tg_slice(y, 0, 2, 3);
    assert_true(tg_tape_bytes(t) - before < 3 * 256 * sizeof(double));
    tg_node *cols = tg_slice(y, 1, 2, 3);
    assert_ptr_equal(tg_value(rows), (double *)tg_value(x) + 2 * 256);
    assert_ptr_not_equal(tg_value(cols), (double *)tg_value(x) + 2);
    tg_node *h = tg_sum(tg_mul(rows, rows));
    ((double *)tg_value(x))[2 * 256 + 1] = 3;
    assert_int_equal(tg_forward(t), TG_OK);
    assert_true(tg_value_scalar(h) == 9 && tg_value_at(rows, 1) == 3);
    assert_int_equal(tg_backward(h), TG_OK);
    assert_true(tg_grad_at(x, 3) == 4 && tg_grad_at(x, 2 * 256 + 1) == 6); /* leaves accumulate */
    tg_tape_free(t);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_circuit),
        cmocka_unit_test(test_fanout_cube),
        cmocka_unit_test(test_fanout_sum),
        cmocka_unit_test(test_reset_reuses_memory),
        cmocka_unit_test(test_long_tape),
        cmocka_unit_test(test_accumulate_and_zero_grad),
        cmocka_unit_test(test_view_buffers),
        cmocka_unit_test(test_poison),
        cmocka_unit_test(test_unreached),
        cmocka_unit_test(test_sweep_visits_only_paths),
        cmocka_unit_test(test_float32),
        cmocka_unit_test(test_interior_backward),
        cmocka_unit_test(test_seeded),
        cmocka_unit_test(test_nodes),
        cmocka_unit_test(test_small_tapes_are_small),
        cmocka_unit_test(test_rewind),
        cmocka_unit_test(test_rewind_gradient_memory),
        cmocka_unit_test(test_drivers_do_not_grow),
        cmocka_unit_test(test_shared_constants),
        cmocka_unit_test(test_reshape_is_a_view),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
