/* test_shard_flow.c: end-to-end runs through the shard state machine: the acceptance
 * scenario (three activities, one retried twice, a timer and a signal), sticky tasks and
 * their fallback, workflow task failures/timeouts with transient retries, UNHANDLED_EVENTS,
 * and determinism across two replicas (G2). */
#include "test_shard_harness.h"

#include "storage/store.h"

static weft_bytes tok(weft_bytes t) { return t; }

/* The acceptance scenario: exact event sequence and key attributes. */
static void test_acceptance(void **state) {
    (void)state;
    th *h = th_new();
    th_open(h);
    const char *run = th_start(h, "order-1");
    char run_id[64];
    snprintf(run_id, sizeof run_id, "%s", run);

    weft_poll_wft_resp wt;
    assert_int_equal(th_poll_wft(h, "q", &wt), 0);
    assert_int_equal(wt.events_count, 3); /* Started, Scheduled, Started */
    assert_false(wt.sticky);
    weft_command cmds[4] = {th_cmd_activity("a1", "charge"), th_cmd_activity("a2", "reserve"),
                            th_cmd_activity("a3", "ship"), th_cmd_timer("t1", 5000)};
    cmds[1].retry_policy = (weft_retry_policy){.initial_interval_ms = 1000,
                                               .backoff_coefficient = 2.0,
                                               .maximum_attempts = 5};
    assert_int_equal(th_complete_wft(h, tok(wt.task_token), cmds, 4, NULL), 0);

    weft_poll_activity_resp a1, a2, a3;
    assert_int_equal(th_poll_act(h, "q", &a1), 0);
    assert_true(weft_str_eq_c(a1.activity_id, "a1"));
    assert_int_equal(th_act(h, WEFT_MSG_COMPLETE_ACTIVITY, a1.task_token, "charged", NULL), 0);
    /* a2, attempt 1: fails; the retry waits 1 s and writes nothing. */
    assert_int_equal(th_poll_act(h, "q", &a2), 0);
    assert_true(weft_str_eq_c(a2.activity_id, "a2"));
    assert_int_equal(a2.attempt, 1);
    assert_int_equal(th_act(h, WEFT_MSG_FAIL_ACTIVITY, a2.task_token, NULL, "Transient"), 0);
    assert_int_equal(th_poll_act(h, "q", &a3), 0);
    assert_true(weft_str_eq_c(a3.activity_id, "a3"));

    assert_int_equal(th_poll_wft(h, "q", &wt), 0);
    assert_int_equal(th_complete_wft(h, wt.task_token, NULL, 0, NULL), 0);
    assert_int_equal(th_signal(h, "order-1", "approve", "sig-1"), 0);

    /* Not yet: the retry is due at +1000 ms (G6). */
    assert_int_equal(th_advance(h, 999), 0);
    weft_poll_activity_resp again;
    assert_int_equal(th_poll_act(h, "q", &again), -1);
    assert_true(th_advance(h, 1) >= 1);
    assert_int_equal(th_poll_act(h, "q", &again), 0);
    assert_int_equal(again.attempt, 2);
    assert_int_equal(th_act(h, WEFT_MSG_FAIL_ACTIVITY, again.task_token, NULL, "Transient"), 0);

    assert_int_equal(th_poll_wft(h, "q", &wt), 0); /* carries the signal */
    th_advance(h, 2000);                            /* attempt 3 after 2 s */
    assert_int_equal(th_poll_act(h, "q", &again), 0);
    assert_int_equal(again.attempt, 3);
    assert_int_equal(th_act(h, WEFT_MSG_COMPLETE_ACTIVITY, again.task_token, "reserved", NULL), 0);
    assert_int_equal(th_complete_wft(h, wt.task_token, NULL, 0, NULL), 0);

    th_advance(h, 2000); /* t1 fires at +5000 */
    assert_int_equal(th_act(h, WEFT_MSG_COMPLETE_ACTIVITY, a3.task_token, "shipped", NULL), 0);
    assert_int_equal(th_poll_wft(h, "q", &wt), 0);
    assert_int_equal(wt.events_count, 24);
    weft_command done = th_cmd_complete("ok");
    assert_int_equal(th_complete_wft(h, wt.task_token, &done, 1, NULL), 0);

    assert_string_equal(
        th_types(h, "order-1", run_id),
        "WorkflowExecutionStarted,WorkflowTaskScheduled,WorkflowTaskStarted,"
        "WorkflowTaskCompleted,ActivityTaskScheduled,ActivityTaskScheduled,ActivityTaskScheduled,"
        "TimerStarted,ActivityTaskStarted,ActivityTaskCompleted,WorkflowTaskScheduled,"
        "WorkflowTaskStarted,WorkflowTaskCompleted,WorkflowExecutionSignaled,WorkflowTaskScheduled,"
        "WorkflowTaskStarted,WorkflowTaskCompleted,ActivityTaskStarted,ActivityTaskCompleted,"
        "WorkflowTaskScheduled,TimerFired,ActivityTaskStarted,ActivityTaskCompleted,"
        "WorkflowTaskStarted,WorkflowTaskCompleted,WorkflowExecutionCompleted");
    weft_event *evs = NULL;
    assert_int_equal(th_history(h, "order-1", run_id, &evs), 26);
    /* The retried activity: Started carries attempt 3, Completed points at it. */
    assert_int_equal(evs[17].event_type, WEFT_EV_ACTIVITY_TASK_STARTED);
    assert_int_equal(evs[17].attempt, 3);
    assert_int_equal(evs[17].scheduled_event_id, 6);
    assert_int_equal(evs[18].scheduled_event_id, 6);
    assert_int_equal(evs[18].started_event_id, 18);
    assert_memory_equal(evs[18].result.ptr, "reserved", 8);
    assert_int_equal(evs[8].attempt, 1);
    assert_int_equal(evs[9].started_event_id, 9);
    assert_true(weft_str_eq_c(evs[13].signal_name, "approve"));
    assert_true(weft_str_eq_c(evs[20].timer_id, "t1"));
    assert_int_equal(evs[20].started_event_id, 8);
    assert_true(evs[20].event_time_ms >= TH_T0_MS + 5000); /* never early (G6) */
    assert_memory_equal(evs[25].result.ptr, "ok", 2);

    weft_describe_resp d;
    th_describe(h, "order-1", &d);
    assert_int_equal(d.info.status, WEFT_STATUS_COMPLETED);
    assert_int_equal(d.info.history_length, 26);
    assert_int_equal(d.pending_activities_count, 0);
    assert_int_equal(d.pending_timers_count, 0);
    assert_false(d.workflow_task_pending);
    assert_true(h->ready_calls > 0 && h->timer_calls > 0 && h->changed_calls > 0);
    th_free(h);
}

