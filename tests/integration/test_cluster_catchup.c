/* test_cluster_catchup.c: a restarted replica catches up promptly (issue 9: under kill -9 of a
 * random node every few seconds, a replica on a restarted node gained no entries for 11 to
 * 34 s, and a second failure inside that window stalled its shard although 2 of 3 nodes were
 * up).
 *
 * Three nodes, eight shards, replication factor 3, default raft timing. Worker threads poll
 * every node and load threads keep starting and signalling standard-script runs. For
 * CU_FAULTS_MS, faults drawn from a seed (CU_SEED; WEFT_TEST_SEED overrides it) follow the
 * issue's chaos run: every 5 to 10 s a random node is killed with SIGKILL, stays down 1 to
 * 4 s and is started again, whether or not the last victim has caught up. From the moment a
 * restarted node answers ClusterStatus, the test reads each shard's commit index from the
 * shard's ready leader (the target) and watches the node's own ClusterStatus until its replica
 * of every shard has applied that target. That must happen within CU_CATCH_UP_MS_MAX of the
 * target's reading unless the node is killed again first; a late node's lag on each shard, as
 * the shard's leader reports it, is printed every second. Every other time a restarted node is
 * killed again right away, while the leaders send it what it missed. After the faults, every
 * acknowledged run completes. */
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

#include "helper_cluster.h"
#include "helper_worker.h"

#define CU_NODES 3u
#define CU_SHARDS 8u
#define CU_RF 3u
#define CU_QUEUE "q-catchup"
/* How long faults are injected. */
#define CU_FAULTS_MS 90000u
/* The seed the faults are drawn from (victim, downtime, interval); WEFT_TEST_SEED overrides. */
#define CU_SEED 0x9c47c0ffeeull
/* A victim stays down CU_DOWN_MS_MIN plus up to CU_DOWN_MS_SPREAD (the 1 to 4 s). */
#define CU_DOWN_MS_MIN 1000u
#define CU_DOWN_MS_SPREAD 3000u
/* A second kill of a restarted node comes at most this long after it answered: while the
 * leaders are still sending it what it missed. */
#define CU_AGAIN_AFTER_MS_MAX 300u
/* A kill every CU_KILL_EVERY_MS_MIN plus up to CU_KILL_EVERY_MS_SPREAD (the 5 to 10 s),
 * whether or not the last victim has caught up. */
#define CU_KILL_EVERY_MS_MIN 5000u
#define CU_KILL_EVERY_MS_SPREAD 5000u
/* weftd's default election timeout (raft/host.h), the flags' value here too. */
#define CU_ELECTION_TIMEOUT_MS 2000u
/* The bound, per shard: from the later of the restarted node answering and the shard having
 * a ready leader, until the node's replica has applied what that leader had committed then.
 * (A shard whose leader was killed next elects first: the election is test_failover_sim's
 * business.) The leader finds the replica's log end within a heartbeat or two and sends what it
 * misses, or a snapshot; a snapshot lost on the way is sent again after an election timeout
 * (raft/guard.c). The rest is room for a loaded 2-core machine and the ASan build. A lost
 * snapshot took install-snapshot-timeout-ms (30 s) before the fix. */
#define CU_CATCH_UP_MS_MAX (CU_ELECTION_TIMEOUT_MS + 2000u)
/* How often the test reads the restarted node's status while it catches up. */
#define CU_POLL_MS 20u
/* Worker threads per node client: half take workflow tasks, half activity tasks. */
#define CU_THREADS_PER_NODE 4u
/* Load threads, each with its own client, and the pause of each between two runs. */
#define CU_LOADERS 2u
#define CU_PACE_MS 20u
/* Runs the load may start in all. */
#define CU_WORKFLOWS_MAX 4000u
/* Timer of every run, and its workflow task timeout (a task lost with a killed node is
 * re-dispatched after it). */
