/* fault.h: test-only countdown fault injection for a store, the SQLite way (STYLE "Fault
 * injection by countdown", rule 13): the next N storage operations succeed, then every later
 * one fails with a chosen LMDB error, so a test can sweep N and run every error path.
 *
 * The seam is compiled into every build and is inert until armed: an unarmed store pays one
 * predictable branch per operation. Only tests include this header.
 *
 * What counts as one operation (each is a place where a real LMDB or disk failure can happen):
 *   - txn.c: mdb_txn_begin (read and write), mdb_get, mdb_put, mdb_del, mdb_txn_commit (read
 *     and write);
 *   - cursor.c: mdb_cursor_open, every mdb_cursor_get (seek, next, prev, last), mdb_cursor_del;
 *   - snapshot.c, weft_store_snapshot: mdb_txn_begin, mdb_dbi_open of the main table, each
 *     mdb_stat, mdb_env_copyfd2, then on the copy: mdb_env_open and mdb_get of the applied
 *     index;
 *   - snapshot.c, weft_store_restore: the write of restore.tmp, its fsync, each directory
 *     fsync, the rename over data.mdb, and the reopen (mdb_env_open);
 *   - sync.c, weft_store_sync of a no_sync store (also run by weft_store_close): mdb_env_sync.
 * mdb_txn_abort, mdb_cursor_close and mdb_env_close cannot fail and are not counted.
 *
 * An injected failure travels exactly like a real one: the operation is not performed (an
 * injected commit failure aborts the LMDB transaction, as a failed mdb_txn_commit does), the
 * store is poisoned with the message the real error would give (MDB_MAP_FULL gets the
 * map-size advice, errors go through mdb_strerror), and every later call fails with
 * -WEFT_E_INTERNAL quoting it. The restore steps that are syscalls, not LMDB calls, fail with
 * `lmdb_error` when it is an errno value (positive) and with EIO for an MDB_* code.
 *
 * Threading: arm, disarm and read the counters only while no other thread uses the store (the
 * counters are plain fields). An unarmed store is never written by the seam, so a snapshot on
 * a threadpool thread stays race-free. */
#ifndef WEFT_STORAGE_FAULT_H
#define WEFT_STORAGE_FAULT_H

#include <stdint.h>

#include "store.h"

/* Arms the seam: `countdown` (>= 0) operations succeed, then every later operation fails with
 * `lmdb_error` (an MDB_* code or an errno value; never 0 or MDB_NOTFOUND, which are not
 * failures). Re-arming resets both counters. `s` is borrowed. */
void weft_store_fault_arm(weft_store *s, long countdown, int lmdb_error);

/* Disarms the seam; the counters keep their values until the next arm. A store poisoned by an
 * injected fault stays poisoned (reopen it, as after a real failure). */
void weft_store_fault_disarm(weft_store *s);

/* Operations that reached the seam since the last arm, failed ones included. Arming with a
 * countdown of LONG_MAX turns this into an operation counter for a workload. */
uint64_t weft_store_fault_ops(const weft_store *s);

/* Failures injected since the last arm. The first one poisons the store, so later calls stop
 * at the poison check before reaching the seam: after a workload this is usually 0 or 1. */
uint64_t weft_store_fault_hits(const weft_store *s);

#endif
