/*
 * The MPI checks of tests/test_mpi.sh (built only when CMake finds MPI).
 *
 *   mpirun -np N mpi_equiv
 *       N ranks check the collectives of tapegrad_mpi, then train three
 *       float64 networks for 20 steps each with tg_mpi_trainer at per-rank
 *       batch B, and rank 0 trains the same networks alone with tg_trainer
 *       at batch N*B: the parameters must agree to 1e-6 relative, and be
 *       bit-identical on every rank; then two diverging trainings (a cost
 *       that overflows on one rank, an update that overflows on all) stop
 *       every rank at the same step with the same message, keeping the
 *       parameters of the step before. Exit 0 when every check passes.
 *   mpi_equiv --write-idx DIR TRAIN TEST
 *       writes a small learnable MNIST-format dataset (28x28, 10 classes)
 *       to DIR for the command-line checks; no MPI.
 *   mpi_equiv --compare A.tgm B.tgm
 *       compares two checkpoints' parameters to 1e-6 relative; no MPI.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <tapegrad.h>
#include <tapegrad/mpi.h>

#define TOL 1e-6

static int rank = 0, nranks = 1, failures = 0;

#define CHECK(cond, ...)                                                                       \
    do {                                                                                       \
        if (!(cond)) {                                                                         \
            fprintf(stderr, "FAIL (rank %d, line %d): ", rank, __LINE__);                      \
            fprintf(stderr, __VA_ARGS__);                                                      \
            fprintf(stderr, "\n");                                                             \
            failures++;                                                                        \
        }                                                                                      \
    } while (0)

/* ------------------------------------------------------------- helpers -- */

/* The largest elementwise relative difference |a - b| / max(|a|, |b|) over
 * every parameter of two stores of one layout (float64). */
static double max_rel_diff(const tg_params *a, const tg_params *b) {
    double worst = 0;
    for (int i = 0; i < tg_params_count(a); i++) {
        const double *x = tg_params_value(a, i), *y = tg_params_value(b, i);
        for (int64_t j = 0; j < tg_params_numel(a, i); j++) {
            double d = fabs(x[j] - y[j]), m = fmax(fabs(x[j]), fabs(y[j]));
            if (d > 0) worst = fmax(worst, m > 0 ? d / m : INFINITY);
        }
    }
    return worst;
}

/* A deterministic dataset of n samples of d features in [0, 1], labelled by
 * the largest of 10 fixed random projections (learnable, not trivial). */
static tg_dataset *synthetic(size_t n, int64_t d, uint64_t seed) {
    tg_rng r;
    tg_rng_seed(&r, seed);
    float *x = malloc(n * (size_t)d * sizeof *x), *w = malloc(10 * (size_t)d * sizeof *w);
    int32_t *y = malloc(n * sizeof *y);
    tg_dataset *ds = NULL;
    if (x && w && y) {
        for (int64_t i = 0; i < 10 * d; i++) w[i] = (float)tg_rng_normal(&r);
        for (size_t i = 0; i < n; i++) {
            double best = -INFINITY;
            for (int64_t j = 0; j < d; j++) x[i * (size_t)d + (size_t)j] = (float)tg_rng_uniform(&r);
            for (int k = 0; k < 10; k++) {
                double s = 0;
                for (int64_t j = 0; j < d; j++) s += w[k * d + j] * x[i * (size_t)d + (size_t)j];
                if (s > best) best = s, y[i] = k;
            }
        }
        ds = tg_dataset_new(n, d, 10, x, y, NULL);
    }
    free(x);
    free(w);
    free(y);
    return ds;
}

/* --------------------------------------------------------- collectives -- */

