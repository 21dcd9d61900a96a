/*
 * nn: one SGD step through the graph equals one step of the seeds'
 * hand-written backprop (BP1-BP4 + update_mini_batch) to 1e-12 in float64;
 * initialiser statistics; optimiser formulas by hand; determinism; the last
 * short mini-batch; no allocation per training step.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <tapegrad.h>

/* ------------------------------------------------- the seeds' backprop -- */

/*
 * The book's network.py, written out in plain loops with its own notation:
 * w[l][j][k] connects neuron k of layer l to neuron j of layer l+1, b[l][j]
 * is the bias of neuron j of layer l+1, a column vector per sample. Our
 * parameters are W = w^T ([in, out]) and b, so w[l][j][k] = W[k*out + j].
 */
#define MAXN 16

static double sig(double z) { return 1 / (1 + exp(-z)); }
static double sig_prime(double z) { return sig(z) * (1 - sig(z)); }

typedef struct net {
    int nl;           /* layers of neurons, including the input */
    int size[4];      /* neurons per layer */
    double *W[3], *b[3]; /* our layout: W[l] is [size[l], size[l+1]] */
} net;

/* backprop(x, y) of network.py: accumulates the gradient of
 * C_x = 1/2 ||a - y||^2 into nw, nb (same layout as W, b). */
static void backprop(const net *n, const double *x, const double *y, double **nw, double **nb) {
    double z[4][MAXN], a[4][MAXN], delta[4][MAXN];
    for (int k = 0; k < n->size[0]; k++) a[0][k] = x[k];
    for (int l = 0; l + 1 < n->nl; l++) /* feedforward */
        for (int j = 0; j < n->size[l + 1]; j++) {
            double s = n->b[l][j];
            for (int k = 0; k < n->size[l]; k++) s += n->W[l][k * n->size[l + 1] + j] * a[l][k];
            z[l + 1][j] = s;
            a[l + 1][j] = sig(s);
        }
    int L = n->nl - 1;
    for (int j = 0; j < n->size[L]; j++) /* BP1 */
        delta[L][j] = (a[L][j] - y[j]) * sig_prime(z[L][j]);
    for (int l = L - 1; l >= 1; l--) /* BP2 */
        for (int k = 0; k < n->size[l]; k++) {
            double s = 0;
            for (int j = 0; j < n->size[l + 1]; j++) s += n->W[l][k * n->size[l + 1] + j] * delta[l + 1][j];
            delta[l][k] = s * sig_prime(z[l][k]);
        }
    for (int l = 0; l < L; l++)
        for (int j = 0; j < n->size[l + 1]; j++) {
            nb[l][j] += delta[l + 1][j]; /* BP3 */
            for (int k = 0; k < n->size[l]; k++)
                nw[l][k * n->size[l + 1] + j] += a[l][k] * delta[l + 1][j]; /* BP4 */
        }
}

/* update_mini_batch(mini_batch, eta) over samples [from, to) of x, y. */
static void update_mini_batch(net *n, const double *x, const double *y, int from, int to,
                              double eta) {
    double *nw[3], *nb[3];
    for (int l = 0; l + 1 < n->nl; l++) {
        nw[l] = calloc((size_t)(n->size[l] * n->size[l + 1]), sizeof(double));
        nb[l] = calloc((size_t)n->size[l + 1], sizeof(double));
    }
    for (int s = from; s < to; s++)
        backprop(n, x + s * n->size[0], y + s * n->size[n->nl - 1], nw, nb);
    int m = to - from;
    for (int l = 0; l + 1 < n->nl; l++) {
        for (int i = 0; i < n->size[l] * n->size[l + 1]; i++) n->W[l][i] -= eta / m * nw[l][i];
        for (int j = 0; j < n->size[l + 1]; j++) n->b[l][j] -= eta / m * nb[l][j];
        free(nw[l]);
        free(nb[l]);
    }
}

/* A copy of the store's values as a hand network (pointing into copies). */
static net hand_copy(const tg_params *ps, const tg_mlp *m, double *buf) {
    net n = {.nl = m->nlayers + 1};
    for (int l = 0; l <= m->nlayers; l++) n.size[l] = (int)m->sizes[l];
    for (int l = 0; l < m->nlayers; l++) {
        int64_t kw = tg_params_numel(ps, 2 * l), kb = tg_params_numel(ps, 2 * l + 1);
        memcpy(buf, tg_params_value(ps, 2 * l), (size_t)kw * sizeof *buf);
        n.W[l] = buf;
        buf += kw;
        memcpy(buf, tg_params_value(ps, 2 * l + 1), (size_t)kb * sizeof *buf);
        n.b[l] = buf;
        buf += kb;
    }
    return n;
}

static double max_diff_net(const tg_params *ps, const net *n) {
    double worst = 0;
    for (int l = 0; l + 1 < n->nl; l++) {
        const double *W = tg_params_value(ps, 2 * l), *b = tg_params_value(ps, 2 * l + 1);
        for (int i = 0; i < n->size[l] * n->size[l + 1]; i++) worst = fmax(worst, fabs(W[i] - n->W[l][i]));
        for (int j = 0; j < n->size[l + 1]; j++) worst = fmax(worst, fabs(b[j] - n->b[l][j]));
    }
    return worst;
}

static void fill_data(tg_rng *r, double *x, double *y, int rows, int in, int out) {
    for (int i = 0; i < rows * in; i++) x[i] = tg_rng_uniform(r);
    for (int i = 0; i < rows * out; i++) y[i] = 0;
    for (int s = 0; s < rows; s++) y[s * out + (int)tg_rng_below(r, (uint64_t)out)] = 1;
}