/* Sticky: the next task goes to the worker's sticky queue with only new events; unpolled, it
 * falls back to the shared queue after sticky_timeout_ms. */
static void test_sticky(void **state) {
    (void)state;
    th *h = th_new();
    th_open(h);
    th_start(h, "s-1");
    weft_poll_wft_resp wt;
    assert_int_equal(th_poll_wft(h, "q", &wt), 0);
    assert_int_equal(th_complete_wft(h, wt.task_token, NULL, 0, "sticky-A"), 0);
    assert_int_equal(th_signal(h, "s-1", "go", "r1"), 0);
    assert_int_equal(th_poll_wft(h, "q", &wt), -1); /* on the sticky queue, not the shared */
    assert_int_equal(th_poll_wft(h, "sticky-A", &wt), 0);
    assert_true(wt.sticky);
    assert_int_equal(wt.previous_started_event_id, 3);
    assert_int_equal(wt.events_count, 4); /* Completed(4), Signaled, Scheduled, Started */
    assert_int_equal(wt.events[0].event_id, 4);
    assert_int_equal(th_complete_wft(h, wt.task_token, NULL, 0, "sticky-A"), 0);

    assert_int_equal(th_signal(h, "s-1", "go", "r2"), 0);
    assert_int_equal(th_advance(h, h->limits.sticky_timeout_ms - 1), 0);
    assert_int_equal(th_poll_wft(h, "q", &wt), -1);
    assert_true(th_advance(h, 1) >= 1);
    assert_int_equal(th_poll_wft(h, "sticky-A", &wt), -1); /* moved away */
    assert_int_equal(th_poll_wft(h, "q", &wt), 0);
    assert_false(wt.sticky);
    assert_int_equal(wt.events[0].event_id, 1); /* full history */
    weft_describe_resp d;
    th_describe(h, "s-1", &d);
    assert_int_equal(d.sticky_queue.len, 0);
    th_free(h);
}

