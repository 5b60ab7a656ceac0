/* test_client_ops.c: the libweft calls the other integration tests do not make, each against a
 * real weftd and checked through the history it leaves: SignalWithStart (starts, then signals
 * the open run), FailWorkflowTask (recorded once, then retried), HeartbeatActivity (reports a
 * cancel request), CancelWorkflow, ListWorkflows agreeing with CountWorkflows, and
 * TerminateWorkflow. Then the cluster calls on a single node: weft_client_nodes, polls pinned
 * to the node it lists, completions routed by their task token, and a garbage token reaching
 * the server, which refuses it. And starts re-sent with their request ids, which get the first
 * answer (G4). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "helper_weftd.h"
#include "helper_worker.h"

#define OPS_QUEUE "q-ops"
#define OPS_WF "ops-1"
#define OPS_TYPE "ops-type"
/* Long enough to cover the first workflow-task retry backoff (1 s). */
#define OPS_POLL_MS 5000u

typedef struct ops {
    weftd w;       /* the server */
    bool passed;   /* teardown prints stderr otherwise */
    weft_client *c;
} ops;

static const char *const ops_flags[] = {"--shards", "2", NULL};

static int ops_setup(void **state) {
    static ops t;
    memset(&t, 0, sizeof t);
    if (weftd_start(&t.w, ops_flags) != 0) return -1;
    if (weftd_client(&t.w, "ops", &t.c) != 0) return -1;
    *state = &t;
    return 0;
}

static int ops_teardown(void **state) {
    ops *t = *state;
    if (!t->passed) weftd_print_stderr(&t->w, WEFTD_STDERR_TAIL_LINES);
    weft_client_close(t->c);
    weftd_destroy(&t->w);
    return 0;
}

static bool ops_signal_with_start(ops *t, const char *request_id) {
    weft_start_req s = {.workflow_id = WEFT_STR_LIT(OPS_WF),
                        .workflow_type = WEFT_STR_LIT(OPS_TYPE),
                        .task_queue = WEFT_STR_LIT(OPS_QUEUE),
                        .request_id = weft_str_c(request_id),
                        .signal_name = WEFT_STR_LIT("go")};
    weft_start_resp r;
    weft_response h = {0};
    weft_err err;
    int rc = weft_client_signal_with_start(t->c, &s, &r, &h, &err);
    if (rc != 0) fail_msg("signal-with-start: %s", err.message);
    bool started = r.started;
    weft_response_free(&h);
    return started;
}

static uint32_t ops_count_events_of(ops *t, const char *workflow_id, uint32_t type) {
    wk_history hist;
    weft_err err;
    assert_int_equal(wk_history_get(t->c, workflow_id, "", &hist, &err), 0);
    uint32_t n = wk_count(hist.events, hist.count, type, NULL);
    wk_history_free(&hist);
    return n;
}

static uint32_t ops_count_events(ops *t, uint32_t type) {
    return ops_count_events_of(t, OPS_WF, type);
}

/* Polls the next workflow task and answers it with `cmd` (type 0: fails the task instead). */
static void ops_answer_wft(ops *t, const weft_command *cmd) {
    weft_poll_wft_resp task;
    weft_response h = {0};
    weft_err err;
    assert_int_equal(wk_poll_wft(t->c, OPS_QUEUE, OPS_POLL_MS, &task, &h, &err), 1);
    if (cmd->type == WEFT_CMD_UNSPECIFIED) {
        weft_fail_wft_req f = {.task_token = task.task_token,
                               .cause = WEFT_STR_LIT("panic"),
                               .failure = {.type = WEFT_STR_LIT("Panic"),
                                           .message = WEFT_STR_LIT("the code crashed")}};
        assert_int_equal(weft_client_fail_workflow_task(t->c, &f, &err), 0);
    } else {
        assert_int_equal(wk_complete_wft(t->c, &task, cmd, 1, &err), 0);
    }
    weft_response_free(&h);
}

