/*
 * Function objects (tapegrad/fn.h): a recorded function evaluated at new
 * points by partial replays and backward sweeps of its tape.
 *
 * The tape holds the function's positions [lo, top), then, in the order of
 * first use, one segment per derivative graph the drivers record: the
 * weighted sum of several outputs (for reverse sweeps), the gradient graph
 * of tg_grad(), the outputs' tangents along 1 or K directions, and the
 * gradient's tangents along 1 or K directions (H v). A segment depends only
 * on positions before it, so bringing a segment up to date is a replay of
 * its own positions once those it reads are current; each remembers the
 * point (a version number) its values belong to.
 *
 * Branch decisions: for every node of the function whose op decides
 * between branches, a number per element that names the branch (the side
 * of each comparison the element took) is kept from the recording point
 * and recomputed after each replay of the function at a new point.
 */
#include "broadcast.h"
#include "nn_internal.h"
#include "rules.h"

#include <math.h>

#define KMAX 8 /* directions of a multi-direction tangent segment */

enum { SEG_SEED, SEG_GRAD, SEG_JVP1, SEG_JVPK, SEG_HVP1, SEG_HVPK, SEG_COUNT };

typedef struct seg {
    size_t from, to;
    uint64_t at; /* the point version its values belong to (0: none) */
    int k;       /* directions */
    tg_node **dir, **res;
} seg;

/* How an op's decision is named, per element: by its value (comparisons,
 * steps, argmax), the sign of input 0 (kinks at 0), the order of inputs 0
 * and 1, whether input 0 is nonzero (where), the three orders of clamp's
 * inputs, the order of |a - y| and delta (huber), or the position of a
 * run's extreme element and whether it ties (max, min). */
enum { D_NONE, D_VALUE, D_SIGN, D_ORDER, D_COND, D_CLAMP, D_HUBER, D_EXTREME };
static const struct {
    const char *name;
    uint8_t kind;
} decision_ops[] = {
    {"lt", D_VALUE},      {"le", D_VALUE},      {"gt", D_VALUE},        {"ge", D_VALUE},
    {"eq", D_VALUE},      {"ne", D_VALUE},      {"sign", D_VALUE},      {"floor", D_VALUE},
    {"ceil", D_VALUE},    {"round", D_VALUE},   {"argmax", D_VALUE},    {"abs", D_SIGN},
    {"relu", D_SIGN},     {"leaky_relu", D_SIGN}, {"elu", D_SIGN},      {"maximum", D_ORDER},
    {"minimum", D_ORDER}, {"where", D_COND},    {"clamp", D_CLAMP},     {"huber", D_HUBER},
    {"max", D_EXTREME},   {"min", D_EXTREME},
};

typedef struct decision {
    size_t pos, off, len;
    uint8_t kind;
} decision;

/* An input's or output's layout, which every recording must repeat. */
typedef struct io {
    tg_dtype dtype;
    int ndim;
    int64_t shape[TG_MAX_DIMS];
    size_t len;
} io;

/* A stretch of the flat point x whose elements lie one after another in
 * memory of one dtype (a tensor input, or scalar inputs recorded in a
 * row, whose compact records are neighbours): copied as one block. */
typedef struct run {
    void *mem;
    size_t off, len;
    tg_dtype dtype;
} run;

/* One recording: the tape and what the object derived from it. */
typedef struct recording {
    tg_tape *t;
    bool owned;
    tg_node **in, **out;
    void **val, **grad; /* the inputs' value memory; their gradient memory once swept */
    run *vrun, *grun;   /* the same as runs; 0 runs: not made yet */
    size_t nvrun, ngrun;
    size_t lo, top;
    uint64_t epoch;
    seg seg[SEG_COUNT];
    decision *dec;
    size_t ndec, dec_total;
    double *dec_val;
    size_t *changed; /* positions of the nodes that decided otherwise */
} recording;

struct tg_fn {
    recording r;
    tg_fn_recorder rec;
    void *ctx;
    int nin, nout;
    size_t n, m, maxlen;
    io *in_io, *out_io;
    double *x;          /* the current point */
    double *buf;        /* maxlen weights or unit vectors */
    void *seed;         /* maxlen seeds in an output's dtype */
    uint64_t version;   /* bumped at each new point */
    bool branched;      /* the current point decides otherwise than the recording */
    size_t nchanged, nchanged_el;
    int mode;
    size_t retapes;
    uint8_t kind_of[256]; /* registry index -> D_* */
};

/* ------------------------------------------------------------ helpers -- */

static void kinds_init(tg_fn *f) {
    for (int i = 0, n = tg_op_count(); i < n; i++) {
        const tg_op *op = tg_op_at(i), *base = op;
        int idx = tg__op_index(op);
        if (idx < 0 || idx > 255) continue;
        const tg_op *b = tg_op_derivative_of(op, NULL);
        if (b) base = b;
        for (size_t j = 0; j < sizeof decision_ops / sizeof *decision_ops; j++) {
            uint8_t k = decision_ops[j].kind;
            /* a derivative op takes its base's inputs first: the base's
             * decision when it reads only those (kinks, huber) */
            if (strcmp(base->name, decision_ops[j].name) || (b && k != D_SIGN && k != D_HUBER))
                continue;
            f->kind_of[idx] = k;
        }
    }
}

static uint8_t kind_at(const tg_fn *f, tg_tape *t, size_t p) {
    uint8_t code = tg__code(t, p) & TG_C_KIND;
    if (code >= TG_K_OPS) return f->kind_of[tg__kinds[code].op];
    if (code != TG_K_FULL) return D_NONE;
    return f->kind_of[tg__node_at(t, p)->op];
}

