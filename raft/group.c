/* group.c: one replica of one group: starting raft_uv and raft with explicit settings, the
 * replica's lifecycle (stop and restart from disk after a storage failure, close), and its
 * role as the rest of weft sees it. Each of the two state machines changes in one setter that
 * asserts the transition (STYLE rule 9). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/statvfs.h>

#include "../proto/log.h"
#include "host_impl.h"

/* ---- Lifecycle ---- */

static const char *life_name(group_life l) {
    static const char *const names[] = {"stopped", "running", "stopping", "closing"};
    WEFT_ASSERT((unsigned)l < WEFT_ARRAY_LEN(names));
    return names[l];
}

static void group_life_set(weft_group *g, group_life next) {
    group_life old = g->life;
    WEFT_ASSERT((old == GROUP_STOPPED && next == GROUP_RUNNING) ||
                (old == GROUP_STOPPED && next == GROUP_STOPPING) ||
                (old == GROUP_STOPPED && next == GROUP_CLOSING) ||
                (old == GROUP_RUNNING && next == GROUP_STOPPING) ||
                (old == GROUP_RUNNING && next == GROUP_CLOSING) ||
                (old == GROUP_STOPPING && next == GROUP_STOPPED) ||
                (old == GROUP_STOPPING && next == GROUP_CLOSING));
    /* Running means raft is open and started; stopping means its close is under way. */
    WEFT_ASSERT(next != GROUP_RUNNING || g->raft_open);
    WEFT_ASSERT(next != GROUP_STOPPING || g->raft_open);
    WEFT_ASSERT(next != GROUP_STOPPED || !g->raft_open);
    WEFT_LOGF(WEFT_LOG_INFO, g->id, "replica %s -> %s", life_name(old), life_name(next));
    g->life = next;
}

/* ---- Roles ---- */

static bool role_is_leader(weft_role r) {
    return r == WEFT_ROLE_LEADER_PENDING || r == WEFT_ROLE_LEADER_READY;
}

/* Roles are observed once per loop turn, so raft may have passed through states we never saw
 * (follower -> candidate -> leader within one turn): those skips are legal here. */
static bool role_transition_legal(weft_role old, weft_role next) {
    if (old == next) return false;
    if (next == WEFT_ROLE_STOPPED) return true;
    switch (old) {
    case WEFT_ROLE_STOPPED:
    case WEFT_ROLE_FOLLOWER:
    case WEFT_ROLE_CANDIDATE:
        return next != WEFT_ROLE_LEADER_READY;
    case WEFT_ROLE_LEADER_PENDING:
        return true;
    case WEFT_ROLE_LEADER_READY:
        return next == WEFT_ROLE_FOLLOWER || next == WEFT_ROLE_CANDIDATE;
    }
    return false;
}

uint64_t group_leader_hint(weft_group *g) {
    if (!g->raft_open) return 0;
    raft_id id = 0;
    const char *address = NULL;
    raft_leader(&g->raft, &id, &address);
    return id;
}

void group_role_set(weft_group *g, weft_role next) {
    weft_role old = g->role;
    WEFT_ASSERT(role_transition_legal(old, next));
    uint64_t term = g->raft_open ? g->raft.current_term : 0;
    if (next == WEFT_ROLE_LEADER_PENDING) {
        WEFT_ASSERT(g->life == GROUP_RUNNING && raft_state(&g->raft) == RAFT_LEADER);
        WEFT_ASSERT(g->leader_term == term && !g->barrier_applied);
    }
    if (next == WEFT_ROLE_LEADER_READY) {
        /* raft#220: nothing is served before our own term's barrier applied. */
        WEFT_ASSERT(g->barrier_applied && g->leader_term == term);
        WEFT_ASSERT(raft_state(&g->raft) == RAFT_LEADER);
    }
    g->role = next;
    if (role_is_leader(old) && !role_is_leader(next)) {
        g->leader_term = 0;
        g->barrier_applied = false;
    }
    if (old == WEFT_ROLE_LEADER_READY) {
        group_queue_fail(g, weft_role_name(next));
        group_reads_fail(g, -WEFT_E_NOT_LEADER);
    }
    WEFT_ASSERT(next == WEFT_ROLE_LEADER_READY || (g->queue_count == 0 && g->reads_count == 0));
    WEFT_LOGF(WEFT_LOG_INFO, g->id, "role %s -> %s (term %llu)", weft_role_name(old),
              weft_role_name(next), (unsigned long long)term);
    if (g->fsm->role_changed != NULL) g->fsm->role_changed(g->fsm->ctx, old, next, term);
}

