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
    TG_F_BRIDGE = 1u << 6,     /* a copy of a compact scalar (in[0]) for a 64-byte op */
};

/* aux value of reductions over all elements. */
#define TG_AXIS_ALL INT8_MIN

/*
 * Two kinds of node share the tape's positions (scalar.c has the whole
 * story). A compact scalar is a float64 0-d node stored as a record in the
 * tape's scalar chunks; its handle is not a pointer but a tagged integer
 * (tg__is_compact). Every other node is a 64-byte tg_node, its handle its
 * address, and its position's record says so (TG_K_FULL). Kernels in ops/
 * only ever see 64-byte nodes: an op with a compact input that is not itself
 * compact gets a bridge node (TG_F_BRIDGE) in its place.
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

/* Chunk sizes are small, so that a small tape is small (one scalar: one
 * 17 KB record chunk); the tables of chunks double as a tape grows. */
#define TG_CHUNK_BITS 8
#define TG_CHUNK_NODES ((size_t)1 << TG_CHUNK_BITS)

typedef struct tg_block tg_block; /* data arena block (tape.c) */

/* Compact scalar records, TG_SC_LEN positions a chunk, structure of arrays.
 * Position p is record p & TG_SC_MASK of chunk p >> TG_SC_BITS. A record is
 * its value (for a 64-byte node's position: the node's address), its input
 * positions and its code byte; the op's partial derivatives follow in the
 * tape's partial chunks, in position order. */
#define TG_SC_BITS 10
#define TG_SC_LEN ((size_t)1 << TG_SC_BITS)
#define TG_SC_MASK (TG_SC_LEN - 1)
typedef union tg_slot {
    double v;
    tg_node *node;
} tg_slot;
typedef struct tg_schunk {
    tg_slot slot[TG_SC_LEN];
    uint32_t in[2][TG_SC_LEN];
    uint8_t code[TG_SC_LEN];
    double *grad;  /* TG_SC_LEN gradients, from the first sweep that reaches the chunk */
    size_t part0;  /* partials recorded before the chunk's first position */
} tg_schunk;

/* The code byte: wants a gradient, kind (0x80 is free). */
#define TG_C_NG 0x40u
#define TG_C_KIND 0x3fu
enum { TG_K_FULL = 0, TG_K_LEAF = 1, TG_K_OPS = 2, TG_K_MAX = 64 };

/* How the sweep applies a kind's partials (scalar.c). */
enum {
    TG_CLS_FULL,  /* a 64-byte node */
    TG_CLS_LEAF,  /* nothing to propagate */
    TG_CLS_NONE,  /* an op whose derivative is 0 (steps, comparisons) */
    TG_CLS_ADD,   /* g, g */
    TG_CLS_SUB,   /* g, -g */
    TG_CLS_NEG,   /* -g */
    TG_CLS_MUL,   /* g b, g a: from the input values, nothing stored */
    TG_CLS_P1,    /* g p0 */
    TG_CLS_P2,    /* g p0, g p1 */
    TG_CLS_ROUTE, /* g p0, g p1, each skipped where p is 0 (maximum, minimum) */
};

/* An op's rule on float64 scalars, given by its family (ops/): the value
 * from x[0..arity), and the partials the class stores into p. */
typedef struct tg_scalar_rule {
    uint8_t cls;
    double (*eval)(const double *x, double *p);
} tg_scalar_rule;

/* The kinds of compact record: [TG_K_OPS..) are ops (scalar.c). */
typedef struct tg_kind {
    uint8_t cls, nparts, arity, op; /* op: registry index */
    double (*eval)(const double *x, double *p);
} tg_kind;
extern tg_kind tg__kinds[TG_K_MAX];
extern uint8_t tg__nparts[128];    /* code & 0x7f -> partials stored */
extern uint8_t tg__kind_cls[TG_K_MAX]; /* kind -> its class, for the sweep */
#define TG_PART_BITS 10
#define TG_PART_LEN ((size_t)1 << TG_PART_BITS)

