/* test_shard_start.c: starts and closes (DESIGN section 7): request-id dedup for start,
 * signal, cancel and terminate (G4), id-reuse and conflict policies (G3), SignalWithStart,
 * cancel vs terminate, run and execution timeouts, continue-as-new, retention. */
#include "test_shard_harness.h"

static int start(th *h, weft_start_req *req, weft_start_resp *resp) {
    int code = th_request(h, WEFT_MSG_START_WORKFLOW, req);
    if (code == 0) th_decode(h, &weft_start_resp_schema, h->reply.body, h->reply.body_len, resp);
    return code;
}

/* Completes the current task of wfid with one command. */
static void finish(th *h, weft_command cmd) {
    weft_poll_wft_resp wt;
    assert_int_equal(th_poll_wft(h, "q", &wt), 0);
    assert_int_equal(th_complete_wft(h, wt.task_token, &cmd, 1, NULL), 0);
}

static int close_req(th *h, uint32_t msg, const char *wfid, const char *request_id) {
    weft_close_req req = {.workflow_id = weft_str_c(wfid),
                          .reason = WEFT_STR_LIT("because"),
                          .request_id = weft_str_c(request_id)};
    return th_request(h, msg, &req);
}

static void test_start_dedup(void **state) {
    (void)state;
    th *h = th_up();
    weft_start_req req = th_start_req("w");
    req.request_id = WEFT_STR_LIT("req-1");
    weft_start_resp r1, r2;
    assert_int_equal(start(h, &req, &r1), 0);
    assert_true(r1.started);
    char first[64];
    weft_str_copy(first, sizeof first, r1.run_id);
    /* The retry (a new run id from the leader) returns the first outcome and changes nothing. */
    assert_int_equal(start(h, &req, &r2), 0);
    assert_true(r2.started);
    assert_true(weft_str_eq_c(r2.run_id, first));
    assert_string_equal(th_types(h, "w", ""), "WorkflowExecutionStarted,WorkflowTaskScheduled");
    /* Another request id hits the conflict policy (fail by default) and names the run. */
    weft_start_req other = th_start_req("w");
    other.request_id = WEFT_STR_LIT("req-2");
    assert_int_equal(start(h, &other, &r2), WEFT_E_ALREADY_EXISTS);
    assert_non_null(strstr(h->reply.err.message, first));
    assert_non_null(strstr(h->reply.err.message, "id_conflict_policy"));
    /* Its retry gets the same refusal, even after the run closed (first outcome). */
    finish(h, th_cmd_complete("done"));
    assert_int_equal(start(h, &other, &r2), WEFT_E_ALREADY_EXISTS);
    /* The dedup entry expires after dedup_ttl_ms; the request is then judged afresh. */
    th_advance(h, h->limits.dedup_ttl_ms);
    assert_int_equal(start(h, &other, &r2), 0);
    assert_true(r2.started);
    /* A request id reused for another kind of request is refused. */
    assert_int_equal(th_signal(h, "w", "s", "req-2"), WEFT_E_INVALID_ARGUMENT);
    assert_string_equal(h->reply.err.field, "request_id");
    th_free(h);
}

static void test_conflict_policies(void **state) {
    (void)state;
    th *h = th_up();
    weft_start_req req = th_start_req("w");
    weft_start_resp r1, r2;
    assert_int_equal(start(h, &req, &r1), 0);
    char first[64];
    weft_str_copy(first, sizeof first, r1.run_id);
    req.id_conflict_policy = WEFT_CONFLICT_USE_EXISTING;
    assert_int_equal(start(h, &req, &r2), 0);
    assert_false(r2.started);
    assert_true(weft_str_eq_c(r2.run_id, first));
    req.id_conflict_policy = WEFT_CONFLICT_TERMINATE_EXISTING;
    req.id_reuse_policy = WEFT_REUSE_REJECT; /* terminate-existing skips the reuse policy */
    assert_int_equal(start(h, &req, &r2), 0);
    assert_true(r2.started);
    assert_false(weft_str_eq_c(r2.run_id, first));
    assert_string_equal(th_types(h, "w", first),
                        "WorkflowExecutionStarted,WorkflowTaskScheduled,WorkflowExecutionTerminated");
    weft_describe_resp d;
    th_describe(h, "w", &d);
    assert_true(weft_str_eq(d.info.run_id, r2.run_id));
    assert_int_equal(d.info.status, WEFT_STATUS_RUNNING);
    /* The old task was dropped with its run: only the new run's task is ready. */
    weft_poll_wft_resp wt;
    assert_int_equal(th_poll_wft(h, "q", &wt), 0);
    assert_true(weft_str_eq(wt.run_id, r2.run_id));
    assert_int_equal(th_poll_wft(h, "q", &wt), -1);
    th_free(h);
}

