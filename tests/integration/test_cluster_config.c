/* test_cluster_config.c: the first increment of the HA cluster (issue 4) end to end, on three
 * real weftd started with --peers on free loopback ports.
 *   - R = 3: every node lists three nodes up; every shard has exactly one ready leader, all
 *     nodes agree on it, and it moves to the shard's preferred node (shard i -> node i mod 3);
 *     a client with every address starts workflows on shards led by each node, and workers
 *     polling each node (a node dispatches only from shards it leads) complete them; a
 *     SIGTERM hands the stopping node's leaderships off before it closes; the node restarts
 *     and gets its preferred shards back.
 *   - R = 2: a node answers a request for a shard it does not hold with NOT_LEADER naming the
 *     shard's preferred node and its client address, a retrying client follows it, and list
 *     and count refuse (UNAVAILABLE) rather than answer for part of the shards. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "helper_weftd.h"
#include "helper_worker.h"
#include "proto/partition.h"

#define CC_NODES 3u
#define CC_SHARDS 6u
/* How long the cluster may take to agree on leaders (elections, then the preferred-leader
 * check every 5 s, WEFTD_REBALANCE_INTERVAL_MS_DEFAULT). */
#define CC_AGREE_TIMEOUT_MS 60000u
/* Workflows per leader node in the R = 3 test. */
#define CC_WORKFLOWS_PER_NODE 3u
#define CC_QUEUE "q-cluster-config"
/* Worker threads per node (even: workflow tasks, odd: activities). */
#define CC_THREADS_PER_NODE 2u
#define CC_PAUSE_MS 100u

typedef struct cc {
    weftd w[CC_NODES];   /* node id i is w[i - 1] */
    char peers[512];     /* the --peers value */
    char addresses[256]; /* every client address */
    bool passed;         /* teardown prints stderr otherwise */
} cc;

static cc fx;

/* ---- a cluster of three weftd ---- */

/* Temp dirs and ports for every node, then the shared --peers value. */
static void cc_prepare(cc *t) {
    memset(t, 0, sizeof *t);
    size_t pl = 0, al = 0;
    for (unsigned i = 0; i < CC_NODES; i++) {
        weftd *w = &t->w[i];
        assert_int_equal(weftd_prepare(w, NULL, NULL, NULL), 0);
        pl += (size_t)snprintf(t->peers + pl, sizeof t->peers - pl, "%s%u=%s/%s", i ? "," : "",
                               i + 1, w->listen, w->raft_listen);
        al += (size_t)snprintf(t->addresses + al, sizeof t->addresses - al, "%s%s", i ? "," : "",
                               w->listen);
        assert_true(pl < sizeof t->peers && al < sizeof t->addresses);
    }
}

/* Starts every node with --peers (and --replication-factor rf unless NULL). */
static void cc_start(cc *t, const char *rf) {
    cc_prepare(t);
    for (unsigned i = 0; i < CC_NODES; i++) {
        char id[16];
        snprintf(id, sizeof id, "%u", i + 1);
        const char *flags[] = {"--node-id",
                               id,
                               "--peers",
                               t->peers,
                               "--shards",
                               "6",
                               "--election-timeout-ms",
                               "1000",
                               "--heartbeat-timeout-ms",
                               "50",
                               rf != NULL ? "--replication-factor" : NULL,
                               rf,
                               NULL};
        weftd_set_extra(&t->w[i], flags);
        assert_int_equal(weftd_spawn(&t->w[i]), 0);
    }
}

static void cc_print_all(const cc *t) {
    for (unsigned i = 0; i < CC_NODES; i++) {
        fprintf(stderr, "---- node %u ----\n", i + 1);
        weftd_print_stderr(&t->w[i], WEFTD_STDERR_TAIL_LINES);
    }
}

static int cc_teardown(void **state) {
    (void)state;
    if (!fx.passed) cc_print_all(&fx);
    for (unsigned i = 0; i < CC_NODES; i++)
        weftd_destroy(&fx.w[i]);
    return 0;
}

/* A client of one node only, with no retries: what that node itself answers. */
static int cc_quick_client(const weftd *w, weft_client **out, weft_err *err) {
    weft_client_opts o = {.client_name = "cc-quick",
                          .connect_timeout_ms = 500,
                          .call_timeout_ms = 2000,
                          .no_retries = true};
    return weft_client_open(w->listen, &o, out, err);
}

