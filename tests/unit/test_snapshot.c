/* test_snapshot.c: snapshot images of a shard store: a restore reproduces every table exactly,
 * damaged images are refused without harm, and the size cap holds. */
#include <ftw.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "storage/keys.h"
#include "storage/store.h"
#include "storage/store_impl.h"

/* Header layout of snapshot.c, restated so the test notices if it moves. */
#define TEST_SNAP_HEADER_BYTES 36u
#define TEST_SNAP_APPLIED_OFFSET 12u
#define TEST_SNAP_VERSION_OFFSET 8u
/* Rows written per table by populate(); with the big values this spans many pages. */
#define TEST_ROWS_PER_TABLE 300
/* Commits made by the concurrent writer; each adds one run row and bumps the applied index. */
#define TEST_CONCURRENT_COMMITS_COUNT 2000
/* The writer's pause after every fiftieth commit. */
#define TEST_WRITER_PAUSE_US 3000
/* Snapshots taken while that writer runs, at most. */
#define TEST_CONCURRENT_SNAPSHOTS_MAX 40
/* A value bigger than a page, so overflow pages are copied too. */
#define TEST_BIG_VALUE_BYTES 9000u

typedef struct fixture {
    char dir_a[64]; /* env of the store that takes snapshots */
    char dir_b[64]; /* env of the store that restores them */
    weft_store *a;  /* open store in dir_a */
    weft_store *b;  /* open store in dir_b */
    weft_err err;   /* the last error */
} fixture;

static int rm_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw) {
    (void)sb, (void)flag, (void)ftw;
    return remove(path);
}

static int setup(void **state) {
    fixture *f = calloc(1, sizeof *f);
    if (f == NULL) return -1;
    snprintf(f->dir_a, sizeof f->dir_a, "/tmp/weft-test-snap-a-XXXXXX");
    snprintf(f->dir_b, sizeof f->dir_b, "/tmp/weft-test-snap-b-XXXXXX");
    if (mkdtemp(f->dir_a) == NULL || mkdtemp(f->dir_b) == NULL) return -1;
    if (weft_store_open(&f->a, f->dir_a, NULL, &f->err) != 0) return -1;
    if (weft_store_open(&f->b, f->dir_b, NULL, &f->err) != 0) return -1;
    *state = f;
    return 0;
}

static int teardown(void **state) {
    fixture *f = *state;
    weft_store_close(f->a);
    weft_store_close(f->b);
    int rc = nftw(f->dir_a, rm_entry, 8, FTW_DEPTH | FTW_PHYS);
    rc |= nftw(f->dir_b, rm_entry, 8, FTW_DEPTH | FTW_PHYS);
    free(f);
    return rc;
}

static void *heap_alloc(size_t n) {
    return malloc(n);
}
static void *heap_alloc_fail(size_t n) {
    (void)n;
    return NULL;
}

/* Writes rows into every table, plus an applied index; `salt` makes two stores differ. */
static void populate(fixture *f, weft_store *s, uint8_t salt, uint64_t applied_index) {
    weft_txn *t;
    assert_int_equal(weft_txn_begin(s, true, &t, &f->err), 0);
    static uint8_t big[TEST_BIG_VALUE_BYTES];
    memset(big, salt, sizeof big);
    for (int tbl = 0; tbl < WEFT_TBL__COUNT; tbl++) {
        for (int i = 0; i < TEST_ROWS_PER_TABLE; i++) {
            weft_key k;
            weft_key_history(&k, (uint64_t)tbl, (uint64_t)i * 3 + salt);
            size_t vlen = (i % 50 == 0) ? sizeof big : (size_t)(i % 40);
            big[0] = (uint8_t)i;
            int rc = weft_kv_put(t, (weft_table)tbl, k.bytes, k.len, big, vlen, &f->err);
            assert_int_equal(rc, 0);
        }
    }
    assert_int_equal(weft_meta_put_u64(t, WEFT_META_APPLIED_INDEX, applied_index, &f->err), 0);
    assert_int_equal(weft_txn_commit(t, &f->err), 0);
}

/* A growing dump of a store's rows. */
typedef struct dump {
    uint8_t *bytes; /* malloc'd */
    size_t len;     /* bytes used */
    size_t cap;     /* bytes allocated; doubles, so that appends stay linear under ASan */
} dump;