#define CU_TIMER_MS 300u
#define CU_WFT_TIMEOUT_MS 2000u
/* Each run's signal carries this much, so that the shards' state, and their snapshots, grow
 * to megabytes: a snapshot then takes long enough to send and store that a second kill can
 * land while it is on its way. */
#define CU_SIGNAL_BYTES (8u * 1024u)
/* Load before the first kill. */
#define CU_WARMUP_MS 2000u
/* How long every run may take to complete once the load stopped. */
#define CU_COMPLETE_TIMEOUT_MS 120000u

/* Small snapshot settings, so that a replica down for a second or more is sent a snapshot
 * when it returns rather than the entries it missed: the path where a lost InstallSnapshot
 * left the leader waiting install-snapshot-timeout-ms (30 s) before it sent anything else. */
static const char *const cu_flags[] = {"--election-timeout-ms", "2000", "--heartbeat-timeout-ms",
                                       "100", "--snapshot-threshold", "64",
                                       "--snapshot-trailing", "16", NULL};

/* A restarted node catching up: every shard's target is its leader's commit index when first
 * read after the node answered; caught up once the node's replica applied every target. */
typedef struct cu_watch {
    bool active;                  /* the node restarted and has not caught up yet */
    uint64_t up_ms;               /* when it first answered after its restart */
    uint64_t target[CU_SHARDS];   /* 0 until read from the shard's leader */
    uint64_t target_ms[CU_SHARDS]; /* when it was read: the shard had a ready leader */
    uint64_t reported_ms;         /* last progress line printed */
} cu_watch;

typedef struct cu cu;

typedef struct cu_loader {
    cu *t;          /* the test */
    unsigned index; /* 0..CU_LOADERS-1 */
    weft_client *c; /* every address; this thread's own */
    pthread_t thread;
    bool running; /* created and not joined yet */
} cu_loader;

struct cu {
    hc_cluster c;                        /* the three nodes */
    bool passed;                         /* teardown prints the nodes' stderr otherwise */
    uint64_t rng;                        /* xorshift state, from the seed */
    weft_client *checker;                /* every address; used by the main thread */
    weft_client *workers[CU_NODES];      /* one per node, so that polls reach each node */
    wk_pool pools[CU_NODES];             /* worker threads, one pool per node client */
    cu_loader loaders[CU_LOADERS];       /* load threads */
    atomic_bool stop;                    /* tells the load threads to finish */
    atomic_uint workflows;               /* slots taken */
    atomic_uint acked;                   /* runs whose start and signal were acknowledged */
    char wf[CU_WORKFLOWS_MAX][48];       /* workflow id per slot */
    char run_ids[CU_WORKFLOWS_MAX][128]; /* acknowledged run id per slot */
    atomic_bool done[CU_WORKFLOWS_MAX];  /* slot's start and signal acknowledged */
    cu_watch watch[CU_NODES];            /* each node's catch-up after its last restart */
    unsigned catch_ups;                  /* catch-ups seen through */
    uint64_t worst_ms;                   /* the slowest of them */
};

static uint64_t cu_rand(cu *t, uint64_t bound) {
    t->rng ^= t->rng >> 12;
    t->rng ^= t->rng << 25;
    t->rng ^= t->rng >> 27;
    return (t->rng * 0x2545f4914f6cdd1dull) % bound;
}

static int cu_setup(void **state) {
    static cu t;
    memset(&t, 0, sizeof t);
    *state = &t;
    const char *env = getenv("WEFT_TEST_SEED");
    uint64_t seed = env != NULL ? strtoull(env, NULL, 0) : CU_SEED;
    fprintf(stderr, "catch-up test: seed 0x%llx (WEFT_TEST_SEED replays it)\n",
            (unsigned long long)seed);
    t.rng = seed ^ 0x9e3779b97f4a7c15ull;
    if (t.rng == 0) t.rng = 1;
    if (hc_start(&t.c, CU_NODES, CU_SHARDS, CU_RF, cu_flags) != 0) return -1;
    if (hc_client(&t.c, "catchup-checker", &t.checker) != 0) return -1;
    for (unsigned k = 0; k < CU_LOADERS; k++) {
        t.loaders[k].t = &t;
        t.loaders[k].index = k;
        if (hc_client(&t.c, "catchup-load", &t.loaders[k].c) != 0) return -1;
    }
    for (unsigned id = 1; id <= CU_NODES; id++) {
        if (hc_node_client(&t.c, id, "catchup-worker", &t.workers[id - 1]) != 0) return -1;
    }
    return 0;
}

