/*
 * Training checkpoints: a store, its optimiser's whole state, a trainer's
 * position and the caller's settings text, as the training section of a
 * version-2 checkpoint (docs/formats.md). The parameters, the file's
 * integrity and its atomic replacement are checkpoint.c's; this file
 * encodes and checks the section, and puts it back.
 */
#include "le.h"
#include "nn_internal.h"

#include <math.h>

#define FIXED_BYTES 140
#define SETTINGS_MAX 65535
#define FLAG_SNAPSHOT 1u

struct tg_training {
    tg_params *ps;
    tg__optim_state st; /* pointers into block */
    tg_train_position pos;
    char *settings;
    unsigned char *block; /* the state buffers in host order, behind st's pointers */
};

/* Moment buffers each rule keeps: none, velocity, first and second. */
static int moments_of(tg_optimizer kind) {
    return kind == TG_OPT_ADAM ? 2 : kind == TG_OPT_MOMENTUM ? 1 : 0;
}

static size_t es_of(tg_dtype dt) { return dt == TG_F64 ? 8 : 4; }

static void put_f64(unsigned char *p, double x) {
    uint64_t u;
    memcpy(&u, &x, 8);
    put64(p, u);
}

static double get_f64(const unsigned char *p) {
    uint64_t u = get64(p);
    double x;
    memcpy(&x, &u, 8);
    return x;
}

int tg_training_save(const tg_params *ps, const tg_optim *opt, const tg_train_position *pos,
                     const char *settings, const char *path, tg_error *err) {
    tg__err_clear(err);
    if (!ps || !opt || !pos || !path)
        return tg__err(err, TG_ERR_NULL, "training_save: argument is NULL");
    tg__optim_state st;
    tg__optim_state_get(opt, &st);
    if (st.ps != ps || st.size != tg_params_size(ps))
        return tg__err(err, TG_ERR_STATE, "%s: the optimiser is not over this store, or the "
                       "store gained parameters after it was made", path);
    if (!settings) settings = "";
    size_t slen = strlen(settings);
    if (slen > SETTINGS_MAX)
        return tg__err(err, TG_ERR_ARG, "%s: settings of %zu bytes; at most %d", path, slen,
                       SETTINGS_MAX);
    if (pos->epoch < 0 || pos->step < 0 || !isfinite(pos->loss_sum))
        return tg__err(err, TG_ERR_ARG, "%s: epoch %lld, step %lld, loss sum %g is no position",
                       path, (long long)pos->epoch, (long long)pos->step, pos->loss_sum);
    size_t es = es_of(tg_params_dtype(ps)), n = (size_t)st.size;
    int k = moments_of(st.cfg.kind);
    bool snap = st.snap_w != NULL;
    size_t len = FIXED_BYTES + slen + (size_t)(k + (snap ? 1 + k : 0)) * n * es;
    unsigned char *b = tg__malloc(len);
    if (!b) return tg__err(err, TG_ERR_NOMEM, "%s: out of memory for %zu bytes", path, len);
    put32(b, (uint32_t)st.cfg.kind);
    put32(b + 4, snap ? FLAG_SNAPSHOT : 0);
    const double hyper[6] = {st.cfg.lr, st.cfg.momentum, st.cfg.beta1,
                             st.cfg.beta2, st.cfg.eps, st.cfg.weight_decay};
    for (int i = 0; i < 6; i++) put_f64(b + 8 + 8 * i, hyper[i]);
    put64(b + 56, (uint64_t)st.t);
    put64(b + 64, (uint64_t)st.snap_t);
    put64(b + 72, (uint64_t)st.size);
    put64(b + 80, (uint64_t)pos->epoch);
    put64(b + 88, (uint64_t)pos->step);
    put_f64(b + 96, pos->step ? pos->loss_sum : 0);
    for (int i = 0; i < 4; i++) put64(b + 104 + 8 * i, pos->rng.s[i]);
    put32(b + 136, (uint32_t)slen);
    unsigned char *p = b + FIXED_BYTES;
    memcpy(p, settings, slen);
    p += slen;
    const void *bufs[5] = {st.m, st.v, st.snap_w, st.snap_m, st.snap_v};
    for (int i = 0; i < 5; i++)
        if (bufs[i]) {
            copy_le(p, bufs[i], n, es);
            p += n * es;
        }
    tg__section sec = {TG__TRAIN_TAG, b, len};
    int rc = tg__checkpoint_save(ps, &sec, path, err);
    tg__free(b);
    return rc;
}