#define TG_OP_CACHE 64
struct tg_tape {
    tg_node **chunks; /* chunks[i] holds TG_CHUNK_NODES 64-byte nodes */
    size_t nchunks, chunk_cap;
    size_t nfull;     /* 64-byte nodes in use */
    size_t nnodes;    /* positions */
    tg_schunk **sc;   /* the positions' records */
    size_t nsc, sc_cap;
    double **parts;   /* partial derivatives, TG_PART_LEN a chunk */
    size_t npart, nparts_chunks, parts_cap;
    size_t grad_valid; /* compact gradients below this position are defined */
    uint32_t slot;     /* in tg__tapes (the handles' tape); 0: no compact records */
    bool scalar_tape;  /* tg_set_scalar_tape */
    tg_node *bridge;   /* the last bridge made, reused for the same scalar */
    tg_block *blocks, *cur; /* value/gradient memory, bump-allocated */
    size_t bytes;           /* heap bytes held */
    int status;
    bool check_numerics;
    /* op -> registry index, direct-mapped, so recording an op costs no hash
     * lookup or lock (apply.c). */
    struct {
        const tg_op *op;
        int index;
    } op_cache[TG_OP_CACHE];
    tg_tape *scratch;     /* derived backward rules record here (derive.c) */
    uint64_t epoch;       /* bumped by resets and rewinds: which marks hold */
    struct tg_kept *kept; /* leaf gradients moved out of rewound memory (tape.c) */
    struct tg_memo *memo; /* during a vector tangent sweep (tangent.c) */
    tg_node poison;
    char message[256];
};

/* ------------------------------------------------------- positions -- */

static inline tg_schunk *tg__sc(const tg_tape *t, size_t p) { return t->sc[p >> TG_SC_BITS]; }
static inline uint8_t tg__code(const tg_tape *t, size_t p) {
    return tg__sc(t, p)->code[p & TG_SC_MASK];
}

/* Registered ops by index; [0] is NULL (leaves). */
extern const tg_op *tg__ops[256];
static inline const tg_op *tg__op(int index) { return tg__ops[index]; }

/* Handles of compact records: tape slot, position, tag bit. 64-bit only. */
#define TG_SLOT_BITS 15
extern tg_tape *tg__tapes[1u << TG_SLOT_BITS];
static inline bool tg__is_compact(const tg_node *h) { return (uintptr_t)h & 1; }
static inline tg_tape *tg__ctape(const tg_node *h) { return tg__tapes[(uint64_t)(uintptr_t)h >> 33]; }
static inline uint32_t tg__cpos(const tg_node *h) { return (uint32_t)((uintptr_t)h >> 1); }
static inline tg_node *tg__chandle(const tg_tape *t, size_t p) {
    return (tg_node *)(uintptr_t)(((uint64_t)t->slot << 33) | ((uint64_t)p << 1) | 1);
}

/* The handle of position p: the 64-byte node, or the compact record. */
static inline tg_node *tg__node_at(const tg_tape *t, size_t p) {
    tg_schunk *c = tg__sc(t, p);
    size_t l = p & TG_SC_MASK;
    return (c->code[l] & TG_C_KIND) == TG_K_FULL ? c->slot[l].node : tg__chandle(t, p);
}

/* What any handle (compact or not) is: for code outside the kernels. */
static inline tg_tape *tg__tape_of(const tg_node *h) {
    return tg__is_compact(h) ? tg__ctape(h) : h->tape;
}
static inline size_t tg__id(const tg_node *h) { return tg__is_compact(h) ? tg__cpos(h) : h->id; }
static inline tg_schunk *tg__hsc(const tg_node *h) { return tg__sc(tg__ctape(h), tg__cpos(h)); }
static inline uint8_t tg__hcode(const tg_node *h) { return tg__hsc(h)->code[tg__cpos(h) & TG_SC_MASK]; }
static inline double *tg__hvalue(const tg_node *h) {
    return &tg__hsc(h)->slot[tg__cpos(h) & TG_SC_MASK].v;
}
/* A compact gradient the last sweep did not reach (or, for a leaf, that no
 * sweep has reached) holds this signalling NaN, which arithmetic never
 * produces (it returns quiet NaNs): the sweep's mark of "reached", and
 * tg_grad's NULL. */
