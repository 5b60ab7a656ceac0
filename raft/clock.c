/* clock.c: probes of the peers' wall clocks over the raft port, and the verdict on our own
 * (clock.h). Two kinds of stream:
 *   - a link: ours, dialled to one peer's raft port; it writes the probe preamble, then a ping
 *     every interval, and reads the answers. At most one ping is outstanding per link.
 *   - an answerer: a peer's link, accepted by the raft listener after its preamble; it reads
 *     pings and writes answers with our wall clock.
 * Every stream is its own allocation, freed in its handle's close callback, so a peer can be
 * dialled again while its old link still closes. Bytes from a peer are hostile: fixed-size
 * frames read into fixed buffers, a bounded write queue, and an idle deadline. */
#include "clock.h"

#include <raft.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../proto/base.h"
#include "../proto/log.h"
#include "transport.h"

typedef struct clock_peer clock_peer;

/* Our probe stream to one peer. */
typedef struct clock_link {
    clock_peer *peer;         /* owner; peer->link == this while it is the current link */
    weft_clock *c;            /* the clock, for the handle count */
    uv_tcp_t tcp;             /* the stream */
    uv_connect_t connect;     /* TCP connect request */
    uv_write_t preamble_write; /* the preamble's write request */
    uv_write_t ping_write;    /* the current ping's write request */
    bool ping_writing;        /* ping_write is in flight */
    bool connected;           /* the preamble was written: pings may go */
    bool closing;             /* uv_close was called */
    uint8_t preamble[WEFT_RAFT_PREAMBLE_BYTES]; /* written first */
    uint8_t ping[WEFT_CLOCK_PING_BYTES];         /* the ping being written */
    uint8_t pong[WEFT_CLOCK_PONG_BYTES];         /* the answer being read */
    size_t pong_got_bytes;    /* bytes of `pong` read so far */
    bool outstanding;         /* a ping awaits its answer */
    uint64_t seq;             /* the outstanding ping's sequence number */
    uint64_t sent_wall_us;    /* our wall clock when it was sent (t1) */
    uint64_t sent_mono_us;    /* our monotonic clock when it was sent */
    uint64_t dial_mono_us;    /* our monotonic clock when the dial began */
} clock_link;

struct clock_peer {
    uint64_t id;                                /* node id */
    struct sockaddr_in addr;                    /* its raft port */
    char address[WEFT_RAFT_ADDRESS_BYTES_MAX];  /* the same, as text, for log lines */
    clock_link *link;                           /* current link; NULL: dial at the next tick */
    bool have_sample;                           /* sample holds a measurement */
    int64_t offset_us;                          /* latest: the peer's clock minus ours */
    uint64_t uncertainty_us;                    /* latest: half its round trip */
    uint64_t sample_mono_ms;                    /* when it was taken (monotonic) */
};

/* A peer's probe stream, accepted on our raft port. */
typedef struct clock_answerer {
    weft_clock *c;                    /* owner */
    uv_tcp_t *tcp;                    /* raft_malloc'd by the listener; raft_free'd at close */
    uint64_t from_id;                 /* the peer */
    uint8_t ping[WEFT_CLOCK_PING_BYTES]; /* the ping being read */
    size_t ping_got_bytes;            /* bytes of `ping` read so far */
    uint64_t last_ping_mono_ms;       /* when the last ping (or the stream) arrived */
    bool closing;                     /* uv_close was called */
    struct clock_answerer *prev;      /* the clock's list */
    struct clock_answerer *next;
} clock_answerer;

/* One answer on its way out; freed by its write callback. */
typedef struct clock_answer {
    uv_write_t req;                      /* the write */
    uint8_t bytes[WEFT_CLOCK_PONG_BYTES]; /* [seq, t2] */
} clock_answer;

struct weft_clock {
    uv_loop_t *loop;                              /* the node's loop */
    uint64_t self_id;                             /* our node id (preamble) */
    char self_address[WEFT_RAFT_ADDRESS_BYTES_MAX]; /* our raft address (preamble) */
    char cluster_id[WEFT_RAFT_PREAMBLE_CLUSTER_BYTES]; /* preamble */
    clock_peer peers[WEFT_CLOCK_PEERS_MAX];       /* probed peers */
    unsigned peers_count;                         /* entries used in peers */
    clock_answerer *answerers;                    /* accepted streams not yet closing */
    unsigned answerers_count;                     /* length of answerers */
    uv_timer_t timer;                             /* the probe tick */
    uint64_t next_seq;                            /* for pings */
    uint64_t forgot_mono_us;                      /* answers to pings sent before: ignored */
    unsigned handles_open;                        /* our handles whose close cb has not run */
    bool started;                                 /* the tick runs */
    bool closed;                                  /* weft_clock_close ran */
};

