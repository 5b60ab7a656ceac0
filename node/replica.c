/* replica.c: the glue between one shard state machine and its raft group. Raft calls the
 * weft_group_fsm callbacks below on the loop thread (snapshot: on a threadpool thread); the shard tells the node about new tasks,
 * earlier timers and changed runs through its observer. Observer callbacks run inside apply, so
 * they only record what changed; the node's pump acts on it in a later callback. */
#include "replica.h"

#include <raft.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../proto/base.h"
#include "../proto/log.h"
#include "clockcheck.h"
#include "cluster.h"
#include "poll.h"
#include "timergate.h"
#include "waits.h"

/* ---- raft fsm ---- */

static int replica_apply(void *ctx, uint64_t index, uint64_t leader_time_ms, const weft_bytes *cmds,
                         uint32_t n, weft_reply *replies) {
    weft_replica *rep = ctx;
    WEFT_ASSERT(rep->shard != NULL);
    /* Replies only the proposer reads: a follower applies without building them. */
    bool awaited = rep->group != NULL && weft_group_awaits_entry(rep->group, index);
    int rc = weft_shard_apply(rep->shard, index, leader_time_ms, cmds, n, awaited ? replies : NULL);
    if (rc != 0) {
        weft_log(WEFT_LOG_ERROR, rep->shard_id,
                 "apply of entry %llu failed (%s); the replica stops", (unsigned long long)index,
                 weft_error_name(rc));
    }
    return rc;
}

/* On a libuv threadpool thread, concurrently with apply on the loop (raft/host.h): it only
 * reads rep->shard and rep->shard_id, which change only while raft is closed (a restart
 * reopens the shard after raft_uv's close waited for this copy). */
static int replica_snapshot(void *ctx, void **buf, size_t *len) {
    weft_replica *rep = ctx;
    weft_err err = {0};
    uint64_t t0 = weft_mono_ms();
    int rc = weft_shard_snapshot(rep->shard, raft_malloc, buf, len, &err);
    if (rc != 0) {
        weft_log(WEFT_LOG_ERROR, rep->shard_id, "snapshot failed: %s", err.message);
        return rc;
    }
    /* The image's own index: the shard's applied index belongs to the loop thread. */
    uint64_t index = 0;
    rc = weft_store_snapshot_applied_index(*buf, *len, &index, &err);
    WEFT_ASSERT(rc == 0);
    weft_log(WEFT_LOG_INFO, rep->shard_id, "snapshot of %zu bytes at index %llu took %llu ms", *len,
             (unsigned long long)index, (unsigned long long)(weft_mono_ms() - t0));
    return 0;
}

static int replica_restore(void *ctx, const void *buf, size_t len) {
    weft_replica *rep = ctx;
    weft_err err = {0};
    int rc = weft_shard_restore(rep->shard, buf, len, &err);
    if (rc != 0) {
        weft_log(WEFT_LOG_ERROR, rep->shard_id, "restore from a %zu-byte snapshot failed: %s", len,
                 err.message);
        return rc;
    }
    weft_log(WEFT_LOG_INFO, rep->shard_id, "state at index %llu after snapshot restore",
             (unsigned long long)weft_shard_applied_index(rep->shard));
    return 0;
}

/* The host restarts a replica after a storage failure (STYLE rule 10: never retried in place):
 * the poisoned LMDB env is closed and opened again from disk before raft replays into it. */
static int replica_open_shard(weft_replica *rep, weft_node *n, weft_err *err);

static int replica_reopen(void *ctx, weft_err *err) {
    weft_replica *rep = ctx;
    weft_log(WEFT_LOG_WARN, rep->shard_id, "reopening the shard state after a storage failure");
    if (rep->shard != NULL) {
        /* A flush failure here only means the failed store lost what it had not flushed;
         * raft replays it into the reopened env. The stop is unclean anyway (runstate). */
        (void)weft_shard_close(rep->shard);
        rep->shard = NULL;
    }
    rep->restart_asked = false;
    return replica_open_shard(rep, rep->node, err);
}

static void replica_noop_cb(void *data, weft_reply *reply) {
    (void)data;
    weft_reply_reset(reply);
}

/* A storage failure outside apply (a dispatch refill, a read) stops the shard, but only a
 * failing apply makes the raft host restart the replica. An idle shard may see no write for a
 * long time, so a NOOP is proposed once: its apply fails and the host reopens from disk. */
