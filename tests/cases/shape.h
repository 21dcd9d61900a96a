/* Gradient cases and forward-value tests of the shape and indexing ops (ops/shape.c) and batched matmul (ops/linalg.c). Included by test_ops.c,
 * after its harness: see the comment above its case table.
 *
 * test_ops.c includes it with TG_TEST_OPS defined: CASES_SHAPE is a list of
 * gradient-case rows, TESTS_SHAPE a list of cmocka_unit_test() entries (each
 * item ending in a comma). test_nonfinite.c includes it with
 * TG_TEST_NONFINITE defined: REFS_SHAPE lists {name, arity, ref} rows for
 * elementwise ops (ref computes the op's definition from libm in double),
 * BUILDS_SHAPE {name, build, expect} rows for the other ops (see that file).
 *
 * The expected values are computed here by index arithmetic on flat
 * row-major arrays (unravel the output index, map it to the input's, ravel),
 * independently of the kernels' runs, strides and GEMM calls. */
#ifdef TG_TEST_OPS

/* ------------------------------------------------------------ builders -- */

static const struct {
    int axis;
    int64_t start, length;
} slice_params[] = {{0, 1, 3}, {0, 1, 2}, {1, 0, 2}, {-1, 2, 2},
                    {2, 1, 1}, {-3, 0, 3}, {0, 1, 1}, {3, 1, 2}};
static tg_node *b_slice(tg_node *const *in, int p) {
    return tg_slice(in[0], slice_params[p].axis, slice_params[p].start, slice_params[p].length);
}

static const struct {
    int n, axis;
} concat_params[] = {{2, 0}, {2, 1}, {2, -1}, {3, 1}, {3, 0}, {2, 2}};
static tg_node *b_concat(tg_node *const *in, int p) {
    return tg_concat(concat_params[p].n, in, concat_params[p].axis);
}

/* Indices with repeats, out of order. */
static const struct {
    int axis, n;
    int64_t idx[6];
} index_params[] = {{0, 5, {2, 0, 2, 3, 2}}, {0, 3, {1, 1, 0}},       {1, 4, {3, 0, 3, 3}},
                    {-1, 2, {1, 1}},         {2, 6, {2, 0, 2, 1, 0, 2}}, {1, 1, {1}},
                    {0, 2, {1, 0}}};
static tg_node *b_index_select(tg_node *const *in, int p) {
    return tg_index_select(in[0], index_params[p].axis, index_params[p].idx, index_params[p].n);
}

/* index_add: the indices (one per src row along the axis) and the target
 * length; repeats and a row never hit. */
static const struct {
    int axis;
    int64_t len, idx[6];
} index_add_params[] = {{0, 3, {2, 0, 2}}, {1, 5, {4, 0, 4, 4}}, {-1, 2, {1, 1}}, {2, 3, {0}}};
static tg_node *b_index_add(tg_node *const *in, int p) {
    return tg_index_add(in[0], index_add_params[p].axis, index_add_params[p].idx,
                        index_add_params[p].len);
}

static const struct {
    int ndim;
    int64_t shape[4];
} bcast_params[] = {{1, {3}},       {2, {2, 3}},          {2, {2, 4}},   {3, {2, 2, 3}},
                    {4, {2, 4, 3, 2}}, {2, {2, 3}},       {4, {2, 1, 3, 4}}};
static tg_node *b_broadcast_to(tg_node *const *in, int p) {
    return tg_broadcast_to(in[0], bcast_params[p].ndim, bcast_params[p].shape);
}

static const int perm_params[][4] = {{1, 0},       {2, 0, 1},    {1, 2, 0},
                                     {0, 2, 1},    {3, 1, 0, 2}, {-1, 0, 1},
                                     {0},          {0, 1, 2, 3}, {3, 2, 1, 0}};
static tg_node *b_permute(tg_node *const *in, int p) { return tg_permute(in[0], perm_params[p]); }

/* p is the diagonal offset. */
static tg_node *b_tril(tg_node *const *in, int p) { return tg_tril(in[0], p); }
static tg_node *b_triu(tg_node *const *in, int p) { return tg_triu(in[0], p); }

#define SHAPE1(op, p, nd, ...) {#op, b_##op, p, 1, {nd}, {{__VA_ARGS__}}, {ANY}}
#define TRI_CASES(op)                                                                      \
    SHAPE1(op, 0, 2, 3, 3), SHAPE1(op, 1, 2, 3, 4), SHAPE1(op, -1, 2, 4, 3),               \
    SHAPE1(op, 0, 3, 2, 3, 3), SHAPE1(op, -2, 4, 2, 1, 3, 4), SHAPE1(op, 5, 2, 3, 3),      \
    SHAPE1(op, -1, 2, 2, 3), SHAPE1(op, 2, 4, 1, 2, 4, 3)

