/* Gradient cases and forward-value tests of the activations (ops/activation.c) and losses (ops/loss.c) for training. Included by test_ops.c,
 * after its harness: see the comment above its case table.
 *
 * test_ops.c includes it with TG_TEST_OPS defined: CASES_TRAINING is a list of
 * gradient-case rows, TESTS_TRAINING a list of cmocka_unit_test() entries (each
 * item ending in a comma). test_nonfinite.c includes it with
 * TG_TEST_NONFINITE defined: REFS_TRAINING lists {name, arity, ref} rows for
 * elementwise ops (ref computes the op's definition from libm in double),
 * BUILDS_TRAINING {name, build, expect} rows for the other ops (see that file).
 *
 * The expected values are hand formulas evaluated here with libm (and, where
 * noted, the number PyTorch 1.13 gave for the same call, computed with
 * /usr/bin/python3 while writing; each is re-derivable by hand from the
 * formula in the comment next to it). */

#ifdef TG_TEST_OPS /* --------------------------------------------- test_ops.c -- */

/* Labels fixed by the builders: row r of logits [..., C] gets (3r + 1) mod C. */
static tg_node *fixed_labels(tg_node *z) {
    int64_t shape[4];
    int nd = tg_shape(z, shape);
    int64_t c = shape[nd - 1], rows = tg_numel(z) / c;
    int32_t l[64];
    assert_true(rows <= 64);
    for (int64_t r = 0; r < rows; r++) l[r] = (int32_t)((3 * r + 1) % c);
    return tg_labels(z, l);
}

/* p = 0: the constant parameter of the C constructor; 1: the parameter is
 * the case's second input (and gets a gradient). */
static tg_node *b_leaky_relu(tg_node *const *in, int p) {
    return p ? tg_call("leaky_relu", in[0], in[1]) : tg_leaky_relu(in[0], 0.1);
}
static tg_node *b_elu(tg_node *const *in, int p) {
    return p ? tg_call("elu", in[0], in[1]) : tg_elu(in[0], 1.0);
}
static tg_node *b_elu_half(tg_node *const *in, int p) {
    (void)p;
    return tg_elu(in[0], 0.5);
}
BINARY_BUILDER(bce_with_logits)
/* p = 0: nll_loss of the raw input; 1: of its log_softmax (the usual use). */
static tg_node *b_nll_loss(tg_node *const *in, int p) {
    tg_node *z = p ? tg_log_softmax(in[0], -1) : in[0];
    return tg_nll_loss(z, fixed_labels(in[0]));
}
static tg_node *b_cross_entropy(tg_node *const *in, int p) {
    (void)p;
    return tg_cross_entropy(in[0], fixed_labels(in[0]));
}
/* p = 0: huber(a, y, 1); 1: delta is the third input; 2: huber(a + off, y, 1)
 * with off = 0, 3, -3, 0, 3, -3, ... so that one tensor has elements on both
 * sides of |d| = delta (a and y within 0.45, so |d| <= 0.9 or >= 2.1). */
static tg_node *b_huber(tg_node *const *in, int p) {
    if (p == 1) return tg_call_n("huber", 3, in);
    tg_node *a = in[0];
    if (p == 2) {
        int64_t shape[4];
        int nd = tg_shape(a, shape);
        tg_dtype dt = tg_node_dtype(a);
        tg_node *off = tg_input(tg_node_tape(a), dt, nd, shape, NULL);
        for (int64_t i = 0; i < tg_numel(off); i++) {
            double v = i % 3 == 1 ? 3 : i % 3 == 2 ? -3 : 0;
            if (dt == TG_F64)
                ((double *)tg_value(off))[i] = v;
            else
                ((float *)tg_value(off))[i] = (float)v;
        }
        a = tg_add(a, off);
    }
    return tg_huber(a, in[1], 1.0);
}

#define SMALL_ANY {0, 0.45, 1} /* |v| <= 0.45, either sign */
#define FAR {1.5, 2.5, 1}      /* 1.5 <= |v| <= 2.5 */
#define NEAR0 {0, 0.3, 1}      /* |v| <= 0.3 */
#define SLOPE {0.01, 0.5, 0}

/* An activation at four shapes with its constant parameter, and with the
 * parameter as an input: one element (0-d) and x's shape. x stays away from
 * the kink at 0. */
