/* test_cluster_two_down.c: "A 5-node cluster with R = 5 keeps serving with 2 nodes down."
 * Five nodes, eight shards, replication factor 5: every shard has a replica on every node and
 * a quorum of three. Then:
 *   - 40 workflows (activity, timer of 300 ms, activity) start and complete with worker pools
 *     polling every node (a node hands out only the tasks of the shards it leads);
 *   - two nodes that lead shards are killed with SIGKILL; every shard gets a ready leader among
 *     the three survivors within TD_REELECT_TIMEOUT_MS (the test prints how long it took);
 *   - the first 40 runs read the same through the survivors as before the kill;
 *   - 40 more workflows start through a client that knows only the survivors, with workers
 *     polling only the survivors, and every acknowledged run completes with a sound history;
 *   - the two nodes restart and catch up, and every run's describe and history, read through
 *     the shard leaders, are byte for byte what the survivors served. */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "helper_cluster.h"
#include "helper_worker.h"
#include "proto/partition.h"

#define TD_NODES 5u
#define TD_SHARDS 8u
#define TD_RF 5u
#define TD_DOWN 2u
#define TD_SURVIVORS (TD_NODES - TD_DOWN)
/* Workflows started before the kill, and as many after it. */
#define TD_PHASE 40u
#define TD_WORKFLOWS (2u * TD_PHASE)
#define TD_QUEUE "q-two-down"
#define TD_TIMER_MS 300u
/* Worker threads per node client: half take workflow tasks, half activity tasks. */
#define TD_THREADS_PER_NODE 4u
/* Workflow task timeout of every run: a task lost with a killed node is re-dispatched. */
#define TD_WFT_TIMEOUT_MS 2000u
/* Bound on re-electing a leader for every shard among the survivors after the kill. */
#define TD_REELECT_TIMEOUT_MS 20000u
/* Bound on each phase's runs completing; normally they need a second or two. */
#define TD_COMPLETE_TIMEOUT_MS 30000u
/* How long a restarted node may take to catch up with every shard's leader. */
#define TD_CATCH_UP_TIMEOUT_MS 30000u

static const char *const td_flags[] = {"--election-timeout-ms", "2000", "--heartbeat-timeout-ms",
                                       "100", NULL};

typedef struct td {
    hc_cluster c;                       /* the five nodes */
    bool passed;                        /* teardown prints the nodes' stderr otherwise */
    weft_client *all;                   /* every address */
    weft_client *survivors;             /* the survivors' addresses only (after the kill) */
    weft_client *workers[TD_NODES];     /* one per node, so that polls reach each node */
    wk_pool pools[TD_NODES];            /* worker threads, one pool per node client */
    atomic_uint start_resends;          /* starts the client gave up on (then re-sent) */
    char run_ids[TD_WORKFLOWS][128];    /* acknowledged run id per workflow */
    uint32_t shard_of[TD_WORKFLOWS];    /* shard of each workflow */
    uint64_t leader_at_kill[TD_SHARDS]; /* leader of each shard just before the kill */
    unsigned down[TD_DOWN];             /* node ids killed */
    wk_capture before[TD_WORKFLOWS];    /* runs as read before the restart */
} td;

static void td_id(unsigned i, char *wf, size_t cap) {
    snprintf(wf, cap, "two-down-%u", i);
}

static bool td_is_down(const td *t, uint64_t id) {
    for (unsigned k = 0; k < TD_DOWN; k++)
        if (t->down[k] == id) return true;
    return false;
}

static int td_setup(void **state) {
    static td t;
    memset(&t, 0, sizeof t);
    *state = &t;
    uint64_t t0 = weft_mono_ms();
    if (hc_start(&t.c, TD_NODES, TD_SHARDS, TD_RF, td_flags) != 0) return -1;
    fprintf(stderr, "cluster of %u nodes, %u shards, R = %u ready in %llu ms\n", TD_NODES,
            TD_SHARDS, TD_RF, (unsigned long long)(weft_mono_ms() - t0));
    if (hc_client(&t.c, "two-down-all", &t.all) != 0) return -1;
    for (unsigned id = 1; id <= TD_NODES; id++) {
        if (hc_node_client(&t.c, id, "two-down-worker", &t.workers[id - 1]) != 0) return -1;
    }
    return 0;
}

