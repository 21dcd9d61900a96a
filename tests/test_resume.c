/*
 * resume: a training checkpoint (tg_training_save) taken after any step and
 * put back into new objects (tg_training_read, tg_training_restore,
 * tg_trainer_set_position) carries on bit for bit as the training that was
 * never stopped: the same mean losses per epoch and the same parameter
 * bytes, for sgd, momentum and adam in float32 and float64, stopping after
 * every step of two 76-step epochs (so past the divergence snapshot of step
 * 65, which the checkpoint must carry). The oracle is the uninterrupted
 * training. Also: the version-1 file of tests/data written by an earlier
 * tapegrad still loads with its known values; a file of a newer version is
 * refused naming it; another optimiser, hyper-parameter, architecture or
 * dtype is refused naming it, with nothing changed; a model file without a
 * training state is refused by tg_training_read.
 */
#define _POSIX_C_SOURCE 200809L
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <tapegrad.h>
#include <unistd.h>
#include <zlib.h>

#define SAMPLES 530 /* batch 7: 75 full batches and one of 5 per epoch */
#define BATCH 7
#define EPOCHS 2
#define STEPS_PER_EPOCH 76

#include "temp_dir.h"

static char file[256];

static int setup(void **state) {
    (void)state;
    if (temp_dir_make("resume")) return -1;
    snprintf(file, sizeof file, "%s", path_of("train.tgm"));
    return 0;
}

static int teardown(void **state) {
    (void)state;
    return temp_dir_remove();
}

/* Two noisy classes in 3 features, from a fixed generator. */
static tg_dataset *blobs(void) {
    static float x[SAMPLES * 3];
    static int32_t y[SAMPLES];
    tg_rng r;
    tg_rng_seed(&r, 99);
    for (int i = 0; i < SAMPLES; i++) {
        y[i] = i % 2;
        for (int k = 0; k < 3; k++)
            x[i * 3 + k] = (float)(tg_rng_normal(&r) * 0.7 + (y[i] ? 1.0 : -1.0) * (k + 1) * 0.3);
    }
    return tg_dataset_new(SAMPLES, 3, 2, x, y, NULL);
}

/* One training: a store, an optimiser and a trainer over them. */
typedef struct run {
    tg_mlp m;
    tg_params *ps;
    tg_optim *opt;
    tg_trainer *tr;
    tg_rng rng;
    double loss[EPOCHS];
} run;

static void run_new(run *r, tg_optimizer kind, tg_dtype dt, uint64_t seed) {
    assert_int_equal(tg_mlp_parse(&r->m, "3,5,2", TG_ACT_TANH, TG_ACT_IDENTITY, NULL), TG_OK);
    r->ps = tg_params_new(dt);
    assert_int_equal(tg_mlp_init(r->ps, &r->m, TG_INIT_SCALED, TG_INIT_NORMAL, seed, NULL), TG_OK);
    tg_optim_config c = tg_optim_defaults(kind);
    c.lr = kind == TG_OPT_ADAM ? 0.01 : 0.05;
    c.weight_decay = 1e-3;
    assert_non_null(r->opt = tg_optim_new(r->ps, &c, NULL));
    assert_non_null(r->tr = tg_trainer_new(r->ps, &r->m, TG_LOSS_XENT, BATCH, r->opt, NULL));
    tg_rng_seed(&r->rng, seed + 1000);
}

static void run_free(run *r) {
    tg_trainer_free(r->tr);
    tg_optim_free(r->opt);
    tg_params_free(r->ps);
}

/* The epochs from `from` (1-based) to EPOCHS, with the schedule of a
 * decaying learning rate after each. Returns the first error code. */
static int run_epochs(run *r, const tg_dataset *ds, int from) {
    for (int ep = from; ep <= EPOCHS; ep++) {
        tg_error e;
        int rc = tg_trainer_epoch(r->tr, ds, &r->rng, &r->loss[ep - 1], NULL, NULL, &e);
        if (rc) return rc;
        tg_optim_set_lr(r->opt, tg_optim_lr(r->opt) * 0.5);
    }
    return TG_OK;
}

/* The step callback of a training stopped after global step `at`: saves a
 * checkpoint there and stops, as a kill right after it would. */
typedef struct stopper {
    run *r;
    int64_t at;
} stopper;

