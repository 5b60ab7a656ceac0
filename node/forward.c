/* forward.c: requests sent on to the node that leads their shard (forward.h). Per peer: one TCP
 * connection with a small state machine (idle, connecting, open, closing) changed only by
 * peer_set_state, a frame reader for the answers, and the calls not answered yet, oldest first.
 * A call is answered by the peer's frame with its id, by its deadline (the sweep timer), or by
 * the connection failing; whichever comes first takes it off the list, so it is answered once.
 * An idempotent call on a connection that broke is written once more on a new connection
 * (peer_keep_for_resend) before the failure counts. */
#include "forward.h"

#include <msgpack.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#include "../proto/base.h"
#include "../proto/frame.h"
#include "../proto/log.h"
#include "../proto/msg.h"
#include "../raft/transport.h"
#include "cluster.h"
#include "conn.h"
#include "placement.h"
#include "req.h"

/* Frame id of the Hello that opens every peer connection; calls use the ids after it. */
#define FWD_HELLO_FRAME_ID 1u

typedef enum fwd_state {
    FWD_IDLE,       /* no socket; the next call dials */
    FWD_CONNECTING, /* uv_tcp_connect in flight */
    FWD_OPEN,       /* Hello sent; calls are written as they come */
    FWD_CLOSING,    /* uv_close in flight; calls wait and dial again once it closed */
} fwd_state;

typedef struct fwd_call fwd_call;
typedef struct fwd_peer fwd_peer;

struct fwd_call {
    fwd_call *prev, *next;     /* in the peer's list, oldest first */
    fwd_peer *peer;            /* owner */
    uint64_t frame_id;         /* the answer's id */
    uint32_t msg_type;         /* the request's type */
    msgpack_sbuffer frame;     /* the request frame, kept until answered (a resend needs it) */
    bool written;              /* handed to uv_write on the current connection */
    bool resent;               /* written again on a new connection once already */
    uint64_t deadline_mono_ms; /* answered UNAVAILABLE when nothing came by then */
    weft_forward_cb cb;        /* the caller's */
    void *data;                /* the caller's */
};

struct fwd_peer {
    weft_node *node;           /* owner */
    uint64_t node_id;          /* the peer */
    const char *address;       /* its client address (borrowed from the config) */
    fwd_state state;           /* changed only by peer_set_state */
    uv_tcp_t tcp;              /* the socket while not IDLE */
    uv_connect_t connect_req;  /* CONNECTING */
    uint64_t dial_deadline_ms; /* CONNECTING: given up at this monotonic time */
    uint64_t retry_after_ms;   /* after a failed dial: no new dial before this monotonic time */
    weft_frame_reader reader;  /* splits the answers into frames */
    char *read_buf;            /* WEFTD_FORWARD_READ_BYTES, allocated once */
    fwd_call *head, *tail;     /* calls not answered yet */
    uint32_t calls_count;      /* entries in that list */
    uint64_t next_frame_id;    /* id of the next call */
};

typedef struct weft_forwarder {
    weft_node *node;                        /* owner */
    fwd_peer peers[WEFT_CLUSTER_NODES_MAX]; /* by index in cfg.cluster.nodes */
    uint32_t peers_count;                   /* == cluster nodes */
    uv_timer_t sweep;                       /* deadlines; runs while calls are out */
    bool sweep_running;                     /* sweep started */
    uv_timer_t kick;                        /* next turn: dial or write for new calls */
    bool closed;                            /* weft_forward_close ran */
    uint64_t calls_count;                   /* across peers */
} weft_forwarder;

/* One write in flight: the frame and nothing else (the call may be answered before it ends). */
typedef struct fwd_write {
    uv_write_t req;
    char *data;
} fwd_write;

static const char *fwd_state_name(fwd_state s) {
    static const char *const names[] = {"idle", "connecting", "open", "closing"};
    WEFT_ASSERT((unsigned)s < WEFT_ARRAY_LEN(names));
    return names[s];
}

