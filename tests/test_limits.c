/*
 * Limits: absurd sizes are refused with a clear error, never attempted.
 *
 * - Shapes: a dimension of 2^40, zero or negative sizes, more than 4 or a
 *   negative number of dimensions, products that overflow 64 bits or pass
 *   TG_MAX_NUMEL, for every constructor (tg_tensor, tg_input, tg_view),
 *   tg_reshape, a user op's shape rule, axes, parameter stores, datasets
 *   and MLP sizes.
 * - Files: IDX headers claiming 2^32 - 1 images of 2^16 x 2^16 pixels, a
 *   label file promising 4 billion labels in 8 bytes, checkpoints whose
 *   header claims 2^60 bytes, 2^32 - 1 parameters or a 2^40-element shape,
 *   and a sparse 32 GiB file that is not a model at all.
 *
 * An allocator installed for the whole test records the largest request and
 * refuses anything above 256 MiB, so "refused before allocating" is checked,
 * not assumed, and a shape the library accepts but the machine cannot hold
 * ends in TG_ERR_NOMEM.
 */
#define _POSIX_C_SOURCE 200809L
#include <fcntl.h>
#include <limits.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>
#include <zlib.h>

#include "tapegrad.h"

#define CAP ((size_t)256 << 20)
static size_t largest; /* largest request since the last reset_largest() */

static void *cap_malloc(size_t n, void *ctx) {
    (void)ctx;
    if (n > largest) largest = n;
    return n > CAP ? NULL : malloc(n);
}
static void *cap_realloc(void *p, size_t n, void *ctx) {
    (void)ctx;
    if (n > largest) largest = n;
    return n > CAP ? NULL : realloc(p, n);
}
static void cap_free(void *p, void *ctx) {
    (void)ctx;
    free(p);
}

static void reset_largest(void) { largest = 0; }

/* Nothing above 2 MiB was even requested (the tape's first block is 1 MiB). */
static void assert_nothing_big(void) {
    if (largest > ((size_t)2 << 20)) fail_msg("an allocation of %zu bytes was requested", largest);
}

static void assert_status(tg_tape *t, int code, const char *who, const char *also) {
    const char *msg = tg_status_message(t);
    if (tg_status(t) != code || strncmp(msg, who, strlen(who)) || (also && !strstr(msg, also)))
        fail_msg("status %s \"%s\"; want %s naming '%s'%s%s", tg_status_name(tg_status(t)), msg,
                 tg_status_name(code), who, also ? " and " : "", also ? also : "");
}

#define G40 ((int64_t)1 << 40)

/* ---------------------------------------------------------------- shapes -- */

typedef struct bad_shape {
    int ndim;
    int64_t shape[6];
    int code;
    const char *also;
} bad_shape;

static const bad_shape bad_shapes[] = {
    {1, {G40}, TG_ERR_SHAPE, "1099511627776"},
    {2, {3, G40}, TG_ERR_SHAPE, "dimension 1"},
    {1, {0}, TG_ERR_SHAPE, "dimension 0"},
    {1, {-1}, TG_ERR_SHAPE, "-1"},
    {3, {2, -G40, 2}, TG_ERR_SHAPE, NULL},
    {1, {INT64_MIN}, TG_ERR_SHAPE, NULL},
    {1, {INT64_MAX}, TG_ERR_SHAPE, NULL},
    {5, {1, 1, 1, 1, 1}, TG_ERR_SHAPE, "5 dimensions"},
    {-1, {1}, TG_ERR_SHAPE, "-1 dimensions"},
    {INT_MAX, {1}, TG_ERR_SHAPE, "dimensions"},
    /* Products: 2^31 * 2^31 = 2^62; 2^20 four times = 2^80 (wraps to 0 in
     * 64 bits); 2^32 * 2^32 = 2^64 (wraps to 0); 3 * 2^62 (wraps). */
    {2, {(int64_t)1 << 31, (int64_t)1 << 31}, TG_ERR_SHAPE, NULL},
    {4, {1 << 20, 1 << 20, 1 << 20, 1 << 20}, TG_ERR_SHAPE, NULL},
    {2, {(int64_t)1 << 32, (int64_t)1 << 32}, TG_ERR_SHAPE, NULL},
    {2, {3, (int64_t)1 << 62}, TG_ERR_SHAPE, NULL},
    {2, {TG_MAX_NUMEL, 2}, TG_ERR_SHAPE, NULL},
    /* One past what a 32-bit size holds, alone: the limit is named. */
    {1, {(int64_t)1 << 31}, TG_ERR_SHAPE, "2147483647"},
    {2, {1, (int64_t)1 << 31}, TG_ERR_SHAPE, "2147483647"},
    {4, {2048, 2048, 2048, 2}, TG_ERR_SHAPE, NULL}, /* 2^34 */
};
#define NBAD (sizeof bad_shapes / sizeof *bad_shapes)