static void test_reuse_policies(void **state) {
    (void)state;
    th *h = th_up();
    weft_start_resp r;
    weft_start_req req = th_start_req("w");
    assert_int_equal(start(h, &req, &r), 0);
    finish(h, th_cmd_complete("ok"));
    req.id_reuse_policy = WEFT_REUSE_ALLOW_FAILED;
    assert_int_equal(start(h, &req, &r), WEFT_E_ALREADY_EXISTS);
    assert_non_null(strstr(h->reply.err.message, "allow-failed"));
    req.id_reuse_policy = WEFT_REUSE_REJECT;
    assert_int_equal(start(h, &req, &r), WEFT_E_ALREADY_EXISTS);
    assert_non_null(strstr(h->reply.err.message, "reject"));
    req.id_reuse_policy = WEFT_REUSE_ALLOW;
    assert_int_equal(start(h, &req, &r), 0);
    /* Now fail it: allow-failed reuses it. */
    weft_command fail = {.type = WEFT_CMD_FAIL_WORKFLOW,
                         .failure = {.type = WEFT_STR_LIT("Bad"), .message = WEFT_STR_LIT("bad")}};
    finish(h, fail);
    req.id_reuse_policy = WEFT_REUSE_ALLOW_FAILED;
    assert_int_equal(start(h, &req, &r), 0);
    assert_true(r.started);
    th_free(h);
}

static void test_signal_with_start(void **state) {
    (void)state;
    th *h = th_up();
    weft_start_req req = th_start_req("w");
    req.signal_name = WEFT_STR_LIT("hello");
    req.request_id = WEFT_STR_LIT("sws-1");
    assert_int_equal(th_request(h, WEFT_MSG_SIGNAL_WITH_START, &req), 0);
    weft_start_resp r;
    th_decode(h, &weft_start_resp_schema, h->reply.body, h->reply.body_len, &r);
    assert_true(r.started);
    assert_string_equal(th_types(h, "w", ""),
                        "WorkflowExecutionStarted,WorkflowExecutionSignaled,WorkflowTaskScheduled");
    /* Running: it signals the run, whatever the conflict policy. */
    req.request_id = WEFT_STR_LIT("sws-2");
    assert_int_equal(th_request(h, WEFT_MSG_SIGNAL_WITH_START, &req), 0);
    th_decode(h, &weft_start_resp_schema, h->reply.body, h->reply.body_len, &r);
    assert_false(r.started);
    assert_string_equal(th_types(h, "w", ""),
                        "WorkflowExecutionStarted,WorkflowExecutionSignaled,WorkflowTaskScheduled,"
                        "WorkflowExecutionSignaled");
    /* A retry of sws-2 does not signal twice (G4, G7). */
    assert_int_equal(th_request(h, WEFT_MSG_SIGNAL_WITH_START, &req), 0);
    weft_describe_resp d;
    th_describe(h, "w", &d);
    assert_int_equal(d.info.history_length, 4);
    th_free(h);
}

/* Sends `req` and expects success with `run_id` and `started`. */
static void start_expect(th *h, weft_start_req *req, uint32_t msg_type, const char *run_id,
                         bool started) {
    assert_int_equal(th_request(h, msg_type, req), 0);
    weft_start_resp r;
    th_decode(h, &weft_start_resp_schema, h->reply.body, h->reply.body_len, &r);
    if (!weft_str_eq_c(r.run_id, run_id) || r.started != started) {
        fail_msg("expected run %s started %d, got run %.*s started %d", run_id, started,
                 (int)r.run_id.len, r.run_id.ptr, r.started);
    }
}

