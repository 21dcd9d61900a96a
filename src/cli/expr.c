/*
 * A recursive-descent parser that records the expression on a tape as it
 * parses: each grammar rule returns the node of what it parsed.
 *
 *   expr    := sum (cmp sum)?                   cmp: < <= > >= == != (no chains)
 *   sum     := term (('+' | '-') term)*
 *   term    := unary (('*' | '/') unary)*
 *   unary   := ('-' | '+') unary | power
 *   power   := primary ('^' unary)?            right-associative; -x^2 = -(x^2)
 *   primary := number | name | name '(' args ')' | '(' expr ')'
 *   args    := expr (',' expr)*                 1 to 3 of them
 *
 * Operators are ops of the registry (add sub mul div pow neg lt le gt ge eq
 * ne, from the table binops) and so are functions, looked up by name, so
 * any op registered later is callable. A name is a constant (pi, e), a
 * variable, or, before '(', a function: an op of the registry or one of the
 * other spellings of the table names (max(a, b) is maximum(a, b);
 * argmax(a, b, c) the index of the largest argument).
 */
#include "expr.h"

#include <math.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int oom; /* set by uthash when an insertion runs out of memory */
#define HASH_NONFATAL_OOM 1
#define uthash_nonfatal_oom(obj) (oom = 1)
#include <uthash.h>

#define MAX_DEPTH 200 /* nesting of parentheses, calls and unary signs */
#define MAX_ARGS 3     /* the largest arity of an op */

/* ------------------------------------------------------------ the tables -- */

/* Binary operators by precedence level, loosest first. '^' is parsed by
 * parse_power (right-associative, unary operand); it is here for its name.
 * Longer texts come before their prefixes ("<=" before "<"). */
enum { LEVEL_CMP, LEVEL_ADD, LEVEL_MUL, LEVEL_POW };

static const struct binop {
    const char *text, *op;
    int level;
} binops[] = {
    {"<=", "le", LEVEL_CMP}, {">=", "ge", LEVEL_CMP}, {"==", "eq", LEVEL_CMP},
    {"!=", "ne", LEVEL_CMP}, {"<", "lt", LEVEL_CMP},  {">", "gt", LEVEL_CMP},
    {"+", "add", LEVEL_ADD}, {"-", "sub", LEVEL_ADD}, {"*", "mul", LEVEL_MUL},
    {"/", "div", LEVEL_MUL}, {"^", "pow", LEVEL_POW},
};
#define NBINOPS (sizeof binops / sizeof *binops)

/* The binary operator at s, or NULL. */
static const struct binop *binop_at(const char *s) {
    for (size_t i = 0; i < NBINOPS; i++)
        if (!strncmp(s, binops[i].text, strlen(binops[i].text))) return &binops[i];
    return NULL;
}

const char *expr_operator_symbol(const char *op) {
    for (size_t i = 0; op && i < NBINOPS; i++)
        if (!strcmp(binops[i].op, op)) return binops[i].text;
    return NULL;
}

/* Names beside the registry's: other spellings of ops, and constants (the
 * doubles nearest to pi and e). */
static const expr_name names[] = {
    {"max", 2, "maximum", 0},
    {"min", 2, "minimum", 0},
    {"argmax", 2, "argmax", 0}, /* over its arguments (stacked, see parse_call) */
    {"argmax", 3, "argmax", 0},
    {"pi", 0, NULL, 3.14159265358979323846},
    {"e", 0, NULL, 2.71828182845904523536},
};
#define NNAMES (int)(sizeof names / sizeof *names)

const expr_name *expr_names(int *n) {
    *n = NNAMES;
    return names;
}

/* The constant called s[0..len), or NULL. */
static const expr_name *constant(const char *s, size_t len) {
    for (int i = 0; i < NNAMES; i++)
        if (!names[i].nargs && strlen(names[i].name) == len && !memcmp(names[i].name, s, len))
            return &names[i];
    return NULL;
}

/* The numbers of arguments a call of name accepts, as bits (1 << n). */
static unsigned call_arities(const char *name) {
    const tg_op *op = tg_op_find(name);
    unsigned bits = op && op->arity >= 1 && op->arity <= MAX_ARGS ? 1u << op->arity : 0;
    for (int i = 0; i < NNAMES; i++)
        if (names[i].nargs && !strcmp(names[i].name, name)) bits |= 1u << names[i].nargs;
    return bits;
}

