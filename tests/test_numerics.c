/*
 * Numerical anomaly mode: tg_set_check_numerics(tape, 1) makes the first op
 * whose value, or whose backward rule's gradients, hold a NaN or an Inf set
 * TG_ERR_NUMERIC with a message naming the op and the node. Off by default:
 * then NaN and Inf are ordinary IEEE values and the status stays TG_OK.
 */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "tapegrad.h"

/* Asserts that the status is TG_ERR_NUMERIC and the message names the op,
 * "node <index>", and what (value or gradient). */
static void assert_numeric(tg_tape *t, const char *op, size_t node, const char *what) {
    const char *msg = tg_status_message(t);
    char want[64];
    snprintf(want, sizeof want, "node %zu", node);
    if (tg_status(t) != TG_ERR_NUMERIC || strncmp(msg, op, strlen(op)) != 0 ||
        msg[strlen(op)] != ':' || !strstr(msg, want) || !strstr(msg, what))
        fail_msg("status %s, message \"%s\"; want TG_ERR_NUMERIC naming %s, %s, %s",
                 tg_status_name(tg_status(t)), msg, op, want, what);
}

/* Off by default: log(-1) is NaN, 1/0 is Inf, d sqrt(x)/dx at 0 is Inf,
 * and nothing is reported. */
static void test_off_by_default(void **state) {
    (void)state;
    tg_tape *t = tg_tape_new();
    assert_non_null(t);
    tg_node *x = tg_scalar(t, -1);
    tg_node *l = tg_log(x);
    assert_true(isnan(tg_value_scalar(l)));
    tg_node *d = tg_div(tg_const(t, 1), tg_scalar(t, 0));
    assert_true(isinf(tg_value_scalar(d)));
    tg_node *z = tg_scalar(t, 0);
    tg_node *s = tg_sqrt(z);
    assert_int_equal(tg_backward(s), TG_OK);
    assert_true(isinf(tg_grad_scalar(z)));
    assert_int_equal(tg_status(t), TG_OK);
    assert_string_equal(tg_status_message(t), "");
    /* Turned on and off again: still nothing. */
    tg_set_check_numerics(t, 1);
    tg_set_check_numerics(t, 0);
    tg_node *l2 = tg_log(tg_scalar(t, -2));
    assert_true(isnan(tg_value_scalar(l2)));
    assert_int_equal(tg_status(t), TG_OK);
    tg_tape_free(t);
}

/* log of -1: a NaN value, reported by the op that made it. */
static void test_log_negative(void **state) {
    (void)state;
    tg_tape *t = tg_tape_new();
    tg_set_check_numerics(t, 1);
    tg_node *x = tg_scalar(t, -1); /* node 0 */
    tg_node *y = tg_exp(x);        /* node 1: finite */
    assert_int_equal(tg_status(t), TG_OK);
    tg_node *l = tg_log(tg_neg(y)); /* node 2 neg, node 3 log */
    assert_non_null(l);
    assert_numeric(t, "log", 3, "value");
    /* Sticky: the next op returns the poison node, the message stays. */
    tg_node *after = tg_add(l, x);
    assert_true(isnan(tg_value_scalar(after)));
    assert_int_equal(tg_tape_size(t), 4);
    assert_numeric(t, "log", 3, "value");
    tg_tape_free(t);
}

/* log of 0 is -Inf: Inf counts as well as NaN. */
static void test_log_zero(void **state) {
    (void)state;
    tg_tape *t = tg_tape_new();
    tg_set_check_numerics(t, 1);
    tg_log(tg_scalar(t, 0));
    assert_numeric(t, "log", 1, "value");
    tg_tape_free(t);
}

/* 1/0 = Inf from a binary op. */
static void test_div_by_zero(void **state) {
    (void)state;
    tg_tape *t = tg_tape_new();
    tg_set_check_numerics(t, 1);
    tg_node *one = tg_const(t, 1), *zero = tg_scalar(t, 0);
    tg_node *q = tg_div(one, zero);
    assert_int_equal(tg_node_index(q), 2);
    assert_numeric(t, "div", 2, "value");
    tg_tape_free(t);
}

