/*
 * Kernels over argument views (tg_args, tapegrad.h): the helpers ops/ reads
 * them with (args.c). The engine makes them from a node in record.h.
 * Internal to src/ and ops/; never installed.
 */
#ifndef TG_ARGS_H
#define TG_ARGS_H

#include "tapegrad.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

static inline bool tg__arg_f64(const tg_arg *x) { return x->dtype == TG_F64; }
static inline size_t tg__arg_dsize(const tg_arg *x) { return x->dtype == TG_F64 ? 8 : 4; }
/* A float64 0-d argument: the scalar fast paths of the elementwise ops. */
static inline bool tg__arg_scalar64(const tg_arg *x) { return x->ndim == 0 && x->dtype == TG_F64; }
/* Element i of data (x's value or gradient) as a double. */
static inline double tg__arg_elem(const tg_arg *x, const void *data, size_t i) {
    return x->dtype == TG_F64 ? ((const double *)data)[i] : ((const float *)data)[i];
}
static inline bool tg__arg_same_shape(const tg_arg *a, const tg_arg *b) {
    if (a->ndim != b->ndim) return false;
    for (int i = 0; i < a->ndim; i++)
        if (a->shape[i] != b->shape[i]) return false;
    return true;
}
/* The kernel variant for x's dtype: TG_ARG_KERNEL(&a->out, relu_fwd)(...). */
#define TG_ARG_KERNEL(x, fn) (tg__arg_f64(x) ? fn##_f64 : fn##_f32)

/* Formats ndim extents as "[2,3]" into buf (at least 64 bytes); returns
 * buf (status.c). tg__arg_shape_str: an argument's shape. */
char *tg__dims_str(int ndim, const int32_t *shape, char *buf);
static inline char *tg__arg_shape_str(const tg_arg *x, char *buf) {
    return tg__dims_str(x->ndim, x->shape, buf);
}

/* k gradient elements of dtype dt set to -0, the identity of addition
 * that keeps every sign (x + -0 is x, -0 included), so that adding a first
 * contribution stores it exactly, as writing it would. */
static inline void tg__fill_identity(void *grad, size_t k, tg_dtype dt) {
    if (dt == TG_F64) {
        double *g = grad;
        for (size_t i = 0; i < k; i++) g[i] = -0.0;
    } else {
        float *g = grad;
        for (size_t i = 0; i < k; i++) g[i] = -0.0f;
    }
}

/* A fresh gradient (nothing of this sweep in it yet) made ready to add
 * into. */
static inline void tg__arg_ready(tg_arg *x) {
    if (!x->fresh) return;
    tg__fill_identity(x->grad, x->numel, x->dtype);
    x->fresh = 0;
}

/* One float64 contribution v into *g: written when it is the first of the
 * sweep, else added. */
static inline void tg__grad_put(double *g, bool first, double v) { *g = first ? v : *g + v; }

/* An argument seen as [outer, len, inner] around one axis (TG_AXIS_ALL:
 * all elements in one run of len), for reductions, softmax and slices. */
typedef struct tg_axis_view {
    size_t outer, len, inner;
} tg_axis_view;
tg_axis_view tg__arg_axis(const tg_arg *x, int axis);

#endif
