/* helper_sim.h: a seeded, deterministic simulation of one raft group over raft_fixture
 * (DESIGN section 13). N servers, each driving a weft_group_fsm through the same adapter the
 * host uses; randomized per-server network and disk latencies, election timeouts, kills and
 * revivals, partitions, saturated links and deposed leaders, all drawn from one seed so any
 * failure replays with WEFT_SIM_SEED=<seed>. Like the host, a leader serves only after a
 * barrier of its own term applied (raft#220 mitigation). */
#ifndef WEFT_TESTS_HELPER_SIM_H
#define WEFT_TESTS_HELPER_SIM_H

#include <raft.h>
#include <raft/fixture.h>
#include <stdbool.h>
#include <stdint.h>

#include "raft/guard.h"
#include "raft/host.h"

#define SIM_SERVERS_MAX 5u
#define SIM_NONE UINT32_MAX
/* Proposals awaiting raft's answer, at most (like the host's in-flight bound, smaller). */
#define SIM_INFLIGHT_MAX 256u

typedef struct sim_opts {
    unsigned servers;               /* 3 or 5 */
    unsigned election_timeout_ms;   /* base; randomized per server over [1x, 2x) */
    unsigned heartbeat_timeout_ms;
    unsigned snapshot_threshold;
    unsigned snapshot_trailing;
    bool pre_vote;
    unsigned latency_max_ms;        /* network latency is drawn from [1, latency_max_ms] */
    unsigned disk_latency_max_ms;   /* disk latency is drawn from [1, disk_latency_max_ms] */
    bool unthrottled;               /* allow more than one entry in flight per leader (the host
                                       never does: libraft 0.15 then stalls commits) */
    bool unguarded;                 /* run without raft/guard.h (the host always has it) */
    bool count_violations;          /* count commit-safety violations instead of failing */
    bool real_timers;               /* time raft as separate processes do: every election
                                       timer reset draws afresh from the seed, as raft_uv's
                                       io->random does, instead of one fixed value per server
                                       redrawn on term changes; each server ticks at its own
                                       phase. election_timeout_ms is then libraft's base. */
} sim_opts;

void sim_opts_default(sim_opts *o);

typedef struct sim_server {
    weft_fsm_adapter adapter;       /* raft_fsm over the test's weft_group_fsm */
    bool killed;                    /* raft_fixture_kill'ed */
    uint64_t ready_term;            /* term whose own barrier applied (serving), 0 if none */
    bool barrier_pending;           /* `barrier` awaits its callback */
    struct raft_barrier barrier;    /* the new leader's barrier */
    unsigned entries_inflight;      /* proposals appended here, not yet answered */
    raft_term seen_term;            /* term when its election timeout was last drawn */
    weft_io_guard guard;            /* between raft and the fixture's io (unless unguarded) */
} sim_server;

typedef struct sim {
    struct raft_fixture f;          /* the simulated cluster */
    sim_opts opts;
    uint64_t seed;                  /* printed on failure; WEFT_SIM_SEED replays it */
    uint64_t rng;                   /* xorshift state */
    sim_server servers[SIM_SERVERS_MAX];
    bool cut[SIM_SERVERS_MAX][SIM_SERVERS_MAX]; /* links we disconnected (i -> j) */
    raft_index persisted_first[SIM_SERVERS_MAX]; /* index of the fixture's first persisted entry */
    unsigned inflight;              /* proposals not yet answered */
    uint64_t proposed;              /* raft_apply calls that succeeded */
    uint64_t acked;                 /* answered applied */
    uint64_t unknown;               /* answered with an outcome-unknown error */
    uint64_t chaos_count;           /* fault actions taken */
    uint64_t violations;            /* commits a majority did not hold (count_violations) */
    bool trace;                     /* WEFT_SIM_TRACE set: print every fault */
} sim;

/* The answer to a proposal: status 0 with the entry's replies (freed after the callback), or
 * a raft error (outcome unknown when the entry was appended). */
typedef void (*sim_propose_cb)(sim *s, void *data, int status, weft_applied *ap);

/* Seeds: WEFT_SIM_SEED (decimal or 0x-hex) gives one; otherwise a fixed list. */
unsigned sim_seed_count(void);
uint64_t sim_seed_at(unsigned i);

/* Builds and starts the cluster; fsms[i] drives server i and must outlive the sim. */
void sim_init(sim *s, const sim_opts *o, const weft_group_fsm *const *fsms, uint64_t seed);
/* Closes raft (answering every pending proposal) and frees the adapters. */
void sim_close(sim *s);

uint64_t sim_rand(sim *s, uint64_t bound);
uint64_t sim_time_ms(sim *s);
struct raft *sim_raft(sim *s, unsigned i);
/* Steps the cluster for `ms` of virtual time. */
void sim_run_ms(sim *s, unsigned ms);
/* A live leader whose own-term barrier applied, or SIM_NONE. */
unsigned sim_ready_leader(sim *s);
/* Runs until sim_ready_leader is not SIM_NONE or max_ms pass. */
unsigned sim_wait_ready_leader(sim *s, unsigned max_ms);
/* Runs until every live server applied `index`, or max_ms pass. */
bool sim_wait_applied(sim *s, uint64_t index, unsigned max_ms);

/* Proposes one entry of `n` commands at ready leader `i`, stamped with the fixture's time.
 * Like the host, at most one entry is in flight per leader unless opts.unthrottled (RAFT_BUSY).
 * Returns 0 (cb runs exactly once later) or a raft error (cb never runs). */
int sim_propose(sim *s, unsigned i, const weft_bytes *cmds, uint32_t n, sim_propose_cb cb,
                void *data);

/* One random fault: latency changes, election timeout shuffles, kill/revive, cut/heal a link,
 * saturate a link, depose the leader. Keeps a majority alive. */
void sim_chaos(sim *s);
/* Undoes every fault: revives, reconnects, desaturates, calms latencies. */
void sim_heal(sim *s);
void sim_kill(sim *s, unsigned i);
void sim_revive(sim *s, unsigned i);
/* Cuts / restores both directions between i and j. */
void sim_disconnect(sim *s, unsigned i, unsigned j);
void sim_reconnect(sim *s, unsigned i, unsigned j);
/* Isolates server i from everyone / brings it back. */
void sim_isolate(sim *s, unsigned i);
void sim_rejoin(sim *s, unsigned i);

/* Term of entry `index` in server i's in-memory log (its snapshot's term at the snapshot
 * index), 0 when the log does not hold it. */
raft_term sim_log_term(sim *s, unsigned i, raft_index index);

/* Prints the seed and fails the test (cmocka) when `cond` is false. */
#define SIM_CHECK(s, cond)                                                                    \
    do {                                                                                      \
        if (!(cond)) sim_fail((s), #cond, __FILE__, __LINE__);                                \
    } while (0)
_Noreturn void sim_fail(const sim *s, const char *what, const char *file, int line);

#endif
