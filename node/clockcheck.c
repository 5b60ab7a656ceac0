/* clockcheck.c: a node whose wall clock is off does not lead (DESIGN section 9). A leader's
 * wall clock stamps every entry it appends (raft/propose.c), and the shard clock is the
 * largest stamp applied: a leader 30 s fast moves every shard it leads 30 s ahead, and timers
 * started under honest leaders fire 30 s early in real time. So, as CockroachDB does with
 * --max-offset:
 *   - the node measures its offset to every peer over the raft port (raft/clock.h);
 *   - every WEFTD_CLOCK_CHECK_INTERVAL_MS it judges its own clock (weft_clock_judge: off when
 *     surely off by more than --max-clock-offset-ms from a majority of the peers measured,
 *     with hysteresis);
 *   - while off, or before the first judgement, it refuses leadership transfers, hands off
 *     what it leads, and as a leader proposes nothing (weft_replica_propose) and stamps nothing
 *     (the raft host asks clockcheck_stamp_check right before each stamp), so its clock
 *     neither stamps an entry nor fires a timer in the moment between winning an election and
 *     handing the shard on; ClusterStatus shows why on its row;
 *   - leaderships are not handed to a peer whose clock this (good) node sees off;
 *   - a good clock that jumps against the monotonic clock (a step of more than
 *     WEFTD_CLOCK_JUMP_PCT percent of the bound) stops the node's proposals at once, and the
 *     node leads again only once fresh probes judged it.
 * Each change of the verdict logs one line naming the offsets and the flag. */
#include "clockcheck.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "../proto/base.h"
#include "../proto/log.h"
#include "../raft/clock.h"
#include "../raft/transport.h"
#include "cluster.h"
#include "replica.h"
#include "timergate.h"

_Static_assert(WEFT_CLOCK_PEERS_MAX + 1u >= WEFT_CLUSTER_NODES_MAX,
               "every other node of a cluster can be probed");

static bool clockcheck_on(const weft_node *n) {
    return n->clock != NULL && n->cfg.max_clock_offset_ms != 0;
}

/* Appends "node 1 -30012 ms (+-1 ms), node 2 ..." for the samples to `out`. */
static void clockcheck_describe(char *out, size_t cap, const weft_clock_sample *s, unsigned n) {
    WEFT_ASSERT(out != NULL && cap > 0);
    size_t used = strlen(out);
    for (unsigned i = 0; i < n && used + 1 < cap; i++) {
        int w = snprintf(out + used, cap - used, "%snode %" PRIu64 " %+" PRId64 " ms (+-%" PRIu64
                         " ms)",
                         i == 0 ? "" : ", ", s[i].peer_id, s[i].offset_us / 1000,
                         (s[i].uncertainty_us + 999u) / 1000u);
        if (w < 0) break;
        used += (size_t)w;
    }
    if (used >= cap) out[cap - 1] = '\0';
}

static void clockcheck_health_set(weft_node *n, const weft_clock_sample *s, unsigned count) {
    snprintf(n->clock_health, sizeof n->clock_health,
             "clock off: this node's wall clock differs from its peers' by more than "
             "max-clock-offset-ms (%" PRIu32 " ms); peers' clocks minus this one: ",
             n->cfg.max_clock_offset_ms);
    clockcheck_describe(n->clock_health, sizeof n->clock_health, s, count);
    size_t used = strlen(n->clock_health);
    snprintf(n->clock_health + used, sizeof n->clock_health - used, "%s",
             n->cfg.cluster.replication_factor < 2
                 ? "; leading anyway: with replication factor 1 no other node can"
                 : "; not leading until it is fixed");
}

static int64_t clockcheck_read_us(clockid_t id) {
    struct timespec ts;
    clock_gettime(id, &ts);
    return (int64_t)ts.tv_sec * 1000000 + (int64_t)ts.tv_nsec / 1000;
}

/* The wall clock minus the monotonic one: constant while nobody sets the wall clock (NTP's
 * slewing moves it by at most 0.5 ms a second). The wall clock is read between two monotonic
 * reads, and of WEFTD_CLOCK_READ_TRIES tries the tightest pair counts, so a thread preempted
 * between two reads on a busy machine does not look like a step. */
