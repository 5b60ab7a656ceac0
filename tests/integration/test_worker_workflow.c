/* test_worker_workflow.c: straight-line C workflows run by a real weft_worker against a real
 * weftd (DESIGN section 11): two activities in sequence, a 1 s durable sleep and a signal wait,
 * with the sticky cache on (later tasks feed the cached run: sticky hits) and off (every task
 * replays the full history), with a cache of one run (evictions), across a worker stop that
 * drains a running activity and a fresh worker that replays, and with a workflow type the worker
 * does not know and code that no longer matches its history (the task is failed and retried). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "helper_sdk.h"
#include "helper_weftd.h"
#include "helper_worker.h"
#include "weft/worker.h"

#define TW_QUEUE "q-worker-workflow"
/* Worker long-poll: short, so that a stop drains quickly. */
#define TW_POLL_MS 300u
/* Workflows run at once in the sticky tests. */
#define TW_RUNS 3u
/* The workflow's durable sleep. */
#define TW_SLEEP_MS 1000u
/* How long the "slow" activity of the drain test works. */
#define TW_SLOW_MS 1500u
/* Longest wait for a workflow's result, or for an event to show up in its history. Covers the
 * server's 5 s sticky fallback after a worker stopped. */
#define TW_WAIT_MS 30000u
/* Bytes of a result string. */
#define TW_TEXT_BYTES 512u
/* The big-history test: activities whose results are this large, so that the history outgrows
 * the half frame (2 MiB) a poll response may carry and the worker must page in the rest. */
#define TW_BLOB_BYTES (900u * 1024u)
#define TW_BLOBS 4u
/* Signals sent back to back in the burst test. */
#define TW_TICKS 20u
/* Work of one step of the "busy" workflow, and its runs. */
#define TW_BUSY_MS 150u
#define TW_BUSY_RUNS 4u

typedef struct tw {
    weftd w;                   /* the server */
    weft_client *c;            /* the worker's client */
    weft_client *drv;          /* the test's client */
    weft_worker *wk;           /* the worker under test */
    sdk_runner run;            /* the thread inside weft_worker_run */
    atomic_int charges;        /* "charge" executions */
    atomic_int ships;          /* "ship" executions */
    atomic_bool slow_started;  /* "slow" began */
    atomic_bool slow_returned; /* "slow" returned */
    atomic_int busy_now;       /* "busy" workflow steps running now */
    atomic_int busy_max;       /* the most that ran at once */
    bool passed;               /* set at the end of each test body */
} tw;

static const char *const tw_flags[] = {
    "--shards", "2", "--election-timeout-ms", "300", "--heartbeat-timeout-ms", "50", NULL};

static tw tw_state;

/* ---- Activities ---- */

/* Returns "<prefix>:<input>" from the arena. */
static int tw_prefixed(weft_act *act, const char *prefix, weft_bytes input, weft_bytes *out) {
    size_t n = strlen(prefix);
    uint8_t *buf = weft_act_alloc(act, n + 1 + input.len);
    if (buf == NULL) return weft_act_fail(act, "NoMemory", "arena", false);
    memcpy(buf, prefix, n);
    buf[n] = ':';
    if (input.len > 0) memcpy(buf + n + 1, input.ptr, input.len);
    *out = (weft_bytes){.ptr = buf, .len = (uint32_t)(n + 1 + input.len)};
    return 0;
}

static int act_charge(weft_act *act, weft_bytes input, weft_bytes *out, void *arg) {
    tw *t = arg;
    atomic_fetch_add(&t->charges, 1);
    return tw_prefixed(act, "charged", input, out);
}

static int act_ship(weft_act *act, weft_bytes input, weft_bytes *out, void *arg) {
    tw *t = arg;
    atomic_fetch_add(&t->ships, 1);
    return tw_prefixed(act, "shipped", input, out);
}

static int act_slow(weft_act *act, weft_bytes input, weft_bytes *out, void *arg) {
    tw *t = arg;
    atomic_store(&t->slow_started, true);
    weftd_sleep_ms(TW_SLOW_MS);
    atomic_store(&t->slow_returned, true);
    return tw_prefixed(act, "slow", input, out);
}

