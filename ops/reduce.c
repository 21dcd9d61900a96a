/*
 * Reductions, of all elements or along one axis: sum mean max min logsumexp
 * prod norm var, and argmax (an index, with no derivative).
 *
 * A reduction views its input as [outer, len, inner] around the reduced axis
 * (len = all elements for a full reduction); the output is [outer, inner].
 * Each output element reduces one *run*: len elements at stride inner. Apart
 * from sum and mean (whole-tensor loops), an op is two run kernels over T, a
 * forward one returning the run's value and a backward one adding the run's
 * gradient, which RUN_OP wraps into the op's forward and backward.
 */
#ifndef T
#include "rules.h"

#include <tgmath.h>

/* The product of a run's nonzero elements as m 2^e, renormalised after every
 * factor (frexp), so that no partial product overflows or underflows when
 * the whole one would not: [1e200, 1e200, 1e-200] is 1e200, and the
 * gradient of [1e-200, 1e-200] is not flushed to 0. Zeros are counted
 * instead of multiplied in, which is what the gradient needs. */
typedef struct scaled_prod {
    double m;         /* in [0.5, 1) in magnitude; inf or NaN after such an element */
    int64_t e;        /* |e| <= 1100 len, far inside int64 */
    size_t zeros;     /* number of zero elements */
    double zero_sign; /* the product of the zeros' signs, +-1 */
} scaled_prod;

/* m 2^e, with e clamped into int (beyond +-4000 the result is 0 or inf anyway). */
static double scaled_value(double m, int64_t e) {
    return ldexp(m, (int)(e < -4000 ? -4000 : e > 4000 ? 4000 : e));
}

static void scaled_mul(scaled_prod *p, double v) {
    if (v == 0) {
        p->zeros++;
        p->zero_sign *= copysign(1.0, v);
        return;
    }
    int ev = 0, ep = 0; /* frexp leaves them unspecified for inf and NaN, which m carries */
    double mv = frexp(v, &ev);
    p->m = frexp(p->m * mv, &ep);
    p->e += ev + ep;
}

/* The product of the run, as exact multiplication rounded once would give
 * it: a signed 0 when a zero is present and the rest is finite (0 x inf and
 * anything x NaN are NaN). */
static double scaled_prod_value(scaled_prod p) {
    if (!p.zeros) return scaled_value(p.m, p.e);
    return isfinite(p.m) ? copysign(0.0, p.zero_sign * p.m) : 0.0 * p.m;
}

/* The ops made of run kernels. RUN_KERNELS wraps each op's run kernels into
 * whole-node kernels over T (runs_fwd and runs_bwd), so that RUN_OP
 * dispatches on the dtype through TG_KERNEL. */
