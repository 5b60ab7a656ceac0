/* host.c: the multi-raft host's lifecycle and its per-loop-turn poll. libraft 0.15 has no
 * state-change callback (notes), so a uv_check handle looks at every group once per loop turn:
 * it notices role changes, proposes the new leader's barrier, and flushes the turn's proposals
 * as one entry per group. A uv_idle handle runs while work waits, so the loop never blocks in
 * poll with a batch unflushed. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../proto/log.h"
#include "host_impl.h"

void weft_raft_opts_default(weft_raft_opts *o) {
    memset(o, 0, sizeof *o);
    o->node_id = 1;
    snprintf(o->raft_address, sizeof o->raft_address, "127.0.0.1:7400");
    snprintf(o->cluster_id, sizeof o->cluster_id, "weft");
    o->election_timeout_ms = WEFT_RAFT_ELECTION_TIMEOUT_MS_DEFAULT;
    o->heartbeat_timeout_ms = WEFT_RAFT_HEARTBEAT_TIMEOUT_MS_DEFAULT;
    o->install_snapshot_timeout_ms = WEFT_RAFT_INSTALL_SNAPSHOT_TIMEOUT_MS_DEFAULT;
    o->snapshot_threshold = WEFT_RAFT_SNAPSHOT_THRESHOLD_DEFAULT;
    o->snapshot_trailing = WEFT_RAFT_SNAPSHOT_TRAILING_DEFAULT;
    o->segment_bytes = WEFT_RAFT_SEGMENT_BYTES_DEFAULT;
    /* Pre-vote keeps a partitioned replica from bumping terms and deposing a healthy leader
     * when it returns (thesis 9.6); 0.15 leaves it off. */
    o->pre_vote = true;
    o->restart_delay_ms = WEFT_RAFT_RESTART_DELAY_MS;
}

const char *weft_role_name(weft_role r) {
    static const char *const names[] = {"stopped", "follower", "candidate", "leader-pending",
                                        "leader-ready"};
    return (unsigned)r < WEFT_ARRAY_LEN(names) ? names[r] : "unknown";
}

static int host_opts_check(const weft_raft_opts *o, weft_err *err) {
    if (o->node_id == 0) {
        return weft_err_set(err, WEFT_E_INVALID_ARGUMENT, "node_id", "node id must be > 0");
    }
    if (o->heartbeat_timeout_ms == 0 ||
        o->heartbeat_timeout_ms * 5ull > (unsigned long long)o->election_timeout_ms) {
        /* 0.15 does not check this relation; a violation makes leaders flap. */
        return weft_err_set(err, WEFT_E_INVALID_ARGUMENT, "heartbeat_timeout_ms",
                            "heartbeat %u ms must be > 0 and at most a fifth of the election "
                            "timeout (%u ms)",
                            o->heartbeat_timeout_ms, o->election_timeout_ms);
    }
    if (o->snapshot_threshold == 0 || o->install_snapshot_timeout_ms == 0) {
        return weft_err_set(err, WEFT_E_INVALID_ARGUMENT, "snapshot_threshold",
                            "snapshot threshold and install-snapshot timeout must be > 0");
    }
    if (o->segment_bytes < WEFT_RAFT_SEGMENT_BYTES_MIN) {
        return weft_err_set(err, WEFT_E_INVALID_ARGUMENT, "segment_bytes",
                            "raft segment size %zu is below the minimum of %u bytes",
                            o->segment_bytes, WEFT_RAFT_SEGMENT_BYTES_MIN);
    }
    if (o->restart_delay_ms == 0) {
        return weft_err_set(err, WEFT_E_INVALID_ARGUMENT, "restart_delay_ms",
                            "replica restart delay must be > 0 ms, or a failing disk spins");
    }
    return 0;
}

/* An active idle handle makes the loop poll with a zero timeout; its callback has nothing to
 * do: the check handle right after poll does the work. */
static void host_idle_cb(uv_idle_t *idle) { (void)idle; }

void host_wake(weft_raft_host *h) {
    h->wake_requested = true;
    if (!h->closing) uv_idle_start(&h->idle, host_idle_cb);
}

static void host_check_cb(uv_check_t *check) {
    weft_raft_host *h = check->data;
    WEFT_ASSERT(!h->closing);
    h->wake_requested = false;
    /* A group is freed only from close callbacks, never during this walk. */
    for (weft_group *g = h->groups; g != NULL; g = g->next) {
        group_poll(g);
        group_flush(g);
    }
    if (!h->wake_requested) uv_idle_stop(&h->idle);
}

