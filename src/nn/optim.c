/*
 * Optimisers: one fused loop per step over the store's flat buffers.
 * The kernels are written once over a type T; the file includes itself once
 * per dtype (as ops/ do). With weight decay, the L2 term applies to weights
 * (parameters of 2+ dimensions) only, so the loop runs per parameter then.
 * Each kernel clears the gradient it has read, in the same pass, so that the
 * next backward needs no separate zeroing pass over the store.
 *
 * A step that makes a value NaN or infinite is reported (TG_ERR_NUMERIC):
 * each kernel checks its new values in the same pass, for free. It is not
 * undone: that would need the old values, and keeping them costs one more
 * store stream per step, 10-15% of a small network's step (measured on
 * 784-100-10, batch 10). A copy taken now and then (tg_optim_snapshot)
 * costs next to nothing per step instead; a trainer rolls back to it and
 * replays the few steps since (train.c).
 */
#ifndef T
#include "nn_internal.h"

#include <tgmath.h> /* sqrt of a float stays a float in the kernels */
#include <string.h>

#include "dtypes.h"

struct tg_optim {
    tg_params *ps;
    tg_optim_config cfg;
    int64_t size; /* the store's size when created */
    int64_t t;    /* steps taken */
    void *m, *v;  /* state: velocity (momentum), moments (Adam) */
    size_t bytes; /* of each buffer */
    /* tg_optim_snapshot: values, moments and step count; allocated by the
     * first snapshot. */
    void *snap_w, *snap_m, *snap_v;
    int64_t snap_t;
    bool snapped;
};

static const char *const opt_names[] = {"sgd", "momentum", "adam"};

const char *tg_optimizer_name(tg_optimizer kind) {
    return (unsigned)kind < sizeof opt_names / sizeof *opt_names ? opt_names[kind] : "?";
}

int tg_optimizer_parse(const char *name) {
    for (int i = 0; name && i < (int)(sizeof opt_names / sizeof *opt_names); i++)
        if (!strcmp(name, opt_names[i])) return i;
    return -1;
}

tg_optim_config tg_optim_defaults(tg_optimizer kind) {
    tg_optim_config c = {kind, 0.1, 0.9, 0.9, 0.999, 1e-8, 0.0};
    if (kind == TG_OPT_ADAM) c.lr = 1e-3;
    return c;
}

static bool in01(double x) { return x >= 0 && x < 1; }

tg_optim *tg_optim_new(tg_params *ps, const tg_optim_config *cfg, tg_error *err) {
    tg__err_clear(err);
    if (!ps || !cfg) {
        tg__err(err, TG_ERR_NULL, "optim: %s is NULL", ps ? "the config" : "the store");
        return NULL;
    }
    const tg_optim_config *c = cfg;
    const char *bad = (unsigned)c->kind > TG_OPT_ADAM        ? "unknown optimiser"
                      : !(c->lr > 0 && isfinite(c->lr))      ? "lr must be > 0"
                      : !(c->weight_decay >= 0 && isfinite(c->weight_decay))
                          ? "weight_decay must be >= 0"
                      : c->kind == TG_OPT_MOMENTUM && !in01(c->momentum)
                          ? "momentum must be in [0, 1)"
                      : c->kind == TG_OPT_ADAM && (!in01(c->beta1) || !in01(c->beta2))
                          ? "beta1 and beta2 must be in [0, 1)"
                      : c->kind == TG_OPT_ADAM && !(c->eps > 0 && isfinite(c->eps))
                          ? "eps must be > 0"
                      : tg_params_size(ps) == 0 ? "the store holds no parameters"
                                                : NULL;
    if (bad) {
        tg__err(err, TG_ERR_ARG, "optim %s: %s", tg_optimizer_name(c->kind), bad);
        return NULL;
    }
    tg_optim *o = tg__calloc(1, sizeof *o);
    size_t bytes = (size_t)tg_params_size(ps) * (tg_params_dtype(ps) == TG_F64 ? 8 : 4);
    int nstate = c->kind == TG_OPT_ADAM ? 2 : c->kind == TG_OPT_MOMENTUM ? 1 : 0;
    if (o && nstate >= 1) o->m = tg__calloc(1, bytes);
    if (o && nstate >= 2) o->v = tg__calloc(1, bytes);
    if (!o || (nstate >= 1 && !o->m) || (nstate >= 2 && !o->v)) {
        tg_optim_free(o);
        tg__err(err, TG_ERR_NOMEM, "optim: out of memory for %zu bytes of state", bytes);
        return NULL;
    }
    o->ps = ps;
    o->cfg = *c;
    o->size = tg_params_size(ps);
    o->bytes = bytes;
    return o;
}

void tg_optim_free(tg_optim *o) {
    if (!o) return;
    tg__free(o->m);
    tg__free(o->v);
    tg__free(o->snap_w);
    tg__free(o->snap_m);
    tg__free(o->snap_v);
    tg__free(o);
}

