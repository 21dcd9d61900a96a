/*
 * Recording an op: the registry by index and its per-tape cache (registry.c,
 * apply.c), tg__apply, the constructor behind every op, and the memo of a
 * vector tangent sweep. Internal; never installed.
 */
#ifndef TG_RECORD_H
#define TG_RECORD_H

#include "scalar.h"

/* Registered ops by index; [0] is NULL (leaves). */
extern const tg_op *tg__ops[256];
static inline const tg_op *tg__op(int index) { return tg__ops[index]; }
/* The registry index of the op of any handle, 0 for a leaf. */
static inline int tg__op_index_of(const tg_node *h) {
    return tg__is_compact(h) ? tg__kinds[tg__hcode(h) & TG_C_KIND].op : h->op;
}

/* Records op on its inputs in[0..arity) with parameter aux: the one
 * constructor behind every op. in has nin >= 1 entries; those past the op's
 * arity must be NULL. With ndim >= 0 the output's shape is set to shape before the
 * shape rule runs, for ops whose result shape is a parameter (reshape). */
tg_node *tg__apply_n(const tg_op *op, int nin, tg_node *const *in, int aux, int ndim,
                     const int64_t *shape);
static inline tg_node *tg__apply(const tg_op *op, tg_node *a, tg_node *b, int aux) {
    if (a && tg__is_compact(a) && !aux) { /* the scalar tape's hot path, short */
        tg_node *r = tg__scalar_op(op, a, b);
        if (r) return r;
    }
    tg_node *in[2] = {a, b};
    return tg__apply_n(op, 2, in, aux, -1, NULL);
}
static inline tg_node *tg__apply3(const tg_op *op, tg_node *a, tg_node *b, tg_node *c,
                                  int aux) {
    tg_node *in[3] = {a, b, c};
    return tg__apply_n(op, 3, in, aux, -1, NULL);
}
static inline tg_node *tg__apply_as(const tg_op *op, tg_node *a, tg_node *b, int aux, int ndim,
                                    const int64_t *shape) {
    tg_node *in[2] = {a, b};
    return tg__apply_n(op, 2, in, aux, ndim, shape);
}

/* The view of any handle: a 64-byte node's fields, or a compact record's
 * value and gradient in its chunk (a 0-d float64, whose gradient memory
 * the sweep readies before a 64-byte op adds into it). An input that
 * wants no gradient shows none. Inline, as everything down to the kernel
 * call: every op of a tape of 64-byte scalars goes through here twice. */
static inline void tg__view(const tg_node *h, tg_arg *x) {
    if (tg__is_compact(h)) {
        tg_schunk *c = tg__hsc(h);
        size_t l = tg__hindex(h);
        *x = (tg_arg){.value = &c->slot[l].v, .numel = 1, .dtype = TG_F64};
        if (c->grad && (c->code[l] & TG_C_NG)) x->grad = &c->grad[l];
        return;
    }
    x->value = h->value;
    x->grad = h->flags & TG_F_NEEDS_GRAD ? h->grad : NULL;
    x->shape = h->u.shape;
    x->numel = h->ndim ? tg__numel(h) : 1;
    x->ndim = h->ndim;
    x->dtype = tg__f64(h) ? TG_F64 : TG_F32;
    x->fresh = (h->flags & TG_F_FRESH) != 0;
}
/* Only a view's shape (ndim and extents), for a shape rule that reads
 * nothing else: every binary op's runs it for each input. */
static inline void tg__shape_view(const tg_node *h, tg_arg *x) {
    bool compact = tg__is_compact(h);
    x->ndim = compact ? 0 : h->ndim;
    x->shape = compact ? NULL : h->u.shape;
}
/* The argument views of node n's op: its output and inputs. The shape
 * rules and the rules in ops/ read inputs this way too, never as nodes.
 * (The output of a backward call always wants its gradient: a sweep runs
 * the rules of nodes that do.) */
static inline void tg__args_of(tg_node *n, tg_args *a) {
    a->op = tg__op(n->op);
    tg__view(n, &a->out);
    for (int k = 0; k < a->op->arity; k++) {
        const tg_node *in = tg__in(n, k);
        if (in)
            tg__view(in, &a->in[k]);
        else
            a->in[k] = (tg_arg){0};
    }
    a->param = n->aux;
    a->tape = n->tape;
}
/* Runs node n's op's forward, or its stated backward, on n's argument
 * views; forward takes back the output's value pointer, which a view op
 * (reshape, a leading-row slice) sets. */
static inline void tg__run_forward(tg_node *n) {
    tg_args a;
    tg__args_of(n, &a);
    a.op->forward(&a);
    n->value = a.out.value;
}
static inline void tg__run_backward(tg_node *n) {
    tg_args a;
    tg__args_of(n, &a);
    a.op->backward(&a);
}

/* Registry (registry.c). */
int tg__op_index(const tg_op *op); /* -1 when unregistered */
/* The same through the tape's cache: the op's home slot, else a probe of
 * the next ones and the registry (apply.c). */
static inline size_t tg__op_slot(const tg_op *op) {
    return (size_t)(((uintptr_t)op * 0x9e3779b97f4a7c15u) >> 32) % TG_OP_CACHE;
}
int tg__op_index_probe(tg_tape *t, const tg_op *op);
static inline int tg__op_index_cached(tg_tape *t, const tg_op *op) {
    size_t h = tg__op_slot(op);
    return t->op_cache[h].op == op ? t->op_cache[h].index : tg__op_index_probe(t, op);
}
int tg__registry_init(void); /* TG_OK or the error that stopped it */
tg_node *tg__memo_find(tg_tape *t, const tg_op *op, int nin, tg_node *const *in, int aux);
void tg__memo_put(tg_tape *t, const tg_op *op, int nin, tg_node *const *in, int aux,
                  tg_node *out);

#endif
