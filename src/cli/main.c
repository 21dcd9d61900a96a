/* The tapegrad program: dispatches to its commands. */
#define _POSIX_C_SOURCE 200809L
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <tapegrad.h>

#include "cli.h"
#include "suggest.h"

/* predict.c: tapegrad predict ... (declared here until cli.h, which another
 * change owns, gains it). */

static const struct command {
    const char *name, *summary;
    int (*run)(int argc, char **argv);
} commands[] = {
    {"grad", "value and partial derivatives of an expression", tg_cli_grad},
    {"hess", "value, gradient and Hessian matrix of an expression", tg_cli_hess},
    {"check", "gradient-check an expression against finite differences", tg_cli_check},
    {"train", "train an MLP on an MNIST-format dataset or a CSV file", tg_cli_train},
    {"eval", "evaluate a saved model on a dataset", tg_cli_eval},
    {"predict", "the class a saved model predicts for each sample, with probabilities",
     tg_cli_predict},
};

static void usage(FILE *f) {
    fprintf(f, "usage: tapegrad COMMAND [OPTIONS]\n       tapegrad --version\n\ncommands:\n");
    for (size_t i = 0; i < sizeof commands / sizeof *commands; i++)
        fprintf(f, "  %-8s %s\n", commands[i].name, commands[i].summary);
    fprintf(f, "\n'tapegrad COMMAND --help' describes a command.\n"
               "\nexamples:\n"
               "  tapegrad grad '(x+y)*z' x=-2 y=5 z=-4       f and df/dx, df/dy, df/dz\n"
               "  tapegrad grad --json 'sin(x)*y' x=1 y=2     the same as one JSON object\n"
               "  tapegrad check 'sigmoid(w*x+b)' w=0.5 x=2 b=-1\n"
               "                                              derivatives vs finite differences\n"
               "  tapegrad grad --dot f.dot 'x*y' x=2 y=3     and a picture: dot -Tpng f.dot\n"
               "  tapegrad hess 'x^3*y + sin(x)*y^2' x=0.7 y=-1.3\n"
               "                                              the Hessian matrix too\n"
               "  tapegrad train --save m.tgm                 an MLP on Fashion-MNIST\n"
               "  tapegrad predict --model m.tgm --index 0    its prediction for a test image\n");
}

int main(int argc, char **argv) {
    /* Past a file-size limit (ulimit -f) a write then fails with EFBIG,
     * which is reported, instead of the process dying mid-save. */
    signal(SIGXFSZ, SIG_IGN);
    if (argc < 2) {
        usage(stderr);
        return 2;
    }
    if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") || !strcmp(argv[1], "help")) {
        usage(stdout);
        return 0;
    }
    if (!strcmp(argv[1], "--version") || !strcmp(argv[1], "-V")) {
        printf("tapegrad %d.%d.%d\n", TAPEGRAD_VERSION_MAJOR, TAPEGRAD_VERSION_MINOR,
               TAPEGRAD_VERSION_PATCH);
        return 0;
    }
    tg__suggest s;
    tg__suggest_init(&s, argv[1]);
    for (size_t i = 0; i < sizeof commands / sizeof *commands; i++) {
        if (!strcmp(argv[1], commands[i].name)) return commands[i].run(argc - 1, argv + 1);
        tg__suggest_consider(&s, commands[i].name);
    }
    const char *best = tg__suggest_best(&s);
    if (best) {
        fprintf(stderr, "tapegrad: unknown command '%s' (did you mean %s?)\n", argv[1], best);
        return 2;
    }
    fprintf(stderr, "tapegrad: unknown command '%s'\n\n", argv[1]);
    usage(stderr);
    return 2;
}
