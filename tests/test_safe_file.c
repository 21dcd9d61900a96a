/*
 * safe_file: what a save does to the file it is given, and that reading a
 * FIFO never hangs. Everything happens in a temporary directory: the
 * device node is one the test makes there (root only; skipped otherwise).
 *   - a symlink is followed: its target is replaced, the link stays;
 *   - the old file's mode is kept; a new file gets 0666 & ~umask;
 *   - a FIFO is refused, for saving and for reading, without blocking;
 *   - a device is written in place, not replaced by a regular file;
 *   - past a file-size limit the save fails with EFBIG, the process lives
 *     (SIGXFSZ not delivered), the old file is whole, no temporary is left.
 */
#define _DEFAULT_SOURCE /* mknod, makedev */
#define _POSIX_C_SOURCE 200809L
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/wait.h>
#include <tapegrad.h>
#include <unistd.h>

#include "safe_file.h"

#include "temp_dir.h"

static int setup(void **state) {
    (void)state;
    /* A test that blocks forever is a failure, not a hang of the suite. */
    alarm(60);
    return temp_dir_make("safe");
}

static int teardown(void **state) {
    (void)state;
    return temp_dir_remove();
}

static tg_params *model(int64_t numel, double value) {
    tg_params *ps = tg_params_new(TG_F64);
    assert_int_equal(tg_params_add(ps, "w", 1, &numel, NULL), TG_OK);
    double *v = tg_params_value(ps, 0);
    for (int64_t i = 0; i < numel; i++) v[i] = value;
    return ps;
}

/* The first value of the model in path, or NAN when it does not load. */
static double first_value(const char *path) {
    tg_params *ps = tg_checkpoint_read(path, NULL);
    double v = ps ? ((double *)tg_params_value(ps, 0))[0] : 0.0 / 0.0;
    tg_params_free(ps);
    return v;
}

/* Entries of dir other than the n names given. */
static int others(int n, const char *const *names) {
    DIR *d = opendir(dir);
    struct dirent *e;
    int count = 0;
    while ((e = readdir(d))) {
        bool known = !strcmp(e->d_name, ".") || !strcmp(e->d_name, "..");
        for (int i = 0; i < n; i++) known |= !strcmp(e->d_name, names[i]);
        count += !known;
    }
    closedir(d);
    return count;
}

static void test_symlink_followed(void **state) {
    (void)state;
    tg_params *a = model(4, 1), *b = model(4, 2);
    assert_int_equal(tg_checkpoint_save(a, path_of("target.tgm"), NULL), TG_OK);
    assert_int_equal(symlink("target.tgm", path_of("link.tgm")), 0);
    assert_int_equal(tg_checkpoint_save(b, path_of("link.tgm"), NULL), TG_OK);
    struct stat st;
    assert_int_equal(lstat(path_of("link.tgm"), &st), 0);
    assert_true(S_ISLNK(st.st_mode));
    assert_true(first_value(path_of("target.tgm")) == 2);
    /* A link to a file not there yet makes the file, beside the link's
     * directory's idea of it (relative links are relative to the link). */
    assert_int_equal(mkdir(path_of("sub"), 0755), 0);
    assert_int_equal(symlink("../made.tgm", path_of("sub/dangling.tgm")), 0);
    assert_int_equal(tg_checkpoint_save(a, path_of("sub/dangling.tgm"), NULL), TG_OK);
    assert_int_equal(lstat(path_of("sub/dangling.tgm"), &st), 0);
    assert_true(S_ISLNK(st.st_mode));
    assert_true(first_value(path_of("made.tgm")) == 1);
    /* A loop of links is refused, naming it. */
    assert_int_equal(symlink("loop2", path_of("loop1")), 0);
    assert_int_equal(symlink("loop1", path_of("loop2")), 0);
    tg_error e;
    assert_int_equal(tg_checkpoint_save(a, path_of("loop1"), &e), TG_ERR_IO);
    assert_non_null(strstr(e.message, "symbolic links"));
    tg_params_free(a);
    tg_params_free(b);
}