/* G4: a start retried with its request id answers exactly as its first attempt did, whichever
 * path that attempt took, within the dedup TTL and past it while the run is open. */
static void test_start_retry_first_outcome(void **state) {
    (void)state;
    th *h = th_up();
    weft_start_resp r;
    /* A plain start: the first attempt created the run. */
    weft_start_req a = th_start_req("a");
    a.request_id = WEFT_STR_LIT("a-1");
    assert_int_equal(start(h, &a, &r), 0);
    char a_run[64];
    weft_str_copy(a_run, sizeof a_run, r.run_id);
    start_expect(h, &a, WEFT_MSG_START_WORKFLOW, a_run, true);
    /* Past dedup_ttl_ms the run still names the request that started it. */
    th_advance(h, h->limits.dedup_ttl_ms + 1);
    start_expect(h, &a, WEFT_MSG_START_WORKFLOW, a_run, true);
    assert_string_equal(th_types(h, "a", ""), "WorkflowExecutionStarted,WorkflowTaskScheduled");

    /* use-existing found the open run: its retry does not claim to have started it. */
    weft_start_req u = th_start_req("a");
    u.request_id = WEFT_STR_LIT("a-use");
    u.id_conflict_policy = WEFT_CONFLICT_USE_EXISTING;
    start_expect(h, &u, WEFT_MSG_START_WORKFLOW, a_run, false);
    start_expect(h, &u, WEFT_MSG_START_WORKFLOW, a_run, false);

    /* terminate-existing ended the open run and created one: the retry names the new run. */
    weft_start_req x = th_start_req("a");
    x.request_id = WEFT_STR_LIT("a-term");
    x.id_conflict_policy = WEFT_CONFLICT_TERMINATE_EXISTING;
    assert_int_equal(start(h, &x, &r), 0);
    assert_true(r.started);
    char x_run[64];
    weft_str_copy(x_run, sizeof x_run, r.run_id);
    assert_string_not_equal(x_run, a_run);
    start_expect(h, &x, WEFT_MSG_START_WORKFLOW, x_run, true);
    th_advance(h, h->limits.dedup_ttl_ms + 1);
    start_expect(h, &x, WEFT_MSG_START_WORKFLOW, x_run, true);
    assert_string_equal(th_types(h, "a", x_run), "WorkflowExecutionStarted,WorkflowTaskScheduled");

    /* SignalWithStart that created its run: the retry neither signals again nor denies it. */
    weft_start_req s = th_start_req("s");
    s.signal_name = WEFT_STR_LIT("go");
    s.request_id = WEFT_STR_LIT("s-1");
    assert_int_equal(th_request(h, WEFT_MSG_SIGNAL_WITH_START, &s), 0);
    th_decode(h, &weft_start_resp_schema, h->reply.body, h->reply.body_len, &r);
    assert_true(r.started);
    char s_run[64];
    weft_str_copy(s_run, sizeof s_run, r.run_id);
    start_expect(h, &s, WEFT_MSG_SIGNAL_WITH_START, s_run, true);
    th_advance(h, h->limits.dedup_ttl_ms + 1);
    start_expect(h, &s, WEFT_MSG_SIGNAL_WITH_START, s_run, true);
    /* One that signaled the open run did not start it, and its retry says so. */
    s.request_id = WEFT_STR_LIT("s-2");
    start_expect(h, &s, WEFT_MSG_SIGNAL_WITH_START, s_run, false);
    start_expect(h, &s, WEFT_MSG_SIGNAL_WITH_START, s_run, false);
    th_advance(h, h->limits.dedup_ttl_ms + 1);
    start_expect(h, &s, WEFT_MSG_SIGNAL_WITH_START, s_run, false);
    assert_string_equal(th_types(h, "s", ""),
                        "WorkflowExecutionStarted,WorkflowExecutionSignaled,WorkflowTaskScheduled,"
                        "WorkflowExecutionSignaled");
    th_free(h);
}