/* Returns TW_BLOB_BYTES bytes of the input's first byte. */
static int act_blob(weft_act *act, weft_bytes input, weft_bytes *out, void *arg) {
    (void)arg;
    uint8_t *buf = weft_act_alloc(act, TW_BLOB_BYTES);
    if (buf == NULL) return weft_act_fail(act, "NoMemory", "arena", false);
    memset(buf, input.len > 0 ? input.ptr[0] : 'x', TW_BLOB_BYTES);
    *out = (weft_bytes){.ptr = buf, .len = TW_BLOB_BYTES};
    return 0;
}

/* ---- Workflows ---- */

/* Concatenates "<a>|<b>" into the run's arena. */
static weft_bytes tw_join(weft_wf *wf, weft_bytes a, weft_bytes b) {
    uint8_t *p = weft_wf_alloc(wf, (size_t)a.len + 1 + b.len);
    if (p == NULL) return (weft_bytes){0};
    if (a.len > 0) memcpy(p, a.ptr, a.len);
    p[a.len] = '|';
    if (b.len > 0) memcpy(p + a.len + 1, b.ptr, b.len);
    return (weft_bytes){.ptr = p, .len = a.len + 1 + b.len};
}

/* The order: charge, then ship (both activities), sleep 1 s, wait for "approve", complete with
 * "<ship result>|<signal payload>". `arg` names the first activity ("charge", or "slow"). */
static int wf_order(weft_wf *wf, weft_bytes input, weft_bytes *out, void *arg) {
    const char *first = arg;
    weft_activity_opts o = {.start_to_close_timeout_ms = 10000,
                            .retry = {.initial_interval_ms = 100, .maximum_attempts = 3}};
    weft_bytes r1, r2, approval;
    if (weft_wf_activity(wf, first, input, &o, &r1) != 0) {
        return weft_wf_fail(wf, "FirstFailed", weft_wf_last_failure(wf)->message);
    }
    if (weft_wf_activity(wf, "ship", r1, &o, &r2) != 0) {
        return weft_wf_fail(wf, "ShipFailed", weft_wf_last_failure(wf)->message);
    }
    if (weft_wf_sleep(wf, TW_SLEEP_MS) != 0) return weft_wf_fail(wf, "SleepFailed", "sleep");
    if (weft_wf_signal_wait(wf, "approve", 0, &approval) != 0) {
        return weft_wf_fail(wf, "NotApproved", "signal wait");
    }
    *out = tw_join(wf, r2, approval);
    return WEFT_WF_RESULT_COMPLETE;
}

/* What a changed deploy of "order" might do: ship before charging. Replaying a history of
 * wf_order through it is a non-determinism error. */
static int wf_order_changed(weft_wf *wf, weft_bytes input, weft_bytes *out, void *arg) {
    (void)arg;
    weft_activity_opts o = {.start_to_close_timeout_ms = 10000};
    weft_bytes r;
    if (weft_wf_activity(wf, "ship", input, &o, &r) != 0) return weft_wf_fail(wf, "X", "x");
    *out = r;
    return WEFT_WF_RESULT_COMPLETE;
}

/* TW_BLOBS blob activities in sequence; completes with the bytes received and their check. */
static int wf_blobs(weft_wf *wf, weft_bytes input, weft_bytes *out, void *arg) {
    (void)input, (void)arg;
    uint64_t total = 0;
    bool intact = true;
    for (unsigned i = 0; i < TW_BLOBS; i++) {
        char c = (char)('a' + i);
        weft_bytes r;
        weft_bytes in = {.ptr = (const uint8_t *)&c, .len = 1};
        if (weft_wf_activity(wf, "blob", in, NULL, &r) != 0) return weft_wf_fail(wf, "Blob", "x");
        total += r.len;
        for (uint32_t k = 0; k < r.len; k++)
            intact = intact && r.ptr[k] == (uint8_t)c;
    }
    char *text = weft_wf_alloc(wf, 64);
    snprintf(text, 64, "%llu %s", (unsigned long long)total, intact ? "intact" : "corrupt");
    *out = (weft_bytes){.ptr = (const uint8_t *)text, .len = (uint32_t)strlen(text)};
    return WEFT_WF_RESULT_COMPLETE;
}

