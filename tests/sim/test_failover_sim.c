/* test_failover_sim.c: how long a group is without a ready leader after its leader dies
 * (DESIGN G6: timers due during a failover fire within the election timeout plus one second).
 * Each run is one seed: a group with weftd's raft timing (raft/host.h: libraft's base is half
 * the election timeout, heartbeat, pre-vote on) and loopback-like latencies, whose election
 * timers run as in separate processes (sim_opts.real_timers: a fresh draw at every timer reset,
 * ticks at unrelated phases). A client keeps one entry in flight at the ready leader, as the
 * host does under load, so the followers' logs often differ when the leader is killed at a
 * random instant. The run then measures the virtual time from the kill until a surviving
 * server is a ready leader (its own-term barrier applied, as the host requires before it
 * serves or fires a timer) and holds it to the election timeout plus FS_READY_SLACK_MS.
 * Every run that breaks it is listed with its seed; the test fails if any does.
 * Replay one with WEFT_SIM_SEED=<seed> (WEFT_SIM_TRACE=1 prints the kill). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "helper_sim.h"

/* weftd's defaults (raft/host.h): the flag is the longest a follower waits for its leader. */
#define FS_ELECTION_TIMEOUT_MS WEFT_RAFT_ELECTION_TIMEOUT_MS_DEFAULT
#define FS_HEARTBEAT_TIMEOUT_MS WEFT_RAFT_HEARTBEAT_TIMEOUT_MS_DEFAULT
/* Time from a kill to a ready leader beyond the flag, at most: a tick to notice the timeout
 * (one heartbeat), the pre-vote and vote round trips, the barrier's append and commit, with
 * room. G6 grants one second beyond the flag; the rest of it is for the new leader's first
 * FIRE_TIMERS to commit and for real machines being slower than this one. */
#define FS_READY_SLACK_MS 250u
#define FS_READY_BOUND_MS (FS_ELECTION_TIMEOUT_MS + FS_READY_SLACK_MS)
/* Runs (seeds) per group size; WEFT_SIM_RUNS overrides, WEFT_SIM_SEED runs one. */
#define FS_RUNS_THREE 200u
#define FS_RUNS_FIVE 60u
/* The leader is killed at a random instant this long after the first ready leader, plus up
 * to FS_KILL_SPREAD_MS, so the kill falls anywhere between two heartbeats and two entries. */
#define FS_KILL_AFTER_MS 1500u
#define FS_KILL_SPREAD_MS 1000u
/* A run without a ready leader after this long has failed outright (liveness). */
#define FS_GIVE_UP_MS 30000u
/* Loopback-like latencies: a message takes 1 to FS_NET_MS ms, a disk write 1 to FS_DISK_MS. */
#define FS_NET_MS 3u
#define FS_DISK_MS 8u
/* Runs listed when over the bound, at most. */
#define FS_LATE_LISTED_MAX 20u

/* The state machine needs nothing but to exist: the test watches raft, not the state. */
static int fs_apply(void *ctx, uint64_t index, uint64_t leader_time_ms, const weft_bytes *cmds,
                    uint32_t n, weft_reply *replies) {
    (void)ctx, (void)index, (void)leader_time_ms, (void)cmds, (void)n, (void)replies;
    return 0;
}

static int fs_snapshot(void *ctx, void **buf, size_t *len) {
    (void)ctx;
    *buf = raft_malloc(8);
    if (*buf == NULL) return -WEFT_E_RESOURCE_EXHAUSTED;
    memset(*buf, 0, 8);
    *len = 8;
    return 0;
}

static int fs_restore(void *ctx, const void *buf, size_t len) {
    (void)ctx, (void)buf, (void)len;
    return 0;
}

static const weft_group_fsm fs_fsm = {
    .apply = fs_apply, .snapshot = fs_snapshot, .restore = fs_restore};

static void fs_propose_cb(sim *s, void *data, int status, weft_applied *ap) {
    (void)s, (void)data, (void)status, (void)ap;
}

/* Keeps one entry in flight at the ready leader, as the host does under load. */
static void fs_load(sim *s) {
    unsigned leader = sim_ready_leader(s);
    if (leader == SIM_NONE || s->servers[leader].entries_inflight > 0) return;
    static const uint8_t cmd[4] = {1, 2, 3, 4};
    weft_bytes b = {cmd, sizeof cmd};
    (void)sim_propose(s, leader, &b, 1, fs_propose_cb, NULL);
}

/* Steps the group under load until `until_ms` of virtual time. */
static void fs_run_until(sim *s, uint64_t until_ms) {
    while (sim_time_ms(s) < until_ms) {
        fs_load(s);
        raft_fixture_step(&s->f);
    }
}

/* WEFT_SIM_TRACE: each server's state, term, vote and last index whenever one changes. */
static void fs_trace_states(sim *s, uint64_t kill_ms, unsigned *last_state, uint64_t *last_term) {
    if (!s->trace) return;
    for (unsigned i = 0; i < s->opts.servers; i++) {
        struct raft *r = sim_raft(s, i);
        if (s->servers[i].killed) continue;
        unsigned state = (unsigned)raft_state(r);
        if (state == last_state[i] && r->current_term == last_term[i]) continue;
        last_state[i] = state;
        last_term[i] = r->current_term;
        fprintf(stderr, "[+%5llu ms] server %u: state %u term %llu voted %llu last %llu/%llu%s\n",
                (unsigned long long)(sim_time_ms(s) - kill_ms), i, state,
                (unsigned long long)r->current_term, (unsigned long long)r->voted_for,
                (unsigned long long)raft_last_index(r),
                (unsigned long long)sim_log_term(s, i, raft_last_index(r)),
                state == RAFT_CANDIDATE && r->candidate_state.in_pre_vote ? " (pre-vote)" : "");
    }
}

