/*
 * S1: sparse Hessians (tapegrad/sparse.h), float64, one thread.
 *   a  the chained Rosenbrock function of n = 10^5 variables,
 *      f = sum_{i<n-1} 100 (x_{i+1} - x_i^2)^2 + (1 - x_i)^2, recorded
 *      once through two slices, its Hessian tridiagonal (3 colours):
 *      - gradient: new x written into the leaf, tg_forward + tg_backward on
 *        a tape holding f alone (the unit of the target);
 *      - sparse Hessian: new x, tg_sparse_eval (which replays f, its
 *        recorded gradient and the 3 tangents of it). Target: <= 10x the
 *        gradient;
 *      - by hand: the same nonzeros from the formulas in a C loop (the
 *        limit), and the gradient by hand;
 *      - memory: the tape's bytes with the Hessian object, per nonzero, at
 *        n = 10^4 and 10^5 (proportional to the nonzeros), and the time to
 *        make the object (pattern, colouring, recordings).
 *   b  dense tg_hessian against the sparse Hessian at n = 1000, where the
 *      dense one fits (8 MB).
 * Each timing is the median of `samples` samples (after 2 warm-ups) of
 * INNER calls each; one key=value line per workload.
 *   usage: sparse [samples]
 */
#include <stdio.h>
#include <stdlib.h>
#include <tapegrad.h>
#include <tapegrad/sparse.h>

#include "bench.h"

static unsigned long long rng = 11;
static double unif(void) { return (double)(bench_next(&rng) >> 11) / 9007199254740992.0; }

static tg_node *rosenbrock(tg_tape *t, int n, tg_node **x) {
    double *x0 = malloc(sizeof(double) * (size_t)n);
    for (int i = 0; i < n; i++) x0[i] = 2 * unif() - 1;
    *x = tg_tensor(t, TG_F64, 1, (int64_t[]){n}, x0);
    free(x0);
    tg_node *a = tg_slice(*x, 0, 0, n - 1), *b = tg_slice(*x, 0, 1, n - 1);
    tg_node *d = tg_sub(b, tg_square(a)), *e = tg_sub(tg_const(t, 1), a);
    return tg_sum(tg_add(tg_scale(tg_square(d), 100), tg_square(e)));
}

static void new_point(tg_node *x, int n) {
    double *v = tg_value(x);
    for (int i = 0; i < n; i++) v[i] = 2 * unif() - 1;
}

/* The tridiagonal Hessian's lower triangle in CSR order, by hand. */
static void hand_hessian(const double *x, int n, double *h) {
    int q = 0;
    for (int r = 0; r < n; r++) {
        if (r) h[q++] = -400 * x[r - 1];
        h[q++] = (r < n - 1 ? 1200 * x[r] * x[r] - 400 * x[r + 1] + 2 : 0) + (r ? 200 : 0);
    }
}

static void hand_gradient(const double *x, int n, double *g) {
    for (int i = 0; i < n; i++) g[i] = 0;
    for (int i = 0; i + 1 < n; i++) {
        double d = x[i + 1] - x[i] * x[i];
        g[i] += -400 * d * x[i] - 2 * (1 - x[i]);
        g[i + 1] += 200 * d;
    }
}

#define MAXS 64
typedef struct timing {
    double s[MAXS];
    int k;
} timing;

static void add(timing *t, double v) {
    if (t->k < MAXS) t->s[t->k++] = v;
}

