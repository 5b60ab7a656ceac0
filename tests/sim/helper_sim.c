/* helper_sim.c: the seeded raft_fixture harness (helper_sim.h). Everything random comes from
 * one xorshift generator seeded per run; raft_fixture itself is deterministic, so a seed
 * replays the same run event for event. */
#include "helper_sim.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

/* Seeds run when WEFT_SIM_SEED is not set. Add a seed here when it once found a bug. */
static const uint64_t sim_seeds[] = {
    0x1ull, 0x2545f4914f6cdd1dull, 0x9e3779b97f4a7c15ull, 0xdeadbeefcafef00dull,
    0x0123456789abcdefull, 0x5eed5eed5eed5eedull,
};

static bool sim_env_seed(uint64_t *out) {
    const char *env = getenv("WEFT_SIM_SEED");
    if (env == NULL || env[0] == '\0') return false;
    *out = strtoull(env, NULL, 0);
    return true;
}

/* WEFT_SIM_RUNS=N (soak runs): N seeds derived from the fixed list's first. */
static unsigned sim_env_runs(void) {
    const char *env = getenv("WEFT_SIM_RUNS");
    return env == NULL ? 0u : (unsigned)strtoul(env, NULL, 10);
}

unsigned sim_seed_count(void) {
    uint64_t seed;
    if (sim_env_seed(&seed)) return 1u;
    unsigned runs = sim_env_runs();
    return runs > 0 ? runs : (unsigned)WEFT_ARRAY_LEN(sim_seeds);
}

uint64_t sim_seed_at(unsigned i) {
    uint64_t seed;
    if (sim_env_seed(&seed)) return seed;
    if (sim_env_runs() > 0) {
        /* splitmix64 of the run number: distinct, well-spread seeds. */
        uint64_t z = (uint64_t)i * 0x9e3779b97f4a7c15ull + 0x5eed;
        z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
        z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
        return z ^ (z >> 31);
    }
    WEFT_ASSERT(i < WEFT_ARRAY_LEN(sim_seeds));
    return sim_seeds[i];
}

/* One line per server: what a failing run looked like at the end. */
static void sim_dump(const sim *cs) {
    sim *s = (sim *)cs;
    for (unsigned i = 0; i < s->opts.servers; i++) {
        struct raft *r = sim_raft(s, i);
        fprintf(stderr,
                "  server %u: %s state %d term %llu voted %llu last %llu stored %llu commit %llu "
                "applied %llu snapshot %llu ready_term %llu in-flight %u cut",
                i, s->servers[i].killed ? "killed" : "alive", raft_state(r),
                (unsigned long long)r->current_term, (unsigned long long)r->voted_for,
                (unsigned long long)raft_last_index(r), (unsigned long long)r->last_stored,
                (unsigned long long)r->commit_index, (unsigned long long)raft_last_applied(r),
                (unsigned long long)r->log.snapshot.last_index,
                (unsigned long long)s->servers[i].ready_term, s->servers[i].entries_inflight);
        for (unsigned j = 0; j < s->opts.servers; j++) {
            if (s->cut[i][j] || raft_fixture_saturated(&s->f, i, j)) fprintf(stderr, " ->%u", j);
        }
        fprintf(stderr, " adapter-failed %d errmsg '%s'\n", s->servers[i].adapter.failed,
                raft_errmsg(r));
    }
}

_Noreturn void sim_fail(const sim *s, const char *what, const char *file, int line) {
    if (s != NULL) sim_dump(s);
    fprintf(stderr,
            "SIMULATION FAILED: %s (%s:%d)\n  seed 0x%016llx at virtual time %llu ms\n"
            "  replay: WEFT_SIM_SEED=0x%016llx WEFT_SIM_TRACE=1 <this test>\n",
            what, file, line, (unsigned long long)s->seed,
            (unsigned long long)raft_fixture_time((struct raft_fixture *)&s->f),
            (unsigned long long)s->seed);
    fflush(stderr);
    fail_msg("simulation invariant failed: %s", what);
    abort(); /* not reached: fail_msg longjmps */
}

