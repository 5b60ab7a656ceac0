/* placement.h: the static cluster of issue 4: its peer list (--peers), which nodes hold each
 * shard and which node should lead it (DESIGN section 5, "Placement"), and the cluster id that
 * every node derives from the same settings ("Cluster identity"). Pure functions: no I/O, no
 * clock, no randomness, so every node computes the same answers. */
#ifndef WEFT_NODE_PLACEMENT_H
#define WEFT_NODE_PLACEMENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "../proto/errors.h"
#include "../raft/host.h"
#include "address.h"

/* Nodes in one cluster, at most. DESIGN section 5 aims at clusters of 3 to 5 nodes with a
 * static peer list; 9 leaves room for a larger fault domain without letting one flag build a
 * peer table, a topology reply and a per-node "last heard" table of arbitrary size. A shard's
 * raft group has R <= nodes members, so the raft host's member bound must cover it. */
#define WEFT_CLUSTER_NODES_MAX 9u
/* The replication factor defaults to min(3, nodes) (DESIGN section 5): three replicas survive
 * one failure with a majority left, and more cost writes without being asked for. */
#define WEFT_REPLICATION_FACTOR_DEFAULT_MAX 3u
/* Longest accepted address text: "a.b.c.d:port", "[v6]:port" (at most 47 bytes) or a short
 * "name:port", with room to spare. */
#define WEFTD_ADDRESS_BYTES_MAX 64u
/* Longest --peers text: a full cluster of maximal entries ("id=a.b.c.d:port/a.b.c.d:port,"). */
#define WEFTD_PEERS_TEXT_BYTES_MAX 2048u
/* Cluster id: 128 bits as lowercase hex (random for a single node, XXH3-128 with --peers). */
#define WEFTD_CLUSTER_ID_HEX_BYTES 32u
/* Longest canonical peer list ("id=raft address" joined by ","), stored in weft.meta. */
#define WEFTD_PEERS_CANONICAL_BYTES_MAX                                                            \
    (WEFT_CLUSTER_NODES_MAX * (20u + 1u + WEFTD_ADDRESS_BYTES_MAX + 1u))

_Static_assert(WEFT_RAFT_PEERS_MAX >= WEFT_CLUSTER_NODES_MAX,
               "a shard's raft group may hold every node of the cluster");

/* One node of the cluster, from its --peers entry ID=CLIENT_HOST:PORT/RAFT_HOST:PORT. */
typedef struct weft_cluster_node {
    uint64_t id;                                  /* node id (= raft id of its replicas), > 0 */
    char client_address[WEFTD_ADDRESS_BYTES_MAX]; /* "host:port" clients and workers dial;
                                                     numeric once config.c resolved it */
    char raft_address[WEFTD_ADDRESS_BYTES_MAX];   /* "a.b.c.d:port" of its single raft port
                                                     (IPv4: libraft 0.15), once resolved */
} weft_cluster_node;

/* The whole cluster as this node was configured. */
typedef struct weft_cluster {
    weft_cluster_node nodes[WEFT_CLUSTER_NODES_MAX]; /* sorted by id: the placement order */
    uint32_t nodes_count;        /* entries in nodes, 1..WEFT_CLUSTER_NODES_MAX */
    uint32_t replication_factor; /* replicas per shard, 1..nodes_count */
    uint32_t self;               /* index of this node in nodes */
    bool from_peers;             /* --peers was given; false: today's single node */
} weft_cluster;

/* Parses a peer list "ID=CLIENT_HOST:PORT/RAFT_HOST:PORT,ID=..." (spaces around entries and
 * an empty last entry are allowed) into c->nodes, sorted by id, and sets c->nodes_count.
 * Leaves replication_factor, self and from_peers alone. `text` is borrowed.
 * Errors: -WEFT_E_INVALID_ARGUMENT with a message meant to follow the option's name, e.g.
 * "entry 2 (\"x\") must look like ..."; "lists node 2 twice; ..."; "lists address ... twice";
 * "lists 10 nodes; at most 9 ..."; "is empty; ...". */
int weft_cluster_parse(weft_cluster *c, const char *text, weft_err *err);

/* The index of node `id` in c->nodes, or UINT32_MAX when it is not a member. */
uint32_t weft_cluster_index_of(const weft_cluster *c, uint64_t id);
/* Node `id`, or NULL when it is not a member. Borrowed from c. */
const weft_cluster_node *weft_cluster_node_by_id(const weft_cluster *c, uint64_t id);

/* min(WEFT_REPLICATION_FACTOR_DEFAULT_MAX, nodes_count); nodes_count >= 1. */
uint32_t weft_replication_factor_default(uint32_t nodes_count);

/* The node index (in the sorted peer list) of shard `shard`'s j-th replica: (shard + j) mod N
 * (DESIGN section 5). j < nodes_count. */
uint32_t weft_placement_node(uint32_t shard, uint32_t j, uint32_t nodes_count);
/* The node index that should lead shard `shard`: shard mod N, its replica j = 0. */
uint32_t weft_placement_preferred(uint32_t shard, uint32_t nodes_count);
/* True when the node at `node_index` holds a replica of `shard` (with R = rf). */
bool weft_placement_hosts(uint32_t shard, uint32_t node_index, uint32_t nodes_count, uint32_t rf);

/* Writes the canonical identity of the peer list, "id=raft address" for each node in id order,
 * joined by ",", into out. Client addresses are left out: they may change between starts,
 * while ids and raft addresses are baked into every raft group's bootstrap configuration.
 * Returns 0, or -1 when it does not fit. */
int weft_cluster_canonical(const weft_cluster *c, char *out, size_t cap);

/* The cluster id every node of a --peers cluster computes: XXH3-128 over a versioned text of
 * (shard count, replication factor, canonical peer list), as 32 lowercase hex digits plus NUL
 * (out must hold WEFTD_CLUSTER_ID_HEX_BYTES + 1 bytes). */
void weft_cluster_id_derive(const weft_cluster *c, uint32_t shards, char *out, size_t cap);

#endif
