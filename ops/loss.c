/*
 * Costs, each averaged over the B batch rows and returning a 0-d node.
 *   mse:           C = 1/(2B) sum (a - y)^2          dC/da = (a - y)/B
 *   softmax_xent:  C = -1/B sum y log_softmax(z)      dC/dz = (softmax(z) sum_row y - y)/B
 * The cross-entropy recomputes each row's log-sum-exp in backward rather
 * than keep a softmax buffer on the tape.
 */
#ifndef T
#include "internal.h"

#include <tgmath.h>

#include "dtypes.h"

/* Batch rows: the leading dimension of a matrix or batch of tensors. */
static size_t batch_rows(const tg_node *a) { return a->ndim >= 2 ? (size_t)a->u.shape[0] : 1; }

static int same_shapes_to_scalar(tg_node *out, char *why, size_t len) {
    const tg_node *a = out->in[0], *b = out->in[1];
    bool same = a->ndim == b->ndim;
    for (int i = 0; same && i < a->ndim; i++) same = a->u.shape[i] == b->u.shape[i];
    if (!same || a->ndim == 0) {
        char sa[64], sb[64];
        snprintf(why, len, "%s and %s: prediction and target need equal, non-scalar shapes",
                 tg__shape_str(a, sa), tg__shape_str(b, sb));
        return TG_ERR_SHAPE;
    }
    out->ndim = 0;
    return TG_OK;
}

static void mse_forward(tg_node *n) {
    const tg_node *a = n->in[0];
    TG_KERNEL(n, mse_fwd)(tg__numel(a), batch_rows(a), a->value, n->in[1]->value, n->value);
}

static void mse_backward(tg_node *n) {
    const tg_node *a = n->in[0], *y = n->in[1];
    TG_KERNEL(n, mse_bwd)(tg__numel(a), batch_rows(a), a->value, y->value, n->grad, a->grad,
                          y->grad);
}

static tg_axis_view rows_of(const tg_node *z) {
    size_t k = (size_t)z->u.shape[z->ndim - 1];
    return (tg_axis_view){tg__numel(z) / k, k, 1};
}

static void xent_forward(tg_node *n) {
    const tg_node *z = n->in[0];
    TG_KERNEL(n, xent_fwd)(rows_of(z), batch_rows(z), z->value, n->in[1]->value, n->value);
}

static void xent_backward(tg_node *n) {
    const tg_node *z = n->in[0], *y = n->in[1];
    TG_KERNEL(n, xent_bwd)(rows_of(z), batch_rows(z), z->value, y->value, n->grad, z->grad,
                           y->grad);
}

/* vjp rules (tg_grad): the derivatives in the comment at the top. */
static void mse_vjp(tg_node *c, tg_node *g, tg_node **gin) {
    tg_node *a = tg_node_input(c, 0), *y = tg_node_input(c, 1);
    tg_node *ga = tg_mul(tg_scale(g, 1.0 / (double)batch_rows(a)), tg_sub(a, y));
    if (tg_requires_grad(a)) gin[0] = ga;
    if (tg_requires_grad(y)) gin[1] = tg_neg(ga);
}
static void xent_vjp(tg_node *c, tg_node *g, tg_node **gin) {
    tg_node *z = tg_node_input(c, 0), *y = tg_node_input(c, 1);
    tg_node *k = tg_scale(g, 1.0 / (double)batch_rows(z));
    int last = z->ndim ? z->ndim - 1 : 0;
    if (tg_requires_grad(z)) {
        tg_node *ysum = z->ndim ? tg__unreduce(tg_sum_axis(y, last), z, last) : y;
        gin[0] = tg_mul(k, tg_sub(tg_mul(tg_softmax(z, last), ysum), y));
    }
    if (tg_requires_grad(y)) gin[1] = tg_neg(tg_mul(k, tg_log_softmax(z, last)));
}

enum { C_MSE, C_XENT, C_COUNT };
const tg_op tg_loss_ops[] = {
    [C_MSE] = {"mse", 2, same_shapes_to_scalar, mse_forward, mse_backward, mse_vjp},
    [C_XENT] = {"softmax_xent", 2, same_shapes_to_scalar, xent_forward, xent_backward, xent_vjp},
};
const int tg_loss_count = C_COUNT;

tg_node *tg_mse(tg_node *a, tg_node *y) { return tg__apply(&tg_loss_ops[C_MSE], a, y, 0); }
tg_node *tg_softmax_xent(tg_node *z, tg_node *y) {
    return tg__apply(&tg_loss_ops[C_XENT], z, y, 0);
}

#else /* kernel pass, once per dtype */

static void S(mse_fwd)(size_t n, size_t rows, const void *va, const void *vy, void *vc) {
    const T *a = va, *y = vy;
    double s = 0;
    for (size_t i = 0; i < n; i++) s += ((double)a[i] - y[i]) * ((double)a[i] - y[i]);
    *(T *)vc = (T)(0.5 * s / (double)rows);
}

static void S(mse_bwd)(size_t n, size_t rows, const void *va, const void *vy, const void *vg,
                       void *vga, void *vgy) {
    const T *a = va, *y = vy;
    T *ga = vga, *gy = vgy, k = *(const T *)vg / (T)rows;
    for (size_t i = 0; i < n; i++) {
        T d = k * (a[i] - y[i]);
        if (ga) ga[i] += d;
        if (gy) gy[i] -= d;
    }
}

/* log sum_k e^(z_k) of one row, shifted by the row's maximum. */
static T S(row_lse)(const T *z, size_t k) {
    T m = z[0];
    for (size_t j = 1; j < k; j++) m = z[j] > m ? z[j] : m;
    T s = 0;
    for (size_t j = 0; j < k; j++) s += exp(z[j] - m);
    return m + log(s);
}

static void S(xent_fwd)(tg_axis_view v, size_t rows, const void *vz, const void *vy, void *vc) {
    const T *z = vz, *y = vy;
    double c = 0;
    for (size_t r = 0; r < v.outer; r++) {
        const T *zr = z + r * v.len, *yr = y + r * v.len;
        T lse = S(row_lse)(zr, v.len);
        for (size_t j = 0; j < v.len; j++)
            if (yr[j] != 0) c -= (double)yr[j] * (zr[j] - lse);
    }
    *(T *)vc = (T)(c / (double)rows);
}

static void S(xent_bwd)(tg_axis_view v, size_t rows, const void *vz, const void *vy,
                        const void *vg, void *vgz, void *vgy) {
    const T *z = vz, *y = vy;
    T *gz = vgz, *gy = vgy, k = *(const T *)vg / (T)rows;
    for (size_t r = 0; r < v.outer; r++) {
        const T *zr = z + r * v.len, *yr = y + r * v.len;
        T lse = S(row_lse)(zr, v.len), ysum = 0;
        for (size_t j = 0; j < v.len; j++) ysum += yr[j];
        for (size_t j = 0; j < v.len; j++) {
            if (gz) gz[r * v.len + j] += k * (exp(zr[j] - lse) * ysum - yr[j]);
            if (gy) gy[r * v.len + j] -= k * (zr[j] - lse);
        }
    }
}

#endif
