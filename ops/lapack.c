/*
 * Dense linear algebra through LAPACK: cholesky, cholesky_solve,
 * triangular_solve, solve, inverse, det, slogdet, logdet. Each takes a
 * square matrix [n,n] or a stack of them [..., n,n] (and a right-hand side
 * [..., n,k] whose leading dimensions broadcast against the matrix's, as
 * matmul's do), as torch.linalg does. The gradient of an operand broadcast
 * along a stack dimension is summed over it.
 *
 * LAPACK is column-major and tapegrad row-major: a row-major buffer read by
 * LAPACK is the transpose, so the kernels pick the transposed routine or
 * triangle instead of transposing a matrix (a factorisation works on a copy,
 * which LAPACK overwrites; right-hand sides are transposed to columns, as
 * LAPACK's solvers take them column by column).
 *
 * Each op states its derivative once, as a vjp recorded with public ops
 * (a solve's adjoint is a solve with the transpose); backward, forward mode
 * and higher orders are derived from it (src/engine/derive.c). A singular or
 * indefinite matrix sets TG_ERR_SINGULAR naming the op, the matrix of the
 * stack and the pivot or leading minor; a matrix holding NaN or an infinity
 * gives NaN throughout its result (no LAPACK call sees it).
 */
#ifndef T
#include "broadcast.h"
#include "rules.h"
#include "alloc.h"

#include <math.h>

/* The node parameter (aux) bits of the solves: the matrix is used
 * transposed (recorded by the vjp rules); triangular_solve's matrix is
 * upper triangular. slogdet's sign output. */
enum { LA_TRANS = 1, LA_UPPER = 2, LA_SIGN = 1 };

/* A kernel returns 0, LAPACK's info (> 0: the matrix is refused), or this
 * for a matrix holding NaN or an infinity (its result all NaN). */
enum { LA_NONFINITE = -1 };

#ifdef TG_HAVE_LAPACK
/* LAPACK's Fortran interface, 32-bit integers (Debian's OpenBLAS and
 * reference LAPACK); the hidden lengths of character arguments are passed,
 * as gfortran's calling convention has them. */
typedef size_t lp_len;
#define LP_DECLARE(p, T_)                                                                  \
    void p##potrf_(const char *, const int *, T_ *, const int *, int *, lp_len);           \
    void p##potrs_(const char *, const int *, const int *, const T_ *, const int *, T_ *,  \
                   const int *, int *, lp_len);                                             \
    void p##trtrs_(const char *, const char *, const char *, const int *, const int *,      \
                   const T_ *, const int *, T_ *, const int *, int *, lp_len, lp_len,       \
                   lp_len);                                                                 \
    void p##getrf_(const int *, const int *, T_ *, const int *, int *, int *);             \
    void p##getrs_(const char *, const int *, const int *, const T_ *, const int *,        \
                   const int *, T_ *, const int *, int *, lp_len);
LP_DECLARE(s, float)
LP_DECLARE(d, double)
#endif

#include "dtypes.h"

/* ------------------------------------------------------------ shapes -- */

/* [..., n,n]: at least 2-D, the last two dimensions equal. */
static int square_shape(const tg_arg *a, char *why, size_t len) {
    char s[64];
    if (a->ndim < 2 || a->shape[a->ndim - 1] != a->shape[a->ndim - 2]) {
        snprintf(why, len, "%s: needs a square matrix [n,n] or a stack of them [...,n,n]",
                 tg__arg_shape_str(a, s));
        return TG_ERR_SHAPE;
    }
#ifndef TG_HAVE_LAPACK
    snprintf(why, len, "this build of tapegrad has no LAPACK (rebuild with libopenblas-dev or "
                       "liblapack-dev installed)");
    return TG_ERR_STATE;
#endif
    return TG_OK;
}

/* The output of a matrix's own shape. */
static int matrix_shape(tg_node *out, char *why, size_t len) {
    tg_args r;
    tg__args_of(out, &r);
    return square_shape(&r.in[0], why, len);
}

