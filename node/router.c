/* router.c: request routing: which shard a request is for. Whether this node can serve it is
 * the replica's business (replica.c): a shard this node does not hold, or does not lead,
 * answers NOT_LEADER with a leader hint and its client address, and clients go there. */
#include "router.h"

#include "../proto/partition.h"
#include "../shards/shard.h"

uint32_t weft_router_shard(const weft_node *n, weft_str ns, weft_str workflow_id) {
    WEFT_ASSERT(n->replicas_count > 0);
    if (ns.len == 0) ns = weft_str_c(WEFT_DEFAULT_NAMESPACE);
    uint64_t hash = weft_partition_hash(ns, workflow_id);
    uint32_t shard = weft_shard_for_hash(hash, n->replicas_count);
    WEFT_ASSERT(shard < n->replicas_count);
    return shard;
}

int weft_router_token_shard(const weft_node *n, weft_bytes token, uint32_t *shard, weft_err *err) {
    if (token.len == 0) {
        return weft_err_set(err, WEFT_E_INVALID_ARGUMENT, "task_token",
                            "task_token is required; pass the token from the poll response");
    }
    weft_task_token tt;
    int rc = weft_task_token_decode(token, &tt, err);
    if (rc != 0) {
        if (err != NULL && err->field[0] == '\0')
            snprintf(err->field, sizeof err->field, "task_token");
        return rc;
    }
    if (tt.shard_id >= n->replicas_count) {
        return weft_err_set(
            err, WEFT_E_INVALID_ARGUMENT, "task_token",
            "task_token names shard %u but this cluster has %u shards; pass the token "
            "from a poll response of this cluster",
            tt.shard_id, n->replicas_count);
    }
    *shard = tt.shard_id;
    return 0;
}
