/*
 * Costs, each returning a 0-d node.
 *   mse:             C = 1/(2B) sum (a - y)^2        dC/da = (a - y)/B
 *   softmax_xent:    C = -1/B sum y log_softmax(z)    dC/dz = (softmax(z) sum_row y - y)/B
 *                                                     dC/dy = -log_softmax(z)/B
 *   bce_with_logits: C = 1/N sum max(z,0) - z y + log1p(e^-|z|)
 *                                                     dC/dz = (sigmoid(z) - y)/N, dC/dy = -z/N
 *   nll_loss:        C = -1/R sum_r p[r, label_r]     dC/dp[r, label_r] = -1/R
 *   cross_entropy:   C = 1/R sum_r lse(z_r) - z[r, label_r]
 *                                                     dC/dz = (softmax(z) - onehot(label))/R
 *   huber:           C = 1/N sum h(a - y), h(d) = d^2/2 for |d| < delta, else
 *                    delta (|d| - delta/2)            dC/da = clamp(a - y, -delta, delta)/N
 *                                                     dC/ddelta = sum relu(|a - y| - delta)/N
 * B: batch rows (shape[0] of a matrix or batch); N: all elements; R: the
 * rows of the class-label losses, one per label (the logits' elements over
 * the last axis). The cross-entropies recompute each row's log-sum-exp in
 * backward rather than keep a softmax buffer on the tape.
 *
 * Each of these partial derivatives (but mse's and nll_loss's, one line of
 * ops each) is stated once, as a kernel that either stores it (the forward
 * of the loss's derivative op NAME_da, NAME_db, NAME_dc, by input) or adds
 * g times it into the input's gradient (the fused backward). tg_grad records
 * g times the derivative op and tg_jvp the sum of the derivative op times
 * the tangent, so the three paths multiply the same bits. Only the second
 * derivatives (the derivative ops' vjp rules, in public ops) are stated
 * again. The derivative ops take the loss's inputs (cross_entropy_da takes
 * the one-hot rows of the labels instead of the labels); the cross-entropies'
 * also accept 0-d inputs, read as one row of one class.
 *
 * Class labels are a node of the logits' dtype holding integers (tg_labels()
 * copies an int32 array into one), so a replayed graph takes new labels
 * through tg_value() like any input. They are checked where they are read:
 * by the shape rule when the op is recorded, by forward on replay and by
 * backward (a label written after the forward must not index out of the
 * row); a bad one is an error naming the row and the label, never a read
 * or write out of bounds.
 */
#ifndef T
#include "broadcast.h"
#include "rules.h"

#include <tgmath.h>

#include "dtypes.h"

/* Batch rows: the leading dimension of a matrix or batch of tensors. */
static size_t batch_rows(const tg_arg *a) { return a->ndim >= 2 ? (size_t)a->shape[0] : 1; }
/* The same for a node, and its number of rows along the last axis (the
 * recorded rules read their inputs through the public accessors). */
static double node_batch_rows(tg_node *a) {
    int64_t shape[TG_MAX_DIMS];
    return tg_shape(a, shape) >= 2 ? (double)shape[0] : 1;
}
static double node_rows(tg_node *z) {
    int64_t shape[TG_MAX_DIMS];
    int nd = tg_shape(z, shape);
    return (double)tg_numel(z) / (double)(nd ? shape[nd - 1] : 1);
}

static int unequal_shapes(const tg_arg *a, const tg_arg *b, char *why, size_t len,
                          const char *need) {
    char sa[64], sb[64];
    snprintf(why, len, "%s and %s: %s", tg__arg_shape_str(a, sa), tg__arg_shape_str(b, sb), need);
    return TG_ERR_SHAPE;
}

static int same_shapes_to_scalar(tg_node *out, char *why, size_t len) {
    tg_args r;
    tg__args_of(out, &r);
    const tg_arg *a = &r.in[0], *b = &r.in[1];
    if (!tg__arg_same_shape(a, b) || a->ndim == 0)
        return unequal_shapes(a, b, why, len,
                              "prediction and target need equal, non-scalar shapes");
    out->ndim = 0;
    return TG_OK;
}

/* Inputs of equal shapes, 0-d included: the derivative ops' shape (of
 * either input). */
static int equal_shapes(tg_node *out, char *why, size_t len) {
    tg_args r;
    tg__args_of(out, &r);
    const tg_arg *a = &r.in[0], *b = &r.in[1];
    if (!tg__arg_same_shape(a, b))
        return unequal_shapes(a, b, why, len, "prediction and target need equal shapes");
    return TG_OK;
}

/* Inputs of equal shapes, 0-d included; the mean over their elements. */
static int equal_shapes_to_mean(tg_node *out, char *why, size_t len) {
    int rc = equal_shapes(out, why, len);
    if (!rc) out->ndim = 0;
    return rc;
}

static void mse_forward(tg_args *r) {
    const tg_arg *a = &r->in[0];
    TG_ARG_KERNEL(a, mse_fwd)(a->numel, batch_rows(a), a->value, r->in[1].value, r->out.value);
}

