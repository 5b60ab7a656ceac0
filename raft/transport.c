/* transport.c: the node's single raft port (DESIGN section 5). libraft 0.15's stock TCP
 * transport binds one port per group; with many shards per node we need one port for all.
 * Each group gets its own raft_uv_transport: connect dials the peer node's raft port and writes
 * a fixed-size preamble naming the group; the node-wide listener reads exactly that preamble
 * and hands the stream to the named group's raft_uv accept callback. Learned from dqlite's
 * src/transport.c, which does the same to share a port with its client protocol. */
#include "transport.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../proto/base.h"
#include "../proto/log.h"

typedef struct transport_impl transport_impl;

/* A connection accepted on the raft port, still reading its preamble. */
typedef struct accept_conn {
    weft_raft_listener *l;         /* owner */
    uv_tcp_t *tcp;                 /* raft_malloc'd (raft frees it once it owns the stream);
                                      NULL after the stream was handed over */
    uv_timer_t timer;              /* preamble deadline */
    uint8_t preamble[WEFT_RAFT_PREAMBLE_BYTES]; /* bytes read so far */
    size_t got_bytes;              /* how many of them */
    unsigned handles_open;         /* our handles not yet closed; freed at 0 */
    struct accept_conn *prev;      /* listener's pending list */
    struct accept_conn *next;
} accept_conn;

struct weft_raft_listener {
    uv_loop_t *loop;                                    /* the node's loop */
    uv_tcp_t server;                                    /* the raft port */
    char address[WEFT_RAFT_ADDRESS_BYTES_MAX];          /* address actually bound */
    char cluster_id[WEFT_RAFT_PREAMBLE_CLUSTER_BYTES];  /* every preamble must carry it */
    transport_impl *groups;                             /* transports that are listening */
    accept_conn *accepts;                               /* connections reading a preamble */
    unsigned accepts_count;                             /* length of `accepts` */
    unsigned open_count;                                /* server handle + unfreed conns */
    bool closing;                                       /* close was called */
    void (*close_cb)(void *data);                       /* runs when open_count reaches 0 */
    void *close_data;
};

/* An outgoing connection raft_uv asked for, not yet handed back. */
typedef struct dial {
    transport_impl *impl;          /* owner */
    struct raft_uv_connect *req;   /* raft's request; its cb runs exactly once */
    uv_tcp_t *tcp;                 /* raft_malloc'd; becomes raft's stream on success */
    uv_connect_t connect;          /* TCP connect request */
    uv_write_t write;              /* preamble write request */
    uint8_t preamble[WEFT_RAFT_PREAMBLE_BYTES]; /* what we write first */
    int status;                    /* raft code given to req->cb when the dial fails */
    bool aborting;                 /* the handle is closing; callbacks must not act */
    struct dial *prev;             /* impl's pending list */
    struct dial *next;
} dial;

/* Lifecycle of one group's transport, changed only by impl_state_set. */
typedef enum impl_state {
    IMPL_IDLE,       /* built, raft_uv has not called listen */
    IMPL_LISTENING,  /* registered on the listener: incoming streams reach raft */
    IMPL_CLOSING,    /* close called: dials being cancelled */
    IMPL_CLOSED,     /* close callback ran; may be freed */
} impl_state;

struct transport_impl {
    weft_raft_listener *l;                      /* the node's listener */
    struct raft_uv_transport *t;                /* the transport we implement */
    uint32_t group_id;                          /* group named in our preambles */
    raft_id id;                                 /* our raft id (from init) */
    char address[WEFT_RAFT_ADDRESS_BYTES_MAX];  /* our raft address (from init) */
    raft_uv_accept_cb accept_cb;                /* raft_uv's, from listen */
    impl_state state;                           /* see impl_state_set */
    dial *dials;                                /* pending connects */
    unsigned dials_count;                       /* length of `dials` */
    uv_timer_t defer;                           /* closed to defer the close callback */
    bool defer_closed;                          /* its close callback ran */
    raft_uv_transport_close_cb close_cb;        /* raft_uv's */
    transport_impl *prev;                       /* listener's registry */
    transport_impl *next;
};

static const char *impl_state_name(impl_state s) {
    static const char *const names[] = {"idle", "listening", "closing", "closed"};
    WEFT_ASSERT((unsigned)s < WEFT_ARRAY_LEN(names));
    return names[s];
}