static bool ops_heartbeat(ops *t, const weft_poll_activity_resp *a) {
    weft_activity_req hb = {.task_token = a->task_token,
                            .details = {.ptr = (const uint8_t *)"50%", .len = 3}};
    bool cancel_requested = true;
    weft_err err;
    assert_int_equal(weft_client_heartbeat_activity(t->c, &hb, &cancel_requested, &err), 0);
    return cancel_requested;
}

static void test_client_ops(void **state) {
    ops *t = *state;
    /* SignalWithStart starts the run, then signals the open one. */
    assert_true(ops_signal_with_start(t, "sws-1"));
    assert_false(ops_signal_with_start(t, "sws-2"));
    assert_int_equal(ops_count_events(t, WEFT_EV_WORKFLOW_EXECUTION_SIGNALED), 2);

    /* A failed workflow task is written once, counted in describe, and retried. */
    weft_command none = {0};
    ops_answer_wft(t, &none);
    weft_describe_req dq = {.workflow_id = WEFT_STR_LIT(OPS_WF)};
    weft_describe_resp d;
    weft_response h = {0};
    weft_err err;
    assert_int_equal(weft_client_describe(t->c, &dq, &d, &h, &err), 0);
    assert_int_equal(d.workflow_task_failures, 1);
    weft_response_free(&h);
    assert_int_equal(ops_count_events(t, WEFT_EV_WORKFLOW_TASK_FAILED), 1);
    weft_command act = {.type = WEFT_CMD_SCHEDULE_ACTIVITY,
                        .activity_id = WEFT_STR_LIT("a1"),
                        .activity_type = WEFT_STR_LIT("slow"),
                        .start_to_close_timeout_ms = 60000,
                        .heartbeat_timeout_ms = 30000};
    ops_answer_wft(t, &act);

    /* The activity heartbeats; no cancel yet. */
    weft_poll_activity_resp a;
    weft_response ah = {0};
    assert_int_equal(wk_poll_act(t->c, OPS_QUEUE, OPS_POLL_MS, &a, &ah, &err), 1);
    assert_false(ops_heartbeat(t, &a));

    /* CancelWorkflow reaches the code, which cancels the activity; the heartbeat reports it. */
    weft_close_req cq = {.workflow_id = WEFT_STR_LIT(OPS_WF), .reason = WEFT_STR_LIT("user")};
    assert_int_equal(weft_client_cancel(t->c, &cq, &err), 0);
    assert_int_equal(ops_count_events(t, WEFT_EV_WORKFLOW_EXECUTION_CANCEL_REQUESTED), 1);
    weft_command cancel_act = {.type = WEFT_CMD_REQUEST_CANCEL_ACTIVITY,
                               .scheduled_event_id = a.scheduled_event_id};
    ops_answer_wft(t, &cancel_act);
    assert_true(ops_heartbeat(t, &a));
    /* The worker gives up: recorded as canceled, not as a failure to retry. */
    assert_int_equal(wk_fail_act(t->c, &a, "Canceled", "canceled on request", &err), 0);
    weft_response_free(&ah);
    assert_int_equal(ops_count_events(t, WEFT_EV_ACTIVITY_TASK_CANCELED), 1);

    /* ListWorkflows and CountWorkflows agree, and the list names this run. */
    weft_list_req lq = {.workflow_type = WEFT_STR_LIT(OPS_TYPE)};
    weft_list_resp l;
    assert_int_equal(weft_client_list(t->c, &lq, &l, &h, &err), 0);
    uint64_t count = 0;
    assert_int_equal(weft_client_count(t->c, &lq, &count, &err), 0);
    assert_int_equal(count, 1);
    assert_int_equal(l.executions_count, 1);
    assert_true(weft_str_eq_c(l.executions[0].workflow_id, OPS_WF));
    weft_response_free(&h);

    /* TerminateWorkflow closes the run at once. */
    assert_int_equal(weft_client_terminate(t->c, &cq, &err), 0);
    assert_int_equal(weft_client_describe(t->c, &dq, &d, &h, &err), 0);
    assert_int_equal(d.info.status, WEFT_STATUS_TERMINATED);
    weft_response_free(&h);
    assert_int_equal(weftd_stop(&t->w), 0);
    t->passed = true;
}

