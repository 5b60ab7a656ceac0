/* store_impl.h: the storage layer's private view of a store, shared by store.c, txn.c,
 * cursor.c and snapshot.c. No other layer includes it; the storage unit tests do, to reach the
 * test-only setter at the bottom. */
#ifndef WEFT_STORAGE_STORE_IMPL_H
#define WEFT_STORAGE_STORE_IMPL_H

#include <lmdb.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "../proto/base.h"
#include "store.h"

/* Longest store directory path we accept, leaving room for "/restore.tmp" and "/data.mdb". */
#define WEFT_STORE_DIR_BYTES_MAX 3900u
/* Longest path of a file inside the store directory. */
#define WEFT_STORE_PATH_BYTES_MAX 4096u
_Static_assert(WEFT_STORE_DIR_BYTES_MAX + 32u < WEFT_STORE_PATH_BYTES_MAX,
               "a file name must fit after the directory");

/* States of a store_first_failure. The first failure wins the race from CLEAN to WRITING,
 * fills the message, then publishes SET; the snapshot may fail on a threadpool thread while
 * the loop thread reads the state, so this is an atomic rather than a bool. */
enum store_poison_state { STORE_POISON_CLEAN = 0, STORE_POISON_WRITING = 1, STORE_POISON_SET = 2 };

/* The first of possibly many failures, kept because it is the cause (later ones are usually
 * its consequences): a store's poison. */
typedef struct store_first_failure {
    _Atomic int state;                        /* enum store_poison_state */
    char message[WEFT_ERR_MESSAGE_BYTES_MAX]; /* the first failure, once SET */
} store_first_failure;

/* Records `message` in `f` unless an earlier failure already did. Any thread. */
void store_first_failure_record(store_first_failure *f, const char *message);

struct weft_store {
    MDB_env *env;                       /* NULL only after a failed restore closed it */
    MDB_dbi dbis[WEFT_TBL__COUNT];      /* one handle per table, valid while env is open */
    weft_store_opts opts;               /* as opened, map_bytes resolved */
    char dir[WEFT_STORE_DIR_BYTES_MAX]; /* the env directory, NUL-terminated */
    struct weft_txn *write_txn;         /* the one open write transaction, or NULL */
    uint32_t read_txns_count;           /* open read weft_txns (loop thread only) */
    uint64_t snapshot_bytes_max;        /* WEFT_SNAPSHOT_BYTES_MAX unless a test tightened it */
    store_first_failure poison;         /* the failure that stopped the store, if any */
    bool fault_armed;                   /* fault.h seam armed (tests only; false after open) */
    long fault_countdown;               /* operations left to succeed while armed */
    int fault_error;                    /* what armed operations fail with after the countdown */
    uint64_t fault_ops_count;           /* operations seen by the seam since the last arm */
    uint64_t fault_hits_count;          /* failures the seam injected since the last arm */
};

struct weft_txn {
    weft_store *s;          /* the store it belongs to (borrowed) */
    MDB_txn *txn;           /* LMDB's transaction */
    bool write;             /* a write transaction */
    uint32_t cursors_count; /* open cursors: must be 0 at commit or abort */
};

/* Returns 0, or -WEFT_E_INTERNAL quoting the first failure when the store is poisoned. */
int store_check(const weft_store *s, weft_err *err);

/* Poisons the store with an LMDB error from `what` (e.g. "mdb_put into runs") and returns
 * -WEFT_E_INTERNAL with that message. MDB_MAP_FULL gets the map-size advice. */
int store_fail_lmdb(weft_store *s, int rc, const char *what, weft_err *err);

/* Poisons the store with a formatted message and returns -WEFT_E_INTERNAL. */
int store_fail(weft_store *s, weft_err *err, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));


/* Opens s->env and every table in s->dir with s->opts, and checks the schema version. On
 * failure s->env is NULL and `err` says why; the store is not poisoned (the caller decides). */
int store_env_open(weft_store *s, weft_err *err);

/* The fault-injection seam (fault.h). Call it right before each storage operation that can
 * fail: 0 means perform the operation; anything else is the error to report instead of
 * performing it. Unarmed, it is one branch. */
int store_fault_tick(weft_store *s);
static inline int store_fault(weft_store *s) {
    if (!s->fault_armed) return 0;
    return store_fault_tick(s);
}

/* The name of a table, for messages. */
const char *store_table_name(weft_table tbl);

/* Test only: tightens the snapshot size cap of this store so the RESOURCE_EXHAUSTED path can
 * be exercised with small data. It can never loosen the production cap: it asserts
 * bytes_max <= WEFT_SNAPSHOT_BYTES_MAX. */
void store_snapshot_cap_tighten(weft_store *s, uint64_t bytes_max);

#endif