/* The one place a peer connection changes state (STYLE rule 9). */
static void peer_set_state(fwd_peer *p, fwd_state next) {
    fwd_state prev = p->state;
    bool legal = (prev == FWD_IDLE && next == FWD_CONNECTING) ||
                 (prev == FWD_CONNECTING && next == FWD_OPEN) ||
                 ((prev == FWD_CONNECTING || prev == FWD_OPEN) && next == FWD_CLOSING) ||
                 (prev == FWD_CLOSING && next == FWD_IDLE);
    WEFT_ASSERT(legal);
    WEFT_LOGF(WEFT_LOG_DEBUG, WEFT_LOG_NO_SHARD, "forwarding to node %llu (%s): %s -> %s",
              (unsigned long long)p->node_id, p->address, fwd_state_name(prev),
              fwd_state_name(next));
    p->state = next;
}

/* ---- answering calls ---- */

static void call_unlink(fwd_call *c) {
    fwd_peer *p = c->peer;
    WEFT_ASSERT(p->calls_count > 0);
    if (c->prev != NULL) {
        c->prev->next = c->next;
    } else {
        p->head = c->next;
    }
    if (c->next != NULL) {
        c->next->prev = c->prev;
    } else {
        p->tail = c->prev;
    }
    c->prev = c->next = NULL;
    p->calls_count--;
}

/* Runs the callback of a call already off its peer's list, and frees it. The callback may
 * forward again (even to the same peer), so nothing of the peer's list is held across it. */
static void call_finish(fwd_call *c, const weft_fwd_reply *reply) {
    weft_node *n = c->peer->node;
    WEFT_ASSERT(n->forwarder->calls_count > 0);
    n->forwarder->calls_count--;
    weft_forward_cb cb = c->cb;
    void *data = c->data;
    msgpack_sbuffer_destroy(&c->frame);
    free(c);
    cb(data, reply);
}

/* A call whose answer will never come: UNAVAILABLE, and the client may retry (G4). */
static void call_fail(fwd_call *c, const char *why) {
    weft_fwd_reply reply = {0};
    weft_err_set(&reply.err, WEFT_E_UNAVAILABLE, "",
                 "forwarding to node %llu (%s): %s; the outcome is unknown: retry with the same "
                 "request id",
                 (unsigned long long)c->peer->node_id, c->peer->address, why);
    call_finish(c, &reply);
}

/* Fails every call of the peer. The list is taken off the peer first, so callbacks that
 * forward again queue on a clean list. */
static void peer_fail_all(fwd_peer *p, const char *why) {
    fwd_call *list = p->head;
    p->head = p->tail = NULL;
    p->calls_count = 0;
    while (list != NULL) {
        fwd_call *c = list;
        list = c->next;
        c->prev = c->next = NULL;
        call_fail(c, why);
    }
}

/* ---- the connection ---- */

static void peer_dial(fwd_peer *p);

static void peer_closed_cb(uv_handle_t *h) {
    fwd_peer *p = h->data;
    weft_frame_reader_free(&p->reader);
    peer_set_state(p, FWD_IDLE);
    /* Calls that came while it closed dial again, unless the forwarder is closed. */
    if (p->head != NULL && !p->node->forwarder->closed) peer_dial(p);
}

/* After an open connection broke (reset, closed, a failed write): the calls it had not
 * written yet never left, and each written call whose op is idempotent (weft_op.idempotent:
 * safe to repeat, as clients repeat it, G4) is written once more on a new connection. The
 * others fail. A connection the peer dropped while idle, or that a restart of the peer left
 * half-open behind a partition, is found broken only by the next call; failing that call
 * would fail a client's request on a healthy shard. A resent call keeps its deadline. Returns
 * how many calls stay for the new connection. */
static uint32_t peer_keep_for_resend(fwd_peer *p, const char *why) {
    uint32_t kept = 0;
    fwd_call *c = p->head;
    while (c != NULL) {
        fwd_call *next = c->next;
        const weft_op *op = weft_op_find(c->msg_type);
        bool resend = c->written && !c->resent && op != NULL && op->idempotent;
        if (!c->written || resend) {
            c->resent = c->resent || resend;
            c->written = false;
            kept++;
        } else {
            call_unlink(c);
            call_fail(c, why);
            next = p->head; /* the list may have changed under the callback */
            for (uint32_t k = 0; k < kept && next != NULL; k++) next = next->next;
        }
        c = next;
    }
    return kept;
}