#define CASES_SHAPE                                                                        \
    SHAPE1(slice, 0, 1, 5), SHAPE1(slice, 1, 2, 3, 4), SHAPE1(slice, 2, 2, 3, 4),          \
    SHAPE1(slice, 3, 2, 3, 4), SHAPE1(slice, 4, 4, 2, 3, 2, 3),                            \
    SHAPE1(slice, 5, 4, 2, 3, 2, 3), SHAPE1(slice, 6, 3, 2, 3, 2),                         \
    SHAPE1(slice, 7, 4, 2, 1, 2, 3),                                                       \
    {"concat", b_concat, 0, 2, {1, 1}, {{2}, {3}}, {ANY, ANY}},                            \
    {"concat", b_concat, 0, 2, {2, 2}, {{2, 3}, {1, 3}}, {ANY, ANY}},                      \
    {"concat", b_concat, 1, 2, {2, 2}, {{2, 3}, {2, 1}}, {ANY, ANY}},                      \
    {"concat", b_concat, 2, 2, {4, 4}, {{2, 1, 2, 3}, {2, 1, 2, 2}}, {ANY, ANY}},          \
    {"concat", b_concat, 3, 3, {3, 3, 3}, {{2, 1, 2}, {2, 3, 2}, {2, 2, 2}}, {ANY, ANY, ANY}}, \
    {"concat", b_concat, 4, 3, {2, 2, 2}, {{1, 2}, {2, 2}, {1, 2}}, {ANY, ANY, ANY}},      \
    {"concat", b_concat, 5, 2, {4, 4}, {{1, 2, 1, 2}, {1, 2, 3, 2}}, {ANY, ANY}},          \
    SHAPE1(index_select, 0, 1, 4), SHAPE1(index_select, 1, 2, 3, 4),                       \
    SHAPE1(index_select, 2, 2, 3, 4), SHAPE1(index_select, 3, 3, 2, 3, 2),                 \
    SHAPE1(index_select, 4, 4, 2, 1, 3, 2), SHAPE1(index_select, 5, 3, 2, 3, 2),           \
    SHAPE1(index_select, 6, 2, 2, 3),                                                      \
    SHAPE1(index_add, 0, 2, 3, 2), SHAPE1(index_add, 1, 2, 2, 4),                          \
    SHAPE1(index_add, 2, 3, 2, 3, 2), SHAPE1(index_add, 3, 4, 2, 1, 1, 2),                 \
    SHAPE1(broadcast_to, 0, 0, 0), SHAPE1(broadcast_to, 1, 1, 3),                          \
    SHAPE1(broadcast_to, 2, 2, 2, 1), SHAPE1(broadcast_to, 3, 2, 1, 3),                    \
    SHAPE1(broadcast_to, 4, 4, 2, 1, 3, 1), SHAPE1(broadcast_to, 5, 2, 2, 3),              \
    SHAPE1(broadcast_to, 6, 2, 3, 1),                                                      \
    SHAPE1(permute, 0, 2, 2, 3), SHAPE1(permute, 1, 3, 2, 3, 4),                           \
    SHAPE1(permute, 2, 3, 2, 3, 4), SHAPE1(permute, 3, 3, 2, 3, 2),                        \
    SHAPE1(permute, 4, 4, 2, 3, 1, 2), SHAPE1(permute, 5, 3, 2, 3, 4),                     \
    SHAPE1(permute, 6, 1, 4), SHAPE1(permute, 7, 4, 2, 1, 2, 3),                           \
    SHAPE1(permute, 8, 4, 2, 2, 1, 3),                                                     \
    TRI_CASES(tril), TRI_CASES(triu),                                                      \
    {"matmul", b_matmul, 0, 2, {3, 3}, {{2, 2, 3}, {2, 3, 4}}, {ANY, ANY}},                \
    {"matmul", b_matmul, 0, 2, {2, 3}, {{2, 3}, {3, 3, 2}}, {ANY, ANY}},                   \
    {"matmul", b_matmul, 0, 2, {3, 2}, {{2, 2, 3}, {3, 4}}, {ANY, ANY}},                   \
    {"matmul", b_matmul, 0, 2, {3, 3}, {{1, 2, 3}, {2, 3, 2}}, {ANY, ANY}},                \
    {"matmul", b_matmul, 0, 2, {3, 3}, {{3, 2, 3}, {1, 3, 2}}, {ANY, ANY}},                \
    {"matmul", b_matmul, 0, 2, {4, 3}, {{2, 1, 2, 3}, {3, 3, 2}}, {ANY, ANY}},             \
    {"matmul", b_matmul, 0, 2, {4, 4}, {{2, 3, 2, 3}, {2, 3, 3, 1}}, {ANY, ANY}},          \
    {"matmul", b_matmul, 0, 2, {4, 2}, {{2, 2, 2, 3}, {3, 2}}, {ANY, ANY}},                \
    {"matmul", b_matmul, 0, 2, {2, 4}, {{2, 3}, {2, 1, 3, 2}}, {ANY, ANY}},

/* ------------------------------------------------- index arithmetic -- */

/* The multi-index of flat position o in shape[0..nd). */
static void sh_unravel(int64_t o, int nd, const int64_t *shape, int64_t *ix) {
    for (int i = nd - 1; i >= 0; i--) {
        ix[i] = o % shape[i];
        o /= shape[i];
    }
}

static int64_t sh_ravel(int nd, const int64_t *shape, const int64_t *ix) {
    int64_t o = 0;
    for (int i = 0; i < nd; i++) o = o * shape[i] + ix[i];
    return o;
}

/* A tensor of shape with distinct values v[i] = 0.25 i - 3 (exact in float). */
static tg_node *sh_ramp(tg_tape *t, tg_dtype dt, int nd, const int64_t *shape, double *v) {
    int64_t n = numel_of(nd, shape);
    for (int64_t i = 0; i < n; i++) v[i] = 0.25 * (double)i - 3;
    return tg_reshape(vec(t, dt, n, v), nd, shape);
}

static void sh_expect_shape(tg_node *y, int nd, const int64_t *shape, const char *what) {
    int64_t got[4];
    if (tg_shape(y, got) != nd) fail_msg("%s: %d dimensions, want %d", what, tg_ndim(y), nd);
    for (int i = 0; i < nd; i++)
        if (got[i] != shape[i])
            fail_msg("%s: dimension %d is %lld, want %lld", what, i, (long long)got[i],
                     (long long)shape[i]);
}

/* ------------------------------------------------------ forward values -- */

/* slice along each axis of [2,3,4], and of a 4-D tensor. */
static void test_shape_slice(void **state) {
    (void)state;
    static const struct {
        int nd;
        int64_t shape[4];
        int axis;
        int64_t start, length;
    } c[] = {{3, {2, 3, 4}, 0, 1, 1}, {3, {2, 3, 4}, 1, 1, 2}, {3, {2, 3, 4}, 2, 0, 3},
             {3, {2, 3, 4}, -1, 3, 1}, {3, {2, 3, 4}, -2, 0, 3}, {4, {2, 3, 2, 3}, 3, 1, 2},
             {1, {5}, 0, 2, 3}};
    tg_tape *t = tg_tape_new();
    double v[64], want[64];
    for (int dt = 0; dt < 2; dt++)
        for (size_t k = 0; k < sizeof c / sizeof *c; k++) {
            int nd = c[k].nd, ax = c[k].axis < 0 ? c[k].axis + nd : c[k].axis;
            tg_node *x = sh_ramp(t, (tg_dtype)dt, nd, c[k].shape, v);
            int64_t os[4], ix[4];
            memcpy(os, c[k].shape, sizeof os);
            os[ax] = c[k].length;
            for (int64_t o = 0; o < numel_of(nd, os); o++) {
                sh_unravel(o, nd, os, ix);
                ix[ax] += c[k].start;
                want[o] = v[sh_ravel(nd, c[k].shape, ix)];
            }
            tg_node *y = tg_slice(x, c[k].axis, c[k].start, c[k].length);
            sh_expect_shape(y, nd, os, "slice");
            expect_values(y, want, numel_of(nd, os), 0, "slice");
        }
    tg_tape_free(t);
}

