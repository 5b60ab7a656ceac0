/* cluster.c: this node among its peers. Liveness comes from raft traffic (raft/host.h,
 * weft_raft_host_heard_ms), so "up" means "takes part in raft with this node", not "answers
 * clients". Leadership moves only through raft_transfer (libraft 0.15 semantics in raft/host.h):
 * to the preferred node while running, away from this node before a graceful stop. */
#include "cluster.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "../proto/base.h"
#include "../proto/log.h"
#include "clockcheck.h"
#include "replica.h"

/* ---- peers ---- */

/* True when a raft message from peer `node_id` arrived within the last window_ms. */
static bool cluster_heard_within(const weft_node *n, uint64_t node_id, uint64_t window_ms) {
    if (n->host == NULL || weft_cluster_node_by_id(&n->cfg.cluster, node_id) == NULL) return false;
    uint64_t heard_ms = weft_raft_host_heard_ms(n->host, node_id);
    uint64_t now_ms = uv_now(n->loop);
    return heard_ms != 0 && now_ms >= heard_ms && now_ms - heard_ms <= window_ms;
}

bool weft_cluster_peer_up(const weft_node *n, uint64_t node_id) {
    WEFT_ASSERT(n != NULL);
    if (node_id == n->datadir.node_id || node_id == n->cfg.node_id) return true;
    return cluster_heard_within(
        n, node_id, (uint64_t)WEFTD_PEER_UP_ELECTION_TIMEOUTS * n->cfg.election_timeout_ms);
}

/* True when this node heard, within window_ms, from a majority of shard `i`'s replicas,
 * itself included. */
static bool cluster_shard_quorum_heard(const weft_node *n, uint32_t i, uint64_t window_ms) {
    const weft_cluster *cl = &n->cfg.cluster;
    uint32_t heard = 0;
    for (uint32_t j = 0; j < cl->replication_factor; j++) {
        uint64_t id = cl->nodes[weft_placement_node(i, j, cl->nodes_count)].id;
        if (id == n->datadir.node_id || cluster_heard_within(n, id, window_ms)) heard++;
    }
    return heard > cl->replication_factor / 2u;
}

bool weft_cluster_cut_off(const weft_node *n) {
    WEFT_ASSERT(n != NULL);
    const weft_cluster *cl = &n->cfg.cluster;
    if (n->host == NULL || cl->nodes_count < 2 || cl->replication_factor < 2) return false;
    uint64_t window_ms = (uint64_t)WEFTD_CUT_OFF_ELECTION_TIMEOUTS * n->cfg.election_timeout_ms;
    uint64_t now_ms = uv_now(n->loop);
    if (now_ms < weft_raft_host_started_ms(n->host) + window_ms) return false;
    bool holds_any = false;
    for (uint32_t i = 0; i < n->replicas_count; i++) {
        if (!n->replicas[i].hosted) continue;
        holds_any = true;
        if (cluster_shard_quorum_heard(n, i, window_ms)) return false;
    }
    return holds_any;
}

int weft_cluster_cut_off_err(const weft_node *n, weft_err *err) {
    char others[WEFTD_CLUSTER_OTHERS_TEXT_BYTES];
    weft_cluster_others_text(n, others, sizeof others);
    return weft_err_set(err, WEFT_E_UNAVAILABLE, "",
                        "node %" PRIu64 " is cut off from its peers: it has heard from no "
                        "majority of its shards' replicas for %u ms; send the request to "
                        "another node: %s",
                        n->datadir.node_id,
                        WEFTD_CUT_OFF_ELECTION_TIMEOUTS * n->cfg.election_timeout_ms, others);
}

void weft_cluster_others_text(const weft_node *n, char *buf, size_t cap) {
    WEFT_ASSERT(n != NULL && buf != NULL && cap > 0);
    const weft_cluster *cl = &n->cfg.cluster;
    size_t used = 0;
    buf[0] = '\0';
    for (uint32_t i = 0; i < cl->nodes_count && used < cap; i++) {
        if (cl->nodes[i].id == n->datadir.node_id) continue;
        int k = snprintf(buf + used, cap - used, "%snode %" PRIu64 " (%s)", used > 0 ? ", " : "",
                         cl->nodes[i].id, cl->nodes[i].client_address);
        if (k < 0) break;
        used += (size_t)k;
    }
}

const char *weft_cluster_client_address(const weft_node *n, uint64_t node_id) {
    const weft_cluster_node *peer = weft_cluster_node_by_id(&n->cfg.cluster, node_id);
    return peer != NULL ? peer->client_address : "";
}