/* sqrt at 0 is finite (0) forward; its backward rule 0.5 / sqrt(x) gives an
 * Inf gradient, reported by the op whose backward rule made it. */
static void test_sqrt_zero_backward(void **state) {
    (void)state;
    tg_tape *t = tg_tape_new();
    tg_set_check_numerics(t, 1);
    tg_node *x = tg_scalar(t, 0);
    tg_node *s = tg_sqrt(x);                        /* node 1: value 0 */
    tg_node *f = tg_add(s, tg_const(t, 1));         /* node 3 */
    assert_int_equal(tg_status(t), TG_OK);
    assert_true(tg_value_scalar(f) == 1.0);
    assert_int_equal(tg_backward(f), TG_ERR_NUMERIC);
    assert_numeric(t, "sqrt", 1, "gradient");
    tg_tape_free(t);
}

/* pow(x, 0.5) at 0: the same through a binary op's backward rule, float32. */
static void test_pow_backward_f32(void **state) {
    (void)state;
    tg_tape *t = tg_tape_new();
    tg_set_check_numerics(t, 1);
    const int64_t shape[1] = {3};
    const float v[3] = {4, 0, 1};
    tg_node *x = tg_tensor(t, TG_F32, 1, shape, v);
    tg_node *p = tg_pow(x, 0.5); /* node 1 is the constant 0.5, node 2 pow */
    tg_node *f = tg_sum(p);
    assert_int_equal(tg_status(t), TG_OK);
    assert_int_equal(tg_backward(f), TG_ERR_NUMERIC);
    assert_numeric(t, "pow", tg_node_index(p), "gradient");
    tg_tape_free(t);
}

/* One bad element among many in a float32 tensor: exp overflows past
 * FLT_MAX at 100 (not in float64). */
static void test_tensor_one_element(void **state) {
    (void)state;
    for (int dtype = TG_F32; dtype <= TG_F64; dtype++) {
        tg_tape *t = tg_tape_new();
        tg_set_check_numerics(t, 1);
        const int64_t shape[2] = {4, 8};
        double d[32];
        float f[32];
        for (int i = 0; i < 32; i++) d[i] = f[i] = (float)(i % 5) * 0.25f;
        d[29] = f[29] = 100;
        tg_node *x = tg_input(t, (tg_dtype)dtype, 2, shape, dtype == TG_F64 ? (void *)d : (void *)f);
        tg_node *s = tg_sigmoid(x);
        tg_node *e = tg_exp(x);
        if (dtype == TG_F32) {
            assert_numeric(t, "exp", tg_node_index(e), "value");
        } else {
            assert_int_equal(tg_status(t), TG_OK);
            assert_true(isfinite(tg_value_at(e, 29)));
        }
        (void)s;
        tg_tape_free(t);
    }
}

/* The first anomaly wins: a later one does not overwrite the message. */
static void test_first_wins(void **state) {
    (void)state;
    tg_tape *t = tg_tape_new();
    tg_set_check_numerics(t, 1);
    tg_node *x = tg_scalar(t, -1);
    tg_node *a = tg_sqrt(x); /* node 1: NaN */
    tg_node *b = tg_div(tg_const(t, 1), tg_const(t, 0));
    (void)a;
    (void)b;
    assert_numeric(t, "sqrt", 1, "value");
    tg_tape_free(t);
}

/* Replay: a graph built on good inputs reports once new inputs make a NaN,
 * naming the op and node on replay; after a reset the setting holds. */
