/*
 * Layers and MLPs as ordinary graphs of public ops: a dense layer is
 * act(tg_add(tg_matmul(x, W), b)), nothing more, so its gradients are the
 * ops' backward rules (docs/math.md maps them to BP1-BP4).
 */
#include "nn_internal.h"

#include <errno.h>
#include <string.h>

static const char *const act_names[] = {"identity", "sigmoid", "tanh", "relu"};

const char *tg_activation_name(tg_activation act) {
    return (unsigned)act < sizeof act_names / sizeof *act_names ? act_names[act] : "?";
}

int tg_activation_parse(const char *name) {
    for (int i = 0; name && i < (int)(sizeof act_names / sizeof *act_names); i++)
        if (!strcmp(name, act_names[i])) return i;
    if (name && !strcmp(name, "linear")) return TG_ACT_IDENTITY;
    return -1;
}

tg_node *tg_activate(tg_node *x, tg_activation act) {
    switch (act) {
    case TG_ACT_IDENTITY: return x;
    case TG_ACT_SIGMOID: return tg_sigmoid(x);
    case TG_ACT_TANH: return tg_tanh(x);
    case TG_ACT_RELU: return tg_relu(x);
    }
    if (!x) return NULL;
    tg_fail(tg__tape_of(x), TG_ERR_ARG, "activate: unknown activation %d", (int)act);
    return &tg__tape_of(x)->poison;
}

tg_node *tg_dense(tg_node *x, tg_node *W, tg_node *b, tg_activation act) {
    return tg_activate(tg_add(tg_matmul(x, W), b), act);
}

static const char *const loss_names[] = {"mse", "xent"};

const char *tg_loss_name(tg_loss loss) {
    return (unsigned)loss < sizeof loss_names / sizeof *loss_names ? loss_names[loss] : "?";
}

int tg_loss_parse(const char *name) {
    if (!name) return -1;
    if (!strcmp(name, "mse") || !strcmp(name, "quadratic")) return TG_LOSS_MSE;
    if (!strcmp(name, "xent") || !strcmp(name, "softmax_xent") ||
        !strcmp(name, "cross-entropy") || !strcmp(name, "crossentropy"))
        return TG_LOSS_XENT;
    return -1;
}

tg_node *tg_cost(tg_node *a, tg_node *y, tg_loss loss) {
    switch (loss) {
    case TG_LOSS_MSE: return tg_mse(a, y);
    case TG_LOSS_XENT: return tg_cross_entropy(a, tg_labels_from_onehot(y));
    }
    tg_node *first = a ? a : y;
    if (!first) return NULL;
    tg_fail(tg__tape_of(first), TG_ERR_ARG, "cost: unknown loss %d", (int)loss);
    return &tg__tape_of(first)->poison;
}

/* ------------------------------------------------------------------ mlp -- */

static bool valid_act(tg_activation a) { return (unsigned)a <= TG_ACT_RELU; }

int tg_mlp_parse(tg_mlp *m, const char *sizes, tg_activation hidden, tg_activation output,
                 tg_error *err) {
    tg__err_clear(err);
    if (!m || !sizes) return tg__err(err, TG_ERR_NULL, "layers: argument is NULL");
    if (!valid_act(hidden) || !valid_act(output))
        return tg__err(err, TG_ERR_ARG, "layers: unknown activation");
    tg_mlp r = {0};
    int n = 0;
    const char *s = sizes;
    for (;;) {
        if (n > TG_MLP_MAX_LAYERS)
            return tg__err(err, TG_ERR_ARG, "layers '%s': more than %d layers", sizes,
                           TG_MLP_MAX_LAYERS);
        if (*s < '0' || *s > '9')
            return tg__err(err, TG_ERR_ARG, "layers '%s': expected a size at '%s'", sizes, s);
        char *end;
        errno = 0;
        long long v = strtoll(s, &end, 10);
        if (errno || v < 1 || v > (1 << 24))
            return tg__err(err, TG_ERR_ARG, "layers '%s': size %.*s is out of range 1..%d",
                           sizes, (int)(end - s > 20 ? 20 : end - s), s, 1 << 24);
        r.sizes[n++] = v;
        s = end;
        if (!*s) break;
        if (*s != ',' && *s != '-')
            return tg__err(err, TG_ERR_ARG, "layers '%s': unexpected '%c'", sizes, *s);
        s++;
    }
    if (n < 2)
        return tg__err(err, TG_ERR_ARG, "layers '%s': need at least an input and an output size",
                       sizes);
    r.nlayers = n - 1;
    for (int l = 0; l < r.nlayers; l++) r.act[l] = l + 1 == r.nlayers ? output : hidden;
    *m = r;
    return TG_OK;
}

int tg_mlp_format_sizes(const tg_mlp *m, char *buf, size_t len) {
    if (!m) return 0;
    int total = 0;
    for (int l = 0; l <= m->nlayers && l <= TG_MLP_MAX_LAYERS; l++) {
        int k = snprintf(buf && (size_t)total < len ? buf + total : NULL,
                         buf && (size_t)total < len ? len - (size_t)total : 0,
                         l ? ",%lld" : "%lld", (long long)m->sizes[l]);
        total += k;
    }
    if (buf && len && (size_t)total >= len) buf[len - 1] = '\0';
    if (buf && len && total == 0) buf[0] = '\0';
    return total;
}

static void layer_name(char *buf, int l, char what) { sprintf(buf, "layer%d.%c", l + 1, what); }