/* A failing workflow task: only the first failure is in history; retries are transient with
 * backoff 1 s, 2 s, ...; the success writes Scheduled(attempt)+Started+Completed. */
static void test_wft_failures_transient(void **state) {
    (void)state;
    th *h = th_new();
    th_open(h);
    th_start(h, "f-1");
    weft_poll_wft_resp wt;
    assert_int_equal(th_poll_wft(h, "q", &wt), 0);
    assert_int_equal(th_fail_wft(h, wt.task_token, "non-determinism"), 0);
    assert_int_equal(th_poll_wft(h, "q", &wt), -1); /* backoff */
    th_advance(h, 1000);
    assert_int_equal(th_poll_wft(h, "q", &wt), 0);
    assert_int_equal(wt.attempt, 2);
    /* History so far: Started, Sched, Started, Failed + synthetic Scheduled/Started. */
    assert_int_equal(wt.events_count, 6);
    assert_int_equal(wt.events[4].event_type, WEFT_EV_WORKFLOW_TASK_SCHEDULED);
    assert_int_equal(wt.events[4].event_id, 5);
    assert_int_equal(wt.events[5].event_id, 6);
    assert_int_equal(th_fail_wft(h, wt.task_token, "non-determinism"), 0);
    weft_describe_resp d;
    th_describe(h, "f-1", &d);
    assert_int_equal(d.workflow_task_failures, 2);
    assert_true(weft_str_eq_c(d.last_workflow_task_failure.type, "Panic"));
    assert_true(weft_str_eq_c(d.workflow_task_state, "backoff"));
    /* Attempt 3 comes after 2 s; it times out: still nothing written. */
    assert_int_equal(th_advance(h, 1999), 0);
    th_advance(h, 1);
    assert_int_equal(th_poll_wft(h, "q", &wt), 0);
    assert_int_equal(wt.attempt, 3);
    weft_bytes stale = wt.task_token;
    th_advance(h, h->limits.workflow_task_timeout_ms);
    assert_string_equal(th_types(h, "f-1", ""),
                        "WorkflowExecutionStarted,WorkflowTaskScheduled,WorkflowTaskStarted,"
                        "WorkflowTaskFailed");
    /* The timed-out attempt's token is stale now. */
    assert_int_equal(th_complete_wft(h, stale, NULL, 0, NULL), WEFT_E_NOT_FOUND);
    th_advance(h, 4000);
    assert_int_equal(th_poll_wft(h, "q", &wt), 0);
    assert_int_equal(wt.attempt, 4);
    assert_int_equal(th_complete_wft(h, wt.task_token, NULL, 0, NULL), 0);
    assert_string_equal(th_types(h, "f-1", ""),
                        "WorkflowExecutionStarted,WorkflowTaskScheduled,WorkflowTaskStarted,"
                        "WorkflowTaskFailed,WorkflowTaskScheduled,WorkflowTaskStarted,"
                        "WorkflowTaskCompleted");
    weft_event *evs = NULL;
    th_history(h, "f-1", "", &evs);
    assert_int_equal(evs[4].attempt, 4);
    th_describe(h, "f-1", &d);
    assert_int_equal(d.workflow_task_failures, 0);
    th_free(h);
}

/* A signal while a transient attempt waits on its queue makes it an ordinary task: its
 * Scheduled event is written at the provisional id, and its token stays valid. */
static void test_transient_materialized(void **state) {
    (void)state;
    th *h = th_new();
    th_open(h);
    th_start(h, "m-1");
    weft_poll_wft_resp wt;
    assert_int_equal(th_poll_wft(h, "q", &wt), 0);
    th_advance(h, h->limits.workflow_task_timeout_ms); /* first timeout: recorded */
    th_advance(h, 1000);                                 /* transient attempt 2 scheduled */
    assert_int_equal(th_signal(h, "m-1", "go", "r1"), 0);
    assert_int_equal(th_poll_wft(h, "q", &wt), 0);
    assert_int_equal(wt.attempt, 2);
    assert_int_equal(wt.scheduled_event_id, 5);
    assert_int_equal(th_complete_wft(h, wt.task_token, NULL, 0, NULL), 0);
    assert_string_equal(th_types(h, "m-1", ""),
                        "WorkflowExecutionStarted,WorkflowTaskScheduled,WorkflowTaskStarted,"
                        "WorkflowTaskTimedOut,WorkflowTaskScheduled,WorkflowExecutionSignaled,"
                        "WorkflowTaskStarted,WorkflowTaskCompleted");
    th_free(h);
}

