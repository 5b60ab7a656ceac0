/* snapshot.c: snapshot images of a shard env, and restoring an env from one (DESIGN section 5).
 *
 * Image format, version 1. All integers are big-endian.
 *
 *   offset  bytes  field
 *        0      8  magic "WEFTSNP1"
 *        8      4  format version (1)
 *       12      8  applied index of the state inside the image
 *       20      8  LMDB image length in bytes (the image is the rest of the buffer)
 *       28      8  xxh3-64 of bytes 0..27 followed by the LMDB image
 *       36      -  the LMDB image: a compacted copy of data.mdb (mdb_env_copyfd2, MDB_CP_COMPACT,
 *                  into a memfd, mapped and copied into the caller's buffer)
 *
 * The header's applied index is read from the copied image itself (snap_image_applied_index),
 * never from the live env: LMDB's copy is one consistent read transaction, so the index and
 * the state in the image always agree even while another thread commits during the copy
 * (raft's async snapshots copy on a threadpool thread while apply runs on the loop).
 *
 * The checksum covers the header fields too, so a flipped applied index is caught by restore.
 * weft_store_snapshot_applied_index reads only the header (a restart must not hash O(state)
 * to learn it can skip the restore), so it checks magic, version and length, not the sum.
 *
 * The whole buffer, header included, must stay under WEFT_SNAPSHOT_BYTES_MAX: libraft 0.15
 * cannot read back a snapshot file over 2 GiB (raft#371). */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>
#define XXH_STATIC_LINKING_ONLY /* XXH3_state_t on the stack */
#include <xxhash.h>

#include "keys.h"
#include "store_impl.h"

#define SNAP_MAGIC "WEFTSNP1"
#define SNAP_MAGIC_BYTES 8u
#define SNAP_FORMAT_VERSION 1u
/* Header bytes covered by the checksum: everything before the checksum field. */
#define SNAP_CHECKED_HEADER_BYTES 28u
#define SNAP_HEADER_BYTES 36u
/* Bytes moved by one write call while writing an image, to bound each syscall. */
#define SNAP_IO_CHUNK_BYTES (8u * 1024u * 1024u)
/* LMDB keeps two meta pages at the start of every data file, copies included. */
#define SNAP_LMDB_META_PAGES_COUNT 2u

_Static_assert(SNAP_CHECKED_HEADER_BYTES + 8u == SNAP_HEADER_BYTES, "checksum ends the header");
_Static_assert(SNAP_MAGIC_BYTES + 4u + 8u + 8u == SNAP_CHECKED_HEADER_BYTES, "header layout");
_Static_assert(WEFT_SNAPSHOT_BYTES_MAX < 2ull * 1024ull * 1024ull * 1024ull,
               "libraft 0.15 cannot read snapshot files of 2 GiB or more");

/* The decoded header. */
typedef struct snap_header {
    uint32_t format_version; /* SNAP_FORMAT_VERSION */
    uint64_t applied_index;  /* applied index stored inside the image */
    uint64_t image_bytes;    /* length of the LMDB image after the header */
    uint64_t checksum;       /* xxh3-64 of the checked header bytes and the image */
} snap_header;

/* ---- Header ---- */

static void snap_header_write(uint8_t *buf, const snap_header *h) {
    WEFT_ASSERT(buf != NULL && h != NULL);
    WEFT_ASSERT(h->format_version == SNAP_FORMAT_VERSION);
    memcpy(buf, SNAP_MAGIC, SNAP_MAGIC_BYTES);
    weft_be32_put(buf + 8, h->format_version);
    weft_be64_put(buf + 12, h->applied_index);
    weft_be64_put(buf + 20, h->image_bytes);
    weft_be64_put(buf + 28, h->checksum);
}

