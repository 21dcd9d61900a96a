/* The options of `tapegrad train` (train.c), and what a training checkpoint
 * keeps of them (resume.c). */
#ifndef TG_CLI_TRAIN_OPTS_H
#define TG_CLI_TRAIN_OPTS_H

#include <stdbool.h>
#include <stdint.h>
#include <tapegrad.h>

typedef struct train_opts {
    const char *data, *test, *layers, *save, *log, *plot;
    const char *checkpoint, *resume;
    int act, output; /* output -1: the default for the loss */
    int loss, optimizer, winit, binit; /* inits -1: the default for the activation */
    double lr, lr_decay, momentum, weight_decay, scale;
    long batch, epochs, limit, valid, threads, label_col, checkpoint_every;
    bool csv_options; /* --label-col or --scale given */
    unsigned long long seed;
    tg_dtype dtype;
} train_opts;

/* Applies option argv[*i] (and its value, argv[*i + 1]) to o, advancing *i
 * past the value; returns 0, or the exit status after printing the problem. */
int tg_cli_train_option(train_opts *o, int argc, char **argv, int *i);

/* Whether option opt of the command line marks setting s given; the
 * settings are numbered 0 .. TG_CLI_SETTINGS - 1 (resume.c's table).
 * -1 when opt is no setting. */
#define TG_CLI_SETTINGS 21
int tg_cli_setting_of(const char *opt);

/* The settings of o that a checkpoint keeps, as lines "--OPTION VALUE" a
 * resumed training reads back, and a last line "fingerprint N HEX" of the
 * training data (tg_cli_data_fingerprint). False when they do not fit cap
 * or a value holds a newline. */
bool tg_cli_settings_text(const train_opts *o, uint64_t fingerprint, char *buf, size_t cap);

/* A fingerprint of the data sets (NULL: none): FNV-1a over each one's
 * count, feature count, features and labels. A resumed training refuses
 * other data, wherever its files are. */
uint64_t tg_cli_data_fingerprint(const tg_dataset *const *sets, int count);

/* The options of a resumed training into *o: the checkpoint's settings
 * text (from base, the defaults), with the command line's options that
 * may change (files, threads, --epochs, --checkpoint-every, the data's
 * paths) taken from
 * cmd. given[s] tells which settings the command line gave (all when it
 * gave a preset, named preset). A given setting that differs from the
 * checkpoint's is refused, naming both. *fingerprint gets the checkpoint's
 * data fingerprint; *strings a block the strings of *o point into, for the
 * caller to free (also on failure). Returns 0, or the exit status after
 * printing why. */
int tg_cli_resume_opts(train_opts *o, const train_opts *base, const train_opts *cmd,
                       const bool *given, const char *preset, const char *text,
                       uint64_t *fingerprint, char **strings);

#endif
