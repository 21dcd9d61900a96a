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
#include "rules.h"

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
    }                                                                                      \
    PARTIAL_LOOP(name, x) PARTIAL_LOOP(name, p)
/* The partial itself, for the derivative ops name_dx and name_dp. */
#define PARTIAL_LOOP(name, d)                                                              \
    static void S(name##_d##d##l)(size_t n, size_t ps, const void *vx, const void *vp,     \
                                  void *vo) {                                              \
        const T *px = vx, *pp = vp;                                                        \
        T *po = vo;                                                                        \
        for (size_t i = 0; i < n; i++) po[i] = S(name##_d##d)(px[i], pp[i * ps]);          \
    }

#include "dtypes.h"

/* The parameter has one element or x's shape; the output has x's. */
static int param_shape(tg_node *out, char *why, size_t len) {
    tg_args r;
    tg__args_of(out, &r);
    const tg_arg *x = &r.in[0], *p = &r.in[1];
    if (p->numel == 1 || tg__arg_same_shape(x, p)) return TG_OK;
    char sx[64], sp[64];
    snprintf(why, len, "x %s, parameter %s: the parameter needs one element or x's shape",
             tg__arg_shape_str(x, sx), tg__arg_shape_str(p, sp));
    return TG_ERR_SHAPE;
}

/* Stride of the parameter: 0 when one element serves every x. */
static size_t param_stride(const tg_args *a) { return a->in[1].numel == 1 ? 0 : 1; }

enum { A_LEAKY_RELU, A_ELU, A_LEAKY_RELU_DX, A_LEAKY_RELU_DP, A_ELU_DX, A_ELU_DP, A_END };
extern const tg_op tg_activation_ops[];

/* The op, and its derivative ops name_dx(x, p) and name_dp(x, p): the
 * partials from the same element functions as the fused backward, which
 * tg_grad records times g and tg_jvp times the tangents. */
/* a kernel of the op: over n elements, x, the parameter, then the rest */
#define KERNEL_OF(r, fn, ...)                                                              \
    TG_ARG_KERNEL(&(r)->out, fn)((r)->out.numel, param_stride(r), (r)->in[0].value,        \
                                 (r)->in[1].value, __VA_ARGS__)
#define ACTIVATION_OP(name, DX, DP)                                                        \
    static void name##_forward(tg_args *r) { KERNEL_OF(r, name##_fwd, r->out.value); }     \
    static void name##_backward(tg_args *r) {                                              \
        KERNEL_OF(r, name##_bwd, r->out.grad, r->in[0].grad, r->in[1].grad);               \
    }                                                                                      \
    static void name##_dx_forward(tg_args *r) { KERNEL_OF(r, name##_dxl, r->out.value); }  \
    static void name##_dp_forward(tg_args *r) { KERNEL_OF(r, name##_dpl, r->out.value); }  \
    static void name##_vjp(tg_node *y, tg_node *g, tg_node **gin) {                        \
        partial_vjp(y, g, gin, &tg_activation_ops[DX], &tg_activation_ops[DP]);           \
    }                                                                                      \
    static tg_node *name##_jvp(tg_node *y, tg_node *const *tin) {                          \
        return partial_jvp(y, tin, &tg_activation_ops[DX], &tg_activation_ops[DP]);       \
    }

static void partial_vjp(tg_node *y, tg_node *g, tg_node **gin, const tg_op *dx,
                        const tg_op *dp) {
    tg_node *x = tg__in(y, 0), *p = tg__in(y, 1);
    if (tg_requires_grad(x)) gin[0] = tg_mul(g, tg__apply(dx, x, p, 0));
    if (tg_requires_grad(p)) gin[1] = tg__sum_to(tg_mul(g, tg__apply(dp, x, p, 0)), p);
}
static tg_node *partial_jvp(tg_node *y, tg_node *const *tin, const tg_op *dx, const tg_op *dp) {
    tg_node *x = tg__in(y, 0), *p = tg__in(y, 1);
    tg_node *tx = tin[0] ? tg_mul(tg__apply(dx, x, p, 0), tin[0]) : NULL;
    tg_node *tp = tin[1] ? tg_mul(tg__apply(dp, x, p, 0), tin[1]) : NULL;
    return tx && tp ? tg_add(tx, tp) : tx ? tx : tp;
}
ACTIVATION_OP(leaky_relu, A_LEAKY_RELU_DX, A_LEAKY_RELU_DP)
ACTIVATION_OP(elu, A_ELU_DX, A_ELU_DP)

/* The second derivatives, the vjp rules of the derivative ops, recorded
 * with public ops: each partial is piecewise, constant in the x > 0 branch,
 * so g is selected (tg_where, never g * 0, NaN for an infinite g) into the
 * x <= 0 branch (NaN's too, as the kernels take it):
 *   leaky_relu_dx = [x <= 0] p:           d/dp = [x <= 0]
 *   leaky_relu_dp = [x <= 0] x:           d/dx = [x <= 0]
 *   elu_dx = [x <= 0] p e^x (or 1):       d/dx = [x <= 0] elu_dx, d/dp = [x <= 0] e^x
 *   elu_dp = [x <= 0] expm1(x):           d/dx = [x <= 0] e^x */
static tg_node *below(tg_node *x, tg_node *v) {
    return tg_where(tg_gt(x, tg__const_like(x, 0)), tg__const_like(v, 0), v);
}
static void leaky_relu_dx_vjp(tg_node *d, tg_node *g, tg_node **gin) {
    tg_node *x = tg__in(d, 0), *p = tg__in(d, 1);
    if (tg_requires_grad(p)) gin[1] = tg__sum_to(below(x, g), p);
}
static void leaky_relu_dp_vjp(tg_node *d, tg_node *g, tg_node **gin) {
    tg_node *x = tg__in(d, 0);
    if (tg_requires_grad(x)) gin[0] = below(x, g);
}
static void elu_dx_vjp(tg_node *d, tg_node *g, tg_node **gin) {
    tg_node *x = tg__in(d, 0), *p = tg__in(d, 1);
    if (tg_requires_grad(x)) gin[0] = below(x, tg_mul(g, d));
    if (tg_requires_grad(p)) gin[1] = tg__sum_to(below(x, tg_mul(g, tg_exp(x))), p);
}
static void elu_dp_vjp(tg_node *d, tg_node *g, tg_node **gin) {
    tg_node *x = tg__in(d, 0);
    if (tg_requires_grad(x)) gin[0] = below(x, tg_mul(g, tg_exp(x)));
}

#define ROW(name)                                                                          \
    {#name, 2, param_shape, name##_forward, name##_backward, name##_vjp, name##_jvp}
#define DROW(name) {#name, 2, param_shape, name##_forward, NULL, name##_vjp, NULL}
const tg_op tg_activation_ops[A_END] = {
    [A_LEAKY_RELU] = ROW(leaky_relu),
    [A_ELU] = ROW(elu),
    [A_LEAKY_RELU_DX] = DROW(leaky_relu_dx),
    [A_LEAKY_RELU_DP] = DROW(leaky_relu_dp),
    [A_ELU_DX] = DROW(elu_dx),
    [A_ELU_DP] = DROW(elu_dp),
};
const int tg_activation_count = A_END;

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