static void dump_add(dump *d, const void *p, size_t n) {
    if (d->len + n > d->cap) {
        size_t cap = d->cap ? d->cap : 4096;
        while (cap < d->len + n)
            cap *= 2;
        uint8_t *grown = realloc(d->bytes, cap);
        assert_non_null(grown);
        d->bytes = grown;
        d->cap = cap;
    }
    if (n > 0) memcpy(d->bytes + d->len, p, n);
    d->len += n;
}

/* Every table, every row, in key order: (table, key length, key, value length, value). */
static void dump_store(fixture *f, weft_store *s, dump *d) {
    *d = (dump){0};
    weft_txn *t;
    assert_int_equal(weft_txn_begin(s, false, &t, &f->err), 0);
    for (int tbl = 0; tbl < WEFT_TBL__COUNT; tbl++) {
        weft_cursor *c;
        assert_int_equal(weft_cursor_open(t, (weft_table)tbl, &c, &f->err), 0);
        weft_val k, v;
        int rc;
        for (rc = weft_cursor_seek(c, NULL, 0, &k, &v, &f->err); rc == 0;
             rc = weft_cursor_next(c, &k, &v, &f->err)) {
            uint64_t hdr[3] = {(uint64_t)tbl, k.len, v.len};
            dump_add(d, hdr, sizeof hdr);
            dump_add(d, k.ptr, k.len);
            dump_add(d, v.ptr, v.len);
        }
        assert_int_equal(rc, -WEFT_E_NOT_FOUND);
        weft_cursor_close(c);
    }
    weft_txn_abort(t);
}

static void assert_same_contents(fixture *f, weft_store *x, weft_store *y) {
    dump dx, dy;
    dump_store(f, x, &dx);
    dump_store(f, y, &dy);
    assert_true(dx.len > 0);
    assert_int_equal(dx.len, dy.len);
    assert_memory_equal(dx.bytes, dy.bytes, dx.len);
    free(dx.bytes);
    free(dy.bytes);
}

static void snapshot_of(fixture *f, weft_store *s, void **buf, size_t *len) {
    assert_int_equal(weft_store_snapshot(s, heap_alloc, buf, len, &f->err), 0);
    assert_non_null(*buf);
    assert_true(*len > TEST_SNAP_HEADER_BYTES);
    assert_memory_equal(*buf, "WEFTSNP1", 8);
}

static bool file_exists(const char *dir, const char *name) {
    char path[256];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    struct stat st;
    return stat(path, &st) == 0;
}

static void test_roundtrip(void **state) {
    fixture *f = *state;
    populate(f, f->a, 1, 4242);
    populate(f, f->b, 2, 17); /* b's own rows must all vanish */
    void *buf;
    size_t len;
    snapshot_of(f, f->a, &buf, &len);
    uint64_t idx = 0;
    assert_int_equal(weft_store_snapshot_applied_index(buf, len, &idx, &f->err), 0);
    assert_int_equal(idx, 4242);
    assert_int_equal(weft_store_restore(f->b, buf, len, &f->err), 0);
    assert_false(weft_store_poisoned(f->b));
    assert_false(file_exists(f->dir_b, "restore.tmp"));
    assert_same_contents(f, f->a, f->b);
    assert_int_equal(weft_store_applied_index(f->b, &idx, &f->err), 0);
    assert_int_equal(idx, 4242);
    free(buf);

    /* The restored store takes writes and keeps everything across a reopen. */
    weft_txn *t;
    assert_int_equal(weft_txn_begin(f->b, true, &t, &f->err), 0);
    assert_int_equal(weft_meta_put_u64(t, WEFT_META_APPLIED_INDEX, 4243, &f->err), 0);
    assert_int_equal(weft_txn_commit(t, &f->err), 0);
    assert_int_equal(weft_txn_begin(f->a, true, &t, &f->err), 0);
    assert_int_equal(weft_meta_put_u64(t, WEFT_META_APPLIED_INDEX, 4243, &f->err), 0);
    assert_int_equal(weft_txn_commit(t, &f->err), 0);
    weft_store_close(f->b);
    f->b = NULL;
    assert_int_equal(weft_store_open(&f->b, f->dir_b, NULL, &f->err), 0);
    assert_same_contents(f, f->a, f->b);
}

