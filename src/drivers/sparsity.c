/*
 * Sparsity patterns found on the recording: which elements of the outputs
 * depend on which elements of the wrt nodes.
 *
 * One forward pass over the positions between the first wrt node and the
 * last output gives every element of every node that matters a sorted set
 * of the wrt elements it depends on (index sets propagated forward, as
 * ADOL-C's jac_pat and CppAD's for_jac_sparsity do). Each op maps its
 * inputs' sets to its output's by its dependency structure, stated here per
 * family of ops: elementwise (with NumPy broadcasting), runs of a reduction
 * or a softmax, matmul's rows and columns, the moves of the shape ops. An op
 * whose structure is not stated (a loss, a user op) is taken as dense: each
 * output element depends on every element of its inputs, which is never
 * wrong, only wider. An op whose derivative is zero (comparisons, steps,
 * argmax) passes no dependence at all. A set is freed after the last
 * position that reads it, so the memory follows the recording's live width.
 */
#include "sparse_internal.h"

#include "broadcast.h"

#define TG_FAMILY(name) extern const tg_op name##_ops[]; extern const int name##_count;
#include "families.h"
#undef TG_FAMILY

void tg__csr_free(tg_csr *m) {
    if (!m) return;
    tg__free(m->start);
    tg__free(m->col);
    m->start = NULL;
    m->col = NULL;
}

/* ------------------------------------------------------------ sets -- */

/* The sets of one node's elements: element e's columns are
 * col[start[e] .. start[e+1]). start == NULL: no element depends on wrt. */
typedef struct pset {
    int64_t *start;
    int32_t *col;
    size_t numel;
} pset;

static void pset_free(pset *s) {
    tg__free(s->start);
    tg__free(s->col);
    *s = (pset){0};
}

/* Builds a node's sets element by element: add() unites an input
 * element's set into the current element (a stamp per column drops
 * repeats), next() closes it. */
typedef struct build {
    pset s;
    size_t e, len, cap;
    uint32_t *stamp, cur; /* stamp[c] == cur: column c is in the current element */
    size_t ncols;         /* entries of stamp */
    bool fail;
} build;

static bool b_start(build *b, size_t numel) {
    b->s = (pset){.numel = numel};
    b->e = b->len = 0;
    b->cap = numel > 16 ? numel : 16;
    b->s.start = tg__malloc((numel + 1) * sizeof *b->s.start);
    b->s.col = tg__malloc(b->cap * sizeof *b->s.col);
    b->fail = !b->s.start || !b->s.col;
    if (b->fail)
        pset_free(&b->s);
    else
        b->s.start[0] = 0;
    return !b->fail;
}

static void b_add(build *b, const pset *in, size_t i) {
    if (b->fail || !in || !in->start) return;
    for (int64_t q = in->start[i]; q < in->start[i + 1]; q++) {
        int32_t c = in->col[q];
        if (b->stamp[c] == b->cur) continue;
        b->stamp[c] = b->cur;
        if (b->len == b->cap) {
            int32_t *grown = tg__realloc(b->s.col, 2 * b->cap * sizeof *grown);
            if (!grown) {
                b->fail = true;
                return;
            }
            b->s.col = grown;
            b->cap *= 2;
        }
        b->s.col[b->len++] = c;
    }
}

static int cmp_i32(const void *a, const void *b) {
    int32_t x = *(const int32_t *)a, y = *(const int32_t *)b;
    return (x > y) - (x < y);
}

static void b_next(build *b) {
    if (b->fail) return;
    size_t from = (size_t)b->s.start[b->e];
    if (b->len - from > 1) qsort(b->s.col + from, b->len - from, sizeof *b->s.col, cmp_i32);
    b->s.start[++b->e] = (int64_t)b->len;
    if (++b->cur == 0) { /* the stamps wrapped: clear them */
        memset(b->stamp, 0, b->ncols * sizeof *b->stamp);
        b->cur = 1;
    }
}

/* ---------------------------------------------------------- the ops -- */

