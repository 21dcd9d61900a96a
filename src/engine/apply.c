/* tg__apply: the one constructor behind every op. It validates the inputs,
 * runs the op's shape rule, allocates the result and computes its value. */
#include "record.h"
#include "alloc.h"
#include "suggest.h"

#include <math.h>
#include <stdio.h>

static const char *dtype_name(const tg_node *n) {
    return tg_node_dtype(n) == TG_F64 ? "float64" : "float32";
}

/* The op's registry index through the tape's cache; -1 if unregistered.
 * Open addressing over a few slots: ops of one family sit side by side in
 * memory, and a miss costs the registry's lock. */
int tg__op_index_probe(tg_tape *t, const tg_op *op) {
    enum { SLOTS = TG_OP_CACHE, PROBES = 4 };
    size_t h = tg__op_slot(op), free_slot = h;
    for (size_t k = 0; k < PROBES; k++) {
        size_t s = (h + k) % SLOTS;
        if (t->op_cache[s].op == op) return t->op_cache[s].index;
        if (!t->op_cache[s].op && free_slot == h) free_slot = s;
    }
    int index = tg__op_index(op);
    if (index > 0) {
        t->op_cache[free_slot].op = op;
        t->op_cache[free_slot].index = index;
    }
    return index;
}

/* The index of the first non-finite element of data (x's value or
 * gradient), or -1. */
static int64_t first_nonfinite(const tg_arg *x, const void *data) {
    for (size_t i = 0; i < x->numel; i++)
        if (!isfinite(tg__arg_elem(x, data, i))) return (int64_t)i;
    return -1;
}

/* "log(-1)": the op with its operands as a user writes them, each operand
 * its element i when it has the output's size, its value when it has one
 * element, its shape otherwise. */
static void describe_call(const tg_args *r, size_t i, char *buf, size_t len) {
    int k = snprintf(buf, len, "%s(", r->op->name);
    for (int j = 0; j < r->op->arity && k > 0 && (size_t)k < len; j++) {
        const tg_arg *in = &r->in[j];
        char s[64];
        if (in->numel == 1 || in->numel == r->out.numel)
            snprintf(s, sizeof s, "%.9g", tg__arg_elem(in, in->value, in->numel == 1 ? 0 : i));
        else
            tg__arg_shape_str(in, s);
        k += snprintf(buf + k, len - (size_t)k, j ? ", %s" : "%s", s);
    }
    if (k > 0 && (size_t)k < len) snprintf(buf + k, len - (size_t)k, ")");
}

void tg__check_finite(tg_node *n, int input) {
    tg_args r;
    tg__args_of(n, &r);
    const tg_arg *owner = input < 0 ? &r.out : &r.in[input];
    const void *data = input < 0 ? owner->value : owner->grad;
    int64_t i = data ? first_nonfinite(owner, data) : -1;
    if (i < 0) return;
    double v = tg__arg_elem(owner, data, (size_t)i);
    const char *name = isnan(v) ? "NaN" : v > 0 ? "inf" : "-inf";
    char call[160], what[64];
    describe_call(&r, owner->numel == r.out.numel ? (size_t)i : 0, call, sizeof call);
    if (input < 0)
        snprintf(what, sizeof what, "value");
    else
        snprintf(what, sizeof what, "gradient of input %d", input);
    if (owner->numel == 1)
        tg_fail(n->tape, TG_ERR_NUMERIC, "%s: node %u: the %s of %s is %s", r.op->name,
                (unsigned)n->id, what, call, name);
    else
        tg_fail(n->tape, TG_ERR_NUMERIC, "%s: node %u: element %lld of the %s of %s is %s",
                r.op->name, (unsigned)n->id, (long long)i, what, call, name);
}

/* The number of inputs given: in[0..n) without its trailing NULLs. */
static int given_inputs(int n, tg_node *const *in) {
    while (n > 0 && !in[n - 1]) n--;
    return n;
}

/* Checks the inputs of op: present, on t, alive, of one dtype. */
static bool inputs_ok(tg_tape *t, const tg_op *op, int nin, tg_node *const *in) {
    char sa[64], sb[64];
    int given = given_inputs(nin, in);
    if (given > op->arity) {
        tg_fail(t, TG_ERR_ARG, "%s: takes %d input%s, given %d", op->name, op->arity,
                op->arity == 1 ? "" : "s", given);
        return false;
    }
    for (int k = 0; k < op->arity && k < nin; k++) {
        if (!in[k]) {
            tg_fail(t, TG_ERR_NULL, "%s: input %d is NULL", op->name, k);
            return false;
        }
        if (tg__tape_of(in[k]) != t) {
            tg_fail(t, TG_ERR_TAPE, "%s: inputs %s and %s are on different tapes", op->name,
                    tg__shape_str(in[0], sa), tg__shape_str(in[k], sb));
            return false;
        }
        if (tg__stale(in[k])) {
            tg_fail(t, TG_ERR_STATE,
                    "%s: input %d (node %zu) was recorded before tg_tape_reset() and is gone",
                    op->name, k, tg__id(in[k]));
            return false;
        }
        if (tg_node_dtype(in[k]) != tg_node_dtype(in[0])) {
            tg_fail(t, TG_ERR_DTYPE, "%s: %s %s and %s %s: dtypes differ", op->name,
                    dtype_name(in[0]), tg__shape_str(in[0], sa), dtype_name(in[k]),
                    tg__shape_str(in[k], sb));
            return false;
        }
    }
    if (nin < op->arity) {
        tg_fail(t, TG_ERR_ARG, "%s: takes %d inputs, given %d", op->name, op->arity, nin);
        return false;
    }
    return true;
}

