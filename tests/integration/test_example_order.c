/* test_example_order.c: the order example (examples/order) end to end, driven the way the README
 * tells a newcomer: a real weftd, the order-worker binary, and the `weft` CLI. Proves that an
 * order completes with one ledger line per step; that a failing step is compensated in reverse
 * order and fails the workflow with the step's failure; that a cancel undoes the order; and that
 * kill -9 of the worker during the durable sleep, or during a running activity, loses nothing
 * and repeats no effect beyond the activity's retry policy.
 *
 * The ledger: each activity execution appends "<workflow-id> <activity> <attempt>" when it
 * starts, before its effect, with fsync. So a killed attempt leaves its line, and its retry
 * leaves another with the next attempt number; no (workflow, activity, attempt) appears twice. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "helper_example.h"
#include "helper_weftd.h"

#define ORDER_WORKER_PATH WEFT_EXAMPLES_DIR "/order/order-worker"
#define ORDER_QUEUE "orders"
/* Waits for a ledger line or a pending timer. */
#define ORDER_WAIT_MS 30000u

typedef struct order_test {
    weftd w;               /* the server */
    ex_proc worker;        /* order-worker */
    weft_client *c;        /* for describe and exact result checks */
    char ledger[PATH_MAX]; /* the worker's --ledger */
    bool passed;           /* the current test reached its end */
} order_test;

static const char *const order_weftd_flags[] = {
    "--shards", "2", "--election-timeout-ms", "300", "--heartbeat-timeout-ms", "50", NULL};

static int order_group_setup(void **state) {
    static order_test t;
    memset(&t, 0, sizeof t);
    if (weftd_start(&t.w, order_weftd_flags) != 0) return -1;
    if (weftd_client(&t.w, "test-example-order", &t.c) != 0) return -1;
    snprintf(t.ledger, sizeof t.ledger, "%s/order-ledger.txt", t.w.dir);
    char log[PATH_MAX];
    snprintf(log, sizeof log, "%s/order-worker.log", t.w.dir);
    const char *const argv[] = {ORDER_WORKER_PATH, "--address",  t.w.listen,          "--ledger",
                                t.ledger,          "--identity", "order-worker-test", NULL};
    if (ex_proc_start(&t.worker, argv, log) != 0) return -1;
    *state = &t;
    return 0;
}

static int order_group_teardown(void **state) {
    order_test *t = *state;
    ex_proc_destroy(&t->worker);
    weft_client_close(t->c);
    weftd_destroy(&t->w);
    return 0;
}

static int order_test_setup(void **state) {
    order_test *t = *state;
    t->passed = false;
    return ex_proc_alive(&t->worker) ? 0 : ex_proc_restart(&t->worker);
}

static int order_test_teardown(void **state) {
    order_test *t = *state;
    if (!t->passed) {
        ex_proc_print_log(&t->worker, EX_LOG_TAIL_LINES);
        weftd_print_stderr(&t->w, WEFTD_STDERR_TAIL_LINES);
    }
    return 0;
}

/* `weft workflow start` of an order with `input`; asserts success and that the id is printed. */
static void order_start(order_test *t, const char *id, const char *input) {
    char out[EX_CLI_OUTPUT_BYTES];
    const char *const args[] = {"workflow",     "start",     "--type", "order",
                                "--task-queue", ORDER_QUEUE, "--id",   id,
                                "--input",      input,       NULL};
    assert_int_equal(ex_cli(t->w.listen, args, out, sizeof out), 0);
    assert_non_null(strstr(out, id));
}

/* `weft workflow result --wait`: returns its exit code; out receives what it printed. */
static int order_result(order_test *t, const char *id, char *out, size_t cap) {
    const char *const args[] = {"workflow", "result",    "--id", id,
                                "--wait",   "--timeout", "60s",  NULL};
    return ex_cli(t->w.listen, args, out, cap);
}

/* Asserts that the order's ledger lines are exactly `expected` ("charge 1, reserve 1, ..."). */
static void order_expect_ledger(order_test *t, const char *id, const char *expected) {
    static ex_ledger_line lines[EX_LEDGER_LINES_MAX];
    size_t n = 0;
    assert_int_equal(ex_ledger_read(t->ledger, id, lines, EX_LEDGER_LINES_MAX, &n), 0);
    char text[4096];
    assert_string_equal(ex_ledger_format(lines, n, text, sizeof text), expected);
}

