/*
 * Allocation-failure injection. Every heap allocation of the library goes
 * through tg_set_allocator()'s functions; this test installs one that fails
 * the k-th allocation (malloc or realloc) of a scenario, and runs the
 * scenario for k = 1, 2, ... until a run makes fewer than k allocations, so
 * that every allocation the scenario reaches fails once. Each run must end
 * in a clean error (TG_ERR_NOMEM on the tape or in tg_error, or NULL from a
 * constructor), never a crash, and free everything: the allocator counts
 * live blocks and the count must return to where it was (LeakSanitizer and
 * valgrind check the same in tests/run). A run without an injected failure
 * must give exactly the reference results.
 *
 * Scenarios:
 *   registry  the library's first use: indexing the built-in ops;
 *   core      a 2-layer MLP of tg_tensor / tg_input leaves, forward,
 *             backward, three replay steps, a reset and a float32 rebuild,
 *             a scalar chain of 9 record chunks (the tape's chunk table
 *             grows past its first 8), and
 *             where, clamp, slice, concat, index_select, cross_entropy and
 *             logsumexp under tg_grad, tg_hessian and tg_jacobian (reverse
 *             and forward);
 *   nn        a parameter store and MLP, optimiser, dataset, trainer, one
 *             epoch with a short last batch, evaluation, an atomic
 *             checkpoint save (over an existing file, which must survive a
 *             failed save intact), tg_checkpoint_read and _load;
 *   scalar    a compact scalar function of 8.25 chunks of positions (9
 *             chunks of records) whose sin and div store as many partials
 *             (9 chunks),
 *             so that both chunk tables grow past their first 8,
 *             with tensor ops on its scalars, a backward sweep (the
 *             gradient arrays), a replay and a second sweep;
 *   sparse    the sparse drivers: a banded Hessian, a Lagrangian's of a
 *             tensor and a scalar, a Jacobian of 40 colours (blocks of
 *             directions), each evaluated once;
 *   files     tg_dataset_read_idx (gzipped images, plain labels), a CSV of
 *             3000 rows, and tg_gradcheck of a small matmul/softmax graph;
 *   fn        a function object (tapegrad/fn.h) recorded, every driver's
 *             first use (its derivative graph recorded) at a new point, and
 *             a point whose branches differ (a re-recording): a call either
 *             gives the reference numbers or fails with TG_ERR_NOMEM, and
 *             after a failure tg_fn_retape() gives a working object.
 * The number of allocations (k values) and of distinct allocation call
 * stacks each scenario reached is printed.
 */
#define _POSIX_C_SOURCE 200809L
#include <dirent.h>
#include <execinfo.h>
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "tapegrad.h"
#include "tape.h" /* TG_SC_LEN: the scenarios are sized in record chunks */
#include "tapegrad/sparse.h"

/* ------------------------------------------------------------ allocator -- */

static long count;   /* allocations attempted since the scenario started */
static long fail_at; /* the count that fails; 0: none */
static long failed;  /* failures injected in this run */
static long live;    /* blocks handed out and not freed */

/* Distinct call stacks of allocations (a few frames above the allocator). */
#define MAX_STACKS 1024
static uintptr_t stacks[MAX_STACKS];
static int nstacks;
static bool track_stacks;

static void note_stack(void) {
    void *frames[6];
    int n = backtrace(frames, 6);
    uintptr_t h = 1469598103934665603u;
    for (int i = 2; i < n; i++) h = (h ^ (uintptr_t)frames[i]) * 1099511628211u;
    for (int i = 0; i < nstacks; i++)
        if (stacks[i] == h) return;
    if (nstacks < MAX_STACKS) stacks[nstacks++] = h;
}

static bool inject(void) {
    count++;
    if (track_stacks) note_stack();
    if (count == fail_at) {
        failed++;
        return true;
    }
    return false;
}

static void *f_malloc(size_t n, void *ctx) {
    (void)ctx;
    if (inject()) return NULL;
    void *p = malloc(n);
    if (p) live++;
    return p;
}

static void *f_realloc(void *p, size_t n, void *ctx) {
    (void)ctx;
    if (inject()) return NULL;
    void *q = realloc(p, n);
    if (q && !p) live++;
    return q;
}

static void f_free(void *p, void *ctx) {
    (void)ctx;
    if (p) live--;
    free(p);
}

/* Starts a run that fails allocation k (0: none). */
static void arm(long k) {
    count = 0;
    failed = 0;
    fail_at = k;
}

static void disarm(void) { fail_at = 0; }

/* A scenario under fault injection: run records its outcome in a result of
 * size bytes (zeroed first, so that results compare with memcmp);
 * check_ref judges the run without a failure, which made total
 * allocations; check_failed a run in which allocation k failed. */
typedef struct fault_case {
    const char *name;
    size_t size;
    void (*run)(void *result, void *ctx);
    void (*check_ref)(const void *ref, long total, void *ctx);
    void (*check_failed)(long k, const void *result, const void *ref, void *ctx);
} fault_case;

/* Runs c without a failure (the reference), then for k = 1, 2, ... with
 * allocation k failing, until a run makes fewer than k allocations: that
 * run, in which nothing failed, must equal the reference byte for byte.
 * Every run must free all it took and see exactly one failure. */
static void fail_each_allocation(const fault_case *c, void *ctx) {
    void *ref = calloc(1, c->size), *r = calloc(1, c->size);
    assert_true(ref && r);
    long base = live;
    arm(0);
    c->run(ref, ctx);
    long total = count;
    c->check_ref(ref, total, ctx);
    assert_int_equal(live, base);

    track_stacks = true;
    nstacks = 0;
    long k;
    for (k = 1;; k++) {
        arm(k);
        c->run(r, ctx);
        long made = count;
        disarm();
        if (live != base) fail_msg("%s, k = %ld: %ld blocks leaked", c->name, k, live - base);
        if (made < k) { /* nothing failed: the reference results */
            assert_int_equal(failed, 0);
            assert_memory_equal(r, ref, c->size);
            break;
        }
        assert_int_equal(failed, 1);
        c->check_failed(k, r, ref, ctx);
    }
    assert_int_equal(k, total + 1);
    printf("faults: %s: %ld allocations, k = 1..%ld tried, %d distinct call stacks\n", c->name,
           total, k, nstacks);
    track_stacks = false;
    free(ref);
    free(r);
}

