/*
 * tapegrad: neural networks on the graph. Included by <tapegrad.h>.
 *
 * - a seeded random generator (tg_rng) and the usual initialisers;
 * - a parameter store (tg_params): named tensors that live outside every
 *   tape, in one flat value buffer and one flat gradient buffer, and enter a
 *   tape through tg_param() as leaves whose gradients the sweep adds into;
 * - dense layers and MLPs built only from public ops (tg_dense, tg_mlp_forward);
 * - optimisers: SGD, SGD with momentum, Adam, with optional L2 weight decay;
 * - datasets: IDX (MNIST, Fashion-MNIST) and CSV readers, one-hot batches;
 * - training by replay (tg_trainer) and evaluation (tg_evaluate);
 * - checkpoints in a versioned, CRC-checked binary format (docs/formats.md).
 *
 * Conventions. Functions that work on a tape report errors through the
 * tape's status, like the ops. The others return an int status code
 * (TG_OK = 0) or a pointer (NULL on failure), and, when their last argument
 * err is not NULL, fill it with the code and a message that names the file,
 * the parameter or the shapes involved. A failed call changes nothing the
 * caller can see (besides err). Nothing here aborts or prints.
 */
#ifndef TAPEGRAD_NN_H
#define TAPEGRAD_NN_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* An error report of a call that has no tape: code is a tg_status_code,
 * message a sentence such as "model.tgm: truncated (1200 of 318120 bytes)".
 * Every function taking a tg_error *err (NULL allowed) sets it on failure
 * and clears it (code TG_OK, message "") when it succeeds, so a report
 * never outlives the call that made it. */
typedef struct tg_error {
    int code;
    char message[512];
} tg_error;

/* ------------------------------------------------------------------ rng -- */

/* A pseudo-random generator (xoshiro256** seeded through splitmix64). The
 * same seed gives the same sequence on every platform for tg_rng_next(),
 * tg_rng_below() and tg_rng_shuffle(); the floating-point draws also agree
 * bit for bit wherever the C library's log, sqrt and cos do. The fields are
 * public only so that a generator can live on the stack: do not touch them. */
typedef struct tg_rng {
    uint64_t s[4];
} tg_rng;

/* Seeds r; any seed (including 0) is fine. */
TG_API void tg_rng_seed(tg_rng *r, uint64_t seed);

/* The next 64 random bits. */
TG_API uint64_t tg_rng_next(tg_rng *r);

/* A uniform double in [0, 1) with 53 random bits. */
TG_API double tg_rng_uniform(tg_rng *r);

/* A standard normal draw N(0, 1) (Box-Muller; one value per call). */
TG_API double tg_rng_normal(tg_rng *r);

/* A uniform integer in [0, n) without modulo bias; 0 when n is 0. */
TG_API uint64_t tg_rng_below(tg_rng *r, uint64_t n);

/* Shuffles idx[0..n) uniformly in place (Fisher-Yates). */
TG_API void tg_rng_shuffle(tg_rng *r, uint32_t *idx, size_t n);

/* ----------------------------------------------------------- parameters -- */

/* A parameter store: named tensors of one dtype, kept in a flat value buffer
 * and a flat gradient buffer of equal layout (so zeroing every gradient, or
 * one optimiser step, is a single loop). Names are looked up through a hash
 * table. Parameters survive tape resets and tape frees; the store owns its
 * memory. Not thread-safe. */
typedef struct tg_params tg_params;

/* A new, empty store for parameters of the given dtype (TG_F32 or TG_F64).
 * NULL on an unknown dtype or when memory is exhausted. */
TG_API tg_params *tg_params_new(tg_dtype dtype);

/* Frees the store and its buffers. NULL is a no-op. Nodes made from it by
 * tg_param() must not be used afterwards. */
TG_API void tg_params_free(tg_params *ps);

TG_API tg_dtype tg_params_dtype(const tg_params *ps);

/* Adds a zero-valued parameter called name (1 to 127 bytes, copied) of the
 * given shape (ndim 1..TG_MAX_DIMS, each dimension >= 1). Adding may move
 * the flat buffers: pointers from tg_params_value/grad/data and nodes from
 * tg_param() made before the call are invalid after it, so add every
 * parameter before building graphs. Returns TG_OK, TG_ERR_ARG (duplicate or
 * bad name), TG_ERR_SHAPE, TG_ERR_NULL or TG_ERR_NOMEM; the store is
 * unchanged on error. */
TG_API int tg_params_add(tg_params *ps, const char *name, int ndim, const int64_t *shape,
                         tg_error *err);

