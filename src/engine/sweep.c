/*
 * The reverse sweep, and replay, over both kinds of node (scalar.c).
 *
 * The tape is in creation order, which is a topological order: every node's
 * consumers come after it. So one backward loop from the output visits each
 * node after all its consumers have added their part to its gradient, with no
 * recursion, no sort and no visited set. The first consumer to reach a node
 * ("touch") marks it REACHED and FRESH (nothing received yet): its kernel
 * writes its contribution where it can, else the gradient is set to -0
 * first (tg__ready_grad) and the contribution added; the loop runs the
 * backward rule of REACHED nodes only, so nodes off every path from a wanted
 * leaf to the output cost one flag test.
 */
#include "rules.h"

/* Prepares a 64-byte node to receive gradient: on its first touch in this
 * sweep, gives it memory and, unless it is a leaf with memory (whose
 * gradients accumulate across sweeps), marks it FRESH: it holds nothing yet
 * (a new leaf's too: its first contribution is stored as it is). */
static inline int touch(tg_node *n) {
    if (n->flags & TG_F_REACHED) return 0;
    n->flags |= TG_F_REACHED;
    bool fresh = !n->grad;
    if (fresh && tg__grad_memory(n)) return -1;
    if (fresh || n->op) n->flags |= TG_F_FRESH;
    return 0;
}

/* Adds v into the gradient of the compact record at p, found in chunk c
 * when it is there (a record's inputs are mostly recent, in its own chunk),
 * else through the table. The first contribution of a sweep replaces an
 * interior record's old gradient (the write that a zeroing pass would
 * otherwise precede): it is added to -0, which keeps its sign. A record
 * that wants no gradient is written too (it is never read: the loop skips
 * such records, tg_grad() says NULL), which spares reading its code byte. */
static inline void add_in(const tg_tape *t, const tg_schunk *c, size_t p, double v) {
    if (p < c->base) c = tg__sc(t, p);
    double *g = &c->grad[p - c->base];
    *g = (tg__grad_unset(*g) ? -0.0 : *g) + v;
}
/* The same into a compact handle's gradient. */
static inline void add_to(tg_node *h, double v) {
    const tg_schunk *c = tg__hsc(h);
    add_in(c->tape, c, tg__cpos(h), v);
}
static inline double value_in(const tg_tape *t, const tg_schunk *c, size_t p) {
    if (p < c->base) c = tg__sc(t, p);
    return c->slot[p - c->base].v;
}

/* Adds the seed (NULL: ones) into out's gradient, or, when write is set,
 * stores it there (no zeroing pass first). */
static void put_seed(tg_node *out, const void *seed, bool write) {
    size_t k = tg__numel(out);
    if (tg__f64(out)) {
        double *g = out->grad;
        for (size_t i = 0; i < k; i++)
            g[i] = (write ? -0.0 : g[i]) + (seed ? ((const double *)seed)[i] : 1.0);
    } else {
        float *g = out->grad;
        for (size_t i = 0; i < k; i++)
            g[i] = (write ? -0.0f : g[i]) + (seed ? ((const float *)seed)[i] : 1.0f);
    }
}

/* The output's gradient is the seed: an interior output's is written
 * directly (its old contents are stale), a leaf's accumulates. */
static int seed_output(tg_node *out, const void *seed) {
    if (tg__is_compact(out)) {
        add_to(out, seed ? *(const double *)seed : 1.0);
        return 0;
    }
    if (!out->op) {
        if (touch(out)) return -1;
        put_seed(out, seed, out->flags & TG_F_FRESH);
        out->flags &= (uint8_t)~TG_F_FRESH;
        return 0;
    }
    out->flags |= TG_F_REACHED;
    if (tg__grad_memory(out)) return -1;
    put_seed(out, seed, true);
    return 0;
}

/* The step of a reached 64-byte node: its backward rule (a leaf's is
 * nothing). */
static int full_step(tg_tape *t, tg_node *n) {
    n->flags &= (uint8_t)~TG_F_REACHED;
    if (!n->op) return 0;
    bool writer = tg__fresh_writer[n->op];
    for (int k = 0, nin = tg__nin(n); k < nin; k++) {
        tg_node *in = tg__in(n, k);
        if (!in) continue;
        /* A compact input's gradient (in its chunk, which its view points
         * at) is readied: an unset one becomes -0, so that the op's rule
         * adds into it at its own position, as into a 64-byte input. */
        if (tg__is_compact(in)) {
            add_to(in, -0.0);
            continue;
        }
        if (!(in->flags & TG_F_NEEDS_GRAD)) continue;
        if (touch(in)) return -1;
        if (!writer) tg__ready_grad(in);
    }
    tg__backward(n);
    for (int k = 0, nin = tg__nin(n); writer && k < nin; k++) {
        tg_node *in = tg__in(n, k);
        if (in && !tg__is_compact(in)) in->flags &= (uint8_t)~TG_F_FRESH;
    }
    if (t->status) return -1;
    if (t->check_numerics)
        for (int k = 0, nin = tg__nin(n); k < nin; k++) {
            tg_node *in = tg__in(n, k);
            if (in && tg__needs_grad(in) && tg__grad_of(in)) tg__check_finite(n, k);
        }
    return 0;
}

/* One backward loop over the positions from out's. A compact record's step
 * is a multiply-add per input with the partials stored at recording (their
 * index pp runs down with the loop); a 64-byte node's is its op's rule. */