/* The registry op that a call of name with nargs arguments records. */
static const char *call_target(const char *name, int nargs) {
    for (int i = 0; i < NNAMES; i++)
        if (names[i].nargs == nargs && !strcmp(names[i].name, name)) return names[i].op;
    return name;
}

typedef struct var {
    char *name;
    double value;
    tg_node *node; /* its leaf on the latest build; NULL when unused */
    UT_hash_handle hh;
} var;

typedef struct site {
    size_t node, pos, len;
} site;

struct expr_env {
    var *table;  /* by name */
    var **bound; /* in binding order */
    var **used;  /* in order of first appearance on the latest build */
    size_t nbound, nused, cap;
    site *sites;
    size_t nsites, cap_sites;
};

/* ---------------------------------------------------------- environment -- */

expr_env *expr_env_new(void) { return calloc(1, sizeof(expr_env)); }

void expr_env_free(expr_env *e) {
    if (!e) return;
    HASH_CLEAR(hh, e->table);
    for (size_t i = 0; i < e->nbound; i++) {
        free(e->bound[i]->name);
        free(e->bound[i]);
    }
    free(e->bound);
    free(e->used);
    free(e->sites);
    free(e);
}

int expr_env_bind(expr_env *e, const char *name, size_t len, double value) {
    if (constant(name, len)) return -3;
    var *v;
    HASH_FIND(hh, e->table, name, len, v);
    if (v) return -1;
    if (e->nbound == e->cap) {
        size_t cap = e->cap ? 2 * e->cap : 8;
        var **b = realloc(e->bound, cap * sizeof *b);
        if (!b) return -2;
        e->bound = b;
        var **u = realloc(e->used, cap * sizeof *u);
        if (!u) return -2;
        e->used = u;
        e->cap = cap;
    }
    v = calloc(1, sizeof *v);
    if (!v || !(v->name = malloc(len + 1))) {
        free(v);
        return -2;
    }
    memcpy(v->name, name, len);
    v->name[len] = '\0';
    v->value = value;
    oom = 0;
    HASH_ADD_KEYPTR(hh, e->table, v->name, len, v);
    if (oom) {
        free(v->name);
        free(v);
        return -2;
    }
    e->bound[e->nbound++] = v;
    return 0;
}

int expr_env_used(const expr_env *e) { return (int)e->nused; }
const char *expr_env_name(const expr_env *e, int i) { return e->used[i]->name; }
double expr_env_value(const expr_env *e, int i) { return e->used[i]->value; }
tg_node *expr_env_node(const expr_env *e, int i) { return e->used[i]->node; }

const char *expr_env_unused_at(const expr_env *e, int k) {
    for (size_t i = 0; i < e->nbound; i++)
        if (!e->bound[i]->node && k-- == 0) return e->bound[i]->name;
    return NULL;
}

const char *expr_env_unused(const expr_env *e) { return expr_env_unused_at(e, 0); }

const char *expr_env_bound_at(const expr_env *e, int k) {
    return k >= 0 && (size_t)k < e->nbound ? e->bound[k]->name : NULL;
}

const char *expr_env_name_of(const expr_env *e, const tg_node *n) {
    for (size_t i = 0; n && i < e->nused; i++)
        if (e->used[i]->node == n) return e->used[i]->name;
    return NULL;
}

int expr_site(const expr_env *e, size_t i, size_t *pos, size_t *len) {
    for (size_t k = 0; k < e->nsites; k++)
        if (e->sites[k].node == i) {
            *pos = e->sites[k].pos;
            *len = e->sites[k].len;
            return 1;
        }
    return 0;
}

/* -------------------------------------------------------------- scanning -- */