/* Waits for TW_TICKS "tick" signals; completes with how many arrived. */
static int wf_ticks(weft_wf *wf, weft_bytes input, weft_bytes *out, void *arg) {
    (void)input, (void)arg;
    unsigned n = 0;
    for (; n < TW_TICKS; n++) {
        weft_bytes payload;
        if (weft_wf_signal_wait(wf, "tick", 0, &payload) != 0) break;
    }
    char *text = weft_wf_alloc(wf, 16);
    snprintf(text, 16, "%u", n);
    *out = (weft_bytes){.ptr = (const uint8_t *)text, .len = (uint32_t)strlen(text)};
    return WEFT_WF_RESULT_COMPLETE;
}

/* Works TW_BUSY_MS on the worker's thread (not replayed), sleeps durably, works again: the
 * second step comes on the sticky queue while other runs' first steps come on the shared one. */
static void tw_busy_step(weft_wf *wf, tw *t) {
    if (weft_wf_is_replaying(wf)) return;
    int now = atomic_fetch_add(&t->busy_now, 1) + 1;
    int max = atomic_load(&t->busy_max);
    while (now > max && !atomic_compare_exchange_weak(&t->busy_max, &max, now)) {
    }
    weftd_sleep_ms(TW_BUSY_MS);
    atomic_fetch_sub(&t->busy_now, 1);
}

static int wf_busy(weft_wf *wf, weft_bytes input, weft_bytes *out, void *arg) {
    (void)input;
    tw *t = arg;
    tw_busy_step(wf, t);
    if (weft_wf_sleep(wf, 1) != 0) return weft_wf_fail(wf, "Sleep", "x");
    tw_busy_step(wf, t);
    *out = (weft_bytes){.ptr = (const uint8_t *)"busy", .len = 4};
    return WEFT_WF_RESULT_COMPLETE;
}

/* ---- The worker under test ---- */

/* Creates and starts a worker for "order" (first activity `first`) with `o` (task queue,
 * poll time and identity filled in here). */
static void tw_worker_start(tw *t, weft_worker_opts o, weft_workflow_fn fn, const char *first) {
    o.task_queue = TW_QUEUE;
    o.poll_timeout_ms = TW_POLL_MS;
    if (o.identity == NULL) o.identity = "tw-worker";
    weft_err err;
    int rc = weft_worker_new(t->c, &o, &t->wk, &err);
    if (rc != 0) fprintf(stderr, "worker: %s\n", err.message);
    assert_int_equal(rc, 0);
    assert_int_equal(weft_worker_register_workflow(t->wk, "order", fn, (void *)first, &err), 0);
    assert_int_equal(weft_worker_register_activity(t->wk, "charge", act_charge, t, &err), 0);
    assert_int_equal(weft_worker_register_activity(t->wk, "ship", act_ship, t, &err), 0);
    assert_int_equal(weft_worker_register_activity(t->wk, "slow", act_slow, t, &err), 0);
    assert_int_equal(weft_worker_register_activity(t->wk, "blob", act_blob, t, &err), 0);
    assert_int_equal(weft_worker_register_workflow(t->wk, "blobs", wf_blobs, NULL, &err), 0);
    assert_int_equal(weft_worker_register_workflow(t->wk, "ticks", wf_ticks, NULL, &err), 0);
    assert_int_equal(weft_worker_register_workflow(t->wk, "busy", wf_busy, t, &err), 0);
    sdk_runner_start(&t->run, t->wk);
}

/* Stops the worker (drain) and waits for weft_worker_run to return; keeps the worker. */
static void tw_worker_stop(tw *t) {
    if (t->run.running) assert_int_equal(sdk_runner_stop(&t->run), 0);
}

static void tw_worker_free(tw *t) {
    tw_worker_stop(t);
    weft_worker_free(t->wk);
    t->wk = NULL;
}

/* ---- Driving and checking runs ---- */

static void tw_start(tw *t, const char *workflow_id, const char *type, const char *input) {
    sdk_start(t->drv, workflow_id, type, TW_QUEUE, input, NULL, 0);
}

/* Waits until the run's history holds an event of `type` followed (not necessarily at once) by
 * a WorkflowTaskCompleted: the code has seen it and is waiting for what comes next. */
