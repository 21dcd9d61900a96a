/*
 * Linear algebra and layout: matmul (2-D, and batched over up to two
 * broadcasting leading dimensions), transpose, reshape.
 *
 * matmul's backward multiplies by the transposed operands through GEMM's
 * transpose flags, never materialising a transpose: dA += dC B^T and
 * dB += A^T dC, accumulating with beta = 1.
 */
#ifndef T
#include "broadcast.h"
#include "rules.h"

#include <string.h>
#ifdef TG_HAVE_CBLAS
#include <cblas.h>
#endif

#define cblas_gemm_f32 cblas_sgemm /* S(cblas_gemm) in the kernel pass */
#define cblas_gemm_f64 cblas_dgemm
#include "dtypes.h"

/*
 * matmul of 2-D operands is one GEMM. A 3-D or 4-D operand is a stack of
 * matrices over its leading (batch) dimensions, which broadcast as NumPy's
 * `@` does: [2,1,m,k] x [3,k,n] -> [2,3,m,n]. The batched path calls the
 * same 2-D kernel once per output matrix; the backward rule accumulates
 * (beta = 1) into the operand matrix each output matrix came from, which
 * sums over the batch dimensions an operand was broadcast along.
 */
typedef struct batches {
    int m, k, n;       /* each product is [m,k] x [k,n] */
    size_t d[2];       /* output batch dimensions, padded on the left with 1 */
    size_t sa[2], sb[2]; /* operand matrix strides along them, 0 where broadcast */
} batches;

/* aux of a 2-D matmul: which stored operands are used transposed. Only the
 * vjp rules record such nodes (so that a gradient never copies a transpose);
 * the public constructor always records aux 0. */
enum { MM_TA = 1, MM_TB = 2 };

static int matmul_shape(tg_node *out, char *why, size_t len) {
    tg_args r;
    tg__args_of(out, &r);
    const tg_arg *a = &r.in[0], *b = &r.in[1];
    char sa[64], sb[64];
    if (out->aux) { /* 2-D, from a vjp rule: op(A) [m,k] x op(B) [k,n] */
        bool ta = out->aux & MM_TA, tb = out->aux & MM_TB;
        if (a->ndim != 2 || b->ndim != 2 || a->shape[!ta] != b->shape[tb]) {
            snprintf(why, len, "%s%s x %s%s: inner dimensions differ", tg__arg_shape_str(a, sa),
                     ta ? "^T" : "", tg__arg_shape_str(b, sb), tb ? "^T" : "");
            return TG_ERR_SHAPE;
        }
        out->u.shape[0] = a->shape[ta];
        out->u.shape[1] = b->shape[!tb];
        return TG_OK;
    }
    if (a->ndim < 2 || b->ndim < 2) {
        snprintf(why, len,
                 "%s x %s: both operands must be 2-D, 3-D or 4-D (1-D is not supported)",
                 tg__arg_shape_str(a, sa), tg__arg_shape_str(b, sb));
        return TG_ERR_SHAPE;
    }
    if (a->shape[a->ndim - 1] != b->shape[b->ndim - 2]) {
        snprintf(why, len, "%s x %s: inner dimensions differ", tg__arg_shape_str(a, sa),
                 tg__arg_shape_str(b, sb));
        return TG_ERR_SHAPE;
    }
    if (a->ndim == 2 && b->ndim == 2) { /* the output already has a's shape */
        out->u.shape[1] = b->shape[1];
        return TG_OK;
    }
    int64_t shape[TG_MAX_DIMS];
    int nd = tg__stack_shape(a, b, shape, "x", "batch", why, len);
    if (nd < 0) return TG_ERR_SHAPE;
    shape[nd - 2] = a->shape[a->ndim - 2];
    shape[nd - 1] = b->shape[b->ndim - 1];
    if (tg_set_shape(out, nd, shape) != TG_OK) {
        snprintf(why, len, "%s x %s: too many elements", tg__arg_shape_str(a, sa),
                 tg__arg_shape_str(b, sb));
        return TG_ERR_SHAPE;
    }
    return TG_OK;
}

/* An operand's matrix strides along the output's two batch dimensions. */
static void batch_strides(const tg_arg *x, size_t s[2]) {
    size_t step = (size_t)x->shape[x->ndim - 2] * (size_t)x->shape[x->ndim - 1];
    for (int i = 1; i >= 0; i--) {
        int k = x->ndim - 4 + i;
        size_t d = k >= 0 ? (size_t)x->shape[k] : 1;
        s[i] = d == 1 ? 0 : step;
        step *= d;
    }
}