/* The one place a transport changes state (STYLE rule 9). */
static void impl_state_set(transport_impl *impl, impl_state next) {
    impl_state old = impl->state;
    WEFT_ASSERT((old == IMPL_IDLE && next == IMPL_LISTENING) ||
                (old == IMPL_IDLE && next == IMPL_CLOSING) ||
                (old == IMPL_LISTENING && next == IMPL_CLOSING) ||
                (old == IMPL_CLOSING && next == IMPL_CLOSED));
    WEFT_LOGF(WEFT_LOG_DEBUG, impl->group_id, "raft transport %s -> %s", impl_state_name(old),
              impl_state_name(next));
    impl->state = next;
}

/* ---- Addresses and preambles ---- */

int weft_raft_address_parse(const char *address, struct sockaddr_in *out, weft_err *err) {
    WEFT_ASSERT(address != NULL && out != NULL);
    char host[WEFT_RAFT_ADDRESS_BYTES_MAX];
    const char *colon = strrchr(address, ':');
    size_t host_len = colon ? (size_t)(colon - address) : 0;
    char *end = NULL;
    unsigned long port = colon ? strtoul(colon + 1, &end, 10) : 0;
    if (colon == NULL || host_len == 0 || host_len >= sizeof host || end == colon + 1 ||
        *end != '\0' || port > 65535) {
        return weft_err_set(err, WEFT_E_INVALID_ARGUMENT, "raft_address",
                            "raft address '%s' is not a.b.c.d:port (IPv4 only in libraft 0.15)",
                            address);
    }
    memcpy(host, address, host_len);
    host[host_len] = '\0';
    if (uv_ip4_addr(host, (int)port, out) != 0) {
        return weft_err_set(err, WEFT_E_INVALID_ARGUMENT, "raft_address",
                            "raft address '%s' has no IPv4 host part; hostnames arrive in "
                            "libraft 0.16, use a dotted quad",
                            address);
    }
    return 0;
}

static void be_put(uint8_t *p, uint64_t v, size_t n) {
    for (size_t i = 0; i < n; i++) p[i] = (uint8_t)(v >> (8 * (n - 1 - i)));
}

static uint64_t be_get(const uint8_t *p, size_t n) {
    uint64_t v = 0;
    for (size_t i = 0; i < n; i++) v = (v << 8) | p[i];
    return v;
}

/* A fixed string field: NUL-padded; must hold a NUL so the reader can trust strlen. */
static bool field_put(uint8_t *dst, size_t cap, const char *s) {
    size_t n = strlen(s);
    if (n >= cap) return false;
    memset(dst, 0, cap);
    memcpy(dst, s, n);
    return true;
}

static bool field_ok(const uint8_t *p, size_t cap) { return memchr(p, '\0', cap) != NULL; }

typedef struct preamble {
    uint32_t group_id;
    uint64_t from_id;
    const char *cluster_id;  /* points into the preamble bytes */
    const char *from_address;
} preamble;

bool weft_raft_preamble_encode(uint8_t *p, uint32_t group_id, uint64_t from_id,
                               const char *cluster_id, const char *from_address) {
    memset(p, 0, WEFT_RAFT_PREAMBLE_BYTES);
    be_put(p, WEFT_RAFT_PREAMBLE_MAGIC, 8);
    be_put(p + 8, WEFT_RAFT_PREAMBLE_VERSION, 4);
    be_put(p + 12, group_id, 4);
    be_put(p + 16, from_id, 8);
    bool ok = field_put(p + 24, WEFT_RAFT_PREAMBLE_CLUSTER_BYTES, cluster_id);
    return ok && field_put(p + 88, WEFT_RAFT_PREAMBLE_ADDRESS_BYTES, from_address);
}

static void preamble_encode(uint8_t *p, const transport_impl *impl) {
    bool ok = weft_raft_preamble_encode(p, impl->group_id, impl->id, impl->l->cluster_id,
                                        impl->address);
    /* Both strings were length-checked when stored. */
    WEFT_ASSERT(ok);
}

