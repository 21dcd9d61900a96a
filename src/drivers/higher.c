/*
 * Drivers on top of tg_grad() and the tangent sweep (tangent.c):
 * Hessian-vector products, directional derivatives, dense Hessians and
 * Jacobians.
 */
#include "rules.h"
#include "alloc.h"

#include <math.h>
#include <string.h>

/* Validates a (out, n, wrt) triple the way tg_grad() does, for the drivers
 * that read values before calling it. */
static int check_args(tg_node *out, int n, tg_node *const *wrt, const char *who) {
    if (!out) return TG_ERR_NULL;
    tg_tape *t = tg__tape_of(out);
    if (t->status) return t->status;
    if (n < 1 || !wrt) return tg_fail(t, n < 1 ? TG_ERR_ARG : TG_ERR_NULL, "%s: %s", who,
                                      n < 1 ? "no wrt nodes (n < 1)" : "wrt is NULL");
    for (int i = 0; i < n; i++) {
        if (!wrt[i]) return tg_fail(t, TG_ERR_NULL, "%s: wrt[%d] is NULL", who, i);
        if (tg__tape_of(wrt[i]) != t)
            return tg_fail(t, TG_ERR_TAPE, "%s: wrt[%d] is on another tape than the output", who, i);
        if (tg__stale(wrt[i]) || tg__stale(out))
            return tg_fail(t, TG_ERR_STATE, "%s: a node was recorded before tg_tape_reset()", who);
        if (!tg__needs_grad(wrt[i]))
            return tg_fail(t, TG_ERR_ARG, "%s: wrt[%d] does not want a gradient", who, i);
    }
    return TG_OK;
}

/* Shapes of any two handles. */
static bool same_shape(const tg_node *a, const tg_node *b) {
    int64_t sa[TG_MAX_DIMS], sb[TG_MAX_DIMS];
    int na = tg_shape(a, sa);
    return na == tg_shape(b, sb) && !memcmp(sa, sb, (size_t)na * sizeof *sa);
}

static int check_like(tg_tape *t, int n, tg_node *const *wrt, tg_node *const *v, const char *who) {
    if (!v) return tg_fail(t, TG_ERR_NULL, "%s: v is NULL", who);
    for (int i = 0; i < n; i++) {
        char sa[64], sb[64];
        if (!v[i]) return tg_fail(t, TG_ERR_NULL, "%s: v[%d] is NULL", who, i);
        if (!same_shape(v[i], wrt[i]))
            return tg_fail(t, TG_ERR_SHAPE, "%s: v[%d] has shape %s, wrt[%d] has %s", who, i,
                           tg__shape_str(v[i], sa), i, tg__shape_str(wrt[i], sb));
    }
    return TG_OK;
}

/* On failure the output nodes are the poison node, never uninitialised. */
static int poisoned(int rc, tg_node *out, int n, tg_node **nodes) {
    if (rc && out && nodes)
        for (int i = 0; i < n; i++) nodes[i] = &tg__tape_of(out)->poison;
    return rc;
}

static int hvp(tg_node *out, int n, tg_node *const *wrt, tg_node *const *v, tg_node **hv);
static int jvp(tg_node *out, int n, tg_node *const *wrt, tg_node *const *v, tg_node **jv);

int tg_hvp(tg_node *out, int n, tg_node *const *wrt, tg_node *const *v, tg_node **hv) {
    return poisoned(hvp(out, n, wrt, v, hv), out, n, hv);
}

int tg_jvp(tg_node *out, int n, tg_node *const *wrt, tg_node *const *v, tg_node **jv) {
    return poisoned(jvp(out, n, wrt, v, jv), out, 1, jv);
}