/* One run: returns the kill-to-ready time in ms. */
static uint64_t fs_run_one(uint64_t seed, unsigned servers) {
    sim_opts o;
    sim_opts_default(&o);
    o.servers = servers;
    o.election_timeout_ms = FS_ELECTION_TIMEOUT_MS / WEFT_RAFT_ELECTION_BASE_DIVISOR;
    o.heartbeat_timeout_ms = FS_HEARTBEAT_TIMEOUT_MS;
    o.snapshot_threshold = WEFT_RAFT_SNAPSHOT_THRESHOLD_DEFAULT;
    o.snapshot_trailing = WEFT_RAFT_SNAPSHOT_TRAILING_DEFAULT;
    o.pre_vote = true;
    o.latency_max_ms = FS_NET_MS;
    o.disk_latency_max_ms = FS_DISK_MS;
    o.real_timers = true;
    const weft_group_fsm *fsms[SIM_SERVERS_MAX];
    for (unsigned i = 0; i < servers; i++) fsms[i] = &fs_fsm;
    sim *s = calloc(1, sizeof *s);
    sim_init(s, &o, fsms, seed);
    SIM_CHECK(s, sim_wait_ready_leader(s, FS_GIVE_UP_MS) != SIM_NONE);
    fs_run_until(s, sim_time_ms(s) + FS_KILL_AFTER_MS + sim_rand(s, FS_KILL_SPREAD_MS));
    unsigned leader = sim_ready_leader(s);
    while (leader == SIM_NONE) {
        SIM_CHECK(s, sim_time_ms(s) < FS_GIVE_UP_MS * 2u);
        fs_run_until(s, sim_time_ms(s) + 1u);
        leader = sim_ready_leader(s);
    }
    uint64_t kill_ms = sim_time_ms(s);
    sim_kill(s, leader);
    unsigned last_state[SIM_SERVERS_MAX] = {0};
    uint64_t last_term[SIM_SERVERS_MAX] = {0};
    while (sim_ready_leader(s) == SIM_NONE) {
        SIM_CHECK(s, sim_time_ms(s) - kill_ms < FS_GIVE_UP_MS);
        fs_trace_states(s, kill_ms, last_state, last_term);
        fs_load(s);
        raft_fixture_step(&s->f);
    }
    fs_trace_states(s, kill_ms, last_state, last_term);
    uint64_t took_ms = sim_time_ms(s) - kill_ms;
    sim_close(s);
    free(s);
    return took_ms;
}

static int fs_u64_cmp(const void *a, const void *b) {
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return (x > y) - (x < y);
}

/* WEFT_SIM_SEED: that seed alone; else `runs` seeds derived from the run number. */
static unsigned fs_runs(unsigned runs) {
    const char *env = getenv("WEFT_SIM_RUNS");
    if (getenv("WEFT_SIM_SEED") != NULL) return 1u;
    return env != NULL ? (unsigned)strtoul(env, NULL, 10) : runs;
}

static uint64_t fs_seed(unsigned servers, unsigned k) {
    const char *env = getenv("WEFT_SIM_SEED");
    if (env != NULL) return strtoull(env, NULL, 0);
    /* splitmix64: distinct, well-spread seeds. */
    uint64_t z = (uint64_t)k * 0x9e3779b97f4a7c15ull + 0xfa11u * servers;
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static void fs_measure(unsigned servers, unsigned runs_default) {
    unsigned runs = fs_runs(runs_default);
    uint64_t *took = calloc(runs, sizeof *took);
    unsigned late = 0;
    for (unsigned k = 0; k < runs; k++) {
        uint64_t seed = fs_seed(servers, k);
        took[k] = fs_run_one(seed, servers);
        if (took[k] > FS_READY_BOUND_MS && late++ < FS_LATE_LISTED_MAX) {
            fprintf(stderr, "LATE: seed 0x%016llx: ready leader %llu ms after the kill\n",
                    (unsigned long long)seed, (unsigned long long)took[k]);
        }
    }
    qsort(took, runs, sizeof *took, fs_u64_cmp);
    fprintf(stderr,
            "failover sim, %u servers, %u runs: kill to ready leader p50 %llu ms, p99 %llu ms, "
            "max %llu ms; %u over the bound of %u ms (election timeout %u + %u)\n",
            servers, runs, (unsigned long long)took[runs / 2],
            (unsigned long long)took[(runs * 99u) / 100u], (unsigned long long)took[runs - 1],
            late, FS_READY_BOUND_MS, FS_ELECTION_TIMEOUT_MS, FS_READY_SLACK_MS);
    free(took);
    assert_int_equal(late, 0);
}

static void test_failover_three_servers(void **state) {
    (void)state;
    fs_measure(3, FS_RUNS_THREE);
}

static void test_failover_five_servers(void **state) {
    (void)state;
    fs_measure(5, FS_RUNS_FIVE);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_failover_three_servers),
        cmocka_unit_test(test_failover_five_servers),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
