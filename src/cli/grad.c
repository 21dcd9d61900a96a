/*
 * tapegrad grad EXPR x=... : the value and every partial derivative.
 * tapegrad hess EXPR x=... : the same, and the Hessian matrix (tg_hessian).
 * tapegrad check EXPR x=...: the derivatives checked by tg_gradcheck, or with
 *                            --order 2 the Hessian by tg_gradgradcheck.
 *
 * All build the expression on a float64 tape through the parser of expr.c
 * and sweep it backward once. Every error (usage, syntax, unknown name,
 * malformed number, a value or derivative that is not finite, an op without
 * a rule for second derivatives) is one message on stderr (with --json, one
 * JSON object) and exit status 2; nothing is printed on stdout then.
 */
#define _POSIX_C_SOURCE 200809L /* getpid */

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <tapegrad.h>
#include <tapegrad/sparse.h>

#include "safe_file.h"

#include "cli.h"
#include "expr.h"
#include "report.h"
#include "suggest.h"

enum { EXIT_OK = 0, EXIT_FAIL = 1, EXIT_USAGE = 2 };

enum kind { GRAD, HESS, CHECK };

typedef struct cmd {
    const char *name; /* "grad", "hess" or "check" */
    enum kind kind;
    const char *expr;
    const char *dot;
    bool json;         /* output, and errors, as JSON */
    bool allow_unused; /* a binding the expression does not use is no error */
    bool sparse;       /* hess: also the sparse Hessian's pattern and nonzeros */
    int order;         /* check: 1 (gradient) or 2 (Hessian) */
    size_t expr_nodes; /* nodes the expression itself recorded on tape */
    tg_gradcheck_opts gc;
    expr_env *env;
    tg_tape *tape;
} cmd;

#define NO_POS ((size_t)-1) /* an error without a position in the expression */

static void show_position(const char *src, size_t pos, size_t len);

/* Reports an error and returns EXIT_USAGE: one line on stderr, then the
 * expression with a caret under [pos, pos + len) unless pos is NO_POS; with
 * --json, the object {"error": MESSAGE, "column": N} (column only with a
 * position) on one line instead. */
static int vfail_at(const cmd *c, size_t pos, size_t len, const char *fmt, va_list ap) {
    char msg[1024];
    vsnprintf(msg, sizeof msg, fmt, ap);
    if (c->json) {
        fputs("{\"error\": ", stderr);
        tg_json_string(stderr, msg);
        if (pos != NO_POS) fprintf(stderr, ", \"column\": %zu", expr_column(c->expr, pos));
        fputs("}\n", stderr);
    } else {
        fprintf(stderr, "tapegrad %s: %s\n", c->name, msg);
        if (pos != NO_POS) show_position(c->expr, pos, len);
    }
    return EXIT_USAGE;
}

static int fail_at(const cmd *c, size_t pos, size_t len, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 4, 5)))
#endif
    ;
static int fail_at(const cmd *c, size_t pos, size_t len, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    int rc = vfail_at(c, pos, len, fmt, ap);
    va_end(ap);
    return rc;
}

/* An error at the source of tape node i (without a position when the
 * node has none: one the expression did not write). */
static int fail_at_node(const cmd *c, size_t i, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 3, 4)))
#endif
    ;
static int fail_at_node(const cmd *c, size_t i, const char *fmt, ...) {
    size_t pos = NO_POS, len = 0;
    expr_site(c->env, i, &pos, &len);
    va_list ap;
    va_start(ap, fmt);
    int rc = vfail_at(c, pos, len, fmt, ap);
    va_end(ap);
    return rc;
}

