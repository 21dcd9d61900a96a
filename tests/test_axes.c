/*
 * The axis conveniences of ops/axes.c: unsqueeze, squeeze, stack and the
 * keepdim reductions. Expected shapes and values by index arithmetic on
 * flat row-major arrays; gradients by tg_backward with a random seed, which
 * must land on the element each output came from; every error with its
 * message.
 */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include <tapegrad.h>

static void expect_shape(tg_node *y, int nd, const int64_t *want) {
    int64_t s[TG_MAX_DIMS];
    if (tg_status(tg_node_tape(y))) fail_msg("%s", tg_status_message(tg_node_tape(y)));
    assert_int_equal(tg_shape(y, s), nd);
    for (int i = 0; i < nd; i++) assert_int_equal(s[i], want[i]);
}

static void expect_error(tg_tape *t, int code, const char *want) {
    if (tg_status(t) != code || !strstr(tg_status_message(t), want))
        fail_msg("status %s \"%s\"; want %s with \"%s\"", tg_status_name(tg_status(t)),
                 tg_status_message(t), tg_status_name(code), want);
    tg_tape_reset(t);
}

/* A [2,3,4] leaf holding 0, 1, ..., 23 (as float64 or float32). */
static tg_node *iota(tg_tape *t, tg_dtype dt, int nd, const int64_t *shape) {
    tg_node *x = tg_tensor(t, dt, nd, shape, NULL);
    for (int64_t i = 0; i < tg_numel(x); i++) {
        if (dt == TG_F64)
            ((double *)tg_value(x))[i] = (double)i;
        else
            ((float *)tg_value(x))[i] = (float)i;
    }
    return x;
}

static const int64_t s234[3] = {2, 3, 4};

static void test_unsqueeze_squeeze(void **state) {
    (void)state;
    tg_tape *t = tg_tape_new();
    static const struct {
        int axis, nd;
        int64_t shape[4];
    } rows[] = {{0, 4, {1, 2, 3, 4}}, {1, 4, {2, 1, 3, 4}}, {3, 4, {2, 3, 4, 1}},
                {-1, 4, {2, 3, 4, 1}}, {-4, 4, {1, 2, 3, 4}}, {-2, 4, {2, 3, 1, 4}}};
    for (size_t r = 0; r < sizeof rows / sizeof *rows; r++) {
        tg_node *x = iota(t, TG_F64, 3, s234), *y = tg_unsqueeze(x, rows[r].axis);
        expect_shape(y, rows[r].nd, rows[r].shape);
        for (int64_t i = 0; i < 24; i++) assert_true(tg_value_at(y, i) == (double)i);
        tg_node *z = tg_squeeze(y, rows[r].axis);
        expect_shape(z, 3, s234);
        double seed[24];
        for (int i = 0; i < 24; i++) seed[i] = i * 0.5 - 3;
        assert_int_equal(tg_backward_seeded(z, seed), TG_OK);
        for (int64_t i = 0; i < 24; i++) assert_true(tg_grad_at(x, i) == seed[i]);
        tg_tape_reset(t);
    }
    tg_unsqueeze(iota(t, TG_F64, 3, s234), 4);
    expect_error(t, TG_ERR_ARG, "unsqueeze: axis 4 is out of range for [2,3,4] (-4 to 3)");
    tg_unsqueeze(iota(t, TG_F64, 3, s234), -5);
    expect_error(t, TG_ERR_ARG, "unsqueeze: axis -5 is out of range");
    tg_unsqueeze(iota(t, TG_F64, 4, (const int64_t[]){1, 2, 3, 4}), 0);
    expect_error(t, TG_ERR_SHAPE, "unsqueeze: [1,2,3,4] has 4 dimensions already");
    tg_squeeze(iota(t, TG_F64, 3, s234), 1);
    expect_error(t, TG_ERR_SHAPE, "squeeze: dimension 1 of [2,3,4] is 3, not 1");
    tg_squeeze(iota(t, TG_F64, 3, s234), 3);
    expect_error(t, TG_ERR_ARG, "squeeze: axis 3 is out of range for [2,3,4] (-3 to 2)");
    /* 0-d and 1-D: unsqueeze of a scalar is [1]; squeezing it back is 0-d. */
    tg_node *c = tg_unsqueeze(tg_scalar(t, 2.5), 0);
    expect_shape(c, 1, (const int64_t[]){1});
    expect_shape(tg_squeeze(c, -1), 0, NULL);
    assert_null(tg_unsqueeze(NULL, 0));
    assert_null(tg_squeeze(NULL, 0));
    tg_tape_free(t);
}

