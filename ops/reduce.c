/*
 * Reductions: sum and mean, of all elements or along one axis.
 *
 * A reduction views its input as [outer, len, inner] around the reduced axis
 * (len = all elements for a full reduction); the output is [outer, inner].
 */
#ifndef T
#include "internal.h"

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
                 tg__shape_str(out->in[0], s));
        return TG_ERR_ARG;
    }
    for (int i = out->aux; i + 1 < out->ndim; i++) out->u.shape[i] = out->u.shape[i + 1];
    out->ndim--;
    return TG_OK;
}

static void reduce_forward(tg_node *n, bool mean) {
    tg_axis_view v = tg__axis_view(n->in[0], n->aux);
    TG_KERNEL(n, sum_fwd)(v, mean ? 1.0 / (double)v.len : 1.0, n->in[0]->value, n->value);
}

static void reduce_backward(tg_node *n, bool mean) {
    tg_axis_view v = tg__axis_view(n->in[0], n->aux);
    if (n->in[0]->grad)
        TG_KERNEL(n, sum_bwd)(v, mean ? 1.0 / (double)v.len : 1.0, n->grad, n->in[0]->grad);
}

static void sum_forward(tg_node *n) { reduce_forward(n, false); }
static void sum_backward(tg_node *n) { reduce_backward(n, false); }
static void mean_forward(tg_node *n) { reduce_forward(n, true); }
static void mean_backward(tg_node *n) { reduce_backward(n, true); }

/* vjp rules (tg_grad): the gradient of the reduced node spread back over
 * the reduced elements. */
static void sum_vjp(tg_node *y, tg_node *g, tg_node **gin) {
    tg_node *x = tg_node_input(y, 0);
    gin[0] = tg__expand_like(tg__unreduce(g, x, y->aux), x);
}
static void mean_vjp(tg_node *y, tg_node *g, tg_node **gin) {
    tg_node *x = tg_node_input(y, 0);
    double n = (double)tg__numel(x) / (double)tg__numel(y);
    gin[0] = tg__expand_like(tg__unreduce(tg_scale(g, 1 / n), x, y->aux), x);
}

enum { R_SUM, R_MEAN, R_COUNT };
const tg_op tg_reduce_ops[] = {
    [R_SUM] = {"sum", 1, reduce_shape, sum_forward, sum_backward, sum_vjp},
    [R_MEAN] = {"mean", 1, reduce_shape, mean_forward, mean_backward, mean_vjp},
};
const int tg_reduce_count = R_COUNT;

/* all: over every element; else along axis, which is checked (so that a
 * caller's axis equal to TG_AXIS_ALL, -128, is refused, not taken as "all"). */
static tg_node *reduce(int op, tg_node *a, bool all, int axis) {
    const tg_op *o = &tg_reduce_ops[op];
    if (all) return tg__apply(o, a, NULL, TG_AXIS_ALL);
    if ((axis = tg__axis(a, axis, o->name)) < 0) return a ? &a->tape->poison : NULL;
    return tg__apply(o, a, NULL, axis);
}

tg_node *tg_sum(tg_node *a) { return reduce(R_SUM, a, true, 0); }
tg_node *tg_mean(tg_node *a) { return reduce(R_MEAN, a, true, 0); }
tg_node *tg_sum_axis(tg_node *a, int axis) { return reduce(R_SUM, a, false, axis); }
tg_node *tg_mean_axis(tg_node *a, int axis) { return reduce(R_MEAN, a, false, axis); }

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
static void S(sum_bwd)(tg_axis_view v, double scale, const void *vg, void *vgx) {
    const T *g = vg;
    T *gx = vgx;
    for (size_t o = 0; o < v.outer; o++)
        for (size_t k = 0; k < v.len; k++)
            for (size_t i = 0; i < v.inner; i++)
                gx[(o * v.len + k) * v.inner + i] += (T)(scale * g[o * v.inner + i]);
}

#endif