static int td_teardown(void **state) {
    td *t = *state;
    for (unsigned k = 0; k < TD_NODES; k++)
        if (t->pools[k].threads_count > 0) wk_pool_stop(&t->pools[k]);
    if (!t->passed) hc_print_stderr(&t->c, WEFTD_STDERR_TAIL_LINES);
    weft_client_close(t->all);
    weft_client_close(t->survivors);
    for (unsigned k = 0; k < TD_NODES; k++)
        weft_client_close(t->workers[k]);
    for (unsigned i = 0; i < TD_WORKFLOWS; i++)
        wk_capture_free(&t->before[i]);
    hc_destroy(&t->c);
    return 0;
}

/* Starts workflow i through c, re-sending the same request id until it is acknowledged (G4). */
static void td_start_one(td *t, weft_client *c, unsigned i) {
    char wf[64], rid[96], input[64];
    td_id(i, wf, sizeof wf);
    snprintf(rid, sizeof rid, "start-%s", wf);
    wk_script_input(input, sizeof input, TD_TIMER_MS, 0);
    weft_start_req s = {
        .workflow_id = weft_str_c(wf),
        .workflow_type = WEFT_STR_LIT("two-down"),
        .task_queue = WEFT_STR_LIT(TD_QUEUE),
        .input = {.ptr = (const uint8_t *)input, .len = (uint32_t)strlen(input)},
        .request_id = weft_str_c(rid),
        .workflow_task_timeout_ms = TD_WFT_TIMEOUT_MS,
    };
    wk_start_acked(c, &s, t->run_ids[i], sizeof t->run_ids[i], &t->start_resends);
    assert_true(t->run_ids[i][0] != '\0');
}

/* Starts workflows [from, to) through c, waits until each completes (read through c) and
 * checks each history keeps the standard script's invariants. Returns the elapsed ms. */
static uint64_t td_run_phase(td *t, weft_client *c, unsigned from, unsigned to) {
    uint64_t t0 = weft_mono_ms();
    for (unsigned i = from; i < to; i++)
        td_start_one(t, c, i);
    uint64_t deadline = weft_mono_ms() + TD_COMPLETE_TIMEOUT_MS;
    for (unsigned i = from; i < to; i++) {
        char wf[64];
        td_id(i, wf, sizeof wf);
        assert_int_equal(wk_await_completed(c, wf, t->run_ids[i], deadline), 0);
    }
    uint64_t elapsed = weft_mono_ms() - t0;
    for (unsigned i = from; i < to; i++) {
        char wf[64];
        td_id(i, wf, sizeof wf);
        wk_history h;
        weft_err err;
        int rc = wk_history_get(c, wf, t->run_ids[i], &h, &err);
        if (rc != 0) {
            wk_history_free(&h);
            fail_msg("history of %s: %s %s", wf, weft_error_name(rc), err.message);
        }
        bool ok = wk_script_history_ok(&h, NULL, NULL);
        if (!ok) {
            fprintf(stderr, "history of %s (shard %u) breaks an invariant:\n", wf, t->shard_of[i]);
            wk_history_print(h.events, h.count);
        }
        wk_history_free(&h);
        assert_true(ok);
    }
    return elapsed;
}

static void td_capture(td *t, weft_client *c, unsigned from, unsigned to, wk_capture *caps) {
    for (unsigned i = from; i < to; i++) {
        char wf[64];
        td_id(i, wf, sizeof wf);
        weft_err err;
        assert_int_equal(wk_capture_run(c, wf, t->run_ids[i], &caps[i], &err), 0);
    }
}

