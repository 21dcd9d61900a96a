/*
 * The uses of an op's derivative that the op does not state itself.
 *
 * An op states its derivative once: as a vjp (the gradient recorded with
 * public ops) or a jvp (the tangent recorded with public ops), and may add a
 * fused backward kernel for speed. The engine needs three things from it:
 *
 *   backward  a kernel for tg_backward       missing: the vjp evaluated on a
 *                                             scratch tape
 *   vjp       a recorded rule for tg_grad    missing: the transpose of the
 *                                             jvp, d<jvp(u), g>/du
 *   jvp       a recorded rule for tg_jvp     missing: the transpose of the
 *                                             vjp, d<vjp(u), t>/du
 *
 * The two transposes hold because both rules are linear in u; u is a zero
 * leaf whose value never matters. A derived rule costs more than a stated
 * one (a few extra nodes, or a scratch recording per backward step), so the
 * built-in ops state the form their hot path needs.
 */
#include "rules.h"

/* A zero leaf of n's dtype and shape that wants a gradient. */
static tg_node *zero_like(tg_tape *t, const tg_node *n) {
    int64_t shape[TG_MAX_DIMS];
    int nd = tg_shape(n, shape);
    return tg_tensor(t, tg_node_dtype(n), nd, shape, NULL);
}

/* gin[k] = d<jvp(y; u), g>/du[k] for the inputs k that want a gradient. */
static void vjp_by_jvp(const tg_op *op, tg_node *y, tg_node *g, tg_node **gin) {
    tg_tape *t = tg__tape_of(y);
    tg_node *u[3] = {NULL, NULL, NULL}, *wrt[3];
    int idx[3], m = 0;
    for (int k = 0; k < op->arity; k++) {
        tg_node *x = tg_node_input(y, k);
        if (!tg_requires_grad(x)) continue;
        u[k] = wrt[m] = zero_like(t, x);
        idx[m++] = k;
    }
    if (!m) return;
    tg_node *ty = op->jvp(y, u);
    if (!ty || t->status) return; /* a zero tangent: no contribution */
    tg_node *res[3];
    if (tg_grad_nodes(tg_sum(tg_mul(ty, g)), m, wrt, res)) return;
    for (int i = 0; i < m; i++) gin[idx[i]] = res[i];
}

int tg__vjp(const tg_op *op, tg_node *y, tg_node *g, tg_node **gin) {
    tg_tape *t = tg__tape_of(y);
    if (op->vjp)
        op->vjp(y, g, gin);
    else if (op->jvp)
        vjp_by_jvp(op, y, g, gin);
    else
        return tg_fail(t, TG_ERR_STATE,
                       "grad: op '%s' has no differentiable backward rule: it states its "
                       "derivative only as a backward kernel (tg_op.vjp and tg_op.jvp are NULL), "
                       "so its gradient cannot be recorded",
                       op->name);
    return t->status;
}

/* d<vjp(y; u), t>/du: J t, from a rule that records J^T u. */
static tg_node *tangent_by_vjp(const tg_op *op, tg_node *y, tg_node *const *tin) {
    tg_tape *t = tg__tape_of(y);
    tg_node *u = zero_like(t, y), *gin[3] = {NULL, NULL, NULL}, *s = NULL;
    op->vjp(y, u, gin);
    for (int k = 0; k < op->arity && !t->status; k++) {
        if (!gin[k] || !tin[k]) continue;
        tg_node *p = tg_sum(tg_mul(gin[k], tin[k]));
        s = s ? tg_add(s, p) : p;
    }
    if (!s || t->status) return NULL;
    tg_node *r;
    return tg_grad_nodes(s, 1, &u, &r) ? NULL : r;
}

tg_node *tg__tangent(const tg_op *op, tg_node *y, tg_node *const *tin) {
    if (op->jvp) return op->jvp(y, tin);
    if (op->vjp) return tangent_by_vjp(op, y, tin);
    tg_fail(tg__tape_of(y), TG_ERR_STATE,
            "jvp: op '%s' has no tangent rule: it states its derivative only as a backward "
            "kernel (tg_op.vjp and tg_op.jvp are NULL)",
            op->name);
    return NULL;
}

/* ------------------------------------------------ derived backward -- */

/* The tape's scratch tape, made on first use and emptied for each use. */
static tg_tape *scratch(tg_tape *t) {
    if (!t->scratch) {
        t->scratch = tg_tape_new();
        if (!t->scratch) return NULL;
        tg_set_scalar_tape(t->scratch, 0); /* 64-byte nodes: views of t's memory */
    }
    tg_tape_reset(t->scratch);
    return t->scratch;
}

