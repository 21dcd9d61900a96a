/*
 * Replay: a small MLP graph is built once, then trained for 1,000 steps of
 *     write new inputs through tg_value(), tg_forward(), tg_zero_grad(),
 *     tg_backward(), a manual SGD update of the parameters' values,
 * with every heap allocation of the library counted through an allocator
 * hook: after the first step there must be none. Along the way the replayed
 * values and gradients must equal, bit for bit, those of a fresh
 * define-by-run build of the same graph on the same data.
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

/* ------------------------------------------------ a counting allocator -- */

static struct {
    bool on;       /* count only while set */
    long allocs;   /* malloc and realloc calls */
    long frees;
} counter;

static void *count_malloc(size_t n, void *ctx) {
    (void)ctx;
    if (counter.on) counter.allocs++;
    return malloc(n);
}
static void *count_realloc(void *p, size_t n, void *ctx) {
    (void)ctx;
    if (counter.on) counter.allocs++;
    return realloc(p, n);
}
static void count_free(void *p, void *ctx) {
    (void)ctx;
    if (counter.on) counter.frees++;
    free(p);
}
static const tg_allocator counting = {count_malloc, count_realloc, count_free, NULL};

/* ------------------------------------------------------------- the net -- */

#define BATCH 8
#define NIN 4
#define NHID 6
#define NOUT 2
#define STEPS 1000
#define LR 0.5f