/* Captures runs [from, to) through c and compares them with t->before. */
static void td_compare(td *t, weft_client *c, unsigned from, unsigned to, const char *when) {
    static wk_capture now[TD_WORKFLOWS];
    td_capture(t, c, from, to, now);
    for (unsigned i = from; i < to; i++) {
        bool same = wk_capture_equal(&now[i], &t->before[i]);
        wk_capture_free(&now[i]);
        if (!same) fail_msg("two-down-%u (shard %u) reads differently %s", i, t->shard_of[i], when);
    }
    fprintf(stderr, "runs %u..%u read byte-identical %s\n", from, to - 1, when);
}

/* Picks the nodes to kill: those leading the most shards (so at least one shard loses its
 * leader), ties to the lower id; when fewer than TD_DOWN nodes lead, the lowest other ids. */
static void td_pick_down(td *t) {
    unsigned led[TD_NODES + 1] = {0};
    for (uint32_t s = 0; s < TD_SHARDS; s++) {
        t->leader_at_kill[s] = hc_wait_leader(&t->c, s, HC_READY_TIMEOUT_MS);
        assert_int_not_equal(t->leader_at_kill[s], 0);
        led[t->leader_at_kill[s]]++;
    }
    for (unsigned k = 0; k < TD_DOWN; k++) {
        unsigned best = 0;
        for (unsigned id = 1; id <= TD_NODES; id++) {
            if (td_is_down(t, id)) continue;
            if (best == 0 || led[id] > led[best]) best = id;
        }
        t->down[k] = best;
    }
    fprintf(stderr, "shard leaders before the kill:");
    for (uint32_t s = 0; s < TD_SHARDS; s++)
        fprintf(stderr, " %u:%llu", s, (unsigned long long)t->leader_at_kill[s]);
    fprintf(stderr, "\nkilling nodes %u (leads %u shards) and %u (leads %u shards)\n", t->down[0],
            led[t->down[0]], t->down[1], led[t->down[1]]);
}

