/*
 * tg_gradcheck and tg_gradcheck_fn: every registered op and ten composite
 * functions of several tensor inputs pass; a user op whose backward rule is
 * off by a factor of 2 fails, with the worst element reported; kinks are
 * detected and judged by the one-sided slopes; failing callbacks and bad
 * arguments are reported, never crashed on.
 */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include <tapegrad.h>

/* ------------------------------------------------------------- helpers -- */

static uint64_t rng_state;

static double uniform(double lo, double hi) {
    uint64_t z = (rng_state += UINT64_C(0x9e3779b97f4a7c15));
    z = (z ^ (z >> 30)) * UINT64_C(0xbf58476d1ce4e5b9);
    z = (z ^ (z >> 27)) * UINT64_C(0x94d049bb133111eb);
    z ^= z >> 31;
    return lo + (hi - lo) * (double)(z >> 11) * 0x1p-53;
}

/* How an input's random values are drawn. */
enum range { ANY, POSITIVE, AWAY, PROB };

static double draw(enum range r) {
    switch (r) {
    case POSITIVE: return uniform(0.3, 2.5);              /* log, sqrt, divisors, bases */
    case AWAY: {                                          /* abs, relu: clear of the kink */
        double m = uniform(0.2, 2.0);
        return uniform(0, 1) < 0.5 ? -m : m;
    }
    case PROB: return uniform(0.0, 1.0);
    default: return uniform(-2.0, 2.0);
    }
}

#define MAX_IN 4
#define MAX_EL 64

/* A function under test: its inputs' shapes, ranges and the build. */
typedef struct fcase {
    const char *name; /* the op it covers (or a composite's name) */
    tg_gradcheck_build build;
    int nin;
    struct {
        int ndim;
        int64_t shape[4];
        enum range range;
        int no_grad;
    } in[MAX_IN];
} fcase;

static double data[MAX_IN][MAX_EL];

/* Fills inputs from the case with random values (seeded by `seed`). */
static void make_inputs(const fcase *c, uint64_t seed, tg_gradcheck_input *in) {
    rng_state = seed;
    for (int i = 0; i < c->nin; i++) {
        int64_t k = 1;
        in[i].dtype = TG_F64;
        in[i].ndim = c->in[i].ndim;
        for (int d = 0; d < c->in[i].ndim; d++) {
            in[i].shape[d] = c->in[i].shape[d];
            k *= c->in[i].shape[d];
        }
        assert_true(k <= MAX_EL);
        for (int64_t e = 0; e < k; e++) data[i][e] = draw(c->in[i].range);
        in[i].data = data[i];
        in[i].no_grad = c->in[i].no_grad;
    }
}

/* Runs the check on a case at three random points; all must pass cleanly. */
static void check_case(const fcase *c) {
    for (uint64_t point = 1; point <= 3; point++) {
        tg_gradcheck_input in[MAX_IN];
        memset(in, 0, sizeof in);
        make_inputs(c, point * 7919 + (uint64_t)strlen(c->name), in);
        tg_gradcheck_report rep;
        int rc = tg_gradcheck(c->build, c->nin, in, NULL, NULL, &rep);
        if (rc != TG_OK || !rep.passed || rep.kinks)
            fail_msg("%s (point %d): status %s '%s', passed %d, kinks %lld; worst: input %d "
                     "[%lld] row %lld analytic %.17g numeric %.17g",
                     c->name, (int)point, tg_status_name(rc), rep.message, rep.passed,
                     (long long)rep.kinks, rep.worst.input, (long long)rep.worst.index,
                     (long long)rep.worst.row, rep.worst.analytic, rep.worst.numeric);
        assert_true(rep.checked > 0);
        assert_int_equal(rep.checked, rep.rows * rep.elements);
        assert_int_equal(rep.failed, 0);
    }
}

/* --------------------------------------------------- one case per op -- */

/* Elementwise unary ops are called by name, so one build serves them all. */
static const char *unary_name;
static tg_node *b_unary(tg_tape *t, tg_node *const *x, int n, void *ctx) {
    (void)t, (void)n, (void)ctx;
    return tg_call(unary_name, x[0], NULL);
}

static tg_node *b_add(tg_tape *t, tg_node *const *x, int n, void *c) {
    (void)t, (void)n, (void)c;
    return tg_add(x[0], x[1]);
}
static tg_node *b_sub(tg_tape *t, tg_node *const *x, int n, void *c) {
    (void)t, (void)n, (void)c;
    return tg_sub(x[0], x[1]);
}
static tg_node *b_mul(tg_tape *t, tg_node *const *x, int n, void *c) {
    (void)t, (void)n, (void)c;
    return tg_mul(x[0], x[1]);
}
static tg_node *b_div(tg_tape *t, tg_node *const *x, int n, void *c) {
    (void)t, (void)n, (void)c;
    return tg_div(x[0], x[1]);
}
static tg_node *b_pow(tg_tape *t, tg_node *const *x, int n, void *c) {
    (void)t, (void)n, (void)c;
    return tg_call("pow", x[0], x[1]); /* both operands want gradients */
}
static tg_node *b_pow_const(tg_tape *t, tg_node *const *x, int n, void *c) {
    (void)t, (void)n, (void)c;
    return tg_pow(x[0], 2.5);
}
static tg_node *b_scale(tg_tape *t, tg_node *const *x, int n, void *c) {
    (void)t, (void)n, (void)c;
    return tg_scale(x[0], -1.75);
}
static tg_node *b_matmul(tg_tape *t, tg_node *const *x, int n, void *c) {
    (void)t, (void)n, (void)c;
    return tg_matmul(x[0], x[1]);
}
static tg_node *b_transpose(tg_tape *t, tg_node *const *x, int n, void *c) {
    (void)t, (void)n, (void)c;
    return tg_transpose(x[0]);
}
static tg_node *b_reshape(tg_tape *t, tg_node *const *x, int n, void *c) {
    (void)t, (void)n, (void)c;
    int64_t s[2] = {3, -1};
    /* Multiplying by a second input makes the Jacobian less trivial. */
    return tg_mul(tg_reshape(x[0], 2, s), x[1]);
}
static tg_node *b_sum(tg_tape *t, tg_node *const *x, int n, void *c) {
    (void)t, (void)n, (void)c;
    return tg_sum(x[0]);
}
static tg_node *b_sum_axis(tg_tape *t, tg_node *const *x, int n, void *c) {
    (void)t, (void)n, (void)c;
    return tg_sum_axis(x[0], 1);
}
static tg_node *b_sum_axis4(tg_tape *t, tg_node *const *x, int n, void *c) {
    (void)t, (void)n, (void)c;
    return tg_sum_axis(x[0], -2);
}
static tg_node *b_mean(tg_tape *t, tg_node *const *x, int n, void *c) {
    (void)t, (void)n, (void)c;
    return tg_mean(x[0]);
}
static tg_node *b_mean_axis(tg_tape *t, tg_node *const *x, int n, void *c) {
    (void)t, (void)n, (void)c;
    return tg_mean_axis(x[0], 0);
}
static tg_node *b_mse(tg_tape *t, tg_node *const *x, int n, void *c) {
    (void)t, (void)n, (void)c;
    return tg_mse(x[0], x[1]);
}
static tg_node *b_xent(tg_tape *t, tg_node *const *x, int n, void *c) {
    (void)t, (void)n, (void)c;
    return tg_softmax_xent(x[0], x[1]);
}
static tg_node *b_softmax0(tg_tape *t, tg_node *const *x, int n, void *c) {
    (void)t, (void)n, (void)c;
    return tg_softmax(x[0], 0);
}
static tg_node *b_softmax1(tg_tape *t, tg_node *const *x, int n, void *c) {
    (void)t, (void)n, (void)c;
    return tg_softmax(x[0], -1);
}
static tg_node *b_log_softmax0(tg_tape *t, tg_node *const *x, int n, void *c) {
    (void)t, (void)n, (void)c;
    return tg_log_softmax(x[0], 0);
}
static tg_node *b_log_softmax1(tg_tape *t, tg_node *const *x, int n, void *c) {
    (void)t, (void)n, (void)c;
    return tg_log_softmax(x[0], 1);
}

