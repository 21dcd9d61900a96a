/* Private helpers of the nn side (params, data, optimisers, training,
 * checkpoints); never installed. */
#ifndef TG_NN_INTERNAL_H
#define TG_NN_INTERNAL_H

#include "tape.h"
#include "alloc.h"

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

/* A tagged section of a version-2 checkpoint (docs/formats.md). */
#define TG__TRAIN_TAG "TRN1"
typedef struct tg__section {
    const char *tag; /* 4 bytes */
    const unsigned char *data;
    size_t len;
} tg__section;

/* tg_checkpoint_save() with sec (NULL: none, a version-1 file) after the
 * parameters. */
int tg__checkpoint_save(const tg_params *ps, const tg__section *sec, const char *path,
                        tg_error *err);

/* tg_checkpoint_read(); with train not NULL, the file must have a training
 * section, and *train gets a copy of it (a block of tg__malloc to
 * tg__free: its length as 8 little-endian bytes, then its bytes). */
tg_params *tg__checkpoint_read(const char *path, unsigned char **train, tg_error *err);

/* The optimiser's whole state, as a training checkpoint holds it (optim.c).
 * Every buffer has `size` elements of the store's dtype (its flat layout,
 * padding included); a NULL buffer is state the rule does not keep (m:
 * momentum and Adam, v: Adam) or a snapshot not taken. */
typedef struct tg__optim_state {
    const tg_params *ps; /* the store it updates */
    tg_optim_config cfg;
    int64_t size;
    int64_t t, snap_t;
    const void *m, *v;
    const void *snap_w, *snap_m, *snap_v;
} tg__optim_state;

/* Describes o's state (pointers into o, valid until its next call). */
void tg__optim_state_get(const tg_optim *o, tg__optim_state *s);

/* Puts s (of the same kind and size as o) into o: the learning rate, the
 * step count, the moments and the snapshot (allocated here when s has one;
 * without one, o has none). TG_OK or TG_ERR_NOMEM, o unchanged then. */
int tg__optim_state_set(tg_optim *o, const tg__optim_state *s);

#endif
