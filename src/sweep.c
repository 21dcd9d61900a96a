/*
 * The reverse sweep, and replay.
 *
 * The tape is in creation order, which is a topological order: every node's
 * consumers come after it. So one backward loop from the output visits each
 * node after all its consumers have added their part to its gradient, with no
 * recursion, no sort and no visited set. The first consumer to reach a node
 * ("touch") marks it REACHED and zeroes its gradient; the loop runs the
 * backward rule of REACHED nodes only, so nodes off every path from a wanted
 * leaf to the output cost one flag test.
 */
#include "internal.h"

/* Prepares n to receive gradient: on its first touch in this sweep, gives it
 * memory and, unless it is a leaf (whose gradients accumulate across sweeps),
 * zeroes it. */
static inline int touch(tg_node *n) {
    if (n->flags & TG_F_REACHED) return 0;
    n->flags |= TG_F_REACHED;
    if (!n->grad) return tg__alloc_grad(n);
    if (n->op) tg__clear_grad(n);
    return 0;
}

/* Adds the seed (NULL: ones) into out's gradient, or, when write is set,
 * stores it there (no zeroing pass first). */
static void put_seed(tg_node *out, const void *seed, bool write) {
    size_t k = tg__numel(out);
    if (tg__f64(out)) {
        double *g = out->grad;
        for (size_t i = 0; i < k; i++)
            g[i] = (write ? 0 : g[i]) + (seed ? ((const double *)seed)[i] : 1.0);
    } else {
        float *g = out->grad;
        for (size_t i = 0; i < k; i++)
            g[i] = (write ? 0 : g[i]) + (seed ? ((const float *)seed)[i] : 1.0f);
    }
}

/* The output's gradient is the seed: an interior output's is written
 * directly (its old contents are stale), a leaf's accumulates. */
static int seed_output(tg_node *out, const void *seed) {
    if (!out->op) {
        if (touch(out)) return -1;
        put_seed(out, seed, false);
        return 0;
    }
    out->flags |= TG_F_REACHED;
    if (tg__grad_memory(out)) return -1;
    put_seed(out, seed, true);
    return 0;
}

static int sweep(tg_node *out, const void *seed) {
    tg_tape *t = out->tape;
    if (!(out->flags & TG_F_NEEDS_GRAD)) return t->status; /* nothing wants a gradient */
    if (seed_output(out, seed)) return t->status;
    for (size_t c = ((size_t)out->id >> TG_CHUNK_BITS) + 1; c-- > 0;) {
        tg_node *chunk = t->chunks[c];
        size_t top = c == (size_t)out->id >> TG_CHUNK_BITS ? (out->id & (TG_CHUNK_NODES - 1)) + 1
                                                            : TG_CHUNK_NODES;
        for (tg_node *n = chunk + top; n-- > chunk;) {
            if (!(n->flags & TG_F_REACHED)) continue;
            n->flags &= (uint8_t)~TG_F_REACHED;
            if (!n->op) continue;
            for (int k = 0, nin = tg__nin(n); k < nin; k++) {
                tg_node *in = tg__in(n, k);
                if (in && (in->flags & TG_F_NEEDS_GRAD) && touch(in)) return t->status;
            }
            tg__op(n->op)->backward(n);
            if (t->check_numerics)
                for (int k = 0, nin = tg__nin(n); k < nin; k++) {
                    tg_node *in = tg__in(n, k);
                    if (in && in->grad && (in->flags & TG_F_NEEDS_GRAD)) tg__check_finite(n, k);
                }
        }
    }
    return t->status;
}

/* Clears the marks a failed sweep may have left, so the next sweep starts clean. */
static void clear_marks(tg_tape *t) {
    for (size_t i = 0; i < t->nnodes; i++) tg__node_at(t, i)->flags &= (uint8_t)~TG_F_REACHED;
}

static int backward(tg_node *out, const void *seed, const char *who) {
    if (!out) return TG_ERR_NULL;
    tg_tape *t = out->tape;
    if (t->status) return t->status;
    if (out == &t->poison) return tg_fail(t, TG_ERR_STATE, "%s: output is the poison node", who);
    if (tg__stale(out))
        return tg_fail(t, TG_ERR_STATE,
                       "%s: output (node %u) was recorded before tg_tape_reset() and is gone",
                       who, (unsigned)out->id);
    if (!seed && tg__numel(out) != 1) {
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
    if (out && !seed) return tg_fail(out->tape, TG_ERR_NULL, "backward_seeded: seed is NULL");
    return backward(out, seed, "backward_seeded");
}

int tg_forward(tg_tape *t) {
    if (!t) return TG_ERR_NULL;
    for (size_t i = 0; i < t->nnodes && !t->status; i++) {
        tg_node *n = tg__node_at(t, i);
        if (!n->op) continue;
        tg__op(n->op)->forward(n);
        if (t->check_numerics) tg__check_finite(n, -1);
    }
    return t->status;
}

void tg_zero_grad(tg_tape *t) {
    if (!t) return;
    for (size_t i = 0; i < t->nnodes; i++) {
        tg_node *n = tg__node_at(t, i);
        if (!n->op && n->grad) tg__clear_grad(n);
    }
}
