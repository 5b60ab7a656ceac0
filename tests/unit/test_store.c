/* test_store.c: the shard store's CRUD, cursors, meta values, schema stamp, reopen and
 * poisoning after an LMDB failure. */
#include <ftw.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "storage/keys.h"
#include "storage/store.h"

/* Map size that a few hundred 1 KiB values overflow, to force MDB_MAP_FULL. */
#define TEST_TINY_MAP_BYTES (128u * 1024u)
/* Puts attempted before the tiny map must have filled; far more than it can hold. */
#define TEST_FILL_PUTS_MAX 10000
/* Keys in the cursor tests. */
#define TEST_CURSOR_KEYS_COUNT 100

typedef struct fixture {
    char dir[64];  /* mkdtemp directory holding the env */
    weft_store *s; /* the open store, or NULL */
    weft_err err;  /* the last error */
} fixture;

static int rm_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw) {
    (void)sb, (void)flag, (void)ftw;
    return remove(path);
}

static int setup(void **state) {
    fixture *f = calloc(1, sizeof *f);
    if (f == NULL) return -1;
    snprintf(f->dir, sizeof f->dir, "/tmp/weft-test-store-XXXXXX");
    if (mkdtemp(f->dir) == NULL) return -1;
    *state = f;
    return 0;
}

static int teardown(void **state) {
    fixture *f = *state;
    weft_store_close(f->s);
    int rc = nftw(f->dir, rm_entry, 8, FTW_DEPTH | FTW_PHYS);
    free(f);
    return rc;
}

static void store_open(fixture *f, uint64_t map_bytes) {
    weft_store_opts opts = {.map_bytes = map_bytes, .no_sync = false};
    int rc = weft_store_open(&f->s, f->dir, &opts, &f->err);
    assert_int_equal(rc, 0);
    assert_non_null(f->s);
    assert_string_equal(weft_store_dir(f->s), f->dir);
}

static void store_reopen(fixture *f) {
    weft_store_close(f->s);
    f->s = NULL;
    store_open(f, 0);
}

static void put_str(fixture *f, weft_txn *t, weft_table tbl, const char *k, const char *v) {
    assert_int_equal(weft_kv_put(t, tbl, k, strlen(k), v, strlen(v), &f->err), 0);
}

static void assert_get(fixture *f, weft_txn *t, weft_table tbl, const char *k, const char *v) {
    weft_val val;
    assert_int_equal(weft_kv_get(t, tbl, k, strlen(k), &val, &f->err), 0);
    assert_int_equal(val.len, strlen(v));
    assert_memory_equal(val.ptr, v, val.len);
}

static void test_open_stamps_schema(void **state) {
    fixture *f = *state;
    store_open(f, 0);
    weft_txn *t;
    assert_int_equal(weft_txn_begin(f->s, false, &t, &f->err), 0);
    assert_false(weft_txn_is_write(t));
    uint64_t v = 0;
    assert_int_equal(weft_meta_get_u64(t, WEFT_META_SCHEMA_VERSION, &v, &f->err), 0);
    assert_int_equal(v, WEFT_STORE_SCHEMA_VERSION);
    weft_txn_abort(t);
    assert_false(weft_store_poisoned(f->s));
}

static void test_open_missing_dir(void **state) {
    fixture *f = *state;
    char missing[128];
    snprintf(missing, sizeof missing, "%s/nope", f->dir);
    weft_store *s = (weft_store *)1;
    int rc = weft_store_open(&s, missing, NULL, &f->err);
    assert_int_equal(rc, -WEFT_E_INTERNAL);
    assert_null(s);
    assert_non_null(strstr(f->err.message, missing));
    assert_non_null(strstr(f->err.message, "mdb_env_open"));
}

