/*
 * User errors are values: each yields the right non-zero status and a message
 * naming the op (and the shapes where there are any); nothing crashes, and a
 * failed tape can still be freed.
 */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include <tapegrad.h>

/* cmocka's assert_float_equal compares in float; this compares doubles. */
#define assert_near(a, b, tol) assert_near_at((a), (b), (tol), __LINE__)
static void assert_near_at(double a, double b, double tol, int line) {
    if (!(fabs(a - b) <= tol)) fail_msg("line %d: %.17g != %.17g (tolerance %g)", line, a, b, tol);
}

/* Asserts that t failed with code and that its message starts with prefix. */
static void expect_error(tg_tape *t, int code, const char *prefix) {
    const char *msg = tg_status_message(t);
    if (tg_status(t) != code || strncmp(msg, prefix, strlen(prefix)) != 0)
        fail_msg("want %s \"%s...\", got %s \"%s\"", tg_status_name(code), prefix,
                 tg_status_name(tg_status(t)), msg);
}

static tg_node *tensor2(tg_tape *t, int64_t r, int64_t c) {
    const int64_t s[2] = {r, c};
    return tg_tensor(t, TG_F64, 2, s, NULL);
}

/* ------------------------------------------------- a failing allocator -- */

/* Passes allocations through to the C library until `left` reaches 0, then
 * fails every one; frees always pass through, so tapes created under it may
 * be freed after tg_set_allocator(NULL). */
static struct budget {
    long left;   /* allocations that will still succeed */
    long only;   /* when > 0: fail only this one (counting from 1), not the rest */
    long calls;  /* allocations asked for */
    long failed; /* allocations refused */
} budget;

static bool refuse(void) {
    budget.calls++;
    bool no = budget.only > 0 ? budget.calls == budget.only : budget.left <= 0;
    if (no)
        budget.failed++;
    else
        budget.left--;
    return no;
}
static void *fail_malloc(size_t n, void *ctx) {
    (void)ctx;
    return refuse() ? NULL : malloc(n);
}
static void *fail_realloc(void *p, size_t n, void *ctx) {
    (void)ctx;
    return refuse() ? NULL : realloc(p, n);
}
static void pass_free(void *p, void *ctx) {
    (void)ctx;
    free(p);
}
static const tg_allocator failing = {fail_malloc, fail_realloc, pass_free, NULL};

/* A user op: y = 3 x. */
static void triple_forward(tg_args *a) {
    const double *x = a->in[0].value;
    double *y = a->out.value;
    for (int64_t i = 0; i < (int64_t)a->out.numel; i++) y[i] = 3 * x[i];
}
static void triple_backward(tg_args *a) {
    double *gx = a->in[0].grad;
    const double *g = a->out.grad;
    if (gx)
        for (int64_t i = 0; i < (int64_t)a->out.numel; i++) gx[i] += 3 * g[i];
}

/* Runs first, before anything else touches the library: an allocation
 * failure during the library's first use (the op registry is set up then)
 * must not leave it broken for the rest of the process. */
static void test_nomem_on_first_use(void **state) {
    (void)state;
    budget = (struct budget){0};
    tg_set_allocator(&failing);
    tg_tape *t = tg_tape_new();
    tg_set_allocator(NULL);
    assert_null(t);
    assert_true(budget.failed > 0);
    /* A user op registered while the built-ins could not be indexed (the
     * second allocation fails, later ones would not) must not take a
     * built-in's name and index. */
    static const tg_op fake_add = {"add", 2, NULL, triple_forward, triple_backward, NULL, NULL};
    budget = (struct budget){.left = 1L << 30, .only = 2};
    tg_set_allocator(&failing);
    int rc = tg_op_register(&fake_add);
    tg_set_allocator(NULL);
    assert_int_not_equal(rc, TG_OK); /* TG_ERR_NOMEM (TG_ERR_ARG were "add" indexed already) */
    t = tg_tape_new();
    assert_non_null(t);
    assert_true(tg_op_find("matmul") != NULL);
    assert_true(tg_op_find("add") != &fake_add);
    assert_ptr_equal(tg_op_at(0), tg_op_find("add"));
    assert_true(tg_op_count() > 20);
    tg_node *f = tg_mul(tg_add(tg_scalar(t, -2), tg_scalar(t, 5)), tg_scalar(t, -4));
    assert_true(tg_value_scalar(f) == -12);
    tg_tape_free(t);
}

/* One workload that allocates in every way a tape does: the tape itself, node
 * chunks and their directory, data blocks for values (tensors larger than a
 * block), and gradients during the sweep. Returns the tape's final status. */
static int workload(void) {
    tg_tape *t = tg_tape_new();
    if (!t) return TG_ERR_NOMEM;
    const int64_t big[2] = {400, 400}; /* 1.28 MB of float64: a block each */
    tg_node *a = tg_tensor(t, TG_F64, 2, big, NULL);
    tg_node *b = tg_input(t, TG_F64, 2, big, NULL);
    tg_node *s = tg_scalar(t, 0.5);
    tg_node *f = tg_sum(tg_mul(tg_add(a, b), s));
    for (int i = 0; i < 3 * 4096; i++) f = tg_add(f, s); /* several node chunks */
    const int64_t small[2] = {20, 30};
    tg_node *m = tg_tensor(t, TG_F64, 2, small, NULL);
    tg_node *g = tg_mean(tg_sigmoid(tg_matmul(m, tg_transpose(m))));
    f = tg_add(f, g);
    int rc = tg_backward(f);
    assert_int_equal(rc, tg_status(t));
    if (rc == TG_OK) {
        assert_near(tg_value_scalar(f), 3 * 4096 * 0.5 + 0.5, 1e-9);
        assert_near(tg_grad_scalar(s), 3 * 4096 + 0.0, 1e-9);
    } else {
        assert_int_equal(rc, TG_ERR_NOMEM);
        assert_true(strlen(tg_status_message(t)) > 0);
        assert_true(strstr(tg_status_message(t), "out of memory") != NULL);
        /* The failed tape stays usable as a value: ops return poison. */
        tg_node *p = tg_neg(f);
        assert_non_null(p);
        assert_int_equal(tg_status(t), TG_ERR_NOMEM);
    }
    tg_tape_free(t);
    return rc;
}

/* Fail the N-th allocation for every N the workload makes: each run ends in
 * TG_ERR_NOMEM (or tg_tape_new() == NULL), never in a crash or a leak. */
static void test_nomem(void **state) {
    (void)state;
    budget = (struct budget){.left = 1L << 30};
    tg_set_allocator(&failing);
    assert_int_equal(workload(), TG_OK);
    long total = budget.calls;
    assert_true(total > 4);
    for (long n = 0; n < total; n++) {
        budget = (struct budget){.left = n};
        int rc = workload();
        assert_int_equal(rc, TG_ERR_NOMEM);
        assert_true(budget.failed > 0);
    }
    tg_set_allocator(NULL);
    assert_int_equal(workload(), TG_OK);
}

/* ------------------------------------------------------------ op errors -- */

static void test_matmul_shapes(void **state) {
    (void)state;
    tg_tape *t = tg_tape_new();
    tg_matmul(tensor2(t, 2, 3), tensor2(t, 4, 5));
    assert_int_equal(tg_status(t), TG_ERR_SHAPE);
    assert_string_equal(tg_status_message(t), "matmul: [2,3] x [4,5]: inner dimensions differ");
    tg_tape_reset(t);
    tg_matmul(tensor2(t, 2, 3), tg_scalar(t, 1));
    expect_error(t, TG_ERR_SHAPE, "matmul: [2,3] x []");
    tg_tape_reset(t);
    const int64_t s3[1] = {3};
    tg_transpose(tg_tensor(t, TG_F64, 1, s3, NULL));
    expect_error(t, TG_ERR_SHAPE, "transpose: [3]");
    tg_tape_free(t);
}

