/* partition.c: the partition hash and the range each shard owns (DESIGN section 5). */
#include "partition.h"

#include <string.h>
#define XXH_STATIC_LINKING_ONLY /* XXH3_state_t on the stack */
#include <xxhash.h>

uint64_t weft_partition_hash(weft_str ns, weft_str workflow_id) {
    XXH3_state_t st;
    XXH3_64bits_reset(&st);
    XXH3_64bits_update(&st, ns.ptr ? ns.ptr : "", ns.len);
    const unsigned char zero = 0;
    XXH3_64bits_update(&st, &zero, 1);
    XXH3_64bits_update(&st, workflow_id.ptr ? workflow_id.ptr : "", workflow_id.len);
    return XXH3_64bits_digest(&st);
}

/* Shard i owns [i * 2^64 / S, (i + 1) * 2^64 / S - 1]: computed in 128 bits so the ranges
 * are equal to within one and cover the space exactly. */
uint32_t weft_shard_for_hash(uint64_t hash, uint32_t shards) {
    WEFT_ASSERT(shards > 0 && shards <= WEFT_SHARDS_MAX);
    unsigned __int128 prod = (unsigned __int128)hash * shards;
    uint32_t i = (uint32_t)(prod >> 64);
    WEFT_ASSERT(i < shards);
    return i;
}

void weft_shard_range(uint32_t i, uint32_t shards, uint64_t *first, uint64_t *last) {
    WEFT_ASSERT(shards > 0 && i < shards);
    unsigned __int128 space = (unsigned __int128)1 << 64;
    unsigned __int128 lo = (space * i + shards - 1) / shards;
    unsigned __int128 hi = (space * (i + 1) + shards - 1) / shards - 1;
    *first = (uint64_t)lo;
    *last = (uint64_t)hi;
}
