/* Activations leaky_relu and elu (issue 11; being written). */
#include "internal.h"

const tg_op tg_activation_ops[1] = {{0}};
const int tg_activation_count = 0;
