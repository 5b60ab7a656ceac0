/* test_namespaces.c: namespaces are registered (issue 10, item 4). Against a real weftd and the
 * `weft` CLI: a start in a namespace nobody registered is refused with the command that
 * registers it; after `weft namespace register` it succeeds; `namespace list` shows default
 * and the new one; describe shows what was registered. In a 3-node cluster, a namespace
 * registered through node 1 is accepted at once by node 3 (its cache missed, so it read the
 * registry before refusing). In a 4-node cluster, a node with no replica of the registry finds
 * it after an election moved its leader, and while its preferred node is down; a run of that
 * shard started through it then reaches a live replica. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "helper_cli.h"
#include "helper_cluster.h"
#include "helper_weftd.h"
#include "proto/partition.h"

/* How long a shard may take to elect a leader, or a run's shard to serve a start, once a node
 * was killed (elections on a busy machine). */
#define NS_SHARD_SETTLE_TIMEOUT_MS 30000u
/* Pause between attempts while shards settle. */
#define NS_RETRY_PAUSE_MS 100u

static weftd ns_server;

/* Runs `weft --address <server> ARGS...`. */
static void ns_run(hcli_result *r, const char *const *args) {
    const char *argv[HCLI_ARGS_MAX];
    unsigned n = 0;
    argv[n++] = WEFT_CLI_PATH;
    argv[n++] = "--address";
    argv[n++] = ns_server.listen;
    for (unsigned i = 0; args[i] != NULL; i++) {
        assert_true(n + 1 < HCLI_ARGS_MAX);
        argv[n++] = args[i];
    }
    argv[n] = NULL;
    hcli_opts o = {.dir = ns_server.dir};
    hcli_run(argv, &o, r);
}
#define CLI(r, ...) ns_run((r), (const char *const[]){__VA_ARGS__, NULL})

