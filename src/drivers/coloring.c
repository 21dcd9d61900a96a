/*
 * Graph colourings for compressed derivative matrices: columns of a
 * Jacobian that share no row, and a star colouring of a Hessian's
 * adjacency graph, so that one forward pass per colour gives every nonzero
 * directly.
 *
 * Both are greedy, one vertex at a time taking the smallest colour its
 * already coloured neighbourhood allows, tried in two orders (the natural
 * one, best for banded patterns, and largest degree first) keeping the one
 * with fewer colours. The star colouring checks the star condition itself
 * (no path on four vertices in two colours) against every coloured path
 * through the new vertex, so it is correct by construction, whatever the
 * order: a colouring can only be wasteful, never wrong. For a vertex of
 * many neighbours, a count of its coloured neighbours by colour makes that
 * check O(1); a vertex far denser than the average (an arrowhead's hub)
 * takes a colour of its own.
 */
#include "sparse_internal.h"

/* A vertex order by decreasing weight (a counting sort; ties by index). */
static int32_t *order_by(const int64_t *weight, int64_t n) {
    int64_t top = 0;
    for (int64_t v = 0; v < n; v++)
        if (weight[v] > top) top = weight[v];
    int32_t *order = tg__malloc((size_t)(n ? n : 1) * sizeof *order);
    int64_t *count = tg__calloc((size_t)top + 2, sizeof *count);
    if (!order || !count) {
        tg__free(order);
        tg__free(count);
        return NULL;
    }
    for (int64_t v = 0; v < n; v++) count[top - weight[v] + 1]++;
    for (int64_t w = 0; w <= top; w++) count[w + 1] += count[w];
    for (int64_t v = 0; v < n; v++) order[count[top - weight[v]]++] = (int32_t)v;
    tg__free(count);
    return order;
}

/* ------------------------------------------------- Jacobian columns -- */

static int greedy_columns(const tg_csr *jac, const tg_csr *byc, const int32_t *order,
                          int32_t *color, int64_t *forbid) {
    int ncolors = 0;
    for (int64_t c = 0; c < jac->cols; c++) color[c] = -1;
    for (int64_t c = 0; c < jac->cols; c++) forbid[c] = -1;
    for (int64_t k = 0; k < jac->cols; k++) {
        int32_t v = order ? order[k] : (int32_t)k;
        for (int64_t q = byc->start[v]; q < byc->start[v + 1]; q++) {
            int32_t r = byc->col[q];
            for (int64_t s = jac->start[r]; s < jac->start[r + 1]; s++)
                if (color[jac->col[s]] >= 0) forbid[color[jac->col[s]]] = v;
        }
        int c = 0;
        while (forbid[c] == v) c++;
        color[v] = c;
        if (c + 1 > ncolors) ncolors = c + 1;
    }
    return ncolors;
}

int tg__color_columns(const tg_csr *jac, int32_t *color) {
    tg_csr byc;
    if (tg__csr_transpose(jac, &byc)) return -1;
    int64_t *weight = tg__calloc((size_t)jac->cols + 1, sizeof *weight);
    int64_t *forbid = tg__malloc(((size_t)jac->cols + 1) * sizeof *forbid);
    int32_t *other = tg__malloc(((size_t)jac->cols + 1) * sizeof *other);
    int32_t *order = NULL;
    int best = -1;
    if (weight && forbid && other) {
        for (int64_t c = 0; c < jac->cols; c++) /* columns met at distance 2, with repeats */
            for (int64_t q = byc.start[c]; q < byc.start[c + 1]; q++)
                weight[c] += jac->start[byc.col[q] + 1] - jac->start[byc.col[q]];
        order = order_by(weight, jac->cols);
    }
    if (order) {
        best = greedy_columns(jac, &byc, NULL, color, forbid);
        int lf = greedy_columns(jac, &byc, order, other, forbid);
        if (lf < best) {
            memcpy(color, other, (size_t)jac->cols * sizeof *color);
            best = lf;
        }
    }
    tg__free(weight);
    tg__free(forbid);
    tg__free(other);
    tg__free(order);
    tg__csr_free(&byc);
    return best;
}

/* ------------------------------------------------- Hessian: star -- */

/* The star check asks whether a vertex x has a coloured neighbour of a
 * given colour besides one: a scan of x's neighbours when it has at most
 * SCAN_MAX, else a look-up in a count of each such x's coloured neighbours
 * by colour, an open-addressing table of at most one key per edge end of
 * those vertices. */
#define SCAN_MAX 32
typedef struct pair_count {
    uint64_t *key; /* (x << 32 | c) + 1; 0: empty */
    int32_t *count;
    size_t mask;
    int shift; /* 64 - log2(mask + 1): the product's top bits index */
} pair_count;

static size_t slot_of(const pair_count *h, uint64_t key) {
    size_t i = (size_t)((key * 0x9e3779b97f4a7c15u) >> h->shift);
    while (h->key[i] && h->key[i] != key) i = (i + 1) & h->mask;
    return i;
}

static int32_t pair_get(const pair_count *h, int32_t x, int32_t c) {
    size_t i = slot_of(h, ((uint64_t)(uint32_t)x << 32 | (uint32_t)c) + 1);
    return h->key[i] ? h->count[i] : 0;
}

static void pair_add(pair_count *h, int32_t x, int32_t c) {
    uint64_t key = ((uint64_t)(uint32_t)x << 32 | (uint32_t)c) + 1;
    size_t i = slot_of(h, key);
    if (!h->key[i]) h->key[i] = key, h->count[i] = 0;
    h->count[i]++;
}

