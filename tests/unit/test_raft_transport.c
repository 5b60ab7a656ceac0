/* test_raft_transport.c: the single-port transport without raft: the acceptor reads exactly
 * the preamble (raft's first bytes reach raft), a dial names the right group and node, a peer
 * of another cluster (or for a group this node lacks) never reaches raft, and close cancels a
 * pending dial (RAFT_CANCELED) before its own callback. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include "proto/base.h"
#include "proto/log.h"
#include "raft/transport.h"

#define WAIT_MS 10000u

typedef struct side {
    struct raft_uv_transport t;   /* the transport under test */
    uv_stream_t *stream;          /* accepted or dialed stream */
    raft_id peer_id;              /* accept: who dialed */
    char peer_address[64];        /* accept: their address */
    int connect_status;           /* dial: status (1 = not called) */
    int events;                   /* order: connect cb = 1, close cb = 2 */
    int order[4];
    bool closed;                  /* transport close cb ran */
    char got[64];                 /* bytes raft would have read */
    size_t got_len;
    bool eof;                     /* the read side saw the peer close */
} side;

static side *side_of(struct raft_uv_transport *t) {
    return (side *)((char *)t - offsetof(side, t));
}

static void accept_cb(struct raft_uv_transport *t, raft_id id, const char *address,
                      uv_stream_t *stream) {
    side *s = side_of(t);
    s->peer_id = id;
    snprintf(s->peer_address, sizeof s->peer_address, "%s", address);
    s->stream = stream;
}

static void connect_cb(struct raft_uv_connect *req, uv_stream_t *stream, int status) {
    side *s = req->data;
    s->connect_status = status;
    s->stream = stream;
    s->order[s->events++] = 1;
}

static void close_cb(struct raft_uv_transport *t) {
    side *s = side_of(t);
    s->closed = true;
    s->order[s->events++] = 2;
}

static void read_alloc(uv_handle_t *h, size_t n, uv_buf_t *b) {
    (void)n;
    side *s = h->data;
    *b = uv_buf_init(s->got + s->got_len, (unsigned)(sizeof s->got - 1 - s->got_len));
}

static void read_cb(uv_stream_t *st, ssize_t nread, const uv_buf_t *b) {
    (void)b;
    side *s = st->data;
    if (nread > 0) s->got_len += (size_t)nread;
    if (nread < 0) s->eof = true;
}

static void free_close_cb(uv_handle_t *h) { raft_free(h); }

static bool listener_closed_flag;
static void listener_closed(void *data) {
    (void)data;
    listener_closed_flag = true;
}

typedef bool (*cond_fn)(void *arg);
static bool run_until(uv_loop_t *loop, cond_fn cond, void *arg) {
    uint64_t deadline = weft_mono_ms() + WAIT_MS;
    while (!cond(arg)) {
        if (weft_mono_ms() > deadline) return false;
        uv_run(loop, UV_RUN_ONCE);
    }
    return true;
}

static bool has_stream(void *arg) { return ((side *)arg)->stream != NULL; }
static bool connect_done(void *arg) { return ((side *)arg)->connect_status != 1; }
static bool got_ten(void *arg) { return ((side *)arg)->got_len >= 10; }
static bool is_closed(void *arg) { return ((side *)arg)->closed; }
static bool flag_set(void *arg) { return *(bool *)arg; }
static bool saw_eof(void *arg) { return ((side *)arg)->eof; }

static void write_done(uv_write_t *w, int status) {
    assert_int_equal(status, 0);
    free(w);
}

static void close_listener(uv_loop_t *loop, weft_raft_listener *l) {
    listener_closed_flag = false;
    weft_raft_listener_close(l, listener_closed, NULL);
    assert_true(run_until(loop, flag_set, &listener_closed_flag));
    weft_raft_listener_free(l);
}

/* Two listening transports on loopback: `a` (cluster "c1", group `group_a`, raft id 1) and
 * `b` (cluster `cluster_b`, group 5, raft id 2). */
static void open_pair(uv_loop_t *loop, const char *cluster_b, uint32_t group_a,
                      weft_raft_listener **la, weft_raft_listener **lb, side **a, side **b) {
    weft_err err;
    assert_int_equal(weft_raft_listener_init(la, loop, "127.0.0.1:0", "c1", &err), 0);
    assert_int_equal(weft_raft_listener_init(lb, loop, "127.0.0.1:0", cluster_b, &err), 0);
    *a = calloc(1, sizeof **a);
    *b = calloc(1, sizeof **b);
    assert_non_null(*a);
    assert_non_null(*b);
    (*a)->connect_status = (*b)->connect_status = 1;
    assert_int_equal(weft_raft_transport_init(&(*a)->t, *la, group_a, &err), 0);
    assert_int_equal(weft_raft_transport_init(&(*b)->t, *lb, 5, &err), 0);
    assert_int_equal((*a)->t.init(&(*a)->t, 1, weft_raft_listener_address(*la)), 0);
    assert_int_equal((*b)->t.init(&(*b)->t, 2, weft_raft_listener_address(*lb)), 0);
    assert_int_equal((*a)->t.listen(&(*a)->t, accept_cb), 0);
    assert_int_equal((*b)->t.listen(&(*b)->t, accept_cb), 0);
}

