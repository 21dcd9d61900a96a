/*
 * The tapegrad program's grad, hess and check commands, run as a user would
 * (the path comes from TG_CLI): the circuit example; --json parsed by a
 * strict JSON reader and compared bit for bit with the library computing the
 * same expressions; hess and check --order 2 against hand-derived second
 * derivatives, and hess against tg_hessian for every registered op; operator precedence; more than 25 malformed inputs, each exit
 * status 2 with one message on stderr and nothing on stdout (run this test in
 * a -DTG_SANITIZE=ON build to have each of them checked by ASan and LSan:
 * any report, leaks included, fails it);
 * check's PASS/FAIL; the help texts; and the DOT picture, which must render
 * with Graphviz's dot -Tpng. When dot is missing every other check still
 * runs and the test exits 77 (skipped) saying so.
 */
#define _POSIX_C_SOURCE 200809L

#include <fcntl.h>
#include <math.h>
#include <setjmp.h>
#include <spawn.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include <tapegrad.h>

#include "json_reader.h"
#include "op_points.h"

extern char **environ;

static const char *cli;   /* the program under test */
static int dot_missing;   /* graphviz's dot is not on PATH */
static char tmpdir[] = "/tmp/tg_test_cli_XXXXXX";

/* ------------------------------------------------------- running it -- */

typedef struct result {
    int code;     /* exit status, or -1 when killed by a signal */
    int signal;   /* the signal, or 0 */
    char *out, *err;
} result;

static char *slurp(const char *path) {
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    size_t cap = 4096, len = 0;
    char *buf = malloc(cap);
    assert_non_null(buf);
    size_t got;
    while ((got = fread(buf + len, 1, cap - len - 1, f)) > 0) {
        len += got;
        if (cap - len < 2) {
            buf = realloc(buf, cap *= 2);
            assert_non_null(buf);
        }
    }
    fclose(f);
    buf[len] = '\0';
    return buf;
}

/* Runs argv[0] (searched on PATH when search) with stdin from in_path (or
 * /dev/null), capturing stdout and stderr. */
