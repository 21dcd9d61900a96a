/* Internal structures shared by src/ and ops/; never installed. */
#ifndef TG_INTERNAL_H
#define TG_INTERNAL_H

#include "tapegrad.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdint.h>
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
};

/* aux value of reductions over all elements. */
#define TG_AXIS_ALL INT8_MIN

/*
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

#define TG_CHUNK_BITS 12
#define TG_CHUNK_NODES ((size_t)1 << TG_CHUNK_BITS)

typedef struct tg_block tg_block; /* data arena block (tape.c) */

struct tg_tape {
    tg_node **chunks; /* chunks[i] holds TG_CHUNK_NODES nodes */
    size_t nchunks, chunk_cap;
    size_t nnodes;
    tg_block *blocks, *cur; /* value/gradient memory, bump-allocated */
    size_t bytes;           /* heap bytes held */
    int status;
    bool check_numerics;
    /* op -> registry index, direct-mapped, so recording an op costs no hash
     * lookup or lock (apply.c). */
    struct {
        const tg_op *op;
        int index;
    } op_cache[32];
    tg_node poison;
    char message[256];
};

static inline tg_node *tg__node_at(const tg_tape *t, size_t i) {
    return &t->chunks[i >> TG_CHUNK_BITS][i & (TG_CHUNK_NODES - 1)];
}

/* Inputs. Ops of arity 3 (where, clamp) are rare, so their third input does
 * not widen every node: it sits in the tape memory just before the node's
 * value, which is then never inline (see tg__alloc_value). While the shape
 * rule runs, before the value exists, it waits in the unused grad field. */
static inline int tg__nin(const tg_node *n) { return n->flags & TG_F_IN3 ? 3 : 2; }
static inline tg_node *tg__in(const tg_node *n, int k) {
    if (k < 2) return n->in[k];
    return n->value ? ((tg_node *const *)n->value)[-1] : (tg_node *)n->grad;
}

/* Whether n was recorded before the last reset of its tape (its position is
 * past the tape's end). The poison node of an earlier error counts as stale. */
static inline bool tg__stale(const tg_node *n) {
    return n->id >= n->tape->nnodes && n != &n->tape->poison;
}

static inline bool tg__f64(const tg_node *n) { return n->flags & TG_F_F64; }
static inline size_t tg__dsize(const tg_node *n) { return tg__f64(n) ? 8 : 4; }

/* Element i of data (n's value or gradient, of n's dtype) as a double. */
static inline double tg__elem(const tg_node *n, const void *data, size_t i) {
    return tg__f64(n) ? ((const double *)data)[i] : ((const float *)data)[i];
}

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

/* Tape memory (tape.c). NULL, or -1, with TG_ERR_NOMEM status on failure. */
void *tg__tape_alloc(tg_tape *t, size_t bytes);
int tg__grow(tg_tape *t);
/* The value of a 3-input node, with room for its third input before it,
 * which the caller stores. 0, or -1 with TG_ERR_NOMEM recorded. */
int tg__alloc_value_in3(tg_node *n);

/* A zeroed node appended to the tape, or NULL (status set). Inline: every
 * recorded node comes here. */
static inline tg_node *tg__new_node(tg_tape *t) {
    if ((t->nnodes >> TG_CHUNK_BITS) == t->nchunks && tg__grow(t)) return NULL;
    tg_node *n = tg__node_at(t, t->nnodes);
    *n = (tg_node){.tape = t, .id = (uint32_t)t->nnodes++};
    return n;
}
void tg__pop_node(tg_tape *t);

/* Points a node at memory for its value: inline for 0-d nodes. 0, or -1
 * with TG_ERR_NOMEM recorded. Inline: every recorded node comes here. */
