/*
 * data: the IDX and CSV readers on small files written here, gzipped and
 * plain; every bad file refused with a message naming it and the problem;
 * one-hot gathering, splits.
 */
#define _DEFAULT_SOURCE /* sysconf(_SC_PHYS_PAGES) */
#define _POSIX_C_SOURCE 200809L
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <tapegrad.h>
#include <unistd.h>
#include <zlib.h>

#include "temp_dir.h"

/* Writes bytes to dir/name, gzipped when gz. */
static void write_file(const char *name, const void *data, size_t n, int gz) {
    if (gz) {
        gzFile f = gzopen(path_of(name), "wb");
        assert_non_null(f);
        if (n) assert_int_equal(gzwrite(f, data, (unsigned)n), (int)n);
        assert_int_equal(gzclose(f), Z_OK);
    } else {
        FILE *f = fopen(path_of(name), "wb");
        assert_non_null(f);
        assert_int_equal(fwrite(data, 1, n, f), n);
        fclose(f);
    }
}

static void be32(unsigned char *p, uint32_t v) {
    p[0] = (unsigned char)(v >> 24);
    p[1] = (unsigned char)(v >> 16);
    p[2] = (unsigned char)(v >> 8);
    p[3] = (unsigned char)v;
}

/* An IDX image file of n images of 2x3 pixels: pixel j of image i is
 * (i * 6 + j) * 5 % 256; returns its size in buf. */
static size_t images(unsigned char *buf, uint32_t magic, uint32_t n, uint32_t claimed) {
    be32(buf, magic);
    be32(buf + 4, claimed);
    be32(buf + 8, 2);
    be32(buf + 12, 3);
    for (uint32_t i = 0; i < n * 6; i++) buf[16 + i] = (unsigned char)(i * 5 % 256);
    return 16 + n * 6;
}

static size_t labels(unsigned char *buf, uint32_t n, const unsigned char *lab) {
    be32(buf, 0x801);
    be32(buf + 4, n);
    memcpy(buf + 8, lab, n);
    return 8 + n;
}

static const unsigned char LAB[5] = {3, 0, 9, 1, 3};

static int setup(void **state) {
    (void)state;
    return temp_dir_make("data");
}

static int teardown(void **state) {
    (void)state;
    return temp_dir_remove();
}

/* Reading fails with a message holding every one of the fragments. */
static void expect_error(tg_dataset *ds, const tg_error *e, int code, const char *a,
                         const char *b) {
    assert_null(ds);
    if (e->code != code || !strstr(e->message, a) || (b && !strstr(e->message, b)))
        fail_msg("code %d, message '%s'; wanted code %d with '%s' and '%s'", e->code,
                 e->message, code, a, b ? b : "");
}

static void test_idx_plain_and_gz(void **state) {
    (void)state;
    unsigned char img[256], lab[64];
    for (int gz = 0; gz < 2; gz++) {
        char iname[64], lname[64];
        snprintf(iname, sizeof iname, "img%d", gz);
        snprintf(lname, sizeof lname, "lab%d", gz);
        write_file(iname, img, images(img, 0x803, 5, 5), gz);
        write_file(lname, lab, labels(lab, 5, LAB), gz);
        tg_error e;
        tg_dataset *ds = tg_dataset_read_idx(path_of(iname), path_of(lname), 10, &e);
        assert_non_null(ds);
        assert_int_equal(tg_dataset_size(ds), 5);
        assert_int_equal(tg_dataset_features(ds), 6);
        assert_int_equal(tg_dataset_classes(ds), 10);
        const float *x = tg_dataset_x(ds);
        for (int i = 0; i < 30; i++) assert_true(x[i] == (float)(i * 5 % 256) * (1.0f / 255.0f));
        assert_true(x[0] == 0.0f);
        assert_memory_equal(tg_dataset_labels(ds), ((int32_t[]){3, 0, 9, 1, 3}), 5 * sizeof(int32_t));
        tg_dataset_free(ds);
        /* classes 0: inferred from the largest label */
        ds = tg_dataset_read_idx(path_of(iname), path_of(lname), 0, &e);
        assert_int_equal(tg_dataset_classes(ds), 10);
        tg_dataset_free(ds);
    }
}

