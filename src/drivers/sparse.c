/*
 * Sparse Jacobian and Hessian drivers: pattern (sparsity.c), colouring
 * (coloring.c), the compressed evaluation recorded once on the tape, and
 * the recovery of each nonzero from the compressed matrix.
 *
 * The compressed matrix B = M S (S: one column per colour, 1 where a
 * column of M has that colour) is the tangent of the output (Jacobian) or
 * of the recorded gradient (Hessian: forward over reverse) along the
 * colours' indicator directions. The directions are input nodes: an
 * evaluation writes the indicators, replays the tape, and reads each
 * nonzero at the place the colouring gives it (a row of B and a colour).
 */
#include "sparse_internal.h"

#include "tapegrad/sparse.h"

/* Directions recorded at once: all of them up to ALL_AT_ONCE (one replay
 * per evaluation), else blocks of BLOCK. */
#define ALL_AT_ONCE 32
#define BLOCK 16

enum kind { KIND_JACOBIAN, KIND_HESSIAN, KIND_LAGRANGIAN };

struct tg_sparse {
    tg_tape *t;
    enum kind kind;
    int n;          /* wrt nodes */
    tg_node **wrt;  /* n */
    int m;          /* nodes whose tangents are read: 1 (out) or n (gradients) */
    tg_csr pat;     /* the output pattern (Hessian: lower triangle) */
    int colors, k;  /* colours; directions recorded at once */
    int64_t max_row;
    int32_t *color;          /* per column */
    int64_t *by_color;       /* columns sorted by colour ... */
    int64_t *color_start;    /* ... colour c's are by_color[color_start[c] ..) */
    tg_node **v;             /* k * n direction inputs */
    tg_node **jv;            /* m * k tangents */
    const void **base;       /* m: the values of one colour's tangents, during a read */
    unsigned char *f64;      /* m: whether node i's values are float64 */
    int32_t *row_node;       /* row of B -> which of the m nodes */
    int64_t *row_elem;       /* ... and which element */
    int64_t *src_row;        /* per nonzero: its row of B */
    int64_t *by_src;         /* nonzeros sorted by their colour ... */
    int64_t *src_start;      /* ... colour c's are by_src[src_start[c] ..) */
    int32_t *src_color;
    size_t from;             /* the first position recorded for the directions */
    tg_node *last;           /* the last node recorded: the object is stale without it */
    size_t last_pos;
    tg_node *sigma, *lambda; /* a Lagrangian's weights (input nodes), else NULL */
    int64_t nlambda;
};

void tg_sparse_free(tg_sparse *sp) {
    if (!sp) return;
    tg__csr_free(&sp->pat);
    tg__free(sp->wrt);
    tg__free(sp->color);
    tg__free(sp->by_color);
    tg__free(sp->color_start);
    tg__free(sp->v);
    tg__free(sp->jv);
    tg__free(sp->base);
    tg__free(sp->f64);
    tg__free(sp->row_node);
    tg__free(sp->row_elem);
    tg__free(sp->src_row);
    tg__free(sp->by_src);
    tg__free(sp->src_start);
    tg__free(sp->src_color);
    tg__free(sp);
}

/* As the dense drivers check (out, n, wrt). */
static int check_args(tg_tape *t, tg_node *out, int n, tg_node *const *wrt, tg_sparse **sp,
                      const char *who) {
    if (t->status) return t->status;
    if (!sp) return tg_fail(t, TG_ERR_NULL, "%s: sp is NULL", who);
    if (n < 1 || !wrt)
        return tg_fail(t, n < 1 ? TG_ERR_ARG : TG_ERR_NULL, "%s: %s", who,
                       n < 1 ? "no wrt nodes (n < 1)" : "wrt is NULL");
    if (out && tg__stale(out))
        return tg_fail(t, TG_ERR_STATE, "%s: the output was recorded before tg_tape_reset()", who);
    for (int i = 0; i < n; i++) {
        if (!wrt[i]) return tg_fail(t, TG_ERR_NULL, "%s: wrt[%d] is NULL", who, i);
        if (tg__tape_of(wrt[i]) != t)
            return tg_fail(t, TG_ERR_TAPE, "%s: wrt[%d] is on another tape than the output", who, i);
        if (tg__stale(wrt[i]))
            return tg_fail(t, TG_ERR_STATE, "%s: wrt[%d] was recorded before tg_tape_reset()", who, i);
        if (!tg__needs_grad(wrt[i]))
            return tg_fail(t, TG_ERR_ARG, "%s: wrt[%d] does not want a gradient", who, i);
    }
    return TG_OK;
}

