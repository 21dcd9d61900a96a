/* tg_accuracy: the fraction of rows of any model's outputs whose largest
 * entry is at the row's label (include/tapegrad/nn.h). */
#include "nn_internal.h"

int tg_accuracy(const tg_node *logits, const int32_t *labels, int64_t n, double *accuracy,
                tg_error *err) {
    tg__err_clear(err);
    if (!logits || !labels || !accuracy)
        return tg__err(err, TG_ERR_NULL, "tg_accuracy: %s is NULL",
                       !logits ? "logits" : !labels ? "labels" : "accuracy");
    int64_t shape[TG_MAX_DIMS];
    int nd = tg_shape(logits, shape);
    if (nd != 1 && nd != 2)
        return tg__err(err, TG_ERR_SHAPE, "tg_accuracy: logits must be [rows, classes] or "
                       "[classes], not %d-D", nd);
    int64_t rows = nd == 2 ? shape[0] : 1, k = shape[nd - 1];
    if (n != rows)
        return tg__err(err, TG_ERR_SHAPE, "tg_accuracy: %lld labels for %lld rows of logits",
                       (long long)n, (long long)rows);
    int64_t correct = 0;
    for (int64_t r = 0; r < rows; r++) {
        if (labels[r] < 0 || labels[r] >= k)
            return tg__err(err, TG_ERR_ARG, "tg_accuracy: label %d of row %lld is not a class "
                           "of %lld outputs (0 to %lld)", (int)labels[r], (long long)r,
                           (long long)k, (long long)(k - 1));
        /* tg_argmax's rule: the first at a tie, the first NaN if any */
        double m = tg_value_at(logits, r * k);
        int64_t best = 0;
        for (int64_t j = 1; j < k && m == m; j++) {
            double v = tg_value_at(logits, r * k + j);
            if (v > m || v != v) {
                m = v;
                best = j;
            }
        }
        correct += best == labels[r];
    }
    *accuracy = (double)correct / (double)rows;
    return TG_OK;
}
