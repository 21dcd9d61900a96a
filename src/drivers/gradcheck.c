/*
 * tg_gradcheck and tg_gradcheck_fn: analytic gradients against central
 * differences in float64.
 *
 * Both functions reduce to the same comparison (compare()): a flat vector x
 * of n input elements, a function evaluated at x into m outputs, R "rows"
 * (each output element, or R random projections of the output) and the
 * analytic derivatives A[r][j] of row r with respect to element j. For every
 * element j the function is evaluated at x +- h e_j, which gives for every
 * row the central difference and the two one-sided slopes. When the slopes
 * disagree beyond the tolerance, two more pairs of evaluations (at h/2 and
 * h/4) tell curvature, whose slope gap shrinks in proportion to the step,
 * from a kink, whose gap does not.
 */
#include "tape.h"
#include "alloc.h"
#include "gradcheck_internal.h"

#include <math.h>
#include <stdarg.h>
#include <string.h>

typedef struct checker checker;
struct checker {
    /* The function at x into out[m]; TG_OK or the error recorded in rep.
     * j is the moved element (-1: none) and step its signed displacement,
     * for messages. */
    int (*eval)(checker *c, const double *x, double *out, int64_t j, double step);
    /* Element j of the flat vector as (input, index). */
    void (*locate)(const checker *c, int64_t j, int *input, int64_t *index);
    int64_t n, m, rows;
    const unsigned char *skip; /* n flags: not checked (no_grad), or NULL */
    const double *W;           /* rows x m projection vectors, or NULL: unit rows */
    const double *A;           /* rows x n analytic derivatives */
    tg_gradcheck_opts o;
    tg_gradcheck_report *rep;
};

/* Records an error in the report (the first one wins); returns code. */
static int fail(tg_gradcheck_report *r, int code, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 3, 4)))
#endif
    ;
static int fail(tg_gradcheck_report *r, int code, const char *fmt, ...) {
    if (r->status) return r->status;
    r->status = code;
    r->passed = 0;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(r->message, sizeof r->message, fmt, ap);
    va_end(ap);
    return code;
}

/* Describes where an evaluation happened, for messages: "at the point" or
 * "with input 1 [4] moved by -1e-06". */
static const char *where(const checker *c, int64_t j, double step, char *buf, size_t len) {
    if (j < 0) return "at the point";
    int input;
    int64_t index;
    c->locate(c, j, &input, &index);
    snprintf(buf, len, "with input %d [%lld] moved by %+g", input, (long long)index, step);
    return buf;
}

static void init_report(tg_gradcheck_report *r) {
    memset(r, 0, sizeof *r);
    r->worst.input = -1;
    r->worst.row = -1;
    r->worst.index = -1;
    r->first_kink = r->worst;
}

tg_gradcheck_opts tg_gradcheck_defaults(void) {
    tg_gradcheck_opts o;
    memset(&o, 0, sizeof o);
    o.eps = 1e-6;
    o.atol = 1e-5;
    o.rtol = 1e-3;
    o.seed = UINT64_C(0x7461706567726164); /* "tapegrad" */
    o.max_jacobian = 16;
    o.projections = 4;
    return o;
}

static int check_opts(const tg_gradcheck_opts *o, tg_gradcheck_report *r) {
    if (!(o->eps > 0) || !isfinite(o->eps))
        return fail(r, TG_ERR_ARG, "eps is %g; it must be positive and finite", o->eps);
    if (!(o->atol >= 0) || !(o->rtol >= 0) || !isfinite(o->atol) || !isfinite(o->rtol))
        return fail(r, TG_ERR_ARG, "atol %g, rtol %g: tolerances must be finite and >= 0",
                    o->atol, o->rtol);
    if (o->max_jacobian < 0)
        return fail(r, TG_ERR_ARG, "max_jacobian is %lld; it must be >= 0",
                    (long long)o->max_jacobian);
    if (o->projections < 1)
        return fail(r, TG_ERR_ARG, "projections is %d; it must be >= 1", o->projections);
    if (o->max_entries < 0)
        return fail(r, TG_ERR_ARG, "max_entries is %lld; it must be >= 0",
                    (long long)o->max_entries);
    return TG_OK;
}

/* Row r of an output vector: the element itself, or its projection. */
static double row_of(const checker *c, const double *f, int64_t r) {
    if (!c->W) return f[r];
    const double *w = c->W + r * c->m;
    double s = 0;
    for (int64_t i = 0; i < c->m; i++) s += w[i] * f[i];
    return s;
}

