/* The tape: its lifecycle, its node chunks and its bump-allocated memory. */
#include "record.h"
#include "alloc.h"

#include <math.h>
#include <stddef.h>
#include <string.h>

#define TG_ALIGN 64
/* Value memory comes in blocks that double from the first to the largest
 * step (a bigger request gets a block of its own size). */
#define TG_FIRST_BLOCK ((size_t)16 << 10)
#define TG_MAX_BLOCK ((size_t)1 << 20)

/* A leaf's gradient that a rewind moved out of the block memory it gave
 * back; freed with the tape's nodes (reset, free). */
struct tg_kept {
    struct tg_kept *next;
    _Alignas(max_align_t) unsigned char data[]; /* malloc's alignment */
};

static void free_kept(tg_tape *t) {
    for (struct tg_kept *k = t->kept, *next; k; k = next) {
        next = k->next;
        tg__free(k);
    }
    t->kept = NULL;
}

struct tg_block {
    tg_block *next;
    size_t size, used;
    _Alignas(TG_ALIGN) unsigned char data[];
};

static void init_poison(tg_tape *t) {
    memset(&t->poison, 0, sizeof t->poison);
    t->poison.tape = t;
    t->poison.id = UINT32_MAX;
    t->poison.flags = TG_F_F64;
    t->poison.u.inl[0] = NAN;
    t->poison.value = &t->poison.u.inl[0];
}

tg_tape *tg_tape_new(void) {
    if (tg__registry_init()) return NULL;
    tg_tape *t = tg__calloc(1, sizeof *t);
    if (!t) return NULL;
    t->bytes = sizeof *t;
    t->scalar_tape = true;
    init_poison(t);
    return t;
}

void tg_tape_free(tg_tape *t) {
    if (!t) return;
    tg_tape_free(t->scratch);
    free_kept(t);
    for (size_t i = 0; i < t->nchunks; i++) tg__free(t->chunks[i]);
    tg__free(t->chunks);
    tg__scalar_free(t);
    for (tg_block *b = t->blocks, *next; b; b = next) {
        next = b->next;
        tg__free(b);
    }
    tg__free(t);
}

void tg_tape_reset(tg_tape *t) {
    if (!t) return;
    t->nnodes = t->nfull = t->npart = t->grad_valid = 0;
    t->nparts_chunks = 0;
    for (tg_block *b = t->blocks; b; b = b->next) b->used = 0;
    t->cur = t->blocks;
    t->status = TG_OK;
    t->message[0] = '\0';
    t->epoch++;
    free_kept(t);
    init_poison(t);
}

tg_mark tg_tape_mark(const tg_tape *t) {
    if (!t) return (tg_mark){0};
    return (tg_mark){t->nnodes, t->nfull, t->npart, t->cur ? t->cur->used : 0, t->cur, t->epoch};
}

/* Whether p lies in the block memory a rewind to m gives back: past the
 * mark's offset in its block, or in a block after it. */
static bool rewound(const tg_tape *t, const tg_mark *m, const void *p) {
    const unsigned char *q = p;
    bool after = m->block == NULL;
    for (const tg_block *b = t->blocks; b; b = b->next) {
        if (q >= b->data && q < b->data + b->size)
            return after || (b == m->block && q >= b->data + m->used);
        after |= b == m->block;
    }
    return false;
}

int tg_tape_rewind(tg_tape *t, tg_mark *m) {
    if (!t) return TG_ERR_NULL;
    if (!m) return tg_fail(t, TG_ERR_NULL, "rewind: mark is NULL");
    if (m->epoch != t->epoch || m->nodes > t->nnodes || m->full > t->nfull)
        return tg_fail(t, TG_ERR_ARG, "rewind: the mark (at node %zu) is not valid: taken "
                       "before a reset or before the last rewind to an earlier mark", m->nodes);
    /* Gradient memory taken after the mark for a node before it is given
     * back too: an interior node gets new memory at its next sweep; a leaf's
     * gradient, which accumulates across sweeps, moves to memory of its own. */
    for (size_t i = 0; i < m->full; i++) {
        tg_node *n = &t->chunks[i >> TG_CHUNK_BITS][i & (TG_CHUNK_NODES - 1)];
        if (!n->grad || !n->ndim || (n->flags & TG_F_EXT_GRAD) || !rewound(t, m, n->grad))
            continue;
        if (n->op) {
            n->grad = NULL;
            continue;
        }
        size_t bytes = tg__numel(n) * tg__dsize(n);
        struct tg_kept *k = tg__malloc(sizeof *k + bytes);
        if (!k) return tg_fail(t, TG_ERR_NOMEM, "rewind: out of memory keeping a leaf's gradient");
        memcpy(k->data, n->grad, bytes);
        k->next = t->kept;
        t->kept = k;
        t->bytes += sizeof *k + bytes;
        n->grad = k->data;
    }
    t->nnodes = m->nodes;
    t->nfull = m->full;
    t->npart = m->parts;
    if (t->grad_valid > m->nodes) t->grad_valid = m->nodes;
    bool after = m->block == NULL;
    for (tg_block *b = t->blocks; b; b = b->next) {
        if (b == m->block) b->used = m->used;
        else if (after) b->used = 0;
        after |= b == m->block;
    }
    t->cur = m->block ? (tg_block *)m->block : t->blocks;
    m->epoch = ++t->epoch;
    return TG_OK;
}