static int64_t clockcheck_wall_minus_mono_ms(void) {
    int64_t best_gap_us = INT64_MAX, best_ms = 0;
    for (unsigned i = 0; i < WEFTD_CLOCK_READ_TRIES && best_gap_us > 1000; i++) {
        int64_t m1 = clockcheck_read_us(CLOCK_MONOTONIC);
        int64_t w = clockcheck_read_us(CLOCK_REALTIME);
        int64_t m2 = clockcheck_read_us(CLOCK_MONOTONIC);
        WEFT_ASSERT(m2 >= m1);
        if (m2 - m1 < best_gap_us) {
            best_gap_us = m2 - m1;
            best_ms = (w - (m1 + (m2 - m1) / 2)) / 1000;
        }
    }
    return best_ms;
}

/* How far the wall clock moved against the monotonic one since the clock was last seen good. */
static int64_t clockcheck_jump_ms(const weft_node *n) {
    return clockcheck_wall_minus_mono_ms() - n->clock_base_ms;
}

/* True when the wall clock of a good node jumped by more than WEFTD_CLOCK_JUMP_PCT percent of
 * the bound since it was last judged: the probes would see it only a second later, and by then
 * a leader would have stamped entries and fired timers with it. */
static bool clockcheck_jumped(const weft_node *n) {
    int64_t jump_ms = clockcheck_jump_ms(n);
    uint64_t mag_ms = jump_ms < 0 ? (uint64_t)0 - (uint64_t)jump_ms : (uint64_t)jump_ms;
    return n->clock_state == WEFTD_CLOCK_GOOD &&
           mag_ms > (uint64_t)n->cfg.max_clock_offset_ms * WEFTD_CLOCK_JUMP_PCT / 100u;
}

/* Re-arms the timer gate of every shard this node leads: the gates slept while the clock
 * refused (timergate.c), and nothing else wakes a gate whose timers were all added before. */
static void clockcheck_wake_gates(weft_node *n) {
    for (uint32_t i = 0; i < n->replicas_count; i++) {
        weft_replica *rep = &n->replicas[i];
        if (weft_replica_ready(rep)) weft_timergate_start(&rep->gate);
    }
}

/* The one place n->clock_state changes: logs the change and moves leadership accordingly. */
static void clockcheck_state_set(weft_node *n, weft_clock_state next, const weft_clock_sample *s,
                                 unsigned count) {
    /* Only a jump sends a clock back to unchecked, and only a good one (clockcheck_rejudge). */
    WEFT_ASSERT(n->clock_state != next);
    WEFT_ASSERT(next != WEFTD_CLOCK_UNCHECKED || n->clock_state == WEFTD_CLOCK_GOOD);
    weft_clock_state prev = n->clock_state;
    char offsets[WEFTD_CLOCK_HEALTH_BYTES_MAX] = "";
    clockcheck_describe(offsets, sizeof offsets, s, count);
    n->clock_state = next;
    if (next == WEFTD_CLOCK_UNCHECKED) {
        n->clock_health[0] = '\0';
        /* Samples taken before the jump describe the clock as it was. */
        weft_clock_forget(n->clock);
    } else if (next == WEFTD_CLOCK_OFF) {
        clockcheck_health_set(n, s, count);
        weft_log(WEFT_LOG_ERROR, WEFT_LOG_NO_SHARD,
                 "%s (fix the clock, e.g. with NTP; --max-clock-offset-ms sets the bound)",
                 n->clock_health);
    } else {
        n->clock_health[0] = '\0';
        n->clock_base_ms = clockcheck_wall_minus_mono_ms();
        weft_log(prev == WEFTD_CLOCK_OFF ? WEFT_LOG_WARN : WEFT_LOG_INFO, WEFT_LOG_NO_SHARD,
                 "clock %s: within max-clock-offset-ms (%" PRIu32
                 " ms) of its peers (peers' clocks minus this one: %s); taking leaderships",
                 prev == WEFTD_CLOCK_OFF ? "back" : "checked", n->cfg.max_clock_offset_ms,
                 offsets);
    }
    weft_node_leadership_refresh(n);
    if (next == WEFTD_CLOCK_GOOD) clockcheck_wake_gates(n);
}