/* ---- Starting raft ---- */

static int group_raft_err(weft_group *g, const char *what, int rv, const char *msg,
                          weft_err *err) {
    return weft_err_set(err, WEFT_E_INTERNAL, NULL,
                        "group %u: %s on %s failed: %s (%s); check the directory exists, is "
                        "writable and holds this group's log only",
                        g->id, what, g->dir, raft_strerror(rv), msg);
}

static void group_raft_configure(weft_group *g) {
    const weft_raft_opts *o = &g->h->opts;
    /* Every value set explicitly: 0.15's defaults are not ours (notes). */
    /* libraft randomizes over [base, 2 base]: the configured timeout is the upper end. */
    raft_set_election_timeout(&g->raft, o->election_timeout_ms / WEFT_RAFT_ELECTION_BASE_DIVISOR);
    raft_set_heartbeat_timeout(&g->raft, o->heartbeat_timeout_ms);
    raft_set_install_snapshot_timeout(&g->raft, o->install_snapshot_timeout_ms);
    raft_set_snapshot_threshold(&g->raft, o->snapshot_threshold);
    raft_set_snapshot_trailing(&g->raft, o->snapshot_trailing);
    raft_set_pre_vote(&g->raft, o->pre_vote);
}

static int group_bootstrap(weft_group *g, weft_err *err) {
    struct raft_configuration conf;
    raft_configuration_init(&conf);
    int rv = 0;
    for (unsigned i = 0; i < g->peers_count && rv == 0; i++) {
        rv = raft_configuration_add(&conf, g->peers[i].id, g->peers[i].address, RAFT_VOTER);
    }
    if (rv == 0) rv = raft_bootstrap(&g->raft, &conf);
    raft_configuration_close(&conf);
    /* A directory that already holds a log says so; that is the normal restart. */
    if (rv == RAFT_CANTBOOTSTRAP) return 0;
    if (rv != 0) return group_raft_err(g, "raft_bootstrap", rv, raft_errmsg(&g->raft), err);
    WEFT_LOGF(WEFT_LOG_INFO, g->id, "bootstrapped with %u voters", g->peers_count);
    return 0;
}

/* Hands an incarnation to the host; it is released once the loop is quiet (group_io). */
static void group_io_retire(weft_raft_host *h, group_io *gio) {
    WEFT_ASSERT(h != NULL && gio != NULL && gio->next == NULL);
    gio->next = h->retired;
    h->retired = gio;
}

void group_io_free(group_io *gio) {
    WEFT_ASSERT(gio != NULL);
    if (gio->uv_initialised) raft_uv_close(&gio->io);
    weft_raft_transport_free(&gio->transport);
    free(gio);
}

/* The guard saw raft_uv fail a disk write (guard.h): restart the replica from the next poll,
 * never from inside raft's callback, and say what failed and where. */
static void group_io_failed_cb(void *data, int status, const char *why) {
    weft_group *g = data;
    WEFT_ASSERT(g != NULL && status != 0 && why != NULL);
    if (!g->restart_wanted) {
        snprintf(g->restart_why, sizeof g->restart_why, "%s, in %s", why, g->dir);
        g->restart_wanted = true;
    }
    host_wake(g->h);
}