/* Number of parameters; they are numbered 0..count-1 in the order added. */
TG_API int tg_params_count(const tg_params *ps);

/* The index of the parameter called name, or -1. */
TG_API int tg_params_find(const tg_params *ps, const char *name);

/* The name of parameter i, or NULL for a bad index. Owned by the store. */
TG_API const char *tg_params_name(const tg_params *ps, int i);

/* Copies the shape of parameter i into shape (room for TG_MAX_DIMS) and
 * returns its ndim; 0 for a bad index. */
TG_API int tg_params_shape(const tg_params *ps, int i, int64_t *shape);

/* Number of elements of parameter i; 0 for a bad index. */
TG_API int64_t tg_params_numel(const tg_params *ps, int i);

/* The values / gradient of parameter i (numel elements of the store's
 * dtype) inside the flat buffers; NULL for a bad index. Valid until the next
 * tg_params_add() or tg_params_free(). */
TG_API void *tg_params_value(const tg_params *ps, int i);
TG_API void *tg_params_grad(const tg_params *ps, int i);

/* The flat buffers: tg_params_size() elements each. Each parameter starts at
 * a multiple of 16 elements; the padding between parameters stays zero. */
TG_API void *tg_params_data(const tg_params *ps);
TG_API void *tg_params_grads(const tg_params *ps);
TG_API int64_t tg_params_size(const tg_params *ps);

/* Sets every gradient to zero: one memset over the flat gradient buffer. */
TG_API void tg_params_zero_grad(tg_params *ps);

/* TG_OK when every value of the store is finite; else TG_ERR_NUMERIC with
 * err naming the first parameter and element that is NaN or infinite
 * ("parameter layer1.W holds NaN at element 12 of 78400"). One pass over
 * the values. TG_ERR_NULL for a NULL store. */
TG_API int tg_params_check_finite(const tg_params *ps, tg_error *err);

/* Copies every value (not the gradients) of src into dst, which must hold
 * the same names, shapes (in the same order) and dtype. Returns TG_OK or
 * TG_ERR_SHAPE / TG_ERR_DTYPE / TG_ERR_NULL with dst unchanged. */
TG_API int tg_params_copy(tg_params *dst, const tg_params *src, tg_error *err);

/* Free-form text saved with the parameters in a checkpoint (e.g. the
 * architecture, "layers=784,100,10 activation=sigmoid"). set copies text
 * (NULL clears it; at most 65535 bytes); get returns "" when unset. */
TG_API int tg_params_set_meta(tg_params *ps, const char *text);
TG_API const char *tg_params_meta(const tg_params *ps);

/* A leaf on tape t over the parameter called name: its value is the store's
 * buffer (no copy) and the sweep *adds* d(output)/d(parameter) into the
 * store's gradient buffer (tg_view()). An unknown name or a NULL store
 * records TG_ERR_ARG / TG_ERR_NULL on the tape and returns its poison node;
 * a NULL tape gives NULL. The node is valid until the tape is reset or freed,
 * or a parameter is added to the store. */
TG_API tg_node *tg_param(tg_tape *t, tg_params *ps, const char *name);

/* Initialisers. fan_in is shape[0] and fan_out the product of the other
 * dimensions (a dense weight is [fan_in, fan_out]); for a 1-D parameter
 * both are its length.
 *   TG_INIT_ZERO     0
 *   TG_INIT_NORMAL   N(0, 1)                       (the seeds' network.py)
 *   TG_INIT_SCALED   N(0, 1) / sqrt(fan_in)        (the book's improved init)
 *   TG_INIT_XAVIER   N(0, 2 / (fan_in + fan_out))  (Glorot & Bengio, normal)
 *   TG_INIT_HE       N(0, 2 / fan_in)              (He et al., for relu)
 * Values are drawn in double from r in row-major order, then rounded to the
 * store's dtype: the same seed gives bit-identical parameters. */
typedef enum tg_init {
    TG_INIT_ZERO,
    TG_INIT_NORMAL,
    TG_INIT_SCALED,
    TG_INIT_XAVIER,
    TG_INIT_HE
} tg_init;

/* Fills parameter i with init drawn from r. Returns TG_OK, TG_ERR_NULL or
 * TG_ERR_ARG (bad index or initialiser). */
TG_API int tg_params_init(tg_params *ps, int i, tg_init init, tg_rng *r);

/* "zero", "normal", "scaled", "xavier", "he"; and back (-1 if unknown). */
TG_API const char *tg_init_name(tg_init init);
TG_API int tg_init_parse(const char *name);

/* --------------------------------------------------------------- layers -- */

