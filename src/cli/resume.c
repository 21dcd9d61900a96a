/*
 * What a training checkpoint of `tapegrad train` keeps of its options, as
 * text: one "--OPTION VALUE" line per setting that shapes the training,
 * read back through the option parser itself; and the check that a resumed
 * command line contradicts none of them.
 */
#define _POSIX_C_SOURCE 200809L
#include <inttypes.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "train_opts.h"

typedef enum kind { K_STR, K_LONG, K_DOUBLE, K_SEED, K_ACT, K_LOSS, K_OPT, K_DTYPE, K_INIT } kind;

/* Every setting a checkpoint keeps. `may_change`: the command line of a
 * resumed training may give another value (more epochs, checkpoints more
 * or less often, the data at another path: the data's fingerprint must
 * agree); the others must agree with the checkpoint. `csv`: kept
 * only for CSV data (the options refused for a directory). `preset`: set
 * by --preset (the others are the data's). */
static const struct setting {
    const char *opt;
    size_t off;
    kind k;
    bool may_change, csv, preset;
} settings[] = {
    {"--data", offsetof(train_opts, data), K_STR, true, false, false},
    {"--test", offsetof(train_opts, test), K_STR, true, false, false},
    {"--label-col", offsetof(train_opts, label_col), K_LONG, false, true, false},
    {"--scale", offsetof(train_opts, scale), K_DOUBLE, false, true, false},
    {"--layers", offsetof(train_opts, layers), K_STR, false, false, true},
    {"--activation", offsetof(train_opts, act), K_ACT, false, false, true},
    {"--output", offsetof(train_opts, output), K_ACT, false, false, true},
    {"--loss", offsetof(train_opts, loss), K_LOSS, false, false, true},
    {"--optimizer", offsetof(train_opts, optimizer), K_OPT, false, false, true},
    {"--lr", offsetof(train_opts, lr), K_DOUBLE, false, false, true},
    {"--lr-decay", offsetof(train_opts, lr_decay), K_DOUBLE, false, false, true},
    {"--momentum", offsetof(train_opts, momentum), K_DOUBLE, false, false, true},
    {"--weight-decay", offsetof(train_opts, weight_decay), K_DOUBLE, false, false, true},
    {"--init", offsetof(train_opts, winit), K_INIT, false, false, true},
    {"--batch", offsetof(train_opts, batch), K_LONG, false, false, true},
    {"--limit", offsetof(train_opts, limit), K_LONG, false, false, false},
    {"--valid", offsetof(train_opts, valid), K_LONG, false, false, false},
    {"--seed", offsetof(train_opts, seed), K_SEED, false, false, true},
    {"--dtype", offsetof(train_opts, dtype), K_DTYPE, false, false, true},
    {"--epochs", offsetof(train_opts, epochs), K_LONG, true, false, true},
    {"--checkpoint-every", offsetof(train_opts, checkpoint_every), K_LONG, true, false, false},
};

_Static_assert(sizeof settings / sizeof *settings == TG_CLI_SETTINGS, "TG_CLI_SETTINGS");

int tg_cli_setting_of(const char *opt) {
    if (!strcmp(opt, "--optimiser")) opt = "--optimizer";
    for (int s = 0; s < TG_CLI_SETTINGS; s++)
        if (!strcmp(opt, settings[s].opt)) return s;
    return -1;
}

#define FIELD(o, s, type) (*(const type *)((const char *)(o) + settings[s].off))

/* Setting s of o as the option's value into buf; false when o leaves it
 * unset (its default follows from other settings, or it is not given). */
static bool value_text(const train_opts *o, int s, char *buf, size_t cap) {
    const struct setting *d = &settings[s];
    if (d->csv && !o->csv_options) return false;
    int v = d->k == K_ACT || d->k == K_LOSS || d->k == K_OPT || d->k == K_INIT ? FIELD(o, s, int) : 0;
    switch (d->k) {
    case K_STR: {
        const char *str = FIELD(o, s, char *);
        if (!str) return false;
        snprintf(buf, cap, "%s", str);
        return true;
    }
    case K_LONG:
        if (d->off == offsetof(train_opts, limit) && !o->limit) return false;
        if (d->off == offsetof(train_opts, checkpoint_every) && !o->checkpoint_every) return false;
        snprintf(buf, cap, "%ld", FIELD(o, s, long));
        return true;
    case K_DOUBLE: snprintf(buf, cap, "%.17g", FIELD(o, s, double)); return true;
    case K_SEED: snprintf(buf, cap, "%llu", FIELD(o, s, unsigned long long)); return true;
    case K_ACT:
        if (v < 0) return false;
        snprintf(buf, cap, "%s", tg_activation_name((tg_activation)v));
        return true;
    case K_LOSS: snprintf(buf, cap, "%s", tg_loss_name((tg_loss)v)); return true;
    case K_OPT: snprintf(buf, cap, "%s", tg_optimizer_name((tg_optimizer)v)); return true;
    case K_DTYPE: snprintf(buf, cap, "%s", o->dtype == TG_F64 ? "f64" : "f32"); return true;
    case K_INIT:
        if (o->winit < 0) return false;
        if (o->binit < 0)
            snprintf(buf, cap, "%s", tg_init_name((tg_init)o->winit));
        else
            snprintf(buf, cap, "%s,%s", tg_init_name((tg_init)o->winit),
                     tg_init_name((tg_init)o->binit));
        return true;
    }
    return false;
}