/* Validates a complete preamble; returns a static reason on failure, NULL when sound. */
static const char *preamble_decode(const uint8_t *p, preamble *out) {
    if (be_get(p, 8) != WEFT_RAFT_PREAMBLE_MAGIC) return "bad magic (not a weft raft peer)";
    if (be_get(p + 8, 4) != WEFT_RAFT_PREAMBLE_VERSION) return "unsupported preamble version";
    if (!field_ok(p + 24, WEFT_RAFT_PREAMBLE_CLUSTER_BYTES)) return "cluster id not terminated";
    if (!field_ok(p + 88, WEFT_RAFT_PREAMBLE_ADDRESS_BYTES)) return "address not terminated";
    if (be_get(p + 152, 8) != 0) return "reserved bytes are not zero";
    out->group_id = (uint32_t)be_get(p + 12, 4);
    out->from_id = be_get(p + 16, 8);
    out->cluster_id = (const char *)(p + 24);
    out->from_address = (const char *)(p + 88);
    if (out->from_id == 0) return "raft id 0";
    if (out->from_address[0] == '\0') return "empty address";
    return NULL;
}

/* ---- Listener: accepting and reading preambles ---- */

static void listener_maybe_closed(weft_raft_listener *l) {
    if (!l->closing || l->open_count > 0) return;
    WEFT_ASSERT(l->accepts == NULL && l->accepts_count == 0);
    if (l->close_cb != NULL) l->close_cb(l->close_data);
}

static void conn_unlink(accept_conn *c) {
    weft_raft_listener *l = c->l;
    WEFT_ASSERT(l->accepts_count > 0);
    if (c->prev) c->prev->next = c->next;
    else l->accepts = c->next;
    if (c->next) c->next->prev = c->prev;
    c->prev = c->next = NULL;
    l->accepts_count--;
}

static void conn_handle_closed(accept_conn *c) {
    WEFT_ASSERT(c->handles_open > 0);
    if (--c->handles_open > 0) return;
    weft_raft_listener *l = c->l;
    free(c);
    WEFT_ASSERT(l->open_count > 0);
    l->open_count--;
    listener_maybe_closed(l);
}

static void conn_tcp_close_cb(uv_handle_t *h) {
    accept_conn *c = h->data;
    raft_free(h);
    conn_handle_closed(c);
}

static void conn_timer_close_cb(uv_handle_t *h) { conn_handle_closed(h->data); }

/* Drops a connection that will not reach raft. */
static void conn_fail(accept_conn *c) {
    WEFT_ASSERT(c->tcp != NULL);
    conn_unlink(c);
    uv_timer_stop(&c->timer);
    uv_close((uv_handle_t *)c->tcp, conn_tcp_close_cb);
    c->tcp = NULL;
    uv_close((uv_handle_t *)&c->timer, conn_timer_close_cb);
}

static transport_impl *listener_find(weft_raft_listener *l, uint32_t group_id) {
    for (transport_impl *i = l->groups; i != NULL; i = i->next) {
        WEFT_ASSERT(i->state == IMPL_LISTENING);
        if (i->group_id == group_id) return i;
    }
    return NULL;
}

static void conn_complete(accept_conn *c) {
    weft_raft_listener *l = c->l;
    preamble pre;
    const char *why = preamble_decode(c->preamble, &pre);
    uint32_t shard = why == NULL ? pre.group_id : WEFT_LOG_NO_SHARD;
    if (why == NULL && strcmp(pre.cluster_id, l->cluster_id) != 0) why = "wrong cluster id";
    transport_impl *impl = why == NULL ? listener_find(l, pre.group_id) : NULL;
    if (why == NULL && impl == NULL) why = "no such group on this node (yet)";
    if (why != NULL) {
        WEFT_LOGF(WEFT_LOG_WARN, shard, "raft port %s: closing incoming connection: %s",
                  l->address, why);
        conn_fail(c);
        return;
    }
    /* The stream now belongs to raft_uv, which closes and raft_frees it. */
    uv_tcp_t *tcp = c->tcp;
    c->tcp = NULL;
    c->handles_open--;
    conn_unlink(c);
    uv_timer_stop(&c->timer);
    uv_close((uv_handle_t *)&c->timer, conn_timer_close_cb);
    WEFT_LOGF(WEFT_LOG_DEBUG, impl->group_id, "raft port: accepted peer %llu (%s)",
              (unsigned long long)pre.from_id, pre.from_address);
    impl->accept_cb(impl->t, pre.from_id, pre.from_address, (uv_stream_t *)tcp);
}