/* Closes the socket. Every call on it fails, except, when `broken` (the transport failed
 * under an open connection), those peer_keep_for_resend keeps: peer_closed_cb dials again
 * for them. */
static void peer_close_why(fwd_peer *p, const char *why, bool broken) {
    if (p->state != FWD_CONNECTING && p->state != FWD_OPEN) return;
    bool was_open = p->state == FWD_OPEN;
    peer_set_state(p, FWD_CLOSING);
    uv_close((uv_handle_t *)&p->tcp, peer_closed_cb);
    uint32_t kept = broken && was_open ? peer_keep_for_resend(p, why) : 0;
    if (kept > 0) {
        weft_log(WEFT_LOG_WARN, WEFT_LOG_NO_SHARD,
                 "forwarding connection to node %llu (%s): %s; %u calls go again on a new "
                 "connection",
                 (unsigned long long)p->node_id, p->address, why, kept);
        return;
    }
    weft_log(WEFT_LOG_WARN, WEFT_LOG_NO_SHARD, "forwarding connection to node %llu (%s): %s",
             (unsigned long long)p->node_id, p->address, why);
    peer_fail_all(p, why);
}

/* Closes the socket and fails every call on it. */
static void peer_close(fwd_peer *p, const char *why) { peer_close_why(p, why, false); }

/* The transport broke under the connection (peer_close_why). */
static void peer_broken(fwd_peer *p, const char *why) { peer_close_why(p, why, true); }

static void peer_write_cb(uv_write_t *req, int status) {
    fwd_write *w = (fwd_write *)req;
    fwd_peer *p = req->data;
    free(w->data);
    free(w);
    if (status < 0 && status != UV_ECANCELED) peer_broken(p, uv_strerror(status));
}

/* Writes a frame (ownership of sb's data taken). */
static int peer_write(fwd_peer *p, msgpack_sbuffer *sb) {
    fwd_write *w = calloc(1, sizeof *w);
    if (w == NULL) {
        msgpack_sbuffer_destroy(sb);
        return -WEFT_E_RESOURCE_EXHAUSTED;
    }
    size_t len = sb->size;
    w->data = msgpack_sbuffer_release(sb);
    w->req.data = p;
    uv_buf_t b = uv_buf_init(w->data, (unsigned)len);
    int rc = uv_write(&w->req, (uv_stream_t *)&p->tcp, &b, 1, peer_write_cb);
    if (rc != 0) {
        free(w->data);
        free(w);
    }
    return rc;
}

/* Writes every call not written yet, each from a copy of its frame (kept for a resend). */
static void peer_flush(fwd_peer *p) {
    for (fwd_call *c = p->head; c != NULL && p->state == FWD_OPEN; c = c->next) {
        if (c->written) continue;
        c->written = true;
        msgpack_sbuffer copy;
        msgpack_sbuffer_init(&copy);
        int rc = -WEFT_E_RESOURCE_EXHAUSTED;
        if (msgpack_sbuffer_write(&copy, c->frame.data, c->frame.size) == 0) {
            rc = peer_write(p, &copy); /* takes the copy, also when it fails */
        } else {
            msgpack_sbuffer_destroy(&copy);
        }
        if (rc != 0) {
            peer_close(p, rc == -WEFT_E_RESOURCE_EXHAUSTED ? "out of memory" : uv_strerror(rc));
            return;
        }
    }
}

/* The peer answered the Hello: it must be the node the peer list says is there. */
static void peer_hello_answer(fwd_peer *p, uint32_t type, const uint8_t *body, size_t len) {
    if (type == WEFT_MSG_ERROR) {
        peer_close(p, "it refused this node's Hello");
        return;
    }
    msgpack_unpacked up;
    msgpack_unpacked_init(&up);
    weft_hello_resp resp;
    weft_err err = {0};
    int rc = weft_schema_decode_buf(&weft_hello_resp_schema, body, len, &resp, &up,
                                    &p->node->cfg.limits, &err);
    bool same = rc == 0 && resp.node_id == p->node_id &&
                weft_str_eq_c(resp.cluster_id, p->node->datadir.cluster_id);
    msgpack_unpacked_destroy(&up);
    if (!same) {
        peer_close(p, "the node at that address is not this cluster's node with that id; check "
                      "--peers on both nodes");
    }
}