static void test_mnist_dir(void **state) {
    (void)state;
    unsigned char img[256], lab[64];
    write_file("train-images-idx3-ubyte.gz", img, images(img, 0x803, 5, 5), 1);
    write_file("train-labels-idx1-ubyte.gz", lab, labels(lab, 5, LAB), 1);
    write_file("t10k-images-idx3-ubyte", img, images(img, 0x803, 4, 4), 0);
    write_file("t10k-labels-idx1-ubyte", lab, labels(lab, 4, LAB), 0);
    tg_error e;
    tg_dataset *tr = tg_dataset_read_mnist(dir, "train", 10, &e);
    tg_dataset *te = tg_dataset_read_mnist(dir, "t10k", 10, &e);
    assert_non_null(tr);
    assert_non_null(te);
    assert_int_equal(tg_dataset_size(tr), 5);
    assert_int_equal(tg_dataset_size(te), 4);
    tg_dataset_free(tr);
    tg_dataset_free(te);
    expect_error(tg_dataset_read_mnist(dir, "nope", 10, &e), &e, TG_ERR_IO, dir,
                 "nope-images-idx3-ubyte");
    expect_error(tg_dataset_read_mnist("/nonexistent/dir", "train", 10, &e), &e, TG_ERR_IO,
                 "/nonexistent/dir", "train-images");
}

static void test_idx_bad_files(void **state) {
    (void)state;
    unsigned char img[256], lab[64];
    tg_error e;
    write_file("good-img", img, images(img, 0x803, 5, 5), 0);
    write_file("good-lab", lab, labels(lab, 5, LAB), 0);
    char gi[256], gl[256];
    strcpy(gi, path_of("good-img"));
    strcpy(gl, path_of("good-lab"));

    /* wrong magic: a label file given as images, and plain garbage */
    expect_error(tg_dataset_read_idx(gl, gl, 10, &e), &e, TG_ERR_FORMAT, gl, "wrong magic");
    assert_non_null(strstr(e.message, "label file"));
    expect_error(tg_dataset_read_idx(gi, gi, 10, &e), &e, TG_ERR_FORMAT, gi, "wrong magic");
    write_file("garbage", "hello world, not idx", 20, 1);
    expect_error(tg_dataset_read_idx(path_of("garbage"), gl, 10, &e), &e, TG_ERR_FORMAT,
                 path_of("garbage"), "wrong magic");

    /* truncated: the header promises 5 images, the file holds 4; plain and gz */
    for (int gz = 0; gz < 2; gz++) {
        const char *name = gz ? "short-img.gz" : "short-img";
        write_file(name, img, images(img, 0x803, 4, 5), gz);
        expect_error(tg_dataset_read_idx(path_of(name), gl, 10, &e), &e, TG_ERR_FORMAT,
                     path_of(name), "truncated");
    }
    /* a truncated header */
    write_file("short-head", img, 10, 0);
    expect_error(tg_dataset_read_idx(path_of("short-head"), gl, 10, &e), &e, TG_ERR_FORMAT,
                 path_of("short-head"), "truncated header");
    /* a gzip stream cut in the middle */
    {
        size_t n = images(img, 0x803, 5, 5);
        write_file("cut.gz", img, n, 1);
        struct stat st;
        assert_int_equal(stat(path_of("cut.gz"), &st), 0);
        assert_int_equal(truncate(path_of("cut.gz"), st.st_size / 2), 0);
        expect_error(tg_dataset_read_idx(path_of("cut.gz"), gl, 10, &e), &e, e.code,
                     path_of("cut.gz"), NULL);
        assert_true(e.code == TG_ERR_FORMAT || e.code == TG_ERR_IO);
    }
    /* a header claiming billions of images in a small file: truncated, not OOM */
    {
        size_t n = images(img, 0x803, 2, 2);
        be32(img + 4, 1000000000);
        write_file("huge", img, n, 0);
        expect_error(tg_dataset_read_idx(path_of("huge"), gl, 10, &e), &e, TG_ERR_FORMAT,
                     path_of("huge"), NULL);
    }
    /* A gzip bomb: a small gzipped file whose header promises more images
     * than this machine's memory holds (as float32 beside their bytes) is
     * refused from its header, before anything is inflated. */
    {
        size_t n = images(img, 0x803, 2, 2);
        be32(img + 4, 2000000000); /* 2e9 images of 2x3: 12 GB of bytes, 60 GB in memory */
        be32(img + 8, 2);
        be32(img + 12, 3);
        long pages = sysconf(_SC_PHYS_PAGES), page = sysconf(_SC_PAGESIZE);
        write_file("bomb.gz", img, n, 1);
        if ((double)pages * (double)page < 6e10) {
            expect_error(tg_dataset_read_idx(path_of("bomb.gz"), gl, 10, &e), &e, TG_ERR_NOMEM,
                         path_of("bomb.gz"), "more than this machine's");
        } else {
            print_message("bomb: skipped, this machine has more than 60 GB of memory\n");
        }
    }
    /* Past the size limit: the message names the product of the dimensions,
     * not the one that crossed it. */
    {
        size_t n = images(img, 0x803, 2, 2);
        be32(img + 4, 0x80000000u);
        be32(img + 8, 28);
        be32(img + 12, 28);
        write_file("big.gz", img, n, 1);
        expect_error(tg_dataset_read_idx(path_of("big.gz"), gl, 10, &e), &e, TG_ERR_FORMAT,
                     "implausible header: 2147483648 x 28 x 28 = 1683627180032 bytes of image "
                     "data, more than the 17179869184 bytes (16 GiB)", NULL);
    }
    /* a zero dimension */
    write_file("zero", img, images(img, 0x803, 0, 0), 0);
    expect_error(tg_dataset_read_idx(path_of("zero"), gl, 10, &e), &e, TG_ERR_FORMAT,
                 path_of("zero"), "dimension 0");

    /* images and labels disagree on the count */
    write_file("four-lab", lab, labels(lab, 4, LAB), 1);
    expect_error(tg_dataset_read_idx(gi, path_of("four-lab"), 10, &e), &e, TG_ERR_FORMAT,
                 "5 images", "4 labels");
    assert_non_null(strstr(e.message, gi));
    assert_non_null(strstr(e.message, path_of("four-lab")));

    /* a label out of range */
    expect_error(tg_dataset_read_idx(gi, gl, 5, &e), &e, TG_ERR_FORMAT, gl,
                 "label 9 of item 2 is out of range [0, 5)");

    /* empty, missing, a directory */
    write_file("empty", "", 0, 0);
    expect_error(tg_dataset_read_idx(path_of("empty"), gl, 10, &e), &e, TG_ERR_FORMAT,
                 path_of("empty"), "empty file");
    expect_error(tg_dataset_read_idx(path_of("missing"), gl, 10, &e), &e, TG_ERR_IO,
                 path_of("missing"), "No such file");
    expect_error(tg_dataset_read_idx(dir, gl, 10, &e), &e, TG_ERR_IO, dir, "directory");
    expect_error(tg_dataset_read_idx(NULL, gl, 10, &e), &e, TG_ERR_NULL, "NULL", NULL);
}