/* One number per matrix: the leading (stack) dimensions, 0-d for one. */
static int scalar_per_matrix_shape(tg_node *out, char *why, size_t len) {
    tg_args r;
    tg__args_of(out, &r);
    const tg_arg *a = &r.in[0];
    int rc = square_shape(a, why, len);
    if (rc) return rc;
    int64_t shape[TG_MAX_DIMS];
    for (int i = 0; i < a->ndim - 2; i++) shape[i] = a->shape[i];
    return tg_set_shape(out, a->ndim - 2, shape);
}

/* A [..., n,n] and B [..., n,k] whose leading (stack) dimensions broadcast
 * as matmul's do: X [..., n,k] over the broadcast stack. */
static int solve_shape(tg_node *out, char *why, size_t len) {
    tg_args r;
    tg__args_of(out, &r);
    const tg_arg *a = &r.in[0], *b = &r.in[1];
    int rc = square_shape(a, why, len);
    if (rc) return rc;
    char sa[64], sb[64];
    if (b->ndim < 2 || b->shape[b->ndim - 2] != a->shape[a->ndim - 1]) {
        snprintf(why, len,
                 "%s and %s: the right-hand side must be [...,n,k] (a vector b: reshape it to "
                 "[n,1])",
                 tg__arg_shape_str(a, sa), tg__arg_shape_str(b, sb));
        return TG_ERR_SHAPE;
    }
    int64_t shape[TG_MAX_DIMS];
    int nd = tg__stack_shape(a, b, shape, "and", "stack", why, len);
    if (nd < 0) return TG_ERR_SHAPE;
    shape[nd - 2] = b->shape[b->ndim - 2];
    shape[nd - 1] = b->shape[b->ndim - 1];
    return tg_set_shape(out, nd, shape);
}

/* --------------------------------------------------------- dispatch -- */

/* A stack of results: count of them (over the output's stack dimensions),
 * n, and k (right-hand side columns; 0 for the ops of one matrix). */
typedef struct stack {
    size_t count;
    int n, k;
} stack;

static stack stack_of(const tg_args *r) {
    const tg_arg *a = &r->in[0], *b = r->op->arity > 1 ? &r->in[1] : NULL;
    stack s = {1, a->shape[a->ndim - 1], b ? b->shape[b->ndim - 1] : 0};
    const tg_arg *ref = b ? &r->out : a; /* whose leading dimensions index the stack */
    for (int i = 0; i < ref->ndim - 2; i++) s.count *= (size_t)ref->shape[i];
    return s;
}

/* The matrix of x used for result i of the stack of ref's leading
 * dimensions (x's broadcast against them: a dimension of 1 repeats). */
static size_t matrix_index(const tg_arg *x, const tg_arg *ref, size_t i) {
    size_t idx = 0, stride = 1;
    int rb = ref->ndim - 2, xb = x->ndim - 2;
    for (int d = 1; d <= rb; d++) {
        size_t dim = (size_t)ref->shape[rb - d], c = i % dim;
        i /= dim;
        if (d > xb) continue;
        size_t xd = (size_t)x->shape[xb - d];
        if (xd > 1) idx += c * stride;
        stride *= xd;
    }
    return idx;
}

/* "[3,3]" for one matrix, "matrix 2 of [4,3,3]" in a stack. */
static const char *which(const tg_arg *a, size_t i, char *buf) {
    char s[64];
    tg__arg_shape_str(a, s);
    if (a->ndim == 2)
        snprintf(buf, 96, "%s", s);
    else
        snprintf(buf, 96, "matrix %zu of %s", i, s);
    return buf;
}

/* Scratch memory of a kernel, or NULL with TG_ERR_NOMEM set. */
static void *scratch(const tg_args *r, size_t bytes) {
    void *p = tg__malloc(bytes ? bytes : 1);
    if (!p) tg_fail(r->tape, TG_ERR_NOMEM, "%s: out of memory for %zu bytes of workspace",
                    r->op->name, bytes);
    return p;
}

typedef int (*kernel_fn)(int n, int k, const void *a, const void *b, void *x, int aux,
                         void *work, int *ipiv);

/* Runs a kernel over the stack; a matrix it refuses (info > 0) sets the
 * status with the message report() writes, and every result is NaN then. */
typedef void (*report_fn)(const tg_args *r, size_t i, int info);