/* ------------------------------------------------------------- registry -- */

static void test_registry(void **state) {
    (void)state;
    /* Must run first: nothing has used the library yet. */
    long k, lives[64];
    int nulls = 0;
    track_stacks = true;
    nstacks = 0;
    for (k = 1; k < 64; k++) {
        arm(k);
        tg_tape *t = tg_tape_new();
        long made = count;
        disarm();
        if (t) {
            assert_int_equal(failed, 0); /* a failure must not go unnoticed */
            tg_tape_free(t);
        } else {
            assert_int_equal(failed, 1);
            nulls++;
        }
        lives[k] = live;
        if (made < k) break;
    }
    assert_true(k < 64);
    /* What the registry keeps for the process is allocated once; a failed
     * start keeps nothing or exactly that (when the tape itself failed). */
    long kept = live;
    for (long j = 1; j <= k; j++) assert_true(lives[j] == 0 || lives[j] == kept);
    /* The library works after the failed starts. */
    tg_tape *t = tg_tape_new();
    tg_node *x = tg_scalar(t, 3);
    assert_int_equal(tg_backward(tg_mul(x, x)), TG_OK);
    assert_true(tg_grad_scalar(x) == 6);
    tg_tape_free(t);
    assert_int_equal(live, kept);
    printf("faults: registry: %ld allocations, k = 1..%ld tried (%d runs gave NULL), "
           "%d distinct call stacks\n",
           k - 1, k, nulls, nstacks);
    track_stacks = false;
}

/* ----------------------------------------------------------------- core -- */

enum { B = 8, I = 5, H = 7, O = 3, CHAIN = 3 * TG_SC_LEN }; /* 3 positions a link */

#define NPHASES 4
typedef struct core_result {
    bool created;
    int status[NPHASES]; /* per phase: MLP f64 + replay, f32 rebuild, chain, op set + tg_grad */
    long first[NPHASES]; /* allocation count at the start of each phase */
    double loss[NPHASES], grad[NPHASES];
    char message[NPHASES][256];
} core_result;

static void fill(double *d, size_t n, double scale, unsigned seed) {
    for (size_t i = 0; i < n; i++) d[i] = scale * sin(1.0 + (double)(i * 7 + seed));
}

/* Builds the MLP on t in dtype dt; returns the loss node. */
static tg_node *build_mlp(tg_tape *t, tg_dtype dt, tg_node **X, tg_node **W1) {
    double x[B * I], y[B * O], w1[I * H], b1[H], w2[H * O], b2[O];
    fill(x, B * I, 2, 1), fill(y, B * O, 0.5, 2), fill(w1, I * H, 0.7, 3);
    fill(b1, H, 0.1, 4), fill(w2, H * O, 0.7, 5), fill(b2, O, 0.1, 6);
    float fx[B * I], fy[B * O], fw1[I * H], fb1[H], fw2[H * O], fb2[O];
    double *src[6] = {x, y, w1, b1, w2, b2};
    float *dst[6] = {fx, fy, fw1, fb1, fw2, fb2};
    const size_t len[6] = {B * I, B * O, I * H, H, H * O, O};
    for (int a = 0; a < 6; a++)
        for (size_t i = 0; i < len[a]; i++) dst[a][i] = (float)src[a][i];
    bool f = dt == TG_F64;
    const int64_t sx[2] = {B, I}, sy[2] = {B, O}, sw1[2] = {I, H}, sb1[1] = {H},
                  sw2[2] = {H, O}, sb2[1] = {O};
    *X = tg_input(t, dt, 2, sx, f ? (void *)x : (void *)fx);
    tg_node *Y = tg_input(t, dt, 2, sy, f ? (void *)y : (void *)fy);
    *W1 = tg_tensor(t, dt, 2, sw1, f ? (void *)w1 : (void *)fw1);
    tg_node *B1 = tg_tensor(t, dt, 1, sb1, f ? (void *)b1 : (void *)fb1);
    tg_node *W2 = tg_tensor(t, dt, 2, sw2, f ? (void *)w2 : (void *)fw2);
    tg_node *B2 = tg_tensor(t, dt, 1, sb2, f ? (void *)b2 : (void *)fb2);
    tg_node *h = tg_sigmoid(tg_add(tg_matmul(*X, *W1), B1));
    tg_node *o = tg_add(tg_matmul(h, W2), B2);
    return tg_add(tg_mse(tg_sigmoid(o), Y),
                  tg_add(tg_softmax_xent(o, Y), tg_scale(tg_sum(tg_mul(W2, W2)), 1e-3)));
}