/* Closes two transports (their streams already closed) and their listeners, checks that
 * neither close reported itself synchronously (raft_uv checks its own state right after
 * calling close) and that nothing is left on the loop, then frees everything. */
static void close_pair(uv_loop_t *loop, side *a, side *b, weft_raft_listener *la,
                       weft_raft_listener *lb) {
    a->t.close(&a->t, close_cb);
    b->t.close(&b->t, close_cb);
    assert_false(a->closed);
    assert_false(b->closed);
    assert_true(run_until(loop, is_closed, a));
    assert_true(run_until(loop, is_closed, b));
    weft_raft_transport_free(&a->t);
    weft_raft_transport_free(&b->t);
    close_listener(loop, la);
    close_listener(loop, lb);
    assert_int_equal(uv_run(loop, UV_RUN_NOWAIT), 0);
    assert_int_equal(uv_loop_close(loop), 0);
    free(a);
    free(b);
}

/* Raft's first bytes may share a TCP segment with the preamble: none may be lost. */
static void test_preamble_exact(void **state) {
    (void)state;
    uv_loop_t loop;
    assert_int_equal(uv_loop_init(&loop), 0);
    weft_raft_listener *la = NULL, *lb = NULL;
    side *a = NULL, *b = NULL;
    open_pair(&loop, "c1", 5, &la, &lb, &a, &b);

    struct raft_uv_connect req = {.data = a};
    assert_int_equal(a->t.connect(&a->t, &req, 2, weft_raft_listener_address(lb), connect_cb), 0);
    assert_true(run_until(&loop, connect_done, a));
    assert_int_equal(a->connect_status, 0);
    /* Write raft's bytes at once: they may travel with the preamble. */
    uv_write_t *w = malloc(sizeof *w);
    uv_buf_t buf = uv_buf_init("HELLO-RAFT", 10);
    assert_int_equal(uv_write(w, a->stream, &buf, 1, write_done), 0);
    assert_true(run_until(&loop, has_stream, b));
    assert_int_equal(b->peer_id, 1);
    assert_string_equal(b->peer_address, weft_raft_listener_address(la));
    b->stream->data = b;
    assert_int_equal(uv_read_start(b->stream, read_alloc, read_cb), 0);
    assert_true(run_until(&loop, got_ten, b));
    assert_int_equal(b->got_len, 10);
    assert_memory_equal(b->got, "HELLO-RAFT", 10);

    uv_close((uv_handle_t *)a->stream, free_close_cb);
    uv_close((uv_handle_t *)b->stream, free_close_cb);
    close_pair(&loop, a, b, la, lb);
}

/* Dials listener `lb` (cluster `cluster_b`) from a transport of cluster "c1" for group
 * `group_a` while `lb` has group 5: the acceptor must close the stream without handing it to
 * raft, so the dialer reads EOF and the listening transport never sees a peer. */
static void check_refused(const char *cluster_b, uint32_t group_a) {
    uv_loop_t loop;
    assert_int_equal(uv_loop_init(&loop), 0);
    weft_raft_listener *la = NULL, *lb = NULL;
    side *a = NULL, *b = NULL;
    open_pair(&loop, cluster_b, group_a, &la, &lb, &a, &b);

    struct raft_uv_connect req = {.data = a};
    assert_int_equal(a->t.connect(&a->t, &req, 2, weft_raft_listener_address(lb), connect_cb), 0);
    assert_true(run_until(&loop, connect_done, a));
    assert_int_equal(a->connect_status, 0); /* the preamble went out... */
    a->stream->data = a;
    assert_int_equal(uv_read_start(a->stream, read_alloc, read_cb), 0);
    assert_true(run_until(&loop, saw_eof, a)); /* ...and the acceptor hung up */
    assert_null(b->stream);                     /* raft never saw the peer */
    assert_int_equal(a->got_len, 0);

    uv_close((uv_handle_t *)a->stream, free_close_cb);
    close_pair(&loop, a, b, la, lb);
}

/* A node of another cluster (the preamble's cluster id differs) is refused: two clusters on
 * one network never mix their raft groups (DESIGN section 5, "Cluster identity"). */
static void test_other_cluster_refused(void **state) {
    (void)state;
    check_refused("c2", 5);
}

