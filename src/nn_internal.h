/* Private helpers of the nn side (params, data, optimisers, training,
 * checkpoints); never installed. */
#ifndef TG_NN_INTERNAL_H
#define TG_NN_INTERNAL_H

#include "internal.h"

/* Fills err (when not NULL) with code and a printf-style message; returns
 * code, so that failures read `return tg__err(err, TG_ERR_IO, ...)`. */
int tg__err(tg_error *err, int code, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 3, 4)))
#endif
    ;

/* Clears err to TG_OK and an empty message. Every public function that
 * takes a tg_error calls it first, so that a call that succeeds leaves no
 * stale message from an earlier failure; a failure then overwrites it. */
void tg__err_clear(tg_error *err);

/* A node over parameter i of ps on tape t, wanting a gradient or not. */
tg_node *tg__param_view(tg_tape *t, tg_params *ps, int i, bool grad);

/* Adds a parameter with its values given (a checkpoint being read). */
int tg__params_add_data(tg_params *ps, const char *name, int ndim, const int64_t *shape,
                        const void *data, tg_error *err);

/* Removes the parameters added after the first count (undoing adds). */
void tg__params_truncate(tg_params *ps, int count);

#endif
