/*
 * F1: the gradient of a function object (tapegrad/fn.h) re-evaluated at a
 * new point, against a warm replay by hand of the same recording: the new
 * point written into the leaves, tg_forward(), tg_backward() (the hand
 * version neither zeroes the leaves' gradients nor reads them: its least
 * work). The target: at most 1.2x, and no allocation in the object's
 * calls (counted through tg_set_allocator). Float64, one thread:
 *   a  W2's function f(x) = sum_{i<n-1} (x_i x_{i+1} + sin(x_i) exp(-x_{i+1}))
 *      on n = 10^5 compact scalars (the scalar tape);
 *   b  W1's loss (784-100-10 sigmoid network with biases, batch 128,
 *      tg_mse) in its four parameter tensors (79,510 inputs);
 *   c  the Rosenbrock sum of 20 compact scalars (a small function, where
 *      what a call costs besides the sweeps shows).
 * Each sample times INNER calls of each side, at points that alternate
 * between two so that every call is at a new point; which side goes first
 * alternates sample by sample. After two warm-up samples, prints per
 * workload the median per call over the samples, the range, the ratio of
 * the medians and the median of the samples' ratios (paired_ratio, the
 * figure that a changing load moves least).
 *   usage: fn_grad [samples]      (default 15)
 */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <tapegrad.h>

#include "bench.h"

static unsigned long long seed = 11;
static double uniform(void) { return (double)(bench_next(&seed) >> 11) * 0x1.0p-53 - 0.5; }

static long allocations;
static void *count_malloc(size_t n, void *ctx) { return (void)ctx, allocations++, malloc(n); }
static void *count_realloc(void *p, size_t n, void *ctx) {
    return (void)ctx, allocations++, realloc(p, n);
}
static void count_free(void *p, void *ctx) { (void)ctx, free(p); }

static void die(const char *what, const char *msg) {
    fprintf(stderr, "fn_grad: %s: %s\n", what, msg);
    exit(1);
}

/* ---- the recorders ---- */
enum { NA = 100000, B = 128, D0 = 784, D1 = 100, D2 = 10, NC = 20 };
static double *bx, *by;
static const int64_t bshape[4][2] = {{D0, D1}, {1, D1}, {D1, D2}, {1, D2}};

static int rec_a(tg_tape *t, const double *x, tg_node **in, tg_node **out, void *ctx) {
    (void)ctx;
    for (int i = 0; i < NA; i++) in[i] = tg_scalar(t, x[i]);
    tg_node *s = tg_const(t, 0);
    for (int i = 0; i + 1 < NA; i++)
        s = tg_add(s, tg_add(tg_mul(in[i], in[i + 1]), tg_mul(tg_sin(in[i]), tg_exp(tg_neg(in[i + 1])))));
    out[0] = s;
    return tg_status(t);
}

static int rec_b(tg_tape *t, const double *x, tg_node **in, tg_node **out, void *ctx) {
    (void)ctx;
    const int64_t sx[2] = {B, D0}, sy[2] = {B, D2};
    tg_node *xi = tg_input(t, TG_F64, 2, sx, bx), *yi = tg_input(t, TG_F64, 2, sy, by);
    for (int i = 0; i < 4; i++) {
        in[i] = tg_tensor(t, TG_F64, 2, bshape[i], x);
        x += bshape[i][0] * bshape[i][1];
    }
    tg_node *h = tg_sigmoid(tg_add(tg_matmul(xi, in[0]), in[1]));
    out[0] = tg_mse(tg_sigmoid(tg_add(tg_matmul(h, in[2]), in[3])), yi);
    return tg_status(t);
}

static int rec_c(tg_tape *t, const double *x, tg_node **in, tg_node **out, void *ctx) {
    (void)ctx;
    for (int i = 0; i < NC; i++) in[i] = tg_scalar(t, x[i]);
    tg_node *s = tg_const(t, 0), *one = tg_const(t, 1);
    for (int i = 0; i + 1 < NC; i++) {
        tg_node *u = tg_sub(in[i + 1], tg_mul(in[i], in[i])), *v = tg_sub(one, in[i]);
        s = tg_add(s, tg_add(tg_scale(tg_mul(u, u), 100), tg_mul(v, v)));
    }
    out[0] = s;
    return tg_status(t);
}

/* ---- the two sides ---- */
typedef struct work {
    const char *name;
    int nin, inner;
    size_t n;
    tg_fn_recorder rec;
    tg_fn *f;                /* the object */
    tg_tape *t;              /* the hand replay's tape */
    tg_node *in[NA], *out;   /* its leaves and output */
    double *x[2], *g, fx;
} work;

/* The same point as the object's, by hand: the values into the leaves. */
static void put_point(work *w, const double *x) {
    for (int i = 0, c = 0; i < w->nin; i++) {
        int64_t k = tg_numel(w->in[i]);
        memcpy(tg_value(w->in[i]), x + c, (size_t)k * sizeof(double));
        c += (int)k;
    }
}

static double sink;
static void hand(work *w, int k) {
    put_point(w, w->x[k & 1]);
    tg_forward(w->t);
    tg_backward(w->out);
    sink += tg_value_scalar(w->out);
}