static int group_raft_init(weft_group *g, weft_err *err) {
    weft_raft_host *h = g->h;
    WEFT_ASSERT(g->gio == NULL);
    group_io *gio = calloc(1, sizeof *gio);
    if (gio == NULL) return weft_err_set(err, WEFT_E_RESOURCE_EXHAUSTED, "", "out of memory");
    int rc = weft_raft_transport_init(&gio->transport, h->listener, g->id, err);
    if (rc != 0) {
        free(gio);
        return rc;
    }
    int rv = raft_uv_init(&gio->io, h->loop, g->dir, &gio->transport);
    if (rv != 0) {
        rc = group_raft_err(g, "raft_uv_init", rv, gio->io.errmsg, err);
        group_io_retire(h, gio);
        return rc;
    }
    gio->uv_initialised = true;
    /* A corrupt tail must stop us, not silently drop entries (notes: auto-recovery). */
    raft_uv_set_auto_recovery(&gio->io, false);
    raft_uv_set_segment_size(&gio->io, h->opts.segment_bytes);
    /* raft talks to raft_uv through the guard: libraft must not count or commit a
     * follower's unchecked log suffix (guard.h). */
    weft_io_guard_init(&gio->guard, &gio->io);
    gio->guard.recv_filter = host_recv_filter;
    gio->guard.recv_filter_data = h;
    gio->guard.io_failed = group_io_failed_cb;
    gio->guard.io_failed_data = g;
    memset(&g->raft, 0, sizeof g->raft);
    rv = raft_init(&g->raft, &gio->guard.io, &g->adapter.raft_fsm, h->opts.node_id, h->address);
    if (rv != 0) {
        rc = group_raft_err(g, "raft_init", rv, raft_errmsg(&g->raft), err);
        group_io_retire(h, gio);
        return rc;
    }
    g->gio = gio;
    g->raft.data = g;
    weft_fsm_adapter_bind(&g->adapter, &g->raft);
    g->raft_open = true;
    return 0;
}

/* Brings raft up on the group's directory. On failure with raft_open set, raft_close must
 * follow (raft_uv holds resources only its close releases). */
static int group_open(weft_group *g, weft_err *err) {
    WEFT_ASSERT(g->life == GROUP_STOPPED && !g->raft_open);
    WEFT_ASSERT(g->queue_count == 0 && g->inflight_count == 0);
    WEFT_ASSERT(g->reads_count == 0 && g->entries_inflight == 0);
    weft_fsm_adapter_reset(&g->adapter);
    g->leader_term = 0;
    g->barrier_pending = false;
    g->barrier_applied = false;
    g->restart_wanted = false;
    g->restart_why[0] = '\0';
    g->transfer_pending = false;
    int rc = group_raft_init(g, err);
    if (rc != 0) return rc;
    group_raft_configure(g);
    rc = group_bootstrap(g, err);
    if (rc != 0) return rc;
    int rv = raft_start(&g->raft);
    if (rv != 0) return group_raft_err(g, "raft_start", rv, raft_errmsg(&g->raft), err);
    group_life_set(g, GROUP_RUNNING);
    WEFT_LOGF(WEFT_LOG_INFO, g->id, "raft started: last index %llu, applied %llu, term %llu",
              (unsigned long long)raft_last_index(&g->raft),
              (unsigned long long)raft_last_applied(&g->raft),
              (unsigned long long)g->raft.current_term);
    return 0;
}

/* ---- Stopping, restarting, closing ---- */

static void group_maybe_free(weft_group *g) {
    if (g->life != GROUP_CLOSING || g->raft_open || !g->timer_closed) return;
    WEFT_ASSERT(g->queue_count == 0 && g->inflight_count == 0);
    weft_raft_host *h = g->h;
    if (g->prev) g->prev->next = g->next;
    else h->groups = g->next;
    if (g->next) g->next->prev = g->prev;
    WEFT_ASSERT(h->groups_count > 0);
    h->groups_count--;
    WEFT_LOGF(WEFT_LOG_INFO, g->id, "replica closed after %llu restarts",
              (unsigned long long)g->restarts_count);
    /* Not freed here: raft_uv may still call back into this group's raft (group_io). */
    g->prev = NULL;
    g->next = h->dead;
    h->dead = g;
    host_group_freed(h);
}

static void group_timer_close_cb(uv_handle_t *handle) {
    weft_group *g = handle->data;
    g->timer_closed = true;
    group_maybe_free(g);
}

static void group_restart_cb(uv_timer_t *t);

static void group_restart_arm(weft_group *g) {
    WEFT_ASSERT(g->life == GROUP_STOPPED);
    uv_timer_start(&g->restart_timer, group_restart_cb, g->h->opts.restart_delay_ms, 0);
}

