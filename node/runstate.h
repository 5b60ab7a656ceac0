/* runstate.h: the run state of a data dir (<data>/run.state): the boot a weftd ran in and
 * whether it stopped cleanly. From it, start decides whether shard state envs may run without
 * fsync (MDB_NOSYNC) and whether the last run's envs can be trusted or must be rebuilt from
 * raft (DESIGN section 5, "Snapshots": the MDB_NOSYNC rule). */
#ifndef WEFT_NODE_RUNSTATE_H
#define WEFT_NODE_RUNSTATE_H

#include <limits.h>
#include <stdbool.h>

#include "../proto/errors.h"
#include "datadir.h"

/* Longest boot id accepted. Linux's is a 36-character UUID; the --boot-id-file test seam may
 * hold any token of [A-Za-z0-9._:-] up to this length. */
#define WEFTD_BOOT_ID_BYTES_MAX 64u
/* Version of the run.state layout. A newer one is unreadable to this weftd, which then
 * rebuilds the shard state rather than guess what that run did. */
#define WEFTD_RUN_STATE_FORMAT_VERSION 1u
/* Longest explanation of a verdict, for the log lines. */
#define WEFTD_RUN_STATE_REASON_BYTES_MAX 512u

/* What start concluded about the shard envs the last run left behind. */
typedef enum weft_runstate_verdict {
    WEFT_RUNSTATE_TRUST_NEW,       /* no run.state: a new data dir, or an older weftd's (durable) */
    WEFT_RUNSTATE_TRUST_CLEAN,     /* the last run stopped cleanly and flushed every env */
    WEFT_RUNSTATE_TRUST_DURABLE,   /* the last run fsynced every LMDB commit */
    WEFT_RUNSTATE_TRUST_SAME_BOOT, /* only the process died: the page cache kept its commits */
    WEFT_RUNSTATE_REBUILD_NEW_BOOT,     /* the machine restarted under a run without fsync */
    WEFT_RUNSTATE_REBUILD_UNKNOWN_BOOT, /* no boot id now: a machine restart cannot be ruled out */
    WEFT_RUNSTATE_REBUILD_DAMAGED,      /* run.state unreadable: what the last run did is unknown */
} weft_runstate_verdict;

typedef struct weft_runstate {
    char path[PATH_MAX];                       /* <data>/run.state */
    char boot_id[WEFTD_BOOT_ID_BYTES_MAX + 1]; /* this boot's id; "" when it cannot be read */
    bool no_sync;                              /* this run's envs skip fsync: only with a boot id */
    bool begun;                                /* {boot id, clean = false} is on disk */
    weft_runstate_verdict verdict;             /* what start decided about the last run */
    char reason[WEFTD_RUN_STATE_REASON_BYTES_MAX]; /* why, in words, for the log */
} weft_runstate;

/* At start, before any shard store opens: reads this boot's id from `boot_id_file` (borrowed)
 * and the last run's state, decides, empties every shard's state dir when the last run's envs
 * cannot be trusted (one WARN line per shard saying why), and records {this boot id,
 * clean = false} durably. After it returns 0 the node may open the envs with
 * MDB_NOSYNC when rs->no_sync. An unreadable boot id is not an error: rs->no_sync stays false
 * (LMDB fsyncs every commit) and a WARN line says why. Errors: -WEFT_E_INTERNAL when a state
 * dir cannot be emptied or run.state cannot be written (the message names the path). */
int weft_runstate_begin(weft_runstate *rs, const weft_datadir *d, const char *boot_id_file,
                        weft_err *err);

/* After a clean stop, once every raft group and every shard store has closed and every flush
 * of a no-sync env succeeded (weft_shard_close returned 0): fsyncs the state dirs and records
 * {boot id, clean = true} durably, so the next start trusts the envs whatever its boot id.
 * Errors: -WEFT_E_INTERNAL naming the path; then the marker is not written. */
int weft_runstate_end_clean(weft_runstate *rs, const weft_datadir *d, weft_err *err);

#endif
