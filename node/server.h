/* server.h: the client listener and the set of open connections. */
#ifndef WEFT_NODE_SERVER_H
#define WEFT_NODE_SERVER_H

#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

#include "node.h"

/* Pending connections the kernel queues for accept. */
#define WEFTD_LISTEN_BACKLOG 511

typedef struct weft_server {
    weft_node *node;       /* owner */
    uv_tcp_t listener;     /* the client port */
    bool listening;        /* listener open (not yet closed) */
    weft_conn *conns;      /* open connections (doubly linked) */
    uint32_t conns_count;  /* entries in conns */
    uint64_t next_conn_id; /* ids for logs */
} weft_server;

/* Binds and listens on cfg.listen. Returns 0, or a negative libuv code with the address and
 * advice in `err` (port in use, address not local). */
int weft_server_start(weft_server *srv, weft_node *n, weft_err *err);
/* Stops accepting: closes the listener. Idempotent. */
void weft_server_stop_listening(weft_server *srv);
/* Closes every connection once its queued responses are written (shutdown's last step). */
void weft_server_close_all(weft_server *srv);

/* Connection list upkeep (conn.c). */
void weft_server_add(weft_server *srv, weft_conn *c);
void weft_server_remove(weft_server *srv, weft_conn *c);

#endif
