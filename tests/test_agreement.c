/*
 * One derivative, three ways, bit for bit: for every registered op, in both
 * dtypes, on both kinds of tape (tg_set_scalar_tape 1: compact float64
 * scalars; 0: 64-byte nodes), the derivative is computed
 *   (a) by tg_backward (seed 1; a one-hot seed per output element for the
 *       ops that are not elementwise),
 *   (b) by the recorded gradient tg_grad_nodes, evaluated,
 *   (c) by forward mode, tg_jvp with tangent 1 (one-hot per input element),
 * and the three must be the same bits. NaN equals NaN of any payload or
 * sign. +0 and -0 differ (a zero's sign is a result: 1/d is +-inf), except
 * in the Jacobians of the built ops, where a zero entry is a sum of zero
 * terms whose sign depends only on the order each mode sums them in.
 *
 * Elementwise ops (the REFS rows of test_nonfinite.c and tests/cases/)
 * are differentiated at every combination of the special values of
 * tests/special_points.h and at random points, each input in turn, as 0-d
 * nodes (one tape per point: the compact records when float64 and the
 * scalar tape is on) and all at once as 1-D tensors (the vector kernels).
 * The other ops (the BUILDS rows) are built on inputs filled with each
 * special value, on random inputs with one element set to it, and on random
 * inputs, and their whole Jacobians are compared entry by entry. When an
 * input element is NaN or infinite, forward mode is left out for that
 * build: a one-hot seed and a one-hot tangent meet 0 * inf in different
 * entries of the two modes (PyTorch's too); backward and grad, both
 * reverse, are still compared.
 *
 * An op with neither row fails the registry walk. A disagreement is
 * accepted only for an op in `accepted` below, with the reason; every other
 * one is printed (op, dtype, tape, form, point, the three values) and
 * counted, and the test fails with the count.
 *
 * Then `torch_rows`: PyTorch's float64 derivatives at points where the
 * engine's paths have been seen to differ, asserted for all three paths;
 * and the second derivatives of the elementwise ops, three ways again.
 */
#include <float.h>
#include <inttypes.h>
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include <tapegrad.h>
#include <tapegrad/nn.h>

#include "special_points.h"

#include "cases/rows.h"

/* How filled() fills the builders' tensors: every element `fill`; random
 * values with element 0 set to `fill`; random values only. */
enum fill_mode { FILL_ALL, FILL_ONE, FILL_RANDOM };
static enum fill_mode fill_mode;
static tg_rng rng;

/* A random value of moderate size, either sign, exact in float32. */
static double random_value(void) { return (double)(float)(4 * tg_rng_uniform(&rng) - 2); }

/* The builders' input: a leaf of the dtype and shape, filled by fill_mode. */
static tg_node *filled(tg_tape *t, tg_dtype dt, int ndim, const int64_t *shape, double fill) {
    tg_node *x = tg_tensor(t, dt, ndim, shape, NULL);
    for (int64_t i = 0; i < tg_numel(x); i++) {
        double v = fill_mode == FILL_ALL || (fill_mode == FILL_ONE && i == 0) ? fill
                                                                              : random_value();
        if (dt == TG_F64)
            ((double *)tg_value(x))[i] = v;
        else
            ((float *)tg_value(x))[i] = (float)v;
    }
    return x;
}
static const int64_t shape_3x4[2] = {3, 4};

#define TG_TEST_NONFINITE
#include "cases/core.h"
#include "cases/math.h"
#include "cases/select.h"
#include "cases/reduce.h"
#include "cases/shape.h"
#include "cases/training.h"
#include "cases/lapack.h"

static const ref_row refs[] = {REFS_CORE REFS_MATH REFS_SELECT REFS_REDUCE REFS_SHAPE
                                   REFS_TRAINING REFS_LAPACK};
#define NREFS (sizeof refs / sizeof *refs)
static const build_row builds[] = {BUILDS_CORE BUILDS_MATH BUILDS_SELECT BUILDS_REDUCE
                                       BUILDS_SHAPE BUILDS_TRAINING BUILDS_LAPACK};
#define NBUILDS (sizeof builds / sizeof *builds)

/* ------------------------------------------------ accepted disagreements -- */

