/*
 * H1: the cost of second derivatives. A float64 two-layer network loss
 * f(W1, W2) = mse(tanh(X W1) W2, Y), X [256,256], W1 [256,128], W2 [128,10],
 * recorded afresh each repetition (define-by-run, as PyTorch does), timed
 * four ways: the function alone, function + gradient (tg_backward),
 * function + Hessian-vector product (tg_hvp, through tg_grad), and the
 * network's forward-mode derivative along a direction in W1 (tg_jvp). Prints one
 * key=value line with medians over the repetitions after two warm-ups, and
 * the ratios the issue asks about (hvp / gradient).
 *   usage: hvp_mlp [repetitions]
 */
#include <stdio.h>
#include <stdlib.h>
#include <tapegrad.h>

#include "bench.h"
#include <time.h>

enum { B = 256, D0 = 256, D1 = 128, D2 = 10 };

static unsigned long long rng = 7;
static double uniform(void) { /* [-0.5, 0.5) */
    return (double)(bench_next(&rng) >> 11) * 0x1.0p-53 - 0.5;
}

static double *randoms(size_t n, double scale) {
    double *p = malloc(n * sizeof *p);
    for (size_t i = 0; p && i < n; i++) p[i] = scale * uniform();
    return p;
}

static double *x, *y, *w1, *w2, *v1, *v2;

/* One repetition: 0 function, 1 gradient, 2 hvp, 3 jvp of the network's
 * output tanh(X W1) W2 (a [256,10] node) along v1 in W1. Returns a checksum. */
static double run(tg_tape *t, int what) {
    tg_tape_reset(t);
    const int64_t sx[2] = {B, D0}, sy[2] = {B, D2}, s1[2] = {D0, D1}, s2[2] = {D1, D2};
    tg_node *xn = tg_input(t, TG_F64, 2, sx, x), *yn = tg_input(t, TG_F64, 2, sy, y);
    tg_node *a = tg_tensor(t, TG_F64, 2, s1, w1), *b = tg_tensor(t, TG_F64, 2, s2, w2);
    tg_node *out = tg_matmul(tg_tanh(tg_matmul(xn, a)), b);
    if (what == 3) {
        tg_node *v = tg_input(t, TG_F64, 2, s1, v1), *jv;
        tg_jvp(out, 1, &a, &v, &jv);
        return tg_value_at(jv, 0);
    }
    tg_node *f = tg_mse(out, yn);
    double check = tg_value_scalar(f);
    if (what == 1) {
        tg_backward(f);
        check += tg_grad_at(a, 0);
    } else if (what == 2) {
        tg_node *v[2] = {tg_input(t, TG_F64, 2, s1, v1), tg_input(t, TG_F64, 2, s2, v2)}, *hv[2];
        tg_hvp(f, 2, (tg_node *[]){a, b}, v, hv);
        check += tg_value_at(hv[0], 0);
    }
    if (tg_status(t)) {
        fprintf(stderr, "hvp_mlp: %s\n", tg_status_message(t));
        exit(1);
    }
    return check;
}

int main(int argc, char **argv) {
    int reps = argc > 1 ? atoi(argv[1]) : 9;
    if (reps < 1) reps = 1;
    x = randoms((size_t)B * D0, 2), y = randoms((size_t)B * D2, 2);
    w1 = randoms((size_t)D0 * D1, 0.2), w2 = randoms((size_t)D1 * D2, 0.2);
    v1 = randoms((size_t)D0 * D1, 2), v2 = randoms((size_t)D1 * D2, 2);
    tg_tape *t = tg_tape_new();
    double med[4], *times = malloc((size_t)reps * sizeof *times), sink = 0;
    for (int what = 0; what < 4; what++) {
        for (int w = 0; w < 2; w++) sink += run(t, what);
        for (int r = 0; r < reps; r++) {
            double t0 = bench_now();
            sink += run(t, what);
            times[r] = bench_now() - t0;
        }
        med[what] = bench_median(times, reps);
    }
    printf("tool=tapegrad workload=H1 f_ms=%.3f grad_ms=%.3f hvp_ms=%.3f jvp_ms=%.3f "
           "hvp_over_grad=%.2f grad_over_f=%.2f reps=%d checksum=%.6g\n",
           1e3 * med[0], 1e3 * med[1], 1e3 * med[2], 1e3 * med[3], med[2] / med[1],
           med[1] / med[0], reps, sink);
    free(times);
    tg_tape_free(t);
    return 0;
}
