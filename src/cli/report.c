/* Progress line, metrics log and gnuplot picture of `tapegrad train`; JSON
 * strings for the commands' --json output. */
#define _POSIX_C_SOURCE 200809L
#include "report.h"

#include <dlfcn.h>
#include <stdarg.h>
#include <strings.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

double tg_cli_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

void tg_progress_begin(tg_progress *p, int epochs) {
    *p = (tg_progress){.on = isatty(STDOUT_FILENO), .epochs = epochs};
}

void tg_progress_status(tg_progress *p, const char *fmt, ...) {
    if (!p->on) return;
    va_list ap;
    va_start(ap, fmt);
    printf("\r");
    vprintf(fmt, ap);
    printf("\033[K");
    va_end(ap);
    fflush(stdout);
}

void tg_progress_epoch(tg_progress *p, int epoch) {
    p->epoch = epoch;
    p->start = tg_cli_now();
    if (epoch == 1) p->run_start = p->start;
    p->last_draw = 0;
}

void tg_progress_update(void *ctx, size_t done, size_t total) {
    tg_progress *p = ctx;
    if (!p->on) return;
    double now = tg_cli_now();
    if (now - p->last_draw < 0.1 && done < total) return;
    p->last_draw = now;
    double el = now - p->start, rate = el > 0 ? (double)done / el : 0;
    /* Fractions of the whole run's samples. */
    double all = (double)total * p->epochs, past = (double)total * (p->epoch - 1) + (double)done;
    double run = now - p->run_start, left = past > 0 ? run * (all - past) / past : 0;
    enum { WIDTH = 30 };
    char bar[WIDTH + 1];
    int full = total ? (int)((double)WIDTH * (double)done / (double)total) : WIDTH;
    for (int i = 0; i < WIDTH; i++) bar[i] = i < full ? '#' : '.';
    bar[WIDTH] = '\0';
    int secs = (int)(left + 0.5);
    printf("\repoch %d/%d [%s] %5.1f%% %8.0f samples/s %d:%02d:%02d left\033[K", p->epoch,
           p->epochs, bar, total ? 100.0 * (double)done / (double)total : 100.0, rate,
           secs / 3600, secs / 60 % 60, secs % 60);
    fflush(stdout);
}

void tg_progress_end(tg_progress *p) {
    if (!p->on) return;
    printf("\r\033[K");
    fflush(stdout);
}

void tg_log_header(FILE *f, bool with_valid) {
    fprintf(f, "epoch,train_loss,test_loss,test_accuracy,seconds%s\n",
            with_valid ? ",valid_accuracy" : "");
}

void tg_log_row(FILE *f, const tg_epoch_row *r, bool with_valid) {
    fprintf(f, "%d,%.6f,%.6f,%.4f,%.3f", r->epoch, r->train_loss, r->test_loss,
            r->test_accuracy, r->seconds);
    if (with_valid) fprintf(f, ",%.4f", r->valid_accuracy);
    fprintf(f, "\n");
    fflush(f);
}

int tg_cli_blas_threads(int n) {
    if (n <= 0) {
        if (getenv("OPENBLAS_NUM_THREADS") || getenv("OMP_NUM_THREADS")) return 0;
        n = 1;
    }
    void *self = dlopen(NULL, RTLD_NOW);
    if (!self) return 0;
    /* A data pointer converted to a function pointer, as POSIX allows for dlsym. */
    void (*set)(int);
    void *sym = dlsym(self, "openblas_set_num_threads");
    memcpy(&set, &sym, sizeof set);
    if (set) set(n);
    dlclose(self);
    return set ? n : 0;
}

bool tg_cli_have_program(const char *name) {
    const char *path = getenv("PATH");
    if (!path) path = "/usr/bin:/bin";
    char buf[4096];
    while (*path) {
        size_t len = strcspn(path, ":");
        if (len && len + strlen(name) + 2 < sizeof buf) {
            memcpy(buf, path, len);
            buf[len] = '/';
            strcpy(buf + len + 1, name);
            if (access(buf, X_OK) == 0) return true;
        }
        path += len + (path[len] == ':');
    }
    return false;
}

/* Writes s with every ' doubled, for a single-quoted gnuplot string. */
static void quoted(FILE *f, const char *s) {
    fputc('\'', f);
    for (; *s; s++) {
        if (*s == '\'') fputc('\'', f);
        fputc(*s, f);
    }
    fputc('\'', f);
}