/* concat of 2, 3 and 5 inputs along each axis. */
static void test_shape_concat(void **state) {
    (void)state;
    static const struct {
        int n, nd, axis;
        int64_t len[5]; /* the inputs' extents along the axis */
        int64_t shape[4]; /* the other extents */
    } c[] = {{2, 2, 0, {1, 2}, {0, 3}},       {2, 2, 1, {2, 1}, {2, 0}},
             {3, 3, 1, {1, 3, 2}, {2, 0, 2}}, {5, 1, 0, {1, 2, 1, 3, 2}, {0}},
             {3, 4, -1, {2, 1, 3}, {2, 1, 2, 0}}, {2, 3, 0, {1, 1}, {0, 2, 2}}};
    tg_tape *t = tg_tape_new();
    for (int dt = 0; dt < 2; dt++)
        for (size_t k = 0; k < sizeof c / sizeof *c; k++) {
            int nd = c[k].nd, ax = c[k].axis < 0 ? c[k].axis + nd : c[k].axis;
            double v[5][48], want[256];
            int64_t shapes[5][4], os[4], ix[4] = {0};
            tg_node *in[5];
            memcpy(os, c[k].shape, sizeof os);
            os[ax] = 0;
            for (int i = 0; i < c[k].n; i++) {
                memcpy(shapes[i], c[k].shape, sizeof os);
                shapes[i][ax] = c[k].len[i];
                os[ax] += c[k].len[i];
                in[i] = sh_ramp(t, (tg_dtype)dt, nd, shapes[i], v[i]);
                for (int64_t e = 0; e < numel_of(nd, shapes[i]); e++) v[i][e] += 100 * i;
                for (int64_t e = 0; e < numel_of(nd, shapes[i]); e++)
                    if (dt) ((double *)tg_value(in[i]))[e] = v[i][e];
                    else ((float *)tg_value(in[i]))[e] = (float)v[i][e];
            }
            /* Output position o: find the input whose range holds ix[ax]. */
            for (int64_t o = 0; o < numel_of(nd, os); o++) {
                sh_unravel(o, nd, os, ix);
                int i = 0;
                while (ix[ax] >= c[k].len[i]) ix[ax] -= c[k].len[i++];
                want[o] = v[i][sh_ravel(nd, shapes[i], ix)];
            }
            tg_node *y = tg_concat(c[k].n, in, c[k].axis);
            sh_expect_shape(y, nd, os, "concat");
            expect_values(y, want, numel_of(nd, os), 0, "concat");
        }
    /* One input is returned as it is. */
    tg_node *x = tg_scalar(t, 1);
    tg_node *one[1] = {tg_reshape(x, 1, (const int64_t[]){1})};
    assert_ptr_equal(tg_concat(1, one, 0), one[0]);
    assert_int_equal(tg_status(t), TG_OK);
    tg_tape_free(t);
}

/* index_select with repeated indices along each axis, and its gradient: a
 * repeated index receives the sum of its rows' gradients. */
static void test_shape_index_select(void **state) {
    (void)state;
    static const struct {
        int nd;
        int64_t shape[4];
        int axis, n;
        int64_t idx[6];
    } c[] = {{2, {3, 2}, 0, 4, {2, 0, 2, 2}},   {2, {3, 4}, 1, 5, {3, 3, 0, 1, 3}},
             {3, {2, 3, 2}, -1, 3, {1, 0, 1}},  {3, {2, 3, 2}, 1, 6, {2, 2, 1, 0, 2, 2}},
             {4, {2, 1, 3, 2}, 2, 2, {0, 0}},   {1, {4}, 0, 3, {3, 3, 3}}};
    tg_tape *t = tg_tape_new();
    for (int dt = 0; dt < 2; dt++)
        for (size_t k = 0; k < sizeof c / sizeof *c; k++) {
            int nd = c[k].nd, ax = c[k].axis < 0 ? c[k].axis + nd : c[k].axis;
            double v[64], want[128], gwant[64] = {0};
            tg_node *x = tg_tensor(t, (tg_dtype)dt, nd, c[k].shape, NULL);
            tg_node *xr = sh_ramp(t, (tg_dtype)dt, nd, c[k].shape, v);
            memcpy(tg_value(x), tg_value(xr), (size_t)numel_of(nd, c[k].shape) * (dt ? 8 : 4));
            int64_t os[4], ix[4];
            memcpy(os, c[k].shape, sizeof os);
            os[ax] = c[k].n;
            /* gradient of sum(w * y), w[o] = o + 1: x's element receives w of
             * every output position that copied it */
            for (int64_t o = 0; o < numel_of(nd, os); o++) {
                sh_unravel(o, nd, os, ix);
                ix[ax] = c[k].idx[ix[ax]];
                want[o] = v[sh_ravel(nd, c[k].shape, ix)];
                gwant[sh_ravel(nd, c[k].shape, ix)] += (double)(o + 1);
            }
            tg_node *y = tg_index_select(x, c[k].axis, c[k].idx, c[k].n);
            sh_expect_shape(y, nd, os, "index_select");
            expect_values(y, want, numel_of(nd, os), 0, "index_select");
            double w64[128];
            float w32[128];
            for (int64_t o = 0; o < numel_of(nd, os); o++)
                w32[o] = (float)(w64[o] = (double)(o + 1));
            assert_int_equal(tg_backward_seeded(y, dt ? (void *)w64 : (void *)w32), TG_OK);
            for (int64_t i = 0; i < numel_of(nd, c[k].shape); i++)
                expect_near(tg_grad_at(x, i), gwant[i], 0, "index_select gradient", i);
        }
    /* A sum of the rows picked [2,0,2,2] of a [3,2]: row 2 counts 3 times,
     * row 1 never. */
    tg_node *x = tg_tensor(t, TG_F64, 2, (const int64_t[]){3, 2}, NULL);
    assert_int_equal(tg_backward(tg_sum(tg_index_select(x, 0, (const int64_t[]){2, 0, 2, 2}, 4))),
                     TG_OK);
    const double g[6] = {1, 1, 0, 0, 3, 3};
    for (int i = 0; i < 6; i++) expect_near(tg_grad_at(x, i), g[i], 0, "repeated rows", i);
    tg_tape_free(t);
}

/* index_add against index arithmetic: each src row added into the target
 * row its index names (repeats sum, rows never named stay 0); its gradient
 * is the gather of the upstream; and it is index_select's gradient, one node
 * however often an index repeats (an embedding lookup padding with index
 * 0): x of [40, 3] with index 0 repeated r times records as many nodes for
 * r = 1000 as for r = 1, and the gradient is 2 r x[0] on row 0. */
