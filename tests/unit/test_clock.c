/* test_clock.c: the clock check's parts without weftd (raft/clock.h):
 *   - the verdict (weft_clock_judge): off only from a strict majority of the peers measured,
 *     a peer counts as off only when it surely is (the uncertainty of a slow round trip never
 *     condemns a clock), and hysteresis: an off clock clears only well inside the bound;
 *   - two probers on loopback listeners measure each other (offsets near 0, small uncertainty),
 *     and measure afresh after weft_clock_forget (a step of our clock);
 *   - hostile probe streams on the raft port, one from a node that is no peer, one of another
 *     cluster, and one to a port that takes no probes, are closed unanswered. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "proto/base.h"
#include "raft/clock.h"
#include "raft/transport.h"

#define WAIT_MS 10000u
#define BOUND_MS 500u

static weft_clock_sample sample(uint64_t id, int64_t offset_ms, uint64_t uncertainty_ms) {
    return (weft_clock_sample){.peer_id = id,
                               .offset_us = offset_ms * 1000,
                               .uncertainty_us = uncertainty_ms * 1000u};
}

/* ---- the verdict ---- */

static void test_judge_nothing_measured(void **state) {
    (void)state;
    assert_int_equal(weft_clock_judge(NULL, 0, BOUND_MS, false), WEFT_CLOCK_UNKNOWN);
    assert_int_equal(weft_clock_judge(NULL, 0, BOUND_MS, true), WEFT_CLOCK_UNKNOWN);
}

static void test_judge_majority(void **state) {
    (void)state;
    /* Node 3 of three, 30 s fast: both peers are 30 s behind it. */
    weft_clock_sample fast[] = {sample(1, -30000, 1), sample(2, -29990, 2)};
    assert_int_equal(weft_clock_judge(fast, 2, BOUND_MS, false), WEFT_CLOCK_OFF);
    /* Node 1 of the same cluster: one peer of two is off, which is no majority. */
    weft_clock_sample honest[] = {sample(2, 3, 1), sample(3, 30000, 1)};
    assert_int_equal(weft_clock_judge(honest, 2, BOUND_MS, false), WEFT_CLOCK_GOOD);
    /* Five nodes: off from two of four is no strict majority; from three of four it is. */
    weft_clock_sample two[] = {sample(1, 900, 1), sample(2, -900, 1), sample(3, 0, 1),
                               sample(4, 10, 1)};
    assert_int_equal(weft_clock_judge(two, 4, BOUND_MS, false), WEFT_CLOCK_GOOD);
    two[2] = sample(3, 2000, 1);
    assert_int_equal(weft_clock_judge(two, 4, BOUND_MS, false), WEFT_CLOCK_OFF);
    /* One peer measured: off from it is off from all measured (both sides of a pair). */
    weft_clock_sample one[] = {sample(2, 1000, 1)};
    assert_int_equal(weft_clock_judge(one, 1, BOUND_MS, false), WEFT_CLOCK_OFF);
    /* Exactly at the bound is not past it. */
    weft_clock_sample at[] = {sample(2, 501, 1)};
    assert_int_equal(weft_clock_judge(at, 1, BOUND_MS, false), WEFT_CLOCK_GOOD);
}

static void test_judge_uncertainty(void **state) {
    (void)state;
    /* 700 ms measured over a 600 ms round trip: the true offset may be 400 ms. Not off. */
    weft_clock_sample slow[] = {sample(1, 700, 300), sample(2, -700, 300)};
    assert_int_equal(weft_clock_judge(slow, 2, BOUND_MS, false), WEFT_CLOCK_GOOD);
    /* The same offsets over a fast network are surely off. */
    weft_clock_sample fast[] = {sample(1, 700, 100), sample(2, -700, 100)};
    assert_int_equal(weft_clock_judge(fast, 2, BOUND_MS, false), WEFT_CLOCK_OFF);
    /* A huge uncertainty never condemns, whatever the offset. */
    weft_clock_sample vague[] = {sample(1, 60000, 70000)};
    assert_int_equal(weft_clock_judge(vague, 1, BOUND_MS, false), WEFT_CLOCK_GOOD);
    /* ... but neither does it clear an off clock: it is not surely near. */
    assert_int_equal(weft_clock_judge(vague, 1, BOUND_MS, true), WEFT_CLOCK_OFF);
}

static void test_judge_hysteresis(void **state) {
    (void)state;
    /* 450 ms: inside the bound, outside 80 % of it. A good clock stays good, an off one off. */
    weft_clock_sample near[] = {sample(1, 450, 1), sample(2, 450, 1)};
    assert_int_equal(weft_clock_judge(near, 2, BOUND_MS, false), WEFT_CLOCK_GOOD);
    assert_int_equal(weft_clock_judge(near, 2, BOUND_MS, true), WEFT_CLOCK_OFF);
    /* 350 ms +- 20: surely within 400 ms. It clears. */
    weft_clock_sample fixed[] = {sample(1, 350, 20), sample(2, -350, 20)};
    assert_int_equal(weft_clock_judge(fixed, 2, BOUND_MS, true), WEFT_CLOCK_GOOD);
    /* 390 ms +- 20 may be 410: not surely near, so an off clock stays off. */
    weft_clock_sample edge[] = {sample(1, 390, 20), sample(2, 390, 20)};
    assert_int_equal(weft_clock_judge(edge, 2, BOUND_MS, true), WEFT_CLOCK_OFF);
    /* An off clock clears once the peers still far are no majority. */
    weft_clock_sample half[] = {sample(1, 10, 1), sample(2, 450, 1)};
    assert_int_equal(weft_clock_judge(half, 2, BOUND_MS, true), WEFT_CLOCK_GOOD);
}

