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

/* Compact records (scalar.c). Whether t records float64 scalars compactly
 * now; a compact leaf (NULL on failure, status set); the compact result of
 * op on compact inputs, or NULL when op has no compact rule (the caller
 * records a 64-byte node). */
static inline bool tg__compact_on(const tg_tape *t) {
    return t->scalar_tape && !t->check_numerics;
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
static inline double tg__part(const tg_tape *t, size_t i) {
    return t->parts[i >> TG_PART_BITS][i & (TG_PART_LEN - 1)];
}
/* The compact storage's lifetime. */
void tg__scalar_free(tg_tape *t);
int tg__scalar_init(void);

#endif