static int snap_header_read(const void *buf, size_t len, snap_header *h, weft_err *err) {
    WEFT_ASSERT(h != NULL);
    WEFT_ASSERT(buf != NULL || len == 0);
    if (len < SNAP_HEADER_BYTES) {
        return weft_err_set(err, WEFT_E_INVALID_ARGUMENT, "",
                            "shard snapshot is %zu bytes, shorter than its %u-byte header: the "
                            "snapshot is truncated; take a new one from a healthy replica",
                            len, SNAP_HEADER_BYTES);
    }
    const uint8_t *p = buf;
    if (memcmp(p, SNAP_MAGIC, SNAP_MAGIC_BYTES) != 0) {
        return weft_err_set(err, WEFT_E_INVALID_ARGUMENT, "",
                            "shard snapshot has no WEFTSNP1 magic: it is not a weft shard "
                            "snapshot or it is corrupt; take a new one from a healthy replica");
    }
    h->format_version = weft_be32_get(p + 8);
    h->applied_index = weft_be64_get(p + 12);
    h->image_bytes = weft_be64_get(p + 20);
    h->checksum = weft_be64_get(p + 28);
    if (h->format_version != SNAP_FORMAT_VERSION) {
        return weft_err_set(err, WEFT_E_INVALID_ARGUMENT, "",
                            "shard snapshot format version %u is not supported (this build "
                            "reads %u): run the same weft version on every node",
                            h->format_version, SNAP_FORMAT_VERSION);
    }
    if (h->image_bytes != len - SNAP_HEADER_BYTES) {
        return weft_err_set(err, WEFT_E_INVALID_ARGUMENT, "",
                            "shard snapshot says its image is %llu bytes but %zu follow the "
                            "header: the snapshot is truncated or corrupt; take a new one",
                            (unsigned long long)h->image_bytes, len - SNAP_HEADER_BYTES);
    }
    return 0;
}

/* The checksum of a complete buffer: the checked header bytes, then the image. */
static uint64_t snap_checksum(const uint8_t *buf, size_t len) {
    WEFT_ASSERT(buf != NULL);
    WEFT_ASSERT(len >= SNAP_HEADER_BYTES);
    XXH3_state_t st;
    XXH3_64bits_reset(&st);
    XXH3_64bits_update(&st, buf, SNAP_CHECKED_HEADER_BYTES);
    XXH3_64bits_update(&st, buf + SNAP_HEADER_BYTES, len - SNAP_HEADER_BYTES);
    return XXH3_64bits_digest(&st);
}

int weft_store_snapshot_applied_index(const void *buf, size_t len, uint64_t *index, weft_err *err) {
    WEFT_ASSERT(index != NULL);
    *index = 0;
    snap_header h = {0}; /* zeroed: gcc -O3 cannot see snap_header_read fills it on success */
    int rc = snap_header_read(buf, len, &h, err);
    if (rc != 0) return rc;
    WEFT_ASSERT(h.image_bytes + SNAP_HEADER_BYTES == len);
    *index = h.applied_index;
    return 0;
}

/* ---- Snapshot ---- */

/* What a snapshot learns before copying: the number of bytes the compacted copy will take. The
 * state may change before the copy; this is only the early refusal of an oversized shard. */
typedef struct snap_plan {
    uint64_t estimate_bytes; /* compacted image size: used pages of every table, plus metas */
} snap_plan;

/* Pages a compacted copy keeps: the main table (which names the others), every table's
 * pages, and the meta pages. Free pages are what compaction drops. */
static int snap_estimate(weft_store *s, MDB_txn *txn, snap_plan *plan, weft_err *err) {
    WEFT_ASSERT(txn != NULL && plan != NULL);
    MDB_dbi main_dbi;
    int rc = store_fault(s);
    if (rc == 0) rc = mdb_dbi_open(txn, NULL, 0, &main_dbi);
    if (rc != 0) return store_fail_lmdb(s, rc, "mdb_dbi_open (main) for a snapshot", err);
    uint64_t pages = SNAP_LMDB_META_PAGES_COUNT;
    unsigned psize = 0;
    for (int t = -1; t < WEFT_TBL__COUNT; t++) {
        MDB_stat st;
        rc = store_fault(s);
        if (rc == 0) rc = mdb_stat(txn, t < 0 ? main_dbi : s->dbis[t], &st);
        if (rc != 0) return store_fail_lmdb(s, rc, "mdb_stat for a snapshot", err);
        pages += st.ms_branch_pages + st.ms_leaf_pages + st.ms_overflow_pages;
        psize = st.ms_psize;
    }
    WEFT_ASSERT(psize > 0);
    plan->estimate_bytes = pages * psize;
    WEFT_ASSERT(plan->estimate_bytes >= SNAP_LMDB_META_PAGES_COUNT * psize);
    return 0;
}