static void test_broadcast_mismatch(void **state) {
    (void)state;
    tg_tape *t = tg_tape_new();
    const int64_t s4[1] = {4};
    tg_add(tensor2(t, 2, 3), tg_tensor(t, TG_F64, 1, s4, NULL));
    expect_error(t, TG_ERR_SHAPE, "add: [2,3] and [4]: ");
    tg_tape_reset(t);
    tg_mul(tensor2(t, 2, 3), tensor2(t, 3, 3));
    expect_error(t, TG_ERR_SHAPE, "mul: [2,3] and [3,3]: ");
    tg_tape_reset(t);
    tg_mse(tensor2(t, 4, 2), tensor2(t, 4, 1)); /* costs do not broadcast */
    expect_error(t, TG_ERR_SHAPE, "mse: [4,2] and [4,1]");
    tg_tape_reset(t);
    tg_softmax_xent(tensor2(t, 4, 3), tensor2(t, 3, 4));
    expect_error(t, TG_ERR_SHAPE, "softmax_xent: [4,3] and [3,4]");
    tg_tape_free(t);
}

static void test_null_inputs(void **state) {
    (void)state;
    tg_tape *t = tg_tape_new();
    tg_node *x = tg_scalar(t, 1);
    tg_add(x, NULL);
    expect_error(t, TG_ERR_NULL, "add: input 1 is NULL");
    tg_tape_reset(t);
    x = tg_scalar(t, 1);
    tg_matmul(NULL, x);
    expect_error(t, TG_ERR_NULL, "matmul: input 0 is NULL");
    tg_tape_reset(t);
    const int64_t s2[2] = {2, 2};
    tg_view(t, TG_F64, 2, s2, NULL, NULL);
    expect_error(t, TG_ERR_NULL, "view: value is NULL");
    tg_tape_reset(t);
    tg_tensor(t, TG_F64, 2, NULL, NULL);
    expect_error(t, TG_ERR_NULL, "tensor: shape is NULL");
    tg_tape_reset(t);
    x = tg_scalar(t, 1);
    tg_backward_seeded(tg_mul(x, x), NULL);
    expect_error(t, TG_ERR_NULL, "backward_seeded: seed is NULL");
    tg_tape_free(t);
    /* With no node at all there is no tape to record on: NULL comes back. */
    assert_null(tg_sigmoid(NULL));
    assert_null(tg_add(NULL, NULL));
    assert_null(tg_reshape(NULL, 1, (const int64_t[]){1}));
    assert_null(tg_sum_axis(NULL, 0));
    assert_null(tg_softmax(NULL, 0));
    assert_null(tg_scalar(NULL, 1));
    assert_null(tg_call("sin", NULL, NULL));
    assert_int_equal(tg_backward(NULL), TG_ERR_NULL);
    assert_int_equal(tg_forward(NULL), TG_ERR_NULL);
    assert_int_equal(tg_status(NULL), TG_ERR_NULL);
    assert_non_null(tg_status_message(NULL));
    tg_zero_grad(NULL);
    tg_tape_reset(NULL);
    tg_tape_free(NULL);
    assert_true(isnan(tg_value_scalar(NULL)));
    assert_null(tg_value(NULL));
}

static void test_dtype_mismatch(void **state) {
    (void)state;
    tg_tape *t = tg_tape_new();
    const int64_t s2[1] = {2};
    tg_node *f = tg_tensor(t, TG_F32, 1, s2, NULL), *d = tg_tensor(t, TG_F64, 1, s2, NULL);
    tg_mul(f, d);
    assert_int_equal(tg_status(t), TG_ERR_DTYPE);
    assert_string_equal(tg_status_message(t), "mul: float32 [2] and float64 [2]: dtypes differ");
    tg_tape_reset(t);
    f = tg_tensor(t, TG_F32, 1, s2, NULL);
    tg_pow(f, 2); /* the constant exponent follows x's dtype: fine */
    tg_add(f, tg_scalar(t, 1)); /* a float64 scalar with a float32 tensor: not */
    expect_error(t, TG_ERR_DTYPE, "add: float32 [2] and float64 []");
    tg_tape_reset(t);
    tg_tensor(t, (tg_dtype)7, 1, s2, NULL);
    expect_error(t, TG_ERR_DTYPE, "tensor: unknown dtype 7");
    tg_tape_free(t);
}

static void test_different_tapes(void **state) {
    (void)state;
    tg_tape *t1 = tg_tape_new(), *t2 = tg_tape_new();
    tg_node *a = tg_scalar(t1, 1);
    tg_node *b = tg_tensor(t2, TG_F64, 2, (const int64_t[]){2, 2}, NULL);
    tg_node *p = tg_add(a, b);
    assert_ptr_equal(tg_node_tape(p), t1);
    expect_error(t1, TG_ERR_TAPE, "add: inputs [] and [2,2] are on different tapes");
    assert_int_equal(tg_status(t2), TG_OK); /* only the first input's tape fails */
    tg_matmul(b, tg_tensor(t1, TG_F64, 2, (const int64_t[]){2, 2}, NULL));
    expect_error(t2, TG_ERR_TAPE, "matmul: ");
    tg_tape_free(t1);
    tg_tape_free(t2);
}

static void test_backward_nonscalar(void **state) {
    (void)state;
    tg_tape *t = tg_tape_new();
    tg_node *y = tg_sigmoid(tensor2(t, 2, 3));
    assert_int_equal(tg_backward(y), TG_ERR_STATE);
    expect_error(t, TG_ERR_STATE, "backward: output has shape [2,3]");
    assert_null(tg_grad(y));
    tg_tape_reset(t);
    /* A one-element tensor is a scalar for this purpose. */
    tg_node *x = tensor2(t, 1, 1);
    assert_int_equal(tg_backward(tg_exp(x)), TG_OK);
    assert_near(tg_grad_at(x, 0), 1.0, 0);
    tg_tape_free(t);
}

static void test_bad_axis(void **state) {
    (void)state;
    tg_tape *t = tg_tape_new();
    tg_sum_axis(tensor2(t, 2, 3), 2);
    expect_error(t, TG_ERR_ARG, "sum: axis 2 is out of range for [2,3]");
    tg_tape_reset(t);
    tg_mean_axis(tensor2(t, 2, 3), -3);
    expect_error(t, TG_ERR_ARG, "mean: axis -3 is out of range for [2,3]");
    tg_tape_reset(t);
    tg_softmax(tensor2(t, 2, 3), 5);
    expect_error(t, TG_ERR_ARG, "softmax: axis 5");
    tg_tape_reset(t);
    tg_log_softmax(tg_scalar(t, 1), 0); /* a 0-d tensor has no axis */
    expect_error(t, TG_ERR_ARG, "log_softmax: axis 0 is out of range for []");
    tg_tape_reset(t);
    /* Negative axes count from the end and are fine. */
    tg_node *s = tg_sum_axis(tensor2(t, 2, 3), -1);
    assert_int_equal(tg_status(t), TG_OK);
    assert_int_equal(tg_ndim(s), 1);
    assert_int_equal(tg_numel(s), 2);
    tg_tape_free(t);
}