/* The function at x +- h e_j: fills fp and fm and the steps actually taken
 * (x + h - x, which differs from h by rounding when |x| is large). */
static int eval_pair(checker *c, double *x, int64_t j, double h, double *fp, double *fm,
                     double *hp, double *hm) {
    double xj = x[j];
    x[j] = xj + h;
    *hp = x[j] - xj;
    int rc = c->eval(c, x, fp, j, h);
    x[j] = xj - h;
    *hm = xj - x[j];
    if (!rc) rc = c->eval(c, x, fm, j, -h);
    x[j] = xj;
    if (!rc && (*hp <= 0 || *hm <= 0)) {
        int input;
        int64_t index;
        c->locate(c, j, &input, &index);
        rc = fail(c->rep, TG_ERR_ARG,
                  "eps %g is below the float64 resolution at input %d [%lld] = %g", h, input,
                  (long long)index, xj);
    }
    return rc;
}

/* Whether one-sided slope gaps J (step h), J2 (h/2), J4 (h/4) look like a
 * kink: curvature makes the gap proportional to the step (J2 = J/2, J4 =
 * J/4); a kink within the step keeps it or drops it to zero. The bands
 * catch a kink anywhere within h of the point (docs/gradcheck.md). */
static bool is_kink(double J, double J2, double J4) {
    double a = fabs(J);
    return !(fabs(J2 - J / 2) <= 0.2 * a && fabs(J4 - J / 4) <= 0.1 * a);
}

static void keep_worst(tg_gradcheck_report *rep, const tg_gradcheck_elem *e, double score,
                       double *best) {
    if (score > *best) {
        *best = score;
        rep->worst = *e;
    }
}

/* Compares A with central differences of c->eval around x (restored on
 * return); f0 is the function at x. */
static int compare(checker *c, double *x, const double *f0) {
    tg_gradcheck_report *rep = c->rep;
    const tg_gradcheck_opts *o = &c->o;
    int64_t m = c->m, R = c->rows;
    double *buf = tg__malloc(sizeof(double) * (size_t)(6 * m + R));
    if (!buf) return fail(rep, TG_ERR_NOMEM, "out of memory for %lld outputs", (long long)m);
    double *fp = buf, *fm = buf + m, *fp2 = buf + 2 * m, *fm2 = buf + 3 * m;
    double *fp4 = buf + 4 * m, *fm4 = buf + 5 * m, *g0 = buf + 6 * m;
    for (int64_t r = 0; r < R; r++) g0[r] = row_of(c, f0, r);

    int64_t E = 0;
    for (int64_t j = 0; j < c->n; j++) E += !(c->skip && c->skip[j]);
    rep->elements = E;
    rep->rows = R;
    double best = -1;
    int rc = TG_OK;
    for (int64_t j = 0, k = 0; j < c->n && !rc; j++) {
        if (c->skip && c->skip[j]) continue;
        double h = o->eps, hp, hm, hp2 = 0, hm2 = 0, hp4 = 0, hm4 = 0;
        if ((rc = eval_pair(c, x, j, h, fp, fm, &hp, &hm))) break;
        bool small = false; /* the h/2 and h/4 pairs are evaluated */
        for (int64_t r = 0; r < R; r++) {
            double gp = row_of(c, fp, r), gm = row_of(c, fm, r);
            double num = (gp - gm) / (hp + hm);
            double dp = (gp - g0[r]) / hp, dm = (g0[r] - gm) / hm, J = dp - dm;
            double slope_tol = o->atol + o->rtol * fmax(fabs(dp), fabs(dm));
            bool kink = false;
            if (isfinite(J) && fabs(J) > slope_tol) {
                if (!small) {
                    if ((rc = eval_pair(c, x, j, h / 2, fp2, fm2, &hp2, &hm2)) ||
                        (rc = eval_pair(c, x, j, h / 4, fp4, fm4, &hp4, &hm4)))
                        break;
                    small = true;
                }
                double J2 = (row_of(c, fp2, r) - g0[r]) / hp2 - (g0[r] - row_of(c, fm2, r)) / hm2;
                double J4 = (row_of(c, fp4, r) - g0[r]) / hp4 - (g0[r] - row_of(c, fm4, r)) / hm4;
                kink = is_kink(J, J2, J4);
            }
            tg_gradcheck_elem e;
            memset(&e, 0, sizeof e); /* padding too: reports are copied out whole */
            c->locate(c, j, &e.input, &e.index);
            e.row = r;
            e.analytic = c->A[r * c->n + j];
            e.numeric = num;
            e.abs_err = fabs(e.analytic - num);
            e.rel_err = e.abs_err == 0 ? 0 : num == 0 ? INFINITY : e.abs_err / fabs(num);
            e.kink = kink;
            double score;
            if (kink) {
                /* Any value between the one-sided slopes is a valid
                 * one-sided derivative or subgradient. */
                double lo = fmin(dp, dm), hi = fmax(dp, dm);
                e.left = dm;
                e.right = dp;
                double out = fmax(fmax(lo - e.analytic, e.analytic - hi), 0);
                score = slope_tol > 0 ? out / slope_tol : out > 0 ? INFINITY : 0;
                if (!isfinite(e.analytic)) score = INFINITY;
            } else {
                double tol = o->atol + o->rtol * fabs(num);
                score = tol > 0 ? e.abs_err / tol : e.abs_err > 0 ? INFINITY : 0;
                if (!isfinite(num) || !isfinite(e.analytic)) score = INFINITY;
                double ae = isnan(e.abs_err) ? INFINITY : e.abs_err;
                double re = isnan(e.rel_err) ? INFINITY : e.rel_err;
                rep->max_abs_err = fmax(rep->max_abs_err, ae);
                rep->max_rel_err = fmax(rep->max_rel_err, re);
            }
            e.ok = score <= 1;
            if (kink && rep->kinks++ == 0) rep->first_kink = e;
            rep->failed += !e.ok;
            rep->checked++;
            keep_worst(rep, &e, score, &best);
            int64_t slot = r * E + k;
            if (o->entries && slot < o->max_entries) o->entries[slot] = e;
        }
        k++;
    }
    tg__free(buf);
    if (!rc) rep->passed = rep->failed == 0;
    if (!rc && !rep->passed) tg__gradcheck_summary(rep);
    return rc;
}