/* An error without a position. */
static int die(const cmd *c, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;
static int die(const cmd *c, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    int rc = vfail_at(c, NO_POS, 0, fmt, ap);
    va_end(ap);
    return rc;
}

/* A number as JSON: %.17g (reads back exactly), null when not finite. */
static void json_num(double v) {
    if (isfinite(v))
        printf("%.17g", v);
    else
        printf("null");
}

/* The shortest %g form of v that reads back as the same double, without an
 * exponent for numbers of up to 16 integer digits (1000, not 1e+03). */
static const char *fmt_num(double v, char *buf, size_t len) {
    if (!isfinite(v)) {
        snprintf(buf, len, "%s", isnan(v) ? "NaN" : v > 0 ? "inf" : "-inf");
        return buf;
    }
    int digits = 1;
    for (; digits < 17; digits++) {
        snprintf(buf, len, "%.*g", digits, v);
        if (strtod(buf, NULL) == v || !isfinite(v)) break;
    }
    int mag = v != 0 && isfinite(v) ? (int)floor(log10(fabs(v))) : 0;
    if (mag >= digits && mag < 16) digits = mag + 1;
    snprintf(buf, len, "%.*g", digits, v);
    return buf;
}

/* ---------------------------------------------------------------- help -- */

/* The registered ops of one arity, wrapped, indented to `indent`. */
static void list_ops(FILE *f, int arity, int indent) {
    int col = indent;
    bool first = true;
    for (int i = 0; i < tg_op_count(); i++) {
        const tg_op *op = tg_op_at(i);
        if (!op || op->arity != arity) continue;
        int w = (int)strlen(op->name) + 1;
        if (col + w > 78 && !first) {
            fprintf(f, "\n%*s", indent, "");
            col = indent;
        }
        fprintf(f, "%s ", op->name);
        col += w;
        first = false;
    }
    fputc('\n', f);
}

static void help_expressions(FILE *f) {
    fputs("expressions:\n"
          "  numbers     3  -2.5  1e-3  .5  (decimal; a leading - is part of the number)\n"
          "  constants   pi e  (they cannot be bound as variables)\n"
          "  variables   letters, digits and _, not starting with a digit: x  w_1  Tau\n"
          "  operators   from loosest to tightest: the comparisons < <= > >= == !=\n"
          "              (1 when true, 0 when false; no gradient flows through them;\n"
          "              a < b < c is an error), then + -, then * /, then unary - and +,\n"
          "              then ^, which groups to the right (2^3^2 = 2^9); -x^2 = -(x^2).\n"
          "              Parentheses group; spaces are ignored. x**y is an error: x^y.\n"
          "  functions   NAME(ARG, ...): any op of tapegrad's registry, found by name,\n"
          "              so ops added to the library are callable at once:\n",
          f);
    for (int arity = 1; arity <= 3; arity++) {
        bool any = false;
        for (int i = 0; i < tg_op_count() && !any; i++) any = tg_op_at(i)->arity == arity;
        if (!any) continue;
        fprintf(f, "              %d argument%s ", arity, arity == 1 ? ": " : "s:");
        list_ops(f, arity, 27);
    }
    int n;
    const expr_name *names = expr_names(&n);
    for (int i = 0; i < n; i++)
        if (names[i].nargs && tg_op_find(names[i].op))
            fprintf(f, "              %s(%s) is %s(%s)\n", names[i].name,
                    names[i].nargs == 2 ? "a, b" : "...", names[i].op,
                    names[i].nargs == 2 ? "a, b" : "...");
    if (tg_op_find("where") && tg_op_find("gt"))
        fputs("              e.g. where(x > 0, x, 0.1*x) is x when x > 0, else 0.1*x\n", f);
    fputs("              (ops on tensors, such as matmul or sum, fail on scalars with a\n"
          "              message.) x^p is pow(x, p); its derivative in p needs x > 0.\n",
          f);
}

static void help_grad(FILE *f) {
    fputs("usage: tapegrad grad [--json] [--allow-unused] [--dot FILE] EXPR [NAME=VALUE ...]\n"
          "\n"
          "Evaluates EXPR at the point given by the NAME=VALUE bindings and prints its\n"
          "value and its partial derivative with respect to every variable, computed by\n"
          "reverse-mode automatic differentiation (one backward sweep of the tape):\n"
          "\n"
          "  $ tapegrad grad '(x+y)*z' x=-2 y=5 z=-4\n"
          "  f = -12\n"
          "  df/dx = -4\n"
          "  df/dy = -4\n"
          "  df/dz = 3\n"
          "\n"
          "Variables are float64 scalars, listed in order of first appearance in EXPR.\n"
          "Every variable needs a value and every value given must be used (unless\n"
          "--allow-unused). Numbers print in the shortest form that reads back as the\n"
          "same double.\n"
          "\n"
          "options:\n"
          "  --json       print exactly one JSON object instead:\n"
          "                 {\"value\": V, \"grad\": {\"x\": GX, ...}}\n"
          "               every number with 17 significant digits (reads back exactly);\n"
          "               an error is then the object {\"error\": MESSAGE, \"column\": N}\n"
          "               on stderr (column: where in EXPR, when the error has a place)\n"
          "  --allow-unused  a binding EXPR does not use is no error (for exploring); its\n"
          "               derivative, 0, is listed after the others\n"
          "  --dot FILE   also write the tape as a Graphviz DOT graph to FILE: one box per\n"
          "               node with its op, value (green) and gradient (red), edges from\n"
          "               inputs to outputs. Render it: dot -Tpng FILE -o graph.png\n"
          "  -h, --help   this help\n"
          "  --           the end of the options (for an EXPR starting with --)\n"
          "\n",
          f);
    help_expressions(f);
    fputs("\n"
          "exit status: 0 on success; 2 on any error, with one message on stderr: a\n"
          "usage error, a syntax error (the expression is shown with a caret under the\n"
          "position), an unknown function (with the closest name: did you mean ...?),\n"
          "an unbound or unused variable, a malformed number, or a value or derivative\n"
          "that is not finite (log(-1) is NaN, 1/0 is inf, sqrt has no derivative at 0).\n"
          "See also: tapegrad check --help; docs/cli.md.\n",
          f);
}

static void help_check(FILE *f) {
    fputs("usage: tapegrad check [--order 1|2] [--eps H] [--atol A] [--rtol R] [--json]\n"
          "                      [--allow-unused] [--dot FILE] EXPR [NAME=VALUE ...]\n"
          "\n"
          "Checks the derivatives of `tapegrad grad` against finite differences: runs\n"
          "tg_gradcheck, which compares each partial derivative from the tape (analytic)\n"
          "with the central difference (f(x+H) - f(x-H)) / 2H computed in float64\n"
          "(numeric), and prints both per variable, then PASS or FAIL:\n"
          "\n"
          "  $ tapegrad check 'sin(x)*y' x=0.5 y=2\n"
          "\n"
          "A derivative passes when |analytic - numeric| <= A + R * |numeric|. At a kink\n"
          "(relu or abs at 0) the one-sided slopes differ; the derivative passes when it\n"
          "lies between them, and the line says so.\n"
          "\n"
          "With --order 2 it checks second derivatives instead: runs tg_gradgradcheck,\n"
          "which records the gradient with tg_grad (each op's vjp rule), sweeps it\n"
          "backward for every entry d2f/da db of the Hessian (analytic) and compares it\n"
          "with the central difference of df/da in b (numeric); then it compares the\n"
          "recorded gradient with the backward kernels' (a rule wrong by a constant\n"
          "factor has a consistent derivative):\n"
          "\n"
          "  $ tapegrad check --order 2 'x^3*y + sin(x)*y^2' x=0.7 y=-1.3\n"
          "\n"
          "options:\n"
          "  --order N    1: first derivatives (the default); 2: the Hessian\n"
          "  --eps H      the step of the differences (default 1e-6). Central differences\n"
          "               err by about H^2 |f'''| / 6 (truncation) plus 1e-16 |f| / H\n"
          "               (rounding); H near 1e-5 * scale balances them.\n"
          "  --atol A     absolute tolerance (default 1e-5)\n"
          "  --rtol R     relative tolerance (default 1e-3)\n"
          "  --json       print one JSON object instead (docs/cli.md describes it):\n"
          "                 {\"value\": V, \"passed\": B, \"failed\": N, \"eps\": H,\n"
          "                  \"atol\": A, \"rtol\": R, \"grad\": {\"x\": {\"analytic\": G,\n"
          "                  \"numeric\": G, \"abs_error\": E, \"ok\": B, \"kink\": B}, ...},\n"
          "                  \"unused\": [NAME, ...]}\n"
          "               with --order 2: {\"value\": V, \"order\": 2, \"passed\": B, ...,\n"
          "                  \"hessian\": {\"x\": {\"y\": {\"analytic\": H, ...}, ...}, ...},\n"
          "                  \"grad_mismatch\": null, \"unused\": [...]}\n"
          "               errors as for grad --json\n"
          "  --allow-unused  a binding EXPR does not use is no error; it is not checked\n"
          "  --dot FILE   also write the tape as a Graphviz DOT graph (see grad --help)\n"
          "  -h, --help   this help\n"
          "  --           the end of the options\n"
          "\n",
          f);
    help_expressions(f);
    fputs("\n"
          "exit status: 0 when every derivative passes, 1 when one fails, 2 on an error\n"
          "(the same errors as tapegrad grad, and with --order 2 as tapegrad hess; see\n"
          "tapegrad grad --help).\n"
          "See also: docs/gradcheck.md, docs/higher-order.md, docs/cli.md.\n",
          f);
}

static void help_hess(FILE *f) {
    fputs("usage: tapegrad hess [--json] [--allow-unused] [--sparse] [--dot FILE] EXPR\n"
          "                     [NAME=VALUE ...]\n"
          "\n"
          "As tapegrad grad, and then the Hessian matrix of second derivatives, computed\n"
          "by tg_hessian: the gradient recorded on the tape as an expression (tg_grad,\n"
          "each op's vjp rule), then one backward sweep of it per variable:\n"
          "\n"
          "  $ tapegrad hess 'x^2*y' x=3 y=2\n"
          "  f = 18\n"
          "  df/dx = 12\n"
          "  df/dy = 9\n"
          "  hessian (row a, column b: d2f/da db):\n"
          "        x   y\n"
          "    x   4   6\n"
          "    y   6   0\n"
          "\n"
          "Entry (a, b) is the derivative in b of df/da. Variables are float64 scalars,\n"
          "rows and columns in order of first appearance in EXPR.\n"
          "\n"
          "options:\n"
          "  --json       print exactly one JSON object instead:\n"
          "                 {\"value\": V, \"grad\": {\"x\": GX, ...},\n"
          "                  \"hessian\": {\"x\": {\"x\": HXX, \"y\": HXY}, \"y\": {...}}}\n"
          "               every number with 17 significant digits (reads back exactly);\n"
          "               errors as for grad --json\n"
          "  --allow-unused  a binding EXPR does not use is no error; its row and column,\n"
          "               all 0, come after the others\n"
          "  --sparse     also the Hessian by the sparse driver (tapegrad/sparse.h): its\n"
          "               pattern found on the recording, the colours (Hessian-vector\n"
          "               products) it took, and the nonzeros of the lower triangle,\n"
          "               (for 'x^2*y': the lines below; d2f/dy2 is structurally 0)\n"
          "                 sparse hessian: 2 nonzeros in 2 colours\n"
          "                   (x, x) = 4\n"
          "                   (y, x) = 6\n"
          "               with --json, a member \"sparse\": {\"colors\": K, \"nonzeros\":\n"
          "               [[\"x\", \"x\", 4], ...]} (row, column, value)\n"
          "  --dot FILE   also write the tape of f as a Graphviz DOT graph (see grad --help)\n"
          "  -h, --help   this help\n"
          "  --           the end of the options\n"
          "\n",
          f);
    help_expressions(f);
    fputs("\n"
          "exit status: 0 on success; 2 on an error: those of tapegrad grad (see tapegrad\n"
          "grad --help), a second derivative that is not finite (the op is named:\n"
          "x^1.5 at 0), or an op on the path without a rule for second derivatives\n"
          "(tg_op.vjp; the op is named).\n"
          "See also: tapegrad check --order 2; docs/higher-order.md, docs/cli.md.\n",
          f);
}

/* ------------------------------------------------------------ arguments -- */

/* A number from the command line: the whole string, finite. */
static int parse_value(const cmd *c, const char *what, const char *s, double *out) {
    const char *why = NULL;
    long len = expr_scan_number(s, 1, &why);
    if (len <= 0 || s[len]) {
        if (!*s) return die(c, "missing value for %s", what);
        return die(c, "bad number for %s: '%.40s%s'%s%s", what, s, strlen(s) > 40 ? "..." : "",
                   why ? ": " : "", why ? why : "");
    }
    double v;
    if (expr_number_value(s, (size_t)len, &v))
        return die(c, "number for %s is out of range: '%.40s%s'", what, s,
                   strlen(s) > 40 ? "..." : "");
    *out = v;
    return EXIT_OK;
}

static int parse_binding(cmd *c, const char *arg) {
    const char *eq = strchr(arg, '=');
    if (!eq) {
        if (expr_is_ident(arg, strlen(arg)))
            return die(c, "missing value for variable '%.60s' (write %.60s=NUMBER)", arg, arg);
        return die(c, "expected NAME=VALUE after the expression, got '%.60s%s'", arg,
                   strlen(arg) > 60 ? "..." : "");
    }
    size_t len = (size_t)(eq - arg);
    if (!len) return die(c, "missing variable name in '%.60s'", arg);
    if (!expr_is_ident(arg, len))
        return die(c,
                   "bad variable name '%.*s' in '%.60s' (use letters, digits and _, "
                   "not starting with a digit)",
                   (int)(len > 60 ? 60 : len), arg, arg);
    char what[96];
    snprintf(what, sizeof what, "variable '%.*s'", (int)(len > 64 ? 64 : len), arg);
    double v;
    if (parse_value(c, what, eq + 1, &v)) return EXIT_USAGE;
    int rc = expr_env_bind(c->env, arg, len, v);
    if (rc == -1) return die(c, "variable '%.*s' is given twice", (int)(len > 60 ? 60 : len), arg);
    if (rc == -3) {
        char b[32];
        int n;
        const expr_name *k = expr_names(&n);
        while (strlen(k->name) != len || memcmp(k->name, arg, len)) k++;
        return die(c, "'%s' is a constant (%s) and cannot be bound: name the variable otherwise",
                   k->name, fmt_num(k->value, b, sizeof b));
    }
    if (rc) return die(c, "out of memory");
    return EXIT_OK;
}

/* An option's value: from "--name=value" or the next argument. */
static const char *option_value(const cmd *c, char **argv, int argc, int *i, const char *eq,
                                const char *name) {
    if (eq) return eq + 1;
    if (*i + 1 >= argc) {
        die(c, "option --%s needs a value", name);
        return NULL;
    }
    return argv[++*i];
}

static int parse_args(cmd *c, int argc, char **argv) {
    bool check = c->kind == CHECK;
    bool options = true;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (options && !strcmp(a, "--")) {
            options = false;
            continue;
        }
        if (options && a[0] == '-' && a[1] == '-') {
            const char *eq = strchr(a, '=');
            size_t len = eq ? (size_t)(eq - a - 2) : strlen(a + 2);
            char name[32];
            if (len >= sizeof name) len = sizeof name - 1;
            memcpy(name, a + 2, len);
            name[len] = '\0';
            if (!strcmp(name, "json") && !eq) {
                c->json = true;
            } else if (!strcmp(name, "allow-unused") && !eq) {
                c->allow_unused = true;
            } else if (c->kind == HESS && !strcmp(name, "sparse") && !eq) {
                c->sparse = true;
            } else if (!strcmp(name, "dot")) {
                if (!(c->dot = option_value(c, argv, argc, &i, eq, name))) return EXIT_USAGE;
                if (!*c->dot) return die(c, "option --dot needs a file name");
            } else if (check && (!strcmp(name, "eps") || !strcmp(name, "atol") ||
                                 !strcmp(name, "rtol"))) {
                const char *v = option_value(c, argv, argc, &i, eq, name);
                char what[40];
                snprintf(what, sizeof what, "--%s", name);
                double x;
                if (!v || parse_value(c, what, v, &x)) return EXIT_USAGE;
                if (name[0] == 'e' ? !(x > 0) : !(x >= 0))
                    return die(c, "--%s must be %s, got %s", name,
                               name[0] == 'e' ? "positive" : "0 or more", v);
                *(name[0] == 'e' ? &c->gc.eps : name[0] == 'a' ? &c->gc.atol : &c->gc.rtol) = x;
            } else if (check && !strcmp(name, "order")) {
                const char *v = option_value(c, argv, argc, &i, eq, name);
                if (!v) return EXIT_USAGE;
                if (strcmp(v, "1") && strcmp(v, "2"))
                    return die(c, "--order must be 1 or 2, got '%.40s'", v);
                c->order = v[0] - '0';
            } else {
                return die(c,
                           "unknown option '%.40s%s' (see tapegrad %s --help; an expression "
                           "starting with -- goes after the argument --)",
                           a, strlen(a) > 40 ? "..." : "", c->name);
            }
        } else if (!c->expr) {
            const char *eq = strchr(a, '=');
            if (eq && expr_is_ident(a, (size_t)(eq - a)))
                return die(c, "missing expression: '%.60s' is a variable binding; the "
                              "expression comes first",
                           a);
            c->expr = a;
        } else if (parse_binding(c, a)) {
            return EXIT_USAGE;
        }
    }
    if (!c->expr) return die(c, "missing expression (see tapegrad %s --help)", c->name);
    return EXIT_OK;
}