static int stop_at(void *ctx, tg_trainer *tr, int64_t step) {
    (void)step;
    stopper *s = ctx;
    if (tg_optim_steps(s->r->opt) != s->at) return 0;
    tg_train_position pos;
    assert_int_equal(tg_trainer_position(tr, &pos), TG_OK);
    tg_error e;
    if (tg_training_save(s->r->ps, s->r->opt, &pos, "settings text", file, &e))
        fail_msg("save: %s", e.message);
    return TG_ERR_STATE;
}

static size_t bytes_of(const tg_params *ps) {
    return (size_t)tg_params_size(ps) * (tg_params_dtype(ps) == TG_F64 ? 8 : 4);
}

static void continuation(tg_optimizer kind, tg_dtype dt) {
    tg_dataset *ds = blobs();
    assert_non_null(ds);
    run ref;
    run_new(&ref, kind, dt, 7);
    assert_int_equal(run_epochs(&ref, ds, 1), TG_OK);
    assert_int_equal(tg_optim_steps(ref.opt), EPOCHS * STEPS_PER_EPOCH);
    int checked = 0;
    for (int64_t at = 1; at <= EPOCHS * STEPS_PER_EPOCH; at++) {
        /* Stopped after step `at` ... */
        run a;
        run_new(&a, kind, dt, 7);
        stopper s = {&a, at};
        tg_trainer_on_step(a.tr, stop_at, &s);
        int rc = run_epochs(&a, ds, 1);
        assert_int_equal(rc, TG_ERR_STATE);
        run_free(&a);
        /* ... and carried on by new objects, from other initial values. */
        run b;
        run_new(&b, kind, dt, 12345);
        tg_error e;
        tg_training *t = tg_training_read(file, &e);
        if (!t) fail_msg("read: %s", e.message);
        assert_string_equal(tg_training_settings(t), "settings text");
        tg_train_position pos;
        assert_int_equal(tg_training_restore(t, b.ps, b.opt, &pos, &e), TG_OK);
        tg_training_free(t);
        assert_int_equal(pos.epoch, (at - 1) / STEPS_PER_EPOCH);
        assert_int_equal(pos.step, (at - 1) % STEPS_PER_EPOCH + 1);
        assert_int_equal(tg_trainer_set_position(b.tr, &pos, &e), TG_OK);
        b.rng = pos.rng;
        for (int ep = 1; ep <= pos.epoch; ep++) b.loss[ep - 1] = ref.loss[ep - 1];
        assert_int_equal(run_epochs(&b, ds, (int)pos.epoch + 1), TG_OK);
        assert_int_equal(tg_optim_steps(b.opt), EPOCHS * STEPS_PER_EPOCH);
        for (int ep = 0; ep < EPOCHS; ep++)
            if (memcmp(&b.loss[ep], &ref.loss[ep], sizeof(double)))
                fail_msg("%s %s stopped after step %lld: epoch %d's loss %.17g, uninterrupted "
                         "%.17g", tg_optimizer_name(kind), dt == TG_F64 ? "f64" : "f32",
                         (long long)at, ep + 1, b.loss[ep], ref.loss[ep]);
        if (memcmp(tg_params_data(b.ps), tg_params_data(ref.ps), bytes_of(ref.ps)))
            fail_msg("%s %s stopped after step %lld: the final parameters differ",
                     tg_optimizer_name(kind), dt == TG_F64 ? "f64" : "f32", (long long)at);
        run_free(&b);
        checked++;
    }
    assert_int_equal(checked, EPOCHS * STEPS_PER_EPOCH);
    run_free(&ref);
    tg_dataset_free(ds);
}

static void test_continuation_sgd_f32(void **s) { (void)s, continuation(TG_OPT_SGD, TG_F32); }
static void test_continuation_sgd_f64(void **s) { (void)s, continuation(TG_OPT_SGD, TG_F64); }
static void test_continuation_momentum_f32(void **s) {
    (void)s, continuation(TG_OPT_MOMENTUM, TG_F32);
}
static void test_continuation_momentum_f64(void **s) {
    (void)s, continuation(TG_OPT_MOMENTUM, TG_F64);
}
static void test_continuation_adam_f32(void **s) { (void)s, continuation(TG_OPT_ADAM, TG_F32); }
static void test_continuation_adam_f64(void **s) { (void)s, continuation(TG_OPT_ADAM, TG_F64); }

/* The divergence snapshot travels: stopped after step 70 (the snapshot was
 * taken before step 65), a rollback of the restored optimiser gives the
 * parameters a rollback of the stopped one gives. */