static int hvp(tg_node *out, int n, tg_node *const *wrt, tg_node *const *v, tg_node **hv) {
    int rc = check_args(out, n, wrt, "hvp");
    if (rc) return rc;
    tg_tape *t = tg__tape_of(out);
    if (!hv) return tg_fail(t, TG_ERR_NULL, "hvp: hv is NULL");
    if ((rc = check_like(t, n, wrt, v, "hvp"))) return rc;
    tg_node **g = tg__malloc(sizeof *g * (size_t)n);
    if (!g) return tg_fail(t, TG_ERR_NOMEM, "hvp: out of memory");
    /* forward over reverse: the tangent of the gradient along v is H v (in
     * the benchmark 5-10 % faster than the gradient of g . v) */
    if (!tg_grad_nodes(out, n, wrt, g)) tg__tangents(n, g, n, wrt, 1, v, hv);
    tg__free(g);
    return t->status;
}

static int jvp_many(tg_node *out, int n, tg_node *const *wrt, int k, tg_node *const *v,
                    tg_node **jv, const char *who) {
    int rc = check_args(out, n, wrt, who);
    if (rc) return rc;
    tg_tape *t = tg__tape_of(out);
    if (k < 1) return tg_fail(t, TG_ERR_ARG, "%s: k = %d directions; it must be at least 1", who, k);
    if (!jv) return tg_fail(t, TG_ERR_NULL, "%s: jv is NULL", who);
    if (!v) return tg_fail(t, TG_ERR_NULL, "%s: v is NULL", who);
    for (int j = 0; j < k; j++)
        if ((rc = check_like(t, n, wrt, v + (size_t)j * (size_t)n, who))) return rc;
    return tg__tangents(1, &out, n, wrt, k, v, jv);
}

static int jvp(tg_node *out, int n, tg_node *const *wrt, tg_node *const *v, tg_node **jv) {
    return jvp_many(out, n, wrt, 1, v, jv, "jvp");
}

int tg_jvp_many(tg_node *out, int n, tg_node *const *wrt, int k, tg_node *const *v,
                tg_node **jv) {
    return poisoned(jvp_many(out, n, wrt, k, v, jv, "jvp_many"), out, k > 0 ? k : 0, jv);
}

/* ------------------------------------------------ dense matrices -- */

/* Leaf gradients saved before the sweeps of a dense driver and put back
 * after, so that the driver leaves the tape's gradients as it found them. */
typedef struct saved_grads {
    size_t count;
    void **ptr;      /* the leaves' gradient memory, NULL where there was none */
    unsigned char *data;
} saved_grads;

/* A leaf's gradient memory and its size in bytes, or NULL. */
static void *leaf_grad(tg_node *n, size_t *bytes) {
    if (!tg__is_leaf(n)) return NULL;
    *bytes = (size_t)tg_numel(n) * (tg_node_dtype(n) == TG_F64 ? 8 : 4);
    return tg__grad_of(n);
}

static void clear_grad(tg_node *n) {
    size_t k;
    void *g = leaf_grad(n, &k);
    if (g) memset(g, 0, k);
}

static int save_grads(tg_tape *t, saved_grads *s) {
    size_t bytes = 0, k;
    s->count = t->nnodes;
    for (size_t i = 0; i < t->nnodes; i++)
        if (leaf_grad(tg__node_at(t, i), &k)) bytes += k;
    s->ptr = tg__calloc(s->count ? s->count : 1, sizeof *s->ptr);
    s->data = tg__malloc(bytes ? bytes : 1);
    if (!s->ptr || !s->data) {
        tg__free(s->ptr);
        tg__free(s->data);
        return tg_fail(t, TG_ERR_NOMEM, "out of memory saving %zu bytes of gradients", bytes);
    }
    unsigned char *p = s->data;
    for (size_t i = 0; i < t->nnodes; i++) {
        void *g = leaf_grad(tg__node_at(t, i), &k);
        if (!g) continue;
        memcpy(p, g, k);
        s->ptr[i] = g;
        p += k;
    }
    return TG_OK;
}