static void test_shape_index_add(void **state) {
    (void)state;
    static const struct {
        int nd;
        int64_t shape[4]; /* src's */
        int axis;
        int64_t len, idx[6];
    } c[] = {{2, {3, 2}, 0, 4, {2, 0, 2}},  {2, {3, 4}, 1, 2, {1, 1, 0, 1}},
             {3, {2, 3, 2}, -1, 3, {2, 2}}, {1, {5}, 0, 1, {0, 0, 0, 0, 0}}};
    tg_tape *t = tg_tape_new();
    for (int dt = 0; dt < 2; dt++)
        for (size_t k = 0; k < sizeof c / sizeof *c; k++) {
            int nd = c[k].nd, ax = c[k].axis < 0 ? c[k].axis + nd : c[k].axis;
            double v[64], want[64] = {0}, gwant[64];
            tg_node *src = sh_ramp(t, (tg_dtype)dt, nd, c[k].shape, v);
            tg_node *x = tg_tensor(t, (tg_dtype)dt, nd, c[k].shape, NULL);
            memcpy(tg_value(x), tg_value(src), (size_t)numel_of(nd, c[k].shape) * (dt ? 8 : 4));
            int64_t os[4], ix[4];
            memcpy(os, c[k].shape, sizeof os);
            os[ax] = c[k].len;
            /* upstream w[o] = o + 1 on the output; src's row j gets w at idx[j] */
            for (int64_t i = 0; i < numel_of(nd, c[k].shape); i++) {
                sh_unravel(i, nd, c[k].shape, ix);
                ix[ax] = c[k].idx[ix[ax]];
                int64_t o = sh_ravel(nd, os, ix);
                want[o] += v[i];
                gwant[i] = (double)(o + 1);
            }
            tg_node *y = tg_index_add(x, c[k].axis, c[k].idx, c[k].len);
            sh_expect_shape(y, nd, os, "index_add");
            expect_values(y, want, numel_of(nd, os), 0, "index_add");
            double w64[64];
            float w32[64];
            for (int64_t o = 0; o < numel_of(nd, os); o++) w32[o] = (float)(w64[o] = (double)(o + 1));
            assert_int_equal(tg_backward_seeded(y, dt ? (void *)w64 : (void *)w32), TG_OK);
            expect_grads(x, gwant, numel_of(nd, c[k].shape), 0, "index_add gradient");
        }
    tg_tape_free(t);
    size_t nodes[2];
    const int64_t reps[2] = {1, 1000}, xs[2] = {40, 3};
    for (int r = 0; r < 2; r++) {
        t = tg_tape_new();
        double xv[120];
        for (int i = 0; i < 120; i++) xv[i] = 0.25 * i - 7;
        tg_node *x = tg_tensor(t, TG_F64, 2, xs, xv);
        int64_t *idx = calloc((size_t)reps[r], sizeof *idx); /* all 0 */
        tg_node *y = tg_index_select(x, 0, idx, reps[r]);
        tg_node *f = tg_sum(tg_mul(y, y)), *g;
        size_t before = tg_tape_size(t);
        assert_int_equal(tg_grad_nodes(f, 1, &x, &g), TG_OK);
        nodes[r] = tg_tape_size(t) - before;
        for (int i = 0; i < 120; i++)
            expect_near(tg_value_at(g, i), i < 3 ? 2.0 * (double)reps[r] * xv[i] : 0, 0,
                        "gradient through repeats", i);
        free(idx);
        tg_tape_free(t);
    }
    if (nodes[1] != nodes[0])
        fail_msg("tg_grad through index_select recorded %zu nodes for 1000 repeats, %zu for one",
                 nodes[1], nodes[0]);
}

/* An index a caller overwrites with a bad value before replay gives NaN
 * rows, not a read out of bounds; a bad slice start is clamped. */
static void test_shape_replay_guard(void **state) {
    (void)state;
    tg_tape *t = tg_tape_new();
    double v[6];
    tg_node *x = sh_ramp(t, TG_F64, 2, (const int64_t[]){3, 2}, v);
    tg_node *y = tg_index_select(x, 0, (const int64_t[]){1, 2}, 2);
    tg_node *s = tg_slice(x, 0, 1, 2);
    assert_int_equal(tg_status(t), TG_OK);
    ((double *)tg_value(tg_node_input(y, 1)))[1] = 3;
    ((double *)tg_value(tg_node_input(s, 1)))[0] = 1e9;
    assert_int_equal(tg_forward(t), TG_OK);
    expect_values(y, (const double[]){v[2], v[3], NAN, NAN}, 4, 0, "index_select bad index");
    expect_values(s, (const double[]){v[2], v[3], v[4], v[5]}, 4, 0, "slice clamped start");
    tg_tape_free(t);
}

/* broadcast_to, and its gradient summed over the broadcast dimensions. */
static void test_shape_broadcast_to(void **state) {
    (void)state;
    static const struct {
        int nd, ond;
        int64_t shape[4], oshape[4];
    } c[] = {{0, 2, {0}, {2, 3}},         {1, 2, {3}, {2, 3}},         {2, 3, {2, 1}, {3, 2, 4}},
             {2, 4, {3, 1}, {2, 1, 3, 4}}, {4, 4, {2, 1, 3, 1}, {2, 4, 3, 2}},
             {2, 2, {2, 3}, {2, 3}}};
    tg_tape *t = tg_tape_new();
    for (int dt = 0; dt < 2; dt++)
        for (size_t k = 0; k < sizeof c / sizeof *c; k++) {
            int nd = c[k].nd, ond = c[k].ond;
            double v[8], want[64], gwant[8] = {0};
            tg_node *xr = sh_ramp(t, (tg_dtype)dt, nd, c[k].shape, v);
            tg_node *x = tg_tensor(t, (tg_dtype)dt, nd, c[k].shape, tg_value(xr));
            int64_t ix[4], jx[4];
            for (int64_t o = 0; o < numel_of(ond, c[k].oshape); o++) {
                sh_unravel(o, ond, c[k].oshape, ix);
                for (int i = 0; i < nd; i++) {
                    int64_t d = c[k].shape[i], oi = ix[ond - nd + i];
                    jx[i] = d == 1 ? 0 : oi;
                }
                int64_t src = sh_ravel(nd, c[k].shape, jx);
                want[o] = v[src];
                gwant[src] += 1;
            }
            tg_node *y = tg_broadcast_to(x, ond, c[k].oshape);
            sh_expect_shape(y, ond, c[k].oshape, "broadcast_to");
            expect_values(y, want, numel_of(ond, c[k].oshape), 0, "broadcast_to");
            assert_int_equal(tg_backward(tg_sum(y)), TG_OK);
            for (int64_t i = 0; i < numel_of(nd, c[k].shape); i++)
                expect_near(tg_grad_at(x, i), gwant[i], 0, "broadcast_to gradient", i);
        }
    tg_tape_free(t);
}

