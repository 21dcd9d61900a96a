/*
 * Fuzz target: the IDX dataset reader (tg_dataset_read_idx). Input: a flag
 * byte (bit 0: gzip the image file, bit 1: gzip the label file, bits 2-5:
 * classes 0..15), two bytes of image-file length (little-endian), the image
 * file, then the label file. A dataset that loads must be consistent.
 */
#include "fuzz_util.h"

#include <math.h>

#include "tapegrad.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 3) return 0;
    unsigned flags = data[0];
    size_t ilen = (size_t)data[1] | (size_t)data[2] << 8;
    data += 3, size -= 3;
    if (ilen > size) ilen = size;
    const char *img = fuzz_path(0, "images"), *lab = fuzz_path(1, "labels");
    fuzz_write(img, data, ilen, flags & 1);
    fuzz_write(lab, data + ilen, size - ilen, flags & 2);
    int classes = (int)(flags >> 2) & 15;
    tg_error err;
    memset(&err, 0, sizeof err);
    tg_dataset *ds = tg_dataset_read_idx(img, lab, classes, &err);
    if (!ds) {
        if (!err.code || !err.message[0]) abort();
        return 0;
    }
    size_t n = tg_dataset_size(ds);
    int64_t d = tg_dataset_features(ds);
    int k = tg_dataset_classes(ds);
    if (d < 1 || k < 1 || (classes && k != classes)) abort();
    const float *x = tg_dataset_x(ds);
    const int32_t *y = tg_dataset_labels(ds);
    for (size_t i = 0; i < n; i++)
        if (y[i] < 0 || y[i] >= k) abort();
    for (size_t i = 0; i < n * (size_t)d; i++)
        if (!(x[i] >= 0 && x[i] <= 1)) abort();
    tg_dataset_free(ds);
    return 0;
}