static void test_bad_reshape(void **state) {
    (void)state;
    tg_tape *t = tg_tape_new();
    tg_reshape(tensor2(t, 2, 3), 2, (const int64_t[]){4, 2});
    assert_int_equal(tg_status(t), TG_ERR_SHAPE);
    assert_string_equal(tg_status_message(t), "reshape: [2,3] to [4,2]: sizes differ");
    tg_tape_reset(t);
    tg_reshape(tensor2(t, 2, 3), 2, (const int64_t[]){-1, -1});
    expect_error(t, TG_ERR_SHAPE, "reshape: [2,3] to ");
    tg_tape_reset(t);
    tg_reshape(tensor2(t, 2, 3), 2, (const int64_t[]){-1, 4}); /* 6 is not a multiple of 4 */
    expect_error(t, TG_ERR_SHAPE, "reshape: [2,3] to ");
    tg_tape_reset(t);
    tg_reshape(tensor2(t, 2, 3), 2, (const int64_t[]){0, 6});
    expect_error(t, TG_ERR_SHAPE, "reshape: [2,3] to [0,6]");
    tg_tape_reset(t);
    tg_reshape(tensor2(t, 2, 3), 5, (const int64_t[]){1, 1, 2, 3, 1});
    expect_error(t, TG_ERR_SHAPE, "reshape: [2,3] to 5 dimensions");
    tg_tape_reset(t);
    tg_reshape(tensor2(t, 2, 3), -1, (const int64_t[]){6});
    expect_error(t, TG_ERR_SHAPE, "reshape: [2,3] to -1 dimensions");
    tg_tape_reset(t);
    tg_reshape(tensor2(t, 2, 3), 1, NULL);
    expect_error(t, TG_ERR_NULL, "reshape: shape is NULL");
    tg_tape_reset(t);
    tg_node *r = tg_reshape(tensor2(t, 2, 3), 3, (const int64_t[]){3, -1, 1});
    assert_int_equal(tg_status(t), TG_OK);
    int64_t got[4];
    assert_int_equal(tg_shape(r, got), 3);
    assert_true(got[0] == 3 && got[1] == 2 && got[2] == 1);
    tg_tape_free(t);
}

/* Every tensor constructor refuses the same bad shapes, naming itself. */
static void test_bad_constructor_shapes(void **state) {
    (void)state;
    static const struct {
        int ndim;
        int64_t shape[5];
        const char *why;
    } bad[] = {
        {5, {1, 1, 1, 1, 1}, "5 dimensions; at most 4"},
        {-1, {1}, "-1 dimensions"},
        {2, {3, 0}, "dimension 1 is 0;"},
        {1, {-2}, "dimension 0 is -2;"},
        {1, {(int64_t)1 << 40}, "dimension 0 is 1099511627776;"},
        {3, {1 << 20, 1 << 20, 1 << 20}, "dimension 1 is 1048576;"}, /* numel overflows */
    };
    double buf[4] = {0}, gbuf[4] = {0};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        for (int kind = 0; kind < 3; kind++) {
            tg_tape *t = tg_tape_new();
            tg_node *n;
            const char *who;
            if (kind == 0) {
                n = tg_tensor(t, TG_F64, bad[i].ndim, bad[i].shape, NULL);
                who = "tensor: ";
            } else if (kind == 1) {
                n = tg_input(t, TG_F32, bad[i].ndim, bad[i].shape, NULL);
                who = "input: ";
            } else {
                n = tg_view(t, TG_F64, bad[i].ndim, bad[i].shape, buf, gbuf);
                who = "view: ";
            }
            assert_non_null(n); /* the poison node */
            assert_int_equal(tg_status(t), TG_ERR_SHAPE);
            assert_int_equal(tg_tape_size(t), 0);
            const char *msg = tg_status_message(t);
            if (strncmp(msg, who, strlen(who)) != 0 || !strstr(msg, bad[i].why))
                fail_msg("case %zu: want \"%s...%s...\", got \"%s\"", i, who, bad[i].why, msg);
            tg_tape_free(t);
        }
    }
}

static void test_unknown_op(void **state) {
    (void)state;
    tg_tape *t = tg_tape_new();
    tg_node *x = tg_scalar(t, 0.5);
    tg_node *y = tg_call("sin", x, NULL);
    assert_int_equal(tg_status(t), TG_OK);
    assert_true(tg_value_scalar(y) == sin(0.5));
    tg_call("frobnicate", x, NULL);
    assert_int_equal(tg_status(t), TG_ERR_UNKNOWN_OP);
    assert_string_equal(tg_status_message(t), "unknown op 'frobnicate'"); /* nothing close */
    tg_tape_reset(t);
    tg_call("sigmod", tg_scalar(t, 0.5), NULL); /* a misspelling: the closest op */
    assert_string_equal(tg_status_message(t), "unknown op 'sigmod' (did you mean sigmoid?)");
    tg_tape_reset(t);
    tg_call("SIN", tg_scalar(t, 0.5), NULL);
    assert_string_equal(tg_status_message(t), "unknown op 'SIN' (did you mean sin?)");
    tg_tape_reset(t);
    x = tg_scalar(t, 0.5);
    tg_call("sin", x, x);
    expect_error(t, TG_ERR_ARG, "sin: takes 1 input");
    tg_tape_reset(t);
    x = tg_scalar(t, 0.5);
    tg_call("add", x, NULL);
    expect_error(t, TG_ERR_ARG, "add: takes 2 inputs");
    tg_tape_reset(t);
    x = tg_scalar(t, 0.5);
    tg_call(NULL, x, NULL);
    expect_error(t, TG_ERR_UNKNOWN_OP, "unknown op");
    assert_null(tg_op_find("frobnicate"));
    assert_null(tg_op_find(NULL));
    assert_null(tg_op_at(-1));
    assert_null(tg_op_at(tg_op_count()));
    tg_tape_free(t);
}

static void test_register_duplicate(void **state) {
    (void)state;
    static const tg_op triple = {"errors_test_triple", 1, NULL, triple_forward, triple_backward, NULL, NULL};
    static const tg_op again = {"errors_test_triple", 1, NULL, triple_forward, triple_backward, NULL, NULL};
    static const tg_op fake_add = {"add", 2, NULL, triple_forward, triple_backward, NULL, NULL};
    static const tg_op no_name = {"", 1, NULL, triple_forward, triple_backward, NULL, NULL};
    static const tg_op four = {"errors_test_four", 4, NULL, triple_forward, triple_backward, NULL, NULL};
    static const tg_op no_fwd = {"errors_test_nofwd", 1, NULL, NULL, triple_backward, NULL, NULL};
    static const tg_op unregistered = {"errors_test_unreg", 1, NULL, triple_forward,
                                       triple_backward, NULL, NULL};
    int count = tg_op_count();
    assert_int_equal(tg_op_register(&fake_add), TG_ERR_ARG);
    assert_int_equal(tg_op_register(NULL), TG_ERR_ARG);
    assert_int_equal(tg_op_register(&no_name), TG_ERR_ARG);
    assert_int_equal(tg_op_register(&four), TG_ERR_ARG);
    assert_int_equal(tg_op_register(&no_fwd), TG_ERR_ARG);
    assert_int_equal(tg_op_count(), count);
    assert_int_equal(tg_op_register(&triple), TG_OK);
    assert_int_equal(tg_op_register(&again), TG_ERR_ARG);
    assert_int_equal(tg_op_register(&triple), TG_ERR_ARG);
    assert_int_equal(tg_op_count(), count + 1);
    assert_ptr_equal(tg_op_at(count), &triple);
    assert_ptr_equal(tg_op_find("errors_test_triple"), &triple);
    assert_ptr_equal(tg_op_find("add"), tg_op_at(0));

    /* The registered op works through tg_call and tg_apply, with a gradient. */
    tg_tape *t = tg_tape_new();
    tg_node *x = tg_scalar(t, 2);
    tg_node *y = tg_apply(&triple, tg_call("errors_test_triple", x, NULL), NULL);
    assert_int_equal(tg_backward(y), TG_OK);
    assert_true(tg_value_scalar(y) == 18 && tg_grad_scalar(x) == 9);
    assert_string_equal(tg_node_op_name(y), "errors_test_triple");
    /* An op that was never registered, or a look-alike of a registered one. */
    tg_apply(&unregistered, x, NULL);
    expect_error(t, TG_ERR_UNKNOWN_OP, "errors_test_unreg: op is not registered");
    tg_tape_reset(t);
    x = tg_scalar(t, 2);
    tg_apply(&again, x, NULL);
    expect_error(t, TG_ERR_UNKNOWN_OP, "errors_test_triple: op is not registered");
    tg_tape_reset(t);
    x = tg_scalar(t, 2);
    tg_apply(NULL, x, NULL);
    expect_error(t, TG_ERR_NULL, "apply: op is NULL");
    tg_tape_reset(t);
    x = tg_scalar(t, 2);
    tg_apply(&triple, x, x);
    expect_error(t, TG_ERR_ARG, "errors_test_triple: takes 1 input, given 2");
    tg_tape_free(t);
}

