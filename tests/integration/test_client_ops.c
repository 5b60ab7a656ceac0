/* test_client_ops.c: the libweft calls the other integration tests do not make, each against a
 * real weftd and checked through the history it leaves: SignalWithStart (starts, then signals
 * the open run), FailWorkflowTask (recorded once, then retried), HeartbeatActivity (reports a
 * cancel request), CancelWorkflow, ListWorkflows agreeing with CountWorkflows, and
 * TerminateWorkflow. */
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

static uint32_t ops_count_events(ops *t, uint32_t type) {
    wk_history hist;
    weft_err err;
    assert_int_equal(wk_history_get(t->c, OPS_WF, "", &hist, &err), 0);
    uint32_t n = wk_count(hist.events, hist.count, type, NULL);
    wk_history_free(&hist);
    return n;
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

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_client_ops, ops_setup, ops_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
