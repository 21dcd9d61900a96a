/* An MLP in a checkpoint: the description saved in the meta text beside its
 * parameters ("layers=784,100,10 activation=sigmoid output=sigmoid
 * loss=mse"), written by tg_mlp_describe and read back by tg_mlp_read. */
#include "nn_internal.h"

#include <stdio.h>
#include <string.h>

int tg_mlp_describe(const tg_mlp *m, tg_loss loss, char *buf, size_t len) {
    char sizes[256];
    if (!m || m->nlayers < 1 || m->nlayers > TG_MLP_MAX_LAYERS) {
        if (buf && len) buf[0] = '\0';
        return -1;
    }
    tg_mlp_format_sizes(m, sizes, sizeof sizes);
    return snprintf(buf, len, "layers=%s activation=%s output=%s loss=%s", sizes,
                    tg_activation_name(m->act[0]), tg_activation_name(m->act[m->nlayers - 1]),
                    tg_loss_name(loss));
}

/* The value of key in meta text "k=v k=v", copied into out; 0 if absent. */
static int meta_get(const char *meta, const char *key, char *out, size_t len) {
    size_t kl = strlen(key);
    for (const char *p = meta; *p;) {
        p += strspn(p, " \t\n");
        size_t tl = strcspn(p, " \t\n");
        if (tl > kl && !strncmp(p, key, kl) && p[kl] == '=') {
            size_t vl = tl - kl - 1 < len - 1 ? tl - kl - 1 : len - 1;
            memcpy(out, p + kl + 1, vl);
            out[vl] = '\0';
            return 1;
        }
        p += tl;
    }
    return 0;
}

tg_params *tg_mlp_read(const char *path, tg_mlp *m, tg_loss *loss, tg_error *err) {
    if (!m || !loss) {
        tg__err(err, TG_ERR_NULL, "tg_mlp_read: %s is NULL", m ? "loss" : "m");
        return NULL;
    }
    tg_params *ps = tg_checkpoint_read(path, err);
    if (!ps) return NULL;
    /* What the meta text leaves out has the defaults of tapegrad train:
     * sigmoid layers, the output's like the hidden ones, the quadratic cost. */
    char act[32] = "sigmoid", out[32] = "", cost[32] = "mse";
    const char *meta = tg_params_meta(ps);
    meta_get(meta, "activation", act, sizeof act);
    meta_get(meta, "loss", cost, sizeof cost);
    if (!meta_get(meta, "output", out, sizeof out)) strcpy(out, act);
    int a = tg_activation_parse(act), oa = tg_activation_parse(out), lo = tg_loss_parse(cost);
    tg_mlp got;
    tg_error e;
    if (a < 0 || oa < 0 || lo < 0) {
        tg__err(err, TG_ERR_FORMAT, "%s: unknown %s '%s' in its description '%s'", path,
                a < 0 ? "activation" : oa < 0 ? "output activation" : "loss",
                a < 0 ? act : oa < 0 ? out : cost, meta);
    } else if (tg_mlp_from_params(&got, ps, &e)) {
        tg__err(err, e.code, "%s: %s", path, e.message);
    } else {
        for (int l = 0; l < got.nlayers; l++)
            got.act[l] = (tg_activation)(l + 1 == got.nlayers ? oa : a);
        *m = got;
        *loss = (tg_loss)lo;
        return ps;
    }
    tg_params_free(ps);
    return NULL;
}
