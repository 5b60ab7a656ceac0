/* topology.c: Hello and ClusterStatus. Both describe the cluster as this node sees it: its id,
 * the cluster id, every node of the peer list with its client address and whether raft traffic
 * shows it up (cluster.h), and per shard its key range and, from this node's own replica, the
 * leader it knows, term and readiness (DESIGN section 10), so clients can route straight to
 * leaders. A shard with no replica here shows leader 0 and term 0: this node does not know.
 * ClusterStatus adds per shard the commit and applied index and its replicas, with each one's
 * lag where this node leads the shard (the only node that knows it). Both say when this node
 * is cut off from its peers (cluster.h), whose view of the leaders is then stale. */
#include <msgpack.h>
#include <stdlib.h>
#include <string.h>

#include "../proto/base.h"
#include "../proto/log.h"
#include "../proto/partition.h"
#include "cluster.h"
#include "conn.h"
#include "disk.h"
#include "forward.h"
#include "ops.h"
#include "placement.h"
#include "replica.h"
#include "req.h"

_Static_assert(WEFT_SHARD_REPLICAS_MAX >= WEFT_CLUSTER_NODES_MAX,
               "a ClusterStatus row lists every replica, and R never exceeds the node count");

/* Replica `node_id` of a shard this node leads, from the leader's replication progress: raft's
 * matchIndex (thesis section 3.5), the highest entry the leader knows the replica stores.
 * weft_group_match_index answers 0 for the leader's own id, and the leader holds its whole log,
 * so it is its own last index with no lag. Until a replica answers a new leader's first append
 * its match index is 0: it counts as all behind, an upper bound, never an underestimate. */
static weft_replica_info topology_replica_lag(const weft_group *g, uint64_t self, uint64_t node_id,
                                              uint64_t last_index) {
    WEFT_ASSERT(g != NULL && node_id != 0);
    uint64_t match = node_id == self ? last_index : weft_group_match_index(g, node_id);
    /* The match index comes from the replica's own reply; clamp rather than wrap if it ever
     * names an entry past the leader's log. */
    match = WEFT_MIN(match, last_index);
    weft_replica_info ri = {
        .node_id = node_id,
        .match_index = match,
        .lag_entries = last_index - match,
        .lag_known = true,
    };
    WEFT_ASSERT(ri.match_index + ri.lag_entries == last_index);
    return ri;
}

/* Fills si->replicas with shard i's R replicas, on nodes (i + j) mod N for j < R (DESIGN
 * section 5), into `out` (R entries, borrowed by si). Lag only where this node leads the shard,
 * as no other node tracks it; a status merged across nodes takes each shard's row from its
 * leader. */
static void topology_replicas(const weft_node *n, uint32_t i, weft_shard_info *si,
                              weft_replica_info *out) {
    const weft_cluster *cl = &n->cfg.cluster;
    const weft_replica *rep = &n->replicas[i];
    WEFT_ASSERT(cl->replication_factor >= 1 && cl->replication_factor <= cl->nodes_count);
    WEFT_ASSERT(cl->replication_factor <= WEFT_SHARD_REPLICAS_MAX);
    uint64_t self = n->datadir.node_id;
    /* weft_group_leader_id names this node exactly while its raft is the leader, which is when
     * weft_group_match_index answers; leader_node in si came from the same call. */
    bool leading = rep->group != NULL && si->leader_node == self;
    uint64_t last_index = leading ? weft_group_last_index(rep->group) : 0;
    for (uint32_t j = 0; j < cl->replication_factor; j++) {
        uint64_t id = cl->nodes[weft_placement_node(i, j, cl->nodes_count)].id;
        out[j] = leading ? topology_replica_lag(rep->group, self, id, last_index)
                         : (weft_replica_info){.node_id = id};
    }
    si->replicas = out;
    si->replicas_count = cl->replication_factor;
}

