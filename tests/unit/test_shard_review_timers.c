/* test_shard_review_timers.c: deadlines that must not fire early (G6) when an attempt is put
 * back on its queue (TASK_REQUEUE, DESIGN section 8) and started again under the same token:
 * the rows armed for the first start must not time out the second one. Also deadlines built
 * from limits the config may set to their maximum (section 7, "Limits"), which must not wrap
 * the shard clock. */
#include "test_shard_harness.h"

static void requeue(th *h, weft_bytes token) {
    weft_shard_cmd rq = {.type = WEFT_SC_TASK_REQUEUE, .task_token = token};
    uint8_t *cmd = NULL;
    size_t len = 0;
    assert_int_equal(weft_schema_encode_buf(&weft_shard_cmd_schema, &rq, &cmd, &len), 0);
    assert_int_equal(th_apply(h, cmd, len), 0);
    free(cmd);
}

/* Starts "w" and completes its first task with one activity `a`. */
static void run_with_activity(th *h, const weft_command *a) {
    th_start(h, "w");
    weft_poll_wft_resp wt;
    assert_int_equal(th_poll_wft(h, "q", &wt), 0);
    assert_int_equal(th_complete_wft(h, wt.task_token, (weft_command *)a, 1, NULL), 0);
}

/* Decoded strings are not NUL-terminated. */
static void assert_str(weft_str got, const char *want) {
    if (!weft_str_eq(got, weft_str_c(want))) {
        fail_msg("got '%.*s', want '%s'", (int)got.len, got.ptr, want);
    }
}

static const weft_pending_activity *the_activity(th *h) {
    weft_describe_resp d;
    th_describe(h, "w", &d);
    assert_int_equal(d.pending_activities_count, 1);
    return &d.pending_activities[0];
}

/* Started at T0, requeued at T0+5s, started again at T0+6s with start_to_close 10 s: the
 * attempt may not time out before T0+16s. */
static void test_activity_requeue_start_to_close(void **state) {
    (void)state;
    th *h = th_new();
    th_open(h);
    weft_command a = th_cmd_activity("a", "t"); /* start_to_close 10 s */
    run_with_activity(h, &a);
    weft_poll_activity_resp r;
    assert_int_equal(th_poll_act(h, "q", &r), 0);
    th_advance(h, 5000);
    requeue(h, r.task_token);
    th_advance(h, 1000);
    assert_int_equal(th_poll_act(h, "q", &r), 0);
    assert_int_equal(r.attempt, 1);
    /* T0+10s: only 4 s into the second start. */
    th_advance(h, 4000);
    const weft_pending_activity *p = the_activity(h);
    assert_str(p->state, "started");
    assert_int_equal(p->attempt, 1);
    /* The worker's result for that start still counts. */
    th_advance(h, 5999);
    assert_str(the_activity(h)->state, "started");
    /* T0+16s: now it has had its 10 s. */
    th_advance(h, 1);
    p = the_activity(h);
    assert_str(p->state, "backoff");
    assert_int_equal(p->attempt, 2);
    th_free(h);
}

/* Scheduled at T0 with schedule_to_start 3 s, started at T0+2s, requeued at T0+2.5s: back on the
 * queue it gets a fresh schedule-to-start window (the row armed at requeue says so), so the
 * row armed at T0 may not time it out at T0+3s. */
static void test_activity_requeue_schedule_to_start(void **state) {
    (void)state;
    th *h = th_new();
    th_open(h);
    weft_command a = th_cmd_activity("a", "t");
    a.schedule_to_start_timeout_ms = 3000;
    run_with_activity(h, &a);
    th_advance(h, 2000);
    weft_poll_activity_resp r;
    assert_int_equal(th_poll_act(h, "q", &r), 0);
    th_advance(h, 500);
    requeue(h, r.task_token);
    th_advance(h, 500); /* T0+3s */
    const weft_pending_activity *p = the_activity(h);
    assert_str(p->state, "scheduled");
    assert_int_equal(p->attempt, 1);
    assert_int_equal(th_poll_act(h, "q", &r), 0);
    assert_int_equal(th_act(h, WEFT_MSG_COMPLETE_ACTIVITY, r.task_token, "ok", NULL), 0);
    th_free(h);
}

