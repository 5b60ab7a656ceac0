/* host.h: the multi-raft host. One canonical raft group per shard replica, all on one libuv
 * loop; a single raft port per node; proposals batched per loop turn; the libraft 0.15
 * mitigations (notes/libraft-0.15.md, plus two the simulation found: one entry in flight per
 * group, host_impl.h; the commit guard, guard.h). Knows nothing of workflows: it moves opaque
 * command bytes into the log and hands committed batches to a weft_group_fsm.
 * Threading: every function here runs on the loop thread. */
#ifndef WEFT_RAFT_HOST_H
#define WEFT_RAFT_HOST_H

#include <raft.h>
#include <raft/uv.h>
#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

#include "../proto/base.h"
#include "../proto/reply.h"

/* Raft timing, set explicitly on every group (the notes: never trust 0.15's defaults).
 * The election timeout is the LONGEST a follower waits without hearing a leader before it
 * stands for election: libraft draws each wait from [base, 2 base], so weft gives it base =
 * half the timeout (WEFT_RAFT_ELECTION_BASE_DIVISOR). libraft 0.15 makes a follower that
 * still knows a leader refuse votes until its own timer fires, and lets two candidates split
 * a vote; the guard (guard.h) lets a vote through once the leader has been silent for the
 * base, less a heartbeat (thesis 4.2.3), and settles the pre-vote races that split votes. So
 * a dead leader is replaced within the election timeout plus a tick and a few round trips,
 * whatever the draws (tests/sim/test_failover_sim.c holds every seed to it). The default
 * keeps libraft's waits at 1 to 2 s. */
#define WEFT_RAFT_ELECTION_TIMEOUT_MS_DEFAULT 2000u
#define WEFT_RAFT_ELECTION_BASE_DIVISOR 2u
#define WEFT_RAFT_HEARTBEAT_TIMEOUT_MS_DEFAULT 100u
#define WEFT_RAFT_INSTALL_SNAPSHOT_TIMEOUT_MS_DEFAULT 30000u
#define WEFT_RAFT_SNAPSHOT_THRESHOLD_DEFAULT 1024u
#define WEFT_RAFT_SNAPSHOT_TRAILING_DEFAULT 2048u
/* raft_uv pre-allocates segments; 8 MiB each is too much with many shards. */
#define WEFT_RAFT_SEGMENT_BYTES_DEFAULT (1024u * 1024u)
/* Commands batched into one entry per loop turn, at most. */
#define WEFT_RAFT_BATCH_CMDS_MAX 1024u
/* Bytes batched into one entry, at most (a new entry starts past it). */
#define WEFT_RAFT_BATCH_BYTES_MAX (8u * 1024u * 1024u)
/* Proposals waiting for a group's entry to commit, at most; past it: RESOURCE_EXHAUSTED.
 * Read barriers waiting for an entry have the same bound. */
#define WEFT_RAFT_INFLIGHT_CMDS_MAX 65536u
/* Delay before a replica that hit an I/O error is restarted from disk (opts.restart_delay_ms). */
#define WEFT_RAFT_RESTART_DELAY_MS 1000u
/* Members of one group, at most. Placement makes groups of R <= WEFT_CLUSTER_NODES_MAX voters
 * (node/placement.h); the bound keeps a hostile or mistaken config from building a huge
 * configuration. */
#define WEFT_RAFT_PEERS_MAX 16u

_Static_assert(WEFT_RAFT_HEARTBEAT_TIMEOUT_MS_DEFAULT * 5 <= WEFT_RAFT_ELECTION_TIMEOUT_MS_DEFAULT,
               "heartbeats must come well inside the election timeout (0.15 does not check)");