void sim_opts_default(sim_opts *o) {
    memset(o, 0, sizeof *o);
    o->servers = 3;
    o->election_timeout_ms = 1000;
    o->heartbeat_timeout_ms = 100;
    o->snapshot_threshold = 32;
    o->snapshot_trailing = 8;
    o->pre_vote = true;
    o->latency_max_ms = 60;
    o->disk_latency_max_ms = 30;
}

uint64_t sim_rand(sim *s, uint64_t bound) {
    /* xorshift64*: small, fast, and the same on every platform. */
    s->rng ^= s->rng >> 12;
    s->rng ^= s->rng << 25;
    s->rng ^= s->rng >> 27;
    uint64_t v = s->rng * 0x2545f4914f6cdd1dull;
    return bound == 0 ? v : v % bound;
}

uint64_t sim_time_ms(sim *s) { return raft_fixture_time(&s->f); }

struct raft *sim_raft(sim *s, unsigned i) { return raft_fixture_get(&s->f, i); }

static void sim_trace(sim *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void sim_trace(sim *s, const char *fmt, ...) {
    if (!s->trace) return;
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "[sim %8llu ms] ", (unsigned long long)sim_time_ms(s));
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
}

/* ---- The new leader's barrier (as the host does it) ---- */

static void sim_barrier_cb(struct raft_barrier *req, int status) {
    sim_server *srv = req->data;
    srv->barrier_pending = false;
    if (status != 0) return;
    struct raft *r = srv->adapter.raft;
    if (raft_state(r) == RAFT_LEADER) srv->ready_term = r->current_term;
}

static void sim_poll_leaders(sim *s) {
    for (unsigned i = 0; i < s->opts.servers; i++) {
        sim_server *srv = &s->servers[i];
        struct raft *r = sim_raft(s, i);
        if (raft_state(r) != RAFT_LEADER) {
            srv->ready_term = 0;
            continue;
        }
        if (srv->ready_term == r->current_term || srv->barrier_pending) continue;
        srv->ready_term = 0;
        srv->barrier.data = srv;
        if (raft_barrier(r, &srv->barrier, sim_barrier_cb) == 0) srv->barrier_pending = true;
    }
}

static void sim_randomize_timeouts(sim *s, unsigned i);

/* raft_fixture's io->random returns one fixed value per server, so two servers whose values
 * are close split every vote forever. Real raft draws a new timeout per election (thesis 3.4):
 * so do we, whenever a server's term moves. */
static void sim_redraw_timeouts(sim *s) {
    for (unsigned i = 0; i < s->opts.servers; i++) {
        raft_term term = sim_raft(s, i)->current_term;
        if (term == s->servers[i].seen_term) continue;
        s->servers[i].seen_term = term;
        sim_randomize_timeouts(s, i);
    }
}

raft_term sim_log_term(sim *s, unsigned i, raft_index index) {
    const struct raft_log *l = &sim_raft(s, i)->log;
    if (index == 0) return 0;
    if (index == l->snapshot.last_index) return l->snapshot.last_term;
    size_t n = l->back >= l->front ? l->back - l->front : l->size - l->front + l->back;
    if (index <= l->offset || index > l->offset + n) return 0;
    return l->entries[(l->front + (size_t)(index - l->offset - 1)) % l->size].term;
}

/* Leader completeness at every step: the entry at a leader's commit index is held, with the
 * same term, by a majority (a follower whose snapshot already covers it counts). libraft's own
 * checks are compiled out of Debian's build, so this is ours (raft/guard.h tells the story). */
static void sim_check_commits(sim *s) {
    unsigned n = s->opts.servers;
    for (unsigned i = 0; i < n; i++) {
        struct raft *r = sim_raft(s, i);
        if (raft_state(r) != RAFT_LEADER || r->commit_index == 0) continue;
        raft_index ci = r->commit_index;
        raft_term t = sim_log_term(s, i, ci);
        if (t == 0) continue; /* compacted on the leader itself */
        unsigned holders = 0;
        for (unsigned j = 0; j < n; j++) {
            const struct raft_log *l = &sim_raft(s, j)->log;
            raft_term tj = sim_log_term(s, j, ci);
            if (tj == t || (tj == 0 && l->snapshot.last_index > ci)) holders++;
        }
        if (holders > n / 2) continue;
        if (!s->opts.count_violations) {
            fprintf(stderr, "  server %u committed index %llu (term %llu) held by %u of %u\n", i,
                    (unsigned long long)ci, (unsigned long long)t, holders, n);
            SIM_CHECK(s, holders > n / 2);
        }
        s->violations++;
    }
}

