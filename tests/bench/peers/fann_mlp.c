/*
 * fann_mlp.c - W1 peer: FANN 2.2 (Debian libfann-dev, float build) training a
 * 784-100-10 sigmoid MLP on Fashion-MNIST, one epoch of mini-batch SGD.
 *
 * Usage: fann_mlp BATCH [--samples N] [--reps R] [--seed S] [--eta ETA]
 * Data:  $FMNIST_DIR or /usr/share/datasets/fashion-mnist, the Debian
 *        dataset-fashion-mnist IDX .gz files (decompressed through gzip -dc).
 *
 * Matching the W1 definition in FANN's terms (checked against FANN 2.2's
 * fann_train.c / fann_activation.h):
 *  - activation: FANN_SIGMOID computes 1/(1+exp(-2*s*x)) with steepness s; we set
 *    s = 0.5 on the hidden and output layers, giving the logistic 1/(1+exp(-x)).
 *    Its derivative in training is 2*s*y*(1-y) = y(1-y), but FANN first clips
 *    y to [0.01, 0.99] (fann_activation_derived), so saturated units keep a
 *    small gradient: the only deviation from the exact gradient of W1.
 *  - cost: FANN's train_error_function defaults to FANN_ERRORFUNC_TANH, which
 *    replaces the output error d = y - a by log((1+d)/(1-d)); we set
 *    FANN_ERRORFUNC_LINEAR so the output error is (y - a) * s'(z), i.e.
 *    -dC/dz for C = 1/2 * sum_outputs (a - y)^2.
 *  - update: with FANN_TRAIN_BATCH, fann_train_epoch runs every sample of the
 *    given train data, accumulating train_slopes += error * input (the sum over
 *    the samples of -dC_n/dw), then fann_update_weights_batch does
 *    w += slopes * (learning_rate / num_data).  With learning_rate = eta = 3.0
 *    and num_data = m (the mini-batch size) that is exactly
 *    w -= eta/m * sum_n dC_n/dw, i.e. SGD on the cost averaged over the batch.
 *    Learning momentum is 0 by default and is unused by batch training.
 *  - mini-batches: the full training set is one fann_train_data; each epoch
 *    its row pointers are shuffled (Fisher-Yates, seeded) into a second pointer
 *    array, and each mini-batch is a fann_train_data *view* of B consecutive
 *    row pointers (no sample is copied); fann_train_epoch(ann, &view) then
 *    performs exactly one mini-batch update.
 *  - initialisation: weights N(0,1)/sqrt(fan_in), biases N(0,1), written
 *    straight into ann->weights using the connection layout of a fully
 *    connected FANN_NETTYPE_LAYER network (each neuron's connections are the
 *    neurons of the previous layer in order, the bias neuron last).
 *
 * Timing covers the mini-batch loop only (not loading or the shuffle), and
 * follows every W1 tool: 1 + R epochs in one process (each reshuffled), the
 * first (cold) one reported apart as first_*, the others as their median;
 * test accuracy after the first epoch.
 * Output, one line:
 * peer=fann workload=W1 batch=10 threads=1 samples=60000 steps=6000 warm_reps=3
 *   samples_per_s=... first_samples_per_s=... epoch_s=... first_s=...
 *   first_over_warm=... epochs_s=... test_accuracy=... peak_rss_mb=... fann=2.2
 */
#define _POSIX_C_SOURCE 200112L
#include <floatfann.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + 1e-9 * ts.tv_nsec;
}

static uint64_t rng_s;
static uint64_t rng_next(void)
{
    /* splitmix64 */
    uint64_t z = (rng_s += 0x9E3779B97F4A7C15ULL);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    return z ^ (z >> 31);
}
static double rng_uniform(void) /* (0, 1) */
{
    return ((rng_next() >> 11) + 0.5) * (1.0 / 9007199254740992.0);
}
static double rng_normal(void) /* Box-Muller */
{
    static int have = 0;
    static double spare;
    if (have) {
        have = 0;
        return spare;
    }
    double u = rng_uniform(), v = rng_uniform();
    double r = sqrt(-2.0 * log(u)), t = 6.283185307179586 * v;
    spare = r * sin(t);
    have = 1;
    return r * cos(t);
}