static void test_stack(void **state) {
    (void)state;
    tg_tape *t = tg_tape_new();
    const int64_t s23[2] = {2, 3};
    for (int d = 0; d < 2; d++) {
        tg_dtype dt = d ? TG_F32 : TG_F64;
        for (int axis = -3; axis <= 2; axis++) {
            tg_node *in[3];
            for (int m = 0; m < 3; m++) { /* input m holds 100 m + its flat index */
                in[m] = iota(t, dt, 2, s23);
                tg_node *v = tg_scale(tg_add(in[m], tg_const_as(t, dt, 100 * m)), 1);
                memcpy(tg_value(in[m]), tg_value(v), 6 * (d ? sizeof(float) : sizeof(double)));
            }
            tg_node *y = tg_stack(3, in, axis);
            int k = axis < 0 ? axis + 3 : axis;
            int64_t want[3] = {2, 3, 3};
            want[k] = 3;
            for (int i = 0, j = 0; i < 3; i++)
                if (i != k) want[i] = s23[j++];
            expect_shape(y, 3, want);
            /* y[ix] = in[ix[k]][the other two indices], each as 100 m + flat. */
            double seed[18];
            for (int o = 0; o < 18; o++) {
                int ix[3] = {o / (int)(want[1] * want[2]), o / (int)want[2] % (int)want[1],
                             o % (int)want[2]};
                int m = ix[k], rest[2], r = 0;
                for (int i = 0; i < 3; i++)
                    if (i != k) rest[r++] = ix[i];
                double v = 100 * m + rest[0] * 3 + rest[1];
                if (tg_value_at(y, o) != v)
                    fail_msg("stack axis %d: y[%d] = %g, want %g", axis, o, tg_value_at(y, o), v);
                seed[o] = v + 0.25;
            }
            if (d) {
                float sf[18];
                for (int o = 0; o < 18; o++) sf[o] = (float)seed[o];
                assert_int_equal(tg_backward_seeded(y, sf), TG_OK);
            } else {
                assert_int_equal(tg_backward_seeded(y, seed), TG_OK);
            }
            /* Each input element's gradient is the seed where it went, which
             * is its own value + 0.25. */
            for (int m = 0; m < 3; m++)
                for (int i = 0; i < 6; i++)
                    assert_true(tg_grad_at(in[m], i) == tg_value_at(in[m], i) + 0.25);
            tg_tape_reset(t);
        }
    }
    tg_node *a = iota(t, TG_F64, 2, s23), *b = iota(t, TG_F64, 2, (const int64_t[]){3, 2});
    tg_stack(2, (tg_node *[]){a, b}, 0);
    expect_error(t, TG_ERR_SHAPE, "stack: input 1 is [3,2] and input 0 [2,3]: shapes differ");
    a = iota(t, TG_F64, 2, s23);
    tg_stack(2, (tg_node *[]){a, NULL}, 0);
    expect_error(t, TG_ERR_NULL, "stack: input 1 is NULL");
    a = iota(t, TG_F64, 2, s23);
    tg_stack(1, &a, 3);
    expect_error(t, TG_ERR_ARG, "stack: axis 3 is out of range for [2,3] (-3 to 2)");
    assert_null(tg_stack(0, &a, 0));
    assert_null(tg_stack(2, NULL, 0));
    tg_tape_free(t);
}

static void test_keepdim(void **state) {
    (void)state;
    static const struct {
        const char *name;
        tg_node *(*plain)(tg_node *, int), *(*kept)(tg_node *, int);
    } rows[] = {
        {"sum", tg_sum_axis, tg_sum_axis_keepdim},
        {"mean", tg_mean_axis, tg_mean_axis_keepdim},
        {"max", tg_max_axis, tg_max_axis_keepdim},
        {"min", tg_min_axis, tg_min_axis_keepdim},
        {"argmax", tg_argmax_axis, tg_argmax_axis_keepdim},
        {"logsumexp", tg_logsumexp_axis, tg_logsumexp_axis_keepdim},
        {"prod", tg_prod_axis, tg_prod_axis_keepdim},
        {"norm", tg_norm_axis, tg_norm_axis_keepdim},
        {"var", tg_var_axis, tg_var_axis_keepdim},
    };
    tg_tape *t = tg_tape_new();
    for (size_t r = 0; r < sizeof rows / sizeof *rows; r++)
        for (int axis = -3; axis <= 2; axis++) {
            tg_node *x = iota(t, TG_F64, 3, s234);
            tg_node *p = rows[r].plain(x, axis), *y = rows[r].kept(x, axis);
            int64_t want[3] = {2, 3, 4};
            want[axis < 0 ? axis + 3 : axis] = 1;
            expect_shape(y, 3, want);
            for (int64_t i = 0; i < tg_numel(p); i++)
                if (memcmp(&(double){tg_value_at(y, i)}, &(double){tg_value_at(p, i)}, 8))
                    fail_msg("%s_axis_keepdim(x, %d)[%lld] = %.17g, %s_axis gives %.17g",
                             rows[r].name, axis, (long long)i, tg_value_at(y, i), rows[r].name,
                             tg_value_at(p, i));
            tg_tape_reset(t);
        }
    /* The use: each row of a [4,3] x centred by its mean, which broadcasts
     * only with the axis kept; d sum((x - mean)^2)/dx = 2 (x - mean). */
    const int64_t s43[2] = {4, 3};
    tg_node *x = iota(t, TG_F64, 2, s43);
    tg_node *c = tg_sub(x, tg_mean_axis_keepdim(x, 1));
    expect_shape(c, 2, s43);
    for (int i = 0; i < 12; i++) assert_true(tg_value_at(c, i) == (double)(i % 3 - 1));
    assert_int_equal(tg_backward(tg_sum(tg_square(c))), TG_OK);
    for (int i = 0; i < 12; i++) assert_true(tg_grad_at(x, i) == 2.0 * (i % 3 - 1));
    tg_tape_reset(t);
    tg_sum_axis_keepdim(iota(t, TG_F64, 3, s234), 3);
    expect_error(t, TG_ERR_ARG, "sum: axis 3 is out of range for [2,3,4]");
    assert_null(tg_var_axis_keepdim(NULL, 0));
    tg_tape_free(t);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_unsqueeze_squeeze),
        cmocka_unit_test(test_stack),
        cmocka_unit_test(test_keepdim),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
