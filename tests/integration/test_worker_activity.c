/* test_worker_activity.c: the activity side of weft_worker against a real weftd (DESIGN section
 * 11, "Activities run on a thread pool, with heartbeats and cancellation"). Workflows are driven
 * by a scripted decider on a test thread (helper_worker.h), so only activity features of the
 * SDK are used: results and arena, info, failure and retries, non-retryable failures, unknown
 * types, bad return codes, heartbeats with details and cancellation, async completion by token,
 * drain on stop, SIGTERM handling, option and registration errors, and the execution slots
 * (activity_concurrency 1: one activity at a time, and none started on the server and left
 * waiting for the slot). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "helper_sdk.h"
#include "helper_weftd.h"
#include "helper_worker.h"
#include "weft/worker.h"

#define TA_QUEUE "q-worker-activity"
/* Worker long-poll: short, so that a stop drains quickly. */
#define TA_POLL_MS 300u
/* The scripted decider's long-poll. */
#define TA_DRIVER_POLL_MS 200u
/* Longest wait for a workflow's result. */
#define TA_RESULT_WAIT_MS 30000u
/* Start-to-close of scheduled activities, and the heartbeat timeout of "hb". */
#define TA_START_TO_CLOSE_MS 10000u
#define TA_HEARTBEAT_TIMEOUT_MS 5000u
/* How long the "slow" activity of the drain test works. */
#define TA_SLOW_MS 1500u
/* Longest wait for an activity to reach a point the test waits for. */
#define TA_FLAG_WAIT_MS 20000u
/* Bytes of a result string. */
#define TA_RESULT_BYTES 2048u
/* How long the "timed" activity works, and the most its execution may start after the server
 * recorded its start (far below TA_TIMED_MS, which a task waiting for the slot would take). */
#define TA_TIMED_MS 800u
#define TA_TIMED_SLACK_MS 400u
/* Workflows of the slot test. */
#define TA_TIMED_RUNS 2u

/* What the activity functions saw, shared with the test thread. */
typedef struct ta_seen {
    atomic_int echo_calls;         /* "echo" executions */
    atomic_bool echo_info_ok;      /* info of the last "echo" matched the task */
    atomic_int flaky_calls;        /* "flaky" executions */
    atomic_bool flaky_details_ok;  /* attempt n > 1 saw attempt n-1's heartbeat details */
    atomic_bool async_token_ready; /* async_token holds the last "async" token */
    uint8_t async_token[512];      /* copy of the token (the test completes by it) */
    atomic_uint async_token_len;   /* bytes in async_token */
    atomic_bool hb_started;        /* "hb" is heartbeating */
    atomic_bool hb_saw_cancel;     /* a heartbeat returned WEFT_WF_CANCELED */
    atomic_bool slow_started;      /* "slow" began */
    atomic_bool slow_returned;     /* "slow" returned */
    atomic_int timed_running;      /* "timed" executions now */
    atomic_int timed_max_running;  /* most "timed" executions at once */
    atomic_uint_fast64_t timed_start_ms[TA_TIMED_RUNS]; /* wall clock at start, per workflow */
} ta_seen;

typedef struct ta {
    weftd w;          /* the server */
    weft_client *c;   /* the worker's client */
    weft_client *drv; /* the decider's and the test's client */
    pthread_t driver; /* scripted decider thread */
    atomic_bool driver_stop;
    weft_worker *wk; /* the worker under test */
    sdk_runner run;  /* the thread inside weft_worker_run */
    ta_seen seen;    /* what the activities saw */
    bool passed;     /* set at the end of each test body */
} ta;

static const char *const ta_flags[] = {
    "--shards", "2", "--election-timeout-ms", "300", "--heartbeat-timeout-ms", "50", NULL};

static ta ta_state;

/* ---- The scripted workflow: input "<activity type>|<input>|<max attempts>" ---- */

/* The activity outcome event of a1, or NULL while it is open. */
static const weft_event *ta_outcome(const weft_event *ev, uint32_t n) {
    static const uint32_t types[] = {WEFT_EV_ACTIVITY_TASK_COMPLETED, WEFT_EV_ACTIVITY_TASK_FAILED,
                                     WEFT_EV_ACTIVITY_TASK_TIMED_OUT,
                                     WEFT_EV_ACTIVITY_TASK_CANCELED};
    for (unsigned i = 0; i < WEFT_ARRAY_LEN(types); i++) {
        const weft_event *e = wk_find(ev, n, types[i], "a1");
        if (e != NULL) return e;
    }
    return NULL;
}