static int nomem(tg_tape *t, const char *who) {
    return tg_fail(t, TG_ERR_NOMEM, "%s: out of memory", who);
}

/* The items 0..count-1 grouped by their key in [0, keys) (a counting
 * sort): key k's are (*order)[(*start)[k] .. (*start)[k+1]). 0, or -1 when
 * memory ran out (what was allocated is the caller's to free). */
static int group(int64_t count, const int32_t *key, int keys, int64_t **order, int64_t **start) {
    *order = tg__malloc((size_t)(count ? count : 1) * sizeof **order);
    *start = tg__calloc((size_t)keys + 2, sizeof **start);
    int64_t *fill = tg__malloc(((size_t)keys + 1) * sizeof *fill);
    if (!*order || !*start || !fill) {
        tg__free(fill);
        return -1;
    }
    for (int64_t i = 0; i < count; i++) (*start)[key[i] + 1]++;
    for (int k = 0; k < keys; k++) (*start)[k + 1] += (*start)[k];
    memcpy(fill, *start, ((size_t)keys + 1) * sizeof *fill);
    for (int64_t i = 0; i < count; i++) (*order)[fill[key[i]]++] = i;
    tg__free(fill);
    return 0;
}

/* Where each nonzero is read. A Jacobian's: its own row, at its column's
 * colour (no other column of that colour meets the row). A Hessian's
 * (r, c) of the lower triangle, from the symmetric pattern sym: at row r
 * and c's colour when c is the only column of that colour in row r, else
 * at row c and r's colour, which the star colouring guarantees is. */
static int plan(tg_sparse *sp, const tg_csr *sym) {
    int64_t nnz = sp->pat.start[sp->pat.rows];
    sp->src_row = tg__malloc((size_t)(nnz ? nnz : 1) * sizeof *sp->src_row);
    sp->src_color = tg__malloc((size_t)(nnz ? nnz : 1) * sizeof *sp->src_color);
    int32_t *count = tg__calloc((size_t)sp->colors + 1, sizeof *count);
    if (!sp->src_row || !sp->src_color || !count) {
        tg__free(count);
        return nomem(sp->t, "sparse");
    }
    for (int64_t r = 0; r < sp->pat.rows; r++)
        for (int64_t q = sp->pat.start[r]; q < sp->pat.start[r + 1]; q++) {
            sp->src_row[q] = r;
            sp->src_color[q] = sp->color[sp->pat.col[q]];
        }
    if (sym) { /* count each row's colours; a repeated colour is read from the other row */
        for (int64_t r = 0; r < sym->rows; r++) {
            for (int64_t q = sym->start[r]; q < sym->start[r + 1]; q++) count[sp->color[sym->col[q]]]++;
            for (int64_t q = sp->pat.start[r]; q < sp->pat.start[r + 1]; q++) {
                int32_t c = sp->pat.col[q];
                if (c == r || count[sp->color[c]] == 1) continue;
                /* row c holds r: is r alone of its colour there? */
                int32_t again = 0;
                for (int64_t s = sym->start[c]; s < sym->start[c + 1]; s++)
                    again += sp->color[sym->col[s]] == sp->color[r] && sym->col[s] != c;
                if (again != 1) {
                    tg__free(count);
                    return tg_fail(sp->t, TG_ERR_STATE,
                                   "sparse: entry (%lld, %d) cannot be recovered from the "
                                   "colouring (an internal error)", (long long)r, (int)c);
                }
                sp->src_row[q] = c;
                sp->src_color[q] = sp->color[r];
            }
            for (int64_t q = sym->start[r]; q < sym->start[r + 1]; q++) count[sp->color[sym->col[q]]] = 0;
        }
    }
    tg__free(count);
    return group(nnz, sp->src_color, sp->colors, &sp->by_src, &sp->src_start)
               ? nomem(sp->t, "sparse") : TG_OK;
}