static void mse_backward(tg_args *r) {
    const tg_arg *a = &r->in[0], *y = &r->in[1];
    TG_ARG_KERNEL(a, mse_bwd)(a->numel, batch_rows(a), a->value, y->value, r->out.grad, a->grad,
                              y->grad);
}

/* The rows along the last axis; a 0-d z (which only the derivative ops
 * accept) is one row of one element. */
static tg_axis_view rows_of(const tg_arg *z) {
    size_t k = z->ndim ? (size_t)z->shape[z->ndim - 1] : 1;
    return (tg_axis_view){z->numel / k, k, 1};
}

static void xent_forward(tg_args *r) {
    const tg_arg *z = &r->in[0];
    TG_ARG_KERNEL(z, xent_fwd)(rows_of(z), batch_rows(z), z->value, r->in[1].value,
                               r->out.value);
}

/* The fused backward (g = the cost's gradient, adding into the inputs'),
 * and the derivative ops' forward (g NULL, storing into out): one kernel. */
static void xent_backward(tg_args *r) {
    const tg_arg *z = &r->in[0], *y = &r->in[1];
    TG_ARG_KERNEL(z, xent_d)(rows_of(z), batch_rows(z), z->value, y->value, r->out.grad,
                             z->grad, y->grad);
}
static void xent_da_forward(tg_args *r) {
    const tg_arg *z = &r->in[0];
    TG_ARG_KERNEL(z, xent_d)(rows_of(z), batch_rows(z), z->value, r->in[1].value, NULL,
                             r->out.value, NULL);
}
static void xent_db_forward(tg_args *r) {
    const tg_arg *z = &r->in[0];
    TG_ARG_KERNEL(z, xent_d)(rows_of(z), batch_rows(z), z->value, r->in[1].value, NULL, NULL,
                             r->out.value);
}

static void bce_forward(tg_args *r) {
    const tg_arg *z = &r->in[0];
    TG_ARG_KERNEL(z, bce_fwd)(z->numel, z->value, r->in[1].value, r->out.value);
}

static void bce_backward(tg_args *r) {
    const tg_arg *z = &r->in[0], *y = &r->in[1];
    TG_ARG_KERNEL(z, bce_d)(z->numel, z->value, y->value, r->out.grad, z->grad, y->grad);
}
static void bce_da_forward(tg_args *r) {
    const tg_arg *z = &r->in[0];
    TG_ARG_KERNEL(z, bce_d)(z->numel, z->value, r->in[1].value, NULL, r->out.value, NULL);
}
static void bce_db_forward(tg_args *r) {
    const tg_arg *z = &r->in[0];
    TG_ARG_KERNEL(z, bce_d)(z->numel, z->value, r->in[1].value, NULL, NULL, r->out.value);
}

/* ------------------------------------------------------ class labels -- */

/* The first of v.outer labels that is not an integer in [0, v.len), or
 * v.outer when all are; its value in *bad. */
static size_t bad_label(const tg_arg *labels, tg_axis_view v, double *bad) {
    for (size_t r = 0; r < v.outer; r++) {
        double l = tg__arg_elem(labels, labels->value, r);
        if (!(l >= 0 && l < (double)v.len && l == floor(l))) {
            *bad = l;
            return r;
        }
    }
    return v.outer;
}

static void describe_label(char *why, size_t len, size_t row, double label, size_t classes) {
    if (label == floor(label))
        snprintf(why, len, "row %zu: label %.10g is out of range for %zu classes (0..%zu)", row,
                 label, classes, classes - 1);
    else
        snprintf(why, len, "row %zu: label %.10g is not an integer class index", row, label);
}

/* Labels have the logits' shape without the last (class) axis: one per row. */
static int labels_shape(tg_node *out, char *why, size_t len) {
    tg_args a;
    tg__args_of(out, &a);
    const tg_arg *z = &a.in[0], *l = &a.in[1];
    if (z->ndim == 0) {
        snprintf(why, len, "a 0-d input has no class axis (logits of shape [C] or [B, C])");
        return TG_ERR_SHAPE;
    }
    bool fits = l->ndim == z->ndim - 1;
    for (int i = 0; fits && i < l->ndim; i++) fits = l->shape[i] == z->shape[i];
    if (!fits)
        return unequal_shapes(z, l, why, len,
                              "labels need the input's shape without its last (class) axis");
    double bad;
    tg_axis_view v = rows_of(z);
    size_t r = bad_label(l, v, &bad);
    if (r < v.outer) {
        describe_label(why, len, r, bad, v.len);
        return TG_ERR_ARG;
    }
    out->ndim = 0;
    return TG_OK;
}

/* Whether the labels are valid now; else records the error. On replay the
 * labels are new data, so forward and backward check them again. */
static bool labels_valid(const tg_args *a) {
    double bad;
    tg_axis_view v = rows_of(&a->in[0]);
    size_t r = bad_label(&a->in[1], v, &bad);
    if (r == v.outer) return true;
    char why[160];
    describe_label(why, sizeof why, r, bad, v.len);
    tg_fail(a->tape, TG_ERR_ARG, "%s: %s", a->op->name, why);
    return false;
}

