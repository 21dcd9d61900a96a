/*
 * Shape and indexing ops: slice, concat, index_select and its adjoint
 * index_add, broadcast_to, permute, tril, triu.
 *
 * None of them computes: each moves elements, and its backward rule is the
 * adjoint move with +=. Three kernels serve them all, written once over T:
 * runs (copy or add runs of contiguous elements: slice, concat), a gather /
 * scatter by index (index_select, index_add), and a 4-D strided walk (broadcast_to,
 * permute); tril and triu copy a band of each row.
 *
 * Parameters. An axis, or permute's packed permutation, is the node's aux.
 * An integer that can be large (slice's start, index_select's indices,
 * tril/triu's diagonal offset) is a constant input node of x's dtype: it
 * shows in the graph and the DOT export, survives replay, can be given by
 * name (tg_call("slice", x, start)) with the op's arity, and later rules
 * written with public ops can read it like any input. The constructors
 * record one such node per value on a tape and share it (an LSTM's gate
 * slices at 0, H, 2H, 3H cost four nodes, not four a step). Such values
 * are exact in float32 up to 2^24; a larger one that float32 cannot hold is
 * refused by the constructor rather than rounded. The shape rules validate
 * parameters for every path (constructor, tg_call, tg_apply); the forward
 * kernels still clamp them, because a caller may overwrite a constant through
 * tg_value() before tg_forward() (which then moves every op sharing it), and
 * a forward cannot fail: no path reads or writes out of bounds.
 *
 * The vjp rules (tg_grad, higher order) are the same moves written with
 * public ops: slice pads with zeros by concat, concat slices, permute
 * permutes back, broadcast_to sums, tril/triu mask, and index_select's
 * scatter-add is one index_add node, whose own rule is an index_select: the
 * gradient of a gather costs the size of x, however often an index repeats.
 */
#ifndef T
#include "broadcast.h"
#include "rules.h"

#include <math.h>

/* A 4-D walk over an output is broadcast.h's tg_bcast of one input: the
 * output's dimensions (padded on the left with 1) in d, and the source's
 * element stride along each in s[0], 0 where the source is broadcast; never
 * flat. */
typedef tg_bcast walk;

#include "dtypes.h"

enum { SH_SLICE, SH_CONCAT, SH_INDEX_SELECT, SH_INDEX_ADD, SH_BROADCAST_TO, SH_PERMUTE, SH_TRIL,
       SH_TRIU, SH_COUNT };
extern const tg_op tg_shape_ops[];

/* ------------------------------------------------------------ helpers -- */

/* Element i of base, an array of x's dtype. */
static void *at(const tg_arg *x, void *base, size_t i) {
    return (char *)base + i * tg__arg_dsize(x);
}

/* Whether p holds one integral value; else writes why. */
static bool int_param_ok(const tg_arg *p, const char *what, char *why, size_t len) {
    char s[64];
    if (p->numel != 1) {
        snprintf(why, len, "%s must have one element, got %s", what, tg__arg_shape_str(p, s));
        return false;
    }
    double v = tg__arg_elem(p, p->value, 0);
    if (v != floor(v) || !isfinite(v)) {
        snprintf(why, len, "%s %g is not an integer", what, v);
        return false;
    }
    return true;
}

/* v clamped to [lo, hi] (NaN gives lo); p's value so clamped, and a
 * kernel's parameter argument's: for forwards, which cannot fail. */
static int64_t clamp_to(double v, int64_t lo, int64_t hi) {
    return (int64_t)fmin(fmax(v, (double)lo), (double)hi);
}
static int64_t clamped(tg_node *p, int64_t lo, int64_t hi) {
    return clamp_to(tg_value_at(p, 0), lo, hi);
}
static int64_t clamped_arg(const tg_arg *p, int64_t lo, int64_t hi) {
    return clamp_to(tg__arg_elem(p, p->value, 0), lo, hi);
}

/* A constant of x's dtype holding v, or NULL after recording that float32
 * cannot hold v exactly. */
static tg_node *int_const(tg_node *x, const char *who, const char *what, int64_t v) {
    if (tg_node_dtype(x) == TG_F32 && (double)(float)v != (double)v) {
        tg_fail(tg__tape_of(x), TG_ERR_ARG,
                "%s: %s %lld is not exact in float32 (integers beyond 2^24 are not); use "
                "float64",
                who, what, (long long)v);
        return NULL;
    }
    return tg__shared_const(tg__tape_of(x), tg_node_dtype(x), (double)v, false);
}

/* What a constructor returns after an error: x's tape's poison node, or
 * NULL for a NULL x (no tape to record on). */
static tg_node *failed(tg_node *x) { return x ? &tg__tape_of(x)->poison : NULL; }

/* ------------------------------------------------------------- slice -- */

/* y = x[..., start : start + length, ...] along axis aux; start is input 1,
 * length is the output's dimension there (x's own under tg_call, so a slice
 * by name is whole: start 0). A slice that is one block of x's memory (no
 * axis before aux longer than 1) is a view of it, as reshape is: its forward
 * only points it at the start, which a replay may have moved. */
