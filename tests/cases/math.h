/* Gradient cases and forward-value tests of the elementwise math ops of one input (ops/unary.c). Included by test_ops.c,
 * after its harness: see the comment above its case table.
 *
 * test_ops.c includes it with TG_TEST_OPS defined: CASES_MATH is a list of
 * gradient-case rows, TESTS_MATH a list of cmocka_unit_test() entries (each
 * item ending in a comma). test_nonfinite.c includes it with
 * TG_TEST_NONFINITE defined: REFS_MATH lists {name, arity, ref} rows for
 * elementwise ops (ref computes the op's definition from libm in double),
 * BUILDS_MATH {name, build, expect} rows for the other ops (see that file). */
#ifdef TG_TEST_OPS

/* ------------------------------------------------------- gradient cases -- */

UNARY_BUILDER(tan)
UNARY_BUILDER(asin)
UNARY_BUILDER(acos)
UNARY_BUILDER(atan)
UNARY_BUILDER(sinh)
UNARY_BUILDER(cosh)
UNARY_BUILDER(asinh)
UNARY_BUILDER(acosh)
UNARY_BUILDER(atanh)
UNARY_BUILDER(erf)
UNARY_BUILDER(erfc)
UNARY_BUILDER(log1p)
UNARY_BUILDER(expm1)
UNARY_BUILDER(log2)
UNARY_BUILDER(log10)
UNARY_BUILDER(exp2)
UNARY_BUILDER(cbrt)
UNARY_BUILDER(square)
UNARY_BUILDER(reciprocal)
UNARY_BUILDER(softplus)
UNARY_BUILDER(gelu)
UNARY_BUILDER(silu)
UNARY_BUILDER(sign)
UNARY_BUILDER(floor)
UNARY_BUILDER(ceil)
UNARY_BUILDER(round)

/* Domains that keep the stencil (+-2h, h = 1e-3) off poles, domain ends and
 * jumps: tan away from pi/2; asin, acos, atanh inside (-1, 1); acosh above 1;
 * log1p above -1; floor and ceil between the integers -1, 0, 1; round
 * between -0.5 and 0.5 (its jumps are at the halves). */
#define TAN_DOM {0, 1.2, 1}
#define UNIT_DOM {0, 0.9, 1}
#define ACOSH_DOM {1.2, 3, 0}
#define LOG1P_DOM {-0.5, 2, 0}
#define FRAC_DOM {0.1, 0.9, 1}
#define ROUND_DOM {0.05, 0.45, 1}

#define CASES_MATH                                                                         \
    UNARY_CASES(tan, TAN_DOM), UNARY_CASES(asin, UNIT_DOM), UNARY_CASES(acos, UNIT_DOM),   \
    UNARY_CASES(atan, ANY), UNARY_CASES(sinh, ANY), UNARY_CASES(cosh, ANY),                \
    UNARY_CASES(asinh, ANY), UNARY_CASES(acosh, ACOSH_DOM), UNARY_CASES(atanh, UNIT_DOM),  \
    UNARY_CASES(erf, ANY), UNARY_CASES(erfc, ANY), UNARY_CASES(log1p, LOG1P_DOM),          \
    UNARY_CASES(expm1, ANY), UNARY_CASES(log2, POS), UNARY_CASES(log10, POS),              \
    UNARY_CASES(exp2, ANY), UNARY_CASES(cbrt, AWAY), UNARY_CASES(square, ANY),             \
    UNARY_CASES(reciprocal, DIVISOR), UNARY_CASES(softplus, ANY),                          \
    {"softplus", b_softplus, 0, 1, {1}, {{4}}, {{3, 12, 1}}}, /* the tails */              \
    UNARY_CASES(gelu, ANY), {"gelu", b_gelu, 0, 1, {1}, {{4}}, {{2, 6, 1}}},               \
    UNARY_CASES(silu, ANY), {"silu", b_silu, 0, 1, {1}, {{4}}, {{3, 12, 1}}},              \
    UNARY_CASES(sign, AWAY), UNARY_CASES(floor, FRAC_DOM), UNARY_CASES(ceil, FRAC_DOM),    \
    UNARY_CASES(round, ROUND_DOM),

/* -------------------------------------------------- the reference table -- */

/* Each op's value and derivative in long double (glibc's x87 functions, an
 * implementation independent of the double and float ones the kernels call),
 * and where to sample: a grid over [lo, hi] and a few chosen points. */
typedef long double (*math_ref)(long double);
typedef struct math_row {
    const char *name;
    tg_node *(*op)(tg_node *);
    math_ref f, df;
    double lo, hi;
    double extra[4]; /* more points (0 = none, after the first) */
    double ulps; /* the value's error allowed, in units of the dtype's last place */
} math_row;

