/*
 * checkpoint: save/load round trips are bit-exact; a truncated file, a
 * flipped byte, another architecture or dtype, an empty file, a directory,
 * a missing file: each refused with a clear message and the model untouched;
 * saving is atomic and leaves no temporary file behind.
 */
#define _POSIX_C_SOURCE 200809L
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <tapegrad.h>
#include <unistd.h>

#include "temp_dir.h"

static int setup(void **state) {
    (void)state;
    return temp_dir_make("ckpt");
}

static int teardown(void **state) {
    (void)state;
    return temp_dir_remove();
}

static tg_params *model(const char *sizes, tg_dtype dt, uint64_t seed) {
    tg_mlp m;
    assert_int_equal(tg_mlp_parse(&m, sizes, TG_ACT_SIGMOID, TG_ACT_SIGMOID, NULL), TG_OK);
    tg_params *ps = tg_params_new(dt);
    assert_int_equal(tg_mlp_init(ps, &m, TG_INIT_NORMAL, TG_INIT_NORMAL, seed, NULL), TG_OK);
    return ps;
}

static size_t bytes_of(const tg_params *ps) {
    return (size_t)tg_params_size(ps) * (tg_params_dtype(ps) == TG_F64 ? 8 : 4);
}

/* The names in dir other than those given. */
static int stray_files(const char *in, const char *keep1, const char *keep2) {
    DIR *d = opendir(in);
    struct dirent *e;
    int n = 0;
    while ((e = readdir(d))) {
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..")) continue;
        if ((keep1 && !strcmp(e->d_name, keep1)) || (keep2 && !strcmp(e->d_name, keep2))) continue;
        n++;
    }
    closedir(d);
    return n;
}

static void test_round_trip(void **state) {
    (void)state;
    for (int dt = 0; dt < 2; dt++) {
        tg_params *a = model("7,5,3", (tg_dtype)dt, 1), *b = model("7,5,3", (tg_dtype)dt, 2);
        assert_int_equal(tg_params_set_meta(a, "layers=7,5,3 activation=sigmoid"), TG_OK);
        tg_error e;
        const char *p = path_of("m.tgm");
        assert_int_equal(tg_checkpoint_save(a, p, &e), TG_OK);
        assert_memory_not_equal(tg_params_data(a), tg_params_data(b), bytes_of(a));
        assert_int_equal(tg_checkpoint_load(b, p, &e), TG_OK);
        assert_memory_equal(tg_params_data(a), tg_params_data(b), bytes_of(a));
        assert_string_equal(tg_params_meta(b), "layers=7,5,3 activation=sigmoid");
        tg_params *c = tg_checkpoint_read(p, &e);
        assert_non_null(c);
        assert_int_equal(tg_params_dtype(c), dt);
        assert_int_equal(tg_params_count(c), 4);
        assert_string_equal(tg_params_name(c, 2), "layer2.W");
        assert_memory_equal(tg_params_data(a), tg_params_data(c), bytes_of(a));
        tg_mlp m;
        assert_int_equal(tg_mlp_from_params(&m, c, &e), TG_OK);
        assert_true(m.nlayers == 2 && m.sizes[0] == 7 && m.sizes[1] == 5 && m.sizes[2] == 3);
        /* Saving again over the file replaces it, atomically. */
        assert_int_equal(tg_checkpoint_save(b, p, &e), TG_OK);
        assert_int_equal(stray_files(dir, "m.tgm", NULL), 0);
        tg_params_free(a);
        tg_params_free(b);
        tg_params_free(c);
    }
}

/* Loading path into a fresh model fails with code and text, and leaves the
 * model's values and meta as they were. */
static void expect_refused(const char *path, const char *sizes, tg_dtype dt, int code,
                           const char *text) {
    tg_params *ps = model(sizes, dt, 77);
    tg_params_set_meta(ps, "before");
    size_t n = bytes_of(ps);
    void *copy = malloc(n);
    memcpy(copy, tg_params_data(ps), n);
    tg_error e = {0};
    int rc = tg_checkpoint_load(ps, path, &e);
    if (rc != code || e.code != code || !strstr(e.message, text) || !strstr(e.message, path))
        fail_msg("load %s: code %d, message '%s'; wanted %d with '%s'", path, rc, e.message,
                 code, text);
    assert_memory_equal(copy, tg_params_data(ps), n);
    assert_string_equal(tg_params_meta(ps), "before");
    tg_error e2;
    if (code != TG_ERR_SHAPE && code != TG_ERR_DTYPE) /* the file itself is fine then */
        assert_null(tg_checkpoint_read(path, &e2));
    free(copy);
    tg_params_free(ps);
}

static unsigned char *slurp(const char *path, size_t *n) {
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    fseek(f, 0, SEEK_END);
    *n = (size_t)ftell(f);
    rewind(f);
    unsigned char *b = malloc(*n);
    assert_int_equal(fread(b, 1, *n, f), *n);
    fclose(f);
    return b;
}

static void spit(const char *path, const unsigned char *b, size_t n) {
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(b, 1, n, f), n);
    fclose(f);
}