static void test_sgd_step_equals_seeds_backprop(void **state) {
    (void)state;
    enum { B = 6, IN = 4, HID = 5, OUT = 3 };
    tg_mlp m;
    assert_int_equal(tg_mlp_parse(&m, "4,5,3", TG_ACT_SIGMOID, TG_ACT_SIGMOID, NULL), TG_OK);
    tg_params *ps = tg_params_new(TG_F64);
    assert_int_equal(tg_mlp_init(ps, &m, TG_INIT_NORMAL, TG_INIT_NORMAL, 42, NULL), TG_OK);
    double x[B * IN], y[B * OUT], buf[IN * HID + HID + HID * OUT + OUT];
    tg_rng r;
    tg_rng_seed(&r, 7);
    fill_data(&r, x, y, B, IN, OUT);
    net hand = hand_copy(ps, &m, buf);

    /* The graph: C = 1/(2B) sum ||sigmoid(sigmoid(x W1 + b1) W2 + b2) - y||^2. */
    tg_tape *t = tg_tape_new();
    int64_t xs[2] = {B, IN}, ys[2] = {B, OUT};
    tg_node *xn = tg_input(t, TG_F64, 2, xs, x), *yn = tg_input(t, TG_F64, 2, ys, y);
    tg_node *cost = tg_cost(tg_mlp_forward(xn, ps, &m), yn, TG_LOSS_MSE);
    tg_params_zero_grad(ps);
    assert_int_equal(tg_backward(cost), TG_OK);

    /* The cost is the seeds' quadratic cost averaged over the batch. */
    double c = 0;
    for (int s = 0; s < B; s++) {
        double a1[HID], a2[OUT];
        for (int j = 0; j < HID; j++) {
            double z = hand.b[0][j];
            for (int k = 0; k < IN; k++) z += hand.W[0][k * HID + j] * x[s * IN + k];
            a1[j] = sig(z);
        }
        for (int j = 0; j < OUT; j++) {
            double z = hand.b[1][j];
            for (int k = 0; k < HID; k++) z += hand.W[1][k * OUT + j] * a1[k];
            a2[j] = sig(z);
            c += 0.5 * (a2[j] - y[s * OUT + j]) * (a2[j] - y[s * OUT + j]);
        }
    }
    assert_true(fabs(tg_value_scalar(cost) - c / B) < 1e-12);

    /* The gradients in the store are the batch means of BP3 and BP4. */
    double gw0[IN * HID] = {0}, gb0[HID] = {0}, gw1[HID * OUT] = {0}, gb1[OUT] = {0};
    double *nw[2] = {gw0, gw1}, *nb[2] = {gb0, gb1};
    for (int s = 0; s < B; s++) backprop(&hand, x + s * IN, y + s * OUT, nw, nb);
    const double *g = tg_params_grad(ps, 0);
    for (int i = 0; i < IN * HID; i++) assert_true(fabs(g[i] - gw0[i] / B) < 1e-12);
    g = tg_params_grad(ps, 3);
    for (int i = 0; i < OUT; i++) assert_true(fabs(g[i] - gb1[i] / B) < 1e-12);

    /* One SGD step with eta = 3 against update_mini_batch. */
    tg_optim_config oc = tg_optim_defaults(TG_OPT_SGD);
    oc.lr = 3.0;
    tg_optim *o = tg_optim_new(ps, &oc, NULL);
    assert_non_null(o);
    assert_int_equal(tg_optim_step(o), TG_OK);
    update_mini_batch(&hand, x, y, 0, B, 3.0);
    double d = max_diff_net(ps, &hand);
    assert_true(d < 1e-12);
    assert_true(d >= 0);

    /* Replay: new data through the same graph, a second step, still equal. */
    fill_data(&r, tg_value(xn), tg_value(yn), B, IN, OUT);
    memcpy(x, tg_value(xn), sizeof x);
    memcpy(y, tg_value(yn), sizeof y);
    assert_int_equal(tg_forward(t), TG_OK);
    tg_params_zero_grad(ps);
    assert_int_equal(tg_backward(cost), TG_OK);
    assert_int_equal(tg_optim_step(o), TG_OK);
    update_mini_batch(&hand, x, y, 0, B, 3.0);
    assert_true(max_diff_net(ps, &hand) < 1e-12);

    tg_optim_free(o);
    tg_tape_free(t);
    tg_params_free(ps);
}

/* A 3-layer net through the trainer, in the natural order with a batch size
 * that leaves a short last batch: equal to update_mini_batch on the same
 * slices (3, 3, 3, 1 samples), so the short batch is averaged over its own
 * size and not dropped. */
static void test_trainer_short_batch_equals_seeds(void **state) {
    (void)state;
    enum { N = 10, IN = 3, OUT = 2 };
    tg_mlp m;
    assert_int_equal(tg_mlp_parse(&m, "3-4-5-2", TG_ACT_SIGMOID, TG_ACT_SIGMOID, NULL), TG_OK);
    tg_params *ps = tg_params_new(TG_F64);
    assert_int_equal(tg_mlp_init(ps, &m, TG_INIT_SCALED, TG_INIT_NORMAL, 3, NULL), TG_OK);
    float xf[N * IN];
    int32_t lab[N];
    double x[N * IN], y[N * OUT] = {0}, buf[256];
    tg_rng r;
    tg_rng_seed(&r, 11);
    for (int i = 0; i < N * IN; i++) x[i] = xf[i] = (float)tg_rng_uniform(&r);
    for (int s = 0; s < N; s++) y[s * OUT + (lab[s] = (int32_t)tg_rng_below(&r, OUT))] = 1;
    tg_dataset *ds = tg_dataset_new(N, IN, OUT, xf, lab, NULL);
    assert_non_null(ds);
    net hand = hand_copy(ps, &m, buf);

    tg_optim_config oc = tg_optim_defaults(TG_OPT_SGD);
    oc.lr = 0.5;
    tg_optim *o = tg_optim_new(ps, &oc, NULL);
    tg_error e;
    tg_trainer *tr = tg_trainer_new(ps, &m, TG_LOSS_MSE, 3, o, &e);
    assert_non_null(tr);
    double loss = -1;
    for (int epoch = 0; epoch < 2; epoch++) {
        assert_int_equal(tg_trainer_epoch(tr, ds, NULL, &loss, NULL, NULL, &e), TG_OK);
        for (int from = 0; from < N; from += 3)
            update_mini_batch(&hand, x, y, from, from + 3 < N ? from + 3 : N, 0.5);
    }
    assert_true(loss > 0);
    assert_true(max_diff_net(ps, &hand) < 1e-12);
    assert_int_equal(tg_optim_steps(o), 8);
    tg_trainer_free(tr);
    tg_optim_free(o);
    tg_params_free(ps);
    tg_dataset_free(ds);
}

