/* listtoken.h: the ListWorkflows page token and the global list order (docs/protocol.md,
 * "ListWorkflows"). Runs are listed newest first across every shard, in the descending order
 * of the position (start_ms, shard, run_key); the token is the position of the last run of the
 * page, msgpack [start_ms, shard, run_key], and the next page holds the runs strictly after it
 * in that order. Every shard can resume from it on its own (weft_list_cursor_bound), so one
 * small cursor serves the whole cluster. Between nodes, [start_ms, shard, run_key, only] asks
 * for the one shard `only`. */
#ifndef WEFT_NODE_LISTTOKEN_H
#define WEFT_NODE_LISTTOKEN_H

#include <msgpack.h>
#include <stdbool.h>
#include <stdint.h>

#include "../proto/base.h"
#include "../proto/errors.h"

/* A run's place in the global list order. */
typedef struct weft_list_pos {
    uint64_t start_ms; /* the run's start time */
    uint32_t shard;    /* the shard that holds it */
    uint64_t run_key;  /* its key within that shard */
} weft_list_pos;

/* The position before every run: the cursor of a first page. No run starts at UINT64_MAX ms. */
#define WEFT_LIST_POS_TOP ((weft_list_pos){UINT64_MAX, 0, UINT64_MAX})

/* A decoded page token: where to resume and, between nodes, the one shard asked for. */
typedef struct weft_list_token {
    weft_list_pos after; /* list the runs strictly after this position */
    bool has_only;       /* a node asks for shard `only` alone */
    uint32_t only;
} weft_list_token;

/* Compares two positions in list order: < 0 when `a` is listed before `b` (newer start time,
 * then the higher shard, then the higher run key), 0 when equal. */
int weft_list_pos_cmp(const weft_list_pos *a, const weft_list_pos *b);

/* Decodes a page token from outside this process (a client's or a peer's) for a cluster of
 * `shards` shards. The raw bytes are checked (weft_msgpack_check) before msgpack-c unpacks
 * them. Returns 0, or -WEFT_E_INVALID_ARGUMENT naming next_page_token with the reason. */
int weft_list_token_decode(const uint8_t *tok, size_t len, uint32_t shards, weft_list_token *out,
                           weft_err *err);

/* Writes the token's bytes into `out` (initialised by the caller). Returns 0 or nonzero when
 * out of memory. */
int weft_list_token_encode(const weft_list_token *t, msgpack_sbuffer *out);

/* Where shard `shard` resumes after `after`: its runs whose (start_ms, run_key) is strictly
 * below (*bound_ms, *bound_key). Returns false when nothing bounds it (every run qualifies). */
bool weft_list_cursor_bound(const weft_list_pos *after, uint32_t shard, uint64_t *bound_ms,
                            uint64_t *bound_key);

#endif
