/*
 * Activations with a real parameter: leaky_relu(x, slope), elu(x, alpha).
 *
 * The parameter p is the op's second input, a node (tg_leaky_relu and
 * tg_elu make it a constant, as tg_pow does), so it shows in the graph, is
 * replayed, and gets a gradient when it wants one. It has one element, or
 * x's shape (one parameter per element); the kernels read it with a stride
 * ps of 0 or 1.
 *
 * Each op is one line ACTIVATION(name, y, dy/dx, dy/dp) over a type T, as in
 * unary.c. At x = 0 both take their x <= 0 branch, which is PyTorch's rule:
 * leaky_relu'(0) = slope, elu'(0) = alpha. NaN takes that branch too and
 * stays NaN (p * NaN).
 */
#ifndef T
#include "broadcast.h"

#include <tgmath.h>

#define ACTIVATION(name, Y, DX, DP)                                                        \
    static inline T S(name##_y)(T x, T p) { return (Y); }                                  \
    static inline T S(name##_dx)(T x, T p) { return (void)p, (DX); }                       \
    static inline T S(name##_dp)(T x, T p) { return (void)p, (DP); }                       \
    static void S(name##_fwd)(size_t n, size_t ps, const void *vx, const void *vp,         \
                              void *vy) {                                                  \
        const T *px = vx, *pp = vp;                                                        \
        T *py = vy;                                                                        \
        for (size_t i = 0; i < n; i++) py[i] = S(name##_y)(px[i], pp[i * ps]);             \
    }                                                                                      \
    static void S(name##_bwd)(size_t n, size_t ps, const void *vx, const void *vp,         \
                              const void *vg, void *vgx, void *vgp) {                      \
        const T *px = vx, *pp = vp, *pg = vg;                                              \
        T *gx = vgx, *gp = vgp;                                                            \
        for (size_t i = 0; i < n; i++) {                                                   \
            if (gx) gx[i] += pg[i] * S(name##_dx)(px[i], pp[i * ps]);                      \
            if (gp) gp[i * ps] += pg[i] * S(name##_dp)(px[i], pp[i * ps]);                 \
        }                                                                                  \
    }

#include "dtypes.h"

/* The parameter has one element or x's shape; the output has x's. */
static int param_shape(tg_node *out, char *why, size_t len) {
    const tg_node *x = out->in[0], *p = out->in[1];
    if (tg__numel(p) == 1 || tg__same_shape(x, p)) return TG_OK;
    char sx[64], sp[64];
    snprintf(why, len, "x %s, parameter %s: the parameter needs one element or x's shape",
             tg__shape_str(x, sx), tg__shape_str(p, sp));
    return TG_ERR_SHAPE;
}

/* Stride of the parameter: 0 when one element serves every x. */
static size_t param_stride(const tg_node *n) { return tg__numel(n->in[1]) == 1 ? 0 : 1; }

#define ACTIVATION_OP(name)                                                                \
    static void name##_forward(tg_node *n) {                                               \
        TG_KERNEL(n, name##_fwd)(tg__numel(n), param_stride(n), n->in[0]->value,           \
                                 n->in[1]->value, n->value);                               \
    }                                                                                      \
    static void name##_backward(tg_node *n) {                                              \
        TG_KERNEL(n, name##_bwd)(tg__numel(n), param_stride(n), n->in[0]->value,           \
                                 n->in[1]->value, n->grad, n->in[0]->grad, n->in[1]->grad); \
    }
ACTIVATION_OP(leaky_relu)
ACTIVATION_OP(elu)

/* vjp rules (tg_grad), with m = [x > 0] (a comparison: no gradient flows
 * through it) and min(x, 0) written -relu(-x), which stays finite where x is
 * infinite (x - relu(x) would be inf - inf):
 *   leaky_relu: x' = g (p + m (1 - p)),               p' = g min(x, 0)
 *   elu:        x' = g (m + (1 - m) p e^min(x, 0)),   p' = g elu(min(x, 0), 1)
 * each summed back to its input's shape where p or x was broadcast. */
static tg_node *min0(tg_node *x) { return tg_neg(tg_relu(tg_neg(x))); }
static tg_node *positive(tg_node *x) { return tg_gt(x, tg__const_like(x, 0)); }
static tg_node *one_minus(tg_node *v) { return tg_sub(tg__const_like(v, 1), v); }

static void leaky_relu_vjp(tg_node *y, tg_node *g, tg_node **gin) {
    tg_node *x = tg__in(y, 0), *p = tg__in(y, 1);
    if (tg_requires_grad(x))
        gin[0] = tg__sum_to(tg_mul(g, tg_add(p, tg_mul(positive(x), one_minus(p)))), x);
    if (tg_requires_grad(p)) gin[1] = tg__sum_to(tg_mul(g, min0(x)), p);
}

static void elu_vjp(tg_node *y, tg_node *g, tg_node **gin) {
    tg_node *x = tg__in(y, 0), *p = tg__in(y, 1);
    if (tg_requires_grad(x)) {
        tg_node *m = positive(x), *neg = tg_mul(p, tg_exp(min0(x)));
        gin[0] = tg__sum_to(tg_mul(g, tg_add(m, tg_mul(one_minus(m), neg))), x);
    }
    if (tg_requires_grad(p)) gin[1] = tg__sum_to(tg_mul(g, tg_elu(min0(x), 1)), p);
}

enum { A_LEAKY_RELU, A_ELU, A_COUNT };
const tg_op tg_activation_ops[] = {
    [A_LEAKY_RELU] = {"leaky_relu", 2, param_shape, leaky_relu_forward, leaky_relu_backward,
                      leaky_relu_vjp},
    [A_ELU] = {"elu", 2, param_shape, elu_forward, elu_backward, elu_vjp},
};
const int tg_activation_count = A_COUNT;

tg_node *tg_leaky_relu(tg_node *x, double slope) {
    return tg__apply(&tg_activation_ops[A_LEAKY_RELU], x, x ? tg__const_like(x, slope) : NULL, 0);
}
tg_node *tg_elu(tg_node *x, double alpha) {
    return tg__apply(&tg_activation_ops[A_ELU], x, x ? tg__const_like(x, alpha) : NULL, 0);
}

#else /* kernel pass, once per dtype */

ACTIVATION(leaky_relu, x > 0 ? x : p * x, x > 0 ? 1 : p, x > 0 ? 0 : x)
/* e^x - 1 by expm1, exact near 0; the derivative from x, not from y + alpha,
 * which cancels for large negative x. */
ACTIVATION(elu, x > 0 ? x : p * expm1(x), x > 0 ? 1 : p * exp(x), x > 0 ? 0 : expm1(x))

#endif
