/* `tapegrad train` under mpirun: see mpi_cli.h. */
#define _POSIX_C_SOURCE 200809L
#include "mpi_cli.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifdef TG_HAVE_MPI
#include <tapegrad/mpi.h>
#endif

static struct {
    bool active; /* MPI_Init was called */
    bool agreed; /* tg_cli_mpi_ready() was reached */
    int rank, size;
} mpi = {false, false, 0, 1};

struct tg_cli_trainer {
    tg_cli_step_fn fn; /* the step callback and its context */
    void *ctx;
    tg_trainer *one;
#ifdef TG_HAVE_MPI
    tg_mpi_trainer *many;
#endif
};

int tg_cli_mpi_rank(void) { return mpi.rank; }
int tg_cli_mpi_size(void) { return mpi.size; }
bool tg_cli_mpi_active(void) { return mpi.active; }

#ifdef TG_HAVE_MPI

void tg_cli_mpi_begin(void) {
    if (mpi.active || (!getenv("OMPI_COMM_WORLD_SIZE") && !getenv("PMIX_RANK"))) return;
    MPI_Init(NULL, NULL);
    mpi.active = true;
    MPI_Comm_rank(MPI_COMM_WORLD, &mpi.rank);
    MPI_Comm_size(MPI_COMM_WORLD, &mpi.size);
    if (mpi.rank != 0) {
        fflush(stdout);
        if (!freopen("/dev/null", "w", stdout)) fclose(stdout);
    }
}

/* Whether config is rank 0's (collective); the lowest rank whose is not
 * says which line differs. */
static bool same_config(const char *config, const char *cmd) {
    char root[TG_CLI_MPI_CONFIG_MAX] = "";
    if (mpi.rank == 0) snprintf(root, sizeof root, "%s", config);
    MPI_Bcast(root, (int)sizeof root, MPI_CHAR, 0, MPI_COMM_WORLD);
    /* The first line where they differ, in each. */
    const char *a = config, *b = root;
    while (*a && *a == *b) {
        const char *ea = strchr(a, '\n'), *eb = strchr(b, '\n');
        size_t la = ea ? (size_t)(ea - a) : strlen(a), lb = eb ? (size_t)(eb - b) : strlen(b);
        if (la != lb || memcmp(a, b, la)) break;
        a += la + (ea != NULL);
        b += lb + (eb != NULL);
    }
    int mine = *a || *b ? mpi.rank : INT_MAX, low;
    MPI_Allreduce(&mine, &low, 1, MPI_INT, MPI_MIN, MPI_COMM_WORLD);
    if (low == INT_MAX) return true;
    if (mpi.rank == low)
        fprintf(stderr, "tapegrad %s: rank %d was started with %.*s, rank 0 with %.*s: every "
                "rank needs the same options and data; stopping every rank\n", cmd, mpi.rank,
                (int)strcspn(a, "\n"), *a ? a : "(nothing)", (int)strcspn(b, "\n"),
                *b ? b : "(nothing)");
    return false;
}

bool tg_cli_mpi_ready(tg_params *ps, const char *cmd, const char *config) {
    if (!mpi.active) return true;
    mpi.agreed = true;
    int who, rc = tg_mpi_agree(TG_OK, MPI_COMM_WORLD, &who);
    if (rc) {
        /* One message, from the lowest rank that did not fail. */
        if (who < 0 || mpi.rank == (who == 0 ? 1 : 0))
            fprintf(stderr, "tapegrad %s: rank %d of %d failed to start (its message is above); "
                    "stopping every rank\n", cmd, who, mpi.size);
        return false;
    }
    if (!same_config(config, cmd)) return false;
    if ((rc = tg_mpi_bcast_params(ps, 0, MPI_COMM_WORLD))) {
        fprintf(stderr, "tapegrad %s: rank %d: could not receive rank 0's parameters (%s)\n", cmd,
                mpi.rank, tg_status_name(rc));
        return false;
    }
    return true;
}

