/* partition.h: which shard owns a workflow (DESIGN section 5, "Partition key"). Shared by the
 * node's router and the client's direct-to-leader routing. */
#ifndef WEFT_PROTO_PARTITION_H
#define WEFT_PROTO_PARTITION_H

#include <stdint.h>

#include "base.h"

/* Largest shard count weft accepts. */
#define WEFT_SHARDS_MAX 1024u

/* xxh3_64 over namespace, one 0x00 byte, workflow id. */
uint64_t weft_partition_hash(weft_str ns, weft_str workflow_id);
/* Shard owning `hash` among `shards` equal contiguous ranges of the 64-bit space (ranges, not
 * modulo, so that a shard can later split). */
uint32_t weft_shard_for_hash(uint64_t hash, uint32_t shards);
/* First and last hash (inclusive) owned by shard `i`. */
void weft_shard_range(uint32_t i, uint32_t shards, uint64_t *first, uint64_t *last);

#endif
