/*
 * W1: one epoch of the seeds' network on Fashion-MNIST through the graph
 * API: 784-100-10, sigmoid on both layers, quadratic cost averaged over the
 * batch, plain SGD eta 3.0, weights N(0,1)/sqrt(fan_in), float32, replay.
 * Prints one key=value line: samples/s over the epoch's steps (data loading
 * excluded, as for the peers), test accuracy after the epoch, the time of
 * the backward sweep over the time of the forward pass, and peak RSS.
 *   usage: w1_mlp BATCH [DATA_DIR] [SEED]
 */
#include <stdio.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <tapegrad.h>
#include <time.h>

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

int main(int argc, char **argv) {
    int batch = argc > 1 ? atoi(argv[1]) : 10;
    const char *dir = argc > 2 ? argv[2] : "/usr/share/datasets/fashion-mnist";
    uint64_t seed = argc > 3 ? strtoull(argv[3], NULL, 10) : 1;
    tg_error err;
    tg_dataset *train = tg_dataset_read_mnist(dir, "train", 10, &err);
    tg_dataset *test = train ? tg_dataset_read_mnist(dir, "t10k", 10, &err) : NULL;
    if (batch < 1 || !test) {
        fprintf(stderr, "w1: %s\n", batch < 1 ? "bad batch size" : err.message);
        return 1;
    }
    tg_mlp net;
    tg_params *ps = tg_params_new(TG_F32);
    tg_mlp_parse(&net, "784,100,10", TG_ACT_SIGMOID, TG_ACT_SIGMOID, NULL);
    tg_mlp_init(ps, &net, TG_INIT_SCALED, TG_INIT_NORMAL, seed, NULL);
    tg_optim_config cfg = tg_optim_defaults(TG_OPT_SGD);
    cfg.lr = 3.0;
    tg_optim *sgd = tg_optim_new(ps, &cfg, NULL);

    tg_tape *tape = tg_tape_new();
    int64_t xshape[2] = {batch, 784}, yshape[2] = {batch, 10};
    tg_node *x = tg_input(tape, TG_F32, 2, xshape, NULL);
    tg_node *y = tg_input(tape, TG_F32, 2, yshape, NULL);
    tg_node *cost = tg_mse(tg_mlp_forward(x, ps, &net), y);

    size_t n = tg_dataset_size(train), steps = n / (size_t)batch;
    uint32_t *order = malloc(n * sizeof *order);
    tg_rng rng;
    tg_rng_seed(&rng, seed + 1);
    for (size_t i = 0; i < n; i++) order[i] = (uint32_t)i;
    tg_rng_shuffle(&rng, order, n);
    double t_fwd = 0, t_bwd = 0, t0 = now();
    for (size_t s = 0; s < steps; s++) {
        tg_dataset_gather(train, order + s * (size_t)batch, (size_t)batch, TG_F32, tg_value(x),
                          tg_value(y), 10);
        double a = now();
        tg_forward(tape);
        double b = now();
        tg_backward(cost);
        double c = now();
        tg_optim_step(sgd);
        t_fwd += b - a, t_bwd += c - b;
    }
    double total = now() - t0;
    if (tg_status(tape)) {
        fprintf(stderr, "w1: %s\n", tg_status_message(tape));
        return 1;
    }
    double accuracy = 0;
    tg_evaluate(ps, &net, TG_LOSS_MSE, test, &accuracy, NULL, NULL, NULL);
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    /* A gradient by finite differences costs 1 + 79,510 forward passes
     * (one per parameter); by the sweep, one forward and one backward. */
    printf("peer=tapegrad workload=W1 batch=%d samples=%zu samples_per_s=%.0f "
           "test_accuracy=%.4f fwd_s=%.3f bwd_s=%.3f bwd_fwd=%.2f fd_over_sweep=%.0f "
           "peak_rss_mb=%.0f\n",
           batch, steps * (size_t)batch, (double)(steps * (size_t)batch) / total, accuracy, t_fwd,
           t_bwd, t_bwd / t_fwd, 79511.0 * t_fwd / (t_fwd + t_bwd), (double)ru.ru_maxrss / 1024.0);
    free(order);
    tg_tape_free(tape);
    tg_optim_free(sgd);
    tg_params_free(ps);
    tg_dataset_free(train);
    tg_dataset_free(test);
    return 0;
}
