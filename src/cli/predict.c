/*
 * tapegrad predict: the class a saved model predicts, with its
 * probabilities, for one sample or every sample of a dataset.
 */
#define _POSIX_C_SOURCE 200809L
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <tapegrad.h>

#include "model.h"

/* Samples per replayed forward pass. */
#define CHUNK 1000

static void predict_usage(FILE *f) {
    fprintf(f,
            "usage: tapegrad predict --model FILE [--data DIR|FILE] [--index I] [--json]\n"
            "\n"
            "Runs a model saved by 'tapegrad train --save FILE' forward on the samples of a\n"
            "dataset, or on sample I alone, and prints for each the class it predicts (the\n"
            "largest output) and the probability of every class:\n"
            "  index=I predicted=K label=L probabilities=P0,P1,...\n"
            "then, when the data has labels and more than one sample was predicted,\n"
            "  accuracy=A\n"
            "The probabilities are the softmax of the outputs for a model trained with the\n"
            "cross-entropy; for the quadratic cost, whose outputs are not probabilities,\n"
            "the outputs divided by their sum when they cannot be negative (sigmoid, relu),\n"
            "else their softmax.\n"
            "\n"
            "options:\n"
            "  --model FILE        the saved model\n"
            "  --data DIR|FILE     a directory's t10k-{images-idx3,labels-idx1}-ubyte[.gz]\n"
            "                      files (default %s), or a CSV file\n"
            "  --label-col N       CSV: the label's column, from 0 (default 0)\n"
            "  --no-labels         CSV: the file has no label column, only features\n"
            "  --scale X           CSV: multiply the features by X, e.g. 1/255 (default 1)\n"
            "  --index I           only sample I, counting from 0\n"
            "  --json              one JSON object: {\"classes\": K, \"predictions\": [{\"index\":\n"
            "                      I, \"predicted\": K, \"label\": L, \"probabilities\": [...]},\n"
            "                      ...], \"accuracy\": A}\n"
            "  -h, --help          this text\n",
            TG_CLI_DEFAULT_DATA);
}

typedef struct predict_opts {
    const char *model;
    tg_cli_data data;
    long index; /* -1: every sample */
    bool json, csv_options;
} predict_opts;

/* Parses argv into o; returns -1 to go on, or the exit status. */
static int parse(int argc, char **argv, predict_opts *o) {
    for (int i = 1; i < argc; i++) {
        const char *opt = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(opt, "-h") || !strcmp(opt, "--help")) {
            predict_usage(stdout);
            return 0;
        }
        if (!strcmp(opt, "--json")) {
            o->json = true;
            continue;
        }
        if (!strcmp(opt, "--no-labels")) {
            o->data.label_col = -1;
            o->csv_options = true;
            continue;
        }
        bool known = !strcmp(opt, "--model") || !strcmp(opt, "--data") ||
                     !strcmp(opt, "--index") || !strcmp(opt, "--label-col") ||
                     !strcmp(opt, "--scale");
        if (!known) {
            fprintf(stderr, "tapegrad predict: unknown argument '%s' (tapegrad predict --help)\n",
                    opt);
            return 2;
        }
        if (!v) {
            fprintf(stderr, "tapegrad predict: %s needs a value\n", opt);
            return 2;
        }
        i++;
        long n;
        if (!strcmp(opt, "--model")) {
            o->model = v;
        } else if (!strcmp(opt, "--data")) {
            o->data.path = v;
        } else if (!strcmp(opt, "--index")) {
            if (!tg_cli_parse_long(v, 0, 1L << 31, &n))
                return tg_cli_bad_value("predict", opt, v, "expected a sample number >= 0");
            o->index = n;
        } else if (!strcmp(opt, "--label-col")) {
            if (!tg_cli_parse_long(v, 0, 1 << 20, &n))
                return tg_cli_bad_value("predict", opt, v, "expected a column number >= 0");
            o->data.label_col = (int)n;
            o->csv_options = true;
        } else if (!tg_cli_parse_scale(v, &o->data.scale) || o->data.scale == 0) {
            return tg_cli_bad_value("predict", opt, v, "expected a number other than 0, or A/B");
        } else {
            o->csv_options = true;
        }
    }
    if (!o->model) {
        fprintf(stderr, "tapegrad predict: --model FILE is required (tapegrad predict --help)\n");
        return 2;
    }
    return -1;
}

