/*
 * tapegrad: gradient checking. Included by <tapegrad.h>.
 *
 * tg_gradcheck() compares the gradients a tape computes with central finite
 * differences computed in float64, for any function the caller can build
 * from tapegrad ops:
 *
 *     static tg_node *f(tg_tape *t, tg_node *const *in, int n, void *ctx) {
 *         (void)t, (void)n, (void)ctx;
 *         return tg_sum(tg_mul(tg_tanh(in[0]), in[1]));   any graph of the inputs
 *     }
 *     ...
 *     tg_gradcheck_input in[2] = {{TG_F64, 1, {3}, a}, {TG_F64, 1, {3}, b}};
 *     tg_gradcheck_report rep;
 *     if (tg_gradcheck(f, 2, in, NULL, NULL, &rep) != TG_OK)
 *         fprintf(stderr, "could not check: %s\n", rep.message);
 *     else if (!rep.passed)
 *         fprintf(stderr, "input %d [%lld]: analytic %g, numeric %g\n", rep.worst.input,
 *                 (long long)rep.worst.index, rep.worst.analytic, rep.worst.numeric);
 *
 * docs/gradcheck.md explains the numbers and how to choose eps. Nothing here
 * prints (but tg_gradcheck_print, when asked), aborts or keeps state between
 * calls; distinct calls may run on distinct threads at once.
 */
#ifndef TAPEGRAD_GRADCHECK_H
#define TAPEGRAD_GRADCHECK_H

#include <stdint.h>
#include <stdio.h>

#include "tapegrad.h"
#include "tapegrad/dot.h" /* tg_dot_write: pictures of a tape */