int tg_optim_set_lr(tg_optim *o, double lr) {
    if (!o) return TG_ERR_NULL;
    if (!(lr > 0 && isfinite(lr))) return TG_ERR_ARG;
    o->cfg.lr = lr;
    return TG_OK;
}

int64_t tg_optim_steps(const tg_optim *o) { return o ? o->t : 0; }

double tg_optim_lr(const tg_optim *o) { return o ? o->cfg.lr : 0; }

double tg_optim_weight_decay(const tg_optim *o) { return o ? o->cfg.weight_decay : 0; }

const char *tg_optim_blame(char *buf, size_t len, const tg_optim *o) {
    double lr = tg_optim_lr(o), wd = tg_optim_weight_decay(o);
    if (wd > 0)
        snprintf(buf, len, "the learning rate %g or the weight decay %g", lr, wd);
    else
        snprintf(buf, len, "the learning rate %g", lr);
    return buf;
}

/* Copies the values and the state between the store and the snapshot. */
static void copy_state(tg_optim *o, bool save) {
    void *bufs[3][2] = {{tg_params_data(o->ps), o->snap_w}, {o->m, o->snap_m}, {o->v, o->snap_v}};
    for (int k = 0; k < 3; k++)
        if (bufs[k][0]) {
            if (save)
                memcpy(bufs[k][1], bufs[k][0], o->bytes);
            else
                memcpy(bufs[k][0], bufs[k][1], o->bytes);
        }
    if (save)
        o->snap_t = o->t;
    else
        o->t = o->snap_t;
}

int tg_optim_snapshot(tg_optim *o) {
    if (!o) return TG_ERR_NULL;
    if (tg_params_size(o->ps) != o->size) return TG_ERR_STATE;
    if (!o->snap_w) {
        void *w = tg__malloc(o->bytes), *m = o->m ? tg__malloc(o->bytes) : NULL,
             *v = o->v ? tg__malloc(o->bytes) : NULL;
        if (!w || (o->m && !m) || (o->v && !v)) {
            tg__free(w);
            tg__free(m);
            tg__free(v);
            return TG_ERR_NOMEM;
        }
        o->snap_w = w;
        o->snap_m = m;
        o->snap_v = v;
    }
    copy_state(o, true);
    o->snapped = true;
    return TG_OK;
}

int tg_optim_rollback(tg_optim *o) {
    if (!o) return TG_ERR_NULL;
    if (!o->snapped || tg_params_size(o->ps) != o->size) return TG_ERR_STATE;
    copy_state(o, false);
    return TG_OK;
}

void tg__optim_state_get(const tg_optim *o, tg__optim_state *s) {
    *s = (tg__optim_state){o->ps, o->cfg, o->size, o->t, o->snap_t, o->m, o->v, NULL, NULL, NULL};
    if (o->snapped) {
        s->snap_w = o->snap_w;
        s->snap_m = o->snap_m;
        s->snap_v = o->snap_v;
    }
}

int tg__optim_state_set(tg_optim *o, const tg__optim_state *s) {
    if (s->snap_w && !o->snap_w) {
        bool snapped = o->snapped;
        if (tg_optim_snapshot(o)) return TG_ERR_NOMEM; /* allocates the copy */
        o->snapped = snapped;
    }
    void *to[5] = {o->m, o->v, o->snap_w, o->snap_m, o->snap_v};
    const void *from[5] = {s->m, s->v, s->snap_w, s->snap_m, s->snap_v};
    for (int k = 0; k < 5; k++)
        if (to[k] && from[k]) memcpy(to[k], from[k], o->bytes);
    o->cfg.lr = s->cfg.lr;
    o->t = s->t;
    o->snap_t = s->snap_t;
    o->snapped = s->snap_w != NULL;
    return TG_OK;
}

/* Updates elements [from, to) of the flat buffers with decay wd; nonzero
 * when some new value is not finite (it is written all the same). */
static int update(tg_optim *o, int64_t from, int64_t to, double wd, double c1, double c2) {
    bool f64 = tg_params_dtype(o->ps) == TG_F64;
    size_t es = f64 ? 8 : 4, off = (size_t)from * es, n = (size_t)(to - from);
    char *w = (char *)tg_params_data(o->ps) + off;
    char *g = (char *)tg_params_grads(o->ps) + off;
    char *m = o->m ? (char *)o->m + off : NULL, *v = o->v ? (char *)o->v + off : NULL;
    const tg_optim_config *c = &o->cfg;
    switch (c->kind) {
    case TG_OPT_SGD: return (f64 ? sgd_f64 : sgd_f32)(n, w, g, c->lr, wd);
    case TG_OPT_MOMENTUM:
        return (f64 ? momentum_f64 : momentum_f32)(n, w, g, m, c->lr, wd, c->momentum);
    case TG_OPT_ADAM:
        return (f64 ? adam_f64 : adam_f32)(n, w, g, m, v, c->lr, wd, c->beta1, c->beta2,
                                           c->eps, c1, c2);
    }
    return 0;
}