#define IN(nd, s0, s1, r) {nd, {s0, s1, 0, 0}, r, 0}

/* Binary and structural ops; outputs of at most 16 elements are checked
 * entry by entry, larger ones through random projections. */
static const fcase op_cases[] = {
    {"add", b_add, 2, {IN(2, 2, 3, ANY), IN(1, 3, 0, ANY)}},      /* broadcast */
    {"add", b_add, 2, {IN(2, 4, 5, ANY), IN(2, 4, 1, ANY)}},      /* projections */
    {"sub", b_sub, 2, {IN(2, 3, 1, ANY), IN(2, 1, 4, ANY)}},      /* both broadcast */
    {"mul", b_mul, 2, {IN(2, 2, 3, ANY), IN(2, 2, 3, ANY)}},
    {"mul", b_scale, 1, {IN(1, 5, 0, ANY)}},                     /* tg_scale */
    {"div", b_div, 2, {IN(2, 2, 3, ANY), IN(2, 2, 1, POSITIVE)}},
    {"pow", b_pow, 2, {IN(2, 2, 3, POSITIVE), IN(2, 2, 3, ANY)}},
    {"pow", b_pow_const, 1, {IN(1, 6, 0, POSITIVE)}},             /* tg_pow */
    {"matmul", b_matmul, 2, {IN(2, 2, 3, ANY), IN(2, 3, 4, ANY)}},
    {"matmul", b_matmul, 2, {IN(2, 5, 3, ANY), IN(2, 3, 4, ANY)}}, /* 20 outputs */
    {"transpose", b_transpose, 1, {IN(2, 2, 3, ANY)}},
    {"reshape", b_reshape, 2, {IN(2, 2, 3, ANY), IN(2, 3, 2, ANY)}},
    {"sum", b_sum, 1, {IN(2, 3, 4, ANY)}},
    {"sum", b_sum_axis, 1, {IN(2, 3, 4, ANY)}},
    {"sum", b_sum_axis4, 1, {{4, {2, 3, 2, 2}, ANY, 0}}},
    {"mean", b_mean, 1, {IN(2, 3, 4, ANY)}},
    {"mean", b_mean_axis, 1, {IN(2, 3, 4, ANY)}},
    {"mse", b_mse, 2, {IN(2, 3, 4, ANY), IN(2, 3, 4, ANY)}},
    {"softmax_xent", b_xent, 2, {IN(2, 3, 4, ANY), IN(2, 3, 4, PROB)}},
    {"softmax", b_softmax0, 1, {IN(2, 3, 4, ANY)}},
    {"softmax", b_softmax1, 1, {IN(2, 4, 5, ANY)}},
    {"log_softmax", b_log_softmax0, 1, {IN(2, 3, 4, ANY)}},
    {"log_softmax", b_log_softmax1, 1, {IN(2, 4, 5, ANY)}},
};
#define N_OP_CASES (sizeof op_cases / sizeof *op_cases)

/* Ranges of the core's elementwise unary ops' inputs, by name: inside the
 * domain and clear of kinks. */
static const struct {
    const char *name;
    enum range range;
} unary_cases[] = {
    {"neg", ANY},  {"exp", ANY},  {"log", POSITIVE}, {"sqrt", POSITIVE},
    {"abs", AWAY}, {"sin", ANY},  {"cos", ANY},      {"tanh", ANY},
    {"sigmoid", ANY}, {"relu", AWAY},
};
#define N_UNARY (sizeof unary_cases / sizeof *unary_cases)

/* Ops this file registers itself (deliberately wrong ones) start with this. */
#define TEST_OP_PREFIX "test_"

/* The ops of the core, each through tg_gradcheck's full Jacobian and its
 * projections. (Every registered op, the later families' included, is
 * walked by test_ops.c, which runs tg_gradcheck and tg_gradgradcheck on
 * each of its cases.) */
static void test_core_ops(void **state) {
    (void)state;
    int count = tg_op_count();
    assert_true(count >= 24);
    int covered_ops = 0;
    for (int i = 0; i < count; i++) {
        const char *name = tg_op_at(i)->name;
        if (!strncmp(name, TEST_OP_PREFIX, strlen(TEST_OP_PREFIX))) continue;
        int covered = 0;
        for (size_t k = 0; k < N_OP_CASES; k++)
            if (!strcmp(op_cases[k].name, name)) {
                check_case(&op_cases[k]);
                covered++;
            }
        for (size_t k = 0; k < N_UNARY; k++)
            if (!strcmp(unary_cases[k].name, name)) {
                unary_name = name;
                /* [3,4]: full Jacobian; [4,5]: projections. */
                fcase small = {name, b_unary, 1, {IN(2, 3, 4, unary_cases[k].range)}};
                fcase large = {name, b_unary, 1, {IN(2, 4, 5, unary_cases[k].range)}};
                check_case(&small);
                check_case(&large);
                covered++;
            }
        covered_ops += covered > 0;
    }
    assert_true(covered_ops >= 24);
}

/* ------------------------------------------------ composite functions -- */