/* One answer frame: the call with its id gets it; an answer for a call that timed out already
 * is dropped. */
static void peer_frame(fwd_peer *p, const uint8_t *frame, size_t len) {
    msgpack_unpacked up;
    msgpack_unpacked_init(&up);
    uint32_t type = 0;
    uint64_t id = 0;
    const msgpack_object *body = NULL;
    weft_err err = {0};
    int rc = weft_frame_parse(frame, len, &up, &type, &id, &body, &p->node->cfg.limits, &err);
    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    if (rc == 0) {
        msgpack_packer pk;
        msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
        if (msgpack_pack_object(&pk, *body) != 0) rc = -WEFT_E_RESOURCE_EXHAUSTED;
    }
    msgpack_unpacked_destroy(&up);
    if (rc != 0 || id == 0) {
        msgpack_sbuffer_destroy(&sb);
        peer_close(p, rc != 0 ? "it sent a malformed frame" : "it refused a frame");
        return;
    }
    if (id == FWD_HELLO_FRAME_ID) {
        peer_hello_answer(p, type, (const uint8_t *)sb.data, sb.size);
        msgpack_sbuffer_destroy(&sb);
        return;
    }
    fwd_call *c = p->head;
    while (c != NULL && c->frame_id != id)
        c = c->next;
    if (c == NULL) {
        msgpack_sbuffer_destroy(&sb);
        return;
    }
    weft_fwd_reply reply = {0};
    msgpack_unpacked eu;
    msgpack_unpacked_init(&eu);
    if (type == WEFT_MSG_ERROR) {
        weft_error_resp e;
        if (weft_schema_decode_buf(&weft_error_resp_schema, (const uint8_t *)sb.data, sb.size, &e,
                                   &eu, &p->node->cfg.limits, &reply.err) == 0 &&
            e.code > 0) {
            reply.err.code = (int)e.code;
            weft_str_copy(reply.err.field, sizeof reply.err.field, e.field);
            weft_str_copy(reply.err.message, sizeof reply.err.message, e.message);
            reply.leader_hint = e.leader_hint;
        } else {
            weft_err_set(&reply.err, WEFT_E_INTERNAL, "",
                         "node %llu answered a forwarded request with a malformed error",
                         (unsigned long long)p->node_id);
        }
    } else if (type == (c->msg_type | WEFT_MSG_RESPONSE_BIT)) {
        reply.body = (const uint8_t *)sb.data;
        reply.body_len = sb.size;
    } else {
        weft_err_set(&reply.err, WEFT_E_INTERNAL, "",
                     "node %llu answered a forwarded request with message type %u",
                     (unsigned long long)p->node_id, type);
    }
    call_unlink(c);
    call_finish(c, &reply);
    msgpack_unpacked_destroy(&eu);
    msgpack_sbuffer_destroy(&sb);
}

static void peer_alloc_cb(uv_handle_t *h, size_t suggested, uv_buf_t *buf) {
    fwd_peer *p = h->data;
    (void)suggested;
    *buf = uv_buf_init(p->read_buf, WEFTD_FORWARD_READ_BYTES);
}

static void peer_read_cb(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf) {
    fwd_peer *p = s->data;
    if (p->state != FWD_OPEN) return;
    if (nread < 0) {
        peer_broken(p, nread == UV_EOF ? "the peer closed it" : uv_strerror((int)nread));
        return;
    }
    if (nread == 0) return;
    weft_err err = {0};
    if (weft_frame_reader_feed(&p->reader, (const uint8_t *)buf->base, (size_t)nread, &err) != 0) {
        peer_close(p, err.message);
        return;
    }
    for (;;) {
        const uint8_t *frame = NULL;
        size_t len = 0;
        int rc = weft_frame_reader_next(&p->reader, &frame, &len, &err);
        if (rc == 0) return;
        if (rc < 0) {
            peer_close(p, err.message);
            return;
        }
        peer_frame(p, frame, len);
        if (p->state != FWD_OPEN) return;
    }
}

