/*
 * The tapegrad program's grad and check commands, run as a user would (the
 * path comes from TG_CLI): the circuit example; --json parsed by a strict
 * JSON reader and compared bit for bit with the library computing the same
 * expressions; operator precedence; more than 25 malformed inputs, each exit
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

/* A strict reader of exactly {"value": N, "grad": {"name": N, ...}}, with
 * the JSON grammar's number and string rules. */
typedef struct json {
    const char *s;
    size_t i;
} json;

static void js_space(json *j) {
    while (j->s[j->i] == ' ' || j->s[j->i] == '\t' || j->s[j->i] == '\n' || j->s[j->i] == '\r')
        j->i++;
}

static int js_char(json *j, char c) {
    js_space(j);
    if (j->s[j->i] != c) return 0;
    j->i++;
    return 1;
}

/* A string without escapes (the program only prints identifiers). */
static int js_string(json *j, char *buf, size_t len) {
    if (!js_char(j, '"')) return 0;
    size_t k = 0;
    while (j->s[j->i] && j->s[j->i] != '"') {
        unsigned char c = (unsigned char)j->s[j->i++];
        if (c < 0x20 || c == '\\' || k + 1 >= len) return 0;
        buf[k++] = (char)c;
    }
    buf[k] = '\0';
    return js_char(j, '"');
}

/* A JSON number; also checks that it is the %.17g form of its value. */
static int js_number(json *j, double *v) {
    js_space(j);
    const char *s = j->s + j->i;
    size_t k = 0;
    if (s[k] == '-') k++;
    if (s[k] == '0')
        k++;
    else if (s[k] >= '1' && s[k] <= '9')
        while (s[k] >= '0' && s[k] <= '9') k++;
    else
        return 0;
    if (s[k] == '.') {
        k++;
        if (!(s[k] >= '0' && s[k] <= '9')) return 0;
        while (s[k] >= '0' && s[k] <= '9') k++;
    }
    if (s[k] == 'e' || s[k] == 'E') {
        k++;
        if (s[k] == '+' || s[k] == '-') k++;
        if (!(s[k] >= '0' && s[k] <= '9')) return 0;
        while (s[k] >= '0' && s[k] <= '9') k++;
    }
    char tok[64];
    if (k >= sizeof tok) return 0;
    memcpy(tok, s, k);
    tok[k] = '\0';
    *v = strtod(tok, NULL);
    char again[64];
    snprintf(again, sizeof again, "%.17g", *v);
    if (strcmp(again, tok)) return 0; /* not printed with 17 significant digits */
    j->i += k;
    return 1;
}

#define MAX_VARS 8
typedef struct parsed {
    double value;
    int n;
    char name[MAX_VARS][32];
    double grad[MAX_VARS];
} parsed;

static int parse_output(const char *s, parsed *p) {
    json j = {s, 0};
    char key[32];
    p->n = 0;
    if (!js_char(&j, '{') || !js_string(&j, key, sizeof key) || strcmp(key, "value") ||
        !js_char(&j, ':') || !js_number(&j, &p->value) || !js_char(&j, ',') ||
        !js_string(&j, key, sizeof key) || strcmp(key, "grad") || !js_char(&j, ':') ||
        !js_char(&j, '{'))
        return 0;
    if (!js_char(&j, '}')) {
        do {
            if (p->n == MAX_VARS || !js_string(&j, p->name[p->n], sizeof p->name[0]) ||
                !js_char(&j, ':') || !js_number(&j, &p->grad[p->n]))
                return 0;
            p->n++;
        } while (js_char(&j, ','));
        if (!js_char(&j, '}')) return 0;
    }
    if (!js_char(&j, '}')) return 0;
    return strcmp(j.s + j.i, "\n") == 0; /* exactly one object, one newline */
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

/* A general-purpose JSON parser agrees, when python3 is there. */
static void test_json_python(void **state) {
    (void)state;
    if (!getenv("PATH") || system("command -v python3 >/dev/null 2>&1") != 0) {
        print_message("python3 not found: only the built-in JSON reader was used\n");
        return;
    }
    result r = run("grad", "--json", "x*y + 1e-300*x", "x=0.1", "y=3e200", NULL);
    assert_int_equal(r.code, 0);
    char path[64];
    snprintf(path, sizeof path, "%s/json", tmpdir);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(r.out, f);
    fclose(f);
    char *argv[] = {"python3", "-c",
                    "import json, sys\n"
                    "d = json.load(sys.stdin)\n"
                    "assert set(d) == {'value', 'grad'}, d\n"
                    "assert list(d['grad']) == ['x', 'y'], d\n"
                    "assert d['value'] == 0.1 * 3e200 + 1e-300 * 0.1, d\n"
                    "assert d['grad']['y'] == 0.1, d\n",
                    NULL};
    result py = spawn(argv, 1, path);
    if (py.code) fail_msg("python3's json rejects '%s': %s", r.out, py.err);
    done(&py);
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
        {{"check", "--json", "x", "x=1"}, "unknown option '--json'", 0},
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
    assert_non_null(strstr(r.out, "ok (kink)"));
    assert_non_null(strstr(r.out, "note: f has a kink in x"));
    done(&r);

    /* Tolerances and the step are options. */
    r = run("check", "--eps=1e-4", "--atol", "1e-9", "--rtol=1e-9", "x^3", "x=1.5", NULL);
    assert_int_equal(r.code, 1); /* truncation error 1e-8 > 1e-9 + 1e-9 * 6.75 */
    done(&r);
    r = run("check", "--eps=1e-4", "--atol", "1e-9", "--rtol=1e-6", "x^3", "x=1.5", NULL);
    assert_int_equal(r.code, 0);
    done(&r);
}

/* ----------------------------------------------------------------- help -- */

static void test_help(void **state) {
    (void)state;
    result r = run("--help", NULL);
    assert_int_equal(r.code, 0);
    assert_non_null(strstr(r.out, "grad"));
    assert_non_null(strstr(r.out, "check"));
    done(&r);
    const char *cmds[] = {"grad", "check"};
    for (int c = 0; c < 2; c++) {
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
            /* Every function of the registry is listed. */
            for (int i = 0; i < tg_op_count(); i++) {
                char word[40];
                snprintf(word, sizeof word, "%s ", tg_op_at(i)->name);
                if (!strstr(r.out, word)) fail_msg("%s --help does not list %s", cmds[c], word);
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
        cmocka_unit_test(test_malformed),
        cmocka_unit_test(test_caret_position),
        cmocka_unit_test(test_check),
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
