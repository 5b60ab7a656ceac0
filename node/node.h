/* node.h: the weftd process as one object: config, data dir, raft host, shard replicas, client
 * server, waiters, and its lifecycle (start, run, drain, stop). Internal to node/. */
#ifndef WEFT_NODE_NODE_H
#define WEFT_NODE_NODE_H

#include <limits.h>
#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

#include "../proto/msg.h"
#include "../proto/reply.h"
#include "../raft/host.h"
#include "../shards/shard.h"
#include "config.h"
#include "datadir.h"
#include "pollseen.h"
#include "runstate.h"

typedef struct weft_node weft_node;
typedef struct weft_conn weft_conn;
typedef struct weft_req weft_req;
typedef struct weft_replica weft_replica;
typedef struct weft_forwarder weft_forwarder;

/* Read waiters per replica are hashed by run key into this many lists. */
#define WEFTD_READ_WAIT_BUCKETS 64u
/* Poll waiters are hashed by (task queue, kind) into this many lists. */
#define WEFTD_POLL_BUCKETS 1024u

/* A run that changed on a replica, queued for the pump (waits.c). */
typedef struct weft_wake {
    uint32_t shard;   /* replica index */
    uint64_t run_key; /* the run whose waiters re-run their read */
    bool closed;      /* the run closed: GetResult waiters wake only then */
} weft_wake;

/* ---- The timer gate of one replica (DESIGN section 9; timergate.c) ---- */
typedef struct weft_timergate {
    weft_replica *replica; /* owner */
    uv_timer_t timer;      /* armed for the earliest due timer while leading */
    bool armed;            /* timer started */
    uint64_t armed_at_ms;  /* wall-clock due time the timer is armed for */
    bool firing;           /* a FIRE_TIMERS proposal is in flight: no re-arm until it applies */
    bool closed;           /* handle closed at shutdown */
} weft_timergate;

/* ---- One shard replica: the shard state machine bound to its raft group (replica.c) ---- */
struct weft_replica {
    weft_node *node;     /* owner */
    uint32_t shard_id;   /* index in node->replicas */
    bool hosted;         /* placement puts a replica of this shard on this node (placement.h);
                          * false: no shard, no group, requests answered with a leader hint */
    uint64_t preferred_leader; /* node id that should lead this shard (DESIGN section 5) */
    uint64_t rebalance_at_ms;  /* monotonic ms of the last move towards preferred_leader */
    weft_shard *shard;   /* the state machine; NULL before open and after close */
    weft_group *group;   /* its raft group; NULL before start */
    weft_group_fsm fsm;  /* callbacks raft drives (apply, snapshot, restore, roles) */
    weft_role role;      /* last role the host reported */
    uint64_t term;       /* term of the last role report */
    weft_timergate gate; /* leader-only timer gate */
    bool restart_asked;  /* a stopped shard was noticed and a restart is under way */
    weft_req *waits[WEFTD_READ_WAIT_BUCKETS]; /* GetResult/GetHistory waiters by run key */
    uint64_t waits_count;                     /* entries across the buckets */
};

/* ---- Long-poll waiters for tasks (poll.c) ---- */
typedef struct weft_poll_bucket {
    weft_req *head; /* FIFO of waiting polls (oldest first); mixed queues hash together */
    weft_req *tail;
} weft_poll_bucket;

typedef struct weft_pollers {
    weft_poll_bucket buckets[WEFTD_POLL_BUCKETS]; /* by hash of (task queue, kind) */
    uint64_t waiting_count;                       /* polls parked across the buckets */
    bool dirty[WEFTD_POLL_BUCKETS];          /* a task became ready for a queue of this bucket */
    uint32_t dirty_list[WEFTD_POLL_BUCKETS]; /* dirty bucket indexes, in order of arrival */
    uint32_t dirty_count;                    /* entries in dirty_list */
    uint32_t rr_next_shard; /* round-robin start for the next poll (DESIGN section 8) */
} weft_pollers;

/* What this node knows of its own wall clock (clockcheck.c). */
typedef enum weft_clock_state {
    WEFTD_CLOCK_UNCHECKED, /* not yet compared with its peers': leads nothing */
    WEFTD_CLOCK_GOOD,      /* within --max-clock-offset-ms of its peers (or no check) */
    WEFTD_CLOCK_OFF,       /* off from a majority of its peers: leads nothing */
} weft_clock_state;

/* Bytes of the clock's health text (a line naming each peer's offset). */
#define WEFTD_CLOCK_HEALTH_BYTES_MAX 1024u

typedef enum weft_node_state {
    WEFT_NODE_STARTING, /* opening the data dir, shards and groups */
    WEFT_NODE_RUNNING,  /* serving */
    WEFT_NODE_DRAINING, /* signal received: no new work, waiting for proposals in flight */
    WEFT_NODE_HANDING_OFF, /* moving the leaderships it holds to other nodes (cluster.c) */
    WEFT_NODE_CLOSING,  /* raft host, shards and connections closing */
    WEFT_NODE_STOPPED,  /* everything closed; the loop can end */
} weft_node_state;

