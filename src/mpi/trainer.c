/*
 * Data-parallel training by replay (tg_mpi_trainer, include/tapegrad/mpi.h):
 * each rank replays the graph of its slice of every global mini-batch, one
 * MPI_Allreduce per step averages the gradients, every rank steps.
 *
 * Trouble on one rank (a tape error, a cost that is not finite) travels in
 * that same reduction, as a NaN in the first gradient, so that every rank
 * stops at the same step without a collective of its own; the end of the
 * epoch says who and why to all, and undoes a non-finite update as
 * tg_trainer does (snapshot, rollback, collective replay).
 */
#include "mpi_internal.h"
#include "../nn/train_position.h"

#include <limits.h>
#include <math.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

struct tg_mpi_trainer {
    tg_params *ps;
    tg_optim *opt;
    tg_mlp m;
    tg_loss loss;
    size_t batch;
    MPI_Comm comm;
    int rank, size;
    tg_batch_graph full, rest; /* batch rows; this rank's share of the short last batch */
    uint32_t *idx;
    size_t idx_cap;
    int epoch; /* epochs started, for messages */
    /* The position (tg_mpi_trainer_position), as tg_trainer keeps it. sum
     * is this rank's share of the epoch's cost sum. */
    int64_t step;
    double sum;
    bool in_epoch;
    tg_rng rng;
    int64_t resume_step;
    double resume_sum;
    tg_mpi_step_fn on_step;
    void *on_step_ctx;
};

tg_mpi_trainer *tg_mpi_trainer_new(tg_params *ps, const tg_mlp *m, tg_loss loss, int batch,
                                   tg_optim *opt, MPI_Comm comm, tg_error *err) {
    if (err) *err = (tg_error){TG_OK, ""}; /* success leaves no stale message */
    if (!ps || !m || !opt) {
        tg__mpi_err(err, TG_ERR_NULL, "mpi trainer: %s is NULL",
                    !ps ? "the store" : !m ? "the network" : "the optimiser");
        return NULL;
    }
    if (batch < 1) {
        tg__mpi_err(err, TG_ERR_ARG, "mpi trainer: batch size %d; must be >= 1", batch);
        return NULL;
    }
    int rc = tg__mpi_ready(comm);
    if (rc) {
        tg__mpi_err(err, rc, "mpi trainer: %s", rc == TG_ERR_ARG ? "the communicator is MPI_COMM_NULL"
                                                                 : "MPI is not initialised");
        return NULL;
    }
    tg_mpi_trainer *tr = calloc(1, sizeof *tr);
    if (!tr) {
        tg__mpi_err(err, TG_ERR_NOMEM, "mpi trainer: out of memory");
        return NULL;
    }
    tr->ps = ps;
    tr->opt = opt;
    tr->m = *m;
    tr->loss = loss;
    tr->batch = (size_t)batch;
    tr->comm = comm;
    MPI_Comm_rank(comm, &tr->rank);
    MPI_Comm_size(comm, &tr->size);
    if (tg_batch_graph_build(&tr->full, ps, m, loss, tr->batch, err)) {
        tg_mpi_trainer_free(tr);
        return NULL;
    }
    return tr;
}

void tg_mpi_trainer_on_step(tg_mpi_trainer *tr, tg_mpi_step_fn fn, void *ctx) {
    if (!tr) return;
    tr->on_step = fn;
    tr->on_step_ctx = ctx;
}

static int allreduce(void *v, int n, MPI_Datatype type, MPI_Op op, MPI_Comm comm);

int tg_mpi_trainer_position(tg_mpi_trainer *tr, tg_train_position *pos) {
    if (!tr || !pos) return TG_ERR_NULL;
    if (tr->resume_step) {
        *pos = (tg_train_position){tr->epoch, tr->resume_step, tr->resume_sum, tr->rng};
        return TG_OK;
    }
    if (!tr->in_epoch) {
        *pos = (tg_train_position){tr->epoch, 0, 0, tr->rng};
        return TG_OK;
    }
    /* The epoch's sum so far over every rank. Rank 0 then holds it all and
     * the others none, as after a resume from this position: the epoch's
     * final reduction adds the same numbers, stopped here or not. */
    double sum = tr->sum;
    if (allreduce(&sum, 1, MPI_DOUBLE, MPI_SUM, tr->comm)) return TG_ERR_IO;
    tr->sum = tr->rank == 0 ? sum : 0;
    *pos = (tg_train_position){tr->epoch - 1, tr->step, sum, tr->rng};
    return TG_OK;
}

