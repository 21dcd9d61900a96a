/*
 * The expression language of `tapegrad grad/check` (src/cli/expr.c) and the
 * "did you mean" helper (src/engine/suggest.c, in the library), in-process: the
 * parser is compiled into this test.
 *
 * - The registry walk: every registered op, called by name with its arity
 *   through expr_build(), gives bit for bit the value and derivatives of the
 *   same op called through the C API (tg_call_n) at the same scalars; an op
 *   that refuses 0-d inputs (tests/op_points.h lists them, with the reason)
 *   gives the library's own message. Test ops of arity 1, 2 and 3 are
 *   registered first, and so are stand-ins for the comparison, maximum,
 *   minimum, where and clamp ops when the library does not have them yet
 *   (PyTorch's definitions, written here on scalars), so the walk and the
 *   operator tests cover the language's 3-argument calls and its spellings
 *   whichever ops the build has.
 * - Comparisons, max/min, where and clamp, constants, `**`, chains and the
 *   arity errors, against hand-derived values.
 * - tg__suggest_distance against hand-counted edit distances, and the
 *   threshold of tg__suggest_best.
 */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include <tapegrad.h>

#include "cli/expr.c"
#include "op_points.h"
#include "suggest.h"

/* ------------------------------------------------- test ops on scalars -- */

static int scalars_only(tg_node *out, char *why, size_t len) {
    for (int k = 0; k < tg_node_arity(out); k++) {
        tg_node *in = tg_node_input(out, k);
        if (tg_ndim(in) != 0 || tg_node_dtype(in) != TG_F64) {
            snprintf(why, len, "the test op takes float64 scalars");
            return TG_ERR_SHAPE;
        }
    }
    return TG_OK;
}

static double in_value(tg_args *a, int k) { return *(double *)a->in[k].value; }

/* Adds g into input k's gradient when it has one. */
static void add_grad(tg_args *a, int k, double g) {
    double *d = a->in[k].grad;
    if (d) *d += g;
}

static double out_grad(tg_args *a) { return *(double *)a->out.grad; }

static void set_out(tg_args *a, double v) { *(double *)a->out.value = v; }

/* Comparisons: 1 or 0, no gradient (C's operators: NaN compares false
 * except with !=). */
#define COMPARISON(name, OP)                                                                   \
    static void name##_fwd(tg_args *o) { set_out(o, in_value(o, 0) OP in_value(o, 1)); }
COMPARISON(lt, <)
COMPARISON(le, <=)
COMPARISON(gt, >)
COMPARISON(ge, >=)
COMPARISON(eq, ==)
COMPARISON(ne, !=)
static void no_grad(tg_args *o) { (void)o; }

/* maximum / minimum: NaN in gives NaN out; a tie splits the gradient. */
static void maximum_fwd(tg_args *o) {
    double a = in_value(o, 0), b = in_value(o, 1);
    set_out(o, isnan(a) || isnan(b) ? NAN : a > b ? a : b);
}
static void minimum_fwd(tg_args *o) {
    double a = in_value(o, 0), b = in_value(o, 1);
    set_out(o, isnan(a) || isnan(b) ? NAN : a < b ? a : b);
}
static void extremum_bwd(tg_args *o) {
    double a = in_value(o, 0), b = in_value(o, 1), v = *(double *)o->out.value, g = out_grad(o);
    double wa = a == b ? 0.5 : a == v, wb = a == b ? 0.5 : b == v;
    add_grad(o, 0, wa * g);
    add_grad(o, 1, wb * g);
}

/* where(c, a, b): a where c is nonzero; the gradient goes to the selected one. */
static void where_fwd(tg_args *o) { set_out(o, in_value(o, 0) != 0 ? in_value(o, 1) : in_value(o, 2)); }
static void where_bwd(tg_args *o) { add_grad(o, in_value(o, 0) != 0 ? 1 : 2, out_grad(o)); }