static bool is_digit(int c) { return c >= '0' && c <= '9'; }
static bool is_ident_start(int c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_'; }
static bool is_ident(int c) { return is_ident_start(c) || is_digit(c); }
static bool is_space(int c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; }

int expr_is_ident(const char *s, size_t len) {
    if (!len || !is_ident_start((unsigned char)s[0])) return 0;
    for (size_t i = 1; i < len; i++)
        if (!is_ident((unsigned char)s[i])) return 0;
    return 1;
}

long expr_scan_number(const char *s, int sign_ok, const char **why) {
    long i = 0, digits = 0;
    if (sign_ok && (s[0] == '+' || s[0] == '-')) i++;
    if (!is_digit((unsigned char)s[i]) && s[i] != '.') return 0;
    while (is_digit((unsigned char)s[i])) i++, digits++;
    if (s[i] == '.') {
        i++;
        while (is_digit((unsigned char)s[i])) i++, digits++;
    }
    if (!digits) {
        *why = "a number needs at least one digit";
        return -1;
    }
    if (s[i] == 'e' || s[i] == 'E') {
        long j = i + 1;
        if (s[j] == '+' || s[j] == '-') j++;
        if (!is_digit((unsigned char)s[j])) {
            *why = "the exponent of the number has no digits";
            return -1;
        }
        while (is_digit((unsigned char)s[j])) j++;
        i = j;
    }
    return i;
}

int expr_number_value(const char *s, size_t len, double *v) {
    char small[64], *text = len < sizeof small ? small : malloc(len + 1);
    if (!text) return 1;
    memcpy(text, s, len);
    text[len] = '\0';
    *v = strtod(text, NULL);
    if (text != small) free(text);
    if (!isfinite(*v)) return 1;
    bool nonzero = false;
    for (size_t i = 0; i < len && s[i] != 'e' && s[i] != 'E'; i++) nonzero |= s[i] >= '1' && s[i] <= '9';
    return *v == 0 && nonzero ? 2 : 0;
}

/* --------------------------------------------------------------- parsing -- */

typedef struct parser {
    const char *src;
    size_t pos;
    tg_tape *t;
    expr_env *env;
    tg_node *const *inputs;
    int ninputs;
    expr_error *err;
    int depth;
} parser;

static void skip_space(parser *p) {
    while (is_space((unsigned char)p->src[p->pos])) p->pos++;
}

size_t expr_column(const char *s, size_t pos) {
    size_t col = 1;
    for (size_t i = 0; i < pos && s[i]; i++) col += ((unsigned char)s[i] & 0xC0) != 0x80;
    return col;
}

/* Records an error (the first one wins); returns NULL for the callers' tails. */
static tg_node *error(parser *p, int code, size_t pos, size_t len, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 5, 6)))
#endif
    ;
static tg_node *error(parser *p, int code, size_t pos, size_t len, const char *fmt, ...) {
    if (p->err->code) return NULL;
    p->err->code = code;
    p->err->pos = pos;
    p->err->len = len;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(p->err->msg, sizeof p->err->msg, fmt, ap);
    va_end(ap);
    return NULL;
}

/* Length of the token at pos, for underlining: a name or a number whole,
 * a UTF-8 character whole, else one byte. */
static size_t token_len(const char *s, size_t pos) {
    unsigned char c = (unsigned char)s[pos];
    size_t i = pos;
    if (!c) return 0;
    if (is_ident(c) || c == '.') {
        while (is_ident((unsigned char)s[i]) || s[i] == '.') i++;
        return i - pos;
    }
    if (c >= 0xC0) {
        i++;
        while (((unsigned char)s[i] & 0xC0) == 0x80 && i - pos < 4) i++;
        return i - pos;
    }
    return 1;
}

/* The token at pos quoted for a message: 'x', '*', 'λ', byte 0x07, or
 * "the end of the expression". */
static const char *describe(const char *s, size_t pos, char *buf, size_t len) {
    unsigned char c = (unsigned char)s[pos];
    size_t n = token_len(s, pos);
    if (!c)
        snprintf(buf, len, "the end of the expression");
    else if (c < 0x20 || c == 0x7f || (c >= 0x80 && c < 0xC0))
        snprintf(buf, len, "byte 0x%02x", c);
    else
        snprintf(buf, len, "'%.*s'", n > 40 ? 40 : (int)n, s + pos);
    return buf;
}

static bool starts_operand(int c) { return is_digit(c) || c == '.' || is_ident_start(c) || c == '('; }

/* An error for the token at p->pos where an operand was expected. */
static tg_node *want_operand(parser *p) {
    char d[64];
    size_t pos = p->pos;
    if (!p->src[pos])
        return error(p, EXPR_SYNTAX, pos, 0, "the expression ends where an operand is expected");
    if (p->src[pos] == ')')
        return error(p, EXPR_SYNTAX, pos, 1, "an operand is missing before ')'");
    const struct binop *o = binop_at(p->src + pos);
    if (o || p->src[pos] == ',') {
        size_t n = o ? strlen(o->text) : 1;
        return error(p, EXPR_SYNTAX, pos, n, "an operand is missing before '%.*s'", (int)n,
                     p->src + pos);
    }
    return error(p, EXPR_SYNTAX, pos, token_len(p->src, pos),
                 "unexpected %s: expected a number, a variable, a function call or '('",
                 describe(p->src, pos, d, sizeof d));
}

