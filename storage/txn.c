/* txn.c: transactions, point reads and writes, and the meta table's integer values. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "keys.h"
#include "store_impl.h"

/* Longest meta name; the names are the fixed WEFT_META_* strings of store.h. */
#define STORE_META_NAME_BYTES_MAX 64u

/* Keys come from keys.h, which keeps them within LMDB's limit; an empty or oversized key here
 * is a caller bug, not a storage failure, so it must not poison the store. */
static void txn_key_assert(const void *key, size_t key_len) {
    WEFT_ASSERT(key != NULL);
    WEFT_ASSERT(key_len > 0 && key_len <= WEFT_KEY_BYTES_MAX);
}

int weft_txn_begin(weft_store *s, bool write, weft_txn **out, weft_err *err) {
    WEFT_ASSERT(s != NULL && out != NULL);
    *out = NULL;
    int rc = store_check(s, err);
    if (rc != 0) return rc;
    WEFT_ASSERT(s->env != NULL);
    /* A second write transaction on the same thread would deadlock inside LMDB. */
    WEFT_ASSERT(!write || s->write_txn == NULL);
    weft_txn *t = calloc(1, sizeof *t);
    if (t == NULL) {
        return weft_err_set(err, WEFT_E_INTERNAL, "", "begin transaction on %s: out of memory",
                            s->dir);
    }
    rc = store_fault(s);
    if (rc == 0) rc = mdb_txn_begin(s->env, NULL, write ? 0u : MDB_RDONLY, &t->txn);
    if (rc != 0) {
        free(t);
        return store_fail_lmdb(s, rc, write ? "mdb_txn_begin (write)" : "mdb_txn_begin (read)",
                               err);
    }
    t->s = s;
    t->write = write;
    if (write) {
        s->write_txn = t;
    } else {
        s->read_txns_count++;
    }
    *out = t;
    return 0;
}

/* Forgets a transaction that LMDB has already ended, and frees it. */
static void txn_release(weft_txn *t) {
    weft_store *s = t->s;
    if (t->write) {
        WEFT_ASSERT(s->write_txn == t);
        s->write_txn = NULL;
    } else {
        WEFT_ASSERT(s->read_txns_count > 0);
        s->read_txns_count--;
    }
    free(t);
}

int weft_txn_commit(weft_txn *t, weft_err *err) {
    WEFT_ASSERT(t != NULL && t->txn != NULL);
    /* Cursors of read transactions must be closed by hand; demanding it of both kinds keeps
     * weft_cursor structs from leaking. */
    WEFT_ASSERT(t->cursors_count == 0);
    weft_store *s = t->s;
    int rc = store_check(s, err);
    if (rc != 0) {
        /* A poisoned store commits nothing: the failure may have left this txn half-done. */
        mdb_txn_abort(t->txn);
        txn_release(t);
        return rc;
    }
    rc = store_fault(s);
    if (rc == 0) {
        rc = mdb_txn_commit(t->txn);
    } else {
        /* An injected failure ends the transaction the way a failed mdb_txn_commit does. */
        mdb_txn_abort(t->txn);
    }
    bool write = t->write;
    txn_release(t);
    if (rc != 0) return store_fail_lmdb(s, rc, write ? "commit" : "commit (read)", err);
    return 0;
}

void weft_txn_abort(weft_txn *t) {
    if (t == NULL) return;
    WEFT_ASSERT(t->txn != NULL);
    WEFT_ASSERT(t->cursors_count == 0);
    mdb_txn_abort(t->txn);
    txn_release(t);
}

bool weft_txn_is_write(const weft_txn *t) {
    WEFT_ASSERT(t != NULL);
    WEFT_ASSERT(t->txn != NULL);
    return t->write;
}

int weft_kv_get(weft_txn *t, weft_table tbl, const void *key, size_t key_len, weft_val *val,
                weft_err *err) {
    WEFT_ASSERT(t != NULL && val != NULL);
    WEFT_ASSERT(tbl >= 0 && tbl < WEFT_TBL__COUNT);
    txn_key_assert(key, key_len);
    int rc = store_check(t->s, err);
    if (rc != 0) return rc;
    MDB_val k = {.mv_size = key_len, .mv_data = (void *)key};
    MDB_val v;
    rc = store_fault(t->s);
    if (rc == 0) rc = mdb_get(t->txn, t->s->dbis[tbl], &k, &v);
    if (rc == MDB_NOTFOUND) {
        return weft_err_set(err, WEFT_E_NOT_FOUND, "", "no such key in table %s",
                            store_table_name(tbl));
    }
    if (rc != 0) return store_fail_lmdb(t->s, rc, "mdb_get", err);
    WEFT_ASSERT(v.mv_data != NULL || v.mv_size == 0);
    *val = (weft_val){.ptr = v.mv_data, .len = v.mv_size};
    return 0;
}