int tg_mlp_from_params(tg_mlp *m, const tg_params *ps, tg_error *err) {
    tg__err_clear(err);
    if (!m || !ps) return tg__err(err, TG_ERR_NULL, "mlp: argument is NULL");
    int64_t sizes[TG_MLP_MAX_LAYERS + 1];
    int n = 0;
    char name[32];
    for (;; n++) {
        layer_name(name, n, 'W');
        int iw = tg_params_find(ps, name);
        if (iw < 0) break;
        if (n == TG_MLP_MAX_LAYERS)
            return tg__err(err, TG_ERR_FORMAT, "mlp: more than %d layers", TG_MLP_MAX_LAYERS);
        int64_t ws[TG_MAX_DIMS], bs[TG_MAX_DIMS];
        layer_name(name, n, 'b');
        int ib = tg_params_find(ps, name);
        if (tg_params_shape(ps, iw, ws) != 2 || ib < 0 || tg_params_shape(ps, ib, bs) != 1 ||
            bs[0] != ws[1] || (n > 0 && ws[0] != sizes[n]))
            return tg__err(err, TG_ERR_FORMAT,
                           "mlp: layer%d.W and layer%d.b do not form a dense layer after "
                           "the previous one",
                           n + 1, n + 1);
        sizes[n] = ws[0];
        sizes[n + 1] = ws[1];
    }
    if (n == 0) return tg__err(err, TG_ERR_FORMAT, "mlp: no parameter layer1.W");
    if (2 * n != tg_params_count(ps))
        return tg__err(err, TG_ERR_FORMAT, "mlp: %d parameters besides the %d layers",
                       tg_params_count(ps) - 2 * n, n);
    m->nlayers = n;
    for (int l = 0; l <= n; l++) m->sizes[l] = sizes[l];
    return TG_OK;
}

static int check_mlp(const tg_mlp *m, tg_error *err) {
    if (!m) return tg__err(err, TG_ERR_NULL, "mlp: NULL");
    if (m->nlayers < 1 || m->nlayers > TG_MLP_MAX_LAYERS)
        return tg__err(err, TG_ERR_ARG, "mlp: %d layers; 1 to %d allowed", m->nlayers,
                       TG_MLP_MAX_LAYERS);
    for (int l = 0; l <= m->nlayers; l++)
        if (m->sizes[l] < 1 || m->sizes[l] > TG_MAX_NUMEL)
            return tg__err(err, TG_ERR_ARG, "mlp: size %d is %lld", l, (long long)m->sizes[l]);
    for (int l = 0; l < m->nlayers; l++)
        if (!valid_act(m->act[l]))
            return tg__err(err, TG_ERR_ARG, "mlp: layer %d: unknown activation", l + 1);
    return TG_OK;
}

int tg_mlp_init(tg_params *ps, const tg_mlp *m, tg_init winit, tg_init binit, uint64_t seed,
                tg_error *err) {
    tg__err_clear(err);
    int rc = check_mlp(m, err);
    if (rc) return rc;
    if (!ps) return tg__err(err, TG_ERR_NULL, "mlp_init: the store is NULL");
    if (tg_init_name(winit)[0] == '?' || tg_init_name(binit)[0] == '?')
        return tg__err(err, TG_ERR_ARG, "mlp_init: unknown initialiser");
    char name[32];
    for (int l = 0; l < m->nlayers; l++) {
        layer_name(name, l, 'W');
        if (tg_params_find(ps, name) >= 0)
            return tg__err(err, TG_ERR_ARG, "mlp_init: '%s' already exists", name);
        layer_name(name, l, 'b');
        if (tg_params_find(ps, name) >= 0)
            return tg__err(err, TG_ERR_ARG, "mlp_init: '%s' already exists", name);
    }
    /* Stage in a scratch store so that ps is unchanged when an add fails. */
    tg_params *tmp = tg_params_new(tg_params_dtype(ps));
    if (!tmp) return tg__err(err, TG_ERR_NOMEM, "mlp_init: out of memory");
    tg_rng r;
    tg_rng_seed(&r, seed);
    for (int l = 0; l < m->nlayers && !rc; l++) {
        int64_t ws[2] = {m->sizes[l], m->sizes[l + 1]};
        layer_name(name, l, 'W');
        rc = tg_params_add(tmp, name, 2, ws, err);
        if (!rc) rc = tg_params_init(tmp, 2 * l, winit, &r);
        layer_name(name, l, 'b');
        if (!rc) rc = tg_params_add(tmp, name, 1, ws + 1, err);
        if (!rc) rc = tg_params_init(tmp, 2 * l + 1, binit, &r);
    }
    int first = tg_params_count(ps);
    for (int i = 0; i < tg_params_count(tmp) && !rc; i++) {
        int64_t shape[TG_MAX_DIMS];
        int nd = tg_params_shape(tmp, i, shape);
        rc = tg__params_add_data(ps, tg_params_name(tmp, i), nd, shape, tg_params_value(tmp, i),
                                 err);
    }
    tg_params_free(tmp);
    if (rc) tg__params_truncate(ps, first); /* an add ran out of memory half way */
    return rc;
}

tg_node *tg_mlp_forward(tg_node *x, tg_params *ps, const tg_mlp *m) {
    if (!x) return NULL;
    tg_tape *t = tg__tape_of(x);
    if (t->status) return &t->poison;
    tg_error e;
    if (check_mlp(m, &e)) {
        tg_fail(t, e.code, "%s", e.message);
        return &t->poison;
    }
    tg_node *a = x;
    char name[32];
    for (int l = 0; l < m->nlayers; l++) {
        layer_name(name, l, 'W');
        tg_node *W = tg_param(t, ps, name);
        layer_name(name, l, 'b');
        tg_node *b = tg_param(t, ps, name);
        a = tg_dense(a, W, b, m->act[l]);
    }
    return a;
}
