/* test_cluster_failover.c: issue 4's acceptance "leader kill under load". Three nodes, eight
 * shards, replication factor 3. 500 workflows start, paced, through a client that knows every
 * node; each runs an activity, a timer of 1 to 2 s and a second activity, driven by worker
 * threads pinned to each node (a node hands out only the tasks of the shards it leads). In the
 * middle of the run, with half the starts acknowledged and many timers pending, the leader of
 * the busiest shard is killed with SIGKILL. The test takes the wall clock (CLOCK_REALTIME, the
 * clock of the leaders' event times) right at the kill, and watches through ClusterStatus for
 * the moment each shard the killed node led has a new ready leader. Then:
 *   - every acknowledged start has its run, and every run completes (G1, G9);
 *   - no TimerFired comes before its TimerStarted time plus the duration (G6);
 *   - every timer of the killed node's shards that came due during the outage (after the kill,
 *     and no later than its shard's new leader was seen ready), or that was due but not yet
 *     fired at the kill, fired within election timeout + 1 s of the kill, the election timeout
 *     being weftd's --election-timeout-ms (the longest a follower waits before it stands for
 *     election, raft/host.h). It fails when no timer came due during the outage, since the
 *     bound would then go untested;
 *   - every other timer fired at most FO_TIMER_LATE_MS_MAX after its deadline;
 *   - it reports the measured figures: the workflows, the timers due during the outage, their
 *     median and largest delay after the kill, the other timers' largest lateness, and each
 *     shard's time to a new ready leader;
 *   - each run's history and describe, read through the shard leaders, are captured. The killed
 *     node is restarted and catches up, and the same reads give the same bytes. Each node's own
 *     replica, read with consistency=stale from that node alone, holds the same bytes too, where
 *     a node serves stale reads (the test says when one does not). */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "helper_cluster.h"
#include "helper_worker.h"
#include "proto/partition.h"

#define FO_NODES 3u
#define FO_SHARDS 8u
#define FO_RF 3u
#define FO_WORKFLOWS 500u
#define FO_QUEUE "q-failover"
/* Raft timing given to every node (unsuffixed: they are also the flags' text). */
#define FO_ELECTION_TIMEOUT_MS 2000
#define FO_HEARTBEAT_TIMEOUT_MS 100
#define FO_STR(x) #x
#define FO_XSTR(x) FO_STR(x)
/* The longest election after a leader dies: the flag. libraft draws each follower's wait from
 * [base, 2 base] and weftd gives it base = half the flag (raft/host.h), so every follower has
 * timed out by the flag, and raft/guard.c makes the group elect then: a follower whose leader
 * went silent lets votes through, split pre-votes are settled, a follower's catch-up is not
 * held to raft's probe pace (tests/sim/test_failover_sim.c holds hundreds of seeds to the
 * flag plus 250 ms; before the guard did, one kill in 15 took up to twice the flag, and this
 * test once saw a shard's new leader ready 3,360 ms after the kill). Measured 1.2 to 2.1 s
 * after the kill with a 2000 ms flag. */
#define FO_ELECTION_TIMEOUT_MAX_MS FO_ELECTION_TIMEOUT_MS
/* The acceptance: timers that came due during the outage fire within election timeout + 1 s of
 * the kill. */
#define FO_FAILOVER_SLACK_MS 1000u
#define FO_FAILOVER_BOUND_MS ((uint64_t)FO_ELECTION_TIMEOUT_MAX_MS + FO_FAILOVER_SLACK_MS)
/* How long a leadership transfer may hold a shard's proposals, FIRE_TIMERS among them: libraft
 * 0.15 ends a transfer the target did not take after its base election timeout (half the flag),
 * and weft queues the group's proposals meanwhile (docs/notes.md, raft_transfer; raft/propose.c).
 * Such transfers happen during the run: every node hands the shards it leads but does not prefer to
 * their preferred node (node/cluster.c, every few seconds), and after the kill the new leaders are
 * often not the preferred ones. One run in about 45 saw a timer fire 1007 ms late, most likely
 * so (its logs were not kept; expired transfers were seen in other runs' logs). */
