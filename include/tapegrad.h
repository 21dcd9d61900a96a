/*
 * tapegrad: reverse-mode automatic differentiation in C.
 *
 * A program records an expression such as f = (x + y) * z as a *tape* of
 * nodes. Each node holds its forward value and its op; tg_backward() walks
 * the tape once, from the output back to the leaves, and accumulates
 * d(output)/d(node) into every node that wants a gradient.
 *
 *     tg_tape *t = tg_tape_new();
 *     tg_node *x = tg_scalar(t, -2), *y = tg_scalar(t, 5), *z = tg_scalar(t, -4);
 *     tg_node *f = tg_mul(tg_add(x, y), z);          f = -12
 *     tg_backward(f);                                 df/dx = -4, df/dz = 3
 *     if (tg_status(t)) fprintf(stderr, "%s\n", tg_status_message(t));
 *     tg_tape_free(t);
 *
 * Conventions, for every function below unless it says otherwise:
 * - Nodes belong to their tape: they are freed by tg_tape_reset() and
 *   tg_tape_free(); never free a node yourself, never use one after a reset.
 *   A node recorded before the last reset is refused (TG_ERR_STATE naming
 *   the call) by every op, tg_backward(), tg_value() and tg_grad() while its
 *   position is past the tape's end. What cannot be detected: once as many
 *   nodes have been recorded again, its slot holds a new node, and the old
 *   pointer silently names that node. Keep node pointers only within one
 *   recording; hold values that must outlive it in your own memory
 *   (tg_view()). Using a node of a freed tape is undefined.
 * - Errors are values. An op given bad input (NULL, mismatched shapes or
 *   dtypes, nodes of two tapes, out of memory) records a sticky status on the
 *   tape and returns the tape's *poison* node; every later op on that tape
 *   returns the poison node at once, so expressions stay composable and the
 *   caller checks tg_status() once. The first error wins. Nothing aborts.
 * - Tensors are row-major and contiguous, with 0 to TG_MAX_DIMS dimensions;
 *   a scalar is a 0-d tensor. Values are float (TG_F32) or double (TG_F64),
 *   chosen per tensor; the operands of an op must share the dtype.
 * - A tape is not thread-safe; distinct tapes may be used from distinct
 *   threads at once.
 */
#ifndef TAPEGRAD_H
#define TAPEGRAD_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(TG_STATIC_DEFINE)
#define TG_API
#elif defined(__GNUC__)
#define TG_API __attribute__((visibility("default")))
#else
#define TG_API
#endif

#define TAPEGRAD_VERSION_MAJOR 0
#define TAPEGRAD_VERSION_MINOR 1
#define TAPEGRAD_VERSION_PATCH 0

/* ---------------------------------------------------------------- types -- */

typedef struct tg_tape tg_tape; /* a recording: nodes, their memory, a status */
typedef struct tg_node tg_node; /* one value on a tape (opaque) */

typedef enum tg_dtype { TG_F32 = 0, TG_F64 = 1 } tg_dtype;

#define TG_MAX_DIMS 4
/* Largest number of elements of one tensor (and so of one dimension):
 * 2^31 - 1, what a shape's 32-bit sizes hold; larger shapes are refused. */
#define TG_MAX_NUMEL ((int64_t)INT32_MAX)

/* Status codes: 0 is success, every error is positive. */
enum tg_status_code {
    TG_OK = 0,
    TG_ERR_NULL,       /* a required pointer argument was NULL */
    TG_ERR_SHAPE,      /* shapes do not fit the op */
    TG_ERR_DTYPE,      /* operands of different dtypes, or an unknown dtype */
    TG_ERR_TAPE,       /* operands recorded on different tapes */
    TG_ERR_NOMEM,      /* an allocation failed */
    TG_ERR_IO,         /* a file could not be read or written */
    TG_ERR_FORMAT,     /* a file's contents are malformed or inconsistent */
    TG_ERR_UNKNOWN_OP, /* no op of that name is registered */
    TG_ERR_STATE,      /* a call that is not valid now (e.g. backward without seed) */
    TG_ERR_ARG,        /* an argument out of its documented range */
    TG_ERR_NUMERIC,    /* a NaN or Inf appeared while numerics checking is on */
    TG_ERR_BRANCH,     /* a function object's branch decisions differ from its
                          recording (tapegrad/fn.h) */
    TG_ERR_SINGULAR    /* a matrix is singular or not positive definite (linear algebra) */
};

/* A short constant name for a status code, e.g. "TG_ERR_SHAPE". */
TG_API const char *tg_status_name(int code);

/* ----------------------------------------------------------------- tape -- */

/* A new, empty tape. Returns NULL only when memory is exhausted. It starts
 * small and grows as it records: the new tape holds about 1.5 KB; its first
 * float64 scalar adds one chunk of 1,024 compact records (17 KB), and later
 * chunks grow with the tape up to 65,536 records (past 4,096 records, at
 * most a fifth of their room is unused); a sweep adds 8 bytes of gradient
 * per record of the chunks it reaches, and ops that store partial
 * derivatives 8 KB chunks of them; tensors add chunks of 256 64-byte nodes
 * (16 KB) and value blocks that double from 16 KB to 1 MB (a larger value
 * gets a block of its own size); the tables of chunks double. One scalar
 * is about 19 KB (tg_tape_bytes), sin(x*x) with its sweep about 35 KB, so
 * thousands of small tapes (one per thread, sample or test) stay cheap,
 * while a long scalar tape costs about its 17-byte records. */
TG_API tg_tape *tg_tape_new(void);

/* Frees the tape, all its nodes and their memory. NULL is a no-op. */
TG_API void tg_tape_free(tg_tape *t);

/* Forgets every node and clears the status, keeping the memory for reuse,
 * so a define-by-run loop (build, backward, reset) stops allocating after its
 * first iteration. External buffers given to tg_view() are untouched. */
TG_API void tg_tape_reset(tg_tape *t);

/* A point of the tape to come back to. tg_tape_mark() takes it;
 * tg_tape_rewind() forgets every node recorded after it, keeping their
 * memory for reuse, as tg_tape_reset() does for the whole tape: a loop that
 * records work on a fixed function (a derivative per iteration of a
 * solver) and rewinds stops growing the tape. The fields are the library's. */
typedef struct tg_mark {
    size_t nodes, full, parts, used;
    const void *block;
    uint64_t epoch;
} tg_mark;
TG_API tg_mark tg_tape_mark(const tg_tape *t);

/* Forgets the nodes recorded after *m (their handles become stale, as after
 * a reset); the nodes before it, their values, their leaves' gradients and
 * the status are kept (an interior node that a sweep after the mark gave
 * gradient memory reads as having none until its next sweep). *m stays
 * valid for the next rewind; a mark taken after it is no longer valid, nor
 * is any mark after tg_tape_reset(). Returns TG_OK, TG_ERR_NULL, TG_ERR_ARG
 * for a mark that is not valid, or TG_ERR_NOMEM (keeping a leaf's
 * gradient), recorded on the tape's status. */
TG_API int tg_tape_rewind(tg_tape *t, tg_mark *m);

/* The sticky status: TG_OK, or the code of the first error since the tape was
 * created or reset. A NULL tape reports TG_ERR_NULL. */
TG_API int tg_status(const tg_tape *t);

/* The message of the first error, naming the op and the shapes, e.g.
 * "matmul: [2,3] x [4,5]: inner dimensions differ"; "" when the status is
 * TG_OK. The string lives as long as the tape's status. */
TG_API const char *tg_status_message(const tg_tape *t);

/* Records an error on the tape as an op would (first error wins), for code
 * built on top of tapegrad. fmt is printf-style. Returns code. */
TG_API int tg_fail(tg_tape *t, int code, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 3, 4)))
#endif
    ;

/* Number of nodes recorded so far; node i is tg_tape_node(t, i). */
TG_API size_t tg_tape_size(const tg_tape *t);
TG_API tg_node *tg_tape_node(const tg_tape *t, size_t i);

/* Bytes of heap memory the tape holds (nodes, values, gradients). */
TG_API size_t tg_tape_bytes(const tg_tape *t);

/* When on, the first op whose value, or whose backward rule's gradients,
 * contain a NaN or an Inf sets TG_ERR_NUMERIC naming the op and the node.
 * Off by default (it costs one pass over every result). */
TG_API void tg_set_check_numerics(tg_tape *t, int on);