/* --------------------------------------------------------------- errors -- */

/* The expression on one line (a window of it around pos when it is long),
 * then a caret under [pos, pos + len). */
static void show_position(const char *src, size_t pos, size_t len) {
    size_t n = strlen(src), start = 0, end = n;
    if (n > 100) {
        start = pos > 50 ? pos - 50 : 0;
        end = pos + 50 < n ? pos + 50 : n;
        while (start > 0 && ((unsigned char)src[start] & 0xC0) == 0x80) start--;
        while (end < n && ((unsigned char)src[end] & 0xC0) == 0x80) end++;
    }
    fputs(start ? "  ..." : "  ", stderr);
    size_t col = start ? 3 : 0;
    for (size_t i = start; i < end; i++) {
        unsigned char ch = (unsigned char)src[i];
        fputc(ch < 0x20 || ch == 0x7f ? ' ' : ch, stderr);
        if (i < pos) col += (ch & 0xC0) != 0x80;
    }
    fputs(end < n ? "...\n  " : "\n  ", stderr);
    for (size_t i = 0; i < col; i++) fputc(' ', stderr);
    fputc('^', stderr);
    size_t width = 0;
    for (size_t i = pos; i < pos + len && i < end; i++)
        width += ((unsigned char)src[i] & 0xC0) != 0x80;
    for (size_t i = 1; i < width; i++) fputc('~', stderr);
    fputc('\n', stderr);
}

