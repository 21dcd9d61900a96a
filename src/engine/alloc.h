/* The library's allocation functions (alloc.c): the heap, with fault
 * injection for the tests. Internal; never installed. */
#ifndef TG_ALLOC_H
#define TG_ALLOC_H

#include <stdbool.h>
#include <stddef.h>

void *tg__malloc(size_t n);
void *tg__calloc(size_t count, size_t size);
void *tg__realloc(void *p, size_t n);
void tg__free(void *p);
/* size bytes at a multiple of align (a power of two), or NULL; *block is
 * what tg__free takes back, *held the bytes the allocation holds. With the
 * C library's allocator, posix_memalign (which gives its slack back to the
 * heap); with a user's, an over-allocation by align - 1. */
void *tg__aligned(size_t align, size_t size, void **block, size_t *held);
/* Whether tg__aligned holds no more than it gives (the C library's
 * allocator). */
bool tg__aligned_exact(void);

#endif