static void peer_connect_cb(uv_connect_t *req, int status) {
    fwd_peer *p = req->data;
    if (p->state != FWD_CONNECTING) return; /* closed meanwhile (deadline, stop) */
    if (status < 0) {
        p->retry_after_ms = weft_mono_ms() + p->node->cfg.forward_connect_timeout_ms;
        peer_close(p, uv_strerror(status));
        return;
    }
    uv_tcp_nodelay(&p->tcp, 1);
    /* A forwarding connection that lived through a partition must not wait out TCP's
     * retransmission backoff once the network heals (raft/transport.h). */
    weft_tcp_set_peer_timeouts(&p->tcp, WEFT_RAFT_TCP_USER_TIMEOUT_MS, 0);
    peer_set_state(p, FWD_OPEN);
    weft_hello_req hello = {
        .protocol_version = WEFT_PROTOCOL_VERSION,
        .client_name = weft_str_c("weftd-forwarder"),
        .forwarding_node = p->node->datadir.node_id,
    };
    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    int rc =
        weft_frame_encode(&sb, WEFT_MSG_HELLO, FWD_HELLO_FRAME_ID, &weft_hello_req_schema, &hello);
    if (rc == 0) rc = peer_write(p, &sb);
    if (rc == 0) rc = uv_read_start((uv_stream_t *)&p->tcp, peer_alloc_cb, peer_read_cb);
    if (rc != 0) {
        msgpack_sbuffer_destroy(&sb);
        peer_close(p, "cannot send Hello");
        return;
    }
    peer_flush(p);
}

static void peer_dial(fwd_peer *p) {
    WEFT_ASSERT(p->state == FWD_IDLE);
    weft_node *n = p->node;
    struct sockaddr_storage addr;
    int rc = weft_address_sockaddr(p->address, &addr);
    if (rc == 0) rc = uv_tcp_init(n->loop, &p->tcp);
    if (rc != 0) {
        /* The peer list was validated at start: only an exhausted loop gets here. */
        p->retry_after_ms = weft_mono_ms() + n->cfg.forward_connect_timeout_ms;
        peer_fail_all(p, "cannot open a socket");
        return;
    }
    p->tcp.data = p;
    p->connect_req.data = p;
    weft_frame_reader_init(&p->reader, n->cfg.limits.frame_bytes_max);
    peer_set_state(p, FWD_CONNECTING);
    p->dial_deadline_ms = weft_mono_ms() + n->cfg.forward_connect_timeout_ms;
    rc = uv_tcp_connect(&p->connect_req, &p->tcp, (const struct sockaddr *)&addr, peer_connect_cb);
    if (rc != 0) {
        p->retry_after_ms = weft_mono_ms() + n->cfg.forward_connect_timeout_ms;
        peer_close(p, uv_strerror(rc));
    }
}

/* ---- deadlines ---- */

static void fwd_sweep_cb(uv_timer_t *t) {
    weft_forwarder *f = t->data;
    uint64_t now = weft_mono_ms();
    for (uint32_t i = 0; i < f->peers_count; i++) {
        fwd_peer *p = &f->peers[i];
        if (p->state == FWD_CONNECTING && now >= p->dial_deadline_ms) {
            p->retry_after_ms = now + f->node->cfg.forward_connect_timeout_ms;
            peer_close(p, "connecting timed out (forward-connect-timeout-ms)");
            continue;
        }
        /* Deadlines differ (long-poll waits), so every call is looked at. A callback may add
         * calls at the tail; those have later deadlines and are not due. */
        fwd_call *c = p->head;
        while (c != NULL) {
            fwd_call *next = c->next;
            if (now >= c->deadline_mono_ms) {
                call_unlink(c);
                call_fail(c, "no answer within forward-timeout-ms");
                next = p->head; /* the list may have changed under the callback */
            }
            c = next;
        }
    }
    if (f->calls_count == 0) {
        uv_timer_stop(&f->sweep);
        f->sweep_running = false;
    }
}

/* New calls are dialled for or written on the next loop turn, so that a failure there reaches
 * callbacks from the loop, never from inside weft_forward_call. */