void tg_training_free(tg_training *t) {
    if (!t) return;
    tg_params_free(t->ps);
    tg__free(t->settings);
    tg__free(t->block);
    tg__free(t);
}

/* Decodes the section b[0..len) of a store ps into t; TG_OK or
 * TG_ERR_FORMAT / TG_ERR_NOMEM with err naming path. */
static int decode(tg_training *t, const unsigned char *b, size_t len, const char *path,
                  tg_error *err) {
    if (len < FIXED_BYTES)
        return tg__err(err, TG_ERR_FORMAT, "%s: corrupt: a training section of %zu bytes",
                       path, len);
    uint32_t kind = get32(b), flags = get32(b + 4), slen = get32(b + 136);
    tg__optim_state *st = &t->st;
    st->ps = t->ps;
    st->cfg = (tg_optim_config){(tg_optimizer)kind, get_f64(b + 8), get_f64(b + 16),
                                get_f64(b + 24), get_f64(b + 32), get_f64(b + 40),
                                get_f64(b + 48)};
    st->t = (int64_t)get64(b + 56);
    st->snap_t = (int64_t)get64(b + 64);
    st->size = (int64_t)get64(b + 72);
    t->pos.epoch = (int64_t)get64(b + 80);
    t->pos.step = (int64_t)get64(b + 88);
    t->pos.loss_sum = get_f64(b + 96);
    for (int i = 0; i < 4; i++) t->pos.rng.s[i] = get64(b + 104 + 8 * i);
    const char *bad = kind > TG_OPT_ADAM                               ? "unknown optimiser"
                      : flags & ~FLAG_SNAPSHOT                         ? "unknown flags"
                      : !(st->cfg.lr > 0 && isfinite(st->cfg.lr))      ? "learning rate"
                      : st->t < 0 || st->snap_t < 0 || st->snap_t > st->t ? "step count"
                      : st->size != tg_params_size(t->ps)              ? "state size"
                      : t->pos.epoch < 0 || t->pos.epoch >= INT32_MAX || t->pos.step < 0
                          ? "position"
                      : !isfinite(t->pos.loss_sum)                     ? "loss sum"
                      : slen > SETTINGS_MAX || slen > len - FIXED_BYTES ? "settings"
                                                                        : NULL;
    if (!bad && memchr(b + FIXED_BYTES, 0, slen)) bad = "settings";
    int k = moments_of(st->cfg.kind), nbuf = k + (flags & FLAG_SNAPSHOT ? 1 + k : 0);
    size_t es = es_of(tg_params_dtype(t->ps)), n = (size_t)st->size;
    if (!bad && len - FIXED_BYTES - slen != (size_t)nbuf * n * es) bad = "state length";
    if (bad)
        return tg__err(err, TG_ERR_FORMAT, "%s: corrupt training section: %s", path, bad);
    t->settings = tg__malloc((size_t)slen + 1);
    unsigned char *state = nbuf ? tg__malloc((size_t)nbuf * n * es) : NULL;
    if (!t->settings || (nbuf && !state)) {
        tg__free(state);
        return tg__err(err, TG_ERR_NOMEM, "%s: out of memory", path);
    }
    memcpy(t->settings, b + FIXED_BYTES, slen);
    t->settings[slen] = '\0';
    if (nbuf) copy_le(state, b + FIXED_BYTES + slen, (size_t)nbuf * n, es);
    const void **slot[5] = {&st->m, &st->v, &st->snap_w, &st->snap_m, &st->snap_v};
    bool have[5] = {k >= 1, k >= 2, nbuf > k, nbuf > k && k >= 1, nbuf > k && k >= 2};
    unsigned char *p = state;
    for (int i = 0; i < 5; i++) {
        *slot[i] = have[i] ? p : NULL;
        if (have[i]) p += n * es;
    }
    t->block = state;
    return TG_OK;
}