/* Ops whose paths may differ by rounding, at most ulps units in the last
 * place of the dtype, and why (docs/ops.md says so too). Only finite values
 * of one sign that close are accepted: a NaN against a number, an infinity
 * or a difference beyond the bound still fails. of_largest: the units are
 * those of the largest entry of the build's Jacobian (jac_scale), for ops
 * whose entries are sums of products through LAPACK, where a derivative
 * that is 0 in exact arithmetic comes out as a rounding residue of the
 * Jacobian's size times eps, of either sign. */
static const struct accepted_row {
    const char *op;
    double ulps;
    bool of_largest;
    const char *reason;
} accepted[] = {
#define LA_ACCEPT(op) {op, 4, true, "forward mode is the transposed vjp (another summation order)"}
    /* The linear algebra ops state a vjp only: forward mode is its
     * transpose, which sums the same products in another order (through
     * LAPACK's solves), so the tangents differ from the gradients by
     * rounding; the two reverse paths agree bit for bit. */
    LA_ACCEPT("cholesky"), LA_ACCEPT("cholesky_solve"), LA_ACCEPT("triangular_solve"),
    LA_ACCEPT("solve"), LA_ACCEPT("inverse"), LA_ACCEPT("det"), LA_ACCEPT("slogdet"),
    LA_ACCEPT("logdet"),
#undef LA_ACCEPT
    {NULL, 0, false, NULL},
};
static double jac_scale; /* the largest |entry| of the build being compared */
static double worst_accepted; /* in its row's units, for the summary */

/* The distance of a and b in units in the last place of the dtype at the
 * larger magnitude (subnormals: of the least normal), or at least `at`. */
static double ulps_apart(tg_dtype dt, double a, double b, double at) {
    int e;
    double m = fmax(fmax(fabs(a), fabs(b)), at), lo = dt == TG_F64 ? DBL_MIN : FLT_MIN;
    frexp(fmax(m, lo), &e);
    return fabs(a - b) / ldexp(1, e - (dt == TG_F64 ? DBL_MANT_DIG : FLT_MANT_DIG));
}

static const char *accepted_reason(const char *op, tg_dtype dt, double a, double b, double c,
                                   bool with_jvp) {
    for (size_t i = 0; accepted[i].op; i++) {
        if (strcmp(accepted[i].op, op)) continue;
        double v[3] = {a, b, with_jvp ? c : a}, at = accepted[i].of_largest ? jac_scale : 0;
        for (int j = 0; j < 3; j++) {
            double u = isfinite(v[j]) ? ulps_apart(dt, v[j], a, at) : INFINITY;
            if (u > accepted[i].ulps || (!at && (v[j] < 0) != (a < 0))) return NULL;
            if (u > worst_accepted) worst_accepted = u;
        }
        return accepted[i].reason;
    }
    return NULL;
}

/* -------------------------------------------------------------- helpers -- */

static const char *dtype_name(tg_dtype dt) { return dt == TG_F64 ? "float64" : "float32"; }
static const char *tape_name(int scalar_tape) { return scalar_tape ? "compact" : "nodes"; }

/* The same bits (NaN: any NaN). Values of float32 nodes arrive as exact
 * doubles, so comparing the doubles compares the floats. */
static bool same(double a, double b, bool zero_sign) {
    if (isnan(a) || isnan(b)) return isnan(a) && isnan(b);
    if (!zero_sign && a == 0 && b == 0) return true;
    return memcmp(&a, &b, sizeof a) == 0;
}

static double as_dtype(tg_dtype dt, double v) { return dt == TG_F64 ? v : (double)(float)v; }

static void set_at(tg_node *n, int64_t i, double v) {
    if (tg_node_dtype(n) == TG_F64)
        ((double *)tg_value(n))[i] = v;
    else
        ((float *)tg_value(n))[i] = (float)v;
}

/* A tensor of the shape of n with element hot (or every element, hot < 0)
 * set to 1 and the rest 0; as an input (no gradient). */
static tg_node *one_hot_like(tg_node *n, int64_t hot) {
    int64_t shape[TG_MAX_DIMS];
    int nd = tg_shape(n, shape);
    tg_node *v = tg_input(tg_node_tape(n), tg_node_dtype(n), nd, shape, NULL);
    for (int64_t i = 0; i < tg_numel(v); i++) set_at(v, i, hot < 0 || i == hot ? 1 : 0);
    return v;
}