static void run_stack(const tg_args *r, kernel_fn f32, kernel_fn f64, report_fn report) {
    const tg_arg *y = &r->out;
    stack s = stack_of(r);
    size_t out_per = y->numel / s.count;
    size_t ds = tg__arg_dsize(y), na = (size_t)s.n * (size_t)s.n, nb = (size_t)s.n * (size_t)s.k;
    size_t wbytes = (na + nb) * ds + 1;
    void *work = scratch(r, wbytes);
    int *ipiv = work ? scratch(r, (size_t)s.n * sizeof(int) + 1) : NULL;
    kernel_fn f = tg__arg_f64(y) ? f64 : f32;
    bool failed = !work || !ipiv;
    const tg_arg *in_a = &r->in[0], *in_b = s.k ? &r->in[1] : NULL;
    for (size_t i = 0; i < s.count && !failed; i++) {
        size_t ia = s.k ? matrix_index(in_a, y, i) : i;
        const char *a = (const char *)in_a->value + ia * na * ds;
        const char *b = s.k ? (const char *)in_b->value + matrix_index(in_b, y, i) * nb * ds : NULL;
        char *x = (char *)y->value + i * out_per * ds;
        int info = f(s.n, s.k, a, b, x, r->param, work, ipiv);
        if (info > 0) {
            report(r, ia, info);
            failed = true;
        }
    }
    if (failed) { /* never a half-computed value beside an error */
        for (size_t j = 0; j < y->numel; j++)
            if (tg__arg_f64(y))
                ((double *)y->value)[j] = NAN;
            else
                ((float *)y->value)[j] = NAN;
    }
    tg__free(work);
    tg__free(ipiv);
}

static void report_minor(const tg_args *r, size_t i, int info) {
    char w[96];
    tg_fail(r->tape, TG_ERR_SINGULAR,
            "%s: %s is not positive definite: its leading minor of order %d is not positive",
            r->op->name, which(&r->in[0], i, w), info);
}
static void report_pivot(const tg_args *r, size_t i, int info) {
    char w[96];
    tg_fail(r->tape, TG_ERR_SINGULAR,
            "%s: %s is singular: pivot %d of its LU factorization (partial pivoting) is 0",
            r->op->name, which(&r->in[0], i, w), info);
}
static void report_diagonal(const tg_args *r, size_t i, int info) {
    char w[96];
    tg_fail(r->tape, TG_ERR_SINGULAR, "%s: %s is singular: its diagonal element [%d,%d] is 0",
            r->op->name, which(&r->in[0], i, w), info - 1, info - 1);
}
static void report_logdet(const tg_args *r, size_t i, int info) {
    char w[96];
    if (info == INT32_MAX)
        tg_fail(r->tape, TG_ERR_SINGULAR,
                "logdet: %s has a negative determinant, whose logarithm is not real (slogdet "
                "gives its sign and log|det|)",
                which(&r->in[0], i, w));
    else
        report_pivot(r, i, info);
}

/* A matrix the forward took but the backward's solve refuses: only when
 * its value was changed in between (tg_value() of an input). */
static void report_backward(const tg_args *r, size_t i) {
    char w[96];
    tg_fail(r->tape, TG_ERR_SINGULAR,
            "%s: backward: %s is singular now (was it changed after the forward?)",
            r->op->name, which(&r->in[0], i, w));
}

#define KERNELS(name) S2(name, f32), S2(name, f64)
#define S2(name, sfx) name##_##sfx

/* The forward of op name: its kernel over the stack, and the report of a
 * matrix it refuses. */
#define STACK_FORWARD(name, report)                                                        \
    static void name##_forward(tg_args *r) { run_stack(r, KERNELS(name##1), report); }
STACK_FORWARD(cholesky, report_minor)
STACK_FORWARD(cholesky_solve, report_diagonal)
STACK_FORWARD(triangular_solve, report_diagonal)
STACK_FORWARD(solve, report_pivot)
STACK_FORWARD(inverse, report_pivot)
STACK_FORWARD(det, report_pivot)
STACK_FORWARD(slogdet, report_pivot)
STACK_FORWARD(logdet, report_logdet)