/* 1. A dense sigmoid layer and the squared error against a constant target. */
static tg_node *c_dense_mse(tg_tape *t, tg_node *const *x, int n, void *c) {
    (void)t, (void)n, (void)c;
    return tg_mse(tg_sigmoid(tg_add(tg_matmul(x[0], x[1]), x[2])), x[3]);
}
/* 2. Softmax cross-entropy of an affine map. */
static tg_node *c_affine_xent(tg_tape *t, tg_node *const *x, int n, void *c) {
    (void)t, (void)n, (void)c;
    return tg_softmax_xent(tg_add(tg_matmul(x[0], x[1]), x[2]), x[3]);
}
/* 3. Two tanh layers with a tensor output. */
static tg_node *c_two_layers(tg_tape *t, tg_node *const *x, int n, void *c) {
    (void)t, (void)n, (void)c;
    return tg_tanh(tg_matmul(tg_tanh(tg_add(tg_matmul(x[0], x[1]), x[2])), x[3]));
}
/* 4. Scaled dot-product attention: softmax(Q K^T / sqrt(d)) V. */
static tg_node *c_attention(tg_tape *t, tg_node *const *x, int n, void *c) {
    (void)t, (void)n, (void)c;
    tg_node *s = tg_scale(tg_matmul(x[0], tg_transpose(x[1])), 1 / sqrt(3.0));
    return tg_matmul(tg_softmax(s, -1), x[2]);
}
/* 5. A^T A: one input on both sides (fan-out), times B, plus A's mean. */
static tg_node *c_gram(tg_tape *t, tg_node *const *x, int n, void *c) {
    (void)t, (void)n, (void)c;
    return tg_add(tg_mul(tg_matmul(tg_transpose(x[0]), x[0]), x[1]), tg_mean(x[0]));
}
/* 6. sqrt(|x|^2 + 1) * mean(log y). */
static tg_node *c_norm_log(tg_tape *t, tg_node *const *x, int n, void *c) {
    (void)n, (void)c;
    tg_node *norm = tg_sqrt(tg_add(tg_sum(tg_mul(x[0], x[0])), tg_const(t, 1)));
    return tg_mul(norm, tg_mean(tg_log(x[1])));
}
/* 7. Column-centred A divided by b^2 + 1 (broadcasts both ways; 20 outputs). */
static tg_node *c_center_div(tg_tape *t, tg_node *const *x, int n, void *c) {
    (void)n, (void)c;
    tg_node *centred = tg_sub(x[0], tg_mean_axis(x[0], 0));
    return tg_div(centred, tg_add(tg_mul(x[1], x[1]), tg_const(t, 1)));
}
/* 8. A reshaped vector times a matrix, summed along rows. */
static tg_node *c_reshape_rows(tg_tape *t, tg_node *const *x, int n, void *c) {
    (void)t, (void)n, (void)c;
    int64_t s[2] = {3, 4};
    return tg_sum_axis(tg_mul(tg_reshape(x[0], 2, s), x[1]), 1);
}
/* 9. sin(A) cos(B) + |C| - relu(D), C and D clear of 0. */
static tg_node *c_trig_kinks(tg_tape *t, tg_node *const *x, int n, void *c) {
    (void)t, (void)n, (void)c;
    return tg_sub(tg_add(tg_mul(tg_sin(x[0]), tg_cos(x[1])), tg_abs(x[2])), tg_relu(x[3]));
}
/* 10. sum(log_softmax(A, 0) * B^3) - 0.5 sum(exp(-c)) / (1 + sigmoid(sum c)). */
static tg_node *c_mixed(tg_tape *t, tg_node *const *x, int n, void *c) {
    (void)n, (void)c;
    tg_node *a = tg_sum(tg_mul(tg_log_softmax(x[0], 0), tg_pow(x[1], 3)));
    tg_node *e = tg_scale(tg_sum(tg_exp(tg_neg(x[2]))), 0.5);
    return tg_sub(a, tg_div(e, tg_add(tg_const(t, 1), tg_sigmoid(tg_sum(x[2])))));
}

static const fcase composites[] = {
    {"dense_mse", c_dense_mse, 4,
     {IN(2, 4, 3, ANY), IN(2, 3, 2, ANY), IN(1, 2, 0, ANY), {2, {4, 2}, PROB, 1}}},
    {"affine_xent", c_affine_xent, 4,
     {IN(2, 3, 4, ANY), IN(2, 4, 3, ANY), IN(1, 3, 0, ANY), {2, {3, 3}, PROB, 1}}},
    {"two_layers", c_two_layers, 4,
     {IN(2, 3, 4, ANY), IN(2, 4, 3, ANY), IN(1, 3, 0, ANY), IN(2, 3, 2, ANY)}},
    {"attention", c_attention, 3, {IN(2, 2, 3, ANY), IN(2, 4, 3, ANY), IN(2, 4, 2, ANY)}},
    {"gram", c_gram, 2, {IN(2, 4, 3, ANY), IN(1, 3, 0, ANY)}},
    {"norm_log", c_norm_log, 2, {IN(1, 5, 0, ANY), IN(2, 2, 3, POSITIVE)}},
    {"center_div", c_center_div, 2, {IN(2, 4, 5, ANY), IN(1, 5, 0, ANY)}},
    {"reshape_rows", c_reshape_rows, 2, {IN(1, 12, 0, ANY), IN(2, 3, 4, ANY)}},
    {"trig_kinks", c_trig_kinks, 4,
     {IN(2, 3, 3, ANY), IN(2, 3, 3, ANY), IN(2, 3, 3, AWAY), IN(2, 3, 3, AWAY)}},
    {"mixed", c_mixed, 3, {IN(2, 3, 2, ANY), IN(2, 3, 2, ANY), IN(1, 4, 0, ANY)}},
};

static void test_composites(void **state) {
    (void)state;
    assert_int_equal(sizeof composites / sizeof *composites, 10);
    for (size_t k = 0; k < sizeof composites / sizeof *composites; k++)
        check_case(&composites[k]);
}

/* The constant target of dense_mse is not checked; the others are. */
static void test_no_grad_input_skipped(void **state) {
    (void)state;
    tg_gradcheck_input in[MAX_IN];
    make_inputs(&composites[0], 5, in);
    tg_gradcheck_report rep;
    assert_int_equal(tg_gradcheck(composites[0].build, 4, in, NULL, NULL, &rep), TG_OK);
    assert_true(rep.passed);
    assert_int_equal(rep.elements, 12 + 6 + 2);
    assert_int_equal(rep.rows, 1);
    assert_false(rep.projected);
    /* One build at the point and two per element for a smooth function. */
    assert_int_equal(rep.evaluations, 1 + 2 * rep.elements);
}

/* float32 data is promoted: the check runs in float64 and passes. */
static void test_float32_inputs(void **state) {
    (void)state;
    float a[5] = {0.5f, -1.25f, 2.0f, 0.75f, -0.1f};
    float b[6] = {0.4f, 1.5f, 2.25f, 0.9f, 1.1f, 0.6f};
    tg_gradcheck_input in[2] = {{TG_F32, 1, {5}, a, 0}, {TG_F32, 2, {2, 3}, b, 0}};
    tg_gradcheck_report rep;
    assert_int_equal(tg_gradcheck(c_norm_log, 2, in, NULL, NULL, &rep), TG_OK);
    assert_true(rep.passed);
    assert_int_equal(rep.elements, 11);
    double want = sqrt(0.25 + 1.5625 + 4 + 0.5625 + (double)0.1f * 0.1f + 1);
    double ml = 0;
    for (int i = 0; i < 6; i++) ml += log((double)b[i]) / 6;
    assert_true(fabs(rep.value - want * ml) < 1e-12);
}