void weft_replica_notice_failure(weft_replica *rep) {
    if (rep->shard == NULL || rep->restart_asked || !weft_shard_failed(rep->shard)) return;
    weft_shard_cmd noop = {.type = WEFT_SC_NOOP};
    uint8_t *cmd = NULL;
    size_t cmd_len = 0;
    weft_err err = {0};
    int rc = weft_schema_encode_buf(&weft_shard_cmd_schema, &noop, &cmd, &cmd_len);
    if (rc != 0 || cmd_len == 0) {
        free(cmd);
        return;
    }
    /* weft_replica_propose owns cmd from here, and frees it itself when it fails. */
    if (weft_replica_propose(rep, cmd, cmd_len, replica_noop_cb, NULL, &err) != 0) {
        return; /* not leader or closing: the next notice tries again */
    }
    rep->restart_asked = true;
    weft_log(WEFT_LOG_ERROR, rep->shard_id, "shard stopped by a storage failure; restarting it");
}

/* Leadership gained (own-term barrier applied): rebuild dispatch, arm the timer gate, wake
 * pollers. Leadership lost: drop leader-only state and fail what waited on it. */
static void replica_role_changed(void *ctx, weft_role old_role, weft_role new_role, uint64_t term) {
    weft_replica *rep = ctx;
    if (rep->role != old_role) {
        weft_log(WEFT_LOG_WARN, rep->shard_id, "role report from %s, but the node last saw %s",
                 weft_role_name(old_role), weft_role_name(rep->role));
        old_role = rep->role;
    }
    WEFT_LOGF(WEFT_LOG_DEBUG, rep->shard_id, "replica role %s -> %s (term %llu)",
              weft_role_name(old_role), weft_role_name(new_role), (unsigned long long)term);
    rep->role = new_role;
    rep->term = term;
    if (old_role == WEFT_ROLE_LEADER_READY && new_role != WEFT_ROLE_LEADER_READY) {
        weft_timergate_stop(&rep->gate);
        weft_shard_leader_stop(rep->shard);
        weft_waits_fail_linearizable(rep);
    }
    if (new_role == WEFT_ROLE_LEADER_READY && old_role != WEFT_ROLE_LEADER_READY) {
        weft_err err = {0};
        int rc = weft_shard_leader_start(rep->shard, &err);
        if (rc != 0) {
            weft_log(WEFT_LOG_ERROR, rep->shard_id, "cannot start leading: %s", err.message);
            return;
        }
        weft_timergate_start(&rep->gate);
        weft_poll_wake_all(rep->node);
    }
}

/* ---- shard observer ---- */

static void replica_task_ready(void *ctx, weft_shard *s, const weft_ready_task *t) {
    weft_replica *rep = ctx;
    WEFT_ASSERT(rep->shard == s && t != NULL);
    if (rep->role != WEFT_ROLE_LEADER_READY) return;
    weft_poll_task_ready(rep->node, t->task_queue, t->kind);
}

static void replica_timer_added(void *ctx, weft_shard *s, uint64_t fire_at_ms) {
    weft_replica *rep = ctx;
    WEFT_ASSERT(rep->shard == s);
    weft_timergate_added(&rep->gate, fire_at_ms);
}

static void replica_run_changed(void *ctx, weft_shard *s, uint64_t run_key, bool closed) {
    weft_replica *rep = ctx;
    WEFT_ASSERT(rep->shard == s);
    weft_waits_run_changed(rep, run_key, closed);
}

/* ---- lifecycle ---- */

static int replica_open_shard(weft_replica *rep, weft_node *n, weft_err *err) {
    char state_dir[PATH_MAX];
    if (weft_datadir_shard_path(&n->datadir, rep->shard_id, "state", state_dir, sizeof state_dir) !=
        0) {
        return weft_err_set(err, WEFT_E_INVALID_ARGUMENT, "data", "--data path is too long");
    }
    int rc = weft_shard_open(&rep->shard, rep->shard_id, n->datadir.cluster_id, state_dir,
                             &n->cfg.limits, &n->store_opts, err);
    if (rc != 0) {
        weft_err_prefix(err, "shard %u", rep->shard_id);
        return rc;
    }
    weft_shard_observer obs = {
        .ctx = rep,
        .task_ready = replica_task_ready,
        .timer_added = replica_timer_added,
        .run_changed = replica_run_changed,
    };
    weft_shard_set_observer(rep->shard, &obs);
    return 0;
}

/* The group's members: shard i's R replicas, on nodes (i + j) mod N (DESIGN section 5), with
 * their raft ids (= node ids) and raft addresses. Every node builds the same list, so every
 * replica bootstraps the same configuration on its first start. */