static batches make_batches(const tg_args *r) {
    const tg_arg *a = &r->in[0], *b = &r->in[1], *y = &r->out;
    batches bt = {a->shape[a->ndim - 2], a->shape[a->ndim - 1], b->shape[b->ndim - 1],
                  {1, 1}, {0, 0}, {0, 0}};
    for (int i = 0; i < 2; i++) {
        int k = y->ndim - 4 + i;
        bt.d[i] = k >= 0 ? (size_t)y->shape[k] : 1;
    }
    batch_strides(a, bt.sa);
    batch_strides(b, bt.sb);
    /* One shared right operand and a left one not broadcast ([B,m,k] x
     * [k,n], a layer applied to a batch of sequences): the stack of left
     * matrices is one [B*m,k] matrix, so one GEMM does all. */
    size_t nb = bt.d[0] * bt.d[1];
    if (!bt.sb[0] && !bt.sb[1] && a->numel == nb * (size_t)bt.m * (size_t)bt.k &&
        nb * (size_t)bt.m <= INT32_MAX) {
        bt.m *= (int)nb;
        bt.d[0] = bt.d[1] = 1;
    }
    return bt;
}

static void matmul_forward(tg_args *r) {
    const tg_arg *a = &r->in[0], *b = &r->in[1], *y = &r->out;
    if (y->ndim == 2) {
        bool ta = r->param & MM_TA, tb = r->param & MM_TB;
        int m = y->shape[0], k = a->shape[!ta], c = y->shape[1];
        TG_ARG_KERNEL(y, gemm)(ta, tb, m, c, k, a->value, b->value, 0, y->value);
        return;
    }
    batches bt = make_batches(r);
    size_t o = 0, sy = (size_t)bt.m * (size_t)bt.n, ds = tg__arg_dsize(y);
    for (size_t i = 0; i < bt.d[0]; i++)
        for (size_t j = 0; j < bt.d[1]; j++, o += sy) {
            size_t ia = i * bt.sa[0] + j * bt.sa[1], ib = i * bt.sb[0] + j * bt.sb[1];
            TG_ARG_KERNEL(y, gemm)(false, false, bt.m, bt.n, bt.k, (char *)a->value + ia * ds,
                                   (char *)b->value + ib * ds, 0, (char *)y->value + o * ds);
        }
}

static void matmul_backward(tg_args *r) {
    const tg_arg *a = &r->in[0], *b = &r->in[1], *y = &r->out;
    if (y->ndim == 2) { /* C = op(A) op(B): dop(A) = dC op(B)^T, dop(B) = op(A)^T dC */
        bool ta = r->param & MM_TA, tb = r->param & MM_TB;
        int m = y->shape[0], k = a->shape[!ta], c = y->shape[1];
        if (a->grad && !ta)
            TG_ARG_KERNEL(y, gemm)(false, !tb, m, k, c, y->grad, b->value, 1, a->grad);
        if (a->grad && ta) TG_ARG_KERNEL(y, gemm)(tb, true, k, m, c, b->value, y->grad, 1, a->grad);
        if (b->grad && !tb)
            TG_ARG_KERNEL(y, gemm)(!ta, false, k, c, m, a->value, y->grad, 1, b->grad);
        if (b->grad && tb) TG_ARG_KERNEL(y, gemm)(true, ta, c, k, m, y->grad, a->value, 1, b->grad);
        return;
    }
    batches bt = make_batches(r);
    size_t o = 0, sy = (size_t)bt.m * (size_t)bt.n, ds = tg__arg_dsize(y);
    for (size_t i = 0; i < bt.d[0]; i++)
        for (size_t j = 0; j < bt.d[1]; j++, o += sy) {
            size_t ia = (i * bt.sa[0] + j * bt.sa[1]) * ds, ib = (i * bt.sb[0] + j * bt.sb[1]) * ds;
            char *g = (char *)y->grad + o * ds;
            if (a->grad)
                TG_ARG_KERNEL(y, gemm)(false, true, bt.m, bt.k, bt.n, g, (char *)b->value + ib, 1,
                                       (char *)a->grad + ia);
            if (b->grad)
                TG_ARG_KERNEL(y, gemm)(true, false, bt.k, bt.n, bt.m, (char *)a->value + ia, g, 1,
                                       (char *)b->grad + ib);
        }
}