/* ---- time and bytes ---- */

static uint64_t clock_wall_us(void) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

static uint64_t clock_mono_us(void) { return uv_hrtime() / 1000u; }

static void clock_be_put(uint8_t *p, uint64_t v) {
    for (unsigned i = 0; i < 8; i++) p[i] = (uint8_t)(v >> (8 * (7 - i)));
}

static uint64_t clock_be_get(const uint8_t *p) {
    uint64_t v = 0;
    for (unsigned i = 0; i < 8; i++) v = (v << 8) | p[i];
    return v;
}

/* ---- the verdict ---- */

static uint64_t clock_abs_us(int64_t v) {
    return v < 0 ? (uint64_t)0 - (uint64_t)v : (uint64_t)v;
}

weft_clock_verdict weft_clock_judge(const weft_clock_sample *s, unsigned n, uint64_t max_offset_ms,
                                    bool was_off) {
    WEFT_ASSERT(s != NULL || n == 0);
    WEFT_ASSERT(max_offset_ms > 0 && max_offset_ms <= UINT64_MAX / 1000u);
    if (n == 0) return WEFT_CLOCK_UNKNOWN;
    uint64_t bound_us = max_offset_ms * 1000u;
    uint64_t resume_us = bound_us / 100u * WEFT_CLOCK_RESUME_PCT;
    unsigned surely_off = 0;     /* |offset| - uncertainty > bound */
    unsigned not_surely_near = 0; /* |offset| + uncertainty > resume bound */
    for (unsigned i = 0; i < n; i++) {
        uint64_t mag_us = clock_abs_us(s[i].offset_us);
        uint64_t unc_us = s[i].uncertainty_us;
        if (mag_us > unc_us && mag_us - unc_us > bound_us) surely_off++;
        if (mag_us > resume_us || unc_us > resume_us - mag_us) not_surely_near++;
    }
    WEFT_ASSERT(surely_off <= not_surely_near && not_surely_near <= n);
    unsigned against = was_off ? not_surely_near : surely_off;
    return 2u * against > n ? WEFT_CLOCK_OFF : WEFT_CLOCK_GOOD;
}

/* ---- links: our probes ---- */

static void link_close_cb(uv_handle_t *h) {
    clock_link *lk = h->data;
    weft_clock *c = lk->c;
    WEFT_ASSERT(c->handles_open > 0 && lk->closing);
    c->handles_open--;
    free(lk);
}

/* Closes the link; the peer is dialled again at the next tick. */
static void link_close(clock_link *lk, const char *why) {
    if (lk->closing) return;
    clock_peer *p = lk->peer;
    WEFT_LOGF(WEFT_LOG_DEBUG, WEFT_LOG_NO_SHARD, "clock probe of node %llu (%s) closed: %s",
              (unsigned long long)p->id, p->address, why);
    lk->closing = true;
    if (p->link == lk) {
        p->link = NULL;
        /* The peer may have restarted with another clock: its old sample says nothing now. */
        p->have_sample = false;
    }
    uv_close((uv_handle_t *)&lk->tcp, link_close_cb);
}

static void link_sample(clock_link *lk, uint64_t t2_wall_us) {
    clock_peer *p = lk->peer;
    lk->outstanding = false;
    if (lk->sent_mono_us < lk->c->forgot_mono_us) return; /* weft_clock_forget */
    uint64_t rtt_us = clock_mono_us() - lk->sent_mono_us;
    /* offset = t2 - (t1 + rtt / 2), in signed arithmetic that cannot overflow for any clock
     * within ~292,000 years of the other. */
    int64_t mid_us = (int64_t)(lk->sent_wall_us + rtt_us / 2u);
    p->offset_us = (int64_t)t2_wall_us - mid_us;
    p->uncertainty_us = rtt_us / 2u + 1u; /* +1: a round trip under 2 us still is not exact */
    p->sample_mono_ms = uv_now(lk->c->loop);
    p->have_sample = true;
}