/* Offers only what remains of the preamble, so no byte of raft's stream is read here. */
static void conn_alloc_cb(uv_handle_t *h, size_t suggested, uv_buf_t *buf) {
    (void)suggested;
    accept_conn *c = h->data;
    WEFT_ASSERT(c->got_bytes < WEFT_RAFT_PREAMBLE_BYTES);
    buf->base = (char *)c->preamble + c->got_bytes;
    buf->len = WEFT_RAFT_PREAMBLE_BYTES - c->got_bytes;
}

static void conn_read_cb(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf) {
    (void)buf;
    accept_conn *c = s->data;
    if (nread == 0) return;
    if (nread < 0) {
        WEFT_LOGF(WEFT_LOG_INFO, WEFT_LOG_NO_SHARD,
                  "raft port %s: peer closed before its preamble (%zu of %u bytes): %s",
                  c->l->address, c->got_bytes, WEFT_RAFT_PREAMBLE_BYTES, uv_strerror((int)nread));
        conn_fail(c);
        return;
    }
    WEFT_ASSERT((size_t)nread <= WEFT_RAFT_PREAMBLE_BYTES - c->got_bytes);
    c->got_bytes += (size_t)nread;
    if (c->got_bytes < WEFT_RAFT_PREAMBLE_BYTES) return;
    uv_read_stop(s);
    conn_complete(c);
}

static void conn_timeout_cb(uv_timer_t *t) {
    accept_conn *c = t->data;
    WEFT_LOGF(WEFT_LOG_WARN, WEFT_LOG_NO_SHARD,
              "raft port %s: no preamble within %u ms, closing the connection", c->l->address,
              WEFT_RAFT_PREAMBLE_TIMEOUT_MS);
    conn_fail(c);
}

static void tcp_free_close_cb(uv_handle_t *h) { raft_free(h); }

static void listener_refuse(uv_tcp_t *tcp, const char *why, weft_raft_listener *l) {
    WEFT_LOGF(WEFT_LOG_WARN, WEFT_LOG_NO_SHARD, "raft port %s: refusing a connection: %s",
              l->address, why);
    uv_close((uv_handle_t *)tcp, tcp_free_close_cb);
}

static void conn_start(weft_raft_listener *l, uv_tcp_t *tcp) {
    accept_conn *c = calloc(1, sizeof *c);
    if (c == NULL) {
        listener_refuse(tcp, "out of memory", l);
        return;
    }
    c->l = l;
    c->tcp = tcp;
    tcp->data = c;
    c->handles_open = 2;
    int rc = uv_timer_init(l->loop, &c->timer);
    WEFT_ASSERT(rc == 0);
    c->timer.data = c;
    uv_timer_start(&c->timer, conn_timeout_cb, WEFT_RAFT_PREAMBLE_TIMEOUT_MS, 0);
    c->next = l->accepts;
    if (l->accepts) l->accepts->prev = c;
    l->accepts = c;
    l->accepts_count++;
    l->open_count++;
    uv_tcp_nodelay(tcp, 1);
    rc = uv_read_start((uv_stream_t *)tcp, conn_alloc_cb, conn_read_cb);
    if (rc != 0) conn_fail(c);
}

static void listener_connection_cb(uv_stream_t *server, int status) {
    weft_raft_listener *l = server->data;
    WEFT_ASSERT(!l->closing);
    if (status < 0) {
        WEFT_LOGF(WEFT_LOG_WARN, WEFT_LOG_NO_SHARD, "raft port %s: accept failed: %s",
                  l->address, uv_strerror(status));
        return;
    }
    uv_tcp_t *tcp = raft_malloc(sizeof *tcp);
    if (tcp == NULL) return; /* the connection stays in the backlog; retried next event */
    int rc = uv_tcp_init(l->loop, tcp);
    WEFT_ASSERT(rc == 0);
    rc = uv_accept(server, (uv_stream_t *)tcp);
    if (rc != 0) {
        listener_refuse(tcp, uv_strerror(rc), l);
        return;
    }
    if (l->accepts_count >= WEFT_RAFT_ACCEPTS_PENDING_MAX) {
        listener_refuse(tcp, "WEFT_RAFT_ACCEPTS_PENDING_MAX connections await a preamble", l);
        return;
    }
    conn_start(l, tcp);
}

static void listener_server_close_cb(uv_handle_t *h) {
    weft_raft_listener *l = h->data;
    WEFT_ASSERT(l->open_count > 0);
    l->open_count--;
    listener_maybe_closed(l);
}

/* Frees a listener whose bind failed, once libuv released its handle. */
static void listener_failed_close_cb(uv_handle_t *h) { free(h->data); }

