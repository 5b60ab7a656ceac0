/* test_shard_namespaces.c: task queues belong to a namespace (as in Temporal). Two workflows
 * with the same id and the same task queue in two namespaces are separate executions (G3 is per
 * namespace), and a worker polling a queue in one namespace never receives the other's tasks. */
#include "test_shard_harness.h"

static void start_in(th *h, const char *ns, const char *wfid) {
    weft_start_req req = th_start_req(wfid);
    req.namespace_ = weft_str_c(ns);
    assert_int_equal(th_request(h, WEFT_MSG_START_WORKFLOW, &req), 0);
    weft_start_resp resp;
    th_decode(h, &weft_start_resp_schema, h->reply.body, h->reply.body_len, &resp);
    assert_true(resp.started);
}

/* Pops the next workflow task of (ns, queue) and returns its workflow id's run key, or 0. */
static uint64_t pop_run(th *h, const char *ns, const char *queue) {
    char name[WEFT_DISPATCH_QUEUE_BYTES_MAX];
    weft_str dq = weft_dispatch_queue_name(weft_str_c(ns), weft_str_c(queue), name, sizeof name);
    weft_ready_task t;
    if (!weft_shard_dispatch_pop(h->s, dq, WEFT_TASK_KIND_WORKFLOW, &t)) return 0;
    assert_string_equal(t.task_queue, name);
    return t.run_key;
}

static void test_same_queue_two_namespaces(void **state) {
    (void)state;
    th *h = th_up();
    start_in(h, "alpha", "order-1");
    start_in(h, "beta", "order-1"); /* same id, other namespace: a separate execution */
    uint64_t alpha = pop_run(h, "alpha", "q");
    uint64_t beta = pop_run(h, "beta", "q");
    assert_true(alpha != 0 && beta != 0 && alpha != beta);
    /* Each namespace's queue held exactly its own task; the default namespace holds none. */
    assert_int_equal(pop_run(h, "alpha", "q"), 0);
    assert_int_equal(pop_run(h, "beta", "q"), 0);
    assert_int_equal(pop_run(h, "", "q"), 0);
    th_free(h);
}

static void test_default_namespace_name(void **state) {
    (void)state;
    th *h = th_up();
    start_in(h, "", "order-2"); /* an empty namespace is WEFT_DEFAULT_NAMESPACE */
    assert_int_equal(pop_run(h, "alpha", "q"), 0);
    assert_true(pop_run(h, WEFT_DEFAULT_NAMESPACE, "q") != 0);
    th_free(h);
}

/* After a leadership change the FIFOs refill from the ready table, still per namespace. */
static void test_rebuild_keeps_namespaces(void **state) {
    (void)state;
    th *h = th_up();
    start_in(h, "alpha", "w1");
    start_in(h, "beta", "w1");
    weft_shard_leader_stop(h->s);
    weft_err err;
    weft_err_clear(&err);
    assert_int_equal(weft_shard_leader_start(h->s, &err), 0);
    assert_true(pop_run(h, "beta", "q") != 0);
    assert_int_equal(pop_run(h, "beta", "q"), 0);
    assert_true(pop_run(h, "alpha", "q") != 0);
    assert_int_equal(pop_run(h, "alpha", "q"), 0);
    th_free(h);
}

static void test_dispatch_name_is_unambiguous(void **state) {
    (void)state;
    char a[WEFT_DISPATCH_QUEUE_BYTES_MAX], b[WEFT_DISPATCH_QUEUE_BYTES_MAX];
    /* ("ab", "c") and ("a", "bc") must not collide. */
    weft_str x = weft_dispatch_queue_name(WEFT_STR_LIT("ab"), WEFT_STR_LIT("c"), a, sizeof a);
    weft_str y = weft_dispatch_queue_name(WEFT_STR_LIT("a"), WEFT_STR_LIT("bc"), b, sizeof b);
    assert_false(weft_str_eq(x, y));
    assert_int_equal(x.len, strlen(a));
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_same_queue_two_namespaces),
        cmocka_unit_test(test_default_namespace_name),
        cmocka_unit_test(test_rebuild_keeps_namespaces),
        cmocka_unit_test(test_dispatch_name_is_unambiguous),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