static void link_alloc_cb(uv_handle_t *h, size_t suggested, uv_buf_t *buf) {
    (void)suggested;
    clock_link *lk = h->data;
    WEFT_ASSERT(lk->pong_got_bytes < WEFT_CLOCK_PONG_BYTES);
    buf->base = (char *)lk->pong + lk->pong_got_bytes;
    buf->len = WEFT_CLOCK_PONG_BYTES - lk->pong_got_bytes;
}

static void link_read_cb(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf) {
    (void)buf;
    clock_link *lk = s->data;
    if (nread == 0 || lk->closing) return;
    if (nread < 0) {
        link_close(lk, uv_strerror((int)nread));
        return;
    }
    WEFT_ASSERT((size_t)nread <= WEFT_CLOCK_PONG_BYTES - lk->pong_got_bytes);
    lk->pong_got_bytes += (size_t)nread;
    if (lk->pong_got_bytes < WEFT_CLOCK_PONG_BYTES) return;
    lk->pong_got_bytes = 0;
    uint64_t seq = clock_be_get(lk->pong);
    if (!lk->outstanding || seq != lk->seq) {
        link_close(lk, "an answer to no ping we sent");
        return;
    }
    link_sample(lk, clock_be_get(lk->pong + 8));
}

static void link_ping_write_cb(uv_write_t *w, int status) {
    clock_link *lk = w->data;
    WEFT_ASSERT(lk->ping_writing);
    lk->ping_writing = false;
    if (status != 0) link_close(lk, uv_strerror(status));
}

static void link_ping(clock_link *lk) {
    WEFT_ASSERT(lk->connected && !lk->closing && !lk->ping_writing);
    weft_clock *c = lk->c;
    lk->seq = ++c->next_seq;
    clock_be_put(lk->ping, lk->seq);
    lk->sent_mono_us = clock_mono_us();
    lk->sent_wall_us = clock_wall_us();
    lk->outstanding = true;
    uv_buf_t b = uv_buf_init((char *)lk->ping, WEFT_CLOCK_PING_BYTES);
    int rc = uv_write(&lk->ping_write, (uv_stream_t *)&lk->tcp, &b, 1, link_ping_write_cb);
    if (rc != 0) {
        link_close(lk, uv_strerror(rc));
        return;
    }
    lk->ping_writing = true;
}

static void link_preamble_write_cb(uv_write_t *w, int status) {
    clock_link *lk = w->data;
    if (lk->closing) return;
    if (status != 0) {
        link_close(lk, uv_strerror(status));
        return;
    }
    int rc = uv_read_start((uv_stream_t *)&lk->tcp, link_alloc_cb, link_read_cb);
    if (rc != 0) {
        link_close(lk, uv_strerror(rc));
        return;
    }
    lk->connected = true;
    link_ping(lk);
}

static void link_connect_cb(uv_connect_t *req, int status) {
    clock_link *lk = req->data;
    if (lk->closing) return;
    if (status != 0) {
        link_close(lk, uv_strerror(status));
        return;
    }
    uv_tcp_nodelay(&lk->tcp, 1);
    uv_buf_t b = uv_buf_init((char *)lk->preamble, WEFT_RAFT_PREAMBLE_BYTES);
    int rc = uv_write(&lk->preamble_write, (uv_stream_t *)&lk->tcp, &b, 1, link_preamble_write_cb);
    if (rc != 0) link_close(lk, uv_strerror(rc));
}

static void link_dial(weft_clock *c, clock_peer *p) {
    WEFT_ASSERT(p->link == NULL && !c->closed);
    clock_link *lk = calloc(1, sizeof *lk);
    if (lk == NULL) return; /* tried again at the next tick */
    lk->peer = p;
    lk->c = c;
    bool ok = weft_raft_preamble_encode(lk->preamble, WEFT_CLOCK_PREAMBLE_MAGIC, 0, c->self_id,
                                        c->cluster_id, c->self_address);
    WEFT_ASSERT(ok); /* lengths checked by weft_clock_init */
    int rc = uv_tcp_init_ex(c->loop, &lk->tcp, AF_INET);
    WEFT_ASSERT(rc == 0);
    /* As raft's own dials (transport.h): no two-minute connect into a partition. */
    weft_tcp_set_peer_timeouts(&lk->tcp, WEFT_RAFT_TCP_USER_TIMEOUT_MS, WEFT_RAFT_DIAL_SYN_RETRIES);
    lk->tcp.data = lk;
    lk->connect.data = lk;
    lk->preamble_write.data = lk;
    lk->ping_write.data = lk;
    lk->dial_mono_us = clock_mono_us();
    c->handles_open++;
    p->link = lk;
    rc = uv_tcp_connect(&lk->connect, &lk->tcp, (const struct sockaddr *)&p->addr,
                        link_connect_cb);
    if (rc != 0) link_close(lk, uv_strerror(rc));
}

