/* conn.c: a client connection. Frames are read with proto's weft_frame_reader, parsed, and
 * handed to ops.c as requests; responses are queued in any order (pipelining, matched by
 * request_id). Hostile input never crashes the node: a bad frame gets an error frame, and only
 * a broken stream (oversized or zero length prefix) ends the connection, after its error frame. */
#include "conn.h"

#include <stdlib.h>
#include <string.h>

#include "../proto/base.h"
#include "../proto/log.h"
#include "cluster.h"
#include "ops.h"
#include "req.h"
#include "server.h"

/* One uv_write in flight: the frame bytes and their connection. */
typedef struct conn_write {
    uv_write_t req;  /* libuv's request; req.data unused */
    weft_conn *conn; /* the connection (alive until every write callback has run) */
    char *data;      /* the frame (malloc'd by msgpack's sbuffer) */
    size_t len;      /* bytes in data */
} conn_write;

/* One read buffer for every connection: libuv calls alloc then read back to back on the one
 * loop thread, and frames are copied out of it before read_cb returns. */
static char conn_read_buf[WEFTD_CONN_READ_BYTES];
static bool conn_read_buf_busy;

static const char *conn_state_name(weft_conn_state s) {
    static const char *const names[] = {"awaiting-hello", "ready", "draining", "closed"};
    WEFT_ASSERT((unsigned)s < WEFT_ARRAY_LEN(names));
    return names[s];
}

/* The one place a connection changes state (STYLE rule 9). */
static void conn_set_state(weft_conn *c, weft_conn_state next) {
    weft_conn_state prev = c->state;
    bool legal =
        (prev == WEFT_CONN_HELLO && next == WEFT_CONN_READY) ||
        ((prev == WEFT_CONN_HELLO || prev == WEFT_CONN_READY) && next == WEFT_CONN_DRAINING) ||
        (prev != WEFT_CONN_CLOSED && next == WEFT_CONN_CLOSED);
    WEFT_ASSERT(legal);
    WEFT_LOGF(WEFT_LOG_DEBUG, WEFT_LOG_NO_SHARD, "connection %llu (%s): %s -> %s",
              (unsigned long long)c->id, c->peer, conn_state_name(prev), conn_state_name(next));
    c->state = next;
}

static void conn_handle_closed_cb(uv_handle_t *h) {
    weft_conn *c = h->data;
    WEFT_ASSERT(c != NULL && c->state == WEFT_CONN_CLOSED && c->handles_open > 0);
    c->handles_open--;
    if (c->handles_open > 0) return;
    WEFT_ASSERT(c->inflight_count == 0 && c->write_queue_bytes == 0);
    weft_frame_reader_free(&c->reader);
    free(c);
}

void weft_conn_close(weft_conn *c, const char *why) {
    if (c->state == WEFT_CONN_CLOSED) return;
    WEFT_LOGF(WEFT_LOG_DEBUG, WEFT_LOG_NO_SHARD, "connection %llu (%s) closing: %s",
              (unsigned long long)c->id, c->peer, why);
    conn_set_state(c, WEFT_CONN_CLOSED);
    while (c->inflight_head != NULL) {
        weft_req *r = c->inflight_head;
        c->inflight_head = r->conn_next;
        if (c->inflight_head != NULL) c->inflight_head->conn_prev = NULL;
        r->conn_prev = r->conn_next = NULL;
        r->conn = NULL;
        c->inflight_count--;
        weft_req_detach(r);
    }
    WEFT_ASSERT(c->inflight_count == 0);
    weft_server_remove(c->server, c);
    uv_close((uv_handle_t *)&c->tcp, conn_handle_closed_cb);
    uv_close((uv_handle_t *)&c->linger, conn_handle_closed_cb);
}

static void conn_linger_cb(uv_timer_t *t) {
    weft_conn *c = t->data;
    WEFT_ASSERT(c->state == WEFT_CONN_DRAINING);
    weft_conn_close(c, "linger time after a fatal error ended");
}

static void conn_pause(weft_conn *c);

static void conn_close_soon_cb(uv_timer_t *t) {
    weft_conn *c = t->data;
    weft_conn_close(c, "a response could not be queued");
}

/* Closes on the next loop turn. Used where a response is queued: closing at once would detach
 * and free sibling requests while a caller may be walking a list that holds them. */