#define LN2L 0.693147180559945309417232121458176568L
#define LN10L 2.30258509299404568401799145468436421L
#define SQRTPIL 1.77245385090551602729816748334114518L
#define SQRT2L 1.41421356237309504880168872420969808L

static long double r_tan(long double x) { return tanl(x); }
static long double d_tan(long double x) { return 1 / (cosl(x) * cosl(x)); }
static long double r_asin(long double x) { return asinl(x); }
static long double d_asin(long double x) { return 1 / sqrtl(1 - x * x); }
static long double r_acos(long double x) { return acosl(x); }
static long double d_acos(long double x) { return -1 / sqrtl(1 - x * x); }
static long double r_atan(long double x) { return atanl(x); }
static long double d_atan(long double x) { return 1 / (1 + x * x); }
static long double r_sinh(long double x) { return sinhl(x); }
static long double r_cosh(long double x) { return coshl(x); }
static long double r_asinh(long double x) { return asinhl(x); }
static long double d_asinh(long double x) { return 1 / sqrtl(x * x + 1); }
static long double r_acosh(long double x) { return acoshl(x); }
static long double d_acosh(long double x) { return 1 / sqrtl((x - 1) * (x + 1)); }
static long double r_atanh(long double x) { return atanhl(x); }
static long double d_atanh(long double x) { return 1 / ((1 - x) * (1 + x)); }
static long double r_erf(long double x) { return erfl(x); }
static long double d_erf(long double x) { return 2 / SQRTPIL * expl(-x * x); }
static long double r_erfc(long double x) { return erfcl(x); }
static long double d_erfc(long double x) { return -2 / SQRTPIL * expl(-x * x); }
static long double r_log1p(long double x) { return log1pl(x); }
static long double d_log1p(long double x) { return 1 / (1 + x); }
static long double r_expm1(long double x) { return expm1l(x); }
static long double d_expm1(long double x) { return expl(x); }
static long double r_log2(long double x) { return log2l(x); }
static long double d_log2(long double x) { return 1 / (x * LN2L); }
static long double r_log10(long double x) { return log10l(x); }
static long double d_log10(long double x) { return 1 / (x * LN10L); }
static long double r_exp2(long double x) { return exp2l(x); }
static long double d_exp2(long double x) { return exp2l(x) * LN2L; }
static long double r_cbrt(long double x) { return cbrtl(x); }
static long double d_cbrt(long double x) { return 1 / (3 * cbrtl(x) * cbrtl(x)); }
static long double r_square(long double x) { return x * x; }
static long double d_square(long double x) { return 2 * x; }
static long double r_reciprocal(long double x) { return 1 / x; }
static long double d_reciprocal(long double x) { return -1 / (x * x); }
/* softplus' = sigmoid; long double's range holds e^x for every double x used */
static long double r_softplus(long double x) { return log1pl(expl(x)); }
static long double d_softplus(long double x) { return 1 / (1 + expl(-x)); }
static long double r_gelu(long double x) { return x * erfcl(-x / SQRT2L) / 2; }
static long double d_gelu(long double x) {
    return erfcl(-x / SQRT2L) / 2 + x * expl(-x * x / 2) / (SQRT2L * SQRTPIL);
}
static long double r_silu(long double x) { return x / (1 + expl(-x)); }
/* s + x s (1 - s) with s (1 - s) = e / (1 + e)^2, e = e^-|x| (either sign) */
static long double d_silu(long double x) {
    long double e = expl(-fabsl(x)), s = x >= 0 ? 1 / (1 + e) : e / (1 + e);
    return s + x * e / ((1 + e) * (1 + e));
}

