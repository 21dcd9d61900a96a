/*
 * The compact scalar tape (src/engine/scalar.c, src/engine/sweep.c) against its oracle:
 * the same computation recorded as 64-byte nodes on a tape with
 * tg_set_scalar_tape(t, 0), which must give bit for bit the same values and
 * gradients (compared with memcmp, so the sign of a zero counts, and a NaN's
 * sign and payload where no compiler may choose them: see same_double), plus
 * derivatives worked out by hand and float64 finite differences where those
 * are independent of both tapes.
 *
 *   op table     every registered op of arity 1, 2 and 3, called by name on
 *                float64 scalars at a table of edge points (+-0, +-1, 0.5,
 *                ties, huge, tiny, subnormal, +-inf, NaNs with payloads),
 *                inputs variable or constant or one leaf used twice, two
 *                sweeps (seed 1, then zero_grad and another seed); ops that
 *                refuse scalars must refuse them alike on both tapes;
 *   hand values  documented values and derivatives at the edges;
 *   programs     random compositions (fixed seeds) of many ops, with deep
 *                chains, fan-out, ties, detours through tensor ops
 *                and several sweeps; one program checked against finite
 *                differences;
 *   chain        a 280,000-position chain over many chunks, swept from the
 *                end and from an interior node, against a hand-written
 *                adjoint; tg_value()/tg_grad() pointers stay valid;
 *   sweeps       leaves recorded after a sweep and after a reset start from
 *                0; a leaf as the output; a scalar used by several tensor
 *                ops (which read it in place) with compact records between them;
 *   replay       new leaf values through tg_value(), tg_forward(), backward:
 *                equal to fresh recordings on both kinds of tape;
 *   errors       stale handles after tg_tape_reset (TG_ERR_STATE), handles
 *                of another tape (TG_ERR_TAPE), dtype mismatches, with
 *                messages that say so;
 *   tensors      compact scalars mixed with tensor ops;
 *   higher order tg_grad, third order, tg_hvp, tg_jvp, tg_hessian,
 *                tg_jacobian (both modes);
 *   handles      every position of a tape with chunks of every size answers
 *                with its own index, value, handle and gradient, also
 *                after a rewind into a large chunk and a reset, with the
 *                C library's allocator and with a user's;
 *   memory       1,000,000 ops cost at most 24 bytes each (classic: >= 64);
 *   numerics     tg_set_check_numerics still catches NaN and inf.
 *
 * Whether a handle is a compact record is read from its tag bit (bit 0; a
 * 64-byte node's address is 64-byte aligned), the documented encoding of
 * docs/performance.md, only to make sure that the comparisons do compare
 * the two kinds of record.
 */
#include <float.h>
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include <tapegrad.h>
#include <tapegrad/nn.h>

/* ------------------------------------------------------------- helpers -- */

static bool same_bits(double a, double b) { return memcmp(&a, &b, sizeof a) == 0; }

/*
 * Which NaN an operation returns when two or more of its operands are NaNs
 * of different bits is unspecified (IEEE 754-2008 6.2.3 says only that the
 * payload should be one of the inputs'; C says nothing), and compilers
 * treat + and * as commutative, so the two tapes' element functions, the
 * same C expressions compiled at two sites, may return either operand's NaN
 * (x86 returns the first source register's), sign bit included: add(NaN,
 * -NaN) is NaN on one tape and -NaN on the other. Where two NaNs can meet,
 * same_double() therefore accepts any two NaNs (counting them in
 * nan_meetings); everywhere else, and for every non-NaN result (signed
 * zeros, infinities), the bits must be equal.
 *
 * clang goes further: LLVM leaves the sign of any NaN an arithmetic op
 * returns non-deterministic (LangRef, "Floating-Point Semantics") and moves
 * negations across multiplications ((-g) * d for g * -d), which flips a
 * NaN's sign bit and nothing else: div(x, x) at x = 0 has d/dx = inf + NaN,
 * NaN on one tape and -NaN on the other. Built with clang, any two NaNs
 * compare equal; with gcc, a NaN from at most one NaN input must keep its
 * bits.
 */
#if defined(__clang__)
#define NAN_BITS_FREE true
#else
#define NAN_BITS_FREE false
#endif
static bool nans_may_meet;
static long nan_meetings;
/* A leaf's gradient after tg_zero_grad accumulates onto +0, a fresh leaf's
 * first contribution is stored as it is (-0 stays -0), as PyTorch's
 * zero_grad() and None: comparisons of a replay with a fresh recording let
 * the sign of a zero differ. */
static bool zero_sign_free;

static bool same_double(double a, double b) {
    if (same_bits(a, b)) return true;
    if (zero_sign_free && a == 0 && b == 0) return true;
    if (nans_may_meet && isnan(a) && isnan(b)) {
        nan_meetings++;
        return true;
    }
    return false;
}

static uint64_t bits_of(double v) {
    uint64_t u;
    memcpy(&u, &v, sizeof u);
    return u;
}

static double from_bits(uint64_t u) {
    double v;
    memcpy(&v, &u, sizeof v);
    return v;
}

static bool is_compact(const tg_node *n) { return ((uintptr_t)n & 1u) != 0; }

static tg_tape *new_tape(int compact) {
    tg_tape *t = tg_tape_new();
    assert_non_null(t);
    tg_set_scalar_tape(t, compact);
    return t;
}

/* A float64 as "%.17g (0x...)" for failure messages. */
typedef struct dstr {
    char s[64];
} dstr;
static dstr show(double v) {
    dstr d;
    snprintf(d.s, sizeof d.s, "%.17g (0x%016llx)", v, (unsigned long long)bits_of(v));
    return d;
}

static void expect_near_at(double got, double want, double rel, const char *what, int line) {
    if (!(fabs(got - want) <= rel * fmax(1, fabs(want))))
        fail_msg("line %d: %s: got %.17g, want %.17g", line, what, got, want);
}
#define expect_near(got, want, rel, what) expect_near_at((got), (want), (rel), (what), __LINE__)

/* Gradients of a (compact tape) and b (classic tape): both absent, or both
 * present and equal bit for bit. */
static void expect_same_grad(const tg_node *a, const tg_node *b, const char *what) {
    const double *ga = tg_grad(a), *gb = tg_grad(b);
    if (!ga != !gb)
        fail_msg("%s: gradient %s on the compact tape but %s on the classic one", what,
                 ga ? "present" : "absent", gb ? "present" : "absent");
    if (ga && !same_double(*ga, *gb))
        fail_msg("%s: gradient %s (compact) != %s (classic)", what, show(*ga).s, show(*gb).s);
}

static void expect_same_value(const tg_node *a, const tg_node *b, const char *what) {
    double va = tg_value_scalar(a), vb = tg_value_scalar(b);
    if (!same_double(va, vb))
        fail_msg("%s: value %s (compact) != %s (classic)", what, show(va).s, show(vb).s);
}

/* The programs' random draws: the library's generator (fixed seeds). */
static tg_rng rng;
static double unif(void) { return tg_rng_uniform(&rng); }
static size_t below(size_t n) { return (size_t)tg_rng_below(&rng, n); }

/* ------------------------------------------------------------ op table -- */

#define NEDGE 29
static double edge[NEDGE];

static void fill_edges(void) {
    const double finite[] = {0.0,    -0.0,    1.0,     -1.0,   0.5,     -0.5,   2.0,
                             -2.0,   2.5,     -2.5,    3.0,    1e-300,  -1e-300, DBL_TRUE_MIN,
                             -DBL_TRUE_MIN, 1e300, -1e300, 710.0, -746.0, 30.0, -30.0,
                             DBL_MAX, 1.5707963267948966, INFINITY, -INFINITY};
    size_t n = sizeof finite / sizeof *finite;
    memcpy(edge, finite, sizeof finite);
    edge[n++] = NAN;
    edge[n++] = -NAN;
    edge[n++] = from_bits(0x7ff8000000000123ULL); /* quiet NaN, payload 0x123 */
    edge[n++] = from_bits(0xfff8000000000456ULL); /* negative quiet NaN, payload 0x456 */
    assert_int_equal(n, NEDGE);
}

/* A smaller set for ops of three inputs. */
static const int edge3[] = {0, 1, 2, 3, 4, 5, 8, 15, 23, 24, 25};
#define NEDGE3 (int)(sizeof edge3 / sizeof *edge3)

typedef struct outcome {
    int status;
    char message[256];
    double y;
    bool compact;
    bool has[2][3];     /* per sweep, per input: a gradient */
    double g[2][3];     /* its value */
    bool has_out;
    double gout;        /* the output's own gradient after the second sweep */
} outcome;

/* Records op on leaves of values v[0..ar) (variables where var has the
 * bit, constants elsewhere; same: input 1 is input 0's leaf), then sweeps
 * with seed 1, zeroes and sweeps with seed s. */