static int transpose_shape(tg_node *out, char *why, size_t len) {
    tg_args r;
    tg__args_of(out, &r);
    const tg_arg *x = &r.in[0];
    char s[64];
    if (x->ndim != 2) {
        snprintf(why, len, "%s: operand must be 2-D", tg__arg_shape_str(x, s));
        return TG_ERR_SHAPE;
    }
    out->u.shape[0] = x->shape[1];
    out->u.shape[1] = x->shape[0];
    return TG_OK;
}

static void transpose_forward(tg_args *r) {
    const tg_arg *y = &r->out;
    TG_ARG_KERNEL(y, transpose_add)(y->shape[1], y->shape[0], r->in[0].value, 0, y->value);
}

static void transpose_backward(tg_args *r) {
    const tg_arg *y = &r->out;
    if (r->in[0].grad)
        TG_ARG_KERNEL(y, transpose_add)(y->shape[0], y->shape[1], y->grad, 1, r->in[0].grad);
}

/* The requested shape arrives from tg_reshape() through tg__apply_as().
 * reshape keeps the element order, so its output is a view of its input's
 * memory: nothing is copied, at recording or replay. */
static int reshape_shape(tg_node *out, char *why, size_t len) {
    tg_args r;
    tg__args_of(out, &r);
    const tg_arg *x = &r.in[0];
    char sa[64], sb[64];
    if (tg__numel(out) != x->numel) {
        snprintf(why, len, "%s to %s: sizes differ", tg__arg_shape_str(x, sa),
                 tg__shape_str(out, sb));
        return TG_ERR_SHAPE;
    }
    out->value = x->value;
    return TG_OK;
}

static void reshape_forward(tg_args *r) { (void)r; }

static void reshape_backward(tg_args *r) {
    if (r->in[0].grad) TG_ARG_KERNEL(&r->out, axpy)(r->out.numel, r->out.grad, r->in[0].grad);
}

/* vjp rules (tg_grad). */
enum { L_MATMUL, L_TRANSPOSE, L_RESHAPE, L_COUNT };
extern const tg_op tg_linalg_ops[];
/* The transpose of the last two dimensions (of each matrix of a stack). */
static tg_node *mat_t(tg_node *x) {
    static const int swap[3][4] = {{1, 0}, {0, 2, 1}, {0, 1, 3, 2}};
    int nd = tg_ndim(x);
    return nd == 2 ? tg_transpose(x) : tg_permute(x, swap[nd - 2]);
}
static tg_node *matmul_t(tg_node *a, tg_node *b, bool ta, bool tb) {
    return tg__apply(&tg_linalg_ops[L_MATMUL], a, b, (ta ? MM_TA : 0) | (tb ? MM_TB : 0));
}
/* 2-D: the backward kernel's products, through the transpose flags (no
 * transpose is copied). Batched: summed to each operand's shape over its
 * broadcast batch dimensions. */
static void matmul_vjp(tg_node *y, tg_node *g, tg_node **gin) {
    tg_node *a = tg__in(y, 0), *b = tg__in(y, 1);
    bool ta = y->aux & MM_TA, tb = y->aux & MM_TB;
    if (y->ndim == 2) {
        if (tg_requires_grad(a)) gin[0] = ta ? matmul_t(b, g, tb, true) : matmul_t(g, b, false, !tb);
        if (tg_requires_grad(b)) gin[1] = tb ? matmul_t(g, a, true, ta) : matmul_t(a, g, !ta, false);
        return;
    }
    if (tg_requires_grad(a)) gin[0] = tg__sum_to(tg_matmul(g, mat_t(b)), a);
    if (tg_requires_grad(b)) gin[1] = tg__sum_to(tg_matmul(mat_t(a), g), b);
}
/* Bilinear: ta b + a tb, with the node's transpose flags. */
static tg_node *matmul_jvp(tg_node *y, tg_node *const *tin) {
    tg_node *a = tg__in(y, 0), *b = tg__in(y, 1);
    const tg_op *mm = &tg_linalg_ops[L_MATMUL];
    tg_node *ta = tin[0] ? tg__apply(mm, tin[0], b, y->aux) : NULL;
    tg_node *tb = tin[1] ? tg__apply(mm, a, tin[1], y->aux) : NULL;
    return ta && tb ? tg_add(ta, tb) : ta ? ta : tb;
}
static void transpose_vjp(tg_node *y, tg_node *g, tg_node **gin) {
    (void)y;
    gin[0] = tg_transpose(g);
}
static void reshape_vjp(tg_node *y, tg_node *g, tg_node **gin) {
    int64_t shape[TG_MAX_DIMS];
    int nd = tg_shape(tg__in(y, 0), shape);
    gin[0] = tg_reshape(g, nd, shape);
}