static void test_nodes_and_pinned_polls(void **state) {
    ops *t = *state;
    weft_node_ref nodes[WEFT_CLIENT_NODES_MAX];
    uint32_t n = 0;
    weft_err err;
    assert_int_equal(weft_client_nodes(t->c, true, nodes, WEFT_CLIENT_NODES_MAX, &n, &err), 0);
    assert_int_equal(n, 1);
    assert_true(nodes[0].node_id != 0);
    assert_string_equal(nodes[0].address, t->w.listen);
    assert_true(nodes[0].up);
    uint64_t node = nodes[0].node_id;

    char run_id[128];
    weft_start_req s = {.workflow_id = WEFT_STR_LIT("pinned-1"),
                        .workflow_type = WEFT_STR_LIT(OPS_TYPE),
                        .task_queue = WEFT_STR_LIT(OPS_QUEUE)};
    weft_start_resp sr;
    weft_response h = {0};
    assert_int_equal(weft_client_start(t->c, &s, &sr, &h, &err), 0);
    weft_str_copy(run_id, sizeof run_id, sr.run_id);

    /* The workflow task, polled on the node by id; its completion is routed by its token. */
    weft_poll_req q = {.task_queue = WEFT_STR_LIT(OPS_QUEUE), .poll_timeout_ms = OPS_POLL_MS};
    weft_poll_wft_resp wt;
    assert_int_equal(weft_client_poll_workflow_task_on(t->c, node, &q, &wt, &h, &err), 0);
    assert_true(wt.task_token.len > 0);
    assert_true(weft_str_eq_c(wt.run_id, run_id));
    weft_command act = wk_cmd_activity("a1", "pinned-act", "in", 60000, NULL);
    assert_int_equal(wk_complete_wft(t->c, &wt, &act, 1, &err), 0);

    /* The activity task the same way; heartbeat and completion go by the token. */
    weft_poll_activity_resp at;
    weft_response ah = {0};
    assert_int_equal(weft_client_poll_activity_task_on(t->c, node, &q, &at, &ah, &err), 0);
    assert_true(at.task_token.len > 0);
    assert_false(ops_heartbeat(t, &at));
    assert_int_equal(wk_complete_act(t->c, &at, "done", &err), 0);
    weft_response_free(&ah);

    /* A garbage token is sent where unrouted requests go, and the server refuses it. */
    weft_activity_req bad = {.task_token = {(const uint8_t *)"garbage", 7}};
    assert_int_equal(weft_client_complete_activity(t->c, &bad, &err), -WEFT_E_INVALID_ARGUMENT);
    assert_string_equal(err.field, "task_token");

    /* An id the client does not know is refused by the client. */
    assert_int_equal(weft_client_poll_workflow_task_on(t->c, node + 1, &q, &wt, &h, &err),
                     -WEFT_E_INVALID_ARGUMENT);
    assert_string_equal(err.field, "node_id");
    /* An idle pinned poll comes back empty after its wait. */
    q.task_queue = WEFT_STR_LIT("q-idle");
    q.poll_timeout_ms = 200;
    assert_int_equal(weft_client_poll_workflow_task_on(t->c, node, &q, &wt, &h, &err), 0);
    assert_int_equal(wt.task_token.len, 0);
    weft_response_free(&h);
    assert_int_equal(ops_count_events_of(t, "pinned-1", WEFT_EV_ACTIVITY_TASK_COMPLETED), 1);
    assert_int_equal(weftd_stop(&t->w), 0);
    t->passed = true;
}