/* A peer naming a group this node does not run (placement puts it elsewhere) is refused. */
static void test_unknown_group_refused(void **state) {
    (void)state;
    check_refused("c1", 6);
}

/* A TCP listener whose accept queue is full: connects to it stay pending. */
static int full_listener(uint16_t *port, int fillers[4]) {
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(fd >= 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof a), 0);
    assert_int_equal(listen(fd, 0), 0);
    socklen_t len = sizeof a;
    assert_int_equal(getsockname(fd, (struct sockaddr *)&a, &len), 0);
    *port = ntohs(a.sin_port);
    for (int i = 0; i < 4; i++) {
        fillers[i] = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
        (void)connect(fillers[i], (struct sockaddr *)&a, sizeof a);
    }
    return fd;
}

static void test_close_cancels_pending_dial(void **state) {
    (void)state;
    uv_loop_t loop;
    assert_int_equal(uv_loop_init(&loop), 0);
    weft_err err;
    weft_raft_listener *la = NULL;
    assert_int_equal(weft_raft_listener_init(&la, &loop, "127.0.0.1:0", "c1", &err), 0);
    side *a = calloc(1, sizeof *a);
    a->connect_status = 1;
    assert_int_equal(weft_raft_transport_init(&a->t, la, 9, &err), 0);
    assert_int_equal(a->t.init(&a->t, 1, weft_raft_listener_address(la)), 0);
    assert_int_equal(a->t.listen(&a->t, accept_cb), 0);
    uint16_t port = 0;
    int fillers[4];
    int fd = full_listener(&port, fillers);
    char addr[64];
    snprintf(addr, sizeof addr, "127.0.0.1:%u", port);
    struct raft_uv_connect req = {.data = a};
    assert_int_equal(a->t.connect(&a->t, &req, 2, addr, connect_cb), 0);
    for (int i = 0; i < 20; i++) uv_run(&loop, UV_RUN_NOWAIT);
    /* Still dialing (the peer's queue is full)... */
    assert_int_equal(a->connect_status, 1);
    a->t.close(&a->t, close_cb);
    assert_true(run_until(&loop, is_closed, a));
    /* ...so close cancelled it first, then reported itself. */
    assert_int_equal(a->events, 2);
    assert_int_equal(a->order[0], 1);
    assert_int_equal(a->order[1], 2);
    assert_int_equal(a->connect_status, RAFT_CANCELED);
    assert_null(a->stream);
    weft_raft_transport_free(&a->t);
    close_listener(&loop, la);
    assert_int_equal(uv_run(&loop, UV_RUN_NOWAIT), 0);
    assert_int_equal(uv_loop_close(&loop), 0);
    for (int i = 0; i < 4; i++) close(fillers[i]);
    close(fd);
    free(a);
}

static void test_addresses(void **state) {
    (void)state;
    struct sockaddr_in sa;
    assert_int_equal(weft_raft_address_parse("127.0.0.1:7400", &sa, NULL), 0);
    assert_int_equal(ntohs(sa.sin_port), 7400);
    const char *bad[] = {"127.0.0.1", "localhost:80", ":80", "1.2.3.4:", "1.2.3.4:70000",
                         "1.2.3.4:8x", "[::1]:80"};
    for (size_t i = 0; i < WEFT_ARRAY_LEN(bad); i++) {
        weft_err err;
        assert_int_equal(weft_raft_address_parse(bad[i], &sa, &err), -WEFT_E_INVALID_ARGUMENT);
        assert_non_null(strstr(err.message, bad[i]));
    }
    /* A taken port is refused with a message naming it. */
    uv_loop_t loop;
    assert_int_equal(uv_loop_init(&loop), 0);
    weft_raft_listener *l1 = NULL, *l2 = NULL;
    weft_err err;
    assert_int_equal(weft_raft_listener_init(&l1, &loop, "127.0.0.1:0", "c", &err), 0);
    assert_int_equal(weft_raft_listener_init(&l2, &loop, weft_raft_listener_address(l1), "c", &err),
                     -WEFT_E_UNAVAILABLE);
    assert_null(l2);
    assert_non_null(strstr(err.message, weft_raft_listener_address(l1)));
    close_listener(&loop, l1);
    assert_int_equal(uv_run(&loop, UV_RUN_NOWAIT), 0);
    assert_int_equal(uv_loop_close(&loop), 0);
}

int main(void) {
    weft_log_set_level(WEFT_LOG_WARN);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_preamble_exact),
        cmocka_unit_test(test_other_cluster_refused),
        cmocka_unit_test(test_unknown_group_refused),
        cmocka_unit_test(test_close_cancels_pending_dial),
        cmocka_unit_test(test_addresses),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
