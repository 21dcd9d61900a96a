/* The helpers of kernels over argument views (args.h). */
#include "record.h"

tg_axis_view tg__arg_axis(const tg_arg *x, int axis) {
    tg_axis_view v = {1, x->numel, 1};
    if (axis == TG_AXIS_ALL) return v;
    v.len = (size_t)x->shape[axis];
    for (int i = 0; i < axis; i++) v.outer *= (size_t)x->shape[i];
    for (int i = axis + 1; i < x->ndim; i++) v.inner *= (size_t)x->shape[i];
    return v;
}
