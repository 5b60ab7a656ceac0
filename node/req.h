/* req.h: one client request from the moment its frame is read until its one response frame is
 * queued (or its connection is gone): the request body it owns, where it is waiting, and the
 * single place it is finished and freed. */
#ifndef WEFT_NODE_REQ_H
#define WEFT_NODE_REQ_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "../proto/errors.h"
#include "../proto/msg.h"
#include "../proto/reply.h"
#include "../shards/shard.h"
#include "node.h"

/* What a request is parked on, if anything. */
typedef enum weft_req_wait {
    WEFT_REQ_WAIT_NONE, /* running, or an async call (proposal, barrier) is in flight */
    WEFT_REQ_WAIT_READ, /* in a replica's read-wait bucket, woken by run_changed (waits.c) */
    WEFT_REQ_WAIT_POLL, /* in a poll bucket, woken by task_ready (poll.c) */
} weft_req_wait;

struct weft_req {
    weft_node *node;     /* owner */
    weft_conn *conn;     /* the connection to answer on; NULL once it closed */
    weft_req *conn_prev; /* in conn's in-flight list */
    weft_req *conn_next;
    const weft_op *op;        /* row of WEFT_OPS */
    uint64_t request_id;      /* echoed in the response frame */
    uint8_t *body;            /* owned copy of the request body (a msgpack map) */
    size_t body_len;          /* bytes in body */
    uint64_t started_mono_ms; /* when the frame was read, for latency logs */
    bool finished;            /* response sent (or dropped); waiting only for handle close */
    uint32_t async_pending;   /* proposals/barriers in flight whose callback names this req */
    /* routing */
    uint32_t shard; /* shard the request was routed to */
    bool stale;     /* consistency=stale: serve from this replica without a barrier */
    /* waiting (reads and polls) */
    weft_req_wait wait;  /* what list the req is in */
    weft_req *wait_prev; /* in that list */
    weft_req *wait_next;
    uv_timer_t timer;          /* the wait's timeout; initialised on first use */
    bool timer_init;           /* timer handle initialised (must be closed before free) */
    uint64_t deadline_mono_ms; /* when the wait ends */
    uint64_t run_key;          /* READ: the run being watched */
    uint64_t wait_timeout_ms;  /* READ: how long a waiting read may wait */
    /* polls (poll.c) */
    uint8_t task_kind;    /* WEFT_TASK_KIND_* */
    char *task_queue;     /* polls: dispatch name of (namespace, queue) (shards/shard.h; owned) */
    char *polled_queue;   /* polls: the task queue as the worker named it (owned) */
    char *identity;       /* NUL-terminated copy of the poller identity (owned) */
    uint32_t poll_bucket; /* index in pollers.buckets */
    weft_ready_task popped; /* polls: the task whose Started entry is in flight */
    /* forwarding (forward.c) */
    uint8_t forward_attempts; /* peers this request was sent to so far */
    uint64_t forward_node;    /* the last of them */
    uint64_t forward_wait_ms; /* its long-poll wait, for a second attempt */
    /* namespace check (namespaces.c) */
    char *ns_checked;                                   /* the name being looked up (owned) */
    void (*ns_done)(weft_req *r, const weft_err *err); /* what runs after the check */
    uint32_t ns_asked; /* the members asked so far: bit i is cfg.cluster.nodes[i] */
    /* list/count fan-out (reads.c) */
    uint32_t fan_shard;    /* next shard to read */
    uint32_t fan_end;      /* one past the last shard to read (a peer may ask for one shard) */
    bool fan_barrier_done; /* the barrier for fan_shard has applied */
    uint64_t fan_count;    /* COUNT: running sum */
    void *fan_state;       /* LIST: merged pages so far (reads.c owns it) */
};

/* Creates a request for a frame read on `conn`; `body` (malloc'd) is transferred on success and
 * stays the caller's on failure. Links it into the connection's in-flight list. Returns NULL
 * when out of memory. */
weft_req *weft_req_new(weft_conn *conn, const weft_op *op, uint64_t request_id, uint8_t *body,
                       size_t body_len);

/* Finishes a request: queues the response frame (if the connection is still open) and frees the
 * request once its timer handle (if any) has closed. Exactly one of these runs per request.
 *   ok: `body` (malloc'd, ownership transferred) is the encoded response map.
 *   err: the error frame from `err` with an optional NOT_LEADER hint. */
void weft_req_ok(weft_req *r, uint8_t *body, size_t body_len);
void weft_req_err(weft_req *r, const weft_err *err, uint64_t leader_hint);
/* Shorthand for an error built in place. */
void weft_req_fail(weft_req *r, int code, const char *field, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
/* Finishes from a reply produced by shards or raft (ownership of reply->body is taken). */
void weft_req_reply(weft_req *r, weft_reply *reply);

/* The connection closed: detaches the request. A parked request is taken out of its wait list
 * and freed; one with an async call in flight finishes silently when that call returns. */
void weft_req_detach(weft_req *r);

/* Starts (or restarts) the wait timer to fire `cb` after `timeout_ms`. */
void weft_req_timer_start(weft_req *r, uint64_t timeout_ms, uv_timer_cb cb);
void weft_req_timer_stop(weft_req *r);

#endif