uint64_t weft_cluster_leader_guess(const weft_replica *rep) {
    WEFT_ASSERT(rep != NULL && rep->preferred_leader != 0);
    if (rep->hosted) return rep->group != NULL ? weft_group_leader_id(rep->group) : 0;
    /* No view of this shard's leader here. Its preferred node leads it most of the time; while
     * that node is down, another replica that is up will, or will name the node that does. */
    const weft_node *n = rep->node;
    if (weft_cluster_peer_up(n, rep->preferred_leader)) return rep->preferred_leader;
    const weft_cluster *cl = &n->cfg.cluster;
    for (uint32_t j = 0; j < cl->replication_factor; j++) {
        uint64_t id = cl->nodes[weft_placement_node(rep->shard_id, j, cl->nodes_count)].id;
        if (id != rep->preferred_leader && weft_cluster_peer_up(n, id)) return id;
    }
    return rep->preferred_leader;
}

/* ---- moving leadership ---- */

/* True when the leader of `rep` may hand its leadership to `to` right now: `to` is another
 * member, stores every entry the leader has, and answered within one election timeout. A
 * leader hears each live follower every heartbeat, so this window is stricter than "up":
 * a peer that stopped a second ago must not be handed a shard. */
static bool cluster_caught_up(const weft_node *n, const weft_replica *rep, uint64_t to) {
    if (to == 0 || to == n->datadir.node_id) return false;
    if (!cluster_heard_within(n, to, n->cfg.election_timeout_ms)) return false;
    if (!weft_clockcheck_peer_ok(n, to)) return false; /* its clock is off: it would refuse */
    uint64_t last = weft_group_last_index(rep->group);
    return last > 0 && weft_group_match_index(rep->group, to) == last;
}

/* The member to hand `rep`'s leadership to at a stop: the preferred leader when it is caught
 * up, else another caught-up member in placement order, else 0 (raft picks). */
static uint64_t cluster_handoff_target(const weft_node *n, const weft_replica *rep) {
    if (cluster_caught_up(n, rep, rep->preferred_leader)) return rep->preferred_leader;
    const weft_cluster *cl = &n->cfg.cluster;
    for (uint32_t j = 0; j < cl->replication_factor; j++) {
        uint64_t id = cl->nodes[weft_placement_node(rep->shard_id, j, cl->nodes_count)].id;
        if (cluster_caught_up(n, rep, id)) return id;
    }
    return 0;
}

static bool cluster_leads(const weft_replica *rep) {
    if (!rep->hosted || rep->group == NULL) return false;
    weft_role role = weft_group_role(rep->group);
    return role == WEFT_ROLE_LEADER_PENDING || role == WEFT_ROLE_LEADER_READY;
}

/* Starts a transfer of `rep`'s leadership to `to` (0: raft picks) unless one is under way. */
static void cluster_transfer(weft_replica *rep, uint64_t to, const char *why) {
    if (weft_group_transferring(rep->group)) return;
    weft_err err = {0};
    int rc = weft_group_transfer(rep->group, to, &err);
    if (rc != 0) {
        weft_log(WEFT_LOG_WARN, rep->shard_id, "leadership not moved (%s): %s", why, err.message);
        return;
    }
    weft_log(WEFT_LOG_INFO, rep->shard_id, "moving leadership to node %" PRIu64 " (%s)", to, why);
}

/* ---- the preferred leader (DESIGN section 5) ---- */

/* Every --rebalance-interval-ms: a ready leader of a shard whose preferred node is another,
 * up and caught-up member hands the shard to it. Only the leader acts, so two nodes never pull
 * one shard in two directions; the preferred node is never asked to act. With the moves off,
 * the timer runs every WEFTD_SHED_CHECK_INTERVAL_MS for the leadership refusal alone. */