/* Projections are used above max_jacobian and are reproducible by seed. */
static void test_projections(void **state) {
    (void)state;
    tg_gradcheck_input in[MAX_IN];
    make_inputs(&composites[6], 11, in); /* center_div: 20 outputs */
    tg_gradcheck_report r1, r2, r3;
    tg_gradcheck_opts o = tg_gradcheck_defaults();
    assert_int_equal(tg_gradcheck(composites[6].build, 2, in, NULL, &o, &r1), TG_OK);
    assert_true(r1.passed);
    assert_true(r1.projected);
    assert_int_equal(r1.outputs, 20);
    assert_int_equal(r1.rows, o.projections);
    assert_int_equal(tg_gradcheck(composites[6].build, 2, in, NULL, &o, &r2), TG_OK);
    assert_memory_equal(&r1.worst, &r2.worst, sizeof r1.worst);
    /* Raising max_jacobian checks all 20 rows one by one. */
    o.max_jacobian = 20;
    assert_int_equal(tg_gradcheck(composites[6].build, 2, in, NULL, &o, &r3), TG_OK);
    assert_true(r3.passed);
    assert_false(r3.projected);
    assert_int_equal(r3.rows, 20);
    assert_int_equal(r3.checked, 20 * 25);
}

/* Every compared pair can be collected, row-major. */
static void test_entries(void **state) {
    (void)state;
    double a[3] = {0.1, 0.2, 0.3};
    tg_gradcheck_input in[1] = {{TG_F64, 1, {3}, a, 0}};
    tg_gradcheck_elem e[9];
    memset(e, 0xff, sizeof e);
    tg_gradcheck_opts o = tg_gradcheck_defaults();
    o.entries = e;
    o.max_entries = 8; /* one short: the last pair is not stored */
    tg_gradcheck_report rep;
    unary_name = "exp";
    assert_int_equal(tg_gradcheck(b_unary, 1, in, NULL, &o, &rep), TG_OK);
    assert_true(rep.passed);
    assert_int_equal(rep.rows, 3);
    assert_int_equal(rep.checked, 9);
    for (int r = 0; r < 3; r++)
        for (int k = 0; k < 3; k++) {
            if (r * 3 + k == 8) continue;
            const tg_gradcheck_elem *x = &e[r * 3 + k];
            assert_int_equal(x->input, 0);
            assert_int_equal(x->index, k);
            assert_int_equal(x->row, r);
            assert_true(x->ok);
            assert_true(fabs(x->analytic - (r == k ? exp(a[k]) : 0)) < 1e-15);
            assert_true(fabs(x->numeric - x->analytic) < 1e-8);
        }
    assert_int_equal(e[8].input, -1); /* untouched (0xff bytes) */
}

/* ------------------------------------------------ a wrong backward rule -- */

/* sin with a backward rule off by a factor of 2: d sin(x) = 2 cos(x). */
static void wrong_sin_forward(tg_args *a) {
    const tg_arg *x = &a->in[0];
    for (int64_t i = 0; i < (int64_t)a->out.numel; i++) {
        if (a->out.dtype == TG_F64)
            ((double *)a->out.value)[i] = sin(((const double *)x->value)[i]);
        else
            ((float *)a->out.value)[i] = sinf(((const float *)x->value)[i]);
    }
}
static void wrong_sin_backward(tg_args *a) {
    const tg_arg *x = &a->in[0];
    void *gx = x->grad;
    if (!gx) return;
    for (int64_t i = 0; i < (int64_t)a->out.numel; i++) {
        if (a->out.dtype == TG_F64)
            ((double *)gx)[i] += ((const double *)a->out.grad)[i] * 2 *
                                 cos(((const double *)x->value)[i]);
        else
            ((float *)gx)[i] += ((const float *)a->out.grad)[i] * 2 *
                                cosf(((const float *)x->value)[i]);
    }
}
static const tg_op wrong_sin = {TEST_OP_PREFIX "wrong_sin", 1, NULL, wrong_sin_forward,
                                wrong_sin_backward, NULL, NULL};

/* relu whose slope is 2 on the positive side. */
static void bad_relu_forward(tg_args *a) {
    const double *x = a->in[0].value;
    for (int64_t i = 0; i < (int64_t)a->out.numel; i++) ((double *)a->out.value)[i] = x[i] > 0 ? x[i] : 0;
}
static void bad_relu_backward(tg_args *a) {
    const tg_arg *in = &a->in[0];
    const double *x = in->value, *g = a->out.grad;
    double *gx = in->grad;
    if (!gx) return;
    for (int64_t i = 0; i < (int64_t)a->out.numel; i++) gx[i] += g[i] * (x[i] > 0 ? 2 : 0);
}
static const tg_op bad_relu = {TEST_OP_PREFIX "bad_relu", 1, NULL, bad_relu_forward,
                               bad_relu_backward, NULL, NULL};

/* cube whose backward rule drops its upstream gradient: 3x^2, not g 3x^2
 * (float64 only). Right wherever the upstream is all ones. */
static void deaf_cube_forward(tg_args *a) {
    const double *x = a->in[0].value;
    for (int64_t i = 0; i < (int64_t)a->out.numel; i++) ((double *)a->out.value)[i] = x[i] * x[i] * x[i];
}
static void deaf_cube_backward(tg_args *a) {
    const tg_arg *in = &a->in[0];
    const double *x = in->value;
    double *gx = in->grad;
    if (!gx) return;
    for (int64_t i = 0; i < (int64_t)a->out.numel; i++) gx[i] += 3 * x[i] * x[i];
}
static const tg_op deaf_cube = {TEST_OP_PREFIX "deaf_cube", 1, NULL, deaf_cube_forward,
                                deaf_cube_backward, NULL, NULL};

static int register_test_ops(void **state) {
    (void)state;
    int a = tg_op_register(&wrong_sin), b = tg_op_register(&bad_relu);
    int c = tg_op_register(&deaf_cube);
    return a == TG_OK && b == TG_OK && c == TG_OK ? 0 : -1;
}

/* f(a, b) = sum(a * a) + sum(wrong_sin(b)): a is right, b is wrong. */
static tg_node *f_wrong(tg_tape *t, tg_node *const *x, int n, void *c) {
    (void)n, (void)c, (void)t;
    return tg_add(tg_sum(tg_mul(x[0], x[0])), tg_sum(tg_apply(&wrong_sin, x[1], NULL)));
}