static void run_case(tg_tape *t, const tg_op *op, const double *v, unsigned var, bool same,
                     double s, outcome *o) {
    tg_tape_reset(t);
    memset(o, 0, sizeof *o);
    int ar = op->arity;
    tg_node *in[3];
    for (int k = 0; k < ar; k++)
        in[k] = same && k == 1 ? in[0] : (var >> k & 1) ? tg_scalar(t, v[k]) : tg_const(t, v[k]);
    tg_node *y = tg_call_n(op->name, ar, in);
    o->status = tg_status(t);
    snprintf(o->message, sizeof o->message, "%s", tg_status_message(t));
    if (o->status) return;
    assert_int_equal(tg_numel(y), 1);
    o->y = tg_value_scalar(y);
    o->compact = is_compact(y);
    for (int sweep = 0; sweep < 2; sweep++) {
        int rc = sweep ? tg_backward_seeded(y, &s) : tg_backward(y);
        if (rc) {
            o->status = rc;
            snprintf(o->message, sizeof o->message, "%s", tg_status_message(t));
            return;
        }
        for (int k = 0; k < ar; k++) {
            const double *g = tg_grad(in[k]);
            o->has[sweep][k] = g != NULL;
            o->g[sweep][k] = g ? *g : 0;
        }
        if (!sweep) tg_zero_grad(t);
    }
    const double *g = tg_grad(y);
    o->has_out = g != NULL;
    o->gout = g ? *g : 0;
}

static void expect_same_outcome(const tg_op *op, const double *v, unsigned var, bool same,
                                const outcome *c, const outcome *k) {
    char where[256];
    int n = snprintf(where, sizeof where, "%s(", op->name);
    for (int i = 0; i < op->arity; i++)
        n += snprintf(where + n, sizeof where - (size_t)n, "%s%.17g%s", i ? ", " : "",
                      same && i == 1 ? v[0] : v[i], (var >> i & 1) ? "" : " const");
    snprintf(where + n, sizeof where - (size_t)n, ")%s", same ? " on one leaf" : "");
    if (c->status != k->status || strcmp(c->message, k->message))
        fail_msg("%s: compact status %s \"%s\", classic %s \"%s\"", where,
                 tg_status_name(c->status), c->message, tg_status_name(k->status), k->message);
    if (c->status) return;
    if (!same_double(c->y, k->y))
        fail_msg("%s: value %s (compact) != %s (classic)", where, show(c->y).s, show(k->y).s);
    for (int s = 0; s < 2; s++)
        for (int i = 0; i < op->arity; i++) {
            if (c->has[s][i] != k->has[s][i])
                fail_msg("%s: sweep %d: input %d has a gradient on one tape only", where, s, i);
            if (!same_double(c->g[s][i], k->g[s][i]))
                fail_msg("%s: sweep %d: d/d input %d %s (compact) != %s (classic)", where, s, i,
                         show(c->g[s][i]).s, show(k->g[s][i]).s);
        }
    if (c->has_out != k->has_out || !same_double(c->gout, k->gout))
        fail_msg("%s: the output's gradient differs: %s vs %s", where, show(c->gout).s,
                 show(k->gout).s);
}

/* One op over its whole point table; returns whether it ever succeeded and
 * sets *compact when a result was a compact record. */
static bool walk_op(tg_tape *tc, tg_tape *tk, const tg_op *op, bool *compact, long *cases) {
    static const double seeds[] = {-0.75, 3.0, INFINITY, -0.0};
    outcome c, k;
    bool ok = false;
    int ar = op->arity;
    int npts = ar == 1 ? NEDGE : ar == 2 ? NEDGE * NEDGE : NEDGE3 * NEDGE3 * NEDGE3;
    for (int p = 0; p < npts; p++) {
        double v[3];
        if (ar == 1) {
            v[0] = edge[p];
        } else if (ar == 2) {
            v[0] = edge[p / NEDGE];
            v[1] = edge[p % NEDGE];
        } else {
            v[0] = edge[edge3[p / (NEDGE3 * NEDGE3)]];
            v[1] = edge[edge3[p / NEDGE3 % NEDGE3]];
            v[2] = edge[edge3[p % NEDGE3]];
        }
        unsigned all = (1u << ar) - 1;
        int diagonal = ar == 2 && p / NEDGE == p % NEDGE; /* op(x, x) too */
        /* arity 3: all variables, all constants, and the first input alone variable */
        for (unsigned var = 0; var <= all; var++) {
            if (ar == 3 && var != all && var != 0 && var != 1) continue;
            for (int same = 0; same <= diagonal; same++) {
                if (same && var > 1) continue; /* one leaf: variable or constant */
                double s = seeds[(p + var) % 4];
                int nans = 0;
                for (int i = 0; i < (same ? 1 : ar); i++) nans += isnan(v[i]) != 0;
                nans_may_meet = NAN_BITS_FREE || nans >= 2;
                run_case(tc, op, v, var, same, s, &c);
                run_case(tk, op, v, var, same, s, &k);
                expect_same_outcome(op, v, var, same, &c, &k);
                assert_false(k.compact); /* the oracle is 64-byte nodes */
                if (!c.status) ok = true;
                if (c.compact) *compact = true;
                ++*cases;
            }
        }
    }
    return ok;
}

static void test_op_table(void **state) {
    (void)state;
    fill_edges();
    tg_tape *tc = new_tape(1), *tk = new_tape(0);
    int walked = 0, refused = 0, compact_ops = 0;
    nan_meetings = 0;
    long cases = 0;
    char refusals[2048] = "";
    for (int i = 0; i < tg_op_count(); i++) {
        const tg_op *op = tg_op_at(i);
        assert_non_null(op);
        bool compact = false;
        if (walk_op(tc, tk, op, &compact, &cases)) {
            walked++;
            compact_ops += compact;
        } else {
            refused++;
            size_t n = strlen(refusals);
            snprintf(refusals + n, sizeof refusals - n, " %s", op->name);
        }
    }
    /* The unary, binary and comparison families have compact rules. */
    const char *must[] = {"add", "sub", "mul", "div", "pow", "atan2", "hypot", "maximum",
                          "minimum", "neg", "exp", "log", "sin", "tanh", "sigmoid", "relu",
                          "erf", "gelu", "silu", "round", "lt", "ne"};
    for (size_t i = 0; i < sizeof must / sizeof *must; i++) {
        const tg_op *op = tg_op_find(must[i]);
        assert_non_null(op);
        bool compact = false;
        long dummy = 0;
        assert_true(walk_op(tc, tk, op, &compact, &dummy));
        if (!compact) fail_msg("%s: never recorded as a compact record", must[i]);
    }
    assert_true(compact_ops >= 45);
    assert_true(walked >= 60);
    nans_may_meet = false;
    print_message("op table: %d ops compared (%d with compact records), %ld cases (%ld NaN "
                  "results of other bits accepted, see same_double); refused scalars alike "
                  "on both tapes:%s\n",
                  walked, compact_ops, cases, nan_meetings, refusals);
    tg_tape_free(tc);
    tg_tape_free(tk);
}

/* ---------------------------------------------------------- hand values -- */

/* Documented values and derivatives at edge points, on the compact tape,
 * against numbers worked out by hand (not by either tape). */
