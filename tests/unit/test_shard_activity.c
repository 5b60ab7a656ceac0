/* test_shard_activity.c: activities through the shard (DESIGN section 7, "Activities"): the
 * four timeouts, retries per policy, heartbeats and their details, cancellation, stale tokens
 * and duplicate completions (G5), and requeue of a vanished poller's task. */
#include "test_shard_harness.h"

/* Starts wf and completes its first task with `cmds`. */
static void run_with(th *h, const char *wfid, weft_command *cmds, uint32_t n) {
    th_start(h, wfid);
    weft_poll_wft_resp wt;
    assert_int_equal(th_poll_wft(h, "q", &wt), 0);
    int code = th_complete_wft(h, wt.task_token, cmds, n, NULL);
    if (code != 0) fprintf(stderr, "complete: %s\n", h->reply.err.message);
    assert_int_equal(code, 0);
}

static weft_event *last_event(th *h, const char *wfid, uint32_t back) {
    weft_event *evs = NULL;
    uint32_t n = th_history(h, wfid, "", &evs);
    assert_true(n > back);
    return &evs[n - 1 - back];
}

static void test_schedule_to_start(void **state) {
    (void)state;
    th *h = th_up();
    weft_command a = th_cmd_activity("a", "t");
    a.schedule_to_start_timeout_ms = 2000;
    run_with(h, "w", &a, 1);
    assert_int_equal(th_advance(h, 1999), 0);
    assert_true(th_advance(h, 1) >= 1);
    /* Final, never retried; no Started because no attempt ran. */
    assert_string_equal(th_types(h, "w", ""),
                        "WorkflowExecutionStarted,WorkflowTaskScheduled,WorkflowTaskStarted,"
                        "WorkflowTaskCompleted,ActivityTaskScheduled,ActivityTaskTimedOut,"
                        "WorkflowTaskScheduled");
    weft_event *ev = last_event(h, "w", 1);
    assert_int_equal(ev->timeout_type, WEFT_TIMEOUT_SCHEDULE_TO_START);
    assert_int_equal(ev->scheduled_event_id, 5);
    weft_poll_activity_resp r;
    assert_int_equal(th_poll_act(h, "q", &r), -1); /* the ready row went with it */
    th_free(h);
}

static void test_start_to_close_retries(void **state) {
    (void)state;
    th *h = th_up();
    weft_command a = th_cmd_activity("a", "t");
    a.start_to_close_timeout_ms = 1000;
    a.retry_policy.maximum_attempts = 2;
    run_with(h, "w", &a, 1);
    weft_poll_activity_resp r1, r2;
    assert_int_equal(th_poll_act(h, "q", &r1), 0);
    th_advance(h, 1000); /* attempt 1 times out: retried after 1 s, no events */
    assert_string_equal(th_types(h, "w", ""),
                        "WorkflowExecutionStarted,WorkflowTaskScheduled,WorkflowTaskStarted,"
                        "WorkflowTaskCompleted,ActivityTaskScheduled");
    weft_describe_resp d;
    th_describe(h, "w", &d);
    assert_int_equal(d.pending_activities_count, 1);
    assert_true(weft_str_eq_c(d.pending_activities[0].state, "backoff"));
    assert_int_equal(d.pending_activities[0].attempt, 2);
    assert_true(weft_str_eq_c(d.pending_activities[0].last_failure.type, "Timeout:start-to-close"));
    th_advance(h, 1000);
    assert_int_equal(th_poll_act(h, "q", &r2), 0);
    assert_int_equal(r2.attempt, 2);
    /* G5: the timed-out attempt's late result is refused and not recorded. */
    assert_int_equal(th_act(h, WEFT_MSG_COMPLETE_ACTIVITY, r1.task_token, "late", NULL),
                     WEFT_E_NOT_FOUND);
    assert_non_null(strstr(h->reply.err.message, "no longer current"));
    th_advance(h, 1000); /* attempt 2 = maximum: final */
    weft_event *to = last_event(h, "w", 1);
    assert_int_equal(to->event_type, WEFT_EV_ACTIVITY_TASK_TIMED_OUT);
    assert_int_equal(to->timeout_type, WEFT_TIMEOUT_START_TO_CLOSE);
    weft_event *st = last_event(h, "w", 2);
    assert_int_equal(st->event_type, WEFT_EV_ACTIVITY_TASK_STARTED);
    assert_int_equal(st->attempt, 2);
    assert_int_equal(to->started_event_id, st->event_id);
    th_free(h);
}

