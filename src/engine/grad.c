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
#include "rules.h"
#include "alloc.h"

/* ------------------------------------------------------ rule helpers -- */

tg_node *tg__const_like(tg_node *x, double v) {
    return tg__shared_const(tg__tape_of(x), tg_node_dtype(x), v, tg__is_compact(x));
}

/* g summed over the dimensions that broadcasting added or stretched, so that
 * it has like's shape: the adjoint of broadcasting. */
tg_node *tg__sum_to(tg_node *g, const tg_node *like) {
    tg_tape *t = tg__tape_of(g);
    if (t->status) return &t->poison;
    int64_t gs[TG_MAX_DIMS], ls[TG_MAX_DIMS];
    int gn = tg_shape(g, gs), ln = tg_shape(like, ls);
    if (!gn && !ln) return g; /* scalars, compact or not */
    if (!ln) return tg_sum(g);
    if (gn == ln && !memcmp(gs, ls, (size_t)gn * sizeof *gs)) return g;
    if (tg_numel(like) == 1) return tg_reshape(tg_sum(g), ln, ls);
    /* Leading dimensions go first, then stretched ones from the last. */
    for (; gn > ln; gn--) g = tg_sum_axis(g, 0);
    tg_shape(g, gs);
    for (int i = ln - 1; i >= 0 && gn == ln && !t->status; i--) {
        if (ls[i] != 1 || gs[i] == 1) continue;
        gs[i] = 1;
        g = tg_reshape(tg_sum_axis(g, i), gn, gs);
    }
    return g;
}

/* g, the gradient of a reduction of x along axis (the axis removed, or all
 * of x for TG_AXIS_ALL), reshaped so that it broadcasts against x. */
tg_node *tg__unreduce(tg_node *g, const tg_node *x, int axis) {
    if (axis == TG_AXIS_ALL || tg_ndim(x) == 0) return g; /* 0-d broadcasts to anything */
    int64_t shape[TG_MAX_DIMS];
    int nd = tg_shape(x, shape);
    shape[axis] = 1;
    return tg_reshape(g, nd, shape);
}

/* g broadcast to x's full shape (not x * 0 + g, which is NaN where x is
 * infinite). */
tg_node *tg__expand_like(tg_node *g, tg_node *x) {
    if (!tg_ndim(x) && !tg_ndim(g)) return g;
    if (!tg__is_compact(g) && !tg__is_compact(x) && tg__same_shape(g, x)) return g;
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
        for (int i = 0; i < n; i++) grads[i] = &tg__tape_of(out)->poison;
    return rc;
}

int tg__inputs_of(tg_tape *t, size_t p, size_t *in) {
    tg_node *v = tg__node_at(t, p);
    int n = tg_node_arity(v);
    for (int k = 0; k < n; k++) in[k] = tg__id(tg_node_input(v, k));
    return n;
}

static int record_grads(tg_node *out, int n, tg_node *const *wrt, tg_node **grads) {
    tg_tape *t = tg__tape_of(out);
    if (t->status) return t->status;
    if (n < 0 || (n > 0 && (!wrt || !grads)))
        return tg_fail(t, n < 0 ? TG_ERR_ARG : TG_ERR_NULL, "grad: %s",
                       n < 0 ? "n is negative" : "wrt or grads is NULL");
    if (out == &t->poison || tg__stale(out))
        return tg_fail(t, TG_ERR_STATE, "grad: output (node %zu) was recorded before "
                       "tg_tape_reset() and is gone", tg__id(out));
    if (tg_numel(out) != 1) {
        char s[64];
        return tg_fail(t, TG_ERR_STATE, "grad: output has shape %s; it must have one element",
                       tg__shape_str(out, s));
    }
    size_t top = tg__id(out), lo = top;
    for (int i = 0; i < n; i++) {
        if (!wrt[i]) return tg_fail(t, TG_ERR_NULL, "grad: wrt[%d] is NULL", i);
        if (tg__tape_of(wrt[i]) != t)
            return tg_fail(t, TG_ERR_TAPE, "grad: wrt[%d] is on another tape than the output", i);
        if (tg__stale(wrt[i]))
            return tg_fail(t, TG_ERR_STATE, "grad: wrt[%d] (node %zu) was recorded before "
                           "tg_tape_reset() and is gone", i, tg__id(wrt[i]));
        if (!tg__needs_grad(wrt[i]))
            return tg_fail(t, TG_ERR_ARG, "grad: wrt[%d] (node %zu, %s) does not want a gradient: "
                           "make it with tg_scalar(), tg_tensor() or tg_view() with a gradient "
                           "buffer", i, tg__id(wrt[i]), tg_node_op_name(wrt[i]));
        if (tg__id(wrt[i]) < lo) lo = tg__id(wrt[i]);
    }
    size_t span = top - lo + 1;
    /* acc[i - lo]: the gradient node of node i so far; on[i - lo]: i depends on some wrt. */
    tg_node **acc = tg__calloc(span, sizeof *acc);
    unsigned char *on = tg__calloc(span, 1);
    if (!acc || !on) {
        tg__free(acc);
        tg__free(on);
        return tg_fail(t, TG_ERR_NOMEM, "grad: out of memory for %zu nodes", span);
    }
    for (int i = 0; i < n; i++)
        if (tg__id(wrt[i]) <= top) on[tg__id(wrt[i]) - lo] = 1; /* else out cannot depend on it */
    for (size_t i = lo; i <= top; i++) {
        size_t in[3];
        for (int k = 0, m = tg__inputs_of(t, i, in); !on[i - lo] && k < m; k++)
            on[i - lo] = in[k] >= lo && on[in[k] - lo];
    }
    if (on[span - 1]) acc[span - 1] = filled_like(out, 1);
    for (size_t i = top + 1; i-- > lo && !t->status;) {
        tg_node *v = tg__node_at(t, i), *g = acc[i - lo];
        size_t in[3];
        if (!g || !tg__inputs_of(t, i, in)) continue;
        const tg_op *op = tg__op(tg__op_index_of(v));
        tg_node *gin[3] = {NULL, NULL, NULL};
        if (tg__vjp(op, v, g, gin)) break;
        for (int k = 0; k < op->arity && !t->status; k++) {
            if (!gin[k] || in[k] < lo || !on[in[k] - lo]) continue;
            tg_node **a = &acc[in[k] - lo];
            *a = *a ? tg_add(*a, gin[k]) : gin[k];
        }
    }
    for (int i = 0; i < n && !t->status; i++) {
        tg_node *g = tg__id(wrt[i]) <= top ? acc[tg__id(wrt[i]) - lo] : NULL;
        grads[i] = g ? g : filled_like(wrt[i], 0);
    }
    tg__free(acc);
    tg__free(on);
    return t->status;
}