/* The star colouring in one order, of the vertices not marked dense (they
 * get colours of their own afterwards). Colouring v with c is refused when
 * a neighbour has c, or when some path through v on four coloured vertices
 * would alternate two colours: v at its end (v w x y: c a c a, x having
 * another neighbour of w's colour) or inside it (u v w x: a c a c, u and w
 * two neighbours of v of one colour). */
static int greedy_star(const tg_csr *g, const int32_t *order, const unsigned char *dense,
                       int32_t *color, int64_t *forbid, int64_t *count, pair_count *pairs) {
    int ncolors = 0;
    int64_t n = g->rows;
    memset(pairs->key, 0, (pairs->mask + 1) * sizeof *pairs->key);
    for (int64_t v = 0; v < n; v++) color[v] = -1;
    for (int64_t v = 0; v <= n; v++) forbid[v] = -1, count[v] = 0;
    for (int64_t k = 0; k < n; k++) {
        int32_t v = order ? order[k] : (int32_t)k;
        if (dense[v]) continue;
        const int64_t b = g->start[v], e = g->start[v + 1];
        for (int64_t q = b; q < e; q++) {
            int32_t w = g->col[q];
            if (w != v && color[w] >= 0) {
                forbid[color[w]] = v;
                count[color[w]]++;
            }
        }
        for (int64_t q = b; q < e; q++) {
            int32_t w = g->col[q], a = w != v ? color[w] : -1;
            if (a < 0) continue;
            for (int64_t r = g->start[w]; r < g->start[w + 1]; r++) {
                int32_t x = g->col[r];
                if (x == v || x == w || color[x] < 0 || forbid[color[x]] == v) continue;
                /* u v w x, or v w x y: x has a neighbour of colour a besides w */
                bool bad = count[a] >= 2;
                if (!bad && g->start[x + 1] - g->start[x] > SCAN_MAX)
                    bad = pair_get(pairs, x, a) >= 2;
                for (int64_t s = g->start[x]; s < g->start[x + 1] && !bad &&
                                              g->start[x + 1] - g->start[x] <= SCAN_MAX; s++) {
                    int32_t y = g->col[s];
                    bad = y != w && y != x && color[y] == a;
                }
                if (bad) forbid[color[x]] = v;
            }
        }
        for (int64_t q = b; q < e; q++)
            if (g->col[q] != v && color[g->col[q]] >= 0) count[color[g->col[q]]] = 0;
        int c = 0;
        while (forbid[c] == v) c++;
        color[v] = c;
        if (c + 1 > ncolors) ncolors = c + 1;
        for (int64_t q = b; q < e; q++) {
            int32_t x = g->col[q];
            if (x != v && g->start[x + 1] - g->start[x] > SCAN_MAX) pair_add(pairs, x, c);
        }
    }
    for (int64_t v = 0; v < n; v++) /* a dense vertex: a colour of its own */
        if (dense[v]) color[v] = ncolors++;
    return ncolors;
}

/* A vertex is dense when its degree passes both DENSE_MIN and DENSE_RATIO
 * times the average: an arrowhead's hub. Coloured on its own it costs one
 * colour, where the greedy pass would scan its neighbourhood once per
 * neighbour (quadratic in its degree). */
#define DENSE_MIN 64
#define DENSE_RATIO 16

int tg__color_star(const tg_csr *g, int32_t *color) {
    int64_t n = g->rows, edges = g->start[n];
    size_t cap = 16, ends = 0; /* edge ends at vertices of more than SCAN_MAX */
    int bits = 4;
    for (int64_t v = 0; v < n; v++)
        if (g->start[v + 1] - g->start[v] > SCAN_MAX) ends += (size_t)(g->start[v + 1] - g->start[v]);
    while (cap < 2 * ends + 16) cap *= 2, bits++;
    int64_t *weight = tg__malloc(((size_t)n + 1) * sizeof *weight);
    int64_t *forbid = tg__malloc(((size_t)n + 1) * sizeof *forbid);
    int64_t *count = tg__malloc(((size_t)n + 1) * sizeof *count);
    int32_t *other = tg__malloc(((size_t)n + 1) * sizeof *other);
    unsigned char *dense = tg__malloc((size_t)n + 1);
    pair_count pairs = {tg__malloc(cap * sizeof *pairs.key), tg__malloc(cap * sizeof *pairs.count),
                        cap - 1, 64 - bits};
    int32_t *order = NULL;
    int best = -1;
    if (weight && forbid && other && count && dense && pairs.key && pairs.count) {
        for (int64_t v = 0; v < n; v++) {
            weight[v] = g->start[v + 1] - g->start[v];
            dense[v] = weight[v] > DENSE_MIN && weight[v] * n > DENSE_RATIO * edges;
        }
        order = order_by(weight, n);
    }
    if (order) {
        best = greedy_star(g, NULL, dense, color, forbid, count, &pairs);
        int lf = greedy_star(g, order, dense, other, forbid, count, &pairs);
        if (lf < best) {
            memcpy(color, other, (size_t)n * sizeof *color);
            best = lf;
        }
    }
    tg__free(weight);
    tg__free(forbid);
    tg__free(count);
    tg__free(other);
    tg__free(dense);
    tg__free(pairs.key);
    tg__free(pairs.count);
    tg__free(order);
    return best;
}
