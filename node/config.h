/* config.h: weftd's settings: defaults, command-line flags and the INI config file, from one
 * table of options (STYLE rule 16: the help text and docs/operations.md come from its rows). */
#ifndef WEFT_NODE_CONFIG_H
#define WEFT_NODE_CONFIG_H

#include <limits.h>
#include <stdbool.h>
#include <stdint.h>

#include "../proto/limits.h"
#include "placement.h"

/* Node-layer limits. Each is a default that the config file or a flag can override. */

/* Requests one connection may have open at once (long-polls included). Bounds the memory one
 * client can pin; past it a request gets RESOURCE_EXHAUSTED. */
#define WEFTD_CONN_INFLIGHT_MAX_DEFAULT 1024u
/* Open client connections per node; past it new connections are closed at accept. */
#define WEFTD_CONNECTIONS_MAX_DEFAULT 4096u
/* Response bytes queued for one connection before the node stops reading its requests (a client
 * that does not read its responses must not grow the node's memory without bound). */
#define WEFTD_CONN_WRITE_QUEUE_BYTES_MAX_DEFAULT (64u * 1024u * 1024u)
/* How long shutdown waits for proposals already in flight before closing raft anyway. */
#define WEFTD_SHUTDOWN_DRAIN_MS_DEFAULT 5000u
/* Due timers fired by one FIRE_TIMERS command (DESIGN section 9: a new leader fires everything
 * overdue in its first batch; this bounds one entry's size, about 20 bytes per timer). */
#define WEFTD_FIRE_BATCH_MAX_DEFAULT 10000u
/* Forwarding (node/forward.c): how long a request forwarded to the shard's leader may wait for
 * its answer (plus the request's own long-poll wait) before its client hears UNAVAILABLE. */
#define WEFTD_FORWARD_TIMEOUT_MS_DEFAULT 10000u
/* Requests this node may have forwarded to one peer and not yet answered; past it a request
 * is answered NOT_LEADER with the leader's address instead. It is also the in-flight limit of a
 * connection on which a peer forwards to this node (in place of conn-inflight-max). */
#define WEFTD_FORWARD_INFLIGHT_MAX_DEFAULT 8192u
/* How long a connection to a peer may take to open; after a failure the peer is not dialled
 * again for this long either (its requests get NOT_LEADER with the address meanwhile). */
#define WEFTD_FORWARD_CONNECT_TIMEOUT_MS_DEFAULT 2000u
/* Default client port, and the raft port is the client port plus one unless set. */
/* Free bytes the data dir's file system must keep (--disk-free-bytes-min). Under it the node
 * refuses new work and gives up its leaderships (node/disk.c), well before raft or LMDB hit
 * ENOSPC: libraft 0.15 may fail to restart on a log that filled the disk (dqlite#283), and
 * each replica pre-allocates raft segments (--segment-bytes) and writes snapshots of its
 * whole state. 0 turns the check off. */
#define WEFTD_DISK_FREE_BYTES_MIN_DEFAULT (256ull * 1024u * 1024u)
/* How far this node's wall clock may be from its peers' before it stops leading
 * (--max-clock-offset-ms; node/clockcheck.c). A leader's clock stamps its entries and fires
 * timers, so this bounds how early in real time a timer can fire. NTP keeps clocks within a few
 * ms; 500 ms is CockroachDB's default --max-offset. 0 turns the check off. */
#define WEFTD_MAX_CLOCK_OFFSET_MS_DEFAULT 500u
/* How often a leader checks whether a shard it leads should move to its preferred node
 * (--rebalance-interval-ms; DESIGN section 5). Seconds, not turns: a transfer costs an
 * election and holds the shard's writes for up to half an election timeout (libraft base), so
 * moves must stay rare. 0: never move; leaderships stay where elections put them. */
