/* Reporting for the tapegrad commands: the progress line, the metrics log
 * and the gnuplot picture of `tapegrad train`, and JSON strings (report.c). */
#ifndef TG_CLI_REPORT_H
#define TG_CLI_REPORT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

/* Seconds on a monotonic clock. */
double tg_cli_now(void);

/* The progress line of a run, drawn on stdout when it is a terminal: a
 * status while the data loads or a set is evaluated, and a bar per epoch
 * with the time left for the whole run. */
typedef struct tg_progress {
    bool on;           /* stdout is a terminal */
    int epoch, epochs; /* for the label */
    double run_start, start, last_draw;
} tg_progress;

/* A run of `epochs` epochs; nothing is drawn until a status or an epoch. */
void tg_progress_begin(tg_progress *p, int epochs);
/* Shows a status line, e.g. "loading the data...", until the next draw. */
void tg_progress_status(tg_progress *p, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;
/* The start of epoch (from 1); the run's clock starts with epoch 1. */
void tg_progress_epoch(tg_progress *p, int epoch);
/* A tg_progress_fn: redraws at most ten times a second. The time left is
 * the run's: its elapsed time (training and evaluations so far) scaled by
 * the fraction of all its epochs' samples still to go. */
void tg_progress_update(void *ctx, size_t done, size_t total);
/* Erases the line, leaving the cursor at the start of an empty line. */
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

/* The gnuplot terminal that draws the format named by the extension of
 * path (.png, .svg, .pdf, .eps, in any case), or NULL for another name. */
const char *tg_plot_terminal(const char *path);

/* The extensions tg_plot_terminal() knows, for messages: ".png, .svg, ...". */
extern const char tg_plot_formats[];

/* Draws the loss and accuracy curves of the CSV log csv (epochs rows) into
 * out, in the format of its extension, with gnuplot; one epoch is drawn as
 * points on fixed ranges (gnuplot warns about a range of one value).
 * Returns 0, or -1 after printing why to stderr. */
int tg_plot(const char *csv, const char *out, int epochs);

/* Writes s as a JSON string, quotes included: '"', '\\' and control
 * characters escaped, and every byte that is not part of valid UTF-8 (a
 * message may hold a user's argument cut in the middle of a character)
 * written as U+FFFD, so that the output is always valid JSON. */
void tg_json_string(FILE *f, const char *s);

#endif
