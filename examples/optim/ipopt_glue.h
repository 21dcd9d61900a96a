/*
 * Glue between a function recorded with tapegrad and Ipopt's C interface
 * (coinor-libipopt-dev, IpStdCInterface.h): the objective f and the
 * constraints c, recorded once on one tape as functions of one leaf x,
 * give Ipopt every callback it takes. The constraint Jacobian and the
 * Hessian of the Lagrangian are tapegrad's sparse drivers: their patterns
 * are found once, and each callback writes Ipopt's x into the leaf and
 * replays the tape, recording nothing. docs/optimization.md walks through
 * it.
 */
#ifndef TG_IPOPT_GLUE_H
#define TG_IPOPT_GLUE_H

#include <IpStdCInterface.h>
#include <stdio.h>
#include <string.h>

#include <tapegrad.h>
#include <tapegrad/sparse.h>

_Static_assert(sizeof(Index) == sizeof(int32_t), "Ipopt's Index is a 32-bit int");

typedef struct tg_nlp {
    tg_tape *t;
    tg_node *x, *f, *c; /* the leaf (n elements), the objective, the constraints (m) */
    int n, m;
    tg_sparse *jac, *hess;
    tg_sparse_info jac_info, hess_info;
} tg_nlp;

/* The sparse objects of a recorded problem; 0, or -1 after printing why. */
static int nlp_prepare(tg_nlp *p) {
    p->n = (int)tg_numel(p->x);
    p->m = (int)tg_numel(p->c);
    if (tg_sparse_jacobian_new(p->c, 1, &p->x, &p->jac) ||
        tg_sparse_lagrangian_new(p->f, p->c, 1, &p->x, &p->hess)) {
        fprintf(stderr, "nlp: %s\n", tg_status_message(p->t));
        return -1;
    }
    tg_sparse_info_get(p->jac, &p->jac_info);
    tg_sparse_info_get(p->hess, &p->hess_info);
    return 0;
}

static void nlp_free(tg_nlp *p) {
    tg_sparse_free(p->jac);
    tg_sparse_free(p->hess);
    tg_tape_free(p->t);
}

/* Ipopt's x into the leaf; a new x is replayed once for f, its gradient and c. */
static Bool nlp_at(tg_nlp *p, const Number *x, Bool new_x) {
    if (!new_x) return TRUE;
    memcpy(tg_value(p->x), x, sizeof(double) * (size_t)p->n);
    return tg_forward(p->t) == TG_OK;
}

static Bool nlp_f(Index n, Number *x, Bool new_x, Number *obj, UserDataPtr data) {
    (void)n;
    tg_nlp *p = data;
    if (!nlp_at(p, x, new_x)) return FALSE;
    *obj = tg_value_scalar(p->f);
    return TRUE;
}

static Bool nlp_grad_f(Index n, Number *x, Bool new_x, Number *grad, UserDataPtr data) {
    tg_nlp *p = data;
    if (!nlp_at(p, x, new_x)) return FALSE;
    tg_zero_grad(p->t);
    if (tg_backward(p->f)) return FALSE;
    memcpy(grad, tg_grad(p->x), sizeof(double) * (size_t)n);
    return TRUE;
}

static Bool nlp_g(Index n, Number *x, Bool new_x, Index m, Number *g, UserDataPtr data) {
    (void)n;
    tg_nlp *p = data;
    if (!nlp_at(p, x, new_x)) return FALSE;
    memcpy(g, tg_value(p->c), sizeof(double) * (size_t)m);
    return TRUE;
}

/* With values NULL Ipopt asks for the pattern, else for the values at x. */
static Bool nlp_jac_g(Index n, Number *x, Bool new_x, Index m, Index nele, Index *row, Index *col,
                      Number *values, UserDataPtr data) {
    (void)n, (void)m, (void)nele;
    tg_nlp *p = data;
    if (!values) return tg_sparse_triplets(p->jac, row, col) == TG_OK;
    if (!nlp_at(p, x, new_x)) return FALSE;
    return tg_sparse_eval(p->jac, values) == TG_OK;
}

static Bool nlp_h(Index n, Number *x, Bool new_x, Number sigma, Index m, Number *lambda,
                  Bool new_lambda, Index nele, Index *row, Index *col, Number *values,
                  UserDataPtr data) {
    (void)n, (void)m, (void)new_lambda, (void)nele;
    tg_nlp *p = data;
    if (!values) return tg_sparse_triplets(p->hess, row, col) == TG_OK;
    if (!nlp_at(p, x, new_x)) return FALSE;
    return tg_sparse_eval_lagrangian(p->hess, sigma, lambda, values) == TG_OK;
}

/* An Ipopt problem of p with the given bounds (copied by Ipopt). */
static IpoptProblem nlp_ipopt(tg_nlp *p, Number *x_lo, Number *x_hi, Number *g_lo, Number *g_hi) {
    return CreateIpoptProblem(p->n, x_lo, x_hi, p->m, g_lo, g_hi, (Index)p->jac_info.nnz,
                              (Index)p->hess_info.nnz, 0, nlp_f, nlp_g, nlp_grad_f, nlp_jac_g,
                              nlp_h);
}

#endif