/* Puts the saved gradients back; leaves that had none get zeros. */
static void restore_grads(tg_tape *t, saved_grads *s) {
    unsigned char *p = s->data;
    size_t k;
    for (size_t i = 0; i < s->count; i++) {
        void *g = leaf_grad(tg__node_at(t, i), &k);
        if (!g) continue;
        if (s->ptr[i] == g) {
            memcpy(g, p, k);
            p += k;
        } else {
            memset(g, 0, k);
        }
    }
    tg__free(s->ptr);
    tg__free(s->data);
}

/* Writes into row the gradients of the wrt nodes after one sweep seeded at a
 * unit vector, and only then clears them for the next (leaf gradients
 * accumulate, and an interior node's is only rewritten when a sweep reaches
 * it): a node named twice in wrt fills both its places. */
static void read_row(int n, tg_node *const *wrt, double *row) {
    size_t c = 0;
    for (int i = 0; i < n; i++) {
        size_t k = (size_t)tg_numel(wrt[i]);
        for (size_t j = 0; j < k; j++) row[c + j] = tg_grad_at(wrt[i], (int64_t)j) + 0.0;
        c += k;
    }
    for (int i = 0; i < n; i++) clear_grad(wrt[i]);
}

/* Rows of d(ys)/d(wrt) by one seeded sweep per element of the nodes ys[0..m):
 * the dense engine of tg_hessian (ys = the gradient nodes) and the reverse
 * tg_jacobian (ys = the output). */
static int reverse_rows(tg_tape *t, int m, tg_node *const *ys, int n, tg_node *const *wrt,
                        double *out, size_t cols, const char *who) {
    size_t maxel = 1;
    for (int k = 0; k < m; k++)
        if ((size_t)tg_numel(ys[k]) > maxel) maxel = (size_t)tg_numel(ys[k]);
    double *seed = tg__calloc(maxel, sizeof(double));
    saved_grads saved;
    if (!seed || save_grads(t, &saved)) {
        tg__free(seed);
        return t->status ? t->status : tg_fail(t, TG_ERR_NOMEM, "%s: out of memory", who);
    }
    for (int i = 0; i < n; i++) clear_grad(wrt[i]);
    size_t r = 0;
    for (int k = 0; k < m && !t->status; k++) {
        size_t len = (size_t)tg_numel(ys[k]);
        for (size_t j = 0; j < len && !t->status; j++, r++) {
            if (tg_node_dtype(ys[k]) == TG_F64)
                seed[j] = 1;
            else
                ((float *)seed)[j] = 1;
            int rc = tg_backward_seeded(ys[k], seed);
            memset(seed, 0, maxel * sizeof(double));
            if (!rc) read_row(n, wrt, out + r * cols);
        }
    }
    restore_grads(t, &saved);
    tg__free(seed);
    return t->status;
}

static size_t total_numel(int n, tg_node *const *wrt) {
    size_t k = 0;
    for (int i = 0; i < n; i++) k += (size_t)tg_numel(wrt[i]);
    return k;
}


/* Columns of d(ys)/d(wrt), JAC_K at a time: the tangents of the m nodes ys
 * along JAC_K directions are recorded once (their derivative nodes shared),
 * then each block of columns sets the directions to unit vectors and
 * replays what the recording added (the first block replays the whole tape,
 * as tg_forward()). The dense engine of the forward tg_jacobian (ys = the
 * output) and of tg_hessian (ys = the gradient nodes: forward over
 * reverse, whose replays run no backward rule). */
#define JAC_K 8

/* Sets to x the element of the direction d (one node per wrt node) that
 * column c of the matrix stands for: element c of wrt's elements in order. */
static void unit(tg_node *const *wrt, tg_node *const *d, size_t c, double x) {
    int i = 0;
    while (c >= (size_t)tg_numel(wrt[i])) c -= (size_t)tg_numel(wrt[i++]);
    void *val = tg__value_of(d[i]);
    if (tg_node_dtype(d[i]) == TG_F64)
        ((double *)val)[c] = x;
    else
        ((float *)val)[c] = (float)x;
}

