/*
 * tapegrad train / tapegrad eval: train an MLP on an MNIST-format dataset
 * or a CSV file through the library's replay trainer, save it, evaluate a
 * saved model.
 */
#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <tapegrad.h>
#include <unistd.h>
#include <zlib.h>

#include "cli.h"
#include "model.h"
#include "mpi_cli.h"
#include "report.h"
#include "train_opts.h"
#include "safe_file.h"

#define DEFAULT_DATA TG_CLI_DEFAULT_DATA

static const train_opts seeds_recipe = {
    .data = DEFAULT_DATA, .layers = "784,100,10", .act = TG_ACT_SIGMOID, .output = -1,
    .loss = TG_LOSS_MSE, .optimizer = TG_OPT_SGD, .winit = -1, .binit = -1, .lr = 3.0, .lr_decay = 1,
    .momentum = 0.9, .scale = 1, .batch = 10, .epochs = 10, .seed = 1, .dtype = TG_F32};

/* The recipe of --preset best: measured at 0.89+ test accuracy on
 * Fashion-MNIST (docs/tutorial.md has the figures). */
static const train_opts best_recipe = {
    .data = DEFAULT_DATA, .layers = "784,256,128,10", .act = TG_ACT_RELU, .output = -1,
    .loss = TG_LOSS_XENT, .optimizer = TG_OPT_ADAM, .winit = -1, .binit = -1, .lr = 1e-3, .lr_decay = 0.8,
    .momentum = 0.9, .scale = 1, .batch = 64, .epochs = 15, .seed = 1, .dtype = TG_F32};

static void train_usage(FILE *f) {
    fprintf(f,
            "usage: tapegrad train [OPTIONS]\n"
            "\n"
            "Trains an MLP on an MNIST-format dataset or a CSV file by mini-batch gradient\n"
            "descent and prints one line per epoch, then the final test accuracy:\n"
            "  epoch=E train_loss=L test_accuracy=A seconds=S\n"
            "  ...\n"
            "  test_accuracy=A\n"
            "On a terminal a progress line shows what is being done, samples/s and the\n"
            "time left for the whole run. Training that diverges (a loss or a parameter\n"
            "that becomes NaN or infinite) stops with a message naming the epoch and the\n"
            "step, and exit status 1; nothing is saved then.\n"
            "The defaults are the seeds' network: 784-100-10, sigmoid, quadratic cost,\n"
            "SGD with eta 3.0, mini-batches of 10, 10 epochs.\n"
            "\n"
            "options:\n"
            "  --data DIR|FILE     a dataset directory holding {train,t10k}-{images-idx3,\n"
            "                      labels-idx1}-ubyte[.gz] (default %s),\n"
            "                      or a CSV file (gzipped or not): one sample per line,\n"
            "                      the label and the features; a header line is skipped\n"
            "  --label-col N       CSV: the label's column, from 0 (default 0)\n"
            "  --scale X           CSV: multiply the features by X, e.g. 1/255 for pixels\n"
            "                      (default 1)\n"
            "  --test DIR|FILE     the test set: a directory's t10k files or a CSV file\n"
            "                      (default: DIR's t10k files; for a CSV --data, its\n"
            "                      last 10%% of samples)\n"
            "  --layers LIST       layer sizes, e.g. 784,100,10: as many inputs as the\n"
            "                      data has features, as many outputs as it has classes\n"
            "  --activation ACT    hidden layers: sigmoid, tanh, relu or identity\n"
            "  --output ACT        output layer (default: ACT with mse, identity with xent)\n"
            "  --loss LOSS         mse (quadratic cost) or xent (softmax cross-entropy)\n"
            "  --optimizer OPT     sgd, momentum or adam\n"
            "  --lr X              learning rate eta\n"
            "  --lr-decay X        multiply the learning rate by X after each epoch\n"
            "                      (default 1: constant)\n"
            "  --momentum X        momentum coefficient (default 0.9)\n"
            "  --weight-decay X    L2 weight decay on the weights (default 0)\n"
            "  --init W[,B]        initialisers of weights and biases: normal, scaled\n"
            "                      (N(0,1)/sqrt(fan_in)), xavier, he, zero (default:\n"
            "                      scaled,normal; he,zero for relu)\n"
            "  --batch N           mini-batch size\n"
            "  --epochs N          number of epochs\n"
            "  --limit N           train on the first N training samples only (a quick\n"
            "                      run; the test set is whole)\n"
            "  --seed N            seed of the initialisation and the shuffling (default 1)\n"
            "  --dtype f32|f64     parameter and arithmetic precision (default f32)\n"
            "  --valid N           hold out the last N training samples as a validation\n"
            "                      set; adds valid_accuracy=V to each epoch line\n"
            "  --threads N         threads of the BLAS matrix products (default 1, unless\n"
            "                      OPENBLAS_NUM_THREADS or OMP_NUM_THREADS is set); used\n"
            "                      only when a layer's product, batch x inputs x outputs,\n"
            "                      reaches 2^28 multiply-adds: smaller ones run faster\n"
            "                      in one thread\n"
            "  --save FILE         save the trained model (see tapegrad eval)\n"
            "  --checkpoint FILE   save the whole training (model, optimiser state,\n"
            "                      position, settings) to FILE at the end of every\n"
            "                      epoch, replacing it atomically; --resume FILE carries on\n"
            "  --checkpoint-every N  also every N steps (mini-batches)\n"
            "  --resume FILE       carry on the training of checkpoint FILE where it\n"
            "                      stopped, with its settings, and keep checkpointing to\n"
            "                      FILE (unless --checkpoint names another): the result is\n"
            "                      bit for bit that of a training never stopped. Options\n"
            "                      that contradict the checkpoint's are refused; --epochs,\n"
            "                      --checkpoint-every and the files may change\n"
            "  --log FILE          write the per-epoch figures as CSV\n"
            "  --plot FILE         draw the loss and accuracy curves with gnuplot, in the\n"
            "                      format of FILE's extension: .png, .svg, .pdf or .eps\n"
            "  --preset NAME       seeds: the defaults; best: 784-256-128-10 relu,\n"
            "                      softmax cross-entropy, Adam lr 0.001 decayed by 0.8\n"
            "                      per epoch, batch 64, 15 epochs. Other options given\n"
            "                      change the preset.\n"
            "  -h, --help          this text\n"
            "\n"
            "Under mpirun (when built with MPI) N processes train together: each takes\n"
            "its slice of every mini-batch and the gradients are averaged after each\n"
            "step, so 'mpirun -np 2 tapegrad train --batch 10' makes the updates of\n"
            "--batch 20 on one process (--batch is per process). Only rank 0 prints\n"
            "and writes files (checkpoints too); every rank reads --resume's file.\n",
            DEFAULT_DATA);
}