static bool slice_is_view(const tg_args *r) {
    return tg__arg_axis(&r->in[0], r->param).outer == 1;
}
/* The slice's first element in x's memory (base: x's value or gradient). */
static void *slice_start(const tg_args *r, void *base) {
    const tg_arg *x = &r->in[0];
    tg_axis_view v = tg__arg_axis(x, r->param);
    size_t length = (size_t)r->out.shape[r->param];
    return at(x, base, (size_t)clamped_arg(&r->in[1], 0, (int64_t)(v.len - length)) * v.inner);
}
static int slice_shape(tg_node *out, char *why, size_t len) {
    tg_args a;
    tg__args_of(out, &a);
    const tg_arg *x = &a.in[0], *p = &a.in[1];
    char s[64];
    if (out->aux < 0 || out->aux >= x->ndim) {
        snprintf(why, len, "axis %d is out of range for %s", out->aux, tg__arg_shape_str(x, s));
        return TG_ERR_ARG;
    }
    if (!int_param_ok(p, "start", why, len)) return TG_ERR_ARG;
    double start = tg__arg_elem(p, p->value, 0);
    int32_t dim = x->shape[out->aux], length = out->u.shape[out->aux];
    if (start < 0 || start > (double)(dim - length)) {
        snprintf(why, len, "start %.0f, length %d: outside axis %d of %s", start, (int)length,
                 out->aux, tg__arg_shape_str(x, s));
        return TG_ERR_ARG;
    }
    if (slice_is_view(&a)) out->value = slice_start(&a, x->value);
    return TG_OK;
}

static void slice_forward(tg_args *r) {
    const tg_arg *x = &r->in[0];
    if (slice_is_view(r)) {
        r->out.value = slice_start(r, x->value);
        return;
    }
    tg_axis_view v = tg__arg_axis(x, r->param);
    size_t length = (size_t)r->out.shape[r->param];
    TG_ARG_KERNEL(x, runs)(v.outer, length * v.inner, slice_start(r, x->value), v.len * v.inner,
                           r->out.value, length * v.inner, false);
}

static void slice_backward(tg_args *r) {
    const tg_arg *x = &r->in[0];
    if (!x->grad) return;
    tg_axis_view v = tg__arg_axis(x, r->param);
    size_t length = (size_t)r->out.shape[r->param];
    TG_ARG_KERNEL(x, runs)(v.outer, length * v.inner, r->out.grad, length * v.inner,
                           slice_start(r, x->grad), v.len * v.inner, true);
}

/* A zero constant of x's shape with extent len along axis (len >= 1). */
static tg_node *zeros_along(tg_node *x, int axis, int64_t len) {
    int64_t shape[TG_MAX_DIMS];
    int nd = tg_shape(x, shape);
    shape[axis] = len;
    return tg_input(tg__tape_of(x), tg_node_dtype(x), nd, shape, NULL);
}

/* The gradient placed back into x's extent: [0s, g, 0s] along the axis. */
static void slice_vjp(tg_node *y, tg_node *g, tg_node **gin) {
    tg_node *x = tg__in(y, 0), *parts[3];
    int k = y->aux, n = 0;
    int64_t xs[TG_MAX_DIMS];
    tg_shape(x, xs);
    int64_t dim = xs[k], length = y->u.shape[k];
    int64_t start = clamped(tg__in(y, 1), 0, dim - length), after = dim - start - length;
    if (start) parts[n++] = zeros_along(x, k, start);
    parts[n++] = g;
    if (after) parts[n++] = zeros_along(x, k, after);
    gin[0] = tg_concat(n, parts, k);
}

tg_node *tg_slice(tg_node *x, int axis, int64_t start, int64_t length) {
    int k = tg__axis(x, axis, "slice");
    if (k < 0) return failed(x);
    int64_t shape[TG_MAX_DIMS];
    int nd = tg_shape(x, shape);
    int64_t dim = shape[k];
    if (start < 0 || length < 1 || length > dim || start > dim - length) {
        char s[64];
        tg_fail(tg__tape_of(x), TG_ERR_ARG, "slice: start %lld, length %lld: outside axis %d of %s",
                (long long)start, (long long)length, axis, tg__shape_str(x, s));
        return failed(x);
    }
    shape[k] = length;
    tg_node *p = int_const(x, "slice", "start", start);
    return p ? tg__apply_as(&tg_shape_ops[SH_SLICE], x, p, k, nd, shape) : failed(x);
}

/* ------------------------------------------------------------ concat -- */

/* Binary: y = [a, b] along axis aux. */
static int concat_shape(tg_node *out, char *why, size_t len) {
    tg_args r;
    tg__args_of(out, &r);
    const tg_arg *a = &r.in[0], *b = &r.in[1];
    char sa[64], sb[64];
    int k = out->aux;
    if (k < 0 || k >= a->ndim) {
        snprintf(why, len, "axis %d is out of range for %s", k, tg__arg_shape_str(a, sa));
        return TG_ERR_ARG;
    }
    bool same = a->ndim == b->ndim;
    for (int i = 0; i < a->ndim && same; i++) same = i == k || a->shape[i] == b->shape[i];
    if (!same) {
        snprintf(why, len, "%s and %s differ off axis %d", tg__arg_shape_str(a, sa),
                 tg__arg_shape_str(b, sb), k);
        return TG_ERR_SHAPE;
    }
    int64_t shape[TG_MAX_DIMS];
    for (int i = 0; i < a->ndim; i++) shape[i] = a->shape[i];
    shape[k] += b->shape[k];
    if (tg_set_shape(out, a->ndim, shape) != TG_OK) {
        snprintf(why, len, "%s and %s along axis %d: too many elements", tg__arg_shape_str(a, sa),
                 tg__arg_shape_str(b, sb), k);
        return TG_ERR_SHAPE;
    }
    return TG_OK;
}

