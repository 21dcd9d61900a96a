/*
 * The two-input math ops atan2 hypot maximum minimum (ops/binary.c), the
 * comparisons lt le gt ge eq ne (ops/compare.c), where and clamp
 * (ops/select.c).
 *
 * Included by test_ops.c after its harness, with TG_TEST_OPS defined (see
 * the comment above its case table): gradient cases CASES_SELECT and
 * forward/convention tests TESTS_SELECT. Included by test_nonfinite.c with
 * TG_TEST_NONFINITE defined: REFS_SELECT, every op's definition in double
 * from libm (all these ops are elementwise, so BUILDS_SELECT is empty).
 *
 * Finite differences need a smooth neighbourhood, so the gradient cases keep
 * inputs 0.2 or more from every kink (ties of maximum/minimum, clamp's
 * bounds, where's condition, comparisons' jumps): that is 50 times the
 * widest stencil (2h <= 4e-3 for |x| <= 2). The kinks themselves are checked
 * by the convention tests below, with hand-derived values of PyTorch's rules
 * (written while checking them against PyTorch 1.13).
 */
#ifdef TG_TEST_OPS

/* ------------------------------------------------------- gradient cases -- */

BINARY_BUILDER(atan2)
BINARY_BUILDER(hypot)
BINARY_BUILDER(maximum)
BINARY_BUILDER(minimum)
BINARY_BUILDER(lt)
BINARY_BUILDER(le)
BINARY_BUILDER(gt)
BINARY_BUILDER(ge)
BINARY_BUILDER(eq)
BINARY_BUILDER(ne)

/* where(c > 0, a, b): the condition a 0/1 comparison of the first input. */
static tg_node *b_where(tg_node *const *in, int p) {
    (void)p;
    tg_node *zero = tg_const_as(tg_node_tape(in[0]), tg_node_dtype(in[0]), 0);
    return tg_where(tg_gt(in[0], zero), in[1], in[2]);
}
static tg_node *b_clamp(tg_node *const *in, int p) {
    (void)p;
    return tg_clamp(in[0], in[1], in[2]);
}
static tg_node *b_clamp_const(tg_node *const *in, int p) {
    (void)p;
    return tg_clamp_const(in[0], -1, 1);
}

/* Magnitudes in [0.1, 0.9] and in [1.1, 2], random signs: an element of one
 * and an element of the other are 0.2 or more apart, and either may be the
 * larger. */
#define SEL_NEAR {0.1, 0.9, 1}
#define SEL_FAR {1.1, 2, 1}
/* Clamp bounds around [-1, 1], and x inside them or outside. */
#define SEL_LO {-1.2, -0.8, 0}
#define SEL_HI {0.8, 1.2, 0}
#define SEL_INSIDE {-0.5, 0.5, 0}
#define SEL_OUTSIDE {1.5, 2.5, 1}

/* An op of three inputs on equal shapes and on broadcasting patterns of
 * each input against the others. */
