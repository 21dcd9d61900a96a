/*
 * Checkpoints: every parameter of a store in one versioned, CRC-checked
 * binary file (the layout is in docs/formats.md). Saving goes through
 * safe_file.h: an atomic replacement that keeps the old file's mode. Loading reads and verifies the whole file before touching
 * the store, so a bad file leaves the model as it was.
 */
#define _POSIX_C_SOURCE 200809L
#include "le.h"
#include "nn_internal.h"
#include "safe_file.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

/* Version 1: parameters only; version 2 adds tagged sections after them
 * (a training state). A file without sections is still written as version
 * 1, which older readers take. */
#define FORMAT_VERSION 2
#define SECTION_HEAD 12
#define HEADER_BYTES 32
#define CRC_BYTES 4
#define NAME_MAX_LEN 127
#define MAX_FILE_BYTES ((uint64_t)1 << 36)

static const unsigned char MAGIC[8] = {0x89, 'T', 'G', 'M', '\r', '\n', 0x1a, '\n'};

/* zlib's crc32 takes an unsigned length; feed it in pieces. */
static uint32_t crc_of(const unsigned char *p, size_t n) {
    uLong c = crc32(0L, Z_NULL, 0);
    while (n) {
        uInt k = n > (1u << 30) ? (1u << 30) : (uInt)n;
        c = crc32(c, p, k);
        p += k;
        n -= k;
    }
    return (uint32_t)c;
}

/* ----------------------------------------------------------------- save -- */

static size_t es_of(tg_dtype dt) { return dt == TG_F64 ? 8 : 4; }

/* The whole file in a new buffer of *size bytes, or NULL on no memory. */
static unsigned char *encode(const tg_params *ps, const tg__section *sec, size_t *size) {
    int n = tg_params_count(ps);
    const char *meta = tg_params_meta(ps);
    size_t es = es_of(tg_params_dtype(ps)), bytes = HEADER_BYTES + strlen(meta) + CRC_BYTES;
    if (sec) bytes += SECTION_HEAD + sec->len;
    for (int i = 0; i < n; i++)
        bytes += 2 + strlen(tg_params_name(ps, i)) + 2 +
                 8 * (size_t)tg_params_shape(ps, i, NULL) +
                 (size_t)tg_params_numel(ps, i) * es;
    unsigned char *buf = tg__malloc(bytes), *p = buf;
    if (!buf) return NULL;
    memcpy(p, MAGIC, 8);
    put32(p + 8, sec ? 2 : 1);
    put32(p + 12, tg_params_dtype(ps) == TG_F64 ? 1 : 0);
    put32(p + 16, (uint32_t)n);
    put32(p + 20, (uint32_t)strlen(meta));
    put64(p + 24, bytes);
    p += HEADER_BYTES;
    memcpy(p, meta, strlen(meta));
    p += strlen(meta);
    for (int i = 0; i < n; i++) {
        const char *name = tg_params_name(ps, i);
        int64_t shape[TG_MAX_DIMS];
        int nd = tg_params_shape(ps, i, shape);
        put16(p, (uint32_t)strlen(name));
        memcpy(p + 2, name, strlen(name));
        p += 2 + strlen(name);
        p[0] = (unsigned char)nd;
        p[1] = 0;
        p += 2;
        for (int k = 0; k < nd; k++, p += 8) put64(p, (uint64_t)shape[k]);
    }
    for (int i = 0; i < n; i++) {
        size_t k = (size_t)tg_params_numel(ps, i);
        copy_le(p, tg_params_value(ps, i), k, es);
        p += k * es;
    }
    if (sec) {
        memcpy(p, sec->tag, 4);
        put64(p + 4, sec->len);
        p += SECTION_HEAD;
        if (sec->len) memcpy(p, sec->data, sec->len);
        p += sec->len;
    }
    put32(p, crc_of(buf, bytes - CRC_BYTES));
    *size = bytes;
    return buf;
}