/* A snapshot of a restored store restores again to the same contents (images chain). */
static void test_restore_twice(void **state) {
    fixture *f = *state;
    populate(f, f->a, 3, 10);
    void *buf, *buf2;
    size_t len, len2;
    snapshot_of(f, f->a, &buf, &len);
    assert_int_equal(weft_store_restore(f->b, buf, len, &f->err), 0);
    snapshot_of(f, f->b, &buf2, &len2);
    assert_int_equal(weft_store_restore(f->a, buf2, len2, &f->err), 0);
    assert_int_equal(weft_store_restore(f->b, buf2, len2, &f->err), 0);
    assert_same_contents(f, f->a, f->b);
    free(buf);
    free(buf2);
}

static void test_empty_store(void **state) {
    fixture *f = *state;
    void *buf;
    size_t len;
    snapshot_of(f, f->a, &buf, &len);
    uint64_t idx = 99;
    assert_int_equal(weft_store_snapshot_applied_index(buf, len, &idx, &f->err), 0);
    assert_int_equal(idx, 0);
    populate(f, f->b, 5, 3);
    assert_int_equal(weft_store_restore(f->b, buf, len, &f->err), 0);
    assert_int_equal(weft_store_applied_index(f->b, &idx, &f->err), 0);
    assert_int_equal(idx, 0);
    assert_same_contents(f, f->a, f->b); /* only the schema stamp is left */
    free(buf);
}

/* Restores `bad` into b, expects INVALID_ARGUMENT mentioning `needle`, and checks that b is
 * untouched and still usable. */
static void assert_refused(fixture *f, const void *bad, size_t len, const char *needle) {
    dump before, after;
    dump_store(f, f->b, &before);
    assert_int_equal(weft_store_restore(f->b, bad, len, &f->err), -WEFT_E_INVALID_ARGUMENT);
    assert_non_null(strstr(f->err.message, needle));
    assert_false(weft_store_poisoned(f->b));
    dump_store(f, f->b, &after);
    assert_int_equal(before.len, after.len);
    assert_memory_equal(before.bytes, after.bytes, before.len);
    free(before.bytes);
    free(after.bytes);
}

static void test_corrupt_refused(void **state) {
    fixture *f = *state;
    populate(f, f->a, 1, 500);
    populate(f, f->b, 2, 600);
    uint8_t *buf;
    size_t len;
    snapshot_of(f, f->a, (void **)&buf, &len);
    uint64_t idx;

    buf[0] ^= 0xFF; /* magic */
    assert_refused(f, buf, len, "magic");
    assert_int_equal(weft_store_snapshot_applied_index(buf, len, &idx, &f->err),
                     -WEFT_E_INVALID_ARGUMENT);
    buf[0] ^= 0xFF;

    buf[TEST_SNAP_VERSION_OFFSET + 3] ^= 0x02; /* format version 3 */
    assert_refused(f, buf, len, "format version");
    buf[TEST_SNAP_VERSION_OFFSET + 3] ^= 0x02;

    buf[len / 2] ^= 0x01; /* one bit of the image */
    assert_refused(f, buf, len, "checksum");
    assert_int_equal(weft_store_snapshot_applied_index(buf, len, &idx, &f->err), 0);
    buf[len / 2] ^= 0x01;

    buf[TEST_SNAP_APPLIED_OFFSET + 7] ^= 0x01; /* the applied index is covered too */
    assert_refused(f, buf, len, "checksum");
    buf[TEST_SNAP_APPLIED_OFFSET + 7] ^= 0x01;

    assert_refused(f, buf, len - 1, "truncated");
    assert_int_equal(weft_store_snapshot_applied_index(buf, len - 1, &idx, &f->err),
                     -WEFT_E_INVALID_ARGUMENT);
    assert_refused(f, buf, TEST_SNAP_HEADER_BYTES - 1, "truncated");
    assert_int_equal(weft_store_snapshot_applied_index(buf, 10, &idx, &f->err),
                     -WEFT_E_INVALID_ARGUMENT);
    assert_refused(f, NULL, 0, "truncated");

    /* The untouched image still restores. */
    assert_int_equal(weft_store_restore(f->b, buf, len, &f->err), 0);
    assert_same_contents(f, f->a, f->b);
    free(buf);
}

static void test_size_cap(void **state) {
    fixture *f = *state;
    populate(f, f->a, 1, 9);
    void *buf = (void *)1;
    size_t len = 1;
    store_snapshot_cap_tighten(f->a, 64u * 1024u);
    assert_int_equal(weft_store_snapshot(f->a, heap_alloc, &buf, &len, &f->err),
                     -WEFT_E_RESOURCE_EXHAUSTED);
    assert_null(buf);
    assert_int_equal(len, 0);
    assert_non_null(strstr(f->err.message, "use more shards"));
    assert_non_null(strstr(f->err.message, "limit is 65536 bytes"));
    assert_false(weft_store_poisoned(f->a));
    /* Back at the production cap the same state fits. */
    store_snapshot_cap_tighten(f->a, WEFT_SNAPSHOT_BYTES_MAX);
    snapshot_of(f, f->a, &buf, &len);
    free(buf);
}