/* clamp(x, lo, hi) as PyTorch's with tensor bounds. */
static void clamp_fwd(tg_args *o) {
    double x = in_value(o, 0), lo = in_value(o, 1), hi = in_value(o, 2);
    set_out(o, x < lo ? lo : x > hi ? hi : x);
}
static void clamp_bwd(tg_args *o) {
    double x = in_value(o, 0), lo = in_value(o, 1), hi = in_value(o, 2);
    add_grad(o, x < lo ? 1 : x > hi ? 2 : 0, out_grad(o));
}

/* Test ops of each arity with unique names. */
static void cube_fwd(tg_args *o) { set_out(o, pow(in_value(o, 0), 3)); }
static void cube_bwd(tg_args *o) { add_grad(o, 0, 3 * pow(in_value(o, 0), 2) * out_grad(o)); }
static void hyp_fwd(tg_args *o) { set_out(o, in_value(o, 0) * in_value(o, 0) + in_value(o, 1)); }
static void hyp_bwd(tg_args *o) {
    add_grad(o, 0, 2 * in_value(o, 0) * out_grad(o));
    add_grad(o, 1, out_grad(o));
}
static void fma_fwd(tg_args *o) { set_out(o, in_value(o, 0) * in_value(o, 1) + in_value(o, 2)); }
static void fma_bwd(tg_args *o) {
    add_grad(o, 0, in_value(o, 1) * out_grad(o));
    add_grad(o, 1, in_value(o, 0) * out_grad(o));
    add_grad(o, 2, out_grad(o));
}

#define TEST_OP(NAME, ARITY, FWD, BWD)                                                     \
    {.name = NAME, .arity = ARITY, .shape = scalars_only, .forward = FWD, .backward = BWD}
static const tg_op stand_ins[] = {
    TEST_OP("lt", 2, lt_fwd, no_grad),
    TEST_OP("le", 2, le_fwd, no_grad),
    TEST_OP("gt", 2, gt_fwd, no_grad),
    TEST_OP("ge", 2, ge_fwd, no_grad),
    TEST_OP("eq", 2, eq_fwd, no_grad),
    TEST_OP("ne", 2, ne_fwd, no_grad),
    TEST_OP("maximum", 2, maximum_fwd, extremum_bwd),
    TEST_OP("minimum", 2, minimum_fwd, extremum_bwd),
    TEST_OP("where", 3, where_fwd, where_bwd),
    TEST_OP("clamp", 3, clamp_fwd, clamp_bwd),
    TEST_OP("test_cube", 1, cube_fwd, cube_bwd),
    TEST_OP("test_sqplus", 2, hyp_fwd, hyp_bwd),
    TEST_OP("test_fma", 3, fma_fwd, fma_bwd),
};

static int setup(void **state) {
    (void)state;
    for (size_t i = 0; i < sizeof stand_ins / sizeof *stand_ins; i++)
        if (!tg_op_find(stand_ins[i].name) && tg_op_register(&stand_ins[i]) != TG_OK) return -1;
    return 0;
}

/* ----------------------------------------------------------- building -- */

typedef struct built {
    int ok;
    double value, grad[3];
    expr_error err;
} built;

/* Builds src with x, y, z bound to v[0..3) (as many as given) and sweeps it. */
static built build(const char *src, int nv, const double *v) {
    static const char *const vars[] = {"x", "y", "z"};
    built b = {0};
    tg_tape *t = tg_tape_new();
    expr_env *env = expr_env_new();
    assert_non_null(t);
    assert_non_null(env);
    for (int k = 0; k < nv; k++) assert_int_equal(expr_env_bind(env, vars[k], 1, v[k]), 0);
    tg_node *f = expr_build(src, t, env, NULL, 0, &b.err);
    if (f && tg_backward(f) == TG_OK) {
        b.ok = 1;
        b.value = tg_value_scalar(f);
        /* Derivatives by variable name (x, y, z), 0 for an unused one. */
        for (int i = 0; i < expr_env_used(env); i++) {
            int k = expr_env_name(env, i)[0] - 'x';
            b.grad[k] = tg_grad_scalar(expr_env_node(env, i));
        }
    }
    expr_env_free(env);
    tg_tape_free(t);
    return b;
}