static void set_nan(const tg_arg *y) {
    if (tg__arg_f64(y))
        *(double *)y->value = NAN;
    else
        *(float *)y->value = NAN;
}

/* The label losses' forward: kernel fwd(view, z, labels, cost), run only on
 * valid labels. */
#define LABELLED_FORWARD(name)                                                             \
    static void name##_forward(tg_args *r) {                                               \
        if (!labels_valid(r)) {                                                            \
            set_nan(&r->out);                                                              \
            return;                                                                        \
        }                                                                                  \
        TG_ARG_KERNEL(&r->out, name##_fwd)(rows_of(&r->in[0]), r->in[0].value,             \
                                           r->in[1].value, r->out.value);                  \
    }
LABELLED_FORWARD(nll)
LABELLED_FORWARD(ce)

static void nll_backward(tg_args *r) {
    const tg_arg *z = &r->in[0];
    if (!z->grad || !labels_valid(r)) return;
    TG_ARG_KERNEL(z, nll_bwd)(rows_of(z), z->value, r->in[1].value, r->out.grad, z->grad);
}

/* cross_entropy's fused backward reads the labels; its derivative op
 * cross_entropy_da(z, onehot) the one-hot rows, recorded from them. */
static void ce_backward(tg_args *r) {
    const tg_arg *z = &r->in[0];
    if (!z->grad || !labels_valid(r)) return;
    TG_ARG_KERNEL(z, ce_d)(rows_of(z), z->value, r->in[1].value, NULL, r->out.grad, z->grad);
}
static void ce_da_forward(tg_args *r) {
    const tg_arg *z = &r->in[0];
    TG_ARG_KERNEL(z, ce_d)(rows_of(z), z->value, NULL, r->in[1].value, NULL, r->out.value);
}

tg_node *tg_labels(tg_node *logits, const int32_t *labels) {
    if (!logits) return NULL;
    tg_tape *t = tg__tape_of(logits);
    if (t->status) return &t->poison;
    if (tg__stale(logits)) {
        tg_fail(t, TG_ERR_STATE,
                "labels: the logits (node %zu) were recorded before tg_tape_reset() and are gone",
                tg__id(logits));
        return &t->poison;
    }
    int64_t shape[TG_MAX_DIMS];
    int nd = tg_shape(logits, shape);
    if (nd < 1) {
        tg_fail(t, TG_ERR_SHAPE, "labels: 0-d logits have no class axis");
        return &t->poison;
    }
    tg_node *l = tg_input(t, tg_node_dtype(logits), nd - 1, shape, NULL);
    if (t->status || !labels) return l;
    void *v = tg__value_of(l); /* 1-d logits give compact 0-d labels */
    for (int64_t r = 0, rows = tg_numel(l); r < rows; r++) {
        if (tg_node_dtype(l) == TG_F64)
            ((double *)v)[r] = labels[r];
        else
            ((float *)v)[r] = (float)labels[r];
    }
    return l;
}

/* The constant [0, 1, ..., k-1] of like's dtype on like's tape. */
static tg_node *class_index(tg_node *like, int64_t k) {
    tg_node *index = tg_input(tg__tape_of(like), tg_node_dtype(like), 1, &k, NULL);
    if (tg__tape_of(like)->status) return index;
    void *v = tg_value(index);
    for (int64_t j = 0; j < k; j++) {
        if (tg_node_dtype(index) == TG_F64)
            ((double *)v)[j] = (double)j;
        else
            ((float *)v)[j] = (float)j;
    }
    return index;
}

tg_node *tg_labels_from_onehot(tg_node *onehot) {
    if (!onehot) return NULL;
    tg_tape *t = tg__tape_of(onehot);
    if (t->status) return &t->poison;
    int64_t shape[TG_MAX_DIMS];
    int nd = tg__stale(onehot) ? 0 : tg_shape(onehot, shape);
    if (nd < 1) /* tg_sum_axis names the problem */
        return tg_sum_axis(onehot, -1);
    tg_node *index = class_index(onehot, shape[nd - 1]);
    /* Exact: a one-hot row holds one 1 and zeros, and sums run in double. */
    return tg_sum_axis(tg_mul(onehot, index), -1);
}

/* [j = label_r] of z's shape, recorded as eq(labels as [..., 1], [0..C-1])
 * so that a replay follows new labels; no gradient flows into the labels. */
static tg_node *onehot_of(tg_node *z, tg_node *labels) {
    int64_t shape[TG_MAX_DIMS];
    int nd = tg_shape(z, shape);
    tg_node *index = class_index(z, shape[nd - 1]);
    shape[nd - 1] = 1;
    return tg_eq(tg_reshape(labels, nd, shape), index);
}

/* -------------------------------------------------------------- huber -- */

/* a and y of equal shapes; delta one element, > 0 as in PyTorch (checked
 * when recorded; a NaN delta passes and makes the cost NaN). The shape of
 * huber_da: a's. */