int main(int argc, char **argv) {
    int samples = argc > 1 ? atoi(argv[1]) : 9;
    if (samples < 1 || samples > MAXS - 2) samples = 9;
    enum { INNER = 10 };

    /* a: n = 10^5 */
    int n = 100000;
    tg_tape *tg = tg_tape_new(), *th = tg_tape_new();
    tg_node *xg, *xh;
    tg_node *fg = rosenbrock(tg, n, &xg), *fh = rosenbrock(th, n, &xh);
    size_t before = tg_tape_bytes(th);
    double c0 = bench_now();
    tg_sparse *sp;
    if (tg_sparse_hessian_new(fh, 1, &xh, &sp)) {
        fprintf(stderr, "sparse: %s\n", tg_status_message(th));
        return 1;
    }
    double make = bench_now() - c0;
    tg_sparse_info info;
    tg_sparse_info_get(sp, &info);
    double *vals = malloc(sizeof(double) * (size_t)info.nnz);
    double *hand = malloc(sizeof(double) * (size_t)info.nnz);
    double *grad = malloc(sizeof(double) * (size_t)n);
    timing tgrad = {0}, thess = {0}, thand = {0}, thandg = {0};
    double maxerr = 0;
    for (int s = 0; s < samples + 2; s++) {
        double t0 = bench_now();
        for (int i = 0; i < INNER; i++) {
            new_point(xg, n);
            tg_forward(tg);
            tg_zero_grad(tg);
            tg_backward(fg);
        }
        double t1 = bench_now();
        for (int i = 0; i < INNER; i++) {
            new_point(xh, n);
            tg_sparse_eval(sp, vals);
        }
        double t2 = bench_now();
        for (int i = 0; i < INNER; i++) hand_hessian(tg_value(xh), n, hand);
        double t3 = bench_now();
        for (int i = 0; i < INNER; i++) hand_gradient(tg_value(xg), n, grad);
        double t4 = bench_now();
        if (s >= 2) {
            add(&tgrad, (t1 - t0) / INNER);
            add(&thess, (t2 - t1) / INNER);
            add(&thand, (t3 - t2) / INNER);
            add(&thandg, (t4 - t3) / INNER);
        }
    }
    for (int64_t q = 0; q < info.nnz; q++) /* the last point's values against the hand ones */
        maxerr = fmax(maxerr, fabs(vals[q] - hand[q]) / (1 + fabs(hand[q])));
    if (tg_status(tg) || tg_status(th) || maxerr > 1e-12) {
        fprintf(stderr, "sparse: wrong result (%g): %s %s\n", maxerr, tg_status_message(tg),
                tg_status_message(th));
        return 1;
    }
    double g = bench_median(tgrad.s, tgrad.k), h = bench_median(thess.s, thess.k);
    printf("bench=S1a n=%d nnz=%lld colors=%d grad_ms=%.3f sparse_hess_ms=%.3f hess_over_grad=%.2f "
           "hand_hess_ms=%.3f hand_grad_ms=%.3f make_ms=%.1f\n",
           n, (long long)info.nnz, info.colors, 1e3 * g, 1e3 * h, h / g,
           1e3 * bench_median(thand.s, thand.k), 1e3 * bench_median(thandg.s, thandg.k),
           1e3 * make);
    printf("bench=S1a_memory n=%d tape_bytes_f=%zu tape_bytes_with_hessian=%zu "
           "bytes_per_nonzero=%.0f\n", n, before, tg_tape_bytes(th),
           (double)(tg_tape_bytes(th) - before) / (double)info.nnz);
    tg_sparse_free(sp);
    tg_tape_free(tg);
    tg_tape_free(th);
    free(vals);
    free(hand);
    free(grad);

    /* memory at n = 10^4, for proportionality */
    {
        int m = 10000;
        tg_tape *t = tg_tape_new();
        tg_node *x, *f = rosenbrock(t, m, &x);
        size_t b0 = tg_tape_bytes(t);
        tg_sparse *s2;
        tg_sparse_hessian_new(f, 1, &x, &s2);
        tg_sparse_info in2;
        tg_sparse_info_get(s2, &in2);
        printf("bench=S1a_memory n=%d tape_bytes_f=%zu tape_bytes_with_hessian=%zu "
               "bytes_per_nonzero=%.0f\n", m, b0, tg_tape_bytes(t),
               (double)(tg_tape_bytes(t) - b0) / (double)in2.nnz);
        tg_sparse_free(s2);
        tg_tape_free(t);
    }

    /* b: dense against sparse at n = 1000 */
    {
        int m = 1000;
        tg_tape *t = tg_tape_new();
        tg_node *x, *f = rosenbrock(t, m, &x);
        tg_sparse *s3;
        tg_sparse_hessian_new(f, 1, &x, &s3);
        tg_sparse_info in3;
        tg_sparse_info_get(s3, &in3);
        double *dense = malloc(sizeof(double) * (size_t)m * (size_t)m);
        double *v3 = malloc(sizeof(double) * (size_t)in3.nnz);
        timing td = {0}, ts = {0};
        for (int s = 0; s < samples + 2; s++) {
            double t0 = bench_now();
            tg_hessian(f, 1, &x, dense);
            double t1 = bench_now();
            for (int i = 0; i < INNER; i++) tg_sparse_eval(s3, v3);
            double t2 = bench_now();
            if (s >= 2) {
                add(&td, t1 - t0);
                add(&ts, (t2 - t1) / INNER);
            }
        }
        double d = bench_median(td.s, td.k), sm = bench_median(ts.s, ts.k);
        printf("bench=S1b n=%d dense_hessian_ms=%.2f sparse_hess_ms=%.3f dense_over_sparse=%.0f\n",
               m, 1e3 * d, 1e3 * sm, d / sm);
        free(dense);
        free(v3);
        tg_sparse_free(s3);
        tg_tape_free(t);
    }
    return 0;
}