static void test_snapshot_restored(void **state) {
    (void)state;
    tg_dataset *ds = blobs();
    run a, b;
    run_new(&a, TG_OPT_ADAM, TG_F64, 3);
    stopper s = {&a, 70};
    tg_trainer_on_step(a.tr, stop_at, &s);
    assert_int_equal(run_epochs(&a, ds, 1), TG_ERR_STATE);
    run_new(&b, TG_OPT_ADAM, TG_F64, 4);
    tg_training *t = tg_training_read(file, NULL);
    assert_non_null(t);
    tg_train_position pos;
    assert_int_equal(tg_training_restore(t, b.ps, b.opt, &pos, NULL), TG_OK);
    tg_training_free(t);
    assert_int_equal(memcmp(tg_params_data(a.ps), tg_params_data(b.ps), bytes_of(a.ps)), 0);
    assert_int_equal(tg_optim_rollback(a.opt), TG_OK);
    assert_int_equal(tg_optim_rollback(b.opt), TG_OK);
    assert_int_equal(tg_optim_steps(b.opt), 64);
    assert_int_equal(tg_optim_steps(a.opt), 64);
    assert_int_equal(memcmp(tg_params_data(a.ps), tg_params_data(b.ps), bytes_of(a.ps)), 0);
    run_free(&a);
    run_free(&b);
    tg_dataset_free(ds);
}

/* The file of tests/data, written by tapegrad before version 2 existed,
 * with values known from how it was made (tests/data/README.md). */
static void test_old_file_loads(void **state) {
    (void)state;
    const char *src = getenv("TG_SOURCE_DIR");
    char old[4096];
    snprintf(old, sizeof old, "%s/tests/data/model-v1.tgm", src ? src : "..");
    tg_error e;
    tg_params *ps = tg_checkpoint_read(old, &e);
    if (!ps) fail_msg("%s", e.message);
    assert_int_equal(tg_params_dtype(ps), TG_F32);
    assert_int_equal(tg_params_count(ps), 2);
    assert_string_equal(tg_params_name(ps, 0), "layer1.W");
    assert_string_equal(tg_params_name(ps, 1), "layer1.b");
    assert_string_equal(tg_params_meta(ps), "layers=3,2 activation=sigmoid output=sigmoid loss=mse");
    const float *w = tg_params_value(ps, 0), *b = tg_params_value(ps, 1);
    const float want_w[6] = {-0.375f, -0.25f, -0.125f, 0, 0.125f, 0.25f}, want_b[2] = {0.5f, 1.5f};
    assert_int_equal(memcmp(w, want_w, sizeof want_w), 0);
    assert_int_equal(memcmp(b, want_b, sizeof want_b), 0);
    tg_params_free(ps);
    /* A model without a training state is no training checkpoint. */
    assert_null(tg_training_read(old, &e));
    assert_int_equal(e.code, TG_ERR_FORMAT);
    assert_non_null(strstr(e.message, "no training state"));
}

static unsigned char *slurp(const char *path, size_t *n) {
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    static unsigned char buf[1 << 16];
    *n = fread(buf, 1, sizeof buf, f);
    fclose(f);
    return buf;
}

static void spit(const char *path, const unsigned char *b, size_t n) {
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(b, 1, n, f), n);
    assert_int_equal(fclose(f), 0);
}

/* Rewrites the version field of file to v and its CRC to match. */
static void set_version(uint32_t v) {
    size_t n;
    unsigned char *b = slurp(file, &n);
    for (int i = 0; i < 4; i++) b[8 + i] = (unsigned char)(v >> (8 * i));
    uint32_t c = (uint32_t)crc32(0L, b, (uInt)(n - 4));
    for (int i = 0; i < 4; i++) b[n - 4 + i] = (unsigned char)(c >> (8 * i));
    spit(file, b, n);
}

static void test_versions(void **state) {
    (void)state;
    run a;
    run_new(&a, TG_OPT_MOMENTUM, TG_F32, 5);
    /* A plain model is still version 1 (older readers take it); with a
     * training state, version 2. */
    tg_error e;
    assert_int_equal(tg_checkpoint_save(a.ps, file, &e), TG_OK);
    size_t n;
    assert_int_equal(slurp(file, &n)[8], 1);
    tg_train_position pos = {0, 0, 0, {{0}}};
    assert_int_equal(tg_training_save(a.ps, a.opt, &pos, NULL, file, &e), TG_OK);
    assert_int_equal(slurp(file, &n)[8], 2);
    /* Its parameters load as a model's. */
    tg_params *ps = tg_checkpoint_read(file, &e);
    assert_non_null(ps);
    assert_int_equal(memcmp(tg_params_data(ps), tg_params_data(a.ps), bytes_of(ps)), 0);
    tg_params_free(ps);
    /* A newer version is refused, naming it. */
    set_version(3);
    assert_null(tg_training_read(file, &e));
    assert_int_equal(e.code, TG_ERR_FORMAT);
    assert_non_null(strstr(e.message, "format version 3; this tapegrad reads versions 1 to 2"));
    assert_null(tg_checkpoint_read(file, &e));
    assert_non_null(strstr(e.message, "format version 3"));
    run_free(&a);
}

