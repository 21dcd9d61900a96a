/*
 * W2's function on 64-byte nodes: float32 scalars, which the compact tape
 * (float64 only) does not hold, so that every op goes through the general
 * path: tg__apply, the op's forward on its argument views, and in the sweep
 * its backward on them. It measures that path's cost per node.
 *   f(x) = sum_{i<n-1} (x_i x_{i+1} + sin(x_i) exp(-x_{i+1}))
 * Prints one key=value line: the medians of REPS recordings and sweeps.
 *   usage: w2_nodes [n] [REPS]
 */
#include <stdio.h>
#include <stdlib.h>
#include <tapegrad.h>

#include "bench.h"

int main(int argc, char **argv) {
    int n = argc > 1 ? atoi(argv[1]) : 200000, reps = argc > 2 ? atoi(argv[2]) : 7;
    if (n < 2 || reps < 1) {
        fprintf(stderr, "usage: w2_nodes [n >= 2] [reps >= 1]\n");
        return 2;
    }
    double *rec = malloc((size_t)reps * sizeof *rec), *swp = malloc((size_t)reps * sizeof *swp);
    tg_node **x = malloc((size_t)n * sizeof *x);
    tg_tape *t = tg_tape_new();
    if (!rec || !swp || !x || !t) return 1;
    double grad0 = 0;
    for (int r = 0; r < reps; r++) {
        tg_tape_reset(t);
        double t0 = bench_now();
        for (int i = 0; i < n; i++) {
            float v = 0.001f * (float)(i % 1000);
            x[i] = tg_tensor(t, TG_F32, 0, NULL, &v);
        }
        tg_node *f = tg_const_as(t, TG_F32, 0);
        for (int i = 0; i + 1 < n; i++)
            f = tg_add(f, tg_add(tg_mul(x[i], x[i + 1]),
                                 tg_mul(tg_sin(x[i]), tg_exp(tg_neg(x[i + 1])))));
        double t1 = bench_now();
        tg_backward(f);
        double t2 = bench_now();
        if (tg_status(t)) {
            fprintf(stderr, "w2_nodes: %s\n", tg_status_message(t));
            return 1;
        }
        rec[r] = t1 - t0;
        swp[r] = t2 - t1;
        grad0 = *(const float *)tg_grad(x[0]);
    }
    printf("tool=tapegrad workload=W2_nodes n=%d record_ms=%.2f sweep_ms=%.2f "
           "ns_per_op=%.1f grad0=%.6g reps=%d\n",
           n, 1e3 * bench_median(rec, reps), 1e3 * bench_median(swp, reps),
           1e9 * (bench_median(rec, reps) + bench_median(swp, reps)) / (7.0 * (n - 1)), grad0,
           reps);
    tg_tape_free(t);
    free(x), free(rec), free(swp);
    return 0;
}