/* ------------------------------------------------------ vjp rules -- */

enum {
    L_CHOLESKY,
    L_CHOLESKY_SOLVE,
    L_TRIANGULAR_SOLVE,
    L_SOLVE,
    L_INVERSE,
    L_DET,
    L_SLOGDET,
    L_LOGDET,
    L_COUNT
};
extern const tg_op tg_lapack_ops[];

/* The transpose of each matrix of a stack. */
static tg_node *mt(tg_node *x) {
    int perm[TG_MAX_DIMS], nd = tg_ndim(x);
    for (int i = 0; i < nd; i++) perm[i] = i;
    perm[nd - 2] = nd - 1;
    perm[nd - 1] = nd - 2;
    return tg_permute(x, perm);
}

/* g (one number per matrix) as [..., 1,1], to scale each matrix. */
static tg_node *per_matrix(tg_node *g) {
    int64_t shape[TG_MAX_DIMS];
    int nd = tg_shape(g, shape);
    shape[nd] = shape[nd + 1] = 1;
    return tg_reshape(g, nd + 2, shape);
}

static tg_node *op_of(int which_op, tg_node *a, tg_node *b, int aux) {
    return tg__apply(&tg_lapack_ops[which_op], a, b, aux);
}

/* A = L L^T, L = y: with P = Phi(L^T gL) (the lower triangle, its diagonal
 * halved), gA = sym(L^-T P L^-1), by two triangular solves with L^T. The
 * forward factors the symmetric part of A, so the symmetric gradient is
 * exact for any perturbation. */
static void cholesky_vjp(tg_node *y, tg_node *g, tg_node **gin) {
    tg_node *m = tg_matmul(mt(y), g);
    tg_node *p = tg_scale(tg_add(tg_tril(m, 0), tg_tril(m, -1)), 0.5);
    tg_node *z = op_of(L_TRIANGULAR_SOLVE, y, mt(op_of(L_TRIANGULAR_SOLVE, y, p, LA_TRANS)),
                       LA_TRANS);
    gin[0] = tg_scale(tg_add(z, mt(z)), 0.5);
}

/* X = (L L^T)^-1 B: gB = (L L^T)^-1 gX; gL = -tril((gB X^T + X gB^T) L),
 * with L's lower triangle (the one read), not whatever is above it; each
 * summed over the stack dimensions its operand was broadcast along. */
static void cholesky_solve_vjp(tg_node *y, tg_node *g, tg_node **gin) {
    tg_node *l = tg__in(y, 0);
    tg_node *gb = op_of(L_CHOLESKY_SOLVE, l, g, 0);
    if (tg_requires_grad(tg__in(y, 1))) gin[1] = tg__sum_to(gb, tg__in(y, 1));
    if (tg_requires_grad(l)) {
        tg_node *m = tg_add(tg_matmul(gb, mt(y)), tg_matmul(y, mt(gb)));
        gin[0] = tg__sum_to(tg_neg(tg_tril(tg_matmul(m, tg_tril(l, 0)), 0)), l);
    }
}

/* X = op(A)^-1 B: gB = op(A)^-T gX; gA = -gB X^T (op(A) = A) or -X gB^T
 * (op(A) = A^T), kept to the triangle read for triangular_solve. */
static void solve_like_vjp(tg_node *y, tg_node *g, tg_node **gin, int which_op) {
    tg_node *a = tg__in(y, 0);
    tg_node *gb = op_of(which_op, a, g, y->aux ^ LA_TRANS);
    if (tg_requires_grad(tg__in(y, 1))) gin[1] = tg__sum_to(gb, tg__in(y, 1));
    if (!tg_requires_grad(a)) return;
    tg_node *ga = tg_neg(y->aux & LA_TRANS ? tg_matmul(y, mt(gb)) : tg_matmul(gb, mt(y)));
    if (which_op == L_TRIANGULAR_SOLVE) ga = y->aux & LA_UPPER ? tg_triu(ga, 0) : tg_tril(ga, 0);
    gin[0] = tg__sum_to(ga, a);
}
static void triangular_solve_vjp(tg_node *y, tg_node *g, tg_node **gin) {
    solve_like_vjp(y, g, gin, L_TRIANGULAR_SOLVE);
}
static void solve_vjp(tg_node *y, tg_node *g, tg_node **gin) {
    solve_like_vjp(y, g, gin, L_SOLVE);
}