/* The probabilities of one row of k outputs (see the usage text). */
static void probabilities(const tg_cli_model *mdl, const double *out, int64_t k, double *p) {
    tg_activation act = mdl->m.act[mdl->m.nlayers - 1];
    double sum = 0, max = out[0];
    if (mdl->loss == TG_LOSS_MSE && (act == TG_ACT_SIGMOID || act == TG_ACT_RELU)) {
        for (int64_t j = 0; j < k; j++) sum += out[j];
        for (int64_t j = 0; j < k; j++) p[j] = sum > 0 ? out[j] / sum : 1.0 / (double)k;
        return;
    }
    for (int64_t j = 1; j < k; j++) max = out[j] > max ? out[j] : max;
    for (int64_t j = 0; j < k; j++) sum += p[j] = exp(out[j] - max);
    for (int64_t j = 0; j < k; j++) p[j] /= sum;
}

/* Prints sample i's prediction. */
static void print_row(const predict_opts *o, bool labels, size_t i, int32_t label, int64_t k,
                      int64_t best, const double *p, bool first, int digits) {
    if (o->json) {
        printf("%s\n    {\"index\": %zu, \"predicted\": %lld", first ? "" : ",", i,
               (long long)best);
        if (labels) printf(", \"label\": %d", (int)label);
        printf(", \"probabilities\": [");
        for (int64_t j = 0; j < k; j++) printf("%s%.*g", j ? ", " : "", digits, p[j]);
        printf("]}");
        return;
    }
    printf("index=%zu predicted=%lld", i, (long long)best);
    if (labels) printf(" label=%d", (int)label);
    printf(" probabilities=");
    for (int64_t j = 0; j < k; j++) printf("%s%.4f", j ? "," : "", p[j]);
    printf("\n");
}

/* Runs the model over samples [from, to) of ds in chunks and prints each.
 * Returns 0 or 1 after printing why. */
static int run(const predict_opts *o, const tg_cli_model *mdl, const tg_dataset *ds,
               size_t from, size_t to) {
    const int64_t k = mdl->m.sizes[mdl->m.nlayers];
    const bool labels = o->data.label_col >= 0 || tg_cli_is_dir(o->data.path);
    const tg_dtype dt = tg_params_dtype(mdl->ps);
    const int digits = dt == TG_F64 ? 17 : 9; /* each value reads back exactly */
    size_t total = to - from, chunk = total < CHUNK ? total : CHUNK, correct = 0;
    tg_batch_graph full = {0}, rest = {0};
    uint32_t idx[CHUNK];
    double *out = malloc((size_t)k * 2 * sizeof *out), *p = out + k;
    tg_error e;
    int status = 1;
    if (!out || tg_batch_graph_build(&full, mdl->ps, &mdl->m, mdl->loss, chunk, &e)) {
        fprintf(stderr, "tapegrad predict: %s\n", out ? e.message : "out of memory");
        goto done;
    }
    if (o->json) printf("{\"classes\": %lld, \"predictions\": [", (long long)k);
    for (size_t done = from; done < to;) {
        tg_batch_graph *g = &full;
        if (to - done < chunk) {
            if (!rest.tape && tg_batch_graph_build(&rest, mdl->ps, &mdl->m, mdl->loss, to - done, &e)) {
                fprintf(stderr, "tapegrad predict: %s\n", e.message);
                goto done;
            }
            g = &rest;
        }
        for (size_t i = 0; i < g->rows; i++) idx[i] = (uint32_t)(done + i);
        if (tg_dataset_gather(ds, idx, g->rows, dt, tg_value(g->x), NULL, 0) ||
            tg_forward(g->tape)) {
            fprintf(stderr, "tapegrad predict: %s\n", tg_status_message(g->tape));
            goto done;
        }
        for (size_t i = 0; i < g->rows; i++) {
            int64_t best = 0;
            for (int64_t j = 0; j < k; j++) {
                out[j] = tg_value_at(g->out, (int64_t)i * k + j);
                best = out[j] > out[best] ? j : best;
                if (!isfinite(out[j])) {
                    fprintf(stderr, "tapegrad predict: sample %zu: output %lld is %g\n",
                            done + i, (long long)j, out[j]);
                    goto done;
                }
            }
            probabilities(mdl, out, k, p);
            int32_t label = tg_dataset_labels(ds)[done + i];
            correct += best == label;
            print_row(o, labels, done + i, label, k, best, p, done + i == from, digits);
        }
        done += g->rows;
    }
    if (o->json) {
        printf("\n  ]");
        if (labels && total > 1) printf(", \"accuracy\": %.17g", (double)correct / (double)total);
        printf("}\n");
    } else if (labels && total > 1) {
        printf("accuracy=%.4f\n", (double)correct / (double)total);
    }
    status = fflush(stdout) ? 1 : 0;
done:
    free(out);
    tg_batch_graph_free(&full);
    tg_batch_graph_free(&rest);
    return status;
}