/* An error for the token at p->pos after a complete operand, inside a
 * construct that accepts `closers` next (e.g. "')'"). */
static tg_node *want_operator(parser *p, const char *closers) {
    char d[64];
    size_t pos = p->pos;
    unsigned char c = (unsigned char)p->src[pos];
    if (c == '=')
        return error(p, EXPR_SYNTAX, pos, 1,
                     "'=' is not an operator: write == to compare (a binding NAME=VALUE is "
                     "a separate argument after the expression)");
    if (starts_operand(c))
        return error(p, EXPR_SYNTAX, pos, token_len(p->src, pos),
                     "expected an operator (+ - * / ^)%s before %s", closers,
                     describe(p->src, pos, d, sizeof d));
    return error(p, EXPR_SYNTAX, pos, token_len(p->src, pos), "unexpected %s",
                 describe(p->src, pos, d, sizeof d));
}

/* Records the registered op `name` on in[0..n) for the text at pos. The
 * callers pass operands they have checked. */
static tg_node *apply(parser *p, const char *name, tg_node *const *in, int n, size_t pos,
                      size_t len) {
    if (!tg_op_find(name))
        return error(p, EXPR_MISSING_OP, pos, len,
                     "'%.*s' is the op '%s', which this build of tapegrad does not have",
                     (int)(len > 40 ? 40 : len), p->src + pos, name);
    tg_node *out = tg_call_n(name, n, in);
    if (tg_status(p->t)) return error(p, tg_status(p->t), pos, len, "%s", tg_status_message(p->t));
    if (p->env->nsites == p->env->cap_sites) {
        size_t cap = p->env->cap_sites ? 2 * p->env->cap_sites : 32;
        site *s = realloc(p->env->sites, cap * sizeof *s);
        if (!s) return error(p, EXPR_NOMEM, pos, len, "out of memory");
        p->env->sites = s;
        p->env->cap_sites = cap;
    }
    p->env->sites[p->env->nsites++] = (site){tg_node_index(out), pos, len};
    return out;
}

static tg_node *parse_binary(parser *p, int level);
static tg_node *parse_unary(parser *p);

static tg_node *parse_expr(parser *p) { return parse_binary(p, LEVEL_CMP); }

/* Guards recursion: every nesting level passes through here. */
static bool enter(parser *p) {
    if (++p->depth <= MAX_DEPTH) return true;
    error(p, EXPR_SYNTAX, p->pos, token_len(p->src, p->pos),
          "the expression is nested too deeply (more than %d levels)", MAX_DEPTH);
    return false;
}

static tg_node *parse_number(parser *p) {
    size_t start = p->pos;
    const char *why = "";
    long len = expr_scan_number(p->src + start, 0, &why);
    if (len <= 0) {
        size_t n = token_len(p->src, start);
        return error(p, EXPR_SYNTAX, start, n ? n : 1, "malformed number: %s", why);
    }
    p->pos += (size_t)len;
    if (is_ident((unsigned char)p->src[p->pos]) || p->src[p->pos] == '.') {
        char d[64];
        return error(p, EXPR_SYNTAX, p->pos, token_len(p->src, p->pos),
                     "expected an operator between the number '%.*s' and %s "
                     "(write 2*x, not 2x)",
                     (int)(len > 40 ? 40 : len), p->src + start,
                     describe(p->src, p->pos, d, sizeof d));
    }
    double v;
    int range = expr_number_value(p->src + start, (size_t)len, &v);
    if (range)
        return error(p, EXPR_SYNTAX, start, (size_t)len, "the number is too %s for a double (%s)",
                     range == 1 ? "large" : "small",
                     range == 1 ? "more than 1.8e308" : "not zero, but less than 4.9e-324");
    tg_node *n = tg_const(p->t, v);
    if (tg_status(p->t))
        return error(p, tg_status(p->t), start, (size_t)len, "%s", tg_status_message(p->t));
    return n;
}