static void test_constructors_refuse(void **state) {
    (void)state;
    static const char *const who[3] = {"tensor", "input", "view"};
    double buf[16] = {0}, grad[16] = {0};
    for (size_t i = 0; i < NBAD; i++) {
        const bad_shape *b = &bad_shapes[i];
        for (int c = 0; c < 3; c++)
            for (int dt = TG_F32; dt <= TG_F64; dt++) {
                tg_tape *t = tg_tape_new();
                assert_non_null(t);
                reset_largest();
                tg_node *n = c == 0   ? tg_tensor(t, (tg_dtype)dt, b->ndim, b->shape, NULL)
                             : c == 1 ? tg_input(t, (tg_dtype)dt, b->ndim, b->shape, NULL)
                                      : tg_view(t, (tg_dtype)dt, b->ndim, b->shape, buf, grad);
                assert_status(t, b->code, who[c], b->also);
                assert_int_equal(tg_tape_size(t), 0);
                assert_int_equal(tg_numel(n), 1); /* the poison node */
                assert_nothing_big();
                /* Sticky: the tape refuses further work. */
                assert_int_equal(tg_status(t), b->code);
                tg_tape_free(t);
            }
    }
    /* A shape within the limits, larger than memory allows: TG_ERR_NOMEM. */
    tg_tape *t = tg_tape_new();
    const int64_t at_limit[2] = {(1 << 16) - 1, 1 << 15}; /* 2^31 - 2^15 elements */
    tg_tensor(t, TG_F64, 2, at_limit, NULL);
    assert_int_equal(tg_status(t), TG_ERR_NOMEM);
    assert_true(strstr(tg_status_message(t), "out of memory") != NULL);
    assert_int_equal(tg_tape_size(t), 0);
    tg_tape_free(t);
    /* NULL shape, unknown dtype. */
    t = tg_tape_new();
    tg_input(t, TG_F32, 2, NULL, NULL);
    assert_status(t, TG_ERR_NULL, "input", "shape");
    tg_tape_free(t);
    t = tg_tape_new();
    const int64_t s1[1] = {1};
    tg_tensor(t, (tg_dtype)42, 1, s1, NULL);
    assert_status(t, TG_ERR_DTYPE, "tensor", "42");
    tg_tape_free(t);
}