static void cu_stop_load(cu *t) {
    atomic_store(&t->stop, true);
    for (unsigned k = 0; k < CU_LOADERS; k++) {
        if (t->loaders[k].running) pthread_join(t->loaders[k].thread, NULL);
        t->loaders[k].running = false;
    }
}

static int cu_teardown(void **state) {
    cu *t = *state;
    cu_stop_load(t);
    for (unsigned k = 0; k < CU_NODES; k++)
        if (t->pools[k].threads_count > 0) wk_pool_stop(&t->pools[k]);
    if (!t->passed) hc_print_stderr(&t->c, WEFTD_STDERR_TAIL_LINES);
    weft_client_close(t->checker);
    for (unsigned k = 0; k < CU_LOADERS; k++)
        weft_client_close(t->loaders[k].c);
    for (unsigned k = 0; k < CU_NODES; k++)
        weft_client_close(t->workers[k]);
    hc_destroy(&t->c);
    return 0;
}

/* ---- Load: start a run, signal it, repeat ---- */

/* Starts slot i's run, re-sending the same request id until acknowledged (G4). */
static bool cu_start(cu *t, weft_client *c, unsigned i) {
    char rid[96], input[64];
    snprintf(rid, sizeof rid, "start-%s", t->wf[i]);
    wk_script_input(input, sizeof input, CU_TIMER_MS, 1);
    weft_start_req s = {
        .workflow_id = weft_str_c(t->wf[i]),
        .workflow_type = WEFT_STR_LIT("catchup"),
        .task_queue = WEFT_STR_LIT(CU_QUEUE),
        .input = {.ptr = (const uint8_t *)input, .len = (uint32_t)strlen(input)},
        .request_id = weft_str_c(rid),
        .workflow_task_timeout_ms = CU_WFT_TIMEOUT_MS,
    };
    while (!atomic_load(&t->stop)) {
        weft_response h = {0};
        weft_start_resp r;
        weft_err err;
        weft_err_clear(&err);
        int rc = weft_client_start(c, &s, &r, &h, &err);
        if (rc == 0) weft_str_copy(t->run_ids[i], sizeof t->run_ids[i], r.run_id);
        weft_response_free(&h);
        if (rc == 0) return true;
        weftd_sleep_ms(100);
    }
    return false;
}

/* Signals slot i's run once ("sig", which the script waits for), re-sending after a failure. */
static bool cu_signal(cu *t, weft_client *c, unsigned i) {
    char rid[96];
    uint8_t payload[CU_SIGNAL_BYTES];
    snprintf(rid, sizeof rid, "sig-%s", t->wf[i]);
    for (size_t k = 0; k < sizeof payload; k++) payload[k] = (uint8_t)(k * 131u + i);
    weft_signal_req s = {
        .workflow_id = weft_str_c(t->wf[i]),
        .run_id = weft_str_c(t->run_ids[i]),
        .signal_name = WEFT_STR_LIT("sig"),
        .input = {.ptr = payload, .len = (uint32_t)sizeof payload},
        .request_id = weft_str_c(rid),
    };
    while (!atomic_load(&t->stop)) {
        weft_err err;
        weft_err_clear(&err);
        if (weft_client_signal(c, &s, &err) == 0) return true;
        weftd_sleep_ms(100);
    }
    return false;
}