static void test_wrong_op_fails(void **state) {
    (void)state;
    assert_ptr_equal(tg_op_find(TEST_OP_PREFIX "wrong_sin"), &wrong_sin);
    double a[3] = {0.3, -0.4, 0.5};
    double b[4] = {1.5, 0.0, 1.2, -1.4}; /* cos is largest at b[1] */
    tg_gradcheck_input in[2] = {{TG_F64, 1, {3}, a, 0}, {TG_F64, 2, {2, 2}, b, 0}};
    tg_gradcheck_report rep;
    assert_int_equal(tg_gradcheck(f_wrong, 2, in, NULL, NULL, &rep), TG_OK);
    assert_int_equal(rep.status, TG_OK);
    /* the message says what failed: the count and the worst pair (below) */
    assert_non_null(strstr(rep.message, "4 of 7 entries disagree; worst input 1 [1], row 0: "
                                        "analytic 2, numeric 1.0000000"));
    assert_int_equal(rep.grad_mismatches, 0);
    assert_false(rep.passed);
    assert_int_equal(rep.checked, 7);
    assert_int_equal(rep.failed, 4); /* every element of b, none of a */
    assert_int_equal(rep.kinks, 0);
    assert_int_equal(rep.worst.input, 1);
    assert_int_equal(rep.worst.index, 1);
    assert_int_equal(rep.worst.row, 0);
    assert_false(rep.worst.ok);
    assert_true(fabs(rep.worst.numeric - 1.0) < 1e-8);        /* cos(0) */
    assert_true(fabs(rep.worst.analytic - 2.0) < 1e-12);      /* 2 cos(0) */
    assert_true(fabs(rep.worst.analytic - 2 * rep.worst.numeric) < 1e-8);
    assert_true(fabs(rep.worst.abs_err - 1.0) < 1e-8);
    assert_true(fabs(rep.worst.rel_err - 1.0) < 1e-8);
    assert_true(rep.max_rel_err >= rep.worst.rel_err);
}

/* The same wrong op on a tensor output too large for the full Jacobian. */
static tg_node *f_wrong_tensor(tg_tape *t, tg_node *const *x, int n, void *c) {
    (void)n, (void)c, (void)t;
    return tg_mul(tg_apply(&wrong_sin, x[0], NULL), x[1]);
}

static void test_wrong_op_fails_projected(void **state) {
    (void)state;
    fcase c = {"wrong_tensor", f_wrong_tensor, 2, {IN(2, 5, 4, ANY), IN(2, 5, 4, ANY)}};
    tg_gradcheck_input in[2];
    make_inputs(&c, 3, in);
    tg_gradcheck_report rep;
    assert_int_equal(tg_gradcheck(c.build, 2, in, NULL, NULL, &rep), TG_OK);
    assert_true(rep.projected);
    assert_false(rep.passed);
    assert_int_equal(rep.worst.input, 0); /* the wrong op's input, not the multiplier */
    assert_true(rep.failed > 0);
    /* For a projection v the wrong rule doubles d(v.f)/da exactly. */
    assert_true(fabs(rep.worst.analytic - 2 * rep.worst.numeric) <
                1e-6 * (1 + fabs(rep.worst.analytic)));
}

/* sum(deaf_cube(x)) and deaf_cube(x) itself, a scalar and a small tensor
 * output: the upstream of the rule is all ones under a plain unit seed, so
 * only the random weight of each unit row (-1, 1/2 or -1/2) catches it;
 * every seed must. */
static tg_node *f_deaf_sum(tg_tape *t, tg_node *const *x, int n, void *c) {
    (void)n, (void)t;
    tg_node *y = tg_apply(&deaf_cube, x[0], NULL);
    return c ? y : tg_sum(y);
}

static tg_node *f_cube_sum(tg_tape *t, tg_node *const *x, int n, void *c) {
    (void)n, (void)t, (void)c;
    return tg_sum(tg_mul(tg_mul(x[0], x[0]), x[0]));
}

static void test_dropped_upstream_fails(void **state) {
    (void)state;
    double x[3] = {0.5, -1.25, 2};
    double one = 0.75;
    tg_gradcheck_input vec[1] = {{TG_F64, 1, {3}, x, 0}}, scalar[1] = {{TG_F64, 0, {0}, &one, 0}};
    tg_gradcheck_opts o = tg_gradcheck_defaults();
    for (uint64_t seed = 1; seed <= 20; seed++) {
        o.seed = seed;
        for (int tensor = 0; tensor < 2; tensor++)
            for (int k = 0; k < 2; k++) {
                tg_gradcheck_report rep;
                assert_int_equal(tg_gradcheck(f_deaf_sum, 1, k ? scalar : vec,
                                              tensor ? (void *)1 : NULL, &o, &rep),
                                 TG_OK);
                if (rep.passed)
                    fail_msg("seed %llu, %s of %s input: a rule that drops its upstream "
                             "passed", (unsigned long long)seed, tensor ? "cube" : "sum",
                             k ? "a scalar" : "a vector");
                assert_false(rep.projected);
            }
    }
    /* The weight is divided back out exactly: the right rule (built-in
     * ops) passes under every seed and reports the gradient's own values. */
    for (uint64_t seed = 1; seed <= 20; seed++) {
        tg_gradcheck_elem e[3];
        o.seed = seed;
        o.entries = e;
        o.max_entries = 3;
        tg_gradcheck_report rep;
        assert_int_equal(tg_gradcheck(f_cube_sum, 1, vec, NULL, &o, &rep), TG_OK);
        assert_true(rep.passed);
        for (int k = 0; k < 3; k++) assert_true(e[k].analytic == 3 * x[k] * x[k]);
    }
}

/* ----------------------------------------------------------------- kinks -- */

static tg_node *f_relu_sum(tg_tape *t, tg_node *const *x, int n, void *c) {
    (void)n, (void)c, (void)t;
    return tg_sum(tg_relu(x[0]));
}

/* relu at exactly 0: the central difference is 1/2, the tape says 0; 0 lies
 * between the one-sided slopes 0 and 1, so the check passes and reports it. */
static void test_kink_relu_at_zero(void **state) {
    (void)state;
    double x[3] = {0.0, 1.0, -1.0};
    tg_gradcheck_input in[1] = {{TG_F64, 1, {3}, x, 0}};
    tg_gradcheck_report rep;
    assert_int_equal(tg_gradcheck(f_relu_sum, 1, in, NULL, NULL, &rep), TG_OK);
    assert_true(rep.passed);
    assert_int_equal(rep.kinks, 1);
    assert_int_equal(rep.first_kink.input, 0);
    assert_int_equal(rep.first_kink.index, 0);
    assert_true(rep.first_kink.kink);
    assert_true(rep.first_kink.ok);
    assert_true(rep.first_kink.analytic == 0);
    assert_true(fabs(rep.first_kink.numeric - 0.5) < 1e-9);
}

/* abs at 0 inside a tensor output: only the entry d out[0] / d x[0] is a kink. */
static tg_node *f_abs(tg_tape *t, tg_node *const *x, int n, void *c) {
    (void)n, (void)c, (void)t;
    return tg_abs(x[0]);
}