static int listener_bind(weft_raft_listener *l, const struct sockaddr_in *addr, weft_err *err) {
    int rc = uv_tcp_bind(&l->server, (const struct sockaddr *)addr, 0);
    if (rc == 0) rc = uv_listen((uv_stream_t *)&l->server, WEFT_RAFT_LISTEN_BACKLOG,
                                listener_connection_cb);
    if (rc != 0) {
        return weft_err_set(err, WEFT_E_UNAVAILABLE, "raft_address",
                            "cannot listen on raft address %s: %s; free the port or choose "
                            "another raft_address",
                            l->address, uv_strerror(rc));
    }
    struct sockaddr_in bound;
    int len = sizeof bound;
    rc = uv_tcp_getsockname(&l->server, (struct sockaddr *)&bound, &len);
    WEFT_ASSERT(rc == 0);
    char ip[INET_ADDRSTRLEN];
    uv_ip4_name(&bound, ip, sizeof ip);
    snprintf(l->address, sizeof l->address, "%s:%u", ip, (unsigned)ntohs(bound.sin_port));
    return 0;
}

int weft_raft_listener_init(weft_raft_listener **out, uv_loop_t *loop, const char *address,
                            const char *cluster_id, weft_err *err) {
    WEFT_ASSERT(out != NULL && loop != NULL && address != NULL && cluster_id != NULL);
    *out = NULL;
    struct sockaddr_in addr;
    int rc = weft_raft_address_parse(address, &addr, err);
    if (rc != 0) return rc;
    if (strlen(cluster_id) >= WEFT_RAFT_PREAMBLE_CLUSTER_BYTES || cluster_id[0] == '\0') {
        return weft_err_set(err, WEFT_E_INVALID_ARGUMENT, "cluster_id",
                            "cluster id must be 1 to %u bytes",
                            WEFT_RAFT_PREAMBLE_CLUSTER_BYTES - 1);
    }
    weft_raft_listener *l = calloc(1, sizeof *l);
    if (l == NULL) {
        return weft_err_set(err, WEFT_E_RESOURCE_EXHAUSTED, NULL, "out of memory for listener");
    }
    l->loop = loop;
    snprintf(l->address, sizeof l->address, "%s", address);
    snprintf(l->cluster_id, sizeof l->cluster_id, "%s", cluster_id);
    rc = uv_tcp_init(loop, &l->server);
    WEFT_ASSERT(rc == 0);
    l->server.data = l;
    rc = listener_bind(l, &addr, err);
    if (rc != 0) {
        /* The handle must close before its memory goes; the caller has nothing to undo. */
        uv_close((uv_handle_t *)&l->server, listener_failed_close_cb);
        return rc;
    }
    l->open_count = 1;
    WEFT_LOGF(WEFT_LOG_INFO, WEFT_LOG_NO_SHARD, "raft port listening on %s", l->address);
    *out = l;
    return 0;
}

const char *weft_raft_listener_address(const weft_raft_listener *l) { return l->address; }

void weft_raft_listener_close(weft_raft_listener *l, void (*cb)(void *data), void *data) {
    WEFT_ASSERT(!l->closing);
    /* Groups close their transports first (host close order), which unregisters them. */
    WEFT_ASSERT(l->groups == NULL);
    l->closing = true;
    l->close_cb = cb;
    l->close_data = data;
    uv_close((uv_handle_t *)&l->server, listener_server_close_cb);
    while (l->accepts != NULL) conn_fail(l->accepts);
}

void weft_raft_listener_free(weft_raft_listener *l) {
    if (l == NULL) return;
    WEFT_ASSERT(l->closing && l->open_count == 0);
    free(l);
}

/* ---- Listener registry ---- */

static void impl_register(transport_impl *impl) {
    weft_raft_listener *l = impl->l;
    WEFT_ASSERT(!l->closing);
    /* Two replicas of one group on one node would share a log directory's peers: a bug. */
    WEFT_ASSERT(listener_find(l, impl->group_id) == NULL);
    impl->prev = NULL;
    impl->next = l->groups;
    if (l->groups) l->groups->prev = impl;
    l->groups = impl;
}

static void impl_unregister(transport_impl *impl) {
    weft_raft_listener *l = impl->l;
    if (impl->prev) impl->prev->next = impl->next;
    else l->groups = impl->next;
    if (impl->next) impl->next->prev = impl->prev;
    impl->prev = impl->next = NULL;
}

