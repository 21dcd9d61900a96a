/*
 * Where the registry walks of test_expr.c and test_cli.c evaluate each
 * registered op on float64 scalars: the first candidate point at which the
 * C API (tg_call_n) gives a finite value and finite derivatives. The same
 * candidates serve every op, so an op added to the registry is covered
 * without a line here; the table below names only the ops that refuse 0-d
 * inputs, with the reason. Every other op must have a finite point among
 * the candidates, or the walks fail naming it.
 */
#ifndef TG_TEST_OP_POINTS_H
#define TG_TEST_OP_POINTS_H

#include <math.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include <tapegrad.h>

/* Ops that cannot take the command line's 0-d inputs. For these the walks
 * check instead that the expression language reports the library's own
 * error (the tape's message from tg_call_n on scalars). */
static const struct scalar_refusal {
    const char *op, *reason;
} scalar_refusals[] = {
    {"matmul", "multiplies 2-D operands"},
    {"transpose", "transposes a 2-D operand"},
    {"slice", "slices along axis 0 when called by name, and a 0-d input has no axis"},
    {"concat", "joins along axis 0 when called by name (as slice)"},
    {"index_select", "gathers along axis 0 by a 1-D index tensor (as slice)"},
    {"index_add", "adds into rows along axis 0 by a 1-D index tensor (as slice)"},
    {"tril", "masks the last two dimensions: needs at least 2"},
    {"triu", "masks the last two dimensions: needs at least 2"},
    {"sum", "sums along axis 0 when called by name, and a 0-d input has no axis"},
    {"mean", "averages along axis 0 when called by name (as sum)"},
    {"softmax", "normalises along axis 0 when called by name (as sum)"},
    {"log_softmax", "along axis 0 when called by name (as sum)"},
    {"max", "reduces along axis 0 when called by name (as sum)"},
    {"min", "reduces along axis 0 when called by name (as sum)"},
    {"logsumexp", "reduces along axis 0 when called by name (as sum)"},
    {"prod", "reduces along axis 0 when called by name (as sum)"},
    {"norm", "reduces along axis 0 when called by name (as sum)"},
    {"var", "reduces along axis 0 when called by name (as sum)"},
    {"unary_tangent", "takes its unary op as a parameter (tg_unary_tangent reads it from y): "
                      "called by name it has none"},
    {"logsumexp_dx", "a derivative op of a reduction along axis 0 when called by name (as sum)"},
    {"prod_dx", "a derivative op of a reduction along axis 0 when called by name (as sum)"},
    {"norm_dx", "a derivative op of a reduction along axis 0 when called by name (as sum)"},
    {"var_dx", "a derivative op of a reduction along axis 0 when called by name (as sum)"},
    {"argmax", "reduces along axis 0 when called by name (as sum); the command line's "
               "argmax(a, b) takes the index over its arguments"},
    {"nll_loss", "a loss over rows of class scores: needs a class axis, not 0-d"},
    {"cross_entropy", "a loss over rows of logits: needs a class axis, not 0-d"},
    {"mse", "a loss over a batch: prediction and target must not be 0-d"},
    {"softmax_xent", "a loss over a batch of logit rows: not 0-d"},
    {"cholesky", "factors a square matrix: needs at least 2-D"},
    {"cholesky_solve", "solves with a square matrix: needs at least 2-D"},
    {"triangular_solve", "solves with a square matrix: needs at least 2-D"},
    {"solve", "solves with a square matrix: needs at least 2-D"},
    {"inverse", "inverts a square matrix: needs at least 2-D"},
    {"det", "of a square matrix: needs at least 2-D"},
    {"slogdet", "of a square matrix: needs at least 2-D"},
    {"logdet", "of a square matrix: needs at least 2-D"},
};

static const char *scalar_refusal_of(const char *op) {
    for (size_t i = 0; i < sizeof scalar_refusals / sizeof *scalar_refusals; i++)
        if (!strcmp(scalar_refusals[i].op, op)) return scalar_refusals[i].reason;
    return NULL;
}

/* The candidate values; point i is (V[i], V[i+1], V[i+2]) cyclically, so the
 * arguments differ (no ties) and each sign and side of 1 comes first once. */
static const double op_point_values[] = {0.3, 0.7, 1.3, -0.4, 2.2};
#define OP_POINTS (int)(sizeof op_point_values / sizeof *op_point_values)

static void op_point(int i, double pt[3]) {
    for (int k = 0; k < 3; k++) pt[k] = op_point_values[(i + k) % OP_POINTS];
}

/*
 * Records op on scalars at pt through the C API on a new tape: the value
 * and the derivative with respect to each argument (grad[k]). Returns the
 * tape's status; *msg (when non-NULL, room for 256) gets its message.
 */
static int op_by_api(const tg_op *op, const double pt[3], double *value, double grad[3],
                     char *msg) {
    tg_tape *t = tg_tape_new();
    tg_node *in[3] = {NULL, NULL, NULL};
    for (int k = 0; k < op->arity; k++) in[k] = tg_scalar(t, pt[k]);
    tg_node *f = tg_call_n(op->name, op->arity, in);
    int rc = tg_status(t);
    if (!rc) rc = tg_backward(f);
    if (msg) snprintf(msg, 256, "%s", rc ? tg_status_message(t) : "");
    if (!rc) {
        *value = tg_value_scalar(f);
        for (int k = 0; k < op->arity; k++) grad[k] = tg_grad_scalar(in[k]);
    }
    tg_tape_free(t);
    return rc;
}

/* The first candidate point where op's value and derivatives are finite:
 * its index, or -1. */
static int op_finite_point(const tg_op *op, double pt[3]) {
    for (int i = 0; i < OP_POINTS; i++) {
        double v, g[3];
        op_point(i, pt);
        if (op_by_api(op, pt, &v, g, NULL)) continue;
        int finite = isfinite(v);
        for (int k = 0; k < op->arity; k++) finite &= isfinite(g[k]) != 0;
        if (finite) return i;
    }
    return -1;
}

/* "NAME(x)", "NAME(x, y)" or "NAME(x, y, z)". */
static void op_call_text(const tg_op *op, char *buf, size_t len) {
    static const char *const args[] = {"x", "x, y", "x, y, z"};
    snprintf(buf, len, "%s(%s)", op->name, args[op->arity - 1]);
}

#endif