static void test_kink_abs_tensor(void **state) {
    (void)state;
    double x[2] = {0.0, 2.0};
    tg_gradcheck_input in[1] = {{TG_F64, 1, {2}, x, 0}};
    tg_gradcheck_elem e[4];
    tg_gradcheck_opts o = tg_gradcheck_defaults();
    o.entries = e;
    o.max_entries = 4;
    tg_gradcheck_report rep;
    assert_int_equal(tg_gradcheck(f_abs, 1, in, NULL, &o, &rep), TG_OK);
    assert_true(rep.passed);
    assert_int_equal(rep.kinks, 1);
    assert_true(e[0].kink);
    assert_false(e[1].kink || e[2].kink || e[3].kink);
    assert_int_equal(rep.first_kink.row, 0);
    assert_int_equal(rep.first_kink.index, 0);
    /* |x|'s one-sided slopes at 0, exactly */
    assert_true(e[0].left == -1 && e[0].right == 1);
    assert_true(e[3].left == 0 && e[3].right == 0);
    assert_string_equal(rep.message, "");
    /* Printed, the kink's entry stands apart, under its explanation, with
     * its slopes instead of the central difference. */
    FILE *tmp = tmpfile();
    assert_non_null(tmp);
    assert_int_equal(tg_gradcheck_print(tmp, &rep, &o), 0);
    long len = ftell(tmp);
    char text[2048] = "";
    assert_true(len > 0 && len < (long)sizeof text);
    rewind(tmp);
    assert_int_equal(fread(text, 1, (size_t)len, tmp), (size_t)len);
    fclose(tmp);
    const char *apart = strstr(text, "\nat a kink (the one-sided slopes differ, so the central "
                                     "difference means nothing there; any derivative between "
                                     "the slopes passes):\nrow 0, input 0 [0]  ");
    const char *pass = strstr(text, "\nPASS: 4 entries agree within 1e-05 + 0.001 * |numeric| "
                                    "(eps 1e-06)\n");
    if (!apart || !pass || pass < apart || !strstr(apart, "slopes -1 (left), 1 (right)  ok\n") ||
        strstr(text, "row 0, input 0 [0]") != apart + strlen("\nat a kink (the one-sided slopes "
                                                             "differ, so the central difference "
                                                             "means nothing there; any derivative "
                                                             "between the slopes passes):\n") ||
        !strstr(text, "\nrow 1, input 0 [1]  "))
        fail_msg("printed:\n%s", text);
}

/* tg_gradcheck_print's other verdicts: a failed check names the worst pair;
 * a check that could not run says why; a NULL stream is refused. */
static void test_print_verdicts(void **state) {
    (void)state;
    double a[3] = {0.3, -0.4, 0.5}, b[4] = {1.5, 0.0, 1.2, -1.4};
    tg_gradcheck_input in[2] = {{TG_F64, 1, {3}, a, 0}, {TG_F64, 2, {2, 2}, b, 0}};
    tg_gradcheck_report rep;
    assert_int_equal(tg_gradcheck(f_wrong, 2, in, NULL, NULL, &rep), TG_OK);
    char text[1024] = "";
    FILE *tmp = tmpfile();
    assert_non_null(tmp);
    assert_int_equal(tg_gradcheck_print(tmp, &rep, NULL), 0);
    assert_int_equal(tg_gradcheck(NULL, 2, in, NULL, NULL, &rep), TG_ERR_NULL);
    assert_int_equal(tg_gradcheck_print(tmp, &rep, NULL), 0);
    long len = ftell(tmp);
    assert_true(len > 0 && len < (long)sizeof text);
    rewind(tmp);
    assert_int_equal(fread(text, 1, (size_t)len, tmp), (size_t)len);
    fclose(tmp);
    static const char want[] = "FAIL: 4 of 7 entries disagree beyond 1e-05 + 0.001 * |numeric| "
                               "(eps 1e-06); worst row 0, input 1 [1]: analytic 2, numeric 1.0000000";
    if (strncmp(text, want, strlen(want)) ||
        !strstr(text, "\nERROR: the check could not run: build is NULL\n"))
        fail_msg("printed:\n%s", text);
    assert_int_equal(tg_gradcheck_print(NULL, &rep, NULL), -1);
}

/* A kink within eps of the point (not at it) is detected too, and judged by
 * the one-sided slopes: relu's 1 passes, bad_relu's 2 does not. */
static tg_node *f_bad_relu(tg_tape *t, tg_node *const *x, int n, void *c) {
    (void)n, (void)c, (void)t;
    return tg_sum(tg_apply(&bad_relu, x[0], NULL));
}

static void test_kink_near_point(void **state) {
    (void)state;
    double x[1] = {3e-7};
    tg_gradcheck_input in[1] = {{TG_F64, 1, {1}, x, 0}};
    tg_gradcheck_report rep;
    assert_int_equal(tg_gradcheck(f_relu_sum, 1, in, NULL, NULL, &rep), TG_OK);
    assert_true(rep.passed);
    assert_int_equal(rep.kinks, 1);
    assert_int_equal(tg_gradcheck(f_bad_relu, 1, in, NULL, NULL, &rep), TG_OK);
    assert_false(rep.passed);
    assert_int_equal(rep.kinks, 1);
    assert_true(rep.worst.kink);
    assert_true(rep.worst.analytic == 2);
    /* Away from the kink the wrong slope fails as an ordinary error. */
    x[0] = 0.5;
    assert_int_equal(tg_gradcheck(f_bad_relu, 1, in, NULL, NULL, &rep), TG_OK);
    assert_false(rep.passed);
    assert_int_equal(rep.kinks, 0);
}

/* Strong curvature is not mistaken for a kink: log near 0 has one-sided
 * slopes far apart, but their gap halves with the step. */
static tg_node *f_log(tg_tape *t, tg_node *const *x, int n, void *c) {
    (void)n, (void)c, (void)t;
    return tg_sum(tg_log(x[0]));
}

static void test_curvature_is_not_a_kink(void **state) {
    (void)state;
    double x[2] = {1e-4, 3e-4};
    tg_gradcheck_input in[1] = {{TG_F64, 1, {2}, x, 0}};
    tg_gradcheck_report rep;
    assert_int_equal(tg_gradcheck(f_log, 1, in, NULL, NULL, &rep), TG_OK);
    assert_true(rep.passed);
    assert_int_equal(rep.kinks, 0);
    /* The slope gaps were large enough to be looked at more closely. */
    assert_true(rep.evaluations > 1 + 2 * rep.elements);
}

/* Degenerate functions: the identity (the output is an input leaf), a
 * constant, and 0-d inputs. */
