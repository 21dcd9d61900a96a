/*
 * Hock and Schittkowski's problem 71 through Ipopt, every derivative by
 * tapegrad:
 *     minimise   x0 x3 (x0 + x1 + x2) + x2
 *     subject to x0 x1 x2 x3 >= 25,  x0^2 + x1^2 + x2^2 + x3^2 = 40,
 *                1 <= x <= 5,  from x = (1, 5, 5, 1).
 * The optimum is f* = 17.0140173 at (1, 4.7430, 3.8211, 1.3794) (Ipopt's
 * own C example ends at 17.014017145 with its default tolerance). The
 * program prints the solution and exits with status 1 unless Ipopt
 * reports success there.
 */
#include <math.h>
#include <stdio.h>

#include "ipopt_glue.h"

/* f and c of the leaf x, on its tape. */
static tg_node *hs071(tg_tape *t, tg_node *x, tg_node **c, void *data) {
    (void)t, (void)data;
    tg_node *xi[4];
    for (int i = 0; i < 4; i++) xi[i] = tg_slice(x, 0, i, 1);
    tg_node *f = tg_sum(tg_add(tg_mul(tg_mul(xi[0], xi[3]), tg_sum(tg_slice(x, 0, 0, 3))), xi[2]));
    tg_node *prod = tg_prod(x), *sq = tg_sum(tg_square(x));
    *c = tg_concat(2, (tg_node *[]){tg_reshape(prod, 1, (int64_t[]){1}),
                                    tg_reshape(sq, 1, (int64_t[]){1})}, 0);
    return f;
}

int main(void) {
    tg_nlp p;
    if (nlp_init(&p, 4, (double[]){1, 5, 5, 1}, hs071, NULL)) return 1;
    printf("HS071: n = 4, m = 2; Jacobian %lld nonzeros (%d colours), Hessian of the "
           "Lagrangian %lld (%d colours)\n", (long long)p.jac_info.nnz, p.jac_info.colors,
           (long long)p.hess_info.nnz, p.hess_info.colors);

    Number lo[4] = {1, 1, 1, 1}, hi[4] = {5, 5, 5, 5}, glo[2] = {25, 40}, ghi[2] = {2e19, 40};
    IpoptProblem nlp = nlp_ipopt(&p, lo, hi, glo, ghi);
    AddIpoptIntOption(nlp, "print_level", 0);
    AddIpoptStrOption(nlp, "sb", "yes");
    AddIpoptNumOption(nlp, "tol", 1e-9);
    Number xs[4] = {1, 5, 5, 1}, obj = 0;
    enum ApplicationReturnStatus status = IpoptSolve(nlp, xs, NULL, &obj, NULL, NULL, NULL, &p);
    FreeIpoptProblem(nlp);
    nlp_free(&p);
    printf("status %d, f = %.9f at x = (%.4f, %.4f, %.4f, %.4f)\n", (int)status, obj, xs[0],
           xs[1], xs[2], xs[3]);
    if (status != Solve_Succeeded || fabs(obj - 17.0140173) > 1e-6) {
        printf("FAILED: want f* = 17.0140173\n");
        return 1;
    }
    printf("optimum f* = 17.0140173 reached\n");
    return 0;
}
