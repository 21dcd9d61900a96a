/* tapegrad: gradient checking and graph pictures (issue 4). Included by <tapegrad.h>. */
#ifndef TAPEGRAD_GRADCHECK_H
#define TAPEGRAD_GRADCHECK_H
#endif
