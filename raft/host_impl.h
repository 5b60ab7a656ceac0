/* host_impl.h: the structures behind host.h's opaque types, shared by host.c (host lifecycle
 * and the per-loop-turn poll), group.c (replica lifecycle and roles) and propose.c (proposals,
 * batches, barriers, transfers). Not for use outside raft/. */
#ifndef WEFT_RAFT_HOST_IMPL_H
#define WEFT_RAFT_HOST_IMPL_H

#include <limits.h>

#include "guard.h"
#include "host.h"
#include "transport.h"

/* Bytes of a group's raft directory path, NUL included (raft_uv keeps its own copy). */
#define WEFT_RAFT_DIR_BYTES_MAX 1024u
/* Shortest segment raft_uv should pre-allocate: a few blocks, so an entry fits. */
#define WEFT_RAFT_SEGMENT_BYTES_MIN (64u * 1024u)
/* Bytes of the text that says why a replica stops: raft_uv's message and the directory. */
#define WEFT_RAFT_WHY_BYTES_MAX (WEFT_RAFT_DIR_BYTES_MAX + 512u)

/* A command waiting for this loop turn's batch. */
typedef struct proposal {
    uint8_t *cmd;            /* malloc'd command bytes (owned) */
    size_t cmd_len;          /* bytes in cmd */
    weft_propose_cb cb;      /* runs exactly once */
    void *data;              /* for cb */
    struct proposal *next;   /* FIFO link */
} proposal;

/* One proposer waiting on an appended entry. */
typedef struct batch_waiter {
    weft_propose_cb cb;      /* runs exactly once */
    void *data;              /* for cb */
} batch_waiter;

/* A linearizable read waiting for the next entry appended after it arrived: once that entry
 * applied, everything committed before the read arrived has applied too. */
typedef struct read_waiter {
    weft_barrier_cb cb;          /* runs exactly once */
    void *data;                  /* for cb */
    struct read_waiter *next;    /* FIFO link */
} read_waiter;

/* An appended entry: one raft_apply, one callback for all its commands and the reads that
 * ride on it. */
typedef struct batch_req {
    struct raft_apply req;     /* must outlive raft's callback; req.data = this */
    weft_group *g;             /* the group it was appended to */
    read_waiter *reads;        /* reads answered once this entry applied */
    bool appended;             /* raft_apply took it: linked in the group's appended list */
    struct batch_req *prev;    /* the group's appended list, in index order */
    struct batch_req *next;
    uint32_t n;                /* commands (waiters) in the entry */
    batch_waiter waiters[];    /* in command order */
} batch_req;

/* A barrier entry appended only to answer reads (no command was waiting). */
typedef struct read_barrier {
    struct raft_barrier req;   /* must outlive raft's callback; req.data = this */
    weft_group *g;             /* the group */
    read_waiter *reads;        /* answered once the barrier applied */
} read_barrier;

/* Entries of ours appended but not yet applied, per group, at most. libraft 0.15 commits only
 * an index equal to the leader's last stored one (replicationQuorum(r, r->last_stored); fixed
 * in 0.17.1 by commit 1996d32, "commit peer match_index instead of leader last_stored"). With a
 * second entry appended before the followers acknowledge the first, the commit index never
 * moves while proposals keep coming: the simulation found that stall. One entry at a time
 * never stalls; batching per turn keeps throughput (group commit). */
#define WEFT_RAFT_ENTRIES_INFLIGHT_MAX 1u

/* Lifecycle of a replica, changed only by group_life_set. */
typedef enum group_life {
    GROUP_STOPPED,   /* raft not running; the restart timer may be armed */
    GROUP_RUNNING,   /* raft started */
    GROUP_STOPPING,  /* raft_close in progress, to restart afterwards */
    GROUP_CLOSING,   /* host close: raft and the timer are closing, then the group is freed */
} group_life;

/* One raft_uv incarnation of a group: the io, the guard in front of it and its transport.
 * libraft 0.15's raft_uv may run its close callback a second time, from a libuv handle close
 * after the first one (uvMaybeFireCloseCb is reachable again), and reads its own memory on the
 * way. So an incarnation is never freed in a callback: raft's close retires it to the host,
 * and weft_raft_host_free releases it after uv_run has drained every callback. A restart gets
 * a fresh incarnation rather than re-initialising memory raft_uv may still touch. */
typedef struct group_io {
    struct raft_io io;                  /* raft_uv */
    weft_io_guard guard;                /* between raft and raft_uv (guard.h) */
    struct raft_uv_transport transport; /* our single-port transport */
    bool uv_initialised;                /* raft_uv_init succeeded: raft_uv_close is owed */
    struct group_io *next;              /* host's retired list */
} group_io;