static const math_row math_rows[] = {
    {"tan", tg_tan, r_tan, d_tan, -1.5, 1.5, {3, -3, 1e-8}, 2},
    {"asin", tg_asin, r_asin, d_asin, -0.999, 0.999, {1e-9, -0.5}, 2},
    {"acos", tg_acos, r_acos, d_acos, -0.999, 0.999, {1e-9, 0.5}, 2},
    {"atan", tg_atan, r_atan, d_atan, -20, 20, {1e10, -1e-9, 1e150}, 2},
    {"sinh", tg_sinh, r_sinh, r_cosh, -80, 80, {1e-9, -700, 0.3}, 2},
    {"cosh", tg_cosh, r_cosh, r_sinh, -80, 80, {1e-9, 700, -0.3}, 2},
    {"asinh", tg_asinh, r_asinh, d_asinh, -30, 30, {1e-9, 1e200, -1e300, 1e17}, 2},
    {"acosh", tg_acosh, r_acosh, d_acosh, 1.001, 40, {1 + 1e-9, 1e200, 1e300}, 2},
    {"atanh", tg_atanh, r_atanh, d_atanh, -0.999, 0.999, {1e-9, 0.999999, -0.3}, 2},
    {"erf", tg_erf, r_erf, d_erf, -6, 6, {1e-9, -1e-300, 0.47}, 2},
    {"erfc", tg_erfc, r_erfc, d_erfc, -6, 26, {1e-9, 9, 0.47}, 2},
    {"log1p", tg_log1p, r_log1p, d_log1p, -0.999, 100, {1e-10, -1e-12, 1e-300, 1e300}, 2},
    {"expm1", tg_expm1, r_expm1, d_expm1, -40, 40, {1e-10, -1e-15, 700, -700}, 2},
    {"log2", tg_log2, r_log2, d_log2, 1e-3, 100, {1e-300, 1e300, 0.75, 1.5}, 2},
    {"log10", tg_log10, r_log10, d_log10, 1e-3, 100, {1e-300, 1e300, 0.75, 1.5}, 2},
    {"exp2", tg_exp2, r_exp2, d_exp2, -100, 100, {1e-9, -1020, 1000, 0.1}, 2},
    {"cbrt", tg_cbrt, r_cbrt, d_cbrt, -30, 30, {1e-300, -1e300, 1e-9, 27}, 4}, /* glibc cbrt: 3 ulps */
    {"square", tg_square, r_square, d_square, -30, 30, {1e150, 1e-160, -3e-5}, 1},
    {"reciprocal", tg_reciprocal, r_reciprocal, d_reciprocal, 0.01, 30, {-1e300, 1e-300, -3}, 1},
    {"softplus", tg_softplus, r_softplus, d_softplus, -40, 40, {-700, 700, 1e-9, -1e30}, 3},
    {"gelu", tg_gelu, r_gelu, d_gelu, -8, 8, {-30, -37, 30, 1e30}, 3},
    {"silu", tg_silu, r_silu, d_silu, -40, 40, {-700, 700, 1e-9, -1e30}, 4},
};
#define NMATH_ROWS (sizeof math_rows / sizeof *math_rows)
#define MATH_GRID 37 /* a step of (hi - lo) / 36 hits no dyadic grid */

/* Units in the last place of w in the dtype (subnormal spacing at least). */
static double ulp_of(tg_dtype dt, double w) {
    int bits = dt == TG_F64 ? 52 : 23;
    double tiny = dt == TG_F64 ? 0x1p-1074 : 0x1p-149;
    return w == 0 ? tiny : fmax(ldexp(1, ilogb(w) - bits), tiny);
}

/* How far got is from the long double reference w, in ulps of the dtype
 * (w rounded to the dtype first: overflow to inf, underflow to 0). Infinities
 * must match exactly; a finite value where w overflows is a failure. */
static double ulps_off(tg_dtype dt, double got, long double w) {
    double want = dt == TG_F64 ? (double)w : (double)(float)w;
    if (isnan(want) || isinf(want)) return (isnan(want) ? isnan(got) : got == want) ? 0 : INFINITY;
    if (!isfinite(got)) return INFINITY;
    return (double)(fabsl((long double)got - w) / ulp_of(dt, want));
}

/* The sample points of row r, as the dtype rounds them; returns how many. */
static int math_points(const math_row *r, tg_dtype dt, double *xs) {
    int n = 0;
    for (int i = 0; i < MATH_GRID; i++) xs[n++] = r->lo + (r->hi - r->lo) * i / (MATH_GRID - 1);
    for (int i = 0; i < 4 && (i == 0 || r->extra[i] != 0); i++) xs[n++] = r->extra[i];
    if (dt == TG_F32)
        for (int i = 0; i < n; i++) xs[i] = (double)(float)xs[i];
    return n;
}

/* y = op(x) and dy/dx for every x of xs, in two forms: all at once through a
 * 1-D tensor (the vector loops), and one by one through 0-d nodes (the
 * scalar fast path in float64). */
static void math_eval(tg_tape *t, tg_node *(*op)(tg_node *), tg_dtype dt, int n, const double *xs,
                      double *y1, double *g1, double *y0, double *g0) {
    tg_tape_reset(t);
    tg_node *x = vec(t, dt, n, xs), *y = op(x);
    assert_int_equal(tg_backward(tg_sum(y)), TG_OK);
    for (int i = 0; i < n; i++) {
        y1[i] = tg_value_at(y, i);
        g1[i] = tg_grad_at(x, i);
    }
    for (int i = 0; i < n; i++) {
        tg_tape_reset(t);
        tg_node *s = dt == TG_F64 ? tg_scalar(t, xs[i]) : tg_tensor(t, dt, 0, NULL, (float[]){(float)xs[i]});
        tg_node *ys = op(s);
        assert_int_equal(tg_backward(ys), TG_OK);
        y0[i] = tg_value_scalar(ys);
        g0[i] = tg_grad_scalar(s);
    }
}