/* raft_close's callback: the close order of the notes, raft -> raft_uv -> transport. */
static void group_raft_close_cb(struct raft *r) {
    weft_group *g = r->data;
    WEFT_ASSERT(g->raft_open && &g->raft == r);
    /* raft failed every request of its leadership while closing: nothing can be in flight. */
    WEFT_ASSERT(g->queue_count == 0 && g->inflight_count == 0 && !g->barrier_pending);
    WEFT_ASSERT(g->reads_count == 0 && g->entries_inflight == 0);
    group_io_retire(g->h, g->gio);
    g->gio = NULL;
    g->raft_open = false;
    if (g->life == GROUP_STOPPING) {
        group_life_set(g, GROUP_STOPPED);
        group_restart_arm(g);
        return;
    }
    WEFT_ASSERT(g->life == GROUP_CLOSING);
    group_maybe_free(g);
}

static void group_raft_close(weft_group *g) {
    WEFT_ASSERT(g->raft_open);
    raft_close(&g->raft, group_raft_close_cb);
}

/* Stops a replica to restart it from disk (STYLE rule 10: never retry in place). */
static void group_stop(weft_group *g, const char *why) {
    WEFT_ASSERT(g->life == GROUP_RUNNING);
    WEFT_LOGF(WEFT_LOG_ERROR, g->id, "stopping replica: %s; restarting from disk in %u ms", why,
              g->h->opts.restart_delay_ms);
    if (g->role != WEFT_ROLE_STOPPED) group_role_set(g, WEFT_ROLE_STOPPED);
    group_life_set(g, GROUP_STOPPING);
    g->restart_wanted = false;
    g->restart_why[0] = '\0';
    g->space_wait_logged = false;
    group_raft_close(g);
}

/* Free bytes for an unprivileged writer on the file system of `dir`, or UINT64_MAX when it
 * cannot be told (a restart is then not held back). */
static uint64_t group_dir_free_bytes(const char *dir) {
    struct statvfs st;
    if (statvfs(dir, &st) != 0) return UINT64_MAX;
    return (uint64_t)st.f_bavail * (uint64_t)st.f_frsize;
}

/* A restart on a full disk fails again at once, or worse starts a raft that cannot store an
 * entry: wait for disk-free-bytes-min first, and say so once. */
static bool group_restart_has_space(weft_group *g) {
    uint64_t min_bytes = g->h->opts.disk_free_bytes_min;
    if (min_bytes == 0) return true;
    uint64_t free_bytes = group_dir_free_bytes(g->dir);
    if (free_bytes >= min_bytes) {
        if (g->space_wait_logged) {
            WEFT_LOGF(WEFT_LOG_WARN, g->id, "%s has %llu bytes free again: restarting the replica",
                      g->dir, (unsigned long long)free_bytes);
        }
        return true;
    }
    if (!g->space_wait_logged) {
        WEFT_LOGF(WEFT_LOG_ERROR, g->id,
                  "replica waits to restart: %s has %llu bytes free, under disk-free-bytes-min "
                  "(%llu); free space on that file system and it restarts by itself",
                  g->dir, (unsigned long long)free_bytes, (unsigned long long)min_bytes);
        g->space_wait_logged = true;
    }
    return false;
}

static void group_restart_cb(uv_timer_t *t) {
    weft_group *g = t->data;
    WEFT_ASSERT(g->life == GROUP_STOPPED);
    /* The host began closing after the timer was armed, and group_close has not run yet (it
     * runs from the idle handle, after this loop turn's timers): it stays stopped. */
    if (g->h->closing) return;
    if (!group_restart_has_space(g)) {
        group_restart_arm(g);
        return;
    }
    weft_err err;
    weft_err_clear(&err);
    int rc = g->fsm->reopen != NULL ? g->fsm->reopen(g->fsm->ctx, &err) : 0;
    if (rc == 0) rc = group_open(g, &err);
    if (rc == 0) {
        g->restarts_count++;
        host_wake(g->h);
        return;
    }
    WEFT_LOGF(WEFT_LOG_ERROR, g->id, "replica restart failed: %s; trying again in %u ms",
              err.message, g->h->opts.restart_delay_ms);
    if (g->raft_open) {
        group_life_set(g, GROUP_STOPPING);
        group_raft_close(g);
    } else {
        group_restart_arm(g);
    }
}