size_t tg_tape_size(const tg_tape *t) { return t ? t->nnodes : 0; }

tg_node *tg_tape_node(const tg_tape *t, size_t i) {
    return t && i < t->nnodes ? tg__node_at(t, i) : NULL;
}

size_t tg_tape_bytes(const tg_tape *t) { return t ? t->bytes : 0; }

void tg_set_check_numerics(tg_tape *t, int on) {
    if (t) t->check_numerics = on != 0;
}

void tg_set_scalar_tape(tg_tape *t, int on) {
    if (t) t->scalar_tape = on != 0;
}

/* Bump allocation from the current block, moving on to the next block (kept
 * from before a reset) or a new one when it is full. */
void *tg__tape_alloc(tg_tape *t, size_t bytes) {
    bytes = (bytes + TG_ALIGN - 1) & ~(size_t)(TG_ALIGN - 1);
    for (tg_block *b = t->cur; b; b = b->next) {
        if (b->size - b->used >= bytes) {
            void *p = b->data + b->used;
            b->used += bytes;
            t->cur = b;
            return p;
        }
    }
    size_t step = t->cur ? 2 * t->cur->size : TG_FIRST_BLOCK;
    step = step < TG_MAX_BLOCK ? step : TG_MAX_BLOCK;
    size_t size = bytes > step ? bytes : step;
    tg_block *b = tg__malloc(sizeof *b + size);
    if (!b) {
        tg_fail(t, TG_ERR_NOMEM, "out of memory allocating %zu bytes", bytes);
        return NULL;
    }
    b->size = size;
    b->used = bytes;
    /* Append after the current block so that earlier blocks are reused in
     * order after a reset. */
    if (t->cur) {
        b->next = t->cur->next;
        t->cur->next = b;
    } else {
        b->next = t->blocks;
        t->blocks = b;
    }
    t->cur = b;
    t->bytes += sizeof *b + size;
    return b->data;
}

int tg__alloc_value_in3(tg_node *n) {
    /* TG_ALIGN bytes ahead of the value keep the value aligned. */
    unsigned char *p = tg__tape_alloc(n->tape, TG_ALIGN + tg__numel(n) * tg__dsize(n));
    if (!p) return -1;
    n->value = p + TG_ALIGN;
    return 0;
}

/* Adds a chunk of nodes (the slow path of tg__new_node). 0, or -1 with the
 * status set. */
int tg__grow(tg_tape *t) {
    if (t->nchunks == t->chunk_cap) {
        size_t cap = t->chunk_cap ? 2 * t->chunk_cap : 16;
        tg_node **chunks = tg__realloc(t->chunks, cap * sizeof *chunks);
        if (!chunks) {
            tg_fail(t, TG_ERR_NOMEM, "out of memory growing the tape");
            return -1;
        }
        t->chunks = chunks;
        t->bytes += (cap - t->chunk_cap) * sizeof *chunks;
        t->chunk_cap = cap;
    }
    tg_node *chunk = tg__malloc(TG_CHUNK_NODES * sizeof *chunk);
    if (!chunk) {
        tg_fail(t, TG_ERR_NOMEM, "out of memory growing the tape");
        return -1;
    }
    t->chunks[t->nchunks++] = chunk;
    t->bytes += TG_CHUNK_NODES * sizeof *chunk;
    return 0;
}


void tg__pop_to(tg_tape *t, size_t mark) {
    t->nfull -= t->nnodes - mark;
    t->nnodes = mark;
}