/* Moves a's and b's runs into (or, backward, out of) y's rows of la + lb runs. */
static void concat_move(tg_args *r, bool backward) {
    const tg_arg *y = &r->out;
    tg_axis_view v = tg__arg_axis(y, r->param);
    size_t off = 0;
    for (int k = 0; k < 2; k++) {
        const tg_arg *x = &r->in[k];
        size_t run = (size_t)x->shape[r->param] * v.inner;
        if (!backward)
            TG_ARG_KERNEL(y, runs)(v.outer, run, x->value, run, at(y, y->value, off),
                                   v.len * v.inner, false);
        else if (x->grad)
            TG_ARG_KERNEL(y, runs)(v.outer, run, at(y, y->grad, off), v.len * v.inner, x->grad,
                                   run, true);
        off += run;
    }
}
static void concat_forward(tg_args *r) { concat_move(r, false); }
static void concat_backward(tg_args *r) { concat_move(r, true); }

/* Each input's part of the gradient. */
static void concat_vjp(tg_node *y, tg_node *g, tg_node **gin) {
    int k = y->aux;
    tg_node *a = tg__in(y, 0), *b = tg__in(y, 1);
    int64_t sa[TG_MAX_DIMS], sb[TG_MAX_DIMS];
    tg_shape(a, sa);
    tg_shape(b, sb);
    if (tg_requires_grad(a)) gin[0] = tg_slice(g, k, 0, sa[k]);
    if (tg_requires_grad(b)) gin[1] = tg_slice(g, k, sa[k], sb[k]);
}

/* Linear in both inputs: the tangents joined, a zero part for an input
 * whose tangent is zero. */
static tg_node *concat_jvp(tg_node *y, tg_node *const *tin) {
    tg_node *part[2];
    for (int k = 0; k < 2; k++) {
        tg_node *x = tg__in(y, k);
        int64_t s[TG_MAX_DIMS];
        tg_shape(x, s);
        part[k] = tin[k] ? tin[k] : zeros_along(x, y->aux, s[y->aux]);
    }
    return tg__apply(&tg_shape_ops[SH_CONCAT], part[0], part[1], y->aux);
}

/* n inputs as a balanced tree of binary concat nodes. A node has at most 3
 * inputs (and one with more would need storage past the 64-byte node), so
 * the n-ary op is a tree of n - 1 binary ones; balanced rather than a chain,
 * each element is copied about log2(n) times instead of up to n - 1, forward
 * and backward. */
static tg_node *concat_tree(tg_node *const *in, int n, int axis) {
    if (n == 1) return in[0];
    tg_node *a = concat_tree(in, n / 2, axis), *b = concat_tree(in + n / 2, n - n / 2, axis);
    return tg__apply(&tg_shape_ops[SH_CONCAT], a, b, axis);
}

tg_node *tg_concat(int n, tg_node *const *inputs, int axis) {
    tg_node *first = NULL;
    for (int k = 0; inputs && k < n && !first; k++) first = inputs[k];
    if (!first || tg__tape_of(first)->status) return failed(first);
    tg_tape *t = tg__tape_of(first);
    char s0[64], sk[64];
    for (int k = 0; k < n; k++)
        if (!inputs[k]) {
            tg_fail(t, TG_ERR_NULL, "concat: input %d of %d is NULL", k, n);
            return &t->poison;
        }
    int ax = tg__axis(inputs[0], axis, "concat");
    if (ax < 0) return &t->poison;
    /* Checked for all inputs here, so that the message names the caller's
     * inputs rather than an inner node of the tree. */
    for (int k = 1; k < n; k++) {
        const tg_node *a = inputs[0], *b = inputs[k];
        bool same = tg_ndim(a) == tg_ndim(b); /* short-circuits 0-d scalars */
        for (int i = 0; i < tg_ndim(a) && same; i++) same = i == ax || a->u.shape[i] == b->u.shape[i];
        if (!same) {
            tg_fail(t, TG_ERR_SHAPE, "concat: input 0 %s and input %d %s differ off axis %d",
                    tg__shape_str(a, s0), k, tg__shape_str(b, sk), axis);
            return &t->poison;
        }
    }
    return concat_tree(inputs, n, ax);
}

/* ------------------------------------------------------ index_select -- */

/* Whether idx is 1-D and holds integers in [0, dim): indices along axis k
 * of x (named in the message); else writes why. */
static int indices_ok(const tg_arg *idx, int32_t dim, int k, const tg_arg *x, char *why,
                      size_t len) {
    char s[64];
    if (idx->ndim != 1) {
        snprintf(why, len, "indices must be 1-D, got %s", tg__arg_shape_str(idx, s));
        return TG_ERR_SHAPE;
    }
    for (int32_t j = 0; j < idx->shape[0]; j++) {
        double v = tg__arg_elem(idx, idx->value, (size_t)j);
        if (!(v >= 0 && v < dim && v == floor(v))) {
            snprintf(why, len, "index %.17g (position %d) is out of range for axis %d of %s", v,
                     (int)j, k, tg__arg_shape_str(x, s));
            return TG_ERR_ARG;
        }
    }
    return TG_OK;
}