/* With numerics checking on, the first non-finite value names its op. */
static void test_check_numerics(void **state) {
    (void)state;
    tg_tape *t = tg_tape_new();
    tg_node *x = tg_log(tg_const(t, 0)); /* -inf, allowed: checking is off */
    assert_true(isinf(tg_value_scalar(x)) && tg_value_scalar(x) < 0);
    assert_int_equal(tg_status(t), TG_OK);
    tg_set_check_numerics(t, 1);
    tg_node *y = tg_scalar(t, -1);
    tg_sqrt(y);
    expect_error(t, TG_ERR_NUMERIC, "sqrt: node ");
    tg_tape_free(t);
}

/* A node recorded before tg_tape_reset() is refused by ops, backward and the
 * accessors, while its position is past the tape's end. */
static void test_stale_nodes(void **state) {
    (void)state;
    tg_tape *t = tg_tape_new();
    tg_node *x = tg_scalar(t, 1.0);
    tg_node *y = tg_scalar(t, 4.0);
    tg_node *f = tg_mul(x, y);
    tg_tape_reset(t);
    /* nothing recorded since: y and f are past the end */
    tg_node *r = tg_add(y, y);
    assert_int_equal(tg_status(t), TG_ERR_STATE);
    assert_true(isnan(tg_value_scalar(r))); /* the poison node, not 8 */
    assert_non_null(strstr(tg_status_message(t), "add: input 0"));
    assert_non_null(strstr(tg_status_message(t), "tg_tape_reset"));
    tg_tape_reset(t);
    assert_int_equal(tg_backward(f), TG_ERR_STATE);
    assert_non_null(strstr(tg_status_message(t), "backward"));
    tg_tape_reset(t);
    assert_null(tg_value(f));
    assert_int_equal(tg_status(t), TG_ERR_STATE);
    assert_non_null(strstr(tg_status_message(t), "value: node 2"));
    tg_tape_reset(t);
    assert_null(tg_grad(x));
    assert_int_equal(tg_status(t), TG_ERR_STATE);
    tg_tape_reset(t);
    assert_true(isnan(tg_grad_scalar(y)));
    assert_int_equal(tg_status(t), TG_ERR_STATE);
    /* a node recorded since the reset is fine, and so is x once its slot is
     * live again (the case the header says cannot be detected) */
    tg_tape_reset(t);
    tg_node *z = tg_scalar(t, 2.0);
    assert_true(tg_value_scalar(tg_add(z, z)) == 4.0);
    assert_int_equal(tg_status(t), TG_OK);
    tg_tape_free(t);
}

/* y = a*b + c as one user op of arity 3: the third input is reached by the
 * shape rule, the forward kernel, the sweep and the accessors. */
static void fma_forward(tg_args *r) {
    const double *a = r->in[0].value, *b = r->in[1].value,
                 *c = r->in[2].value;
    double *y = r->out.value;
    for (int64_t i = 0; i < (int64_t)r->out.numel; i++) y[i] = a[i] * b[i] + c[i];
}
static void fma_backward(tg_args *r) {
    const double *g = r->out.grad;
    for (int k = 0; k < 3; k++) {
        double *gk = r->in[k].grad;
        if (!gk) continue;
        const double *a = r->in[0].value, *b = r->in[1].value;
        for (int64_t i = 0; i < (int64_t)r->out.numel; i++) gk[i] += g[i] * (k == 0 ? b[i] : k == 1 ? a[i] : 1);
    }
}
static int fma_shape(tg_node *out, char *why, size_t len) {
    for (int k = 1; k < 3; k++)
        if (tg_numel(tg_node_input(out, k)) != tg_numel(tg_node_input(out, 0))) {
            snprintf(why, len, "input %d differs in size", k);
            return TG_ERR_SHAPE;
        }
    return TG_OK;
}

static void test_three_inputs(void **state) {
    (void)state;
    static const tg_op fma_op = {"errors_test_fma", 3, fma_shape, fma_forward, fma_backward, NULL, NULL};
    assert_int_equal(tg_op_register(&fma_op), TG_OK);
    for (int ndim = 0; ndim <= 1; ndim++) {
        tg_tape *t = tg_tape_new();
        int64_t shape[1] = {3};
        double av[3] = {1, 2, 3}, bv[3] = {-1, 0.5, 4}, cv[3] = {10, 20, 30};
        tg_node *a = tg_tensor(t, TG_F64, ndim, shape, av);
        tg_node *b = tg_input(t, TG_F64, ndim, shape, bv);
        tg_node *c = tg_tensor(t, TG_F64, ndim, shape, cv);
        tg_node *y = tg_call_n("errors_test_fma", 3, (tg_node *[]){a, b, c});
        assert_int_equal(tg_status(t), TG_OK);
        assert_int_equal(tg_node_arity(y), 3);
        assert_ptr_equal(tg_node_input(y, 2), c);
        int64_t n = tg_numel(y);
        for (int64_t i = 0; i < n; i++) assert_true(tg_value_at(y, i) == av[i] * bv[i] + cv[i]);
        assert_int_equal(tg_backward(tg_sum(y)), TG_OK);
        for (int64_t i = 0; i < n; i++) {
            assert_true(tg_grad_at(a, i) == bv[i]);
            assert_true(tg_grad_at(c, i) == 1);
        }
        assert_null(tg_grad(b));
        /* replay reads the third input too */
        ((double *)tg_value(c))[0] = 100;
        assert_int_equal(tg_forward(t), TG_OK);
        assert_true(tg_value_at(y, 0) == av[0] * bv[0] + 100);
        /* too few inputs, and a shape the rule refuses */
        tg_call_n("errors_test_fma", 2, (tg_node *[]){a, b});
        assert_int_equal(tg_status(t), TG_ERR_ARG);
        assert_non_null(strstr(tg_status_message(t), "takes 3 inputs, given 2"));
        tg_tape_reset(t);
        tg_node *s1 = tg_tensor(t, TG_F64, ndim, shape, av);
        int64_t four[1] = {4};
        tg_node *s4 = tg_tensor(t, TG_F64, 1, four, NULL);
        tg_call_n("errors_test_fma", 3, (tg_node *[]){s1, s1, s4});
        assert_int_equal(tg_status(t), TG_ERR_SHAPE);
        assert_non_null(strstr(tg_status_message(t), "errors_test_fma: input 2 differs in size"));
        tg_tape_free(t);
    }
}

/* ------------------------------------------- messages of tape-less calls -- */