static void core_scenario(void *out, void *ctx) {
    (void)ctx;
    core_result *r = out;
    memset(r, 0, sizeof *r);
    tg_tape *t = tg_tape_new();
    if (!t) return;
    r->created = true;
    tg_node *X, *W1, *loss;

    /* Phase 0: float64 MLP, backward, three replay steps. */
    r->first[0] = count;
    loss = build_mlp(t, TG_F64, &X, &W1);
    tg_backward(loss);
    for (int step = 0; step < 3; step++) {
        if (tg_numel(X) == B * I) { /* never write B * I values into the poison node */
            double *xv = tg_value(X);
            for (int i = 0; i < B * I; i++) xv[i] *= 0.9;
        }
        tg_forward(t);
        tg_zero_grad(t);
        tg_backward(loss);
    }
    r->status[0] = tg_status(t);
    r->loss[0] = tg_value_scalar(loss);
    r->grad[0] = tg_grad_at(W1, 3);
    snprintf(r->message[0], sizeof r->message[0], "%s", tg_status_message(t));

    /* Phase 1: define-by-run: reset (the status too) and rebuild in float32. */
    tg_tape_reset(t);
    r->first[1] = count;
    loss = build_mlp(t, TG_F32, &X, &W1);
    tg_backward(loss);
    r->status[1] = tg_status(t);
    r->loss[1] = tg_value_scalar(loss);
    r->grad[1] = tg_grad_at(W1, 3);
    snprintf(r->message[1], sizeof r->message[1], "%s", tg_status_message(t));

    /* Phase 2: a long scalar chain, past 8 record chunks. */
    tg_tape_reset(t);
    r->first[2] = count;
    tg_node *x = tg_scalar(t, 0.5), *s = x;
    for (int i = 1; i < CHAIN; i++) s = tg_add(tg_mul(s, tg_const(t, 0.5)), x);
    tg_backward(s);
    r->status[2] = tg_status(t);
    r->loss[2] = tg_value_scalar(s);
    r->grad[2] = tg_grad_scalar(x);
    snprintf(r->message[2], sizeof r->message[2], "%s", tg_status_message(t));

    /* Phase 3: ops of three inputs, shape ops and label losses, then
     * second derivatives (tg_grad, tg_hessian) through them. */
    tg_tape_reset(t);
    r->first[3] = count;
    const int64_t s34[2] = {3, 4};
    double xv[12], h[12 * 12];
    fill(xv, 12, 1.5, 11);
    tg_node *z = tg_tensor(t, TG_F64, 2, s34, xv);
    tg_node *w = tg_where(tg_gt(z, tg_const(t, 0)), tg_tanh(z), tg_clamp_const(z, -1, 1));
    tg_node *cat = tg_concat(2, (tg_node *[]){tg_slice(w, 1, 1, 2), tg_index_select(w, 1,
                             (const int64_t[]){0, 0, 3}, 3)}, 1);
    tg_node *f = tg_add(tg_cross_entropy(cat, tg_labels(cat, (const int32_t[]){4, 0, 2})),
                        tg_sum(tg_logsumexp_axis(tg_mul(z, z), 0)));
    tg_node *g;
    tg_grad(f, 1, &z, &g);
    tg_hessian(f, 1, &z, h);
    /* Jacobians: by reverse sweeps (4 outputs, 12 inputs) and by forward
     * mode (12 outputs, 4 inputs). */
    const int64_t s4[1] = {4};
    tg_node *p = tg_tensor(t, TG_F64, 1, s4, (const double[]){0.5, -1, 2, 0.25});
    double jr[4 * 12], jf[12 * 4];
    tg_jacobian(tg_logsumexp_axis(tg_mul(z, z), 0), 1, &z, jr);
    tg_jacobian(tg_mul(tg_tanh(z), p), 1, &p, jf);
    r->status[3] = tg_status(t);
    r->loss[3] = tg_value_scalar(f);
    r->grad[3] = tg_value_at(g, 5) + h[5 * 12 + 6] + jr[2 * 12 + 6] + jf[7 * 4 + 3];
    snprintf(r->message[3], sizeof r->message[3], "%s", tg_status_message(t));
    tg_tape_free(t);
}

static void core_check_ref(const void *vref, long total, void *ctx) {
    (void)ctx;
    const core_result *ref = vref;
    for (int p = 0; p < NPHASES; p++) {
        if (ref->status[p]) fail_msg("reference phase %d: %s", p, ref->message[p]);
        assert_true(isfinite(ref->loss[p]) && isfinite(ref->grad[p]) && ref->grad[p] != 0);
    }
    assert_true(total > 5);
}

/* The phase in which allocation k happened reports it; the others are
 * untouched (a reset clears the status and the next phase runs). */
static void core_check_failed(long k, const void *vr, const void *vref, void *ctx) {
    (void)ctx;
    const core_result *r = vr, *ref = vref;
    if (!r->created) {
        assert_int_equal(k, 1); /* only the tape's own allocation gives NULL */
        return;
    }
    int phase = 0;
    while (phase + 1 < NPHASES && k > r->first[phase + 1]) phase++;
    for (int p = 0; p < NPHASES; p++) {
        if (p == phase) {
            if (r->status[p] != TG_ERR_NOMEM || !strstr(r->message[p], "out of memory"))
                fail_msg("k = %ld, phase %d: status %s \"%s\"", k, p,
                         tg_status_name(r->status[p]), r->message[p]);
            /* A failed recording gives NaN; a failed sweep (gradient
             * memory) leaves the loss of the last forward pass, which the
             * replay steps after it no longer change. */
            assert_true(isnan(r->loss[p]) || r->loss[p] == ref->loss[p] ||
                        strstr(r->message[p], "backward: out of memory"));
        } else {
            if (r->status[p] != TG_OK)
                fail_msg("k = %ld (phase %d): phase %d failed: %s", k, phase, p, r->message[p]);
            assert_true(r->loss[p] == ref->loss[p] && r->grad[p] == ref->grad[p]);
        }
    }
}

static void test_core(void **state) {
    (void)state;
    static const fault_case c = {"core", sizeof(core_result), core_scenario, core_check_ref,
                                 core_check_failed};
    fail_each_allocation(&c, NULL);
}

/* ---------------------------------------------------------- scalar tape -- */

enum { SC_STEPS = 33 * TG_SC_LEN / 12, SC_DETOUR = SC_STEPS / 9 }; /* 3 positions a step */

typedef struct scalar_result {
    bool created;
    int status;
    long first_sweep; /* the allocation count when the first sweep starts */
    double f, gx, gT, f2, gx2;
    char message[256];
} scalar_result;

