/*
 * Every registered op, checked two ways.
 *
 * 1. Gradients. A table of cases keyed by op name: each case builds the op
 *    through its public constructor on float64 tensors of given shapes
 *    (broadcasting pairs for binary ops, axes for reductions and softmax).
 *    At several random points, the tape's gradient of the projection
 *    L = sum_i w_i y_i (w random; tg_backward_seeded seeds dL/dy = w) is
 *    compared, for every input element, with a central difference of L. The
 *    test fails when a registered op has no case.
 *
 *    The difference is the fourth-order central stencil
 *        L'(x) ~ (L(x-2h) - 8 L(x-h) + 8 L(x+h) - L(x+2h)) / 12h,
 *    h = 1e-3 max(1, |x|): truncation error ~h^4 L^(5)/30 ~ 1e-13 and
 *    rounding error ~2 eps |L| / h ~ 1e-12 |L| on these inputs, so the check
 *        |analytic - numeric| <= 1e-6 max(|analytic|, |numeric|) + 1e-9
 *    is a relative test wherever a gradient component is not itself tiny;
 *    the 1e-9 floor only absorbs the rounding noise of components near 0.
 *    Inputs stay away from kinks and singularities: |x| >= 0.1 for abs and
 *    relu (farther than 2h), inputs >= 0.5 for log, sqrt and pow's base,
 *    divisors with |b| >= 0.5. The run prints the worst relative error it
 *    saw (about 1e-10 on these inputs).
 *
 *    The float32 variant of each case must give the float64 gradient to
 *    1e-4 of the largest gradient component (float32 accuracy).
 *
 * 2. Forward values against hand-written formulas, including the numerically
 *    delicate points (sigmoid at +-800, log(0), softmax of large logits), in
 *    both dtypes. This table too must cover every registered op.
 */
#include <float.h>
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include <tapegrad.h>

/* ------------------------------------------------------------ the PRNG -- */

/* splitmix64: a fixed seed makes every run check the same points. */
static uint64_t rng_state = 0x5eed0fda7a6e4a11ULL;

static uint64_t next_u64(void) {
    uint64_t z = (rng_state += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

/* Uniform in [0, 1). */
static double uniform(void) { return (double)(next_u64() >> 11) * 0x1.0p-53; }

/* ------------------------------------------------ forward-value helpers -- */

#define MAX_IN 3 /* inputs of an op at most */

/* Names of the ops whose forward values were checked (by expect_values). */
static const char *forward_checked[256];
static int nforward_checked;

static void forward_covered(const char *op) {
    for (int i = 0; i < nforward_checked; i++)
        if (strcmp(forward_checked[i], op) == 0) return;
    assert_true(nforward_checked < 256);
    forward_checked[nforward_checked++] = op;
}

/* |got - want| <= tol max(1, |want|), with infinities and NaN matched exactly. */
static void expect_near(double got, double want, double tol, const char *what, int64_t i) {
    bool ok;
    if (isnan(want))
        ok = isnan(got);
    else if (isinf(want))
        ok = got == want;
    else
        ok = fabs(got - want) <= tol * fmax(1, fabs(want));
    if (!ok) fail_msg("%s [%lld]: got %.17g, want %.17g", what, (long long)i, got, want);
}

static void expect_values(tg_node *y, const double *want, int64_t n, double tol, const char *what) {
    assert_non_null(y);
    if (tg_status(tg_node_tape(y)))
        fail_msg("%s: %s", what, tg_status_message(tg_node_tape(y)));
    assert_int_equal(tg_numel(y), n);
    for (int64_t i = 0; i < n; i++) expect_near(tg_value_at(y, i), want[i], tol, what, i);
    forward_covered(tg_node_op_name(y));
}

/* The gradient of x after a sweep, element by element against want. */
static void expect_grads(tg_node *x, const double *want, int64_t n, double tol, const char *what) {
    assert_int_equal(tg_numel(x), n);
    for (int64_t i = 0; i < n; i++) expect_near(tg_grad_at(x, i), want[i], tol, what, i);
}

/* The gradient tg_grad records for f (its vjp rules) has the values the
 * backward kernels give x by tg_backward(f), to tol as expect_near reads it. */
static void expect_grad_is_backward(tg_node *f, int n, tg_node *const *x, double tol,
                                    const char *what) {
    tg_node *g[MAX_IN];
    assert_true(n <= MAX_IN);
    assert_int_equal(tg_grad(f, n, x, g), TG_OK);
    assert_int_equal(tg_backward(f), TG_OK);
    for (int i = 0; i < n; i++)
        for (int64_t j = 0; j < tg_numel(x[i]); j++)
            expect_near(tg_value_at(g[i], j), tg_grad_at(x[i], j), tol, what, j);
}

static tg_node *vec(tg_tape *t, tg_dtype dt, int64_t n, const double *v) {
    tg_node *x = tg_tensor(t, dt, 1, &n, NULL);
    for (int64_t i = 0; i < n; i++) {
        if (dt == TG_F64)
            ((double *)tg_value(x))[i] = v[i];
        else
            ((float *)tg_value(x))[i] = (float)v[i];
    }
    return x;
}

static int64_t numel_of(int ndim, const int64_t *shape) {
    int64_t k = 1;
    for (int i = 0; i < ndim; i++) k *= shape[i];
    return k;
}

static tg_node *mat(tg_tape *t, tg_dtype dt, int64_t r, int64_t c, const double *v) {
    const int64_t s[2] = {r, c};
    return tg_reshape(vec(t, dt, r * c, v), 2, s);
}

/* ------------------------------------------------------- the case table -- */

/* Where an input's values are drawn: uniform magnitude in [lo, hi], with a
 * random sign when signed_away is set (keeps |x| >= lo, away from a kink). */
typedef struct domain {
    double lo, hi;
    int signed_away;
} domain;

#define ANY {-2, 2, 0}
#define POS {0.5, 2.5, 0}
#define AWAY {0.1, 2, 1}
#define DIVISOR {0.5, 2, 1}
#define PROB {0.05, 1, 0}

typedef tg_node *(*builder)(tg_node *const *in, int p);

typedef struct gcase {
    const char *op; /* the registered name the case covers */
    builder build;
    int p; /* a parameter for the builder: an axis, an exponent, a shape */
    int nin; /* 1 to MAX_IN inputs */
    int ndim[MAX_IN];
    int64_t shape[MAX_IN][4];
    domain dom[MAX_IN];
} gcase;

#define ALL_AXES 99 /* p of a full reduction */

#define UNARY_BUILDER(name)                                                                \
    static tg_node *b_##name(tg_node *const *in, int p) {                                  \
        (void)p;                                                                           \
        return tg_##name(in[0]);                                                           \
    }
#define BINARY_BUILDER(name)                                                               \
    static tg_node *b_##name(tg_node *const *in, int p) {                                  \
        (void)p;                                                                           \
        return tg_##name(in[0], in[1]);                                                    \
    }