#define FO_TRANSFER_HOLD_MS_MAX ((uint64_t)FO_ELECTION_TIMEOUT_MS / 2u)
/* A timer on a shard with a live leader is fired by that leader's timer gate when due, in one
 * proposal: late by a loop turn and a commit, about 100 ms measured. The bound adds 1 s (room
 * for an ASan build on a loaded 2-core CI machine, and the slack the acceptance grants the
 * failover itself) to a transfer's hold. */
#define FO_TIMER_LATE_MS_MAX (FO_TRANSFER_HOLD_MS_MAX + 1000u)
/* Worker threads per node client: half take workflow tasks, half activity tasks. Each thread
 * waits for a commit per task, so more threads mean more timers pending at the kill (ASan runs
 * had as few as 7 due during the outage with 4). */
#define FO_THREADS_PER_NODE 6u
/* Starts are paced, one per interval, so that the run spans several seconds and the kill lands
 * in its middle rather than after a burst. */
#define FO_START_INTERVAL_MS 10u
/* Kill once this many starts are acknowledged and this many activities completed: the other
 * starts straddle the kill, and the timers of the runs started in the seconds before are
 * pending, many of them coming due while the killed node's shards have no leader. */
#define FO_KILL_AFTER_STARTS 250u
#define FO_KILL_AFTER_ACTIVITIES 150u
/* How long the kill may wait for those counts. */
#define FO_KILL_WAIT_MS 120000u
/* Timers last FO_TIMER_MS_MIN plus up to 4 steps of FO_TIMER_MS_STEP. */
#define FO_TIMER_MS_MIN 1000u
#define FO_TIMER_MS_STEP 250u
/* Workflow task timeout of every run: a task lost with the killed node is re-dispatched. */
#define FO_WFT_TIMEOUT_MS 2000u
/* How often the test asks the surviving nodes whether the killed node's shards have a leader. */
#define FO_LEADER_POLL_MS 10u
/* Bound on a new ready leader for each of the killed node's shards; normally about 2 s. */
#define FO_LEADER_TIMEOUT_MS 30000u
/* Bound on the whole run after the kill; normally it needs a fraction. */
#define FO_COMPLETE_TIMEOUT_MS 180000u
/* How long a restarted node may take to catch up with every shard's leader. */
#define FO_CATCH_UP_TIMEOUT_MS 60000u

_Static_assert(FO_KILL_AFTER_STARTS < FO_WORKFLOWS, "starts must straddle the kill");
_Static_assert(FO_HEARTBEAT_TIMEOUT_MS * 5 <= FO_ELECTION_TIMEOUT_MS,
               "weftd refuses a heartbeat above a fifth of the election timeout");

static const char *const fo_flags[] = {"--election-timeout-ms", FO_XSTR(FO_ELECTION_TIMEOUT_MS),
                                       "--heartbeat-timeout-ms", FO_XSTR(FO_HEARTBEAT_TIMEOUT_MS),
                                       NULL};

typedef struct fo {
    hc_cluster c;                       /* the three nodes */
    bool passed;                        /* teardown prints the nodes' stderr otherwise */
    weft_client *starter;               /* every address; used by the start thread */
    weft_client *checker;               /* every address; used by the main thread */
    weft_client *workers[FO_NODES];     /* one per node, so that polls reach each node */
    wk_pool pools[FO_NODES];            /* worker threads, one pool per node client */
    atomic_uint starts_acked;           /* starts acknowledged so far */
    atomic_uint start_resends;          /* starts the client gave up on (then re-sent) */
    char run_ids[FO_WORKFLOWS][128];    /* acknowledged run id per workflow */
    uint32_t shard_of[FO_WORKFLOWS];    /* shard of each workflow */
    uint64_t leader_at_kill[FO_SHARDS]; /* leader of each shard just before the kill */
    uint64_t killed;                    /* node id killed */
    uint64_t first_start_wall_ms;       /* wall clock as the start thread began */
    uint64_t last_start_wall_ms;        /* wall clock of the last start's ack (start thread) */
    uint64_t kill_wall_ms;              /* wall clock of the kill */
    uint64_t ready_wall_ms[FO_SHARDS];  /* killed node's shards: new ready leader seen (wall) */
    wk_capture before[FO_WORKFLOWS];    /* runs read via the leaders before the restart */
} fo;

/* Wall-clock ms: the clock of the leaders' event times (event_time_ms), not weft_mono_ms. */
static uint64_t fo_wall_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static void fo_id(unsigned i, char *wf, size_t cap) {
    snprintf(wf, cap, "failover-%u", i);
}

