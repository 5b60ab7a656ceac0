/* test_shard_reads.c: reads (describe, history paging and waits, result waits, list/count
 * filters and paging), the timer gate (never early, duplicate fires, the shard clock), the
 * dispatch FIFOs across leadership changes, and snapshot/restore. */
#include "test_shard_harness.h"

#include "storage/keys.h"

static int list(th *h, weft_list_req *req, weft_list_resp *resp) {
    return th_read(h, WEFT_MSG_LIST_WORKFLOWS, &weft_list_req_schema, req, &weft_list_resp_schema,
                   resp, false, NULL);
}

static uint64_t count(th *h, weft_list_req *req) {
    weft_count_resp c;
    assert_int_equal(th_read(h, WEFT_MSG_COUNT_WORKFLOWS, &weft_list_req_schema, req,
                             &weft_count_resp_schema, &c, false, NULL),
                     0);
    return c.count;
}

static void finish(th *h, weft_command cmd) {
    weft_poll_wft_resp wt;
    assert_int_equal(th_poll_wft(h, "q", &wt), 0);
    assert_int_equal(th_complete_wft(h, wt.task_token, &cmd, 1, NULL), 0);
}

static void test_list_count(void **state) {
    (void)state;
    th *h = th_up();
    /* 5 "order" runs at t0..t0+4000 and 2 "ship" runs; orders 0 and 1 complete. */
    char id[32];
    for (int i = 0; i < 5; i++) {
        snprintf(id, sizeof id, "o%d", i);
        th_start(h, id);
        h->now_ms += 1000;
    }
    for (int i = 0; i < 2; i++) {
        weft_start_req req = th_start_req(i == 0 ? "s0" : "s1");
        req.workflow_type = WEFT_STR_LIT("ship");
        req.namespace_ = WEFT_STR_LIT("default");
        assert_int_equal(th_request(h, WEFT_MSG_START_WORKFLOW, &req), 0);
    }
    finish(h, th_cmd_complete("a"));
    finish(h, th_cmd_complete("b"));
    weft_list_req all = {0};
    assert_int_equal(count(h, &all), 7);
    weft_list_req running = {.status = WEFT_STATUS_RUNNING};
    assert_int_equal(count(h, &running), 5);
    weft_list_req done = {.status = WEFT_STATUS_COMPLETED};
    assert_int_equal(count(h, &done), 2);
    weft_list_req orders = {.workflow_type = WEFT_STR_LIT("order")};
    assert_int_equal(count(h, &orders), 5);
    weft_list_req running_orders = {.workflow_type = WEFT_STR_LIT("order"),
                                    .status = WEFT_STATUS_RUNNING};
    assert_int_equal(count(h, &running_orders), 3);
    weft_list_req range = {.start_time_min_ms = TH_T0_MS + 1000, .start_time_max_ms = TH_T0_MS + 3000};
    assert_int_equal(count(h, &range), 3);
    weft_list_req other_ns = {.namespace_ = WEFT_STR_LIT("elsewhere")};
    assert_int_equal(count(h, &other_ns), 0);

    /* Paging by 3 over everything: 3 + 3 + 1, newest first, no repeats. The answer's token
     * holds each run's position (16 bytes); the last one bounds the next page. */
    weft_list_req page = {.page_size = 3};
    weft_list_resp resp;
    uint32_t seen = 0;
    uint64_t last_start = UINT64_MAX;
    uint8_t bound[16];
    for (int p = 0; p < 5; p++) {
        assert_int_equal(list(h, &page, &resp), 0);
        assert_int_equal(resp.next_page_token.len, resp.executions_count * 16u);
        for (uint32_t i = 0; i < resp.executions_count; i++) {
            assert_true(resp.executions[i].start_time_ms <= last_start);
            last_start = resp.executions[i].start_time_ms;
            assert_int_equal(weft_be64_get(resp.next_page_token.ptr + 16u * i), last_start);
        }
        seen += resp.executions_count;
        if (resp.executions_count < 3) break;
        memcpy(bound, resp.next_page_token.ptr + resp.next_page_token.len - 16, 16);
        page.next_page_token = (weft_bytes){.ptr = bound, .len = sizeof bound};
    }
    assert_int_equal(seen, 7);
    /* The last run listed is o0, completed, with its summary; the first is a ship run. */
    weft_list_req first = {.page_size = 1};
    assert_int_equal(list(h, &first, &resp), 0);
    assert_int_equal(resp.executions[0].start_time_ms, TH_T0_MS + 5000);
    weft_list_req oldest = {.page_size = 1, .start_time_max_ms = TH_T0_MS};
    assert_int_equal(list(h, &oldest, &resp), 0);
    assert_int_equal(resp.executions_count, 1);
    assert_true(weft_str_eq_c(resp.executions[0].workflow_id, "o0"));
    assert_int_equal(resp.executions[0].status, WEFT_STATUS_COMPLETED);
    /* The range is newest first too, and a position of another length is refused. */
    weft_list_req range_list = {.start_time_min_ms = TH_T0_MS + 1000,
                                .start_time_max_ms = TH_T0_MS + 3000};
    assert_int_equal(list(h, &range_list, &resp), 0);
    assert_int_equal(resp.executions_count, 3);
    assert_int_equal(resp.executions[0].start_time_ms, TH_T0_MS + 3000);
    assert_int_equal(resp.executions[2].start_time_ms, TH_T0_MS + 1000);
    uint8_t short_tok[15] = {0};
    weft_list_req wrong = {.next_page_token = {.ptr = short_tok, .len = sizeof short_tok}};
    assert_int_equal(list(h, &wrong, &resp), WEFT_E_INVALID_ARGUMENT);
    assert_string_equal(h->reply.err.field, "next_page_token");
    th_free(h);
}