static void eval_usage(FILE *f) {
    fprintf(f,
            "usage: tapegrad eval --model FILE [--data DIR|FILE] [--label-col N] [--scale X]\n"
            "\n"
            "Evaluates a model saved by 'tapegrad train --save FILE' on a labelled\n"
            "dataset and prints test_accuracy=A and the confusion matrix (rows: true\n"
            "label, columns: predicted label).\n"
            "\n"
            "options:\n"
            "  --model FILE        the saved model\n"
            "  --data DIR|FILE     a directory's t10k-{images-idx3,labels-idx1}-ubyte[.gz]\n"
            "                      files (default %s), or a CSV file\n"
            "  --label-col N       CSV: the label's column, from 0 (default 0)\n"
            "  --scale X           CSV: multiply the features by X, e.g. 1/255 (default 1)\n"
            "  -h, --help          this text\n",
            DEFAULT_DATA);
}

/* ---------------------------------------------------------- arguments -- */

int tg_cli_train_option(train_opts *o, int argc, char **argv, int *i) {
    const char *opt = argv[*i];
    if (!strncmp(opt, "--", 2) && *i + 1 >= argc) {
        fprintf(stderr, "tapegrad train: %s needs a value\n", opt);
        return 2;
    }
    const char *v = argv[*i + 1];
    long n;
    double x;
    int k;
    (*i)++;
    if (!strcmp(opt, "--data")) {
        o->data = v;
    } else if (!strcmp(opt, "--test")) {
        o->test = v;
    } else if (!strcmp(opt, "--label-col")) {
        if (!tg_cli_parse_long(v, 0, 1 << 20, &n))
            return tg_cli_bad_value("train", opt, v, "expected a column number >= 0");
        o->label_col = n;
        o->csv_options = true;
    } else if (!strcmp(opt, "--scale")) {
        if (!tg_cli_parse_scale(v, &x) || x == 0)
            return tg_cli_bad_value("train", opt, v, "expected a number other than 0, or A/B");
        o->scale = x;
        o->csv_options = true;
    } else if (!strcmp(opt, "--layers")) {
        o->layers = v;
    } else if (!strcmp(opt, "--activation")) {
        if ((k = tg_activation_parse(v)) < 0)
            return tg_cli_bad_value("train", opt, v, "expected sigmoid, tanh, relu or identity");
        o->act = k;
    } else if (!strcmp(opt, "--output")) {
        if ((k = tg_activation_parse(v)) < 0)
            return tg_cli_bad_value("train", opt, v, "expected sigmoid, tanh, relu or identity");
        o->output = k;
    } else if (!strcmp(opt, "--loss")) {
        if ((k = tg_loss_parse(v)) < 0) return tg_cli_bad_value("train", opt, v, "expected mse or xent");
        o->loss = k;
    } else if (!strcmp(opt, "--optimizer") || !strcmp(opt, "--optimiser")) {
        if ((k = tg_optimizer_parse(v)) < 0)
            return tg_cli_bad_value("train", opt, v, "expected sgd, momentum or adam");
        o->optimizer = k;
    } else if (!strcmp(opt, "--lr")) {
        if (!tg_cli_parse_double(v, &x) || x <= 0) return tg_cli_bad_value("train", opt, v, "expected a number > 0");
        o->lr = x;
    } else if (!strcmp(opt, "--lr-decay")) {
        if (!tg_cli_parse_double(v, &x) || x <= 0 || x > 1)
            return tg_cli_bad_value("train", opt, v, "expected a number in (0, 1]");
        o->lr_decay = x;
    } else if (!strcmp(opt, "--momentum")) {
        if (!tg_cli_parse_double(v, &x) || x < 0 || x >= 1)
            return tg_cli_bad_value("train", opt, v, "expected a number in [0, 1)");
        o->momentum = x;
    } else if (!strcmp(opt, "--weight-decay")) {
        if (!tg_cli_parse_double(v, &x) || x < 0) return tg_cli_bad_value("train", opt, v, "expected a number >= 0");
        o->weight_decay = x;
    } else if (!strcmp(opt, "--init")) {
        char w[32] = "", b[32] = "";
        const char *comma = strchr(v, ',');
        size_t wl = comma ? (size_t)(comma - v) : strlen(v);
        if (wl < sizeof w) memcpy(w, v, wl), w[wl] = '\0';
        if (comma && strlen(comma + 1) < sizeof b) strcpy(b, comma + 1);
        int wi = tg_init_parse(w), bi = comma ? tg_init_parse(b) : -2;
        if (wi < 0 || bi == -1)
            return tg_cli_bad_value("train", opt, v, "expected W[,B] from normal, scaled, xavier, he, zero");
        o->winit = wi;
        if (bi >= 0) o->binit = bi;
    } else if (!strcmp(opt, "--batch")) {
        if (!tg_cli_parse_long(v, 1, 1 << 20, &n)) return tg_cli_bad_value("train", opt, v, "expected 1 to 1048576");
        o->batch = n;
    } else if (!strcmp(opt, "--epochs")) {
        if (!tg_cli_parse_long(v, 0, 100000, &n)) return tg_cli_bad_value("train", opt, v, "expected 0 to 100000");
        o->epochs = n;
    } else if (!strcmp(opt, "--limit")) {
        if (!tg_cli_parse_long(v, 1, 1L << 31, &n)) return tg_cli_bad_value("train", opt, v, "expected a count >= 1");
        o->limit = n;
    } else if (!strcmp(opt, "--threads")) {
        if (!tg_cli_parse_long(v, 1, 1024, &n)) return tg_cli_bad_value("train", opt, v, "expected 1 to 1024");
        o->threads = n;
    } else if (!strcmp(opt, "--valid")) {
        if (!tg_cli_parse_long(v, 0, 1L << 31, &n)) return tg_cli_bad_value("train", opt, v, "expected a count >= 0");
        o->valid = n;
    } else if (!strcmp(opt, "--seed")) {
        char *end;
        errno = 0;
        unsigned long long s = strtoull(v, &end, 10);
        if (errno || end == v || *end || *v == '-')
            return tg_cli_bad_value("train", opt, v, "expected a non-negative integer");
        o->seed = s;
    } else if (!strcmp(opt, "--dtype")) {
        if (!strcmp(v, "f32") || !strcmp(v, "float32"))
            o->dtype = TG_F32;
        else if (!strcmp(v, "f64") || !strcmp(v, "float64"))
            o->dtype = TG_F64;
        else
            return tg_cli_bad_value("train", opt, v, "expected f32 or f64");
    } else if (!strcmp(opt, "--save")) {
        o->save = v;
    } else if (!strcmp(opt, "--checkpoint")) {
        o->checkpoint = v;
    } else if (!strcmp(opt, "--checkpoint-every")) {
        if (!tg_cli_parse_long(v, 1, 1L << 40, &n)) return tg_cli_bad_value("train", opt, v, "expected a number of steps >= 1");
        o->checkpoint_every = n;
    } else if (!strcmp(opt, "--resume")) {
        o->resume = v;
    } else if (!strcmp(opt, "--log")) {
        o->log = v;
    } else if (!strcmp(opt, "--plot")) {
        if (!tg_plot_terminal(v)) {
            fprintf(stderr, "tapegrad train: --plot '%s': the name must end in %s (the "
                    "picture's format)\n", v, tg_plot_formats);
            return 2;
        }
        o->plot = v;
    } else if (!strcmp(opt, "--preset")) {
        /* handled before the other options */
    } else {
        (*i)--;
        fprintf(stderr, "tapegrad train: unknown option '%s' (tapegrad train --help)\n", opt);
        return 2;
    }
    return 0;
}