/* s <- sin(s) / (x + 2) + c, 3 compact positions and 3 partials a step (a
 * contraction, so s settles at a point that depends on x); every
 * SC_DETOUR steps sum(s T) (two tensor ops reading s) joins a 64-byte sum
 * that the output adds at the end, so the chain itself stays compact. */
static void scalar_scenario(void *out, void *ctx) {
    (void)ctx;
    scalar_result *r = out;
    memset(r, 0, sizeof *r);
    tg_tape *t = tg_tape_new();
    if (!t) return;
    r->created = true;
    const int64_t s3[1] = {3};
    tg_node *T = tg_tensor(t, TG_F64, 1, s3, (const double[]){0.5, -0.25, 1});
    tg_node *x = tg_scalar(t, 0.3), *c = tg_const(t, 0.5), *s = x, *acc = tg_const(t, 0);
    tg_node *x2 = tg_add(x, tg_const(t, 2));
    for (int i = 0; i < SC_STEPS; i++) {
        s = tg_add(tg_div(tg_sin(s), x2), c);
        if (i % SC_DETOUR == 0) acc = tg_add(acc, tg_sum(tg_mul(s, T)));
    }
    tg_node *f = tg_add(s, acc);
    r->first_sweep = count;
    tg_backward(f);
    r->f = tg_value_scalar(f);
    r->gx = tg_grad_scalar(x);
    r->gT = tg_grad_at(T, 2);
    /* replay with a new x (never write into the poison node) */
    if (tg_status(t) == TG_OK) {
        *(double *)tg_value(x) = -0.2;
        tg_forward(t);
        tg_zero_grad(t);
        tg_backward(f);
        r->f2 = tg_value_scalar(f);
        r->gx2 = tg_grad_scalar(x);
    }
    r->status = tg_status(t);
    snprintf(r->message, sizeof r->message, "%s", tg_status_message(t));
    tg_tape_free(t);
}

static void scalar_check_ref(const void *vref, long total, void *ctx) {
    (void)ctx;
    const scalar_result *ref = vref;
    if (ref->status) fail_msg("reference run: %s", ref->message);
    assert_true(isfinite(ref->f) && isfinite(ref->gx) && ref->gx != 0 && ref->gT != 0);
    assert_true(isfinite(ref->f2) && ref->f2 != ref->f && ref->gx2 != ref->gx);
    assert_true(total > 8); /* chunks of records, of partials, gradients, nodes */
}

static void scalar_check_failed(long k, const void *vr, const void *vref, void *ctx) {
    (void)ctx;
    const scalar_result *r = vr, *ref = vref;
    if (!r->created) {
        assert_int_equal(k, 1);
        return;
    }
    if (r->status != TG_ERR_NOMEM || !strstr(r->message, "out of memory"))
        fail_msg("k = %ld: status %s \"%s\"", k, tg_status_name(r->status), r->message);
    /* A failed recording gives the poison node's NaN; a failed sweep
     * (gradient memory) leaves the recorded value. */
    if (k <= r->first_sweep)
        assert_true(isnan(r->f));
    else
        assert_true(r->f == ref->f && strstr(r->message, "backward: out of memory"));
    assert_true(r->f2 == 0 && r->gx2 == 0); /* the replay did not run */
}

static void test_scalar_tape(void **state) {
    (void)state;
    static const fault_case c = {"scalar tape", sizeof(scalar_result), scalar_scenario,
                                 scalar_check_ref, scalar_check_failed};
    fail_each_allocation(&c, NULL);
}

/* ------------------------------------------------- forward mode -- */

/* Forward mode and the derived rules: tg_jvp_many's tangent arrays and its
 * memo, tg_hessian's forward columns, and the scratch tape on which a user
 * op that states only its vjp gets its backward rule. */
typedef struct forward_result {
    bool created;
    int status;
    double jv[3], h[4], g;
    char message[256];
} forward_result;

static void square_forward(tg_args *a) {
    const double *x = a->in[0].value;
    for (size_t i = 0; i < a->out.numel; i++) ((double *)a->out.value)[i] = x[i] * x[i];
}
static void square_vjp(tg_node *out, tg_node *g, tg_node **gin) {
    tg_node *x = tg_node_input(out, 0);
    gin[0] = tg_mul(g, tg_scale(x, 2));
}
static const tg_op square_by_vjp = {"faults_square_vjp", 1, NULL, square_forward, NULL,
                                    square_vjp, NULL};

static void forward_scenario(void *out, void *ctx) {
    (void)ctx;
    forward_result *r = out;
    memset(r, 0, sizeof *r);
    tg_tape *t = tg_tape_new();
    if (!t) return;
    r->created = true;
    const int64_t s2[1] = {2};
    tg_node *x = tg_tensor(t, TG_F64, 1, s2, (const double[]){0.3, -0.8});
    tg_node *y = tg_mul(tg_sin(x), tg_exp(tg_prod(x)));
    tg_node *v[3];
    for (int j = 0; j < 3; j++) v[j] = tg_tensor(t, TG_F64, 1, s2, (const double[]){1, j});
    tg_node *jv[3];
    if (!tg_jvp_many(y, 1, &x, 3, v, jv))
        for (int j = 0; j < 3; j++) r->jv[j] = tg_value_at(jv[j], 1);
    tg_node *f = tg_sum(tg_apply(&square_by_vjp, y, NULL));
    tg_hessian(f, 1, &x, r->h);
    tg_zero_grad(t);
    tg_backward(f);
    r->g = tg_grad_at(x, 0);
    r->status = tg_status(t);
    snprintf(r->message, sizeof r->message, "%s", tg_status_message(t));
    tg_tape_free(t);
}

static void forward_check_ref(const void *vref, long total, void *ctx) {
    (void)ctx;
    const forward_result *ref = vref;
    if (ref->status) fail_msg("reference run: %s", ref->message);
    for (int j = 0; j < 3; j++) assert_true(isfinite(ref->jv[j]) && ref->jv[j] != 0);
    for (int j = 0; j < 4; j++) assert_true(isfinite(ref->h[j]) && ref->h[j] != 0);
    assert_true(isfinite(ref->g) && ref->g != 0);
    assert_true(total > 4);
}

