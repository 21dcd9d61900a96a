/*
 * Elementwise binary ops with NumPy broadcasting: add, sub, mul, div, pow,
 * atan2, hypot, maximum, minimum.
 *
 * Each op is one line of BINARY(name, y, dy/da, dy/db) written over a type T,
 * or of BINARY_G(name, y, ga, gb) when the gradient reaching an input is not
 * g times a local derivative (maximum and minimum route g, and never form
 * g * 0, which is NaN for an infinite g). This file includes itself once per
 * dtype (T = float, then double) to compile the kernels, and once more,
 * without T, for the op table. Inside the expressions: a, b are the operands,
 * y the stored result, g the gradient reaching y. Broadcasting is
 * src/broadcast.h, shared with the comparisons and where/clamp.
 */
#ifndef T
#include "broadcast.h"

#include <tgmath.h>

#define BINARY_G(name, Y, GA, GB)                                                          \
    static inline T S(name##_y)(T a, T b) { return (Y); }                                  \
    static inline T S(name##_ga)(T a, T b, T y, T g) {                                     \
        return (void)a, (void)b, (void)y, (void)g, (GA);                                   \
    }                                                                                      \
    static inline T S(name##_gb)(T a, T b, T y, T g) {                                     \
        return (void)a, (void)b, (void)y, (void)g, (GB);                                   \
    }                                                                                      \
    static void S(name##_fwd)(const tg_bcast *bc, const void *va, const void *vb,          \
                              void *vy) {                                                  \
        const T *pa = va, *pb = vb;                                                        \
        T *py = vy;                                                                        \
        TG_BCAST_FOR(bc, py[o] = S(name##_y)(pa[ia], pb[ib]));                             \
    }                                                                                      \
    static void S(name##_bwd)(const tg_bcast *bc, const void *va, const void *vb,          \
                              const void *vy, const void *vg, void *vga, void *vgb) {      \
        const T *pa = va, *pb = vb, *py = vy, *pg = vg;                                    \
        T *ga = vga, *gb = vgb;                                                            \
        TG_BCAST_FOR(bc, {                                                                 \
            if (ga) ga[ia] += S(name##_ga)(pa[ia], pb[ib], py[o], pg[o]);                  \
            if (gb) gb[ib] += S(name##_gb)(pa[ia], pb[ib], py[o], pg[o]);                  \
        });                                                                                \
    }
#define BINARY(name, Y, DA, DB) BINARY_G(name, Y, g * (DA), g * (DB))

#include "dtypes.h"

/* 0-d operands (scalar tapes) skip the broadcast machinery. */
#define BINARY_OP(name)                                                                    \
    static void name##_forward(tg_node *n) {                                               \
        const tg_node *a = n->in[0], *b = n->in[1];                                        \
        if (n->ndim == 0 && tg__f64(n)) {                                                  \
            *(double *)n->value = name##_y_f64(*(double *)a->value, *(double *)b->value);  \
            return;                                                                        \
        }                                                                                  \
        tg_bcast bc;                                                                       \
        tg__bcast_init(n, &bc);                                                            \
        TG_KERNEL(n, name##_fwd)(&bc, a->value, b->value, n->value);                       \
    }                                                                                      \
    static void name##_backward(tg_node *n) {                                              \
        tg_node *a = n->in[0], *b = n->in[1];                                              \
        if (n->ndim == 0 && tg__f64(n)) {                                                  \
            double va = *(double *)a->value, vb = *(double *)b->value;                     \
            double y = *(double *)n->value, g = *(double *)n->grad;                        \
            if (a->grad) *(double *)a->grad += name##_ga_f64(va, vb, y, g);                \
            if (b->grad) *(double *)b->grad += name##_gb_f64(va, vb, y, g);                \
            return;                                                                        \
        }                                                                                  \
        tg_bcast bc;                                                                       \
        tg__bcast_init(n, &bc);                                                            \
        TG_KERNEL(n, name##_bwd)(&bc, a->value, b->value, n->value, n->grad, a->grad,      \
                                 b->grad);                                                 \
    }
BINARY_OP(add)
BINARY_OP(sub)
BINARY_OP(mul)
BINARY_OP(div)
BINARY_OP(pow)
BINARY_OP(atan2)
BINARY_OP(hypot)
BINARY_OP(maximum)
BINARY_OP(minimum)

/* vjp rules (tg_grad): the derivatives above, recorded with ops and summed
 * back to each input's shape where it was broadcast. */
#define VJP(name, GA, GB)                                                                  \
    static void name##_vjp(tg_node *y, tg_node *g, tg_node **gin) {                        \
        tg_node *a = tg_node_input(y, 0), *b = tg_node_input(y, 1);                        \
        if (tg_requires_grad(a)) gin[0] = tg__sum_to((GA), a);                             \
        if (tg_requires_grad(b)) gin[1] = tg__sum_to((GB), b);                             \
    }
/* g times b / r^2 and -a / r^2, each formed as (u / r) / r with r =
 * hypot(a, b) as atan2's kernel forms it; r is recorded once for both. */
static void atan2_vjp(tg_node *y, tg_node *g, tg_node **gin) {
    tg_node *a = tg_node_input(y, 0), *b = tg_node_input(y, 1);
    if (!tg_requires_grad(a) && !tg_requires_grad(b)) return;
    tg_node *r = tg_hypot(a, b);
    if (tg_requires_grad(a)) gin[0] = tg__sum_to(tg_mul(g, tg_div(tg_div(b, r), r)), a);
    if (tg_requires_grad(b)) gin[1] = tg__sum_to(tg_mul(g, tg_div(tg_div(tg_neg(a), r), r)), b);
}
/* g routed as by maximum and minimum: 0 where the operand loses (selected,
 * not g * 0), half at a tie, else all of it. loses(u, v): u loses to v (lt
 * for maximum, gt for minimum). The tie's share is recorded once for both. */
static void route_vjp(tg_node *y, tg_node *g, tg_node **gin,
                      tg_node *(*loses)(tg_node *, tg_node *)) {
    tg_node *a = tg_node_input(y, 0), *b = tg_node_input(y, 1);
    if (!tg_requires_grad(a) && !tg_requires_grad(b)) return;
    tg_node *zero = tg__const_like(g, 0), *share = tg_where(tg_eq(a, b), tg_scale(g, 0.5), g);
    if (tg_requires_grad(a)) gin[0] = tg__sum_to(tg_where(loses(a, b), zero, share), a);
    if (tg_requires_grad(b)) gin[1] = tg__sum_to(tg_where(loses(b, a), zero, share), b);
}
static void maximum_vjp(tg_node *y, tg_node *g, tg_node **gin) { route_vjp(y, g, gin, tg_lt); }
static void minimum_vjp(tg_node *y, tg_node *g, tg_node **gin) { route_vjp(y, g, gin, tg_gt); }
VJP(add, g, g)
VJP(sub, g, tg_neg(g))
VJP(mul, tg_mul(g, b), tg_mul(g, a))
VJP(div, tg_div(g, b), tg_neg(tg_mul(g, tg_div(y, b))))
VJP(pow, tg_mul(g, tg_mul(b, tg_call("pow", a, tg_sub(b, tg__const_like(b, 1))))),
    tg_mul(g, tg_mul(y, tg_log(a))))
VJP(hypot, tg_mul(g, tg_div(a, y)), tg_mul(g, tg_div(b, y)))

#define ROW(name) {#name, 2, tg__broadcast_shape, name##_forward, name##_backward, name##_vjp}
enum { B_ADD, B_SUB, B_MUL, B_DIV, B_POW, B_ATAN2, B_HYPOT, B_MAXIMUM, B_MINIMUM, B_COUNT };
const tg_op tg_binary_ops[] = {
    [B_ADD] = ROW(add),     [B_SUB] = ROW(sub),     [B_MUL] = ROW(mul),
    [B_DIV] = ROW(div),     [B_POW] = ROW(pow),     [B_ATAN2] = ROW(atan2),
    [B_HYPOT] = ROW(hypot), [B_MAXIMUM] = ROW(maximum), [B_MINIMUM] = ROW(minimum),
};
const int tg_binary_count = B_COUNT;

tg_node *tg_add(tg_node *a, tg_node *b) { return tg__apply(&tg_binary_ops[B_ADD], a, b, 0); }
tg_node *tg_sub(tg_node *a, tg_node *b) { return tg__apply(&tg_binary_ops[B_SUB], a, b, 0); }
tg_node *tg_mul(tg_node *a, tg_node *b) { return tg__apply(&tg_binary_ops[B_MUL], a, b, 0); }
tg_node *tg_div(tg_node *a, tg_node *b) { return tg__apply(&tg_binary_ops[B_DIV], a, b, 0); }
tg_node *tg_pow_var(tg_node *x, tg_node *y) {
    return tg__apply(&tg_binary_ops[B_POW], x, y, 0);
}
tg_node *tg_atan2(tg_node *y, tg_node *x) {
    return tg__apply(&tg_binary_ops[B_ATAN2], y, x, 0);
}
tg_node *tg_hypot(tg_node *x, tg_node *y) {
    return tg__apply(&tg_binary_ops[B_HYPOT], x, y, 0);
}
tg_node *tg_maximum(tg_node *a, tg_node *b) {
    return tg__apply(&tg_binary_ops[B_MAXIMUM], a, b, 0);
}
tg_node *tg_minimum(tg_node *a, tg_node *b) {
    return tg__apply(&tg_binary_ops[B_MINIMUM], a, b, 0);
}

/* The rules of compact scalars (src/scalar.c): add, sub and mul need no
 * stored partials; the others store the local derivatives, which are their
 * kernels' gradient expressions at g = 1 (g * (1 * d) = g * d exactly). */
#define SCALAR_EVAL(name)                                                                  \
    static double name##_scalar(const double *x, double *p) {                              \
        double y = name##_y_f64(x[0], x[1]);                                               \
        p[0] = name##_ga_f64(x[0], x[1], y, 1.0);                                          \
        p[1] = name##_gb_f64(x[0], x[1], y, 1.0);                                          \
        return y;                                                                          \
    }
SCALAR_EVAL(add)
SCALAR_EVAL(sub)
SCALAR_EVAL(mul)
SCALAR_EVAL(div)
SCALAR_EVAL(pow)
SCALAR_EVAL(atan2)
SCALAR_EVAL(hypot)
SCALAR_EVAL(maximum)
SCALAR_EVAL(minimum)
const tg_scalar_rule tg_binary_scalar[] = {
    [B_ADD] = {TG_CLS_ADD, add_scalar},       [B_SUB] = {TG_CLS_SUB, sub_scalar},
    [B_MUL] = {TG_CLS_MUL, mul_scalar},       [B_DIV] = {TG_CLS_P2, div_scalar},
    [B_POW] = {TG_CLS_P2, pow_scalar},        [B_ATAN2] = {TG_CLS_P2, atan2_scalar},
    [B_HYPOT] = {TG_CLS_P2, hypot_scalar},    [B_MAXIMUM] = {TG_CLS_ROUTE, maximum_scalar},
    [B_MINIMUM] = {TG_CLS_ROUTE, minimum_scalar},
};

/* A constant operand of x's dtype on x's tape, or NULL when x is NULL. */
static tg_node *const_like(tg_node *x, double v) {
    return x ? tg__const_like(x, v) : NULL;
}

tg_node *tg_pow(tg_node *x, double p) {
    return tg__apply(&tg_binary_ops[B_POW], x, const_like(x, p), 0);
}
tg_node *tg_scale(tg_node *x, double s) {
    return tg__apply(&tg_binary_ops[B_MUL], x, const_like(x, s), 0);
}

#else /* kernel pass, once per dtype */

BINARY(add, a + b, 1, 1)
BINARY(sub, a - b, 1, -1)
BINARY(mul, a * b, b, a)
BINARY(div, a / b, 1 / b, -y / b)
/* d(a^b)/db = a^b log a is only formed when b wants a gradient. a^0 is the
 * constant 1 and 0^b (b > 0) the constant 0: their derivatives are 0, where
 * the general formulas give 0 * inf = NaN. */
BINARY(pow, pow(a, b), b == 0 ? 0 : b * pow(a, b - 1), a == 0 && b > 0 ? 0 : y * log(a))
/* atan2(a, b) is the angle of the point (x = b, y = a). Its derivatives
 * b / r^2 and -a / r^2 are formed as (b / r) / r with r = hypot(a, b), so
 * that r^2 cannot overflow (or underflow) where r does not. At the origin
 * they are 0/0 = NaN, as in PyTorch. */
static inline T S(over_r2)(T u, T a, T b) {
    T r = hypot(a, b);
    return u / r / r;
}
BINARY(atan2, atan2(a, b), S(over_r2)(b, a, b), S(over_r2)(-a, a, b))
/* d hypot(a, b)/da = a / y: NaN at the origin (0/0), as in PyTorch. */
BINARY(hypot, hypot(a, b), a / y, b / y)
/* PyTorch's maximum and minimum: NaN in either operand gives NaN (unlike C's
 * fmax), equal operands give a (so maximum(-0, 0) = -0). A tie sends each
 * operand half of g; otherwise g goes to the operand that is the result, and
 * with a NaN operand to both (neither compares less). */
BINARY_G(maximum, isnan(b) || a < b ? b : a, a == b ? g / 2 : a < b ? 0 : g,
         a == b ? g / 2 : a > b ? 0 : g)
BINARY_G(minimum, isnan(b) || b < a ? b : a, a == b ? g / 2 : a > b ? 0 : g,
         a == b ? g / 2 : a < b ? 0 : g)

#endif