/* A retrying client whose seeds are `addresses`. */
static weft_client *cc_client(const char *addresses, const char *name) {
    weft_client_opts o = {.client_name = name,
                          .connect_timeout_ms = 1000,
                          .call_timeout_ms = 10000,
                          .retries_max = 60,
                          .backoff_initial_ms = 20,
                          .backoff_max_ms = 400};
    weft_client *c = NULL;
    weft_err err;
    int rc = weft_client_open(addresses, &o, &c, &err);
    if (rc != 0) fail_msg("open %s: %s %s", addresses, weft_error_name(rc), err.message);
    return c;
}

/* ---- what the nodes report ---- */

/* Leaders as the running nodes report them. */
typedef struct cc_view {
    uint64_t leader[CC_SHARDS]; /* the node that reports itself the shard's ready leader */
    char why[1024];             /* the first reason the cluster does not agree, "" if it does */
} cc_view;

/* Whether shard row `si` lists the shard's rf replicas in placement order (node
 * (shard + j) mod 3 + 1), each with its lag as the shard's leader sees it. */
static bool cc_replicas_ok(const weft_shard_info *si, unsigned rf) {
    if (si->replicas_count != rf) return false;
    for (uint32_t j = 0; j < rf; j++) {
        const weft_replica_info *ri = &si->replicas[j];
        if (ri->node_id != (si->shard_id + j) % CC_NODES + 1) return false;
        if (si->leader_node != 0 && !ri->lag_known) return false;
    }
    return true;
}

/* Reads every running node's ClusterStatus; fills v->why unless: each lists every node with
 * its address, the running ones up (and the stopped one down once `down` is set); each shard
 * has exactly one self-reported ready leader, and every running node names it: ClusterStatus
 * merges each shard's row from its leader, so a node without a replica of a shard knows too,
 * and every replica's lag is known. */
static void cc_view_take(cc *t, unsigned rf, unsigned down, cc_view *v) {
    memset(v, 0, sizeof *v);
    uint64_t named[CC_NODES][CC_SHARDS] = {{0}};
    unsigned ready_count[CC_SHARDS] = {0};
    for (unsigned i = 0; i < CC_NODES && v->why[0] == '\0'; i++) {
        if (i + 1 == down) continue;
        weft_client *c = NULL;
        weft_err err;
        weft_cluster_status_resp s;
        weft_response h = {0};
        int rc = cc_quick_client(&t->w[i], &c, &err);
        if (rc == 0) rc = weft_client_cluster_status(c, &s, &h, &err);
        if (rc != 0) {
            snprintf(v->why, sizeof v->why, "node %u: %s %s", i + 1, weft_error_name(rc),
                     err.message);
        } else if (s.node_id != i + 1 || s.nodes_count != CC_NODES || s.shards_count != CC_SHARDS) {
            snprintf(v->why, sizeof v->why, "node %u answered as %llu with %u nodes, %u shards",
                     i + 1, (unsigned long long)s.node_id, s.nodes_count, s.shards_count);
        }
        for (uint32_t k = 0; rc == 0 && v->why[0] == '\0' && k < s.nodes_count; k++) {
            const weft_node_info *ni = &s.nodes[k];
            bool want_up = ni->node_id != down;
            if (ni->node_id < 1 || ni->node_id > CC_NODES ||
                !weft_str_eq_c(ni->address, t->w[ni->node_id - 1].listen) || ni->up != want_up) {
                snprintf(v->why, sizeof v->why, "node %u lists node %llu as %s", i + 1,
                         (unsigned long long)ni->node_id, ni->up ? "up" : "down");
            }
        }
        for (uint32_t k = 0; rc == 0 && k < s.shards_count; k++) {
            const weft_shard_info *si = &s.shards[k];
            named[i][si->shard_id] = si->leader_node;
            if (!cc_replicas_ok(si, rf) && v->why[0] == '\0') {
                snprintf(v->why, sizeof v->why, "node %u lists shard %u's replicas wrong", i + 1,
                         si->shard_id);
            }
            if (si->ready && si->leader_node == i + 1) {
                ready_count[si->shard_id]++;
                v->leader[si->shard_id] = i + 1;
            }
        }
        weft_response_free(&h);
        weft_client_close(c);
    }
    for (uint32_t k = 0; k < CC_SHARDS && v->why[0] == '\0'; k++) {
        if (ready_count[k] != 1) {
            snprintf(v->why, sizeof v->why, "shard %u has %u ready leaders", k, ready_count[k]);
            break;
        }
        for (unsigned i = 0; i < CC_NODES; i++) {
            if (i + 1 == down) continue;
            uint64_t want = v->leader[k];
            if (named[i][k] != want) {
                snprintf(v->why, sizeof v->why,
                         "node %u names node %llu as shard %u's leader, "
                         "not %llu",
                         i + 1, (unsigned long long)named[i][k], k, (unsigned long long)want);
            }
        }
    }
}