static void forward_check_failed(long k, const void *vr, const void *vref, void *ctx) {
    (void)ctx, (void)vref;
    const forward_result *r = vr;
    if (!r->created) {
        assert_int_equal(k, 1);
        return;
    }
    if (r->status != TG_ERR_NOMEM || !strstr(r->message, "out of memory"))
        fail_msg("k = %ld: status %s \"%s\"", k, tg_status_name(r->status), r->message);
}

static void test_forward_mode(void **state) {
    (void)state;
    assert_int_equal(tg_op_register(&square_by_vjp), TG_OK);
    static const fault_case c = {"forward mode", sizeof(forward_result), forward_scenario,
                                 forward_check_ref, forward_check_failed};
    fail_each_allocation(&c, NULL);
}


/* --------------------------------------------------------------- sparse -- */

/* Sparse drivers: a banded Hessian, a Lagrangian's of scalars and tensors,
 * and a Jacobian of 40 colours (evaluated in blocks of directions). */
typedef struct sparse_result {
    bool created;
    int status;
    double h[64], l[64], j[64];
    char message[256];
} sparse_result;

static void sparse_scenario(void *out, void *ctx) {
    (void)ctx;
    sparse_result *r = out;
    memset(r, 0, sizeof *r);
    tg_tape *t = tg_tape_new();
    if (!t) return;
    r->created = true;
    double x0[40];
    for (int i = 0; i < 40; i++) x0[i] = sin(i + 1.0);
    tg_node *x = tg_tensor(t, TG_F64, 1, (const int64_t[]){40}, x0);
    tg_node *a = tg_slice(x, 0, 0, 39), *b = tg_slice(x, 0, 1, 39);
    tg_node *f = tg_sum(tg_square(tg_sub(b, tg_square(a))));
    tg_node *s = tg_scalar(t, 0.5);
    tg_node *c = tg_mul(tg_exp(tg_slice(x, 0, 0, 3)), s);
    tg_node *y = tg_mul(x, tg_sum(tg_sin(x)));
    tg_sparse *h = NULL, *l = NULL, *j = NULL;
    int rh = tg_sparse_hessian_new(f, 1, &x, &h);
    if (!rh) tg_sparse_eval(h, r->h);
    int rl = tg_sparse_lagrangian_new(f, c, 2, (tg_node *[]){x, s}, &l);
    if (!rl) tg_sparse_eval_lagrangian(l, 2, (const double[]){1, -1, 3}, r->l);
    int rj = tg_sparse_jacobian_new(y, 1, &x, &j);
    if (!rj) { /* 1600 nonzeros: the first 64 */
        double *vals = malloc(sizeof(double) * 1600);
        if (vals && !tg_sparse_eval(j, vals)) memcpy(r->j, vals, sizeof r->j);
        free(vals);
    }
    if (!rh != !!h || !rl != !!l || !rj != !!j) /* an object exactly when made */
        snprintf(r->message, sizeof r->message, "an object and its return value disagree");
    tg_sparse_free(h);
    tg_sparse_free(l);
    tg_sparse_free(j);
    r->status = tg_status(t);
    if (!r->message[0]) snprintf(r->message, sizeof r->message, "%s", tg_status_message(t));
    tg_tape_free(t);
}

static void sparse_check_ref(const void *vref, long total, void *ctx) {
    (void)ctx;
    const sparse_result *ref = vref;
    if (ref->status) fail_msg("reference run: %s", ref->message);
    assert_true(ref->h[0] != 0 && ref->l[0] != 0 && ref->j[0] != 0);
    assert_true(total > 20);
}

static void sparse_check_failed(long k, const void *vr, const void *vref, void *ctx) {
    (void)ctx, (void)vref;
    const sparse_result *r = vr;
    if (!r->created) {
        assert_int_equal(k, 1);
        return;
    }
    if (r->status != TG_ERR_NOMEM || !strstr(r->message, "out of memory"))
        fail_msg("k = %ld: status %s \"%s\"", k, tg_status_name(r->status), r->message);
}

static void test_sparse(void **state) {
    (void)state;
    static const fault_case c = {"sparse", sizeof(sparse_result), sparse_scenario,
                                 sparse_check_ref, sparse_check_failed};
    fail_each_allocation(&c, NULL);
}

/* ------------------------------------------------------------------- nn -- */

static char dir[256], model[300];

static int setup_dir(void **state) {
    (void)state;
    const char *tmp = getenv("TMPDIR");
    snprintf(dir, sizeof dir, "%s/tg_faults_XXXXXX", tmp && *tmp ? tmp : "/tmp");
    if (!mkdtemp(dir)) return -1;
    snprintf(model, sizeof model, "%s/model.tgm", dir);
    return 0;
}

static int remove_dir(void **state) {
    (void)state;
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    return system(cmd) == 0 ? 0 : -1;
}

static unsigned char *read_all(const char *path, size_t *n) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    unsigned char *b = malloc(1 << 20);
    *n = b ? fread(b, 1, 1 << 20, f) : 0;
    fclose(f);
    return b;
}

static void write_all(const char *path, const unsigned char *b, size_t n) {
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(b, 1, n, f), n);
    assert_int_equal(fclose(f), 0);
}

static int files_in_dir(void) {
    DIR *d = opendir(dir);
    int n = 0;
    for (struct dirent *e; d && (e = readdir(d));) n += e->d_name[0] != '.';
    if (d) closedir(d);
    return n;
}

/* The outcome of a scenario that is a sequence of calls reporting through
 * tg_error (nn, files). */
typedef struct call_outcome {
    int failed_call; /* 0: all succeeded; else the number of the call that failed */
    int code;
    char message[512];
} call_outcome;

