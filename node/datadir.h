/* datadir.h: the node's data directory: its lock, its identity file weft.meta, and the per-shard
 * directories (DESIGN section 5, "Cluster identity" and "Per replica on disk"). */
#ifndef WEFT_NODE_DATADIR_H
#define WEFT_NODE_DATADIR_H

#include <limits.h>
#include <stddef.h>
#include <stdint.h>

#include "../proto/errors.h"
#include "placement.h"

/* Newest weft.meta layout this weftd reads; a newer one on disk is refused. Version 1 is a
 * single node's (no peer lines; what weftd wrote before clusters, and still writes without
 * --peers, so an older weftd keeps reading those dirs); version 2 adds one `peer` line per
 * node of a --peers cluster. */
#define WEFTD_META_FORMAT_VERSION 2u
#define WEFTD_META_FORMAT_VERSION_SINGLE 1u

typedef struct weft_datadir {
    char path[PATH_MAX]; /* the data dir as given */
    int lock_fd;         /* holds flock(LOCK_EX) on <data>/LOCK; -1 when closed */
    char cluster_id[WEFTD_CLUSTER_ID_HEX_BYTES + 1]; /* from weft.meta */
    uint32_t shard_count;                            /* from weft.meta */
    uint32_t replication_factor;                     /* from weft.meta */
    uint64_t node_id;                                /* from weft.meta */
    uint32_t format_version;                         /* from weft.meta */
    char peers[WEFTD_PEERS_CANONICAL_BYTES_MAX];     /* canonical peer list, "" single node */
    int created;                                     /* 1 when this start created the dir */
} weft_datadir;

/* The identity this start is configured with (DESIGN section 5, "Cluster identity"). */
typedef struct weft_datadir_identity {
    uint32_t shard_count;        /* --shards */
    uint64_t node_id;            /* --node-id */
    uint32_t replication_factor; /* R (1 for a single node) */
    const char *peers;           /* weft_cluster_canonical of --peers; "" for a single node */
    const char *cluster_id;      /* the derived id with --peers; NULL: random at creation */
} weft_datadir_identity;

/* Opens (creating on first start) the data dir at `path`: takes the lock, creates or checks
 * weft.meta against `want` (borrowed), and makes every shard's raft and state directory.
 * Errors (message in `err`, saying what to fix; err->field names the setting that differs:
 * "shards", "node-id", "peers" or "replication-factor"):
 *   -WEFT_E_FAILED_PRECONDITION: the dir belongs to another config (shard count, node id,
 *     peers, replication factor, cluster id, newer format) or another weftd holds its lock;
 *   -WEFT_E_INTERNAL: an I/O error (the message names the path and the errno text). */
int weft_datadir_open(weft_datadir *d, const char *path, const weft_datadir_identity *want,
                      weft_err *err);
/* Releases the lock. */
void weft_datadir_close(weft_datadir *d);

/* Writes "<data>/shards/<i>/<leaf>" into out. Returns 0, or -1 if it does not fit. */
int weft_datadir_shard_path(const weft_datadir *d, uint32_t shard, const char *leaf, char *out,
                            size_t cap);
/* Writes "<data>/<name>" into out. Returns 0, or -1 if it does not fit. */
int weft_datadir_path(const weft_datadir *d, const char *name, char *out, size_t cap);

/* Replaces <data>/<name> (a plain file name) with `len` bytes of `text`, atomically and
 * durably: a temporary file, fsync, rename, fsync of the data dir. After a crash the file is
 * the old one or the new one, whole. Borrowed pointers. Errors: -WEFT_E_INTERNAL naming the
 * path and the errno text; -WEFT_E_INVALID_ARGUMENT when the path does not fit. */
int weft_datadir_file_write(const weft_datadir *d, const char *name, const char *text, size_t len,
                            weft_err *err);

/* Deletes every file of shard `shard`'s state directory (its LMDB env) and fsyncs the
 * directory, so the replica opens an empty env and raft rebuilds it from its snapshot and log
 * (DESIGN section 5). Only before that shard's store opens. *removed_count: files removed.
 * Errors: -WEFT_E_INTERNAL naming the path (a subdirectory there is refused, not recursed). */
int weft_datadir_state_discard(const weft_datadir *d, uint32_t shard, uint32_t *removed_count,
                               weft_err *err);

/* fsyncs every shard's state directory, so that env files created during this run (a new
 * env, a restore's rename) keep their names after a machine crash. Errors: -WEFT_E_INTERNAL. */
int weft_datadir_state_sync(const weft_datadir *d, weft_err *err);

#endif