static int same(double a, double b) { return !memcmp(&a, &b, sizeof a); }

/* ------------------------------------------------------ registry walk -- */

static void test_registry_walk(void **state) {
    (void)state;
    int n = tg_op_count(), walked = 0, refused = 0, three = 0;
    for (int i = 0; i < n; i++) {
        const tg_op *op = tg_op_at(i);
        char src[96], msg[256];
        op_call_text(op, src, sizeof src);
        const char *reason = scalar_refusal_of(op->name);
        double pt[3], value, grad[3];
        if (reason) {
            op_point(0, pt);
            int rc = op_by_api(op, pt, &value, grad, msg);
            if (!rc) fail_msg("%s is listed as refusing scalars (%s) but accepts them", op->name, reason);
            built b = build(src, op->arity, pt);
            if (b.ok) fail_msg("'%s' built although the C API refuses it: %s", src, msg);
            assert_int_equal(b.err.code, rc);
            assert_string_equal(b.err.msg, msg);
            assert_int_equal(b.err.pos, 0); /* the call's name is underlined */
            assert_int_equal(b.err.len, strlen(op->name));
            refused++;
            continue;
        }
        int at = op_finite_point(op, pt);
        if (at < 0)
            fail_msg("op %s has no point among the candidates of tests/op_points.h where its "
                     "value and derivatives are finite: add it to the table there, with the "
                     "reason", op->name);
        assert_int_equal(op_by_api(op, pt, &value, grad, NULL), TG_OK);
        built b = build(src, op->arity, pt);
        if (!b.ok) fail_msg("'%s' at (%g, %g, %g): %s", src, pt[0], pt[1], pt[2], b.err.msg);
        if (!same(b.value, value))
            fail_msg("'%s': value %.17g, the C API gives %.17g", src, b.value, value);
        for (int k = 0; k < op->arity; k++)
            if (!same(b.grad[k], grad[k]))
                fail_msg("'%s': derivative %d is %.17g, the C API gives %.17g", src, k, b.grad[k],
                         grad[k]);
        walked++;
        three += op->arity == 3;
        /* One argument too many is refused with the arity (unless another
         * spelling takes that many). */
        char more[112], says[64];
        if (call_arities(op->name) >> (op->arity + 1) & 1) continue;
        snprintf(more, sizeof more, "%.*s, x)", (int)strlen(src) - 1, src);
        built m = build(more, op->arity, pt);
        assert_false(m.ok);
        snprintf(says, sizeof says, "takes %d argument", op->arity);
        if (!strstr(m.err.msg, says)) fail_msg("'%s': %s", more, m.err.msg);
    }
    print_message("registry walk: %d ops evaluated, %d refusing scalars as listed, of %d\n",
                  walked, refused, n);
    assert_int_equal(walked + refused, n);
    assert_true(three >= 3); /* where, clamp, test_fma at least */
}

/* ------------------------------------------------------------ operators -- */