int tg_checkpoint_save(const tg_params *ps, const char *path, tg_error *err) {
    return tg__checkpoint_save(ps, NULL, path, err);
}

int tg__checkpoint_save(const tg_params *ps, const tg__section *sec, const char *path,
                        tg_error *err) {
    tg__err_clear(err);
    if (!ps || !path) return tg__err(err, TG_ERR_NULL, "checkpoint_save: argument is NULL");
    if (!*path) return tg__err(err, TG_ERR_IO, "checkpoint_save: empty file name");
    size_t size;
    unsigned char *buf = encode(ps, sec, &size);
    if (!buf) return tg__err(err, TG_ERR_NOMEM, "%s: out of memory encoding the model", path);
    int rc = tg__save_buffer(path, buf, size, err);
    tg__free(buf);
    return rc;
}

/* ----------------------------------------------------------------- load -- */

typedef struct record {
    const char *name; /* not NUL-terminated: name_len bytes */
    size_t name_len;
    int ndim;
    int64_t shape[TG_MAX_DIMS];
    int64_t numel;
    const unsigned char *data;
} record;

typedef struct parsed {
    unsigned char *buf; /* the whole file */
    tg_dtype dtype;
    int count;
    const char *meta;
    size_t meta_len;
    record *rec;
    tg__section train; /* version 2's training section; len 0 when absent */
    bool has_train;
} parsed;

static void parsed_free(parsed *f) {
    tg__free(f->buf);
    tg__free(f->rec);
}

/* Checks the magic number and the declared size in the first bytes of fd,
 * so that a big file that is not a model, or not the size its header
 * claims, is refused before a buffer of its size is allocated. */
static int check_head(int fd, const char *path, uint64_t size, tg_error *err) {
    unsigned char h[HEADER_BYTES];
    size_t have = 0;
    while (have < sizeof h) {
        ssize_t k = pread(fd, h + have, sizeof h - have, (off_t)have);
        if (k < 0 && errno == EINTR) continue;
        if (k < 0) return tg__err(err, TG_ERR_IO, "%s: read error: %s", path, strerror(errno));
        if (k == 0) break;
        have += (size_t)k;
    }
    if (have < sizeof MAGIC || memcmp(h, MAGIC, sizeof MAGIC))
        return tg__err(err, TG_ERR_FORMAT, "%s: not a tapegrad model file (bad magic number)",
                       path);
    if (have < sizeof h) return TG_OK; /* parse() reports the short file */
    uint64_t declared = get64(h + 24);
    if (declared > size)
        return tg__err(err, TG_ERR_FORMAT, "%s: truncated: %llu of %llu bytes", path,
                       (unsigned long long)size, (unsigned long long)declared);
    if (declared < size)
        return tg__err(err, TG_ERR_FORMAT, "%s: corrupt: %llu bytes where the header says %llu",
                       path, (unsigned long long)size, (unsigned long long)declared);
    return TG_OK;
}

/* Reads path whole into f->buf; *size gets its length. */
static int slurp(const char *path, parsed *f, size_t *size, tg_error *err) {
    struct stat st;
    int fd = tg__open_regular(path, "model file", &st, err), rc = TG_OK;
    if (fd < 0) return -fd;
    if (st.st_size == 0) {
        rc = tg__err(err, TG_ERR_FORMAT, "%s: empty file, not a model", path);
    } else if ((uint64_t)st.st_size > MAX_FILE_BYTES) {
        rc = tg__err(err, TG_ERR_FORMAT, "%s: %lld bytes is too large for a model file", path,
                     (long long)st.st_size);
    } else if ((rc = check_head(fd, path, (uint64_t)st.st_size, err))) {
        /* not a model, or not the size it claims: refused before allocating */
    } else if (!(f->buf = tg__malloc((size_t)st.st_size))) {
        rc = tg__err(err, TG_ERR_NOMEM, "%s: out of memory for %lld bytes", path,
                     (long long)st.st_size);
    } else {
        size_t want = (size_t)st.st_size, have = 0;
        while (have < want) {
            ssize_t k = read(fd, f->buf + have, want - have);
            if (k < 0 && errno == EINTR) continue;
            if (k < 0) {
                rc = tg__err(err, TG_ERR_IO, "%s: read error: %s", path, strerror(errno));
                break;
            }
            if (k == 0) break; /* shrank while reading: judged as truncated below */
            have += (size_t)k;
        }
        *size = have;
    }
    close(fd);
    return rc;
}

