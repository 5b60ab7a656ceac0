/* test_example_approval.c: the approval example (examples/approval) end to end against a real
 * weftd, with the approval-worker binary and the `weft` CLI: an 'approve' signal sent with the
 * CLI completes the run as approved (with the signal's payload), 'reject' as rejected, and no
 * signal within the input's timeout completes it as timed_out. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "helper_example.h"
#include "helper_weftd.h"

#define APPROVAL_WORKER_PATH WEFT_EXAMPLES_DIR "/approval/approval-worker"
#define APPROVAL_QUEUE "approvals"

typedef struct approval_test {
    weftd w;        /* the server */
    ex_proc worker; /* approval-worker */
    weft_client *c; /* for exact result checks */
    bool passed;    /* the current test reached its end */
} approval_test;

static const char *const approval_weftd_flags[] = {
    "--shards", "2", "--election-timeout-ms", "300", "--heartbeat-timeout-ms", "50", NULL};

static int approval_group_setup(void **state) {
    static approval_test t;
    memset(&t, 0, sizeof t);
    if (weftd_start(&t.w, approval_weftd_flags) != 0) return -1;
    if (weftd_client(&t.w, "test-example-approval", &t.c) != 0) return -1;
    char log[PATH_MAX];
    snprintf(log, sizeof log, "%s/approval-worker.log", t.w.dir);
    const char *const argv[] = {APPROVAL_WORKER_PATH, "--address", t.w.listen, NULL};
    if (ex_proc_start(&t.worker, argv, log) != 0) return -1;
    *state = &t;
    return 0;
}

static int approval_group_teardown(void **state) {
    approval_test *t = *state;
    ex_proc_destroy(&t->worker);
    weft_client_close(t->c);
    weftd_destroy(&t->w);
    return 0;
}

static int approval_test_setup(void **state) {
    approval_test *t = *state;
    t->passed = false;
    return 0;
}

static int approval_test_teardown(void **state) {
    approval_test *t = *state;
    if (!t->passed) {
        ex_proc_print_log(&t->worker, EX_LOG_TAIL_LINES);
        weftd_print_stderr(&t->w, WEFTD_STDERR_TAIL_LINES);
    }
    return 0;
}

static void approval_start(approval_test *t, const char *id, const char *input) {
    char out[EX_CLI_OUTPUT_BYTES];
    const char *const args[] = {"workflow",     "start",        "--type", "approval",
                                "--task-queue", APPROVAL_QUEUE, "--id",   id,
                                "--input",      input,          NULL};
    assert_int_equal(ex_cli(t->w.listen, args, out, sizeof out), 0);
}

static void approval_signal(approval_test *t, const char *id, const char *name, const char *input) {
    char out[EX_CLI_OUTPUT_BYTES];
    const char *const args[] = {"workflow", "signal",  "--id", id,  "--name",
                                name,       "--input", input,  NULL};
    assert_int_equal(ex_cli(t->w.listen, args, out, sizeof out), 0);
}

/* Waits with `weft workflow result --wait` (exit 0 expected), then reads the exact result with
 * libweft into `text`. */
static void approval_result(approval_test *t, const char *id, char *text, size_t cap) {
    char out[EX_CLI_OUTPUT_BYTES];
    const char *const args[] = {"workflow", "result",    "--id", id,
                                "--wait",   "--timeout", "60s",  NULL};
    assert_int_equal(ex_cli(t->w.listen, args, out, sizeof out), 0);
    weft_result_req rq = {.workflow_id = weft_str_c(id)};
    weft_result_resp r;
    weft_response h = {0};
    weft_err err;
    assert_int_equal(weft_client_result(t->c, &rq, &r, &h, &err), 0);
    assert_int_equal(r.status, WEFT_STATUS_COMPLETED);
    snprintf(text, cap, "%.*s", (int)r.result.len, (const char *)r.result.ptr);
    weft_response_free(&h);
    fprintf(stderr, "result of %s: %s\n", id, text);
}

static void test_approval_approved(void **state) {
    approval_test *t = *state;
    char text[4096];
    approval_start(t, "po-approve", "{\"request\":\"new laptop\",\"timeout\":\"1m\"}");
    approval_signal(t, "po-approve", "approve", "{\"by\":\"alice\"}");
    approval_result(t, "po-approve", text, sizeof text);
    assert_non_null(strstr(text, "\"decision\":\"approved\""));
    assert_non_null(strstr(text, "\"by\":\"alice\""));
    assert_non_null(strstr(text, "\"request\":\"new laptop\""));
    t->passed = true;
}

static void test_approval_rejected(void **state) {
    approval_test *t = *state;
    char text[4096];
    approval_start(t, "po-reject", "{\"timeout\":\"1m\"}");
    approval_signal(t, "po-reject", "reject", "\"over budget\"");
    approval_result(t, "po-reject", text, sizeof text);
    assert_non_null(strstr(text, "\"decision\":\"rejected\""));
    assert_non_null(strstr(text, "over budget"));
    t->passed = true;
}

/* No signal: the durable timer decides. */
static void test_approval_times_out(void **state) {
    approval_test *t = *state;
    char text[4096];
    uint64_t started_ms = weft_mono_ms();
    approval_start(t, "po-timeout", "{\"timeout\":\"1s\"}");
    approval_result(t, "po-timeout", text, sizeof text);
    assert_true(weft_mono_ms() - started_ms >= 1000u); /* timers never fire early (G6) */
    assert_non_null(strstr(text, "\"decision\":\"timed_out\""));
    assert_non_null(strstr(text, "\"signal\":null"));
    t->passed = true;
}

/* A cancel while the workflow waits closes it as canceled: `result` exits 2. */
static void test_approval_canceled(void **state) {
    approval_test *t = *state;
    char out[EX_CLI_OUTPUT_BYTES];
    approval_start(t, "po-cancel", "{\"timeout\":\"1h\"}");
    const char *const cancel[] = {"workflow", "cancel", "--id", "po-cancel", NULL};
    assert_int_equal(ex_cli(t->w.listen, cancel, out, sizeof out), 0);
    const char *const result[] = {"workflow", "result",    "--id", "po-cancel",
                                  "--wait",   "--timeout", "60s",  NULL};
    assert_int_equal(ex_cli(t->w.listen, result, out, sizeof out), 2);
    assert_non_null(strstr(out, "canceled"));
    t->passed = true;
}

/* The worker drains on SIGTERM and exits 0 (under ASan, also with no leak). */
static void test_approval_worker_drains(void **state) {
    approval_test *t = *state;
    assert_int_equal(ex_proc_stop(&t->worker), 0);
    t->passed = true;
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_approval_approved, approval_test_setup,
                                        approval_test_teardown),
        cmocka_unit_test_setup_teardown(test_approval_rejected, approval_test_setup,
                                        approval_test_teardown),
        cmocka_unit_test_setup_teardown(test_approval_times_out, approval_test_setup,
                                        approval_test_teardown),
        cmocka_unit_test_setup_teardown(test_approval_canceled, approval_test_setup,
                                        approval_test_teardown),
        cmocka_unit_test_setup_teardown(test_approval_worker_drains, approval_test_setup,
                                        approval_test_teardown),
    };
    return cmocka_run_group_tests(tests, approval_group_setup, approval_group_teardown);
}
