/* tg_gradcheck_print: a check's report as text, laid out as `tapegrad check`
 * lays out its own (see include/tapegrad/gradcheck.h). */
#include "node.h"

#include <math.h>
#include <stdio.h>

/* "row 0, input 1 [3]" */
static void label(const tg_gradcheck_elem *e, char *buf, size_t len) {
    snprintf(buf, len, "row %lld, input %d [%lld]", (long long)e->row, e->input,
             (long long)e->index);
}

static void print_entries(FILE *out, const tg_gradcheck_report *rep, const tg_gradcheck_opts *o) {
    int64_t n = rep->rows * rep->elements;
    if (!o->entries || n <= 0) return;
    if (n > o->max_entries) n = o->max_entries;
    char name[64];
    int kinks = 0;
    fprintf(out, "%-24s  %-24s  %-24s  %s\n", "", "analytic (tape)", "numeric (central diff.)",
            "abs error");
    for (int64_t k = 0; k < n; k++) {
        const tg_gradcheck_elem *e = &o->entries[k];
        kinks += e->kink;
        if (e->kink) continue;
        label(e, name, sizeof name);
        fprintf(out, "%-24s  %-24.17g  %-24.17g  %-9.2g  %s\n", name, e->analytic, e->numeric,
                e->abs_err, e->ok ? "ok" : "FAIL");
    }
    if (!kinks) return;
    fprintf(out, "at a kink (the one-sided slopes differ, so the central difference means "
            "nothing there; any derivative between the slopes passes):\n");
    for (int64_t k = 0; k < n; k++) {
        const tg_gradcheck_elem *e = &o->entries[k];
        if (!e->kink) continue;
        label(e, name, sizeof name);
        fprintf(out, "%-24s  %-24.17g  slopes %.17g (left), %.17g (right)  %s\n", name,
                e->analytic, e->left, e->right, e->ok ? "ok" : "FAIL");
    }
}

int tg_gradcheck_print(FILE *out, const tg_gradcheck_report *rep, const tg_gradcheck_opts *opts) {
    if (!out || !rep) return -1;
    tg_gradcheck_opts o = opts ? *opts : tg_gradcheck_defaults();
    const tg_gradcheck_elem *w = &rep->worst;
    if (rep->status) {
        fprintf(out, "ERROR: the check could not run: %s\n", rep->message);
    } else {
        print_entries(out, rep, &o);
        if (rep->passed)
            fprintf(out, "PASS: %lld entr%s agree%s within %g + %g * |numeric| (eps %g)\n",
                    (long long)rep->checked, rep->checked == 1 ? "y" : "ies",
                    rep->checked == 1 ? "s" : "", o.atol, o.rtol, o.eps);
        else if (w->row == -1)
            fprintf(out, "FAIL: the gradient tg_grad records (the ops' vjp rules) disagrees with "
                    "the backward kernels' at %lld of %lld elements; worst input %d [%lld]: "
                    "%.17g recorded, %.17g by the kernels\n",
                    (long long)rep->grad_mismatches, (long long)rep->elements, w->input,
                    (long long)w->index, w->analytic, w->numeric);
        else
            fprintf(out, "FAIL: %lld of %lld entries disagree beyond %g + %g * |numeric| (eps %g); "
                    "worst row %lld, input %d [%lld]: analytic %.17g, numeric %.17g\n",
                    (long long)rep->failed, (long long)rep->checked, o.atol, o.rtol, o.eps,
                    (long long)w->row, w->input, (long long)w->index, w->analytic, w->numeric);
        if (rep->kinks && !o.entries)
            fprintf(out, "note: %lld entr%s at a kink (the one-sided slopes differ); any "
                    "derivative between the slopes passes\n", (long long)rep->kinks,
                    rep->kinks == 1 ? "y is" : "ies are");
    }
    return fflush(out) || ferror(out) ? -1 : 0;
}
