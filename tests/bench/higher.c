/*
 * H2: the targets of issue 12 for second derivatives and forward mode, each
 * against the first-order work it is measured by, recorded afresh each call
 * (define-by-run, as PyTorch does), float64, one thread:
 *   a  W1's loss, a 784-100-10 sigmoid network with biases, quadratic cost
 *      (tg_mse), batch 128, random data: function + gradient (tg_backward)
 *      against function + Hessian-vector product in all four parameters
 *      (tg_hvp). Target: hvp <= 4x gradient.
 *   b  W2's function f(x) = sum_{i<n-1} (x_i x_{i+1} + sin(x_i) exp(-x_{i+1}))
 *      on one [n] tensor (n = 10^6) through two tg_slice views: the function
 *      recorded on the tape against the function + tg_jvp along a random v.
 *      Target: jvp <= 2.5x function.
 *   d  the same function at n = 10^5 along k = 8 random directions: the
 *      tangents by one tg_jvp_many against 8 tg_jvp calls, each side timed
 *      with the function and reported less the function's own time.
 *      Target: vector form <= 0.5x the single passes.
 *   c  the Rosenbrock sum of 100 variables,
 *      sum_{i<99} 100 (x_{i+1} - x_i^2)^2 + (1 - x_i)^2, through slices:
 *      function + gradient against function + dense Hessian (tg_hessian).
 *      Target: Hessian <= 100x gradient (and >= 2x faster than PyTorch's,
 *      tests/bench/peers/torch_higher.py).
 * Each sample times INNER calls (so that the short ones are long enough to
 * time), the two sides of a ratio taking turns sample by sample; after two
 * warm-up samples, prints one key=value line per workload with the median
 * per call over the samples, the range (min-max) and the ratio of the
 * medians.
 *   usage: higher [samples]
 */