static inline double cmp3(double a, double b) { return a > b ? 1 : a < b ? -1 : a == b ? 0 : 2; }

static double code_of(uint8_t kind, double a, double b, double c, double y) {
    switch (kind) {
    case D_VALUE: return y;
    case D_SIGN: return cmp3(a, 0);
    case D_ORDER: return cmp3(a, b);
    case D_COND: return a != 0; /* NaN counts as nonzero, as in where */
    case D_CLAMP: return (cmp3(a, b) + 1) + 4 * (cmp3(a, c) + 1) + 16 * (cmp3(b, c) + 1);
    case D_HUBER: return cmp3(fabs(a - b), c);
    default: return 0;
    }
}

static inline bool same(double a, double b) { return a == b || (isnan(a) && isnan(b)); }

/* Element i of an argument's value. */
static inline double el(const tg_arg *x, size_t i) { return tg__arg_elem(x, x->value, i); }

/* The number of decision elements of the node at p. */
static size_t decision_len(tg_tape *t, size_t p, uint8_t kind) {
    tg_node *h = tg__node_at(t, p);
    if (tg__is_compact(h)) return 1;
    return (size_t)tg_numel(kind == D_HUBER ? tg__in(h, 0) : h);
}

/* Stores (snap) or compares the decisions of d; returns the elements that
 * differ. */
static size_t visit(const recording *r, const decision *d, bool snap) {
    double *val = r->dec_val + d->off;
    size_t bad = 0;
#define EMIT(i, code)                                                                      \
    do {                                                                                   \
        double c_ = (code);                                                                \
        if (snap)                                                                          \
            val[i] = c_;                                                                   \
        else                                                                               \
            bad += !same(val[i], c_);                                                      \
    } while (0)
    tg_tape *t = r->t;
    tg_node *h = tg__node_at(t, d->pos);
    if (tg__is_compact(h)) {
        tg_schunk *c = tg__sc(t, d->pos);
        size_t l = tg__sl(c, d->pos);
        double a = tg__value_at(t, c->in[0][l]), b = tg__value_at(t, c->in[1][l]);
        EMIT(0, code_of(d->kind, a, b, 0, c->slot[l].v));
        return bad;
    }
    tg_args a; /* the node's output and inputs */
    tg__args_of(h, &a);
    const tg_arg *x = &a.in[0], *y = a.op->arity > 1 ? &a.in[1] : NULL;
    switch (d->kind) {
    case D_VALUE:
        for (size_t i = 0; i < d->len; i++) EMIT(i, el(&a.out, i));
        break;
    case D_HUBER: {
        double delta = el(&a.in[2], 0);
        for (size_t i = 0; i < d->len; i++) EMIT(i, code_of(D_HUBER, el(x, i), el(y, i), delta, 0));
        break;
    }
    case D_EXTREME: {
        tg_axis_view av = tg__arg_axis(x, h->aux);
        for (size_t o = 0; o < av.outer; o++)
            for (size_t q = 0; q < av.inner; q++) {
                double m = el(&a.out, o * av.inner + q), at = -1;
                bool tie = false;
                for (size_t k = 0; k < av.len; k++)
                    if (el(x, (o * av.len + k) * av.inner + q) == m) {
                        tie |= at >= 0;
                        if (at < 0) at = (double)k;
                    }
                EMIT(o * av.inner + q, at + (tie ? 0.5 : 0));
            }
        break;
    }
    default:
        if (!y) { /* one input of the output's shape */
            for (size_t i = 0; i < d->len; i++) EMIT(i, code_of(d->kind, el(x, i), 0, 0, 0));
            break;
        }
        const tg_arg *z = tg__nin(h) == 3 ? &a.in[2] : NULL;
        tg_bcast bc;
        tg__bcast_args(&a, &bc);
        TG_BCAST_FOR(&bc, EMIT(o, code_of(d->kind, el(x, ia), el(y, ib), z ? el(z, ic) : 0, 0)));
        break;
    }
#undef EMIT
    return bad;
}

/* The decision nodes of r's function and their values at its point. */
static int snapshot(tg_fn *f, recording *r) {
    size_t count = 0, total = 0;
    for (size_t p = r->lo; p < r->top; p++) {
        uint8_t k = kind_at(f, r->t, p);
        if (k) count++, total += decision_len(r->t, p, k);
    }
    r->dec = tg__malloc(sizeof *r->dec * (count ? count : 1));
    r->dec_val = tg__malloc(sizeof *r->dec_val * (total ? total : 1));
    r->changed = tg__malloc(sizeof *r->changed * (count ? count : 1));
    if (!r->dec || !r->dec_val || !r->changed) return TG_ERR_NOMEM;
    r->ndec = count;
    r->dec_total = total;
    size_t i = 0, off = 0;
    for (size_t p = r->lo; p < r->top; p++) {
        uint8_t k = kind_at(f, r->t, p);
        if (!k) continue;
        r->dec[i] = (decision){p, off, decision_len(r->t, p, k), k};
        visit(r, &r->dec[i], true);
        off += r->dec[i++].len;
    }
    return TG_OK;
}

static void free_recording(recording *r) {
    for (int s = 0; s < SEG_COUNT; s++) {
        tg__free(r->seg[s].dir);
        tg__free(r->seg[s].res);
    }
    tg__free(r->dec);
    tg__free(r->dec_val);
    tg__free(r->changed);
    tg__free(r->in);
    tg__free(r->out);
    tg__free(r->val);
    tg__free(r->grad);
    tg__free(r->vrun);
    tg__free(r->grun);
    if (r->owned) tg_tape_free(r->t);
    *r = (recording){0};
}