/* permute by every permutation of [2,3,4], and of 4-D and 1-D shapes. */
static void test_shape_permute(void **state) {
    (void)state;
    static const struct {
        int nd;
        int64_t shape[4];
        int perm[4];
    } c[] = {{3, {2, 3, 4}, {0, 1, 2}}, {3, {2, 3, 4}, {0, 2, 1}}, {3, {2, 3, 4}, {1, 0, 2}},
             {3, {2, 3, 4}, {1, 2, 0}}, {3, {2, 3, 4}, {2, 0, 1}}, {3, {2, 3, 4}, {2, 1, 0}},
             {3, {2, 3, 4}, {-1, -3, -2}}, {4, {2, 3, 1, 2}, {3, 1, 0, 2}},
             {4, {2, 2, 3, 2}, {1, 3, 2, 0}}, {2, {2, 3}, {1, 0}}, {1, {3}, {0}}};
    tg_tape *t = tg_tape_new();
    for (int dt = 0; dt < 2; dt++)
        for (size_t k = 0; k < sizeof c / sizeof *c; k++) {
            int nd = c[k].nd, perm[4];
            double v[32], want[32];
            tg_node *x = sh_ramp(t, (tg_dtype)dt, nd, c[k].shape, v);
            int64_t os[4], ix[4], jx[4];
            for (int i = 0; i < nd; i++) {
                perm[i] = c[k].perm[i] < 0 ? c[k].perm[i] + nd : c[k].perm[i];
                os[i] = c[k].shape[perm[i]];
            }
            for (int64_t o = 0; o < numel_of(nd, os); o++) {
                sh_unravel(o, nd, os, ix);
                for (int i = 0; i < nd; i++) jx[perm[i]] = ix[i];
                want[o] = v[sh_ravel(nd, c[k].shape, jx)];
            }
            tg_node *y = tg_permute(x, c[k].perm);
            sh_expect_shape(y, nd, os, "permute");
            expect_values(y, want, numel_of(nd, os), 0, "permute");
        }
    /* By name, permute reverses the axes (numpy.transpose's default). */
    double v[24], want[24];
    tg_node *x = sh_ramp(t, TG_F64, 3, (const int64_t[]){2, 3, 4}, v);
    for (int i = 0; i < 2; i++)
        for (int j = 0; j < 3; j++)
            for (int k = 0; k < 4; k++) want[(k * 3 + j) * 2 + i] = v[(i * 3 + j) * 4 + k];
    tg_node *y = tg_call("permute", x, NULL);
    sh_expect_shape(y, 3, (const int64_t[]){4, 3, 2}, "permute by name");
    expect_values(y, want, 24, 0, "permute by name");
    tg_tape_free(t);
}

/* tril and triu at several offsets on batches of matrices, and the masked
 * gradient. */
static void test_shape_tril_triu(void **state) {
    (void)state;
    static const struct {
        int nd;
        int64_t shape[4];
        int64_t k;
    } c[] = {{2, {3, 3}, 0},  {2, {3, 4}, 1},     {2, {4, 3}, -1},      {3, {2, 3, 3}, 0},
             {2, {3, 3}, 7},  {2, {3, 3}, -7},    {4, {2, 1, 3, 4}, -2}, {2, {2, 5}, 3},
             {2, {3, 3}, INT64_MAX}, {2, {3, 3}, INT64_MIN}};
    tg_tape *t = tg_tape_new();
    for (int dt = 0; dt < 2; dt++)
        for (size_t k = 0; k < sizeof c / sizeof *c; k++)
            for (int upper = 0; upper < 2; upper++) {
                int nd = c[k].nd;
                double v[32], want[32];
                bool keep[32];
                tg_node *xr = sh_ramp(t, (tg_dtype)dt, nd, c[k].shape, v);
                tg_node *x = tg_tensor(t, (tg_dtype)dt, nd, c[k].shape, tg_value(xr));
                int64_t ix[4];
                for (int64_t o = 0; o < numel_of(nd, c[k].shape); o++) {
                    sh_unravel(o, nd, c[k].shape, ix);
                    /* j - i compared with k in long double: no overflow at INT64_MIN */
                    long double d = (long double)ix[nd - 1] - (long double)ix[nd - 2];
                    keep[o] = upper ? d >= (long double)c[k].k : d <= (long double)c[k].k;
                    want[o] = keep[o] ? v[o] : 0;
                }
                tg_node *y = upper ? tg_triu(x, c[k].k) : tg_tril(x, c[k].k);
                expect_values(y, want, numel_of(nd, c[k].shape), 0, upper ? "triu" : "tril");
                assert_int_equal(tg_backward(tg_sum(y)), TG_OK);
                for (int64_t o = 0; o < numel_of(nd, c[k].shape); o++)
                    expect_near(tg_grad_at(x, o), keep[o], 0, "tri gradient mask", o);
            }
    /* NaN outside the band is masked to 0; inside it passes. */
    tg_node *n = tg_tril(mat(t, TG_F64, 2, 2, (const double[]){NAN, NAN, NAN, NAN}), 0);
    expect_values(n, (const double[]){NAN, 0, NAN, NAN}, 4, 0, "tril of NaN");
    tg_tape_free(t);
}

