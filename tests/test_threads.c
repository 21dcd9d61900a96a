/*
 * Threads. A tape is single-threaded, but distinct tapes are independent:
 * several threads, each with its own tapes, get bit for bit the results one
 * thread gets. The op registry is shared and locked: concurrent
 * tg_op_register / tg_op_find / tg_op_count / tg_op_at and recording ops by
 * name are safe, and the very first use of the library may happen in several
 * threads at once. A parameter store that no thread writes can be read by
 * several (tg_evaluate). Function objects work one per thread. tests/run
 * also builds this test with ThreadSanitizer.
 *
 * POSIX threads rather than C11 <threads.h>: glibc's thrd_create bypasses
 * the sanitizers' interception, which crashes ThreadSanitizer.
 */
#include <math.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "tapegrad.h"

#define NTHREADS 4

static void run_threads(void *(*fn)(void *), void *args, size_t arg_size) {
    pthread_t th[NTHREADS];
    for (int i = 0; i < NTHREADS; i++)
        assert_int_equal(pthread_create(&th[i], NULL, fn, (char *)args + (size_t)i * arg_size), 0);
    for (int i = 0; i < NTHREADS; i++) assert_int_equal(pthread_join(th[i], NULL), 0);
}

/* ------------------------------------------------------------------------ */
/* The workload: a 2-layer sigmoid MLP with squared-error cost, trained for a
 * few steps by define-by-run and then by replay, in float32 or float64. Its
 * fingerprint is every loss, and the final weights' bytes. */

enum { B = 6, I = 10, H = 12, O = 3, STEPS = 6 };

typedef struct result {
    double loss[2 * STEPS];
    unsigned char w[2][(I * H + H * O) * 8];
    int status;
} result;

static double rnd(uint64_t *s) {
    *s = *s * 6364136223846793005u + 1442695040888963407u;
    return (double)(*s >> 11) / 9007199254740992.0 - 0.5;
}

static void workload(tg_dtype dt, result *r) {
    memset(r, 0, sizeof *r);
    size_t es = dt == TG_F64 ? 8 : 4;
    uint64_t seed = 42;
    /* Parameters live outside the tape (tg_view), as a training loop keeps them. */
    unsigned char w1[I * H * 8], b1[H * 8], w2[H * O * 8], b2[O * 8], x[B * I * 8], y[B * O * 8];
    unsigned char g1[sizeof w1], gb1[sizeof b1], g2[sizeof w2], gb2[sizeof b2];
    unsigned char *params[4] = {w1, b1, w2, b2}, *grads[4] = {g1, gb1, g2, gb2};
    const size_t counts[4] = {I * H, H, H * O, O};
    for (int p = 0; p < 4; p++)
        for (size_t i = 0; i < counts[p]; i++) {
            double v = rnd(&seed);
            if (dt == TG_F64) ((double *)params[p])[i] = v;
            else ((float *)params[p])[i] = (float)v;
        }
    for (int i = 0; i < B * I; i++) {
        double v = rnd(&seed) * 4;
        if (dt == TG_F64) ((double *)x)[i] = v;
        else ((float *)x)[i] = (float)v;
    }
    for (int i = 0; i < B * O; i++) {
        double v = (i % O) == (i / O) % O;
        if (dt == TG_F64) ((double *)y)[i] = v;
        else ((float *)y)[i] = (float)v;
    }
    const int64_t sw1[2] = {I, H}, sb1[1] = {H}, sw2[2] = {H, O}, sb2[1] = {O}, sx[2] = {B, I},
                  sy[2] = {B, O};
    tg_tape *t = tg_tape_new();
    if (!t) {
        r->status = TG_ERR_NOMEM;
        return;
    }
    tg_node *loss = NULL;
    for (int step = 0; step < 2 * STEPS; step++) {
        bool replay = step >= STEPS;
        if (!replay || step == STEPS) {
            tg_tape_reset(t);
            tg_node *W1 = tg_view(t, dt, 2, sw1, w1, g1), *B1 = tg_view(t, dt, 1, sb1, b1, gb1);
            tg_node *W2 = tg_view(t, dt, 2, sw2, w2, g2), *B2 = tg_view(t, dt, 1, sb2, b2, gb2);
            tg_node *X = tg_input(t, dt, 2, sx, x), *Y = tg_input(t, dt, 2, sy, y);
            tg_node *h = tg_sigmoid(tg_add(tg_matmul(X, W1), B1));
            tg_node *o = tg_sigmoid(tg_add(tg_matmul(h, W2), B2));
            loss = tg_add(tg_mse(o, Y), tg_scale(tg_mean(tg_mul(W1, W1)), 1e-3));
        } else {
            tg_forward(t);
        }
        for (int p = 0; p < 4; p++) memset(grads[p], 0, counts[p] * es);
        tg_backward(loss);
        if (tg_status(t)) break;
        r->loss[step] = tg_value_scalar(loss);
        for (int p = 0; p < 4; p++) /* plain gradient descent */
            for (size_t i = 0; i < counts[p]; i++) {
                if (dt == TG_F64) ((double *)params[p])[i] -= 0.5 * ((double *)grads[p])[i];
                else ((float *)params[p])[i] -= 0.5f * ((float *)grads[p])[i];
            }
    }
    r->status = tg_status(t);
    memcpy(r->w[0], w1, I * H * es);
    memcpy(r->w[1], w2, H * O * es);
    tg_tape_free(t);
}