#define TG_GRAD_UNSET 0x7ff40000deadbeefULL
static inline bool tg__grad_unset(double g) {
    union {
        double d;
        uint64_t u;
    } b = {g};
    return b.u == TG_GRAD_UNSET;
}
/* A compact node's gradient memory, NULL when no sweep has reached it. */
static inline double *tg__hgrad(const tg_node *h) {
    tg_tape *t = tg__ctape(h);
    size_t p = tg__cpos(h);
    if (p >= t->grad_valid || !(tg__code(t, p) & TG_C_NG)) return NULL;
    double *g = &tg__sc(t, p)->grad[p & TG_SC_MASK];
    return tg__grad_unset(*g) ? NULL : g;
}
static inline bool tg__needs_grad(const tg_node *h) {
    return tg__is_compact(h) ? tg__hcode(h) & TG_C_NG : h->flags & TG_F_NEEDS_GRAD;
}
static inline bool tg__is_leaf(const tg_node *h) {
    return tg__is_compact(h) ? (tg__hcode(h) & TG_C_KIND) == TG_K_LEAF : !h->op;
}
static inline bool tg__is_bridge(const tg_node *h) {
    return !tg__is_compact(h) && (h->flags & TG_F_BRIDGE);
}
static inline void *tg__value_of(const tg_node *h) {
    return tg__is_compact(h) ? (void *)tg__hvalue(h) : h->value;
}
static inline void *tg__grad_of(const tg_node *h) {
    return tg__is_compact(h) ? (void *)tg__hgrad(h) : h->grad;
}
/* The 64-byte node of a handle: h itself, or a bridge recorded for a
 * compact h (poison on failure). Recording code calls this before reading
 * an input's fields. */
tg_node *tg__full(tg_node *h);

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
    if (tg__is_compact(n)) return tg__cpos(n) >= tg__ctape(n)->nnodes;
    return n->id >= n->tape->nnodes && n != &n->tape->poison;
}

/* Fields of a 64-byte node (as the kernels read them). */
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

/* Adds a chunk of records (the slow path of tg__new_pos). */
int tg__sc_grow(tg_tape *t);
/* Appends a position, its record at (*c)->...[l] uninitialised, or -1
 * (status set). */
static inline int tg__new_pos(tg_tape *t, tg_schunk **c, size_t *l) {
    size_t p = t->nnodes;
    if ((p >> TG_SC_BITS) == t->nsc && tg__sc_grow(t)) return -1;
    *c = t->sc[p >> TG_SC_BITS];
    *l = p & TG_SC_MASK;
    if (!*l) (*c)->part0 = t->npart; /* where the chunk's partials start */
    t->nnodes = p + 1;
    return 0;
}

/* A zeroed 64-byte node appended to the tape, or NULL (status set). */
static inline tg_node *tg__new_node(tg_tape *t) {
    if ((t->nfull >> TG_CHUNK_BITS) == t->nchunks && tg__grow(t)) return NULL;
    tg_schunk *c;
    size_t l;
    if (tg__new_pos(t, &c, &l)) return NULL;
    tg_node *n = &t->chunks[t->nfull >> TG_CHUNK_BITS][t->nfull & (TG_CHUNK_NODES - 1)];
    t->nfull++;
    *n = (tg_node){.tape = t, .id = (uint32_t)(t->nnodes - 1)};
    c->slot[l].node = n;
    c->code[l] = TG_K_FULL;
    return n;
}
/* Drops the 64-byte nodes recorded after the first mark positions (an op
 * that failed after allocating its node and its inputs' bridges). */
void tg__pop_to(tg_tape *t, size_t mark);

/* Compact records (scalar.c). Whether t records float64 scalars compactly
 * now; a compact leaf (NULL on failure, status set); the compact result of
 * op on compact inputs, or NULL when op has no compact rule (the caller
 * records a 64-byte node). */
static inline bool tg__compact_on(const tg_tape *t) {
    return t->slot && t->scalar_tape && !t->check_numerics;
}
tg_node *tg__scalar_leaf(tg_tape *t, double value, bool wants_grad);
/* The compact record of op on a (compact) and b (NULL for a unary op), or
 * NULL when it takes the general path (no compact rule, other inputs,
 * errors). */
tg_node *tg__scalar_op(const tg_op *op, tg_node *a, tg_node *b);
/* The sweep's and replay's part (scalar.c): gradient arrays for positions
 * <= out, zeroed where first swept (-1, status set, on failure); the number
 * of partials recorded up to position p; the value and partials of the
 * compact record at p recomputed, *part its first partial's index. */
int tg__scalar_prepare(tg_tape *t, size_t out);
size_t tg__part_index(const tg_tape *t, size_t p);
void tg__scalar_forward(tg_tape *t, size_t p, size_t *part);
/* tg_forward() from position from on (sweep.c): the values of the nodes
 * before it are current. */
int tg__forward_from(tg_tape *t, size_t from);
/* The same for the positions [from, to) only: a function object replays
 * the part of its tape that an evaluation needs (fn.c). */
