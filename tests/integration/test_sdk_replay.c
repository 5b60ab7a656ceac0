/* test_sdk_replay.c: replay and non-determinism against a real weftd.
 * - A finished run's history, saved with `weft workflow show --output json`, replays cleanly
 *   through the unchanged code; code with two activities swapped is reported as divergent,
 *   naming the history event and the call site.
 * - A worker running the swapped code on an open run fails its workflow task with that error
 *   (visible in describe); once the original code is back, the retried task succeeds and the
 *   run completes. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "helper_example.h"
#include "helper_sdk.h"
#include "helper_weftd.h"
#include "helper_worker.h"
#include "weft/json.h"
#include "weft/worker.h"

#define RP_QUEUE "replay"
#define RP_WAIT_MS 60000u
/* Rounds of RP_POLL_MS while waiting for a condition: 30 s, for a busy machine. */
#define RP_POLL_MS 50u
#define RP_POLL_ROUNDS 600

/* charge, reserve, then (when asked) wait for a "go" signal, then ship. `arg` != NULL swaps
 * charge and reserve: the code change the replayer must catch. */
static int wf_order(weft_wf *wf, weft_bytes input, weft_bytes *out, void *arg) {
    bool swapped = arg != NULL;
    weft_activity_opts o = {.start_to_close_timeout_ms = 10000};
    if (weft_wf_activity(wf, swapped ? "reserve" : "charge", input, &o, NULL) != 0 ||
        weft_wf_activity(wf, swapped ? "charge" : "reserve", input, &o, NULL) != 0) {
        return weft_wf_fail(wf, "StepFailed", weft_wf_last_failure(wf)->message);
    }
    if (input.len > 0 && memchr(input.ptr, 'w', input.len) != NULL) {
        weft_bytes go;
        if (weft_wf_signal_wait(wf, "go", 0, &go) != 0) return weft_wf_cancel_done(wf);
    }
    if (weft_wf_activity(wf, "ship", input, &o, out) != 0) {
        return weft_wf_fail(wf, "ShipFailed", weft_wf_last_failure(wf)->message);
    }
    return 0;
}

static int act_ok(weft_act *act, weft_bytes input, weft_bytes *out, void *arg) {
    (void)act, (void)arg;
    *out = input;
    return 0;
}

/* The worker of one deploy: "order" (swapped or not) and its activities. */
typedef struct rp_worker {
    weft_worker *w;
    sdk_runner run;
} rp_worker;

static void rp_worker_start(rp_worker *rw, weft_client *c, bool swapped) {
    weft_worker_opts o = {.task_queue = RP_QUEUE, .poll_timeout_ms = 500};
    weft_err err;
    assert_int_equal(weft_worker_new(c, &o, &rw->w, &err), 0);
    assert_int_equal(
        weft_worker_register_workflow(rw->w, "order", wf_order, swapped ? (void *)1 : NULL, &err),
        0);
    const char *acts[] = {"charge", "reserve", "ship"};
    for (unsigned i = 0; i < 3; i++) {
        assert_int_equal(weft_worker_register_activity(rw->w, acts[i], act_ok, NULL, &err), 0);
    }
    sdk_runner_start(&rw->run, rw->w);
}

static void rp_worker_stop(rp_worker *rw) {
    sdk_runner_stop(&rw->run);
    weft_worker_free(rw->w);
    rw->w = NULL;
}

static void rp_start(weft_client *c, const char *id, const char *input) {
    sdk_start(c, id, "order", RP_QUEUE, input, NULL, 0);
}

static uint32_t rp_result(weft_client *c, const char *id) {
    return sdk_result(c, id, RP_WAIT_MS, NULL, 0);
}

/* Each test runs against a fresh weftd, with one client and a worker slot. */
typedef struct rp_env {
    weftd d;        /* the server */
    weft_client *c; /* the worker's and the test's client */
    rp_worker rw;   /* the worker of the current deploy; w is NULL when none runs */
} rp_env;

static int rp_setup(void **state) {
    static rp_env env;
    memset(&env, 0, sizeof env);
    *state = &env;
    if (weftd_start(&env.d, NULL) != 0) return -1;
    return weftd_client(&env.d, "replay-test", &env.c) == 0 ? 0 : -1;
}

static int rp_teardown(void **state) {
    rp_env *t = *state;
    if (t->rw.w != NULL) rp_worker_stop(&t->rw); /* the test failed while it ran */
    weft_client_close(t->c);
    int rc = weftd_stop(&t->d);
    weftd_destroy(&t->d);
    return rc == 0 ? 0 : -1;
}