/* The workflow's result text for the activity outcome `e`. */
static void ta_outcome_text(const weft_event *e, char *buf, size_t cap) {
    switch (e->event_type) {
    case WEFT_EV_ACTIVITY_TASK_COMPLETED:
        snprintf(buf, cap, "completed:%.*s", (int)e->result.len, (const char *)e->result.ptr);
        break;
    case WEFT_EV_ACTIVITY_TASK_FAILED:
        snprintf(buf, cap, "failed:%.*s:%.*s", (int)e->failure.type.len, e->failure.type.ptr,
                 (int)e->failure.message.len, e->failure.message.ptr);
        break;
    case WEFT_EV_ACTIVITY_TASK_CANCELED:
        snprintf(buf, cap, "canceled");
        break;
    default:
        snprintf(buf, cap, "timed-out");
        break;
    }
}

/* Decides one task of the scripted workflow; returns the command count. `text` backs the
 * strings the commands borrow. */
static uint32_t ta_decide(const weft_poll_wft_resp *t, weft_command *cmds, char *text, size_t cap) {
    const weft_event *ev = t->events;
    uint32_t n = t->events_count;
    const weft_event *st = wk_find(ev, n, WEFT_EV_WORKFLOW_EXECUTION_STARTED, NULL);
    const weft_event *sched = wk_find(ev, n, WEFT_EV_ACTIVITY_TASK_SCHEDULED, "a1");
    if (sched == NULL) {
        char type[128] = "", input[256] = "";
        unsigned attempts = 1;
        snprintf(text, cap, "%.*s", (int)st->input.len, (const char *)st->input.ptr);
        if (sscanf(text, "%127[^|]|%255[^|]|%u", type, input, &attempts) < 1) return 0;
        size_t tl = strlen(type);
        memmove(text, type, tl + 1);
        memmove(text + tl + 1, input, strlen(input) + 1);
        weft_retry_policy retry = {.initial_interval_ms = 100,
                                   .backoff_coefficient = 2.0,
                                   .maximum_interval_ms = 500,
                                   .maximum_attempts = attempts};
        cmds[0] = wk_cmd_activity("a1", text, text + tl + 1, TA_START_TO_CLOSE_MS, &retry);
        cmds[0].heartbeat_timeout_ms = TA_HEARTBEAT_TIMEOUT_MS;
        return 1;
    }
    const weft_event *done = ta_outcome(ev, n);
    if (done != NULL) {
        ta_outcome_text(done, text, cap);
        cmds[0] = wk_cmd_complete(text);
        return 1;
    }
    if (wk_find(ev, n, WEFT_EV_WORKFLOW_EXECUTION_SIGNALED, "cancel") != NULL &&
        wk_find(ev, n, WEFT_EV_ACTIVITY_TASK_CANCEL_REQUESTED, NULL) == NULL) {
        cmds[0] = (weft_command){.type = WEFT_CMD_REQUEST_CANCEL_ACTIVITY,
                                 .scheduled_event_id = sched->event_id};
        return 1;
    }
    return 0;
}

static void *ta_driver_main(void *arg) {
    ta *t = arg;
    while (!atomic_load(&t->driver_stop)) {
        weft_response h = {0};
        weft_poll_wft_resp task;
        weft_err err;
        int rc = wk_poll_wft(t->drv, TA_QUEUE, TA_DRIVER_POLL_MS, &task, &h, &err);
        if (rc == 1) {
            weft_command cmds[WK_COMMANDS_MAX];
            char text[TA_RESULT_BYTES];
            uint32_t n = ta_decide(&task, cmds, text, sizeof text);
            rc = wk_complete_wft(t->drv, &task, cmds, n, &err);
            if (rc != 0)
                fprintf(stderr, "driver: complete: %s %s\n", weft_error_name(rc), err.message);
        } else if (rc < 0) {
            fprintf(stderr, "driver: poll: %s %s\n", weft_error_name(rc), err.message);
            weftd_sleep_ms(100);
        }
        weft_response_free(&h);
    }
    return NULL;
}

