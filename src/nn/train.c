/*
 * Training by replay: the graph of one mini-batch is recorded once and
 * replayed for every batch (gather, forward, backward, an optimiser step
 * that also clears the gradients), so a step allocates nothing. Evaluation replays a
 * forward-only graph over chunks of the dataset.
 *
 * Divergence is caught at two points, neither costing a pass of its own:
 * the batch's cost is checked after the forward pass (one scalar; a NaN or
 * an inf anywhere in the outputs reaches it), before any gradient is
 * computed; and tg_optim_step reports an update that made a value
 * non-finite (its loop checks as it writes). The store is then brought back
 * to the parameters of the last finite step: untouched after a bad cost; a
 * bad update is undone from a snapshot taken every TG_SNAPSHOT_STEPS steps
 * (a copy per 64 steps instead of one per step) and the steps since are
 * replayed.
 */
#include "nn_internal.h"
#include "train_position.h"

#include <limits.h>
#include <math.h>
#include <string.h>

#define EVAL_CHUNK 1000
#define TG_SNAPSHOT_STEPS 64

struct tg_trainer {
    tg_params *ps;
    tg_optim *opt;
    tg_mlp m;
    tg_loss loss;
    size_t batch;
    tg_batch_graph full, rest; /* batch rows; the short last batch */
    uint32_t *idx;
    size_t idx_cap;
    int epoch; /* epochs started, for messages */
    /* The position (tg_trainer_position): steps and cost sum of the epoch
     * under way, the generator as it began or as the next one will. */
    int64_t step;
    double sum;
    bool in_epoch;
    tg_rng rng;
    /* tg_trainer_set_position(): the steps the next epoch skips. */
    int64_t resume_step;
    double resume_sum;
    tg_step_fn on_step;
    void *on_step_ctx;
};

void tg_batch_graph_free(tg_batch_graph *g) {
    if (!g) return;
    tg_tape_free(g->tape);
    memset(g, 0, sizeof *g);
}

int tg_batch_graph_build(tg_batch_graph *g, tg_params *ps, const tg_mlp *m, tg_loss loss,
                         size_t rows, tg_error *err) {
    tg__err_clear(err);
    if (!g || !ps || !m) return tg__err(err, TG_ERR_NULL, "batch graph: an argument is NULL");
    tg_batch_graph_free(g);
    if (!(g->tape = tg_tape_new())) return tg__err(err, TG_ERR_NOMEM, "batch graph: out of memory");
    tg_dtype dt = tg_params_dtype(ps);
    int64_t xs[2] = {(int64_t)rows, m->sizes[0]}, ys[2] = {(int64_t)rows, m->sizes[m->nlayers]};
    g->x = tg_input(g->tape, dt, 2, xs, NULL);
    g->y = tg_input(g->tape, dt, 2, ys, NULL);
    g->out = tg_mlp_forward(g->x, ps, m);
    g->cost = tg_cost(g->out, g->y, loss);
    g->rows = rows;
    if (tg_status(g->tape)) {
        int rc = tg__err(err, tg_status(g->tape), "batch graph: %s", tg_status_message(g->tape));
        tg_batch_graph_free(g);
        return rc;
    }
    return TG_OK;
}

int tg_mlp_check_data(const tg_mlp *m, const tg_dataset *ds, tg_error *err) {
    tg__err_clear(err);
    if (!m || !ds) return tg__err(err, TG_ERR_NULL, "train: %s is NULL", m ? "dataset" : "network");
    if (tg_dataset_features(ds) != m->sizes[0])
        return tg__err(err, TG_ERR_SHAPE,
                       "the data has %lld features per sample but the network takes %lld inputs",
                       (long long)tg_dataset_features(ds), (long long)m->sizes[0]);
    if (tg_dataset_classes(ds) > m->sizes[m->nlayers])
        return tg__err(err, TG_ERR_SHAPE,
                       "the data has %d classes but the network has %lld outputs",
                       tg_dataset_classes(ds), (long long)m->sizes[m->nlayers]);
    return TG_OK;
}

