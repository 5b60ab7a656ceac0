/* test_datadir.c: the data dir fixes the cluster identity (DESIGN section 5): a restart with a
 * different --shards is refused with a message that names the flag; SIGTERM exits 0 and a
 * restart with the right flags serves the earlier workflows. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "helper_weftd.h"

/* How long a refused start may take to exit. */
#define DATADIR_REFUSE_TIMEOUT_MS 20000u
/* Workflows started before the restarts. */
#define DATADIR_WORKFLOWS 10u

typedef struct datadir {
    weftd w;     /* the server */
    bool passed; /* teardown prints stderr otherwise */
} datadir;

static const char *const flags_2[] = {
    "--shards", "2", "--election-timeout-ms", "300", "--heartbeat-timeout-ms", "50", NULL};
static const char *const flags_3[] = {
    "--shards", "3", "--election-timeout-ms", "300", "--heartbeat-timeout-ms", "50", NULL};

static int datadir_setup(void **state) {
    static datadir t;
    memset(&t, 0, sizeof t);
    if (weftd_start(&t.w, flags_2) != 0) return -1;
    *state = &t;
    return 0;
}

static int datadir_teardown(void **state) {
    datadir *t = *state;
    if (!t->passed) weftd_print_stderr(&t->w, WEFTD_STDERR_TAIL_LINES);
    weftd_destroy(&t->w);
    return 0;
}

/* Starts DATADIR_WORKFLOWS runs and records their run ids. */
static void datadir_start_all(datadir *t, char run_ids[][128]) {
    weft_client *c = NULL;
    assert_int_equal(weftd_client(&t->w, "datadir", &c), 0);
    for (unsigned i = 0; i < DATADIR_WORKFLOWS; i++) {
        char id[64];
        snprintf(id, sizeof id, "dd-%u", i);
        weft_start_req s = {.workflow_id = weft_str_c(id),
                            .workflow_type = WEFT_STR_LIT("t"),
                            .task_queue = WEFT_STR_LIT("q-dd"),
                            .input = {.ptr = (const uint8_t *)id, .len = (uint32_t)strlen(id)}};
        weft_response h = {0};
        weft_start_resp r;
        weft_err err;
        int rc = weft_client_start(c, &s, &r, &h, &err);
        if (rc != 0) fprintf(stderr, "start %s: %s %s\n", id, weft_error_name(rc), err.message);
        assert_int_equal(rc, 0);
        weft_str_copy(run_ids[i], 128, r.run_id);
        weft_response_free(&h);
    }
    weft_client_close(c);
}

/* Every earlier run is there, with its run id, type and input. */
static void datadir_check_all(datadir *t, char run_ids[][128]) {
    weft_client *c = NULL;
    assert_int_equal(weftd_client(&t->w, "datadir-check", &c), 0);
    for (unsigned i = 0; i < DATADIR_WORKFLOWS; i++) {
        char id[64];
        snprintf(id, sizeof id, "dd-%u", i);
        weft_describe_req dq = {.workflow_id = weft_str_c(id)};
        weft_describe_resp d;
        weft_response h = {0};
        weft_err err;
        int rc = weft_client_describe(c, &dq, &d, &h, &err);
        if (rc != 0) fprintf(stderr, "describe %s: %s %s\n", id, weft_error_name(rc), err.message);
        assert_int_equal(rc, 0);
        assert_true(weft_str_eq_c(d.info.run_id, run_ids[i]));
        assert_int_equal(d.info.status, WEFT_STATUS_RUNNING);
        assert_true(weft_str_eq_c(d.info.workflow_type, "t"));
        weft_history_req hq = {.workflow_id = weft_str_c(id), .first_event_id = 1};
        weft_history_resp hr;
        assert_int_equal(weft_client_history(c, &hq, &hr, &h, &err), 0);
        assert_true(hr.events_count >= 1);
        assert_int_equal(hr.events[0].event_type, WEFT_EV_WORKFLOW_EXECUTION_STARTED);
        assert_int_equal(hr.events[0].input.len, strlen(id));
        assert_memory_equal(hr.events[0].input.ptr, id, strlen(id));
        weft_response_free(&h);
    }
    weft_client_close(c);
}

static void test_datadir_identity(void **state) {
    datadir *t = *state;
    static char run_ids[DATADIR_WORKFLOWS][128];
    datadir_start_all(t, run_ids);
    assert_int_equal(weftd_stop(&t->w), 0); /* SIGTERM is a clean stop */

    /* A different shard count must be refused, naming the flag to fix. */
    weftd_set_extra(&t->w, flags_3);
    assert_int_equal(weftd_spawn(&t->w), 0);
    int code = weftd_wait_exit(&t->w, DATADIR_REFUSE_TIMEOUT_MS);
    if (code <= 0) weftd_print_stderr(&t->w, WEFTD_STDERR_TAIL_LINES);
    assert_true(code > 0 && code < 128); /* refused: an exit code, not a crash or a hang */
    assert_true(weftd_stderr_contains(&t->w, "--shards"));

    /* The right flags serve the earlier workflows, before and after a second clean restart. */
    weftd_set_extra(&t->w, flags_2);
    assert_int_equal(weftd_restart(&t->w), 0);
    datadir_check_all(t, run_ids);
    assert_int_equal(weftd_stop(&t->w), 0);
    assert_int_equal(weftd_restart(&t->w), 0);
    datadir_check_all(t, run_ids);
    assert_int_equal(weftd_stop(&t->w), 0);
    t->passed = true;
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_datadir_identity, datadir_setup, datadir_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