tg_training *tg_training_read(const char *path, tg_error *err) {
    tg__err_clear(err);
    unsigned char *sec = NULL;
    tg_params *ps = tg__checkpoint_read(path, &sec, err);
    if (!ps) return NULL;
    tg_training *t = tg__calloc(1, sizeof *t);
    if (!t) {
        tg_params_free(ps);
        tg__free(sec);
        tg__err(err, TG_ERR_NOMEM, "%s: out of memory", path);
        return NULL;
    }
    t->ps = ps;
    int rc = decode(t, sec + 8, (size_t)get64(sec), path, err);
    tg__free(sec);
    if (rc) {
        tg_training_free(t);
        return NULL;
    }
    return t;
}

const char *tg_training_settings(const tg_training *t) {
    return t && t->settings ? t->settings : "";
}

const tg_params *tg_training_params(const tg_training *t) { return t ? t->ps : NULL; }

tg_optim_config tg_training_optim(const tg_training *t) {
    return t ? t->st.cfg : tg_optim_defaults(TG_OPT_SGD);
}

/* Whether two stores hold the same names and shapes, in order; else err. */
static int same_layout(const tg_params *a, const tg_params *b, tg_error *err) {
    int n = tg_params_count(a);
    if (n != tg_params_count(b))
        return tg__err(err, TG_ERR_SHAPE, "another architecture: %d parameters in the "
                       "checkpoint, %d in the model", n, tg_params_count(b));
    for (int i = 0; i < n; i++) {
        int64_t sa[TG_MAX_DIMS], sb[TG_MAX_DIMS];
        int na = tg_params_shape(a, i, sa), nb = tg_params_shape(b, i, sb);
        bool same = !strcmp(tg_params_name(a, i), tg_params_name(b, i)) && na == nb;
        for (int d = 0; same && d < na; d++) same = sa[d] == sb[d];
        if (!same)
            return tg__err(err, TG_ERR_SHAPE, "another architecture: parameter %d is '%s' in "
                           "the checkpoint, '%s' in the model (or its shape differs)", i,
                           tg_params_name(a, i), tg_params_name(b, i));
    }
    return TG_OK;
}

int tg_training_restore(const tg_training *t, tg_params *ps, tg_optim *opt,
                        tg_train_position *pos, tg_error *err) {
    tg__err_clear(err);
    if (!t || !ps || !opt || !pos)
        return tg__err(err, TG_ERR_NULL, "training_restore: argument is NULL");
    if (tg_params_dtype(ps) != tg_params_dtype(t->ps))
        return tg__err(err, TG_ERR_DTYPE, "the checkpoint holds %s parameters; the model is %s",
                       tg_params_dtype(t->ps) == TG_F64 ? "float64" : "float32",
                       tg_params_dtype(ps) == TG_F64 ? "float64" : "float32");
    int rc = same_layout(t->ps, ps, err);
    if (rc) return rc;
    tg__optim_state cur;
    tg__optim_state_get(opt, &cur);
    if (cur.ps != ps || cur.size != tg_params_size(ps))
        return tg__err(err, TG_ERR_STATE, "training_restore: the optimiser is not over this "
                       "store, or the store gained parameters after it was made");
    const tg_optim_config *a = &t->st.cfg, *b = &cur.cfg;
    if (a->kind != b->kind)
        return tg__err(err, TG_ERR_ARG, "the checkpoint's optimiser is %s; this one is %s",
                       tg_optimizer_name(a->kind), tg_optimizer_name(b->kind));
    const struct {
        const char *name;
        double file, here;
        bool used;
    } hyper[] = {{"momentum", a->momentum, b->momentum, a->kind == TG_OPT_MOMENTUM},
                 {"beta1", a->beta1, b->beta1, a->kind == TG_OPT_ADAM},
                 {"beta2", a->beta2, b->beta2, a->kind == TG_OPT_ADAM},
                 {"eps", a->eps, b->eps, a->kind == TG_OPT_ADAM},
                 {"weight_decay", a->weight_decay, b->weight_decay, true}};
    for (size_t i = 0; i < sizeof hyper / sizeof *hyper; i++)
        if (hyper[i].used && hyper[i].file != hyper[i].here)
            return tg__err(err, TG_ERR_ARG, "the checkpoint's %s is %.17g; this optimiser's "
                           "is %.17g", hyper[i].name, hyper[i].file, hyper[i].here);
    if (tg__optim_state_set(opt, &t->st))
        return tg__err(err, TG_ERR_NOMEM, "training_restore: out of memory for the snapshot");
    tg_params_copy(ps, t->ps, NULL); /* cannot fail: checked above */
    *pos = t->pos;
    return TG_OK;
}
