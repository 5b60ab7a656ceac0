/* test_crash_recovery.c: G1, G4, G6, G7 and G9 across a kill -9. 200 workflows run at once,
 * each with two activities, a timer of 1 to 2 s and one signal, driven by worker threads; weftd
 * is killed with SIGKILL while starts are still arriving, restarted on the same data dir, and
 * killed again while the timers are pending. Afterwards every acknowledged
 * start has its run, every run completes, no timer fired early, and every acknowledged signal
 * appears exactly once, including signals re-sent with the same request id across the crash. */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdatomic.h>
#include <stdio.h>
#include <string.h>

#include "helper_weftd.h"
#include "helper_worker.h"

#define CRASH_WORKFLOWS 200u
#define CRASH_QUEUE "q-crash"
/* Worker threads: half take workflow tasks, half activity tasks. */
#define CRASH_WORKER_THREADS 8u
/* Kill once this many starts are acknowledged: the rest straddle the crash. */
#define CRASH_KILL_AFTER_STARTS 100u
/* Time the dead server stays down before the restart. */
#define CRASH_DOWN_MS 300u
/* Starter threads: the 200 starts arrive together, so every run is open at the same time. */
#define CRASH_STARTER_THREADS 4u
/* Timers last CRASH_TIMER_MS_MIN plus up to 4 steps: long enough that all runs overlap. */
#define CRASH_TIMER_MS_MIN 1000u
#define CRASH_TIMER_MS_STEP 250u
/* The second kill comes this long after the first restart, while timers are pending. */
#define CRASH_SECOND_KILL_AFTER_MS 600u
/* Upper bound on the whole run after the restart; the test normally needs far less. */
#define CRASH_COMPLETE_TIMEOUT_MS 120000u
/* Workflow task timeout of every run: a task lost in the crash is re-dispatched this soon. */
#define CRASH_WFT_TIMEOUT_MS 2000u

typedef struct crash {
    weftd w;                   /* the server */
    bool passed;               /* teardown prints stderr otherwise */
    weft_client *workers;      /* shared by the worker pool */
    weft_client *starter;      /* used by the start/signal thread */
    weft_client *checker;      /* used by the main thread */
    wk_pool pool;              /* worker threads */
    atomic_uint starts_acked;  /* starts acknowledged so far */
    atomic_bool restarted;     /* set once weftd is back */
    atomic_uint client_errors; /* start or signal calls the client gave up on (then resent) */
    char run_ids[CRASH_WORKFLOWS][128]; /* acknowledged run id per workflow, "" if none */
    bool signal_acked[CRASH_WORKFLOWS]; /* the signal was acknowledged */
} crash;

static const char *const crash_flags[] = {
    "--shards", "4", "--election-timeout-ms", "300", "--heartbeat-timeout-ms", "50", NULL};

static int crash_setup(void **state) {
    static crash t;
    memset(&t, 0, sizeof t);
    if (weftd_start(&t.w, crash_flags) != 0) return -1;
    if (weftd_client(&t.w, "crash-workers", &t.workers) != 0) return -1;
    if (weftd_client(&t.w, "crash-starter", &t.starter) != 0) return -1;
    if (weftd_client(&t.w, "crash-checker", &t.checker) != 0) return -1;
    *state = &t;
    return 0;
}

static int crash_teardown(void **state) {
    crash *t = *state;
    if (t->pool.threads_count > 0) wk_pool_stop(&t->pool);
    if (!t->passed) weftd_print_stderr(&t->w, WEFTD_STDERR_TAIL_LINES);
    weft_client_close(t->workers);
    weft_client_close(t->starter);
    weft_client_close(t->checker);
    weftd_destroy(&t->w);
    return 0;
}

static void crash_ids(unsigned i, char *wf, char *start_rid, char *sig_rid) {
    snprintf(wf, 64, "crash-%u", i);
    snprintf(start_rid, 64, "start-crash-%u", i);
    snprintf(sig_rid, 64, "sig-crash-%u", i);
}

/* Starts workflow i, re-sending the same request id until it is acknowledged (G4). */
static void crash_start_one(crash *t, unsigned i) {
    char wf[64], rid[64], sig[64], input[64];
    crash_ids(i, wf, rid, sig);
    wk_script_input(input, sizeof input, CRASH_TIMER_MS_MIN + (i % 5) * CRASH_TIMER_MS_STEP, 1);
    weft_start_req s = {
        .workflow_id = weft_str_c(wf),
        .workflow_type = WEFT_STR_LIT("crashy"),
        .task_queue = WEFT_STR_LIT(CRASH_QUEUE),
        .input = {.ptr = (const uint8_t *)input, .len = (uint32_t)strlen(input)},
        .request_id = weft_str_c(rid),
        .workflow_task_timeout_ms = CRASH_WFT_TIMEOUT_MS,
    };
    wk_start_acked(t->starter, &s, t->run_ids[i], sizeof t->run_ids[i], &t->client_errors);
    atomic_fetch_add(&t->starts_acked, 1);
}

/* Signals workflow i with its fixed request id until acknowledged. */
static void crash_signal_one(crash *t, unsigned i) {
    char wf[64], rid[64], sig[64];
    crash_ids(i, wf, rid, sig);
    weft_signal_req s = {
        .workflow_id = weft_str_c(wf),
        .signal_name = WEFT_STR_LIT("sig"),
        .request_id = weft_str_c(sig),
    };
    for (;;) {
        weft_err err;
        int rc = weft_client_signal(t->starter, &s, &err);
        if (rc == 0) break;
        fprintf(stderr, "signal %s: %s %s (re-sending)\n", wf, weft_error_name(rc), err.message);
        atomic_fetch_add(&t->client_errors, 1);
        weftd_sleep_ms(200);
    }
    t->signal_acked[i] = true;
}