#define RUN_OPS(X) X(max) X(min) X(logsumexp) X(prod) X(norm) X(var)
#define RUN_KERNELS(name)                                                                  \
    static void S(name##_runs_fwd)(tg_axis_view v, const void *vx, void *vy) {             \
        S(runs_fwd)(v, S(name##_fwd), vx, vy);                                             \
    }                                                                                      \
    static void S(name##_runs_bwd)(tg_axis_view v, const void *vx, const void *vy,         \
                                   const void *vg, void *vgx) {                            \
        S(runs_bwd)(v, S(name##_bwd), vx, vy, vg, vgx);                                    \
    }
/* The ops whose backward term is g times a partial: they have derivative
 * ops name_dx (max and min split g among ties, g / ties, instead). */
#define PARTIAL_OPS(X) X(logsumexp) X(prod) X(norm) X(var)
#define PARTIAL_KERNEL(name)                                                               \
    static void S(name##_runs_partial)(tg_axis_view v, const void *vx, const void *vy,     \
                                       void *vd) {                                         \
        S(runs_partial)(v, S(name##_bwd), vx, vy, vd);                                     \
    }

#include "dtypes.h"

static int reduce_shape(tg_node *out, char *why, size_t len) {
    if (out->aux == TG_AXIS_ALL) {
        out->ndim = 0;
        return TG_OK;
    }
    /* tg_call() and tg_apply() reach here with axis 0 unchecked. */
    if (out->aux < 0 || out->aux >= out->ndim) {
        char s[64];
        snprintf(why, len, "axis %d is out of range for %s", out->aux,
                 tg__shape_str(tg__in(out, 0), s));
        return TG_ERR_ARG;
    }
    for (int i = out->aux; i + 1 < out->ndim; i++) out->u.shape[i] = out->u.shape[i + 1];
    out->ndim--;
    return TG_OK;
}

static void reduce_forward(tg_args *r, bool mean) {
    tg_axis_view v = tg__arg_axis(&r->in[0], r->param);
    TG_ARG_KERNEL(&r->out, sum_fwd)(v, mean ? 1.0 / (double)v.len : 1.0, r->in[0].value,
                                    r->out.value);
}

/* Each element of x receives one contribution: written when it is the first
 * (fresh). */
static void reduce_backward(tg_args *r, bool mean) {
    const tg_arg *x = &r->in[0];
    tg_axis_view v = tg__arg_axis(x, r->param);
    if (x->grad)
        TG_ARG_KERNEL(&r->out, sum_bwd)(v, mean ? 1.0 / (double)v.len : 1.0, r->out.grad,
                                        x->grad, x->fresh);
}

static void sum_forward(tg_args *r) { reduce_forward(r, false); }
static void sum_backward(tg_args *r) { reduce_backward(r, false); }
static void mean_forward(tg_args *r) { reduce_forward(r, true); }
static void mean_backward(tg_args *r) { reduce_backward(r, true); }

/* name_fwd(x, len, stride) -> the run's value; name_bwd(x, len, stride, y, g,
 * gx) adds the run's gradient, given the run's stored value y and its
 * adjoint g. */
#define RUN_OP(name)                                                                       \
    static void name##_forward(tg_args *r) {                                               \
        TG_ARG_KERNEL(&r->out, name##_runs_fwd)(tg__arg_axis(&r->in[0], r->param),         \
                                                r->in[0].value, r->out.value);             \
    }                                                                                      \
    static void name##_backward(tg_args *r) {                                              \
        tg_arg *x = &r->in[0];                                                             \
        if (!x->grad) return;                                                              \
        tg__arg_ready(x);                                                                  \
        TG_ARG_KERNEL(&r->out, name##_runs_bwd)(tg__arg_axis(x, r->param), x->value,       \
                                                r->out.value, r->out.grad, x->grad);       \
    }
RUN_OPS(RUN_OP)

/* vjp rules (tg_grad): the gradient of the reduced node spread back over
 * the reduced elements. */
static void sum_vjp(tg_node *y, tg_node *g, tg_node **gin) {
    tg_node *x = tg__in(y, 0);
    gin[0] = tg__expand_like(tg__unreduce(g, x, y->aux), x);
}
static void mean_vjp(tg_node *y, tg_node *g, tg_node **gin) {
    tg_node *x = tg__in(y, 0);
    double n = (double)tg_numel(x) / (double)tg__numel(y);
    gin[0] = tg__expand_like(tg__unreduce(tg_scale(g, 1 / n), x, y->aux), x);
}
/* v reduced along axis (TG_AXIS_ALL: all), by sum or prod. The rules take
 * the axis from their own node's field, never from y's inputs (a derived
 * backward sees y as a leaf). */
static tg_node *sum_along(tg_node *v, int axis) {
    return axis == TG_AXIS_ALL ? tg_sum(v) : tg_sum_axis(v, axis);
}
static tg_node *prod_along(tg_node *v, int axis) {
    return axis == TG_AXIS_ALL ? tg_prod(v) : tg_prod_axis(v, axis);
}
/* v, reduced as y is, spread back over the shape of y's input. */
static tg_node *spread(tg_node *v, tg_node *y) {
    return tg__unreduce(v, tg__in(y, 0), y->aux);
}

/* max, min: g split evenly among the elements equal to y (the kernels' tie
 * rule); NaN everywhere in a run whose extremum is NaN, as the kernels. */
static void extremum_vjp(tg_node *y, tg_node *g, tg_node **gin) {
    tg_node *x = tg__in(y, 0), *yx = spread(y, y);
    tg_node *hit = tg_eq(x, yx);
    tg_node *share = spread(tg_div(g, sum_along(hit, y->aux)), y);
    tg_node *off = tg_where(tg_ne(yx, yx), tg__const_like(x, NAN), tg__const_like(x, 0));
    gin[0] = tg_where(hit, share, off);
}
#define max_vjp extremum_vjp
#define min_vjp extremum_vjp

/* argmax: an index is piecewise constant in x, so its derivative is 0
 * wherever it exists (tg__zero_backward, tg__zero_vjp), as the comparisons'. */
static void argmax_forward(tg_args *r) {
    TG_ARG_KERNEL(&r->out, argmax_runs_fwd)(tg__arg_axis(&r->in[0], r->param), r->in[0].value,
                                            r->out.value);
}

enum {
    R_SUM, R_MEAN, R_MAX, R_MIN, R_LOGSUMEXP, R_PROD, R_NORM, R_VAR, R_ARGMAX, R_COUNT,
    R_LOGSUMEXP_DX = R_COUNT, R_PROD_DX, R_NORM_DX, R_VAR_DX, R_END
};
extern const tg_op tg_reduce_ops[];

/* logsumexp, prod, norm and var state their partial d/dx once, in their
 * backward run kernel: the derivative op name_dx(x, y) (axis as y's) runs
 * that kernel at g = 1, tg_grad records g times it and tg_jvp the sum of it
 * times the tangent, so the three paths use the same bits. A tangent element
 * that is 0 contributes 0 even against an infinite partial (prod's, when
 * the other elements' product overflows), as a zero seed's row does in the
 * backward kernel. */
#define PARTIAL_OP(name, DX)                                                               \
    static void name##_dx_forward(tg_args *r) {                                            \
        TG_ARG_KERNEL(&r->out, name##_runs_partial)(tg__arg_axis(&r->in[0], r->param),     \
                                                    r->in[0].value, r->in[1].value,        \
                                                    r->out.value);                         \
    }                                                                                      \
    static void name##_vjp(tg_node *y, tg_node *g, tg_node **gin) {                        \
        partial_vjp(&tg_reduce_ops[DX], y, g, gin);                                        \
    }                                                                                      \
    static tg_node *name##_jvp(tg_node *y, tg_node *const *tin) {                          \
        return partial_jvp(&tg_reduce_ops[DX], y, tin);                                    \
    }
static tg_node *partial_of(const tg_op *dx, tg_node *y) {
    return tg__apply(dx, tg__in(y, 0), y, y->aux);
}
/* d v, but 0 where v is 0 (the kernels' term). */
static tg_node *times(tg_node *d, tg_node *v) {
    tg_node *zero = tg__const_like(v, 0);
    return tg_where(tg_eq(v, zero), zero, tg_mul(v, d));
}
static void partial_vjp(const tg_op *dx, tg_node *y, tg_node *g, tg_node **gin) {
    gin[0] = times(partial_of(dx, y), spread(g, y));
}
static tg_node *partial_jvp(const tg_op *dx, tg_node *y, tg_node *const *tin) {
    return sum_along(times(partial_of(dx, y), tin[0]), y->aux);
}
/* A derivative op's inputs: x, and y of x's shape reduced along its axis. */
static int partial_shape(tg_node *out, char *why, size_t len) {
    tg_args r;
    tg__args_of(out, &r);
    const tg_arg *x = &r.in[0], *y = &r.in[1];
    char sx[64], sy[64];
    if (out->aux != TG_AXIS_ALL && (out->aux < 0 || out->aux >= x->ndim)) {
        snprintf(why, len, "axis %d is out of range for %s", out->aux, tg__arg_shape_str(x, sx));
        return TG_ERR_ARG;
    }
    size_t runs = out->aux == TG_AXIS_ALL ? 1 : x->numel / (size_t)x->shape[out->aux];
    if (y->numel == runs) return TG_OK;
    snprintf(why, len, "y %s is not x %s reduced along its axis", tg__arg_shape_str(y, sy),
             tg__arg_shape_str(x, sx));
    return TG_ERR_SHAPE;
}
PARTIAL_OP(logsumexp, R_LOGSUMEXP_DX)
PARTIAL_OP(prod, R_PROD_DX)
PARTIAL_OP(norm, R_NORM_DX)
PARTIAL_OP(var, R_VAR_DX)

/* The second derivatives: H v for the run's Hessian H at the derivative
 * node p = d(x), recorded with public ops. */
typedef struct d2_ctx {
    tg_node *x, *y, *p;
    int axis;
} d2_ctx;
static d2_ctx d2_of(tg_node *p) { return (d2_ctx){tg__in(p, 0), tg__in(p, 1), p, p->aux}; }
static tg_node *back(const d2_ctx *c, tg_node *v) { return tg__unreduce(v, c->x, c->axis); }
/* logsumexp_dx = p = e^(x - y): H gg = p (gg - sum p gg) */
static tg_node *logsumexp_dx_hv(tg_node *p, tg_node *gg) {
    d2_ctx c = d2_of(p);
    return tg_mul(p, tg_sub(gg, back(&c, sum_along(tg_mul(p, gg), c.axis))));
}
/* var_dx = 2 (x - mean) / n: H gg = 2 (gg - mean gg) / n */
static tg_node *var_dx_hv(tg_node *p, tg_node *gg) {
    d2_ctx c = d2_of(p);
    double n = (double)tg_numel(c.x) / (double)tg_numel(c.y);
    return tg_scale(tg_sub(gg, back(&c, tg_scale(sum_along(gg, c.axis), 1 / n))), 2 / n);
}
/* norm_dx = u = x / y: H gg = (gg - u (u . gg)) / y; 0 at the zero vector */
static tg_node *norm_dx_hv(tg_node *p, tg_node *gg) {
    d2_ctx c = d2_of(p);
    tg_node *yx = back(&c, c.y), *zero = tg__const_like(c.x, 0);
    tg_node *h = tg_div(tg_sub(gg, tg_mul(p, back(&c, sum_along(tg_mul(p, gg), c.axis)))), yx);
    return tg_where(tg_eq(yx, zero), zero, h);
}
/* prod_dx = the product of the other elements: its derivative is recorded
 * by tg_grad of that product written with public ops, without dividing by
 * a zero: y / x where x != 0; at a zero, the product of the nonzero
 * elements when it is the run's only zero, else 0. */
static tg_node *prod_dx_hv(tg_node *p, tg_node *gg) {
    d2_ctx c = d2_of(p);
    tg_node *x = c.x, *zero = tg__const_like(x, 0), *one = tg__const_like(x, 1);
    tg_node *is0 = tg_eq(x, zero);
    tg_node *nonzeros = back(&c, prod_along(tg_where(is0, one, x), c.axis));
    tg_node *lone = tg_eq(back(&c, sum_along(is0, c.axis)), one);
    tg_node *others = tg_where(is0, tg_where(lone, nonzeros, zero),
                               tg_div(back(&c, prod_along(x, c.axis)), x));
    tg_node *r;
    return tg_grad_nodes(tg_sum(tg_mul(gg, others)), 1, &x, &r) ? NULL : r;
}

/* A run's Hessian is symmetric: the derivative node's vjp and tangent rules
 * are both H times the vector. */
#define HV_RULES(name)                                                                     \
    static void name##_vjp(tg_node *p, tg_node *g, tg_node **gin) { gin[0] = name##_hv(p, g); } \
    static tg_node *name##_jvp(tg_node *p, tg_node *const *tin) {                          \
        return tin[0] ? name##_hv(p, tin[0]) : NULL;                                       \
    }
