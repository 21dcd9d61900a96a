/*
 * tapegrad_mpi: data-parallel training across processes and machines with
 * MPI. A separate library (tapegrad::tapegrad_mpi, built when CMake finds
 * MPI); this header is not included by <tapegrad.h> because it needs
 * <mpi.h>. The program calls MPI_Init / MPI_Finalize itself.
 *
 * Every rank holds a full copy of the parameters and of the dataset. Each
 * mini-batch step, every rank computes the gradient of its own slice of the
 * global mini-batch; one MPI_Allreduce over the store's flat gradient buffer
 * (tg_params_grads) averages them; every rank then takes the same optimiser
 * step, so the copies stay equal. With N ranks and per-rank batch B this is
 * the update of one process with batch N*B:
 *
 *     mean over ranks of (1/B sum over the rank's B samples of grad C_i)
 *       = 1/(N B) sum over the N*B samples of grad C_i.
 *
 * Conventions. Functions return TG_OK or a tg_status_code:
 *   TG_ERR_NULL   a NULL store or trainer;
 *   TG_ERR_ARG    MPI_COMM_NULL, a bad root or weight;
 *   TG_ERR_STATE  MPI is not initialised (or already finalised), or the
 *                 ranks disagree (stores of different sizes or dtypes, ...);
 *   TG_ERR_IO     an MPI call failed.
 * Whatever error handler the communicator has, MPI errors in these calls are
 * returned, never fatal: each call sets MPI_ERRORS_RETURN on comm for its
 * duration and restores the caller's handler. Nothing here aborts or prints.
 * The functions marked *collective* must be called by every rank of comm in
 * the same order, like the MPI calls they make.
 */
#ifndef TAPEGRAD_MPI_H
#define TAPEGRAD_MPI_H