struct weft_group {
    weft_raft_host *h;                      /* owner */
    uint32_t id;                            /* group (shard) id */
    char dir[WEFT_RAFT_DIR_BYTES_MAX];      /* raft_uv data directory */
    weft_peer peers[WEFT_RAFT_PEERS_MAX];   /* bootstrap configuration */
    unsigned peers_count;                   /* entries in peers */
    const weft_group_fsm *fsm;              /* the state machine (borrowed) */
    weft_fsm_adapter adapter;               /* raft_fsm over fsm */
    struct raft raft;                       /* the raft instance */
    group_io *gio;                          /* the current raft_uv incarnation, or NULL */
    group_life life;                        /* see group_life_set */
    bool raft_open;                         /* raft_init done, close callback not yet run */
    weft_role role;                         /* see group_role_set */
    uint64_t leader_term;                   /* term of our leadership, 0 when not leader */
    bool barrier_pending;                   /* the leader barrier awaits its callback */
    bool barrier_applied;                   /* the leader barrier of leader_term applied */
    struct raft_barrier leader_barrier;     /* the raft#220 barrier (one at a time) */
    proposal *queue_head;                   /* proposals for the next entry */
    proposal *queue_tail;
    uint32_t queue_count;                   /* proposals in the queue */
    uint32_t inflight_count;                /* queued or appended, cb not yet run */
    read_waiter *reads_head;                /* reads waiting for the next entry */
    read_waiter *reads_tail;
    uint32_t reads_count;                   /* reads in that queue */
    uint32_t entries_inflight;              /* our entries appended, cb not yet run */
    struct batch_req *appended_head;        /* those entries, oldest first */
    struct batch_req *appended_tail;
    uint64_t last_leader_time_ms;           /* stamps never go backwards */
    bool restart_wanted;                    /* a storage failure asked for a restart */
    char restart_why[WEFT_RAFT_WHY_BYTES_MAX]; /* what failed, for the stop's log line */
    bool space_wait_logged;                    /* the restart's wait for free space was logged */
    bool transfer_pending;                  /* `transfer` awaits its callback */
    struct raft_transfer transfer;          /* leadership transfer request */
    uv_timer_t restart_timer;               /* delays restarts */
    bool timer_closed;                      /* restart_timer's close callback ran */
    uint64_t restarts_count;                /* replica restarts so far */
    struct weft_group *prev;                /* host's list */
    struct weft_group *next;
};

/* Peers the host remembers hearing from, at most: a cluster has at most WEFT_RAFT_PEERS_MAX
 * members per group and a node few more peers; past it new peers are not remembered. */
#define WEFT_RAFT_HEARD_MAX 64u

/* When the host last received a raft message from one peer (any group). */
typedef struct host_heard {
    uint64_t id;    /* the peer's raft id */
    uint64_t at_ms; /* uv_now of the last message from it */
} host_heard;

struct weft_raft_host {
    uv_loop_t *loop;                        /* the node's loop (borrowed) */
    weft_raft_opts opts;                    /* copied at init */
    weft_raft_listener *listener;           /* the node's raft port */
    char address[WEFT_RAFT_ADDRESS_BYTES_MAX]; /* our raft address as peers dial it */
    uv_check_t check;                       /* polls roles and flushes batches every turn */
    uv_idle_t idle;                         /* running while work waits: poll must not block */
    bool wake_requested;                    /* someone asked for another turn */
    weft_group *groups;                     /* every group not yet closed */
    weft_group *dead;                       /* closed groups, freed by weft_raft_host_free */
    group_io *retired;                      /* closed incarnations, likewise (see group_io) */
    unsigned groups_count;                  /* length of `groups` */
    weft_bytes *scratch;                    /* WEFT_RAFT_BATCH_CMDS_MAX slots for encoding */
    host_heard heard[WEFT_RAFT_HEARD_MAX];  /* last message from each peer */
    unsigned heard_count;                   /* entries used in heard */
    bool refuse_leadership;                 /* drop TimeoutNow (weft_raft_host_refuse_...) */
    char refuse_why[128];                   /* why, for the log line of each one dropped */
    const char *(*stamp_check)(void *data); /* weft_raft_host_set_stamp_check; NULL: none */
    void *stamp_check_data;                 /* for stamp_check */
    uint64_t started_ms;                    /* uv_now at init */
    bool closing;                           /* close was called */
    bool listener_closing;                  /* listener close was called */
    unsigned handles_open;                  /* check, idle; listener counts as one */
    void (*close_cb)(weft_raft_host *h, void *data);
    void *close_data;
};

/* host.c */
void host_wake(weft_raft_host *h);
bool host_recv_filter(void *data, const struct raft_message *msg);
void host_group_freed(weft_raft_host *h);

/* group.c */
int group_create(weft_raft_host *h, uint32_t group_id, const char *raft_dir,
                 const weft_peer *peers, unsigned peers_count, const weft_group_fsm *fsm,
                 weft_group **out, weft_err *err);
void group_poll(weft_group *g);
void group_close(weft_group *g);
bool group_is_closing(const weft_group *g);
/* Releases a closed group / a retired raft_uv incarnation; only from weft_raft_host_free. */
void group_free_dead(weft_group *g);
void group_io_free(group_io *gio);
void group_role_set(weft_group *g, weft_role next);
uint64_t group_leader_hint(weft_group *g);

/* propose.c */
void group_flush(weft_group *g);
void group_queue_fail(weft_group *g, const char *why);
void group_reads_fail(weft_group *g, int code);
bool group_leader_barrier(weft_group *g);

#endif
