/* test_namespaces.c: namespaces are registered (issue 10, item 4). Against a real weftd and the
 * `weft` CLI: a start in a namespace nobody registered is refused with the command that
 * registers it; after `weft namespace register` it succeeds; `namespace list` shows default
 * and the new one; describe shows what was registered. In a 3-node cluster, a namespace
 * registered through node 1 is accepted at once by node 3 (its cache missed, so it read the
 * registry before refusing). */
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

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_cli_register_then_start),
        cmocka_unit_test(test_cluster_registered_through_node1_accepted_by_node3),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