static void test_hand_values(void **state) {
    (void)state;
    static const struct {
        const char *op;
        double a, b;      /* b unused for unary ops */
        double y, da, db; /* value and partials, bits compared */
    } rows[] = {
        {"sin", 0.5, 0, 0.479425538604203, 0.8775825618903728, 0},
        {"exp", 0.0, 0, 1, 1, 0},
        {"log", 0.0, 0, -INFINITY, INFINITY, 0},
        {"sqrt", 0.0, 0, 0, INFINITY, 0},
        {"sqrt", 4.0, 0, 2, 0.25, 0},
        {"abs", -0.0, 0, 0, 0, 0},
        {"abs", -3.0, 0, 3, -1, 0},
        {"relu", 0.0, 0, 0, 0, 0},
        {"relu", 2.0, 0, 2, 1, 0},
        {"neg", 0.0, 0, -0.0, -1, 0},
        {"sign", -0.0, 0, 0.0, 0, 0},
        {"round", 2.5, 0, 2, 0, 0},
        {"round", -0.5, 0, -0.0, 0, 0},
        {"floor", -0.5, 0, -1, 0, 0},
        {"square", -3.0, 0, 9, -6, 0},
        {"reciprocal", 0.0, 0, INFINITY, -INFINITY, 0},
        {"reciprocal", 4.0, 0, 0.25, -0.0625, 0},
        {"sigmoid", 0.0, 0, 0.5, 0.25, 0},
        {"sigmoid", -800.0, 0, 0, 0, 0},
        {"tanh", 0.0, 0, 0, 1, 0},
        {"atan", INFINITY, 0, 1.5707963267948966, 0, 0},
        {"softplus", 800.0, 0, 800, 1, 0},
        {"softplus", -800.0, 0, 0, 0, 0},
        {"cbrt", -8.0, 0, -2, 1.0 / 12, 0},
        {"asin", 1.0, 0, 1.5707963267948966, INFINITY, 0},
        {"acos", -1.0, 0, 3.141592653589793, -INFINITY, 0},
        {"atanh", 1.0, 0, INFINITY, INFINITY, 0},
        {"log1p", -1.0, 0, -INFINITY, INFINITY, 0},
        {"log2", 0.0, 0, -INFINITY, INFINITY, 0},
        {"exp2", 3.0, 0, 8, 5.545177444479562, 0},
        {"add", 1.0, -1.0, 0, 1, 1},
        {"add", -0.0, -0.0, -0.0, 1, 1},
        {"sub", 0.0, 0.0, 0, 1, -1},
        {"mul", 3.0, -0.5, -1.5, -0.5, 3},
        {"div", 1.0, 4.0, 0.25, 0.25, -0.0625},
        {"div", 1.0, 0.0, INFINITY, INFINITY, -INFINITY},
        {"pow", 2.0, 3.0, 8, 12, 5.545177444479562},
        {"pow", 0.0, 2.0, 0, 0, 0},
        {"pow", -8.0, 1.0 / 3, NAN, NAN, NAN},
        {"maximum", 1.0, 1.0, 1, 0.5, 0.5},   /* a tie: half each */
        {"maximum", -0.0, 0.0, -0.0, 0.5, 0.5}, /* equal operands: the result is a */
        {"maximum", 1.0, 2.0, 2, 0, 1},
        {"minimum", 1.0, 2.0, 1, 1, 0},
        {"minimum", NAN, 2.0, NAN, 1, 1}, /* NaN: each operand gets all of it */
        {"atan2", 0.0, -0.0, 3.141592653589793, NAN, NAN},
        {"atan2", 1.0, 0.0, 1.5707963267948966, 0, -1},
        {"hypot", 3.0, 4.0, 5, 0.6, 0.8},
        {"hypot", INFINITY, NAN, INFINITY, NAN, NAN},
        {"lt", 1.0, 2.0, 1, 0, 0},
        {"ne", NAN, NAN, 1, 0, 0},
        {"eq", NAN, NAN, 0, 0, 0},
        {"ge", 2.0, 2.0, 1, 0, 0},
    };
    tg_tape *t = new_tape(1);
    for (size_t i = 0; i < sizeof rows / sizeof *rows; i++) {
        tg_tape_reset(t);
        const tg_op *op = tg_op_find(rows[i].op);
        assert_non_null(op);
        tg_node *a = tg_scalar(t, rows[i].a), *b = op->arity == 2 ? tg_scalar(t, rows[i].b) : NULL;
        tg_node *y = tg_call(rows[i].op, a, b);
        assert_true(is_compact(y));
        assert_int_equal(tg_backward(y), TG_OK);
        double got[3] = {tg_value_scalar(y), tg_grad_scalar(a), b ? tg_grad_scalar(b) : 0};
        double want[3] = {rows[i].y, rows[i].da, rows[i].db};
        const char *what[3] = {"value", "d/da", "d/db"};
        for (int k = 0; k < (b ? 3 : 2); k++) {
            bool approx = !strcmp(rows[i].op, "sin") || !strcmp(rows[i].op, "exp2");
            bool ok = isnan(want[k])   ? isnan(got[k])
                      : approx && k < 2 ? fabs(got[k] - want[k]) <= 1e-15 * fabs(want[k])
                                        : same_bits(got[k], want[k]);
            if (!ok)
                fail_msg("%s(%g%s%g): %s %s, want %s", rows[i].op, rows[i].a, b ? ", " : "",
                         b ? rows[i].b : 0.0, what[k], show(got[k]).s, show(want[k]).s);
        }
    }
    tg_tape_free(t);
}

/* -------------------------------------------------------------- programs -- */

enum { I_VAR, I_CONST, I_UN, I_BIN, I_POWC, I_SCALE, I_TDOT, I_TCAT };

typedef struct instr {
    uint8_t kind;
    uint8_t op;    /* index into un_ops / bin_ops */
    uint32_t a, b; /* earlier instructions */
    double c;      /* a leaf's value, pow's exponent, scale's factor */
} instr;

static const char *const un_ops[] = {
    /* smooth and bounded-ish first: the finite-difference program uses these */
    "sin", "cos", "tanh", "sigmoid", "atan", "asinh", "erf", "softplus", "silu", "gelu", "neg",
    /* then the rest */
    "exp", "square", "sqrt", "log1p", "abs", "relu", "cbrt", "floor", "sign", "reciprocal", "log",
    "expm1", "round", "cosh", "tan"};
enum { SMOOTH_UN = 11, N_UN = sizeof un_ops / sizeof *un_ops };
static const char *const bin_ops[] = {"add",     "sub",     "mul",   "div",  "maximum",
                                      "minimum", "hypot",   "atan2", "pow",  "lt",
                                      "ge",      "eq",      "bce_with_logits", "leaky_relu",
                                      "elu"};
enum { SMOOTH_BIN = 3, N_BIN = sizeof bin_ops / sizeof *bin_ops };

typedef struct prog {
    instr *in;
    size_t n;
    double T[3]; /* the tensor leaf of the detours */
} prog;

static const double leaf_values[] = {0.5, -1.0, 2.0, 0.5, -0.25, 1.0, 0.0, -0.0, 3.0};

/* A random program of n instructions. smooth: only smooth ops, variable
 * leaves in [-1, 1], no ties (for finite differences). */
static prog make_prog(uint64_t seed, size_t n, bool smooth) {
    tg_rng_seed(&rng, seed);
    prog p = {calloc(n, sizeof(instr)), n, {0.3, -0.7, 1.1}};
    assert_non_null(p.in);
    size_t leaves = 8;
    for (size_t i = 0; i < n; i++) {
        instr *q = &p.in[i];
        double u = unif();
        size_t hub = below(4); /* leaves 0..3 feed many nodes: fan-out */
        uint32_t a = (uint32_t)(i == 0 ? 0 : u < 0.6 ? i - 1 : unif() < 0.4 ? hub : below(i));
        uint32_t b = (uint32_t)(i == 0 ? 0 : unif() < 0.3 ? hub : below(i));
        q->a = a, q->b = b;
        if (i < leaves || unif() < 0.03) {
            q->kind = smooth || unif() < 0.8 ? I_VAR : I_CONST;
            q->c = smooth ? 2 * unif() - 1
                          : leaf_values[below(sizeof leaf_values / sizeof *leaf_values)];
            if (!smooth && unif() < 0.02) q->c = unif() < 0.5 ? INFINITY : NAN;
            continue;
        }
        u = unif();
        if (u < 0.45) {
            q->kind = I_UN;
            /* keep values bounded: mostly the smooth ops */
            q->op = (uint8_t)(smooth || unif() < 0.7 ? below(SMOOTH_UN) : below(N_UN));
        } else if (u < 0.9) {
            q->kind = I_BIN;
            q->op = (uint8_t)(smooth ? below(SMOOTH_BIN) : below(N_BIN));
        } else if (u < 0.94) {
            q->kind = I_POWC;
            q->c = smooth ? 2 : (double[]){2, 3, 0.5, -1, 0}[below(5)];
        } else if (u < 0.98) {
            q->kind = I_SCALE;
            q->c = (double[]){0.5, -2, 1.5, 0.0}[below(smooth ? 3 : 4)];
        } else if (u < 0.99) {
            /* detours through tensor ops; rare, since a 64-byte result
             * makes the nodes recorded on it 64-byte nodes too */
            q->kind = I_TDOT;
        } else {
            q->kind = I_TCAT;
        }
    }
    return p;
}

typedef struct run {
    tg_tape *t;
    tg_node **n;
    tg_node *T;
} run;

/* Records p on r->t (leaf values from leaf[] when given, else p's; the
 * tensor leaf's from T when given). */
static void run_prog(run *r, const prog *p, const double *leaf, const double *T) {
    tg_tape *t = r->t;
    const int64_t s3[1] = {3}, s1[1] = {1};
    r->T = tg_tensor(t, TG_F64, 1, s3, T ? T : p->T);
    for (size_t i = 0; i < p->n; i++) {
        const instr *q = &p->in[i];
        tg_node *a = r->n[q->a], *b = r->n[q->b], *y = NULL;
        double v = leaf ? leaf[i] : q->c;
        switch (q->kind) {
        case I_VAR: y = tg_scalar(t, v); break;
        case I_CONST: y = tg_const(t, v); break;
        case I_UN: y = tg_call(un_ops[q->op], a, NULL); break;
        case I_BIN: y = tg_call(bin_ops[q->op], a, b); break;
        case I_POWC: y = tg_pow(a, q->c); break;
        case I_SCALE: y = tg_scale(a, q->c); break;
        case I_TDOT: y = tg_sum(tg_mul(a, r->T)); break;
        case I_TCAT:
            y = tg_logsumexp(
                tg_concat(2, (tg_node *[]){tg_reshape(a, 1, s1), tg_reshape(b, 1, s1)}, 0));
            break;
        }
        r->n[i] = y;
    }
    if (tg_status(t)) fail_msg("recording failed: %s", tg_status_message(t));
}

static run new_run(int compact, size_t n) {
    run r = {new_tape(compact), calloc(n, sizeof(tg_node *)), NULL};
    assert_non_null(r.n);
    return r;
}

static void free_run(run *r) {
    tg_tape_free(r->t);
    free(r->n);
}

static bool is_leaf(const instr *q) { return q->kind == I_VAR || q->kind == I_CONST; }

/* Compares every value, the leaves' gradients and (full: presence too, as
 * after a first sweep; else where both have one) the interior gradients. */
