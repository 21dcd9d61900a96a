/* Gradient cases and forward-value tests of the reductions max min logsumexp prod norm var
 * and of argmax (ops/reduce.c). Included by test_ops.c, after its harness: see the comment above its case
 * table.
 *
 * test_ops.c includes it with TG_TEST_OPS defined: CASES_REDUCE is a list of
 * gradient-case rows, TESTS_REDUCE a list of cmocka_unit_test() entries (each
 * item ending in a comma). test_nonfinite.c includes it with
 * TG_TEST_NONFINITE defined: REFS_REDUCE lists {name, arity, ref} rows for
 * elementwise ops (none here), BUILDS_REDUCE {name, build, expect} rows for
 * the other ops (see that file). */
#ifdef TG_TEST_NONFINITE

static tg_node *build_max(tg_tape *t, tg_dtype dt, double fill) {
    return tg_max_axis(filled(t, dt, 2, shape_3x4, fill), 1);
}
static tg_node *build_min(tg_tape *t, tg_dtype dt, double fill) {
    return tg_min(filled(t, dt, 2, shape_3x4, fill));
}
static tg_node *build_logsumexp(tg_tape *t, tg_dtype dt, double fill) {
    return tg_logsumexp_axis(filled(t, dt, 2, shape_3x4, fill), 0);
}
static tg_node *build_prod(tg_tape *t, tg_dtype dt, double fill) {
    return tg_prod_axis(filled(t, dt, 2, shape_3x4, fill), -1);
}
static tg_node *build_norm(tg_tape *t, tg_dtype dt, double fill) {
    return tg_norm_axis(filled(t, dt, 2, shape_3x4, fill), 1);
}
static tg_node *build_var(tg_tape *t, tg_dtype dt, double fill) {
    return tg_var_axis(filled(t, dt, 2, shape_3x4, fill), 0);
}

static tg_node *build_argmax(tg_tape *t, tg_dtype dt, double fill) {
    return tg_argmax_axis(filled(t, dt, 2, shape_3x4, fill), 1);
}

#define REFS_REDUCE
#define BUILDS_REDUCE                                                                      \
    {"max", build_max, NF_ALL}, {"min", build_min, NF_ALL},                                \
    {"logsumexp", build_logsumexp, NF_ALL}, {"prod", build_prod, NF_ALL},                  \
    {"norm", build_norm, NF_ALL}, {"var", build_var, NF_ALL},                              \
    {"argmax", build_argmax, NF_FIRST},

#endif

#ifdef TG_TEST_OPS

/* ------------------------------------------------------ gradient cases -- */

/*
 * max and min are differentiable only away from ties, and a central
 * difference needs the winner to stay ahead over +-2h. Random points in a
 * range of width 4 would come within 2h = 2e-3 of a tie in a run of 5 with
 * probability ~5e-3; over a few hundred runs some case would fail, and
 * which one would change whenever another family adds cases (the points
 * come from one stream). So the builders add a constant c to the input,
 * c[i] = 5 ((7 i) mod 29), distinct for the <= 24 elements of every case
 * and 5 apart, wider than the inputs' range: each run has a single winner
 * at least 1 ahead, at a position that varies from run to run. The
 * gradient reaching the input is that of max (add passes it unchanged).
 */
static tg_node *spread(tg_node *x) {
    int64_t shape[4];
    int nd = tg_shape(x, shape);
    tg_node *c = tg_input(tg_node_tape(x), tg_node_dtype(x), nd, shape, NULL);
    for (int64_t i = 0; i < tg_numel(c); i++) {
        double v = 5.0 * (double)((7 * i) % 29);
        if (tg_node_dtype(c) == TG_F64)
            ((double *)tg_value(c))[i] = v;
        else
            ((float *)tg_value(c))[i] = (float)v;
    }
    return tg_add(x, c);
}
static tg_node *b_max(tg_node *const *in, int p) {
    return p == ALL_AXES ? tg_max(spread(in[0])) : tg_max_axis(spread(in[0]), p);
}
static tg_node *b_min(tg_node *const *in, int p) {
    return p == ALL_AXES ? tg_min(spread(in[0])) : tg_min_axis(spread(in[0]), p);
}
/* argmax's derivative is 0, and so is the difference quotient while the
 * winner stays ahead (spread keeps it ahead by 1 or more). */
static tg_node *b_argmax(tg_node *const *in, int p) {
    return p == ALL_AXES ? tg_argmax(spread(in[0])) : tg_argmax_axis(spread(in[0]), p);
}
#define REDUCE_BUILDER(name)                                                               \
    static tg_node *b_##name(tg_node *const *in, int p) {                                  \
        return p == ALL_AXES ? tg_##name(in[0]) : tg_##name##_axis(in[0], p);              \
    }
