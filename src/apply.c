/* tg__apply: the one constructor behind every op. It validates the inputs,
 * runs the op's shape rule, allocates the result and computes its value. */
#include "internal.h"

#include <math.h>
#include <stdio.h>

static const char *dtype_name(const tg_node *n) { return tg__f64(n) ? "float64" : "float32"; }

/* The op's registry index through the tape's cache; -1 if unregistered. */
static int op_index(tg_tape *t, const tg_op *op) {
    size_t slot = ((uintptr_t)op / sizeof *op) % (sizeof t->op_cache / sizeof *t->op_cache);
    if (t->op_cache[slot].op == op) return t->op_cache[slot].index;
    int index = tg__op_index(op);
    if (index > 0) {
        t->op_cache[slot].op = op;
        t->op_cache[slot].index = index;
    }
    return index;
}

/* Whether all n values are finite. */
static bool all_finite(const tg_node *n, const void *data) {
    size_t k = tg__numel(n);
    if (tg__f64(n)) {
        const double *d = data;
        for (size_t i = 0; i < k; i++)
            if (!isfinite(d[i])) return false;
    } else {
        const float *f = data;
        for (size_t i = 0; i < k; i++)
            if (!isfinite(f[i])) return false;
    }
    return true;
}

void tg__check_finite(tg_node *n, const void *data, const char *what) {
    if (data && !all_finite(n, data))
        tg_fail(n->tape, TG_ERR_NUMERIC, "%s: node %u: non-finite %s", tg_node_op_name(n),
                (unsigned)n->id, what);
}

tg_node *tg__apply(const tg_op *op, tg_node *a, tg_node *b, int aux) {
    return tg__apply_as(op, a, b, aux, -1, NULL);
}

tg_node *tg__apply_as(const tg_op *op, tg_node *a, tg_node *b, int aux, int ndim,
                      const int64_t *shape) {
    tg_node *first = a ? a : b;
    if (!first) return NULL; /* no tape to record the error on */
    tg_tape *t = first->tape;
    if (t->status) return &t->poison;
    if (!op) {
        tg_fail(t, TG_ERR_NULL, "apply: op is NULL");
        return &t->poison;
    }
    if (!a || (op->arity == 2 && !b)) {
        tg_fail(t, TG_ERR_NULL, "%s: input %d is NULL", op->name, a ? 1 : 0);
        return &t->poison;
    }
    if (op->arity == 1 && b) {
        tg_fail(t, TG_ERR_ARG, "%s: takes 1 input, given 2", op->name);
        return &t->poison;
    }
    char sa[64], sb[64];
    if (b && b->tape != t) {
        tg_fail(t, TG_ERR_TAPE, "%s: inputs %s and %s are on different tapes", op->name,
                tg__shape_str(a, sa), tg__shape_str(b, sb));
        return &t->poison;
    }
    if (b && tg__f64(a) != tg__f64(b)) {
        tg_fail(t, TG_ERR_DTYPE, "%s: %s %s and %s %s: dtypes differ", op->name, dtype_name(a),
                tg__shape_str(a, sa), dtype_name(b), tg__shape_str(b, sb));
        return &t->poison;
    }
    int index = op_index(t, op);
    if (index <= 0) {
        tg_fail(t, TG_ERR_UNKNOWN_OP, "%s: op is not registered", op->name);
        return &t->poison;
    }
    tg_node *n = tg__new_node(t);
    if (!n) return &t->poison;
    n->in[0] = a;
    n->in[1] = b;
    n->op = (uint8_t)index;
    n->aux = (int8_t)aux;
    n->flags = (uint8_t)((a->flags & (TG_F_F64 | TG_F_NEEDS_GRAD)) |
                         (b ? b->flags & TG_F_NEEDS_GRAD : 0));
    n->ndim = a->ndim;
    if (a->ndim) n->u = a->u;
    if (ndim >= 0 && tg_set_shape(n, ndim, shape) != TG_OK) {
        tg__pop_node(t);
        char sw[64] = "?";
        if (ndim <= TG_MAX_DIMS && (shape || !ndim)) {
            int k = sprintf(sw, "[");
            for (int i = 0; i < ndim && k < 40; i++)
                k += sprintf(sw + k, i ? ",%lld" : "%lld", (long long)shape[i]);
            sprintf(sw + k, "]");
        }
        tg_fail(t, TG_ERR_SHAPE, "%s: %s to %s: not a valid shape", op->name,
                tg__shape_str(a, sa), sw);
        return &t->poison;
    }
    if (op->shape) {
        char why[160];
        why[0] = '\0'; /* not the whole buffer: this runs for every node */
        int rc = op->shape(n, why, sizeof why);
        if (rc != TG_OK) {
            tg__pop_node(t);
            tg_fail(t, rc, "%s: %s", op->name, why[0] ? why : "bad input");
            return &t->poison;
        }
    }
    if (tg__alloc_value(n)) {
        tg__pop_node(t);
        return &t->poison;
    }
    op->forward(n);
    if (t->check_numerics) tg__check_finite(n, n->value, "value");
    return n;
}

tg_node *tg_apply(const tg_op *op, tg_node *a, tg_node *b) { return tg__apply(op, a, b, 0); }

tg_node *tg_call(const char *name, tg_node *a, tg_node *b) {
    tg_node *first = a ? a : b;
    if (!first) return NULL;
    const tg_op *op = tg_op_find(name);
    if (!op && !first->tape->status) {
        tg_fail(first->tape, TG_ERR_UNKNOWN_OP, "unknown op '%s'", name ? name : "(null)");
        return &first->tape->poison;
    }
    if (op && (op->arity == 2) != (b != NULL) && !first->tape->status) {
        tg_fail(first->tape, TG_ERR_ARG, "%s: takes %d input%s", op->name, op->arity,
                op->arity == 1 ? "" : "s");
        return &first->tape->poison;
    }
    return tg__apply(op, a, b, 0);
}

tg_axis_view tg__axis_view(const tg_node *n, int axis) {
    tg_axis_view v = {1, tg__numel(n), 1};
    if (axis == TG_AXIS_ALL) return v;
    v.len = (size_t)n->u.shape[axis];
    for (int i = 0; i < axis; i++) v.outer *= (size_t)n->u.shape[i];
    for (int i = axis + 1; i < n->ndim; i++) v.inner *= (size_t)n->u.shape[i];
    return v;
}

int tg__axis(tg_node *a, int axis, const char *who) {
    if (!a || a->tape->status) return -1;
    int k = axis < 0 ? axis + a->ndim : axis;
    if (k < 0 || k >= a->ndim) {
        char s[64];
        tg_fail(a->tape, TG_ERR_ARG, "%s: axis %d is out of range for %s", who, axis,
                tg__shape_str(a, s));
        return -1;
    }
    return k;
}