static bool fo_led_by_killed(const fo *t, uint32_t shard) {
    return t->leader_at_kill[shard] == t->killed;
}

static int fo_setup(void **state) {
    static fo t;
    memset(&t, 0, sizeof t);
    *state = &t;
    if (hc_start(&t.c, FO_NODES, FO_SHARDS, FO_RF, fo_flags) != 0) return -1;
    if (hc_client(&t.c, "failover-starter", &t.starter) != 0) return -1;
    if (hc_client(&t.c, "failover-checker", &t.checker) != 0) return -1;
    for (unsigned id = 1; id <= FO_NODES; id++) {
        if (hc_node_client(&t.c, id, "failover-worker", &t.workers[id - 1]) != 0) return -1;
    }
    return 0;
}

static int fo_teardown(void **state) {
    fo *t = *state;
    for (unsigned k = 0; k < FO_NODES; k++)
        if (t->pools[k].threads_count > 0) wk_pool_stop(&t->pools[k]);
    if (!t->passed) hc_print_stderr(&t->c, WEFTD_STDERR_TAIL_LINES);
    weft_client_close(t->starter);
    weft_client_close(t->checker);
    for (unsigned k = 0; k < FO_NODES; k++)
        weft_client_close(t->workers[k]);
    for (unsigned i = 0; i < FO_WORKFLOWS; i++)
        wk_capture_free(&t->before[i]);
    hc_destroy(&t->c);
    return 0;
}

/* Starts workflow i, re-sending the same request id until it is acknowledged (G4). */
static void fo_start_one(fo *t, unsigned i) {
    char wf[64], rid[96], input[64];
    fo_id(i, wf, sizeof wf);
    snprintf(rid, sizeof rid, "start-%s", wf);
    wk_script_input(input, sizeof input, FO_TIMER_MS_MIN + (i % 5) * FO_TIMER_MS_STEP, 0);
    weft_start_req s = {
        .workflow_id = weft_str_c(wf),
        .workflow_type = WEFT_STR_LIT("failover"),
        .task_queue = WEFT_STR_LIT(FO_QUEUE),
        .input = {.ptr = (const uint8_t *)input, .len = (uint32_t)strlen(input)},
        .request_id = weft_str_c(rid),
        .workflow_task_timeout_ms = FO_WFT_TIMEOUT_MS,
    };
    wk_start_acked(t->starter, &s, t->run_ids[i], sizeof t->run_ids[i], &t->start_resends);
    atomic_fetch_add(&t->starts_acked, 1);
}

/* Starts every workflow, at most one per FO_START_INTERVAL_MS. */
static void *fo_starter_main(void *arg) {
    fo *t = arg;
    uint64_t next_ms = weft_mono_ms();
    for (unsigned i = 0; i < FO_WORKFLOWS; i++) {
        uint64_t now_ms = weft_mono_ms();
        if (now_ms < next_ms) weftd_sleep_ms((uint32_t)(next_ms - now_ms));
        next_ms += FO_START_INTERVAL_MS;
        fo_start_one(t, i);
    }
    t->last_start_wall_ms = fo_wall_ms();
    return NULL;
}

/* The shard holding the most of the test's workflows. */
static uint32_t fo_busiest_shard(fo *t) {
    unsigned count[FO_SHARDS] = {0};
    for (unsigned i = 0; i < FO_WORKFLOWS; i++) {
        char wf[64];
        fo_id(i, wf, sizeof wf);
        t->shard_of[i] = weft_shard_for_hash(
            weft_partition_hash(weft_str_c(WEFT_DEFAULT_NAMESPACE), weft_str_c(wf)), FO_SHARDS);
        count[t->shard_of[i]]++;
    }
    uint32_t best = 0;
    for (uint32_t s = 1; s < FO_SHARDS; s++)
        if (count[s] > count[best]) best = s;
    fprintf(stderr, "busiest shard: %u with %u of %u workflows\n", best, count[best], FO_WORKFLOWS);
    return best;
}

/* Kills the leader of `shard` once enough starts and activities are through, taking the wall
 * clock right before the SIGKILL. */
