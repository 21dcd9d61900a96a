/*
 * Accuracy of the vectorised elementwise ops (src/kernels/vmath.h, ops/unary.c):
 * exp log sin cos tan tanh sigmoid erf log1p expm1 softplus gelu silu,
 * through the tensor path (a 1-D tensor, tg_call, tg_backward_seeded), in
 * both dtypes, at every vector math level this CPU and build have (scalar
 * libm loops, SLEEF for SSE2, AVX2, AVX-512).
 *
 * Oracle: each op's definition evaluated in long double (64-bit mantissa,
 * glibc's expl, erfcl...: 11 bits beyond double, so the reference is good to
 * about 0.001 ulp of a double result). The points: a dense sweep over the
 * op's useful range, and tails: every binade from the smallest subnormal to
 * the largest finite value, both signs, four mantissas each, wherever the
 * result is finite in the dtype.
 *
 * Error of a value: |y - r| / ulp(r), ulp(r) the spacing of the dtype at the
 * exact result r (the subnormal spacing below the normal range). Bounds:
 * float64 values within 2 ulp (issue 11), float32 values within 2 ulp, at
 * the SLEEF levels; at the scalar level (the build without SLEEF) within 3,
 * as glibc's own tanh and erfc reach 2.0 and 2.6 (and so gelu).
 * Derivatives, over the dense sweep: |d - r'| / ulp(max(|r'|, peak)), peak
 * the derivative's largest magnitude for the ops whose derivative comes from
 * the stored output (1 - y^2 cancels where tanh' is tiny), else 0 (a
 * relative error); within 4 such ulps. Prints the worst error per op, dtype
 * and level.
 */
#include <float.h>
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

#include "vmath.h"

typedef long double ld;

#define SQRT1_2L 0.707106781186547524400844362104849039L
#define SQRT1_2L_LO 1.8950325588932572e-20L /* 1/sqrt 2 - SQRT1_2L */

static ld sigmoid_ref(ld x) { return x >= 0 ? 1 / (1 + expl(-x)) : expl(x) / (1 + expl(x)); }
/* 2 Phi(x) = erfc(-x / sqrt 2); -x / sqrt 2 rounded to long double carries
 * an error the steep erfc amplifies (about 2z^2 of it, some 1500 at z = 27),
 * so the rounding is put back to first order: erfc(z + d) = erfc(z) -
 * 2/sqrt(pi) e^(-z^2) d, with d from fmal (exact) and the constant's error
 * (computed in decimal to 60 digits). */
static ld two_cdf_ref(ld x) {
    ld z = -x * SQRT1_2L, d = fmal(-x, SQRT1_2L, -z) - x * SQRT1_2L_LO;
    return erfcl(z) - 1.12837916709551257389615890312154517L * expl(-z * z) * d;
}
static ld gelu_ref(ld x) { return x / 2 * two_cdf_ref(x); }
/* e^(-x^2/2), with x^2 exact as h + l */
static ld half_gauss(ld x) {
    ld h = x * x, l = fmal(x, x, -h);
    return expl(-h / 2) * (1 - l / 2);
}

static ld r_exp(ld x) { return expl(x); }
static ld r_log(ld x) { return logl(x); }
static ld r_sin(ld x) { return sinl(x); }
static ld r_cos(ld x) { return cosl(x); }
static ld r_tan(ld x) { return tanl(x); }
static ld r_tanh(ld x) { return tanhl(x); }
static ld r_erf(ld x) { return erfl(x); }
static ld r_log1p(ld x) { return log1pl(x); }
static ld r_expm1(ld x) { return expm1l(x); }
static ld r_softplus(ld x) { return (x > 0 ? x : 0) + log1pl(expl(-fabsl(x))); }
static ld r_silu(ld x) { return x * sigmoid_ref(x); }

static ld d_exp(ld x) { return expl(x); }
static ld d_log(ld x) { return 1 / x; }
static ld d_sin(ld x) { return cosl(x); }
static ld d_cos(ld x) { return -sinl(x); }
static ld d_tan(ld x) { return 1 / (cosl(x) * cosl(x)); }
static ld d_tanh(ld x) { return 1 / (coshl(x) * coshl(x)); }
static ld d_sigmoid(ld x) { return sigmoid_ref(x) * sigmoid_ref(-x); }
static ld d_erf(ld x) {
    ld g = half_gauss(x);
    return 1.12837916709551257389615890312154517L * g * g;
}
static ld d_log1p(ld x) { return 1 / (1 + x); }
static ld d_expm1(ld x) { return expl(x); }
static ld d_gelu(ld x) {
    return two_cdf_ref(x) / 2 + x * half_gauss(x) * 0.398942280401432677939946059934381868L;
}
static ld d_silu(ld x) { return sigmoid_ref(x) * (1 + x * sigmoid_ref(-x)); }

