/*
 * x^3 as a user op, with the rules of its second derivatives right, wrong
 * and missing, shared by test_higher.c (tg_gradgradcheck) and
 * test_cli_user_ops.c (hess and check --order 2): the forward kernel x^3,
 * the backward kernel 3x^2 g, and three vjp rules to register it with
 * (or NULL for none).
 */
#ifndef TG_TEST_CUBE_OPS_H
#define TG_TEST_CUBE_OPS_H

#include <stdint.h>

#include <tapegrad.h>

static void cube_forward(tg_args *a) {
    const double *x = a->in[0].value;
    double *y = a->out.value;
    for (int64_t i = 0; i < (int64_t)a->out.numel; i++) y[i] = x[i] * x[i] * x[i];
}
static void cube_backward(tg_args *a) {
    const double *x = a->in[0].value, *g = a->out.grad;
    double *gx = a->in[0].grad;
    if (gx)
        for (int64_t i = 0; i < (int64_t)a->out.numel; i++) gx[i] += 3 * x[i] * x[i] * g[i];
}
/* 3 x^2 g, right. */
static void cube_vjp(tg_node *y, tg_node *g, tg_node **gin) {
    tg_node *x = tg_node_input(y, 0);
    gin[0] = tg_mul(g, tg_scale(tg_mul(x, x), 3));
}
/* 3 x x0 g with x0 a constant copy of x: the right value, the wrong
 * derivative (3x instead of 6x). */
static void cube_vjp_wrong(tg_node *y, tg_node *g, tg_node **gin) {
    tg_node *x = tg_node_input(y, 0);
    tg_node *x0 = tg_const(tg_node_tape(x), tg_value_scalar(x));
    gin[0] = tg_mul(g, tg_scale(tg_mul(x, x0), 3));
}
/* 6 x^2 g: twice the kernel's value, with a derivative consistent with
 * itself, so only the comparison with the backward kernel catches it. */
static void cube_vjp_twice(tg_node *y, tg_node *g, tg_node **gin) {
    tg_node *x = tg_node_input(y, 0);
    gin[0] = tg_mul(g, tg_scale(tg_mul(x, x), 6));
}

#endif