static tg_node *f_identity(tg_tape *t, tg_node *const *x, int n, void *c) {
    (void)n, (void)c, (void)t;
    return x[0];
}
static tg_node *f_constant(tg_tape *t, tg_node *const *x, int n, void *c) {
    (void)x, (void)n, (void)c;
    return tg_const(t, 3);
}
static tg_node *f_scalars(tg_tape *t, tg_node *const *x, int n, void *c) {
    (void)n, (void)c, (void)t;
    return tg_mul(tg_add(x[0], x[1]), x[2]);
}

static void test_degenerate_functions(void **state) {
    (void)state;
    double a[3] = {1, -2, 3};
    tg_gradcheck_input in[3] = {{TG_F64, 1, {3}, a, 0}};
    tg_gradcheck_report rep;
    assert_int_equal(tg_gradcheck(f_identity, 1, in, NULL, NULL, &rep), TG_OK);
    assert_true(rep.passed);
    assert_int_equal(rep.checked, 9); /* the 3x3 identity, zeros included */
    assert_true(rep.worst.abs_err < 1e-9);
    assert_int_equal(tg_gradcheck(f_constant, 1, in, NULL, NULL, &rep), TG_OK);
    assert_true(rep.passed);
    assert_int_equal(rep.checked, 3);
    assert_true(rep.max_abs_err == 0);
    /* The seeds' circuit on three 0-d inputs. */
    double x = -2, y = 5, z = -4;
    tg_gradcheck_elem e[3];
    tg_gradcheck_opts o = tg_gradcheck_defaults();
    o.entries = e;
    o.max_entries = 3;
    in[0] = (tg_gradcheck_input){TG_F64, 0, {0}, &x, 0};
    in[1] = (tg_gradcheck_input){TG_F64, 0, {0}, &y, 0};
    in[2] = (tg_gradcheck_input){TG_F64, 0, {0}, &z, 0};
    assert_int_equal(tg_gradcheck(f_scalars, 3, in, NULL, &o, &rep), TG_OK);
    assert_true(rep.passed);
    assert_true(rep.value == -12);
    assert_true(e[0].analytic == -4 && e[1].analytic == -4 && e[2].analytic == 3);
    assert_int_equal(e[2].input, 2);
    assert_int_equal(e[2].index, 0);
}

/* ------------------------------------------------------ failing builds -- */

static tg_node *f_null(tg_tape *t, tg_node *const *x, int n, void *c) {
    (void)t, (void)x, (void)n, (void)c;
    return NULL;
}
static tg_node *f_shape_error(tg_tape *t, tg_node *const *x, int n, void *c) {
    (void)n, (void)c;
    int64_t s = 3;
    return tg_add(x[0], tg_input(t, TG_F64, 1, &s, NULL)); /* [2] + [3] */
}
/* Fails only when input 0's first element exceeds 1: at a moved point. */
static tg_node *f_fails_above_one(tg_tape *t, tg_node *const *x, int n, void *c) {
    (void)n, (void)c;
    if (tg_value_at(x[0], 0) > 1) {
        tg_fail(t, TG_ERR_ARG, "my function: x = %.9f is above 1", tg_value_at(x[0], 0));
        return NULL;
    }
    return tg_sum(tg_exp(x[0]));
}
static tg_tape *other_tape;
static tg_node *f_other_tape(tg_tape *t, tg_node *const *x, int n, void *c) {
    (void)t, (void)x, (void)n, (void)c;
    return tg_scalar(other_tape, 1);
}
/* The output's size depends on the point. */
static tg_node *f_changing_shape(tg_tape *t, tg_node *const *x, int n, void *c) {
    (void)n, (void)c, (void)t;
    return tg_value_at(x[0], 0) > 0.5 ? tg_sum(x[0]) : x[0];
}
static tg_node *f_nan(tg_tape *t, tg_node *const *x, int n, void *c) {
    (void)n, (void)c, (void)t;
    return tg_log(x[0]);
}
/* A poison node with the status cleared is impossible, but a callback that
 * records an error and still returns a real node is reported by status. */
static tg_node *f_fail_but_return(tg_tape *t, tg_node *const *x, int n, void *c) {
    (void)n, (void)c;
    tg_node *y = tg_sum(x[0]);
    tg_fail(t, TG_ERR_STATE, "my function changed its mind");
    return y;
}

static void test_failing_callbacks(void **state) {
    (void)state;
    double a[2] = {0.25, 0.5};
    tg_gradcheck_input in[1] = {{TG_F64, 1, {2}, a, 0}};
    tg_gradcheck_report rep;

    assert_int_equal(tg_gradcheck(f_null, 1, in, NULL, NULL, &rep), TG_ERR_NULL);
    assert_int_equal(rep.status, TG_ERR_NULL);
    assert_false(rep.passed);
    assert_non_null(strstr(rep.message, "build returned NULL at the point"));

    assert_int_equal(tg_gradcheck(f_shape_error, 1, in, NULL, NULL, &rep), TG_ERR_SHAPE);
    assert_false(rep.passed);
    assert_non_null(strstr(rep.message, "build failed at the point"));
    assert_non_null(strstr(rep.message, "add: [2] and [3]"));

    a[0] = 1 - 1e-7; /* fine at the point, above 1 at x + eps */
    assert_int_equal(tg_gradcheck(f_fails_above_one, 1, in, NULL, NULL, &rep), TG_ERR_ARG);
    assert_false(rep.passed);
    assert_non_null(strstr(rep.message, "with input 0 [0] moved by +1e-06"));
    assert_non_null(strstr(rep.message, "my function: x = 1.000000"));
    a[0] = 0.25;

    other_tape = tg_tape_new();
    assert_int_equal(tg_gradcheck(f_other_tape, 1, in, NULL, NULL, &rep), TG_ERR_TAPE);
    assert_non_null(strstr(rep.message, "another tape"));
    tg_tape_free(other_tape);

    a[0] = 0.5 - 1e-7; /* a vector at the point, a scalar at x + eps */
    assert_int_equal(tg_gradcheck(f_changing_shape, 1, in, NULL, NULL, &rep), TG_ERR_SHAPE);
    assert_non_null(strstr(rep.message, "has 1 elements with input 0 [0] moved by +1e-06"));
    a[0] = 0.25;

    a[1] = -1; /* log(-1) */
    assert_int_equal(tg_gradcheck(f_nan, 1, in, NULL, NULL, &rep), TG_ERR_NUMERIC);
    assert_non_null(strstr(rep.message, "element 1 is"));
    a[1] = 0.5;

    assert_int_equal(tg_gradcheck(f_fail_but_return, 1, in, NULL, NULL, &rep), TG_ERR_STATE);
    assert_non_null(strstr(rep.message, "my function changed its mind"));
}

/* -------------------------------------------------------- bad arguments -- */

static tg_node *f_relu_const(tg_tape *t, tg_node *const *x, int n, void *c) {
    (void)x, (void)n, (void)c;
    return tg_relu(tg_const(t, 2));
}