/* Read a gzip'd IDX file fully; returns the payload after the header. */
static unsigned char *read_idx(const char *dir, const char *name, unsigned magic, int ndim,
                               unsigned dims[3])
{
    char cmd[1024];
    snprintf(cmd, sizeof cmd, "gzip -dc '%s/%s'", dir, name);
    FILE *f = popen(cmd, "r");
    if (!f) {
        perror("popen");
        exit(1);
    }
    unsigned char hdr[16];
    if (fread(hdr, 4, 1 + ndim, f) != (size_t)(1 + ndim)) {
        fprintf(stderr, "%s/%s: short header\n", dir, name);
        exit(1);
    }
    size_t total = 1;
    for (int i = 0; i <= ndim; i++) {
        unsigned v = (unsigned)hdr[4 * i] << 24 | (unsigned)hdr[4 * i + 1] << 16 |
                     (unsigned)hdr[4 * i + 2] << 8 | hdr[4 * i + 3];
        if (i == 0 && v != magic) {
            fprintf(stderr, "%s/%s: bad magic %#x\n", dir, name, v);
            exit(1);
        }
        if (i > 0) {
            dims[i - 1] = v;
            total *= v;
        }
    }
    unsigned char *p = malloc(total);
    if (!p || fread(p, 1, total, f) != total) {
        fprintf(stderr, "%s/%s: short read\n", dir, name);
        exit(1);
    }
    pclose(f);
    return p;
}

static struct fann_train_data *load(const char *dir, const char *split)
{
    char name[256];
    unsigned di[3], dl[3];
    snprintf(name, sizeof name, "%s-images-idx3-ubyte.gz", split);
    unsigned char *img = read_idx(dir, name, 0x803, 3, di);
    snprintf(name, sizeof name, "%s-labels-idx1-ubyte.gz", split);
    unsigned char *lab = read_idx(dir, name, 0x801, 1, dl);
    unsigned n = di[0], d = di[1] * di[2];
    if (dl[0] != n) {
        fprintf(stderr, "image/label count mismatch\n");
        exit(1);
    }
    struct fann_train_data *td = fann_create_train(n, d, 10);
    if (!td) {
        fprintf(stderr, "fann_create_train failed\n");
        exit(1);
    }
    for (unsigned i = 0; i < n; i++) {
        for (unsigned j = 0; j < d; j++)
            td->input[i][j] = img[(size_t)i * d + j] * (1.0f / 255.0f);
        for (unsigned k = 0; k < 10; k++)
            td->output[i][k] = k == lab[i] ? 1.0f : 0.0f;
    }
    free(img);
    free(lab);
    return td;
}

