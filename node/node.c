/* node.c: the node's lifecycle. Start: both ports, data dir, raft host, every replica, signals.
 * Stop: stop accepting and refuse new work, answer long-polls, wait (bounded) for proposals in
 * flight, close every raft group, then the shards, then the connections. Also the pump, which
 * runs on a 0 ms timer the wake-ups that apply's observer callbacks recorded. */
#include "node.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "../proto/base.h"
#include "../proto/log.h"
#include "../storage/store.h"
#include "clockcheck.h"
#include "cluster.h"
#include "disk.h"
#include "forward.h"
#include "namespaces.h"
#include "ops.h"
#include "poll.h"
#include "replica.h"
#include "server.h"
#include "signals.h"
#include "timergate.h"
#include "waits.h"

const char *weft_node_state_name(weft_node_state s) {
    static const char *const names[] = {"starting",    "running", "draining",
                                        "handing-off", "closing", "stopped"};
    WEFT_ASSERT((unsigned)s < WEFT_ARRAY_LEN(names));
    return names[s];
}

void weft_node_set_state(weft_node *n, weft_node_state next) {
    weft_node_state prev = n->state;
    bool legal =
        (prev == WEFT_NODE_STARTING && (next == WEFT_NODE_RUNNING || next == WEFT_NODE_CLOSING)) ||
        (prev == WEFT_NODE_RUNNING && next == WEFT_NODE_DRAINING) ||
        (prev == WEFT_NODE_DRAINING && next == WEFT_NODE_HANDING_OFF) ||
        (prev == WEFT_NODE_DRAINING && next == WEFT_NODE_CLOSING) ||
        (prev == WEFT_NODE_HANDING_OFF && next == WEFT_NODE_CLOSING) ||
        (prev == WEFT_NODE_CLOSING && next == WEFT_NODE_STOPPED);
    WEFT_ASSERT(legal);
    WEFT_LOGF(WEFT_LOG_DEBUG, WEFT_LOG_NO_SHARD, "node %s -> %s", weft_node_state_name(prev),
              weft_node_state_name(next));
    n->state = next;
}

bool weft_node_serving(const weft_node *n) {
    return n->state == WEFT_NODE_RUNNING;
}

/* ---- pump ---- */

static void node_pump_cb(uv_timer_t *t) {
    weft_node *n = t->data;
    n->pump_scheduled = false;
    weft_waits_pump(n);
    weft_poll_pump(n);
}

void weft_node_pump_schedule(weft_node *n) {
    if (n->pump_scheduled || n->state >= WEFT_NODE_CLOSING) return;
    n->pump_scheduled = true;
    uv_timer_start(&n->pump_timer, node_pump_cb, 0, 0);
}

/* ---- close ---- */

static void node_handle_closed_cb(uv_handle_t *h) {
    (void)h;
}

/* Records a clean stop (DESIGN section 5): only after a stop that served and met no failure,
 * once every raft group and every shard store has closed, and only if every flush of a
 * no-sync env succeeded. The marker lets the next start trust the envs whatever its boot id,
 * so writing it after a lost flush could hide lost commits after a machine crash. */
static void node_mark_clean(weft_node *n) {
    WEFT_ASSERT(n->state == WEFT_NODE_CLOSING); /* after the host closed, before STOPPED */
    if (!n->served || n->exit_code != 0 || !n->runstate.begun) return;
    weft_err err = {0};
    int rc = 0;
    if (n->shard_flush_failures > 0) {
        rc = weft_err_set(&err, WEFT_E_INTERNAL, "",
                          "%u shard stores could not flush their last commits (see above)",
                          n->shard_flush_failures);
    }
    if (rc == 0) rc = weft_runstate_end_clean(&n->runstate, &n->datadir, &err);
    if (rc != 0) {
        weft_log(WEFT_LOG_ERROR, WEFT_LOG_NO_SHARD,
                 "stop not recorded as clean: %s; the next start trusts the shard state unless "
                 "the machine restarts first, in which case it rebuilds it from raft",
                 err.message);
        n->exit_code = 1;
        return;
    }
    weft_log(WEFT_LOG_INFO, WEFT_LOG_NO_SHARD, "clean stop recorded in %s", n->runstate.path);
}