static io layout_of(const tg_node *n) {
    io l = {.dtype = tg_node_dtype(n), .len = (size_t)tg_numel(n)};
    l.ndim = tg_shape(n, l.shape);
    return l;
}

static bool same_layout(const io *a, const io *b) {
    return a->dtype == b->dtype && a->ndim == b->ndim &&
           !memcmp(a->shape, b->shape, sizeof(int64_t) * (size_t)a->ndim);
}

/* Node i of a recording's inputs or outputs (what), present, live and on
 * t (named against the node other). */
static int node_ok(tg_tape *t, tg_node *n, const char *what, int i, const char *other,
                   tg_error *err, const char *who) {
    if (!n) return tg__err(err, TG_ERR_NULL, "%s: %s %d is NULL", who, what, i);
    if (tg__tape_of(n) != t)
        return tg__err(err, TG_ERR_TAPE, "%s: %s %d is on another tape than %s", who, what, i,
                       other);
    if (n == &t->poison || tg__stale(n))
        return tg__err(err, TG_ERR_STATE, "%s: %s %d is the poison node or gone", who, what, i);
    return TG_OK;
}

/* Checks the nodes of a recording; with f's layout set, that they repeat
 * it. */
static int check_nodes(const tg_fn *f, tg_tape *t, tg_node *const *in, tg_node *const *out,
                       tg_error *err, const char *who) {
    if (t->status)
        return tg__err(err, t->status, "%s: the tape's status is %s: %s", who,
                       tg_status_name(t->status), t->message);
    for (int i = 0; i < f->nin; i++) {
        tg_node *a = in[i];
        int rc = node_ok(t, a, "input", i, "input 0", err, who);
        if (rc) return rc;
        if (!tg__is_leaf(a) || !tg__needs_grad(a))
            return tg__err(err, TG_ERR_ARG,
                           "%s: input %d (node %zu, %s) is not a leaf that wants a gradient "
                           "(tg_scalar, tg_tensor, tg_view with a gradient)",
                           who, i, tg__id(a), tg_node_op_name(a));
        for (int j = 0; j < i; j++)
            if (in[j] == a) return tg__err(err, TG_ERR_ARG, "%s: inputs %d and %d are the same node", who, j, i);
        io l = layout_of(a);
        if (f->in_io && !same_layout(&l, &f->in_io[i]))
            return tg__err(err, TG_ERR_SHAPE, "%s: input %d has another shape or dtype than "
                           "in the first recording", who, i);
    }
    for (int o = 0; o < f->nout; o++) {
        tg_node *y = out[o];
        int rc = node_ok(t, y, "output", o, "the inputs", err, who);
        if (rc) return rc;
        io l = layout_of(y);
        if (f->out_io && !same_layout(&l, &f->out_io[o]))
            return tg__err(err, TG_ERR_SHAPE, "%s: output %d has another shape or dtype than "
                           "in the first recording", who, o);
    }
    return TG_OK;
}

/* Copies len values between doubles (NULL: zeros) and memory of dtype dt. */
static void put_mem(void *v, tg_dtype dt, const double *src, size_t len) {
    if (dt == TG_F64) {
        if (src) memcpy(v, src, len * sizeof(double));
        else memset(v, 0, len * sizeof(double));
    } else {
        for (size_t i = 0; i < len; i++) ((float *)v)[i] = src ? (float)src[i] : 0.0f;
    }
}
static void get(const void *data, tg_dtype dt, double *dst, size_t len) {
    for (size_t i = 0; i < len; i++)
        dst[i] = (dt == TG_F64 ? ((const double *)data)[i] : ((const float *)data)[i]) + 0.0;
}
static void put(tg_node *n, const double *src, size_t len) {
    put_mem(tg__value_of(n), tg_node_dtype(n), src, len);
}

/* Builds a recording from its nodes (taking in, out and, when owned, t). */
static int install(tg_fn *f, recording *r, tg_tape *t, bool owned, tg_node **in, tg_node **out,
                   tg_error *err, const char *who) {
    *r = (recording){.t = t, .owned = owned, .in = in, .out = out};
    int rc = check_nodes(f, t, in, out, err, who);
    if (rc) return rc;
    r->lo = SIZE_MAX;
    for (int i = 0; i < f->nin; i++)
        if (tg__id(in[i]) < r->lo) r->lo = tg__id(in[i]);
    for (int o = 0; o < f->nout; o++)
        if (tg__id(out[o]) + 1 > r->top) r->top = tg__id(out[o]) + 1;
    if (r->lo > r->top) r->lo = r->top;
    r->val = tg__malloc(sizeof *r->val * (size_t)f->nin);
    r->grad = tg__calloc((size_t)f->nin, sizeof *r->grad);
    r->vrun = tg__malloc(sizeof *r->vrun * (size_t)f->nin);
    r->grun = tg__malloc(sizeof *r->grun * (size_t)f->nin);
    if (!r->val || !r->grad || !r->vrun || !r->grun)
        return tg__err(err, TG_ERR_NOMEM, "%s: out of memory", who);
    for (int i = 0; i < f->nin; i++) r->val[i] = tg__value_of(in[i]);
    r->epoch = t->epoch;
    /* the values at the recording point, whatever leaf was written since */
    if (tg__forward_range(t, r->lo, r->top))
        return tg__err(err, t->status, "%s: %s", who, t->message);
    if (snapshot(f, r)) return tg__err(err, TG_ERR_NOMEM, "%s: out of memory", who);
    return TG_OK;
}

