/* `tapegrad train` under mpirun (mpi.c): MPI set-up and tear-down, the
 * ranks' agreement before training, and a trainer that is tg_trainer on one
 * process and tg_mpi_trainer on several. Built without TG_HAVE_MPI, or run
 * without an MPI launcher, it is one rank and MPI is never initialised. */
#ifndef TG_CLI_MPI_H
#define TG_CLI_MPI_H

#include <stdbool.h>
#include <tapegrad.h>

/* Initialises MPI when the program was started by an MPI launcher (mpirun
 * sets OMPI_COMM_WORLD_SIZE; srun with PMIx sets PMIX_RANK). On ranks other
 * than 0, stdout then goes to /dev/null: only rank 0 prints progress and
 * results; every rank keeps stderr for its own errors. */
void tg_cli_mpi_begin(void);

/* This process's rank (0 without MPI) and the number of ranks (1). */
int tg_cli_mpi_rank(void);
int tg_cli_mpi_size(void);

/* Whether MPI was initialised. Open MPI gives each rank a pseudo-terminal
 * as stdout even when mpirun's output goes to a file or a pipe, so the
 * progress bar stays off under MPI. */
bool tg_cli_mpi_active(void);

/* Collective: every rank reports whether its set-up (data, model, files)
 * succeeded, then that its config, lines "OPTION VALUE" (the options that
 * change the training, and a fingerprint of its data) under
 * TG_CLI_MPI_CONFIG_MAX bytes, is rank 0's. When all agree, copies rank 0's
 * initial parameters into ps on every rank and returns true. When a rank
 * failed, prints on one of the others which rank failed; when configs
 * differ, the lowest differing rank names its first line that differs from
 * rank 0's; false on every rank then. */
#define TG_CLI_MPI_CONFIG_MAX 2048
bool tg_cli_mpi_ready(tg_params *ps, const char *cmd, const char *config);

/* Ends MPI for a command that returns status: a rank that returns before
 * reaching tg_cli_mpi_ready() tells the others through it (so that none
 * waits forever), then MPI_Finalize. Returns the exit status. */
int tg_cli_mpi_end(int status);

typedef struct tg_cli_trainer tg_cli_trainer;

/* tg_trainer_new / _epoch / _free, or with several ranks tg_mpi_trainer_*
 * on MPI_COMM_WORLD with batch per rank. */
tg_cli_trainer *tg_cli_trainer_new(tg_params *ps, const tg_mlp *m, tg_loss loss, int batch,
                                   tg_optim *opt, tg_error *err);
int tg_cli_trainer_epoch(tg_cli_trainer *tr, const tg_dataset *ds, tg_rng *r, double *mean_loss,
                         tg_progress_fn progress, void *ctx, tg_error *err);
void tg_cli_trainer_free(tg_cli_trainer *tr);

/* A step callback of either trainer: nonzero stops the training. */
typedef int (*tg_cli_step_fn)(void *ctx, int64_t step);

/* tg_trainer_on_step / _position / _set_position, or the tg_mpi_trainer
 * ones (the position is then collective inside a step callback). */
void tg_cli_trainer_on_step(tg_cli_trainer *tr, tg_cli_step_fn fn, void *ctx);
int tg_cli_trainer_position(tg_cli_trainer *tr, tg_train_position *pos);
int tg_cli_trainer_set_position(tg_cli_trainer *tr, const tg_train_position *pos,
                                tg_error *err);

/* Collective: whether every rank's status is 0 (one process: whether its
 * own is). */
bool tg_cli_mpi_all_ok(int status);

#endif