static void fail_call(call_outcome *o, int call, const tg_error *e) {
    o->failed_call = call;
    o->code = e->code;
    snprintf(o->message, sizeof o->message, "%s", e->message);
}

/* A run in which an allocation failed: a call reported TG_ERR_NOMEM. */
static void check_call_failed(long k, const call_outcome *o) {
    if (!o->failed_call || o->code != TG_ERR_NOMEM)
        fail_msg("k = %ld: call %d: code %s \"%s\"", k, o->failed_call,
                 tg_status_name(o->code), o->message);
}

typedef struct nn_result {
    call_outcome call;
    double loss, accuracy, w0;
    bool saved;
} nn_result;

#define NS 10 /* samples: batches of 4, 4 and a short 2 */

/* The model file before the scenario, and after its reference run. */
typedef struct nn_files {
    unsigned char *old_bytes, *new_bytes;
    size_t old_n, new_n;
} nn_files;

static void nn_scenario(void *out, void *ctx) {
    const nn_files *files = ctx;
    nn_result *r = out;
    write_all(model, files->old_bytes, files->old_n); /* what a failed save must keep */
    memset(r, 0, sizeof *r);
    tg_error e = {0};
    int call = 0;
    tg_params *ps = NULL, *ps2 = NULL;
    tg_optim *opt = NULL;
    tg_dataset *ds = NULL;
    tg_trainer *tr = NULL;
    tg_mlp m;
    float x[NS * 4];
    int32_t y[NS];
    for (int i = 0; i < NS * 4; i++) x[i] = (float)sin(i * 0.7);
    for (int i = 0; i < NS; i++) y[i] = i % 3;
    tg_rng rng;
    tg_rng_seed(&rng, 7);
    tg_optim_config cfg = tg_optim_defaults(TG_OPT_ADAM);

#define STEP(ok)                                                                           \
    do {                                                                                   \
        call++;                                                                            \
        if (!(ok)) goto fail;                                                              \
    } while (0)
    STEP((ps = tg_params_new(TG_F32)) != NULL || (e.code = TG_ERR_NOMEM, 0));
    STEP(tg_mlp_parse(&m, "4,6,3", TG_ACT_SIGMOID, TG_ACT_IDENTITY, &e) == TG_OK);
    STEP(tg_mlp_init(ps, &m, TG_INIT_XAVIER, TG_INIT_ZERO, 11, &e) == TG_OK);
    STEP((opt = tg_optim_new(ps, &cfg, &e)) != NULL);
    STEP((ds = tg_dataset_new(NS, 4, 3, x, y, &e)) != NULL);
    STEP((tr = tg_trainer_new(ps, &m, TG_LOSS_XENT, 4, opt, &e)) != NULL);
    STEP(tg_trainer_epoch(tr, ds, &rng, &r->loss, NULL, NULL, &e) == TG_OK);
    STEP(tg_evaluate(ps, &m, TG_LOSS_XENT, ds, &r->accuracy, NULL, NULL, &e) == TG_OK);
    STEP(tg_checkpoint_save(ps, model, &e) == TG_OK);
    r->saved = true;
    STEP((ps2 = tg_checkpoint_read(model, &e)) != NULL);
    STEP(tg_checkpoint_load(ps, model, &e) == TG_OK);
    r->w0 = ((const float *)tg_params_value(ps2, 0))[0];
    goto done;
fail:
    fail_call(&r->call, call, &e);
done:
    tg_params_free(ps2);
    tg_trainer_free(tr);
    tg_dataset_free(ds);
    tg_optim_free(opt);
    tg_params_free(ps);
#undef STEP
}

static void nn_check_ref(const void *vref, long total, void *ctx) {
    (void)total;
    const nn_result *ref = vref;
    nn_files *files = ctx;
    if (ref->call.failed_call)
        fail_msg("reference run: call %d: %s", ref->call.failed_call, ref->call.message);
    assert_true(isfinite(ref->loss) && ref->accuracy >= 0 && ref->saved);
    files->new_bytes = read_all(model, &files->new_n);
    assert_non_null(files->new_bytes);
}

/* The model file is the old one or the new one, whole; no stray temporary
 * file is left beside it. */
static void nn_check_failed(long k, const void *vr, const void *vref, void *ctx) {
    (void)vref;
    const nn_result *r = vr;
    const nn_files *files = ctx;
    check_call_failed(k, &r->call);
    size_t n = 0;
    unsigned char *now = read_all(model, &n);
    assert_non_null(now);
    bool is_old = n == files->old_n && !memcmp(now, files->old_bytes, n);
    bool is_new = n == files->new_n && !memcmp(now, files->new_bytes, n);
    free(now);
    if (r->saved ? !is_new : !is_old)
        fail_msg("k = %ld: the model file is neither the %s model", k, r->saved ? "new" : "old");
    assert_int_equal(files_in_dir(), 1);
}

static void test_nn(void **state) {
    (void)state;
    /* The file a failed save must leave alone: a model saved beforehand. */
    tg_params *old = tg_params_new(TG_F32);
    tg_mlp m;
    assert_int_equal(tg_mlp_parse(&m, "4,6,3", TG_ACT_SIGMOID, TG_ACT_IDENTITY, NULL), TG_OK);
    assert_int_equal(tg_mlp_init(old, &m, TG_INIT_NORMAL, TG_INIT_NORMAL, 99, NULL), TG_OK);
    assert_int_equal(tg_checkpoint_save(old, model, NULL), TG_OK);
    tg_params_free(old);
    nn_files files = {0};
    files.old_bytes = read_all(model, &files.old_n);
    assert_non_null(files.old_bytes);
    static const fault_case c = {"nn", sizeof(nn_result), nn_scenario, nn_check_ref,
                                 nn_check_failed};
    fail_each_allocation(&c, &files);
    free(files.old_bytes);
    free(files.new_bytes);
}

