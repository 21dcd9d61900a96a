/*
 * Levenberg-Marquardt with tg_jacobian(): fit y = a exp(-b t) + c to 50 noisy
 * samples of a = 2.5, b = 1.3, c = 0.5 on t in [0, 4], starting from
 * (a, b, c) = (1, 0.5, 0).
 *
 * The parameters are one [3] leaf p; the residuals r(p) = a exp(-b t) + c - y
 * are a [50] node, with a, b, c sliced out of p and broadcast against the
 * data. The cost is C = 1/2 |r|^2. Each iteration takes the 50 x 3 Jacobian
 * J = dr/dp from tg_jacobian() (forward mode here, as there are fewer inputs
 * than outputs) and solves
 *   (J^T J + lambda diag(J^T J)) delta = -J^T r,
 * Marquardt's damped Gauss-Newton step: lambda -> 0 is Gauss-Newton, large
 * lambda a short, scaled gradient step, solved with tg_solve(). A step that does not raise C is
 * taken and lambda shrinks tenfold; one that does is refused and lambda
 * grows tenfold. The fit stops when a step moves no parameter by more than
 * 1e-10 of its size or the gradient J^T r vanishes; it fails (exit status 1)
 * after MAX_ITER iterations or when lambda passes 1e12.
 *
 * At the end it prints the parameters with their standard errors,
 * sqrt(diag(s^2 (J^T J)^-1)) with s^2 = |r|^2 / (50 - 3) (tg_inverse()), the usual
 * linearised estimate. `curve_fit --data` prints the samples instead
 * (t and y, one pair a line), for checking the fit with another tool.
 *
 * The noise is Gaussian with standard deviation 0.05, drawn from a fixed
 * seed so that every run sees the same data.
 */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <tapegrad.h>

enum { N = 50, P = 3, MAX_ITER = 100 };

static const double TRUE_P[P] = {2.5, 1.3, 0.5}, SIGMA = 0.05;

/* splitmix64: a small, good 64-bit generator; uniform in (0, 1]. */
static double uniform(uint64_t *s) {
    uint64_t z = (*s += 0x9E3779B97F4A7C15u);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9u;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBu;
    z ^= z >> 31;
    return ((double)(z >> 11) + 1) * 0x1p-53;
}

static void make_data(double *t, double *y) {
    uint64_t seed = 2026;
    const double two_pi = 6.283185307179586;
    for (int i = 0; i < N; i++) {
        t[i] = 4.0 * i / (N - 1);
        /* Box-Muller: one standard normal from two uniforms */
        double u1 = uniform(&seed), u2 = uniform(&seed);
        double noise = sqrt(-2 * log(u1)) * cos(two_pi * u2);
        y[i] = TRUE_P[0] * exp(-TRUE_P[1] * t[i]) + TRUE_P[2] + SIGMA * noise;
    }
}

/* Records the residuals at parameters pv on the (empty) tape; *p is the
 * parameter leaf. */
static tg_node *residuals(tg_tape *tape, const double *pv, const double *t, const double *y,
                          tg_node **p) {
    const int64_t np = P, n = N;
    *p = tg_tensor(tape, TG_F64, 1, &np, pv);
    tg_node *tn = tg_input(tape, TG_F64, 1, &n, t), *yn = tg_input(tape, TG_F64, 1, &n, y);
    tg_node *a = tg_slice(*p, 0, 0, 1), *b = tg_slice(*p, 0, 1, 1), *c = tg_slice(*p, 0, 2, 1);
    tg_node *model = tg_add(tg_mul(a, tg_exp(tg_neg(tg_mul(b, tn)))), c);
    return tg_sub(model, yn);
}

static double half_sq(const tg_node *r) {
    double s = 0;
    for (int64_t i = 0; i < tg_numel(r); i++) s += tg_value_at(r, i) * tg_value_at(r, i);
    return s / 2;
}

/* Solves the P x P system a x = b (a row-major) with tg_solve() (LU with
 * partial pivoting, through LAPACK) on the empty tape, and empties it again.
 * Returns the tape's status: TG_ERR_SINGULAR for a singular a. */
static int solve(tg_tape *tape, const double *a, const double *b, double *x) {
    const int64_t sa[2] = {P, P}, sb[2] = {P, 1};
    tg_node *xn = tg_solve(tg_input(tape, TG_F64, 2, sa, a), tg_input(tape, TG_F64, 2, sb, b));
    int rc = tg_status(tape);
    for (int j = 0; j < P && !rc; j++) x[j] = tg_value_at(xn, j);
    tg_tape_reset(tape);
    return rc;
}