/* The layout and buffers, from the first recording. */
static int set_layout(tg_fn *f, tg_error *err, const char *who) {
    f->in_io = tg__malloc(sizeof *f->in_io * (size_t)f->nin);
    f->out_io = tg__malloc(sizeof *f->out_io * (size_t)f->nout);
    if (!f->in_io || !f->out_io) return tg__err(err, TG_ERR_NOMEM, "%s: out of memory", who);
    for (int i = 0; i < f->nin; i++) {
        f->in_io[i] = layout_of(f->r.in[i]);
        f->n += f->in_io[i].len;
        if (f->in_io[i].len > f->maxlen) f->maxlen = f->in_io[i].len;
    }
    for (int o = 0; o < f->nout; o++) {
        f->out_io[o] = layout_of(f->r.out[o]);
        f->m += f->out_io[o].len;
        if (f->out_io[o].len > f->maxlen) f->maxlen = f->out_io[o].len;
    }
    if (f->m > f->maxlen) f->maxlen = f->m;
    f->x = tg__malloc(sizeof(double) * (f->n ? f->n : 1));
    f->buf = tg__malloc(sizeof(double) * f->maxlen);
    f->seed = tg__malloc(sizeof(double) * f->maxlen);
    if (!f->x || !f->buf || !f->seed) return tg__err(err, TG_ERR_NOMEM, "%s: out of memory", who);
    return TG_OK;
}

static tg_fn *new_fn(int nin, int nout, tg_error *err, const char *who) {
    if (nin < 1 || nout < 1) {
        tg__err(err, TG_ERR_ARG, "%s: %d inputs and %d outputs; each must be at least 1", who, nin, nout);
        return NULL;
    }
    tg_fn *f = tg__calloc(1, sizeof *f);
    if (!f) {
        tg__err(err, TG_ERR_NOMEM, "%s: out of memory", who);
        return NULL;
    }
    f->nin = nin;
    f->nout = nout;
    f->version = 1;
    kinds_init(f);
    return f;
}

void tg_fn_free(tg_fn *f) {
    if (!f) return;
    free_recording(&f->r);
    tg__free(f->in_io);
    tg__free(f->out_io);
    tg__free(f->x);
    tg__free(f->buf);
    tg__free(f->seed);
    tg__free(f);
}

/* Records with f's recorder at x on a new tape into *r. */
static int record(tg_fn *f, recording *r, const double *x, tg_error *err, const char *who) {
    *r = (recording){0};
    tg_tape *t = tg_tape_new();
    tg_node **in = tg__calloc((size_t)f->nin, sizeof *in);
    tg_node **out = tg__calloc((size_t)f->nout, sizeof *out);
    if (!t || !in || !out) {
        tg_tape_free(t);
        tg__free(in);
        tg__free(out);
        return tg__err(err, TG_ERR_NOMEM, "%s: out of memory", who);
    }
    int rc = f->rec(t, x, in, out, f->ctx);
    if (rc || t->status) {
        rc = rc ? rc : t->status;
        tg__err(err, rc, "%s: the recorder failed (%s)%s%s", who, tg_status_name(rc),
                t->status ? ": " : "", t->status ? t->message : "");
        tg_tape_free(t);
        tg__free(in);
        tg__free(out);
        return rc;
    }
    rc = install(f, r, t, true, in, out, err, who);
    if (rc) free_recording(r);
    return rc;
}

tg_fn *tg_fn_record(int nin, int nout, tg_fn_recorder rec, void *ctx, const double *x,
                    tg_error *err) {
    const char *who = "fn_record";
    tg__err_clear(err);
    if (!rec || !x) {
        tg__err(err, TG_ERR_NULL, "%s: %s is NULL", who, !rec ? "the recorder" : "x");
        return NULL;
    }
    tg_fn *f = new_fn(nin, nout, err, who);
    if (!f) return NULL;
    f->rec = rec;
    f->ctx = ctx;
    f->mode = TG_FN_BRANCH_RETAPE;
    if (record(f, &f->r, x, err, who) || set_layout(f, err, who)) {
        tg_fn_free(f);
        return NULL;
    }
    memcpy(f->x, x, sizeof(double) * f->n);
    return f;
}

tg_fn *tg_fn_adopt(int nin, tg_node *const *in, int nout, tg_node *const *out, tg_error *err) {
    const char *who = "fn_adopt";
    tg__err_clear(err);
    if (!in || !out || (nin > 0 && !in[0])) {
        tg__err(err, TG_ERR_NULL, "%s: %s is NULL", who, !in ? "in" : !out ? "out" : "in[0]");
        return NULL;
    }
    tg_fn *f = new_fn(nin, nout, err, who);
    if (!f) return NULL;
    f->mode = TG_FN_BRANCH_FAIL;
    tg_node **ins = tg__malloc(sizeof *ins * (size_t)nin);
    tg_node **outs = tg__malloc(sizeof *outs * (size_t)nout);
    if (!ins || !outs) {
        tg__free(ins);
        tg__free(outs);
        tg__free(f);
        tg__err(err, TG_ERR_NOMEM, "%s: out of memory", who);
        return NULL;
    }
    memcpy(ins, in, sizeof *ins * (size_t)nin);
    memcpy(outs, out, sizeof *outs * (size_t)nout);
    if (install(f, &f->r, tg__tape_of(in[0]), false, ins, outs, err, who) ||
        set_layout(f, err, who)) {
        tg_fn_free(f);
        return NULL;
    }
    size_t c = 0;
    for (int i = 0; i < nin; c += f->in_io[i++].len)
        get(tg__value_of(ins[i]), f->in_io[i].dtype, f->x + c, f->in_io[i].len);
    return f;
}

