/* tapegrad: parameters, layers, optimisers, datasets, checkpoints (issue 3). Included by <tapegrad.h>. */
#ifndef TAPEGRAD_NN_H
#define TAPEGRAD_NN_H
#endif