const tg_op tg_linalg_ops[] = {
    [L_MATMUL] = {"matmul", 2, matmul_shape, matmul_forward, matmul_backward, matmul_vjp,
                  matmul_jvp},
    [L_TRANSPOSE] = {"transpose", 1, transpose_shape, transpose_forward, transpose_backward,
                     transpose_vjp, tg__linear_jvp},
    [L_RESHAPE] = {"reshape", 1, reshape_shape, reshape_forward, reshape_backward, reshape_vjp,
                   tg__linear_shaped_jvp},
};
const int tg_linalg_count = L_COUNT;

tg_node *tg_matmul(tg_node *a, tg_node *b) {
    return tg__apply(&tg_linalg_ops[L_MATMUL], a, b, 0);
}

tg_node *tg_transpose(tg_node *a) { return tg__apply(&tg_linalg_ops[L_TRANSPOSE], a, NULL, 0); }

tg_node *tg_reshape(tg_node *a, int ndim, const int64_t *shape) {
    if (!a) return NULL;
    tg_tape *t = tg__tape_of(a);
    /* Checked here: tg__apply_as() takes ndim < 0 as "no shape given", and
     * want[] below would stay unset for a NULL shape. */
    if (!t->status && (ndim < 0 || ndim > TG_MAX_DIMS)) {
        char s[64];
        tg_fail(t, TG_ERR_SHAPE, "reshape: %s to %d dimensions: 0 to %d are supported",
                tg__shape_str(a, s), ndim, TG_MAX_DIMS);
    } else if (!t->status && ndim > 0 && !shape) {
        tg_fail(t, TG_ERR_NULL, "reshape: shape is NULL");
    }
    if (t->status) return &t->poison;
    int64_t want[TG_MAX_DIMS];
    int64_t known = 1, numel = tg_numel(a);
    int infer = -1;
    for (int i = 0; ndim > 0 && ndim <= TG_MAX_DIMS && shape && i < ndim; i++) {
        want[i] = shape[i];
        if (shape[i] == -1 && infer < 0)
            infer = i;
        else if (shape[i] >= 1 && shape[i] <= TG_MAX_NUMEL)
            known = shape[i] <= TG_MAX_NUMEL / known ? known * shape[i] : TG_MAX_NUMEL + 1;
    }
    if (infer >= 0) want[infer] = known <= numel && numel % known == 0 ? numel / known : 0;
    return tg__apply_as(&tg_linalg_ops[L_RESHAPE], a, NULL, 0, ndim, ndim ? want : NULL);
}

#else /* kernel pass, once per dtype */

/* C = op(A) op(B) + beta C, row-major, op(A) [m,k], op(B) [k,n]. */
static void S(gemm)(bool ta, bool tb, int m, int n, int k, const void *va, const void *vb,
                    double beta, void *vc) {
#ifdef TG_HAVE_CBLAS
    S(cblas_gemm)(CblasRowMajor, ta ? CblasTrans : CblasNoTrans, tb ? CblasTrans : CblasNoTrans,
               m, n, k, 1, va, ta ? m : k, vb, tb ? k : n, beta, vc, n);
#else
    const T *A = va, *B = vb;
    T *C = vc;
    for (int i = 0; i < m; i++) {
        T *c = C + (size_t)i * n;
        for (int j = 0; j < n; j++) c[j] = beta ? beta * c[j] : 0;
        for (int p = 0; p < k; p++) {
            T a = ta ? A[(size_t)p * m + i] : A[(size_t)i * k + p];
            if (tb)
                for (int j = 0; j < n; j++) c[j] += a * B[(size_t)j * k + p];
            else
                for (int j = 0; j < n; j++) c[j] += a * B[(size_t)p * n + j];
        }
    }
#endif
}

/* dst[j,i] = src[i,j] (+ dst[j,i] when accumulate), src [rows,cols]. */
static void S(transpose_add)(int rows, int cols, const void *vs, int accumulate, void *vd) {
    const T *s = vs;
    T *d = vd;
    for (int i = 0; i < rows; i++)
        for (int j = 0; j < cols; j++) {
            T v = s[(size_t)i * cols + j];
            d[(size_t)j * rows + i] = accumulate ? d[(size_t)j * rows + i] + v : v;
        }
}

/* y += x */
static void S(axpy)(size_t n, const void *vx, void *vy) {
    const T *x = vx;
    T *y = vy;
    for (size_t i = 0; i < n; i++) y[i] += x[i];
}

#endif
