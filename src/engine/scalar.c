/*
 * The compact scalar tape: float64 0-d nodes as 17-byte records.
 *
 * A scalar tape of millions of ops is mostly bookkeeping, so its cost is
 * the record's size. Each position of the tape has, in its scalar chunk
 * (structure of arrays; chunks grow from TG_SC_LEN to TG_SC_MAX positions
 * with the tape): the value (8 bytes), two 32-bit input positions and a
 * code byte (wants-gradient, kind).
 * An op's local partial derivatives are computed while recording, from the
 * same element functions as the op's kernels, and pushed on the tape's
 * partial chunks in position order: only the ops whose partials are not 1,
 * -1 or an input's value store any (sin stores cos x; add, sub, neg and mul
 * store nothing). Gradients get one array per chunk at the first sweep. So
 * the reverse sweep of a compact record is a multiply-add per input, with
 * no call (sweep.c), and recording is one call of the op's rule.
 *
 * Handles: a tg_node * of a compact record is its chunk's address (aligned
 * to 16 bytes a position) | index << 4 | class << 1 | 1 (the class gives
 * the chunk's length, hence which bits hold the index); the tag bit tells
 * it from a node's address (64-byte aligned), and the chunk holds the tape
 * and its first position. Chunks, values and gradients never move, so handles,
 * tg_value() and tg_grad() pointers stay valid.
 *
 * A 64-byte node has a position too (kind TG_K_FULL, its address in the
 * value slot), so the tape stays one sequence in creation order and the
 * sweep one backward loop. A 64-byte op reads a compact input through its
 * view (record.h), whose value and gradient point into the record's chunk:
 * the op's kernels read the value and add into the gradient in place.
 */
#include "record.h"
#include "alloc.h"

/* ------------------------------------------------------------- kinds -- */

tg_kind tg__kinds[TG_K_MAX] = {[TG_K_FULL] = {TG_CLS_FULL, 0, 0, 0, NULL},
                               [TG_K_LEAF] = {TG_CLS_LEAF, 0, 0, 0, NULL}};
uint8_t tg__nparts[128];
uint8_t tg__kind_cls[TG_K_MAX] = {[TG_K_FULL] = TG_CLS_FULL, [TG_K_LEAF] = TG_CLS_LEAF};


static int nkinds = TG_K_OPS;

/* The registry index of a built-in op (called with the registry's lock
 * held, so without tg__op_index). */
static int builtin_index(const tg_op *op) {
    for (int i = 1; i < 256; i++)
        if (tg__ops[i] == op) return i;
    return -1;
}

uint8_t tg__family_kind[TG_FAMILIES][256];

static int add_family(int f, const tg_op *ops, const tg_scalar_rule *rules, int count) {
    if (count > 256) return TG_ERR_STATE;
    for (int i = 0; i < count; i++) {
        if (!rules[i].eval) continue;
        int index = builtin_index(&ops[i]);
        if (index <= 0 || nkinds == TG_K_MAX) return TG_ERR_STATE; /* a broken invariant */
        uint8_t cls = rules[i].cls;
        tg__kinds[nkinds] = (tg_kind){cls,
                                      cls == TG_CLS_P1 ? 1 : cls >= TG_CLS_P2 ? 2 : 0,
                                      (uint8_t)ops[i].arity, (uint8_t)index, rules[i].eval};
        tg__family_kind[f][i] = (uint8_t)nkinds++;
    }
    return TG_OK;
}

/* Called by the registry, under its lock, once the built-in ops have their
 * indices. */
int tg__scalar_init(void) {
    nkinds = TG_K_OPS;
    int rc = add_family(TG_FAM_UNARY, tg_unary_ops, tg_unary_scalar, tg_unary_count);
    if (!rc) rc = add_family(TG_FAM_BINARY, tg_binary_ops, tg_binary_scalar, tg_binary_count);
    if (!rc) rc = add_family(TG_FAM_COMPARE, tg_compare_ops, tg_compare_scalar, tg_compare_count);
    /* Records that want no gradient are never swept: they store no partials. */
    for (int k = 0; k < TG_K_MAX; k++) {
        tg__nparts[k | TG_C_NG] = tg__kinds[k].nparts;
        tg__kind_cls[k] = tg__kinds[k].cls;
    }
    return rc;
}

/* ----------------------------------------------------------- storage -- */

/* A table of chunk pointers doubled, its new entries NULL (the old table
 * stays valid on failure, which returns NULL). */
static void *grow_table(tg_tape *t, void *table, size_t *cap, size_t size) {
    size_t n = *cap ? 2 * *cap : 8;
    char *p = tg__realloc(table, n * size);
    if (!p) return NULL;
    memset(p + *cap * size, 0, (n - *cap) * size);
    t->bytes += (n - *cap) * size;
    *cap = n;
    return p;
}

/* The positions of the chunk starting at position p (see tape.h). */
static size_t chunk_len(size_t p) {
    size_t len = TG_SC_LEN;
    while (len < TG_SC_MAX && 2 * len <= p / 4) len *= 2;
    return len;
}