static int snap_plan_make(weft_store *s, snap_plan *plan, weft_err *err) {
    WEFT_ASSERT(s->env != NULL && plan != NULL);
    MDB_txn *txn = NULL;
    int rc = store_fault(s);
    if (rc == 0) rc = mdb_txn_begin(s->env, NULL, MDB_RDONLY, &txn);
    if (rc != 0) return store_fail_lmdb(s, rc, "mdb_txn_begin for a snapshot", err);
    rc = snap_estimate(s, txn, plan, err);
    mdb_txn_abort(txn);
    return rc;
}

/* Reads the meta applied_index of the copy in `fd` (0 when it has none) by opening the copy as
 * an LMDB env of its own: read-only, without a lock file, through /proc/self/fd. This is the
 * index of exactly the state that was copied, whatever committed in the live env meanwhile. A
 * copy that cannot be read back is a storage failure (poisons the store), like a failed copy. */
static int snap_image_applied_index(weft_store *s, int fd, uint64_t *index, weft_err *err) {
    WEFT_ASSERT(fd >= 0 && index != NULL);
    *index = 0;
    char path[64];
    snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
    MDB_env *env = NULL;
    MDB_txn *txn = NULL;
    const char *step = "mdb_env_create of the copy for a snapshot";
    int rc = mdb_env_create(&env);
    if (rc == 0) {
        step = "mdb_env_set_maxdbs of the copy for a snapshot";
        rc = mdb_env_set_maxdbs(env, WEFT_TBL__COUNT);
    }
    if (rc == 0) {
        step = "mdb_env_open of the copy for a snapshot";
        rc = store_fault(s);
        if (rc == 0) {
            rc = mdb_env_open(env, path, MDB_NOSUBDIR | MDB_RDONLY | MDB_NOLOCK | MDB_NOTLS,
                              0400);
        }
    }
    if (rc == 0) {
        step = "mdb_txn_begin on the copy for a snapshot";
        rc = mdb_txn_begin(env, NULL, MDB_RDONLY, &txn);
    }
    MDB_dbi meta;
    if (rc == 0) {
        step = "mdb_dbi_open (meta) on the copy for a snapshot";
        rc = mdb_dbi_open(txn, store_table_name(WEFT_TBL_META), 0, &meta);
    }
    MDB_val v = {0};
    if (rc == 0) {
        step = "mdb_get applied_index from the copy for a snapshot";
        MDB_val k = {.mv_size = strlen(WEFT_META_APPLIED_INDEX),
                     .mv_data = (void *)WEFT_META_APPLIED_INDEX};
        rc = store_fault(s);
        if (rc == 0) rc = mdb_get(txn, meta, &k, &v);
        if (rc == MDB_NOTFOUND) {
            rc = 0; /* a store nothing was applied to */
            v.mv_size = 8;
            v.mv_data = NULL;
        }
    }
    if (rc == 0 && v.mv_size != 8) {
        if (txn != NULL) mdb_txn_abort(txn);
        mdb_env_close(env);
        return store_fail(s, err,
                          "meta applied_index in %s has %zu bytes, not 8: the env is "
                          "corrupt; rebuild this replica from its peers",
                          s->dir, v.mv_size);
    }
    if (rc == 0 && v.mv_data != NULL) *index = weft_be64_get(v.mv_data);
    if (txn != NULL) mdb_txn_abort(txn);
    if (env != NULL) mdb_env_close(env);
    if (rc != 0) return store_fail_lmdb(s, rc, step, err);
    return 0;
}

static int snap_too_big(const weft_store *s, uint64_t bytes, weft_err *err) {
    WEFT_ASSERT(bytes > s->snapshot_bytes_max);
    return weft_err_set(err, WEFT_E_RESOURCE_EXHAUSTED, "",
                        "shard snapshot of %s is %llu bytes; the limit is %llu bytes: use more "
                        "shards so that each shard's state stays under the limit",
                        s->dir, (unsigned long long)bytes,
                        (unsigned long long)s->snapshot_bytes_max);
}

