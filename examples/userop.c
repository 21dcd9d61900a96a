/*
 * A user-defined op, registered and recorded like a built-in one:
 * sqdiff(a, b) = (a - b)^2, elementwise, where b has a's shape or is a single
 * element that is broadcast over a. It shows what every user op must do
 * (docs/tutorial.md, "Your own op"):
 * - work in both dtypes: the kernels are written once over a type T and
 *   compiled for float and double, and pick the variant by the dtype of
 *   the argument views (tg_args) that forward and backward receive;
 * - check the inputs' shapes in the shape rule, which is the only place an
 *   op can refuse its input, since forward and backward cannot fail;
 * - in backward, *add* into each input's gradient that exists, and sum the
 *   gradient over the elements that a broadcast input was spread to, so that
 *   its gradient keeps its own shape;
 * - optionally, give the same derivative as ops (vjp), so that tg_grad() can
 *   differentiate through the op again (second derivatives).
 * The program checks the op against the same function built from built-in
 * ops, in float64 and float32, to first and second order, and against finite
 * differences.
 */
#include <math.h>
#include <stdio.h>
#include <tapegrad.h>

/* b is read at index i * step: step 1 for a b of a's shape, 0 for one element. */
static int64_t b_step(const tg_args *r) { return r->in[1].numel == 1 ? 0 : 1; }

/* The kernels for one element type T. They see the op's arguments as views
 * (tg_args: each one's dtype, shape, value and gradient memory). The
 * gradient of a broadcast b is summed in double, then added once: a float
 * running sum over a long tensor would lose digits. */
#define SQDIFF_KERNELS(T)                                                                \
    static void sqdiff_forward_##T(tg_args *r) {                                         \
        const T *a = r->in[0].value, *b = r->in[1].value;                                \
        T *y = r->out.value;                                                             \
        int64_t n = (int64_t)r->out.numel, step = b_step(r);                             \
        for (int64_t i = 0; i < n; i++) {                                                \
            T d = a[i] - b[i * step];                                                    \
            y[i] = d * d;                                                                \
        }                                                                                \
    }                                                                                    \
    static void sqdiff_backward_##T(tg_args *r) {                                        \
        const T *a = r->in[0].value, *b = r->in[1].value, *g = r->out.grad;              \
        T *ga = r->in[0].grad, *gb = r->in[1].grad; /* NULL: no gradient wanted */       \
        int64_t n = (int64_t)r->out.numel, step = b_step(r);                             \
        double bsum = 0;                                                                 \
        for (int64_t i = 0; i < n; i++) {                                                \
            T d = 2 * (a[i] - b[i * step]) * g[i]; /* d/da; d/db is its negative */      \
            if (ga) ga[i] += d;                                                          \
            if (gb && step) gb[i] -= d;                                                  \
            bsum += d;                                                                   \
        }                                                                                \
        if (gb && !step) gb[0] -= (T)bsum;                                               \
    }
SQDIFF_KERNELS(float)
SQDIFF_KERNELS(double)

static void sqdiff_forward(tg_args *r) {
    (r->out.dtype == TG_F64 ? sqdiff_forward_double : sqdiff_forward_float)(r);
}
static void sqdiff_backward(tg_args *r) {
    (r->out.dtype == TG_F64 ? sqdiff_backward_double : sqdiff_backward_float)(r);
}

/* The derivative recorded with ops, for tg_grad(): d/da = 2 (a - b) gout and
 * d/db its negative, summed back to b's one element when b was broadcast. */
static void sqdiff_vjp(tg_node *out, tg_node *gout, tg_node **gin) {
    tg_node *a = tg_node_input(out, 0), *b = tg_node_input(out, 1);
    tg_node *ga = tg_mul(tg_scale(tg_sub(a, b), 2), gout);
    if (tg_requires_grad(a)) gin[0] = ga;
    if (tg_requires_grad(b)) {
        int64_t sb[TG_MAX_DIMS];
        int nb = tg_shape(b, sb);
        gin[1] = tg_numel(b) == 1 ? tg_reshape(tg_sum(tg_neg(ga)), nb, sb) : tg_neg(ga);
    }
}

/* The output starts with a's dtype and shape, which is right; only b needs
 * checking (tg_apply has checked already that a and b share the dtype). */
static int sqdiff_shape(tg_node *out, char *why, size_t len) {
    const tg_node *a = tg_node_input(out, 0), *b = tg_node_input(out, 1);
    int64_t sa[TG_MAX_DIMS], sb[TG_MAX_DIMS];
    int na = tg_shape(a, sa), nb = tg_shape(b, sb), same = na == nb;
    for (int k = 0; same && k < na; k++) same = sa[k] == sb[k];
    if (same || tg_numel(b) == 1) return TG_OK;
    snprintf(why, len, "b must have a's shape or one element");
    return TG_ERR_SHAPE;
}

static const tg_op sqdiff = {.name = "sqdiff",
                             .arity = 2,
                             .shape = sqdiff_shape,
                             .forward = sqdiff_forward,
                             .backward = sqdiff_backward,
                             .vjp = sqdiff_vjp};

/* sum(w * sqdiff(a, b)) on tape t, or with built-in ops when builtin is set;
 * w weights the elements so that every gradient element differs. */
static tg_node *loss(tg_node *a, tg_node *b, tg_node *w, int builtin) {
    tg_node *d = builtin ? tg_mul(tg_sub(a, b), tg_sub(a, b)) : tg_apply(&sqdiff, a, b);
    return tg_sum(tg_mul(w, d));
}

/* A leaf of dtype dt holding the n doubles v (converted to float for
 * float32), with a gradient or without. */