static void test_crud(void **state) {
    fixture *f = *state;
    store_open(f, 0);
    weft_txn *t;
    assert_int_equal(weft_txn_begin(f->s, true, &t, &f->err), 0);
    assert_true(weft_txn_is_write(t));
    put_str(f, t, WEFT_TBL_RUNS, "k1", "v1");
    put_str(f, t, WEFT_TBL_HISTORY, "k1", "other table");
    assert_get(f, t, WEFT_TBL_RUNS, "k1", "v1"); /* visible inside its own txn */
    put_str(f, t, WEFT_TBL_RUNS, "k1", "v1-overwritten");
    assert_int_equal(weft_kv_put(t, WEFT_TBL_RUNS, "empty", 5, NULL, 0, &f->err), 0);
    assert_int_equal(weft_txn_commit(t, &f->err), 0);

    assert_int_equal(weft_txn_begin(f->s, false, &t, &f->err), 0);
    assert_get(f, t, WEFT_TBL_RUNS, "k1", "v1-overwritten");
    assert_get(f, t, WEFT_TBL_HISTORY, "k1", "other table");
    assert_get(f, t, WEFT_TBL_RUNS, "empty", "");
    weft_val v;
    assert_int_equal(weft_kv_get(t, WEFT_TBL_RUNS, "k2", 2, &v, &f->err), -WEFT_E_NOT_FOUND);
    assert_int_equal(f->err.code, WEFT_E_NOT_FOUND);
    assert_non_null(strstr(f->err.message, "runs"));
    assert_int_equal(weft_kv_get(t, WEFT_TBL_TIMERS, "k1", 2, &v, &f->err), -WEFT_E_NOT_FOUND);
    weft_txn_abort(t);

    assert_int_equal(weft_txn_begin(f->s, true, &t, &f->err), 0);
    assert_int_equal(weft_kv_del(t, WEFT_TBL_RUNS, "k1", 2, &f->err), 0);
    assert_int_equal(weft_kv_del(t, WEFT_TBL_RUNS, "k1", 2, &f->err), -WEFT_E_NOT_FOUND);
    assert_int_equal(weft_kv_get(t, WEFT_TBL_RUNS, "k1", 2, &v, &f->err), -WEFT_E_NOT_FOUND);
    assert_int_equal(weft_txn_commit(t, &f->err), 0);
    /* NOT_FOUND never poisons. */
    assert_false(weft_store_poisoned(f->s));
}

static void test_abort_discards(void **state) {
    fixture *f = *state;
    store_open(f, 0);
    weft_txn *t;
    assert_int_equal(weft_txn_begin(f->s, true, &t, &f->err), 0);
    put_str(f, t, WEFT_TBL_DEDUP, "req", "outcome");
    weft_txn_abort(t);
    assert_int_equal(weft_txn_begin(f->s, false, &t, &f->err), 0);
    weft_val v;
    assert_int_equal(weft_kv_get(t, WEFT_TBL_DEDUP, "req", 3, &v, &f->err), -WEFT_E_NOT_FOUND);
    weft_txn_abort(t);
}

/* A read transaction sees the state as of its start, not later commits. */
static void test_read_isolation(void **state) {
    fixture *f = *state;
    store_open(f, 0);
    weft_txn *r, *w;
    assert_int_equal(weft_txn_begin(f->s, false, &r, &f->err), 0);
    assert_int_equal(weft_txn_begin(f->s, true, &w, &f->err), 0);
    put_str(f, w, WEFT_TBL_RUNS, "k", "v");
    assert_int_equal(weft_txn_commit(w, &f->err), 0);
    weft_val v;
    assert_int_equal(weft_kv_get(r, WEFT_TBL_RUNS, "k", 1, &v, &f->err), -WEFT_E_NOT_FOUND);
    weft_txn_abort(r);
    assert_int_equal(weft_txn_begin(f->s, false, &r, &f->err), 0);
    assert_get(f, r, WEFT_TBL_RUNS, "k", "v");
    weft_txn_abort(r);
}

/* Inserts timer keys (i * 10, 0) for i in [0, TEST_CURSOR_KEYS_COUNT) in a scrambled order,
 * including values whose little-endian order differs from numeric order. */