/* -------------------------------------------------------- initialisers -- */

static void stats(const tg_params *ps, int i, double *mean, double *sd) {
    const double *v = tg_params_value(ps, i);
    int64_t n = tg_params_numel(ps, i);
    double s = 0, s2 = 0;
    for (int64_t k = 0; k < n; k++) s += v[k];
    *mean = s / (double)n;
    for (int64_t k = 0; k < n; k++) s2 += (v[k] - *mean) * (v[k] - *mean);
    *sd = sqrt(s2 / (double)(n - 1));
}

static void test_initialiser_statistics(void **state) {
    (void)state;
    const double fi = 400, fo = 500;
    const struct {
        tg_init init;
        double sd;
    } cases[] = {{TG_INIT_NORMAL, 1},
                 {TG_INIT_SCALED, 1 / sqrt(fi)},
                 {TG_INIT_XAVIER, sqrt(2 / (fi + fo))},
                 {TG_INIT_HE, sqrt(2 / fi)}};
    tg_params *ps = tg_params_new(TG_F64);
    int64_t shape[2] = {400, 500};
    assert_int_equal(tg_params_add(ps, "W", 2, shape, NULL), TG_OK);
    for (size_t c = 0; c < sizeof cases / sizeof *cases; c++) {
        tg_rng r;
        tg_rng_seed(&r, 1000 + c);
        assert_int_equal(tg_params_init(ps, 0, cases[c].init, &r), TG_OK);
        double mean, sd;
        stats(ps, 0, &mean, &sd);
        /* 200,000 draws: the mean is within 5 standard errors of 0, the
         * standard deviation within 1.5% of the target. */
        assert_true(fabs(mean) < 5 * cases[c].sd / sqrt(200000.0));
        assert_true(fabs(sd / cases[c].sd - 1) < 0.015);
    }
    tg_rng r;
    tg_rng_seed(&r, 1);
    assert_int_equal(tg_params_init(ps, 0, TG_INIT_ZERO, &r), TG_OK);
    double mean, sd;
    stats(ps, 0, &mean, &sd);
    assert_true(mean == 0 && sd == 0);
    assert_int_equal(tg_params_init(ps, 1, TG_INIT_HE, &r), TG_ERR_ARG);
    assert_int_equal(tg_params_init(ps, 0, (tg_init)99, &r), TG_ERR_ARG);
    assert_string_equal(tg_init_name(TG_INIT_XAVIER), "xavier");
    assert_int_equal(tg_init_parse("he"), TG_INIT_HE);
    assert_int_equal(tg_init_parse("bogus"), -1);
    tg_params_free(ps);
}

static void test_init_is_deterministic(void **state) {
    (void)state;
    tg_mlp m;
    assert_int_equal(tg_mlp_parse(&m, "20,30,10", TG_ACT_SIGMOID, TG_ACT_SIGMOID, NULL), TG_OK);
    for (int dt = 0; dt < 2; dt++) {
        tg_params *a = tg_params_new((tg_dtype)dt), *b = tg_params_new((tg_dtype)dt),
                  *c = tg_params_new((tg_dtype)dt);
        assert_int_equal(tg_mlp_init(a, &m, TG_INIT_XAVIER, TG_INIT_NORMAL, 5, NULL), TG_OK);
        assert_int_equal(tg_mlp_init(b, &m, TG_INIT_XAVIER, TG_INIT_NORMAL, 5, NULL), TG_OK);
        assert_int_equal(tg_mlp_init(c, &m, TG_INIT_XAVIER, TG_INIT_NORMAL, 6, NULL), TG_OK);
        size_t bytes = (size_t)tg_params_size(a) * (dt ? 8 : 4);
        assert_memory_equal(tg_params_data(a), tg_params_data(b), bytes);
        assert_memory_not_equal(tg_params_data(a), tg_params_data(c), bytes);
        tg_params_free(a);
        tg_params_free(b);
        tg_params_free(c);
    }
    /* The generator: the same seed, the same stream; shuffles are permutations. */
    tg_rng r1, r2;
    tg_rng_seed(&r1, 99);
    tg_rng_seed(&r2, 99);
    for (int i = 0; i < 100; i++) assert_true(tg_rng_next(&r1) == tg_rng_next(&r2));
    uint32_t idx[50];
    int seen[50] = {0};
    for (uint32_t i = 0; i < 50; i++) idx[i] = i;
    tg_rng_shuffle(&r1, idx, 50);
    for (int i = 0; i < 50; i++) seen[idx[i]]++;
    for (int i = 0; i < 50; i++) assert_int_equal(seen[i], 1);
    for (int i = 0; i < 1000; i++) {
        assert_true(tg_rng_below(&r1, 7) < 7);
        double u = tg_rng_uniform(&r1);
        assert_true(u >= 0 && u < 1);
    }
}

/* ----------------------------------------------------------- optimisers -- */

/* A store with W [2,2] and b [2], values and gradients set by hand. */
static tg_params *small_store(void) {
    tg_params *ps = tg_params_new(TG_F64);
    int64_t ws[2] = {2, 2}, bs[1] = {2};
    assert_int_equal(tg_params_add(ps, "W", 2, ws, NULL), TG_OK);
    assert_int_equal(tg_params_add(ps, "b", 1, bs, NULL), TG_OK);
    const double w0[4] = {0.5, -1.0, 2.0, 0.25}, b0[2] = {0.1, -0.2};
    memcpy(tg_params_value(ps, 0), w0, sizeof w0);
    memcpy(tg_params_value(ps, 1), b0, sizeof b0);
    return ps;
}

static void set_grads(tg_params *ps, int step) {
    double *gw = tg_params_grad(ps, 0), *gb = tg_params_grad(ps, 1);
    for (int i = 0; i < 4; i++) gw[i] = 0.3 * (i + 1) - step;
    for (int i = 0; i < 2; i++) gb[i] = -0.7 + i + 0.5 * step;
}