static void object(work *w, int k) {
    tg_error err;
    if (tg_fn_grad(w->f, w->x[k & 1], &w->fx, w->g, &err)) die(w->name, err.message);
    sink += w->fx;
}

static void run(work *w, int samples) {
    tg_error err;
    for (int j = 0; j < 2; j++) {
        w->x[j] = malloc(w->n * sizeof(double));
        if (!w->x[j]) die(w->name, "out of memory");
        for (size_t i = 0; i < w->n; i++) w->x[j][i] = (w->name[2] == 'b' ? 0.2 : 2) * uniform();
    }
    w->g = malloc(w->n * sizeof(double));
    w->f = tg_fn_record(w->nin, 1, w->rec, NULL, w->x[0], &err);
    if (!w->f || !w->g) die(w->name, err.message);
    tg_fn_set_branch_mode(w->f, TG_FN_BRANCH_FAIL, NULL); /* no branches: the check is empty */
    w->t = tg_tape_new();
    if (!w->t || w->rec(w->t, w->x[0], w->in, &w->out, NULL)) die(w->name, tg_status_message(w->t));
    double *th = malloc((size_t)samples * sizeof *th), *tf = malloc((size_t)samples * sizeof *tf);
    double *ratio = malloc((size_t)samples * sizeof *ratio);
    if (!th || !tf || !ratio) die(w->name, "out of memory");
    long allocs = 0;
    size_t size = 0, bytes = 0;
    for (int s = -2; s < samples; s++) {
        if (s == 0) {
            size = tg_tape_size(tg_fn_tape(w->f)), bytes = tg_tape_bytes(tg_fn_tape(w->f));
            tg_set_allocator(&(tg_allocator){count_malloc, count_realloc, count_free, NULL});
            allocations = 0;
        }
        /* the two sides in turn, which first alternating, so that a change
         * of the machine's load between them shows in few pairs */
        double t[2];
        for (int side = 0; side < 2; side++) {
            bool fn = (side ^ (s & 1)) != 0;
            double t0 = bench_now();
            for (int k = 0; k < w->inner; k++) fn ? object(w, k) : hand(w, k);
            t[fn] = (bench_now() - t0) / w->inner;
        }
        if (s >= 0) th[s] = t[0], tf[s] = t[1], ratio[s] = t[1] / t[0];
    }
    tg_set_allocator(NULL);
    allocs = allocations;
    bool grew = tg_tape_size(tg_fn_tape(w->f)) != size || tg_tape_bytes(tg_fn_tape(w->f)) != bytes;
    double mh = bench_median(th, samples), mf = bench_median(tf, samples);
    double lo[2] = {th[0], tf[0]}, hi[2] = {th[0], tf[0]};
    for (int s = 1; s < samples; s++) {
        lo[0] = th[s] < lo[0] ? th[s] : lo[0], hi[0] = th[s] > hi[0] ? th[s] : hi[0];
        lo[1] = tf[s] < lo[1] ? tf[s] : lo[1], hi[1] = tf[s] > hi[1] ? tf[s] : hi[1];
    }
    /* the object's gradient is the hand sweep's (bit for bit) */
    tg_zero_grad(w->t);
    put_point(w, w->x[0]);
    tg_forward(w->t);
    tg_backward(w->out);
    object(w, 0);
    for (int i = 0, c = 0; i < w->nin; i++)
        for (int64_t e = 0; e < tg_numel(w->in[i]); e++, c++)
            if (tg_grad_at(w->in[i], e) != w->g[c]) die(w->name, "the gradients differ");
    printf("tool=tapegrad workload=%s hand_ms=%.4f hand_range=%.4f-%.4f fn_ms=%.4f "
           "fn_range=%.4f-%.4f fn_over_hand=%.3f paired_ratio=%.3f fn_allocations=%ld "
           "tape_grew=%d samples=%d\n",
           w->name, 1e3 * mh, 1e3 * lo[0], 1e3 * hi[0], 1e3 * mf, 1e3 * lo[1], 1e3 * hi[1],
           mf / mh, bench_median(ratio, samples), allocs, grew, samples);
    fflush(stdout);
    tg_fn_free(w->f);
    tg_tape_free(w->t);
    free(th), free(tf), free(ratio), free(w->x[0]), free(w->x[1]), free(w->g);
}

int main(int argc, char **argv) {
    int samples = argc > 1 ? atoi(argv[1]) : 15;
    if (samples < 1) samples = 1;
    bx = malloc((size_t)B * D0 * sizeof *bx), by = malloc((size_t)B * D2 * sizeof *by);
    if (!bx || !by) return 1;
    for (size_t i = 0; i < (size_t)B * D0; i++) bx[i] = 2 * uniform();
    for (size_t i = 0; i < (size_t)B * D2; i++) by[i] = uniform() + 0.5;
    static work a = {.name = "F1a", .nin = NA, .inner = 2, .n = NA, .rec = rec_a};
    static work b = {.name = "F1b", .nin = 4, .inner = 8, .n = (size_t)D0 * D1 + D1 + D1 * D2 + D2,
                     .rec = rec_b};
    static work c = {.name = "F1c", .nin = NC, .inner = 20000, .n = NC, .rec = rec_c};
    run(&a, samples);
    run(&b, samples);
    run(&c, samples);
    free(bx), free(by);
    return 0;
}
