/* test_shard_review_history.c: what history says about an activity does not depend on whether
 * a workflow task happened to be running when its outcome arrived (section 7: the outcome is
 * then buffered and written after the task). ActivityTaskStarted is written together with the
 * final outcome, but its time is when the attempt started (section 7, "Activities"). */
#include "test_shard_harness.h"

/* Runs one activity: started at T0+1000, completed at T0+5000; with `buffered`, a workflow task
 * (from a signal) is running when the result arrives. Returns the Started event's time. */
static uint64_t started_time(bool buffered) {
    th *h = th_new();
    th_open(h);
    th_start(h, "w");
    weft_poll_wft_resp wt;
    assert_int_equal(th_poll_wft(h, "q", &wt), 0);
    weft_command a = th_cmd_activity("a", "t");
    assert_int_equal(th_complete_wft(h, wt.task_token, &a, 1, NULL), 0);
    th_advance(h, 1000);
    uint64_t t_started = h->now_ms;
    weft_poll_activity_resp r;
    assert_int_equal(th_poll_act(h, "q", &r), 0);
    th_advance(h, 2000);
    if (buffered) {
        assert_int_equal(th_signal(h, "w", "s", NULL), 0);
        assert_int_equal(th_poll_wft(h, "q", &wt), 0);
    }
    th_advance(h, 2000);
    assert_int_equal(th_act(h, WEFT_MSG_COMPLETE_ACTIVITY, r.task_token, "ok", NULL), 0);
    if (buffered) assert_int_equal(th_complete_wft(h, wt.task_token, NULL, 0, NULL), 0);
    weft_event *ev = NULL;
    uint32_t n = th_history(h, "w", "", &ev);
    uint64_t got = 0;
    for (uint32_t i = 0; i < n; i++) {
        if (ev[i].event_type == WEFT_EV_ACTIVITY_TASK_STARTED) got = ev[i].event_time_ms;
        if (ev[i].event_type == WEFT_EV_ACTIVITY_TASK_COMPLETED) {
            assert_int_equal(ev[i].event_time_ms, t_started + 4000);
        }
    }
    assert_int_equal(got, t_started);
    th_free(h);
    return got;
}

static void test_started_time_written_directly(void **state) {
    (void)state;
    started_time(false);
}

static void test_started_time_buffered(void **state) {
    (void)state;
    started_time(true);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_started_time_written_directly),
        cmocka_unit_test(test_started_time_buffered),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
