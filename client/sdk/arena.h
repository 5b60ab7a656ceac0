/* arena.h: bump allocation for memory that lives exactly as long as one workflow run or one
 * activity execution, freed all at once. */
#ifndef WEFT_SDK_ARENA_H
#define WEFT_SDK_ARENA_H

#include <stddef.h>

#include "proto/base.h"

/* First block's size; later blocks double up to the maximum (a bigger request gets its own). */
#define SDK_ARENA_BLOCK_BYTES_MIN 4096u
#define SDK_ARENA_BLOCK_BYTES_MAX (1024u * 1024u)

typedef struct sdk_arena_block sdk_arena_block;

/* Zero-initialise (`sdk_arena a = {0};`) before first use. */
typedef struct sdk_arena {
    sdk_arena_block *head; /* newest block first */
    size_t next_bytes;     /* size of the next block */
    size_t used_bytes;     /* total handed out, for limits and stats */
} sdk_arena;

/* `bytes` bytes aligned to 16, valid until sdk_arena_free. NULL when out of memory. Zero bytes
 * gives a valid unique pointer. */
void *sdk_arena_alloc(sdk_arena *a, size_t bytes);

/* Copies `len` bytes (NULL/0 gives an empty, non-NULL result); NULL when out of memory. */
void *sdk_arena_memdup(sdk_arena *a, const void *p, size_t len);

/* A NUL-terminated copy of `s`; NULL when out of memory. */
char *sdk_arena_strdup(sdk_arena *a, weft_str s);

/* Frees every block and resets the arena to empty (reusable). */
void sdk_arena_free(sdk_arena *a);

#endif