/* Starts a scripted workflow; returns its run id in run_id. */
static void ta_start(ta *t, const char *workflow_id, const char *input, char *run_id, size_t cap) {
    sdk_start(t->drv, workflow_id, "scripted", TA_QUEUE, input, run_id, cap);
}

/* Waits for the workflow to complete and copies its result text. */
static void ta_result(ta *t, const char *workflow_id, char *buf, size_t cap) {
    assert_int_equal(sdk_result(t->drv, workflow_id, TA_RESULT_WAIT_MS, buf, cap),
                     WEFT_STATUS_COMPLETED);
}

/* Starts one scripted workflow and returns its result text. */
static void ta_run_workflow(ta *t, const char *workflow_id, const char *input, char *buf,
                            size_t cap) {
    char run_id[128];
    ta_start(t, workflow_id, input, run_id, sizeof run_id);
    ta_result(t, workflow_id, buf, cap);
}

static void ta_wait_flag(atomic_bool *flag) {
    uint64_t deadline = weft_mono_ms() + TA_FLAG_WAIT_MS;
    while (!atomic_load(flag)) {
        assert_true(weft_mono_ms() < deadline);
        weftd_sleep_ms(10);
    }
}

/* ---- Activities ---- */

/* Returns "echo:<input>" from the arena; checks the info against the task. */
static int act_echo(weft_act *act, weft_bytes input, weft_bytes *out, void *arg) {
    ta_seen *seen = arg;
    atomic_fetch_add(&seen->echo_calls, 1);
    const weft_act_info *info = weft_act_info_get(act);
    bool ok = strcmp(info->namespace_, WEFT_DEFAULT_NAMESPACE) == 0 &&
              strncmp(info->workflow_id, "wa-echo", 7) == 0 && strlen(info->run_id) > 0 &&
              strcmp(info->activity_id, "a1") == 0 && strcmp(info->activity_type, "echo") == 0 &&
              info->attempt == 1 && info->scheduled_time_ms > 0 && info->started_time_ms > 0 &&
              info->deadline_ms == info->started_time_ms + TA_START_TO_CLOSE_MS &&
              info->heartbeat_timeout_ms == TA_HEARTBEAT_TIMEOUT_MS &&
              info->heartbeat_details.len == 0 && weft_act_task_token(act).len > 0;
    atomic_store(&seen->echo_info_ok, ok);
    uint8_t *buf = weft_act_alloc(act, 5 + (size_t)input.len);
    if (buf == NULL) return weft_act_fail(act, "NoMemory", "arena", false);
    memcpy(buf, "echo:", 5);
    if (input.len > 0) memcpy(buf + 5, input.ptr, input.len);
    *out = (weft_bytes){.ptr = buf, .len = 5 + input.len};
    return 0;
}

/* Heartbeats "progress-<attempt>", fails twice, succeeds on attempt 3. */
static int act_flaky(weft_act *act, weft_bytes input, weft_bytes *out, void *arg) {
    (void)input;
    ta_seen *seen = arg;
    atomic_fetch_add(&seen->flaky_calls, 1);
    const weft_act_info *info = weft_act_info_get(act);
    if (info->attempt > 1) {
        char want[32];
        snprintf(want, sizeof want, "progress-%u", info->attempt - 1);
        bool ok = info->heartbeat_details.len == strlen(want) &&
                  memcmp(info->heartbeat_details.ptr, want, strlen(want)) == 0;
        if (!ok) atomic_store(&seen->flaky_details_ok, false);
    }
    char *details = weft_act_alloc(act, 32);
    snprintf(details, 32, "progress-%u", info->attempt);
    int rc =
        weft_act_heartbeat(act, (weft_bytes){(const uint8_t *)details, (uint32_t)strlen(details)});
    if (rc != 0) return weft_act_fail(act, "HeartbeatFailed", weft_error_name(rc), false);
    if (info->attempt < 3) return weft_act_fail(act, "Transient", "try again", false);
    static const char ok[] = "third time lucky";
    *out = (weft_bytes){(const uint8_t *)ok, sizeof ok - 1};
    return 0;
}

static int act_fatal(weft_act *act, weft_bytes input, weft_bytes *out, void *arg) {
    (void)input, (void)out, (void)arg;
    return weft_act_fail(act, "Fatal", "the card is stolen", true);
}