/* The cap is on the whole buffer: a cap one byte below a state's image refuses it, and a cap
 * equal to it accepts it. */
static void test_size_cap_exact(void **state) {
    fixture *f = *state;
    populate(f, f->a, 4, 11);
    void *buf;
    size_t len, exact;
    snapshot_of(f, f->a, &buf, &exact);
    free(buf);
    store_snapshot_cap_tighten(f->a, exact - 1);
    assert_int_equal(weft_store_snapshot(f->a, heap_alloc, &buf, &len, &f->err),
                     -WEFT_E_RESOURCE_EXHAUSTED);
    store_snapshot_cap_tighten(f->a, exact);
    snapshot_of(f, f->a, &buf, &len);
    assert_int_equal(len, exact);
    free(buf);
}

static void test_snapshot_alloc_failure(void **state) {
    fixture *f = *state;
    populate(f, f->a, 1, 9);
    void *buf = NULL;
    size_t len = 0;
    assert_int_equal(weft_store_snapshot(f->a, heap_alloc_fail, &buf, &len, &f->err),
                     -WEFT_E_RESOURCE_EXHAUSTED);
    assert_null(buf);
    assert_false(weft_store_poisoned(f->a));
}

/* A restore that fails after validation (here: restore.tmp cannot be created) poisons the
 * store; reopening the directory finds the old state intact. */
static void test_restore_failure_poisons(void **state) {
    fixture *f = *state;
    populate(f, f->a, 1, 100);
    populate(f, f->b, 2, 200);
    void *buf;
    size_t len;
    snapshot_of(f, f->a, &buf, &len);
    char tmp[128];
    snprintf(tmp, sizeof tmp, "%s/restore.tmp", f->dir_b);
    assert_int_equal(mkdir(tmp, 0700), 0);
    assert_int_equal(weft_store_restore(f->b, buf, len, &f->err), -WEFT_E_INTERNAL);
    assert_non_null(strstr(f->err.message, "restore.tmp"));
    assert_true(weft_store_poisoned(f->b));
    char first[WEFT_ERR_MESSAGE_BYTES_MAX];
    snprintf(first, sizeof first, "%s", f->err.message);
    weft_txn *t;
    assert_int_equal(weft_txn_begin(f->b, false, &t, &f->err), -WEFT_E_INTERNAL);
    assert_non_null(strstr(f->err.message, first));
    weft_store_close(f->b);
    f->b = NULL;
    assert_int_equal(rmdir(tmp), 0);
    assert_int_equal(weft_store_open(&f->b, f->dir_b, NULL, &f->err), 0);
    uint64_t idx = 0;
    assert_int_equal(weft_store_applied_index(f->b, &idx, &f->err), 0);
    assert_int_equal(idx, 200);
    free(buf);
}

/* A restore.tmp left by a crash mid-restore is removed at open. */
static void test_stale_tmp_removed(void **state) {
    fixture *f = *state;
    weft_store_close(f->b);
    f->b = NULL;
    char tmp[128];
    snprintf(tmp, sizeof tmp, "%s/restore.tmp", f->dir_b);
    FILE *fp = fopen(tmp, "w");
    assert_non_null(fp);
    fputs("half an image", fp);
    fclose(fp);
    assert_int_equal(weft_store_open(&f->b, f->dir_b, NULL, &f->err), 0);
    assert_false(file_exists(f->dir_b, "restore.tmp"));
}

/* The writer of test_concurrent_writer: commit i writes run row i and applied index i + 1,
 * so in any committed state the applied index equals the number of run rows. */
typedef struct writer_ctx {
    weft_store *s;    /* store a, written only by this thread while it runs */
    atomic_bool done; /* set when the writer has finished */
    int failures;     /* calls that failed; must stay 0 */
} writer_ctx;