static int disagreements, zero_signs, accepted_count;

/* Disagreements per op, for the summary; the first PRINT_PER_OP of each op
 * are printed, all of them when TG_AGREEMENT_ALL is set in the environment. */
#define PRINT_PER_OP 6
static struct op_tally {
    const char *op;
    int count, zero_sign;
} tally[NREFS + NBUILDS];
static size_t ntally;

static struct op_tally *tally_of(const char *op) {
    for (size_t i = 0; i < ntally; i++)
        if (!strcmp(tally[i].op, op)) return &tally[i];
    assert_true(ntally < NREFS + NBUILDS);
    tally[ntally] = (struct op_tally){op, 0, 0};
    return &tally[ntally++];
}

static void print_tally(void) {
    for (size_t i = 0; i < ntally; i++)
        print_message("  %-16s %6d disagreements, %6d of them only a zero's sign\n", tally[i].op,
                      tally[i].count, tally[i].zero_sign);
}

/* One entry computed three ways (c only when with_jvp); prints and counts
 * a disagreement. */
static void compare3(const char *op, tg_dtype dt, int scalar_tape, const char *form,
                     const char *where, double a, double b, double c, bool with_jvp,
                     bool zero_sign) {
    if (same(a, b, zero_sign) && (!with_jvp || same(a, c, zero_sign))) return;
    const char *why = accepted_reason(op, dt, a, b, c, with_jvp);
    bool only_sign = a == 0 && b == 0 && (!with_jvp || c == 0);
    struct op_tally *n = tally_of(op);
    if (why)
        accepted_count++;
    else {
        disagreements++;
        zero_signs += only_sign;
        n->count++;
        n->zero_sign += only_sign;
    }
    /* Accepted ones are counted (and the worst reported by walk()); listed
     * only with TG_AGREEMENT_ALL, as they can number thousands. */
    if ((why || n->count > PRINT_PER_OP) && !getenv("TG_AGREEMENT_ALL")) return;
    int digits = dt == TG_F64 ? 17 : 9;
    char jvp[40] = "not compared";
    if (with_jvp) snprintf(jvp, sizeof jvp, "%.*g", digits, c);
    print_message("%s %s %s %s %s %s: backward %.*g, grad %.*g, jvp %s%s\n",
                  why ? "accepted" : "DISAGREE", op, dtype_name(dt), tape_name(scalar_tape),
                  form, where, digits, a, digits, b, jvp, only_sign ? " (zero sign)" : "");
}

static void expect_ok(tg_tape *t, const char *op, const char *what) {
    if (tg_status(t)) fail_msg("%s: %s: %s", op, what, tg_status_message(t));
}

/* -------------------------------------------------- elementwise ops -- */

#define RANDOM_POINTS 24

/* The points of an op of arity n in dtype dt: every combination of the
 * special values, then RANDOM_POINTS random ones; npts * n doubles. */
static double *elementwise_points(tg_dtype dt, int n, size_t *npts) {
    const double *sp = dt == TG_F64 ? specials_f64 : specials_f32;
    size_t grid = 1;
    for (int k = 0; k < n; k++) grid *= NSPECIAL;
    *npts = grid + RANDOM_POINTS;
    double *p = malloc(*npts * (size_t)n * sizeof *p);
    assert_non_null(p);
    for (size_t i = 0; i < grid; i++)
        for (size_t k = 0, r = i; k < (size_t)n; k++, r /= NSPECIAL)
            p[i * (size_t)n + k] = as_dtype(dt, sp[r % NSPECIAL]);
    for (size_t i = grid; i < *npts; i++)
        for (int k = 0; k < n; k++) p[i * (size_t)n + (size_t)k] = random_value();
    return p;
}

static void point_text(char *buf, size_t len, const double *x, int n, int k, tg_dtype dt) {
    int used = snprintf(buf, len, "at (");
    for (int j = 0; j < n; j++)
        used += snprintf(buf + used, len - (size_t)used, j ? ", %.*g" : "%.*g",
                         dt == TG_F64 ? 17 : 9, x[j]);
    snprintf(buf + used, len - (size_t)used, ") d/dx%d", k);
}