void tg__gradcheck_summary(tg_gradcheck_report *rep) {
    const tg_gradcheck_elem *w = &rep->worst;
    if (w->row == -1)
        snprintf(rep->message, sizeof rep->message,
                 "the gradient tg_grad records disagrees with the backward kernels' at %lld "
                 "of %lld elements; worst input %d [%lld]: recorded %.17g, kernels %.17g",
                 (long long)rep->grad_mismatches, (long long)rep->elements, w->input,
                 (long long)w->index, w->analytic, w->numeric);
    else
        snprintf(rep->message, sizeof rep->message,
                 "%lld of %lld entries disagree; worst input %d [%lld], row %lld: analytic "
                 "%.17g, numeric %.17g", (long long)rep->failed, (long long)rep->checked,
                 w->input, (long long)w->index, (long long)w->row, w->analytic, w->numeric);
}

/* Standard normal deviates from a seeded splitmix64 stream (Box-Muller). */
static uint64_t splitmix64(uint64_t *s) {
    uint64_t z = (*s += UINT64_C(0x9e3779b97f4a7c15));
    z = (z ^ (z >> 30)) * UINT64_C(0xbf58476d1ce4e5b9);
    z = (z ^ (z >> 27)) * UINT64_C(0x94d049bb133111eb);
    return z ^ (z >> 31);
}

static void fill_normal(double *v, int64_t n, uint64_t seed) {
    uint64_t s = seed;
    for (int64_t i = 0; i < n; i += 2) {
        double u1 = ((double)(splitmix64(&s) >> 11) + 1) * 0x1p-53; /* (0, 1] */
        double u2 = (double)(splitmix64(&s) >> 11) * 0x1p-53;
        double rad = sqrt(-2 * log(u1)), ang = 6.283185307179586 * u2;
        v[i] = rad * cos(ang);
        if (i + 1 < n) v[i + 1] = rad * sin(ang);
    }
}

/* The weight a unit row is swept with: -1, 1/2 or -1/2, drawn from the
 * seed. Never 1, so that a backward rule that drops its upstream gradient
 * (uses ones in its place) fails even where the upstream is all ones, as
 * through sum(op(x)); a power of two, so that dividing the derivatives back
 * by it gives exactly the bits of a sweep seeded with 1. */