static void test_replay(void **state) {
    (void)state;
    tg_tape *t = tg_tape_new();
    tg_set_check_numerics(t, 1);
    const int64_t shape[1] = {4};
    double in[4] = {1, 2, 3, 4};
    tg_node *x = tg_input(t, TG_F64, 1, shape, in);
    tg_node *w = tg_tensor(t, TG_F64, 1, shape, in);
    tg_node *l = tg_log(x);                 /* node 2 */
    tg_node *f = tg_sum(tg_mul(l, w));      /* nodes 3, 4 */
    assert_int_equal(tg_backward(f), TG_OK);
    for (int step = 0; step < 3; step++) {
        double *xv = tg_value(x);
        xv[0] = step + 1.0;
        assert_int_equal(tg_forward(t), TG_OK);
        tg_zero_grad(t);
        assert_int_equal(tg_backward(f), TG_OK);
    }
    ((double *)tg_value(x))[2] = -3;
    assert_int_equal(tg_forward(t), TG_ERR_NUMERIC);
    assert_numeric(t, "log", tg_node_index(l), "value");
    /* A reset clears the status; the tape keeps checking. */
    tg_tape_reset(t);
    assert_int_equal(tg_status(t), TG_OK);
    tg_node *y = tg_scalar(t, -5);
    tg_log(y);
    assert_numeric(t, "log", 1, "value");
    tg_tape_free(t);
}

/* Finite results everywhere: checking changes no value, gradient or status. */
static void test_finite_unaffected(void **state) {
    (void)state;
    double vals[2][2];
    for (int on = 0; on <= 1; on++) {
        tg_tape *t = tg_tape_new();
        tg_set_check_numerics(t, on);
        const int64_t shape[2] = {2, 3};
        const double d[6] = {0.5, -1, 2, 3, -0.25, 1};
        tg_node *x = tg_tensor(t, TG_F64, 2, shape, d);
        tg_node *f = tg_mean(tg_tanh(tg_softmax(tg_mul(x, x), 1)));
        assert_int_equal(tg_backward(f), TG_OK);
        vals[on][0] = tg_value_scalar(f);
        vals[on][1] = tg_grad_at(x, 4);
        tg_tape_free(t);
    }
    assert_memory_equal(vals[0], vals[1], sizeof vals[0]);
}

/* Anything of a NULL tape is a no-op. */
static void test_null(void **state) {
    (void)state;
    tg_set_check_numerics(NULL, 1);
}

/* Messages name the op with its operands, as a user writes them. */
static void test_messages_name_operands(void **state) {
    (void)state;
    static const struct {
        const char *want;
        int tensor; /* 0: scalars; 1: 1-D tensors [1, 0] and [2, 0]; 2: backward */
    } cases[] = {
        {"log: node 1: the value of log(-1) is NaN", 0},
        {"div: node 2: element 1 of the value of div(0, 0) is NaN", 1},
        {"sqrt: node 1: the gradient of input 0 of sqrt(0) is inf", 2},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        tg_tape *t = tg_tape_new();
        tg_set_check_numerics(t, 1);
        if (cases[i].tensor == 0) {
            tg_log(tg_scalar(t, -1));
        } else if (cases[i].tensor == 1) {
            int64_t n = 2;
            tg_div(tg_tensor(t, TG_F64, 1, &n, (double[]){1, 0}),
                   tg_tensor(t, TG_F64, 1, &n, (double[]){2, 0}));
        } else {
            tg_backward(tg_sqrt(tg_scalar(t, 0)));
        }
        assert_int_equal(tg_status(t), TG_ERR_NUMERIC);
        if (strcmp(tg_status_message(t), cases[i].want) != 0)
            fail_msg("message \"%s\", want \"%s\"", tg_status_message(t), cases[i].want);
        tg_tape_free(t);
    }
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_messages_name_operands),
        cmocka_unit_test(test_off_by_default),  cmocka_unit_test(test_log_negative),
        cmocka_unit_test(test_log_zero),        cmocka_unit_test(test_div_by_zero),
        cmocka_unit_test(test_sqrt_zero_backward), cmocka_unit_test(test_pow_backward_f32),
        cmocka_unit_test(test_tensor_one_element), cmocka_unit_test(test_first_wins),
        cmocka_unit_test(test_replay),          cmocka_unit_test(test_finite_unaffected),
        cmocka_unit_test(test_null),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
