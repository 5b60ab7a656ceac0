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

/* ---- The namespace registry (shards/namespace.c): it lives in the registry shard ---- */

/* A harness whose shard is the registry shard (th_open_dir opens shard 7). */
static th *registry_up(void) {
    th *h = th_new();
    snprintf(h->dir, sizeof h->dir, "/tmp/weft-shard-test-XXXXXX");
    assert_non_null(mkdtemp(h->dir));
    weft_err err;
    weft_err_clear(&err);
    assert_int_equal(weft_shard_open(&h->s, WEFT_NAMESPACE_REGISTRY_SHARD, "test-cluster", h->dir,
                                     &h->limits, NULL, &err),
                     0);
    assert_int_equal(weft_shard_leader_start(h->s, &err), 0);
    return h;
}

static int ns_register(th *h, const char *ns, const char *desc, uint64_t retention_ms,
                       const char *request_id) {
    weft_register_ns_req req = {.namespace_ = weft_str_c(ns),
                                .description = weft_str_c(desc),
                                .retention_ms = retention_ms,
                                .request_id = weft_str_c(request_id)};
    return th_request(h, WEFT_MSG_REGISTER_NAMESPACE, &req);
}

static int ns_describe(th *h, const char *ns, weft_namespace_info *out) {
    weft_describe_ns_req req = {.namespace_ = weft_str_c(ns)};
    return th_read(h, WEFT_MSG_DESCRIBE_NAMESPACE, &weft_describe_ns_req_schema, &req,
                   &weft_namespace_info_schema, out, true, NULL);
}

static void test_register_and_describe(void **state) {
    (void)state;
    th *h = registry_up();
    weft_namespace_info info;
    assert_int_equal(ns_describe(h, "orders", &info), WEFT_E_NOT_FOUND);
    assert_string_equal(h->reply.err.field, "namespace");
    assert_non_null(strstr(h->reply.err.message,
                           "register it with: weft namespace register --namespace orders"));
    h->now_ms = TH_T0_MS + 5000;
    assert_int_equal(ns_register(h, "orders", "the shop's orders", 86400000u, "rid-1"), 0);
    assert_int_equal(ns_describe(h, "orders", &info), 0);
    assert_true(weft_str_eq_c(info.namespace_, "orders"));
    assert_true(weft_str_eq_c(info.description, "the shop's orders"));
    assert_int_equal(info.retention_ms, 86400000u);
    assert_int_equal(info.created_time_ms, TH_T0_MS + 5000);
    /* default exists without registration, and cannot be registered */
    assert_int_equal(ns_describe(h, "", &info), 0);
    assert_true(weft_str_eq_c(info.namespace_, WEFT_DEFAULT_NAMESPACE));
    assert_int_equal(ns_register(h, WEFT_DEFAULT_NAMESPACE, "", 0, "rid-2"),
                     WEFT_E_ALREADY_EXISTS);
    th_free(h);
}

static void test_register_idempotent_by_request_id(void **state) {
    (void)state;
    th *h = registry_up();
    assert_int_equal(ns_register(h, "billing", "first", 0, "rid-1"), 0);
    h->now_ms += 1000;
    /* the same request again (a retry after a lost answer): success, nothing changed (G4) */
    assert_int_equal(ns_register(h, "billing", "first", 0, "rid-1"), 0);
    weft_namespace_info info;
    assert_int_equal(ns_describe(h, "billing", &info), 0);
    assert_int_equal(info.created_time_ms, TH_T0_MS);
    /* another request for the same name is refused, and says how to see it */
    assert_int_equal(ns_register(h, "billing", "second", 0, "rid-2"), WEFT_E_ALREADY_EXISTS);
    assert_non_null(strstr(h->reply.err.message, "weft namespace describe --namespace billing"));
    assert_int_equal(ns_describe(h, "billing", &info), 0);
    assert_true(weft_str_eq_c(info.description, "first"));
    th_free(h);
}

static void test_register_validates(void **state) {
    (void)state;
    th *h = registry_up();
    assert_int_equal(ns_register(h, "bad name", "", 0, "r1"), WEFT_E_INVALID_ARGUMENT);
    assert_string_equal(h->reply.err.field, "namespace");
    assert_int_equal(ns_register(h, "", "", 0, "r2"), WEFT_E_INVALID_ARGUMENT);
    assert_int_equal(ns_register(h, "ok", "", UINT64_MAX, "r3"), WEFT_E_INVALID_ARGUMENT);
    assert_string_equal(h->reply.err.field, "retention_ms");
    th_free(h);
    /* only the registry shard holds namespaces */
    th *other = th_up();
    assert_int_equal(ns_register(other, "ok", "", 0, "r4"), WEFT_E_INVALID_ARGUMENT);
    th_free(other);
}

static void test_list_namespaces(void **state) {
    (void)state;
    th *h = registry_up();
    assert_int_equal(ns_register(h, "zeta", "", 0, "r1"), 0);
    assert_int_equal(ns_register(h, "alpha-long-name", "", 0, "r2"), 0);
    assert_int_equal(ns_register(h, "beta", "", 0, "r3"), 0);
    weft_list_ns_req req = {0};
    weft_list_ns_resp resp;
    assert_int_equal(th_read(h, WEFT_MSG_LIST_NAMESPACES, &weft_list_ns_req_schema, &req,
                             &weft_list_ns_resp_schema, &resp, true, NULL),
                     0);
    const char *want[] = {"alpha-long-name", "beta", WEFT_DEFAULT_NAMESPACE, "zeta"};
    assert_int_equal(resp.namespaces_count, 4);
    for (unsigned i = 0; i < 4; i++)
        assert_true(weft_str_eq_c(resp.namespaces[i].namespace_, want[i]));
    th_free(h);
}

/* Two replicas applying the same log answer the same (G2), across a restart too. */
static void test_registry_replicas_agree(void **state) {
    (void)state;
    th *a = registry_up();
    a->record = true;
    assert_int_equal(ns_register(a, "orders", "d", 1000, "r1"), 0);
    a->now_ms += 777;
    assert_int_equal(ns_register(a, "orders", "d", 1000, "r2"), WEFT_E_ALREADY_EXISTS);
    assert_int_equal(ns_register(a, "payments", "p", 0, "r3"), 0);
    th *b = registry_up();
    for (unsigned i = 0; i < a->log_count; i++) {
        b->now_ms = a->log[i].time_ms;
        b->index = a->log[i].index - 1;
        th_apply(b, a->log[i].cmd, a->log[i].len);
    }
    const char *names[] = {"orders", "payments"};
    for (unsigned i = 0; i < 2; i++) {
        weft_namespace_info x, y;
        assert_int_equal(ns_describe(a, names[i], &x), 0);
        assert_int_equal(ns_describe(b, names[i], &y), 0);
        assert_true(weft_str_eq(x.description, y.description));
        assert_int_equal(x.retention_ms, y.retention_ms);
        assert_int_equal(x.created_time_ms, y.created_time_ms);
    }
    th_free(a);
    th_free(b);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_same_queue_two_namespaces),
        cmocka_unit_test(test_default_namespace_name),
        cmocka_unit_test(test_rebuild_keeps_namespaces),
        cmocka_unit_test(test_dispatch_name_is_unambiguous),
        cmocka_unit_test(test_register_and_describe),
        cmocka_unit_test(test_register_idempotent_by_request_id),
        cmocka_unit_test(test_register_validates),
        cmocka_unit_test(test_list_namespaces),
        cmocka_unit_test(test_registry_replicas_agree),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