/* X = A^-1: gA = -X^T gX X^T. */
static void inverse_vjp(tg_node *y, tg_node *g, tg_node **gin) {
    tg_node *xt = mt(y);
    gin[0] = tg_neg(tg_matmul(xt, tg_matmul(g, xt)));
}

/* d log|det A| = tr(A^-1 dA): gA = g A^-T; det's is det A times that. Its
 * sign output is piecewise constant: no gradient. */
static void slogdet_vjp(tg_node *y, tg_node *g, tg_node **gin) {
    if (y->aux & LA_SIGN) return;
    gin[0] = tg_mul(per_matrix(g), mt(tg_inverse(tg__in(y, 0))));
}
static void det_vjp(tg_node *y, tg_node *g, tg_node **gin) {
    gin[0] = tg_mul(per_matrix(tg_mul(g, y)), mt(tg_inverse(tg__in(y, 0))));
}

/* The fused backward of solve and triangular_solve, what their vjp rule
 * records, without the scratch tape or a second run of the forward: per
 * result, gB = op(A)^-T gX by the forward's own kernel with the transpose
 * flag flipped, added into B's gradient, and -gB X^T (-X gB^T when A is
 * used transposed; triangular_solve's kept to its triangle) into A's, each
 * into the matrix the result was solved with (so broadcast operands sum). */
static void solve_like_backward(const tg_args *r, kernel_fn k32, kernel_fn k64) {
    const tg_arg *in_a = &r->in[0], *in_b = &r->in[1], *y = &r->out;
    if (!in_a->grad && !in_b->grad) return;
    stack s = stack_of(r);
    size_t ds = tg__arg_dsize(y), na = (size_t)s.n * (size_t)s.n, nb = (size_t)s.n * (size_t)s.k;
    char *work = scratch(r, (na + 2 * nb) * ds + 1);
    int *ipiv = work ? scratch(r, (size_t)s.n * sizeof(int) + 1) : NULL;
    kernel_fn f = tg__arg_f64(y) ? k64 : k32;
    bool tri = r->op == &tg_lapack_ops[L_TRIANGULAR_SOLVE];
    int mask = !tri ? 0 : r->param & LA_UPPER ? 1 : -1;
    for (size_t i = 0; ipiv && i < s.count; i++) {
        size_t ia = matrix_index(in_a, y, i), ib = matrix_index(in_b, y, i);
        const char *a = (const char *)in_a->value + ia * na * ds;
        const char *x = (const char *)y->value + i * nb * ds;
        const char *g = (const char *)y->grad + i * nb * ds;
        char *gb = work + (na + nb) * ds;
        if (f(s.n, s.k, a, g, gb, r->param ^ LA_TRANS, work, ipiv) > 0) {
            report_backward(r, ia);
            break;
        }
        char *ga = in_a->grad ? (char *)in_a->grad + ia * na * ds : NULL;
        char *gbin = in_b->grad ? (char *)in_b->grad + ib * nb * ds : NULL;
        TG_ARG_KERNEL(y, solve_grads)(s.n, s.k, x, gb, ga, gbin, r->param & LA_TRANS, mask);
    }
    tg__free(work);
    tg__free(ipiv);
}
static void triangular_solve_backward(tg_args *r) {
    solve_like_backward(r, KERNELS(triangular_solve1));
}
static void solve_backward(tg_args *r) { solve_like_backward(r, KERNELS(solve1)); }

