/* test_task_queue.c: a task queue's pollers, as a new user meets them against real weftd
 * processes (issue 10, "Silent waits"): a run started on a queue nobody polls is described with
 * a hint saying so; `weft task-queue describe` lists who polled the queue (identity, kind, node,
 * how long ago), in text and JSON; once a worker polled, the hint is gone; and in a 3-node
 * cluster a poller of one node is reported by every node. */
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
#include "weft/json.h"

/* A poll long enough to take a task that is already ready. */
#define TQ_POLL_MS 5000u
/* A poll that only has to be seen: it comes back empty this soon. */
#define TQ_SHORT_POLL_MS 200u

/* Runs `weft --address ADDR ARGS...`, its files in `dir`. */
static void tq_run(hcli_result *r, const char *addr, const char *dir, const char *const *args) {
    const char *argv[HCLI_ARGS_MAX];
    unsigned n = 0;
    argv[n++] = WEFT_CLI_PATH;
    argv[n++] = "--address";
    argv[n++] = addr;
    for (unsigned i = 0; args[i] != NULL; i++) {
        assert_true(n + 1 < HCLI_ARGS_MAX);
        argv[n++] = args[i];
    }
    argv[n] = NULL;
    hcli_opts o = {.dir = dir};
    hcli_run(argv, &o, r);
}
#define TQ(r, addr, dir, ...) tq_run((r), (addr), (dir), (const char *const[]){__VA_ARGS__, NULL})

/* Checks the JSON form of `task-queue describe` lists exactly one poller, `identity` of
 * `kind` on `node_id`, whose last poll is within [after_ms, now]. */
static void tq_expect_json_poller(const char *out, const char *identity, const char *kind,
                                  uint64_t node_id, uint64_t after_ms) {
    json_error_t jerr;
    json_t *j = json_loads(out, 0, &jerr);
    if (j == NULL) fail_msg("not JSON: %s (%s)", out, jerr.text);
    json_t *pollers = json_object_get(j, "pollers");
    if (!json_is_array(pollers) || json_array_size(pollers) != 1)
        fail_msg("want 1 poller: %s", out);
    json_t *p = json_array_get(pollers, 0);
    assert_string_equal(json_string_value(json_object_get(p, "identity")), identity);
    assert_string_equal(json_string_value(json_object_get(p, "kind")), kind);
    assert_int_equal((uint64_t)json_integer_value(json_object_get(p, "node_id")), node_id);
    uint64_t last = (uint64_t)json_integer_value(json_object_get(p, "last_poll_ms"));
    uint64_t now = weft_wall_ms();
    if (last < after_ms || last > now) {
        fail_msg("last_poll_ms %llu not within [%llu, %llu]", (unsigned long long)last,
                 (unsigned long long)after_ms, (unsigned long long)now);
    }
    json_decref(j);
}

/* ---- One node: the hint, the pollers, and the hint gone ---- */