int tg_mpi_trainer_set_position(tg_mpi_trainer *tr, const tg_train_position *pos,
                                tg_error *err) {
    if (err) *err = (tg_error){TG_OK, ""};
    if (!tr || !pos) return tg__mpi_err(err, TG_ERR_NULL, "mpi trainer position: argument is NULL");
    if (!tg__position_ok(pos))
        return tg__mpi_err(err, TG_ERR_ARG, "mpi trainer position: epoch %lld, step %lld, loss "
                           "sum %g is no position", (long long)pos->epoch,
                           (long long)pos->step, pos->loss_sum);
    tr->epoch = (int)pos->epoch;
    tr->resume_step = pos->step;
    tr->resume_sum = pos->step && tr->rank == 0 ? pos->loss_sum : 0;
    tr->rng = pos->rng;
    tr->in_epoch = false;
    return TG_OK;
}

void tg_mpi_trainer_free(tg_mpi_trainer *tr) {
    if (!tr) return;
    tg_batch_graph_free(&tr->full);
    tg_batch_graph_free(&tr->rest);
    free(tr->idx);
    free(tr);
}

/* This rank's preparation of an epoch over n samples: checks ds against the
 * network, sizes the index array, records the graph of its share of the
 * short last batch. Local; TG_OK or an error in err. */
static int prepare(tg_mpi_trainer *tr, const tg_dataset *ds, size_t n, tg_error *err) {
    const tg_mlp *m = &tr->m;
    int rc = tg_mlp_check_data(m, ds, err);
    if (rc) return rc;
    if (n == 0) return tg__mpi_err(err, TG_ERR_ARG, "mpi train: the dataset is empty");
    if (n > tr->idx_cap) {
        uint32_t *p = realloc(tr->idx, n * sizeof *p);
        if (!p) return tg__mpi_err(err, TG_ERR_NOMEM, "mpi train: out of memory for %zu indices", n);
        tr->idx = p;
        tr->idx_cap = n;
    }
    size_t rows;
    tg_mpi_shard(n % (tr->batch * (size_t)tr->size), tr->rank, tr->size, NULL, &rows);
    if (rows && tr->rest.rows != rows)
        return tg_batch_graph_build(&tr->rest, tr->ps, m, tr->loss, rows, err);
    return TG_OK;
}

/* The trainers take a snapshot of the store and the optimiser's state every
 * SNAPSHOT_STEPS steps (as tg_trainer does), to undo a step whose update
 * went non-finite. */
#define SNAPSHOT_STEPS 64

/* What this rank found wrong in a step, for the end of the epoch. */
typedef struct trouble {
    int code;     /* a tape error (TG_OK when none), message in err */
    int64_t step; /* 0, or the step whose loss (loss = true) or update went non-finite */
    bool loss;
    double value; /* the non-finite loss */
    tg_error err;
} trouble;

/* Forward and backward of graph g on samples idx[0..g->rows): leaves this
 * rank's gradient of its batch-averaged cost in the store (whose gradients
 * are zero: the epoch clears them, each tg_optim_step consumes them) and
 * adds the cost times the rows to *sum. A cost that is not finite is noted
 * in *t, before the backward pass. */
static void local_step(tg_mpi_trainer *tr, tg_batch_graph *g, const tg_dataset *ds,
                       const uint32_t *idx, int64_t k, double *sum, trouble *t) {
    int rc = tg_dataset_gather(ds, idx, g->rows, tg_params_dtype(tr->ps), tg_value(g->x),
                               tg_value(g->y), tr->m.sizes[tr->m.nlayers]);
    if (rc) {
        t->code = tg__mpi_err(&t->err, rc, "mpi train: a batch could not be gathered");
        return;
    }
    if (tg_forward(g->tape)) {
        t->code = tg__mpi_err(&t->err, tg_status(g->tape), "mpi train: %s",
                              tg_status_message(g->tape));
        return;
    }
    double cost = tg_value_scalar(g->cost);
    if (!isfinite(cost)) {
        *t = (trouble){.step = k, .loss = true, .value = cost};
        return;
    }
    if (tg_backward(g->cost)) {
        t->code = tg__mpi_err(&t->err, tg_status(g->tape), "mpi train: %s",
                              tg_status_message(g->tape));
        return;
    }
    *sum += cost * (double)g->rows;
}

static int mpi_failed(tg_error *err, const char *what) {
    return tg__mpi_err(err, TG_ERR_IO, "mpi train: %s failed; the communicator is unusable", what);
}

