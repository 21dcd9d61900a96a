/*
 * The expression language of `tapegrad grad` and `tapegrad check`
 * (docs/cli.md has the grammar).
 *
 * expr_build() parses an expression and records it on a tape as it goes:
 * numbers become constants, variables become float64 scalar leaves (one per
 * distinct name, shared by every use), the constants pi and e become
 * constants, operators and function calls become ops found by name in the
 * registry (tg_call_n), so every registered op is callable with its arity
 * (1 to 3 arguments). Variables get their values from an environment of
 * bindings.
 */
#ifndef TG_CLI_EXPR_H
#define TG_CLI_EXPR_H

#include <stddef.h>

#include <tapegrad.h>

/* Kinds of error; an op's own failure carries the tape's status instead. */
enum {
    EXPR_OK = 0,
    EXPR_SYNTAX = 100,   /* malformed text */
    EXPR_UNKNOWN_FUNC,   /* a call of a name no op has; the span is the name */
    EXPR_UNBOUND,        /* a variable without a value */
    EXPR_NOMEM,          /* out of memory */
    EXPR_MISSING_OP,     /* an operator whose op this build does not register */
};

typedef struct expr_error {
    int code;          /* EXPR_* or, when an op failed, the tape's TG_ERR_* */
    size_t pos, len;   /* the offending span of the source (len >= 1 except at the end) */
    char msg[320];     /* one line, without the position */
} expr_error;

/* Variable bindings, and what the latest build made of them. */
typedef struct expr_env expr_env;

expr_env *expr_env_new(void); /* NULL when out of memory */
void expr_env_free(expr_env *e);

/* Binds name[0..len) to value. 0, -1 when already bound, -2 out of memory,
 * -3 when the name is a constant of the language (pi, e). */
int expr_env_bind(expr_env *e, const char *name, size_t len, double value);

/* After a successful build: the number of distinct variables used, and each
 * one's name, value and leaf, in order of first appearance. */
int expr_env_used(const expr_env *e);
const char *expr_env_name(const expr_env *e, int i);
double expr_env_value(const expr_env *e, int i);
tg_node *expr_env_node(const expr_env *e, int i);

/* A bound variable the latest build did not use, or NULL (first in binding order). */
const char *expr_env_unused(const expr_env *e);
/* The k-th (0-based) of those in binding order, or NULL past the last. */
const char *expr_env_unused_at(const expr_env *e, int k);

/* The k-th bound variable's name in binding order, or NULL past the last. */
const char *expr_env_bound_at(const expr_env *e, int k);

/* The variable whose leaf n is on the latest build, or NULL. */
const char *expr_env_name_of(const expr_env *e, const tg_node *n);

/* The source span of the operator or call that recorded node index i on
 * the latest build. Returns 1 when known, 0 otherwise. */
int expr_site(const expr_env *e, size_t i, size_t *pos, size_t *len);

/*
 * Parses src and records it on t, returning the output node, or NULL with
 * err filled. When inputs is non-NULL the k-th distinct variable (in order of
 * first appearance) is inputs[k] (ninputs of them; fewer is an error) rather
 * than a new tg_scalar of its bound value, which lets tg_gradcheck rebuild
 * the expression on its own tapes.
 */
tg_node *expr_build(const char *src, tg_tape *t, expr_env *env, tg_node *const *inputs,
                    int ninputs, expr_error *err);

/* The names the language adds to the registry's ops: other spellings of
 * ops (max(a, b) is the op maximum) and constants (pi, e). */
typedef struct expr_name {
    const char *name;
    int nargs;      /* the spelling's number of arguments; 0 for a constant */
    const char *op; /* the registry op it calls; NULL for a constant */
    double value;   /* the constant's value */
} expr_name;

/* The table of those names; *n is set to its length. */
const expr_name *expr_names(int *n);

/* The infix symbol of a registry op written as an operator ("add" -> "+",
 * "le" -> "<="), or NULL. */
const char *expr_operator_symbol(const char *op);

/* The 1-based column of byte offset pos of s (UTF-8 characters count once). */
size_t expr_column(const char *s, size_t pos);

/* Whether s (len bytes) is an identifier: [A-Za-z_][A-Za-z0-9_]*. */
int expr_is_ident(const char *s, size_t len);

/* Scans a decimal number at s: digits with an optional fraction and
 * exponent ("3", "2.5", ".5", "1e-3"), with a leading sign when sign_ok.
 * Returns its length (0: none there; the number is s[0..len)), or -1 with
 * *why set when it starts like a number but is malformed. */
long expr_scan_number(const char *s, int sign_ok, const char **why);

/* The value of the number s[0..len) that expr_scan_number() accepted: 0 and
 * *v set; 1 when it is too large for a double, 2 when it is not zero but
 * too small for one (it would read as 0). */
int expr_number_value(const char *s, size_t len, double *v);

#endif