static tg_node *parse_variable(parser *p, size_t start, size_t len) {
    const expr_name *k = constant(p->src + start, len);
    if (k) {
        tg_node *n = tg_const(p->t, k->value);
        if (tg_status(p->t))
            return error(p, tg_status(p->t), start, len, "%s", tg_status_message(p->t));
        return n;
    }
    var *v;
    HASH_FIND(hh, p->env->table, p->src + start, len, v);
    if (!v) {
        if (len < 64) {
            char name[64];
            memcpy(name, p->src + start, len);
            name[len] = '\0';
            if (call_arities(name))
                return error(p, EXPR_SYNTAX, start, len,
                             "'%s' is a function: call it as %s(...)", name, name);
        }
        return error(p, EXPR_UNBOUND, start, len,
                     "unbound variable '%.*s': give its value as %.*s=NUMBER",
                     (int)(len > 64 ? 64 : len), p->src + start, (int)(len > 64 ? 64 : len),
                     p->src + start);
    }
    if (!v->node) {
        if (p->inputs) {
            if ((int)p->env->nused >= p->ninputs)
                return error(p, EXPR_UNBOUND, start, len, "no input for variable '%s'",
                             v->name);
            v->node = p->inputs[p->env->nused];
        } else {
            v->node = tg_scalar(p->t, v->value);
            if (tg_status(p->t))
                return error(p, tg_status(p->t), start, len, "%s", tg_status_message(p->t));
        }
        p->env->used[p->env->nused++] = v;
    }
    return v->node;
}

static tg_node *parse_call(parser *p, size_t start, size_t len) {
    char name[64];
    if (len >= sizeof name)
        return error(p, EXPR_UNKNOWN_FUNC, start, len, "unknown function '%.40s...'",
                     p->src + start);
    memcpy(name, p->src + start, len);
    name[len] = '\0';
    unsigned arities = call_arities(name);
    if (!arities && constant(name, len))
        return error(p, EXPR_SYNTAX, start, len, "'%s' is a constant, not a function", name);
    if (!arities) return error(p, EXPR_UNKNOWN_FUNC, start, len, "unknown function '%s'", name);
    size_t open = p->pos++;
    tg_node *args[MAX_ARGS] = {NULL, NULL, NULL};
    int nargs = 0;
    skip_space(p);
    if (p->src[p->pos] == ')') {
        p->pos++;
    } else {
        for (;;) {
            tg_node *a = parse_expr(p);
            if (!a) return NULL;
            if (nargs < MAX_ARGS) args[nargs] = a;
            nargs++;
            skip_space(p);
            char c = p->src[p->pos];
            if (c == ')') {
                p->pos++;
                break;
            }
            if (c == ',') {
                p->pos++;
                continue;
            }
            if (!c)
                return error(p, EXPR_SYNTAX, p->pos, 0,
                             "missing ')' to close the call of '%s' at column %zu", name,
                             expr_column(p->src, open));
            return want_operator(p, ", ',' or ')'");
        }
    }
    if (nargs > MAX_ARGS || !(arities >> nargs & 1)) {
        char counts[32] = "";
        int k = 0;
        for (int n = 0; n <= MAX_ARGS; n++) {
            if (!(arities >> n & 1)) continue;
            bool more = arities >> (n + 1) != 0;
            k += snprintf(counts + k, sizeof counts - (size_t)k, "%s%d", !k ? "" : more ? ", " : " or ", n);
        }
        return error(p, EXPR_SYNTAX, start, len, "'%s' takes %s argument%s, given %d", name,
                     counts, arities == 2 ? "" : "s", nargs);
    }
    const char *target = call_target(name, nargs);
    if (nargs > 1 && !strcmp(target, "argmax")) {
        /* The variables are scalars: argmax(a, b, c) is the op over the
         * vector [a, b, c], the index of the largest argument. */
        const int64_t one = 1;
        for (int k = 0; k < nargs; k++) args[k] = tg_reshape(args[k], 1, &one);
        args[0] = tg_concat(nargs, args, 0);
        nargs = 1;
    }
    return apply(p, target, args, nargs, start, len);
}

