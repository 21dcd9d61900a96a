/*
 * Elementwise binary ops with NumPy broadcasting: add, sub, mul, div, pow.
 *
 * Each op is one line of BINARY(name, y, dy/da, dy/db) written over a type T;
 * this file includes itself once per dtype (T = float, then double) to
 * compile the kernels, and once more, without T, for the op table.
 * Inside the expressions: a, b are the operands, y the stored result.
 */
#ifndef T
#include "internal.h"

#include <tgmath.h>

/* Output dimensions padded on the left to 4, and each input's element
 * strides over them: 0 along a broadcast dimension. */
typedef struct bcast {
    size_t d[4], sa[4], sb[4];
} bcast;

/* Visits every output element o with the offsets ia, ib of its operands. */
#define BCAST_FOR(bc, ...)                                                                 \
    do {                                                                                   \
        size_t o = 0;                                                                      \
        for (size_t i0 = 0; i0 < (bc)->d[0]; i0++)                                         \
            for (size_t i1 = 0; i1 < (bc)->d[1]; i1++)                                     \
                for (size_t i2 = 0; i2 < (bc)->d[2]; i2++) {                               \
                    size_t ia = i0 * (bc)->sa[0] + i1 * (bc)->sa[1] + i2 * (bc)->sa[2];    \
                    size_t ib = i0 * (bc)->sb[0] + i1 * (bc)->sb[1] + i2 * (bc)->sb[2];    \
                    for (size_t i3 = 0; i3 < (bc)->d[3];                                   \
                         i3++, o++, ia += (bc)->sa[3], ib += (bc)->sb[3]) {                \
                        __VA_ARGS__;                                                           \
                    }                                                                      \
                }                                                                          \
    } while (0)