/* Values and derivatives of every op of the table against long double, both
 * dtypes, both forms: the value within r->ulps of the exact one, the
 * derivative (a formula of several rounded terms, some from the rounded y)
 * within DERIV_ULPS. */
#define DERIV_ULPS 8
static void test_math_values(void **state) {
    (void)state;
    /* The reference needs long double's extra bits; under valgrind, which
     * computes long double as double, it has none and is itself off by many
     * ulps near cancellations (asin' at -0.999), so there is nothing to
     * compare against. */
    volatile long double one = 1, tiny = LDBL_EPSILON;
    if (one + tiny == one || LDBL_MANT_DIG <= DBL_MANT_DIG) {
        print_message("math values: long double is no wider than double here: skipped\n");
        skip();
    }
    tg_tape *t = tg_tape_new();
    double worst[2][2] = {{0}}; /* [dtype][value, derivative] */
    for (size_t k = 0; k < NMATH_ROWS; k++) {
        const math_row *r = &math_rows[k];
        for (int d = 0; d < 2; d++) {
            tg_dtype dt = d ? TG_F64 : TG_F32;
            double xs[MATH_GRID + 4], y1[MATH_GRID + 4], g1[MATH_GRID + 4], y0[MATH_GRID + 4],
                g0[MATH_GRID + 4];
            int n = math_points(r, dt, xs);
            math_eval(t, r->op, dt, n, xs, y1, g1, y0, g0);
            for (int i = 0; i < n; i++) {
                long double f = r->f(xs[i]), df = r->df(xs[i]);
                double e[4] = {ulps_off(dt, y1[i], f), ulps_off(dt, y0[i], f),
                               ulps_off(dt, g1[i], df), ulps_off(dt, g0[i], df)};
                for (int j = 0; j < 4; j++) {
                    if (!(e[j] <= (j < 2 ? r->ulps : DERIV_ULPS)))
                        fail_msg("%s %s at x = %.17g (%s, %s): got %.17g, want %.17Lg (%.3g ulps)",
                                 r->name, j < 2 ? "value" : "derivative", xs[i],
                                 d ? "float64" : "float32", j % 2 ? "0-d" : "tensor",
                                 j < 2 ? (j ? y0[i] : y1[i]) : (j == 3 ? g0[i] : g1[i]),
                                 j < 2 ? f : df, e[j]);
                    worst[d][j / 2] = fmax(worst[d][j / 2], e[j]);
                }
            }
        }
        forward_covered(r->name);
    }
    print_message("math ops vs long double: worst %.2f ulps (value), %.2f (derivative) in float64; "
                  "%.2f, %.2f in float32\n",
                  worst[1][0], worst[1][1], worst[0][0], worst[0][1]);
    tg_tape_free(t);
}

/* Known values, by hand, both dtypes: exact results, the domain ends and the
 * limits at +-inf. (pi/4 and friends are rounded inputs: tolerance 1e-15.) */