static unsigned replica_members(const weft_cluster *cl, uint32_t shard_id,
                                weft_peer peers[WEFT_RAFT_PEERS_MAX]) {
    WEFT_ASSERT(cl->replication_factor >= 1 && cl->replication_factor <= cl->nodes_count);
    for (uint32_t j = 0; j < cl->replication_factor; j++) {
        uint32_t k = weft_placement_node(shard_id, j, cl->nodes_count);
        const weft_cluster_node *node = &cl->nodes[k];
        peers[j] = (weft_peer){.id = node->id};
        snprintf(peers[j].address, sizeof peers[j].address, "%s", node->raft_address);
    }
    return cl->replication_factor;
}

int weft_replica_open(weft_replica *rep, weft_node *n, uint32_t shard_id, weft_err *err) {
    WEFT_ASSERT(rep != NULL && n != NULL && n->host != NULL);
    memset(rep, 0, sizeof *rep);
    rep->node = n;
    rep->shard_id = shard_id;
    rep->role = WEFT_ROLE_STOPPED;
    weft_timergate_init(&rep->gate, rep);
    const weft_cluster *cl = &n->cfg.cluster;
    rep->hosted = weft_placement_hosts(shard_id, cl->self, cl->nodes_count, cl->replication_factor);
    rep->preferred_leader = cl->nodes[weft_placement_preferred(shard_id, cl->nodes_count)].id;
    if (!rep->hosted) return 0; /* requests for it get a leader hint (check_leader) */
    int rc = replica_open_shard(rep, n, err);
    if (rc != 0) return rc;
    rep->fsm = (weft_group_fsm){
        .ctx = rep,
        .apply = replica_apply,
        .snapshot = replica_snapshot,
        .restore = replica_restore,
        .role_changed = replica_role_changed,
        .reopen = replica_reopen,
    };
    char raft_dir[PATH_MAX];
    rc = weft_datadir_shard_path(&n->datadir, shard_id, "raft", raft_dir, sizeof raft_dir);
    WEFT_ASSERT(rc == 0); /* the state path of the same length fitted */
    weft_peer peers[WEFT_RAFT_PEERS_MAX];
    unsigned peers_count = replica_members(cl, shard_id, peers);
    rc = weft_group_start(n->host, shard_id, raft_dir, peers, peers_count, &rep->fsm, &rep->group,
                          err);
    if (rc != 0) {
        weft_err_prefix(err, "shard %u: starting raft in %s", shard_id, raft_dir);
        return rc;
    }
    return 0;
}

int weft_replica_close_shard(weft_replica *rep) {
    weft_timergate_close(&rep->gate);
    int rc = 0;
    if (rep->shard != NULL) {
        rc = weft_shard_close(rep->shard);
        rep->shard = NULL;
    }
    if (rc != 0) {
        weft_log(WEFT_LOG_ERROR, rep->shard_id,
                 "closing the shard state: its last commits could not be flushed to disk");
    }
    return rc;
}

/* ---- serving ---- */

/* Both views must agree: the host fails a lost leader's queue before it reports the role
 * change, and callbacks running in between must already see the replica as not ready. */
bool weft_replica_ready(const weft_replica *rep) {
    return rep->group != NULL && rep->shard != NULL && rep->role == WEFT_ROLE_LEADER_READY &&
           weft_group_role(rep->group) == WEFT_ROLE_LEADER_READY;
}

int weft_replica_check_leader(const weft_replica *rep, weft_err *err, uint64_t *hint) {
    *hint = 0;
    if (weft_replica_ready(rep)) return 0;
    if (rep->node->state >= WEFT_NODE_CLOSING) {
        return weft_err_set(err, WEFT_E_UNAVAILABLE, "",
                            "node is shutting down; retry on another node or after it restarts");
    }
    uint64_t leader = weft_cluster_leader_guess(rep);
    if (!rep->hosted) {
        /* No replica here, so no view of its leader: its preferred leader (another replica
         * while that one is down) is the best guess, and a node that holds the shard names the
         * real leader if it is another. */
        *hint = leader;
        return weft_err_set(err, WEFT_E_NOT_LEADER, "",
                            "shard %u has no replica on node %llu; send the request to node %llu "
                            "(%s), which holds it",
                            rep->shard_id, (unsigned long long)rep->node->datadir.node_id,
                            (unsigned long long)leader,
                            weft_cluster_client_address(rep->node, leader));
    }
    if (leader != 0 && leader != rep->node->datadir.node_id) {
        *hint = leader;
        return weft_err_set(err, WEFT_E_NOT_LEADER, "",
                            "shard %u is led by node %llu (%s); send the request there",
                            rep->shard_id, (unsigned long long)leader,
                            weft_cluster_client_address(rep->node, leader));
    }
    if (weft_cluster_cut_off(rep->node)) return weft_cluster_cut_off_err(rep->node, err);
    return weft_err_set(err, WEFT_E_UNAVAILABLE, "", "shard %u has no leader yet; retry",
                        rep->shard_id);
}

