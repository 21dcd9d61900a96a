/* Shape and indexing ops (issue 11; being written). */
#include "internal.h"

const tg_op tg_shape_ops[1] = {{0}};
const int tg_shape_count = 0;
