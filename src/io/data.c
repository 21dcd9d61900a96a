/*
 * Datasets: IDX (MNIST's format) and CSV readers through zlib, which reads
 * gzipped and plain files alike; one-hot mini-batch gathering.
 *
 * IDX: a big-endian header (magic 0x0000080D: 0x08 = unsigned bytes, D
 * dimensions; then D 32-bit sizes) and the bytes. Images are D = 3
 * (count, rows, cols), labels D = 1 (count).
 */
#define _DEFAULT_SOURCE /* sysconf(_SC_PHYS_PAGES) */
#define _POSIX_C_SOURCE 200809L
#include "nn_internal.h"

#include <errno.h>
#include <float.h>
#include <limits.h>
#include <math.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

struct tg_dataset {
    size_t n;
    int64_t d;
    int classes;
    float *x;   /* [n, d] */
    int32_t *y; /* [n] */
};

/* Largest IDX payload accepted (bytes): far above MNIST's 47 MB. */
#define IDX_MAX_BYTES ((uint64_t)1 << 34)

static tg_dataset *dataset_alloc(size_t n, int64_t d, tg_error *err, const char *who) {
    tg_dataset *ds = tg__calloc(1, sizeof *ds);
    if (ds && n) {
        ds->x = tg__malloc(n * (size_t)d * sizeof *ds->x);
        ds->y = tg__malloc(n * sizeof *ds->y);
    }
    if (!ds || (n && (!ds->x || !ds->y))) {
        tg_dataset_free(ds);
        tg__err(err, TG_ERR_NOMEM, "%s: out of memory for %zu samples of %lld features", who, n,
                (long long)d);
        return NULL;
    }
    ds->n = n;
    ds->d = d;
    return ds;
}

void tg_dataset_free(tg_dataset *ds) {
    if (!ds) return;
    tg__free(ds->x);
    tg__free(ds->y);
    tg__free(ds);
}

/* Opens path for reading through zlib, refusing directories and naming the
 * file in the error. */