static void sim_hook(struct raft_fixture *f, struct raft_fixture_event *event) {
    (void)event;
    sim *s = (sim *)((char *)f - offsetof(sim, f));
    sim_check_commits(s);
    if (!s->opts.real_timers) sim_redraw_timeouts(s);
    sim_poll_leaders(s);
}

/* ---- A fix for raft_fixture's truncate ----
 *
 * raft_fixture 0.15.0 (and upstream still) implements io->truncate(index) by keeping the first
 * index-1 persisted entries, assuming the array starts at index 1 and already holds every entry
 * below `index`. Neither holds after a follower installed a snapshot (the fixture empties the
 * array with truncate(1)) or when raft truncates entries whose append is still in flight: it
 * then memcpy's past the array, a heap overflow that release builds never notice. We replace
 * the method with one that knows where the array starts. It reaches the fixture's private io
 * struct through its leading fields, whose layout init checks against values it knows. */

typedef struct fixture_io_prefix {
    struct raft_io *io;              /* back pointer */
    unsigned index;                  /* server index */
    raft_time *time;                 /* &fixture.time */
    raft_time next_tick;
    raft_term term;
    raft_id voted_for;
    struct raft_snapshot *snapshot;  /* latest persisted snapshot */
    struct raft_entry *entries;      /* persisted entries */
    size_t n;                        /* how many */
} fixture_io_prefix;

/* Sims alive now; the truncate fix finds its server through them (the fixture io's data
 * belongs to the guard, or to raft). */
#define SIM_ACTIVE_MAX 4u
static sim *sim_active[SIM_ACTIVE_MAX];

static void sim_register(sim *s, bool on) {
    for (unsigned k = 0; k < SIM_ACTIVE_MAX; k++) {
        if (on && sim_active[k] == NULL) {
            sim_active[k] = s;
            return;
        }
        if (!on && sim_active[k] == s) {
            sim_active[k] = NULL;
            return;
        }
    }
    WEFT_ASSERT(!on);
}

static sim *sim_of_io(struct raft_io *io, unsigned *i) {
    for (unsigned k = 0; k < SIM_ACTIVE_MAX; k++) {
        sim *s = sim_active[k];
        for (unsigned j = 0; s != NULL && j < s->f.n; j++) {
            if (&s->f.servers[j].io == io) {
                *i = j;
                return s;
            }
        }
    }
    WEFT_ASSERT(false);
    return NULL;
}

static int sim_io_truncate(struct raft_io *io, raft_index index) {
    unsigned i;
    sim *s = sim_of_io(io, &i);
    fixture_io_prefix *p = io->impl;
    size_t keep;
    if (index == 1) {
        /* Only the fixture asks for this: a snapshot install replaced the whole log. */
        WEFT_ASSERT(p->snapshot != NULL);
        s->persisted_first[i] = p->snapshot->index + 1;
        keep = 0;
    } else {
        raft_index first = s->persisted_first[i];
        keep = index > first ? (size_t)(index - first) : 0;
        if (keep > p->n) keep = p->n;
    }
    for (size_t k = keep; k < p->n; k++) raft_free(p->entries[k].buf.base);
    p->n = keep;
    if (keep == 0) {
        raft_free(p->entries);
        p->entries = NULL;
    }
    return 0;
}

/* raft_uv's io->random: a fresh value in [min, max] at every call, so each election timer
 * reset (libraft's electionResetTimer) draws its own wait; here from the seed. */
static int sim_io_random(struct raft_io *io, int min, int max) {
    unsigned i;
    sim *s = sim_of_io(io, &i);
    WEFT_ASSERT(min <= max);
    return min + (int)sim_rand(s, (uint64_t)(max - min) + 1u);
}

static void sim_fix_fixture_io(sim *s, unsigned i) {
    struct raft_io *io = &s->f.servers[i].io;
    fixture_io_prefix *p = io->impl;
    WEFT_ASSERT(p->io == io && p->index == i && p->time == &s->f.time);
    s->persisted_first[i] = 1;
    io->truncate = sim_io_truncate;
    if (s->opts.real_timers) io->random = sim_io_random;
}