/* The run's outcome read with libweft: status, and the result or failure text in `text`. */
static uint32_t order_outcome(order_test *t, const char *id, char *text, size_t cap) {
    weft_result_req rq = {.workflow_id = weft_str_c(id), .follow_runs = true};
    weft_result_resp r;
    weft_response h = {0};
    weft_err err;
    assert_int_equal(weft_client_result(t->c, &rq, &r, &h, &err), 0);
    if (r.status == WEFT_STATUS_COMPLETED) {
        snprintf(text, cap, "%.*s", (int)r.result.len, (const char *)r.result.ptr);
    } else {
        snprintf(text, cap, "%.*s: %.*s", (int)r.failure.type.len, r.failure.type.ptr,
                 (int)r.failure.message.len, r.failure.message.ptr);
    }
    uint32_t status = r.status;
    weft_response_free(&h);
    return status;
}

/* Waits until the run has a pending timer: the workflow is in its durable sleep. */
static void order_wait_timer(order_test *t, const char *id) {
    uint64_t deadline_ms = weft_mono_ms() + ORDER_WAIT_MS;
    weft_describe_req rq = {.workflow_id = weft_str_c(id)};
    for (;;) {
        weft_describe_resp d;
        weft_response h = {0};
        weft_err err;
        bool sleeping =
            weft_client_describe(t->c, &rq, &d, &h, &err) == 0 && d.pending_timers_count > 0;
        weft_response_free(&h);
        if (sleeping) return;
        assert_true(weft_mono_ms() < deadline_ms);
        weftd_sleep_ms(20);
    }
}

/* 1. Started and awaited from the CLI, an order completes; each step ran exactly once. */
static void test_order_completes(void **state) {
    order_test *t = *state;
    char out[EX_CLI_OUTPUT_BYTES], text[4096];
    order_start(t, "order-ok", "{\"sleep\":\"1s\"}");
    assert_int_equal(order_result(t, "order-ok", out, sizeof out), 0);
    assert_non_null(strstr(out, "receipt-order-ok-charge"));
    assert_int_equal(order_outcome(t, "order-ok", text, sizeof text), WEFT_STATUS_COMPLETED);
    assert_non_null(strstr(text, "\"tracking\":\"tracking-order-ok-ship\""));
    assert_non_null(strstr(text, "\"survey\":\"sent\""));
    order_expect_ledger(t, "order-ok", "charge 1, reserve 1, ship 1, send_survey 1");
    const char *const show[] = {"workflow", "show", "--id", "order-ok", NULL};
    assert_int_equal(ex_cli(t->w.listen, show, out, sizeof out), 0);
    assert_non_null(strstr(out, "TimerFired"));
    t->passed = true;
}

/* The history of a closed order, saved with the CLI's JSON output, replays against the code
 * (docs/sdk.md, "The replayer"); a history whose activity type changed does not. */
static void test_order_history_replays(void **state) {
    order_test *t = *state;
    static char out[EX_CLI_OUTPUT_BYTES];
    char path[PATH_MAX], bad_path[PATH_MAX], msg[1024];
    const char *const show[] = {"--output", "json", "workflow", "show", "--id", "order-ok", NULL};
    assert_int_equal(ex_cli(t->w.listen, show, out, sizeof out), 0);
    snprintf(path, sizeof path, "%s/order-ok.jsonl", t->w.dir);
    snprintf(bad_path, sizeof bad_path, "%s/order-ok-changed.jsonl", t->w.dir);
    FILE *f = fopen(path, "w"), *bad = fopen(bad_path, "w");
    assert_true(f != NULL && bad != NULL);
    fputs(out, f);
    /* The same history as if the code had scheduled "reserve_v2" instead of "reserve". */
    for (char *line = strtok(out, "\n"); line != NULL; line = strtok(NULL, "\n")) {
        char *at = strstr(line, "\"activity_type\":\"reserve\"");
        if (at == NULL) {
            fprintf(bad, "%s\n", line);
        } else {
            fprintf(bad, "%.*s\"activity_type\":\"reserve_v2\"%s\n", (int)(at - line), line,
                    at + strlen("\"activity_type\":\"reserve\""));
        }
    }
    assert_int_equal(fclose(f), 0);
    assert_int_equal(fclose(bad), 0);
    const char *const replay[] = {ORDER_WORKER_PATH, "--replay", path, NULL};
    assert_int_equal(ex_run(replay, msg, sizeof msg), 0);
    assert_non_null(strstr(msg, "the code matches"));
    const char *const replay_bad[] = {ORDER_WORKER_PATH, "--replay", bad_path, NULL};
    assert_int_equal(ex_run(replay_bad, msg, sizeof msg), 1);
    assert_non_null(strstr(msg, "non-determinism"));
    assert_non_null(strstr(msg, "workflow.c"));
    t->passed = true;
}