/* ---------------------------------------------------------------- data -- */

/* Reads the training and test sets of o, with a status line on bar. The
 * classes are the training set's (its largest label + 1); the test set's
 * labels must be below. Returns 0, or the exit status after printing why. */
static int read_sets(const train_opts *o, int64_t features, tg_progress *bar,
                     tg_dataset **train, tg_dataset **test) {
    const bool dir = tg_cli_is_dir(o->data);
    if (dir && o->csv_options) {
        fprintf(stderr, "tapegrad train: --label-col and --scale apply to CSV data; %s is a "
                "directory of IDX files\n", o->data);
        return 2;
    }
    tg_cli_data d = {o->data, (int)o->label_col, o->scale, NULL, features};
    tg_error e;
    tg_progress_status(bar, "loading %s ...", o->data);
    *train = tg_cli_read_data(&d, "train", 0, &e);
    if (!*train) {
        tg_progress_end(bar);
        tg_cli_no_data("train", &d, &e);
        return 1;
    }
    int classes = tg_dataset_classes(*train);
    if (o->test) {
        d.path = o->test;
        d.option = "--test";
        tg_progress_status(bar, "loading %s ...", o->test);
        *test = tg_cli_read_data(&d, "t10k", classes, &e);
    } else if (dir) {
        *test = tg_cli_read_data(&d, "t10k", classes, &e);
    } else {
        size_t n = tg_dataset_size(*train), k = n / 10 ? n / 10 : 1;
        *test = tg_dataset_split(*train, k, &e);
        if (*test && tg_cli_mpi_rank() == 0)
            fprintf(stderr, "tapegrad train: the last %zu samples of %s are the test set "
                    "(--test FILE names another)\n", k, o->data);
    }
    tg_progress_end(bar);
    if (!*test) {
        tg_cli_no_data("train", &d, &e);
        tg_dataset_free(*train);
        *train = NULL;
        return 1;
    }
    return 0;
}

