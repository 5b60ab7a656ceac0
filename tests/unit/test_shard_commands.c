/* test_shard_commands.c: validation of workflow task commands (DESIGN section 7): every
 * command type's field rules with errors naming "commands[i].field", all-or-nothing, the
 * close-command-last rule, duplicate ids, and the per-run limits (set small here). */
#include "test_shard_harness.h"

static th *h_up(weft_limits *overrides) {
    th *h = calloc(1, sizeof *h);
    th_init(h);
    if (overrides != NULL) h->limits = *overrides;
    th_open(h);
    return h;
}

static void h_down(th *h) {
    th_close(h);
    free(h);
}

/* The next workflow task of "w", waiting out any retry backoff. */
static void next_task(th *h, weft_poll_wft_resp *wt) {
    for (int i = 0; i < 3; i++) {
        if (th_poll_wft(h, "q", wt) == 0) return;
        th_advance(h, WEFT_WFT_RETRY_MAX_MS);
    }
    fail_msg("no workflow task");
}

typedef struct bad_case {
    const char *name;
    weft_command cmds[3];
    uint32_t n;
    int code;
    const char *field;
    const char *fragment;
} bad_case;

#define ACT(id_, type_) {.type = WEFT_CMD_SCHEDULE_ACTIVITY, .activity_id = WEFT_STR_LIT(id_), \
                         .activity_type = WEFT_STR_LIT(type_), .start_to_close_timeout_ms = 1000}
#define TIMER(id_) {.type = WEFT_CMD_START_TIMER, .timer_id = WEFT_STR_LIT(id_), \
                   .start_to_fire_timeout_ms = 1000}

