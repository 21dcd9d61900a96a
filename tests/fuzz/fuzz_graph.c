/*
 * Fuzz target: the core. The input is a little program that builds a graph
 * from random leaves (any dtype, 0 to 5 dimensions, sizes including 0,
 * negative and absurd ones, owned or caller memory) and random ops (every
 * public op, and every registered op by name with the right or the wrong
 * number of inputs), records gradients with tg_grad, sweeps backward, replays
 * forward and sweeps again.
 *
 * What must hold for every input: no crash, no sanitizer report; a tape in
 * error keeps a non-empty message naming something; a replay (tg_forward)
 * with unchanged leaves reproduces every value bit for bit.
 *
 * The library's allocator is replaced by one that refuses blocks above
 * 2 MiB: shapes within TG_MAX_NUMEL but too big for it must end in
 * TG_ERR_NOMEM, not in the fuzzer's out-of-memory report.
 */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "scalar.h"

typedef struct reader {
    const uint8_t *p;
    size_t n;
} reader;

static unsigned byte(reader *r) {
    if (!r->n) return 0;
    r->n--;
    return *r->p++;
}

static int64_t i64(reader *r) {
    uint64_t v = 0;
    for (int i = 0; i < 8; i++) v = v << 8 | byte(r);
    return (int64_t)v;
}

#define MAX_NODES 48
#define MAX_BUFS 16
#define SMALL 64 /* at most 4 x 4 x 2 x 2 elements in a caller buffer */

typedef struct prog {
    reader r;
    tg_tape *t;
    tg_node *nodes[MAX_NODES];
    int count;
    double *bufs[MAX_BUFS];
    int nbufs;
} prog;

static tg_node *pick(prog *g) {
    unsigned b = byte(&g->r);
    if (b == 255 || g->count == 0) return NULL;
    return g->nodes[b % (unsigned)g->count];
}

static void push(prog *g, tg_node *n) {
    if (g->count < MAX_NODES)
        g->nodes[g->count++] = n;
    else
        g->nodes[byte(&g->r) % MAX_NODES] = n;
}

/* A dimension: mostly 1..4, sometimes 0, negative or huge. */
static int64_t dim(reader *r) {
    unsigned b = byte(r);
    if (b == 255) return i64(r);
    if (b == 254) return -1;
    if (b == 253) return 0;
    return 1 + b % 4;
}

static void leaf(prog *g) {
    unsigned kind = byte(&g->r);
    tg_dtype dtype = kind & 1 ? TG_F64 : TG_F32;
    if ((kind & 0xe) == 0xe) dtype = (tg_dtype)7; /* an unknown dtype */
    int ndim = (int)((kind >> 4) % 6);            /* 5: too many */
    int64_t shape[5];
    int64_t numel = 1;
    for (int i = 0; i < ndim; i++) {
        shape[i] = dim(&g->r);
        numel = shape[i] >= 1 && shape[i] <= 4 && numel > 0 ? numel * shape[i] : -1;
    }
    double data[SMALL];
    float fdata[SMALL];
    for (int i = 0; i < SMALL; i++) {
        data[i] = (int8_t)byte(&g->r) / 16.0;
        fdata[i] = (float)data[i];
    }
    const void *init = dtype == TG_F64 ? (const void *)data : (const void *)fdata;
    if (numel < 0 || numel > SMALL) init = NULL; /* zeros, or refused anyway */
    switch ((kind >> 1) % 5) {
    case 0: push(g, tg_tensor(g->t, dtype, ndim, shape, init)); break;
    case 1: push(g, tg_input(g->t, dtype, ndim, shape, init)); break;
    case 2: push(g, (kind & 0x80) ? tg_scalar(g->t, data[0]) : tg_const(g->t, data[0])); break;
    case 3: push(g, tg_const_as(g->t, dtype, data[1])); break;
    default: { /* caller memory, big enough for any shape that can be accepted */
        if (g->nbufs + 2 > MAX_BUFS || numel < 0 || numel > SMALL) {
            push(g, tg_view(g->t, dtype, ndim, shape, NULL, NULL));
            break;
        }
        double *v = calloc(SMALL, sizeof *v), *gr = calloc(SMALL, sizeof *gr);
        if (!v || !gr) abort();
        if (dtype == TG_F64) memcpy(v, data, sizeof data);
        else memcpy(v, fdata, sizeof fdata);
        g->bufs[g->nbufs++] = v;
        g->bufs[g->nbufs++] = gr;
        push(g, tg_view(g->t, dtype, ndim, shape, v, (kind & 0x80) ? gr : NULL));
    }
    }
}

typedef tg_node *(*unary_fn)(tg_node *);
typedef tg_node *(*binary_fn)(tg_node *, tg_node *);
static const unary_fn unary[] = {tg_neg,  tg_exp,  tg_log,     tg_sqrt,      tg_abs,
                                 tg_sin,  tg_cos,  tg_tanh,    tg_sigmoid,   tg_relu,
                                 tg_sum,  tg_mean, tg_transpose};
static const binary_fn binary[] = {tg_add,    tg_sub, tg_mul,         tg_div,
                                   tg_matmul, tg_mse, tg_softmax_xent};
#define COUNT(a) ((unsigned)(sizeof(a) / sizeof *(a)))

