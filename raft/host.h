/* host.h: the multi-raft host. One canonical raft group per shard replica, all on one libuv
 * loop; a single raft port per node; proposals batched per loop turn; the libraft 0.15
 * mitigations (notes/libraft-0.15.md). Knows nothing of workflows: it moves opaque command
 * bytes into the log and hands committed batches to a weft_group_fsm. */
#ifndef WEFT_RAFT_HOST_H
#define WEFT_RAFT_HOST_H

#include <raft.h>
#include <raft/uv.h>
#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

#include "../proto/base.h"
#include "../proto/reply.h"

/* Raft timing, set explicitly on every group (the notes: never trust 0.15's defaults). */
#define WEFT_RAFT_ELECTION_TIMEOUT_MS_DEFAULT 1000u
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
/* Proposals waiting for a group's entry to commit, at most; past it: RESOURCE_EXHAUSTED. */
#define WEFT_RAFT_INFLIGHT_CMDS_MAX 65536u
/* Delay before a replica that hit an I/O error is restarted from disk. */
#define WEFT_RAFT_RESTART_DELAY_MS 1000u

_Static_assert(WEFT_RAFT_HEARTBEAT_TIMEOUT_MS_DEFAULT * 5 <= WEFT_RAFT_ELECTION_TIMEOUT_MS_DEFAULT,
               "heartbeats must come well inside the election timeout (0.15 does not check)");

typedef struct weft_raft_opts {
    uint64_t node_id;                   /* raft server id of this node, > 0 */
    char raft_address[64];              /* "a.b.c.d:port" this node's raft port listens on */
    char cluster_id[64];                /* stamped into every transport preamble */
    unsigned election_timeout_ms;
    unsigned heartbeat_timeout_ms;
    unsigned install_snapshot_timeout_ms;
    unsigned snapshot_threshold;        /* entries between snapshots */
    unsigned snapshot_trailing;         /* entries kept after a snapshot */
    size_t segment_bytes;               /* raft_uv segment size */
    bool pre_vote;
} weft_raft_opts;

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

/* The state machine a group drives. All callbacks run on the loop thread. */
typedef struct weft_group_fsm {
    void *ctx;
    /* Apply a committed batch. `replies` has n zeroed slots. Return 0, or negative for a
     * storage failure (the host then stops and restarts the replica). */
    int (*apply)(void *ctx, uint64_t index, uint64_t leader_time_ms, const weft_bytes *cmds,
                 uint32_t n, weft_reply *replies);
    int (*snapshot)(void *ctx, void **buf, size_t *len);   /* buf from raft_malloc */
    int (*restore)(void *ctx, const void *buf, size_t len); /* buf borrowed */
    void (*role_changed)(void *ctx, weft_role old_role, weft_role new_role, uint64_t term);
} weft_group_fsm;

typedef struct weft_raft_host weft_raft_host;
typedef struct weft_group weft_group;

/* A group member: raft id and raft address. */
typedef struct weft_peer {
    uint64_t id;
    char address[64];
} weft_peer;

/* Creates the host and starts the node's single raft listener. `loop` must outlive it. */
int weft_raft_host_init(weft_raft_host **out, uv_loop_t *loop, const weft_raft_opts *opts,
                        weft_err *err);
/* Closes every group (raft_close, raft_uv_close, transport), then the listener; `cb` runs
 * once everything is closed and the host may be freed by weft_raft_host_free. */
void weft_raft_host_close(weft_raft_host *h, void (*cb)(weft_raft_host *h, void *data), void *data);
void weft_raft_host_free(weft_raft_host *h);

/* Starts the replica of group `group_id` with its log in `raft_dir` (must exist), bootstrapping
 * it with `peers` if the directory is pristine. `fsm` must outlive the group. */
int weft_group_start(weft_raft_host *h, uint32_t group_id, const char *raft_dir,
                     const weft_peer *peers, unsigned peers_count, const weft_group_fsm *fsm,
                     weft_group **out, weft_err *err);

weft_role weft_group_role(const weft_group *g);
uint64_t weft_group_term(const weft_group *g);
uint64_t weft_group_leader_id(const weft_group *g);
uint64_t weft_group_commit_index(const weft_group *g);
uint64_t weft_group_applied_index(const weft_group *g);
uint32_t weft_group_id(const weft_group *g);

/* Proposes one command. `cmd` (malloc'd) is transferred on success. The command joins this loop
 * turn's batch for the group; `cb` runs exactly once with the command's reply:
 *   - applied: the reply from the fsm (ownership of reply->body passes to cb; reset it or move it);
 *   - NOT_LEADER before it was appended (with leader hint);
 *   - UNAVAILABLE "outcome unknown" (RAFT_LEADERSHIPLOST or shutdown after append).
 * Fails synchronously (cb never runs) with NOT_LEADER when the role is not LEADER_READY, and
 * RESOURCE_EXHAUSTED past WEFT_RAFT_INFLIGHT_CMDS_MAX. */
typedef void (*weft_propose_cb)(void *data, weft_reply *reply);
int weft_group_propose(weft_group *g, uint8_t *cmd, size_t cmd_len, weft_propose_cb cb,
                       void *data, weft_err *err);

/* Linearizable read gate: `cb` runs once every entry committed before now has applied (a
 * raft_barrier), with status 0, or with a negative code (NOT_LEADER, UNAVAILABLE). */
typedef void (*weft_barrier_cb)(void *data, int status);
int weft_group_barrier(weft_group *g, weft_barrier_cb cb, void *data, weft_err *err);

/* Leadership transfer for graceful shutdown (issue 4 uses it). */
int weft_group_transfer(weft_group *g, uint64_t to_id, weft_err *err);

/* Entry framing: [version, leader_time_ms, [cmd bytes...]] (DESIGN section 5). Exposed for the
 * simulation tests, which drive raft_fixture with the same encoding. */
int weft_batch_encode(uint64_t leader_time_ms, const weft_bytes *cmds, uint32_t n, void **buf,
                      size_t *len, void *(*alloc)(size_t));
/* Decodes into `cmds` (caller array of `cap` slots, borrowing from buf). */
int weft_batch_decode(const void *buf, size_t len, uint64_t *leader_time_ms, weft_bytes *cmds,
                      uint32_t cap, uint32_t *n, weft_err *err);

/* The raft_fsm adapter over a weft_group_fsm, for raft_fixture simulations. */
void weft_fsm_adapter_init(struct raft_fsm *rf, const weft_group_fsm *fsm);

#endif