/* A peer whose clock this node saw off and now sees agree may lead again: its shards' moves
 * back to it need not wait out WEFTD_REBALANCE_RETRY_MS from a transfer it refused. */
static void clockcheck_peers(weft_node *n) {
    const weft_cluster *cl = &n->cfg.cluster;
    for (uint32_t k = 0; k < cl->nodes_count; k++) {
        uint64_t id = cl->nodes[k].id;
        if (id == n->datadir.node_id) continue;
        bool ok = weft_clockcheck_peer_ok(n, id);
        if (ok && !n->clock_peer_ok[k]) {
            for (uint32_t i = 0; i < n->replicas_count; i++) {
                if (n->replicas[i].preferred_leader == id) n->replicas[i].rebalance_at_ms = 0;
            }
        }
        n->clock_peer_ok[k] = ok;
    }
}

static void clockcheck_judge(weft_node *n) {
    weft_clock_sample s[WEFT_CLOCK_PEERS_MAX];
    unsigned count = weft_clock_samples(n->clock, s, WEFT_CLOCK_PEERS_MAX);
    bool was_off = n->clock_state == WEFTD_CLOCK_OFF;
    weft_clock_verdict v = weft_clock_judge(s, count, n->cfg.max_clock_offset_ms, was_off);
    if (v == WEFT_CLOCK_UNKNOWN) return; /* nothing measured: the last verdict stands */
    /* The first verdict waits for peers that, with this node, make a majority of the cluster:
     * judged against one peer of five, a good clock could be condemned by the one bad peer. */
    if (n->clock_state == WEFTD_CLOCK_UNCHECKED && 2u * (count + 1u) <= n->cfg.cluster.nodes_count)
        return;
    weft_clock_state next = v == WEFT_CLOCK_OFF ? WEFTD_CLOCK_OFF : WEFTD_CLOCK_GOOD;
    if (next != n->clock_state) {
        clockcheck_state_set(n, next, s, count);
    } else if (next == WEFTD_CLOCK_OFF) {
        clockcheck_health_set(n, s, count); /* keep the numbers users see current */
    }
}

/* A good clock that jumped is compared with its peers again before the node leads. */
static void clockcheck_rejudge(weft_node *n) {
    WEFT_ASSERT(clockcheck_jumped(n));
    weft_log(WEFT_LOG_WARN, WEFT_LOG_NO_SHARD,
             "clock jumped: this node's wall clock moved %+" PRId64
             " ms against its monotonic clock since it was last compared with its peers' "
             "(more than %u%% of max-clock-offset-ms, %" PRIu32
             " ms); not leading until it is compared again",
             clockcheck_jump_ms(n), WEFTD_CLOCK_JUMP_PCT, n->cfg.max_clock_offset_ms);
    clockcheck_state_set(n, WEFTD_CLOCK_UNCHECKED, NULL, 0);
}

static void clockcheck_timer_cb(uv_timer_t *t) {
    weft_node *n = t->data;
    WEFT_ASSERT(n != NULL && &n->clock_timer == t);
    if (n->state != WEFT_NODE_RUNNING || !clockcheck_on(n)) return;
    if (clockcheck_jumped(n)) clockcheck_rejudge(n);
    /* An honest clock's base follows NTP's slewing, so only a jump between two looks counts. */
    if (n->clock_state == WEFTD_CLOCK_GOOD) n->clock_base_ms = clockcheck_wall_minus_mono_ms();
    clockcheck_judge(n);
    clockcheck_peers(n);
    const char *why = weft_clockcheck_refusal(n);
    /* An election may have handed this node a shard since the last look. */
    if (why != NULL) weft_cluster_shed_leadership(n, why);
}

static int clockcheck_add_peers(weft_node *n, weft_err *err) {
    const weft_cluster *cl = &n->cfg.cluster;
    for (uint32_t k = 0; k < cl->nodes_count; k++) {
        if (cl->nodes[k].id == n->datadir.node_id) continue;
        int rc = weft_clock_add_peer(n->clock, cl->nodes[k].id, cl->nodes[k].raft_address, err);
        if (rc != 0) return rc;
    }
    return 0;
}