static inline int tg__alloc_value(tg_node *n) {
    if (n->ndim == 0 && !(n->flags & TG_F_IN3)) {
        n->value = &n->u.inl[0];
        return 0;
    }
    if (n->flags & TG_F_IN3) return tg__alloc_value_in3(n);
    n->value = tg__tape_alloc(n->tape, tg__numel(n) * tg__dsize(n));
    return n->value ? 0 : -1;
}

/* Zeroes a node's gradient, without a call for the scalars of scalar tapes. */
static inline void tg__clear_grad(tg_node *n) {
    if (n->ndim == 0 && tg__f64(n))
        *(double *)n->grad = 0;
    else
        memset(n->grad, 0, tg__numel(n) * tg__dsize(n));
}

/* Gives a node gradient memory on first use, its contents undefined; 0-d
 * nodes keep it inline. 0, or -1 with TG_ERR_NOMEM recorded. */
static inline int tg__grad_memory(tg_node *n) {
    if (!n->grad)
        n->grad = n->ndim == 0 ? (void *)&n->u.inl[1]
                               : tg__tape_alloc(n->tape, tg__numel(n) * tg__dsize(n));
    return n->grad ? 0 : -1;
}

/* As tg__grad_memory, zeroed when it is new. */
static inline int tg__alloc_grad(tg_node *n) {
    if (n->grad) return 0;
    if (tg__grad_memory(n)) return -1;
    tg__clear_grad(n);
    return 0;
}

/* Sets TG_ERR_NUMERIC, naming n's op with its operands ("log(-1)"), if n's
 * value (input < 0) or the gradient of its input k is not all finite. */
void tg__check_finite(tg_node *n, int input);

/* A tensor seen as [outer, len, inner] around one axis (TG_AXIS_ALL: all
 * elements in one run of len), for reductions and softmax. */
typedef struct tg_axis_view {
    size_t outer, len, inner;
} tg_axis_view;
tg_axis_view tg__axis_view(const tg_node *n, int axis);

/* axis of a, negative counting from the end, checked: the axis in [0, ndim),
 * or -1 after recording an error naming who. */
int tg__axis(tg_node *a, int axis, const char *who);

/* Records op on its inputs in[0..arity) with parameter aux: the one
 * constructor behind every op. in has nin >= 1 entries; those past the op's
 * arity must be NULL. With ndim >= 0 the output's shape is set to shape before the
 * shape rule runs, for ops whose result shape is a parameter (reshape). */
tg_node *tg__apply_n(const tg_op *op, int nin, tg_node *const *in, int aux, int ndim,
                     const int64_t *shape);
static inline tg_node *tg__apply(const tg_op *op, tg_node *a, tg_node *b, int aux) {
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

/* Helpers of the vjp rules (grad.c). */
tg_node *tg__const_like(tg_node *x, double v); /* a 0-d constant of x's dtype */
tg_node *tg__sum_to(tg_node *g, const tg_node *like); /* undoes broadcasting */
tg_node *tg__unreduce(tg_node *g, const tg_node *x, int axis); /* axis kept as 1 */
tg_node *tg__expand_like(tg_node *g, tg_node *x);  /* g broadcast to x's shape */

/* Registry (registry.c). */
int tg__op_index(const tg_op *op); /* -1 when unregistered */
extern const tg_op *tg__ops[256]; /* by index; [0] is NULL (leaves) */
static inline const tg_op *tg__op(int index) { return tg__ops[index]; }
int tg__registry_init(void); /* TG_OK or the error that stopped it */

/* Allocation (alloc.c). */
void *tg__malloc(size_t n);
void *tg__calloc(size_t count, size_t size);
void *tg__realloc(void *p, size_t n);
void tg__free(void *p);

/* Kernels written once for a type T are compiled for both dtypes by including
 * the file again with T defined (see ops/). TG_KERNEL picks the variant for a
 * node: TG_KERNEL(n, relu_forward)(args...). */
#define TG_KERNEL(n, fn) (tg__f64(n) ? fn##_f64 : fn##_f32)

#endif
