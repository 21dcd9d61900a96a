/*
 * Compact float64 scalars (scalar.c): the kinds and classes of compact
 * record, the rules the op families give for them, their partials, and the
 * recording, sweep and replay entry points. Internal; never installed.
 */
#ifndef TG_SCALAR_H
#define TG_SCALAR_H

#include "tape.h"

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
/* Partial derivative i of the tape, in its chunk of TG_PART_LEN. */
static inline double *tg__part_at(const tg_tape *t, size_t i) {
    return &t->parts[i >> TG_PART_BITS][i & (TG_PART_LEN - 1)];
}
static inline double tg__part(const tg_tape *t, size_t i) { return *tg__part_at(t, i); }

/* Compact records. Whether t records float64 scalars compactly now; a
 * compact leaf (the poison node on failure, status set). */
static inline bool tg__compact_on(const tg_tape *t) {
    return t->scalar_tape && !t->check_numerics;
}
static inline tg_node *tg__scalar_leaf(tg_tape *t, double value, bool wants_grad) {
    tg_schunk *c;
    size_t l;
    if (tg__new_pos(t, &c, &l)) return &t->poison;
    c->slot[l].v = value;
    c->code[l] = (uint8_t)(TG_K_LEAF | (wants_grad ? TG_C_NG : 0));
    return tg__chandle_in(c, l);
}

/* The op families with rules on scalars (their tables of ops and of rules,
 * ops/), and each op's kind (0: none) by its position in its family's
 * table: found from the op's address, so that recording needs no registry
 * index. In a family's own constructors, where the op is a constant, the
 * search folds away, and so do the op's arity and its rule's class and
 * element function, read from the family's constant tables. */
extern const tg_op tg_unary_ops[], tg_binary_ops[], tg_compare_ops[];
extern const int tg_unary_count, tg_binary_count, tg_compare_count;
extern const tg_scalar_rule tg_unary_scalar[], tg_binary_scalar[], tg_compare_scalar[];
enum { TG_FAM_BINARY, TG_FAM_UNARY, TG_FAM_COMPARE, TG_FAMILIES };
extern uint8_t tg__family_kind[TG_FAMILIES][256];
/* op's family (-1: none) and its index there (*i). */
static inline int tg__family_of_op(const tg_op *op, size_t *i) {
    /* below a table, the unsigned difference is too large */
    *i = (size_t)((uintptr_t)op - (uintptr_t)tg_binary_ops) / sizeof *op;
    if (*i < (size_t)tg_binary_count) return TG_FAM_BINARY;
    *i = (size_t)((uintptr_t)op - (uintptr_t)tg_unary_ops) / sizeof *op;
    if (*i < (size_t)tg_unary_count) return TG_FAM_UNARY;
    *i = (size_t)((uintptr_t)op - (uintptr_t)tg_compare_ops) / sizeof *op;
    if (*i < (size_t)tg_compare_count) return TG_FAM_COMPARE;
    return -1;
}
static inline int tg__kind_of_op(const tg_op *op) {
    size_t i;
    int f = tg__family_of_op(op, &i);
    return f < 0 ? 0 : tg__family_kind[f][i];
}
static inline const tg_scalar_rule *tg__family_rule(int f, size_t i) {
    return f == TG_FAM_BINARY  ? &tg_binary_scalar[i]
           : f == TG_FAM_UNARY ? &tg_unary_scalar[i]
                               : &tg_compare_scalar[i];
}

/* The value of the four commonest ops, which store no partials (false for
 * the other classes); their kernels' element functions are these same
 * expressions. */
static inline bool tg__scalar_plain(uint8_t cls, const double *x, double *y) {
    switch (cls) {
    case TG_CLS_ADD: *y = x[0] + x[1]; return true;
    case TG_CLS_SUB: *y = x[0] - x[1]; return true;
    case TG_CLS_MUL: *y = x[0] * x[1]; return true;
    case TG_CLS_NEG: *y = -x[0]; return true;
    default: return false;
    }
}

/* Fills the record at (c, l): value y, input positions pa and pb, code;
 * returns its handle. */
static inline tg_node *tg__put_record(tg_schunk *c, size_t l, double y, size_t pa, size_t pb,
                                      uint8_t code) {
    c->slot[l].v = y;
    c->in[0][l] = (uint32_t)pa;
    c->in[1][l] = (uint32_t)pb;
    c->code[l] = code;
    return tg__chandle_in(c, l);
}

/* The compact record of op on a (compact) and b (NULL for a unary op), or
 * NULL when it takes the general path (no compact rule, other inputs,
 * errors). tg__scalar_op records the commonest cases inline (in each op's
 * constructor: recording a scalar op is then one call), the rest is
 * tg__scalar_op_slow's, which gives the same records and results. */
tg_node *tg__scalar_op_slow(const tg_op *op, tg_node *a, tg_node *b);
static inline __attribute__((always_inline)) tg_node *tg__scalar_op(const tg_op *op, tg_node *a,
                                                                     tg_node *b) {
    size_t fi;
    int f = tg__family_of_op(op, &fi), kind = f < 0 ? 0 : tg__family_kind[f][fi];
    tg_schunk *ca = tg__hsc(a);
    tg_tape *t = ca->tape;
    size_t la = tg__hindex(a), pa = ca->base + la, p = t->nnodes, pb = 0;
    tg_schunk *c = t->sc_cur;
    /* an op with a rule, a live input, room in the chunk for the result */
    if (!kind || t->status || !tg__compact_on(t) || pa >= p || !c || p - c->base >= c->len)
        return tg__scalar_op_slow(op, a, b);
    const tg_scalar_rule *rule = tg__family_rule(f, fi);
    double x[2] = {ca->slot[la].v, 0}, y, d[2];
    uint8_t ng = ca->code[la] & TG_C_NG;
    if (op->arity == 2) {
        if (!b || !tg__is_compact(b)) return tg__scalar_op_slow(op, a, b);
        tg_schunk *cb = tg__hsc(b);
        size_t lb = tg__hindex(b);
        pb = cb->base + lb;
        if (cb->tape != t || pb >= p) return tg__scalar_op_slow(op, a, b);
        x[1] = cb->slot[lb].v;
        ng |= cb->code[lb] & TG_C_NG;
    } else if (b) {
        return tg__scalar_op_slow(op, a, b);
    }
    size_t l = p - c->base;
    if (!(l & (TG_SC_LEN - 1))) c->part0[l >> TG_SC_BITS] = t->npart; /* as tg__new_pos */
    if (!tg__scalar_plain(rule->cls, x, &y)) { /* else one partial, or the slow path */
        size_t i = t->npart;
        if (rule->cls != TG_CLS_P1 || (ng && (i >> TG_PART_BITS) >= t->nparts_chunks))
            return tg__scalar_op_slow(op, a, b);
        y = rule->eval(x, d);
        if (ng) {
            *tg__part_at(t, i) = d[0];
            t->npart = i + 1;
        }
    }
    t->nnodes = p + 1;
    return tg__put_record(c, l, y, pa, pb, (uint8_t)(kind | ng));
}
/* The sweep's and replay's part (scalar.c): gradient arrays for positions
 * <= out, zeroed where first swept (-1, status set, on failure); the number
 * of partials recorded up to position p; the value and partials of the
 * compact record at p recomputed, *part its first partial's index. */
int tg__scalar_prepare(tg_tape *t, size_t out);
size_t tg__part_index(const tg_tape *t, size_t p);
void tg__scalar_forward(tg_tape *t, size_t p, size_t *part);
/* The compact storage's lifetime. */
void tg__scalar_free(tg_tape *t);
int tg__scalar_init(void);

#endif