static void test_mode_kept(void **state) {
    (void)state;
    tg_params *a = model(4, 1);
    const char *p = path_of("private.tgm");
    assert_int_equal(tg_checkpoint_save(a, p, NULL), TG_OK);
    assert_int_equal(chmod(p, 0600), 0);
    assert_int_equal(tg_checkpoint_save(a, p, NULL), TG_OK);
    struct stat st;
    assert_int_equal(stat(p, &st), 0);
    assert_int_equal(st.st_mode & 07777, 0600);
    assert_int_equal(chmod(p, 0664), 0);
    assert_int_equal(tg_checkpoint_save(a, p, NULL), TG_OK);
    assert_int_equal(stat(p, &st), 0);
    assert_int_equal(st.st_mode & 07777, 0664);
    /* New files: 0666 less the umask, as any program's. */
    const mode_t masks[] = {022, 027, 077, 0};
    for (size_t i = 0; i < sizeof masks / sizeof *masks; i++) {
        char name[32];
        snprintf(name, sizeof name, "new%zu.tgm", i);
        mode_t old = umask(masks[i]);
        int rc = tg_checkpoint_save(a, path_of(name), NULL);
        umask(old);
        assert_int_equal(rc, TG_OK);
        assert_int_equal(stat(path_of(name), &st), 0);
        assert_int_equal(st.st_mode & 07777, 0666 & ~masks[i]);
    }
    tg_params_free(a);
}

static void test_fifo_refused(void **state) {
    (void)state;
    tg_params *a = model(4, 1);
    const char *p = path_of("fifo");
    assert_int_equal(mkfifo(p, 0644), 0);
    int entries = others(0, NULL);
    tg_error e;
    assert_int_equal(tg_checkpoint_save(a, p, &e), TG_ERR_IO);
    assert_non_null(strstr(e.message, "FIFO"));
    struct stat st;
    assert_int_equal(lstat(p, &st), 0);
    assert_true(S_ISFIFO(st.st_mode));
    /* Reading one neither blocks (no writer) nor reads. */
    assert_null(tg_checkpoint_read(p, &e));
    assert_int_equal(e.code, TG_ERR_IO);
    assert_non_null(strstr(e.message, "FIFO"));
    assert_int_equal(tg_checkpoint_load(a, p, &e), TG_ERR_IO);
    assert_non_null(strstr(e.message, "FIFO"));
    /* A log opens one only when somebody reads it. */
    assert_null(tg__open_log(p, &e));
    assert_non_null(strstr(e.message, "no process reads"));
    assert_int_equal(others(0, NULL), entries); /* no temporary file left */
    tg_params_free(a);
}

static void test_device_in_place(void **state) {
    (void)state;
    const char *p = path_of("null");
    if (mknod(p, S_IFCHR | 0666, makedev(1, 3))) {
        print_message("skipped: mknod needs root (%s)\n", strerror(errno));
        return;
    }
    tg_params *a = model(4, 1);
    assert_int_equal(tg_checkpoint_save(a, p, NULL), TG_OK);
    struct stat st;
    assert_int_equal(lstat(p, &st), 0);
    assert_true(S_ISCHR(st.st_mode));
    assert_int_equal(st.st_rdev, makedev(1, 3));
    /* A full device reports the failure. */
    const char *full = path_of("full");
    assert_int_equal(mknod(full, S_IFCHR | 0666, makedev(1, 7)), 0);
    tg_error e;
    assert_int_equal(tg_checkpoint_save(a, full, &e), TG_ERR_IO);
    assert_non_null(strstr(e.message, strerror(ENOSPC)));
    assert_int_equal(lstat(full, &st), 0);
    assert_true(S_ISCHR(st.st_mode));
    tg_params_free(a);
}

static void test_file_size_limit(void **state) {
    (void)state;
    const char *p = path_of("limited.tgm");
    tg_params *small = model(4, 1), *big = model(1 << 16, 2); /* 512 KiB */
    assert_int_equal(tg_checkpoint_save(small, p, NULL), TG_OK);
    const char *keep[] = {"limited.tgm"};
    int before = others(1, keep);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        /* SIGXFSZ keeps its default action (end the process): the save
         * must not let it be delivered. */
        signal(SIGXFSZ, SIG_DFL);
        struct rlimit r = {65536, 65536};
        tg_error e;
        if (setrlimit(RLIMIT_FSIZE, &r)) _exit(10);
        int rc = tg_checkpoint_save(big, p, &e);
        _exit(rc == TG_ERR_IO && strstr(e.message, strerror(EFBIG)) ? 0 : 11);
    }
    int status;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status)); /* not killed by SIGXFSZ */
    assert_int_equal(WEXITSTATUS(status), 0);
    assert_true(first_value(p) == 1);
    assert_int_equal(others(1, keep), before);
    tg_params_free(small);
    tg_params_free(big);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_symlink_followed), cmocka_unit_test(test_mode_kept),
        cmocka_unit_test(test_fifo_refused),     cmocka_unit_test(test_device_in_place),
        cmocka_unit_test(test_file_size_limit),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