/* The known name closest to the unknown one at [pos, pos + len) of the
 * expression: a function (the registry's ops and the language's other
 * spellings of them) or, for a variable, a variable given a value (first:
 * 'Y' is more likely y than e) or a constant. NULL when none is close. */
static const char *closest_name(const cmd *c, size_t pos, size_t len, bool function) {
    char word[TG_SUGGEST_MAX_LEN + 1];
    if (len > TG_SUGGEST_MAX_LEN) return NULL;
    memcpy(word, c->expr + pos, len);
    word[len] = '\0';
    tg__suggest s;
    tg__suggest_init(&s, word);
    for (int i = 0; function && i < tg_op_count(); i++)
        tg__suggest_consider(&s, tg_op_at(i)->name);
    for (int i = 0; !function && expr_env_bound_at(c->env, i); i++)
        tg__suggest_consider(&s, expr_env_bound_at(c->env, i));
    int n;
    const expr_name *names = expr_names(&n);
    for (int i = 0; i < n; i++)
        if (function ? names[i].nargs && tg_op_find(names[i].op) : !names[i].nargs)
            tg__suggest_consider(&s, names[i].name);
    return tg__suggest_best(&s);
}

static int expr_failed(const cmd *c, const expr_error *e) {
    bool shapes = e->code == TG_ERR_SHAPE || e->code == TG_ERR_ARG;
    const char *near = NULL;
    if (e->code == EXPR_UNKNOWN_FUNC || e->code == EXPR_UNBOUND)
        near = closest_name(c, e->pos, e->len, e->code == EXPR_UNKNOWN_FUNC);
    char hint[96] = "";
    if (near)
        snprintf(hint, sizeof hint, " (%sdid you mean %s?)", e->code == EXPR_UNBOUND ? "or " : "",
                 near);
    else if (e->code == EXPR_UNKNOWN_FUNC)
        snprintf(hint, sizeof hint, " (tapegrad %s --help lists them)", c->name);
    else if (shapes)
        snprintf(hint, sizeof hint, " (the variables here are scalars)");
    return fail_at(c, e->pos, e->len, "%s%s%s", e->code == EXPR_SYNTAX ? "syntax error: " : "",
                   e->msg, hint);
}

/* A node's operation with its operands' values: "log(-1)", "1 / 0", "-(2)",
 * "clamp(2, 0, 1)". */
static void describe_op(const tg_node *n, char *buf, size_t len) {
    const char *op = tg_node_op_name(n), *sym = expr_operator_symbol(op);
    int arity = tg_node_arity(n);
    char v[3][32];
    for (int k = 0; k < arity && k < 3; k++)
        fmt_num(tg_value_scalar(tg_node_input(n, k)), v[k], sizeof v[k]);
    if (arity == 2 && sym)
        snprintf(buf, len, "%s%s%s %s %s%s%s", v[0][0] == '-' ? "(" : "", v[0],
                 v[0][0] == '-' ? ")" : "", sym, v[1][0] == '-' ? "(" : "", v[1],
                 v[1][0] == '-' ? ")" : "");
    else if (arity == 3)
        snprintf(buf, len, "%s(%s, %s, %s)", op, v[0], v[1], v[2]);
    else if (arity == 2)
        snprintf(buf, len, "%s(%s, %s)", op, v[0], v[1]);
    else if (!strcmp(op, "neg"))
        snprintf(buf, len, "-(%s)", v[0]);
    else
        snprintf(buf, len, "%s(%s)", op, v[0]);
}

static const char *nonfinite_name(double v) { return isnan(v) ? "NaN" : v > 0 ? "inf" : "-inf"; }

/* Operand k of a node of two or three operands, as a derivative's message
 * names it: "the base", "the right operand", "the second argument". */
static const char *operand_name(const tg_node *n, int k) {
    const char *op = tg_node_op_name(n);
    if (!strcmp(op, "pow")) return k ? "the exponent" : "the base";
    if (expr_operator_symbol(op)) return k ? "the right operand" : "the left operand";
    return k == 0 ? "the first argument" : k == 1 ? "the second argument" : "the third argument";
}

/* The value is not finite: names the first op whose operands are finite and
 * whose result is not. */
static int value_failed(const cmd *c, double value) {
    tg_tape *t = c->tape;
    for (size_t i = 0; i < tg_tape_size(t); i++) {
        tg_node *n = tg_tape_node(t, i);
        int arity = tg_node_arity(n);
        double v = tg_value_scalar(n);
        if (!arity || isfinite(v)) continue;
        bool inputs_ok = true;
        for (int k = 0; k < arity; k++) inputs_ok &= isfinite(tg_value_scalar(tg_node_input(n, k))) != 0;
        if (!inputs_ok) continue;
        const char *op = tg_node_op_name(n);
        char what[128];
        describe_op(n, what, sizeof what);
        char why[96];
        double b = arity == 2 ? tg_value_scalar(tg_node_input(n, 1)) : 0;
        if (isnan(v) && !strcmp(op, "pow"))
            snprintf(why, sizeof why, "a negative base needs an integer exponent");
        else if (isnan(v))
            snprintf(why, sizeof why, expr_operator_symbol(op) ? "undefined" : "outside the domain of %s",
                     op);
        else if (!strcmp(op, "div") && b == 0)
            snprintf(why, sizeof why, "division by zero");
        else if (!strcmp(op, "log") || (!strcmp(op, "pow") && b < 0))
            snprintf(why, sizeof why, "a pole");
        else
            snprintf(why, sizeof why, "overflow");
        return fail_at_node(c, i, "domain error: %s is %s (%s)", what, nonfinite_name(v), why);
    }
    return die(c, "the value of the expression is %s", nonfinite_name(value));
}

