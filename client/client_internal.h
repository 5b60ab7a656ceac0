/* client_internal.h: the parts of libweft shared between its files, never installed. */
#ifndef WEFT_CLIENT_INTERNAL_H
#define WEFT_CLIENT_INTERNAL_H

#include <msgpack.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "proto/frame.h"
#include "proto/limits.h"
#include "proto/msg.h"
#include "proto/partition.h"
#include "weft/client.h"

/* What a weft_response holds (weft/client.h keeps it opaque): the reply frame, the unpacked
 * msgpack that decoded strings borrow from, and the zone that decoded arrays live in. */
struct weft_response_priv {
    uint8_t *frame;      /* the reply frame's bytes (malloc'd) */
    msgpack_zone *zone;  /* arrays of the decoded response, or NULL */
    msgpack_unpacked up; /* the unpacked frame; initialised */
    uint64_t node_id;    /* the node that sent the frame (its connection's Hello); 0: unknown */
};

/* A reply frame smaller than this cannot hold [type, id, {}] and is refused. */
#define CLIENT_FRAME_BYTES_MIN 4u

/* One TCP connection that has completed Hello. Used by one call at a time. */
typedef struct client_conn {
    int fd;                 /* connected socket */
    uint64_t next_frame_id; /* correlation id of the next request on this connection */
    uint32_t node_index;    /* index into weft_client.nodes it belongs to */
    uint64_t node_id;       /* the id its Hello reply gave; 0 before */
} client_conn;

/* Task tokens longer than this are not read by the client (the server's are a few dozen
 * bytes); such a request is sent unrouted, and the server says what it thinks of the token. */
#define CLIENT_TASK_TOKEN_BYTES_MAX 256u

/* A node the client knows: a seed address, or one learnt from the topology (or a NOT_LEADER
 * hint). Entries are never removed, because connections refer to them by index. When two
 * entries turn out to be one node (a seed written differently from the address the node
 * advertises), one of them becomes an alias of the other: lookups by id and by address then
 * resolve to the one it aliases, so each node is one entry for routing and listing. */
typedef struct client_node {
    uint64_t node_id;                            /* 0 until a Hello or topology names it */
    char address[WEFT_CLIENT_ADDRESS_BYTES_MAX]; /* "host:port" */
    bool answered;     /* a Hello on this address succeeded: the address works from here */
    bool up;           /* latest topology's (or Hello's) word on the node */
    uint32_t alias_of; /* UINT32_MAX, or the index of the entry that stands for this node */
    client_conn *idle[WEFT_CLIENT_IDLE_CONNS_PER_NODE_MAX]; /* pooled, Hello done */
    uint32_t idle_count;                                    /* entries used in idle */
} client_node;

struct weft_client {
    pthread_mutex_t mu; /* guards everything below except the immutable options */
    /* options, resolved to their defaults at open; immutable afterwards */
    uint32_t connect_timeout_ms;                  /* TCP connect plus Hello */
    uint32_t call_timeout_ms;                     /* one attempt's reply wait */
    uint32_t retries_max;                         /* retries after the first attempt */
    uint32_t call_deadline_ms;                    /* a call's whole time, retries included */
    uint32_t backoff_initial_ms;                  /* first retry's delay */
    uint32_t backoff_max_ms;                      /* cap on one delay */
    uint32_t frame_bytes_max;                     /* largest reply frame accepted */
    char client_name[WEFT_CLIENT_NAME_BYTES_MAX]; /* Hello's client_name */
    char identity[WEFT_CLIENT_NAME_BYTES_MAX];    /* default request identity */
    char token[WEFT_CLIENT_NAME_BYTES_MAX];       /* Hello's token, "" if none */
    weft_limits limits;                           /* decoder limits for replies */
    /* nodes: seeds first (in the order given), then nodes learnt from the topology */
    client_node nodes[WEFT_CLIENT_NODES_MAX];
    uint32_t nodes_count;    /* entries used in nodes */
    uint32_t seeds_count;    /* the first seeds_count nodes are seeds */
    uint32_t preferred_node; /* node that answered last; default target of unrouted ops */
    /* topology from the latest Hello or ClusterStatus */
    char cluster_id[WEFT_CLIENT_NAME_BYTES_MAX]; /* "" until known */
    uint32_t shard_count;                        /* 0 until known */
    uint64_t *shard_leaders; /* [shard_count] leader node id per shard, 0 unknown */
    uint64_t rng_state;      /* xorshift state for backoff jitter */
};

/* ---- client.c ---- */

/* weft_client_open without the first Hello: the options resolved, the seed list parsed, no
 * connection made. `addresses` and `opts` are borrowed. On success *out belongs to the caller
 * (weft_client_close). Errors: INVALID_ARGUMENT (seed list), RESOURCE_EXHAUSTED. Used by
 * weft_client_open, and by tests/fuzz, which runs exchanges on sockets of its own. */
int client_new(const char *addresses, const weft_client_opts *opts, weft_client **out,
               weft_err *err);

/* ---- conn.c: sockets and frames ---- */

