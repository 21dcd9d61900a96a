/*
 * softmax and log_softmax along one axis, each run of the axis shifted by its
 * maximum first so that no exp overflows.
 *   softmax:      y = e^(x - m) / s,  s = sum e^(x - m);  dx = y (g - sum g y)
 *   log_softmax:  y = x - m - log s;                      dx = g - e^y sum g
 * The recorded rules state these with public ops, and the fused backward
 * kernel computes them with the same primitives in the same order (sums in
 * double rounded once, as tg_sum; e^y by the vector exp, as tg_exp), so the
 * two give the same bits. Their tangents, t y - y sum t y and t - sum e^y t,
 * are J t for the same J.
 */
#ifndef T
#include "rules.h"
#include "vmath.h"

#include <tgmath.h>

#include "dtypes.h"

/* tg_softmax() checks its axis; tg_call() and tg_apply() arrive with axis 0
 * unchecked, which a 0-d input does not have. */
static int axis_shape(tg_node *out, char *why, size_t len) {
    if (out->aux >= 0 && out->aux < out->ndim) return TG_OK;
    char s[64];
    snprintf(why, len, "axis %d is out of range for %s", out->aux, tg__shape_str(tg__in(out, 0), s));
    return TG_ERR_ARG;
}

static void softmax_forward(tg_args *r) {
    TG_ARG_KERNEL(&r->out, softmax_fwd)(tg__arg_axis(&r->out, r->param), false, r->in[0].value,
                                        r->out.value);
}
static void log_softmax_forward(tg_args *r) {
    TG_ARG_KERNEL(&r->out, softmax_fwd)(tg__arg_axis(&r->out, r->param), true, r->in[0].value,
                                        r->out.value);
}
static void softmax_backward(tg_args *r) {
    if (r->in[0].grad)
        TG_ARG_KERNEL(&r->out, softmax_bwd)(tg__arg_axis(&r->out, r->param), false, r->out.value,
                                            r->out.grad, r->in[0].grad);
}
static void log_softmax_backward(tg_args *r) {
    if (r->in[0].grad)
        TG_ARG_KERNEL(&r->out, softmax_bwd)(tg__arg_axis(&r->out, r->param), true, r->out.value,
                                            r->out.grad, r->in[0].grad);
}

/* The rules (tg_grad, tg_jvp), along the node's axis (aux); J is symmetric
 * for softmax, so its tangent is its vjp's formula. */
static tg_node *along(tg_node *y, tg_node *v) {
    return tg__unreduce(tg_sum_axis(v, y->aux), tg__in(y, 0), y->aux);
}
static tg_node *softmax_apply(tg_node *y, tg_node *v) {
    return tg_mul(y, tg_sub(v, along(y, tg_mul(v, y))));
}
static void softmax_vjp(tg_node *y, tg_node *g, tg_node **gin) { gin[0] = softmax_apply(y, g); }
static tg_node *softmax_jvp(tg_node *y, tg_node *const *tin) { return softmax_apply(y, tin[0]); }
static void log_softmax_vjp(tg_node *y, tg_node *g, tg_node **gin) {
    gin[0] = tg_sub(g, tg_mul(tg_exp(y), along(y, g)));
}
static tg_node *log_softmax_jvp(tg_node *y, tg_node *const *tin) {
    return tg_sub(tin[0], along(y, tg_mul(tg_exp(y), tin[0])));
}

enum { SM_SOFTMAX, SM_LOG_SOFTMAX, SM_COUNT };
const tg_op tg_softmax_ops[] = {
    [SM_SOFTMAX] = {"softmax", 1, axis_shape, softmax_forward, softmax_backward, softmax_vjp,
                    softmax_jvp},
    [SM_LOG_SOFTMAX] = {"log_softmax", 1, axis_shape, log_softmax_forward,
                        log_softmax_backward, log_softmax_vjp, log_softmax_jvp},
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

/* e^y of a run into e (len elements at stride inner), by the vector exp. */
static void S(exp_run)(const T *y, size_t len, size_t inner, T *e) {
    for (size_t k = 0; k < len; k++) e[k] = y[k * inner];
    S(tg__vexp)(len, e, e);
}

static void S(softmax_bwd)(tg_axis_view v, bool log_out, const void *vy, const void *vg,
                           void *vgx) {
    const T *y = vy, *g = vg;
    T *gx = vgx, e[256];
    for (size_t o = 0; o < v.outer; o++)
        for (size_t i = 0; i < v.inner; i++) {
            size_t base = o * v.len * v.inner + i;
            double sum = 0;
            for (size_t k = 0; k < v.len; k++) {
                size_t j = base + k * v.inner;
                sum += log_out ? g[j] : g[j] * y[j];
            }
            T dot = (T)sum;
            for (size_t k0 = 0; k0 < v.len; k0 += 256) { /* e^y a block at a time */
                size_t m = v.len - k0 < 256 ? v.len - k0 : 256;
                if (log_out) S(exp_run)(y + base + k0 * v.inner, m, v.inner, e);
                for (size_t k = k0; k < k0 + m; k++) {
                    size_t j = base + k * v.inner;
                    gx[j] += log_out ? g[j] - e[k - k0] * dot : y[j] * (g[j] - dot);
                }
            }
        }
}

#endif