static void insert_timers(fixture *f) {
    weft_txn *t;
    assert_int_equal(weft_txn_begin(f->s, true, &t, &f->err), 0);
    for (uint64_t n = 0; n < TEST_CURSOR_KEYS_COUNT; n++) {
        uint64_t i = (n * 37) % TEST_CURSOR_KEYS_COUNT; /* 37 is coprime to 100 */
        weft_key k;
        weft_key_timer(&k, i * 10, 0);
        uint8_t v[8];
        weft_be64_put(v, i);
        assert_int_equal(weft_kv_put(t, WEFT_TBL_TIMERS, k.bytes, k.len, v, 8, &f->err), 0);
    }
    assert_int_equal(weft_txn_commit(t, &f->err), 0);
}

static uint64_t timer_of(weft_val k, weft_val v) {
    assert_int_equal(k.len, 16);
    assert_int_equal(v.len, 8);
    uint64_t at = weft_be64_get(k.ptr);
    assert_int_equal(at, weft_be64_get(v.ptr) * 10);
    return at;
}

static void test_cursor_order(void **state) {
    fixture *f = *state;
    store_open(f, 0);
    insert_timers(f);
    weft_txn *t;
    weft_cursor *c;
    weft_val k, v;
    assert_int_equal(weft_txn_begin(f->s, false, &t, &f->err), 0);
    assert_int_equal(weft_cursor_open(t, WEFT_TBL_TIMERS, &c, &f->err), 0);
    assert_int_equal(weft_cursor_seek(c, NULL, 0, &k, &v, &f->err), 0);
    uint64_t want = 0;
    assert_int_equal(timer_of(k, v), want);
    int count = 1;
    while (weft_cursor_next(c, &k, &v, &f->err) == 0) {
        want += 10;
        assert_int_equal(timer_of(k, v), want);
        count++;
    }
    assert_int_equal(f->err.code, WEFT_E_NOT_FOUND);
    assert_int_equal(count, TEST_CURSOR_KEYS_COUNT);

    /* Seek to a key between two entries lands on the next one. */
    weft_key s;
    weft_key_timer(&s, 255, 0);
    assert_int_equal(weft_cursor_seek(c, s.bytes, s.len, &k, &v, &f->err), 0);
    assert_int_equal(timer_of(k, v), 260);
    assert_int_equal(weft_cursor_prev(c, &k, &v, &f->err), 0);
    assert_int_equal(timer_of(k, v), 250);
    /* Seek to an exact key lands on it. */
    weft_key_timer(&s, 500, 0);
    assert_int_equal(weft_cursor_seek(c, s.bytes, s.len, &k, &v, &f->err), 0);
    assert_int_equal(timer_of(k, v), 500);
    /* Past the last key there is nothing. */
    weft_key_timer(&s, 991, 0);
    assert_int_equal(weft_cursor_seek(c, s.bytes, s.len, &k, &v, &f->err), -WEFT_E_NOT_FOUND);
    assert_int_equal(weft_cursor_last(c, &k, &v, &f->err), 0);
    assert_int_equal(timer_of(k, v), 990);
    assert_int_equal(weft_cursor_next(c, &k, &v, &f->err), -WEFT_E_NOT_FOUND);
    weft_cursor_close(c);
    weft_txn_abort(t);
    assert_false(weft_store_poisoned(f->s));
}

static void test_cursor_empty(void **state) {
    fixture *f = *state;
    store_open(f, 0);
    weft_txn *t;
    weft_cursor *c;
    weft_val k, v;
    assert_int_equal(weft_txn_begin(f->s, false, &t, &f->err), 0);
    assert_int_equal(weft_cursor_open(t, WEFT_TBL_READY, &c, &f->err), 0);
    assert_int_equal(weft_cursor_seek(c, NULL, 0, &k, &v, &f->err), -WEFT_E_NOT_FOUND);
    assert_int_equal(weft_cursor_last(c, &k, &v, &f->err), -WEFT_E_NOT_FOUND);
    weft_cursor_close(c);
    weft_txn_abort(t);
}