static void test_cli_register_then_start(void **state) {
    (void)state;
    static const char *const flags[] = {"--shards", "2", NULL};
    assert_int_equal(weftd_start(&ns_server, flags), 0);
    hcli_result r;

    /* A mistyped (unregistered) namespace is refused, with the hint. */
    CLI(&r, "--namespace", "shop", "workflow", "start", "--type", "T", "--task-queue", "q",
        "--id", "n1");
    hcli_expect_code(&r, 1);
    hcli_expect_in(r.err, "NOT_FOUND");
    hcli_expect_in(r.err, "namespace 'shop' is not registered");
    hcli_expect_in(r.err, "register it with: weft namespace register --namespace shop");
    hcli_result_free(&r);

    /* default needs no registration. */
    CLI(&r, "workflow", "start", "--type", "T", "--task-queue", "q", "--id", "d1");
    hcli_expect_code(&r, 0);
    hcli_result_free(&r);

    CLI(&r, "--namespace", "shop", "namespace", "register", "--description", "the shop",
        "--retention", "7d");
    hcli_expect_code(&r, 0);
    hcli_expect_in(r.out, "registered namespace shop");
    hcli_result_free(&r);

    CLI(&r, "--namespace", "shop", "workflow", "start", "--type", "T", "--task-queue", "q",
        "--id", "n1");
    hcli_expect_code(&r, 0);
    hcli_result_free(&r);

    CLI(&r, "namespace", "list");
    hcli_expect_code(&r, 0);
    hcli_expect_in(r.out, "\ndefault ");
    hcli_expect_in(r.out, "\nshop ");
    hcli_expect_in(r.out, "the shop");
    hcli_result_free(&r);

    /* A typo of a namespace this node knows names it. */
    CLI(&r, "--namespace", "shpo", "workflow", "signal", "--id", "n1", "--name", "s");
    hcli_expect_code(&r, 1);
    hcli_expect_in(r.err, "namespace 'shpo' is not registered");
    hcli_expect_in(r.err, "did you mean: shop?");
    hcli_result_free(&r);

    /* A worker polling an unregistered namespace is told so instead of waiting forever. */
    weft_client *c = NULL;
    assert_int_equal(weftd_client(&ns_server, "test-namespaces", &c), 0);
    weft_poll_req poll = {.namespace_ = weft_str_c("ghost"),
                          .task_queue = weft_str_c("q"),
                          .poll_timeout_ms = 30000};
    weft_poll_wft_resp task;
    weft_response holder = {0};
    weft_err err;
    weft_err_clear(&err);
    assert_int_equal(weft_client_poll_workflow_task(c, &poll, &task, &holder, &err),
                     -WEFT_E_NOT_FOUND);
    assert_non_null(strstr(err.message, "register it with: weft namespace register --namespace "
                                        "ghost"));
    weft_response_free(&holder);
    /* ...and a registered one polls as before: it gets the task of n1. */
    poll.namespace_ = weft_str_c("shop");
    assert_int_equal(weft_client_poll_workflow_task(c, &poll, &task, &holder, &err), 0);
    assert_true(task.task_token.len > 0);
    weft_response_free(&holder);
    weft_client_close(c);

    CLI(&r, "--namespace", "shop", "namespace", "describe");
    hcli_expect_code(&r, 0);
    hcli_expect_in(r.out, "namespace: shop\n");
    hcli_expect_in(r.out, "description: the shop\n");
    hcli_expect_in(r.out, "retention_ms: 604800000\n");
    hcli_expect_not_in(r.out, "created: -");
    hcli_result_free(&r);

    /* A second registration is refused; a retry of the first (same request id) is not. */
    CLI(&r, "--namespace", "shop", "namespace", "register");
    hcli_expect_code(&r, 1);
    hcli_expect_in(r.err, "ALREADY_EXISTS");
    hcli_result_free(&r);
    for (int i = 0; i < 2; i++) {
        CLI(&r, "--namespace", "shop-2", "namespace", "register", "--request-id", "rid-shop-2");
        hcli_expect_code(&r, 0);
        hcli_result_free(&r);
    }

    /* A bad name names the field. */
    CLI(&r, "--namespace", "bad/name", "namespace", "register");
    hcli_expect_code(&r, 1);
    hcli_expect_in(r.err, "INVALID_ARGUMENT");
    hcli_expect_in(r.err, "namespace 'bad/name' has the character '/'");
    hcli_result_free(&r);

    CLI(&r, "--namespace", "nope", "namespace", "describe");
    hcli_expect_code(&r, 1);
    hcli_expect_in(r.err, "register it with: weft namespace register --namespace nope");
    hcli_result_free(&r);
    weftd_destroy(&ns_server);
}

static const char *const ns_cluster_flags[] = {"--election-timeout-ms", "2000",
                                               "--heartbeat-timeout-ms", "100", NULL};

static int ns_start_via(weft_client *seed, const char *ns, const char *id, weft_err *err) {
    weft_start_req s = {.namespace_ = weft_str_c(ns),
                        .workflow_id = weft_str_c(id),
                        .workflow_type = weft_str_c("T"),
                        .task_queue = weft_str_c("q"),
                        .request_id = weft_str_c(id)};
    weft_start_resp resp;
    weft_response h = {0};
    int rc = hc_call_seed(seed, WEFT_MSG_START_WORKFLOW, &s, &resp, &h, err);
    weft_response_free(&h);
    return rc;
}