typedef struct weft_raft_opts {
    uint64_t node_id;                   /* raft server id of this node, > 0 */
    char raft_address[64];              /* "a.b.c.d:port" this node's raft port listens on */
    char cluster_id[64];                /* stamped into every transport preamble */
    unsigned election_timeout_ms;       /* longest wait; raft draws from [1/2x, 1x] */
    unsigned heartbeat_timeout_ms;      /* at most a fifth of the election timeout */
    unsigned install_snapshot_timeout_ms; /* an InstallSnapshot is retried after this */
    unsigned snapshot_threshold;        /* entries between snapshots */
    unsigned snapshot_trailing;         /* entries kept after a snapshot */
    size_t segment_bytes;               /* raft_uv segment size */
    bool pre_vote;                      /* thesis 9.6; default on */
    unsigned restart_delay_ms;          /* storage failure -> replica restart delay */
    uint64_t disk_free_bytes_min;       /* a stopped replica restarts only once its raft
                                         * directory's file system has this much free (0: at
                                         * once): a restart on a full disk fails again, or
                                         * starts a raft that cannot store anything */
} weft_raft_opts;

/* Fills the defaults above; node_id 1, raft_address "127.0.0.1:7400", cluster_id "weft". */
void weft_raft_opts_default(weft_raft_opts *o);

/* Role of a replica as the rest of weft sees it. LEADER_READY only after the barrier proposed
 * on election has applied (notes: raft#220 mitigation): nothing is served before. */
typedef enum weft_role {
    WEFT_ROLE_STOPPED,
    WEFT_ROLE_FOLLOWER,
    WEFT_ROLE_CANDIDATE,
    WEFT_ROLE_LEADER_PENDING,
    WEFT_ROLE_LEADER_READY,
} weft_role;
const char *weft_role_name(weft_role r);

/* The state machine a group drives. All callbacks run on the loop thread, except snapshot. */
typedef struct weft_group_fsm {
    void *ctx;
    /* Apply a committed batch. `replies` has n zeroed slots. Return 0, or negative for a
     * storage failure (the host then stops and restarts the replica). */
    int (*apply)(void *ctx, uint64_t index, uint64_t leader_time_ms, const weft_bytes *cmds,
                 uint32_t n, weft_reply *replies);
    /* A copy of the whole state into *buf (from raft_malloc) and *len. It runs on a libuv
     * threadpool thread, concurrently with apply (and every other callback) on the loop
     * thread, whenever raft's io can run async work (always with raft_uv; the fixture-based
     * simulation calls it on the loop). So it must be thread-safe: it may only read state
     * that apply does not change under it, e.g. through a read transaction of its own.
     * The image may include entries applied after raft decided to snapshot: it must record
     * the applied index of the state it holds, and apply must skip entries at or below the
     * state's applied index (a restore at S' then a replay from raft's S + 1 is then exact).
     * Return 0, or negative: -WEFT_E_INTERNAL stops and restarts the replica, anything else
     * skips this snapshot. */
    int (*snapshot)(void *ctx, void **buf, size_t *len);
    int (*restore)(void *ctx, const void *buf, size_t len); /* buf borrowed */
    void (*role_changed)(void *ctx, weft_role old_role, weft_role new_role, uint64_t term);
    /* Optional (NULL: nothing to do). Called before a replica that hit a storage failure is
     * restarted from disk: reopen what the failure poisoned. A negative return postpones the
     * restart by restart_delay_ms and calls it again. */
    int (*reopen)(void *ctx, weft_err *err);
} weft_group_fsm;

typedef struct weft_raft_host weft_raft_host;
typedef struct weft_group weft_group;

/* A group member: raft id and raft address. */
typedef struct weft_peer {
    uint64_t id;
    char address[64];
} weft_peer;

/* Creates the host and starts the node's single raft listener. `loop` must outlive it.
 * Port 0 in opts->raft_address binds a free port (tests); weft_raft_host_address tells which.
 * Errors: INVALID_ARGUMENT (opts), UNAVAILABLE (the port cannot be bound). */
int weft_raft_host_init(weft_raft_host **out, uv_loop_t *loop, const weft_raft_opts *opts,
                        weft_err *err);