/* The compact scalar tape. When on (the default), the float64 0-d leaves
 * (tg_scalar(), tg_const(), and tg_tensor()/tg_input() with ndim 0), and the
 * results of the elementwise ops (unary, binary, comparisons) on such nodes,
 * are stored as compact records of 17 bytes (op byte, two 32-bit input
 * positions, the value) plus the local partial derivatives the op needs,
 * computed while recording; their gradients live in arrays given at the
 * first sweep. Every call that takes a tg_node * accepts them, with bit for
 * bit the values and gradients that 64-byte nodes give, and their tg_value()
 * and tg_grad() pointers stay valid until tg_tape_reset(). Off: every node is
 * a 64-byte node (for comparison). Applies to the nodes recorded after the
 * call; while check_numerics is on, nodes are 64-byte nodes, which carry the
 * checks. docs/performance.md describes the layout. */
TG_API void tg_set_scalar_tape(tg_tape *t, int on);

/* --------------------------------------------------------------- leaves -- */

/* A float64 scalar leaf that wants a gradient (a variable). */
TG_API tg_node *tg_scalar(tg_tape *t, double value);

/* A float64 scalar leaf without a gradient (a constant). */
TG_API tg_node *tg_const(tg_tape *t, double value);

/* A scalar constant of the given dtype, for mixing with float32 tensors. */
TG_API tg_node *tg_const_as(tg_tape *t, tg_dtype dtype, double value);

/* A tensor leaf that wants a gradient. shape has ndim entries (ndim 0..4,
 * each dimension >= 1). data holds numel values of the dtype and is copied;
 * NULL gives zeros. */
TG_API tg_node *tg_tensor(tg_tape *t, tg_dtype dtype, int ndim, const int64_t *shape,
                          const void *data);

/* A tensor leaf without a gradient (an input or target). For replay, write
 * new data through tg_value() before each tg_forward(). */
TG_API tg_node *tg_input(tg_tape *t, tg_dtype dtype, int ndim, const int64_t *shape,
                         const void *data);

/* A leaf over caller-owned memory, which must hold numel values of the dtype
 * and outlive the node. When grad is non-NULL the leaf wants a gradient and
 * tg_backward() *adds* into grad (parameters kept outside the tape do this);
 * when NULL it is an input. Nothing is copied. */
TG_API tg_node *tg_view(tg_tape *t, tg_dtype dtype, int ndim, const int64_t *shape,
                        void *value, void *grad);

/* ------------------------------------------------------------------ ops -- */
/* Every op returns a new node on its inputs' tape, or the poison node. */

/* Elementwise binary ops. Shapes broadcast by NumPy's rules: aligned from the
 * right, each pair of dimensions equal or one of them 1. */
TG_API tg_node *tg_add(tg_node *a, tg_node *b);
TG_API tg_node *tg_sub(tg_node *a, tg_node *b);
TG_API tg_node *tg_mul(tg_node *a, tg_node *b);
TG_API tg_node *tg_div(tg_node *a, tg_node *b);

/* Elementwise unary ops. log(0) = -inf; log(x < 0) = NaN; sigmoid is
 * evaluated without overflow for any |x|; d|x|/dx and drelu/dx are 0 at 0. */
TG_API tg_node *tg_neg(tg_node *x);
TG_API tg_node *tg_exp(tg_node *x);
TG_API tg_node *tg_log(tg_node *x);
TG_API tg_node *tg_sqrt(tg_node *x);
TG_API tg_node *tg_abs(tg_node *x);
TG_API tg_node *tg_sin(tg_node *x);
TG_API tg_node *tg_cos(tg_node *x);
TG_API tg_node *tg_tanh(tg_node *x);
TG_API tg_node *tg_sigmoid(tg_node *x);
TG_API tg_node *tg_relu(tg_node *x);

/* Powers, two ways: the op "pow" of the registry, recorded either way.
 *   tg_pow(x, p)             x^p with a constant exponent p (a double): a
 *                            constant leaf of x's dtype holds p, so only x
 *                            gets a gradient, d/dx = p x^(p-1) (0 when p is 0).
 *   tg_pow_var(x, y)         x^y with a variable exponent y, a node of x's
 *                            dtype that broadcasts with x (NumPy's rules) and
 *                            gets a gradient too: d/dy = x^y log x, which is
 *                            NaN for x < 0 and 0 at x = 0 (y > 0); d/dx as
 *                            above. It is formed only when y wants a gradient.
 *                            The same op as tg_call("pow", x, y).
 * The values are C's pow: a negative x to a non-integer power is NaN. The
 * command line's x^y is the second form. Errors as for tg_add (a NULL, a
 * foreign node, dtypes or shapes that do not match set x's tape's status). */
TG_API tg_node *tg_pow(tg_node *x, double p);
TG_API tg_node *tg_pow_var(tg_node *x, tg_node *y);

/* x times a constant s, elementwise. */
TG_API tg_node *tg_scale(tg_node *x, double s);

/* Matrix product of 2-D tensors: [m,k] x [k,n] -> [m,n]. */
TG_API tg_node *tg_matmul(tg_node *a, tg_node *b);

/* --- dense linear algebra through LAPACK (ops/lapack.c) --- */
/*
 * Each takes a square matrix A [n,n] or a stack of them [...,n,n] (up to
 * 4-D; the leading dimensions index the matrices), and the solves a
 * right-hand side B [...,n,k] (a vector: reshape it to [n,1]) whose leading
 * dimensions broadcast against A's as tg_matmul()'s do ([n,n] with [b,n,k]
 * solves b systems with one matrix; the gradient of an operand broadcast
 * along a dimension is summed over it); both dtypes, float32 through LAPACK's single
 * precision. Values and conventions are torch.linalg's. Each op's
 * derivative is stated once (docs/ops.md gives the identities), so
 * tg_backward(), tg_grad() to any order and tg_jvp() all follow from it.
 * Errors: TG_ERR_SHAPE for a matrix that is not square or a right-hand side
 * that does not fit (naming both shapes and the dimension); TG_ERR_SINGULAR for a singular or
 * indefinite matrix, naming the op, the matrix of the stack ("matrix 2 of
 * [4,3,3]") and the zero pivot or the leading minor, with every element of
 * the result NaN (the status, not the value, is the answer); it is also set
 * during tg_forward() replay and, for a rule that needs an inverse (det's),
 * during tg_backward(). Only an exactly zero pivot is singular, as in LAPACK
 * and PyTorch: a nearly singular matrix gives large finite values. A matrix
 * holding NaN or an infinity gives NaN throughout its result, with no error.
 * TG_ERR_STATE when tapegrad was built without LAPACK.
 */

/* L, lower triangular with positive diagonal, with L L^T = (A + A^T) / 2:
 * for a symmetric A (the case torch.linalg.cholesky defines) A = L L^T.
 * The gradient is symmetric. Not positive definite: TG_ERR_SINGULAR naming
 * the leading minor (LAPACK's potrf). */
TG_API tg_node *tg_cholesky(tg_node *a);

/* X = (L L^T)^-1 B, for L lower triangular (as tg_cholesky() gives; only
 * its lower triangle is read, and only that triangle gets a gradient).
 * torch.cholesky_solve(B, L), the arguments in this library's order
 * (matrix first). A zero on L's diagonal: TG_ERR_SINGULAR naming it. */
TG_API tg_node *tg_cholesky_solve(tg_node *l, tg_node *b);

/* X = A^-1 B for A lower triangular (upper = 0) or upper (upper != 0): only
 * that triangle is read, and only it gets a gradient, as
 * torch.linalg.solve_triangular(A, B, upper=upper). Called by name, A is
 * lower. A zero on the diagonal: TG_ERR_SINGULAR naming it. */
TG_API tg_node *tg_triangular_solve(tg_node *a, tg_node *b, int upper);

/* X = A^-1 B by LU with partial pivoting (LAPACK's getrf/getrs), as
 * torch.linalg.solve. A zero pivot: TG_ERR_SINGULAR naming it. */
TG_API tg_node *tg_solve(tg_node *a, tg_node *b);

/* A^-1, as torch.linalg.inv (prefer tg_solve() to multiplying by it). A
 * zero pivot: TG_ERR_SINGULAR. */
TG_API tg_node *tg_inverse(tg_node *a);

