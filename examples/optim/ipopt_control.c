/*
 * A large sparse problem through Ipopt: a discretised optimal-control
 * problem with nonlinear dynamics, N steps of forward Euler (h = 1/N),
 * states y_0..y_N and controls u_0..u_{N-1} in one leaf of n = 2N + 1
 * variables (N = 50,000 by default: n = 100,001, m = 50,001):
 *     minimise   h/2 sum_k (y_k - r_k)^2 + a h/2 sum_k (u_k - s_k)^2
 *     subject to y_{k+1} = y_k + h (y_k - y_k^3 + u_k),  y_0 = r_0.
 * The reference r is a trajectory, and s the controls that make it one:
 * s_k = (r_{k+1} - r_k)/h - (r_k - r_k^3). So the optimum is known: f* = 0
 * at y = r, u = s (the objective is strictly convex in (y, u), and that
 * point is feasible). Every derivative Ipopt takes (the gradient, the
 * constraint Jacobian of 3 nonzeros a row, the Hessian of the Lagrangian,
 * diagonal) is tapegrad's, from one recording. The program prints the
 * times, the memory and the distance to the optimum, and exits with status
 * 1 unless Ipopt converges to it. Usage: ipopt_control [N].
 */
#define _POSIX_C_SOURCE 200809L
#include <math.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <time.h>

#include "ipopt_glue.h"

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

typedef struct control {
    int N;
    double h, a;
    const double *r, *s; /* the reference trajectory and its controls */
} control;

/* f and c of the leaf x = (y_0..y_N, u_0..u_{N-1}), on its tape. */
static tg_node *record(tg_tape *t, tg_node *x, tg_node **c, void *data) {
    const control *ctl = data;
    int N = ctl->N;
    double h = ctl->h;
    tg_node *y = tg_slice(x, 0, 0, N + 1), *u = tg_slice(x, 0, N + 1, N);
    tg_node *yk = tg_slice(y, 0, 0, N), *yk1 = tg_slice(y, 0, 1, N);
    tg_node *ref = tg_input(t, TG_F64, 1, (int64_t[]){N}, ctl->r + 1);
    tg_node *sref = tg_input(t, TG_F64, 1, (int64_t[]){N}, ctl->s);
    tg_node *track = tg_sum(tg_square(tg_sub(yk1, ref)));
    tg_node *effort = tg_sum(tg_square(tg_sub(u, sref)));
    tg_node *f = tg_add(tg_scale(track, h / 2), tg_scale(effort, ctl->a * h / 2));
    tg_node *rate = tg_add(tg_sub(yk, tg_mul(yk, tg_square(yk))), u);
    tg_node *dyn = tg_sub(tg_sub(yk1, yk), tg_scale(rate, h));
    tg_node *start = tg_sub(tg_slice(y, 0, 0, 1), tg_const(t, ctl->r[0]));
    *c = tg_concat(2, (tg_node *[]){start, dyn}, 0);
    return f;
}