tg_trainer *tg_trainer_new(tg_params *ps, const tg_mlp *m, tg_loss loss, int batch,
                           tg_optim *opt, tg_error *err) {
    tg__err_clear(err);
    if (!ps || !m || !opt) {
        tg__err(err, TG_ERR_NULL, "trainer: %s is NULL",
                !ps ? "the store" : !m ? "the network" : "the optimiser");
        return NULL;
    }
    if (batch < 1) {
        tg__err(err, TG_ERR_ARG, "trainer: batch size %d; must be >= 1", batch);
        return NULL;
    }
    tg_trainer *tr = tg__calloc(1, sizeof *tr);
    if (!tr) {
        tg__err(err, TG_ERR_NOMEM, "trainer: out of memory");
        return NULL;
    }
    tr->ps = ps;
    tr->opt = opt;
    tr->m = *m;
    tr->loss = loss;
    tr->batch = (size_t)batch;
    if (tg_batch_graph_build(&tr->full, ps, m, loss, tr->batch, err)) {
        tg_trainer_free(tr);
        return NULL;
    }
    return tr;
}

void tg_trainer_on_step(tg_trainer *tr, tg_step_fn fn, void *ctx) {
    if (!tr) return;
    tr->on_step = fn;
    tr->on_step_ctx = ctx;
}

int tg_trainer_position(const tg_trainer *tr, tg_train_position *pos) {
    if (!tr || !pos) return TG_ERR_NULL;
    if (tr->resume_step) /* set and not yet begun: as it was set */
        *pos = (tg_train_position){tr->epoch, tr->resume_step, tr->resume_sum, tr->rng};
    else if (tr->in_epoch)
        *pos = (tg_train_position){tr->epoch - 1, tr->step, tr->sum, tr->rng};
    else
        *pos = (tg_train_position){tr->epoch, 0, 0, tr->rng};
    return TG_OK;
}

int tg_trainer_set_position(tg_trainer *tr, const tg_train_position *pos, tg_error *err) {
    tg__err_clear(err);
    if (!tr || !pos) return tg__err(err, TG_ERR_NULL, "trainer position: argument is NULL");
    if (!tg__position_ok(pos))
        return tg__err(err, TG_ERR_ARG, "trainer position: epoch %lld, step %lld, loss sum %g "
                       "is no position", (long long)pos->epoch, (long long)pos->step,
                       pos->loss_sum);
    tr->epoch = (int)pos->epoch;
    tr->resume_step = pos->step;
    tr->resume_sum = pos->step ? pos->loss_sum : 0;
    tr->rng = pos->rng;
    tr->in_epoch = false;
    return TG_OK;
}

void tg_trainer_free(tg_trainer *tr) {
    if (!tr) return;
    tg_batch_graph_free(&tr->full);
    tg_batch_graph_free(&tr->rest);
    tg__free(tr->idx);
    tg__free(tr);
}

/* What a step found wrong with its numbers. */
enum { STEP_FINITE, STEP_BAD_LOSS, STEP_BAD_UPDATE };

/* One optimiser step on samples idx[0..g->rows): adds the batch's cost
 * times its rows to *sum. Returns TG_OK, with *bad telling whether the cost
 * or the update went non-finite (the step is then not counted), or a
 * tape error in err. */
static int step(tg_trainer *tr, tg_batch_graph *g, const tg_dataset *ds, const uint32_t *idx,
                double *sum, int *bad, tg_error *err) {
    tg_dtype dt = tg_params_dtype(tr->ps);
    int rc = tg_dataset_gather(ds, idx, g->rows, dt, tg_value(g->x), tg_value(g->y),
                               tr->m.sizes[tr->m.nlayers]);
    if (rc) return tg__err(err, rc, "train: a batch could not be gathered");
    if (tg_forward(g->tape))
        return tg__err(err, tg_status(g->tape), "train: %s", tg_status_message(g->tape));
    double cost = tg_value_scalar(g->cost);
    *bad = isfinite(cost) ? STEP_FINITE : STEP_BAD_LOSS;
    if (*bad) return TG_OK;
    /* The gradients are zero: the previous step consumed them (tg_optim_step),
     * and tg_trainer_epoch clears them before its first step. */
    if (tg_backward(g->cost))
        return tg__err(err, tg_status(g->tape), "train: %s", tg_status_message(g->tape));
    if ((rc = tg_optim_step(tr->opt)) == TG_ERR_NUMERIC) {
        *bad = STEP_BAD_UPDATE;
        return TG_OK;
    }
    if (rc) return tg__err(err, rc, "train: the optimiser's store gained parameters");
    *sum += cost * (double)g->rows;
    return TG_OK;
}

