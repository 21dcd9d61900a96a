/* Helpers of the file-loader fuzz targets: a scratch file per process. */
#ifndef TG_FUZZ_UTIL_H
#define TG_FUZZ_UTIL_H

#define _POSIX_C_SOURCE 200809L
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zlib.h>

/* A path in $TMPDIR (or /tmp) unique to this process and tag, removed at exit. */
static char fuzz_paths[4][256];
static int fuzz_npaths;

static void fuzz_cleanup(void) {
    for (int i = 0; i < fuzz_npaths; i++) unlink(fuzz_paths[i]);
}

static const char *fuzz_path(int slot, const char *tag) {
    if (!fuzz_paths[slot][0]) {
        const char *tmp = getenv("TMPDIR");
        snprintf(fuzz_paths[slot], sizeof fuzz_paths[slot], "%s/tg_fuzz_%ld_%s",
                 tmp && *tmp ? tmp : "/tmp", (long)getpid(), tag);
        if (fuzz_npaths++ == 0) atexit(fuzz_cleanup);
    }
    return fuzz_paths[slot];
}

/* Writes data to path, gzip-compressed when gz. Aborts on failure: the
 * harness, not the library, would be broken. */
static void fuzz_write(const char *path, const uint8_t *data, size_t size, int gz) {
    if (gz) {
        gzFile f = gzopen(path, "wb");
        if (!f || (size && gzwrite(f, data, (unsigned)size) != (int)size) || gzclose(f) != Z_OK)
            abort();
        return;
    }
    FILE *f = fopen(path, "wb");
    if (!f || (size && fwrite(data, 1, size, f) != size) || fclose(f)) abort();
}

#endif
