/*
 * Elementwise ops of one input: neg exp log sqrt abs sin cos tanh sigmoid relu,
 * the rest of math.h (tan asin acos atan sinh cosh asinh acosh atanh erf erfc
 * log1p expm1 log2 log10 exp2 cbrt), square reciprocal, the activations
 * softplus gelu silu, and the step functions sign floor ceil round.
 *
 * Each op is one line of UNARY(name, y, dy/dx) written over a type T; the
 * file includes itself once per dtype to compile the kernels (see binary.c).
 * Inside the expressions: x is the input, y the stored output. Derivatives
 * use y where that is cheaper and exact (exp, tanh, sigmoid, sqrt, tan, exp2,
 * cbrt, reciprocal), so the backward pass never recomputes the function.
 * Each op's element functions (name_y, name_dx, and the helpers of the longer
 * ones) are small separate functions, so a vector math library can replace
 * one without touching the loops. A step function is one line of
 * STEP(name, y): its derivative is 0 everywhere and its backward rule adds
 * nothing, as PyTorch's gives zeros.
 */
#ifndef T
#include "internal.h"

#include <string.h>
#include <tgmath.h>

/* The constants, to more digits than a double holds; (T)C rounds them once. */
#define LN2 0.693147180559945309417232121458176568
#define LOG2E 1.44269504088896340735992468100189214     /* 1 / ln 2 */
#define LOG10E 0.434294481903251827651128918916605082   /* 1 / ln 10 */
#define SQRT1_2 0.707106781186547524400844362104849039  /* 1 / sqrt 2 */
/* 1 / sqrt 2 - (T)SQRT1_2: the part of the constant that T does not hold */
#define SQRT1_2_LO (TG_PASS_F32 ? 1.2101617104478970e-08 : -4.8336466567264567e-17)
#define TWO_SQRTPI 1.12837916709551257389615890312154517 /* 2 / sqrt pi */
#define INV_SQRT2PI 0.398942280401432677939946059934381868 /* 1 / sqrt(2 pi) */