/* x's gradient += src, elementwise. */
static void add_into(const tg_arg *x, const void *src) {
    void *dst = x->grad;
    size_t k = x->numel;
    if (tg__arg_f64(x)) {
        double *d = dst;
        const double *s = src;
        for (size_t i = 0; i < k; i++) d[i] += s[i];
    } else {
        float *d = dst;
        const float *s = src;
        for (size_t i = 0; i < k; i++) d[i] += s[i];
    }
}

/* A view on s of x's value and gradient memory (none if it wants none). */
static tg_node *view_of(tg_tape *s, const tg_arg *x) {
    int64_t shape[TG_MAX_DIMS];
    for (int i = 0; i < x->ndim; i++) shape[i] = x->shape[i];
    return tg_view(s, x->dtype, x->ndim, shape, x->value, x->grad);
}

void tg__backward_derived(tg_node *n) {
    tg_tape *t = n->tape;
    const tg_op *op = tg__op(n->op);
    tg_tape *s = scratch(t);
    if (!s) {
        tg_fail(t, TG_ERR_NOMEM, "%s: out of memory for the scratch tape of its backward rule",
                op->name);
        return;
    }
    /* The node again on s, over views of its inputs (those that want a
     * gradient say so), and its gradient as a constant. Its forward runs
     * again: the rule reads y's inputs through y, a node with inputs. */
    tg_node *in[3] = {NULL, NULL, NULL}, *gin[3] = {NULL, NULL, NULL};
    int nin = op->arity;
    tg_args r;
    tg__args_of(n, &r);
    for (int k = 0; k < nin; k++) in[k] = view_of(s, &r.in[k]);
    tg_node *y = tg__apply_n(op, nin, in, n->aux, -1, NULL); /* aux: its axis */
    int64_t shape[TG_MAX_DIMS];
    int nd = tg_shape(y, shape);
    tg_node *g = tg_view(s, tg_node_dtype(y), nd, shape, n->grad, NULL);
    if (!s->status) tg__vjp(op, y, g, gin);
    for (int k = 0; k < nin && !s->status; k++) {
        if (!gin[k] || !r.in[k].grad) continue;
        tg_node *gk = tg__expand_like(gin[k], in[k]);
        if (s->status) break;
        add_into(&r.in[k], tg__value_of(gk));
    }
    if (s->status)
        tg_fail(t, s->status, "%s: backward rule derived from its vjp: %s", op->name,
                tg_status_message(s));
}

/* ------------------------------------------------- zero derivatives -- */

/* An op whose derivative is 0 (steps, comparisons) contributes +0 to each
 * input's gradient, as PyTorch's zeros do (never g * 0, which is NaN for an
 * infinite g); its recorded rule records nothing, and tg_grad gives +0
 * where nothing else contributes. */
void tg__zero_backward(tg_args *a) {
    for (int k = 0; k < a->op->arity; k++) {
        const tg_arg *x = &a->in[k];
        if (!x->grad) continue;
        bool w = x->fresh; /* -0 + +0 is +0, written again for an input listed twice */
        if (tg__arg_f64(x))
            for (size_t i = 0; i < x->numel; i++)
                ((double *)x->grad)[i] = (w ? 0.0 : ((double *)x->grad)[i]) + 0.0;
        else
            for (size_t i = 0; i < x->numel; i++)
                ((float *)x->grad)[i] = (w ? 0.0f : ((float *)x->grad)[i]) + 0.0f;
    }
}

void tg__zero_vjp(tg_node *y, tg_node *g, tg_node **gin) { (void)y, (void)g, (void)gin; }

/* ------------------------------------------------------ linear ops -- */

/* The tangent rule of an op linear in its input 0, its other inputs being
 * parameters (a slice's start, an index): the op itself on the tangent,
 * with the same parameters; shaped: and the same output shape, for the ops
 * whose shape is a parameter (reshape, broadcast_to, slice's length). */
static tg_node *linear(tg_node *y, tg_node *const *tin, bool shaped) {
    if (!tin[0]) return NULL;
    const tg_op *op = tg__op(y->op);
    tg_node *in[3] = {tin[0], NULL, NULL};
    for (int k = 1; k < op->arity; k++) in[k] = tg__in(y, k);
    int64_t shape[TG_MAX_DIMS];
    int nd = tg_shape(y, shape);
    return tg__apply_n(op, op->arity, in, y->aux, shaped ? nd : -1, shape);
}
tg_node *tg__linear_jvp(tg_node *y, tg_node *const *tin) { return linear(y, tin, false); }
tg_node *tg__linear_shaped_jvp(tg_node *y, tg_node *const *tin) { return linear(y, tin, true); }