enum { STEP_DONE, STEP_STOP, STEP_MPI_ERROR };

/* Global step k on samples [start, start + rows) of the epoch: this rank's
 * share forward and backward, the gradients averaged, the update. A rank
 * in trouble (now or at an earlier step) sends zero gradients with a NaN in
 * the first element; NaN absorbs every sum, so after the reduction every
 * rank sees it and all return STEP_STOP together, before updating. A
 * failed update is noted in *t and stops every rank at the next step (or
 * at the epoch's end). Before the update of step k, when k - 1 is a
 * multiple of SNAPSHOT_STEPS, the parameters are those of step k - 1 on
 * every rank, confirmed finite: they are snapshotted. */
static int global_step(tg_mpi_trainer *tr, const tg_dataset *ds, int64_t k, size_t start,
                       size_t rows, double *sum, trouble *t) {
    const size_t global = tr->batch * (size_t)tr->size;
    size_t first, mine;
    tg_batch_graph *g = &tr->full;
    if (rows == global) {
        first = (size_t)tr->rank * tr->batch;
        mine = tr->batch;
    } else {
        tg_mpi_shard(rows, tr->rank, tr->size, &first, &mine);
        g = &tr->rest;
    }
    if (!t->code && !t->step && mine) local_step(tr, g, ds, tr->idx + start + first, k, sum, t);
    if (t->code || t->step) {
        tg_params_zero_grad(tr->ps);
        if (tg_params_dtype(tr->ps) == TG_F64)
            *(double *)tg_params_grads(tr->ps) = NAN;
        else
            *(float *)tg_params_grads(tr->ps) = NAN;
    }
    int rc = rows == global ? tg_mpi_allreduce_grads(tr->ps, tr->comm)
                            : tg_mpi_allreduce_grads_weighted(tr->ps, (double)mine / (double)rows,
                                                              tr->comm);
    if (rc) return STEP_MPI_ERROR;
    double g0 = tg_params_dtype(tr->ps) == TG_F64 ? *(double *)tg_params_grads(tr->ps)
                                                   : *(float *)tg_params_grads(tr->ps);
    if (isnan(g0)) {
        tg_params_zero_grad(tr->ps);
        return STEP_STOP;
    }
    if ((k - 1) % SNAPSHOT_STEPS == 0 && (rc = tg_optim_snapshot(tr->opt)))
        t->code = tg__mpi_err(&t->err, rc, "mpi train: out of memory for a copy of the parameters");
    else if ((rc = tg_optim_step(tr->opt)) == TG_ERR_NUMERIC)
        *t = (trouble){.step = k};
    else if (rc)
        t->code = tg__mpi_err(&t->err, rc, "mpi train: the optimiser's store gained parameters");
    return STEP_DONE;
}

/* In-place MPI_Allreduce of n values with errors returned; TG_OK or TG_ERR_IO. */
static int allreduce(void *v, int n, MPI_Datatype type, MPI_Op op, MPI_Comm comm) {
    MPI_Errhandler saved;
    tg__mpi_errors_return(comm, &saved);
    int mrc = MPI_Allreduce(MPI_IN_PLACE, v, n, type, op, comm);
    tg__mpi_errors_restore(comm, &saved);
    return mrc == MPI_SUCCESS ? TG_OK : TG_ERR_IO;
}

/* Allreduce (MPI_MAX) of n int64; TG_OK or TG_ERR_IO. */
static int max_all(int64_t *v, int n, MPI_Comm comm) {
    return allreduce(v, n, MPI_INT64_T, MPI_MAX, comm);
}

static int bcast_bytes(void *p, int n, int root, MPI_Comm comm) {
    MPI_Errhandler saved;
    tg__mpi_errors_return(comm, &saved);
    int mrc = MPI_Bcast(p, n, MPI_BYTE, root, comm);
    tg__mpi_errors_restore(comm, &saved);
    return mrc == MPI_SUCCESS ? TG_OK : TG_ERR_IO;
}

/* Undoes the update of step `step`, which went non-finite: rolls back to the
 * snapshot of step snap (the last multiple of SNAPSHOT_STEPS before it) and
 * replays steps snap + 1 .. step - 1 with every rank; they give the same
 * numbers again. Returns the step whose parameters the store then holds,
 * or -1 when MPI failed. */
