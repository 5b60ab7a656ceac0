/* test_e2e_workflow.c: one workflow driven over the protocol to completion against a real
 * weftd: three activities (one fails twice, then succeeds under its retry policy), one timer and
 * one signal sent twice with the same request id. The run's history must equal the expected
 * event sequence exactly (DESIGN section 7). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "helper_weftd.h"
#include "helper_worker.h"

#define E2E_QUEUE "q-e2e"
#define E2E_WORKFLOW_ID "e2e-order-1"
#define E2E_TIMER_MS 300u
#define E2E_RETRY_INITIAL_MS 100u
/* The whole drive loop must finish within this (the run needs about one second). */
#define E2E_DRIVE_TIMEOUT_MS 60000u
#define E2E_POLL_MS 200u

typedef struct e2e {
    weftd w;        /* the server */
    weft_client *c; /* one client for everything */
    bool passed;    /* set at the end of the test body; teardown prints stderr otherwise */
} e2e;

static const char *const e2e_flags[] = {
    "--shards", "2", "--election-timeout-ms", "300", "--heartbeat-timeout-ms", "50", NULL};

static int e2e_setup(void **state) {
    static e2e t;
    memset(&t, 0, sizeof t);
    if (weftd_start(&t.w, e2e_flags) != 0) return -1;
    if (weftd_client(&t.w, "e2e", &t.c) != 0) return -1;
    *state = &t;
    return 0;
}

static int e2e_teardown(void **state) {
    e2e *t = *state;
    if (!t->passed) weftd_print_stderr(&t->w, WEFTD_STDERR_TAIL_LINES);
    weft_client_close(t->c);
    weftd_destroy(&t->w);
    return 0;
}

/* The script of the workflow "order": a1, then a2 (flaky, retried), then a 300 ms timer, then
 * wait for signal "go", then a3, then complete. State-based, so any task can be replayed.
 * Returns the number of commands; *wants_signal is set when the code now waits for "go". */
static uint32_t e2e_decide(const weft_poll_wft_resp *t, weft_command *cmds, bool *wants_signal) {
    static const weft_retry_policy retry = {
        .initial_interval_ms = E2E_RETRY_INITIAL_MS,
        .backoff_coefficient = 2.0,
        .maximum_interval_ms = 1000,
        .maximum_attempts = 5,
    };
    const weft_event *ev = t->events;
    uint32_t n = t->events_count;
    *wants_signal = false;
    if (!wk_find(ev, n, WEFT_EV_ACTIVITY_TASK_SCHEDULED, "a1")) {
        cmds[0] = wk_cmd_activity("a1", "charge", "card", 10000, NULL);
        return 1;
    }
    if (!wk_activity_closed(ev, n, "a1")) return 0;
    if (!wk_find(ev, n, WEFT_EV_ACTIVITY_TASK_SCHEDULED, "a2")) {
        cmds[0] = wk_cmd_activity("a2", "flaky", "stock", 10000, &retry);
        return 1;
    }
    if (!wk_activity_closed(ev, n, "a2")) return 0;
    if (!wk_find(ev, n, WEFT_EV_TIMER_STARTED, "t1")) {
        cmds[0] = wk_cmd_timer("t1", E2E_TIMER_MS);
        return 1;
    }
    if (!wk_find(ev, n, WEFT_EV_TIMER_FIRED, "t1")) return 0;
    if (!wk_find(ev, n, WEFT_EV_WORKFLOW_EXECUTION_SIGNALED, "go")) {
        *wants_signal = true;
        return 0;
    }
    if (!wk_find(ev, n, WEFT_EV_ACTIVITY_TASK_SCHEDULED, "a3")) {
        cmds[0] = wk_cmd_activity("a3", "ship", "parcel", 10000, NULL);
        return 1;
    }
    if (!wk_activity_closed(ev, n, "a3")) return 0;
    cmds[0] = wk_cmd_complete("done");
    return 1;
}