static int forward_columns(tg_tape *t, int m, tg_node *const *ys, int n, tg_node *const *wrt,
                           double *out, size_t cols, const char *who) {
    int k = cols < JAC_K ? (int)cols : JAC_K;
    tg_node **v = tg__malloc(sizeof *v * (size_t)n * (size_t)k);
    tg_node **jv = tg__malloc(sizeof *jv * (size_t)m * (size_t)k);
    if (!v || !jv) {
        tg__free(v);
        tg__free(jv);
        return tg_fail(t, TG_ERR_NOMEM, "%s: out of memory", who);
    }
    size_t from = t->nnodes;
    for (int j = 0; j < k; j++)
        for (int i = 0; i < n; i++) {
            int64_t shape[TG_MAX_DIMS];
            int nd = tg_shape(wrt[i], shape);
            v[j * n + i] = tg_input(t, tg_node_dtype(wrt[i]), nd, shape, NULL);
        }
    if (!t->status && !tg__tangents(m, ys, n, wrt, k, v, jv)) {
        for (size_t c0 = 0; c0 < cols && !t->status; c0 += (size_t)k) {
            size_t end = c0 + (size_t)k < cols ? c0 + (size_t)k : cols;
            for (size_t c = c0; c < end; c++) unit(wrt, v + (c - c0) * (size_t)n, c, 1);
            tg__forward_from(t, c0 ? from : 0); /* the first block as tg_forward() */
            for (size_t c = c0; c < end; c++) {
                unit(wrt, v + (c - c0) * (size_t)n, c, 0);
                for (int o = 0, r = 0; o < m; o++)
                    for (int64_t e = 0; e < tg_numel(ys[o]); e++, r++)
                        out[(size_t)r * cols + c] = tg_value_at(jv[o * k + (int)(c - c0)], e) + 0.0;
            }
        }
    }
    tg__free(v);
    tg__free(jv);
    return t->status;
}

int tg_hessian(tg_node *out, int n, tg_node *const *wrt, double *h) {
    int rc = check_args(out, n, wrt, "hessian");
    if (rc) return rc;
    tg_tape *t = tg__tape_of(out);
    if (!h) return tg_fail(t, TG_ERR_NULL, "hessian: h is NULL");
    tg_node **g = tg__malloc(sizeof *g * (size_t)n);
    if (!g) return tg_fail(t, TG_ERR_NOMEM, "hessian: out of memory");
    tg_mark mark = tg_tape_mark(t);
    size_t cols = total_numel(n, wrt);
    if (!tg_grad_nodes(out, n, wrt, g) && !forward_columns(t, n, g, n, wrt, h, cols, "hessian")) {
        /* Where a second derivative is infinite, forward mode's zero tangent
         * elements meet it (inf * 0) in other entries: the rows are then
         * swept in reverse instead, entry by entry as before. */
        bool finite = true;
        for (size_t i = 0; i < cols * cols && finite; i++) finite = isfinite(h[i]);
        if (!finite) reverse_rows(t, n, g, n, wrt, h, cols, "hessian");
    }
    tg__free(g);
    if (!t->status) tg_tape_rewind(t, &mark); /* the numbers are in h */
    return t->status;
}

int tg_jacobian(tg_node *out, int n, tg_node *const *wrt, double *jac) {
    int rc = check_args(out, n, wrt, "jacobian");
    if (rc) return rc;
    tg_tape *t = tg__tape_of(out);
    if (!jac) return tg_fail(t, TG_ERR_NULL, "jacobian: jac is NULL");
    size_t cols = total_numel(n, wrt);
    tg_mark mark = tg_tape_mark(t);
    if (cols < (size_t)tg_numel(out))
        forward_columns(t, 1, &out, n, wrt, jac, cols, "jacobian");
    else
        reverse_rows(t, 1, &out, n, wrt, jac, cols, "jacobian");
    if (!t->status) tg_tape_rewind(t, &mark); /* the numbers are in jac */
    return t->status;
}