static void topology_shard(const weft_node *n, uint32_t i, bool status, weft_shard_info *si) {
    const weft_replica *rep = &n->replicas[i];
    memset(si, 0, sizeof *si);
    si->shard_id = i;
    weft_shard_range(i, n->replicas_count, &si->range_start, &si->range_end);
    if (rep->group != NULL) {
        si->leader_node = weft_group_leader_id(rep->group);
        si->term = weft_group_term(rep->group);
        if (status) {
            si->commit_index = weft_group_commit_index(rep->group);
            si->applied_index = weft_group_applied_index(rep->group);
        }
    }
    si->ready = weft_replica_ready(rep);
}

/* A peer's own ClusterStatus, asked for by a merged status (weft_topology_cluster_status). */
typedef struct topology_peer {
    uint64_t node_id;     /* the peer */
    bool answered;        /* its answer came and decoded */
    msgpack_unpacked up;  /* decode zone of resp, which also borrows the gathered body */
    weft_hello_resp resp; /* its view */
} topology_peer;

/* Takes each shard's row from the peer that leads it (only a leader knows its replicas' lag,
 * and its commit index is the shard's). Rows borrow from the peers' answers. */
static void topology_merge(weft_shard_info *shards, uint32_t count, const topology_peer *peers,
                           uint32_t peers_count) {
    for (uint32_t k = 0; k < peers_count; k++) {
        const topology_peer *p = &peers[k];
        if (!p->answered) continue;
        for (uint32_t j = 0; j < p->resp.shards_count; j++) {
            const weft_shard_info *si = &p->resp.shards[j];
            if (si->shard_id < count && si->leader_node == p->node_id) shards[si->shard_id] = *si;
        }
    }
}

/* What a peer says of itself in its own answer ("" when it did not answer, or is fine). */
static weft_str topology_peer_health(const topology_peer *p) {
    if (!p->answered) return (weft_str){0};
    for (uint32_t j = 0; j < p->resp.nodes_count; j++) {
        if (p->resp.nodes[j].node_id == p->node_id) return p->resp.nodes[j].health;
    }
    return (weft_str){0};
}

/* Encodes the topology (`status` adds commit and applied indexes and replicas) into a malloc'd
 * map. Hello stays small: it leaves replicas out, as it leaves out the indexes. With `peers`
 * (a merged status), shards take their leader's row and a peer is up when it answered. */
static int topology_encode(const weft_node *n, bool status, const topology_peer *peers,
                           uint32_t peers_count, uint8_t **out, size_t *out_len) {
    const weft_cluster *cl = &n->cfg.cluster;
    weft_shard_info *shards = calloc(n->replicas_count, sizeof *shards);
    size_t rf = status ? cl->replication_factor : 0;
    weft_replica_info *replicas =
        rf > 0 ? calloc((size_t)n->replicas_count * rf, sizeof *replicas) : NULL;
    if (shards == NULL || (rf > 0 && replicas == NULL)) {
        free(replicas);
        free(shards);
        return -WEFT_E_RESOURCE_EXHAUSTED;
    }
    for (uint32_t i = 0; i < n->replicas_count; i++) {
        topology_shard(n, i, status, &shards[i]);
        if (status) topology_replicas(n, i, &shards[i], &replicas[i * rf]);
    }
    if (peers != NULL) topology_merge(shards, n->replicas_count, peers, peers_count);
    weft_node_info nodes[WEFT_CLUSTER_NODES_MAX];
    char self_health[WEFTD_NODE_HEALTH_BYTES_MAX]; /* this node's row borrows it */
    WEFT_ASSERT(cl->nodes_count >= 1 && cl->nodes_count <= WEFT_CLUSTER_NODES_MAX);
    for (uint32_t i = 0; i < cl->nodes_count; i++) {
        nodes[i] = (weft_node_info){
            .node_id = cl->nodes[i].id,
            .address = weft_str_c(cl->nodes[i].client_address),
            .up = weft_cluster_peer_up(n, cl->nodes[i].id),
        };
        if (nodes[i].node_id == n->datadir.node_id)
            nodes[i].health = weft_str_c(weft_node_health(n, self_health, sizeof self_health));
        for (uint32_t k = 0; peers != NULL && k < peers_count; k++) {
            if (peers[k].node_id != nodes[i].node_id) continue;
            nodes[i].up = peers[k].answered;
            nodes[i].health = topology_peer_health(&peers[k]);
        }
    }
    weft_hello_resp resp = {
        .protocol_version = WEFT_PROTOCOL_VERSION,
        .node_id = n->datadir.node_id,
        .cluster_id = weft_str_c(n->datadir.cluster_id),
        .shard_count = n->replicas_count,
        .shards = shards,
        .shards_count = n->replicas_count,
        .nodes = nodes,
        .nodes_count = cl->nodes_count,
        .cut_off = weft_cluster_cut_off(n),
    };
    int rc = weft_schema_encode_buf(&weft_hello_resp_schema, &resp, out, out_len);
    free(replicas);
    free(shards);
    return rc;
}