/* After step k (1-based in the epoch) went non-finite, puts back the
 * parameters of step k - 1: none changed when the loss was bad; a bad
 * update is undone by rolling back to the snapshot taken before step
 * snap + 1 (the last multiple of TG_SNAPSHOT_STEPS before k) and replaying
 * the steps up to k - 1 (full batches, the same samples, so the same
 * numbers). Returns TG_ERR_NUMERIC with the message. */
static int diverged(tg_trainer *tr, const tg_dataset *ds, size_t k, int bad, const char *what,
                    tg_error *err) {
    if (bad == STEP_BAD_LOSS && tg_optim_steps(tr->opt) == 0)
        return tg__err(err, TG_ERR_NUMERIC,
                       "epoch %d, step %zu: %s before any update: check the data and the "
                       "initial parameters", tr->epoch, k, what);
    size_t kept = k - 1, snap = (k - 1) / TG_SNAPSHOT_STEPS * TG_SNAPSHOT_STEPS;
    if (bad == STEP_BAD_UPDATE) {
        double sum = 0;
        int again = STEP_FINITE, rc = tg_optim_rollback(tr->opt);
        for (size_t j = snap + 1; !rc && !again && j < k; j++)
            rc = step(tr, &tr->full, ds, tr->idx + (j - 1) * tr->batch, &sum, &again, NULL);
        if (rc || again) { /* cannot happen with a deterministic BLAS */
            tg_optim_rollback(tr->opt);
            kept = snap;
        }
        tg_params_zero_grad(tr->ps);
    }
    char after[64] = "as the epoch began", blame[96];
    if (kept) snprintf(after, sizeof after, "after step %zu", kept);
    return tg__err(err, TG_ERR_NUMERIC,
                   "epoch %d, step %zu: %s; %s may be too large (the parameters are kept as "
                   "they were %s)",
                   tr->epoch, k, what, tg_optim_blame(blame, sizeof blame, tr->opt), after);
}

int tg_trainer_epoch(tg_trainer *tr, const tg_dataset *ds, tg_rng *r, double *mean_loss,
                     tg_progress_fn progress, void *ctx, tg_error *err) {
    tg__err_clear(err);
    if (!tr) return tg__err(err, TG_ERR_NULL, "train: trainer is NULL");
    int rc = tg_mlp_check_data(&tr->m, ds, err);
    if (rc) return rc;
    size_t n = tg_dataset_size(ds);
    if (n == 0) return tg__err(err, TG_ERR_ARG, "train: the dataset is empty");
    /* Resuming: the steps already taken are full batches, and at most all
     * of the epoch's. */
    size_t skip = (size_t)tr->resume_step;
    if (skip && (skip > (n + tr->batch - 1) / tr->batch))
        return tg__err(err, TG_ERR_ARG,
                       "train: the position's step %zu is past the epoch's %zu steps (another "
                       "dataset or batch size?)", skip, (n + tr->batch - 1) / tr->batch);
    if (n > tr->idx_cap) {
        uint32_t *p = tg__realloc(tr->idx, n * sizeof *p);
        if (!p) return tg__err(err, TG_ERR_NOMEM, "train: out of memory for %zu indices", n);
        tr->idx = p;
        tr->idx_cap = n;
    }
    size_t rem = n % tr->batch;
    if (rem && tr->rest.rows != rem &&
        (rc = tg_batch_graph_build(&tr->rest, tr->ps, &tr->m, tr->loss, rem, err)))
        return rc;
    for (size_t i = 0; i < n; i++) tr->idx[i] = (uint32_t)i;
    if (r) {
        tr->rng = *r; /* the position of this epoch until it ends */
        tg_rng_shuffle(r, tr->idx, n);
    }
    tg_params_zero_grad(tr->ps);
    tr->epoch++;
    tr->in_epoch = true;
    tr->step = (int64_t)skip;
    tr->sum = tr->resume_sum;
    tr->resume_step = 0;
    tr->resume_sum = 0;
    size_t done = skip * tr->batch < n ? skip * tr->batch : n;
    for (size_t k = skip + 1; done < n; k++) {
        if ((k - 1) % TG_SNAPSHOT_STEPS == 0 && (rc = tg_optim_snapshot(tr->opt)))
            return tg__err(err, rc, "train: out of memory for a copy of the parameters");
        tg_batch_graph *g = n - done >= tr->batch ? &tr->full : &tr->rest;
        int bad;
        if ((rc = step(tr, g, ds, tr->idx + done, &tr->sum, &bad, err))) return rc;
        if (bad)
            return diverged(tr, ds, k, bad,
                            bad == STEP_BAD_UPDATE ? "the update made a parameter NaN or infinite"
                            : isnan(tg_value_scalar(g->cost)) ? "the loss is NaN"
                                                              : "the loss is inf",
                            err);
        done += g->rows;
        tr->step = (int64_t)k;
        if (progress) progress(ctx, done, n);
        if (tr->on_step && (rc = tr->on_step(tr->on_step_ctx, tr, (int64_t)k)))
            return tg__err(err, rc, "epoch %d, step %zu: stopped by the step callback",
                           tr->epoch, k);
    }
    tr->in_epoch = false;
    if (r) tr->rng = *r; /* the next epoch's */
    if (mean_loss) *mean_loss = tr->sum / (double)n;
    return TG_OK;
}