/* The most nonzeros in a row. */
static int64_t max_row(const tg_csr *m) {
    int64_t most = 0;
    for (int64_t r = 0; r < m->rows; r++)
        if (m->start[r + 1] - m->start[r] > most) most = m->start[r + 1] - m->start[r];
    return most;
}

/* The lower triangle (col <= row) of a square pattern. */
static int lower_of(const tg_csr *sym, tg_csr *out) {
    *out = (tg_csr){.rows = sym->rows, .cols = sym->cols};
    int64_t nnz = 0;
    for (int64_t r = 0; r < sym->rows; r++)
        for (int64_t q = sym->start[r]; q < sym->start[r + 1]; q++) nnz += sym->col[q] <= r;
    out->start = tg__malloc(((size_t)sym->rows + 1) * sizeof *out->start);
    out->col = tg__malloc((size_t)(nnz ? nnz : 1) * sizeof *out->col);
    if (!out->start || !out->col) {
        tg__csr_free(out);
        return -1;
    }
    int64_t at = 0;
    out->start[0] = 0;
    for (int64_t r = 0; r < sym->rows; r++) {
        for (int64_t q = sym->start[r]; q < sym->start[r + 1]; q++)
            if (sym->col[q] <= r) out->col[at++] = sym->col[q];
        out->start[r + 1] = at;
    }
    return 0;
}

/* Rows of B: element e of ys[o]. */
static int map_rows(tg_sparse *sp, tg_node *const *ys) {
    int64_t rows = sp->kind == KIND_JACOBIAN ? sp->pat.rows : sp->pat.cols;
    sp->row_node = tg__malloc((size_t)(rows ? rows : 1) * sizeof *sp->row_node);
    sp->row_elem = tg__malloc((size_t)(rows ? rows : 1) * sizeof *sp->row_elem);
    if (!sp->row_node || !sp->row_elem) return -1;
    int64_t r = 0;
    for (int o = 0; o < sp->m; o++)
        for (int64_t e = 0; e < tg_numel(ys[o]); e++, r++) {
            sp->row_node[r] = o;
            sp->row_elem[r] = e;
        }
    return 0;
}

/* Records the tangents of ys along k direction inputs. */
static int record_directions(tg_sparse *sp, tg_node *const *ys) {
    tg_tape *t = sp->t;
    int n = sp->n;
    sp->k = sp->colors <= ALL_AT_ONCE ? sp->colors : BLOCK;
    sp->from = t->nnodes;
    if (!sp->k) return TG_OK;
    sp->v = tg__malloc(sizeof *sp->v * (size_t)n * (size_t)sp->k);
    sp->jv = tg__malloc(sizeof *sp->jv * (size_t)sp->m * (size_t)sp->k);
    sp->base = tg__malloc(sizeof *sp->base * (size_t)sp->m);
    sp->f64 = tg__malloc((size_t)sp->m);
    if (!sp->v || !sp->jv || !sp->base || !sp->f64) return nomem(t, "sparse");
    for (int j = 0; j < sp->k; j++)
        for (int i = 0; i < n; i++) {
            int64_t shape[TG_MAX_DIMS];
            int nd = tg_shape(sp->wrt[i], shape);
            sp->v[j * n + i] = tg_input(t, tg_node_dtype(sp->wrt[i]), nd, shape, NULL);
        }
    if (t->status) return t->status;
    return tg__tangents(sp->m, ys, n, sp->wrt, sp->k, sp->v, sp->jv);
}