static void test_history_paging_and_wait(void **state) {
    (void)state;
    th *h = th_up();
    th_start(h, "w");
    for (int i = 0; i < 5; i++) {
        char rid[8];
        snprintf(rid, sizeof rid, "r%d", i);
        assert_int_equal(th_signal(h, "w", "s", rid), 0);
    }
    /* 7 events: Started, Scheduled, 5 signals. Pages of 3. */
    weft_history_req req = {.workflow_id = WEFT_STR_LIT("w"), .max_events = 3};
    weft_history_resp resp;
    weft_read_wait wait;
    assert_int_equal(th_read(h, WEFT_MSG_GET_HISTORY, &weft_history_req_schema, &req,
                             &weft_history_resp_schema, &resp, false, &wait),
                     0);
    assert_int_equal(resp.events_count, 3);
    assert_int_equal(resp.next_event_id, 4);
    assert_false(resp.closed);
    req.first_event_id = 7;
    assert_int_equal(th_read(h, WEFT_MSG_GET_HISTORY, &weft_history_req_schema, &req,
                             &weft_history_resp_schema, &resp, false, &wait),
                     0);
    assert_int_equal(resp.events_count, 1);
    assert_int_equal(resp.next_event_id, 8);
    /* Nothing new yet: a waiting read asks to wait on the run, unless final. */
    req.first_event_id = 8;
    req.wait_new_events = true;
    assert_int_equal(th_read(h, WEFT_MSG_GET_HISTORY, &weft_history_req_schema, &req,
                             &weft_history_resp_schema, &resp, false, &wait),
                     0);
    assert_int_equal(resp.events_count, 0);
    assert_true(wait.should_wait);
    assert_true(wait.run_key > 0);
    assert_int_equal(th_read(h, WEFT_MSG_GET_HISTORY, &weft_history_req_schema, &req,
                             &weft_history_resp_schema, &resp, true, &wait),
                     0);
    assert_false(wait.should_wait);
    uint64_t before = h->changed_calls;
    assert_int_equal(th_signal(h, "w", "s", "r9"), 0);
    assert_true(h->changed_calls > before); /* run_changed wakes the waiter */
    assert_int_equal(th_read(h, WEFT_MSG_GET_HISTORY, &weft_history_req_schema, &req,
                             &weft_history_resp_schema, &resp, false, &wait),
                     0);
    assert_int_equal(resp.events_count, 1);
    assert_false(wait.should_wait);
    th_free(h);
}