static void conn_close_soon(weft_conn *c, const char *why) {
    if (c->state == WEFT_CONN_CLOSED) return;
    weft_log(WEFT_LOG_WARN, WEFT_LOG_NO_SHARD, "connection %llu (%s): %s; closing it",
             (unsigned long long)c->id, c->peer, why);
    conn_pause(c);
    c->shutdown_sent = true; /* nothing more is queued */
    uv_timer_start(&c->linger, conn_close_soon_cb, 0, 0);
}

static void conn_shutdown_cb(uv_shutdown_t *req, int status) {
    weft_conn *c = req->data;
    if (c->state == WEFT_CONN_CLOSED) return; /* canceled by close */
    if (status < 0) weft_conn_close(c, "half-close failed");
}

/* A fatal stream error: one error frame, a half-close, then close after the peer's EOF or the
 * linger time, whichever comes first. */
static void conn_fatal(weft_conn *c, uint64_t request_id, const weft_err *err) {
    if (c->state == WEFT_CONN_DRAINING || c->state == WEFT_CONN_CLOSED) return;
    weft_conn_send_error(c, request_id, err, 0);
    conn_set_state(c, WEFT_CONN_DRAINING);
    c->shutdown_req.data = c;
    int rc = uv_shutdown(&c->shutdown_req, (uv_stream_t *)&c->tcp, conn_shutdown_cb);
    if (rc != 0) {
        weft_conn_close(c, "half-close failed");
        return;
    }
    c->shutdown_sent = true;
    uv_timer_start(&c->linger, conn_linger_cb, WEFTD_CONN_LINGER_MS, 0);
}

static void conn_finish_cb(uv_shutdown_t *req, int status) {
    weft_conn *c = req->data;
    (void)status;
    weft_conn_close(c, "node is stopping");
}

static void conn_finish_timeout_cb(uv_timer_t *t) {
    weft_conn_close(t->data, "node is stopping");
}

void weft_conn_finish(weft_conn *c) {
    if (c->state == WEFT_CONN_CLOSED || c->shutdown_sent) return; /* already on its way out */
    if (c->inflight_count > 0) {
        weft_conn_close(c, "node is stopping with requests still open");
        return;
    }
    conn_pause(c);
    c->shutdown_sent = true;
    c->shutdown_req.data = c;
    if (c->write_queue_bytes == 0 ||
        uv_shutdown(&c->shutdown_req, (uv_stream_t *)&c->tcp, conn_finish_cb) != 0) {
        weft_conn_close(c, "node is stopping");
        return;
    }
    uv_timer_start(&c->linger, conn_finish_timeout_cb, WEFTD_CONN_LINGER_MS, 0);
}

static void conn_alloc_cb(uv_handle_t *h, size_t suggested, uv_buf_t *buf) {
    (void)h;
    (void)suggested;
    WEFT_ASSERT(!conn_read_buf_busy);
    conn_read_buf_busy = true;
    *buf = uv_buf_init(conn_read_buf, sizeof conn_read_buf);
}

static void conn_pause(weft_conn *c) {
    if (!c->reading) return;
    uv_read_stop((uv_stream_t *)&c->tcp);
    c->reading = false;
}

static void conn_read_cb(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf);

static void conn_resume(weft_conn *c) {
    if (c->reading || c->state == WEFT_CONN_CLOSED) return;
    if (c->write_queue_bytes > c->node->cfg.conn_write_queue_bytes_max / 2) return;
    int rc = uv_read_start((uv_stream_t *)&c->tcp, conn_alloc_cb, conn_read_cb);
    if (rc != 0) {
        weft_conn_close(c, uv_strerror(rc));
        return;
    }
    c->reading = true;
}

/* Parses one complete frame and dispatches it. A malformed frame is answered with an error
 * frame naming the problem; the stream stays usable because the length prefix was sound. */
static void conn_frame(weft_conn *c, const uint8_t *frame, size_t len) {
    msgpack_unpacked up;
    msgpack_unpacked_init(&up);
    uint32_t type = 0;
    uint64_t request_id = 0;
    const msgpack_object *body = NULL;
    weft_err err = {0};
    int rc =
        weft_frame_parse(frame, len, &up, &type, &request_id, &body, &c->node->cfg.limits, &err);
    if (rc != 0) {
        WEFT_LOGF(WEFT_LOG_DEBUG, WEFT_LOG_NO_SHARD, "connection %llu (%s): bad frame: %s",
                  (unsigned long long)c->id, c->peer, err.message);
        weft_conn_send_error(c, request_id, &err, 0);
        msgpack_unpacked_destroy(&up);
        return;
    }
    WEFT_ASSERT(body != NULL && body->type == MSGPACK_OBJECT_MAP);
    /* The body is re-packed into its own buffer: the request outlives the reader's buffer. */
    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    msgpack_packer pk;
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    rc = msgpack_pack_object(&pk, *body);
    msgpack_unpacked_destroy(&up);
    if (rc != 0 || sb.size == 0) {
        msgpack_sbuffer_destroy(&sb);
        weft_err_set(&err, WEFT_E_RESOURCE_EXHAUSTED, "", "node is out of memory; retry later");
        weft_conn_send_error(c, request_id, &err, 0);
        return;
    }
    size_t body_len = sb.size;
    uint8_t *bytes = (uint8_t *)msgpack_sbuffer_release(&sb);
    weft_ops_dispatch(c, type, request_id, bytes, body_len);
}