static double unit_weight(uint64_t *s) {
    static const double w[3] = {-1, 0.5, -0.5};
    return w[splitmix64(s) % 3];
}

/* Checks that the output at the point is finite. */
static int check_finite_output(tg_gradcheck_report *rep, const double *f0, int64_t m) {
    for (int64_t i = 0; i < m; i++)
        if (!isfinite(f0[i]))
            return fail(rep, TG_ERR_NUMERIC,
                        "the output is not finite at the point: element %lld is %g",
                        (long long)i, f0[i]);
    return TG_OK;
}

/* ------------------------------------------------------ tape functions -- */

typedef struct tape_checker {
    checker c;
    tg_gradcheck_build build;
    void *ctx;
    int nin;
    const tg_gradcheck_input *in;
    int64_t *off;     /* nin + 1 offsets of the inputs in the flat vector */
    tg_node **leaves; /* nin leaves of the latest build */
    tg_tape *tape;    /* the tape evaluations build on */
} tape_checker;

static void tape_locate(const checker *c, int64_t j, int *input, int64_t *index) {
    const tape_checker *tc = (const tape_checker *)c;
    int i = 0;
    while (i + 1 < tc->nin && j >= tc->off[i + 1]) i++;
    *input = i;
    *index = j - tc->off[i];
}

/* Builds the function on t (reset first) from x; NULL after recording why. */
static tg_node *build_at(tape_checker *tc, tg_tape *t, const double *x, int64_t j, double step) {
    char buf[96];
    tg_tape_reset(t);
    tc->c.rep->evaluations++;
    for (int i = 0; i < tc->nin; i++) {
        const tg_gradcheck_input *in = &tc->in[i];
        tc->leaves[i] = in->no_grad ? tg_input(t, TG_F64, in->ndim, in->shape, x + tc->off[i])
                                    : tg_tensor(t, TG_F64, in->ndim, in->shape, x + tc->off[i]);
    }
    if (tg_status(t)) {
        fail(tc->c.rep, tg_status(t), "input leaves: %s", tg_status_message(t));
        return NULL;
    }
    tg_node *out = tc->build(t, tc->leaves, tc->nin, tc->ctx);
    if (tg_status(t)) {
        fail(tc->c.rep, tg_status(t), "build failed %s: %s",
             where(&tc->c, j, step, buf, sizeof buf), tg_status_message(t));
        return NULL;
    }
    if (!out) {
        fail(tc->c.rep, TG_ERR_NULL, "build returned NULL %s",
             where(&tc->c, j, step, buf, sizeof buf));
        return NULL;
    }
    if (tg_node_tape(out) != t) {
        fail(tc->c.rep, TG_ERR_TAPE, "build returned a node of another tape %s",
             where(&tc->c, j, step, buf, sizeof buf));
        return NULL;
    }
    return out;
}

static int tape_eval(checker *c, const double *x, double *out, int64_t j, double step) {
    tape_checker *tc = (tape_checker *)c;
    tg_node *y = build_at(tc, tc->tape, x, j, step);
    if (!y) return c->rep->status;
    if (tg_numel(y) != c->m) {
        char buf[96];
        return fail(c->rep, TG_ERR_SHAPE,
                    "build's output has %lld elements %s but %lld at the point",
                    (long long)tg_numel(y), where(c, j, step, buf, sizeof buf),
                    (long long)c->m);
    }
    for (int64_t i = 0; i < c->m; i++) out[i] = tg_value_at(y, i);
    return TG_OK;
}

static int check_inputs(int nin, const tg_gradcheck_input *in, tg_gradcheck_report *r,
                        int64_t *total) {
    *total = 0;
    for (int i = 0; i < nin; i++) {
        if (in[i].dtype != TG_F32 && in[i].dtype != TG_F64)
            return fail(r, TG_ERR_DTYPE, "input %d: unknown dtype %d", i, (int)in[i].dtype);
        if (in[i].ndim < 0 || in[i].ndim > TG_MAX_DIMS)
            return fail(r, TG_ERR_SHAPE, "input %d: %d dimensions; at most %d are supported", i,
                        in[i].ndim, TG_MAX_DIMS);
        int64_t k = 1;
        for (int d = 0; d < in[i].ndim; d++) {
            if (in[i].shape[d] < 1 || in[i].shape[d] > TG_MAX_NUMEL / k)
                return fail(r, TG_ERR_SHAPE, "input %d: dimension %d is %lld", i, d,
                            (long long)in[i].shape[d]);
            k *= in[i].shape[d];
        }
        if (!in[i].data) return fail(r, TG_ERR_NULL, "input %d: data is NULL", i);
        if (k > TG_MAX_NUMEL - *total)
            return fail(r, TG_ERR_SHAPE, "inputs: more than %lld elements in all",
                        (long long)TG_MAX_NUMEL);
        *total += k;
    }
    return TG_OK;
}