static void test_signal_rules(void **state) {
    (void)state;
    th *h = th_up();
    assert_int_equal(th_signal(h, "nobody", "s", "r0"), WEFT_E_NOT_FOUND);
    assert_non_null(strstr(h->reply.err.message, "nobody"));
    th_start(h, "w");
    assert_int_equal(th_signal(h, "w", "s", "r1"), 0);
    assert_int_equal(th_signal(h, "w", "s", "r1"), 0); /* dedup: no second event */
    assert_string_equal(th_types(h, "w", ""),
                        "WorkflowExecutionStarted,WorkflowTaskScheduled,WorkflowExecutionSignaled");
    /* Past the shard dedup TTL the run still remembers the id (G7). */
    th_advance(h, h->limits.dedup_ttl_ms + 1);
    assert_int_equal(th_signal(h, "w", "s", "r1"), 0);
    weft_describe_resp d;
    th_describe(h, "w", &d);
    assert_int_equal(d.info.history_length, 3);
    assert_int_equal(close_req(h, WEFT_MSG_TERMINATE_WORKFLOW, "w", "t1"), 0);
    assert_int_equal(th_signal(h, "w", "s", "r2"), WEFT_E_FAILED_PRECONDITION);
    assert_non_null(strstr(h->reply.err.message, "closed"));
    th_free(h);
}

static void test_cancel_terminate(void **state) {
    (void)state;
    th *h = th_up();
    th_start(h, "c");
    weft_poll_wft_resp wt;
    assert_int_equal(th_poll_wft(h, "q", &wt), 0);
    weft_command cmds[2] = {th_cmd_activity("a", "t"), th_cmd_timer("t", 100000)};
    assert_int_equal(th_complete_wft(h, wt.task_token, cmds, 2, NULL), 0);
    assert_int_equal(close_req(h, WEFT_MSG_CANCEL_WORKFLOW, "c", "c1"), 0);
    assert_int_equal(close_req(h, WEFT_MSG_CANCEL_WORKFLOW, "c", "c2"), 0); /* once only */
    assert_int_equal(close_req(h, WEFT_MSG_CANCEL_WORKFLOW, "c", "c1"), 0); /* dedup */
    assert_string_equal(th_types(h, "c", ""),
                        "WorkflowExecutionStarted,WorkflowTaskScheduled,WorkflowTaskStarted,"
                        "WorkflowTaskCompleted,ActivityTaskScheduled,TimerStarted,"
                        "WorkflowExecutionCancelRequested,WorkflowTaskScheduled");
    weft_describe_resp d;
    th_describe(h, "c", &d);
    assert_true(d.info.cancel_requested);
    /* The code decides: it cancels the workflow. */
    assert_int_equal(th_poll_wft(h, "q", &wt), 0);
    weft_command cw = {.type = WEFT_CMD_CANCEL_WORKFLOW};
    assert_int_equal(th_complete_wft(h, wt.task_token, &cw, 1, NULL), 0);
    th_describe(h, "c", &d);
    assert_int_equal(d.info.status, WEFT_STATUS_CANCELED);
    assert_int_equal(d.pending_activities_count, 0); /* dropped with the run */
    assert_int_equal(d.pending_timers_count, 0);
    weft_poll_activity_resp ar;
    assert_int_equal(th_poll_act(h, "q", &ar), -1);
    assert_int_equal(th_advance(h, 100000) >= 1, true); /* the timer row is stale: no-op */
    assert_int_equal(close_req(h, WEFT_MSG_CANCEL_WORKFLOW, "c", "c3"), WEFT_E_FAILED_PRECONDITION);

    /* Terminate closes at once, with a task in flight: its Started gets an outcome. */
    th_start(h, "t");
    assert_int_equal(th_poll_wft(h, "q", &wt), 0);
    assert_int_equal(th_signal(h, "t", "s", "s1"), 0);
    assert_int_equal(close_req(h, WEFT_MSG_TERMINATE_WORKFLOW, "t", "t1"), 0);
    assert_string_equal(th_types(h, "t", ""),
                        "WorkflowExecutionStarted,WorkflowTaskScheduled,WorkflowTaskStarted,"
                        "WorkflowTaskFailed,WorkflowExecutionSignaled,WorkflowExecutionTerminated");
    assert_int_equal(close_req(h, WEFT_MSG_TERMINATE_WORKFLOW, "t", "t1"), 0); /* G4 */
    assert_int_equal(close_req(h, WEFT_MSG_TERMINATE_WORKFLOW, "t", "t2"),
                     WEFT_E_FAILED_PRECONDITION);
    assert_int_equal(th_complete_wft(h, wt.task_token, NULL, 0, NULL), WEFT_E_NOT_FOUND);
    weft_result_req rr = {.workflow_id = WEFT_STR_LIT("t")};
    weft_result_resp res;
    assert_int_equal(th_read(h, WEFT_MSG_GET_RESULT, &weft_result_req_schema, &rr,
                             &weft_result_resp_schema, &res, false, NULL),
                     0);
    assert_int_equal(res.status, WEFT_STATUS_TERMINATED);
    assert_true(weft_str_eq_c(res.failure.message, "because"));
    th_free(h);
}