/* The cost at pv, recorded on a fresh tape; NaN on a tape error. */
static double cost_at(tg_tape *tape, const double *pv, const double *t, const double *y) {
    tg_node *p;
    tg_node *r = residuals(tape, pv, t, y, &p);
    double c = tg_status(tape) ? NAN : half_sq(r);
    tg_tape_reset(tape);
    return c;
}

int main(int argc, char **argv) {
    double t[N], y[N];
    make_data(t, y);
    if (argc > 1 && strcmp(argv[1], "--data") == 0) {
        for (int i = 0; i < N; i++) printf("%.17g %.17g\n", t[i], y[i]);
        return 0;
    }
    tg_tape *tape = tg_tape_new();
    if (!tape) return 1;
    double p[P] = {1, 0.5, 0}, lambda = 1e-3, jtj[P * P], jtr[P], cost = 0;
    printf("%4s %20s %20s %20s %22s %9s\n", "iter", "a", "b", "c", "cost", "lambda");
    for (int iter = 0;; iter++) {
        /* r, J and the normal equations at p */
        tg_node *pn;
        tg_node *r = residuals(tape, p, t, y, &pn);
        double jac[N * P];
        if (tg_jacobian(r, 1, &pn, jac)) {
            fprintf(stderr, "curve_fit: %s\n", tg_status_message(tape));
            tg_tape_free(tape);
            return 1;
        }
        cost = half_sq(r);
        double rv[N];
        for (int i = 0; i < N; i++) rv[i] = tg_value_at(r, i);
        tg_tape_reset(tape);
        double gmax = 0;
        for (int j = 0; j < P; j++) {
            jtr[j] = 0;
            for (int i = 0; i < N; i++) jtr[j] += jac[i * P + j] * rv[i];
            for (int k = 0; k < P; k++) {
                jtj[j * P + k] = 0;
                for (int i = 0; i < N; i++) jtj[j * P + k] += jac[i * P + j] * jac[i * P + k];
            }
            gmax = fmax(gmax, fabs(jtr[j]));
        }
        printf("%4d %20.15f %20.15f %20.15f %22.17g %9.1e\n", iter, p[0], p[1], p[2], cost, lambda);
        if (gmax < 1e-12) break;
        if (iter == MAX_ITER) {
            fprintf(stderr, "curve_fit: no convergence after %d iterations\n", MAX_ITER);
            tg_tape_free(tape);
            return 1;
        }
        /* damped steps until one lowers the cost */
        double trial[P], trial_cost;
        for (;;) {
            double a[P * P], rhs[P], delta[P];
            memcpy(a, jtj, sizeof a);
            for (int j = 0; j < P; j++) {
                a[j * P + j] *= 1 + lambda;
                rhs[j] = -jtr[j];
            }
            if (solve(tape, a, rhs, delta) == 0) {
                for (int j = 0; j < P; j++) trial[j] = p[j] + delta[j];
                trial_cost = cost_at(tape, trial, t, y);
                if (trial_cost <= cost) break; /* NaN fails this test: refused */
            }
            lambda *= 10;
            if (lambda > 1e12) {
                fprintf(stderr, "curve_fit: no step lowers the cost (lambda %g)\n", lambda);
                tg_tape_free(tape);
                return 1;
            }
        }
        /* converged when the step no longer moves p at 1e-10 of its size */
        double moved = 0;
        for (int j = 0; j < P; j++)
            moved = fmax(moved, fabs(trial[j] - p[j]) / (fabs(p[j]) + 1e-8));
        memcpy(p, trial, sizeof p);
        lambda = fmax(lambda / 10, 1e-12);
        if (moved < 1e-10) {
            cost = trial_cost;
            printf("%4d %20.15f %20.15f %20.15f %22.17g %9.1e\n", iter + 1, p[0], p[1], p[2], cost,
                   lambda);
            break;
        }
    }

    /* standard errors from the last J^T J (one tiny step before the fit):
     * the diagonal of its inverse */
    const int64_t sp[2] = {P, P};
    tg_node *cov = tg_inverse(tg_input(tape, TG_F64, 2, sp, jtj));
    if (tg_status(tape)) {
        fprintf(stderr, "curve_fit: %s\n", tg_status_message(tape));
        tg_tape_free(tape);
        return 1;
    }
    double s2 = 2 * cost / (N - P), se[P];
    for (int j = 0; j < P; j++) se[j] = sqrt(s2 * tg_value_at(cov, j * P + j));
    tg_tape_free(tape);
    printf("final cost %.17g\n", cost);
    const char *names[P] = {"a", "b", "c"};
    for (int j = 0; j < P; j++)
        printf("%s = %.12f +- %.6f (true %g)\n", names[j], p[j], se[j], TRUE_P[j]);
    return 0;
}