/* Node n's op alone on the new tape s, at the same operand values: an
 * operand on a variable's path becomes a variable (wrt[j], operand which[j],
 * j < *m), any other a constant. Returns the op's node, whose faults show in
 * s's sticky status. */
static tg_node *op_alone(tg_tape *s, const tg_node *n, tg_node **wrt, int *which, int *m) {
    int arity = tg_node_arity(n);
    tg_node *in[3] = {NULL, NULL, NULL};
    *m = 0;
    for (int k = 0; k < arity && k < 3; k++) {
        const tg_node *x = tg_node_input(n, k);
        double v = tg_value_scalar(x);
        in[k] = tg_requires_grad(x) ? tg_scalar(s, v) : tg_const(s, v);
        if (tg_requires_grad(x)) which[*m] = k, wrt[(*m)++] = in[k];
    }
    return tg_call_n(tg_node_op_name(n), arity, in);
}

/* A derivative is not finite: names the first op whose local derivative
 * with respect to an operand on a variable's path is not finite. */
static int grad_failed(const cmd *c, const char *var, double g) {
    tg_tape *t = c->tape;
    for (size_t i = 0; i < tg_tape_size(t); i++) {
        tg_node *n = tg_tape_node(t, i);
        int arity = tg_node_arity(n);
        if (!arity || !tg_requires_grad(n)) continue;
        tg_tape *s = tg_tape_new();
        if (!s) return die(c, "out of memory");
        tg_node *vars[3];
        int which[3], m;
        tg_backward(op_alone(s, n, vars, which, &m));
        int bad = -1;
        double d = 0;
        for (int j = 0; j < m && bad < 0 && !tg_status(s); j++) {
            d = tg_grad_scalar(vars[j]);
            if (!isfinite(d)) bad = which[j];
        }
        tg_tape_free(s);
        if (bad < 0) continue;
        char what[128];
        describe_op(n, what, sizeof what);
        char wrt[64] = "";
        if (arity > 1)
            snprintf(wrt, sizeof wrt, " with respect to %s", operand_name(n, bad));
        return fail_at_node(c, i,
                            "not differentiable here: the derivative of %s%s is %s, "
                            "so df/d%s is %s",
                            what, wrt, nonfinite_name(d), var, nonfinite_name(g));
    }
    return die(c, "df/d%s is %s (the gradient overflows)", var, nonfinite_name(g));
}

/* "d2f/dx^2" or "d2f/dx dy": entry (a, b) of the Hessian. */
static void second_name(const cmd *c, int a, int b, char *buf, size_t len) {
    const char *na = expr_env_name(c->env, a), *nb = expr_env_name(c->env, b);
    if (a == b)
        snprintf(buf, len, "d2f/d%.60s^2", na);
    else
        snprintf(buf, len, "d2f/d%.60s d%.60s", na, nb);
}

/* tg_hessian failed: an op on the path has no vjp rule (the sweep of
 * tg_grad runs backward from the output, so the last such op is the one it
 * met), or the tape failed otherwise. */
static int hessian_refused(const cmd *c) {
    for (size_t i = c->expr_nodes; i-- > 0;) {
        tg_node *n = tg_tape_node(c->tape, i);
        if (!tg_node_arity(n) || !tg_requires_grad(n)) continue;
        const tg_op *op = tg_op_find(tg_node_op_name(n));
        if (!op || op->vjp || op->jvp) continue;
        return fail_at_node(c, i,
                            "no second derivatives: op '%s' has no differentiable backward rule "
                            "(tg_op.vjp) yet, so its derivative cannot be differentiated",
                            op->name);
    }
    return die(c, "%s", tg_status_message(c->tape));
}

/* Entry (a, b) of the Hessian is not finite (value hv): names the first op
 * whose own second derivative with respect to operands on a variable's path
 * is not finite, found by tg_hessian of the op alone on a scratch tape. */
static int hessian_failed(const cmd *c, int a, int b, double hv) {
    char entry[160];
    second_name(c, a, b, entry, sizeof entry);
    for (size_t i = 0; i < c->expr_nodes; i++) {
        tg_node *n = tg_tape_node(c->tape, i);
        int arity = tg_node_arity(n);
        if (!arity || !tg_requires_grad(n)) continue;
        tg_tape *s = tg_tape_new();
        if (!s) return die(c, "out of memory");
        tg_node *wrt[3];
        int which[3], m;
        tg_node *y = op_alone(s, n, wrt, which, &m);
        double h[9];
        int bad = -1;
        if (!tg_hessian(y, m, wrt, h))
            for (int e = 0; e < m * m && bad < 0; e++)
                if (!isfinite(h[e])) bad = e;
        tg_tape_free(s);
        if (bad < 0) continue;
        char what[128], wrt_text[96] = "";
        describe_op(n, what, sizeof what);
        int p = which[bad / m], q = which[bad % m];
        if (arity > 1 && p == q)
            snprintf(wrt_text, sizeof wrt_text, " with respect to %s", operand_name(n, p));
        else if (arity > 1)
            snprintf(wrt_text, sizeof wrt_text, " with respect to %s and %s", operand_name(n, p),
                     operand_name(n, q));
        return fail_at_node(c, i,
                            "not twice differentiable here: the second derivative of %s%s is %s, "
                            "so %s is %s",
                            what, wrt_text, nonfinite_name(h[bad]), entry, nonfinite_name(hv));
    }
    return die(c, "%s is %s (the Hessian overflows)", entry, nonfinite_name(hv));
}

/* The Hessian of f with respect to the variables used, nv x nv row-major in
 * a new array (*out; NULL when there are no variables), every entry finite. */
static int hessian_of(const cmd *c, tg_node *f, double **out) {
    int nv = expr_env_used(c->env);
    *out = NULL;
    if (!nv) return EXIT_OK;
    double *h = malloc(sizeof *h * (size_t)nv * (size_t)nv);
    tg_node **wrt = malloc(sizeof *wrt * (size_t)nv);
    if (!h || !wrt) {
        free(h);
        free(wrt);
        return die(c, "out of memory");
    }
    for (int i = 0; i < nv; i++) wrt[i] = expr_env_node(c->env, i);
    int rc = tg_hessian(f, nv, wrt, h);
    free(wrt);
    if (rc == TG_ERR_STATE)
        rc = hessian_refused(c);
    else if (rc)
        rc = die(c, "the gradient could not be recorded for second derivatives: %s",
                 tg_status_message(c->tape));
    for (int e = 0; !rc && e < nv * nv; e++)
        if (!isfinite(h[e])) rc = hessian_failed(c, e / nv, e % nv, h[e]);
    if (rc)
        free(h);
    else
        *out = h;
    return rc;
}