static void compare_runs(const run *c, const run *k, const prog *p, bool full, const char *stage) {
    char what[160];
    for (size_t i = 0; i < p->n; i++) {
        snprintf(what, sizeof what, "%s: node %zu (%s)", stage, i, tg_node_op_name(k->n[i]));
        expect_same_value(c->n[i], k->n[i], what);
        assert_int_equal(tg_requires_grad(c->n[i]), tg_requires_grad(k->n[i]));
        assert_string_equal(tg_node_op_name(c->n[i]), tg_node_op_name(k->n[i]));
        const instr *q = &p->in[i];
        if (q->kind == I_UN || q->kind == I_BIN) {
            assert_int_equal(tg_node_arity(c->n[i]), q->kind == I_UN ? 1 : 2);
            assert_ptr_equal(tg_node_input(c->n[i], 0), c->n[q->a]);
            assert_ptr_equal(tg_node_input(k->n[i], 0), k->n[q->a]);
            if (q->kind == I_BIN) assert_ptr_equal(tg_node_input(c->n[i], 1), c->n[q->b]);
        }
        if (is_leaf(q) || full) {
            expect_same_grad(c->n[i], k->n[i], what);
        } else {
            const double *gc = tg_grad(c->n[i]), *gk = tg_grad(k->n[i]);
            if (gc && !gk) fail_msg("%s: a compact gradient where the classic has none", what);
            if (gc && !same_double(*gc, *gk))
                fail_msg("%s: gradient %s (compact) != %s (classic)", what, show(*gc).s,
                         show(*gk).s);
        }
    }
    const double *tc = tg_grad(c->T), *tk = tg_grad(k->T);
    assert_true(!tc == !tk);
    for (int i = 0; tc && i < 3; i++)
        if (!same_double(tc[i], tk[i]))
            fail_msg("%s: the tensor leaf's gradient %d: %s (compact) != %s (classic)", stage, i,
                     show(tc[i]).s, show(tk[i]).s);
}

/* The last instruction, or the last one that wants a gradient. */
static size_t output_of(const run *r, const prog *p) {
    size_t o = p->n - 1;
    while (o > 0 && !tg_requires_grad(r->n[o])) o--;
    return o;
}

static void test_random_programs(void **state) {
    (void)state;
    enum { PROGS = 24, LEN = 3000 };
    long finite = 0, nonzero = 0, leaves = 0, compact = 0, nodes = 0;
    nans_may_meet = true; /* NaN leaves meet NaNs of other bits */
    nan_meetings = 0;
    for (int s = 0; s < PROGS; s++) {
        prog p = make_prog(0x5ca1a7 + (uint64_t)s * 7919, LEN, false);
        run c = new_run(1, p.n), k = new_run(0, p.n);
        run_prog(&c, &p, NULL, NULL);
        run_prog(&k, &p, NULL, NULL);
        for (size_t i = 0; i < p.n; i++) compact += is_compact(c.n[i]), nodes++;
        compare_runs(&c, &k, &p, true, "recorded");
        /* Sweep 1 from the output: every gradient, presence included. */
        size_t o = output_of(&c, &p);
        assert_int_equal(tg_backward(c.n[o]), TG_OK);
        assert_int_equal(tg_backward(k.n[o]), TG_OK);
        compare_runs(&c, &k, &p, true, "sweep 1");
        /* Sweep 2 from an interior node (leaf gradients accumulate). */
        size_t m = o / 2;
        while (m > 0 && !tg_requires_grad(c.n[m])) m--;
        double seed = -1.25;
        assert_int_equal(tg_backward_seeded(c.n[m], &seed), TG_OK);
        assert_int_equal(tg_backward_seeded(k.n[m], &seed), TG_OK);
        compare_runs(&c, &k, &p, false, "sweep 2");
        /* Sweep 3, after zeroing, from a sum of many nodes of finite values
         * (chosen by the compact run's values, which equal the other's): a
         * node of large fan-in on nodes of large fan-out. */
        tg_node *sc = NULL, *sk = NULL;
        for (size_t i = 0; i < p.n; i += 3) {
            double v = tg_value_scalar(c.n[i]);
            if (!tg_requires_grad(c.n[i]) || !(fabs(v) < 1e6)) continue;
            sc = sc ? tg_add(sc, c.n[i]) : c.n[i];
            sk = sk ? tg_add(sk, k.n[i]) : k.n[i];
        }
        assert_non_null(sc);
        expect_same_value(sc, sk, "the sum");
        tg_zero_grad(c.t);
        tg_zero_grad(k.t);
        assert_int_equal(tg_backward(sc), TG_OK);
        assert_int_equal(tg_backward(sk), TG_OK);
        compare_runs(&c, &k, &p, false, "sweep 3");
        /* Sweep 4 from the output again. */
        assert_int_equal(tg_backward(c.n[o]), TG_OK);
        assert_int_equal(tg_backward(k.n[o]), TG_OK);
        compare_runs(&c, &k, &p, false, "sweep 4");
        for (size_t i = 0; i < p.n; i++)
            if (p.in[i].kind == I_VAR) {
                double g = tg_grad_scalar(c.n[i]);
                leaves++, finite += isfinite(g), nonzero += isfinite(g) && g != 0;
            }
        free_run(&c);
        free_run(&k);
        free(p.in);
    }
    /* The comparisons compared something: many records compact, gradients
     * mostly finite, many non-zero (64-byte results, of tensor detours and of
     * ops without compact rules, make the nodes recorded on them 64-byte). */
    assert_true(compact > nodes / 3);
    assert_true(finite > leaves / 2);
    assert_true(nonzero > leaves / 5);
    print_message("programs: %d x %d instructions, %ld of %ld nodes compact; %ld variable "
                  "leaves, %ld finite gradients, %ld non-zero; %ld NaNs of other bits\n",
                  PROGS, LEN, compact, nodes, leaves, finite, nonzero, nan_meetings);
    nans_may_meet = false;
}

/* A smooth program's leaf gradients against central finite differences of
 * its value (recomputed by replay, which involves no gradient code). */
/* The sum of every node of a run: an output that depends on all of them. */
static tg_node *total(const run *r, const prog *p) {
    tg_node *acc = r->n[0];
    for (size_t i = 1; i < p->n; i++) acc = tg_add(acc, r->n[i]);
    return acc;
}

static void test_program_finite_differences(void **state) {
    (void)state;
    prog p = make_prog(0xfd0001, 400, true);
    run c = new_run(1, p.n), k = new_run(0, p.n);
    run_prog(&c, &p, NULL, NULL);
    run_prog(&k, &p, NULL, NULL);
    tg_node *oc = total(&c, &p), *ok = total(&k, &p);
    assert_int_equal(tg_backward(oc), TG_OK);
    assert_int_equal(tg_backward(ok), TG_OK);
    expect_same_value(oc, ok, "the sum");
    compare_runs(&c, &k, &p, true, "smooth");
    int checked = 0, leaves = 0;
    for (size_t i = 0; i < p.n; i++) {
        if (p.in[i].kind != I_VAR) continue;
        double *x = tg_value(c.n[i]), x0 = *x, h = 1e-6, f[2];
        for (int s = 0; s < 2; s++) {
            *x = x0 + (s ? -h : h);
            assert_int_equal(tg_forward(c.t), TG_OK);
            f[s] = tg_value_scalar(oc);
        }
        *x = x0;
        double fd = (f[0] - f[1]) / (2 * h), g = tg_grad_scalar(c.n[i]);
        if (!(fabs(fd - g) <= 1e-6 * fmax(1, fabs(g))))
            fail_msg("leaf %zu: gradient %.17g, finite difference %.17g", i, g, fd);
        checked += g != 0, leaves++;
    }
    assert_true(checked >= 10 && checked > leaves / 2);
    assert_int_equal(tg_forward(c.t), TG_OK);
    compare_runs(&c, &k, &p, false, "smooth after replay");
    free_run(&c);
    free_run(&k);
    free(p.in);
}

/* ---------------------------------------------------------------- chain -- */

/* s_0 = x, s_{i+1} = sin(a s_i) + c x, for i < n: 4 positions and one
 * partial a step, so 70,000 steps span 5 chunks of records and 2 of
 * partials. */
static tg_node *chain(tg_node *x, tg_node *a, tg_node *c, int n, tg_node **mid) {
    tg_node *s = x;
    for (int i = 0; i < n; i++) {
        s = tg_add(tg_sin(tg_mul(a, s)), tg_mul(x, c));
        if (i == n / 2 + 17) *mid = s;
    }
    return s;
}

/* Hand-written adjoint of the chain from step `top` (the node s_top). */
static void chain_adjoint(double x, double a, double c, int top, double *gx, double *ga) {
    double *s = malloc(((size_t)top + 1) * sizeof *s);
    assert_non_null(s);
    s[0] = x;
    for (int i = 0; i < top; i++) s[i + 1] = sin(a * s[i]) + c * x;
    double g = 1, sx = 0, sa = 0;
    for (int i = top - 1; i >= 0; i--) {
        sx += g * c;
        double gu = g * cos(a * s[i]);
        sa += gu * s[i];
        g = gu * a;
    }
    *gx = sx + g, *ga = sa;
    free(s);
}