static void test_reshape_refuses(void **state) {
    (void)state;
    for (size_t i = 0; i < NBAD; i++) {
        const bad_shape *b = &bad_shapes[i];
        if (b->ndim == 1 && b->shape[0] == -1) continue; /* reshape's "infer": flattens */
        tg_tape *t = tg_tape_new();
        const int64_t s[2] = {4, 6};
        tg_node *x = tg_tensor(t, TG_F32, 2, s, NULL);
        reset_largest();
        tg_node *r = tg_reshape(x, b->ndim, b->shape);
        assert_status(t, TG_ERR_SHAPE, "reshape", "[4,6]");
        assert_int_equal(tg_tape_size(t), 1);
        assert_int_equal(tg_numel(r), 1);
        assert_nothing_big();
        tg_tape_free(t);
    }
    /* Sizes that are each fine but do not fit, two inferred sizes, an
     * inferred size with no integer solution, a NULL shape. */
    const int64_t cases[][3] = {{5, 5, 1}, {-1, -1, 1}, {-1, 7, 1}, {0, -1, 1}, {-2, 12, 1}};
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        tg_tape *t = tg_tape_new();
        const int64_t s[2] = {4, 6};
        tg_node *x = tg_tensor(t, TG_F64, 2, s, NULL);
        tg_reshape(x, 3, cases[i]);
        assert_status(t, TG_ERR_SHAPE, "reshape", NULL);
        tg_tape_free(t);
    }
    tg_tape *t = tg_tape_new();
    const int64_t s[2] = {4, 6};
    tg_reshape(tg_tensor(t, TG_F64, 2, s, NULL), 2, NULL);
    assert_int_not_equal(tg_status(t), TG_OK);
    tg_tape_free(t);
    /* The inferred size of a valid request still works. */
    t = tg_tape_new();
    const int64_t want[3] = {2, -1, 3};
    tg_node *r = tg_reshape(tg_tensor(t, TG_F64, 2, s, NULL), 3, want);
    assert_int_equal(tg_status(t), TG_OK);
    int64_t got[4];
    assert_int_equal(tg_shape(r, got), 3);
    assert_true(got[0] == 2 && got[1] == 4 && got[2] == 3);
    tg_tape_free(t);
}

/* A user op whose shape rule asks for an absurd shape gets TG_ERR_SHAPE
 * from tg_set_shape, and the op is refused. */
static int64_t rule_shape[5];
static int rule_ndim;
static int absurd_rule(tg_node *out, char *why, size_t len) {
    int rc = tg_set_shape(out, rule_ndim, rule_shape);
    if (rc) snprintf(why, len, "asked for an absurd shape");
    return rc;
}
static void copy_forward(tg_args *a) { (void)a; }
static void copy_backward(tg_args *a) { (void)a; }
static const tg_op absurd_op = {"limits_absurd", 1, absurd_rule, copy_forward, copy_backward, NULL, NULL};

static void test_shape_rule_refuses(void **state) {
    (void)state;
    int rc = tg_op_register(&absurd_op);
    assert_true(rc == TG_OK || tg_op_find("limits_absurd") == &absurd_op);
    for (size_t i = 0; i < NBAD; i++) {
        const bad_shape *b = &bad_shapes[i];
        rule_ndim = b->ndim;
        memcpy(rule_shape, b->shape, sizeof rule_shape);
        tg_tape *t = tg_tape_new();
        reset_largest();
        tg_node *x = tg_scalar(t, 1);
        tg_apply(&absurd_op, x, NULL);
        assert_status(t, TG_ERR_SHAPE, "limits_absurd", "absurd");
        assert_int_equal(tg_tape_size(t), 1);
        assert_nothing_big();
        tg_tape_free(t);
    }
    assert_int_equal(tg_set_shape(NULL, 1, rule_shape), TG_ERR_SHAPE);
}

static void test_axes_refused(void **state) {
    (void)state;
    const int axes[] = {2, -3, INT_MAX, INT_MIN, 1 << 30, 127, -128};
    for (size_t i = 0; i < sizeof axes / sizeof *axes; i++)
        for (int op = 0; op < 4; op++) {
            tg_tape *t = tg_tape_new();
            const int64_t s[2] = {3, 4};
            tg_node *x = tg_tensor(t, TG_F64, 2, s, NULL);
            static const char *const names[4] = {"sum", "mean", "softmax", "log_softmax"};
            switch (op) {
            case 0: tg_sum_axis(x, axes[i]); break;
            case 1: tg_mean_axis(x, axes[i]); break;
            case 2: tg_softmax(x, axes[i]); break;
            default: tg_log_softmax(x, axes[i]); break;
            }
            assert_status(t, TG_ERR_ARG, names[op], "axis");
            tg_tape_free(t);
        }
}

/* ------------------------------------------------------------ nn limits -- */

