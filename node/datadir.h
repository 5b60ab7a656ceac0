/* datadir.h: the node's data directory: its lock, its identity file weft.meta, and the per-shard
 * directories (DESIGN section 5, "Cluster identity" and "Per replica on disk"). */
#ifndef WEFT_NODE_DATADIR_H
#define WEFT_NODE_DATADIR_H

#include <limits.h>
#include <stddef.h>
#include <stdint.h>

#include "../proto/errors.h"

/* Version of the weft.meta layout; a newer one on disk is refused. */
#define WEFTD_META_FORMAT_VERSION 1u
/* Cluster id: 128 random bits as lowercase hex. */
#define WEFTD_CLUSTER_ID_HEX_BYTES 32u

typedef struct weft_datadir {
    char path[PATH_MAX]; /* the data dir as given */
    int lock_fd;         /* holds flock(LOCK_EX) on <data>/LOCK; -1 when closed */
    char cluster_id[WEFTD_CLUSTER_ID_HEX_BYTES + 1]; /* from weft.meta */
    uint32_t shard_count;                            /* from weft.meta */
    uint32_t replication_factor;                     /* from weft.meta */
    uint64_t node_id;                                /* from weft.meta */
    uint32_t format_version;                         /* from weft.meta */
    int created;                                     /* 1 when this start created the dir */
} weft_datadir;

/* Opens (creating on first start) the data dir at `path`: takes the lock, creates or checks
 * weft.meta against `shards` and `node_id`, and makes every shard's raft and state directory.
 * Errors (message in `err`, saying what to fix):
 *   -WEFT_E_FAILED_PRECONDITION: the dir belongs to another config (shard count, node id,
 *     newer format) or another weftd holds its lock;
 *   -WEFT_E_INTERNAL: an I/O error (the message names the path and the errno text). */
int weft_datadir_open(weft_datadir *d, const char *path, uint32_t shards, uint64_t node_id,
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
