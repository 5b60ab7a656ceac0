/* reply.h: the outcome of one request as it leaves a layer: a code, an error message, and on
 * success an encoded response body. Shards produce it at apply, raft carries it back to the
 * proposer, node frames it. */
#ifndef WEFT_PROTO_REPLY_H
#define WEFT_PROTO_REPLY_H

#include <stddef.h>
#include <stdint.h>

#include "errors.h"

typedef struct weft_reply {
    weft_err err;        /* err.code == 0 on success */
    uint8_t *body;       /* success: msgpack map of the op's response schema (malloc'd, owned) */
    size_t body_len;     /* bytes in body */
    uint64_t leader_hint;/* NOT_LEADER: node id of the known leader, 0 if unknown */
} weft_reply;

/* Frees the body and zeroes the reply. Safe on a zeroed reply. */
void weft_reply_reset(weft_reply *r);
/* Moves `src` into `dst` (dst is reset first); src is left zeroed. */
void weft_reply_move(weft_reply *dst, weft_reply *src);

#endif