/* Separate processes tick at unrelated phases; the fixture ticks every server at the same
 * instants, which makes simultaneous elections far likelier than they are. */
static void sim_spread_ticks(sim *s) {
    for (unsigned i = 0; i < s->opts.servers; i++) {
        fixture_io_prefix *p = s->f.servers[i].io.impl;
        p->next_tick = sim_time_ms(s) + 1u + sim_rand(s, s->opts.heartbeat_timeout_ms);
    }
}

/* ---- Setup ---- */

static void sim_randomize_timeouts(sim *s, unsigned i) {
    /* With real timers raft draws every wait itself (sim_io_random). */
    if (s->opts.real_timers) return;
    unsigned base = s->opts.election_timeout_ms;
    raft_fixture_set_randomized_election_timeout(&s->f, i, base + (unsigned)sim_rand(s, base));
}

static void sim_randomize_latencies(sim *s, unsigned i) {
    raft_fixture_set_network_latency(&s->f, i, 1 + (unsigned)sim_rand(s, s->opts.latency_max_ms));
    raft_fixture_set_disk_latency(&s->f, i, 1 + (unsigned)sim_rand(s, s->opts.disk_latency_max_ms));
}

void sim_init(sim *s, const sim_opts *o, const weft_group_fsm *const *fsms, uint64_t seed) {
    WEFT_ASSERT(o->servers >= 1 && o->servers <= SIM_SERVERS_MAX);
    memset(s, 0, sizeof *s);
    s->opts = *o;
    s->seed = seed;
    s->rng = seed ^ 0x9e3779b97f4a7c15ull;
    if (s->rng == 0) s->rng = 1;
    s->trace = getenv("WEFT_SIM_TRACE") != NULL;
    fprintf(stderr, "sim: seed 0x%016llx, %u servers (replay with WEFT_SIM_SEED=0x%016llx)\n",
            (unsigned long long)seed, o->servers, (unsigned long long)seed);
    assert_int_equal(raft_fixture_initialize(&s->f), 0);
    sim_register(s, true);
    for (unsigned i = 0; i < o->servers; i++) {
        weft_err err;
        assert_int_equal(weft_fsm_adapter_init(&s->servers[i].adapter, fsms[i], 1, &err), 0);
        assert_int_equal(raft_fixture_grow(&s->f, &s->servers[i].adapter.raft_fsm), 0);
        struct raft *r = sim_raft(s, i);
        weft_fsm_adapter_bind(&s->servers[i].adapter, r);
        sim_fix_fixture_io(s, i);
        if (!o->unguarded) {
            /* As the host does (raft/guard.h): raft talks to the fixture through the guard. */
            weft_io_guard_init(&s->servers[i].guard, &s->f.servers[i].io);
            s->servers[i].guard.io.data = r;
            r->io = &s->servers[i].guard.io;
        }
        /* Explicit, as the host sets them (notes: never trust 0.15's defaults). */
        raft_set_election_timeout(r, o->election_timeout_ms);
        raft_set_heartbeat_timeout(r, o->heartbeat_timeout_ms);
        raft_set_snapshot_threshold(r, o->snapshot_threshold);
        raft_set_snapshot_trailing(r, o->snapshot_trailing);
        raft_set_pre_vote(r, o->pre_vote);
        if (!o->real_timers) sim_randomize_timeouts(s, i);
        sim_randomize_latencies(s, i);
    }
    struct raft_configuration conf;
    assert_int_equal(raft_fixture_configuration(&s->f, o->servers, &conf), 0);
    assert_int_equal(raft_fixture_bootstrap(&s->f, &conf), 0);
    raft_configuration_close(&conf);
    assert_int_equal(raft_fixture_start(&s->f), 0);
    if (o->real_timers) sim_spread_ticks(s);
    raft_fixture_hook(&s->f, sim_hook);
}

void sim_close(sim *s) {
    /* raft_close answers every pending request (LEADERSHIPLOST) before the fixture frees. */
    raft_fixture_close(&s->f);
    sim_register(s, false);
    SIM_CHECK(s, s->inflight == 0);
    for (unsigned i = 0; i < s->opts.servers; i++) weft_fsm_adapter_close(&s->servers[i].adapter);
}

/* ---- Driving ---- */