static void test_csv(void **state) {
    (void)state;
    const char *text = "label,p1,p2,p3\n"
                       "1,0,255,51\n"
                       "\n"
                       "0, 102 ,0,255\r\n"
                       "2,1,2,3\n";
    for (int gz = 0; gz < 2; gz++) {
        const char *name = gz ? "a.csv.gz" : "a.csv";
        write_file(name, text, strlen(text), gz);
        tg_error e;
        tg_dataset *ds = tg_dataset_read_csv(path_of(name), 0, 1 / 255.0, 0, &e);
        assert_non_null(ds);
        assert_int_equal(tg_dataset_size(ds), 3);
        assert_int_equal(tg_dataset_features(ds), 3);
        assert_int_equal(tg_dataset_classes(ds), 3);
        const float *x = tg_dataset_x(ds);
        assert_true(x[0] == 0 && x[1] == 1.0f && x[2] == 0.2f && x[3] == 0.4f);
        assert_memory_equal(tg_dataset_labels(ds), ((int32_t[]){1, 0, 2}), 3 * sizeof(int32_t));
        tg_dataset_free(ds);
    }
    /* the label in the last column, no header, no scaling */
    write_file("b.csv", "0.5,-1,3\n2,2,1\n", 15, 0);
    tg_error e;
    tg_dataset *ds = tg_dataset_read_csv(path_of("b.csv"), 2, 1, 4, &e);
    assert_non_null(ds);
    assert_true(tg_dataset_x(ds)[0] == 0.5f && tg_dataset_x(ds)[1] == -1.0f);
    assert_int_equal(tg_dataset_labels(ds)[0], 3);
    assert_int_equal(tg_dataset_classes(ds), 4);
    tg_dataset_free(ds);

    const struct {
        const char *text, *want;
        int classes;
    } bad[] = {
        /* columns counted from 0, as --label-col and label_col count them */
        {"1,2,3\n4,x,6\n", ":2: column 1 ('x') is not a number", 0},
        {"1,2,3\n4,5\n", ":2: 2 fields where the first line has 3", 0},
        {"1,2,3\n1.5,5,6\n", ":2: label 1.5 is not an integer", 0},
        {"1,2,3\n12,5,6\n", ":2: label 12 is out of range [0, 10)", 10},
        {"-1,2,3\n", ":1: label -1 is out of range", 0},
        {"", "no samples", 0},
        {"a,b,c\n", "no samples", 0},
        {"a,b\nc,d\n", ":2: column 0 ('c') is not a number", 0},
        {"7\n", "need a label column", 0},
        {"1,2,3\n1,,3\n", ":2: column 1 is empty", 0},
        {"1,2,3\n1,nan,3\n", ":2: column 1 is 'nan': values that are not finite are refused", 0},
        {"1,2,3\n1,2,-Inf\n", ":2: column 2 is '-Inf': values that are not finite are refused", 0},
        {"1,2,3\n1,2,1e999\n", ":2: column 2 is '1e999': values that are not finite are refused", 0},
        {"1,2,3\n1,2,3x\n", ":2: column 2 ('3x') is not a number", 0},
        /* Past float32's range: refused, not stored as inf. */
        {"1,1e39,3\n", ":1: column 1 is 1e+39, beyond float32's range", 0},
        {"1,2,-4e38\n", ":1: column 2 is -4e+38, beyond float32's range", 0},
        /* A first line with a number in it is data, not a header to drop:
         * inf, nan, quoted numbers, a typo. */
        {"inf,1,2\n1,2,3\n", ":1: column 0 is 'inf': values that are not finite are refused", 0},
        {"1,nan\n1,2\n", ":1: column 1 is 'nan': values that are not finite are refused", 0},
        {"\"1\",\"2\",\"3\"\n1,2,3\n", ":1: column 0 ('\"1\"') is not a number", 0},
        {"1,2x,3\n1,2,3\n", ":1: column 1 ('2x') is not a number (a header line has no numbers", 0},
        {"label,x,7\n1,2,3\n", ":1: column 0 ('label') is not a number", 0},
        /* A NUL byte: not text; nothing after it is silently lost. */
        {"1,2,3\n1,2\0,3\n4,5,6\n", ":2: a NUL byte", 0},
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        size_t len = strlen(bad[i].text);
        if (strstr(bad[i].want, "NUL")) len += 1 + strlen(bad[i].text + len + 1);
        write_file("bad.csv", bad[i].text, len, (int)(i % 2));
        expect_error(tg_dataset_read_csv(path_of("bad.csv"), 0, 1, bad[i].classes, &e), &e,
                     TG_ERR_FORMAT, path_of("bad.csv"), bad[i].want);
    }
    /* --scale can overflow what the file holds in range. */
    write_file("scaled.csv", "1,1e30\n", 7, 0);
    expect_error(tg_dataset_read_csv(path_of("scaled.csv"), 0, 1e10, 0, &e), &e, TG_ERR_FORMAT,
                 ":1: column 1 is 1e+40 after scaling, beyond float32's range", NULL);
    /* Headers: a line of names only, quoted or not, after a byte-order
     * mark or not; a BOM before data is not a header either. */
    const struct {
        const char *text;
        size_t samples;
        int32_t label0;
    } good[] = {
        {"\xef\xbb\xbf" "1,2,3\n0,5,6\n", 2, 1},
        {"\xef\xbb\xbf" "a,b,c\n1,2,3\n", 1, 1},
        {"\"a\", \"b c\" ,d\n2,2,3\n", 1, 2},
        {"\n\nlabel,x\n0,1\n", 1, 0},
    };
    for (size_t i = 0; i < sizeof good / sizeof *good; i++) {
        write_file("good.csv", good[i].text, strlen(good[i].text), (int)(i % 2));
        ds = tg_dataset_read_csv(path_of("good.csv"), 0, 1, 0, &e);
        if (!ds) fail_msg("case %zu: %s", i, e.message);
        assert_int_equal(tg_dataset_size(ds), good[i].samples);
        assert_int_equal(tg_dataset_labels(ds)[0], good[i].label0);
        tg_dataset_free(ds);
    }
    expect_error(tg_dataset_read_csv(path_of("none.csv"), 0, 1, 0, &e), &e, TG_ERR_IO,
                 path_of("none.csv"), "cannot open");
    expect_error(tg_dataset_read_csv(dir, 0, 1, 0, &e), &e, TG_ERR_IO, dir, "directory");
}