/* ---- Per-group transport: the raft_uv_transport methods ---- */

static int impl_init(struct raft_uv_transport *t, raft_id id, const char *address) {
    transport_impl *impl = t->impl;
    WEFT_ASSERT(impl->state == IMPL_IDLE);
    WEFT_ASSERT(id > 0 && address != NULL);
    if (strlen(address) >= WEFT_RAFT_PREAMBLE_ADDRESS_BYTES) {
        snprintf(t->errmsg, sizeof t->errmsg, "raft address '%s' longer than %u bytes", address,
                 WEFT_RAFT_PREAMBLE_ADDRESS_BYTES - 1);
        return RAFT_INVALID;
    }
    impl->id = id;
    snprintf(impl->address, sizeof impl->address, "%s", address);
    return 0;
}

static int impl_listen(struct raft_uv_transport *t, raft_uv_accept_cb cb) {
    transport_impl *impl = t->impl;
    WEFT_ASSERT(cb != NULL);
    if (impl->l->closing) {
        snprintf(t->errmsg, sizeof t->errmsg, "the node's raft port is closing");
        return RAFT_CANCELED;
    }
    impl->accept_cb = cb;
    impl_state_set(impl, IMPL_LISTENING);
    impl_register(impl);
    return 0;
}

static void dial_unlink(dial *d) {
    transport_impl *impl = d->impl;
    WEFT_ASSERT(impl->dials_count > 0);
    if (d->prev) d->prev->next = d->next;
    else impl->dials = d->next;
    if (d->next) d->next->prev = d->prev;
    impl->dials_count--;
}

static void impl_maybe_closed(transport_impl *impl) {
    if (impl->state != IMPL_CLOSING || impl->dials_count > 0 || !impl->defer_closed) return;
    impl_state_set(impl, IMPL_CLOSED);
    impl->close_cb(impl->t);
}

/* The dial's handle is closed: report the failure to raft, exactly once. */
static void dial_close_cb(uv_handle_t *h) {
    dial *d = h->data;
    transport_impl *impl = d->impl;
    WEFT_ASSERT(d->aborting && d->status != 0);
    raft_free(h);
    dial_unlink(d);
    struct raft_uv_connect *req = d->req;
    int status = d->status;
    free(d);
    req->cb(req, NULL, status);
    impl_maybe_closed(impl);
}

static void dial_abort(dial *d, int status) {
    WEFT_ASSERT(!d->aborting && status != 0);
    WEFT_LOGF(WEFT_LOG_DEBUG, d->impl->group_id, "dial %s: %s",
              status == RAFT_CANCELED ? "cancelled" : "failed", d->impl->t->errmsg);
    d->aborting = true;
    d->status = status;
    uv_close((uv_handle_t *)d->tcp, dial_close_cb);
}

static void dial_write_cb(uv_write_t *w, int status) {
    dial *d = w->data;
    if (d->aborting) return; /* cancelled by close; dial_close_cb reports it */
    if (status != 0) {
        snprintf(d->impl->t->errmsg, sizeof d->impl->t->errmsg, "preamble write: %s",
                 uv_strerror(status));
        dial_abort(d, RAFT_NOCONNECTION);
        return;
    }
    WEFT_LOGF(WEFT_LOG_DEBUG, d->impl->group_id, "dial connected, preamble sent");
    dial_unlink(d);
    struct raft_uv_connect *req = d->req;
    uv_stream_t *stream = (uv_stream_t *)d->tcp;
    stream->data = NULL;
    free(d);
    req->cb(req, stream, 0);
}

static void dial_connect_cb(uv_connect_t *creq, int status) {
    dial *d = creq->data;
    if (d->aborting) return;
    int rc = status;
    if (rc == 0) {
        uv_tcp_nodelay(d->tcp, 1);
        uv_buf_t buf = uv_buf_init((char *)d->preamble, WEFT_RAFT_PREAMBLE_BYTES);
        rc = uv_write(&d->write, (uv_stream_t *)d->tcp, &buf, 1, dial_write_cb);
    }
    if (rc != 0) {
        snprintf(d->impl->t->errmsg, sizeof d->impl->t->errmsg, "connect: %s", uv_strerror(rc));
        dial_abort(d, RAFT_NOCONNECTION);
    }
}