UNARY_BUILDER(neg)
UNARY_BUILDER(exp)
UNARY_BUILDER(log)
UNARY_BUILDER(sqrt)
UNARY_BUILDER(abs)
UNARY_BUILDER(sin)
UNARY_BUILDER(cos)
UNARY_BUILDER(tanh)
UNARY_BUILDER(sigmoid)
UNARY_BUILDER(relu)
UNARY_BUILDER(transpose)
BINARY_BUILDER(add)
BINARY_BUILDER(sub)
BINARY_BUILDER(mul)
static tg_node *b_addcmul(tg_node *const *in, int p) {
    (void)p;
    return tg_addcmul(in[0], in[1], in[2]);
}
BINARY_BUILDER(div)
/* tanh's tangent along in[1] (its derivative reads y) and sin's (reads x). */
static tg_node *b_unary_tangent(tg_node *const *in, int p) {
    return tg_unary_tangent(p ? tg_sin(in[0]) : tg_tanh(in[0]), in[1]);
}
BINARY_BUILDER(matmul)
BINARY_BUILDER(mse)
BINARY_BUILDER(softmax_xent)

static const double pow_exponents[] = {2, 0.5, -1.5, 3};
/* x^p for a constant p: pow with a constant second input. */
static tg_node *b_pow_const(tg_node *const *in, int p) { return tg_pow(in[0], pow_exponents[p]); }
/* x^b with b an input too (tg_pow_var). */
static tg_node *b_pow(tg_node *const *in, int p) {
    (void)p;
    return tg_pow_var(in[0], in[1]);
}
/* s * x through tg_scale: mul with a constant. */
static tg_node *b_scale(tg_node *const *in, int p) { return tg_scale(in[0], 0.5 * p - 1.25); }

static tg_node *b_sum(tg_node *const *in, int p) {
    return p == ALL_AXES ? tg_sum(in[0]) : tg_sum_axis(in[0], p);
}
static tg_node *b_mean(tg_node *const *in, int p) {
    return p == ALL_AXES ? tg_mean(in[0]) : tg_mean_axis(in[0], p);
}
static tg_node *b_softmax(tg_node *const *in, int p) { return tg_softmax(in[0], p); }
static tg_node *b_log_softmax(tg_node *const *in, int p) { return tg_log_softmax(in[0], p); }

static const struct {
    int ndim;
    int64_t shape[4];
} reshape_targets[] = {{2, {3, 2}}, {1, {6}}, {3, {2, 1, 3}}, {2, {-1, 4}}, {0, {0}}};
static tg_node *b_reshape(tg_node *const *in, int p) {
    return tg_reshape(in[0], reshape_targets[p].ndim, reshape_targets[p].shape);
}