static void fwd_kick_cb(uv_timer_t *t) {
    weft_forwarder *f = t->data;
    for (uint32_t i = 0; i < f->peers_count && !f->closed; i++) {
        fwd_peer *p = &f->peers[i];
        if (p->head == NULL) continue;
        if (p->state == FWD_IDLE) {
            peer_dial(p);
        } else if (p->state == FWD_OPEN) {
            peer_flush(p);
        }
    }
}

/* ---- API ---- */

void weft_forward_init(weft_node *n) {
    WEFT_ASSERT(n->forwarder == NULL);
    weft_forwarder *f = calloc(1, sizeof *f);
    WEFT_ASSERT(f != NULL);
    f->node = n;
    const weft_cluster *cl = &n->cfg.cluster;
    f->peers_count = cl->nodes_count;
    for (uint32_t i = 0; i < cl->nodes_count; i++) {
        f->peers[i] = (fwd_peer){
            .node = n,
            .node_id = cl->nodes[i].id,
            .address = cl->nodes[i].client_address,
            .state = FWD_IDLE,
            .next_frame_id = FWD_HELLO_FRAME_ID + 1,
        };
    }
    int rc = uv_timer_init(n->loop, &f->sweep);
    WEFT_ASSERT(rc == 0);
    f->sweep.data = f;
    rc = uv_timer_init(n->loop, &f->kick);
    WEFT_ASSERT(rc == 0);
    f->kick.data = f;
    n->forwarder = f;
}

void weft_forward_close(weft_node *n) {
    weft_forwarder *f = n->forwarder;
    if (f == NULL || f->closed) return;
    f->closed = true;
    for (uint32_t i = 0; i < f->peers_count; i++) {
        fwd_peer *p = &f->peers[i];
        if (p->state == FWD_CONNECTING || p->state == FWD_OPEN) {
            peer_close(p, "node is stopping");
        } else {
            peer_fail_all(p, "node is stopping");
        }
    }
    uv_close((uv_handle_t *)&f->sweep, NULL);
    uv_close((uv_handle_t *)&f->kick, NULL);
}

void weft_forward_free(weft_node *n) {
    weft_forwarder *f = n->forwarder;
    if (f == NULL) return;
    for (uint32_t i = 0; i < f->peers_count; i++) {
        WEFT_ASSERT(f->peers[i].head == NULL);
        free(f->peers[i].read_buf);
    }
    free(f);
    n->forwarder = NULL;
}

static fwd_peer *fwd_peer_of(weft_forwarder *f, uint64_t node_id) {
    for (uint32_t i = 0; i < f->peers_count; i++) {
        if (f->peers[i].node_id == node_id) return &f->peers[i];
    }
    return NULL;
}

