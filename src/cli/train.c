/* Placeholder until the train/eval commands land. */
#include <stdio.h>

#include "cli.h"

int tg_cli_train(int argc, char **argv) {
    (void)argc, (void)argv;
    fprintf(stderr, "tapegrad train: not built yet\n");
    return 2;
}

int tg_cli_eval(int argc, char **argv) {
    (void)argc, (void)argv;
    fprintf(stderr, "tapegrad eval: not built yet\n");
    return 2;
}
