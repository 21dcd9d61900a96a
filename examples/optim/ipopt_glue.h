/*
 * Glue between a function recorded with tapegrad and Ipopt's C interface
 * (coinor-libipopt-dev, IpStdCInterface.h): the objective f and the
 * constraints c, recorded as functions of one leaf x, give Ipopt every
 * callback it takes. The constraint Jacobian and the Hessian of the
 * Lagrangian are tapegrad's sparse drivers: their patterns are found once,
 * and each callback writes Ipopt's x into a leaf and replays a tape,
 * recording nothing. docs/optimization.md walks through it.
 */
#ifndef TG_IPOPT_GLUE_H
#define TG_IPOPT_GLUE_H

#include <IpStdCInterface.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include <tapegrad.h>
#include <tapegrad/sparse.h>

_Static_assert(sizeof(Index) == sizeof(int32_t), "Ipopt's Index is a 32-bit int");

/* A problem: record(t, x, &c, data) records the objective (returned, one
 * element) and the constraints (*c, any shape) as functions of the leaf x
 * on the tape t. It is called three times, for three tapes: one gives f,
 * its gradient and c, one the constraint Jacobian, one the Hessian of the
 * Lagrangian, so that each callback replays only what it needs. */
typedef tg_node *(*tg_nlp_record)(tg_tape *t, tg_node *x, tg_node **c, void *data);

enum { NLP_VALUES, NLP_JAC, NLP_HESS };
typedef struct tg_nlp {
    tg_tape *t[3];
    tg_node *x[3], *f, *c; /* f and c of the values' tape */
    int n, m;
    tg_sparse *jac, *hess;
    tg_sparse_info jac_info, hess_info;
    long calls[5]; /* evaluations of f, its gradient, c, the Jacobian, the Hessian */
    bool current;  /* the values' tape holds Ipopt's latest x */
} tg_nlp;

static void nlp_free(tg_nlp *p) {
    tg_sparse_free(p->jac);
    tg_sparse_free(p->hess);
    for (int i = 0; i < 3; i++) tg_tape_free(p->t[i]);
}

/* Records the problem at x0 (n values) and makes the sparse objects; 0, or
 * -1 after printing why (p is then freed). */
static int nlp_init(tg_nlp *p, int n, const double *x0, tg_nlp_record record, void *data) {
    *p = (tg_nlp){.n = n};
    tg_node *f[3] = {NULL, NULL, NULL}, *c[3] = {NULL, NULL, NULL};
    int rc = 0;
    for (int i = 0; i < 3 && !rc; i++) {
        p->t[i] = tg_tape_new();
        if (!p->t[i]) {
            fprintf(stderr, "nlp: out of memory\n");
            rc = -1;
            break;
        }
        p->x[i] = tg_tensor(p->t[i], TG_F64, 1, (int64_t[]){n}, x0);
        f[i] = record(p->t[i], p->x[i], &c[i], data);
        if (tg_status(p->t[i])) rc = -1;
    }
    if (!rc) {
        p->f = f[NLP_VALUES];
        p->c = c[NLP_VALUES];
        p->m = (int)tg_numel(p->c);
        if (tg_sparse_jacobian_new(c[NLP_JAC], 1, &p->x[NLP_JAC], &p->jac) ||
            tg_sparse_lagrangian_new(f[NLP_HESS], c[NLP_HESS], 1, &p->x[NLP_HESS], &p->hess))
            rc = -1;
    }
    if (rc) {
        for (int i = 0; i < 3; i++)
            if (p->t[i] && tg_status(p->t[i])) fprintf(stderr, "nlp: %s\n", tg_status_message(p->t[i]));
        nlp_free(p);
        return -1;
    }
    tg_sparse_info_get(p->jac, &p->jac_info);
    tg_sparse_info_get(p->hess, &p->hess_info);
    return 0;
}

/* Ipopt's x into tape i's leaf. new_x says whether x differs from the
 * last call of any callback: the values' tape is replayed once per x (f,
 * its gradient and c read it); the sparse evaluations replay their own. */
static Bool nlp_at(tg_nlp *p, int i, const Number *x, Bool new_x) {
    if (new_x) p->current = false;
    if (i == NLP_VALUES && p->current) return TRUE;
    memcpy(tg_value(p->x[i]), x, sizeof(double) * (size_t)p->n);
    if (i != NLP_VALUES) return TRUE;
    p->current = tg_forward(p->t[i]) == TG_OK;
    return p->current;
}

static Bool nlp_f(Index n, Number *x, Bool new_x, Number *obj, UserDataPtr data) {
    (void)n;
    tg_nlp *p = data;
    p->calls[0]++;
    if (!nlp_at(p, NLP_VALUES, x, new_x)) return FALSE;
    *obj = tg_value_scalar(p->f);
    return TRUE;
}

static Bool nlp_grad_f(Index n, Number *x, Bool new_x, Number *grad, UserDataPtr data) {
    tg_nlp *p = data;
    p->calls[1]++;
    if (!nlp_at(p, NLP_VALUES, x, new_x)) return FALSE;
    tg_zero_grad(p->t[NLP_VALUES]);
    if (tg_backward(p->f)) return FALSE;
    memcpy(grad, tg_grad(p->x[NLP_VALUES]), sizeof(double) * (size_t)n);
    return TRUE;
}

static Bool nlp_g(Index n, Number *x, Bool new_x, Index m, Number *g, UserDataPtr data) {
    (void)n;
    tg_nlp *p = data;
    p->calls[2]++;
    if (!nlp_at(p, NLP_VALUES, x, new_x)) return FALSE;
    memcpy(g, tg_value(p->c), sizeof(double) * (size_t)m);
    return TRUE;
}

/* With values NULL Ipopt asks for the pattern, else for the values at x. */
static Bool nlp_jac_g(Index n, Number *x, Bool new_x, Index m, Index nele, Index *row, Index *col,
                      Number *values, UserDataPtr data) {
    (void)n, (void)m, (void)nele;
    tg_nlp *p = data;
    if (!values) return tg_sparse_triplets(p->jac, row, col) == TG_OK;
    p->calls[3]++;
    if (!nlp_at(p, NLP_JAC, x, new_x)) return FALSE;
    return tg_sparse_eval(p->jac, values) == TG_OK;
}

static Bool nlp_h(Index n, Number *x, Bool new_x, Number sigma, Index m, Number *lambda,
                  Bool new_lambda, Index nele, Index *row, Index *col, Number *values,
                  UserDataPtr data) {
    (void)n, (void)m, (void)new_lambda, (void)nele;
    tg_nlp *p = data;
    if (!values) return tg_sparse_triplets(p->hess, row, col) == TG_OK;
    p->calls[4]++;
    if (!nlp_at(p, NLP_HESS, x, new_x)) return FALSE;
    return tg_sparse_eval_lagrangian(p->hess, sigma, lambda, values) == TG_OK;
}

/* An Ipopt problem of p with the given bounds (copied by Ipopt). */
static IpoptProblem nlp_ipopt(tg_nlp *p, Number *x_lo, Number *x_hi, Number *g_lo, Number *g_hi) {
    return CreateIpoptProblem(p->n, x_lo, x_hi, p->m, g_lo, g_hi, (Index)p->jac_info.nnz,
                              (Index)p->hess_info.nnz, 0, nlp_f, nlp_g, nlp_grad_f, nlp_jac_g,
                              nlp_h);
}

#endif