/* Whether text holds name as a whole word (not inside a longer identifier). */
static bool holds_word(const char *text, const char *name) {
    size_t len = strlen(name);
    for (const char *at = strstr(text, name); at; at = strstr(at + 1, name)) {
        char before = at > text ? at[-1] : ' ', after = at[len];
        bool ident_b = before == '_' || (before >= 'a' && before <= 'z') ||
                       (before >= 'A' && before <= 'Z') || (before >= '0' && before <= '9');
        bool ident_a = after == '_' || (after >= 'a' && after <= 'z') ||
                       (after >= 'A' && after <= 'Z') || (after >= '0' && after <= '9');
        if (!ident_b && !ident_a) return true;
    }
    return false;
}

/* The entry points that programs built against the older header call. */
int(tg_op_register_err)(const tg_op *op, tg_error *err);
int(tg_op_register)(const tg_op *op);

/* tg_op_register_err says why it refuses an op. The messages are the
 * header's contract written out; for a name taken by a built-in op, every
 * registered built-in is tried, and the file the message names must exist
 * and hold the op's name as a word (read from the source tree, not from the
 * registry), with the op's arity in words. */
static void test_register_messages(void **state) {
    (void)state;
    static const tg_op twice = {"errors_msg_twice", 1, NULL, triple_forward, triple_backward, NULL, NULL};
    static const tg_op twin = {"errors_msg_twice", 2, NULL, triple_forward, triple_backward, NULL, NULL};
    static const tg_op fresh = {"errors_msg_fresh", 1, NULL, triple_forward, triple_backward, NULL, NULL};
    static const struct {
        tg_op op;
        bool null_op;
        const char *want; /* the whole message */
    } cases[] = {
        {{0}, true, "tg_op_register: op is NULL"},
        {{NULL, 1, NULL, triple_forward, triple_backward, NULL, NULL}, false,
         "tg_op_register: the op's name is NULL"},
        {{"", 1, NULL, triple_forward, triple_backward, NULL, NULL}, false,
         "tg_op_register: the op's name is empty"},
        {{"errors_msg_a0", 0, NULL, triple_forward, triple_backward, NULL, NULL}, false,
         "tg_op_register: op \"errors_msg_a0\": arity 0 is not 1, 2 or 3"},
        {{"errors_msg_a4", 4, NULL, triple_forward, triple_backward, NULL, NULL}, false,
         "tg_op_register: op \"errors_msg_a4\": arity 4 is not 1, 2 or 3"},
        {{"errors_msg_nofwd", 1, NULL, NULL, triple_backward, NULL, NULL}, false,
         "tg_op_register: op \"errors_msg_nofwd\": forward is NULL"},
        {{"errors_msg_nobwd", 2, NULL, triple_forward, NULL, NULL, NULL}, false,
         "tg_op_register: op \"errors_msg_nobwd\": states no derivative (backward, "
         "vjp and jvp are all NULL; give vjp or jvp, or a backward that adds nothing for an "
         "op whose derivative is zero)"},
        {{"sin", 1, NULL, triple_forward, triple_backward, NULL, NULL}, false,
         "tg_op_register: the name \"sin\" is taken by the built-in unary op of ops/unary.c; "
         "choose another name"},
        {{"matmul", 1, NULL, triple_forward, triple_backward, NULL, NULL}, false,
         "tg_op_register: the name \"matmul\" is taken by the built-in binary op of "
         "ops/linalg.c; choose another name"},
    };
    int count = tg_op_count();
    tg_error e;
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        e = (tg_error){TG_OK, "untouched"};
        int rc = tg_op_register_err(cases[i].null_op ? NULL : &cases[i].op, &e);
        if (rc != TG_ERR_ARG || e.code != TG_ERR_ARG || strcmp(e.message, cases[i].want))
            fail_msg("case %zu: want TG_ERR_ARG \"%s\", got %s (err %s) \"%s\"", i,
                     cases[i].want, tg_status_name(rc), tg_status_name(e.code), e.message);
    }
    assert_int_equal(tg_op_count(), count);

    /* Success clears a stale message; the same struct again, or another one
     * of that name, is refused with a message saying which. */
    e = (tg_error){TG_ERR_IO, "stale"};
    assert_int_equal(tg_op_register_err(&twice, &e), TG_OK);
    assert_int_equal(e.code, TG_OK);
    assert_string_equal(e.message, "");
    assert_int_equal(tg_op_register_err(&twice, &e), TG_ERR_ARG);
    assert_string_equal(e.message,
                        "tg_op_register: op \"errors_msg_twice\" is already registered "
                        "(this same tg_op)");
    assert_int_equal(tg_op_register_err(&twin, &e), TG_ERR_ARG);
    assert_string_equal(e.message,
                        "tg_op_register: the name \"errors_msg_twice\" is taken by a unary user "
                        "op registered earlier (another tg_op struct); choose another name");
    assert_int_equal(tg_op_register_err(&fresh, &e), TG_OK);
    assert_string_equal(e.message, "");
    assert_int_equal(tg_op_register_err(&fresh, NULL), TG_ERR_ARG); /* err is optional */
    /* A tg_op of another size (compiled against another header) is refused
     * naming both sizes, and so is a program calling the entry points of the
     * headers before tg_op had its tangent rule, and before forward and
     * backward took argument views (the functions, not the macros of today's
     * header: a parenthesised name is not expanded). */
    static const tg_op sized = {"errors_msg_sized", 1, NULL, triple_forward, triple_backward,
                                NULL, NULL};
    char sized_msg[256];
    snprintf(sized_msg, sizeof sized_msg,
             "tg_op_register: op \"errors_msg_sized\" was compiled with a tg_op of %zu bytes, "
             "this library's has %zu; recompile against this tapegrad.h",
             sizeof(tg_op) - sizeof(void *), sizeof(tg_op));
    assert_int_equal(tg_op_register_views(&sized, sizeof(tg_op) - sizeof(void *), &e), TG_ERR_ARG);
    assert_string_equal(e.message, sized_msg);
    int tg_op_register_sized(const tg_op *op, size_t op_size, tg_error *err);
    assert_int_equal(tg_op_register_sized(&sized, sizeof(tg_op), &e), TG_ERR_ARG);
    assert_string_equal(e.message,
                        "tg_op_register: op \"errors_msg_sized\" was compiled against an older "
                        "tapegrad.h, whose forward and backward took the node (tg_node *); they "
                        "now take its argument views (tg_args *): update them and recompile");
    assert_int_equal((tg_op_register_err)(&sized, &e), TG_ERR_ARG);
    assert_non_null(strstr(e.message, "compiled against an older tapegrad.h"));
    assert_int_equal((tg_op_register)(&sized), TG_ERR_ARG);
    assert_null(tg_op_find("errors_msg_sized"));
    assert_int_equal(tg_op_count(), count + 2);

    /* Every built-in op's name: the message names its file and arity. */
    const char *src = getenv("TG_SOURCE_DIR");
    if (!src) src = "..";
    static const char *const words[] = {"", "unary", "binary", "ternary"};
    int builtins = 0;
    for (int i = 0; i < count; i++) {
        const tg_op *op = tg_op_at(i);
        tg_op fake = {op->name, 1, NULL, triple_forward, triple_backward, NULL, NULL};
        assert_int_equal(tg_op_register_err(&fake, &e), TG_ERR_ARG);
        char file[64], path[4096], want[256];
        const char *at = strstr(e.message, " op of ops/");
        if (!at) continue; /* a user op of an earlier test */
        builtins++;
        if (sscanf(at, " op of ops/%63[a-z_0-9].c;", file) != 1)
            fail_msg("op %s: no file in \"%s\"", op->name, e.message);
        snprintf(want, sizeof want, "the name \"%s\" is taken by the built-in %s op of ops/%s.c",
                 op->name, words[op->arity], file);
        if (!strstr(e.message, want)) fail_msg("op %s: \"%s\"", op->name, e.message);
        snprintf(path, sizeof path, "%s/ops/%s.c", src, file);
        FILE *f = fopen(path, "rb");
        if (!f) fail_msg("op %s: the message names %s, which does not open", op->name, path);
        static char text[1 << 20];
        size_t n = fread(text, 1, sizeof text - 1, f);
        fclose(f);
        text[n] = '\0';
        if (!holds_word(text, op->name)) fail_msg("op %s: %s does not name it", op->name, path);
    }
    assert_true(builtins > 20);
}