/* 2. A failing ship step: the result exits 2 and shows the failure; the ledger shows the ship
 * attempt, then release before refund; no survey. */
static void test_order_fail_ship_compensates(void **state) {
    order_test *t = *state;
    char out[EX_CLI_OUTPUT_BYTES], text[4096];
    order_start(t, "order-fail-ship", "{\"fail_ship\":true,\"sleep\":\"1s\"}");
    assert_int_equal(order_result(t, "order-fail-ship", out, sizeof out), 2);
    assert_non_null(strstr(out, "ShippingUnavailable"));
    assert_int_equal(order_outcome(t, "order-fail-ship", text, sizeof text), WEFT_STATUS_FAILED);
    assert_non_null(strstr(text, "ShippingUnavailable: ship failed after 1 attempt(s)"));
    assert_non_null(strstr(text, "compensated: release, refund"));
    order_expect_ledger(t, "order-fail-ship", "charge 1, reserve 1, ship 1, release 1, refund 1");
    t->passed = true;
}

/* A failing first step has nothing to undo. */
static void test_order_fail_charge(void **state) {
    order_test *t = *state;
    char out[EX_CLI_OUTPUT_BYTES], text[4096];
    order_start(t, "order-fail-charge", "{\"fail_charge\":true}");
    assert_int_equal(order_result(t, "order-fail-charge", out, sizeof out), 2);
    assert_int_equal(order_outcome(t, "order-fail-charge", text, sizeof text), WEFT_STATUS_FAILED);
    assert_non_null(strstr(text, "PaymentDeclined"));
    assert_non_null(strstr(text, "compensated: nothing"));
    order_expect_ledger(t, "order-fail-charge", "charge 1");
    t->passed = true;
}

/* An input the workflow does not understand fails it at once, naming the key. */
static void test_order_bad_input(void **state) {
    order_test *t = *state;
    char out[EX_CLI_OUTPUT_BYTES];
    order_start(t, "order-typo", "{\"fail-ship\":true}");
    assert_int_equal(order_result(t, "order-typo", out, sizeof out), 2);
    assert_non_null(strstr(out, "fail-ship"));
    order_expect_ledger(t, "order-typo", "");
    t->passed = true;
}

/* Cancel during the sleep: every step is undone, last first, and the run closes canceled. */
static void test_order_cancel_compensates(void **state) {
    order_test *t = *state;
    char out[EX_CLI_OUTPUT_BYTES], text[4096];
    order_start(t, "order-cancel", "{\"sleep\":\"1h\"}");
    order_wait_timer(t, "order-cancel");
    const char *const cancel[] = {
        "workflow", "cancel", "--id", "order-cancel", "--reason", "customer changed their mind",
        NULL};
    assert_int_equal(ex_cli(t->w.listen, cancel, out, sizeof out), 0);
    assert_int_equal(order_result(t, "order-cancel", out, sizeof out), 2);
    assert_int_equal(order_outcome(t, "order-cancel", text, sizeof text), WEFT_STATUS_CANCELED);
    order_expect_ledger(t, "order-cancel",
                        "charge 1, reserve 1, ship 1, cancel_shipment 1, release 1, refund 1");
    t->passed = true;
}

/* 3a. kill -9 of the worker during the durable sleep; a new worker replays the history and
 * finishes. The steps before the sleep are not run again. */
static void test_order_worker_killed_during_sleep(void **state) {
    order_test *t = *state;
    char out[EX_CLI_OUTPUT_BYTES], text[4096];
    order_start(t, "order-crash-sleep", "{\"sleep\":\"3s\"}");
    assert_int_equal(ex_ledger_wait(t->ledger, "order-crash-sleep", "ship", 1, ORDER_WAIT_MS), 0);
    order_wait_timer(t, "order-crash-sleep");
    ex_proc_kill9(&t->worker);
    weftd_sleep_ms(500);
    assert_int_equal(ex_proc_restart(&t->worker), 0);
    assert_int_equal(order_result(t, "order-crash-sleep", out, sizeof out), 0);
    assert_int_equal(order_outcome(t, "order-crash-sleep", text, sizeof text),
                     WEFT_STATUS_COMPLETED);
    order_expect_ledger(t, "order-crash-sleep", "charge 1, reserve 1, ship 1, send_survey 1");
    t->passed = true;
}