const tg_op tg_lapack_ops[] = {
    [L_CHOLESKY] = {"cholesky", 1, matrix_shape, cholesky_forward, NULL, cholesky_vjp, NULL},
    [L_CHOLESKY_SOLVE] = {"cholesky_solve", 2, solve_shape, cholesky_solve_forward, NULL,
                          cholesky_solve_vjp, NULL},
    [L_TRIANGULAR_SOLVE] = {"triangular_solve", 2, solve_shape, triangular_solve_forward,
                            triangular_solve_backward,
                            triangular_solve_vjp, NULL},
    [L_SOLVE] = {"solve", 2, solve_shape, solve_forward, solve_backward, solve_vjp, NULL},
    [L_INVERSE] = {"inverse", 1, matrix_shape, inverse_forward, NULL, inverse_vjp, NULL},
    [L_DET] = {"det", 1, scalar_per_matrix_shape, det_forward, NULL, det_vjp, NULL},
    [L_SLOGDET] = {"slogdet", 1, scalar_per_matrix_shape, slogdet_forward, NULL, slogdet_vjp,
                   NULL},
    [L_LOGDET] = {"logdet", 1, scalar_per_matrix_shape, logdet_forward, NULL, slogdet_vjp, NULL},
};
const int tg_lapack_count = L_COUNT;

/* ---------------------------------------------------- constructors -- */

tg_node *tg_cholesky(tg_node *a) { return op_of(L_CHOLESKY, a, NULL, 0); }
tg_node *tg_cholesky_solve(tg_node *l, tg_node *b) { return op_of(L_CHOLESKY_SOLVE, l, b, 0); }
tg_node *tg_triangular_solve(tg_node *a, tg_node *b, int upper) {
    return op_of(L_TRIANGULAR_SOLVE, a, b, upper ? LA_UPPER : 0);
}
tg_node *tg_solve(tg_node *a, tg_node *b) { return op_of(L_SOLVE, a, b, 0); }
tg_node *tg_inverse(tg_node *a) { return op_of(L_INVERSE, a, NULL, 0); }
tg_node *tg_det(tg_node *a) { return op_of(L_DET, a, NULL, 0); }
tg_node *tg_logdet(tg_node *a) { return op_of(L_LOGDET, a, NULL, 0); }
tg_node *tg_slogdet(tg_node *a, tg_node **sign) {
    tg_node *y = op_of(L_SLOGDET, a, NULL, 0);
    if (sign) *sign = op_of(L_SLOGDET, a, NULL, LA_SIGN);
    return y;
}

#else /* kernel pass, once per dtype */

#if TG_PASS_F32
#define LP(f) s##f##_
#else
#define LP(f) d##f##_
#endif

/* Whether the m values at p are all finite. */
static bool S(finite)(const T *p, size_t m) {
    for (size_t i = 0; i < m; i++)
        if (!isfinite(p[i])) return false;
    return true;
}

static void S(fill_nan)(T *p, size_t m) {
    for (size_t i = 0; i < m; i++) p[i] = (T)NAN;
}

/* Whether an [n,n] matrix a or its [n,k] right-hand side b holds a
 * non-finite value; then the [n,k] result x is all NaN. */
static bool S(nonfinite_solve)(int n, int k, const T *a, const T *b, T *x) {
    size_t nk = (size_t)n * (size_t)k;
    if (S(finite)(a, (size_t)n * (size_t)n) && S(finite)(b, nk)) return false;
    S(fill_nan)(x, nk);
    return true;
}

/* Row-major [n,k] to column-major (its transpose's row-major) and back. */
static void S(to_columns)(int n, int k, const T *src, T *dst) {
    for (int i = 0; i < n; i++)
        for (int j = 0; j < k; j++) dst[(size_t)j * n + i] = src[(size_t)i * k + j];
}
static void S(from_columns)(int n, int k, const T *src, T *dst) {
    for (int i = 0; i < n; i++)
        for (int j = 0; j < k; j++) dst[(size_t)i * k + j] = src[(size_t)j * n + i];
}

/* The LU factors of A in work (column-major, of A^T: A^T = P L U, so
 * det A = det U up to the permutation's sign). Returns getrf's info. */
static int S(lu)(int n, const T *a, T *work, int *ipiv) {
    int info = 0;
    memcpy(work, a, (size_t)n * (size_t)n * sizeof(T));
#ifdef TG_HAVE_LAPACK
    LP(getrf)(&n, &n, work, &n, ipiv, &info);
#else
    (void)ipiv;
#endif
    return info;
}

/* L of A's symmetric part (A + A^T) / 2, zero above the diagonal. Row-major
 * L is column-major U with S = U^T U: potrf of the upper triangle. */