static void test_heartbeat(void **state) {
    (void)state;
    th *h = th_up();
    weft_command a = th_cmd_activity("a", "t");
    a.heartbeat_timeout_ms = 1000;
    run_with(h, "w", &a, 1);
    weft_poll_activity_resp r;
    assert_int_equal(th_poll_act(h, "q", &r), 0);
    h->now_ms += 800;
    weft_activity_req hb = {.task_token = r.task_token,
                            .details = {.ptr = (const uint8_t *)"50%", .len = 3}};
    assert_int_equal(th_request(h, WEFT_MSG_HEARTBEAT_ACTIVITY, &hb), 0);
    weft_heartbeat_resp hr;
    th_decode(h, &weft_heartbeat_resp_schema, h->reply.body, h->reply.body_len, &hr);
    assert_false(hr.cancel_requested);
    /* The timer due at +1000 re-arms for the last heartbeat + 1000 = +1800. */
    assert_int_equal(th_advance(h, 800), 1);
    weft_describe_resp d;
    th_describe(h, "w", &d);
    assert_true(weft_str_eq_c(d.pending_activities[0].state, "started"));
    th_advance(h, 200); /* +1800: heartbeat timeout, retried with the details */
    th_describe(h, "w", &d);
    assert_true(weft_str_eq_c(d.pending_activities[0].state, "backoff"));
    assert_true(weft_str_eq_c(d.pending_activities[0].last_failure.type, "Timeout:heartbeat"));
    th_advance(h, 1000);
    weft_poll_activity_resp r2;
    assert_int_equal(th_poll_act(h, "q", &r2), 0);
    assert_int_equal(r2.attempt, 2);
    assert_int_equal(r2.heartbeat_details.len, 3);
    assert_memory_equal(r2.heartbeat_details.ptr, "50%", 3);
    th_free(h);
}

static void test_schedule_to_close(void **state) {
    (void)state;
    th *h = th_up();
    weft_command a = th_cmd_activity("a", "t");
    a.start_to_close_timeout_ms = 1000;
    a.schedule_to_close_timeout_ms = 5000;
    run_with(h, "w", &a, 1);
    weft_poll_activity_resp r;
    for (int i = 0; i < 10 && th_poll_act(h, "q", &r) == 0; i++) th_advance(h, 1000);
    th_advance(h, 5000);
    weft_event *to = last_event(h, "w", 1);
    assert_int_equal(to->event_type, WEFT_EV_ACTIVITY_TASK_TIMED_OUT);
    assert_int_equal(to->timeout_type, WEFT_TIMEOUT_SCHEDULE_TO_CLOSE);
    assert_true(to->event_time_ms <= TH_T0_MS + 5000 + 1000);
    weft_describe_resp d;
    th_describe(h, "w", &d);
    assert_int_equal(d.pending_activities_count, 0);
    th_free(h);
}

/* A failure whose next start would pass schedule-to-close is final (Temporal's rule). */
static void test_retry_bounded_by_schedule_to_close(void **state) {
    (void)state;
    th *h = th_up();
    weft_command a = th_cmd_activity("a", "t");
    a.schedule_to_close_timeout_ms = 2500;
    run_with(h, "w", &a, 1);
    weft_poll_activity_resp r;
    assert_int_equal(th_poll_act(h, "q", &r), 0);
    assert_int_equal(th_act(h, WEFT_MSG_FAIL_ACTIVITY, r.task_token, NULL, "E"), 0); /* +1 s */
    th_advance(h, 1000);
    assert_int_equal(th_poll_act(h, "q", &r), 0);
    assert_int_equal(th_act(h, WEFT_MSG_FAIL_ACTIVITY, r.task_token, NULL, "E"), 0); /* 1+2 > 2.5 */
    weft_event *f = last_event(h, "w", 1);
    assert_int_equal(f->event_type, WEFT_EV_ACTIVITY_TASK_FAILED);
    assert_int_equal(f->attempt, 2);
    th_free(h);
}