static void test_bad_files(void **state) {
    (void)state;
    tg_params *a = model("7,5,3", TG_F32, 1);
    char good[256];
    strcpy(good, path_of("good.tgm"));
    assert_int_equal(tg_checkpoint_save(a, good, NULL), TG_OK);
    size_t n;
    unsigned char *b = slurp(good, &n);

    /* truncated, at several lengths */
    const size_t cuts[] = {n - 1, n / 2, 40, 20, 5};
    for (size_t i = 0; i < sizeof cuts / sizeof *cuts; i++) {
        spit(path_of("cut.tgm"), b, cuts[i]);
        expect_refused(path_of("cut.tgm"), "7,5,3", TG_F32, TG_ERR_FORMAT,
                       cuts[i] >= 8 ? "truncated" : "bad magic");
    }
    /* one flipped byte: in the data, a name, a shape, the CRC itself */
    const size_t flips[] = {n - 10, 60, 45, n - 1};
    for (size_t i = 0; i < sizeof flips / sizeof *flips; i++) {
        b[flips[i]] ^= 0x10;
        spit(path_of("flip.tgm"), b, n);
        b[flips[i]] ^= 0x10;
        expect_refused(path_of("flip.tgm"), "7,5,3", TG_F32, TG_ERR_FORMAT, "CRC32 mismatch");
    }
    /* a flipped byte in the magic, the version, the size field */
    b[1] ^= 1;
    spit(path_of("magic.tgm"), b, n);
    b[1] ^= 1;
    expect_refused(path_of("magic.tgm"), "7,5,3", TG_F32, TG_ERR_FORMAT, "bad magic");
    b[8] = 9;
    spit(path_of("version.tgm"), b, n);
    b[8] = 1;
    expect_refused(path_of("version.tgm"), "7,5,3", TG_F32, TG_ERR_FORMAT, "version 9");
    b[24] ^= 4;
    spit(path_of("size.tgm"), b, n);
    b[24] ^= 4;
    expect_refused(path_of("size.tgm"), "7,5,3", TG_F32, TG_ERR_FORMAT, "bytes");
    /* trailing bytes */
    unsigned char *longer = malloc(n + 3);
    memcpy(longer, b, n);
    memset(longer + n, 0, 3);
    spit(path_of("long.tgm"), longer, n + 3);
    expect_refused(path_of("long.tgm"), "7,5,3", TG_F32, TG_ERR_FORMAT, "corrupt");
    free(longer);

    /* another architecture, another depth, another dtype */
    expect_refused(good, "7,6,3", TG_F32, TG_ERR_SHAPE, "another architecture");
    expect_refused(good, "7,5,3,2", TG_F32, TG_ERR_SHAPE, "another architecture");
    expect_refused(good, "7,5,3", TG_F64, TG_ERR_DTYPE, "float32");

    /* empty file, directory, missing file, not a model at all */
    spit(path_of("empty.tgm"), b, 0);
    expect_refused(path_of("empty.tgm"), "7,5,3", TG_F32, TG_ERR_FORMAT, "empty file");
    expect_refused(dir, "7,5,3", TG_F32, TG_ERR_IO, "is a directory");
    expect_refused(path_of("missing.tgm"), "7,5,3", TG_F32, TG_ERR_IO, "No such file");
    spit(path_of("text.tgm"), (const unsigned char *)"layers=784,100,10\n", 18);
    expect_refused(path_of("text.tgm"), "7,5,3", TG_F32, TG_ERR_FORMAT, "not a tapegrad model");

    /* The good file still loads after all that. */
    tg_params *c = model("7,5,3", TG_F32, 3);
    assert_int_equal(tg_checkpoint_load(c, good, NULL), TG_OK);
    assert_memory_equal(tg_params_data(a), tg_params_data(c), bytes_of(a));
    tg_params_free(c);
    free(b);
    tg_params_free(a);
}

static void test_save_errors(void **state) {
    (void)state;
    tg_params *a = model("3,2", TG_F64, 1);
    tg_error e;
    assert_int_equal(tg_checkpoint_save(a, dir, &e), TG_ERR_IO);
    assert_non_null(strstr(e.message, "directory"));
    assert_int_equal(tg_checkpoint_save(a, "/nonexistent-dir/m.tgm", &e), TG_ERR_IO);
    assert_non_null(strstr(e.message, "/nonexistent-dir/m.tgm"));
    assert_int_equal(tg_checkpoint_save(a, "", &e), TG_ERR_IO);
    assert_int_equal(tg_checkpoint_save(NULL, "x", &e), TG_ERR_NULL);
    /* A failed save leaves the old file and no temporary behind. */
    char own[256];
    strcpy(own, path_of("save"));
    assert_int_equal(mkdir(own, 0755), 0);
    const char *p = path_of("save/keep.tgm");
    assert_int_equal(tg_checkpoint_save(a, p, &e), TG_OK);
    mkdir(path_of("save/sub"), 0755);
    assert_int_equal(tg_checkpoint_save(a, path_of("save/sub"), &e), TG_ERR_IO);
    assert_int_equal(stray_files(own, "keep.tgm", "sub"), 0);
    /* An empty store saves and reads back as an empty store. */
    tg_params *empty = tg_params_new(TG_F32);
    assert_int_equal(tg_checkpoint_save(empty, path_of("empty-store.tgm"), &e), TG_OK);
    tg_params *back = tg_checkpoint_read(path_of("empty-store.tgm"), &e);
    assert_non_null(back);
    assert_int_equal(tg_params_count(back), 0);
    tg_params_free(back);
    tg_params_free(empty);
    tg_params_free(a);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_round_trip),
        cmocka_unit_test(test_bad_files),
        cmocka_unit_test(test_save_errors),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