int tg_cli_predict(int argc, char **argv) {
    predict_opts o = {.data = {TG_CLI_DEFAULT_DATA, 0, 1, NULL, 0}, .index = -1};
    int rc = parse(argc, argv, &o);
    if (rc >= 0) return rc;
    bool dir = tg_cli_is_dir(o.data.path);
    if (dir && o.csv_options) {
        fprintf(stderr, "tapegrad predict: --label-col, --no-labels and --scale apply to CSV "
                "data; %s is a directory of IDX files\n", o.data.path);
        return 2;
    }
    tg_cli_model mdl;
    if (tg_cli_model_read(&mdl, o.model, "predict")) return 1;
    tg_dataset *ds = NULL;
    tg_error e;
    int status = 1;
    int64_t k = mdl.m.sizes[mdl.m.nlayers], in = mdl.m.sizes[0];
    if (tg_params_check_finite(mdl.ps, &e)) {
        fprintf(stderr, "tapegrad predict: %s: %s\n", o.model, e.message);
        goto done;
    }
    o.data.features = in;
    if (!(ds = tg_cli_read_data(&o.data, "t10k", (int)k, &e))) {
        tg_cli_no_data("predict", &o.data, &e);
        if (e.code == TG_ERR_FORMAT && !dir && o.data.label_col >= 0)
            fprintf(stderr, "  (a file of features only, without labels: --no-labels)\n");
        goto done;
    }
    if (tg_dataset_features(ds) != in) {
        fprintf(stderr, "tapegrad predict: %s takes %lld inputs, but %s has %lld features per "
                "sample%s\n", o.model, (long long)in, o.data.path,
                (long long)tg_dataset_features(ds),
                !dir && o.data.label_col >= 0 && tg_dataset_features(ds) + 1 == in
                    ? " (if the file has no label column, add --no-labels)" : "");
        status = 2;
        goto done;
    }
    size_t n = tg_dataset_size(ds);
    if (o.index >= 0 && (size_t)o.index >= n) {
        fprintf(stderr, "tapegrad predict: --index %ld: %s has %zu samples (0 to %zu)\n", o.index,
                o.data.path, n, n - 1);
        status = 2;
        goto done;
    }
    status = o.index >= 0 ? run(&o, &mdl, ds, (size_t)o.index, (size_t)o.index + 1)
                          : run(&o, &mdl, ds, 0, n);
done:
    tg_dataset_free(ds);
    tg_cli_model_free(&mdl);
    return status;
}