static void test_deep_chain(void **state) {
    (void)state;
    enum { N = 70000 };
    const double X = 0.3, A = 0.9, C = 0.05;
    tg_tape *t[2];
    tg_node *x[2], *a[2], *f[2], *mid[2];
    for (int k = 0; k < 2; k++) {
        t[k] = new_tape(!k);
        x[k] = tg_scalar(t[k], X);
        a[k] = tg_scalar(t[k], A);
        tg_node *c = tg_const(t[k], C);
        f[k] = chain(x[k], a[k], c, N, &mid[k]);
        assert_int_equal(tg_status(t[k]), TG_OK);
    }
    assert_true(is_compact(f[0]) && !is_compact(f[1]));
    assert_true(tg_tape_size(t[0]) > 3 * 65536);
    double *xv = tg_value(x[0]); /* stays valid while the tape grows */
    /* Sweep from an interior node first: the partials' index runs down from
     * the middle of a chunk. */
    for (int k = 0; k < 2; k++) assert_int_equal(tg_backward(mid[k]), TG_OK);
    expect_same_grad(x[0], x[1], "x, interior sweep");
    expect_same_grad(a[0], a[1], "a, interior sweep");
    expect_same_grad(mid[0], mid[1], "the interior output");
    double gx, ga;
    chain_adjoint(X, A, C, N / 2 + 18, &gx, &ga);
    expect_near(tg_grad_scalar(x[0]), gx, 1e-12, "dx, interior sweep");
    expect_near(tg_grad_scalar(a[0]), ga, 1e-12, "da, interior sweep");
    const double *gxp = tg_grad(x[0]);
    assert_non_null(gxp);
    /* Then from the end, after zeroing. */
    for (int k = 0; k < 2; k++) {
        tg_zero_grad(t[k]);
        assert_int_equal(tg_backward(f[k]), TG_OK);
    }
    expect_same_grad(x[0], x[1], "x");
    expect_same_grad(a[0], a[1], "a");
    chain_adjoint(X, A, C, N, &gx, &ga);
    expect_near(*gxp, gx, 1e-12, "dx through the old gradient pointer");
    expect_near(tg_grad_scalar(a[0]), ga, 1e-12, "da");
    /* Replay through the old value pointer. */
    *xv = -0.4;
    *(double *)tg_value(x[1]) = -0.4;
    for (int k = 0; k < 2; k++) {
        assert_int_equal(tg_forward(t[k]), TG_OK);
        tg_zero_grad(t[k]);
        assert_int_equal(tg_backward(f[k]), TG_OK);
    }
    expect_same_value(f[0], f[1], "f after replay");
    expect_same_grad(x[0], x[1], "x after replay");
    expect_same_grad(a[0], a[1], "a after replay");
    chain_adjoint(-0.4, A, C, N, &gx, &ga);
    expect_near(tg_grad_scalar(x[0]), gx, 1e-12, "dx after replay");
    for (int k = 0; k < 2; k++) tg_tape_free(t[k]);
}

/* Leaves recorded after a sweep, at positions whose gradient memory holds
 * the values of a recording before tg_tape_reset(): they start from 0, and
 * the leaves of the earlier sweep keep accumulating. */
static void test_leaves_after_sweeps(void **state) {
    (void)state;
    const double A = 0.5, C = -1.5, E = 0.25;
    double ga[2], gc[2], ge[2];
    for (int k = 0; k < 2; k++) {
        tg_tape *t = new_tape(!k);
        tg_node *x = tg_scalar(t, 2), *s = x;
        for (int i = 0; i < 40; i++) s = tg_mul(tg_sin(s), x);
        assert_int_equal(tg_backward(s), TG_OK);
        assert_true(tg_grad_scalar(x) != 0);
        tg_tape_reset(t);
        tg_node *a = tg_scalar(t, A), *b = tg_sin(a);
        assert_int_equal(tg_backward(b), TG_OK);
        tg_node *c = tg_scalar(t, C), *d = tg_mul(b, c);
        assert_int_equal(tg_backward(d), TG_OK);
        tg_node *e = tg_scalar(t, E), *f = tg_add(tg_mul(d, e), tg_exp(e));
        assert_null(tg_grad(e)); /* not swept yet */
        assert_int_equal(tg_backward(f), TG_OK);
        ga[k] = tg_grad_scalar(a), gc[k] = tg_grad_scalar(c), ge[k] = tg_grad_scalar(e);
        tg_tape_free(t);
    }
    assert_true(same_bits(ga[0], ga[1]) && same_bits(gc[0], gc[1]) && same_bits(ge[0], ge[1]));
    /* by hand: sweeps of sin(a), sin(a) c, sin(a) c e + e^e */
    expect_near(ga[0], cos(A) + C * cos(A) + E * C * cos(A), 1e-15, "da");
    expect_near(gc[0], sin(A) + E * sin(A), 1e-15, "dc");
    expect_near(ge[0], sin(A) * C + exp(E), 1e-15, "de");
    /* A leaf as the output: its seed accumulates. */
    for (int k = 0; k < 2; k++) {
        tg_tape *t = new_tape(!k);
        tg_node *x = tg_scalar(t, 3);
        const double seed = -0.5;
        assert_int_equal(tg_backward(x), TG_OK);
        assert_int_equal(tg_backward(x), TG_OK);
        assert_int_equal(tg_backward_seeded(x, &seed), TG_OK);
        assert_true(tg_grad_scalar(x) == 1.5);
        tg_zero_grad(t);
        assert_true(same_bits(tg_grad_scalar(x), 0.0));
        tg_tape_free(t);
    }
}

/* --------------------------------------------------------------- replay -- */

static void test_replay(void **state) {
    (void)state;
    nans_may_meet = true; /* as for the programs */
    for (int s = 0; s < 6; s++) {
        prog p = make_prog(0xe1e1 + (uint64_t)s, 1500, false);
        run r = new_run(1, p.n), rk = new_run(0, p.n);
        run_prog(&r, &p, NULL, NULL);
        run_prog(&rk, &p, NULL, NULL);
        size_t o = output_of(&r, &p);
        assert_int_equal(tg_backward(r.n[o]), TG_OK);
        assert_int_equal(tg_backward(rk.n[o]), TG_OK);
        size_t size = tg_tape_size(r.t), bytes = tg_tape_bytes(r.t);
        double *leaf = malloc(p.n * sizeof *leaf);
        assert_non_null(leaf);
        for (int round = 0; round < 4; round++) {
            double T[3];
            for (size_t i = 0; i < p.n; i++) {
                leaf[i] = p.in[i].c;
                if (!is_leaf(&p.in[i])) continue;
                /* new values, with ties and, in the last round, edges */
                leaf[i] = round == 3 && unif() < 0.1
                              ? (double[]){0.0, -0.0, INFINITY, NAN}[below(4)]
                              : leaf_values[below(sizeof leaf_values / sizeof *leaf_values)];
                *(double *)tg_value(r.n[i]) = leaf[i];
                *(double *)tg_value(rk.n[i]) = leaf[i];
            }
            for (int j = 0; j < 3; j++) T[j] = 2 * unif() - 1;
            memcpy(tg_value(r.T), T, sizeof T);
            memcpy(tg_value(rk.T), T, sizeof T);
            run *both[2] = {&r, &rk};
            for (int k = 0; k < 2; k++) {
                assert_int_equal(tg_forward(both[k]->t), TG_OK);
                tg_zero_grad(both[k]->t);
                assert_int_equal(tg_backward(both[k]->n[o]), TG_OK);
            }
            /* fresh recordings of the same values, compact and classic */
            run fc = new_run(1, p.n), fk = new_run(0, p.n);
            run_prog(&fc, &p, leaf, T);
            run_prog(&fk, &p, leaf, T);
            assert_int_equal(tg_backward(fc.n[o]), TG_OK);
            assert_int_equal(tg_backward(fk.n[o]), TG_OK);
            compare_runs(&fc, &fk, &p, true, "fresh");
            zero_sign_free = true;
            compare_runs(&r, &fc, &p, false, "replayed (compact) vs fresh");
            compare_runs(&rk, &fk, &p, false, "replayed (classic) vs fresh");
            zero_sign_free = false;
            compare_runs(&r, &rk, &p, false, "replayed");
            free_run(&fc);
            free_run(&fk);
        }
        /* replay records and allocates nothing */
        assert_int_equal(tg_tape_size(r.t), size);
        assert_int_equal(tg_tape_bytes(r.t), bytes);
        free(leaf);
        free_run(&r);
        free_run(&rk);
        free(p.in);
    }
    nans_may_meet = false;
}

/* --------------------------------------------------------------- errors -- */

static void expect_status(tg_tape *t, int code, const char *needle) {
    if (tg_status(t) != code || !strstr(tg_status_message(t), needle))
        fail_msg("status %s \"%s\", want %s mentioning \"%s\"", tg_status_name(tg_status(t)),
                 tg_status_message(t), tg_status_name(code), needle);
}