/* Batched matmul against explicit sums, with broadcasting batch dimensions. */
static void test_shape_batched_matmul(void **state) {
    (void)state;
    static const struct {
        int na, nb;
        int64_t a[4], b[4];
    } c[] = {{3, 3, {2, 2, 3}, {2, 3, 4}},       {2, 3, {2, 3}, {3, 3, 2}},
             {3, 2, {2, 2, 3}, {3, 4}},          {3, 3, {1, 2, 3}, {2, 3, 2}},
             {3, 3, {3, 2, 3}, {1, 3, 2}},       {4, 3, {2, 1, 2, 3}, {3, 3, 2}},
             {4, 4, {2, 3, 2, 3}, {2, 3, 3, 1}}, {4, 2, {2, 2, 2, 3}, {3, 2}},
             {2, 4, {2, 3}, {2, 1, 3, 2}},       {4, 4, {1, 3, 2, 2}, {2, 1, 2, 3}}};
    tg_tape *t = tg_tape_new();
    for (int dt = 0; dt < 2; dt++)
        for (size_t k = 0; k < sizeof c / sizeof *c; k++) {
            int na = c[k].na, nb = c[k].nb, nd = na > nb ? na : nb;
            double va[96], vb[96], want[256];
            tg_node *a = sh_ramp(t, (tg_dtype)dt, na, c[k].a, va);
            tg_node *b = sh_ramp(t, (tg_dtype)dt, nb, c[k].b, vb);
            /* shapes padded to nd on the left with 1 */
            int64_t pa[4] = {0}, pb[4] = {0}, os[4], ix[4], ia[4], ib[4];
            for (int i = 0; i < nd; i++) {
                pa[i] = i < nd - na ? 1 : c[k].a[i - (nd - na)];
                pb[i] = i < nd - nb ? 1 : c[k].b[i - (nd - nb)];
                os[i] = pa[i] > pb[i] ? pa[i] : pb[i];
            }
            int64_t m = pa[nd - 2], inner = pa[nd - 1], n = pb[nd - 1];
            os[nd - 2] = m;
            os[nd - 1] = n;
            for (int64_t o = 0; o < numel_of(nd, os); o++) {
                sh_unravel(o, nd, os, ix);
                for (int i = 0; i < nd - 2; i++) {
                    ia[i] = pa[i] == 1 ? 0 : ix[i];
                    ib[i] = pb[i] == 1 ? 0 : ix[i];
                }
                double s = 0;
                for (int64_t p = 0; p < inner; p++) {
                    ia[nd - 2] = ix[nd - 2];
                    ia[nd - 1] = p;
                    ib[nd - 2] = p;
                    ib[nd - 1] = ix[nd - 1];
                    s += va[sh_ravel(nd, pa, ia)] * vb[sh_ravel(nd, pb, ib)];
                }
                want[o] = s;
            }
            tg_node *y = tg_matmul(a, b);
            sh_expect_shape(y, nd, os, "batched matmul");
            expect_values(y, want, numel_of(nd, os), dt ? 1e-14 : 1e-6, "batched matmul");
        }
    /* NaN in a[1] (batch 1, row 0) reaches row 0 of batch 1 only. */
    double va[12], vb[6];
    sh_ramp(t, TG_F64, 3, (const int64_t[]){2, 2, 3}, va);
    tg_node *b = sh_ramp(t, TG_F64, 2, (const int64_t[]){3, 2}, vb);
    va[7] = NAN;
    tg_node *y = tg_matmul(tg_input(t, TG_F64, 3, (const int64_t[]){2, 2, 3}, va), b);
    for (int i = 0; i < 8; i++)
        if (isnan(tg_value_at(y, i)) != (i == 4 || i == 5))
            fail_msg("batched matmul with NaN in a[1,0,1]: y[%d] = %g", i, tg_value_at(y, i));
    tg_tape_free(t);
}

/* ------------------------------------------------------- vjp rules -- */

/* f = sum(w * sin(y)) for y the op of a gradient case: the sine makes the
 * Hessian depend on the vjp rule (op^T diag(-w sin y) op). */
static tg_node *sh_second_order(tg_tape *t, tg_node *const *in, int n, void *ctx) {
    (void)n;
    const gcase *c = ctx;
    tg_node *y = c->build(in, c->p);
    int64_t shape[4];
    int nd = tg_shape(y, shape);
    tg_node *w = tg_input(t, TG_F64, nd, shape, NULL);
    for (int64_t i = 0; i < tg_numel(w); i++)
        ((double *)tg_value(w))[i] = 0.5 + 0.125 * (double)(i % 7);
    return tg_sum(tg_mul(w, tg_sin(y)));
}

/* Every gradient case of this file through the vjp rules: tg_grad()'s
 * gradient equals tg_backward()'s, and its derivatives (the Hessian) match
 * central differences of the gradient (tg_gradgradcheck). */
static void test_shape_vjp(void **state) {
    (void)state;
    static const gcase c[] = {CASES_SHAPE};
    tg_tape *t = tg_tape_new();
    for (size_t k = 0; k < sizeof c / sizeof *c; k++) {
        double data[MAX_IN][48];
        tg_gradcheck_input gi[MAX_IN];
        tg_node *in[MAX_IN], *g[MAX_IN];
        tg_tape_reset(t);
        for (int i = 0; i < c[k].nin; i++) {
            gi[i] = (tg_gradcheck_input){TG_F64, c[k].ndim[i], {1, 1, 1, 1}, data[i], 0};
            memcpy(gi[i].shape, c[k].shape[i], sizeof gi[i].shape);
            for (int64_t e = 0; e < numel_of(c[k].ndim[i], c[k].shape[i]); e++)
                data[i][e] = c[k].dom[i].lo + (c[k].dom[i].hi - c[k].dom[i].lo) * uniform();
            in[i] = tg_tensor(t, TG_F64, c[k].ndim[i], c[k].shape[i], data[i]);
        }
        tg_node *f = sh_second_order(t, in, c[k].nin, (void *)&c[k]);
        assert_int_equal(tg_grad(f, c[k].nin, in, g), TG_OK);
        assert_int_equal(tg_backward(f), TG_OK);
        for (int i = 0; i < c[k].nin; i++)
            for (int64_t e = 0; e < tg_numel(in[i]); e++)
                if (!(fabs(tg_value_at(g[i], e) - tg_grad_at(in[i], e)) <= 1e-14))
                    fail_msg("%s (shape case %zu): tg_grad gives %.17g, backward %.17g at input "
                             "%d [%lld]", c[k].op, k, tg_value_at(g[i], e), tg_grad_at(in[i], e),
                             i, (long long)e);
        tg_gradcheck_report rep;
        assert_int_equal(tg_gradgradcheck(sh_second_order, c[k].nin, gi, (void *)&c[k], NULL, &rep),
                         TG_OK);
        if (!rep.passed)
            fail_msg("%s (shape case %zu): second derivative of input %d [%lld]: analytic %.17g, "
                     "numeric %.17g", c[k].op, k, rep.worst.input, (long long)rep.worst.index,
                     rep.worst.analytic, rep.worst.numeric);
    }
    /* An infinite upstream gradient stays in the rows that picked it: x̄ of
     * y = x[[0, 0, 2]] under f = sum(w y), w = (inf, 1, 2), is (inf, 0, 2). */
    tg_tape_reset(t);
    tg_node *x = tg_tensor(t, TG_F64, 1, (const int64_t[]){3}, NULL), *g;
    tg_node *w = tg_input(t, TG_F64, 1, (const int64_t[]){3}, (const double[]){INFINITY, 1, 2});
    tg_node *f = tg_sum(tg_mul(w, tg_index_select(x, 0, (const int64_t[]){0, 0, 2}, 3)));
    assert_int_equal(tg_grad(f, 1, &x, &g), TG_OK);
    expect_values(g, (const double[]){INFINITY, 0, 2}, 3, 0, "index_select vjp with inf");
    tg_tape_free(t);
}