size_t tg_fn_inputs(const tg_fn *f) { return f ? f->n : 0; }
size_t tg_fn_outputs(const tg_fn *f) { return f ? f->m : 0; }
tg_tape *tg_fn_tape(const tg_fn *f) { return f ? f->r.t : NULL; }
tg_node *tg_fn_input(const tg_fn *f, int i) { return f && i >= 0 && i < f->nin ? f->r.in[i] : NULL; }
tg_node *tg_fn_output(const tg_fn *f, int i) {
    return f && i >= 0 && i < f->nout ? f->r.out[i] : NULL;
}
size_t tg_fn_decisions(const tg_fn *f) { return f ? f->r.dec_total : 0; }
size_t tg_fn_retapes(const tg_fn *f) { return f ? f->retapes : 0; }

size_t tg_fn_branch_changes(const tg_fn *f, size_t *elements, size_t *nodes, size_t cap) {
    if (elements) *elements = f ? f->nchanged_el : 0;
    if (!f) return 0;
    for (size_t i = 0; nodes && i < cap && i < f->nchanged; i++) nodes[i] = f->r.changed[i];
    return f->nchanged;
}

int tg_fn_set_branch_mode(tg_fn *f, tg_fn_branch_mode mode, tg_error *err) {
    tg__err_clear(err);
    if (!f) return tg__err(err, TG_ERR_NULL, "fn_set_branch_mode: the function is NULL");
    if ((int)mode < TG_FN_BRANCH_FAIL || (int)mode > TG_FN_BRANCH_IGNORE)
        return tg__err(err, TG_ERR_ARG, "fn_set_branch_mode: mode %d is none of "
                       "TG_FN_BRANCH_FAIL, _RETAPE, _IGNORE", (int)mode);
    if (mode == TG_FN_BRANCH_RETAPE && !f->rec)
        return tg__err(err, TG_ERR_ARG, "fn_set_branch_mode: TG_FN_BRANCH_RETAPE needs a "
                       "recorder (tg_fn_record); this function was adopted");
    f->mode = (int)mode;
    return TG_OK;
}

/* ---------------------------------------------------------- the point -- */

/* The object and its tape can be used now. */
static int usable(tg_fn *f, tg_error *err, const char *who) {
    tg__err_clear(err);
    if (!f) return tg__err(err, TG_ERR_NULL, "%s: the function is NULL", who);
    tg_tape *t = f->r.t;
    if (t->epoch != f->r.epoch)
        return tg__err(err, TG_ERR_STATE, "%s: the function's tape was reset or rewound after "
                       "the function was made; its nodes are gone", who);
    if (t->status)
        return tg__err(err, t->status, "%s: the tape's status is %s: %s", who,
                       tg_status_name(t->status), t->message);
    return TG_OK;
}

static int tape_failed(tg_fn *f, tg_error *err, const char *who) {
    tg_tape *t = f->r.t;
    return tg__err(err, t->status, "%s: %s", who, t->message);
}

/* The runs of the inputs' memory mem[0..nin) (none NULL); their number. */
static size_t make_runs(const tg_fn *f, void *const *mem, run *runs) {
    size_t n = 0, c = 0;
    for (int i = 0; i < f->nin; c += f->in_io[i++].len) {
        tg_dtype dt = f->in_io[i].dtype;
        run *last = n ? &runs[n - 1] : NULL;
        if (last && last->dtype == dt && last->off + last->len == c &&
            (char *)last->mem + last->len * (dt == TG_F64 ? 8 : 4) == (char *)mem[i])
            last->len += f->in_io[i].len;
        else
            runs[n++] = (run){mem[i], c, f->in_io[i].len, dt};
    }
    return n;
}

static void put_point(tg_fn *f) {
    recording *r = &f->r;
    if (!r->nvrun) r->nvrun = make_runs(f, r->val, r->vrun);
    for (size_t i = 0; i < r->nvrun; i++)
        put_mem(r->vrun[i].mem, r->vrun[i].dtype, f->x + r->vrun[i].off, r->vrun[i].len);
}

static size_t check_branches(tg_fn *f) {
    recording *r = &f->r;
    f->nchanged = f->nchanged_el = 0;
    for (size_t i = 0; i < r->ndec; i++) {
        size_t bad = visit(r, &r->dec[i], false);
        if (!bad) continue;
        r->changed[f->nchanged++] = r->dec[i].pos;
        f->nchanged_el += bad;
    }
    return f->nchanged;
}

static int branch_failed(tg_fn *f, tg_error *err, const char *who) {
    char list[256] = "";
    size_t w = 0;
    for (size_t i = 0; i < f->nchanged && i < 4 && w < sizeof list; i++) {
        size_t p = f->r.changed[i];
        int k = snprintf(list + w, sizeof list - w, "%s%s (node %zu)", i ? ", " : "",
                         tg_node_op_name(tg__node_at(f->r.t, p)), p);
        if (k > 0) w += (size_t)k;
    }
    return tg__err(err, TG_ERR_BRANCH,
                   "%s: %zu branch decision%s at %zu node%s differ%s from the recording: %s%s; "
                   "re-record (tg_fn_retape) or see tg_fn_branch_changes()",
                   who, f->nchanged_el, f->nchanged_el == 1 ? "" : "s", f->nchanged,
                   f->nchanged == 1 ? "" : "s", f->nchanged_el == 1 ? "s" : "", list,
                   f->nchanged > 4 ? ", ..." : "");
}