#include <mpi.h>
#include <tapegrad.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Collective. Replaces every gradient of ps by its mean over the ranks of
 * comm: one in-place MPI_Allreduce (MPI_SUM) over the whole flat gradient
 * buffer (tg_params_size() elements of the store's dtype, padding included),
 * then a scaling by 1/size. Every rank must hold a store of the same layout
 * (same parameters in the same order); this is not checked here, per step
 * (tg_mpi_bcast_params and tg_mpi_trainer_epoch check it). */
TG_API int tg_mpi_allreduce_grads(tg_params *ps, MPI_Comm comm);

/* Collective. Multiplies this rank's gradients by weight, then replaces them
 * by their sum over the ranks (one in-place MPI_Allreduce). With weight =
 * this rank's rows / the global batch's rows it gives the gradient of the
 * global batch-averaged cost when the ranks' slices differ in size (a rank
 * with no rows passes zero gradients and weight 0). weight must be finite
 * and >= 0. */
TG_API int tg_mpi_allreduce_grads_weighted(tg_params *ps, double weight, MPI_Comm comm);

/* Collective. Copies the parameter values of rank root into the stores of
 * every other rank (MPI_Bcast of the flat value buffer), after checking with
 * one MPI_Allreduce that every store has the same dtype, parameter count and
 * size: when they differ, every rank returns TG_ERR_STATE and no store
 * changes. Call it once after initialising, so that all ranks start from the
 * same point whatever their seeds. */
TG_API int tg_mpi_bcast_params(tg_params *ps, int root, MPI_Comm comm);

/* Collective. Tells every rank whether all of them succeeded: each passes
 * its own status (TG_OK or an error code), one MPI_Allreduce combines them.
 * Returns TG_OK when every rank passed TG_OK; otherwise this rank's own
 * status when it is an error, else TG_ERR_STATE. *failed_rank (when not
 * NULL) receives the lowest rank that passed an error, or -1. Use it after
 * a step that may fail on one rank only (reading the data, opening a file),
 * before the next collective, so that a failure stops every rank instead of
 * leaving the others waiting. */
TG_API int tg_mpi_agree(int status, MPI_Comm comm, int *failed_rank);

/* The slice of a global mini-batch of rows samples that rank (of size
 * ranks) trains on: samples [*first, *first + *count) of the batch. Equal
 * slices when rows is a multiple of size (rank r: [r*rows/size,
 * (r+1)*rows/size)); otherwise the first rows % size ranks get one sample
 * more, and ranks beyond rows get none. */
TG_API void tg_mpi_shard(size_t rows, int rank, int size, size_t *first, size_t *count);

/*
 * Data-parallel training by replay: the counterpart of tg_trainer (nn.h) for
 * several ranks. An epoch shuffles the indices 0..n-1 with r (every rank
 * must pass a generator in the same state, e.g. seeded alike, so that all
 * ranks see the same permutation), cuts them into global mini-batches of
 * size * batch samples, and takes one step per global batch: rank k runs
 * forward and backward on samples [k*batch, (k+1)*batch) of it, the
 * gradients are averaged with tg_mpi_allreduce_grads, and every rank takes
 * the optimiser step. The parameters then follow, up to rounding, those of
 * tg_trainer with batch size * batch on one process.
 *
 * The last global batch, when n is not a multiple of size * batch, has rem
 * < size * batch samples; they are sharded with tg_mpi_shard (the first
 * rem % size ranks take one more; when rem < size some ranks take none) and
 * combined with tg_mpi_allreduce_grads_weighted (weight = own rows / rem),
 * so its update is the gradient of the cost averaged over its rem samples:
 * the short last batch of tg_trainer with batch size * batch, exactly.
 *
 * Each rank records its graphs once (batch rows, and its share of the last
 * batch) and replays them: steps allocate nothing. The result is the same
 * on every rank as long as the MPI_Allreduce gives every rank the same sums
 * (Open MPI's and MPICH's reductions do; tests/mpi_equiv.c checks it).
 */
typedef struct tg_mpi_trainer tg_mpi_trainer;

/* A trainer for the network m over ps with per-rank batch size batch (>= 1)
 * and optimiser opt on communicator comm (not duplicated: comm must outlive
 * the trainer). It keeps ps and opt (does not own them). Local, not
 * collective: the ranks' agreement (layouts, batch sizes, dataset sizes) is
 * checked by each epoch. NULL with err filled on error. */
TG_API tg_mpi_trainer *tg_mpi_trainer_new(tg_params *ps, const tg_mlp *m, tg_loss loss,
                                          int batch, tg_optim *opt, MPI_Comm comm,
                                          tg_error *err);
TG_API void tg_mpi_trainer_free(tg_mpi_trainer *tr);

/* Collective. One epoch over ds (every rank passes a dataset of the same
 * size; normally every rank has read the same files). Before the first
 * step, one MPI_Allreduce checks that every rank is ready (its dataset fits
 * the network, its graphs are built) and that the ranks agree on the
 * dataset size, the per-rank batch and the store's layout.
 *
 * Every rank stops at the same step when one of them is in trouble, with
 * no extra message per step: a rank whose step fails (a tape error, or a
 * cost that is not finite, checked before its backward pass) sends zero
 * gradients with a NaN in the first element; NaN absorbs every sum, so
 * after the reduction every rank sees it and none updates. An update that
 * went non-finite (a NaN gradient, an overflow: tg_optim_step reports it
 * on every rank alike, the ranks' numbers being equal) stops them at the
 * next step. At the end one MPI_Allreduce names the first trouble, and
 * every rank returns the same status and message: the failing rank's own
 * error, prefixed "rank R of N: "; or TG_ERR_NUMERIC as tg_trainer_epoch
 * (nn.h) gives it, naming the rank whose cost was not finite ("epoch 3,
 * step 12: the loss is NaN on rank 1 of 2; the learning rate 30 may be
 * too large (the parameters are kept as they were after step 11)"). The
 * parameters are then those of the last finite step on every rank: a bad
 * update is undone, as by tg_trainer, from a snapshot taken every 64 steps
 * and a collective replay of the steps since.
 *
 * *mean_loss (when not NULL) receives the mean cost over all n samples, the
 * same on every rank. progress (may be NULL) is called after each global
 * step with the number of samples of the epoch done by all ranks together
 * and n; pass it on one rank only to draw one progress bar. */
TG_API int tg_mpi_trainer_epoch(tg_mpi_trainer *tr, const tg_dataset *ds, tg_rng *r,
                                double *mean_loss, tg_progress_fn progress, void *ctx,
                                tg_error *err);

/* Training checkpoints (tg_training_save, nn.h) of an MPI training: as
 * tg_trainer_on_step, tg_trainer_position and tg_trainer_set_position.
 * The callback runs on every rank after each global step that succeeded
 * (the same steps on all); a nonzero return on any rank stops every rank
 * at the next step, the epoch returning "rank R of N: epoch E, step K:
 * stopped by the step callback". Inside the callback the position is
 * collective (every rank calls it at the same step; one MPI_Allreduce sums
 * the epoch's cost over the ranks, TG_ERR_IO when it fails); between
 * epochs it is local. Save the checkpoint on one rank (rank 0); every rank
 * restores it (tg_training_restore) and sets the same position, with the
 * same number of ranks and per-rank batch. The parameters then go on bit
 * for bit as if the training had not stopped; the mean loss of the epoch
 * under way too (taking the position adds the ranks' sums at that step in
 * the order a resumed training does, so the mean of a training that saves
 * checkpoints may differ in its last bits from one that does not). */
typedef int (*tg_mpi_step_fn)(void *ctx, tg_mpi_trainer *tr, int64_t step);
TG_API void tg_mpi_trainer_on_step(tg_mpi_trainer *tr, tg_mpi_step_fn fn, void *ctx);
TG_API int tg_mpi_trainer_position(tg_mpi_trainer *tr, tg_train_position *pos);
TG_API int tg_mpi_trainer_set_position(tg_mpi_trainer *tr, const tg_train_position *pos,
                                       tg_error *err);

#ifdef __cplusplus
}
#endif

#endif