static void tw_wait_seen(tw *t, const char *workflow_id, uint32_t type) {
    uint64_t deadline = weft_mono_ms() + TW_WAIT_MS;
    for (;;) {
        wk_history h;
        weft_err err;
        int rc = wk_history_get(t->drv, workflow_id, NULL, &h, &err);
        bool seen = false;
        if (rc == 0) {
            const weft_event *e = wk_find(h.events, h.count, type, NULL);
            for (uint32_t i = 0; e != NULL && i < h.count && !seen; i++) {
                seen = h.events[i].event_id > e->event_id &&
                       h.events[i].event_type == WEFT_EV_WORKFLOW_TASK_COMPLETED;
            }
        }
        if (!seen && weft_mono_ms() >= deadline) wk_history_print(h.events, h.count);
        wk_history_free(&h);
        if (seen) return;
        assert_true(weft_mono_ms() < deadline);
        weftd_sleep_ms(50);
    }
}

static void tw_signal(tw *t, const char *workflow_id, const char *payload) {
    weft_signal_req sig = {
        .workflow_id = weft_str_c(workflow_id),
        .signal_name = WEFT_STR_LIT("approve"),
        .input = {.ptr = (const uint8_t *)payload, .len = (uint32_t)strlen(payload)}};
    weft_err err;
    int rc = weft_client_signal(t->drv, &sig, &err);
    if (rc != 0)
        fprintf(stderr, "signal %s: %s %s\n", workflow_id, weft_error_name(rc), err.message);
    assert_int_equal(rc, 0);
}

/* Waits for the run to complete and checks its result. */
static void tw_expect_result(tw *t, const char *workflow_id, const char *want) {
    char got[TW_TEXT_BYTES];
    assert_int_equal(sdk_result(t->drv, workflow_id, TW_WAIT_MS, got, sizeof got),
                     WEFT_STATUS_COMPLETED);
    assert_string_equal(got, want);
}

/* No workflow task of the run failed. */
static void tw_expect_no_task_failure(tw *t, const char *workflow_id) {
    wk_history h;
    weft_err err;
    assert_int_equal(wk_history_get(t->drv, workflow_id, NULL, &h, &err), 0);
    uint32_t failed = wk_count(h.events, h.count, WEFT_EV_WORKFLOW_TASK_FAILED, NULL);
    if (failed != 0) wk_history_print(h.events, h.count);
    assert_int_equal(failed, 0);
    wk_history_free(&h);
}

/* Runs TW_RUNS orders named <prefix>-<i> to completion, with the signal sent once each run
 * waits for it. */
static void tw_run_orders(tw *t, const char *prefix) {
    char id[TW_RUNS][64], input[64], payload[64], want[TW_TEXT_BYTES];
    for (unsigned i = 0; i < TW_RUNS; i++) {
        snprintf(id[i], sizeof id[i], "%s-%u", prefix, i);
        snprintf(input, sizeof input, "order-%u", i);
        tw_start(t, id[i], "order", input);
    }
    for (unsigned i = 0; i < TW_RUNS; i++) {
        tw_wait_seen(t, id[i], WEFT_EV_TIMER_FIRED);
        snprintf(payload, sizeof payload, "ok-%u", i);
        tw_signal(t, id[i], payload);
    }
    for (unsigned i = 0; i < TW_RUNS; i++) {
        snprintf(want, sizeof want, "shipped:charged:order-%u|ok-%u", i, i);
        tw_expect_result(t, id[i], want);
        tw_expect_no_task_failure(t, id[i]);
    }
}

/* ---- Fixtures ---- */

static int tw_group_setup(void **state) {
    tw *t = &tw_state;
    memset(t, 0, sizeof *t);
    if (weftd_start(&t->w, tw_flags) != 0) return -1;
    if (weftd_client(&t->w, "tw-worker", &t->c) != 0) return -1;
    if (weftd_client(&t->w, "tw-test", &t->drv) != 0) return -1;
    *state = t;
    return 0;
}

static int tw_group_teardown(void **state) {
    tw *t = *state;
    weft_client_close(t->c);
    weft_client_close(t->drv);
    weftd_destroy(&t->w);
    return 0;
}

static int tw_setup(void **state) {
    tw *t = *state;
    atomic_store(&t->charges, 0);
    atomic_store(&t->ships, 0);
    atomic_store(&t->slow_started, false);
    atomic_store(&t->slow_returned, false);
    atomic_store(&t->busy_now, 0);
    atomic_store(&t->busy_max, 0);
    t->passed = false;
    return 0;
}