/* Re-records at x; on success x is the point. */
static int retape(tg_fn *f, const double *x, tg_error *err, const char *who) {
    recording r;
    int rc = record(f, &r, x, err, who);
    if (rc) return rc;
    free_recording(&f->r);
    f->r = r;
    if (x != f->x) memcpy(f->x, x, sizeof(double) * f->n);
    f->version++;
    f->branched = false;
    f->nchanged = f->nchanged_el = 0;
    f->retapes++;
    return TG_OK;
}

/* Makes x (NULL: the current point) the point: writes it, replays the
 * function and checks its decisions when it is new. */
static int at_point(tg_fn *f, const double *x, tg_error *err, const char *who) {
    int rc = usable(f, err, who);
    if (rc) return rc;
    if (x && memcmp(x, f->x, sizeof(double) * f->n)) {
        memcpy(f->x, x, sizeof(double) * f->n);
        put_point(f);
        f->version++;
        f->branched = false;
        f->nchanged = f->nchanged_el = 0;
        if (tg__forward_range(f->r.t, f->r.lo, f->r.top)) return tape_failed(f, err, who);
        f->branched = f->mode != TG_FN_BRANCH_IGNORE && f->r.ndec && check_branches(f);
    }
    if (f->branched && f->mode == TG_FN_BRANCH_FAIL) return branch_failed(f, err, who);
    /* a failed retape leaves branched set, so the next call tries again */
    if (f->branched && f->mode == TG_FN_BRANCH_RETAPE) return retape(f, f->x, err, who);
    return TG_OK;
}

int tg_fn_retape(tg_fn *f, const double *x, tg_error *err) {
    const char *who = "fn_retape";
    tg__err_clear(err);
    if (!f) return tg__err(err, TG_ERR_NULL, "%s: the function is NULL", who);
    if (!f->rec)
        return tg__err(err, TG_ERR_STATE, "%s: an adopted function has no recorder; record it "
                       "again and adopt that", who);
    return retape(f, x ? x : f->x, err, who);
}

/* ----------------------------------------------------------- segments -- */

static void replay(tg_fn *f, seg *s) {
    tg__forward_range(f->r.t, s->from, s->to);
    s->at = f->version;
}

/* A leaf input like each input, for k directions. */
static void direction_inputs(tg_fn *f, seg *s) {
    for (int j = 0; j < s->k; j++)
        for (int i = 0; i < f->nin; i++) {
            const io *l = &f->in_io[i];
            s->dir[j * f->nin + i] = tg_input(f->r.t, l->dtype, l->ndim, l->shape, NULL);
        }
}

/* Records segment which at its first use (its dependencies first); each
 * later use replays it. On failure the tape goes back to where it was. */
static int make(tg_fn *f, int which, tg_error *err, const char *who) {
    recording *r = &f->r;
    seg *s = &r->seg[which];
    if (s->res) return TG_OK;
    int hvp = which == SEG_HVP1 || which == SEG_HVPK, rc;
    if (hvp && (rc = make(f, SEG_GRAD, err, who))) return rc;
    if (hvp && r->seg[SEG_GRAD].at != f->version) replay(f, &r->seg[SEG_GRAD]);
    tg_tape *t = r->t;
    int k = which == SEG_JVPK || which == SEG_HVPK ? KMAX : 1;
    size_t ndir = which == SEG_SEED ? (size_t)f->nout : which == SEG_GRAD ? 0 : (size_t)(k * f->nin);
    size_t nres = which == SEG_SEED ? 1 : which == SEG_GRAD ? (size_t)f->nin
                  : hvp ? (size_t)(k * f->nin) : (size_t)(k * f->nout);
    tg_node **dir = tg__calloc(ndir ? ndir : 1, sizeof *dir);
    tg_node **res = tg__calloc(nres, sizeof *res);
    if (!dir || !res) {
        tg__free(dir);
        tg__free(res);
        return tg__err(err, TG_ERR_NOMEM, "%s: out of memory", who);
    }
    *s = (seg){.from = t->nnodes, .k = k, .dir = dir, .res = res};
    tg_mark mark = tg_tape_mark(t);
    switch (which) {
    case SEG_SEED: /* sum_o <out_o, w_o>: its gradient is w^T J */
        for (int o = 0; o < f->nout; o++) {
            const io *l = &f->out_io[o];
            dir[o] = tg_input(t, l->dtype, l->ndim, l->shape, NULL);
            tg_node *p = tg_mul(r->out[o], dir[o]);
            if (l->ndim) p = tg_sum(p);
            res[0] = o ? tg_add(res[0], p) : p;
        }
        break;
    case SEG_GRAD: tg_grad_nodes(r->out[0], f->nin, r->in, res); break;
    case SEG_JVP1:
    case SEG_JVPK:
        direction_inputs(f, s);
        if (!t->status) tg__tangents(f->nout, r->out, f->nin, r->in, k, dir, res);
        break;
    default:
        direction_inputs(f, s);
        if (!t->status) tg__tangents(f->nin, r->seg[SEG_GRAD].res, f->nin, r->in, k, dir, res);
        break;
    }
    if (t->status) {
        rc = tg__err(err, t->status, "%s: recording its derivative graph: %s", who, t->message);
        tg__free(dir);
        tg__free(res);
        *s = (seg){0};
        if (!tg_tape_rewind(t, &mark)) { /* the function is as it was */
            t->status = TG_OK;
            t->message[0] = '\0';
            r->epoch = t->epoch;
            /* a leaf gradient taken after the mark has moved */
            memset(r->grad, 0, sizeof *r->grad * (size_t)f->nin);
            r->ngrun = 0;
        }
        return rc;
    }
    s->to = t->nnodes;
    s->at = f->version;
    return TG_OK;
}