/* y[..., j, ...] = x[..., idx[j], ...] along axis aux; idx is input 1, a 1-D
 * tensor of x's dtype holding integers. */
static int index_select_shape(tg_node *out, char *why, size_t len) {
    tg_args r;
    tg__args_of(out, &r);
    const tg_arg *x = &r.in[0], *idx = &r.in[1];
    char s[64];
    int k = out->aux;
    if (k < 0 || k >= x->ndim) {
        snprintf(why, len, "axis %d is out of range for %s", k, tg__arg_shape_str(x, s));
        return TG_ERR_ARG;
    }
    int32_t dim = x->shape[k];
    if (!tg__arg_f64(x) && dim > (1 << 24)) {
        snprintf(why, len, "axis %d of float32 %s is longer than 2^24, past float32's exact "
                 "integers; use float64", k, tg__arg_shape_str(x, s));
        return TG_ERR_ARG;
    }
    int rc = indices_ok(idx, dim, k, x, why, len);
    if (rc) return rc;
    int64_t shape[TG_MAX_DIMS];
    for (int i = 0; i < x->ndim; i++) shape[i] = x->shape[i];
    shape[k] = idx->shape[0];
    if (tg_set_shape(out, x->ndim, shape) != TG_OK) {
        snprintf(why, len, "%d indices into %s: too many elements", (int)idx->shape[0],
                 tg__arg_shape_str(x, s));
        return TG_ERR_SHAPE;
    }
    return TG_OK;
}

static void index_select_forward(tg_args *r) {
    tg_axis_view v = tg__arg_axis(&r->in[0], r->param);
    TG_ARG_KERNEL(&r->out, gather)(v, (size_t)r->out.shape[r->param], r->in[1].value,
                                   r->in[0].value, r->out.value);
}

static void index_select_backward(tg_args *r) {
    if (!r->in[0].grad) return;
    tg_axis_view v = tg__arg_axis(&r->in[0], r->param);
    TG_ARG_KERNEL(&r->out, scatter)(v, (size_t)r->out.shape[r->param], r->in[1].value,
                                    r->out.grad, r->in[0].grad);
}

/* x's gradient is one index_add of g by the same index node, into x's shape. */
static void index_select_vjp(tg_node *y, tg_node *g, tg_node **gin) {
    int64_t shape[TG_MAX_DIMS];
    int nd = tg_shape(tg__in(y, 0), shape);
    gin[0] = tg__apply_as(&tg_shape_ops[SH_INDEX_ADD], g, tg__in(y, 1), y->aux, nd, shape);
}

/* -------------------------------------------------------- index_add -- */

/* y = zeros with y[..., idx[j], ...] += src[..., j, ...] along axis aux: the
 * adjoint of index_select. src is input 0, idx input 1 (as index_select's);
 * the output's shape is src's with the target length along the axis (given
 * by the constructor; by name, src's own). */
static int index_add_shape(tg_node *out, char *why, size_t len) {
    tg_args r;
    tg__args_of(out, &r);
    const tg_arg *src = &r.in[0], *idx = &r.in[1];
    char s[64], so[64];
    int k = out->aux;
    if (k < 0 || k >= src->ndim || out->ndim != src->ndim) {
        snprintf(why, len, "axis %d is out of range for %s", k, tg__arg_shape_str(src, s));
        return TG_ERR_ARG;
    }
    for (int i = 0; i < src->ndim; i++)
        if (i != k && out->u.shape[i] != src->shape[i]) {
            snprintf(why, len, "%s cannot be added into %s along axis %d",
                     tg__arg_shape_str(src, s), tg__shape_str(out, so), k);
            return TG_ERR_SHAPE;
        }
    int32_t dim = out->u.shape[k];
    if (!tg__arg_f64(src) && dim > (1 << 24)) {
        snprintf(why, len, "axis %d of float32 %s is longer than 2^24, past float32's exact "
                 "integers; use float64", k, tg__shape_str(out, so));
        return TG_ERR_ARG;
    }
    if (idx->ndim == 1 && idx->shape[0] != src->shape[k]) {
        snprintf(why, len, "%d indices for the %d rows of %s along axis %d",
                 (int)idx->shape[0], (int)src->shape[k], tg__arg_shape_str(src, s), k);
        return TG_ERR_SHAPE;
    }
    return indices_ok(idx, dim, k, &r.out, why, len);
}

static void index_add_forward(tg_args *r) {
    const tg_arg *y = &r->out;
    memset(y->value, 0, y->numel * tg__arg_dsize(y));
    tg_axis_view v = tg__arg_axis(y, r->param);
    TG_ARG_KERNEL(y, scatter)(v, (size_t)r->in[0].shape[r->param], r->in[1].value,
                              r->in[0].value, y->value);
}

static void index_add_backward(tg_args *r) {
    if (!r->in[0].grad) return;
    tg_axis_view v = tg__arg_axis(&r->out, r->param);
    TG_ARG_KERNEL(&r->out, gather_add)(v, (size_t)r->in[0].shape[r->param], r->in[1].value,
                                       r->out.grad, r->in[0].grad);
}