static void test_cluster_registered_through_node1_accepted_by_node3(void **state) {
    (void)state;
    static hc_cluster c;
    memset(&c, 0, sizeof c);
    assert_int_equal(hc_start(&c, 3, 3, 0, ns_cluster_flags), 0);
    weft_client *seed[3] = {NULL, NULL, NULL};
    for (unsigned id = 1; id <= 3; id++)
        assert_int_equal(hc_node_client(&c, id, "ns-seed", &seed[id - 1]), 0);
    weft_err err;
    weft_err_clear(&err);

    /* Node 3 has never heard of "metrics": refused. */
    assert_int_equal(ns_start_via(seed[2], "metrics", "m-before", &err), -WEFT_E_NOT_FOUND);
    assert_string_equal(err.field, "namespace");
    assert_non_null(strstr(err.message, "register it with: weft namespace register --namespace "
                                        "metrics"));

    weft_register_ns_req reg = {.namespace_ = weft_str_c("metrics"),
                                .request_id = weft_str_c("rid-metrics")};
    weft_empty_resp empty;
    weft_response h = {0};
    int rc = hc_call_seed(seed[0], WEFT_MSG_REGISTER_NAMESPACE, &reg, &empty, &h, &err);
    weft_response_free(&h);
    if (rc != 0) fprintf(stderr, "register: %s\n", err.message);
    assert_int_equal(rc, 0);

    /* At once: no waiting, no retries (hc_call_seed sends one request to one node). */
    weft_err_clear(&err);
    rc = ns_start_via(seed[2], "metrics", "m-after-3", &err);
    if (rc != 0) fprintf(stderr, "start via node 3: %s\n", err.message);
    assert_int_equal(rc, 0);
    rc = ns_start_via(seed[1], "metrics", "m-after-2", &err);
    if (rc != 0) fprintf(stderr, "start via node 2: %s\n", err.message);
    assert_int_equal(rc, 0);
    /* Another unregistered name is still refused by a node whose cache now holds one. */
    assert_int_equal(ns_start_via(seed[2], "metricz", "z-1", &err), -WEFT_E_NOT_FOUND);

    for (unsigned k = 0; k < 3; k++)
        weft_client_close(seed[k]);
    hc_destroy(&c);
}

/* The namespace registry's replicas, in placement order (the preferred leader first), and the
 * one node of a 4-node R = 3 cluster that holds no replica of it. */
typedef struct ns_registry_view {
    unsigned replicas[3];
    unsigned outsider;
} ns_registry_view;

static void ns_registry_view_of(hc_cluster *c, ns_registry_view *v) {
    unsigned count = 0;
    assert_int_equal(hc_shard_replicas(c, 1, WEFT_NAMESPACE_REGISTRY_SHARD, v->replicas, 3, &count),
                     0);
    assert_int_equal(count, 3);
    bool holds[5] = {false};
    for (unsigned j = 0; j < 3; j++) {
        assert_true(v->replicas[j] >= 1 && v->replicas[j] <= 4);
        holds[v->replicas[j]] = true;
    }
    v->outsider = 0;
    for (unsigned id = 1; id <= 4; id++)
        if (!holds[id]) v->outsider = id;
    assert_true(v->outsider != 0);
}

/* A start in namespace `ns` sent to one node only. The namespace check's own failures carry
 * field "namespace" and fail the test at once. UNAVAILABLE and NOT_LEADER from the run's own
 * shard (it holds an election once a node was killed, and a node that knew the killed node as
 * its leader names it until then) are retried with the same request id until the deadline. */
static void ns_start_must_pass_check(weft_client *seed, const char *ns, const char *id) {
    uint64_t deadline = weft_mono_ms() + NS_SHARD_SETTLE_TIMEOUT_MS;
    for (;;) {
        weft_err err;
        weft_err_clear(&err);
        int rc = ns_start_via(seed, ns, id, &err);
        if (rc == 0) return;
        if (strcmp(err.field, "namespace") == 0 ||
            (rc != -WEFT_E_UNAVAILABLE && rc != -WEFT_E_NOT_LEADER) || weft_mono_ms() > deadline)
            fail_msg("start of %s in namespace %s: %s %s (field %s)", id, ns,
                     weft_error_name(rc), err.message, err.field);
        weftd_sleep_ms(NS_RETRY_PAUSE_MS);
    }
}

/* A node that holds no replica of shard 0 guesses its leader: the shard's preferred node.
 * Once an election has moved the shard, that guess answers NOT_LEADER naming the real leader,
 * and the check must follow it; while the preferred node is down, the check must ask the
 * registry's other replicas. Before 2026-12-07 it gave up with UNAVAILABLE in both cases (the
 * 5-node chaos run of docs/notes.md). Moves back to preferred nodes are off
 * (--rebalance-interval-ms 0), so the moved leadership stays where it is. */
