/* Reporting for the tapegrad commands: the progress bar, the metrics log and
 * the gnuplot picture of `tapegrad train`, and JSON strings (report.c). */
#ifndef TG_CLI_REPORT_H
#define TG_CLI_REPORT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

/* Seconds on a monotonic clock. */
double tg_cli_now(void);

/* The progress bar of one epoch, drawn on stdout when it is a terminal. */
typedef struct tg_progress {
    bool on;           /* stdout is a terminal */
    int epoch, epochs; /* for the label */
    double start, last_draw;
} tg_progress;

void tg_progress_begin(tg_progress *p, int epoch, int epochs);
/* A tg_progress_fn: redraws at most ten times a second. */
void tg_progress_update(void *ctx, size_t done, size_t total);
/* Erases the bar, leaving the cursor at the start of an empty line. */
void tg_progress_end(tg_progress *p);

/* One epoch's figures. */
typedef struct tg_epoch_row {
    int epoch;
    double train_loss, test_loss, test_accuracy, valid_accuracy, seconds;
} tg_epoch_row;

/* Writes the CSV header / one row (valid_accuracy only when with_valid). */
void tg_log_header(FILE *f, bool with_valid);
void tg_log_row(FILE *f, const tg_epoch_row *r, bool with_valid);

/* Sets the BLAS library's thread count when it has a known knob
 * (OpenBLAS's openblas_set_num_threads, found at run time). With n <= 0,
 * sets 1 unless OPENBLAS_NUM_THREADS or OMP_NUM_THREADS is set: small
 * per-step matrix products run fastest on one thread. Returns the count
 * set, or 0 when nothing was changed. */
int tg_cli_blas_threads(int n);

/* Whether an executable called name is on PATH. */
bool tg_cli_have_program(const char *name);

/* Draws the loss and accuracy curves of the CSV log csv (epochs rows) into
 * png with gnuplot. Returns 0, or -1 after printing why to stderr. */
int tg_plot(const char *csv, const char *png, int epochs);

/* Writes s as a JSON string, quotes included: '"', '\\' and control
 * characters escaped, and every byte that is not part of valid UTF-8 (a
 * message may hold a user's argument cut in the middle of a character)
 * written as U+FFFD, so that the output is always valid JSON. */
void tg_json_string(FILE *f, const char *s);

#endif
