/*
 * Data-parallel training by replay (tg_mpi_trainer, include/tapegrad/mpi.h):
 * each rank replays the graph of its slice of every global mini-batch, one
 * MPI_Allreduce per step averages the gradients, every rank steps.
 */
#include "mpi_internal.h"

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

/* Forward and backward of graph g on samples idx[0..g->rows): leaves this
 * rank's gradient of its batch-averaged cost in the store (whose gradients
 * are zero: the epoch clears them, each tg_optim_step consumes them) and
 * adds the cost times the rows to *sum. */
static int local_step(tg_mpi_trainer *tr, tg_batch_graph *g, const tg_dataset *ds,
                      const uint32_t *idx, double *sum, tg_error *err) {
    int rc = tg_dataset_gather(ds, idx, g->rows, tg_params_dtype(tr->ps), tg_value(g->x),
                               tg_value(g->y), tr->m.sizes[tr->m.nlayers]);
    if (rc) return tg__mpi_err(err, rc, "mpi train: a batch could not be gathered");
    if (tg_forward(g->tape) || tg_backward(g->cost))
        return tg__mpi_err(err, tg_status(g->tape), "mpi train: %s", tg_status_message(g->tape));
    *sum += tg_value_scalar(g->cost) * (double)g->rows;
    return TG_OK;
}

static int mpi_failed(tg_error *err, const char *what) {
    return tg__mpi_err(err, TG_ERR_IO, "mpi train: %s failed; the communicator is unusable", what);
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
    MPI_Errhandler saved;
    tg__mpi_errors_return(tr->comm, &saved);
    int mrc = MPI_Allreduce(MPI_IN_PLACE, v, 9, MPI_INT64_T, MPI_MAX, tr->comm);
    tg__mpi_errors_restore(tr->comm, &saved);
    if (mrc != MPI_SUCCESS) return mpi_failed(err, "MPI_Allreduce");
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

    for (size_t i = 0; i < n; i++) tr->idx[i] = (uint32_t)i;
    if (r) tg_rng_shuffle(r, tr->idx, n);
    tg_params_zero_grad(tr->ps);
    const size_t global = tr->batch * (size_t)size;
    double sum = 0;
    int failed = TG_OK;
    tg_error ferr = {0, ""};
    for (size_t start = 0; start < n;) {
        size_t rows = n - start < global ? n - start : global, first, mine;
        tg_batch_graph *g;
        if (rows == global) {
            first = (size_t)rank * tr->batch;
            mine = tr->batch;
            g = &tr->full;
        } else {
            tg_mpi_shard(rows, rank, size, &first, &mine);
            g = &tr->rest;
        }
        if (!failed && mine) failed = local_step(tr, g, ds, tr->idx + start + first, &sum, &ferr);
        if (failed) tg_params_zero_grad(tr->ps); /* (a rank with no rows has zeros) */
        rc = rows == global ? tg_mpi_allreduce_grads(tr->ps, tr->comm)
                            : tg_mpi_allreduce_grads_weighted(tr->ps, (double)mine / (double)rows,
                                                              tr->comm);
        if (rc) return mpi_failed(err, "MPI_Allreduce of the gradients");
        if (!failed && (failed = tg_optim_step(tr->opt)))
            tg__mpi_err(&ferr, failed, "mpi train: the optimiser's store gained parameters");
        start += rows;
        if (progress) progress(ctx, start, n);
    }

    /* Share a failure, then the sum of the costs. */
    int who;
    rc = tg_mpi_agree(failed, tr->comm, &who);
    if (rc == TG_ERR_IO && !failed) return mpi_failed(err, "MPI_Allreduce");
    if (failed) {
        if (err) *err = ferr;
        return failed;
    }
    if (rc)
        return tg__mpi_err(err, TG_ERR_STATE, "mpi train: rank %d of %d failed during the epoch",
                           who, size);
    tg__mpi_errors_return(tr->comm, &saved);
    mrc = MPI_Allreduce(MPI_IN_PLACE, &sum, 1, MPI_DOUBLE, MPI_SUM, tr->comm);
    tg__mpi_errors_restore(tr->comm, &saved);
    if (mrc != MPI_SUCCESS) return mpi_failed(err, "MPI_Allreduce");
    if (mean_loss) *mean_loss = sum / (double)n;
    return TG_OK;
}