static void fo_kill_leader(fo *t, uint32_t shard) {
    uint64_t deadline = weft_mono_ms() + FO_KILL_WAIT_MS;
    while (atomic_load(&t->starts_acked) < FO_KILL_AFTER_STARTS ||
           wk_pools_activities(t->pools, FO_NODES) < FO_KILL_AFTER_ACTIVITIES) {
        if (weft_mono_ms() >= deadline)
            fail_msg("only %u starts and %llu activities after %u ms",
                     atomic_load(&t->starts_acked),
                     (unsigned long long)wk_pools_activities(t->pools, FO_NODES), FO_KILL_WAIT_MS);
        weftd_sleep_ms(5);
    }
    for (uint32_t s = 0; s < FO_SHARDS; s++)
        t->leader_at_kill[s] = hc_leader(&t->c, s);
    t->killed = t->leader_at_kill[shard];
    if (t->killed == 0) fail_msg("shard %u has no ready leader to kill", shard);
    t->kill_wall_ms = fo_wall_ms();
    hc_kill9(&t->c, (unsigned)t->killed);
    unsigned led = 0;
    for (uint32_t s = 0; s < FO_SHARDS; s++)
        led += fo_led_by_killed(t, s);
    fprintf(stderr,
            "killed node %llu (leader of shard %u and %u shards in all) %llu ms after the first "
            "start, with %u starts acknowledged and %llu activities completed\n",
            (unsigned long long)t->killed, shard, led,
            (unsigned long long)(t->kill_wall_ms - t->first_start_wall_ms),
            atomic_load(&t->starts_acked),
            (unsigned long long)wk_pools_activities(t->pools, FO_NODES));
}

/* Records, in t->ready_wall_ms, when each shard the killed node led was first seen with a new
 * ready leader: one ClusterStatus per surviving node every FO_LEADER_POLL_MS. The wall time is
 * taken after the answer, so it errs late by at most one poll round. */
static void fo_watch_takeover(fo *t) {
    uint64_t deadline = weft_mono_ms() + FO_LEADER_TIMEOUT_MS;
    for (;;) {
        unsigned waiting = 0;
        for (unsigned id = 1; id <= FO_NODES; id++) {
            if (!hc_alive(&t->c, id)) continue;
            weft_cluster_status_resp st;
            weft_response h = {0};
            weft_err err;
            bool answered = hc_status(&t->c, id, &st, &h, &err) == 0;
            uint64_t now_ms = fo_wall_ms();
            for (uint32_t k = 0; answered && k < st.shards_count; k++) {
                const weft_shard_info *si = &st.shards[k];
                if (si->shard_id >= FO_SHARDS || !fo_led_by_killed(t, si->shard_id)) continue;
                if (si->leader_node == id && si->ready && t->ready_wall_ms[si->shard_id] == 0)
                    t->ready_wall_ms[si->shard_id] = now_ms;
            }
            weft_response_free(&h);
        }
        for (uint32_t s = 0; s < FO_SHARDS; s++)
            waiting += fo_led_by_killed(t, s) && t->ready_wall_ms[s] == 0;
        if (waiting == 0) return;
        if (weft_mono_ms() >= deadline)
            fail_msg("%u of node %llu's shards have no ready leader %u ms after the kill", waiting,
                     (unsigned long long)t->killed, FO_LEADER_TIMEOUT_MS);
        weftd_sleep_ms(FO_LEADER_POLL_MS);
    }
}

/* Waits for workflow i's run to complete and checks it is the acknowledged run. */
static void fo_await(fo *t, unsigned i, uint64_t deadline) {
    char wf[64];
    fo_id(i, wf, sizeof wf);
    assert_int_equal(wk_await_completed(t->checker, wf, t->run_ids[i], deadline), 0);
}

/* One run's timer, as its history recorded it (leader wall-clock ms). */
typedef struct fo_timer {
    uint64_t due_ms;   /* TimerStarted time + duration */
    uint64_t fired_ms; /* TimerFired time */
} fo_timer;

/* One run's history: dense ids, both activities completed once, the timer never early (G6),
 * completed last. Records its timer. */