#include <stdio.h>
#include <stdlib.h>
#include <tapegrad.h>
#include <time.h>

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static int cmp(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static unsigned long long rng = 7;
static double uniform(void) { /* xorshift64*, [-0.5, 0.5) */
    rng ^= rng >> 12, rng ^= rng << 25, rng ^= rng >> 27;
    return (double)((rng * 2685821657736338717ULL) >> 11) * 0x1.0p-53 - 0.5;
}

static double *randoms(size_t n, double scale) {
    double *p = malloc(n * sizeof *p);
    if (!p) exit(1);
    for (size_t i = 0; i < n; i++) p[i] = scale * uniform();
    return p;
}

static void check(tg_tape *t) {
    if (tg_status(t)) {
        fprintf(stderr, "higher: %s\n", tg_status_message(t));
        exit(1);
    }
}

/* ---- a: W1's loss ---- */
enum { B = 128, D0 = 784, D1 = 100, D2 = 10 };
static double *ax, *ay, *ap[4], *av[4];
static const int64_t ashape[4][2] = {{D0, D1}, {1, D1}, {D1, D2}, {1, D2}};

static double run_a(tg_tape *t, int hvp) {
    tg_tape_reset(t);
    const int64_t sx[2] = {B, D0}, sy[2] = {B, D2};
    tg_node *x = tg_input(t, TG_F64, 2, sx, ax), *y = tg_input(t, TG_F64, 2, sy, ay), *p[4];
    for (int i = 0; i < 4; i++) p[i] = tg_tensor(t, TG_F64, 2, ashape[i], ap[i]);
    tg_node *h = tg_sigmoid(tg_add(tg_matmul(x, p[0]), p[1]));
    tg_node *f = tg_mse(tg_sigmoid(tg_add(tg_matmul(h, p[2]), p[3])), y);
    double r = tg_value_scalar(f);
    if (hvp) {
        tg_node *v[4], *hv[4];
        for (int i = 0; i < 4; i++) v[i] = tg_input(t, TG_F64, 2, ashape[i], av[i]);
        tg_hvp(f, 4, p, v, hv);
        r += tg_value_at(hv[0], 0);
    } else {
        tg_backward(f);
        r += tg_grad_at(p[0], 0);
    }
    check(t);
    return r;
}

/* ---- b: W2's function, forward mode ---- */
enum { N = 1000000 };
static double *bx, *bv;

/* W2's function of a leaf x of n elements, recorded on a reset t. */
static tg_node *w2(tg_tape *t, const double *data, int64_t n, tg_node **x) {
    tg_tape_reset(t);
    *x = tg_tensor(t, TG_F64, 1, &n, data);
    tg_node *a = tg_slice(*x, 0, 0, n - 1), *b = tg_slice(*x, 0, 1, n - 1);
    return tg_sum(tg_add(tg_mul(a, b), tg_mul(tg_sin(a), tg_exp(tg_neg(b)))));
}

static double run_b(tg_tape *t, int jvp) {
    const int64_t s[1] = {N};
    tg_node *x, *f = w2(t, bx, N, &x);
    double r = tg_value_scalar(f);
    if (jvp) {
        tg_node *v = tg_input(t, TG_F64, 1, s, bv), *jv;
        tg_jvp(f, 1, &x, &v, &jv);
        r += tg_value_scalar(jv);
    }
    check(t);
    return r;
}

/* ---- d: W2's function, k tangents at once against k single ones ---- */
enum { ND = 100000, KD = 8 };
static double *dx, *dv[KD];

/* what: 0 the function alone, 1 with KD tg_jvp calls, 2 with tg_jvp_many. */
static double run_d(tg_tape *t, int what) {
    const int64_t s[1] = {ND};
    tg_node *x, *f = w2(t, dx, ND, &x);
    double r = tg_value_scalar(f);
    if (what) {
        tg_node *v[KD], *jv[KD];
        for (int j = 0; j < KD; j++) v[j] = tg_input(t, TG_F64, 1, s, dv[j]);
        if (what == 1)
            for (int j = 0; j < KD; j++) tg_jvp(f, 1, &x, &v[j], &jv[j]);
        else
            tg_jvp_many(f, 1, &x, KD, v, jv);
        for (int j = 0; j < KD; j++) r += tg_value_scalar(jv[j]);
    }
    check(t);
    return r;
}

/* ---- c: the Rosenbrock sum, dense Hessian ---- */
enum { M = 100 };
static double cx[M], ch[M * M];

static double run_c(tg_tape *t, int hess) {
    tg_tape_reset(t);
    const int64_t s[1] = {M};
    tg_node *x = tg_tensor(t, TG_F64, 1, s, cx);
    tg_node *a = tg_slice(x, 0, 0, M - 1), *b = tg_slice(x, 0, 1, M - 1);
    tg_node *f = tg_sum(tg_add(tg_scale(tg_square(tg_sub(b, tg_square(a))), 100),
                               tg_square(tg_sub(tg_const(t, 1), a))));
    double r = tg_value_scalar(f);
    if (hess) {
        tg_hessian(f, 1, &x, ch);
        r += ch[0];
    } else {
        tg_backward(f);
        r += tg_grad_at(x, 0);
    }
    check(t);
    return r;
}

typedef double (*run_fn)(tg_tape *, int);

/* Median, min and max seconds per call of run(t, w) for each of the nw
 * variants w = what[i] (out[i]), over samples of inner[i] calls each, after
 * two warm-up samples. The variants take turns sample by sample, so that a
 * change of the machine's load falls on all of them alike. */
static double sink;
enum { MAX_VARIANTS = 3 };
static void measure(tg_tape *t, run_fn run, int nw, const int *what, const int *inner,
                    int samples, double out[][3]) {
    double *ts = malloc((size_t)(nw * samples) * sizeof *ts);
    if (!ts) exit(1);
    for (int s = -2; s < samples; s++)
        for (int i = 0; i < nw; i++) {
            double t0 = now();
            for (int k = 0; k < inner[i]; k++) sink += run(t, what[i]);
            if (s >= 0) ts[i * samples + s] = (now() - t0) / inner[i];
        }
    for (int i = 0; i < nw; i++) {
        double *v = ts + i * samples;
        qsort(v, (size_t)samples, sizeof *v, cmp);
        out[i][0] = v[samples / 2], out[i][1] = v[0], out[i][2] = v[samples - 1];
    }
    free(ts);
}

static void report(const char *wl, const char *k0, const double *m0, const char *k1,
                   const double *m1, const char *ratio, int samples) {
    printf("tool=tapegrad workload=%s %s_ms=%.4f %s_range=%.4f-%.4f %s_ms=%.4f %s_range=%.4f-%.4f "
           "%s=%.2f samples=%d\n",
           wl, k0, 1e3 * m0[0], k0, 1e3 * m0[1], 1e3 * m0[2], k1, 1e3 * m1[0], k1, 1e3 * m1[1],
           1e3 * m1[2], ratio, m1[0] / m0[0], samples);
    fflush(stdout);
}

int main(int argc, char **argv) {
    int samples = argc > 1 ? atoi(argv[1]) : 9;
    if (samples < 1) samples = 1;
    ax = randoms((size_t)B * D0, 2), ay = randoms((size_t)B * D2, 1);
    for (int i = 0; i < 4; i++) {
        size_t n = (size_t)(ashape[i][0] * ashape[i][1]);
        ap[i] = randoms(n, 0.2), av[i] = randoms(n, 2);
    }
    bx = randoms(N, 2), bv = randoms(N, 2);
    dx = randoms(ND, 2);
    for (int j = 0; j < KD; j++) dv[j] = randoms(ND, 2);
    for (int i = 0; i < M; i++) cx[i] = 2 * uniform();
    tg_tape *t = tg_tape_new();
    if (!t) return 1;
    double m[MAX_VARIANTS][3];
    measure(t, run_a, 2, (const int[]){0, 1}, (const int[]){4, 4}, samples, m);
    report("H2a", "grad", m[0], "hvp", m[1], "hvp_over_grad", samples);
    measure(t, run_b, 2, (const int[]){0, 1}, (const int[]){1, 1}, samples, m);
    report("H2b", "f", m[0], "f_jvp", m[1], "jvp_over_f", samples);
    /* the function's median taken off both sides: f, 8 jvp, jvp_many */
    measure(t, run_d, 3, (const int[]){0, 1, 2}, (const int[]){4, 1, 1}, samples, m);
    for (int i = 0; i < 3; i++) m[1][i] -= m[0][0], m[2][i] -= m[0][0];
    report("H2d", "jvp_x8", m[1], "jvp_many8", m[2], "many_over_single", samples);
    measure(t, run_c, 2, (const int[]){0, 1}, (const int[]){400, 4}, samples, m);
    report("H2c", "grad", m[0], "hessian", m[1], "hessian_over_grad", samples);
    tg_tape_free(t);
    for (int i = 0; i < 4; i++) free(ap[i]), free(av[i]);
    free(ax), free(ay), free(bx), free(bv), free(dx);
    for (int j = 0; j < KD; j++) free(dv[j]);
    return sink != sink ? 3 : 0; /* NaN: a wrong result */
}