static tg_node *parse_primary(parser *p) {
    skip_space(p);
    unsigned char c = (unsigned char)p->src[p->pos];
    if (is_digit(c) || c == '.') return parse_number(p);
    if (is_ident_start(c)) {
        size_t start = p->pos;
        while (is_ident((unsigned char)p->src[p->pos])) p->pos++;
        size_t len = p->pos - start;
        size_t after = p->pos;
        skip_space(p);
        if (p->src[p->pos] == '(') {
            if (!enter(p)) return NULL;
            tg_node *n = parse_call(p, start, len);
            p->depth--;
            return n;
        }
        p->pos = after;
        return parse_variable(p, start, len);
    }
    if (c == '(') {
        size_t open = p->pos++;
        if (!enter(p)) return NULL;
        tg_node *n = parse_expr(p);
        p->depth--;
        if (!n) return NULL;
        skip_space(p);
        if (p->src[p->pos] == ')') {
            p->pos++;
            return n;
        }
        if (!p->src[p->pos])
            return error(p, EXPR_SYNTAX, p->pos, 0, "missing ')' to close the '(' at column %zu",
                         expr_column(p->src, open));
        return want_operator(p, " or ')'");
    }
    return want_operand(p);
}

static tg_node *parse_power(parser *p) {
    tg_node *base = parse_primary(p);
    if (!base) return NULL;
    skip_space(p);
    if (p->src[p->pos] != '^') return base;
    size_t at = p->pos++;
    if (!enter(p)) return NULL;
    tg_node *e = parse_unary(p);
    p->depth--;
    return e ? apply(p, "pow", (tg_node *[]){base, e}, 2, at, 1) : NULL;
}

/* Whether n is a number literal just recorded (a constant leaf at the end of
 * the tape): variables always want gradients, literals never do. */
static bool is_fresh_literal(parser *p, tg_node *n) {
    return !strcmp(tg_node_op_name(n), "leaf") && !tg_requires_grad(n) &&
           tg_node_index(n) + 1 == tg_tape_size(p->t) && tg_node_dtype(n) == TG_F64 &&
           tg_ndim(n) == 0;
}

static tg_node *parse_unary(parser *p) {
    skip_space(p);
    char c = p->src[p->pos];
    if (c != '-' && c != '+') return parse_power(p);
    size_t at = p->pos++;
    if (!enter(p)) return NULL;
    tg_node *x = parse_unary(p);
    p->depth--;
    if (!x || c == '+') return x;
    if (is_fresh_literal(p, x)) { /* -2.5 is a number, not neg(2.5) */
        double *v = tg_value(x);
        *v = -*v;
        return x;
    }
    return apply(p, "neg", &x, 1, at, 1);
}

/* One level of left-associative binary operators (the table binops); a
 * comparison takes one operator at most. */
static tg_node *parse_binary(parser *p, int level) {
    tg_node *lhs = level == LEVEL_MUL ? parse_unary(p) : parse_binary(p, level + 1);
    bool compared = false;
    for (;;) {
        if (!lhs) return NULL;
        skip_space(p);
        const char *s = p->src + p->pos;
        if (level == LEVEL_MUL && s[0] == '*' && s[1] == '*')
            return error(p, EXPR_SYNTAX, p->pos, 2, "'**' is not an operator: write x^y for a power");
        const struct binop *o = binop_at(s);
        if (!o || o->level != level) return lhs;
        size_t at = p->pos, len = strlen(o->text);
        if (compared)
            return error(p, EXPR_SYNTAX, at, len,
                         "comparisons do not chain: write (a < b) * (b < c) for a < b < c");
        p->pos += len;
        tg_node *rhs = level == LEVEL_MUL ? parse_unary(p) : parse_binary(p, level + 1);
        lhs = rhs ? apply(p, o->op, (tg_node *[]){lhs, rhs}, 2, at, len) : NULL;
        compared = level == LEVEL_CMP;
    }
}

tg_node *expr_build(const char *src, tg_tape *t, expr_env *env, tg_node *const *inputs,
                    int ninputs, expr_error *err) {
    memset(err, 0, sizeof *err);
    for (size_t i = 0; i < env->nbound; i++) env->bound[i]->node = NULL;
    env->nused = 0;
    env->nsites = 0;
    parser p = {src, 0, t, env, inputs, ninputs, err, 0};
    skip_space(&p);
    if (!src[p.pos]) return error(&p, EXPR_SYNTAX, p.pos, 0, "the expression is empty");
    tg_node *n = parse_expr(&p);
    if (!n) {
        if (!err->code) error(&p, EXPR_SYNTAX, p.pos, 0, "malformed expression");
        return NULL;
    }
    skip_space(&p);
    if (src[p.pos] == ')') return error(&p, EXPR_SYNTAX, p.pos, 1, "unmatched ')'");
    if (src[p.pos]) return want_operator(&p, "");
    return n;
}