static void *cu_load_main(void *arg) {
    cu_loader *l = arg;
    cu *t = l->t;
    unsigned n = 0;
    while (!atomic_load(&t->stop)) {
        unsigned i = atomic_fetch_add(&t->workflows, 1);
        if (i >= CU_WORKFLOWS_MAX) {
            atomic_fetch_sub(&t->workflows, 1);
            break;
        }
        snprintf(t->wf[i], sizeof t->wf[i], "catchup-%u-%u", l->index, n++);
        if (!cu_start(t, l->c, i) || !cu_signal(t, l->c, i)) break;
        atomic_store(&t->done[i], true);
        atomic_fetch_add(&t->acked, 1);
        weftd_sleep_ms(CU_PACE_MS);
    }
    return NULL;
}

/* ---- Faults and the catch-up watch ---- */

/* Reads each missing target from the shard's ready leader, if it has one now. */
static void cu_watch_targets(cu *t, cu_watch *w) {
    for (uint32_t s = 0; s < CU_SHARDS; s++) {
        if (w->target[s] != 0) continue;
        uint64_t leader = hc_leader(&t->c, s);
        if (leader == 0) continue;
        weft_cluster_status_resp st;
        weft_response h = {0};
        weft_err err;
        if (hc_status(&t->c, (unsigned)leader, &st, &h, &err) == 0) {
            for (uint32_t k = 0; k < st.shards_count; k++)
                if (st.shards[k].shard_id == s) w->target[s] = st.shards[k].commit_index;
        }
        weft_response_free(&h);
        if (w->target[s] != 0) w->target_ms[s] = weft_mono_ms();
    }
}

/* The shards whose replica on node `id` has not applied its target yet (bit per shard), as
 * node `id` reports them; all of them when it does not answer. A shard whose target is not
 * known yet lags. */
static uint32_t cu_lagging(cu *t, unsigned id, const uint64_t *target) {
    weft_cluster_status_resp st;
    weft_response h = {0};
    weft_err err;
    uint32_t lagging = (1u << CU_SHARDS) - 1u;
    if (hc_status(&t->c, id, &st, &h, &err) == 0) {
        for (uint32_t k = 0; k < st.shards_count; k++) {
            uint32_t s = st.shards[k].shard_id;
            if (s < CU_SHARDS && target[s] != 0 && st.shards[k].applied_index >= target[s])
                lagging &= ~(1u << s);
        }
    }
    weft_response_free(&h);
    return lagging;
}

/* Prints, for each lagging shard, the replica's lag as the shard's leader reports it. */
static void cu_print_lag(cu *t, unsigned id, uint32_t lagging) {
    for (uint32_t s = 0; s < CU_SHARDS; s++) {
        if (!(lagging & (1u << s))) continue;
        uint64_t leader = hc_leader(&t->c, s);
        weft_cluster_status_resp st;
        weft_response h = {0};
        weft_err err;
        if (leader != 0 && hc_status(&t->c, (unsigned)leader, &st, &h, &err) == 0) {
            for (uint32_t k = 0; k < st.shards_count; k++) {
                const weft_shard_info *si = &st.shards[k];
                for (uint32_t r = 0; si->shard_id == s && r < si->replicas_count; r++) {
                    if (si->replicas[r].node_id != id) continue;
                    fprintf(stderr,
                            "  shard %u (leader %llu, commit %llu): node %u matches %llu, "
                            "%llu entries behind\n",
                            s, (unsigned long long)leader,
                            (unsigned long long)si->commit_index, id,
                            (unsigned long long)si->replicas[r].match_index,
                            (unsigned long long)si->replicas[r].lag_entries);
                }
            }
        } else {
            fprintf(stderr, "  shard %u: no ready leader\n", s);
        }
        weft_response_free(&h);
    }
}