/* Sets the k directions of s from v[j*N ..] (columns j0.. of a block; NULL
 * rows: zero) or, with unit, to the unit vectors of columns j0 + j. */
static void set_directions(tg_fn *f, seg *s, const double *v, size_t j0, size_t count, bool unit) {
    static const double one = 1;
    for (int j = 0; j < s->k; j++) {
        size_t c = 0, col = j0 + (size_t)j;
        bool on = (size_t)j < count;
        for (int i = 0; i < f->nin; c += f->in_io[i++].len) {
            tg_node *d = s->dir[j * f->nin + i];
            size_t len = f->in_io[i].len, esize = f->in_io[i].dtype == TG_F64 ? 8 : 4;
            if (on && !unit) {
                put(d, v + col * f->n + c, len);
                continue;
            }
            put(d, NULL, len);
            if (on && col >= c && col < c + len)
                put_mem((char *)tg__value_of(d) + (col - c) * esize, f->in_io[i].dtype, &one, 1);
        }
    }
}

/* Reads the results of s for directions [0, count) into out[(j0+j)*rows ..),
 * or, transposed, into columns j0 + j of a rows x cols matrix. */
static void read_results(seg *s, int nres, const io *lay, double *out, size_t j0,
                         size_t count, size_t rows, bool columns, size_t cols) {
    for (size_t j = 0; j < count; j++) {
        size_t c = 0;
        for (int q = 0; q < nres; c += lay[q++].len) {
            tg_node *y = s->res[q * s->k + (int)j];
            const void *v = tg__value_of(y);
            if (!columns) {
                get(v, lay[q].dtype, out + (j0 + j) * rows + c, lay[q].len);
                continue;
            }
            for (size_t e = 0; e < lay[q].len; e++)
                out[(c + e) * cols + j0 + j] =
                    (lay[q].dtype == TG_F64 ? ((const double *)v)[e] : ((const float *)v)[e]) + 0.0;
        }
    }
}

/* Forward products along k directions (v, or unit vectors): seg which
 * (tangents of the outputs or of the gradient), K directions a replay. */
static int forward(tg_fn *f, int which, size_t k, const double *v, double *out, bool columns,
                   tg_error *err, const char *who) {
    int rc = make(f, which, err, who);
    if (rc) return rc;
    recording *r = &f->r;
    seg *s = &r->seg[which];
    bool hvp = which == SEG_HVP1 || which == SEG_HVPK;
    int nres = hvp ? f->nin : f->nout;
    const io *lay = hvp ? f->in_io : f->out_io;
    size_t rows = hvp ? f->n : f->m;
    for (size_t j0 = 0; j0 < k; j0 += (size_t)s->k) {
        size_t count = k - j0 < (size_t)s->k ? k - j0 : (size_t)s->k;
        if (hvp && r->seg[SEG_GRAD].at != f->version) replay(f, &r->seg[SEG_GRAD]);
        set_directions(f, s, v, j0, count, columns);
        replay(f, s);
        if (r->t->status) return tape_failed(f, err, who);
        read_results(s, nres, lay, out, j0, count, rows, columns, k);
    }
    return TG_OK;
}

/* One backward sweep from y seeded with w (numel(y) doubles; NULL: 1),
 * the inputs' gradients into row. */
static int sweep(tg_fn *f, tg_node *y, const double *w, double *row, tg_error *err,
                 const char *who) {
    recording *r = &f->r;
    /* A leaf's gradient memory, once a sweep gave it, stays where it is
     * (a compact leaf's keeps its sum from sweep to sweep): when every
     * input has some, it is zeroed and read as runs. */
    if (!r->ngrun) {
        bool all = true;
        for (int i = 0; i < f->nin; i++)
            all &= (r->grad[i] ? r->grad[i] : (r->grad[i] = tg__grad_of(r->in[i]))) != NULL;
        if (all) r->ngrun = make_runs(f, r->grad, r->grun);
    }
    for (size_t i = 0; i < r->ngrun; i++)
        memset(r->grun[i].mem, 0, r->grun[i].len * (r->grun[i].dtype == TG_F64 ? 8 : 4));
    for (int i = 0; !r->ngrun && i < f->nin; i++)
        if (r->grad[i]) memset(r->grad[i], 0, f->in_io[i].len * (f->in_io[i].dtype == TG_F64 ? 8 : 4));
    int rc;
    if (!w) {
        rc = tg_backward(y);
    } else {
        size_t len = (size_t)tg_numel(y);
        if (tg_node_dtype(y) == TG_F64)
            memcpy(f->seed, w, len * sizeof(double));
        else
            for (size_t e = 0; e < len; e++) ((float *)f->seed)[e] = (float)w[e];
        rc = tg_backward_seeded(y, f->seed);
    }
    if (rc) return tape_failed(f, err, who);
    for (size_t i = 0; i < r->ngrun; i++)
        get(r->grun[i].mem, r->grun[i].dtype, row + r->grun[i].off, r->grun[i].len);
    size_t c = 0;
    for (int i = 0; !r->ngrun && i < f->nin; c += f->in_io[i++].len) {
        const void *g = r->grad[i] ? r->grad[i] : (r->grad[i] = tg__grad_of(r->in[i]));
        if (g)
            get(g, f->in_io[i].dtype, row + c, f->in_io[i].len);
        else
            memset(row + c, 0, f->in_io[i].len * sizeof(double));
    }
    return TG_OK;
}

