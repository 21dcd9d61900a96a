/*
 * Gradient descent, define-by-run: minimise f(x, y) = x^2 + y^2 + 2x + 2
 * from (1, 4) with learning rate 0.01. Each step records f on a tape, sweeps
 * it backward for df/dx and df/dy, moves the point against the gradient and
 * resets the tape, which keeps its memory for the next step. The point lives
 * outside the tape, in two doubles.
 *
 * f = (x + 1)^2 + y^2 + 1, so the minimum is f(-1, 0) = 1; each step shrinks
 * the distance to it by the factor 1 - 2 * 0.01 = 0.98.
 */
#include <math.h>
#include <stdio.h>
#include <tapegrad.h>

int main(void) {
    const double rate = 0.01;
    double x = 1, y = 4;
    tg_tape *t = tg_tape_new();
    if (!t) return 1;
    int step = 0;
    for (;; step++) {
        tg_node *xn = tg_scalar(t, x), *yn = tg_scalar(t, y);
        tg_node *f = tg_add(tg_add(tg_add(tg_pow(xn, 2), tg_mul(yn, yn)), tg_scale(xn, 2)),
                            tg_const(t, 2));
        if (tg_backward(f)) {
            fprintf(stderr, "error: %s\n", tg_status_message(t));
            tg_tape_free(t);
            return 1;
        }
        double fx = tg_value_scalar(f), dx = tg_grad_scalar(xn), dy = tg_grad_scalar(yn);
        if (step % 200 == 0)
            printf("step %4d: x = %9.6f, y = %9.6f, f = %9.6f, grad = (%9.6f, %9.6f)\n", step, x, y,
                   fx, dx, dy);
        tg_tape_reset(t);
        if (hypot(dx, dy) < 1e-8 || step == 10000) {
            printf("converged after %d steps: x = %.6f, y = %.6f, f = %.6f\n", step, x, y, fx);
            break;
        }
        x -= rate * dx;
        y -= rate * dy;
    }
    tg_tape_free(t);
    return 0;
}