/* One look at node `id`'s catch-up; fails the test past the bound. */
static void cu_watch_step(cu *t, unsigned id, cu_watch *w) {
    cu_watch_targets(t, w);
    uint32_t lagging = cu_lagging(t, id, w->target);
    uint64_t now_ms = weft_mono_ms();
    if (lagging == 0) {
        uint64_t took_ms = now_ms - w->up_ms;
        fprintf(stderr, "node %u caught up on every shard %llu ms after it answered\n", id,
                (unsigned long long)took_ms);
        if (took_ms > t->worst_ms) t->worst_ms = took_ms;
        t->catch_ups++;
        w->active = false;
        return;
    }
    if (now_ms - w->reported_ms >= 1000u) {
        w->reported_ms = now_ms;
        fprintf(stderr, "node %u lags on shards 0x%02x %llu ms after it answered\n", id, lagging,
                (unsigned long long)(now_ms - w->up_ms));
        cu_print_lag(t, id, lagging);
    }
    for (uint32_t s = 0; s < CU_SHARDS; s++) {
        if (!(lagging & (1u << s))) continue;
        if (w->target[s] != 0 && now_ms - w->target_ms[s] > CU_CATCH_UP_MS_MAX) {
            cu_print_lag(t, id, lagging);
            fail_msg("node %u has not caught up on shard %u within %u ms of its restart and "
                     "the shard's leader being ready",
                     id, s, CU_CATCH_UP_MS_MAX);
        }
        if (w->target[s] == 0 && now_ms - w->up_ms > HC_READY_TIMEOUT_MS)
            fail_msg("shard %u has had no ready leader for %u ms", s, HC_READY_TIMEOUT_MS);
    }
}

/* Watches every restarted node until `until_ms`. */
static void cu_watch_until(cu *t, uint64_t until_ms) {
    while (weft_mono_ms() < until_ms) {
        for (unsigned id = 1; id <= CU_NODES; id++)
            if (t->watch[id - 1].active) cu_watch_step(t, id, &t->watch[id - 1]);
        weftd_sleep_ms(CU_POLL_MS);
    }
}

/* kill -9 node `victim`, keeps it down `down_ms` while watching the others, starts it again and
 * starts watching its catch-up from its first answer. */
static void cu_kill_restart(cu *t, unsigned victim, uint32_t down_ms) {
    cu_watch *w = &t->watch[victim - 1];
    uint64_t kill_ms = weft_mono_ms();
    w->active = false;
    hc_kill9(&t->c, victim);
    cu_watch_until(t, kill_ms + down_ms);
    if (weftd_spawn(&t->c.node[victim - 1]) != 0) fail_msg("node %u did not start again", victim);
    if (hc_wait_answers(&t->c, victim, HC_READY_TIMEOUT_MS) != 0)
        fail_msg("node %u does not answer after its restart", victim);
    memset(w, 0, sizeof *w);
    w->active = true;
    w->up_ms = w->reported_ms = weft_mono_ms();
}

/* Kills a drawn node (maybe one still catching up: it had less than the bound, so that is no
 * failure) and restarts it after a drawn downtime. Every other time the node is killed again
 * right after it answers, while the leaders are sending it what it missed (with the small
 * snapshot settings, a snapshot), and restarted once more. Then the cluster is watched until
 * the next kill. */
static void cu_fault(cu *t, unsigned fault) {
    unsigned victim = 1u + (unsigned)cu_rand(t, CU_NODES);
    uint32_t down_ms = CU_DOWN_MS_MIN + (uint32_t)cu_rand(t, CU_DOWN_MS_SPREAD + 1u);
    uint32_t every_ms = CU_KILL_EVERY_MS_MIN + (uint32_t)cu_rand(t, CU_KILL_EVERY_MS_SPREAD + 1u);
    bool again = cu_rand(t, 2) == 0;
    uint32_t again_after_ms = (uint32_t)cu_rand(t, CU_AGAIN_AFTER_MS_MAX + 1u);
    uint32_t again_down_ms = CU_DOWN_MS_MIN + (uint32_t)cu_rand(t, CU_DOWN_MS_SPREAD + 1u);
    unsigned led = 0;
    for (uint32_t s = 0; s < CU_SHARDS; s++)
        led += hc_leader(&t->c, s) == victim;
    uint64_t fault_ms = weft_mono_ms();
    fprintf(stderr, "fault %u: kill -9 node %u (leads %u shards%s), down %u ms\n", fault, victim,
            led, t->watch[victim - 1].active ? ", still catching up" : "", down_ms);
    cu_kill_restart(t, victim, down_ms);
    if (again) {
        cu_watch_until(t, weft_mono_ms() + again_after_ms);
        fprintf(stderr, "fault %u: kill -9 node %u again %u ms after it answered, down %u ms\n",
                fault, victim, again_after_ms, again_down_ms);
        cu_kill_restart(t, victim, again_down_ms);
    }
    cu_watch_until(t, fault_ms + every_ms);
}