#define ACTIVATION_CASES(name)                                                             \
    {#name, b_##name, 0, 1, {0}, {{0}}, {AWAY}},                                           \
    {#name, b_##name, 0, 1, {1}, {{5}}, {AWAY}},                                           \
    {#name, b_##name, 0, 1, {2}, {{2, 3}}, {AWAY}},                                        \
    {#name, b_##name, 0, 1, {4}, {{2, 1, 3, 2}}, {AWAY}},                                  \
    {#name, b_##name, 1, 2, {0, 0}, {{0}, {0}}, {AWAY, SLOPE}},                            \
    {#name, b_##name, 1, 2, {2, 0}, {{3, 4}, {0}}, {AWAY, SLOPE}},                         \
    {#name, b_##name, 1, 2, {2, 2}, {{2, 3}, {2, 3}}, {AWAY, SLOPE}},                      \
    {#name, b_##name, 1, 2, {3, 1}, {{2, 1, 2}, {1}}, {AWAY, SLOPE}}

/* Labelled losses: [B, C], [C] (0-d labels), [2, 3, 4] (labels [2, 3]), a
 * 4-D input, and one class (C = 1). */
#define LABEL_CASES(name, p)                                                               \
    {#name, b_##name, p, 1, {2}, {{4, 3}}, {ANY}},                                         \
    {#name, b_##name, p, 1, {1}, {{5}}, {ANY}},                                            \
    {#name, b_##name, p, 1, {3}, {{2, 3, 4}}, {ANY}},                                      \
    {#name, b_##name, p, 1, {4}, {{2, 1, 2, 3}}, {ANY}},                                   \
    {#name, b_##name, p, 1, {2}, {{3, 1}}, {ANY}}

#define CASES_TRAINING                                                                     \
    ACTIVATION_CASES(leaky_relu),                                                          \
    ACTIVATION_CASES(elu),                                                                 \
    {"elu", b_elu_half, 0, 1, {2}, {{2, 3}}, {AWAY}},                                      \
    {"elu", b_elu, 1, 2, {1, 1}, {{4}, {4}}, {{3, 9, 1}, SLOPE}}, /* the tails */          \
    {"bce_with_logits", b_bce_with_logits, 0, 2, {0, 0}, {{0}, {0}}, {ANY, PROB}},          \
    {"bce_with_logits", b_bce_with_logits, 0, 2, {1, 1}, {{5}, {5}}, {ANY, PROB}},          \
    {"bce_with_logits", b_bce_with_logits, 0, 2, {2, 2}, {{2, 3}, {2, 3}}, {ANY, PROB}},    \
    {"bce_with_logits", b_bce_with_logits, 0, 2, {4, 4}, {{2, 1, 3, 2}, {2, 1, 3, 2}}, {ANY, PROB}}, \
    {"bce_with_logits", b_bce_with_logits, 0, 2, {1, 1}, {{4}, {4}}, {{3, 9, 1}, PROB}},   \
    {"bce_with_logits", b_bce_with_logits, 0, 2, {2, 2}, {{2, 3}, {2, 3}}, {ANY, ANY}},    \
    LABEL_CASES(nll_loss, 0),                                                              \
    LABEL_CASES(nll_loss, 1),                                                              \
    LABEL_CASES(cross_entropy, 0),                                                         \
    {"cross_entropy", b_cross_entropy, 0, 1, {2}, {{3, 4}}, {{3, 9, 1}}},                  \
    /* quadratic piece: |a - y| <= 0.9 < delta */                                         \
    {"huber", b_huber, 0, 2, {0, 0}, {{0}, {0}}, {SMALL_ANY, SMALL_ANY}},                  \
    {"huber", b_huber, 0, 2, {2, 2}, {{2, 3}, {2, 3}}, {SMALL_ANY, SMALL_ANY}},            \
    /* linear piece: |a - y| >= 1.2 > delta */                                            \
    {"huber", b_huber, 0, 2, {1, 1}, {{5}, {5}}, {FAR, NEAR0}},                            \
    {"huber", b_huber, 0, 2, {4, 4}, {{2, 1, 3, 2}, {2, 1, 3, 2}}, {FAR, NEAR0}},          \
    /* both pieces in one tensor */                                                        \
    {"huber", b_huber, 2, 2, {2, 2}, {{3, 4}, {3, 4}}, {SMALL_ANY, SMALL_ANY}},            \
    /* delta an input: linear piece (d/d delta = |d| - delta), quadratic (0) */            \
    {"huber", b_huber, 1, 3, {2, 2, 0}, {{2, 3}, {2, 3}, {0}}, {FAR, NEAR0, {0.2, 0.9, 0}}}, \
    {"huber", b_huber, 1, 3, {1, 1, 0}, {{4}, {4}, {0}}, {SMALL_ANY, SMALL_ANY, {1, 2, 0}}},

/* --------------------------------------------------------- forward values -- */

static double ref_sigmoid64(double z) { return 1 / (1 + exp(-z)); }

/* Expects the status of t to be code with a message containing each of the
 * NULL-terminated strings, then resets t. */
static void expect_error(tg_tape *t, int code, const char *const *parts) {
    if (tg_status(t) != code)
        fail_msg("status %s (%s), want %s", tg_status_name(tg_status(t)), tg_status_message(t),
                 tg_status_name(code));
    for (int i = 0; parts[i]; i++)
        if (!strstr(tg_status_message(t), parts[i]))
            fail_msg("message \"%s\" does not name \"%s\"", tg_status_message(t), parts[i]);
    tg_tape_reset(t);
}

/* Gradient of x after tg_backward(sum(y)) at element i. */
static double sum_grad(tg_node *y, tg_node *x, int64_t i) {
    tg_zero_grad(tg_node_tape(y));
    assert_int_equal(tg_backward(tg_sum(y)), TG_OK);
    return tg_grad_at(x, i);
}

static void test_training_activations(void **state) {
    (void)state;
    tg_tape *t = tg_tape_new();
    const double xs[7] = {-3, -0.5, -1e-3, 0, 1e-3, 0.7, 40};
    for (int dt = 0; dt < 2; dt++) {
        tg_dtype d = (tg_dtype)dt;
        double tol = dt ? 1e-15 : 1e-6, want[7];
        for (int i = 0; i < 7; i++) {
            double x = dt ? xs[i] : (double)(float)xs[i];
            want[i] = x > 0 ? x : 0.1 * x;
        }
        expect_values(tg_leaky_relu(vec(t, d, 7, xs), 0.1), want, 7, tol, "leaky_relu 0.1");
        for (int i = 0; i < 7; i++) {
            double x = dt ? xs[i] : (double)(float)xs[i];
            want[i] = x > 0 ? x : 0.5 * expm1(x);
        }
        expect_values(tg_elu(vec(t, d, 7, xs), 0.5), want, 7, tol, "elu 0.5");
        /* elu with PyTorch's default alpha = 1 at the tails: -1 and +inf */
        expect_values(tg_elu(vec(t, d, 3, (const double[]){-INFINITY, -800, INFINITY}), 1),
                      (const double[]){-1, -1, INFINITY}, 3, 0, "elu tails");
        /* a slope per element */
        expect_values(tg_call("leaky_relu", vec(t, d, 3, (const double[]){-2, -2, 3}),
                              vec(t, d, 3, (const double[]){0.5, 0.25, 9})),
                      (const double[]){-1, -0.5, 3}, 3, tol, "leaky_relu slope tensor");
        expect_values(tg_leaky_relu(vec(t, d, 1, (const double[]){NAN}), 0.1),
                      (const double[]){NAN}, 1, 0, "leaky_relu(NaN)");

        /* Kinks, PyTorch's rule (torch: leaky_relu(0, 0.1).grad = 0.1, elu(0,
         * alpha=0.5).grad = 0.5): x = 0 takes the x <= 0 branch. */
        tg_node *x = vec(t, d, 3, (const double[]){0, -1, 2});
        assert_true(sum_grad(tg_leaky_relu(x, 0.1), x, 0) == (dt ? 0.1 : (double)0.1f));
        assert_true(sum_grad(tg_elu(x, 0.5), x, 0) == 0.5);
        assert_true(sum_grad(tg_elu(x, 1), x, 0) == 1);
        /* elu'(-1) = alpha e^-1 (torch: 0.1839 for alpha 0.5); elu'(2) = 1 */
        expect_near(sum_grad(tg_elu(x, 0.5), x, 1), 0.5 * exp(-1.0), tol, "elu'(-1)", 1);
        expect_near(sum_grad(tg_elu(x, 0.5), x, 2), 1, 0, "elu'(2)", 2);
        /* the parameters' gradients: d/ds leaky = x for x <= 0; d/dalpha elu = e^x - 1 */
        tg_node *s = dt ? tg_scalar(t, 0.1) : tg_tensor(t, TG_F32, 0, NULL, (const float[]){0.1f});
        x = vec(t, d, 3, (const double[]){-2, 0, 3});
        assert_int_equal(tg_backward(tg_sum(tg_call("leaky_relu", x, s))), TG_OK);
        expect_near(tg_grad_scalar(s), -2, 0, "d leaky / d slope", 0);
        tg_node *al = dt ? tg_scalar(t, 0.5) : tg_tensor(t, TG_F32, 0, NULL, (const float[]){0.5f});
        assert_int_equal(tg_backward(tg_sum(tg_call("elu", x, al))), TG_OK);
        expect_near(tg_grad_scalar(al), expm1(-2.0), tol, "d elu / d alpha", 0);
    }
    assert_int_equal(tg_status(t), TG_OK);
    tg_tape_free(t);
}

/* -y log sigmoid(z) - (1 - y) log(1 - sigmoid(z)): the definition, fine in
 * double for moderate |z|. */
static double bce_ref(double z, double y) {
    double s = ref_sigmoid64(z);
    return -y * log(s) - (1 - y) * log(1 - s);
}

static void test_training_bce(void **state) {
    (void)state;
    tg_tape *t = tg_tape_new();
    for (int dt = 0; dt < 2; dt++) {
        tg_dtype d = (tg_dtype)dt;
        double tol = dt ? 1e-14 : 1e-6;
        const double z[4] = {0.5, -0.3, 2, -1.5}, y[4] = {0.3, 0.8, 1, 0};
        double want = 0;
        for (int i = 0; i < 4; i++)
            want += bce_ref(dt ? z[i] : (float)z[i], dt ? y[i] : (float)y[i]) / 4;
        tg_node *zn = vec(t, d, 4, z), *yn = vec(t, d, 4, y);
        tg_node *c = tg_bce_with_logits(zn, yn);
        expect_values(c, &want, 1, tol, "bce_with_logits");
        assert_int_equal(tg_ndim(c), 0);
        assert_int_equal(tg_backward(c), TG_OK);
        for (int i = 0; i < 4; i++) {
            double zi = dt ? z[i] : (float)z[i], yi = dt ? y[i] : (float)y[i];
            expect_near(tg_grad_at(zn, i), (ref_sigmoid64(zi) - yi) / 4, tol, "bce dz", i);
            expect_near(tg_grad_at(yn, i), -zi / 4, tol, "bce dy", i);
        }
        /* |z| = 1000, where e^z overflows: (1000 + 1000 + b(0.5, 0.3) + b(-0.3, 0.8)) / 4;
         * torch gives 500.40460805716214, its gradient z (0.25, -0.25, ...)
         * and y (-250, 250, -0.125, 0.075). */
        const double zb[4] = {1000, -1000, 0.5, -0.3}, yb[4] = {0, 1, 0.3, 0.8};
        double wb = (2000 + bce_ref(0.5, 0.3) + bce_ref(-0.3, 0.8)) / 4;
        assert_true(fabs(wb - 500.40460805716214) < 1e-12);
        zn = vec(t, d, 4, zb);
        yn = vec(t, d, 4, yb);
        c = tg_bce_with_logits(zn, yn);
        expect_values(c, &wb, 1, dt ? 1e-15 : 1e-6, "bce_with_logits |z| = 1000");
        assert_int_equal(tg_backward(c), TG_OK);
        expect_near(tg_grad_at(zn, 0), 0.25, 0, "bce dz at 1000", 0);
        expect_near(tg_grad_at(zn, 1), -0.25, 0, "bce dz at -1000", 1);
        expect_near(tg_grad_at(yn, 0), -250, 0, "bce dy at 1000", 0);
        expect_near(tg_grad_at(yn, 1), 250, 0, "bce dy at -1000", 1);
        /* the right answer at +-1000 costs exactly 0 (log1p(e^-1000) = 0) */
        expect_values(tg_bce_with_logits(vec(t, d, 2, (const double[]){1000, -1000}),
                                         vec(t, d, 2, (const double[]){1, 0})),
                      (const double[]){0}, 1, 0, "bce_with_logits confident and right");
        /* 0-d operands; NaN in either operand */
        tg_node *z0 = dt ? tg_const(t, -2) : tg_const_as(t, TG_F32, -2);
        tg_node *y0 = dt ? tg_const(t, 0.25) : tg_const_as(t, TG_F32, 0.25);
        double w0 = bce_ref(-2, 0.25);
        expect_values(tg_bce_with_logits(z0, y0), &w0, 1, tol, "bce_with_logits 0-d");
        expect_values(tg_bce_with_logits(vec(t, d, 2, (const double[]){1, NAN}), vec(t, d, 2, y)),
                      (const double[]){NAN}, 1, 0, "bce_with_logits NaN z");
        expect_values(tg_bce_with_logits(vec(t, d, 2, z), vec(t, d, 2, (const double[]){NAN, 1})),
                      (const double[]){NAN}, 1, 0, "bce_with_logits NaN y");
    }
    assert_int_equal(tg_status(t), TG_OK);
    tg_tape_free(t);
}

static void test_training_class_losses(void **state) {
    (void)state;
    tg_tape *t = tg_tape_new();
    for (int dt = 0; dt < 2; dt++) {
        tg_dtype d = (tg_dtype)dt;
        double tol = dt ? 1e-15 : 1e-6;
        /* nll: -(p[0,1] + p[1,2]) / 2 = (2 + 1) / 2 (torch: 1.5, gradient
         * -0.5 at the labelled entries, 0 elsewhere) */
        tg_node *p = mat(t, d, 2, 3, (const double[]){-1, -2, -3, -0.5, -4, -1});
        tg_node *c = tg_nll_loss(p, tg_labels(p, (const int32_t[]){1, 2}));
        expect_values(c, (const double[]){1.5}, 1, tol, "nll_loss");
        assert_int_equal(tg_backward(c), TG_OK);
        for (int i = 0; i < 6; i++)
            expect_near(tg_grad_at(p, i), i == 1 || i == 5 ? -0.5 : 0, 0, "nll grad", i);
        /* only the labelled entry is read: a NaN elsewhere does not reach C */
        tg_node *pn = vec(t, d, 3, (const double[]){NAN, -2, NAN});
        expect_values(tg_nll_loss(pn, tg_labels(pn, (const int32_t[]){1})), (const double[]){2},
                      1, 0, "nll_loss [C]");

        /* cross-entropy of [[1,2,3],[0,0,0]] with labels [2, 0]:
         * ((lse(1,2,3) - 3) + (log 3 - 0)) / 2; torch: 0.7531091265562451 */
        double lse0 = log(exp(1.0) + exp(2.0) + exp(3.0));
        double want = ((lse0 - 3) + log(3.0)) / 2;
        assert_true(fabs(want - 0.7531091265562451) < 1e-15);
        tg_node *z = mat(t, d, 2, 3, (const double[]){1, 2, 3, 0, 0, 0});
        c = tg_cross_entropy(z, tg_labels(z, (const int32_t[]){2, 0}));
        expect_values(c, &want, 1, tol, "cross_entropy");
        assert_int_equal(tg_backward(c), TG_OK);
        /* (softmax - onehot) / 2; torch: 0.0450, 0.1224, -0.1674 / -0.3333, 0.1667, 0.1667 */
        for (int j = 0; j < 3; j++) {
            expect_near(tg_grad_at(z, j), (exp(j + 1.0 - lse0) - (j == 2)) / 2, tol, "xent dz", j);
            expect_near(tg_grad_at(z, 3 + j), (1 / 3.0 - (j == 0)) / 2, tol, "xent dz", 3 + j);
        }
        /* the same through nll_loss(log_softmax) and through softmax_xent(one-hot) */
        tg_node *l = tg_labels(z, (const int32_t[]){2, 0});
        expect_values(tg_nll_loss(tg_log_softmax(z, -1), l), &want, 1, tol, "nll(log_softmax)");
        expect_values(tg_softmax_xent(z, mat(t, d, 2, 3, (const double[]){0, 0, 1, 1, 0, 0})),
                      &want, 1, tol, "softmax_xent one-hot");

        /* stability: [1000, -1000] with label 1 costs 2000 (torch: 2000,
         * gradient [1, -1]); two equal logits of -1000 cost log 2 */
        tg_node *far = vec(t, d, 2, (const double[]){1000, -1000});
        c = tg_cross_entropy(far, tg_labels(far, (const int32_t[]){1}));
        expect_values(c, (const double[]){2000}, 1, 0, "cross_entropy [1000,-1000]");
        assert_int_equal(tg_backward(c), TG_OK);
        expect_near(tg_grad_at(far, 0), 1, 0, "xent dz far", 0);
        expect_near(tg_grad_at(far, 1), -1, 0, "xent dz far", 1);
        tg_node *low = vec(t, d, 2, (const double[]){-1000, -1000});
        expect_values(tg_cross_entropy(low, tg_labels(low, (const int32_t[]){0})),
                      (const double[]){log(2.0)}, 1, tol, "cross_entropy [-1000,-1000]");
        /* a confident right answer keeps its tiny cost log1p(e^-40) = 4.25e-18
         * (log(1 + e^-40) would round to 0) */
        tg_node *sure = vec(t, d, 2, (const double[]){0, -40});
        c = tg_cross_entropy(sure, tg_labels(sure, (const int32_t[]){0}));
        expect_values(c, (const double[]){log1p(exp(-40.0))}, 1, dt ? 1e-15 : 1e-6,
                      "cross_entropy confident");
        if (!(tg_value_scalar(c) > 0)) fail_msg("cross_entropy of a confident right answer is 0");
        /* NaN logits give a NaN cost, wherever they are in the row */
        for (int at = 0; at < 3; at++) {
            double v[3] = {0.5, 1, -2};
            v[at] = NAN;
            tg_node *zn = vec(t, d, 3, v);
            expect_values(tg_cross_entropy(zn, tg_labels(zn, (const int32_t[]){1})),
                          (const double[]){NAN}, 1, 0, "cross_entropy NaN");
        }
        /* [2, 2, 3]: four rows, labels [2, 2] */
        const double z3[12] = {1, 0, -1, 0.5, 0.5, 2, -3, 1, 0, 2, 2, 2};
        const int32_t l3[4] = {0, 2, 1, 1};
        double w3 = 0;
        for (int r = 0; r < 4; r++) {
            const double *zr = z3 + 3 * r;
            w3 += (log(exp(zr[0]) + exp(zr[1]) + exp(zr[2])) - zr[l3[r]]) / 4;
        }
        tg_node *x3 = tg_reshape(vec(t, d, 12, z3), 3, (const int64_t[]){2, 2, 3});
        tg_node *lab3 = tg_labels(x3, l3);
        assert_int_equal(tg_ndim(lab3), 2);
        expect_values(tg_cross_entropy(x3, lab3), &w3, 1, dt ? 1e-14 : 1e-6, "cross_entropy 3-D");
    }
    assert_int_equal(tg_status(t), TG_OK);
    tg_tape_free(t);
}

static void test_training_huber(void **state) {
    (void)state;
    tg_tape *t = tg_tape_new();
    for (int dt = 0; dt < 2; dt++) {
        tg_dtype d = (tg_dtype)dt;
        double tol = dt ? 1e-15 : 1e-6;
        /* d = a - y = 0, 1, 2, -1, 2.5; delta 1: h = 0, 0.5, 1.5, 0.5, 2;
         * mean 0.9 (torch: 0.9, gradient 0, 0.2, 0.2, -0.2, 0.2) */
        tg_node *a = vec(t, d, 5, (const double[]){0, 1, 2, -1, 3});
        tg_node *y = vec(t, d, 5, (const double[]){0, 0, 0, 0, 0.5});
        tg_node *c = tg_huber(a, y, 1);
        expect_values(c, (const double[]){0.9}, 1, tol, "huber");
        assert_int_equal(tg_backward(c), TG_OK);
        /* at |d| = delta (elements 1 and 3) the gradient is +-delta / N: the
         * pieces meet with equal slopes (PyTorch's clamp(d, -delta, delta)) */
        const double ga[5] = {0, 0.2, 0.2, -0.2, 0.2};
        for (int i = 0; i < 5; i++) {
            expect_near(tg_grad_at(a, i), ga[i], tol, "huber da", i);
            expect_near(tg_grad_at(y, i), -ga[i], tol, "huber dy", i);
        }
        /* delta 0.5: h(d) = d^2/2 below 0.5, else 0.5 (|d| - 0.25) */
        const double av[4] = {0.3, -0.5, 1.75, -4}, yv[4] = {0, 0, 0.25, 0};
        double w = 0;
        for (int i = 0; i < 4; i++) {
            double dd = fabs(av[i] - yv[i]);
            w += (dd < 0.5 ? dd * dd / 2 : 0.5 * (dd - 0.25)) / 4;
        }
        expect_values(tg_huber(mat(t, d, 2, 2, av), mat(t, d, 2, 2, yv), 0.5), &w, 1, tol,
                      "huber delta 0.5");
        /* delta as a variable: dC/d delta = (|2| - 1 + |2.5| - 1) / 5 = 0.5
         * (|d| = delta contributes 0) */
        tg_node *dl = dt ? tg_scalar(t, 1) : tg_tensor(t, TG_F32, 0, NULL, (const float[]){1});
        c = tg_call_n("huber", 3, (tg_node *[]){a, y, dl});
        assert_int_equal(tg_backward(c), TG_OK);
        expect_near(tg_grad_scalar(dl), 0.5, tol, "huber d delta", 0);
        /* 0-d, and NaN */
        tg_node *a0 = dt ? tg_const(t, 3) : tg_const_as(t, TG_F32, 3);
        tg_node *y0 = dt ? tg_const(t, 0.5) : tg_const_as(t, TG_F32, 0.5);
        expect_values(tg_huber(a0, y0, 2), (const double[]){2 * (2.5 - 1)}, 1, tol, "huber 0-d");
        expect_values(tg_huber(vec(t, d, 2, (const double[]){1, NAN}), vec(t, d, 2, yv), 1),
                      (const double[]){NAN}, 1, 0, "huber NaN");
    }
    assert_int_equal(tg_status(t), TG_OK);
    tg_tape_free(t);
}

/* Bad labels and parameters: errors naming what is wrong, never a read or
 * write out of bounds (this test runs under ASan too). */
static void test_training_errors(void **state) {
    (void)state;
    tg_tape *t = tg_tape_new();
    for (int dt = 0; dt < 2; dt++) {
        tg_dtype d = (tg_dtype)dt;
        const double zv[6] = {1, 2, 3, 0, 0, 0};
        tg_node *z = mat(t, d, 2, 3, zv);
        tg_cross_entropy(z, tg_labels(z, (const int32_t[]){0, 3}));
        expect_error(t, TG_ERR_ARG,
                     (const char *[]){"cross_entropy", "row 1", "label 3", "3 classes", NULL});
        z = mat(t, d, 2, 3, zv);
        tg_nll_loss(z, tg_labels(z, (const int32_t[]){-1, 0}));
        expect_error(t, TG_ERR_ARG, (const char *[]){"nll_loss", "row 0", "label -1", NULL});
        z = mat(t, d, 2, 3, zv);
        tg_cross_entropy(z, vec(t, d, 2, (const double[]){1, 0.5}));
        expect_error(t, TG_ERR_ARG,
                     (const char *[]){"row 1", "label 0.5", "not an integer", NULL});
        z = mat(t, d, 2, 3, zv);
        tg_cross_entropy(z, vec(t, d, 2, (const double[]){NAN, 0}));
        expect_error(t, TG_ERR_ARG, (const char *[]){"row 0", "label nan", NULL});
        /* labels of the wrong shape */
        z = mat(t, d, 2, 3, zv);
        tg_cross_entropy(z, vec(t, d, 3, (const double[]){0, 0, 0}));
        expect_error(t, TG_ERR_SHAPE, (const char *[]){"cross_entropy", "[2,3]", "[3]", NULL});
        tg_node *s0 = dt ? tg_const(t, 1) : tg_const_as(t, TG_F32, 1);
        tg_cross_entropy(s0, s0);
        expect_error(t, TG_ERR_SHAPE, (const char *[]){"cross_entropy", "0-d", "class axis", NULL});
        tg_labels(dt ? tg_const(t, 1) : tg_const_as(t, TG_F32, 1), (const int32_t[]){0});
        expect_error(t, TG_ERR_SHAPE, (const char *[]){"labels", "class axis", NULL});

        /* replay: new labels written through tg_value() are checked by
         * tg_forward (the cost becomes NaN) and by the sweep */
        z = tg_tensor(t, d, 2, (const int64_t[]){2, 3}, NULL);
        tg_node *l = tg_labels(z, (const int32_t[]){0, 2});
        tg_node *c = tg_cross_entropy(z, l);
        assert_int_equal(tg_forward(t), TG_OK);
        expect_near(tg_value_scalar(c), log(3.0), dt ? 1e-15 : 1e-6, "xent of zeros", 0);
        if (dt) ((double *)tg_value(l))[1] = 7;
        else ((float *)tg_value(l))[1] = 7;
        assert_int_equal(tg_forward(t), TG_ERR_ARG);
        assert_true(isnan(tg_value_scalar(c)));
        expect_error(t, TG_ERR_ARG, (const char *[]){"cross_entropy", "row 1", "label 7", NULL});
        z = tg_tensor(t, d, 2, (const int64_t[]){2, 3}, NULL);
        l = tg_labels(z, (const int32_t[]){0, 2});
        c = tg_nll_loss(z, l);
        if (dt) ((double *)tg_value(l))[0] = 1e9; /* after the forward, before the sweep */
        else ((float *)tg_value(l))[0] = 1e9f;
        assert_int_equal(tg_backward(c), TG_ERR_ARG);
        expect_error(t, TG_ERR_ARG, (const char *[]){"nll_loss", "row 0", "label 1000000000", NULL});

        /* the other ops' arguments */
        tg_huber(vec(t, d, 2, zv), vec(t, d, 2, zv), 0);
        expect_error(t, TG_ERR_ARG, (const char *[]){"huber", "delta 0", "> 0", NULL});
        tg_huber(vec(t, d, 2, zv), vec(t, d, 2, zv), -1);
        expect_error(t, TG_ERR_ARG, (const char *[]){"huber", "delta -1", NULL});
        tg_call_n("huber", 3, (tg_node *[]){vec(t, d, 2, zv), vec(t, d, 2, zv), vec(t, d, 2, zv)});
        expect_error(t, TG_ERR_SHAPE, (const char *[]){"huber", "delta [2]", NULL});
        tg_huber(vec(t, d, 2, zv), vec(t, d, 3, zv), 1);
        expect_error(t, TG_ERR_SHAPE, (const char *[]){"huber", "[2] and [3]", NULL});
        tg_bce_with_logits(mat(t, d, 2, 3, zv), vec(t, d, 3, zv));
        expect_error(t, TG_ERR_SHAPE, (const char *[]){"bce_with_logits", "[2,3] and [3]", NULL});
        tg_call("leaky_relu", vec(t, d, 3, zv), vec(t, d, 2, zv));
        expect_error(t, TG_ERR_SHAPE, (const char *[]){"leaky_relu", "[3]", "[2]", NULL});
        tg_call("elu", mat(t, d, 2, 3, zv), vec(t, d, 3, zv));
        expect_error(t, TG_ERR_SHAPE, (const char *[]){"elu", "[2,3]", "[3]", NULL});
    }
    tg_tape_free(t);
}

/* tg_labels_from_onehot turns one-hot targets into labels inside the graph,
 * so a trainer that fills one-hot rows can use cross_entropy, and replay
 * follows new targets. */
static void test_training_onehot_labels(void **state) {
    (void)state;
    tg_tape *t = tg_tape_new();
    for (int dt = 0; dt < 2; dt++) {
        tg_dtype d = (tg_dtype)dt;
        const double oh[9] = {0, 0, 1, 1, 0, 0, 0, 1, 0};
        tg_node *y = mat(t, d, 3, 3, oh);
        tg_node *l = tg_labels_from_onehot(y);
        assert_int_equal(tg_ndim(l), 1);
        const double want_l[3] = {2, 0, 1};
        for (int r = 0; r < 3; r++) assert_true(tg_value_at(l, r) == want_l[r]);
        const double zv[9] = {0.5, -1, 2, 3, 0, 1, -2, 0.25, 0.75};
        tg_node *z = mat(t, d, 3, 3, zv);
        tg_node *ce = tg_cross_entropy(z, l), *sx = tg_softmax_xent(z, y);
        expect_near(tg_value_scalar(ce), tg_value_scalar(sx), dt ? 1e-15 : 1e-6, "ce = xent", 0);
        /* replay with other one-hot rows, written into the leaf under mat()'s reshape */
        void *leaf = tg_value(tg_node_input(y, 0));
        for (int i = 0; i < 9; i++) {
            double v = i % 4 == 0; /* rows 1,0,0 / 0,1,0 / 0,0,1 */
            if (dt) ((double *)leaf)[i] = v;
            else ((float *)leaf)[i] = (float)v;
        }
        assert_int_equal(tg_forward(t), TG_OK);
        for (int r = 0; r < 3; r++) assert_true(tg_value_at(l, r) == r);
        expect_near(tg_value_scalar(ce), tg_value_scalar(sx), dt ? 1e-15 : 1e-6, "ce = xent", 1);
    }
    assert_int_equal(tg_status(t), TG_OK);
    tg_tape_free(t);
}

/* The vjp rules (tg_grad, issue 12): for each op, the recorded gradient
 * equals tg_backward's, and tg_gradgradcheck passes (second derivatives
 * against central differences of the gradient). The activations' and the
 * label losses' rules use the comparisons gt and eq (ops/compare.c); until
 * they are registered those cases are skipped, with a message. */
static const int32_t vjp_labels[8] = {2, 0, 1, 1, 0, 2, 1, 0};
static tg_node *v_leaky(tg_tape *t, tg_node *const *x, int n, void *c) {
    (void)t, (void)n, (void)c;
    return tg_mse(tg_call("leaky_relu", x[0], x[1]), tg_tanh(x[0]));
}
static tg_node *v_elu(tg_tape *t, tg_node *const *x, int n, void *c) {
    (void)t, (void)n, (void)c;
    return tg_mse(tg_call("elu", x[0], x[1]), tg_sin(x[0]));
}
static tg_node *v_bce(tg_tape *t, tg_node *const *x, int n, void *c) {
    (void)t, (void)n, (void)c;
    return tg_bce_with_logits(x[0], x[1]);
}
static tg_node *v_nll(tg_tape *t, tg_node *const *x, int n, void *c) {
    (void)t, (void)n, (void)c;
    return tg_nll_loss(tg_log_softmax(x[0], -1), tg_labels(x[0], vjp_labels));
}
static tg_node *v_ce(tg_tape *t, tg_node *const *x, int n, void *c) {
    (void)t, (void)n, (void)c;
    return tg_cross_entropy(tg_mul(x[0], x[0]), tg_labels(x[0], vjp_labels));
}
static tg_node *v_huber(tg_tape *t, tg_node *const *x, int n, void *c) {
    (void)t, (void)n, (void)c;
    return tg_call_n("huber", 3, x);
}

static void check_vjp(const char *name, tg_gradcheck_build f, int nin,
                      const tg_gradcheck_input *in) {
    /* first derivatives: tg_grad against tg_backward */
    tg_tape *t = tg_tape_new();
    tg_node *x[3];
    for (int k = 0; k < nin; k++) x[k] = tg_tensor(t, TG_F64, in[k].ndim, in[k].shape, in[k].data);
    expect_grad_is_backward(f(t, x, nin, NULL), nin, x, 1e-13, name);
    tg_tape_free(t);
    /* second derivatives */
    tg_gradcheck_report rep;
    assert_int_equal(tg_gradgradcheck(f, nin, in, NULL, NULL, &rep), TG_OK);
    if (!rep.passed)
        fail_msg("%s: second derivative, input %d [%lld]: recorded %.17g, numeric %.17g", name,
                 rep.worst.input, (long long)rep.worst.index, rep.worst.analytic,
                 rep.worst.numeric);
}

static void test_training_vjp(void **state) {
    (void)state;
    const double x[6] = {-1.3, 0.7, 2.1, -0.4, 1.5, -2.2}, p0[1] = {0.3};
    const double p6[6] = {0.2, 0.5, 1.5, 0.7, 0.3, 2}, y[6] = {0.1, 0.9, 0.5, 0.3, 0.7, 0.2};
    const double ha[6] = {0.1, 2.5, -0.3, -3, 0.6, 1.9}, hy[6] = {0.3, 0.2, 0.1, -0.2, -0.1, 0.4};
    const double delta[1] = {1.1};
    const tg_gradcheck_input xs = {TG_F64, 2, {2, 3}, x, 0}, x1 = {TG_F64, 1, {3}, x, 0};
    const tg_gradcheck_input one[2] = {xs, {TG_F64, 0, {0}, p0, 0}};
    const tg_gradcheck_input each[2] = {xs, {TG_F64, 2, {2, 3}, p6, 0}};
    const tg_gradcheck_input targets[2] = {xs, {TG_F64, 2, {2, 3}, y, 0}};
    const tg_gradcheck_input huber[3] = {
        {TG_F64, 2, {2, 3}, ha, 0}, {TG_F64, 2, {2, 3}, hy, 0}, {TG_F64, 0, {0}, delta, 0}};
    check_vjp("bce_with_logits", v_bce, 2, targets);
    check_vjp("huber", v_huber, 3, huber);
    if (!tg_op_find("gt") || !tg_op_find("eq")) {
        print_message("vjp of leaky_relu, elu, nll_loss, cross_entropy: skipped (no gt/eq op)\n");
        return;
    }
    check_vjp("leaky_relu", v_leaky, 2, one);
    check_vjp("leaky_relu slope tensor", v_leaky, 2, each);
    check_vjp("elu", v_elu, 2, one);
    check_vjp("elu alpha tensor", v_elu, 2, each);
    check_vjp("nll_loss", v_nll, 1, &xs);
    check_vjp("cross_entropy", v_ce, 1, &xs);
    check_vjp("cross_entropy [C]", v_ce, 1, &x1);
}

#define TESTS_TRAINING                                                                     \
    cmocka_unit_test(test_training_activations),                                           \
    cmocka_unit_test(test_training_bce),                                                   \
    cmocka_unit_test(test_training_class_losses),                                          \
    cmocka_unit_test(test_training_huber),                                                 \
    cmocka_unit_test(test_training_errors),                                                \
    cmocka_unit_test(test_training_onehot_labels),                                         \
    cmocka_unit_test(test_training_vjp),

#endif

#ifdef TG_TEST_NONFINITE /* ------------------------------------ test_nonfinite.c -- */

/* The definitions, in double: y = x for x > 0, else p x or p (e^x - 1). */
static double ref_leaky_relu(const double *x) { return x[0] > 0 ? x[0] : x[1] * x[0]; }
static double ref_elu(const double *x) { return x[0] > 0 ? x[0] : x[1] * expm1(x[0]); }

static tg_node *build_bce_with_logits(tg_tape *t, tg_dtype dt, double fill) {
    return tg_bce_with_logits(filled(t, dt, 2, shape_3x4, fill), filled(t, dt, 2, shape_3x4, 0.5));
}
static tg_node *build_nll_loss(tg_tape *t, tg_dtype dt, double fill) {
    tg_node *p = filled(t, dt, 2, shape_3x4, fill);
    return tg_nll_loss(p, tg_labels(p, (const int32_t[]){0, 3, 1}));
}
static tg_node *build_cross_entropy(tg_tape *t, tg_dtype dt, double fill) {
    tg_node *z = filled(t, dt, 2, shape_3x4, fill);
    return tg_cross_entropy(z, tg_labels(z, (const int32_t[]){0, 3, 1}));
}
static tg_node *build_huber(tg_tape *t, tg_dtype dt, double fill) {
    return tg_huber(filled(t, dt, 2, shape_3x4, fill), filled(t, dt, 2, shape_3x4, 0.5), 1);
}

#define REFS_TRAINING {"leaky_relu", 2, ref_leaky_relu}, {"elu", 2, ref_elu},
#define BUILDS_TRAINING                                                                    \
    {"bce_with_logits", build_bce_with_logits, NF_ALL},                                    \
    {"nll_loss", build_nll_loss, NF_ALL},                                                  \
    {"cross_entropy", build_cross_entropy, NF_ALL},                                        \
    {"huber", build_huber, NF_ALL},

#endif