static void test_hint_and_pollers(void **state) {
    (void)state;
    static weftd w;
    memset(&w, 0, sizeof w);
    static const char *const flags[] = {"--shards", "2", NULL};
    assert_int_equal(weftd_start(&w, flags), 0);
    weft_client *c = NULL;
    assert_int_equal(weftd_client(&w, "test-task-queue", &c), 0);
    hcli_result r;

    /* Nobody polls q-idle: describe says so, and names the command that shows pollers. */
    TQ(&r, w.listen, w.dir, "workflow", "start", "--type", "T", "--task-queue", "q-idle", "--id",
       "idle-1");
    hcli_expect_code(&r, 0);
    hcli_result_free(&r);
    TQ(&r, w.listen, w.dir, "workflow", "describe", "--id", "idle-1");
    hcli_expect_code(&r, 0);
    hcli_expect_in(r.out, "workflow_task:       scheduled");
    hcli_expect_in(r.out, "hint: no worker has polled task queue 'q-idle' (workflow tasks) in the "
                          "last 60 s; start a worker for it");
    hcli_result_free(&r);
    TQ(&r, w.listen, w.dir, "task-queue", "describe", "--task-queue", "q-idle");
    hcli_expect_code(&r, 0);
    hcli_expect_in(r.out, "no worker has polled task queue 'q-idle' in the last 60 s");
    hcli_result_free(&r);

    /* Worker w1 polls: it takes idle-1's task, and is listed with its kind and a recent time.
     * It schedules an activity on q-acts, which nobody polls: describe says so. */
    uint64_t before = weft_wall_ms();
    weft_poll_req pq = {.task_queue = weft_str_c("q-idle"),
                        .identity = weft_str_c("w1"),
                        .poll_timeout_ms = TQ_POLL_MS};
    weft_poll_wft_resp task;
    weft_response th = {0};
    weft_err err;
    if (weft_client_poll_workflow_task(c, &pq, &task, &th, &err) != 0) fail_msg("%s", err.message);
    assert_true(task.task_token.len > 0);
    weft_command act = {.type = WEFT_CMD_SCHEDULE_ACTIVITY,
                        .activity_id = weft_str_c("a1"),
                        .activity_type = weft_str_c("work"),
                        .task_queue = weft_str_c("q-acts"),
                        .start_to_close_timeout_ms = TQ_POLL_MS};
    weft_complete_wft_req done = {
        .task_token = task.task_token, .commands = &act, .commands_count = 1};
    if (weft_client_complete_workflow_task(c, &done, &err) != 0) fail_msg("%s", err.message);
    weft_response_free(&th);
    TQ(&r, w.listen, w.dir, "workflow", "describe", "--id", "idle-1");
    hcli_expect_code(&r, 0);
    hcli_expect_in(r.out, "hint: no worker has polled task queue 'q-acts' (activity tasks)");
    hcli_expect_not_in(r.out, "'q-idle'");
    hcli_result_free(&r);
    TQ(&r, w.listen, w.dir, "task-queue", "describe", "--task-queue", "q-idle");
    hcli_expect_code(&r, 0);
    hcli_expect_in(r.out, "IDENTITY  KIND      NODE    LAST POLL");
    hcli_expect_in(r.out, "w1        workflow  1       ");
    hcli_expect_in(r.out, " s ago");
    hcli_result_free(&r);
    TQ(&r, w.listen, w.dir, "--output", "json", "task-queue", "describe", "--task-queue", "q-idle");
    hcli_expect_code(&r, 0);
    tq_expect_json_poller(r.out, "w1", "workflow", 1, before);
    hcli_result_free(&r);

    /* A second run on the queue waits scheduled, but a worker polled within the window: no
     * hint. Other queues and namespaces are not affected. */
    TQ(&r, w.listen, w.dir, "workflow", "start", "--type", "T", "--task-queue", "q-idle", "--id",
       "idle-2");
    hcli_expect_code(&r, 0);
    hcli_result_free(&r);
    TQ(&r, w.listen, w.dir, "workflow", "describe", "--id", "idle-2");
    hcli_expect_code(&r, 0);
    hcli_expect_in(r.out, "workflow_task:       scheduled");
    hcli_expect_not_in(r.out, "hint:");
    hcli_result_free(&r);
    TQ(&r, w.listen, w.dir, "--namespace", "other", "task-queue", "describe", "--task-queue",
       "q-idle");
    hcli_expect_code(&r, 0);
    hcli_expect_not_in(r.out, "w1");
    hcli_result_free(&r);
    /* An activity worker polls q-acts: the activity's hint is gone too. */
    pq.task_queue = weft_str_c("q-acts");
    weft_poll_activity_resp at;
    if (weft_client_poll_activity_task(c, &pq, &at, &th, &err) != 0) fail_msg("%s", err.message);
    assert_true(at.task_token.len > 0);
    weft_response_free(&th);
    TQ(&r, w.listen, w.dir, "workflow", "describe", "--id", "idle-1");
    hcli_expect_code(&r, 0);
    hcli_expect_not_in(r.out, "hint:");
    hcli_result_free(&r);

    /* A missing flag is named. */
    TQ(&r, w.listen, w.dir, "task-queue", "describe");
    hcli_expect_code(&r, 1);
    hcli_expect_in(r.err, "--task-queue");
    hcli_result_free(&r);

    weft_client_close(c);
    weftd_destroy(&w);
}

/* ---- Three nodes: a poller of node 2 is reported by every node ---- */

static void test_cluster_pollers(void **state) {
    (void)state;
    static hc_cluster cl;
    memset(&cl, 0, sizeof cl);
    assert_int_equal(hc_start(&cl, 3, 2, 3, NULL), 0);
    weft_client *c2 = NULL;
    assert_int_equal(hc_node_client(&cl, 2, "test-task-queue-2", &c2), 0);
    uint64_t before = weft_wall_ms();
    weft_poll_req q = {.task_queue = weft_str_c("q-cluster"),
                       .identity = weft_str_c("w-on-2"),
                       .poll_timeout_ms = TQ_SHORT_POLL_MS};
    weft_poll_activity_resp resp;
    weft_response h = {0};
    weft_err err;
    if (weft_client_poll_activity_task_on(c2, 2, &q, &resp, &h, &err) != 0) {
        fail_msg("poll on node 2: %s", err.message);
    }
    weft_response_free(&h);
    for (unsigned id = 1; id <= 3; id++) {
        hcli_result r;
        TQ(&r, hc_address(&cl, id), cl.node[id - 1].dir, "task-queue", "describe", "--task-queue",
           "q-cluster");
        hcli_expect_code(&r, 0);
        hcli_expect_in(r.out, "w-on-2");
        hcli_expect_in(r.out, "activity  2       ");
        hcli_result_free(&r);
        TQ(&r, hc_address(&cl, id), cl.node[id - 1].dir, "--output", "json", "task-queue",
           "describe", "--task-queue", "q-cluster");
        hcli_expect_code(&r, 0);
        tq_expect_json_poller(r.out, "w-on-2", "activity", 2, before);
        hcli_result_free(&r);
    }
    weft_client_close(c2);
    hc_destroy(&cl);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_hint_and_pollers),
        cmocka_unit_test(test_cluster_pollers),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