static void fo_check_history(fo *t, unsigned i, fo_timer *timer) {
    char wf[64];
    fo_id(i, wf, sizeof wf);
    wk_history h;
    weft_err err;
    assert_int_equal(wk_history_get(t->checker, wf, t->run_ids[i], &h, &err), 0);
    uint64_t due = 0, fired = 0;
    bool ok = wk_script_history_ok(&h, &due, &fired);
    if (!ok) {
        fprintf(stderr, "history of %s (shard %u) breaks an invariant:\n", wf, t->shard_of[i]);
        wk_history_print(h.events, h.count);
    }
    *timer = (fo_timer){.due_ms = due, .fired_ms = fired};
    wk_history_free(&h);
    assert_true(ok);
}

/* What the timers did across the failover. "Outage" timers are those of a shard the killed node
 * led that fired after the kill and were due no later than the new leader was seen ready: due
 * during the outage, or due just before the kill but not yet fired (the kill took the gate's
 * proposal with it). The new leader fires them in its first batch. */
typedef struct fo_timer_report {
    unsigned outage_count;                /* outage timers */
    unsigned due_in_outage_count;         /* of those, due after the kill */
    uint64_t after_kill_ms[FO_WORKFLOWS]; /* outage timers: TimerFired - kill, ascending */
    int64_t after_ready_ms_max;           /* outage timers: largest TimerFired - ready seen;
                                             negative when the test saw the leader late */
    unsigned others_count;                /* every other timer */
    uint64_t others_late_ms_max;          /* their largest TimerFired - due */
    unsigned others_late_worst;           /* the workflow of that largest lateness */
} fo_timer_report;

static int fo_u64_cmp(const void *a, const void *b) {
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return (x > y) - (x < y);
}

static void fo_timers_sum_up(const fo *t, const fo_timer *timers, fo_timer_report *r) {
    memset(r, 0, sizeof *r);
    r->after_ready_ms_max = INT64_MIN;
    for (unsigned i = 0; i < FO_WORKFLOWS; i++) {
        uint32_t s = t->shard_of[i];
        const fo_timer *tm = &timers[i];
        WEFT_ASSERT(tm->fired_ms >= tm->due_ms);
        if (fo_led_by_killed(t, s) && tm->fired_ms > t->kill_wall_ms &&
            tm->due_ms <= t->ready_wall_ms[s]) {
            uint64_t after_kill_ms = tm->fired_ms - t->kill_wall_ms;
            r->after_kill_ms[r->outage_count++] = after_kill_ms;
            r->due_in_outage_count += tm->due_ms > t->kill_wall_ms;
            r->after_ready_ms_max = WEFT_MAX(r->after_ready_ms_max,
                                             (int64_t)tm->fired_ms - (int64_t)t->ready_wall_ms[s]);
        } else {
            r->others_count++;
            if (tm->fired_ms - tm->due_ms >= r->others_late_ms_max) {
                r->others_late_ms_max = tm->fired_ms - tm->due_ms;
                r->others_late_worst = i;
            }
        }
    }
    WEFT_ASSERT(r->outage_count + r->others_count == FO_WORKFLOWS);
    qsort(r->after_kill_ms, r->outage_count, sizeof r->after_kill_ms[0], fo_u64_cmp);
}

static void fo_report_timers(const fo *t, const fo_timer_report *r) {
    fprintf(stderr, "shards node %llu led: new ready leader seen after the kill:",
            (unsigned long long)t->killed);
    for (uint32_t s = 0; s < FO_SHARDS; s++) {
        if (fo_led_by_killed(t, s))
            fprintf(stderr, " shard %u +%llu ms;", s,
                    (unsigned long long)(t->ready_wall_ms[s] - t->kill_wall_ms));
    }
    fprintf(stderr, "\n");
    uint64_t median_ms = r->outage_count ? r->after_kill_ms[r->outage_count / 2] : 0;
    uint64_t max_ms = r->outage_count ? r->after_kill_ms[r->outage_count - 1] : 0;
    fprintf(stderr,
            "failover: %u workflows; %u timers due during the outage (and %u overdue at the "
            "kill) fired %llu ms (median) and at most %llu ms after the kill (at most %+lld ms "
            "from their shard's new leader being seen ready); bound %llu ms (election timeout "
            "%u + %u)\n",
            FO_WORKFLOWS, r->due_in_outage_count, r->outage_count - r->due_in_outage_count,
            (unsigned long long)median_ms, (unsigned long long)max_ms,
            r->outage_count ? (long long)r->after_ready_ms_max : 0LL,
            (unsigned long long)FO_FAILOVER_BOUND_MS, FO_ELECTION_TIMEOUT_MAX_MS,
            FO_FAILOVER_SLACK_MS);
    fprintf(stderr,
            "the other %u timers fired at most %llu ms late (failover-%u, shard %u); bound %llu "
            "ms\n",
            r->others_count, (unsigned long long)r->others_late_ms_max, r->others_late_worst,
            t->shard_of[r->others_late_worst], (unsigned long long)FO_TIMER_LATE_MS_MAX);
}

