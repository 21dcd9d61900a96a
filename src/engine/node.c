/* Leaves (the constructors of inputs and variables) and node accessors. */
#include "rules.h"

#include <math.h>
#include <string.h>

/* A validated leaf without memory yet, or NULL (status set). */
static tg_node *new_leaf(tg_tape *t, const char *who, tg_dtype dtype, int ndim,
                         const int64_t *shape) {
    if (!t) return NULL;
    if (t->status) return NULL;
    if (dtype != TG_F32 && dtype != TG_F64) {
        tg_fail(t, TG_ERR_DTYPE, "%s: unknown dtype %d", who, (int)dtype);
        return NULL;
    }
    if (ndim < 0 || ndim > TG_MAX_DIMS) {
        tg_fail(t, TG_ERR_SHAPE, "%s: %d dimensions; at most %d are supported", who, ndim,
                TG_MAX_DIMS);
        return NULL;
    }
    if (ndim > 0 && !shape) {
        tg_fail(t, TG_ERR_NULL, "%s: shape is NULL", who);
        return NULL;
    }
    int64_t numel = 1;
    for (int i = 0; i < ndim; i++) {
        if (shape[i] < 1 || shape[i] > TG_MAX_NUMEL || (numel *= shape[i]) > TG_MAX_NUMEL) {
            tg_fail(t, TG_ERR_SHAPE,
                    "%s: dimension %d is %lld; sizes must be >= 1 with at most %lld elements",
                    who, i, (long long)shape[i], (long long)TG_MAX_NUMEL);
            return NULL;
        }
    }
    tg_node *n = tg__new_node(t);
    if (!n) return NULL;
    n->flags = dtype == TG_F64 ? TG_F_F64 : 0;
    n->ndim = (uint8_t)ndim;
    for (int i = 0; i < ndim; i++) n->u.shape[i] = (int32_t)shape[i];
    return n;
}

/* A leaf holding a copy of data (NULL: zeros) as a 64-byte node. */
static tg_node *full_leaf(tg_tape *t, const char *who, tg_dtype dtype, int ndim,
                          const int64_t *shape, const void *data, bool wants_grad) {
    tg_node *n = new_leaf(t, who, dtype, ndim, shape);
    if (!n) return t ? &t->poison : NULL;
    if (tg__alloc_value(n)) {
        tg__pop_to(t, t->nnodes - 1);
        return &t->poison;
    }
    size_t bytes = tg__numel(n) * tg__dsize(n);
    if (data)
        memcpy(n->value, data, bytes);
    else
        memset(n->value, 0, bytes);
    if (wants_grad) n->flags |= TG_F_NEEDS_GRAD;
    return n;
}

/* The same, a compact record when t records float64 scalars compactly. */
static tg_node *owned_leaf(tg_tape *t, const char *who, tg_dtype dtype, int ndim,
                           const int64_t *shape, const void *data, bool wants_grad) {
    if (t && !t->status && ndim == 0 && dtype == TG_F64 && tg__compact_on(t))
        return tg__scalar_leaf(t, data ? *(const double *)data : 0.0, wants_grad);
    return full_leaf(t, who, dtype, ndim, shape, data, wants_grad);
}

tg_node *tg_tensor(tg_tape *t, tg_dtype dtype, int ndim, const int64_t *shape,
                   const void *data) {
    return owned_leaf(t, "tensor", dtype, ndim, shape, data, true);
}

tg_node *tg_input(tg_tape *t, tg_dtype dtype, int ndim, const int64_t *shape,
                  const void *data) {
    return owned_leaf(t, "input", dtype, ndim, shape, data, false);
}

tg_node *tg_const_as(tg_tape *t, tg_dtype dtype, double value) {
    float f = (float)value;
    return owned_leaf(t, "const", dtype, 0, NULL, dtype == TG_F32 ? (void *)&f : (void *)&value,
                      false);
}

/* Whether h is still a 0-d constant of dtype dt holding exactly v, compact
 * or not as asked (its position may have been reused since: a reset, a
 * rewind). */
static bool holds_const(const tg_tape *t, tg_node *h, tg_dtype dt, double v, bool compact) {
    size_t p = tg__id(h);
    if (p >= t->nnodes || tg__node_at(t, p) != h || tg__is_compact(h) != compact ||
        !tg__is_leaf(h) || tg__needs_grad(h) || tg_node_dtype(h) != dt || tg_ndim(h) != 0)
        return false;
    double w = tg_value_at(h, 0);
    if (dt == TG_F32) v = (float)v;
    return memcmp(&w, &v, sizeof v) == 0;
}

/* Two ways of a cache of 32: a value's pair of slots, the first free or
 * stale one refilled on a miss (else the first), so that two values in
 * turn (slices at 0 and 1) do not evict each other. */
tg_node *tg__shared_const(tg_tape *t, tg_dtype dtype, double value, bool for_compact) {
    bool compact = for_compact && dtype == TG_F64 && tg__compact_on(t);
    uint64_t bits;
    memcpy(&bits, &value, sizeof bits);
    bits ^= (uint64_t)dtype << 63 | (uint64_t)compact << 62 | bits >> 29;
    size_t pair = (size_t)((bits * 0x9e3779b97f4a7c15u) >> 60) * 2, fill = pair;
    for (size_t s = pair; s < pair + 2; s++) {
        tg_node *h = t->consts[s];
        if (h && holds_const(t, h, dtype, value, compact)) return h;
        if (!h || tg__id(h) >= t->nnodes) fill = s;
    }
    float f = (float)value;
    tg_node *h = compact ? tg__scalar_leaf(t, value, false)
                         : full_leaf(t, "const", dtype, 0, NULL,
                                     dtype == TG_F32 ? (void *)&f : (void *)&value, false);
    if (!t->status) t->consts[fill] = h;
    return h;
}