/* Deleting under the cursor while walking: next moves to the entry after the deleted one. */
static void test_cursor_del(void **state) {
    fixture *f = *state;
    store_open(f, 0);
    insert_timers(f);
    weft_txn *t;
    weft_cursor *c;
    weft_val k, v;
    assert_int_equal(weft_txn_begin(f->s, true, &t, &f->err), 0);
    assert_int_equal(weft_cursor_open(t, WEFT_TBL_TIMERS, &c, &f->err), 0);
    int rc = weft_cursor_seek(c, NULL, 0, &k, &v, &f->err);
    while (rc == 0) {
        if (timer_of(k, v) % 20 == 0) assert_int_equal(weft_cursor_del(c, &f->err), 0);
        rc = weft_cursor_next(c, &k, &v, &f->err);
    }
    assert_int_equal(rc, -WEFT_E_NOT_FOUND);
    weft_cursor_close(c);
    assert_int_equal(weft_txn_commit(t, &f->err), 0);

    assert_int_equal(weft_txn_begin(f->s, false, &t, &f->err), 0);
    assert_int_equal(weft_cursor_open(t, WEFT_TBL_TIMERS, &c, &f->err), 0);
    int count = 0;
    for (rc = weft_cursor_seek(c, NULL, 0, &k, &v, &f->err); rc == 0;
         rc = weft_cursor_next(c, &k, &v, &f->err)) {
        assert_int_equal(timer_of(k, v) % 20, 10);
        count++;
    }
    assert_int_equal(count, TEST_CURSOR_KEYS_COUNT / 2);
    weft_cursor_close(c);
    weft_txn_abort(t);
}

static void test_meta_and_applied_index(void **state) {
    fixture *f = *state;
    store_open(f, 0);
    uint64_t idx = 99;
    assert_int_equal(weft_store_applied_index(f->s, &idx, &f->err), 0);
    assert_int_equal(idx, 0); /* absent reads as 0 */
    weft_txn *t;
    assert_int_equal(weft_txn_begin(f->s, true, &t, &f->err), 0);
    uint64_t v = 7;
    assert_int_equal(weft_meta_get_u64(t, WEFT_META_NEXT_SEQ, &v, &f->err), 0);
    assert_int_equal(v, 0);
    assert_int_equal(weft_meta_put_u64(t, WEFT_META_NEXT_SEQ, UINT64_MAX - 1, &f->err), 0);
    assert_int_equal(weft_meta_put_u64(t, WEFT_META_APPLIED_INDEX, 12345, &f->err), 0);
    assert_int_equal(weft_meta_get_u64(t, WEFT_META_NEXT_SEQ, &v, &f->err), 0);
    assert_int_equal(v, UINT64_MAX - 1);
    assert_int_equal(weft_txn_commit(t, &f->err), 0);
    assert_int_equal(weft_store_applied_index(f->s, &idx, &f->err), 0);
    assert_int_equal(idx, 12345);
    /* Stored big-endian, so raw reads agree. */
    assert_int_equal(weft_txn_begin(f->s, false, &t, &f->err), 0);
    weft_val raw;
    const char *name = WEFT_META_APPLIED_INDEX;
    assert_int_equal(weft_kv_get(t, WEFT_TBL_META, name, strlen(name), &raw, &f->err), 0);
    assert_int_equal(raw.len, 8);
    assert_int_equal(((const uint8_t *)raw.ptr)[7], 12345 & 0xFF);
    weft_txn_abort(t);
}

static void test_reopen_keeps_data(void **state) {
    fixture *f = *state;
    store_open(f, 0);
    weft_txn *t;
    assert_int_equal(weft_txn_begin(f->s, true, &t, &f->err), 0);
    put_str(f, t, WEFT_TBL_EXECUTIONS, "wf", "run-1");
    assert_int_equal(weft_meta_put_u64(t, WEFT_META_APPLIED_INDEX, 77, &f->err), 0);
    assert_int_equal(weft_txn_commit(t, &f->err), 0);
    store_reopen(f);
    assert_int_equal(weft_txn_begin(f->s, false, &t, &f->err), 0);
    assert_get(f, t, WEFT_TBL_EXECUTIONS, "wf", "run-1");
    weft_txn_abort(t);
    uint64_t idx = 0;
    assert_int_equal(weft_store_applied_index(f->s, &idx, &f->err), 0);
    assert_int_equal(idx, 77);
}