/* A chunk of len positions: its header (with part0) at a multiple of
 * TG_SC_ALIGN(len), and its four arrays, in one block (*block, *held
 * bytes); NULL when out of memory. With the C library's allocator the
 * arrays follow the header in an aligned block (whose slack goes back to
 * the heap); a user's allocator has no aligned allocation, so the block is
 * 3 len bytes larger than header and arrays, the header goes at its first
 * aligned address and the arrays on either side of it (before it, the ones
 * that fill that room best: any room leaves less than 3 len unused). */
static tg_schunk *chunk_alloc(size_t len, void **block, size_t *held) {
    size_t head = (sizeof(tg_schunk) + (len >> TG_SC_BITS) * sizeof(size_t) + 63) & ~(size_t)63;
    size_t size[4] = {len * sizeof(tg_slot), len * sizeof(uint32_t), len * sizeof(uint32_t), len};
    size_t records = size[0] + size[1] + size[2] + size[3], align = TG_SC_ALIGN(len);
    char *arr[4], *lo, *hi;
    unsigned before = 0; /* the arrays placed before the header, a bit each */
    tg_schunk *c;
    if (tg__aligned_exact()) {
        if (!(c = tg__aligned(align, head + records, block, held))) return NULL;
        lo = hi = (char *)c + head;
    } else {
        char *b = tg__malloc(head + records + 3 * len);
        if (!b) return NULL;
        c = (tg_schunk *)(((uintptr_t)b + align - 1) & ~(uintptr_t)(align - 1));
        size_t room = (size_t)((char *)c - b), best = 0;
        for (unsigned m = 1; m < 16; m++) {
            size_t sum = 0;
            for (int i = 0; i < 4; i++) sum += m >> i & 1 ? size[i] : 0;
            if (sum <= room && sum > best) best = sum, before = m;
        }
        *block = b;
        *held = head + records + 3 * len;
        lo = b;
        hi = (char *)c + head;
    }
    for (int i = 0; i < 4; i++) {
        char **at = before >> i & 1 ? &lo : &hi;
        arr[i] = *at;
        *at += size[i];
    }
    c->part0 = (size_t *)(c + 1);
    c->slot = (tg_slot *)(void *)arr[0];
    c->in[0] = (uint32_t *)(void *)arr[1];
    c->in[1] = (uint32_t *)(void *)arr[2];
    c->code = (uint8_t *)arr[3];
    return c;
}

int tg__sc_grow(tg_tape *t) {
    /* positions are 32-bit, UINT32_MAX is no position (the poison's id) */
    size_t p = t->nnodes, limit = (size_t)UINT32_MAX + 1 - TG_SC_MAX;
    if (p < t->sc_end) { /* chunks outlive tg_tape_reset and rewinds */
        t->sc_cur = tg__sc(t, p);
        return 0;
    }
    if (p >= limit) {
        tg_fail(t, TG_ERR_NOMEM, "tape: more than %zu nodes", limit - 1);
        return -1;
    }
    size_t len = chunk_len(p);
    while (t->sc_cap <= tg__sc_entry(p + len - 1)) {
        void *sc = grow_table(t, t->sc, &t->sc_cap, sizeof *t->sc);
        if (!sc) goto nomem;
        t->sc = sc;
    }
    size_t bytes;
    void *block;
    tg_schunk *c = chunk_alloc(len, &block, &bytes);
    if (!c) goto nomem;
    c->grad = NULL;
    c->base = p;
    c->len = len;
    c->tape = t;
    c->block = block;
    for (size_t q = p; q < p + len; q += TG_SC_LEN) t->sc[tg__sc_entry(q)] = c;
    t->sc_end = p + len;
    t->sc_cur = c;
    t->bytes += bytes;
    return 0;
nomem:
    tg_fail(t, TG_ERR_NOMEM, "out of memory growing the tape");
    return -1;
}

static int parts_grow(tg_tape *t) {
    if (t->nparts_chunks == t->parts_cap) {
        void *parts = grow_table(t, t->parts, &t->parts_cap, sizeof *t->parts);
        if (!parts) goto nomem;
        t->parts = parts;
    }
    if (!t->parts[t->nparts_chunks]) {
        double *c = tg__malloc(TG_PART_LEN * sizeof *c);
        if (!c) goto nomem;
        t->parts[t->nparts_chunks] = c;
        t->bytes += TG_PART_LEN * sizeof *c;
    }
    t->nparts_chunks++;
    return 0;
nomem:
    tg_fail(t, TG_ERR_NOMEM, "out of memory growing the tape's partial derivatives");
    return -1;
}

/* Pushes the n (1 or 2) partials p; 0 or -1 (status set, nothing pushed). */
static inline int push_parts(tg_tape *t, const double *p, int n) {
    size_t i = t->npart, last = i + (size_t)n - 1;
    while ((last >> TG_PART_BITS) >= t->nparts_chunks)
        if (parts_grow(t)) return -1;
    *tg__part_at(t, i) = p[0];
    if (n > 1) *tg__part_at(t, last) = p[1];
    t->npart = last + 1;
    return 0;
}

