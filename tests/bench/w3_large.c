/*
 * W3: a large-batch step, 784-1024-1024-10, relu, softmax cross-entropy,
 * batch 1024, float32, SGD; against the sgemm limit: the time OpenBLAS
 * itself takes for the step's eight matrix products at the same shapes.
 * Random data: this measures speed only. Timed as every tool in the
 * benchmark: a first (cold) repetition of STEPS steps, reported apart
 * (first_samples_per_s), then REPS timed ones whose median is reported.
 * Prints one key=value line.
 *   usage: w3_large [STEPS] [REPS]
 */
#include <cblas.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <tapegrad.h>

#include "bench.h"
#include <time.h>

enum { B = 1024, D0 = 784, D1 = 1024, D2 = 1024, D3 = 10 };

static unsigned long long rng = 42;
static float uniform(void) { /* [-0.5, 0.5) */
    return (float)(bench_next(&rng) >> 40) / 16777216.0f - 0.5f;
}

static float *randoms(size_t n, float scale) {
    float *p = malloc(n * sizeof *p);
    for (size_t i = 0; p && i < n; i++) p[i] = scale * uniform();
    return p;
}

/* One product C[m,n] = op(A) op(B) with beta, as the step does it. */
static void gemm(int ta, int tb, int m, int n, int k, const float *a, const float *b, float *c) {
    cblas_sgemm(CblasRowMajor, ta ? CblasTrans : CblasNoTrans, tb ? CblasTrans : CblasNoTrans, m,
                n, k, 1, a, ta ? m : k, b, tb ? k : n, 0, c, n);
}

static double limit_step(float **buf) {
    float *x = buf[0], *w1 = buf[1], *w2 = buf[2], *w3 = buf[3], *a1 = buf[4], *a2 = buf[5],
          *a3 = buf[6], *g = buf[7];
    double t0 = bench_now();
    gemm(0, 0, B, D1, D0, x, w1, a1);
    gemm(0, 0, B, D2, D1, a1, w2, a2);
    gemm(0, 0, B, D3, D2, a2, w3, a3);
    gemm(1, 0, D2, D3, B, a2, a3, g);  /* dW3 */
    gemm(0, 1, B, D2, D3, a3, w3, a2); /* dA2 */
    gemm(1, 0, D1, D2, B, a1, a2, g);  /* dW2 */
    gemm(0, 1, B, D1, D2, a2, w2, a1); /* dA1 */
    gemm(1, 0, D0, D1, B, x, a1, g);   /* dW1 */
    return bench_now() - t0;
}

int main(int argc, char **argv) {
    int steps = argc > 1 ? atoi(argv[1]) : 10, reps = argc > 2 ? atoi(argv[2]) : 3;
    if (steps < 1 || reps < 1 || reps > 50) return 2;
    int64_t sx[2] = {B, D0}, sy[2] = {B, D3}, sw[3][2] = {{D0, D1}, {D1, D2}, {D2, D3}};
    int64_t sb[3][1] = {{D1}, {D2}, {D3}};
    float *w[3], *gw[3], *b[3], *gb[3];
    for (int l = 0; l < 3; l++) {
        size_t n = (size_t)(sw[l][0] * sw[l][1]);
        w[l] = randoms(n, 0.1f), gw[l] = calloc(n, sizeof(float));
        b[l] = calloc((size_t)sb[l][0], sizeof(float)), gb[l] = calloc((size_t)sb[l][0], sizeof(float));
    }
    tg_tape *t = tg_tape_new();
    tg_node *x = tg_input(t, TG_F32, 2, sx, NULL), *y = tg_input(t, TG_F32, 2, sy, NULL), *a = x;
    for (int l = 0; l < 3; l++) {
        tg_node *z = tg_add(tg_matmul(a, tg_view(t, TG_F32, 2, sw[l], w[l], gw[l])),
                            tg_view(t, TG_F32, 1, sb[l], b[l], gb[l]));
        a = l < 2 ? tg_relu(z) : z;
    }
    tg_node *loss = tg_softmax_xent(a, y);
    float *xv = tg_value(x), *yv = tg_value(y);
    for (size_t i = 0; i < (size_t)B * D0; i++) xv[i] = uniform() + 0.5f;
    for (int i = 0; i < B; i++) yv[i * D3 + i % D3] = 1;

    reps++; /* repetition 0 is the cold one */
    double *ours = calloc((size_t)reps, sizeof(double)), *lim = calloc((size_t)reps, sizeof(double));
    float *buf[8] = {xv, w[0], w[1], w[2], randoms((size_t)B * D1, 1), randoms((size_t)B * D2, 1),
                     randoms((size_t)B * D3, 1), randoms((size_t)D1 * D2, 1)};
    for (int r = 0; r < reps; r++) {
        double t0 = bench_now();
        for (int s = 0; s < steps; s++) {
            tg_forward(t);
            tg_backward(loss);
            for (int l = 0; l < 3; l++) { /* SGD, and the gradients cleared for the next step */
                size_t n = (size_t)(sw[l][0] * sw[l][1]);
                for (size_t i = 0; i < n; i++) w[l][i] -= 0.01f * gw[l][i], gw[l][i] = 0;
                for (int64_t i = 0; i < sb[l][0]; i++) b[l][i] -= 0.01f * gb[l][i], gb[l][i] = 0;
            }
        }
        ours[r] = (bench_now() - t0) / steps;
        lim[r] = 0;
        for (int s = 0; s < steps; s++) lim[r] += limit_step(buf) / steps;
    }
    if (tg_status(t)) {
        fprintf(stderr, "w3: %s\n", tg_status_message(t));
        return 1;
    }
    double first = ours[0];
    reps--;
    double o = bench_median(ours + 1, reps), l = bench_median(lim + 1, reps);
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    printf("peer=tapegrad workload=W3 batch=%d steps=%d warm_reps=%d samples_per_s=%.0f "
           "first_samples_per_s=%.0f limit_samples_per_s=%.0f fraction_of_limit=%.2f loss=%.4f "
           "peak_rss_mb=%.0f\n",
           B, steps, reps, B / o, B / first, B / l, l / o, tg_value_scalar(loss),
           (double)ru.ru_maxrss / 1024.0);
    tg_tape_free(t);
    return 0;
}
