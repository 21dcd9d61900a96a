/*
 * tapegrad: function objects. Included by <tapegrad.h>, or on its own.
 *
 * A tg_fn is a function y = f(x) recorded once on a tape, with declared
 * input leaves (x: N elements in all) and output nodes (y: M elements),
 * then evaluated at any number of new points with no new recording: the
 * values, the gradient, J v (forward) and w^T J (reverse) for several
 * vectors at once, the dense Jacobian, H v and the dense Hessian. An
 * optimiser talks to it through flat double arrays:
 *
 *     static int rosen(tg_tape *t, const double *x, tg_node **in, tg_node **out,
 *                      void *ctx) {
 *         tg_node *a = in[0] = tg_scalar(t, x[0]), *b = in[1] = tg_scalar(t, x[1]);
 *         tg_node *u = tg_sub(tg_const(t, 1), a), *v = tg_sub(b, tg_mul(a, a));
 *         out[0] = tg_add(tg_mul(u, u), tg_scale(tg_mul(v, v), 100));
 *         return tg_status(t);
 *     }
 *     tg_fn *f = tg_fn_record(2, 1, rosen, NULL, (double[]){-1.2, 1}, &err);
 *     for (...) tg_fn_grad(f, x, &fx, g, &err);     x[2] in, fx and g[2] out
 *     tg_fn_free(f);
 *
 * What is recorded once. The function's nodes when the object is made. A
 * derivative driver records its derivative graph on the same tape at its
 * first use (tg_fn_hvp: the gradient graph of tg_grad() and its tangents
 * along 1 or 8 directions; tg_fn_jvp: the tangents of the outputs; a
 * reverse sweep of several outputs: their weighted sum) and afterwards only
 * replays it. Each evaluation replays just the parts of the tape it needs:
 * the function's positions when the point changes, then the derivative
 * graph's; reverse products (gradient, w^T J, reverse Jacobian rows) are
 * backward sweeps of the function's part. So after the first use of each
 * driver the tape neither grows (tg_tape_size, tg_tape_bytes) nor
 * allocates, whatever the number of evaluations.
 *
 * Points. x (N doubles, the inputs' elements in order, each input
 * row-major) is written into the input leaves (converted for float32
 * inputs); NULL means the point of the last evaluation. A point equal bit
 * for bit to the last one is not replayed again, so a gradient then a
 * Hessian at the same x cost one replay of the function.
 *
 * Branches. Some ops decide between branches: the comparisons (lt ... ne),
 * where, clamp, maximum, minimum, the max / min / argmax reductions, the
 * kinks of abs, relu, leaky_relu, elu and huber (and their derivative
 * ops), and the steps sign, floor, ceil and round. Their decisions at the
 * recording point (which side of each comparison every element took) are
 * kept, and each new point's are compared with them. The recorded graph
 * re-evaluates where, abs, maximum... at the new point by itself; what it
 * cannot see is a branch taken in C on a value read while recording
 * ("if (tg_value_scalar(x) > 0) ... else ..."). Record that decision as a
 * comparison node (tg_gt(x, zero)) and a flip is noticed. When decisions
 * differ (the mode below): TG_ERR_BRANCH, the message and
 * tg_fn_branch_changes() saying how many elements and which nodes; or a
 * re-recording at the new point by the recorder (tg_fn_record), after
 * which the evaluation proceeds on the new tape; or nothing (checks off).
 *
 * Errors. Every call returns TG_OK or a tg_status_code and, when err is not
 * NULL, fills it (tapegrad/nn.h's convention; cleared on success): NULL
 * arguments (TG_ERR_NULL), a size out of range (TG_ERR_ARG), a driver that
 * needs one output element on a function of more (TG_ERR_SHAPE), the
 * tape's own errors (its status, e.g. TG_ERR_NOMEM or TG_ERR_NUMERIC, with
 * its message), a tape reset or rewound behind the object's back
 * (TG_ERR_STATE), TG_ERR_BRANCH. A failed evaluation leaves the caller's
 * output arrays unspecified; a failure while a driver records its graph
 * (out of memory) takes the tape back to where it was, so the call can be
 * tried again.
 *
 * Threads. As a tape: a tg_fn and its tape are used by one thread at a
 * time; distinct objects (each on its own tape) may be used from distinct
 * threads at once. For a parallel loop, make one object per thread.
 */