#define UNARY_FWD(name, Y)                                                                 \
    static inline T S(name##_y)(T x) { return (Y); }                                       \
    static void S(name##_fwd)(size_t n, const void *vx, void *vy) {                         \
        const T *px = vx;                                                                  \
        T *py = vy;                                                                        \
        for (size_t i = 0; i < n; i++) py[i] = S(name##_y)(px[i]);                         \
    }
#define UNARY(name, Y, DX)                                                                 \
    UNARY_FWD(name, Y)                                                                     \
    static inline T S(name##_dx)(T x, T y) { return (void)x, (void)y, (DX); }              \
    static void S(name##_bwd)(size_t n, const void *vx, const void *vy, const void *vg,    \
                              void *vgx) {                                                 \
        const T *px = vx, *py = vy, *pg = vg;                                              \
        T *gx = vgx;                                                                       \
        for (size_t i = 0; i < n; i++) gx[i] += pg[i] * S(name##_dx)(px[i], py[i]);       \
    }
#define STEP(name, Y) UNARY_FWD(name, Y)

#include "dtypes.h"

/* The ops, in registry order: X for the differentiable ones, Z for the step
 * functions. The enum, the op table and the constructors are made from it. */
#define UNARY_OPS(X, Z)                                                                    \
    X(neg) X(exp) X(log) X(sqrt) X(abs) X(sin) X(cos) X(tanh) X(sigmoid) X(relu)           \
    X(tan) X(asin) X(acos) X(atan) X(sinh) X(cosh) X(asinh) X(acosh) X(atanh)              \
    X(erf) X(erfc) X(log1p) X(expm1) X(log2) X(log10) X(exp2) X(cbrt)                      \
    X(square) X(reciprocal) X(softplus) X(gelu) X(silu)                                    \
    Z(sign) Z(floor) Z(ceil) Z(round)

/* float64 scalars (scalar tapes) call the element functions directly. */
#define UNARY_FORWARD(name)                                                                \
    static void name##_forward(tg_node *n) {                                               \
        if (n->ndim == 0 && tg__f64(n)) {                                                  \
            *(double *)n->value = name##_y_f64(*(const double *)n->in[0]->value);          \
            return;                                                                        \
        }                                                                                  \
        TG_KERNEL(n, name##_fwd)(tg__numel(n), n->in[0]->value, n->value);                 \
    }
#define UNARY_OP(name)                                                                     \
    UNARY_FORWARD(name)                                                                    \
    static void name##_backward(tg_node *n) {                                              \
        if (n->ndim == 0 && tg__f64(n)) {                                                  \
            *(double *)n->in[0]->grad +=                                                   \
                *(const double *)n->grad *                                                 \
                name##_dx_f64(*(const double *)n->in[0]->value, *(const double *)n->value); \
            return;                                                                        \
        }                                                                                  \
        TG_KERNEL(n, name##_bwd)(tg__numel(n), n->in[0]->value, n->value, n->grad,         \
                                 n->in[0]->grad);                                          \
    }
UNARY_OPS(UNARY_OP, UNARY_FORWARD)

/* vjp rules (tg_grad): the derivatives above, recorded with ops. x is the
 * input node, y the output node, g the gradient arriving at y. */
#define VJP(name, EXPR)                                                                    \
    static void name##_vjp(tg_node *y, tg_node *g, tg_node **gin) {                        \
        tg_node *x = tg_node_input(y, 0);                                                  \
        (void)x;                                                                           \
        gin[0] = (EXPR);                                                                   \
    }
#define ONE(n) tg__const_like(n, 1)
VJP(neg, tg_neg(g))
VJP(exp, tg_mul(g, y))
VJP(log, tg_div(g, x))
VJP(sqrt, tg_div(tg_scale(g, 0.5), y))
VJP(abs, tg_mul(g, tg_sign(x)))
VJP(sin, tg_mul(g, tg_cos(x)))
VJP(cos, tg_neg(tg_mul(g, tg_sin(x))))
VJP(tanh, tg_mul(g, tg_sub(ONE(y), tg_mul(y, y))))
VJP(sigmoid, tg_mul(g, tg_mul(y, tg_sub(ONE(y), y))))
VJP(relu, tg_mul(g, tg_call("gt", x, tg__const_like(x, 0))))
VJP(tan, tg_mul(g, tg_add(ONE(y), tg_square(y))))
VJP(asin, tg_div(g, tg_sqrt(tg_mul(tg_sub(ONE(x), x), tg_add(ONE(x), x)))))
VJP(acos, tg_neg(tg_div(g, tg_sqrt(tg_mul(tg_sub(ONE(x), x), tg_add(ONE(x), x))))))
VJP(atan, tg_div(g, tg_add(ONE(x), tg_square(x))))
VJP(sinh, tg_mul(g, tg_cosh(x)))
VJP(cosh, tg_mul(g, tg_sinh(x)))
VJP(asinh, tg_div(g, tg_sqrt(tg_add(tg_square(x), ONE(x)))))
VJP(acosh, tg_div(g, tg_mul(tg_sqrt(tg_sub(x, ONE(x))), tg_sqrt(tg_add(x, ONE(x))))))
VJP(atanh, tg_div(g, tg_mul(tg_sub(ONE(x), x), tg_add(ONE(x), x))))
VJP(erf, tg_mul(g, tg_scale(tg_exp(tg_neg(tg_square(x))), TWO_SQRTPI)))
VJP(erfc, tg_mul(g, tg_scale(tg_exp(tg_neg(tg_square(x))), -TWO_SQRTPI)))
VJP(log1p, tg_div(g, tg_add(ONE(x), x)))
VJP(expm1, tg_mul(g, tg_exp(x)))
VJP(log2, tg_div(tg_scale(g, LOG2E), x))
VJP(log10, tg_div(tg_scale(g, LOG10E), x))
VJP(exp2, tg_mul(g, tg_scale(y, LN2)))
VJP(cbrt, tg_div(g, tg_scale(tg_square(y), 3)))
VJP(square, tg_mul(g, tg_scale(x, 2)))
VJP(reciprocal, tg_neg(tg_mul(g, tg_square(y))))
VJP(softplus, tg_mul(g, tg_sigmoid(x)))
/* gelu' = Phi(x) + x phi(x) */
VJP(gelu, tg_mul(g, tg_add(tg_scale(tg_erfc(tg_scale(x, -SQRT1_2)), 0.5),
                           tg_mul(x, tg_scale(tg_exp(tg_scale(tg_square(x), -0.5)), INV_SQRT2PI)))))
/* silu' = s (1 + x (1 - s)), s = sigmoid(x) */
static void silu_vjp(tg_node *y, tg_node *g, tg_node **gin) {
    tg_node *x = tg_node_input(y, 0), *s = tg_sigmoid(x);
    gin[0] = tg_mul(g, tg_mul(s, tg_add(ONE(x), tg_mul(x, tg_sub(ONE(x), s)))));
}

/* The step functions: derivative 0, so the backward rule adds nothing (not
 * even an incoming NaN or inf times 0), and the vjp rule records nothing. */
static void no_gradient(tg_node *n) { (void)n; }
static void no_gradient_vjp(tg_node *y, tg_node *g, tg_node **gin) { (void)y, (void)g, (void)gin; }

#define ENUM_ROW(name) U_##name,
enum { UNARY_OPS(ENUM_ROW, ENUM_ROW) U_COUNT };

#define OP_ROW(name) [U_##name] = {#name, 1, NULL, name##_forward, name##_backward, name##_vjp},
#define STEP_ROW(name) [U_##name] = {#name, 1, NULL, name##_forward, no_gradient, no_gradient_vjp},
const tg_op tg_unary_ops[] = {UNARY_OPS(OP_ROW, STEP_ROW)};
const int tg_unary_count = U_COUNT;

#define CONSTRUCTOR(name)                                                                  \
    tg_node *tg_##name(tg_node *x) { return tg__apply(&tg_unary_ops[U_##name], x, NULL, 0); }
UNARY_OPS(CONSTRUCTOR, CONSTRUCTOR)

#else /* kernel pass, once per dtype */

UNARY(neg, -x, -1)
UNARY(exp, exp(x), y)
UNARY(log, log(x), 1 / x)
UNARY(sqrt, sqrt(x), (T)0.5 / y)
UNARY(abs, fabs(x), (x > 0) - (x < 0))
UNARY(sin, sin(x), cos(x))
UNARY(cos, cos(x), -sin(x))
UNARY(tanh, tanh(x), 1 - y * y)
#if TG_PASS_F32
/* e^t for t <= 0 in float, written so that the sigmoid loop vectorises
 * (glibc's expf is a scalar call): t = k ln2 + r with |r| <= ln2/2, e^r by
 * its degree-7 Taylor polynomial (error < 6e-9), and 2^k from exponent bits
 * in two halves, so that results below 2^-126 round once into subnormals.
 * Within 1.22 ulp of the exact value over every float in [-110, 0]. */
static inline float exp_nonpos_f32(float x) {
    float t = x > -104.0f ? x : -104.0f; /* e^-104 rounds to 0; NaN lands here too */
    float kf = (t * 1.44269504f + 12582912.0f) - 12582912.0f; /* round(t / ln 2) */
    float r = (t - kf * 0.693145752f) - kf * 1.42860677e-6f;  /* ln 2 in two parts */
    float p = 1.0f + r * (1.0f + r * (0.5f + r * (1.0f / 6 + r * (1.0f / 24 +
                         r * (1.0f / 120 + r * (1.0f / 720 + r * (1.0f / 5040)))))));
    int32_t k = (int32_t)kf, k1 = k / 2;
    uint32_t b1 = (uint32_t)(k1 + 127) << 23, b2 = (uint32_t)(k - k1 + 127) << 23;
    float s1, s2;
    memcpy(&s1, &b1, sizeof s1);
    memcpy(&s2, &b2, sizeof s2);
    /* The clamp sent NaN to -104 (a NaN kf would make the int conversion
     * undefined); this select gives it back and, being a select, keeps the
     * loop vectorised. */
    return x == x ? p * s1 * s2 : x;
}
#else
static inline double exp_nonpos_f64(double t) { return exp(t); }
#endif

/* e^-|x| never overflows, whatever |x|; both quotients are formed and one
 * selected, which keeps the loop free of branches. */
static inline T S(sigmoid_of)(T x) {
    T e = S(exp_nonpos)(-fabs(x));
    T pos = 1 / (1 + e), neg = e / (1 + e);
    return x >= 0 ? pos : neg;
}
UNARY(sigmoid, S(sigmoid_of)(x), y * (1 - y))
/* NaN fails x < 0 and passes through, as in PyTorch (relu(-0) = -0 too);
 * relu'(0) = 0, and relu'(NaN) = 1 as PyTorch's rule (y <= 0 ? 0 : 1). */
UNARY(relu, x < 0 ? 0 : x, !(x <= 0))

/* Trigonometric and hyperbolic functions. The inverse ones take (1 - x)(1 + x)
 * rather than 1 - x^2, exact near |x| = 1 where the derivative is largest;
 * sqrt(x - 1) sqrt(x + 1) and hypot(x, 1) never overflow for huge x. At the
 * ends of the domain the derivative is infinite, as PyTorch gives:
 * asin'(+-1) = +inf, acos'(+-1) = -inf, acosh'(1) = +inf, atanh'(+-1) = +inf. */
UNARY(tan, tan(x), 1 + y * y)
UNARY(asin, asin(x), 1 / sqrt((1 - x) * (1 + x)))
UNARY(acos, acos(x), -1 / sqrt((1 - x) * (1 + x)))
UNARY(atan, atan(x), 1 / (1 + x * x))
UNARY(sinh, sinh(x), cosh(x))
UNARY(cosh, cosh(x), sinh(x))
UNARY(asinh, asinh(x), 1 / hypot(x, 1))
UNARY(acosh, acosh(x), 1 / (sqrt(x - 1) * sqrt(x + 1)))
UNARY(atanh, atanh(x), 1 / ((1 - x) * (1 + x)))

/* e^(-k x^2) for k = 1 or 1/2, to a few ulps where exp(-x * x) would carry the
 * rounding of x * x, amplified x^2 times (256 ulps at x = 25): x^2 = h + l
 * exactly (fma), and e^(-k l) = 1 - k l to T's precision. Where e^(-k h)
 * is 0 (also at x = +-inf, where l is NaN) the result is that 0. */
static inline T S(exp_neg_sq)(T x, T k) {
    T h = x * x, l = fma(x, x, -h), e = exp(-k * h);
    return e != 0 ? e - e * (k * l) : e;
}
UNARY(erf, erf(x), (T)TWO_SQRTPI * S(exp_neg_sq)(x, 1))
UNARY(erfc, erfc(x), -(T)TWO_SQRTPI * S(exp_neg_sq)(x, 1))
UNARY(log1p, log1p(x), 1 / (1 + x))
/* Not y + 1: for x < 0 that cancels (at x = -30 it loses 4 digits of e^x in
 * float64, all of them in float32 below x = -17). */
UNARY(expm1, expm1(x), exp(x))
UNARY(log2, log2(x), (T)LOG2E / x)
UNARY(log10, log10(x), (T)LOG10E / x)
UNARY(exp2, exp2(x), y * (T)LN2)
UNARY(cbrt, cbrt(x), 1 / (3 * y * y)) /* cbrt'(0) = +inf, from either side */
UNARY(square, x * x, 2 * x)
UNARY(reciprocal, 1 / x, -y * y)

/* log(1 + e^x) = max(x, 0) + log1p(e^-|x|): no exponential of a positive
 * argument, and no 1 + tiny rounded away for x << 0. */
static inline T S(softplus_of)(T x) { return (x > 0 ? x : 0) + log1p(exp(-fabs(x))); }
UNARY(softplus, S(softplus_of)(x), S(sigmoid_of)(x))

/* 2 Phi(x) = erfc(-x / sqrt 2), Phi the standard normal CDF, with no
 * cancellation where 1 + erf(x / sqrt 2) would have it (x << 0). The
 * argument is rounded: -x / sqrt 2 = z + lo (lo from an fma and the
 * constant's second part), and erfc's relative slope near z is about 2z, so
 * erfc(z) alone would be off by some x^2 ulps (400 at x = -30). First order
 * puts it right: erfc(z + lo) = erfc(z) - (2/sqrt pi) e^(-z^2) lo, where
 * e^(-z^2) = g = e^(-x^2/2) (needed to a few digits only; 0 at +-inf, where
 * lo is NaN). */
static inline T S(two_cdf)(T x, T g) {
    T z = x * -(T)SQRT1_2, lo = fma(x, -(T)SQRT1_2, -z) - x * (T)SQRT1_2_LO;
    T c = erfc(z);
    return g != 0 ? c - (T)TWO_SQRTPI * g * lo : c;
}
/* gelu(x) = x Phi(x); for x << 0 Phi underflows and the value is the limit
 * -0 (x = -inf included, where x * 0 would be NaN). */
static inline T S(gelu_of)(T x) {
    T c = S(two_cdf)(x, exp(x * x * (T)-0.5)); /* g, roughly */
    return c != 0 ? x * (T)0.5 * c : -(T)0; /* x / 2 first: 2x may overflow */
}
/* gelu'(x) = Phi(x) + x phi(x), phi(x) = g / sqrt(2 pi) the normal density;
 * x phi(x) -> 0 at +-inf (where x * 0 would be NaN). */
static inline T S(gelu_slope)(T x) {
    T g = S(exp_neg_sq)(x, (T)0.5);
    return S(two_cdf)(x, g) * (T)0.5 + (g != 0 ? x * g * (T)INV_SQRT2PI : 0);
}
UNARY(gelu, S(gelu_of)(x), S(gelu_slope)(x))

/* silu(x) = x sigmoid(x); the limit -0 at x = -inf, where x * 0 would be NaN. */
static inline T S(silu_of)(T x) {
    T s = S(sigmoid_of)(x);
    return s != 0 ? x * s : -(T)0;
}
/* silu'(x) = s + x s (1 - s) with s = sigmoid(x), and s (1 - s) = e / (1 + e)^2
 * for e = e^-|x| (either sign), which has no 1 - s cancellation; x s (1 - s)
 * -> 0 at +-inf. */
static inline T S(silu_slope)(T x) {
    T e = S(exp_nonpos)(-fabs(x)), q = 1 / (1 + e);
    T s = x >= 0 ? q : e * q, d = e * q * q;
    return s + (d != 0 ? x * d : 0);
}
UNARY(silu, S(silu_of)(x), S(silu_slope)(x))

/* sign(+-0) = +0 (x + 0) as PyTorch; sign(NaN) = NaN (PyTorch says 0, but NaN
 * never vanishes here). round is rint: halves to even, as PyTorch. */
STEP(sign, x > 0 ? 1 : x < 0 ? -1 : x + 0)
STEP(floor, floor(x))
STEP(ceil, ceil(x))
STEP(round, rint(x))

#endif