static int64_t undo(tg_mpi_trainer *tr, const tg_dataset *ds, int64_t step) {
    const size_t global = tr->batch * (size_t)tr->size;
    int64_t snap = (step - 1) / SNAPSHOT_STEPS * SNAPSHOT_STEPS, j = snap + 1;
    trouble t = {0};
    double sum = 0;
    int st = STEP_DONE;
    tg_optim_rollback(tr->opt);
    for (; j < step && st == STEP_DONE; j++)
        st = global_step(tr, ds, j, (size_t)(j - 1) * global, global, &sum, &t);
    if (st == STEP_MPI_ERROR) return -1;
    /* A replayed update that failed has told nobody yet. */
    int64_t any = st == STEP_STOP || t.code || t.step;
    if (max_all(&any, 1, tr->comm)) return -1;
    tg_params_zero_grad(tr->ps);
    if (!any) return step - 1;
    tg_optim_rollback(tr->opt); /* cannot happen with a deterministic BLAS */
    return snap;
}

/* The end of an epoch, on every rank together (all have left the loop at
 * the same step): finds the first trouble of any rank, a tape error first,
 * else the earliest step whose numbers went non-finite; puts back the
 * parameters of the step before it; gives every rank the same status and
 * message. stop_step: the step at which a NaN in the averaged gradients
 * stopped the loop (0 if none). */
static int finish(tg_mpi_trainer *tr, const tg_dataset *ds, const trouble *t, int64_t stop_step,
                  double sum, size_t n, double *mean_loss, tg_error *err) {
    const int rank = tr->rank, size = tr->size;
    /* Max over the ranks: the lowest rank with a tape error, and the
     * earliest (step, rank) that went non-finite. */
    int64_t v[2] = {t->code ? size - rank : 0,
                    t->step ? INT64_MAX - (t->step * size + rank) : 0};
    if (max_all(v, 2, tr->comm)) return mpi_failed(err, "MPI_Allreduce");
    if (v[0]) {
        int who = size - (int)v[0];
        tg_error e = t->err;
        if (bcast_bytes(&e, sizeof e, who, tr->comm)) return mpi_failed(err, "MPI_Bcast");
        return tg__mpi_err(err, e.code, "rank %d of %d: %s", who, size, e.message);
    }
    char blame[96];
    tg_optim_blame(blame, sizeof blame, tr->opt);
    if (!v[1] && stop_step) /* a NaN gradient behind finite costs: no update was made */
        return tg__mpi_err(err, TG_ERR_NUMERIC,
                           "epoch %d, step %lld: the averaged gradient is NaN; %s may be too "
                           "large (the parameters are kept as they were after step %lld)",
                           tr->epoch, (long long)stop_step, blame, (long long)stop_step - 1);
    if (!v[1]) {
        if (allreduce(&sum, 1, MPI_DOUBLE, MPI_SUM, tr->comm))
            return mpi_failed(err, "MPI_Allreduce");
        if (mean_loss) *mean_loss = sum / (double)n;
        return TG_OK;
    }
    int64_t key = INT64_MAX - v[1], step = key / size;
    int who = (int)(key % size);
    struct {
        int loss;
        double value;
    } what = {t->loss, t->value};
    if (bcast_bytes(&what, sizeof what, who, tr->comm)) return mpi_failed(err, "MPI_Bcast");
    char where[64] = "";
    if (size > 1) snprintf(where, sizeof where, " on rank %d of %d", who, size);
    if (what.loss && tg_optim_steps(tr->opt) == 0)
        return tg__mpi_err(err, TG_ERR_NUMERIC,
                           "epoch %d, step %lld: the loss is %s%s before any update: check the "
                           "data and the initial parameters",
                           tr->epoch, (long long)step, isnan(what.value) ? "NaN" : "inf", where);
    int64_t kept = what.loss ? step - 1 : undo(tr, ds, step);
    if (kept < 0) return mpi_failed(err, "MPI_Allreduce of the gradients");
    char after[64] = "as the epoch began";
    if (kept) snprintf(after, sizeof after, "after step %lld", (long long)kept);
    if (what.loss)
        return tg__mpi_err(err, TG_ERR_NUMERIC,
                           "epoch %d, step %lld: the loss is %s%s; %s may be too large (the "
                           "parameters are kept as they were %s)",
                           tr->epoch, (long long)step, isnan(what.value) ? "NaN" : "inf", where,
                           blame, after);
    return tg__mpi_err(err, TG_ERR_NUMERIC,
                       "epoch %d, step %lld: the update made a parameter NaN or infinite; %s may "
                       "be too large (the parameters are kept as they were %s)",
                       tr->epoch, (long long)step, blame, after);
}