/* Copies the env, compacted, into an anonymous memory file. Returns its fd in *fd_out and
 * its length in *bytes_out. */
static int snap_copy(weft_store *s, int *fd_out, uint64_t *bytes_out, weft_err *err) {
    WEFT_ASSERT(s->env != NULL);
    WEFT_ASSERT(fd_out != NULL && bytes_out != NULL);
    int fd = memfd_create("weft-snapshot", MFD_CLOEXEC);
    if (fd < 0) {
        return weft_err_set(err, WEFT_E_RESOURCE_EXHAUSTED, "",
                            "snapshot of %s: memfd_create: %s: free memory and retry", s->dir,
                            strerror(errno));
    }
    int rc = store_fault(s);
    if (rc == 0) rc = mdb_env_copyfd2(s->env, fd, MDB_CP_COMPACT);
    if (rc != 0) {
        close(fd);
        return store_fail_lmdb(s, rc, "mdb_env_copyfd2 (compact) for a snapshot", err);
    }
    struct stat st;
    if (fstat(fd, &st) != 0) {
        int e = errno;
        close(fd);
        return weft_err_set(err, WEFT_E_INTERNAL, "", "snapshot of %s: fstat of the copy: %s",
                            s->dir, strerror(e));
    }
    WEFT_ASSERT(st.st_size > 0);
    *fd_out = fd;
    *bytes_out = (uint64_t)st.st_size;
    return 0;
}

/* Builds the buffer: header, then the image. The copy is mapped before `alloc` runs, so that
 * nothing can fail once the caller's memory is taken (`alloc` comes with no matching free). */
static int snap_fill(weft_store *s, uint64_t applied_index, int fd, uint64_t image_bytes,
                     void *(*alloc)(size_t), void **buf, size_t *len, weft_err *err) {
    WEFT_ASSERT(fd >= 0 && image_bytes > 0);
    size_t total = (size_t)(SNAP_HEADER_BYTES + image_bytes);
    void *image = mmap(NULL, (size_t)image_bytes, PROT_READ, MAP_SHARED, fd, 0);
    if (image == MAP_FAILED) {
        return weft_err_set(err, WEFT_E_RESOURCE_EXHAUSTED, "",
                            "snapshot of %s: mmap of the %llu-byte copy: %s: free memory or use "
                            "more shards",
                            s->dir, (unsigned long long)image_bytes, strerror(errno));
    }
    uint8_t *p = alloc(total);
    if (p == NULL) {
        munmap(image, (size_t)image_bytes);
        return weft_err_set(err, WEFT_E_RESOURCE_EXHAUSTED, "",
                            "snapshot of %s: cannot allocate %zu bytes: free memory or use more "
                            "shards",
                            s->dir, total);
    }
    memcpy(p + SNAP_HEADER_BYTES, image, (size_t)image_bytes);
    munmap(image, (size_t)image_bytes);
    snap_header h = {.format_version = SNAP_FORMAT_VERSION,
                     .applied_index = applied_index,
                     .image_bytes = image_bytes,
                     .checksum = 0};
    snap_header_write(p, &h);
    h.checksum = snap_checksum(p, total);
    snap_header_write(p, &h);
    /* The header is checked right after it is written, as a reader will see it. */
    snap_header check;
    int check_rc = snap_header_read(p, total, &check, NULL);
    WEFT_ASSERT(check_rc == 0);
    WEFT_ASSERT(check.applied_index == applied_index && check.checksum == h.checksum);
    *buf = p;
    *len = total;
    return 0;
}