/* Every call that takes a tg_error, made to succeed with a stale message in
 * its tg_error, must clear it (code TG_OK, message ""). The calls are found
 * in the installed headers' text (tapegrad.h and the headers it includes;
 * not mpi.h, whose library this test does not link), so that a new one
 * without a case fails here. */
struct clear_fx {
    tg_mlp m;
    tg_params *ps;
    tg_optim *opt;
    tg_dataset *ds;
    char dir[2048], idx_images[4096], idx_labels[4096], csv[4096], model[4096];
};

static int c_op_register(struct clear_fx *fx, tg_error *e) {
    (void)fx;
    static const tg_op op = {"errors_clear_op", 1, NULL, triple_forward, triple_backward, NULL, NULL};
    return tg_op_register_err(&op, e);
}
static int c_params_add(struct clear_fx *fx, tg_error *e) {
    (void)fx;
    tg_params *ps = tg_params_new(TG_F32);
    int rc = tg_params_add(ps, "w", 1, (const int64_t[]){3}, e);
    tg_params_free(ps);
    return rc;
}
static int c_params_check_finite(struct clear_fx *fx, tg_error *e) {
    return tg_params_check_finite(fx->ps, e);
}
static int c_params_copy(struct clear_fx *fx, tg_error *e) {
    tg_params *ps = tg_params_new(TG_F32);
    int rc = tg_mlp_init(ps, &fx->m, TG_INIT_ZERO, TG_INIT_ZERO, 1, NULL);
    if (!rc) rc = tg_params_copy(ps, fx->ps, e);
    tg_params_free(ps);
    return rc;
}
static int c_mlp_parse(struct clear_fx *fx, tg_error *e) {
    (void)fx;
    tg_mlp m;
    return tg_mlp_parse(&m, "4,3,2", TG_ACT_SIGMOID, TG_ACT_SIGMOID, e);
}
static int c_mlp_from_params(struct clear_fx *fx, tg_error *e) {
    tg_mlp m;
    return tg_mlp_from_params(&m, fx->ps, e);
}
static int c_mlp_init(struct clear_fx *fx, tg_error *e) {
    tg_params *ps = tg_params_new(TG_F32);
    int rc = tg_mlp_init(ps, &fx->m, TG_INIT_SCALED, TG_INIT_NORMAL, 1, e);
    tg_params_free(ps);
    return rc;
}
static int c_optim_new(struct clear_fx *fx, tg_error *e) {
    tg_optim_config cfg = tg_optim_defaults(TG_OPT_ADAM);
    tg_optim *o = tg_optim_new(fx->ps, &cfg, e);
    tg_optim_free(o);
    return o ? TG_OK : -1;
}
static int c_dataset_read_idx(struct clear_fx *fx, tg_error *e) {
    tg_dataset *ds = tg_dataset_read_idx(fx->idx_images, fx->idx_labels, 2, e);
    tg_dataset_free(ds);
    return ds ? TG_OK : -1;
}
static int c_dataset_read_mnist(struct clear_fx *fx, tg_error *e) {
    tg_dataset *ds = tg_dataset_read_mnist(fx->dir, "errors_clear", 2, e);
    tg_dataset_free(ds);
    return ds ? TG_OK : -1;
}
static int c_dataset_read_csv(struct clear_fx *fx, tg_error *e) {
    tg_dataset *ds = tg_dataset_read_csv(fx->csv, 0, 1, 2, e);
    tg_dataset_free(ds);
    return ds ? TG_OK : -1;
}
static int c_dataset_new(struct clear_fx *fx, tg_error *e) {
    (void)fx;
    float x[4] = {0, 1, 2, 3};
    int32_t y[1] = {1};
    tg_dataset *ds = tg_dataset_new(1, 4, 2, x, y, e);
    tg_dataset_free(ds);
    return ds ? TG_OK : -1;
}
static int c_dataset_split(struct clear_fx *fx, tg_error *e) {
    tg_dataset *ds = tg_dataset_new(tg_dataset_size(fx->ds), 4, 2, tg_dataset_x(fx->ds),
                                    tg_dataset_labels(fx->ds), NULL);
    tg_dataset *v = tg_dataset_split(ds, 1, e);
    tg_dataset_free(ds);
    tg_dataset_free(v);
    return v ? TG_OK : -1;
}
static int c_mlp_check_data(struct clear_fx *fx, tg_error *e) {
    return tg_mlp_check_data(&fx->m, fx->ds, e);
}
static int c_batch_graph_build(struct clear_fx *fx, tg_error *e) {
    tg_batch_graph g = {0};
    int rc = tg_batch_graph_build(&g, fx->ps, &fx->m, TG_LOSS_MSE, 2, e);
    tg_batch_graph_free(&g);
    return rc;
}
static int c_trainer_new(struct clear_fx *fx, tg_error *e) {
    tg_trainer *tr = tg_trainer_new(fx->ps, &fx->m, TG_LOSS_MSE, 2, fx->opt, e);
    tg_trainer_free(tr);
    return tr ? TG_OK : -1;
}
static int c_trainer_epoch(struct clear_fx *fx, tg_error *e) {
    tg_trainer *tr = tg_trainer_new(fx->ps, &fx->m, TG_LOSS_MSE, 2, fx->opt, NULL);
    tg_rng r;
    tg_rng_seed(&r, 1);
    double loss;
    int rc = tr ? tg_trainer_epoch(tr, fx->ds, &r, &loss, NULL, NULL, e) : -1;
    tg_trainer_free(tr);
    return rc;
}
static int c_evaluate(struct clear_fx *fx, tg_error *e) {
    double acc;
    return tg_evaluate(fx->ps, &fx->m, TG_LOSS_MSE, fx->ds, &acc, NULL, NULL, e);
}
static int c_accuracy(struct clear_fx *fx, tg_error *e) {
    (void)fx;
    tg_tape *t = tg_tape_new();
    const int64_t shape[2] = {2, 2};
    tg_node *z = tg_input(t, TG_F64, 2, shape, (const double[]){0, 1, 1, 0});
    double acc;
    int rc = tg_accuracy(z, (const int32_t[]){1, 0}, 2, &acc, e);
    tg_tape_free(t);
    return rc;
}
static int c_mlp_read(struct clear_fx *fx, tg_error *e) {
    tg_mlp m;
    tg_loss loss;
    tg_params *ps = tg_mlp_read(fx->model, &m, &loss, e);
    tg_params_free(ps);
    return ps ? TG_OK : -1;
}
static int c_checkpoint_save(struct clear_fx *fx, tg_error *e) {
    return tg_checkpoint_save(fx->ps, fx->model, e);
}
static int c_checkpoint_load(struct clear_fx *fx, tg_error *e) {
    return tg_checkpoint_load(fx->ps, fx->model, e);
}
static int c_checkpoint_read(struct clear_fx *fx, tg_error *e) {
    tg_params *ps = tg_checkpoint_read(fx->model, e);
    tg_params_free(ps);
    return ps ? TG_OK : -1;
}
static int c_trainer_set_position(struct clear_fx *fx, tg_error *e) {
    tg_trainer *tr = tg_trainer_new(fx->ps, &fx->m, TG_LOSS_MSE, 2, fx->opt, NULL);
    tg_train_position pos = {1, 1, 0.5, {{1, 2, 3, 4}}};
    int rc = tr ? tg_trainer_set_position(tr, &pos, e) : -1;
    tg_trainer_free(tr);
    return rc;
}
static int c_training_save(struct clear_fx *fx, tg_error *e) {
    tg_train_position pos = {1, 0, 0, {{1, 2, 3, 4}}};
    return tg_training_save(fx->ps, fx->opt, &pos, "--lr 3", fx->model, e);
}
static int c_training_read(struct clear_fx *fx, tg_error *e) {
    tg_training *t = tg_training_read(fx->model, e);
    tg_training_free(t);
    return t ? TG_OK : -1;
}
static int c_training_restore(struct clear_fx *fx, tg_error *e) {
    tg_training *t = tg_training_read(fx->model, NULL);
    tg_train_position pos;
    int rc = t ? tg_training_restore(t, fx->ps, fx->opt, &pos, e) : -1;
    tg_training_free(t);
    return rc;
}

