/* conn.h: one client connection: a state machine (awaiting Hello, ready, draining, closed)
 * changed only by conn_set_state, a frame reader, the requests in flight, and a write queue. */
#ifndef WEFT_NODE_CONN_H
#define WEFT_NODE_CONN_H

#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

#include "../proto/frame.h"
#include "node.h"

/* After a fatal error the node sends one error frame, half-closes, and keeps reading (and
 * discarding) for at most this long before closing, so that the peer reads the error instead of
 * a reset caused by unread input. */
#define WEFTD_CONN_LINGER_MS 1000u
/* Bytes asked from libuv per read. */
#define WEFTD_CONN_READ_BYTES 65536u

typedef enum weft_conn_state {
    WEFT_CONN_HELLO,    /* open; only Hello is accepted */
    WEFT_CONN_READY,    /* Hello done; every request is accepted */
    WEFT_CONN_DRAINING, /* fatal error: error frame queued, input discarded, then close */
    WEFT_CONN_CLOSED,   /* uv_close called; freed in its callback */
} weft_conn_state;

struct weft_conn {
    weft_node *node;            /* owner */
    struct weft_server *server; /* the server listing this connection */
    weft_conn *prev, *next;     /* in the server's connection list */
    uv_tcp_t tcp;               /* the socket */
    uv_timer_t linger;          /* DRAINING: bounds the wait for the peer's EOF */
    uv_shutdown_t shutdown_req; /* DRAINING: the half-close */
    uint64_t id;                /* for logs */
    char peer[64];              /* "a.b.c.d:port" of the client, for logs */
    weft_conn_state state;      /* changed only by conn_set_state */
    weft_frame_reader reader;   /* splits the byte stream into frames */
    weft_req *inflight_head;    /* requests read and not yet answered */
    uint32_t inflight_count;    /* entries in that list */
    uint64_t write_queue_bytes; /* bytes handed to uv_write and not yet written */
    uint64_t forwarding_node;   /* a peer that forwards requests here (its Hello said so), else 0:
                                 * its requests are never forwarded again (forward.h) */
    bool reading;               /* uv_read_start is in effect */
    bool shutdown_sent;         /* DRAINING: uv_shutdown issued */
    int handles_open;           /* tcp and linger handles not yet closed */
};

/* Accepts a pending connection on the server's listener. */
void weft_conn_accept(struct weft_server *srv);

/* Queues one frame already built in `sb` (ownership of sb->data transferred; sb is left
 * empty). Dropped silently when the connection is draining or closed. */
void weft_conn_send(weft_conn *c, msgpack_sbuffer *sb);
/* Builds and queues a success frame for `request_type` with an encoded body (borrowed). */
void weft_conn_send_ok(weft_conn *c, uint32_t request_type, uint64_t request_id,
                       const uint8_t *body, size_t body_len);
/* Builds and queues an error frame. */
void weft_conn_send_error(weft_conn *c, uint64_t request_id, const weft_err *err,
                          uint64_t leader_hint);

/* Hello succeeded: every request is accepted from now on. */
void weft_conn_hello_done(weft_conn *c);
bool weft_conn_hello_pending(const weft_conn *c);

/* A request of this connection finished: unlinks it, and resumes reading if it was paused. */
void weft_conn_req_done(weft_conn *c, weft_req *r);

/* Shutdown: stops reading, lets queued responses drain (bounded by WEFTD_CONN_LINGER_MS), then
 * closes. Requests still open are detached unanswered. */
void weft_conn_finish(weft_conn *c);

/* Closes the connection at once. Requests in flight are detached. */
void weft_conn_close(weft_conn *c, const char *why);

#endif