/* Everything after the pattern: colouring, plan, directions. sym: the
 * symmetric pattern of a Hessian (NULL for a Jacobian). */
static int finish(tg_sparse *sp, tg_node *const *ys, const tg_csr *sym, const char *who) {
    tg_tape *t = sp->t;
    const tg_csr *graph = sym ? sym : &sp->pat;
    sp->max_row = max_row(graph);
    sp->color = tg__malloc((size_t)(graph->cols ? graph->cols : 1) * sizeof *sp->color);
    if (!sp->color) return nomem(t, who);
    sp->colors = sym ? tg__color_star(sym, sp->color) : tg__color_columns(graph, sp->color);
    if (sp->colors < 0) return nomem(t, who);
    if (!sp->pat.start[sp->pat.rows]) sp->colors = 0; /* no nonzeros: no direction */
    if (group(graph->cols, sp->color, sp->colors, &sp->by_color, &sp->color_start) ||
        map_rows(sp, ys))
        return nomem(t, who);
    if (plan(sp, sym) || record_directions(sp, ys)) return t->status;
    sp->last_pos = t->nnodes - 1;
    sp->last = tg__node_at(t, sp->last_pos);
    return TG_OK;
}

static tg_sparse *new_object(tg_tape *t, enum kind kind, int n, tg_node *const *wrt) {
    tg_sparse *sp = tg__calloc(1, sizeof *sp);
    if (sp) sp->wrt = tg__malloc(sizeof *sp->wrt * (size_t)n);
    if (!sp || !sp->wrt) {
        tg__free(sp);
        nomem(t, "sparse");
        return NULL;
    }
    memcpy(sp->wrt, wrt, sizeof *wrt * (size_t)n);
    *sp = (tg_sparse){.t = t, .kind = kind, .n = n, .wrt = sp->wrt, .m = 1};
    return sp;
}

static int done(int rc, tg_sparse *sp, tg_sparse **out) {
    if (rc) {
        tg_sparse_free(sp);
        sp = NULL;
    }
    if (out) *out = sp;
    return rc;
}

int tg_sparse_jacobian_new(tg_node *out, int n, tg_node *const *wrt, tg_sparse **sp) {
    if (sp) *sp = NULL;
    if (!out) return TG_ERR_NULL;
    tg_tape *t = tg__tape_of(out);
    int rc = check_args(t, out, n, wrt, sp, "sparse_jacobian");
    if (rc) return rc;
    tg_sparse *s = new_object(t, KIND_JACOBIAN, n, wrt);
    if (!s) return t->status;
    if (tg_numel(out) > INT32_MAX)
        return done(tg_fail(t, TG_ERR_ARG, "sparse_jacobian: %lld rows; at most 2^31 - 1",
                            (long long)tg_numel(out)), s, sp);
    rc = tg__pattern(t, 1, &out, n, wrt, &s->pat);
    if (!rc) rc = finish(s, &out, NULL, "sparse_jacobian");
    return done(rc, s, sp);
}

/* The Hessian of f, or of a Lagrangian sigma f + lambda . c with input
 * nodes for the weights. */