static int tw_teardown(void **state) {
    tw *t = *state;
    if (t->wk != NULL) tw_worker_free(t);
    if (!t->passed) weftd_print_stderr(&t->w, WEFTD_STDERR_TAIL_LINES);
    return 0;
}

/* ---- Tests ---- */

static void test_sticky_cache_on(void **state) {
    tw *t = *state;
    tw_worker_start(t, (weft_worker_opts){.workflow_concurrency = 2, .activity_concurrency = 2},
                    wf_order, "charge");
    tw_run_orders(t, "tw-sticky");
    /* Counters move once each call has returned, which may be after the server showed its
     * effect: stop the worker (its threads joined) before reading them. */
    tw_worker_stop(t);
    weft_worker_stats s;
    weft_worker_stats_get(t->wk, &s);
    fprintf(stderr, "cache on: completed %llu failed %llu hits %llu misses %llu evictions %llu\n",
            (unsigned long long)s.workflow_tasks_completed,
            (unsigned long long)s.workflow_tasks_failed, (unsigned long long)s.sticky_hits,
            (unsigned long long)s.sticky_misses, (unsigned long long)s.cache_evictions);
    /* Per run: the first task, after charge, after ship, after the timer, after the signal. */
    assert_true(s.workflow_tasks_completed >= 5u * TW_RUNS);
    assert_int_equal(s.workflow_tasks_failed, 0);
    assert_true(s.sticky_hits > 0);
    assert_true(s.sticky_misses >= TW_RUNS); /* every first task */
    assert_int_equal(s.sticky_hits + s.sticky_misses, s.workflow_tasks_completed);
    assert_int_equal(s.activities_completed, 2u * TW_RUNS);
    assert_int_equal(s.cache_evictions, 0);
    assert_int_equal(s.cached_runs, 0); /* closed runs are not kept */
    assert_int_equal(atomic_load(&t->charges), (int)TW_RUNS);
    t->passed = true;
}

static void test_sticky_cache_off(void **state) {
    tw *t = *state;
    tw_worker_start(t,
                    (weft_worker_opts){.workflow_concurrency = 2,
                                       .activity_concurrency = 2,
                                       .sticky_cache_disabled = true},
                    wf_order, "charge");
    tw_run_orders(t, "tw-nocache");
    /* Counters move once each call has returned, which may be after the server showed its
     * effect: stop the worker (its threads joined) before reading them. */
    tw_worker_stop(t);
    weft_worker_stats s;
    weft_worker_stats_get(t->wk, &s);
    assert_true(s.workflow_tasks_completed >= 5u * TW_RUNS);
    assert_int_equal(s.workflow_tasks_failed, 0);
    assert_int_equal(s.sticky_hits, 0);
    assert_int_equal(s.sticky_misses, s.workflow_tasks_completed);
    assert_int_equal(s.cached_runs, 0);
    assert_int_equal(s.activities_completed, 2u * TW_RUNS);
    t->passed = true;
}

/* A cache of one run with three runs open: runs are evicted, and the evicted ones replay. */
static void test_cache_evictions(void **state) {
    tw *t = *state;
    tw_worker_start(t, (weft_worker_opts){.sticky_cache_runs = 1}, wf_order, "charge");
    tw_run_orders(t, "tw-evict");
    /* Counters move once each call has returned, which may be after the server showed its
     * effect: stop the worker (its threads joined) before reading them. */
    tw_worker_stop(t);
    weft_worker_stats s;
    weft_worker_stats_get(t->wk, &s);
    assert_int_equal(s.workflow_tasks_failed, 0);
    assert_true(s.cache_evictions > 0);
    assert_true(s.cached_runs <= 1);
    /* Each evicted run's next task came to this worker's sticky queue and missed: its older
     * events were paged in through GetHistory. */
    assert_true(s.sticky_misses >= TW_RUNS + s.cache_evictions);
    t->passed = true;
}

/* weft_worker_stop while an activity runs: run returns after the activity completed and was
 * reported; a new worker (empty cache) replays the run from its history and finishes it. */