static void test_gather_split(void **state) {
    (void)state;
    const float x[4 * 2] = {0, 1, 10, 11, 20, 21, 30, 31};
    const int32_t y[4] = {2, 0, 1, 2};
    tg_error e;
    tg_dataset *ds = tg_dataset_new(4, 2, 3, x, y, &e);
    assert_non_null(ds);
    const uint32_t idx[3] = {3, 0, 2};
    float xb[6], yb[9];
    assert_int_equal(tg_dataset_gather(ds, idx, 3, TG_F32, xb, yb, 3), TG_OK);
    assert_memory_equal(xb, ((float[]){30, 31, 0, 1, 20, 21}), sizeof xb);
    assert_memory_equal(yb, ((float[]){0, 0, 1, 0, 0, 1, 0, 1, 0}), sizeof yb);
    double xd[6], yd[12];
    assert_int_equal(tg_dataset_gather(ds, idx, 3, TG_F64, xd, yd, 4), TG_OK);
    assert_true(xd[0] == 30 && xd[5] == 21);
    assert_memory_equal(yd, ((double[]){0, 0, 1, 0, 0, 0, 1, 0, 0, 1, 0, 0}), sizeof yd);
    const uint32_t out[1] = {4};
    assert_int_equal(tg_dataset_gather(ds, out, 1, TG_F32, xb, NULL, 3), TG_ERR_ARG);
    assert_int_equal(tg_dataset_gather(ds, idx, 3, TG_F32, xb, yb, 2), TG_ERR_ARG);

    tg_dataset *v = tg_dataset_split(ds, 1, &e);
    assert_non_null(v);
    assert_int_equal(tg_dataset_size(ds), 3);
    assert_int_equal(tg_dataset_size(v), 1);
    assert_true(tg_dataset_x(v)[0] == 30 && tg_dataset_labels(v)[0] == 2);
    assert_null(tg_dataset_split(ds, 3, &e));
    assert_int_equal(e.code, TG_ERR_ARG);
    tg_dataset_truncate(ds, 2);
    assert_int_equal(tg_dataset_size(ds), 2);
    tg_dataset_free(v);
    tg_dataset_free(ds);
    const int32_t bad[1] = {3};
    assert_null(tg_dataset_new(1, 2, 3, x, bad, &e));
    assert_non_null(strstr(e.message, "out of range"));
}