int tg_cli_mpi_end(int status) {
    if (!mpi.active) return status;
    if (!mpi.agreed) {
        /* This rank stops before the agreement: take part in it, failing. */
        mpi.agreed = true;
        int who;
        if (tg_mpi_agree(status ? TG_ERR_STATE : TG_OK, MPI_COMM_WORLD, &who) && !status)
            status = 1;
    }
    fflush(stdout);
    fflush(stderr);
    MPI_Finalize();
    mpi.active = false;
    return status;
}

#else

void tg_cli_mpi_begin(void) {}

bool tg_cli_mpi_ready(tg_params *ps, const char *cmd, const char *config) {
    (void)ps;
    (void)cmd;
    (void)config;
    return true;
}

int tg_cli_mpi_end(int status) { return status; }

#endif

tg_cli_trainer *tg_cli_trainer_new(tg_params *ps, const tg_mlp *m, tg_loss loss, int batch,
                                   tg_optim *opt, tg_error *err) {
    tg_cli_trainer *tr = calloc(1, sizeof *tr);
    if (!tr) {
        if (err) *err = (tg_error){TG_ERR_NOMEM, "out of memory"};
        return NULL;
    }
#ifdef TG_HAVE_MPI
    if (mpi.active) {
        if (!(tr->many = tg_mpi_trainer_new(ps, m, loss, batch, opt, MPI_COMM_WORLD, err))) {
            free(tr);
            return NULL;
        }
        return tr;
    }
#endif
    if (!(tr->one = tg_trainer_new(ps, m, loss, batch, opt, err))) {
        free(tr);
        return NULL;
    }
    return tr;
}

int tg_cli_trainer_epoch(tg_cli_trainer *tr, const tg_dataset *ds, tg_rng *r, double *mean_loss,
                         tg_progress_fn progress, void *ctx, tg_error *err) {
#ifdef TG_HAVE_MPI
    if (tr->many) return tg_mpi_trainer_epoch(tr->many, ds, r, mean_loss, progress, ctx, err);
#endif
    return tg_trainer_epoch(tr->one, ds, r, mean_loss, progress, ctx, err);
}

void tg_cli_trainer_free(tg_cli_trainer *tr) {
    if (!tr) return;
    tg_trainer_free(tr->one);
#ifdef TG_HAVE_MPI
    tg_mpi_trainer_free(tr->many);
#endif
    free(tr);
}

static int one_step(void *ctx, tg_trainer *one, int64_t step) {
    (void)one;
    tg_cli_trainer *tr = ctx;
    return tr->fn(tr->ctx, step);
}

#ifdef TG_HAVE_MPI
static int many_step(void *ctx, tg_mpi_trainer *many, int64_t step) {
    (void)many;
    tg_cli_trainer *tr = ctx;
    return tr->fn(tr->ctx, step);
}
#endif

void tg_cli_trainer_on_step(tg_cli_trainer *tr, tg_cli_step_fn fn, void *ctx) {
    tr->fn = fn;
    tr->ctx = ctx;
#ifdef TG_HAVE_MPI
    if (tr->many) tg_mpi_trainer_on_step(tr->many, fn ? many_step : NULL, tr);
#endif
    if (tr->one) tg_trainer_on_step(tr->one, fn ? one_step : NULL, tr);
}

int tg_cli_trainer_position(tg_cli_trainer *tr, tg_train_position *pos) {
#ifdef TG_HAVE_MPI
    if (tr->many) return tg_mpi_trainer_position(tr->many, pos);
#endif
    return tg_trainer_position(tr->one, pos);
}

int tg_cli_trainer_set_position(tg_cli_trainer *tr, const tg_train_position *pos,
                                tg_error *err) {
#ifdef TG_HAVE_MPI
    if (tr->many) return tg_mpi_trainer_set_position(tr->many, pos, err);
#endif
    return tg_trainer_set_position(tr->one, pos, err);
}

bool tg_cli_mpi_all_ok(int status) {
#ifdef TG_HAVE_MPI
    if (mpi.active) return tg_mpi_agree(status ? TG_ERR_STATE : TG_OK, MPI_COMM_WORLD, NULL) == TG_OK;
#endif
    return status == 0;
}