static void test_stop_drains_then_replay(void **state) {
    tw *t = *state;
    tw_worker_start(t, (weft_worker_opts){0}, wf_order, "slow");
    tw_start(t, "tw-drain", "order", "parcel");
    uint64_t deadline = weft_mono_ms() + TW_WAIT_MS;
    while (!atomic_load(&t->slow_started)) {
        assert_true(weft_mono_ms() < deadline);
        weftd_sleep_ms(10);
    }
    tw_worker_stop(t);
    assert_true(atomic_load(&t->slow_returned));
    weft_worker_stats s;
    weft_worker_stats_get(t->wk, &s);
    assert_int_equal(s.activities_completed, 1);
    assert_int_equal(s.cached_runs, 1); /* the run waits in the cache of the stopped worker */
    tw_worker_free(t);
    /* A fresh worker: the next task replays the full history (after the server's sticky
     * fallback moves it off the old worker's sticky queue). */
    tw_worker_start(t, (weft_worker_opts){.identity = "tw-worker-2"}, wf_order, "slow");
    tw_wait_seen(t, "tw-drain", WEFT_EV_TIMER_FIRED);
    tw_signal(t, "tw-drain", "yes");
    tw_expect_result(t, "tw-drain", "shipped:slow:parcel|yes");
    tw_expect_no_task_failure(t, "tw-drain");
    weft_worker_stats_get(t->wk, &s);
    assert_true(s.sticky_misses >= 1);
    assert_int_equal(atomic_load(&t->ships), 1);
    t->passed = true;
}

/* Waits until describe shows a workflow task failure; returns its message. */
static void tw_wait_task_failure(tw *t, const char *workflow_id, char *msg, size_t cap) {
    uint64_t deadline = weft_mono_ms() + TW_WAIT_MS;
    for (;;) {
        weft_describe_req q = {.workflow_id = weft_str_c(workflow_id)};
        weft_describe_resp d;
        weft_response h = {0};
        weft_err err;
        assert_int_equal(weft_client_describe(t->drv, &q, &d, &h, &err), 0);
        bool failed = d.workflow_task_failures > 0;
        if (failed) {
            snprintf(msg, cap, "%.*s: %.*s", (int)d.last_workflow_task_failure.type.len,
                     d.last_workflow_task_failure.type.ptr,
                     (int)d.last_workflow_task_failure.message.len,
                     d.last_workflow_task_failure.message.ptr);
        }
        weft_response_free(&h);
        if (failed) return;
        assert_true(weft_mono_ms() < deadline);
        weftd_sleep_ms(50);
    }
}

static void tw_terminate(tw *t, const char *workflow_id) {
    weft_close_req req = {.workflow_id = weft_str_c(workflow_id), .reason = WEFT_STR_LIT("test")};
    weft_err err;
    assert_int_equal(weft_client_terminate(t->drv, &req, &err), 0);
}

/* A type the worker lacks, and code that diverges from history: the task is failed with a
 * message that says what to do, and describe shows it. */
static void test_task_failures(void **state) {
    tw *t = *state;
    tw_worker_start(t, (weft_worker_opts){0}, wf_order, "charge");
    char msg[TW_TEXT_BYTES];
    tw_start(t, "tw-unknown", "no-such-type", "x");
    tw_wait_task_failure(t, "tw-unknown", msg, sizeof msg);
    assert_non_null(strstr(msg, "UnknownWorkflowType"));
    assert_non_null(strstr(msg, "'no-such-type'"));
    assert_non_null(strstr(msg, "weft_worker_register_workflow"));
    tw_terminate(t, "tw-unknown");
    /* Run "order" to its signal wait, then deploy changed code on a fresh worker. */
    tw_start(t, "tw-nondet", "order", "o");
    tw_wait_seen(t, "tw-nondet", WEFT_EV_TIMER_FIRED);
    tw_worker_free(t);
    tw_worker_start(t, (weft_worker_opts){.identity = "tw-worker-changed"}, wf_order_changed, NULL);
    tw_signal(t, "tw-nondet", "go");
    tw_wait_task_failure(t, "tw-nondet", msg, sizeof msg);
    fprintf(stderr, "non-determinism failure: %s\n", msg);
    /* Counters move once each call has returned, which may be after the server showed its
     * effect: stop the worker (its threads joined) before reading them. */
    tw_worker_stop(t);
    weft_worker_stats s;
    weft_worker_stats_get(t->wk, &s);
    assert_true(s.workflow_tasks_failed >= 1);
    /* The fixed deploy (the original code) lets the run continue. */
    tw_worker_free(t);
    tw_worker_start(t, (weft_worker_opts){.identity = "tw-worker-fixed"}, wf_order, "charge");
    tw_expect_result(t, "tw-nondet", "shipped:charged:o|go");
    t->passed = true;
}