static void test_cluster_two_down(void **state) {
    td *t = *state;
    uint64_t test_t0 = weft_mono_ms();
    for (unsigned i = 0; i < TD_WORKFLOWS; i++) {
        char wf[64];
        td_id(i, wf, sizeof wf);
        t->shard_of[i] = weft_shard_for_hash(
            weft_partition_hash(weft_str_c(WEFT_DEFAULT_NAMESPACE), weft_str_c(wf)), TD_SHARDS);
    }

    /* Phase 1: all five nodes up. */
    for (unsigned k = 0; k < TD_NODES; k++) {
        assert_int_equal(
            wk_pool_start_on(&t->pools[k], t->workers[k], TD_QUEUE, TD_THREADS_PER_NODE, k + 1), 0);
    }
    uint64_t ms1 = td_run_phase(t, t->all, 0, TD_PHASE);
    fprintf(stderr, "phase 1: %u workflows started and completed on 5 nodes in %llu ms\n", TD_PHASE,
            (unsigned long long)ms1);
    td_capture(t, t->all, 0, TD_PHASE, t->before);

    /* Kill two shard leaders. Their worker pools stop first: they poll only their own node. */
    td_pick_down(t);
    for (unsigned k = 0; k < TD_DOWN; k++)
        wk_pool_stop(&t->pools[t->down[k] - 1]);
    uint64_t kill_ms = weft_mono_ms();
    for (unsigned k = 0; k < TD_DOWN; k++)
        hc_kill9(&t->c, t->down[k]);
    for (unsigned k = 0; k < TD_DOWN; k++)
        assert_false(hc_alive(&t->c, t->down[k]));

    /* Every shard gets a ready leader among the survivors. */
    assert_int_equal(hc_wait_ready(&t->c, TD_REELECT_TIMEOUT_MS), 0);
    uint64_t reelect_ms = weft_mono_ms() - kill_ms;
    unsigned moved = 0;
    fprintf(stderr, "shard leaders after the kill:");
    for (uint32_t s = 0; s < TD_SHARDS; s++) {
        uint64_t l = hc_leader(&t->c, s);
        assert_int_not_equal(l, 0);
        assert_false(td_is_down(t, l));
        moved += td_is_down(t, t->leader_at_kill[s]);
        fprintf(stderr, " %u:%llu", s, (unsigned long long)l);
    }
    fprintf(stderr,
            "\nre-election: every shard has a ready leader among the %u survivors %llu ms "
            "after the kill (%u shards changed leader)\n",
            TD_SURVIVORS, (unsigned long long)reelect_ms, moved);
    assert_true(moved > 0);

    /* A client that knows only the survivors. */
    char addrs[HC_ADDRESSES_BYTES];
    size_t al = 0;
    for (unsigned id = 1; id <= TD_NODES; id++) {
        if (td_is_down(t, id)) continue;
        al += (size_t)snprintf(addrs + al, sizeof addrs - al, "%s%s", al ? "," : "",
                               hc_address(&t->c, id));
    }
    assert_int_equal(weftd_client_at(addrs, "two-down-survivors", &t->survivors), 0);
    fprintf(stderr, "survivors: %s\n", addrs);

    /* The runs of phase 1 read the same through the survivors. */
    td_compare(t, t->survivors, 0, TD_PHASE, "through the survivors after the kill");

    /* Phase 2: three nodes up; the survivors' pools still run. */
    unsigned on_moved = 0;
    for (unsigned i = TD_PHASE; i < TD_WORKFLOWS; i++)
        on_moved += td_is_down(t, t->leader_at_kill[t->shard_of[i]]);
    uint64_t ms2 = td_run_phase(t, t->survivors, TD_PHASE, TD_WORKFLOWS);
    fprintf(stderr,
            "phase 2: %u workflows (%u on shards whose leader was killed) started and completed "
            "on %u nodes in %llu ms; start re-sends %u\n",
            TD_PHASE, on_moved, TD_SURVIVORS, (unsigned long long)ms2,
            atomic_load(&t->start_resends));
    assert_true(on_moved > 0);
    for (unsigned k = 0; k < TD_NODES; k++)
        if (t->pools[k].threads_count > 0) wk_pool_stop(&t->pools[k]);
    wk_pools_print(t->pools, TD_NODES);
    td_capture(t, t->survivors, TD_PHASE, TD_WORKFLOWS, t->before);

    /* Restart the two nodes; they catch up; every run reads the same through the leaders. */
    for (unsigned k = 0; k < TD_DOWN; k++) {
        uint64_t t0 = weft_mono_ms();
        assert_int_equal(hc_restart(&t->c, t->down[k]), 0);
        fprintf(stderr, "node %u restarted, cluster ready in %llu ms\n", t->down[k],
                (unsigned long long)(weft_mono_ms() - t0));
    }
    for (unsigned k = 0; k < TD_DOWN; k++) {
        uint64_t t0 = weft_mono_ms();
        assert_int_equal(hc_wait_caught_up(&t->c, t->down[k], TD_CATCH_UP_TIMEOUT_MS), 0);
        fprintf(stderr, "node %u caught up in %llu ms\n", t->down[k],
                (unsigned long long)(weft_mono_ms() - t0));
    }
    fprintf(stderr, "shard leaders after the restarts:");
    for (uint32_t s = 0; s < TD_SHARDS; s++)
        fprintf(stderr, " %u:%llu", s, (unsigned long long)hc_leader(&t->c, s));
    fprintf(stderr, "\n");
    td_compare(t, t->all, 0, TD_WORKFLOWS, "through the leaders after the restarts");

    assert_int_equal(hc_stop_all(&t->c), 0);
    fprintf(stderr, "test body took %llu ms\n", (unsigned long long)(weft_mono_ms() - test_t0));
    t->passed = true;
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_cluster_two_down, td_setup, td_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
