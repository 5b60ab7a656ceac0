/* store.c: a shard replica's LMDB env: open and close, the schema stamp, and poisoning. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "keys.h"
#include "store_impl.h"

/* File mode of data.mdb and lock.mdb: the state is private to the node's user. */
#define STORE_FILE_MODE 0600

static const char *const store_table_names[] = {
#define STORE_TABLE_NAME(name, str) [WEFT_TBL_##name] = str,
    WEFT_TABLES(STORE_TABLE_NAME)
#undef STORE_TABLE_NAME
};

const char *store_table_name(weft_table tbl) {
    WEFT_ASSERT(tbl >= 0 && tbl < WEFT_TBL__COUNT);
    WEFT_ASSERT(store_table_names[tbl] != NULL);
    return store_table_names[tbl];
}

int store_check(const weft_store *s, weft_err *err) {
    WEFT_ASSERT(s != NULL);
    int state = atomic_load_explicit(&s->poison.state, memory_order_acquire);
    if (state == STORE_POISON_CLEAN) return 0;
    if (state == STORE_POISON_WRITING) {
        /* Another thread is recording its failure right now; its message is not ready. */
        return weft_err_set(err, WEFT_E_INTERNAL, "",
                            "shard store %s is failing on another thread: restart the replica",
                            s->dir);
    }
    WEFT_ASSERT(state == STORE_POISON_SET);
    return weft_err_set(err, WEFT_E_INTERNAL, "",
                        "shard store %s is stopped by an earlier failure (%s): restart the "
                        "replica",
                        s->dir, s->poison.message);
}

void store_first_failure_record(store_first_failure *f, const char *message) {
    WEFT_ASSERT(f != NULL && message != NULL);
    int expected = STORE_POISON_CLEAN;
    if (!atomic_compare_exchange_strong_explicit(&f->state, &expected, STORE_POISON_WRITING,
                                                 memory_order_acq_rel, memory_order_acquire)) {
        return;
    }
    snprintf(f->message, sizeof f->message, "%s", message);
    atomic_store_explicit(&f->state, STORE_POISON_SET, memory_order_release);
}