HV_RULES(logsumexp_dx)
HV_RULES(prod_dx)
HV_RULES(norm_dx)
HV_RULES(var_dx)


#define ROW(name)                                                                          \
    {#name, 1, reduce_shape, name##_forward, name##_backward, name##_vjp, name##_jvp}
#define DROW(name) {#name, 2, partial_shape, name##_forward, NULL, name##_vjp, name##_jvp}
const tg_op tg_reduce_ops[R_END] = {
    [R_SUM] = {"sum", 1, reduce_shape, sum_forward, sum_backward, sum_vjp, tg__linear_jvp},
    [R_MEAN] = {"mean", 1, reduce_shape, mean_forward, mean_backward, mean_vjp, tg__linear_jvp},
    [R_MAX] = {"max", 1, reduce_shape, max_forward, max_backward, max_vjp, NULL},
    [R_MIN] = {"min", 1, reduce_shape, min_forward, min_backward, min_vjp, NULL},
    [R_LOGSUMEXP] = ROW(logsumexp),
    [R_PROD] = ROW(prod),
    [R_NORM] = ROW(norm),
    [R_VAR] = ROW(var),
    [R_ARGMAX] = {"argmax", 1, reduce_shape, argmax_forward, tg__zero_backward, tg__zero_vjp,
                  NULL},
    [R_LOGSUMEXP_DX] = DROW(logsumexp_dx),
    [R_PROD_DX] = DROW(prod_dx),
    [R_NORM_DX] = DROW(norm_dx),
    [R_VAR_DX] = DROW(var_dx),
};
const int tg_reduce_count = R_END;

/* all: over every element; else along axis, which is checked (so that a
 * caller's axis equal to TG_AXIS_ALL, -128, is refused, not taken as "all"). */
static tg_node *reduce(int op, tg_node *a, bool all, int axis) {
    const tg_op *o = &tg_reduce_ops[op];
    if (all) return tg__apply(o, a, NULL, TG_AXIS_ALL);
    if ((axis = tg__axis(a, axis, o->name)) < 0) return a ? &tg__tape_of(a)->poison : NULL;
    return tg__apply(o, a, NULL, axis);
}

tg_node *tg_sum(tg_node *a) { return reduce(R_SUM, a, true, 0); }
tg_node *tg_mean(tg_node *a) { return reduce(R_MEAN, a, true, 0); }
tg_node *tg_sum_axis(tg_node *a, int axis) { return reduce(R_SUM, a, false, axis); }
tg_node *tg_mean_axis(tg_node *a, int axis) { return reduce(R_MEAN, a, false, axis); }
tg_node *tg_max(tg_node *a) { return reduce(R_MAX, a, true, 0); }
tg_node *tg_max_axis(tg_node *a, int axis) { return reduce(R_MAX, a, false, axis); }
tg_node *tg_min(tg_node *a) { return reduce(R_MIN, a, true, 0); }
tg_node *tg_min_axis(tg_node *a, int axis) { return reduce(R_MIN, a, false, axis); }
tg_node *tg_logsumexp(tg_node *a) { return reduce(R_LOGSUMEXP, a, true, 0); }
tg_node *tg_logsumexp_axis(tg_node *a, int axis) { return reduce(R_LOGSUMEXP, a, false, axis); }
tg_node *tg_prod(tg_node *a) { return reduce(R_PROD, a, true, 0); }
tg_node *tg_prod_axis(tg_node *a, int axis) { return reduce(R_PROD, a, false, axis); }
tg_node *tg_norm(tg_node *a) { return reduce(R_NORM, a, true, 0); }
tg_node *tg_norm_axis(tg_node *a, int axis) { return reduce(R_NORM, a, false, axis); }
tg_node *tg_var(tg_node *a) { return reduce(R_VAR, a, true, 0); }
tg_node *tg_var_axis(tg_node *a, int axis) { return reduce(R_VAR, a, false, axis); }
tg_node *tg_argmax(tg_node *a) { return reduce(R_ARGMAX, a, true, 0); }
tg_node *tg_argmax_axis(tg_node *a, int axis) { return reduce(R_ARGMAX, a, false, axis); }

#else /* kernel pass, once per dtype */

/* y[o,i] = scale * sum_k x[o,k,i]; sums in double for float accuracy. */
static void S(sum_fwd)(tg_axis_view v, double scale, const void *vx, void *vy) {
    const T *x = vx;
    T *y = vy;
    for (size_t o = 0; o < v.outer; o++)
        for (size_t i = 0; i < v.inner; i++) {
            double s = 0;
            for (size_t k = 0; k < v.len; k++) s += x[(o * v.len + k) * v.inner + i];
            y[o * v.inner + i] = (T)(s * scale);
        }
}

/* gx[o,k,i] += scale * g[o,i] */
static void S(sum_bwd)(tg_axis_view v, double scale, const void *vg, void *vgx, bool write) {
    const T *g = vg;
    T *gx = vgx;
    for (size_t o = 0; o < v.outer; o++)
        for (size_t k = 0; k < v.len; k++)
            for (size_t i = 0; i < v.inner; i++) {
                T c = (T)(scale * g[o * v.inner + i]), *d = &gx[(o * v.len + k) * v.inner + i];
                *d = write ? c : *d + c;
            }
}

/* ---- the run kernels: len elements of x at stride s ---- */

static void S(runs_fwd)(tg_axis_view v, double (*f)(const T *, size_t, size_t), const void *vx,
                        void *vy) {
    const T *x = vx;
    T *y = vy;
    for (size_t o = 0; o < v.outer; o++)
        for (size_t i = 0; i < v.inner; i++)
            y[o * v.inner + i] = (T)f(x + o * v.len * v.inner + i, v.len, v.inner);
}

static void S(runs_bwd)(tg_axis_view v,
                        void (*f)(const T *, size_t, size_t, double, double, T *),
                        const void *vx, const void *vy, const void *vg, void *vgx) {
    const T *x = vx, *y = vy, *g = vg;
    T *gx = vgx;
    for (size_t o = 0; o < v.outer; o++)
        for (size_t i = 0; i < v.inner; i++) {
            size_t r = o * v.len * v.inner + i, j = o * v.inner + i;
            f(x + r, v.len, v.inner, y[j], g[j], gx + r);
        }
}

/* The backward term of a partial d: g d, but 0 for g = 0 even where d is
 * infinite (a run whose other elements' product overflowed): the zero seed
 * of another output's row, as a zero tangent in forward mode. */
static inline T S(term)(double g, double d) { return g == 0 ? 0 : (T)g * (T)d; }

/* The partials d/dx of each run (the derivative ops' values): the backward
 * kernel at g = 1 into -0, so that (T)g * d is the fused kernel's term. */
static void S(runs_partial)(tg_axis_view v,
                            void (*f)(const T *, size_t, size_t, double, double, T *),
                            const void *vx, const void *vy, void *vd) {
    const T *x = vx, *y = vy;
    T *d = vd;
    for (size_t i = 0, n = v.outer * v.len * v.inner; i < n; i++) d[i] = -(T)0;
    for (size_t o = 0; o < v.outer; o++)
        for (size_t i = 0; i < v.inner; i++) {
            size_t r = o * v.len * v.inner + i, j = o * v.inner + i;
            f(x + r, v.len, v.inner, y[j], 1.0, d + r);
        }
}

/* max and min: a NaN anywhere in the run makes the result NaN (torch.amax),
 * since once m is NaN no comparison replaces it. */
#define EXTREME(name, BEATS)                                                               \
    static double S(name##_fwd)(const T *x, size_t len, size_t s) {                        \
        T m = x[0];                                                                        \
        for (size_t k = 1; k < len; k++) {                                                 \
            T v = x[k * s];                                                                \
            m = (BEATS) || v != v ? v : m;                                                 \
        }                                                                                  \
        return m;                                                                          \
    }                                                                                      \
    static void S(name##_bwd)(const T *x, size_t len, size_t s, double y, double g, T *gx) { \
        S(ties_bwd)(x, len, s, y, g, gx);                                                  \
    }

/* The adjoint split evenly among the elements equal to the result (PyTorch's
 * rule for amax/amin). When the result is NaN no element equals it: the
 * share g/0 is inf or NaN and 0 x share makes every gradient NaN, as in
 * PyTorch, whose rule is the same product mask x g / count. */
static void S(ties_bwd)(const T *x, size_t len, size_t s, double y, double g, T *gx) {
    size_t ties = 0;
    for (size_t k = 0; k < len; k++) ties += x[k * s] == y;
    double share = g / (double)ties;
    for (size_t k = 0; k < len; k++) gx[k * s] += (T)((double)(x[k * s] == y) * share);
}

EXTREME(max, v > m)
EXTREME(min, v < m)
#undef EXTREME

/* log sum e^x shifted by the run's maximum m, so no exp overflows. An
 * infinite m is not subtracted (inf - inf is NaN): all -inf gives
 * log 0 = -inf, a +inf element gives +inf; a NaN passes through m. */
static double S(logsumexp_fwd)(const T *x, size_t len, size_t s) {
    double m = S(max_fwd)(x, len, s), sum = 0;
    if (isinf(m)) m = 0;
    for (size_t k = 0; k < len; k++) sum += exp((double)x[k * s] - m);
    return m + log(sum);
}

/* d/dx_k = e^(x_k - y), the softmax. */
static void S(logsumexp_bwd)(const T *x, size_t len, size_t s, double y, double g, T *gx) {
    for (size_t k = 0; k < len; k++) gx[k * s] += S(term)(g, exp((double)x[k * s] - y));
}

static scaled_prod S(prod_of)(const T *x, size_t len, size_t s) {
    scaled_prod p = {1, 0, 0, 1};
    for (size_t k = 0; k < len; k++) scaled_mul(&p, x[k * s]);
    return p;
}

static double S(prod_fwd)(const T *x, size_t len, size_t s) {
    return scaled_prod_value(S(prod_of)(x, len, s));
}

/* d/dx_k = the product of the other elements, never a division by 0:
 * without zeros it is m 2^e / x_k (torch's y / x_k, without its overflow);
 * with one zero, the product of the nonzero elements for the zero and 0 for
 * the rest; with two or more zeros, 0 everywhere. */
static void S(prod_bwd)(const T *x, size_t len, size_t s, double y, double g, T *gx) {
    (void)y; /* may have overflowed or underflowed where m 2^e did not */
    scaled_prod p = S(prod_of)(x, len, s);
    double rest = scaled_value(p.m, p.e);
    for (size_t k = 0; k < len; k++) {
        double v = x[k * s], others;
        if (v != 0) {
            int ev = 0;
            double mv = frexp(v, &ev);
            others = p.zeros ? 0 : scaled_value(p.m / mv, p.e - ev);
        } else {
            others = p.zeros == 1 ? rest : 0;
        }
        gx[k * s] += S(term)(g, others);
    }
}

/* sqrt(sum x^2) in double. Float runs and ordinary double runs take the
 * first loop only; when the sum of squares overflowed, or was small enough
 * that squares may have underflowed, or is 0, inf or NaN, the run is
 * summed again scaled by a power of 2 near its largest |x|, which is exact
 * (as hypot does). */
static double S(norm_fwd)(const T *x, size_t len, size_t s) {
    double q = 0;
    for (size_t k = 0; k < len; k++) q += (double)x[k * s] * (double)x[k * s];
    if (q >= 0x1p-900 && q <= 0x1p900) return sqrt(q);
    double a = 0;
    for (size_t k = 0; k < len; k++) {
        double v = fabs((double)x[k * s]);
        a = v > a || v != v ? v : a;
    }
    if (a == 0 || !isfinite(a)) return a; /* the zero vector; inf; NaN */
    int ea;
    frexp(a, &ea);
    q = 0;
    for (size_t k = 0; k < len; k++) {
        double v = ldexp((double)x[k * s], -ea);
        q += v * v;
    }
    return ldexp(sqrt(q), ea);
}

/* d/dx_k = x_k / y, and 0 at the zero vector (PyTorch's choice, the
 * minimum-norm subgradient). A float32 result that overflowed (the norm of
 * [2e38, 2e38]) is recomputed in double, where it is finite. */
static void S(norm_bwd)(const T *x, size_t len, size_t s, double y, double g, T *gx) {
    if (isinf(y)) y = S(norm_fwd)(x, len, s);
    if (y == 0) {
        for (size_t k = 0; k < len; k++) gx[k * s] += 0; /* +0, not g * 0 */
        return;
    }
    for (size_t k = 0; k < len; k++) gx[k * s] += S(term)(g, (double)x[k * s] / y);
}

static double S(mean_of)(const T *x, size_t len, size_t s) {
    double sum = 0;
    for (size_t k = 0; k < len; k++) sum += x[k * s];
    return sum / (double)len;
}

/* Population variance (correction 0), two passes about the mean. */
static double S(var_fwd)(const T *x, size_t len, size_t s) {
    double mean = S(mean_of)(x, len, s), q = 0;
    for (size_t k = 0; k < len; k++) {
        double d = (double)x[k * s] - mean;
        q += d * d;
    }
    return q / (double)len;
}

/* d/dx_k = 2 (x_k - mean) / len: the terms through the mean sum to 0. */
static void S(var_bwd)(const T *x, size_t len, size_t s, double y, double g, T *gx) {
    (void)y;
    double mean = S(mean_of)(x, len, s), c = 2 / (double)len;
    for (size_t k = 0; k < len; k++) gx[k * s] += S(term)(g, c * ((double)x[k * s] - mean));
}

/* The position of the run's largest element: the first at a tie, and the
 * first NaN when there is one (torch.argmax, whose NaN is the largest). */
static double S(argmax_fwd)(const T *x, size_t len, size_t s) {
    T m = x[0];
    size_t best = 0;
    for (size_t k = 1; k < len && m == m; k++) {
        T v = x[k * s];
        if (v > m || v != v) {
            m = v;
            best = k;
        }
    }
    return (double)best;
}

RUN_OPS(RUN_KERNELS)
PARTIAL_OPS(PARTIAL_KERNEL)

static void S(argmax_runs_fwd)(tg_axis_view v, const void *vx, void *vy) {
    S(runs_fwd)(v, S(argmax_fwd), vx, vy);
}

#endif