static void test_stale_handles(void **state) {
    (void)state;
    for (int compact = 1; compact >= 0; compact--) {
        tg_tape *t = new_tape(compact);
        tg_node *x = tg_scalar(t, 2), *y = tg_sin(x), *z = tg_mul(y, x);
        assert_int_equal(is_compact(z), compact);
        assert_int_equal(tg_backward(z), TG_OK);

        tg_tape_reset(t);
        assert_int_equal(tg_status(t), TG_OK);
        tg_node *r = tg_sin(y); /* unary op on a stale handle */
        expect_status(t, TG_ERR_STATE, "tg_tape_reset");
        assert_true(isnan(tg_value_scalar(r)));

        tg_tape_reset(t);
        tg_node *fresh = tg_scalar(t, 1);
        tg_add(fresh, z); /* a stale second input */
        expect_status(t, TG_ERR_STATE, "input 1");
        expect_status(t, TG_ERR_STATE, "tg_tape_reset");

        tg_tape_reset(t);
        fresh = tg_scalar(t, 1);
        tg_call("atan2", z, fresh); /* a stale first input of a binary op */
        expect_status(t, TG_ERR_STATE, "input 0");

        tg_tape_reset(t);
        assert_int_equal(tg_backward(z), TG_ERR_STATE);
        expect_status(t, TG_ERR_STATE, "backward");

        tg_tape_reset(t);
        assert_null(tg_value(x));
        expect_status(t, TG_ERR_STATE, "tg_tape_reset");

        tg_tape_reset(t);
        assert_null(tg_grad(x));
        expect_status(t, TG_ERR_STATE, "tg_tape_reset");

        tg_tape_reset(t);
        assert_true(isnan(tg_grad_scalar(z)));
        assert_int_equal(tg_status(t), TG_ERR_STATE);

        tg_tape_reset(t);
        tg_node *w = tg_scalar(t, 3), *g;
        tg_node *f = tg_mul(w, w);
        assert_int_equal(tg_grad(f, 1, &z, &g), TG_ERR_STATE);

        tg_tape_reset(t);
        tg_mul(tg_tensor(t, TG_F64, 1, (const int64_t[]){2}, NULL), y); /* a tensor op */
        expect_status(t, TG_ERR_STATE, "tg_tape_reset");

        /* After all that the tape works. */
        tg_tape_reset(t);
        x = tg_scalar(t, 2);
        assert_int_equal(tg_backward(tg_mul(x, x)), TG_OK);
        assert_true(tg_grad_scalar(x) == 4);
        tg_tape_free(t);
    }
}

/* A compact handle finds its tape through its chunk, not a table of live
 * tapes: with 40,000 tapes alive, the last one still records compact
 * scalars (as many bytes as the first for the same recording) and each
 * handle answers for its own tape. */
static void test_many_tapes(void **state) {
    (void)state;
    enum { TAPES = 40000 };
    tg_tape **t = malloc(TAPES * sizeof *t);
    assert_non_null(t);
    for (int i = 0; i < TAPES; i++) assert_non_null(t[i] = tg_tape_new());
    int ends[2] = {0, TAPES - 1};
    size_t bytes[2];
    for (int e = 0; e < 2; e++) {
        tg_tape *u = t[ends[e]];
        tg_node *x = tg_scalar(u, 0.5), *y = x;
        for (int k = 0; k < 200; k++) y = tg_mul(tg_sin(y), x);
        assert_ptr_equal(tg_node_tape(y), u);
        assert_int_equal(tg_backward(y), TG_OK);
        assert_true(isfinite(tg_grad_scalar(x)) && tg_grad_scalar(x) != 0);
        bytes[e] = tg_tape_bytes(u);
    }
    assert_int_equal(bytes[0], bytes[1]);
    for (int i = 0; i < TAPES; i++) tg_tape_free(t[i]);
    free(t);
}

/* Chunks grow from 1,024 positions to 65,536, and a handle holds its
 * chunk's size class: every position of a 300,000-position tape (chunks of
 * every size) answers with its own index, value and handle, gradients land
 * on the right leaf, and a rewind into the middle of a large chunk and a
 * reset reuse the chunks with the same handles. */
static void check_handles_across_chunks(void) {
    enum { N = 300000, MID = 270001 };
    tg_tape *t = new_tape(1);
    tg_node **v = malloc(N * sizeof *v);
    assert_non_null(v);
    tg_mark m = {0};
    for (int round = 0; round < 3; round++) {
        size_t from = round == 1 ? MID : 0;
        for (size_t i = from; i < N; i++) {
            if (i == MID) m = tg_tape_mark(t);
            tg_node *h = tg_scalar(t, (double)i);
            if (round) assert_ptr_equal(h, v[i]); /* the chunks were reused */
            v[i] = h;
        }
        assert_int_equal(tg_tape_size(t), N);
        size_t bad = 0;
        for (size_t i = 0; i < N; i++)
            bad += !is_compact(v[i]) || tg_node_index(v[i]) != i || tg_tape_node(t, i) != v[i] ||
                   *(const double *)tg_value(v[i]) != (double)i;
        if (bad) fail_msg("round %d: %zu handles answer for another position", round, bad);
        /* f = sum of i v_i over a stride that visits every chunk: df/dv_i = i */
        tg_node *f = tg_const(t, 0);
        for (size_t i = 1; i < N; i += 997) f = tg_add(f, tg_mul(tg_const(t, (double)i), v[i]));
        assert_int_equal(tg_backward(f), TG_OK);
        for (size_t i = 1; i < N; i++)
            bad += tg_grad_scalar(v[i]) != (i % 997 == 1 ? (double)i : 0.0);
        if (bad) fail_msg("round %d: %zu gradients on the wrong leaf", round, bad);
        tg_zero_grad(t);
        if (round == 0) assert_int_equal(tg_tape_rewind(t, &m), TG_OK);
        if (round == 1) tg_tape_reset(t);
    }
    assert_int_equal(tg_status(t), TG_OK);
    free(v);
    tg_tape_free(t);
}

static void *plain_malloc(size_t n, void *ctx) { (void)ctx; return malloc(n); }
static void *plain_realloc(void *p, size_t n, void *ctx) { (void)ctx; return realloc(p, n); }
static void plain_free(void *p, void *ctx) { (void)ctx; free(p); }

/* The same with a user's allocator, which has no aligned allocation: the
 * chunks' arrays are placed around their aligned header, and a small tape
 * stays as small as tapegrad.h states (one scalar: about 19 KB). */
static void test_handles_across_chunks(void **state) {
    (void)state;
    check_handles_across_chunks();
    tg_set_allocator(&(tg_allocator){plain_malloc, plain_realloc, plain_free, NULL});
    check_handles_across_chunks();
    tg_tape *t = tg_tape_new();
    tg_scalar(t, 1);
    size_t one = tg_tape_bytes(t);
    tg_tape_free(t);
    tg_set_allocator(NULL);
    if (one > 24 * 1024) fail_msg("with a user's allocator one scalar takes %zu bytes", one);
}

static void test_other_tape(void **state) {
    (void)state;
    for (int compact = 1; compact >= 0; compact--) {
        tg_tape *t1 = new_tape(compact), *t2 = new_tape(1), *t3 = new_tape(0);
        tg_node *x1 = tg_scalar(t1, 1), *x2 = tg_scalar(t2, 2), *x3 = tg_scalar(t3, 3);
        tg_add(x1, x2);
        expect_status(t1, TG_ERR_TAPE, "different tapes");
        assert_int_equal(tg_status(t2), TG_OK);
        tg_tape_reset(t1);
        x1 = tg_scalar(t1, 1);
        tg_call("maximum", x2, x1); /* recorded on the first input's tape */
        expect_status(t2, TG_ERR_TAPE, "different tapes");
        assert_int_equal(tg_status(t1), TG_OK);
        tg_tape_reset(t2);
        x2 = tg_scalar(t2, 2);
        tg_mul(x1, x3); /* a 64-byte node of another tape */
        expect_status(t1, TG_ERR_TAPE, "different tapes");
        tg_tape_reset(t1);
        x1 = tg_scalar(t1, 1);
        tg_mul(x1, tg_tensor(t2, TG_F64, 1, (const int64_t[]){3}, NULL));
        expect_status(t1, TG_ERR_TAPE, "different tapes");
        tg_tape_reset(t1);
        x1 = tg_scalar(t1, 1);
        tg_node *g, *f = tg_sin(x1);
        assert_int_equal(tg_grad(f, 1, &x2, &g), TG_ERR_TAPE);
        tg_tape_reset(t1);
        /* a dtype mismatch: a float64 scalar and a float32 tensor */
        x1 = tg_scalar(t1, 1);
        tg_mul(x1, tg_tensor(t1, TG_F32, 1, (const int64_t[]){3}, NULL));
        expect_status(t1, TG_ERR_DTYPE, "dtypes differ");
        tg_tape_free(t1);
        tg_tape_free(t2);
        tg_tape_free(t3);
    }
}

/* -------------------------------------------------------------- tensors -- */