static const bad_case bad_cases[] = {
    {"activity without id", {{.type = WEFT_CMD_SCHEDULE_ACTIVITY, .activity_type = WEFT_STR_LIT("t"),
                              .start_to_close_timeout_ms = 1}}, 1,
     WEFT_E_INVALID_ARGUMENT, "commands[0].activity_id", "ScheduleActivity needs activity_id"},
    {"activity without type", {{.type = WEFT_CMD_SCHEDULE_ACTIVITY, .activity_id = WEFT_STR_LIT("a"),
                                .start_to_close_timeout_ms = 1}}, 1,
     WEFT_E_INVALID_ARGUMENT, "commands[0].activity_type", "needs activity_type"},
    {"activity without timeouts", {{.type = WEFT_CMD_SCHEDULE_ACTIVITY, .activity_id = WEFT_STR_LIT("a"),
                                    .activity_type = WEFT_STR_LIT("t")}}, 1,
     WEFT_E_INVALID_ARGUMENT, "commands[0].start_to_close_timeout_ms", "schedule_to_close"},
    {"activity with coefficient below 1",
     {{.type = WEFT_CMD_SCHEDULE_ACTIVITY, .activity_id = WEFT_STR_LIT("a"),
       .activity_type = WEFT_STR_LIT("t"), .start_to_close_timeout_ms = 1,
       .retry_policy = {.backoff_coefficient = 0.5}}}, 1,
     WEFT_E_INVALID_ARGUMENT, "commands[0].retry_policy", "backoff_coefficient"},
    {"activity with maximum below initial",
     {{.type = WEFT_CMD_SCHEDULE_ACTIVITY, .activity_id = WEFT_STR_LIT("a"),
       .activity_type = WEFT_STR_LIT("t"), .start_to_close_timeout_ms = 1,
       .retry_policy = {.initial_interval_ms = 100, .maximum_interval_ms = 10}}}, 1,
     WEFT_E_INVALID_ARGUMENT, "commands[0].retry_policy", "maximum_interval_ms"},
    {"activity id twice", {ACT("a", "t"), ACT("a", "t")}, 2,
     WEFT_E_INVALID_ARGUMENT, "commands[1].activity_id", "already used"},
    {"cancel without id", {{.type = WEFT_CMD_REQUEST_CANCEL_ACTIVITY}}, 1,
     WEFT_E_INVALID_ARGUMENT, "commands[0].scheduled_event_id", "RequestCancelActivity needs"},
    {"cancel of an unknown activity", {{.type = WEFT_CMD_REQUEST_CANCEL_ACTIVITY,
                                        .scheduled_event_id = 99}}, 1,
     WEFT_E_INVALID_ARGUMENT, "commands[0].scheduled_event_id", "no pending activity"},
    {"timer without id (brief's example)", {TIMER("x"), ACT("b", "t"),
                                            {.type = WEFT_CMD_START_TIMER, .start_to_fire_timeout_ms = 5}}, 3,
     WEFT_E_INVALID_ARGUMENT, "commands[2].timer_id", "commands[2]: StartTimer needs timer_id"},
    {"timer without duration", {{.type = WEFT_CMD_START_TIMER, .timer_id = WEFT_STR_LIT("t")}}, 1,
     WEFT_E_INVALID_ARGUMENT, "commands[0].start_to_fire_timeout_ms", "> 0"},
    {"timer far beyond any clock", {{.type = WEFT_CMD_START_TIMER, .timer_id = WEFT_STR_LIT("t"),
                                     .start_to_fire_timeout_ms = UINT64_MAX}}, 1,
     WEFT_E_INVALID_ARGUMENT, "commands[0].start_to_fire_timeout_ms", "100 years"},
    {"activity retry interval beyond any clock",
     {{.type = WEFT_CMD_SCHEDULE_ACTIVITY, .activity_id = WEFT_STR_LIT("a"),
       .activity_type = WEFT_STR_LIT("t"), .start_to_close_timeout_ms = 1,
       .retry_policy = {.maximum_interval_ms = UINT64_MAX}}}, 1,
     WEFT_E_INVALID_ARGUMENT, "commands[0].retry_policy.maximum_interval_ms", "100 years"},
    {"timer id twice", {TIMER("t"), TIMER("t")}, 2,
     WEFT_E_INVALID_ARGUMENT, "commands[1].timer_id", "already used"},
    {"cancel of an unknown timer", {{.type = WEFT_CMD_CANCEL_TIMER, .timer_id = WEFT_STR_LIT("nope")}}, 1,
     WEFT_E_INVALID_ARGUMENT, "commands[0].timer_id", "no pending timer"},
    {"cancel timer without id", {{.type = WEFT_CMD_CANCEL_TIMER}}, 1,
     WEFT_E_INVALID_ARGUMENT, "commands[0].timer_id", "CancelTimer needs timer_id"},
    {"marker without name", {{.type = WEFT_CMD_RECORD_MARKER}}, 1,
     WEFT_E_INVALID_ARGUMENT, "commands[0].marker_name", "RecordMarker needs marker_name"},
    {"unspecified type", {{.type = WEFT_CMD_UNSPECIFIED}}, 1,
     WEFT_E_INVALID_ARGUMENT, "commands[0].type", "is required"},
    {"complete not last", {{.type = WEFT_CMD_COMPLETE_WORKFLOW}, TIMER("t")}, 2,
     WEFT_E_INVALID_ARGUMENT, "commands[0].type", "must be the last command"},
    {"fail not last", {{.type = WEFT_CMD_FAIL_WORKFLOW}, {.type = WEFT_CMD_COMPLETE_WORKFLOW}}, 2,
     WEFT_E_INVALID_ARGUMENT, "commands[0].type", "FailWorkflow closes the workflow"},
    {"continue-as-new not last", {{.type = WEFT_CMD_CONTINUE_AS_NEW}, TIMER("t")}, 2,
     WEFT_E_INVALID_ARGUMENT, "commands[0].type", "ContinueAsNew"},
    {"cancel-workflow not last", {{.type = WEFT_CMD_CANCEL_WORKFLOW}, TIMER("t")}, 2,
     WEFT_E_INVALID_ARGUMENT, "commands[0].type", "CancelWorkflow"},
};

