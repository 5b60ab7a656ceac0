/* test_example_subscription.c: the subscription example (examples/subscription) end to end
 * against a real weftd, with the subscription-worker binary and the `weft` CLI: 5 cycles at 2
 * per run take 3 runs linked by continue-as-new; `weft workflow result --wait` follows the
 * chain to the final run, whose result carries the total billed. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "helper_example.h"
#include "helper_weftd.h"

#define SUBSCRIPTION_WORKER_PATH WEFT_EXAMPLES_DIR "/subscription/subscription-worker"
#define SUBSCRIPTION_ID "sub-1"

typedef struct subscription_test {
    weftd w;        /* the server */
    ex_proc worker; /* subscription-worker */
    weft_client *c; /* for the chain's checks */
    bool passed;    /* the test reached its end */
} subscription_test;

static const char *const subscription_weftd_flags[] = {
    "--shards", "2", "--election-timeout-ms", "300", "--heartbeat-timeout-ms", "50", NULL};

static int subscription_setup(void **state) {
    static subscription_test t;
    memset(&t, 0, sizeof t);
    if (weftd_start(&t.w, subscription_weftd_flags) != 0) return -1;
    if (weftd_client(&t.w, "test-example-subscription", &t.c) != 0) return -1;
    char log[PATH_MAX];
    snprintf(log, sizeof log, "%s/subscription-worker.log", t.w.dir);
    const char *const argv[] = {SUBSCRIPTION_WORKER_PATH, "--address", t.w.listen, NULL};
    if (ex_proc_start(&t.worker, argv, log) != 0) return -1;
    *state = &t;
    return 0;
}

static int subscription_teardown(void **state) {
    subscription_test *t = *state;
    if (!t->passed) {
        ex_proc_print_log(&t->worker, EX_LOG_TAIL_LINES);
        weftd_print_stderr(&t->w, WEFTD_STDERR_TAIL_LINES);
    }
    ex_proc_destroy(&t->worker);
    weft_client_close(t->c);
    weftd_destroy(&t->w);
    return 0;
}

static void test_subscription_continues_as_new(void **state) {
    subscription_test *t = *state;
    char out[EX_CLI_OUTPUT_BYTES];
    const char *const start[] = {
        "workflow",
        "start",
        "--type",
        "subscription",
        "--task-queue",
        "subscriptions",
        "--id",
        SUBSCRIPTION_ID,
        "--input",
        "{\"period\":\"300ms\",\"cycles\":5,\"cycles_per_run\":2,\"amount_cents\":100}",
        NULL};
    assert_int_equal(ex_cli(t->w.listen, start, out, sizeof out), 0);
    const char *const result[] = {"workflow", "result",    "--id", SUBSCRIPTION_ID,
                                  "--wait",   "--timeout", "60s",  NULL};
    assert_int_equal(ex_cli(t->w.listen, result, out, sizeof out), 0);
    assert_non_null(strstr(out, "total_cents"));

    /* The final run's result, exactly. */
    weft_result_req rq = {.workflow_id = WEFT_STR_LIT(SUBSCRIPTION_ID), .follow_runs = true};
    weft_result_resp r;
    weft_response h = {0};
    weft_err err;
    assert_int_equal(weft_client_result(t->c, &rq, &r, &h, &err), 0);
    assert_int_equal(r.status, WEFT_STATUS_COMPLETED);
    char text[1024];
    snprintf(text, sizeof text, "%.*s", (int)r.result.len, (const char *)r.result.ptr);
    fprintf(stderr, "result: %s\n", text);
    assert_non_null(strstr(text, "\"done\":5"));
    assert_non_null(strstr(text, "\"total_cents\":500"));
    assert_non_null(strstr(text, "\"runs\":3"));

    /* The chain: the final run continues another, and the first run closed as continued. */
    weft_describe_req dq = {.workflow_id = WEFT_STR_LIT(SUBSCRIPTION_ID)};
    weft_describe_resp d;
    assert_int_equal(weft_client_describe(t->c, &dq, &d, &h, &err), 0);
    assert_true(d.info.continued_from_run_id.len > 0);
    assert_true(d.info.first_run_id.len > 0);
    char first[128];
    snprintf(first, sizeof first, "%.*s", (int)d.info.first_run_id.len, d.info.first_run_id.ptr);
    weft_result_req fq = {.workflow_id = WEFT_STR_LIT(SUBSCRIPTION_ID),
                          .run_id = weft_str_c(first)};
    assert_int_equal(weft_client_result(t->c, &fq, &r, &h, &err), 0);
    assert_int_equal(r.status, WEFT_STATUS_CONTINUED);
    weft_response_free(&h);
    /* The worker drains on SIGTERM and exits 0 (under ASan, also with no leak). */
    assert_int_equal(ex_proc_stop(&t->worker), 0);
    t->passed = true;
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_subscription_continues_as_new, subscription_setup,
                                        subscription_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