/* Every raft group has closed: nothing applies any more, so the shards and the remaining
 * handles can go. The loop ends once their close callbacks have run. */
static void node_host_closed(weft_node *n) {
    for (uint32_t i = 0; i < n->replicas_count; i++) {
        if (weft_replica_close_shard(&n->replicas[i]) != 0) n->shard_flush_failures++;
    }
    node_mark_clean(n);
    if (n->server != NULL) weft_server_close_all(n->server);
    uv_close((uv_handle_t *)&n->pump_timer, node_handle_closed_cb);
    uv_close((uv_handle_t *)&n->drain_timer, node_handle_closed_cb);
    uv_close((uv_handle_t *)&n->rebalance_timer, node_handle_closed_cb);
    uv_close((uv_handle_t *)&n->disk_timer, node_handle_closed_cb);
    uv_close((uv_handle_t *)&n->clock_timer, node_handle_closed_cb);
    uv_close((uv_handle_t *)&n->cut_off_timer, node_handle_closed_cb);
    weft_signals_close(n);
    weft_node_set_state(n, WEFT_NODE_STOPPED);
}

static void node_host_closed_cb(weft_raft_host *h, void *data) {
    weft_node *n = data;
    WEFT_ASSERT(n->host == h);
    /* Freed in weft_node_free, after uv_run returns (raft/host.h). */
    n->host_closed = true;
    node_host_closed(n);
}

void weft_node_close(weft_node *n) {
    weft_node_set_state(n, WEFT_NODE_CLOSING);
    uv_timer_stop(&n->drain_timer);
    weft_cluster_rebalance_stop(n);
    weft_disk_stop(n);
    weft_clockcheck_close(n);
    if (n->server != NULL) weft_server_stop_listening(n->server);
    weft_forward_close(n);
    for (uint32_t i = 0; i < n->replicas_count; i++)
        weft_timergate_stop(&n->replicas[i].gate);
    if (n->host != NULL && !n->host_closed) {
        weft_raft_host_close(n->host, node_host_closed_cb, n);
        return;
    }
    node_host_closed(n);
}

static void node_drain_timer_cb(uv_timer_t *t) {
    weft_node *n = t->data;
    if (n->state == WEFT_NODE_HANDING_OFF) {
        weft_cluster_handoff_poll(n);
        return;
    }
    if (n->state != WEFT_NODE_DRAINING) return;
    if (n->proposals_inflight > 0 || n->barriers_inflight > 0) {
        weft_log(WEFT_LOG_WARN, WEFT_LOG_NO_SHARD,
                 "%llu proposals and %llu reads still in flight after %u ms (shutdown-drain-ms); "
                 "closing "
                 "raft anyway: their clients hear UNAVAILABLE, outcome unknown",
                 (unsigned long long)n->proposals_inflight,
                 (unsigned long long)n->barriers_inflight, n->cfg.shutdown_drain_ms);
    }
    /* Proposals drained: leaderships go to other nodes before raft closes (cluster.c). */
    weft_cluster_handoff_begin(n);
}

void weft_node_handoff_wait(weft_node *n, uint64_t delay_ms) {
    WEFT_ASSERT(n->state == WEFT_NODE_HANDING_OFF);
    uv_timer_start(&n->drain_timer, node_drain_timer_cb, delay_ms, 0);
}

const char *weft_node_leadership_refusal(const weft_node *n) {
    WEFT_ASSERT(n != NULL);
    if (n->state != WEFT_NODE_RUNNING) return "this node is stopping";
    if (n->disk_low) return "its data dir's disk is low";
    return weft_clockcheck_refusal(n);
}

void weft_node_leadership_refresh(weft_node *n) {
    WEFT_ASSERT(n != NULL);
    if (n->host == NULL || n->cfg.cluster.replication_factor < 2) return;
    weft_raft_host_refuse_leadership(n->host, weft_node_leadership_refusal(n));
}