/* Drains every complete frame out of the reader. */
static void conn_frames(weft_conn *c) {
    for (;;) {
        if (c->state != WEFT_CONN_HELLO && c->state != WEFT_CONN_READY) return;
        const uint8_t *frame = NULL;
        size_t len = 0;
        weft_err err = {0};
        int rc = weft_frame_reader_next(&c->reader, &frame, &len, &err);
        if (rc == 0) return;
        if (rc < 0) {
            weft_log(WEFT_LOG_WARN, WEFT_LOG_NO_SHARD, "connection %llu (%s): %s",
                     (unsigned long long)c->id, c->peer, err.message);
            conn_fatal(c, 0, &err);
            return;
        }
        conn_frame(c, frame, len);
    }
}

static void conn_read_cb(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf) {
    weft_conn *c = s->data;
    WEFT_ASSERT(buf->base == NULL || buf->base == conn_read_buf);
    conn_read_buf_busy = false;
    if (c->state == WEFT_CONN_CLOSED) return;
    if (nread < 0) {
        weft_conn_close(c,
                        nread == UV_EOF ? "peer closed the connection" : uv_strerror((int)nread));
        return;
    }
    if (nread == 0 || c->state == WEFT_CONN_DRAINING) return; /* draining discards input */
    weft_err err = {0};
    int rc = weft_frame_reader_feed(&c->reader, (const uint8_t *)buf->base, (size_t)nread, &err);
    if (rc != 0) {
        weft_log(WEFT_LOG_WARN, WEFT_LOG_NO_SHARD, "connection %llu (%s): %s; closing it",
                 (unsigned long long)c->id, c->peer, err.message);
        conn_fatal(c, 0, &err);
        return;
    }
    conn_frames(c);
    if (c->write_queue_bytes > c->node->cfg.conn_write_queue_bytes_max) conn_pause(c);
}

static void conn_write_cb(uv_write_t *req, int status) {
    conn_write *w = (conn_write *)req;
    weft_conn *c = w->conn;
    WEFT_ASSERT(c->write_queue_bytes >= w->len);
    c->write_queue_bytes -= w->len;
    free(w->data);
    free(w);
    if (c->state == WEFT_CONN_CLOSED) return;
    if (status < 0) {
        weft_conn_close(c, uv_strerror(status));
        return;
    }
    if (c->state != WEFT_CONN_DRAINING) conn_resume(c);
}

void weft_conn_send(weft_conn *c, msgpack_sbuffer *sb) {
    WEFT_ASSERT(sb->size > 0);
    if (c->state == WEFT_CONN_CLOSED || c->shutdown_sent) {
        msgpack_sbuffer_destroy(sb);
        return;
    }
    conn_write *w = calloc(1, sizeof *w);
    if (w == NULL) {
        msgpack_sbuffer_destroy(sb);
        conn_close_soon(c, "out of memory queueing a response");
        return;
    }
    w->conn = c;
    w->len = sb->size;
    w->data = msgpack_sbuffer_release(sb);
    uv_buf_t b = uv_buf_init(w->data, (unsigned)w->len);
    c->write_queue_bytes += w->len;
    int rc = uv_write(&w->req, (uv_stream_t *)&c->tcp, &b, 1, conn_write_cb);
    if (rc != 0) {
        c->write_queue_bytes -= w->len;
        free(w->data);
        free(w);
        conn_close_soon(c, uv_strerror(rc));
    }
}