tg_node *tg_scalar(tg_tape *t, double value) {
    return owned_leaf(t, "scalar", TG_F64, 0, NULL, &value, true);
}

tg_node *tg_const(tg_tape *t, double value) {
    return owned_leaf(t, "const", TG_F64, 0, NULL, &value, false);
}

tg_node *tg_view(tg_tape *t, tg_dtype dtype, int ndim, const int64_t *shape, void *value,
                 void *grad) {
    if (t && !t->status && !value) tg_fail(t, TG_ERR_NULL, "view: value is NULL");
    tg_node *n = new_leaf(t, "view", dtype, ndim, shape);
    if (!n) return t ? &t->poison : NULL;
    n->value = value;
    n->grad = grad;
    n->flags |= TG_F_EXT_VALUE | (grad ? TG_F_EXT_GRAD | TG_F_NEEDS_GRAD : 0);
    return n;
}

/* ------------------------------------------------------------ accessors -- */

tg_tape *tg_node_tape(const tg_node *n) { return n ? tg__tape_of(n) : NULL; }
tg_dtype tg_node_dtype(const tg_node *n) {
    return n && (tg__is_compact(n) || tg__f64(n)) ? TG_F64 : TG_F32;
}
int tg_ndim(const tg_node *n) { return n && !tg__is_compact(n) ? n->ndim : 0; }
int64_t tg_numel(const tg_node *n) {
    return !n ? 0 : tg__is_compact(n) ? 1 : (int64_t)tg__numel(n);
}
/* Whether n is a node of an earlier recording; if so, records why on its tape. */
static bool refused_stale(const tg_node *n, const char *who) {
    if (!tg__stale(n)) return false;
    tg_fail(tg__tape_of(n), TG_ERR_STATE,
            "%s: node %zu was recorded before tg_tape_reset() and is gone", who, tg__id(n));
    return true;
}

void *tg_value(const tg_node *n) {
    return n && !refused_stale(n, "value") ? tg__value_of(n) : NULL;
}
void *tg_grad_data(const tg_node *n) {
    return n && !refused_stale(n, "grad") ? tg__grad_of(n) : NULL;
}
int tg_requires_grad(const tg_node *n) { return n && tg__needs_grad(n); }
size_t tg_node_index(const tg_node *n) { return n ? tg__id(n) : SIZE_MAX; }

int tg_shape(const tg_node *n, int64_t *shape) {
    int nd = tg_ndim(n);
    for (int i = 0; i < nd && shape; i++) shape[i] = n->u.shape[i];
    return nd;
}

static double element(const tg_node *n, const void *data, int64_t i) {
    if (!n || !data || i < 0 || i >= tg_numel(n)) return NAN;
    return tg_node_dtype(n) == TG_F64 ? ((const double *)data)[i] : ((const float *)data)[i];
}

double tg_value_at(const tg_node *n, int64_t i) { return element(n, tg_value(n), i); }

double tg_grad_at(const tg_node *n, int64_t i) {
    if (!n || refused_stale(n, "grad")) return NAN;
    if (!tg__grad_of(n) && i >= 0 && i < tg_numel(n)) return 0.0;
    return element(n, tg__grad_of(n), i);
}

double tg_value_scalar(const tg_node *n) { return tg_numel(n) == 1 ? tg_value_at(n, 0) : NAN; }

double tg_grad_scalar(const tg_node *n) { return tg_numel(n) == 1 ? tg_grad_at(n, 0) : NAN; }

const char *tg_node_op_name(const tg_node *n) {
    if (!n) return "";
    return tg__op_index_of(n) ? tg__op(tg__op_index_of(n))->name : "leaf";
}

int tg_node_arity(const tg_node *n) { return n && tg__op_index_of(n) ? tg__op(tg__op_index_of(n))->arity : 0; }

tg_node *tg_node_input(const tg_node *n, int k) {
    if (!n || k < 0 || k >= tg_node_arity(n)) return NULL;
    if (tg__is_compact(n)) {
        tg_tape *t = tg__ctape(n);
        return tg__node_at(t, tg__hsc(n)->in[k][tg__hindex(n)]);
    }
    return tg__in(n, k);
}

int tg_set_shape(tg_node *out, int ndim, const int64_t *shape) {
    if (!out || tg__is_compact(out) || ndim < 0 || ndim > TG_MAX_DIMS || (ndim && !shape))
        return TG_ERR_SHAPE;
    int64_t numel = 1;
    for (int i = 0; i < ndim; i++)
        if (shape[i] < 1 || shape[i] > TG_MAX_NUMEL || (numel *= shape[i]) > TG_MAX_NUMEL)
            return TG_ERR_SHAPE;
    out->ndim = (uint8_t)ndim;
    for (int i = 0; i < ndim; i++) out->u.shape[i] = (int32_t)shape[i];
    return TG_OK;
}