static void init_weights(struct fann *ann)
{
    for (struct fann_layer *L = ann->first_layer + 1; L != ann->last_layer; L++) {
        struct fann_neuron *bias = (L - 1)->last_neuron - 1; /* bias neuron of the previous layer */
        unsigned fan_in = (unsigned)((L - 1)->last_neuron - (L - 1)->first_neuron) - 1;
        double scale = 1.0 / sqrt((double)fan_in);
        /* the last neuron of a non-output layer is its own bias neuron: no inputs */
        for (struct fann_neuron *nu = L->first_neuron; nu != L->last_neuron; nu++) {
            for (unsigned c = nu->first_con; c < nu->last_con; c++) {
                if (ann->connections[c] == bias)
                    ann->weights[c] = (fann_type)rng_normal();
                else
                    ann->weights[c] = (fann_type)(rng_normal() * scale);
            }
        }
    }
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static int argmax10(const fann_type *v)
{
    int b = 0;
    for (int k = 1; k < 10; k++)
        if (v[k] > v[b])
            b = k;
    return b;
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: %s BATCH [--samples N] [--seed S] [--eta ETA]\n", argv[0]);
        return 2;
    }
    unsigned B = (unsigned)atoi(argv[1]);
    unsigned samples = 60000, seed = 1, reps = 3;
    double eta = 3.0;
    for (int i = 2; i + 1 < argc; i += 2) {
        if (!strcmp(argv[i], "--samples"))
            samples = (unsigned)atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--reps"))
            reps = (unsigned)atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--seed"))
            seed = (unsigned)atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--eta"))
            eta = atof(argv[i + 1]);
        else {
            fprintf(stderr, "unknown option %s\n", argv[i]);
            return 2;
        }
    }
    const char *dir = getenv("FMNIST_DIR");
    if (!dir || !*dir)
        dir = "/usr/share/datasets/fashion-mnist";
    rng_s = 0x5EEDULL + seed;

    struct fann_train_data *train = load(dir, "train");
    struct fann_train_data *test = load(dir, "t10k");
    if (reps < 1 || reps > 50) {
        fprintf(stderr, "--reps must be 1 to 50\n");
        return 2;
    }
    if (samples > train->num_data)
        samples = train->num_data;

    struct fann *ann = fann_create_standard(3, 784, 100, 10);
    fann_set_activation_function_hidden(ann, FANN_SIGMOID);
    fann_set_activation_function_output(ann, FANN_SIGMOID);
    fann_set_activation_steepness_hidden(ann, 0.5f);
    fann_set_activation_steepness_output(ann, 0.5f);
    fann_set_train_error_function(ann, FANN_ERRORFUNC_LINEAR);
    fann_set_training_algorithm(ann, FANN_TRAIN_BATCH);
    fann_set_learning_rate(ann, (float)eta);
    fann_set_learning_momentum(ann, 0.0f);
    init_weights(ann);

    /* seeded shuffle of the row pointers, anew each epoch: the data itself
     * is never copied */
    unsigned n = train->num_data;
    fann_type **in = malloc(sizeof *in * n), **out = malloc(sizeof *out * n);
    unsigned *perm = malloc(sizeof *perm * n);
    struct fann_train_data view;
    memset(&view, 0, sizeof view);
    view.num_input = train->num_input;
    view.num_output = train->num_output;

    unsigned steps = 0;
    double ep_s[51], acc = 0;
    for (unsigned e = 0; e <= reps; e++) {
        for (unsigned i = 0; i < n; i++)
            perm[i] = i;
        for (unsigned i = n - 1; i > 0; i--) {
            unsigned j = (unsigned)(rng_next() % (i + 1));
            unsigned t = perm[i];
            perm[i] = perm[j];
            perm[j] = t;
        }
        for (unsigned i = 0; i < n; i++) {
            in[i] = train->input[perm[i]];
            out[i] = train->output[perm[i]];
        }
        steps = 0;
        double t0 = now();
        for (unsigned i = 0; i < samples; i += B) {
            view.num_data = samples - i < B ? samples - i : B;
            view.input = in + i;
            view.output = out + i;
            fann_train_epoch(ann, &view);
            steps++;
        }
        ep_s[e] = now() - t0;
        if (e == 0) { /* after the first epoch, as every W1 tool reports */
            unsigned correct = 0;
            for (unsigned i = 0; i < test->num_data; i++) {
                fann_type *o = fann_run(ann, test->input[i]);
                correct += argmax10(o) == argmax10(test->output[i]);
            }
            acc = (double)correct / test->num_data;
        }
    }
    double warm[50];
    memcpy(warm, ep_s + 1, reps * sizeof *warm);
    qsort(warm, reps, sizeof *warm, cmp_double);
    double ep = reps % 2 ? warm[reps / 2] : 0.5 * (warm[reps / 2 - 1] + warm[reps / 2]);
    char list[51 * 12] = "";
    for (unsigned e = 0; e <= reps; e++)
        snprintf(list + strlen(list), sizeof list - strlen(list), "%s%.4f", e ? "," : "", ep_s[e]);

    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    printf("peer=fann workload=W1 batch=%u threads=1 samples=%u steps=%u warm_reps=%u "
           "samples_per_s=%.6g first_samples_per_s=%.6g epoch_s=%.6g first_s=%.6g "
           "first_over_warm=%.3g epochs_s=%s test_accuracy=%.6g peak_rss_mb=%.6g fann=2.2\n",
           B, samples, steps, reps, samples / ep, samples / ep_s[0], ep, ep_s[0], ep_s[0] / ep,
           list, acc, ru.ru_maxrss / 1024.0);

    fann_destroy(ann);
    fann_destroy_train(train);
    fann_destroy_train(test);
    free(in);
    free(out);
    free(perm);
    return 0;
}