enum rule {
    RULE_ZERO,     /* derivative 0: no dependence */
    RULE_ELEM,     /* elementwise, inputs broadcast to the output */
    RULE_REDUCE,   /* output (o, i) depends on the run (o, *, i) of input 0 */
    RULE_RUN,      /* output (o, l, i) depends on the run (o, *, i) (softmax) */
    RULE_RUN_Y,    /* RULE_RUN, and on element (o, i) of input 1 (a reduction's partial) */
    RULE_MATMUL,
    RULE_TRANSPOSE,
    RULE_SAME,     /* element e on element e of input 0 (reshape, tril, triu: conservative) */
    RULE_BCAST_TO,
    RULE_PERMUTE,
    RULE_SLICE,
    RULE_CONCAT,
    RULE_INDEX_SELECT,
    RULE_INDEX_ADD,
    RULE_DENSE     /* not stated: every output element on every input element */
};

static const struct {
    const char *name;
    enum rule rule;
} named_rules[] = {
    {"matmul", RULE_MATMUL},       {"transpose", RULE_TRANSPOSE},
    {"reshape", RULE_SAME},        {"tril", RULE_SAME},
    {"triu", RULE_SAME},           {"broadcast_to", RULE_BCAST_TO},
    {"permute", RULE_PERMUTE},     {"slice", RULE_SLICE},
    {"concat", RULE_CONCAT},       {"index_select", RULE_INDEX_SELECT},
    {"index_add", RULE_INDEX_ADD}, {"softmax", RULE_RUN},
    {"log_softmax", RULE_RUN},
};

static bool in_family(const tg_op *op, const tg_op *ops, int count) {
    return op >= ops && op < ops + count;
}

static enum rule rule_of(const tg_op *op) {
    if (op->backward == tg__zero_backward || op->vjp == tg__zero_vjp) return RULE_ZERO;
    if (in_family(op, tg_unary_ops, tg_unary_count) ||
        in_family(op, tg_binary_ops, tg_binary_count) ||
        in_family(op, tg_compare_ops, tg_compare_count) ||
        in_family(op, tg_select_ops, tg_select_count) ||
        in_family(op, tg_activation_ops, tg_activation_count))
        return RULE_ELEM;
    if (in_family(op, tg_reduce_ops, tg_reduce_count))
        return tg_op_derivative_of(op, NULL) ? RULE_RUN_Y : RULE_REDUCE;
    if (in_family(op, tg_linalg_ops, tg_linalg_count) ||
        in_family(op, tg_shape_ops, tg_shape_count) ||
        in_family(op, tg_softmax_ops, tg_softmax_count))
        for (size_t i = 0; i < sizeof named_rules / sizeof *named_rules; i++)
            if (!strcmp(op->name, named_rules[i].name)) return named_rules[i].rule;
    return RULE_DENSE;
}

/* Element strides of x over y's dimensions (both padded to 4 on the left),
 * 0 where x is broadcast; false when x does not broadcast to y. */
static bool bcast_strides(const tg_arg *y, const tg_arg *x, size_t d[4], size_t s[4]) {
    size_t dx[4], step = 1;
    tg__arg_pad4(y, d);
    tg__arg_pad4(x, dx);
    if (x->ndim > 4) return false;
    for (int i = 3; i >= 0; i--) {
        if (dx[i] != 1 && dx[i] != d[i]) return false;
        s[i] = dx[i] == 1 ? 0 : step;
        step *= dx[i];
    }
    return true;
}

/* Calls the walk for each of y's elements in order with the offsets of up
 * to 3 inputs, given their strides over y's padded dimensions d. */
#define WALK(d, s, nin, ...)                                                               \
    do {                                                                                   \
        size_t off_[3];                                                                    \
        for (size_t j0 = 0; j0 < d[0]; j0++)                                               \
            for (size_t j1 = 0; j1 < d[1]; j1++)                                           \
                for (size_t j2 = 0; j2 < d[2]; j2++)                                       \
                    for (size_t j3 = 0; j3 < d[3]; j3++) {                                 \
                        for (int k_ = 0; k_ < (nin); k_++)                                 \
                            off_[k_] = j0 * s[k_][0] + j1 * s[k_][1] + j2 * s[k_][2] +      \
                                       j3 * s[k_][3];                                      \
                        __VA_ARGS__;                                                       \
                    }                                                                      \
    } while (0)

/* Integer parameter i of node p (slice's start, an index), or -1 when it is
 * not an integer in [0, limit). */
static int64_t index_at(const tg_node *p, size_t i, int64_t limit) {
    double v = tg_value_at(p, (int64_t)i);
    return v >= 0 && v < (double)limit && v == (double)(int64_t)v ? (int64_t)v : -1;
}

