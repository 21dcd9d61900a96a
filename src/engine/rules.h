/*
 * Derivatives: the helpers the ops' rules are written with (grad.c), the
 * uses of an op's one derivative statement (derive.c), and the sweeps that
 * run them (sweep.c, grad.c, tangent.c). Internal; never installed.
 */
#ifndef TG_RULES_H
#define TG_RULES_H

#include "record.h"

/* A constant the library records for itself (an op's integer parameter, a
 * rule's coefficient): one node per value and dtype on a tape, shared by
 * the ops that use it (node.c). for_compact: an input of an op on compact
 * scalars (a compact record where the tape makes them); otherwise a 64-byte
 * node. */
tg_node *tg__shared_const(tg_tape *t, tg_dtype dtype, double value, bool for_compact);
/* Helpers of the vjp rules (grad.c). */
tg_node *tg__const_like(tg_node *x, double v); /* a 0-d constant of x's dtype */
tg_node *tg__sum_to(tg_node *g, const tg_node *like); /* undoes broadcasting */
tg_node *tg__unreduce(tg_node *g, const tg_node *x, int axis); /* axis kept as 1 */
tg_node *tg__expand_like(tg_node *g, tg_node *x);  /* g broadcast to x's shape */
/* Whether a rule may record a fused op of several operands (addcmul, a
 * unary op's fused tangent) on these (NULL: none) rather than its parts,
 * which give the same bits: not on compact scalars, which record the parts
 * as compact records (a fused op of three inputs is a 64-byte node, and so
 * would be everything computed from it). */
static inline bool tg__fusable(const tg_node *a, const tg_node *b, const tg_node *c) {
    return !(a && tg__is_compact(a)) && !(b && tg__is_compact(b)) && !(c && tg__is_compact(c));
}
/* Whether a vector tangent sweep (tangent.c) is recording on x's tape: its
 * k directions share the nodes a rule records that do not depend on the
 * direction, such as an op's derivative node. */
static inline bool tg__sharing(const tg_node *x) { return tg__tape_of(x)->memo != NULL; }

/* The uses of an op's one derivative statement (derive.c): the vjp rule
 * (stated, or the transpose of the jvp; the status), the tangent rule
 * (stated, or the transpose of the vjp; NULL for a zero tangent or an
 * error), and the backward kernel of an op that states none. */
int tg__vjp(const tg_op *op, tg_node *y, tg_node *g, tg_node **gin);
tg_node *tg__tangent(const tg_op *op, tg_node *y, tg_node *const *tin);
void tg__backward_derived(tg_node *n);
/* The rules of an op whose derivative is 0: +0 into each input's gradient,
 * and nothing recorded (derive.c). */
void tg__zero_backward(tg_args *a);
void tg__zero_vjp(tg_node *y, tg_node *g, tg_node **gin);
/* The tangent rule of an op linear in input 0 (its other inputs parameters):
 * the op itself on the tangent; shaped: with y's shape given, for the ops
 * whose output shape is a parameter (derive.c). */
tg_node *tg__linear_jvp(tg_node *y, tg_node *const *tin);
tg_node *tg__linear_shaped_jvp(tg_node *y, tg_node *const *tin);
/* By registry index: the op's backward kernel writes a fresh input's
 * gradient (or readies it, tg__ready_grad) itself (registry.c). */
extern bool tg__fresh_writer[256];
static inline void tg__backward(tg_node *n) {
    const tg_op *op = tg__op(n->op);
    if (op->backward)
        tg__run_backward(n);
    else
        tg__backward_derived(n);
}
/* The input positions of position p; returns how many (grad.c). */
int tg__inputs_of(tg_tape *t, size_t p, size_t *in);
/* jv[o*k + j] = J_o v[j*n .. j*n+n) for each of the nout outputs and j < k,
 * by one forward pass of tangent rules (tangent.c); arguments checked by
 * the caller. The tape's status.
 * While it runs, t->memo shares what the k directions record alike: apply.c
 * returns a node already recorded for the same op, inputs and parameter. */
int tg__tangents(int nout, tg_node *const *outs, int n, tg_node *const *wrt, int k,
                 tg_node *const *v, tg_node **jv);
/* tg_forward() from position from on (sweep.c): the values of the nodes
 * before it are current. */
int tg__forward_from(tg_tape *t, size_t from);
/* The same for the positions [from, to) only: a function object replays
 * the part of its tape that an evaluation needs (fn.c). */
int tg__forward_range(tg_tape *t, size_t from, size_t to);

#endif
