/*
 * A temporary directory for the files of one test program: dir (made by
 * temp_dir_make(tag) as /tmp/tg_test_TAG_XXXXXX, from cmocka's group setup),
 * path_of(name) for a file in it (eight buffers in turn, so that one call
 * of the caller may take several), and temp_dir_remove(), which deletes it
 * with everything in it (group teardown).
 */
#ifndef TG_TEST_TEMP_DIR_H
#define TG_TEST_TEMP_DIR_H

#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

static char dir[64];

static const char *path_of(const char *name) {
    static char buf[8][256];
    static int k;
    k = (k + 1) % 8;
    snprintf(buf[k], sizeof buf[k], "%s/%s", dir, name);
    return buf[k];
}

static int temp_dir_make(const char *tag) {
    snprintf(dir, sizeof dir, "/tmp/tg_test_%s_XXXXXX", tag);
    return mkdtemp(dir) ? 0 : -1;
}

static int temp_dir_remove(void) {
    char cmd[sizeof dir + 16];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    return system(cmd) == 0 ? 0 : -1;
}

#endif