static void test_math_known_values(void **state) {
    (void)state;
    const double pi = 3.14159265358979323846, ln2 = 0.69314718055994530942;
    const double ln3 = 1.09861228866810969140;
    static const struct {
        tg_node *(*op)(tg_node *);
        int n;
        double x[8], y[8];
    } k[] = {
        {tg_sign, 8, {-2.5, -0.0, 0.0, 3, 1e-30, INFINITY, -INFINITY, NAN}, {-1, 0, 0, 1, 1, 1, -1, NAN}},
        {tg_floor, 6, {-2.5, -0.5, 0.5, 2, -INFINITY, NAN}, {-3, -1, 0, 2, -INFINITY, NAN}},
        {tg_ceil, 6, {-2.5, -0.5, 0.5, 2, INFINITY, NAN}, {-2, -0.0, 1, 2, INFINITY, NAN}},
        /* halves to even, not away from zero as C's round */
        {tg_round, 8, {0.5, 1.5, 2.5, -0.5, -1.5, -2.5, 2.4375, -3.5625}, {0, 2, 2, -0.0, -2, -2, 2, -4}},
        {tg_cbrt, 5, {-8, 27, 0.125, -0.0, -INFINITY}, {-2, 3, 0.5, -0.0, -INFINITY}},
        {tg_exp2, 5, {10, -1, 0.5, -INFINITY, INFINITY}, {1024, 0.5, 1.41421356237309504880, 0, INFINITY}},
        {tg_log2, 5, {8, 0.25, 0, -1, INFINITY}, {3, -2, -INFINITY, NAN, INFINITY}},
        {tg_log10, 5, {1000, 0.01, 0, -1, INFINITY}, {3, -2, -INFINITY, NAN, INFINITY}},
        {tg_square, 5, {-3, 1.5, -INFINITY, NAN, 0}, {9, 2.25, INFINITY, NAN, 0}},
        {tg_reciprocal, 5, {4, -0.5, 0, -0.0, -INFINITY}, {0.25, -2, INFINITY, -INFINITY, -0.0}},
        {tg_tan, 3, {0, pi / 4, -pi / 4}, {0, 1, -1}},
        {tg_asin, 5, {1, -1, 0.5, 2, 0}, {pi / 2, -pi / 2, pi / 6, NAN, 0}},
        {tg_acos, 5, {1, -1, 0.5, 2, -1.5}, {0, pi, pi / 3, NAN, NAN}},
        {tg_atan, 4, {1, INFINITY, -INFINITY, -1}, {pi / 4, pi / 2, -pi / 2, -pi / 4}},
        /* sinh(ln 2) = 3/4, cosh(ln 2) = 5/4, and their inverses */
        {tg_sinh, 4, {0, ln2, -ln2, -INFINITY}, {0, 0.75, -0.75, -INFINITY}},
        {tg_cosh, 4, {0, ln2, -ln2, -INFINITY}, {1, 1.25, 1.25, INFINITY}},
        {tg_asinh, 4, {0, 0.75, -0.75, -INFINITY}, {0, ln2, -ln2, -INFINITY}},
        {tg_acosh, 5, {1, 1.25, 0.5, INFINITY, -2}, {0, ln2, NAN, INFINITY, NAN}},
        /* atanh(1/3) = ln(2) / 2 */
        {tg_atanh, 6, {0, 1.0 / 3, 1, -1, 2, -0.5}, {0, ln2 / 2, INFINITY, -INFINITY, NAN, -ln3 / 2}},
        {tg_erf, 4, {0, INFINITY, -INFINITY, -30}, {0, 1, -1, -1}},
        {tg_erfc, 4, {0, INFINITY, -INFINITY, 30}, {1, 0, 2, 0}},
        {tg_log1p, 5, {0, -1, -2, INFINITY, 1}, {0, -INFINITY, NAN, INFINITY, ln2}},
        {tg_expm1, 5, {0, -INFINITY, ln2, INFINITY, -ln2}, {0, -1, 1, INFINITY, -0.5}},
        /* softplus(+-x) = ln(1 + e^+-x): ln 3 at x = ln 2, ln(3/2) at -ln 2 */
        {tg_softplus, 8, {0, 800, -800, INFINITY, -INFINITY, ln2, -ln2, 1e30},
         {ln2, 800, 0, INFINITY, 0, ln3, ln3 - ln2, 1e30}},
        /* Phi(1) = 0.841344746068542948..., a classic table value */
        {tg_gelu, 7, {0, -INFINITY, INFINITY, -40, 1, -1, 1e30},
         {0, -0.0, INFINITY, -0.0, 0.84134474606854294859, -0.15865525393145705141, 1e30}},
        /* sigmoid(ln 3) = 3/4 */
        {tg_silu, 7, {0, -INFINITY, INFINITY, -1000, 1000, ln3, -ln3},
         {0, -0.0, INFINITY, -0.0, 1000, 0.75 * ln3, -0.25 * ln3}},
    };
    tg_tape *t = tg_tape_new();
    for (size_t i = 0; i < sizeof k / sizeof *k; i++) {
        for (int d = 0; d < 2; d++) {
            tg_dtype dt = d ? TG_F64 : TG_F32;
            tg_node *y = k[i].op(vec(t, dt, k[i].n, k[i].x));
            const char *name = tg_node_op_name(y);
            expect_values(y, k[i].y, k[i].n, d ? 1e-15 : 1e-6, name);
            for (int j = 0; j < k[i].n; j++) /* signed zeros: sign(-0) = +0, round(-0.5) = -0 */
                if (k[i].y[j] == 0 && !!signbit(k[i].y[j]) != !!signbit(tg_value_at(y, j)))
                    fail_msg("%s(%g) = %g: the sign of zero is wrong", name, k[i].x[j], tg_value_at(y, j));
        }
    }
    assert_int_equal(tg_status(t), TG_OK);
    tg_tape_free(t);
}

/* The derivative conventions, in both dtypes and both forms (0-d and
 * tensor): PyTorch's infinite slopes at the ends of a domain, formula values
 * outside it, derivative 0 of the step functions (also at their jumps), the
 * limits of gelu, silu and softplus at +-inf, relu's at 0 and NaN. */