/* Starts "ops-retry" with `request_id` under `policy`; copies the run id into run_id (64
 * bytes) and returns the answer's started. */
static bool ops_start(ops *t, const char *request_id, uint32_t policy, char *run_id) {
    weft_start_req s = {.workflow_id = WEFT_STR_LIT("ops-retry"),
                        .workflow_type = WEFT_STR_LIT("ops-retry-type"),
                        .task_queue = WEFT_STR_LIT(OPS_QUEUE),
                        .request_id = weft_str_c(request_id),
                        .id_conflict_policy = policy};
    weft_start_resp r;
    weft_response h = {0};
    weft_err err;
    int rc = weft_client_start(t->c, &s, &r, &h, &err);
    if (rc != 0) fail_msg("start %s: %s", request_id, err.message);
    weft_str_copy(run_id, 64, r.run_id);
    bool started = r.started;
    weft_response_free(&h);
    return started;
}

/* G4 through a real weftd: a start re-sent with its request id (as a client does when the
 * answer was lost) gets exactly the first answer, run id and started alike, under each
 * conflict policy, and no run or event is added. */
static void test_start_retries(void **state) {
    ops *t = *state;
    char first[64], again[64];
    assert_true(ops_start(t, "st-1", WEFT_CONFLICT_FAIL, first));
    assert_true(ops_start(t, "st-1", WEFT_CONFLICT_FAIL, again));
    assert_string_equal(again, first);
    /* use-existing answered with the open run and did not start it: so does its retry. */
    assert_false(ops_start(t, "st-use", WEFT_CONFLICT_USE_EXISTING, again));
    assert_string_equal(again, first);
    assert_false(ops_start(t, "st-use", WEFT_CONFLICT_USE_EXISTING, again));
    assert_string_equal(again, first);
    /* terminate-existing started a new run: its retry names that run, started. */
    char second[64];
    assert_true(ops_start(t, "st-term", WEFT_CONFLICT_TERMINATE_EXISTING, second));
    assert_string_not_equal(second, first);
    assert_true(ops_start(t, "st-term", WEFT_CONFLICT_TERMINATE_EXISTING, again));
    assert_string_equal(again, second);
    /* The first attempt's retry still answers as it did, though its run has been terminated. */
    assert_true(ops_start(t, "st-1", WEFT_CONFLICT_FAIL, again));
    assert_string_equal(again, first);
    weft_list_req lq = {.workflow_type = WEFT_STR_LIT("ops-retry-type")};
    uint64_t count = 0;
    weft_err err;
    assert_int_equal(weft_client_count(t->c, &lq, &count, &err), 0);
    assert_int_equal(count, 2);
    weft_describe_req dq = {.workflow_id = WEFT_STR_LIT("ops-retry")};
    weft_describe_resp d;
    weft_response h = {0};
    assert_int_equal(weft_client_describe(t->c, &dq, &d, &h, &err), 0);
    assert_true(weft_str_eq_c(d.info.run_id, second));
    assert_int_equal(d.info.status, WEFT_STATUS_RUNNING);
    weft_response_free(&h);

    /* SignalWithStart: the retry of the one that started the run says so and signals once. */
    assert_true(ops_signal_with_start(t, "sws-retry-1"));
    assert_true(ops_signal_with_start(t, "sws-retry-1"));
    assert_false(ops_signal_with_start(t, "sws-retry-2"));
    assert_false(ops_signal_with_start(t, "sws-retry-2"));
    assert_int_equal(ops_count_events(t, WEFT_EV_WORKFLOW_EXECUTION_SIGNALED), 2);
    assert_int_equal(weftd_stop(&t->w), 0);
    t->passed = true;
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_client_ops, ops_setup, ops_teardown),
        cmocka_unit_test_setup_teardown(test_nodes_and_pinned_polls, ops_setup, ops_teardown),
        cmocka_unit_test_setup_teardown(test_start_retries, ops_setup, ops_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
