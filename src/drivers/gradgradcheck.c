/*
 * tg_gradgradcheck: second derivatives through tg_grad(), checked by
 * tg_gradcheck() itself. The function checked is the gradient: it builds the
 * caller's function f, records g = tg_grad(f, inputs) and returns g (one
 * input) or the projection sum_k sum(g_k * w_k) with fixed random constants
 * w_k (several inputs, since the gradients of several inputs are several
 * nodes). tg_gradcheck() then compares the tape's derivatives of that output,
 * i.e. the Hessian (or H w) swept backward through the recorded gradient,
 * with central differences of the gradient computed at moved points. Then the
 * recorded gradient's values are compared with the backward kernels'.
 */
#include "tape.h"
#include "gradcheck_internal.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

typedef struct gg_ctx {
    tg_gradcheck_build build;
    void *ctx;
    uint64_t seed; /* of the projection weights */
} gg_ctx;

/* A deterministic weight in [-1, 1) for element i of input k (splitmix64). */
static double weight(uint64_t seed, int k, size_t i) {
    uint64_t z = seed + 0x9e3779b97f4a7c15ULL * ((uint64_t)k * 1000003u + i + 1);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    z ^= z >> 31;
    return (double)(z >> 11) * 0x1.0p-52 - 1;
}

static tg_node *gradient_of(tg_tape *t, tg_node *const *in, int n, void *vctx) {
    const gg_ctx *c = vctx;
    tg_node *f = c->build(t, in, n, c->ctx);
    if (!f || tg_status(t)) return f;
    if (tg_numel(f) != 1) {
        tg_fail(t, TG_ERR_SHAPE, "gradgradcheck: the function's output has %lld elements; "
                "second derivatives are checked for one-element outputs", (long long)tg_numel(f));
        return NULL;
    }
    tg_node *wrt[64], *g[64];
    int m = 0;
    for (int k = 0; k < n; k++)
        if (tg_requires_grad(in[k])) {
            if (m == 64) {
                tg_fail(t, TG_ERR_ARG, "gradgradcheck: more than 64 inputs want gradients");
                return NULL;
            }
            wrt[m++] = in[k];
        }
    if (m == 0) return tg_mul(f, tg_const(t, 0)); /* nothing to check */
    if (tg_grad_nodes(f, m, wrt, g)) return NULL;
    if (m == 1) return g[0];
    tg_node *s = NULL;
    for (int k = 0; k < m; k++) {
        int64_t shape[TG_MAX_DIMS];
        int nd = tg_shape(g[k], shape);
        tg_node *w = tg_input(t, TG_F64, nd, shape, NULL);
        double *wv = tg_value(w);
        for (int64_t i = 0; i < tg_numel(w); i++) wv[i] = weight(c->seed, k, (size_t)i);
        tg_node *p = tg_sum(tg_mul(g[k], w));
        s = s ? tg_add(s, p) : p;
    }
    return s;
}

/* Leaves holding the inputs' values in float64, as tg_gradcheck makes them. */
static int make_leaves(tg_tape *t, int n, const tg_gradcheck_input *in, tg_node **leaves) {
    for (int k = 0; k < n && !tg_status(t); k++) {
        if (!in[k].data) return tg_fail(t, TG_ERR_NULL, "input %d: data is NULL", k);
        leaves[k] = in[k].no_grad ? tg_input(t, TG_F64, in[k].ndim, in[k].shape, NULL)
                                  : tg_tensor(t, TG_F64, in[k].ndim, in[k].shape, NULL);
        if (tg_status(t)) break;
        double *v = tg_value(leaves[k]);
        for (int64_t i = 0; i < tg_numel(leaves[k]); i++)
            v[i] = in[k].dtype == TG_F32 ? ((const float *)in[k].data)[i]
                                         : ((const double *)in[k].data)[i];
    }
    return tg_status(t);
}

/* The values tg_grad records must be the gradient the backward kernels give
 * (which tg_gradcheck checks against finite differences): the second-order
 * check alone cannot see a rule that is wrong by a constant factor, since it
 * differentiates the recorded gradient, right or wrong. Returns TG_OK with
 * rep->passed cleared and rep->worst naming the element on a mismatch, or the
 * error that stopped the comparison. */
static int first_order_agrees(const gg_ctx *c, int n, const tg_gradcheck_input *in,
                              const tg_gradcheck_opts *o, tg_gradcheck_report *rep) {
    if (n > 64) return TG_OK; /* gradient_of reports it */
    tg_tape *t = tg_tape_new();
    if (!t) return TG_ERR_NOMEM;
    tg_node *leaves[64], *f = NULL, *wrt[64], *g[64];
    int m = 0;
    if (!make_leaves(t, n, in, leaves) && (f = c->build(t, leaves, n, c->ctx)) && !tg_status(t) &&
        tg_numel(f) == 1) {
        for (int k = 0; k < n; k++)
            if (!in[k].no_grad) wrt[m++] = leaves[k];
        if (m && !tg_grad_nodes(f, m, wrt, g)) tg_backward(f);
    }
    double worst = 0;
    for (int k = 0, j = 0; k < n && !tg_status(t) && m; k++) {
        if (in[k].no_grad) continue;
        for (int64_t i = 0; i < tg_numel(leaves[k]); i++) {
            double rec = tg_value_at(g[j], i), ker = tg_grad_at(leaves[k], i);
            double score = fabs(rec - ker) / (o->atol + o->rtol * fabs(ker));
            rep->checked++;
            if (score <= 1) continue;
            rep->failed++;
            rep->grad_mismatches++;
            if (!(score <= worst)) {
                worst = isnan(score) ? INFINITY : score;
                double ae = fabs(rec - ker);
                rep->worst = (tg_gradcheck_elem){
                    .input = k, .index = i, .row = -1, .analytic = rec, .numeric = ker,
                    .abs_err = ae, .rel_err = ae == 0 ? 0 : ker == 0 ? INFINITY : ae / fabs(ker)};
            }
        }
        j++;
    }
    tg_tape_free(t);
    if (rep->grad_mismatches) {
        rep->passed = 0;
        tg__gradcheck_summary(rep);
    }
    return TG_OK; /* build errors are reported by the main check */
}

int tg_gradgradcheck(tg_gradcheck_build build, int ninputs, const tg_gradcheck_input *inputs,
                     void *ctx, const tg_gradcheck_opts *opts, tg_gradcheck_report *report) {
    if (!report) return TG_ERR_NULL;
    if (!build) {
        memset(report, 0, sizeof *report);
        report->worst.input = report->first_kink.input = -1;
        snprintf(report->message, sizeof report->message, "gradgradcheck: build is NULL");
        return report->status = TG_ERR_NULL;
    }
    gg_ctx c = {build, ctx, opts ? opts->seed : 0x5eedULL};
    int rc = tg_gradcheck(gradient_of, ninputs, inputs, &c, opts, report);
    if (rc || !report->passed) return rc;
    tg_gradcheck_opts o = opts ? *opts : tg_gradcheck_defaults();
    return first_order_agrees(&c, ninputs, inputs, &o, report);
}