/* v in the fewest digits that read back as v (0.1, not 0.10000000000000001). */
static const char *exact(char buf[32], double v) {
    for (int digits = 1; digits <= 17; digits++) {
        snprintf(buf, 32, "%.*g", digits, v);
        if (strtod(buf, NULL) == v) break;
    }
    return buf;
}

/* The options that shape a training, one "--option value" a line, and a
 * fingerprint of its training data: what every MPI rank must share. */
static void describe_run(char *buf, size_t len, const train_opts *o, tg_init winit,
                         tg_init binit, tg_activation out_act, const tg_dataset *train) {
    size_t n = tg_dataset_size(train), d = (size_t)tg_dataset_features(train);
    char num[4][32];
    uLong crc = crc32(0L, Z_NULL, 0);
    const void *parts[2] = {tg_dataset_x(train), tg_dataset_labels(train)};
    const size_t bytes[2] = {n * d * sizeof(float), n * sizeof(int32_t)};
    for (int k = 0; k < 2; k++) /* zlib takes 32-bit lengths */
        for (size_t at = 0; at < bytes[k]; at += 1u << 30)
            crc = crc32(crc, (const unsigned char *)parts[k] + at,
                        (uInt)(bytes[k] - at < (1u << 30) ? bytes[k] - at : 1u << 30));
    snprintf(buf, len,
             "--layers %s\n--activation %s\n--output %s\n--loss %s\n--optimizer %s\n"
             "--lr %s\n--lr-decay %s\n--momentum %s\n--weight-decay %s\n"
             "--init %s,%s\n--batch %ld\n--epochs %ld\n--seed %llu\n--dtype %s\n"
             "--valid %ld\n--limit %ld\n"
             "data of %zu samples, %zu features, %d classes, CRC32 %08lx",
             o->layers, tg_activation_name((tg_activation)o->act), tg_activation_name(out_act),
             tg_loss_name((tg_loss)o->loss), tg_optimizer_name((tg_optimizer)o->optimizer),
             exact(num[0], o->lr), exact(num[1], o->lr_decay), exact(num[2], o->momentum),
             exact(num[3], o->weight_decay), tg_init_name(winit), tg_init_name(binit),
             o->batch, o->epochs, o->seed, o->dtype == TG_F64 ? "f64" : "f32", o->valid,
             o->limit, n, d, tg_dataset_classes(train), (unsigned long)crc);
}

/* Whether the network m fits the data: exit status 2 after saying what to
 * change, or 0. */
static int check_fit(const train_opts *o, const tg_mlp *m, const tg_dataset *ds) {
    long long in = m->sizes[0], out = m->sizes[m->nlayers];
    long long features = tg_dataset_features(ds), classes = tg_dataset_classes(ds);
    if (features != in) {
        fprintf(stderr, "tapegrad train: --layers %s: the first layer takes %lld inputs, but "
                "the data has %lld features per sample\n", o->layers, in, features);
        return 2;
    }
    if (classes != out) {
        fprintf(stderr, "tapegrad train: --layers %s: the last layer has %lld outputs, but the "
                "data has %lld classes (labels 0 to %lld); make the last size %lld\n",
                o->layers, out, classes, classes - 1, classes);
        return 2;
    }
    return 0;
}

/* -------------------------------------------------------------- train -- */

/* OpenBLAS's second thread pays only for large products: measured on 2
 * cores, 2 threads run W1's 784-100-10 products at batch 128 (10^7
 * multiply-adds) 0.6-0.9x as fast as one, with epochs varying 2.5x, and
 * W3's 1024-row, 784-1024 product (8 x 10^8) 1.4-1.6x faster
 * (docs/performance.md, "Threads"). */
#define BLAS_PAR_MACS (1 << 28)

/* The BLAS threads for --threads: o->threads when some layer's product at
 * the batch size reaches BLAS_PAR_MACS, else 1 (0 leaves the default). */
static long blas_threads(const train_opts *o, const tg_mlp *m) {
    if (o->threads <= 1) return o->threads;
    double most = 0;
    for (int l = 0; l < m->nlayers; l++)
        most = fmax(most, (double)o->batch * (double)m->sizes[l] * (double)m->sizes[l + 1]);
    return most >= BLAS_PAR_MACS ? o->threads : 1;
}

