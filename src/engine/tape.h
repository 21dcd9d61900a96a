/*
 * The tape's storage: positions, the record of each position, 64-byte node
 * chunks, value and gradient memory, and the handles that name a position
 * (tape.c; the compact float64 scalars' side is scalar.h). Internal; never
 * installed.
 */
#ifndef TG_TAPE_H
#define TG_TAPE_H

#include "node.h"

/* Chunk sizes are small, so that a small tape is small (one scalar: one
 * 17 KB record chunk); the tables of chunks double as a tape grows. */
#define TG_CHUNK_BITS 8
#define TG_CHUNK_NODES ((size_t)1 << TG_CHUNK_BITS)

typedef struct tg_block tg_block; /* data arena block (tape.c) */

/* Compact scalar records, structure of arrays, in chunks that grow with the
 * tape: the first holds TG_SC_LEN positions (so that a small tape is small),
 * each next one the largest power of two up to a quarter of the positions
 * before it (the chunk sizes double every four chunks), up to TG_SC_MAX,
 * which every chunk from position TG_SC_BIG on has: a long tape's sweep runs
 * over long arrays, and past 4 TG_SC_LEN positions at most a fifth of what
 * the chunks hold is unused.
 * A chunk's first position is a multiple of its length. A record is its
 * value (for a 64-byte node's position: the node's address), its input
 * positions and its code byte; the op's partial derivatives follow in the
 * tape's partial chunks, in position order. */
#define TG_SC_BITS 10
#define TG_SC_LEN ((size_t)1 << TG_SC_BITS)
#define TG_SC_MAX_BITS 16
#define TG_SC_MAX ((size_t)1 << TG_SC_MAX_BITS)
#define TG_SC_BIG (TG_SC_MAX << 2)
/* The entry of the tape's chunk table for position p: one per TG_SC_LEN
 * positions below TG_SC_BIG, one per chunk above (a short table for the
 * sweep, which looks up every input). */
static inline size_t tg__sc_entry(size_t p) {
    return p < TG_SC_BIG ? p >> TG_SC_BITS
                         : (p >> TG_SC_MAX_BITS) + (TG_SC_BIG >> TG_SC_BITS) -
                               (TG_SC_BIG >> TG_SC_MAX_BITS);
}
typedef union tg_slot {
    double v;
    tg_node *node;
} tg_slot;
typedef struct tg_schunk { /* what recording reads first, in one cache line */
    tg_tape *tape;    /* the handles' way back to their tape */
    size_t base;      /* the chunk's first position */
    tg_slot *slot;    /* len values, then the inputs and codes, in the chunk's block */
    uint32_t *in[2];
    uint8_t *code;
    size_t len;       /* its positions: TG_SC_LEN << its class, 0..6 */
    size_t *part0;    /* [i]: partials recorded before position base + i TG_SC_LEN */
    double *grad;     /* len gradients, from the first sweep that reaches the chunk */
    void *block;      /* the allocation the chunk is aligned in */
} tg_schunk;
/* A chunk of len positions starts at a multiple of 16 len bytes, so that a
 * handle holds its address with the record's index and the chunk's class
 * (log2(len / TG_SC_LEN)) in the low bits. */
#define TG_SC_ALIGN(len) ((uintptr_t)(len) << 4)

/* The code byte: wants a gradient, kind (0x80 is free). */
#define TG_C_NG 0x40u
#define TG_C_KIND 0x3fu
enum { TG_K_FULL = 0, TG_K_LEAF = 1, TG_K_OPS = 2, TG_K_MAX = 64 };

