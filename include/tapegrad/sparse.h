/*
 * Sparse Jacobians and Hessians (src/drivers/sparsity.c, src/drivers/coloring.c,
 * src/drivers/sparse.c).
 *
 * A tg_sparse is made once for a recorded function: its sparsity pattern
 * is found on the recording, its columns are coloured, and the compressed
 * evaluation (one tangent direction per colour) is recorded on the tape.
 * Each tg_sparse_eval() then gives the nonzeros at the tape's current leaf
 * values: write new values into the leaves (tg_value()) and call it; it
 * replays the tape, records nothing and allocates nothing. A solver reads
 * the pattern once (tg_sparse_info, tg_sparse_triplets) and the values at
 * every iterate.
 *
 *     tg_sparse *jac;
 *     if (tg_sparse_jacobian_new(c, 1, &x, &jac)) error(tg_status_message(t));
 *     tg_sparse_info info;  tg_sparse_info_get(jac, &info);   pattern, CSR
 *     ... write x ..., tg_sparse_eval(jac, values);           info.nnz values
 *     tg_sparse_free(jac);
 *
 * The pattern is conservative: an entry it leaves out is zero at every
 * point, whatever the leaf values; an entry it keeps may be zero at some
 * points (mul(x, 0) keeps x's column, a max keeps every element of its
 * run). Each op's dependency structure is stated by its family:
 * elementwise ops (broadcasting included), reductions and softmax along
 * their runs, matmul, the shape and indexing ops; an op not stated (the
 * losses, user ops) is taken as dense over its inputs, and an op whose
 * derivative is zero (comparisons, steps, argmax) passes nothing. The
 * structure depends on the recorded indices (index_select, slice): an
 * evaluation after those are overwritten keeps the old pattern.
 *
 * Cost: a Jacobian takes as many tangent directions as colours, which the
 * column colouring keeps near the largest number of nonzeros in a row (a
 * lower bound); a Hessian as many Hessian-vector products (forward over
 * reverse on the gradient recorded once) as its star colouring has colours.
 * Up to 32 directions are recorded at once and evaluated by one replay of
 * the tape; more are evaluated 16 at a time, replaying only what the
 * directions recorded. The tape keeps what is recorded for the object (the
 * gradient, the tangents): every later tg_forward() replays it too.
 *
 * wrt nodes may be leaves or interior nodes (each is then a seed: the
 * derivative with respect to its value, as tg_jvp() takes it), but none may
 * depend on another: forward seeds would give the derivative holding the
 * inner one fixed, tg_grad() the total through it, so the call refuses.
 *
 * Lifetime: the object's nodes live on the tape; tg_tape_reset(), or a
 * rewind to a mark taken before the object was made, ends it (its calls
 * then fail with TG_ERR_STATE, except tg_sparse_free(), which the caller
 * still owes). As for node handles, what cannot always be detected is a
 * tape recorded again as far after such a reset: the object then checks
 * that its direction nodes are leaves of their size (never writing past
 * them) but may read other nodes' values; make objects again after a
 * reset. One object, like its tape, is for one thread at a time.
 *
 * Errors: the functions return the tape's status, and a message on the
 * tape names the call and the fault: TG_ERR_NULL (a NULL argument),
 * TG_ERR_ARG (n < 1, a wrt node that wants no gradient, a wrt node that
 * depends on another wrt node, an f of more than one element, more than
 * 2^31 - 1 rows or columns, an object of the other kind), TG_ERR_TAPE (nodes of two tapes), TG_ERR_STATE (a stale node or
 * object), TG_ERR_NOMEM. A NULL object gives TG_ERR_NULL and touches no
 * tape. On failure *sp is NULL.
 */
#ifndef TAPEGRAD_SPARSE_H
#define TAPEGRAD_SPARSE_H

#include "../tapegrad.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct tg_sparse tg_sparse;

/* The pattern and the cost of an object. For a Hessian the pattern is the
 * lower triangle (col <= row), as Ipopt takes it. Rows and columns are
 * the elements of the output(s) and of wrt[0..n) in order, each node's
 * elements row-major. The arrays are the object's, valid until it is
 * freed. */
typedef struct tg_sparse_info {
    int64_t rows, cols, nnz;
    const int64_t *row_start; /* rows + 1 entries; row r is [row_start[r], row_start[r+1]) */
    const int32_t *col;       /* nnz column indices, increasing within a row */
    int colors;               /* tangent directions per evaluation */
    int64_t max_row_nnz;      /* the most nonzeros in a row of the full matrix: a lower
                                 bound for colors */
} tg_sparse_info;

/* The sparse Jacobian of out (any shape) with respect to wrt[0..n): rows
 * are out's elements. Column colouring, forward mode. */
TG_API int tg_sparse_jacobian_new(tg_node *out, int n, tg_node *const *wrt, tg_sparse **sp);

/* The sparse Hessian of the one-element out with respect to wrt[0..n)
 * (lower triangle). Star colouring, Hessian-vector products. */
TG_API int tg_sparse_hessian_new(tg_node *out, int n, tg_node *const *wrt, tg_sparse **sp);

/* The Hessian of the Lagrangian sigma f + sum_i lambda_i c_i with respect
 * to wrt[0..n) (lower triangle), sigma and lambda given at each
 * evaluation (tg_sparse_eval_lagrangian). f has one element; c any shape
 * (lambda has its numel entries). Either may be NULL (not both). The
 * pattern is that of every term, whatever sigma and lambda. */
TG_API int tg_sparse_lagrangian_new(tg_node *f, tg_node *c, int n, tg_node *const *wrt,
                                    tg_sparse **sp);

/* Fills *info (see tg_sparse_info). TG_ERR_NULL for a NULL argument. */
TG_API int tg_sparse_info_get(const tg_sparse *sp, tg_sparse_info *info);

/* The pattern as coordinates: rows[k], cols[k] of the k-th nonzero, in
 * the order of the values (CSR order), as 32-bit indices (Ipopt's Index).
 * rows and cols hold info.nnz entries each, the caller's. */
TG_API int tg_sparse_triplets(const tg_sparse *sp, int32_t *rows, int32_t *cols);

/* The nonzeros at the tape's current leaf values into values[0..nnz), in
 * the pattern's order (float64). A Lagrangian's object evaluates with
 * sigma = 1 and lambda = 0. The values of every node of the tape are
 * replayed (as by tg_forward()), so the outputs' values are current too. */
TG_API int tg_sparse_eval(tg_sparse *sp, double *values);

/* As tg_sparse_eval() for a Lagrangian's object: sigma and lambda (numel(c)
 * entries; NULL only when c was NULL) weigh the terms. TG_ERR_ARG for an
 * object that is not a Lagrangian's. */
TG_API int tg_sparse_eval_lagrangian(tg_sparse *sp, double sigma, const double *lambda,
                                     double *values);

/* Frees the object (not its nodes, which are the tape's). NULL is a no-op. */
TG_API void tg_sparse_free(tg_sparse *sp);

#ifdef __cplusplus
}
#endif

#endif /* TAPEGRAD_SPARSE_H */