/* Function objects: x0 x1^2, each call on an object of its own. */
static int fn_square(tg_tape *t, const double *x, tg_node **in, tg_node **out, void *ctx) {
    (void)ctx;
    in[0] = tg_scalar(t, x[0]);
    in[1] = tg_scalar(t, x[1]);
    out[0] = tg_mul(in[0], tg_mul(in[1], in[1]));
    return tg_status(t);
}
static tg_fn *fn_fixture(void) { return tg_fn_record(2, 1, fn_square, NULL, (const double[]){1, 2}, NULL); }
static int c_fn_record(struct clear_fx *fx, tg_error *e) {
    (void)fx;
    tg_fn *f = tg_fn_record(2, 1, fn_square, NULL, (const double[]){1, 2}, e);
    tg_fn_free(f);
    return f ? TG_OK : e->code;
}
static int c_fn_adopt(struct clear_fx *fx, tg_error *e) {
    (void)fx;
    tg_tape *t = tg_tape_new();
    tg_node *x = tg_scalar(t, 2), *y = tg_mul(x, x);
    tg_fn *f = tg_fn_adopt(1, &x, 1, &y, e);
    tg_fn_free(f);
    tg_tape_free(t);
    return f ? TG_OK : e->code;
}
#define FN_CASE(name, CALL)                                                                 \
    static int c_fn_##name(struct clear_fx *fx, tg_error *e) {                              \
        (void)fx;                                                                           \
        tg_fn *f = fn_fixture();                                                            \
        double x[2] = {0.5, 3}, v[2] = {1, -1}, out[4];                                     \
        (void)x, (void)v, (void)out;                                                        \
        int rc = CALL;                                                                      \
        tg_fn_free(f);                                                                      \
        return rc;                                                                          \
    }
FN_CASE(eval, tg_fn_eval(f, x, out, e))
FN_CASE(grad, tg_fn_grad(f, x, NULL, out, e))
FN_CASE(jvp, tg_fn_jvp(f, x, 1, v, out, e))
FN_CASE(vjp, tg_fn_vjp(f, x, 1, v, out, e))
FN_CASE(jacobian, tg_fn_jacobian(f, x, out, e))
FN_CASE(hvp, tg_fn_hvp(f, x, 1, v, out, e))
FN_CASE(hessian, tg_fn_hessian(f, x, out, e))
FN_CASE(set_branch_mode, tg_fn_set_branch_mode(f, TG_FN_BRANCH_FAIL, e))
FN_CASE(retape, tg_fn_retape(f, x, e))

static const struct {
    const char *name;
    int (*call)(struct clear_fx *fx, tg_error *e);
} clear_cases[] = {
    {"tg_op_register_views", c_op_register},
    {"tg_params_add", c_params_add},
    {"tg_params_copy", c_params_copy},
    {"tg_params_check_finite", c_params_check_finite},
    {"tg_mlp_parse", c_mlp_parse},
    {"tg_mlp_from_params", c_mlp_from_params},
    {"tg_mlp_init", c_mlp_init},
    {"tg_optim_new", c_optim_new},
    {"tg_dataset_read_idx", c_dataset_read_idx},
    {"tg_dataset_read_mnist", c_dataset_read_mnist},
    {"tg_dataset_read_csv", c_dataset_read_csv},
    {"tg_dataset_new", c_dataset_new},
    {"tg_dataset_split", c_dataset_split},
    {"tg_mlp_check_data", c_mlp_check_data},
    {"tg_batch_graph_build", c_batch_graph_build},
    {"tg_trainer_new", c_trainer_new},
    {"tg_trainer_epoch", c_trainer_epoch},
    {"tg_evaluate", c_evaluate},
    {"tg_checkpoint_save", c_checkpoint_save}, /* before load and read: writes the file */
    {"tg_checkpoint_load", c_checkpoint_load},
    {"tg_checkpoint_read", c_checkpoint_read},
    {"tg_trainer_set_position", c_trainer_set_position},
    {"tg_training_save", c_training_save}, /* before read and restore: writes the file */
    {"tg_training_read", c_training_read},
    {"tg_training_restore", c_training_restore},
    {"tg_mlp_read", c_mlp_read},
    {"tg_accuracy", c_accuracy},
    {"tg_fn_record", c_fn_record},
    {"tg_fn_adopt", c_fn_adopt},
    {"tg_fn_eval", c_fn_eval},
    {"tg_fn_grad", c_fn_grad},
    {"tg_fn_jvp", c_fn_jvp},
    {"tg_fn_vjp", c_fn_vjp},
    {"tg_fn_jacobian", c_fn_jacobian},
    {"tg_fn_hvp", c_fn_hvp},
    {"tg_fn_hessian", c_fn_hessian},
    {"tg_fn_set_branch_mode", c_fn_set_branch_mode},
    {"tg_fn_retape", c_fn_retape},
};

/* Reads a text file whole into buf (NUL-terminated); false when it cannot. */
static bool slurp_text(const char *path, char *buf, size_t cap) {
    FILE *f = fopen(path, "rb");
    if (!f) return false;
    size_t n = fread(buf, 1, cap - 1, f);
    fclose(f);
    buf[n] = '\0';
    return true;
}

/* Appends to names (separated by spaces) each function declared with TG_API
 * in the header text whose parameters include a tg_error *. Comments are
 * blanked first, so that prose mentioning tg_error does not count. */
static void declared_with_err(char *text, char *names, size_t cap) {
    for (char *c = strstr(text, "/*"); c; c = strstr(c, "/*")) {
        char *end = strstr(c + 2, "*/");
        if (!end) end = c + strlen(c) - 2;
        memset(c, ' ', (size_t)(end + 2 - c));
    }
    for (char *decl = strtok(text, ";{}"); decl; decl = strtok(NULL, ";{}")) {
        char *api = strstr(decl, "TG_API"), *paren = api ? strchr(api, '(') : NULL;
        if (!paren || !strstr(paren, "tg_error *")) continue;
        char *end = paren;
        while (end > api && end[-1] == ' ') end--;
        char *start = end;
        while (start > api && (start[-1] == '_' || (start[-1] >= 'a' && start[-1] <= 'z') ||
                               (start[-1] >= '0' && start[-1] <= '9')))
            start--;
        size_t len = strlen(names);
        snprintf(names + len, cap - len, " %.*s", (int)(end - start), start);
    }
}

static void write_bytes(const char *path, const unsigned char *b, size_t n) {
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(b, 1, n, f), n);
    assert_int_equal(fclose(f), 0);
}