/* The raft host asks this right before it stamps an entry (raft/host.h). */
static const char *clockcheck_stamp_check(void *data) {
    return weft_clockcheck_refusal(data);
}

int weft_clockcheck_start(weft_node *n, weft_err *err) {
    WEFT_ASSERT(n != NULL && n->host != NULL && n->clock == NULL);
    n->clock_state = n->cfg.max_clock_offset_ms == 0 ? WEFTD_CLOCK_GOOD : WEFTD_CLOCK_UNCHECKED;
    n->clock_base_ms = clockcheck_wall_minus_mono_ms();
    if (n->cfg.cluster.nodes_count < 2) {
        n->clock_state = WEFTD_CLOCK_GOOD; /* nothing to compare with */
        return 0;
    }
    /* Probes run (and are answered) even with the check off here: peers may have it on. */
    int rc = weft_clock_init(&n->clock, n->loop, n->datadir.node_id, n->cfg.raft_listen,
                             n->datadir.cluster_id, err);
    if (rc == 0) rc = clockcheck_add_peers(n, err);
    if (rc != 0) {
        weft_clockcheck_close(n);
        return rc;
    }
    weft_raft_listener_set_clock(weft_raft_host_listener(n->host), n->clock);
    weft_raft_host_set_stamp_check(n->host, clockcheck_stamp_check, n);
    weft_clock_start(n->clock);
    uv_timer_start(&n->clock_timer, clockcheck_timer_cb, WEFTD_CLOCK_CHECK_FIRST_MS,
                   WEFTD_CLOCK_CHECK_INTERVAL_MS);
    return 0;
}

void weft_clockcheck_close(weft_node *n) {
    WEFT_ASSERT(n != NULL);
    uv_timer_stop(&n->clock_timer);
    if (n->clock == NULL) return;
    if (n->host != NULL && !n->host_closed)
        weft_raft_listener_set_clock(weft_raft_host_listener(n->host), NULL);
    weft_clock_close(n->clock);
}

void weft_clockcheck_free(weft_node *n) {
    weft_clock_free(n->clock);
    n->clock = NULL;
}

const char *weft_clockcheck_refusal(const weft_node *n) {
    WEFT_ASSERT(n != NULL);
    if (!clockcheck_on(n) || n->cfg.cluster.replication_factor < 2) return NULL;
    switch (n->clock_state) {
    case WEFTD_CLOCK_GOOD:
        /* Checked at every proposal, so a jump stops the stamps at once, not at the next
         * judgement. */
        return clockcheck_jumped(n) ? "its wall clock jumped since it was last compared with "
                                      "its peers'"
                                    : NULL;
    case WEFTD_CLOCK_UNCHECKED: return "its clock has not been compared with its peers' yet";
    case WEFTD_CLOCK_OFF: return "its clock is off from its peers' (max-clock-offset-ms)";
    }
    WEFT_ASSERT(false);
    return NULL;
}

const char *weft_clockcheck_health(const weft_node *n) {
    WEFT_ASSERT(n != NULL);
    if (!clockcheck_on(n)) return "";
    if (n->clock_state == WEFTD_CLOCK_UNCHECKED)
        return weft_clockcheck_refusal(n) != NULL
                   ? "clock not yet compared with its peers'; not leading until it is"
                   : "";
    return n->clock_state == WEFTD_CLOCK_OFF ? n->clock_health : "";
}

bool weft_clockcheck_peer_ok(const weft_node *n, uint64_t id) {
    WEFT_ASSERT(n != NULL);
    /* A node whose own clock is off or unchecked has no say on its peers' clocks. */
    if (!clockcheck_on(n) || n->clock_state != WEFTD_CLOCK_GOOD) return true;
    weft_clock_sample s;
    if (!weft_clock_peer_sample(n->clock, id, &s)) return false;
    return weft_clock_judge(&s, 1, n->cfg.max_clock_offset_ms, false) == WEFT_CLOCK_GOOD;
}