static int huber_inputs(tg_node *out, char *why, size_t len) {
    tg_args r;
    tg__args_of(out, &r);
    const tg_arg *a = &r.in[0], *y = &r.in[1], *delta = &r.in[2];
    if (!tg__arg_same_shape(a, y))
        return unequal_shapes(a, y, why, len, "prediction and target need equal shapes");
    char sd[64];
    if (delta->numel != 1) {
        snprintf(why, len, "delta %s: needs one element", tg__arg_shape_str(delta, sd));
        return TG_ERR_SHAPE;
    }
    double d = tg__arg_elem(delta, delta->value, 0);
    if (d <= 0) {
        snprintf(why, len, "delta %.10g: must be > 0", d);
        return TG_ERR_ARG;
    }
    return TG_OK;
}

static int huber_shape(tg_node *out, char *why, size_t len) {
    int rc = huber_inputs(out, why, len);
    if (!rc) out->ndim = 0;
    return rc;
}

/* huber_dc, the derivative by delta: delta's shape. */
static int huber_dc_shape(tg_node *out, char *why, size_t len) {
    int rc = huber_inputs(out, why, len);
    if (rc) return rc;
    int64_t shape[TG_MAX_DIMS];
    int nd = tg_shape(tg__in(out, 2), shape);
    return tg_set_shape(out, nd, shape);
}

static void huber_forward(tg_args *r) {
    const tg_arg *a = &r->in[0];
    TG_ARG_KERNEL(a, huber_fwd)(a->numel, a->value, r->in[1].value, r->in[2].value,
                                r->out.value);
}

static void huber_backward(tg_args *r) {
    const tg_arg *a = &r->in[0], *y = &r->in[1], *delta = &r->in[2];
    TG_ARG_KERNEL(a, huber_d)(a->numel, a->value, y->value, delta->value, r->out.grad, a->grad,
                              y->grad, delta->grad);
}
static void huber_da_forward(tg_args *r) {
    const tg_arg *a = &r->in[0];
    TG_ARG_KERNEL(a, huber_d)(a->numel, a->value, r->in[1].value, r->in[2].value, NULL,
                              r->out.value, NULL, NULL);
}
static void huber_dc_forward(tg_args *r) {
    const tg_arg *a = &r->in[0];
    TG_ARG_KERNEL(a, huber_d)(a->numel, a->value, r->in[1].value, r->in[2].value, NULL, NULL,
                              NULL, r->out.value);
}

enum {
    C_MSE, C_XENT, C_BCE, C_NLL, C_CE, C_HUBER,
    /* the derivative ops, by input: a, b, c the first, second, third */
    C_XENT_DA, C_XENT_DB, C_BCE_DA, C_BCE_DB, C_CE_DA, C_HUBER_DA, C_HUBER_DC, C_COUNT
};
extern const tg_op tg_loss_ops[];

/* The derivative op `which` on the inputs of cost c. */
static tg_node *partial(int which, tg_node *c) {
    const tg_op *op = &tg_loss_ops[which];
    tg_node *in[3] = {tg__in(c, 0), tg__in(c, 1), op->arity == 3 ? tg__in(c, 2) : NULL};
    return tg__apply_n(op, op->arity, in, 0, -1, NULL);
}
static tg_node *ce_partial(tg_node *c) {
    tg_node *z = tg__in(c, 0);
    return tg__apply(&tg_loss_ops[C_CE_DA], z, onehot_of(z, tg__in(c, 1)), 0);
}

/* vjp rules (tg_grad): g times the derivative ops; mse's and nll_loss's,
 * one op each, are written here. Labels get none. */
static void mse_vjp(tg_node *c, tg_node *g, tg_node **gin) {
    tg_node *a = tg__in(c, 0), *y = tg__in(c, 1);
    tg_node *ga = tg_mul(tg_scale(g, 1.0 / node_batch_rows(a)), tg_sub(a, y));
    if (tg_requires_grad(a)) gin[0] = ga;
    if (tg_requires_grad(y)) gin[1] = tg_neg(ga);
}
static void xent_vjp(tg_node *c, tg_node *g, tg_node **gin) {
    if (tg_requires_grad(tg__in(c, 0))) gin[0] = tg_mul(g, partial(C_XENT_DA, c));
    if (tg_requires_grad(tg__in(c, 1))) gin[1] = tg_mul(g, partial(C_XENT_DB, c));
}
static void bce_vjp(tg_node *c, tg_node *g, tg_node **gin) {
    if (tg_requires_grad(tg__in(c, 0))) gin[0] = tg_mul(g, partial(C_BCE_DA, c));
    if (tg_requires_grad(tg__in(c, 1))) gin[1] = tg_mul(g, partial(C_BCE_DB, c));
}
static void nll_vjp(tg_node *c, tg_node *g, tg_node **gin) {
    tg_node *p = tg__in(c, 0), *l = tg__in(c, 1);
    if (tg_requires_grad(p))
        gin[0] = tg_mul(tg_scale(g, -1.0 / node_rows(p)), onehot_of(p, l));
}
static void ce_vjp(tg_node *c, tg_node *g, tg_node **gin) {
    if (tg_requires_grad(tg__in(c, 0))) gin[0] = tg_mul(g, ce_partial(c));
}
/* y's derivative is minus a's: the fused backward subtracts g dC/da. */
static void huber_vjp(tg_node *c, tg_node *g, tg_node **gin) {
    tg_node *a = tg__in(c, 0), *y = tg__in(c, 1), *delta = tg__in(c, 2);
    if (tg_requires_grad(a) || tg_requires_grad(y)) {
        tg_node *ga = tg_mul(g, partial(C_HUBER_DA, c));
        if (tg_requires_grad(a)) gin[0] = ga;
        if (tg_requires_grad(y)) gin[1] = tg_neg(ga);
    }
    if (tg_requires_grad(delta)) gin[2] = tg_mul(g, partial(C_HUBER_DC, c));
}