typedef enum tg_activation {
    TG_ACT_IDENTITY,
    TG_ACT_SIGMOID,
    TG_ACT_TANH,
    TG_ACT_RELU
} tg_activation;

/* "identity", "sigmoid", "tanh", "relu"; and back (-1 if unknown). */
TG_API const char *tg_activation_name(tg_activation act);
TG_API int tg_activation_parse(const char *name);

/* act(x) through the public op (tg_sigmoid, tg_tanh, tg_relu; identity
 * returns x itself). An unknown act records TG_ERR_ARG on x's tape. */
TG_API tg_node *tg_activate(tg_node *x, tg_activation act);

/* A dense layer act(x W + b) as the graph tg_add(tg_matmul(x, W), b) and the
 * activation: x is [batch, in], W [in, out], b [out] (broadcast over the
 * rows, so its gradient is the sum over the batch: BP3). Shape errors are
 * the ops' errors, on x's tape. */
TG_API tg_node *tg_dense(tg_node *x, tg_node *W, tg_node *b, tg_activation act);

typedef enum tg_loss {
    TG_LOSS_MSE, /* tg_mse: C = 1/(2B) sum (a - y)^2, the seeds' quadratic cost */
    TG_LOSS_XENT /* cross-entropy of logits and integer labels (tg_cross_entropy, the
                    labels taken from one-hot targets): C = -1/B sum log softmax(z)_label */
} tg_loss;

/* "mse", "xent"; parse also accepts "quadratic", "softmax_xent",
 * "cross-entropy" (-1 if unknown). */
TG_API const char *tg_loss_name(tg_loss loss);
TG_API int tg_loss_parse(const char *name);

/* The cost of prediction a against targets y (equal shapes [batch, k]),
 * averaged over the batch rows: tg_mse(a, y) or tg_softmax_xent(a, y). */
TG_API tg_node *tg_cost(tg_node *a, tg_node *y, tg_loss loss);

/* ------------------------------------------------------------------ mlp -- */

#define TG_MLP_MAX_LAYERS 16

/* An MLP's architecture: nlayers dense layers (1..TG_MLP_MAX_LAYERS);
 * layer l (1-based in names, 0-based here) maps sizes[l] inputs to
 * sizes[l+1] outputs through act[l]. Its parameters are called
 * "layer<l+1>.W" [sizes[l], sizes[l+1]] and "layer<l+1>.b" [sizes[l+1]]. */
typedef struct tg_mlp {
    int nlayers;
    int64_t sizes[TG_MLP_MAX_LAYERS + 1];
    tg_activation act[TG_MLP_MAX_LAYERS];
} tg_mlp;

/* Fills m from a size list such as "784,100,10" (also "784-100-10"), the
 * activation of the hidden layers and that of the output layer. Returns
 * TG_OK or TG_ERR_ARG with a message naming the bad part; m is unchanged on
 * error. */
TG_API int tg_mlp_parse(tg_mlp *m, const char *sizes, tg_activation hidden,
                        tg_activation output, tg_error *err);

/* Writes "784,100,10" for m into buf (always NUL-terminated when len > 0).
 * Returns the length the full text needs, like snprintf. */
TG_API int tg_mlp_format_sizes(const tg_mlp *m, char *buf, size_t len);

/* Reads the layer sizes of m from the shapes of the parameters layer1.W,
 * layer2.W, ... in ps (activations are left alone). Returns TG_OK, or
 * TG_ERR_FORMAT when the store does not hold a consistent MLP. */
TG_API int tg_mlp_from_params(tg_mlp *m, const tg_params *ps, tg_error *err);

/* Adds the parameters of m to ps and initialises them from a generator
 * seeded with seed: each weight with winit, then its bias with binit, layer
 * by layer. Returns TG_OK or an error of tg_params_add (ps unchanged). */
TG_API int tg_mlp_init(tg_params *ps, const tg_mlp *m, tg_init winit, tg_init binit,
                       uint64_t seed, tg_error *err);

/* Records the network on x's tape: a = act_l(a W_l + b_l) for each layer,
 * starting from x [batch, sizes[0]]; returns the output [batch, sizes[n]].
 * A missing parameter or a shape mismatch sets the tape's status. */
TG_API tg_node *tg_mlp_forward(tg_node *x, tg_params *ps, const tg_mlp *m);

/* ----------------------------------------------------------- optimisers -- */

typedef enum tg_optimizer { TG_OPT_SGD, TG_OPT_MOMENTUM, TG_OPT_ADAM } tg_optimizer;

/* "sgd", "momentum", "adam"; and back (-1 if unknown). */
TG_API const char *tg_optimizer_name(tg_optimizer kind);
TG_API int tg_optimizer_parse(const char *name);