int weft_kv_put(weft_txn *t, weft_table tbl, const void *key, size_t key_len, const void *val,
                size_t val_len, weft_err *err) {
    WEFT_ASSERT(t != NULL && t->write);
    WEFT_ASSERT(tbl >= 0 && tbl < WEFT_TBL__COUNT);
    WEFT_ASSERT(val != NULL || val_len == 0);
    txn_key_assert(key, key_len);
    int rc = store_check(t->s, err);
    if (rc != 0) return rc;
    MDB_val k = {.mv_size = key_len, .mv_data = (void *)key};
    MDB_val v = {.mv_size = val_len, .mv_data = (void *)val};
    rc = store_fault(t->s);
    if (rc == 0) rc = mdb_put(t->txn, t->s->dbis[tbl], &k, &v, 0);
    if (rc != 0) {
        char what[64];
        snprintf(what, sizeof what, "mdb_put into %s", store_table_name(tbl));
        return store_fail_lmdb(t->s, rc, what, err);
    }
    return 0;
}

int weft_kv_del(weft_txn *t, weft_table tbl, const void *key, size_t key_len, weft_err *err) {
    WEFT_ASSERT(t != NULL && t->write);
    WEFT_ASSERT(tbl >= 0 && tbl < WEFT_TBL__COUNT);
    txn_key_assert(key, key_len);
    int rc = store_check(t->s, err);
    if (rc != 0) return rc;
    MDB_val k = {.mv_size = key_len, .mv_data = (void *)key};
    rc = store_fault(t->s);
    if (rc == 0) rc = mdb_del(t->txn, t->s->dbis[tbl], &k, NULL);
    if (rc == MDB_NOTFOUND) {
        return weft_err_set(err, WEFT_E_NOT_FOUND, "", "no such key to delete in table %s",
                            store_table_name(tbl));
    }
    if (rc != 0) {
        char what[64];
        snprintf(what, sizeof what, "mdb_del from %s", store_table_name(tbl));
        return store_fail_lmdb(t->s, rc, what, err);
    }
    return 0;
}

static size_t meta_name_len(const char *name) {
    WEFT_ASSERT(name != NULL);
    size_t n = strnlen(name, STORE_META_NAME_BYTES_MAX + 1);
    WEFT_ASSERT(n > 0 && n <= STORE_META_NAME_BYTES_MAX);
    return n;
}

int weft_meta_get_u64(weft_txn *t, const char *name, uint64_t *v, weft_err *err) {
    WEFT_ASSERT(t != NULL && v != NULL);
    size_t name_len = meta_name_len(name);
    *v = 0;
    weft_val val = {0}; /* zeroed for gcc -O3, which cannot see weft_kv_get fill it */
    int rc = weft_kv_get(t, WEFT_TBL_META, name, name_len, &val, err);
    if (rc == -WEFT_E_NOT_FOUND) {
        weft_err_clear(err);
        return 0;
    }
    if (rc != 0) return rc;
    /* The record is checked as it is read back: a wrong length means a corrupt env. */
    if (val.len != 8) {
        return store_fail(t->s, err,
                          "meta value %s in %s has %zu bytes, not 8: the env is corrupt; rebuild "
                          "this replica from its peers",
                          name, t->s->dir, val.len);
    }
    *v = weft_be64_get(val.ptr);
    return 0;
}

int weft_meta_put_u64(weft_txn *t, const char *name, uint64_t v, weft_err *err) {
    WEFT_ASSERT(t != NULL && t->write);
    size_t name_len = meta_name_len(name);
    uint8_t be[8];
    weft_be64_put(be, v);
    /* The record is checked right before it is written. */
    WEFT_ASSERT(weft_be64_get(be) == v);
    return weft_kv_put(t, WEFT_TBL_META, name, name_len, be, sizeof be, err);
}

int weft_store_applied_index(weft_store *s, uint64_t *index, weft_err *err) {
    WEFT_ASSERT(s != NULL && index != NULL);
    *index = 0;
    weft_txn *t = NULL;
    int rc = weft_txn_begin(s, false, &t, err);
    if (rc != 0) return rc;
    rc = weft_meta_get_u64(t, WEFT_META_APPLIED_INDEX, index, err);
    weft_txn_abort(t);
    WEFT_ASSERT(rc == 0 || rc == -WEFT_E_INTERNAL);
    return rc;
}