/* A close command racing with a new event: nothing applies, WorkflowTaskFailed
 * (UNHANDLED_EVENTS), a new task carries the event. */
static void test_unhandled_events(void **state) {
    (void)state;
    th *h = th_new();
    th_open(h);
    th_start(h, "u-1");
    weft_poll_wft_resp wt;
    assert_int_equal(th_poll_wft(h, "q", &wt), 0);
    assert_int_equal(th_signal(h, "u-1", "late", "r1"), 0);
    weft_command done = th_cmd_complete("x");
    assert_int_equal(th_complete_wft(h, wt.task_token, &done, 1, NULL), WEFT_E_FAILED_PRECONDITION);
    assert_non_null(strstr(h->reply.err.message, "UNHANDLED_EVENTS"));
    assert_string_equal(th_types(h, "u-1", ""),
                        "WorkflowExecutionStarted,WorkflowTaskScheduled,WorkflowTaskStarted,"
                        "WorkflowTaskFailed,WorkflowExecutionSignaled,WorkflowTaskScheduled");
    assert_int_equal(th_poll_wft(h, "q", &wt), 0);
    assert_int_equal(wt.attempt, 1);
    assert_int_equal(th_complete_wft(h, wt.task_token, &done, 1, NULL), 0);
    weft_describe_resp d;
    th_describe(h, "u-1", &d);
    assert_int_equal(d.info.status, WEFT_STATUS_COMPLETED);
    th_free(h);
}

/* Events that arrive while a task runs are buffered and come after its Completed event,
 * followed by a new task (section 7). */
static void test_buffered_events(void **state) {
    (void)state;
    th *h = th_new();
    th_open(h);
    th_start(h, "b-1");
    weft_poll_wft_resp wt;
    assert_int_equal(th_poll_wft(h, "q", &wt), 0);
    assert_int_equal(th_signal(h, "b-1", "one", "r1"), 0);
    assert_int_equal(th_signal(h, "b-1", "two", "r2"), 0);
    weft_command t = th_cmd_timer("t", 1000);
    assert_int_equal(th_complete_wft(h, wt.task_token, &t, 1, NULL), 0);
    assert_string_equal(th_types(h, "b-1", ""),
                        "WorkflowExecutionStarted,WorkflowTaskScheduled,WorkflowTaskStarted,"
                        "WorkflowTaskCompleted,TimerStarted,WorkflowExecutionSignaled,"
                        "WorkflowExecutionSignaled,WorkflowTaskScheduled");
    weft_event *evs = NULL;
    th_history(h, "b-1", "", &evs);
    assert_true(weft_str_eq_c(evs[5].signal_name, "one")); /* G7: in acceptance order */
    assert_true(weft_str_eq_c(evs[6].signal_name, "two"));
    th_free(h);
}

/* Replays every entry of one shard into another: the tables must be byte-identical (G2). */
static void dump_table(weft_store *st, weft_table tbl, char **out, size_t *len) {
    weft_txn *t = NULL;
    weft_err err;
    assert_int_equal(weft_txn_begin(st, false, &t, &err), 0);
    weft_cursor *cur = NULL;
    assert_int_equal(weft_cursor_open(t, tbl, &cur, &err), 0);
    FILE *f = open_memstream(out, len);
    weft_val k, v;
    int rc = weft_cursor_seek(cur, NULL, 0, &k, &v, &err);
    while (rc == 0) {
        fwrite(&k.len, sizeof k.len, 1, f);
        fwrite(k.ptr, 1, k.len, f);
        fwrite(&v.len, sizeof v.len, 1, f);
        fwrite(v.ptr, 1, v.len, f);
        rc = weft_cursor_next(cur, &k, &v, &err);
    }
    fclose(f);
    weft_cursor_close(cur);
    weft_txn_abort(t);
}

