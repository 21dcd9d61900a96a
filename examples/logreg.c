/*
 * Logistic regression, a model that is not an MLP, trained with the graph
 * API: p(y = 1 | x) = sigmoid(x . w + b) on a synthetic two-dimensional data
 * set, with the parameters in a tg_params store, an optimiser, and one graph
 * recorded once and replayed for every mini-batch. docs/custom-model.md
 * walks through it.
 *
 * The data: points uniform in the square [-3, 3]^2, labelled 1 on one side
 * of the line 2 x0 - x1 + 0.5 = 0 and 0 on the other; points closer than 0.3
 * to the line are dropped, so the classes are separable with a margin. A
 * model that learns the line classifies every point right.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <tapegrad.h>

enum { NTRAIN = 1000, NTEST = 1000, BATCH = 50, EPOCHS = 30 };
static const double TRUE_W[2] = {2, -1}, TRUE_B = 0.5, MARGIN = 0.3;

/* n points and their 0/1 labels, drawn from r. */
static void make_data(tg_rng *r, int n, float *x, float *y) {
    double norm = hypot(TRUE_W[0], TRUE_W[1]);
    for (int i = 0; i < n;) {
        double a = 6 * tg_rng_uniform(r) - 3, b = 6 * tg_rng_uniform(r) - 3;
        double side = (TRUE_W[0] * a + TRUE_W[1] * b + TRUE_B) / norm; /* signed distance */
        if (fabs(side) < MARGIN) continue;
        x[2 * i] = (float)a;
        x[2 * i + 1] = (float)b;
        y[i] = side > 0;
        i++;
    }
}

/* The fraction of the n points that the model classifies right:
 * p > 1/2 exactly when the logit is positive. */
static double accuracy(const tg_params *ps, int n, const float *x, const float *y) {
    const float *w = tg_params_value(ps, tg_params_find(ps, "w"));
    const float *b = tg_params_value(ps, tg_params_find(ps, "b"));
    int right = 0;
    for (int i = 0; i < n; i++)
        right += (x[2 * i] * w[0] + x[2 * i + 1] * w[1] + b[0] > 0) == (y[i] > 0);
    return (double)right / n;
}

int main(void) {
    static float xtrain[2 * NTRAIN], ytrain[NTRAIN], xtest[2 * NTEST], ytest[NTEST];
    tg_rng rng;
    tg_rng_seed(&rng, 7);
    make_data(&rng, NTRAIN, xtrain, ytrain);
    make_data(&rng, NTEST, xtest, ytest);

    /* The parameters, outside every tape: w [2,1] and b [1], both zero
     * (the loss is convex; every logit starts at 0, every p at 1/2). */
    tg_error err;
    tg_params *ps = tg_params_new(TG_F32);
    if (tg_params_add(ps, "w", 2, (const int64_t[]){2, 1}, &err) ||
        tg_params_add(ps, "b", 1, (const int64_t[]){1}, &err)) {
        fprintf(stderr, "%s\n", err.message);
        return 1;
    }
    tg_optim_config cfg = tg_optim_defaults(TG_OPT_ADAM);
    cfg.lr = 0.05;
    tg_optim *adam = tg_optim_new(ps, &cfg, &err);
    if (!adam) {
        fprintf(stderr, "%s\n", err.message);
        return 1;
    }

    /* The graph of one mini-batch, recorded once. tg_param puts a parameter
     * on the tape as a view: its value is the store's memory, and the
     * backward sweep adds into the store's gradient. */
    tg_tape *t = tg_tape_new();
    tg_node *x = tg_input(t, TG_F32, 2, (const int64_t[]){BATCH, 2}, NULL);
    tg_node *y = tg_input(t, TG_F32, 2, (const int64_t[]){BATCH, 1}, NULL);
    tg_node *z = tg_add(tg_matmul(x, tg_param(t, ps, "w")), tg_param(t, ps, "b"));
    /* The mean binary cross-entropy -y log p - (1 - y) log(1 - p) of
     * p = sigmoid(z), computed from the logits without overflow. */
    tg_node *loss = tg_bce_with_logits(z, y);
    if (tg_status(t)) {
        fprintf(stderr, "%s\n", tg_status_message(t));
        return 1;
    }

    uint32_t order[NTRAIN];
    for (int epoch = 0; epoch <= EPOCHS; epoch++) {
        for (uint32_t i = 0; i < NTRAIN; i++) order[i] = i;
        tg_rng_shuffle(&rng, order, NTRAIN);
        double total = 0;
        for (int start = 0; start < NTRAIN; start += BATCH) {
            float *xv = tg_value(x), *yv = tg_value(y);
            for (int r = 0; r < BATCH; r++) {
                uint32_t i = order[start + r];
                xv[2 * r] = xtrain[2 * i];
                xv[2 * r + 1] = xtrain[2 * i + 1];
                yv[r] = ytrain[i];
            }
            tg_forward(t); /* replay: every node from the new inputs */
            total += tg_value_scalar(loss);
            if (epoch == 0) continue; /* epoch 0 measures the untrained model */
            tg_backward(loss);   /* d loss / d w and d loss / d b, into the store */
            tg_optim_step(adam); /* Adam's update, and the gradients back to zero */
        }
        if (tg_status(t)) {
            fprintf(stderr, "%s\n", tg_status_message(t));
            return 1;
        }
        if (epoch % 5 == 0)
            printf("epoch %2d: loss %.6f, train accuracy %.4f\n", epoch,
                   total / (NTRAIN / BATCH), accuracy(ps, NTRAIN, xtrain, ytrain));
    }

    /* The learned line against the true one: the angle between the normals. */
    const float *w = tg_params_value(ps, tg_params_find(ps, "w"));
    const float *b = tg_params_value(ps, tg_params_find(ps, "b"));
    double cosine = (w[0] * TRUE_W[0] + w[1] * TRUE_W[1]) /
                    (hypot(w[0], w[1]) * hypot(TRUE_W[0], TRUE_W[1]));
    printf("w = (%.4f, %.4f), b = %.4f\n", w[0], w[1], b[0]);
    printf("angle to the true boundary: %.2f degrees\n",
           acos(fmin(1, cosine)) * 180 / 3.14159265358979323846);
    printf("test accuracy %.4f\n", accuracy(ps, NTEST, xtest, ytest));

    tg_tape_free(t);
    tg_optim_free(adam);
    tg_params_free(ps);
    return 0;
}
