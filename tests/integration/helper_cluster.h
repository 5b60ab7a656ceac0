/* helper_cluster.h: a weft cluster of N weftd processes on free loopback ports for integration
 * tests, built on helper_weftd: each node is one weftd (its own temp dir, data dir and captured
 * stderr) started with --node-id, --peers, --shards and --replication-factor. Readiness across
 * the nodes, kill -9 / restart / stop of one node, the leader of a shard as the nodes report
 * it, clients with every address or with one node, and reads sent to exactly one node.
 *
 * Nodes are named by their node id, 1..N (node id i is c->node[i - 1]). */
#ifndef WEFT_TESTS_HELPER_CLUSTER_H
#define WEFT_TESTS_HELPER_CLUSTER_H

#include <stdbool.h>
#include <stdint.h>

#include "helper_weftd.h"
#include "helper_worker.h"
#include "weft/client.h"

/* Nodes one cluster may have. */
#define HC_NODES_MAX 9u
/* How long a (re)started cluster may take until every shard has a ready leader. */
#define HC_READY_TIMEOUT_MS 60000u
/* "ID=127.0.0.1:P/127.0.0.1:Q," per node. */
#define HC_PEERS_BYTES (HC_NODES_MAX * (2u * WEFTD_ADDR_BYTES + 8u))
/* Every client address, comma-separated. */
#define HC_ADDRESSES_BYTES (HC_NODES_MAX * (WEFTD_ADDR_BYTES + 1u))

typedef struct hc_cluster {
    unsigned nodes;                     /* N */
    uint32_t shards;                    /* S */
    unsigned replication_factor;        /* R as given to weftd; 0: weftd's default min(3, N) */
    weftd node[HC_NODES_MAX];           /* node id i is node[i - 1] */
    char peers[HC_PEERS_BYTES];         /* the --peers value */
    char addresses[HC_ADDRESSES_BYTES]; /* every node's client address, comma-separated */
} hc_cluster;

/* Picks 2N free loopback ports and starts N nodes (1..HC_NODES_MAX) with S shards, replication
 * factor R (0: leave weftd's default) and `extra` flags for every node (NULL-terminated,
 * borrowed; may be NULL), then waits until the cluster is ready (hc_wait_ready). Registers
 * every node for the exit hook. Returns 0 or -1 (after printing why and the stderr tails). */
int hc_start(hc_cluster *c, unsigned nodes, uint32_t shards, unsigned replication_factor,
             const char *const *extra);

/* Waits until every running node answers ClusterStatus, and every shard has a leader that is
 * a running node, reports itself the shard's leader and ready, and that no running node
 * contradicts (each reports that leader or none). At most timeout_ms. Returns 0, or -1 when a
 * node exited or the time ran out (printed, with the stderr tails). */
int hc_wait_ready(hc_cluster *c, uint32_t timeout_ms);

/* Waits until node `id` answers ClusterStatus. Returns 0 or -1 (printed). */
int hc_wait_answers(hc_cluster *c, unsigned id, uint32_t timeout_ms);

/* kill -9 node `id` and reap it. */
void hc_kill9(hc_cluster *c, unsigned id);

/* Starts node `id` again with the same flags and data dir, then waits for hc_wait_ready.
 * Returns 0 or -1. */
int hc_restart(hc_cluster *c, unsigned id);

/* SIGTERM node `id` and waits; returns its exit code as weftd_stop does. */
int hc_stop(hc_cluster *c, unsigned id);

/* Stops every running node, one after the other. Returns 0 when each exited with 0, else the
 * first other exit code (or -1 for a hung node). */
int hc_stop_all(hc_cluster *c);

/* True while node `id` runs. */
bool hc_alive(hc_cluster *c, unsigned id);

/* The client address of node `id`. */
const char *hc_address(const hc_cluster *c, unsigned id);

/* ClusterStatus answered by node `id` itself (no retries, short timeouts). Returns 0 or the
 * client error. */
int hc_status(const hc_cluster *c, unsigned id, weft_cluster_status_resp *resp,
              weft_response *holder, weft_err *err);

/* The node that leads `shard` right now: a running node that reports itself its ready leader.
 * 0 when none does. */
uint64_t hc_leader(hc_cluster *c, uint32_t shard);

/* The replicas of `shard` as node `via` lists them (placement order, the preferred leader
 * first) into ids[0..*count), at most `cap`. Returns 0, or -1 when node `via` does not answer
 * (printed). */
int hc_shard_replicas(hc_cluster *c, unsigned via, uint32_t shard, unsigned *ids, unsigned cap,
                      unsigned *count);

/* hc_leader, waiting up to timeout_ms for a leader. 0 if none. */
uint64_t hc_wait_leader(hc_cluster *c, uint32_t shard, uint32_t timeout_ms);

/* Waits until node `id` has applied, on every shard (it must hold them all), at least what the
 * leader had committed when the wait began (a restarted node has caught up). At most
 * timeout_ms. Returns 0, or -1 (printed: which shard lags, or which leader is missing). */
int hc_wait_caught_up(hc_cluster *c, unsigned id, uint32_t timeout_ms);

/* Opens a client with every node's address as seeds, with the test-friendly options of
 * weftd_client (about 20 s of retries). Returns 0 or the client error (printed). */
int hc_client(const hc_cluster *c, const char *name, weft_client **out);

/* Opens a client whose only seed is node `id`: calls without a routing key (polls, cluster
 * status) go to that node while it is up. Returns 0 or the client error (printed). */
int hc_node_client(const hc_cluster *c, unsigned id, const char *name, weft_client **out);

/* Sends one request to the first seed of `c` (open it with hc_node_client) and nothing else:
 * no routing to the shard leader, no retries, no following of NOT_LEADER. For reading one
 * replica with consistency=stale. Arguments as weft_client_call. Returns 0 or the error. */
int hc_call_seed(weft_client *c, uint32_t msg_type, const void *req, void *resp,
                 weft_response *holder, weft_err *err);

/* wk_capture_run with consistency=stale, every request sent by hc_call_seed: the run as the
 * replica on the client's seed node holds it. Returns 0 or the first error (not printed). */
int hc_capture_stale(weft_client *c, const char *workflow_id, const char *run_id, wk_capture *cap,
                     weft_err *err);

/* Prints the stderr tail of every node. */
void hc_print_stderr(const hc_cluster *c, unsigned lines);

/* Kills every node and removes their dirs. Idempotent. */
void hc_destroy(hc_cluster *c);

#endif