int weft_forward_call(weft_node *n, uint64_t node_id, uint32_t msg_type, const uint8_t *body,
                      size_t body_len, uint64_t wait_ms, weft_forward_cb cb, void *data,
                      weft_err *err) {
    WEFT_ASSERT(body != NULL && body_len > 0 && cb != NULL);
    weft_forwarder *f = n->forwarder;
    fwd_peer *p = f != NULL ? fwd_peer_of(f, node_id) : NULL;
    if (p == NULL || node_id == n->datadir.node_id) {
        return weft_err_set(err, WEFT_E_INVALID_ARGUMENT, "", "node %llu is not a peer",
                            (unsigned long long)node_id);
    }
    if (f->closed) {
        return weft_err_set(err, WEFT_E_UNAVAILABLE, "",
                            "node is shutting down; retry on another node");
    }
    if (weft_cluster_cut_off(n)) return weft_cluster_cut_off_err(n, err);
    uint64_t now = weft_mono_ms();
    if ((p->state == FWD_IDLE || p->state == FWD_CLOSING) && now < p->retry_after_ms) {
        return weft_err_set(err, WEFT_E_UNAVAILABLE, "",
                            "node %llu (%s) could not be reached lately",
                            (unsigned long long)node_id, p->address);
    }
    if (p->calls_count >= n->cfg.forward_inflight_max) {
        return weft_err_set(err, WEFT_E_UNAVAILABLE, "",
                            "%u requests are already forwarded to node %llu (forward-inflight-max)",
                            p->calls_count, (unsigned long long)node_id);
    }
    if (p->read_buf == NULL && (p->read_buf = malloc(WEFTD_FORWARD_READ_BYTES)) == NULL) {
        return weft_err_set(err, WEFT_E_RESOURCE_EXHAUSTED, "", "node is out of memory; retry");
    }
    fwd_call *c = calloc(1, sizeof *c);
    if (c == NULL) {
        return weft_err_set(err, WEFT_E_RESOURCE_EXHAUSTED, "", "node is out of memory; retry");
    }
    c->peer = p;
    c->frame_id = p->next_frame_id++;
    c->msg_type = msg_type;
    c->cb = cb;
    c->data = data;
    c->deadline_mono_ms = now + n->cfg.forward_timeout_ms + wait_ms;
    msgpack_sbuffer_init(&c->frame);
    if (weft_frame_encode_raw(&c->frame, msg_type, c->frame_id, body, body_len) != 0) {
        msgpack_sbuffer_destroy(&c->frame);
        free(c);
        return weft_err_set(err, WEFT_E_RESOURCE_EXHAUSTED, "", "node is out of memory; retry");
    }
    c->prev = p->tail;
    if (p->tail != NULL) {
        p->tail->next = c;
    } else {
        p->head = c;
    }
    p->tail = c;
    p->calls_count++;
    f->calls_count++;
    if (!f->sweep_running) {
        uv_timer_start(&f->sweep, fwd_sweep_cb, WEFTD_FORWARD_SWEEP_MS, WEFTD_FORWARD_SWEEP_MS);
        f->sweep_running = true;
    }
    if (p->state == FWD_IDLE || p->state == FWD_OPEN) uv_timer_start(&f->kick, fwd_kick_cb, 0, 0);
    return 0;
}

bool weft_forward_from_client(const weft_req *r) {
    return r->conn != NULL && r->conn->forwarding_node == 0 && weft_node_serving(r->node);
}

bool weft_forward_allowed(const weft_req *r, uint64_t node_id) {
    const weft_node *n = r->node;
    return weft_forward_from_client(r) && node_id != 0 && node_id != n->datadir.node_id &&
           weft_cluster_client_address(n, node_id)[0] != '\0';
}

/* ---- relaying a client request ---- */

static void forward_req_cb(void *data, const weft_fwd_reply *reply) {
    weft_req *r = data;
    WEFT_ASSERT(r->async_pending > 0);
    r->async_pending--;
    if (reply->err.code == WEFT_E_NOT_LEADER && reply->leader_hint != r->forward_node &&
        r->forward_attempts < WEFTD_FORWARD_ATTEMPTS_MAX &&
        weft_forward_req(r, reply->leader_hint, r->forward_wait_ms)) {
        return;
    }
    if (reply->err.code != 0) {
        weft_req_err(r, &reply->err, reply->leader_hint);
        return;
    }
    uint8_t *body = malloc(reply->body_len);
    if (body == NULL) {
        weft_req_fail(r, WEFT_E_RESOURCE_EXHAUSTED, "", "node is out of memory; retry");
        return;
    }
    memcpy(body, reply->body, reply->body_len);
    weft_req_ok(r, body, reply->body_len);
}

bool weft_forward_req(weft_req *r, uint64_t node_id, uint64_t wait_ms) {
    WEFT_ASSERT(!r->finished && r->wait == WEFT_REQ_WAIT_NONE);
    if (!weft_forward_allowed(r, node_id)) return false;
    weft_err err = {0};
    if (weft_cluster_cut_off(r->node)) {
        weft_cluster_cut_off_err(r->node, &err);
        weft_req_err(r, &err, 0);
        return true;
    }
    if (weft_forward_call(r->node, node_id, r->op->msg_type, r->body, r->body_len, wait_ms,
                          forward_req_cb, r, &err) != 0) {
        WEFT_LOGF(WEFT_LOG_DEBUG, WEFT_LOG_NO_SHARD, "request %s not forwarded: %s", r->op->name,
                  err.message);
        return false;
    }
    WEFT_LOGF(WEFT_LOG_TRACE, WEFT_LOG_NO_SHARD, "request %s id %llu forwarded to node %llu",
              r->op->name, (unsigned long long)r->request_id, (unsigned long long)node_id);
    r->forward_attempts++;
    r->forward_node = node_id;
    r->forward_wait_ms = wait_ms;
    r->async_pending++;
    return true;
}