/* det A, one value per matrix (0-d for one matrix), from the LU factors; a
 * singular A has det 0, a value, but its gradient (det A A^-T) is then
 * refused by tg_backward() and tg_grad() with TG_ERR_SINGULAR (PyTorch
 * gives the adjugate there). It overflows to +-inf as the product of the
 * pivots does; tg_slogdet() does not. */
TG_API tg_node *tg_det(tg_node *a);

/* log|det A| per matrix, as torch.linalg.slogdet's logabsdet; when sign is
 * non-NULL, *sign is set to a node of the same shape holding the sign of
 * det A (+-1), a second "slogdet" node whose derivative is 0 (nothing flows
 * through it to A). Gradient of log|det A|: A^-T. A singular A (PyTorch:
 * -inf) is TG_ERR_SINGULAR naming the zero pivot (on the tape of a, as
 * every error). */
TG_API tg_node *tg_slogdet(tg_node *a, tg_node **sign);

/* log det A per matrix, as torch.logdet for det A > 0 (for example of a
 * covariance matrix). A negative determinant (PyTorch: NaN) or a singular A
 * (PyTorch: -inf) is TG_ERR_SINGULAR. Gradient A^-T. */
TG_API tg_node *tg_logdet(tg_node *a);

/* Transpose of a 2-D tensor: [m,n] -> [n,m]. */
TG_API tg_node *tg_transpose(tg_node *a);

/* The same values in a new shape of equal size; one entry may be -1,
 * inferred. A view: the result's tg_value() is a's memory (nothing is
 * copied, at recording or replay), so writing into either changes both; its
 * gradient is its own. */
TG_API tg_node *tg_reshape(tg_node *a, int ndim, const int64_t *shape);

/* Sum / mean of all elements (a 0-d result), or along one axis (that axis
 * removed; negative axes count from the end). */
TG_API tg_node *tg_sum(tg_node *a);
TG_API tg_node *tg_mean(tg_node *a);
TG_API tg_node *tg_sum_axis(tg_node *a, int axis);
TG_API tg_node *tg_mean_axis(tg_node *a, int axis);

/* softmax and log-softmax along an axis, max-subtracted (never overflow). */
TG_API tg_node *tg_softmax(tg_node *a, int axis);
TG_API tg_node *tg_log_softmax(tg_node *a, int axis);

/* Squared-error cost C = 1/2 * sum((a - y)^2) / B, where B is the number of
 * batch rows (shape[0] when ndim >= 2, else 1). a and y have equal shapes. */
TG_API tg_node *tg_mse(tg_node *a, tg_node *y);

/* Softmax cross-entropy C = -sum(y * log_softmax(z, last axis)) / B over the
 * B rows of the logits z; y holds target probabilities (e.g. one-hot) of
 * z's shape. */
TG_API tg_node *tg_softmax_xent(tg_node *z, tg_node *y);

/* --- elementwise math of one input (ops/unary.c) --- */
/* Elementwise, output shape = input shape, both dtypes. Like C's libm, a value
 * outside an op's domain is NaN (asin(2), acosh(0.5), atanh(2), log1p(-2),
 * log2(-1)), a pole is an infinity (atanh(1) = inf, log1p(-1) = -inf,
 * log2(0) = -inf, reciprocal(0) = inf), NaN in gives NaN out, and the limits
 * at +-inf are exact (atan(inf) = pi/2, erf(-inf) = -1). Derivatives follow
 * PyTorch's autograd: at the ends of a domain where the slope is vertical
 * they are infinite, asin'(+-1) = +inf, acos'(+-1) = -inf, acosh'(1) = +inf,
 * atanh'(+-1) = +inf, log1p'(-1) = +inf, log2'(0) = log10'(0) = +inf,
 * cbrt'(0) = +inf (either side), reciprocal'(0) = -inf; outside the domain the
 * formula's value is used as PyTorch does (atanh'(2) = -1/3, log1p'(-2) = -1,
 * while the forward value is NaN). */

/* tan x; derivative 1 + tan^2 x. */
TG_API tg_node *tg_tan(tg_node *x);
/* asin x and acos x on [-1, 1]; derivatives +-1 / sqrt(1 - x^2). */
TG_API tg_node *tg_asin(tg_node *x);
TG_API tg_node *tg_acos(tg_node *x);
/* atan x; derivative 1 / (1 + x^2). */
TG_API tg_node *tg_atan(tg_node *x);
/* sinh x and cosh x; derivatives cosh x and sinh x. */
TG_API tg_node *tg_sinh(tg_node *x);
TG_API tg_node *tg_cosh(tg_node *x);
/* asinh x; derivative 1 / sqrt(x^2 + 1), without overflow for huge |x|. */
TG_API tg_node *tg_asinh(tg_node *x);
/* acosh x on [1, inf); derivative 1 / sqrt(x^2 - 1). */
TG_API tg_node *tg_acosh(tg_node *x);
/* atanh x on [-1, 1]; derivative 1 / (1 - x^2). */
TG_API tg_node *tg_atanh(tg_node *x);
/* The error function erf x and its complement erfc x = 1 - erf x (accurate
 * where erf x is near 1); derivatives +-2/sqrt(pi) e^(-x^2). */
TG_API tg_node *tg_erf(tg_node *x);
TG_API tg_node *tg_erfc(tg_node *x);
/* ln(1 + x), accurate for tiny |x|; derivative 1 / (1 + x). */
TG_API tg_node *tg_log1p(tg_node *x);
/* e^x - 1, accurate for tiny |x|; derivative e^x. */
TG_API tg_node *tg_expm1(tg_node *x);
/* Logarithms to base 2 and 10; derivatives 1 / (x ln 2), 1 / (x ln 10). */
TG_API tg_node *tg_log2(tg_node *x);
TG_API tg_node *tg_log10(tg_node *x);
/* 2^x; derivative 2^x ln 2. */
TG_API tg_node *tg_exp2(tg_node *x);
/* The real cube root (cbrt(-8) = -2); derivative 1 / (3 cbrt(x)^2). */
TG_API tg_node *tg_cbrt(tg_node *x);
/* x^2; derivative 2x. */
TG_API tg_node *tg_square(tg_node *x);
/* 1 / x; derivative -1 / x^2. */
TG_API tg_node *tg_reciprocal(tg_node *x);
/* softplus(x) = ln(1 + e^x) (PyTorch's default beta = 1, computed exactly
 * rather than with its threshold), evaluated as max(x, 0) + log1p(e^-|x|):
 * no overflow for any |x|, softplus(-800) = 0 and softplus(800) = 800.
 * Derivative sigmoid(x). */
TG_API tg_node *tg_softplus(tg_node *x);
/* gelu(x) = x Phi(x), the exact (erf) form, Phi the standard normal CDF
 * computed as erfc(-x / sqrt 2) / 2, without cancellation for x < 0.
 * Derivative Phi(x) + x phi(x), phi the normal density. gelu(-inf) = -0 and
 * its derivative is 0 at -inf and 1 at +inf (the limits, where PyTorch gives
 * NaN). */
TG_API tg_node *tg_gelu(tg_node *x);
/* silu(x) = x sigmoid(x) (also called swish), without overflow for any |x|.
 * Derivative s (1 + x (1 - s)), s = sigmoid(x). silu(-inf) = -0 and the
 * derivative is 0 at -inf and 1 at +inf (the limits, where PyTorch gives
 * NaN). */
TG_API tg_node *tg_silu(tg_node *x);
/* Step functions, derivative 0 everywhere (PyTorch's convention, also at
 * the jumps): the backward rule adds nothing, so not even a NaN gradient
 * flows through. sign(x) is -1, +0 or 1 (sign(-0) = +0 as PyTorch) and
 * sign(NaN) = NaN (PyTorch gives 0). round(x) rounds halves to even, as
 * PyTorch and rint do (round(2.5) = 2, round(-0.5) = -0), unlike C's round. */
TG_API tg_node *tg_sign(tg_node *x);
TG_API tg_node *tg_floor(tg_node *x);
TG_API tg_node *tg_ceil(tg_node *x);
TG_API tg_node *tg_round(tg_node *x);
/* The tangent of y = f(x) along t, f'(x) t, in one pass over memory: y an
 * output of one of the unary ops above other than neg, exp and the steps
 * (else TG_ERR_ARG naming y's op), t of x's shape and dtype (TG_ERR_SHAPE,
 * TG_ERR_DTYPE). The same bits as f's derivative times t, as tg_jvp and
 * tg_backward give them (tg_jvp records it for these ops); its own
 * derivatives are f'' and f'. */