/* One tick for one peer: dial, give up on a silent stream, or ping. */
static void link_tick(weft_clock *c, clock_peer *p) {
    clock_link *lk = p->link;
    if (lk == NULL) {
        link_dial(c, p);
        return;
    }
    uint64_t timeout_us = (uint64_t)WEFT_CLOCK_PING_TIMEOUT_MS * 1000u;
    if (!lk->connected) {
        /* A dial into a black hole would wait for TCP's own timeout, minutes. */
        if (clock_mono_us() - lk->dial_mono_us >= timeout_us)
            link_close(lk, "not connected within WEFT_CLOCK_PING_TIMEOUT_MS");
        return;
    }
    if (lk->ping_writing) return;
    if (lk->outstanding) {
        if (clock_mono_us() - lk->sent_mono_us < timeout_us) return;
        link_close(lk, "no answer to a ping within WEFT_CLOCK_PING_TIMEOUT_MS");
        return;
    }
    link_ping(lk);
}

/* ---- answerers: the peers' probes ---- */

static void answerer_close_cb(uv_handle_t *h) {
    clock_answerer *a = h->data;
    weft_clock *c = a->c;
    WEFT_ASSERT(c->handles_open > 0 && a->closing);
    c->handles_open--;
    raft_free(h);
    free(a);
}

static void answerer_close(clock_answerer *a, const char *why) {
    if (a->closing) return;
    weft_clock *c = a->c;
    WEFT_LOGF(WEFT_LOG_DEBUG, WEFT_LOG_NO_SHARD, "clock probe stream from node %llu closed: %s",
              (unsigned long long)a->from_id, why);
    a->closing = true;
    WEFT_ASSERT(c->answerers_count > 0);
    if (a->prev != NULL) a->prev->next = a->next;
    else c->answerers = a->next;
    if (a->next != NULL) a->next->prev = a->prev;
    a->prev = a->next = NULL;
    c->answerers_count--;
    uv_close((uv_handle_t *)a->tcp, answerer_close_cb);
}

static void answer_write_cb(uv_write_t *w, int status) {
    clock_answer *ans = w->data;
    clock_answerer *a = w->handle->data;
    free(ans);
    if (status != 0) answerer_close(a, uv_strerror(status));
}

static void answerer_answer(clock_answerer *a) {
    if (uv_stream_get_write_queue_size((uv_stream_t *)a->tcp) > WEFT_CLOCK_WRITE_QUEUE_BYTES_MAX) {
        answerer_close(a, "it does not read its answers (WEFT_CLOCK_WRITE_QUEUE_BYTES_MAX)");
        return;
    }
    clock_answer *ans = malloc(sizeof *ans);
    if (ans == NULL) {
        answerer_close(a, "out of memory");
        return;
    }
    memcpy(ans->bytes, a->ping, WEFT_CLOCK_PING_BYTES); /* the seq, echoed */
    clock_be_put(ans->bytes + 8, clock_wall_us());
    ans->req.data = ans;
    uv_buf_t b = uv_buf_init((char *)ans->bytes, WEFT_CLOCK_PONG_BYTES);
    int rc = uv_write(&ans->req, (uv_stream_t *)a->tcp, &b, 1, answer_write_cb);
    if (rc != 0) {
        free(ans);
        answerer_close(a, uv_strerror(rc));
    }
}

static void answerer_alloc_cb(uv_handle_t *h, size_t suggested, uv_buf_t *buf) {
    (void)suggested;
    clock_answerer *a = h->data;
    WEFT_ASSERT(a->ping_got_bytes < WEFT_CLOCK_PING_BYTES);
    buf->base = (char *)a->ping + a->ping_got_bytes;
    buf->len = WEFT_CLOCK_PING_BYTES - a->ping_got_bytes;
}