void weft_conn_send_ok(weft_conn *c, uint32_t request_type, uint64_t request_id,
                       const uint8_t *body, size_t body_len) {
    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    int rc = weft_frame_encode_raw(&sb, request_type | WEFT_MSG_RESPONSE_BIT, request_id, body,
                                   body_len);
    if (rc != 0) {
        msgpack_sbuffer_destroy(&sb);
        weft_err err;
        weft_err_set(&err, WEFT_E_RESOURCE_EXHAUSTED, "",
                     "node is out of memory encoding the response; retry later");
        weft_conn_send_error(c, request_id, &err, 0);
        return;
    }
    weft_conn_send(c, &sb);
}

void weft_conn_send_error(weft_conn *c, uint64_t request_id, const weft_err *err,
                          uint64_t leader_hint) {
    WEFT_ASSERT(err->code > 0);
    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    /* Any member's client address comes from the peer list (this node's own included). */
    const char *leader_address =
        leader_hint != 0 ? weft_cluster_client_address(c->node, leader_hint) : "";
    int rc = weft_frame_encode_error(&sb, request_id, err, leader_hint, leader_address);
    if (rc != 0) {
        msgpack_sbuffer_destroy(&sb);
        conn_close_soon(c, "out of memory encoding an error");
        return;
    }
    weft_conn_send(c, &sb);
}

void weft_conn_hello_done(weft_conn *c) {
    if (c->state == WEFT_CONN_HELLO) conn_set_state(c, WEFT_CONN_READY);
}

bool weft_conn_hello_pending(const weft_conn *c) {
    return c->state == WEFT_CONN_HELLO;
}

void weft_conn_req_done(weft_conn *c, weft_req *r) {
    WEFT_ASSERT(r->conn == c && c->inflight_count > 0);
    if (r->conn_prev != NULL) {
        r->conn_prev->conn_next = r->conn_next;
    } else {
        WEFT_ASSERT(c->inflight_head == r);
        c->inflight_head = r->conn_next;
    }
    if (r->conn_next != NULL) r->conn_next->conn_prev = r->conn_prev;
    r->conn_prev = r->conn_next = NULL;
    r->conn = NULL;
    c->inflight_count--;
}

static void conn_peer_name(weft_conn *c) {
    struct sockaddr_storage ss;
    int len = sizeof ss;
    snprintf(c->peer, sizeof c->peer, "unknown");
    if (uv_tcp_getpeername(&c->tcp, (struct sockaddr *)&ss, &len) != 0) return;
    char ip[48] = "";
    if (ss.ss_family == AF_INET) {
        struct sockaddr_in *in = (struct sockaddr_in *)&ss;
        uv_ip4_name(in, ip, sizeof ip);
        snprintf(c->peer, sizeof c->peer, "%s:%u", ip, (unsigned)ntohs(in->sin_port));
    } else if (ss.ss_family == AF_INET6) {
        struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)&ss;
        uv_ip6_name(in6, ip, sizeof ip);
        snprintf(c->peer, sizeof c->peer, "[%s]:%u", ip, (unsigned)ntohs(in6->sin6_port));
    }
}

void weft_conn_accept(weft_server *srv) {
    weft_node *n = srv->node;
    weft_conn *c = calloc(1, sizeof *c);
    WEFT_ASSERT(c != NULL);
    c->node = n;
    c->server = srv;
    c->id = ++srv->next_conn_id;
    c->state = WEFT_CONN_HELLO;
    weft_frame_reader_init(&c->reader, n->cfg.limits.frame_bytes_max);
    int rc = uv_tcp_init(n->loop, &c->tcp);
    WEFT_ASSERT(rc == 0);
    rc = uv_timer_init(n->loop, &c->linger);
    WEFT_ASSERT(rc == 0);
    c->tcp.data = c;
    c->linger.data = c;
    c->handles_open = 2;
    weft_server_add(srv, c);
    rc = uv_accept((uv_stream_t *)&srv->listener, (uv_stream_t *)&c->tcp);
    if (rc != 0) {
        weft_conn_close(c, uv_strerror(rc));
        return;
    }
    conn_peer_name(c);
    if (srv->conns_count > n->cfg.connections_max) {
        weft_log(WEFT_LOG_WARN, WEFT_LOG_NO_SHARD,
                 "refused connection from %s: %u connections open, the limit (connections-max)",
                 c->peer, n->cfg.connections_max);
        weft_conn_close(c, "connections-max reached");
        return;
    }
    uv_tcp_nodelay(&c->tcp, 1);
    WEFT_LOGF(WEFT_LOG_DEBUG, WEFT_LOG_NO_SHARD, "connection %llu from %s",
              (unsigned long long)c->id, c->peer);
    conn_resume(c);
}