TG_API tg_node *tg_unary_tangent(tg_node *y, tg_node *t);


/* --- two-input math, comparisons, where and clamp (ops/binary.c, compare.c, select.c) --- */
/*
 * All of these are elementwise and broadcast every input by NumPy's rules,
 * as tg_add() does (a mismatch is TG_ERR_SHAPE naming the dimension, e.g.
 * "add: [2,3] and [4]: the last dimension differs (3 vs 4) and neither is 1");
 * the inputs must share one dtype (TG_ERR_DTYPE). Where a convention is a
 * choice, it is PyTorch's ("Gradients for non-differentiable functions").
 */

/* The angle atan2(y, x) in [-pi, pi] of the point (x, y), as C's atan2
 * (atan2(+-0, -0) = +-pi, atan2(+-0, +0) = +-0). dy: x / (x^2 + y^2),
 * dx: -y / (x^2 + y^2), formed without overflowing x^2 + y^2. At the origin
 * both are NaN (0/0), as in PyTorch. */
TG_API tg_node *tg_atan2(tg_node *y, tg_node *x);

/* sqrt(x^2 + y^2) without overflow or underflow, as C's hypot (hypot(+-inf,
 * NaN) = inf). dx: x / hypot, dy: y / hypot; at the origin both are NaN
 * (0/0), as in PyTorch. */
TG_API tg_node *tg_hypot(tg_node *x, tg_node *y);

/* The larger / smaller of a and b. NaN in either gives NaN (unlike C's fmax
 * and fmin); for equal operands the result is a (so maximum(-0, +0) = -0).
 * The gradient goes to the operand that is the result; at a tie a == b each
 * operand gets half; with a NaN operand each gets all of it (PyTorch). */
TG_API tg_node *tg_maximum(tg_node *a, tg_node *b);
TG_API tg_node *tg_minimum(tg_node *a, tg_node *b);

/* c + a * b in one pass over memory, rounded as tg_add(c, tg_mul(a, b)) is
 * (the product, then the sum; never a fused multiply-add), as PyTorch's
 * addcmul with value 1. Derivatives: 1, b and a. The tangents (tg_jvp) of
 * products are made of it. */
TG_API tg_node *tg_addcmul(tg_node *c, tg_node *a, tg_node *b);

/* Comparisons a < b, a <= b, a > b, a >= b, a == b, a != b: 1 where the
 * relation holds, else 0, in the operands' dtype. A NaN compares as in C
 * (every relation is false, except a != b which is true). No gradient flows
 * through a comparison: its backward adds nothing to a or b. */
TG_API tg_node *tg_lt(tg_node *a, tg_node *b);
TG_API tg_node *tg_le(tg_node *a, tg_node *b);
TG_API tg_node *tg_gt(tg_node *a, tg_node *b);
TG_API tg_node *tg_ge(tg_node *a, tg_node *b);
TG_API tg_node *tg_eq(tg_node *a, tg_node *b);
TG_API tg_node *tg_ne(tg_node *a, tg_node *b);

/* a where cond is nonzero, b elsewhere; a NaN cond counts as nonzero (as in
 * C). Typically cond is a comparison: tg_where(tg_gt(x, zero), x, tg_scale(x,
 * 0.1)). The gradient of each element goes to the input it was taken from,
 * unscaled, and none to cond: a NaN or inf in the branch not taken never
 * reaches a gradient through where (no 0 * inf). An op *below* that branch
 * still multiplies the 0 it receives by its own derivative (as in PyTorch:
 * where(x > 0, sqrt(x), 0) has gradient 0 * inf = NaN at x = 0); feed such a
 * branch a safe input (sqrt(where(x > 0, x, 1))). */
TG_API tg_node *tg_where(tg_node *cond, tg_node *a, tg_node *b);

/* minimum(maximum(x, lo), hi), elementwise: NaN in any input gives NaN, and
 * when lo > hi the result is hi. The gradient, as PyTorch's clamp with
 * tensor bounds: to x where lo <= x <= hi (bounds included), to lo where
 * x < lo < hi, to hi where x > hi or hi < lo; to no input where x < lo == hi
 * or an input is NaN (and hi < lo sends it to hi even then). */
TG_API tg_node *tg_clamp(tg_node *x, tg_node *lo, tg_node *hi);

/* tg_clamp() with constant bounds, recorded as constant nodes of x's dtype.
 * NULL when x is NULL. */
TG_API tg_node *tg_clamp_const(tg_node *x, double lo, double hi);


/* --- more reductions (ops/reduce.c) --- */
/* More reductions, each of all elements (a 0-d result) or along one axis
 * (that axis removed; negative axes count from the end), as tg_sum() and
 * tg_sum_axis(). Registered as one op per name ("max", "min", "logsumexp",
 * "prod", "norm", "var"), the axis in the node's parameter; tg_call(name, x,
 * NULL) reduces along axis 0. Errors: an axis outside [-ndim, ndim), and any
 * axis of a 0-d input, give TG_ERR_ARG naming the op and the shape. NaN in a
 * reduced run gives NaN out, in the value and in the gradient of that run
 * (except where a rule below says 0). Every one has a recorded rule, so
 * tg_grad(), tg_jvp() and the Hessian drivers go through all of them. */

/* The largest / smallest element. NaN if the run holds a NaN (torch.amax).
 * Ties: the gradient is split evenly among the elements equal to the result
 * (PyTorch's rule for amax/amin): max([1, 3, 3]) passes 0, 1/2, 1/2. */
TG_API tg_node *tg_max(tg_node *a);
TG_API tg_node *tg_max_axis(tg_node *a, int axis);
TG_API tg_node *tg_min(tg_node *a);
TG_API tg_node *tg_min_axis(tg_node *a, int axis);

/* The index of the largest element, as a number of a's dtype (float32
 * holds indices exactly up to 2^24): over all elements, the flat row-major
 * index; along axis, the position along it (the axis removed, as for
 * tg_max_axis). At a tie the first index, and a NaN counts as the largest
 * (the first NaN), as torch.argmax: argmax([1, 3, 3]) = 1. The index is
 * piecewise constant in a, so its derivative is 0: nothing flows back to a
 * (and tg_grad records nothing), as for the comparisons. Errors as for
 * tg_max. tg_accuracy (nn.h) applies the same rule to a batch of logits. */
TG_API tg_node *tg_argmax(tg_node *a);
TG_API tg_node *tg_argmax_axis(tg_node *a, int axis);

/* log(sum(e^x)), evaluated as m + log(sum(e^(x - m))) with m the run's
 * maximum, so it never overflows: logsumexp([1000, 1000]) = 1000 + ln 2.
 * All -inf gives -inf; a +inf element gives +inf. Gradient e^(x - y) (the
 * softmax); where x and y are both infinite it is NaN, as in PyTorch. */
TG_API tg_node *tg_logsumexp(tg_node *a);
TG_API tg_node *tg_logsumexp_axis(tg_node *a, int axis);

/* The product of the elements. The gradient of element k is the product of
 * the others, formed without dividing by zero: with one zero element, that
 * element gets the product of the rest and the others 0; with two or more
 * zeros every gradient is 0 (as PyTorch). Partial products are kept as
 * mantissa and exponent, so neither the value nor the gradient overflows
 * or underflows unless the true result does: prod([1e200, 1e200, 1e-200])
 * is 1e200. A zero times an infinite element is NaN (IEEE). */
TG_API tg_node *tg_prod(tg_node *a);
TG_API tg_node *tg_prod_axis(tg_node *a, int axis);

/* The L2 norm sqrt(sum(x^2)), scaled by a power of 2 when needed (as hypot
 * does), so huge and tiny elements neither overflow nor underflow:
 * norm([3e200, 4e200]) = 5e200. Gradient x / norm; at the zero vector the
 * gradient is 0 (PyTorch's choice). An infinite element gives +inf, a NaN NaN. */
TG_API tg_node *tg_norm(tg_node *a);
TG_API tg_node *tg_norm_axis(tg_node *a, int axis);

/* The population variance mean((x - mean(x))^2) (correction 0, i.e.
 * torch.var(x, correction=0)), computed in two passes about the mean.
 * Gradient 2 (x - mean(x)) / n; a run of one element has variance 0 and
 * gradient 0. */