bool group_is_closing(const weft_group *g) { return g->life == GROUP_CLOSING; }

void group_close(weft_group *g) {
    WEFT_ASSERT(g->life != GROUP_CLOSING);
    group_life old = g->life;
    if (g->role != WEFT_ROLE_STOPPED) group_role_set(g, WEFT_ROLE_STOPPED);
    group_life_set(g, GROUP_CLOSING);
    /* A stopping replica's raft is already closing; a stopped one may hold a half-open raft
     * from a failed start. */
    if (old != GROUP_STOPPING && g->raft_open) group_raft_close(g);
    uv_timer_stop(&g->restart_timer);
    uv_close((uv_handle_t *)&g->restart_timer, group_timer_close_cb);
}

/* The adapter saw a storage failure inside raft's apply path: restart from the check, never
 * from inside raft. */
static void group_failed_cb(void *data, int code) {
    weft_group *g = data;
    (void)code;
    g->restart_wanted = true;
    host_wake(g->h);
}

/* ---- The per-turn poll ---- */

static void group_poll_leader(weft_group *g, uint64_t term) {
    if (role_is_leader(g->role) && g->leader_term != term) {
        /* Lost and regained leadership between two turns: the old barrier means nothing. */
        group_role_set(g, WEFT_ROLE_FOLLOWER);
    }
    if (!role_is_leader(g->role)) {
        g->leader_term = term;
        g->barrier_applied = false;
        group_role_set(g, WEFT_ROLE_LEADER_PENDING);
    }
    /* raft_barrier is refused while a transfer is under way (host.h); after it, try again. */
    if (g->role == WEFT_ROLE_LEADER_PENDING && !g->barrier_pending && !g->barrier_applied &&
        !g->transfer_pending) {
        group_leader_barrier(g);
    }
    if (g->role == WEFT_ROLE_LEADER_PENDING && g->barrier_applied) {
        group_role_set(g, WEFT_ROLE_LEADER_READY);
    }
}

void group_poll(weft_group *g) {
    if (g->life != GROUP_RUNNING) return;
    if (g->restart_wanted) {
        group_stop(g, g->restart_why[0] != '\0' ? g->restart_why : "storage failure in apply");
        return;
    }
    int state = raft_state(&g->raft);
    uint64_t term = g->raft.current_term;
    switch (state) {
    case RAFT_LEADER:
        group_poll_leader(g, term);
        return;
    case RAFT_FOLLOWER:
        if (g->role != WEFT_ROLE_FOLLOWER) group_role_set(g, WEFT_ROLE_FOLLOWER);
        return;
    case RAFT_CANDIDATE:
        if (g->role != WEFT_ROLE_CANDIDATE) group_role_set(g, WEFT_ROLE_CANDIDATE);
        return;
    default:
        /* Only an error takes a started raft to UNAVAILABLE (e.g. a failed apply on a
         * follower): it never recovers by itself, so restart it. */
        group_stop(g, "raft became unavailable");
        return;
    }
}

/* ---- Creation and getters ---- */

static int group_peers_check(weft_raft_host *h, const weft_peer *peers, unsigned n,
                             weft_err *err) {
    if (n > WEFT_RAFT_PEERS_MAX) {
        return weft_err_set(err, WEFT_E_INVALID_ARGUMENT, "peers",
                            "%u peers exceed WEFT_RAFT_PEERS_MAX (%u)", n, WEFT_RAFT_PEERS_MAX);
    }
    bool self = n == 0;
    for (unsigned i = 0; i < n; i++) {
        if (peers[i].id == 0 || strnlen(peers[i].address, sizeof peers[i].address) == 0 ||
            strnlen(peers[i].address, sizeof peers[i].address) == sizeof peers[i].address) {
            return weft_err_set(err, WEFT_E_INVALID_ARGUMENT, "peers",
                                "peer %u needs an id > 0 and an address", i);
        }
        for (unsigned j = 0; j < i; j++) {
            if (peers[j].id == peers[i].id) {
                return weft_err_set(err, WEFT_E_INVALID_ARGUMENT, "peers",
                                    "peer id %llu appears twice",
                                    (unsigned long long)peers[i].id);
            }
        }
        if (peers[i].id == h->opts.node_id) self = true;
    }
    if (!self) {
        return weft_err_set(err, WEFT_E_INVALID_ARGUMENT, "peers",
                            "peers must include this node (id %llu)",
                            (unsigned long long)h->opts.node_id);
    }
    return 0;
}