tg_node *tg__apply_n(const tg_op *op, int nin, tg_node *const *given, int aux, int ndim,
                     const int64_t *shape) {
    if (nin > 0 && nin <= 3 && ndim < 0 && tg__is_compact(given[0]) && (nin < 3 || !given[2])) {
        tg_node *r = tg__scalar_op(op, given[0], nin > 1 ? given[1] : NULL); /* tg_apply() */
        if (r) return r;
    }
    tg_node *first = NULL;
    for (int k = 0; k < nin && !first; k++) first = given[k];
    if (!first) return NULL; /* no tape to record the error on */
    tg_tape *t = tg__tape_of(first);
    if (t->status) return &t->poison;
    if (!op) {
        tg_fail(t, TG_ERR_NULL, "apply: op is NULL");
        return &t->poison;
    }
    int index = tg__op_index_cached(t, op);
    if (!inputs_ok(t, op, nin, given)) return &t->poison;
    if (t->memo && ndim < 0) {
        tg_node *m = tg__memo_find(t, op, nin, given, aux);
        if (m) return m;
    }
    if (index <= 0) {
        tg_fail(t, TG_ERR_UNKNOWN_OP, "%s: op is not registered", op->name);
        return &t->poison;
    }
    tg_node *a = given[0], *b = op->arity > 1 ? given[1] : NULL, *c = op->arity > 2 ? given[2] : NULL;
    char sa[64];
    size_t mark = t->nnodes; /* a failure below drops n again */
    tg_node *n = tg__new_node(t);
    if (!n) return &t->poison;
    n->in[0] = a;
    n->in[1] = b;
    n->op = (uint8_t)index;
    n->aux = (int8_t)aux;
    bool wants = tg__needs_grad(a) || (b && tg__needs_grad(b)) || (c && tg__needs_grad(c));
    n->flags = (uint8_t)((tg__is_compact(a) || tg__f64(a) ? TG_F_F64 : 0) |
                         (wants ? TG_F_NEEDS_GRAD : 0) | (c ? TG_F_IN3 : 0));
    n->grad = c; /* until the value exists (tg__in) */
    if (!tg__is_compact(a) && a->ndim) {
        n->ndim = a->ndim;
        n->u = a->u;
    }
    if (ndim >= 0 && tg_set_shape(n, ndim, shape) != TG_OK) {
        tg__pop_to(t, mark);
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
            tg__pop_to(t, mark);
            tg_fail(t, rc, "%s: %s", op->name, why[0] ? why : "bad input");
            return &t->poison;
        }
    }
    /* A shape rule may have made the output a view of an input's memory
     * (reshape); other outputs get their own. */
    if (!n->value && tg__alloc_value(n)) {
        tg__pop_to(t, mark);
        return &t->poison;
    }
    if (c) {
        ((tg_node **)n->value)[-1] = c;
        n->grad = NULL;
    }
    tg__run_forward(n);
    if (t->check_numerics) tg__check_finite(n, -1);
    if (t->memo && ndim < 0) tg__memo_put(t, op, nin, given, aux, n);
    return n;
}

tg_node *tg_apply(const tg_op *op, tg_node *a, tg_node *b) { return tg__apply(op, a, b, 0); }

tg_node *tg_apply_n(const tg_op *op, int n, tg_node *const *in) {
    if (!in || n < 1 || n > 3) return NULL;
    return tg__apply_n(op, n, in, 0, -1, NULL);
}

tg_node *tg_call_n(const char *name, int n, tg_node *const *in) {
    if (!in || n < 1 || n > 3) return NULL;
    tg_node *first = NULL;
    for (int k = 0; k < n && !first; k++) first = in[k];
    if (!first) return NULL;
    tg_tape *t = tg__tape_of(first);
    if (t->status) return &t->poison;
    const tg_op *op = tg_op_find(name);
    if (!op) {
        const char *near = name ? tg__suggest_op(name) : NULL;
        tg_fail(t, TG_ERR_UNKNOWN_OP, "unknown op '%s'%s%s%s", name ? name : "(null)",
                near ? " (did you mean " : "", near ? near : "", near ? "?)" : "");
        return &t->poison;
    }
    int given = given_inputs(n, in);
    if (given != op->arity) {
        tg_fail(t, TG_ERR_ARG, "%s: takes %d input%s, given %d", op->name, op->arity,
                op->arity == 1 ? "" : "s", given);
        return &t->poison;
    }
    return tg__apply_n(op, n, in, 0, -1, NULL);
}

tg_node *tg_call(const char *name, tg_node *a, tg_node *b) {
    tg_node *in[2] = {a, b};
    return tg_call_n(name, 2, in);
}

int tg__axis(tg_node *a, int axis, const char *who) {
    if (!a || tg__tape_of(a)->status) return -1;
    int nd = tg_ndim(a);
    int k = axis < 0 ? axis + nd : axis;
    if (k < 0 || k >= nd) {
        char s[64];
        tg_fail(tg__tape_of(a), TG_ERR_ARG, "%s: axis %d is out of range for %s", who, axis,
                tg__shape_str(a, s));
        return -1;
    }
    return k;
}