static void test_comparisons(void **state) {
    (void)state;
    static const struct {
        const char *text, *op;
    } ops[] = {{"<", "lt"}, {"<=", "le"}, {">", "gt"}, {">=", "ge"}, {"==", "eq"}, {"!=", "ne"}};
    static const double points[][2] = {{1, 2}, {2, 1}, {1.5, 1.5}, {-0.0, 0.0}, {-3, -2.5}};
    for (size_t o = 0; o < sizeof ops / sizeof *ops; o++)
        for (size_t p = 0; p < sizeof points / sizeof *points; p++) {
            const double *v = points[p];
            char src[64], named[64];
            snprintf(src, sizeof src, "x %s y", ops[o].text);
            snprintf(named, sizeof named, "%s(x, y)", ops[o].op);
            built a = build(src, 2, v), b = build(named, 2, v);
            if (!a.ok || !b.ok) fail_msg("%s: %s %s", src, a.err.msg, b.err.msg);
            /* The oracle: C's operators. */
            double x = v[0], y = v[1];
            int truth = o == 0 ? x < y : o == 1 ? x <= y : o == 2 ? x > y : o == 3 ? x >= y
                      : o == 4 ? x == y : x != y;
            if (a.value != truth || !same(a.value, b.value))
                fail_msg("%s at (%g, %g) is %g, wanted %d", src, x, y, a.value, truth);
            assert_true(a.grad[0] == 0 && a.grad[1] == 0);
        }
    /* Comparisons bind looser than + and -, tighter than nothing else. */
    static const struct {
        const char *src;
        double x, y, value;
    } prec[] = {
        {"x + 1 > y * 2", 2, 1, 1},   /* 3 > 2 */
        {"x + 1 > y * 2", 0.5, 1, 0}, /* 1.5 > 2 */
        {"-x < y - 3", 1, 3, 1},      /* -1 < 0 */
        {"(x < y) + (y < x)", 1, 2, 1},
        {"(x<y)*(y<=3)", 1, 2, 1},
        {"x<-1", -2, 0, 1}, /* x < -1, not x <- 1 */
        {"2^x == 8", 3, 0, 1},
    };
    for (size_t i = 0; i < sizeof prec / sizeof *prec; i++) {
        double v[2] = {prec[i].x, prec[i].y};
        built b = build(prec[i].src, strchr(prec[i].src, 'y') ? 2 : 1, v);
        if (!b.ok || b.value != prec[i].value)
            fail_msg("'%s' at (%g, %g): %s %g, wanted %g", prec[i].src, v[0], v[1], b.err.msg,
                     b.value, prec[i].value);
    }
}

static void test_where_clamp_max_min(void **state) {
    (void)state;
    /* Hand-derived values and derivatives. */
    static const struct {
        const char *src;
        double v[3], value, grad[3];
    } cases[] = {
        {"where(x > 0, x, 0.1*x)", {2}, 2, {1}},
        {"where(x > 0, x, 0.1*x)", {-2}, -0.2, {0.1}},
        {"where(x >= y, x*y, x + y)", {3, 2}, 6, {2, 3}},
        {"where(x >= y, x*y, x + y)", {1, 2}, 3, {1, 1}},
        {"clamp(x, y, z)", {0.5, 0, 1}, 0.5, {1, 0, 0}},
        {"clamp(x, y, z)", {-1, 0, 1}, 0, {0, 1, 0}},
        {"clamp(x, y, z)", {7, 0, 1}, 1, {0, 0, 1}},
        {"clamp(2*x, -1, 1)", {0.25}, 0.5, {2}},
        {"max(x, y)", {1, 3}, 3, {0, 1}},
        {"max(x, y)", {4, 3}, 4, {1, 0}},
        {"max(x, y)", {3, 3}, 3, {0.5, 0.5}}, /* a tie splits the gradient */
        {"min(x, y)", {1, 3}, 1, {1, 0}},
        {"min(x*x, y) + max(x, 2)", {3, 5}, 8, {1, 1}},
        {"maximum(x, y) - minimum(x, y)", {1, 3}, 2, {-1, 1}},
        /* argmax over its arguments: the first at a tie, derivative 0 */
        {"argmax(x, y, z)", {1, 3, 3}, 1, {0, 0, 0}},
        {"argmax(x, y, z)", {5, 3, 4}, 0, {0, 0, 0}},
        {"argmax(x, y, z)", {0, -1, 2}, 2, {0, 0, 0}},
        {"argmax(x, y)", {2, 2}, 0, {0, 0}},
        {"argmax(x, y)*x + y", {1, 3}, 4, {1, 1}},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        int nv = strchr(cases[i].src, 'z') ? 3 : strchr(cases[i].src, 'y') ? 2 : 1;
        built b = build(cases[i].src, nv, cases[i].v);
        if (!b.ok) fail_msg("'%s': %s", cases[i].src, b.err.msg);
        if (fabs(b.value - cases[i].value) > 1e-15)
            fail_msg("'%s': %.17g, wanted %.17g", cases[i].src, b.value, cases[i].value);
        for (int k = 0; k < nv; k++)
            if (fabs(b.grad[k] - cases[i].grad[k]) > 1e-15)
                fail_msg("'%s': derivative %d is %.17g, wanted %.17g", cases[i].src, k,
                         b.grad[k], cases[i].grad[k]);
    }
}