TG_API tg_node *tg_var(tg_node *a);
TG_API tg_node *tg_var_axis(tg_node *a, int axis);


/* --- shape and indexing (ops/shape.c); batched matmul (ops/linalg.c) --- */
/*
 * Every op of this section moves elements without computing: its backward
 * rule adds each output gradient back into the input element it came from,
 * so an element used several times (index_select with a repeated index,
 * broadcast_to) receives the sum. NaN and inf pass through unchanged (tril
 * and triu write 0 outside their band, whatever the input holds there).
 * Axes may be negative, counting from the end; an axis out of range is
 * TG_ERR_ARG naming the op, the axis and the shape. Integer parameters that
 * may be large (slice's start, index_select's indices, the diagonal offset
 * of tril/triu) are recorded as constant input nodes of x's dtype, so they
 * show in the graph and replay: they are replayable inputs, which tg_call
 * and the expression language give as nodes. A start or an offset is one
 * node per value on a tape, shared by every op that uses it (writing one
 * through tg_value() before tg_forward() moves them all); the indices of
 * each index_select are a node of their own, checked when recorded (one a
 * caller makes invalid before a replay gives NaN, never a read out of
 * bounds). float32 holds integers exactly up to 2^24, and a
 * parameter float32 cannot hold exactly is refused (TG_ERR_ARG).
 * Called by name (tg_call), an op gets axis 0 and x's own extent: slice(x,
 * start) is all of axis 0 (start must be 0), concat(a, b) joins along axis 0,
 * index_select(x, idx) picks along axis 0 (idx a 1-D tensor of x's dtype
 * holding integers), broadcast_to(x) is a copy, permute(x) reverses the axes.
 * All of them, and batched matmul, have vjp rules: tg_grad() differentiates
 * through them to any order.
 */

/* x[..., start : start+length, ...] along axis: the same shape but length
 * there. Gradient: the output's, added into that range of x (0 elsewhere).
 * TG_ERR_ARG when start < 0, length < 1 or start + length passes the end.
 * When the range is one block of x's memory (every axis before axis has
 * extent 1: rows of a matrix, steps of a [T, ...] sequence), the result is
 * a view, as tg_reshape()'s: nothing is copied; otherwise a copy. */
TG_API tg_node *tg_slice(tg_node *x, int axis, int64_t start, int64_t length);

/* inputs[0..n) joined along axis: equal shapes except there, equal dtypes.
 * Recorded as a balanced tree of n - 1 binary "concat" nodes (a node has at
 * most 3 inputs); n = 1 returns inputs[0] itself. Gradient: each input gets
 * its part of the output's. NULL when n < 1 or no input is non-NULL (no tape
 * to record on); a NULL among them is TG_ERR_NULL; a shape differing off the
 * axis TG_ERR_SHAPE naming both inputs; a dtype mismatch TG_ERR_DTYPE. */
TG_API tg_node *tg_concat(int n, tg_node *const *inputs, int axis);

/* Gathers along axis: y[..., j, ...] = x[..., idx[j], ...] for j < n (n >= 1;
 * indices may repeat, in any order). The shape of x with n along axis.
 * Gradient: scattered back with +=, so a repeated index receives the sum of
 * its rows' gradients (as torch.index_select). An index outside [0, the
 * axis's length) is TG_ERR_ARG naming the index and its position, as are
 * n < 1 and, for float32 x, an axis longer than 2^24 (its indices would not
 * be exact); NULL idx is TG_ERR_NULL. The indices are copied into a constant
 * 1-D input node of x's dtype; if a caller overwrites one with an invalid
 * value before tg_forward(), its rows become NaN (never a read out of
 * bounds). */
TG_API tg_node *tg_index_select(tg_node *x, int axis, const int64_t *idx, int64_t n);

/* index_select's adjoint (a scatter-add): a tensor of src's shape with len
 * along axis, zero except y[..., idx[j], ...] += src[..., j, ...] for each of
 * the src's rows j along axis (idx has that many entries), so repeated
 * indices add up. It is the gradient of index_select: one node whatever the
 * repeats. Gradient: src̄[..., j, ...] += ȳ[..., idx[j], ...] (a gather).
 * Errors as tg_index_select, indices in [0, len), and TG_ERR_ARG for len
 * outside 1..TG_MAX_NUMEL. */
TG_API tg_node *tg_index_add(tg_node *src, int axis, const int64_t *idx, int64_t len);

/* x broadcast to shape[0..ndim) by NumPy's rules: x's dimensions, aligned
 * from the right, each equal to the target's or 1. Gradient: the output's
 * summed over the broadcast dimensions. TG_ERR_SHAPE when x does not
 * broadcast to the shape (naming both), or for ndim outside 0..4. */
TG_API tg_node *tg_broadcast_to(tg_node *x, int ndim, const int64_t *shape);

/* The axes of x reordered: output axis i is x's axis perm[i] (perm has ndim
 * entries, a permutation of 0..ndim-1; negative entries count from the end),
 * as torch.permute / numpy.transpose. Up to 4-D. Gradient: permuted back.
 * TG_ERR_ARG for an entry out of range or repeated; perm may be NULL only for
 * a 0-d x. */
TG_API tg_node *tg_permute(tg_node *x, const int *perm);

/* Lower / upper triangle of the last two dimensions of x (at least 2-D): an
 * element [..., i, j] is kept when j - i <= k (tril) or j - i >= k (triu)
 * and 0 otherwise; k = 0 is the main diagonal, k > 0 above it, k < 0 below,
 * as numpy/torch. Gradient masked the same way. Any k is accepted (it is
 * recorded clamped to [-rows, cols], beyond which all k act alike). */
TG_API tg_node *tg_tril(tg_node *x, int64_t k);
TG_API tg_node *tg_triu(tg_node *x, int64_t k);

/* --- axis conveniences (ops/axes.c) --- */
/* Compositions of the ops above (no op of their own: their gradients are
 * reshape's and concat's, and they record those nodes; reshape being a view,
 * unsqueeze, squeeze and the keepdim forms copy nothing). Axes may be
 * negative, counting from the end; an axis out of range is TG_ERR_ARG naming
 * the call, the axis and the shape. NULL for a NULL x (no tape). */

/* x with a dimension of size 1 inserted before axis (axis in -ndim-1..ndim;
 * ndim or -1 appends it), as torch.unsqueeze. TG_ERR_SHAPE for a 4-D x. */
TG_API tg_node *tg_unsqueeze(tg_node *x, int axis);

/* x without its dimension axis, which must be 1 (TG_ERR_SHAPE naming it
 * otherwise), as torch.squeeze(x, axis). */
TG_API tg_node *tg_squeeze(tg_node *x, int axis);

/* inputs[0..n), of one shape, joined along a new axis of length n (axis in
 * -ndim-1..ndim), as torch.stack: each input unsqueezed, then tg_concat()
 * (a balanced tree of n - 1 binary concat nodes). NULL when n < 1 or no
 * input is non-NULL; a NULL among them is TG_ERR_NULL, differing shapes
 * TG_ERR_SHAPE naming both. inputs is the caller's; nothing is kept. */
TG_API tg_node *tg_stack(int n, tg_node *const *inputs, int axis);

/* The axis reductions with the reduced axis kept as a dimension of 1
 * (torch's keepdim=True), so that the result broadcasts against a: x minus
 * tg_mean_axis_keepdim(x, 1) centres each row of a [P,3] x. Errors as the
 * reduction's (TG_ERR_ARG for an axis out of range). */
TG_API tg_node *tg_sum_axis_keepdim(tg_node *a, int axis);
TG_API tg_node *tg_mean_axis_keepdim(tg_node *a, int axis);
TG_API tg_node *tg_max_axis_keepdim(tg_node *a, int axis);
TG_API tg_node *tg_min_axis_keepdim(tg_node *a, int axis);
TG_API tg_node *tg_argmax_axis_keepdim(tg_node *a, int axis);
TG_API tg_node *tg_logsumexp_axis_keepdim(tg_node *a, int axis);
TG_API tg_node *tg_prod_axis_keepdim(tg_node *a, int axis);
TG_API tg_node *tg_norm_axis_keepdim(tg_node *a, int axis);
TG_API tg_node *tg_var_axis_keepdim(tg_node *a, int axis);

