/* Trains the seeds' network (784-100-10, sigmoid, quadratic cost, SGD with
 * eta 3.0 on mini-batches of 10) on Fashion-MNIST for two epochs, with the
 * training loop written out: the graph of one mini-batch is recorded once
 * and replayed for every batch. Usage: mlp [DATA_DIR] */
#include <stdio.h>
#include <stdlib.h>
#include <tapegrad.h>

enum { BATCH = 10, EPOCHS = 2 };

int main(int argc, char **argv) {
    const char *dir = argc > 1 ? argv[1] : "/usr/share/datasets/fashion-mnist";
    tg_error err;
    tg_dataset *train = tg_dataset_read_mnist(dir, "train", 10, &err);
    tg_dataset *test = train ? tg_dataset_read_mnist(dir, "t10k", 10, &err) : NULL;
    if (!test) {
        fprintf(stderr, "%s\n(apt-get install dataset-fashion-mnist)\n", err.message);
        return 1;
    }

    /* Parameters layer1.W [784,100], layer1.b, layer2.W [100,10], layer2.b,
     * outside any tape, initialised N(0,1)/sqrt(fan_in) and N(0,1). */
    tg_mlp net;
    tg_params *ps = tg_params_new(TG_F32);
    tg_mlp_parse(&net, "784,100,10", TG_ACT_SIGMOID, TG_ACT_SIGMOID, NULL);
    tg_mlp_init(ps, &net, TG_INIT_SCALED, TG_INIT_NORMAL, 1, NULL);
    tg_optim_config cfg = tg_optim_defaults(TG_OPT_SGD);
    cfg.lr = 3.0;
    tg_optim *sgd = tg_optim_new(ps, &cfg, NULL);

    /* The graph of one mini-batch, recorded once: C = 1/(2B) sum ||a - y||^2. */
    tg_tape *tape = tg_tape_new();
    int64_t xshape[2] = {BATCH, 784}, yshape[2] = {BATCH, 10};
    tg_node *x = tg_input(tape, TG_F32, 2, xshape, NULL);
    tg_node *y = tg_input(tape, TG_F32, 2, yshape, NULL);
    tg_node *cost = tg_mse(tg_mlp_forward(x, ps, &net), y);
    if (tg_status(tape)) {
        fprintf(stderr, "%s\n", tg_status_message(tape));
        return 1;
    }

    size_t n = tg_dataset_size(train);
    uint32_t *order = malloc(n * sizeof *order);
    tg_rng rng;
    tg_rng_seed(&rng, 2);
    for (int epoch = 1; epoch <= EPOCHS; epoch++) {
        for (size_t i = 0; i < n; i++) order[i] = (uint32_t)i;
        tg_rng_shuffle(&rng, order, n); /* shuffle indices, not the data */
        double total = 0;
        /* 60,000 is a multiple of 10; tg_trainer also handles a short last
         * batch, through a second graph of that size. */
        for (size_t b = 0; b + BATCH <= n; b += BATCH) {
            tg_dataset_gather(train, order + b, BATCH, TG_F32, tg_value(x), tg_value(y), 10);
            tg_forward(tape);   /* replay the recorded graph on the new batch */
            tg_backward(cost);  /* BP1-BP4 by the ops' backward rules, adding into zero grads */
            tg_optim_step(sgd); /* w -= eta * dC/dw, and the gradients back to zero */
            total += tg_value_scalar(cost);
        }
        double accuracy;
        tg_evaluate(ps, &net, TG_LOSS_MSE, test, &accuracy, NULL, NULL, NULL);
        printf("epoch=%d train_loss=%.6f test_accuracy=%.4f\n", epoch,
               total / (double)(n / BATCH), accuracy);
    }

    free(order);
    tg_tape_free(tape);
    tg_optim_free(sgd);
    tg_params_free(ps);
    tg_dataset_free(train);
    tg_dataset_free(test);
    return 0;
}