/* ---- probes on loopback ---- */

typedef bool (*cond_fn)(void *arg);
static bool run_until(uv_loop_t *loop, cond_fn cond, void *arg) {
    uint64_t deadline = weft_mono_ms() + WAIT_MS;
    while (!cond(arg)) {
        if (weft_mono_ms() > deadline) return false;
        uv_run(loop, UV_RUN_ONCE);
    }
    return true;
}

static bool listener_closed_flag;
static void listener_closed(void *data) {
    (void)data;
    listener_closed_flag = true;
}
static bool flag_set(void *arg) { return *(bool *)arg; }

typedef struct node {
    weft_raft_listener *l;
    weft_clock *c;
} node;

static void node_open(uv_loop_t *loop, node *n, uint64_t id, const char *cluster_id) {
    weft_err err;
    assert_int_equal(weft_raft_listener_init(&n->l, loop, "127.0.0.1:0", cluster_id, &err), 0);
    assert_int_equal(
        weft_clock_init(&n->c, loop, id, weft_raft_listener_address(n->l), cluster_id, &err), 0);
    weft_raft_listener_set_clock(n->l, n->c);
}

static void node_close(uv_loop_t *loop, node *n) {
    weft_raft_listener_set_clock(n->l, NULL);
    weft_clock_close(n->c);
    listener_closed_flag = false;
    weft_raft_listener_close(n->l, listener_closed, NULL);
    assert_true(run_until(loop, flag_set, &listener_closed_flag));
}

static void node_free(node *n) {
    weft_clock_free(n->c);
    weft_raft_listener_free(n->l);
}

typedef struct pair {
    node *a, *b;
} pair;

static bool both_sampled(void *arg) {
    pair *p = arg;
    weft_clock_sample s;
    return weft_clock_peer_sample(p->a->c, 2, &s) && weft_clock_peer_sample(p->b->c, 1, &s);
}

static void test_probe_loopback(void **state) {
    (void)state;
    uv_loop_t loop;
    uv_loop_init(&loop);
    node a, b;
    node_open(&loop, &a, 1, "c1");
    node_open(&loop, &b, 2, "c1");
    weft_err err;
    assert_int_equal(weft_clock_add_peer(a.c, 2, weft_raft_listener_address(b.l), &err), 0);
    assert_int_equal(weft_clock_add_peer(b.c, 1, weft_raft_listener_address(a.l), &err), 0);
    /* Refusals: ourselves, twice, id 0. */
    assert_int_equal(weft_clock_add_peer(a.c, 1, "127.0.0.1:1", &err), -WEFT_E_INVALID_ARGUMENT);
    assert_int_equal(weft_clock_add_peer(a.c, 2, "127.0.0.1:1", &err), -WEFT_E_INVALID_ARGUMENT);
    assert_int_equal(weft_clock_add_peer(a.c, 0, "127.0.0.1:1", &err), -WEFT_E_INVALID_ARGUMENT);
    weft_clock_start(a.c);
    weft_clock_start(b.c);
    pair p = {&a, &b};
    assert_true(run_until(&loop, both_sampled, &p));
    weft_clock_sample s[WEFT_CLOCK_PEERS_MAX];
    assert_int_equal(weft_clock_samples(a.c, s, WEFT_CLOCK_PEERS_MAX), 1);
    assert_int_equal(s[0].peer_id, 2);
    /* One machine, one clock: the offset is within the uncertainty plus a little scheduling. */
    uint64_t mag_us = (uint64_t)(s[0].offset_us < 0 ? -s[0].offset_us : s[0].offset_us);
    assert_true(mag_us <= s[0].uncertainty_us + 50000u);
    assert_true(s[0].uncertainty_us < 1000000u);
    assert_int_equal(weft_clock_judge(s, 1, BOUND_MS, false), WEFT_CLOCK_GOOD);
    /* After a step of our clock: no sample until fresh probes (once a second) measured again. */
    weft_clock_forget(a.c);
    assert_int_equal(weft_clock_samples(a.c, s, WEFT_CLOCK_PEERS_MAX), 0);
    assert_true(run_until(&loop, both_sampled, &p));
    node_close(&loop, &a);
    node_close(&loop, &b);
    assert_int_equal(uv_run(&loop, UV_RUN_DEFAULT), 0);
    node_free(&a);
    node_free(&b);
    assert_int_equal(uv_loop_close(&loop), 0);
}

/* ---- hostile probe streams ---- */