/* A history longer than a poll response may carry: without the cache every task is replayed
 * from the full history, which the worker pages in past the response's next_event_id. */
static void test_big_history(void **state) {
    tw *t = *state;
    tw_worker_start(t, (weft_worker_opts){.sticky_cache_disabled = true}, wf_order, "charge");
    tw_start(t, "tw-blobs", "blobs", "");
    char want[64];
    snprintf(want, sizeof want, "%u intact", TW_BLOBS * TW_BLOB_BYTES);
    tw_expect_result(t, "tw-blobs", want);
    tw_expect_no_task_failure(t, "tw-blobs");
    t->passed = true;
}

/* Signals sent back to back: each completion finds the next task already waiting, dispatched
 * to this worker's sticky queue before the finishing thread put the run back in the cache. The
 * next task waits for the run rather than replaying it, so only the first task misses. */
static void test_signal_burst(void **state) {
    tw *t = *state;
    tw_worker_start(t, (weft_worker_opts){.workflow_concurrency = 2}, wf_order, "charge");
    tw_start(t, "tw-ticks", "ticks", "");
    for (unsigned i = 0; i < TW_TICKS; i++) {
        weft_signal_req sig = {.workflow_id = WEFT_STR_LIT("tw-ticks"),
                               .signal_name = WEFT_STR_LIT("tick")};
        weft_err err;
        assert_int_equal(weft_client_signal(t->drv, &sig, &err), 0);
    }
    char want[16];
    snprintf(want, sizeof want, "%u", TW_TICKS);
    tw_expect_result(t, "tw-ticks", want);
    tw_expect_no_task_failure(t, "tw-ticks");
    /* Counters move once each call has returned, which may be after the server showed its
     * effect: stop the worker (its threads joined) before reading them. */
    tw_worker_stop(t);
    weft_worker_stats s;
    weft_worker_stats_get(t->wk, &s);
    fprintf(stderr, "burst: completed %llu hits %llu misses %llu\n",
            (unsigned long long)s.workflow_tasks_completed, (unsigned long long)s.sticky_hits,
            (unsigned long long)s.sticky_misses);
    assert_int_equal(s.workflow_tasks_failed, 0);
    assert_int_equal(s.sticky_misses, 1);
    assert_int_equal(s.sticky_hits + 1, s.workflow_tasks_completed);
    t->passed = true;
}

/* workflow_concurrency 1: one shared and one sticky poller, but one task processed at a time. */
static void test_concurrency_limit(void **state) {
    tw *t = *state;
    tw_worker_start(t, (weft_worker_opts){.workflow_concurrency = 1}, wf_order, "charge");
    char id[TW_BUSY_RUNS][32];
    for (unsigned i = 0; i < TW_BUSY_RUNS; i++) {
        snprintf(id[i], sizeof id[i], "tw-busy-%u", i);
        tw_start(t, id[i], "busy", "");
    }
    for (unsigned i = 0; i < TW_BUSY_RUNS; i++)
        tw_expect_result(t, id[i], "busy");
    assert_int_equal(atomic_load(&t->busy_max), 1);
    t->passed = true;
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_sticky_cache_on, tw_setup, tw_teardown),
        cmocka_unit_test_setup_teardown(test_sticky_cache_off, tw_setup, tw_teardown),
        cmocka_unit_test_setup_teardown(test_cache_evictions, tw_setup, tw_teardown),
        cmocka_unit_test_setup_teardown(test_stop_drains_then_replay, tw_setup, tw_teardown),
        cmocka_unit_test_setup_teardown(test_task_failures, tw_setup, tw_teardown),
        cmocka_unit_test_setup_teardown(test_big_history, tw_setup, tw_teardown),
        cmocka_unit_test_setup_teardown(test_signal_burst, tw_setup, tw_teardown),
        cmocka_unit_test_setup_teardown(test_concurrency_limit, tw_setup, tw_teardown),
    };
    return cmocka_run_group_tests(tests, tw_group_setup, tw_group_teardown);
}