#define BINARY(name, Y, DA, DB)                                                            \
    static inline T S(name##_y)(T a, T b) { return (Y); }                                  \
    static inline T S(name##_da)(T a, T b, T y) { return (void)a, (void)b, (void)y, (DA); } \
    static inline T S(name##_db)(T a, T b, T y) { return (void)a, (void)b, (void)y, (DB); } \
    static void S(name##_fwd)(const bcast *bc, const void *va, const void *vb, void *vy) {  \
        const T *pa = va, *pb = vb;                                                        \
        T *py = vy;                                                                        \
        BCAST_FOR(bc, py[o] = S(name##_y)(pa[ia], pb[ib]));                                \
    }                                                                                      \
    static void S(name##_bwd)(const bcast *bc, const void *va, const void *vb,             \
                              const void *vy, const void *vg, void *vga, void *vgb) {      \
        const T *pa = va, *pb = vb, *py = vy, *pg = vg;                                    \
        T *ga = vga, *gb = vgb;                                                            \
        BCAST_FOR(bc, {                                                                    \
            if (ga) ga[ia] += pg[o] * S(name##_da)(pa[ia], pb[ib], py[o]);                 \
            if (gb) gb[ib] += pg[o] * S(name##_db)(pa[ia], pb[ib], py[o]);                 \
        });                                                                                \
    }

#include "dtypes.h"

static void pad4(const tg_node *n, size_t d[4]) {
    for (int i = 0; i < 4; i++) d[i] = 1;
    for (int i = 0; i < n->ndim; i++) d[4 - n->ndim + i] = (size_t)n->u.shape[i];
}

/* Row-major strides of an input padded to 4 dims, 0 where it is broadcast. */
static void strides(const tg_node *in, size_t s[4]) {
    size_t d[4], step = 1;
    pad4(in, d);
    for (int i = 3; i >= 0; i--) {
        s[i] = d[i] == 1 ? 0 : step;
        step *= d[i];
    }
}

static bool same_shape(const tg_node *a, const tg_node *b) {
    if (a->ndim != b->ndim) return false;
    for (int i = 0; i < a->ndim; i++)
        if (a->u.shape[i] != b->u.shape[i]) return false;
    return true;
}

static void make_bcast(const tg_node *n, bcast *bc) {
    if (same_shape(n->in[0], n->in[1])) { /* one flat run */
        *bc = (bcast){{1, 1, 1, tg__numel(n)}, {0, 0, 0, 1}, {0, 0, 0, 1}};
        return;
    }
    pad4(n, bc->d);
    strides(n->in[0], bc->sa);
    strides(n->in[1], bc->sb);
}

static int broadcast_shape(tg_node *out, char *why, size_t len) {
    const tg_node *a = out->in[0], *b = out->in[1];
    if (same_shape(a, b)) return TG_OK; /* the output already has a's shape */
    int nd = a->ndim > b->ndim ? a->ndim : b->ndim;
    int32_t shape[TG_MAX_DIMS];
    for (int i = 0; i < nd; i++) {
        int ka = a->ndim - nd + i, kb = b->ndim - nd + i;
        int32_t da = ka >= 0 ? a->u.shape[ka] : 1, db = kb >= 0 ? b->u.shape[kb] : 1;
        if (da != db && da != 1 && db != 1) {
            char sa[64], sb[64];
            snprintf(why, len, "%s and %s: dimension %d differs (%d vs %d) and neither is 1",
                     tg__shape_str(a, sa), tg__shape_str(b, sb), i - nd, (int)da, (int)db);
            return TG_ERR_SHAPE;
        }
        shape[i] = da > db ? da : db;
    }
    out->ndim = (uint8_t)nd;
    for (int i = 0; i < nd; i++) out->u.shape[i] = shape[i];
    return TG_OK;
}

/* 0-d operands (scalar tapes) skip the broadcast machinery. */
#define BINARY_OP(name)                                                                    \
    static void name##_forward(tg_node *n) {                                               \
        const tg_node *a = n->in[0], *b = n->in[1];                                        \
        if (n->ndim == 0 && tg__f64(n)) {                                                  \
            *(double *)n->value = name##_y_f64(*(double *)a->value, *(double *)b->value);  \
            return;                                                                        \
        }                                                                                  \
        bcast bc;                                                                          \
        make_bcast(n, &bc);                                                                \
        TG_KERNEL(n, name##_fwd)(&bc, n->in[0]->value, n->in[1]->value, n->value);         \
    }                                                                                      \
    static void name##_backward(tg_node *n) {                                              \
        tg_node *a = n->in[0], *b = n->in[1];                                              \
        if (n->ndim == 0 && tg__f64(n)) {                                                  \
            double va = *(double *)a->value, vb = *(double *)b->value;                     \
            double y = *(double *)n->value, g = *(double *)n->grad;                        \
            if (a->grad) *(double *)a->grad += g * name##_da_f64(va, vb, y);               \
            if (b->grad) *(double *)b->grad += g * name##_db_f64(va, vb, y);               \
            return;                                                                        \
        }                                                                                  \
        bcast bc;                                                                          \
        make_bcast(n, &bc);                                                                \
        TG_KERNEL(n, name##_bwd)(&bc, n->in[0]->value, n->in[1]->value, n->value, n->grad, \
                                 n->in[0]->grad, n->in[1]->grad);                          \
    }
BINARY_OP(add)
BINARY_OP(sub)
BINARY_OP(mul)
BINARY_OP(div)
BINARY_OP(pow)

/* vjp rules (tg_grad): the derivatives above, recorded with ops and summed
 * back to each input's shape where it was broadcast. */
#define VJP(name, GA, GB)                                                                  \
    static void name##_vjp(tg_node *y, tg_node *g, tg_node **gin) {                        \
        tg_node *a = tg_node_input(y, 0), *b = tg_node_input(y, 1);                        \
        if (tg_requires_grad(a)) gin[0] = tg__sum_to((GA), a);                             \
        if (tg_requires_grad(b)) gin[1] = tg__sum_to((GB), b);                             \
    }
VJP(add, g, g)
VJP(sub, g, tg_neg(g))
VJP(mul, tg_mul(g, b), tg_mul(g, a))
VJP(div, tg_div(g, b), tg_neg(tg_mul(g, tg_div(y, b))))
VJP(pow, tg_mul(g, tg_mul(b, tg_call("pow", a, tg_sub(b, tg__const_like(b, 1))))),
    tg_mul(g, tg_mul(y, tg_log(a))))

enum { B_ADD, B_SUB, B_MUL, B_DIV, B_POW, B_COUNT };
const tg_op tg_binary_ops[] = {
    [B_ADD] = {"add", 2, broadcast_shape, add_forward, add_backward, add_vjp},
    [B_SUB] = {"sub", 2, broadcast_shape, sub_forward, sub_backward, sub_vjp},
    [B_MUL] = {"mul", 2, broadcast_shape, mul_forward, mul_backward, mul_vjp},
    [B_DIV] = {"div", 2, broadcast_shape, div_forward, div_backward, div_vjp},
    [B_POW] = {"pow", 2, broadcast_shape, pow_forward, pow_backward, pow_vjp},
};
const int tg_binary_count = B_COUNT;

tg_node *tg_add(tg_node *a, tg_node *b) { return tg__apply(&tg_binary_ops[B_ADD], a, b, 0); }
tg_node *tg_sub(tg_node *a, tg_node *b) { return tg__apply(&tg_binary_ops[B_SUB], a, b, 0); }
tg_node *tg_mul(tg_node *a, tg_node *b) { return tg__apply(&tg_binary_ops[B_MUL], a, b, 0); }
tg_node *tg_div(tg_node *a, tg_node *b) { return tg__apply(&tg_binary_ops[B_DIV], a, b, 0); }

/* A constant operand of x's dtype on x's tape, or NULL when x is NULL. */
static tg_node *const_like(tg_node *x, double v) {
    return x ? tg_const_as(x->tape, tg_node_dtype(x), v) : NULL;
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

#endif