typedef struct raw {
    uv_tcp_t tcp;
    uv_connect_t connect;
    uv_write_t write;
    uint8_t out[WEFT_RAFT_PREAMBLE_BYTES + WEFT_CLOCK_PONG_BYTES]; /* what it sends */
    size_t out_bytes;
    char in[256]; /* what came back */
    size_t in_bytes;
    bool eof;
    bool closed;
} raw;

static void raw_alloc(uv_handle_t *h, size_t n, uv_buf_t *b) {
    (void)n;
    raw *r = h->data;
    *b = uv_buf_init(r->in + r->in_bytes, (unsigned)(sizeof r->in - r->in_bytes));
}

static void raw_read(uv_stream_t *st, ssize_t nread, const uv_buf_t *b) {
    (void)b;
    raw *r = st->data;
    if (nread > 0) r->in_bytes += (size_t)nread;
    if (nread < 0) r->eof = true;
}

static void raw_written(uv_write_t *w, int status) {
    (void)w;
    (void)status; /* the peer may close first */
}

static void raw_connected(uv_connect_t *req, int status) {
    raw *r = req->data;
    assert_int_equal(status, 0);
    uv_buf_t b = uv_buf_init((char *)r->out, (unsigned)r->out_bytes);
    assert_int_equal(uv_write(&r->write, (uv_stream_t *)&r->tcp, &b, 1, raw_written), 0);
    assert_int_equal(uv_read_start((uv_stream_t *)&r->tcp, raw_alloc, raw_read), 0);
}

static void raw_closed(uv_handle_t *h) { ((raw *)h->data)->closed = true; }
static bool raw_eof(void *arg) { return ((raw *)arg)->eof; }
static bool raw_is_closed(void *arg) { return ((raw *)arg)->closed; }

/* Sends `r->out` to the listener at `address` and waits until the other side closes. */
static void raw_expect_closed(uv_loop_t *loop, raw *r, const char *address) {
    struct sockaddr_in addr;
    weft_err err;
    assert_int_equal(weft_raft_address_parse(address, &addr, &err), 0);
    assert_int_equal(uv_tcp_init(loop, &r->tcp), 0);
    r->tcp.data = r;
    r->connect.data = r;
    assert_int_equal(
        uv_tcp_connect(&r->connect, &r->tcp, (const struct sockaddr *)&addr, raw_connected), 0);
    assert_true(run_until(loop, raw_eof, r));
    assert_int_equal(r->in_bytes, 0); /* never answered */
    uv_close((uv_handle_t *)&r->tcp, raw_closed);
    assert_true(run_until(loop, raw_is_closed, r));
}

static void test_hostile_probes_closed(void **state) {
    (void)state;
    uv_loop_t loop;
    uv_loop_init(&loop);
    node b;
    node_open(&loop, &b, 2, "c1");
    weft_err err;
    assert_int_equal(weft_clock_add_peer(b.c, 1, "127.0.0.1:9", &err), 0);
    const char *to = weft_raft_listener_address(b.l);
    static raw r;
    /* From node 9, which is no peer of node 2, with a ping. */
    memset(&r, 0, sizeof r);
    assert_true(weft_raft_preamble_encode(r.out, WEFT_CLOCK_PREAMBLE_MAGIC, 0, 9, "c1",
                                          "127.0.0.1:1"));
    r.out_bytes = WEFT_RAFT_PREAMBLE_BYTES + WEFT_CLOCK_PING_BYTES;
    raw_expect_closed(&loop, &r, to);
    /* From node 1 of another cluster. */
    memset(&r, 0, sizeof r);
    assert_true(weft_raft_preamble_encode(r.out, WEFT_CLOCK_PREAMBLE_MAGIC, 0, 1, "c2",
                                          "127.0.0.1:1"));
    r.out_bytes = WEFT_RAFT_PREAMBLE_BYTES + WEFT_CLOCK_PING_BYTES;
    raw_expect_closed(&loop, &r, to);
    /* A node whose raft port takes no probes (no clock registered) closes them too. */
    weft_raft_listener_set_clock(b.l, NULL);
    memset(&r, 0, sizeof r);
    assert_true(weft_raft_preamble_encode(r.out, WEFT_CLOCK_PREAMBLE_MAGIC, 0, 1, "c1",
                                          "127.0.0.1:1"));
    r.out_bytes = WEFT_RAFT_PREAMBLE_BYTES + WEFT_CLOCK_PING_BYTES;
    raw_expect_closed(&loop, &r, to);
    weft_raft_listener_set_clock(b.l, b.c);
    node_close(&loop, &b);
    assert_int_equal(uv_run(&loop, UV_RUN_DEFAULT), 0);
    node_free(&b);
    assert_int_equal(uv_loop_close(&loop), 0);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_judge_nothing_measured),
        cmocka_unit_test(test_judge_majority),
        cmocka_unit_test(test_judge_uncertainty),
        cmocka_unit_test(test_judge_hysteresis),
        cmocka_unit_test(test_probe_loopback),
        cmocka_unit_test(test_hostile_probes_closed),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