static int train(int argc, char **argv);
static int run_training(const train_opts *opts, tg_training *ckpt, uint64_t ckpt_fp);

/* Under mpirun every rank runs train(); see mpi_cli.h. */
int tg_cli_train(int argc, char **argv) {
    tg_cli_mpi_begin();
    return tg_cli_mpi_end(train(argc, argv));
}

static int train(int argc, char **argv) {
    train_opts o = seeds_recipe;
    bool given[TG_CLI_SETTINGS] = {false};
    const char *preset = NULL;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) {
            train_usage(stdout);
            return 0;
        }
        if (!strcmp(argv[i], "--preset")) {
            if (i + 1 >= argc) {
                fprintf(stderr, "tapegrad train: --preset needs a value\n");
                return 2;
            }
            if (!strcmp(argv[i + 1], "best"))
                o = best_recipe;
            else if (!strcmp(argv[i + 1], "seeds"))
                o = seeds_recipe;
            else
                return tg_cli_bad_value("train", "--preset", argv[i + 1], "expected best or seeds");
            preset = argv[++i];
        }
    }
    for (int i = 1; i < argc; i++) {
        if (strncmp(argv[i], "--", 2) && strcmp(argv[i], "-h")) {
            fprintf(stderr, "tapegrad train: unexpected argument '%s' (tapegrad train --help)\n",
                    argv[i]);
            return 2;
        }
        int setting = tg_cli_setting_of(argv[i]);
        if (setting >= 0) given[setting] = true;
        int rc = tg_cli_train_option(&o, argc, argv, &i);
        if (rc) return rc;
    }
    if (o.save && o.checkpoint && !strcmp(o.save, o.checkpoint)) {
        fprintf(stderr, "tapegrad train: --save and --checkpoint name the same file, %s: the "
                "model saved at the end would replace the checkpoint\n", o.save);
        return 2;
    }
    if (o.checkpoint_every && !o.checkpoint && !o.resume) {
        fprintf(stderr, "tapegrad train: --checkpoint-every needs --checkpoint FILE\n");
        return 2;
    }
    if (!o.resume) return run_training(&o, NULL, 0);
    tg_error e;
    tg_training *ckpt = tg_training_read(o.resume, &e);
    if (!ckpt) {
        fprintf(stderr, "tapegrad train: --resume: %s\n", e.message);
        return 1;
    }
    train_opts cmd = o;
    uint64_t fp = 0;
    char *strings = NULL;
    int status = tg_cli_resume_opts(&o, &seeds_recipe, &cmd, given, preset,
                                    tg_training_settings(ckpt), &fp, &strings);
    if (!status) status = run_training(&o, ckpt, fp);
    free(strings);
    tg_training_free(ckpt);
    return status;
}

/* The checkpoints of --checkpoint: at each epoch's end and, with
 * --checkpoint-every N, after every N-th step (counted over the whole
 * training, so a resumed one keeps the same rhythm). Under mpirun every
 * rank takes the position (collective), rank 0 writes. */
typedef struct ckpt_ctx {
    const char *path;
    long every;
    tg_params *ps;
    tg_optim *opt;
    tg_cli_trainer *tr;
    bool failed; /* a save failed; its message is printed */
    char settings[16384];
} ckpt_ctx;

static int save_checkpoint(ckpt_ctx *ck) {
    tg_train_position pos;
    tg_error e = {TG_ERR_STATE, "the trainer has no position"};
    if (tg_cli_trainer_position(ck->tr, &pos) ||
        (tg_cli_mpi_rank() == 0 &&
         tg_training_save(ck->ps, ck->opt, &pos, ck->settings, ck->path, &e))) {
        fprintf(stderr, "tapegrad train: --checkpoint: %s\n", e.message);
        ck->failed = true;
        return TG_ERR_IO;
    }
    return 0;
}

static int checkpoint_step(void *ctx, int64_t step) {
    (void)step;
    ckpt_ctx *ck = ctx;
    return ck->every && tg_optim_steps(ck->opt) % ck->every == 0 ? save_checkpoint(ck) : 0;
}

/* Opens the --log file of a training resumed at epoch `first` for rows to
 * be appended: keeps its header and its rows of earlier epochs, cutting
 * those of later ones (written after the checkpoint, they come again) with
 * one truncation, so that a kill at any moment loses no row before the
 * checkpoint. NULL with errno set. *header: whether the file had none. */
static FILE *reopen_log(const char *path, int first, bool *header) {
    FILE *f = fopen(path, "a+");
    if (!f) return NULL;
    char line[4096];
    long keep = 0;
    *header = true;
    rewind(f);
    while (fgets(line, sizeof line, f)) {
        if (!strncmp(line, "epoch,", 6))
            *header = false;
        else if (atoi(line) >= first)
            break;
        keep = ftell(f);
    }
    if (keep < 0 || ftruncate(fileno(f), keep) || fseek(f, 0, SEEK_END)) {
        int saved = errno;
        fclose(f);
        errno = saved;
        return NULL;
    }
    return f;
}

