/*
 * U1: the vectorised elementwise ops, forward + backward of y = op(x) on a
 * 1-D float64 tensor of 10^6 elements (seed dy = 1), replayed: one
 * tg_forward and one tg_backward_seeded per run. The same inputs as
 * peers/torch_unary.py (x_i = lo + (hi - lo) frac(i phi), a range where the
 * op is finite). Prints one key=value line per op: the median of reps runs
 * after two warm-ups, in milliseconds, and the vector math level asked for
 * (auto: the best the CPU has; TG_VMATH=scalar|sse2|avx2|avx512 forces one,
 * see src/kernels/vmath.h).
 *   usage: unary_speed [reps] [n] [op...]     (default: all 13 ops)
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <tapegrad.h>

#include "bench.h"
#include <time.h>

static const struct {
    const char *op;
    double lo, hi;
} ops[] = {
    {"exp", -5, 5},   {"log", 0.01, 10},    {"sin", -5, 5},      {"cos", -5, 5},
    {"tan", -1.5, 1.5}, {"tanh", -5, 5},    {"sigmoid", -5, 5},  {"erf", -3, 3},
    {"log1p", -0.99, 10}, {"expm1", -5, 5}, {"softplus", -5, 5}, {"gelu", -5, 5},
    {"silu", -5, 5},
};

int main(int argc, char **argv) {
    int reps = argc > 1 ? atoi(argv[1]) : 9;
    long n = argc > 2 ? atol(argv[2]) : 1000000;
    if (reps < 1 || reps > 100 || n < 1) return 2;
    double *x = malloc((size_t)n * sizeof *x), *gx = calloc((size_t)n, sizeof *gx);
    double *seed = malloc((size_t)n * sizeof *seed), *ts = malloc((size_t)reps * sizeof *ts);
    if (!x || !gx || !seed || !ts) return 1;
    for (long i = 0; i < n; i++) seed[i] = 1;
    for (size_t k = 0; k < sizeof ops / sizeof *ops; k++) {
        int wanted = argc <= 3;
        for (int a = 3; a < argc; a++) wanted |= !strcmp(argv[a], ops[k].op);
        if (!wanted) continue;
        for (long i = 0; i < n; i++) {
            double f = (double)i * 0.6180339887498949;
            x[i] = ops[k].lo + (ops[k].hi - ops[k].lo) * (f - (double)(long)f);
        }
        tg_tape *t = tg_tape_new();
        int64_t shape[1] = {n};
        tg_node *y = tg_call(ops[k].op, tg_view(t, TG_F64, 1, shape, x, gx), NULL);
        for (int r = -2; r < reps; r++) {
            double t0 = bench_now();
            tg_forward(t);
            tg_backward_seeded(y, seed);
            if (r >= 0) ts[r] = bench_now() - t0;
        }
        if (tg_status(t)) {
            fprintf(stderr, "unary_speed: %s: %s\n", ops[k].op, tg_status_message(t));
            return 1;
        }
        const char *level = getenv("TG_VMATH");
        printf("tool=tapegrad workload=U1 op=%s n=%ld fwd_bwd_ms=%.3f vmath=%s\n", ops[k].op, n,
               1e3 * bench_median(ts, reps), level ? level : "auto");
        tg_tape_free(t);
    }
    free(x), free(gx), free(seed), free(ts);
    return 0;
}