static int act_bad_rc(weft_act *act, weft_bytes input, weft_bytes *out, void *arg) {
    (void)act, (void)input, (void)out, (void)arg;
    return -5;
}

/* Keeps a copy of its token and leaves the activity open. */
static int act_async(weft_act *act, weft_bytes input, weft_bytes *out, void *arg) {
    (void)input, (void)out;
    ta_seen *seen = arg;
    weft_bytes tok = weft_act_task_token(act);
    if (tok.len > sizeof seen->async_token) return weft_act_fail(act, "TokenTooLong", "", true);
    memcpy(seen->async_token, tok.ptr, tok.len);
    atomic_store(&seen->async_token_len, tok.len);
    atomic_store(&seen->async_token_ready, true);
    return weft_act_async(act);
}

/* Heartbeats until the workflow cancels it, then reports the cancellation. */
static int act_hb(weft_act *act, weft_bytes input, weft_bytes *out, void *arg) {
    (void)input, (void)out;
    ta_seen *seen = arg;
    uint64_t deadline = weft_mono_ms() + TA_FLAG_WAIT_MS;
    atomic_store(&seen->hb_started, true);
    while (weft_mono_ms() < deadline) {
        int rc = weft_act_heartbeat(act, (weft_bytes){(const uint8_t *)"hb", 2});
        if (rc == WEFT_WF_CANCELED) {
            atomic_store(&seen->hb_saw_cancel, weft_act_cancel_requested(act));
            return weft_act_canceled(act);
        }
        if (rc != 0) return weft_act_fail(act, "HeartbeatFailed", weft_error_name(rc), false);
        weftd_sleep_ms(100);
    }
    return weft_act_fail(act, "NeverCanceled", "no cancel request arrived", true);
}

static int act_slow(weft_act *act, weft_bytes input, weft_bytes *out, void *arg) {
    (void)act, (void)input;
    ta_seen *seen = arg;
    atomic_store(&seen->slow_started, true);
    weftd_sleep_ms(TA_SLOW_MS);
    static const char done[] = "slow-done";
    *out = (weft_bytes){(const uint8_t *)done, sizeof done - 1};
    atomic_store(&seen->slow_returned, true);
    return 0;
}

/* Records its start (wall clock, per workflow "wa-timed-<n>") and how many run at once. */
static int act_timed(weft_act *act, weft_bytes input, weft_bytes *out, void *arg) {
    (void)input;
    ta_seen *seen = arg;
    uint64_t now = weft_wall_ms();
    unsigned n = 0;
    if (sscanf(weft_act_info_get(act)->workflow_id, "wa-timed-%u", &n) != 1 || n < 1 ||
        n > TA_TIMED_RUNS) {
        return weft_act_fail(act, "BadWorkflow", "not a wa-timed-<n> workflow", true);
    }
    atomic_store(&seen->timed_start_ms[n - 1], now);
    int running = atomic_fetch_add(&seen->timed_running, 1) + 1;
    int max = atomic_load(&seen->timed_max_running);
    while (running > max &&
           !atomic_compare_exchange_weak(&seen->timed_max_running, &max, running)) {
    }
    weftd_sleep_ms(TA_TIMED_MS);
    atomic_fetch_sub(&seen->timed_running, 1);
    static const char done[] = "timed";
    *out = (weft_bytes){(const uint8_t *)done, sizeof done - 1};
    return 0;
}

/* ---- The worker under test ---- */

static void ta_worker_new_with(ta *t, bool handle_signals, uint32_t activity_concurrency) {
    weft_worker_opts o = {
        .task_queue = TA_QUEUE,
        .identity = "ta-worker",
        .activity_concurrency = activity_concurrency,
        .poll_timeout_ms = TA_POLL_MS,
        .no_workflows = true,
        .handle_signals = handle_signals,
    };
    weft_err err;
    assert_int_equal(weft_worker_new(t->c, &o, &t->wk, &err), 0);
    static const struct {
        const char *type;
        weft_activity_fn fn;
    } acts[] = {{"echo", act_echo},     {"flaky", act_flaky}, {"fatal", act_fatal},
                {"bad_rc", act_bad_rc}, {"async", act_async}, {"hb", act_hb},
                {"slow", act_slow},     {"timed", act_timed}};
    for (unsigned i = 0; i < WEFT_ARRAY_LEN(acts); i++) {
        int rc = weft_worker_register_activity(t->wk, acts[i].type, acts[i].fn, &t->seen, &err);
        assert_int_equal(rc, 0);
    }
}