/* One starter thread: starts every CRASH_STARTER_THREADS-th workflow, then signals each. */
typedef struct crash_starter {
    crash *t;       /* the test */
    unsigned first; /* first workflow index of this thread */
} crash_starter;

static void *crash_starter_main(void *arg) {
    crash_starter *st = arg;
    for (unsigned i = st->first; i < CRASH_WORKFLOWS; i += CRASH_STARTER_THREADS)
        crash_start_one(st->t, i);
    for (unsigned i = st->first; i < CRASH_WORKFLOWS; i += CRASH_STARTER_THREADS)
        crash_signal_one(st->t, i);
    return NULL;
}

/* Kills weftd once enough starts are acknowledged, then restarts it on the same data dir. */
static void crash_kill_and_restart(crash *t) {
    uint64_t deadline = weft_mono_ms() + 60000;
    while (atomic_load(&t->starts_acked) < CRASH_KILL_AFTER_STARTS) {
        assert_true(weft_mono_ms() < deadline);
        weftd_sleep_ms(5);
    }
    weftd_kill9(&t->w);
    fprintf(stderr, "killed weftd with %u starts acknowledged\n", atomic_load(&t->starts_acked));
    weftd_sleep_ms(CRASH_DOWN_MS);
    assert_int_equal(weftd_restart(&t->w), 0);
    /* Second crash: timers and retried tasks are in flight; the new process must re-arm
     * every timer from the replicated index (DESIGN section 9). */
    weftd_sleep_ms(CRASH_SECOND_KILL_AFTER_MS);
    weftd_kill9(&t->w);
    fprintf(stderr, "killed weftd again with %u starts acknowledged\n",
            atomic_load(&t->starts_acked));
    weftd_sleep_ms(CRASH_DOWN_MS);
    assert_int_equal(weftd_restart(&t->w), 0);
    atomic_store(&t->restarted, true);
}

/* Re-sends the signals of every third workflow with the same request id: each must still
 * appear once (G4, G7). */
static void crash_resend_signals(crash *t) {
    for (unsigned i = 0; i < CRASH_WORKFLOWS; i += 3)
        crash_signal_one(t, i);
}

/* Waits for workflow i's run to complete and checks it is the acknowledged run. */
static void crash_await(crash *t, unsigned i, uint64_t deadline) {
    char wf[64], rid[64], sig[64];
    crash_ids(i, wf, rid, sig);
    assert_int_equal(wk_await_completed(t->checker, wf, t->run_ids[i], deadline), 0);
}

/* One run's history: dense ids, timers never early (G6), exactly one signal (G7). */
static void crash_check_history(crash *t, unsigned i) {
    char wf[64], rid[64], sig[64];
    crash_ids(i, wf, rid, sig);
    wk_history h;
    weft_err err;
    assert_int_equal(wk_history_get(t->checker, wf, t->run_ids[i], &h, &err), 0);
    const weft_event *ev = h.events;
    bool ok = wk_script_history_ok(&h, NULL, NULL) &&
              wk_count(ev, h.count, WEFT_EV_WORKFLOW_EXECUTION_SIGNALED, NULL) == 1;
    if (!ok) {
        fprintf(stderr, "history of %s breaks an invariant:\n", wf);
        wk_history_print(ev, h.count);
    }
    wk_history_free(&h);
    assert_true(ok);
}

static void test_crash_recovery(void **state) {
    crash *t = *state;
    assert_int_equal(wk_pool_start(&t->pool, t->workers, CRASH_QUEUE, CRASH_WORKER_THREADS), 0);
    pthread_t starters[CRASH_STARTER_THREADS];
    crash_starter args[CRASH_STARTER_THREADS];
    for (unsigned k = 0; k < CRASH_STARTER_THREADS; k++) {
        args[k] = (crash_starter){.t = t, .first = k};
        assert_int_equal(pthread_create(&starters[k], NULL, crash_starter_main, &args[k]), 0);
    }
    crash_kill_and_restart(t);
    for (unsigned k = 0; k < CRASH_STARTER_THREADS; k++)
        pthread_join(starters[k], NULL);
    crash_resend_signals(t);

    uint64_t deadline = weft_mono_ms() + CRASH_COMPLETE_TIMEOUT_MS;
    for (unsigned i = 0; i < CRASH_WORKFLOWS; i++) {
        assert_true(t->run_ids[i][0] != '\0');
        assert_true(t->signal_acked[i]);
        crash_await(t, i, deadline);
    }
    wk_pool_stop(&t->pool);
    for (unsigned i = 0; i < CRASH_WORKFLOWS; i++)
        crash_check_history(t, i);
    /* G3/G4: retried starts created no extra runs. */
    weft_list_req lq = {.workflow_type = WEFT_STR_LIT("crashy")};
    uint64_t count = 0;
    weft_err err;
    assert_int_equal(weft_client_count(t->checker, &lq, &count, &err), 0);
    assert_int_equal(count, CRASH_WORKFLOWS);
    lq.status = WEFT_STATUS_COMPLETED;
    assert_int_equal(weft_client_count(t->checker, &lq, &count, &err), 0);
    assert_int_equal(count, CRASH_WORKFLOWS);
    fprintf(stderr, "workflow tasks %llu, activities %llu, worker errors %llu, resent %u\n",
            (unsigned long long)atomic_load(&t->pool.wft_completed),
            (unsigned long long)atomic_load(&t->pool.act_completed),
            (unsigned long long)atomic_load(&t->pool.errors), atomic_load(&t->client_errors));
    assert_int_equal(weftd_stop(&t->w), 0);
    t->passed = true;
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_crash_recovery, crash_setup, crash_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