/* ------------------------------------------------------------------------ */

/* The first use of the library in several threads at once: the registry's
 * one-time initialisation must run once and be seen complete by all. */
static void *first_use(void *arg) {
    int *ok = arg;
    tg_tape *t = tg_tape_new();
    tg_node *x = tg_scalar(t, 2);
    tg_node *f = tg_call("sin", tg_call("mul", x, x), NULL);
    *ok = t && tg_backward(f) == TG_OK && tg_op_find("softmax") != NULL &&
          tg_grad_scalar(x) == cos(4.0) * 4.0;
    tg_tape_free(t);
    return NULL;
}

static void test_concurrent_first_use(void **state) {
    (void)state;
    int ok[NTHREADS] = {0};
    run_threads(first_use, ok, sizeof *ok);
    for (int i = 0; i < NTHREADS; i++) assert_true(ok[i]);
}

typedef struct work {
    tg_dtype dtype;
    int rounds;
    int mismatches;
    int status;
    const result *want;
} work;

static void *run_workload(void *arg) {
    work *w = arg;
    result *r = malloc(sizeof *r);
    if (!r) {
        w->status = TG_ERR_NOMEM;
        return NULL;
    }
    for (int k = 0; k < w->rounds; k++) {
        tg_dtype dt = (k + (int)w->dtype) % 2 ? TG_F64 : TG_F32; /* threads interleave dtypes */
        workload(dt, r);
        if (r->status) w->status = r->status;
        const result *e = &w->want[dt];
        if (r->status != e->status || memcmp(r->loss, e->loss, sizeof r->loss) ||
            memcmp(r->w, e->w, sizeof r->w))
            w->mismatches++;
    }
    free(r);
    return NULL;
}

/* Each thread trains its own MLP on its own tape, interleaving float32 and
 * float64; every result is bit-identical to the single-threaded one. */
static void test_tapes_in_parallel(void **state) {
    (void)state;
    result *want = calloc(2, sizeof *want);
    assert_non_null(want);
    workload(TG_F32, &want[TG_F32]);
    workload(TG_F64, &want[TG_F64]);
    for (int d = 0; d < 2; d++) {
        assert_int_equal(want[d].status, TG_OK);
        /* Training progressed: a real workload, not a no-op. */
        assert_true(want[d].loss[2 * STEPS - 1] < want[d].loss[0]);
    }
    work w[NTHREADS];
    for (int i = 0; i < NTHREADS; i++)
        w[i] = (work){.dtype = (tg_dtype)(i % 2), .rounds = 12, .want = want};
    run_threads(run_workload, w, sizeof *w);
    for (int i = 0; i < NTHREADS; i++) {
        assert_int_equal(w[i].status, TG_OK);
        assert_int_equal(w[i].mismatches, 0);
    }
    free(want);
}

/* ------------------------------------------------------------------------ */
/* User ops registered and used from several threads at once. */

#define PER_THREAD 12

static void cube_forward(tg_args *a) {
    const tg_arg *x = &a->in[0];
    int64_t n = (int64_t)a->out.numel;
    double *y = a->out.value;
    const double *v = x->value;
    for (int64_t i = 0; i < n; i++) y[i] = v[i] * v[i] * v[i];
}

static void cube_backward(tg_args *a) {
    const tg_arg *x = &a->in[0];
    double *gx = x->grad;
    if (!gx) return;
    const double *g = a->out.grad, *v = x->value;
    for (int64_t i = 0; i < (int64_t)a->out.numel; i++) gx[i] += g[i] * 3 * v[i] * v[i];
}

static char names[NTHREADS][PER_THREAD][32];
static tg_op user_ops[NTHREADS][PER_THREAD];
static tg_op dup_ops[NTHREADS];

typedef struct reg {
    int id;
    int registered, found, applied, dup_ok, errors;
} reg;