static void test_constants(void **state) {
    (void)state;
    double x = 0.5;
    built b = build("pi", 0, NULL);
    assert_true(b.ok && same(b.value, acos(-1.0)));
    b = build("e", 0, NULL);
    assert_true(b.ok && same(b.value, exp(1.0)));
    b = build("-pi + 2*pi*x", 1, &x); /* pi: no gradient of its own */
    assert_true(b.ok && same(b.value, 0.0) && same(b.grad[0], 2 * acos(-1.0)));
    b = build("e^x", 1, &x);
    assert_true(b.ok && fabs(b.value - exp(0.5)) < 1e-15);
    expr_env *env = expr_env_new();
    assert_int_equal(expr_env_bind(env, "e", 1, 1), -3);
    assert_int_equal(expr_env_bind(env, "pi", 2, 1), -3);
    assert_int_equal(expr_env_bind(env, "pie", 3, 1), 0);
    assert_int_equal(expr_env_bind(env, "ex", 1, 1), -3); /* "e": the length counts */
    expr_env_free(env);
    int n;
    const expr_name *table = expr_names(&n);
    int constants = 0;
    for (int i = 0; i < n; i++) constants += table[i].nargs == 0;
    assert_int_equal(constants, 2);
}

/* Errors: the message and the span. */
static void test_errors(void **state) {
    (void)state;
    static const struct {
        const char *src;
        int code;
        size_t pos, len;
        const char *says;
    } cases[] = {
        {"x**2", EXPR_SYNTAX, 1, 2, "'**' is not an operator: write x^y"},
        {"x * *2", EXPR_SYNTAX, 4, 1, "an operand is missing before '*'"},
        {"x < y < z", EXPR_SYNTAX, 6, 1, "comparisons do not chain"},
        {"x == y != z", EXPR_SYNTAX, 7, 2, "comparisons do not chain"},
        {"x = y", EXPR_SYNTAX, 2, 1, "write == to compare"},
        {"x <= ", EXPR_SYNTAX, 5, 0, "ends where an operand is expected"},
        {"<= x", EXPR_SYNTAX, 0, 2, "an operand is missing before '<='"},
        {"pi(x)", EXPR_SYNTAX, 0, 2, "'pi' is a constant, not a function"},
        {"where(x, y)", EXPR_SYNTAX, 0, 5, "'where' takes 3 arguments, given 2"},
        {"test_fma(x, y, z, x)", EXPR_SYNTAX, 0, 8, "'test_fma' takes 3 arguments, given 4"},
        {"max(x, y, z)", EXPR_SYNTAX, 0, 3, "'max' takes"},
        {"max", EXPR_SYNTAX, 0, 3, "'max' is a function"},
        {"sigmod(x)", EXPR_UNKNOWN_FUNC, 0, 6, "unknown function 'sigmod'"},
    };
    double v[3] = {1, 2, 3};
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        built b = build(cases[i].src, 3, v);
        if (b.ok) fail_msg("'%s' built", cases[i].src);
        if (b.err.code != cases[i].code || b.err.pos != cases[i].pos ||
            b.err.len != cases[i].len || !strstr(b.err.msg, cases[i].says))
            fail_msg("'%s': code %d at %zu+%zu '%s'; wanted %d at %zu+%zu '%s'", cases[i].src,
                     b.err.code, b.err.pos, b.err.len, b.err.msg, cases[i].code, cases[i].pos,
                     cases[i].len, cases[i].says);
    }
    /* max's arities: the spelling's 2, and 1 too when the registry has a
     * one-argument op called max (the reduction of issue 11, which by name
     * reduces along axis 0, so a scalar gets the library's axis error). */
    built b = build("max(x)", 1, v);
    const tg_op *max = tg_op_find("max");
    if (max && max->arity == 1)
        assert_non_null(strstr(b.err.msg, "max: axis 0 is out of range for []"));
    else
        assert_string_equal(b.err.msg, "'max' takes 2 arguments, given 1");
}

