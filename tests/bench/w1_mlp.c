/*
 * W1: the seeds' network on Fashion-MNIST through the graph API: 784-100-10,
 * sigmoid on both layers, quadratic cost averaged over the batch, plain SGD
 * eta 3.0, weights N(0,1)/sqrt(fan_in), float32, replay.
 *
 * Timed as every peer is (tests/bench/table.py says how): 1 + REPS epochs in
 * one process, each reshuffled; the first (cold) epoch is reported apart
 * (first_*), the figures without a prefix are the medians over the REPS
 * warm epochs. An epoch's time is its training loop (gather, forward,
 * backward, step), not the data loading. Test accuracy is measured after
 * the first epoch, the figure every W1 tool reports. Prints one key=value
 * line: samples/s, the backward sweep's time over the forward pass's, peak
 * RSS, and per epoch its seconds and minor page faults (epochs_s, faults).
 *   usage: w1_mlp BATCH [--reps R] [--samples N] [--data DIR] [--seed S]
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <tapegrad.h>

#include "bench.h"
#include <time.h>

enum { MAX_REPS = 50 };

static long minor_faults(void) {
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return ru.ru_minflt;
}

int main(int argc, char **argv) {
    int batch = argc > 1 ? atoi(argv[1]) : 0, reps = 3;
    const char *dir = "/usr/share/datasets/fashion-mnist";
    uint64_t seed = 1;
    size_t samples = 0;
    for (int i = 2; i + 1 < argc; i += 2) {
        if (!strcmp(argv[i], "--reps"))
            reps = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--samples"))
            samples = strtoull(argv[i + 1], NULL, 10);
        else if (!strcmp(argv[i], "--data"))
            dir = argv[i + 1];
        else if (!strcmp(argv[i], "--seed"))
            seed = strtoull(argv[i + 1], NULL, 10);
        else
            batch = 0;
    }
    if (batch < 1 || reps < 1 || reps >= MAX_REPS || argc % 2 != 0) {
        fprintf(stderr,
                "usage: w1_mlp BATCH [--reps R] [--samples N] [--data DIR] [--seed S]\n");
        return 2;
    }
    tg_error err;
    tg_dataset *train = tg_dataset_read_mnist(dir, "train", 10, &err);
    tg_dataset *test = train ? tg_dataset_read_mnist(dir, "t10k", 10, &err) : NULL;
    if (!test) {
        fprintf(stderr, "w1: %s\n", err.message);
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

    size_t n = tg_dataset_size(train);
    if (!samples || samples > n) samples = n;
    size_t steps = samples / (size_t)batch;
    uint32_t *order = malloc(n * sizeof *order);
    tg_rng rng;
    tg_rng_seed(&rng, seed + 1);
    double t_ep[MAX_REPS], t_fwd[MAX_REPS], t_bwd[MAX_REPS], accuracy = 0;
    long faults[MAX_REPS];
    for (int e = 0; e <= reps; e++) {
        for (size_t i = 0; i < n; i++) order[i] = (uint32_t)i;
        tg_rng_shuffle(&rng, order, n);
        double fwd = 0, bwd = 0;
        long f0 = minor_faults();
        double t0 = bench_now();
        for (size_t s = 0; s < steps; s++) {
            tg_dataset_gather(train, order + s * (size_t)batch, (size_t)batch, TG_F32, tg_value(x),
                              tg_value(y), 10);
            double a = bench_now();
            tg_forward(tape);
            double b = bench_now();
            tg_backward(cost);
            double c = bench_now();
            tg_optim_step(sgd);
            fwd += b - a, bwd += c - b;
        }
        t_ep[e] = bench_now() - t0, t_fwd[e] = fwd, t_bwd[e] = bwd;
        faults[e] = minor_faults() - f0;
        if (e == 0) tg_evaluate(ps, &net, TG_LOSS_MSE, test, &accuracy, NULL, NULL, NULL);
    }
    if (tg_status(tape)) {
        fprintf(stderr, "w1: %s\n", tg_status_message(tape));
        return 1;
    }
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    double done = (double)(steps * (size_t)batch), ep = bench_median(t_ep + 1, reps);
    double fwd = bench_median(t_fwd + 1, reps), bwd = bench_median(t_bwd + 1, reps);
    char list[MAX_REPS * 12] = "", flist[MAX_REPS * 12] = "";
    for (int e = 0; e <= reps; e++) {
        snprintf(list + strlen(list), sizeof list - strlen(list), "%s%.4f", e ? "," : "", t_ep[e]);
        snprintf(flist + strlen(flist), sizeof flist - strlen(flist), "%s%ld", e ? "," : "",
                 faults[e]);
    }
    /* A gradient by finite differences costs 1 + 79,510 forward passes
     * (one per parameter); by the sweep, one forward and one backward. */
    printf("peer=tapegrad workload=W1 batch=%d samples=%zu warm_reps=%d samples_per_s=%.0f "
           "first_samples_per_s=%.0f epoch_s=%.4f first_s=%.4f first_over_warm=%.2f "
           "test_accuracy=%.4f fwd_s=%.3f bwd_s=%.3f bwd_fwd=%.2f fd_over_sweep=%.0f "
           "peak_rss_mb=%.0f epochs_s=%s faults=%s\n",
           batch, steps * (size_t)batch, reps, done / ep, done / t_ep[0], ep, t_ep[0],
           t_ep[0] / ep, accuracy, fwd, bwd, bwd / fwd, 79511.0 * fwd / (fwd + bwd),
           (double)ru.ru_maxrss / 1024.0, list, flist);
    free(order);
    tg_tape_free(tape);
    tg_optim_free(sgd);
    tg_params_free(ps);
    tg_dataset_free(train);
    tg_dataset_free(test);
    return 0;
}