/* The fresh window itself still holds: nobody polls, and it times out 3 s after the requeue. */
static void test_activity_requeue_schedule_to_start_fires(void **state) {
    (void)state;
    th *h = th_new();
    th_open(h);
    weft_command a = th_cmd_activity("a", "t");
    a.schedule_to_start_timeout_ms = 3000;
    run_with_activity(h, &a);
    weft_poll_activity_resp r;
    assert_int_equal(th_poll_act(h, "q", &r), 0);
    th_advance(h, 1000);
    requeue(h, r.task_token);
    th_advance(h, 2999);
    assert_str(the_activity(h)->state, "scheduled");
    th_advance(h, 1);
    weft_describe_resp d;
    th_describe(h, "w", &d);
    assert_int_equal(d.pending_activities_count, 0); /* timed out: schedule-to-start is final */
    th_free(h);
}

/* A transient (retry) workflow task requeued and started again keeps its full task timeout. */
static void test_wft_transient_requeue_task_timeout(void **state) {
    (void)state;
    th *h = th_new();
    th_open(h);
    th_start(h, "w");
    weft_poll_wft_resp wt;
    assert_int_equal(th_poll_wft(h, "q", &wt), 0);
    assert_int_equal(th_fail_wft(h, wt.task_token, "boom"), 0);
    th_advance(h, 1000);
    assert_int_equal(th_poll_wft(h, "q", &wt), 0); /* T1: transient attempt 2 started */
    assert_int_equal(wt.attempt, 2);
    th_advance(h, 2000);
    requeue(h, wt.task_token);
    th_advance(h, 1000);
    assert_int_equal(th_poll_wft(h, "q", &wt), 0); /* T1+3s: started again */
    assert_int_equal(wt.attempt, 2);
    th_advance(h, 7000); /* T1+10s: 7 s into the default 10 s task timeout */
    weft_describe_resp d;
    th_describe(h, "w", &d);
    assert_str(d.workflow_task_state, "started");
    assert_int_equal(d.workflow_task_attempt, 2);
    assert_int_equal(d.workflow_task_failures, 1);
    /* The worker can still complete it. */
    assert_int_equal(th_complete_wft(h, wt.task_token, NULL, 0, NULL), 0);
    th_free(h);
}

/* retention-ms and dedup-ttl-ms accept any u64 in the config (node/config.c): "keep forever".
 * The deadline must saturate, not wrap below the shard clock. */
static void test_unbounded_retention_and_dedup_ttl(void **state) {
    (void)state;
    th *h = th_new();
    h->limits.retention_ms = UINT64_MAX;
    h->limits.dedup_ttl_ms = UINT64_MAX;
    th_open(h);
    weft_start_req req = th_start_req("w");
    req.request_id = WEFT_STR_LIT("start-1");
    assert_int_equal(th_request(h, WEFT_MSG_START_WORKFLOW, &req), 0);
    weft_close_req term = {.workflow_id = WEFT_STR_LIT("w"), .request_id = WEFT_STR_LIT("t-1")};
    assert_int_equal(th_request(h, WEFT_MSG_TERMINATE_WORKFLOW, &term), 0);
    th_advance(h, 365ull * 24 * 3600 * 1000);
    weft_describe_resp d;
    th_describe(h, "w", &d); /* still there: never deleted */
    assert_int_equal(d.info.status, WEFT_STATUS_TERMINATED);
    /* The start is still deduplicated: the same answer as the first (G4), no new run. */
    assert_int_equal(th_request(h, WEFT_MSG_START_WORKFLOW, &req), 0);
    weft_start_resp resp;
    th_decode(h, &weft_start_resp_schema, h->reply.body, h->reply.body_len, &resp);
    assert_true(resp.started);
    th_describe(h, "w", &d);
    assert_int_equal(d.info.status, WEFT_STATUS_TERMINATED);
    th_free(h);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_activity_requeue_start_to_close),
        cmocka_unit_test(test_activity_requeue_schedule_to_start),
        cmocka_unit_test(test_activity_requeue_schedule_to_start_fires),
        cmocka_unit_test(test_wft_transient_requeue_task_timeout),
        cmocka_unit_test(test_unbounded_retention_and_dedup_ttl),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