static void index_add_vjp(tg_node *y, tg_node *g, tg_node **gin) {
    gin[0] = tg__apply(&tg_shape_ops[SH_INDEX_SELECT], g, tg__in(y, 1), y->aux);
}

/* Both constructors' checks: n indices in [0, dim), dim the length of axis
 * (as given) of the shape `into` points into; as a constant node of x's
 * dtype, or NULL (the tape's error set). */
static tg_node *index_node(tg_node *x, int axis, const int64_t *idx, int64_t n, int64_t dim,
                           const char *into, const char *who) {
    tg_tape *t = tg__tape_of(x);
    if (n < 1 || n > TG_MAX_NUMEL) {
        tg_fail(t, TG_ERR_ARG, "%s: %lld indices into %s: at least 1 is needed", who,
                (long long)n, into);
        return NULL;
    }
    if (!idx) {
        tg_fail(t, TG_ERR_NULL, "%s: indices are NULL", who);
        return NULL;
    }
    /* Checked here on the exact integers, before they become x's dtype. */
    for (int64_t j = 0; j < n; j++)
        if (idx[j] < 0 || idx[j] >= dim) {
            tg_fail(t, TG_ERR_ARG, "%s: index %lld (position %lld) is out of range for axis "
                    "%d of %s", who, (long long)idx[j], (long long)j, axis, into);
            return NULL;
        }
    tg_node *in = tg_input(t, tg_node_dtype(x), 1, &n, NULL);
    if (t->status) return NULL;
    for (int64_t j = 0; j < n; j++) {
        if (tg_node_dtype(x) == TG_F64)
            ((double *)tg_value(in))[j] = (double)idx[j];
        else
            ((float *)tg_value(in))[j] = (float)idx[j];
    }
    return in;
}

tg_node *tg_index_add(tg_node *src, int axis, const int64_t *idx, int64_t len) {
    int k = tg__axis(src, axis, "index_add");
    if (k < 0) return failed(src);
    tg_tape *t = tg__tape_of(src);
    if (len < 1 || len > TG_MAX_NUMEL) {
        char s[64];
        tg_fail(t, TG_ERR_ARG, "index_add: a length of %lld along axis %d of %s: 1 to %lld "
                "allowed", (long long)len, axis, tg__shape_str(src, s), (long long)TG_MAX_NUMEL);
        return &t->poison;
    }
    int64_t shape[TG_MAX_DIMS];
    int nd = tg_shape(src, shape);
    int64_t dim = shape[k];
    shape[k] = len;
    char into[96];
    int w = snprintf(into, sizeof into, "[");
    for (int i = 0; i < nd; i++)
        w += snprintf(into + w, sizeof into - (size_t)w, i ? ",%lld" : "%lld", (long long)shape[i]);
    snprintf(into + w, sizeof into - (size_t)w, "]");
    tg_node *in = index_node(src, axis, idx, dim, len, into, "index_add");
    if (!in) return &t->poison;
    return tg__apply_as(&tg_shape_ops[SH_INDEX_ADD], src, in, k, nd, shape);
}

tg_node *tg_index_select(tg_node *x, int axis, const int64_t *idx, int64_t n) {
    int k = tg__axis(x, axis, "index_select");
    if (k < 0) return failed(x);
    int64_t shape[TG_MAX_DIMS];
    tg_shape(x, shape);
    char into[64];
    tg_node *in = index_node(x, axis, idx, n, shape[k], tg__shape_str(x, into), "index_select");
    return in ? tg__apply(&tg_shape_ops[SH_INDEX_SELECT], x, in, k) : failed(x);
}

/* y[o] = x[offset(o)] along the walk, or backward x̄[offset(o)] += ȳ[o]. */
static void walk_move(const tg_args *r, walk w, bool backward) {
    if (!backward)
        TG_ARG_KERNEL(&r->out, walk_gather)(&w, r->in[0].value, r->out.value);
    else if (r->in[0].grad)
        TG_ARG_KERNEL(&r->out, walk_scatter)(&w, r->out.grad, r->in[0].grad);
}
/* ------------------------------------------------------ broadcast_to -- */

/* x's strides over the output's dimensions, aligned from the right; 0 where
 * x has no such dimension or a 1 there. */
static walk broadcast_walk(const tg_args *r) {
    walk w = {.flat = false};
    size_t dx[4], step = 1;
    tg__arg_pad4(&r->out, w.d);
    tg__arg_pad4(&r->in[0], dx);
    for (int i = 3; i >= 0; i--) {
        w.s[0][i] = dx[i] == 1 ? 0 : step;
        step *= dx[i];
    }
    return w;
}

/* The target shape arrives from tg_broadcast_to() through tg__apply_as(). */
static int broadcast_to_shape(tg_node *out, char *why, size_t len) {
    tg_args r;
    tg__args_of(out, &r);
    const tg_arg *x = &r.in[0];
    char sx[64], so[64];
    if (out->ndim < x->ndim) {
        snprintf(why, len, "%s to %s: the target has fewer dimensions", tg__arg_shape_str(x, sx),
                 tg__shape_str(out, so));
        return TG_ERR_SHAPE;
    }
    for (int i = 1; i <= x->ndim; i++) {
        int32_t dx = x->shape[x->ndim - i], d = out->u.shape[out->ndim - i];
        if (dx != d && dx != 1) {
            snprintf(why, len, "%s to %s: dimension %d is %d, neither 1 nor %d",
                     tg__arg_shape_str(x, sx), tg__shape_str(out, so), -i, (int)dx, (int)d);
            return TG_ERR_SHAPE;
        }
    }
    return TG_OK;
}

