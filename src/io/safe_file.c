/* Reading, replacing and appending to the user's files safely: see
 * safe_file.h for the rules. */
#define _POSIX_C_SOURCE 200809L
#include "safe_file.h"

#include "nn_internal.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdatomic.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define MAX_LINK_HOPS 40

static char *dup_str(const char *s) {
    size_t n = strlen(s) + 1;
    char *d = tg__malloc(n);
    if (d) memcpy(d, s, n);
    return d;
}

/* What a file of this type is, for messages. */
static const char *kind_of(mode_t m) {
    if (S_ISDIR(m)) return "a directory";
    if (S_ISFIFO(m)) return "a FIFO (named pipe)";
    if (S_ISSOCK(m)) return "a socket";
    if (S_ISCHR(m)) return "a character device";
    if (S_ISBLK(m)) return "a block device";
    return "not a regular file";
}

int tg__open_regular(const char *path, const char *what, struct stat *st, tg_error *err) {
    /* O_NONBLOCK: opening a FIFO must not wait for a writer before fstat
     * can tell what it is. */
    int fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0) {
        return -tg__err(err, TG_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    }
    int rc;
    if (fstat(fd, st)) {
        rc = tg__err(err, TG_ERR_IO, "%s: cannot stat: %s", path, strerror(errno));
    } else if (!S_ISREG(st->st_mode)) {
        rc = tg__err(err, TG_ERR_IO, "%s: is %s, not a %s", path, kind_of(st->st_mode), what);
    } else {
        int fl = fcntl(fd, F_GETFL);
        if (fl != -1) fcntl(fd, F_SETFL, fl & ~O_NONBLOCK);
        return fd;
    }
    close(fd);
    return -rc;
}

/* path with its symlinks followed (the last component only, as open()
 * would, repeatedly), in a new string; a dangling link gives the file it
 * names. NULL with err filled on failure. */
static char *follow_links(const char *path, int *rc, tg_error *err) {
    char *cur = dup_str(path);
    for (int hop = 0; cur; hop++) {
        struct stat st;
        if (lstat(cur, &st) || !S_ISLNK(st.st_mode)) return cur;
        if (hop == MAX_LINK_HOPS) {
            tg__free(cur);
            *rc = tg__err(err, TG_ERR_IO, "%s: too many levels of symbolic links", path);
            return NULL;
        }
        size_t cap = st.st_size > 0 ? (size_t)st.st_size + 1 : 4096;
        char *link = tg__malloc(cap);
        ssize_t k = link ? readlink(cur, link, cap) : -1;
        if (k < 0 || (size_t)k >= cap) {
            int e = link ? (k < 0 ? errno : ENAMETOOLONG) : ENOMEM;
            tg__free(link);
            tg__free(cur);
            *rc = tg__err(err, e == ENOMEM ? TG_ERR_NOMEM : TG_ERR_IO,
                    "%s: cannot read the symbolic link: %s", path, strerror(e));
            return NULL;
        }
        link[k] = '\0';
        const char *slash = strrchr(cur, '/');
        char *next;
        if (link[0] == '/' || !slash) {
            next = link;
        } else { /* relative to the link's directory */
            size_t dl = (size_t)(slash - cur) + 1;
            next = tg__malloc(dl + (size_t)k + 1);
            if (next) {
                memcpy(next, cur, dl);
                memcpy(next + dl, link, (size_t)k + 1);
            }
            tg__free(link);
        }
        tg__free(cur);
        cur = next;
    }
    *rc = tg__err(err, TG_ERR_NOMEM, "%s: out of memory", path);
    return NULL;
}

/* A fresh file beside the target: with old's owner, group and mode when
 * old is given (a replacement), else 0666 less the umask (a new file). */
static int create_temp(tg__save *s, const struct stat *old) {
    static atomic_uint counter;
    size_t len = strlen(s->target) + 48;
    if (!(s->tmp = tg__malloc(len))) return -1;
    for (int tries = 0; tries < 100; tries++) {
        unsigned c = atomic_fetch_add(&counter, 1);
        snprintf(s->tmp, len, "%s.tmp.%ld.%u.%ld", s->target, (long)getpid(), c,
                 (long)(time(NULL) & 0xffff));
        int fd = open(s->tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, old ? 0600 : 0666);
        if (fd >= 0) {
            /* Only root may give a file away; keep at least the group if
             * allowed. Before fchmod, which a change of owner could undo. */
            if (old && fchown(fd, old->st_uid, old->st_gid) && fchown(fd, (uid_t)-1, old->st_gid))
                errno = 0;
            if (old && fchmod(fd, old->st_mode & 07777)) {
                int e = errno;
                close(fd);
                unlink(s->tmp);
                errno = e;
                return -1;
            }
            return fd;
        }
        if (errno != EEXIST) return -1;
    }
    return -1;
}

