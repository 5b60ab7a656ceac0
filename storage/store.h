/* store.h: one LMDB env per shard replica: tables, transactions, cursors, the applied index,
 * and snapshot/restore of the whole env (DESIGN sections 5 and 6). Knows key layout, never
 * workflow logic.
 *
 * Threading: a store is used from one thread (the loop thread), except weft_store_snapshot,
 * which may run on another thread (a libuv threadpool thread) while the loop thread writes:
 * it only reads the env (its own read transactions and LMDB's copy), the fields fixed at open
 * (dir, dbis, snapshot_bytes_max) and the atomic poison state. It must not run concurrently
 * with weft_store_restore or weft_store_close, nor while the test-only fault seam is armed.
 * Failure: any LMDB error other than MDB_NOTFOUND poisons the store (STYLE rule 10): every later
 * call returns -WEFT_E_INTERNAL with the first error's message, until it is closed. */
#ifndef WEFT_STORAGE_STORE_H
#define WEFT_STORAGE_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "../proto/errors.h"

/* The tables of DESIGN section 6. Key encodings are in keys.h. */
#define WEFT_TABLES(X)                                                              \
    X(META, "meta")             /* name -> value: applied index, ids, shard clock */ \
    X(EXECUTIONS, "executions") /* (ns, workflow id) -> current run */              \
    X(RUN_IDS, "run_ids")       /* (ns, workflow id, run id) -> run key */          \
    X(RUNS, "runs")             /* (run key, part, sub id) -> mutable state record */ \
    X(HISTORY, "history")       /* (run key, event id) -> event */                   \
    X(TIMERS, "timers")         /* (fire_at_ms, seq) -> timer record */              \
    X(READY, "ready")           /* (task queue, kind, seq) -> ready task */          \
    X(VIS_STATUS, "vis_status") /* (ns, status, start_ms, run key) -> summary */     \
    X(VIS_TYPE, "vis_type")     /* (ns, type, start_ms, run key) -> summary */       \
    X(DEDUP, "dedup")           /* (ns, request id) -> outcome */                     \
    X(NAMESPACES, "namespaces") /* (ns) -> registered namespace (registry shard only) */

typedef enum weft_table {
#define WEFT_TABLE_ENUM(name, str) WEFT_TBL_##name,
    WEFT_TABLES(WEFT_TABLE_ENUM)
#undef WEFT_TABLE_ENUM
        WEFT_TBL__COUNT
} weft_table;

/* Map size of one shard env. Sparse file: only written pages use disk. Snapshots are capped
 * well below it (WEFT_SNAPSHOT_BYTES_MAX) because libraft 0.15 cannot read files over 2 GiB. */
#define WEFT_STORE_MAP_BYTES_DEFAULT (8ull * 1024ull * 1024ull * 1024ull)
#define WEFT_SNAPSHOT_BYTES_MAX (1024ull * 1024ull * 1024ull)
/* Schema version stamped into meta; a newer one on disk is refused. */
#define WEFT_STORE_SCHEMA_VERSION 1u

typedef struct weft_store weft_store;
typedef struct weft_txn weft_txn;
typedef struct weft_cursor weft_cursor;

/* A value or key as LMDB returns it: borrowed, valid until the transaction ends or the next
 * write through the same transaction touches that page. Copy what must outlive that. */
typedef struct weft_val {
    const void *ptr;
    size_t len;
} weft_val;

typedef struct weft_store_opts {
    uint64_t map_bytes; /* 0 = WEFT_STORE_MAP_BYTES_DEFAULT */
    /* MDB_NOSYNC: commits reach the page cache but are not fsynced, so they survive a process
     * crash but not a machine crash. Only with the boot-id check of DESIGN section 5, which
     * rebuilds the env from raft after an unclean machine restart. */
    bool no_sync;
} weft_store_opts;

/* Opens (creating if needed) the env in `dir` (which must exist) and every table.
 * `*out` is owned by the caller until weft_store_close. Errors: -WEFT_E_INTERNAL with the LMDB
 * message and the path in `err`. */
int weft_store_open(weft_store **out, const char *dir, const weft_store_opts *opts, weft_err *err);

/* Closes the env and frees `s`, whatever the outcome. A no_sync store is first flushed with
 * weft_store_sync, so that everything it committed is on disk once this returns 0. No
 * transaction may be open. Returns 0 (also for NULL and for a durable store, whose commits
 * were fsynced one by one), or -WEFT_E_INTERNAL when that flush failed or could not run
 * because the store was poisoned: then some commits may be lost in a machine crash, and the
 * caller must not record a clean stop (weft_shard_close passes this result up). */
int weft_store_close(weft_store *s);

/* Durably flushes a no_sync store: fsyncs every commit so far (mdb_env_sync with force).
 * Does nothing for a durable store. A failure poisons the store and must not be retried (STYLE
 * rule 10: after a failed fsync the kernel may have dropped the dirty pages, so a second
 * fsync can succeed without writing them). Runs on the thread that commits. Errors:
 * -WEFT_E_INTERNAL naming the env dir, also when the store is already poisoned. */
int weft_store_sync(weft_store *s, weft_err *err);

const char *weft_store_dir(const weft_store *s);
bool weft_store_poisoned(const weft_store *s);

