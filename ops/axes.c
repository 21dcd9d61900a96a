/*
 * Axis conveniences, composed of registered ops (no op of their own, so
 * their derivatives are those of reshape and concat): unsqueeze, squeeze,
 * stack, and the keepdim form of every axis reduction.
 */
#include "rules.h"
#include "alloc.h"

/* The axis in [0, n) that axis names, counting from the end when negative,
 * or -1 after recording TG_ERR_ARG for who. */
static int axis_in(tg_node *x, int axis, int n, const char *who) {
    int k = axis < 0 ? axis + n : axis;
    if (k < 0 || k >= n) {
        char s[64];
        tg_fail(tg__tape_of(x), TG_ERR_ARG, "%s: axis %d is out of range for %s (%d to %d)", who,
                axis, tg__shape_str(x, s), -n, n - 1);
        return -1;
    }
    return k;
}

/* x reshaped with a dimension of size 1 inserted before position k. */
static tg_node *insert_one(tg_node *x, int k, const char *who) {
    int64_t shape[TG_MAX_DIMS + 1];
    int nd = tg_shape(x, shape);
    if (nd == TG_MAX_DIMS) {
        char s[64];
        tg_fail(tg__tape_of(x), TG_ERR_SHAPE,
                "%s: %s has %d dimensions already, the most a tensor has", who,
                tg__shape_str(x, s), TG_MAX_DIMS);
        return &tg__tape_of(x)->poison;
    }
    memmove(shape + k + 1, shape + k, (size_t)(nd - k) * sizeof *shape);
    shape[k] = 1;
    return tg_reshape(x, nd + 1, shape);
}

tg_node *tg_unsqueeze(tg_node *x, int axis) {
    if (!x) return NULL;
    tg_tape *t = tg__tape_of(x);
    if (t->status) return &t->poison;
    int k = axis_in(x, axis, tg_ndim(x) + 1, "unsqueeze");
    return k < 0 ? &t->poison : insert_one(x, k, "unsqueeze");
}

tg_node *tg_squeeze(tg_node *x, int axis) {
    if (!x) return NULL;
    tg_tape *t = tg__tape_of(x);
    if (t->status) return &t->poison;
    int64_t shape[TG_MAX_DIMS];
    int nd = tg_shape(x, shape), k = axis_in(x, axis, nd, "squeeze");
    if (k < 0) return &t->poison;
    if (shape[k] != 1) {
        char s[64];
        tg_fail(t, TG_ERR_SHAPE, "squeeze: dimension %d of %s is %lld, not 1", k,
                tg__shape_str(x, s), (long long)shape[k]);
        return &t->poison;
    }
    memmove(shape + k, shape + k + 1, (size_t)(nd - k - 1) * sizeof *shape);
    return tg_reshape(x, nd - 1, shape);
}

tg_node *tg_stack(int n, tg_node *const *inputs, int axis) {
    tg_node *first = NULL;
    for (int i = 0; inputs && i < n && !first; i++) first = inputs[i];
    if (!first) return NULL;
    tg_tape *t = tg__tape_of(first);
    if (t->status) return &t->poison;
    int64_t s0[TG_MAX_DIMS], si[TG_MAX_DIMS];
    int nd = tg_shape(first, s0), k = axis_in(first, axis, nd + 1, "stack");
    if (k < 0) return &t->poison;
    tg_node **in = tg__malloc((size_t)n * sizeof *in);
    if (!in) {
        tg_fail(t, TG_ERR_NOMEM, "stack: out of memory for %d inputs", n);
        return &t->poison;
    }
    for (int i = 0; i < n && !t->status; i++) {
        in[i] = inputs[i];
        if (!in[i]) {
            tg_fail(t, TG_ERR_NULL, "stack: input %d is NULL", i);
        } else if (tg__tape_of(in[i]) == t &&
                   (tg_shape(in[i], si) != nd || memcmp(si, s0, (size_t)nd * sizeof *si))) {
            char a[64], b[64];
            tg_fail(t, TG_ERR_SHAPE, "stack: input %d is %s and input 0 %s: shapes differ", i,
                    tg__shape_str(in[i], b), tg__shape_str(first, a));
        } else {
            in[i] = insert_one(in[i], k, "stack"); /* a foreign tape: concat names it */
        }
    }
    tg_node *y = t->status ? &t->poison : tg_concat(n, in, k);
    tg__free(in);
    return y;
}

/* y = reduce(x, axis) with the reduced axis kept as a dimension of 1. */
static tg_node *keepdim(tg_node *x, int axis, tg_node *(*reduce)(tg_node *, int)) {
    if (!x) return NULL;
    tg_node *y = reduce(x, axis);
    tg_tape *t = tg__tape_of(x);
    if (t->status) return &t->poison;
    return insert_one(y, axis < 0 ? axis + tg_ndim(x) : axis, "keepdim");
}

#define KEEPDIM(name)                                                                      \
    tg_node *tg_##name##_axis_keepdim(tg_node *a, int axis) {                             \
        return keepdim(a, axis, tg_##name##_axis);                                         \
    }
KEEPDIM(sum)
KEEPDIM(mean)
KEEPDIM(max)
KEEPDIM(min)
KEEPDIM(argmax)
KEEPDIM(logsumexp)
KEEPDIM(prod)
KEEPDIM(norm)
KEEPDIM(var)