static void test_non_retryable(void **state) {
    (void)state;
    th *h = th_up();
    weft_str types[] = {WEFT_STR_LIT("Fatal")};
    weft_command a = th_cmd_activity("a", "t");
    a.retry_policy.non_retryable_error_types = types;
    a.retry_policy.non_retryable_error_types_count = 1;
    run_with(h, "w", &a, 1);
    weft_poll_activity_resp r;
    assert_int_equal(th_poll_act(h, "q", &r), 0);
    assert_int_equal(th_act(h, WEFT_MSG_FAIL_ACTIVITY, r.task_token, NULL, "Fatal"), 0);
    weft_event *f = last_event(h, "w", 1);
    assert_int_equal(f->event_type, WEFT_EV_ACTIVITY_TASK_FAILED);
    assert_true(weft_str_eq_c(f->failure.type, "Fatal"));
    assert_int_equal(last_event(h, "w", 2)->attempt, 1);
    assert_int_equal(last_event(h, "w", 0)->event_type, WEFT_EV_WORKFLOW_TASK_SCHEDULED);
    th_free(h);
}

/* G5: one outcome per activity; duplicates and wrong attempts are refused. */
static void test_duplicate_completion(void **state) {
    (void)state;
    th *h = th_up();
    weft_command a = th_cmd_activity("a", "t");
    run_with(h, "w", &a, 1);
    weft_poll_activity_resp r;
    assert_int_equal(th_poll_act(h, "q", &r), 0);
    assert_int_equal(th_act(h, WEFT_MSG_COMPLETE_ACTIVITY, r.task_token, "one", NULL), 0);
    assert_int_equal(th_act(h, WEFT_MSG_COMPLETE_ACTIVITY, r.task_token, "two", NULL),
                     WEFT_E_NOT_FOUND);
    assert_int_equal(th_act(h, WEFT_MSG_FAIL_ACTIVITY, r.task_token, NULL, "E"), WEFT_E_NOT_FOUND);
    weft_activity_req hb = {.task_token = r.task_token};
    assert_int_equal(th_request(h, WEFT_MSG_HEARTBEAT_ACTIVITY, &hb), WEFT_E_NOT_FOUND);
    const char *types = th_types(h, "w", "");
    assert_non_null(strstr(types, "ActivityTaskCompleted"));
    assert_null(strstr(strstr(types, "ActivityTaskCompleted") + 1, "ActivityTaskCompleted"));
    /* A token for a workflow task is refused by activity requests, and garbage too. */
    weft_activity_req bad = {.task_token = {.ptr = (const uint8_t *)"\x81\xa1x\x01", .len = 4}};
    assert_int_equal(th_request(h, WEFT_MSG_COMPLETE_ACTIVITY, &bad), WEFT_E_INVALID_ARGUMENT);
    assert_string_equal(h->reply.err.field, "task_token");
    th_free(h);
}