/* Waits until the nodes agree (and, with `preferred`, every shard i is led by node i mod 3). */
static void cc_wait_agree(cc *t, unsigned rf, unsigned down, bool preferred, cc_view *v) {
    uint64_t deadline = weft_mono_ms() + CC_AGREE_TIMEOUT_MS;
    for (;;) {
        cc_view_take(t, rf, down, v);
        for (uint32_t k = 0; preferred && v->why[0] == '\0' && k < CC_SHARDS; k++) {
            if (v->leader[k] != k % CC_NODES + 1) {
                snprintf(v->why, sizeof v->why, "shard %u is led by node %llu, not node %u", k,
                         (unsigned long long)v->leader[k], k % CC_NODES + 1);
            }
        }
        if (v->why[0] == '\0') return;
        if (weft_mono_ms() > deadline) fail_msg("the nodes do not agree: %s", v->why);
        weftd_sleep_ms(CC_PAUSE_MS);
    }
}

static uint32_t cc_shard_of(const char *workflow_id) {
    return weft_shard_for_hash(
        weft_partition_hash(WEFT_STR_LIT("default"), weft_str_c(workflow_id)), CC_SHARDS);
}

/* ---- R = 3 ---- */

/* Starts CC_WORKFLOWS_PER_NODE workflows on shards led by each node; returns how many. */
static unsigned cc_start_workflows(weft_client *c, const cc_view *v, char ids[][32]) {
    unsigned per_node[CC_NODES + 1] = {0}, count = 0;
    for (unsigned i = 0; count < CC_NODES * CC_WORKFLOWS_PER_NODE; i++) {
        assert_true(i < 10000);
        char id[32];
        snprintf(id, sizeof id, "cc-%u", i);
        uint64_t leader = v->leader[cc_shard_of(id)];
        if (per_node[leader] == CC_WORKFLOWS_PER_NODE) continue;
        per_node[leader]++;
        char input[64];
        wk_script_input(input, sizeof input, 100, 0);
        weft_start_req s = {.workflow_id = weft_str_c(id),
                            .workflow_type = WEFT_STR_LIT("script"),
                            .task_queue = WEFT_STR_LIT(CC_QUEUE),
                            .input = {(const uint8_t *)input, (uint32_t)strlen(input)}};
        weft_start_resp r;
        weft_response h = {0};
        weft_err err;
        int rc = weft_client_start(c, &s, &r, &h, &err);
        if (rc != 0) fail_msg("start %s: %s %s", id, weft_error_name(rc), err.message);
        weft_response_free(&h);
        snprintf(ids[count++], 32, "%s", id);
    }
    return count;
}

static void cc_wait_completed(weft_client *c, const char *id) {
    uint64_t deadline = weft_mono_ms() + CC_AGREE_TIMEOUT_MS;
    for (;;) {
        weft_result_req q = {.workflow_id = weft_str_c(id), .wait = true, .wait_timeout_ms = 2000};
        weft_result_resp r;
        weft_response h = {0};
        weft_err err;
        int rc = weft_client_result(c, &q, &r, &h, &err);
        uint32_t status = rc == 0 ? r.status : 0;
        bool ok = rc == 0 && status == WEFT_STATUS_COMPLETED && r.result.len == 2 &&
                  memcmp(r.result.ptr, "ok", 2) == 0;
        weft_response_free(&h);
        if (ok) return;
        if (rc == 0 && status != WEFT_STATUS_RUNNING)
            fail_msg("%s closed with status %u", id, status);
        if (weft_mono_ms() > deadline) {
            fail_msg("%s not completed: %s %s", id, weft_error_name(rc), rc ? err.message : "");
        }
    }
}

