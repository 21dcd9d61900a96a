/* What a trainer accepts as a position (tg_trainer_set_position and
 * tg_mpi_trainer_set_position). Public types only, so that the MPI library,
 * which sees no internal symbol, includes it too; never installed. */
#ifndef TG_TRAIN_POSITION_H
#define TG_TRAIN_POSITION_H

#include <limits.h>
#include <math.h>
#include <stdbool.h>

#include <tapegrad.h>

static inline bool tg__position_ok(const tg_train_position *pos) {
    return pos->epoch >= 0 && pos->epoch < INT_MAX && pos->step >= 0 && isfinite(pos->loss_sum);
}

#endif