static void test_cancel_activity(void **state) {
    (void)state;
    th *h = th_up();
    weft_command acts[2] = {th_cmd_activity("a", "t"), th_cmd_activity("b", "t")};
    run_with(h, "w", acts, 2);
    weft_poll_activity_resp ra;
    assert_int_equal(th_poll_act(h, "q", &ra), 0); /* a started, b still scheduled */
    assert_int_equal(th_signal(h, "w", "cancel-them", "s1"), 0);
    weft_poll_wft_resp wt;
    assert_int_equal(th_poll_wft(h, "q", &wt), 0);
    weft_command cancel[2] = {{.type = WEFT_CMD_REQUEST_CANCEL_ACTIVITY, .scheduled_event_id = 5},
                              {.type = WEFT_CMD_REQUEST_CANCEL_ACTIVITY, .scheduled_event_id = 6}};
    assert_int_equal(th_complete_wft(h, wt.task_token, cancel, 2, NULL), 0);
    /* b was not started: canceled at once, and a new task tells the workflow. */
    assert_string_equal(th_types(h, "w", ""),
                        "WorkflowExecutionStarted,WorkflowTaskScheduled,WorkflowTaskStarted,"
                        "WorkflowTaskCompleted,ActivityTaskScheduled,ActivityTaskScheduled,"
                        "WorkflowExecutionSignaled,WorkflowTaskScheduled,WorkflowTaskStarted,"
                        "WorkflowTaskCompleted,ActivityTaskCancelRequested,"
                        "ActivityTaskCancelRequested,ActivityTaskCanceled,WorkflowTaskScheduled");
    weft_poll_activity_resp rb;
    assert_int_equal(th_poll_act(h, "q", &rb), -1);
    /* a learns it from a heartbeat and gives up: recorded as canceled. */
    weft_activity_req hb = {.task_token = ra.task_token};
    assert_int_equal(th_request(h, WEFT_MSG_HEARTBEAT_ACTIVITY, &hb), 0);
    weft_heartbeat_resp hr;
    th_decode(h, &weft_heartbeat_resp_schema, h->reply.body, h->reply.body_len, &hr);
    assert_true(hr.cancel_requested);
    assert_int_equal(th_act(h, WEFT_MSG_FAIL_ACTIVITY, ra.task_token, NULL, "Canceled"), 0);
    assert_int_equal(last_event(h, "w", 0)->event_type, WEFT_EV_ACTIVITY_TASK_CANCELED);
    assert_int_equal(last_event(h, "w", 1)->event_type, WEFT_EV_ACTIVITY_TASK_STARTED);
    th_free(h);
}

/* A poller that vanished after Started: the same attempt goes back to the queue. */
static void test_requeue(void **state) {
    (void)state;
    th *h = th_up();
    weft_command a = th_cmd_activity("a", "t");
    run_with(h, "w", &a, 1);
    weft_poll_activity_resp r;
    assert_int_equal(th_poll_act(h, "q", &r), 0);
    weft_shard_cmd rq = {.type = WEFT_SC_TASK_REQUEUE, .task_token = r.task_token};
    uint8_t *cmd = NULL;
    size_t len = 0;
    assert_int_equal(weft_schema_encode_buf(&weft_shard_cmd_schema, &rq, &cmd, &len), 0);
    assert_int_equal(th_apply(h, cmd, len), 0);
    assert_int_equal(th_apply(h, cmd, len), WEFT_E_NOT_FOUND); /* not started any more */
    free(cmd);
    weft_poll_activity_resp r2;
    assert_int_equal(th_poll_act(h, "q", &r2), 0);
    assert_int_equal(r2.attempt, 1);
    assert_int_equal(th_act(h, WEFT_MSG_COMPLETE_ACTIVITY, r2.task_token, "ok", NULL), 0);
    th_free(h);
}

/* A task leaves the server with its Started's apply reply (DESIGN section 8): what the worker
 * is told is what committed, and a second Started of the same attempt is refused, so the
 * attempt is handed out once. */
