/* test_cluster_dispatch.c: an attempt is dispatched at most once, whatever happens to the leader
 * (DESIGN section 8: "A task leaves the node only after its Started entry has committed").
 *
 * Three nodes, one shard, R = 3. A workflow schedules an activity; its task waits in the
 * leader's queue. Both followers are stopped (SIGSTOP), so the leader can commit nothing, and
 * the leader is polled for the activity. The poll must not hand the task out: its Started entry
 * cannot commit, and the leader steps down, so the poll ends empty (or UNAVAILABLE). Issue 9
 * saw the old behaviour, which answered at once and proposed the Started entry alongside: a new
 * leader then handed the same attempt to a second worker. After SIGCONT, the activity is
 * handed out exactly once: attempt 1 if the stopped leader's Started entry was lost, or the
 * next attempt after attempt 1's start-to-close timeout if that entry committed under a later
 * leader with nobody holding the attempt. Its history records that one attempt, started and
 * completed once. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <signal.h>
#include <stdio.h>
#include <string.h>

#include "helper_cluster.h"
#include "helper_worker.h"

#define DS_NODES 3u
#define DS_SHARDS 1u
#define DS_RF 3u
#define DS_QUEUE "q-dispatch"
#define DS_WF "dispatch-1"
/* Attempt 1's start-to-close: when its Started commits with nobody holding it, the next attempt
 * comes this long after, plus the default retry backoff (1 s). Long enough that the attempt
 * handed out is completed before it times out on a busy machine. */
#define DS_START_TO_CLOSE_MS 6000u
/* The poll sent to the leader while its followers are stopped. The leader steps down within an
 * election timeout, so the poll ends well before the client's call timeout (10 s). */
#define DS_STOPPED_POLL_MS 5000u
/* Each poll while waiting for the task after the followers resume. */
#define DS_POLL_MS 2000u
/* How long the activity may take to be handed out after the followers resume: an election,
 * attempt 1's start-to-close and backoff, with room for an ASan build on a busy machine. */
#define DS_DELIVERY_TIMEOUT_MS 60000u
/* Pause between polls while the shard has no leader. */
#define DS_RETRY_PAUSE_MS 100u

static const char *const ds_flags[] = {"--election-timeout-ms", "2000", "--heartbeat-timeout-ms",
                                       "100", NULL};

typedef struct ds {
    hc_cluster c;
    bool passed;
    bool stopped[DS_NODES];          /* nodes this test SIGSTOPped and has not resumed */
    weft_client *cl;                 /* every node's address: starts, completions, history */
    weft_client *seed[HC_NODES_MAX]; /* one per node, used only through hc_call_seed */
} ds;

static ds fx;

static void ds_resume_all(ds *t) {
    for (unsigned id = 1; id <= DS_NODES; id++) {
        if (!t->stopped[id - 1]) continue;
        kill(t->c.node[id - 1].proc.pid, SIGCONT);
        t->stopped[id - 1] = false;
    }
}

static int ds_teardown(void **state) {
    (void)state;
    ds *t = &fx;
    ds_resume_all(t);
    if (!t->passed) hc_print_stderr(&t->c, WEFTD_STDERR_TAIL_LINES);
    for (unsigned k = 0; k < HC_NODES_MAX; k++)
        weft_client_close(t->seed[k]);
    weft_client_close(t->cl);
    hc_destroy(&t->c);
    return 0;
}

/* Polls an activity task on node `id` alone. Returns the client's code; *got tells whether a
 * task came back (then *out and its holder h are filled). */
static int ds_poll_act(ds *t, unsigned id, uint64_t timeout_ms, weft_poll_activity_resp *out,
                       weft_response *h, bool *got, weft_err *err) {
    weft_poll_req q = {.task_queue = WEFT_STR_LIT(DS_QUEUE), .poll_timeout_ms = timeout_ms};
    memset(out, 0, sizeof *out);
    int rc = hc_call_seed(t->seed[id - 1], WEFT_MSG_POLL_ACTIVITY_TASK, &q, out, h, err);
    *got = rc == 0 && out->task_token.len > 0;
    return rc;
}