void sim_run_ms(sim *s, unsigned ms) {
    raft_time end = sim_time_ms(s) + ms;
    while (sim_time_ms(s) < end) raft_fixture_step(&s->f);
}

unsigned sim_ready_leader(sim *s) {
    unsigned best = SIM_NONE;
    uint64_t best_term = 0;
    for (unsigned i = 0; i < s->opts.servers; i++) {
        struct raft *r = sim_raft(s, i);
        if (s->servers[i].killed || raft_state(r) != RAFT_LEADER) continue;
        if (s->servers[i].ready_term != r->current_term) continue;
        if (r->current_term > best_term) {
            best = i;
            best_term = r->current_term;
        }
    }
    return best;
}

unsigned sim_wait_ready_leader(sim *s, unsigned max_ms) {
    raft_time end = sim_time_ms(s) + max_ms;
    unsigned i = sim_ready_leader(s);
    while (i == SIM_NONE && sim_time_ms(s) < end) {
        raft_fixture_step(&s->f);
        i = sim_ready_leader(s);
    }
    return i;
}

bool sim_wait_applied(sim *s, uint64_t index, unsigned max_ms) {
    raft_time end = sim_time_ms(s) + max_ms;
    for (;;) {
        bool all = true;
        for (unsigned i = 0; i < s->opts.servers; i++) {
            if (!s->servers[i].killed && raft_last_applied(sim_raft(s, i)) < index) all = false;
        }
        if (all) return true;
        if (sim_time_ms(s) >= end) return false;
        raft_fixture_step(&s->f);
    }
}

/* ---- Proposals ---- */

typedef struct sim_req {
    struct raft_apply req;   /* req.data = this */
    sim *s;
    unsigned server;         /* the leader it was proposed at */
    sim_propose_cb cb;
    void *data;
} sim_req;

static void sim_apply_cb(struct raft_apply *req, int status, void *result) {
    sim_req *sr = req->data;
    sim *s = sr->s;
    SIM_CHECK(s, s->inflight > 0 && s->servers[sr->server].entries_inflight > 0);
    s->inflight--;
    s->servers[sr->server].entries_inflight--;
    weft_applied *ap = NULL;
    if (status == 0) {
        ap = weft_fsm_adapter_claim(&s->servers[sr->server].adapter, result);
        s->acked++;
    } else {
        s->unknown++;
    }
    sr->cb(s, sr->data, status, ap);
    weft_applied_free(ap);
    free(sr);
}

int sim_propose(sim *s, unsigned i, const weft_bytes *cmds, uint32_t n, sim_propose_cb cb,
                void *data) {
    WEFT_ASSERT(i < s->opts.servers && cb != NULL);
    if (s->inflight >= SIM_INFLIGHT_MAX) return RAFT_BUSY;
    if (!s->opts.unthrottled && s->servers[i].entries_inflight > 0) return RAFT_BUSY;
    struct raft *r = sim_raft(s, i);
    if (raft_state(r) != RAFT_LEADER || s->servers[i].ready_term != r->current_term) {
        return RAFT_NOTLEADER;
    }
    void *buf = NULL;
    size_t len = 0;
    /* Virtual time is the leader's clock here: entries are stamped with fixture time. */
    int rc = weft_batch_encode(sim_time_ms(s), cmds, n, &buf, &len, raft_malloc);
    SIM_CHECK(s, rc == 0);
    sim_req *sr = calloc(1, sizeof *sr);
    *sr = (sim_req){.s = s, .server = i, .cb = cb, .data = data};
    sr->req.data = sr;
    struct raft_buffer rb = {.base = buf, .len = len};
    rc = raft_apply(r, &sr->req, &rb, 1, sim_apply_cb);
    if (rc != 0) {
        raft_free(buf);
        free(sr);
        return rc;
    }
    s->inflight++;
    s->servers[i].entries_inflight++;
    s->proposed++;
    return 0;
}

/* ---- Faults ---- */

static unsigned sim_alive_count(sim *s) {
    unsigned n = 0;
    for (unsigned i = 0; i < s->opts.servers; i++) n += !s->servers[i].killed;
    return n;
}

void sim_kill(sim *s, unsigned i) {
    if (s->servers[i].killed) return;
    sim_trace(s, "kill %u", i);
    raft_fixture_kill(&s->f, i);
    s->servers[i].killed = true;
}