int weft_store_snapshot(weft_store *s, void *(*alloc)(size_t), void **buf, size_t *len,
                        weft_err *err) {
    WEFT_ASSERT(s != NULL && alloc != NULL);
    WEFT_ASSERT(buf != NULL && len != NULL);
    *buf = NULL;
    *len = 0;
    int rc = store_check(s, err);
    if (rc != 0) return rc;
    snap_plan plan = {0}; /* zeroed: gcc -O2 cannot see snap_plan_make fills it on success */
    rc = snap_plan_make(s, &plan, err);
    if (rc != 0) return rc;
    /* Refuse before copying, so an oversized shard does not first fill memory with a copy. */
    if (SNAP_HEADER_BYTES + plan.estimate_bytes > s->snapshot_bytes_max) {
        return snap_too_big(s, SNAP_HEADER_BYTES + plan.estimate_bytes, err);
    }
    int fd = -1;
    uint64_t image_bytes = 0;
    rc = snap_copy(s, &fd, &image_bytes, err);
    if (rc != 0) return rc;
    if (SNAP_HEADER_BYTES + image_bytes > s->snapshot_bytes_max) {
        rc = snap_too_big(s, SNAP_HEADER_BYTES + image_bytes, err);
    } else {
        /* From the copy, not the live env: writes may have committed during the copy. */
        uint64_t applied_index = 0;
        rc = snap_image_applied_index(s, fd, &applied_index, err);
        if (rc == 0) rc = snap_fill(s, applied_index, fd, image_bytes, alloc, buf, len, err);
    }
    close(fd);
    return rc;
}

/* ---- Restore ---- */

/* The fault seam (fault.h) for a restore step that is a syscall: 0 to perform it, or the
 * errno it fails with. An MDB_* code means nothing to strerror, so it becomes EIO. */
static int snap_fault_errno(weft_store *s) {
    int rc = store_fault(s);
    WEFT_ASSERT(rc != MDB_NOTFOUND);
    if (rc == 0) return 0;
    return rc > 0 ? rc : EIO;
}

static int snap_write_all(int fd, const uint8_t *p, size_t len) {
    size_t done = 0;
    while (done < len) {
        size_t want = WEFT_MIN(len - done, (size_t)SNAP_IO_CHUNK_BYTES);
        ssize_t n = write(fd, p + done, want);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) return -errno;
        WEFT_ASSERT(n > 0);
        done += (size_t)n;
    }
    WEFT_ASSERT(done == len);
    return 0;
}

/* fsyncs a directory, so that a rename or a create inside it survives a crash. */
static int snap_dir_sync(weft_store *s, const char *why, weft_err *err) {
    WEFT_ASSERT(s != NULL && why != NULL);
    WEFT_ASSERT(s->dir[0] != '\0');
    int fd = open(s->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) {
        return store_fail(s, err,
                          "restore of %s: open the directory to fsync it (%s): %s: check "
                          "the disk, then restart the replica",
                          s->dir, why, strerror(errno));
    }
    int e = snap_fault_errno(s);
    int rc = e != 0 ? -1 : fsync(fd);
    if (e == 0) e = errno;
    close(fd);
    if (rc != 0) {
        /* Never retry an fsync (STYLE rule 10): the page cache state is unknown after it. */
        return store_fail(s, err,
                          "restore of %s: fsync of the directory (%s): %s: check the "
                          "disk, then restart the replica",
                          s->dir, why, strerror(e));
    }
    return 0;
}

/* Writes the LMDB image to <dir>/restore.tmp and makes it durable. */
static int snap_tmp_write(weft_store *s, const uint8_t *image, size_t bytes, const char *path,
                          weft_err *err) {
    WEFT_ASSERT(image != NULL && bytes > 0);
    WEFT_ASSERT(path != NULL && s->env != NULL);
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0) {
        return store_fail(s, err,
                          "restore of %s: create %s: %s: check permissions and free "
                          "space, then restart the replica",
                          s->dir, path, strerror(errno));
    }
    int e = snap_fault_errno(s);
    int rc = e != 0 ? -e : snap_write_all(fd, image, bytes);
    const char *step = "write";
    if (rc == 0) {
        step = "fsync";
        e = snap_fault_errno(s);
        rc = e != 0 ? -e : (fsync(fd) == 0 ? 0 : -errno);
    }
    close(fd);
    if (rc != 0) {
        unlink(path);
        return store_fail(s, err,
                          "restore of %s: %s of %s: %s: check free space and the disk, "
                          "then restart the replica",
                          s->dir, step, path, strerror(-rc));
    }
    return snap_dir_sync(s, "new restore.tmp", err);
}

/* Closes the env, moves the new image into place and opens it again. Any failure here leaves
 * the env closed and the store poisoned. */