/* Transactions. One write transaction at a time (LMDB rule). `*out` is valid until commit or
 * abort, which also free it. A failed commit poisons the store. */
int weft_txn_begin(weft_store *s, bool write, weft_txn **out, weft_err *err);
int weft_txn_commit(weft_txn *t, weft_err *err);
void weft_txn_abort(weft_txn *t);
bool weft_txn_is_write(const weft_txn *t);

/* Point operations. get returns -WEFT_E_NOT_FOUND (without poisoning) when absent. */
int weft_kv_get(weft_txn *t, weft_table tbl, const void *key, size_t key_len, weft_val *val,
                weft_err *err);
int weft_kv_put(weft_txn *t, weft_table tbl, const void *key, size_t key_len, const void *val,
                size_t val_len, weft_err *err);
/* Deleting an absent key returns -WEFT_E_NOT_FOUND (without poisoning). */
int weft_kv_del(weft_txn *t, weft_table tbl, const void *key, size_t key_len, weft_err *err);

/* Ordered iteration. Keys compare as raw bytes (memcmp, shorter first), which is why keys.h
 * writes integers big-endian. */
int weft_cursor_open(weft_txn *t, weft_table tbl, weft_cursor **out, weft_err *err);
void weft_cursor_close(weft_cursor *c);
/* Positions at the first key >= `key` (NULL/0: the first key). Returns 0, or -WEFT_E_NOT_FOUND
 * when there is none. */
int weft_cursor_seek(weft_cursor *c, const void *key, size_t key_len, weft_val *k, weft_val *v,
                     weft_err *err);
/* Moves to the next / previous key. -WEFT_E_NOT_FOUND at the end. */
int weft_cursor_next(weft_cursor *c, weft_val *k, weft_val *v, weft_err *err);
int weft_cursor_prev(weft_cursor *c, weft_val *k, weft_val *v, weft_err *err);
/* Positions at the last key. -WEFT_E_NOT_FOUND when the table is empty. */
int weft_cursor_last(weft_cursor *c, weft_val *k, weft_val *v, weft_err *err);
/* Deletes the entry under the cursor (write transactions only). */
int weft_cursor_del(weft_cursor *c, weft_err *err);

/* Meta values, stored under fixed names as 8-byte big-endian integers or raw bytes.
 * weft_meta_get_u64 returns 0 and sets *v = 0 when absent. */
#define WEFT_META_APPLIED_INDEX "applied_index"
#define WEFT_META_SHARD_CLOCK_MS "shard_clock_ms"
#define WEFT_META_SHARD_ID "shard_id"
#define WEFT_META_CLUSTER_ID "cluster_id"
#define WEFT_META_SCHEMA_VERSION "schema_version"
#define WEFT_META_NEXT_RUN_KEY "next_run_key"
#define WEFT_META_NEXT_SEQ "next_seq"
int weft_meta_get_u64(weft_txn *t, const char *name, uint64_t *v, weft_err *err);
int weft_meta_put_u64(weft_txn *t, const char *name, uint64_t v, weft_err *err);

/* Applied index outside a transaction: reads it in a short read transaction. */
int weft_store_applied_index(weft_store *s, uint64_t *index, weft_err *err);

/* Snapshot: a consistent copy of the whole env (compacted, MDB_CP_COMPACT) into one buffer
 * allocated with `alloc` (raft_malloc for raft's sake). On success *buf and *len belong to the
 * caller; on failure `alloc`'s memory has been released or never taken. The image format is
 * documented at the top of snapshot.c. Errors: -WEFT_E_RESOURCE_EXHAUSTED if the image would
 * exceed WEFT_SNAPSHOT_BYTES_MAX ("shard snapshot of DIR is N bytes; the limit is M bytes: use
 * more shards ...") or memory ran out (not poisoned); -WEFT_E_INTERNAL on an LMDB failure
 * (poisoned) or when already poisoned. Writes that commit during the copy are fine: the image's
 * applied index is read from the copy, so it always names the state the image holds (it may be
 * later than the index when the call began). */
int weft_store_snapshot(weft_store *s, void *(*alloc)(size_t), void **buf, size_t *len,
                        weft_err *err);

/* Restore: replaces the env's contents with a snapshot image produced by weft_store_snapshot.
 * Writes the image beside the env, fsyncs it, renames it over data.mdb, and reopens. No
 * transaction may be open. `buf` is borrowed. Errors: -WEFT_E_INVALID_ARGUMENT when the image
 * fails validation (magic, version, length, checksum): nothing was touched and the store stays
 * usable; -WEFT_E_INTERNAL for any failure after that (the store is poisoned and its env may be
 * closed: close the store and restart the replica) or when already poisoned. */
int weft_store_restore(weft_store *s, const void *buf, size_t len, weft_err *err);

/* Reads the applied index stored inside a snapshot image without opening it as an env, so a
 * restart can skip restoring a snapshot older than the env (DESIGN section 5). Checks the
 * header only (magic, version, length), not the checksum. Errors: -WEFT_E_INVALID_ARGUMENT. */
int weft_store_snapshot_applied_index(const void *buf, size_t len, uint64_t *index,
                                      weft_err *err);

#endif