static int hessian_new(tg_node *f, tg_node *c, int n, tg_node *const *wrt, tg_sparse **sp,
                       enum kind kind, const char *who) {
    if (sp) *sp = NULL;
    if (!f && !c) return TG_ERR_NULL;
    tg_tape *t = tg__tape_of(f ? f : c);
    int rc = check_args(t, f ? f : c, n, wrt, sp, who);
    if (rc) return rc;
    if (f && c && tg__tape_of(c) != t)
        return tg_fail(t, TG_ERR_TAPE, "%s: c is on another tape than f", who);
    if (c && tg__stale(c))
        return tg_fail(t, TG_ERR_STATE, "%s: c was recorded before tg_tape_reset()", who);
    if (f && tg_numel(f) != 1) {
        char s[64];
        return tg_fail(t, TG_ERR_ARG, "%s: f has shape %s; it must have one element", who,
                       tg__shape_str(f, s));
    }
    tg_sparse *s = new_object(t, kind, n, wrt);
    if (!s) return t->status;
    s->m = n;
    tg_node *obj = f, *terms = NULL;
    if (kind == KIND_LAGRANGIAN) {
        if (f) {
            s->sigma = tg_input(t, tg_node_dtype(f), 0, NULL, NULL);
            obj = tg_sum(tg_mul(s->sigma, f));
        }
        if (c) {
            int64_t shape[TG_MAX_DIMS];
            int nd = tg_shape(c, shape);
            s->lambda = tg_input(t, tg_node_dtype(c), nd, shape, NULL);
            s->nlambda = tg_numel(c);
            terms = tg_sum(tg_mul(s->lambda, c));
        }
        obj = obj && terms ? tg_add(obj, terms) : obj ? obj : terms;
    }
    tg_node **g = tg__malloc(sizeof *g * (size_t)n);
    tg_csr jac = {0}, sym = {0};
    if (!g) rc = nomem(t, who);
    if (!rc) rc = tg_grad_nodes(obj, n, wrt, g);
    if (!rc) rc = tg__pattern(t, n, g, n, wrt, &jac);
    if (!rc && (tg__csr_symmetric(&jac, &sym) || lower_of(&sym, &s->pat))) rc = nomem(t, who);
    if (!rc) rc = finish(s, g, &sym, who);
    tg__free(g);
    tg__csr_free(&jac);
    tg__csr_free(&sym);
    return done(rc, s, sp);
}

int tg_sparse_hessian_new(tg_node *out, int n, tg_node *const *wrt, tg_sparse **sp) {
    if (!out) {
        if (sp) *sp = NULL;
        return TG_ERR_NULL;
    }
    return hessian_new(out, NULL, n, wrt, sp, KIND_HESSIAN, "sparse_hessian");
}

int tg_sparse_lagrangian_new(tg_node *f, tg_node *c, int n, tg_node *const *wrt,
                             tg_sparse **sp) {
    return hessian_new(f, c, n, wrt, sp, KIND_LAGRANGIAN, "sparse_lagrangian");
}

int tg_sparse_info_get(const tg_sparse *sp, tg_sparse_info *info) {
    if (!sp || !info) return TG_ERR_NULL;
    *info = (tg_sparse_info){.rows = sp->pat.rows,
                             .cols = sp->pat.cols,
                             .nnz = sp->pat.start[sp->pat.rows],
                             .row_start = sp->pat.start,
                             .col = sp->pat.col,
                             .colors = sp->colors,
                             .max_row_nnz = sp->max_row};
    return TG_OK;
}

int tg_sparse_triplets(const tg_sparse *sp, int32_t *rows, int32_t *cols) {
    if (!sp) return TG_ERR_NULL;
    if (!rows || !cols)
        return tg_fail(sp->t, TG_ERR_NULL, "sparse_triplets: %s is NULL", rows ? "cols" : "rows");
    for (int64_t r = 0; r < sp->pat.rows; r++)
        for (int64_t q = sp->pat.start[r]; q < sp->pat.start[r + 1]; q++) {
            rows[q] = (int32_t)r;
            cols[q] = sp->pat.col[q];
        }
    return sp->t->status;
}

/* Sets to x the element of direction j (one input per wrt node) standing
 * for column col. */
static void set_unit(tg_sparse *sp, int j, int64_t col, double x) {
    int i = 0;
    while (col >= tg_numel(sp->wrt[i])) col -= tg_numel(sp->wrt[i++]);
    tg_node *d = sp->v[j * sp->n + i];
    if (tg_node_dtype(d) == TG_F64)
        ((double *)tg_value(d))[col] = x;
    else
        ((float *)tg_value(d))[col] = (float)x;
}

static void set_colour(tg_sparse *sp, int j, int c, double x) {
    for (int64_t q = sp->color_start[c]; q < sp->color_start[c + 1]; q++)
        set_unit(sp, j, sp->by_color[q], x);
}