const char *weft_node_health(const weft_node *n, char *buf, size_t cap) {
    WEFT_ASSERT(n != NULL && buf != NULL && cap > 0);
    const char *disk = weft_disk_health(n);
    const char *clock = weft_clockcheck_health(n);
    snprintf(buf, cap, "%s%s%s", disk, disk[0] != '\0' && clock[0] != '\0' ? "; " : "", clock);
    return buf;
}

void weft_node_drain_check(weft_node *n) {
    if (n->state != WEFT_NODE_DRAINING || n->proposals_inflight > 0 || n->barriers_inflight > 0)
        return;
    /* Not closed from here: this runs inside a raft callback. */
    uv_timer_start(&n->drain_timer, node_drain_timer_cb, 0, 0);
}

void weft_node_shutdown(weft_node *n) {
    if (n->state != WEFT_NODE_RUNNING) return;
    weft_node_set_state(n, WEFT_NODE_DRAINING);
    weft_log(WEFT_LOG_INFO, WEFT_LOG_NO_SHARD, "stopping: %llu proposals in flight",
             (unsigned long long)n->proposals_inflight);
    weft_server_stop_listening(n->server);
    weft_cluster_rebalance_stop(n);
    weft_disk_stop(n);
    /* A node on its way out must not be handed leaderships by its peers meanwhile. */
    weft_node_leadership_refresh(n);
    for (uint32_t i = 0; i < n->replicas_count; i++)
        weft_timergate_stop(&n->replicas[i].gate);
    weft_poll_answer_all(n);
    weft_waits_answer_all(n);
    uv_timer_start(&n->drain_timer, node_drain_timer_cb, n->cfg.shutdown_drain_ms, 0);
    weft_node_drain_check(n);
}

/* ---- start ---- */

static int node_fail(weft_node *n, int exit_code, const weft_err *err) {
    weft_log(WEFT_LOG_ERROR, WEFT_LOG_NO_SHARD, "%s", err->message);
    n->exit_code = exit_code;
    weft_node_close(n);
    return exit_code;
}

static void node_raft_opts(const weft_node *n, weft_raft_opts *o) {
    weft_raft_opts_default(o);
    o->node_id = n->datadir.node_id;
    snprintf(o->raft_address, sizeof o->raft_address, "%s", n->cfg.raft_listen);
    snprintf(o->cluster_id, sizeof o->cluster_id, "%s", n->datadir.cluster_id);
    o->election_timeout_ms = n->cfg.election_timeout_ms;
    o->heartbeat_timeout_ms = n->cfg.heartbeat_timeout_ms;
    o->install_snapshot_timeout_ms = n->cfg.install_snapshot_timeout_ms;
    o->snapshot_threshold = n->cfg.snapshot_threshold;
    o->snapshot_trailing = n->cfg.snapshot_trailing;
    o->segment_bytes = (size_t)n->cfg.segment_bytes;
    o->pre_vote = n->cfg.pre_vote;
    o->disk_free_bytes_min = n->cfg.disk_free_bytes_min;
}

/* Opens the data dir with this start's identity (DESIGN section 5, "Cluster identity"): with
 * --peers the cluster id is derived from the settings every node shares. */
static int node_open_datadir(weft_node *n, weft_err *err) {
    const weft_cluster *cl = &n->cfg.cluster;
    char peers[WEFTD_PEERS_CANONICAL_BYTES_MAX] = "";
    char cluster_id[WEFTD_CLUSTER_ID_HEX_BYTES + 1] = "";
    if (cl->from_peers) {
        int rc = weft_cluster_canonical(cl, peers, sizeof peers);
        WEFT_ASSERT(rc == 0);
        weft_cluster_id_derive(cl, n->cfg.shards, cluster_id, sizeof cluster_id);
    }
    weft_datadir_identity want = {
        .shard_count = n->cfg.shards,
        .node_id = n->cfg.node_id,
        .replication_factor = cl->replication_factor,
        .peers = peers,
        .cluster_id = cl->from_peers ? cluster_id : NULL,
    };
    return weft_datadir_open(&n->datadir, n->cfg.data_dir, &want, err);
}