static void test_determinism(void **state) {
    (void)state;
    th *a = th_new();
    a->record = true;
    th_open(a);
    th_start(a, "d-1");
    weft_poll_wft_resp wt;
    assert_int_equal(th_poll_wft(a, "q", &wt), 0);
    weft_command cmds[2] = {th_cmd_activity("x", "work"), th_cmd_timer("t", 3000)};
    assert_int_equal(th_complete_wft(a, wt.task_token, cmds, 2, "sticky"), 0);
    weft_poll_activity_resp act;
    assert_int_equal(th_poll_act(a, "q", &act), 0);
    assert_int_equal(th_act(a, WEFT_MSG_FAIL_ACTIVITY, act.task_token, NULL, "Oops"), 0);
    assert_int_equal(th_signal(a, "d-1", "s", "r1"), 0);
    th_advance(a, 5000);
    assert_int_equal(th_poll_act(a, "q", &act), 0);
    assert_int_equal(th_act(a, WEFT_MSG_COMPLETE_ACTIVITY, act.task_token, "r", NULL), 0);
    th_start(a, "d-2");

    th *b = th_new();
    th_open(b);
    for (unsigned i = 0; i < a->log_count; i++) {
        b->now_ms = a->log[i].time_ms;
        th_apply(b, a->log[i].cmd, a->log[i].len);
        assert_int_equal(b->index, a->log[i].index);
    }
    assert_int_equal(weft_shard_applied_index(a->s), weft_shard_applied_index(b->s));
    char dir_a[128], dir_b[128];
    snprintf(dir_a, sizeof dir_a, "%s", a->dir);
    snprintf(dir_b, sizeof dir_b, "%s", b->dir);
    weft_shard_close(a->s);
    weft_shard_close(b->s);
    weft_store *sa = NULL, *sb = NULL;
    weft_err err;
    assert_int_equal(weft_store_open(&sa, dir_a, &(weft_store_opts){0}, &err), 0);
    assert_int_equal(weft_store_open(&sb, dir_b, &(weft_store_opts){0}, &err), 0);
    for (int tbl = 0; tbl < WEFT_TBL__COUNT; tbl++) {
        char *da = NULL, *db = NULL;
        size_t la = 0, lb = 0;
        dump_table(sa, (weft_table)tbl, &da, &la);
        dump_table(sb, (weft_table)tbl, &db, &lb);
        assert_int_equal(la, lb);
        assert_memory_equal(da, db, la);
        if (tbl == WEFT_TBL_HISTORY) assert_true(la > 0);
        free(da);
        free(db);
    }
    weft_store_close(sa);
    weft_store_close(sb);
    th_open_dir(a, dir_a); /* reopen so th_close has something to close */
    th_open_dir(b, dir_b);
    th_free(a);
    th_free(b);
}

/* Re-applying an entry at or below the applied index changes nothing (section 5). */
static void test_reapply_noop(void **state) {
    (void)state;
    th *h = th_new();
    h->record = true;
    th_open(h);
    th_start(h, "r-1");
    uint64_t idx = weft_shard_applied_index(h->s);
    weft_reply reply = {0};
    weft_bytes b = {.ptr = h->log[0].cmd, .len = (uint32_t)h->log[0].len};
    assert_int_equal(weft_shard_apply(h->s, idx, h->now_ms, &b, 1, &reply), 0);
    assert_null(reply.body);
    assert_int_equal(weft_shard_applied_index(h->s), idx);
    assert_string_equal(th_types(h, "r-1", ""), "WorkflowExecutionStarted,WorkflowTaskScheduled");
    /* And after a restart the applied index and clock come back from meta. */
    uint64_t clock = weft_shard_clock_ms(h->s);
    weft_shard_close(h->s);
    th_open_dir(h, h->dir);
    assert_int_equal(weft_shard_applied_index(h->s), idx);
    assert_int_equal(weft_shard_clock_ms(h->s), clock);
    th_free(h);
}

/* Opening another shard's or cluster's env is refused with a fix-it message (section 5). */
static void test_identity(void **state) {
    (void)state;
    th *h = th_new();
    th_open(h);
    weft_shard_close(h->s);
    weft_shard *other = NULL;
    weft_err err;
    weft_err_clear(&err);
    assert_int_equal(weft_shard_open(&other, 8, "test-cluster", h->dir, &h->limits, NULL, &err),
                     -WEFT_E_FAILED_PRECONDITION);
    assert_non_null(strstr(err.message, "shard 7"));
    assert_int_equal(weft_shard_open(&other, 7, "other", h->dir, &h->limits, NULL, &err),
                     -WEFT_E_FAILED_PRECONDITION);
    assert_non_null(strstr(err.message, "test-cluster"));
    th_open_dir(h, h->dir);
    th_free(h);
}