static void test_newer_schema_refused(void **state) {
    fixture *f = *state;
    store_open(f, 0);
    weft_txn *t;
    assert_int_equal(weft_txn_begin(f->s, true, &t, &f->err), 0);
    assert_int_equal(
        weft_meta_put_u64(t, WEFT_META_SCHEMA_VERSION, WEFT_STORE_SCHEMA_VERSION + 1, &f->err), 0);
    assert_int_equal(weft_txn_commit(t, &f->err), 0);
    weft_store_close(f->s);
    f->s = NULL;
    int rc = weft_store_open(&f->s, f->dir, NULL, &f->err);
    assert_int_equal(rc, -WEFT_E_INTERNAL);
    assert_null(f->s);
    assert_non_null(strstr(f->err.message, "newer"));
    assert_non_null(strstr(f->err.message, f->dir));
}

/* Fills a tiny map until LMDB says MDB_MAP_FULL; returns the failing put's message. */
static void fill_until_full(fixture *f, char *first, size_t first_cap) {
    weft_txn *t;
    assert_int_equal(weft_txn_begin(f->s, true, &t, &f->err), 0);
    static uint8_t val[1024];
    int rc = 0;
    int i;
    for (i = 0; i < TEST_FILL_PUTS_MAX && rc == 0; i++) {
        weft_key k;
        weft_key_history(&k, 1, (uint64_t)i);
        rc = weft_kv_put(t, WEFT_TBL_HISTORY, k.bytes, k.len, val, sizeof val, &f->err);
    }
    assert_true(i < TEST_FILL_PUTS_MAX);
    assert_int_equal(rc, -WEFT_E_INTERNAL);
    assert_non_null(strstr(f->err.message, "shard state is full (map size 131072 bytes)"));
    assert_non_null(strstr(f->err.message, "raise map size or use more shards"));
    snprintf(first, first_cap, "%s", f->err.message);
    assert_true(weft_store_poisoned(f->s));
    /* The commit of the failed transaction is refused too. */
    assert_int_equal(weft_txn_commit(t, &f->err), -WEFT_E_INTERNAL);
    assert_non_null(strstr(f->err.message, first));
}

static void *heap_alloc(size_t n) {
    return malloc(n);
}

static void test_poison_map_full(void **state) {
    fixture *f = *state;
    store_open(f, TEST_TINY_MAP_BYTES);
    char first[WEFT_ERR_MESSAGE_BYTES_MAX];
    fill_until_full(f, first, sizeof first);

    /* Every later call fails with INTERNAL and quotes the first failure. */
    weft_txn *t = (weft_txn *)1;
    assert_int_equal(weft_txn_begin(f->s, false, &t, &f->err), -WEFT_E_INTERNAL);
    assert_null(t);
    assert_non_null(strstr(f->err.message, first));
    uint64_t idx;
    assert_int_equal(weft_store_applied_index(f->s, &idx, &f->err), -WEFT_E_INTERNAL);
    assert_non_null(strstr(f->err.message, first));
    void *buf = NULL;
    size_t len = 0;
    assert_int_equal(weft_store_snapshot(f->s, heap_alloc, &buf, &len, &f->err), -WEFT_E_INTERNAL);
    assert_null(buf);
    assert_non_null(strstr(f->err.message, first));
    uint8_t junk[64] = {0};
    assert_int_equal(weft_store_restore(f->s, junk, sizeof junk, &f->err), -WEFT_E_INTERNAL);
    assert_non_null(strstr(f->err.message, first));
    assert_int_equal(f->err.code, WEFT_E_INTERNAL);
}