typedef struct op_row {
    const char *op;
    ld (*f)(ld), (*df)(ld);
    double lo, hi; /* the dense sweep */
    double peak;   /* see the top: 0 for a relative derivative error */
} op_row;

static const op_row rows[] = {
    {"exp", r_exp, d_exp, -20, 20, 0},
    {"log", r_log, d_log, 1e-3, 100, 0},
    {"sin", r_sin, d_sin, -10, 10, 1},
    {"cos", r_cos, d_cos, -10, 10, 1},
    {"tan", r_tan, d_tan, -1.5, 1.5, 0},
    {"tanh", r_tanh, d_tanh, -8, 8, 1},
    {"sigmoid", sigmoid_ref, d_sigmoid, -20, 20, 0.25},
    {"erf", r_erf, d_erf, -6, 6, 0},
    {"log1p", r_log1p, d_log1p, -0.999, 100, 0},
    {"expm1", r_expm1, d_expm1, -20, 20, 0},
    {"softplus", r_softplus, sigmoid_ref, -20, 20, 0},
    {"gelu", gelu_ref, d_gelu, -10, 10, 1.13},
    {"silu", r_silu, d_silu, -20, 20, 1.1},
};

enum { DENSE = 40000 };

/* The spacing of the dtype at r (p mantissa bits, emin the least normal
 * exponent), for |r| below the dtype's largest value. */
static ld ulp_at(ld r, int p, int emin) {
    int e = r == 0 ? emin : ilogbl(r);
    return ldexpl(1, (e < emin ? emin : e) - p + 1);
}

/* The points: the dense sweep, then the tails. */
static size_t make_points(const op_row *o, int f32, double *x) {
    size_t n = 0;
    for (size_t i = 0; i < DENSE; i++) {
        double f = (double)i * 0.6180339887498949;
        x[n++] = o->lo + (o->hi - o->lo) * (f - floor(f));
    }
    int emin = f32 ? -149 : -1074, emax = f32 ? 127 : 1023;
    static const double mant[4] = {1, 1.171875, 1.5, 1.8359375};
    for (int e = emin; e <= emax; e++)
        for (int m = 0; m < 4; m++)
            for (int s = -1; s <= 1; s += 2) x[n++] = s * ldexp(mant[m], e);
    return n;
}

/* Runs op over x (n values, stored in x as double; the dtype's values when
 * f32) forward and backward with dy = 1: y and dy/dx. */
static void run_op(const char *op, int f32, size_t n, const double *x, double *y, double *d) {
    tg_tape *t = tg_tape_new();
    int64_t shape[1] = {(int64_t)n};
    tg_dtype dt = f32 ? TG_F32 : TG_F64;
    tg_node *in = tg_tensor(t, dt, 1, shape, NULL);
    for (size_t i = 0; i < n; i++) {
        if (f32)
            ((float *)tg_value(in))[i] = (float)x[i];
        else
            ((double *)tg_value(in))[i] = x[i];
    }
    tg_node *out = tg_call(op, in, NULL);
    void *seed = malloc(n * (f32 ? sizeof(float) : sizeof(double)));
    assert_non_null(seed);
    for (size_t i = 0; i < n; i++) {
        if (f32)
            ((float *)seed)[i] = 1;
        else
            ((double *)seed)[i] = 1;
    }
    assert_int_equal(tg_backward_seeded(out, seed), TG_OK);
    for (size_t i = 0; i < n; i++) {
        y[i] = f32 ? ((float *)tg_value(out))[i] : ((double *)tg_value(out))[i];
        d[i] = f32 ? ((float *)tg_grad(in))[i] : ((double *)tg_grad(in))[i];
    }
    free(seed);
    tg_tape_free(t);
}

