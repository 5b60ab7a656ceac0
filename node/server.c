/* server.c: the client listener. Each accepted socket becomes a weft_conn (conn.c). */
#include "server.h"

#include <string.h>

#include "../proto/base.h"
#include "../proto/log.h"
#include "conn.h"

static void server_connection_cb(uv_stream_t *listener, int status) {
    weft_server *srv = listener->data;
    WEFT_ASSERT(srv != NULL && srv->listening);
    if (status < 0) {
        weft_log(WEFT_LOG_WARN, WEFT_LOG_NO_SHARD, "accept failed: %s", uv_strerror(status));
        return;
    }
    weft_conn_accept(srv);
}

int weft_server_start(weft_server *srv, weft_node *n, weft_err *err) {
    WEFT_ASSERT(srv != NULL && n != NULL);
    memset(srv, 0, sizeof *srv);
    srv->node = n;
    struct sockaddr_storage addr;
    int rc = weft_address_sockaddr(n->cfg.listen, &addr);
    WEFT_ASSERT(rc == 0); /* config.c resolved it to a numeric address */
    rc = uv_tcp_init(n->loop, &srv->listener);
    WEFT_ASSERT(rc == 0);
    srv->listener.data = srv;
    srv->listening = true;
    rc = uv_tcp_bind(&srv->listener, (const struct sockaddr *)&addr, 0);
    if (rc == 0)
        rc = uv_listen((uv_stream_t *)&srv->listener, WEFTD_LISTEN_BACKLOG, server_connection_cb);
    if (rc != 0) {
        weft_server_stop_listening(srv);
        weft_err_set(err, WEFT_E_UNAVAILABLE, "listen",
                     "cannot listen on %s (--listen): %s; pick a free port with --listen or stop "
                     "the process using it",
                     n->cfg.listen, uv_strerror(rc));
        return rc;
    }
    return 0;
}

static void server_listener_closed_cb(uv_handle_t *h) {
    (void)h;
}

void weft_server_stop_listening(weft_server *srv) {
    if (!srv->listening) return;
    srv->listening = false;
    uv_close((uv_handle_t *)&srv->listener, server_listener_closed_cb);
}

void weft_server_close_all(weft_server *srv) {
    weft_server_stop_listening(srv);
    weft_conn *next = NULL;
    for (weft_conn *c = srv->conns; c != NULL; c = next) {
        next = c->next;
        weft_conn_finish(c);
    }
}

void weft_server_add(weft_server *srv, weft_conn *c) {
    WEFT_ASSERT(c->prev == NULL && c->next == NULL);
    c->next = srv->conns;
    if (srv->conns != NULL) srv->conns->prev = c;
    srv->conns = c;
    srv->conns_count++;
}

void weft_server_remove(weft_server *srv, weft_conn *c) {
    WEFT_ASSERT(srv->conns_count > 0);
    if (c->prev != NULL) {
        c->prev->next = c->next;
    } else {
        WEFT_ASSERT(srv->conns == c);
        srv->conns = c->next;
    }
    if (c->next != NULL) c->next->prev = c->prev;
    c->prev = c->next = NULL;
    srv->conns_count--;
}
