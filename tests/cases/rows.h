/*
 * The row types of the registry walks of test_nonfinite.c and
 * test_agreement.c, and the walk itself (included after cmocka.h and
 * tapegrad.h). An elementwise op has a REFS row: its name, its arity and
 * its definition in double from libm. Any other op has a BUILDS row: a
 * function that records it on inputs made by the includer's filled(), and
 * whether NaN inputs make every output element NaN or only some.
 */
#ifndef TG_TEST_CASES_ROWS_H
#define TG_TEST_CASES_ROWS_H

#include <stddef.h>
#include <string.h>

#include <tapegrad.h>

typedef double (*ref_fn)(const double *x);
typedef struct ref_row {
    const char *op;
    int arity;
    ref_fn ref;
} ref_row;

enum { NF_ALL, NF_ANY, NF_FIRST };
typedef tg_node *(*build_fn)(tg_tape *t, tg_dtype dt, double fill);
typedef struct build_row {
    const char *op;
    build_fn build;
    int expect;
} build_row;

/* Fails unless every registered op has exactly one row, of its arity: an
 * op added to the registry without a row is named. */
static void expect_rows_cover_registry(const ref_row *refs, size_t nrefs, const build_row *builds,
                                       size_t nbuilds) {
    for (int i = 0; i < tg_op_count(); i++) {
        const tg_op *op = tg_op_at(i);
        /* A derivative op is checked through its base op's row: every
         * derivative the three paths give is its value. */
        if (tg_op_derivative_of(op, NULL)) continue;
        int found = 0;
        for (size_t j = 0; j < nrefs; j++)
            if (!strcmp(refs[j].op, op->name)) {
                found++;
                if (refs[j].arity != op->arity)
                    fail_msg("REFS row of %s has arity %d; the op has %d", op->name, refs[j].arity,
                             op->arity);
            }
        for (size_t j = 0; j < nbuilds; j++) found += !strcmp(builds[j].op, op->name);
        if (found != 1)
            fail_msg("registered op \"%s\" has %d rows in tests/cases/ (want one REFS row for an "
                     "elementwise op or one BUILDS row)",
                     op->name, found);
    }
}

#endif