static void check_collectives(void) {
    tg_params *ps = tg_params_new(TG_F64), *pf = tg_params_new(TG_F32);
    int64_t s1[2] = {3, 5}, s2[1] = {7};
    tg_params_add(ps, "w", 2, s1, NULL);
    tg_params_add(ps, "b", 1, s2, NULL);
    tg_params_add(pf, "w", 2, s1, NULL);
    int64_t n = tg_params_size(ps);

    /* Mean: rank k holds (k + 1) * (i + 1); the mean is (N + 1) / 2 * (i + 1). */
    double *g = tg_params_grads(ps);
    for (int64_t i = 0; i < n; i++) g[i] = (rank + 1) * (double)(i + 1);
    CHECK(tg_mpi_allreduce_grads(ps, MPI_COMM_WORLD) == TG_OK, "allreduce_grads failed");
    for (int64_t i = 0; i < n; i++)
        CHECK(fabs(g[i] - (nranks + 1) / 2.0 * (double)(i + 1)) <= 1e-12 * (double)(i + 1),
              "mean of gradient %lld: %g", (long long)i, g[i]);

    /* Weighted sum: rank k holds i + 1 with weight k: sum is N(N-1)/2 (i + 1). */
    for (int64_t i = 0; i < n; i++) g[i] = (double)(i + 1);
    CHECK(tg_mpi_allreduce_grads_weighted(ps, rank, MPI_COMM_WORLD) == TG_OK, "weighted failed");
    for (int64_t i = 0; i < n; i++)
        CHECK(g[i] == nranks * (nranks - 1) / 2.0 * (double)(i + 1), "weighted sum %lld: %g",
              (long long)i, g[i]);
    CHECK(tg_mpi_allreduce_grads_weighted(ps, -1, MPI_COMM_WORLD) == TG_ERR_ARG, "weight -1");
    CHECK(tg_mpi_allreduce_grads_weighted(ps, NAN, MPI_COMM_WORLD) == TG_ERR_ARG, "weight NaN");
    CHECK(tg_mpi_allreduce_grads(NULL, MPI_COMM_WORLD) == TG_ERR_NULL, "NULL store");
    CHECK(tg_mpi_allreduce_grads(ps, MPI_COMM_NULL) == TG_ERR_ARG, "MPI_COMM_NULL");

    /* float32 stores reduce as floats. */
    float *gf = tg_params_grads(pf);
    for (int64_t i = 0; i < tg_params_size(pf); i++) gf[i] = (float)(2 * rank);
    CHECK(tg_mpi_allreduce_grads(pf, MPI_COMM_WORLD) == TG_OK, "f32 allreduce failed");
    CHECK(gf[0] == (float)(nranks - 1), "f32 mean %g", (double)gf[0]);

    /* Broadcast: every rank ends with the last rank's values. */
    double *v = tg_params_data(ps);
    for (int64_t i = 0; i < n; i++) v[i] = rank * 1000.0 + (double)i;
    CHECK(tg_mpi_bcast_params(ps, nranks - 1, MPI_COMM_WORLD) == TG_OK, "bcast failed");
    for (int64_t i = 0; i < n; i++)
        CHECK(v[i] == (nranks - 1) * 1000.0 + (double)i, "bcast value %lld", (long long)i);
    CHECK(tg_mpi_bcast_params(ps, nranks, MPI_COMM_WORLD) == TG_ERR_ARG, "bad root");

    /* Stores of different layouts: refused on every rank, values kept. */
    tg_params *odd = tg_params_new(TG_F64);
    int64_t s3[1] = {rank == 0 ? 40 : 80};
    tg_params_add(odd, "x", 1, s3, NULL);
    ((double *)tg_params_data(odd))[0] = rank;
    CHECK(tg_mpi_bcast_params(odd, 0, MPI_COMM_WORLD) == (nranks > 1 ? TG_ERR_STATE : TG_OK),
          "bcast of mismatched stores");
    CHECK(((double *)tg_params_data(odd))[0] == rank, "mismatched store changed");
    tg_params_free(odd);

    /* Agreement: the last rank fails; everyone hears of it. */
    int who = -2, st = rank == nranks - 1 ? TG_ERR_IO : TG_OK;
    int rc = tg_mpi_agree(st, MPI_COMM_WORLD, &who);
    CHECK(rc == (st ? TG_ERR_IO : TG_ERR_STATE) && who == nranks - 1, "agree: rc %d who %d", rc, who);
    CHECK(tg_mpi_agree(TG_OK, MPI_COMM_WORLD, &who) == TG_OK && who == -1, "agree all ok");

    /* Shards tile the batch, sizes differing by at most one. */
    for (size_t rows = 0; rows < 25; rows++)
        for (int size = 1; size <= 7; size++) {
            size_t next = 0;
            for (int k = 0; k < size; k++) {
                size_t f, c;
                tg_mpi_shard(rows, k, size, &f, &c);
                CHECK(f == next && (c == rows / (size_t)size || c == rows / (size_t)size + 1),
                      "shard rows %zu rank %d of %d: [%zu, +%zu)", rows, k, size, f, c);
                next = f + c;
            }
            CHECK(next == rows, "shards of %zu rows over %d ranks cover %zu", rows, size, next);
        }
    tg_params_free(ps);
    tg_params_free(pf);
}

