/*
 * Gaussian-process regression: fit the hyperparameters of a squared-
 * exponential kernel to 40 noisy samples of sin(1.5 x) + 0.3 x on [0, 5] by
 * minimising the negative log marginal likelihood
 *
 *   NLL(theta) = 1/2 y^T K^-1 y + 1/2 log det K + N/2 log(2 pi),
 *   K_ij = s_f^2 exp(-(x_i - x_j)^2 / (2 l^2)) + s_n^2 [i = j],
 *
 * over theta = (log l, log s_f, log s_n) (logs keep the three positive).
 * K^-1 y comes from tg_cholesky() and tg_cholesky_solve(), log det K from
 * tg_logdet(); all of it is recorded, so tg_backward() gives the gradient
 * and tg_hessian() the 3 x 3 Hessian through the factorisation.
 *
 * Each iteration takes a damped Newton step, (H + mu I) d = -g, solved with
 * tg_cholesky() / tg_cholesky_solve() on the tape: a Hessian that is not
 * positive definite there (TG_ERR_SINGULAR) or a step that raises the NLL
 * is refused and mu grows tenfold; an accepted step shrinks it. The fit stops
 * when the gradient's largest component is below 1e-9, and fails (exit
 * status 1) after MAX_ITER iterations.
 *
 * It prints one line per iteration (the NLL, the gradient, theta), then the
 * fitted l, s_f, s_n, the final NLL, and the posterior mean
 * k(x*, X) K^-1 y at three points. `gp --data` prints the samples instead
 * (x and y, one pair a line), for checking the fit with another tool
 * (tests/test_examples.sh does, with NumPy).
 */
#include <math.h>
#include <stdio.h>
#include <string.h>
#include <tapegrad.h>

enum { N = 40, MAX_ITER = 60 };

static void make_data(double *x, double *y) {
    tg_rng rng;
    tg_rng_seed(&rng, 2026);
    for (int i = 0; i < N; i++) {
        x[i] = 5.0 * i / (N - 1);
        y[i] = sin(1.5 * x[i]) + 0.3 * x[i] + 0.1 * tg_rng_normal(&rng);
    }
}

/* The kernel matrix s_f^2 exp(-d2 / (2 l^2)) (+ s_n^2 I when eye is given)
 * for squared distances d2, from the leaf theta. */
static tg_node *kernel(tg_node *theta, tg_node *d2, tg_node *eye) {
    tg_node *e = tg_exp(theta);
    tg_node *l = tg_slice(e, 0, 0, 1), *sf = tg_slice(e, 0, 1, 1), *sn = tg_slice(e, 0, 2, 1);
    tg_node *k = tg_mul(tg_square(sf), tg_exp(tg_div(tg_neg(d2), tg_scale(tg_square(l), 2))));
    return eye ? tg_add(k, tg_mul(tg_square(sn), eye)) : k;
}

/* An input of the given shape and values. */
static tg_node *input(tg_tape *t, int64_t rows, int64_t cols, const double *v) {
    const int64_t s[2] = {rows, cols};
    return tg_input(t, TG_F64, 2, s, v);
}

/* Records the NLL at theta_v on the (empty) tape; *theta is the leaf and
 * *alpha = K^-1 y. */
static tg_node *nll(tg_tape *t, const double *theta_v, const double *x, const double *y,
                    tg_node **theta, tg_node **alpha) {
    static double d2[N * N], eye[N * N];
    for (int i = 0; i < N; i++)
        for (int j = 0; j < N; j++) {
            d2[i * N + j] = (x[i] - x[j]) * (x[i] - x[j]);
            eye[i * N + j] = i == j;
        }
    const int64_t three = 3;
    *theta = tg_tensor(t, TG_F64, 1, &three, theta_v);
    tg_node *k = kernel(*theta, input(t, N, N, d2), input(t, N, N, eye));
    tg_node *yn = input(t, N, 1, y);
    *alpha = tg_cholesky_solve(tg_cholesky(k), yn);
    tg_node *fit = tg_scale(tg_sum(tg_mul(yn, *alpha)), 0.5);
    tg_node *complexity = tg_scale(tg_logdet(k), 0.5);
    return tg_add(tg_add(fit, complexity), tg_const(t, 0.5 * N * log(2 * 3.14159265358979323846)));
}