/* The symbols grad.c uses to describe a failed operation. */
static void test_operator_symbols(void **state) {
    (void)state;
    static const char *const pairs[][2] = {{"add", "+"}, {"sub", "-"}, {"mul", "*"},
                                           {"div", "/"}, {"pow", "^"}, {"lt", "<"},
                                           {"le", "<="}, {"gt", ">"}, {"ge", ">="},
                                           {"eq", "=="}, {"ne", "!="}};
    for (size_t i = 0; i < sizeof pairs / sizeof *pairs; i++)
        assert_string_equal(expr_operator_symbol(pairs[i][0]), pairs[i][1]);
    assert_null(expr_operator_symbol("sin"));
    assert_null(expr_operator_symbol("neg"));
}

/* ------------------------------------------------------------- suggest -- */

static void test_suggest(void **state) {
    (void)state;
    /* Edit distances counted by hand. */
    static const struct {
        const char *a, *b;
        int d;
    } dist[] = {
        {"", "", 0},          {"abc", "", 3},        {"", "ab", 2},
        {"sigmoid", "sigmoid", 0}, {"sigmod", "sigmoid", 1}, {"sgimoid", "sigmoid", 1},
        {"SIN", "sin", 0},    {"kitten", "sitting", 3}, {"ca", "abc", 3},
        {"trian", "train", 1}, {"tahn", "tanh", 1},  {"flaw", "lawn", 2},
    };
    for (size_t i = 0; i < sizeof dist / sizeof *dist; i++)
        if (tg__suggest_distance(dist[i].a, dist[i].b) != dist[i].d)
            fail_msg("distance('%s', '%s') = %d, wanted %d", dist[i].a, dist[i].b,
                     tg__suggest_distance(dist[i].a, dist[i].b), dist[i].d);
    char longer[TG_SUGGEST_MAX_LEN + 2];
    memset(longer, 'a', sizeof longer - 1);
    longer[sizeof longer - 1] = '\0';
    assert_int_equal(tg__suggest_distance(longer, "a"), -1);

    static const char *const known[] = {"grad", "check", "train", "eval", "predict",
                                        "sigmoid", "sin", "sinh", "relu", "exp", "expm1"};
    const struct {
        const char *word, *best; /* NULL: no suggestion */
    } cases[] = {
        {"trian", "train"}, {"chekc", "check"}, {"sigmod", "sigmoid"}, {"Sigmoid", "sigmoid"},
        {"rleu", "relu"},   {"sinhh", "sinh"},   {"foo", NULL},         {"x", NULL},
        {"ex", "exp"},      {"predcit", "predict"}, {"gard", "grad"},   {"evil", "eval"},
        {"exmp1", "expm1"}, {"sigma", NULL},     {"", NULL},            {longer, NULL},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        tg__suggest s;
        tg__suggest_init(&s, cases[i].word);
        for (size_t k = 0; k < sizeof known / sizeof *known; k++) tg__suggest_consider(&s, known[k]);
        const char *got = tg__suggest_best(&s);
        if (cases[i].best ? !got || strcmp(got, cases[i].best) : got != NULL)
            fail_msg("'%.20s': suggested %s, wanted %s", cases[i].word, got ? got : "nothing",
                     cases[i].best ? cases[i].best : "nothing");
    }
    /* Equally close: the first considered wins. */
    tg__suggest s;
    tg__suggest_init(&s, "sinx");
    tg__suggest_consider(&s, "sinh");
    tg__suggest_consider(&s, "sin");
    assert_string_equal(tg__suggest_best(&s), "sinh");
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_registry_walk),  cmocka_unit_test(test_comparisons),
        cmocka_unit_test(test_where_clamp_max_min), cmocka_unit_test(test_constants),
        cmocka_unit_test(test_errors),         cmocka_unit_test(test_operator_symbols),
        cmocka_unit_test(test_suggest),
    };
    return cmocka_run_group_tests(tests, setup, NULL);
}
