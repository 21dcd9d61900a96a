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

enum { U_NEG, U_EXP, U_LOG, U_SQRT, U_ABS, U_SIN, U_COS, U_TANH, U_SIGMOID, U_RELU, U_COUNT };
const tg_op tg_unary_ops[] = {
    [U_NEG] = {"neg", 1, NULL, neg_forward, neg_backward},
    [U_EXP] = {"exp", 1, NULL, exp_forward, exp_backward},
    [U_LOG] = {"log", 1, NULL, log_forward, log_backward},
    [U_SQRT] = {"sqrt", 1, NULL, sqrt_forward, sqrt_backward},
    [U_ABS] = {"abs", 1, NULL, abs_forward, abs_backward},
    [U_SIN] = {"sin", 1, NULL, sin_forward, sin_backward},
    [U_COS] = {"cos", 1, NULL, cos_forward, cos_backward},
    [U_TANH] = {"tanh", 1, NULL, tanh_forward, tanh_backward},
    [U_SIGMOID] = {"sigmoid", 1, NULL, sigmoid_forward, sigmoid_backward},
    [U_RELU] = {"relu", 1, NULL, relu_forward, relu_backward},
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
/* exp of a non-positive argument only, so no overflow at any |x|. */
UNARY(sigmoid, x >= 0 ? 1 / (1 + exp(-x)) : exp(x) / (1 + exp(x)), y * (1 - y))
UNARY(relu, x > 0 ? x : 0, x > 0)

#endif