static result spawn(char *const *argv, int search, const char *in_path) {
    char out_path[64], err_path[64];
    snprintf(out_path, sizeof out_path, "%s/stdout", tmpdir);
    snprintf(err_path, sizeof err_path, "%s/stderr", tmpdir);
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, 0, in_path ? in_path : "/dev/null", O_RDONLY, 0);
    posix_spawn_file_actions_addopen(&fa, 1, out_path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    posix_spawn_file_actions_addopen(&fa, 2, err_path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    pid_t pid;
    int rc = search ? posix_spawnp(&pid, argv[0], &fa, NULL, argv, environ)
                    : posix_spawn(&pid, argv[0], &fa, NULL, argv, environ);
    posix_spawn_file_actions_destroy(&fa);
    if (rc) fail_msg("cannot run %s", argv[0]);
    int status;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    result r = {WIFEXITED(status) ? WEXITSTATUS(status) : -1,
                WIFSIGNALED(status) ? WTERMSIG(status) : 0, slurp(out_path), slurp(err_path)};
    return r;
}

/* Runs the program with up to 15 arguments, NULL-terminated. */
static result run(const char *first, ...) {
    char *argv[17] = {(char *)cli};
    int n = 1;
    va_list ap;
    va_start(ap, first);
    for (const char *a = first; a && n < 16; a = va_arg(ap, const char *)) argv[n++] = (char *)a;
    va_end(ap);
    argv[n] = NULL;
    return spawn(argv, 0, NULL);
}

static void done(result *r) {
    free(r->out);
    free(r->err);
}

/* No sanitizer may have said anything, whatever the exit status. */
static void assert_clean(const result *r, const char *what) {
    if (r->signal) fail_msg("%s: killed by signal %d\nstderr: %s", what, r->signal, r->err);
    if (strstr(r->err, "Sanitizer") || strstr(r->err, "runtime error"))
        fail_msg("%s: sanitizer report:\n%s", what, r->err);
}

/* ----------------------------------------------------- the circuit -- */

static void test_circuit(void **state) {
    (void)state;
    result r = run("grad", "(x+y)*z", "x=-2", "y=5", "z=-4", NULL);
    assert_clean(&r, "circuit");
    assert_int_equal(r.code, 0);
    assert_string_equal(r.out, "f = -12\ndf/dx = -4\ndf/dy = -4\ndf/dz = 3\n");
    assert_string_equal(r.err, "");
    done(&r);
}

/* Variables are listed in order of first appearance; precedence and
 * associativity follow the grammar of docs/cli.md. */
static void test_order_and_precedence(void **state) {
    (void)state;
    static const struct {
        const char *expr, *bind[3], *out;
    } cases[] = {
        {"z*(y+x)", {"x=1", "y=2", "z=3"}, "f = 9\ndf/dz = 3\ndf/dy = 3\ndf/dx = 3\n"},
        {"-x^2", {"x=3"}, "f = -9\ndf/dx = -6\n"},
        {"2^3^2", {NULL}, "f = 512\n"},
        {"-2^2", {NULL}, "f = -4\n"},
        {"2^-1", {NULL}, "f = 0.5\n"},
        {"x - -3", {"x=1"}, "f = 4\ndf/dx = 1\n"},
        {"x-1-1", {"x=5"}, "f = 3\ndf/dx = 1\n"},
        {"8/x/2", {"x=2"}, "f = 2\ndf/dx = -1\n"},
        {" 1e-3 * x + .5 ", {"x=2"}, "f = 0.502\ndf/dx = 0.001\n"},
        {"x*x*x", {"x=3"}, "f = 27\ndf/dx = 27\n"},
        {"0.1+x", {"x=0.2"}, "f = 0.30000000000000004\ndf/dx = 1\n"},
        {"pow(x, 3) + neg(x)", {"x=2"}, "f = 6\ndf/dx = 11\n"},
        {"+x", {"x=-2.5"}, "f = -2.5\ndf/dx = 1\n"},
        {"relu(x) + abs(y)", {"x=0", "y=0"}, "f = 0\ndf/dx = 0\ndf/dy = 0\n"},
        {"x*1000", {"x=1"}, "f = 1000\ndf/dx = 1000\n"},
        {"0e5 + 4.9e-324*x", {"x=1e-320"}, "f = 0\ndf/dx = 5e-324\n"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        result r = run("grad", cases[i].expr, cases[i].bind[0], cases[i].bind[1],
                       cases[i].bind[2], NULL);
        assert_clean(&r, cases[i].expr);
        if (r.code != 0 || strcmp(r.out, cases[i].out))
            fail_msg("grad '%s': exit %d\nstdout:\n%s\nwanted:\n%s\nstderr:\n%s", cases[i].expr,
                     r.code, r.out, cases[i].out, r.err);
        done(&r);
    }
}

/* ---------------------------------------------------------------- JSON -- */

/* A number of the output: a JSON number printed as %.17g (17 significant
 * digits, which read back exactly). */
static int is_exact_number(const jv *v) {
    char again[64];
    if (!v || v->type != JV_NUM) return 0;
    snprintf(again, sizeof again, "%.17g", v->num);
    return !strcmp(again, v->text);
}

/* Whether the object v has exactly the keys given, in that order. */
static int has_keys(const jv *v, int n, const char *const *keys) {
    if (!v || v->type != JV_OBJ || v->n != n) return 0;
    for (int k = 0; k < n; k++)
        if (strcmp(v->keys[k], keys[k])) return 0;
    return 1;
}

#define MAX_VARS 8
typedef struct parsed {
    double value;
    int n;
    char name[MAX_VARS][32];
    double grad[MAX_VARS];
} parsed;

/* Reads exactly one line holding {"value": N, "grad": {"name": N, ...}}. */
static int parse_output(const char *s, parsed *p) {
    static const char *const keys[] = {"value", "grad"};
    const char *nl = strchr(s, '\n');
    jv v = {0};
    if (!nl || nl[1] || !jv_parse(s, &v)) return 0;
    const jv *g = jv_get(&v, "grad");
    int ok = has_keys(&v, 2, keys) && is_exact_number(&v.item[0]) && g->type == JV_OBJ &&
             g->n <= MAX_VARS;
    p->value = ok ? v.item[0].num : 0;
    p->n = ok ? g->n : 0;
    for (int k = 0; ok && k < g->n; k++) {
        ok = is_exact_number(&g->item[k]) && strlen(g->keys[k]) < sizeof p->name[0];
        if (ok) snprintf(p->name[k], sizeof p->name[k], "%s", g->keys[k]);
        p->grad[k] = g->item[k].num;
    }
    jv_free(&v);
    return ok;
}

/* The same expressions written with the library's C API: the oracle. Each
 * takes the variables in order of first appearance. */
typedef tg_node *(*oracle_fn)(tg_tape *t, tg_node **v);

static tg_node *o_circuit(tg_tape *t, tg_node **v) {
    (void)t;
    return tg_mul(tg_add(v[0], v[1]), v[2]);
}
/* sin(x)*exp(y)/(1+x^2) */
static tg_node *o_trig(tg_tape *t, tg_node **v) {
    return tg_div(tg_mul(tg_sin(v[0]), tg_exp(v[1])),
                  tg_add(tg_const(t, 1), tg_call("pow", v[0], tg_const(t, 2))));
}
/* sigmoid(a*b - c) + tanh(a)^3 */
static tg_node *o_sigmoid(tg_tape *t, tg_node **v) {
    return tg_add(tg_sigmoid(tg_sub(tg_mul(v[0], v[1]), v[2])),
                  tg_call("pow", tg_tanh(v[0]), tg_const(t, 3)));
}
/* log(x)*sqrt(y) - abs(z)*relu(w) */
static tg_node *o_logs(tg_tape *t, tg_node **v) {
    (void)t;
    return tg_sub(tg_mul(tg_log(v[0]), tg_sqrt(v[1])), tg_mul(tg_abs(v[2]), tg_relu(v[3])));
}
/* -x^2 + 0.1*y/3 */
static tg_node *o_neg_pow(tg_tape *t, tg_node **v) {
    return tg_add(tg_neg(tg_call("pow", v[0], tg_const(t, 2))),
                  tg_div(tg_mul(tg_const(t, 0.1), v[1]), tg_const(t, 3)));
}
/* cos(x)*cos(x) + sin(x)*sin(x) */
static tg_node *o_fanout(tg_tape *t, tg_node **v) {
    (void)t;
    return tg_add(tg_mul(tg_cos(v[0]), tg_cos(v[0])), tg_mul(tg_sin(v[0]), tg_sin(v[0])));
}
/* x/y/z - x^y */
static tg_node *o_assoc(tg_tape *t, tg_node **v) {
    (void)t;
    return tg_sub(tg_div(tg_div(v[0], v[1]), v[2]), tg_call("pow", v[0], v[1]));
}
/* exp(-2.5*x) * (1e-3 + y) */
static tg_node *o_literals(tg_tape *t, tg_node **v) {
    return tg_mul(tg_exp(tg_mul(tg_const(t, -2.5), v[0])), tg_add(tg_const(t, 1e-3), v[1]));
}

static void test_json_matches_library(void **state) {
    (void)state;
    static const struct {
        const char *expr;
        int n;
        const char *names[4];
        double values[4];
        oracle_fn oracle;
    } cases[] = {
        {"(x+y)*z", 3, {"x", "y", "z"}, {-2, 5, -4}, o_circuit},
        {"sin(x)*exp(y)/(1+x^2)", 2, {"x", "y"}, {0.7, -1.3}, o_trig},
        {"sigmoid(a*b - c) + tanh(a)^3", 3, {"a", "b", "c"}, {0.1, 2.5, -0.3}, o_sigmoid},
        {"log(x)*sqrt(y) - abs(z)*relu(w)", 4, {"x", "y", "z", "w"}, {2.5, 0.3, -1.7, 0.9},
         o_logs},
        {"-x^2 + 0.1*y/3", 2, {"x", "y"}, {1.1, 7}, o_neg_pow},
        {"cos(x)*cos(x) + sin(x)*sin(x)", 1, {"x"}, {1e-3}, o_fanout},
        {"x/y/z - x^y", 3, {"x", "y", "z"}, {1.5, 0.25, -3}, o_assoc},
        {"exp(-2.5*x) * (1e-3 + y)", 2, {"x", "y"}, {0.123456789, 1e-7}, o_literals},
    };
    for (size_t c = 0; c < sizeof cases / sizeof *cases; c++) {
        /* The bindings, printed so that they read back exactly. */
        char bind[4][64];
        const char *arg[4] = {NULL, NULL, NULL, NULL};
        for (int i = 0; i < cases[c].n; i++) {
            snprintf(bind[i], sizeof bind[i], "%s=%.17g", cases[c].names[i], cases[c].values[i]);
            arg[i] = bind[i];
        }
        result r = run("grad", "--json", cases[c].expr, arg[0], arg[1], arg[2], arg[3], NULL);
        assert_clean(&r, cases[c].expr);
        if (r.code) fail_msg("grad --json '%s': exit %d: %s", cases[c].expr, r.code, r.err);
        parsed p;
        if (!parse_output(r.out, &p))
            fail_msg("grad --json '%s': not the documented JSON object: '%s'", cases[c].expr,
                     r.out);
        assert_string_equal(r.err, "");

        tg_tape *t = tg_tape_new();
        tg_node *v[4];
        for (int i = 0; i < cases[c].n; i++) v[i] = tg_scalar(t, cases[c].values[i]);
        tg_node *f = cases[c].oracle(t, v);
        assert_int_equal(tg_backward(f), TG_OK);
        double value = tg_value_scalar(f);
        if (memcmp(&value, &p.value, sizeof value))
            fail_msg("'%s': value %.17g, the library says %.17g", cases[c].expr, p.value, value);
        assert_int_equal(p.n, cases[c].n);
        for (int i = 0; i < cases[c].n; i++) {
            assert_string_equal(p.name[i], cases[c].names[i]); /* first appearance */
            double g = tg_grad_scalar(v[i]);
            if (memcmp(&g, &p.grad[i], sizeof g))
                fail_msg("'%s': df/d%s %.17g, the library says %.17g", cases[c].expr,
                         p.name[i], p.grad[i], g);
        }
        tg_tape_free(t);
        done(&r);
    }
}

/* Python's json module as a second, general-purpose reader of the output. */
static const char python[] = "/usr/bin/python3";

static int have_python(void) {
    if (!access(python, X_OK)) return 1;
    print_message("%s not found: only the built-in JSON reader was used\n", python);
    return 0;
}

/* Runs script under Python with the file at path on its stdin; it must exit 0. */
static void python_reads(const char *path, const char *script) {
    char *argv[] = {(char *)python, "-c", (char *)script, NULL};
    result py = spawn(argv, 0, path);
    if (py.code) fail_msg("python3's json disagrees:\n%s\n%s", slurp(path), py.err);
    done(&py);
}

/* A new file of the temporary directory, path the name there, for the
 * lines Python is to read. */
static FILE *lines_file(char *path, size_t len, const char *name) {
    snprintf(path, len, "%s/%s", tmpdir, name);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    return f;
}

/* Appends the JSON line of run r, which must exit with code, to f: its
 * stdout, or when it fails its stderr (its stdout empty). */
static void keep_line(FILE *f, result r, int code) {
    assert_int_equal(r.code, code);
    if (code) assert_string_equal(r.out, "");
    fputs(code ? r.err : r.out, f);
    done(&r);
}

/* A general-purpose JSON parser (Python's) agrees on the three kinds of
 * output: grad --json, check --json and an error object whose message holds
 * bytes that are not UTF-8 (written as U+FFFD), field by field. */
static void test_json_python(void **state) {
    (void)state;
    if (!have_python()) return;
    char path[64];
    FILE *f = lines_file(path, sizeof path, "json");
    keep_line(f, run("grad", "--json", "x*y + 1e-300*x", "x=0.1", "y=3e200", NULL), 0);
    keep_line(f, run("check", "--json", "--allow-unused", "sin(x)*y", "x=0.5", "y=2", "w=1", NULL),
              0);
    keep_line(f, run("grad", "--json", "x", "x=1", "--bogus\xff\xce", NULL), 2);
    keep_line(f, run("grad", "--json", "x + \"y\"", "x=1", NULL), 2);
    fclose(f);
    python_reads(path,
                 "import json, math, sys\n"
                 "g, c, e, q = [json.loads(l) for l in sys.stdin.read().splitlines()]\n"
                 "assert list(g) == ['value', 'grad'], g\n"
                 "assert list(g['grad']) == ['x', 'y'], g\n"
                 "assert g['value'] == 0.1 * 3e200 + 1e-300 * 0.1, g\n"
                 "assert g['grad']['y'] == 0.1, g\n"
                 "assert list(c) == ['value', 'passed', 'failed', 'eps', 'atol', 'rtol',\n"
                 "                   'grad', 'unused'], c\n"
                 "assert c['value'] == math.sin(0.5) * 2 and c['passed'] is True, c\n"
                 "assert c['failed'] == 0 and c['unused'] == ['w'], c\n"
                 "assert (c['eps'], c['atol'], c['rtol']) == (1e-6, 1e-5, 1e-3), c\n"
                 "want = {'x': math.cos(0.5) * 2, 'y': math.sin(0.5)}\n"
                 "assert list(c['grad']) == ['x', 'y'], c\n"
                 "for k, d in c['grad'].items():\n"
                 "    assert list(d) == ['analytic', 'numeric', 'abs_error', 'ok', 'kink'], d\n"
                 "    assert math.isclose(d['analytic'], want[k], rel_tol=1e-15), d\n"
                 "    assert abs(d['numeric'] - want[k]) <= 1e-8, d\n"
                 "    assert d['abs_error'] == abs(d['analytic'] - d['numeric']), d\n"
                 "    assert d['ok'] is True and d['kink'] is False, d\n"
                 "assert list(e) == ['error'], e\n"
                 "assert e['error'].startswith(\"unknown option '--bogus\\ufffd\\ufffd'\"), e\n"
                 "assert list(q) == ['error', 'column'] and q['column'] == 5, q\n"
                 "assert q['error'].startswith(\"syntax error: unexpected '\\\"'\"), q\n");
}

/* ------------------------------------------------------ registry walk -- */

/* Every op of the registry called by name through the program: grad --json
 * at a point where the C API gives finite numbers must print, bit for bit,
 * the value and derivatives of tg_call_n at the same scalars; an op that
 * refuses 0-d inputs (tests/op_points.h) must give the library's message as
 * the JSON error, at column 1. An op the expression language cannot call
 * fails here. (test_expr.c walks the registry in-process too, with test ops
 * of arity 3.) */
static void test_registry_walk(void **state) {
    (void)state;
    static const char *const vars[] = {"x", "y", "z"};
    int n = tg_op_count(), walked = 0;
    for (int i = 0; i < n; i++) {
        const tg_op *op = tg_op_at(i);
        char src[96], msg[256], bind[3][64];
        const char *arg[3] = {NULL, NULL, NULL};
        double pt[3], value, grad[3];
        op_call_text(op, src, sizeof src);
        const char *reason = scalar_refusal_of(op->name);
        if (reason)
            op_point(0, pt);
        else if (op_finite_point(op, pt) < 0)
            fail_msg("op %s has no finite point among the candidates of tests/op_points.h: "
                     "add it to the table there, with the reason", op->name);
        for (int k = 0; k < op->arity; k++) {
            snprintf(bind[k], sizeof bind[k], "%s=%.17g", vars[k], pt[k]);
            arg[k] = bind[k];
        }
        int rc = op_by_api(op, pt, &value, grad, msg);
        result r = run("grad", "--json", src, arg[0], arg[1], arg[2], NULL);
        assert_clean(&r, src);
        jv v = {0};
        if (reason) {
            static const char *const keys[] = {"error", "column"};
            char want[320];
            snprintf(want, sizeof want, "%s (the variables here are scalars)", msg);
            if (!rc) fail_msg("%s is listed as refusing scalars (%s) but accepts them", op->name,
                              reason);
            if (r.code != 2 || *r.out || !jv_parse(r.err, &v))
                fail_msg("'%s': exit %d, stdout '%s', stderr '%s'", src, r.code, r.out, r.err);
            if (!has_keys(&v, 2, keys) || strcmp(v.item[0].text, want) || v.item[1].num != 1)
                fail_msg("'%s': %s, wanted the error '%s' at column 1", src, r.err, want);
            jv_free(&v);
        } else {
            parsed p;
            assert_int_equal(rc, TG_OK);
            if (r.code || !parse_output(r.out, &p))
                fail_msg("'%s' at (%s %s %s): exit %d\n%s%s", src, bind[0], arg[1] ? bind[1] : "",
                         arg[2] ? bind[2] : "", r.code, r.out, r.err);
            if (memcmp(&p.value, &value, sizeof value))
                fail_msg("'%s': value %.17g, the C API gives %.17g", src, p.value, value);
            assert_int_equal(p.n, op->arity);
            for (int k = 0; k < op->arity; k++) {
                assert_string_equal(p.name[k], vars[k]);
                if (memcmp(&p.grad[k], &grad[k], sizeof grad[k]))
                    fail_msg("'%s': df/d%s %.17g, the C API gives %.17g", src, vars[k],
                             p.grad[k], grad[k]);
            }
            walked++;
        }
        done(&r);
    }
    print_message("%d of %d registered ops evaluated through the program\n", walked, n);
}

/* ------------------------------------------------------- JSON errors -- */

/* A command that must fail: the command, then its arguments (--json is
 * added), the message, and its column in the expression (0: none). */
typedef struct error_case {
    const char *argv[6];
    const char *error;
    int column;
} error_case;

/* Runs each case with and without --json: exit status 2, nothing on
 * stdout; the text form "tapegrad CMD: MESSAGE" on stderr, followed by
 * exactly the expression and the caret when there is a column, by nothing
 * otherwise; the JSON form one line, the object {"error": MESSAGE,
 * "column": N} with the column only when there is one. */
static void check_errors(const error_case *cases, size_t n) {
    static const char *const with_column[] = {"error", "column"}, *const without[] = {"error"};
    for (size_t i = 0; i < n; i++) {
        for (int json = 0; json < 2; json++) {
            char *argv[10] = {(char *)cli, (char *)cases[i].argv[0]};
            int k = 2;
            if (json) argv[k++] = "--json";
            for (int a = 1; a < 6 && cases[i].argv[a]; a++) argv[k++] = (char *)cases[i].argv[a];
            argv[k] = NULL;
            result r = spawn(argv, 0, NULL);
            const char *what = cases[i].argv[1] ? cases[i].argv[1] : cases[i].argv[0];
            assert_clean(&r, what);
            if (r.code != 2 || *r.out)
                fail_msg("'%s': exit %d, stdout '%s'", what, r.code, r.out);
            int col = cases[i].column;
            if (!json) {
                char first[512];
                snprintf(first, sizeof first, "tapegrad %s: %s\n", cases[i].argv[0],
                         cases[i].error);
                if (strncmp(r.err, first, strlen(first)))
                    fail_msg("'%s': stderr\n%s\nwanted it to start with\n%s", what, r.err, first);
                int lines = 0;
                for (const char *c = r.err; *c; c++) lines += *c == '\n';
                if (lines != (col ? 3 : 1)) fail_msg("'%s': %d lines:\n%s", what, lines, r.err);
                done(&r);
                continue;
            }
            jv v = {0};
            const char *nl = strchr(r.err, '\n');
            if (!nl || nl[1] || !jv_parse(r.err, &v))
                fail_msg("'%s': not one line of JSON on stderr: '%s'", what, r.err);
            if (!has_keys(&v, col ? 2 : 1, col ? with_column : without))
                fail_msg("'%s': keys of %s", what, r.err);
            if (strcmp(v.item[0].text, cases[i].error))
                fail_msg("'%s': error '%s', wanted '%s'", what, v.item[0].text, cases[i].error);
            if (col && !(is_exact_number(&v.item[1]) && v.item[1].num == col))
                fail_msg("'%s': column %s, wanted %d", what, v.item[1].text, col);
            jv_free(&v);
            done(&r);
        }
    }
}

/* With --json every error is one line on stderr, the object
 * {"error": MESSAGE, "column": N} (column only for errors with a place in
 * the expression), the same message as the text form's; exit status 2. */
static void test_error_json(void **state) {
    (void)state;
    static const error_case cases[] = {
        {{"grad", "sin(x) + foo(y)", "x=1", "y=2"},
         "unknown function 'foo' (tapegrad grad --help lists them)", 10},
        {{"grad", "sigmod(x)", "x=1"}, "unknown function 'sigmod' (did you mean sigmoid?)", 1},
        {{"check", "2*sigmoidd(x)", "x=1"}, "unknown function 'sigmoidd' (did you mean sigmoid?)", 3},
        {{"grad", "x**2", "x=1"}, "syntax error: '**' is not an operator: write x^y for a power", 2},
        {{"grad", "log(x)", "x=-1"}, "domain error: log(-1) is NaN (outside the domain of log)", 1},
        {{"grad", "1 + 1/x", "x=0"}, "domain error: 1 / 0 is inf (division by zero)", 6},
        {{"grad", "x + \xce\xbb", "x=1"}, "syntax error: unexpected '\xce\xbb': expected a number, "
                                          "a variable, a function call or '('", 5},
        {{"grad", "\xce\xbb\xce\xbb + y)", "y=1"}, "syntax error: unexpected '\xce\xbb': "
                                                   "expected a number, a variable, a function "
                                                   "call or '('", 1},
        {{"grad", "(x", "x=1"}, "syntax error: missing ')' to close the '(' at column 1", 3},
        {{"check", "sqrt(x)", "x=0"}, "not differentiable here: the derivative of sqrt(0) is "
                                      "inf, so df/dx is inf", 1},
        {{"grad", "PI*x", "x=1"}, "unbound variable 'PI': give its value as PI=NUMBER (or did "
                                  "you mean pi?)", 1},
        {{"grad", "x*Y", "x=1", "y=2"}, "unbound variable 'Y': give its value as Y=NUMBER (or "
                                        "did you mean y?)", 3},
        {{"grad", "rate*x", "x=1", "rates=2"}, "unbound variable 'rate': give its value as "
                                               "rate=NUMBER (or did you mean rates?)", 1},
        {{"grad", "x", "x=1", "w=2"}, "variable 'w' is given but the expression does not use it "
                                      "(--allow-unused allows it)", 0},
        {{"grad", "x", "x=abc"}, "bad number for variable 'x': 'abc'", 0},
        {{"check", "--eps", "0", "x", "x=1"}, "--eps must be positive, got 0", 0},
        {{"grad", "x", "e=1"}, "'e' is a constant (2.718281828459045) and cannot be bound: name "
                               "the variable otherwise", 0},
        {{"grad"}, "missing expression (see tapegrad grad --help)", 0},
        {{"check", "\"quoted\"\\"}, "syntax error: unexpected '\"': expected a number, a "
                                    "variable, a function call or '('", 1},
    };
    check_errors(cases, sizeof cases / sizeof *cases);
}

/* ----------------------------------------------------------- check --json -- */

typedef struct check_out {
    jv v;
    const jv *grad, *unused;
} check_out;

/* Runs check --json and reads its object, checking its keys and their order. */
static check_out check_json(int status, const char *a, const char *b, const char *c,
                            const char *d, const char *e) {
    static const char *const keys[] = {"value", "passed", "failed", "eps",
                                       "atol",  "rtol",   "grad",   "unused"};
    static const char *const entry[] = {"analytic", "numeric", "abs_error", "ok", "kink"};
    result r = run("check", "--json", a, b, c, d, e, NULL);
    assert_clean(&r, a);
    if (r.code != status) fail_msg("check --json %s: exit %d: %s", a, r.code, r.err);
    check_out o = {0};
    const char *nl = strchr(r.out, '\n');
    if (!nl || nl[1] || !jv_parse(r.out, &o.v) || !has_keys(&o.v, 8, keys))
        fail_msg("check --json %s: not the documented object: '%s'", a, r.out);
    assert_string_equal(r.err, "");
    o.grad = jv_get(&o.v, "grad");
    o.unused = jv_get(&o.v, "unused");
    assert_int_equal(o.grad->type, JV_OBJ);
    assert_int_equal(o.unused->type, JV_ARR);
    for (int k = 0; k < o.grad->n; k++)
        if (!has_keys(&o.grad->item[k], 5, entry)) fail_msg("check --json %s: %s", a, r.out);
    done(&r);
    return o;
}

static double num(const jv *v, const char *key) {
    const jv *x = jv_get(v, key);
    if (!x || (x->type != JV_NUM && x->type != JV_BOOL)) fail_msg("%s is not a number", key);
    if (x->type == JV_NUM && !is_exact_number(x)) fail_msg("%s: %s is not %%.17g", key, x->text);
    return x->num;
}

static void test_check_json(void **state) {
    (void)state;
    tg_gradcheck_opts def = tg_gradcheck_defaults();
    double x = 0.5, y = 2, h = def.eps;
    /* sin(x)*y: value and analytic derivatives from the library, numeric
     * ones from the central difference written out here. */
    check_out o = check_json(0, "sin(x)*y", "x=0.5", "y=2", NULL, NULL);
    tg_tape *t = tg_tape_new();
    tg_node *vx = tg_scalar(t, x), *vy = tg_scalar(t, y), *f = tg_mul(tg_sin(vx), vy);
    assert_int_equal(tg_backward(f), TG_OK);
    assert_true(num(&o.v, "value") == tg_value_scalar(f));
    assert_int_equal(jv_get(&o.v, "passed")->type, JV_BOOL);
    assert_true(num(&o.v, "passed") == 1 && num(&o.v, "failed") == 0);
    assert_true(num(&o.v, "eps") == def.eps && num(&o.v, "atol") == def.atol &&
                num(&o.v, "rtol") == def.rtol);
    assert_int_equal(o.grad->n, 2);
    assert_string_equal(o.grad->keys[0], "x");
    assert_string_equal(o.grad->keys[1], "y");
    double analytic[2] = {tg_grad_scalar(vx), tg_grad_scalar(vy)};
    double numeric[2] = {(sin(x + h) * y - sin(x - h) * y) / (2 * h),
                         (sin(x) * (y + h) - sin(x) * (y - h)) / (2 * h)};
    for (int k = 0; k < 2; k++) {
        const jv *e = &o.grad->item[k];
        double a = num(e, "analytic"), n = num(e, "numeric");
        assert_true(a == analytic[k]);
        if (fabs(n - numeric[k]) > 1e-9) fail_msg("numeric %.17g, wanted %.17g", n, numeric[k]);
        assert_true(num(e, "abs_error") == fabs(a - n));
        assert_true(num(e, "ok") == 1 && num(e, "kink") == 0);
    }
    assert_int_equal(o.unused->n, 0);
    tg_tape_free(t);
    jv_free(&o.v);

    /* A step too large for exp: numeric sinh(h)/h at 0; the check fails. */
    o = check_json(1, "--eps", "0.5", "exp(x)", "x=0", NULL);
    const jv *e = &o.grad->item[0];
    assert_true(num(&o.v, "passed") == 0 && num(&o.v, "failed") == 1 && num(&o.v, "eps") == 0.5);
    assert_true(num(e, "analytic") == 1 && fabs(num(e, "numeric") - sinh(0.5) / 0.5) < 1e-15);
    assert_true(num(e, "ok") == 0);
    jv_free(&o.v);

    /* A kink: ok, and said so. */
    o = check_json(0, "relu(x)*y", "x=0", "y=2", NULL, NULL);
    assert_true(num(&o.grad->item[0], "kink") == 1 && num(&o.grad->item[0], "ok") == 1);
    assert_true(num(&o.grad->item[1], "kink") == 0);
    jv_free(&o.v);

    /* A numeric derivative that does not exist is null, as is its error. */
    o = check_json(1, "sqrt(x)", "x=1e-7", NULL, NULL, NULL);
    e = &o.grad->item[0];
    assert_int_equal(jv_get(e, "numeric")->type, JV_NULL);
    assert_int_equal(jv_get(e, "abs_error")->type, JV_NULL);
    assert_true(num(e, "ok") == 0 && num(&o.v, "passed") == 0);
    jv_free(&o.v);

    /* --allow-unused: w is listed as unused, not checked. */
    o = check_json(0, "--allow-unused", "x*y", "w=3", "x=1", "y=2");
    assert_int_equal(o.grad->n, 2);
    assert_int_equal(o.unused->n, 1);
    assert_string_equal(o.unused->item[0].text, "w");
    jv_free(&o.v);
}

/* ------------------------------------------------- the language's extras -- */

static void test_allow_unused_and_constants(void **state) {
    (void)state;
    static const struct {
        const char *argv[6], *out;
    } cases[] = {
        /* Unused bindings are listed last, in binding order, with derivative 0. */
        {{"grad", "--allow-unused", "x*y", "w=3", "y=2", "x=5"}, "f = 10\ndf/dx = 2\ndf/dy = 5\ndf/dw = 0\n"},
        {{"grad", "x*y", "x=5", "--allow-unused", "y=2"}, "f = 10\ndf/dx = 2\ndf/dy = 5\n"},
        {{"grad", "--json", "--allow-unused", "2*x", "x=1", "v=7"}, "{\"value\": 2, \"grad\": {\"x\": 2, \"v\": 0}}\n"},
        {{"grad", "--allow-unused", "3", "v=7"}, "f = 3\ndf/dv = 0\n"},
        /* The doubles nearest to pi and e; constants have no derivative. */
        {{"grad", "pi"}, "f = 3.141592653589793\n"},
        {{"grad", "e"}, "f = 2.718281828459045\n"},
        {{"grad", "2*pi*r", "r=0.5"}, "f = 3.141592653589793\ndf/dr = 6.283185307179586\n"},
        {{"grad", "log(e^x)", "x=2"}, "f = 2\ndf/dx = 1\n"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        const char *const *a = cases[i].argv;
        result r = run(a[0], a[1], a[2], a[3], a[4], a[5], NULL);
        assert_clean(&r, a[1]);
        if (r.code || strcmp(r.out, cases[i].out))
            fail_msg("%s %s: exit %d\n%s\nwanted\n%s\n%s", a[0], a[1], r.code, r.out,
                     cases[i].out, r.err);
        done(&r);
    }
    /* The oracle for the constants: libm. */
    char want[64];
    result r = run("grad", "--json", "pi + 0*e", NULL);
    snprintf(want, sizeof want, "{\"value\": %.17g, \"grad\": {}}\n", acos(-1.0));
    assert_string_equal(r.out, want);
    done(&r);
    r = run("grad", "--json", "e", NULL);
    snprintf(want, sizeof want, "{\"value\": %.17g, \"grad\": {}}\n", exp(1.0));
    assert_string_equal(r.out, want);
    done(&r);
}

/* ---------------------------------------------------- malformed input -- */

#define DEEP 300
static char deep_parens[2 * DEEP + 2], deep_minus[1002], long_name[300];

static void test_malformed(void **state) {
    (void)state;
    memset(deep_parens, '(', DEEP);
    deep_parens[DEEP] = 'x';
    memset(deep_parens + DEEP + 1, ')', DEEP);
    memset(deep_minus, '-', 1000);
    deep_minus[1000] = 'x';
    memset(long_name, 'q', sizeof long_name - 1);
    char dot_bad[96];
    snprintf(dot_bad, sizeof dot_bad, "%s/no/such/dir/f.dot", tmpdir);
    /* argv (after the program name), a piece of the expected message, and
     * whether a caret line is expected. */
    static const struct {
        const char *argv[7];
        const char *says;
        int caret;
    } table[] = {
        {{"grad"}, "missing expression", 0},
        {{"grad", ""}, "the expression is empty", 1},
        {{"grad", "   "}, "the expression is empty", 1},
        {{"grad", "(x+y", "x=1", "y=2"}, "missing ')' to close the '(' at column 1", 1},
        {{"grad", "x+*y", "x=1", "y=1"}, "an operand is missing before '*'", 1},
        {{"grad", "x y", "x=1", "y=1"}, "expected an operator (+ - * / ^) before 'y'", 1},
        {{"grad", "2x", "x=1"}, "write 2*x", 1},
        {{"grad", "x)", "x=1"}, "unmatched ')'", 1},
        {{"grad", "x,y", "x=1", "y=1"}, "unexpected ','", 1},
        {{"grad", "foo(x)", "x=1"}, "unknown function 'foo'", 1},
        {{"grad", "x*y", "x=1"}, "unbound variable 'y'", 1},
        {{"grad", "x", "x=abc"}, "bad number for variable 'x': 'abc'", 0},
        {{"grad", "x", "x=1.5.2"}, "bad number for variable 'x'", 0},
        {{"grad", "x", "x=nan"}, "bad number for variable 'x'", 0},
        {{"grad", "x", "x=inf"}, "bad number for variable 'x'", 0},
        {{"grad", "x", "x=1e"}, "exponent", 0},
        {{"grad", "x", "x="}, "missing value for variable 'x'", 0},
        {{"grad", "x", "x"}, "missing value for variable 'x'", 0},
        {{"grad", "x", "x=1", "x=2"}, "variable 'x' is given twice", 0},
        {{"grad", "x", "x=1", "w=2"}, "variable 'w' is given but the expression does not use it", 0},
        {{"grad", "x", "1x=2"}, "bad variable name '1x'", 0},
        {{"grad", "x", "=2"}, "missing variable name", 0},
        {{"grad", "x=1"}, "the expression comes first", 0},
        {{"grad", "log(x)", "x=-1"}, "domain error: log(-1) is NaN", 1},
        {{"grad", "1/x", "x=0"}, "1 / 0 is inf (division by zero)", 1},
        {{"grad", "0/x", "x=0"}, "0 / 0 is NaN", 1},
        {{"grad", "exp(x)", "x=1000"}, "exp(1000) is inf (overflow)", 1},
        {{"grad", "x^0.5", "x=-8"}, "(-8) ^ 0.5 is NaN", 1},
        {{"grad", "sqrt(x)", "x=0"}, "the derivative of sqrt(0) is inf", 1},
        {{"grad", "x^y", "x=-2", "y=2"}, "with respect to the exponent is NaN", 1},
        {{"grad", "exp(x, x)", "x=1"}, "'exp' takes 1 argument, given 2", 1},
        {{"grad", "exp()"}, "'exp' takes 1 argument, given 0", 1},
        {{"grad", "pow(x)", "x=2"}, "'pow' takes 2 arguments, given 1", 1},
        {{"grad", "exp(x", "x=1"}, "missing ')' to close the call of 'exp'", 1},
        {{"grad", "exp"}, "'exp' is a function: call it as exp(...)", 1},
        {{"grad", "x $ 1", "x=1"}, "unexpected '$'", 1},
        {{"grad", "x \xce\xbb", "x=1"}, "unexpected '\xce\xbb'", 1},
        {{"grad", "x\x01", "x=1"}, "byte 0x01", 1},
        {{"grad", "1e"}, "the exponent of the number has no digits", 1},
        {{"grad", "."}, "a number needs at least one digit", 1},
        {{"grad", "1e999"}, "too large for a double", 1},
        {{"grad", "x", "x=1e999"}, "out of range", 0},
        {{"grad", "x", "x=1e-999"}, "out of range", 0},
        {{"grad", "1e-400*x", "x=1"}, "too small for a double", 1},
        {{"grad", "sum(x)", "x=1"}, "sum: axis 0 is out of range for []", 1},
        {{"grad", "softmax(x)", "x=1"}, "softmax: axis 0 is out of range for []", 1},
        {{"grad", "matmul(x, x)", "x=1"}, "both operands must be 2-D", 1},
        {{"grad", "--bogus", "x", "x=1"}, "unknown option '--bogus'", 0},
        {{"grad", "x", "x=1", "--dot"}, "option --dot needs a value", 0},
        {{"grad", "--dot=", "x", "x=1"}, "option --dot needs a file name", 0},
        {{"grad", "--json=1", "x", "x=1"}, "unknown option", 0},
        {{"check", "x"}, "unbound variable 'x'", 1},
        {{"check", "2+3"}, "nothing to check", 0},
        {{"check", "--eps", "0", "x", "x=1"}, "--eps must be positive", 0},
        {{"check", "--atol", "abc", "x", "x=1"}, "bad number for --atol: 'abc'", 0},
        {{"check", "--rtol=-1", "x", "x=1"}, "--rtol must be 0 or more", 0},
        {{"check", "--json=1", "x", "x=1"}, "unknown option '--json=1'", 0},
        {{"grad", "x**2", "x=1"}, "'**' is not an operator: write x^y for a power", 1},
        {{"grad", "sigmod(x)", "x=1"}, "unknown function 'sigmod' (did you mean sigmoid?)", 1},
        {{"grad", "tahn(x)", "x=1"}, "(did you mean tanh?)", 1},
        {{"grad", "PI*x", "x=1"}, "unbound variable 'PI': give its value as PI=NUMBER (or did "
                                  "you mean pi?)", 1},
        {{"grad", "x*Y", "x=1", "y=2"}, "unbound variable 'Y': give its value as Y=NUMBER (or "
                                        "did you mean y?)", 3},
        {{"grad", "rate*x", "x=1", "rates=2"}, "unbound variable 'rate': give its value as "
                                               "rate=NUMBER (or did you mean rates?)", 1},
        {{"grad", "x", "x=1", "e=2"}, "'e' is a constant (2.718281828459045) and cannot be bound", 0},
        {{"grad", "pi(x)", "x=1"}, "'pi' is a constant, not a function", 1},
        {{"grad", "x = 1", "x=1"}, "'=' is not an operator: write == to compare", 1},
        {{"grad", "exp(x, x, x, x)", "x=1"}, "'exp' takes 1 argument, given 4", 1},
        {{"grad", "x", "x=1", "y=2"}, "(--allow-unused allows it)", 0},
        {{"check", "--allow-unused", "2+3", "x=1"}, "nothing to check", 0},
        {{"check", "log(x)", "x=-1"}, "log(-1) is NaN", 1},
        {{"nonsense"}, "unknown command", 0},
    };
    size_t n = sizeof table / sizeof *table;
    assert_true(n >= 25);
    for (size_t i = 0; i < n + 5; i++) {
        char *argv[9] = {(char *)cli};
        int k = 1;
        const char *says;
        int caret;
        if (i < n) {
            for (int a = 0; a < 7 && table[i].argv[a]; a++) argv[k++] = (char *)table[i].argv[a];
            says = table[i].says;
            caret = table[i].caret;
        } else {
            /* Cases built at run time: deep parentheses, deep unary minus, a
             * long name, an unwritable --dot file, a long unused binding. */
            static char longbind[400];
            snprintf(longbind, sizeof longbind, "%s=1", long_name);
            argv[k++] = "grad";
            switch (i - n) {
            case 0: argv[k++] = deep_parens, argv[k++] = "x=1"; says = "nested too deeply"; break;
            case 1: argv[k++] = "--", argv[k++] = deep_minus, argv[k++] = "x=1";
                    says = "nested too deeply"; break;
            case 2: argv[k++] = long_name; says = "unbound variable 'qqqq"; break;
            case 3: argv[k++] = "--dot", argv[k++] = dot_bad, argv[k++] = "x", argv[k++] = "x=1";
                    says = "cannot write"; break;
            default: argv[k++] = "x", argv[k++] = "x=1", argv[k++] = longbind;
                     says = "is given but the expression does not use it"; break;
            }
            caret = i - n < 3;
        }
        argv[k] = NULL;
        result r = spawn(argv, 0, NULL);
        char what[128];
        snprintf(what, sizeof what, "case %zu (%.40s %.40s)", i, argv[1] ? argv[1] : "",
                 argv[2] ? argv[2] : "");
        assert_clean(&r, what);
        if (r.code != 2) fail_msg("%s: exit status %d, wanted 2\nstderr: %s", what, r.code, r.err);
        if (*r.out) fail_msg("%s: printed on stdout: %s", what, r.out);
        if (!strstr(r.err, says)) fail_msg("%s: stderr lacks '%s':\n%s", what, says, r.err);
        /* One message line, plus the expression and the caret. */
        int lines = 0;
        for (const char *c = r.err; *c; c++) lines += *c == '\n';
        const char *hat = strstr(r.err, "\n  ");
        if (caret && !(lines == 3 && hat && strchr(hat + 1, '^')))
            fail_msg("%s: wanted a message, the expression and a caret:\n%s", what, r.err);
        if (!caret && lines != 1 && strcmp(argv[1], "nonsense"))
            fail_msg("%s: wanted one line:\n%s", what, r.err);
        done(&r);
    }
}

/* The caret sits under the offending column. */
static void test_caret_position(void **state) {
    (void)state;
    result r = run("grad", "sin(x) + foo(y)", "x=1", "y=2", NULL);
    assert_int_equal(r.code, 2);
    assert_string_equal(r.err, "tapegrad grad: unknown function 'foo' (tapegrad grad --help "
                               "lists them)\n  sin(x) + foo(y)\n           ^~~\n");
    done(&r);
    r = run("grad", "(x + y", "x=1", "y=2", NULL);
    assert_string_equal(r.err, "tapegrad grad: syntax error: missing ')' to close the '(' at "
                               "column 1\n  (x + y\n        ^\n");
    done(&r);
}

/* ---------------------------------------------------------------- check -- */

static void test_check(void **state) {
    (void)state;
    result r = run("check", "(x+y)*z", "x=-2", "y=5", "z=-4", NULL);
    assert_clean(&r, "check circuit");
    assert_int_equal(r.code, 0);
    assert_non_null(strstr(r.out, "f = -12\n"));
    assert_non_null(strstr(r.out, "df/dx     -4 "));
    assert_non_null(strstr(r.out, "df/dz     3 "));
    assert_non_null(strstr(r.out, "PASS: 3 partial derivatives agree"));
    done(&r);

    /* A step far too large for exp's curvature: the check fails, exit 1. */
    r = run("check", "--eps", "0.5", "exp(x)", "x=0", NULL);
    assert_clean(&r, "check eps 0.5");
    assert_int_equal(r.code, 1);
    assert_non_null(strstr(r.out, "1.0421906109874948"));
    assert_non_null(strstr(r.out, "FAIL: 1 of 1 partial derivative disagrees"));
    done(&r);

    /* A numeric derivative that does not exist (sqrt just right of 0). */
    r = run("check", "sqrt(x)", "x=1e-7", NULL);
    assert_int_equal(r.code, 1);
    assert_non_null(strstr(r.out, "not defined within eps"));
    done(&r);

    /* A kink is reported and judged by the one-sided slopes: PASS. */
    r = run("check", "relu(x)*y", "x=0", "y=2", NULL);
    assert_clean(&r, "check kink");
    assert_int_equal(r.code, 0);
    /* The kink's entry comes apart, after the others, with its one-sided
     * slopes (0 and y = 2, by hand) instead of the central difference. */
    static const char kink_head[] = "at a kink (the one-sided slopes differ, so the central "
                                    "difference means nothing there; any derivative between "
                                    "the slopes passes):\n";
    const char *apart = strstr(r.out, kink_head);
    if (!apart || strstr(r.out, "df/dx") != apart + strlen(kink_head) ||
        strstr(r.out, "df/dy") > apart ||
        !strstr(apart, "slopes 0 (left), 2 (right)  ") ||
        !strstr(r.out, "PASS: 2 partial derivatives agree"))
        fail_msg("check relu(x)*y at x = 0:\n%s", r.out);
    done(&r);
    /* At order 2 too: relu(x)*x's df/dx = 2 relu(x) has slopes 0 and 2 at
     * x = 0, where its central difference is 1: not printed. */
    r = run("check", "--order", "2", "relu(x)*x + x*y", "x=0", "y=2", NULL);
    assert_clean(&r, "check --order 2 kink");
    assert_int_equal(r.code, 0);
    apart = strstr(r.out, kink_head);
    if (!apart || strstr(r.out, "d2f/dx^2") != apart + strlen(kink_head) ||
        strstr(r.out, "d2f/dx dy") > apart || !strstr(apart, "slopes 0 (left), 2.000000000") ||
        !strstr(r.out, "PASS: 4 second derivatives agree"))
        fail_msg("check --order 2 relu(x)*x + x*y at x = 0:\n%s", r.out);
    done(&r);

    /* Tolerances and the step are options. */
    r = run("check", "--eps=1e-4", "--atol", "1e-9", "--rtol=1e-9", "x^3", "x=1.5", NULL);
    assert_int_equal(r.code, 1); /* truncation error 1e-8 > 1e-9 + 1e-9 * 6.75 */
    done(&r);
    r = run("check", "--eps=1e-4", "--atol", "1e-9", "--rtol=1e-6", "x^3", "x=1.5", NULL);
    assert_int_equal(r.code, 0);
    done(&r);
}

/* ------------------------------------------------------------ hess -- */

/* hess --json, read: {"value": V, "grad": {...}, "hessian": {a: {b: ...}}}
 * with the same variables, in the same order, in grad, in hessian and in
 * each of its rows, every number printed %.17g. */
typedef struct hess_out {
    parsed p;             /* value and grad */
    double h[MAX_VARS][MAX_VARS];
} hess_out;

static int parse_hess(const char *s, hess_out *o) {
    static const char *const keys[] = {"value", "grad", "hessian"};
    const char *nl = strchr(s, '\n');
    jv v = {0};
    if (!nl || nl[1] || !jv_parse(s, &v)) return 0;
    const jv *g = jv_get(&v, "grad"), *h = jv_get(&v, "hessian");
    int ok = has_keys(&v, 3, keys) && is_exact_number(&v.item[0]) && g->type == JV_OBJ &&
             g->n <= MAX_VARS && h->type == JV_OBJ && h->n == g->n;
    o->p.value = ok ? v.item[0].num : 0;
    o->p.n = ok ? g->n : 0;
    for (int i = 0; ok && i < g->n; i++) {
        ok = is_exact_number(&g->item[i]) && strlen(g->keys[i]) < sizeof o->p.name[0] &&
             !strcmp(h->keys[i], g->keys[i]) && has_keys(&h->item[i], g->n, (const char *const *)g->keys);
        if (ok) snprintf(o->p.name[i], sizeof o->p.name[i], "%s", g->keys[i]);
        o->p.grad[i] = g->item[i].num;
        for (int j = 0; ok && j < g->n; j++) {
            ok = is_exact_number(&h->item[i].item[j]);
            o->h[i][j] = h->item[i].item[j].num;
        }
    }
    jv_free(&v);
    return ok;
}

/* Hand-derived value, gradient and Hessian of the cases below, at v. */
static void hand_poly_trig(const double *v, double *f, double *g, double *h) {
    double x = v[0], y = v[1]; /* x^3*y + sin(x)*y^2 */
    *f = x * x * x * y + sin(x) * y * y;
    g[0] = 3 * x * x * y + cos(x) * y * y, g[1] = x * x * x + 2 * y * sin(x);
    h[0] = 6 * x * y - sin(x) * y * y, h[1] = h[2] = 3 * x * x + 2 * y * cos(x);
    h[3] = 2 * sin(x);
}
static void hand_exp_xy(const double *v, double *f, double *g, double *h) {
    double x = v[0], y = v[1], e = exp(x * y); /* exp(x*y) */
    *f = e;
    g[0] = y * e, g[1] = x * e;
    h[0] = y * y * e, h[1] = h[2] = (1 + x * y) * e, h[3] = x * x * e;
}
static void hand_three(const double *v, double *f, double *g, double *h) {
    double x = v[0], y = v[1], z = v[2]; /* x*y*z + log(x)/z, 3 x 3 */
    *f = x * y * z + log(x) / z;
    g[0] = y * z + 1 / (x * z), g[1] = x * z, g[2] = x * y - log(x) / (z * z);
    double hh[9] = {-1 / (x * x * z), z, y - 1 / (x * z * z),
                    z, 0, x,
                    y - 1 / (x * z * z), x, 2 * log(x) / (z * z * z)};
    memcpy(h, hh, sizeof hh);
}
static void hand_sigmoid(const double *v, double *f, double *g, double *h) {
    double s = 1 / (1 + exp(-v[0])); /* sigmoid(x): s' = s(1-s), s'' = s(1-s)(1-2s) */
    *f = s, g[0] = s * (1 - s), h[0] = s * (1 - s) * (1 - 2 * s);
}
static void hand_order(const double *v, double *f, double *g, double *h) {
    double z = v[0], y = v[1], x = v[2]; /* z*(y+x)^2: variables z, y, x */
    *f = z * (y + x) * (y + x);
    g[0] = (y + x) * (y + x), g[1] = g[2] = 2 * z * (y + x);
    double hh[9] = {0, 2 * (y + x), 2 * (y + x), 2 * (y + x), 2 * z, 2 * z, 2 * (y + x), 2 * z, 2 * z};
    memcpy(h, hh, sizeof hh);
}

typedef void (*hand_fn)(const double *v, double *f, double *g, double *h);
static const struct hess_case {
    const char *expr;
    int n;
    const char *names[3]; /* in order of first appearance */
    double values[3];
    hand_fn hand;
} hess_cases[] = {
    {"x^3*y + sin(x)*y^2", 2, {"x", "y"}, {0.7, -1.3}, hand_poly_trig},
    {"exp(x*y)", 2, {"x", "y"}, {0.3, 1.7}, hand_exp_xy},
    {"x*y*z + log(x)/z", 3, {"x", "y", "z"}, {1.8, -0.6, 2.5}, hand_three},
    {"sigmoid(x)", 1, {"x"}, {0.4}, hand_sigmoid},
    {"z*(y+x)^2", 3, {"z", "y", "x"}, {1.5, 0.25, -2}, hand_order},
};

/* Agreement with a hand-derived formula: rounding differs, so 1e-13 relative
 * (or absolute near 0). */
static void assert_close(const char *what, double got, double want) {
    if (!(fabs(got - want) <= 1e-13 * (1 + fabs(want))))
        fail_msg("%s: %.17g, the hand-derived formula gives %.17g", what, got, want);
}

/* Bindings "NAME=%.17g" of a case, given in reverse order of appearance so
 * that the output's order can only come from the expression. */
static void hess_bindings(const struct hess_case *c, char bind[3][64], const char *arg[3]) {
    for (int i = 0; i < 3; i++) arg[i] = NULL;
    for (int i = 0; i < c->n; i++) {
        snprintf(bind[i], sizeof bind[i], "%s=%.17g", c->names[i], c->values[i]);
        arg[c->n - 1 - i] = bind[i];
    }
}

/* hess --sparse: the dense output unchanged, then the sparse driver's
 * lower triangle, each entry the hand-derived one, every nonzero of the
 * hand-derived Hessian among them. */
static void test_hess_sparse(void **state) {
    (void)state;
    for (size_t c = 0; c < sizeof hess_cases / sizeof *hess_cases; c++) {
        const struct hess_case *k = &hess_cases[c];
        char bind[3][64];
        const char *arg[3];
        hess_bindings(k, bind, arg);
        result r = run("hess", "--sparse", k->expr, arg[0], arg[1], arg[2], NULL);
        result d = run("hess", k->expr, arg[0], arg[1], arg[2], NULL);
        assert_clean(&r, k->expr);
        assert_int_equal(r.code, 0);
        assert_string_equal(r.err, "");
        size_t len = strlen(d.out);
        if (strncmp(r.out, d.out, len))
            fail_msg("hess --sparse '%s' does not begin as hess:\n%s", k->expr, r.out);
        long nnz = -1;
        int colors = -1, seen[3][3] = {{0}}, lines = 0;
        const char *at = r.out + len;
        if (sscanf(at, "sparse hessian: %ld nonzeros in %d colours\n", &nnz, &colors) != 2)
            fail_msg("hess --sparse '%s': no summary line:\n%s", k->expr, at);
        double f, g[3], h[9];
        k->hand(k->values, &f, g, h);
        for (at = strchr(at, '\n'); at && at[1]; at = strchr(at + 1, '\n')) {
            char a[16], b[16];
            double v;
            if (sscanf(at + 1, "  (%15[^,], %15[^)]) = %lf", a, b, &v) != 3)
                fail_msg("hess --sparse '%s': a line that is no entry: %s", k->expr, at + 1);
            int i = -1, j = -1;
            for (int q = 0; q < k->n; q++) {
                if (!strcmp(a, k->names[q])) i = q;
                if (!strcmp(b, k->names[q])) j = q;
            }
            assert_true(i >= 0 && j >= 0 && j <= i && !seen[i][j]);
            seen[i][j] = 1;
            lines++;
            char what[128];
            snprintf(what, sizeof what, "%s: sparse d2f/d%s d%s", k->expr, a, b);
            assert_close(what, v, h[i * k->n + j]);
        }
        assert_int_equal(lines, nnz);
        assert_true(colors >= 1 && colors <= k->n);
        for (int i = 0; i < k->n; i++)
            for (int j = 0; j <= i; j++)
                if (h[i * k->n + j] != 0 && !seen[i][j])
                    fail_msg("hess --sparse '%s': d2f/d%s d%s = %g is missing", k->expr,
                             k->names[i], k->names[j], h[i * k->n + j]);
        done(&r);
        done(&d);
    }
    result g = run("grad", "--sparse", "x", "x=1", NULL); /* hess only */
    assert_int_equal(g.code, 2);
    assert_non_null(strstr(g.err, "unknown option '--sparse'"));
    done(&g);
}

static void test_hess_hand_derived(void **state) {
    (void)state;
    for (size_t c = 0; c < sizeof hess_cases / sizeof *hess_cases; c++) {
        const struct hess_case *k = &hess_cases[c];
        char bind[3][64];
        const char *arg[3];
        hess_bindings(k, bind, arg);
        result r = run("hess", "--json", k->expr, arg[0], arg[1], arg[2], NULL);
        assert_clean(&r, k->expr);
        hess_out o;
        if (r.code || !parse_hess(r.out, &o))
            fail_msg("hess --json '%s': exit %d, not the documented object:\n%s%s", k->expr,
                     r.code, r.out, r.err);
        assert_string_equal(r.err, "");
        double f, g[3], h[9];
        k->hand(k->values, &f, g, h);
        assert_int_equal(o.p.n, k->n);
        assert_close(k->expr, o.p.value, f);
        for (int i = 0; i < k->n; i++) {
            char what[128];
            assert_string_equal(o.p.name[i], k->names[i]); /* first appearance */
            snprintf(what, sizeof what, "%s: df/d%s", k->expr, k->names[i]);
            assert_close(what, o.p.grad[i], g[i]);
            for (int j = 0; j < k->n; j++) {
                snprintf(what, sizeof what, "%s: d2f/d%s d%s", k->expr, k->names[i], k->names[j]);
                assert_close(what, o.h[i][j], h[i * k->n + j]);
            }
        }
        /* The value and gradient are grad --json's, byte for byte. */
        result gr = run("grad", "--json", k->expr, arg[0], arg[1], arg[2], NULL);
        assert_int_equal(gr.code, 0);
        size_t len = strlen(gr.out) - 2; /* without the closing "}\n" */
        if (strncmp(r.out, gr.out, len) || strncmp(r.out + len, ", \"hessian\": {", 14))
            fail_msg("hess --json '%s' does not begin as grad --json:\n%s%s", k->expr, r.out,
                     gr.out);
        done(&gr);
        done(&r);
    }
}

/* The text form: an aligned matrix after grad's lines; unused variables
 * (--allow-unused) get rows and columns of 0; no variables, no matrix. */
static void test_hess_text(void **state) {
    (void)state;
    static const struct {
        const char *argv[6], *out;
    } cases[] = {
        /* x^2*y: f_x = 2xy, f_y = x^2; f_xx = 2y, f_xy = 2x, f_yy = 0. */
        {{"x^2*y", "x=3", "y=2"},
         "f = 18\ndf/dx = 12\ndf/dy = 9\nhessian (row a, column b: d2f/da db):\n"
         "      x   y\n  x   4   6\n  y   6   0\n"},
        /* Negative entries keep the digits of a column aligned; long names widen it. */
        {{"-x*long_name^2", "x=0.5", "long_name=3"},
         "f = -4.5\ndf/dx = -9\ndf/dlong_name = -3\nhessian (row a, column b: d2f/da db):\n"
         "              x   long_name\n"
         "  x           0  -6\n"
         "  long_name  -6  -1\n"},
        {{"--allow-unused", "x*x", "w=1", "x=-1.5"},
         "f = 2.25\ndf/dx = -3\ndf/dw = 0\nhessian (row a, column b: d2f/da db):\n"
         "      x   w\n  x   2   0\n  w   0   0\n"},
        {{"2*pi"}, "f = 6.283185307179586\n"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        const char *const *a = cases[i].argv;
        result r = run("hess", a[0], a[1], a[2], a[3], NULL);
        assert_clean(&r, a[0]);
        if (r.code || strcmp(r.out, cases[i].out))
            fail_msg("hess %s: exit %d\n%s\nwanted\n%s\n%s", a[0], r.code, r.out, cases[i].out,
                     r.err);
        done(&r);
    }
    result r = run("hess", "--json", "--allow-unused", "3*y", "y=2", "w=1", NULL);
    assert_string_equal(r.out, "{\"value\": 6, \"grad\": {\"y\": 3, \"w\": 0}, \"hessian\": "
                               "{\"y\": {\"y\": 0, \"w\": 0}, \"w\": {\"y\": 0, \"w\": 0}}}\n");
    done(&r);
    r = run("hess", "--json", "e", NULL);
    char want[96];
    snprintf(want, sizeof want, "{\"value\": %.17g, \"grad\": {}, \"hessian\": {}}\n", exp(1.0));
    assert_string_equal(r.out, want);
    done(&r);
}

/* hess's errors are grad's, with the same messages and columns, plus the
 * second derivative that is not finite (the op named). Text and --json. */
static void test_hess_errors(void **state) {
    (void)state;
    static const error_case cases[] = {
        {{"hess", "log(x)", "x=-1"}, "domain error: log(-1) is NaN (outside the domain of log)", 1},
        {{"hess", "sigmod(x)", "x=1"}, "unknown function 'sigmod' (did you mean sigmoid?)", 1},
        {{"hess", "PI*x", "x=1"}, "unbound variable 'PI': give its value as PI=NUMBER (or did "
                                  "you mean pi?)", 1},
        {{"hess", "x", "x=1", "w=2"}, "variable 'w' is given but the expression does not use it "
                                      "(--allow-unused allows it)", 0},
        {{"hess", "sqrt(x)", "x=0"}, "not differentiable here: the derivative of sqrt(0) is "
                                     "inf, so df/dx is inf", 1},
        /* (x^1.5)'' = 0.75 / sqrt(x): finite value and gradient, infinite curvature. */
        {{"hess", "y*x^1.5", "x=0", "y=2"}, "not twice differentiable here: the second "
         "derivative of 0 ^ 1.5 with respect to the base is inf, so d2f/dx^2 is inf", 4},
        {{"hess", "x", "x=abc"}, "bad number for variable 'x': 'abc'", 0},
        {{"hess", "--order", "2", "x", "x=1"}, "unknown option '--order' (see tapegrad hess "
         "--help; an expression starting with -- goes after the argument --)", 0},
        {{"hess"}, "missing expression (see tapegrad hess --help)", 0},
        {{"check", "--order", "3", "x", "x=1"}, "--order must be 1 or 2, got '3'", 0},
        {{"check", "--order"}, "option --order needs a value", 0},
        {{"check", "--order=2", "2+3"}, "nothing to check: the expression has no variables", 0},
        {{"check", "--order=2", "y*x^1.5", "x=0", "y=2"}, "not twice differentiable here: the "
         "second derivative of 0 ^ 1.5 with respect to the base is inf, so d2f/dx^2 is inf", 4},
    };
    check_errors(cases, sizeof cases / sizeof *cases);
}

/* Every registered op through `tapegrad hess --json`, at the point of
 * tests/op_points.h, against tg_hessian of tg_call_n at the same scalars,
 * bit for bit (value, gradient, Hessian). An op whose Hessian the C API
 * cannot give (no vjp rule yet, or a rule that needs an op this build lacks)
 * must give exit 2 and a JSON error naming the op or carrying the library's
 * message; those ops are listed, not failed. Ops that refuse scalars must
 * give the library's message, as for grad. */
static void test_hess_registry_walk(void **state) {
    (void)state;
    static const char *const vars[] = {"x", "y", "z"};
    int n = tg_op_count(), walked = 0;
    char refused[1024] = "";
    for (int i = 0; i < n; i++) {
        const tg_op *op = tg_op_at(i);
        char src[96], msg[256], bind[3][64];
        const char *arg[3] = {NULL, NULL, NULL};
        double pt[3], h[9];
        op_call_text(op, src, sizeof src);
        const char *reason = scalar_refusal_of(op->name);
        if (reason)
            op_point(0, pt);
        else if (op_finite_point(op, pt) < 0)
            fail_msg("op %s has no finite point among the candidates of tests/op_points.h", op->name);
        for (int k = 0; k < op->arity; k++) {
            snprintf(bind[k], sizeof bind[k], "%s=%.17g", vars[k], pt[k]);
            arg[k] = bind[k];
        }
        /* The oracle: the C API on a new tape. */
        tg_tape *t = tg_tape_new();
        tg_node *in[3] = {NULL, NULL, NULL};
        for (int k = 0; k < op->arity; k++) in[k] = tg_scalar(t, pt[k]);
        tg_node *f = tg_call_n(op->name, op->arity, in);
        int built = tg_status(t);
        double value = built ? 0 : tg_value_scalar(f), grad[3];
        if (!built) assert_int_equal(tg_backward(f), TG_OK);
        for (int k = 0; k < op->arity && !built; k++) grad[k] = tg_grad_scalar(in[k]);
        int rc = built ? built : tg_hessian(f, op->arity, in, h);
        snprintf(msg, sizeof msg, "%s", tg_status_message(t));
        tg_tape_free(t);

        result r = run("hess", "--json", src, arg[0], arg[1], arg[2], NULL);
        assert_clean(&r, src);
        int finite = !rc;
        for (int e = 0; finite && e < op->arity * op->arity; e++) finite = isfinite(h[e]) != 0;
        if (rc || !finite) {
            jv v = {0};
            char named[96];
            snprintf(named, sizeof named, "op '%s'", op->name);
            if (r.code != 2 || *r.out || !jv_parse(r.err, &v) || v.type != JV_OBJ || v.n < 1 ||
                v.item[0].type != JV_STR)
                fail_msg("'%s': the C API fails (%s) but hess gives exit %d, stdout '%s', "
                         "stderr '%s'", src, rc ? msg : "a Hessian that is not finite", r.code,
                         r.out, r.err);
            const char *e = v.item[0].text;
            if (reason ? !strstr(e, msg)
                : rc == TG_ERR_STATE ? !strstr(e, named)
                : rc ? !strstr(e, msg) : !strstr(e, "not twice differentiable"))
                fail_msg("'%s': unclear error '%s' (the library says '%s')", src, e, msg);
            if (!reason && rc) {
                size_t len = strlen(refused);
                snprintf(refused + len, sizeof refused - len, "%s%s", len ? ", " : "", op->name);
            }
            jv_free(&v);
            done(&r);
            continue;
        }
        hess_out o;
        if (r.code || !parse_hess(r.out, &o))
            fail_msg("'%s' at (%s %s %s): exit %d\n%s%s", src, bind[0], arg[1] ? bind[1] : "",
                     arg[2] ? bind[2] : "", r.code, r.out, r.err);
        if (memcmp(&o.p.value, &value, sizeof value))
            fail_msg("'%s': value %.17g, the C API gives %.17g", src, o.p.value, value);
        assert_int_equal(o.p.n, op->arity);
        for (int a = 0; a < op->arity; a++) {
            assert_string_equal(o.p.name[a], vars[a]);
            if (memcmp(&o.p.grad[a], &grad[a], sizeof grad[a]))
                fail_msg("'%s': df/d%s %.17g, the C API gives %.17g", src, vars[a], o.p.grad[a],
                         grad[a]);
            for (int b = 0; b < op->arity; b++)
                if (memcmp(&o.h[a][b], &h[a * op->arity + b], sizeof(double)))
                    fail_msg("'%s': d2f/d%s d%s %.17g, tg_hessian gives %.17g", src, vars[a],
                             vars[b], o.h[a][b], h[a * op->arity + b]);
        }
        walked++;
        done(&r);
    }
    print_message("%d of %d registered ops: the Hessian through the program is tg_hessian's\n",
                  walked, n);
    if (*refused)
        print_message("no Hessian yet (no vjp rule, or a rule needing an op this build lacks; "
                      "a clear error checked): %s\n", refused);
}

/* Python's json reads hess --json and check --order 2 --json: keys in
 * order, the Hessian of x^3*y + sin(x)*y^2 against the formulas in Python's
 * math (libm). */
static void test_hess_python(void **state) {
    (void)state;
    if (!have_python()) return;
    char path[64];
    FILE *f = lines_file(path, sizeof path, "hess_json");
    keep_line(f, run("hess", "--json", "x^3*y + sin(x)*y^2", "y=-1.3", "x=0.7", NULL), 0);
    keep_line(f,
              run("check", "--json", "--order", "2", "x^3*y + sin(x)*y^2", "y=-1.3", "x=0.7", NULL),
              0);
    fclose(f);
    python_reads(path,
                 "import json, math, sys\n"
                 "h, c = [json.loads(l) for l in sys.stdin.read().splitlines()]\n"
                 "x, y = 0.7, -1.3\n"
                 "H = {'x': {'x': 6*x*y - math.sin(x)*y*y, 'y': 3*x*x + 2*y*math.cos(x)},\n"
                 "     'y': {'x': 3*x*x + 2*y*math.cos(x), 'y': 2*math.sin(x)}}\n"
                 "assert list(h) == ['value', 'grad', 'hessian'], h\n"
                 "assert list(h['grad']) == ['x', 'y'] and list(h['hessian']) == ['x', 'y'], h\n"
                 "for a in 'xy':\n"
                 "    assert list(h['hessian'][a]) == ['x', 'y'], h\n"
                 "    for b in 'xy':\n"
                 "        assert math.isclose(h['hessian'][a][b], H[a][b], rel_tol=1e-13), (a, b)\n"
                 "assert list(c) == ['value', 'order', 'passed', 'failed', 'eps', 'atol',\n"
                 "                   'rtol', 'hessian', 'grad_mismatch', 'unused'], c\n"
                 "assert c['order'] == 2 and c['passed'] is True and c['failed'] == 0, c\n"
                 "assert c['grad_mismatch'] is None and c['unused'] == [], c\n"
                 "for a in 'xy':\n"
                 "    assert list(c['hessian'][a]) == ['x', 'y'], c\n"
                 "    for b in 'xy':\n"
                 "        e = c['hessian'][a][b]\n"
                 "        assert list(e) == ['analytic', 'numeric', 'abs_error', 'ok', 'kink'], e\n"
                 "        assert e['analytic'] == h['hessian'][a][b], (a, b)\n"
                 "        assert abs(e['numeric'] - H[a][b]) <= 1e-6, e\n"
                 "        assert e['ok'] is True and e['kink'] is False, e\n");
}

/* ------------------------------------------------- check --order 2 -- */

/* check --order 2 --json, read and its keys checked in order. */
static jv check2_json(int status, const char *a, const char *b, const char *c, const char *d) {
    static const char *const keys[] = {"value", "order", "passed", "failed", "eps", "atol",
                                       "rtol", "hessian", "grad_mismatch", "unused"};
    static const char *const entry[] = {"analytic", "numeric", "abs_error", "ok", "kink"};
    result r = run("check", "--order", "2", "--json", a, b, c, d, NULL);
    assert_clean(&r, a);
    if (r.code != status) fail_msg("check --order 2 --json %s: exit %d: %s", a, r.code, r.err);
    jv v = {0};
    const char *nl = strchr(r.out, '\n');
    if (!nl || nl[1] || !jv_parse(r.out, &v) || !has_keys(&v, 10, keys))
        fail_msg("check --order 2 --json %s: not the documented object: '%s'", a, r.out);
    const jv *h = jv_get(&v, "hessian");
    for (int i = 0; i < h->n; i++) {
        if (!has_keys(&h->item[i], h->n, (const char *const *)h->keys))
            fail_msg("check --order 2 --json %s: row %s: %s", a, h->keys[i], r.out);
        for (int j = 0; j < h->n; j++)
            if (!has_keys(&h->item[i].item[j], 5, entry)) fail_msg("%s: %s", a, r.out);
    }
    assert_string_equal(r.err, "");
    done(&r);
    return v;
}

static void test_check_order2(void **state) {
    (void)state;
    tg_gradcheck_opts def = tg_gradcheck_defaults();
    /* The hand-derived cases pass; each entry's analytic value is the
     * Hessian, its numeric one close to it. */
    for (size_t c = 0; c < sizeof hess_cases / sizeof *hess_cases; c++) {
        const struct hess_case *k = &hess_cases[c];
        char bind[3][64];
        const char *arg[3];
        hess_bindings(k, bind, arg);
        jv v = check2_json(0, k->expr, arg[0], arg[1], arg[2]);
        double f, g[3], h[9];
        k->hand(k->values, &f, g, h);
        assert_close(k->expr, num(&v, "value"), f);
        assert_true(num(&v, "order") == 2 && num(&v, "passed") == 1 && num(&v, "failed") == 0);
        assert_true(num(&v, "eps") == def.eps && num(&v, "atol") == def.atol &&
                    num(&v, "rtol") == def.rtol);
        assert_int_equal(jv_get(&v, "grad_mismatch")->type, JV_NULL);
        assert_int_equal(jv_get(&v, "unused")->n, 0);
        const jv *hj = jv_get(&v, "hessian");
        assert_int_equal(hj->n, k->n);
        for (int i = 0; i < k->n; i++) {
            assert_string_equal(hj->keys[i], k->names[i]);
            for (int j = 0; j < k->n; j++) {
                const jv *e = &hj->item[i].item[j];
                double a = num(e, "analytic"), nm = num(e, "numeric"), want = h[i * k->n + j];
                char what[128];
                snprintf(what, sizeof what, "check --order 2 '%s' d2f/d%s d%s", k->expr,
                         k->names[i], k->names[j]);
                assert_close(what, a, want);
                /* Central differences of the gradient: error ~ h^2 + 1e-16/h. */
                if (!(fabs(nm - want) <= 1e-6 * (1 + fabs(want))))
                    fail_msg("%s: numeric %.17g, wanted about %.17g", what, nm, want);
                assert_true(num(e, "abs_error") == fabs(a - nm));
                assert_true(num(e, "ok") == 1 && num(e, "kink") == 0);
            }
        }
        jv_free(&v);
        /* The text form passes too. */
        result r = run("check", "--order=2", k->expr, arg[0], arg[1], arg[2], NULL);
        char pass[64];
        snprintf(pass, sizeof pass, "PASS: %d second derivative%s agree", k->n * k->n,
                 k->n == 1 ? "" : "s");
        if (r.code || !strstr(r.out, pass)) fail_msg("check --order 2 %s:\n%s", k->expr, r.out);
        done(&r);
    }

    /* A step far too large for exp's curvature: the numeric second
     * derivative of exp at 0 is sinh(h)/h; the check fails, exit 1. */
    jv v = check2_json(1, "--eps=0.5", "exp(x)", "x=0", NULL);
    assert_true(num(&v, "passed") == 0 && num(&v, "failed") == 1);
    const jv *e = &jv_get(&v, "hessian")->item[0].item[0];
    assert_true(num(e, "analytic") == 1 && num(e, "ok") == 0);
    assert_true(fabs(num(e, "numeric") - sinh(0.5) / 0.5) < 1e-14);
    jv_free(&v);
    result r = run("check", "--order", "2", "--eps", "0.5", "exp(x)", "x=0", NULL);
    assert_int_equal(r.code, 1);
    assert_non_null(strstr(r.out, "d2f/dx^2    1                         1.04219061098749"));
    assert_non_null(strstr(r.out, "FAIL: 1 of 1 second derivative disagrees"));
    done(&r);

    /* --allow-unused: listed, not checked; order 1 stays as it was. */
    v = check2_json(0, "--allow-unused", "x*x", "w=3", "x=1");
    assert_int_equal(jv_get(&v, "hessian")->n, 1);
    assert_true(num(&jv_get(&v, "hessian")->item[0].item[0], "analytic") == 2);
    assert_string_equal(jv_get(&v, "unused")->item[0].text, "w");
    jv_free(&v);
    result r1 = run("check", "sin(x)*y", "x=0.5", "y=2", NULL);
    result r2 = run("check", "--order", "1", "sin(x)*y", "x=0.5", "y=2", NULL);
    assert_int_equal(r1.code, 0);
    assert_string_equal(r1.out, r2.out);
    assert_non_null(strstr(r1.out, "df/dx "));
    done(&r1);
    done(&r2);
}

/* ----------------------------------------------------------------- help -- */

static void test_help(void **state) {
    (void)state;
    result r = run("--help", NULL);
    assert_int_equal(r.code, 0);
    assert_non_null(strstr(r.out, "grad"));
    assert_non_null(strstr(r.out, "check"));
    assert_non_null(strstr(r.out, "\n  hess "));
    done(&r);
    const char *cmds[] = {"grad", "check", "hess"};
    for (int c = 0; c < 3; c++) {
        for (int form = 0; form < 3; form++) {
            r = form == 0   ? run(cmds[c], "--help", NULL)
                : form == 1 ? run(cmds[c], "-h", NULL)
                            : run(cmds[c], "x*y", "--help", NULL);
            assert_clean(&r, "help");
            assert_int_equal(r.code, 0);
            assert_string_equal(r.err, "");
            assert_non_null(strstr(r.out, "usage: tapegrad"));
            assert_non_null(strstr(r.out, "--dot FILE"));
            assert_non_null(strstr(r.out, "exit status"));
            assert_non_null(strstr(r.out, "right"));
            /* Every function of the registry is listed under its arity:
             * the block from "N argument(s):" to the next line indented
             * less than the list's continuation lines. */
            for (int i = 0; i < tg_op_count(); i++) {
                const tg_op *op = tg_op_at(i);
                char word[40], label[32];
                snprintf(word, sizeof word, " %s ", op->name);
                snprintf(label, sizeof label, "%d argument%s", op->arity,
                         op->arity == 1 ? ": " : "s:");
                const char *from = strstr(r.out, label), *to = from;
                if (!from) fail_msg("%s --help lacks '%s'", cmds[c], label);
                while ((to = strchr(to + 1, '\n')) && !strncmp(to + 1, "                           ", 27))
                    ;
                if (!to) to = from + strlen(from);
                char *block = strndup(from, (size_t)(to - from));
                if (!strstr(block, word))
                    fail_msg("%s --help does not list%sunder '%s'", cmds[c], word, label);
                free(block);
            }
            done(&r);
        }
    }
    r = run("grad", "--help", NULL);
    assert_non_null(strstr(r.out, "--json"));
    assert_non_null(strstr(r.out, "order of first appearance"));
    done(&r);
    r = run("check", "--help", NULL);
    assert_non_null(strstr(r.out, "--eps"));
    assert_non_null(strstr(r.out, "--atol"));
    assert_non_null(strstr(r.out, "--rtol"));
    assert_non_null(strstr(r.out, "--order N"));
    assert_non_null(strstr(r.out, "tg_gradgradcheck"));
    done(&r);
    /* hess --help shows the output of its example, which must be what the
     * program prints. */
    r = run("hess", "--help", NULL);
    assert_non_null(strstr(r.out, "--json"));
    assert_non_null(strstr(r.out, "\"hessian\""));
    result ex = run("hess", "x^2*y", "x=3", "y=2", NULL);
    char *indented = malloc(2 * strlen(ex.out) + 1), *p = indented;
    for (const char *q = ex.out; *q; q++) {
        if (q == ex.out || q[-1] == '\n') p += sprintf(p, "  ");
        *p++ = *q;
    }
    *p = '\0';
    if (!strstr(r.out, indented)) fail_msg("hess --help's example is not the output:\n%s", indented);
    free(indented);
    done(&ex);
    done(&r);
}

/* ------------------------------------------------------------------ DOT -- */

static int count(const char *s, const char *what) {
    int n = 0;
    for (const char *p = s; (p = strstr(p, what)); p += strlen(what)) n++;
    return n;
}

static void test_dot_circuit(void **state) {
    (void)state;
    char dot_path[96], png_path[96];
    snprintf(dot_path, sizeof dot_path, "%s/circuit.dot", tmpdir);
    snprintf(png_path, sizeof png_path, "%s/circuit.png", tmpdir);
    result r = run("grad", "--dot", dot_path, "(x+y)*z", "x=-2", "y=5", "z=-4", NULL);
    assert_clean(&r, "grad --dot");
    assert_int_equal(r.code, 0);
    assert_string_equal(r.out, "f = -12\ndf/dx = -4\ndf/dy = -4\ndf/dz = 3\n");
    done(&r);
    char *dot = slurp(dot_path);
    assert_true(!strncmp(dot, "digraph", 7));
    assert_int_equal(count(dot, " [label=<<table"), 5); /* x y z, add, mul */
    assert_int_equal(count(dot, " -> "), 4);
    assert_int_equal(count(dot, "#1a7f37\">value"), 5); /* values in green */
    assert_int_equal(count(dot, "#cf222e\">grad"), 5);  /* gradients in red */
    assert_non_null(strstr(dot, "<b>x</b>"));
    assert_non_null(strstr(dot, "value -12"));
    assert_non_null(strstr(dot, "grad -4"));
    assert_non_null(strstr(dot, ">add<"));
    assert_non_null(strstr(dot, ">mul<"));
    free(dot);
    /* check writes the same picture. */
    r = run("check", "--dot", dot_path, "(x+y)*z", "x=-2", "y=5", "z=-4", NULL);
    assert_int_equal(r.code, 0);
    done(&r);
    dot = slurp(dot_path);
    assert_int_equal(count(dot, " -> "), 4);
    free(dot);

    if (dot_missing) {
        print_message("graphviz's dot not found: the rendering check is skipped\n");
        return;
    }
    char *argv[] = {"dot", "-Tpng", dot_path, "-o", png_path, NULL};
    result d = spawn(argv, 1, NULL);
    if (d.code) fail_msg("dot -Tpng failed (exit %d): %s", d.code, d.err);
    done(&d);
    FILE *f = fopen(png_path, "rb");
    assert_non_null(f);
    unsigned char magic[8];
    assert_int_equal(fread(magic, 1, 8, f), 8);
    fclose(f);
    assert_memory_equal(magic, "\x89PNG\r\n\x1a\n", 8);
}

/* The library call itself: tensors, options, escaping and errors. */
static const char *name_it(const tg_node *n, void *ctx) {
    (void)ctx;
    return tg_node_index(n) == 0 ? "a<&>\"b" : NULL;
}

static void test_dot_write(void **state) {
    (void)state;
    tg_tape *t = tg_tape_new();
    int64_t shape[2] = {2, 4};
    double v[8] = {1, 2, 3, 4, 5, 6, 7, 8};
    tg_node *a = tg_tensor(t, TG_F64, 2, shape, v);
    tg_node *c = tg_input(t, TG_F32, 2, shape, NULL);
    tg_node *s = tg_sum(tg_tanh(a));
    (void)c;
    assert_int_equal(tg_backward(s), TG_OK);
    char path[96];
    snprintf(path, sizeof path, "%s/lib.dot", tmpdir);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    tg_dot_opts o = {.name = name_it, .title = "x < y", .max_values = 3, .top_down = 1};
    assert_int_equal(tg_dot_write_with(t, f, &o), TG_OK);
    fclose(f);
    char *dot = slurp(path);
    assert_non_null(strstr(dot, "rankdir=TB"));
    assert_non_null(strstr(dot, "x &lt; y"));
    assert_non_null(strstr(dot, "a&lt;&amp;&gt;&quot;b"));
    assert_non_null(strstr(dot, "[2,4] float64"));
    assert_non_null(strstr(dot, "[2,4] float32"));
    assert_non_null(strstr(dot, "value [1, 2, 3, ...]"));
    assert_non_null(strstr(dot, ">variable<"));
    assert_non_null(strstr(dot, ">input<"));
    assert_non_null(strstr(dot, ">tanh<"));
    assert_int_equal(count(dot, "#cf222e\">grad"), 3); /* a, tanh, sum; not the input */
    free(dot);
    if (!dot_missing) {
        char png[96];
        snprintf(png, sizeof png, "%s/lib.png", tmpdir);
        char *argv[] = {"dot", "-Tpng", path, "-o", png, NULL};
        result d = spawn(argv, 1, NULL);
        if (d.code) fail_msg("dot rejects the tensor picture: %s", d.err);
        done(&d);
    }
    assert_int_equal(tg_dot_write(NULL, stdout), TG_ERR_NULL);
    assert_int_equal(tg_dot_write(t, NULL), TG_ERR_NULL);
    f = fopen("/dev/null", "r"); /* writes fail */
    assert_non_null(f);
    assert_int_equal(tg_dot_write(t, f), TG_ERR_IO);
    fclose(f);
    assert_int_equal(tg_status(t), TG_OK);
    tg_tape_free(t);
}

/* ----------------------------------------------------------------- main -- */

static int on_path(const char *prog) {
    const char *path = getenv("PATH");
    if (!path) return 0;
    char *copy = strdup(path);
    int found = 0;
    for (char *dir = strtok(copy, ":"); dir && !found; dir = strtok(NULL, ":")) {
        char full[4096];
        snprintf(full, sizeof full, "%s/%s", dir, prog);
        found = access(full, X_OK) == 0;
    }
    free(copy);
    return found;
}

int main(void) {
    cli = getenv("TG_CLI");
    if (!cli || access(cli, X_OK)) {
        fprintf(stderr, "SKIP: TG_CLI does not name the built tapegrad program (run through "
                        "ctest)\n");
        return 77;
    }
    if (!mkdtemp(tmpdir)) {
        perror("mkdtemp");
        return 1;
    }
    dot_missing = !on_path("dot");
    /* In a sanitizer build, LeakSanitizer would take pointers left in dead
     * stack frames for roots and miss real leaks; at exit nothing on the
     * stack should own memory, so the spawned programs get the strict view
     * (unless the caller chose LSAN_OPTIONS). No effect in other builds. */
    setenv("LSAN_OPTIONS", "use_stacks=0:use_registers=0", 0);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_circuit),
        cmocka_unit_test(test_order_and_precedence),
        cmocka_unit_test(test_json_matches_library),
        cmocka_unit_test(test_json_python),
        cmocka_unit_test(test_registry_walk),
        cmocka_unit_test(test_error_json),
        cmocka_unit_test(test_check_json),
        cmocka_unit_test(test_allow_unused_and_constants),
        cmocka_unit_test(test_malformed),
        cmocka_unit_test(test_caret_position),
        cmocka_unit_test(test_check),
        cmocka_unit_test(test_hess_hand_derived),
        cmocka_unit_test(test_hess_sparse),
        cmocka_unit_test(test_hess_text),
        cmocka_unit_test(test_hess_errors),
        cmocka_unit_test(test_hess_registry_walk),
        cmocka_unit_test(test_hess_python),
        cmocka_unit_test(test_check_order2),
        cmocka_unit_test(test_help),
        cmocka_unit_test(test_dot_circuit),
        cmocka_unit_test(test_dot_write),
    };
    int failed = cmocka_run_group_tests(tests, NULL, NULL);
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
    if (system(cmd)) fprintf(stderr, "could not remove %s\n", tmpdir);
    if (!failed && dot_missing) {
        fprintf(stderr, "SKIP: graphviz's dot is not installed (apt-get install graphviz), so "
                        "the DOT pictures were not rendered; every other check passed\n");
        return 77;
    }
    return failed;
}
