/*
 * Crash-safe checkpoints: a child process saves a model over the same file
 * again and again, each generation g with every value equal to g and the
 * meta text "generation g", and reports each finished save through a pipe.
 * The parent kills it with SIGKILL at a random moment, many times, and
 * after every kill checks that the file loads (magic, size, CRC and
 * structure verified by the loader) and is one whole generation -- the last
 * one reported finished, or the one being saved when the kill came -- never
 * a mix of two, never a torn or empty file.
 *
 * The model is 1 MiB; kills are spread over about two saves' time, so that
 * many land inside a save (while the temporary file is written, synced or
 * renamed); the test reports how many did.
 */
#define _POSIX_C_SOURCE 200809L
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "tapegrad.h"

#define KILLS 100
#define NUMEL ((int64_t)1 << 18) /* 1 MiB of float32 */

static char dir[256], model[300];
static long save_us = 1000; /* measured by the first test */

static int setup_dir(void **state) {
    (void)state;
    const char *tmp = getenv("TMPDIR");
    snprintf(dir, sizeof dir, "%s/tg_crashsafe_XXXXXX", tmp && *tmp ? tmp : "/tmp");
    if (!mkdtemp(dir)) return -1;
    snprintf(model, sizeof model, "%s/model.tgm", dir);
    return 0;
}

static int remove_dir(void **state) {
    (void)state;
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    return system(cmd) == 0 ? 0 : -1;
}

static tg_params *new_model(void) {
    tg_params *ps = tg_params_new(TG_F32);
    const int64_t w[2] = {256, NUMEL / 256 - 8}, b[1] = {8 * 256};
    if (!ps || tg_params_add(ps, "layer1.W", 2, w, NULL) || tg_params_add(ps, "layer1.b", 1, b, NULL))
        return NULL;
    return ps;
}

static void set_generation(tg_params *ps, long g) {
    float *v = tg_params_data(ps);
    for (int64_t i = 0; i < tg_params_size(ps); i++) v[i] = (float)g;
    char meta[64];
    snprintf(meta, sizeof meta, "generation %ld", g);
    tg_params_set_meta(ps, meta);
}

/* The child: saves generations first, first + 1, ... until killed. */
static void saver(long first, int fd) {
    tg_params *ps = new_model();
    if (!ps) _exit(3);
    for (long g = first;; g++) {
        set_generation(ps, g);
        tg_error e;
        if (tg_checkpoint_save(ps, model, &e) != TG_OK) {
            fprintf(stderr, "save failed: %s\n", e.message);
            _exit(2);
        }
        if (write(fd, &g, sizeof g) != (ssize_t)sizeof g) _exit(4);
    }
}

/* The generation the file holds, or -1 with why filled: it must load and
 * be one generation throughout. */
static long generation_on_disk(tg_params *ps, char *why, size_t len) {
    tg_error e;
    if (tg_checkpoint_load(ps, model, &e) != TG_OK) {
        snprintf(why, len, "does not load: %.200s", e.message);
        return -1;
    }
    long g;
    if (sscanf(tg_params_meta(ps), "generation %ld", &g) != 1) {
        snprintf(why, len, "meta text '%s'", tg_params_meta(ps));
        return -1;
    }
    const float *v = tg_params_data(ps);
    for (int64_t i = 0; i < tg_params_size(ps); i++)
        if (v[i] != (float)g) {
            snprintf(why, len, "a mix: value %lld is %g in generation %ld", (long long)i,
                     (double)v[i], g);
            return -1;
        }
    return g;
}

static int temp_files(void) {
    DIR *d = opendir(dir);
    int n = 0;
    for (struct dirent *e; d && (e = readdir(d));) n += strstr(e->d_name, ".tmp.") != NULL;
    if (d) closedir(d);
    return n;
}