/* A task whose Started is replayed with the same poll id answers the same; another poller's
 * Started for it is stale. */
static void test_started_replay(void **state) {
    (void)state;
    th *h = th_new();
    th_open(h);
    th_start(h, "p-1");
    weft_ready_task t;
    assert_true(weft_shard_dispatch_pop(h->s, th_dq("q"), WEFT_TASK_KIND_WORKFLOW, &t));
    uint8_t *cmd = NULL;
    size_t len = 0;
    weft_err err;
    assert_int_equal(weft_shard_workflow_dispatch(h->s, &t, WEFT_STR_LIT("w"), WEFT_STR_LIT("q"),
                                                  WEFT_STR_LIT("poll-9"), &cmd, &len, &err),
                     0);
    assert_int_equal(th_apply(h, cmd, len), 0);
    size_t first_len = h->reply.body_len;
    assert_int_equal(th_apply(h, cmd, len), 0); /* same poll: same answer */
    assert_int_equal(h->reply.body_len, first_len);
    free(cmd);
    assert_int_equal(weft_shard_workflow_dispatch(h->s, &t, WEFT_STR_LIT("w"), WEFT_STR_LIT("q"),
                                                  WEFT_STR_LIT("poll-10"), &cmd, &len, &err),
                     -WEFT_E_NOT_FOUND);
    assert_string_equal(th_types(h, "p-1", ""),
                        "WorkflowExecutionStarted,WorkflowTaskScheduled,WorkflowTaskStarted");
    th_free(h);
}

static void requeue(th *h, weft_bytes token, int want) {
    weft_shard_cmd rq = {.type = WEFT_SC_TASK_REQUEUE, .task_token = token};
    uint8_t *cmd = NULL;
    size_t len = 0;
    assert_int_equal(weft_schema_encode_buf(&weft_shard_cmd_schema, &rq, &cmd, &len), 0);
    assert_int_equal(th_apply(h, cmd, len), want);
    free(cmd);
}

/* A workflow task whose poller vanished: a recorded attempt is closed as timed out and a
 * fresh task follows at once; a transient attempt just goes back, writing nothing. */
static void test_wft_requeue(void **state) {
    (void)state;
    th *h = th_new();
    th_open(h);
    th_start(h, "q-1");
    weft_poll_wft_resp wt;
    assert_int_equal(th_poll_wft(h, "q", &wt), 0);
    requeue(h, wt.task_token, 0);
    requeue(h, wt.task_token, WEFT_E_NOT_FOUND);
    assert_int_equal(th_poll_wft(h, "q", &wt), 0); /* no backoff */
    assert_int_equal(wt.attempt, 1);
    assert_int_equal(th_fail_wft(h, wt.task_token, "boom"), 0);
    th_advance(h, 1000);
    assert_int_equal(th_poll_wft(h, "q", &wt), 0);
    assert_int_equal(wt.attempt, 2);
    requeue(h, wt.task_token, 0);
    assert_int_equal(th_poll_wft(h, "q", &wt), 0);
    assert_int_equal(wt.attempt, 2);
    assert_int_equal(th_complete_wft(h, wt.task_token, NULL, 0, NULL), 0);
    assert_string_equal(th_types(h, "q-1", ""),
                        "WorkflowExecutionStarted,WorkflowTaskScheduled,WorkflowTaskStarted,"
                        "WorkflowTaskTimedOut,WorkflowTaskScheduled,WorkflowTaskStarted,"
                        "WorkflowTaskFailed,WorkflowTaskScheduled,WorkflowTaskStarted,"
                        "WorkflowTaskCompleted");
    th_free(h);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_acceptance),
        cmocka_unit_test(test_sticky),
        cmocka_unit_test(test_wft_failures_transient),
        cmocka_unit_test(test_transient_materialized),
        cmocka_unit_test(test_unhandled_events),
        cmocka_unit_test(test_buffered_events),
        cmocka_unit_test(test_determinism),
        cmocka_unit_test(test_reapply_noop),
        cmocka_unit_test(test_identity),
        cmocka_unit_test(test_started_replay),
        cmocka_unit_test(test_wft_requeue),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