/* w^T J for one weight vector: a sweep from the output, or from the
 * weighted sum of the outputs. */
static int reverse(tg_fn *f, const double *w, double *row, tg_error *err, const char *who) {
    recording *r = &f->r;
    if (f->nout == 1) return sweep(f, r->out[0], w, row, err, who);
    int rc = make(f, SEG_SEED, err, who);
    if (rc) return rc;
    seg *s = &r->seg[SEG_SEED];
    size_t c = 0;
    for (int o = 0; o < f->nout; c += f->out_io[o++].len) put(s->dir[o], w + c, f->out_io[o].len);
    replay(f, s);
    return sweep(f, s->res[0], NULL, row, err, who);
}

/* ---------------------------------------------------------- the calls -- */

static int need(bool ok, const char *what, tg_error *err, const char *who) {
    return ok ? TG_OK : tg__err(err, TG_ERR_NULL, "%s: %s is NULL", who, what);
}

static int one_output(tg_fn *f, tg_error *err, const char *who) {
    return f->m == 1 ? TG_OK
                     : tg__err(err, TG_ERR_SHAPE,
                               "%s: the function has %zu output elements; this needs one (use "
                               "tg_fn_vjp or tg_fn_jacobian)", who, f->m);
}

static int directions(int k, const double *v, const double *res, tg_error *err, const char *who) {
    if (k < 1) return tg__err(err, TG_ERR_ARG, "%s: k = %d vectors; it must be at least 1", who, k);
    if (!v || !res) return tg__err(err, TG_ERR_NULL, "%s: %s is NULL", who, !v ? "the vectors" : "the result");
    return TG_OK;
}

int tg_fn_eval(tg_fn *f, const double *x, double *y, tg_error *err) {
    const char *who = "fn_eval";
    int rc = at_point(f, x, err, who);
    if (rc || (rc = need(y, "y", err, who))) return rc;
    size_t c = 0;
    for (int o = 0; o < f->nout; c += f->out_io[o++].len)
        get(tg__value_of(f->r.out[o]), f->out_io[o].dtype, y + c, f->out_io[o].len);
    return TG_OK;
}

int tg_fn_grad(tg_fn *f, const double *x, double *fx, double *g, tg_error *err) {
    const char *who = "fn_grad";
    int rc = at_point(f, x, err, who);
    if (rc || (rc = need(g, "g", err, who)) || (rc = one_output(f, err, who))) return rc;
    if ((rc = sweep(f, f->r.out[0], NULL, g, err, who))) return rc;
    if (fx) *fx = tg_value_at(f->r.out[0], 0);
    return TG_OK;
}

int tg_fn_jvp(tg_fn *f, const double *x, int k, const double *v, double *jv, tg_error *err) {
    const char *who = "fn_jvp";
    int rc = at_point(f, x, err, who);
    if (rc || (rc = directions(k, v, jv, err, who))) return rc;
    return forward(f, k == 1 ? SEG_JVP1 : SEG_JVPK, (size_t)k, v, jv, false, err, who);
}

int tg_fn_vjp(tg_fn *f, const double *x, int k, const double *w, double *wj, tg_error *err) {
    const char *who = "fn_vjp";
    int rc = at_point(f, x, err, who);
    if (rc || (rc = directions(k, w, wj, err, who))) return rc;
    for (int j = 0; j < k && !rc; j++)
        rc = reverse(f, w + (size_t)j * f->m, wj + (size_t)j * f->n, err, who);
    return rc;
}

int tg_fn_jacobian(tg_fn *f, const double *x, double *jac, tg_error *err) {
    const char *who = "fn_jacobian";
    int rc = at_point(f, x, err, who);
    if (rc || (rc = need(jac, "jac", err, who))) return rc;
    if (f->n < f->m) return forward(f, SEG_JVPK, f->n, NULL, jac, true, err, who);
    for (size_t i = 0; i < f->m && !rc; i++) {
        memset(f->buf, 0, sizeof(double) * f->m);
        f->buf[i] = 1;
        rc = reverse(f, f->buf, jac + i * f->n, err, who);
    }
    return rc;
}

int tg_fn_hvp(tg_fn *f, const double *x, int k, const double *v, double *hv, tg_error *err) {
    const char *who = "fn_hvp";
    int rc = at_point(f, x, err, who);
    if (rc || (rc = directions(k, v, hv, err, who)) || (rc = one_output(f, err, who))) return rc;
    return forward(f, k == 1 ? SEG_HVP1 : SEG_HVPK, (size_t)k, v, hv, false, err, who);
}

int tg_fn_hessian(tg_fn *f, const double *x, double *h, tg_error *err) {
    const char *who = "fn_hessian";
    int rc = at_point(f, x, err, who);
    if (rc || (rc = need(h, "h", err, who)) || (rc = one_output(f, err, who))) return rc;
    if ((rc = forward(f, SEG_HVPK, f->n, NULL, h, true, err, who))) return rc;
    bool finite = true;
    for (size_t i = 0; i < f->n * f->n && finite; i++) finite = isfinite(h[i]);
    if (finite) return TG_OK;
    /* rows by reverse sweeps of the recorded gradient (see tg_hessian) */
    recording *r = &f->r;
    size_t row = 0;
    for (int i = 0; i < f->nin && !rc; i++)
        for (size_t e = 0; e < f->in_io[i].len && !rc; e++, row++) {
            memset(f->buf, 0, sizeof(double) * f->in_io[i].len);
            f->buf[e] = 1;
            rc = sweep(f, r->seg[SEG_GRAD].res[i], f->buf, h + row * f->n, err, who);
        }
    return rc;
}