static void test_mixed_with_tensors(void **state) {
    (void)state;
    const double Tv[4] = {0.5, -1.5, 2.0, 0.25}, X = 0.7, Y = -0.3;
    tg_node *x[2], *y[2], *T[2], *f[2], *s[2], *v[2];
    double ext_grad[2][4] = {{0}};
    double ext[2][4];
    for (int k = 0; k < 2; k++) {
        tg_tape *t = new_tape(!k);
        memcpy(ext[k], Tv, sizeof Tv);
        x[k] = tg_scalar(t, X);
        y[k] = tg_scalar(t, Y);
        T[k] = tg_tensor(t, TG_F64, 1, (const int64_t[]){4}, Tv);
        v[k] = tg_view(t, TG_F64, 1, (const int64_t[]){4}, ext[k], ext_grad[k]);
        /* scalar * tensor, tensor reduced to a scalar, compact ops on it */
        s[k] = tg_sum(tg_mul(x[k], T[k]));                  /* x sum T */
        tg_node *u = tg_mul(tg_sin(s[k]), tg_exp(y[k]));      /* 64-byte * compact */
        tg_node *w = tg_add(tg_mul(x[k], y[k]), tg_sum(tg_mul(tg_tanh(T[k]), y[k])));
        tg_node *q = tg_mean(tg_mul(tg_sub(v[k], x[k]), tg_sub(v[k], x[k])));
        tg_node *cat = tg_concat(
            3, (tg_node *[]){tg_reshape(x[k], 1, (const int64_t[]){1}),
                             tg_reshape(tg_cos(y[k]), 1, (const int64_t[]){1}), T[k]}, 0);
        tg_node *sm = tg_sum(tg_mul(tg_softmax(cat, 0), cat));
        f[k] = tg_add(tg_add(u, w), tg_add(q, sm));
        assert_int_equal(tg_status(t), TG_OK);
        assert_int_equal(tg_backward(f[k]), TG_OK);
    }
    assert_true(is_compact(x[0]) && is_compact(y[0]));
    expect_same_value(f[0], f[1], "f");
    expect_same_value(s[0], s[1], "sum(x T)");
    expect_same_grad(x[0], x[1], "x");
    expect_same_grad(y[0], y[1], "y");
    assert_memory_equal(tg_grad(T[0]), tg_grad(T[1]), sizeof Tv);
    assert_memory_equal(ext_grad[0], ext_grad[1], sizeof Tv);
    /* by hand: u = sin(x S) e^y with S = sum T; w = x y + y sum tanh T;
     * q = mean((v - x)^2); so du/dx = cos(xS) S e^y, dw/dx = y, dq/dx = -2 mean(v - x) */
    double S = 0, th = 0, m = 0;
    for (int i = 0; i < 4; i++) S += Tv[i], th += tanh(Tv[i]), m += Tv[i] - X;
    m /= 4;
    double sm_dx = 0; /* d/dx of sum(softmax(c) c), c = (x, cos y, T): p_0 (1 + c_0 - sum p c) */
    {
        double c[6] = {X, cos(Y), Tv[0], Tv[1], Tv[2], Tv[3]}, z = 0, e[6], pc = 0;
        for (int i = 0; i < 6; i++) z += e[i] = exp(c[i]);
        for (int i = 0; i < 6; i++) pc += e[i] / z * c[i];
        sm_dx = e[0] / z * (1 + c[0] - pc);
    }
    expect_near(tg_grad_scalar(x[0]), cos(X * S) * S * exp(Y) + Y - 2 * m + sm_dx, 1e-13, "dx");
    for (int k = 0; k < 2; k++) tg_tape_free(tg_node_tape(x[k]));
}

/* A tensor op on a compact scalar records one node, which reads the
 * scalar's value and adds into its gradient where they are stored (no copy
 * of the scalar of its own, which a replay would have to refresh): its
 * inputs are the scalar itself, and a new value set through tg_value()
 * reaches it on replay. */
static void test_tensor_op_reads_scalar_in_place(void **state) {
    (void)state;
    const int64_t s3[1] = {3};
    const double Tv[3] = {0.5, -2.0, 4.0};
    tg_tape *t = new_tape(1);
    tg_node *T = tg_tensor(t, TG_F64, 1, s3, Tv), *x = tg_scalar(t, 1.5);
    size_t before = tg_tape_size(t);
    tg_node *m = tg_mul(x, T);
    assert_int_equal(tg_tape_size(t), before + 1);
    assert_ptr_equal(tg_node_input(m, 0), x);
    assert_ptr_equal(tg_tape_node(t, before), m);
    tg_node *f = tg_sum(tg_mul(m, m)); /* sum (x T)^2: d/dx = 2 x sum T^2 */
    *(double *)tg_value(x) = 3.0;
    assert_int_equal(tg_forward(t), TG_OK);
    assert_true(tg_value_scalar(f) == 9.0 * (0.25 + 4.0 + 16.0));
    assert_int_equal(tg_backward(f), TG_OK);
    assert_true(tg_grad_scalar(x) == 2 * 3.0 * (0.25 + 4.0 + 16.0));
    tg_tape_free(t);
}

/* A scalar used by two tensor ops with a compact record between them, and
 * by one 64-byte op as both of its inputs: the parts of its gradient must
 * be added in the 64-byte tape's order, each at its own position. (Summed
 * first in a copy of the scalar that the tensor ops shared, about half of
 * these points differed in the last bit.) */
static void test_shared_scalar_order(void **state) {
    (void)state;
    const int64_t s3[1] = {3};
    const double Tv[3] = {0.1, 0.2, 0.3};
    int differ_by_hand = 0;
    for (int it = 0; it < 300; it++) {
        double X = 0.1 + it * 0.00137, C = sin(it * 1.3), g[2], gl[2];
        for (int k = 0; k < 2; k++) {
            tg_tape *t = new_tape(!k);
            tg_node *T = tg_tensor(t, TG_F64, 1, s3, Tv), *x = tg_scalar(t, X);
            tg_node *a = tg_sin(x);
            tg_node *t1 = tg_sum(tg_mul(x, T));
            tg_node *c = tg_mul(x, tg_const(t, C)); /* a compact record between */
            tg_node *t2 = tg_sum(tg_mul(x, T));     /* the same scalar again */
            tg_node *d = tg_exp(x);
            tg_node *f = tg_add(tg_add(tg_add(a, t1), tg_add(c, t2)), d);
            assert_int_equal(tg_backward(f), TG_OK);
            g[k] = tg_grad_scalar(x);
            /* one 64-byte op with the scalar as both inputs, after others */
            tg_zero_grad(t);
            tg_node *l = tg_add(tg_mul(tg_call("leaky_relu", x, x), tg_sin(x)), tg_mul(x, d));
            assert_int_equal(tg_backward(l), TG_OK);
            gl[k] = tg_grad_scalar(x);
            assert_int_equal(tg_status(t), TG_OK);
            tg_tape_free(t);
        }
        if (!same_bits(g[0], g[1]) || !same_bits(gl[0], gl[1]))
            fail_msg("x = %.17g, c = %.17g: gradients %s / %s (compact) != %s / %s (classic)",
                     X, C, show(g[0]).s, show(gl[0]).s, show(g[1]).s, show(gl[1]).s);
        double want = cos(X) + 0.6 + C + 0.6 + exp(X); /* by hand */
        expect_near(g[0], want, 1e-15, "df/dx");
        differ_by_hand += !same_bits(g[0], want);
    }
    assert_true(differ_by_hand > 0); /* the order of the sum does matter here */
}

/* --------------------------------------------------------- higher order -- */

/* f(x, y, z) on both kinds of tape; the same ops in the same order. */
static tg_node *hf(tg_node *x, tg_node *y, tg_node *z) {
    tg_node *a = tg_sin(tg_mul(x, y));
    tg_node *b = tg_div(tg_exp(y), z);
    tg_node *c = tg_mul(tg_atan2(x, z), tg_hypot(y, z));
    tg_node *d = tg_mul(tg_pow(tg_tanh(x), 3), tg_maximum(y, z));
    return tg_add(tg_add(a, b), tg_sub(c, tg_mul(d, tg_sigmoid(tg_sub(x, z)))));
}

static void test_higher_order(void **state) {
    (void)state;
    const double P[3] = {0.7, -0.4, 1.3};
    tg_tape *t[2];
    tg_node *w[2][3], *f[2], *g[2][3], *hv[2][3], *jv[2];
    double H[2][9];
    for (int k = 0; k < 2; k++) {
        t[k] = new_tape(!k);
        for (int i = 0; i < 3; i++) w[k][i] = tg_scalar(t[k], P[i]);
        f[k] = hf(w[k][0], w[k][1], w[k][2]);
        assert_true(is_compact(f[k]) == !k);
        assert_int_equal(tg_grad(f[k], 3, w[k], g[k]), TG_OK);
        assert_int_equal(tg_hessian(f[k], 3, w[k], H[k]), TG_OK);
        tg_node *vv[3] = {tg_const(t[k], 1), tg_const(t[k], -2), tg_const(t[k], 0.5)};
        assert_int_equal(tg_hvp(f[k], 3, w[k], vv, hv[k]), TG_OK);
        assert_int_equal(tg_jvp(f[k], 3, w[k], vv, &jv[k]), TG_OK);
    }
    for (int i = 0; i < 3; i++) {
        expect_same_value(g[0][i], g[1][i], "tg_grad");
        expect_same_value(hv[0][i], hv[1][i], "tg_hvp");
    }
    expect_same_value(jv[0], jv[1], "tg_jvp");
    assert_memory_equal(H[0], H[1], sizeof H[0]);
    /* Independent: the gradient against finite differences of f, the
     * Hessian against finite differences of the tg_grad values (replay). */
    double fd[3][3], g0[3];
    for (int i = 0; i < 3; i++) g0[i] = tg_value_scalar(g[0][i]);
    for (int j = 0; j < 3; j++) {
        double *xj = tg_value(w[0][j]), x0 = *xj, h = 1e-6, fv[2], gv[2][3];
        for (int s = 0; s < 2; s++) {
            *xj = x0 + (s ? -h : h);
            assert_int_equal(tg_forward(t[0]), TG_OK);
            fv[s] = tg_value_scalar(f[0]);
            for (int i = 0; i < 3; i++) gv[s][i] = tg_value_scalar(g[0][i]);
        }
        *xj = x0;
        for (int i = 0; i < 3; i++) fd[i][j] = (gv[0][i] - gv[1][i]) / (2 * h);
        expect_near((fv[0] - fv[1]) / (2 * h), g0[j], 1e-7, "df against finite differences");
    }
    assert_int_equal(tg_forward(t[0]), TG_OK);
    for (int i = 0; i < 3; i++)
        for (int j = 0; j < 3; j++) expect_near(H[0][3 * i + j], fd[i][j], 1e-6, "Hessian vs FD");
    double hvh[3] = {0, 0, 0}; /* H v by the dense Hessian */
    for (int i = 0; i < 3; i++)
        for (int j = 0; j < 3; j++) hvh[i] += H[0][3 * i + j] * (double[]){1, -2, 0.5}[j];
    for (int i = 0; i < 3; i++) expect_near(tg_value_scalar(hv[0][i]), hvh[i], 1e-12, "hvp");
    /* Second order by tg_backward over a gradient node, third by tg_grad twice. */
    for (int k = 0; k < 2; k++) {
        tg_zero_grad(t[k]);
        assert_int_equal(tg_backward(g[k][1]), TG_OK);
    }
    for (int i = 0; i < 3; i++) {
        expect_same_grad(w[0][i], w[1][i], "Hessian row by tg_backward");
        expect_near(tg_grad_scalar(w[0][i]), H[0][3 + i], 1e-13, "row 1 vs tg_hessian");
    }
    tg_node *d2[2], *d3[2];
    for (int k = 0; k < 2; k++) {
        assert_int_equal(tg_grad(g[k][0], 1, &w[k][0], &d2[k]), TG_OK);
        assert_int_equal(tg_grad(d2[k], 1, &w[k][0], &d3[k]), TG_OK);
        tg_zero_grad(t[k]);
        assert_int_equal(tg_backward(d3[k]), TG_OK);
    }
    expect_same_value(d2[0], d2[1], "f_xx");
    expect_same_value(d3[0], d3[1], "f_xxx");
    for (int i = 0; i < 3; i++) expect_same_grad(w[0][i], w[1][i], "fourth order by backward");
    for (int k = 0; k < 2; k++) tg_tape_free(t[k]);
}