static void test_optimiser_formulas(void **state) {
    (void)state;
    const double lr = 0.1, mu = 0.8, b1 = 0.9, b2 = 0.999, eps = 1e-8, wd = 0.01;
    for (int kind = 0; kind < 3; kind++) {
        for (int decay = 0; decay < 2; decay++) {
            tg_params *ps = small_store();
            tg_optim_config c = tg_optim_defaults((tg_optimizer)kind);
            c.lr = lr;
            c.momentum = mu;
            c.weight_decay = decay ? wd : 0;
            tg_optim *o = tg_optim_new(ps, &c, NULL);
            assert_non_null(o);
            /* By hand, element by element: w (6 values), state m, v. */
            double w[6], m[6] = {0}, v[6] = {0};
            memcpy(w, tg_params_value(ps, 0), 4 * sizeof *w);
            memcpy(w + 4, tg_params_value(ps, 1), 2 * sizeof *w);
            for (int t = 1; t <= 3; t++) {
                set_grads(ps, t);
                const double *gw = tg_params_grad(ps, 0), *gb = tg_params_grad(ps, 1);
                for (int i = 0; i < 6; i++) {
                    double g = i < 4 ? gw[i] : gb[i - 4];
                    if (decay && i < 4) g += wd * w[i]; /* weights only */
                    if (kind == TG_OPT_SGD) {
                        w[i] -= lr * g;
                    } else if (kind == TG_OPT_MOMENTUM) {
                        m[i] = mu * m[i] - lr * g;
                        w[i] += m[i];
                    } else {
                        m[i] = b1 * m[i] + (1 - b1) * g;
                        v[i] = b2 * v[i] + (1 - b2) * g * g;
                        double mh = m[i] / (1 - pow(b1, t)), vh = v[i] / (1 - pow(b2, t));
                        w[i] -= lr * mh / (sqrt(vh) + eps);
                    }
                }
                assert_int_equal(tg_optim_step(o), TG_OK);
                const double *pw = tg_params_value(ps, 0), *pb = tg_params_value(ps, 1);
                for (int i = 0; i < 4; i++) assert_true(fabs(pw[i] - w[i]) < 1e-12);
                for (int i = 0; i < 2; i++) assert_true(fabs(pb[i] - w[4 + i]) < 1e-12);
            }
            assert_int_equal(tg_optim_steps(o), 3);
            tg_optim_free(o);
            tg_params_free(ps);
        }
    }
}

/* float32 Adam (vectorised) agrees with a float64 reference. */
static void test_adam_f32(void **state) {
    (void)state;
    tg_params *ps = tg_params_new(TG_F32);
    int64_t s[1] = {37};
    assert_int_equal(tg_params_add(ps, "p", 1, s, NULL), TG_OK);
    float *w = tg_params_value(ps, 0), *g = tg_params_grad(ps, 0);
    double ref[37], m[37] = {0}, v[37] = {0};
    for (int i = 0; i < 37; i++) ref[i] = w[i] = (float)(0.1 * i - 1);
    tg_optim *o = tg_optim_new(ps, &(tg_optim_config){TG_OPT_ADAM, 0.01, 0, 0.9, 0.999, 1e-8, 0}, NULL);
    assert_non_null(o);
    for (int t = 1; t <= 5; t++) {
        float given[37];
        for (int i = 0; i < 37; i++) g[i] = given[i] = (float)sin(i + t);
        assert_int_equal(tg_optim_step(o), TG_OK);
        for (int i = 0; i < 37; i++) {
            assert_true(g[i] == 0); /* the step consumes the gradients */
            double gi = given[i];
            m[i] = 0.9 * m[i] + 0.1 * gi;
            v[i] = 0.999 * v[i] + 0.001 * gi * gi;
            ref[i] -= 0.01 * (m[i] / (1 - pow(0.9, t))) / (sqrt(v[i] / (1 - pow(0.999, t))) + 1e-8);
            assert_true(fabs(w[i] - ref[i]) < 1e-5);
        }
    }
    tg_optim_free(o);
    tg_params_free(ps);
}

/* Sets every gradient of a store (either dtype) from step t: a fixed,
 * finite pattern. */
static void set_grads_any(tg_params *ps, int t) {
    for (int64_t k = 0; k < tg_params_size(ps); k++) {
        double g = 0.3 * (double)(k % 5) - 0.5 * t;
        if (tg_params_dtype(ps) == TG_F64)
            ((double *)tg_params_grads(ps))[k] = g;
        else
            ((float *)tg_params_grads(ps))[k] = (float)g;
    }
}

static tg_params *store_of(tg_dtype dt) {
    tg_params *ps = tg_params_new(dt);
    int64_t ws[2] = {3, 5}, bs[1] = {5};
    assert_int_equal(tg_params_add(ps, "W", 2, ws, NULL), TG_OK);
    assert_int_equal(tg_params_add(ps, "b", 1, bs, NULL), TG_OK);
    tg_rng r;
    tg_rng_seed(&r, 3);
    assert_int_equal(tg_params_init(ps, 0, TG_INIT_NORMAL, &r), TG_OK);
    assert_int_equal(tg_params_init(ps, 1, TG_INIT_NORMAL, &r), TG_OK);
    return ps;
}

/* A step whose new values are not finite reports TG_ERR_NUMERIC, for every
 * optimiser, with and without weight decay, in both dtypes; rolling back to
 * the snapshot gives back the values and the state: the steps that follow
 * are bit for bit those of an optimiser that never saw the bad gradient. */
