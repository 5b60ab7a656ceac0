/* arena.c: bump allocation freed all at once (arena.h). */
#include "arena.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define ARENA_ALIGN_BYTES 16u

struct sdk_arena_block {
    sdk_arena_block *next; /* older block */
    size_t cap_bytes;      /* usable bytes after the header */
    size_t used_bytes;     /* bytes handed out from this block */
    _Alignas(16) unsigned char data[];
};

void *sdk_arena_alloc(sdk_arena *a, size_t bytes) {
    WEFT_ASSERT(a != NULL);
    size_t need = (bytes + ARENA_ALIGN_BYTES - 1) & ~(size_t)(ARENA_ALIGN_BYTES - 1);
    if (need < bytes) return NULL; /* overflow */
    if (need == 0) need = ARENA_ALIGN_BYTES;
    sdk_arena_block *b = a->head;
    if (b == NULL || b->cap_bytes - b->used_bytes < need) {
        if (a->next_bytes < SDK_ARENA_BLOCK_BYTES_MIN) a->next_bytes = SDK_ARENA_BLOCK_BYTES_MIN;
        size_t cap = need > a->next_bytes ? need : a->next_bytes;
        if (cap > SIZE_MAX - sizeof *b) return NULL;
        b = malloc(sizeof *b + cap);
        if (b == NULL) return NULL;
        b->cap_bytes = cap;
        b->used_bytes = 0;
        b->next = a->head;
        a->head = b;
        if (a->next_bytes < SDK_ARENA_BLOCK_BYTES_MAX) a->next_bytes *= 2;
    }
    void *p = b->data + b->used_bytes;
    b->used_bytes += need;
    a->used_bytes += need;
    WEFT_ASSERT(b->used_bytes <= b->cap_bytes);
    return p;
}

void *sdk_arena_memdup(sdk_arena *a, const void *p, size_t len) {
    void *d = sdk_arena_alloc(a, len);
    if (d != NULL && len > 0) memcpy(d, p, len);
    return d;
}

char *sdk_arena_strdup(sdk_arena *a, weft_str s) {
    char *d = sdk_arena_alloc(a, (size_t)s.len + 1);
    if (d == NULL) return NULL;
    if (s.len > 0) memcpy(d, s.ptr, s.len);
    d[s.len] = '\0';
    return d;
}

void sdk_arena_free(sdk_arena *a) {
    sdk_arena_block *b = a->head;
    while (b != NULL) {
        sdk_arena_block *next = b->next;
        free(b);
        b = next;
    }
    *a = (sdk_arena){0};
}