static void broadcast_to_forward(tg_args *r) { walk_move(r, broadcast_walk(r), false); }
static void broadcast_to_backward(tg_args *r) { walk_move(r, broadcast_walk(r), true); }

static void broadcast_to_vjp(tg_node *y, tg_node *g, tg_node **gin) {
    gin[0] = tg__sum_to(g, tg__in(y, 0));
}

tg_node *tg_broadcast_to(tg_node *x, int ndim, const int64_t *shape) {
    if (!x || tg__tape_of(x)->status) return failed(x);
    char s[64];
    if (ndim < 0 || ndim > TG_MAX_DIMS) {
        tg_fail(tg__tape_of(x), TG_ERR_SHAPE, "broadcast_to: %s to %d dimensions: 0 to %d are supported",
                tg__shape_str(x, s), ndim, TG_MAX_DIMS);
        return failed(x);
    }
    if (ndim > 0 && !shape) {
        tg_fail(tg__tape_of(x), TG_ERR_NULL, "broadcast_to: shape is NULL");
        return failed(x);
    }
    return tg__apply_as(&tg_shape_ops[SH_BROADCAST_TO], x, NULL, 0, ndim, shape);
}

/* ----------------------------------------------------------- permute -- */

/*
 * The permutation is aux, 2 bits per output axis i < ndim: the code
 * (perm[i] - (ndim - 1 - i)) mod 4. The offset makes aux 0 the reversal of
 * the axes (NumPy's transpose without arguments), so that permute called by
 * name, whose aux is 0, means that; and 4 axes x 2 bits fill the int8.
 */
static void perm_decode(int aux, int ndim, int perm[4]) {
    unsigned bits = (uint8_t)aux;
    for (int i = 0; i < 4; i++) perm[i] = (int)((bits >> (2 * i)) + (unsigned)(ndim - 1 - i)) & 3;
}

static int perm_encode(int ndim, const int perm[4]) {
    unsigned bits = 0;
    for (int i = 0; i < ndim; i++) bits |= ((unsigned)(perm[i] - (ndim - 1 - i)) & 3) << (2 * i);
    return bits > 127 ? (int)bits - 256 : (int)bits;
}

static int permute_shape(tg_node *out, char *why, size_t len) {
    tg_args r;
    tg__args_of(out, &r);
    const tg_arg *x = &r.in[0];
    int perm[4], seen = 0;
    perm_decode(out->aux, x->ndim, perm);
    for (int i = 0; i < x->ndim; i++) seen |= perm[i] < x->ndim ? 1 << perm[i] : 0;
    if (seen != (1 << x->ndim) - 1 || perm_encode(x->ndim, perm) != out->aux) {
        snprintf(why, len, "aux %d is no permutation of %d axes", out->aux, x->ndim);
        return TG_ERR_ARG;
    }
    for (int i = 0; i < x->ndim; i++) out->u.shape[i] = x->shape[perm[i]];
    return TG_OK;
}

/* Output axis i walks x's axis perm[i]. */
static walk permute_walk(const tg_args *r) {
    const tg_arg *x = &r->in[0];
    int perm[4], pad = 4 - x->ndim;
    perm_decode(r->param, x->ndim, perm);
    size_t stride[4], step = 1;
    for (int i = x->ndim - 1; i >= 0; i--) {
        stride[i] = step;
        step *= (size_t)x->shape[i];
    }
    walk w = {.d = {1, 1, 1, 1}, .flat = false};
    for (int i = 0; i < x->ndim; i++) {
        w.d[pad + i] = (size_t)r->out.shape[i];
        w.s[0][pad + i] = stride[perm[i]];
    }
    return w;
}

static void permute_forward(tg_args *r) { walk_move(r, permute_walk(r), false); }
static void permute_backward(tg_args *r) { walk_move(r, permute_walk(r), true); }

/* Permuted back by the inverse permutation. */
static void permute_vjp(tg_node *y, tg_node *g, tg_node **gin) {
    int perm[4], inv[4];
    perm_decode(y->aux, y->ndim, perm);
    for (int i = 0; i < y->ndim; i++) inv[perm[i]] = i;
    gin[0] = tg_permute(g, inv);
}

tg_node *tg_permute(tg_node *x, const int *perm) {
    if (!x || tg__tape_of(x)->status) return failed(x);
    tg_tape *t = tg__tape_of(x);
    int nd = tg_ndim(x);
    char s[64], p[64] = "(";
    if (!perm && nd) {
        tg_fail(t, TG_ERR_NULL, "permute: perm is NULL");
        return failed(x);
    }
    int k[4], seen = 0;
    size_t used = 1;
    for (int i = 0; i < nd; i++) {
        k[i] = perm[i] < 0 ? perm[i] + nd : perm[i];
        seen |= k[i] >= 0 && k[i] < nd ? 1 << k[i] : 0;
        used += (size_t)snprintf(p + used, sizeof p - used, i ? ",%d" : "%d", perm[i]);
        if (used >= sizeof p) used = sizeof p - 1;
    }
    snprintf(p + used, sizeof p - used, ")");
    if (seen != (1 << nd) - 1) {
        tg_fail(t, TG_ERR_ARG, "permute: %s by %s: not a permutation of its %d axes",
                tg__shape_str(x, s), p, nd);
        return failed(x);
    }
    return tg__apply(&tg_shape_ops[SH_PERMUTE], x, NULL, perm_encode(nd, k));
}