#ifndef TAPEGRAD_FN_H
#define TAPEGRAD_FN_H

#include <stddef.h>

#include "tapegrad.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct tg_fn tg_fn;
struct tg_error;

/* Records the function on the fresh tape t at the point x: makes the input
 * leaves into in[0..nin) (any leaves that want a gradient: tg_scalar,
 * tg_tensor, tg_view with a gradient buffer; float64 or float32; the
 * compact scalar tape or 64-byte nodes as the recorder chooses with
 * tg_set_scalar_tape), with the elements of x as their values in order,
 * and the nodes of the function into out[0..nout). Returns TG_OK (or
 * tg_status(t)); any other value makes the call that recorded fail with
 * that code. ctx is the caller's, passed back unchanged. */
typedef int (*tg_fn_recorder)(tg_tape *t, const double *x, tg_node **in, tg_node **out,
                              void *ctx);

/* A function object that owns its tape, recorded by rec at x (the N
 * elements its inputs will have). The recorder is kept for re-recording
 * (tg_fn_retape, and the default branch mode TG_FN_BRANCH_RETAPE); each
 * recording must give inputs and outputs of the same number, shapes and
 * dtypes (else TG_ERR_SHAPE). NULL on failure (err says why: NULL rec or
 * x, nin or nout < 1, inputs that are not leaves wanting a gradient or are
 * listed twice, an output on another tape, what the recorder returned). */
TG_API tg_fn *tg_fn_record(int nin, int nout, tg_fn_recorder rec, void *ctx, const double *x,
                           struct tg_error *err);

/* A function object over nodes already recorded on the caller's tape: the
 * leaves in[0..nin) (wanting a gradient, each once) and the outputs
 * out[0..nout), all of one tape, whose current values are the recording
 * point. The tape stays the caller's (free it after tg_fn_free) but the
 * object uses it while it lives: it writes the inputs' values, replays
 * nodes, sweeps gradients (it zeroes the inputs' gradients, a tg_view
 * input's buffer included; a leaf that wants a gradient and is not an
 * input accumulates its part as under tg_backward: record it as a
 * constant or declare it an input) and appends its derivative graphs.
 * Recording more on the tape is allowed; tg_tape_reset() or
 * tg_tape_rewind() of it (including the dense drivers tg_hessian and
 * tg_jacobian, which rewind) makes every later call fail with
 * TG_ERR_STATE. The branch mode starts at TG_FN_BRANCH_FAIL (there is no
 * recorder). NULL on failure (err says why). */
TG_API tg_fn *tg_fn_adopt(int nin, tg_node *const *in, int nout, tg_node *const *out,
                          struct tg_error *err);

/* Frees the object (and the tape it owns; an adopted tape is left to the
 * caller, with the derivative graphs the object recorded on it). NULL is a
 * no-op. */
TG_API void tg_fn_free(tg_fn *f);

/* N, the number of input elements; M, of output elements (0 for NULL). */
TG_API size_t tg_fn_inputs(const tg_fn *f);
TG_API size_t tg_fn_outputs(const tg_fn *f);

/* The tape the object evaluates on (it changes when the object re-records),
 * and its input / output nodes, for reading shapes or DOT pictures. NULL
 * for NULL or an index out of range. */
TG_API tg_tape *tg_fn_tape(const tg_fn *f);
TG_API tg_node *tg_fn_input(const tg_fn *f, int i);
TG_API tg_node *tg_fn_output(const tg_fn *f, int i);

/* --------------------------------------------------------- evaluation -- */
/* x: N doubles or NULL (the last point). Results are row-major doubles. */

/* y[M]: the outputs' elements in order. */
TG_API int tg_fn_eval(tg_fn *f, const double *x, double *y, struct tg_error *err);