static void ta_worker_new(ta *t, bool handle_signals) {
    ta_worker_new_with(t, handle_signals, 4);
}

static void ta_worker_start(ta *t) {
    sdk_runner_start(&t->run, t->wk);
}

/* Stops the worker and returns how long weft_worker_run took to return. */
static uint64_t ta_worker_stop(ta *t) {
    uint64_t t0 = weft_mono_ms();
    if (t->run.running) assert_int_equal(sdk_runner_stop(&t->run), 0);
    return weft_mono_ms() - t0;
}

/* ---- Fixtures ---- */

static int ta_group_setup(void **state) {
    ta *t = &ta_state;
    memset(t, 0, sizeof *t);
    if (weftd_start(&t->w, ta_flags) != 0) return -1;
    if (weftd_client(&t->w, "ta-worker", &t->c) != 0) return -1;
    if (weftd_client(&t->w, "ta-driver", &t->drv) != 0) return -1;
    atomic_init(&t->driver_stop, false);
    if (pthread_create(&t->driver, NULL, ta_driver_main, t) != 0) return -1;
    *state = t;
    return 0;
}

static int ta_group_teardown(void **state) {
    ta *t = *state;
    atomic_store(&t->driver_stop, true);
    pthread_join(t->driver, NULL);
    weft_client_close(t->c);
    weft_client_close(t->drv);
    weftd_destroy(&t->w);
    return 0;
}

/* Each test gets a fresh worker on the shared server. */
static int ta_setup(void **state) {
    ta *t = *state;
    memset(&t->seen, 0, sizeof t->seen);
    atomic_store(&t->seen.flaky_details_ok, true);
    t->passed = false;
    ta_worker_new(t, false);
    ta_worker_start(t);
    return 0;
}

static int ta_teardown(void **state) {
    ta *t = *state;
    (void)ta_worker_stop(t);
    weft_worker_free(t->wk);
    t->wk = NULL;
    if (!t->passed) weftd_print_stderr(&t->w, WEFTD_STDERR_TAIL_LINES);
    return 0;
}

/* ---- Tests ---- */

static void test_result_and_info(void **state) {
    ta *t = *state;
    char result[TA_RESULT_BYTES];
    ta_run_workflow(t, "wa-echo-1", "echo|hello|1", result, sizeof result);
    assert_string_equal(result, "completed:echo:hello");
    assert_int_equal(atomic_load(&t->seen.echo_calls), 1);
    assert_true(atomic_load(&t->seen.echo_info_ok));
    /* Counters move once each call has returned, which may be after the run showed its
     * effect: stop the worker (its threads joined) before reading them. */
    (void)ta_worker_stop(t);
    weft_worker_stats s;
    weft_worker_stats_get(t->wk, &s);
    assert_int_equal(s.activities_completed, 1);
    assert_int_equal(s.activities_failed, 0);
    assert_int_equal(s.workflow_tasks_completed, 0); /* no_workflows */
    t->passed = true;
}

static void test_retry_with_heartbeat_details(void **state) {
    ta *t = *state;
    char result[TA_RESULT_BYTES];
    ta_run_workflow(t, "wa-flaky-1", "flaky|x|5", result, sizeof result);
    assert_string_equal(result, "completed:third time lucky");
    assert_int_equal(atomic_load(&t->seen.flaky_calls), 3);
    assert_true(atomic_load(&t->seen.flaky_details_ok));
    /* Counters move once each call has returned, which may be after the run showed its
     * effect: stop the worker (its threads joined) before reading them. */
    (void)ta_worker_stop(t);
    weft_worker_stats s;
    weft_worker_stats_get(t->wk, &s);
    assert_int_equal(s.activities_failed, 2);
    assert_int_equal(s.activities_completed, 1);
    t->passed = true;
}

static void test_non_retryable_failure(void **state) {
    ta *t = *state;
    char result[TA_RESULT_BYTES];
    /* Five attempts allowed, but the failure is non-retryable: one attempt. */
    ta_run_workflow(t, "wa-fatal-1", "fatal|x|5", result, sizeof result);
    assert_string_equal(result, "failed:Fatal:the card is stolen");
    /* Counters move once each call has returned, which may be after the run showed its
     * effect: stop the worker (its threads joined) before reading them. */
    (void)ta_worker_stop(t);
    weft_worker_stats s;
    weft_worker_stats_get(t->wk, &s);
    assert_int_equal(s.activities_failed, 1);
    t->passed = true;
}