static void test_saved_history_replays(void **state) {
    rp_env *t = *state;
    weft_client *c = t->c;
    rp_worker *rw = &t->rw;
    rp_worker_start(rw, c, false);
    rp_start(c, "replay-1", "{\"sku\":1}");
    assert_int_equal(rp_result(c, "replay-1"), WEFT_STATUS_COMPLETED);
    rp_worker_stop(rw);

    /* Save the history the way an operator would. */
    static char out[EX_CLI_OUTPUT_BYTES];
    const char *args[] = {"--output", "json", "workflow", "show", "--id", "replay-1", NULL};
    assert_int_equal(ex_cli(t->d.listen, args, out, sizeof out), 0);
    char path[PATH_MAX];
    snprintf(path, sizeof path, "%s/replay-1.jsonl", t->d.dir);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(out, f);
    fclose(f);

    weft_history_file *hf = NULL;
    weft_err err;
    assert_int_equal(weft_history_load_json(path, &hf, &err), 0);
    assert_true(hf->events_count > 10);

    weft_replayer *rp = NULL;
    assert_int_equal(weft_replayer_new(&rp, &err), 0);
    assert_int_equal(weft_replayer_register_workflow(rp, "order", wf_order, NULL, &err), 0);
    assert_int_equal(weft_replayer_replay(rp, hf->events, hf->events_count, &err), 0);
    weft_replayer_free(rp);

    assert_int_equal(weft_replayer_new(&rp, &err), 0);
    assert_int_equal(weft_replayer_register_workflow(rp, "order", wf_order, (void *)1, &err), 0);
    assert_int_equal(weft_replayer_replay(rp, hf->events, hf->events_count, &err),
                     -WEFT_E_FAILED_PRECONDITION);
    fprintf(stderr, "replayer: %s\n", err.message);
    assert_non_null(strstr(err.message, "ActivityTaskScheduled (activity_id 1, type charge)"));
    assert_non_null(strstr(err.message, "ScheduleActivity (activity_id 1, type reserve)"));
    assert_non_null(strstr(err.message, "test_sdk_replay.c:"));
    weft_replayer_free(rp);
    weft_history_file_free(hf);
}

static void test_divergent_worker_fails_task_until_fixed(void **state) {
    rp_env *t = *state;
    weft_client *c = t->c;
    rp_worker *rw = &t->rw;
    /* The original code runs until the run waits for its signal. */
    rp_worker_start(rw, c, false);
    rp_start(c, "replay-2", "wait");
    weft_err err;
    weft_response h = {0};
    for (int i = 0;; i++) {
        assert_true(i < RP_POLL_ROUNDS);
        wk_history hist = {0};
        assert_int_equal(wk_history_get(c, "replay-2", NULL, &hist, &err), 0);
        bool reserved =
            wk_count(hist.events, hist.count, WEFT_EV_ACTIVITY_TASK_COMPLETED, NULL) == 2;
        bool idle = hist.count > 0 &&
                    hist.events[hist.count - 1].event_type == WEFT_EV_WORKFLOW_TASK_COMPLETED;
        wk_history_free(&hist);
        if (reserved && idle) break;
        weftd_sleep_ms(RP_POLL_MS);
    }
    rp_worker_stop(rw);

    /* The swapped code replays from history (a new worker has no cache) and diverges. */
    rp_worker_start(rw, c, true);
    weft_signal_req sig = {.workflow_id = WEFT_STR_LIT("replay-2"),
                           .signal_name = WEFT_STR_LIT("go")};
    assert_int_equal(weft_client_signal(c, &sig, &err), 0);
    weft_describe_resp desc;
    for (int i = 0;; i++) {
        assert_true(i < RP_POLL_ROUNDS);
        weft_describe_req dq = {.workflow_id = WEFT_STR_LIT("replay-2")};
        assert_int_equal(weft_client_describe(c, &dq, &desc, &h, &err), 0);
        if (desc.workflow_task_failures > 0) break;
        weftd_sleep_ms(RP_POLL_MS);
    }
    fprintf(stderr, "describe: %.*s\n", (int)desc.last_workflow_task_failure.message.len,
            desc.last_workflow_task_failure.message.ptr);
    assert_true(weft_str_eq_c(desc.info.task_queue, RP_QUEUE));
    assert_int_equal(desc.info.status, WEFT_STATUS_RUNNING);
    char msg[WEFT_FAILURE_MESSAGE_BYTES_MAX];
    weft_str_copy(msg, sizeof msg, desc.last_workflow_task_failure.message);
    assert_non_null(strstr(msg, "non-determinism"));
    assert_non_null(strstr(msg, "type charge"));
    assert_non_null(strstr(msg, "test_sdk_replay.c:"));
    /* The worker counts the failure once its FailWorkflowTask call has returned, which may be
     * after the describe above saw it applied (a busy machine delays the worker's thread). */
    weft_worker_stats st;
    for (int i = 0;; i++) {
        assert_true(i < RP_POLL_ROUNDS);
        weft_worker_stats_get(rw->w, &st);
        if (st.workflow_tasks_failed > 0) break;
        weftd_sleep_ms(RP_POLL_MS);
    }
    rp_worker_stop(rw);

    /* The fixed code is deployed: the retried task succeeds and the run completes. */
    rp_worker_start(rw, c, false);
    assert_int_equal(rp_result(c, "replay-2"), WEFT_STATUS_COMPLETED);
    rp_worker_stop(rw);
    weft_response_free(&h);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_saved_history_replays, rp_setup, rp_teardown),
        cmocka_unit_test_setup_teardown(test_divergent_worker_fails_task_until_fixed, rp_setup,
                                        rp_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