/* What the activity worker saw. */
typedef struct e2e_acts {
    uint32_t flaky_attempts[8]; /* attempt numbers of "flaky" in arrival order */
    uint32_t flaky_count;       /* entries used */
    uint32_t total;             /* activity tasks handled */
} e2e_acts;

static void e2e_run_activity(e2e *t, const weft_poll_activity_resp *a, e2e_acts *seen) {
    weft_err err;
    seen->total++;
    if (weft_str_eq_c(a->activity_type, "flaky")) {
        if (seen->flaky_count < 8) seen->flaky_attempts[seen->flaky_count++] = a->attempt;
        if (a->attempt < 3) {
            assert_int_equal(wk_fail_act(t->c, a, "Transient", "warehouse busy", &err), 0);
            return;
        }
    }
    char result[64];
    snprintf(result, sizeof result, "ok-%.*s", (int)a->activity_type.len, a->activity_type.ptr);
    assert_int_equal(wk_complete_act(t->c, a, result, &err), 0);
}

/* Sends signal "go" twice with one request id: the second must be a no-op (G4, G7). */
static void e2e_signal_twice(e2e *t) {
    weft_signal_req s = {
        .workflow_id = WEFT_STR_LIT(E2E_WORKFLOW_ID),
        .signal_name = WEFT_STR_LIT("go"),
        .input = {.ptr = (const uint8_t *)"now", .len = 3},
        .request_id = WEFT_STR_LIT("sig-e2e-1"),
    };
    weft_err err;
    for (int i = 0; i < 2; i++) {
        int rc = weft_client_signal(t->c, &s, &err);
        if (rc != 0) fprintf(stderr, "signal %d: %s %s\n", i, weft_error_name(rc), err.message);
        assert_int_equal(rc, 0);
    }
}

/* Polls and completes until the run closes. */
static void e2e_drive(e2e *t, e2e_acts *seen) {
    uint64_t deadline = weft_mono_ms() + E2E_DRIVE_TIMEOUT_MS;
    bool signaled = false, done = false;
    weft_err err;
    while (!done) {
        assert_true(weft_mono_ms() < deadline);
        weft_response h = {0};
        weft_poll_wft_resp task;
        int rc = wk_poll_wft(t->c, E2E_QUEUE, E2E_POLL_MS, &task, &h, &err);
        if (rc < 0) fprintf(stderr, "poll wft: %s %s\n", weft_error_name(rc), err.message);
        assert_true(rc >= 0);
        if (rc == 1) {
            weft_command cmds[WK_COMMANDS_MAX];
            bool wants_signal = false;
            uint32_t n = e2e_decide(&task, cmds, &wants_signal);
            done = n == 1 && cmds[0].type == WEFT_CMD_COMPLETE_WORKFLOW;
            rc = wk_complete_wft(t->c, &task, cmds, n, &err);
            if (rc != 0) fprintf(stderr, "complete wft: %s %s\n", weft_error_name(rc), err.message);
            assert_int_equal(rc, 0);
            if (wants_signal && !signaled) {
                e2e_signal_twice(t);
                signaled = true;
            }
        }
        weft_response_free(&h);
        if (done) break;
        weft_poll_activity_resp act;
        rc = wk_poll_act(t->c, E2E_QUEUE, E2E_POLL_MS, &act, &h, &err);
        if (rc < 0) fprintf(stderr, "poll activity: %s %s\n", weft_error_name(rc), err.message);
        assert_true(rc >= 0);
        if (rc == 1) e2e_run_activity(t, &act, seen);
        weft_response_free(&h);
    }
}

/* The exact event sequence of the script (DESIGN section 7: activity attempts write no events;
 * the final outcome writes Started, with its attempt, then Completed). */
