/*
 * NaN and infinity never vanish: every registered op, fed NaN, ±inf, ±0,
 * subnormals, huge and ordinary values, in both dtypes, as 0-d nodes (the
 * scalar fast paths) and as long tensors (the vector loops), gives what the
 * op's definition gives in libm.
 *
 * Elementwise ops (REFS rows: every input and the output of one shape) are
 * compared element by element with a reference written from libm in double:
 * all combinations of the special values for ops of two or three inputs.
 * NaN must match NaN, an infinity the same infinity, and a finite value the
 * reference to 1e-12 (float64) or 1e-5 (float32) relative: this test is about
 * special values; accuracy has its own tests.
 *
 * The other ops (BUILDS rows) are built on inputs filled with NaN; every
 * output element must be NaN (NF_ALL), or at least one (NF_ANY, for masks
 * such as tril that keep zeros), or, for an index (argmax), 0: the position
 * of the first NaN, which counts as the largest (NF_FIRST).
 *
 * The test walks the registry: an op with neither row fails it. The rows of
 * each op family of issue 11 are in tests/cases/FAMILY.h.
 */
#include <float.h>
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

typedef double (*ref_fn)(const double *x);
typedef struct ref_row {
    const char *op;
    int arity;
    ref_fn ref;
} ref_row;

enum { NF_ALL, NF_ANY, NF_FIRST };
typedef tg_node *(*build_fn)(tg_tape *t, tg_dtype dt, double fill);
typedef struct build_row {
    const char *op;
    build_fn build;
    int expect;
} build_row;

/* A tensor of x's dtype and the given shape, every element fill. */
static tg_node *filled(tg_tape *t, tg_dtype dt, int ndim, const int64_t *shape, double fill) {
    tg_node *x = tg_tensor(t, dt, ndim, shape, NULL);
    for (int64_t i = 0; i < tg_numel(x); i++) {
        if (dt == TG_F64)
            ((double *)tg_value(x))[i] = fill;
        else
            ((float *)tg_value(x))[i] = (float)fill;
    }
    return x;
}
static const int64_t shape_3x4[2] = {3, 4};

/* ------------------------------------------------- the ops before issue 11 -- */

static double ref_neg(const double *x) { return -x[0]; }
static double ref_exp(const double *x) { return exp(x[0]); }
static double ref_log(const double *x) { return log(x[0]); }
static double ref_sqrt(const double *x) { return sqrt(x[0]); }
static double ref_abs(const double *x) { return fabs(x[0]); }
static double ref_sin(const double *x) { return sin(x[0]); }
static double ref_cos(const double *x) { return cos(x[0]); }
static double ref_tanh(const double *x) { return tanh(x[0]); }
static double ref_sigmoid(const double *x) { return 1 / (1 + exp(-x[0])); }
/* PyTorch: relu(NaN) = NaN. */
static double ref_relu(const double *x) { return isnan(x[0]) ? x[0] : x[0] > 0 ? x[0] : 0; }
static double ref_add(const double *x) { return x[0] + x[1]; }
static double ref_sub(const double *x) { return x[0] - x[1]; }
static double ref_mul(const double *x) { return x[0] * x[1]; }
static double ref_div(const double *x) { return x[0] / x[1]; }
static double ref_pow(const double *x) { return pow(x[0], x[1]); }

static tg_node *build_matmul(tg_tape *t, tg_dtype dt, double fill) {
    const int64_t s2[2] = {4, 2};
    return tg_matmul(filled(t, dt, 2, shape_3x4, fill), filled(t, dt, 2, s2, fill));
}
static tg_node *build_transpose(tg_tape *t, tg_dtype dt, double fill) {
    return tg_transpose(filled(t, dt, 2, shape_3x4, fill));
}
static tg_node *build_reshape(tg_tape *t, tg_dtype dt, double fill) {
    const int64_t s[1] = {12};
    return tg_reshape(filled(t, dt, 2, shape_3x4, fill), 1, s);
}
static tg_node *build_sum(tg_tape *t, tg_dtype dt, double fill) {
    return tg_sum_axis(filled(t, dt, 2, shape_3x4, fill), 1);
}
static tg_node *build_mean(tg_tape *t, tg_dtype dt, double fill) {
    return tg_mean(filled(t, dt, 2, shape_3x4, fill));
}
static tg_node *build_softmax(tg_tape *t, tg_dtype dt, double fill) {
    return tg_softmax(filled(t, dt, 2, shape_3x4, fill), 1);
}
static tg_node *build_log_softmax(tg_tape *t, tg_dtype dt, double fill) {
    return tg_log_softmax(filled(t, dt, 2, shape_3x4, fill), 0);
}
static tg_node *build_mse(tg_tape *t, tg_dtype dt, double fill) {
    return tg_mse(filled(t, dt, 2, shape_3x4, fill), filled(t, dt, 2, shape_3x4, 0.5));
}
static tg_node *build_softmax_xent(tg_tape *t, tg_dtype dt, double fill) {
    return tg_softmax_xent(filled(t, dt, 2, shape_3x4, fill), filled(t, dt, 2, shape_3x4, 0.25));
}