static void cluster_rebalance_cb(uv_timer_t *t) {
    weft_node *n = t->data;
    if (!weft_node_serving(n)) return;
    const char *why = weft_node_leadership_refusal(n);
    if (why != NULL) {
        /* An election may have handed this node a shard since the last look. */
        weft_cluster_shed_leadership(n, why);
        return;
    }
    if (n->cfg.rebalance_interval_ms == 0) return;
    uint64_t now_ms = weft_mono_ms();
    for (uint32_t i = 0; i < n->replicas_count; i++) {
        weft_replica *rep = &n->replicas[i];
        if (!weft_replica_ready(rep) || rep->preferred_leader == n->datadir.node_id) continue;
        if (weft_group_transferring(rep->group)) continue;
        if (rep->rebalance_at_ms != 0 && now_ms - rep->rebalance_at_ms < WEFTD_REBALANCE_RETRY_MS)
            continue;
        if (!cluster_caught_up(n, rep, rep->preferred_leader)) continue;
        rep->rebalance_at_ms = now_ms;
        cluster_transfer(rep, rep->preferred_leader, "its preferred leader is up and caught up");
    }
}

void weft_cluster_shed_leadership(weft_node *n, const char *why) {
    WEFT_ASSERT(n != NULL && why != NULL);
    for (uint32_t i = 0; i < n->replicas_count; i++) {
        weft_replica *rep = &n->replicas[i];
        if (!cluster_leads(rep) || weft_group_transferring(rep->group)) continue;
        cluster_transfer(rep, cluster_handoff_target(n, rep), why);
    }
}

void weft_cluster_rebalance_start(weft_node *n) {
    const weft_cluster *cl = &n->cfg.cluster;
    if (cl->nodes_count < 2 || cl->replication_factor < 2) return;
    uint64_t every_ms = n->cfg.rebalance_interval_ms != 0 ? n->cfg.rebalance_interval_ms
                                                          : WEFTD_SHED_CHECK_INTERVAL_MS;
    uv_timer_start(&n->rebalance_timer, cluster_rebalance_cb, every_ms, every_ms);
}

void weft_cluster_rebalance_stop(weft_node *n) {
    uv_timer_stop(&n->rebalance_timer);
}

/* ---- hand-off at a graceful stop ---- */

/* Asks every group this node still leads to transfer; returns how many it still leads. */
static uint32_t cluster_handoff_step(weft_node *n) {
    uint32_t leading = 0;
    for (uint32_t i = 0; i < n->replicas_count; i++) {
        weft_replica *rep = &n->replicas[i];
        if (!cluster_leads(rep)) continue;
        leading++;
        /* A transfer that expired (libraft: half an election timeout) is tried again, maybe
         * elsewhere. */
        if (!weft_group_transferring(rep->group)) {
            cluster_transfer(rep, cluster_handoff_target(n, rep), "this node is stopping");
        }
    }
    return leading;
}

static void cluster_handoff_end(weft_node *n, uint32_t leading) {
    uint64_t took_ms = weft_mono_ms() - n->handoff_started_ms;
    if (leading == 0) {
        weft_log(WEFT_LOG_INFO, WEFT_LOG_NO_SHARD, "leadership handed off in %" PRIu64 " ms",
                 took_ms);
    } else {
        weft_log(WEFT_LOG_WARN, WEFT_LOG_NO_SHARD,
                 "%u shards still led by this node after %" PRIu64
                 " ms; stopping anyway: their followers elect a new leader within an election "
                 "timeout",
                 leading, took_ms);
    }
    weft_node_close(n);
}

void weft_cluster_handoff_begin(weft_node *n) {
    WEFT_ASSERT(n->state == WEFT_NODE_DRAINING);
    const weft_cluster *cl = &n->cfg.cluster;
    uint32_t leading = 0;
    for (uint32_t i = 0; i < n->replicas_count; i++)
        leading += cluster_leads(&n->replicas[i]);
    if (cl->replication_factor < 2 || leading == 0) {
        weft_node_close(n);
        return;
    }
    weft_node_set_state(n, WEFT_NODE_HANDING_OFF);
    n->handoff_started_ms = weft_mono_ms();
    n->handoff_deadline_ms = n->handoff_started_ms +
                             (uint64_t)WEFTD_HANDOFF_ELECTION_TIMEOUTS * n->cfg.election_timeout_ms;
    weft_log(WEFT_LOG_INFO, WEFT_LOG_NO_SHARD,
             "handing off the leadership of %u shards before stopping", leading);
    weft_cluster_handoff_poll(n);
}

void weft_cluster_handoff_poll(weft_node *n) {
    WEFT_ASSERT(n->state == WEFT_NODE_HANDING_OFF);
    uint32_t leading = cluster_handoff_step(n);
    if (leading == 0 || weft_mono_ms() >= n->handoff_deadline_ms) {
        cluster_handoff_end(n, leading);
        return;
    }
    weft_node_handoff_wait(n, WEFTD_HANDOFF_POLL_MS);
}
