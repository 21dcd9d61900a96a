/* The one allocator every heap allocation of the library goes through, so
 * that users can substitute theirs and tests can count or fail allocations. */
#define _POSIX_C_SOURCE 200809L /* posix_memalign */
#include "alloc.h"

#include "tapegrad.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static void *libc_malloc(size_t n, void *ctx) { (void)ctx; return malloc(n); }
static void *libc_realloc(void *p, size_t n, void *ctx) { (void)ctx; return realloc(p, n); }
static void libc_free(void *p, void *ctx) { (void)ctx; free(p); }

static tg_allocator current = {libc_malloc, libc_realloc, libc_free, NULL};

void tg_set_allocator(const tg_allocator *a) {
    static const tg_allocator libc = {libc_malloc, libc_realloc, libc_free, NULL};
    current = (a && a->malloc && a->realloc && a->free) ? *a : libc;
}

void *tg__malloc(size_t n) { return current.malloc(n ? n : 1, current.ctx); }

void *tg__calloc(size_t count, size_t size) {
    if (size && count > SIZE_MAX / size) return NULL;
    void *p = tg__malloc(count * size);
    if (p) memset(p, 0, count * size);
    return p;
}

void *tg__aligned(size_t align, size_t size, void **block, size_t *held) {
    if (current.malloc == libc_malloc) {
        if (posix_memalign(block, align, size)) return *block = NULL;
        *held = size;
        return *block;
    }
    if (size > SIZE_MAX - align || !(*block = tg__malloc(size + align - 1))) return NULL;
    *held = size + align - 1;
    return (void *)(((uintptr_t)*block + align - 1) & ~(uintptr_t)(align - 1));
}

bool tg__aligned_exact(void) { return current.malloc == libc_malloc; }

void *tg__realloc(void *p, size_t n) { return current.realloc(p, n ? n : 1, current.ctx); }

void tg__free(void *p) {
    if (p) current.free(p, current.ctx);
}
