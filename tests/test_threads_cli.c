/*
 * `tapegrad train --threads N` gives the results of one thread, bit for
 * bit, for networks whose products are below the CLI's threshold for a
 * second BLAS thread (2^28 multiply-adds; docs/performance.md, "Threads"):
 * W1's 784-100-10 at batch 128, where OpenBLAS's two threads give other
 * bits than one, trains to the same saved model with --threads 1, 2 and 4.
 * The data is a small CSV file written here. Runs the built program
 * (TG_CLI, set by ctest); skips without it.
 */
#define _POSIX_C_SOURCE 200809L
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

static const char *cli;
static char tmpdir[] = "/tmp/tg-threads-cli-XXXXXX";

/* Reads the whole of path into a malloc'ed buffer; *len its length. */
static char *slurp(const char *path, size_t *len) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    char *buf = NULL;
    size_t cap = 0, n = 0, got;
    do {
        if (n == cap) {
            char *p = realloc(buf, cap = cap ? 2 * cap : 65536);
            if (!p) break;
            buf = p;
        }
        got = fread(buf + n, 1, cap - n, f);
        n += got;
    } while (got > 0);
    fclose(f);
    *len = n;
    return buf;
}

/* Trains on data with --threads threads; returns the saved model's bytes
 * and, in out, the program's standard output without the timings. */
static char *train(const char *data, int threads, size_t *len, char *out, size_t outsz) {
    char cmd[1024], model[256];
    snprintf(model, sizeof model, "%s/model%d.tgm", tmpdir, threads);
    snprintf(cmd, sizeof cmd,
             "'%s' train --data '%s' --layers 784,100,10 --batch 128 --epochs 2 --seed 3 "
             "--threads %d --save '%s' 2>/dev/null",
             cli, data, threads, model);
    FILE *p = popen(cmd, "r");
    assert_non_null(p);
    size_t n = 0;
    char line[512];
    out[0] = '\0';
    while (fgets(line, sizeof line, p)) {
        char *t = strstr(line, " seconds=");
        if (t) strcpy(t, "\n");
        if (!strncmp(line, "train_seconds=", 14)) continue;
        size_t k = strlen(line);
        if (n + k < outsz) memcpy(out + n, line, k + 1), n += k;
    }
    assert_int_equal(pclose(p), 0);
    char *bytes = slurp(model, len);
    assert_non_null(bytes);
    unlink(model);
    return bytes;
}

static void test_threads_same_bits(void **state) {
    (void)state;
    char data[256];
    snprintf(data, sizeof data, "%s/data.csv", tmpdir);
    FILE *f = fopen(data, "w");
    assert_non_null(f);
    uint64_t s = 7;
    for (int i = 0; i < 700; i++) {
        int label = i % 10;
        fprintf(f, "%d", label);
        for (int j = 0; j < 784; j++) {
            s = s * 6364136223846793005u + 1442695040888963407u;
            fprintf(f, ",%.3f", (double)(s >> 40) / 16777216.0 * (j % 10 == label ? 2 : 1));
        }
        fprintf(f, "\n");
    }
    assert_int_equal(fclose(f), 0);
    size_t len1, len;
    char out1[4096], out[4096];
    char *one = train(data, 1, &len1, out1, sizeof out1);
    assert_non_null(strstr(out1, "epoch=2 train_loss="));
    for (int threads = 2; threads <= 4; threads += 2) {
        char *other = train(data, threads, &len, out, sizeof out);
        assert_string_equal(out, out1);
        assert_int_equal(len, len1);
        assert_memory_equal(other, one, len1);
        free(other);
    }
    free(one);
    unlink(data);
}

int main(void) {
    cli = getenv("TG_CLI");
    if (!cli || access(cli, X_OK)) {
        fprintf(stderr, "SKIP: TG_CLI does not name the built tapegrad program (run through "
                        "ctest)\n");
        return 77;
    }
    if (!mkdtemp(tmpdir)) {
        perror("mkdtemp");
        return 1;
    }
    const struct CMUnitTest tests[] = {cmocka_unit_test(test_threads_same_bits)};
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    rmdir(tmpdir);
    return rc;
}