int tg_gradcheck(tg_gradcheck_build build, int ninputs, const tg_gradcheck_input *inputs,
                 void *ctx, const tg_gradcheck_opts *opts, tg_gradcheck_report *report) {
    if (!report) return TG_ERR_NULL;
    init_report(report);
    tg_gradcheck_opts o = opts ? *opts : tg_gradcheck_defaults();
    if (!build) return fail(report, TG_ERR_NULL, "build is NULL");
    if (ninputs < 0) return fail(report, TG_ERR_ARG, "ninputs is %d", ninputs);
    if (ninputs > 0 && !inputs) return fail(report, TG_ERR_NULL, "inputs is NULL");
    int64_t n;
    if (check_opts(&o, report) || check_inputs(ninputs, inputs, report, &n)) return report->status;

    tape_checker tc;
    memset(&tc, 0, sizeof tc);
    tc.c.eval = tape_eval;
    tc.c.locate = tape_locate;
    tc.c.n = n;
    tc.c.o = o;
    tc.c.rep = report;
    tc.build = build;
    tc.ctx = ctx;
    tc.nin = ninputs;
    tc.in = inputs;

    double *x = tg__malloc(sizeof(double) * (size_t)(n ? n : 1));
    double *f0 = NULL, *W = NULL, *A = NULL, *seed = NULL;
    float *seed32 = NULL;
    unsigned char *skip = tg__calloc((size_t)(n ? n : 1), 1);
    tc.off = tg__malloc(sizeof(int64_t) * (size_t)(ninputs + 1));
    tc.leaves = tg__calloc((size_t)(ninputs ? ninputs : 1), sizeof(tg_node *));
    tg_node **base_leaves = tg__calloc((size_t)(ninputs ? ninputs : 1), sizeof(tg_node *));
    tg_tape *base = tg_tape_new();
    tc.tape = tg_tape_new();
    if (!x || !skip || !tc.off || !tc.leaves || !base_leaves || !base || !tc.tape) {
        fail(report, TG_ERR_NOMEM, "out of memory for %lld input elements", (long long)n);
        goto done;
    }
    tc.c.skip = skip;

    /* The flat point, promoted to float64. */
    int64_t at = 0;
    for (int i = 0; i < ninputs; i++) {
        tc.off[i] = at;
        int64_t k = 1;
        for (int d = 0; d < inputs[i].ndim; d++) k *= inputs[i].shape[d];
        for (int64_t e = 0; e < k; e++) {
            x[at + e] = inputs[i].dtype == TG_F64 ? ((const double *)inputs[i].data)[e]
                                                  : ((const float *)inputs[i].data)[e];
            skip[at + e] = inputs[i].no_grad != 0;
        }
        at += k;
    }
    tc.off[ninputs] = at;

    /* The analytic side: one build, one sweep per row. */
    tg_node *out = build_at(&tc, base, x, -1, 0);
    if (!out) goto done;
    memcpy(base_leaves, tc.leaves, sizeof(tg_node *) * (size_t)ninputs);
    int64_t m = tg_numel(out);
    report->outputs = m;
    report->value = tg_value_at(out, 0);
    f0 = tg__malloc(sizeof(double) * (size_t)m);
    if (!f0) {
        fail(report, TG_ERR_NOMEM, "out of memory for %lld outputs", (long long)m);
        goto done;
    }
    for (int64_t i = 0; i < m; i++) f0[i] = tg_value_at(out, i);
    if (check_finite_output(report, f0, m)) goto done;
    tc.c.m = m;
    report->projected = m > o.max_jacobian;
    tc.c.rows = report->projected ? o.projections : m;
    int64_t R = tc.c.rows;
    A = tg__calloc((size_t)(R * (n ? n : 1)), sizeof(double));
    seed = tg__malloc(sizeof(double) * (size_t)m);
    seed32 = tg__malloc(sizeof(float) * (size_t)m);
    if (report->projected) W = tg__malloc(sizeof(double) * (size_t)(R * m));
    if (!A || !seed || !seed32 || (report->projected && !W)) {
        fail(report, TG_ERR_NOMEM, "out of memory for %lld x %lld derivatives", (long long)R,
             (long long)n);
        goto done;
    }
    if (W) fill_normal(W, R * m, o.seed);
    tc.c.W = W;
    tc.c.A = A;
    bool f32_out = tg_node_dtype(out) == TG_F32;
    uint64_t ws = o.seed;
    for (int64_t r = 0; r < R; r++) {
        double wr = W ? 1 : unit_weight(&ws);
        for (int64_t i = 0; i < m; i++) seed[i] = W ? W[r * m + i] : i == r ? wr : 0;
        for (int64_t i = 0; i < m; i++) seed32[i] = (float)seed[i];
        tg_zero_grad(base);
        if (tg_backward_seeded(out, f32_out ? (const void *)seed32 : (const void *)seed)) {
            fail(report, tg_status(base), "backward failed: %s", tg_status_message(base));
            goto done;
        }
        for (int i = 0; i < ninputs; i++) {
            if (inputs[i].no_grad) continue;
            for (int64_t e = 0; e < tc.off[i + 1] - tc.off[i]; e++)
                A[r * n + tc.off[i] + e] = tg_grad_at(base_leaves[i], e) / wr;
        }
    }

    compare(&tc.c, x, f0);

done:
    tg_tape_free(base);
    tg_tape_free(tc.tape);
    tg__free(base_leaves);
    tg__free(tc.leaves);
    tg__free(tc.off);
    tg__free(skip);
    tg__free(x);
    tg__free(f0);
    tg__free(W);
    tg__free(A);
    tg__free(seed);
    tg__free(seed32);
    return report->status;
}