/* ---------------------------------------------------------- errors -- */

static void sh_expect_error(tg_tape *t, int code, const char *text) {
    if (tg_status(t) != code)
        fail_msg("want %s \"%s\", got %s \"%s\"", tg_status_name(code), text,
                 tg_status_name(tg_status(t)), tg_status_message(t));
    if (!strstr(tg_status_message(t), text))
        fail_msg("message \"%s\" lacks \"%s\"", tg_status_message(t), text);
    tg_tape_reset(t);
}

static void test_shape_errors(void **state) {
    (void)state;
    tg_tape *t = tg_tape_new();
    const int64_t s23[2] = {2, 3}, s33[2] = {3, 3}, s3[1] = {3}, s234[3] = {2, 3, 4};
#define X(dt, nd, ...) tg_tensor(t, dt, nd, __VA_ARGS__, NULL)
    tg_slice(X(TG_F64, 2, s23), 2, 0, 1);
    sh_expect_error(t, TG_ERR_ARG, "slice: axis 2 is out of range for [2,3]");
    tg_slice(X(TG_F64, 2, s23), 1, 2, 2);
    sh_expect_error(t, TG_ERR_ARG, "slice: start 2, length 2: outside axis 1 of [2,3]");
    tg_slice(X(TG_F64, 2, s23), -1, -1, 2);
    sh_expect_error(t, TG_ERR_ARG, "slice: start -1, length 2: outside axis -1 of [2,3]");
    tg_slice(X(TG_F32, 2, s23), 0, 0, 0);
    sh_expect_error(t, TG_ERR_ARG, "slice: start 0, length 0: outside axis 0 of [2,3]");
    tg_call("slice", X(TG_F64, 2, s23), tg_const(t, 1)); /* by name: all of axis 0 */
    sh_expect_error(t, TG_ERR_ARG, "slice: start 1, length 2: outside axis 0 of [2,3]");
    tg_call("slice", X(TG_F64, 2, s23), tg_const(t, 0.5));
    sh_expect_error(t, TG_ERR_ARG, "slice: start 0.5 is not an integer");
    tg_call("slice", X(TG_F64, 2, s23), X(TG_F64, 1, s3));
    sh_expect_error(t, TG_ERR_ARG, "slice: start must have one element, got [3]");
    tg_call("slice", tg_const(t, 1), tg_const(t, 0));
    sh_expect_error(t, TG_ERR_ARG, "slice: axis 0 is out of range for []");

    tg_concat(2, (tg_node *[]){X(TG_F64, 2, s23), X(TG_F64, 2, s33)}, 1);
    sh_expect_error(t, TG_ERR_SHAPE, "concat: input 0 [2,3] and input 1 [3,3] differ off axis 1");
    tg_concat(3, (tg_node *[]){X(TG_F64, 2, s23), X(TG_F64, 2, s23), X(TG_F64, 1, s3)}, 0);
    sh_expect_error(t, TG_ERR_SHAPE, "concat: input 0 [2,3] and input 2 [3] differ off axis 0");
    tg_concat(2, (tg_node *[]){X(TG_F64, 2, s23), X(TG_F32, 2, s23)}, 0);
    sh_expect_error(t, TG_ERR_DTYPE, "concat: float64 [2,3] and float32 [2,3]: dtypes differ");
    tg_concat(2, (tg_node *[]){X(TG_F64, 2, s23), X(TG_F64, 2, s23)}, -3);
    sh_expect_error(t, TG_ERR_ARG, "concat: axis -3 is out of range for [2,3]");
    tg_concat(2, (tg_node *[]){X(TG_F64, 2, s23), NULL}, 0);
    sh_expect_error(t, TG_ERR_NULL, "concat: input 1 of 2 is NULL");
    assert_null(tg_concat(0, (tg_node *[]){X(TG_F64, 2, s23)}, 0));
    tg_call("concat", X(TG_F64, 2, s23), X(TG_F64, 2, (const int64_t[]){2, 2}));
    sh_expect_error(t, TG_ERR_SHAPE, "concat: [2,3] and [2,2] differ off axis 0");

    tg_index_select(X(TG_F64, 2, s23), 0, (const int64_t[]){0, 1, 5}, 3);
    sh_expect_error(t, TG_ERR_ARG,
                    "index_select: index 5 (position 2) is out of range for axis 0 of [2,3]");
    tg_index_select(X(TG_F64, 2, s23), -1, (const int64_t[]){-1}, 1);
    sh_expect_error(t, TG_ERR_ARG,
                    "index_select: index -1 (position 0) is out of range for axis -1 of [2,3]");
    tg_index_select(X(TG_F64, 2, s23), 2, (const int64_t[]){0}, 1);
    sh_expect_error(t, TG_ERR_ARG, "index_select: axis 2 is out of range for [2,3]");
    tg_index_select(X(TG_F64, 2, s23), 0, (const int64_t[]){0}, 0);
    sh_expect_error(t, TG_ERR_ARG, "index_select: 0 indices into [2,3]");
    tg_index_select(X(TG_F64, 2, s23), 0, NULL, 2);
    sh_expect_error(t, TG_ERR_NULL, "index_select: indices are NULL");
    tg_call("index_select", X(TG_F64, 2, s23), X(TG_F64, 2, s23));
    sh_expect_error(t, TG_ERR_SHAPE, "index_select: indices must be 1-D, got [2,3]");
    tg_call("index_select", X(TG_F64, 2, s23), vec(t, TG_F64, 2, (const double[]){1, 2.5}));
    sh_expect_error(t, TG_ERR_ARG,
                    "index_select: index 2.5 (position 1) is out of range for axis 0");

    tg_broadcast_to(X(TG_F64, 2, s23), 2, (const int64_t[]){4, 3});
    sh_expect_error(t, TG_ERR_SHAPE,
                    "broadcast_to: [2,3] to [4,3]: dimension -2 is 2, neither 1 nor 4");
    tg_broadcast_to(X(TG_F64, 2, s23), 1, (const int64_t[]){3});
    sh_expect_error(t, TG_ERR_SHAPE, "broadcast_to: [2,3] to [3]: the target has fewer dimensions");
    tg_broadcast_to(X(TG_F64, 2, s23), 5, (const int64_t[]){1, 1, 1, 2, 3});
    sh_expect_error(t, TG_ERR_SHAPE, "broadcast_to: [2,3] to 5 dimensions");
    tg_broadcast_to(X(TG_F64, 2, s23), 2, NULL);
    sh_expect_error(t, TG_ERR_NULL, "broadcast_to: shape is NULL");

    tg_permute(X(TG_F64, 3, s234), (const int[]){0, 0, 1});
    sh_expect_error(t, TG_ERR_ARG, "permute: [2,3,4] by (0,0,1): not a permutation of its 3 axes");
    tg_permute(X(TG_F64, 2, s23), (const int[]){0, 2});
    sh_expect_error(t, TG_ERR_ARG, "permute: [2,3] by (0,2): not a permutation of its 2 axes");
    tg_permute(X(TG_F64, 2, s23), NULL);
    sh_expect_error(t, TG_ERR_NULL, "permute: perm is NULL");

    tg_tril(X(TG_F64, 1, s3), 0);
    sh_expect_error(t, TG_ERR_SHAPE, "tril: [3]: needs at least 2 dimensions");
    tg_call("triu", X(TG_F64, 2, s33), tg_const(t, 0.5));
    sh_expect_error(t, TG_ERR_ARG, "triu: diagonal offset 0.5 is not an integer");
    tg_call("tril", X(TG_F64, 2, s33), tg_const(t, NAN));
    sh_expect_error(t, TG_ERR_ARG, "tril: diagonal offset nan is not an integer");

    tg_matmul(X(TG_F64, 3, s234), X(TG_F64, 3, (const int64_t[]){3, 4, 2}));
    sh_expect_error(t, TG_ERR_SHAPE,
                    "matmul: [2,3,4] x [3,4,2]: batch dimension -3 differs (2 vs 3)");
    tg_matmul(X(TG_F64, 3, s234), X(TG_F64, 2, s33));
    sh_expect_error(t, TG_ERR_SHAPE, "matmul: [2,3,4] x [3,3]: inner dimensions differ");
    tg_matmul(X(TG_F64, 1, s3), X(TG_F64, 2, s33));
    sh_expect_error(t, TG_ERR_SHAPE, "matmul: [3] x [3,3]: both operands must be 2-D, 3-D or 4-D");

    /* float32 holds integers exactly only up to 2^24: a start beyond that
     * which it cannot hold is refused, not rounded. The buffer is never
     * touched (calloc'd pages stay unmapped). */
    const int64_t big = ((int64_t)1 << 25) + 4;
    float *mem = calloc((size_t)big, sizeof *mem);
    assert_non_null(mem);
    tg_node *v = tg_view(t, TG_F32, 1, &big, mem, NULL);
    tg_slice(v, 0, ((int64_t)1 << 24) + 1, 2);
    sh_expect_error(t, TG_ERR_ARG, "slice: start 16777217 is not exact in float32");
    v = tg_view(t, TG_F32, 1, &big, mem, NULL);
    tg_index_select(v, 0, (const int64_t[]){1}, 1);
    sh_expect_error(t, TG_ERR_ARG,
                    "index_select: axis 0 of float32 [33554436] is longer than 2^24");
    free(mem);
#undef X
    tg_tape_free(t);
}