/* One unary op at four shapes: 0-d, 1-D, 2-D, 4-D. */
#define UNARY_CASES(name, D)                                                               \
    {#name, b_##name, 0, 1, {0}, {{0}}, {D}},                                              \
    {#name, b_##name, 0, 1, {1}, {{5}}, {D}},                                              \
    {#name, b_##name, 0, 1, {2}, {{2, 3}}, {D}},                                           \
    {#name, b_##name, 0, 1, {4}, {{2, 1, 3, 2}}, {D}}

/* One binary op on equal shapes and on each broadcasting pattern. */
#define BINARY_CASES(name, b, DA, DB)                                                      \
    {#name, b, 0, 2, {0, 0}, {{0}, {0}}, {DA, DB}},                                        \
    {#name, b, 0, 2, {2, 2}, {{2, 3}, {2, 3}}, {DA, DB}},                                  \
    {#name, b, 0, 2, {2, 1}, {{2, 3}, {3}}, {DA, DB}},                                     \
    {#name, b, 0, 2, {1, 2}, {{3}, {2, 3}}, {DA, DB}},                                     \
    {#name, b, 0, 2, {2, 2}, {{3, 1}, {1, 4}}, {DA, DB}},                                  \
    {#name, b, 0, 2, {0, 2}, {{0}, {2, 3}}, {DA, DB}},                                     \
    {#name, b, 0, 2, {2, 0}, {{2, 3}, {0}}, {DA, DB}},                                     \
    {#name, b, 0, 2, {3, 2}, {{4, 1, 3}, {2, 1}}, {DA, DB}},                               \
    {#name, b, 0, 2, {4, 3}, {{2, 1, 3, 2}, {4, 1, 2}}, {DA, DB}}

/* A reduction or softmax of a 1-D, a 2-D and a 3-D input along each axis
 * (and negative axes). */
#define AXIS_CASES(name)                                                                   \
    {#name, b_##name, 0, 1, {1}, {{5}}, {ANY}},                                            \
    {#name, b_##name, 0, 1, {2}, {{3, 4}}, {ANY}},                                         \
    {#name, b_##name, 1, 1, {2}, {{3, 4}}, {ANY}},                                         \
    {#name, b_##name, -1, 1, {2}, {{1, 4}}, {ANY}},                                        \
    {#name, b_##name, 0, 1, {3}, {{2, 3, 4}}, {ANY}},                                      \
    {#name, b_##name, 1, 1, {3}, {{2, 3, 4}}, {ANY}},                                      \
    {#name, b_##name, -1, 1, {3}, {{2, 3, 4}}, {ANY}},                                     \
    {#name, b_##name, 2, 1, {4}, {{2, 1, 3, 2}}, {ANY}}

/* The op families of issue 11 keep their builders, gradient cases and
 * forward-value tests in tests/cases/FAMILY.h; each defines CASES_FAMILY (a
 * list of table rows, each ending in a comma) and TESTS_FAMILY (a list of
 * cmocka_unit_test entries, each ending in a comma). */
#define TG_TEST_OPS
#include "cases/math.h"
#include "cases/select.h"
#include "cases/reduce.h"
#include "cases/shape.h"
#include "cases/training.h"
#include "cases/lapack.h"

static const gcase cases[] = {
    CASES_MATH
    CASES_SELECT
    CASES_REDUCE
    CASES_SHAPE
    CASES_TRAINING
    CASES_LAPACK
    UNARY_CASES(neg, ANY),
    UNARY_CASES(exp, ANY),
    UNARY_CASES(log, POS),
    UNARY_CASES(sqrt, POS),
    UNARY_CASES(abs, AWAY),
    UNARY_CASES(sin, ANY),
    UNARY_CASES(cos, ANY),
    UNARY_CASES(tanh, ANY),
    UNARY_CASES(sigmoid, ANY),
    {"sigmoid", b_sigmoid, 0, 1, {1}, {{4}}, {{3, 9, 1}}}, /* the tails */
    UNARY_CASES(relu, AWAY),

    BINARY_CASES(add, b_add, ANY, ANY),
    BINARY_CASES(sub, b_sub, ANY, ANY),
    BINARY_CASES(mul, b_mul, ANY, ANY),
    TERNARY_CASES(addcmul, b_addcmul, ANY, ANY, ANY),
    {"unary_tangent", b_unary_tangent, 0, 2, {0, 0}, {{0}, {0}}, {ANY, ANY}},
    {"unary_tangent", b_unary_tangent, 0, 2, {2, 2}, {{2, 3}, {2, 3}}, {ANY, ANY}},
    {"unary_tangent", b_unary_tangent, 1, 2, {1, 1}, {{5}, {5}}, {ANY, ANY}},
    BINARY_CASES(div, b_div, ANY, DIVISOR),
    BINARY_CASES(pow, b_pow, POS, ANY),
    {"mul", b_scale, 0, 1, {2}, {{2, 3}}, {ANY}},
    {"mul", b_scale, 5, 1, {0}, {{0}}, {ANY}},
    {"pow", b_pow_const, 0, 1, {2}, {{2, 3}}, {POS}},
    {"pow", b_pow_const, 1, 1, {1}, {{4}}, {POS}},
    {"pow", b_pow_const, 2, 1, {0}, {{0}}, {POS}},
    {"pow", b_pow_const, 3, 1, {3}, {{2, 1, 3}}, {AWAY}}, /* integer power of any sign */

    {"matmul", b_matmul, 0, 2, {2, 2}, {{2, 3}, {3, 4}}, {ANY, ANY}},
    {"matmul", b_matmul, 0, 2, {2, 2}, {{1, 5}, {5, 1}}, {ANY, ANY}},
    {"matmul", b_matmul, 0, 2, {2, 2}, {{4, 1}, {1, 3}}, {ANY, ANY}},
    {"matmul", b_matmul, 0, 2, {2, 2}, {{5, 4}, {4, 3}}, {ANY, ANY}},
    {"transpose", b_transpose, 0, 1, {2}, {{2, 3}}, {ANY}},
    {"transpose", b_transpose, 0, 1, {2}, {{1, 4}}, {ANY}},
    {"transpose", b_transpose, 0, 1, {2}, {{4, 4}}, {ANY}},
    {"reshape", b_reshape, 0, 1, {2}, {{2, 3}}, {ANY}},
    {"reshape", b_reshape, 1, 1, {2}, {{3, 2}}, {ANY}},
    {"reshape", b_reshape, 2, 1, {1}, {{6}}, {ANY}},
    {"reshape", b_reshape, 3, 1, {3}, {{2, 2, 2}}, {ANY}},
    {"reshape", b_reshape, 4, 1, {2}, {{1, 1}}, {ANY}},

    {"sum", b_sum, ALL_AXES, 1, {0}, {{0}}, {ANY}},
    {"sum", b_sum, ALL_AXES, 1, {2}, {{2, 3}}, {ANY}},
    {"sum", b_sum, ALL_AXES, 1, {4}, {{2, 1, 3, 2}}, {ANY}},
    AXIS_CASES(sum),
    {"mean", b_mean, ALL_AXES, 1, {0}, {{0}}, {ANY}},
    {"mean", b_mean, ALL_AXES, 1, {2}, {{2, 3}}, {ANY}},
    {"mean", b_mean, ALL_AXES, 1, {4}, {{2, 1, 3, 2}}, {ANY}},
    AXIS_CASES(mean),
    AXIS_CASES(softmax),
    AXIS_CASES(log_softmax),

    {"mse", b_mse, 0, 2, {2, 2}, {{4, 3}, {4, 3}}, {ANY, ANY}},
    {"mse", b_mse, 0, 2, {1, 1}, {{5}, {5}}, {ANY, ANY}},
    {"mse", b_mse, 0, 2, {3, 3}, {{2, 3, 2}, {2, 3, 2}}, {ANY, ANY}},
    {"softmax_xent", b_softmax_xent, 0, 2, {2, 2}, {{4, 3}, {4, 3}}, {ANY, PROB}},
    {"softmax_xent", b_softmax_xent, 0, 2, {1, 1}, {{5}, {5}}, {ANY, PROB}},
    {"softmax_xent", b_softmax_xent, 0, 2, {3, 3}, {{2, 2, 3}, {2, 2, 3}}, {ANY, PROB}},
};
#define NCASES (sizeof cases / sizeof *cases)

/* ---------------------------------------------------- gradient checking -- */

#define POINTS 3      /* random points per case */
#define RTOL 1e-6     /* relative tolerance */
#define ATOL 1e-9     /* absolute floor for components near zero */
#define STEP 1e-3     /* h = STEP max(1, |x|) */

/* The output of case c on float64 leaves holding vals (wanting gradients or
 * not), checked to be a node of c's op. */
static tg_node *build_case(tg_tape *t, const gcase *c, double *const vals[MAX_IN], bool leaves_want_grad,
                           tg_node *in[MAX_IN]) {
    for (int k = 0; k < c->nin; k++)
        in[k] = leaves_want_grad ? tg_tensor(t, TG_F64, c->ndim[k], c->shape[k], vals[k])
                                 : tg_input(t, TG_F64, c->ndim[k], c->shape[k], vals[k]);
    tg_node *y = c->build(in, c->p);
    if (tg_status(t)) fail_msg("%s: building the case failed: %s", c->op, tg_status_message(t));
    if (strcmp(tg_node_op_name(y), c->op) != 0)
        fail_msg("case for %s built a %s node", c->op, tg_node_op_name(y));
    return y;
}

/* The float32 kernels come from the same source as the float64 ones; their
 * gradients must agree with the float64 gradients g64 of the same case at
 * the same point (inputs rounded to float) to float32 accuracy. */
#define F32_RTOL 1e-4
static void check_float32(tg_tape *t, const gcase *c, double *const vals[MAX_IN], const double *w,
                          tg_node *const g64[MAX_IN]) {
    tg_tape_reset(t);
    tg_node *in[MAX_IN];
    for (int k = 0; k < c->nin; k++) {
        in[k] = tg_tensor(t, TG_F32, c->ndim[k], c->shape[k], NULL);
        float *v = tg_value(in[k]);
        for (int64_t i = 0; i < tg_numel(in[k]); i++) v[i] = (float)vals[k][i];
    }
    tg_node *y = c->build(in, c->p);
    if (tg_status(t)) fail_msg("%s: float32 case failed: %s", c->op, tg_status_message(t));
    assert_int_equal(tg_node_dtype(y), TG_F32);
    int64_t m = tg_numel(y);
    float *wf = malloc((size_t)m * sizeof(float));
    for (int64_t i = 0; i < m; i++) wf[i] = (float)w[i];
    assert_int_equal(tg_backward_seeded(y, wf), TG_OK);
    free(wf);
    for (int k = 0; k < c->nin; k++) {
        double gmax = 1;
        for (int64_t i = 0; i < tg_numel(in[k]); i++) gmax = fmax(gmax, fabs(tg_grad_at(g64[k], i)));
        for (int64_t i = 0; i < tg_numel(in[k]); i++) {
            double g32 = tg_grad_at(in[k], i), g = tg_grad_at(g64[k], i);
            if (!(fabs(g32 - g) <= F32_RTOL * gmax))
                fail_msg("%s (case %zu): float32 gradient of input %d element %lld is %.9g, "
                         "float64 gives %.17g",
                         c->op, (size_t)(c - cases), k, (long long)i, g32, g);
        }
    }
}

/* L = sum_i w_i y_i of case c at vals, on a scratch tape. */
static double projection(tg_tape *t, const gcase *c, double *const vals[MAX_IN], const double *w) {
    tg_node *in[MAX_IN];
    tg_tape_reset(t);
    tg_node *y = build_case(t, c, vals, false, in);
    const double *v = tg_value(y);
    double s = 0;
    for (int64_t i = 0; i < tg_numel(y); i++) s += w[i] * v[i];
    return s;
}

static struct {
    long checks;
    double worst_rel; /* over components with max(|a|,|n|) >= 1e-4 */
    const char *worst_op;
} stats;

/* A random point of case c's domains: vals[k] (malloc'd) of n[k] values. */
static void draw_point(const gcase *c, double **vals, int64_t *n) {
    for (int k = 0; k < c->nin; k++) {
        n[k] = numel_of(c->ndim[k], c->shape[k]);
        vals[k] = malloc((size_t)n[k] * sizeof(double));
        const domain *d = &c->dom[k];
        for (int64_t i = 0; i < n[k]; i++) {
            double v = d->lo + (d->hi - d->lo) * uniform();
            if (d->signed_away && (next_u64() & 1)) v = -v;
            vals[k][i] = v;
        }
    }
}

/* Checks case c at one random point. */
static void check_point(const gcase *c, tg_tape *t, tg_tape *scratch) {
    double *vals[MAX_IN] = {NULL};
    int64_t n[MAX_IN] = {0};
    draw_point(c, vals, n);
    tg_tape_reset(t);
    tg_node *in[MAX_IN];
    tg_node *y = build_case(t, c, vals, true, in);
    int64_t m = tg_numel(y);
    double *w = malloc((size_t)m * sizeof(double));
    for (int64_t i = 0; i < m; i++) w[i] = 2 * uniform() - 1;
    assert_int_equal(tg_backward_seeded(y, w), TG_OK);
    check_float32(scratch, c, vals, w, in);

    for (int k = 0; k < c->nin; k++) {
        for (int64_t i = 0; i < n[k]; i++) {
            double analytic = tg_grad_at(in[k], i);
            double x = vals[k][i], h = STEP * fmax(1, fabs(x)), f[4];
            const double at[4] = {-2, -1, 1, 2};
            for (int s = 0; s < 4; s++) {
                vals[k][i] = x + at[s] * h;
                f[s] = projection(scratch, c, vals, w);
            }
            vals[k][i] = x;
            double numeric = (f[0] - 8 * f[1] + 8 * f[2] - f[3]) / (12 * h);
            double err = fabs(analytic - numeric), scale = fmax(fabs(analytic), fabs(numeric));
            stats.checks++;
            if (scale >= 1e-4 && err / scale > stats.worst_rel) {
                stats.worst_rel = err / scale;
                stats.worst_op = c->op;
            }
            if (!(err <= RTOL * scale + ATOL))
                fail_msg("%s (case %zu, p=%d): input %d (%d-D) element %lld at x=%.17g: "
                         "analytic %.17g, numeric %.17g",
                         c->op, (size_t)(c - cases), c->p, k, c->ndim[k], (long long)i, x,
                         analytic, numeric);
        }
    }
    free(w);
    for (int k = 0; k < MAX_IN; k++) free(vals[k]);
}

static void test_gradcheck_all_cases(void **state) {
    (void)state;
    tg_tape *t = tg_tape_new(), *scratch = tg_tape_new();
    for (size_t i = 0; i < NCASES; i++)
        for (int p = 0; p < POINTS; p++) check_point(&cases[i], t, scratch);
    tg_tape_free(t);
    tg_tape_free(scratch);
    print_message("gradcheck: %zu cases x %d points, %ld gradient components; worst relative "
                  "error %.2e (%s) among components >= 1e-4\n",
                  NCASES, POINTS, stats.checks, stats.worst_rel,
                  stats.worst_op ? stats.worst_op : "-");
}

/* Second derivatives: every case at one random point through
 * tg_gradgradcheck, on L = sum(w * y) for a fixed random w: tg_grad's vjp
 * rules against central differences of the recorded gradient (float64), and
 * the recorded gradient against the backward kernels. */
typedef struct gg_case {
    const gcase *c;
    const double *w;
} gg_case;

static tg_node *gg_build(tg_tape *t, tg_node *const *in, int n, void *ctx) {
    const gg_case *g = ctx;
    (void)n;
    tg_node *y = g->c->build(in, g->c->p);
    int64_t shape[TG_MAX_DIMS];
    int nd = tg_shape(y, shape);
    return tg_sum(tg_mul(y, tg_input(t, TG_F64, nd, shape, g->w)));
}

static void test_gradgradcheck_all_cases(void **state) {
    (void)state;
    tg_gradcheck_opts o = tg_gradcheck_defaults();
    o.rtol = 1e-6;
    o.atol = 1e-8;
    tg_tape *t = tg_tape_new();
    long pairs = 0;
    for (size_t i = 0; i < NCASES; i++) {
        const gcase *c = &cases[i];
        double *vals[MAX_IN] = {NULL};
        int64_t n[MAX_IN] = {0};
        draw_point(c, vals, n);
        tg_tape_reset(t);
        tg_node *in[MAX_IN];
        int64_t m = tg_numel(build_case(t, c, vals, true, in));
        double *w = malloc((size_t)m * sizeof(double));
        for (int64_t j = 0; j < m; j++) w[j] = 2 * uniform() - 1;
        tg_gradcheck_input inputs[MAX_IN];
        for (int k = 0; k < c->nin; k++) {
            inputs[k] = (tg_gradcheck_input){TG_F64, c->ndim[k], {0}, vals[k], 0};
            memcpy(inputs[k].shape, c->shape[k], sizeof inputs[k].shape);
        }
        gg_case g = {c, w};
        tg_gradcheck_report rep;
        if (tg_gradgradcheck(gg_build, c->nin, inputs, &g, &o, &rep) != TG_OK)
            fail_msg("%s (case %zu): gradgradcheck could not run: %s", c->op, i, rep.message);
        if (!rep.passed)
            fail_msg("%s (case %zu, p=%d): second derivative d/d input %d [%lld] (row %lld): "
                     "tg_grad %.17g, numeric %.17g",
                     c->op, i, c->p, rep.worst.input, (long long)rep.worst.index,
                     (long long)rep.worst.row, rep.worst.analytic, rep.worst.numeric);
        pairs += rep.rows * rep.elements;
        free(w);
        for (int k = 0; k < MAX_IN; k++) free(vals[k]);
    }
    tg_tape_free(t);
    print_message("gradgradcheck: %zu cases, %ld second-derivative pairs\n", NCASES, pairs);
}

/* Every registered op has at least one gradient case, and every case names a
 * registered op. */
static void test_gradcheck_covers_registry(void **state) {
    (void)state;
    int count = tg_op_count();
    assert_true(count > 0);
    for (int i = 0; i < count; i++) {
        const char *name = tg_op_at(i)->name;
        /* A derivative op's own derivative is its base op's second: the
         * gradgradcheck of the base op's cases checks it. */
        if (tg_op_derivative_of(tg_op_at(i), NULL)) continue;
        bool found = false;
        for (size_t j = 0; j < NCASES && !found; j++) found = strcmp(cases[j].op, name) == 0;
        if (!found) fail_msg("registered op \"%s\" has no gradient check case in test_ops.c", name);
    }
    for (size_t j = 0; j < NCASES; j++)
        if (!tg_op_find(cases[j].op)) fail_msg("case for unregistered op \"%s\"", cases[j].op);
}

/* ------------------------------------------------------- forward values -- */

static double sigmoid_ref(double x) { return 1 / (1 + exp(-x)); }
static double relu_ref(double x) { return x > 0 ? x : 0; }
static double neg_ref(double x) { return -x; }

/* The unary ops against the C library at ordinary points, both dtypes. */
static void test_forward_unary(void **state) {
    (void)state;
    static const struct {
        const char *name;
        tg_node *(*op)(tg_node *);
        double (*ref)(double);
        bool positive_only;
    } u[] = {
        {"neg", tg_neg, neg_ref, false},   {"exp", tg_exp, exp, false},
        {"log", tg_log, log, true},        {"sqrt", tg_sqrt, sqrt, true},
        {"abs", tg_abs, fabs, false},      {"sin", tg_sin, sin, false},
        {"cos", tg_cos, cos, false},       {"tanh", tg_tanh, tanh, false},
        {"sigmoid", tg_sigmoid, sigmoid_ref, false}, {"relu", tg_relu, relu_ref, false},
    };
    const double xs[6] = {-2.5, -0.3, 0.7, 1.9, 4.25, 0.01};
    tg_tape *t = tg_tape_new();
    for (size_t k = 0; k < sizeof u / sizeof *u; k++) {
        for (int dt = 0; dt < 2; dt++) {
            double in[6], want[6];
            for (int i = 0; i < 6; i++) {
                in[i] = u[k].positive_only ? fabs(xs[i]) : xs[i];
                /* the float32 op sees the input rounded to float */
                double x = dt == TG_F64 ? in[i] : (double)(float)in[i];
                want[i] = u[k].ref(x);
            }
            tg_node *y = u[k].op(vec(t, (tg_dtype)dt, 6, in));
            assert_string_equal(tg_node_op_name(y), u[k].name);
            assert_int_equal(tg_node_dtype(y), dt);
            expect_values(y, want, 6, dt == TG_F64 ? 1e-15 : 1e-6, u[k].name);
        }
    }
    tg_tape_free(t);
}

/* The points where a naive formula overflows, underflows or divides by 0. */
static void test_forward_extremes(void **state) {
    (void)state;
    tg_tape *t = tg_tape_new();
    for (int dt = 0; dt < 2; dt++) {
        const double big[6] = {800, -800, 700, -1000, 1e308, -1e308};
        tg_node *x = vec(t, (tg_dtype)dt, dt ? 6 : 4, big); /* +-1e308 is no float */
        tg_node *s = tg_sigmoid(x);
        const double ws[6] = {1, 0, 1, 0, 1, 0};
        expect_values(s, ws, dt ? 6 : 4, 0, "sigmoid tails");
        /* And their gradients: 0, not NaN. */
        assert_int_equal(tg_backward(tg_sum(s)), TG_OK);
        for (int i = 0; i < (dt ? 6 : 4); i++) {
            double g = tg_grad_at(x, i);
            if (!(g >= 0 && g < 1e-300)) fail_msg("sigmoid'(%g) = %g", big[i], g);
        }
        const double wt[6] = {1, -1, 1, -1, 1, -1};
        expect_values(tg_tanh(x), wt, dt ? 6 : 4, 0, "tanh tails");
        tg_node *e = tg_exp(vec(t, (tg_dtype)dt, 2, (const double[]){-1000, 1000}));
        expect_values(e, (const double[]){0, INFINITY}, 2, 0, "exp");

        const double lx[3] = {0, -1, 1};
        expect_values(tg_log(vec(t, (tg_dtype)dt, 3, lx)), (const double[]){-INFINITY, NAN, 0}, 3,
                      0, "log(0), log(-1), log(1)");
        expect_values(tg_div(vec(t, (tg_dtype)dt, 2, (const double[]){1, -1}),
                             vec(t, (tg_dtype)dt, 1, (const double[]){0})),
                      (const double[]){INFINITY, -INFINITY}, 2, 0, "1/0");
        expect_values(tg_sqrt(vec(t, (tg_dtype)dt, 2, (const double[]){0, 4})),
                      (const double[]){0, 2}, 2, 0, "sqrt");

        /* softmax of large equal logits, and of logits far apart */
        tg_node *z = vec(t, (tg_dtype)dt, 2, (const double[]){1000, 1000});
        expect_values(tg_softmax(z, 0), (const double[]){0.5, 0.5}, 2, 0, "softmax [1000,1000]");
        expect_values(tg_log_softmax(z, 0), (const double[]){-log(2), -log(2)}, 2, 1e-6,
                      "log_softmax [1000,1000]");
        tg_node *far = vec(t, (tg_dtype)dt, 3, (const double[]){1000, 0, -1000});
        expect_values(tg_softmax(far, -1), (const double[]){1, 0, 0}, 3, 0, "softmax far");
        expect_values(tg_log_softmax(far, -1), (const double[]){0, -1000, -2000}, 3, 0,
                      "log_softmax far");
        tg_node *neg = vec(t, (tg_dtype)dt, 2, (const double[]){-1000, -1001});
        double l2 = log(1 + exp(-1.0));
        expect_values(tg_log_softmax(neg, 0), (const double[]){-l2, -1 - l2}, 2, 1e-6,
                      "log_softmax [-1000,-1001]");
        /* cross-entropy of large logits stays finite */
        tg_node *xe = tg_softmax_xent(mat(t, (tg_dtype)dt, 1, 2, (const double[]){1000, -1000}),
                                      mat(t, (tg_dtype)dt, 1, 2, (const double[]){0, 1}));
        expect_values(xe, (const double[]){2000}, 1, 1e-7, "softmax_xent far");
    }
    assert_int_equal(tg_status(t), TG_OK);
    tg_tape_free(t);
}

/* float32 sigmoid has its own vectorised exponential (ops/unary.c): across
 * [-110, 110] in steps that hit every binade and the subnormal range, it
 * stays within 4 ulp (relative 4 * 2^-24 or 4 ulp of the smallest
 * subnormal) of the float64 value 1/(1+e^-x), and is exactly 0 and 1 in
 * the tails. */
static void test_sigmoid_f32_accuracy(void **state) {
    (void)state;
    enum { N = 44001 };
    tg_tape *t = tg_tape_new();
    int64_t shape[1] = {N};
    float *xs = malloc(N * sizeof *xs);
    assert_non_null(xs);
    for (int i = 0; i < N; i++) xs[i] = (float)(-110.0 + 220.0 * i / (N - 1));
    tg_node *x = tg_input(t, TG_F32, 1, shape, xs), *y = tg_sigmoid(x);
    assert_int_equal(tg_status(t), TG_OK);
    const float *ys = tg_value(y);
    double worst = 0;
    for (int i = 0; i < N; i++) {
        double ref = 1 / (1 + exp(-(double)xs[i]));
        double ulp = fmax(ldexp(fabs(ref), -23), ldexp(1, -149));
        double err = fabs(ys[i] - ref) / ulp;
        if (err > worst) worst = err;
        if (!(err <= 4)) /* NaN fails too */
            fail_msg("sigmoid(%.9g) = %.9g, exact %.9g: %.2f ulp", xs[i], ys[i], ref, err);
    }
    print_message("float32 sigmoid: worst %.2f ulp over %d points\n", worst, N);
    free(xs);
    tg_tape_free(t);
}

static double binop_ref(int op, double a, double b) {
    switch (op) {
    case 0: return a + b;
    case 1: return a - b;
    case 2: return a * b;
    case 3: return a / b;
    default: return pow(a, b); /* 4 and 5: pow */
    }
}

/* tg_pow_var's gradients by hand: d(x^y)/dx = y x^(y-1), d/dy = x^y ln x,
 * on a compact scalar tape, a float64 tensor tape and by broadcasting (the
 * exponent's gradient summed over the rows it was broadcast to); its
 * errors are tg_add's. */
static void test_pow_var(void **state) {
    (void)state;
    tg_tape *t = tg_tape_new();
    tg_node *x = tg_scalar(t, 2), *y = tg_scalar(t, 3), *f = tg_pow_var(x, y);
    tg_backward(f);
    assert_int_equal(tg_status(t), TG_OK);
    assert_true(tg_value_scalar(f) == 8);
    assert_true(tg_grad_scalar(x) == 12);
    assert_true(fabs(tg_grad_scalar(y) - 8 * log(2.0)) <= 1e-15 * 8 * log(2.0));
    /* x [2,2] to the power y [2]: d/dy_j sums x_ij^y_j ln x_ij over i */
    const double xv[4] = {1.5, 2, 0.5, 3}, yv[2] = {2, -1};
    const int64_t s22[2] = {2, 2};
    tg_node *X = tg_tensor(t, TG_F64, 2, s22, xv), *Y = vec(t, TG_F64, 2, yv);
    tg_backward(tg_sum(tg_pow_var(X, Y)));
    assert_int_equal(tg_status(t), TG_OK);
    const double *gx = tg_grad(X), *gy = tg_grad(Y);
    for (int i = 0; i < 2; i++)
        for (int j = 0; j < 2; j++) {
            double a = xv[i * 2 + j], b = yv[j];
            assert_true(fabs(gx[i * 2 + j] - b * pow(a, b - 1)) <= 1e-15 * fabs(b * pow(a, b - 1)));
        }
    double want0 = 1.5 * 1.5 * log(1.5) + 0.5 * 0.5 * log(0.5);
    double want1 = log(2.0) / 2 + log(3.0) / 3;
    assert_true(fabs(gy[0] - want0) <= 1e-15 && fabs(gy[1] - want1) <= 1e-15);
    tg_pow_var(x, NULL);
    assert_int_equal(tg_status(t), TG_ERR_NULL);
    assert_non_null(strstr(tg_status_message(t), "pow: input 1 is NULL"));
    tg_tape_free(t);
}

/* Binary ops with broadcasting, against explicit index loops. */
static void test_forward_binary(void **state) {
    (void)state;
    tg_node *(*ops[5])(tg_node *, tg_node *) = {tg_add, tg_sub, tg_mul, tg_div, tg_pow_var};
    const double a[6] = {1.5, 2, 3, 0.5, 4, 2.5}, b[4] = {2, -0.5, 3, 1.25};
    tg_tape *t = tg_tape_new();
    for (int dt = 0; dt < 2; dt++) {
        double tol = dt ? 1e-15 : 1e-6;
        for (int op = 0; op < 6; op++) {
            /* op 5: pow again, by its name */
            tg_node *(*f)(tg_node *, tg_node *) = op < 5 ? ops[op] : NULL;
#define APPLY(x, y) (f ? f(x, y) : tg_call("pow", x, y))
            /* [2,3] with [3]: b along the rows */
            double want[12];
            for (int i = 0; i < 2; i++)
                for (int j = 0; j < 3; j++) want[i * 3 + j] = binop_ref(op, a[i * 3 + j], b[j]);
            tg_node *y = APPLY(mat(t, (tg_dtype)dt, 2, 3, a), vec(t, (tg_dtype)dt, 3, b));
            expect_values(y, want, 6, tol, "[2,3] op [3]");
            /* [3,1] with [1,4]: an outer product of the op */
            for (int i = 0; i < 3; i++)
                for (int j = 0; j < 4; j++) want[i * 4 + j] = binop_ref(op, a[i], b[j]);
            y = APPLY(mat(t, (tg_dtype)dt, 3, 1, a), mat(t, (tg_dtype)dt, 1, 4, b));
            int64_t shape[4];
            assert_int_equal(tg_shape(y, shape), 2);
            assert_true(shape[0] == 3 && shape[1] == 4);
            expect_values(y, want, 12, tol, "[3,1] op [1,4]");
            /* scalar with vector, scalar first */
            tg_node *s = dt ? tg_const(t, 2.5) : tg_const_as(t, TG_F32, 2.5);
            for (int j = 0; j < 4; j++) want[j] = binop_ref(op, 2.5, b[j]);
            expect_values(APPLY(s, vec(t, (tg_dtype)dt, 4, b)), want, 4, tol, "[] op [4]");
            /* two scalars */
            want[0] = binop_ref(op, 1.5, 2.5);
            y = APPLY(dt ? tg_scalar(t, 1.5) : tg_const_as(t, TG_F32, 1.5), s);
            expect_values(y, want, 1, tol, "[] op []");
#undef APPLY
        }
        /* addcmul: c [2,3] + a [3] * b [2,1], all three broadcast */
        double want[6];
        for (int i = 0; i < 2; i++)
            for (int j = 0; j < 3; j++) want[i * 3 + j] = a[i * 3 + j] + b[j] * b[i];
        expect_values(tg_addcmul(mat(t, (tg_dtype)dt, 2, 3, a), vec(t, (tg_dtype)dt, 3, b),
                                 mat(t, (tg_dtype)dt, 2, 1, b)),
                      want, 6, tol, "addcmul [2,3] [3] [2,1]");
        /* unary_tangent along t = x: sin's derivative times t, and tanh's (1 - tanh^2) */
        for (int i = 0; i < 6; i++) want[i] = cos(a[i]) * a[i];
        tg_node *tx = mat(t, (tg_dtype)dt, 2, 3, a), *tt = mat(t, (tg_dtype)dt, 2, 3, a);
        expect_values(tg_unary_tangent(tg_sin(tx), tt), want, 6, tol, "unary_tangent of sin");
        for (int i = 0; i < 6; i++) want[i] = (1 - tanh(a[i]) * tanh(a[i])) * a[i];
        expect_values(tg_unary_tangent(tg_tanh(tx), tt), want, 6, tol, "unary_tangent of tanh");
        /* tg_pow and tg_scale with their constant */
        const double p[4] = {4, 0.25, 9, 2};
        expect_values(tg_pow(vec(t, (tg_dtype)dt, 4, p), 0.5), (const double[]){2, 0.5, 3, sqrt(2)},
                      4, tol, "pow 0.5");
        expect_values(tg_pow(vec(t, (tg_dtype)dt, 2, (const double[]){-2, 3}), 3),
                      (const double[]){-8, 27}, 2, tol, "pow 3");
        expect_values(tg_scale(vec(t, (tg_dtype)dt, 2, (const double[]){-2, 3}), -1.5),
                      (const double[]){3, -4.5}, 2, tol, "scale");
    }
    assert_int_equal(tg_status(t), TG_OK);
    tg_tape_free(t);
}

/* matmul, transpose, reshape, the reductions and softmax along an axis. */
static void test_forward_linalg_reduce(void **state) {
    (void)state;
    tg_tape *t = tg_tape_new();
    const double a[6] = {1, 2, 3, 4, 5, 6}, b[6] = {7, 8, 9, 10, 11, 12};
    for (int dt = 0; dt < 2; dt++) {
        tg_dtype d = (tg_dtype)dt;
        double tol = dt ? 1e-15 : 1e-6;
        /* [[1,2,3],[4,5,6]] x [[7,8],[9,10],[11,12]] */
        expect_values(tg_matmul(mat(t, d, 2, 3, a), mat(t, d, 3, 2, b)),
                      (const double[]){58, 64, 139, 154}, 4, tol, "matmul");
        expect_values(tg_matmul(mat(t, d, 3, 1, a), mat(t, d, 1, 2, b)),
                      (const double[]){7, 8, 14, 16, 21, 24}, 6, tol, "matmul outer");
        expect_values(tg_transpose(mat(t, d, 2, 3, a)), (const double[]){1, 4, 2, 5, 3, 6}, 6, tol,
                      "transpose");
        tg_node *r = tg_reshape(mat(t, d, 2, 3, a), 2, (const int64_t[]){3, -1});
        int64_t shape[4];
        assert_int_equal(tg_shape(r, shape), 2);
        assert_true(shape[0] == 3 && shape[1] == 2);
        expect_values(r, a, 6, 0, "reshape");

        tg_node *x = mat(t, d, 2, 3, a);
        expect_values(tg_sum(x), (const double[]){21}, 1, tol, "sum");
        assert_int_equal(tg_ndim(tg_sum(x)), 0);
        expect_values(tg_sum_axis(x, 0), (const double[]){5, 7, 9}, 3, tol, "sum axis 0");
        expect_values(tg_sum_axis(x, 1), (const double[]){6, 15}, 2, tol, "sum axis 1");
        expect_values(tg_sum_axis(x, -1), (const double[]){6, 15}, 2, tol, "sum axis -1");
        expect_values(tg_mean(x), (const double[]){3.5}, 1, tol, "mean");
        expect_values(tg_mean_axis(x, 0), (const double[]){2.5, 3.5, 4.5}, 3, tol, "mean axis 0");
        expect_values(tg_mean_axis(x, 1), (const double[]){2, 5}, 2, tol, "mean axis 1");

        /* [2,3,2] summed over its middle axis, by loops */
        double v[12], want[4] = {0};
        for (int i = 0; i < 12; i++) v[i] = 0.5 * i - 2;
        for (int i = 0; i < 2; i++)
            for (int j = 0; j < 3; j++)
                for (int k = 0; k < 2; k++) want[i * 2 + k] += v[(i * 3 + j) * 2 + k];
        tg_node *x3 = tg_reshape(vec(t, d, 12, v), 3, (const int64_t[]){2, 3, 2});
        expect_values(tg_sum_axis(x3, 1), want, 4, tol, "sum [2,3,2] axis 1");

        /* softmax along each axis of [2,3] */
        double sm0[6], sm1[6], lsm1[6];
        for (int j = 0; j < 3; j++) {
            double den = exp(a[j]) + exp(a[3 + j]);
            sm0[j] = exp(a[j]) / den;
            sm0[3 + j] = exp(a[3 + j]) / den;
        }
        for (int i = 0; i < 2; i++) {
            double den = 0;
            for (int j = 0; j < 3; j++) den += exp(a[i * 3 + j]);
            for (int j = 0; j < 3; j++) {
                sm1[i * 3 + j] = exp(a[i * 3 + j]) / den;
                lsm1[i * 3 + j] = a[i * 3 + j] - log(den);
            }
        }
        expect_values(tg_softmax(x, 0), sm0, 6, tol, "softmax axis 0");
        expect_values(tg_softmax(x, 1), sm1, 6, tol, "softmax axis 1");
        expect_values(tg_log_softmax(x, -1), lsm1, 6, dt ? 1e-14 : 1e-6, "log_softmax axis -1");
    }
    assert_int_equal(tg_status(t), TG_OK);
    tg_tape_free(t);
}

/* The costs, by hand. */
static void test_forward_costs(void **state) {
    (void)state;
    tg_tape *t = tg_tape_new();
    for (int dt = 0; dt < 2; dt++) {
        tg_dtype d = (tg_dtype)dt;
        double tol = dt ? 1e-15 : 1e-6;
        /* B = 2 rows: (1 + 0 + 4 + 9) / (2 * 2) */
        expect_values(tg_mse(mat(t, d, 2, 2, (const double[]){1, 2, 3, 4}),
                             mat(t, d, 2, 2, (const double[]){0, 2, 5, 1})),
                      (const double[]){3.5}, 1, tol, "mse [2,2]");
        /* a vector is one row: (1 + 4 + 9) / 2 */
        expect_values(tg_mse(vec(t, d, 3, (const double[]){1, 2, 3}), vec(t, d, 3, (const double[]){0, 0, 0})),
                      (const double[]){7}, 1, tol, "mse [3]");
        /* two rows, one-hot targets */
        double lse0 = 3 + log(1 + exp(-1.0) + exp(-2.0)), lse1 = log(3.0);
        double want = ((lse0 - 3) + (lse1 - 0)) / 2;
        expect_values(tg_softmax_xent(mat(t, d, 2, 3, (const double[]){1, 2, 3, 0, 0, 0}),
                                      mat(t, d, 2, 3, (const double[]){0, 0, 1, 1, 0, 0})),
                      &want, 1, tol, "softmax_xent one-hot");
        /* soft targets: -sum y log softmax(z), one row */
        double z[3] = {0.5, -1, 2}, y[3] = {0.2, 0.3, 0.5}, den = 0, c = 0;
        for (int j = 0; j < 3; j++) den += exp(z[j]);
        for (int j = 0; j < 3; j++) c -= y[j] * log(exp(z[j]) / den);
        expect_values(tg_softmax_xent(vec(t, d, 3, z), vec(t, d, 3, y)), &c, 1, dt ? 1e-14 : 1e-6,
                      "softmax_xent soft");
    }
    assert_int_equal(tg_status(t), TG_OK);
    tg_tape_free(t);
}

/* Runs last: every registered op had its forward values checked above. */
static void test_forward_covers_registry(void **state) {
    (void)state;
    for (int i = 0; i < tg_op_count(); i++) {
        const char *name = tg_op_at(i)->name;
        /* A derivative op's values are its base op's derivatives, which the
         * gradient checks above compare with finite differences through the
         * fused backward kernel, and test_agreement with that kernel bit for
         * bit. */
        if (tg_op_derivative_of(tg_op_at(i), NULL)) continue;
        bool found = false;
        for (int j = 0; j < nforward_checked && !found; j++)
            found = strcmp(forward_checked[j], name) == 0;
        if (!found) fail_msg("registered op \"%s\" has no forward-value check in test_ops.c", name);
    }
}

/* The whole text of a file of the source tree (TG_SOURCE_DIR, else the
 * parent of tests/, where ctest runs), or NULL. The caller frees it. */
static char *source_file(const char *rel) {
    const char *root = getenv("TG_SOURCE_DIR");
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", root ? root : "..", rel);
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    char *text = NULL;
    size_t len = 0, cap = 0, got;
    do {
        if (len + 4096 + 1 > cap) text = realloc(text, cap = 2 * cap + 4096 + 1);
        got = fread(text + len, 1, 4096, f);
        len += got;
    } while (got > 0);
    fclose(f);
    text[len] = '\0';
    return text;
}

/* Every registered op has a row in docs/ops.md (a table line whose first
 * cell names it in backquotes) and a constructor tg_NAME in the header. */
static void test_docs_cover_registry(void **state) {
    (void)state;
    char *doc = source_file("docs/ops.md"), *hdr = source_file("include/tapegrad.h");
    if (!doc || !hdr) fail_msg("cannot read docs/ops.md or include/tapegrad.h from the source tree");
    /* The derivative ops share one section, and have no constructors. */
    if (!strstr(doc, "tg_op_derivative_of")) fail_msg("docs/ops.md does not describe the derivative ops");
    for (int i = 0; i < tg_op_count(); i++) {
        const char *name = tg_op_at(i)->name;
        if (tg_op_derivative_of(tg_op_at(i), NULL)) continue;
        char quoted[80], call[80];
        snprintf(quoted, sizeof quoted, "`%s`", name);
        snprintf(call, sizeof call, "tg_%s(", name);
        bool row = false;
        for (const char *p = strstr(doc, quoted); p && !row; p = strstr(p + 1, quoted)) {
            const char *line = p;
            while (line > doc && line[-1] != '\n') line--;
            row = line[0] == '|' && !memchr(line + 1, '|', (size_t)(p - line - 1));
        }
        if (!row) fail_msg("registered op \"%s\" has no row in docs/ops.md", name);
        if (!strstr(hdr, call)) fail_msg("registered op \"%s\" has no %s...) in tapegrad.h", name, call);
    }
    free(doc);
    free(hdr);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_gradcheck_covers_registry),
        cmocka_unit_test(test_gradcheck_all_cases),
        cmocka_unit_test(test_gradgradcheck_all_cases),
        cmocka_unit_test(test_forward_unary),
        cmocka_unit_test(test_forward_extremes),
        cmocka_unit_test(test_sigmoid_f32_accuracy),
        cmocka_unit_test(test_forward_binary),
        cmocka_unit_test(test_pow_var),
        cmocka_unit_test(test_forward_linalg_reduce),
        cmocka_unit_test(test_forward_costs),
        TESTS_MATH
        TESTS_SELECT
        TESTS_REDUCE
        TESTS_SHAPE
        TESTS_TRAINING
        TESTS_LAPACK
        cmocka_unit_test(test_forward_covers_registry), /* after the forward tests */
        cmocka_unit_test(test_docs_cover_registry),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