int main(int argc, char **argv) {
    long steps = argc > 1 ? strtol(argv[1], NULL, 10) : 50000;
    if (steps < 2 || steps > 10000000) {
        fprintf(stderr, "usage: ipopt_control [N], 2 <= N <= 10^7\n");
        return 2;
    }
    int N = (int)steps, n = 2 * N + 1;
    double h = 1.0 / N, a = 1e-2, pi = acos(-1);
    double *r = malloc(sizeof(double) * (size_t)(N + 1)), *s = malloc(sizeof(double) * (size_t)N);
    double *x0 = calloc((size_t)n, sizeof(double));
    if (!r || !s || !x0) return 1;
    for (int k = 0; k <= N; k++) r[k] = 0.5 * sin(2 * pi * k * h) + 0.3;
    for (int k = 0; k < N; k++) s[k] = (r[k + 1] - r[k]) / h - (r[k] - r[k] * r[k] * r[k]);

    double t0 = now();
    control ctl = {N, h, a, r, s};
    tg_nlp p;
    if (nlp_init(&p, n, x0, record, &ctl)) return 1;
    double t2 = now();
    printf("control: N = %d, n = %d, m = %d; three recordings, patterns, colourings and "
           "derivative recordings %.3f s\n", N, n, p.m, t2 - t0);
    printf("control: Jacobian %lld nonzeros in %d colours (rows of at most %lld); Hessian of "
           "the Lagrangian %lld nonzeros in %d colours\n", (long long)p.jac_info.nnz,
           p.jac_info.colors, (long long)p.jac_info.max_row_nnz, (long long)p.hess_info.nnz,
           p.hess_info.colors);

    /* one evaluation of each, timed, at the start */
    double *vals = malloc(sizeof(double) * (size_t)(p.jac_info.nnz + p.hess_info.nnz));
    double *lambda = calloc((size_t)p.m, sizeof(double));
    if (!vals || !lambda) return 1;
    double e0 = now();
    tg_forward(p.t[NLP_VALUES]);
    tg_zero_grad(p.t[NLP_VALUES]);
    tg_backward(p.f);
    double e1 = now();
    tg_sparse_eval(p.jac, vals);
    double e2 = now();
    tg_sparse_eval_lagrangian(p.hess, 1, lambda, vals + p.jac_info.nnz);
    double e3 = now();
    printf("control: one replay with gradient %.1f ms, sparse Jacobian %.1f ms, Hessian of "
           "the Lagrangian %.1f ms; tapes %.1f, %.1f and %.1f MB\n", 1e3 * (e1 - e0),
           1e3 * (e2 - e1), 1e3 * (e3 - e2), (double)tg_tape_bytes(p.t[0]) / 1e6,
           (double)tg_tape_bytes(p.t[1]) / 1e6, (double)tg_tape_bytes(p.t[2]) / 1e6);
    free(vals);
    free(lambda);

    Number *lo = malloc(sizeof(Number) * (size_t)n), *hi = malloc(sizeof(Number) * (size_t)n);
    Number *glo = calloc((size_t)p.m, sizeof(Number)), *ghi = calloc((size_t)p.m, sizeof(Number));
    if (!lo || !hi || !glo || !ghi) return 1;
    for (int i = 0; i < n; i++) lo[i] = -1e20, hi[i] = 1e20;
    IpoptProblem nlp = nlp_ipopt(&p, lo, hi, glo, ghi);
    AddIpoptIntOption(nlp, "print_level", 0);
    AddIpoptStrOption(nlp, "sb", "yes");
    AddIpoptNumOption(nlp, "tol", 1e-10);
    Number obj = 0;
    double s0 = now();
    enum ApplicationReturnStatus status = IpoptSolve(nlp, x0, NULL, &obj, NULL, NULL, NULL, &p);
    double s1 = now();
    FreeIpoptProblem(nlp);
    double dy = 0, du = 0;
    for (int k = 0; k <= N; k++) dy = fmax(dy, fabs(x0[k] - r[k]));
    for (int k = 0; k < N; k++) du = fmax(du, fabs(x0[N + 1 + k] - s[k]));
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    printf("control: Ipopt status %d in %.2f s; f = %.3g; max |y - r| = %.2g, max |u - s| = "
           "%.2g; peak memory %.0f MB\n", (int)status, s1 - s0, obj, dy, du,
           (double)ru.ru_maxrss / 1024);
    printf("control: evaluations: f %ld, gradient %ld, c %ld, Jacobian %ld, Hessian %ld\n",
           p.calls[0], p.calls[1], p.calls[2], p.calls[3], p.calls[4]);
    nlp_free(&p);
    free(lo), free(hi), free(glo), free(ghi), free(r), free(s), free(x0);
    if (status != Solve_Succeeded || fabs(obj) > 1e-8 || dy > 1e-5 || du > 1e-3) {
        printf("FAILED: want f* = 0 at y = r, u = s\n");
        return 1;
    }
    printf("optimum f* = 0 reached\n");
    return 0;
}