static void test_three_replicas(void **state) {
    (void)state;
    cc *t = &fx;
    cc_start(t, NULL);
    cc_view v;
    cc_wait_agree(t, CC_NODES, 0, true, &v);
    for (unsigned i = 0; i < CC_NODES; i++) {
        assert_true(weftd_stderr_contains(&t->w[i], "this node holds 6 of 6 shards"));
    }

    /* Workers poll every node; a client with every address starts the workflows. */
    weft_client *starter = cc_client(t->addresses, "cc-starter");
    weft_client *workers[CC_NODES];
    wk_pool pools[CC_NODES];
    for (unsigned i = 0; i < CC_NODES; i++) {
        workers[i] = cc_client(t->w[i].listen, "cc-worker");
        assert_int_equal(wk_pool_start(&pools[i], workers[i], CC_QUEUE, CC_THREADS_PER_NODE), 0);
    }
    static char ids[CC_NODES * CC_WORKFLOWS_PER_NODE][32];
    unsigned count = cc_start_workflows(starter, &v, ids);
    for (unsigned i = 0; i < count; i++)
        cc_wait_completed(starter, ids[i]);
    for (unsigned i = 0; i < CC_NODES; i++) {
        wk_pool_stop(&pools[i]);
        /* Every node led shards that had workflows, so every node's workers had work. */
        assert_true(atomic_load(&pools[i].wft_completed) > 0);
        weft_client_close(workers[i]);
    }

    /* A graceful stop of node 1 hands its shards (0 and 3) to the others first. */
    assert_int_equal(weftd_stop(&t->w[0]), 0);
    assert_true(weftd_stderr_contains(&t->w[0], "handing off the leadership of 2 shards"));
    assert_true(weftd_stderr_contains(&t->w[0], "leadership handed off in"));
    cc_wait_agree(t, CC_NODES, 1, false, &v);
    assert_true(v.leader[0] != 1 && v.leader[3] != 1);
    /* The shards it led serve at once on their new leaders. */
    weft_describe_req dq = {.workflow_id = weft_str_c(ids[0])};
    weft_describe_resp d;
    weft_response h = {0};
    weft_err err;
    assert_int_equal(weft_client_describe(starter, &dq, &d, &h, &err), 0);
    weft_response_free(&h);

    /* Back again, it gets its preferred shards back from the leaders. */
    assert_int_equal(weftd_spawn(&t->w[0]), 0);
    cc_wait_agree(t, CC_NODES, 0, true, &v);
    weft_client_close(starter);
    for (unsigned i = 0; i < CC_NODES; i++)
        assert_int_equal(weftd_stop(&t->w[i]), 0);
    t->passed = true;
}

/* ---- R = 2 ---- */

static void test_two_replicas_hints(void **state) {
    (void)state;
    cc *t = &fx;
    cc_start(t, "2");
    cc_view v;
    cc_wait_agree(t, 2, 0, true, &v);
    for (unsigned i = 0; i < CC_NODES; i++) {
        assert_true(weftd_stderr_contains(&t->w[i], "this node holds 4 of 6 shards"));
    }
    /* Node 3 (index 2) holds shards 1, 2, 4 and 5; shard 0 lives on nodes 1 and 2. */
    char id[32];
    for (unsigned i = 0;; i++) {
        assert_true(i < 10000);
        snprintf(id, sizeof id, "cc-hint-%u", i);
        if (cc_shard_of(id) == 0) break;
    }
    weft_client *quick = NULL;
    weft_err err;
    assert_int_equal(cc_quick_client(&t->w[2], &quick, &err), 0);
    /* Node 3 has no replica of shard 0, so it forwards: a describe of a run that does not
     * exist comes back NOT_FOUND from shard 0's leader, not NOT_LEADER from node 3. */
    weft_describe_req dq = {.workflow_id = weft_str_c(id)};
    weft_describe_resp d;
    weft_response h = {0};
    int rc = weft_client_describe(quick, &dq, &d, &h, &err);
    weft_response_free(&h);
    if (rc != -WEFT_E_NOT_FOUND)
        fail_msg("describe on node 3: %s %s", weft_error_name(rc), err.message);
    /* List and count need every shard: node 3 reads its own and asks the others. */
    weft_list_req lq = {0};
    uint64_t n = 0;
    rc = weft_client_count(quick, &lq, &n, &err);
    if (rc != 0) fail_msg("count on node 3: %s %s", weft_error_name(rc), err.message);
    assert_int_equal(n, 0);

    /* A client of node 3 alone starts a run on shard 0 and reads it back. */
    weft_client *c = cc_client(t->w[2].listen, "cc-follow");
    weft_start_req s = {.workflow_id = weft_str_c(id),
                        .workflow_type = WEFT_STR_LIT("t"),
                        .task_queue = WEFT_STR_LIT(CC_QUEUE)};
    weft_start_resp r;
    rc = weft_client_start(c, &s, &r, &h, &err);
    if (rc != 0) fail_msg("start through node 3: %s %s", weft_error_name(rc), err.message);
    weft_response_free(&h);
    assert_int_equal(weft_client_describe(c, &dq, &d, &h, &err), 0);
    assert_int_equal(d.info.status, WEFT_STATUS_RUNNING);
    weft_response_free(&h);
    weft_client_close(c);
    assert_int_equal(weft_client_count(quick, &lq, &n, &err), 0);
    assert_int_equal(n, 1);
    weft_client_close(quick);
    for (unsigned i = 0; i < CC_NODES; i++)
        assert_int_equal(weftd_stop(&t->w[i]), 0);
    t->passed = true;
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(test_three_replicas, cc_teardown),
        cmocka_unit_test_teardown(test_two_replicas_hints, cc_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