/* Waits for slot i's run to complete and checks its history. */
static void cu_check_run(cu *t, unsigned i, uint64_t deadline) {
    assert_int_equal(wk_await_completed(t->checker, t->wf[i], t->run_ids[i], deadline), 0);
    wk_history h;
    weft_err err;
    int rc = wk_history_get(t->checker, t->wf[i], t->run_ids[i], &h, &err);
    if (rc != 0) {
        wk_history_free(&h);
        fail_msg("history of %s: %s %s", t->wf[i], weft_error_name(rc), err.message);
    }
    uint64_t due = 0, fired = 0;
    bool ok = wk_script_history_ok(&h, &due, &fired);
    if (!ok) {
        fprintf(stderr, "history of %s breaks an invariant:\n", t->wf[i]);
        wk_history_print(h.events, h.count);
    }
    wk_history_free(&h);
    assert_true(ok);
}

static void test_cluster_catchup(void **state) {
    cu *t = *state;
    for (unsigned k = 0; k < CU_NODES; k++) {
        assert_int_equal(
            wk_pool_start_on(&t->pools[k], t->workers[k], CU_QUEUE, CU_THREADS_PER_NODE, k + 1), 0);
    }
    for (unsigned k = 0; k < CU_LOADERS; k++) {
        assert_int_equal(pthread_create(&t->loaders[k].thread, NULL, cu_load_main, &t->loaders[k]),
                         0);
        t->loaders[k].running = true;
    }
    weftd_sleep_ms(CU_WARMUP_MS);
    if (atomic_load(&t->acked) == 0) fail_msg("no load before the first kill");
    uint64_t end_ms = weft_mono_ms() + CU_FAULTS_MS;
    for (unsigned fault = 1; weft_mono_ms() < end_ms; fault++) cu_fault(t, fault);
    /* The last restarted nodes still get their bound. */
    for (unsigned id = 1; id <= CU_NODES; id++) {
        cu_watch *w = &t->watch[id - 1];
        while (w->active) {
            cu_watch_step(t, id, w);
            if (w->active) weftd_sleep_ms(CU_POLL_MS);
        }
    }
    cu_stop_load(t);
    unsigned n = atomic_load(&t->workflows), checked = 0;
    fprintf(stderr, "%u catch-ups, the slowest %llu ms (bound %u ms); %u runs acknowledged\n",
            t->catch_ups, (unsigned long long)t->worst_ms, CU_CATCH_UP_MS_MAX,
            atomic_load(&t->acked));
    if (hc_wait_ready(&t->c, HC_READY_TIMEOUT_MS) != 0) fail_msg("the cluster is not ready");
    uint64_t deadline = weft_mono_ms() + CU_COMPLETE_TIMEOUT_MS;
    for (unsigned i = 0; i < n; i++) {
        if (!atomic_load(&t->done[i])) continue;
        cu_check_run(t, i, deadline);
        checked++;
    }
    fprintf(stderr, "all %u acknowledged runs completed\n", checked);
    wk_pools_print(t->pools, CU_NODES);
    t->passed = true;
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_cluster_catchup, cu_setup, cu_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