/* ------------------------------------------------------- files, gradcheck -- */
/* Reading datasets (IDX gzipped and plain, CSV) and checking gradients. */

static char idx_images[320], idx_labels[320], csv_path[320];

static void write_gz(const char *path, const unsigned char *b, size_t n, bool gz) {
    if (!gz) {
        write_all(path, b, n);
        return;
    }
    char cmd[1400]; /* room for four paths of the fixture's size */
    write_all(path, b, n);
    int len = snprintf(cmd, sizeof cmd, "gzip -c '%s' > '%s.gz' && mv '%s.gz' '%s'", path, path,
                       path, path);
    assert_true(len > 0 && (size_t)len < sizeof cmd);
    assert_int_equal(system(cmd), 0);
}

static void make_data_files(void) {
    unsigned char img[16 + 5 * 3 * 3], lab[8 + 5];
    const unsigned char hi[16] = {0, 0, 8, 3, 0, 0, 0, 5, 0, 0, 0, 3, 0, 0, 0, 3};
    const unsigned char hl[8] = {0, 0, 8, 1, 0, 0, 0, 5};
    memcpy(img, hi, 16), memcpy(lab, hl, 8);
    for (int i = 0; i < 45; i++) img[16 + i] = (unsigned char)(i * 37);
    for (int i = 0; i < 5; i++) lab[8 + i] = (unsigned char)(i % 3);
    snprintf(idx_images, sizeof idx_images, "%s/images.idx", dir);
    snprintf(idx_labels, sizeof idx_labels, "%s/labels.idx", dir);
    snprintf(csv_path, sizeof csv_path, "%s/data.csv", dir);
    write_gz(idx_images, img, sizeof img, true);
    write_gz(idx_labels, lab, sizeof lab, false);
    /* A CSV of 3000 rows, past the reader's first row and line buffers. */
    FILE *f = fopen(csv_path, "w");
    assert_non_null(f);
    fprintf(f, "label,a,b,c\n");
    for (int i = 0; i < 3000; i++) fprintf(f, "%d,%d,%g,%d\n", i % 4, i, i * 0.5, -i);
    assert_int_equal(fclose(f), 0);
}

static tg_node *gc_build(tg_tape *t, tg_node *const *in, int n, void *ctx) {
    (void)t, (void)n, (void)ctx;
    return tg_sum(tg_mul(tg_softmax(tg_matmul(in[0], in[1]), 1), tg_tanh(in[2])));
}

typedef struct files_result {
    call_outcome call;
    size_t n_idx, n_csv;
    double x_sum, gc_err;
    int passed;
} files_result;

static void files_scenario(void *out, void *ctx) {
    (void)ctx;
    files_result *r = out;
    memset(r, 0, sizeof *r);
    tg_error e = {0};
    int call = 0;
    tg_dataset *a = NULL, *b = NULL;
    double A[6] = {0.1, -0.2, 0.3, 0.4, 0.5, -0.6}, Bm[6] = {1, 2, -1, 0.5, 0.25, -2};
    double C[4] = {0.3, -0.1, 0.7, 0.2};
    const tg_gradcheck_input in[3] = {{TG_F64, 2, {2, 3}, A, 0}, {TG_F64, 2, {3, 2}, Bm, 0},
                                      {TG_F64, 2, {2, 2}, C, 0}};
    tg_gradcheck_report rep;
    call++;
    if (!(a = tg_dataset_read_idx(idx_images, idx_labels, 0, &e))) goto fail;
    call++;
    if (!(b = tg_dataset_read_csv(csv_path, 0, 0.01, 4, &e))) goto fail;
    r->n_idx = tg_dataset_size(a);
    r->n_csv = tg_dataset_size(b);
    for (size_t i = 0; i < r->n_csv * 3; i++) r->x_sum += tg_dataset_x(b)[i];
    call++;
    if (tg_gradcheck(gc_build, 3, in, NULL, NULL, &rep) != TG_OK) {
        e.code = rep.status;
        snprintf(e.message, sizeof e.message, "%s", rep.message);
        goto fail;
    }
    r->passed = rep.passed;
    r->gc_err = rep.max_abs_err;
    goto done;
fail:
    fail_call(&r->call, call, &e);
done:
    tg_dataset_free(a);
    tg_dataset_free(b);
}

static void files_check_ref(const void *vref, long total, void *ctx) {
    (void)total, (void)ctx;
    const files_result *ref = vref;
    if (ref->call.failed_call)
        fail_msg("reference run: call %d: %s", ref->call.failed_call, ref->call.message);
    assert_int_equal(ref->n_idx, 5);
    assert_int_equal(ref->n_csv, 3000);
    assert_true(ref->passed);
}

static void files_check_failed(long k, const void *vr, const void *vref, void *ctx) {
    (void)vref, (void)ctx;
    check_call_failed(k, &((const files_result *)vr)->call);
}

static void test_files_gradcheck(void **state) {
    (void)state;
    make_data_files();
    static const fault_case c = {"files+gradcheck", sizeof(files_result), files_scenario,
                                 files_check_ref, files_check_failed};
    fail_each_allocation(&c, NULL);
}

/* ------------------------------------------------- function objects -- */

/* f(s, x) = sum(where(x > s, x x, |x|)) maximum(s, 1/2), s a scalar, x a [3]
 * tensor: every driver of a tg_fn at a new point, then a point where where
 * and maximum decide otherwise (a retape, the default). */
enum { FN_CALLS = 11 };
typedef struct fn_result {
    int rc[FN_CALLS];
    double out[FN_CALLS][16];
    char message[FN_CALLS][160];
    size_t retapes;
    bool retried[FN_CALLS];
} fn_result;