static void test_kill_during_saves(void **state) {
    (void)state;
    tg_params *ps = new_model();
    assert_non_null(ps);
    set_generation(ps, 0);
    assert_int_equal(tg_checkpoint_save(ps, model, NULL), TG_OK);
    long next = 1, last_seen = 0;
    int mid_save = 0;
    struct timespec seed;
    clock_gettime(CLOCK_MONOTONIC, &seed);
    srand((unsigned)seed.tv_nsec);
    /* Time one save, to spread the kills over a few saves' worth of time. */
    clock_gettime(CLOCK_MONOTONIC, &seed);
    set_generation(ps, 0);
    assert_int_equal(tg_checkpoint_save(ps, model, NULL), TG_OK);
    struct timespec end;
    clock_gettime(CLOCK_MONOTONIC, &end);
    save_us = (end.tv_sec - seed.tv_sec) * 1000000L + (end.tv_nsec - seed.tv_nsec) / 1000;
    if (save_us < 200) save_us = 200;

    for (int k = 0; k < KILLS; k++) {
        int fds[2];
        assert_int_equal(pipe(fds), 0);
        pid_t pid = fork();
        assert_true(pid >= 0);
        if (pid == 0) {
            close(fds[0]);
            saver(next, fds[1]);
        }
        close(fds[1]);
        /* Kill after 0 to 2 saves' worth of time (plus the child's start). */
        struct timespec nap = {0, (long)(rand() % (2 * save_us + 1)) * 1000L};
        while (nap.tv_nsec >= 1000000000L) nap.tv_sec++, nap.tv_nsec -= 1000000000L;
        nanosleep(&nap, NULL);
        assert_int_equal(kill(pid, SIGKILL), 0);
        int status;
        assert_int_equal(waitpid(pid, &status, 0), pid);
        if (!WIFSIGNALED(status)) fail_msg("the saver exited by itself (status %d)", status);
        long g, done = -1;
        while (read(fds[0], &g, sizeof g) == (ssize_t)sizeof g) done = g;
        close(fds[0]);

        char why[512];
        long on_disk = generation_on_disk(ps, why, sizeof why);
        if (on_disk < 0) fail_msg("after kill %d: the model file %s", k, why);
        /* The last finished save, or the one under way when killed (its
         * rename can precede the report); before any finished save of this
         * child, the previous child's file. */
        long lo = done >= 0 ? done : last_seen, hi = done >= 0 ? done + 1 : next;
        if (on_disk != lo && on_disk != hi)
            fail_msg("after kill %d: generation %ld on disk; expected %ld or %ld", k, on_disk,
                     lo, hi);
        mid_save += temp_files() > 0;
        last_seen = on_disk;
        next = hi + 1; /* fresh generations for the next child */
        /* Stale temporary files of killed saves stay (nothing can remove them
         * at SIGKILL); clear them so that the next count is this kill's. */
        DIR *d = opendir(dir);
        for (struct dirent *e; d && (e = readdir(d));)
            if (strstr(e->d_name, ".tmp.")) {
                char p[600];
                snprintf(p, sizeof p, "%s/%s", dir, e->d_name);
                unlink(p);
            }
        if (d) closedir(d);
    }
    printf("crashsafe: %d kills (a save takes %ld us), %d of them while a temporary file "
           "existed; every time the file held one whole generation\n",
           KILLS, save_us, mid_save);
    tg_params_free(ps);
}

/* A fresh path: killed during the very first save, the file either does
 * not exist or is whole. */
static void test_kill_first_save(void **state) {
    (void)state;
    tg_params *ps = new_model();
    assert_non_null(ps);
    int absent = 0;
    for (int k = 0; k < 20; k++) {
        unlink(model);
        pid_t pid = fork();
        assert_true(pid >= 0);
        if (pid == 0) {
            int devnull = open("/dev/null", O_WRONLY);
            saver(1, devnull);
        }
        struct timespec nap = {0, (long)(rand() % (2 * save_us + 1)) * 1000L};
        while (nap.tv_nsec >= 1000000000L) nap.tv_sec++, nap.tv_nsec -= 1000000000L;
        nanosleep(&nap, NULL);
        kill(pid, SIGKILL);
        int status;
        assert_int_equal(waitpid(pid, &status, 0), pid);
        if (access(model, F_OK) != 0) {
            assert_int_equal(errno, ENOENT);
            absent++;
            continue;
        }
        char why[512];
        if (generation_on_disk(ps, why, sizeof why) < 1) fail_msg("first save: the file %s", why);
    }
    printf("crashsafe: first save killed 20 times: %d times no file yet, else a whole model\n",
           absent);
    tg_params_free(ps);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_kill_during_saves),
        cmocka_unit_test(test_kill_first_save),
    };
    return cmocka_run_group_tests(tests, setup_dir, remove_dir);
}
