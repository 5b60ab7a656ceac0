/* test_cluster_failover.c: a first slice of the HA cluster's acceptance (issue 4). Three nodes,
 * eight shards, replication factor 3. 100 workflows start through a client that knows every
 * node, each with an activity, a timer of 1 to 2 s and a second activity, driven by worker
 * threads that poll every node (a node hands out only the tasks of the shards it leads). The
 * leader of the busiest shard is killed with SIGKILL while starts still arrive and timers are
 * pending. Then:
 *   - every acknowledged start has its run, and every run completes (G1, G9);
 *   - no TimerFired comes before its TimerStarted time plus the duration (G6), and the test
 *     prints how long after the kill the timers that came due during the outage fired;
 *   - each run's history and describe, read through the shard leaders, are captured; the
 *     killed node is restarted, catches up, and the same reads give the same bytes; and each
 *     node's own replica, read with consistency=stale from that node alone, holds the same
 *     bytes too (where a node serves stale reads; the test says when one does not). */
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
#define FO_WORKFLOWS 100u
#define FO_QUEUE "q-failover"
/* Worker threads per node client: half take workflow tasks, half activity tasks. */
#define FO_THREADS_PER_NODE 4u
/* Kill once this many starts are acknowledged and this many activities completed: the other
 * starts straddle the kill, and the first runs' timers are pending. */
#define FO_KILL_AFTER_STARTS 60u
#define FO_KILL_AFTER_ACTIVITIES 20u
/* Timers last FO_TIMER_MS_MIN plus up to 4 steps of FO_TIMER_MS_STEP. */
#define FO_TIMER_MS_MIN 1000u
#define FO_TIMER_MS_STEP 250u
/* Workflow task timeout of every run: a task lost with the killed node is re-dispatched. */
#define FO_WFT_TIMEOUT_MS 2000u
/* Bound on the whole run after the kill; normally it needs a fraction. */
#define FO_COMPLETE_TIMEOUT_MS 180000u
/* How long a restarted node may take to catch up with every shard's leader. */
#define FO_CATCH_UP_TIMEOUT_MS 60000u

static const char *const fo_flags[] = {"--election-timeout-ms", "1000", "--heartbeat-timeout-ms",
                                       "100", NULL};

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
    uint64_t kill_wall_ms;              /* wall clock of the kill */
    wk_capture before[FO_WORKFLOWS];    /* runs read via the leaders before the restart */
} fo;