/* The gradient g[N] of a function of one output element, and its value
 * into *fx when fx is not NULL: one backward sweep. */
TG_API int tg_fn_grad(tg_fn *f, const double *x, double *fx, double *g, struct tg_error *err);

/* Forward products: jv[j*M .. j*M+M) = J v_j for the k directions
 * v[j*N .. j*N+N), k >= 1. Tangents along 1 direction, or 8 at a time,
 * recorded once. */
TG_API int tg_fn_jvp(tg_fn *f, const double *x, int k, const double *v, double *jv,
                     struct tg_error *err);

/* Reverse products: wj[j*N .. j*N+N) = w_j^T J for the k weight vectors
 * w[j*M .. j*M+M), k >= 1: one backward sweep each. */
TG_API int tg_fn_vjp(tg_fn *f, const double *x, int k, const double *w, double *wj,
                     struct tg_error *err);

/* The dense Jacobian, jac[M*N] row-major: M backward sweeps when M <= N,
 * else forward products 8 columns a replay. */
TG_API int tg_fn_jacobian(tg_fn *f, const double *x, double *jac, struct tg_error *err);

/* Hessian-vector products of a function of one output element:
 * hv[j*N .. j*N+N) = H v_j for the k directions v[j*N ..), k >= 1, forward
 * over reverse (the tangents of the recorded gradient), 1 or 8 directions
 * a replay. */
TG_API int tg_fn_hvp(tg_fn *f, const double *x, int k, const double *v, double *hv,
                     struct tg_error *err);

/* The dense Hessian h[N*N] of a function of one output element: H v along
 * unit vectors, 8 columns a replay; where an entry comes out infinite or
 * NaN (an infinite second derivative, which forward mode multiplies by the
 * zero tangents of other entries, as in tg_hessian), the rows are swept in
 * reverse instead, one backward sweep of the recorded gradient per row. */
TG_API int tg_fn_hessian(tg_fn *f, const double *x, double *h, struct tg_error *err);

/* ----------------------------------------------------------- branches -- */

typedef enum tg_fn_branch_mode {
    TG_FN_BRANCH_FAIL,   /* TG_ERR_BRANCH at a point whose decisions differ */
    TG_FN_BRANCH_RETAPE, /* re-record there with the recorder, then go on */
    TG_FN_BRANCH_IGNORE  /* no check: the recorded graph as it is */
} tg_fn_branch_mode;

/* Sets the mode (TG_FN_BRANCH_RETAPE needs a recorder: TG_ERR_ARG
 * otherwise, as for a mode out of range). */
TG_API int tg_fn_set_branch_mode(tg_fn *f, tg_fn_branch_mode mode, struct tg_error *err);

/* The branch decisions of the last point whose function was replayed,
 * against the recording: returns the number of nodes of which at least
 * one element decided otherwise (0: the same branches, and after a
 * re-recording, which makes the point the recording's), writes the number of such elements into
 * *elements when it is not NULL, and the tape positions of the first
 * min(cap, count) such nodes into nodes (tg_tape_node(tg_fn_tape(f), p),
 * tg_node_op_name() name them). */
TG_API size_t tg_fn_branch_changes(const tg_fn *f, size_t *elements, size_t *nodes,
                                   size_t cap);

/* The number of decision elements recorded (0: the function has no
 * branches), and the number of re-recordings made so far. */
TG_API size_t tg_fn_decisions(const tg_fn *f);
TG_API size_t tg_fn_retapes(const tg_fn *f);

/* Re-records the function at x (NULL: the last point) with its recorder,
 * on a new tape that replaces the old one once the recording succeeded
 * (on failure the old one stays, and err says why); the derivative graphs
 * are recorded again at their next use. TG_ERR_STATE for an adopted
 * function (no recorder: record it again and adopt that). */
TG_API int tg_fn_retape(tg_fn *f, const double *x, struct tg_error *err);

#ifdef __cplusplus
}
#endif

#endif /* TAPEGRAD_FN_H */