/* Derivatives of op at point x (0-d nodes): a, b, c per input. */
static void scalar_paths(tg_tape *t, const ref_row *r, tg_dtype dt, const double *x, double *a,
                         double *b, double *c) {
    int n = r->arity;
    tg_node *in[3];
    tg_tape_reset(t);
    for (int k = 0; k < n; k++) {
        double v = x[k];
        float f = (float)v;
        in[k] = tg_tensor(t, dt, 0, NULL, dt == TG_F64 ? (const void *)&v : (const void *)&f);
    }
    tg_node *y = tg_call_n(r->op, n, in);
    expect_ok(t, r->op, "record");
    tg_backward(y);
    expect_ok(t, r->op, "tg_backward");
    for (int k = 0; k < n; k++) a[k] = tg_grad_scalar(in[k]);
    tg_node *g[3];
    tg_grad_nodes(y, n, in, g);
    expect_ok(t, r->op, "tg_grad");
    for (int k = 0; k < n; k++) b[k] = tg_value_scalar(g[k]);
    for (int k = 0; k < n; k++) {
        tg_node *v = tg_const_as(t, dt, 1.0), *jv;
        tg_jvp(y, 1, &in[k], &v, &jv);
        expect_ok(t, r->op, "tg_jvp");
        c[k] = tg_value_scalar(jv);
    }
}

static void check_elementwise(const ref_row *r, tg_dtype dt, int scalar_tape) {
    int n = r->arity;
    size_t npts;
    double *p = elementwise_points(dt, n, &npts);
    char where[160];
    tg_tape *t = tg_tape_new();
    tg_set_scalar_tape(t, scalar_tape);
    for (size_t i = 0; i < npts; i++) {
        double a[3], b[3], c[3];
        const double *x = p + i * (size_t)n;
        scalar_paths(t, r, dt, x, a, b, c);
        for (int k = 0; k < n; k++) {
            point_text(where, sizeof where, x, n, k, dt);
            compare3(r->op, dt, scalar_tape, "0-d", where, a[k], b[k], c[k], true, true);
        }
    }

    /* All points at once as 1-D tensors. */
    tg_tape_reset(t);
    int64_t len = (int64_t)npts;
    tg_node *in[3];
    for (int k = 0; k < n; k++) {
        in[k] = tg_tensor(t, dt, 1, &len, NULL);
        for (size_t i = 0; i < npts; i++) set_at(in[k], (int64_t)i, p[i * (size_t)n + (size_t)k]);
    }
    tg_node *y = tg_call_n(r->op, n, in);
    expect_ok(t, r->op, "record (tensor)");
    tg_node *ones = one_hot_like(y, -1);
    tg_backward_seeded(y, tg_value(ones));
    expect_ok(t, r->op, "tg_backward_seeded");
    tg_node *g[3], *jv[3];
    tg_grad_nodes(tg_sum(y), n, in, g);
    expect_ok(t, r->op, "tg_grad (tensor)");
    for (int k = 0; k < n; k++) {
        tg_node *v = one_hot_like(in[k], -1);
        tg_jvp(y, 1, &in[k], &v, &jv[k]);
        expect_ok(t, r->op, "tg_jvp (tensor)");
    }
    for (size_t i = 0; i < npts; i++)
        for (int k = 0; k < n; k++) {
            point_text(where, sizeof where, p + i * (size_t)n, n, k, dt);
            compare3(r->op, dt, scalar_tape, "tensor", where, tg_grad_at(in[k], (int64_t)i),
                     tg_value_at(g[k], (int64_t)i), tg_value_at(jv[k], (int64_t)i), true,
                     true);
        }
    tg_tape_free(t);
    free(p);
}

/* --------------------------------------------------------- built ops -- */

#define MAX_LEAVES 4
#define BUILT_RANDOM 6

/* The leaves that want a gradient, in recording order; *finite whether
 * every leaf's value is finite. */