static gzFile open_gz(const char *path, tg_error *err) {
    struct stat st;
    if (stat(path, &st) != 0) {
        tg__err(err, TG_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
        return NULL;
    }
    if (S_ISDIR(st.st_mode)) {
        tg__err(err, TG_ERR_IO, "%s: is a directory, not a data file", path);
        return NULL;
    }
    gzFile f = gzopen(path, "rb");
    if (!f) tg__err(err, TG_ERR_IO, "%s: cannot open: %s", path, errno ? strerror(errno) : "out of memory");
    return f;
}

/* Reads up to n bytes; returns the count read, or -1 (err filled) on a
 * read or decompression error. */
static int64_t read_bytes(gzFile f, const char *path, void *buf, uint64_t n, tg_error *err) {
    uint64_t done = 0;
    while (done < n) {
        uint64_t want = n - done > (1u << 30) ? (1u << 30) : n - done;
        int k = gzread(f, (char *)buf + done, (unsigned)want);
        if (k < 0) {
            int code;
            const char *msg = gzerror(f, &code);
            tg__err(err, TG_ERR_IO, "%s: read error: %s",
                    path, code == Z_ERRNO ? strerror(errno) : msg);
            return -1;
        }
        if (k == 0) break;
        done += (uint64_t)k;
    }
    return (int64_t)done;
}

static uint32_t be32(const unsigned char *p) {
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

/* Reads an IDX file of unsigned bytes with ndim dimensions into a new
 * buffer; dims receives the sizes. NULL with err filled on error. */
static unsigned char *read_idx(const char *path, int ndim, const char *what, uint32_t dims[3],
                               tg_error *err) {
    gzFile f = open_gz(path, err);
    if (!f) return NULL;
    unsigned char head[16], *data = NULL;
    size_t hlen = 4 + 4 * (size_t)ndim;
    int64_t got = read_bytes(f, path, head, hlen, err);
    if (got < 0) goto fail;
    if (got == 0) {
        tg__err(err, TG_ERR_FORMAT, "%s: empty file", path);
        goto fail;
    }
    if (got < 4 || be32(head) != (uint32_t)(0x800 | ndim)) {
        uint32_t magic = got >= 4 ? be32(head) : 0;
        tg__err(err, TG_ERR_FORMAT,
                "%s: wrong magic number 0x%08x: not an IDX %s file (expected 0x%08x)%s", path,
                (unsigned)magic, what, 0x800u | (unsigned)ndim,
                magic == (0x800u | (unsigned)(ndim == 1 ? 3 : 1))
                    ? (ndim == 1 ? "; this is an image file" : "; this is a label file")
                    : "");
        goto fail;
    }
    if ((size_t)got < hlen) {
        tg__err(err, TG_ERR_FORMAT, "%s: truncated header (%lld of %zu bytes)", path,
                (long long)got, hlen);
        goto fail;
    }
    uint64_t total = 1;
    double product = 1;
    for (int i = 0; i < ndim; i++) {
        dims[i] = be32(head + 4 + 4 * i);
        product *= dims[i];
        if (dims[i] == 0) {
            tg__err(err, TG_ERR_FORMAT, "%s: implausible header: dimension %d is 0", path, i);
            goto fail;
        }
    }
    if (product > (double)IDX_MAX_BYTES) {
        /* Name the product, not the dimension that happened to cross the limit. */
        char shape[64];
        int k = 0;
        for (int i = 0; i < ndim; i++)
            k += snprintf(shape + k, sizeof shape - (size_t)k, i ? " x %u" : "%u", (unsigned)dims[i]);
        tg__err(err, TG_ERR_FORMAT, "%s: implausible header: %s = %.0f bytes of %s data, more "
                "than the %llu bytes (16 GiB) an IDX file may hold", path, shape, product, what,
                (unsigned long long)IDX_MAX_BYTES);
        goto fail;
    }
    for (int i = 0; i < ndim; i++) total *= dims[i];
    /* Images become float32 features beside their bytes: a header promising
     * more than the machine's memory is refused before anything is
     * inflated (a small gzip bomb would otherwise take gigabytes first). */
    long pages = sysconf(_SC_PHYS_PAGES), page = sysconf(_SC_PAGESIZE);
    double need = (double)total * (ndim == 3 ? 1 + sizeof(float) : 1),
           have_mem = pages > 0 && page > 0 ? (double)pages * (double)page : 0;
    if (have_mem > 0 && need > have_mem) {
        struct stat st;
        if (gzdirect(f) && stat(path, &st) == 0 && (uint64_t)st.st_size < hlen + total)
            tg__err(err, TG_ERR_FORMAT, "%s: truncated: the header promises %llu bytes of %s "
                    "data, the file holds %llu", path, (unsigned long long)total, what,
                    (unsigned long long)st.st_size - hlen);
        else
            tg__err(err, TG_ERR_NOMEM, "%s: the header promises %llu bytes of %s data, %.1f GB "
                    "in memory, more than this machine's %.1f GB", path,
                    (unsigned long long)total, what, need / 1e9, have_mem / 1e9);
        goto fail;
    }
    /* Grow the buffer as bytes arrive, so that a header claiming far more
     * than the file holds is reported as truncated, not as out of memory. */
    uint64_t cap = total < ((uint64_t)1 << 24) ? total : ((uint64_t)1 << 24), have = 0;
    for (;;) {
        unsigned char *p = tg__realloc(data, (size_t)cap);
        if (!p) {
            tg__err(err, TG_ERR_NOMEM, "%s: out of memory for %llu bytes", path,
                    (unsigned long long)cap);
            goto fail;
        }
        data = p;
        int64_t k = read_bytes(f, path, data + have, cap - have, err);
        if (k < 0) goto fail;
        have += (uint64_t)k;
        if (have < cap || cap == total) break;
        cap = cap * 2 < total ? cap * 2 : total;
    }
    if (have < total) {
        tg__err(err, TG_ERR_FORMAT,
                "%s: truncated: the header promises %llu bytes of %s data, the file holds %llu",
                path, (unsigned long long)total, what, (unsigned long long)have);
        goto fail;
    }
    gzclose(f);
    return data;
fail:
    tg__free(data);
    gzclose(f);
    return NULL;
}

tg_dataset *tg_dataset_read_idx(const char *images, const char *labels, int classes,
                                tg_error *err) {
    tg__err_clear(err);
    if (!images || !labels) {
        tg__err(err, TG_ERR_NULL, "read_idx: a file name is NULL");
        return NULL;
    }
    if (classes < 0 || classes > 256) {
        tg__err(err, TG_ERR_ARG, "read_idx: classes is %d; 0 (infer) to 256 allowed", classes);
        return NULL;
    }
    uint32_t di[3], dl[3];
    unsigned char *pix = read_idx(images, 3, "image", di, err);
    if (!pix) return NULL;
    unsigned char *lab = read_idx(labels, 1, "label", dl, err);
    if (!lab) {
        tg__free(pix);
        return NULL;
    }
    tg_dataset *ds = NULL;
    if (di[0] != dl[0]) {
        tg__err(err, TG_ERR_FORMAT, "%s holds %u images but %s holds %u labels", images,
                (unsigned)di[0], labels, (unsigned)dl[0]);
        goto done;
    }
    int maxl = 0;
    for (uint32_t i = 0; i < dl[0]; i++) {
        if (classes && lab[i] >= classes) {
            tg__err(err, TG_ERR_FORMAT, "%s: label %u of item %u is out of range [0, %d)",
                    labels, (unsigned)lab[i], (unsigned)i, classes);
            goto done;
        }
        maxl = lab[i] > maxl ? lab[i] : maxl;
    }
    size_t n = di[0], d = (size_t)di[1] * di[2];
    if (!(ds = dataset_alloc(n, (int64_t)d, err, images))) goto done;
    ds->classes = classes ? classes : maxl + 1;
    for (size_t i = 0; i < n * d; i++) ds->x[i] = (float)pix[i] * (1.0f / 255.0f);
    for (size_t i = 0; i < n; i++) ds->y[i] = lab[i];
done:
    tg__free(pix);
    tg__free(lab);
    return ds;
}

tg_dataset *tg_dataset_read_mnist(const char *dir, const char *prefix, int classes,
                                  tg_error *err) {
    tg__err_clear(err);
    if (!dir || !prefix) {
        tg__err(err, TG_ERR_NULL, "read_mnist: directory or prefix is NULL");
        return NULL;
    }
    char paths[2][4096];
    const char *kinds[2] = {"images-idx3", "labels-idx1"};
    for (int k = 0; k < 2; k++) {
        struct stat st;
        int len = snprintf(paths[k], sizeof paths[k], "%s/%s-%s-ubyte.gz", dir, prefix, kinds[k]);
        if (len >= (int)sizeof paths[k]) {
            tg__err(err, TG_ERR_ARG, "read_mnist: directory name too long");
            return NULL;
        }
        if (stat(paths[k], &st) != 0) {
            paths[k][len - 3] = '\0'; /* try the uncompressed name */
            if (stat(paths[k], &st) != 0) {
                tg__err(err, TG_ERR_IO, "%s: no %s-%s-ubyte[.gz] there", dir, prefix, kinds[k]);
                return NULL;
            }
        }
    }
    return tg_dataset_read_idx(paths[0], paths[1], classes, err);
}

/* ------------------------------------------------------------------ csv -- */

/* Lines of a (possibly gzipped) text file, read in blocks so that a NUL
 * byte is seen rather than ending a line early or looping forever. */
typedef struct line_reader {
    gzFile f;
    const char *path;
    char *line; /* the current line, NUL-terminated */
    size_t cap;
    unsigned char block[1 << 16];
    size_t pos, len;
    bool eof;
} line_reader;

/* Reads the next line into r->line without its line end; returns its
 * length, -1 at end of file, -2 on an error (err filled: a read error, no
 * memory, or a NUL byte, which no text file has). */
static long read_line(line_reader *r, long lineno, tg_error *err) {
    size_t len = 0;
    bool any = false;
    for (;;) {
        if (r->pos == r->len) {
            if (r->eof) break;
            int k = gzread(r->f, r->block, sizeof r->block);
            if (k < 0) {
                int code;
                const char *msg = gzerror(r->f, &code);
                tg__err(err, TG_ERR_IO, "%s: read error: %s", r->path,
                        code == Z_ERRNO ? strerror(errno) : msg);
                return -2;
            }
            r->pos = 0;
            r->len = (size_t)k;
            r->eof = k == 0;
            continue;
        }
        any = true;
        const unsigned char *s = r->block + r->pos, *nl = memchr(s, '\n', r->len - r->pos);
        size_t take = nl ? (size_t)(nl - s) : r->len - r->pos;
        if (memchr(s, 0, take)) {
            tg__err(err, TG_ERR_FORMAT, "%s:%ld: a NUL byte: not a text file", r->path, lineno);
            return -2;
        }
        if (r->cap - len < take + 1) {
            size_t ncap = r->cap ? r->cap : 4096;
            while (ncap - len < take + 1) ncap *= 2;
            char *p = tg__realloc(r->line, ncap);
            if (!p) {
                tg__err(err, TG_ERR_NOMEM, "%s:%ld: out of memory for a line", r->path, lineno);
                return -2;
            }
            r->line = p;
            r->cap = ncap;
        }
        memcpy(r->line + len, s, take);
        len += take;
        r->pos += take + (nl != NULL);
        if (nl) break;
    }
    if (!any) return -1;
    while (len && r->line[len - 1] == '\r') len--;
    r->line[len] = '\0';
    return (long)len;
}

/* A field of a header: text that is not a number to strtod (so neither
 * inf nor nan), even with one pair of double quotes around it removed. */
static bool is_name(const char *s, size_t n) {
    while (n && (*s == ' ' || *s == '\t')) s++, n--;
    while (n && (s[n - 1] == ' ' || s[n - 1] == '\t')) n--;
    if (n >= 2 && s[0] == '"' && s[n - 1] == '"') s++, n -= 2;
    if (n == 0) return false;
    char buf[64], *end;
    size_t k = n < sizeof buf - 1 ? n : sizeof buf - 1;
    memcpy(buf, s, k);
    buf[k] = '\0';
    strtod(buf, &end);
    while (*end == ' ' || *end == '\t') end++;
    return end == buf || *end;
}

/* The header rule: a first line every field of which is a name. */
static bool is_header(const char *line) {
    for (;;) {
        size_t n = strcspn(line, ",");
        if (!is_name(line, n)) return false;
        if (!line[n]) return true;
        line += n + 1;
    }
}

/* Splits a line at commas in place, parsing every field; returns the field
 * count, or -(k+1) when field k (from 0) is not a finite number, with *bad
 * pointing at its text. */
static long parse_fields(char *line, double **vals, size_t *cap, const char **bad) {
    long k = 0;
    char *s = line;
    for (;;) {
        *bad = s;
        if ((size_t)k == *cap) {
            size_t ncap = *cap ? 2 * *cap : 1024;
            double *p = tg__realloc(*vals, ncap * sizeof *p);
            if (!p) return LONG_MIN;
            *vals = p;
            *cap = ncap;
        }
        char *end;
        double v = strtod(s, &end);
        while (*end == ' ' || *end == '\t') end++;
        if (end == s || (*end && *end != ',') || !isfinite(v)) return -(k + 1);
        (*vals)[k++] = v;
        if (!*end) return k;
        s = end + 1;
    }
}

/* Why field col (counted from 0, as label_col counts), whose text starts at
 * s, was refused: empty, not a number, or a number that is not finite (nan,
 * inf, an overflow such as 1e999); hint follows "not a number". */
static void csv_field_error(tg_error *err, const char *path, long lineno, long col,
                            const char *s, const char *hint) {
    while (*s == ' ' || *s == '\t') s++;
    int len = (int)strcspn(s, ",");
    while (len > 0 && (s[len - 1] == ' ' || s[len - 1] == '\t' || s[len - 1] == '\r')) len--;
    char *end;
    double v = strtod(s, &end);
    if (len == 0)
        tg__err(err, TG_ERR_FORMAT, "%s:%ld: column %ld is empty", path, lineno, col);
    else if (end == s + len && !isfinite(v))
        tg__err(err, TG_ERR_FORMAT, "%s:%ld: column %ld is '%.*s': values that are not finite "
                "are refused", path, lineno, col, len > 40 ? 40 : len, s);
    else
        tg__err(err, TG_ERR_FORMAT, "%s:%ld: column %ld ('%.*s') is not a number%s", path,
                lineno, col, len > 40 ? 40 : len, s, hint);
}

static bool blank(const char *s) {
    while (*s == ' ' || *s == '\t') s++;
    return !*s;
}

tg_dataset *tg_dataset_read_csv(const char *path, int label_col, double scale, int classes,
                                tg_error *err) {
    tg__err_clear(err);
    if (!path) {
        tg__err(err, TG_ERR_NULL, "read_csv: path is NULL");
        return NULL;
    }
    if (label_col < -1 || classes < 0 || !isfinite(scale)) {
        tg__err(err, TG_ERR_ARG, "%s: label column %d, classes %d, scale %g: out of range", path,
                label_col, classes, scale);
        return NULL;
    }
    line_reader *r = tg__calloc(1, sizeof *r);
    if (!r) {
        tg__err(err, TG_ERR_NOMEM, "%s: out of memory", path);
        return NULL;
    }
    r->path = path;
    if (!(r->f = open_gz(path, err))) {
        tg__free(r);
        return NULL;
    }
    double *vals = NULL;
    float *x = NULL;
    int32_t *y = NULL;
    size_t vcap = 0, n = 0, ncap = 0;
    long width = -1, lineno = 0, len;
    int maxl = -1;
    bool first = true; /* the first non-blank line may be a header */
    tg_dataset *ds = NULL;
    while ((len = read_line(r, lineno + 1, err)) >= 0) {
        char *line = r->line;
        lineno++;
        /* A UTF-8 byte-order mark is not part of the first field. */
        if (lineno == 1 && len >= 3 && !memcmp(line, "\xef\xbb\xbf", 3)) line += 3;
        if (blank(line)) continue;
        bool was_first = first;
        first = false;
        if (was_first && is_header(line)) continue;
        const char *bad;
        long k = parse_fields(line, &vals, &vcap, &bad);
        if (k == LONG_MIN) {
            tg__err(err, TG_ERR_NOMEM, "%s:%ld: out of memory", path, lineno);
            goto done;
        }
        if (k < 0) {
            csv_field_error(err, path, lineno, -k - 1, bad,
                            was_first ? " (a header line has no numbers at all)" : "");
            goto done;
        }
        if (width < 0) {
            width = k;
            if (label_col >= width || width - (label_col >= 0) < 1) {
                tg__err(err, TG_ERR_FORMAT,
                        "%s:%ld: %ld fields; need a label column %d and at least one feature",
                        path, lineno, k, label_col);
                goto done;
            }
        } else if (k != width) {
            tg__err(err, TG_ERR_FORMAT, "%s:%ld: %ld fields where the first line has %ld", path,
                    lineno, k, width);
            goto done;
        }
        double lv = label_col >= 0 ? vals[label_col] : 0; /* no labels: all 0 */
        if (lv != floor(lv) || lv < 0 || lv > 65535 || (classes && lv >= classes)) {
            if (lv != floor(lv))
                tg__err(err, TG_ERR_FORMAT, "%s:%ld: label %g is not an integer", path, lineno, lv);
            else
                tg__err(err, TG_ERR_FORMAT, "%s:%ld: label %g is out of range [0, %d)", path,
                        lineno, lv, classes ? classes : 65536);
            goto done;
        }
        if (n == ncap) {
            size_t c = ncap ? 2 * ncap : 1024;
            float *nx = tg__realloc(x, c * (size_t)(width - (label_col >= 0)) * sizeof *nx);
            if (nx) x = nx;
            int32_t *ny = nx ? tg__realloc(y, c * sizeof *ny) : NULL;
            if (ny) y = ny;
            if (!nx || !ny) {
                tg__err(err, TG_ERR_NOMEM, "%s:%ld: out of memory", path, lineno);
                goto done;
            }
            ncap = c;
        }
        float *row = x + n * (size_t)(width - (label_col >= 0));
        for (long j = 0, o = 0; j < width; j++) {
            if (j == label_col) continue;
            row[o] = (float)(vals[j] * scale);
            if (!isfinite(row[o++])) {
                tg__err(err, TG_ERR_FORMAT, "%s:%ld: column %ld is %g%s, beyond float32's "
                        "range (%g)", path, lineno, j, vals[j] * scale,
                        scale != 1 ? " after scaling" : "", (double)FLT_MAX);
                goto done;
            }
        }
        y[n++] = (int32_t)lv;
        maxl = (int)lv > maxl ? (int)lv : maxl;
    }
    if (len == -2) goto done;
    if (n == 0) {
        tg__err(err, TG_ERR_FORMAT, "%s: no samples (empty file, or a header only)", path);
        goto done;
    }
    if (!(ds = tg__calloc(1, sizeof *ds))) {
        tg__err(err, TG_ERR_NOMEM, "%s: out of memory", path);
        goto done;
    }
    ds->n = n;
    ds->d = width - (label_col >= 0);
    ds->classes = classes ? classes : maxl + 1;
    ds->x = x;
    ds->y = y;
    x = NULL;
    y = NULL;
done:
    gzclose(r->f);
    tg__free(r->line);
    tg__free(r);
    tg__free(vals);
    tg__free(x);
    tg__free(y);
    return ds;
}

/* --------------------------------------------------------------- memory -- */

tg_dataset *tg_dataset_new(size_t n, int64_t d, int classes, const float *x,
                           const int32_t *labels, tg_error *err) {
    tg__err_clear(err);
    if ((n && (!x || !labels))) {
        tg__err(err, TG_ERR_NULL, "dataset_new: data is NULL");
        return NULL;
    }
    if (d < 1 || d > TG_MAX_NUMEL || classes < 1 || n > UINT32_MAX ||
        (n && (size_t)d > SIZE_MAX / sizeof(float) / n)) {
        tg__err(err, TG_ERR_ARG, "dataset_new: %zu samples of %lld features, %d classes: "
                "out of range", n, (long long)d, classes);
        return NULL;
    }
    for (size_t i = 0; i < n; i++)
        if (labels[i] < 0 || labels[i] >= classes) {
            tg__err(err, TG_ERR_ARG, "dataset_new: label %d of sample %zu is out of range "
                    "[0, %d)", (int)labels[i], i, classes);
            return NULL;
        }
    /* As the CSV reader does: a NaN or an infinity would poison every
     * parameter it meets in training, far from its cause. */
    for (size_t i = 0; i < n; i++)
        for (int64_t j = 0; j < d; j++) {
            float v = x[i * (size_t)d + (size_t)j];
            if (!isfinite(v)) {
                tg__err(err, TG_ERR_ARG, "dataset_new: feature %lld of sample %zu is %s; "
                        "features must be finite", (long long)j, i,
                        isnan(v) ? "NaN" : v > 0 ? "inf" : "-inf");
                return NULL;
            }
        }
    tg_dataset *ds = dataset_alloc(n, d, err, "dataset_new");
    if (!ds) return NULL;
    ds->classes = classes;
    if (n) {
        memcpy(ds->x, x, n * (size_t)d * sizeof *x);
        memcpy(ds->y, labels, n * sizeof *labels);
    }
    return ds;
}

size_t tg_dataset_size(const tg_dataset *ds) { return ds ? ds->n : 0; }
int64_t tg_dataset_features(const tg_dataset *ds) { return ds ? ds->d : 0; }
int tg_dataset_classes(const tg_dataset *ds) { return ds ? ds->classes : 0; }
const float *tg_dataset_x(const tg_dataset *ds) { return ds ? ds->x : NULL; }
const int32_t *tg_dataset_labels(const tg_dataset *ds) { return ds ? ds->y : NULL; }

void tg_dataset_truncate(tg_dataset *ds, size_t n) {
    if (ds && n < ds->n) ds->n = n;
}

tg_dataset *tg_dataset_split(tg_dataset *ds, size_t n, tg_error *err) {
    tg__err_clear(err);
    if (!ds) {
        tg__err(err, TG_ERR_NULL, "dataset_split: dataset is NULL");
        return NULL;
    }
    if (n == 0 || n >= ds->n) {
        tg__err(err, TG_ERR_ARG, "dataset_split: %zu of %zu samples; need 1 to %zu", n, ds->n,
                ds->n ? ds->n - 1 : 0);
        return NULL;
    }
    size_t keep = ds->n - n;
    tg_dataset *v = tg_dataset_new(n, ds->d, ds->classes, ds->x + keep * (size_t)ds->d,
                                   ds->y + keep, err);
    if (v) ds->n = keep;
    return v;
}

int tg_dataset_gather(const tg_dataset *ds, const uint32_t *idx, size_t n, tg_dtype dtype,
                      void *x, void *y, int64_t width) {
    if (!ds || !idx || !x) return TG_ERR_NULL;
    if (dtype != TG_F32 && dtype != TG_F64) return TG_ERR_DTYPE;
    size_t d = (size_t)ds->d;
    for (size_t r = 0; r < n; r++) {
        size_t i = idx[r];
        if (i >= ds->n || (y && ds->y[i] >= width)) return TG_ERR_ARG;
        const float *src = ds->x + i * d;
        if (dtype == TG_F32) {
            memcpy((float *)x + r * d, src, d * sizeof *src);
        } else {
            double *dst = (double *)x + r * d;
            for (size_t j = 0; j < d; j++) dst[j] = src[j];
        }
        if (!y) continue;
        if (dtype == TG_F32) {
            float *row = (float *)y + r * (size_t)width;
            memset(row, 0, (size_t)width * sizeof *row);
            row[ds->y[i]] = 1;
        } else {
            double *row = (double *)y + r * (size_t)width;
            memset(row, 0, (size_t)width * sizeof *row);
            row[ds->y[i]] = 1;
        }
    }
    return TG_OK;
}
