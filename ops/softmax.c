/*
 * softmax and log_softmax along one axis, each run of the axis shifted by its
 * maximum first so that no exp overflows.
 *   softmax:      y = e^(x - m) / s,  s = sum e^(x - m);  dx = y (g - sum g y)
 *   log_softmax:  y = x - m - log s;                      dx = g - e^y sum g
 */
#ifndef T
#include "internal.h"

#include <tgmath.h>

#include "dtypes.h"

/* tg_softmax() checks its axis; tg_call() and tg_apply() arrive with axis 0
 * unchecked, which a 0-d input does not have. */
static int axis_shape(tg_node *out, char *why, size_t len) {
    if (out->aux >= 0 && out->aux < out->ndim) return TG_OK;
    char s[64];
    snprintf(why, len, "axis %d is out of range for %s", out->aux, tg__shape_str(out->in[0], s));
    return TG_ERR_ARG;
}

static void softmax_forward(tg_node *n) {
    TG_KERNEL(n, softmax_fwd)(tg__axis_view(n, n->aux), false, n->in[0]->value, n->value);
}
static void log_softmax_forward(tg_node *n) {
    TG_KERNEL(n, softmax_fwd)(tg__axis_view(n, n->aux), true, n->in[0]->value, n->value);
}
static void softmax_backward(tg_node *n) {
    if (n->in[0]->grad)
        TG_KERNEL(n, softmax_bwd)(tg__axis_view(n, n->aux), false, n->value, n->grad,
                                  n->in[0]->grad);
}
static void log_softmax_backward(tg_node *n) {
    if (n->in[0]->grad)
        TG_KERNEL(n, softmax_bwd)(tg__axis_view(n, n->aux), true, n->value, n->grad,
                                  n->in[0]->grad);
}

/* vjp rules (tg_grad), along the node's axis (aux):
 * softmax: x' = y (g - sum(g y)); log_softmax: x' = g - e^y sum(g). */
static void softmax_vjp(tg_node *y, tg_node *g, tg_node **gin) {
    tg_node *x = tg__in(y, 0);
    tg_node *s = tg__unreduce(tg_sum_axis(tg_mul(g, y), y->aux), x, y->aux);
    gin[0] = tg_mul(y, tg_sub(g, s));
}
static void log_softmax_vjp(tg_node *y, tg_node *g, tg_node **gin) {
    tg_node *x = tg__in(y, 0);
    tg_node *s = tg__unreduce(tg_sum_axis(g, y->aux), x, y->aux);
    gin[0] = tg_sub(g, tg_mul(tg_exp(y), s));
}

enum { SM_SOFTMAX, SM_LOG_SOFTMAX, SM_COUNT };
const tg_op tg_softmax_ops[] = {
    [SM_SOFTMAX] = {"softmax", 1, axis_shape, softmax_forward, softmax_backward, softmax_vjp},
    [SM_LOG_SOFTMAX] = {"log_softmax", 1, axis_shape, log_softmax_forward,
                         log_softmax_backward, log_softmax_vjp},
};
const int tg_softmax_count = SM_COUNT;

static tg_node *softmax(int op, tg_node *a, int axis) {
    const tg_op *o = &tg_softmax_ops[op];
    if ((axis = tg__axis(a, axis, o->name)) < 0) return a ? &tg__tape_of(a)->poison : NULL;
    return tg__apply(o, a, NULL, axis);
}

tg_node *tg_softmax(tg_node *a, int axis) { return softmax(SM_SOFTMAX, a, axis); }
tg_node *tg_log_softmax(tg_node *a, int axis) { return softmax(SM_LOG_SOFTMAX, a, axis); }

#else /* kernel pass, once per dtype */

static void S(softmax_fwd)(tg_axis_view v, bool log_out, const void *vx, void *vy) {
    const T *x = vx;
    T *y = vy;
    for (size_t o = 0; o < v.outer; o++)
        for (size_t i = 0; i < v.inner; i++) {
            const T *xr = x + o * v.len * v.inner + i;
            T *yr = y + o * v.len * v.inner + i;
            T m = xr[0];
            for (size_t k = 1; k < v.len; k++) m = xr[k * v.inner] > m ? xr[k * v.inner] : m;
            T s = 0;
            for (size_t k = 0; k < v.len; k++) s += exp(xr[k * v.inner] - m);
            T ls = log(s);
            for (size_t k = 0; k < v.len; k++)
                yr[k * v.inner] =
                    log_out ? xr[k * v.inner] - m - ls : exp(xr[k * v.inner] - m) / s;
        }
}

static void S(softmax_bwd)(tg_axis_view v, bool log_out, const void *vy, const void *vg,
                           void *vgx) {
    const T *y = vy, *g = vg;
    T *gx = vgx;
    for (size_t o = 0; o < v.outer; o++)
        for (size_t i = 0; i < v.inner; i++) {
            size_t base = o * v.len * v.inner + i;
            T dot = 0;
            for (size_t k = 0; k < v.len; k++) {
                size_t j = base + k * v.inner;
                dot += log_out ? g[j] : g[j] * y[j];
            }
            for (size_t k = 0; k < v.len; k++) {
                size_t j = base + k * v.inner;
                gx[j] += log_out ? g[j] - exp(y[j]) * dot : y[j] * (g[j] - dot);
            }
        }
}

#endif