static int grad_leaves(tg_tape *t, tg_node **leaf, bool *finite) {
    int n = 0;
    *finite = true;
    for (size_t i = 0; i < tg_tape_size(t); i++) {
        tg_node *x = tg_tape_node(t, i);
        if (strcmp(tg_node_op_name(x), "leaf")) continue;
        for (int64_t j = 0; j < tg_numel(x); j++) *finite &= isfinite(tg_value_at(x, j)) != 0;
        if (tg_requires_grad(x)) {
            assert_true(n < MAX_LEAVES);
            leaf[n++] = x;
        }
    }
    return n;
}

/* The Jacobian of the op built by row b, three ways, entry by entry. */
static void check_built_at(const build_row *row, tg_dtype dt, int scalar_tape, double fill,
                           const char *form) {
    tg_tape *t = tg_tape_new();
    tg_set_scalar_tape(t, scalar_tape);
    tg_node *y = row->build(t, dt, fill);
    expect_ok(t, row->op, "build");
    tg_node *leaf[MAX_LEAVES];
    bool finite;
    int nl = grad_leaves(t, leaf, &finite);
    int64_t m = tg_numel(y), offs[MAX_LEAVES + 1] = {0};
    for (int l = 0; l < nl; l++) offs[l + 1] = offs[l] + tg_numel(leaf[l]);
    int64_t nx = offs[nl];
    double *jac = malloc((size_t)(3 * m * nx) * sizeof *jac);
    assert_non_null(jac);
    double *ja = jac, *jb = jac + m * nx, *jc = jac + 2 * m * nx;

    for (int64_t i = 0; i < m; i++) {
        tg_node *seed = one_hot_like(y, i);
        tg_zero_grad(t);
        tg_backward_seeded(y, tg_value(seed));
        expect_ok(t, row->op, "tg_backward_seeded");
        for (int l = 0; l < nl; l++)
            for (int64_t j = 0; j < tg_numel(leaf[l]); j++)
                ja[i * nx + offs[l] + j] = tg_grad_at(leaf[l], j);
        tg_node *g[MAX_LEAVES];
        tg_grad_nodes(tg_sum(tg_mul(seed, y)), nl, leaf, g);
        expect_ok(t, row->op, "tg_grad");
        for (int l = 0; l < nl; l++)
            for (int64_t j = 0; j < tg_numel(leaf[l]); j++)
                jb[i * nx + offs[l] + j] = tg_value_at(g[l], j);
    }
    for (int l = 0; l < nl; l++)
        for (int64_t j = 0; j < tg_numel(leaf[l]); j++) {
            tg_node *v = one_hot_like(leaf[l], j), *jv;
            tg_jvp(y, 1, &leaf[l], &v, &jv);
            expect_ok(t, row->op, "tg_jvp");
            for (int64_t i = 0; i < m; i++) jc[i * nx + offs[l] + j] = tg_value_at(jv, i);
        }
    char where[200];
    jac_scale = 0;
    for (int64_t e = 0; e < m * nx; e++)
        if (isfinite(ja[e])) jac_scale = fmax(jac_scale, fabs(ja[e]));
    for (int64_t i = 0; i < m; i++)
        for (int l = 0; l < nl; l++)
            for (int64_t j = 0; j < tg_numel(leaf[l]); j++) {
                int64_t e = i * nx + offs[l] + j;
                snprintf(where, sizeof where, "dy[%" PRId64 "]/dx%d[%" PRId64 "]", i, l, j);
                compare3(row->op, dt, scalar_tape, form, where, ja[e], jb[e], jc[e], finite,
                         false);
            }
    jac_scale = 0;
    free(jac);
    tg_tape_free(t);
}

/* Inputs filled with each special value; random inputs with element 0 set
 * to each; random inputs (fill_mode tells the shared builders' filled()). */
static void check_built(const build_row *row, tg_dtype dt, int scalar_tape) {
    const double *sp = dt == TG_F64 ? specials_f64 : specials_f32;
    char form[96];
    for (int mode = FILL_ALL; mode <= FILL_RANDOM; mode++) {
        size_t count = mode == FILL_RANDOM ? BUILT_RANDOM : NSPECIAL;
        for (size_t s = 0; s < count; s++) {
            fill_mode = (enum fill_mode)mode;
            double fill = mode == FILL_RANDOM ? 0 : as_dtype(dt, sp[s]);
            if (mode == FILL_ALL)
                snprintf(form, sizeof form, "inputs all %.9g", fill);
            else if (mode == FILL_ONE)
                snprintf(form, sizeof form, "random inputs, x[0] = %.9g", fill);
            else
                snprintf(form, sizeof form, "random inputs #%zu", s);
            check_built_at(row, dt, scalar_tape, fill, form);
        }
    }
}