static uint64_t fo_wall_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static void fo_id(unsigned i, char *wf, size_t cap) {
    snprintf(wf, cap, "failover-%u", i);
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

static void *fo_starter_main(void *arg) {
    fo *t = arg;
    for (unsigned i = 0; i < FO_WORKFLOWS; i++)
        fo_start_one(t, i);
    return NULL;
}

static uint64_t fo_activities_done(fo *t) {
    uint64_t n = 0;
    for (unsigned k = 0; k < FO_NODES; k++)
        n += atomic_load(&t->pools[k].act_completed);
    return n;
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

/* Kills the leader of `shard` once enough starts and activities are through. */
static void fo_kill_leader(fo *t, uint32_t shard) {
    uint64_t deadline = weft_mono_ms() + 120000;
    while (atomic_load(&t->starts_acked) < FO_KILL_AFTER_STARTS ||
           fo_activities_done(t) < FO_KILL_AFTER_ACTIVITIES) {
        if (weft_mono_ms() >= deadline)
            fail_msg("only %u starts and %llu activities after 120 s",
                     atomic_load(&t->starts_acked), (unsigned long long)fo_activities_done(t));
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
        led += t->leader_at_kill[s] == t->killed;
    fprintf(stderr,
            "killed node %llu (leader of shard %u and %u shards in all) with %u starts "
            "acknowledged and %llu activities completed\n",
            (unsigned long long)t->killed, shard, led, atomic_load(&t->starts_acked),
            (unsigned long long)fo_activities_done(t));
}

/* Waits for workflow i's run to complete and checks it is the acknowledged run. */
static void fo_await(fo *t, unsigned i, uint64_t deadline) {
    char wf[64];
    fo_id(i, wf, sizeof wf);
    assert_int_equal(wk_await_completed(t->checker, wf, t->run_ids[i], deadline), 0);
}

/* One run's timer, for the failover report. */
typedef struct fo_timer {
    uint64_t due_ms;   /* TimerStarted time + duration */
    uint64_t fired_ms; /* TimerFired time */
} fo_timer;

/* One run's history: dense ids, both activities completed once, the timer never early (G6),
 * completed last. Records its timer, and, on a shard the killed node led, the earliest event
 * written after the kill (the new leader's first entries). */
static void fo_check_history(fo *t, unsigned i, fo_timer *timer, uint64_t *takeover_ms) {
    char wf[64];
    fo_id(i, wf, sizeof wf);
    wk_history h;
    weft_err err;
    assert_int_equal(wk_history_get(t->checker, wf, t->run_ids[i], &h, &err), 0);
    const weft_event *ev = h.events;
    uint64_t due = 0, fired = 0;
    bool ok = wk_script_history_ok(&h, &due, &fired);
    if (!ok) {
        fprintf(stderr, "history of %s (shard %u) breaks an invariant:\n", wf, t->shard_of[i]);
        wk_history_print(ev, h.count);
    } else {
        *timer = (fo_timer){.due_ms = due, .fired_ms = fired};
        if (t->leader_at_kill[t->shard_of[i]] == t->killed) {
            for (uint32_t k = 0; k < h.count; k++) {
                uint64_t at = ev[k].event_time_ms;
                if (at > t->kill_wall_ms && (*takeover_ms == 0 || at < *takeover_ms))
                    *takeover_ms = at;
            }
        }
    }
    wk_history_free(&h);
    assert_true(ok);
}

/* Prints what the timers did across the failover: those on the killed leader's shards that
 * came due between the kill and the new leader's first entry (overdue at the takeover: the new
 * leader must fire them in its first batch), and the lateness of every other timer. */
static void fo_report_timers(fo *t, const fo_timer *timers, const uint64_t *takeover_ms) {
    unsigned overdue = 0, others = 0;
    uint64_t after_min = UINT64_MAX, after_max = 0, late_max = 0, late_other_max = 0;
    for (unsigned i = 0; i < FO_WORKFLOWS; i++) {
        uint32_t s = t->shard_of[i];
        const fo_timer *tm = &timers[i];
        uint64_t late = tm->fired_ms - tm->due_ms;
        bool killed_shard = t->leader_at_kill[s] == t->killed;
        if (killed_shard && tm->fired_ms > t->kill_wall_ms && tm->due_ms < takeover_ms[s]) {
            overdue++;
            after_min = WEFT_MIN(after_min, tm->fired_ms - t->kill_wall_ms);
            after_max = WEFT_MAX(after_max, tm->fired_ms - t->kill_wall_ms);
            late_max = WEFT_MAX(late_max, late);
        } else {
            others++;
            late_other_max = WEFT_MAX(late_other_max, late);
        }
    }
    fprintf(stderr, "shards the killed node led: new leader, first history event after the kill:");
    for (uint32_t s = 0; s < FO_SHARDS; s++) {
        if (t->leader_at_kill[s] != t->killed) continue;
        fprintf(stderr, " shard %u node %llu +%lld ms;", s, (unsigned long long)hc_leader(&t->c, s),
                takeover_ms[s] ? (long long)(takeover_ms[s] - t->kill_wall_ms) : -1LL);
    }
    fprintf(stderr, "\n");
    if (overdue > 0) {
        fprintf(stderr,
                "failover: %u timers came due while their shard had no leader; they fired %llu "
                "to %llu ms after the kill (at most %llu ms late)\n",
                overdue, (unsigned long long)after_min, (unsigned long long)after_max,
                (unsigned long long)late_max);
    } else {
        fprintf(stderr, "failover: no timer came due while its shard had no leader\n");
    }
    fprintf(stderr, "the other %u timers fired at most %llu ms late\n", others,
            (unsigned long long)late_other_max);
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

/* G3/G4: re-sent starts created no extra runs. A linearizable count spans every shard, and
 * so every shard leader; where the answering node cannot do that (it refuses with
 * NOT_LEADER or UNAVAILABLE), each node counts its own replicas instead (stale). */
static void fo_check_count(fo *t) {
    weft_list_req lq = {.workflow_type = WEFT_STR_LIT("failover")};
    uint64_t count = 0;
    weft_err err;
    /* One attempt: a refusal is not worth the checker's 20 s of retries. */
    weft_client_opts o = {.client_name = "failover-count", .no_retries = true};
    weft_client *once = NULL;
    int rc = weft_client_open(t->c.addresses, &o, &once, &err);
    if (rc == 0) rc = weft_client_count(once, &lq, &count, &err);
    weft_client_close(once);
    if (rc == 0) {
        assert_int_equal(count, FO_WORKFLOWS);
        return;
    }
    if (rc != -WEFT_E_NOT_LEADER && rc != -WEFT_E_UNAVAILABLE)
        fail_msg("count: %s %s", weft_error_name(rc), err.message);
    fprintf(stderr, "a linearizable count is refused (%s: %s); counting each node's replicas\n",
            weft_error_name(rc), err.message);
    lq.consistency = WEFT_CONSISTENCY_STALE;
    for (unsigned id = 1; id <= FO_NODES; id++) {
        if (!hc_alive(&t->c, id)) continue;
        weft_client *c = NULL;
        assert_int_equal(hc_node_client(&t->c, id, "failover-count", &c), 0);
        weft_count_resp r = {0};
        weft_response h = {0};
        rc = hc_call_seed(c, WEFT_MSG_COUNT_WORKFLOWS, &lq, &r, &h, &err);
        weft_response_free(&h);
        weft_client_close(c);
        if (rc != 0) {
            fprintf(stderr, "node %u: stale count: %s %s\n", id, weft_error_name(rc), err.message);
            continue;
        }
        fprintf(stderr, "node %u counts %llu runs in its replicas\n", id,
                (unsigned long long)r.count);
        assert_int_equal(r.count, FO_WORKFLOWS);
    }
}

static void test_cluster_failover(void **state) {
    fo *t = *state;
    uint32_t busiest = fo_busiest_shard(t);
    for (unsigned k = 0; k < FO_NODES; k++) {
        assert_int_equal(wk_pool_start(&t->pools[k], t->workers[k], FO_QUEUE, FO_THREADS_PER_NODE),
                         0);
    }
    pthread_t starter;
    assert_int_equal(pthread_create(&starter, NULL, fo_starter_main, t), 0);
    fo_kill_leader(t, busiest);
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

    static fo_timer timers[FO_WORKFLOWS];
    uint64_t takeover_ms[FO_SHARDS] = {0};
    for (unsigned i = 0; i < FO_WORKFLOWS; i++)
        fo_check_history(t, i, &timers[i], &takeover_ms[t->shard_of[i]]);
    fo_report_timers(t, timers, takeover_ms);
    fprintf(stderr, "all %u workflows completed %llu ms after the kill; start re-sends %u\n",
            FO_WORKFLOWS, (unsigned long long)all_done_ms, atomic_load(&t->start_resends));
    for (unsigned k = 0; k < FO_NODES; k++) {
        fprintf(stderr, "worker on node %u: workflow tasks %llu, activities %llu, errors %llu\n",
                k + 1, (unsigned long long)atomic_load(&t->pools[k].wft_completed),
                (unsigned long long)atomic_load(&t->pools[k].act_completed),
                (unsigned long long)atomic_load(&t->pools[k].errors));
    }

    fo_check_count(t);

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

    assert_int_equal(hc_stop_all(&t->c), 0);
    t->passed = true;
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_cluster_failover, fo_setup, fo_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