/* The raft address this node listens on and gives its groups; valid until the host is freed. */
const char *weft_raft_host_address(const weft_raft_host *h);
/* The node's raft port, shared by every group: clock probe streams arrive on it too
 * (weft_raft_listener_set_clock, transport.h). Valid until weft_raft_host_free. */
struct weft_raft_listener *weft_raft_host_listener(weft_raft_host *h);
/* Closes every group (raft_close, raft_uv_close, transport), then the listener; `cb` runs
 * once everything is closed. Free the host with weft_raft_host_free only after uv_run has
 * returned (the loop ran dry): libraft 0.15's raft_uv may still call back after its close
 * callback, so memory it may touch is released only then. The groups close from the next loop turn, so this may be called from any
 * callback, a proposer's included; pending proposals and reads are answered (NOT_LEADER, or
 * UNAVAILABLE "outcome unknown" for appended ones). */
void weft_raft_host_close(weft_raft_host *h, void (*cb)(weft_raft_host *h, void *data), void *data);
void weft_raft_host_free(weft_raft_host *h);

/* Starts the replica of group `group_id` with its log in `raft_dir` (must exist), bootstrapping
 * it with `peers` (copied; must include this node's id, or be empty for a single-node group of
 * this node) if the directory is pristine. `fsm` must outlive the group. `*out` stays valid
 * until the host's close callback. On failure nothing is returned and nothing is left to undo.
 * Errors: INVALID_ARGUMENT (peers, dir), ALREADY_EXISTS (group already on this host),
 * FAILED_PRECONDITION (host closing), INTERNAL (raft_uv / raft start failed, message says why). */
int weft_group_start(weft_raft_host *h, uint32_t group_id, const char *raft_dir,
                     const weft_peer *peers, unsigned peers_count, const weft_group_fsm *fsm,
                     weft_group **out, weft_err *err);

weft_role weft_group_role(const weft_group *g);
uint64_t weft_group_term(const weft_group *g);
uint64_t weft_group_leader_id(const weft_group *g);
uint64_t weft_group_commit_index(const weft_group *g);
uint64_t weft_group_applied_index(const weft_group *g);
/* Index of the last entry in the replica's log (appended, maybe not committed). */
uint64_t weft_group_last_index(const weft_group *g);
/* True when the entry at `index`, about to be applied, is one this replica proposed as leader
 * and whose proposers' callbacks will get its replies. False on followers and for entries
 * another leader appended: nobody here reads their replies, so the fsm need not build them. */
bool weft_group_awaits_entry(weft_group *g, uint64_t index);
uint32_t weft_group_id(const weft_group *g);

/* Proposes one command. `cmd` (malloc'd) is transferred on success. The command joins the
 * group's next entry: everything proposed during one loop turn goes into one entry, and while
 * the group's previous entry is still in flight the next one keeps gathering (libraft 0.15
 * stalls commits with two entries in flight, see host_impl.h). `cb` runs exactly once with the
 * command's reply:
 *   - applied: the reply from the fsm (ownership of reply->body passes to cb; reset it or move it);
 *   - NOT_LEADER before it was appended (with leader hint);
 *   - UNAVAILABLE "outcome unknown" (RAFT_LEADERSHIPLOST or shutdown after append).
 * Fails synchronously (cb never runs) with NOT_LEADER when the role is not LEADER_READY, and
 * RESOURCE_EXHAUSTED past WEFT_RAFT_INFLIGHT_CMDS_MAX. */
typedef void (*weft_propose_cb)(void *data, weft_reply *reply);
int weft_group_propose(weft_group *g, uint8_t *cmd, size_t cmd_len, weft_propose_cb cb,
                       void *data, weft_err *err);