static void check_op(void **state) {
    const op_row *o = *state;
    size_t cap = DENSE + 2 * 4 * 2200;
    double *x = malloc(cap * sizeof *x), *y = malloc(cap * sizeof *y), *d = malloc(cap * sizeof *d);
    ld *r = malloc(cap * sizeof *r), *rd = malloc(cap * sizeof *rd);
    assert_true(x && y && d && r && rd);
    int failed = 0;
    for (int f32 = 0; f32 <= 1; f32++) {
        int p = f32 ? 24 : 53, emin = f32 ? -126 : -1022;
        ld big = f32 ? FLT_MAX : DBL_MAX;
        size_t n = make_points(o, f32, x);
        for (size_t i = 0; i < n; i++) {
            if (f32) x[i] = (float)x[i];
            r[i] = o->f(x[i]);
            rd[i] = i < DENSE ? o->df(x[i]) : 0;
        }
        int best = tg__vmath_set(-1);
        for (int level = 0; level <= best; level++) {
            assert_int_equal(tg__vmath_set(level), level);
            run_op(o->op, f32, n, x, y, d);
            double worst = 0, worst_d = 0, at = 0, at_d = 0;
            for (size_t i = 0; i < n; i++) {
                if (isnan(r[i]) || fabsl(r[i]) > big) continue; /* outside the domain or range */
                double e = (double)(fabsl(y[i] - r[i]) / ulp_at(r[i], p, emin));
                /* a NaN where the reference is a number stays the worst */
                if (!isnan(worst) && !(e <= worst)) worst = e, at = x[i];
                if (i >= DENSE || fabsl(rd[i]) > big) continue;
                ld scale = fabsl(rd[i]) > o->peak ? fabsl(rd[i]) : o->peak;
                double ed = (double)(fabsl(d[i] - rd[i]) / ulp_at(scale, p, emin));
                if (!isnan(worst_d) && !(ed <= worst_d)) worst_d = ed, at_d = x[i];
            }
            printf("ulp %-8s %s %-6s value %6.3f (at %-12.6g) derivative %6.3f (at %.6g)\n",
                   o->op, f32 ? "float32" : "float64", tg__vmath_name(level), worst, at,
                   worst_d, at_d);
            if (!(worst <= (level ? 2 : 3)) || !(worst_d <= 4)) {
                printf("    beyond the bound\n");
                failed = 1;
            }
        }
        tg__vmath_set(-1);
    }
    free(x), free(y), free(d), free(r), free(rd);
    if (failed) fail_msg("%s: beyond the bounds (above)", o->op);
}

/* The special values at every level, straight through src/kernels/vmath.h: what
 * libm gives (NaN for NaN, the same infinity or zero, and the subnormal
 * results), compared bit for bit where libm's result is not a NaN... or to
 * 1 ulp for finite results, which the two libraries may round apart. */
static const double specials[] = {
    NAN, -NAN, INFINITY, -INFINITY, 0.0, -0.0, 4.9406564584124654e-324, -4.9406564584124654e-324,
    2.2250738585072014e-308, -2.2250738585072014e-308, 1e-300, -1e-300, 1e-20, -1e-20, 0.5,
    -0.5, -1, 1, 700, -700, 710, -710, 745, -746, 1e22, -1e22, 1e300, -1e300, DBL_MAX, -DBL_MAX};
enum { NSPEC = sizeof specials / sizeof *specials };

#define LIBM_ROW(fn) {#fn, fn, fn##f, tg__v##fn##_f64, tg__v##fn##_f32},
static const struct {
    const char *name;
    double (*d)(double);
    float (*f)(float);
    void (*vd)(size_t, const double *, double *);
    void (*vf)(size_t, const float *, float *);
} funcs[] = {TG_VMATH_FUNCS(LIBM_ROW)};

static int same(double a, double b, double tol) {
    if (isnan(a) || isnan(b)) return isnan(a) && isnan(b);
    if (isinf(a) || isinf(b) || a == 0 || b == 0) return a == b && signbit(a) == signbit(b);
    return fabs(a - b) <= tol * fabs(b);
}

static void check_specials(void **state) {
    (void)state;
    int best = tg__vmath_set(-1);
    for (int level = 0; level <= best; level++) {
        tg__vmath_set(level);
        for (size_t k = 0; k < sizeof funcs / sizeof *funcs; k++) {
            double xd[NSPEC], yd[NSPEC];
            float xf[NSPEC], yf[NSPEC];
            for (int i = 0; i < NSPEC; i++) xd[i] = specials[i], xf[i] = (float)specials[i];
            xf[6] = 1.4e-45f, xf[7] = -1.4e-45f, xf[28] = FLT_MAX, xf[29] = -FLT_MAX;
            funcs[k].vd(NSPEC, xd, yd);
            funcs[k].vf(NSPEC, xf, yf);
            for (int i = 0; i < NSPEC; i++) {
                /* 1e-15 / 1e-6: one or two ulps apart, never a lost subnormal or sign */
                if (!same(yd[i], funcs[k].d(xd[i]), 1e-15))
                    fail_msg("%s %s(%g) = %g, libm %g", tg__vmath_name(level), funcs[k].name,
                             xd[i], yd[i], funcs[k].d(xd[i]));
                if (!same(yf[i], funcs[k].f(xf[i]), 1e-6))
                    fail_msg("%s %sf(%g) = %g, libm %g", tg__vmath_name(level), funcs[k].name,
                             (double)xf[i], (double)yf[i], (double)funcs[k].f(xf[i]));
            }
        }
    }
    tg__vmath_set(-1);
}

int main(void) {
    struct CMUnitTest tests[sizeof rows / sizeof *rows + 1];
    for (size_t k = 0; k < sizeof rows / sizeof *rows; k++)
        tests[k] = (struct CMUnitTest){rows[k].op, check_op, NULL, NULL, (void *)&rows[k]};
    tests[sizeof rows / sizeof *rows] =
        (struct CMUnitTest){"specials", check_specials, NULL, NULL, NULL};
    return _cmocka_run_group_tests("ulp", tests, sizeof tests / sizeof *tests, NULL, NULL);
}
