/* keys.h: byte encodings of every table key. Integers are big-endian so that LMDB's byte
 * order is numeric order; strings are length-prefixed so that no string is a prefix trap. */
#ifndef WEFT_STORAGE_KEYS_H
#define WEFT_STORAGE_KEYS_H

#include <stddef.h>
#include <stdint.h>

#include "../proto/base.h"

/* Large enough for any key: two identifiers of WEFT_ID_BYTES_MAX plus fixed parts. LMDB's own
 * key limit is 511 bytes by default, so long identifiers are hashed (see weft_key_ident). */
#define WEFT_KEY_BYTES_MAX 511u

/* A key being built. */
typedef struct weft_key {
    uint8_t bytes[WEFT_KEY_BYTES_MAX];
    size_t len;
} weft_key;

void weft_key_reset(weft_key *k);
void weft_key_u8(weft_key *k, uint8_t v);
void weft_key_u32(weft_key *k, uint32_t v);
void weft_key_u64(weft_key *k, uint64_t v);
/* An identifier: if it fits, u16 big-endian length then the bytes; identifiers longer than
 * WEFT_KEY_IDENT_INLINE_BYTES are stored as their first bytes plus an xxh3-128 of the whole,
 * so that keys stay under LMDB's 511-byte limit while staying unique in practice. The record
 * itself always holds the full identifier, and readers compare it. 160 lets the widest key,
 * run_ids with three identifiers of 2 + 160 bytes each, fit in WEFT_KEY_BYTES_MAX. */
#define WEFT_KEY_IDENT_INLINE_BYTES 160u
void weft_key_ident(weft_key *k, weft_str s);

uint64_t weft_be64_get(const void *p);
void weft_be64_put(void *p, uint64_t v);
uint32_t weft_be32_get(const void *p);
void weft_be32_put(void *p, uint32_t v);

/* Key constructors, one per table (DESIGN section 6). */
void weft_key_execution(weft_key *k, weft_str ns, weft_str workflow_id);
void weft_key_run_id(weft_key *k, weft_str ns, weft_str workflow_id, weft_str run_id);
/* runs: (run key, part, sub id). part 0 = the run record; others are defined by shards/. */
void weft_key_run_part(weft_key *k, uint64_t run_key, uint8_t part, uint64_t sub_id);
void weft_key_history(weft_key *k, uint64_t run_key, uint64_t event_id);
void weft_key_timer(weft_key *k, uint64_t fire_at_ms, uint64_t seq);
void weft_key_ready(weft_key *k, weft_str task_queue, uint8_t kind, uint64_t seq);
void weft_key_vis(weft_key *k, weft_str ns, weft_str status_or_type, uint64_t start_ms,
                  uint64_t run_key);
void weft_key_dedup(weft_key *k, weft_str ns, weft_str request_id);
void weft_key_namespace(weft_key *k, weft_str ns);

#endif
