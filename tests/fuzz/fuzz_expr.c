/*
 * Fuzz target: the expression language of `tapegrad grad` / `check`
 * (src/cli/expr.c). The input is the expression text; the variables
 * a b c x y z w are bound. A successful build is differentiated (scalar
 * outputs), replayed, and its source sites looked up; a failed one must
 * report an error with a message and a span inside the text. The same text
 * is built twice on one reset tape with one environment.
 */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/expr.h"

static const char *const names[] = {"a", "b", "c", "x", "y", "z", "w"};
static const double values[] = {0.5, -2, 3, -0.75, 1.25, 4, 1e-3};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    char *src = malloc(size + 1);
    if (!src) return 0;
    memcpy(src, data, size);
    src[size] = '\0'; /* the text ends at its first NUL, as from a command line */
    size_t len = strlen(src);
    tg_tape *t = tg_tape_new();
    expr_env *env = expr_env_new();
    if (!t || !env) abort();
    for (size_t i = 0; i < sizeof names / sizeof *names; i++)
        if (expr_env_bind(env, names[i], 1, values[i])) abort();
    for (int round = 0; round < 2; round++) {
        expr_error err;
        memset(&err, 0, sizeof err);
        tg_node *out = expr_build(src, t, env, NULL, 0, &err);
        if (!out) {
            if (!err.code || !err.msg[0] || err.pos > len || err.pos + err.len > len + 1) {
                fprintf(stderr, "bad error report: code %d pos %zu len %zu '%s'\n", err.code,
                        err.pos, err.len, err.msg);
                abort();
            }
        } else {
            if (tg_numel(out) == 1) tg_backward(out);
            tg_forward(t);
            for (int i = 0; i < expr_env_used(env); i++) {
                if (!expr_env_name(env, i) || !expr_env_node(env, i)) abort();
                (void)expr_env_value(env, i);
                if (strcmp(expr_env_name_of(env, expr_env_node(env, i)), expr_env_name(env, i)))
                    abort();
            }
            (void)expr_env_unused(env);
            for (size_t i = 0; i < tg_tape_size(t); i++) {
                size_t pos, n;
                if (expr_site(env, i, &pos, &n) && (pos > len || pos + n > len)) abort();
            }
        }
        tg_tape_reset(t);
    }
    expr_env_free(env);
    tg_tape_free(t);
    free(src);
    return 0;
}