/* Proves that the raft port can be bound, before the data dir is written: the raft host
 * binds it for good only once the data dir gave it the node's identity. A plain socket is
 * bound and closed again (with SO_REUSEADDR, as libuv binds, so the real bind right after
 * cannot trip over it); a process that takes the port in between still fails the start, later
 * and with the raft layer's message. */
static int node_probe_raft_port(const weft_node *n, weft_err *err) {
    struct sockaddr_storage addr;
    int rc = weft_address_sockaddr(n->cfg.raft_listen, &addr);
    WEFT_ASSERT(rc == 0); /* config.c resolved it to a numeric IPv4 address */
    WEFT_ASSERT(addr.ss_family == AF_INET);
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    int one = 1;
    rc = fd < 0 ? -errno : 0;
    if (rc == 0 && setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) != 0) rc = -errno;
    if (rc == 0 && bind(fd, (const struct sockaddr *)&addr, sizeof(struct sockaddr_in)) != 0) {
        rc = -errno;
    }
    if (fd >= 0) close(fd);
    if (rc == 0) return 0;
    return weft_err_set(err, WEFT_E_UNAVAILABLE, "raft-listen",
                        "cannot listen on %s (--raft-listen): %s; free the port or choose "
                        "another with --raft-listen",
                        n->cfg.raft_listen, strerror(-rc));
}

/* One line about the cluster when there is one (a single node logs what it always did). */
static void node_log_cluster(const weft_node *n) {
    const weft_cluster *cl = &n->cfg.cluster;
    if (!cl->from_peers) return;
    uint32_t hosted = 0;
    for (uint32_t i = 0; i < n->replicas_count; i++)
        hosted += n->replicas[i].hosted;
    weft_log(WEFT_LOG_INFO, WEFT_LOG_NO_SHARD,
             "cluster of %u nodes, replication factor %u: this node holds %u of %u shards",
             cl->nodes_count, cl->replication_factor, hosted, n->replicas_count);
}

static int node_open_replicas(weft_node *n, weft_err *err) {
    n->replicas = calloc(n->datadir.shard_count, sizeof *n->replicas);
    if (n->replicas == NULL)
        return weft_err_set(err, WEFT_E_RESOURCE_EXHAUSTED, "", "out of memory");
    for (uint32_t i = 0; i < n->datadir.shard_count; i++) {
        n->replicas_count = i + 1; /* closed on failure, so counted before it opens */
        int rc = weft_replica_open(&n->replicas[i], n, i, err);
        if (rc != 0) return rc;
    }
    return 0;
}

/* Decides whether the last run's shard envs are trusted (rebuilding them otherwise) and how
 * this run writes them (DESIGN section 5). Runs once both ports are bound, so a start refused
 * for a taken port leaves the last run's record as it was, and before any shard opens. */
static int node_begin_run(weft_node *n, weft_err *err) {
    WEFT_ASSERT(n->state == WEFT_NODE_STARTING && n->replicas == NULL);
    int rc = weft_runstate_begin(&n->runstate, &n->datadir, n->cfg.boot_id_file, err);
    if (rc != 0) return rc;
    /* Every shard store opens with this mode, also when raft restarts a replica. */
    n->store_opts = (weft_store_opts){.no_sync = n->runstate.no_sync};
    WEFT_ASSERT(n->runstate.begun);
    return 0;
}

