/* replica.h: one shard replica on this node: the shard state machine bound to its raft group
 * (the weft_group_fsm glue), its role as the rest of the node sees it, and the proposal and
 * barrier calls every request path goes through. */
#ifndef WEFT_NODE_REPLICA_H
#define WEFT_NODE_REPLICA_H

#include <stdbool.h>
#include <stdint.h>

#include "node.h"

/* Opens shard `shard_id`'s state and starts its raft group (single-node peer list: this node).
 * Returns 0 or a negative code with the reason in `err`. */
int weft_replica_open(weft_replica *rep, weft_node *n, uint32_t shard_id, weft_err *err);
/* Closes the shard state (LMDB). Only after the raft host has closed: raft may apply until then. */
/* Closes the shard state; returns weft_shard_close's result (non-zero: a flush failed). */
int weft_replica_close_shard(weft_replica *rep);

/* True when the replica leads its group and its own-term barrier has applied (DESIGN 5). */
bool weft_replica_ready(const weft_replica *rep);
/* Asks for a restart from disk when the shard stopped on a storage failure (once). */
void weft_replica_notice_failure(weft_replica *rep);
/* 0 when ready; otherwise fills `err` with NOT_LEADER (and *hint, the leader's node id) when
 * another node leads, or UNAVAILABLE "shard N has no leader yet; retry" while electing. */
int weft_replica_check_leader(const weft_replica *rep, weft_err *err, uint64_t *hint);

/* Proposes `cmd` (malloc'd; transferred on success) through the group. `cb` runs exactly once
 * unless this fails synchronously (then `cmd` is freed here and cb never runs). Counts the
 * proposal so that shutdown can wait for it. */
int weft_replica_propose(weft_replica *rep, uint8_t *cmd, size_t cmd_len, weft_propose_cb cb,
                         void *data, weft_err *err);
/* Linearizable read gate (raft barrier), counted like proposals. Same callback rules. */
int weft_replica_barrier(weft_replica *rep, weft_barrier_cb cb, void *data, weft_err *err);

#endif