static const struct {
    const char *ext, *terminal;
} formats[] = {
    {".png", "pngcairo size 1000,420"},
    {".svg", "svg size 1000,420"},
    {".pdf", "pdfcairo size 10in,4.2in"},
    {".eps", "epscairo size 10in,4.2in"},
};
const char tg_plot_formats[] = ".png, .svg, .pdf or .eps";

const char *tg_plot_terminal(const char *path) {
    size_t len = strlen(path);
    for (size_t i = 0; i < sizeof formats / sizeof *formats; i++) {
        size_t el = strlen(formats[i].ext);
        if (len > el && !strcasecmp(path + len - el, formats[i].ext)) return formats[i].terminal;
    }
    return NULL;
}

int tg_plot(const char *csv, const char *out, int epochs) {
    const char *terminal = tg_plot_terminal(out);
    if (!terminal) {
        fprintf(stderr, "tapegrad train: --plot %s: the name must end in %s\n", out,
                tg_plot_formats);
        return -1;
    }
    if (!tg_cli_have_program("gnuplot")) {
        fprintf(stderr,
                "tapegrad train: --plot: gnuplot is not installed, so %s was not drawn "
                "(apt-get install gnuplot-nox)\n",
                out);
        return -1;
    }
    FILE *g = popen("gnuplot", "w");
    if (!g) {
        perror("tapegrad train: --plot: cannot run gnuplot");
        return -1;
    }
    fprintf(g, "set terminal %s noenhanced\nset output ", terminal);
    quoted(g, out);
    /* Whole epochs on the x axis, about ten tics at most. One epoch gives
     * ranges of one value, which gnuplot widens with a warning: fix them. */
    fprintf(g,
            "\nset datafile separator ','\nset key autotitle columnhead\n"
            "set multiplot layout 1,2\nset xlabel 'epoch'\nset grid\nset xtics %d\n",
            epochs > 10 ? (epochs + 9) / 10 : 1);
    if (epochs == 1) fprintf(g, "set xrange [0.5:1.5]\nset yrange [0:*]\n");
    fprintf(g, "set title 'loss'\nplot ");
    quoted(g, csv);
    fprintf(g, " using 1:2 with linespoints title 'train', '' using 1:3 with linespoints "
               "title 'test'\nset title 'test accuracy'\nset key bottom right\n");
    if (epochs == 1) fprintf(g, "set yrange [0:1]\n");
    fprintf(g, "plot ");
    quoted(g, csv);
    fprintf(g, " using 1:4 with linespoints title 'test accuracy'\nunset multiplot\n"
               "set output\n");
    int st = pclose(g);
    if (st != 0) {
        fprintf(stderr, "tapegrad train: --plot: gnuplot failed (status %d); %s may be missing\n",
                WIFEXITED(st) ? WEXITSTATUS(st) : st, out);
        return -1;
    }
    return 0;
}

/* The length of the valid UTF-8 sequence at s (1 to 4), or 0 (RFC 3629:
 * no overlong forms, no surrogates, nothing above U+10FFFF). */
static int utf8_len(const unsigned char *s) {
    unsigned char c = s[0];
    int n = c < 0x80 ? 1 : c >= 0xC2 && c <= 0xDF ? 2 : c >= 0xE0 && c <= 0xEF ? 3
                                                 : c >= 0xF0 && c <= 0xF4 ? 4 : 0;
    /* The second byte's range depends on the first. */
    unsigned char lo = c == 0xE0 ? 0xA0 : c == 0xF0 ? 0x90 : 0x80;
    unsigned char hi = c == 0xED ? 0x9F : c == 0xF4 ? 0x8F : 0xBF;
    for (int i = 1; i < n; i++)
        if (s[i] < (i == 1 ? lo : 0x80) || s[i] > (i == 1 ? hi : 0xBF)) return 0;
    return n;
}

void tg_json_string(FILE *f, const char *s) {
    const unsigned char *u = (const unsigned char *)s;
    fputc('"', f);
    while (*u) {
        int n = utf8_len(u);
        if (!n) {
            fputs("\\ufffd", f);
            u++;
        } else if (*u == '"' || *u == '\\') {
            fprintf(f, "\\%c", *u++);
        } else if (*u < 0x20 || *u == 0x7f) {
            fprintf(f, "\\u%04x", *u++);
        } else {
            fwrite(u, 1, (size_t)n, f);
            u += n;
        }
    }
    fputc('"', f);
}