/* f(x, y) = x^2 y + sin(x): H = [[2y - sin x, 2x], [2x, 0]]; and the
 * Jacobian of (x y, sin x + z, e^(y z)) by both modes. */
static void test_hessian_jacobian(void **state) {
    (void)state;
    const double X = 0.8, Y = -1.1, Z = 0.4;
    double H[2][4], Jf[2][3 * 2], Jr[2][3 * 4];
    for (int k = 0; k < 2; k++) {
        tg_tape *t = new_tape(!k);
        tg_node *x = tg_scalar(t, X), *y = tg_scalar(t, Y), *z = tg_scalar(t, Z),
                *u = tg_scalar(t, 2);
        tg_node *f = tg_add(tg_mul(tg_mul(x, x), y), tg_sin(x));
        assert_int_equal(tg_hessian(f, 2, (tg_node *[]){x, y}, H[k]), TG_OK);
        const int64_t one[1] = {1};
        tg_node *out = tg_concat(3,
                                 (tg_node *[]){tg_reshape(tg_mul(x, y), 1, one),
                                               tg_reshape(tg_add(tg_sin(x), z), 1, one),
                                               tg_reshape(tg_exp(tg_mul(y, z)), 1, one)},
                                 0);
        /* N = 2 < M = 3: forward mode; N = 4 > M: reverse sweeps */
        assert_int_equal(tg_jacobian(out, 2, (tg_node *[]){x, y}, Jf[k]), TG_OK);
        assert_int_equal(tg_jacobian(out, 4, (tg_node *[]){x, y, z, u}, Jr[k]), TG_OK);
        assert_int_equal(tg_status(t), TG_OK);
        tg_tape_free(t);
    }
    assert_memory_equal(H[0], H[1], sizeof H[0]);
    assert_memory_equal(Jf[0], Jf[1], sizeof Jf[0]);
    assert_memory_equal(Jr[0], Jr[1], sizeof Jr[0]);
    const double Hw[4] = {2 * Y - sin(X), 2 * X, 2 * X, 0};
    for (int i = 0; i < 4; i++) expect_near(H[0][i], Hw[i], 1e-15, "Hessian by hand");
    const double e = exp(Y * Z);
    const double Jw[12] = {Y, X, 0, 0, cos(X), 0, 1, 0, 0, Z * e, Y * e, 0};
    for (int i = 0; i < 3; i++)
        for (int j = 0; j < 4; j++) {
            expect_near(Jr[0][4 * i + j], Jw[4 * i + j], 1e-15, "reverse Jacobian by hand");
            if (j < 2) expect_near(Jf[0][2 * i + j], Jw[4 * i + j], 1e-15, "forward Jacobian");
        }
}

/* --------------------------------------------------------------- memory -- */

static void test_million_ops_bytes(void **state) {
    (void)state;
    enum { N = 1000000 };
    const double X = 0.3, Hc = 0.9;
    double per[2], gx[2];
    for (int k = 0; k < 2; k++) {
        tg_tape *t = new_tape(!k);
        tg_node *x = tg_scalar(t, X), *h = tg_const(t, Hc), *s = x;
        for (int i = 0; i < N; i++) switch (i % 5) {
            case 0: s = tg_mul(s, h); break;
            case 1: s = tg_add(s, x); break;
            case 2: s = tg_sin(s); break;
            case 3: s = tg_sub(s, h); break;
            default: s = tg_tanh(s); break;
            }
        assert_int_equal(tg_status(t), TG_OK);
        assert_int_equal(tg_tape_size(t), N + 2);
        per[k] = (double)tg_tape_bytes(t) / (double)tg_tape_size(t);
        assert_int_equal(tg_backward(s), TG_OK);
        gx[k] = tg_grad_scalar(x);
        tg_tape_free(t);
    }
    if (per[0] > 24) fail_msg("compact: %.2f bytes per op (at most 24)", per[0]);
    if (per[1] < 64) fail_msg("classic: %.2f bytes per op (expected at least 64)", per[1]);
    assert_true(same_bits(gx[0], gx[1]));
    /* by hand, the adjoint of the chain */
    double *sv = malloc((size_t)N / 5 * sizeof *sv), s = X, g = 1, acc = 0;
    assert_non_null(sv);
    for (int i = 0; i < N / 5; i++) sv[i] = s, s = tanh(sin(s * Hc + X) - Hc);
    for (int i = N / 5 - 1; i >= 0; i--) {
        double u = sin(sv[i] * Hc + X), th = tanh(u - Hc);
        g *= (1 - th * th) * cos(sv[i] * Hc + X);
        acc += g;
        g *= Hc;
    }
    free(sv);
    expect_near(gx[0], acc + g, 1e-12, "d/dx of the million-op chain");
    print_message("1,000,000 ops: %.2f bytes per op compact, %.2f classic\n", per[0], per[1]);
}

/* ------------------------------------------------------------- numerics -- */

static void test_check_numerics(void **state) {
    (void)state;
    tg_tape *t = new_tape(1);
    tg_set_check_numerics(t, 1);
    tg_node *x = tg_scalar(t, -1);
    assert_false(is_compact(x)); /* numerics checking records 64-byte nodes */
    tg_log(x);
    expect_status(t, TG_ERR_NUMERIC, "log");
    expect_status(t, TG_ERR_NUMERIC, "NaN");

    /* compact records from before checking was turned on, a NaN after */
    tg_tape_reset(t);
    tg_set_check_numerics(t, 0);
    x = tg_scalar(t, -4);
    tg_node *a = tg_mul(x, x);
    assert_true(is_compact(a));
    tg_set_check_numerics(t, 1);
    tg_node *n = tg_neg(a);
    assert_int_equal(tg_status(t), TG_OK);
    tg_sqrt(n);
    expect_status(t, TG_ERR_NUMERIC, "sqrt");

    /* an infinite gradient in the sweep */
    tg_tape_reset(t);
    tg_set_check_numerics(t, 0);
    x = tg_scalar(t, 0);
    tg_node *x2 = tg_mul(x, tg_const(t, 1));
    tg_set_check_numerics(t, 1);
    tg_node *r = tg_sqrt(x2); /* sqrt(0) = 0, its derivative inf */
    assert_int_equal(tg_status(t), TG_OK);
    assert_int_equal(tg_backward(r), TG_ERR_NUMERIC);
    expect_status(t, TG_ERR_NUMERIC, "gradient");

    /* off again: compact records and no check */
    tg_tape_reset(t);
    tg_set_check_numerics(t, 0);
    x = tg_scalar(t, -1);
    tg_node *l = tg_log(x);
    assert_true(is_compact(l));
    assert_int_equal(tg_status(t), TG_OK);
    assert_true(isnan(tg_value_scalar(l)));
    tg_tape_free(t);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_op_table),
        cmocka_unit_test(test_hand_values),
        cmocka_unit_test(test_random_programs),
        cmocka_unit_test(test_program_finite_differences),
        cmocka_unit_test(test_deep_chain),
        cmocka_unit_test(test_leaves_after_sweeps),
        cmocka_unit_test(test_replay),
        cmocka_unit_test(test_stale_handles),
        cmocka_unit_test(test_other_tape),
        cmocka_unit_test(test_many_tapes),
        cmocka_unit_test(test_mixed_with_tensors),
        cmocka_unit_test(test_tensor_op_reads_scalar_in_place),
        cmocka_unit_test(test_shared_scalar_order),
        cmocka_unit_test(test_higher_order),
        cmocka_unit_test(test_hessian_jacobian),
        cmocka_unit_test(test_million_ops_bytes),
        cmocka_unit_test(test_check_numerics),
        cmocka_unit_test(test_handles_across_chunks),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