static void test_optimiser_non_finite_and_rollback(void **state) {
    (void)state;
    /* grad 0 stands for a finite gradient that overflows with lr 1e10:
     * 1e30 in float32, 1e300 in float64; grad -1 for one whose square
     * overflows Adam's second moment (the value stays finite, but that
     * weight would never move again): 1e21 in float32, 1e160 in float64. */
    const struct {
        double grad, lr;
        bool adam; /* Adam's steps are bounded by lr: no overflow */
        bool only_adam;
    } cases[] = {{NAN, 0.1, true, false}, {INFINITY, 0.1, true, false},
                 {-INFINITY, 0.1, true, false}, {0, 1e10, false, false}, {-1, 0.1, true, true}};
    for (size_t ci = 0; ci < sizeof cases / sizeof *cases; ci++)
        for (int kind = 0; kind < 3; kind++)
            for (int decay = 0; decay < 2; decay++)
                for (int dt = 0; dt < 2; dt++) {
                    if (kind == TG_OPT_ADAM && !cases[ci].adam) continue;
                    if (kind != TG_OPT_ADAM && cases[ci].only_adam) continue;
                    tg_params *ps = store_of((tg_dtype)dt), *ref = store_of((tg_dtype)dt);
                    size_t bytes = (size_t)tg_params_size(ps) * (dt ? 8 : 4);
                    tg_optim_config c = tg_optim_defaults((tg_optimizer)kind);
                    c.lr = 0.1;
                    c.weight_decay = decay ? 0.01 : 0;
                    tg_optim *o = tg_optim_new(ps, &c, NULL), *r = tg_optim_new(ref, &c, NULL);
                    assert_int_equal(tg_optim_rollback(o), TG_ERR_STATE); /* no snapshot */
                    for (int t = 1; t <= 2; t++) {
                        set_grads_any(ps, t);
                        set_grads_any(ref, t);
                        assert_int_equal(tg_optim_step(o), TG_OK);
                        assert_int_equal(tg_optim_step(r), TG_OK);
                    }
                    assert_int_equal(tg_optim_snapshot(o), TG_OK);
                    set_grads_any(ps, 3); /* one bad element, in b */
                    double g = cases[ci].grad == -1 ? (dt ? 1e160 : 1e21)
                               : cases[ci].grad != 0 ? cases[ci].grad
                               : dt              ? 1e300
                                                 : 1e30;
                    if (dt)
                        ((double *)tg_params_grad(ps, 1))[2] = g;
                    else
                        ((float *)tg_params_grad(ps, 1))[2] = (float)g;
                    assert_int_equal(tg_optim_set_lr(o, cases[ci].lr), TG_OK);
                    assert_int_equal(tg_optim_step(o), TG_ERR_NUMERIC);
                    assert_int_equal(tg_optim_steps(o), 3);
                    char zero[64] = {0};
                    assert_memory_equal(tg_params_grad(ps, 1), zero, 5 * (dt ? 8 : 4));
                    assert_int_equal(tg_optim_rollback(o), TG_OK);
                    assert_int_equal(tg_optim_set_lr(o, 0.1), TG_OK);
                    assert_int_equal(tg_optim_steps(o), 2);
                    assert_memory_equal(tg_params_data(ps), tg_params_data(ref), bytes);
                    for (int t = 3; t <= 4; t++) {
                        set_grads_any(ps, t);
                        set_grads_any(ref, t);
                        assert_int_equal(tg_optim_step(o), TG_OK);
                        assert_int_equal(tg_optim_step(r), TG_OK);
                    }
                    assert_memory_equal(tg_params_data(ps), tg_params_data(ref), bytes);
                    tg_optim_free(o);
                    tg_optim_free(r);
                    tg_params_free(ps);
                    tg_params_free(ref);
                }
}

static void test_optimiser_errors(void **state) {
    (void)state;
    tg_params *ps = small_store();
    tg_error e;
    tg_optim_config c = tg_optim_defaults(TG_OPT_ADAM);
    c.beta1 = 1.0;
    assert_null(tg_optim_new(ps, &c, &e));
    assert_int_equal(e.code, TG_ERR_ARG);
    assert_non_null(strstr(e.message, "beta1"));
    c = tg_optim_defaults(TG_OPT_SGD);
    c.lr = -1;
    assert_null(tg_optim_new(ps, &c, &e));
    assert_non_null(strstr(e.message, "lr"));
    c.lr = 0.1;
    tg_params *empty = tg_params_new(TG_F32);
    assert_null(tg_optim_new(empty, &c, &e));
    assert_null(tg_optim_new(NULL, &c, &e));
    assert_int_equal(e.code, TG_ERR_NULL);
    /* Parameters added after the optimiser: refused, not overrun. */
    tg_optim *o = tg_optim_new(ps, &c, NULL);
    int64_t one = 1;
    assert_int_equal(tg_params_add(ps, "late", 1, &one, NULL), TG_OK);
    assert_int_equal(tg_optim_step(o), TG_ERR_STATE);
    assert_int_equal(tg_optim_set_lr(o, 0), TG_ERR_ARG);
    assert_int_equal(tg_optim_step(NULL), TG_ERR_NULL);
    assert_string_equal(tg_optimizer_name(TG_OPT_MOMENTUM), "momentum");
    assert_int_equal(tg_optimizer_parse("adam"), TG_OPT_ADAM);
    tg_optim_free(o);
    tg_params_free(ps);
    tg_params_free(empty);
}

/* ----------------------------------------------------- params and layers -- */

static void test_params_store(void **state) {
    (void)state;
    tg_params *ps = tg_params_new(TG_F32);
    tg_error e;
    int64_t s2[2] = {3, 5}, s1[1] = {7}, bad[2] = {3, 0};
    assert_int_equal(tg_params_add(ps, "layer1.W", 2, s2, &e), TG_OK);
    assert_int_equal(tg_params_add(ps, "layer1.b", 1, s1, &e), TG_OK);
    assert_int_equal(tg_params_add(ps, "layer1.W", 2, s2, &e), TG_ERR_ARG);
    assert_non_null(strstr(e.message, "already exists"));
    assert_int_equal(tg_params_add(ps, "x", 2, bad, &e), TG_ERR_SHAPE);
    assert_int_equal(tg_params_add(ps, "", 1, s1, &e), TG_ERR_ARG);
    assert_int_equal(tg_params_add(ps, "y", 0, NULL, &e), TG_ERR_SHAPE);
    assert_int_equal(tg_params_count(ps), 2);
    assert_int_equal(tg_params_find(ps, "layer1.b"), 1);
    assert_int_equal(tg_params_find(ps, "nope"), -1);
    assert_string_equal(tg_params_name(ps, 0), "layer1.W");
    assert_null(tg_params_name(ps, 2));
    int64_t sh[4];
    assert_int_equal(tg_params_shape(ps, 0, sh), 2);
    assert_true(sh[0] == 3 && sh[1] == 5);
    assert_int_equal(tg_params_numel(ps, 1), 7);
    /* One flat buffer: parameter 1 starts at the next multiple of 16. */
    assert_ptr_equal((float *)tg_params_value(ps, 1), (float *)tg_params_data(ps) + 16);
    assert_true(tg_params_size(ps) == 23);
    float *g = tg_params_grads(ps);
    for (int i = 0; i < 23; i++) g[i] = 1;
    tg_params_zero_grad(ps);
    for (int i = 0; i < 23; i++) assert_true(g[i] == 0);
    assert_int_equal(tg_params_set_meta(ps, "k=v"), TG_OK);
    assert_string_equal(tg_params_meta(ps), "k=v");

    /* A parameter enters a tape as a view: the sweep adds into the store. */
    tg_tape *t = tg_tape_new();
    tg_node *b = tg_param(t, ps, "layer1.b");
    float *bv = tg_params_value(ps, 1);
    for (int i = 0; i < 7; i++) bv[i] = (float)i;
    tg_node *f = tg_sum(tg_mul(b, b)); /* d/db sum b^2 = 2b */
    assert_int_equal(tg_backward(f), TG_OK);
    assert_int_equal(tg_backward(f), TG_OK); /* accumulates: 4b */
    float *gb = tg_params_grad(ps, 1);
    for (int i = 0; i < 7; i++) assert_true(gb[i] == 4.0f * (float)i);
    tg_tape_reset(t);
    assert_true(tg_params_value(ps, 1) == bv); /* survives the reset */
    tg_node *p = tg_param(t, ps, "missing");
    assert_int_equal(tg_status(t), TG_ERR_ARG);
    assert_non_null(strstr(tg_status_message(t), "missing"));
    assert_ptr_equal(tg_param(t, ps, "layer1.W"), p); /* poison stays poison */
    tg_tape_free(t);
    tg_params_free(ps);
}

