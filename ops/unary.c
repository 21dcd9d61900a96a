/*
 * Elementwise unary ops: neg exp log sqrt abs sin cos tanh sigmoid relu.
 *
 * Each op is one line of UNARY(name, y, dy/dx) written over a type T; the
 * file includes itself once per dtype to compile the kernels (see binary.c).
 * Inside the expressions: x is the input, y the stored output. Derivatives
 * use y where that is cheaper and exact (exp, tanh, sigmoid, sqrt), so the
 * backward pass never recomputes the function.
 */
#ifndef T
#include "internal.h"

#include <string.h>
#include <tgmath.h>

#define UNARY(name, Y, DX)                                                                 \
    static inline T S(name##_y)(T x) { return (Y); }                                       \
    static inline T S(name##_dx)(T x, T y) { return (void)x, (void)y, (DX); }              \
    static void S(name##_fwd)(size_t n, const void *vx, void *vy) {                         \
        const T *px = vx;                                                                  \
        T *py = vy;                                                                        \
        for (size_t i = 0; i < n; i++) py[i] = S(name##_y)(px[i]);                         \
    }                                                                                      \
    static void S(name##_bwd)(size_t n, const void *vx, const void *vy, const void *vg,    \
                              void *vgx) {                                                 \
        const T *px = vx, *py = vy, *pg = vg;                                              \
        T *gx = vgx;                                                                       \
        for (size_t i = 0; i < n; i++) gx[i] += pg[i] * S(name##_dx)(px[i], py[i]);       \
    }

#include "dtypes.h"

/* float64 scalars (scalar tapes) call the element functions directly. */
#define UNARY_OP(name)                                                                     \
    static void name##_forward(tg_node *n) {                                               \
        if (n->ndim == 0 && tg__f64(n)) {                                                  \
            *(double *)n->value = name##_y_f64(*(const double *)n->in[0]->value);          \
            return;                                                                        \
        }                                                                                  \
        TG_KERNEL(n, name##_fwd)(tg__numel(n), n->in[0]->value, n->value);                 \
    }                                                                                      \
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
UNARY_OP(neg)
UNARY_OP(exp)
UNARY_OP(log)
UNARY_OP(sqrt)
UNARY_OP(abs)
UNARY_OP(sin)
UNARY_OP(cos)
UNARY_OP(tanh)
UNARY_OP(sigmoid)
UNARY_OP(relu)

/* vjp rules (tg_grad): the derivatives above, recorded with ops. x is the
 * input node, y the output node, g the gradient arriving at y. */
#define VJP(name, EXPR)                                                                    \
    static void name##_vjp(tg_node *y, tg_node *g, tg_node **gin) {                        \
        tg_node *x = tg_node_input(y, 0);                                                  \
        (void)x;                                                                           \
        gin[0] = (EXPR);                                                                   \
    }
VJP(neg, tg_neg(g))
VJP(exp, tg_mul(g, y))
VJP(log, tg_div(g, x))
VJP(sqrt, tg_div(tg_scale(g, 0.5), y))
VJP(abs, tg_mul(g, tg_call("sign", x, NULL)))
VJP(sin, tg_mul(g, tg_cos(x)))
VJP(cos, tg_neg(tg_mul(g, tg_sin(x))))
VJP(tanh, tg_mul(g, tg_sub(tg__const_like(y, 1), tg_mul(y, y))))
VJP(sigmoid, tg_mul(g, tg_mul(y, tg_sub(tg__const_like(y, 1), y))))
VJP(relu, tg_mul(g, tg_call("gt", x, tg__const_like(x, 0))))

enum { U_NEG, U_EXP, U_LOG, U_SQRT, U_ABS, U_SIN, U_COS, U_TANH, U_SIGMOID, U_RELU, U_COUNT };
const tg_op tg_unary_ops[] = {
    [U_NEG] = {"neg", 1, NULL, neg_forward, neg_backward, neg_vjp},
    [U_EXP] = {"exp", 1, NULL, exp_forward, exp_backward, exp_vjp},
    [U_LOG] = {"log", 1, NULL, log_forward, log_backward, log_vjp},
    [U_SQRT] = {"sqrt", 1, NULL, sqrt_forward, sqrt_backward, sqrt_vjp},
    [U_ABS] = {"abs", 1, NULL, abs_forward, abs_backward, abs_vjp},
    [U_SIN] = {"sin", 1, NULL, sin_forward, sin_backward, sin_vjp},
    [U_COS] = {"cos", 1, NULL, cos_forward, cos_backward, cos_vjp},
    [U_TANH] = {"tanh", 1, NULL, tanh_forward, tanh_backward, tanh_vjp},
    [U_SIGMOID] = {"sigmoid", 1, NULL, sigmoid_forward, sigmoid_backward, sigmoid_vjp},
    [U_RELU] = {"relu", 1, NULL, relu_forward, relu_backward, relu_vjp},
};
const int tg_unary_count = U_COUNT;

tg_node *tg_neg(tg_node *x) { return tg__apply(&tg_unary_ops[U_NEG], x, NULL, 0); }
tg_node *tg_exp(tg_node *x) { return tg__apply(&tg_unary_ops[U_EXP], x, NULL, 0); }
tg_node *tg_log(tg_node *x) { return tg__apply(&tg_unary_ops[U_LOG], x, NULL, 0); }
tg_node *tg_sqrt(tg_node *x) { return tg__apply(&tg_unary_ops[U_SQRT], x, NULL, 0); }
tg_node *tg_abs(tg_node *x) { return tg__apply(&tg_unary_ops[U_ABS], x, NULL, 0); }
tg_node *tg_sin(tg_node *x) { return tg__apply(&tg_unary_ops[U_SIN], x, NULL, 0); }
tg_node *tg_cos(tg_node *x) { return tg__apply(&tg_unary_ops[U_COS], x, NULL, 0); }
tg_node *tg_tanh(tg_node *x) { return tg__apply(&tg_unary_ops[U_TANH], x, NULL, 0); }
tg_node *tg_sigmoid(tg_node *x) { return tg__apply(&tg_unary_ops[U_SIGMOID], x, NULL, 0); }
tg_node *tg_relu(tg_node *x) { return tg__apply(&tg_unary_ops[U_RELU], x, NULL, 0); }

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
static inline float exp_nonpos_f32(float t) {
    t = t > -104.0f ? t : -104.0f;                            /* e^-104 rounds to 0 */
    float kf = (t * 1.44269504f + 12582912.0f) - 12582912.0f; /* round(t / ln 2) */
    float r = (t - kf * 0.693145752f) - kf * 1.42860677e-6f;  /* ln 2 in two parts */
    float p = 1.0f + r * (1.0f + r * (0.5f + r * (1.0f / 6 + r * (1.0f / 24 +
                         r * (1.0f / 120 + r * (1.0f / 720 + r * (1.0f / 5040)))))));
    int32_t k = (int32_t)kf, k1 = k / 2;
    uint32_t b1 = (uint32_t)(k1 + 127) << 23, b2 = (uint32_t)(k - k1 + 127) << 23;
    float s1, s2;
    memcpy(&s1, &b1, sizeof s1);
    memcpy(&s2, &b2, sizeof s2);
    return p * s1 * s2;
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
UNARY(relu, x > 0 ? x : 0, x > 0)

#endif