static void test_error_cleared_on_success(void **state) {
    (void)state;
    /* The headers' list of calls, against the table. */
    const char *src = getenv("TG_SOURCE_DIR");
    if (!src) src = "..";
    static char text[1 << 20], names[8192];
    char path[4096];
    names[0] = '\0';
    snprintf(path, sizeof path, "%s/include/tapegrad.h", src);
    assert_true(slurp_text(path, text, sizeof text));
    static char umbrella[1 << 20];
    memcpy(umbrella, text, sizeof text);
    declared_with_err(text, names, sizeof names);
    for (char *inc = strstr(umbrella, "#include \"tapegrad/"); inc;
         inc = strstr(inc + 1, "#include \"tapegrad/")) {
        char header[256];
        if (sscanf(inc, "#include \"%255[a-z_0-9/].h\"", header) != 1) continue;
        snprintf(path, sizeof path, "%s/include/%s.h", src, header);
        assert_true(slurp_text(path, text, sizeof text));
        declared_with_err(text, names, sizeof names);
    }
    size_t ncases = sizeof clear_cases / sizeof *clear_cases, found = 0;
    for (char *name = strtok(names, " "); name; name = strtok(NULL, " ")) {
        bool have = false;
        for (size_t i = 0; i < ncases; i++) have |= !strcmp(clear_cases[i].name, name);
        if (!have) fail_msg("%s takes a tg_error but has no case in clear_cases[]", name);
        found++;
    }
    assert_int_equal(found, ncases); /* and no case for a call that is gone */

    /* The fixture: a 4-3-2 network, 4 samples of 4 features, the same
     * samples as IDX (2x2 images) and CSV files in the build's tests dir
     * (or $TMPDIR or /tmp when run by hand). */
    struct clear_fx fx = {0};
    const char *build = getenv("TG_BUILD_DIR"), *tmp = getenv("TMPDIR");
    assert_true(snprintf(fx.dir, sizeof fx.dir, "%s%s", build ? build : tmp ? tmp : "/tmp",
                         build ? "/tests" : "") < (int)sizeof fx.dir);
    snprintf(fx.idx_images, sizeof fx.idx_images, "%s/errors_clear-images-idx3-ubyte", fx.dir);
    snprintf(fx.idx_labels, sizeof fx.idx_labels, "%s/errors_clear-labels-idx1-ubyte", fx.dir);
    snprintf(fx.csv, sizeof fx.csv, "%s/errors_clear.csv", fx.dir);
    snprintf(fx.model, sizeof fx.model, "%s/errors_clear.tgm", fx.dir);
    const unsigned char images[16 + 16] = {0, 0, 8, 3, 0, 0, 0, 4, 0, 0, 0, 2, 0, 0, 0, 2,
                                           0, 255, 0, 255, 255, 0, 255, 0,
                                           10, 200, 30, 220, 240, 5, 250, 15};
    const unsigned char labels[8 + 4] = {0, 0, 8, 1, 0, 0, 0, 4, 0, 1, 0, 1};
    write_bytes(fx.idx_images, images, sizeof images);
    write_bytes(fx.idx_labels, labels, sizeof labels);
    const char csv[] = "label,a,b,c,d\n0,0,1,0,1\n1,1,0,1,0\n";
    write_bytes(fx.csv, (const unsigned char *)csv, strlen(csv));
    float x[16] = {0, 1, 0, 1, 1, 0, 1, 0, 0, 1, 0, 1, 1, 0, 1, 0};
    int32_t y[4] = {0, 1, 0, 1};
    fx.ds = tg_dataset_new(4, 4, 2, x, y, NULL);
    fx.ps = tg_params_new(TG_F32);
    assert_int_equal(tg_mlp_parse(&fx.m, "4,3,2", TG_ACT_SIGMOID, TG_ACT_SIGMOID, NULL), TG_OK);
    assert_int_equal(tg_mlp_init(fx.ps, &fx.m, TG_INIT_SCALED, TG_INIT_NORMAL, 1, NULL), TG_OK);
    tg_optim_config cfg = tg_optim_defaults(TG_OPT_SGD);
    fx.opt = tg_optim_new(fx.ps, &cfg, NULL);
    assert_non_null(fx.ds);
    assert_non_null(fx.opt);

    for (size_t i = 0; i < ncases; i++) {
        tg_error e = {TG_ERR_IO, "stale: a message from an earlier failure"};
        int rc = clear_cases[i].call(&fx, &e);
        if (rc != TG_OK)
            fail_msg("%s failed (%d): %s", clear_cases[i].name, rc, e.message);
        if (e.code != TG_OK || e.message[0])
            fail_msg("%s succeeded but left %s \"%s\"", clear_cases[i].name,
                     tg_status_name(e.code), e.message);
    }
    /* A failure after a success fills it again. */
    tg_error e;
    assert_int_equal(tg_mlp_parse(&fx.m, "4,3,2", TG_ACT_SIGMOID, TG_ACT_SIGMOID, &e), TG_OK);
    assert_int_equal(tg_mlp_parse(&fx.m, "4,x", TG_ACT_SIGMOID, TG_ACT_SIGMOID, &e), TG_ERR_ARG);
    assert_int_equal(e.code, TG_ERR_ARG);
    assert_non_null(strstr(e.message, "4,x"));

    tg_optim_free(fx.opt);
    tg_params_free(fx.ps);
    tg_dataset_free(fx.ds);
    remove(fx.idx_images);
    remove(fx.idx_labels);
    remove(fx.csv);
    remove(fx.model);
}

/* Every derivative op refuses inputs whose shapes do not fit, naming the op:
 * its kernels read each input by its own shape, so a y or a parameter of
 * another size would be read out of bounds (inside the tape's memory,
 * where no sanitizer sees it). */
static void test_derivative_op_shapes(void **state) {
    (void)state;
    int checked = 0;
    for (int i = 0; i < tg_op_count(); i++) {
        const tg_op *op = tg_op_at(i);
        if (!tg_op_derivative_of(op, NULL)) continue;
        tg_tape *t = tg_tape_new();
        const int64_t s5[1] = {5}, s3[1] = {3};
        tg_node *in[3];
        for (int k = 0; k < op->arity; k++)
            in[k] = tg_tensor(t, TG_F64, 1, k == op->arity - 1 ? s3 : s5, NULL);
        tg_call_n(op->name, op->arity, in);
        if (tg_status(t) == TG_OK || !strstr(tg_status_message(t), op->name))
            fail_msg("%s on [5] ... [3]: status %s \"%s\"", op->name, tg_status_name(tg_status(t)),
                     tg_status_message(t));
        tg_tape_free(t);
        checked++;
    }
    assert_true(checked > 50);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_nomem_on_first_use), /* must stay first */
        cmocka_unit_test(test_nomem),
        cmocka_unit_test(test_matmul_shapes),
        cmocka_unit_test(test_broadcast_mismatch),
        cmocka_unit_test(test_null_inputs),
        cmocka_unit_test(test_dtype_mismatch),
        cmocka_unit_test(test_different_tapes),
        cmocka_unit_test(test_backward_nonscalar),
        cmocka_unit_test(test_bad_axis),
        cmocka_unit_test(test_bad_reshape),
        cmocka_unit_test(test_bad_constructor_shapes),
        cmocka_unit_test(test_unknown_op),
        cmocka_unit_test(test_register_duplicate),
        cmocka_unit_test(test_check_numerics),
        cmocka_unit_test(test_stale_nodes),
        cmocka_unit_test(test_three_inputs),
        cmocka_unit_test(test_register_messages),
        cmocka_unit_test(test_error_cleared_on_success),
        cmocka_unit_test(test_derivative_op_shapes),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