/* ------------------------------------------------------------- building -- */

static const char *dot_name(const tg_node *n, void *ctx) {
    return expr_env_name_of(ctx, n);
}

/* Writes the tape's picture to path as a save (safe_file.h): atomically
 * over a regular file, never over a FIFO. */
static int write_dot(const cmd *c) {
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    if (!f) return die(c, "out of memory");
    char title[256];
    snprintf(title, sizeof title, "f = %.200s", c->expr);
    tg_dot_opts o = {.name = dot_name, .ctx = c->env, .title = title};
    int rc = tg_dot_write_with(c->tape, f, &o);
    if (fclose(f) && !rc) rc = TG_ERR_NOMEM;
    tg_error e;
    if (rc) {
        free(buf);
        return die(c, "cannot write %s: out of memory", c->dot);
    }
    rc = tg__save_buffer(c->dot, buf, len, &e);
    free(buf);
    if (rc) return die(c, "cannot write %s", e.message);
    return EXIT_OK;
}

/* Parses, records, checks and sweeps the expression on c->tape. */
static int evaluate(cmd *c, tg_node **out) {
    expr_error err;
    tg_node *f = expr_build(c->expr, c->tape, c->env, NULL, 0, &err);
    if (!f) return expr_failed(c, &err);
    c->expr_nodes = tg_tape_size(c->tape);
    const char *unused = expr_env_unused(c->env);
    if (unused && !c->allow_unused)
        return die(c,
                   "variable '%.60s' is given but the expression does not use it "
                   "(--allow-unused allows it)",
                   unused);
    if (tg_numel(f) != 1) return die(c, "the expression's value is not a scalar");
    double v = tg_value_scalar(f);
    if (!isfinite(v)) return value_failed(c, v);
    if (tg_backward(f)) return die(c, "%s", tg_status_message(c->tape));
    for (int i = 0; i < expr_env_used(c->env); i++) {
        double g = tg_grad_scalar(expr_env_node(c->env, i));
        if (!isfinite(g)) return grad_failed(c, expr_env_name(c->env, i), g);
    }
    if (c->dot && write_dot(c)) return EXIT_USAGE;
    *out = f;
    return EXIT_OK;
}

/* A column of the Hessian's text form: v with a space in place of the sign
 * when it is not negative, so that the digits of a column line up. */
static const char *signed_num(double v, char *buf, size_t len) {
    char b[32];
    snprintf(buf, len, "%s%s", signbit(v) ? "" : " ", fmt_num(v, b, sizeof b));
    return buf;
}

/* The Hessian as an aligned matrix, names on the left and on top. */
static int print_matrix(int n, const char *const *names, const double *h, int nh) {
    size_t wname = 0, *wcol = calloc((size_t)n, sizeof *wcol);
    char b[40];
    if (!wcol) return -1;
    for (int j = 0; j < n; j++) {
        wcol[j] = strlen(names[j]) + 1;
        if (strlen(names[j]) > wname) wname = strlen(names[j]);
        for (int i = 0; i < n; i++) {
            double v = i < nh && j < nh ? h[i * nh + j] : 0.0;
            size_t w = strlen(signed_num(v, b, sizeof b));
            if (w > wcol[j]) wcol[j] = w;
        }
    }
    printf("hessian (row a, column b: d2f/da db):\n  %*s", (int)wname, "");
    for (int j = 0; j < n; j++)
        printf("  %s%-*s", " ", j + 1 < n ? (int)wcol[j] - 1 : 0, names[j]);
    printf("\n");
    for (int i = 0; i < n; i++) {
        printf("  %-*s", (int)wname, names[i]);
        for (int j = 0; j < n; j++) {
            double v = i < nh && j < nh ? h[i * nh + j] : 0.0;
            printf("  %-*s", j + 1 < n ? (int)wcol[j] : 0, signed_num(v, b, sizeof b));
        }
        printf("\n");
    }
    free(wcol);
    return 0;
}

/* --sparse: the Hessian of the used variables by the sparse driver, its
 * lower triangle's nonzeros by row. 0, or -1 after reporting the error. */
static int print_sparse(const cmd *c, tg_node *f, const char *const *names) {
    int nv = expr_env_used(c->env);
    tg_node **wrt = malloc(sizeof *wrt * (size_t)(nv + 1));
    if (!wrt) return die(c, "out of memory"), -1;
    for (int i = 0; i < nv; i++) wrt[i] = expr_env_node(c->env, i);
    tg_sparse *sp = NULL;
    tg_sparse_info in = {0};
    double *vals = NULL;
    int rc = nv ? tg_sparse_hessian_new(f, nv, wrt, &sp) : TG_OK;
    if (!rc && sp) {
        tg_sparse_info_get(sp, &in);
        vals = malloc(sizeof *vals * (size_t)(in.nnz + 1));
        rc = vals ? tg_sparse_eval(sp, vals) : TG_ERR_NOMEM;
    }
    if (rc) {
        tg_sparse_free(sp);
        free(vals);
        free(wrt);
        die(c, "sparse hessian: %s", rc == TG_ERR_NOMEM && !tg_status(c->tape)
                                         ? "out of memory" : tg_status_message(c->tape));
        return -1;
    }
    char b[32];
    if (c->json)
        printf(", \"sparse\": {\"colors\": %d, \"nonzeros\": [", in.colors);
    else
        printf("sparse hessian: %lld nonzeros in %d colours\n", (long long)in.nnz, in.colors);
    for (int64_t r = 0; r < in.rows; r++)
        for (int64_t q = in.row_start[r]; q < in.row_start[r + 1]; q++) {
            if (c->json) {
                printf("%s[", q ? ", " : "");
                tg_json_string(stdout, names[r]);
                printf(", ");
                tg_json_string(stdout, names[in.col[q]]);
                printf(", %.17g]", vals[q]);
            } else {
                printf("  (%s, %s) = %s\n", names[r], names[in.col[q]], fmt_num(vals[q], b, sizeof b));
            }
        }
    if (c->json) printf("]}");
    tg_sparse_free(sp);
    free(vals);
    free(wrt);
    return 0;
}

/* The value and the gradient (and with h, the Hessian of the used
 * variables): the variables in order of first appearance, then
 * (--allow-unused) the unused ones in binding order, whose derivatives are 0. */