/* ---------------------------------------------------- plain C functions -- */

typedef struct fn_checker {
    checker c;
    tg_gradcheck_f f;
    void *ctx;
} fn_checker;

static void fn_locate(const checker *c, int64_t j, int *input, int64_t *index) {
    (void)c;
    *input = 0;
    *index = j;
}

static int fn_eval(checker *c, const double *x, double *out, int64_t j, double step) {
    (void)j, (void)step;
    fn_checker *fc = (fn_checker *)c;
    c->rep->evaluations++;
    out[0] = fc->f(x, c->n, fc->ctx);
    return TG_OK;
}

int tg_gradcheck_fn(tg_gradcheck_f f, tg_gradcheck_df grad, int64_t n, const double *x,
                    void *ctx, const tg_gradcheck_opts *opts, tg_gradcheck_report *report) {
    if (!report) return TG_ERR_NULL;
    init_report(report);
    tg_gradcheck_opts o = opts ? *opts : tg_gradcheck_defaults();
    if (!f || !grad) return fail(report, TG_ERR_NULL, "%s is NULL", f ? "grad" : "f");
    if (n < 0) return fail(report, TG_ERR_ARG, "n is %lld", (long long)n);
    if (n > 0 && !x) return fail(report, TG_ERR_NULL, "x is NULL");
    if (n > TG_MAX_NUMEL) return fail(report, TG_ERR_ARG, "n is %lld", (long long)n);
    if (check_opts(&o, report)) return report->status;

    fn_checker fc;
    memset(&fc, 0, sizeof fc);
    fc.c.eval = fn_eval;
    fc.c.locate = fn_locate;
    fc.c.n = n;
    fc.c.m = 1;
    fc.c.rows = 1;
    fc.c.o = o;
    fc.c.rep = report;
    fc.f = f;
    fc.ctx = ctx;
    report->outputs = 1;

    size_t len = (size_t)(n ? n : 1);
    double *xs = tg__malloc(sizeof(double) * len), *A = tg__calloc(len, sizeof(double));
    if (!xs || !A) {
        fail(report, TG_ERR_NOMEM, "out of memory for %lld elements", (long long)n);
    } else {
        if (n) memcpy(xs, x, sizeof(double) * (size_t)n);
        double f0;
        fn_eval(&fc.c, xs, &f0, -1, 0);
        report->value = f0;
        if (!check_finite_output(report, &f0, 1)) {
            grad(xs, n, A, ctx);
            fc.c.A = A;
            compare(&fc.c, xs, &f0);
        }
    }
    tg__free(xs);
    tg__free(A);
    return report->status;
}