static void test_unknown_type_and_bad_return(void **state) {
    ta *t = *state;
    char result[TA_RESULT_BYTES];
    ta_run_workflow(t, "wa-nope-1", "nope|x|1", result, sizeof result);
    assert_true(strncmp(result, "failed:UnknownActivityType:", 27) == 0);
    assert_non_null(strstr(result, "'nope'"));
    assert_non_null(strstr(result, "ta-worker"));
    assert_non_null(strstr(result, TA_QUEUE));
    ta_run_workflow(t, "wa-badrc-1", "bad_rc|x|1", result, sizeof result);
    assert_true(strncmp(result, "failed:ActivityError:", 21) == 0);
    assert_non_null(strstr(result, "-5"));
    t->passed = true;
}

static void test_async_completion_by_token(void **state) {
    ta *t = *state;
    char run_id[128], result[TA_RESULT_BYTES];
    weft_err err;
    /* Completed later by token, from another client. */
    ta_start(t, "wa-async-1", "async|x|1", run_id, sizeof run_id);
    ta_wait_flag(&t->seen.async_token_ready);
    weft_bytes tok = {t->seen.async_token, atomic_load(&t->seen.async_token_len)};
    weft_bytes late = {(const uint8_t *)"late", 4};
    assert_int_equal(weft_activity_complete_by_token(t->drv, NULL, tok, late, &err), 0);
    ta_result(t, "wa-async-1", result, sizeof result);
    assert_string_equal(result, "completed:late");
    /* A second completion by the same token is refused: one outcome per activity (G5). */
    int rc = weft_activity_complete_by_token(t->drv, NULL, tok, late, &err);
    assert_true(rc == -WEFT_E_NOT_FOUND || rc == -WEFT_E_FAILED_PRECONDITION);
    /* Failed later by token, non-retryable. */
    atomic_store(&t->seen.async_token_ready, false);
    ta_start(t, "wa-async-2", "async|x|3", run_id, sizeof run_id);
    ta_wait_flag(&t->seen.async_token_ready);
    tok = (weft_bytes){t->seen.async_token, atomic_load(&t->seen.async_token_len)};
    assert_int_equal(
        weft_activity_fail_by_token(t->drv, NULL, tok, "Declined", "by the approver", true, &err),
        0);
    ta_result(t, "wa-async-2", result, sizeof result);
    assert_string_equal(result, "failed:Declined:by the approver");
    weft_worker_stats s;
    weft_worker_stats_get(t->wk, &s);
    assert_int_equal(s.activities_completed, 0); /* the worker itself reported nothing */
    assert_int_equal(s.activities_failed, 0);
    t->passed = true;
}

static void test_heartbeat_cancel(void **state) {
    ta *t = *state;
    char run_id[128], result[TA_RESULT_BYTES];
    ta_start(t, "wa-hb-1", "hb|x|1", run_id, sizeof run_id);
    ta_wait_flag(&t->seen.hb_started);
    weft_signal_req sig = {.workflow_id = WEFT_STR_LIT("wa-hb-1"),
                           .signal_name = WEFT_STR_LIT("cancel")};
    weft_err err;
    assert_int_equal(weft_client_signal(t->drv, &sig, &err), 0);
    ta_result(t, "wa-hb-1", result, sizeof result);
    assert_string_equal(result, "canceled");
    assert_true(atomic_load(&t->seen.hb_saw_cancel));
    t->passed = true;
}

/* weft_worker_stop while an activity runs: run returns only after it completed and its result
 * was reported. */