/* ------------------------------------------------------------- PyTorch -- */

/* PyTorch 1.13's float64 derivatives (Debian's python3-torch), each by
 *   /usr/bin/python3 -c 'import torch, math; F = torch.nn.functional
 *     x = torch.tensor(X, dtype=torch.float64, requires_grad=True)
 *     y = torch.tensor(Y, dtype=torch.float64, requires_grad=True)
 *     torch.pow(x, y).backward(); print(x.grad.item(), y.grad.item())'
 * with torch.relu(x), torch.abs(x), torch.mul(x, y), F.leaky_relu(x, S) and
 * F.elu(x, A) in place of pow (PyTorch's slope and alpha are numbers, so
 * only d/dx is compared for those). d is the input differentiated (0: x).
 * Left out on purpose, since PyTorch's value there is an artifact of its
 * formula and tapegrad's backward kernel gives the true limit: asinh'(1e300)
 * (PyTorch 0, x*x overflows; true 1e-300), gelu'(+-inf) and silu'(+-inf)
 * (PyTorch NaN from inf * 0; true 1 and 0). */
static const struct torch_row {
    const char *op;
    int arity;
    double x[3];
    int d;
    double want;
} torch_rows[] = {
    {"relu", 1, {NAN}, 0, 1},
    {"relu", 1, {-NAN}, 0, 1},
    {"abs", 1, {NAN}, 0, 0},
    {"pow", 2, {0, 0}, 0, 0},
    {"pow", 2, {0, 0}, 1, 0},
    {"pow", 2, {0, 2}, 0, 0},
    {"pow", 2, {0, 2}, 1, 0},
    {"pow", 2, {0, 3}, 1, 0},
    {"pow", 2, {0, 0.5}, 0, INFINITY},
    {"pow", 2, {0, 0.5}, 1, 0},
    {"mul", 2, {-0.0, 0}, 1, -0.0},
    {"leaky_relu", 2, {0.5, NAN}, 0, 1},
    {"leaky_relu", 2, {-0.0, -INFINITY}, 0, -INFINITY},
    {"leaky_relu", 2, {-2.5, 0.5}, 0, 0.5},
    {"elu", 2, {1, NAN}, 0, 1},
    {"elu", 2, {INFINITY, INFINITY}, 0, 1},
};
#define NTORCH (sizeof torch_rows / sizeof *torch_rows)

static const ref_row *ref_of(const char *op) {
    for (size_t i = 0; i < NREFS; i++)
        if (!strcmp(refs[i].op, op)) return &refs[i];
    return NULL;
}

/* --------------------------------------------------------------- tests -- */

/* Every registered op has one REFS or one BUILDS row. */
static void test_covers_registry(void **state) {
    (void)state;
    expect_rows_cover_registry(refs, NREFS, builds, NBUILDS);
}

/* Runs check on every row, in both dtypes, on both kinds of tape, and
 * fails with the number of disagreements. */
static void walk(const char *what, size_t nrows, uint64_t seed,
                 void (*check)(size_t row, tg_dtype dt, int scalar_tape)) {
    disagreements = zero_signs = accepted_count = 0;
    worst_accepted = 0;
    ntally = 0;
    tg_rng_seed(&rng, seed);
    for (size_t i = 0; i < nrows; i++)
        for (int d = 0; d < 2; d++)
            for (int tape = 1; tape >= 0; tape--) check(i, d ? TG_F32 : TG_F64, tape);
    print_message("agreement: %zu %s x 2 dtypes x 2 tapes: %d disagreements (%d of them only a "
                  "zero's sign), %d accepted\n",
                  nrows, what, disagreements, zero_signs, accepted_count);
    if (accepted_count)
        print_message("  the accepted ones differ by at most %.3g units in the last place\n",
                      worst_accepted);
    print_tally();
    if (disagreements)
        fail_msg("%s: %d disagreements between tg_backward, tg_grad and tg_jvp", what,
                 disagreements);
}