/*
 * With g the gradient of the batch-averaged cost (what tg_backward() leaves
 * in the store), lr = eta, and g += weight_decay * w first for parameters of
 * 2 or more dimensions (weights, not biases) when weight_decay > 0:
 *   sgd       w -= lr g                      (the seeds' update_mini_batch)
 *   momentum  v = momentum v - lr g;  w += v (the book's form; v starts at 0)
 *   adam      m = beta1 m + (1 - beta1) g;  v = beta2 v + (1 - beta2) g^2;
 *             w -= lr (m / (1 - beta1^t)) / (sqrt(v / (1 - beta2^t)) + eps)
 * Start from tg_optim_defaults() and change what you need.
 */
typedef struct tg_optim_config {
    tg_optimizer kind;
    double lr;           /* defaults: sgd 0.1, momentum 0.1, adam 0.001 */
    double momentum;     /* 0.9 */
    double beta1, beta2; /* 0.9, 0.999 */
    double eps;          /* 1e-8 */
    double weight_decay; /* 0 */
} tg_optim_config;

TG_API tg_optim_config tg_optim_defaults(tg_optimizer kind);

typedef struct tg_optim tg_optim;

/* An optimiser over every parameter of ps (which it does not own; ps must
 * outlive it and gain no parameters). Allocates its state (zero) here, so
 * that a step allocates nothing. NULL with err filled on a bad config
 * (unknown kind, lr <= 0 or not finite, momentum or betas outside [0, 1),
 * eps <= 0, weight_decay < 0), an empty store, or no memory. */
TG_API tg_optim *tg_optim_new(tg_params *ps, const tg_optim_config *cfg, tg_error *err);
TG_API void tg_optim_free(tg_optim *o);

/* One update of every parameter from the gradients in the store, which it
 * consumes: they are zero afterwards, ready for the next backward sweep
 * (this saves a pass over the store per step). One fused loop over the flat
 * buffers, which also checks the new values at no extra pass. Returns
 * TG_OK, TG_ERR_NULL, TG_ERR_STATE if parameters were added after
 * tg_optim_new, or TG_ERR_NUMERIC when a new value is NaN or infinite (a
 * NaN gradient, or a learning rate so large that the values overflow), or
 * Adam's second moment is (a gradient beyond 1e19 in float32, whose square
 * overflows: the weight would never move again). The
 * step is not undone then (keeping the old values would cost a copy per
 * step): the store holds the bad values until tg_optim_rollback() puts back
 * the last snapshot. */
TG_API int tg_optim_step(tg_optim *o);

/* Keeps a copy of every parameter value and of the optimiser's state
 * (moments, step count), replacing the previous copy. The first call
 * allocates it (the store's size, times 2 for momentum, 3 for Adam). A
 * copy every few dozen steps costs little per step; after a step that went
 * non-finite, tg_optim_rollback() and a replay of the steps since the
 * snapshot give exactly the parameters of the last finite step (tg_trainer
 * does this). Returns TG_OK, TG_ERR_NULL, TG_ERR_NOMEM, or TG_ERR_STATE if
 * parameters were added after tg_optim_new. */
TG_API int tg_optim_snapshot(tg_optim *o);

/* Puts back the values and state of the last tg_optim_snapshot(); the
 * gradients and the learning rate are left alone. TG_OK, TG_ERR_NULL, or
 * TG_ERR_STATE when no snapshot was taken or the store gained parameters. */
TG_API int tg_optim_rollback(tg_optim *o);

/* Changes the learning rate for later steps (a schedule); TG_ERR_ARG unless
 * lr > 0 and finite. */
TG_API int tg_optim_set_lr(tg_optim *o, double lr);

/* Number of steps taken (a rollback sets it back to the snapshot's). */
TG_API int64_t tg_optim_steps(const tg_optim *o);

/* The current learning rate; 0 for NULL. */
TG_API double tg_optim_lr(const tg_optim *o);

/* The weight decay it was created with; 0 for NULL. */
TG_API double tg_optim_weight_decay(const tg_optim *o);

/* What a diverging training blames, into buf of len bytes (returned): "the
 * learning rate LR", or with weight decay "the learning rate LR or the
 * weight decay WD" (which overflows too when large). */
TG_API const char *tg_optim_blame(char *buf, size_t len, const tg_optim *o);

/* ------------------------------------------------------------- datasets -- */

/* A labelled dataset held in memory: n samples of d features (float, pixels
 * scaled to [0, 1]) and an integer label in [0, classes) each. */
typedef struct tg_dataset tg_dataset;