/* Batched tg_matmul (declared above): besides 2-D operands, a 3-D or 4-D
 * operand is a stack of matrices whose leading (batch) dimensions broadcast
 * as NumPy's `@`: [2,1,m,k] x [3,k,n] -> [2,3,m,n], [b,m,k] x [k,n] ->
 * [b,m,n]. Each output matrix is one call of the 2-D kernel (CBLAS gemm when
 * available; [b,m,k] x [k,n] is a single [b*m,k] x [k,n] gemm). The gradient
 * of an operand broadcast along a batch dimension is summed over it. 1-D
 * operands are not supported (TG_ERR_SHAPE naming both shapes): reshape a
 * vector to [1,k] or [k,1]. Batch dimensions that differ and are not 1 are
 * TG_ERR_SHAPE naming the dimension. */



/* --- activations and losses for training (ops/activation.c, ops/loss.c) --- */

/* Leaky ReLU, elementwise: y = x for x > 0, slope * x otherwise.
 * dy/dx = 1 for x > 0, slope for x <= 0: at x = 0 the derivative is slope,
 * PyTorch's rule. The slope is recorded as a constant input node (the op
 * "leaky_relu" has two inputs: tg_call("leaky_relu", x, s) takes any node s
 * of one element or of x's shape, and d y/d s = x for x <= 0, else 0).
 * leaky_relu(NaN) = NaN. */
TG_API tg_node *tg_leaky_relu(tg_node *x, double slope);

/* ELU, elementwise: y = x for x > 0, alpha * (e^x - 1) otherwise (by expm1;
 * elu(-inf) = -alpha). PyTorch's default is alpha = 1. dy/dx = 1 for x > 0,
 * alpha * e^x for x <= 0: at x = 0 the derivative is alpha (PyTorch's
 * rule; with alpha = 1 the function is C^1 there). alpha is a constant input
 * node as for tg_leaky_relu (op "elu", two inputs; d y/d alpha = e^x - 1 for
 * x <= 0, else 0). */
TG_API tg_node *tg_elu(tg_node *x, double alpha);

/* Binary cross-entropy on logits, averaged over all N elements (PyTorch's
 * binary_cross_entropy_with_logits, reduction "mean"):
 *   C = 1/N sum max(z, 0) - z y + log1p(e^-|z|),
 * which is -y log sigmoid(z) - (1 - y) log(1 - sigmoid(z)) without overflow
 * or loss of precision at any |z| (z = 1000, y = 0 costs 1000). z and y have
 * equal shapes (0-d included); y is usually in [0, 1] but any value is
 * accepted. dC/dz = (sigmoid(z) - y)/N, dC/dy = -z/N. A NaN in z or y makes
 * C NaN. Errors: TG_ERR_SHAPE for unequal shapes. Returns a 0-d node. */
TG_API tg_node *tg_bce_with_logits(tg_node *z, tg_node *y);

/*
 * Class labels for tg_nll_loss and tg_cross_entropy are a node of the
 * logits' dtype and of the logits' shape without the last (class) axis: one
 * integer in [0, C) per row (a 0-d node for logits of shape [C]). They get
 * no gradient. A label that is not an integer in [0, C) is an error
 * (TG_ERR_ARG) naming the op, the row (the flat index into the labels) and
 * the label, e.g. "cross_entropy: row 1: label 3 is out of range for 3
 * classes (0..2)": when the op is recorded (the poison node is returned),
 * and again on replay by tg_forward() (the cost becomes NaN and the status
 * is set) and by the backward sweep, so new labels written through
 * tg_value() are checked too. A NaN label is an error, not a NaN cost.
 */

/* An input node holding labels[0..R) for logits (R = number of rows: the
 * logits' elements over the last axis), on the logits' tape, of their dtype
 * and of their shape without the last axis. labels is copied; NULL gives
 * zeros, for replay to fill through tg_value(). Values are not checked here
 * (the loss does). Integers above 2^24 are not exact in float32. Errors:
 * TG_ERR_SHAPE for 0-d logits. */
TG_API tg_node *tg_labels(tg_node *logits, const int32_t *labels);

/* The labels of one-hot rows: sum(onehot * [0, 1, ..., C-1], last axis),
 * recorded with public ops (so it is replayed with the one-hot input), of
 * shape onehot's without the last axis. Exact for one-hot rows; other rows
 * give a weighted index (a row of zeros gives 0), which the losses reject
 * unless it happens to be a valid class. */
TG_API tg_node *tg_labels_from_onehot(tg_node *onehot);

/* Negative log-likelihood of class labels (PyTorch's nll_loss, reduction
 * "mean", classes along the last axis): C = -1/R sum_r logp[r, label_r]
 * over the R rows of logp ([B, C]: R = B; [C]: R = 1; [..., C]: every
 * leading position is a row). logp is usually log_softmax(z, -1); only the
 * labelled entries are read, so a NaN elsewhere does not reach C.
 * dC/dlogp[r, j] = -1/R if j = label_r, else 0. See above for labels and
 * their errors; TG_ERR_SHAPE when their shape does not fit. Returns 0-d. */
TG_API tg_node *tg_nll_loss(tg_node *logp, tg_node *labels);

/* Softmax cross-entropy of class labels (PyTorch's cross_entropy with
 * integer targets, reduction "mean", classes along the last axis):
 *   C = 1/R sum_r logsumexp(z_r) - z[r, label_r],
 * as tg_nll_loss(tg_log_softmax(z, -1), labels) in one op, without one-hot
 * targets. Each row is shifted by its maximum, so any finite logits give a
 * finite cost ([1000, -1000] with label 1 costs 2000); a NaN logit makes C
 * NaN. dC/dz[r, j] = (softmax(z_r)_j - [j = label_r]) / R. Labels and
 * errors as for tg_nll_loss. Returns a 0-d node. */
TG_API tg_node *tg_cross_entropy(tg_node *logits, tg_node *labels);

/* Huber loss, averaged over all N elements (PyTorch's huber_loss, reduction
 * "mean"): with d = a - y,
 *   h(d) = d^2 / 2 for |d| < delta,  delta (|d| - delta/2) otherwise.
 * dC/da = -dC/dy = clamp(d, -delta, delta) / N; at |d| = delta both pieces
 * have value delta^2/2 and slope d, so the gradient is continuous (+-delta/N
 * there, as PyTorch). delta is a constant input node (the op "huber" has
 * three inputs; through tg_call_n it may be any one-element node, with
 * dC/d delta = 1/N sum over |d| > delta of (|d| - delta)). a and y have
 * equal shapes. Errors: TG_ERR_SHAPE for unequal shapes or a delta of more
 * than one element, TG_ERR_ARG for delta <= 0 (checked when recorded; a NaN
 * delta gives a NaN cost). Returns a 0-d node. */
TG_API tg_node *tg_huber(tg_node *a, tg_node *y, double delta);


/* -------------------------------------------------------------- running -- */

/* Seeds d(out)/d(out) = 1 and sweeps the tape backward once from out,
 * visiting only nodes on a path from a leaf that wants a gradient. Interior
 * gradients are recomputed from zero by every sweep; leaf gradients
 * *accumulate* across sweeps (clear them with tg_zero_grad()). out must be a
 * scalar (one element); otherwise the status becomes TG_ERR_STATE. Returns
 * the tape's status. */
TG_API int tg_backward(tg_node *out);

/* As tg_backward() for an output of any shape: seed holds numel(out) values
 * of out's dtype, d(loss)/d(out). */
TG_API int tg_backward_seeded(tg_node *out, const void *seed);

/* Re-evaluates every node in recording order from the current leaf values
 * (replay). Allocates nothing. Returns the tape's status. */
TG_API int tg_forward(tg_tape *t);

/* Sets the gradients of every leaf of the tape to zero (including the
 * caller's buffers given to tg_view()). */
TG_API void tg_zero_grad(tg_tape *t);

/* ------------------------------------------------------------ accessors -- */

/* The tape a node lives on; NULL for NULL. */
TG_API tg_tape *tg_node_tape(const tg_node *n);
TG_API tg_dtype tg_node_dtype(const tg_node *n);
TG_API int tg_ndim(const tg_node *n);
/* Copies the ndim dimensions into shape (room for TG_MAX_DIMS); returns ndim. */
TG_API int tg_shape(const tg_node *n, int64_t *shape);
TG_API int64_t tg_numel(const tg_node *n);

/* The node's values (numel elements of its dtype), writable so that replay
 * can feed new inputs. */
