/* Argument views: what the engine hands an op's kernels in place of a node. */
#include "record.h"

static void view(const tg_node *n, tg_arg *x) {
    *x = (tg_arg){.value = n->value,
                  .grad = n->grad,
                  .shape = n->u.shape,
                  .numel = tg__numel(n),
                  .ndim = n->ndim,
                  .dtype = tg__f64(n) ? TG_F64 : TG_F32,
                  .fresh = (n->flags & TG_F_FRESH) != 0};
}

void tg__args_of(tg_node *n, tg_args *a) {
    a->op = tg__op(n->op);
    a->nin = a->op->arity;
    view(n, &a->out);
    for (int k = 0; k < a->nin; k++) {
        const tg_node *in = tg__in(n, k);
        a->in[k] = (tg_arg){0};
        if (!in) continue;
        view(in, &a->in[k]);
        if (!(in->flags & TG_F_NEEDS_GRAD)) a->in[k].grad = NULL; /* no leaf below wants one */
    }
    a->param = n->aux;
    a->tape = n->tape;
}

void tg__run_forward(tg_node *n) {
    tg_args a;
    tg__args_of(n, &a);
    a.op->forward(&a);
    n->value = a.out.value; /* a view op's forward points it */
}

void tg__run_backward(tg_node *n) {
    tg_args a;
    tg__args_of(n, &a);
    a.op->backward(&a);
}

void tg__arg_ready(tg_arg *x) {
    if (!x->fresh) return;
    if (x->dtype == TG_F64) {
        double *g = x->grad;
        for (size_t i = 0; i < x->numel; i++) g[i] = -0.0;
    } else {
        float *g = x->grad;
        for (size_t i = 0; i < x->numel; i++) g[i] = -0.0f;
    }
    x->fresh = 0;
}

tg_axis_view tg__arg_axis(const tg_arg *x, int axis) {
    tg_axis_view v = {1, x->numel, 1};
    if (axis == TG_AXIS_ALL) return v;
    v.len = (size_t)x->shape[axis];
    for (int i = 0; i < axis; i++) v.outer *= (size_t)x->shape[i];
    for (int i = axis + 1; i < x->ndim; i++) v.inner *= (size_t)x->shape[i];
    return v;
}

tg_axis_view tg__axis_view(const tg_node *n, int axis) {
    tg_arg x;
    view(n, &x);
    return tg__arg_axis(&x, axis);
}