static int sweep(tg_node *out, const void *seed) {
    tg_tape *t = tg__tape_of(out);
    size_t top = tg__id(out);
    if (!tg__needs_grad(out)) return t->status; /* nothing wants a gradient */
    if (tg__scalar_prepare(t, top) || seed_output(out, seed)) return t->status;
    size_t pp = tg__part_index(t, top);
    for (size_t p = top + 1; p > 0;) { /* chunk by chunk, down from top's */
        tg_schunk *c = tg__sc(t, p - 1);
        size_t end = p - c->base;
        p = c->base;
        /* the chunk's arrays, held while the loop stores through others */
        const uint8_t *codes = c->code;
        const uint32_t *in0 = c->in[0], *in1 = c->in[1];
        const tg_slot *slot = c->slot;
        const double *grad = c->grad;
        for (size_t l = end; l-- > 0;) {
            uint8_t code = codes[l];
            pp -= tg__nparts[code & 0x7f];
            if ((code & TG_C_KIND) == TG_K_FULL) {
                if ((slot[l].node->flags & TG_F_REACHED) && full_step(t, slot[l].node))
                    return t->status;
                continue;
            }
            if (!(code & TG_C_NG)) continue; /* no gradient wanted */
            double g = grad[l];
            if (tg__grad_unset(g)) continue; /* not reached */
            size_t a = in0[l], b = in1[l];
            switch (tg__kind_cls[code & TG_C_KIND]) {
            case TG_CLS_ADD: add_in(t, c, a, g), add_in(t, c, b, g); break;
            case TG_CLS_SUB: add_in(t, c, a, g), add_in(t, c, b, g * -1.0); break; /* as the kernels */
            case TG_CLS_NEG: add_in(t, c, a, g * -1.0); break;
            case TG_CLS_MUL:
                add_in(t, c, a, g * value_in(t, c, b));
                add_in(t, c, b, g * value_in(t, c, a));
                break;
            case TG_CLS_P1: add_in(t, c, a, g * tg__part(t, pp)); break;
            case TG_CLS_P2:
                add_in(t, c, a, g * tg__part(t, pp));
                add_in(t, c, b, g * tg__part(t, pp + 1));
                break;
            case TG_CLS_ROUTE: { /* g * 0 would be NaN for an infinite g: a loser gets 0 */
                double pa = tg__part(t, pp), pb = tg__part(t, pp + 1);
                add_in(t, c, a, pa == 0 ? 0.0 : g * pa);
                add_in(t, c, b, pb == 0 ? 0.0 : g * pb);
                break;
            }
            case TG_CLS_NONE: /* a zero derivative still reaches the inputs */
                for (int i = 0; i < tg__kinds[code & TG_C_KIND].arity; i++)
                    add_in(t, c, i ? b : a, 0.0);
                break;
            default: break; /* leaves */
            }
        }
    }
    return t->status;
}

/* Clears the marks a failed sweep may have left, so the next sweep starts
 * clean; a gradient it left fresh is given its defined value, -0. */
static void clear_marks(tg_tape *t) {
    for (size_t i = 0; i < t->nnodes; i++) {
        tg_schunk *c = tg__sc(t, i);
        size_t l = tg__sl(c, i);
        if ((c->code[l] & TG_C_KIND) != TG_K_FULL) continue;
        tg__ready_grad(c->slot[l].node);
        c->slot[l].node->flags &= (uint8_t)~TG_F_REACHED;
    }
}

static int backward(tg_node *out, const void *seed, const char *who) {
    if (!out) return TG_ERR_NULL;
    tg_tape *t = tg__tape_of(out);
    if (t->status) return t->status;
    if (out == &t->poison) return tg_fail(t, TG_ERR_STATE, "%s: output is the poison node", who);
    if (tg__stale(out))
        return tg_fail(t, TG_ERR_STATE,
                       "%s: output (node %zu) was recorded before tg_tape_reset() and is gone",
                       who, tg__id(out));
    if (!seed && tg_numel(out) != 1) {
        char s[64];
        return tg_fail(t, TG_ERR_STATE,
                       "%s: output has shape %s; a non-scalar output needs a seed "
                       "(tg_backward_seeded)",
                       who, tg__shape_str(out, s));
    }
    int rc = sweep(out, seed);
    if (rc) clear_marks(t);
    return rc;
}

int tg_backward(tg_node *out) { return backward(out, NULL, "backward"); }

int tg_backward_seeded(tg_node *out, const void *seed) {
    if (out && !seed) return tg_fail(tg__tape_of(out), TG_ERR_NULL, "backward_seeded: seed is NULL");
    return backward(out, seed, "backward_seeded");
}

int tg_forward(tg_tape *t) { return t ? tg__forward_from(t, 0) : TG_ERR_NULL; }

int tg__forward_from(tg_tape *t, size_t from) { return tg__forward_range(t, from, t->nnodes); }

int tg__forward_range(tg_tape *t, size_t from, size_t to) {
    if (to > t->nnodes) to = t->nnodes;
    size_t part = from && from <= t->nnodes ? tg__part_index(t, from - 1) : 0;
    for (size_t i = from; i < to && !t->status; i++) {
        uint8_t kind = tg__code(t, i) & TG_C_KIND;
        if (kind >= TG_K_OPS) {
            tg__scalar_forward(t, i, &part);
            continue;
        }
        if (kind != TG_K_FULL) continue;
        tg_node *n = tg__node_at(t, i);
        if (!n->op) continue;
        tg__run_forward(n);
        if (t->check_numerics) tg__check_finite(n, -1);
    }
    return t->status;
}

void tg_zero_grad(tg_tape *t) {
    if (!t) return;
    for (size_t i = 0; i < t->nnodes; i++) {
        tg_node *n = tg__node_at(t, i);
        if (tg__is_compact(n)) {
            double *g = tg__hgrad(n);
            if (g && tg__is_leaf(n)) *g = 0;
        } else if (!n->op && n->grad) {
            tg__clear_grad(n);
        }
    }
}
