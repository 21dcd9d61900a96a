/*
 * The parameter store: named tensors outside every tape, in one flat value
 * buffer and one flat gradient buffer, found by name through uthash. Also
 * the error helpers and the initialisers.
 */
#include "nn_internal.h"

#include <math.h>
#include <stdarg.h>
#include <string.h>

#define uthash_malloc(sz) tg__malloc(sz)
#define uthash_free(ptr, sz) tg__free(ptr)
#define HASH_NONFATAL_OOM 1
#include <uthash.h>

#define NAME_MAX_LEN 127
#define ALIGN_ELEMS 16 /* each parameter starts on a 64-byte boundary for float */

typedef struct param {
    char name[NAME_MAX_LEN + 1];
    int ndim;
    int64_t shape[TG_MAX_DIMS];
    int64_t numel, offset; /* in elements, into the flat buffers */
    int index;             /* position in the order added */
    UT_hash_handle hh;
} param;

struct tg_params {
    tg_dtype dtype;
    param **list; /* in the order added */
    int count, cap;
    param *by_name;
    void *value, *grad; /* flat buffers of size elements */
    int64_t size;
    char *meta;
};

int tg__err(tg_error *err, int code, const char *fmt, ...) {
    if (!err) return code;
    err->code = code;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err->message, sizeof err->message, fmt, ap);
    va_end(ap);
    return code;
}

void tg__err_clear(tg_error *err) {
    if (!err) return;
    err->code = TG_OK;
    err->message[0] = '\0';
}

static size_t esize(const tg_params *ps) { return ps->dtype == TG_F64 ? 8 : 4; }

tg_params *tg_params_new(tg_dtype dtype) {
    if (dtype != TG_F32 && dtype != TG_F64) return NULL;
    tg_params *ps = tg__calloc(1, sizeof *ps);
    if (ps) ps->dtype = dtype;
    return ps;
}

void tg_params_free(tg_params *ps) {
    if (!ps) return;
    HASH_CLEAR(hh, ps->by_name);
    for (int i = 0; i < ps->count; i++) tg__free(ps->list[i]);
    tg__free(ps->list);
    tg__free(ps->value);
    tg__free(ps->grad);
    tg__free(ps->meta);
    tg__free(ps);
}

tg_dtype tg_params_dtype(const tg_params *ps) { return ps ? ps->dtype : TG_F32; }

/* Grows buf (old elements) to size elements, zeroing the new part; NULL on
 * failure with buf untouched. */
static void *grow(void *buf, int64_t old, int64_t size, size_t es) {
    unsigned char *p = tg__realloc(buf, (size_t)size * es);
    if (p) memset(p + (size_t)old * es, 0, (size_t)(size - old) * es);
    return p;
}

int tg__params_add_data(tg_params *ps, const char *name, int ndim, const int64_t *shape,
                        const void *data, tg_error *err) {
    if (!ps || !name || (ndim > 0 && !shape))
        return tg__err(err, TG_ERR_NULL, "params_add: %s is NULL",
                       !ps ? "the store" : !name ? "the name" : "the shape");
    size_t len = strlen(name);
    if (len == 0 || len > NAME_MAX_LEN)
        return tg__err(err, TG_ERR_ARG, "params_add: name '%.40s%s' must have 1 to %d bytes",
                       name, len > 40 ? "..." : "", NAME_MAX_LEN);
    param *dup;
    HASH_FIND(hh, ps->by_name, name, len, dup);
    if (dup) return tg__err(err, TG_ERR_ARG, "params_add: '%s' already exists", name);
    if (ndim < 1 || ndim > TG_MAX_DIMS)
        return tg__err(err, TG_ERR_SHAPE, "params_add: '%s': %d dimensions; 1 to %d allowed",
                       name, ndim, TG_MAX_DIMS);
    int64_t numel = 1;
    for (int i = 0; i < ndim; i++)
        if (shape[i] < 1 || shape[i] > TG_MAX_NUMEL || (numel *= shape[i]) > TG_MAX_NUMEL)
            return tg__err(err, TG_ERR_SHAPE,
                           "params_add: '%s': dimension %d is %lld; sizes must be >= 1 with "
                           "at most %lld elements",
                           name, i, (long long)shape[i], (long long)TG_MAX_NUMEL);
    int64_t offset = (ps->size + ALIGN_ELEMS - 1) / ALIGN_ELEMS * ALIGN_ELEMS;
    int64_t size = offset + numel;
    if (size > INT64_MAX / 8 || (uint64_t)size > SIZE_MAX / 8)
        return tg__err(err, TG_ERR_NOMEM, "params_add: '%s': store too large", name);

    param *p = tg__calloc(1, sizeof *p);
    if (p && ps->count == ps->cap) {
        int cap = ps->cap ? 2 * ps->cap : 16;
        param **list = tg__realloc(ps->list, (size_t)cap * sizeof *list);
        if (list) {
            ps->list = list;
            ps->cap = cap;
        }
    }
    void *value = p && ps->count < ps->cap ? grow(ps->value, ps->size, size, esize(ps)) : NULL;
    if (value) ps->value = value; /* the old buffer is gone either way */
    void *grad = value ? grow(ps->grad, ps->size, size, esize(ps)) : NULL;
    if (grad) ps->grad = grad;
    int oom = !grad;
    if (!oom) {
        memcpy(p->name, name, len + 1);
        p->ndim = ndim;
        for (int i = 0; i < ndim; i++) p->shape[i] = shape[i];
        p->numel = numel;
        p->offset = offset;
#undef uthash_nonfatal_oom
#define uthash_nonfatal_oom(obj) (oom = 1)
        HASH_ADD(hh, ps->by_name, name, len, p);
    }
    if (oom) {
        /* The buffers may have grown (harmlessly); the store's contents did not change. */
        tg__free(p);
        return tg__err(err, TG_ERR_NOMEM, "params_add: '%s': out of memory", name);
    }
    p->index = ps->count;
    ps->list[ps->count++] = p;
    ps->size = size;
    if (data) memcpy((char *)ps->value + (size_t)offset * esize(ps), data, (size_t)numel * esize(ps));
    return TG_OK;
}