static void test_math_derivative_conventions(void **state) {
    (void)state;
    static const struct {
        tg_node *(*op)(tg_node *);
        double x, dydx;
    } c[] = {
        /* 1/sqrt(1 - x^2) and friends at the ends: vertical slopes */
        {tg_asin, 1, INFINITY}, {tg_asin, -1, INFINITY}, {tg_asin, 2, NAN},
        {tg_acos, 1, -INFINITY}, {tg_acos, -1, -INFINITY},
        {tg_acosh, 1, INFINITY}, {tg_acosh, 0.5, NAN},
        {tg_atanh, 1, INFINITY}, {tg_atanh, -1, INFINITY},
        {tg_atanh, 2, -1.0 / 3}, /* 1/(1 - x^2) outside the domain, as PyTorch */
        {tg_log1p, -1, INFINITY}, {tg_log1p, -2, -1}, /* 1/(1 + x), as PyTorch */
        {tg_log2, 0, INFINITY}, {tg_log10, 0, INFINITY},
        {tg_cbrt, 0, INFINITY}, {tg_cbrt, -0.0, INFINITY}, {tg_cbrt, -8, 1.0 / 12},
        {tg_reciprocal, 0, -INFINITY}, {tg_reciprocal, -2, -0.25},
        {tg_square, -3, -6}, {tg_tan, 0, 1}, {tg_expm1, 0, 1}, {tg_expm1, -INFINITY, 0},
        {tg_exp2, 0, 0.69314718055994530942}, {tg_exp2, 1, 2 * 0.69314718055994530942},
        {tg_erf, INFINITY, 0}, {tg_erfc, -INFINITY, 0}, {tg_erf, 0, 1.12837916709551257390},
        {tg_atan, INFINITY, 0}, {tg_asinh, 0, 1}, {tg_cosh, 0, 0}, {tg_sinh, 0, 1},
        /* the activations: sigmoid-like slopes, limits at +-inf */
        {tg_softplus, 0, 0.5}, {tg_softplus, INFINITY, 1}, {tg_softplus, -INFINITY, 0},
        {tg_softplus, 800, 1}, {tg_softplus, -800, 0},
        {tg_gelu, 0, 0.5}, {tg_gelu, INFINITY, 1}, {tg_gelu, -INFINITY, 0},
        {tg_silu, 0, 0.5}, {tg_silu, INFINITY, 1}, {tg_silu, -INFINITY, 0},
        {tg_silu, 1000, 1}, {tg_silu, -1000, 0},
        /* steps: 0 everywhere, the jumps included */
        {tg_sign, 0, 0}, {tg_sign, -2, 0}, {tg_floor, 1, 0}, {tg_floor, 0.5, 0},
        {tg_ceil, -1, 0}, {tg_round, 0.5, 0}, {tg_round, 2.5, 0}, {tg_round, NAN, 0},
        /* relu: 0 at 0 (either zero), and 1 at NaN as PyTorch (y <= 0 ? 0 : 1) */
        {tg_relu, 0, 0}, {tg_relu, -0.0, 0}, {tg_relu, NAN, 1}, {tg_relu, 2, 1}, {tg_relu, -2, 0},
        {tg_sigmoid, NAN, NAN},
    };
    tg_tape *t = tg_tape_new();
    enum { N = 11 }; /* long enough for the vector loops */
    for (size_t i = 0; i < sizeof c / sizeof *c; i++) {
        for (int d = 0; d < 2; d++) {
            tg_dtype dt = d ? TG_F64 : TG_F32;
            double xs[N], y1[N], g1[N], y0[N], g0[N];
            for (int j = 0; j < N; j++) xs[j] = c[i].x;
            math_eval(t, c[i].op, dt, N, xs, y1, g1, y0, g0);
            char what[96];
            snprintf(what, sizeof what, "d%s/dx at %g (%s)", tg_node_op_name(c[i].op(tg_scalar(t, 0))),
                     c[i].x, d ? "float64" : "float32");
            for (int j = 0; j < N; j++) {
                expect_near(g1[j], c[i].dydx, d ? 1e-15 : 1e-6, what, j);
                expect_near(g0[j], c[i].dydx, d ? 1e-15 : 1e-6, what, -1);
            }
        }
    }
    tg_tape_free(t);
}

/* NaN in, NaN out, through the 0-d fast path and the vector loops, for
 * relu and sigmoid (float32 sigmoid has its own vectorised exponential) and
 * the activations built on it; relu(-0) = -0 as PyTorch. And the step
 * functions pass no gradient at all, even a NaN one from above. */