static tg_node *leaf(tg_tape *t, tg_dtype dt, int ndim, const int64_t *shape, const double *v,
                     int n, int grad) {
    float f[6];
    for (int i = 0; i < n; i++) f[i] = (float)v[i];
    const void *data = dt == TG_F64 ? (const void *)v : f;
    return (grad ? tg_tensor : tg_input)(t, dt, ndim, shape, data);
}

/* The largest relative difference between the op and the built-in version,
 * over the value, both gradients (by tg_backward) and both rows of a
 * Hessian-vector product (by tg_hvp, through the vjp rules), in one dtype and
 * with b of nb (1 or 6) elements. */
static double compare(tg_dtype dt, int nb) {
    static const double av[6] = {0.5, -1.25, 2, 3.5, -0.75, 1}, bv[6] = {1, 0.25, -2, 3, 0, 0.5};
    static const double wv[6] = {1, 2, 3, 4, 5, 6};
    const int64_t shape[2] = {2, 3}, one[1] = {1};
    double got[2][1 + 2 * (6 + 6)] = {{0}}, worst = 0;
    for (int builtin = 0; builtin < 2; builtin++) {
        tg_tape *t = tg_tape_new();
        tg_node *a = leaf(t, dt, 2, shape, av, 6, 1), *w = leaf(t, dt, 2, shape, wv, 6, 0);
        tg_node *b = nb == 1 ? leaf(t, dt, 1, one, bv, 1, 1) : leaf(t, dt, 2, shape, bv, 6, 1);
        tg_node *f = loss(a, b, w, builtin);
        if (tg_backward(f)) {
            fprintf(stderr, "%s\n", tg_status_message(t));
            return INFINITY;
        }
        got[builtin][0] = tg_value_scalar(f);
        for (int i = 0; i < 6; i++) got[builtin][1 + i] = tg_grad_at(a, i);
        for (int i = 0; i < nb; i++) got[builtin][7 + i] = tg_grad_at(b, i);
        /* H v along v = (w, ones): second derivatives through the vjp rule
         * (v's parts must differ: along (w, w) the product is 0). */
        static const double ones[6] = {1, 1, 1, 1, 1, 1};
        tg_node *v[2] = {w, nb == 1 ? leaf(t, dt, 1, one, ones, 1, 0)
                                    : leaf(t, dt, 2, shape, ones, 6, 0)}, *hv[2];
        if (tg_hvp(f, 2, (tg_node *[]){a, b}, v, hv)) {
            fprintf(stderr, "%s\n", tg_status_message(t));
            return INFINITY;
        }
        for (int i = 0; i < 6; i++) got[builtin][13 + i] = tg_value_at(hv[0], i);
        for (int i = 0; i < nb; i++) got[builtin][19 + i] = tg_value_at(hv[1], i);
        tg_tape_free(t);
    }
    for (int i = 0; i < 25; i++) { /* a NaN is the worst, as fmax would drop it */
        double e = fabs(got[0][i] - got[1][i]) / fmax(1, fabs(got[1][i]));
        if (isnan(e) || e > worst) worst = e;
    }
    return worst;
}

static tg_node *build(tg_tape *t, tg_node *const *in, int n, void *ctx) {
    (void)t, (void)n, (void)ctx;
    return loss(in[0], in[1], in[2], 0);
}

int main(void) {
    tg_error err;
    if (tg_op_register_err(&sqdiff, &err)) {
        fprintf(stderr, "%s\n", err.message);
        return 1;
    }
    int bad = 0;
    const struct { tg_dtype dt; int nb; const char *what; double tol; } cases[] = {
        {TG_F64, 6, "float64, b of a's shape", 1e-15},
        {TG_F64, 1, "float64, b broadcast", 1e-15},
        {TG_F32, 6, "float32, b of a's shape", 1e-6},
        {TG_F32, 1, "float32, b broadcast", 1e-6},
    };
    for (int i = 0; i < 4; i++) {
        double d = compare(cases[i].dt, cases[i].nb);
        int ok = d <= cases[i].tol;
        bad |= !ok;
        printf("%s: %s vs (a-b)*(a-b), to second order, largest relative difference %.1e\n",
               ok ? "PASS" : "FAIL", cases[i].what, d);
    }

    /* Finite differences, in float64, with a broadcast b. */
    double av[6] = {0.5, -1.25, 2, 3.5, -0.75, 1}, bv[1] = {0.3}, wv[6] = {1, 2, 3, 4, 5, 6};
    tg_gradcheck_input in[3] = {
        {.dtype = TG_F64, .ndim = 2, .shape = {2, 3}, .data = av},
        {.dtype = TG_F64, .ndim = 0, .data = bv},
        {.dtype = TG_F64, .ndim = 2, .shape = {2, 3}, .data = wv, .no_grad = 1},
    };
    tg_gradcheck_report rep;
    if (tg_gradcheck(build, 3, in, NULL, NULL, &rep) != TG_OK) {
        fprintf(stderr, "gradcheck could not run: %s\n", rep.message);
        return 1;
    }
    bad |= !rep.passed;
    printf("%s: gradcheck, %lld derivatives, worst relative error %.1e\n",
           rep.passed ? "PASS" : "FAIL", (long long)rep.checked, rep.max_rel_err);

    /* A b of another shape is refused by the shape rule, on the tape. */
    tg_tape *t = tg_tape_new();
    tg_node *a = tg_tensor(t, TG_F64, 1, (const int64_t[]){3}, NULL);
    tg_node *b = tg_tensor(t, TG_F64, 1, (const int64_t[]){2}, NULL);
    tg_call("sqdiff", a, b);
    printf("refused: %s\n", tg_status_message(t));
    tg_tape_free(t);
    return bad;
}
