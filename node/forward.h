/* forward.h: any node accepts any request (issue 4). A request for a shard this node does not
 * lead is sent on to the node that does, over the client protocol, and its answer is relayed
 * back unchanged: same body, same error, same leader hint. One outbound connection per peer,
 * opened on first use, carries every forwarded request pipelined (frame ids match the answers).
 *
 * Hop limit: the connection's Hello names this node (weft_hello_req.forwarding_node), and a
 * request that arrived that way is never forwarded again; the peer answers it itself, with
 * NOT_LEADER and the leader's address if leadership moved meanwhile. The forwarder then tries
 * that leader once more (WEFTD_FORWARD_ATTEMPTS_MAX) before relaying the NOT_LEADER.
 *
 * Guarantees: a forwarded write keeps its idempotency key (the body is sent as received), so
 * when the answer is lost (peer died, timeout) the client's retry with the same request id is
 * safe (G4). For the same reason the forwarder itself writes an idempotent request once more on
 * a new connection when the open one breaks under it (reset, closed by the peer): a connection
 * that died while idle is found broken only by the next request. Nothing waits on a peer without a deadline: forward-timeout-ms plus the request's
 * own long-poll wait. A stopping node does not wait for its forwarded requests: they are
 * answered UNAVAILABLE when raft closes, and clients retry elsewhere. Everything runs on the
 * loop thread. */
#ifndef WEFT_NODE_FORWARD_H
#define WEFT_NODE_FORWARD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "../proto/errors.h"
#include "node.h"

/* Peers a forwarded request may be sent to in turn: the leader this node knows of, then the
 * one that node names in its NOT_LEADER answer. */
#define WEFTD_FORWARD_ATTEMPTS_MAX 2u
/* How often deadlines of forwarded requests and dials are checked. */
#define WEFTD_FORWARD_SWEEP_MS 100u
/* Bytes asked from libuv per read on a peer connection. */
#define WEFTD_FORWARD_READ_BYTES 65536u

/* What a peer answered. */
typedef struct weft_fwd_reply {
    weft_err err;         /* code 0: success, and body holds the response map */
    uint64_t leader_hint; /* with NOT_LEADER: the node the peer names, 0 if none */
    const uint8_t *body;  /* success: the encoded response map; borrowed for the callback */
    size_t body_len;      /* bytes in body */
} weft_fwd_reply;

/* Runs exactly once per accepted call, on the loop thread, never inside weft_forward_call. */
typedef void (*weft_forward_cb)(void *data, const weft_fwd_reply *reply);

/* Creates the node's forwarder (no connection is opened yet). */
void weft_forward_init(weft_node *n);
/* Fails every call still waiting (UNAVAILABLE: the node is stopping) and closes the peer
 * connections. The memory goes with weft_forward_free, after the loop has ended. */
void weft_forward_close(weft_node *n);
void weft_forward_free(weft_node *n);

/* Sends request `msg_type` with `body` (an encoded request map, copied) to node `node_id`, a
 * peer of the cluster other than this node, to be answered within forward-timeout-ms plus
 * `wait_ms` (the request's own long-poll wait). Returns 0 when `cb` will be called, or an error
 * (UNAVAILABLE: this node is cut off from its peers (cluster.h), the peer could not be dialled
 * lately, or forward-inflight-max requests are already out to it; INVALID_ARGUMENT: not a peer)
 * and then `cb` is never called. */
int weft_forward_call(weft_node *n, uint64_t node_id, uint32_t msg_type, const uint8_t *body,
                      size_t body_len, uint64_t wait_ms, weft_forward_cb cb, void *data,
                      weft_err *err);

/* True when request `r` may be forwarded at all: it came from a client (not from a forwarding
 * peer) on a connection still open, and the node is serving. */
bool weft_forward_from_client(const weft_req *r);
/* weft_forward_from_client, and `node_id` is another member. */
bool weft_forward_allowed(const weft_req *r, uint64_t node_id);

/* Forwards client request `r` to node `node_id` and answers it with what comes back (the
 * request is held with async_pending meanwhile). A node cut off from its peers (cluster.h)
 * answers it at once instead: UNAVAILABLE, naming the other nodes. Returns true when `r` was
 * forwarded or answered so; false when it may not or could not be forwarded
 * (weft_forward_allowed, or weft_forward_call failed), and then the caller answers `r` itself,
 * normally with the NOT_LEADER that sent it here. */
bool weft_forward_req(weft_req *r, uint64_t node_id, uint64_t wait_ms);

/* ---- one request asked of every node (ClusterStatus, DescribeTaskQueue) ---- */

/* What one peer answered a gathered request. */
typedef struct weft_gather_peer {
    uint64_t node_id; /* the peer */
    bool answered;    /* it answered with success in time; body holds its response map */
    uint8_t *body;    /* owned by the gather; valid during the weft_gather_fn */
    size_t body_len;  /* bytes in body */
} weft_gather_peer;

/* Answers `r` from this node's own view merged with the peers' (`peers`, one per other node,
 * answered or not). Called once; `peers` is freed after it returns. */
typedef void (*weft_gather_fn)(weft_req *r, const weft_gather_peer *peers, uint32_t peers_count);

/* Client request `r`, as received, is asked of every other node at once over forwarding
 * connections (each peer answers from its own state alone: hop limit), and `fn` answers `r`
 * once every peer answered, or after one election timeout with whoever answered by then.
 * Returns false, calling nothing, when the cluster has one node or `r` may not be forwarded
 * (weft_forward_from_client): the caller then answers from this node alone. */
bool weft_forward_gather(weft_req *r, weft_gather_fn fn);

#endif