static void test_result_wait(void **state) {
    (void)state;
    th *h = th_up();
    th_start(h, "w");
    weft_result_req req = {.workflow_id = WEFT_STR_LIT("w"), .wait = true};
    weft_result_resp resp;
    weft_read_wait wait;
    assert_int_equal(th_read(h, WEFT_MSG_GET_RESULT, &weft_result_req_schema, &req,
                             &weft_result_resp_schema, &resp, false, &wait),
                     0);
    assert_int_equal(resp.status, WEFT_STATUS_RUNNING);
    assert_true(wait.should_wait);
    finish(h, th_cmd_complete("42"));
    assert_int_equal(th_read(h, WEFT_MSG_GET_RESULT, &weft_result_req_schema, &req,
                             &weft_result_resp_schema, &resp, false, &wait),
                     0);
    assert_false(wait.should_wait);
    assert_int_equal(resp.status, WEFT_STATUS_COMPLETED);
    assert_memory_equal(resp.result.ptr, "42", 2);
    weft_result_req missing = {.workflow_id = WEFT_STR_LIT("nope")};
    assert_int_equal(th_read(h, WEFT_MSG_GET_RESULT, &weft_result_req_schema, &missing,
                             &weft_result_resp_schema, &resp, false, &wait),
                     WEFT_E_NOT_FOUND);
    th_free(h);
}

static void test_describe_pending(void **state) {
    (void)state;
    th *h = th_up();
    th_start(h, "w");
    weft_poll_wft_resp wt;
    assert_int_equal(th_poll_wft(h, "q", &wt), 0);
    weft_command cmds[2] = {th_cmd_activity("a", "charge"), th_cmd_timer("t", 7000)};
    assert_int_equal(th_complete_wft(h, wt.task_token, cmds, 2, NULL), 0);
    weft_poll_activity_resp ar;
    assert_int_equal(th_poll_act(h, "q", &ar), 0);
    weft_describe_resp d;
    th_describe(h, "w", &d);
    assert_int_equal(d.info.status, WEFT_STATUS_RUNNING);
    assert_true(weft_str_eq_c(d.info.workflow_type, "order"));
    assert_int_equal(d.pending_activities_count, 1);
    assert_true(weft_str_eq_c(d.pending_activities[0].activity_type, "charge"));
    assert_true(weft_str_eq_c(d.pending_activities[0].state, "started"));
    assert_true(weft_str_eq_c(d.pending_activities[0].last_worker_identity, "act-worker"));
    assert_int_equal(d.pending_timers_count, 1);
    assert_int_equal(d.pending_timers[0].fire_time_ms, TH_T0_MS + 7000);
    assert_false(d.workflow_task_pending);
    th_free(h);
}

/* G6: nothing fires before its time on the shard clock, whatever the gate proposes. */
static void test_timers_never_early(void **state) {
    (void)state;
    th *h = th_up();
    th_start(h, "w");
    weft_poll_wft_resp wt;
    assert_int_equal(th_poll_wft(h, "q", &wt), 0);
    weft_command t = th_cmd_timer("t", 1000);
    assert_int_equal(th_complete_wft(h, wt.task_token, &t, 1, NULL), 0);
    uint64_t at = 0;
    weft_err err;
    assert_int_equal(weft_shard_next_timer(h->s, &at, &err), 0);
    uint8_t *cmd = NULL;
    size_t len = 0;
    uint32_t n = 0;
    assert_int_equal(weft_shard_fire_cmd(h->s, TH_T0_MS + 999, 100, &cmd, &len, &n, &err), 0);
    assert_int_equal(n, 0); /* the WFT timeout row is later too */
    /* A gate whose clock ran ahead proposes the row, but the entry's time is earlier. */
    assert_int_equal(weft_shard_fire_cmd(h->s, TH_T0_MS + 1000, 100, &cmd, &len, &n, &err), 0);
    assert_int_equal(n, 1);
    h->now_ms = TH_T0_MS + 999;
    assert_int_equal(th_apply(h, cmd, len), 0);
    assert_null(strstr(th_types(h, "w", ""), "TimerFired"));
    /* Leader time going backwards never moves the shard clock back. */
    h->now_ms = TH_T0_MS + 1000;
    assert_int_equal(th_apply(h, cmd, len), 0);
    assert_non_null(strstr(th_types(h, "w", ""), "TimerFired"));
    /* The same FIRE_TIMERS again is a no-op (the row is gone). */
    assert_int_equal(th_apply(h, cmd, len), 0);
    const char *types = th_types(h, "w", "");
    assert_null(strstr(strstr(types, "TimerFired") + 1, "TimerFired"));
    free(cmd);
    h->now_ms = TH_T0_MS;
    assert_int_equal(th_signal(h, "w", "s", "r1"), 0);
    assert_int_equal(weft_shard_clock_ms(h->s), TH_T0_MS + 1000);
    weft_event *evs = NULL;
    uint32_t cnt = th_history(h, "w", "", &evs);
    assert_true(evs[cnt - 1].event_time_ms >= TH_T0_MS + 1000);
    th_free(h);
}