/* Reads an IDX image file (magic 0x00000803: count, rows, cols, then bytes)
 * and its IDX label file (magic 0x00000801: count, then bytes), each gzipped
 * or not (detected from the contents), as MNIST and Fashion-MNIST ship
 * them. Pixels are scaled by 1/255. classes > 0 requires every label to be
 * below it; 0 takes max label + 1. Refuses, with a message naming the file
 * and the problem: a missing or unreadable file, a wrong magic, a truncated
 * file, images and labels of different counts, a label out of range.
 * Returns NULL then (code TG_ERR_IO, TG_ERR_FORMAT, TG_ERR_NOMEM). */
TG_API tg_dataset *tg_dataset_read_idx(const char *images, const char *labels, int classes,
                                       tg_error *err);

/* Reads DIR/PREFIX-images-idx3-ubyte and DIR/PREFIX-labels-idx1-ubyte, each
 * with ".gz" first and then without: prefix "train" or "t10k" for MNIST's
 * layout. As tg_dataset_read_idx() otherwise. */
TG_API tg_dataset *tg_dataset_read_mnist(const char *dir, const char *prefix, int classes,
                                         tg_error *err);

/* Reads a CSV file (gzipped or not): one sample per line, numbers separated
 * by commas, the label in column label_col (0-based) and the features in the
 * other columns, each multiplied by scale (1/255.0 for pixels, 1 for none).
 * label_col -1 reads a file without labels (every column a feature; every
 * label 0, for prediction).
 * A first line of names only (no field a number) is a header and skipped;
 * a UTF-8 byte-order mark is ignored; blank lines
 * are skipped. classes as for IDX. Refuses, naming the file and line: a
 * field that is not a number, inf or nan, a feature beyond float32's range
 * once scaled, a NUL byte, a line of another width, a label that is not an
 * integer or is out of range, an empty file (docs/formats.md). */
TG_API tg_dataset *tg_dataset_read_csv(const char *path, int label_col, double scale,
                                       int classes, tg_error *err);

/* A dataset copied from memory: n samples of d features (row-major x) and
 * labels in [0, classes). NULL on bad arguments (TG_ERR_ARG; a label out
 * of range or a feature that is NaN or infinite, named with its sample and
 * feature, as the CSV reader does) or no memory. */
TG_API tg_dataset *tg_dataset_new(size_t n, int64_t d, int classes, const float *x,
                                  const int32_t *labels, tg_error *err);

TG_API void tg_dataset_free(tg_dataset *ds);

TG_API size_t tg_dataset_size(const tg_dataset *ds);
TG_API int64_t tg_dataset_features(const tg_dataset *ds);
TG_API int tg_dataset_classes(const tg_dataset *ds);
/* The features, row-major [size, features], and the labels. Owned by ds. */
TG_API const float *tg_dataset_x(const tg_dataset *ds);
TG_API const int32_t *tg_dataset_labels(const tg_dataset *ds);

/* Keeps the first n samples (no-op when n >= size). */
TG_API void tg_dataset_truncate(tg_dataset *ds, size_t n);

/* Moves the last n samples of ds into a new dataset (the validation split)
 * and keeps the rest in ds. NULL (ds unchanged) when n is 0 or not smaller
 * than the size, or on no memory. */
TG_API tg_dataset *tg_dataset_split(tg_dataset *ds, size_t n, tg_error *err);

/* Writes samples idx[0..n) as rows of x ([n, features] of dtype) and, when y
 * is not NULL, their one-hot targets as rows of y ([n, width]). Allocates
 * nothing: this is how a replayed graph's input buffers (tg_value() of its
 * tg_input leaves) are filled. Returns TG_OK, TG_ERR_NULL, or TG_ERR_ARG
 * for an index out of range or a label >= width. */
TG_API int tg_dataset_gather(const tg_dataset *ds, const uint32_t *idx, size_t n,
                             tg_dtype dtype, void *x, void *y, int64_t width);

/* ------------------------------------------------------------- training -- */

/* Called during an epoch after each mini-batch with the number of samples
 * done so far and the epoch's total. */
typedef void (*tg_progress_fn)(void *ctx, size_t done, size_t total);

/* TG_OK when ds fits the network m: as many features as m has inputs and
 * no more classes than it has outputs; else TG_ERR_NULL or TG_ERR_SHAPE
 * with err naming the mismatch. */
TG_API int tg_mlp_check_data(const tg_mlp *m, const tg_dataset *ds, tg_error *err);