int tg_mpi_trainer_epoch(tg_mpi_trainer *tr, const tg_dataset *ds, tg_rng *r,
                         double *mean_loss, tg_progress_fn progress, void *ctx, tg_error *err) {
    if (err) *err = (tg_error){TG_OK, ""}; /* success leaves no stale message */
    if (!tr) return tg__mpi_err(err, TG_ERR_NULL, "mpi train: trainer is NULL");
    if (tg__mpi_ready(tr->comm)) return tg__mpi_err(err, TG_ERR_STATE, "mpi train: MPI is not initialised");
    const int rank = tr->rank, size = tr->size;
    size_t n = ds ? tg_dataset_size(ds) : 0;
    int rc = prepare(tr, ds, n, err);

    /* One reduction: is every rank ready, and do they agree? max(x, -x)
     * gives the maximum and minus the minimum of each figure. */
    int64_t ps_size = tg_params_size(tr->ps), dt = tg_params_dtype(tr->ps);
    int64_t v[9] = {rc ? size - rank : 0, (int64_t)n, -(int64_t)n, (int64_t)tr->batch,
                    -(int64_t)tr->batch, ps_size, -ps_size, dt, -dt};
    if (max_all(v, 9, tr->comm)) return mpi_failed(err, "MPI_Allreduce");
    if (rc) return rc;
    if (v[0])
        return tg__mpi_err(err, TG_ERR_STATE, "mpi train: rank %d of %d could not start the epoch",
                           size - (int)v[0], size);
    if (v[1] != -v[2])
        return tg__mpi_err(err, TG_ERR_STATE,
                           "mpi train: the ranks' datasets differ in size (%lld to %lld samples)",
                           (long long)-v[2], (long long)v[1]);
    if (v[3] != -v[4])
        return tg__mpi_err(err, TG_ERR_STATE,
                           "mpi train: the ranks' batch sizes differ (%lld to %lld)",
                           (long long)-v[4], (long long)v[3]);
    if (v[5] != -v[6] || v[7] != -v[8])
        return tg__mpi_err(err, TG_ERR_STATE,
                           "mpi train: the ranks' parameter stores differ in size or dtype");

    const size_t global = tr->batch * (size_t)size;
    /* Resuming: the steps taken are full global batches, at most the
     * epoch's (every rank has the same position and n: the same verdict). */
    size_t skip = (size_t)tr->resume_step, steps = (n + global - 1) / global;
    if (skip > steps)
        return tg__mpi_err(err, TG_ERR_ARG,
                           "mpi train: the position's step %zu is past the epoch's %zu steps "
                           "(another dataset, batch size or number of ranks?)", skip, steps);
    tr->epoch++;
    for (size_t i = 0; i < n; i++) tr->idx[i] = (uint32_t)i;
    if (r) {
        tr->rng = *r;
        tg_rng_shuffle(r, tr->idx, n);
    }
    tg_params_zero_grad(tr->ps);
    tr->in_epoch = true;
    tr->step = (int64_t)skip;
    tr->sum = tr->resume_sum;
    tr->resume_step = 0;
    tr->resume_sum = 0;
    trouble t = {0};
    int64_t k = (int64_t)skip + 1, stop_step = 0;
    for (size_t start = skip * global < n ? skip * global : n; start < n; k++) {
        size_t rows = n - start < global ? n - start : global;
        int st = global_step(tr, ds, k, start, rows, &tr->sum, &t);
        if (st == STEP_MPI_ERROR) return mpi_failed(err, "MPI_Allreduce of the gradients");
        if (st == STEP_STOP) {
            stop_step = k;
            break;
        }
        start += rows;
        if (progress) progress(ctx, start, n);
        /* Every rank calls the callback at the same steps (a failed update
         * is known to all alike); a rank whose callback fails stops them
         * all at the next step, as a rank in trouble does. */
        if (t.step) continue;
        tr->step = k;
        int hook = tr->on_step ? tr->on_step(tr->on_step_ctx, tr, k) : TG_OK;
        if (hook && !t.code)
            t.code = tg__mpi_err(&t.err, hook, "epoch %d, step %lld: stopped by the step callback",
                                 tr->epoch, (long long)k);
    }
    rc = finish(tr, ds, &t, stop_step, tr->sum, n, mean_loss, err);
    if (!rc) {
        tr->in_epoch = false;
        if (r) tr->rng = *r;
    }
    return rc;
}