/* jvp rules (tg_jvp): the sum of each derivative op times its input's
 * tangent (NULL: none). */
static tg_node *along(tg_node *p, tg_node *t) { return tg_sum(tg_mul(p, t)); }
static tg_node *plus(tg_node *s, tg_node *u) { return s ? tg_add(s, u) : u; }
static tg_node *xent_jvp(tg_node *c, tg_node *const *tin) {
    tg_node *s = tin[0] ? along(partial(C_XENT_DA, c), tin[0]) : NULL;
    return tin[1] ? plus(s, along(partial(C_XENT_DB, c), tin[1])) : s;
}
static tg_node *bce_jvp(tg_node *c, tg_node *const *tin) {
    tg_node *s = tin[0] ? along(partial(C_BCE_DA, c), tin[0]) : NULL;
    return tin[1] ? plus(s, along(partial(C_BCE_DB, c), tin[1])) : s;
}
static tg_node *ce_jvp(tg_node *c, tg_node *const *tin) {
    return tin[0] ? along(ce_partial(c), tin[0]) : NULL;
}
static tg_node *huber_jvp(tg_node *c, tg_node *const *tin) {
    tg_node *s = NULL;
    if (tin[0] || tin[1]) {
        tg_node *p = partial(C_HUBER_DA, c);
        if (tin[0]) s = along(p, tin[0]);
        if (tin[1]) s = s ? tg_sub(s, along(p, tin[1])) : tg_neg(along(p, tin[1]));
    }
    return tin[2] ? plus(s, along(partial(C_HUBER_DC, c), tin[2])) : s;
}

/* ------------------------------------------------ second derivatives -- */
/*
 * The vjp rules of the derivative ops, in public ops (so differentiable
 * again): the one place a loss's derivative is stated a second time. The
 * derivative ops read a 0-d z as one row of one class, whose softmax is the
 * constant 1: nothing flows into z there.
 */
static tg_node *row_sum(tg_node *x, tg_node *z) {
    int last = tg_ndim(z) - 1;
    return tg__unreduce(tg_sum_axis(x, last), z, last);
}
/* w pulled back through s = softmax(z) along the last axis: s (w - rowsum(s w)). */
static tg_node *through_softmax(tg_node *s, tg_node *w, tg_node *z) {
    return tg_mul(s, tg_sub(w, row_sum(tg_mul(s, w), z)));
}
/* softmax_xent_da = (s Y - y)/B, s = softmax(z), Y = rowsum(y):
 * z gets s (w - rowsum(s w)) with w = g Y/B; y gets (rowsum(g s) - g)/B. */
static void xent_da_vjp(tg_node *p, tg_node *g, tg_node **gin) {
    tg_node *z = tg__in(p, 0), *y = tg__in(p, 1);
    if (!tg_ndim(z)) return;
    double k = 1.0 / node_batch_rows(z);
    tg_node *s = tg_softmax(z, tg_ndim(z) - 1);
    if (tg_requires_grad(z)) gin[0] = through_softmax(s, tg_scale(tg_mul(g, row_sum(y, z)), k), z);
    if (tg_requires_grad(y)) gin[1] = tg_scale(tg_sub(row_sum(tg_mul(g, s), z), g), k);
}
/* softmax_xent_db = -log_softmax(z)/B: z gets (s rowsum(g) - g)/B. */
static void xent_db_vjp(tg_node *p, tg_node *g, tg_node **gin) {
    tg_node *z = tg__in(p, 0);
    if (!tg_ndim(z) || !tg_requires_grad(z)) return;
    tg_node *s = tg_softmax(z, tg_ndim(z) - 1);
    gin[0] = tg_scale(tg_sub(tg_mul(s, row_sum(g, z)), g), 1.0 / node_batch_rows(z));
}
/* bce_with_logits_da = (sigmoid(z) - y)/N: z gets g sigmoid(z) sigmoid(-z)/N
 * (sigmoid's derivative, without 1 - sigmoid(z) rounding to 0); y -g/N. */