int tg_params_add(tg_params *ps, const char *name, int ndim, const int64_t *shape,
                  tg_error *err) {
    tg__err_clear(err);
    return tg__params_add_data(ps, name, ndim, shape, NULL, err);
}

void tg__params_truncate(tg_params *ps, int count) {
    while (ps && ps->count > count) {
        param *p = ps->list[--ps->count];
        HASH_DEL(ps->by_name, p);
        tg__free(p);
    }
    if (ps) {
        int64_t size = 0;
        if (ps->count) size = ps->list[ps->count - 1]->offset + ps->list[ps->count - 1]->numel;
        if (size < ps->size) {
            memset((char *)ps->value + (size_t)size * esize(ps), 0,
                   (size_t)(ps->size - size) * esize(ps));
            memset((char *)ps->grad + (size_t)size * esize(ps), 0,
                   (size_t)(ps->size - size) * esize(ps));
        }
        ps->size = size;
    }
}

int tg_params_count(const tg_params *ps) { return ps ? ps->count : 0; }

int tg_params_find(const tg_params *ps, const char *name) {
    if (!ps || !name) return -1;
    param *p;
    HASH_FIND_STR(ps->by_name, name, p);
    return p ? p->index : -1;
}

static const param *at(const tg_params *ps, int i) {
    return ps && i >= 0 && i < ps->count ? ps->list[i] : NULL;
}

const char *tg_params_name(const tg_params *ps, int i) {
    const param *p = at(ps, i);
    return p ? p->name : NULL;
}

int tg_params_shape(const tg_params *ps, int i, int64_t *shape) {
    const param *p = at(ps, i);
    if (!p) return 0;
    for (int k = 0; k < p->ndim && shape; k++) shape[k] = p->shape[k];
    return p->ndim;
}

int64_t tg_params_numel(const tg_params *ps, int i) {
    const param *p = at(ps, i);
    return p ? p->numel : 0;
}

void *tg_params_value(const tg_params *ps, int i) {
    const param *p = at(ps, i);
    return p ? (char *)ps->value + (size_t)p->offset * esize(ps) : NULL;
}

void *tg_params_grad(const tg_params *ps, int i) {
    const param *p = at(ps, i);
    return p ? (char *)ps->grad + (size_t)p->offset * esize(ps) : NULL;
}

void *tg_params_data(const tg_params *ps) { return ps ? ps->value : NULL; }
void *tg_params_grads(const tg_params *ps) { return ps ? ps->grad : NULL; }
int64_t tg_params_size(const tg_params *ps) { return ps ? ps->size : 0; }

void tg_params_zero_grad(tg_params *ps) {
    if (ps && ps->grad) memset(ps->grad, 0, (size_t)ps->size * esize(ps));
}