/* Reads and verifies path; on success f describes every parameter. */
static int parse(const char *path, parsed *f, tg_error *err) {
    memset(f, 0, sizeof *f);
    size_t size = 0;
    int rc = slurp(path, f, &size, err);
    if (rc) return rc;
    const unsigned char *b = f->buf;
    if (size < sizeof MAGIC || memcmp(b, MAGIC, sizeof MAGIC))
        return tg__err(err, TG_ERR_FORMAT, "%s: not a tapegrad model file (bad magic number)",
                       path);
    if (size < HEADER_BYTES + CRC_BYTES)
        return tg__err(err, TG_ERR_FORMAT, "%s: truncated: %zu bytes, shorter than a header",
                       path, size);
    uint32_t version = get32(b + 8);
    if (version == 0 || version > FORMAT_VERSION)
        return tg__err(err, TG_ERR_FORMAT,
                       "%s: format version %u; this tapegrad reads versions 1 to %d%s", path,
                       (unsigned)version, FORMAT_VERSION,
                       version ? " (a newer tapegrad wrote it)" : "");
    uint64_t declared = get64(b + 24);
    if (declared > size)
        return tg__err(err, TG_ERR_FORMAT, "%s: truncated: %zu of %llu bytes", path, size,
                       (unsigned long long)declared);
    if (declared < size)
        return tg__err(err, TG_ERR_FORMAT,
                       "%s: corrupt: %zu bytes where the header says %llu", path, size,
                       (unsigned long long)declared);
    uint32_t stored = get32(b + size - CRC_BYTES), actual = crc_of(b, size - CRC_BYTES);
    if (stored != actual)
        return tg__err(err, TG_ERR_FORMAT,
                       "%s: corrupt: CRC32 mismatch (stored %08x, computed %08x)", path,
                       (unsigned)stored, (unsigned)actual);
    /* The CRC matched, so what follows only guards against files written
     * wrongly on purpose; each failure is still a clear refusal. */
    uint32_t dtype = get32(b + 12), count = get32(b + 16), meta_len = get32(b + 20);
    size_t end = size - CRC_BYTES, pos = HEADER_BYTES;
#define NEED(n, what)                                                                      \
    if (end - pos < (size_t)(n))                                                           \
        return tg__err(err, TG_ERR_FORMAT, "%s: corrupt: %s runs past the end", path, what);
    if (dtype > 1)
        return tg__err(err, TG_ERR_FORMAT, "%s: unknown dtype code %u", path, (unsigned)dtype);
    f->dtype = dtype ? TG_F64 : TG_F32;
    if (meta_len > 65535)
        return tg__err(err, TG_ERR_FORMAT, "%s: corrupt: meta text of %u bytes", path,
                       (unsigned)meta_len);
    NEED(meta_len, "the meta text");
    f->meta = (const char *)b + pos;
    f->meta_len = meta_len;
    pos += meta_len;
    if (count > (end - pos) / 12)
        return tg__err(err, TG_ERR_FORMAT, "%s: corrupt: %u parameters cannot fit", path,
                       (unsigned)count);
    if (count && !(f->rec = tg__calloc(count, sizeof *f->rec)))
        return tg__err(err, TG_ERR_NOMEM, "%s: out of memory", path);
    f->count = (int)count;
    for (uint32_t i = 0; i < count; i++) {
        record *r = &f->rec[i];
        NEED(2, "a parameter name");
        r->name_len = get16(b + pos);
        pos += 2;
        if (r->name_len == 0 || r->name_len > NAME_MAX_LEN)
            return tg__err(err, TG_ERR_FORMAT, "%s: parameter %u: bad name length %zu", path,
                           (unsigned)i, r->name_len);
        NEED(r->name_len + 2, "a parameter name");
        r->name = (const char *)b + pos;
        if (memchr(r->name, 0, r->name_len))
            return tg__err(err, TG_ERR_FORMAT, "%s: parameter %u: NUL in its name", path,
                           (unsigned)i);
        pos += r->name_len;
        r->ndim = b[pos];
        pos += 2;
        if (r->ndim < 1 || r->ndim > TG_MAX_DIMS)
            return tg__err(err, TG_ERR_FORMAT, "%s: '%.*s': %d dimensions", path,
                           (int)r->name_len, r->name, r->ndim);
        NEED(8 * (size_t)r->ndim, "a shape");
        r->numel = 1;
        for (int k = 0; k < r->ndim; k++, pos += 8) {
            uint64_t d = get64(b + pos);
            if (d < 1 || d > (uint64_t)TG_MAX_NUMEL || (r->numel *= (int64_t)d) > TG_MAX_NUMEL)
                return tg__err(err, TG_ERR_FORMAT, "%s: '%.*s': bad shape", path,
                               (int)r->name_len, r->name);
            r->shape[k] = (int64_t)d;
        }
    }
    size_t es = es_of(f->dtype);
    for (int i = 0; i < f->count; i++) {
        record *r = &f->rec[i];
        NEED((size_t)r->numel * es, "the parameter data");
        r->data = b + pos;
        pos += (size_t)r->numel * es;
    }
    /* Version 2: tagged sections; each tag at most once. */
    while (version >= 2 && end - pos >= SECTION_HEAD) {
        const unsigned char *tag = b + pos;
        uint64_t len = get64(b + pos + 4);
        pos += SECTION_HEAD;
        NEED(len, "a section");
        if (memcmp(tag, TG__TRAIN_TAG, 4) || f->has_train)
            return tg__err(err, TG_ERR_FORMAT, "%s: corrupt: %s section '%.4s'", path,
                           f->has_train ? "a second" : "unknown", (const char *)tag);
        f->train = (tg__section){TG__TRAIN_TAG, b + pos, (size_t)len};
        f->has_train = true;
        pos += (size_t)len;
    }
    if (pos != end)
        return tg__err(err, TG_ERR_FORMAT, "%s: corrupt: %zu unexplained bytes", path, end - pos);
#undef NEED
    return TG_OK;
}

