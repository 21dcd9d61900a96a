/* Conditionals where and clamp (issue 11; being written). */
#include "internal.h"

const tg_op tg_select_ops[1] = {{0}};
const int tg_select_count = 0;