/* ---------------------------------------------------------- equivalence -- */

typedef struct config {
    const char *name, *layers;
    tg_activation hidden, output;
    tg_loss loss;
    tg_optimizer opt;
    double lr, weight_decay;
    int batch, epochs; /* per-rank batch */
    size_t n;          /* samples: 20 steps in all with N ranks */
} config;

/* Trains c's network with N ranks (batch c->batch each) and, on rank 0, alone
 * with batch N * c->batch; compares. */
static void check_equivalence(const config *c) {
    tg_error e;
    tg_mlp m;
    tg_mlp_parse(&m, c->layers, c->hidden, c->output, &e);
    tg_dataset *ds = synthetic(c->n, m.sizes[0], 42);
    tg_optim_config oc = tg_optim_defaults(c->opt);
    oc.lr = c->lr;
    oc.weight_decay = c->weight_decay;

    /* Every rank starts from other values; the broadcast gives all rank 0's. */
    tg_params *ps = tg_params_new(TG_F64);
    CHECK(ds && ps && tg_mlp_init(ps, &m, TG_INIT_SCALED, TG_INIT_NORMAL, 7 + (uint64_t)rank, &e) == 0,
          "%s: set-up", c->name);
    CHECK(tg_mpi_bcast_params(ps, 0, MPI_COMM_WORLD) == TG_OK, "%s: bcast", c->name);
    tg_optim *opt = tg_optim_new(ps, &oc, &e);
    tg_mpi_trainer *tr = tg_mpi_trainer_new(ps, &m, c->loss, c->batch, opt, MPI_COMM_WORLD, &e);
    CHECK(tr, "%s: %s", c->name, e.message);
    tg_rng r;
    tg_rng_seed(&r, 99);
    double loss = 0;
    for (int ep = 0; ep < c->epochs && tr; ep++) {
        int rc = tg_mpi_trainer_epoch(tr, ds, &r, &loss, NULL, NULL, &e);
        CHECK(rc == TG_OK, "%s: epoch: %s", c->name, e.message);
    }
    int64_t steps = tg_optim_steps(opt);
    CHECK(steps == 20, "%s: %lld steps, not 20", c->name, (long long)steps);

    /* Bit-identical on every rank: compare with rank 0's copy. */
    tg_params *mine = tg_params_new(TG_F64);
    tg_mlp_init(mine, &m, TG_INIT_ZERO, TG_INIT_ZERO, 0, &e);
    tg_params_copy(mine, ps, &e);
    tg_mpi_bcast_params(mine, 0, MPI_COMM_WORLD);
    CHECK(max_rel_diff(mine, ps) == 0, "%s: rank %d's parameters differ from rank 0's by %g",
          c->name, rank, max_rel_diff(mine, ps));
    tg_params_free(mine);

    if (rank == 0) {
        /* One process, batch N * B, from the same start and permutation. */
        tg_params *ref = tg_params_new(TG_F64);
        tg_mlp_init(ref, &m, TG_INIT_SCALED, TG_INIT_NORMAL, 7, &e);
        tg_optim *ropt = tg_optim_new(ref, &oc, &e);
        tg_trainer *rtr = tg_trainer_new(ref, &m, c->loss, c->batch * nranks, ropt, &e);
        tg_rng_seed(&r, 99);
        double rloss = 0;
        for (int ep = 0; ep < c->epochs; ep++)
            CHECK(tg_trainer_epoch(rtr, ds, &r, &rloss, NULL, NULL, &e) == TG_OK, "%s: reference: %s",
                  c->name, e.message);
        tg_params *start = tg_params_new(TG_F64);
        tg_mlp_init(start, &m, TG_INIT_SCALED, TG_INIT_NORMAL, 7, &e);
        double d = max_rel_diff(ps, ref), moved = max_rel_diff(ps, start);
        printf("%-34s %d ranks x batch %d vs 1 x batch %d, %lld steps: max relative "
               "difference %.2e (moved %.2e), loss %.12f vs %.12f\n",
               c->name, nranks, c->batch, c->batch * nranks, (long long)steps, d, moved, loss, rloss);
        CHECK(d <= TOL, "%s: parameters differ by %g relative (tolerance %g)", c->name, d, TOL);
        CHECK(moved > 1e-3, "%s: training did not move the parameters", c->name);
        CHECK(fabs(loss - rloss) <= TOL * fabs(rloss), "%s: loss %.17g vs %.17g", c->name, loss, rloss);
        tg_params_free(start);
        tg_trainer_free(rtr);
        tg_optim_free(ropt);
        tg_params_free(ref);
    }
    tg_mpi_trainer_free(tr);
    tg_optim_free(opt);
    tg_params_free(ps);
    tg_dataset_free(ds);
}