/* Starts the workflow and answers its first task with ScheduleActivity, through the leader. */
static void ds_schedule_activity(ds *t) {
    weft_start_req s = {.workflow_id = WEFT_STR_LIT(DS_WF),
                        .workflow_type = WEFT_STR_LIT("dispatch"),
                        .task_queue = WEFT_STR_LIT(DS_QUEUE)};
    char run_id[64];
    wk_start_acked(t->cl, &s, run_id, sizeof run_id, NULL);
    uint64_t deadline = weft_mono_ms() + DS_DELIVERY_TIMEOUT_MS;
    for (;;) {
        assert_true(weft_mono_ms() < deadline);
        uint64_t leader = hc_wait_leader(&t->c, 0, HC_READY_TIMEOUT_MS);
        assert_true(leader != 0);
        weft_poll_req q = {.task_queue = WEFT_STR_LIT(DS_QUEUE), .poll_timeout_ms = DS_POLL_MS};
        weft_poll_wft_resp wt;
        weft_response h = {0};
        weft_err err;
        int rc = hc_call_seed(t->seed[leader - 1], WEFT_MSG_POLL_WORKFLOW_TASK, &q, &wt, &h, &err);
        if (rc == 0 && wt.task_token.len > 0) {
            weft_command act = wk_cmd_activity("a1", "charge", "in", DS_START_TO_CLOSE_MS, NULL);
            rc = wk_complete_wft(t->cl, &wt, &act, 1, &err);
            if (rc != 0) fail_msg("complete workflow task: %s", err.message);
            weft_response_free(&h);
            return;
        }
        weft_response_free(&h);
        weftd_sleep_ms(DS_RETRY_PAUSE_MS);
    }
}

/* True when node `id` reports itself the ready leader of shard 0. */
static bool ds_leads(ds *t, unsigned id) {
    weft_cluster_status_resp s;
    weft_response h = {0};
    weft_err err;
    bool leads = false;
    if (hc_status(&t->c, id, &s, &h, &err) == 0) {
        for (uint32_t k = 0; k < s.shards_count; k++) {
            if (s.shards[k].shard_id == 0 && s.shards[k].leader_node == id && s.shards[k].ready)
                leads = true;
        }
    }
    weft_response_free(&h);
    return leads;
}

/* Stops both followers of the shard's leader and polls the leader. Returns the leader's id, or
 * 0 when leadership moved before the followers stopped (the caller tries again). */
static unsigned ds_poll_with_followers_stopped(ds *t) {
    unsigned leader = (unsigned)hc_wait_leader(&t->c, 0, HC_READY_TIMEOUT_MS);
    assert_true(leader != 0);
    if (!ds_leads(t, leader)) return 0;
    for (unsigned id = 1; id <= DS_NODES; id++) {
        if (id == leader) continue;
        assert_int_equal(kill(t->c.node[id - 1].proc.pid, SIGSTOP), 0);
        t->stopped[id - 1] = true;
    }
    uint64_t t0 = weft_mono_ms();
    weft_poll_activity_resp a;
    weft_response h = {0};
    weft_err err;
    bool got = false;
    int rc = ds_poll_act(t, leader, DS_STOPPED_POLL_MS, &a, &h, &got, &err);
    fprintf(stderr, "poll of leader %u with its followers stopped: %s, %s, after %llu ms\n",
            leader, weft_error_name(rc), got ? "a task" : "no task",
            (unsigned long long)(weft_mono_ms() - t0));
    if (got) {
        fail_msg("leader %u handed out attempt %u of activity %.*s although its Started entry "
                 "could not commit (no follower running)",
                 leader, a.attempt, (int)a.activity_id.len, a.activity_id.ptr);
    }
    weft_response_free(&h);
    ds_resume_all(t);
    return leader;
}