static void write_weights(tg_node *node, const double *w, int64_t count, double one) {
    void *val = tg_value(node);
    for (int64_t i = 0; i < count; i++) {
        double x = w ? w[i] : one;
        if (tg_node_dtype(node) == TG_F64)
            ((double *)val)[i] = x;
        else
            ((float *)val)[i] = (float)x;
    }
}

static int eval(tg_sparse *sp, double sigma, const double *lambda, double *values,
                const char *who) {
    tg_tape *t = sp->t;
    if (t->status) return t->status;
    if (!values) return tg_fail(t, TG_ERR_NULL, "%s: values is NULL", who);
    bool gone = t->nnodes <= sp->last_pos || tg__node_at(t, sp->last_pos) != sp->last;
    /* A tape reset and recorded again as far can hold other nodes where the
     * directions were: the writes below go only into leaves of their size. */
    for (int q = 0; q < sp->k * sp->n && !gone; q++) {
        tg_node *d = sp->v[q], *w = sp->wrt[q % sp->n];
        gone = tg__stale(d) || !tg__is_leaf(d) || tg_numel(d) != tg_numel(w) ||
               tg_node_dtype(d) != tg_node_dtype(w);
    }
    if (sp->sigma) gone |= tg__stale(sp->sigma) || !tg__is_leaf(sp->sigma) || tg_numel(sp->sigma) != 1;
    if (sp->lambda)
        gone |= tg__stale(sp->lambda) || !tg__is_leaf(sp->lambda) ||
                tg_numel(sp->lambda) != sp->nlambda;
    if (gone)
        return tg_fail(t, TG_ERR_STATE, "%s: the object's nodes are gone (the tape was reset "
                       "or rewound past them); make it again", who);
    if (sp->sigma) write_weights(sp->sigma, &sigma, 1, 0);
    if (sp->lambda) write_weights(sp->lambda, lambda, sp->nlambda, 0);
    if (!sp->k) return tg_forward(t); /* no nonzeros: only the values */
    for (int c0 = 0; c0 < sp->colors && !t->status; c0 += sp->k) {
        int end = c0 + sp->k < sp->colors ? c0 + sp->k : sp->colors;
        for (int c = c0; c < end; c++) set_colour(sp, c - c0, c, 1);
        tg__forward_from(t, c0 ? sp->from : 0); /* the first block replays the function too */
        for (int c = c0; c < end; c++) {
            set_colour(sp, c - c0, c, 0);
            for (int o = 0; o < sp->m; o++) { /* this colour's tangents, once */
                tg_node *node = sp->jv[o * sp->k + (c - c0)];
                sp->base[o] = tg_value(node);
                sp->f64[o] = tg_node_dtype(node) == TG_F64;
            }
            for (int64_t q = sp->src_start[c]; q < sp->src_start[c + 1]; q++) {
                int64_t z = sp->by_src[q], r = sp->src_row[z], e = sp->row_elem[r];
                int32_t o = sp->row_node[r];
                values[z] = (sp->f64[o] ? ((const double *)sp->base[o])[e]
                                        : (double)((const float *)sp->base[o])[e]) + 0.0;
            }
        }
    }
    return t->status;
}

int tg_sparse_eval(tg_sparse *sp, double *values) {
    if (!sp) return TG_ERR_NULL;
    return eval(sp, 1, NULL, values, "sparse_eval");
}

int tg_sparse_eval_lagrangian(tg_sparse *sp, double sigma, const double *lambda,
                              double *values) {
    if (!sp) return TG_ERR_NULL;
    static const char who[] = "sparse_eval_lagrangian";
    if (sp->kind != KIND_LAGRANGIAN)
        return tg_fail(sp->t, TG_ERR_ARG, "%s: the object is a %s, not a Lagrangian's Hessian",
                       who, sp->kind == KIND_JACOBIAN ? "Jacobian" : "Hessian");
    if (sp->lambda && !lambda) return tg_fail(sp->t, TG_ERR_NULL, "%s: lambda is NULL", who);
    return eval(sp, sigma, lambda, values, who);
}