/* The dense rule: one union of everything, copied to each element. */
static void rule_dense(build *b, size_t numel, int m, pset *const *in) {
    build u = *b;
    if (!b_start(&u, 1)) {
        b->fail = true;
        return;
    }
    for (int k = 0; k < m; k++)
        if (in[k] && in[k]->start)
            for (size_t i = 0; i < in[k]->numel; i++) b_add(&u, in[k], i);
    b_next(&u);
    b->cur = u.cur;
    for (size_t e = 0; e < numel && !u.fail; e++) {
        b_add(b, &u.s, 0);
        b_next(b);
    }
    b->fail |= u.fail;
    pset_free(&u.s);
}

/* The sets of y (a 64-byte op node) from its inputs' sets in[0..m). */
static void rule_apply(build *b, enum rule r, tg_node *y, int m, pset *const *in) {
    size_t numel = tg__numel(y);
    tg_args a; /* y and its inputs, as views */
    tg__args_of(y, &a);
    const tg_arg *x = &a.in[0];
    switch (r) {
    case RULE_ZERO: /* handled by the caller */
    case RULE_DENSE:
        rule_dense(b, numel, m, in);
        return;
    case RULE_ELEM: {
        size_t d[4], s[3][4];
        for (int k = 0; k < m && k < 3; k++)
            if (!bcast_strides(&a.out, &a.in[k], d, s[k])) {
                rule_dense(b, numel, m, in);
                return;
            }
        WALK(d, s, m, {
            for (int k = 0; k < m; k++) b_add(b, in[k], off_[k]);
            b_next(b);
        });
        return;
    }
    case RULE_SAME:
        for (size_t e = 0; e < numel; e++) {
            b_add(b, in[0], e);
            b_next(b);
        }
        return;
    case RULE_BCAST_TO:
    case RULE_TRANSPOSE:
    case RULE_PERMUTE: {
        size_t d[4], s[1][4], xs[4], xd[4], step = 1;
        if (r == RULE_BCAST_TO) {
            if (!bcast_strides(&a.out, x, d, s[0])) {
                rule_dense(b, numel, m, in);
                return;
            }
        } else {
            int perm[4] = {0, 1, 2, 3}, nd = x->ndim;
            if (r == RULE_TRANSPOSE) {
                perm[0] = 1;
                perm[1] = 0;
            } else {
                unsigned bits = (uint8_t)y->aux;
                for (int i = 0; i < 4; i++)
                    perm[i] = (int)((bits >> (2 * i)) + (unsigned)(nd - 1 - i)) & 3;
            }
            tg__arg_pad4(&a.out, d);
            tg__arg_pad4(x, xd);
            for (int i = 3; i >= 0; i--) { /* x's own strides, by its axes */
                xs[i] = step;
                step *= xd[i];
            }
            for (int i = 0; i < 4; i++) s[0][i] = 0;
            for (int i = 0; i < nd; i++) s[0][4 - nd + i] = xs[4 - nd + perm[i]];
        }
        WALK(d, s, 1, {
            b_add(b, in[0], off_[0]);
            b_next(b);
        });
        return;
    }
    case RULE_REDUCE:
    case RULE_RUN:
    case RULE_RUN_Y: {
        tg_axis_view v = tg__arg_axis(x, y->aux);
        build u = *b; /* the union of each run, once */
        if (!b_start(&u, v.outer * v.inner)) {
            b->fail = true;
            return;
        }
        for (size_t o = 0; o < v.outer; o++)
            for (size_t i = 0; i < v.inner; i++) {
                for (size_t l = 0; l < v.len; l++) b_add(&u, in[0], (o * v.len + l) * v.inner + i);
                if (r == RULE_RUN_Y) b_add(&u, in[1], o * v.inner + i);
                b_next(&u);
            }
        b->cur = u.cur;
        if (u.fail) { /* its sets are incomplete: read none of them */
            b->fail = true;
            pset_free(&u.s);
            return;
        }
        size_t reps = r == RULE_REDUCE ? 1 : v.len;
        for (size_t o = 0; o < v.outer; o++)
            for (size_t l = 0; l < reps; l++)
                for (size_t i = 0; i < v.inner; i++) {
                    b_add(b, &u.s, o * v.inner + i);
                    b_next(b);
                }
        b->fail |= u.fail;
        pset_free(&u.s);
        return;
    }
    case RULE_MATMUL: {
        size_t dy[4], da[4], db[4];
        tg__arg_pad4(&a.out, dy);
        tg__arg_pad4(x, da);
        tg__arg_pad4(&a.in[1], db);
        size_t rows = dy[2], cols = dy[3], inner = da[3];
        for (size_t b0 = 0; b0 < dy[0]; b0++)
            for (size_t b1 = 0; b1 < dy[1]; b1++) {
                size_t ab = (da[0] == 1 ? 0 : b0) * da[1] + (da[1] == 1 ? 0 : b1);
                size_t bbat = (db[0] == 1 ? 0 : b0) * db[1] + (db[1] == 1 ? 0 : b1);
                for (size_t i = 0; i < rows; i++)
                    for (size_t j = 0; j < cols; j++) {
                        for (size_t q = 0; q < inner; q++) {
                            b_add(b, in[0], (ab * rows + i) * inner + q);
                            b_add(b, in[1], (bbat * inner + q) * cols + j);
                        }
                        b_next(b);
                    }
            }
        return;
    }
    case RULE_SLICE:
    case RULE_CONCAT:
    case RULE_INDEX_SELECT: {
        tg_axis_view v = tg__arg_axis(&a.out, y->aux);
        size_t xlen = (size_t)x->shape[y->aux];
        int64_t start = r == RULE_SLICE ? index_at(tg__in(y, 1), 0, (int64_t)xlen) : 0;
        for (size_t o = 0; o < v.outer; o++)
            for (size_t l = 0; l < v.len; l++)
                for (size_t i = 0; i < v.inner; i++) {
                    if (r == RULE_SLICE && start >= 0)
                        b_add(b, in[0], (o * xlen + (size_t)start + l) * v.inner + i);
                    else if (r == RULE_CONCAT && l < xlen)
                        b_add(b, in[0], (o * xlen + l) * v.inner + i);
                    else if (r == RULE_CONCAT)
                        b_add(b, in[1], (o * (v.len - xlen) + l - xlen) * v.inner + i);
                    else if (r == RULE_INDEX_SELECT) {
                        int64_t at = index_at(tg__in(y, 1), l, (int64_t)xlen);
                        if (at >= 0) b_add(b, in[0], (o * xlen + (size_t)at) * v.inner + i);
                    }
                    b_next(b);
                }
        return;
    }
    case RULE_INDEX_ADD: {
        /* y(o, r, i) = sum over j with idx[j] = r of src(o, j, i) */
        tg_axis_view v = tg__arg_axis(&a.out, y->aux);
        size_t slen = (size_t)x->shape[y->aux];
        tg_node *idx = tg__in(y, 1);
        for (size_t o = 0; o < v.outer; o++)
            for (size_t l = 0; l < v.len; l++)
                for (size_t i = 0; i < v.inner; i++) {
                    for (size_t j = 0; j < slen; j++)
                        if (index_at(idx, j, (int64_t)v.len) == (int64_t)l)
                            b_add(b, in[0], (o * slen + j) * v.inner + i);
                    b_next(b);
                }
        return;
    }
    }
}