static void group_link(weft_raft_host *h, weft_group *g) {
    g->next = h->groups;
    if (h->groups) h->groups->prev = g;
    h->groups = g;
    h->groups_count++;
}

int group_create(weft_raft_host *h, uint32_t group_id, const char *raft_dir,
                 const weft_peer *peers, unsigned peers_count, const weft_group_fsm *fsm,
                 weft_group **out, weft_err *err) {
    int rc = group_peers_check(h, peers, peers_count, err);
    if (rc != 0) return rc;
    if (strlen(raft_dir) >= WEFT_RAFT_DIR_BYTES_MAX) {
        return weft_err_set(err, WEFT_E_INVALID_ARGUMENT, "raft_dir",
                            "raft directory path longer than %u bytes", WEFT_RAFT_DIR_BYTES_MAX);
    }
    weft_group *g = calloc(1, sizeof *g);
    if (g == NULL) {
        return weft_err_set(err, WEFT_E_RESOURCE_EXHAUSTED, NULL, "out of memory for group");
    }
    rc = weft_fsm_adapter_init(&g->adapter, fsm, group_id, err);
    if (rc != 0) {
        free(g);
        return rc;
    }
    g->h = h;
    g->id = group_id;
    g->fsm = fsm;
    snprintf(g->dir, sizeof g->dir, "%s", raft_dir);
    if (peers_count == 0) {
        g->peers[0].id = h->opts.node_id;
        snprintf(g->peers[0].address, sizeof g->peers[0].address, "%s", h->address);
        g->peers_count = 1;
    } else {
        memcpy(g->peers, peers, peers_count * sizeof *peers);
        g->peers_count = peers_count;
    }
    g->adapter.failed_cb = group_failed_cb;
    g->adapter.failed_data = g;
    g->life = GROUP_STOPPED;
    g->role = WEFT_ROLE_STOPPED;
    uv_timer_init(h->loop, &g->restart_timer);
    g->restart_timer.data = g;
    group_link(h, g);
    rc = group_open(g, err);
    if (rc != 0) {
        /* The caller gets nothing; the group frees itself once its handles have closed. */
        group_close(g);
        return rc;
    }
    *out = g;
    return 0;
}

weft_role weft_group_role(const weft_group *g) { return g->role; }

uint64_t weft_group_term(const weft_group *g) { return g->raft_open ? g->raft.current_term : 0; }

uint64_t weft_group_leader_id(const weft_group *g) {
    /* raft_leader() says 0 while a leader transfers its leadership; it still leads. */
    if (g->raft_open && raft_state((struct raft *)&g->raft) == RAFT_LEADER) {
        return g->h->opts.node_id;
    }
    return group_leader_hint((weft_group *)g);
}

uint64_t weft_group_match_index(const weft_group *g, uint64_t id) {
    if (!g->raft_open || raft_state((struct raft *)&g->raft) != RAFT_LEADER) return 0;
    const struct raft_configuration *conf = &g->raft.configuration;
    for (unsigned i = 0; i < conf->n; i++) {
        if (conf->servers[i].id == id && id != g->h->opts.node_id) {
            return g->raft.leader_state.progress[i].match_index;
        }
    }
    return 0;
}

bool weft_group_transferring(const weft_group *g) { return g->transfer_pending; }

uint64_t weft_group_commit_index(const weft_group *g) {
    return g->raft_open ? g->raft.commit_index : 0;
}

uint64_t weft_group_applied_index(const weft_group *g) {
    return g->raft_open ? raft_last_applied((struct raft *)&g->raft) : 0;
}

uint64_t weft_group_last_index(const weft_group *g) {
    return g->raft_open ? raft_last_index((struct raft *)&g->raft) : 0;
}

uint32_t weft_group_id(const weft_group *g) { return g->id; }

void group_free_dead(weft_group *g) {
    WEFT_ASSERT(g != NULL && g->life == GROUP_CLOSING && !g->raft_open && g->gio == NULL);
    weft_fsm_adapter_close(&g->adapter);
    free(g);
}