static void test_stop_drains(void **state) {
    ta *t = *state;
    char run_id[128], result[TA_RESULT_BYTES];
    ta_start(t, "wa-slow-1", "slow|x|1", run_id, sizeof run_id);
    ta_wait_flag(&t->seen.slow_started);
    uint64_t took_ms = ta_worker_stop(t);
    assert_true(atomic_load(&t->seen.slow_returned));
    weft_worker_stats s;
    weft_worker_stats_get(t->wk, &s);
    assert_int_equal(s.activities_completed, 1);
    /* Drain waits for the activity and for polls that end within TA_POLL_MS, not for long
     * (the bound leaves room for a loaded CI machine). */
    assert_true(took_ms < TA_SLOW_MS + 10000u);
    ta_result(t, "wa-slow-1", result, sizeof result);
    assert_string_equal(result, "completed:slow-done");
    /* The worker runs again after a stop. */
    ta_worker_start(t);
    ta_run_workflow(t, "wa-echo-2", "echo|again|1", result, sizeof result);
    assert_string_equal(result, "completed:echo:again");
    t->passed = true;
}

static void ta_custom_handler(int sig) {
    (void)sig;
}

/* With handle_signals, SIGTERM stops run (drain) and the previous handler is back afterwards. */
static void test_sigterm(void **state) {
    ta *t = *state;
    (void)ta_worker_stop(t);
    weft_worker_free(t->wk);
    struct sigaction custom, prev, now;
    memset(&custom, 0, sizeof custom);
    custom.sa_handler = ta_custom_handler;
    sigemptyset(&custom.sa_mask);
    assert_int_equal(sigaction(SIGTERM, &custom, &prev), 0);
    ta_worker_new(t, true);
    ta_worker_start(t);
    char run_id[128], result[TA_RESULT_BYTES];
    ta_start(t, "wa-slow-2", "slow|x|1", run_id, sizeof run_id);
    ta_wait_flag(&t->seen.slow_started);
    assert_int_equal(kill(getpid(), SIGTERM), 0);
    assert_int_equal(sdk_runner_join(&t->run), 0);
    assert_true(atomic_load(&t->seen.slow_returned));
    ta_result(t, "wa-slow-2", result, sizeof result);
    assert_string_equal(result, "completed:slow-done");
    assert_int_equal(sigaction(SIGTERM, NULL, &now), 0);
    assert_ptr_equal(now.sa_handler, ta_custom_handler);
    assert_int_equal(sigaction(SIGTERM, &prev, NULL), 0);
    t->passed = true;
}

/* A stop before run makes run return at once; options and registrations are checked. */
static void test_stop_before_run_and_errors(void **state) {
    ta *t = *state;
    (void)ta_worker_stop(t);
    weft_err err;
    weft_worker_stop(t->wk);
    uint64_t t0 = weft_mono_ms();
    assert_int_equal(weft_worker_run(t->wk, &err), 0);
    assert_true(weft_mono_ms() - t0 < 10000u);
    /* Registration: duplicate, empty, too long. */
    assert_int_equal(weft_worker_register_activity(t->wk, "echo", act_echo, NULL, &err),
                     -WEFT_E_INVALID_ARGUMENT);
    assert_int_equal(weft_worker_register_activity(t->wk, "", act_echo, NULL, &err),
                     -WEFT_E_INVALID_ARGUMENT);
    char *long_name = malloc(WEFT_WORKER_NAME_BYTES_MAX + 2);
    memset(long_name, 'x', WEFT_WORKER_NAME_BYTES_MAX + 1);
    long_name[WEFT_WORKER_NAME_BYTES_MAX + 1] = '\0';
    assert_int_equal(weft_worker_register_activity(t->wk, long_name, act_echo, NULL, &err),
                     -WEFT_E_INVALID_ARGUMENT);
    /* Options. */
    weft_worker *w2 = NULL;
    weft_worker_opts o = {.task_queue = NULL};
    assert_int_equal(weft_worker_new(t->c, &o, &w2, &err), -WEFT_E_INVALID_ARGUMENT);
    assert_null(w2);
    o = (weft_worker_opts){.task_queue = "q", .wf_stack_bytes = 1024};
    assert_int_equal(weft_worker_new(t->c, &o, &w2, &err), -WEFT_E_INVALID_ARGUMENT);
    o = (weft_worker_opts){.task_queue = long_name};
    assert_int_equal(weft_worker_new(t->c, &o, &w2, &err), -WEFT_E_INVALID_ARGUMENT);
    free(long_name);
    /* Nothing registered: nothing to run. */
    o = (weft_worker_opts){.task_queue = "q"};
    assert_int_equal(weft_worker_new(t->c, &o, &w2, &err), 0);
    assert_int_equal(weft_worker_run(w2, &err), -WEFT_E_INVALID_ARGUMENT);
    weft_worker_stats s;
    weft_worker_stats_get(w2, &s);
    assert_int_equal(s.cached_runs, 0);
    weft_worker_free(w2);
    weft_worker_free(NULL);
    /* Registration while running is refused (until run begins it is accepted). */
    ta_worker_start(t);
    uint64_t deadline = weft_mono_ms() + TA_FLAG_WAIT_MS;
    int rc = 0;
    for (unsigned i = 0; rc == 0; i++) {
        assert_true(weft_mono_ms() < deadline);
        char name[32];
        snprintf(name, sizeof name, "late-%u", i);
        rc = weft_worker_register_activity(t->wk, name, act_echo, NULL, &err);
        if (rc == 0) weftd_sleep_ms(5);
    }
    assert_int_equal(rc, -WEFT_E_INVALID_ARGUMENT);
    assert_int_equal(weft_worker_run(t->wk, &err), -WEFT_E_INVALID_ARGUMENT); /* running */
    t->passed = true;
}