static int print_derivatives(const cmd *c, tg_node *f, const double *h) {
    int nv = expr_env_used(c->env), nu = 0;
    while (expr_env_unused_at(c->env, nu)) nu++;
    const char **names = malloc(sizeof *names * (size_t)(nv + nu + 1));
    if (!names) return die(c, "out of memory");
    for (int i = 0; i < nv + nu; i++)
        names[i] = i < nv ? expr_env_name(c->env, i) : expr_env_unused_at(c->env, i - nv);
    char b[32];
    if (c->json)
        printf("{\"value\": %.17g, \"grad\": {", tg_value_scalar(f));
    else
        printf("f = %s\n", fmt_num(tg_value_scalar(f), b, sizeof b));
    for (int i = 0; i < nv + nu; i++) {
        double g = i < nv ? tg_grad_scalar(expr_env_node(c->env, i)) : 0.0;
        if (c->json) {
            printf("%s", i ? ", " : "");
            tg_json_string(stdout, names[i]);
            printf(": %.17g", g);
        } else {
            printf("df/d%s = %s\n", names[i], fmt_num(g, b, sizeof b));
        }
    }
    if (c->json) printf("}");
    if (c->kind == HESS && c->json) {
        printf(", \"hessian\": {");
        for (int i = 0; i < nv + nu; i++) {
            printf("%s", i ? ", " : "");
            tg_json_string(stdout, names[i]);
            printf(": {");
            for (int j = 0; j < nv + nu; j++) {
                printf("%s", j ? ", " : "");
                tg_json_string(stdout, names[j]);
                printf(": %.17g", i < nv && j < nv ? h[i * nv + j] : 0.0);
            }
            printf("}");
        }
        printf("}");
    } else if (c->kind == HESS && nv + nu && print_matrix(nv + nu, names, h, nv)) {
        free(names);
        return die(c, "out of memory");
    }
    if (c->sparse && print_sparse(c, f, names)) {
        free(names);
        return EXIT_USAGE;
    }
    if (c->json) printf("}\n");
    free(names);
    return fflush(stdout) || ferror(stdout) ? die(c, "cannot write the output") : EXIT_OK;
}

/* tg_gradcheck's build callback: the same expression over its input leaves.
 * At order 2 the one input is the vector of the variables, each variable
 * taken out of it as sum(v * e_k) (exact: products by 1 and 0, sums with
 * 0), so that tg_gradgradcheck checks the gradient vector's full Jacobian,
 * the Hessian, entry by entry rather than a random projection of it. */
typedef struct check_ctx {
    const char *expr;
    expr_env *env;
    int order, nv;
    tg_node **split; /* room for nv nodes */
} check_ctx;

static tg_node *build_expr(tg_tape *t, tg_node *const *inputs, int n, void *ctx) {
    check_ctx *cc = ctx;
    if (cc->order == 2) {
        int64_t len = cc->nv;
        for (int k = 0; k < cc->nv; k++) {
            tg_node *e = tg_input(t, TG_F64, 1, &len, NULL);
            if (tg_status(t)) return NULL;
            double *d = tg_value(e);
            for (int j = 0; j < cc->nv; j++) d[j] = j == k;
            cc->split[k] = tg_sum(tg_mul(inputs[0], e));
        }
        inputs = cc->split;
        n = cc->nv;
    }
    expr_error err;
    tg_node *f = expr_build(cc->expr, t, cc->env, inputs, n, &err);
    if (!f && !tg_status(t)) tg_fail(t, TG_ERR_ARG, "%s", err.msg);
    return f;
}

/* The label of compared pair e: "df/dx", or at order 2 "d2f/dx dy". */
static void entry_name(const cmd *c, int64_t e, char *buf, size_t len) {
    int nv = expr_env_used(c->env);
    if (c->order == 2)
        second_name(c, (int)(e / nv), (int)(e % nv), buf, len);
    else
        snprintf(buf, len, "df/d%.80s", expr_env_name(c->env, (int)e));
}

static void print_entry_json(const tg_gradcheck_elem *e) {
    printf("{\"analytic\": ");
    json_num(e->analytic);
    printf(", \"numeric\": ");
    json_num(e->numeric);
    printf(", \"abs_error\": ");
    json_num(e->abs_err);
    printf(", \"ok\": %s, \"kink\": %s}", e->ok ? "true" : "false", e->kink ? "true" : "false");
}

/* check --json: one object, the fields of docs/cli.md. */
static void print_check_json(const cmd *c, double value, const tg_gradcheck_elem *entries,
                             const tg_gradcheck_report *rep) {
    int nv = expr_env_used(c->env);
    printf("{\"value\": ");
    json_num(value);
    if (c->order == 2) printf(", \"order\": 2");
    printf(", \"passed\": %s, \"failed\": %lld, \"eps\": %.17g, \"atol\": %.17g, "
           "\"rtol\": %.17g, \"%s\": {",
           rep->passed ? "true" : "false", (long long)rep->failed, c->gc.eps, c->gc.atol,
           c->gc.rtol, c->order == 2 ? "hessian" : "grad");
    for (int i = 0; i < nv; i++) {
        printf("%s", i ? ", " : "");
        tg_json_string(stdout, expr_env_name(c->env, i));
        printf(": ");
        if (c->order == 1) {
            print_entry_json(&entries[i]);
            continue;
        }
        printf("{");
        for (int j = 0; j < nv; j++) {
            printf("%s", j ? ", " : "");
            tg_json_string(stdout, expr_env_name(c->env, j));
            printf(": ");
            print_entry_json(&entries[i * nv + j]);
        }
        printf("}");
    }
    printf("}");
    if (c->order == 2) {
        /* tg_gradgradcheck's comparison of the recorded gradient with the
         * kernels' sets worst with row -1 when they disagree. */
        const tg_gradcheck_elem *w = &rep->worst;
        printf(", \"grad_mismatch\": ");
        if (w->row == -1 && w->input >= 0) {
            printf("{\"variable\": ");
            tg_json_string(stdout, expr_env_name(c->env, (int)w->index));
            printf(", \"recorded\": ");
            json_num(w->analytic);
            printf(", \"kernel\": ");
            json_num(w->numeric);
            printf("}");
        } else {
            printf("null");
        }
    }
    printf(", \"unused\": [");
    for (int k = 0; expr_env_unused_at(c->env, k); k++) {
        printf("%s", k ? ", " : "");
        tg_json_string(stdout, expr_env_unused_at(c->env, k));
    }
    printf("]}\n");
}

