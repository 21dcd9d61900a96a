/*
 * An unconstrained problem through liblbfgs (liblbfgs-dev): the chained
 * Rosenbrock function of n variables (n = 1,000 by default),
 *     f(x) = sum_{i < n-1} 100 (x_{i+1} - x_i^2)^2 + (1 - x_i)^2,
 * from x = (-1.2, 1, -1.2, 1, ...). Its minimum is f* = 0 at x = (1, ..., 1).
 * (The approach to it travels along the chain, about one variable per few
 * iterations: n = 1,000 takes some 6,000 evaluations.)
 * The function is recorded once, vectorised; each evaluation liblbfgs asks
 * for writes x into the leaf, replays the tape and sweeps it backward. The
 * program exits with status 1 unless it reaches the minimum.
 * Usage: lbfgs_rosenbrock [n].
 */
#include <lbfgs.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <tapegrad.h>

typedef struct problem {
    tg_tape *t;
    tg_node *x, *f;
    int evals;
} problem;

static lbfgsfloatval_t evaluate(void *data, const lbfgsfloatval_t *x, lbfgsfloatval_t *g, int n,
                                const lbfgsfloatval_t step) {
    (void)step;
    problem *p = data;
    p->evals++;
    memcpy(tg_value(p->x), x, sizeof(double) * (size_t)n);
    tg_forward(p->t);
    tg_zero_grad(p->t);
    if (tg_backward(p->f)) return NAN; /* liblbfgs stops on a non-finite value */
    memcpy(g, tg_grad(p->x), sizeof(double) * (size_t)n);
    return tg_value_scalar(p->f);
}

int main(int argc, char **argv) {
    long nv = argc > 1 ? strtol(argv[1], NULL, 10) : 1000;
    if (nv < 2 || nv > 100000000) {
        fprintf(stderr, "usage: lbfgs_rosenbrock [n], 2 <= n <= 10^8\n");
        return 2;
    }
    int n = (int)nv;
    lbfgsfloatval_t *x = lbfgs_malloc(n);
    if (!x) return 1;
    for (int i = 0; i < n; i++) x[i] = i % 2 ? 1 : -1.2;
    problem p = {.t = tg_tape_new()};
    p.x = tg_tensor(p.t, TG_F64, 1, (int64_t[]){n}, x);
    tg_node *a = tg_slice(p.x, 0, 0, n - 1), *b = tg_slice(p.x, 0, 1, n - 1);
    tg_node *d = tg_sub(b, tg_square(a)), *e = tg_sub(tg_const(p.t, 1), a);
    p.f = tg_sum(tg_add(tg_scale(tg_square(d), 100), tg_square(e)));
    if (tg_status(p.t)) {
        fprintf(stderr, "recording: %s\n", tg_status_message(p.t));
        return 1;
    }
    lbfgs_parameter_t param;
    lbfgs_parameter_init(&param);
    param.epsilon = 1e-10;
    param.max_iterations = 20000;
    lbfgsfloatval_t fx = 0;
    int rc = lbfgs(n, x, &fx, evaluate, NULL, &p, &param);
    double err = 0;
    for (int i = 0; i < n; i++) err = fmax(err, fabs(x[i] - 1));
    printf("L-BFGS on Rosenbrock, n = %d: status %d after %d evaluations; f = %.3g, max |x - 1| "
           "= %.2g\n", n, rc, p.evals, fx, err);
    lbfgs_free(x);
    tg_tape_free(p.t);
    if (rc < 0 || fx > 1e-12 || err > 1e-5) {
        printf("FAILED: want f* = 0 at x = 1\n");
        return 1;
    }
    printf("minimum f* = 0 reached\n");
    return 0;
}