/* A rank whose dataset does not fit: every rank gets an error, nobody hangs. */
static void check_failing_rank(void) {
    tg_error e;
    tg_mlp m;
    tg_mlp_parse(&m, "16,8,10", TG_ACT_SIGMOID, TG_ACT_SIGMOID, &e);
    tg_dataset *ds = synthetic(40, rank == nranks - 1 && nranks > 1 ? 12 : 16, 1);
    tg_params *ps = tg_params_new(TG_F64);
    tg_mlp_init(ps, &m, TG_INIT_SCALED, TG_INIT_NORMAL, 7, &e);
    tg_optim_config oc = tg_optim_defaults(TG_OPT_SGD);
    tg_optim *opt = tg_optim_new(ps, &oc, &e);
    tg_mpi_trainer *tr = tg_mpi_trainer_new(ps, &m, TG_LOSS_MSE, 4, opt, MPI_COMM_WORLD, &e);
    int rc = tg_mpi_trainer_epoch(tr, ds, NULL, NULL, NULL, NULL, &e);
    if (nranks > 1) {
        CHECK(rc != TG_OK && tg_optim_steps(opt) == 0, "a failing rank: rc %d", rc);
        if (rank == nranks - 1)
            CHECK(rc == TG_ERR_SHAPE && strstr(e.message, "12 features"), "own error: %s", e.message);
        else
            CHECK(rc == TG_ERR_STATE && strstr(e.message, "could not start"), "others: %s", e.message);
        if (rank == 0) printf("a rank with bad data: every rank returns an error: %s\n", e.message);
    }
    /* Datasets of different sizes are refused too. */
    tg_dataset_free(ds);
    ds = synthetic(rank == 0 ? 40 : 41, 16, 1);
    rc = tg_mpi_trainer_epoch(tr, ds, NULL, NULL, NULL, NULL, &e);
    if (nranks > 1)
        CHECK(rc == TG_ERR_STATE && strstr(e.message, "differ in size"), "sizes: %d %s", rc, e.message);
    tg_mpi_trainer_free(tr);
    tg_optim_free(opt);
    tg_params_free(ps);
    tg_dataset_free(ds);
}