/* Linearizable read gate: `cb` runs once every entry committed before now has applied, with
 * status 0, or with a negative code (NOT_LEADER, UNAVAILABLE). The read rides on the next
 * entry appended after the call (a raft_barrier when no command is waiting). Fails
 * synchronously (cb never runs) with NOT_LEADER when the role is not LEADER_READY, and
 * RESOURCE_EXHAUSTED past WEFT_RAFT_INFLIGHT_CMDS_MAX waiting reads. */
typedef void (*weft_barrier_cb)(void *data, int status);
int weft_group_barrier(weft_group *g, weft_barrier_cb cb, void *data, weft_err *err);

/* Leadership transfer (graceful stop, moving leadership to the preferred node): raft_transfer
 * to `to_id` (0: raft picks a voter, an up-to-date one if any). libraft 0.15 (v0.15.0
 * src/client.c, membership.c, tick.c): the leader sends TimeoutNow once the target's log is
 * up to date; the transfer ends when the target is seen leading or after one election
 * timeout, whichever comes first. Meanwhile raft_apply and raft_barrier are refused and
 * raft_leader() reports no leader: this host holds proposals and reads in the group's queue
 * until the transfer ends (propose.c). Errors: NOT_LEADER, INVALID_ARGUMENT (not a voting
 * follower, or no other voter), FAILED_PRECONDITION (a transfer is under way). */
int weft_group_transfer(weft_group *g, uint64_t to_id, weft_err *err);
/* True while a transfer started by weft_group_transfer has not ended. */
bool weft_group_transferring(const weft_group *g);
/* The leader's match index for member `id` (the highest entry it knows `id` stores); 0 when
 * this replica does not lead or `id` is not another member. */
uint64_t weft_group_match_index(const weft_group *g, uint64_t id);

/* uv_now (ms) when the host was created: the moment from which silence from peers counts. */
uint64_t weft_raft_host_started_ms(const weft_raft_host *h);
/* uv_now (ms) when this node last received a raft message from node `id`, in any group;
 * 0 when never. Liveness as raft sees it: leaders heartbeat their followers and followers
 * answer, so two nodes that share a group with a leader on one of them hear from each other
 * every heartbeat. */
uint64_t weft_raft_host_heard_ms(const weft_raft_host *h, uint64_t id);
/* While `why` is not NULL, every group of this host ignores TimeoutNow, the message a leader
 * sends to hand its leadership over, and logs `why` (copied, truncated to 127 bytes) for each
 * one: a node handing its leaderships off before it stops, or whose disk is low, must not be
 * given others meanwhile. NULL accepts transfers again. An election it wins is not refused:
 * the node hands such a leadership on itself (node/cluster.c). */
void weft_raft_host_refuse_leadership(weft_raft_host *h, const char *why);
/* Asked right before a leader stamps an entry with its wall clock (the shard clock, DESIGN
 * section 9): a non-NULL answer (a static reason) fails the waiting proposals with UNAVAILABLE
 * instead of appending them. The node answers whether its clock may stamp (node/clockcheck.c);
 * asking at the stamp itself leaves no moment between a check and the stamp. NULL: no check.
 * `data` must outlive the host. */
void weft_raft_host_set_stamp_check(weft_raft_host *h, const char *(*check)(void *data),
                                    void *data);

/* Entry framing: [version, leader_time_ms, [cmd bytes...]] plus zero padding to 8 bytes,
 * which raft_uv needs (batch.h) (DESIGN section 5). Exposed for the simulation tests, which
 * drive raft_fixture with the same encoding. `cmds` borrowed; *buf from `alloc` on success.
 * Errors: INVALID_ARGUMENT (n outside 1..WEFT_RAFT_BATCH_CMDS_MAX, or a leader time past
 * WEFT_LEADER_TIME_MS_MAX), RESOURCE_EXHAUSTED (a command or the total past
 * WEFT_RAFT_BATCH_BYTES_MAX, or allocation). */
int weft_batch_encode(uint64_t leader_time_ms, const weft_bytes *cmds, uint32_t n, void **buf,
                      size_t *len, void *(*alloc)(size_t));
