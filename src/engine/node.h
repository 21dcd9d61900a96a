/*
 * A node as the kernels see it: the 64-byte struct, its flags, its inputs and
 * shape, and the dtype dispatch of kernels written once over a type T.
 * Internal to src/ and ops/; never installed.
 */
#ifndef TG_NODE_H
#define TG_NODE_H

#include "args.h"
#include "tapegrad.h"

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Node flags. */
enum {
    TG_F_F64 = 1u << 0,        /* dtype is double (else float) */
    TG_F_NEEDS_GRAD = 1u << 1, /* some leaf below wants a gradient */
    TG_F_REACHED = 1u << 2,    /* touched by the running sweep, not yet processed */
    TG_F_EXT_VALUE = 1u << 3,  /* value is caller memory (tg_view) */
    TG_F_EXT_GRAD = 1u << 4,   /* grad is caller memory (tg_view) */
    TG_F_IN3 = 1u << 5,        /* a third input, stored just before the value */
    TG_F_FRESH = 1u << 7,      /* gradient memory holds nothing of the running sweep yet */
};

/* aux value of reductions over all elements. */
#define TG_AXIS_ALL INT8_MIN

/*
 * Two kinds of node share the tape's positions (scalar.c has the whole
 * story). A compact scalar is a float64 0-d node stored as a record in the
 * tape's scalar chunks; its handle is not a pointer but a tagged integer
 * (tg__is_compact). Every other node is a 64-byte tg_node, its handle its
 * address, and its position's record says so (TG_K_FULL). A 64-byte node's
 * inputs are handles of either kind: the kernels, the shape rules and the
 * rules in ops/ read them as argument views (args.h, record.h) or through
 * the public accessors and ops, never as nodes.
 *
 * A node is 64 bytes. A 0-d node keeps its value and gradient inline, in the
 * space a tensor uses for its shape, so a scalar tape costs 64 bytes a node
 * and no other allocation.
 */
struct tg_node {
    tg_tape *tape;
    tg_node *in[2];
    void *value;
    void *grad; /* NULL until the first sweep that reaches the node */
    union {
        int32_t shape[TG_MAX_DIMS]; /* ndim > 0 */
        double inl[2];              /* ndim == 0: value, gradient */
    } u;
    uint32_t id;   /* position on the tape */
    uint8_t op;    /* registry index; 0 = leaf */
    uint8_t flags; /* TG_F_* */
    uint8_t ndim;
    int8_t aux; /* op parameter (an axis) */
};
_Static_assert(sizeof(struct tg_node) == 64, "a node is one cache line");

/* Inputs. Ops of arity 3 (where, clamp) are rare, so their third input does
 * not widen every node: it sits in the tape memory just before the node's
 * value, which is then never inline (see tg__alloc_value). While the shape
 * rule runs, before the value exists, it waits in the unused grad field. */
static inline int tg__nin(const tg_node *n) { return n->flags & TG_F_IN3 ? 3 : 2; }
static inline tg_node *tg__in(const tg_node *n, int k) {
    if (k < 2) return n->in[k];
    return n->value ? ((tg_node *const *)n->value)[-1] : (tg_node *)n->grad;
}


/* Fields of a 64-byte node (as the kernels read them). */
static inline bool tg__f64(const tg_node *n) { return n->flags & TG_F_F64; }
static inline size_t tg__dsize(const tg_node *n) { return tg__f64(n) ? 8 : 4; }

static inline bool tg__same_shape(const tg_node *a, const tg_node *b) {
    if (a->ndim != b->ndim) return false;
    for (int i = 0; i < a->ndim; i++)
        if (a->u.shape[i] != b->u.shape[i]) return false;
    return true;
}

static inline size_t tg__numel(const tg_node *n) {
    size_t k = 1;
    for (int i = 0; i < n->ndim; i++) k *= (size_t)n->u.shape[i];
    return k;
}

/* Formats a shape as "[2,3]" into buf (at least 64 bytes); returns buf. */
char *tg__shape_str(const tg_node *n, char *buf);

/* Sets TG_ERR_NUMERIC, naming n's op with its operands ("log(-1)"), if n's
 * value (input < 0) or the gradient of its input k is not all finite. */
void tg__check_finite(tg_node *n, int input);


/* axis of a, negative counting from the end, checked: the axis in [0, ndim),
 * or -1 after recording an error naming who. */
int tg__axis(tg_node *a, int axis, const char *who);

#endif
