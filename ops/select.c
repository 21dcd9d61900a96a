/*
 * Conditionals of three inputs, elementwise with NumPy broadcasting of all
 * three: where(c, a, b) and clamp(x, lo, hi).
 *
 * Each output element is a copy of one input element (or NaN), so each op is
 * two functions over a type T: its value, and pick, which input the element
 * came from (0, 1, 2, or -1 for none). The backward rule adds g to the picked
 * input and +0 to the others (PyTorch's zeros, which the recorded rule
 * selects too). It never multiplies g by a 0/1 mask: g * 0 would turn an
 * infinite g into NaN in the input that was not picked. The file includes
 * itself once per dtype (see binary.c).
 */
#ifndef T
#include "broadcast.h"
#include "rules.h"

#include <math.h>

#define SELECT(name)                                                                       \
    static void S(name##_fwd)(const tg_bcast *bc, const void *const *v, void *vy) {        \
        const T *p0 = v[0], *p1 = v[1], *p2 = v[2];                                        \
        T *py = vy;                                                                        \
        TG_BCAST_FOR(bc, py[o] = S(name##_y)(p0[ia], p1[ib], p2[ic]));                     \
    }                                                                                      \
    static void S(name##_bwd)(const tg_bcast *bc, const void *const *v, const void *vg,    \
                              void *const *vgin) {                                         \
        const T *p0 = v[0], *p1 = v[1], *p2 = v[2], *pg = vg;                              \
        T *const gin[3] = {vgin[0], vgin[1], vgin[2]};                                     \
        TG_BCAST_FOR(bc, {                                                                 \
            const int k = S(name##_pick)(p0[ia], p1[ib], p2[ic]);                          \
            const size_t at[3] = {ia, ib, ic};                                             \
            for (int j = 0; j < 3; j++)                                                    \
                if (gin[j]) gin[j][at[j]] += j == k ? pg[o] : 0;                           \
        });                                                                                \
    }

#include "dtypes.h"

#define SELECT_OP(name)                                                                    \
    static void name##_forward(tg_args *r) {                                               \
        const void *v[3] = {r->in[0].value, r->in[1].value, r->in[2].value};               \
        tg_bcast bc;                                                                       \
        tg__bcast_args(r, &bc);                                                            \
        TG_ARG_KERNEL(&r->out, name##_fwd)(&bc, v, r->out.value);                          \
    }                                                                                      \
    static void name##_backward(tg_args *r) {                                              \
        const void *v[3] = {r->in[0].value, r->in[1].value, r->in[2].value};               \
        void *g[3] = {r->in[0].grad, r->in[1].grad, r->in[2].grad};                        \
        tg_bcast bc;                                                                       \
        tg__bcast_args(r, &bc);                                                            \
        TG_ARG_KERNEL(&r->out, name##_bwd)(&bc, v, r->out.grad, g);                        \
    }
SELECT_OP(where)
SELECT_OP(clamp)

/* vjp rules (tg_grad): g selected, by where itself, into each input's
 * gradient where pick() chooses that input, then summed back to the input's
 * shape where it was broadcast. The conditions are 0/1 comparisons, so the
 * products and sums below are logical and/or. */
static void where_vjp(tg_node *y, tg_node *g, tg_node **gin) {
    tg_node *c = tg__in(y, 0), *a = tg__in(y, 1), *b = tg__in(y, 2);
    tg_node *zero = tg__const_like(g, 0);
    if (tg_requires_grad(a)) gin[1] = tg__sum_to(tg_where(c, g, zero), a);
    if (tg_requires_grad(b)) gin[2] = tg__sum_to(tg_where(c, zero, g), b);
}
static void clamp_vjp(tg_node *y, tg_node *g, tg_node **gin) {
    tg_node *x = tg__in(y, 0), *lo = tg__in(y, 1), *hi = tg__in(y, 2);
    tg_node *zero = tg__const_like(g, 0);
    if (tg_requires_grad(x))
        gin[0] = tg__sum_to(tg_where(tg_mul(tg_le(lo, x), tg_le(x, hi)), g, zero), x);
    if (tg_requires_grad(lo))
        gin[1] = tg__sum_to(tg_where(tg_mul(tg_lt(x, lo), tg_lt(lo, hi)), g, zero), lo);
    if (tg_requires_grad(hi))
        gin[2] = tg__sum_to(tg_where(tg_add(tg_gt(x, hi), tg_lt(hi, lo)), g, zero), hi);
}

/* where is linear in a and b: the tangents selected the same way (0 for one
 * that is zero). clamp's tangent is derived from its rule. */
static tg_node *where_jvp(tg_node *y, tg_node *const *tin) {
    if (!tin[1] && !tin[2]) return NULL;
    tg_node *zero = tg__const_like(y, 0);
    return tg_where(tg__in(y, 0), tin[1] ? tin[1] : zero, tin[2] ? tin[2] : zero);
}

enum { S_WHERE, S_CLAMP, S_COUNT };
const tg_op tg_select_ops[] = {
    [S_WHERE] = {"where", 3, tg__broadcast_shape, where_forward, where_backward, where_vjp,
                 where_jvp},
    [S_CLAMP] = {"clamp", 3, tg__broadcast_shape, clamp_forward, clamp_backward, clamp_vjp,
                 NULL},
};
const int tg_select_count = S_COUNT;

tg_node *tg_where(tg_node *c, tg_node *a, tg_node *b) {
    return tg__apply3(&tg_select_ops[S_WHERE], c, a, b, 0);
}
tg_node *tg_clamp(tg_node *x, tg_node *lo, tg_node *hi) {
    return tg__apply3(&tg_select_ops[S_CLAMP], x, lo, hi, 0);
}
/* The bounds become constant nodes of x's dtype, so the graph, replay and
 * the expression language see the same 3-input clamp. */
tg_node *tg_clamp_const(tg_node *x, double lo, double hi) {
    if (!x) return NULL;
    tg_dtype dt = tg_node_dtype(x);
    tg_tape *t = tg__tape_of(x);
    return tg_clamp(x, tg__shared_const(t, dt, lo, false), tg__shared_const(t, dt, hi, false));
}

#else /* kernel pass, once per dtype */

/* where(c, a, b): a where c is nonzero (NaN counts as nonzero, as in C), else b. */
static inline T S(where_y)(T c, T a, T b) { return c != 0 ? a : b; }
static inline int S(where_pick)(T c, T a, T b) { return (void)a, (void)b, c != 0 ? 1 : 2; }

/* clamp(x, lo, hi) = minimum(maximum(x, lo), hi) with PyTorch's NaN-propagating
 * maximum and minimum (ops/binary.c): NaN in any input gives NaN, and hi wins
 * when lo > hi. */
static inline T S(clamp_y)(T x, T lo, T hi) {
    T m = isnan(lo) || x < lo ? lo : x;
    return isnan(hi) || hi < m ? hi : m;
}
/* PyTorch's gradient rule for clamp with tensor bounds: x where
 * lo <= x <= hi (both bounds included), lo where x < lo < hi, hi where
 * x > hi or hi < lo; none where x < lo == hi, or a comparison with a NaN
 * fails them all. */
static inline int S(clamp_pick)(T x, T lo, T hi) {
    if (lo <= x && x <= hi) return 0;
    if (x < lo && lo < hi) return 1;
    if (x > hi || hi < lo) return 2;
    return -1;
}
SELECT(where)
SELECT(clamp)

#endif
