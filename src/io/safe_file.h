/* Opening the user's files without harming them or hanging: the one place
 * that decides how a file named by the user is read, replaced or appended
 * to (checkpoints, `grad --dot`, training logs). Never installed.
 *
 * Reading: only a regular file, checked before any blocking open, so that a
 * FIFO is refused instead of waiting for a writer.
 *
 * Saving (tg__save_*): the path's symlinks are followed to their target.
 * A regular target, or a new file, is replaced atomically (a temporary file
 * beside it, fsynced, renamed over it, the directory fsynced): the old
 * file's mode is kept, a new file gets 0666 & ~umask. A character or block
 * device is written in place, as `> /dev/null` would. A FIFO, a socket or a
 * directory is refused with a message. A write past the file-size limit
 * (ulimit -f) fails with EFBIG, reported, instead of killing the process
 * with SIGXFSZ; a failed save leaves the old file and no temporary file. */
#ifndef TG_SAFE_FILE_H
#define TG_SAFE_FILE_H

#include <stdio.h>
#include <sys/stat.h>

#include <tapegrad.h>

/* Opens path read-only if it is a regular file; returns the descriptor
 * (blocking, close-on-exec) and fills *st, or minus a TG_ERR_ code with err
 * naming path and what it was expected to be ("model file"). */
int tg__open_regular(const char *path, const char *what, struct stat *st, tg_error *err);

/* A save in progress. */
typedef struct tg__save {
    char *target; /* the file replaced or written: path with its symlinks followed */
    char *tmp;    /* the temporary file, NULL when writing a device in place */
    int fd;
} tg__save;

/* Starts a save to path: s->fd takes the bytes. TG_OK, or TG_ERR_IO /
 * TG_ERR_NOMEM with err filled and nothing created. */
int tg__save_begin(tg__save *s, const char *path, tg_error *err);

/* Writes n bytes to the save (retrying short writes). */
int tg__save_write(tg__save *s, const void *buf, size_t n, tg_error *err);

/* Makes the save durable and puts it in place; on failure the old file is
 * untouched and the temporary removed. Frees s either way. */
int tg__save_commit(tg__save *s, tg_error *err);

/* Abandons a save: removes the temporary file, frees s. */
void tg__save_abort(tg__save *s);

/* A whole save of n bytes: begin, write, commit. */
int tg__save_buffer(const char *path, const void *buf, size_t n, tg_error *err);

/* Opens path for writing as it goes (a log), in place: a regular file is
 * truncated (its mode kept), a new one made 0666 & ~umask, a device
 * written; a FIFO only when a reader already has it open (never blocks); a
 * directory refused. NULL with err filled on failure. */
FILE *tg__open_log(const char *path, tg_error *err);

#endif