/* ---------------------------------------------------------- tril/triu -- */

/* x with an integer diagonal offset k as input 1, on the last two axes. */
static int tri_shape(tg_node *out, char *why, size_t len) {
    char s[64];
    if (out->ndim < 2) {
        snprintf(why, len, "%s: needs at least 2 dimensions", tg__shape_str(tg__in(out, 0), s));
        return TG_ERR_SHAPE;
    }
    tg_args r;
    tg__args_of(out, &r);
    return int_param_ok(&r.in[1], "diagonal offset", why, len) ? TG_OK : TG_ERR_ARG;
}

/* Row i of each matrix keeps columns [lo, hi): j - i <= k for tril, j - i >= k for triu. */
static void tri_move(const tg_args *r, bool upper, bool backward) {
    const tg_arg *x = &r->in[0], *y = &r->out;
    if (backward && !x->grad) return;
    size_t rows = (size_t)y->shape[y->ndim - 2], cols = (size_t)y->shape[y->ndim - 1];
    int64_t k = clamped_arg(&r->in[1], -(int64_t)rows, (int64_t)cols);
    size_t mats = y->numel / (rows * cols);
    if (backward)
        TG_ARG_KERNEL(y, band)(mats, rows, cols, k, upper, y->grad, x->grad, true);
    else
        TG_ARG_KERNEL(y, band)(mats, rows, cols, k, upper, x->value, y->value, false);
}
static void tril_forward(tg_args *r) { tri_move(r, false, false); }
static void tril_backward(tg_args *r) { tri_move(r, false, true); }
static void triu_forward(tg_args *r) { tri_move(r, true, false); }
static void triu_backward(tg_args *r) { tri_move(r, true, true); }

static tg_node *tri(int op, tg_node *x, int64_t k);

/* The same mask on the gradient. */
static void tri_vjp(tg_node *y, tg_node *g, tg_node **gin, int op) {
    size_t rows = (size_t)y->u.shape[y->ndim - 2], cols = (size_t)y->u.shape[y->ndim - 1];
    gin[0] = tri(op, g, clamped(tg__in(y, 1), -(int64_t)rows, (int64_t)cols));
}
static void tril_vjp(tg_node *y, tg_node *g, tg_node **gin) { tri_vjp(y, g, gin, SH_TRIL); }
static void triu_vjp(tg_node *y, tg_node *g, tg_node **gin) { tri_vjp(y, g, gin, SH_TRIU); }

static tg_node *tri(int op, tg_node *x, int64_t k) {
    if (!x || tg__tape_of(x)->status) return failed(x);
    const char *who = tg_shape_ops[op].name;
    int64_t shape[TG_MAX_DIMS];
    int nd = tg_shape(x, shape);
    if (nd < 2) { /* the shape rule says so too; here k is not yet clamped */
        char s[64];
        tg_fail(tg__tape_of(x), TG_ERR_SHAPE, "%s: %s: needs at least 2 dimensions", who,
                tg__shape_str(x, s));
        return failed(x);
    }
    /* Beyond these bounds every k acts alike (all kept or none), and the
     * clamped k is exact in float32 for any matrix of 2^24 rows and columns. */
    int64_t rows = shape[nd - 2], cols = shape[nd - 1];
    k = k < -rows ? -rows : k > cols ? cols : k;
    tg_node *p = int_const(x, who, "diagonal offset", k);
    return p ? tg__apply(&tg_shape_ops[op], x, p, 0) : failed(x);
}

tg_node *tg_tril(tg_node *x, int64_t k) { return tri(SH_TRIL, x, k); }
tg_node *tg_triu(tg_node *x, int64_t k) { return tri(SH_TRIU, x, k); }

const tg_op tg_shape_ops[] = {
    [SH_SLICE] = {"slice", 2, slice_shape, slice_forward, slice_backward, slice_vjp,
                  tg__linear_shaped_jvp},
    [SH_CONCAT] = {"concat", 2, concat_shape, concat_forward, concat_backward, concat_vjp,
                   concat_jvp},
    [SH_INDEX_SELECT] = {"index_select", 2, index_select_shape, index_select_forward,
                         index_select_backward, index_select_vjp, tg__linear_jvp},
    [SH_INDEX_ADD] = {"index_add", 2, index_add_shape, index_add_forward, index_add_backward,
                      index_add_vjp, tg__linear_shaped_jvp},
    [SH_BROADCAST_TO] = {"broadcast_to", 1, broadcast_to_shape, broadcast_to_forward,
                         broadcast_to_backward, broadcast_to_vjp, tg__linear_shaped_jvp},
    [SH_PERMUTE] = {"permute", 1, permute_shape, permute_forward, permute_backward, permute_vjp,
                    tg__linear_jvp},
    [SH_TRIL] = {"tril", 2, tri_shape, tril_forward, tril_backward, tril_vjp, tg__linear_jvp},
    [SH_TRIU] = {"triu", 2, tri_shape, triu_forward, triu_backward, triu_vjp, tg__linear_jvp},
};
const int tg_shape_count = SH_COUNT;