static int snap_env_swap(weft_store *s, const char *tmp_path, weft_err *err) {
    WEFT_ASSERT(s->env != NULL && tmp_path != NULL);
    char data_path[WEFT_STORE_PATH_BYTES_MAX];
    char lock_path[WEFT_STORE_PATH_BYTES_MAX];
    snprintf(data_path, sizeof data_path, "%s/data.mdb", s->dir);
    snprintf(lock_path, sizeof lock_path, "%s/lock.mdb", s->dir);
    mdb_env_close(s->env);
    s->env = NULL;
    int e = snap_fault_errno(s);
    if (e == 0 && rename(tmp_path, data_path) != 0) e = errno;
    if (e != 0) {
        return store_fail(s, err,
                          "restore of %s: rename %s over %s: %s: check the disk, then "
                          "restart the replica",
                          s->dir, tmp_path, data_path, strerror(e));
    }
    int rc = snap_dir_sync(s, "rename over data.mdb", err);
    if (rc != 0) return rc;
    /* The lock file carries the old env's transaction ids and reader slots. Only this process
     * opens a replica's env, so it is stale: remove it and let LMDB build a fresh one. */
    if (unlink(lock_path) != 0 && errno != ENOENT) {
        return store_fail(s, err,
                          "restore of %s: remove stale %s: %s: check permissions, then "
                          "restart the replica",
                          s->dir, lock_path, strerror(errno));
    }
    weft_err open_err;
    weft_err_clear(&open_err);
    rc = store_env_open(s, &open_err);
    if (rc != 0) return store_fail(s, err, "restore: reopen: %s", open_err.message);
    WEFT_ASSERT(s->env != NULL);
    return 0;
}

/* After the swap the env must hold what the header promised. */
static int snap_restored_check(weft_store *s, const snap_header *h, weft_err *err) {
    WEFT_ASSERT(s->env != NULL && h != NULL);
    WEFT_ASSERT(!weft_store_poisoned(s));
    uint64_t index = 0;
    int rc = weft_store_applied_index(s, &index, err);
    if (rc != 0) {
        weft_err_prefix(err, "restore: reading back the applied index");
        return rc;
    }
    if (index != h->applied_index) {
        return store_fail(s, err,
                          "restore of %s: the image holds applied index %llu but its "
                          "header says %llu: the snapshot was built wrongly; restart the "
                          "replica",
                          s->dir, (unsigned long long)index, (unsigned long long)h->applied_index);
    }
    return 0;
}

int weft_store_restore(weft_store *s, const void *buf, size_t len, weft_err *err) {
    WEFT_ASSERT(s != NULL);
    /* The env is closed and replaced: nothing may still be reading or writing it. */
    WEFT_ASSERT(s->write_txn == NULL && s->read_txns_count == 0);
    int rc = store_check(s, err);
    if (rc != 0) return rc;
    snap_header h = {0}; /* zeroed: gcc -O3 cannot see snap_header_read fills it on success */
    rc = snap_header_read(buf, len, &h, err);
    if (rc != 0) return rc;
    uint64_t sum = snap_checksum(buf, len);
    if (sum != h.checksum) {
        return weft_err_set(err, WEFT_E_INVALID_ARGUMENT, "",
                            "shard snapshot checksum mismatch (header %016llx, data %016llx): "
                            "the snapshot is corrupt; take a new one from a healthy replica",
                            (unsigned long long)h.checksum, (unsigned long long)sum);
    }
    WEFT_ASSERT(s->env != NULL);
    char tmp_path[WEFT_STORE_PATH_BYTES_MAX];
    snprintf(tmp_path, sizeof tmp_path, "%s/restore.tmp", s->dir);
    const uint8_t *image = (const uint8_t *)buf + SNAP_HEADER_BYTES;
    rc = snap_tmp_write(s, image, (size_t)h.image_bytes, tmp_path, err);
    if (rc == 0) rc = snap_env_swap(s, tmp_path, err);
    if (rc == 0) rc = snap_restored_check(s, &h, err);
    WEFT_ASSERT(rc == 0 || weft_store_poisoned(s));
    return rc;
}