/* After the followers resume: polls the shard's leader until the activity is handed out, and
 * completes it. Returns the attempt handed out. */
static uint32_t ds_deliver_once(ds *t) {
    uint64_t deadline = weft_mono_ms() + DS_DELIVERY_TIMEOUT_MS;
    for (;;) {
        if (weft_mono_ms() > deadline) fail_msg("the activity was not handed out after resuming");
        uint64_t leader = hc_wait_leader(&t->c, 0, HC_READY_TIMEOUT_MS);
        assert_true(leader != 0);
        weft_poll_activity_resp a;
        weft_response h = {0};
        weft_err err;
        bool got = false;
        (void)ds_poll_act(t, (unsigned)leader, DS_POLL_MS, &a, &h, &got, &err);
        if (!got) {
            weft_response_free(&h);
            weftd_sleep_ms(DS_RETRY_PAUSE_MS);
            continue;
        }
        uint32_t attempt = a.attempt;
        fprintf(stderr, "node %llu handed out attempt %u\n", (unsigned long long)leader, attempt);
        assert_true(weft_str_eq_c(a.activity_id, "a1"));
        int rc = wk_complete_act(t->cl, &a, "charged", &err);
        if (rc != 0) fail_msg("complete attempt %u: %s", attempt, err.message);
        weft_response_free(&h);
        /* Nothing more of it is handed out. */
        leader = hc_wait_leader(&t->c, 0, HC_READY_TIMEOUT_MS);
        assert_true(leader != 0);
        (void)ds_poll_act(t, (unsigned)leader, DS_POLL_MS, &a, &h, &got, &err);
        if (got) fail_msg("attempt %u of the completed activity was handed out again", a.attempt);
        weft_response_free(&h);
        return attempt;
    }
}

static void test_dispatch_waits_for_started(void **state) {
    (void)state;
    ds *t = &fx;
    memset(t, 0, sizeof *t);
    assert_int_equal(hc_start(&t->c, DS_NODES, DS_SHARDS, DS_RF, ds_flags), 0);
    assert_int_equal(hc_client(&t->c, "dispatch", &t->cl), 0);
    for (unsigned id = 1; id <= DS_NODES; id++)
        assert_int_equal(hc_node_client(&t->c, id, "dispatch-seed", &t->seed[id - 1]), 0);
    ds_schedule_activity(t);
    unsigned leader = 0;
    for (unsigned tries = 0; leader == 0; tries++) {
        assert_true(tries < 10);
        leader = ds_poll_with_followers_stopped(t);
    }
    assert_int_equal(hc_wait_ready(&t->c, HC_READY_TIMEOUT_MS), 0);
    uint32_t attempt = ds_deliver_once(t);

    /* History: the one attempt handed out started and completed once. */
    wk_history hist;
    weft_err err;
    assert_int_equal(wk_history_get(t->cl, DS_WF, "", &hist, &err), 0);
    assert_int_equal(wk_count(hist.events, hist.count, WEFT_EV_ACTIVITY_TASK_STARTED, NULL), 1);
    assert_int_equal(wk_count(hist.events, hist.count, WEFT_EV_ACTIVITY_TASK_COMPLETED, NULL), 1);
    const weft_event *started = wk_find(hist.events, hist.count, WEFT_EV_ACTIVITY_TASK_STARTED, NULL);
    assert_non_null(started);
    assert_int_equal(started->attempt, attempt);
    wk_history_free(&hist);
    fprintf(stderr, "attempt %u was handed out once (%s)\n", attempt,
            attempt == 1 ? "the stopped leader's Started entry was lost"
                         : "attempt 1 started with nobody holding it and timed out");
    assert_int_equal(hc_stop_all(&t->c), 0);
    t->passed = true;
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(test_dispatch_waits_for_started, ds_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