/* 3b. kill -9 of the worker while `reserve` runs (each activity takes 1.5 s; the ledger line
 * is written when the execution starts). The attempt is lost; once its 5 s start-to-close
 * timeout passes, the server retries it on the restarted worker as attempt 2. Every other step
 * runs once, and no (activity, attempt) is recorded twice. */
static void test_order_worker_killed_during_activity(void **state) {
    order_test *t = *state;
    char out[EX_CLI_OUTPUT_BYTES], text[4096];
    order_start(t, "order-crash-act",
                "{\"activity_ms\":1500,\"activity_timeout\":\"5s\",\"sleep\":\"1s\"}");
    assert_int_equal(ex_ledger_wait(t->ledger, "order-crash-act", "reserve", 1, ORDER_WAIT_MS), 0);
    ex_proc_kill9(&t->worker);
    assert_int_equal(ex_proc_restart(&t->worker), 0);
    assert_int_equal(order_result(t, "order-crash-act", out, sizeof out), 0);
    assert_int_equal(order_outcome(t, "order-crash-act", text, sizeof text), WEFT_STATUS_COMPLETED);

    static ex_ledger_line lines[EX_LEDGER_LINES_MAX];
    size_t n = 0;
    char seen[4096];
    assert_int_equal(ex_ledger_read(t->ledger, "order-crash-act", lines, EX_LEDGER_LINES_MAX, &n),
                     0);
    ex_ledger_format(lines, n, seen, sizeof seen);
    fprintf(stderr, "ledger of order-crash-act: %s\n", seen);
    assert_true(ex_ledger_unique(lines, n));
    /* charge 1, then reserve 1..k with 2 <= k <= 3 (the input's default attempts), then ship
     * and the survey once each. */
    assert_true(n >= 5 && n <= 6);
    assert_string_equal(lines[0].activity, "charge");
    assert_int_equal(lines[0].attempt, 1);
    size_t k = 0;
    while (1 + k < n && strcmp(lines[1 + k].activity, "reserve") == 0) {
        assert_int_equal(lines[1 + k].attempt, k + 1);
        k++;
    }
    assert_true(k >= 2 && k <= 3);
    assert_int_equal(n, 1 + k + 2);
    assert_string_equal(lines[1 + k].activity, "ship");
    assert_int_equal(lines[1 + k].attempt, 1);
    assert_string_equal(lines[2 + k].activity, "send_survey");
    assert_int_equal(lines[2 + k].attempt, 1);
    t->passed = true;
}

/* The worker drains on SIGTERM and exits 0 (the up.sh stop). */
static void test_order_worker_sigterm_drains(void **state) {
    order_test *t = *state;
    assert_int_equal(ex_proc_stop(&t->worker), 0);
    assert_int_equal(ex_proc_restart(&t->worker), 0);
    t->passed = true;
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_order_completes, order_test_setup,
                                        order_test_teardown),
        cmocka_unit_test_setup_teardown(test_order_history_replays, order_test_setup,
                                        order_test_teardown),
        cmocka_unit_test_setup_teardown(test_order_fail_ship_compensates, order_test_setup,
                                        order_test_teardown),
        cmocka_unit_test_setup_teardown(test_order_fail_charge, order_test_setup,
                                        order_test_teardown),
        cmocka_unit_test_setup_teardown(test_order_bad_input, order_test_setup,
                                        order_test_teardown),
        cmocka_unit_test_setup_teardown(test_order_cancel_compensates, order_test_setup,
                                        order_test_teardown),
        cmocka_unit_test_setup_teardown(test_order_worker_killed_during_sleep, order_test_setup,
                                        order_test_teardown),
        cmocka_unit_test_setup_teardown(test_order_worker_killed_during_activity, order_test_setup,
                                        order_test_teardown),
        cmocka_unit_test_setup_teardown(test_order_worker_sigterm_drains, order_test_setup,
                                        order_test_teardown),
    };
    return cmocka_run_group_tests(tests, order_group_setup, order_group_teardown);
}