static const uint32_t e2e_expected[] = {
    WEFT_EV_WORKFLOW_EXECUTION_STARTED, /* 1 */
    WEFT_EV_WORKFLOW_TASK_SCHEDULED,
    WEFT_EV_WORKFLOW_TASK_STARTED,   /* 2, 3 */
    WEFT_EV_WORKFLOW_TASK_COMPLETED, /* 4 */
    WEFT_EV_ACTIVITY_TASK_SCHEDULED,
    WEFT_EV_ACTIVITY_TASK_STARTED,   /* 5, 6 a1 */
    WEFT_EV_ACTIVITY_TASK_COMPLETED, /* 7 */
    WEFT_EV_WORKFLOW_TASK_SCHEDULED,
    WEFT_EV_WORKFLOW_TASK_STARTED,   /* 8, 9 */
    WEFT_EV_WORKFLOW_TASK_COMPLETED, /* 10 */
    WEFT_EV_ACTIVITY_TASK_SCHEDULED,
    WEFT_EV_ACTIVITY_TASK_STARTED,   /* 11, 12 a2 */
    WEFT_EV_ACTIVITY_TASK_COMPLETED, /* 13 */
    WEFT_EV_WORKFLOW_TASK_SCHEDULED,
    WEFT_EV_WORKFLOW_TASK_STARTED,   /* 14, 15 */
    WEFT_EV_WORKFLOW_TASK_COMPLETED, /* 16 */
    WEFT_EV_TIMER_STARTED,
    WEFT_EV_TIMER_FIRED, /* 17, 18 */
    WEFT_EV_WORKFLOW_TASK_SCHEDULED,
    WEFT_EV_WORKFLOW_TASK_STARTED,       /* 19, 20 */
    WEFT_EV_WORKFLOW_TASK_COMPLETED,     /* 21 */
    WEFT_EV_WORKFLOW_EXECUTION_SIGNALED, /* 22 */
    WEFT_EV_WORKFLOW_TASK_SCHEDULED,
    WEFT_EV_WORKFLOW_TASK_STARTED,   /* 23, 24 */
    WEFT_EV_WORKFLOW_TASK_COMPLETED, /* 25 */
    WEFT_EV_ACTIVITY_TASK_SCHEDULED,
    WEFT_EV_ACTIVITY_TASK_STARTED,   /* 26, 27 a3 */
    WEFT_EV_ACTIVITY_TASK_COMPLETED, /* 28 */
    WEFT_EV_WORKFLOW_TASK_SCHEDULED,
    WEFT_EV_WORKFLOW_TASK_STARTED,        /* 29, 30 */
    WEFT_EV_WORKFLOW_TASK_COMPLETED,      /* 31 */
    WEFT_EV_WORKFLOW_EXECUTION_COMPLETED, /* 32 */
};

static void e2e_check_history(e2e *t, const char *run_id) {
    wk_history h;
    weft_err err;
    int rc = wk_history_get(t->c, E2E_WORKFLOW_ID, run_id, &h, &err);
    if (rc != 0) fprintf(stderr, "history: %s %s\n", weft_error_name(rc), err.message);
    assert_int_equal(rc, 0);
    const weft_event *ev = h.events;
    uint32_t n = h.count;
    bool same = n == WEFT_ARRAY_LEN(e2e_expected);
    for (uint32_t i = 0; same && i < n; i++)
        same = ev[i].event_type == e2e_expected[i];
    if (!same) {
        fprintf(stderr, "history differs from the expected %zu events; got:\n",
                WEFT_ARRAY_LEN(e2e_expected));
        wk_history_print(ev, n);
    }
    assert_true(same);
    assert_true(h.closed);
    for (uint32_t i = 0; i < n; i++)
        assert_int_equal(ev[i].event_id, i + 1); /* dense (G2) */
    assert_int_equal(ev[5].attempt, 1);          /* a1 succeeded at once */
    assert_int_equal(ev[11].attempt, 3);         /* a2: two failures, then success on attempt 3 */
    assert_int_equal(ev[26].attempt, 1);
    assert_int_equal(ev[11].scheduled_event_id, 11);
    assert_true(weft_str_eq_c(ev[10].activity_id, "a2"));
    /* G6: the timer fired no earlier than its start plus its duration (shard clock). */
    assert_true(weft_str_eq_c(ev[16].timer_id, "t1"));
    assert_true(ev[17].event_time_ms >= ev[16].event_time_ms + E2E_TIMER_MS);
    /* G7: one Signaled event for the two sends, with the signal's name and input. */
    assert_int_equal(wk_count(ev, n, WEFT_EV_WORKFLOW_EXECUTION_SIGNALED, NULL), 1);
    assert_true(weft_str_eq_c(ev[21].signal_name, "go"));
    assert_int_equal(ev[21].input.len, 3);
    assert_memory_equal(ev[21].input.ptr, "now", 3);
    assert_int_equal(ev[31].result.len, 4);
    assert_memory_equal(ev[31].result.ptr, "done", 4);
    wk_history_free(&h);
}