/* ---- one request asked of every node ---- */

/* One gathered request: the peers asked, and the timer that answers with whoever answered by
 * then. Freed when the answer is sent and every peer's callback has run. */
typedef struct fwd_gather {
    weft_req *r;                                    /* answered once, by gather_answer */
    weft_gather_fn fn;                              /* how */
    bool answered;                                  /* r was answered */
    uint32_t pending;                               /* peer callbacks still to run */
    bool timer_open;                                /* timer not closed yet */
    uv_timer_t timer;                               /* one election timeout, then answer */
    weft_gather_peer peers[WEFT_CLUSTER_NODES_MAX]; /* every other node */
    uint32_t peers_count;                           /* entries used */
} fwd_gather;

typedef struct fwd_gather_call {
    fwd_gather *g;  /* owner */
    uint32_t index; /* in g->peers */
} fwd_gather_call;

static void gather_free_maybe(fwd_gather *g) {
    if (!g->answered || g->pending > 0 || g->timer_open) return;
    for (uint32_t k = 0; k < g->peers_count; k++)
        free(g->peers[k].body);
    free(g);
}

static void gather_timer_closed_cb(uv_handle_t *h) {
    fwd_gather *g = h->data;
    g->timer_open = false;
    gather_free_maybe(g);
}

static void gather_answer(fwd_gather *g) {
    if (g->answered) return;
    g->answered = true;
    WEFT_ASSERT(g->r->async_pending > 0);
    g->r->async_pending--;
    g->fn(g->r, g->peers, g->peers_count);
    uv_close((uv_handle_t *)&g->timer, gather_timer_closed_cb);
}

static void gather_timeout_cb(uv_timer_t *t) {
    gather_answer(t->data);
}

static void gather_peer_cb(void *data, const weft_fwd_reply *reply) {
    fwd_gather_call *call = data;
    fwd_gather *g = call->g;
    weft_gather_peer *p = &g->peers[call->index];
    free(call);
    WEFT_ASSERT(g->pending > 0);
    g->pending--;
    if (reply->err.code == 0 && !g->answered && reply->body_len > 0 &&
        (p->body = malloc(reply->body_len)) != NULL) {
        memcpy(p->body, reply->body, reply->body_len);
        p->body_len = reply->body_len;
        p->answered = true;
    }
    if (g->pending == 0) gather_answer(g);
    gather_free_maybe(g);
}

bool weft_forward_gather(weft_req *r, weft_gather_fn fn) {
    weft_node *n = r->node;
    const weft_cluster *cl = &n->cfg.cluster;
    if (cl->nodes_count == 1 || !weft_forward_from_client(r)) return false;
    fwd_gather *g = calloc(1, sizeof *g);
    if (g == NULL) {
        weft_req_fail(r, WEFT_E_RESOURCE_EXHAUSTED, "", "node is out of memory; retry");
        return true;
    }
    g->r = r;
    g->fn = fn;
    r->async_pending++;
    int rc = uv_timer_init(n->loop, &g->timer);
    WEFT_ASSERT(rc == 0);
    g->timer.data = g;
    g->timer_open = true;
    for (uint32_t i = 0; i < cl->nodes_count; i++) {
        if (cl->nodes[i].id == n->datadir.node_id) continue;
        uint32_t index = g->peers_count++;
        g->peers[index].node_id = cl->nodes[i].id;
        fwd_gather_call *call = calloc(1, sizeof *call);
        weft_err err = {0};
        if (call == NULL) continue; /* shown as not answering */
        *call = (fwd_gather_call){.g = g, .index = index};
        if (weft_forward_call(n, cl->nodes[i].id, r->op->msg_type, r->body, r->body_len, 0,
                              gather_peer_cb, call, &err) != 0) {
            free(call);
            continue;
        }
        g->pending++;
    }
    if (g->pending == 0) {
        gather_answer(g);
        gather_free_maybe(g);
        return true;
    }
    uv_timer_start(&g->timer, gather_timeout_cb, n->cfg.election_timeout_ms, 0);
    return true;
}