static void test_check_follows_registry_leader(void **state) {
    (void)state;
    static const char *const flags[] = {"--election-timeout-ms", "2000", "--heartbeat-timeout-ms",
                                        "100", "--rebalance-interval-ms", "0", NULL};
    static hc_cluster c;
    memset(&c, 0, sizeof c);
    assert_int_equal(hc_start(&c, 4, 4, 3, flags), 0);
    ns_registry_view v;
    ns_registry_view_of(&c, &v);
    unsigned preferred = v.replicas[0];
    fprintf(stderr, "registry replicas %u %u %u; node %u holds none\n", v.replicas[0],
            v.replicas[1], v.replicas[2], v.outsider);

    weft_client *routed = NULL;
    assert_int_equal(hc_client(&c, "ns-routed", &routed), 0);
    static const char *const names[] = {"moved", "down"};
    for (unsigned k = 0; k < 2; k++) {
        weft_register_ns_req reg = {.namespace_ = weft_str_c(names[k]),
                                    .request_id = weft_str_c(names[k])};
        weft_empty_resp empty;
        weft_response h = {0};
        weft_err err;
        int rc = weft_client_call(routed, WEFT_MSG_REGISTER_NAMESPACE, &reg, &empty, &h, &err);
        weft_response_free(&h);
        if (rc != 0) fail_msg("register %s: %s", names[k], err.message);
    }
    weft_client_close(routed);

    /* Shard 0 led by another replica than its preferred one, which runs. */
    if (hc_leader(&c, 0) == preferred) {
        hc_kill9(&c, preferred);
        uint64_t deadline = weft_mono_ms() + NS_SHARD_SETTLE_TIMEOUT_MS;
        for (;;) {
            uint64_t leader = hc_leader(&c, 0);
            if (leader != 0 && leader != preferred) break;
            if (weft_mono_ms() > deadline) fail_msg("shard 0 elected no other leader");
            weftd_sleep_ms(NS_RETRY_PAUSE_MS);
        }
        assert_int_equal(hc_restart(&c, preferred), 0);
    }
    uint64_t leader = hc_leader(&c, 0);
    fprintf(stderr, "shard 0 is led by node %llu, its preferred node %u runs\n",
            (unsigned long long)leader, preferred);
    assert_true(leader != 0 && leader != preferred);

    weft_client *outsider = NULL;
    assert_int_equal(hc_node_client(&c, v.outsider, "ns-outsider", &outsider), 0);
    /* The outsider asks the preferred node, which names the leader. */
    ns_start_must_pass_check(outsider, "moved", "moved-1");

    /* The preferred node down for good: the outsider asks the registry's other replicas. */
    hc_kill9(&c, preferred);
    ns_start_must_pass_check(outsider, "down", "down-1");
    /* And a run of shard 0 itself, in the default namespace: the outsider forwards it to a
     * replica that is up, not to the dead preferred node, once it has noticed the death (two
     * election timeouts without a message from it). Before, it answered NOT_LEADER naming the
     * dead node for as long as that node stayed down, and a client that knows only this
     * node could never start it. */
    char id0[32];
    for (unsigned i = 0;; i++) {
        assert_true(i < 10000);
        snprintf(id0, sizeof id0, "shard0-%u", i);
        if (weft_shard_for_hash(weft_partition_hash(WEFT_STR_LIT("default"), weft_str_c(id0)),
                                c.shards) == 0)
            break;
    }
    ns_start_must_pass_check(outsider, "default", id0);

    weft_client_close(outsider);
    hc_destroy(&c);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_cli_register_then_start),
        cmocka_unit_test(test_cluster_registered_through_node1_accepted_by_node3),
        cmocka_unit_test(test_check_follows_registry_leader),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