static void test_params_dataset_mlp_refuse(void **state) {
    (void)state;
    tg_params *ps = tg_params_new(TG_F32);
    assert_non_null(ps);
    for (size_t i = 0; i < NBAD; i++) {
        const bad_shape *b = &bad_shapes[i];
        if (b->ndim > 0 && b->ndim <= 4 && b->shape[0] == 1) continue;
        tg_error e = {0};
        reset_largest();
        int rc = tg_params_add(ps, "w", b->ndim, b->shape, &e);
        assert_int_equal(rc, TG_ERR_SHAPE);
        assert_int_equal(e.code, TG_ERR_SHAPE);
        assert_true(strstr(e.message, "params_add") && strstr(e.message, "'w'"));
        assert_int_equal(tg_params_count(ps), 0);
        assert_nothing_big();
    }
    /* Within the element limit each, but no memory for them. */
    const int64_t big[2] = {(1 << 16) - 1, 1 << 15};
    tg_error e = {0};
    assert_int_equal(tg_params_add(ps, "big", 2, big, &e), TG_ERR_NOMEM);
    assert_int_equal(tg_params_count(ps), 0);
    tg_params_free(ps);

    float x[4] = {0};
    int32_t y[2] = {0, 1};
    const struct {
        size_t n;
        int64_t d;
        int classes;
    } ds[] = {{(size_t)G40, 2, 2}, {2, G40, 2}, {2, 0, 2}, {2, -5, 2}, {2, 2, 0},
              {SIZE_MAX, 2, 2}, {(size_t)1 << 32, 2, 2}, {2, INT64_MAX, 2}};
    for (size_t i = 0; i < sizeof ds / sizeof *ds; i++) {
        tg_error de = {0};
        reset_largest();
        tg_dataset *d = tg_dataset_new(ds[i].n, ds[i].d, ds[i].classes, x, y, &de);
        assert_null(d);
        assert_int_equal(de.code, TG_ERR_ARG);
        assert_true(strstr(de.message, "dataset_new") != NULL);
        assert_nothing_big();
    }

    const char *sizes[] = {"784,1099511627776,10", "784,-5,10", "784,0,10",
                           "99999999999999999999999,10", "1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1"};
    for (size_t i = 0; i < sizeof sizes / sizeof *sizes; i++) {
        tg_mlp m;
        tg_error me = {0};
        assert_int_equal(tg_mlp_parse(&m, sizes[i], TG_ACT_SIGMOID, TG_ACT_SIGMOID, &me),
                         TG_ERR_ARG);
        assert_true(me.message[0] != '\0');
    }
}

/* ---------------------------------------------------------------- files -- */

static char dir[256];

static int setup_dir(void **state) {
    (void)state;
    const char *tmp = getenv("TMPDIR");
    snprintf(dir, sizeof dir, "%s/tg_limits_XXXXXX", tmp && *tmp ? tmp : "/tmp");
    return mkdtemp(dir) ? 0 : -1;
}

static int remove_dir(void **state) {
    (void)state;
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    return system(cmd) == 0 ? 0 : -1;
}

static const char *path_of(const char *name) {
    static char p[2][300];
    static int k;
    k ^= 1;
    snprintf(p[k], sizeof p[k], "%s/%s", dir, name);
    return p[k];
}

static void write_file(const char *path, const void *data, size_t n) {
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(data, 1, n, f), n);
    assert_int_equal(fclose(f), 0);
}

static void be32(unsigned char *p, uint32_t v) {
    p[0] = (unsigned char)(v >> 24), p[1] = (unsigned char)(v >> 16);
    p[2] = (unsigned char)(v >> 8), p[3] = (unsigned char)v;
}

/* An IDX image header: count images of rows x cols, then a few bytes. */
static void write_idx_images(const char *path, uint32_t count, uint32_t rows, uint32_t cols) {
    unsigned char b[16 + 64] = {0};
    be32(b, 0x803), be32(b + 4, count), be32(b + 8, rows), be32(b + 12, cols);
    write_file(path, b, sizeof b);
}