/* activity_concurrency 1 and two activities ready at once: they run one after the other, and
 * the second is not taken from the server (started) until the first finished: the slot is
 * taken before the poll, so no task is started on the server and then left waiting. */
static void test_one_slot_no_task_waits(void **state) {
    ta *t = *state;
    (void)ta_worker_stop(t);
    weft_worker_free(t->wk);
    ta_worker_new_with(t, false, 1);
    ta_worker_start(t);
    char run_id[128], result[TA_RESULT_BYTES], wf[32];
    for (unsigned i = 1; i <= TA_TIMED_RUNS; i++) {
        snprintf(wf, sizeof wf, "wa-timed-%u", i);
        ta_start(t, wf, "timed|x|1", run_id, sizeof run_id);
    }
    for (unsigned i = 1; i <= TA_TIMED_RUNS; i++) {
        snprintf(wf, sizeof wf, "wa-timed-%u", i);
        ta_result(t, wf, result, sizeof result);
        assert_string_equal(result, "completed:timed");
    }
    assert_int_equal(atomic_load(&t->seen.timed_max_running), 1);
    for (unsigned i = 1; i <= TA_TIMED_RUNS; i++) {
        snprintf(wf, sizeof wf, "wa-timed-%u", i);
        wk_history hist;
        weft_err err;
        assert_int_equal(wk_history_get(t->drv, wf, "", &hist, &err), 0);
        const weft_event *st =
            wk_find(hist.events, hist.count, WEFT_EV_ACTIVITY_TASK_STARTED, NULL);
        assert_non_null(st);
        uint64_t server_ms = st->event_time_ms;
        uint64_t exec_ms = atomic_load(&t->seen.timed_start_ms[i - 1]);
        wk_history_free(&hist);
        /* Same host, same clock: the execution began right after the server started it. */
        assert_true(exec_ms + 50u >= server_ms);
        if (exec_ms > server_ms + TA_TIMED_SLACK_MS) {
            fail_msg("%s: activity started on the server at %llu but executed at %llu", wf,
                     (unsigned long long)server_ms, (unsigned long long)exec_ms);
        }
    }
    t->passed = true;
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_result_and_info, ta_setup, ta_teardown),
        cmocka_unit_test_setup_teardown(test_retry_with_heartbeat_details, ta_setup, ta_teardown),
        cmocka_unit_test_setup_teardown(test_non_retryable_failure, ta_setup, ta_teardown),
        cmocka_unit_test_setup_teardown(test_unknown_type_and_bad_return, ta_setup, ta_teardown),
        cmocka_unit_test_setup_teardown(test_async_completion_by_token, ta_setup, ta_teardown),
        cmocka_unit_test_setup_teardown(test_heartbeat_cancel, ta_setup, ta_teardown),
        cmocka_unit_test_setup_teardown(test_stop_drains, ta_setup, ta_teardown),
        cmocka_unit_test_setup_teardown(test_sigterm, ta_setup, ta_teardown),
        cmocka_unit_test_setup_teardown(test_stop_before_run_and_errors, ta_setup, ta_teardown),
        cmocka_unit_test_setup_teardown(test_one_slot_no_task_waits, ta_setup, ta_teardown),
    };
    return cmocka_run_group_tests(tests, ta_group_setup, ta_group_teardown);
}
