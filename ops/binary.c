/*
 * Elementwise binary ops with NumPy broadcasting: add, sub, mul, div, pow,
 * atan2, hypot, maximum, minimum; and addcmul, c + a * b in one pass, which
 * the tangents of products are made of.
 *
 * Each op is one line of BINARY(name, y, dy/da, dy/db) written over a type T,
 * or of BINARY_G(name, y, ga, gb) when the gradient reaching an input is not
 * g times a local derivative (maximum and minimum route g, and never form
 * g * 0, which is NaN for an infinite g). This file includes itself once per
 * dtype (T = float, then double) to compile the kernels, and once more,
 * without T, for the op table. Inside the expressions: a, b are the operands,
 * y the stored result, g the gradient reaching y. Broadcasting is
 * src/kernels/broadcast.h, shared with the comparisons and where/clamp.
 */
#ifndef T
#include "broadcast.h"
#include "rules.h"

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
    /* wa, wb: write the contribution (the input's first) instead of adding */           \
    static void S(name##_bwd)(const tg_bcast *bc, const void *va, const void *vb,          \
                              const void *vy, const void *vg, void *vga, void *vgb, bool wa, \
                              bool wb) {                                                   \
        const T *pa = va, *pb = vb, *py = vy, *pg = vg;                                    \
        T *ga = vga, *gb = vgb;                                                            \
        TG_BCAST_FOR(bc, {                                                                 \
            if (ga) {                                                                      \
                T v = S(name##_ga)(pa[ia], pb[ib], py[o], pg[o]);                          \
                ga[ia] = wa ? v : ga[ia] + v;                                              \
            }                                                                              \
            if (gb) {                                                                      \
                T v = S(name##_gb)(pa[ia], pb[ib], py[o], pg[o]);                          \
                gb[ib] = wb ? v : gb[ib] + v;                                              \
            }                                                                              \
        });                                                                                \
    }
/* An op whose derivatives are local partials: g times each, and the
 * partials themselves for its derivative ops name_da, name_db (inputs a, b
 * and y = name(a, b); the same element functions, so the same bits). */
#define PARTIAL_LOOP(name, d)                                                              \
    static void S(name##_d##d##l)(const tg_bcast *bc, const void *va, const void *vb,     \
                                  const void *vy, void *vo) {                              \
        const T *pa = va, *pb = vb, *py = vy;                                              \
        T *po = vo;                                                                        \
        TG_BCAST_FOR(bc, po[o] = S(name##_d##d)(pa[ia], pb[ib], py[ic]));                  \
    }
#define BINARY(name, Y, DA, DB)                                                            \
    static inline T S(name##_da)(T a, T b, T y) { return (void)a, (void)b, (void)y, (DA); } \
    static inline T S(name##_db)(T a, T b, T y) { return (void)a, (void)b, (void)y, (DB); } \
    BINARY_G(name, Y, g * S(name##_da)(a, b, y), g * S(name##_db)(a, b, y))                \
    PARTIAL_LOOP(name, a) PARTIAL_LOOP(name, b)

#include "dtypes.h"

/* The ops in registry order, then the derivative ops of those with
 * partials. */
enum {
    B_ADD, B_SUB, B_MUL, B_DIV, B_POW, B_ATAN2, B_HYPOT, B_MAXIMUM, B_MINIMUM, B_ADDCMUL, B_COUNT,
    B_DIV_DA = B_COUNT, B_DIV_DB, B_POW_DA, B_POW_DB, B_ATAN2_DA, B_ATAN2_DB, B_HYPOT_DA,
    B_HYPOT_DB, B_END
};
extern const tg_op tg_binary_ops[];

/* Which inputs a backward kernel writes: each fresh one, once (a and b may
 * be one node, sharing gradient memory: written by a's part, added to by
 * b's), when every element of the inputs receives one contribution (flat);
 * a broadcast input sums several, so it is readied and added into. */
static void writes(tg_arg *a, tg_arg *b, bool flat, bool *wa, bool *wb) {
    if (!flat) tg__arg_ready(a), tg__arg_ready(b);
    *wa = a->fresh;
    *wb = b->grad != a->grad && b->fresh;
}
/* 0-d operands (scalar tapes) skip the broadcast machinery. */
#define BINARY_OP(name)                                                                    \
    static void name##_forward(tg_args *r) {                                               \
        const tg_arg *a = &r->in[0], *b = &r->in[1];                                       \
        if (tg__arg_scalar64(&r->out)) {                                                   \
            *(double *)r->out.value = name##_y_f64(*(double *)a->value, *(double *)b->value); \
            return;                                                                        \
        }                                                                                  \
        tg_bcast bc;                                                                       \
        tg__bcast_args(r, &bc);                                                            \
        TG_ARG_KERNEL(&r->out, name##_fwd)(&bc, a->value, b->value, r->out.value);         \
    }                                                                                      \
    static void name##_backward(tg_args *r) {                                              \
        tg_arg *a = &r->in[0], *b = &r->in[1];                                             \
        bool wa, wb;                                                                       \
        if (tg__arg_scalar64(&r->out)) {                                                   \
            double va = *(double *)a->value, vb = *(double *)b->value;                     \
            double y = *(double *)r->out.value, g = *(double *)r->out.grad;                \
            writes(a, b, true, &wa, &wb);                                                  \
            if (a->grad) tg__grad_put(a->grad, wa, name##_ga_f64(va, vb, y, g));           \
            if (b->grad) tg__grad_put(b->grad, wb, name##_gb_f64(va, vb, y, g));           \
            return;                                                                        \
        }                                                                                  \
        tg_bcast bc;                                                                       \
        tg__bcast_args(r, &bc);                                                            \
        writes(a, b, bc.flat, &wa, &wb);                                                   \
        TG_ARG_KERNEL(&r->out, name##_bwd)(&bc, a->value, b->value, r->out.value,          \
                                           r->out.grad, a->grad, b->grad, wa, wb);         \
    }
/* A derivative op's forward: the partial at (a, b, y). */
#define PARTIAL_OP(name, d)                                                                \
    static void name##_d##d##_forward(tg_args *r) {                                        \
        const tg_arg *a = &r->in[0], *b = &r->in[1], *y = &r->in[2];                       \
        if (tg__arg_scalar64(&r->out)) {                                                   \
            *(double *)r->out.value = name##_d##d##_f64(                                   \
                *(double *)a->value, *(double *)b->value, *(double *)y->value);            \
            return;                                                                        \
        }                                                                                  \
        tg_bcast bc;                                                                       \
        tg__bcast_args(r, &bc);                                                            \
        TG_ARG_KERNEL(&r->out, name##_d##d##l)(&bc, a->value, b->value, y->value,          \
                                              r->out.value);                               \
    }
/* The rules of an op with partials: g times each partial node (summed back
 * to its input's shape), and the tangent sum of partial times tangent. */
#define PARTIAL_RULES(name, DA, DB)                                                        \
    PARTIAL_OP(name, a)                                                                    \
    PARTIAL_OP(name, b)                                                                    \
    static void name##_vjp(tg_node *y, tg_node *g, tg_node **gin) {                        \
        partial_vjp(y, g, gin, &tg_binary_ops[DA], &tg_binary_ops[DB]);                    \
    }                                                                                      \
    static tg_node *name##_jvp(tg_node *y, tg_node *const *tin) {                          \
        return partial_jvp(y, tin, &tg_binary_ops[DA], &tg_binary_ops[DB]);                \
    }

/* The derivative node d (da or db) at a, b and y = op(a, b); partial_of
 * takes a and b from y's inputs. */
static tg_node *partial(const tg_op *d, tg_node *a, tg_node *b, tg_node *y) {
    return tg__apply3(d, a, b, y, 0);
}
static tg_node *partial_of(const tg_op *d, tg_node *y) {
    return partial(d, tg_node_input(y, 0), tg_node_input(y, 1), y);
}
static void partial_vjp(tg_node *y, tg_node *g, tg_node **gin, const tg_op *da,
                        const tg_op *db) {
    tg_node *a = tg_node_input(y, 0), *b = tg_node_input(y, 1);
    if (tg_requires_grad(a)) gin[0] = tg__sum_to(tg_mul(g, partial_of(da, y)), a);
    if (tg_requires_grad(b)) gin[1] = tg__sum_to(tg_mul(g, partial_of(db, y)), b);
}
/* c + a * b: one addcmul pass where fusing is worth it, else a mul and an
 * add; the same bits either way. */
static tg_node *mul_add(tg_node *c, tg_node *a, tg_node *b) {
    return tg__fusable(c, a, b) ? tg_addcmul(c, a, b) : tg_add(c, tg_mul(a, b));
}
static tg_node *partial_jvp(tg_node *y, tg_node *const *tin, const tg_op *da,
                            const tg_op *db) {
    tg_node *ta = tin[0] ? tg_mul(partial_of(da, y), tin[0]) : NULL;
    if (!tin[1]) return ta;
    return ta ? mul_add(ta, partial_of(db, y), tin[1]) : tg_mul(partial_of(db, y), tin[1]);
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
PARTIAL_RULES(div, B_DIV_DA, B_DIV_DB)
PARTIAL_RULES(pow, B_POW_DA, B_POW_DB)
PARTIAL_RULES(atan2, B_ATAN2_DA, B_ATAN2_DB)
PARTIAL_RULES(hypot, B_HYPOT_DA, B_HYPOT_DB)

/* add, sub and mul are linear in each input: their rules are the ops
 * themselves, in the kernels' order of operands (g * b, not b * g). */
static void add_vjp(tg_node *y, tg_node *g, tg_node **gin) {
    tg_node *a = tg_node_input(y, 0), *b = tg_node_input(y, 1);
    if (tg_requires_grad(a)) gin[0] = tg__sum_to(g, a);
    if (tg_requires_grad(b)) gin[1] = tg__sum_to(g, b);
}
static tg_node *add_jvp(tg_node *y, tg_node *const *tin) {
    (void)y;
    return tin[0] && tin[1] ? tg_add(tin[0], tin[1]) : tin[0] ? tin[0] : tin[1];
}
static void sub_vjp(tg_node *y, tg_node *g, tg_node **gin) {
    tg_node *a = tg_node_input(y, 0), *b = tg_node_input(y, 1);
    if (tg_requires_grad(a)) gin[0] = tg__sum_to(g, a);
    if (tg_requires_grad(b)) gin[1] = tg__sum_to(tg_neg(g), b);
}
static tg_node *sub_jvp(tg_node *y, tg_node *const *tin) {
    (void)y;
    return tin[0] && tin[1] ? tg_sub(tin[0], tin[1]) : tin[0] ? tin[0] : tg_neg(tin[1]);
}
static void mul_vjp(tg_node *y, tg_node *g, tg_node **gin) {
    tg_node *a = tg_node_input(y, 0), *b = tg_node_input(y, 1);
    if (tg_requires_grad(a)) gin[0] = tg__sum_to(tg_mul(g, b), a);
    if (tg_requires_grad(b)) gin[1] = tg__sum_to(tg_mul(g, a), b);
}
static tg_node *mul_jvp(tg_node *y, tg_node *const *tin) {
    tg_node *a = tg_node_input(y, 0), *b = tg_node_input(y, 1);
    tg_node *ta = tin[0] ? tg_mul(tin[0], b) : NULL;
    if (!tin[1]) return ta;
    return ta ? mul_add(ta, tin[1], a) : tg_mul(tin[1], a);
}
/* addcmul is linear in c and in each factor: g, g b and g a, as mul's rule
 * (its tangent is derived from this rule, derive.c). */
static void addcmul_vjp(tg_node *y, tg_node *g, tg_node **gin) {
    tg_node *c = tg_node_input(y, 0), *a = tg_node_input(y, 1), *b = tg_node_input(y, 2);
    if (tg_requires_grad(c)) gin[0] = tg__sum_to(g, c);
    if (tg_requires_grad(a)) gin[1] = tg__sum_to(tg_mul(g, b), a);
    if (tg_requires_grad(b)) gin[2] = tg__sum_to(tg_mul(g, a), b);
}
static void addcmul_forward(tg_args *r) {
    tg_bcast bc;
    tg__bcast_args(r, &bc);
    TG_ARG_KERNEL(&r->out, addcmul_fwd)(&bc, r->in[0].value, r->in[1].value, r->in[2].value,
                                        r->out.value);
}

/* maximum and minimum route g: 0 where the operand loses (selected, not
 * g * 0), half at a tie, else all of it. loses(u, v): u loses to v (lt for
 * maximum, gt for minimum). The tie's share is recorded once for both. Their
 * tangents are derived from this rule (derive.c). */
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

/* The second derivatives: the vjp rule of each derivative node p, from a, b,
 * y and the partial nodes, recorded with public ops (so differentiable
 * again), each summed back to its input's shape. They take a, b and y from
 * p's inputs, never from y's (which a derived backward sees as a leaf). */
typedef struct d2_ctx {
    tg_node *a, *b, *y, *p;
} d2_ctx;
static d2_ctx d2_of(tg_node *p) {
    return (d2_ctx){tg_node_input(p, 0), tg_node_input(p, 1), tg_node_input(p, 2), p};
}
/* Both rules of a derivative node p from its one statement hess, which
 * gives h = (dp/da, dp/db) (NULL: 0): g times them, summed back to each
 * input's shape, and the tangent h . (ta, tb). */
typedef void (*hess_fn)(tg_node *p, tg_node **h);
static void d2_vjp(tg_node *p, tg_node *g, tg_node **gin, hess_fn hess) {
    tg_node *a = tg_node_input(p, 0), *b = tg_node_input(p, 1), *h[2];
    hess(p, h);
    if (h[0] && tg_requires_grad(a)) gin[0] = tg__sum_to(tg_mul(g, h[0]), a);
    if (h[1] && tg_requires_grad(b)) gin[1] = tg__sum_to(tg_mul(g, h[1]), b);
}
static tg_node *d2_jvp(tg_node *p, tg_node *const *tin, hess_fn hess) {
    if (!tin[0] && !tin[1]) return NULL;
    tg_node *h[2];
    hess(p, h);
    tg_node *ta = tin[0] && h[0] ? tg_mul(h[0], tin[0]) : NULL;
    tg_node *tb = tin[1] && h[1] ? tg_mul(h[1], tin[1]) : NULL;
    return ta && tb ? tg_add(ta, tb) : ta ? ta : tb;
}
#define D2_RULES(name)                                                                     \
    static void name##_vjp(tg_node *p, tg_node *g, tg_node **gin) {                        \
        d2_vjp(p, g, gin, name##_hess);                                                    \
    }                                                                                      \
    static tg_node *name##_jvp(tg_node *p, tg_node *const *tin) {                          \
        return d2_jvp(p, tin, name##_hess);                                                \
    }
/* The two entries a hess function gives. */
static void hess_pair(tg_node **h, tg_node *haa, tg_node *hab) {
    h[0] = haa;
    h[1] = hab;
}
/* div_da = 1/b: (0, -1/b^2); div_db = -a/b^2: (-1/b^2, -2 div_db / b) */
static void div_da_hess(tg_node *p, tg_node **h) {
    hess_pair(h, NULL, tg_neg(tg_square(p)));
}
static void div_db_hess(tg_node *p, tg_node **h) {
    d2_ctx c = d2_of(p);
    hess_pair(h, tg_neg(tg_square(tg_reciprocal(c.b))), tg_scale(tg_div(p, c.b), -2));
}
/* pow_da = b a^(b-1): (b pow_da(a, b-1), a^(b-1) + b pow_db(a, b-1)), through
 * the partials at b - 1, so that their edge rules hold at every order;
 * pow_db = y log a: (pow_da log a + y / a, pow_db log a). */
static void pow_da_hess(tg_node *p, tg_node **h) {
    d2_ctx c = d2_of(p);
    tg_node *bm1 = tg_sub(c.b, tg__const_like(c.b, 1));
    tg_node *q = tg__apply(&tg_binary_ops[B_POW], c.a, bm1, 0);
    tg_node *qa = partial(&tg_binary_ops[B_POW_DA], c.a, bm1, q);
    tg_node *qb = partial(&tg_binary_ops[B_POW_DB], c.a, bm1, q);
    hess_pair(h, tg_mul(c.b, qa), tg_add(q, tg_mul(c.b, qb)));
}
static void pow_db_hess(tg_node *p, tg_node **h) {
    d2_ctx c = d2_of(p);
    tg_node *la = tg_log(c.a), *da = partial(&tg_binary_ops[B_POW_DA], c.a, c.b, c.y);
    hess_pair(h, tg_add(tg_mul(da, la), tg_div(c.y, c.a)), tg_mul(p, la));
}
/* atan2: da = b/r^2, db = -a/r^2; H = [2 da db, db^2 - da^2; ., -2 da db] */
static void atan2_da_hess(tg_node *p, tg_node **h) {
    d2_ctx c = d2_of(p);
    tg_node *db = partial(&tg_binary_ops[B_ATAN2_DB], c.a, c.b, c.y);
    hess_pair(h, tg_scale(tg_mul(p, db), 2), tg_sub(tg_square(db), tg_square(p)));
}
static void atan2_db_hess(tg_node *p, tg_node **h) {
    d2_ctx c = d2_of(p);
    tg_node *da = partial(&tg_binary_ops[B_ATAN2_DA], c.a, c.b, c.y);
    hess_pair(h, tg_sub(tg_square(p), tg_square(da)), tg_scale(tg_mul(da, p), -2));
}
/* hypot: da = a/y, db = b/y; H = [db^2 / y, -da db / y; ., da^2 / y] */
static void hypot_da_hess(tg_node *p, tg_node **h) {
    d2_ctx c = d2_of(p);
    tg_node *db = partial(&tg_binary_ops[B_HYPOT_DB], c.a, c.b, c.y);
    hess_pair(h, tg_div(tg_square(db), c.y), tg_neg(tg_div(tg_mul(p, db), c.y)));
}
static void hypot_db_hess(tg_node *p, tg_node **h) {
    d2_ctx c = d2_of(p);
    tg_node *da = partial(&tg_binary_ops[B_HYPOT_DA], c.a, c.b, c.y);
    hess_pair(h, tg_neg(tg_div(tg_mul(da, p), c.y)), tg_div(tg_square(da), c.y));
}

D2_RULES(div_da)
D2_RULES(div_db)
D2_RULES(pow_da)
D2_RULES(pow_db)
D2_RULES(atan2_da)
D2_RULES(atan2_db)
D2_RULES(hypot_da)
D2_RULES(hypot_db)

#define ROW(name)                                                                          \
    {#name, 2, tg__broadcast_shape, name##_forward, name##_backward, name##_vjp,        \
     name##_jvp}
#define ROUTE_ROW(name)                                                                    \
    {#name, 2, tg__broadcast_shape, name##_forward, name##_backward, name##_vjp, NULL}
#define DROW(name)                                                                         \
    {#name, 3, tg__broadcast_shape, name##_forward, NULL, name##_vjp, name##_jvp}
const tg_op tg_binary_ops[B_END] = {
    [B_ADD] = ROW(add),         [B_SUB] = ROW(sub),
    [B_MUL] = ROW(mul),         [B_DIV] = ROW(div),
    [B_POW] = ROW(pow),         [B_ATAN2] = ROW(atan2),
    [B_HYPOT] = ROW(hypot),     [B_MAXIMUM] = ROUTE_ROW(maximum),
    [B_MINIMUM] = ROUTE_ROW(minimum),
    [B_ADDCMUL] = {"addcmul", 3, tg__broadcast_shape, addcmul_forward, NULL, addcmul_vjp, NULL},
    [B_DIV_DA] = DROW(div_da),     [B_DIV_DB] = DROW(div_db),
    [B_POW_DA] = DROW(pow_da),     [B_POW_DB] = DROW(pow_db),
    [B_ATAN2_DA] = DROW(atan2_da), [B_ATAN2_DB] = DROW(atan2_db),
    [B_HYPOT_DA] = DROW(hypot_da), [B_HYPOT_DB] = DROW(hypot_db),
};
const int tg_binary_count = B_END;

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
tg_node *tg_addcmul(tg_node *c, tg_node *a, tg_node *b) {
    return tg__apply3(&tg_binary_ops[B_ADDCMUL], c, a, b, 0);
}
tg_node *tg_maximum(tg_node *a, tg_node *b) {
    return tg__apply(&tg_binary_ops[B_MAXIMUM], a, b, 0);
}
tg_node *tg_minimum(tg_node *a, tg_node *b) {
    return tg__apply(&tg_binary_ops[B_MINIMUM], a, b, 0);
}

/* The rules of compact scalars (src/engine/scalar.c): add, sub and mul need no
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
const tg_scalar_rule tg_binary_scalar[B_END] = {
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

BINARY_G(add, a + b, g, g)
static void S(addcmul_fwd)(const tg_bcast *bc, const void *vc, const void *va, const void *vb,
                           void *vy) {
    const T *pc = vc, *pa = va, *pb = vb;
    T *py = vy;
    TG_BCAST_FOR(bc, py[o] = pc[ia] + pa[ib] * pb[ic]);
}
BINARY_G(sub, a - b, g, g * -1)
BINARY_G(mul, a * b, g * b, g * a)
BINARY(div, a / b, 1 / b, -y / b)
/* a^0 is the constant 1, so d/da is 0 there; d/db = a^b log a is 0 at
 * a = 0 for b >= 0, where the formula gives 0 * -inf = NaN (or -inf at
 * b = 0): PyTorch's values, which mask the same points. */
BINARY(pow, pow(a, b), b == 0 ? 0 : b * pow(a, b - 1), a == 0 && b >= 0 ? 0 : y * log(a))
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
