/* router.h: which local replica serves a request: by workflow key (DESIGN section 5,
 * "Partition key") or by the shard a task token names. */
#ifndef WEFT_NODE_ROUTER_H
#define WEFT_NODE_ROUTER_H

#include <stdint.h>

#include "../proto/base.h"
#include "node.h"

/* The shard owning (namespace, workflow id); an empty namespace means "default". */
uint32_t weft_router_shard(const weft_node *n, weft_str ns, weft_str workflow_id);

/* The shard a task token names. Returns 0, or -INVALID_ARGUMENT naming task_token when the
 * token is malformed or names a shard this cluster does not have. */
int weft_router_token_shard(const weft_node *n, weft_bytes token, uint32_t *shard, weft_err *err);

#endif