#define TG_OP_CACHE 64
struct tg_tape {
    /* what recording a compact op reads, together */
    size_t nnodes;         /* positions */
    tg_schunk *sc_cur;     /* where the next position goes, if it covers it */
    double **parts;        /* partial derivatives, TG_PART_LEN a chunk */
    size_t npart, nparts_chunks;
    int status;
    bool scalar_tape;      /* tg_set_scalar_tape */
    bool check_numerics;
    tg_node **chunks; /* chunks[i] holds TG_CHUNK_NODES 64-byte nodes */
    size_t nchunks, chunk_cap;
    size_t nfull;     /* 64-byte nodes in use */
    tg_schunk **sc;   /* the positions' records: sc[tg__sc_entry(p)] */
    size_t sc_end, sc_cap; /* positions the chunks cover; entries of sc */
    size_t parts_cap;
    size_t grad_valid; /* compact gradients below this position are defined */
    tg_block *blocks, *cur; /* value/gradient memory, bump-allocated */
    size_t bytes;           /* heap bytes held */
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
    tg_node *consts[32];  /* the library's own constants, by value (node.c) */
    tg_node poison;
    char message[256];
};

/* ------------------------------------------------------- positions -- */

static inline tg_schunk *tg__sc(const tg_tape *t, size_t p) { return t->sc[tg__sc_entry(p)]; }
/* The index of position p in its chunk c. */
static inline size_t tg__sl(const tg_schunk *c, size_t p) { return p - c->base; }
static inline uint8_t tg__code(const tg_tape *t, size_t p) {
    tg_schunk *c = tg__sc(t, p);
    return c->code[tg__sl(c, p)];
}
static inline double tg__value_at(const tg_tape *t, size_t p) {
    tg_schunk *c = tg__sc(t, p);
    return c->slot[tg__sl(c, p)].v;
}

/* Handles of compact records: the chunk's address | index << 4 | class << 1
 * | 1 (a 64-byte node's address has the tag bit clear). The chunk knows its
 * tape and first position, so a handle needs no table and tapes no limit. */
static inline bool tg__is_compact(const tg_node *h) { return (uintptr_t)h & 1; }
static inline uintptr_t tg__hmask(const tg_node *h) { /* the index and class bits */
    uintptr_t cls = ((uintptr_t)h >> 1) & 7, max = TG_SC_MAX_BITS - TG_SC_BITS;
    /* a long tape's records are mostly in chunks of TG_SC_MAX: no shift by a variable */
    if (__builtin_expect(cls == max, 1)) return TG_SC_ALIGN(TG_SC_MAX) - 1;
    return TG_SC_ALIGN(TG_SC_LEN << cls) - 1;
}
static inline tg_schunk *tg__hsc(const tg_node *h) {
    return (tg_schunk *)((uintptr_t)h & ~tg__hmask(h));
}
static inline size_t tg__hindex(const tg_node *h) { return ((uintptr_t)h & tg__hmask(h)) >> 4; }
static inline tg_tape *tg__ctape(const tg_node *h) { return tg__hsc(h)->tape; }
static inline uint32_t tg__cpos(const tg_node *h) {
    return (uint32_t)(tg__hsc(h)->base + tg__hindex(h));
}
/* The handle of record l of chunk c. */
static inline tg_node *tg__chandle_in(const tg_schunk *c, size_t l) {
    uintptr_t cls = (uintptr_t)__builtin_ctzll((unsigned long long)(c->len >> TG_SC_BITS));
    return (tg_node *)((uintptr_t)c | (uintptr_t)l << 4 | cls << 1 | 1);
}

/* The handle of position p: the 64-byte node, or the compact record. */
static inline tg_node *tg__node_at(const tg_tape *t, size_t p) {
    tg_schunk *c = tg__sc(t, p);
    size_t l = tg__sl(c, p);
    return (c->code[l] & TG_C_KIND) == TG_K_FULL ? c->slot[l].node : tg__chandle_in(c, l);
}

