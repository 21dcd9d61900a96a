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
 * sweep recorded, by op, inputs and parameter.
 */
#include "rules.h"
#include "alloc.h"

/* Direct-mapped, on the sweep's stack: the k calls of one node's rule come
 * one after another, so a few slots hold what they share; a collision only
 * loses a sharing, never a result (any entry found is a node of the tape
 * recorded from that op, inputs and parameter). */
#define MEMO_SLOTS 256
struct tg_memo {
    struct memo_slot {
        const tg_op *op;
        tg_node *in[3], *out;
        int aux;
    } slot[MEMO_SLOTS];
};

static size_t memo_hash(const tg_op *op, int nin, tg_node *const *in, int aux) {
    uint64_t h = (uint64_t)(uintptr_t)op ^ (uint64_t)(uint32_t)aux;
    for (int k = 0; k < nin && k < 3; k++) h = h * 0x9e3779b97f4a7c15u ^ (uint64_t)(uintptr_t)in[k];
    return (size_t)((h * 0x9e3779b97f4a7c15u) >> 40) % MEMO_SLOTS;
}

static struct memo_slot *memo_slot(tg_tape *t, const tg_op *op, int nin, tg_node *const *in,
                                   int aux) {
    return &t->memo->slot[memo_hash(op, nin, in, aux)];
}

tg_node *tg__memo_find(tg_tape *t, const tg_op *op, int nin, tg_node *const *in, int aux) {
    struct memo_slot *s = memo_slot(t, op, nin, in, aux);
    if (s->op != op || s->aux != aux) return NULL;
    for (int k = 0; k < 3; k++)
        if (s->in[k] != (k < nin ? in[k] : NULL)) return NULL;
    return s->out;
}

void tg__memo_put(tg_tape *t, const tg_op *op, int nin, tg_node *const *in, int aux,
                  tg_node *out) {
    struct memo_slot *s = memo_slot(t, op, nin, in, aux);
    *s = (struct memo_slot){op, {NULL, NULL, NULL}, out, aux};
    for (int k = 0; k < nin && k < 3; k++) s->in[k] = in[k];
}

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
    size_t span = top - lo + 1;
    tg_node **tan = tg__calloc(span * (size_t)k, sizeof *tan);
    if (!tan) return tg_fail(t, TG_ERR_NOMEM, "jvp: out of memory for %zu nodes", span);
    struct tg_memo memo = {0};
    if (k > 1) t->memo = &memo;
    /* A wrt node's tangent is its v (summed when it is listed twice), and is
     * never replaced by one from its inputs: a tangent set before the sweep
     * reaches a position is a seed. */
    for (int i = 0; i < n; i++) {
        size_t p = tg__id(wrt[i]);
        if (p > top) continue; /* out cannot depend on it */
        for (int j = 0; j < k; j++) {
            tg_node **s = &tan[(p - lo) * (size_t)k + (size_t)j];
            *s = *s ? tg_add(*s, v[j * n + i]) : v[j * n + i];
        }
    }
    for (size_t p = lo; p <= top && !t->status; p++) {
        size_t in[3];
        int m = tg__inputs_of(t, p, in);
        tg_node **here = &tan[(p - lo) * (size_t)k];
        if (here[0] || !m) continue;
        tg_node *y = tg__node_at(t, p);
        const tg_op *op = NULL;
        if (tg__is_compact(y) || y->op) /* else a bridge: the identity */
            op = tg__op(tg__is_compact(y) ? tg__kinds[tg__hcode(y) & TG_C_KIND].op : y->op);
        for (int j = 0; j < k && !t->status; j++) {
            tg_node *tin[3] = {NULL, NULL, NULL};
            bool any = false;
            for (int q = 0; q < m; q++) {
                tin[q] = in[q] >= lo ? tan[(in[q] - lo) * (size_t)k + (size_t)j] : NULL;
                any |= tin[q] != NULL;
            }
            if (!any) break; /* no input depends on wrt: zero for every j */
            tg_node *r = op ? tg__tangent(op, y, tin) : tin[0];
            /* A rule may give a tangent that broadcasts to the output's shape. */
            if (r && op && !t->status) r = tg__expand_like(r, y);
            here[j] = r;
        }
    }
    for (int o = 0; o < nout; o++)
        for (int j = 0; j < k && !t->status; j++) {
            size_t p = tg__id(outs[o]);
            tg_node *r = p >= lo ? tan[(p - lo) * (size_t)k + (size_t)j] : NULL;
            if (!r) { /* the output does not depend on wrt: a zero tangent */
                int64_t shape[TG_MAX_DIMS];
                int nd = tg_shape(outs[o], shape);
                r = tg_broadcast_to(tg__const_like(outs[o], 0), nd, shape);
            }
            jv[o * k + j] = r;
        }
    tg__free(tan);
    t->memo = NULL;
    return t->status;
}