static int run_training(const train_opts *opts, tg_training *ckpt, uint64_t ckpt_fp) {
    const bool root = tg_cli_mpi_rank() == 0;
    train_opts o = *opts;
    tg_error e;
    tg_mlp m;
    tg_activation out_act = o.output >= 0 ? (tg_activation)o.output
                            : o.loss == TG_LOSS_XENT ? TG_ACT_IDENTITY
                                                     : (tg_activation)o.act;
    if (tg_mlp_parse(&m, o.layers, (tg_activation)o.act, out_act, &e)) {
        fprintf(stderr, "tapegrad train: --layers: %s\n", e.message);
        return 2;
    }
    long blas = blas_threads(&o, &m);
    if (blas != o.threads && root)
        fprintf(stderr, "tapegrad train: --threads %ld: the matrix products of --layers %s at "
                "--batch %ld are below 2^28 multiply-adds, faster in one BLAS thread\n",
                o.threads, o.layers, o.batch);
    tg_cli_blas_threads((int)blas);
    tg_init winit = o.winit >= 0 ? (tg_init)o.winit
                    : o.act == TG_ACT_RELU ? TG_INIT_HE
                                           : TG_INIT_SCALED;
    tg_init binit = o.binit >= 0 ? (tg_init)o.binit
                    : o.act == TG_ACT_RELU ? TG_INIT_ZERO
                                           : TG_INIT_NORMAL;

    tg_progress bar;
    tg_progress_begin(&bar, (int)o.epochs);
    bar.on = bar.on && !tg_cli_mpi_active(); /* mpirun's pty is no sign of a terminal */
    tg_dataset *train = NULL, *test = NULL, *valid = NULL;
    int status = read_sets(&o, m.sizes[0], &bar, &train, &test);
    if (status) return status;
    status = 1;
    if (o.limit) tg_dataset_truncate(train, (size_t)o.limit);
    tg_params *ps = NULL;
    tg_optim *opt = NULL;
    tg_cli_trainer *tr = NULL;
    FILE *log = NULL;
    bool log_lost = false; /* reported, and the exit status says so; the model is still saved */
    char tmp_log[] = "/tmp/tapegrad-metrics-XXXXXX";
    const char *log_path = root ? o.log : NULL;
    if (o.valid && !(valid = tg_dataset_split(train, (size_t)o.valid, &e))) {
        fprintf(stderr, "tapegrad train: --valid: %s\n", e.message);
        status = 2;
        goto done;
    }
    if ((status = check_fit(&o, &m, train)) != 0) goto done;
    status = 1;
    tg_optim_config oc = tg_optim_defaults((tg_optimizer)o.optimizer);
    oc.lr = o.lr;
    oc.momentum = o.momentum;
    oc.weight_decay = o.weight_decay;
    if (!(ps = tg_params_new(o.dtype)) || tg_mlp_init(ps, &m, winit, binit, o.seed, &e) ||
        !(opt = tg_optim_new(ps, &oc, &e)) ||
        !(tr = tg_cli_trainer_new(ps, &m, (tg_loss)o.loss, (int)o.batch, opt, &e))) {
        fprintf(stderr, "tapegrad train: %s\n", ps ? e.message : "out of memory");
        goto done;
    }
    if (root && o.plot && !o.log && !tg_cli_have_program("gnuplot"))
        fprintf(stderr, "tapegrad train: --plot: gnuplot is not installed, so %s will not be "
                "drawn (apt-get install gnuplot-nox)\n", o.plot);
    int first = 1; /* the first epoch this run trains */
    tg_train_position pos = {0, 0, 0, {{0}}};
    if (ckpt) {
        if (tg_training_restore(ckpt, ps, opt, &pos, &e) ||
            tg_cli_trainer_set_position(tr, &pos, &e)) {
            fprintf(stderr, "tapegrad train: --resume %s: %s\n", o.resume, e.message);
            goto done;
        }
        first = (int)pos.epoch + 1;
        if (pos.epoch > o.epochs || (pos.epoch == o.epochs && pos.step)) {
            fprintf(stderr, "tapegrad train: --epochs %ld: the checkpoint %s is past epoch %lld "
                    "already\n", o.epochs, o.resume, (long long)pos.epoch);
            status = 2;
            goto done;
        }
    }
    bool log_header = true;
    if (log_path && !(log = ckpt ? reopen_log(o.log, first, &log_header) : tg__open_log(o.log, &e))) {
        if (ckpt)
            fprintf(stderr, "tapegrad train: --log %s: %s\n", o.log, strerror(errno));
        else
            fprintf(stderr, "tapegrad train: --log %s\n", e.message);
        goto done;
    }
    if (root && !o.log && o.plot && tg_cli_have_program("gnuplot")) {
        int fd = mkstemp(tmp_log);
        if (fd >= 0 && !(log = fdopen(fd, "w"))) close(fd);
        if (log) log_path = tmp_log;
    }
    if (log && log_header) {
        tg_log_header(log, valid != NULL);
        fflush(log);
    }
    char config[TG_CLI_MPI_CONFIG_MAX];
    describe_run(config, sizeof config, &o, winit, binit, out_act, train);
    if (!tg_cli_mpi_ready(ps, "train", config)) goto done; /* every rank set up; rank 0's start */

    /* A checkpoint holds the model's description too, for tapegrad eval. */
    char meta[512];
    tg_mlp_describe(&m, (tg_loss)o.loss, meta, sizeof meta);
    if (tg_params_set_meta(ps, meta)) {
        fprintf(stderr, "tapegrad train: out of memory\n");
        goto done;
    }
    const tg_dataset *sets[3] = {train, valid, test};
    uint64_t fp = o.checkpoint || ckpt ? tg_cli_data_fingerprint(sets, 3) : 0;
    if (ckpt && fp != ckpt_fp) {
        fprintf(stderr, "tapegrad train: --resume %s: the data differ from the checkpoint's "
                "(the samples of %s%s%s are not those it trained and tested on)\n", o.resume,
                o.data, o.test ? " or " : "", o.test ? o.test : "");
        goto done;
    }
    static ckpt_ctx ck; /* one training per process; too large for the stack */
    ck = (ckpt_ctx){o.checkpoint, o.checkpoint_every, ps, opt, tr, false, ""};
    if (o.checkpoint) {
        if (!tg_cli_settings_text(&o, fp, ck.settings, sizeof ck.settings)) {
            fprintf(stderr, "tapegrad train: --checkpoint: the settings are too long for a "
                    "checkpoint, or a file name holds a newline\n");
            status = 2;
            goto done;
        }
        tg_cli_trainer_on_step(tr, checkpoint_step, &ck);
    }

    /* The shuffling gets its own stream, apart from the initialisation's. */
    tg_rng rng;
    tg_rng_seed(&rng, o.seed ^ 0x7368756666756c65u);
    if (ckpt) {
        rng = pos.rng;
        if (!root)
            ; /* rank 0 tells */
        else if (pos.step)
            fprintf(stderr, "tapegrad train: resuming %s at epoch %d, after step %lld\n",
                    o.resume, first, (long long)pos.step);
        else
            fprintf(stderr, "tapegrad train: resuming %s at the start of epoch %d\n", o.resume,
                    first);
    }
    double total_train = 0, acc = 0;
    size_t n = tg_dataset_size(train);
    for (int ep = first; ep <= o.epochs; ep++) {
        tg_progress_epoch(&bar, ep);
        double t0 = tg_cli_now(), train_loss = 0;
        int rc = tg_cli_trainer_epoch(tr, train, &rng, &train_loss, tg_progress_update, &bar, &e);
        double secs = tg_cli_now() - t0;
        tg_progress_end(&bar);
        if (rc) {
            /* Every rank has the same message: rank 0 tells it. */
            if (ck.failed)
                ; /* said by save_checkpoint */
            else if (root && rc == TG_ERR_NUMERIC)
                fprintf(stderr, "tapegrad train: %s%s\n", e.message,
                        o.save ? "; nothing was saved" : "");
            else if (root)
                fprintf(stderr, "tapegrad train: epoch %d: %s\n", ep, e.message);
            goto done;
        }
        total_train += secs;
        tg_epoch_row row = {ep, train_loss, 0, 0, 0, secs};
        tg_progress_status(&bar, "epoch %d/%d: evaluating on the test set ...", ep, (int)o.epochs);
        rc = tg_evaluate(ps, &m, (tg_loss)o.loss, test, &row.test_accuracy, &row.test_loss, NULL,
                         &e);
        if (!rc && valid) {
            tg_progress_status(&bar, "epoch %d/%d: evaluating on the validation set ...", ep,
                               (int)o.epochs);
            rc = tg_evaluate(ps, &m, (tg_loss)o.loss, valid, &row.valid_accuracy, NULL, NULL, &e);
        }
        tg_progress_end(&bar);
        if (rc) {
            fprintf(stderr, "tapegrad train: evaluating epoch %d: %s\n", ep, e.message);
            goto done;
        }
        acc = row.test_accuracy;
        printf("epoch=%d train_loss=%.6f test_accuracy=%.4f seconds=%.2f", ep, train_loss,
               row.test_accuracy, secs);
        if (valid) printf(" valid_accuracy=%.4f", row.valid_accuracy);
        printf("\n");
        fflush(stdout);
        if (log) { /* before the checkpoint: a kill after it must not lose the row */
            tg_log_row(log, &row, valid != NULL);
            fflush(log);
        }
        if (o.lr_decay != 1) tg_optim_set_lr(opt, o.lr * pow(o.lr_decay, ep));
        if (o.checkpoint && !tg_cli_mpi_all_ok(save_checkpoint(&ck))) goto done;
    }
    if (first > o.epochs) { /* no epoch to train */
        tg_progress_status(&bar, "evaluating on the test set ...");
        int rc = tg_evaluate(ps, &m, (tg_loss)o.loss, test, &acc, NULL, NULL, &e);
        tg_progress_end(&bar);
        if (rc) {
            fprintf(stderr, "tapegrad train: evaluating: %s\n", e.message);
            goto done;
        }
    }
    if (log) {
        int bad = ferror(log), closed = fclose(log), why = errno;
        log = NULL;
        if ((bad || closed) && o.log) {
            fprintf(stderr, "tapegrad train: --log %s: write error%s%s\n", o.log,
                    closed ? ": " : "", closed ? strerror(why) : "");
            log_lost = true;
        }
    }
    if (o.plot && log_path && o.epochs > 0) tg_plot(log_path, o.plot, (int)o.epochs);
    if (root && o.save) {
        if (tg_checkpoint_save(ps, o.save, &e)) { /* its meta text was set above */
            fprintf(stderr, "tapegrad train: --save: %s\n", e.message);
            goto done;
        }
        fprintf(stderr, "tapegrad train: model saved to %s\n", o.save);
    }
    if (total_train > 0)
        printf("train_seconds=%.2f samples_per_s=%.0f\n", total_train,
               (double)n * (double)(o.epochs - first + 1) / total_train);
    printf("test_accuracy=%.4f\n", acc);
    status = log_lost ? 1 : 0;
done:
    if (log) fclose(log);
    if (log_path == tmp_log) unlink(tmp_log);
    tg_cli_trainer_free(tr);
    tg_optim_free(opt);
    tg_params_free(ps);
    tg_dataset_free(valid);
    tg_dataset_free(train);
    tg_dataset_free(test);
    return status;
}