static char *shape_text(char *buf, size_t len, int ndim, const int64_t *shape) {
    int k = snprintf(buf, len, "[");
    for (int i = 0; i < ndim && k > 0 && (size_t)k < len; i++)
        k += snprintf(buf + k, len - (size_t)k, i ? ",%lld" : "%lld", (long long)shape[i]);
    if (k > 0 && (size_t)k < len) snprintf(buf + k, len - (size_t)k, "]");
    return buf;
}

int tg_checkpoint_load(tg_params *ps, const char *path, tg_error *err) {
    tg__err_clear(err);
    if (!ps || !path) return tg__err(err, TG_ERR_NULL, "checkpoint_load: argument is NULL");
    parsed f;
    int rc = parse(path, &f, err);
    if (rc) {
        parsed_free(&f);
        return rc;
    }
    if (f.dtype != tg_params_dtype(ps)) {
        rc = tg__err(err, TG_ERR_DTYPE, "%s: holds %s parameters; the model is %s", path,
                     f.dtype == TG_F64 ? "float64" : "float32",
                     f.dtype == TG_F64 ? "float32" : "float64");
    } else if (f.count != tg_params_count(ps)) {
        rc = tg__err(err, TG_ERR_SHAPE,
                     "%s: another architecture: %d parameters where the model has %d", path,
                     f.count, tg_params_count(ps));
    }
    for (int i = 0; i < f.count && !rc; i++) {
        const record *r = &f.rec[i];
        const char *name = tg_params_name(ps, i);
        int64_t shape[TG_MAX_DIMS];
        int nd = tg_params_shape(ps, i, shape);
        bool same = strlen(name) == r->name_len && !memcmp(name, r->name, r->name_len) &&
                    nd == r->ndim;
        for (int k = 0; same && k < nd; k++) same = shape[k] == r->shape[k];
        if (!same) {
            char a[96], b[96];
            rc = tg__err(err, TG_ERR_SHAPE,
                         "%s: another architecture: parameter %d is '%.*s' %s in the file, "
                         "'%s' %s in the model",
                         path, i, (int)r->name_len, r->name,
                         shape_text(a, sizeof a, r->ndim, r->shape), name,
                         shape_text(b, sizeof b, nd, shape));
        }
    }
    /* Everything is verified: only now change the store. */
    char *meta = NULL;
    if (!rc && !(meta = tg__malloc(f.meta_len + 1)))
        rc = tg__err(err, TG_ERR_NOMEM, "%s: out of memory", path);
    if (!rc) {
        memcpy(meta, f.meta, f.meta_len);
        meta[f.meta_len] = '\0';
        if (tg_params_set_meta(ps, meta)) rc = tg__err(err, TG_ERR_NOMEM, "%s: out of memory", path);
    }
    for (int i = 0; i < f.count && !rc; i++)
        copy_le(tg_params_value(ps, i), f.rec[i].data, (size_t)f.rec[i].numel,
                es_of(f.dtype));
    tg__free(meta);
    parsed_free(&f);
    return rc;
}