#ifdef __cplusplus
extern "C" {
#endif

/*
 * The function under test. It receives a fresh float64 tape t and one leaf
 * per tg_gradcheck_input, in order (inputs[i] has the input's shape, dtype
 * TG_F64, and wants a gradient unless the input is no_grad), and returns the
 * output node, of any shape, built on t from those leaves. It may create
 * constants and other leaves on t, and must build the same graph every time
 * it is called (it is called once at the point and twice or more for every
 * input element, each time on a reset tape). To fail, it records an error on
 * t (tg_fail(), or any op that fails) or returns NULL; the check then stops
 * and reports that error. ctx is the pointer given to tg_gradcheck().
 */
typedef tg_node *(*tg_gradcheck_build)(tg_tape *t, tg_node *const *inputs, int n, void *ctx);

/* One input of the function: a tensor given by dtype, shape and data. */
typedef struct tg_gradcheck_input {
    tg_dtype dtype;              /* of data; float32 data is promoted to float64 */
    int ndim;                    /* 0 (a scalar) to TG_MAX_DIMS */
    int64_t shape[TG_MAX_DIMS];  /* the first ndim entries, each >= 1 */
    const void *data;            /* numel values of dtype; read, never kept */
    int no_grad;                 /* non-zero: a constant (made with tg_input()), not checked */
} tg_gradcheck_input;

/* One compared pair: d(row)/d(element) by the tape and by finite differences. */
typedef struct tg_gradcheck_elem {
    int input;          /* which input (0-based); -1 when nothing was compared */
    int64_t index;      /* the element of that input, flat in row-major order */
    int64_t row;        /* the output element, or the random projection (see projected) */
    double analytic;    /* the tape's gradient */
    double numeric;     /* the central difference (f(x+h) - f(x-h)) / 2h */
    double abs_err;     /* |analytic - numeric| */
    double rel_err;     /* abs_err / |numeric| (0 when both are 0, inf when only numeric is) */
    int ok;             /* within tolerance; at a kink: between the one-sided slopes */
    int kink;           /* the function is not differentiable here (see tg_gradcheck_report) */
    double left, right; /* at a kink, the one-sided slopes (f(x) - f(x-h)) / h and
                           (f(x+h) - f(x)) / h; 0 elsewhere */
} tg_gradcheck_elem;

/* Options. Start from tg_gradcheck_defaults() and change what you need;
 * passing NULL to tg_gradcheck() means the defaults. */
typedef struct tg_gradcheck_opts {
    double eps;           /* step h of the differences (absolute); default 1e-6, > 0 */
    double atol, rtol;    /* an element passes when |a - n| <= atol + rtol*|n|;
                             defaults 1e-5 and 1e-3 (PyTorch's), each >= 0 */
    uint64_t seed;        /* seed of the random projection vectors */
    int64_t max_jacobian; /* outputs of at most this many elements are checked
                             element by element (the full Jacobian); default 16 */
    int projections;      /* larger outputs: this many random projections v,
                             checking d(v.f)/dx; default 4, >= 1 */
    /* Optional: when entries is non-NULL, the first max_entries compared pairs
     * are stored there, row-major: entry r * report.elements + k is row r and
     * checked element k (elements counted across inputs, no_grad skipped). */
    tg_gradcheck_elem *entries;
    int64_t max_entries;
} tg_gradcheck_opts;

/* What the check found. Every field is set by every call that is given a
 * report, including calls that fail. */
typedef struct tg_gradcheck_report {
    int status;            /* TG_OK, or why the check could not run (also returned) */
    char message[256];     /* the reason when status != TG_OK; when the check ran and
                              failed, what failed and where ("4 of 7 entries disagree;
                              worst input 1 [1], row 0: analytic 2, numeric 1"); else "" */
    int passed;            /* 1 when the check ran and every compared pair is ok */
    int64_t rows;          /* output elements checked, or projections when projected */
    int projected;         /* 1 when the output was larger than max_jacobian */
    int64_t outputs;       /* elements of the function's output */
    int64_t elements;      /* input elements checked (no_grad inputs excluded) */
    int64_t checked;       /* compared pairs: rows * elements (tg_gradgradcheck: plus
                              the recorded gradient's elements, when compared) */
    int64_t failed;        /* pairs that are not ok (grad_mismatches included) */
    int64_t evaluations;   /* times the function was built */
    double value;          /* the output's first element at the point */
    double max_abs_err;    /* over the pairs compared against the central difference */
    double max_rel_err;
    /* The pair furthest outside its tolerance (the largest
     * |a - n| / (atol + rtol*|n|)); when every pair is ok, the one closest to
     * its limit. worst.input is -1 when nothing was compared. */
    tg_gradcheck_elem worst;
    /* Kinks: points where the one-sided slopes (f(x+h) - f(x))/h and
     * (f(x) - f(x-h))/h disagree by more than the tolerance and the
     * disagreement does not shrink in proportion to h (as curvature would):
     * relu or abs at 0, a max, a step. Such a pair is ok when the analytic
     * value lies between the two slopes (a one-sided derivative or a
     * subgradient). */
    int64_t kinks;             /* pairs at a kink */
    tg_gradcheck_elem first_kink; /* the first of them; input -1 when none */
    /* tg_gradgradcheck: elements of the gradient recorded by tg_grad() whose
     * value differs from the backward kernels' (0 for tg_gradcheck). */
    int64_t grad_mismatches;
} tg_gradcheck_report;

/* The default options: eps 1e-6, atol 1e-5, rtol 1e-3, max_jacobian 16,
 * projections 4, a fixed seed, no entries. */
TG_API tg_gradcheck_opts tg_gradcheck_defaults(void);

/*
 * Checks the gradients of build's output with respect to its ninputs inputs
 * at the point they give.
 *
 * The analytic side builds the function once on a float64 tape and sweeps it
 * backward once per row: with each unit seed when the output has at most
 * opts->max_jacobian elements (so every entry of the Jacobian is compared),
 * else with opts->projections random vectors v (d(v.f)/dx is compared, which
 * a wrong Jacobian fails with probability 1). A unit seed is weighted by a
 * random w in {-1, 1/2, -1/2} (from opts->seed) and the derivatives divided
 * back by w, exactly: so a backward rule that ignores its upstream gradient
 * fails even when every upstream element is 1, as inside sum(op(x)). The numeric side rebuilds the
 * function with each checked element moved by +h and -h and takes central
 * differences; the step actually represented in float64 is used.
 * Cost: 1 + 2 * elements builds, plus 4 for each element at a suspected
 * kink, and one backward sweep per row.
 *
 * Returns TG_OK when the check ran (the verdict is report->passed), or an
 * error code, also stored with a message in report->status and ->message:
 * TG_ERR_NULL (build, report, inputs with ninputs > 0, or an input's data
 * NULL; or build returned NULL), TG_ERR_ARG (ninputs < 0, a bad option, or
 * eps below the spacing of doubles at the point), TG_ERR_DTYPE /
 * TG_ERR_SHAPE (a bad input; or the output's size changed from one build to
 * another), TG_ERR_TAPE (build returned a node of another tape),
 * TG_ERR_NUMERIC (the output is not finite at the point), TG_ERR_NOMEM, or
 * the status build recorded on its tape, with its message prefixed by where
 * it happened ("build failed with input 0 [3] moved by +1e-06: ..."). report may not be NULL (else
 * TG_ERR_NULL is returned and nothing is written). The caller owns
 * everything it passes; nothing is kept after the call.
 */
TG_API int tg_gradcheck(tg_gradcheck_build build, int ninputs, const tg_gradcheck_input *inputs,
                        void *ctx, const tg_gradcheck_opts *opts, tg_gradcheck_report *report);

/*
 * Checks second derivatives: for a build whose output has one element,
 * compares the derivatives of its gradient, recorded by tg_grad() and swept
 * backward (the Hessian), with central differences of the gradient in
 * float64. With one input that wants a gradient the gradient itself is the
 * checked output (the whole Hessian when it has at most opts->max_jacobian
 * elements, else random projections); with several, the projection
 * sum_k sum(g_k * w_k) with fixed random w (opts->seed), so H w is checked
 * for every input element. When that passes, the recorded gradient's values
 * are also compared with the backward kernels' gradient at the point (same
 * tolerances; a mismatch clears passed, counts each differing element in
 * grad_mismatches and failed, sets worst with row -1, analytic = recorded,
 * numeric = kernel, and says so in message), since a rule wrong by a constant factor has a
 * consistent derivative. The report and errors are tg_gradcheck()'s; in
 * addition a build whose output has more than one element is TG_ERR_SHAPE,
 * and an op without a vjp rule on the path is TG_ERR_STATE naming it.
 * Cost: tg_gradcheck()'s, each build also recording the gradient.
 */
TG_API int tg_gradgradcheck(tg_gradcheck_build build, int ninputs,
                            const tg_gradcheck_input *inputs, void *ctx,
                            const tg_gradcheck_opts *opts, tg_gradcheck_report *report);

/* A scalar function of n doubles, and its gradient (written to grad[n]),
 * for tg_gradcheck_fn(). */
typedef double (*tg_gradcheck_f)(const double *x, int64_t n, void *ctx);
typedef void (*tg_gradcheck_df)(const double *x, int64_t n, double *grad, void *ctx);

/*
 * Checks a hand-written gradient: compares grad(x) with central differences
 * of f at x (n doubles, not modified; the functions see a private copy). The
 * report is as for tg_gradcheck() with one input of shape [n] and one row.
 * Returns TG_OK when the check ran, TG_ERR_NULL (f, grad, report, or x with
 * n > 0), TG_ERR_ARG (n < 0 or a bad option), TG_ERR_NUMERIC (f(x) not
 * finite) or TG_ERR_NOMEM.
 */
TG_API int tg_gradcheck_fn(tg_gradcheck_f f, tg_gradcheck_df grad, int64_t n, const double *x,
                           void *ctx, const tg_gradcheck_opts *opts,
                           tg_gradcheck_report *report);

/*
 * Prints report on out as `tapegrad check` prints its verdict: when opts
 * gives entries, a table of them (one line each, "row R, input I [J]",
 * analytic, numeric, abs error, ok or FAIL), the entries at a kink apart
 * below it with their one-sided slopes and a line saying why the central
 * difference does not count there; then one line, "PASS: N entries agree
 * within ATOL + RTOL * |numeric| (eps H)", "FAIL: F of N entries disagree
 * ...; worst ...", "FAIL: the gradient tg_grad records disagrees with the
 * backward kernels' ..." or "ERROR: the check could not run: MESSAGE".
 * opts is the one given to the check (NULL: the defaults, no entries).
 * Returns 0, or -1 when out is NULL or a write failed.
 */
TG_API int tg_gradcheck_print(FILE *out, const tg_gradcheck_report *report,
                              const tg_gradcheck_opts *opts);

#ifdef __cplusplus
}
#endif

#endif