static void test_dense_and_mlp(void **state) {
    (void)state;
    tg_error e;
    tg_mlp m;
    assert_int_equal(tg_mlp_parse(&m, "784,100,10", TG_ACT_RELU, TG_ACT_IDENTITY, &e), TG_OK);
    assert_int_equal(m.nlayers, 2);
    assert_int_equal(m.act[0], TG_ACT_RELU);
    assert_int_equal(m.act[1], TG_ACT_IDENTITY);
    char buf[64];
    tg_mlp_format_sizes(&m, buf, sizeof buf);
    assert_string_equal(buf, "784,100,10");
    assert_int_equal(tg_mlp_parse(&m, "784", TG_ACT_RELU, TG_ACT_RELU, &e), TG_ERR_ARG);
    assert_int_equal(tg_mlp_parse(&m, "784,x", TG_ACT_RELU, TG_ACT_RELU, &e), TG_ERR_ARG);
    assert_int_equal(tg_mlp_parse(&m, "784,0,10", TG_ACT_RELU, TG_ACT_RELU, &e), TG_ERR_ARG);
    assert_int_equal(tg_mlp_parse(&m, "784,,10", TG_ACT_RELU, TG_ACT_RELU, &e), TG_ERR_ARG);
    assert_int_equal(m.nlayers, 2); /* unchanged by the failures */

    tg_params *ps = tg_params_new(TG_F64);
    assert_int_equal(tg_mlp_parse(&m, "3,2", TG_ACT_TANH, TG_ACT_TANH, &e), TG_OK);
    assert_int_equal(tg_mlp_init(ps, &m, TG_INIT_XAVIER, TG_INIT_NORMAL, 1, &e), TG_OK);
    assert_int_equal(tg_mlp_init(ps, &m, TG_INIT_XAVIER, TG_INIT_NORMAL, 1, &e), TG_ERR_ARG);
    assert_int_equal(tg_params_count(ps), 2);
    tg_mlp back = {0};
    assert_int_equal(tg_mlp_from_params(&back, ps, &e), TG_OK);
    assert_true(back.nlayers == 1 && back.sizes[0] == 3 && back.sizes[1] == 2);

    /* tg_dense is act(x W + b), each activation by its formula. */
    tg_tape *t = tg_tape_new();
    int64_t xs[2] = {1, 3};
    const double xv[3] = {0.5, -1, 2};
    tg_node *x = tg_input(t, TG_F64, 2, xs, xv);
    const double *W = tg_params_value(ps, 0), *b = tg_params_value(ps, 1);
    for (int act = 0; act < 4; act++) {
        tg_node *y = tg_dense(x, tg_param(t, ps, "layer1.W"), tg_param(t, ps, "layer1.b"),
                              (tg_activation)act);
        for (int j = 0; j < 2; j++) {
            double z = b[j];
            for (int k = 0; k < 3; k++) z += xv[k] * W[k * 2 + j];
            double want = act == TG_ACT_IDENTITY ? z
                          : act == TG_ACT_SIGMOID ? 1 / (1 + exp(-z))
                          : act == TG_ACT_TANH    ? tanh(z)
                                                  : (z > 0 ? z : 0);
            assert_true(fabs(tg_value_at(y, j) - want) < 1e-14);
        }
    }
    assert_int_equal(tg_status(t), TG_OK);
    tg_activate(x, (tg_activation)9);
    assert_int_equal(tg_status(t), TG_ERR_ARG);
    tg_tape_reset(t);
    /* A network whose input width does not fit: the matmul's shape error. */
    int64_t bad[2] = {1, 4};
    tg_mlp_forward(tg_input(t, TG_F64, 2, bad, NULL), ps, &m);
    assert_int_equal(tg_status(t), TG_ERR_SHAPE);
    assert_non_null(strstr(tg_status_message(t), "matmul"));
    tg_tape_free(t);
    tg_params_free(ps);
}

/* ------------------------------------------------- training determinism -- */

static tg_dataset *blobs(size_t n, int d, int classes, uint64_t seed) {
    float *x = malloc(n * (size_t)d * sizeof *x);
    int32_t *y = malloc(n * sizeof *y);
    tg_rng r;
    tg_rng_seed(&r, seed);
    for (size_t i = 0; i < n; i++) {
        y[i] = (int32_t)tg_rng_below(&r, (uint64_t)classes);
        for (int j = 0; j < d; j++)
            x[i * (size_t)d + j] = (float)(0.3 * tg_rng_normal(&r) + (j % classes == y[i]));
    }
    tg_dataset *ds = tg_dataset_new(n, d, classes, x, y, NULL);
    free(x);
    free(y);
    return ds;
}