static void *register_and_use(void *arg) {
    reg *r = arg;
    /* All threads race to register the same name: exactly one wins. */
    dup_ops[r->id] = (tg_op){"threads_dup", 1, NULL, cube_forward, cube_backward, NULL, NULL};
    r->dup_ok = tg_op_register(&dup_ops[r->id]) == TG_OK;
    tg_tape *t = tg_tape_new();
    for (int i = 0; i < PER_THREAD; i++) {
        snprintf(names[r->id][i], sizeof names[r->id][i], "threads_cube_%d_%d", r->id, i);
        user_ops[r->id][i] = (tg_op){names[r->id][i], 1, NULL, cube_forward, cube_backward, NULL, NULL};
        if (tg_op_register(&user_ops[r->id][i]) == TG_OK) r->registered++;
        /* Lookups of built-ins, of our ops and of the other threads' ops. */
        if (tg_op_find("matmul") && tg_op_find(names[r->id][i]) == &user_ops[r->id][i]) r->found++;
        char other[32];
        snprintf(other, sizeof other, "threads_cube_%d_%d", (r->id + 1) % NTHREADS, i);
        const tg_op *o = tg_op_find(other); /* may or may not be there yet */
        if (o && strcmp(o->name, other)) r->errors++;
        int n = tg_op_count();
        for (int k = 0; k < n; k++)
            if (!tg_op_at(k) || !tg_op_at(k)->name) r->errors++;
        /* Record our op, by pointer and by name, and differentiate it. */
        tg_tape_reset(t);
        tg_node *x = tg_scalar(t, 1.5 + i);
        tg_node *y = tg_call(names[r->id][i], tg_apply(&user_ops[r->id][i], x, NULL), NULL);
        tg_backward(y);
        double v = 1.5 + i, want = pow(v, 9), dwant = 9 * pow(v, 8);
        if (tg_status(t) == TG_OK && fabs(tg_value_scalar(y) - want) <= 1e-12 * want &&
            fabs(tg_grad_scalar(x) - dwant) <= 1e-12 * dwant)
            r->applied++;
    }
    tg_tape_free(t);
    return NULL;
}

static void test_registry_concurrent(void **state) {
    (void)state;
    int before = tg_op_count();
    reg r[NTHREADS];
    for (int i = 0; i < NTHREADS; i++) r[i] = (reg){.id = i};
    run_threads(register_and_use, r, sizeof *r);
    int dups = 0;
    for (int i = 0; i < NTHREADS; i++) {
        assert_int_equal(r[i].registered, PER_THREAD);
        assert_int_equal(r[i].found, PER_THREAD);
        assert_int_equal(r[i].applied, PER_THREAD);
        assert_int_equal(r[i].errors, 0);
        dups += r[i].dup_ok;
    }
    assert_int_equal(dups, 1);
    assert_int_equal(tg_op_count(), before + NTHREADS * PER_THREAD + 1);
    for (int i = 0; i < NTHREADS; i++)
        for (int k = 0; k < PER_THREAD; k++)
            assert_ptr_equal(tg_op_find(names[i][k]), &user_ops[i][k]);
    /* Registration order: every index names a distinct op. */
    for (int k = 0; k < tg_op_count(); k++)
        assert_ptr_equal(tg_op_find(tg_op_at(k)->name), tg_op_at(k));
}

/* ------------------------------------------------------------------------ */
/* Errors recorded on one tape stay on it while other tapes work. */

static void *fail_or_work(void *arg) {
    int *ok = arg;
    tg_tape *t = tg_tape_new();
    for (int k = 0; k < 200; k++) {
        tg_tape_reset(t);
        const int64_t s23[2] = {2, 3}, s45[2] = {4, 5};
        tg_node *a = tg_tensor(t, TG_F64, 2, s23, NULL), *b = tg_tensor(t, TG_F64, 2, s45, NULL);
        if (k % 2) {
            tg_matmul(a, b);
            if (tg_status(t) != TG_ERR_SHAPE || !strstr(tg_status_message(t), "[2,3]")) *ok = 0;
        } else {
            tg_backward(tg_sum(tg_matmul(a, tg_transpose(a))));
            if (tg_status(t) != TG_OK) *ok = 0;
        }
    }
    tg_tape_free(t);
    return NULL;
}

static void test_errors_stay_on_their_tape(void **state) {
    (void)state;
    int ok[NTHREADS];
    for (int i = 0; i < NTHREADS; i++) ok[i] = 1;
    run_threads(fail_or_work, ok, sizeof *ok);
    for (int i = 0; i < NTHREADS; i++) assert_true(ok[i]);
}

/* ------------------------------------------------------------------------ */
/* One trained model read by several threads at once: tg_evaluate on a shared
 * store and dataset (forward only: nothing writes the store). */

typedef struct eval_work {
    tg_params *ps;
    const tg_mlp *m;
    const tg_dataset *ds;
    double accuracy, loss;
    int rc;
} eval_work;

