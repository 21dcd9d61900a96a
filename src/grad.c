/*
 * Differentiable gradients: tg_grad(out, n, wrt, grads) records d(out)/d(wrt)
 * as new nodes on out's tape.
 *
 * It is the reverse sweep of sweep.c run symbolically. One forward pass over
 * the tape marks the nodes that depend on some wrt node; one backward pass
 * from out gives each marked node an accumulated gradient *node*, and calls
 * its op's vjp rule, which records the gradient contributions of the inputs
 * with public ops (for mul: g*b and g*a, reduced to each input's shape).
 * The nodes recorded are ordinary nodes, so they can be evaluated, replayed,
 * swept with tg_backward() or differentiated again by tg_grad().
 *
 * The rules live with each op's kernels in ops/, in the descriptor's vjp
 * field; the shape helpers they share are here.
 */
#include "internal.h"

/* ------------------------------------------------------ rule helpers -- */

tg_node *tg__const_like(tg_node *x, double v) {
    return tg_const_as(x->tape, tg_node_dtype(x), v);
}

/* g summed over the dimensions that broadcasting added or stretched, so that
 * it has like's shape: the adjoint of broadcasting. */
tg_node *tg__sum_to(tg_node *g, const tg_node *like) {
    if (g->tape->status) return &g->tape->poison;
    if (tg__same_shape(g, like)) return g;
    if (like->ndim == 0 || tg__numel(like) == 1) {
        tg_node *s = tg_sum(g);
        if (like->ndim == 0) return s;
        int64_t shape[TG_MAX_DIMS];
        return tg_reshape(s, tg_shape(like, shape), shape);
    }
    /* Leading dimensions go first, then stretched ones from the last. */
    while (g->ndim > like->ndim) g = tg_sum_axis(g, 0);
    for (int i = like->ndim - 1; i >= 0 && !g->tape->status; i--) {
        if (like->u.shape[i] != 1 || g->u.shape[i] == 1) continue;
        int64_t shape[TG_MAX_DIMS];
        int nd = tg_shape(g, shape);
        shape[i] = 1;
        g = tg_reshape(tg_sum_axis(g, i), nd, shape);
    }
    return g;
}

/* g, the gradient of a reduction of x along axis (the axis removed, or all
 * of x for TG_AXIS_ALL), reshaped so that it broadcasts against x. */
tg_node *tg__unreduce(tg_node *g, const tg_node *x, int axis) {
    if (axis == TG_AXIS_ALL || x->ndim == 0) return g; /* 0-d broadcasts to anything */
    int64_t shape[TG_MAX_DIMS];
    int nd = tg_shape(x, shape);
    shape[axis] = 1;
    return tg_reshape(g, nd, shape);
}

/* g broadcast to x's full shape (not x * 0 + g, which is NaN where x is
 * infinite). */
tg_node *tg__expand_like(tg_node *g, tg_node *x) {
    if (tg__same_shape(g, x)) return g;
    int64_t shape[TG_MAX_DIMS];
    int nd = tg_shape(x, shape);
    return tg_broadcast_to(g, nd, shape);
}

/* A constant of n's shape and dtype, every element v. */
static tg_node *filled_like(tg_node *n, double v) {
    return tg__expand_like(tg__const_like(n, v), n);
}

/* ------------------------------------------------------------ tg_grad -- */

static int record_grads(tg_node *out, int n, tg_node *const *wrt, tg_node **grads);

int tg_grad_nodes(tg_node *out, int n, tg_node *const *wrt, tg_node **grads) {
    if (!out) return TG_ERR_NULL;
    int rc = record_grads(out, n, wrt, grads);
    if (rc && grads) /* never leave the caller an uninitialised node */
        for (int i = 0; i < n; i++) grads[i] = &out->tape->poison;
    return rc;
}