/* Decodes into `cmds` (caller array of `cap` slots, borrowing from buf: valid while buf is).
 * Strict: exact shape, known version, a leader time no later than WEFT_LEADER_TIME_MS_MAX,
 * counts and lengths within the limits, nothing after the padding. Errors: INVALID_ARGUMENT
 * with a message naming what was wrong. */
int weft_batch_decode(const void *buf, size_t len, uint64_t *leader_time_ms, weft_bytes *cmds,
                      uint32_t cap, uint32_t *n, weft_err *err);

/* ---- The raft_fsm adapter over a weft_group_fsm (the host uses it; so do raft_fixture
 * simulations, which drive raft themselves) ---- */

/* The replies of one applied entry, on their way from apply to the proposer. */
typedef struct weft_applied {
    uint64_t index;        /* raft index of the entry */
    uint32_t n;            /* commands in the entry */
    weft_reply replies[];  /* the fsm's reply to each command */
} weft_applied;

/* Resets every reply and frees the record. NULL is fine. */
void weft_applied_free(weft_applied *a);

/* Per-replica adapter state. raft calls the apply cb of a raft_apply right after fsm->apply for
 * the same entry (leader only): the replies wait in `last` until that cb claims them; an
 * unclaimed record (followers) is freed on the next apply or at close. */
typedef struct weft_fsm_adapter {
    struct raft_fsm raft_fsm;          /* give &raft_fsm to raft_init / raft_fixture_grow */
    const weft_group_fsm *fsm;         /* the state machine driven (borrowed) */
    struct raft *raft;                 /* the instance applying; set by weft_fsm_adapter_bind */
    uint32_t group_id;                 /* for log lines */
    weft_bytes *cmds;                  /* decode scratch, WEFT_RAFT_BATCH_CMDS_MAX slots */
    weft_applied *last;                /* replies of the last applied entry, until claimed */
    uint64_t last_index;               /* index of the last entry given to fsm->apply */
    int failed;                        /* first storage failure (negative), 0 while healthy */
    void (*failed_cb)(void *data, int code); /* told once per failure; the host restarts */
    void *failed_data;                 /* for failed_cb */
    uint64_t snapshots_count;          /* fsm->snapshot calls that succeeded */
    bool snapshot_pending;             /* async: raft took a snapshot not yet finalized (loop) */
    int snapshot_async_rc;             /* async: the copy's result; written by the worker,
                                        * read by finalize on the loop after the work */
    uint64_t restores_count;           /* fsm->restore calls that succeeded */
} weft_fsm_adapter;

/* Prepares `a` (raft_fsm version 3 with snapshot_finalize, so we free snapshot buffers;
 * snapshot_async is set by weft_fsm_adapter_bind when the io can run it: fsm.c explains why a
 * copy taken on a worker while the loop applies is a correct snapshot).
 * `fsm` must outlive the adapter. Errors: RESOURCE_EXHAUSTED. */
int weft_fsm_adapter_init(weft_fsm_adapter *a, const weft_group_fsm *fsm, uint32_t group_id,
                          weft_err *err);
/* Names the raft instance whose raft_last_applied() gives each entry's index, and turns on
 * async snapshots when r->io has async_work with version >= 2 (the guard's io does). Call it
 * after raft_init, with r->io set as raft will use it. */
void weft_fsm_adapter_bind(weft_fsm_adapter *a, struct raft *r);
/* In a raft_apply callback with status 0: takes the replies of that entry (`result` is the
 * callback's result argument). Returns NULL if the entry could not be decoded. The caller owns
 * the record: weft_applied_free. */
weft_applied *weft_fsm_adapter_claim(weft_fsm_adapter *a, void *result);
/* Clears a recorded failure and any unclaimed replies (before restarting the replica). */
void weft_fsm_adapter_reset(weft_fsm_adapter *a);
/* Frees what the adapter holds; raft must be closed. */
void weft_fsm_adapter_close(weft_fsm_adapter *a);

#endif