#define TG_TEST_NONFINITE
#include "cases/math.h"
#include "cases/select.h"
#include "cases/reduce.h"
#include "cases/shape.h"
#include "cases/training.h"

static const ref_row refs[] = {
    {"neg", 1, ref_neg},   {"exp", 1, ref_exp},   {"log", 1, ref_log},
    {"sqrt", 1, ref_sqrt}, {"abs", 1, ref_abs},   {"sin", 1, ref_sin},
    {"cos", 1, ref_cos},   {"tanh", 1, ref_tanh}, {"sigmoid", 1, ref_sigmoid},
    {"relu", 1, ref_relu}, {"add", 2, ref_add},   {"sub", 2, ref_sub},
    {"mul", 2, ref_mul},   {"div", 2, ref_div},   {"pow", 2, ref_pow},
    REFS_MATH
    REFS_SELECT
    REFS_REDUCE
    REFS_SHAPE
    REFS_TRAINING
};
#define NREFS (sizeof refs / sizeof *refs)

static const build_row builds[] = {
    {"matmul", build_matmul, NF_ALL},
    {"transpose", build_transpose, NF_ALL},
    {"reshape", build_reshape, NF_ALL},
    {"sum", build_sum, NF_ALL},
    {"mean", build_mean, NF_ALL},
    {"softmax", build_softmax, NF_ALL},
    {"log_softmax", build_log_softmax, NF_ALL},
    {"mse", build_mse, NF_ALL},
    {"softmax_xent", build_softmax_xent, NF_ALL},
    BUILDS_MATH
    BUILDS_SELECT
    BUILDS_REDUCE
    BUILDS_SHAPE
    BUILDS_TRAINING
};
#define NBUILDS (sizeof builds / sizeof *builds)

/* ------------------------------------------------------ the special values -- */

static const double specials_f64[] = {
    NAN,  -NAN, INFINITY, -INFINITY, 0.0,  -0.0,    DBL_TRUE_MIN, -1e-310, DBL_MIN,
    1.0,  -1.0, 0.5,      -2.5,      3.0,  1e300,   -1e300,       700.0,   -745.0,
};
static const double specials_f32[] = {
    NAN,  -NAN, INFINITY, -INFINITY, 0.0,  -0.0,  FLT_TRUE_MIN, -1e-40, FLT_MIN,
    1.0,  -1.0, 0.5,      -2.5,      3.0,  3e38,  -3e38,        80.0,   -100.0,
};
#define NSPECIAL (sizeof specials_f64 / sizeof *specials_f64)

/* Combination i of `arity` special values, as doubles of the dtype. */
static void combination(tg_dtype dt, int arity, size_t i, double *x) {
    const double *sp = dt == TG_F64 ? specials_f64 : specials_f32;
    for (int k = 0; k < arity; k++, i /= NSPECIAL) x[k] = dt == TG_F64 ? sp[i % NSPECIAL]
                                                                   : (double)(float)sp[i % NSPECIAL];
}

/* Whether got (already of the dtype) is what the reference gives. */
static bool agrees(tg_dtype dt, double got, double want) {
    if (dt == TG_F32) want = (double)(float)want; /* overflow to inf as float does */
    if (isnan(want)) return isnan(got);
    if (isinf(want) || want == 0) return got == want || (want == 0 && fabs(got) <= 1e-300);
    double tol = dt == TG_F64 ? 1e-12 : 1e-5;
    return fabs(got - want) <= tol * fabs(want) + (dt == TG_F64 ? 1e-300 : 1e-37);
}

static void fail_elementwise(const ref_row *r, tg_dtype dt, const char *form, const double *x,
                             double got, double want) {
    char args[128] = "";
    for (int k = 0, n = 0; k < r->arity; k++)
        n += snprintf(args + n, sizeof args - (size_t)n, k ? ", %.9g" : "%.9g", x[k]);
    fail_msg("%s(%s) %s %s: got %.17g, the definition gives %.17g", r->op, args,
             dt == TG_F64 ? "float64" : "float32", form, got, want);
}

