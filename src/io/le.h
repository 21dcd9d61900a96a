/* Little-endian encoding of the checkpoint files (checkpoint.c, training.c):
 * integers and IEEE values in the byte order of docs/formats.md whatever the
 * host's. */
#ifndef TG_LE_H
#define TG_LE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

static inline void put16(unsigned char *p, uint32_t v) {
    p[0] = (unsigned char)v;
    p[1] = (unsigned char)(v >> 8);
}
static inline void put32(unsigned char *p, uint32_t v) {
    put16(p, v & 0xffff);
    put16(p + 2, v >> 16);
}
static inline void put64(unsigned char *p, uint64_t v) {
    put32(p, (uint32_t)v);
    put32(p + 4, (uint32_t)(v >> 32));
}
static inline uint32_t get16(const unsigned char *p) { return (uint32_t)p[0] | (uint32_t)p[1] << 8; }
static inline uint32_t get32(const unsigned char *p) { return get16(p) | get16(p + 2) << 16; }
static inline uint64_t get64(const unsigned char *p) { return get32(p) | (uint64_t)get32(p + 4) << 32; }

static inline bool host_little_endian(void) {
    const uint16_t one = 1;
    return *(const unsigned char *)&one == 1;
}

/* Copies n elements of es bytes between host order and little-endian. */
static inline void copy_le(void *dst, const void *src, size_t n, size_t es) {
    if (host_little_endian()) {
        memcpy(dst, src, n * es);
        return;
    }
    const unsigned char *s = src;
    unsigned char *d = dst;
    for (size_t i = 0; i < n; i++)
        for (size_t b = 0; b < es; b++) d[i * es + b] = s[i * es + es - 1 - b];
}

#endif