struct weft_node {
    uv_loop_t *loop;             /* the one loop thread (DESIGN section 4) */
    weft_config cfg;             /* settings after flags and file */
    weft_datadir datadir;        /* lock, identity, paths */
    weft_runstate runstate;      /* boot id and clean-stop marker: may envs skip fsync */
    weft_store_opts store_opts;  /* every shard store's mode, decided from runstate */
    uint32_t shard_flush_failures; /* shard stores whose close could not flush (no clean stop) */
    bool served;                 /* reached RUNNING: a failed stop is not a failed start */
    weft_node_state state;       /* changed only by weft_node_set_state */
    weft_raft_host *host;        /* every raft group; freed after the loop ends (raft/host.h) */
    bool host_closed;            /* the host's close callback ran */
    weft_replica *replicas;      /* cfg.shards entries, one per shard (hosted here or not) */
    uint32_t replicas_count;     /* == datadir.shard_count */
    struct weft_server *server;  /* client listener and connections */
    weft_forwarder *forwarder;   /* requests sent on to other nodes' leaders (forward.c) */
    struct weft_ns_cache *ns_cache; /* namespaces known to be registered (namespaces.c) */
    weft_pollers pollers;        /* task long-polls */
    weft_pollseen pollseen;      /* who polled lately, for DescribeTaskQueue (pollseen.h) */
    uint64_t proposals_inflight; /* proposals whose callback has not run yet */
    uint64_t barriers_inflight;  /* barriers whose callback has not run yet */
    /* deferred work: observer callbacks run inside apply, so their effects run on a 0 ms timer */
    uv_timer_t pump_timer;      /* runs weft_node_pump */
    bool pump_scheduled;        /* pump_timer started and not yet run */
    struct weft_wake *wakes;    /* (shard, run key) pairs whose read waiters must re-run */
    uint32_t wakes_count;       /* entries used in wakes */
    uint32_t wakes_cap;         /* entries allocated in wakes */
    uv_timer_t drain_timer;     /* bounds the wait for proposals at shutdown; then paces the
                                 * leadership hand-off (cluster.c) */
    uint64_t drain_deadline_ms; /* monotonic ms when draining gives up */
    uint64_t handoff_deadline_ms; /* monotonic ms when the hand-off gives up (cluster.c) */
    uint64_t handoff_started_ms;  /* monotonic ms when the hand-off began */
    uv_timer_t rebalance_timer; /* moves leaderships to their preferred nodes (cluster.c) */
    uv_timer_t disk_timer;      /* reads the data dir's free space (disk.c) */
    bool disk_low;              /* under --disk-free-bytes-min; changed only by disk.c */
    uint64_t disk_free_bytes;   /* free bytes at the last check */
    char disk_health[PATH_MAX + 256]; /* what ClusterStatus shows while disk_low */
    struct weft_clock *clock;   /* probes of the peers' clocks (raft/clock.h); NULL: none */
    uv_timer_t clock_timer;     /* judges this node's clock (clockcheck.c) */
    uv_timer_t cut_off_timer;   /* answers parked polls once this node is cut off (poll.c) */
    weft_clock_state clock_state; /* changed only by clockcheck.c */
    int64_t clock_base_ms;      /* wall minus monotonic ms when last seen good (clockcheck.c) */
    char clock_health[WEFTD_CLOCK_HEALTH_BYTES_MAX]; /* what ClusterStatus shows while off */
    bool clock_peer_ok[WEFT_CLUSTER_NODES_MAX]; /* by cluster index: peer_ok at the last look */
    uv_signal_t sigterm;        /* SIGTERM: graceful stop */
    uv_signal_t sigint;         /* SIGINT: graceful stop */
    int exit_code;              /* what main returns */
};

/* Changes the node state: the one setter, asserting legal transitions and logging them. */
void weft_node_set_state(weft_node *n, weft_node_state next);
const char *weft_node_state_name(weft_node_state s);
/* True while new proposals (writes, polls, completions) and read waits are accepted. */
bool weft_node_serving(const weft_node *n);

/* Opens everything and starts listening. Returns 0, or an exit code (1 runtime, 2 config). */
int weft_node_start(weft_node *n, uv_loop_t *loop);
/* Begins a graceful stop (signals.c calls it). Idempotent. */
void weft_node_shutdown(weft_node *n);
/* Frees what the loop no longer references; call after uv_run returned. */
void weft_node_free(weft_node *n);

/* Schedules the pump (deferred wake-ups) for the next loop turn. */
void weft_node_pump_schedule(weft_node *n);

/* Tells raft whether this node takes leadership now: not while it stops, nor while its disk
 * is low (disk.c), nor while its clock is off or unchecked (clockcheck.c). Call after any of
 * them changes. */
void weft_node_leadership_refresh(weft_node *n);
/* Why this node must not lead now (a static string), or NULL when it may. */
const char *weft_node_leadership_refusal(const weft_node *n);
/* Bytes weft_node_health may write: the disk's and the clock's texts and a separator. */
#define WEFTD_NODE_HEALTH_BYTES_MAX (PATH_MAX + 256u + WEFTD_CLOCK_HEALTH_BYTES_MAX + 2u)
/* Writes into buf (cap bytes) what is wrong with this node (disk, clock), as ClusterStatus
 * shows it on its row, "" when it is fine; returns buf. */
const char *weft_node_health(const weft_node *n, char *buf, size_t cap);

/* Called by proposals and barriers as they finish, so that draining can end. */
void weft_node_drain_check(weft_node *n);
/* Closes raft, then the shards and connections (the last step of every stop). */
void weft_node_close(weft_node *n);
/* During the leadership hand-off: calls weft_cluster_handoff_poll after delay_ms. */
void weft_node_handoff_wait(weft_node *n, uint64_t delay_ms);

#endif
