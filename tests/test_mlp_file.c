/*
 * A model trained by the tapegrad program, used from C in one call:
 * tg_mlp_read() gives its sizes, activations and loss (checked against the
 * options it was trained with), tg_mlp_forward() on them gives the forward
 * pass written out by hand from the stored weights, and tg_evaluate() the
 * accuracy `tapegrad eval` prints. Then tg_mlp_describe()'s text read back,
 * and the refusals: an unknown activation, a store that is not an MLP, a
 * missing file, NULL outputs. Skips (77) when TG_CLI is not set.
 */
#define _POSIX_C_SOURCE 200809L

#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include <tapegrad.h>

static const char *cli;
#include "temp_dir.h"

static char csv[96], model[96];

/* 240 samples of 3 blobs in 2-D, the label last; a fixed generator. */
static void write_blobs(const char *path) {
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fprintf(f, "x0,x1,label\n");
    uint64_t s = 12345;
    for (int i = 0; i < 240; i++) {
        int c = i % 3;
        double u[2];
        for (int k = 0; k < 2; k++) {
            s = s * 6364136223846793005ULL + 1442695040888963407ULL;
            u[k] = (double)(s >> 11) * 0x1.0p-53 - 0.5;
        }
        fprintf(f, "%.4f,%.4f,%d\n", 2.0 * c + u[0], c == 1 ? 2 + u[1] : u[1], c);
    }
    assert_int_equal(fclose(f), 0);
}

static void train_with_cli(void **state) {
    (void)state;
    char cmd[512];
    snprintf(cmd, sizeof cmd,
             "'%s' train --data %s --label-col 2 --test %s --layers 2,5,4,3 --activation tanh "
             "--loss xent --optimizer adam --lr 0.05 --epochs 4 --dtype f64 --seed 3 "
             "--save %s >/dev/null 2>&1",
             cli, csv, csv, model);
    assert_int_equal(system(cmd), 0);
}

/* The parameter called name, as doubles (the model is float64). */
static const double *param(tg_params *ps, const char *name) {
    int i = tg_params_find(ps, name);
    assert_true(i >= 0);
    return tg_params_value(ps, i);
}

static void test_read_cli_model(void **state) {
    (void)state;
    tg_mlp m;
    tg_loss loss;
    tg_error e;
    tg_params *ps = tg_mlp_read(model, &m, &loss, &e);
    if (!ps) fail_msg("tg_mlp_read: %s", e.message);
    assert_int_equal(tg_params_dtype(ps), TG_F64);
    assert_int_equal(m.nlayers, 3);
    assert_true(m.sizes[0] == 2 && m.sizes[1] == 5 && m.sizes[2] == 4 && m.sizes[3] == 3);
    assert_int_equal(m.act[0], TG_ACT_TANH);
    assert_int_equal(m.act[1], TG_ACT_TANH);
    assert_int_equal(m.act[2], TG_ACT_IDENTITY); /* xent's default output */
    assert_int_equal(loss, TG_LOSS_XENT);

    /* The forward pass by hand: tanh(x W1 + b1), tanh(. W2 + b2), . W3 + b3. */
    const double x[2][2] = {{0.1, -0.2}, {2.3, 1.9}};
    const int64_t shape[2] = {2, 2};
    tg_tape *t = tg_tape_new();
    tg_node *out = tg_mlp_forward(tg_input(t, TG_F64, 2, shape, x), ps, &m);
    assert_int_equal(tg_status(t), TG_OK);
    for (int r = 0; r < 2; r++) {
        double a[5], b[5];
        int n = 2;
        memcpy(a, x[r], sizeof x[r]);
        for (int l = 0; l < 3; l++) {
            char wn[16], bn[16];
            snprintf(wn, sizeof wn, "layer%d.W", l + 1);
            snprintf(bn, sizeof bn, "layer%d.b", l + 1);
            const double *W = param(ps, wn), *bias = param(ps, bn);
            int k = (int)m.sizes[l + 1];
            for (int j = 0; j < k; j++) {
                long double z = bias[j];
                for (int i = 0; i < n; i++) z += (long double)a[i] * W[i * k + j];
                b[j] = l < 2 ? tanh((double)z) : (double)z;
            }
            memcpy(a, b, sizeof(double) * (size_t)k);
            n = k;
        }
        for (int j = 0; j < 3; j++) {
            double got = tg_value_at(out, r * 3 + j);
            if (!(fabs(got - a[j]) <= 1e-13 * (1 + fabs(a[j]))))
                fail_msg("sample %d output %d: tg_mlp_forward %.17g, by hand %.17g", r, j, got,
                         a[j]);
        }
    }
    tg_tape_free(t);

    /* tg_evaluate's accuracy is the one tapegrad eval prints. */
    tg_dataset *ds = tg_dataset_read_csv(csv, 2, 1, 3, &e);
    if (!ds) fail_msg("%s", e.message);
    double acc;
    assert_int_equal(tg_evaluate(ps, &m, loss, ds, &acc, NULL, NULL, &e), TG_OK);
    char cmd[512], line[128] = "";
    snprintf(cmd, sizeof cmd, "'%s' eval --model %s --data %s --label-col 2", cli, model, csv);
    FILE *p = popen(cmd, "r");
    assert_non_null(p);
    assert_non_null(fgets(line, sizeof line, p));
    assert_int_equal(pclose(p), 0);
    double printed;
    assert_int_equal(sscanf(line, "test_accuracy=%lf", &printed), 1);
    if (!(fabs(printed - acc) <= 0.5e-4)) fail_msg("tg_evaluate %.6f, tapegrad eval %s", acc, line);
    assert_true(acc > 0.9); /* the blobs are apart: the model is a real one */
    tg_dataset_free(ds);
    tg_params_free(ps);
}