static void test_started_reply_is_the_task(void **state) {
    (void)state;
    th *h = th_up();
    weft_command a = th_cmd_activity("a", "t");
    a.input = (weft_bytes){.ptr = (const uint8_t *)"in-a", .len = 4};
    run_with(h, "w", &a, 1);
    weft_ready_task t;
    assert_true(weft_shard_dispatch_pop(h->s, th_dq("q"), WEFT_TASK_KIND_ACTIVITY, &t));
    uint8_t *cmd = NULL;
    size_t cl = 0;
    weft_err err;
    weft_err_clear(&err);
    assert_int_equal(weft_shard_activity_dispatch(h->s, &t, WEFT_STR_LIT("w1"), &cmd, &cl, &err),
                     0);
    /* Nothing has started yet: the task is still scheduled until the entry applies. */
    weft_describe_resp d;
    th_describe(h, "w", &d);
    assert_true(weft_str_eq_c(d.pending_activities[0].state, "scheduled"));
    h->now_ms += 5000; /* the entry commits well after the pop */
    assert_int_equal(th_apply(h, cmd, cl), 0);
    weft_poll_activity_resp r;
    th_decode(h, &weft_poll_activity_resp_schema, h->reply.body, h->reply.body_len, &r);
    assert_true(r.task_token.len > 0);
    assert_true(weft_str_eq_c(r.activity_id, "a"));
    assert_true(weft_str_eq_c(r.activity_type, "t"));
    assert_true(weft_str_eq_c(r.workflow_id, "w"));
    assert_int_equal(r.input.len, 4);
    assert_memory_equal(r.input.ptr, "in-a", 4);
    assert_int_equal(r.attempt, 1);
    assert_int_equal(r.scheduled_event_id, 5);
    assert_int_equal(r.started_time_ms, h->now_ms); /* the committed start */
    th_describe(h, "w", &d);
    assert_true(weft_str_eq_c(d.pending_activities[0].state, "started"));
    /* The same Started again (raft replays, or a second pop raced it) is refused as stale. */
    assert_int_equal(th_apply(h, cmd, cl), WEFT_E_NOT_FOUND);
    free(cmd);
    /* The popped row is gone: dispatching it again is stale, and nothing else is ready. */
    assert_int_equal(weft_shard_activity_dispatch(h->s, &t, WEFT_STR_LIT("w1"), &cmd, &cl, &err),
                     -WEFT_E_NOT_FOUND);
    weft_poll_activity_resp again;
    assert_int_equal(th_poll_act(h, "q", &again), -1);
    assert_int_equal(th_act(h, WEFT_MSG_COMPLETE_ACTIVITY, r.task_token, "ok", NULL), 0);
    assert_int_equal(last_event(h, "w", 1)->event_type, WEFT_EV_ACTIVITY_TASK_COMPLETED);
    th_free(h);
}

/* A result for an attempt whose Started never applied still counts once: a node of an earlier
 * version handed tasks out before their Started committed, and a token from it may come back
 * after its Started was lost with its leader. */
static void test_complete_without_started(void **state) {
    (void)state;
    th *h = th_up();
    weft_command a = th_cmd_activity("a", "t");
    run_with(h, "w", &a, 1);
    weft_ready_task t;
    assert_true(weft_shard_dispatch_pop(h->s, th_dq("q"), WEFT_TASK_KIND_ACTIVITY, &t));
    weft_task_token tt = {.shard_id = 7,
                          .run_key = t.run_key,
                          .scheduled_event_id = t.scheduled_event_id,
                          .attempt = t.attempt,
                          .kind = WEFT_TASK_KIND_ACTIVITY};
    uint8_t *tok = NULL;
    size_t tok_len = 0;
    assert_int_equal(weft_task_token_encode(&tt, &tok, &tok_len), 0);
    weft_bytes token = {.ptr = tok, .len = (uint32_t)tok_len};
    assert_int_equal(th_act(h, WEFT_MSG_COMPLETE_ACTIVITY, token, "ok", NULL), 0);
    assert_int_equal(last_event(h, "w", 1)->event_type, WEFT_EV_ACTIVITY_TASK_COMPLETED);
    assert_int_equal(th_act(h, WEFT_MSG_COMPLETE_ACTIVITY, token, "ok", NULL), WEFT_E_NOT_FOUND);
    free(tok);
    /* The popped row is gone: a dispatch of it is stale. */
    uint8_t *cmd = NULL;
    size_t cl = 0;
    weft_err err;
    assert_int_equal(weft_shard_activity_dispatch(h->s, &t, WEFT_STR_LIT("w1"), &cmd, &cl, &err),
                     -WEFT_E_NOT_FOUND);
    th_free(h);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_schedule_to_start),
        cmocka_unit_test(test_start_to_close_retries),
        cmocka_unit_test(test_heartbeat),
        cmocka_unit_test(test_schedule_to_close),
        cmocka_unit_test(test_retry_bounded_by_schedule_to_close),
        cmocka_unit_test(test_non_retryable),
        cmocka_unit_test(test_duplicate_completion),
        cmocka_unit_test(test_cancel_activity),
        cmocka_unit_test(test_requeue),
        cmocka_unit_test(test_started_reply_is_the_task),
        cmocka_unit_test(test_complete_without_started),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