REDUCE_BUILDER(logsumexp)
REDUCE_BUILDER(prod)
REDUCE_BUILDER(norm)
REDUCE_BUILDER(var)

/* Over all elements of a 0-d, a 1-D (long run), a 2-D and a 4-D input, then
 * along each axis. D0 is the domain of the cases whose runs have one
 * element, where norm is |x|: kept away from its kink. */
#define REDUCE_CASES(name, D0)                                                             \
    {#name, b_##name, ALL_AXES, 1, {0}, {{0}}, {D0}},                                      \
    {#name, b_##name, ALL_AXES, 1, {1}, {{24}}, {ANY}},                                    \
    {#name, b_##name, ALL_AXES, 1, {2}, {{2, 3}}, {ANY}},                                  \
    {#name, b_##name, ALL_AXES, 1, {4}, {{2, 1, 3, 2}}, {ANY}},                            \
    AXIS_CASES(name),                                                                      \
    {#name, b_##name, -3, 1, {4}, {{2, 2, 3, 2}}, {ANY}},                                  \
    {#name, b_##name, 0, 1, {2}, {{1, 4}}, {D0}} /* runs of one element */

#define CASES_REDUCE                                                                       \
    REDUCE_CASES(max, ANY),                                                                \
    REDUCE_CASES(min, ANY),                                                                \
    REDUCE_CASES(logsumexp, ANY),                                                          \
    {"logsumexp", b_logsumexp, 1, 1, {2}, {{3, 4}}, {{-6, 6, 0}}}, /* spread out */        \
    REDUCE_CASES(prod, ANY),                                                               \
    REDUCE_CASES(norm, AWAY),                                                              \
    REDUCE_CASES(var, ANY),                                                                \
    REDUCE_CASES(argmax, ANY),

/* -------------------------------------------------- forward-value tests -- */

/* A [2,3,4] tensor's values; a reduction's reference along `axis` of x (those
 * values, rounded to the dtype) by explicit loops, through ref(run, len). */
static const double red_x234[24] = {0.5,  -1.25, 2,    0.75, -0.5, 1.5,  -2,   0.25,
                                    1.75, -0.75, 1.25, -1.5, 0.3,  -0.6, 0.9,  1.1,
                                    -1.7, 0.4,   -0.2, 1.9,  -1.1, 0.6,  -0.9, 1.3};
static void red_reference(double (*ref)(const double *, int), const double *x, int axis,
                          double *want) {
    const int d[3] = {2, 3, 4};
    int outer = 1, inner = 1;
    for (int i = 0; i < axis; i++) outer *= d[i];
    for (int i = axis + 1; i < 3; i++) inner *= d[i];
    for (int o = 0; o < outer; o++)
        for (int i = 0; i < inner; i++) {
            double run[4];
            for (int k = 0; k < d[axis]; k++) run[k] = x[(o * d[axis] + k) * inner + i];
            want[o * inner + i] = ref(run, d[axis]);
        }
}

/* |got - want| <= tol |want|: relative also for values far below 1, where
 * expect_near's floor would accept anything. */
static void expect_rel(double got, double want, double tol, const char *what) {
    if (!(fabs(got - want) <= tol * fabs(want)))
        fail_msg("%s: got %.17g, want %.17g", what, got, want);
}

static double ref_max(const double *x, int n) {
    double m = x[0];
    for (int i = 1; i < n; i++) m = x[i] > m ? x[i] : m;
    return m;
}
static double ref_min(const double *x, int n) {
    double m = x[0];
    for (int i = 1; i < n; i++) m = x[i] < m ? x[i] : m;
    return m;
}
/* Unshifted: the test values are small. */
static double ref_logsumexp(const double *x, int n) {
    double s = 0;
    for (int i = 0; i < n; i++) s += exp(x[i]);
    return log(s);
}
static double ref_prod(const double *x, int n) {
    double p = 1;
    for (int i = 0; i < n; i++) p *= x[i];
    return p;
}
static double ref_norm(const double *x, int n) {
    double s = 0;
    for (int i = 0; i < n; i++) s += x[i] * x[i];
    return sqrt(s);
}
/* The position of the largest, the first at a tie (no NaN in these runs). */
static double ref_argmax(const double *x, int n) {
    int best = 0;
    for (int i = 1; i < n; i++) best = x[i] > x[best] ? i : best;
    return best;
}
/* The textbook E[x^2] - E[x]^2, a different formula from the kernel's. */
static double ref_var(const double *x, int n) {
    double s = 0, s2 = 0;
    for (int i = 0; i < n; i++) s += x[i], s2 += x[i] * x[i];
    return s2 / n - (s / n) * (s / n);
}

/* Each op over all elements and along every axis of [2,3,4] (and negative
 * axes), both dtypes, against loops over the definition in double. */
static void test_reduce_values(void **state) {
    (void)state;
    static const struct {
        const char *name;
        tg_node *(*all)(tg_node *);
        tg_node *(*axis)(tg_node *, int);
        double (*ref)(const double *, int);
    } ops[] = {
        {"max", tg_max, tg_max_axis, ref_max},
        {"min", tg_min, tg_min_axis, ref_min},
        {"logsumexp", tg_logsumexp, tg_logsumexp_axis, ref_logsumexp},
        {"prod", tg_prod, tg_prod_axis, ref_prod},
        {"norm", tg_norm, tg_norm_axis, ref_norm},
        {"var", tg_var, tg_var_axis, ref_var},
        {"argmax", tg_argmax, tg_argmax_axis, ref_argmax},
    };
    const int64_t shape[3] = {2, 3, 4};
    tg_tape *t = tg_tape_new();
    for (size_t k = 0; k < sizeof ops / sizeof *ops; k++)
        for (int dt = 0; dt < 2; dt++) {
            /* the reference sees the inputs as the dtype holds them */
            double tol = dt ? 1e-14 : 1e-6, want[12], xin[24];
            for (int i = 0; i < 24; i++) xin[i] = dt ? red_x234[i] : (double)(float)red_x234[i];
            tg_node *x = tg_reshape(vec(t, (tg_dtype)dt, 24, red_x234), 3, shape);
            for (int axis = -3; axis < 3; axis++) {
                int a = axis < 0 ? axis + 3 : axis;
                red_reference(ops[k].ref, xin, a, want);
                tg_node *y = ops[k].axis(x, axis);
                int64_t ys[4];
                assert_int_equal(tg_shape(y, ys), 2);
                assert_int_equal(ys[0], shape[a == 0 ? 1 : 0]);
                assert_int_equal(ys[1], shape[a == 2 ? 1 : 2]);
                expect_values(y, want, 24 / shape[a], tol, ops[k].name);
            }
            double all = ops[k].ref(xin, 24);
            tg_node *y = ops[k].all(x);
            assert_int_equal(tg_ndim(y), 0);
            expect_values(y, &all, 1, tol, ops[k].name);
            /* a 0-d input: itself, except norm |x|, var 0 and argmax 0 */
            double v0 = -1.5, w0 = k == 4 ? 1.5 : k >= 5 ? 0 : -1.5;
            tg_node *s = dt ? tg_scalar(t, v0) : tg_const_as(t, TG_F32, v0);
            expect_values(ops[k].all(s), &w0, 1, tol, ops[k].name);
        }
    assert_int_equal(tg_status(t), TG_OK);
    tg_tape_free(t);
}

/* Axes are checked: out of range, and any axis of a 0-d input, is TG_ERR_ARG. */
static void test_reduce_bad_axis(void **state) {
    (void)state;
    tg_node *(*axis_ops[])(tg_node *, int) = {tg_max_axis,  tg_min_axis,  tg_logsumexp_axis,
                                              tg_prod_axis, tg_norm_axis, tg_var_axis,
                                              tg_argmax_axis};
    tg_tape *t = tg_tape_new();
    for (size_t k = 0; k < sizeof axis_ops / sizeof *axis_ops; k++) {
        const int bad[3] = {2, -3, 0};
        for (int b = 0; b < 3; b++) {
            tg_tape_reset(t);
            tg_node *x = b < 2 ? mat(t, TG_F64, 2, 2, (const double[]){1, 2, 3, 4}) : tg_scalar(t, 1);
            axis_ops[k](x, bad[b]);
            assert_int_equal(tg_status(t), TG_ERR_ARG);
            assert_non_null(strstr(tg_status_message(t), "out of range"));
        }
        /* tg_call reduces along axis 0, which a 0-d input lacks */
        tg_tape_reset(t);
        const char *names[] = {"max", "min", "logsumexp", "prod", "norm", "var", "argmax"};
        tg_call(names[k], tg_scalar(t, 1), NULL);
        assert_int_equal(tg_status(t), TG_ERR_ARG);
        assert_non_null(strstr(tg_status_message(t), names[k]));
    }
    tg_tape_free(t);
}

/* Exact ties split the gradient evenly (PyTorch's amax/amin rule: mask / count). */
static void test_reduce_ties(void **state) {
    (void)state;
    tg_tape *t = tg_tape_new();
    for (int dt = 0; dt < 2; dt++) {
        tg_dtype d = (tg_dtype)dt;
        tg_tape_reset(t);
        tg_node *x = vec(t, d, 4, (const double[]){1, 3, 3, 2});
        tg_node *y = tg_max(x);
        expect_values(y, (const double[]){3}, 1, 0, "max with a tie");
        assert_int_equal(tg_backward(y), TG_OK);
        expect_grads(x, (const double[]){0, 0.5, 0.5, 0}, 4, 0, "max tie gradient");

        tg_tape_reset(t);
        x = vec(t, d, 4, (const double[]){1, 1, 3, 1});
        y = tg_min(x);
        expect_values(y, (const double[]){1}, 1, 0, "min with a 3-way tie");
        assert_int_equal(tg_backward(y), TG_OK);
        expect_grads(x, (const double[]){1.0 / 3, 1.0 / 3, 0, 1.0 / 3}, 4, dt ? 1e-16 : 1e-7,
                     "min tie gradient");

        /* along an axis, each run its own ties; seeded adjoints 2 and -4 */
        tg_tape_reset(t);
        x = mat(t, d, 2, 3, (const double[]){5, 5, -1, 7, 2, 0});
        y = tg_max_axis(x, 1);
        expect_values(y, (const double[]){5, 7}, 2, 0, "max axis 1 with a tie");
        if (dt)
            assert_int_equal(tg_backward_seeded(y, (const double[]){2, -4}), TG_OK);
        else
            assert_int_equal(tg_backward_seeded(y, (const float[]){2, -4}), TG_OK);
        expect_grads(x, (const double[]){1, 1, 0, -4, 0, 0}, 6, 0, "max axis tie gradient");
        /* along axis 0: columns [5,7], [5,2], [-1,0]; a tie of -inf in a min */
        tg_tape_reset(t);
        x = mat(t, d, 2, 3, (const double[]){-INFINITY, 4, 2, -INFINITY, 4, 3});
        y = tg_min_axis(x, 0);
        expect_values(y, (const double[]){-INFINITY, 4, 2}, 3, 0, "min axis 0 with ties");
        assert_int_equal(tg_backward(tg_sum(tg_mul(y, vec(t, d, 3, (const double[]){2, 6, 1})))),
                         TG_OK);
        expect_grads(x, (const double[]){1, 3, 1, 1, 3, 0}, 6, 0, "min axis 0 tie gradient");

        /* NaN anywhere in a run: the result is NaN and so is every gradient
         * of the run (torch.amax); the run without NaN is unaffected. */
        tg_tape_reset(t);
        x = mat(t, d, 2, 3, (const double[]){1, NAN, 3, 4, 6, 5});
        y = tg_max_axis(x, 1);
        expect_values(y, (const double[]){NAN, 6}, 2, 0, "max with NaN");
        assert_int_equal(tg_backward(tg_sum(y)), TG_OK);
        expect_grads(x, (const double[]){NAN, NAN, NAN, 0, 1, 0}, 6, 0, "max NaN gradient");
        tg_tape_reset(t);
        x = vec(t, d, 3, (const double[]){NAN, -1, -2});
        expect_values(tg_min(x), (const double[]){NAN}, 1, 0, "min with NaN first");
        expect_values(tg_max(vec(t, d, 3, (const double[]){-1, INFINITY, NAN})),
                      (const double[]){NAN}, 1, 0, "max with inf and NaN");
    }
    tg_tape_free(t);
}

/* logsumexp where the unshifted formula overflows or meets infinities. */
static void test_reduce_logsumexp_extremes(void **state) {
    (void)state;
    tg_tape *t = tg_tape_new();
    for (int dt = 0; dt < 2; dt++) {
        tg_dtype d = (tg_dtype)dt;
        tg_tape_reset(t);
        /* log(2 e^1000) = 1000 + ln 2; gradient the softmax, 1/2 each */
        tg_node *x = vec(t, d, 2, (const double[]){1000, 1000});
        tg_node *y = tg_logsumexp(x);
        expect_values(y, (const double[]){1000 + log(2.0)}, 1, dt ? 1e-16 : 1e-7, "lse 1000");
        assert_int_equal(tg_backward(y), TG_OK);
        expect_grads(x, (const double[]){0.5, 0.5}, 2, dt ? 1e-13 : 1e-4, "lse 1000 gradient");
        /* e^-1000 underflows: log(e^-1000 + e^-1001) = -1000 + log(1 + 1/e) */
        x = vec(t, d, 2, (const double[]){-1000, -1001});
        expect_values(tg_logsumexp(x), (const double[]){-1000 + log1p(exp(-1.0))}, 1,
                      dt ? 1e-16 : 1e-7, "lse -1000");
        /* -inf elements contribute e^-inf = 0 and get gradient 0 */
        x = vec(t, d, 2, (const double[]){-INFINITY, 1});
        y = tg_logsumexp(x);
        expect_values(y, (const double[]){1}, 1, 0, "lse with -inf");
        assert_int_equal(tg_backward(y), TG_OK);
        expect_grads(x, (const double[]){0, 1}, 2, 0, "lse with -inf gradient");
        /* all -inf: log 0 = -inf (PyTorch; its gradient, e^(-inf + inf), is NaN) */
        tg_node *m = mat(t, d, 2, 2, (const double[]){-INFINITY, -INFINITY, 0, 0});
        y = tg_logsumexp_axis(m, 1);
        expect_values(y, (const double[]){-INFINITY, log(2.0)}, 2, dt ? 1e-16 : 1e-7,
                      "lse all -inf");
        assert_int_equal(tg_backward(tg_sum(y)), TG_OK);
        expect_grads(m, (const double[]){NAN, NAN, 0.5, 0.5}, 4, dt ? 1e-15 : 1e-7,
                     "lse all -inf gradient");
        expect_values(tg_logsumexp(vec(t, d, 3, (const double[]){INFINITY, 1, -INFINITY})),
                      (const double[]){INFINITY}, 1, 0, "lse +inf");
        expect_values(tg_logsumexp(vec(t, d, 3, (const double[]){INFINITY, NAN, 1})),
                      (const double[]){NAN}, 1, 0, "lse NaN");
        expect_values(tg_logsumexp(vec(t, d, 2, (const double[]){1, NAN})), (const double[]){NAN},
                      1, 0, "lse NaN last");
    }
    assert_int_equal(tg_status(t), TG_OK);
    tg_tape_free(t);
}

/* prod's gradient is the product of the other elements, also at zeros. */
static void test_reduce_prod_zeros(void **state) {
    (void)state;
    tg_tape *t = tg_tape_new();
    for (int dt = 0; dt < 2; dt++) {
        tg_dtype d = (tg_dtype)dt;
        tg_tape_reset(t);
        /* no zero: d/dx_k = prod / x_k */
        tg_node *x = vec(t, d, 4, (const double[]){2, -3, 0.5, 4});
        tg_node *y = tg_prod(x);
        expect_values(y, (const double[]){-12}, 1, 0, "prod");
        assert_int_equal(tg_backward(y), TG_OK);
        expect_grads(x, (const double[]){-3 * 0.5 * 4, 2 * 0.5 * 4, 2 * -3 * 4, 2 * -3 * 0.5}, 4,
                     0, "prod gradient");
        /* one zero: that element gets 2 * 3 * -1.5, the others 0 */
        tg_tape_reset(t);
        x = vec(t, d, 4, (const double[]){2, 0, 3, -1.5});
        y = tg_prod(x);
        expect_values(y, (const double[]){0}, 1, 0, "prod one zero");
        assert_int_equal(tg_backward(y), TG_OK);
        expect_grads(x, (const double[]){0, -9, 0, 0}, 4, 0, "prod one zero gradient");
        /* two zeros: every product of others holds a zero */
        tg_tape_reset(t);
        x = vec(t, d, 4, (const double[]){0, 5, -0.0, 3});
        y = tg_prod(x);
        expect_values(y, (const double[]){0}, 1, 0, "prod two zeros");
        assert_int_equal(signbit(tg_value_scalar(y)) != 0, 1); /* +0 * 5 * -0 * 3 = -0 */
        assert_int_equal(tg_backward(y), TG_OK);
        expect_grads(x, (const double[]){0, 0, 0, 0}, 4, 0, "prod two zeros gradient");
        /* along axis 1 of [3,3]: rows with none, one and two zeros, adjoint 2 */
        tg_tape_reset(t);
        x = mat(t, d, 3, 3, (const double[]){1.5, 2, -1, 0, 4, 0.25, 0, 7, 0});
        y = tg_prod_axis(x, 1);
        expect_values(y, (const double[]){-3, 0, 0}, 3, 0, "prod axis 1");
        assert_int_equal(tg_backward(tg_scale(tg_sum(y), 2)), TG_OK);
        expect_grads(x, (const double[]){-4, -3, 6, 2, 0, 0, 0, 0, 0}, 9, 0,
                     "prod axis 1 gradient");
        /* a 0-d prod is the identity, also at 0 (PyTorch gives 1) */
        tg_tape_reset(t);
        x = dt ? tg_scalar(t, 0) : tg_tensor(t, TG_F32, 0, NULL, NULL);
        y = tg_prod(x);
        assert_int_equal(tg_backward(y), TG_OK);
        expect_grads(x, (const double[]){1}, 1, 0, "0-d prod gradient");
        /* 0 x inf is NaN (IEEE), in any order */
        expect_values(tg_prod(vec(t, d, 2, (const double[]){0, INFINITY})), (const double[]){NAN},
                      1, 0, "prod 0 inf");
        expect_values(tg_prod(vec(t, d, 3, (const double[]){NAN, 0, 1})), (const double[]){NAN},
                      1, 0, "prod NaN 0");
    }
    /* no intermediate overflow or underflow (float64: the partial products
     * leave the double range) */
    tg_tape_reset(t);
    tg_node *x = vec(t, TG_F64, 3, (const double[]){1e200, 1e200, 1e-200});
    expect_values(tg_prod(x), (const double[]){1e200}, 1, 1e-15, "prod 1e200 1e200 1e-200");
    x = vec(t, TG_F64, 2, (const double[]){1e-200, 3e-200});
    tg_node *y = tg_prod(x);
    expect_values(y, (const double[]){0}, 1, 0, "prod underflows to 0");
    assert_int_equal(tg_backward(y), TG_OK);
    expect_rel(tg_grad_at(x, 0), 3e-200, 1e-15, "prod underflow gradient 0");
    expect_rel(tg_grad_at(x, 1), 1e-200, 1e-15, "prod underflow gradient 1");
    tg_tape_free(t);
}

/* norm at the zero vector, and at magnitudes whose squares leave the range. */
static void test_reduce_norm_extremes(void **state) {
    (void)state;
    tg_tape *t = tg_tape_new();
    for (int dt = 0; dt < 2; dt++) {
        tg_dtype d = (tg_dtype)dt;
        tg_tape_reset(t);
        /* rows: the zero vector (gradient 0, PyTorch's choice) and [3, 4] */
        tg_node *x = mat(t, d, 2, 2, (const double[]){0, 0, 3, -4});
        tg_node *y = tg_norm_axis(x, 1);
        expect_values(y, (const double[]){0, 5}, 2, 0, "norm zero row");
        assert_int_equal(tg_backward(tg_sum(y)), TG_OK);
        expect_grads(x, (const double[]){0, 0, 0.6, -0.8}, 4, dt ? 1e-16 : 1e-7,
                     "norm zero gradient");
        tg_tape_reset(t);
        x = tg_tensor(t, d, 0, NULL, NULL);
        y = tg_norm(x);
        assert_int_equal(tg_backward(y), TG_OK);
        expect_grads(x, (const double[]){0}, 1, 0, "0-d norm at 0");
        /* float32: [2e38, 2e38] has norm 2.83e38, a float, though its
         * squares are not; computed in double, and its gradient too */
        tg_tape_reset(t);
        x = vec(t, d, 2, (const double[]){2e38, -2e38});
        y = tg_norm(x);
        expect_values(y, (const double[]){2e38 * sqrt(2.0)}, 1, dt ? 1e-15 : 1e-7, "norm 2e38");
        assert_int_equal(tg_backward(y), TG_OK);
        expect_grads(x, (const double[]){sqrt(0.5), -sqrt(0.5)}, 2, dt ? 1e-15 : 1e-7,
                     "norm 2e38 gradient");
        /* the largest float: the float32 result overflows (3.4e38 sqrt 2 is
         * no float) but its gradient, from the norm in double, does not */
        tg_tape_reset(t);
        x = vec(t, d, 2, (const double[]){3.4e38, 3.4e38});
        y = tg_norm(x);
        expect_values(y, (const double[]){dt ? 3.4e38 * sqrt(2.0) : INFINITY}, 1, 1e-15,
                      "norm 3.4e38");
        assert_int_equal(tg_backward(y), TG_OK);
        expect_grads(x, (const double[]){sqrt(0.5), sqrt(0.5)}, 2, dt ? 1e-15 : 1e-7,
                     "norm 3.4e38 gradient");
        expect_values(tg_norm(vec(t, d, 3, (const double[]){INFINITY, 1, -INFINITY})),
                      (const double[]){INFINITY}, 1, 0, "norm inf");
        expect_values(tg_norm(vec(t, d, 3, (const double[]){INFINITY, NAN, 1})),
                      (const double[]){NAN}, 1, 0, "norm NaN");
    }
    /* float64: squares overflow (1e400) or underflow (1e-400) */
    tg_tape_reset(t);
    tg_node *x = vec(t, TG_F64, 2, (const double[]){3e200, -4e200});
    tg_node *y = tg_norm(x);
    expect_values(y, (const double[]){5e200}, 1, 1e-15, "norm 3e200 4e200");
    assert_int_equal(tg_backward(y), TG_OK);
    expect_grads(x, (const double[]){0.6, -0.8}, 2, 1e-15, "norm 3e200 gradient");
    y = tg_norm(vec(t, TG_F64, 3, (const double[]){3e-200, 0, 4e-200}));
    expect_rel(tg_value_scalar(y), 5e-200, 1e-15, "norm 3e-200 4e-200");
    expect_values(tg_norm(vec(t, TG_F64, 2, (const double[]){4.9e-324, 0})),
                  (const double[]){4.9e-324}, 1, 0, "norm of the smallest subnormal");
    tg_tape_free(t);
}

/* var's value and gradient by hand, and its float32 accuracy on an offset. */
static void test_reduce_var_grad(void **state) {
    (void)state;
    tg_tape *t = tg_tape_new();
    for (int dt = 0; dt < 2; dt++) {
        tg_dtype d = (tg_dtype)dt;
        tg_tape_reset(t);
        /* [1,2,4]: mean 7/3, var (16 + 1 + 25)/27 = 14/9, d/dx = 2 (x - 7/3) / 3 */
        tg_node *x = vec(t, d, 3, (const double[]){1, 2, 4});
        tg_node *y = tg_var(x);
        expect_values(y, (const double[]){14.0 / 9}, 1, dt ? 1e-15 : 1e-7, "var [1,2,4]");
        assert_int_equal(tg_backward(y), TG_OK);
        expect_grads(x, (const double[]){-8.0 / 9, -2.0 / 9, 10.0 / 9}, 3, dt ? 1e-15 : 1e-7,
                     "var gradient");
        /* columns of one element: variance 0, gradient 0 */
        tg_tape_reset(t);
        x = mat(t, d, 1, 3, (const double[]){5, -1, 2});
        y = tg_var_axis(x, 0);
        expect_values(y, (const double[]){0, 0, 0}, 3, 0, "var of one element");
        assert_int_equal(tg_backward(tg_sum(y)), TG_OK);
        expect_grads(x, (const double[]){0, 0, 0}, 3, 0, "var of one element gradient");
        /* a large offset, 4096 + {0.25, 0.5, 0.75, 1} (exact in float), where
         * E[x^2] - E[x]^2 would lose 9 digits: var 0.078125 */
        x = vec(t, d, 4, (const double[]){4096.25, 4096.5, 4096.75, 4097});
        expect_values(tg_var(x), (const double[]){0.078125}, 1, dt ? 1e-12 : 1e-7, "var offset");
        expect_values(tg_var(vec(t, d, 2, (const double[]){INFINITY, 1})), (const double[]){NAN},
                      1, 0, "var inf");
    }
    assert_int_equal(tg_status(t), TG_OK);
    tg_tape_free(t);
}

/* Second derivatives through the vjp rules (tg_grad), against central
 * differences of the gradient (tg_gradgradcheck), of sum(op(x)^2) along
 * each axis; the ops without a rule make tg_grad fail naming them. */
static const struct {
    tg_node *(*all)(tg_node *);
    tg_node *(*axis)(tg_node *, int);
} red_second[] = {{tg_logsumexp, tg_logsumexp_axis}, {tg_var, tg_var_axis},
                  {tg_max, tg_max_axis},             {tg_min, tg_min_axis},
                  {tg_prod, tg_prod_axis},           {tg_norm, tg_norm_axis}};
static tg_node *red_second_build(tg_tape *t, tg_node *const *in, int n, void *ctx) {
    (void)t, (void)n;
    const int *c = ctx; /* op, axis (ALL_AXES: all) */
    tg_node *y = c[1] == ALL_AXES ? red_second[c[0]].all(in[0]) : red_second[c[0]].axis(in[0], c[1]);
    return tg_sum(tg_mul(y, y));
}
static void test_reduce_second_order(void **state) {
    (void)state;
    double v[12];
    for (int i = 0; i < 12; i++) v[i] = sin(1.3 * i + 0.2);
    tg_gradcheck_input in = {TG_F64, 2, {3, 4}, v, 0};
    const int axes[4] = {ALL_AXES, 0, 1, -1};
    for (int op = 0; op < 6; op++)
        for (int a = 0; a < 4; a++) {
            int ctx[2] = {op, axes[a]};
            tg_gradcheck_report rep;
            assert_int_equal(tg_gradgradcheck(red_second_build, 1, &in, ctx, NULL, &rep), TG_OK);
            if (!rep.passed)
                fail_msg("second derivative of op %d axis %d, [%lld]: analytic %.17g numeric %.17g",
                         op, axes[a], (long long)rep.worst.index, rep.worst.analytic,
                         rep.worst.numeric);
            assert_true(rep.checked > 0);
            /* tg_gradgradcheck differentiates the recorded gradient, so a
             * rule off by a constant factor would pass it: the recorded
             * gradient's values must also be the backward kernel's (which
             * the gradient cases check against differences of f). */
            tg_tape *t = tg_tape_new();
            tg_node *x = tg_tensor(t, TG_F64, 2, in.shape, v);
            expect_grad_is_backward(red_second_build(t, &x, 1, ctx), 1, &x, 1e-14,
                                    "recorded gradient");
            tg_tape_free(t);
        }
    /* At the points where the rules branch (ties, zeros, the zero vector),
     * tg_grad's values are the kernels' (hand-checked in the tests above). */
    static const struct {
        int op;
        double x[4];
    } special[] = {
        {2, {1, 3, 3, -2}}, {3, {-2, 5, -2, -2}}, /* ties split the gradient */
        {4, {2, 0, 3, -1}}, {4, {0, 2, 0, 5}},    /* one zero, two zeros */
        {5, {0, 0, 0, 0}},                        /* the zero vector */
    };
    tg_tape *t = tg_tape_new();
    for (size_t k = 0; k < sizeof special / sizeof *special; k++) {
        tg_tape_reset(t);
        tg_node *x = vec(t, TG_F64, 4, special[k].x);
        tg_node *f = tg_sum(tg_mul(red_second[special[k].op].all(x), tg_const(t, 1.5)));
        expect_grad_is_backward(f, 1, &x, 0, "recorded gradient at a branch");
    }
    tg_tape_free(t);
}

/* argmax by PyTorch's rules, by hand: the first index at a tie, the first
 * NaN as the largest, infinities ordered; float32 indices exact; along an
 * axis the position along it. Its derivative is 0: a backward sweep through
 * it leaves the input's gradient 0, and tg_grad records nothing for it. */
static void test_argmax(void **state) {
    (void)state;
    static const struct {
        int n;
        double x[6], want;
    } runs[] = {
        {3, {1, 3, 3}, 1},
        {4, {2, 2, 2, 2}, 0},
        {4, {1, NAN, 5, NAN}, 1},
        {3, {NAN, 7, 9}, 0},
        {3, {-INFINITY, -1e30, -INFINITY}, 1},
        {4, {0, INFINITY, 1e30, INFINITY}, 1},
        {2, {-0.0, 0.0}, 0}, /* -0 == 0: a tie */
        {5, {-3, -1, -2, -1, -5}, 1},
    };
    tg_tape *t = tg_tape_new();
    for (int dt = 0; dt < 2; dt++)
        for (size_t r = 0; r < sizeof runs / sizeof *runs; r++) {
            tg_node *x = vec(t, (tg_dtype)dt, runs[r].n, runs[r].x);
            expect_values(tg_argmax(x), &runs[r].want, 1, 0, "argmax");
            expect_values(tg_argmax_axis(x, 0), &runs[r].want, 1, 0, "argmax_axis");
        }
    /* [2,3] along each axis: columns' rows and rows' columns */
    const double m[6] = {4, -1, 4, 4, 2, 0.5};
    expect_values(tg_argmax_axis(mat(t, TG_F64, 2, 3, m), 0), (const double[]){0, 1, 0}, 3, 0,
                  "argmax_axis 0");
    expect_values(tg_argmax_axis(mat(t, TG_F32, 2, 3, m), -1), (const double[]){0, 0}, 2, 0,
                  "argmax_axis -1");
    expect_values(tg_argmax(mat(t, TG_F64, 2, 3, m)), (const double[]){0}, 1, 0, "argmax all");
    /* float32 holds a large index exactly */
    const int64_t big = 1 << 20;
    tg_node *v = tg_tensor(t, TG_F32, 1, &big, NULL);
    ((float *)tg_value(v))[big - 3] = 1;
    expect_values(tg_argmax(v), (const double[]){(double)(big - 3)}, 1, 0, "argmax 2^20");
    assert_int_equal(tg_status(t), TG_OK);
    /* the zero derivative: f = argmax(x) * sum(x) + argmax(x) passes back only
     * sum's share, argmax(x) = 2 to every element */
    tg_tape_reset(t);
    const int64_t n4 = 4;
    tg_node *x = tg_tensor(t, TG_F64, 1, &n4, (const double[]){0.5, -1, 3, 2});
    tg_node *i = tg_argmax(x), *f = tg_add(tg_mul(i, tg_sum(x)), i);
    assert_int_equal(tg_backward(f), TG_OK);
    for (int k = 0; k < 4; k++) assert_true(tg_grad_at(x, k) == 2);
    tg_node *g;
    assert_int_equal(tg_grad(f, 1, &x, &g), TG_OK);
    for (int k = 0; k < 4; k++) assert_true(tg_value_at(g, k) == 2);
    tg_node *g0;
    assert_int_equal(tg_grad(tg_argmax(x), 1, &x, &g0), TG_OK);
    for (int k = 0; k < 4; k++) assert_true(tg_value_at(g0, k) == 0);
    assert_int_equal(tg_status(t), TG_OK);
    tg_tape_free(t);
}

#define TESTS_REDUCE                                                                       \
    cmocka_unit_test(test_argmax),                                                         \
    cmocka_unit_test(test_reduce_values), cmocka_unit_test(test_reduce_bad_axis),          \
    cmocka_unit_test(test_reduce_ties), cmocka_unit_test(test_reduce_logsumexp_extremes),  \
    cmocka_unit_test(test_reduce_prod_zeros), cmocka_unit_test(test_reduce_norm_extremes), \
    cmocka_unit_test(test_reduce_var_grad), cmocka_unit_test(test_reduce_second_order),

#endif