TG_API void *tg_value(const tg_node *n);

/* The node's gradient after tg_backward(), or NULL when it has none (a
 * constant, or a node the sweep did not reach). Also spelled tg_grad(n). */
TG_API void *tg_grad_data(const tg_node *n);

/* Element i of the value / gradient as a double (0 <= i < numel). The
 * gradient of a node without one is 0. NaN for a bad index or NULL. */
TG_API double tg_value_at(const tg_node *n, int64_t i);
TG_API double tg_grad_at(const tg_node *n, int64_t i);

/* The value / gradient of a one-element node as a double. */
TG_API double tg_value_scalar(const tg_node *n);
TG_API double tg_grad_scalar(const tg_node *n);

/* Whether the node wants a gradient (some leaf below it does). */
TG_API int tg_requires_grad(const tg_node *n);

/* The name of the node's op ("leaf" for leaves), and its inputs. */
TG_API const char *tg_node_op_name(const tg_node *n);
TG_API int tg_node_arity(const tg_node *n);
TG_API tg_node *tg_node_input(const tg_node *n, int k);
/* The node's position on its tape. */
TG_API size_t tg_node_index(const tg_node *n);

/* ------------------------------------------------ higher-order (grad.c) -- */

/*
 * Records d(out)/d(wrt[i]) for i < n as nodes of out's tape and stores them
 * in grads[i] (a node of wrt[i]'s shape and dtype; a zero constant when out
 * does not depend on wrt[i]). out must have one element; wrt[i] may be any
 * node of the tape (a leaf or an interior node). Returns the tape's status;
 * on failure every grads[i] is the poison node.
 *
 * The gradient nodes are ordinary nodes: their values are ready at once, they
 * replay with tg_forward(), and tg_backward() or tg_grad() of an expression of
 * them gives second derivatives (Hessian-vector products, gradient
 * penalties, Newton steps). Cost: about the cost of one tg_backward() in
 * time, plus the new nodes' memory, since each op's vjp rule records a few
 * ops in place of running its backward kernel.
 *
 * Errors: TG_ERR_NULL (a NULL pointer), TG_ERR_ARG (n < 0, or a wrt node that
 * does not want a gradient: a constant or tg_input()), TG_ERR_TAPE (a wrt
 * node of another tape), TG_ERR_STATE (out has more than one element, a
 * node was recorded before the last reset, or an op on the path has no vjp
 * rule: a user op registered without one; the message names the op).
 *
 * tg_grad() with four arguments is this function; with one argument it is
 * the accessor tg_grad_data() (a macro chooses by the number of arguments;
 * take the address of tg_grad_nodes or tg_grad_data, not of tg_grad).
 */
TG_API int tg_grad_nodes(tg_node *out, int n, tg_node *const *wrt, tg_node **grads);

/*
 * Drivers. wrt[0..n) are nodes of out's tape that want gradients; the
 * results are ordered as wrt, each node's elements row-major. Each returns
 * the tape's status (errors as tg_grad(), TG_ERR_SHAPE for a v of the wrong
 * shape) and records its work as nodes on the tape (freed by the next reset);
 * on failure the output nodes (hv, jv) are the poison node.
 *
 * tg_hvp: hv[i] = sum_j H_ij v[j], the Hessian of the one-element out times
 *   the vector v (v[i] has wrt[i]'s shape), as differentiable nodes: forward
 *   over reverse, the gradient recorded by tg_grad(), then its tangent along
 *   v (about 2 gradients, measured in docs/performance.md); the Hessian is
 *   never formed.
 * tg_jvp: jv = J v, the directional derivative of out (any shape) along v, as
 *   a node of out's shape: forward mode, one pass over the tape recording
 *   each op's tangent rule beside the values (docs/higher-order.md); J is
 *   never formed.
 * tg_jvp_many: jv[j] = J v_j for k directions at once (k >= 1; jv has k
 *   entries, and v has k*n: v[j*n + i] is direction j's part for wrt[i]).
 *   What the directions share, such as each op's derivative node, is
 *   recorded once, so k directions cost less than k tg_jvp() calls.
 * tg_hessian: the dense Hessian of the one-element out, N x N (N = total
 *   elements of wrt), row-major into h (float64). One tg_grad() recording,
 *   then forward over reverse: the gradient's tangents along 8 directions
 *   recorded once (tg_jvp_many) and replayed once per 8 columns; when an
 *   entry comes out infinite or NaN (a point where a second derivative is
 *   infinite, which forward mode's zero tangents multiply into other
 *   entries), the rows are swept in reverse instead, one seeded backward
 *   sweep per row. For up to a few thousand variables.
 * tg_jacobian: the dense Jacobian of out (M elements), M x N, row-major into
 *   jac. By reverse sweeps (one per output element) when M <= N; by forward
 *   mode when N < M: tg_jvp_many() along 8 directions recorded once, then
 *   one replay of what it recorded per 8 input elements, the directions set
 *   to unit vectors.
 * A node named more than once in wrt gets its columns in each place it is
 *   named (as tg_grad() gives its gradient in each place).
 * The dense drivers leave every leaf gradient of the tape as it was (they
 * save and restore them), re-evaluate the tape (tg_forward) when they go
 * forward, write a zero entry as +0, and, when they succeed, rewind the
 * tape to where it was (tg_tape_rewind): calling them in a loop does not
 * grow it. Ownership: h and jac are the caller's buffers of
 * N*N and M*N doubles, written only; wrt, v, hv and jv are arrays of n (jv:
 * 1) node pointers the caller owns, the nodes themselves the tape's. They
 * also fail with TG_ERR_NULL for a NULL h, jac, hv, jv or v, TG_ERR_ARG for
 * n < 1, and TG_ERR_NOMEM (the dense drivers' scratch memory).
 */
TG_API int tg_hvp(tg_node *out, int n, tg_node *const *wrt, tg_node *const *v, tg_node **hv);
TG_API int tg_jvp(tg_node *out, int n, tg_node *const *wrt, tg_node *const *v, tg_node **jv);
TG_API int tg_jvp_many(tg_node *out, int n, tg_node *const *wrt, int k, tg_node *const *v,
                       tg_node **jv);
TG_API int tg_hessian(tg_node *out, int n, tg_node *const *wrt, double *h);
TG_API int tg_jacobian(tg_node *out, int n, tg_node *const *wrt, double *jac);

/* One argument: the accessor; more: tg_grad_nodes (commas inside a compound
 * literal argument count as more, which is why every count above one maps to
 * tg_grad_nodes). */
#define TG__ARG18(a0, a1, a2, a3, a4, a5, a6, a7, a8, a9, a10, a11, a12, a13, a14, a15, a16, \
                  a17, ...)                                                                \
    a17
#define tg_grad(...)                                                                       \
    TG__ARG18(__VA_ARGS__, tg_grad_nodes, tg_grad_nodes, tg_grad_nodes, tg_grad_nodes,     \
              tg_grad_nodes, tg_grad_nodes, tg_grad_nodes, tg_grad_nodes, tg_grad_nodes,   \
              tg_grad_nodes, tg_grad_nodes, tg_grad_nodes, tg_grad_nodes, tg_grad_nodes,   \
              tg_grad_nodes, tg_grad_nodes, tg_grad_data, tg_grad_data)                    \
    (__VA_ARGS__)

/* -------------------------------------------------------- op extensions -- */
/*
 * What an op's forward and backward functions see of a node: its dtype,
 * shape and memory, never the node itself, so that they do not depend on
 * how the tape stores positions.
 */
typedef struct tg_arg {
    void *value;          /* numel values of dtype, row-major */
    void *grad;           /* its gradient (backward only; NULL for an input
                             that wants none) */
    const int32_t *shape; /* ndim extents (unused when ndim is 0) */
    size_t numel;
    int ndim;             /* 0..TG_MAX_DIMS */
    tg_dtype dtype;
    /* Backward only: nonzero when grad holds nothing of the running sweep
     * yet, so that a built-in kernel may write its contribution instead of
     * adding it. Always 0 for a user op: its inputs' gradients are ready to
     * add into. */
    int fresh;
} tg_arg;

/* The arguments of one call of an op's forward or backward function: the
 * output and the op's inputs (in[k] for k >= op->arity is unused), the op's
 * integer parameter (an axis for the built-in ops that have one; 0 for user
 * ops), the op itself and the tape, for tg_fail() by the few ops whose inputs
 * can turn invalid on replay (a singular matrix, a label out of range). */
