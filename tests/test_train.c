/*
 * train: the replay trainer.
 *
 * Divergence (synthetic data, always run): a batch whose cost overflows,
 * and a batch whose update overflows while its cost stays finite, each stop
 * the epoch with TG_ERR_NUMERIC and a message naming the epoch and the
 * step; the store then holds exactly (bit for bit) the parameters that an
 * independent run of the steps before, on the clean samples only, ends
 * with; a checkpoint saved then loads finite and equal. tg_evaluate refuses
 * a store holding a NaN or an inf, and outputs whose cost overflows.
 *
 * Fashion-MNIST (skipped when the dataset is not installed): one epoch on a
 * 2,000-sample subset: the cost falls and the test accuracy beats 0.6. The
 * real figures come from full runs (docs/tutorial.md), not from here.
 */
#define _POSIX_C_SOURCE 200809L
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <tapegrad.h>
#include <unistd.h>

#define DATA "/usr/share/datasets/fashion-mnist"

static tg_dataset *train_set, *test_set;

/* ------------------------------------------------------------ divergence -- */

enum { N = 400, D = 4, K = 3, BATCH = 2, POISON = 300 };

/* N samples of D features, x = scale * (small pattern), labels i % K; the
 * features of sample POISON are all `poison` when it is not 0. */
static tg_dataset *dataset(float scale, float poison) {
    static float x[N * D];
    static int32_t y[N];
    for (int i = 0; i < N; i++) {
        y[i] = i % K;
        for (int j = 0; j < D; j++) x[i * D + j] = scale * (float)((i * 7 + j * 3) % 11) / 10;
        if (poison != 0 && i == POISON)
            for (int j = 0; j < D; j++) x[i * D + j] = poison;
    }
    tg_error e;
    tg_dataset *ds = tg_dataset_new(N, D, K, x, y, &e);
    assert_non_null(ds);
    return ds;
}

typedef struct run {
    tg_mlp m;
    tg_params *ps;
    tg_optim *opt;
    tg_trainer *tr;
} run;

/* A single identity layer D -> K with the given cost and SGD at lr: its
 * outputs grow with the inputs, so a large input makes the numbers
 * overflow. The same seed gives the same initial parameters. */
static void run_begin(run *r, double lr, tg_loss loss) {
    tg_error e;
    assert_int_equal(tg_mlp_parse(&r->m, "4,3", TG_ACT_IDENTITY, TG_ACT_IDENTITY, &e), TG_OK);
    r->ps = tg_params_new(TG_F32);
    assert_int_equal(tg_mlp_init(r->ps, &r->m, TG_INIT_SCALED, TG_INIT_NORMAL, 7, &e), TG_OK);
    tg_optim_config c = tg_optim_defaults(TG_OPT_SGD);
    c.lr = lr;
    r->opt = tg_optim_new(r->ps, &c, &e);
    r->tr = tg_trainer_new(r->ps, &r->m, loss, BATCH, r->opt, &e);
    assert_non_null(r->tr);
}

static void run_end(run *r) {
    tg_trainer_free(r->tr);
    tg_optim_free(r->opt);
    tg_params_free(r->ps);
}

/* Trains one epoch over a dataset holding a poison sample at POISON (in
 * step POISON / BATCH + 1, in natural order) and checks that it stops there
 * with want in its message, keeping the parameters of the run that trains,
 * from the same start, on the POISON clean samples before it. */
static void diverges_at_poison(tg_loss loss, double lr, float scale, float poison,
                               const char *want) {
    tg_dataset *bad = dataset(scale, poison), *clean = dataset(scale, 0);
    tg_dataset_truncate(clean, POISON);
    run a, b;
    run_begin(&a, lr, loss);
    run_begin(&b, lr, loss);
    tg_error e;
    double mean;
    assert_int_equal(tg_trainer_epoch(b.tr, clean, NULL, &mean, NULL, NULL, &e), TG_OK);
    assert_true(isfinite(mean));
    assert_int_equal(tg_trainer_epoch(a.tr, bad, NULL, NULL, NULL, NULL, &e), TG_ERR_NUMERIC);
    char step[96];
    snprintf(step, sizeof step, "epoch 1, step %d: %s", POISON / BATCH + 1, want);
    if (!strstr(e.message, step) || !strstr(e.message, "learning rate") ||
        !strstr(e.message, "after step 150"))
        fail_msg("message '%s' lacks '%s'", e.message, step);
    printf("  %s\n", e.message);
    assert_int_equal(tg_params_check_finite(a.ps, &e), TG_OK);
    assert_int_equal(tg_params_size(a.ps), tg_params_size(b.ps));
    assert_memory_equal(tg_params_data(a.ps), tg_params_data(b.ps),
                        (size_t)tg_params_size(a.ps) * sizeof(float));

    /* Saved now, the model is finite and the same. */
    char path[] = "/tmp/tg_test_train_XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    close(fd);
    assert_int_equal(tg_checkpoint_save(a.ps, path, &e), TG_OK);
    tg_params *back = tg_checkpoint_read(path, &e);
    unlink(path);
    assert_non_null(back);
    assert_int_equal(tg_params_check_finite(back, &e), TG_OK);
    assert_memory_equal(tg_params_data(back), tg_params_data(b.ps),
                        (size_t)tg_params_size(b.ps) * sizeof(float));
    /* And it still evaluates. */
    double acc;
    assert_int_equal(tg_evaluate(back, &a.m, loss, clean, &acc, NULL, NULL, &e), TG_OK);
    tg_params_free(back);
    run_end(&a);
    run_end(&b);
    tg_dataset_free(bad);
    tg_dataset_free(clean);
}