/* The recorded graph of one mini-batch, for replay: inputs x [rows, in] and
 * y [rows, out] (fill them through tg_value(), e.g. with
 * tg_dataset_gather()), the network's output and the cost, on a tape of its
 * own. The trainers below replay these; so can a loop of your own (the MPI
 * trainer is one). A zeroed struct is an empty graph. */
typedef struct tg_batch_graph {
    tg_tape *tape;
    tg_node *x, *y, *out, *cost;
    size_t rows;
} tg_batch_graph;

/* Records into g (freeing what it held) x, y -> tg_cost(tg_mlp_forward(x),
 * y) for rows samples of the network m over ps. TG_OK, or an error with err
 * filled and g left empty. */
TG_API int tg_batch_graph_build(tg_batch_graph *g, tg_params *ps, const tg_mlp *m,
                                tg_loss loss, size_t rows, tg_error *err);

/* Frees g's tape and empties g. NULL or an empty g is a no-op. */
TG_API void tg_batch_graph_free(tg_batch_graph *g);

/*
 * Mini-batch training by replay. The trainer records the graph
 *   x [batch, in], y [batch, out] -> tg_cost(tg_mlp_forward(x), y)
 * once on its own tape and replays it for every batch: gather the batch into
 * x and y, tg_forward, check the cost, zero the gradients, tg_backward,
 * optimiser step. The
 * last batch of an epoch, when the dataset size is not a multiple of batch,
 * runs through a second graph recorded for that size, so its cost is
 * averaged over its own rows exactly like the seeds' update_mini_batch on a
 * short mini-batch. Steps allocate nothing; the second graph and the index
 * array are allocated on the first epoch that needs them.
 */
typedef struct tg_trainer tg_trainer;

/* A trainer for the network m over ps (which must hold m's parameters) with
 * the given cost, batch size (>= 1) and optimiser. It keeps ps and opt (does
 * not own them); both must outlive it. NULL with err filled on error. */
TG_API tg_trainer *tg_trainer_new(tg_params *ps, const tg_mlp *m, tg_loss loss, int batch,
                                  tg_optim *opt, tg_error *err);
TG_API void tg_trainer_free(tg_trainer *tr);

/* One epoch over ds: shuffles an index array with r (when r is not NULL;
 * else the natural order), then one optimiser step per mini-batch. Writes
 * the mean cost of the epoch's batches (weighted by their sizes) to
 * *mean_loss when not NULL. progress may be NULL. Returns TG_OK, or an
 * error (dataset width differs from the network, a label >= the output
 * size, a tape error) with err filled.
 *
 * Divergence stops the epoch with TG_ERR_NUMERIC and a message naming the
 * epoch (counted by this trainer from 1) and the step within it: "epoch 3,
 * step 1204: the loss is NaN; the learning rate 30 may be too large (the
 * parameters are kept as they were after step 1203)" (with weight decay:
 * "the learning rate 30 or the weight decay W"). The store then holds
 * exactly the parameters of the last finite step, so that saving it writes
 * no NaN. Detection costs no pass of its own: the batch's cost (one scalar,
 * which any NaN or inf of the outputs reaches) is checked after the forward
 * pass, before the gradients are computed; and tg_optim_step reports an
 * update that made a value non-finite (a NaN gradient behind a finite cost,
 * or an overflow; the cost alone would miss an infinite weight behind a
 * saturated sigmoid). After a bad cost nothing has changed; a bad update is
 * undone with tg_optim_rollback() to a snapshot the trainer takes every 64
 * steps (one copy of the store and the optimiser's state per 64 steps; the
 * first allocates it) and the steps since are replayed, which gives the
 * same numbers as long as the BLAS is deterministic (OpenBLAS is, for a
 * given thread count). The optimiser's state is that of the same step.
 * Then lower the learning rate (tg_optim_set_lr) and go on, or save. */
TG_API int tg_trainer_epoch(tg_trainer *tr, const tg_dataset *ds, tg_rng *r,
                            double *mean_loss, tg_progress_fn progress, void *ctx,
                            tg_error *err);

/*
 * Where a training stands, for a training checkpoint (tg_training_save):
 * with the store and the optimiser's state, all that a trainer needs to
 * carry on exactly as if it had not stopped.
 */
typedef struct tg_train_position {
    int64_t epoch;   /* epochs completed */
    int64_t step;    /* steps of epoch + 1 taken (0 between epochs) */
    double loss_sum; /* those steps' costs times their rows, summed (0 when step is 0) */
    tg_rng rng;      /* the shuffling generator as epoch + 1 began (step > 0) or will
                        begin (step 0): pass a copy of it to the next epoch */
} tg_train_position;