static void topology_answer(weft_req *r, bool status, const topology_peer *peers,
                            uint32_t peers_count) {
    uint8_t *body = NULL;
    size_t len = 0;
    if (topology_encode(r->node, status, peers, peers_count, &body, &len) != 0) {
        weft_req_fail(r, WEFT_E_RESOURCE_EXHAUSTED, "", "node is out of memory; retry");
        return;
    }
    weft_req_ok(r, body, len);
}

void weft_topology_hello(weft_req *r) {
    msgpack_unpacked up;
    msgpack_unpacked_init(&up);
    weft_hello_req q;
    weft_err err = {0};
    char client[128] = "";
    int rc = weft_schema_decode_buf(&weft_hello_req_schema, r->body, r->body_len, &q, &up,
                                    &r->node->cfg.limits, &err);
    if (rc == 0 && q.protocol_version != WEFT_PROTOCOL_VERSION) {
        rc = weft_err_set(
            &err, WEFT_E_FAILED_PRECONDITION, "protocol_version",
            "client speaks protocol version %u but this node speaks %u; use a client built "
            "for protocol version %u",
            q.protocol_version, WEFT_PROTOCOL_VERSION, WEFT_PROTOCOL_VERSION);
    }
    if (rc == 0) weft_str_copy(client, sizeof client, q.client_name);
    msgpack_unpacked_destroy(&up);
    if (rc != 0) {
        weft_req_err(r, &err, 0);
        return;
    }
    WEFT_ASSERT(r->conn != NULL);
    WEFT_LOGF(WEFT_LOG_DEBUG, WEFT_LOG_NO_SHARD, "connection %llu (%s): hello from \"%s\"",
              (unsigned long long)r->conn->id, r->conn->peer, client);
    r->conn->forwarding_node = q.forwarding_node;
    weft_conn_hello_done(r->conn);
    topology_answer(r, false, NULL, 0);
}

/* ---- ClusterStatus merged across nodes ---- */

/* Decodes the peers' own statuses and answers with the merged view. */
static void topology_gathered(weft_req *r, const weft_gather_peer *gathered, uint32_t count) {
    WEFT_ASSERT(count <= WEFT_CLUSTER_NODES_MAX);
    topology_peer peers[WEFT_CLUSTER_NODES_MAX];
    memset(peers, 0, sizeof peers);
    for (uint32_t k = 0; k < count; k++) {
        topology_peer *p = &peers[k];
        p->node_id = gathered[k].node_id;
        msgpack_unpacked_init(&p->up);
        weft_err err = {0};
        p->answered =
            gathered[k].answered &&
            weft_schema_decode_buf(&weft_hello_resp_schema, gathered[k].body, gathered[k].body_len,
                                   &p->resp, &p->up, &r->node->cfg.limits, &err) == 0 &&
            p->resp.node_id == p->node_id;
    }
    topology_answer(r, true, peers, count);
    for (uint32_t k = 0; k < count; k++)
        msgpack_unpacked_destroy(&peers[k].up);
}

/* ClusterStatus from a client: this node's view, with each shard's row from its leader and
 * each peer up when it answered, asked of every other node at once (weft_forward_gather). */
void weft_topology_cluster_status(weft_req *r) {
    if (!weft_forward_gather(r, topology_gathered)) topology_answer(r, true, NULL, 0);
}