static void answerer_read_cb(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf) {
    (void)buf;
    clock_answerer *a = s->data;
    if (nread == 0 || a->closing) return;
    if (nread < 0) {
        answerer_close(a, uv_strerror((int)nread));
        return;
    }
    WEFT_ASSERT((size_t)nread <= WEFT_CLOCK_PING_BYTES - a->ping_got_bytes);
    a->ping_got_bytes += (size_t)nread;
    if (a->ping_got_bytes < WEFT_CLOCK_PING_BYTES) return;
    a->ping_got_bytes = 0;
    a->last_ping_mono_ms = uv_now(a->c->loop);
    answerer_answer(a);
}

static clock_peer *clock_peer_find(weft_clock *c, uint64_t id) {
    for (unsigned i = 0; i < c->peers_count; i++) {
        if (c->peers[i].id == id) return &c->peers[i];
    }
    return NULL;
}

static void tcp_refuse_close_cb(uv_handle_t *h) { raft_free(h); }

void weft_clock_accept(weft_clock *c, uv_tcp_t *tcp, uint64_t from_id) {
    WEFT_ASSERT(c != NULL && tcp != NULL && !c->closed);
    if (clock_peer_find(c, from_id) == NULL) {
        WEFT_LOGF(WEFT_LOG_WARN, WEFT_LOG_NO_SHARD,
                  "closing a clock probe from node %llu: not a peer of this node",
                  (unsigned long long)from_id);
        uv_close((uv_handle_t *)tcp, tcp_refuse_close_cb);
        return;
    }
    /* A peer that dials again (it restarted, or gave up on a silent stream) replaces its old
     * stream, so there is at most one per peer. */
    for (clock_answerer *a = c->answerers; a != NULL; a = a->next) {
        if (a->from_id == from_id) {
            answerer_close(a, "the peer opened a new one");
            break;
        }
    }
    clock_answerer *a = calloc(1, sizeof *a);
    if (a == NULL) {
        uv_close((uv_handle_t *)tcp, tcp_refuse_close_cb);
        return;
    }
    WEFT_ASSERT(c->answerers_count < WEFT_CLOCK_PEERS_MAX);
    a->c = c;
    a->tcp = tcp;
    a->from_id = from_id;
    a->last_ping_mono_ms = uv_now(c->loop);
    tcp->data = a;
    a->next = c->answerers;
    if (c->answerers != NULL) c->answerers->prev = a;
    c->answerers = a;
    c->answerers_count++;
    c->handles_open++;
    int rc = uv_read_start((uv_stream_t *)tcp, answerer_alloc_cb, answerer_read_cb);
    if (rc != 0) answerer_close(a, uv_strerror(rc));
}

/* ---- the tick ---- */

static void clock_tick_cb(uv_timer_t *t) {
    weft_clock *c = t->data;
    WEFT_ASSERT(c->started && !c->closed);
    for (unsigned i = 0; i < c->peers_count; i++) link_tick(c, &c->peers[i]);
    uint64_t now_ms = uv_now(c->loop);
    clock_answerer *next = NULL;
    for (clock_answerer *a = c->answerers; a != NULL; a = next) {
        next = a->next;
        if (now_ms - a->last_ping_mono_ms > WEFT_CLOCK_IDLE_TIMEOUT_MS)
            answerer_close(a, "no ping within WEFT_CLOCK_IDLE_TIMEOUT_MS");
    }
}

/* ---- lifecycle and samples ---- */

int weft_clock_init(weft_clock **out, uv_loop_t *loop, uint64_t self_id, const char *self_address,
                    const char *cluster_id, weft_err *err) {
    WEFT_ASSERT(out != NULL && loop != NULL && self_address != NULL && cluster_id != NULL);
    *out = NULL;
    if (self_id == 0 || strlen(self_address) >= WEFT_RAFT_PREAMBLE_ADDRESS_BYTES ||
        strlen(cluster_id) >= WEFT_RAFT_PREAMBLE_CLUSTER_BYTES) {
        return weft_err_set(err, WEFT_E_INVALID_ARGUMENT, "raft_address",
                            "clock probes need a node id, a raft address under %u bytes and a "
                            "cluster id under %u bytes",
                            WEFT_RAFT_PREAMBLE_ADDRESS_BYTES, WEFT_RAFT_PREAMBLE_CLUSTER_BYTES);
    }
    weft_clock *c = calloc(1, sizeof *c);
    if (c == NULL)
        return weft_err_set(err, WEFT_E_RESOURCE_EXHAUSTED, NULL, "out of memory for clock probes");
    c->loop = loop;
    c->self_id = self_id;
    snprintf(c->self_address, sizeof c->self_address, "%s", self_address);
    snprintf(c->cluster_id, sizeof c->cluster_id, "%s", cluster_id);
    int rc = uv_timer_init(loop, &c->timer);
    WEFT_ASSERT(rc == 0);
    c->timer.data = c;
    c->handles_open = 1;
    *out = c;
    return 0;
}