/* check: tg_gradcheck of the expression, or at order 2 tg_gradgradcheck. */
static int run_check(cmd *c, tg_node *f) {
    int nv = expr_env_used(c->env);
    char b1[32], b2[32], b3[32], b4[32], b5[32];
    if (!nv) return die(c, "nothing to check: the expression has no variables");
    if (c->order == 2) { /* the Hessian's own errors first, as tapegrad hess reports them */
        double *h;
        if (hessian_of(c, f, &h)) return EXIT_USAGE;
        free(h);
    }
    int nin = c->order == 2 ? 1 : nv;
    int64_t nent = c->order == 2 ? (int64_t)nv * nv : nv;
    tg_gradcheck_input *in = calloc((size_t)nin, sizeof *in);
    double *values = calloc((size_t)nv, sizeof *values);
    tg_gradcheck_elem *entries = calloc((size_t)nent, sizeof *entries);
    tg_node **split = calloc((size_t)nv, sizeof *split);
    size_t width = 8;
    int rc = EXIT_USAGE;
    if (!in || !values || !entries || !split) {
        die(c, "out of memory");
        goto done;
    }
    for (int i = 0; i < nv; i++) {
        values[i] = expr_env_value(c->env, i);
        if (c->order == 1)
            in[i] = (tg_gradcheck_input){.dtype = TG_F64, .ndim = 0, .data = &values[i]};
    }
    if (c->order == 2) {
        in[0] = (tg_gradcheck_input){.dtype = TG_F64, .ndim = 1, .shape = {nv}, .data = values};
        if (c->gc.max_jacobian < nv) c->gc.max_jacobian = nv; /* every row of the Hessian */
    }
    for (int64_t e = 0; e < nent; e++) {
        char name[200];
        entry_name(c, e, name, sizeof name);
        if (strlen(name) + 2 > width) width = strlen(name) + 2;
    }
    double value = tg_value_scalar(f);
    /* The parser's nodes now belong to gradcheck's tapes; only names stay valid. */
    c->gc.entries = entries;
    c->gc.max_entries = nent;
    check_ctx cc = {c->expr, c->env, c->order, nv, split};
    tg_gradcheck_report rep;
    if ((c->order == 2 ? tg_gradgradcheck : tg_gradcheck)(build_expr, nin, in, &cc, &c->gc,
                                                          &rep) != TG_OK) {
        die(c, "the check could not run: %s", rep.message);
        goto done;
    }
    rc = rep.passed ? EXIT_OK : EXIT_FAIL;
    if (c->json) {
        print_check_json(c, value, entries, &rep);
        goto written;
    }
    printf("f = %s\n", fmt_num(value, b1, sizeof b1));
    printf("%-*s  %-24s  %-24s  %s\n", (int)width, "", "analytic (tape)",
           "numeric (central diff.)", "abs error");
    /* The entries at a kink come apart, below the others: their central
     * difference straddles the kink and means nothing (it can be huge at
     * order 2), so their slopes are shown instead. */
    int kinks = 0;
    for (int64_t k = 0; k < nent; k++) {
        const tg_gradcheck_elem *e = &entries[k];
        char name[200];
        kinks += e->kink;
        if (e->kink) continue;
        entry_name(c, k, name, sizeof name);
        printf("%-*s  %-24s  %-24s  %-9s  %s\n", (int)width, name,
               fmt_num(e->analytic, b1, sizeof b1), fmt_num(e->numeric, b2, sizeof b2),
               isfinite(e->abs_err) ? (snprintf(b3, sizeof b3, "%.2g", e->abs_err), b3) : "-",
               e->ok ? "ok" : "FAIL");
    }
    if (kinks)
        printf("at a kink (the one-sided slopes differ, so the central difference means nothing "
               "there; any derivative between the slopes passes):\n");
    for (int64_t k = 0; k < nent; k++) {
        const tg_gradcheck_elem *e = &entries[k];
        char name[200], slopes[80];
        if (!e->kink) continue;
        entry_name(c, k, name, sizeof name);
        snprintf(slopes, sizeof slopes, "slopes %s (left), %s (right)",
                 fmt_num(e->left, b2, sizeof b2), fmt_num(e->right, b3, sizeof b3));
        printf("%-*s  %-24s  %-35s  %s\n", (int)width, name, fmt_num(e->analytic, b1, sizeof b1),
               slopes, e->ok ? "ok" : "FAIL");
    }
    for (int k = 0; expr_env_unused_at(c->env, k); k++)
        printf("note: %s is not used by the expression (its derivative is 0); not checked\n",
               expr_env_unused_at(c->env, k));
    snprintf(b1, sizeof b1, "%g", c->gc.atol);
    snprintf(b2, sizeof b2, "%g", c->gc.rtol);
    snprintf(b4, sizeof b4, "%g", c->gc.eps);
    const char *what = c->order == 2 ? "second derivative" : "partial derivative";
    const tg_gradcheck_elem *w = &rep.worst;
    if (rep.passed) {
        printf("PASS: %lld %s%s agree%s within %s + %s * |numeric| (eps %s)\n", (long long)nent,
               what, nent == 1 ? "" : "s", nent == 1 ? "s" : "", b1, b2, b4);
    } else if (c->order == 2 && w->row == -1) {
        printf("FAIL: the gradient tg_grad records (the ops' vjp rules) disagrees with the "
               "backward kernels': df/d%s is %s recorded, %s by the kernels\n",
               expr_env_name(c->env, (int)w->index), fmt_num(w->analytic, b3, sizeof b3),
               fmt_num(w->numeric, b5, sizeof b5));
    } else {
        char name[200];
        entry_name(c, c->order == 2 ? w->row * nv + w->index : w->input, name, sizeof name);
        printf("FAIL: %lld of %lld %s%s disagree%s beyond %s + %s * |numeric| "
               "(eps %s); worst %s: analytic %s, numeric %s\n",
               (long long)rep.failed, (long long)nent, what, nent == 1 ? "" : "s",
               rep.failed == 1 ? "s" : "", b1, b2, b4, name,
               fmt_num(w->analytic, b3, sizeof b3), fmt_num(w->numeric, b5, sizeof b5));
        if (!isfinite(w->numeric))
            printf("note: the expression is not defined within eps of the point, so the "
                   "numeric derivative is not finite\n");
    }
written:
    if (fflush(stdout) || ferror(stdout)) rc = die(c, "cannot write the output");
done:
    free(in);
    free(values);
    free(entries);
    free(split);
    return rc;
}

static int run(const char *name, enum kind kind, int argc, char **argv) {
    cmd c = {.name = name, .kind = kind, .order = 1, .gc = tg_gradcheck_defaults()};
    static void (*const help[])(FILE *) = {[GRAD] = help_grad, [HESS] = help_hess,
                                           [CHECK] = help_check};
    for (int i = 1; i < argc && strcmp(argv[i], "--"); i++) {
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            help[kind](stdout);
            return EXIT_OK;
        }
        c.json |= !strcmp(argv[i], "--json"); /* errors before it are JSON too */
    }
    c.env = expr_env_new();
    c.tape = tg_tape_new();
    int rc;
    tg_node *f = NULL;
    double *h = NULL;
    if (!c.env || !c.tape)
        rc = die(&c, "out of memory");
    else if (!(rc = parse_args(&c, argc, argv)) && !(rc = evaluate(&c, &f))) {
        if (kind == CHECK)
            rc = run_check(&c, f);
        else if (kind == GRAD || !(rc = hessian_of(&c, f, &h)))
            rc = print_derivatives(&c, f, h);
    }
    free(h);
    tg_tape_free(c.tape);
    expr_env_free(c.env);
    return rc;
}

int tg_cli_grad(int argc, char **argv) { return run("grad", GRAD, argc, argv); }
int tg_cli_hess(int argc, char **argv) { return run("hess", HESS, argc, argv); }
int tg_cli_check(int argc, char **argv) { return run("check", CHECK, argc, argv); }