/* --------------------------------------------------------- the sweep -- */

int tg__pattern(tg_tape *t, int m, tg_node *const *ys, int n, tg_node *const *wrt, tg_csr *out) {
    *out = (tg_csr){0};
    int64_t ncols = 0;
    size_t top = 0, lo = SIZE_MAX;
    for (int i = 0; i < n; i++) {
        ncols += tg_numel(wrt[i]);
        if (tg__id(wrt[i]) < lo) lo = tg__id(wrt[i]);
    }
    int64_t nrows = 0;
    for (int o = 0; o < m; o++) {
        nrows += tg_numel(ys[o]);
        if (tg__id(ys[o]) > top) top = tg__id(ys[o]);
    }
    if (ncols > INT32_MAX)
        return tg_fail(t, TG_ERR_ARG, "sparsity: %lld columns; at most 2^31 - 1",
                       (long long)ncols);
    if (lo > top) lo = top;
    size_t span = top - lo + 1;
    pset *sets = tg__calloc(span, sizeof *sets);
    int32_t *seed = tg__malloc(span * sizeof *seed), *next_seed = tg__malloc((size_t)n * sizeof *next_seed);
    int64_t *col0 = tg__malloc((size_t)n * sizeof *col0);
    uint32_t *last = tg__calloc(span, sizeof *last); /* last reader - lo, 0: none */
    unsigned char *need = tg__calloc(span, 1);       /* 1: needed, 2: kept (an output) */
    build b = {.stamp = tg__calloc((size_t)ncols + 1, sizeof(uint32_t)), .cur = 1,
               .ncols = (size_t)ncols + 1};
    out->start = tg__malloc(((size_t)nrows + 1) * sizeof *out->start);
    if (!sets || !seed || !next_seed || !col0 || !last || !need || !b.stamp || !out->start) {
        b.fail = true;
        goto done;
    }
    for (size_t p = 0; p < span; p++) seed[p] = -1;
    for (int i = 0; i < n; i++) col0[i] = i ? col0[i - 1] + tg_numel(wrt[i - 1]) : 0;
    for (int i = n - 1; i >= 0; i--) { /* each position's wrt names, in order */
        size_t p = tg__id(wrt[i]);
        if (p > top) continue; /* no output can depend on it */
        next_seed[i] = seed[p - lo];
        seed[p - lo] = i;
    }
    /* A wrt node that depends on another: the forward seeds would give the
     * derivative holding the inner one fixed, a reverse sweep the total
     * through it. Refused rather than answered one way silently. */
    for (size_t p = lo; p <= top; p++) {
        size_t in[3];
        bool dep = false;
        for (int k = 0, c = tg__inputs_of(t, p, in); k < c && !dep; k++)
            dep = in[k] >= lo && need[in[k] - lo];
        if (dep && seed[p - lo] >= 0) {
            b.fail = false;
            tg_fail(t, TG_ERR_ARG, "sparsity: wrt[%d] depends on another wrt node; name only "
                    "independent nodes", seed[p - lo]);
            goto done;
        }
        need[p - lo] = dep || seed[p - lo] >= 0; /* reused below */
    }
    memset(need, 0, span);
    for (int o = 0; o < m; o++) need[tg__id(ys[o]) - lo] = 2;
    for (size_t p = top + 1; p-- > lo;) { /* what the outputs read */
        size_t in[3];
        if (!need[p - lo] || seed[p - lo] >= 0) continue;
        for (int k = 0, c = tg__inputs_of(t, p, in); k < c; k++)
            if (in[k] >= lo) {
                if (!need[in[k] - lo]) need[in[k] - lo] = 1;
                if (!last[in[k] - lo]) last[in[k] - lo] = (uint32_t)(p - lo);
            }
    }
    for (size_t p = lo; p <= top && !b.fail; p++) {
        if (!need[p - lo]) continue;
        tg_node *y = tg__node_at(t, p);
        size_t numel = (size_t)tg_numel(y), in[3];
        if (seed[p - lo] >= 0) { /* a wrt node: its own elements' columns */
            if (!b_start(&b, numel)) break;
            for (size_t e = 0; e < numel; e++) {
                for (int i = seed[p - lo]; i >= 0; i = next_seed[i]) {
                    int32_t c = (int32_t)(col0[i] + (int64_t)e);
                    pset one = {.start = (int64_t[]){0, 1}, .col = &c, .numel = 1};
                    b_add(&b, &one, 0);
                }
                b_next(&b);
            }
            sets[p - lo] = b.s;
            continue;
        }
        int c = tg__inputs_of(t, p, in);
        pset *ins[3] = {NULL, NULL, NULL};
        bool any = false;
        for (int k = 0; k < c; k++) {
            ins[k] = in[k] >= lo && sets[in[k] - lo].start ? &sets[in[k] - lo] : NULL;
            any |= ins[k] != NULL;
        }
        const tg_op *op = any ? tg__op(tg__op_index_of(y)) : NULL;
        enum rule r = op ? rule_of(op) : RULE_SAME;
        if (any && r != RULE_ZERO) {
            if (!b_start(&b, numel)) break;
            if (tg__is_compact(y)) { /* one element of one-element inputs */
                for (int k = 0; k < c; k++) b_add(&b, ins[k], 0);
                b_next(&b);
            } else {
                rule_apply(&b, r, y, c, ins);
            }
            sets[p - lo] = b.s;
            if (b.fail) break;
        }
        for (int k = 0; k < c; k++) /* free what no later position reads */
            if (in[k] >= lo && last[in[k] - lo] == p - lo && need[in[k] - lo] != 2)
                pset_free(&sets[in[k] - lo]);
    }
    if (b.fail) goto done;
    /* the rows: the outputs' sets in order */
    size_t nnz = 0;
    for (int o = 0; o < m; o++) {
        pset *s = &sets[tg__id(ys[o]) - lo];
        if (s->start) nnz += (size_t)s->start[s->numel];
    }
    out->col = tg__malloc((nnz ? nnz : 1) * sizeof *out->col);
    if (!out->col) {
        b.fail = true;
        goto done;
    }
    out->rows = nrows;
    out->cols = ncols;
    int64_t r = 0, at = 0;
    out->start[0] = 0;
    for (int o = 0; o < m; o++) {
        pset *s = &sets[tg__id(ys[o]) - lo];
        for (int64_t e = 0; e < tg_numel(ys[o]); e++, r++) {
            if (s->start)
                for (int64_t q = s->start[e]; q < s->start[e + 1]; q++) out->col[at++] = s->col[q];
            out->start[r + 1] = at;
        }
    }
done:
    if (sets)
        for (size_t p = 0; p < span; p++) pset_free(&sets[p]);
    tg__free(sets);
    tg__free(seed);
    tg__free(next_seed);
    tg__free(col0);
    tg__free(last);
    tg__free(need);
    tg__free(b.stamp);
    if (b.fail) {
        tg__csr_free(out);
        return tg_fail(t, TG_ERR_NOMEM, "sparsity: out of memory for the pattern of %zu nodes",
                       span);
    }
    if (t->status) tg__csr_free(out);
    return t->status;
}