#define TERNARY_CASES(name, b, D0, D1, D2)                                                 \
    {#name, b, 0, 3, {0, 0, 0}, {{0}, {0}, {0}}, {D0, D1, D2}},                            \
    {#name, b, 0, 3, {2, 2, 2}, {{2, 3}, {2, 3}, {2, 3}}, {D0, D1, D2}},                   \
    {#name, b, 0, 3, {2, 1, 0}, {{2, 3}, {3}, {0}}, {D0, D1, D2}},                         \
    {#name, b, 0, 3, {0, 2, 1}, {{0}, {2, 3}, {3}}, {D0, D1, D2}},                         \
    {#name, b, 0, 3, {2, 2, 2}, {{3, 1}, {1, 4}, {3, 4}}, {D0, D1, D2}},                   \
    {#name, b, 0, 3, {1, 2, 3}, {{2}, {3, 1}, {2, 1, 1}}, {D0, D1, D2}},                   \
    {#name, b, 0, 3, {4, 3, 2}, {{2, 1, 3, 1}, {4, 1, 2}, {3, 2}}, {D0, D1, D2}}

#define CASES_SELECT                                                                       \
    BINARY_CASES(atan2, b_atan2, AWAY, ANY), /* y != 0: off the branch cut and origin */   \
    BINARY_CASES(hypot, b_hypot, AWAY, ANY), /* off the origin */                          \
    BINARY_CASES(maximum, b_maximum, SEL_NEAR, SEL_FAR),                                   \
    BINARY_CASES(maximum, b_maximum, SEL_FAR, SEL_NEAR),                                   \
    BINARY_CASES(minimum, b_minimum, SEL_NEAR, SEL_FAR),                                   \
    BINARY_CASES(minimum, b_minimum, SEL_FAR, SEL_NEAR),                                   \
    BINARY_CASES(lt, b_lt, SEL_NEAR, SEL_FAR),                                             \
    BINARY_CASES(le, b_le, SEL_FAR, SEL_NEAR),                                             \
    BINARY_CASES(gt, b_gt, SEL_NEAR, SEL_FAR),                                             \
    BINARY_CASES(ge, b_ge, SEL_FAR, SEL_NEAR),                                             \
    BINARY_CASES(eq, b_eq, SEL_NEAR, SEL_FAR),                                             \
    BINARY_CASES(ne, b_ne, SEL_FAR, SEL_NEAR),                                             \
    TERNARY_CASES(where, b_where, AWAY, ANY, ANY),                                         \
    TERNARY_CASES(clamp, b_clamp, SEL_INSIDE, SEL_LO, SEL_HI),  /* to x */                 \
    TERNARY_CASES(clamp, b_clamp, SEL_OUTSIDE, SEL_LO, SEL_HI), /* to lo or hi */          \
    TERNARY_CASES(clamp, b_clamp, ANY, SEL_HI, SEL_LO),         /* lo > hi: to hi */       \
    {"clamp", b_clamp_const, 0, 1, {2}, {{2, 3}}, {SEL_NEAR}},                             \
    {"clamp", b_clamp_const, 0, 1, {1}, {{5}}, {SEL_FAR}},                                 \
    {"clamp", b_clamp_const, 0, 1, {0}, {{0}}, {SEL_FAR}},

/* ----------------------------------------------------------- helpers -- */

/* A 0-d leaf of the dtype that wants a gradient. */
static tg_node *sel_scalar(tg_tape *t, tg_dtype dt, double v) {
    tg_node *x = tg_tensor(t, dt, 0, NULL, NULL);
    if (dt == TG_F64)
        *(double *)tg_value(x) = v;
    else
        *(float *)tg_value(x) = (float)v;
    return x;
}

/* v as the dtype stores it. */
static double sel_round(tg_dtype dt, double v) { return dt == TG_F64 ? v : (double)(float)v; }

/* ----------------------------------------------------- forward values -- */

static double sel_maximum_ref(double a, double b) {
    return isnan(a) || isnan(b) ? NAN : a >= b ? a : b;
}
static double sel_minimum_ref(double a, double b) {
    return isnan(a) || isnan(b) ? NAN : a <= b ? a : b;
}

/* atan2, hypot, maximum, minimum against libm and their definitions, with
 * [2,4] broadcast against [4] and against a 0-d operand, in both dtypes;
 * the values include the origin, ties, signed zeros, infinities and NaN. */
static void test_select_binary_forward(void **state) {
    (void)state;
    static const struct {
        const char *name;
        tg_node *(*op)(tg_node *, tg_node *);
        double (*ref)(double, double);
    } ops[] = {{"atan2", tg_atan2, atan2},
               {"hypot", tg_hypot, hypot},
               {"maximum", tg_maximum, sel_maximum_ref},
               {"minimum", tg_minimum, sel_minimum_ref}};
    const double a[8] = {0, -0.0, 1.5, -2, INFINITY, NAN, 3, -0.25};
    const double b[4] = {0, -0.0, 1.5, -INFINITY};
    tg_tape *t = tg_tape_new();
    for (size_t k = 0; k < sizeof ops / sizeof *ops; k++) {
        for (int d = 0; d < 2; d++) {
            tg_dtype dt = (tg_dtype)d;
            double tol = dt == TG_F64 ? 1e-15 : 1e-6, want[8];
            for (int i = 0; i < 8; i++) want[i] = ops[k].ref(a[i], b[i % 4]);
            tg_node *y = ops[k].op(mat(t, dt, 2, 4, a), vec(t, dt, 4, b));
            assert_string_equal(tg_node_op_name(y), ops[k].name);
            assert_int_equal(tg_node_dtype(y), dt);
            expect_values(y, want, 8, tol, ops[k].name);
            /* 0-d first operand (the f64 scalar path when both are 0-d) */
            for (int i = 0; i < 8; i++) want[i] = ops[k].ref(sel_round(dt, -0.3), a[i]);
            expect_values(ops[k].op(sel_scalar(t, dt, -0.3), vec(t, dt, 8, a)), want, 8, tol,
                          ops[k].name);
            want[0] = ops[k].ref(sel_round(dt, 0.7), sel_round(dt, -1.1));
            expect_values(ops[k].op(sel_scalar(t, dt, 0.7), sel_scalar(t, dt, -1.1)), want, 1,
                          tol, ops[k].name);
        }
    }
    /* PyTorch: for equal operands the result is the first, so the sign of
     * a zero follows a. */
    assert_true(signbit(tg_value_scalar(tg_maximum(tg_const(t, -0.0), tg_const(t, 0)))));
    assert_false(signbit(tg_value_scalar(tg_minimum(tg_const(t, 0), tg_const(t, -0.0)))));
    /* hypot and atan2 where x^2 + y^2 overflows or underflows */
    expect_values(tg_hypot(tg_const(t, 3e200), tg_const(t, 4e200)), (const double[]){5e200}, 1,
                  1e-15, "hypot 1e200");
    expect_values(tg_hypot(tg_const(t, 3e-200), tg_const(t, -4e-200)), (const double[]){5e-200},
                  1, 1e-15, "hypot 1e-200");
    assert_int_equal(tg_status(t), TG_OK);
    tg_tape_free(t);
}

/* The comparisons against C's relations, including NaN (false but for ne),
 * infinities and -0 == +0, broadcast [4,1] against [1,4]; the result has the
 * operands' dtype. */
static void test_select_compare_forward(void **state) {
    (void)state;
    static const struct {
        const char *name;
        tg_node *(*op)(tg_node *, tg_node *);
    } ops[] = {{"lt", tg_lt}, {"le", tg_le}, {"gt", tg_gt},
               {"ge", tg_ge}, {"eq", tg_eq}, {"ne", tg_ne}};
    const double v[4] = {-0.0, 0, NAN, INFINITY}, w[4] = {0, 2.5, NAN, -1};
    tg_tape *t = tg_tape_new();
    for (int d = 0; d < 2; d++) {
        tg_dtype dt = (tg_dtype)d;
        for (size_t k = 0; k < sizeof ops / sizeof *ops; k++) {
            double want[16];
            for (int i = 0; i < 4; i++)
                for (int j = 0; j < 4; j++) {
                    double x = v[i], y = w[j];
                    int r[6] = {x < y, x <= y, x > y, x >= y, x == y, x != y};
                    want[i * 4 + j] = r[k];
                }
            tg_node *y = ops[k].op(mat(t, dt, 4, 1, v), mat(t, dt, 1, 4, w));
            assert_string_equal(tg_node_op_name(y), ops[k].name);
            assert_int_equal(tg_node_dtype(y), dt);
            int64_t shape[4];
            assert_int_equal(tg_shape(y, shape), 2);
            assert_true(shape[0] == 4 && shape[1] == 4);
            expect_values(y, want, 16, 0, ops[k].name);
        }
    }
    tg_tape_free(t);
}

/* No gradient flows through a comparison: x feeds lt and a product, and its
 * gradient is the product's alone; b feeds only the comparison. */
static void test_select_compare_no_gradient(void **state) {
    (void)state;
    tg_tape *t = tg_tape_new();
    for (int d = 0; d < 2; d++) {
        tg_dtype dt = (tg_dtype)d;
        tg_tape_reset(t);
        tg_node *x = vec(t, dt, 3, (const double[]){-1, 0.5, 2});
        tg_node *b = vec(t, dt, 3, (const double[]){0, 0.5, 1});
        tg_node *f = tg_add(tg_sum(tg_le(x, b)), tg_sum(tg_scale(x, 3)));
        assert_int_equal(tg_backward(f), TG_OK);
        expect_near(tg_value_scalar(f), 2 + 3 * 1.5, 1e-6, "f", 0);
        expect_grads(x, (const double[]){3, 3, 3}, 3, 0, "d/dx");
        expect_grads(b, (const double[]){0, 0, 0}, 3, 0, "d/db");
    }
    tg_tape_free(t);
}

/* where against a loop: cond [2,3] with 0, -0, 1, -2, NaN (nonzero, as in
 * C) and inf; a [3]; b 0-d. */
static void test_select_where_forward(void **state) {
    (void)state;
    const double c[6] = {0, -0.0, 1, -2, NAN, INFINITY}, a[3] = {10, 20, 30};
    tg_tape *t = tg_tape_new();
    for (int d = 0; d < 2; d++) {
        tg_dtype dt = (tg_dtype)d;
        double want[6];
        for (int i = 0; i < 6; i++) want[i] = c[i] != 0 ? a[i % 3] : -7;
        tg_node *y = tg_where(mat(t, dt, 2, 3, c), vec(t, dt, 3, a), sel_scalar(t, dt, -7));
        assert_int_equal(tg_ndim(y), 2);
        expect_values(y, want, 6, 0, "where");
        /* leaky relu written with where */
        const double x[4] = {-2, -0.5, 0.5, 3};
        tg_node *xs = vec(t, dt, 4, x);
        tg_node *zero = tg_const_as(t, dt, 0);
        expect_values(tg_where(tg_gt(xs, zero), xs, tg_scale(xs, 0.125)),
                      (const double[]){-0.25, -0.0625, 0.5, 3}, 4, 0, "where leaky");
    }
    tg_tape_free(t);
}

/* The gradient of where goes to the selected input only, unscaled: an inf or
 * NaN in the branch not taken, or an infinite incoming gradient, never puts
 * a NaN into the other input's gradient. A broadcast 0-d a collects one g per
 * element that selected it. */
static void test_select_where_gradient(void **state) {
    (void)state;
    tg_tape *t = tg_tape_new();
    for (int d = 0; d < 2; d++) {
        tg_dtype dt = (tg_dtype)d;
        tg_tape_reset(t);
        tg_node *c = vec(t, dt, 4, (const double[]){1, 0, 0, 1});
        tg_node *a = vec(t, dt, 4, (const double[]){1, INFINITY, NAN, 4});
        tg_node *b = vec(t, dt, 4, (const double[]){NAN, 2, 3, -INFINITY});
        tg_node *y = tg_where(c, a, b);
        expect_values(y, (const double[]){1, 2, 3, 4}, 4, 0, "where, non-finite not taken");
        assert_int_equal(tg_backward(tg_sum(y)), TG_OK);
        expect_grads(a, (const double[]){1, 0, 0, 1}, 4, 0, "where d/da");
        expect_grads(b, (const double[]){0, 1, 1, 0}, 4, 0, "where d/db");
        expect_grads(c, (const double[]){0, 0, 0, 0}, 4, 0, "where d/dcond");

        /* an infinite incoming gradient: inf to the taken input, 0 (not
         * inf * 0 = NaN) to the other */
        tg_tape_reset(t);
        a = vec(t, dt, 2, (const double[]){1, 2});
        b = vec(t, dt, 2, (const double[]){3, 4});
        y = tg_where(vec(t, dt, 2, (const double[]){1, 0}), a, b);
        if (dt == TG_F64)
            assert_int_equal(tg_backward_seeded(y, (const double[]){INFINITY, -INFINITY}), TG_OK);
        else
            assert_int_equal(tg_backward_seeded(y, (const float[]){INFINITY, -INFINITY}), TG_OK);
        expect_grads(a, (const double[]){INFINITY, 0}, 2, 0, "where d/da, g = inf");
        expect_grads(b, (const double[]){0, -INFINITY}, 2, 0, "where d/db, g = inf");

        /* a 0-d a broadcast over a [2,3] condition */
        tg_tape_reset(t);
        tg_node *s = sel_scalar(t, dt, 5);
        tg_node *bb = vec(t, dt, 3, (const double[]){1, 2, 3});
        y = tg_where(mat(t, dt, 2, 3, (const double[]){1, 0, 1, 1, 1, 0}), s, bb);
        assert_int_equal(tg_backward(tg_sum(y)), TG_OK);
        expect_grads(s, (const double[]){4}, 1, 0, "where d/da broadcast");
        expect_grads(bb, (const double[]){0, 1, 1}, 3, 0, "where d/db broadcast");
    }
    tg_tape_free(t);
}

/* clamp's values and PyTorch's gradient rule at every boundary: x where
 * lo <= x <= hi (both included), lo where x < lo < hi, hi where x > hi or
 * hi < lo, none where x < lo == hi or a comparison meets a NaN. */
static void test_select_clamp_conventions(void **state) {
    (void)state;
    static const struct {
        double x, lo, hi, y, gx, glo, ghi;
    } rows[] = {
        {0.5, 0, 1, 0.5, 1, 0, 0},       /* inside */
        {0, 0, 1, 0, 1, 0, 0},           /* x == lo: x */
        {1, 0, 1, 1, 1, 0, 0},           /* x == hi: x */
        {-1, 0, 1, 0, 0, 1, 0},          /* below */
        {2, 0, 1, 1, 0, 0, 1},           /* above */
        {-INFINITY, 0, 1, 0, 0, 1, 0},   /* */
        {INFINITY, 0, 1, 1, 0, 0, 1},    /* */
        {0.5, 1, 0, 0, 0, 0, 1},         /* lo > hi: hi, whatever x */
        {-1, 1, 0, 0, 0, 0, 1},          /* */
        {2, 1, 0, 0, 0, 0, 1},           /* */
        {1, 1, 1, 1, 1, 0, 0},           /* x == lo == hi: x */
        {0.5, 1, 1, 1, 0, 0, 0},         /* x < lo == hi: none */
        {2, 1, 1, 1, 0, 0, 1},           /* x > lo == hi: hi */
        {NAN, 0, 1, NAN, 0, 0, 0},       /* NaN in, NaN out */
        {0.5, NAN, 1, NAN, 0, 0, 0},     /* */
        {2, NAN, 1, NAN, 0, 0, 1},       /* x > hi still holds */
        {0.5, 0, NAN, NAN, 0, 0, 0},     /* */
        {NAN, 1, 0, NAN, 0, 0, 1},       /* hi < lo still holds */
    };
    enum { N = sizeof rows / sizeof *rows };
    double x[N], lo[N], hi[N], y[N], gx[N], glo[N], ghi[N];
    for (int i = 0; i < N; i++) {
        x[i] = rows[i].x, lo[i] = rows[i].lo, hi[i] = rows[i].hi, y[i] = rows[i].y;
        gx[i] = rows[i].gx, glo[i] = rows[i].glo, ghi[i] = rows[i].ghi;
    }
    tg_tape *t = tg_tape_new();
    for (int d = 0; d < 2; d++) {
        tg_dtype dt = (tg_dtype)d;
        tg_tape_reset(t);
        tg_node *nx = vec(t, dt, N, x), *nlo = vec(t, dt, N, lo), *nhi = vec(t, dt, N, hi);
        tg_node *c = tg_clamp(nx, nlo, nhi);
        expect_values(c, y, N, 0, "clamp");
        assert_int_equal(tg_backward(tg_sum(c)), TG_OK);
        expect_grads(nx, gx, N, 0, "clamp d/dx");
        expect_grads(nlo, glo, N, 0, "clamp d/dlo");
        expect_grads(nhi, ghi, N, 0, "clamp d/dhi");
        /* the same rows as 0-d nodes */
        for (int i = 0; i < N; i++) {
            tg_tape_reset(t);
            tg_node *s[3] = {sel_scalar(t, dt, x[i]), sel_scalar(t, dt, lo[i]),
                             sel_scalar(t, dt, hi[i])};
            c = tg_call_n("clamp", 3, s);
            expect_values(c, &y[i], 1, 0, "clamp 0-d");
            assert_int_equal(tg_backward(c), TG_OK);
            const double g[3] = {gx[i], glo[i], ghi[i]};
            for (int k = 0; k < 3; k++) expect_grads(s[k], &g[k], 1, 0, "clamp 0-d grad");
        }
    }
    tg_tape_free(t);
}

/* clamp broadcasting x [2,3] against lo [3] and a 0-d hi, and
 * tg_clamp_const, against a loop. */
static void test_select_clamp_forward(void **state) {
    (void)state;
    const double x[6] = {-3, -0.5, 0.25, 0.75, 2, 9}, lo[3] = {-1, 0, 0.5};
    tg_tape *t = tg_tape_new();
    for (int d = 0; d < 2; d++) {
        tg_dtype dt = (tg_dtype)d;
        double want[6];
        for (int i = 0; i < 6; i++) want[i] = fmin(fmax(x[i], lo[i % 3]), 1.5);
        tg_node *y = tg_clamp(mat(t, dt, 2, 3, x), vec(t, dt, 3, lo), sel_scalar(t, dt, 1.5));
        expect_values(y, want, 6, 0, "clamp broadcast");
        for (int i = 0; i < 6; i++) want[i] = fmin(fmax(x[i], -0.5), 0.5);
        y = tg_clamp_const(vec(t, dt, 6, x), -0.5, 0.5);
        assert_string_equal(tg_node_op_name(y), "clamp");
        assert_int_equal(tg_node_dtype(y), dt);
        assert_string_equal(tg_node_op_name(tg_node_input(y, 2)), "leaf");
        assert_false(tg_requires_grad(tg_node_input(y, 2)));
        expect_values(y, want, 6, 0, "clamp_const");
    }
    assert_null(tg_clamp_const(NULL, 0, 1));
    tg_tape_free(t);
}

/* maximum and minimum at exact ties (where finite differences cannot look):
 * half the gradient to each operand (PyTorch), including ties of -0 with +0
 * and of infinities; NaN gives NaN and the whole gradient to both operands
 * (neither compares less); an infinite gradient reaches the loser as 0, not
 * NaN. */
static void test_select_min_max_ties(void **state) {
    (void)state;
    const double a[6] = {1, 2, 3, -0.0, INFINITY, NAN}, b[6] = {1, 5, 0, 0, INFINITY, 1};
    /* d/da, d/db of maximum, then of minimum */
    const double gmax[2][6] = {{0.5, 0, 1, 0.5, 0.5, 1}, {0.5, 1, 0, 0.5, 0.5, 1}};
    const double gmin[2][6] = {{0.5, 1, 0, 0.5, 0.5, 1}, {0.5, 0, 1, 0.5, 0.5, 1}};
    tg_tape *t = tg_tape_new();
    for (int d = 0; d < 2; d++) {
        tg_dtype dt = (tg_dtype)d;
        for (int m = 0; m < 2; m++) {
            const double(*want)[6] = m ? gmin : gmax;
            tg_tape_reset(t);
            tg_node *na = vec(t, dt, 6, a), *nb = vec(t, dt, 6, b);
            tg_node *y = m ? tg_minimum(na, nb) : tg_maximum(na, nb);
            assert_int_equal(tg_backward(tg_sum(y)), TG_OK);
            expect_grads(na, want[0], 6, 0, m ? "minimum d/da" : "maximum d/da");
            expect_grads(nb, want[1], 6, 0, m ? "minimum d/db" : "maximum d/db");
            /* 0-d ties: the scalar path */
            tg_tape_reset(t);
            tg_node *s = sel_scalar(t, dt, 2), *u = sel_scalar(t, dt, 2);
            assert_int_equal(tg_backward(m ? tg_minimum(s, u) : tg_maximum(s, u)), TG_OK);
            expect_near(tg_grad_scalar(s), 0.5, 0, "0-d tie d/da", 0);
            expect_near(tg_grad_scalar(u), 0.5, 0, "0-d tie d/db", 0);
            /* a 0-d 2 against [1, 2, 3]: wins, ties, loses */
            tg_tape_reset(t);
            s = sel_scalar(t, dt, 2);
            tg_node *v = vec(t, dt, 3, (const double[]){1, 2, 3});
            assert_int_equal(tg_backward(tg_sum(m ? tg_minimum(s, v) : tg_maximum(s, v))), TG_OK);
            expect_near(tg_grad_scalar(s), 1.5, 0, "broadcast tie d/da", 0);
            expect_grads(v, m ? (const double[]){1, 0.5, 0} : (const double[]){0, 0.5, 1}, 3,
                            0, "broadcast tie d/db");
            /* g = inf: inf to the result's operand, 0 to the other */
            tg_tape_reset(t);
            na = vec(t, dt, 1, (const double[]){2});
            nb = vec(t, dt, 1, (const double[]){1});
            y = m ? tg_minimum(na, nb) : tg_maximum(na, nb);
            if (dt == TG_F64)
                assert_int_equal(tg_backward_seeded(y, (const double[]){INFINITY}), TG_OK);
            else
                assert_int_equal(tg_backward_seeded(y, (const float[]){INFINITY}), TG_OK);
            expect_near(tg_grad_at(na, 0), m ? 0 : INFINITY, 0, "g = inf, d/da", 0);
            expect_near(tg_grad_at(nb, 0), m ? INFINITY : 0, 0, "g = inf, d/db", 0);
        }
    }
    tg_tape_free(t);
}

/* atan2 and hypot gradients by hand: at the origin 0/0 = NaN (PyTorch);
 * at (3e200, 4e200), where x^2 + y^2 overflows, the exact quotients. */
static void test_select_atan2_hypot_gradient(void **state) {
    (void)state;
    tg_tape *t = tg_tape_new();
    for (int d = 0; d < 2; d++) {
        tg_dtype dt = (tg_dtype)d;
        tg_tape_reset(t);
        tg_node *y = sel_scalar(t, dt, 0), *x = sel_scalar(t, dt, 0);
        tg_node *both = tg_add(tg_atan2(y, x), tg_hypot(x, y));
        assert_int_equal(tg_backward(both), TG_OK);
        assert_true(isnan(tg_grad_scalar(x)) && isnan(tg_grad_scalar(y)));
        /* (y, x) = (1, -1): d/dy = x / r^2 = -1/2, d/dx = -y / r^2 = -1/2;
         * hypot: x / r = -1/sqrt2, y / r = 1/sqrt2 */
        tg_tape_reset(t);
        y = sel_scalar(t, dt, 1), x = sel_scalar(t, dt, -1);
        const double pi = acos(-1.0), r = sqrt(2.0);
        expect_values(tg_atan2(y, x), (const double[]){3 * pi / 4}, 1, 1e-6, "atan2(1, -1)");
        assert_int_equal(tg_backward(tg_add(tg_atan2(y, x), tg_hypot(x, y))), TG_OK);
        expect_near(tg_grad_scalar(y), -0.5 + 1 / r, 1e-6, "d/dy", 0);
        expect_near(tg_grad_scalar(x), -0.5 - 1 / r, 1e-6, "d/dx", 0);
    }
    tg_tape_reset(t);
    tg_node *y = tg_scalar(t, 4e200), *x = tg_scalar(t, 3e200);
    assert_int_equal(tg_backward(tg_atan2(y, x)), TG_OK);
    /* x / (x^2 + y^2) = 3e200 / 25e400 */
    expect_near(tg_grad_scalar(y) * 1e200, 3.0 / 25, 1e-15, "atan2 d/dy at 1e200", 0);
    expect_near(tg_grad_scalar(x) * 1e200, -4.0 / 25, 1e-15, "atan2 d/dx at 1e200", 0);
    tg_tape_reset(t);
    y = tg_scalar(t, 4e200), x = tg_scalar(t, 3e200);
    assert_int_equal(tg_backward(tg_hypot(x, y)), TG_OK);
    expect_near(tg_grad_scalar(x), 0.6, 1e-15, "hypot d/dx at 1e200", 0);
    expect_near(tg_grad_scalar(y), 0.8, 1e-15, "hypot d/dy at 1e200", 0);
    tg_tape_free(t);
}

/* Replay: a graph of where, a comparison, clamp and maximum on input leaves
 * is re-evaluated by tg_forward after new data is written, and its gradient
 * follows the new selection. y = clamp(where(x > 0, x, x/2), -1, hi) + max(x, 0). */
static void test_select_replay(void **state) {
    (void)state;
    tg_tape *t = tg_tape_new();
    for (int d = 0; d < 2; d++) {
        tg_dtype dt = (tg_dtype)d;
        tg_tape_reset(t);
        const int64_t n = 4;
        tg_node *x = tg_tensor(t, dt, 1, &n, NULL);
        tg_node *hi = tg_input(t, dt, 0, NULL, NULL);
        tg_node *zero = tg_const_as(t, dt, 0);
        tg_node *w = tg_where(tg_gt(x, zero), x, tg_scale(x, 0.5));
        tg_node *y = tg_add(tg_clamp(w, tg_const_as(t, dt, -1), hi), tg_maximum(x, zero));
        tg_node *f = tg_sum(y);
        const double xs[2][4] = {{-4, -1, 0.5, 3}, {3, 0.5, -1, -4}}, his[2] = {1, 0.25};
        /* by hand: w = x or x/2; clamp to [-1, hi]; plus max(x, 0) */
        const double want_y[2][4] = {{-1, -0.5, 1, 4}, {3.25, 0.75, -0.5, -1}};
        const double want_g[2][4] = {{0, 0.5, 2, 1}, {1, 1, 0.5, 0}};
        for (int step = 0; step < 2; step++) {
            for (int i = 0; i < 4; i++) {
                if (dt == TG_F64)
                    ((double *)tg_value(x))[i] = xs[step][i];
                else
                    ((float *)tg_value(x))[i] = (float)xs[step][i];
            }
            if (dt == TG_F64)
                *(double *)tg_value(hi) = his[step];
            else
                *(float *)tg_value(hi) = (float)his[step];
            assert_int_equal(tg_forward(t), TG_OK);
            expect_values(y, want_y[step], 4, 0, "replayed y");
            tg_zero_grad(t);
            assert_int_equal(tg_backward(f), TG_OK);
            expect_grads(x, want_g[step], 4, 0, "replayed d/dx");
        }
    }
    tg_tape_free(t);
}

/* Each op's vjp rule (tg_grad): the gradient it records equals the backward
 * kernels' (first order), and differentiated again it passes
 * tg_gradgradcheck against central differences of the recorded gradient
 * (second order), on functions with curvature through the op. The points
 * stay away from the kinks, and b and c broadcast against a. */
static tg_node *sel_second_order(tg_tape *t, tg_node *const *in, int n, void *ctx) {
    (void)n;
    tg_node *a = in[0], *b = in[1], *c = in[2];
    tg_node *zero = tg_const(t, 0), *y;
    switch (*(const int *)ctx) {
    case 0: y = tg_atan2(a, b); break;
    case 1: y = tg_hypot(a, b); break;
    case 2: y = tg_mul(tg_maximum(a, b), tg_minimum(a, c)); break;
    case 3: y = tg_mul(tg_lt(a, b), tg_mul(a, c)); break; /* lt passes nothing */
    case 4: y = tg_where(tg_gt(a, zero), tg_mul(a, b), tg_mul(c, c)); break;
    default: y = tg_mul(tg_clamp(a, b, c), tg_add(a, c)); break;
    }
    return tg_sum(y);
}

static void test_select_second_order(void **state) {
    (void)state;
    /* a [2,3]; b and c [3]: maximum/minimum/lt are 0.3 or more from ties,
     * a from clamp's bounds b < c (below, inside, above), and from 0 */
    const double a[6] = {-1.5, 0.4, 2.5, 0.9, -0.2, -3}, b[3] = {0.5, -1, 1.25},
                 c[3] = {1.5, 0.6, 2};
    const tg_gradcheck_input in[3] = {
        {TG_F64, 2, {2, 3}, a, 0}, {TG_F64, 1, {3}, b, 0}, {TG_F64, 1, {3}, c, 0}};
    static const char *const names[] = {"atan2", "hypot", "maximum/minimum", "lt", "where",
                                        "clamp"};
    tg_tape *t = tg_tape_new();
    for (int k = 0; k < 6; k++) {
        tg_tape_reset(t);
        tg_node *x[3];
        for (int i = 0; i < 3; i++) x[i] = tg_tensor(t, TG_F64, in[i].ndim, in[i].shape, in[i].data);
        expect_grad_is_backward(sel_second_order(t, x, 3, &k), 3, x, 1e-15, names[k]);
        tg_gradcheck_report rep;
        assert_int_equal(tg_gradgradcheck(sel_second_order, 3, in, &k, NULL, &rep), TG_OK);
        if (!rep.passed)
            fail_msg("%s: second derivative of input %d [%lld]: analytic %.17g, numeric %.17g",
                     names[k], rep.worst.input, (long long)rep.worst.index, rep.worst.analytic,
                     rep.worst.numeric);
        assert_int_equal(rep.kinks, 0);
    }
    tg_tape_free(t);
}

/* At the kinks the vjp rules follow the same conventions as the backward
 * kernels (checked by hand above): tg_grad equals tg_backward, NaN for NaN,
 * at the ties of maximum/minimum, clamp's boundary rows and where with
 * non-finite values in the branch not taken. */
static void test_select_vjp_conventions(void **state) {
    (void)state;
    tg_tape *t = tg_tape_new();
    const double a[6] = {1, 2, 3, -0.0, INFINITY, NAN}, b[6] = {1, 5, 0, 0, INFINITY, 1};
    for (int m = 0; m < 2; m++) {
        tg_tape_reset(t);
        tg_node *x[2] = {vec(t, TG_F64, 6, a), vec(t, TG_F64, 6, b)};
        expect_grad_is_backward(tg_sum(m ? tg_minimum(x[0], x[1]) : tg_maximum(x[0], x[1])), 2,
                                x, 0, m ? "minimum ties" : "maximum ties");
    }
    const double cx[7] = {0, 1, 0.5, 0.5, 2, NAN, 2}, clo[7] = {0, 0, 1, 1, NAN, 0, 1},
                 chi[7] = {1, 1, 0, 1, 1, 1, 1};
    tg_tape_reset(t);
    tg_node *x[3] = {vec(t, TG_F64, 7, cx), vec(t, TG_F64, 7, clo), vec(t, TG_F64, 7, chi)};
    expect_grad_is_backward(tg_sum(tg_clamp(x[0], x[1], x[2])), 3, x, 0, "clamp boundaries");
    tg_tape_reset(t);
    tg_node *c = vec(t, TG_F64, 4, (const double[]){1, 0, NAN, 0});
    x[0] = vec(t, TG_F64, 4, (const double[]){1, INFINITY, 2, NAN});
    x[1] = vec(t, TG_F64, 4, (const double[]){NAN, 2, -INFINITY, 3});
    expect_grad_is_backward(tg_sum(tg_where(c, x[0], x[1])), 2, x, 0,
                            "where, non-finite not taken");
    tg_tape_free(t);
}

/* Broadcast mismatches name the dimension as a user counts it, for two and
 * three inputs; where's inputs share the dtype. */
static void test_select_broadcast_errors(void **state) {
    (void)state;
    static const struct {
        int nin;
        int ndim[3];
        int64_t shape[3][4];
        const char *op, *message;
    } rows[] = {
        {2, {1, 1}, {{3}, {4}}, "add",
         "add: [3] and [4]: the last dimension differs (3 vs 4) and neither is 1"},
        {2, {3, 2}, {{2, 3, 4}, {5, 4}}, "maximum",
         "maximum: [2,3,4] and [5,4]: the second-to-last dimension differs (3 vs 5) and "
         "neither is 1"},
        {2, {4, 3}, {{2, 4, 1, 1}, {3, 1, 1}}, "lt",
         "lt: [2,4,1,1] and [3,1,1]: the third-to-last dimension differs (4 vs 3)"},
        {2, {4, 4}, {{2, 1, 1, 1}, {3, 1, 1, 1}}, "atan2",
         "atan2: [2,1,1,1] and [3,1,1,1]: the fourth-to-last dimension differs (2 vs 3)"},
        {3, {2, 1, 1}, {{2, 3}, {3}, {4}}, "where",
         "where: [2,3], [3] and [4]: the last dimension differs (3 vs 4) and neither is 1"},
        {3, {0, 2, 2}, {{0}, {2, 1}, {3, 5}}, "clamp",
         "clamp: [], [2,1] and [3,5]: the second-to-last dimension differs (2 vs 3)"},
    };
    tg_tape *t = tg_tape_new();
    for (size_t r = 0; r < sizeof rows / sizeof *rows; r++) {
        tg_tape_reset(t);
        tg_node *in[3];
        for (int k = 0; k < rows[r].nin; k++)
            in[k] = tg_tensor(t, TG_F64, rows[r].ndim[k], rows[r].shape[k], NULL);
        tg_call_n(rows[r].op, rows[r].nin, in);
        assert_int_equal(tg_status(t), TG_ERR_SHAPE);
        const char *msg = tg_status_message(t);
        if (strncmp(msg, rows[r].message, strlen(rows[r].message)) != 0)
            fail_msg("got \"%s\", want \"%s...\"", msg, rows[r].message);
    }
    /* dtypes: cond of another dtype than a and b */
    tg_tape_reset(t);
    tg_where(tg_const_as(t, TG_F32, 1), tg_scalar(t, 1), tg_scalar(t, 2));
    assert_int_equal(tg_status(t), TG_ERR_DTYPE);
    tg_tape_reset(t);
    tg_clamp(tg_scalar(t, 1), NULL, tg_scalar(t, 2));
    assert_int_equal(tg_status(t), TG_ERR_NULL);
    tg_tape_free(t);
}

#define TESTS_SELECT                                                                       \
    cmocka_unit_test(test_select_binary_forward),                                          \
    cmocka_unit_test(test_select_compare_forward),                                         \
    cmocka_unit_test(test_select_compare_no_gradient),                                     \
    cmocka_unit_test(test_select_where_forward),                                           \
    cmocka_unit_test(test_select_where_gradient),                                          \
    cmocka_unit_test(test_select_clamp_conventions),                                       \
    cmocka_unit_test(test_select_clamp_forward),                                           \
    cmocka_unit_test(test_select_min_max_ties),                                            \
    cmocka_unit_test(test_select_atan2_hypot_gradient),                                    \
    cmocka_unit_test(test_select_replay),                                                  \
    cmocka_unit_test(test_select_second_order),                                            \
    cmocka_unit_test(test_select_vjp_conventions),                                         \
    cmocka_unit_test(test_select_broadcast_errors),

#endif /* TG_TEST_OPS */

#ifdef TG_TEST_NONFINITE /* each op's definition in double, from libm */

static double ref_atan2(const double *x) { return atan2(x[0], x[1]); }
static double ref_hypot(const double *x) { return hypot(x[0], x[1]); }
/* PyTorch's maximum and minimum: NaN in either gives NaN (C's fmax would not). */
static double ref_maximum(const double *x) {
    return isnan(x[0]) || isnan(x[1]) ? NAN : fmax(x[0], x[1]);
}
static double ref_minimum(const double *x) {
    return isnan(x[0]) || isnan(x[1]) ? NAN : fmin(x[0], x[1]);
}
static double ref_lt(const double *x) { return x[0] < x[1]; }
static double ref_le(const double *x) { return x[0] <= x[1]; }
static double ref_gt(const double *x) { return x[0] > x[1]; }
static double ref_ge(const double *x) { return x[0] >= x[1]; }
static double ref_eq(const double *x) { return x[0] == x[1]; }
static double ref_ne(const double *x) { return x[0] != x[1]; }
/* NaN is a nonzero condition, as in C. */
static double ref_where(const double *x) { return x[0] != 0 ? x[1] : x[2]; }
/* minimum(maximum(x, lo), hi): NaN anywhere gives NaN; lo > hi gives hi. */
static double ref_clamp(const double *x) {
    if (isnan(x[0]) || isnan(x[1]) || isnan(x[2])) return NAN;
    return fmin(fmax(x[0], x[1]), x[2]);
}

#define REFS_SELECT                                                                        \
    {"atan2", 2, ref_atan2}, {"hypot", 2, ref_hypot}, {"maximum", 2, ref_maximum},         \
    {"minimum", 2, ref_minimum}, {"lt", 2, ref_lt}, {"le", 2, ref_le}, {"gt", 2, ref_gt},  \
    {"ge", 2, ref_ge}, {"eq", 2, ref_eq}, {"ne", 2, ref_ne}, {"where", 3, ref_where},      \
    {"clamp", 3, ref_clamp},
#define BUILDS_SELECT

#endif
