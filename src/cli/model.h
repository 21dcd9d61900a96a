/* What `tapegrad train`, `eval` and `predict` share (model.c): reading a
 * dataset from a directory or a CSV file, a saved model with its
 * architecture, and the values of their options. */
#ifndef TG_CLI_MODEL_H
#define TG_CLI_MODEL_H

#include <stdbool.h>
#include <stddef.h>
#include <tapegrad.h>

#define TG_CLI_DEFAULT_DATA "/usr/share/datasets/fashion-mnist"

/* Where a dataset comes from: a directory of MNIST-format files, or a CSV
 * file with its label column (-1: none) and a scale for its features. */
typedef struct tg_cli_data {
    const char *path;
    int label_col;
    double scale;
    const char *option; /* the option that named path, for messages; NULL: --data */
    int64_t features;   /* what the network takes, checked against an IDX header
                           before anything is inflated; 0: any */
} tg_cli_data;

/* Whether path names a directory. */
bool tg_cli_is_dir(const char *path);

/* Reads d: from a directory, its PREFIX-{images-idx3,labels-idx1}-ubyte[.gz]
 * files (prefix "train" or "t10k"), refusing images of another size than
 * d->features from their header alone (a gzip bomb is not inflated for
 * nothing); from a file, CSV. classes as for the library's readers (0: the
 * largest label + 1). NULL with err filled. */
tg_dataset *tg_cli_read_data(const tg_cli_data *d, const char *prefix, int classes,
                             tg_error *err);

/* Prints on stderr, prefixed "tapegrad CMD: ", why d could not be read,
 * and how to get data when nothing was found, or which option names the
 * label's column when a CSV's label was refused. */
void tg_cli_no_data(const char *cmd, const tg_cli_data *d, const tg_error *e);

/* A saved model: its parameters, its network (sizes from the parameters,
 * activations from the description saved with them) and its cost, as
 * tg_mlp_read() gives them. */
typedef struct tg_cli_model {
    tg_params *ps;
    tg_mlp m;
    tg_loss loss;
} tg_cli_model;

/* Reads the model file path into mdl. Returns 0, or 1 after printing the
 * problem on stderr, prefixed "tapegrad CMD: ". */
int tg_cli_model_read(tg_cli_model *mdl, const char *path, const char *cmd);
void tg_cli_model_free(tg_cli_model *mdl);

/* Option values. Each returns false when s is not entirely a number of the
 * kind in range; a scale may also be written as a fraction, "1/255". */
bool tg_cli_parse_long(const char *s, long lo, long hi, long *out);
bool tg_cli_parse_double(const char *s, double *out);
bool tg_cli_parse_scale(const char *s, double *out);

/* Prints "tapegrad CMD: OPT 'VAL': WANT" on stderr; returns 2, the exit
 * status of a usage error. */
int tg_cli_bad_value(const char *cmd, const char *opt, const char *val, const char *want);

#endif