/* A model saved from C with tg_mlp_describe()'s text reads back whole;
 * a description it cannot read, a store that is not an MLP, a missing file
 * and NULL outputs are refused with err saying why. */
static void test_describe_and_refusals(void **state) {
    (void)state;
    tg_mlp m, got;
    tg_loss loss = TG_LOSS_XENT;
    tg_error e;
    char path[96], text[256];
    assert_int_equal(tg_mlp_parse(&m, "3,7,2", TG_ACT_RELU, TG_ACT_SIGMOID, &e), TG_OK);
    int len = tg_mlp_describe(&m, TG_LOSS_MSE, text, sizeof text);
    assert_string_equal(text, "layers=3,7,2 activation=relu output=sigmoid loss=mse");
    assert_int_equal(len, (int)strlen(text));
    assert_int_equal(tg_mlp_describe(&m, TG_LOSS_MSE, text, 8), len); /* snprintf's count */
    assert_string_equal(text, "layers=");
    tg_params *ps = tg_params_new(TG_F32);
    assert_int_equal(tg_mlp_init(ps, &m, TG_INIT_NORMAL, TG_INIT_ZERO, 1, &e), TG_OK);
    assert_int_equal(tg_mlp_describe(&m, TG_LOSS_MSE, text, sizeof text), len);
    assert_int_equal(tg_params_set_meta(ps, text), TG_OK);
    snprintf(path, sizeof path, "%s", path_of("c.tgm"));
    assert_int_equal(tg_checkpoint_save(ps, path, &e), TG_OK);
    tg_params *back = tg_mlp_read(path, &got, &loss, &e);
    assert_non_null(back);
    assert_int_equal(e.code, TG_OK);
    assert_int_equal(got.nlayers, 2);
    assert_true(got.sizes[0] == 3 && got.sizes[1] == 7 && got.sizes[2] == 2);
    assert_true(got.act[0] == TG_ACT_RELU && got.act[1] == TG_ACT_SIGMOID);
    assert_int_equal(loss, TG_LOSS_MSE);
    tg_params_free(back);

    /* an activation it does not know: refused, m and loss unchanged */
    assert_int_equal(tg_params_set_meta(ps, "layers=3,7,2 activation=swish loss=mse"), TG_OK);
    assert_int_equal(tg_checkpoint_save(ps, path, &e), TG_OK);
    memset(&got, 0x5a, sizeof got);
    tg_mlp before = got;
    assert_null(tg_mlp_read(path, &got, &loss, &e));
    assert_int_equal(e.code, TG_ERR_FORMAT);
    assert_non_null(strstr(e.message, "unknown activation 'swish'"));
    assert_memory_equal(&got, &before, sizeof got);
    assert_int_equal(loss, TG_LOSS_MSE);

    /* parameters that are not an MLP's */
    tg_params *other = tg_params_new(TG_F32);
    const int64_t two = 2;
    assert_int_equal(tg_params_add(other, "w", 1, &two, NULL), TG_OK);
    assert_int_equal(tg_checkpoint_save(other, path, &e), TG_OK);
    assert_null(tg_mlp_read(path, &got, &loss, &e));
    assert_int_equal(e.code, TG_ERR_FORMAT);
    assert_non_null(strstr(e.message, path));
    tg_params_free(other);

    snprintf(path, sizeof path, "%s", path_of("none.tgm"));
    assert_null(tg_mlp_read(path, &got, &loss, &e));
    assert_int_equal(e.code, TG_ERR_IO);
    assert_null(tg_mlp_read(model, NULL, &loss, &e));
    assert_int_equal(e.code, TG_ERR_NULL);
    assert_null(tg_mlp_read(model, &got, NULL, &e));
    assert_int_equal(e.code, TG_ERR_NULL);
    tg_params_free(ps);
}

int main(void) {
    cli = getenv("TG_CLI");
    if (!cli || !*cli) {
        printf("SKIP: TG_CLI is not set (the tapegrad program trains the model read here)\n");
        return 77;
    }
    if (temp_dir_make("mlp_file")) return 1;
    snprintf(csv, sizeof csv, "%s", path_of("blobs.csv"));
    snprintf(model, sizeof model, "%s", path_of("m.tgm"));
    write_blobs(csv);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(train_with_cli),
        cmocka_unit_test(test_read_cli_model),
        cmocka_unit_test(test_describe_and_refusals),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    if (temp_dir_remove()) rc = 1;
    return rc;
}