/* Features of 1e30: the outputs, ~1e30, square to inf in float32: the cost
 * of step 151 is inf and nothing is updated. */
static void test_cost_overflows(void **state) {
    (void)state;
    diverges_at_poison(TG_LOSS_MSE, 0.1, 1, 1e30f, "the loss is inf");
}

/* Features of -3e37 under the softmax cross-entropy, lr 100: the logits
 * (~3e37) keep the cost finite, and its gradient in the logits is at most 1,
 * but the weights' gradient (~1e37) times the learning rate overflows.
 * (The sign makes the poison's label, 0, not its largest logit, whose
 * gradient would vanish.) The bounded gradient keeps lr 100 from diverging
 * on the small clean samples. The step is undone by rolling back to the
 * snapshot taken before step 129 and replaying steps 129 to 150. */
static void test_update_overflows(void **state) {
    (void)state;
    diverges_at_poison(TG_LOSS_XENT, 100, 1e-3f, -3e37f,
                       "the update made a parameter NaN or infinite");
}

/* A non-finite cost before any update names the data, not the rate. */
static void test_first_step(void **state) {
    (void)state;
    float x[2 * D] = {1e30f, 1e30f, 1e30f, 1e30f, 0, 1, 0, 1};
    int32_t y[2] = {0, 1};
    tg_error e;
    tg_dataset *ds = tg_dataset_new(2, D, K, x, y, &e);
    run a;
    run_begin(&a, 0.1, TG_LOSS_MSE);
    assert_int_equal(tg_trainer_epoch(a.tr, ds, NULL, NULL, NULL, NULL, &e), TG_ERR_NUMERIC);
    assert_non_null(strstr(e.message, "epoch 1, step 1: the loss is inf before any update"));
    run_end(&a);
    tg_dataset_free(ds);
}

/* tg_evaluate refuses a store holding NaN or inf, naming the element, and
 * finite weights whose outputs are NaN (inf - inf). */