static void step(prog *g) {
    unsigned op = byte(&g->r);
    switch (op % 12) {
    case 0:
    case 1: leaf(g); break;
    case 2:
    case 3: {
        tg_node *x = pick(g);
        push(g, unary[byte(&g->r) % COUNT(unary)](x));
        break;
    }
    case 4:
    case 5: {
        tg_node *a = pick(g), *b = pick(g);
        push(g, binary[byte(&g->r) % COUNT(binary)](a, b));
        break;
    }
    case 6: {
        tg_node *x = pick(g);
        double p = (int8_t)byte(&g->r) / 4.0;
        push(g, (op & 0x10) ? tg_scale(x, p) : tg_pow(x, p));
        break;
    }
    case 7: {
        tg_node *x = pick(g);
        int axis = (int8_t)byte(&g->r) % 6;
        switch (byte(&g->r) % 4) {
        case 0: push(g, tg_sum_axis(x, axis)); break;
        case 1: push(g, tg_mean_axis(x, axis)); break;
        case 2: push(g, tg_softmax(x, axis)); break;
        default: push(g, tg_log_softmax(x, axis)); break;
        }
        break;
    }
    case 8: {
        tg_node *x = pick(g);
        int ndim = (int)(byte(&g->r) % 6) - (op & 0x80 ? 1 : 0); /* -1 .. 5 */
        int64_t shape[5];
        for (int i = 0; i < 5; i++) shape[i] = dim(&g->r);
        push(g, tg_reshape(x, ndim, (op & 0x40) && ndim ? NULL : shape));
        break;
    }
    case 9: { /* any registered op by name, with 1, 2 or 3 inputs */
        int n = tg_op_count();
        const tg_op *o = tg_op_at((int)(byte(&g->r) % (unsigned)(n + 1)) - (op & 0x80 ? 1 : 0));
        tg_node *in[3] = {pick(g), (op & 0x40) ? pick(g) : NULL, (op & 0x10) ? pick(g) : NULL};
        push(g, tg_call_n(o ? o->name : (op & 0x20 ? "no-such-op" : NULL), 3, in));
        break;
    }
    case 10: { /* a sweep in the middle of recording, or a recorded gradient */
        tg_node *x = pick(g);
        if (op & 0x10) {
            tg_node *wrt[2] = {pick(g), pick(g)}, *grads[2];
            if (x && tg_grad(x, 1 + (op & 1), wrt, grads) == TG_OK) {
                push(g, grads[0]);
                if (op & 1) push(g, grads[1]);
            }
        } else if (x && tg_numel(x) == 1)
            tg_backward(x);
        else if (x && tg_numel(x) <= SMALL) {
            double seed[SMALL];
            for (int i = 0; i < SMALL; i++) seed[i] = 1;
            tg_backward_seeded(x, (op & 0x20) ? NULL : seed);
        } else
            tg_backward(x);
        break;
    }
    default:
        if (op & 0x80) tg_zero_grad(g->t);
        else if (op & 0x40) tg_set_check_numerics(g->t, op & 1);
        else tg_forward(g->t);
        break;
    }
}

/* Every recorded value, bytewise, then a replay must give the same bytes. */
static void check_replay(tg_tape *t) {
    if (tg_status(t)) return;
    size_t n = tg_tape_size(t), total = 0;
    for (size_t i = 0; i < n; i++) {
        tg_node *x = tg_tape_node(t, i);
        total += (size_t)tg_numel(x) * (tg_node_dtype(x) == TG_F64 ? 8 : 4);
    }
    unsigned char *before = malloc(total ? total : 1);
    if (!before) abort();
    size_t at = 0;
    for (size_t i = 0; i < n; i++) {
        tg_node *x = tg_tape_node(t, i);
        size_t k = (size_t)tg_numel(x) * (tg_node_dtype(x) == TG_F64 ? 8 : 4);
        memcpy(before + at, tg_value(x), k);
        at += k;
    }
    if (tg_forward(t) == TG_OK) {
        at = 0;
        for (size_t i = 0; i < n; i++) {
            tg_node *x = tg_tape_node(t, i);
            size_t k = (size_t)tg_numel(x) * (tg_node_dtype(x) == TG_F64 ? 8 : 4);
            if (memcmp(before + at, tg_value(x), k)) {
                fprintf(stderr, "replay changed the value of node %zu (%s)\n", i,
                        tg_node_op_name(x));
                abort();
            }
            at += k;
        }
    }
    free(before);
}

#define CAP ((size_t)2 << 20) /* the tape's 1 MiB blocks fit; bigger tensors are slow */
static void *capped_malloc(size_t n, void *ctx) {
    (void)ctx;
    return n > CAP ? NULL : malloc(n);
}
static void *capped_realloc(void *p, size_t n, void *ctx) {
    (void)ctx;
    return n > CAP ? NULL : realloc(p, n);
}
static void capped_free(void *p, void *ctx) {
    (void)ctx;
    free(p);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    static int ready;
    if (!ready) { /* before the first tape, as tg_set_allocator requires */
        static const tg_allocator capped = {capped_malloc, capped_realloc, capped_free, NULL};
        tg_set_allocator(&capped);
        ready = 1;
    }
    prog g;
    memset(&g, 0, sizeof g);
    g.r.p = data;
    g.r.n = size;
    g.t = tg_tape_new();
    if (!g.t) abort();
    tg_set_check_numerics(g.t, byte(&g.r) & 1);
    for (int round = 0; round < 2; round++) {
        for (int steps = 0; steps < 256 && g.r.n; steps++) step(&g);
        if (tg_status(g.t) && !*tg_status_message(g.t)) {
            fprintf(stderr, "status %d without a message\n", tg_status(g.t));
            abort();
        }
        check_replay(g.t);
        tg_node *last = g.count ? g.nodes[g.count - 1] : NULL;
        if (last && tg_numel(last) == 1) {
            tg_zero_grad(g.t);
            tg_backward(last);
            tg_backward(last);
        }
        tg_tape_reset(g.t); /* the second round reuses the memory */
        g.count = 0;
    }
    tg_tape_free(g.t);
    for (int i = 0; i < g.nbufs; i++) free(g.bufs[i]);
    return 0;
}
