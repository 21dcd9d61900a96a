/*
 * M: data movement, the two patterns the tensor-convenience work measures.
 *   ba    a bundle-adjustment-like residual over P = 36,455 observations
 *         whose parameters sit in a [P, 11] matrix (camera rotation 3,
 *         centre 3, focal 1, distortion 2, the point's projection 2): every
 *         group is a slice along axis 1, the residual an elementwise
 *         expression of them, summed; record + backward, against the same
 *         on the transposed [11, P] layout (slices along axis 0, runs of P).
 *   lstm  an LSTM-like recording: T = 64 steps of gates = [x_t, h] W + b
 *         (batch 8, hidden 32), cut into 4 gates by slices along axis 1,
 *         and the cell update; record + backward, with the nodes recorded.
 * Prints one key=value line per workload: medians over REPS (after one
 * warm-up) and the ranges.
 *   usage: moves [REPS]
 */
#include <stdio.h>
#include <stdlib.h>
#include <tapegrad.h>

#include "bench.h"

static unsigned long long seed = 11;
static double uniform(void) { return (double)(bench_next(&seed) >> 11) * 0x1p-53 - 0.5; }

enum { P = 36455, G = 11 };
static double *ba_data;

/* The residual from the groups of one observation's parameters: a rotation
 * by small angles r of the centred point, a focal scaling and a radial
 * distortion, minus the projection. */
static tg_node *ba_residual(tg_node *const *g) {
    tg_node *r = g[0], *c = g[1], *f = g[2], *k = g[3], *u = g[4];
    tg_node *q = tg_add(c, tg_mul(r, c));
    tg_node *d = tg_add(tg_const(tg_node_tape(q), 1), tg_mul(k, tg_mul(q, q)));
    return tg_sum(tg_square(tg_sub(tg_mul(f, tg_mul(d, q)), u)));
}

static int ba_widths[5] = {3, 3, 1, 2, 2};

static double run_ba(tg_tape *t, int transposed) {
    tg_tape_reset(t);
    int64_t s[2] = {transposed ? G : P, transposed ? P : G};
    tg_node *x = tg_tensor(t, TG_F64, 2, s, ba_data), *g[5];
    for (int i = 0, at = 0; i < 5; at += ba_widths[i++]) {
        tg_node *v = tg_slice(x, transposed ? 0 : 1, at, ba_widths[i]);
        /* groups of width 3 and 2 pair up elementwise with their first column */
        g[i] = ba_widths[i] == 1 ? v : tg_slice(v, transposed ? 0 : 1, 0, 1);
    }
    tg_node *f = ba_residual(g);
    tg_backward(f);
    return tg_value_scalar(f) + tg_grad_at(x, 0);
}

enum { T = 64, B = 8, H = 32, IN = 16 };
static double *lstm_w, *lstm_x;

static double run_lstm(tg_tape *t, int what) {
    (void)what;
    tg_tape_reset(t);
    int64_t ws[2] = {IN + H, 4 * H}, bs[2] = {1, 4 * H}, xs[2] = {B, IN}, hs[2] = {B, H};
    tg_node *w = tg_tensor(t, TG_F64, 2, ws, lstm_w);
    tg_node *b = tg_tensor(t, TG_F64, 2, bs, NULL);
    tg_node *h = tg_input(t, TG_F64, 2, hs, NULL), *c = tg_input(t, TG_F64, 2, hs, NULL);
    tg_node *loss = NULL;
    for (int k = 0; k < T; k++) {
        tg_node *xt = tg_input(t, TG_F64, 2, xs, lstm_x + (size_t)k * B * IN);
        tg_node *in[2] = {xt, h};
        tg_node *z = tg_add(tg_matmul(tg_concat(2, in, 1), w), b);
        tg_node *i = tg_sigmoid(tg_slice(z, 1, 0, H)), *f = tg_sigmoid(tg_slice(z, 1, H, H));
        tg_node *o = tg_sigmoid(tg_slice(z, 1, 2 * H, H)), *u = tg_tanh(tg_slice(z, 1, 3 * H, H));
        c = tg_add(tg_mul(f, c), tg_mul(i, u));
        h = tg_mul(o, tg_tanh(c));
        tg_node *l = tg_sum(tg_square(h));
        loss = loss ? tg_add(loss, l) : l;
    }
    tg_backward(loss);
    return tg_value_scalar(loss) + tg_grad_at(w, 0);
}

typedef double (*run_fn)(tg_tape *, int);
static volatile double sink;

static void measure(tg_tape *t, run_fn run, int what, int reps, double out[3]) {
    double *ts = malloc((size_t)reps * sizeof *ts);
    if (!ts) exit(1);
    sink += run(t, what);
    for (int r = 0; r < reps; r++) {
        double t0 = bench_now();
        sink += run(t, what);
        ts[r] = bench_now() - t0;
    }
    out[0] = bench_median(ts, reps);
    qsort(ts, (size_t)reps, sizeof *ts, bench_cmp);
    out[1] = ts[0], out[2] = ts[reps - 1];
    free(ts);
}

int main(int argc, char **argv) {
    int reps = argc > 1 ? atoi(argv[1]) : 9;
    if (reps < 1) reps = 1;
    ba_data = malloc((size_t)P * G * sizeof *ba_data);
    lstm_w = malloc((size_t)(IN + H) * 4 * H * sizeof *lstm_w);
    lstm_x = malloc((size_t)T * B * IN * sizeof *lstm_x);
    if (!ba_data || !lstm_w || !lstm_x) return 1;
    for (size_t i = 0; i < (size_t)P * G; i++) ba_data[i] = uniform();
    for (size_t i = 0; i < (size_t)(IN + H) * 4 * H; i++) lstm_w[i] = 0.2 * uniform();
    for (size_t i = 0; i < (size_t)T * B * IN; i++) lstm_x[i] = uniform();
    tg_tape *t = tg_tape_new();
    if (!t) return 1;
    double a[3], b[3];
    measure(t, run_ba, 0, reps, a);
    measure(t, run_ba, 1, reps, b);
    printf("tool=tapegrad workload=M_ba P=%d rows_ms=%.3f rows_range=%.3f-%.3f "
           "transposed_ms=%.3f transposed_range=%.3f-%.3f rows_over_transposed=%.2f reps=%d\n",
           P, 1e3 * a[0], 1e3 * a[1], 1e3 * a[2], 1e3 * b[0], 1e3 * b[1], 1e3 * b[2],
           a[0] / b[0], reps);
    tg_tape_free(t); /* a tape of its own, for its bytes */
    if (!(t = tg_tape_new())) return 1;
    measure(t, run_lstm, 0, reps, a);
    printf("tool=tapegrad workload=M_lstm T=%d nodes=%zu bytes=%zu ms=%.3f range=%.3f-%.3f "
           "reps=%d\n",
           T, tg_tape_size(t), tg_tape_bytes(t), 1e3 * a[0], 1e3 * a[1], 1e3 * a[2], reps);
    int bad = tg_status(t) != TG_OK;
    if (bad) fprintf(stderr, "moves: %s\n", tg_status_message(t));
    tg_tape_free(t);
    free(ba_data), free(lstm_w), free(lstm_x);
    return bad || sink != sink;
}
