/*
 * Forward mode: the tangent sweep behind tg_jvp() and tg_jvp_many().
 *
 * The mirror of tg_grad (grad.c): one forward pass over the positions from
 * the first wrt node to out gives every node that depends on a wrt node a
 * tangent *node*, recorded by its op's tangent rule (derive.c: stated, or
 * derived from the vjp) from its inputs' tangents. The tangents are ordinary
 * nodes: they replay with tg_forward(), and tg_grad() of them gives mixed
 * second derivatives.
 *
 * With k directions at once each node gets k tangents, and the nodes a rule
 * records that do not depend on the direction (an op's derivative node:
 * sin_dx(x, y), the partials of a reduction) are recorded once for all k:
 * while the sweep runs, apply.c looks every op up in a memo of what the
 * sweep recorded, by op, inputs and parameter. On large tensors the sweep
 * goes direction by direction (BY_DIRECTION_FROM).
 */
#include "rules.h"
#include "alloc.h"

/* Open addressing (linear probing), never evicting: what the other
 * directions look up is what the first one recorded (an op's derivative
 * node), so only the first direction's nodes are stored. Swept direction by
 * direction, it holds the whole first direction (twice the room: a few
 * nodes per position); node by node, only the current position's (cleared
 * at the next), on the stack. A full memo (half its slots used) stores
 * nothing more: that loses a sharing, never a result (any entry found is a
 * node of the tape recorded from that op, inputs and parameter). */
#define MEMO_STACK_SLOTS 256
#define MEMO_MAX_SLOTS ((size_t)1 << 16)
struct memo_slot {
    const tg_op *op;
    tg_node *in[3], *out;
    int aux;
};
#define MEMO_POSITION_MAX 32
struct tg_memo {
    struct memo_slot *slot;
    size_t mask; /* slots - 1, a power of 2 */
    size_t used;
    bool store;  /* the sweep is at its first direction: new nodes are stored */
    bool by_position; /* node by node: the slots used at this position */
    size_t at[MEMO_POSITION_MAX];
};

static size_t memo_hash(const tg_op *op, int nin, tg_node *const *in, int aux) {
    uint64_t h = (uint64_t)(uintptr_t)op ^ (uint64_t)(uint32_t)aux;
    for (int k = 0; k < nin && k < 3; k++) h = h * 0x9e3779b97f4a7c15u ^ (uint64_t)(uintptr_t)in[k];
    return (size_t)((h * 0x9e3779b97f4a7c15u) >> 32);
}

static bool memo_is(const struct memo_slot *s, const tg_op *op, int nin, tg_node *const *in,
                    int aux) {
    if (s->op != op || s->aux != aux) return false;
    for (int k = 0; k < 3; k++)
        if (s->in[k] != (k < nin ? in[k] : NULL)) return false;
    return true;
}

/* The slot of that key, or the empty slot where it would go (the memo is
 * never full: at most half its slots are used). */
static struct memo_slot *memo_slot(const struct tg_memo *m, const tg_op *op, int nin,
                                   tg_node *const *in, int aux) {
    size_t i = memo_hash(op, nin, in, aux) & m->mask;
    while (m->slot[i].op && !memo_is(&m->slot[i], op, nin, in, aux)) i = (i + 1) & m->mask;
    return &m->slot[i];
}

tg_node *tg__memo_find(tg_tape *t, const tg_op *op, int nin, tg_node *const *in, int aux) {
    struct memo_slot *s = memo_slot(t->memo, op, nin, in, aux);
    return s->op ? s->out : NULL;
}

void tg__memo_put(tg_tape *t, const tg_op *op, int nin, tg_node *const *in, int aux,
                  tg_node *out) {
    struct tg_memo *m = t->memo;
    if (!m->store || 2 * (m->used + 1) > m->mask + 1) return;
    if (m->by_position && m->used == MEMO_POSITION_MAX) return;
    struct memo_slot *s = memo_slot(m, op, nin, in, aux);
    if (s->op) return; /* found by the caller's lookup, not recorded again */
    *s = (struct memo_slot){op, {NULL, NULL, NULL}, out, aux};
    for (int k = 0; k < nin && k < 3; k++) s->in[k] = in[k];
    if (m->by_position) m->at[m->used] = (size_t)(s - m->slot);
    m->used++;
}

/* Node by node, a new position: the last one's entries go. */
static void memo_next_position(struct tg_memo *m) {
    for (size_t i = 0; i < m->used; i++) m->slot[m->at[i]].op = NULL;
    m->used = 0;
}

/* What the sweep reads of a position, found once for the k directions: its
 * inputs as offsets from lo (SIZE_MAX: below lo, no tangent), m of them (0
 * when none is at lo or above: nothing to do), its node and op. */
struct sweep_pos {
    size_t in[3];
    int m;
    tg_node *y;
    const tg_op *op;
};

/* pos[p - lo] for the positions [lo, top]; the most elements of a node with
 * a tangent. */
static int64_t positions(tg_tape *t, size_t lo, size_t top, struct sweep_pos *pos) {
    int64_t largest = 0;
    for (size_t p = lo; p <= top; p++) {
        struct sweep_pos *s = &pos[p - lo];
        size_t in[3];
        int m = tg__inputs_of(t, p, in);
        bool any = false;
        for (int q = 0; q < m; q++) {
            s->in[q] = in[q] >= lo ? in[q] - lo : SIZE_MAX;
            any |= in[q] >= lo;
        }
        if (!any) continue;
        s->m = m;
        s->y = tg__node_at(t, p);
        s->op = tg__op(tg__op_index_of(s->y));
        int64_t e = tg_numel(s->y);
        if (e > largest) largest = e;
    }
    return largest;
}