static void write_idx_labels(const char *path, uint32_t count, size_t present) {
    unsigned char b[8 + 64] = {0};
    be32(b, 0x801), be32(b + 4, count);
    write_file(path, b, 8 + present);
}

static void test_idx_headers_refused(void **state) {
    (void)state;
    const char *img = path_of("images"), *lab = path_of("labels");
    write_idx_labels(lab, 2, 2);
    /* 2^32 - 1 images of 2^16 x 2^16 pixels (2^64 bytes), 2^32 - 1 of
     * 28 x 28 (3.4e12 bytes), 1 of 2^32-1 x 2^32-1: refused from the
     * header, before anything near that size is allocated. */
    const uint32_t heads[][3] = {{UINT32_MAX, 1 << 16, 1 << 16},
                                 {UINT32_MAX, 28, 28},
                                 {1, UINT32_MAX, UINT32_MAX},
                                 {1 << 20, 1 << 12, 1 << 12},
                                 {0, 28, 28},
                                 {2, 0, 28}};
    for (size_t i = 0; i < sizeof heads / sizeof *heads; i++) {
        write_idx_images(img, heads[i][0], heads[i][1], heads[i][2]);
        tg_error e = {0};
        reset_largest();
        tg_dataset *ds = tg_dataset_read_idx(img, lab, 0, &e);
        assert_null(ds);
        assert_int_equal(e.code, TG_ERR_FORMAT);
        assert_true(strstr(e.message, img) != NULL);
        assert_nothing_big();
    }
    /* A plausible header whose promise the file does not keep: 4 billion
     * labels in a file of 8 bytes, one million 64 x 64 images in 80: read
     * as the bytes arrive and reported truncated, without allocating what
     * the header promises. */
    write_idx_images(img, 2, 2, 2);
    write_idx_labels(lab, UINT32_MAX, 0);
    tg_error e = {0};
    reset_largest();
    assert_null(tg_dataset_read_idx(img, lab, 0, &e));
    assert_int_equal(e.code, TG_ERR_FORMAT);
    assert_true(strstr(e.message, "truncated") && strstr(e.message, lab));
    assert_true(largest <= ((size_t)32 << 20));
    write_idx_images(img, 1000000, 64, 64);
    write_idx_labels(lab, 1000000, 0);
    reset_largest();
    assert_null(tg_dataset_read_idx(img, lab, 0, &e));
    assert_true(strstr(e.message, "truncated") && strstr(e.message, img));
    assert_true(largest <= ((size_t)32 << 20));
}

/* --------------------------------------------------------- checkpoints -- */

static void le32(unsigned char *p, uint32_t v) {
    for (int i = 0; i < 4; i++) p[i] = (unsigned char)(v >> 8 * i);
}
static void le64(unsigned char *p, uint64_t v) {
    for (int i = 0; i < 8; i++) p[i] = (unsigned char)(v >> 8 * i);
}

/* A checkpoint file as docs/formats.md lays it out: header, meta, records
 * (name, ndim, shapes), data, CRC32 of everything before it. The CRC is
 * right, so only the structure checks stand between the loader and the
 * absurd values. */
static size_t make_model(unsigned char *b, uint32_t count, uint64_t dim, uint64_t declared) {
    static const unsigned char magic[8] = {0x89, 'T', 'G', 'M', '\r', '\n', 0x1a, '\n'};
    memcpy(b, magic, 8);
    le32(b + 8, 1);  /* version */
    le32(b + 12, 0); /* float32 */
    le32(b + 16, count);
    le32(b + 20, 0); /* meta length */
    size_t p = 32;
    b[p] = 1, b[p + 1] = 0; /* name length 1 */
    b[p + 2] = 'w';
    b[p + 3] = 1, b[p + 4] = 0; /* ndim 1 */
    le64(b + p + 5, dim);
    p += 13;
    memset(b + p, 0, 4 * 4); /* data of 4 floats */
    p += 16;
    size_t size = p + 4;
    le64(b + 24, declared ? declared : size);
    le32(b + p, (uint32_t)crc32(crc32(0L, Z_NULL, 0), b, (uInt)p));
    return size;
}