/* A new leader rebuilds its FIFOs from the ready table; a follower dispatches nothing. */
static void test_leadership(void **state) {
    (void)state;
    th *h = th_up();
    th_start(h, "a");
    th_start(h, "b");
    weft_shard_leader_stop(h->s);
    weft_ready_task t;
    assert_false(weft_shard_dispatch_pop(h->s, th_dq("q"), WEFT_TASK_KIND_WORKFLOW, &t));
    th_start(h, "c"); /* applied as a follower */
    weft_shard_close(h->s);
    th_open_dir(h, h->dir); /* reopens and leads */
    weft_poll_wft_resp wt;
    const char *order[] = {"a", "b", "c"};
    for (int i = 0; i < 3; i++) {
        assert_int_equal(th_poll_wft(h, "q", &wt), 0);
        assert_true(weft_str_eq_c(wt.workflow_id, order[i])); /* FIFO across the rebuild */
    }
    assert_int_equal(th_poll_wft(h, "q", &wt), -1);
    /* Unpop puts a task back at the head. */
    th_start(h, "d");
    th_start(h, "e");
    assert_true(weft_shard_dispatch_pop(h->s, th_dq("q"), WEFT_TASK_KIND_WORKFLOW, &t));
    weft_shard_dispatch_unpop(h->s, &t);
    assert_int_equal(th_poll_wft(h, "q", &wt), 0);
    assert_true(weft_str_eq_c(wt.workflow_id, "d"));
    th_free(h);
}

static void test_snapshot_restore(void **state) {
    (void)state;
    th *h = th_up();
    th_start(h, "w");
    void *img = NULL;
    size_t len = 0;
    weft_err err;
    weft_err_clear(&err);
    assert_int_equal(weft_shard_snapshot(h->s, malloc, &img, &len, &err), 0);
    /* The same replica is already at the image's index: restore is skipped. */
    assert_int_equal(weft_shard_restore(h->s, img, len, &err), 0);
    th *b = th_up();
    assert_int_equal(weft_shard_restore(b->s, img, len, &err), 0);
    assert_int_equal(weft_shard_applied_index(b->s), weft_shard_applied_index(h->s));
    assert_string_equal(th_types(b, "w", ""), "WorkflowExecutionStarted,WorkflowTaskScheduled");
    b->index = weft_shard_applied_index(b->s);
    weft_poll_wft_resp wt;
    assert_int_equal(th_poll_wft(b, "q", &wt), 0); /* the ready table came along */
    free(img);
    th_free(b);
    th_free(h);
}

/* A workflow task's events are capped at half a frame; next_event_id says where the rest
 * starts (section 10: responses fit in a frame). */
static void test_poll_cap(void **state) {
    (void)state;
    th *h = calloc(1, sizeof *h);
    th_init(h);
    h->limits.frame_bytes_max = 4096;
    h->limits.payload_bytes_max = 1024;
    th_open(h);
    th_start(h, "w");
    static uint8_t blob[600];
    memset(blob, 'x', sizeof blob);
    for (int i = 0; i < 6; i++) {
        char rid[8];
        snprintf(rid, sizeof rid, "r%d", i);
        weft_signal_req req = {.workflow_id = WEFT_STR_LIT("w"), .signal_name = WEFT_STR_LIT("s"),
                               .request_id = weft_str_c(rid), .input = {.ptr = blob, .len = 600}};
        assert_int_equal(th_request(h, WEFT_MSG_SIGNAL_WORKFLOW, &req), 0);
    }
    weft_poll_wft_resp wt;
    assert_int_equal(th_poll_wft(h, "q", &wt), 0);
    assert_int_equal(wt.started_event_id, 9);
    assert_true(wt.events_count >= 1 && wt.events_count < 9);
    assert_int_equal(wt.next_event_id, wt.events_count + 1);
    for (uint32_t i = 0; i < wt.events_count; i++) assert_int_equal(wt.events[i].event_id, i + 1);
    assert_true(h->reply.body_len < h->limits.frame_bytes_max);
    th_free(h);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_list_count),
        cmocka_unit_test(test_history_paging_and_wait),
        cmocka_unit_test(test_result_wait),
        cmocka_unit_test(test_describe_pending),
        cmocka_unit_test(test_timers_never_early),
        cmocka_unit_test(test_leadership),
        cmocka_unit_test(test_snapshot_restore),
        cmocka_unit_test(test_poll_cap),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