/* ------------------------------------------------------- transposes -- */

int tg__csr_transpose(const tg_csr *m, tg_csr *out) {
    int64_t nnz = m->start[m->rows];
    *out = (tg_csr){.rows = m->cols, .cols = m->rows};
    out->start = tg__calloc((size_t)m->cols + 1, sizeof *out->start);
    out->col = tg__malloc((size_t)(nnz ? nnz : 1) * sizeof *out->col);
    if (!out->start || !out->col) {
        tg__csr_free(out);
        return -1;
    }
    for (int64_t q = 0; q < nnz; q++) out->start[m->col[q] + 1]++;
    for (int64_t c = 0; c < m->cols; c++) out->start[c + 1] += out->start[c];
    int64_t *fill = tg__malloc(((size_t)m->cols + 1) * sizeof *fill);
    if (!fill) {
        tg__csr_free(out);
        return -1;
    }
    memcpy(fill, out->start, ((size_t)m->cols + 1) * sizeof *fill);
    for (int64_t r = 0; r < m->rows; r++) /* rows in order: each column's rows come sorted */
        for (int64_t q = m->start[r]; q < m->start[r + 1]; q++) out->col[fill[m->col[q]]++] = (int32_t)r;
    tg__free(fill);
    return 0;
}

int tg__csr_symmetric(const tg_csr *m, tg_csr *out) {
    tg_csr tr;
    *out = (tg_csr){0};
    if (tg__csr_transpose(m, &tr)) return -1;
    int64_t cap = m->start[m->rows] + tr.start[tr.rows];
    *out = (tg_csr){.rows = m->rows, .cols = m->cols};
    out->start = tg__malloc(((size_t)m->rows + 1) * sizeof *out->start);
    out->col = tg__malloc((size_t)(cap ? cap : 1) * sizeof *out->col);
    if (!out->start || !out->col) {
        tg__csr_free(out);
        tg__csr_free(&tr);
        return -1;
    }
    int64_t at = 0;
    out->start[0] = 0;
    for (int64_t r = 0; r < m->rows; r++) { /* merge two sorted rows */
        int64_t a = m->start[r], ae = m->start[r + 1], b = tr.start[r], be = tr.start[r + 1];
        while (a < ae || b < be) {
            int32_t c;
            if (b >= be || (a < ae && m->col[a] < tr.col[b]))
                c = m->col[a++];
            else if (a >= ae || tr.col[b] < m->col[a])
                c = tr.col[b++];
            else {
                c = m->col[a++];
                b++;
            }
            out->col[at++] = c;
        }
        out->start[r + 1] = at;
    }
    tg__csr_free(&tr);
    return 0;
}