static void test_checkpoint_headers_refused(void **state) {
    (void)state;
    unsigned char b[256];
    const char *model = path_of("model.tgm");
    /* The well-formed file loads: the helper writes the real format. */
    write_file(model, b, make_model(b, 1, 4, 0));
    tg_error e = {0};
    tg_params *ps = tg_checkpoint_read(model, &e);
    if (!ps) fail_msg("the reference model does not load: %s", e.message);
    assert_int_equal(tg_params_numel(ps, 0), 4);
    tg_params_free(ps);

    struct {
        uint32_t count;
        uint64_t dim, declared;
        const char *also;
    } cases[] = {
        {1, 4, (uint64_t)1 << 60, "truncated"},        /* claims 2^60 bytes */
        {UINT32_MAX, 4, 0, "parameters"},              /* 2^32 - 1 parameters */
        {1, (uint64_t)G40, 0, "shape"},                /* a 2^40-element shape */
        {1, UINT64_MAX, 0, "shape"},
        {1, 0, 0, "shape"},
        {2, 4, 0, NULL},                               /* a record missing */
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        write_file(model, b, make_model(b, cases[i].count, cases[i].dim, cases[i].declared));
        memset(&e, 0, sizeof e);
        reset_largest();
        ps = tg_checkpoint_read(model, &e);
        assert_null(ps);
        assert_int_equal(e.code, TG_ERR_FORMAT);
        assert_true(strstr(e.message, model) != NULL);
        if (cases[i].also && !strstr(e.message, cases[i].also))
            fail_msg("case %zu: \"%s\" does not mention %s", i, e.message, cases[i].also);
        assert_nothing_big();
    }
}

/* A sparse file of 32 GiB (no disk space used) that is not a model: refused
 * from its first bytes, without reading or allocating 32 GiB. */
static void test_huge_sparse_files(void **state) {
    (void)state;
    const char *big = path_of("huge.bin");
    int fd = open(big, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    assert_true(fd >= 0);
    if (ftruncate(fd, (off_t)1 << 35) != 0) {
        close(fd);
        skip(); /* a file system without sparse files */
    }
    close(fd);
    tg_error e = {0};
    reset_largest();
    tg_params *ps = tg_checkpoint_read(big, &e);
    assert_null(ps);
    if (e.code != TG_ERR_FORMAT || !strstr(e.message, big))
        fail_msg("checkpoint_read of a 32 GiB non-model: %s", e.message);
    assert_nothing_big();
    /* The same through tg_checkpoint_load into an existing store. */
    ps = tg_params_new(TG_F32);
    const int64_t s[1] = {4};
    assert_int_equal(tg_params_add(ps, "w", 1, s, NULL), TG_OK);
    reset_largest();
    assert_int_equal(tg_checkpoint_load(ps, big, &e), TG_ERR_FORMAT);
    assert_nothing_big();
    tg_params_free(ps);
    /* As an IDX file: a wrong magic number, refused at once. */
    const char *lab = path_of("labels");
    write_idx_labels(lab, 2, 2);
    reset_largest();
    assert_null(tg_dataset_read_idx(big, lab, 0, &e));
    assert_int_equal(e.code, TG_ERR_FORMAT);
    assert_true(strstr(e.message, "magic") != NULL);
    assert_nothing_big();
    unlink(big);
}

int main(void) {
    static const tg_allocator capped = {cap_malloc, cap_realloc, cap_free, NULL};
    tg_set_allocator(&capped);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_constructors_refuse),
        cmocka_unit_test(test_reshape_refuses),
        cmocka_unit_test(test_shape_rule_refuses),
        cmocka_unit_test(test_axes_refused),
        cmocka_unit_test(test_params_dataset_mlp_refuse),
        cmocka_unit_test(test_idx_headers_refused),
        cmocka_unit_test(test_checkpoint_headers_refused),
        cmocka_unit_test(test_huge_sparse_files),
    };
    return cmocka_run_group_tests(tests, setup_dir, remove_dir);
}
