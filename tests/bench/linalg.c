/*
 * L1: the linear algebra ops (ops/lapack.c) on one float64 n x n system,
 * A = G + n I (G standard normal: well conditioned), b [n,1]: solve alone,
 * solve with the gradient of sum(x) (tg_backward: the derived backward runs
 * the factorisation again, then the transposed solve of its vjp), and the
 * Cholesky factor of S = A A^T / n + I with the gradient of sum(L) + log det S.
 * Prints one key=value line per size with medians (ms) over the repetitions
 * after two warm-ups; tests/bench/peers/torch_linalg.py times PyTorch alike.
 *   usage: linalg [repetitions]
 */
#include <stdio.h>
#include <stdlib.h>
#include <tapegrad.h>

#include "bench.h"

static unsigned long long rng = 23;
static double normal(void) { /* Box-Muller, one of the pair */
    double u = ((double)(bench_next(&rng) >> 11) + 1) * 0x1.0p-53;
    double v = (double)(bench_next(&rng) >> 11) * 0x1.0p-53;
    return sqrt(-2 * log(u)) * cos(6.283185307179586 * v);
}

/* One repetition of kind what (0 solve, 1 solve + gradient, 2 cholesky and
 * logdet + gradient) on a and b; returns a checksum. */
static double run(tg_tape *t, int what, int n, const double *a, const double *b) {
    tg_tape_reset(t);
    const int64_t sa[2] = {n, n}, sb[2] = {n, 1};
    tg_node *an = tg_tensor(t, TG_F64, 2, sa, a), *bn = tg_tensor(t, TG_F64, 2, sb, b);
    if (what < 2) {
        tg_node *x = tg_solve(an, bn);
        if (!what) return tg_value_at(x, 0);
        tg_backward(tg_sum(x));
        return tg_grad_at(an, 0);
    }
    tg_node *eye = tg_input(t, TG_F64, 2, sa, NULL);
    for (int i = 0; i < n; i++) ((double *)tg_value(eye))[i * n + i] = 1;
    tg_node *s = tg_add(tg_scale(tg_matmul(an, tg_transpose(an)), 1.0 / n), eye);
    tg_backward(tg_add(tg_sum(tg_cholesky(s)), tg_logdet(s)));
    return tg_grad_at(an, 0);
}

int main(int argc, char **argv) {
    int reps = argc > 1 ? atoi(argv[1]) : 9;
    if (reps < 1 || reps > 1000) reps = 9;
    static const int sizes[] = {50, 100, 200, 400};
    tg_tape *t = tg_tape_new();
    for (size_t k = 0; k < sizeof sizes / sizeof *sizes; k++) {
        int n = sizes[k];
        double *a = malloc((size_t)n * n * sizeof *a), *b = malloc((size_t)n * sizeof *b);
        double *ms = malloc((size_t)reps * sizeof *ms), med[3], check = 0;
        if (!a || !b || !ms || !t) return 1;
        for (int i = 0; i < n * n; i++) a[i] = normal() + (i % (n + 1) == 0 ? n : 0);
        for (int i = 0; i < n; i++) b[i] = normal();
        for (int what = 0; what < 3; what++) {
            for (int r = -2; r < reps; r++) {
                double t0 = bench_now();
                check += run(t, what, n, a, b);
                if (r >= 0) ms[r] = 1e3 * (bench_now() - t0);
            }
            med[what] = bench_median(ms, reps);
        }
        if (tg_status(t)) {
            fprintf(stderr, "linalg: %s\n", tg_status_message(t));
            return 1;
        }
        printf("tool=tapegrad bench=linalg n=%d solve_ms=%.4f solve_grad_ms=%.4f "
               "cholesky_logdet_grad_ms=%.4f check=%.6g\n",
               n, med[0], med[1], med[2], check);
        free(a), free(b), free(ms);
    }
    tg_tape_free(t);
    return 0;
}