/* The j-th tangent of the position at offset i from lo, by its op's rule
 * from its inputs' j-th tangents (tan[i * k + j]; a seed is kept). */
static void tangent_at(tg_tape *t, const struct sweep_pos *pos, tg_node **tan, size_t k,
                       size_t i, size_t j) {
    const struct sweep_pos *s = &pos[i];
    tg_node **here = &tan[i * k + j];
    if (t->memo) {
        t->memo->store = j == 0;
        if (j == 0 && t->memo->by_position) memo_next_position(t->memo);
    }
    if (*here || !s->m) return;
    tg_node *tin[3] = {NULL, NULL, NULL};
    bool any = false;
    for (int q = 0; q < s->m; q++) {
        tin[q] = s->in[q] != SIZE_MAX ? tan[s->in[q] * k + j] : NULL;
        any |= tin[q] != NULL;
    }
    if (!any) return; /* no input depends on wrt: a zero tangent */
    tg_node *r = tg__tangent(s->op, s->y, tin);
    /* A rule may give a tangent that broadcasts to the output's shape. */
    if (r && !t->status) r = tg__expand_like(r, s->y);
    *here = r;
}

/* From this many elements a node on, the k directions are swept one after
 * another (a tangent is read while it is still in cache, where node by node
 * the k tangents of a node come between: W2's function at n = 10^5, k = 8,
 * took 0.95 of 8 single passes against 1.06), with a memo that holds what
 * a whole direction records; below it, node by node, where the
 * k calls of a node's rule come one after another and a small memo shares
 * all their derivative nodes. Either order gives the same bits. */
#define BY_DIRECTION_FROM 4096

/* tan[(p - lo) * k + j]: the j-th tangent of position p, NULL for zero. */
int tg__tangents(int nout, tg_node *const *outs, int n, tg_node *const *wrt, int k,
                 tg_node *const *v, tg_node **jv) {
    tg_tape *t = tg__tape_of(outs[0]);
    size_t top = 0, lo = SIZE_MAX;
    for (int o = 0; o < nout; o++)
        if (tg__id(outs[o]) > top) top = tg__id(outs[o]);
    for (int i = 0; i < n; i++)
        if (tg__id(wrt[i]) < lo) lo = tg__id(wrt[i]);
    if (lo > top) lo = top; /* no output depends on any wrt node */
    size_t span = top - lo + 1, kk = (size_t)k;
    tg_node **tan = tg__calloc(span * kk, sizeof *tan);
    struct sweep_pos *pos = tg__calloc(span, sizeof *pos);
    struct memo_slot stack_slots[MEMO_STACK_SLOTS] = {{0}};
    struct tg_memo memo = {.slot = stack_slots, .mask = MEMO_STACK_SLOTS - 1};
    int64_t largest = pos ? positions(t, lo, top, pos) : 0;
    bool by_direction = k > 1 && largest >= BY_DIRECTION_FROM;
    memo.by_position = !by_direction;
    if (tan && pos && by_direction) { /* about 8 slots per position */
        size_t slots = MEMO_STACK_SLOTS;
        while (slots < MEMO_MAX_SLOTS && slots < 8 * span) slots *= 2;
        if (slots > MEMO_STACK_SLOTS) {
            memo.slot = tg__calloc(slots, sizeof *memo.slot);
            memo.mask = slots - 1;
        }
    }
    if (!tan || !pos || !memo.slot) {
        tg__free(tan);
        tg__free(pos);
        return tg_fail(t, TG_ERR_NOMEM, "jvp: out of memory for %zu nodes", span);
    }
    if (k > 1) t->memo = &memo;
    /* A wrt node's tangent is its v (summed when it is listed twice), and is
     * never replaced by one from its inputs: a tangent set before the sweep
     * reaches a position is a seed. */
    for (int i = 0; i < n; i++) {
        size_t p = tg__id(wrt[i]);
        if (p > top) continue; /* out cannot depend on it */
        for (int j = 0; j < k; j++) {
            tg_node **s = &tan[(p - lo) * kk + (size_t)j];
            *s = *s ? tg_add(*s, v[j * n + i]) : v[j * n + i];
        }
    }
    if (by_direction)
        for (size_t j = 0; j < kk && !t->status; j++)
            for (size_t i = 0; i < span && !t->status; i++) tangent_at(t, pos, tan, kk, i, j);
    else
        for (size_t i = 0; i < span && !t->status; i++)
            for (size_t j = 0; j < kk && !t->status; j++) tangent_at(t, pos, tan, kk, i, j);
    for (int o = 0; o < nout; o++)
        for (int j = 0; j < k && !t->status; j++) {
            size_t p = tg__id(outs[o]);
            tg_node *r = p >= lo ? tan[(p - lo) * kk + (size_t)j] : NULL;
            if (!r) { /* the output does not depend on wrt: a zero tangent */
                int64_t shape[TG_MAX_DIMS];
                int nd = tg_shape(outs[o], shape);
                r = tg_broadcast_to(tg__const_like(outs[o], 0), nd, shape);
            }
            jv[o * k + j] = r;
        }
    tg__free(tan);
    tg__free(pos);
    if (memo.slot != stack_slots) tg__free(memo.slot);
    t->memo = NULL;
    return t->status;
}