/* ---------------------------------------------------------- divergence -- */

/* n samples of 4 small features (scale 1e-3) and labels i % 3; on the ranks
 * in `on` (a bit mask), samples p and p + 1 have every feature = poison,
 * with labels 0 and 1 (so that one of them is not the largest output, whose
 * cross-entropy gradient would vanish). */
static tg_dataset *poisoned(size_t n, size_t p, float poison, unsigned on) {
    float *x = malloc(n * 4 * sizeof *x);
    int32_t *y = malloc(n * sizeof *y);
    for (size_t i = 0; i < n; i++) {
        y[i] = (int32_t)(i % 3);
        for (size_t j = 0; j < 4; j++) x[i * 4 + j] = 1e-3f * (float)((i * 7 + j * 3) % 11);
    }
    if (on >> rank & 1)
        for (size_t i = p; i < p + 2 && i < n; i++) {
            y[i] = (int32_t)(i - p);
            for (size_t j = 0; j < 4; j++) x[i * 4 + j] = poison;
        }
    tg_dataset *ds = tg_dataset_new(n, 4, 3, x, y, NULL);
    free(x);
    free(y);
    return ds;
}

typedef struct run {
    tg_mlp m;
    tg_params *ps;
    tg_optim *opt;
    tg_mpi_trainer *tr;
} run;

/* One float32 identity layer 4 -> 3 from seed 7, SGD at lr, per-rank batch
 * b, trained for one epoch over ds; returns the status. */
static int run_epoch(run *r, tg_loss loss, double lr, int b, const tg_dataset *ds, tg_error *e) {
    tg_mlp_parse(&r->m, "4,3", TG_ACT_IDENTITY, TG_ACT_IDENTITY, e);
    r->ps = tg_params_new(TG_F32);
    tg_mlp_init(r->ps, &r->m, TG_INIT_SCALED, TG_INIT_NORMAL, 7, e);
    tg_optim_config oc = tg_optim_defaults(TG_OPT_SGD);
    oc.lr = lr;
    r->opt = tg_optim_new(r->ps, &oc, e);
    r->tr = tg_mpi_trainer_new(r->ps, &r->m, loss, b, r->opt, MPI_COMM_WORLD, e);
    CHECK(ds && r->tr, "divergence: set-up");
    return tg_mpi_trainer_epoch(r->tr, ds, NULL, NULL, NULL, NULL, e);
}

static void run_free(run *r) {
    tg_mpi_trainer_free(r->tr);
    tg_optim_free(r->opt);
    tg_params_free(r->ps);
}

/* Every rank stops at the same step with the same status and message, and
 * keeps exactly (bit for bit) the parameters that the ranks reach when they
 * train on the samples before the bad step only; those are the same on
 * every rank. The bad step is 70 (global batches of N * 2), after the
 * snapshot of step 64, so that a bad update is undone by replaying steps 65
 * to 69. */