static uint64_t rng = 0x7e91a4ULL;
static float uniform(float lo, float hi) {
    uint64_t z = (rng += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    z ^= z >> 31;
    return lo + (hi - lo) * (float)((double)(z >> 11) * 0x1.0p-53);
}

/* A fresh batch from a fixed teacher the net can learn: targets in (0, 1)
 * that depend smoothly on x. */
static void make_batch(float *x, float *y) {
    for (int r = 0; r < BATCH; r++) {
        float *xr = x + r * NIN;
        for (int k = 0; k < NIN; k++) xr[k] = uniform(-1, 1);
        y[r * NOUT + 0] = 0.5f + 0.2f * (xr[0] - xr[1]);
        y[r * NOUT + 1] = 0.5f + 0.1f * (xr[2] + xr[3]) - 0.2f * xr[0];
    }
}

typedef struct net {
    tg_node *x, *y, *W1, *b1, *W2, *b2, *out, *loss;
} net;

/* The graph: out = sigmoid(sigmoid(x W1 + b1) W2 + b2), loss = mse(out, y). */
static void build(tg_tape *t, net *n, const float *x, const float *y, const float *W1,
                  const float *b1, const float *W2, const float *b2) {
    const int64_t sx[2] = {BATCH, NIN}, sy[2] = {BATCH, NOUT}, sw1[2] = {NIN, NHID},
                  sb1[1] = {NHID}, sw2[2] = {NHID, NOUT}, sb2[1] = {NOUT};
    n->x = tg_input(t, TG_F32, 2, sx, x);
    n->y = tg_input(t, TG_F32, 2, sy, y);
    n->W1 = tg_tensor(t, TG_F32, 2, sw1, W1);
    n->b1 = tg_tensor(t, TG_F32, 1, sb1, b1);
    n->W2 = tg_tensor(t, TG_F32, 2, sw2, W2);
    n->b2 = tg_tensor(t, TG_F32, 1, sb2, b2);
    tg_node *h = tg_sigmoid(tg_add(tg_matmul(n->x, n->W1), n->b1));
    n->out = tg_sigmoid(tg_add(tg_matmul(h, n->W2), n->b2));
    n->loss = tg_mse(n->out, n->y);
}

static void sgd(tg_node *p) {
    float *v = tg_value(p);
    const float *g = tg_grad(p);
    for (int64_t i = 0; i < tg_numel(p); i++) v[i] -= LR * g[i];
}

static void expect_same(tg_node *replayed, tg_node *fresh, bool grad, const char *what, int step) {
    size_t bytes = (size_t)tg_numel(fresh) * sizeof(float);
    assert_int_equal(tg_numel(replayed), tg_numel(fresh));
    const void *a = grad ? tg_grad(replayed) : tg_value(replayed);
    const void *b = grad ? tg_grad(fresh) : tg_value(fresh);
    assert_non_null(a);
    assert_non_null(b);
    if (memcmp(a, b, bytes) != 0)
        fail_msg("step %d: replayed %s %s differs from a fresh build", step, what,
                 grad ? "gradient" : "value");
}

/* Rebuilds the graph define-by-run from the replay tape's current data and
 * compares every value and gradient that the replay produced. */
static void compare_with_fresh_build(const net *r, int step) {
    tg_tape *t = tg_tape_new();
    net f;
    build(t, &f, tg_value(r->x), tg_value(r->y), tg_value(r->W1), tg_value(r->b1),
          tg_value(r->W2), tg_value(r->b2));
    assert_int_equal(tg_backward(f.loss), TG_OK);
    expect_same(r->loss, f.loss, false, "loss", step);
    expect_same(r->out, f.out, false, "output", step);
    expect_same(r->out, f.out, true, "output", step);
    expect_same(r->W1, f.W1, true, "W1", step);
    expect_same(r->b1, f.b1, true, "b1", step);
    expect_same(r->W2, f.W2, true, "W2", step);
    expect_same(r->b2, f.b2, true, "b2", step);
    tg_tape_free(t);
}

static void test_replay_allocates_nothing(void **state) {
    (void)state;
    tg_set_allocator(&counting);
    counter.on = true;
    counter.allocs = counter.frees = 0;

    /* Build once: zero inputs for now, small random parameters. */
    float W1[NIN * NHID], b1[NHID], W2[NHID * NOUT], b2[NOUT];
    for (int i = 0; i < NIN * NHID; i++) W1[i] = uniform(-1, 1);
    for (int i = 0; i < NHID; i++) b1[i] = 0;
    for (int i = 0; i < NHID * NOUT; i++) W2[i] = uniform(-1, 1);
    for (int i = 0; i < NOUT; i++) b2[i] = 0;
    tg_tape *t = tg_tape_new();
    assert_non_null(t);
    net n;
    build(t, &n, NULL, NULL, W1, b1, W2, b2);
    assert_int_equal(tg_status(t), TG_OK);
    size_t nodes = tg_tape_size(t);

    long after_first = -1;
    size_t bytes_after_first = 0;
    double early = 0, late = 0;
    for (int step = 1; step <= STEPS; step++) {
        make_batch(tg_value(n.x), tg_value(n.y));
        assert_int_equal(tg_forward(t), TG_OK);
        tg_zero_grad(t);
        assert_int_equal(tg_backward(n.loss), TG_OK);
        if (step == 1 || step == 2 || step == 500 || step == STEPS) {
            counter.on = false; /* the reference build is not part of the replay */
            compare_with_fresh_build(&n, step);
            counter.on = true;
        }
        double loss = tg_value_scalar(n.loss);
        assert_true(isfinite(loss));
        if (step <= 100) early += loss;
        if (step > STEPS - 100) late += loss;
        sgd(n.W1);
        sgd(n.b1);
        sgd(n.W2);
        sgd(n.b2);
        if (step == 1) {
            after_first = counter.allocs;
            bytes_after_first = tg_tape_bytes(t);
        } else if (counter.allocs != after_first) {
            fail_msg("step %d: %ld heap allocations since the first step", step,
                     counter.allocs - after_first);
        }
    }
    assert_int_equal(counter.allocs, after_first);
    assert_int_equal(counter.frees, 0);
    assert_int_equal(tg_tape_bytes(t), bytes_after_first);
    assert_int_equal(tg_tape_size(t), nodes); /* replay records nothing new */
    assert_true(late < 0.8 * early);          /* and it did learn */
    print_message("replay: %d steps, %ld allocations in all (all before step 2), mean loss "
                  "%.4f -> %.4f\n",
                  STEPS, after_first, early / 100, late / 100);

    counter.on = false;
    tg_tape_free(t);
    tg_set_allocator(NULL);
}

/* Replay is also what tg_forward() promises for a scalar tape: new leaf
 * values give the values of a fresh build. */
static void test_replay_scalars(void **state) {
    (void)state;
    tg_tape *t = tg_tape_new();
    tg_node *x = tg_scalar(t, 0), *y = tg_scalar(t, 0);
    tg_node *f = tg_add(tg_mul(tg_sin(x), tg_exp(y)), tg_pow(tg_sub(x, y), 2));
    for (int i = 0; i < 50; i++) {
        double xv = 0.1 * i - 2, yv = 1 - 0.03 * i;
        *(double *)tg_value(x) = xv;
        *(double *)tg_value(y) = yv;
        assert_int_equal(tg_forward(t), TG_OK);
        tg_zero_grad(t);
        assert_int_equal(tg_backward(f), TG_OK);
        assert_true(tg_value_scalar(f) == sin(xv) * exp(yv) + pow(xv - yv, 2));
        assert_near(tg_grad_scalar(x), cos(xv) * exp(yv) + 2 * (xv - yv), 1e-12);
        assert_near(tg_grad_scalar(y), sin(xv) * exp(yv) - 2 * (xv - yv), 1e-12);
    }
    tg_tape_free(t);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_replay_allocates_nothing),
        cmocka_unit_test(test_replay_scalars),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
