/* Sparsity patterns and colourings shared by src/drivers/sparsity.c, src/drivers/coloring.c
 * and src/drivers/sparse.c; never installed. */
#ifndef TG_SPARSE_INTERNAL_H
#define TG_SPARSE_INTERNAL_H

#include "rules.h"
#include "alloc.h"

/* A pattern in CSR: row r's columns are col[start[r] .. start[r+1]), sorted,
 * distinct. Memory from tg__malloc, freed by tg__csr_free. */
typedef struct tg_csr {
    int64_t rows, cols;
    int64_t *start; /* rows + 1 */
    int32_t *col;   /* start[rows] */
} tg_csr;

void tg__csr_free(tg_csr *m);

/* The pattern of d(ys)/d(wrt) found on the recording: rows are the elements
 * of ys[0..m) in order, columns those of wrt[0..n). A position a wrt node
 * names is a seed, as in the tangent sweep. Conservative: an entry missing
 * from the pattern is zero at every point. TG_OK, or the status (TG_ERR_NOMEM,
 * TG_ERR_ARG for more than 2^31 - 1 columns) recorded on the tape. */
int tg__pattern(tg_tape *t, int m, tg_node *const *ys, int n, tg_node *const *wrt, tg_csr *out);

/* m and its transpose united (a square pattern made symmetric); *out is new. */
int tg__csr_symmetric(const tg_csr *m, tg_csr *out);
/* The transpose of m; *out is new. 0, or -1 when memory ran out. */
int tg__csr_transpose(const tg_csr *m, tg_csr *out);

/* Colourings (coloring.c): color[j] in [0, ncolors) for each column j.
 * Column colouring of a Jacobian: columns that share a row differ (distance
 * 2 in the bipartite graph), so each row of the compressed matrix J S holds
 * at most one entry per colour. Star colouring of a symmetric pattern (both
 * triangles, the diagonal ignored): a distance-1 colouring in which every
 * path on four vertices uses at least three colours, so every entry of the
 * compressed H S is read directly. Both return the number of colours, or -1
 * when memory ran out. */
int tg__color_columns(const tg_csr *jac, int32_t *color);
int tg__color_star(const tg_csr *sym, int32_t *color);

#endif