#define TESTS_SHAPE                                                                        \
    cmocka_unit_test(test_shape_slice), cmocka_unit_test(test_shape_concat),               \
        cmocka_unit_test(test_shape_index_select), cmocka_unit_test(test_shape_index_add), \
        cmocka_unit_test(test_shape_replay_guard),                                          \
        cmocka_unit_test(test_shape_broadcast_to), cmocka_unit_test(test_shape_permute),   \
        cmocka_unit_test(test_shape_tril_triu), cmocka_unit_test(test_shape_batched_matmul), \
        cmocka_unit_test(test_shape_vjp), cmocka_unit_test(test_shape_errors),

#endif /* TG_TEST_OPS */

#ifdef TG_TEST_NONFINITE
/* None of these ops is elementwise. Inputs are filled with NaN; only tril
 * and triu keep zeros (outside their band). */
static tg_node *build_slice(tg_tape *t, tg_dtype dt, double fill) {
    return tg_slice(filled(t, dt, 2, shape_3x4, fill), 1, 1, 2);
}
static tg_node *build_concat(tg_tape *t, tg_dtype dt, double fill) {
    tg_node *in[3] = {filled(t, dt, 2, shape_3x4, fill), filled(t, dt, 2, shape_3x4, fill),
                      filled(t, dt, 2, shape_3x4, fill)};
    return tg_concat(3, in, -1);
}
static tg_node *build_index_select(tg_tape *t, tg_dtype dt, double fill) {
    return tg_index_select(filled(t, dt, 2, shape_3x4, fill), 0, (const int64_t[]){2, 0, 2}, 3);
}
static tg_node *build_index_add(tg_tape *t, tg_dtype dt, double fill) {
    return tg_index_add(filled(t, dt, 2, shape_3x4, fill), 0, (const int64_t[]){2, 0, 2}, 4);
}
static tg_node *build_broadcast_to(tg_tape *t, tg_dtype dt, double fill) {
    return tg_broadcast_to(filled(t, dt, 2, (const int64_t[]){3, 1}, fill), 3,
                           (const int64_t[]){2, 3, 4});
}
static tg_node *build_permute(tg_tape *t, tg_dtype dt, double fill) {
    return tg_permute(filled(t, dt, 3, (const int64_t[]){2, 3, 4}, fill), (const int[]){2, 0, 1});
}
static tg_node *build_tril(tg_tape *t, tg_dtype dt, double fill) {
    return tg_tril(filled(t, dt, 2, shape_3x4, fill), 0);
}
static tg_node *build_triu(tg_tape *t, tg_dtype dt, double fill) {
    return tg_triu(filled(t, dt, 3, (const int64_t[]){2, 3, 4}, fill), 1);
}
#define REFS_SHAPE
#define BUILDS_SHAPE                                                                       \
    {"slice", build_slice, NF_ALL}, {"concat", build_concat, NF_ALL},                      \
        {"index_select", build_index_select, NF_ALL},                                      \
        {"index_add", build_index_add, NF_ANY},                                             \
        {"broadcast_to", build_broadcast_to, NF_ALL}, {"permute", build_permute, NF_ALL},  \
        {"tril", build_tril, NF_ANY}, {"triu", build_triu, NF_ANY},
#endif