static int impl_connect(struct raft_uv_transport *t, struct raft_uv_connect *req, raft_id id,
                        const char *address, raft_uv_connect_cb cb) {
    transport_impl *impl = t->impl;
    WEFT_ASSERT(impl->state == IMPL_LISTENING);
    WEFT_ASSERT(req != NULL && cb != NULL && id > 0);
    struct sockaddr_in addr;
    weft_err err;
    if (weft_raft_address_parse(address, &addr, &err) != 0) {
        snprintf(t->errmsg, sizeof t->errmsg, "%.*s", (int)sizeof t->errmsg - 1, err.message);
        return RAFT_NOCONNECTION;
    }
    dial *d = calloc(1, sizeof *d);
    uv_tcp_t *tcp = raft_malloc(sizeof *tcp);
    if (d == NULL || tcp == NULL) {
        free(d);
        raft_free(tcp);
        return RAFT_NOMEM;
    }
    int rc = uv_tcp_init(impl->l->loop, tcp);
    WEFT_ASSERT(rc == 0);
    d->impl = impl;
    d->req = req;
    d->tcp = tcp;
    tcp->data = d;
    d->connect.data = d;
    d->write.data = d;
    preamble_encode(d->preamble, impl);
    rc = uv_tcp_connect(&d->connect, tcp, (const struct sockaddr *)&addr, dial_connect_cb);
    if (rc != 0) {
        snprintf(t->errmsg, sizeof t->errmsg, "connect to %s: %s", address, uv_strerror(rc));
        uv_close((uv_handle_t *)tcp, tcp_free_close_cb);
        free(d);
        return RAFT_NOCONNECTION;
    }
    WEFT_LOGF(WEFT_LOG_DEBUG, impl->group_id, "dialing peer %llu at %s",
              (unsigned long long)id, address);
    req->cb = cb;
    d->next = impl->dials;
    if (impl->dials) impl->dials->prev = d;
    impl->dials = d;
    impl->dials_count++;
    return 0;
}

static void impl_defer_close_cb(uv_handle_t *h) {
    transport_impl *impl = h->data;
    impl->defer_closed = true;
    impl_maybe_closed(impl);
}

/* raft_uv calls this from its own close and checks its state right after: the callback must
 * never run synchronously, so it waits for a handle close even when no dial is pending. */
static void impl_close(struct raft_uv_transport *t, raft_uv_transport_close_cb cb) {
    transport_impl *impl = t->impl;
    WEFT_ASSERT(cb != NULL);
    if (impl->state == IMPL_LISTENING) impl_unregister(impl);
    impl_state_set(impl, IMPL_CLOSING);
    impl->close_cb = cb;
    impl->accept_cb = NULL;
    for (dial *d = impl->dials; d != NULL; d = d->next) {
        if (!d->aborting) dial_abort(d, RAFT_CANCELED);
    }
    int rc = uv_timer_init(impl->l->loop, &impl->defer);
    WEFT_ASSERT(rc == 0);
    impl->defer.data = impl;
    uv_close((uv_handle_t *)&impl->defer, impl_defer_close_cb);
}

int weft_raft_transport_init(struct raft_uv_transport *t, weft_raft_listener *l,
                             uint32_t group_id, weft_err *err) {
    WEFT_ASSERT(t != NULL && l != NULL);
    transport_impl *impl = calloc(1, sizeof *impl);
    if (impl == NULL) {
        return weft_err_set(err, WEFT_E_RESOURCE_EXHAUSTED, NULL,
                            "out of memory for the transport of group %u", group_id);
    }
    impl->l = l;
    impl->t = t;
    impl->group_id = group_id;
    impl->state = IMPL_IDLE;
    memset(t, 0, sizeof *t);
    /* raft_uv owns t->data (it overwrites it); ours lives in t->impl (notes). */
    t->impl = impl;
    t->init = impl_init;
    t->listen = impl_listen;
    t->connect = impl_connect;
    t->close = impl_close;
    return 0;
}

void weft_raft_transport_free(struct raft_uv_transport *t) {
    transport_impl *impl = t->impl;
    if (impl == NULL) return;
    /* Either raft_uv closed us, or it never started listening. */
    WEFT_ASSERT(impl->state == IMPL_CLOSED || impl->state == IMPL_IDLE);
    WEFT_ASSERT(impl->dials == NULL && impl->dials_count == 0);
    free(impl);
    t->impl = NULL;
}