/* Whether a and b agree on setting s. */
static bool same(const train_opts *a, const train_opts *b, int s) {
    switch (settings[s].k) {
    case K_STR: {
        const char *x = FIELD(a, s, char *), *y = FIELD(b, s, char *);
        return x == y || (x && y && !strcmp(x, y));
    }
    case K_LONG: return FIELD(a, s, long) == FIELD(b, s, long);
    case K_DOUBLE: return FIELD(a, s, double) == FIELD(b, s, double);
    case K_SEED: return FIELD(a, s, unsigned long long) == FIELD(b, s, unsigned long long);
    case K_DTYPE: return a->dtype == b->dtype;
    case K_INIT: return a->winit == b->winit && a->binit == b->binit;
    default: return FIELD(a, s, int) == FIELD(b, s, int);
    }
}

bool tg_cli_settings_text(const train_opts *o, uint64_t fingerprint, char *buf, size_t cap) {
    size_t len = 0;
    char v[4096];
    for (int s = 0; s < TG_CLI_SETTINGS; s++) {
        if (!value_text(o, s, v, sizeof v)) continue;
        if (strchr(v, '\n')) return false;
        int k = snprintf(buf + len, cap - len, "%s %s\n", settings[s].opt, v);
        if (k < 0 || (size_t)k >= cap - len) return false;
        len += (size_t)k;
    }
    int k = snprintf(buf + len, cap - len, "fingerprint %016" PRIx64 "\n", fingerprint);
    return k > 0 && (size_t)k < cap - len;
}

static uint64_t fnv(uint64_t h, const void *p, size_t n) {
    const unsigned char *b = p;
    for (size_t i = 0; i < n; i++) h = (h ^ b[i]) * 0x100000001b3u;
    return h;
}

uint64_t tg_cli_data_fingerprint(const tg_dataset *const *sets, int count) {
    uint64_t h = 0xcbf29ce484222325u;
    for (int i = 0; i < count; i++) {
        const tg_dataset *ds = sets[i];
        uint64_t n = ds ? tg_dataset_size(ds) : 0, d = ds ? (uint64_t)tg_dataset_features(ds) : 0;
        h = fnv(h, &n, sizeof n);
        h = fnv(h, &d, sizeof d);
        if (!n) continue;
        h = fnv(h, tg_dataset_x(ds), (size_t)(n * d) * sizeof(float));
        h = fnv(h, tg_dataset_labels(ds), (size_t)n * sizeof(int32_t));
    }
    return h;
}

/* Reads the settings text into o; false on a line the parser refuses (it
 * has printed why) or that is not a setting. */
static bool read_text(train_opts *o, const char *text, uint64_t *fingerprint, char *copy) {
    strcpy(copy, text);
    bool have_fp = false;
    for (char *line = strtok(copy, "\n"); line; line = strtok(NULL, "\n")) {
        char *sp = strchr(line, ' ');
        if (!sp) return false;
        *sp = '\0';
        if (!strcmp(line, "fingerprint")) {
            char *end;
            *fingerprint = strtoull(sp + 1, &end, 16);
            have_fp = !*end;
            continue;
        }
        char *argv[2] = {line, sp + 1};
        int i = 0;
        if (tg_cli_setting_of(line) < 0 || tg_cli_train_option(o, 2, argv, &i)) return false;
    }
    return have_fp;
}

int tg_cli_resume_opts(train_opts *o, const train_opts *base, const train_opts *cmd,
                       const bool *given, const char *preset, const char *text,
                       uint64_t *fingerprint, char **strings) {
    train_opts f = *base;
    /* The parsed strings point into this copy, the caller's to free. */
    char *copy = *strings = malloc(strlen(text) + 1);
    if (!copy) {
        fprintf(stderr, "tapegrad train: out of memory\n");
        return 1;
    }
    if (!read_text(&f, text, fingerprint, copy)) {
        fprintf(stderr, "tapegrad train: --resume %s: its settings are not those of tapegrad "
                "train (a checkpoint of another program?)\n", cmd->resume);
        return 1;
    }
    int status = 0; /* every contradiction is named, then 2 */
    for (int s = 0; s < TG_CLI_SETTINGS; s++) {
        bool set = given[s] || (preset && settings[s].preset);
        if (settings[s].may_change || !set || same(cmd, &f, s)) continue;
        char mine[4096] = "(unset)", theirs[4096] = "(unset: its default)";
        value_text(cmd, s, mine, sizeof mine);
        value_text(&f, s, theirs, sizeof theirs);
        if (given[s])
            fprintf(stderr, "tapegrad train: --resume %s: %s %s contradicts the checkpoint's "
                    "%s %s (leave it out to carry on, or start a new training)\n", cmd->resume,
                    settings[s].opt, mine, settings[s].opt, theirs);
        else
            fprintf(stderr, "tapegrad train: --resume %s: --preset %s sets %s %s, which "
                    "contradicts the checkpoint's %s %s (leave the preset out)\n", cmd->resume,
                    preset, settings[s].opt, mine, settings[s].opt, theirs);
        status = 2;
    }
    if (status) return status;
    /* What may change: files, threads, and the settings marked so. */
    f.save = cmd->save;
    f.log = cmd->log;
    f.plot = cmd->plot;
    f.threads = cmd->threads;
    f.resume = cmd->resume;
    f.checkpoint = cmd->checkpoint ? cmd->checkpoint : cmd->resume;
    for (int s = 0; s < TG_CLI_SETTINGS; s++)
        if (settings[s].may_change && given[s])
            memcpy((char *)&f + settings[s].off, (const char *)cmd + settings[s].off,
                   settings[s].k == K_STR ? sizeof(const char *) : sizeof(long));
    *o = f;
    return 0;
}