/* Each bad batch is refused with the named field, applies none of its commands (even the
 * valid ones before the bad one), and fails the task so it is retried. */
static void test_each_rule(void **state) {
    (void)state;
    th *h = h_up(NULL);
    th_start(h, "w");
    weft_poll_wft_resp wt;
    next_task(h, &wt);
    for (size_t i = 0; i < sizeof bad_cases / sizeof bad_cases[0]; i++) {
        const bad_case *bc = &bad_cases[i];
        weft_command cmds[3];
        memcpy(cmds, bc->cmds, sizeof cmds);
        int code = th_complete_wft(h, wt.task_token, cmds, bc->n, NULL);
        if (code != bc->code || strcmp(h->reply.err.field, bc->field) != 0 ||
            strstr(h->reply.err.message, bc->fragment) == NULL) {
            fail_msg("case '%s': got %d field '%s' message '%s'", bc->name, code,
                     h->reply.err.field, h->reply.err.message);
        }
        next_task(h, &wt);
    }
    /* All or nothing: no command event was ever written; only the first failure is. */
    assert_string_equal(th_types(h, "w", ""),
                        "WorkflowExecutionStarted,WorkflowTaskScheduled,WorkflowTaskStarted,"
                        "WorkflowTaskFailed");
    weft_event *evs = NULL;
    th_history(h, "w", "", &evs);
    assert_true(weft_str_eq_c(evs[3].cause, "BAD_COMMAND"));
    weft_describe_resp d;
    th_describe(h, "w", &d);
    assert_int_equal(d.workflow_task_failures, WEFT_ARRAY_LEN(bad_cases));
    assert_int_equal(d.pending_activities_count, 0);
    assert_int_equal(d.pending_timers_count, 0);
    /* A good batch still works after all that. */
    weft_command ok[2] = {th_cmd_activity("a", "t"), th_cmd_timer("t", 100)};
    assert_int_equal(th_complete_wft(h, wt.task_token, ok, 2, NULL), 0);
    th_describe(h, "w", &d);
    assert_int_equal(d.pending_activities_count, 1);
    assert_int_equal(d.pending_timers_count, 1);
    assert_int_equal(d.workflow_task_failures, 0);
    h_down(h);
}

/* Ids must not collide with pending ones; they may be reused once free. */
static void test_pending_ids(void **state) {
    (void)state;
    th *h = h_up(NULL);
    th_start(h, "w");
    weft_poll_wft_resp wt;
    next_task(h, &wt);
    weft_command first[2] = {th_cmd_activity("a", "t"), th_cmd_timer("t", 3600000)};
    assert_int_equal(th_complete_wft(h, wt.task_token, first, 2, NULL), 0);
    assert_int_equal(th_signal(h, "w", "s", "r1"), 0);
    next_task(h, &wt);
    weft_command again = th_cmd_activity("a", "t");
    assert_int_equal(th_complete_wft(h, wt.task_token, &again, 1, NULL), WEFT_E_INVALID_ARGUMENT);
    assert_string_equal(h->reply.err.field, "commands[0].activity_id");
    next_task(h, &wt);
    weft_command t2 = th_cmd_timer("t", 5);
    assert_int_equal(th_complete_wft(h, wt.task_token, &t2, 1, NULL), WEFT_E_INVALID_ARGUMENT);
    next_task(h, &wt);
    /* Cancel the timer and start another in one task. */
    weft_command swap[2] = {{.type = WEFT_CMD_CANCEL_TIMER, .timer_id = WEFT_STR_LIT("t")},
                            th_cmd_timer("t2", 5)};
    assert_int_equal(th_complete_wft(h, wt.task_token, swap, 2, NULL), 0);
    const char *types = th_types(h, "w", "");
    assert_non_null(strstr(types, "TimerCanceled,TimerStarted"));
    h_down(h);
}