/* Trains for two epochs; returns the store. */
static tg_params *train_run(const tg_dataset *ds, tg_dtype dt, tg_optimizer kind, uint64_t seed,
                            double *acc) {
    tg_mlp m;
    assert_int_equal(tg_mlp_parse(&m, "12,16,3", TG_ACT_RELU, TG_ACT_IDENTITY, NULL), TG_OK);
    tg_params *ps = tg_params_new(dt);
    assert_int_equal(tg_mlp_init(ps, &m, TG_INIT_HE, TG_INIT_ZERO, seed, NULL), TG_OK);
    tg_optim_config c = tg_optim_defaults(kind);
    c.lr = kind == TG_OPT_ADAM ? 0.01 : 0.1;
    tg_optim *o = tg_optim_new(ps, &c, NULL);
    tg_trainer *tr = tg_trainer_new(ps, &m, TG_LOSS_XENT, 16, o, NULL);
    assert_non_null(tr);
    tg_rng r;
    tg_rng_seed(&r, seed + 1);
    double first = 0, last = 0;
    for (int ep = 0; ep < 3; ep++)
        assert_int_equal(tg_trainer_epoch(tr, ds, &r, ep ? &last : &first, NULL, NULL, NULL),
                         TG_OK);
    assert_true(last < first);
    assert_int_equal(tg_evaluate(ps, &m, TG_LOSS_XENT, ds, acc, NULL, NULL, NULL), TG_OK);
    tg_trainer_free(tr);
    tg_optim_free(o);
    return ps;
}

static void test_training_is_deterministic(void **state) {
    (void)state;
    tg_dataset *ds = blobs(500, 12, 3, 4);
    for (int dt = 0; dt < 2; dt++)
        for (int kind = 0; kind < 3; kind++) {
            double a1, a2, a3;
            tg_params *p1 = train_run(ds, (tg_dtype)dt, (tg_optimizer)kind, 9, &a1);
            tg_params *p2 = train_run(ds, (tg_dtype)dt, (tg_optimizer)kind, 9, &a2);
            tg_params *p3 = train_run(ds, (tg_dtype)dt, (tg_optimizer)kind, 10, &a3);
            size_t bytes = (size_t)tg_params_size(p1) * (dt ? 8 : 4);
            assert_memory_equal(tg_params_data(p1), tg_params_data(p2), bytes);
            assert_memory_not_equal(tg_params_data(p1), tg_params_data(p3), bytes);
            assert_true(a1 == a2);
            assert_true(a1 > 0.9); /* separable blobs */
            tg_params_free(p1);
            tg_params_free(p2);
            tg_params_free(p3);
        }
    tg_dataset_free(ds);
}

/* --------------------------------------------- no allocation per step -- */

static size_t nallocs;
static void *count_malloc(size_t n, void *ctx) {
    (void)ctx;
    nallocs++;
    return malloc(n);
}
static void *count_realloc(void *p, size_t n, void *ctx) {
    (void)ctx;
    nallocs++;
    return realloc(p, n);
}
static void count_free(void *p, void *ctx) {
    (void)ctx;
    free(p);
}

static void test_steps_allocate_nothing(void **state) {
    (void)state;
    tg_allocator a = {count_malloc, count_realloc, count_free, NULL};
    tg_set_allocator(&a);
    tg_dataset *ds = blobs(203, 12, 3, 5); /* 203 = 12 batches of 16 + 11 */
    tg_mlp m;
    assert_int_equal(tg_mlp_parse(&m, "12,8,3", TG_ACT_SIGMOID, TG_ACT_SIGMOID, NULL), TG_OK);
    tg_params *ps = tg_params_new(TG_F32);
    assert_int_equal(tg_mlp_init(ps, &m, TG_INIT_SCALED, TG_INIT_NORMAL, 1, NULL), TG_OK);
    tg_optim_config c = tg_optim_defaults(TG_OPT_ADAM);
    tg_optim *o = tg_optim_new(ps, &c, NULL);
    tg_trainer *tr = tg_trainer_new(ps, &m, TG_LOSS_MSE, 16, o, NULL);
    tg_rng r;
    tg_rng_seed(&r, 1);
    assert_int_equal(tg_trainer_epoch(tr, ds, &r, NULL, NULL, NULL, NULL), TG_OK);
    size_t before = nallocs;
    for (int ep = 0; ep < 3; ep++)
        assert_int_equal(tg_trainer_epoch(tr, ds, &r, NULL, NULL, NULL, NULL), TG_OK);
    assert_int_equal(nallocs, before); /* 39 steps, not one allocation */
    tg_trainer_free(tr);
    tg_optim_free(o);
    tg_params_free(ps);
    tg_dataset_free(ds);
    tg_set_allocator(NULL);
}

static void test_trainer_errors(void **state) {
    (void)state;
    tg_error e;
    tg_mlp m;
    assert_int_equal(tg_mlp_parse(&m, "5,3", TG_ACT_SIGMOID, TG_ACT_SIGMOID, NULL), TG_OK);
    tg_params *ps = tg_params_new(TG_F32);
    tg_optim_config c = tg_optim_defaults(TG_OPT_SGD);
    assert_int_equal(tg_mlp_init(ps, &m, TG_INIT_SCALED, TG_INIT_NORMAL, 1, NULL), TG_OK);
    tg_optim *o = tg_optim_new(ps, &c, NULL);
    assert_null(tg_trainer_new(ps, &m, TG_LOSS_MSE, 0, o, &e));
    assert_int_equal(e.code, TG_ERR_ARG);
    tg_trainer *tr = tg_trainer_new(ps, &m, TG_LOSS_MSE, 4, o, &e);
    assert_non_null(tr);
    tg_dataset *wide = blobs(10, 6, 3, 1), *many = blobs(10, 5, 3, 1);
    assert_int_equal(tg_trainer_epoch(tr, wide, NULL, NULL, NULL, NULL, &e), TG_ERR_SHAPE);
    assert_non_null(strstr(e.message, "6 features"));
    assert_int_equal(tg_trainer_epoch(tr, many, NULL, NULL, NULL, NULL, &e), TG_OK);
    float x[5] = {0};
    int32_t y[1] = {4};
    tg_dataset *five = tg_dataset_new(1, 5, 5, x, y, &e);
    assert_int_equal(tg_trainer_epoch(tr, five, NULL, NULL, NULL, NULL, &e), TG_ERR_SHAPE);
    assert_non_null(strstr(e.message, "5 classes"));
    /* A store missing a layer: the graph cannot be built. */
    tg_params *half = tg_params_new(TG_F32);
    int64_t ws[2] = {5, 3};
    tg_params_add(half, "layer1.W", 2, ws, NULL);
    tg_optim *o2 = tg_optim_new(half, &c, NULL);
    assert_null(tg_trainer_new(half, &m, TG_LOSS_MSE, 4, o2, &e));
    assert_non_null(strstr(e.message, "layer1.b"));
    tg_optim_free(o2);
    tg_params_free(half);
    tg_dataset_free(five);
    tg_dataset_free(wide);
    tg_dataset_free(many);
    tg_trainer_free(tr);
    tg_optim_free(o);
    tg_params_free(ps);
}