static void test_timeouts(void **state) {
    (void)state;
    th *h = th_up();
    weft_start_req req = th_start_req("r");
    req.workflow_run_timeout_ms = 5000;
    weft_start_resp r;
    assert_int_equal(start(h, &req, &r), 0);
    assert_int_equal(th_advance(h, 4999), 0);
    th_advance(h, 1);
    weft_describe_resp d;
    th_describe(h, "r", &d);
    assert_int_equal(d.info.status, WEFT_STATUS_TIMED_OUT);
    weft_event *evs = NULL;
    uint32_t n = th_history(h, "r", "", &evs);
    assert_int_equal(evs[n - 1].event_type, WEFT_EV_WORKFLOW_EXECUTION_TIMED_OUT);
    assert_true(weft_str_eq_c(evs[n - 1].failure.type, "Timeout:run"));

    /* The execution timeout spans continue-as-new. */
    weft_start_req ex = th_start_req("e");
    ex.workflow_execution_timeout_ms = 10000;
    assert_int_equal(start(h, &ex, &r), 0);
    char first[64];
    weft_str_copy(first, sizeof first, r.run_id);
    th_advance(h, 6000);
    finish(h, (weft_command){.type = WEFT_CMD_CONTINUE_AS_NEW});
    th_describe(h, "e", &d);
    assert_int_equal(d.info.status, WEFT_STATUS_RUNNING);
    assert_true(weft_str_eq_c(d.info.first_run_id, first));
    assert_int_equal(th_advance(h, 3999), 0);
    th_advance(h, 1);
    th_describe(h, "e", &d);
    assert_int_equal(d.info.status, WEFT_STATUS_TIMED_OUT);
    th_free(h);
}

static void test_continue_as_new(void **state) {
    (void)state;
    th *h = th_up();
    const char *run = th_start(h, "c");
    char first[64];
    snprintf(first, sizeof first, "%s", run);
    weft_command can = {.type = WEFT_CMD_CONTINUE_AS_NEW,
                        .input = {.ptr = (const uint8_t *)"next", .len = 4},
                        .workflow_type = WEFT_STR_LIT("order-v2")};
    finish(h, can);
    weft_event *evs = NULL;
    uint32_t n = th_history(h, "c", first, &evs);
    assert_int_equal(evs[n - 1].event_type, WEFT_EV_WORKFLOW_EXECUTION_CONTINUED_AS_NEW);
    char next[64];
    weft_str_copy(next, sizeof next, evs[n - 1].continued_run_id);
    /* Derived, and shaped like a leader's random run id: 32 lowercase hex digits. */
    assert_int_equal(strlen(next), 32);
    assert_int_equal(strspn(next, "0123456789abcdef"), 32);
    weft_describe_resp d;
    th_describe(h, "c", &d);
    assert_true(weft_str_eq_c(d.info.run_id, next));
    assert_true(weft_str_eq_c(d.info.continued_from_run_id, first));
    assert_true(weft_str_eq_c(d.info.workflow_type, "order-v2"));
    n = th_history(h, "c", next, &evs);
    assert_true(weft_str_eq_c(evs[0].continued_run_id, first));
    assert_memory_equal(evs[0].input.ptr, "next", 4);
    /* GetResult follows the chain when asked. */
    finish(h, th_cmd_complete("final"));
    weft_result_req rr = {.workflow_id = WEFT_STR_LIT("c"), .run_id = weft_str_c(first)};
    weft_result_resp res;
    assert_int_equal(th_read(h, WEFT_MSG_GET_RESULT, &weft_result_req_schema, &rr,
                             &weft_result_resp_schema, &res, false, NULL),
                     0);
    assert_int_equal(res.status, WEFT_STATUS_CONTINUED);
    assert_true(weft_str_eq_c(res.continued_run_id, next));
    rr.follow_runs = true;
    assert_int_equal(th_read(h, WEFT_MSG_GET_RESULT, &weft_result_req_schema, &rr,
                             &weft_result_resp_schema, &res, false, NULL),
                     0);
    assert_int_equal(res.status, WEFT_STATUS_COMPLETED);
    assert_memory_equal(res.result.ptr, "final", 5);
    assert_true(weft_str_eq_c(res.run_id, next));
    th_free(h);
}

