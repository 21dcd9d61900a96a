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
 * each op family are in tests/cases/FAMILY.h, those of the older ops in
 * tests/cases/core.h; the special values in tests/special_points.h.
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

#include "cases/rows.h"

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

#define TG_TEST_NONFINITE
#include "cases/core.h"
#include "cases/math.h"
#include "cases/select.h"
#include "cases/reduce.h"
#include "cases/shape.h"
#include "cases/training.h"
#include "cases/lapack.h"

static const ref_row refs[] = {
    REFS_CORE
    REFS_MATH
    REFS_SELECT
    REFS_REDUCE
    REFS_SHAPE
    REFS_TRAINING
    REFS_LAPACK
};
#define NREFS (sizeof refs / sizeof *refs)

static const build_row builds[] = {
    BUILDS_CORE
    BUILDS_MATH
    BUILDS_SELECT
    BUILDS_REDUCE
    BUILDS_SHAPE
    BUILDS_TRAINING
    BUILDS_LAPACK
};
#define NBUILDS (sizeof builds / sizeof *builds)

#include "special_points.h"

/* Combination i of `arity` special values, as doubles of the dtype. */
static void combination(tg_dtype dt, int arity, size_t i, double *x) {
    const double *sp = dt == TG_F64 ? specials_f64 : specials_f32;
    for (int k = 0; k < arity; k++, i /= NSPECIAL) x[k] = dt == TG_F64 ? sp[i % NSPECIAL]
                                                                   : (double)(float)sp[i % NSPECIAL];
}

/* The float32 definitions of the ops whose float32 rounding inside the op
 * shows at these points: addcmul rounds (and may overflow) its product
 * before the sum. */
static double ref_addcmul_f32(const double *x) { return x[0] + (double)(float)(x[1] * x[2]); }
static const struct {
    const char *op;
    ref_fn ref;
} refs_f32[] = {{"addcmul", ref_addcmul_f32}};

static double reference(const ref_row *r, tg_dtype dt, const double *x) {
    for (size_t i = 0; dt == TG_F32 && i < sizeof refs_f32 / sizeof *refs_f32; i++)
        if (strcmp(refs_f32[i].op, r->op) == 0) return refs_f32[i].ref(x);
    return r->ref(x);
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
        double want = reference(r, dt, x), got = tg_value_scalar(y);
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
        double want = reference(r, dt, x), got = tg_value_at(y, (int64_t)i);
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
    expect_rows_cover_registry(refs, NREFS, builds, NBUILDS);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_covers_registry),
        cmocka_unit_test(test_elementwise),
        cmocka_unit_test(test_built),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