static int record_grads(tg_node *out, int n, tg_node *const *wrt, tg_node **grads) {
    tg_tape *t = out->tape;
    if (t->status) return t->status;
    if (n < 0 || (n > 0 && (!wrt || !grads)))
        return tg_fail(t, n < 0 ? TG_ERR_ARG : TG_ERR_NULL, "grad: %s",
                       n < 0 ? "n is negative" : "wrt or grads is NULL");
    if (out == &t->poison || tg__stale(out))
        return tg_fail(t, TG_ERR_STATE, "grad: output (node %u) was recorded before "
                       "tg_tape_reset() and is gone", (unsigned)out->id);
    if (tg__numel(out) != 1) {
        char s[64];
        return tg_fail(t, TG_ERR_STATE, "grad: output has shape %s; it must have one element",
                       tg__shape_str(out, s));
    }
    size_t lo = out->id;
    for (int i = 0; i < n; i++) {
        if (!wrt[i]) return tg_fail(t, TG_ERR_NULL, "grad: wrt[%d] is NULL", i);
        if (wrt[i]->tape != t)
            return tg_fail(t, TG_ERR_TAPE, "grad: wrt[%d] is on another tape than the output", i);
        if (tg__stale(wrt[i]))
            return tg_fail(t, TG_ERR_STATE, "grad: wrt[%d] (node %u) was recorded before "
                           "tg_tape_reset() and is gone", i, (unsigned)wrt[i]->id);
        if (!(wrt[i]->flags & TG_F_NEEDS_GRAD))
            return tg_fail(t, TG_ERR_ARG, "grad: wrt[%d] (node %u, %s) does not want a gradient: "
                           "make it with tg_scalar(), tg_tensor() or tg_view() with a gradient "
                           "buffer", i, (unsigned)wrt[i]->id, tg_node_op_name(wrt[i]));
        if (wrt[i]->id < lo) lo = wrt[i]->id;
    }
    size_t span = out->id - lo + 1;
    /* acc[i - lo]: the gradient node of node i so far; on[i - lo]: i depends on some wrt. */
    tg_node **acc = tg__calloc(span, sizeof *acc);
    unsigned char *on = tg__calloc(span, 1);
    if (!acc || !on) {
        tg__free(acc);
        tg__free(on);
        return tg_fail(t, TG_ERR_NOMEM, "grad: out of memory for %zu nodes", span);
    }
    for (int i = 0; i < n; i++)
        if (wrt[i]->id <= out->id) on[wrt[i]->id - lo] = 1; /* else out cannot depend on it */
    for (size_t i = lo; i <= out->id; i++) {
        tg_node *v = tg__node_at(t, i);
        for (int k = 0; v->op && !on[i - lo] && k < tg_node_arity(v); k++) {
            tg_node *in = tg__in(v, k);
            on[i - lo] = in->id >= lo && on[in->id - lo];
        }
    }
    if (on[span - 1]) acc[span - 1] = filled_like(out, 1);
    for (size_t i = out->id + 1; i-- > lo && !t->status;) {
        tg_node *v = tg__node_at(t, i), *g = acc[i - lo];
        if (!g || !v->op) continue;
        const tg_op *op = tg__op(v->op);
        if (!op->vjp) {
            tg_fail(t, TG_ERR_STATE,
                    "grad: op '%s' has no differentiable backward rule (tg_op.vjp), so its "
                    "gradient cannot be recorded", op->name);
            break;
        }
        tg_node *gin[3] = {NULL, NULL, NULL};
        op->vjp(v, g, gin);
        for (int k = 0; k < op->arity && !t->status; k++) {
            tg_node *in = tg__in(v, k);
            if (!gin[k] || in->id < lo || !on[in->id - lo]) continue;
            tg_node **a = &acc[in->id - lo];
            *a = *a ? tg_add(*a, gin[k]) : gin[k];
        }
    }
    for (int i = 0; i < n && !t->status; i++) {
        tg_node *g = wrt[i]->id <= out->id ? acc[wrt[i]->id - lo] : NULL;
        grads[i] = g ? g : filled_like(wrt[i], 0);
    }
    tg__free(acc);
    tg__free(on);
    return t->status;
}