/* tg_dataset_new refuses what the CSV reader refuses: a NaN or an
 * infinity, named with its sample and feature. */
static void test_new_refuses_non_finite(void **state) {
    (void)state;
    const struct {
        size_t at;
        float value;
        const char *want;
    } cases[] = {
        {0, NAN, "dataset_new: feature 0 of sample 0 is NaN"},
        {5, INFINITY, "dataset_new: feature 2 of sample 1 is inf"},
        {11, -INFINITY, "dataset_new: feature 2 of sample 3 is -inf"},
    };
    const int32_t y[4] = {0, 1, 2, 0};
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        float x[4 * 3];
        for (int k = 0; k < 12; k++) x[k] = (float)k;
        x[cases[i].at] = cases[i].value;
        tg_error e;
        expect_error(tg_dataset_new(4, 3, 3, x, y, &e), &e, TG_ERR_ARG, cases[i].want, NULL);
    }
    /* The largest finite values are data like any other. */
    float x[3] = {FLT_MAX, -FLT_MAX, 1e-45f};
    tg_error e;
    tg_dataset *ds = tg_dataset_new(1, 3, 1, x, y, &e);
    assert_non_null(ds);
    tg_dataset_free(ds);
}

/* label_col -1: a CSV of features only (for prediction); labels all 0. */
static void test_csv_without_labels(void **state) {
    (void)state;
    const char *text = "a,b\n1,2\n3,4\n5,6\n";
    write_file("nolab.csv", text, strlen(text), 0);
    tg_error e;
    tg_dataset *ds = tg_dataset_read_csv(path_of("nolab.csv"), -1, 0.5, 0, &e);
    assert_non_null(ds);
    assert_int_equal(tg_dataset_size(ds), 3);
    assert_int_equal(tg_dataset_features(ds), 2);
    assert_int_equal(tg_dataset_classes(ds), 1);
    assert_memory_equal(tg_dataset_x(ds), ((float[]){0.5f, 1, 1.5f, 2, 2.5f, 3}), 6 * sizeof(float));
    assert_memory_equal(tg_dataset_labels(ds), ((int32_t[]){0, 0, 0}), 3 * sizeof(int32_t));
    tg_dataset_free(ds);
    ds = tg_dataset_read_csv(path_of("nolab.csv"), -1, 1, 10, &e);
    assert_int_equal(tg_dataset_classes(ds), 10);
    tg_dataset_free(ds);
    expect_error(tg_dataset_read_csv(path_of("nolab.csv"), -2, 1, 0, &e), &e, TG_ERR_ARG,
                 "label column -2", NULL);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_idx_plain_and_gz), cmocka_unit_test(test_mnist_dir),
        cmocka_unit_test(test_idx_bad_files),   cmocka_unit_test(test_csv),
        cmocka_unit_test(test_gather_split),    cmocka_unit_test(test_new_refuses_non_finite),
        cmocka_unit_test(test_csv_without_labels),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