int tg_params_copy(tg_params *dst, const tg_params *src, tg_error *err) {
    tg__err_clear(err);
    if (!dst || !src) return tg__err(err, TG_ERR_NULL, "params_copy: a store is NULL");
    if (dst->dtype != src->dtype)
        return tg__err(err, TG_ERR_DTYPE, "params_copy: dtypes differ");
    if (dst->count != src->count || dst->size != src->size)
        return tg__err(err, TG_ERR_SHAPE, "params_copy: %d and %d parameters differ",
                       dst->count, src->count);
    for (int i = 0; i < dst->count; i++) {
        const param *a = dst->list[i], *b = src->list[i];
        bool same = !strcmp(a->name, b->name) && a->ndim == b->ndim;
        for (int k = 0; same && k < a->ndim; k++) same = a->shape[k] == b->shape[k];
        if (!same)
            return tg__err(err, TG_ERR_SHAPE, "params_copy: parameter %d: '%s' vs '%s'", i,
                           a->name, b->name);
    }
    if (dst->size) memcpy(dst->value, src->value, (size_t)dst->size * esize(dst));
    return TG_OK;
}

int tg_params_check_finite(const tg_params *ps, tg_error *err) {
    tg__err_clear(err);
    if (!ps) return tg__err(err, TG_ERR_NULL, "params_check_finite: the store is NULL");
    for (int i = 0; i < ps->count; i++) {
        const param *p = ps->list[i];
        for (int64_t k = 0; k < p->numel; k++) {
            double x = ps->dtype == TG_F64 ? ((const double *)ps->value)[p->offset + k]
                                           : ((const float *)ps->value)[p->offset + k];
            if (!isfinite(x))
                return tg__err(err, TG_ERR_NUMERIC, "parameter %s holds %s at element %lld of %lld",
                               p->name, isnan(x) ? "NaN" : x > 0 ? "inf" : "-inf", (long long)k,
                               (long long)p->numel);
        }
    }
    return TG_OK;
}

int tg_params_set_meta(tg_params *ps, const char *text) {
    if (!ps) return TG_ERR_NULL;
    size_t len = text ? strlen(text) : 0;
    if (len > 65535) return TG_ERR_ARG;
    char *copy = NULL;
    if (text) {
        if (!(copy = tg__malloc(len + 1))) return TG_ERR_NOMEM;
        memcpy(copy, text, len + 1);
    }
    tg__free(ps->meta);
    ps->meta = copy;
    return TG_OK;
}

const char *tg_params_meta(const tg_params *ps) { return ps && ps->meta ? ps->meta : ""; }

tg_node *tg__param_view(tg_tape *t, tg_params *ps, int i, bool grad) {
    const param *p = at(ps, i);
    if (!p) return NULL;
    return tg_view(t, ps->dtype, p->ndim, p->shape, tg_params_value(ps, i),
                   grad ? tg_params_grad(ps, i) : NULL);
}

tg_node *tg_param(tg_tape *t, tg_params *ps, const char *name) {
    if (!t) return NULL;
    if (t->status) return &t->poison;
    if (!ps || !name) {
        tg_fail(t, TG_ERR_NULL, "param: %s is NULL", ps ? "the name" : "the store");
        return &t->poison;
    }
    int i = tg_params_find(ps, name);
    if (i < 0) {
        tg_fail(t, TG_ERR_ARG, "param: no parameter called '%s'", name);
        return &t->poison;
    }
    return tg__param_view(t, ps, i, true);
}

/* ---------------------------------------------------------- initialisers -- */

int tg_params_init(tg_params *ps, int i, tg_init init, tg_rng *r) {
    const param *p = at(ps, i);
    if (!ps || !r) return TG_ERR_NULL;
    if (!p) return TG_ERR_ARG;
    double fan_in = (double)p->shape[0], fan_out = (double)(p->numel / p->shape[0]);
    if (p->ndim == 1) fan_out = fan_in;
    double sd;
    switch (init) {
    case TG_INIT_ZERO: sd = 0; break;
    case TG_INIT_NORMAL: sd = 1; break;
    case TG_INIT_SCALED: sd = 1 / sqrt(fan_in); break;
    case TG_INIT_XAVIER: sd = sqrt(2 / (fan_in + fan_out)); break;
    case TG_INIT_HE: sd = sqrt(2 / fan_in); break;
    default: return TG_ERR_ARG;
    }
    void *v = tg_params_value(ps, i);
    for (int64_t k = 0; k < p->numel; k++) {
        double x = sd ? sd * tg_rng_normal(r) : 0.0;
        if (ps->dtype == TG_F64)
            ((double *)v)[k] = x;
        else
            ((float *)v)[k] = (float)x;
    }
    return TG_OK;
}

static const char *const init_names[] = {"zero", "normal", "scaled", "xavier", "he"};

const char *tg_init_name(tg_init init) {
    return (unsigned)init < sizeof init_names / sizeof *init_names ? init_names[init] : "?";
}

int tg_init_parse(const char *name) {
    for (int i = 0; name && i < (int)(sizeof init_names / sizeof *init_names); i++)
        if (!strcmp(name, init_names[i])) return i;
    return -1;
}