static void test_limits(void **state) {
    (void)state;
    weft_limits l;
    weft_limits_default(&l);
    l.pending_activities_max = 2;
    l.pending_timers_max = 1;
    l.commands_per_task_max = 3;
    th *h = h_up(&l);
    th_start(h, "w");
    weft_poll_wft_resp wt;
    next_task(h, &wt);
    weft_command acts[3] = {th_cmd_activity("a", "t"), th_cmd_activity("b", "t"),
                            th_cmd_activity("c", "t")};
    assert_int_equal(th_complete_wft(h, wt.task_token, acts, 3, NULL), WEFT_E_RESOURCE_EXHAUSTED);
    assert_string_equal(h->reply.err.field, "commands[2]");
    assert_non_null(strstr(h->reply.err.message, "pending_activities_max=2"));
    next_task(h, &wt);
    weft_command timers[2] = {th_cmd_timer("x", 10), th_cmd_timer("y", 10)};
    assert_int_equal(th_complete_wft(h, wt.task_token, timers, 2, NULL), WEFT_E_RESOURCE_EXHAUSTED);
    assert_non_null(strstr(h->reply.err.message, "pending_timers_max=1"));
    next_task(h, &wt);
    weft_command many[4] = {th_cmd_timer("x", 10), th_cmd_activity("a", "t"),
                            th_cmd_activity("b", "t"), th_cmd_complete("r")};
    assert_int_equal(th_complete_wft(h, wt.task_token, many, 4, NULL), WEFT_E_RESOURCE_EXHAUSTED);
    assert_string_equal(h->reply.err.field, "commands");
    assert_non_null(strstr(h->reply.err.message, "commands_per_task_max=3"));
    next_task(h, &wt);
    /* Exactly at the limits is fine. */
    weft_command fit[3] = {th_cmd_timer("x", 10), th_cmd_activity("a", "t"),
                           th_cmd_activity("b", "t")};
    assert_int_equal(th_complete_wft(h, wt.task_token, fit, 3, NULL), 0);
    h_down(h);
}

/* A full history refuses growth and says ContinueAsNew; closing commands still work. */
static void test_history_limit(void **state) {
    (void)state;
    weft_limits l;
    weft_limits_default(&l);
    l.history_events_max = 6;
    th *h = h_up(&l);
    th_start(h, "w");
    weft_poll_wft_resp wt;
    next_task(h, &wt);
    weft_command t = th_cmd_timer("x", 10);
    assert_int_equal(th_complete_wft(h, wt.task_token, &t, 1, NULL), 0); /* 5 events */
    assert_int_equal(th_signal(h, "w", "s", "r1"), 0);                   /* 7 events */
    assert_int_equal(th_signal(h, "w", "s", "r2"), WEFT_E_RESOURCE_EXHAUSTED);
    assert_non_null(strstr(h->reply.err.message, "history_events_max=6"));
    assert_non_null(strstr(h->reply.err.message, "ContinueAsNew"));
    next_task(h, &wt);
    weft_command more = th_cmd_timer("y", 10);
    assert_int_equal(th_complete_wft(h, wt.task_token, &more, 1, NULL), WEFT_E_RESOURCE_EXHAUSTED);
    assert_string_equal(h->reply.err.field, "commands");
    next_task(h, &wt);
    weft_command can = {.type = WEFT_CMD_CONTINUE_AS_NEW};
    assert_int_equal(th_complete_wft(h, wt.task_token, &can, 1, NULL), 0);
    weft_describe_resp d;
    th_describe(h, "w", &d);
    assert_int_equal(d.info.status, WEFT_STATUS_RUNNING); /* the new run */
    assert_int_equal(d.info.history_length, 2);
    h_down(h);
}