static void check_ref(size_t row, tg_dtype dt, int scalar_tape) {
    check_elementwise(&refs[row], dt, scalar_tape);
}
static void check_build(size_t row, tg_dtype dt, int scalar_tape) {
    check_built(&builds[row], dt, scalar_tape);
}

/* Second order: for each input k of an elementwise op, d2y/dx_k2 three ways
 * from the recorded gradient g_k: tg_backward through it (the derivative
 * ops' backward rules), tg_grad of it, and its tangent along x_k (their
 * tangent rules), at random points (where no entry is infinite, so that
 * forward mode's zero tangents meet no inf * 0). The sign of a zero is not
 * compared: it is a sum of zero terms in each mode's own order. */
static void check_second_order(size_t row, tg_dtype dt, int scalar_tape) {
    const ref_row *r = &refs[row];
    int n = r->arity;
    tg_tape *t = tg_tape_new();
    tg_set_scalar_tape(t, scalar_tape);
    char where[160];
    for (int i = 0; i < 12; i++) {
        double x[3];
        for (int k = 0; k < n; k++) x[k] = as_dtype(dt, 0.25 + 1.5 * tg_rng_uniform(&rng));
        for (int k = 0; k < n; k++) {
            tg_tape_reset(t);
            tg_node *in[3];
            for (int j = 0; j < n; j++) {
                double v = x[j];
                float f = (float)v;
                in[j] = tg_tensor(t, dt, 0, NULL, dt == TG_F64 ? (const void *)&v : (const void *)&f);
            }
            tg_node *y = tg_call_n(r->op, n, in), *g, *h, *jv;
            tg_grad_nodes(y, 1, &in[k], &g);
            tg_grad_nodes(g, 1, &in[k], &h);
            tg_node *v = tg_const_as(t, dt, 1.0);
            tg_jvp(g, 1, &in[k], &v, &jv);
            expect_ok(t, r->op, "second order: record");
            double b = tg_value_scalar(h), c = tg_value_scalar(jv);
            tg_backward(g);
            expect_ok(t, r->op, "second order: tg_backward");
            point_text(where, sizeof where, x, n, k, dt);
            compare3(r->op, dt, scalar_tape, "second order", where, tg_grad_scalar(in[k]), b, c,
                     true, false);
        }
    }
    tg_tape_free(t);
}

static void test_second_order(void **state) {
    (void)state;
    walk("elementwise ops, second order", NREFS, 1919191, check_second_order);
}

static void test_elementwise(void **state) {
    (void)state;
    walk("elementwise ops (0-d and tensor forms)", NREFS, 19, check_ref);
}

static void test_built(void **state) {
    (void)state;
    walk("built ops", NBUILDS, 1919, check_build);
}

static void test_torch(void **state) {
    (void)state;
    int wrong = 0;
    static const char *const path[3] = {"tg_backward", "tg_grad", "tg_jvp"};
    for (size_t i = 0; i < NTORCH; i++) {
        const struct torch_row *r = &torch_rows[i];
        const ref_row *ref = ref_of(r->op);
        if (!ref) fail_msg("torch row of %s: no REFS row", r->op);
        assert_int_equal(ref->arity, r->arity);
        for (int tape = 1; tape >= 0; tape--) {
            tg_tape *t = tg_tape_new();
            tg_set_scalar_tape(t, tape);
            double got[3][3];
            scalar_paths(t, ref, TG_F64, r->x, got[0], got[1], got[2]);
            tg_tape_free(t);
            for (int p = 0; p < 3; p++)
                if (!same(got[p][r->d], r->want, true)) {
                    char where[160];
                    point_text(where, sizeof where, r->x, r->arity, r->d, TG_F64);
                    print_message("TORCH %s float64 %s %s: %s gives %.17g, PyTorch %.17g\n", r->op,
                                  tape_name(tape), where, path[p], got[p][r->d], r->want);
                    wrong++;
                }
        }
    }
    if (wrong) fail_msg("%d derivatives differ from PyTorch's", wrong);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_covers_registry),
        cmocka_unit_test(test_torch),
        cmocka_unit_test(test_elementwise),
        cmocka_unit_test(test_built),
        cmocka_unit_test(test_second_order),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
