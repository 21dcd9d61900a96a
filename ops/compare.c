/* Comparisons lt le gt ge eq ne (issue 11; being written). */
#include "internal.h"

const tg_op tg_compare_ops[1] = {{0}};
const int tg_compare_count = 0;
