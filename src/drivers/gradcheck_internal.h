/* What tg_gradcheck (gradcheck.c) shares with tg_gradgradcheck
 * (gradgradcheck.c) and the report's printer (gradcheck_print.c). */
#ifndef TG_GRADCHECK_INTERNAL_H
#define TG_GRADCHECK_INTERNAL_H

#include <tapegrad.h>

/* Writes into rep->message what a failed check found and where: how many
 * entries disagree and the worst, or, for worst.row -1, the recorded
 * gradient's disagreement with the backward kernels. */
void tg__gradcheck_summary(tg_gradcheck_report *rep);

#endif