/* --------------------------------------------------------------- eval -- */

int tg_cli_eval(int argc, char **argv) {
    const char *model = NULL;
    tg_cli_data data = {DEFAULT_DATA, 0, 1, NULL, 0};
    bool csv_options = false;
    for (int i = 1; i < argc; i++) {
        const char *opt = argv[i];
        if (!strcmp(opt, "-h") || !strcmp(opt, "--help")) {
            eval_usage(stdout);
            return 0;
        }
        if (strcmp(opt, "--model") && strcmp(opt, "--data") && strcmp(opt, "--label-col") &&
            strcmp(opt, "--scale")) {
            fprintf(stderr, "tapegrad eval: unknown argument '%s' (tapegrad eval --help)\n", opt);
            return 2;
        }
        if (i + 1 >= argc) {
            fprintf(stderr, "tapegrad eval: %s needs a value\n", opt);
            return 2;
        }
        const char *v = argv[++i];
        long n;
        if (!strcmp(opt, "--model")) {
            model = v;
        } else if (!strcmp(opt, "--data")) {
            data.path = v;
        } else if (!strcmp(opt, "--label-col")) {
            if (!tg_cli_parse_long(v, 0, 1 << 20, &n))
                return tg_cli_bad_value("eval", opt, v, "expected a column number >= 0");
            data.label_col = (int)n;
            csv_options = true;
        } else if (!tg_cli_parse_scale(v, &data.scale) || data.scale == 0) {
            return tg_cli_bad_value("eval", opt, v, "expected a number other than 0, or A/B");
        } else {
            csv_options = true;
        }
    }
    if (!model) {
        fprintf(stderr, "tapegrad eval: --model FILE is required (tapegrad eval --help)\n");
        return 2;
    }
    bool dir = tg_cli_is_dir(data.path);
    if (dir && csv_options) {
        fprintf(stderr, "tapegrad eval: --label-col and --scale apply to CSV data; %s is a "
                "directory of IDX files\n", data.path);
        return 2;
    }
    tg_cli_model mdl;
    if (tg_cli_model_read(&mdl, model, "eval")) return 1;
    int status = 1;
    tg_dataset *test = NULL;
    int64_t *confusion = NULL;
    tg_error e;
    int64_t k = mdl.m.sizes[mdl.m.nlayers];
    if (k > 256) {
        fprintf(stderr, "tapegrad eval: %s: %lld outputs is too many classes for a confusion "
                "matrix (at most 256)\n", model, (long long)k);
        goto done;
    }
    data.features = mdl.m.sizes[0]; /* checked against an IDX header before inflating */
    if (!(test = tg_cli_read_data(&data, "t10k", (int)k, &e))) {
        tg_cli_no_data("eval", &data, &e);
        goto done;
    }
    if (tg_dataset_features(test) != mdl.m.sizes[0]) {
        fprintf(stderr, "tapegrad eval: %s takes %lld inputs, but %s has %lld features per "
                "sample%s\n", model, (long long)mdl.m.sizes[0], data.path,
                (long long)tg_dataset_features(test),
                dir ? "" : " (--label-col N names the label's column)");
        status = 2;
        goto done;
    }
    if (!(confusion = calloc((size_t)(k * k), sizeof *confusion))) {
        fprintf(stderr, "tapegrad eval: out of memory\n");
        goto done;
    }
    double acc;
    if (tg_evaluate(mdl.ps, &mdl.m, mdl.loss, test, &acc, NULL, confusion, &e)) {
        fprintf(stderr, "tapegrad eval: %s\n", e.message);
        goto done;
    }
    printf("test_accuracy=%.4f\n", acc);
    printf("confusion matrix (rows: true label, columns: predicted label):\n      ");
    for (int64_t j = 0; j < k; j++) printf(" %5lld", (long long)j);
    printf("\n");
    for (int64_t i = 0; i < k; i++) {
        printf(" %5lld", (long long)i);
        for (int64_t j = 0; j < k; j++) printf(" %5lld", (long long)confusion[i * k + j]);
        printf("\n");
    }
    status = 0;
done:
    free(confusion);
    tg_dataset_free(test);
    tg_cli_model_free(&mdl);
    return status;
}