/* What any handle (compact or not) is: for code outside the kernels. */
static inline tg_tape *tg__tape_of(const tg_node *h) {
    return tg__is_compact(h) ? tg__ctape(h) : h->tape;
}
static inline size_t tg__id(const tg_node *h) { return tg__is_compact(h) ? tg__cpos(h) : h->id; }
static inline uint8_t tg__hcode(const tg_node *h) { return tg__hsc(h)->code[tg__hindex(h)]; }
static inline double *tg__hvalue(const tg_node *h) { return &tg__hsc(h)->slot[tg__hindex(h)].v; }
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
    tg_schunk *c = tg__hsc(h);
    size_t l = tg__hindex(h);
    if (c->base + l >= c->tape->grad_valid || !(c->code[l] & TG_C_NG)) return NULL;
    double *g = &c->grad[l];
    return tg__grad_unset(*g) ? NULL : g;
}
static inline bool tg__needs_grad(const tg_node *h) {
    return tg__is_compact(h) ? tg__hcode(h) & TG_C_NG : h->flags & TG_F_NEEDS_GRAD;
}
static inline bool tg__is_leaf(const tg_node *h) {
    return tg__is_compact(h) ? (tg__hcode(h) & TG_C_KIND) == TG_K_LEAF : !h->op;
}
static inline void *tg__value_of(const tg_node *h) {
    return tg__is_compact(h) ? (void *)tg__hvalue(h) : h->value;
}
static inline void *tg__grad_of(const tg_node *h) {
    return tg__is_compact(h) ? (void *)tg__hgrad(h) : h->grad;
}


/* Whether n was recorded before the last reset of its tape (its position is
 * past the tape's end). The poison node of an earlier error counts as stale. */
static inline bool tg__stale(const tg_node *n) {
    if (tg__is_compact(n)) return tg__cpos(n) >= tg__ctape(n)->nnodes;
    return n->id >= n->tape->nnodes && n != &n->tape->poison;
}

/* Tape memory (tape.c). NULL, or -1, with TG_ERR_NOMEM status on failure. */
void *tg__tape_alloc(tg_tape *t, size_t bytes);
int tg__grow(tg_tape *t);
/* The value of a 3-input node, with room for its third input before it,
 * which the caller stores. 0, or -1 with TG_ERR_NOMEM recorded. */
int tg__alloc_value_in3(tg_node *n);

/* Points sc_cur at the chunk of the next position, adding a chunk when
 * none covers it (the slow path of tg__new_pos). 0, or -1 (status set). */
int tg__sc_grow(tg_tape *t);
/* Appends a position, its record at (*c)->...[*l] uninitialised, or -1
 * (status set). */
static inline int tg__new_pos(tg_tape *t, tg_schunk **c, size_t *l) {
    size_t p = t->nnodes;
    tg_schunk *k = t->sc_cur;
    if (!k || p - k->base >= k->len) {
        if (tg__sc_grow(t)) return -1;
        k = t->sc_cur;
    }
    *c = k;
    *l = p - k->base;
    if (!(*l & (TG_SC_LEN - 1))) k->part0[*l >> TG_SC_BITS] = t->npart; /* replay starts */
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
 * that failed after allocating its node). */
void tg__pop_to(tg_tape *t, size_t mark);

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

/* Readies a node's gradient for a sweep's contributions (args.h). */
static inline void tg__identity_grad(tg_node *n) {
    tg__fill_identity(n->grad, tg__numel(n), tg__f64(n) ? TG_F64 : TG_F32);
}

/* The sweep leaves a gradient that has received nothing yet marked
 * TG_F_FRESH instead of filling it with -0: the backward kernels that can,
 * write their contribution there (the same bits as adding it to -0); the
 * others, and those that cannot write this time (a broadcast input, which
 * receives several), ready it first with this. */
static inline void tg__ready_grad(tg_node *n) {
    if (!(n->flags & TG_F_FRESH)) return;
    tg__identity_grad(n);
    n->flags &= (uint8_t)~TG_F_FRESH;
}


/* Gives a node gradient memory on first use, its contents undefined; 0-d
 * nodes keep it inline. 0, or -1 with TG_ERR_NOMEM recorded. */
static inline int tg__grad_memory(tg_node *n) {
    if (!n->grad)
        n->grad = n->ndim == 0 ? (void *)&n->u.inl[1]
                               : tg__tape_alloc(n->tape, tg__numel(n) * tg__dsize(n));
    return n->grad ? 0 : -1;
}

#endif