static int S(cholesky1)(int n, int k, const void *va, const void *vb, void *vx, int aux,
                        void *work, int *ipiv) {
    (void)k, (void)vb, (void)aux, (void)work, (void)ipiv;
    const T *a = va;
    T *l = vx;
    size_t nn = (size_t)n * (size_t)n;
    if (!S(finite)(a, nn)) return S(fill_nan)(l, nn), LA_NONFINITE;
    for (int i = 0; i < n; i++)
        for (int j = 0; j <= i; j++) {
            T u = a[(size_t)i * n + j], v = a[(size_t)j * n + i];
            l[(size_t)i * n + j] = u == v ? u : (T)(0.5 * (double)u + 0.5 * (double)v);
            if (j < i) l[(size_t)j * n + i] = 0;
        }
    int info = 0;
#ifdef TG_HAVE_LAPACK
    LP(potrf)("U", &n, l, &n, &info, 1);
#endif
    for (int i = 0; i < n; i++) /* potrf leaves the rest of the triangle it did not finish */
        for (int j = i + 1; j < n; j++) l[(size_t)i * n + j] = 0;
    return info;
}

/* X = (L L^T)^-1 B, L lower (row-major) = U upper (column-major). potrs
 * does not check the diagonal: a zero there is refused here. */
static int S(cholesky_solve1)(int n, int k, const void *vl, const void *vb, void *vx, int aux,
                              void *vwork, int *ipiv) {
    (void)aux, (void)ipiv;
    const T *l = vl, *b = vb;
    T *x = vx, *w = vwork;
    if (S(nonfinite_solve)(n, k, l, b, x)) return LA_NONFINITE;
    for (int i = 0; i < n; i++)
        if (l[(size_t)i * n + i] == 0) return i + 1;
    S(to_columns)(n, k, b, w);
    int info = 0;
#ifdef TG_HAVE_LAPACK
    LP(potrs)("U", &n, &k, l, &n, w, &n, &info, 1);
#endif
    S(from_columns)(n, k, w, x);
    return info;
}

/* X = op(A)^-1 B, A triangular: row-major A is column-major A^T, so the
 * other triangle and the other transpose flag. trtrs refuses a zero on the
 * diagonal (info = its position). */
static int S(triangular_solve1)(int n, int k, const void *va, const void *vb, void *vx, int aux,
                                void *vwork, int *ipiv) {
    (void)ipiv;
    const T *a = va, *b = vb;
    T *x = vx, *w = vwork;
    if (S(nonfinite_solve)(n, k, a, b, x)) return LA_NONFINITE;
    S(to_columns)(n, k, b, w);
    int info = 0;
#ifdef TG_HAVE_LAPACK
    const char *uplo = aux & LA_UPPER ? "L" : "U", *trans = aux & LA_TRANS ? "N" : "T";
    LP(trtrs)(uplo, trans, "N", &n, &k, a, &n, w, &n, &info, 1, 1, 1);
#else
    (void)aux;
#endif
    S(from_columns)(n, k, w, x);
    return info;
}

/* X = op(A)^-1 B by LU with partial pivoting: the factors are of A^T, so
 * A X = B is getrs's transposed solve. */
static int S(solve1)(int n, int k, const void *va, const void *vb, void *vx, int aux,
                     void *vwork, int *ipiv) {
    const T *a = va, *b = vb;
    T *x = vx, *lu = vwork, *w = lu + (size_t)n * (size_t)n;
    if (S(nonfinite_solve)(n, k, a, b, x)) return LA_NONFINITE;
    int info = S(lu)(n, a, lu, ipiv);
    if (info) return info;
    S(to_columns)(n, k, b, w);
#ifdef TG_HAVE_LAPACK
    LP(getrs)(aux & LA_TRANS ? "N" : "T", &n, &k, lu, &n, ipiv, w, &n, &info, 1);
#else
    (void)aux;
#endif
    S(from_columns)(n, k, w, x);
    return info;
}

/* A^-1: solving A^T Y = I gives Y = A^-T column-major, which read
 * row-major is A^-1. */