static void bce_da_vjp(tg_node *p, tg_node *g, tg_node **gin) {
    tg_node *z = tg__in(p, 0), *y = tg__in(p, 1);
    double k = 1.0 / (double)tg_numel(z);
    if (tg_requires_grad(z))
        gin[0] = tg_scale(tg_mul(g, tg_mul(tg_sigmoid(z), tg_sigmoid(tg_neg(z)))), k);
    if (tg_requires_grad(y)) gin[1] = tg_scale(g, -k);
}
/* bce_with_logits_db = -z/N: z gets -g/N. */
static void bce_db_vjp(tg_node *p, tg_node *g, tg_node **gin) {
    tg_node *z = tg__in(p, 0);
    if (tg_requires_grad(z)) gin[0] = tg_scale(g, -1.0 / (double)tg_numel(z));
}
/* cross_entropy_da = (s - onehot)/R: z gets s (w - rowsum(s w)) with
 * w = g/R; the one-hot rows -g/R (none when they come from labels). */
static void ce_da_vjp(tg_node *p, tg_node *g, tg_node **gin) {
    tg_node *z = tg__in(p, 0), *hot = tg__in(p, 1);
    double k = 1.0 / node_rows(z);
    if (tg_ndim(z) && tg_requires_grad(z))
        gin[0] = through_softmax(tg_softmax(z, tg_ndim(z) - 1), tg_scale(g, k), z);
    if (tg_requires_grad(hot)) gin[1] = tg_scale(g, -k);
}
/* huber_da = clamp(d, -delta, delta)/N, d = a - y: a gets g [|d| < delta]/N
 * (PyTorch's second derivative, 0 at |d| = delta), y minus that, delta
 * sum(g sign(d) [|d| > delta])/N. delta is read through a 0-d sum of its one
 * element, so that it broadcasts against any shape of a. */
static void huber_da_vjp(tg_node *p, tg_node *g, tg_node **gin) {
    tg_node *a = tg__in(p, 0), *y = tg__in(p, 1), *delta = tg__in(p, 2);
    double k = 1.0 / (double)tg_numel(a);
    tg_node *d = tg_sub(a, y), *ad = tg_abs(d), *dl = tg_sum(delta);
    if (tg_requires_grad(a) || tg_requires_grad(y)) {
        tg_node *ga = tg_scale(tg_mul(g, tg_lt(ad, dl)), k);
        if (tg_requires_grad(a)) gin[0] = ga;
        if (tg_requires_grad(y)) gin[1] = tg_neg(ga);
    }
    if (tg_requires_grad(delta))
        gin[2] = tg__sum_to(tg_scale(tg_sum(tg_mul(g, tg_mul(tg_sign(d), tg_gt(ad, dl)))), k),
                            delta);
}
/* huber_dc = sum relu(|d| - delta)/N: a gets g sign(d) [|d| > delta]/N, y
 * minus that, delta -g count(|d| > delta)/N. */
static void huber_dc_vjp(tg_node *p, tg_node *g, tg_node **gin) {
    tg_node *a = tg__in(p, 0), *y = tg__in(p, 1), *delta = tg__in(p, 2);
    double k = 1.0 / (double)tg_numel(a);
    tg_node *d = tg_sub(a, y), *gs = tg_sum(g), *outside = tg_gt(tg_abs(d), tg_sum(delta));
    if (tg_requires_grad(a) || tg_requires_grad(y)) {
        tg_node *ga = tg_scale(tg_mul(gs, tg_mul(tg_sign(d), outside)), k);
        if (tg_requires_grad(a)) gin[0] = ga;
        if (tg_requires_grad(y)) gin[1] = tg_neg(ga);
    }
    if (tg_requires_grad(delta))
        gin[2] = tg__sum_to(tg_scale(tg_mul(gs, tg_sum(outside)), -k), delta);
}

/* The derivative ops: backward and tangent derived from the vjp rule. */
#define DROW(name, arity, shape, fn) {name, arity, shape, fn##_forward, NULL, fn##_vjp, NULL}
const tg_op tg_loss_ops[] = {
    [C_MSE] = {"mse", 2, same_shapes_to_scalar, mse_forward, mse_backward, mse_vjp, NULL},
    [C_XENT] = {"softmax_xent", 2, same_shapes_to_scalar, xent_forward, xent_backward, xent_vjp,
                xent_jvp},
    [C_BCE] = {"bce_with_logits", 2, equal_shapes_to_mean, bce_forward, bce_backward, bce_vjp,
               bce_jvp},
    [C_NLL] = {"nll_loss", 2, labels_shape, nll_forward, nll_backward, nll_vjp, NULL},
    [C_CE] = {"cross_entropy", 2, labels_shape, ce_forward, ce_backward, ce_vjp, ce_jvp},
    [C_HUBER] = {"huber", 3, huber_shape, huber_forward, huber_backward, huber_vjp, huber_jvp},
    [C_XENT_DA] = DROW("softmax_xent_da", 2, equal_shapes, xent_da),
    [C_XENT_DB] = DROW("softmax_xent_db", 2, equal_shapes, xent_db),
    [C_BCE_DA] = DROW("bce_with_logits_da", 2, equal_shapes, bce_da),
    [C_BCE_DB] = DROW("bce_with_logits_db", 2, equal_shapes, bce_db),
    [C_CE_DA] = DROW("cross_entropy_da", 2, equal_shapes, ce_da),
    [C_HUBER_DA] = DROW("huber_da", 3, huber_inputs, huber_da),
    [C_HUBER_DC] = DROW("huber_dc", 3, huber_dc_shape, huber_dc),
};
const int tg_loss_count = C_COUNT;

