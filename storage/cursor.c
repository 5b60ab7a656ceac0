/* cursor.c: ordered iteration over one table: seek, next, prev, last and delete. */
#include <stdlib.h>

#include "keys.h"
#include "store_impl.h"

struct weft_cursor {
    weft_txn *t;     /* the transaction it lives in (borrowed; must outlive the cursor) */
    MDB_cursor *cur; /* LMDB's cursor */
    weft_table tbl;  /* the table it walks, for messages */
};

int weft_cursor_open(weft_txn *t, weft_table tbl, weft_cursor **out, weft_err *err) {
    WEFT_ASSERT(t != NULL && out != NULL);
    WEFT_ASSERT(tbl >= 0 && tbl < WEFT_TBL__COUNT);
    *out = NULL;
    int rc = store_check(t->s, err);
    if (rc != 0) return rc;
    weft_cursor *c = calloc(1, sizeof *c);
    if (c == NULL) {
        return weft_err_set(err, WEFT_E_INTERNAL, "", "open cursor on %s: out of memory",
                            store_table_name(tbl));
    }
    rc = store_fault(t->s);
    if (rc == 0) rc = mdb_cursor_open(t->txn, t->s->dbis[tbl], &c->cur);
    if (rc != 0) {
        free(c);
        return store_fail_lmdb(t->s, rc, "mdb_cursor_open", err);
    }
    c->t = t;
    c->tbl = tbl;
    t->cursors_count++;
    *out = c;
    return 0;
}

void weft_cursor_close(weft_cursor *c) {
    if (c == NULL) return;
    WEFT_ASSERT(c->cur != NULL);
    WEFT_ASSERT(c->t->cursors_count > 0);
    mdb_cursor_close(c->cur);
    c->t->cursors_count--;
    free(c);
}

/* One cursor movement. Every public move goes through here so that NOT_FOUND and poisoning
 * are decided in one place. */
static int cursor_move(weft_cursor *c, MDB_val *key, MDB_cursor_op op, weft_val *k, weft_val *v,
                       weft_err *err) {
    WEFT_ASSERT(c != NULL && c->cur != NULL);
    WEFT_ASSERT(k != NULL && v != NULL);
    int rc = store_check(c->t->s, err);
    if (rc != 0) return rc;
    MDB_val mk = {0}, mv = {0};
    if (key != NULL) mk = *key;
    rc = store_fault(c->t->s);
    if (rc == 0) rc = mdb_cursor_get(c->cur, &mk, &mv, op);
    if (rc == MDB_NOTFOUND) {
        return weft_err_set(err, WEFT_E_NOT_FOUND, "", "no more keys in table %s",
                            store_table_name(c->tbl));
    }
    if (rc != 0) return store_fail_lmdb(c->t->s, rc, "mdb_cursor_get", err);
    /* What LMDB hands back must look like a key we could have written. */
    WEFT_ASSERT(mk.mv_data != NULL && mk.mv_size > 0 && mk.mv_size <= WEFT_KEY_BYTES_MAX);
    WEFT_ASSERT(mv.mv_data != NULL || mv.mv_size == 0);
    *k = (weft_val){.ptr = mk.mv_data, .len = mk.mv_size};
    *v = (weft_val){.ptr = mv.mv_data, .len = mv.mv_size};
    return 0;
}

int weft_cursor_seek(weft_cursor *c, const void *key, size_t key_len, weft_val *k, weft_val *v,
                     weft_err *err) {
    WEFT_ASSERT(c != NULL);
    WEFT_ASSERT(key_len <= WEFT_KEY_BYTES_MAX);
    if (key == NULL || key_len == 0) return cursor_move(c, NULL, MDB_FIRST, k, v, err);
    MDB_val mk = {.mv_size = key_len, .mv_data = (void *)key};
    return cursor_move(c, &mk, MDB_SET_RANGE, k, v, err);
}

int weft_cursor_next(weft_cursor *c, weft_val *k, weft_val *v, weft_err *err) {
    return cursor_move(c, NULL, MDB_NEXT, k, v, err);
}

int weft_cursor_prev(weft_cursor *c, weft_val *k, weft_val *v, weft_err *err) {
    return cursor_move(c, NULL, MDB_PREV, k, v, err);
}

int weft_cursor_last(weft_cursor *c, weft_val *k, weft_val *v, weft_err *err) {
    return cursor_move(c, NULL, MDB_LAST, k, v, err);
}

int weft_cursor_del(weft_cursor *c, weft_err *err) {
    WEFT_ASSERT(c != NULL && c->cur != NULL);
    WEFT_ASSERT(c->t->write);
    int rc = store_check(c->t->s, err);
    if (rc != 0) return rc;
    rc = store_fault(c->t->s);
    if (rc == 0) rc = mdb_cursor_del(c->cur, 0);
    if (rc != 0) return store_fail_lmdb(c->t->s, rc, "mdb_cursor_del", err);
    return 0;
}
