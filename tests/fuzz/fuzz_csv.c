/*
 * Fuzz target: the CSV dataset reader (tg_dataset_read_csv). Input: a flag
 * byte (bit 0: gzip the file, bits 1-2: label column 0..3, bits 3-6:
 * classes 0..15), then the file. A dataset that loads must be consistent.
 */
#include "fuzz_util.h"

#include <math.h>

#include "tapegrad.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 1) return 0;
    unsigned flags = data[0];
    const char *path = fuzz_path(0, "data.csv");
    fuzz_write(path, data + 1, size - 1, flags & 1);
    int label_col = (int)(flags >> 1) & 3, classes = (int)(flags >> 3) & 15;
    tg_error err;
    memset(&err, 0, sizeof err);
    tg_dataset *ds = tg_dataset_read_csv(path, label_col, 0.5, classes, &err);
    if (!ds) {
        if (!err.code || !err.message[0]) abort();
        return 0;
    }
    size_t n = tg_dataset_size(ds);
    int64_t d = tg_dataset_features(ds);
    int k = tg_dataset_classes(ds);
    if (n < 1 || d < 1 || k < 1 || (classes && k != classes)) abort();
    const float *x = tg_dataset_x(ds);
    const int32_t *y = tg_dataset_labels(ds);
    for (size_t i = 0; i < n; i++)
        if (y[i] < 0 || y[i] >= k) abort();
    for (size_t i = 0; i < n * (size_t)d; i++)
        if (isnan(x[i])) abort();
    tg_dataset_free(ds);
    return 0;
}