/* Each mismatch refused with its name; the store and optimiser unchanged. */
static void test_refusals(void **state) {
    (void)state;
    run a;
    run_new(&a, TG_OPT_MOMENTUM, TG_F32, 5);
    tg_train_position pos = {2, 3, 1.5, {{1, 2, 3, 4}}};
    assert_int_equal(tg_training_save(a.ps, a.opt, &pos, NULL, file, NULL), TG_OK);
    tg_training *t = tg_training_read(file, NULL);
    assert_non_null(t);
    assert_int_equal(tg_training_optim(t).kind, TG_OPT_MOMENTUM);
    struct {
        const char *sizes;
        tg_dtype dt;
        tg_optimizer kind;
        double momentum;
        int code;
        const char *text;
    } cases[] = {
        {"3,5,2", TG_F32, TG_OPT_ADAM, 0.9, TG_ERR_ARG, "optimiser is momentum; this one is adam"},
        {"3,5,2", TG_F32, TG_OPT_MOMENTUM, 0.5, TG_ERR_ARG, "momentum is 0.9"},
        {"3,6,2", TG_F32, TG_OPT_MOMENTUM, 0.9, TG_ERR_SHAPE, "another architecture"},
        {"3,5,2", TG_F64, TG_OPT_MOMENTUM, 0.9, TG_ERR_DTYPE, "holds float32 parameters"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        tg_mlp m;
        assert_int_equal(tg_mlp_parse(&m, cases[i].sizes, TG_ACT_TANH, TG_ACT_IDENTITY, NULL), 0);
        tg_params *ps = tg_params_new(cases[i].dt);
        assert_int_equal(tg_mlp_init(ps, &m, TG_INIT_SCALED, TG_INIT_NORMAL, 9, NULL), TG_OK);
        tg_optim_config c = tg_optim_defaults(cases[i].kind);
        c.lr = 0.05;
        c.momentum = cases[i].momentum;
        c.weight_decay = 1e-3;
        tg_optim *o = tg_optim_new(ps, &c, NULL);
        size_t nb = bytes_of(ps);
        void *before = malloc(nb);
        memcpy(before, tg_params_data(ps), nb);
        tg_error e;
        tg_train_position got = {-1, -1, -1, {{0}}};
        assert_int_equal(tg_training_restore(t, ps, o, &got, &e), cases[i].code);
        if (!strstr(e.message, cases[i].text))
            fail_msg("case %zu: '%s' lacks '%s'", i, e.message, cases[i].text);
        assert_int_equal(memcmp(before, tg_params_data(ps), nb), 0);
        assert_int_equal(tg_optim_steps(o), 0);
        assert_true(tg_optim_lr(o) == 0.05);
        assert_int_equal(got.epoch, -1);
        free(before);
        tg_optim_free(o);
        tg_params_free(ps);
    }
    tg_training_free(t);
    /* A position past the epoch's end is refused by the epoch. */
    tg_dataset *ds = blobs();
    tg_train_position far = {0, STEPS_PER_EPOCH + 1, 0, {{1, 2, 3, 4}}};
    tg_error e;
    assert_int_equal(tg_trainer_set_position(a.tr, &far, &e), TG_OK);
    tg_rng r = far.rng;
    assert_int_equal(tg_trainer_epoch(a.tr, ds, &r, NULL, NULL, NULL, &e), TG_ERR_ARG);
    assert_non_null(strstr(e.message, "step 77 is past the epoch's 76 steps"));
    tg_dataset_free(ds);
    run_free(&a);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_continuation_sgd_f32),
        cmocka_unit_test(test_continuation_sgd_f64),
        cmocka_unit_test(test_continuation_momentum_f32),
        cmocka_unit_test(test_continuation_momentum_f64),
        cmocka_unit_test(test_continuation_adam_f32),
        cmocka_unit_test(test_continuation_adam_f64),
        cmocka_unit_test(test_snapshot_restored),
        cmocka_unit_test(test_old_file_loads),
        cmocka_unit_test(test_versions),
        cmocka_unit_test(test_refusals),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
