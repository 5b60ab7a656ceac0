/* guard.h: a raft_io wrapper that keeps libraft 0.15 from counting, or committing, the part of a
 * follower's log that the current leader never checked, and that closes three liveness gaps
 * of that version (at the end).
 *
 * The bug (found by tests/sim/test_raft_sim.c, seed 0x1273c823ba66eec0 before this guard
 * existed; the same two lines are still in upstream canonical/raft's replication.c as we read
 * it, so no upgrade is known to fix it): a follower answers a successful AppendEntries with its whole last stored
 * index, and the leader takes it as the match index (capped only by its own log). A follower
 * that still holds entries of an older term past the request's prevLogIndex + len(entries)
 * therefore "matches" entries it does not have: the new leader counts it, commits its own,
 * different entries at those indexes, and a later leader overwrites them. The follower side is
 * the same mistake: it commits min(leaderCommit, last stored) instead of min(leaderCommit,
 * index of the last new entry) (Raft paper, figure 2). In the simulation a new leader's
 * barrier was "committed" this way and then lost; an acknowledged command can be lost alike.
 *
 * The guard sits between raft and the real raft_io (raft_uv, or raft_fixture's) and fixes
 * both messages, without touching libraft:
 *   - incoming AppendEntries: leader_commit is capped at prevLogIndex + len(entries);
 *   - outgoing successful AppendEntries results: last_log_index is capped at what this
 *     follower has checked against that leader in that term (the answered request's
 *     prevLogIndex + len(entries), or what earlier requests validated), and never below its
 *     own commit index, which is safe once followers commit only validated entries.
 *
 * The same seam carries three liveness fixes (issue 9; guard.c explains each), none of which
 * changes what raft decides, only when it hears or sends:
 *   - incoming RequestVote: passed as disrupt_leader to a follower whose leader has been
 *     silent for the minimum election timeout (thesis 4.2.3), and withheld where granting it
 *     would split the vote between two candidates;
 *   - incoming AppendEntries results at a leader: a rejection from a follower that neither
 *     holds nor installs the snapshot sent to it an election timeout ago names the snapshot's
 *     index, so raft sends a new one instead of waiting install-snapshot-timeout-ms; and the
 *     answer that makes raft retry or send on (a rejection, a finished install) is not held
 *     to raft's one-message-per-heartbeat probe pace. */
#ifndef WEFT_RAFT_GUARD_H
#define WEFT_RAFT_GUARD_H

#include <raft.h>
#include <stdbool.h>
#include <stdint.h>

typedef struct weft_io_guard {
    struct raft_io io;             /* give &io to raft_init (or patch raft->io before start) */
    struct raft_io *inner;         /* the real raft_io; its data points back at the guard */
    raft_io_tick_cb tick_cb;       /* raft's */
    raft_io_recv_cb recv_cb;       /* raft's */
    raft_io_close_cb close_cb;     /* raft's */
    bool close_delivered;          /* raft's close_cb ran; raft_uv 0.15 may fire it again */
    /* What this follower's log is known to share with a leader. */
    raft_term valid_term;          /* term of valid_leader */
    raft_id valid_leader;          /* the leader we checked against */
    raft_index valid_index;        /* our log matches valid_leader's up to here */
    /* The AppendEntries being handled right now (replies sent during it answer it). */
    bool in_append;                /* raft's recv callback is handling one */
    raft_id append_from;           /* its sender */
    raft_term append_term;         /* its term */
    raft_index append_covered;     /* its prevLogIndex + len(entries) */
    bool append_answered;          /* a reply went out while handling it */
    uint64_t results_capped;       /* results whose last_log_index we lowered */
    uint64_t commits_capped;       /* requests whose leader_commit we lowered */
    uint64_t votes_unblocked;      /* vote requests let past a silent leader (guard.c) */
    uint64_t prevotes_withheld;    /* pre-votes withheld to avoid a split vote (guard.c) */
    uint64_t snapshots_resent;     /* snapshots abandoned as lost, so raft sends anew */
    /* Optional (NULL: every message goes to raft). Sees every incoming message before raft
     * does; returning false drops it, which is allowed for RAFT_IO_TIMEOUT_NOW only (it owns
     * no buffers). The host uses it to note which peers it hears from and to refuse
     * leadership while its node hands leadership off at shutdown. */
    bool (*recv_filter)(void *data, const struct raft_message *msg);
    void *recv_filter_data; /* for recv_filter */
    uint64_t timeout_nows_dropped; /* TimeoutNow messages recv_filter refused */
    /* Optional (NULL: only recorded). Called on the loop thread for the first disk failure
     * the inner io reports: an append, truncate, term or vote write, or snapshot put failing
     * with anything but RAFT_CANCELED. libraft 0.15 does not stop after one: raft_uv marks
     * itself errored but never reads the mark, and a follower whose segment preparation
     * failed on a full disk stays a follower that stores nothing again, even once space is
     * back (docs/notes.md). So the host restarts the replica from disk. `why` names the
     * operation and raft_uv's message; it is borrowed for the call. */
    void (*io_failed)(void *data, int status, const char *why);
    void *io_failed_data;       /* for io_failed */
    int io_failure;             /* status of the first disk failure, 0 while none */
    uint64_t io_failures_count; /* disk failures reported by the inner io */
} weft_io_guard;

/* Wraps `inner` (which must outlive the guard). After this, raft_init(r, &g->io, ...) or, for
 * raft_fixture, r->io = &g->io before raft_start. Sets inner->data to the guard: the inner
 * io's callbacks find the guard there. */
void weft_io_guard_init(weft_io_guard *g, struct raft_io *inner);

#endif
