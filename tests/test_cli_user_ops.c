/*
 * `tapegrad hess` and `tapegrad check --order 2` with user ops whose rules
 * for second derivatives are missing or wrong, which the installed program
 * cannot have: the commands (src/cli/grad.c and the files it uses) are
 * compiled into this test and run in-process, stdout and stderr captured,
 * after registering x^3 with a right vjp rule, without one, with one whose
 * derivative is wrong, and with one wrong by a factor of 2. The oracle is
 * the hand-derived calculus of x^3 (3x^2, 6x).
 */
#define _POSIX_C_SOURCE 200809L

#include <fcntl.h>
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include <tapegrad.h>

#include "cli/grad.c" /* first: expr.c's file-scope names would shadow its locals */
#include "cli/expr.c"
#include "cli/report.c"
#include "cube_ops.h"
#include "json_reader.h"

/* ------------------------------------------------------- the user ops -- */

static const tg_op ops[] = {
    {"ucube", 1, NULL, cube_forward, cube_backward, cube_vjp, NULL},
    {"ucube_none", 1, NULL, cube_forward, cube_backward, NULL, NULL},
    {"ucube_bad", 1, NULL, cube_forward, cube_backward, cube_vjp_wrong, NULL},
    {"ucube_twice", 1, NULL, cube_forward, cube_backward, cube_vjp_twice, NULL},
};

/* -------------------------------------------------- running a command -- */

typedef struct result {
    int code;
    char *out, *err;
} result;

static char *slurp_fd(int fd) {
    off_t len = lseek(fd, 0, SEEK_END);
    assert_true(len >= 0);
    char *buf = malloc((size_t)len + 1);
    assert_non_null(buf);
    assert_int_equal(pread(fd, buf, (size_t)len, 0), len);
    buf[len] = '\0';
    close(fd);
    return buf;
}

/* Runs command (tg_cli_hess or tg_cli_check) with the NULL-terminated
 * arguments, stdout and stderr going to temporary files meanwhile. */
static result invoke(int (*command)(int, char **), const char *name, ...) {
    char *argv[16] = {(char *)name};
    int argc = 1;
    va_list ap;
    va_start(ap, name);
    for (const char *a; (a = va_arg(ap, const char *)) && argc < 15;) argv[argc++] = (char *)a;
    va_end(ap);
    argv[argc] = NULL;
    FILE *fo = tmpfile(), *fe = tmpfile();
    assert_non_null(fo);
    assert_non_null(fe);
    fflush(stdout);
    fflush(stderr);
    int so = dup(1), se = dup(2);
    dup2(fileno(fo), 1);
    dup2(fileno(fe), 2);
    result r;
    r.code = command(argc, argv);
    fflush(stdout);
    fflush(stderr);
    dup2(so, 1);
    dup2(se, 2);
    close(so);
    close(se);
    r.out = slurp_fd(dup(fileno(fo)));
    r.err = slurp_fd(dup(fileno(fe)));
    fclose(fo);
    fclose(fe);
    return r;
}

static void release(result *r) {
    free(r->out);
    free(r->err);
}

static void expect_close(double got, double want, const char *what) {
    if (!(fabs(got - want) <= 1e-12 * (1 + fabs(want))))
        fail_msg("%s: %.17g, wanted %.17g", what, got, want);
}

/* A number of a JSON object, by a path of keys. */
static double num_at(const jv *v, const char *k1, const char *k2, const char *k3, const char *k4) {
    const char *keys[] = {k1, k2, k3, k4};
    for (int i = 0; i < 4 && keys[i]; i++) v = jv_get(v, keys[i]);
    if (!v || (v->type != JV_NUM && v->type != JV_BOOL)) fail_msg("%s...: not a number", k1);
    return v->num;
}

/* --------------------------------------------------------------- tests -- */

/* A user op with a right rule: the Hessian of sin(x)*ucube(y). */
static void test_right_rule(void **state) {
    (void)state;
    double x = 0.5, y = 1.2;
    result r = invoke(tg_cli_hess, "hess", "--json", "sin(x)*ucube(y)", "x=0.5", "y=1.2", NULL);
    jv v = {0};
    if (r.code || !jv_parse(r.out, &v)) fail_msg("exit %d: %s%s", r.code, r.out, r.err);
    expect_close(num_at(&v, "value", NULL, NULL, NULL), sin(x) * y * y * y, "f");
    expect_close(num_at(&v, "hessian", "x", "x", NULL), -sin(x) * y * y * y, "f_xx");
    expect_close(num_at(&v, "hessian", "x", "y", NULL), 3 * y * y * cos(x), "f_xy");
    expect_close(num_at(&v, "hessian", "y", "x", NULL), 3 * y * y * cos(x), "f_yx");
    expect_close(num_at(&v, "hessian", "y", "y", NULL), 6 * y * sin(x), "f_yy");
    jv_free(&v);
    release(&r);
    r = invoke(tg_cli_check, "check", "--order", "2", "sin(x)*ucube(y)", "x=0.5", "y=1.2", NULL);
    assert_int_equal(r.code, 0);
    assert_non_null(strstr(r.out, "PASS: 4 second derivatives agree"));
    release(&r);
}

/* No vjp rule: hess and check --order 2 exit 2 naming the op, with the
 * caret under its call; grad and check (order 1) still work. */