static void check_divergence(tg_loss loss, double lr, float poison, unsigned on,
                             const char *want) {
    enum { B = 2, STEP = 70 };
    const size_t global = (size_t)(B * nranks), p = (STEP - 1) * global + (size_t)(nranks - 1) * B;
    tg_error e, ce;
    tg_dataset *ds = poisoned(p + 4 * global, p, poison, on);
    tg_dataset *clean = poisoned((STEP - 1) * global, 0, 0, 0);
    run a, b;
    int rc = run_epoch(&a, loss, lr, B, ds, &e);
    CHECK(run_epoch(&b, loss, lr, B, clean, &ce) == TG_OK, "the clean run: %s", ce.message);
    char step[64];
    snprintf(step, sizeof step, "epoch 1, step %d: ", STEP);
    CHECK(rc == TG_ERR_NUMERIC && strstr(e.message, step) && strstr(e.message, want) &&
              strstr(e.message, "after step 69"),
          "divergence: rc %d, '%s' lacks '%s%s'", rc, e.message, step, want);
    /* The same message on every rank: compare with rank 0's. */
    char msg[sizeof e.message];
    memcpy(msg, e.message, sizeof msg);
    MPI_Bcast(msg, (int)sizeof msg, MPI_CHAR, 0, MPI_COMM_WORLD);
    CHECK(!strcmp(msg, e.message), "rank %d says '%s', rank 0 '%s'", rank, e.message, msg);
    size_t bytes = (size_t)tg_params_size(a.ps) * sizeof(float);
    CHECK(tg_params_check_finite(a.ps, &ce) == TG_OK, "divergence: %s", ce.message);
    CHECK(!memcmp(tg_params_data(a.ps), tg_params_data(b.ps), bytes),
          "divergence: the kept parameters are not those of the clean run");
    char *zero = malloc(bytes);
    memcpy(zero, tg_params_data(a.ps), bytes);
    MPI_Bcast(zero, (int)bytes, MPI_BYTE, 0, MPI_COMM_WORLD);
    CHECK(!memcmp(zero, tg_params_data(a.ps), bytes), "divergence: rank %d differs from rank 0",
          rank);
    if (rank == 0) printf("%d ranks, a bad step %d: %s\n", nranks, STEP, e.message);
    free(zero);
    run_free(&a);
    run_free(&b);
    tg_dataset_free(ds);
    tg_dataset_free(clean);
}

/* ------------------------------------------------------------ no MPI -- */

static void put32(FILE *f, uint32_t v) {
    unsigned char b[4] = {(unsigned char)(v >> 24), (unsigned char)(v >> 16), (unsigned char)(v >> 8),
                          (unsigned char)v};
    fwrite(b, 1, 4, f);
}

/* DIR/PREFIX-{images-idx3,labels-idx1}-ubyte with n images: label k lights
 * up a 7x7 block at a place of its own, on noise; one label in 8 is then
 * redrawn at random, so that accuracy stays below 1. */
static int write_idx(const char *dir, const char *prefix, long n, tg_rng *r) {
    char path[4096];
    snprintf(path, sizeof path, "%s/%s-images-idx3-ubyte", dir, prefix);
    FILE *fi = fopen(path, "wb");
    snprintf(path, sizeof path, "%s/%s-labels-idx1-ubyte", dir, prefix);
    FILE *fl = fopen(path, "wb");
    if (!fi || !fl) {
        perror(path);
        return 1;
    }
    put32(fi, 0x803), put32(fi, (uint32_t)n), put32(fi, 28), put32(fi, 28);
    put32(fl, 0x801), put32(fl, (uint32_t)n);
    for (long i = 0; i < n; i++) {
        int k = (int)tg_rng_below(r, 10), br = 2 + 7 * (k / 4), bc = 2 + 6 * (k % 4);
        unsigned char img[28 * 28];
        for (int p = 0; p < 28 * 28; p++) {
            int row = p / 28, col = p % 28;
            int on = row >= br && row < br + 7 && col >= bc && col < bc + 7;
            img[p] = (unsigned char)(on ? 150 + tg_rng_below(r, 100) : tg_rng_below(r, 90));
        }
        fwrite(img, 1, sizeof img, fi);
        fputc(tg_rng_below(r, 8) ? k : (int)tg_rng_below(r, 10), fl); /* some label noise */
    }
    int bad = fclose(fi) | fclose(fl);
    return bad != 0;
}

static int compare(const char *a, const char *b) {
    tg_error e;
    tg_params *pa = tg_checkpoint_read(a, &e), *pb = pa ? tg_checkpoint_read(b, &e) : NULL;
    int rc = 1;
    if (!pa || !pb) {
        fprintf(stderr, "%s\n", e.message);
    } else {
        int same = tg_params_dtype(pa) == TG_F64 && tg_params_dtype(pb) == TG_F64 &&
                   tg_params_count(pa) == tg_params_count(pb);
        for (int i = 0; same && i < tg_params_count(pa); i++)
            same = tg_params_numel(pa, i) == tg_params_numel(pb, i) &&
                   !strcmp(tg_params_name(pa, i), tg_params_name(pb, i));
        if (!same) {
            fprintf(stderr, "%s and %s: not float64 models of one architecture\n", a, b);
        } else {
            double d = max_rel_diff(pa, pb);
            printf("%s vs %s: max relative difference %.2e (tolerance %g)\n", a, b, d, TOL);
            rc = d <= TOL ? 0 : 1;
        }
    }
    tg_params_free(pa);
    tg_params_free(pb);
    return rc;
}