int weft_node_start(weft_node *n, uv_loop_t *loop) {
    WEFT_ASSERT(n != NULL && loop != NULL);
    n->loop = loop;
    n->state = WEFT_NODE_STARTING;
    weft_ops_check();
    int rc = uv_timer_init(loop, &n->pump_timer);
    WEFT_ASSERT(rc == 0);
    rc = uv_timer_init(loop, &n->drain_timer);
    WEFT_ASSERT(rc == 0);
    rc = uv_timer_init(loop, &n->rebalance_timer);
    WEFT_ASSERT(rc == 0);
    rc = uv_timer_init(loop, &n->disk_timer);
    WEFT_ASSERT(rc == 0);
    n->disk_timer.data = n;
    rc = uv_timer_init(loop, &n->clock_timer);
    WEFT_ASSERT(rc == 0);
    n->clock_timer.data = n;
    rc = uv_timer_init(loop, &n->cut_off_timer);
    WEFT_ASSERT(rc == 0);
    n->cut_off_timer.data = n;
    n->pump_timer.data = n;
    n->drain_timer.data = n;
    n->rebalance_timer.data = n;
    weft_signals_start(n);
    weft_err err = {0};
    /* Both ports are claimed before the data dir is touched: a start refused for a taken port
     * leaves no data dir and no identity behind, so the next try may use other settings. The
     * client port is bound for good here; no connection is accepted before uv_run, and by
     * then every replica is open. */
    weft_forward_init(n);
    n->server = calloc(1, sizeof *n->server);
    WEFT_ASSERT(n->server != NULL);
    if (weft_server_start(n->server, n, &err) != 0) return node_fail(n, 1, &err);
    if ((rc = node_probe_raft_port(n, &err)) != 0) return node_fail(n, 1, &err);
    if ((rc = node_open_datadir(n, &err)) != 0) {
        /* A data dir made for other settings is a config error (exit 2), like a bad flag. */
        bool config = strcmp(err.field, "shards") == 0 || strcmp(err.field, "node-id") == 0 ||
                      strcmp(err.field, "peers") == 0 ||
                      strcmp(err.field, "replication-factor") == 0;
        return node_fail(n, config ? 2 : 1, &err);
    }
    weft_raft_opts o;
    node_raft_opts(n, &o);
    if ((rc = weft_raft_host_init(&n->host, loop, &o, &err)) != 0) {
        n->host = NULL;
        if (err.code == 0)
            weft_err_set(&err, WEFT_E_INTERNAL, "", "cannot start raft on %s", o.raft_address);
        return node_fail(n, 1, &err);
    }
    if ((rc = node_begin_run(n, &err)) != 0) return node_fail(n, 1, &err);
    /* Before any replica opens: no group may lead before the clock is judged. */
    if ((rc = weft_clockcheck_start(n, &err)) != 0) return node_fail(n, 1, &err);
    if ((rc = node_open_replicas(n, &err)) != 0) return node_fail(n, 1, &err);
    weft_node_set_state(n, WEFT_NODE_RUNNING);
    n->served = true;
    weft_cluster_rebalance_start(n);
    weft_poll_cut_off_start(n);
    weft_disk_start(n);
    weft_node_leadership_refresh(n);
    weft_log(WEFT_LOG_INFO, WEFT_LOG_NO_SHARD, "weftd listening on %s, data %s, %u shards",
             n->cfg.listen, n->datadir.path, n->replicas_count);
    node_log_cluster(n);
    weft_log(WEFT_LOG_INFO, WEFT_LOG_NO_SHARD, "node %llu, cluster %s, raft on %s%s",
             (unsigned long long)n->datadir.node_id, n->datadir.cluster_id, n->cfg.raft_listen,
             n->datadir.created ? " (data dir created)" : "");
    return 0;
}

void weft_node_free(weft_node *n) {
    WEFT_ASSERT(n->state == WEFT_NODE_STOPPED);
    weft_clockcheck_free(n);
    if (n->host != NULL) weft_raft_host_free(n->host);
    n->host = NULL;
    free(n->replicas);
    n->replicas = NULL;
    free(n->server);
    n->server = NULL;
    weft_forward_free(n);
    weft_namespaces_free(n);
    weft_pollseen_free(&n->pollseen);
    free(n->wakes);
    n->wakes = NULL;
    weft_datadir_close(&n->datadir);
}