#define WEFTD_REBALANCE_INTERVAL_MS_DEFAULT 5000u
/* The bound's upper limit: an hour is no longer a clock check. */
#define WEFTD_MAX_CLOCK_OFFSET_MS_MAX 3600000u
#define WEFTD_LISTEN_DEFAULT "127.0.0.1:7400"
#define WEFTD_DATA_DIR_DEFAULT "./weft-data"
#define WEFTD_SHARDS_DEFAULT 8u
/* Where Linux publishes a random id that changes at every boot: a changed id since the last
 * unclean stop means the page cache was lost (DESIGN section 5, the MDB_NOSYNC rule). */
#define WEFTD_BOOT_ID_FILE_DEFAULT "/proc/sys/kernel/random/boot_id"
_Static_assert(WEFTD_CONN_WRITE_QUEUE_BYTES_MAX_DEFAULT > WEFT_FRAME_BYTES_MAX_DEFAULT,
               "one maximal response must fit in the write queue");

typedef struct weft_config {
    char config_path[PATH_MAX];                /* --config FILE, "" when none */
    char data_dir[PATH_MAX];                   /* --data */
    char boot_id_file[PATH_MAX];               /* --boot-id-file; a test seam for "reboots" */
    char listen[WEFTD_ADDRESS_BYTES_MAX];      /* --listen, resolved: "a.b.c.d:port", "[v6]:port" */
    char raft_listen[WEFTD_ADDRESS_BYTES_MAX]; /* --raft-listen; derived from listen when "" */
    uint32_t shards;                           /* --shards, 1..WEFT_SHARDS_MAX */
    uint64_t node_id;                          /* --node-id, > 0 */
    char peers[WEFTD_PEERS_TEXT_BYTES_MAX];    /* --peers as given, "" for a single node */
    uint32_t replication_factor;               /* --replication-factor; 0: min(3, nodes) */
    bool listen_given;                         /* --listen was set (flag or file) */
    bool raft_listen_given;                    /* --raft-listen was set (flag or file) */
    bool node_id_given;                        /* --node-id was set (flag or file) */
    bool peers_given;                          /* --peers was set (flag or file) */
    bool peers_from_file;                      /* --peers came from the config file */
    weft_cluster cluster; /* from peers (or this node alone), filled by weft_config_parse */
    uint32_t log_level;   /* --log-level, a weft_log_level */
    /* raft timing (notes/libraft-0.15.md: set every one explicitly) */
    uint32_t election_timeout_ms;
    uint32_t heartbeat_timeout_ms;
    uint32_t install_snapshot_timeout_ms;
    uint32_t snapshot_threshold; /* entries between snapshots */
    uint32_t snapshot_trailing;  /* entries kept after a snapshot */
    uint64_t segment_bytes;      /* raft_uv segment size */
    bool pre_vote;
    weft_limits limits; /* the protocol and state-machine limits */
    /* node limits */
    uint32_t conn_inflight_max;
    uint32_t connections_max;
    uint64_t conn_write_queue_bytes_max;
    uint32_t shutdown_drain_ms;
    uint32_t fire_batch_max;
    uint32_t long_poll_ms_max; /* cap on GetHistory/GetResult waits */
    uint32_t forward_timeout_ms;
    uint32_t forward_inflight_max;
    uint32_t forward_connect_timeout_ms;
    uint64_t disk_free_bytes_min; /* --disk-free-bytes-min; 0: no floor */
    uint32_t max_clock_offset_ms; /* --max-clock-offset-ms; 0: no clock check */
    uint32_t rebalance_interval_ms; /* --rebalance-interval-ms; 0: no moves to preferred nodes */
} weft_config;

/* Fills every default. */
void weft_config_default(weft_config *c);

/* Parses argv: finds --config first and loads that file, then applies every flag on top (flags
 * override the file). Fills `c` (which must hold the defaults). On a bad value it prints one
 * line naming the flag or key and what is allowed, and returns 2 (the exit code). --help prints
 * the usage and --version the version, and both return 1 (exit 0). Returns 0 when the node
 * should start. */
int weft_config_parse(weft_config *c, int argc, char **argv);

/* Prints "weftd VERSION (commit HASH)" to stdout: what CMake read at configure time
 * (cmake/weft_version.cmake). */
void weft_config_version(void);

/* Prints the usage text, one line per option with its default, to stdout. */
void weft_config_usage(void);

#endif