static void test_retention(void **state) {
    (void)state;
    th *h = th_up();
    const char *run = th_start(h, "gone");
    char first[64];
    snprintf(first, sizeof first, "%s", run);
    finish(h, th_cmd_complete("x"));
    th_advance(h, h->limits.retention_ms - 1);
    weft_describe_resp d;
    th_describe(h, "gone", &d);
    assert_int_equal(d.info.status, WEFT_STATUS_COMPLETED);
    th_advance(h, 1);
    weft_describe_req req = {.workflow_id = WEFT_STR_LIT("gone")};
    assert_int_equal(th_read(h, WEFT_MSG_DESCRIBE_WORKFLOW, &weft_describe_req_schema, &req,
                             &weft_describe_resp_schema, &d, false, NULL),
                     WEFT_E_NOT_FOUND);
    weft_history_req hr = {.workflow_id = WEFT_STR_LIT("gone"), .run_id = weft_str_c(first)};
    weft_history_resp hist;
    assert_int_equal(th_read(h, WEFT_MSG_GET_HISTORY, &weft_history_req_schema, &hr,
                             &weft_history_resp_schema, &hist, false, NULL),
                     WEFT_E_NOT_FOUND);
    weft_list_req lr = {0};
    weft_count_resp cnt;
    assert_int_equal(th_read(h, WEFT_MSG_COUNT_WORKFLOWS, &weft_list_req_schema, &lr,
                             &weft_count_resp_schema, &cnt, false, NULL),
                     0);
    assert_int_equal(cnt.count, 0);
    /* The id is free again, whatever the reuse policy. */
    weft_start_req again = th_start_req("gone");
    again.id_reuse_policy = WEFT_REUSE_REJECT;
    weft_start_resp r;
    assert_int_equal(start(h, &again, &r), 0);
    th_free(h);
}

/* Signal request ids remembered per run are bounded: past the limit a signal is refused
 * with the limit's name (Temporal's signals-per-execution limit). */
static void test_signal_limit(void **state) {
    (void)state;
    th *h = calloc(1, sizeof *h);
    th_init(h);
    h->limits.signal_dedup_per_run_max = 2;
    th_open(h);
    th_start(h, "w");
    assert_int_equal(th_signal(h, "w", "s", "a"), 0);
    assert_int_equal(th_signal(h, "w", "s", "b"), 0);
    assert_int_equal(th_signal(h, "w", "s", "a"), 0); /* a duplicate is still fine */
    assert_int_equal(th_signal(h, "w", "s", "c"), WEFT_E_RESOURCE_EXHAUSTED);
    assert_non_null(strstr(h->reply.err.message, "signal_dedup_per_run_max=2"));
    assert_int_equal(th_signal(h, "w", "s", ""), 0); /* no request id: no dedup, no count */
    th_free(h);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_start_dedup),
        cmocka_unit_test(test_conflict_policies),
        cmocka_unit_test(test_reuse_policies),
        cmocka_unit_test(test_signal_with_start),
        cmocka_unit_test(test_start_retry_first_outcome),
        cmocka_unit_test(test_signal_rules),
        cmocka_unit_test(test_cancel_terminate),
        cmocka_unit_test(test_timeouts),
        cmocka_unit_test(test_continue_as_new),
        cmocka_unit_test(test_retention),
        cmocka_unit_test(test_signal_limit),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