static void test_math_nan(void **state) {
    (void)state;
    tg_node *(*ops[])(tg_node *) = {tg_relu, tg_sigmoid, tg_silu, tg_softplus, tg_gelu};
    tg_tape *t = tg_tape_new();
    enum { N = 19 };
    for (int d = 0; d < 2; d++) {
        tg_dtype dt = d ? TG_F64 : TG_F32;
        for (size_t k = 0; k < sizeof ops / sizeof *ops; k++) {
            double xs[N], y1[N], g1[N], y0[N], g0[N];
            for (int j = 0; j < N; j++) xs[j] = j % 3 ? (j % 2 ? -0.0 : 1.5) : NAN;
            math_eval(t, ops[k], dt, N, xs, y1, g1, y0, g0);
            for (int j = 0; j < N; j++) {
                if (!!isnan(y1[j]) != !!isnan(xs[j]) || !!isnan(y0[j]) != !!isnan(xs[j]))
                    fail_msg("op %zu (%s) at %g: got %g (tensor), %g (0-d)", k, d ? "float64" : "float32",
                             xs[j], y1[j], y0[j]);
                if (k == 0 && xs[j] == 0 && !(signbit(y1[j]) && signbit(y0[j])))
                    fail_msg("relu(-0) = %g, %g; PyTorch gives -0", y1[j], y0[j]);
            }
        }
        for (int k = 0; k < 4; k++) {
            tg_node *(*step[])(tg_node *) = {tg_sign, tg_floor, tg_ceil, tg_round};
            tg_tape_reset(t);
            const int64_t n = 9;
            tg_node *x = tg_tensor(t, dt, 1, &n, NULL), *y = step[k](x);
            double seed64[9];
            float seed32[9];
            for (int j = 0; j < n; j++) seed64[j] = seed32[j] = j % 2 ? NAN : INFINITY;
            assert_int_equal(tg_backward_seeded(y, d ? (const void *)seed64 : (const void *)seed32), TG_OK);
            for (int j = 0; j < n; j++)
                if (tg_grad_at(x, j) != 0) fail_msg("%s passed a gradient %g", tg_node_op_name(y), tg_grad_at(x, j));
        }
    }
    tg_tape_free(t);
}

/* Higher order: each op's vjp rule (tg_grad) gives the derivative its kernel
 * rule gives (to 1e-12: the two are different formulas, e.g. hypot against
 * a square root), and the second derivatives recorded through it pass
 * tg_gradgradcheck (central differences of the gradient) at three points. */
typedef struct higher_row {
    tg_node *(*op)(tg_node *);
    double x[3];
} higher_row;
static tg_node *sum_of_op(tg_tape *t, tg_node *const *in, int n, void *ctx) {
    (void)t, (void)n;
    return tg_sum(((const higher_row *)ctx)->op(in[0]));
}
static void test_math_higher_order(void **state) {
    (void)state;
    static const higher_row h[] = {
        {tg_tan, {-1.1, 0.3, 0.9}},     {tg_asin, {-0.7, 0.1, 0.8}},  {tg_acos, {-0.7, 0.1, 0.8}},
        {tg_atan, {-3, 0.2, 1.5}},      {tg_sinh, {-2, 0.1, 1.5}},    {tg_cosh, {-2, 0.1, 1.5}},
        {tg_asinh, {-3, 0.2, 1.5}},     {tg_acosh, {1.3, 2, 5}},      {tg_atanh, {-0.7, 0.1, 0.8}},
        {tg_erf, {-1.5, 0.2, 2}},       {tg_erfc, {-1.5, 0.2, 2}},    {tg_log1p, {-0.6, 0.3, 4}},
        {tg_expm1, {-2, 0.1, 1.5}},     {tg_log2, {0.3, 1, 7}},       {tg_log10, {0.3, 1, 7}},
        {tg_exp2, {-2, 0.1, 1.5}},      {tg_cbrt, {-2, 0.4, 3}},      {tg_square, {-2, 0.1, 1.5}},
        {tg_reciprocal, {-2, 0.6, 1.5}}, {tg_softplus, {-3, 0.1, 2}}, {tg_gelu, {-3, 0.1, 2}},
        {tg_silu, {-3, 0.1, 2}},        {tg_sign, {-2, 0.5, 3}},      {tg_floor, {-1.5, 0.5, 2.5}},
        {tg_ceil, {-1.5, 0.5, 2.5}},    {tg_round, {-1.3, 0.2, 2.7}},
    };
    tg_tape *t = tg_tape_new();
    for (size_t i = 0; i < sizeof h / sizeof *h; i++) {
        tg_tape_reset(t);
        const int64_t n = 3;
        tg_node *x = tg_tensor(t, TG_F64, 1, &n, h[i].x), *f = tg_sum(h[i].op(x)), *g;
        const char *name = tg_node_op_name(tg_node_input(f, 0));
        assert_int_equal(tg_grad(f, 1, &x, &g), TG_OK);
        assert_int_equal(tg_backward(f), TG_OK);
        for (int j = 0; j < n; j++) {
            double want = tg_grad_at(x, j), got = tg_value_at(g, j);
            if (!(fabs(got - want) <= 1e-12 * fabs(want)))
                fail_msg("%s'(%g): tg_grad gives %.17g, the kernel %.17g", name, h[i].x[j], got, want);
        }
        tg_gradcheck_input in = {TG_F64, 1, {3}, h[i].x, 0};
        tg_gradcheck_report rep;
        if (tg_gradgradcheck(sum_of_op, 1, &in, (void *)&h[i], NULL, &rep) != TG_OK)
            fail_msg("%s: %s", name, rep.message);
        if (!rep.passed || rep.checked != 9 + 3) /* the Hessian, then the gradient */
            fail_msg("%s'' at x[%lld]: analytic %.17g, numeric %.17g", name, (long long)rep.worst.index,
                     rep.worst.analytic, rep.worst.numeric);
    }
    tg_tape_free(t);
}

