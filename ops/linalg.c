/*
 * Linear algebra and layout: matmul, transpose, reshape.
 *
 * matmul's backward multiplies by the transposed operands through GEMM's
 * transpose flags, never materialising a transpose: dA += dC B^T and
 * dB += A^T dC, accumulating with beta = 1.
 */
#ifndef T
#include "internal.h"

#include <string.h>
#ifdef TG_HAVE_CBLAS
#include <cblas.h>
#endif

#define cblas_gemm_f32 cblas_sgemm /* S(cblas_gemm) in the kernel pass */
#define cblas_gemm_f64 cblas_dgemm
#include "dtypes.h"

static int matmul_shape(tg_node *out, char *why, size_t len) {
    const tg_node *a = out->in[0], *b = out->in[1];
    char sa[64], sb[64];
    if (a->ndim != 2 || b->ndim != 2) {
        snprintf(why, len, "%s x %s: both operands must be 2-D", tg__shape_str(a, sa),
                 tg__shape_str(b, sb));
        return TG_ERR_SHAPE;
    }
    if (a->u.shape[1] != b->u.shape[0]) {
        snprintf(why, len, "%s x %s: inner dimensions differ", tg__shape_str(a, sa),
                 tg__shape_str(b, sb));
        return TG_ERR_SHAPE;
    }
    out->u.shape[1] = b->u.shape[1];
    return TG_OK;
}

static void matmul_forward(tg_node *n) {
    const tg_node *a = n->in[0], *b = n->in[1];
    int m = a->u.shape[0], k = a->u.shape[1], c = b->u.shape[1];
    TG_KERNEL(n, gemm)(false, false, m, c, k, a->value, b->value, 0, n->value);
}

static void matmul_backward(tg_node *n) {
    const tg_node *a = n->in[0], *b = n->in[1];
    int m = a->u.shape[0], k = a->u.shape[1], c = b->u.shape[1];
    if (a->grad) TG_KERNEL(n, gemm)(false, true, m, k, c, n->grad, b->value, 1, a->grad);
    if (b->grad) TG_KERNEL(n, gemm)(true, false, k, c, m, a->value, n->grad, 1, b->grad);
}

static int transpose_shape(tg_node *out, char *why, size_t len) {
    char s[64];
    if (out->ndim != 2) {
        snprintf(why, len, "%s: operand must be 2-D", tg__shape_str(out->in[0], s));
        return TG_ERR_SHAPE;
    }
    out->u.shape[0] = out->in[0]->u.shape[1];
    out->u.shape[1] = out->in[0]->u.shape[0];
    return TG_OK;
}

static void transpose_forward(tg_node *n) {
    TG_KERNEL(n, transpose_add)(n->u.shape[1], n->u.shape[0], n->in[0]->value, 0, n->value);
}

static void transpose_backward(tg_node *n) {
    if (n->in[0]->grad)
        TG_KERNEL(n, transpose_add)(n->u.shape[0], n->u.shape[1], n->grad, 1, n->in[0]->grad);
}

/* The requested shape arrives from tg_reshape() through tg__apply_as(). */
static int reshape_shape(tg_node *out, char *why, size_t len) {
    char sa[64], sb[64];
    if (tg__numel(out) != tg__numel(out->in[0])) {
        snprintf(why, len, "%s to %s: sizes differ", tg__shape_str(out->in[0], sa),
                 tg__shape_str(out, sb));
        return TG_ERR_SHAPE;
    }
    return TG_OK;
}

/* reshape keeps the element order. */
static void reshape_forward(tg_node *n) {
    memcpy(n->value, n->in[0]->value, tg__numel(n) * tg__dsize(n));
}

static void reshape_backward(tg_node *n) {
    if (n->in[0]->grad) TG_KERNEL(n, axpy)(tg__numel(n), n->grad, n->in[0]->grad);
}

/* vjp rules (tg_grad). */
static void matmul_vjp(tg_node *y, tg_node *g, tg_node **gin) {
    tg_node *a = tg_node_input(y, 0), *b = tg_node_input(y, 1);
    if (tg_requires_grad(a)) gin[0] = tg_matmul(g, tg_transpose(b));
    if (tg_requires_grad(b)) gin[1] = tg_matmul(tg_transpose(a), g);
}
static void transpose_vjp(tg_node *y, tg_node *g, tg_node **gin) {
    (void)y;
    gin[0] = tg_transpose(g);
}
static void reshape_vjp(tg_node *y, tg_node *g, tg_node **gin) {
    int64_t shape[TG_MAX_DIMS];
    int nd = tg_shape(tg_node_input(y, 0), shape);
    gin[0] = tg_reshape(g, nd, shape);
}

enum { L_MATMUL, L_TRANSPOSE, L_RESHAPE, L_COUNT };
const tg_op tg_linalg_ops[] = {
    [L_MATMUL] = {"matmul", 2, matmul_shape, matmul_forward, matmul_backward, matmul_vjp},
    [L_TRANSPOSE] = {"transpose", 1, transpose_shape, transpose_forward, transpose_backward,
                     transpose_vjp},
    [L_RESHAPE] = {"reshape", 1, reshape_shape, reshape_forward, reshape_backward, reshape_vjp},
};
const int tg_linalg_count = L_COUNT;

tg_node *tg_matmul(tg_node *a, tg_node *b) {
    return tg__apply(&tg_linalg_ops[L_MATMUL], a, b, 0);
}

tg_node *tg_transpose(tg_node *a) { return tg__apply(&tg_linalg_ops[L_TRANSPOSE], a, NULL, 0); }

tg_node *tg_reshape(tg_node *a, int ndim, const int64_t *shape) {
    if (!a) return NULL;
    /* Checked here: tg__apply_as() takes ndim < 0 as "no shape given", and
     * want[] below would stay unset for a NULL shape. */
    if (!a->tape->status && (ndim < 0 || ndim > TG_MAX_DIMS)) {
        char s[64];
        tg_fail(a->tape, TG_ERR_SHAPE, "reshape: %s to %d dimensions: 0 to %d are supported",
                tg__shape_str(a, s), ndim, TG_MAX_DIMS);
    } else if (!a->tape->status && ndim > 0 && !shape) {
        tg_fail(a->tape, TG_ERR_NULL, "reshape: shape is NULL");
    }
    if (a->tape->status) return &a->tape->poison;
    int64_t want[TG_MAX_DIMS];
    int64_t known = 1, numel = (int64_t)tg__numel(a);
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