static void *writer_main(void *arg) {
    writer_ctx *w = arg;
    weft_err err;
    for (uint64_t i = 0; i < TEST_CONCURRENT_COMMITS_COUNT; i++) {
        weft_txn *t;
        weft_key k;
        weft_key_history(&k, 1, i);
        int rc = weft_txn_begin(w->s, true, &t, &err);
        if (rc != 0) {
            w->failures++;
            break;
        }
        rc = weft_kv_put(t, WEFT_TBL_RUNS, k.bytes, k.len, "r", 1, &err);
        if (rc == 0) rc = weft_meta_put_u64(t, WEFT_META_APPLIED_INDEX, i + 1, &err);
        if (rc == 0) rc = weft_txn_commit(t, &err);
        if (rc != 0) w->failures++;
        /* Gaps between commits let some snapshots through, as apply pauses between entries. */
        if (i % 50 == 0) usleep(TEST_WRITER_PAUSE_US);
    }
    atomic_store(&w->done, true);
    return NULL;
}

static uint64_t count_rows(fixture *f, weft_store *s, weft_table tbl) {
    weft_txn *t;
    weft_cursor *c;
    weft_val k, v;
    assert_int_equal(weft_txn_begin(s, false, &t, &f->err), 0);
    assert_int_equal(weft_cursor_open(t, tbl, &c, &f->err), 0);
    uint64_t n = 0;
    for (int rc = weft_cursor_seek(c, NULL, 0, &k, &v, &f->err); rc == 0;
         rc = weft_cursor_next(c, &k, &v, &f->err)) {
        n++;
    }
    weft_cursor_close(c);
    weft_txn_abort(t);
    return n;
}

/* Snapshots taken while another thread commits (as raft's async snapshots copy on a threadpool
 * thread while apply commits on the loop): none is refused, and each holds exactly the state
 * its header's applied index names, even when writes committed during the copy. */
static void test_concurrent_writer(void **state) {
    fixture *f = *state;
    weft_store_close(f->a);
    f->a = NULL;
    weft_store_opts fast = {.map_bytes = 0, .no_sync = true};
    assert_int_equal(weft_store_open(&f->a, f->dir_a, &fast, &f->err), 0);
    writer_ctx w = {.s = f->a, .failures = 0};
    atomic_init(&w.done, false);
    pthread_t th;
    assert_int_equal(pthread_create(&th, NULL, writer_main, &w), 0);
    int ok = 0, moved = 0;
    uint64_t last = 0;
    for (int i = 0; i < TEST_CONCURRENT_SNAPSHOTS_MAX && !atomic_load(&w.done); i++) {
        /* The live env's applied index before the copy: written by the writer thread, so
         * read through a transaction of ours (LMDB allows concurrent readers). */
        uint64_t before = 0;
        assert_int_equal(weft_store_applied_index(f->a, &before, &f->err), 0);
        void *buf;
        size_t len;
        assert_int_equal(weft_store_snapshot(f->a, heap_alloc, &buf, &len, &f->err), 0);
        uint64_t after = 0;
        assert_int_equal(weft_store_applied_index(f->a, &after, &f->err), 0);
        uint64_t idx;
        assert_int_equal(weft_store_snapshot_applied_index(buf, len, &idx, &f->err), 0);
        /* The image is a state between the two reads, and never older than an earlier one. */
        assert_true(idx >= before && idx <= after);
        assert_true(idx >= last);
        last = idx;
        if (after != before) moved++;
        assert_int_equal(weft_store_restore(f->b, buf, len, &f->err), 0);
        assert_int_equal(count_rows(f, f->b, WEFT_TBL_RUNS), idx);
        free(buf);
        ok++;
    }
    assert_int_equal(pthread_join(th, NULL), 0);
    assert_int_equal(w.failures, 0);
    assert_false(weft_store_poisoned(f->a));
    assert_true(ok > 0);
    print_message("snapshots during writes: %d consistent, %d with commits during the copy\n",
                  ok, moved);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_roundtrip, setup, teardown),
        cmocka_unit_test_setup_teardown(test_restore_twice, setup, teardown),
        cmocka_unit_test_setup_teardown(test_empty_store, setup, teardown),
        cmocka_unit_test_setup_teardown(test_corrupt_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(test_size_cap, setup, teardown),
        cmocka_unit_test_setup_teardown(test_size_cap_exact, setup, teardown),
        cmocka_unit_test_setup_teardown(test_snapshot_alloc_failure, setup, teardown),
        cmocka_unit_test_setup_teardown(test_restore_failure_poisons, setup, teardown),
        cmocka_unit_test_setup_teardown(test_stale_tmp_removed, setup, teardown),
        cmocka_unit_test_setup_teardown(test_concurrent_writer, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