int weft_raft_host_init(weft_raft_host **out, uv_loop_t *loop, const weft_raft_opts *opts,
                        weft_err *err) {
    WEFT_ASSERT(out != NULL && loop != NULL && opts != NULL);
    *out = NULL;
    int rc = host_opts_check(opts, err);
    if (rc != 0) return rc;
    weft_raft_host *h = calloc(1, sizeof *h);
    weft_bytes *scratch = calloc(WEFT_RAFT_BATCH_CMDS_MAX, sizeof *scratch);
    if (h == NULL || scratch == NULL) {
        free(h);
        free(scratch);
        return weft_err_set(err, WEFT_E_RESOURCE_EXHAUSTED, NULL, "out of memory for raft host");
    }
    h->loop = loop;
    h->opts = *opts;
    h->started_ms = uv_now(loop);
    h->scratch = scratch;
    rc = weft_raft_listener_init(&h->listener, loop, opts->raft_address, opts->cluster_id, err);
    if (rc != 0) {
        free(scratch);
        free(h);
        return rc;
    }
    snprintf(h->address, sizeof h->address, "%s", weft_raft_listener_address(h->listener));
    uv_check_init(loop, &h->check);
    uv_idle_init(loop, &h->idle);
    h->check.data = h;
    h->idle.data = h;
    /* Neither keeps the loop alive: the listener and raft's own handles do. */
    uv_unref((uv_handle_t *)&h->check);
    uv_unref((uv_handle_t *)&h->idle);
    uv_check_start(&h->check, host_check_cb);
    h->handles_open = 3; /* check, idle, listener */
    *out = h;
    return 0;
}

const char *weft_raft_host_address(const weft_raft_host *h) { return h->address; }

struct weft_raft_listener *weft_raft_host_listener(weft_raft_host *h) {
    WEFT_ASSERT(h != NULL && h->listener != NULL);
    return h->listener;
}

/* Every group's guard calls this for every incoming message (guard.h, recv_filter). */
bool host_recv_filter(void *data, const struct raft_message *msg) {
    weft_raft_host *h = data;
    WEFT_ASSERT(h != NULL && msg != NULL);
    uint64_t now = uv_now(h->loop);
    unsigned i = 0;
    while (i < h->heard_count && h->heard[i].id != msg->server_id) i++;
    if (i == h->heard_count && h->heard_count < WEFT_RAFT_HEARD_MAX) h->heard_count++;
    if (i < h->heard_count) h->heard[i] = (host_heard){.id = msg->server_id, .at_ms = now};
    if (msg->type == RAFT_IO_TIMEOUT_NOW && h->refuse_leadership) {
        WEFT_LOGF(WEFT_LOG_INFO, WEFT_LOG_NO_SHARD,
                  "refused a leadership transfer from node %llu: %s",
                  (unsigned long long)msg->server_id, h->refuse_why);
        return false;
    }
    return true;
}

uint64_t weft_raft_host_started_ms(const weft_raft_host *h) {
    WEFT_ASSERT(h != NULL);
    return h->started_ms;
}

uint64_t weft_raft_host_heard_ms(const weft_raft_host *h, uint64_t id) {
    WEFT_ASSERT(h != NULL && h->heard_count <= WEFT_RAFT_HEARD_MAX);
    for (unsigned i = 0; i < h->heard_count; i++) {
        if (h->heard[i].id == id) return h->heard[i].at_ms;
    }
    return 0;
}

void weft_raft_host_refuse_leadership(weft_raft_host *h, const char *why) {
    WEFT_ASSERT(h != NULL);
    bool refuse = why != NULL;
    if (h->refuse_leadership != refuse || (refuse && strcmp(h->refuse_why, why) != 0)) {
        WEFT_LOGF(WEFT_LOG_INFO, WEFT_LOG_NO_SHARD, "leadership transfers to this node %s%s%s",
                  refuse ? "refused: " : "accepted", refuse ? why : "", "");
    }
    h->refuse_leadership = refuse;
    snprintf(h->refuse_why, sizeof h->refuse_why, "%s", refuse ? why : "");
}

void weft_raft_host_set_stamp_check(weft_raft_host *h, const char *(*check)(void *data),
                                    void *data) {
    WEFT_ASSERT(h != NULL && (check != NULL || data == NULL));
    h->stamp_check = check;
    h->stamp_check_data = data;
}