int tg__forward_range(tg_tape *t, size_t from, size_t to);
static inline double tg__part(const tg_tape *t, size_t i) {
    return t->parts[i >> TG_PART_BITS][i & (TG_PART_LEN - 1)];
}
/* Handle slots (0: none left) and the compact storage's lifetime. */
uint32_t tg__slot_take(tg_tape *t);
void tg__slot_give(uint32_t slot);
void tg__scalar_free(tg_tape *t);
int tg__scalar_init(void);

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

/* Zeroes a 64-byte node's gradient, without a call for 0-d float64. */
static inline void tg__clear_grad(tg_node *n) {
    if (n->ndim == 0 && tg__f64(n))
        *(double *)n->grad = 0;
    else
        memset(n->grad, 0, tg__numel(n) * tg__dsize(n));
}

/* Readies a node's gradient for a sweep's contributions: -0, the additive
 * identity (x + -0 is x for every x, -0 included, where +0 would turn a
 * contribution of -0 into +0), so that adding the first contribution stores
 * it exactly, as writing it would, and no kernel needs a "first" variant. */
static inline void tg__identity_grad(tg_node *n) {
    size_t k = tg__numel(n);
    if (tg__f64(n)) {
        double *g = n->grad;
        for (size_t i = 0; i < k; i++) g[i] = -0.0;
    } else {
        float *g = n->grad;
        for (size_t i = 0; i < k; i++) g[i] = -0.0f;
    }
}

/* Gives a node gradient memory on first use, its contents undefined; 0-d
 * nodes keep it inline. 0, or -1 with TG_ERR_NOMEM recorded. */
static inline int tg__grad_memory(tg_node *n) {
    if (!n->grad)
        n->grad = n->ndim == 0 ? (void *)&n->u.inl[1]
                               : tg__tape_alloc(n->tape, tg__numel(n) * tg__dsize(n));
    return n->grad ? 0 : -1;
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

/* Helpers of the vjp rules (grad.c). */
tg_node *tg__const_like(tg_node *x, double v); /* a 0-d constant of x's dtype */
tg_node *tg__sum_to(tg_node *g, const tg_node *like); /* undoes broadcasting */
tg_node *tg__unreduce(tg_node *g, const tg_node *x, int axis); /* axis kept as 1 */
tg_node *tg__expand_like(tg_node *g, tg_node *x);  /* g broadcast to x's shape */

/* The uses of an op's one derivative statement (derive.c): the vjp rule
 * (stated, or the transpose of the jvp; the status), the tangent rule
 * (stated, or the transpose of the vjp; NULL for a zero tangent or an
 * error), and the backward kernel of an op that states none. */
int tg__vjp(const tg_op *op, tg_node *y, tg_node *g, tg_node **gin);
tg_node *tg__tangent(const tg_op *op, tg_node *y, tg_node *const *tin);
void tg__backward_derived(tg_node *n);
/* The rules of an op whose derivative is 0: +0 into each input's gradient,
 * and nothing recorded (derive.c). */
void tg__zero_backward(tg_node *n);
void tg__zero_vjp(tg_node *y, tg_node *g, tg_node **gin);
/* The tangent rule of an op linear in input 0 (its other inputs parameters):
 * the op itself on the tangent; shaped: with y's shape given, for the ops
 * whose output shape is a parameter (derive.c). */
tg_node *tg__linear_jvp(tg_node *y, tg_node *const *tin);
tg_node *tg__linear_shaped_jvp(tg_node *y, tg_node *const *tin);
static inline void tg__backward(tg_node *n) {
    const tg_op *op = tg__op(n->op);
    if (op->backward)
        op->backward(n);
    else
        tg__backward_derived(n);
}
/* The input positions of position p as the symbolic sweeps follow them (a
 * bridge's is its scalar); returns how many (grad.c). */
int tg__inputs_of(tg_tape *t, size_t p, size_t *in);
/* jv[o*k + j] = J_o v[j*n .. j*n+n) for each of the nout outputs and j < k,
 * by one forward pass of tangent rules (tangent.c); arguments checked by
 * the caller. The tape's status.
 * While it runs, t->memo shares what the k directions record alike: apply.c
 * returns a node already recorded for the same op, inputs and parameter. */
int tg__tangents(int nout, tg_node *const *outs, int n, tg_node *const *wrt, int k,
                 tg_node *const *v, tg_node **jv);
tg_node *tg__memo_find(tg_tape *t, const tg_op *op, int nin, tg_node *const *in, int aux);
void tg__memo_put(tg_tape *t, const tg_op *op, int nin, tg_node *const *in, int aux,
                  tg_node *out);

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