int tg_optim_step(tg_optim *o) {
    if (!o) return TG_ERR_NULL;
    if (tg_params_size(o->ps) != o->size) return TG_ERR_STATE;
    o->t++;
    /* Adam's bias corrections, as reciprocals: 1/(1 - beta^t). */
    double c1 = 1, c2 = 1;
    if (o->cfg.kind == TG_OPT_ADAM) {
        c1 = 1 / (1 - pow(o->cfg.beta1, (double)o->t));
        c2 = 1 / (1 - pow(o->cfg.beta2, (double)o->t));
    }
    double wd = o->cfg.weight_decay;
    if (wd == 0) return update(o, 0, o->size, 0, c1, c2) ? TG_ERR_NUMERIC : TG_OK;
    /* Decay the weights, not the biases: one run per parameter. Padding
     * between parameters stays 0 under every rule (its gradient is 0). */
    int n = tg_params_count(o->ps);
    char *base = tg_params_data(o->ps);
    size_t es = tg_params_dtype(o->ps) == TG_F64 ? 8 : 4;
    int bad = 0;
    for (int i = 0; i < n; i++) {
        int64_t from = (int64_t)(((char *)tg_params_value(o->ps, i) - base) / (ptrdiff_t)es);
        int64_t to = from + tg_params_numel(o->ps, i);
        bad |= update(o, from, to, tg_params_shape(o->ps, i, NULL) >= 2 ? wd : 0, c1, c2);
    }
    return bad ? TG_ERR_NUMERIC : TG_OK;
}

#else /* kernel pass, once per dtype */

/* Each kernel returns nonzero when some new value is NaN or infinite. x - x
 * is +0 for a finite x and NaN otherwise, so OR-ing its bits into a flag
 * tells, and vectorises for both dtypes at no measurable cost (a select
 * keeping the old values would cost a third of the loop). */
#if TG_PASS_F32
typedef uint32_t S(bits);
#else
typedef uint64_t S(bits);
#endif
static inline S(bits) S(nonfinite)(T x) {
    T t = x - x;
    S(bits) b;
    memcpy(&b, &t, sizeof b);
    return b;
}

static int S(sgd)(size_t n, void *vw, void *vg, double lr_, double wd_) {
    T *w = vw, *g = vg, lr = (T)lr_, wd = (T)wd_;
    S(bits) bad = 0;
    for (size_t i = 0; i < n; i++) {
        T x = w[i] - lr * (g[i] + wd * w[i]);
        w[i] = x;
        g[i] = 0;
        bad |= S(nonfinite)(x);
    }
    return bad != 0;
}

static int S(momentum)(size_t n, void *vw, void *vg, void *vv, double lr_, double wd_,
                       double mu_) {
    T *w = vw, *g = vg, *v = vv, lr = (T)lr_, wd = (T)wd_, mu = (T)mu_;
    S(bits) bad = 0;
    for (size_t i = 0; i < n; i++) {
        v[i] = mu * v[i] - lr * (g[i] + wd * w[i]);
        T x = w[i] + v[i];
        w[i] = x;
        g[i] = 0;
        bad |= S(nonfinite)(x);
    }
    return bad != 0;
}

/* Adam's sqrt vectorises because the library is built with -fno-math-errno
 * (errno is never read here); IEEE results are unchanged. The new value and
 * the second moment are checked: a NaN or inf gradient reaches the value
 * through m, but a finite one with |g| > 1e19 in float32 overflows v alone,
 * and the weight, divided by sqrt(inf), would never move again. */
static int S(adam)(size_t n, void *vw, void *vg, void *vm, void *vv, double lr_, double wd_,
                   double b1_, double b2_, double eps_, double c1_, double c2_) {
    T *w = vw, *m = vm, *v = vv, *g = vg;
    T lr = (T)lr_, wd = (T)wd_, b1 = (T)b1_, b2 = (T)b2_, eps = (T)eps_, c1 = (T)c1_,
      c2 = (T)c2_, one = 1;
    S(bits) bad = 0;
    for (size_t i = 0; i < n; i++) {
        T gi = g[i] + wd * w[i];
        T mi = b1 * m[i] + (one - b1) * gi, vi = b2 * v[i] + (one - b2) * gi * gi;
        T x = w[i] - lr * (mi * c1) / (sqrt(vi * c2) + eps);
        m[i] = mi;
        v[i] = vi;
        w[i] = x;
        g[i] = 0;
        bad |= S(nonfinite)(x) | S(nonfinite)(vi);
    }
    return bad != 0;
}

#endif
