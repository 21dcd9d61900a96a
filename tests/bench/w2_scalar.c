/*
 * W2: a scalar tape of a million inputs.
 *   f(x) = sum_{i<n-1} (x_i x_{i+1} + sin(x_i) exp(-x_{i+1}))
 * recorded term by term as scalar nodes, then one reverse sweep; compared
 * with the same function in plain C, a hand-written gradient, and the same
 * function written with tensor ops. Timed as every tool in the benchmark:
 * a first (cold) repetition, reported apart (first_*), then REPS timed ones,
 * whose medians are the figures without a prefix. The peak RSS is read
 * before the tensor variant runs (on a tape of its own), so it is the scalar
 * tape's. bytes_per_node is the tape's heap per node after recording;
 * swept_bytes_per_node adds the gradient arrays the sweep allocates.
 * Prints one key=value line.
 *   usage: w2_scalar [n] [REPS]
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <tapegrad.h>

#include "bench.h"
#include <time.h>

/* Keeps the compiler from dropping a computation whose result is unused. */
static volatile double sink;

static double plain_f(const double *x, long n) {
    double f = 0;
    for (long i = 0; i + 1 < n; i++) f += x[i] * x[i + 1] + sin(x[i]) * exp(-x[i + 1]);
    return f;
}

static void plain_grad(const double *x, long n, double *g) {
    for (long i = 0; i < n; i++) g[i] = 0;
    for (long i = 0; i + 1 < n; i++) {
        double e = exp(-x[i + 1]), s = sin(x[i]);
        g[i] += x[i + 1] + cos(x[i]) * e;
        g[i + 1] += x[i] - s * e;
    }
}

int main(int argc, char **argv) {
    long n = argc > 1 ? atol(argv[1]) : 1000000;
    int reps = argc > 2 ? atoi(argv[2]) : 5;
    if (n < 2 || reps < 1 || reps > 100) return 2;
    reps++; /* repetition 0 is the cold one */
    double *x = malloc((size_t)n * sizeof *x), *g = malloc((size_t)n * sizeof *g);
    tg_node **v = malloc((size_t)n * sizeof *v);
    double *t_plain = calloc((size_t)reps, sizeof(double)), *t_hand = calloc((size_t)reps, sizeof(double)),
           *t_rec = calloc((size_t)reps, sizeof(double)), *t_sweep = calloc((size_t)reps, sizeof(double)),
           *t_vec = calloc((size_t)reps, sizeof(double));
    if (!x || !g || !v || !t_plain || !t_hand || !t_rec || !t_sweep || !t_vec) return 1;
    for (long i = 0; i < n; i++) x[i] = sin(0.001 * (double)i);
    tg_tape *t = tg_tape_new();
    double max_err = 0, f_tape = 0, nodes = 0, bytes = 0, swept_bytes = 0;
    for (int r = 0; r < reps; r++) {
        double t0 = bench_now();
        sink = plain_f(x, n);
        t_plain[r] = bench_now() - t0;
        t0 = bench_now();
        plain_grad(x, n, g);
        t_hand[r] = bench_now() - t0;

        tg_tape_reset(t);
        t0 = bench_now();
        for (long i = 0; i < n; i++) v[i] = tg_scalar(t, x[i]);
        tg_node *f = tg_const(t, 0), *s = tg_sin(v[0]);
        for (long i = 0; i + 1 < n; i++) {
            tg_node *e = tg_exp(tg_neg(v[i + 1]));
            f = tg_add(f, tg_add(tg_mul(v[i], v[i + 1]), tg_mul(s, e)));
            if (i + 2 < n) s = tg_sin(v[i + 1]);
        }
        t_rec[r] = bench_now() - t0;
        if (r == 0) bytes = (double)tg_tape_bytes(t);
        t0 = bench_now();
        tg_backward(f);
        t_sweep[r] = bench_now() - t0;
        if (tg_status(t)) {
            fprintf(stderr, "w2: %s\n", tg_status_message(t));
            return 1;
        }
        f_tape = tg_value_scalar(f);
        nodes = (double)tg_tape_size(t);
        if (r == 0) swept_bytes = (double)tg_tape_bytes(t);
        for (long i = 0; i < n; i++) {
            double d = fabs(tg_grad_scalar(v[i]) - g[i]) / fmax(1, fabs(g[i]));
            if (d > max_err) max_err = d;
        }
    }
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    tg_tape_free(t);

    /* The same function with tensor ops on whole vectors. */
    t = tg_tape_new();
    for (int r = 0; r < reps; r++) {
        tg_tape_reset(t);
        double t0 = bench_now();
        int64_t shape[1] = {n - 1};
        tg_node *a = tg_tensor(t, TG_F64, 1, shape, x), *b = tg_tensor(t, TG_F64, 1, shape, x + 1);
        tg_node *fv = tg_sum(tg_add(tg_mul(a, b), tg_mul(tg_sin(a), tg_exp(tg_neg(b)))));
        tg_backward(fv);
        t_vec[r] = bench_now() - t0;
    }
    double first = t_rec[0] + t_sweep[0], first_vec = t_vec[0];
    reps--;
    double plain = bench_median(t_plain + 1, reps), rec = bench_median(t_rec + 1, reps),
           sw = bench_median(t_sweep + 1, reps);
    printf("peer=tapegrad workload=W2 n=%ld plain_ms=%.2f hand_ms=%.2f record_ms=%.2f "
           "sweep_ms=%.2f total_ms=%.2f first_total_ms=%.2f ratio_to_plain=%.2f tensor_ms=%.2f "
           "first_tensor_ms=%.2f warm_reps=%d nodes=%.0f "
           "bytes_per_node=%.1f swept_bytes_per_node=%.1f max_err=%.2e value_err=%.2e peak_rss_mb=%.0f\n",
           n, 1e3 * plain, 1e3 * bench_median(t_hand + 1, reps), 1e3 * rec, 1e3 * sw,
           1e3 * (rec + sw), 1e3 * first, (rec + sw) / plain,
           1e3 * bench_median(t_vec + 1, reps), 1e3 * first_vec, reps, nodes, bytes / nodes, swept_bytes / nodes, max_err,
           fabs(f_tape - plain_f(x, n)) / fabs(plain_f(x, n)), ru.ru_maxrss / 1024.0);
    tg_tape_free(t);
    free(x), free(g), free(v), free(t_plain), free(t_hand), free(t_rec), free(t_sweep), free(t_vec);
    return 0;
}