struct tg_op;
typedef struct tg_args {
    tg_arg out;
    tg_arg in[3];
    int param;
    const struct tg_op *op;
    tg_tape *tape;
} tg_args;

/*
 * Every op, built-in or user-defined, is a tg_op: a name, an arity, its
 * forward function and ONE statement of its derivative, from which the
 * engine derives the other uses. The registry (a hash table keyed by name)
 * serves the command line's expression language, the DOT export and user
 * code.
 *
 * The derivative is given as any one of:
 *   vjp       the gradient recorded with public ops (reverse mode);
 *   jvp       the tangent recorded with public ops (forward mode);
 * and optionally a fused backward kernel, for speed, which must compute what
 * the recorded rule does. What is missing is derived: backward from the
 * recorded rule (evaluated on a scratch tape), the vjp from the jvp (its
 * transpose: the gradient of <jvp(u), g> with respect to u), the jvp from
 * the vjp (the gradient of <vjp(u), t> with respect to u). Both dtypes come
 * from the same rule, since public ops dispatch on the dtype.
 */
typedef struct tg_op {
    const char *name; /* unique, e.g. "sigmoid" */
    int arity;        /* 1, 2 or 3 */
    /* Checks the inputs and sets the output's shape. On entry the output has
     * the dtype and shape of input 0; change them with tg_set_shape(). Returns
     * TG_OK, or an error code after writing a reason (without the op name,
     * which is prefixed) into why[why_len]. NULL means "same shape as input 0". */
    int (*shape)(tg_node *out, char *why, size_t why_len);
    /* Computes a->out.value from the inputs' values a->in[k].value. Cannot
     * fail. It sees argument views (tg_args), not nodes. */
    void (*forward)(tg_args *a);
    /* Optional: adds d(loss)/d(input k) into a->in[k].grad for each input
     * whose grad is non-NULL, from a->out.grad and the stored values. NULL:
     * derived from vjp (or jvp). An op whose derivative is zero gives a
     * backward that adds nothing, and no vjp or jvp. */
    void (*backward)(tg_args *a);
    /* Optional: the derivative recorded with ops, for tg_grad() (higher
     * order). Given out and gout, a node of out's shape holding
     * d(loss)/d(out), sets gin[k] to a node of input k's shape holding its
     * contribution to d(loss)/d(input k), recorded on out's tape with public
     * ops (gin[k] may stay NULL for an input that wants no gradient, see
     * tg_requires_grad(), or a zero contribution). */
    void (*vjp)(tg_node *out, tg_node *gout, tg_node **gin);
    /* Optional: the tangent rule, for forward mode (tg_jvp). Given out and
     * tin[k], a node of input k's shape holding its tangent (NULL where it is
     * zero), returns a node holding out's tangent, recorded with public ops
     * (of out's shape, or one that broadcasts to it), or NULL for a zero
     * tangent. */
    tg_node *(*jvp)(tg_node *out, tg_node *const *tin);
} tg_op;

/* Registers a user op (the struct must outlive the process's use of it).
 * Returns TG_OK; TG_ERR_ARG when op is NULL, its name NULL, empty or taken
 * (by a built-in op or by another tg_op struct; registering the same struct
 * twice is refused too), its arity not 1..3, its forward NULL, or it states
 * no derivative at all (backward, vjp and jvp all NULL); TG_ERR_NOMEM when
 * memory or the table is exhausted (at most 255 ops in all). Thread-safe.
 *
 * tg_op_register(op) is tg_op_register_err(op, NULL). Both are macros that
 * pass sizeof(tg_op) as this header defines it to tg_op_register_views(), so
 * that a program compiled against an older header is told so instead of
 * having its struct misread: one whose tg_op had fewer fields, or whose
 * forward and backward took the node instead of its argument views (the
 * functions of the old names, tg_op_register_sized() among them, remain and
 * refuse with a message naming the change). */
#define tg_op_register(op) tg_op_register_views((op), sizeof(tg_op), NULL)
#define tg_op_register_err(op, err) tg_op_register_views((op), sizeof(tg_op), (err))

/* As tg_op_register(), and when err is non-NULL it says why: on failure
 * err->code is the return value and err->message a sentence naming the op
 * and the fault, e.g. 'tg_op_register: the name "sin" is taken by the
 * built-in unary op of ops/unary.c; choose another name'; on success err is
 * cleared (TG_OK, ""), as by every call that takes a tg_error. op_size is
 * sizeof(tg_op) where the op was compiled; another size is refused naming
 * both.
 *
 * Why an out-parameter and not a thread-local "last error" string: a call
 * that has no tape reports through a tg_error the caller owns, as every
 * call of tapegrad/nn.h does, so there is one mechanism to learn; the
 * message stays where the caller put it until the caller's next call with
 * that tg_error, instead of being overwritten by whatever tapegrad call runs
 * next on the thread (a callback, a library in between); and the library
 * keeps no per-thread state. tg_error is defined in tapegrad/nn.h. */
struct tg_error;
TG_API int tg_op_register_views(const tg_op *op, size_t op_size, struct tg_error *err);

/* The registered op of that name, or NULL. Thread-safe. */
TG_API const tg_op *tg_op_find(const char *name);

/* Derivative ops: an elementwise op's partial derivative with respect to one
 * input is itself an op (its derivative node), which tg_grad and tg_jvp
 * record and tg_backward's fused kernel computes inline: base_dx(x, y) for
 * a unary op, base_da(a, b, y) and base_db(a, b, y) for a binary one, and
 * base_dp(x, p, y) for an activation's parameter, y being the base op's
 * output. A loss's (ops/loss.c) take the loss's inputs, e.g.
 * huber_da(a, y, delta) and huber_dc(a, y, delta) for its first and third
 * input (docs/ops.md lists them). This returns the base op of a built-in
 * derivative op (and, when input is non-NULL, the index of the input it
 * differentiates by), or NULL for any other op. They are listed by
 * tg_op_at() like every op. */
TG_API const tg_op *tg_op_derivative_of(const tg_op *op, int *input);

/* Number of registered ops, and the i-th (0 <= i < count), in registration order. */
TG_API int tg_op_count(void);
TG_API const tg_op *tg_op_at(int i);

/* Records op on inputs a (and b for binary ops; NULL otherwise). */
TG_API tg_node *tg_apply(const tg_op *op, tg_node *a, tg_node *b);

/* Records op on its inputs in[0..n), 1 <= n <= 3 (n = the op's arity; the
 * only way to give a third input). NULL for a bad n or in. */
TG_API tg_node *tg_apply_n(const tg_op *op, int n, tg_node *const *in);

/* Records the registered op called name: tg_call("sin", x, NULL). An unknown
 * name sets TG_ERR_UNKNOWN_OP, the message naming the closest registered op
 * when one is close ("unknown op 'sigmod' (did you mean sigmoid?)"); a wrong
 * number of inputs TG_ERR_ARG. */
TG_API tg_node *tg_call(const char *name, tg_node *a, tg_node *b);
/* As tg_call() with n (1..3) inputs: tg_call_n("clamp", 3, (tg_node *[]){x, lo, hi}). */
TG_API tg_node *tg_call_n(const char *name, int n, tg_node *const *in);

/* Inside a shape rule only: sets the output's shape. Returns TG_OK or
 * TG_ERR_SHAPE for a bad shape. */
TG_API int tg_set_shape(tg_node *out, int ndim, const int64_t *shape);

/* ----------------------------------------------------------- allocation -- */

/* Every heap allocation of the library goes through these functions (BLAS's
 * own buffers excepted). Set them before creating any tape; NULL restores
 * the C library's. ctx is passed back unchanged. Not thread-safe. */
typedef struct tg_allocator {
    void *(*malloc)(size_t size, void *ctx);
    void *(*realloc)(void *ptr, size_t size, void *ctx);
    void (*free)(void *ptr, void *ctx);
    void *ctx;
} tg_allocator;
TG_API void tg_set_allocator(const tg_allocator *a);

#ifdef __cplusplus
}
#endif

#include "tapegrad/gradcheck.h" /* tg_gradcheck, tg_dot_write */
#include "tapegrad/nn.h"        /* parameters, layers, optimisers, data, checkpoints */
#include "tapegrad/fn.h"        /* function objects: record once, evaluate anywhere */

#endif /* TAPEGRAD_H */
