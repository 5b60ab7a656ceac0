/* cluster.h: this node among its peers (issue 4): which peers are up as far as raft traffic
 * shows, where a request for a shard should go, moving leadership to each shard's preferred
 * node while running, and handing every leadership off before a graceful stop. */
#ifndef WEFT_NODE_CLUSTER_H
#define WEFT_NODE_CLUSTER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "node.h"

/* A peer is shown up while this node received a raft message from it within this many
 * election timeouts: leaders heartbeat every heartbeat interval (a fifth of an election
 * timeout at most), so a live peer that shares a group with a leader on either side is heard
 * many times per window, while a dead one drops out within a few seconds. */
#define WEFTD_PEER_UP_ELECTION_TIMEOUTS 2u
/* How often a node checks whether it must shed the leaderships it holds (its disk is low, or
 * its clock is off: weft_node_leadership_refusal). The moves to preferred nodes run on the
 * same timer, at --rebalance-interval-ms (config.h) instead when that is set. */
#define WEFTD_SHED_CHECK_INTERVAL_MS 5000u
/* After a move towards the preferred node, the next one waits at least this long. A move that
 * did not take (the node refuses leadership: its disk is low, or it is stopping) held the
 * shard's writes for half an election timeout; retrying it every interval would do that
 * again and again. */
#define WEFTD_REBALANCE_RETRY_MS 60000u
/* A graceful stop waits at most this many election timeouts for the leaderships it hands off
 * (libraft 0.15 gives a transfer its base election timeout, half of ours (raft/host.h); the
 * other half covers a retry to another voter). After that it stops anyway: the followers
 * elect a leader themselves. */
#define WEFTD_HANDOFF_ELECTION_TIMEOUTS 1u
/* How often the hand-off looks whether leadership has moved. */
#define WEFTD_HANDOFF_POLL_MS 20u

/* Asks every shard this node leads to move to a caught-up peer (raft's choice when none is),
 * logging `why`. Used while the node refuses leadership (disk.c); a transfer already under way
 * is left alone. */
void weft_cluster_shed_leadership(weft_node *n, const char *why);

/* A node is cut off from its peers when, for this many election timeouts, it has heard from
 * no majority of the replicas of any shard it holds (itself counted). One election timeout is
 * what a follower waits for its leader before it stands for election, and what libraft's
 * leader waits for a majority before it steps down: a node that heard no majority for that
 * long can neither lead nor reach a leader, so it answers at once rather than holding
 * requests it cannot serve (issue 9). */
#define WEFTD_CUT_OFF_ELECTION_TIMEOUTS 1u
/* Bytes of the "node 2 (127.0.0.1:7401), node 3 (...)" list of the other nodes. */
#define WEFTD_CLUSTER_OTHERS_TEXT_BYTES 1024u

/* True when this node is cut off from its peers (WEFTD_CUT_OFF_ELECTION_TIMEOUTS). Never true
 * for a single node, with R = 1, or within an election timeout of the start. */
bool weft_cluster_cut_off(const weft_node *n);
/* Sets `err` to the answer of a cut-off node: UNAVAILABLE, saying so and naming the other
 * nodes to send the request to. Returns -WEFT_E_UNAVAILABLE. */
int weft_cluster_cut_off_err(const weft_node *n, weft_err *err);
/* Writes "node 2 (127.0.0.1:7401), node 3 (127.0.0.1:7402)": every other member with its
 * client address, for messages that tell a client where to go instead. Truncated to cap. */
void weft_cluster_others_text(const weft_node *n, char *buf, size_t cap);

/* True for this node, and for a peer heard from within WEFTD_PEER_UP_ELECTION_TIMEOUTS. */
bool weft_cluster_peer_up(const weft_node *n, uint64_t node_id);
/* The client address of node `node_id` from the peer list, or "" when it is not a member.
 * Borrowed from the node's config. */
const char *weft_cluster_client_address(const weft_node *n, uint64_t node_id);
/* The node a request for this shard should go to when this node cannot serve it: the leader
 * this node knows of (its own replica's view); when the shard is not hosted here, its
 * preferred leader, or while that node is down (weft_cluster_peer_up) the first replica in
 * placement order that is up; 0 when a hosted shard has no leader yet. */
uint64_t weft_cluster_leader_guess(const weft_replica *rep);

/* Starts the preferred-leader check (a no-op timer with one node or R = 1). */
void weft_cluster_rebalance_start(weft_node *n);
/* Stops it (draining); idempotent. */
void weft_cluster_rebalance_stop(weft_node *n);

/* Drained: hands every leadership this node holds to a caught-up voter and waits (bounded)
 * for them to move, then calls node close. With nothing to hand off it closes at once. */
void weft_cluster_handoff_begin(weft_node *n);
/* drain_timer tick during the hand-off. */
void weft_cluster_handoff_poll(weft_node *n);

#endif
