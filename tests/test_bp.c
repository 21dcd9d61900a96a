/*
 * The four equations of backpropagation, written out by hand in plain C
 * loops, against the tape's gradients.
 *
 * The net has four layers of sizes 6-5-4-3: an input layer, two hidden
 * layers and an output layer, all sigmoid, so there are three weight
 * matrices and BP2 runs twice (output -> second hidden -> first hidden).
 * Rows are examples (batch B = 4), W^l is [n(l-1), n(l)], row-major:
 *
 *   z^l = a^(l-1) W^l + b^l,   a^l = sigmoid(z^l),   a^0 = x
 *   C   = 1/(2B) sum_rows ||a^L - y||^2
 *
 *   BP1  delta^L = (a^L - y)/B (.) sigmoid'(z^L)
 *   BP2  delta^l = (delta^(l+1) (W^(l+1))^T) (.) sigmoid'(z^l)
 *   BP3  dC/db^l = sum over the batch rows of delta^l
 *   BP4  dC/dW^l = (a^(l-1))^T delta^l
 *
 * (the 1/B of the averaged cost is carried in delta), with sigmoid'(z) =
 * a (1 - a). The tape builds the same net from public ops,
 * tg_sigmoid(tg_add(tg_matmul(a, W), b)) and tg_mse, and every dW, db, the
 * cost and every delta (the gradient the tape leaves on each z node) must
 * agree to 1e-12 relative in float64.
 */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include <tapegrad.h>

#define B 4      /* batch rows */
#define L 3      /* weight layers */
#define MAXN 6   /* widest layer */
static const int n[L + 1] = {6, 5, 4, 3};

#define TOL 1e-12

