/* The library's allocation functions (alloc.c): the heap, with fault
 * injection for the tests. Internal; never installed. */
#ifndef TG_ALLOC_H
#define TG_ALLOC_H

#include <stddef.h>

void *tg__malloc(size_t n);
void *tg__calloc(size_t count, size_t size);
void *tg__realloc(void *p, size_t n);
void tg__free(void *p);

#endif