/* Every combination as 0-d nodes, then all of them at once as 1-D tensors. */
static void check_elementwise(const ref_row *r, tg_dtype dt) {
    size_t count = 1;
    for (int k = 0; k < r->arity; k++) count *= NSPECIAL;
    tg_tape *t = tg_tape_new();
    double x[3];
    for (size_t i = 0; i < count; i++) {
        tg_tape_reset(t);
        combination(dt, r->arity, i, x);
        tg_node *in[3];
        for (int k = 0; k < r->arity; k++) in[k] = filled(t, dt, 0, NULL, x[k]);
        tg_node *y = tg_call_n(r->op, r->arity, in);
        if (tg_status(t)) fail_msg("%s: %s", r->op, tg_status_message(t));
        double want = r->ref(x), got = tg_value_scalar(y);
        if (!agrees(dt, got, want)) fail_elementwise(r, dt, "0-d", x, got, want);
    }
    tg_tape_reset(t);
    int64_t n = (int64_t)count;
    tg_node *in[3];
    for (int k = 0; k < r->arity; k++) in[k] = tg_tensor(t, dt, 1, &n, NULL);
    for (size_t i = 0; i < count; i++) {
        combination(dt, r->arity, i, x);
        for (int k = 0; k < r->arity; k++) {
            if (dt == TG_F64)
                ((double *)tg_value(in[k]))[i] = x[k];
            else
                ((float *)tg_value(in[k]))[i] = (float)x[k];
        }
    }
    tg_node *y = tg_call_n(r->op, r->arity, in);
    if (tg_status(t)) fail_msg("%s: %s", r->op, tg_status_message(t));
    assert_int_equal(tg_numel(y), n);
    for (size_t i = 0; i < count; i++) {
        combination(dt, r->arity, i, x);
        double want = r->ref(x), got = tg_value_at(y, (int64_t)i);
        if (!agrees(dt, got, want)) fail_elementwise(r, dt, "tensor", x, got, want);
    }
    tg_tape_free(t);
}

static void test_elementwise(void **state) {
    (void)state;
    for (size_t i = 0; i < NREFS; i++) {
        check_elementwise(&refs[i], TG_F64);
        check_elementwise(&refs[i], TG_F32);
    }
    print_message("nonfinite: %zu elementwise ops x 2 dtypes x 0-d and tensor forms\n", NREFS);
}

static void test_built(void **state) {
    (void)state;
    for (size_t i = 0; i < NBUILDS; i++) {
        for (int d = 0; d < 2; d++) {
            tg_dtype dt = d ? TG_F32 : TG_F64;
            tg_tape *t = tg_tape_new();
            tg_node *y = builds[i].build(t, dt, NAN);
            if (tg_status(t)) fail_msg("%s: %s", builds[i].op, tg_status_message(t));
            if (strcmp(tg_node_op_name(y), builds[i].op) != 0)
                fail_msg("the NaN case of %s built a %s node", builds[i].op, tg_node_op_name(y));
            int64_t nan_count = 0, zeros = 0, n = tg_numel(y);
            for (int64_t j = 0; j < n; j++) {
                nan_count += isnan(tg_value_at(y, j)) != 0;
                zeros += tg_value_at(y, j) == 0;
            }
            if (builds[i].expect == NF_FIRST) {
                if (zeros != n)
                    fail_msg("%s %s on NaN inputs: %lld of %lld output indices are 0, the first "
                             "NaN's", builds[i].op, d ? "float32" : "float64", (long long)zeros,
                             (long long)n);
            } else if (builds[i].expect == NF_ALL ? nan_count != n : nan_count == 0)
                fail_msg("%s %s on NaN inputs: %lld of %lld output elements are NaN", builds[i].op,
                         d ? "float32" : "float64", (long long)nan_count, (long long)n);
            tg_tape_free(t);
        }
    }
}

/* Every registered op has exactly one kind of row, of its arity. */
static void test_covers_registry(void **state) {
    (void)state;
    for (int i = 0; i < tg_op_count(); i++) {
        const tg_op *op = tg_op_at(i);
        int found = 0;
        for (size_t j = 0; j < NREFS; j++)
            if (!strcmp(refs[j].op, op->name)) {
                found++;
                if (refs[j].arity != op->arity)
                    fail_msg("REFS row of %s has arity %d; the op has %d", op->name, refs[j].arity,
                             op->arity);
            }
        for (size_t j = 0; j < NBUILDS; j++) found += !strcmp(builds[j].op, op->name);
        if (found != 1)
            fail_msg("registered op \"%s\" has %d rows in test_nonfinite.c / tests/cases/*.h "
                     "(want one REFS or BUILDS row)",
                     op->name, found);
    }
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_covers_registry),
        cmocka_unit_test(test_elementwise),
        cmocka_unit_test(test_built),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