/* The NLL at theta_v, or NaN when K is not positive definite there. */
static double nll_at(tg_tape *t, const double *theta_v, const double *x, const double *y) {
    tg_node *theta, *alpha;
    tg_node *f = nll(t, theta_v, x, y, &theta, &alpha);
    double v = tg_status(t) ? NAN : tg_value_scalar(f);
    tg_tape_reset(t);
    return v;
}

/* d = -(h + mu I)^-1 g through the Cholesky factor; the tape's status
 * (TG_ERR_SINGULAR when h + mu I is not positive definite). */
static int newton_step(tg_tape *t, const double *h, double mu, const double *g, double *d) {
    double a[9];
    memcpy(a, h, sizeof a);
    for (int j = 0; j < 3; j++) a[j * 3 + j] += mu;
    tg_node *dn = tg_neg(tg_cholesky_solve(tg_cholesky(input(t, 3, 3, a)), input(t, 3, 1, g)));
    int rc = tg_status(t);
    for (int j = 0; j < 3 && !rc; j++) d[j] = tg_value_at(dn, j);
    tg_tape_reset(t);
    return rc;
}

int main(int argc, char **argv) {
    double x[N], y[N];
    make_data(x, y);
    if (argc > 1 && !strcmp(argv[1], "--data")) {
        for (int i = 0; i < N; i++) printf("%.17g %.17g\n", x[i], y[i]);
        return 0;
    }
    tg_tape *t = tg_tape_new();
    if (!t) return 1;
    double theta_v[3] = {0, 0, log(0.5)}, mu = 1e-3, f = 0, g[3], h[9];
    for (int iter = 0;; iter++) {
        tg_node *theta, *alpha;
        tg_node *fn = nll(t, theta_v, x, y, &theta, &alpha);
        if (tg_backward(fn) || tg_hessian(fn, 1, &theta, h)) {
            fprintf(stderr, "gp: %s\n", tg_status_message(t));
            tg_tape_free(t);
            return 1;
        }
        f = tg_value_scalar(fn);
        double gmax = 0;
        for (int j = 0; j < 3; j++) gmax = fmax(gmax, fabs(g[j] = tg_grad_at(theta, j)));
        tg_tape_reset(t);
        printf("iter %2d nll %.17g grad %.17g %.17g %.17g theta %.17g %.17g %.17g\n", iter, f,
               g[0], g[1], g[2], theta_v[0], theta_v[1], theta_v[2]);
        if (gmax < 1e-9) break;
        if (iter == MAX_ITER) {
            fprintf(stderr, "gp: no convergence after %d iterations\n", MAX_ITER);
            tg_tape_free(t);
            return 1;
        }
        for (;;) { /* damped steps until one lowers the NLL */
            double d[3], trial[3];
            if (newton_step(t, h, mu, g, d) == TG_OK) {
                for (int j = 0; j < 3; j++) trial[j] = theta_v[j] + d[j];
                if (nll_at(t, trial, x, y) <= f) { /* NaN fails this test: refused */
                    memcpy(theta_v, trial, sizeof trial);
                    mu = fmax(mu / 10, 1e-12);
                    break;
                }
            }
            mu *= 10;
            if (mu > 1e12) {
                fprintf(stderr, "gp: no step lowers the NLL (mu %g)\n", mu);
                tg_tape_free(t);
                return 1;
            }
        }
    }
    printf("length %.12f\nsignal %.12f\nnoise %.12f\nfinal nll %.17g\n", exp(theta_v[0]),
           exp(theta_v[1]), exp(theta_v[2]), f);

    /* The posterior mean k(x*, X) K^-1 y at three points. */
    const double xs[3] = {0.5, 2.5, 4.75};
    double d2[3 * N];
    for (int i = 0; i < 3; i++)
        for (int j = 0; j < N; j++) d2[i * N + j] = (xs[i] - x[j]) * (xs[i] - x[j]);
    tg_node *theta, *alpha;
    nll(t, theta_v, x, y, &theta, &alpha);
    tg_node *mean = tg_matmul(kernel(theta, input(t, 3, N, d2), NULL), alpha);
    if (tg_status(t)) {
        fprintf(stderr, "gp: %s\n", tg_status_message(t));
        tg_tape_free(t);
        return 1;
    }
    for (int i = 0; i < 3; i++) printf("mean at %.2f: %.12f\n", xs[i], tg_value_at(mean, i));
    tg_tape_free(t);
    return 0;
}