int weft_clock_add_peer(weft_clock *c, uint64_t id, const char *raft_address, weft_err *err) {
    WEFT_ASSERT(c != NULL && raft_address != NULL && !c->started);
    if (id == 0 || id == c->self_id || clock_peer_find(c, id) != NULL) {
        return weft_err_set(err, WEFT_E_INVALID_ARGUMENT, "peers",
                            "clock probe peer %llu is 0, this node, or given twice",
                            (unsigned long long)id);
    }
    if (c->peers_count >= WEFT_CLOCK_PEERS_MAX) {
        return weft_err_set(err, WEFT_E_RESOURCE_EXHAUSTED, "peers",
                            "more than WEFT_CLOCK_PEERS_MAX (%u) clock probe peers",
                            WEFT_CLOCK_PEERS_MAX);
    }
    clock_peer *p = &c->peers[c->peers_count];
    memset(p, 0, sizeof *p);
    int rc = weft_raft_address_parse(raft_address, &p->addr, err);
    if (rc != 0) return rc;
    p->id = id;
    snprintf(p->address, sizeof p->address, "%s", raft_address);
    c->peers_count++;
    return 0;
}

void weft_clock_start(weft_clock *c) {
    WEFT_ASSERT(c != NULL && !c->started && !c->closed);
    c->started = true;
    uv_timer_start(&c->timer, clock_tick_cb, 0, WEFT_CLOCK_PROBE_INTERVAL_MS);
}

static bool clock_peer_fresh(const weft_clock *c, const clock_peer *p, weft_clock_sample *out) {
    uint64_t now_ms = uv_now(c->loop);
    if (!p->have_sample || now_ms - p->sample_mono_ms > WEFT_CLOCK_SAMPLE_FRESH_MS) return false;
    *out = (weft_clock_sample){.peer_id = p->id,
                               .offset_us = p->offset_us,
                               .uncertainty_us = p->uncertainty_us,
                               .age_ms = now_ms - p->sample_mono_ms};
    return true;
}

void weft_clock_forget(weft_clock *c) {
    WEFT_ASSERT(c != NULL);
    c->forgot_mono_us = clock_mono_us() + 1u;
    for (unsigned i = 0; i < c->peers_count; i++) c->peers[i].have_sample = false;
}

unsigned weft_clock_samples(const weft_clock *c, weft_clock_sample *out, unsigned cap) {
    WEFT_ASSERT(c != NULL && (out != NULL || cap == 0));
    unsigned n = 0;
    for (unsigned i = 0; i < c->peers_count && n < cap; i++) {
        if (clock_peer_fresh(c, &c->peers[i], &out[n])) n++;
    }
    WEFT_ASSERT(n <= c->peers_count);
    return n;
}

bool weft_clock_peer_sample(const weft_clock *c, uint64_t id, weft_clock_sample *out) {
    WEFT_ASSERT(c != NULL && out != NULL);
    for (unsigned i = 0; i < c->peers_count; i++) {
        if (c->peers[i].id == id) return clock_peer_fresh(c, &c->peers[i], out);
    }
    return false;
}

static void clock_timer_close_cb(uv_handle_t *h) {
    weft_clock *c = h->data;
    WEFT_ASSERT(c->handles_open > 0);
    c->handles_open--;
}

void weft_clock_close(weft_clock *c) {
    if (c == NULL || c->closed) return;
    c->closed = true;
    uv_timer_stop(&c->timer);
    uv_close((uv_handle_t *)&c->timer, clock_timer_close_cb);
    for (unsigned i = 0; i < c->peers_count; i++) {
        if (c->peers[i].link != NULL) link_close(c->peers[i].link, "the node is stopping");
    }
    while (c->answerers != NULL) answerer_close(c->answerers, "the node is stopping");
}

void weft_clock_free(weft_clock *c) {
    if (c == NULL) return;
    WEFT_ASSERT(c->closed && c->handles_open == 0 && c->answerers == NULL);
    free(c);
}