int store_fail(weft_store *s, weft_err *err, const char *fmt, ...) {
    WEFT_ASSERT(s != NULL && fmt != NULL);
    char message[WEFT_ERR_MESSAGE_BYTES_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(message, sizeof message, fmt, ap);
    va_end(ap);
    store_first_failure_record(&s->poison, message);
    return weft_err_set(err, WEFT_E_INTERNAL, "", "%s", message);
}

int store_fail_lmdb(weft_store *s, int rc, const char *what, weft_err *err) {
    WEFT_ASSERT(rc != 0 && rc != MDB_NOTFOUND);
    WEFT_ASSERT(what != NULL);
    if (rc == MDB_MAP_FULL) {
        return store_fail(s, err,
                          "shard state is full (map size %llu bytes) in %s during %s: raise map "
                          "size or use more shards",
                          (unsigned long long)s->opts.map_bytes, s->dir, what);
    }
    return store_fail(s, err, "LMDB %s in %s failed: %s: the shard replica must be restarted", what,
                      s->dir, mdb_strerror(rc));
}

bool weft_store_poisoned(const weft_store *s) {
    WEFT_ASSERT(s != NULL);
    return atomic_load_explicit(&s->poison.state, memory_order_acquire) != STORE_POISON_CLEAN;
}

const char *weft_store_dir(const weft_store *s) {
    WEFT_ASSERT(s != NULL);
    WEFT_ASSERT(s->dir[0] != '\0');
    return s->dir;
}

/* Stamps the schema version into a new env, or checks the one already there. Runs inside the
 * opening write transaction. */
static int store_schema_check(weft_store *s, MDB_txn *txn, weft_err *err) {
    WEFT_ASSERT(s != NULL && txn != NULL);
    WEFT_ASSERT(s->dbis[WEFT_TBL_META] != 0); /* 0 is LMDB's free list, never a table */
    MDB_val key = {.mv_size = strlen(WEFT_META_SCHEMA_VERSION),
                   .mv_data = (void *)WEFT_META_SCHEMA_VERSION};
    MDB_val val;
    int rc = mdb_get(txn, s->dbis[WEFT_TBL_META], &key, &val);
    if (rc == MDB_NOTFOUND) {
        uint8_t be[8];
        weft_be64_put(be, WEFT_STORE_SCHEMA_VERSION);
        val = (MDB_val){.mv_size = sizeof be, .mv_data = be};
        rc = mdb_put(txn, s->dbis[WEFT_TBL_META], &key, &val, 0);
        if (rc == 0) return 0;
    }
    if (rc != 0) {
        return weft_err_set(err, WEFT_E_INTERNAL, "",
                            "open shard store %s: schema version stamp: %s: check the disk", s->dir,
                            mdb_strerror(rc));
    }
    if (val.mv_size != 8) {
        return weft_err_set(err, WEFT_E_INTERNAL, "",
                            "open shard store %s: schema version record has %zu bytes, not 8: "
                            "the env is corrupt; rebuild this replica from its peers",
                            s->dir, val.mv_size);
    }
    uint64_t version = weft_be64_get(val.mv_data);
    if (version > WEFT_STORE_SCHEMA_VERSION) {
        return weft_err_set(err, WEFT_E_INTERNAL, "",
                            "open shard store %s: schema version %llu is newer than this build "
                            "supports (%u): run a newer weft",
                            s->dir, (unsigned long long)version, WEFT_STORE_SCHEMA_VERSION);
    }
    if (version < WEFT_STORE_SCHEMA_VERSION) {
        return weft_err_set(err, WEFT_E_INTERNAL, "",
                            "open shard store %s: schema version %llu has no upgrade path to %u: "
                            "rebuild this replica from its peers",
                            s->dir, (unsigned long long)version, WEFT_STORE_SCHEMA_VERSION);
    }
    return 0;
}

/* Opens every table, creating it if absent, in one write transaction with the schema check. */
static int store_tables_open(weft_store *s, weft_err *err) {
    WEFT_ASSERT(s->env != NULL);
    MDB_txn *txn = NULL;
    int rc = mdb_txn_begin(s->env, NULL, 0, &txn);
    if (rc != 0) {
        return weft_err_set(err, WEFT_E_INTERNAL, "",
                            "open shard store %s: mdb_txn_begin: %s: check the disk", s->dir,
                            mdb_strerror(rc));
    }
    for (int t = 0; t < WEFT_TBL__COUNT; t++) {
        rc = mdb_dbi_open(txn, store_table_names[t], MDB_CREATE, &s->dbis[t]);
        if (rc != 0) {
            mdb_txn_abort(txn);
            return weft_err_set(err, WEFT_E_INTERNAL, "",
                                "open shard store %s: open table %s: %s: check the disk", s->dir,
                                store_table_names[t], mdb_strerror(rc));
        }
    }
    rc = store_schema_check(s, txn, err);
    if (rc != 0) {
        mdb_txn_abort(txn);
        return rc;
    }
    rc = mdb_txn_commit(txn);
    if (rc != 0) {
        return weft_err_set(err, WEFT_E_INTERNAL, "",
                            "open shard store %s: commit: %s: check the disk", s->dir,
                            mdb_strerror(rc));
    }
    WEFT_ASSERT(s->dbis[WEFT_TBL_META] != s->dbis[WEFT_TBL_DEDUP]);
    return 0;
}

int store_env_open(weft_store *s, weft_err *err) {
    WEFT_ASSERT(s->env == NULL);
    WEFT_ASSERT(s->opts.map_bytes > 0);
    int rc = mdb_env_create(&s->env);
    if (rc != 0) {
        s->env = NULL;
        return weft_err_set(err, WEFT_E_INTERNAL, "", "open shard store %s: mdb_env_create: %s",
                            s->dir, mdb_strerror(rc));
    }
    /* NOTLS: a snapshot's read transaction may run on a threadpool thread. */
    unsigned flags = MDB_NOTLS | (s->opts.no_sync ? MDB_NOSYNC : 0u);
    const char *step = "mdb_env_set_maxdbs";
    rc = mdb_env_set_maxdbs(s->env, WEFT_TBL__COUNT);
    if (rc == 0) {
        step = "mdb_env_set_mapsize";
        rc = mdb_env_set_mapsize(s->env, (size_t)s->opts.map_bytes);
    }
    if (rc == 0) {
        step = "mdb_env_open";
        /* Armed only when a restore reopens the env (fault.h); a new store is never armed. */
        rc = store_fault(s);
        if (rc == 0) rc = mdb_env_open(s->env, s->dir, flags, STORE_FILE_MODE);
    }
    if (rc != 0) {
        mdb_env_close(s->env);
        s->env = NULL;
        return weft_err_set(err, WEFT_E_INTERNAL, "",
                            "open shard store %s: %s: %s: check that the directory exists and is "
                            "writable and that no other process has it open",
                            s->dir, step, mdb_strerror(rc));
    }
    /* keys.h promises every key fits LMDB's compiled-in key limit. */
    WEFT_ASSERT(mdb_env_get_maxkeysize(s->env) >= (int)WEFT_KEY_BYTES_MAX);
    rc = store_tables_open(s, err);
    if (rc != 0) {
        mdb_env_close(s->env);
        s->env = NULL;
        return rc;
    }
    return 0;
}

/* A restore that crashed between writing its image and renaming it leaves restore.tmp
 * behind; it is garbage (raft will send or load the snapshot again), so it is removed. */
static int store_tmp_remove(weft_store *s, weft_err *err) {
    WEFT_ASSERT(s->dir[0] != '\0');
    WEFT_ASSERT(s->env == NULL); /* before the env opens: nothing may be reading the file */
    char path[WEFT_STORE_PATH_BYTES_MAX];
    snprintf(path, sizeof path, "%s/restore.tmp", s->dir);
    if (unlink(path) == 0 || errno == ENOENT) return 0;
    return weft_err_set(err, WEFT_E_INTERNAL, "",
                        "open shard store %s: remove stale %s: %s: check permissions", s->dir, path,
                        strerror(errno));
}

int weft_store_open(weft_store **out, const char *dir, const weft_store_opts *opts, weft_err *err) {
    WEFT_ASSERT(out != NULL && dir != NULL);
    *out = NULL;
    size_t dir_len = strlen(dir);
    if (dir_len == 0 || dir_len >= WEFT_STORE_DIR_BYTES_MAX) {
        return weft_err_set(err, WEFT_E_INTERNAL, "",
                            "open shard store: directory path is %zu bytes; it must be 1 to %u: "
                            "use a shorter data directory",
                            dir_len, WEFT_STORE_DIR_BYTES_MAX - 1);
    }
    weft_store *s = calloc(1, sizeof *s);
    if (s == NULL) {
        return weft_err_set(err, WEFT_E_INTERNAL, "", "open shard store %s: out of memory", dir);
    }
    memcpy(s->dir, dir, dir_len + 1);
    s->fault_armed = false; /* fault.h: inert until a test arms it */
    if (opts != NULL) s->opts = *opts;
    if (s->opts.map_bytes == 0) s->opts.map_bytes = WEFT_STORE_MAP_BYTES_DEFAULT;
    s->snapshot_bytes_max = WEFT_SNAPSHOT_BYTES_MAX;
    atomic_init(&s->poison.state, STORE_POISON_CLEAN);
    int rc = store_tmp_remove(s, err);
    if (rc == 0) rc = store_env_open(s, err);
    if (rc != 0) {
        free(s);
        return rc;
    }
    WEFT_ASSERT(s->env != NULL);
    *out = s;
    return 0;
}

int weft_store_close(weft_store *s) {
    if (s == NULL) return 0;
    /* LMDB would leak or crash on transactions that outlive their env. */
    WEFT_ASSERT(s->write_txn == NULL);
    WEFT_ASSERT(s->read_txns_count == 0);
    /* mdb_env_close never flushes a MDB_NOSYNC env: its last commits may exist only in the
     * page cache, and a caller that records a clean stop after closing promises they do not
     * (DESIGN section 5). A durable store's commits were each fsynced already. */
    int rc = 0;
    if (s->opts.no_sync) {
        weft_err err;
        weft_err_clear(&err);
        rc = weft_store_sync(s, &err);
    }
    if (s->env != NULL) mdb_env_close(s->env);
    free(s);
    return rc;
}

void store_snapshot_cap_tighten(weft_store *s, uint64_t bytes_max) {
    WEFT_ASSERT(s != NULL);
    WEFT_ASSERT(bytes_max <= WEFT_SNAPSHOT_BYTES_MAX);
    s->snapshot_bytes_max = bytes_max;
}
