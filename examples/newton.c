/*
 * Newton's method with an exact Hessian: minimise the Rosenbrock function
 *   f(x, y) = (1 - x)^2 + 100 (y - x^2)^2
 * from the classic start (-1.2, 1). Each iteration records f on a fresh tape,
 * takes the gradient g with tg_backward() and the 2 x 2 Hessian H with
 * tg_hessian(), solves H d = -g and moves to (x, y) + d.
 *
 * This is plain Newton, without a line search or trust region: from (-1.2, 1)
 * every Hessian on the path is positive definite and the iteration reaches
 * the minimum (1, 1) in 6-7 steps, the last ones quadratically (the error
 * squares each step). A singular Hessian, a non-finite step or more than
 * MAX_ITER iterations end the program with exit status 1, so a regression in
 * the derivatives shows as a failure, not as a slow crawl.
 */
#include <math.h>
#include <stdio.h>
#include <tapegrad.h>

enum { MAX_ITER = 25 };

/* Records f(x, y) on the tape. */
static tg_node *rosenbrock(tg_node *x, tg_node *y) {
    tg_tape *t = tg_node_tape(x);
    tg_node *a = tg_square(tg_sub(tg_const(t, 1), x));
    tg_node *b = tg_square(tg_sub(y, tg_square(x)));
    return tg_add(a, tg_scale(b, 100));
}

/* Solves the 2 x 2 system h d = r (h row-major) by Gaussian elimination with
 * partial pivoting. Returns 0, or -1 when h is singular to working precision. */
static int solve2(const double h[4], const double r[2], double d[2]) {
    double a[2][3] = {{h[0], h[1], r[0]}, {h[2], h[3], r[1]}};
    if (fabs(a[1][0]) > fabs(a[0][0])) /* pivot: the larger first column entry on top */
        for (int k = 0; k < 3; k++) {
            double s = a[0][k];
            a[0][k] = a[1][k];
            a[1][k] = s;
        }
    double scale = fabs(h[0]) + fabs(h[1]) + fabs(h[2]) + fabs(h[3]);
    if (a[0][0] == 0) return -1;
    double m = a[1][0] / a[0][0];
    double u11 = a[1][1] - m * a[0][1], z1 = a[1][2] - m * a[0][2];
    if (!(fabs(u11) > 1e-14 * scale)) return -1;
    d[1] = z1 / u11;
    d[0] = (a[0][2] - a[0][1] * d[1]) / a[0][0];
    return 0;
}

int main(void) {
    double x = -1.2, y = 1;
    tg_tape *t = tg_tape_new();
    if (!t) return 1;
    printf("%4s %24s %24s %24s %12s\n", "iter", "x", "y", "f", "|grad|");
    for (int iter = 0;; iter++) {
        tg_node *xn = tg_scalar(t, x), *yn = tg_scalar(t, y);
        tg_node *f = rosenbrock(xn, yn);
        double h[4];
        if (tg_backward(f) || tg_hessian(f, 2, (tg_node *[]){xn, yn}, h)) {
            fprintf(stderr, "newton: %s\n", tg_status_message(t));
            tg_tape_free(t);
            return 1;
        }
        double g[2] = {tg_grad_scalar(xn), tg_grad_scalar(yn)}, fv = tg_value_scalar(f);
        tg_tape_reset(t);
        double gnorm = hypot(g[0], g[1]);
        printf("%4d %24.17g %24.17g %24.17g %12.3e\n", iter, x, y, fv, gnorm);
        /* At the minimum g is zero; rounding leaves it near 1e-13 (f's terms
         * are O(1) and 100 (y - x^2) amplifies their errors), so stop there. */
        if (gnorm < 1e-10) {
            printf("converged after %d iterations: x = %.17g, y = %.17g, f = %.3g\n", iter, x, y,
                   fv);
            break;
        }
        double d[2];
        if (iter == MAX_ITER || solve2(h, (double[]){-g[0], -g[1]}, d) || !isfinite(d[0] + d[1])) {
            fprintf(stderr, "newton: no convergence (iteration %d, x = %g, y = %g)\n", iter, x, y);
            tg_tape_free(t);
            return 1;
        }
        x += d[0];
        y += d[1];
    }
    tg_tape_free(t);
    return 0;
}