static int fn_rec(tg_tape *t, const double *x, tg_node **in, tg_node **out, void *ctx) {
    (void)ctx;
    const int64_t s3[1] = {3};
    in[0] = tg_scalar(t, x[0]);
    in[1] = tg_tensor(t, TG_F64, 1, s3, x + 1);
    tg_node *w = tg_where(tg_gt(in[1], in[0]), tg_mul(in[1], in[1]), tg_abs(in[1]));
    out[0] = tg_mul(tg_sum(w), tg_maximum(in[0], tg_const(t, 0.5)));
    return tg_status(t);
}

static void fn_scenario(void *vout, void *ctx) {
    (void)ctx;
    fn_result *r = vout;
    memset(r, 0, sizeof *r);
    const double x0[4] = {0.2, 0.5, -0.3, 1.0}, x1[4] = {0.25, 0.6, -0.2, 1.1};
    const double x2[4] = {0.7, 0.5, -0.3, 1.0}, v[8] = {1, 0, 0.5, -1, 0, 1, 2, 0.25};
    tg_error err[FN_CALLS];
    tg_fn *f = tg_fn_record(2, 1, fn_rec, NULL, x0, &err[0]);
    r->rc[0] = f ? TG_OK : err[0].code;
/* A failure while a driver records its derivative graph leaves the object
 * as it was: the same call again succeeds. */
#define FN_CALL(i, CALL)                                                                   \
    do {                                                                                   \
        r->rc[i] = CALL;                                                                   \
        if (r->rc[i] && strstr(err[i].message, "recording its derivative graph")) {        \
            r->retried[i] = true;                                                          \
            r->rc[i] = CALL;                                                               \
        }                                                                                  \
    } while (0)
    if (f) {
        FN_CALL(1, tg_fn_eval(f, x1, r->out[1], &err[1]));
        FN_CALL(2, tg_fn_grad(f, x1, r->out[2], r->out[2] + 1, &err[2]));
        FN_CALL(3, tg_fn_hvp(f, x1, 2, v, r->out[3], &err[3]));
        FN_CALL(4, tg_fn_jvp(f, x1, 2, v, r->out[4], &err[4]));
        FN_CALL(5, tg_fn_vjp(f, x1, 1, v, r->out[5], &err[5]));
        FN_CALL(6, tg_fn_hessian(f, x1, r->out[6], &err[6]));
        FN_CALL(7, tg_fn_grad(f, x2, NULL, r->out[7], &err[7]));
        FN_CALL(8, tg_fn_jacobian(f, x2, r->out[8], &err[8]));
        r->retapes = tg_fn_retapes(f);
        /* after any failure, a re-recording gives a working object again */
        r->rc[9] = tg_fn_retape(f, x1, &err[9]);
        r->rc[10] = tg_fn_hessian(f, x1, r->out[10], &err[10]);
    }
    for (int i = 0; i < FN_CALLS; i++) {
        if (!r->rc[i]) memset(r->message[i], 0, sizeof r->message[i]);
        else snprintf(r->message[i], sizeof r->message[i], "%s", err[i].message);
        if (r->rc[i]) memset(r->out[i], 0, sizeof r->out[i]);
    }
    tg_fn_free(f);
}

static void fn_check_ref(const void *vref, long total, void *ctx) {
    (void)ctx;
    const fn_result *ref = vref;
    for (int i = 0; i < FN_CALLS; i++)
        if (ref->rc[i]) fail_msg("reference run, call %d: %s", i, ref->message[i]);
    /* f at x1 = (0.6^2 + 0.2 + 1.1^2) 0.5; df/ds = 0 there; at x2 df/ds = 0.5 + 0.3 + 1 */
    assert_true(fabs(ref->out[1][0] - 0.885) < 1e-15 && ref->out[2][1] == 0);
    assert_true(fabs(ref->out[7][0] - 1.8) < 1e-15 && ref->retapes == 1);
    assert_memory_equal(ref->out[10], ref->out[6], sizeof ref->out[6]);
    assert_true(total > 10);
}

static int fn_retries; /* runs whose failure hit a derivative graph's recording */
static void fn_check_failed(long k, const void *vr, const void *vref, void *ctx) {
    (void)ctx;
    const fn_result *r = vr, *ref = vref;
    for (int i = 0; i < FN_CALLS; i++) {
        fn_retries += r->retried[i];
        if (r->retried[i] && r->rc[i]) fail_msg("k = %ld: call %d failed again", k, i);
        if (!r->rc[i]) {
            if (memcmp(r->out[i], ref->out[i], sizeof r->out[i]))
                fail_msg("k = %ld: call %d succeeded with other numbers", k, i);
            continue;
        }
        if (r->rc[i] != TG_ERR_NOMEM || !strstr(r->message[i], "out of memory"))
            fail_msg("k = %ld: call %d: %s \"%s\"", k, i, tg_status_name(r->rc[i]), r->message[i]);
        if (i == 0) return; /* no object */
        if (i < 9 && (r->rc[9] || r->rc[10]))
            fail_msg("k = %ld: call %d failed, and the retape after it too", k, i);
    }
    assert_true(r->retapes <= 1);
}

static void test_function_objects(void **state) {
    (void)state;
    static const fault_case c = {"function objects", sizeof(fn_result), fn_scenario,
                                 fn_check_ref, fn_check_failed};
    fail_each_allocation(&c, NULL);
    printf("faults: function objects: %d failures while recording a derivative graph, each "
           "call tried again with success\n", fn_retries);
    assert_true(fn_retries > 10);
}

int main(void) {
    static const tg_allocator failing = {f_malloc, f_realloc, f_free, NULL};
    tg_set_allocator(&failing); /* before any tape, as required */
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_registry), /* first: the library's first use */
        cmocka_unit_test(test_core),
        cmocka_unit_test(test_scalar_tape),
        cmocka_unit_test(test_forward_mode),
        cmocka_unit_test(test_sparse),
        cmocka_unit_test(test_nn),
        cmocka_unit_test(test_files_gradcheck),
        cmocka_unit_test(test_function_objects),
    };
    return cmocka_run_group_tests(tests, setup_dir, remove_dir);
}