static void test_evaluate_refuses_non_finite(void **state) {
    (void)state;
    tg_dataset *ds = dataset(1, 0);
    const struct {
        int param, index;
        float value;
        const char *want;
    } cases[] = {
        {0, 5, NAN, "evaluate: parameter layer1.W holds NaN at element 5 of 12"},
        {1, 2, INFINITY, "evaluate: parameter layer1.b holds inf at element 2 of 3"},
        {0, 0, -INFINITY, "evaluate: parameter layer1.W holds -inf at element 0 of 12"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        run a;
        run_begin(&a, 0.1, TG_LOSS_MSE);
        ((float *)tg_params_value(a.ps, cases[i].param))[cases[i].index] = cases[i].value;
        tg_error e;
        double acc = -1;
        assert_int_equal(tg_evaluate(a.ps, &a.m, TG_LOSS_MSE, ds, &acc, NULL, NULL, &e),
                         TG_ERR_NUMERIC);
        if (!strstr(e.message, cases[i].want)) fail_msg("'%s' lacks '%s'", e.message, cases[i].want);
        assert_true(acc == -1); /* untouched */
        run_end(&a);
    }
    /* Finite weights whose outputs overflow: 2 * 3e38 is inf in float32. */
    run a;
    run_begin(&a, 0.1, TG_LOSS_MSE);
    float *w = tg_params_value(a.ps, 0); /* [4, 3] */
    for (int j = 0; j < K; j++) w[0 * K + j] = 3e38f;
    float x[D] = {2, 0, 0, 0};
    int32_t y[1] = {0};
    tg_error e;
    tg_dataset *one = tg_dataset_new(1, D, K, x, y, &e);
    assert_int_equal(tg_evaluate(a.ps, &a.m, TG_LOSS_MSE, one, NULL, NULL, NULL, &e),
                     TG_ERR_NUMERIC);
    if (!strstr(e.message, "evaluate: the cost of samples 0 to 0 is inf")) fail_msg("'%s'", e.message);
    run_end(&a);
    tg_dataset_free(one);
    tg_dataset_free(ds);
}

/* -------------------------------------------------------- fashion-mnist -- */

/* One epoch of the recipe; returns the test accuracy, checks the cost. */
static double one_epoch(const char *sizes, tg_activation hidden, tg_loss loss,
                        tg_optimizer kind, double lr, int batch, tg_init winit, tg_init binit) {
    tg_mlp m;
    tg_error e;
    tg_activation out = loss == TG_LOSS_XENT ? TG_ACT_IDENTITY : hidden;
    assert_int_equal(tg_mlp_parse(&m, sizes, hidden, out, &e), TG_OK);
    tg_params *ps = tg_params_new(TG_F32);
    assert_int_equal(tg_mlp_init(ps, &m, winit, binit, 1, &e), TG_OK);
    tg_optim_config c = tg_optim_defaults(kind);
    c.lr = lr;
    tg_optim *o = tg_optim_new(ps, &c, &e);
    tg_trainer *tr = tg_trainer_new(ps, &m, loss, batch, o, &e);
    assert_non_null(tr);
    double before, after, train_loss, acc;
    assert_int_equal(tg_evaluate(ps, &m, loss, train_set, NULL, &before, NULL, &e), TG_OK);
    tg_rng r;
    tg_rng_seed(&r, 2); /* one epoch on 2,000 samples: 0.66 to 0.75 over shuffle seeds 1-8 */
    assert_int_equal(tg_trainer_epoch(tr, train_set, &r, &train_loss, NULL, NULL, &e), TG_OK);
    assert_int_equal(tg_evaluate(ps, &m, loss, train_set, NULL, &after, NULL, &e), TG_OK);
    assert_int_equal(tg_evaluate(ps, &m, loss, test_set, &acc, NULL, NULL, &e), TG_OK);
    printf("  %s %s %s %s: cost %.4f -> %.4f (epoch mean %.4f), test accuracy %.4f\n", sizes,
           tg_activation_name(hidden), tg_loss_name(loss), tg_optimizer_name(kind), before,
           after, train_loss, acc);
    assert_true(after < before);
    assert_true(train_loss < before);
    tg_trainer_free(tr);
    tg_optim_free(o);
    tg_params_free(ps);
    return acc;
}

static void test_best_recipe_subset(void **state) {
    (void)state;
    if (!train_set) skip();
    double acc = one_epoch("784,256,128,10", TG_ACT_RELU, TG_LOSS_XENT, TG_OPT_ADAM, 1e-3, 32,
                           TG_INIT_HE, TG_INIT_ZERO);
    assert_true(acc > 0.6);
}

/* The seeds' network: its first epoch on 2,000 samples is erratic (sigmoid
 * units saturate at eta 3.0), so only the cost is checked. */
static void test_seeds_network_subset(void **state) {
    (void)state;
    if (!train_set) skip();
    one_epoch("784,100,10", TG_ACT_SIGMOID, TG_LOSS_MSE, TG_OPT_SGD, 3.0, 10, TG_INIT_SCALED,
              TG_INIT_NORMAL);
}

int main(void) {
    tg_error e;
    train_set = tg_dataset_read_mnist(DATA, "train", 10, &e);
    test_set = train_set ? tg_dataset_read_mnist(DATA, "t10k", 10, &e) : NULL;
    if (!train_set || !test_set) {
        printf("note: Fashion-MNIST is not installed (%s); its tests are skipped "
               "(apt-get install dataset-fashion-mnist)\n", e.message);
        tg_dataset_free(train_set);
        train_set = NULL;
    } else {
        tg_dataset_truncate(train_set, 2000);
    }
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_cost_overflows),
        cmocka_unit_test(test_update_overflows),
        cmocka_unit_test(test_first_step),
        cmocka_unit_test(test_evaluate_refuses_non_finite),
        cmocka_unit_test(test_best_recipe_subset),
        cmocka_unit_test(test_seeds_network_subset),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    tg_dataset_free(train_set);
    tg_dataset_free(test_set);
    return rc;
}