/* The index of the largest of k values of dtype dt at row. */
static int64_t argmax(const void *row, int64_t k, tg_dtype dt) {
    int64_t best = 0;
    if (dt == TG_F64) {
        const double *v = row;
        for (int64_t j = 1; j < k; j++) best = v[j] > v[best] ? j : best;
    } else {
        const float *v = row;
        for (int64_t j = 1; j < k; j++) best = v[j] > v[best] ? j : best;
    }
    return best;
}

int tg_evaluate(tg_params *ps, const tg_mlp *m, tg_loss loss, const tg_dataset *ds,
                double *accuracy, double *mean_loss, int64_t *confusion, tg_error *err) {
    tg__err_clear(err);
    if (!ps || !m) return tg__err(err, TG_ERR_NULL, "evaluate: argument is NULL");
    int rc = tg_mlp_check_data(m, ds, err);
    if (rc) return rc;
    /* A NaN weight would make every output NaN and every argmax 0: an
     * accuracy that means nothing. One pass over the store. */
    tg_error fe;
    if ((rc = tg_params_check_finite(ps, &fe)))
        return tg__err(err, rc, "evaluate: %s", fe.message);
    size_t n = tg_dataset_size(ds);
    if (n == 0) return tg__err(err, TG_ERR_ARG, "evaluate: the dataset is empty");
    int64_t out = m->sizes[m->nlayers];
    if (confusion) memset(confusion, 0, (size_t)(out * out) * sizeof *confusion);
    size_t chunk = n < EVAL_CHUNK ? n : EVAL_CHUNK;
    tg_batch_graph full = {0}, rest = {0};
    uint32_t idx[EVAL_CHUNK];
    const int32_t *labels = tg_dataset_labels(ds);
    tg_dtype dt = tg_params_dtype(ps);
    size_t es = dt == TG_F64 ? 8 : 4, correct = 0;
    double sum = 0;
    rc = tg_batch_graph_build(&full, ps, m, loss, chunk, err);
    for (size_t done = 0; !rc && done < n;) {
        tg_batch_graph *g = &full;
        if (n - done < chunk) {
            if (!rest.tape) rc = tg_batch_graph_build(&rest, ps, m, loss, n - done, err);
            if (rc) break;
            g = &rest;
        }
        for (size_t i = 0; i < g->rows; i++) idx[i] = (uint32_t)(done + i);
        rc = tg_dataset_gather(ds, idx, g->rows, dt, tg_value(g->x), tg_value(g->y), out);
        if (rc) {
            tg__err(err, rc, "evaluate: a chunk could not be gathered");
            break;
        }
        if (tg_forward(g->tape)) {
            rc = tg__err(err, tg_status(g->tape), "evaluate: %s", tg_status_message(g->tape));
            break;
        }
        double cost = tg_value_scalar(g->cost);
        if (!isfinite(cost)) {
            rc = tg__err(err, TG_ERR_NUMERIC,
                         "evaluate: the cost of samples %zu to %zu is %s (the outputs overflow)",
                         done, done + g->rows - 1, isnan(cost) ? "NaN" : "inf");
            break;
        }
        const char *o = tg_value(g->out);
        for (size_t i = 0; i < g->rows; i++) {
            int64_t p = argmax(o + i * (size_t)out * es, out, dt);
            int32_t y = labels[done + i];
            correct += p == y;
            if (confusion) confusion[y * out + p]++;
        }
        sum += cost * (double)g->rows;
        done += g->rows;
    }
    tg_batch_graph_free(&full);
    tg_batch_graph_free(&rest);
    if (rc) return rc;
    if (accuracy) *accuracy = (double)correct / (double)n;
    if (mean_loss) *mean_loss = sum / (double)n;
    return TG_OK;
}