/* Dials `address` ("host:port") within timeout_ms. On success *fd_out is a connected blocking
 * socket the caller owns. Errors: INVALID_ARGUMENT (malformed address), UNAVAILABLE. */
int client_conn_dial(const char *address, uint32_t timeout_ms, int *fd_out, weft_err *err);

/* Writes all of `buf` to fd before the deadline (weft_mono_ms based). UNAVAILABLE on a socket
 * error, DEADLINE_EXCEEDED on timeout. */
int client_conn_write_all(int fd, const char *buf, size_t len, uint64_t deadline_ms, weft_err *err);

/* Reads one frame from fd before the deadline into a fresh malloc'd buffer (*frame_out, owned
 * by the caller on success; *len_out bytes, without the prefix). Errors: UNAVAILABLE (closed
 * or reset), DEADLINE_EXCEEDED, INTERNAL (length outside [CLIENT_FRAME_BYTES_MIN,
 * frame_bytes_max]), RESOURCE_EXHAUSTED. */
int client_conn_read_frame(int fd, uint32_t frame_bytes_max, uint64_t deadline_ms,
                           uint8_t **frame_out, size_t *len_out, weft_err *err);

/* ---- exchange.c: one request and its reply on one connection ---- */

/* What one round trip produced besides the decoded body. */
typedef struct client_outcome {
    bool no_conn;         /* no connection could be made (dial or Hello failed); nothing was sent */
    bool sent;            /* the whole request reached the socket */
    bool conn_broken;     /* the connection must not be reused */
    uint64_t leader_hint; /* NOT_LEADER: leader node id, 0 unknown */
    char leader_address[WEFT_CLIENT_ADDRESS_BYTES_MAX]; /* NOT_LEADER: "" unknown */
} client_outcome;

/* Sends one request whose body is already encoded and decodes its reply into `resp` with
 * `resp_schema` (resp may be NULL to skip decoding), borrowing from `holder` (reset first).
 * Returns 0, the server's error (filled into err, hints into *out), or a transport error. */
int client_exchange(weft_client *c, client_conn *conn, uint32_t msg_type, const char *body,
                    size_t body_len, uint64_t timeout_ms, const weft_schema *resp_schema,
                    void *resp, weft_response *holder, client_outcome *out, weft_err *err);

/* ---- pool.c: connections per node, Hello and the topology ---- */

/* Returns a connection to node `node_index`: an idle one, or a new one that has done Hello.
 * The caller owns it until client_pool_put or client_pool_discard. */
int client_pool_get(weft_client *c, uint32_t node_index, client_conn **out, weft_err *err);
/* Returns a healthy connection to its node's idle list (closing it if the list is full). */
void client_pool_put(weft_client *c, client_conn *conn);
/* Closes a connection that failed or may hold an unread reply. */
void client_pool_discard(client_conn *conn);
/* Closes every idle connection of a node, after one of them broke: when a node restarts, all
 * its pooled sockets are dead, and retrying on each would burn the retries. */
void client_pool_drain(weft_client *c, uint32_t node_index);
/* Merges `hello` into the topology (called with c->mu held): node addresses, ids and up flags,
 * and the shard leaders it names (a 0 leaves the known one). */
void client_topology_update(weft_client *c, const weft_hello_resp *hello);
/* True when the topology names no leader for some shard (called with c->mu held). */
bool client_leaders_unknown(const weft_client *c);
/* Index of the node with this id (never an alias); UINT32_MAX if unknown or 0. Called with
 * c->mu held. */
uint32_t client_node_by_id(const weft_client *c, uint64_t node_id);
/* The entry that stands for entry `index` (itself unless it is an alias). c->mu held. */
uint32_t client_node_canonical(const weft_client *c, uint32_t index);
/* Finds or adds the node at `address` (c->mu held): an entry with that address, else (when
 * node_id is not 0) the entry of that id, else a new entry. A non-zero node_id is recorded,
 * merging entries that turn out to be one node. Returns the index of the entry that stands
 * for the node, or UINT32_MAX when the table is full or the address unusable. */
uint32_t client_node_add(weft_client *c, const char *address, uint64_t node_id);
/* Records that entry `index` answered a Hello as node `node_id` (c->mu held) and merges it
 * with another entry of that id, keeping this one unless the other answered a Hello too (then
 * the older stays). Returns the index that stands for the node. */
uint32_t client_node_answered(weft_client *c, uint32_t index, uint64_t node_id);

/* ---- call.c ---- */

/* weft_client_call pinned to node `node_id`: no routing, no NOT_LEADER following, and one
 * retry at most, for a pooled connection found dead before the request was sent (the
 * weft_client_poll_*_on rules). INVALID_ARGUMENT (field node_id) for an unknown node. */
int client_call_on(weft_client *c, uint64_t node_id, uint32_t msg_type, const void *req, void *resp,
                   weft_response *holder, weft_err *err);

/* ---- client.c ---- */

/* A pseudo-random number for backoff jitter (c->mu held). Not for ids: those use getrandom. */
uint64_t client_rand(weft_client *c);

#endif