/* Reports the failover's figures, then holds them to the acceptance's bounds. */
static void fo_check_timers(const fo *t, const fo_timer *timers) {
    static fo_timer_report r;
    fo_timers_sum_up(t, timers, &r);
    fo_report_timers(t, &r);
    if (r.due_in_outage_count == 0)
        fail_msg("no timer came due during the outage: the failover bound is untested");
    if (r.after_kill_ms[r.outage_count - 1] > FO_FAILOVER_BOUND_MS)
        fail_msg("a timer due during the outage fired %llu ms after the kill, past the %llu ms "
                 "bound",
                 (unsigned long long)r.after_kill_ms[r.outage_count - 1],
                 (unsigned long long)FO_FAILOVER_BOUND_MS);
    if (r.others_late_ms_max > FO_TIMER_LATE_MS_MAX)
        fail_msg("failover-%u's timer fired %llu ms after its deadline, past %llu ms",
                 r.others_late_worst, (unsigned long long)r.others_late_ms_max,
                 (unsigned long long)FO_TIMER_LATE_MS_MAX);
}

static void fo_capture_all(fo *t, wk_capture *caps) {
    for (unsigned i = 0; i < FO_WORKFLOWS; i++) {
        char wf[64];
        fo_id(i, wf, sizeof wf);
        weft_err err;
        assert_int_equal(wk_capture_run(t->checker, wf, t->run_ids[i], &caps[i], &err), 0);
    }
}

/* Reads every run from node `id`'s own replica (consistency=stale, sent to that node alone)
 * and compares it with `before`. Returns false, having said why, when the node does not serve
 * stale reads of shards it does not lead; fails the test on a difference. */
static bool fo_compare_replica(fo *t, unsigned id) {
    weft_client *c = NULL;
    assert_int_equal(hc_node_client(&t->c, id, "failover-replica", &c), 0);
    bool served = true;
    unsigned same = 0;
    for (unsigned i = 0; i < FO_WORKFLOWS && served; i++) {
        char wf[64];
        fo_id(i, wf, sizeof wf);
        wk_capture cap = {0};
        weft_err err;
        int rc = hc_capture_stale(c, wf, t->run_ids[i], &cap, &err);
        if (rc == -WEFT_E_NOT_LEADER || rc == -WEFT_E_UNAVAILABLE) {
            fprintf(stderr,
                    "node %u does not serve a stale read of %s (shard %u): %s %s; its replica "
                    "is not compared\n",
                    id, wf, t->shard_of[i], weft_error_name(rc), err.message);
            served = false;
        } else {
            if (rc != 0)
                fail_msg("stale read of %s on node %u: %s %s", wf, id, weft_error_name(rc),
                         err.message);
            if (!wk_capture_equal(&cap, &t->before[i]))
                fail_msg("node %u's replica of %s (shard %u) differs from the leader's", id, wf,
                         t->shard_of[i]);
            same++;
        }
        wk_capture_free(&cap);
    }
    weft_client_close(c);
    if (served) fprintf(stderr, "node %u's replica: all %u runs byte-identical\n", id, same);
    return served;
}

/* G3/G4: re-sent starts created no extra runs. Each live node counts the whole cluster by
 * itself (its own shards, and the others' through their leaders), linearizable and stale. */