void tg__scalar_free(tg_tape *t) {
    for (size_t p = 0; p < t->sc_end;) {
        tg_schunk *c = tg__sc(t, p);
        p += c->len;
        tg__free(c->grad);
        tg__free(c->block);
    }
    tg__free(t->sc);
    for (size_t i = 0; i < t->parts_cap && t->parts; i++) tg__free(t->parts[i]);
    tg__free(t->parts);
}

/* ---------------------------------------------------------- recording -- */

/* Whether h is a live compact record of t. */
static bool compact_of(const tg_tape *t, const tg_node *h) {
    return h && tg__is_compact(h) && tg__ctape(h) == t && tg__cpos(h) < t->nnodes;
}

/* Every op on compact inputs that tg__scalar_op does not record inline. */
tg_node *tg__scalar_op_slow(const tg_op *op, tg_node *a, tg_node *b) {
    tg_tape *t = tg__ctape(a);
    size_t pa = tg__cpos(a), pb = 0;
    if (!op || t->status || !tg__compact_on(t) || pa >= t->nnodes) return NULL;
    int kind = tg__kind_of_op(op);
    if (!kind) return NULL;
    const tg_kind *k = &tg__kinds[kind];
    /* the records through the handles' own chunks */
    double x[2] = {*tg__hvalue(a), 0};
    uint8_t ng = tg__hcode(a) & TG_C_NG;
    if (k->arity == 2) {
        if (!compact_of(t, b)) return NULL;
        pb = tg__cpos(b);
        x[1] = *tg__hvalue(b);
        ng |= tg__hcode(b) & TG_C_NG;
    } else if (b) {
        return NULL;
    }
    double y, p[2];
    if (!tg__scalar_plain(k->cls, x, &y)) y = k->eval(x, p);
    tg_schunk *c;
    size_t l;
    if (tg__new_pos(t, &c, &l)) return &t->poison;
    if (ng && k->nparts && push_parts(t, p, k->nparts)) {
        t->nnodes--;
        return &t->poison;
    }
    return tg__put_record(c, l, y, pa, pb, (uint8_t)(kind | ng));
}

/* ------------------------------------------------------ sweep, replay -- */

size_t tg__part_index(const tg_tape *t, size_t p) {
    if (p + 1 == t->nnodes) return t->npart;
    const tg_schunk *c = tg__sc(t, p);
    size_t l = tg__sl(c, p), k = c->part0[l >> TG_SC_BITS];
    for (size_t i = l & ~(TG_SC_LEN - 1); i <= l; i++) k += tg__nparts[c->code[i] & 0x7f];
    return k;
}

int tg__scalar_prepare(tg_tape *t, size_t out) {
    for (size_t p = 0; p <= out;) {
        tg_schunk *c = tg__sc(t, p);
        p += c->len;
        if (c->grad) continue;
        if (!(c->grad = tg__malloc(c->len * sizeof *c->grad))) {
            tg_fail(t, TG_ERR_NOMEM, "backward: out of memory for the gradients of %zu nodes",
                    c->len);
            return -1;
        }
        t->bytes += c->len * sizeof *c->grad;
    }
    /* Every interior position starts the sweep unset, which the first add
     * replaces (so that no separate zeroing or mark is needed); a leaf keeps
     * its sum, and starts unset the first time a sweep can reach it. */
    union {
        uint64_t u;
        double d;
    } unset = {TG_GRAD_UNSET};
    for (size_t p = 0; p <= out;) {
        tg_schunk *c = tg__sc(t, p);
        p += c->len;
        size_t end = out < p ? out + 1 - c->base : c->len;
        /* below fresh: gradients defined */
        size_t fresh = t->grad_valid <= c->base ? 0
                       : t->grad_valid >= p     ? c->len
                                                : t->grad_valid - c->base;
        size_t kept = fresh < end ? fresh : end;
        for (size_t l = 0; l < kept; l++)
            if ((c->code[l] & TG_C_KIND) != TG_K_LEAF) c->grad[l] = unset.d;
        for (size_t l = kept; l < end; l++) c->grad[l] = unset.d; /* a plain fill */
    }
    if (out + 1 > t->grad_valid) t->grad_valid = out + 1;
    return 0;
}

void tg__scalar_forward(tg_tape *t, size_t p, size_t *part) {
    tg_schunk *c = tg__sc(t, p);
    size_t l = tg__sl(c, p);
    uint8_t code = c->code[l];
    const tg_kind *k = &tg__kinds[code & TG_C_KIND];
    double x[2] = {tg__value_at(t, c->in[0][l]), tg__value_at(t, c->in[1][l])};
    double d[2];
    c->slot[l].v = k->eval(x, d);
    int n = tg__nparts[code & 0x7f];
    for (int i = 0; i < n; i++, ++*part)
        *tg__part_at(t, *part) = d[i];
}