/* Operations on a transaction that was open when the store got poisoned fail as well. */
static void test_poison_open_txn(void **state) {
    fixture *f = *state;
    store_open(f, TEST_TINY_MAP_BYTES);
    weft_txn *r;
    assert_int_equal(weft_txn_begin(f->s, false, &r, &f->err), 0);
    weft_cursor *c;
    assert_int_equal(weft_cursor_open(r, WEFT_TBL_META, &c, &f->err), 0);
    char first[WEFT_ERR_MESSAGE_BYTES_MAX];
    fill_until_full(f, first, sizeof first);
    weft_val k, v;
    assert_int_equal(weft_cursor_seek(c, NULL, 0, &k, &v, &f->err), -WEFT_E_INTERNAL);
    assert_non_null(strstr(f->err.message, first));
    assert_int_equal(weft_kv_get(r, WEFT_TBL_META, "x", 1, &v, &f->err), -WEFT_E_INTERNAL);
    weft_cursor_close(c);
    weft_txn_abort(r);
}

/* A meta record of the wrong length is corruption: it poisons rather than reads garbage. */
static void test_meta_corrupt_poisons(void **state) {
    fixture *f = *state;
    store_open(f, 0);
    weft_txn *t;
    assert_int_equal(weft_txn_begin(f->s, true, &t, &f->err), 0);
    const char *name = WEFT_META_SHARD_CLOCK_MS;
    assert_int_equal(weft_kv_put(t, WEFT_TBL_META, name, strlen(name), "abc", 3, &f->err), 0);
    uint64_t v = 5;
    assert_int_equal(weft_meta_get_u64(t, name, &v, &f->err), -WEFT_E_INTERNAL);
    assert_non_null(strstr(f->err.message, "shard_clock_ms"));
    assert_true(weft_store_poisoned(f->s));
    assert_int_equal(weft_txn_commit(t, &f->err), -WEFT_E_INTERNAL);
}

/* Closing and reopening a poisoned store's directory clears the poison (restart the replica);
 * what was committed before the failure is still there. */
static void test_reopen_after_poison(void **state) {
    fixture *f = *state;
    store_open(f, TEST_TINY_MAP_BYTES);
    weft_txn *t;
    assert_int_equal(weft_txn_begin(f->s, true, &t, &f->err), 0);
    put_str(f, t, WEFT_TBL_RUNS, "kept", "yes");
    assert_int_equal(weft_txn_commit(t, &f->err), 0);
    char first[WEFT_ERR_MESSAGE_BYTES_MAX];
    fill_until_full(f, first, sizeof first);
    store_reopen(f);
    assert_false(weft_store_poisoned(f->s));
    assert_int_equal(weft_txn_begin(f->s, false, &t, &f->err), 0);
    assert_get(f, t, WEFT_TBL_RUNS, "kept", "yes");
    weft_val v;
    weft_key k;
    weft_key_history(&k, 1, 0);
    assert_int_equal(weft_kv_get(t, WEFT_TBL_HISTORY, k.bytes, k.len, &v, &f->err),
                     -WEFT_E_NOT_FOUND);
    weft_txn_abort(t);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_open_stamps_schema, setup, teardown),
        cmocka_unit_test_setup_teardown(test_open_missing_dir, setup, teardown),
        cmocka_unit_test_setup_teardown(test_crud, setup, teardown),
        cmocka_unit_test_setup_teardown(test_abort_discards, setup, teardown),
        cmocka_unit_test_setup_teardown(test_read_isolation, setup, teardown),
        cmocka_unit_test_setup_teardown(test_cursor_order, setup, teardown),
        cmocka_unit_test_setup_teardown(test_cursor_empty, setup, teardown),
        cmocka_unit_test_setup_teardown(test_cursor_del, setup, teardown),
        cmocka_unit_test_setup_teardown(test_meta_and_applied_index, setup, teardown),
        cmocka_unit_test_setup_teardown(test_reopen_keeps_data, setup, teardown),
        cmocka_unit_test_setup_teardown(test_newer_schema_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(test_poison_map_full, setup, teardown),
        cmocka_unit_test_setup_teardown(test_poison_open_txn, setup, teardown),
        cmocka_unit_test_setup_teardown(test_meta_corrupt_poisons, setup, teardown),
        cmocka_unit_test_setup_teardown(test_reopen_after_poison, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