tg_params *tg_checkpoint_read(const char *path, tg_error *err) {
    return tg__checkpoint_read(path, NULL, err);
}

tg_params *tg__checkpoint_read(const char *path, unsigned char **train, tg_error *err) {
    tg__err_clear(err);
    if (train) *train = NULL;
    if (!path) {
        tg__err(err, TG_ERR_NULL, "checkpoint_read: path is NULL");
        return NULL;
    }
    parsed f;
    int rc = parse(path, &f, err);
    if (!rc && train && !f.has_train)
        rc = tg__err(err, TG_ERR_FORMAT, "%s: holds a model but no training state (a file "
                     "of tg_checkpoint_save, not tg_training_save)", path);
    if (!rc && train) {
        /* A copy with its length in front, so the caller frees one block. */
        if (!(*train = tg__malloc(8 + f.train.len)))
            rc = tg__err(err, TG_ERR_NOMEM, "%s: out of memory", path);
        else {
            put64(*train, f.train.len);
            if (f.train.len) memcpy(*train + 8, f.train.data, f.train.len);
        }
    }
    tg_params *ps = rc ? NULL : tg_params_new(f.dtype);
    if (!rc && !ps) rc = tg__err(err, TG_ERR_NOMEM, "%s: out of memory", path);
    char name[NAME_MAX_LEN + 1];
    for (int i = 0; i < f.count && !rc; i++) {
        const record *r = &f.rec[i];
        memcpy(name, r->name, r->name_len);
        name[r->name_len] = '\0';
        tg_error e;
        rc = tg_params_add(ps, name, r->ndim, r->shape, &e);
        if (rc)
            tg__err(err, rc == TG_ERR_ARG ? TG_ERR_FORMAT : rc, "%s: %s", path, e.message);
        else
            copy_le(tg_params_value(ps, i), r->data, (size_t)r->numel, es_of(f.dtype));
    }
    if (!rc) {
        char *meta = tg__malloc(f.meta_len + 1);
        if (meta) {
            memcpy(meta, f.meta, f.meta_len);
            meta[f.meta_len] = '\0';
        }
        if (!meta || tg_params_set_meta(ps, meta))
            rc = tg__err(err, TG_ERR_NOMEM, "%s: out of memory", path);
        tg__free(meta);
    }
    parsed_free(&f);
    if (rc) {
        tg_params_free(ps);
        if (train) {
            tg__free(*train);
            *train = NULL;
        }
        return NULL;
    }
    return ps;
}