static void fo_check_count(fo *t) {
    for (unsigned id = 1; id <= FO_NODES; id++) {
        if (!hc_alive(&t->c, id)) continue;
        weft_client *c = NULL;
        assert_int_equal(hc_node_client(&t->c, id, "failover-count", &c), 0);
        for (unsigned stale = 0; stale < 2; stale++) {
            weft_list_req lq = {.workflow_type = WEFT_STR_LIT("failover"),
                                .consistency = stale ? WEFT_CONSISTENCY_STALE : 0};
            weft_count_resp r = {0};
            weft_response h = {0};
            weft_err err;
            int rc = hc_call_seed(c, WEFT_MSG_COUNT_WORKFLOWS, &lq, &r, &h, &err);
            weft_response_free(&h);
            if (rc != 0) {
                fail_msg("node %u: %s count: %s %s", id, stale ? "stale" : "linearizable",
                         weft_error_name(rc), err.message);
            }
            assert_int_equal(r.count, FO_WORKFLOWS);
        }
        weft_client_close(c);
    }
}

/* Runs every workflow through the kill of the busiest shard's leader, until all completed. */
static void fo_run_through_kill(fo *t) {
    uint32_t busiest = fo_busiest_shard(t);
    for (unsigned k = 0; k < FO_NODES; k++) {
        assert_int_equal(
            wk_pool_start_on(&t->pools[k], t->workers[k], FO_QUEUE, FO_THREADS_PER_NODE, k + 1), 0);
    }
    pthread_t starter;
    t->first_start_wall_ms = fo_wall_ms();
    assert_int_equal(pthread_create(&starter, NULL, fo_starter_main, t), 0);
    fo_kill_leader(t, busiest);
    fo_watch_takeover(t);
    pthread_join(starter, NULL);

    /* Every acknowledged start completes. */
    uint64_t deadline = weft_mono_ms() + FO_COMPLETE_TIMEOUT_MS;
    for (unsigned i = 0; i < FO_WORKFLOWS; i++) {
        assert_true(t->run_ids[i][0] != '\0');
        fo_await(t, i, deadline);
    }
    uint64_t all_done_ms = fo_wall_ms() - t->kill_wall_ms;
    for (unsigned k = 0; k < FO_NODES; k++)
        wk_pool_stop(&t->pools[k]);

    fprintf(stderr,
            "all %u workflows completed %llu ms after the kill (the last start was acknowledged "
            "%lld ms after it); start re-sends %u\n",
            FO_WORKFLOWS, (unsigned long long)all_done_ms,
            (long long)t->last_start_wall_ms - (long long)t->kill_wall_ms,
            atomic_load(&t->start_resends));
    wk_pools_print(t->pools, FO_NODES);
}

/* Restarts the killed node and checks that every run reads the same, through the leaders and
 * from each replica on its own. */
static void fo_check_restart(fo *t) {
    /* Every run as the leaders serve it, before the killed node comes back... */
    fo_capture_all(t, t->before);
    assert_int_equal(hc_restart(&t->c, (unsigned)t->killed), 0);
    assert_int_equal(hc_wait_caught_up(&t->c, (unsigned)t->killed, FO_CATCH_UP_TIMEOUT_MS), 0);
    /* ...and after: the same bytes through the (possibly moved) leaders. */
    static wk_capture after[FO_WORKFLOWS];
    fo_capture_all(t, after);
    for (unsigned i = 0; i < FO_WORKFLOWS; i++) {
        if (!wk_capture_equal(&after[i], &t->before[i]))
            fail_msg("failover-%u reads differently after node %llu's restart", i,
                     (unsigned long long)t->killed);
        wk_capture_free(&after[i]);
    }
    /* Each replica on its own, the restarted one first. */
    unsigned compared = fo_compare_replica(t, (unsigned)t->killed) ? 1 : 0;
    for (unsigned id = 1; id <= FO_NODES; id++) {
        if (id != t->killed) compared += fo_compare_replica(t, id) ? 1 : 0;
    }
    fprintf(stderr, "replicas compared on their own: %u of %u\n", compared, FO_NODES);
}

static void test_cluster_failover(void **state) {
    fo *t = *state;
    uint64_t began_ms = weft_mono_ms();
    fo_run_through_kill(t);
    static fo_timer timers[FO_WORKFLOWS];
    for (unsigned i = 0; i < FO_WORKFLOWS; i++)
        fo_check_history(t, i, &timers[i]);
    fo_check_timers(t, timers);
    fo_check_count(t);
    fo_check_restart(t);
    assert_int_equal(hc_stop_all(&t->c), 0);
    fprintf(stderr, "the test took %llu ms after the cluster was up\n",
            (unsigned long long)(weft_mono_ms() - began_ms));
    t->passed = true;
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_cluster_failover, fo_setup, fo_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