static void *evaluate(void *arg) {
    eval_work *w = arg;
    for (int k = 0; k < 5 && !w->rc; k++)
        w->rc = tg_evaluate(w->ps, w->m, TG_LOSS_XENT, w->ds, &w->accuracy, &w->loss, NULL, NULL);
    return NULL;
}

static void test_shared_store_read_only(void **state) {
    (void)state;
    tg_mlp m;
    assert_int_equal(tg_mlp_parse(&m, "6,8,3", TG_ACT_TANH, TG_ACT_IDENTITY, NULL), TG_OK);
    tg_params *ps = tg_params_new(TG_F32);
    assert_int_equal(tg_mlp_init(ps, &m, TG_INIT_XAVIER, TG_INIT_ZERO, 5, NULL), TG_OK);
    enum { N = 300 };
    float *x = malloc(N * 6 * sizeof *x);
    int32_t y[N];
    assert_non_null(x);
    for (int i = 0; i < N * 6; i++) x[i] = (float)sin(0.37 * i);
    for (int i = 0; i < N; i++) y[i] = (i * 7) % 3;
    tg_dataset *ds = tg_dataset_new(N, 6, 3, x, y, NULL);
    assert_non_null(ds);
    eval_work want = {.ps = ps, .m = &m, .ds = ds};
    evaluate(&want);
    assert_int_equal(want.rc, TG_OK);
    eval_work w[NTHREADS];
    for (int i = 0; i < NTHREADS; i++) w[i] = (eval_work){.ps = ps, .m = &m, .ds = ds};
    run_threads(evaluate, w, sizeof *w);
    for (int i = 0; i < NTHREADS; i++) {
        assert_int_equal(w[i].rc, TG_OK);
        assert_memory_equal(&w[i].accuracy, &want.accuracy, sizeof want.accuracy);
        assert_memory_equal(&w[i].loss, &want.loss, sizeof want.loss);
    }
    tg_dataset_free(ds);
    tg_params_free(ps);
    free(x);
}

/* ------------------------------------------------------------------------ */
/* One function object per thread (tapegrad/fn.h), each recorded in its
 * thread, its gradient and Hessian at the same points as one thread's,
 * with a branch flip (a re-recording) on the way. */

static int fn_rec(tg_tape *t, const double *x, tg_node **in, tg_node **out, void *ctx) {
    (void)ctx;
    in[0] = tg_scalar(t, x[0]);
    in[1] = tg_scalar(t, x[1]);
    tg_node *m = tg_maximum(in[0], in[1]);
    out[0] = tg_add(tg_mul(tg_sin(m), in[0]), tg_mul(tg_exp(in[1]), tg_abs(in[0])));
    return tg_status(t);
}

typedef struct fn_work {
    double out[40 * 6];
    size_t retapes;
    int rc;
} fn_work;

static void *fn_evaluate(void *arg) {
    fn_work *w = arg;
    double x[2] = {0.5, 0.25};
    tg_fn *f = tg_fn_record(2, 1, fn_rec, NULL, x, NULL);
    if (!f) {
        w->rc = TG_ERR_NOMEM;
        return NULL;
    }
    for (int k = 0; k < 40 && !w->rc; k++) {
        x[0] = sin(0.3 * k), x[1] = cos(0.7 * k);
        w->rc = tg_fn_grad(f, x, NULL, w->out + 6 * k, NULL);
        if (!w->rc) w->rc = tg_fn_hessian(f, NULL, w->out + 6 * k + 2, NULL);
    }
    w->retapes = tg_fn_retapes(f);
    tg_fn_free(f);
    return NULL;
}

static void test_function_objects(void **state) {
    (void)state;
    fn_work want = {0}, w[NTHREADS];
    fn_evaluate(&want);
    assert_int_equal(want.rc, TG_OK);
    assert_true(want.retapes > 0);
    memset(w, 0, sizeof w);
    run_threads(fn_evaluate, w, sizeof *w);
    for (int i = 0; i < NTHREADS; i++) {
        assert_int_equal(w[i].rc, TG_OK);
        assert_int_equal(w[i].retapes, want.retapes);
        assert_memory_equal(w[i].out, want.out, sizeof want.out);
    }
}

int main(void) {
    const struct CMUnitTest tests[] = {
        /* First: it must be the process's first use of the library. */
        cmocka_unit_test(test_concurrent_first_use),
        cmocka_unit_test(test_tapes_in_parallel),
        cmocka_unit_test(test_registry_concurrent),
        cmocka_unit_test(test_errors_stay_on_their_tape),
        cmocka_unit_test(test_shared_store_read_only),
        cmocka_unit_test(test_function_objects),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