#define TESTS_MATH                                                                         \
    cmocka_unit_test(test_math_values), cmocka_unit_test(test_math_known_values),         \
    cmocka_unit_test(test_math_derivative_conventions), cmocka_unit_test(test_math_nan),      \
    cmocka_unit_test(test_math_higher_order),

#endif /* TG_TEST_OPS */

#ifdef TG_TEST_NONFINITE
/* Each op's definition in double from libm; at +-inf the limits (gelu and
 * silu at -inf are -0, where x * 0 would be NaN). sign(NaN) is NaN, and
 * sign(+-0) = 0; round is rint (halves to even). */
static double ref_tan(const double *x) { return tan(x[0]); }
static double ref_asin(const double *x) { return asin(x[0]); }
static double ref_acos(const double *x) { return acos(x[0]); }
static double ref_atan(const double *x) { return atan(x[0]); }
static double ref_sinh(const double *x) { return sinh(x[0]); }
static double ref_cosh(const double *x) { return cosh(x[0]); }
static double ref_asinh(const double *x) { return asinh(x[0]); }
static double ref_acosh(const double *x) { return acosh(x[0]); }
static double ref_atanh(const double *x) { return atanh(x[0]); }
static double ref_erf(const double *x) { return erf(x[0]); }
static double ref_erfc(const double *x) { return erfc(x[0]); }
static double ref_log1p(const double *x) { return log1p(x[0]); }
static double ref_expm1(const double *x) { return expm1(x[0]); }
static double ref_log2(const double *x) { return log2(x[0]); }
static double ref_log10(const double *x) { return log10(x[0]); }
static double ref_exp2(const double *x) { return exp2(x[0]); }
static double ref_cbrt(const double *x) { return cbrt(x[0]); }
static double ref_square(const double *x) { return x[0] * x[0]; }
static double ref_reciprocal(const double *x) { return 1 / x[0]; }
static double ref_softplus(const double *x) {
    return x[0] > 0 ? x[0] + log1p(exp(-x[0])) : log1p(exp(x[0]));
}
static double ref_gelu(const double *x) {
    return x[0] == -INFINITY ? -0.0 : 0.5 * x[0] * erfc(-x[0] / sqrt(2.0));
}
static double ref_silu(const double *x) { return x[0] == -INFINITY ? -0.0 : x[0] / (1 + exp(-x[0])); }
static double ref_sign(const double *x) { return isnan(x[0]) ? x[0] : (x[0] > 0) - (x[0] < 0); }
static double ref_floor(const double *x) { return floor(x[0]); }
static double ref_ceil(const double *x) { return ceil(x[0]); }
static double ref_round(const double *x) { return nearbyint(x[0]); }

#define REFS_MATH                                                                          \
    {"tan", 1, ref_tan}, {"asin", 1, ref_asin}, {"acos", 1, ref_acos}, {"atan", 1, ref_atan}, \
    {"sinh", 1, ref_sinh}, {"cosh", 1, ref_cosh}, {"asinh", 1, ref_asinh},                 \
    {"acosh", 1, ref_acosh}, {"atanh", 1, ref_atanh}, {"erf", 1, ref_erf},                 \
    {"erfc", 1, ref_erfc}, {"log1p", 1, ref_log1p}, {"expm1", 1, ref_expm1},               \
    {"log2", 1, ref_log2}, {"log10", 1, ref_log10}, {"exp2", 1, ref_exp2},                 \
    {"cbrt", 1, ref_cbrt}, {"square", 1, ref_square}, {"reciprocal", 1, ref_reciprocal},   \
    {"softplus", 1, ref_softplus}, {"gelu", 1, ref_gelu}, {"silu", 1, ref_silu},           \
    {"sign", 1, ref_sign}, {"floor", 1, ref_floor}, {"ceil", 1, ref_ceil},                 \
    {"round", 1, ref_round},
/* tanh's tangent along t in one pass (the derivative reads y): its
 * derivatives are tanh'' t to x and tanh' to t. */
static tg_node *build_unary_tangent(tg_tape *t, tg_dtype dt, double fill) {
    tg_node *x = filled(t, dt, 2, shape_3x4, fill);
    return tg_unary_tangent(tg_tanh(x), filled(t, dt, 2, shape_3x4, 0.75));
}
#define BUILDS_MATH {"unary_tangent", build_unary_tangent, NF_ALL},
#endif