/* Called by tg_trainer_epoch() after each step that succeeded, with the
 * step's number within the epoch (from 1); the trainer's position is then
 * that of the step (tg_trainer_position()). Returning nonzero stops the
 * epoch, which returns that code with "epoch E, step K: stopped by the step
 * callback" (the parameters are those after the step). */
typedef int (*tg_step_fn)(void *ctx, tg_trainer *tr, int64_t step);

/* Sets (fn NULL: removes) the step callback of tr. */
TG_API void tg_trainer_on_step(tg_trainer *tr, tg_step_fn fn, void *ctx);

/* The trainer's position into *pos: between epochs, the epochs done (those
 * this trainer ran, plus the position it was given) and the generator as
 * the last epoch left it; inside a step callback, also the steps taken in
 * the epoch, their cost sum and the generator as the epoch began. The
 * generator is that of the last epoch given one (zero before). TG_OK or
 * TG_ERR_NULL. */
TG_API int tg_trainer_position(const tg_trainer *tr, tg_train_position *pos);

/* Makes tr carry on from pos (of a checkpoint): its epochs count on from
 * pos->epoch, and when pos->step > 0 its next epoch, given a copy of
 * pos->rng as its generator and the same dataset and batch size, shuffles
 * the same order, skips the first pos->step steps and adds their loss_sum
 * to its mean loss; the result is then bit for bit that of the training
 * that stopped (the store and the optimiser being restored too, with
 * tg_training_restore()). That epoch refuses (TG_ERR_ARG) a step past its
 * end. Returns TG_OK, or TG_ERR_NULL / TG_ERR_ARG (a negative epoch or
 * step, a sum not finite). */
TG_API int tg_trainer_set_position(tg_trainer *tr, const tg_train_position *pos,
                                   tg_error *err);

/* Evaluation of the network m over ps on ds, forward only, in chunks of up
 * to 1000 samples: the fraction of samples whose largest output is at their
 * label into *accuracy, the mean cost into *mean_loss, and, when confusion
 * is not NULL, counts into confusion[label * out + predicted] (out x out,
 * zeroed first, out = m->sizes[m->nlayers]). Any output pointer may be
 * NULL. Allocates its tapes per call. Returns TG_OK or an error; a store
 * holding a NaN or an infinity (tg_params_check_finite), or outputs whose
 * cost is not finite, give TG_ERR_NUMERIC rather than an accuracy that
 * means nothing. */
TG_API int tg_evaluate(tg_params *ps, const tg_mlp *m, tg_loss loss, const tg_dataset *ds,
                       double *accuracy, double *mean_loss, int64_t *confusion,
                       tg_error *err);

/* The accuracy of any model's outputs: the fraction of the rows of logits
 * ([rows, classes], or [classes] for one row; either dtype, any node whose
 * values are computed) whose largest entry is at labels[row], the largest
 * chosen by tg_argmax's rule (the first at a tie; a NaN counts as the
 * largest). n is the number of labels, which must equal rows. Writes
 * *accuracy and returns TG_OK; else TG_ERR_NULL, TG_ERR_SHAPE (logits not
 * 1-D or 2-D, or n != rows) or TG_ERR_ARG (a label outside 0..classes-1),
 * with *accuracy unchanged. Reads the values only: records nothing. */
TG_API int tg_accuracy(const tg_node *logits, const int32_t *labels, int64_t n, double *accuracy,
                       tg_error *err);

/* ---------------------------------------------------------- checkpoints -- */

/* Saves every parameter value of ps, with its names, shapes, dtype and meta
 * text, to path in the format of docs/formats.md. Atomic: writes a
 * temporary file in the same directory, fsyncs it, renames it over path and
 * fsyncs the directory, so path holds the old or the new model, never a
 * mix. A symbolic link is followed to its target; the old file's mode is
 * kept (new files: 0666 & ~umask); a device is written in place; a FIFO, a
 * socket or a directory is refused. A file-size limit gives TG_ERR_IO
 * ("File too large"), not SIGXFSZ. Returns TG_OK or TG_ERR_IO / TG_ERR_NULL
 * with err naming the file. */
TG_API int tg_checkpoint_save(const tg_params *ps, const char *path, tg_error *err);

/* Loads the values of path into ps, whose parameters must match the file's
 * exactly (same dtype, count, names, shapes, in order); also replaces the
 * meta text. The whole file is read and verified (magic, version, size,
 * CRC32, structure) before anything is copied: on any error ps is left
 * untouched. Refused with a clear message: a missing file, a directory, a
 * FIFO or device (without blocking), an empty file, a truncated or corrupt file, a newer version, a file of
 * another architecture or dtype. Returns TG_OK, TG_ERR_IO, TG_ERR_FORMAT,
 * TG_ERR_SHAPE or TG_ERR_DTYPE. */