tg_node *tg_mse(tg_node *a, tg_node *y) { return tg__apply(&tg_loss_ops[C_MSE], a, y, 0); }
tg_node *tg_softmax_xent(tg_node *z, tg_node *y) {
    return tg__apply(&tg_loss_ops[C_XENT], z, y, 0);
}
tg_node *tg_bce_with_logits(tg_node *z, tg_node *y) {
    return tg__apply(&tg_loss_ops[C_BCE], z, y, 0);
}
tg_node *tg_nll_loss(tg_node *logp, tg_node *labels) {
    return tg__apply(&tg_loss_ops[C_NLL], logp, labels, 0);
}
tg_node *tg_cross_entropy(tg_node *logits, tg_node *labels) {
    return tg__apply(&tg_loss_ops[C_CE], logits, labels, 0);
}
tg_node *tg_huber(tg_node *a, tg_node *y, double delta) {
    tg_node *d = a ? tg__const_like(a, delta) : NULL;
    return tg__apply3(&tg_loss_ops[C_HUBER], a, y, d, 0);
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

/* log sum_k e^(z_k - m) of one row, with m the row's maximum in *m: the
 * shift keeps every exponent <= 0, and the maximum's own term 1 is left out
 * of the sum and added by log1p, so a row with one dominant logit keeps its
 * tiny log-sum (log1p(e^-40) = 4.2e-18, where log(1 + e^-40) rounds to 0).
 * A NaN anywhere makes it NaN. */
static T S(row_shifted_lse)(const T *z, size_t k, T *m) {
    size_t top = 0;
    for (size_t j = 1; j < k; j++) top = z[j] > z[top] ? j : top;
    *m = z[top];
    T s = 0;
    for (size_t j = 0; j < k; j++) s += j == top ? 0 : exp(z[j] - *m);
    return log1p(s);
}

/* log sum_k e^(z_k) of one row. */
static T S(row_lse)(const T *z, size_t k) {
    T m, l = S(row_shifted_lse)(z, k, &m);
    return m + l;
}

/* What the derivatives need of a row, formed as PyTorch's softmax and
 * log_softmax form them from the row's maximum m:
 *   softmax_j = e^(z_j - m) / sum,  log_softmax_j = (z_j - m) - log_sum,
 * sum = 1 + s (s: the other terms), log_sum = log1p(s). m - m, 0 for a
 * finite m, makes both NaN for a row holding +inf (PyTorch: inf - inf);
 * a NaN, or a row of -inf, gives NaN through s. */
typedef struct {
    T m, sum, log_sum;
} S(row_stats);
static S(row_stats) S(row_stats_of)(const T *z, size_t k) {
    size_t top = 0;
    for (size_t j = 1; j < k; j++) top = z[j] > z[top] ? j : top;
    T m = z[top], s = 0;
    for (size_t j = 0; j < k; j++) s += j == top ? 0 : exp(z[j] - m);
    return (S(row_stats)){m, 1 + s + (m - m), log1p(s) + (m - m)};
}

/* out = d (g NULL: a derivative op's forward), or out += g d (the fused
 * backward): the one place each derivative is formed, so both get its bits. */
static inline void S(put)(T *out, const T *g, T d) {
    if (g)
        *out += *g * d;
    else
        *out = d;
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

/* softmax_xent: dC/dz = (softmax(z) ysum - y)/B, dC/dy = -log_softmax(z)/B
 * into gz and gy (either may be NULL). */
static void S(xent_d)(tg_axis_view v, size_t rows, const void *vz, const void *vy,
                      const void *g, void *vgz, void *vgy) {
    const T *z = vz, *y = vy;
    T *gz = vgz, *gy = vgy, b = (T)rows;
    for (size_t r = 0; r < v.outer; r++) {
        const T *zr = z + r * v.len, *yr = y + r * v.len;
        S(row_stats) st = S(row_stats_of)(zr, v.len);
        T ysum = 0;
        for (size_t j = 0; j < v.len && gz; j++) ysum += yr[j];
        for (size_t j = 0; j < v.len; j++) {
            size_t i = r * v.len + j;
            if (gz) S(put)(&gz[i], g, (exp(zr[j] - st.m) / st.sum * ysum - yr[j]) / b);
            if (gy) S(put)(&gy[i], g, -((zr[j] - st.m) - st.log_sum) / b);
        }
    }
}

/* e^-|z| never overflows: max(z, 0) - z y is z (1 - y) or -z y by the sign
 * of z (so z = +inf, y = 0 gives +inf, as PyTorch), and the log term is at
 * most log 2. */
static inline T S(bce_term)(T z, T y) {
    return (z > 0 ? z * (1 - y) : -z * y) + log1p(exp(-fabs(z)));
}

static inline T S(sigmoid_of)(T z) {
    T e = exp(-fabs(z));
    return z >= 0 ? 1 / (1 + e) : e / (1 + e);
}

static void S(bce_fwd)(size_t n, const void *vz, const void *vy, void *vc) {
    const T *z = vz, *y = vy;
    double c = 0;
    for (size_t i = 0; i < n; i++) c += S(bce_term)(z[i], y[i]);
    *(T *)vc = (T)(c / (double)n);
}

/* bce_with_logits: dC/dz = (sigmoid(z) - y)/N, dC/dy = -z/N. */
static void S(bce_d)(size_t n, const void *vz, const void *vy, const void *g, void *vgz,
                     void *vgy) {
    const T *z = vz, *y = vy;
    T *gz = vgz, *gy = vgy, rn = (T)n;
    for (size_t i = 0; i < n; i++) {
        if (gz) S(put)(&gz[i], g, (S(sigmoid_of)(z[i]) - y[i]) / rn);
        if (gy) S(put)(&gy[i], g, -z[i] / rn);
    }
}

/* The labels were checked: each is an integer in [0, v.len). */
static void S(nll_fwd)(tg_axis_view v, const void *vp, const void *vl, void *vc) {
    const T *p = vp, *l = vl;
    double c = 0;
    for (size_t r = 0; r < v.outer; r++) c -= p[r * v.len + (size_t)l[r]];
    *(T *)vc = (T)(c / (double)v.outer);
}

static void S(nll_bwd)(tg_axis_view v, const void *vp, const void *vl, const void *vg,
                       void *vgp) {
    (void)vp; /* the gradient does not depend on the values */
    const T *l = vl;
    T *gp = vgp, k = *(const T *)vg / (T)v.outer;
    for (size_t r = 0; r < v.outer; r++) gp[r * v.len + (size_t)l[r]] -= k;
}

/* Row r costs (m - z_label) + log sum e^(z - m): no rounding of m + log s
 * before the subtraction, so a confident correct row keeps its small cost. */
static void S(ce_fwd)(tg_axis_view v, const void *vz, const void *vl, void *vc) {
    const T *z = vz, *l = vl;
    double c = 0;
    for (size_t r = 0; r < v.outer; r++) {
        const T *zr = z + r * v.len;
        T m, lse = S(row_shifted_lse)(zr, v.len, &m);
        c += (double)(m - zr[(size_t)l[r]]) + lse;
    }
    *(T *)vc = (T)(c / (double)v.outer);
}

/* cross_entropy: dC/dz = (softmax(z) - hot)/R, hot = [j = label_r] from the
 * labels l (the fused backward) or the one-hot rows oh (cross_entropy_da). */
static void S(ce_d)(tg_axis_view v, const void *vz, const void *vl, const void *voh,
                    const void *g, void *vgz) {
    const T *z = vz, *l = vl, *oh = voh;
    T *gz = vgz, rn = (T)v.outer;
    for (size_t r = 0; r < v.outer; r++) {
        const T *zr = z + r * v.len;
        S(row_stats) st = S(row_stats_of)(zr, v.len);
        for (size_t j = 0; j < v.len; j++) {
            size_t i = r * v.len + j;
            T hot = oh ? oh[i] : (T)(j == (size_t)l[r]);
            S(put)(&gz[i], g, (exp(zr[j] - st.m) / st.sum - hot) / rn);
        }
    }
}

/* At |d| = delta both pieces give delta^2/2 and the slope d: the cost is
 * C^1, and PyTorch's gradient clamp(d, -delta, delta) is the derivative. */
static void S(huber_fwd)(size_t n, const void *va, const void *vy, const void *vd, void *vc) {
    const T *a = va, *y = vy, delta = *(const T *)vd;
    double c = 0;
    for (size_t i = 0; i < n; i++) {
        T d = a[i] - y[i], ad = fabs(d);
        c += ad < delta ? (T)0.5 * d * d : delta * (ad - (T)0.5 * delta);
    }
    *(T *)vc = (T)(c / (double)n);
}

/* huber: dC/da = clamp(d, -delta, delta)/N (PyTorch's; a NaN d stays NaN)
 * into ga, minus it into gy (the fused backward only), and dC/ddelta =
 * sum relu(|d| - delta)/N (NaN for a NaN d), summed in double, into gd. */
static void S(huber_d)(size_t n, const void *va, const void *vy, const void *vd, const void *g,
                       void *vga, void *vgy, void *vgd) {
    const T *a = va, *y = vy, delta = *(const T *)vd;
    T *ga = vga, *gy = vgy, rn = (T)n;
    double excess = 0;
    for (size_t i = 0; i < n; i++) {
        T d = a[i] - y[i], ad = fabs(d);
        T da = (ad > delta ? copysign(delta, d) : d) / rn;
        if (ga) S(put)(&ga[i], g, da);
        if (gy) gy[i] -= *(const T *)g * da;
        excess += ad <= delta ? 0 : ad - delta;
    }
    if (vgd) S(put)(vgd, g, (T)(excess / (double)n));
}

#endif