static void test_bad_arguments(void **state) {
    (void)state;
    double a[2] = {1, 2};
    tg_gradcheck_input in[1] = {{TG_F64, 1, {2}, a, 0}};
    tg_gradcheck_report rep;
    tg_gradcheck_opts o = tg_gradcheck_defaults();

    assert_int_equal(tg_gradcheck(f_log, 1, in, NULL, NULL, NULL), TG_ERR_NULL);
    assert_int_equal(tg_gradcheck(NULL, 1, in, NULL, NULL, &rep), TG_ERR_NULL);
    assert_string_equal(rep.message, "build is NULL");
    assert_int_equal(tg_gradcheck(f_log, 1, NULL, NULL, NULL, &rep), TG_ERR_NULL);
    assert_int_equal(tg_gradcheck(f_log, -1, in, NULL, NULL, &rep), TG_ERR_ARG);

    in[0].dtype = (tg_dtype)7;
    assert_int_equal(tg_gradcheck(f_log, 1, in, NULL, NULL, &rep), TG_ERR_DTYPE);
    in[0].dtype = TG_F64;
    in[0].shape[0] = 0;
    assert_int_equal(tg_gradcheck(f_log, 1, in, NULL, NULL, &rep), TG_ERR_SHAPE);
    in[0].shape[0] = 2;
    in[0].ndim = 5;
    assert_int_equal(tg_gradcheck(f_log, 1, in, NULL, NULL, &rep), TG_ERR_SHAPE);
    in[0].ndim = 1;
    in[0].data = NULL;
    assert_int_equal(tg_gradcheck(f_log, 1, in, NULL, NULL, &rep), TG_ERR_NULL);
    assert_string_equal(rep.message, "input 0: data is NULL");
    in[0].data = a;

    o.eps = 0;
    assert_int_equal(tg_gradcheck(f_log, 1, in, NULL, &o, &rep), TG_ERR_ARG);
    o.eps = NAN;
    assert_int_equal(tg_gradcheck(f_log, 1, in, NULL, &o, &rep), TG_ERR_ARG);
    o = tg_gradcheck_defaults();
    o.rtol = -1;
    assert_int_equal(tg_gradcheck(f_log, 1, in, NULL, &o, &rep), TG_ERR_ARG);
    o = tg_gradcheck_defaults();
    o.projections = 0;
    assert_int_equal(tg_gradcheck(f_log, 1, in, NULL, &o, &rep), TG_ERR_ARG);

    /* eps below the spacing of doubles at the point. */
    a[0] = 1e20;
    assert_int_equal(tg_gradcheck(f_log, 1, in, NULL, NULL, &rep), TG_ERR_ARG);
    assert_non_null(strstr(rep.message, "below the float64 resolution"));
    a[0] = 1;

    /* No inputs: nothing to compare, a vacuous pass. */
    assert_int_equal(tg_gradcheck(f_relu_const, 0, NULL, NULL, NULL, &rep), TG_OK);
    assert_true(rep.passed);
    assert_int_equal(rep.checked, 0);
    assert_int_equal(rep.worst.input, -1);
}

/* ------------------------------------------------------- tg_gradcheck_fn -- */

static double rosenbrock(const double *x, int64_t n, void *ctx) {
    (void)ctx;
    double s = 0;
    for (int64_t i = 0; i + 1 < n; i++)
        s += 100 * (x[i + 1] - x[i] * x[i]) * (x[i + 1] - x[i] * x[i]) + (1 - x[i]) * (1 - x[i]);
    return s;
}
static void rosenbrock_grad(const double *x, int64_t n, double *g, void *ctx) {
    int wrong = ctx ? *(const int *)ctx : -1; /* the component to get wrong, or -1 */
    for (int64_t i = 0; i < n; i++) g[i] = 0;
    for (int64_t i = 0; i + 1 < n; i++) {
        double d = x[i + 1] - x[i] * x[i];
        g[i] += -400 * x[i] * d - 2 * (1 - x[i]);
        g[i + 1] += 200 * d;
    }
    if (wrong >= 0) g[wrong] = -g[wrong];
}

static void test_gradcheck_fn(void **state) {
    (void)state;
    double x[4] = {-1.2, 1.0, 0.3, 0.8};
    tg_gradcheck_report rep;
    assert_int_equal(tg_gradcheck_fn(rosenbrock, rosenbrock_grad, 4, x, NULL, NULL, &rep), TG_OK);
    assert_true(rep.passed);
    assert_int_equal(rep.checked, 4);
    assert_true(fabs(rep.value - rosenbrock(x, 4, NULL)) == 0);
    int wrong = 2;
    assert_int_equal(tg_gradcheck_fn(rosenbrock, rosenbrock_grad, 4, x, &wrong, NULL, &rep),
                     TG_OK);
    assert_false(rep.passed);
    assert_int_equal(rep.failed, 1);
    assert_int_equal(rep.worst.input, 0);
    assert_int_equal(rep.worst.index, 2);
    assert_true(fabs(rep.worst.analytic + rep.worst.numeric) < 1e-5 * fabs(rep.worst.numeric));
    /* x is not modified. */
    assert_true(x[0] == -1.2 && x[3] == 0.8);
    assert_int_equal(tg_gradcheck_fn(NULL, rosenbrock_grad, 4, x, NULL, NULL, &rep), TG_ERR_NULL);
    assert_int_equal(tg_gradcheck_fn(rosenbrock, NULL, 4, x, NULL, NULL, &rep), TG_ERR_NULL);
    assert_int_equal(tg_gradcheck_fn(rosenbrock, rosenbrock_grad, 4, NULL, NULL, NULL, &rep),
                     TG_ERR_NULL);
    assert_int_equal(tg_gradcheck_fn(rosenbrock, rosenbrock_grad, -1, x, NULL, NULL, &rep),
                     TG_ERR_ARG);
    assert_int_equal(tg_gradcheck_fn(rosenbrock, rosenbrock_grad, 4, x, NULL, NULL, NULL),
                     TG_ERR_NULL);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_core_ops),
        cmocka_unit_test(test_composites),
        cmocka_unit_test(test_no_grad_input_skipped),
        cmocka_unit_test(test_float32_inputs),
        cmocka_unit_test(test_projections),
        cmocka_unit_test(test_entries),
        cmocka_unit_test(test_wrong_op_fails),
        cmocka_unit_test(test_wrong_op_fails_projected),
        cmocka_unit_test(test_dropped_upstream_fails),
        cmocka_unit_test(test_kink_relu_at_zero),
        cmocka_unit_test(test_kink_abs_tensor),
        cmocka_unit_test(test_print_verdicts),
        cmocka_unit_test(test_kink_near_point),
        cmocka_unit_test(test_curvature_is_not_a_kink),
        cmocka_unit_test(test_degenerate_functions),
        cmocka_unit_test(test_failing_callbacks),
        cmocka_unit_test(test_bad_arguments),
        cmocka_unit_test(test_gradcheck_fn),
    };
    return cmocka_run_group_tests(tests, register_test_ops, NULL);
}
