/*
 * tapegrad: pictures of a tape in Graphviz's DOT language.
 * Included by <tapegrad.h> (through tapegrad/gradcheck.h).
 *
 *     tg_backward(f);
 *     FILE *out = fopen("graph.dot", "w");
 *     tg_dot_write(tape, out);          then: dot -Tpng graph.dot -o graph.png
 *
 * Every node of the tape is one box: its op ("leaf" boxes say "variable",
 * "input" or the constant's value), its shape and dtype when it is a tensor,
 * its forward value in green and, when a sweep has reached it, its gradient
 * in red. Edges run from each input to the node that uses it; the two inputs
 * of a binary op are labelled a and b. Tensors show their first few values.
 */
#ifndef TAPEGRAD_DOT_H
#define TAPEGRAD_DOT_H

#include <stdio.h>

#include "tapegrad.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Options of tg_dot_write_with(); zero-initialise and set what you need. */
typedef struct tg_dot_opts {
    /* A name for a node (e.g. a variable's), drawn above its op, or NULL for
     * none. Called once per node; the string is copied (and escaped). */
    const char *(*name)(const tg_node *n, void *ctx);
    void *ctx;            /* passed to name */
    const char *title;    /* a caption for the whole graph, or NULL */
    int max_values;       /* values shown per tensor; 0 means 6 */
    int top_down;         /* non-zero: inputs above outputs; else left to right */
} tg_dot_opts;

/*
 * Writes the whole tape t as one DOT digraph to out (which stays open and
 * owned by the caller). Values and gradients are those stored now, so call it
 * after tg_backward() to see gradients. Returns TG_OK, TG_ERR_NULL (t or out
 * NULL) or TG_ERR_IO (a write failed). The tape's status is not changed.
 */
TG_API int tg_dot_write(const tg_tape *t, FILE *out);

/* As tg_dot_write(), with options (NULL means the defaults). */
TG_API int tg_dot_write_with(const tg_tape *t, FILE *out, const tg_dot_opts *opts);

#ifdef __cplusplus
}
#endif

#endif