/* Wraps a callback so the node can count what is in flight. */
typedef struct replica_call {
    weft_node *node;            /* for the counters */
    weft_propose_cb propose_cb; /* the caller's, for proposals */
    weft_barrier_cb barrier_cb; /* the caller's, for barriers */
    void *data;                 /* the caller's */
} replica_call;

static void replica_propose_cb(void *data, weft_reply *reply) {
    replica_call *call = data;
    weft_node *n = call->node;
    WEFT_ASSERT(n->proposals_inflight > 0);
    n->proposals_inflight--;
    call->propose_cb(call->data, reply);
    free(call);
    weft_node_drain_check(n);
}

int weft_replica_propose(weft_replica *rep, uint8_t *cmd, size_t cmd_len, weft_propose_cb cb,
                         void *data, weft_err *err) {
    WEFT_ASSERT(cmd != NULL && cmd_len > 0 && cb != NULL);
    weft_node *n = rep->node;
    replica_call *call = NULL;
    const char *why = NULL;
    int rc;
    uint64_t hint = 0;
    if (!rep->hosted) {
        rc = weft_replica_check_leader(rep, err, &hint); /* NOT_LEADER naming where it lives */
    } else if (n->state >= WEFT_NODE_CLOSING || rep->group == NULL) {
        rc = weft_err_set(err, WEFT_E_UNAVAILABLE, "",
                          "node is shutting down; retry on another node");
    } else if ((why = weft_clockcheck_refusal(n)) != NULL) {
        /* The one gate every leader proposal passes (writes, timer fires, dispatches, polls):
         * the entry it would append carries this node's wall clock as the shard clock
         * (raft/propose.c), so a node whose clock is off or unchecked must append none, even
         * in the moment between winning an election and handing the shard on
         * (clockcheck.c). The raft host asks again right at the stamp, for a clock that steps
         * between this call and the end of the loop turn. */
        rc = weft_err_set(err, WEFT_E_UNAVAILABLE, "",
                          "node %llu does not lead shard %u now: %s; retry (the shard moves to "
                          "another node)",
                          (unsigned long long)n->datadir.node_id, rep->shard_id, why);
    } else if ((call = calloc(1, sizeof *call)) == NULL) {
        rc = weft_err_set(err, WEFT_E_RESOURCE_EXHAUSTED, "", "node is out of memory; retry later");
    } else {
        *call = (replica_call){.node = n, .propose_cb = cb, .data = data};
        rc = weft_group_propose(rep->group, cmd, cmd_len, replica_propose_cb, call, err);
        if (rc != 0 && err != NULL && err->code == 0) {
            weft_err_set(err, WEFT_E_UNAVAILABLE, "", "shard %u refused the proposal (%s); retry",
                         rep->shard_id, weft_error_name(rc));
        }
    }
    if (rc != 0) {
        free(call);
        free(cmd);
        return rc;
    }
    n->proposals_inflight++;
    return 0;
}

static void replica_barrier_cb(void *data, int status) {
    replica_call *call = data;
    weft_node *n = call->node;
    WEFT_ASSERT(n->barriers_inflight > 0);
    n->barriers_inflight--;
    call->barrier_cb(call->data, status);
    free(call);
    weft_node_drain_check(n);
}

int weft_replica_barrier(weft_replica *rep, weft_barrier_cb cb, void *data, weft_err *err) {
    WEFT_ASSERT(cb != NULL);
    weft_node *n = rep->node;
    if (n->state >= WEFT_NODE_CLOSING || rep->group == NULL) {
        return weft_err_set(err, WEFT_E_UNAVAILABLE, "",
                            "node is shutting down; retry on another node");
    }
    replica_call *call = calloc(1, sizeof *call);
    if (call == NULL)
        return weft_err_set(err, WEFT_E_RESOURCE_EXHAUSTED, "",
                            "node is out of memory; retry later");
    *call = (replica_call){.node = n, .barrier_cb = cb, .data = data};
    int rc = weft_group_barrier(rep->group, replica_barrier_cb, call, err);
    if (rc != 0 && err != NULL && err->code == 0) {
        weft_err_set(err, WEFT_E_UNAVAILABLE, "", "shard %u refused the read barrier (%s); retry",
                     rep->shard_id, weft_error_name(rc));
    }
    if (rc != 0) {
        free(call);
        return rc;
    }
    n->barriers_inflight++;
    return 0;
}
