/*
 * Forward mode: the tangent sweep behind tg_jvp().
 *
 * The mirror of tg_grad (grad.c): one forward pass over the positions from
 * the first wrt node to out gives every node that depends on a wrt node a
 * tangent *node*, recorded by its op's tangent rule (derive.c: stated, or
 * derived from the vjp) from its inputs' tangents. The tangents are ordinary
 * nodes: they replay with tg_forward(), and tg_grad() of them gives mixed
 * second derivatives.
 */
#include "internal.h"

int tg__tangents(tg_node *out, int n, tg_node *const *wrt, tg_node *const *v, tg_node **jv) {
    tg_tape *t = tg__tape_of(out);
    size_t top = tg__id(out), lo = top;
    for (int i = 0; i < n; i++)
        if (tg__id(wrt[i]) < lo) lo = tg__id(wrt[i]);
    size_t span = top - lo + 1;
    tg_node **tan = tg__calloc(span, sizeof *tan);
    if (!tan) return tg_fail(t, TG_ERR_NOMEM, "jvp: out of memory for %zu nodes", span);
    /* A wrt node's tangent is its v (summed when it is listed twice), and is
     * never replaced by one from its inputs: a tangent set before the sweep
     * reaches a position is a seed. */
    for (int i = 0; i < n; i++) {
        size_t p = tg__id(wrt[i]);
        if (p > top) continue; /* out cannot depend on it */
        tan[p - lo] = tan[p - lo] ? tg_add(tan[p - lo], v[i]) : v[i];
    }
    for (size_t p = lo; p <= top && !t->status; p++) {
        size_t in[3];
        int m = tg__inputs_of(t, p, in);
        tg_node *tin[3] = {NULL, NULL, NULL};
        bool any = false;
        for (int k = 0; k < m; k++) {
            tin[k] = in[k] >= lo ? tan[in[k] - lo] : NULL;
            any |= tin[k] != NULL;
        }
        if (tan[p - lo] || !any) continue;
        tg_node *y = tg__node_at(t, p);
        if (!tg__is_compact(y) && !y->op) { /* a bridge: the identity */
            tan[p - lo] = tin[0];
            continue;
        }
        const tg_op *op = tg__op(tg__is_compact(y) ? tg__kinds[tg__hcode(y) & TG_C_KIND].op : y->op);
        tg_node *r = tg__tangent(op, y, tin);
        /* A rule may give a tangent that broadcasts to the output's shape. */
        if (r && !t->status) r = tg__expand_like(r, y);
        tan[p - lo] = r;
    }
    if (!t->status) {
        tg_node *r = tan[span - 1];
        if (!r) { /* out does not depend on wrt: a zero tangent */
            int64_t shape[TG_MAX_DIMS];
            int nd = tg_shape(out, shape);
            r = tg_broadcast_to(tg__const_like(out, 0), nd, shape);
        }
        *jv = r;
    }
    tg__free(tan);
    return t->status;
}