TG_API int tg_checkpoint_load(tg_params *ps, const char *path, tg_error *err);

/* A new store holding the parameters, dtype and meta text of path. NULL
 * with err filled on the errors of tg_checkpoint_load(). */
TG_API tg_params *tg_checkpoint_read(const char *path, tg_error *err);

/*
 * Training checkpoints: the parameters (as tg_checkpoint_save() writes
 * them, so tg_checkpoint_read() and tapegrad eval take the file too), the
 * optimiser's whole state (learning rate, step count, moments, the
 * divergence snapshot), a trainer's position and a text of the caller's
 * (e.g. the command line's settings), in one CRC-checked file, written
 * atomically like tg_checkpoint_save(). The format is docs/formats.md's
 * version 2.
 */

/* Saves ps (with its meta text), the state of opt (an optimiser over ps),
 * *pos and settings (NULL: none; at most 65535 bytes) to path. Returns
 * TG_OK, or TG_ERR_NULL / TG_ERR_ARG / TG_ERR_STATE (ps gained parameters
 * after opt was made) / TG_ERR_NOMEM / TG_ERR_IO with err naming the file;
 * a failed save leaves path as it was. */
TG_API int tg_training_save(const tg_params *ps, const tg_optim *opt,
                            const tg_train_position *pos, const char *settings,
                            const char *path, tg_error *err);

/* A training checkpoint read into memory and verified. */
typedef struct tg_training tg_training;

/* Reads path whole and verifies it (as tg_checkpoint_read() does, and the
 * training section's structure). NULL with err filled: the errors of
 * tg_checkpoint_read(), or TG_ERR_FORMAT for a model file without a
 * training state ("holds a model but no training state"). */
TG_API tg_training *tg_training_read(const char *path, tg_error *err);
TG_API void tg_training_free(tg_training *t);

/* The settings text saved with the checkpoint ("" when none), and its
 * store (names, shapes, dtype, meta text and values). Owned by t. */
TG_API const char *tg_training_settings(const tg_training *t);
TG_API const tg_params *tg_training_params(const tg_training *t);

/* The optimiser's configuration saved (its kind, and its learning rate as
 * the schedule had left it). */
TG_API tg_optim_config tg_training_optim(const tg_training *t);

/* Puts the checkpoint back: its values into ps (the same names, shapes and
 * dtype, in order), its optimiser state into opt (an optimiser over ps of
 * the same kind and hyper-parameters; the learning rate is the file's) and
 * its position into *pos (for tg_trainer_set_position()). Everything is
 * checked first: on error nothing has changed. Returns TG_OK, TG_ERR_NULL,
 * TG_ERR_DTYPE, TG_ERR_SHAPE (another architecture), TG_ERR_ARG (another
 * optimiser or hyper-parameter, named), TG_ERR_STATE or TG_ERR_NOMEM. */
TG_API int tg_training_restore(const tg_training *t, tg_params *ps, tg_optim *opt,
                               tg_train_position *pos, tg_error *err);

/* The whole model of an MLP checkpoint in one call, ready for
 * tg_mlp_forward(), tg_evaluate() or tg_trainer_new(): a new store with the
 * parameters of path (tg_checkpoint_read()), the network into *m (sizes from
 * the parameters' shapes, activations from the meta text) and its cost into
 * *loss. The meta text is tg_mlp_describe()'s, which `tapegrad train --save`
 * writes; a key it lacks takes train's default (activation sigmoid, output
 * the hidden layers' activation, loss mse). The caller frees the store with
 * tg_params_free(). NULL with err filled on the errors of
 * tg_checkpoint_read(), TG_ERR_FORMAT (an unknown activation or loss, or
 * parameters that are not an MLP's) and TG_ERR_NULL (m or loss NULL); *m and
 * *loss are then unchanged. */
TG_API tg_params *tg_mlp_read(const char *path, tg_mlp *m, tg_loss *loss, tg_error *err);

/* Writes the description of m and loss that tg_mlp_read() reads back,
 * "layers=784,100,10 activation=sigmoid output=sigmoid loss=mse", into buf
 * (always NUL-terminated when len > 0), for tg_params_set_meta() before
 * tg_checkpoint_save(). Returns the length the full text needs, like
 * snprintf, or -1 for a NULL or invalid m. */
TG_API int tg_mlp_describe(const tg_mlp *m, tg_loss loss, char *buf, size_t len);

#ifdef __cplusplus
}
#endif

#endif