int main(int argc, char **argv) {
    if (argc == 5 && !strcmp(argv[1], "--write-idx")) {
        tg_rng r;
        tg_rng_seed(&r, 5);
        return write_idx(argv[2], "train", atol(argv[3]), &r) ||
               write_idx(argv[2], "t10k", atol(argv[4]), &r);
    }
    if (argc == 4 && !strcmp(argv[1], "--compare")) return compare(argv[2], argv[3]);
    if (argc != 1) {
        fprintf(stderr, "usage: mpirun -np N mpi_equiv | mpi_equiv --write-idx DIR TRAIN TEST | "
                        "mpi_equiv --compare A.tgm B.tgm\n");
        return 2;
    }
    MPI_Init(&argc, &argv);
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    MPI_Comm_size(MPI_COMM_WORLD, &nranks);

    check_collectives();
    /* 20 steps each with N ranks: n = 20 N B exactly; 19 full global batches
     * and a short one split unevenly; two epochs of 10 steps; a last batch of
     * one sample (ranks with no rows). */
    const int N = nranks;
    config cs[] = {
        {"seeds: sigmoid mse sgd", "64,30,10", TG_ACT_SIGMOID, TG_ACT_SIGMOID, TG_LOSS_MSE,
         TG_OPT_SGD, 3.0, 0, 5, 1, (size_t)(20 * N * 5)},
        {"short last batch: tanh mse momentum", "64,24,10", TG_ACT_TANH, TG_ACT_TANH, TG_LOSS_MSE,
         TG_OPT_MOMENTUM, 0.1, 1e-3, 5, 1, (size_t)(19 * N * 5 + 3)},
        {"2 epochs: relu xent adam + decay", "64,32,16,10", TG_ACT_RELU, TG_ACT_IDENTITY,
         TG_LOSS_XENT, TG_OPT_ADAM, 1e-2, 1e-3, 4, 2, (size_t)(9 * N * 4 + N + 1)},
        {"last batch of 1: sigmoid xent sgd", "64,20,10", TG_ACT_SIGMOID, TG_ACT_IDENTITY,
         TG_LOSS_XENT, TG_OPT_SGD, 0.5, 0, 3, 1, (size_t)(19 * N * 3 + 1)},
    };
    for (size_t i = 0; i < sizeof cs / sizeof *cs; i++) check_equivalence(&cs[i]);
    check_failing_rank();
    /* The cost of the last rank's share overflows (1e30 squared in float32)
     * on that rank only. Then every rank's update overflows: the logits of
     * -1e37 keep the cross-entropy finite, but its weight gradient (~1e36)
     * times lr 1000 does not fit in a float. */
    char on_last[64];
    snprintf(on_last, sizeof on_last, nranks > 1 ? "the loss is inf on rank %d of %d" : "the loss is inf",
             nranks - 1, nranks);
    check_divergence(TG_LOSS_MSE, 0.1, 1e30f, 1u << (nranks - 1), on_last);
    check_divergence(TG_LOSS_XENT, 1000, -1e37f, ~0u, "the update made a parameter NaN or infinite");

    int all = failures;
    MPI_Allreduce(MPI_IN_PLACE, &all, 1, MPI_INT, MPI_SUM, MPI_COMM_WORLD);
    if (rank == 0) printf("mpi_equiv: %d ranks: %s (%d failed checks)\n", nranks, all ? "FAILED" : "ok", all);
    MPI_Finalize();
    return all ? 1 : 0;
}
