/* Datasets, saved models and option values of `tapegrad train`, `eval` and
 * `predict`: see model.h. */
#define _POSIX_C_SOURCE 200809L
#include "model.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <zlib.h>

bool tg_cli_is_dir(const char *path) {
    struct stat st;
    return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

/* The features per image (rows x cols) in the header of dir's
 * PREFIX-images-idx3-ubyte[.gz], or 0 when it cannot be read (the reader
 * then says why). */
static int64_t idx_features(const char *dir, const char *prefix) {
    char path[4096];
    unsigned char h[16];
    int64_t features = 0;
    for (int gz = 1; gz >= 0 && !features; gz--) {
        snprintf(path, sizeof path, "%s/%s-images-idx3-ubyte%s", dir, prefix, gz ? ".gz" : "");
        struct stat st;
        if (stat(path, &st) || !S_ISREG(st.st_mode)) continue;
        gzFile f = gzopen(path, "rb");
        if (!f) continue;
        if (gzread(f, h, sizeof h) == (int)sizeof h && h[0] == 0 && h[1] == 0 && h[2] == 8 &&
            h[3] == 3) {
            uint32_t rows = (uint32_t)h[8] << 24 | (uint32_t)h[9] << 16 | (uint32_t)h[10] << 8 | h[11];
            uint32_t cols = (uint32_t)h[12] << 24 | (uint32_t)h[13] << 16 | (uint32_t)h[14] << 8 | h[15];
            features = (int64_t)rows * cols;
        }
        gzclose(f);
        break;
    }
    return features;
}

tg_dataset *tg_cli_read_data(const tg_cli_data *d, const char *prefix, int classes,
                             tg_error *err) {
    if (tg_cli_is_dir(d->path)) {
        int64_t features = d->features > 0 ? idx_features(d->path, prefix) : 0;
        if (features > 0 && features != d->features) {
            err->code = TG_ERR_FORMAT;
            snprintf(err->message, sizeof err->message,
                     "%s: its %s images have %lld features (pixels) each, the network takes "
                     "%lld; nothing read past the header",
                     d->path, prefix, (long long)features, (long long)d->features);
            return NULL;
        }
        return tg_dataset_read_mnist(d->path, prefix, classes, err);
    }
    return tg_dataset_read_csv(d->path, d->label_col, d->scale, classes, err);
}

void tg_cli_no_data(const char *cmd, const tg_cli_data *d, const tg_error *e) {
    fprintf(stderr, "tapegrad %s: %s\n", cmd, e->message);
    if (e->code == TG_ERR_FORMAT && d->label_col >= 0 && strstr(e->message, "label") &&
        !tg_cli_is_dir(d->path))
        fprintf(stderr, "  (the label is read from column %d; --label-col N names another, "
                "counting from 0)\n", d->label_col);
    if (e->code == TG_ERR_IO)
        fprintf(stderr,
                "  %s wants a CSV file (a label and the features on each line), or a\n"
                "  directory holding train-images-idx3-ubyte.gz, train-labels-idx1-ubyte.gz,\n"
                "  t10k-images-idx3-ubyte.gz and t10k-labels-idx1-ubyte.gz (gzipped or not;\n"
                "  MNIST works too). Fashion-MNIST, the default (%s), comes with:\n"
                "    apt-get install dataset-fashion-mnist\n",
                d->option ? d->option : "--data", TG_CLI_DEFAULT_DATA);
}

int tg_cli_model_read(tg_cli_model *mdl, const char *path, const char *cmd) {
    tg_error e;
    memset(mdl, 0, sizeof *mdl);
    if (!(mdl->ps = tg_mlp_read(path, &mdl->m, &mdl->loss, &e))) {
        fprintf(stderr, "tapegrad %s: %s\n", cmd, e.message);
        return 1;
    }
    return 0;
}

void tg_cli_model_free(tg_cli_model *mdl) {
    tg_params_free(mdl->ps);
    mdl->ps = NULL;
}

bool tg_cli_parse_long(const char *s, long lo, long hi, long *out) {
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || end == s || *end || v < lo || v > hi) return false;
    *out = v;
    return true;
}

bool tg_cli_parse_double(const char *s, double *out) {
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (errno || end == s || *end || !isfinite(v)) return false;
    *out = v;
    return true;
}

bool tg_cli_parse_scale(const char *s, double *out) {
    const char *slash = strchr(s, '/');
    if (!slash) return tg_cli_parse_double(s, out);
    char num[64];
    double a, b;
    size_t len = (size_t)(slash - s);
    if (len >= sizeof num) return false;
    memcpy(num, s, len);
    num[len] = '\0';
    if (!tg_cli_parse_double(num, &a) || !tg_cli_parse_double(slash + 1, &b) || b == 0)
        return false;
    *out = a / b;
    return isfinite(*out);
}

int tg_cli_bad_value(const char *cmd, const char *opt, const char *val, const char *want) {
    fprintf(stderr, "tapegrad %s: %s '%s': %s\n", cmd, opt, val, want);
    return 2;
}