void sim_revive(sim *s, unsigned i) {
    if (!s->servers[i].killed) return;
    sim_trace(s, "revive %u", i);
    raft_fixture_revive(&s->f, i);
    s->servers[i].killed = false;
    /* revive reconnects every link; keep the cuts we made. */
    for (unsigned j = 0; j < s->opts.servers; j++) {
        if (s->cut[i][j]) raft_fixture_saturate(&s->f, i, j);
        if (s->cut[j][i]) raft_fixture_saturate(&s->f, j, i);
    }
}

void sim_disconnect(sim *s, unsigned i, unsigned j) {
    if (i == j) return;
    sim_trace(s, "cut %u <-> %u", i, j);
    raft_fixture_disconnect(&s->f, i, j);
    raft_fixture_disconnect(&s->f, j, i);
    s->cut[i][j] = s->cut[j][i] = true;
}

void sim_reconnect(sim *s, unsigned i, unsigned j) {
    if (i == j) return;
    sim_trace(s, "join %u <-> %u", i, j);
    raft_fixture_reconnect(&s->f, i, j);
    raft_fixture_reconnect(&s->f, j, i);
    if (!s->servers[i].killed && !s->servers[j].killed) {
        raft_fixture_desaturate(&s->f, i, j);
        raft_fixture_desaturate(&s->f, j, i);
    }
    s->cut[i][j] = s->cut[j][i] = false;
}

void sim_isolate(sim *s, unsigned i) {
    for (unsigned j = 0; j < s->opts.servers; j++) sim_disconnect(s, i, j);
}

void sim_rejoin(sim *s, unsigned i) {
    for (unsigned j = 0; j < s->opts.servers; j++) sim_reconnect(s, i, j);
}

static void sim_depose(sim *s) {
    unsigned leader = s->f.leader_id == 0 ? SIM_NONE : (unsigned)s->f.leader_id - 1;
    if (leader == SIM_NONE || s->servers[leader].killed) return;
    if (raft_state(sim_raft(s, leader)) != RAFT_LEADER) return;
    for (unsigned j = 0; j < s->opts.servers; j++) {
        /* The fixture's depose expects a stable, fully connected leader. */
        if (s->cut[leader][j] || s->servers[j].killed) return;
    }
    sim_trace(s, "depose %u", leader);
    raft_fixture_depose(&s->f);
    for (unsigned j = 0; j < s->opts.servers; j++) sim_randomize_timeouts(s, j);
}

void sim_chaos(sim *s) {
    unsigned n = s->opts.servers;
    unsigned i = (unsigned)sim_rand(s, n);
    unsigned j = (unsigned)sim_rand(s, n);
    s->chaos_count++;
    switch (sim_rand(s, 8)) {
    case 0:
        sim_randomize_latencies(s, i);
        sim_trace(s, "latencies of %u changed", i);
        break;
    case 1:
        sim_randomize_timeouts(s, i);
        break;
    case 2:
        /* Keep a majority alive so the run makes progress. */
        if (sim_alive_count(s) - 1 > n / 2) sim_kill(s, i);
        break;
    case 3:
        sim_revive(s, i);
        break;
    case 4:
        sim_disconnect(s, i, j);
        break;
    case 5:
        sim_reconnect(s, i, j);
        break;
    case 6:
        if (!s->servers[i].killed && !s->servers[j].killed && i != j) {
            sim_trace(s, "saturate %u -> %u", i, j);
            raft_fixture_saturate(&s->f, i, j);
            s->cut[i][j] = true;
        }
        break;
    default:
        sim_depose(s);
        break;
    }
}

void sim_heal(sim *s) {
    sim_trace(s, "heal");
    for (unsigned i = 0; i < s->opts.servers; i++) sim_revive(s, i);
    for (unsigned i = 0; i < s->opts.servers; i++) {
        for (unsigned j = i + 1; j < s->opts.servers; j++) sim_reconnect(s, i, j);
    }
    for (unsigned i = 0; i < s->opts.servers; i++) {
        raft_fixture_set_network_latency(&s->f, i, 5);
        raft_fixture_set_disk_latency(&s->f, i, 3);
        sim_randomize_timeouts(s, i);
    }
}