static int S(inverse1)(int n, int k, const void *va, const void *vb, void *vx, int aux,
                       void *vwork, int *ipiv) {
    (void)k, (void)vb, (void)aux;
    const T *a = va;
    T *x = vx, *lu = vwork;
    size_t nn = (size_t)n * (size_t)n;
    if (!S(finite)(a, nn)) return S(fill_nan)(x, nn), LA_NONFINITE;
    int info = S(lu)(n, a, lu, ipiv);
    if (info) return info;
    for (size_t i = 0; i < nn; i++) x[i] = 0;
    for (int i = 0; i < n; i++) x[(size_t)i * n + i] = 1;
#ifdef TG_HAVE_LAPACK
    LP(getrs)("N", &n, &n, lu, &n, ipiv, x, &n, &info, 1);
#endif
    return info;
}

/* The sign of det A and log|det A| from the LU factors (info > 0: a zero
 * pivot, det A = 0). Accumulated in double. */
static int S(lu_det)(int n, const T *a, T *lu, int *ipiv, double *sign, double *logabs,
                     double *prod) {
    int info = S(lu)(n, a, lu, ipiv);
    double s = 1, l = 0, p = 1;
    for (int i = 0; i < n; i++) {
        double u = lu[(size_t)i * n + i];
        if (ipiv[i] != i + 1) s = -s, p = -p;
        if (u < 0) s = -s;
        l += log(fabs(u));
        p *= u;
    }
    *sign = s, *logabs = l, *prod = p;
    return info;
}

static int S(det1)(int n, int k, const void *va, const void *vb, void *vx, int aux, void *work,
                   int *ipiv) {
    (void)k, (void)vb, (void)aux;
    T *x = vx;
    if (!S(finite)(va, (size_t)n * (size_t)n)) return *x = (T)NAN, LA_NONFINITE;
    double sign, logabs, prod;
    int info = S(lu_det)(n, va, work, ipiv, &sign, &logabs, &prod);
    /* A zero pivot is det 0, a value (its gradient needs the inverse). */
    *x = (T)(info ? 0.0 : prod);
    return 0;
}

static int S(slogdet1)(int n, int k, const void *va, const void *vb, void *vx, int aux,
                       void *work, int *ipiv) {
    (void)k, (void)vb;
    T *x = vx;
    if (!S(finite)(va, (size_t)n * (size_t)n)) return *x = (T)NAN, LA_NONFINITE;
    double sign, logabs, prod;
    int info = S(lu_det)(n, va, work, ipiv, &sign, &logabs, &prod);
    *x = (T)(aux & LA_SIGN ? sign : logabs);
    return info;
}

static int S(logdet1)(int n, int k, const void *va, const void *vb, void *vx, int aux,
                      void *work, int *ipiv) {
    (void)k, (void)vb, (void)aux;
    T *x = vx;
    if (!S(finite)(va, (size_t)n * (size_t)n)) return *x = (T)NAN, LA_NONFINITE;
    double sign, logabs, prod;
    int info = S(lu_det)(n, va, work, ipiv, &sign, &logabs, &prod);
    *x = (T)logabs;
    return info ? info : sign < 0 ? INT32_MAX : 0;
}

/* B's gradient += gB, A's -= gB X^T (trans: X gB^T), kept to the lower
 * (mask -1) or upper (mask 1) triangle, or whole (0). X, gB [n,k]. */
static void S(solve_grads)(int n, int k, const void *vx, const void *vgb, void *vga, void *vgbin,
                           int trans, int mask) {
    const T *x = vx, *gb = vgb;
    T *ga = vga, *gbin = vgbin;
    size_t nk = (size_t)n * (size_t)k;
    for (size_t i = 0; gbin && i < nk; i++) gbin[i] += gb[i];
    for (int r = 0; ga && r < n; r++)
        for (int c = 0; c < n; c++) {
            if ((mask < 0 && c > r) || (mask > 0 && c < r)) continue;
            const T *p = trans ? x + (size_t)r * k : gb + (size_t)r * k;
            const T *q = trans ? gb + (size_t)c * k : x + (size_t)c * k;
            T sum = 0;
            for (int j = 0; j < k; j++) sum += p[j] * q[j];
            ga[(size_t)r * n + c] -= sum;
        }
}

#undef LP
#endif