/* Requests refused before they reach the log name their field (weft_shard_client_cmd). */
static void test_request_validation(void **state) {
    (void)state;
    th *h = h_up(NULL);
    weft_start_req s = th_start_req("w");
    s.task_queue = (weft_str){0};
    assert_int_equal(th_request(h, WEFT_MSG_START_WORKFLOW, &s), WEFT_E_INVALID_ARGUMENT);
    assert_string_equal(h->reply.err.field, "task_queue");
    weft_start_req huge = th_start_req("w");
    huge.workflow_run_timeout_ms = UINT64_MAX - 5;
    assert_int_equal(th_request(h, WEFT_MSG_START_WORKFLOW, &huge), WEFT_E_INVALID_ARGUMENT);
    assert_string_equal(h->reply.err.field, "workflow_run_timeout_ms");
    weft_start_req sws = th_start_req("w");
    assert_int_equal(th_request(h, WEFT_MSG_SIGNAL_WITH_START, &sws), WEFT_E_INVALID_ARGUMENT);
    assert_string_equal(h->reply.err.field, "signal_name");
    weft_signal_req sig = {.workflow_id = WEFT_STR_LIT("w")};
    assert_int_equal(th_request(h, WEFT_MSG_SIGNAL_WORKFLOW, &sig), WEFT_E_INVALID_ARGUMENT);
    assert_string_equal(h->reply.err.field, "signal_name");
    weft_close_req cl = {.reason = WEFT_STR_LIT("r")};
    assert_int_equal(th_request(h, WEFT_MSG_TERMINATE_WORKFLOW, &cl), WEFT_E_INVALID_ARGUMENT);
    assert_string_equal(h->reply.err.field, "workflow_id");
    assert_int_equal(th_request(h, WEFT_MSG_CANCEL_WORKFLOW, &cl), WEFT_E_INVALID_ARGUMENT);
    weft_fail_wft_req fw = {.task_token = {.ptr = (const uint8_t *)"zz", .len = 2}};
    assert_int_equal(th_request(h, WEFT_MSG_FAIL_WORKFLOW_TASK, &fw), WEFT_E_INVALID_ARGUMENT);
    assert_string_equal(h->reply.err.field, "task_token");
    weft_activity_req ar = {.identity = WEFT_STR_LIT("x")};
    assert_int_equal(th_request(h, WEFT_MSG_HEARTBEAT_ACTIVITY, &ar), WEFT_E_INVALID_ARGUMENT);
    assert_string_equal(h->reply.err.field, "task_token");
    /* A token of another shard is refused with where to send it. */
    weft_task_token other = {.shard_id = 3, .run_key = 1, .scheduled_event_id = 2, .attempt = 1,
                             .kind = WEFT_TASK_KIND_ACTIVITY};
    uint8_t *tb = NULL;
    size_t tl = 0;
    assert_int_equal(weft_task_token_encode(&other, &tb, &tl), 0);
    ar.task_token = (weft_bytes){.ptr = tb, .len = (uint32_t)tl};
    assert_int_equal(th_request(h, WEFT_MSG_COMPLETE_ACTIVITY, &ar), WEFT_E_INVALID_ARGUMENT);
    assert_non_null(strstr(h->reply.err.message, "shard 3"));
    free(tb);
    /* A request type that is not a shard write. */
    uint8_t *cmd = NULL;
    size_t cl2 = 0;
    weft_err err;
    assert_int_equal(weft_shard_client_cmd(h->s, WEFT_MSG_DESCRIBE_WORKFLOW, (const uint8_t *)"\x80",
                                           1, (weft_str){0}, &cmd, &cl2, &err),
                     -WEFT_E_INVALID_ARGUMENT);
    h_down(h);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_each_rule),
        cmocka_unit_test(test_pending_ids),
        cmocka_unit_test(test_limits),
        cmocka_unit_test(test_history_limit),
        cmocka_unit_test(test_request_validation),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