int tg__save_begin(tg__save *s, const char *path, tg_error *err) {
    memset(s, 0, sizeof *s);
    s->fd = -1;
    if (!path || !*path) return tg__err(err, TG_ERR_IO, "empty file name");
    int rc = TG_OK;
    if (!(s->target = follow_links(path, &rc, err))) return rc;
    struct stat st;
    bool exists = lstat(s->target, &st) == 0;
    if (!exists && errno != ENOENT) {
        rc = tg__err(err, TG_ERR_IO, "%s: cannot stat: %s", path, strerror(errno));
    } else if (exists && (S_ISCHR(st.st_mode) || S_ISBLK(st.st_mode))) {
        s->fd = open(s->target, O_WRONLY | O_CLOEXEC);
        if (s->fd < 0) rc = tg__err(err, TG_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    } else if (exists && S_ISDIR(st.st_mode)) {
        rc = tg__err(err, TG_ERR_IO, "%s: is a directory; give a file name", path);
    } else if (exists && !S_ISREG(st.st_mode)) {
        rc = tg__err(err, TG_ERR_IO, "%s: is %s; give a regular file", path, kind_of(st.st_mode));
    } else if ((s->fd = create_temp(s, exists ? &st : NULL)) < 0) {
        rc = s->tmp ? tg__err(err, TG_ERR_IO, "%s: creating a temporary file: %s", path,
                              strerror(errno))
                    : tg__err(err, TG_ERR_NOMEM, "%s: out of memory", path);
    }
    if (rc) {
        tg__free(s->tmp);
        s->tmp = NULL;
        tg__save_abort(s);
    }
    return rc;
}

/* One write with SIGXFSZ blocked, so that a file-size limit gives EFBIG
 * instead of ending the process; a signal it raised is taken back. */
static ssize_t write_no_sigxfsz(int fd, const void *p, size_t n) {
    sigset_t xfsz, old, pending;
    sigemptyset(&xfsz);
    sigaddset(&xfsz, SIGXFSZ);
    bool masked = pthread_sigmask(SIG_BLOCK, &xfsz, &old) == 0;
    bool was_pending = masked && sigpending(&pending) == 0 && sigismember(&pending, SIGXFSZ);
    ssize_t k = write(fd, p, n);
    int e = errno;
    if (masked) {
        if (k < 0 && e == EFBIG && !was_pending) {
            struct timespec zero = {0, 0};
            sigtimedwait(&xfsz, NULL, &zero);
        }
        pthread_sigmask(SIG_SETMASK, &old, NULL);
    }
    errno = e;
    return k;
}

int tg__save_write(tg__save *s, const void *buf, size_t n, tg_error *err) {
    const char *p = buf;
    while (n) {
        ssize_t k = write_no_sigxfsz(s->fd, p, n);
        if (k < 0 && errno == EINTR) continue;
        if (k <= 0)
            return tg__err(err, TG_ERR_IO, "%s: writing: %s", s->target,
                           k < 0 ? strerror(errno) : "no progress");
        p += k;
        n -= (size_t)k;
    }
    return TG_OK;
}

static void save_free(tg__save *s) {
    tg__free(s->target);
    tg__free(s->tmp);
    s->target = s->tmp = NULL;
    s->fd = -1;
}

void tg__save_abort(tg__save *s) {
    if (s->fd >= 0) close(s->fd);
    if (s->tmp) unlink(s->tmp);
    save_free(s);
}

int tg__save_commit(tg__save *s, tg_error *err) {
    const char *stage = "syncing";
    /* A device may not sync (EINVAL): what it was given is all there is. */
    if (fsync(s->fd) && (s->tmp || (errno != EINVAL && errno != EROFS))) goto fail;
    stage = "closing";
    int c = close(s->fd);
    s->fd = -1;
    if (c) goto fail;
    if (!s->tmp) {
        save_free(s);
        return TG_OK;
    }
    stage = "renaming the temporary file";
    if (rename(s->tmp, s->target)) goto fail;
    tg__free(s->tmp);
    s->tmp = NULL;
    /* Make the rename durable; some file systems refuse to sync a
     * directory, and the file is complete either way. */
    const char *slash = strrchr(s->target, '/');
    if (slash) *(char *)(slash == s->target ? slash + 1 : slash) = '\0';
    int dfd = open(slash ? s->target : ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd >= 0) {
        fsync(dfd);
        close(dfd);
    }
    save_free(s);
    return TG_OK;
fail:;
    int rc = tg__err(err, TG_ERR_IO, "%s: %s: %s", s->target, stage, strerror(errno));
    tg__save_abort(s);
    return rc;
}

int tg__save_buffer(const char *path, const void *buf, size_t n, tg_error *err) {
    tg__save s;
    int rc = tg__save_begin(&s, path, err);
    if (rc) return rc;
    if ((rc = tg__save_write(&s, buf, n, err))) {
        tg__save_abort(&s);
        return rc;
    }
    return tg__save_commit(&s, err);
}

FILE *tg__open_log(const char *path, tg_error *err) {
    /* O_NONBLOCK: a FIFO without a reader fails (ENXIO) instead of waiting. */
    int fd = open(path, O_WRONLY | O_CREAT | O_NONBLOCK | O_CLOEXEC, 0666);
    struct stat st;
    if (fd < 0) {
        tg__err(err, TG_ERR_IO, "%s: %s", path,
                errno == ENXIO ? "a FIFO that no process reads" : strerror(errno));
        return NULL;
    }
    if (fstat(fd, &st) || (S_ISREG(st.st_mode) && ftruncate(fd, 0))) {
        tg__err(err, TG_ERR_IO, "%s: %s", path, strerror(errno));
        close(fd);
        return NULL;
    }
    int fl = fcntl(fd, F_GETFL);
    if (fl != -1) fcntl(fd, F_SETFL, fl & ~O_NONBLOCK);
    FILE *f = fdopen(fd, "w");
    if (!f) {
        tg__err(err, TG_ERR_NOMEM, "%s: %s", path, strerror(errno));
        close(fd);
    }
    return f;
}