/* tg_accuracy: by hand on rows with a tie and a NaN (tg_argmax's rule), in
 * both dtypes; against tg_argmax_axis and tg_evaluate on an MLP's outputs;
 * and its refusals, which leave *accuracy alone. */
static void test_accuracy(void **state) {
    (void)state;
    const double z[12] = {1, 3, 3, NAN, 0, 5, 2, 1, 0, 0, 0, 0};
    const int32_t labels[4] = {1, 0, 0, 2}; /* argmax 1, 0, 0, 0: the last is wrong */
    const int64_t shape[2] = {4, 3};
    tg_tape *t = tg_tape_new();
    for (int d = 0; d < 2; d++) {
        tg_node *logits = tg_input(t, d ? TG_F32 : TG_F64, 2, shape, NULL);
        for (int i = 0; i < 12; i++) {
            if (d)
                ((float *)tg_value(logits))[i] = (float)z[i];
            else
                ((double *)tg_value(logits))[i] = z[i];
        }
        double acc = -1;
        tg_error e;
        assert_int_equal(tg_accuracy(logits, labels, 4, &acc, &e), TG_OK);
        assert_true(acc == 0.75);
        tg_node *am = tg_argmax_axis(logits, 1);
        for (int r = 0; r < 4; r++) assert_true(tg_value_at(am, r) == (r == 0 ? 1 : 0));
        /* one row as a [classes] vector */
        const int64_t three = 3;
        tg_node *row = tg_input(t, TG_F64, 1, &three, z);
        assert_int_equal(tg_accuracy(row, labels, 1, &acc, &e), TG_OK);
        assert_true(acc == 1);
        /* refusals */
        acc = -1;
        assert_int_equal(tg_accuracy(logits, labels, 3, &acc, &e), TG_ERR_SHAPE);
        assert_non_null(strstr(e.message, "3 labels for 4 rows"));
        const int32_t bad[4] = {1, 0, 3, 2};
        assert_int_equal(tg_accuracy(logits, bad, 4, &acc, &e), TG_ERR_ARG);
        assert_non_null(strstr(e.message, "label 3 of row 2 is not a class of 3 outputs"));
        assert_int_equal(tg_accuracy(tg_scalar(t, 1), labels, 1, &acc, &e), TG_ERR_SHAPE);
        assert_int_equal(tg_accuracy(NULL, labels, 4, &acc, &e), TG_ERR_NULL);
        assert_int_equal(tg_accuracy(logits, NULL, 4, &acc, &e), TG_ERR_NULL);
        assert_int_equal(tg_accuracy(logits, labels, 4, NULL, &e), TG_ERR_NULL);
        assert_true(acc == -1);
    }
    tg_tape_free(t);

    /* An MLP's outputs on 50 random samples: tg_evaluate's accuracy. */
    enum { N = 50, IN = 3, K = 4 };
    float x[N * IN];
    int32_t y[N];
    tg_rng r;
    tg_rng_seed(&r, 9);
    for (int i = 0; i < N * IN; i++) x[i] = (float)tg_rng_normal(&r);
    for (int i = 0; i < N; i++) y[i] = (int32_t)(tg_rng_next(&r) % K);
    tg_dataset *ds = tg_dataset_new(N, IN, K, x, y, NULL);
    tg_mlp m;
    assert_int_equal(tg_mlp_parse(&m, "3,6,4", TG_ACT_TANH, TG_ACT_IDENTITY, NULL), TG_OK);
    tg_params *ps = tg_params_new(TG_F32);
    assert_int_equal(tg_mlp_init(ps, &m, TG_INIT_NORMAL, TG_INIT_NORMAL, 4, NULL), TG_OK);
    double want, got;
    assert_int_equal(tg_evaluate(ps, &m, TG_LOSS_XENT, ds, &want, NULL, NULL, NULL), TG_OK);
    t = tg_tape_new();
    const int64_t xs[2] = {N, IN};
    tg_node *out = tg_mlp_forward(tg_input(t, TG_F32, 2, xs, x), ps, &m);
    assert_int_equal(tg_accuracy(out, y, N, &got, NULL), TG_OK);
    if (got != want) fail_msg("tg_accuracy %.6f, tg_evaluate %.6f", got, want);
    assert_true(got > 0 && got < 1); /* a mix of right and wrong rows */
    tg_tape_free(t);
    tg_params_free(ps);
    tg_dataset_free(ds);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sgd_step_equals_seeds_backprop),
        cmocka_unit_test(test_trainer_short_batch_equals_seeds),
        cmocka_unit_test(test_initialiser_statistics),
        cmocka_unit_test(test_init_is_deterministic),
        cmocka_unit_test(test_optimiser_formulas),
        cmocka_unit_test(test_adam_f32),
        cmocka_unit_test(test_optimiser_errors),
        cmocka_unit_test(test_optimiser_non_finite_and_rollback),
        cmocka_unit_test(test_params_store),
        cmocka_unit_test(test_dense_and_mlp),
        cmocka_unit_test(test_training_is_deterministic),
        cmocka_unit_test(test_steps_allocate_nothing),
        cmocka_unit_test(test_trainer_errors),
        cmocka_unit_test(test_accuracy),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