static void e2e_check_result_and_describe(e2e *t, const char *run_id) {
    weft_err err;
    weft_response h = {0};
    weft_result_req rq = {
        .workflow_id = WEFT_STR_LIT(E2E_WORKFLOW_ID), .wait = true, .wait_timeout_ms = 5000};
    weft_result_resp r;
    assert_int_equal(weft_client_result(t->c, &rq, &r, &h, &err), 0);
    assert_int_equal(r.status, WEFT_STATUS_COMPLETED);
    assert_true(weft_str_eq_c(r.run_id, run_id));
    assert_int_equal(r.result.len, 4);
    assert_memory_equal(r.result.ptr, "done", 4);

    weft_describe_req dq = {.workflow_id = WEFT_STR_LIT(E2E_WORKFLOW_ID)};
    weft_describe_resp d;
    assert_int_equal(weft_client_describe(t->c, &dq, &d, &h, &err), 0);
    assert_int_equal(d.info.status, WEFT_STATUS_COMPLETED);
    assert_true(weft_str_eq_c(d.info.run_id, run_id));
    assert_true(weft_str_eq_c(d.info.workflow_type, "order"));
    assert_int_equal(d.info.history_length, WEFT_ARRAY_LEN(e2e_expected));
    assert_int_equal(d.pending_activities_count, 0);
    assert_int_equal(d.pending_timers_count, 0);
    assert_true(d.info.close_time_ms >= d.info.start_time_ms);
    weft_response_free(&h);
}

/* Starts the run, and checks that a retried start with the same request id returns it. */
static void e2e_start(e2e *t, char *run_id, size_t cap) {
    weft_start_req s = {
        .workflow_id = WEFT_STR_LIT(E2E_WORKFLOW_ID),
        .workflow_type = WEFT_STR_LIT("order"),
        .task_queue = WEFT_STR_LIT(E2E_QUEUE),
        .input = {.ptr = (const uint8_t *)"order-42", .len = 8},
        .request_id = WEFT_STR_LIT("start-e2e-1"),
    };
    weft_err err;
    weft_response h = {0};
    weft_start_resp r;
    int rc = weft_client_start(t->c, &s, &r, &h, &err);
    if (rc != 0) fprintf(stderr, "start: %s %s\n", weft_error_name(rc), err.message);
    assert_int_equal(rc, 0);
    assert_true(r.started);
    assert_true(r.run_id.len > 0);
    weft_str_copy(run_id, cap, r.run_id);
    rc = weft_client_start(t->c, &s, &r, &h, &err); /* G4: same request id, same outcome */
    assert_int_equal(rc, 0);
    assert_true(weft_str_eq_c(r.run_id, run_id));
    weft_response_free(&h);
}

static void test_e2e_workflow(void **state) {
    e2e *t = *state;
    char run_id[128];
    e2e_start(t, run_id, sizeof run_id);
    e2e_acts seen = {0};
    e2e_drive(t, &seen);
    assert_int_equal(seen.flaky_count, 3);
    for (uint32_t i = 0; i < 3; i++)
        assert_int_equal(seen.flaky_attempts[i], i + 1);
    assert_int_equal(seen.total, 5); /* a1, three attempts of a2, a3 */
    e2e_check_history(t, run_id);
    e2e_check_result_and_describe(t, run_id);
    assert_int_equal(weftd_stop(&t->w), 0);
    t->passed = true;
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_e2e_workflow, e2e_setup, e2e_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