/* splitmix64, for reproducible weights and data */
static uint64_t rng = 0x0bb1e5eedULL;
static double uniform(double lo, double hi) {
    uint64_t z = (rng += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    z ^= z >> 31;
    return lo + (hi - lo) * (double)(z >> 11) * 0x1.0p-53;
}

/* The parameters and the batch, shared by both computations. W[l] and b[l]
 * for l = 1..L (index 0 unused). */
static double W[L + 1][MAXN * MAXN], b[L + 1][MAXN];
static double x[B * MAXN], y[B * MAXN];

/* The hand computation. a[l], z[l], delta[l] are [B, n[l]]. */
static double a[L + 1][B * MAXN], z[L + 1][B * MAXN], delta[L + 1][B * MAXN];
static double dW[L + 1][MAXN * MAXN], db[L + 1][MAXN], cost;

static double sigmoid(double v) { return 1 / (1 + exp(-v)); }

static void forward_by_hand(void) {
    memcpy(a[0], x, sizeof(double) * B * n[0]);
    for (int l = 1; l <= L; l++)
        for (int r = 0; r < B; r++)
            for (int j = 0; j < n[l]; j++) {
                double s = b[l][j];
                for (int k = 0; k < n[l - 1]; k++) s += a[l - 1][r * n[l - 1] + k] * W[l][k * n[l] + j];
                z[l][r * n[l] + j] = s;
                a[l][r * n[l] + j] = sigmoid(s);
            }
    cost = 0;
    for (int i = 0; i < B * n[L]; i++) cost += (a[L][i] - y[i]) * (a[L][i] - y[i]);
    cost /= 2.0 * B;
}

/* BP1: the output layer's error. */
static void bp1(void) {
    for (int i = 0; i < B * n[L]; i++) {
        double s = a[L][i];
        delta[L][i] = (a[L][i] - y[i]) / B * s * (1 - s);
    }
}

/* BP2: the error of layer l from that of layer l + 1. */
static void bp2(int l) {
    for (int r = 0; r < B; r++)
        for (int k = 0; k < n[l]; k++) {
            double s = 0;
            for (int j = 0; j < n[l + 1]; j++)
                s += delta[l + 1][r * n[l + 1] + j] * W[l + 1][k * n[l + 1] + j];
            double al = a[l][r * n[l] + k];
            delta[l][r * n[l] + k] = s * al * (1 - al);
        }
}

/* BP3: the bias gradient, summed over the batch. */
static void bp3(int l) {
    for (int j = 0; j < n[l]; j++) {
        double s = 0;
        for (int r = 0; r < B; r++) s += delta[l][r * n[l] + j];
        db[l][j] = s;
    }
}

/* BP4: the weight gradient. */
static void bp4(int l) {
    for (int k = 0; k < n[l - 1]; k++)
        for (int j = 0; j < n[l]; j++) {
            double s = 0;
            for (int r = 0; r < B; r++) s += a[l - 1][r * n[l - 1] + k] * delta[l][r * n[l] + j];
            dW[l][k * n[l] + j] = s;
        }
}

static void backward_by_hand(void) {
    bp1();
    for (int l = L - 1; l >= 1; l--) bp2(l);
    for (int l = 1; l <= L; l++) {
        bp3(l);
        bp4(l);
    }
}

static double worst; /* largest relative difference seen */

/* When set, differences are measured against the largest magnitude in the
 * compared array (norm-wise) rather than against each element. */
static const double *array_scale;
static int array_len;

static void expect_close(double tape, double hand, const char *what, int l, int i) {
    double scale = fmax(fabs(tape), fabs(hand));
    for (int k = 0; array_scale && k < array_len; k++) scale = fmax(scale, fabs(array_scale[k]));
    double rel = scale > 0 ? fabs(tape - hand) / scale : 0;
    if (rel > worst) worst = rel;
    if (!(rel <= TOL))
        fail_msg("%s of layer %d, element %d: tape %.17g, by hand %.17g (relative %.2e)", what, l,
                 i, tape, hand, rel);
}

/* Compares n elements of the tape's gradient (or value) of node with hand[]. */
static void expect_array(bool grad, tg_node *node, const double *hand, int len, bool normwise,
                         const char *what, int l) {
    array_scale = normwise ? hand : NULL;
    array_len = len;
    for (int i = 0; i < len; i++)
        expect_close(grad ? tg_grad_at(node, i) : tg_value_at(node, i), hand[i], what, l, i);
    array_scale = NULL;
}

/* Builds the net on a tape and checks it against the hand computation:
 * element by element, or norm-wise per array. */
static void check_against_tape(bool normwise) {
    tg_tape *t = tg_tape_new();
    const int64_t sx[2] = {B, n[0]}, sy[2] = {B, n[L]};
    tg_node *act = tg_input(t, TG_F64, 2, sx, x);
    tg_node *target = tg_input(t, TG_F64, 2, sy, y);
    tg_node *Wn[L + 1], *bn[L + 1], *zn[L + 1], *an[L + 1];
    an[0] = act;
    for (int l = 1; l <= L; l++) {
        const int64_t sw[2] = {n[l - 1], n[l]}, sb[1] = {n[l]};
        Wn[l] = tg_tensor(t, TG_F64, 2, sw, W[l]);
        bn[l] = tg_tensor(t, TG_F64, 1, sb, b[l]);
        zn[l] = tg_add(tg_matmul(an[l - 1], Wn[l]), bn[l]); /* b broadcast over rows */
        an[l] = tg_sigmoid(zn[l]);
    }
    tg_node *C = tg_mse(an[L], target);
    assert_int_equal(tg_backward(C), TG_OK);

    expect_close(tg_value_scalar(C), cost, "cost", L, 0);
    for (int l = 1; l <= L; l++) {
        expect_array(false, zn[l], z[l], B * n[l], normwise, "z", l);
        expect_array(false, an[l], a[l], B * n[l], normwise, "a", l);
        /* the gradient on z^l is delta^l: BP1 for l = L, BP2 below */
        expect_array(true, zn[l], delta[l], B * n[l], normwise, "delta", l);
        expect_array(true, bn[l], db[l], n[l], normwise, "dC/db", l);
        expect_array(true, Wn[l], dW[l], n[l - 1] * n[l], normwise, "dC/dW", l);
    }
    /* the input wants no gradient; the target neither */
    assert_null(tg_grad(act));
    assert_null(tg_grad(target));
    tg_tape_free(t);
}

static void randomize(double wscale) {
    for (int l = 1; l <= L; l++) {
        for (int i = 0; i < n[l - 1] * n[l]; i++) W[l][i] = uniform(-wscale, wscale);
        for (int j = 0; j < n[l]; j++) b[l][j] = uniform(-0.5, 0.5);
    }
    for (int i = 0; i < B * n[0]; i++) x[i] = uniform(-1, 1);
    for (int i = 0; i < B * n[L]; i++) y[i] = uniform(0, 1);
}

static void test_bp1_to_bp4(void **state) {
    (void)state;
    /* several draws, including large weights that push sigmoids into their
     * tails where sigmoid' is small */
    const double scales[4] = {0.5, 1, 2, 4};
    for (int trial = 0; trial < 4; trial++) {
        randomize(scales[trial]);
        forward_by_hand();
        backward_by_hand();
        check_against_tape(false);
    }
    print_message("BP1-BP4: worst relative difference %.2e (tolerance %.0e)\n", worst, TOL);
}

/* The same net trained by gradient descent (parameters updated by the hand
 * gradients): the two keep agreeing along the way. As the outputs approach
 * their targets, a - y cancels and amplifies the last-bit differences between
 * BLAS's summation order and the loops' in single elements, so here each
 * array is compared norm-wise, still to 1e-12. */
static void test_bp_along_descent(void **state) {
    (void)state;
    randomize(1);
    worst = 0;
    for (int step = 0; step < 50; step++) {
        forward_by_hand();
        backward_by_hand();
        check_against_tape(true);
        for (int l = 1; l <= L; l++) {
            for (int i = 0; i < n[l - 1] * n[l]; i++) W[l][i] -= 2.0 * dW[l][i];
            for (int j = 0; j < n[l]; j++) b[l][j] -= 2.0 * db[l][j];
        }
    }
    print_message("along descent: worst norm-wise relative difference %.2e\n", worst);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_bp1_to_bp4),
        cmocka_unit_test(test_bp_along_descent),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