static void test_no_rule(void **state) {
    (void)state;
    static const char want[] = "no second derivatives: op 'ucube_none' has no differentiable "
                               "backward rule (tg_op.vjp) yet, so its derivative cannot be "
                               "differentiated";
    char text[512];
    for (int which = 0; which < 2; which++) {
        int (*command)(int, char **) = which ? tg_cli_check : tg_cli_hess;
        const char *name = which ? "check" : "hess", *order = which ? "--order=2" : "--";
        result r = invoke(command, name, order, "x + ucube_none(x*y)", "x=1", "y=2", NULL);
        snprintf(text, sizeof text, "tapegrad %s: %s\n  x + ucube_none(x*y)\n      ^~~~~~~~~~\n",
                 name, want);
        assert_int_equal(r.code, 2);
        assert_string_equal(r.out, "");
        assert_string_equal(r.err, text);
        release(&r);
        r = invoke(command, name, "--json", order, "x + ucube_none(x*y)", "x=1", "y=2", NULL);
        jv v = {0};
        assert_int_equal(r.code, 2);
        assert_string_equal(r.out, "");
        if (!jv_parse(r.err, &v)) fail_msg("not JSON: %s", r.err);
        assert_string_equal(jv_get(&v, "error")->text, want);
        assert_true(num_at(&v, "column", NULL, NULL, NULL) == 5);
        jv_free(&v);
        release(&r);
    }
    result r = invoke(tg_cli_grad, "grad", "ucube_none(x)", "x=2", NULL);
    assert_int_equal(r.code, 0);
    assert_string_equal(r.out, "f = 8\ndf/dx = 12\n");
    release(&r);
    r = invoke(tg_cli_check, "check", "ucube_none(x)", "x=2", NULL);
    assert_int_equal(r.code, 0);
    release(&r);
}

/* A rule with the wrong derivative: check --order 2 fails on d2f/dx^2 of
 * ucube_bad(x)*y (3xy recorded, 6xy by differences) and only there. */
static void test_wrong_derivative(void **state) {
    (void)state;
    double x = 0.8, y = 1.5;
    result r = invoke(tg_cli_check, "check", "--order", "2", "--json", "ucube_bad(x)*y", "x=0.8",
                   "y=1.5", NULL);
    jv v = {0};
    assert_int_equal(r.code, 1);
    if (!jv_parse(r.out, &v)) fail_msg("not JSON: %s", r.out);
    assert_true(num_at(&v, "passed", NULL, NULL, NULL) == 0 && num_at(&v, "failed", NULL, NULL, NULL) == 1);
    expect_close(num_at(&v, "hessian", "x", "x", "analytic"), 3 * x * y, "the wrong rule's f_xx");
    if (fabs(num_at(&v, "hessian", "x", "x", "numeric") - 6 * x * y) > 1e-6)
        fail_msg("numeric f_xx %.17g, wanted about %.17g", num_at(&v, "hessian", "x", "x", "numeric"),
                 6 * x * y);
    assert_true(num_at(&v, "hessian", "x", "x", "ok") == 0);
    assert_true(num_at(&v, "hessian", "x", "y", "ok") == 1 && num_at(&v, "hessian", "y", "x", "ok") == 1);
    expect_close(num_at(&v, "hessian", "x", "y", "analytic"), 3 * x * x, "f_xy");
    assert_int_equal(jv_get(&v, "grad_mismatch")->type, JV_NULL);
    jv_free(&v);
    release(&r);
    r = invoke(tg_cli_check, "check", "--order", "2", "ucube_bad(x)*y", "x=0.8", "y=1.5", NULL);
    assert_int_equal(r.code, 1);
    assert_non_null(strstr(r.out, "FAIL: 1 of 4 second derivatives disagree"));
    assert_non_null(strstr(r.out, "worst d2f/dx^2: analytic 3.6"));
    release(&r);
}

/* A rule wrong by a factor of 2 has a consistent derivative; the
 * comparison of the recorded gradient with the kernels' catches it. */
static void test_wrong_value(void **state) {
    (void)state;
    double x = 0.8;
    result r = invoke(tg_cli_check, "check", "--order", "2", "--json", "ucube_twice(x)", "x=0.8",
                   NULL);
    jv v = {0};
    assert_int_equal(r.code, 1);
    if (!jv_parse(r.out, &v)) fail_msg("not JSON: %s", r.out);
    assert_true(num_at(&v, "passed", NULL, NULL, NULL) == 0);
    const jv *m = jv_get(&v, "grad_mismatch");
    assert_int_equal(m->type, JV_OBJ);
    assert_string_equal(jv_get(m, "variable")->text, "x");
    expect_close(num_at(m, "recorded", NULL, NULL, NULL), 6 * x * x, "recorded");
    expect_close(num_at(m, "kernel", NULL, NULL, NULL), 3 * x * x, "kernel");
    jv_free(&v);
    release(&r);
    r = invoke(tg_cli_check, "check", "--order", "2", "ucube_twice(x)", "x=0.8", NULL);
    assert_int_equal(r.code, 1);
    assert_non_null(strstr(r.out, "FAIL: the gradient tg_grad records (the ops' vjp rules) "
                                  "disagrees with the backward kernels': df/dx is 3.8400000000000007 "));
    assert_non_null(strstr(r.out, " recorded, 1.9200000000000004 by the kernels")); /* 6 x^2, 3 x^2 */
    release(&r);
}

int main(void) {
    for (size_t i = 0; i < sizeof ops / sizeof *ops; i++)
        if (tg_op_register(&ops[i])) return 1;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_right_rule),
        cmocka_unit_test(test_no_rule),
        cmocka_unit_test(test_wrong_derivative),
        cmocka_unit_test(test_wrong_value),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
