/* Placeholder until the grad/check commands land. */
#include <stdio.h>

#include "cli.h"

int tg_cli_grad(int argc, char **argv) {
    (void)argc, (void)argv;
    fprintf(stderr, "tapegrad grad: not built yet\n");
    return 2;
}

int tg_cli_check(int argc, char **argv) {
    (void)argc, (void)argv;
    fprintf(stderr, "tapegrad check: not built yet\n");
    return 2;
}