#else /* kernel pass, once per dtype */

/* outer runs of len elements: d[o*ds + i] = s[o*ss + i], or += when add.
 * Short runs (a few columns of a row-major matrix) go column by column, as
 * strided loops over the runs: a call per run would cost more than the
 * run. */
#define SHORT_RUN 8
static void S(runs)(size_t outer, size_t len, const void *vs, size_t ss, void *vd, size_t ds,
                    bool add) {
    const T *s = vs;
    T *d = vd;
    if (len <= SHORT_RUN && outer > 1) {
        for (size_t i = 0; i < len; i++)
            if (add)
                for (size_t o = 0; o < outer; o++) d[o * ds + i] += s[o * ss + i];
            else
                for (size_t o = 0; o < outer; o++) d[o * ds + i] = s[o * ss + i];
        return;
    }
    for (size_t o = 0; o < outer; o++, s += ss, d += ds) {
        if (add)
            for (size_t i = 0; i < len; i++) d[i] += s[i];
        else
            memcpy(d, s, len * sizeof(T));
    }
}

/* y[o,j,:] = x[o,idx[j],:] for x viewed as v; an index a caller made invalid
 * after recording gives NaN, not a read out of bounds. */
static void S(gather)(tg_axis_view v, size_t n, const void *vi, const void *vx, void *vy) {
    const T *idx = vi, *x = vx;
    T *y = vy;
    for (size_t o = 0; o < v.outer; o++)
        for (size_t j = 0; j < n; j++) {
            T f = idx[j];
            T *d = y + (o * n + j) * v.inner;
            if (f >= 0 && f < (T)v.len && v.inner == 1) /* a column: no call per element */
                *d = x[o * v.len + (size_t)f];
            else if (f >= 0 && f < (T)v.len)
                memcpy(d, x + (o * v.len + (size_t)f) * v.inner, v.inner * sizeof(T));
            else
                for (size_t i = 0; i < v.inner; i++) d[i] = (T)NAN;
        }
}

/* gx[o,idx[j],:] += g[o,j,:]: a repeated index receives the sum. */
static void S(scatter)(tg_axis_view v, size_t n, const void *vi, const void *vg, void *vgx) {
    const T *idx = vi, *g = vg;
    T *gx = vgx;
    for (size_t o = 0; o < v.outer; o++)
        for (size_t j = 0; j < n; j++) {
            T f = idx[j];
            if (!(f >= 0 && f < (T)v.len)) continue;
            T *d = gx + (o * v.len + (size_t)f) * v.inner;
            const T *s = g + (o * n + j) * v.inner;
            for (size_t i = 0; i < v.inner; i++) d[i] += s[i];
        }
}

/* gs[o,j,:] += gy[o,idx[j],:]: index_add's backward, a gather that adds. */
static void S(gather_add)(tg_axis_view v, size_t n, const void *vi, const void *vgy, void *vgs) {
    const T *idx = vi, *gy = vgy;
    T *gs = vgs;
    for (size_t o = 0; o < v.outer; o++)
        for (size_t j = 0; j < n; j++) {
            T f = idx[j];
            if (!(f >= 0 && f < (T)v.len)) continue;
            const T *s = gy + (o * v.len + (size_t)f) * v.inner;
            T *d = gs + (o * n + j) * v.inner;
            for (size_t i = 0; i < v.inner; i++) d[i] += s[i];
        }
}

/* y[o] = x[offset(o)] over the walk's output, in row-major order. */
static void S(walk_gather)(const walk *w, const void *vx, void *vy) {
    const T *x = vx;
    T *y = vy;
    TG_BCAST_FOR(w, y[o] = x[ia]);
}

/* gx[offset(o)] += g[o]: broadcast elements receive the sum of their copies. */
static void S(walk_scatter)(const walk *w, const void *vg, void *vgx) {
    const T *g = vg;
    T *gx = vgx;
    TG_BCAST_FOR(w, gx[ia] += g[o]);
}

/* Each row i of mats [rows, cols] matrices keeps columns [lo, hi) (lower:
 * j <= i + k; upper: j >= i + k) and zeroes the rest, or, when add, adds
 * its kept columns only. */
static void S(band)(size_t mats, size_t rows, size_t cols, int64_t k, bool upper, const void *vs,
                    void *vd, bool add) {
    const T *s = vs;
    T *d = vd;
    for (size_t m = 0; m < mats; m++)
        for (size_t i = 0; i < rows; i++, s += cols, d += cols) {
            int64_t edge = (int64_t)i + k + (upper ? 0 : 1);
            size_t e = edge < 0 ? 0 : edge > (int64_t)cols ? cols : (size_t)edge;
            size_t lo = upper ? e : 0, hi = upper ? cols : e;
            for (size_t j = 0; j < lo && !add; j++) d[j] = 0;
            for (size_t j = lo; j < hi; j++) d[j] = add ? d[j] + s[j] : s[j];
            for (size_t j = hi; j < cols && !add; j++) d[j] = 0;
        }
}

#endif