static void host_maybe_closed(weft_raft_host *h) {
    if (!h->closing || h->groups != NULL || h->handles_open > 0) return;
    WEFT_LOGF(WEFT_LOG_INFO, WEFT_LOG_NO_SHARD, "raft host closed");
    if (h->close_cb != NULL) h->close_cb(h, h->close_data);
}

static void host_handle_close_cb(uv_handle_t *handle) {
    weft_raft_host *h = handle->data;
    WEFT_ASSERT(h->handles_open > 0);
    h->handles_open--;
    host_maybe_closed(h);
}

static void host_listener_close_cb(void *data) {
    weft_raft_host *h = data;
    WEFT_ASSERT(h->handles_open > 0);
    h->handles_open--;
    host_maybe_closed(h);
}

/* Close order (notes): every group's raft closes first (which closes its transport), then the
 * listener, then our own handles. */
static void host_close_rest(weft_raft_host *h) {
    WEFT_ASSERT(h->closing && h->groups == NULL && h->groups_count == 0);
    if (h->listener_closing) return;
    h->listener_closing = true;
    weft_raft_listener_close(h->listener, host_listener_close_cb, h);
    uv_close((uv_handle_t *)&h->check, host_handle_close_cb);
    uv_close((uv_handle_t *)&h->idle, host_handle_close_cb);
}

void host_group_freed(weft_raft_host *h) {
    if (h->closing && h->groups == NULL) host_close_rest(h);
}

/* Runs on the loop turn after weft_raft_host_close: the caller may be inside one of raft's
 * callbacks (a proposer's), where raft_close must not run. */
static void host_close_idle_cb(uv_idle_t *idle) {
    weft_raft_host *h = idle->data;
    WEFT_ASSERT(h->closing);
    uv_idle_stop(&h->idle);
    /* group_close frees nothing synchronously; saving next keeps the walk valid anyway. */
    weft_group *next = NULL;
    for (weft_group *g = h->groups; g != NULL; g = next) {
        next = g->next;
        /* A group whose start failed is already closing itself. */
        if (!group_is_closing(g)) group_close(g);
    }
    if (h->groups == NULL) host_close_rest(h);
}

void weft_raft_host_close(weft_raft_host *h, void (*cb)(weft_raft_host *h, void *data),
                          void *data) {
    WEFT_ASSERT(h != NULL && !h->closing);
    WEFT_LOGF(WEFT_LOG_INFO, WEFT_LOG_NO_SHARD, "raft host closing %u groups", h->groups_count);
    h->closing = true;
    h->close_cb = cb;
    h->close_data = data;
    uv_check_stop(&h->check);
    /* The idle handle now keeps the loop alive until the groups are closing. */
    uv_ref((uv_handle_t *)&h->idle);
    uv_idle_stop(&h->idle); /* an active idle would keep its old callback */
    uv_idle_start(&h->idle, host_close_idle_cb);
}

void weft_raft_host_free(weft_raft_host *h) {
    if (h == NULL) return;
    WEFT_ASSERT(h->closing && h->groups == NULL && h->handles_open == 0);
    /* The caller ran the loop dry first (host.h), so raft_uv can no longer call back. */
    while (h->dead != NULL) {
        weft_group *g = h->dead;
        h->dead = g->next;
        group_free_dead(g);
    }
    while (h->retired != NULL) {
        group_io *gio = h->retired;
        h->retired = gio->next;
        group_io_free(gio);
    }
    weft_raft_listener_free(h->listener);
    free(h->scratch);
    free(h);
}

int weft_group_start(weft_raft_host *h, uint32_t group_id, const char *raft_dir,
                     const weft_peer *peers, unsigned peers_count, const weft_group_fsm *fsm,
                     weft_group **out, weft_err *err) {
    WEFT_ASSERT(h != NULL && raft_dir != NULL && fsm != NULL && out != NULL);
    WEFT_ASSERT(peers != NULL || peers_count == 0);
    *out = NULL;
    if (h->closing) {
        return weft_err_set(err, WEFT_E_FAILED_PRECONDITION, NULL,
                            "raft host is closing; group %u not started", group_id);
    }
    for (weft_group *g = h->groups; g != NULL; g = g->next) {
        if (g->id == group_id) {
            return weft_err_set(err, WEFT_E_ALREADY_EXISTS, "group_id",
                                "group %u already runs on this node", group_id);
        }
    }
    int rc = group_create(h, group_id, raft_dir, peers, peers_count, fsm, out, err);
    if (rc == 0) host_wake(h);
    return rc;
}
