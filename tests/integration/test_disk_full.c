/* test_disk_full.c: a full disk refuses new work, says where, and recovers on its own.
 * A data dir is moved onto a small tmpfs (this test runs as root, as CI does) and filled:
 *   - a single node with a free-space floor (--disk-free-bytes-min): once the floor is crossed
 *     a start is refused with RESOURCE_EXHAUSTED naming the data dir and the flag, a read is
 *     still served, ClusterStatus shows the node's disk as low, and once the filler file is
 *     deleted starts succeed again, without a restart;
 *   - a 3-node cluster with the floor off, whose node 3 crashes and starts again on a disk
 *     with no room for a raft log segment, so its raft writes really fail (ENOSPC): the node
 *     logs which write failed and where, and once space is freed every replica on it catches
 *     up by itself, without another restart of the process. libraft 0.15's
 *     raft_uv stores nothing again after a failed segment preparation, so before the replica
 *     restart on a failed write (raft/guard.h) a replica on node 3 stayed behind for good. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include "helper_cluster.h"
#include "helper_weftd.h"

/* Size of the tmpfs a data dir is moved to: room for a few MiB of raft segments and LMDB envs
 * per shard, small enough to fill in a moment. */
#define DF_TMPFS_BYTES (64ull * 1024u * 1024u)
/* What the filler file leaves free on the single node: under its floor. */
#define DF_LEAVE_FREE_BYTES (6ull * 1024u * 1024u)
/* The single node's floor: above DF_LEAVE_FREE_BYTES, below what a fresh data dir leaves. */
#define DF_FLOOR_BYTES "12582912"
/* Shards of both set-ups (each preallocates raft segments on the tmpfs). */
#define DF_SHARDS 4u
/* Bound on noticing the floor (checked every second) and on recovering once space is back. */
#define DF_REACT_TIMEOUT_MS 20000u
/* Bound on a restarted replica catching up once the disk has space again. Before the fix a
 * replica stayed behind for good; raft's own retry (install-snapshot-timeout-ms, 30 s by
 * default) is longer than this and never helped. */
#define DF_CATCH_UP_TIMEOUT_MS 20000u

/* Mount points made by this test, unmounted at exit also after a failed assertion. */
static char df_mounts[2][PATH_MAX];

static void df_umount_all(void *unused) {
    (void)unused;
    for (unsigned i = 0; i < 2; i++) {
        if (df_mounts[i][0] != '\0') umount2(df_mounts[i], MNT_DETACH);
        df_mounts[i][0] = '\0';
    }
}

static int df_run(const char *cmd) {
    int rc = system(cmd);
    if (rc != 0) fprintf(stderr, "command failed (%d): %s\n", rc, cmd);
    return rc;
}

/* Moves the stopped node's data dir onto a fresh tmpfs of DF_TMPFS_BYTES at the same path. */
static void df_move_to_tmpfs(weftd *w, unsigned slot) {
    char cmd[3 * PATH_MAX + 64];
    snprintf(cmd, sizeof cmd, "mv '%s' '%s.disk' && mkdir '%s'", w->data_dir, w->data_dir,
             w->data_dir);
    assert_int_equal(df_run(cmd), 0);
    char opts[64];
    snprintf(opts, sizeof opts, "size=%llu", (unsigned long long)DF_TMPFS_BYTES);
    if (mount("tmpfs", w->data_dir, "tmpfs", 0, opts) != 0) {
        fail_msg("mount tmpfs on %s: %s (this test needs root, as CI has)", w->data_dir,
                 strerror(errno));
    }
    snprintf(df_mounts[slot], sizeof df_mounts[slot], "%s", w->data_dir);
    proc_cleanup_register(df_mounts, df_umount_all);
    snprintf(cmd, sizeof cmd, "cp -a '%s.disk/.' '%s/' && rm -rf '%s.disk'", w->data_dir,
             w->data_dir, w->data_dir);
    assert_int_equal(df_run(cmd), 0);
}

static uint64_t df_free_bytes(const char *dir) {
    struct statvfs st;
    assert_int_equal(statvfs(dir, &st), 0);
    return (uint64_t)st.f_bavail * (uint64_t)st.f_frsize;
}

/* Writes a filler file that leaves about `leave` bytes free in dir; returns its path. */
static void df_fill(const char *dir, uint64_t leave, char *path, size_t cap) {
    snprintf(path, cap, "%s/filler", dir);
    uint64_t free_bytes = df_free_bytes(dir);
    assert_true(free_bytes > leave);
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    assert_true(fd >= 0);
    static char block[1 << 20];
    uint64_t want = free_bytes - leave;
    while (want > 0) {
        size_t n = want < sizeof block ? (size_t)want : sizeof block;
        ssize_t w = write(fd, block, n);
        assert_true(w > 0);
        want -= (uint64_t)w;
    }
    assert_int_equal(close(fd), 0);
}

static int df_start(weft_client *c, const char *wid, weft_err *err) {
    weft_start_req req = {
        .workflow_id = weft_str_c(wid),
        .workflow_type = weft_str_c("disk"),
        .task_queue = weft_str_c("q-disk"),
        .input = {.ptr = (const uint8_t *)"{\"pad\":\"0123456789abcdef0123456789abcdef\"}",
                  .len = 42},
    };
    weft_start_resp resp;
    weft_response h = {0};
    int rc = weft_client_start(c, &req, &resp, &h, err);
    weft_response_free(&h);
    return rc;
}

/* ---- one node with a floor ---- */

static void test_floor_refuses_new_work_and_recovers(void **state) {
    (void)state;
    static weftd w;
    const char *const flags[] = {"--shards", "4", NULL};
    assert_int_equal(weftd_start(&w, flags), 0);
    assert_int_equal(weftd_stop(&w), 0);
    df_move_to_tmpfs(&w, 0);
    const char *const floor_flags[] = {"--shards", "4", "--disk-free-bytes-min", DF_FLOOR_BYTES,
                                       NULL};
    weftd_set_extra(&w, floor_flags);
    assert_int_equal(weftd_restart(&w), 0);
    weft_client *c = NULL;
    assert_int_equal(weftd_client(&w, "disk-full", &c), 0);
    weft_err err;
    assert_int_equal(df_start(c, "before-full", &err), 0);

    char filler[PATH_MAX];
    df_fill(w.data_dir, DF_LEAVE_FREE_BYTES, filler, sizeof filler);
    /* The floor is read every second: wait for the refusal, then look at what it says. */
    uint64_t deadline = weft_mono_ms() + DF_REACT_TIMEOUT_MS;
    unsigned k = 0;
    for (;;) {
        char wid[64];
        snprintf(wid, sizeof wid, "while-full-%u", k++);
        int rc = df_start(c, wid, &err);
        if (rc != 0 && err.code == WEFT_E_RESOURCE_EXHAUSTED) break;
        if (weft_mono_ms() >= deadline) fail_msg("no start was refused on a full disk");
        proc_sleep_ms(50);
    }
    assert_non_null(strstr(err.message, w.data_dir));
    assert_non_null(strstr(err.message, "disk-free-bytes-min"));
    assert_non_null(strstr(err.message, "free space"));
    assert_true(weftd_stderr_contains(&w, "disk low"));

    /* What it can still do, it does: a read of a run that exists. */
    weft_describe_req dq = {.workflow_id = weft_str_c("before-full")};
    weft_describe_resp dr;
    weft_response dh = {0};
    assert_int_equal(weft_client_describe(c, &dq, &dr, &dh, &err), 0);
    weft_response_free(&dh);
    /* And it says what is wrong with it. */
    weft_cluster_status_resp st;
    weft_response sh = {0};
    assert_int_equal(weft_client_cluster_status(c, &st, &sh, &err), 0);
    assert_int_equal(st.nodes_count, 1);
    assert_true(st.nodes[0].health.len > 0);
    assert_non_null(memmem(st.nodes[0].health.ptr, st.nodes[0].health.len, "disk low", 8));
    weft_response_free(&sh);

    /* Space back: starts are taken again, with no restart. */
    assert_int_equal(unlink(filler), 0);
    deadline = weft_mono_ms() + DF_REACT_TIMEOUT_MS;
    while (df_start(c, "after-full", &err) != 0) {
        if (weft_mono_ms() >= deadline)
            fail_msg("starts still refused after space was freed: %s", err.message);
        proc_sleep_ms(100);
    }
    assert_int_equal(w.proc.starts, 2);
    assert_true(weftd_stderr_contains(&w, "disk space is back"));
    weft_client_close(c);
    assert_int_equal(weftd_stop(&w), 0);
    df_umount_all(NULL);
    weftd_destroy(&w);
}

/* ---- a cluster whose node 3 runs out of disk for real ---- */

/* What node 3's disk keeps free when it restarts on it: room for raft_uv's 4 KiB probe file
 * and small metadata writes, not for a 1 MiB log segment, so raft starts and its first append
 * fails. */
#define DF_RESTART_FREE_BYTES (256u * 1024u)
/* Bound on node 3 failing a raft write once it runs on that disk. */
#define DF_WRITE_FAIL_TIMEOUT_MS 60000u

/* Sends starts through node 1 until node 3's log names a failed raft write. */
static void df_starts_until_write_fails(hc_cluster *c, weft_client *cl) {
    weft_err err;
    uint64_t deadline = weft_mono_ms() + DF_WRITE_FAIL_TIMEOUT_MS;
    for (unsigned k = 0;; k++) {
        char wid[64];
        snprintf(wid, sizeof wid, "fill-%u", k);
        (void)df_start(cl, wid, &err); /* may fail while node 3 restarts replicas */
        if (k % 20 == 0 && weftd_stderr_contains(&c->node[2], "stopping replica: raft")) return;
        if (weft_mono_ms() >= deadline) {
            hc_print_stderr(c, 80);
            fail_msg("node 3 failed no raft write within %u ms", DF_WRITE_FAIL_TIMEOUT_MS);
        }
    }
}

static void test_cluster_replica_recovers_after_disk_full(void **state) {
    (void)state;
    static hc_cluster c;
    const char *const flags[] = {"--disk-free-bytes-min", "0", NULL};
    assert_int_equal(hc_start(&c, 3, DF_SHARDS, 3, flags), 0);
    assert_int_equal(hc_stop(&c, 3), 0);
    df_move_to_tmpfs(&c.node[2], 1);
    assert_int_equal(hc_restart(&c, 3), 0);
    assert_int_equal(hc_wait_caught_up(&c, 3, DF_CATCH_UP_TIMEOUT_MS), 0);
    int starts_before = c.node[2].proc.starts;

    weft_client *cl = NULL;
    assert_int_equal(hc_node_client(&c, 1, "disk-full", &cl), 0);
    /* A crash, and a start on a disk that is all but full: raft opens its logs but cannot
     * create a segment, so the replicas there fail their first writes. */
    hc_kill9(&c, 3);
    char filler[PATH_MAX];
    df_fill(c.node[2].data_dir, DF_RESTART_FREE_BYTES, filler, sizeof filler);
    assert_int_equal(hc_restart(&c, 3), 0);
    df_starts_until_write_fails(&c, cl);
    /* The log names the raft write that failed and where. */
    assert_true(weftd_stderr_contains(&c.node[2], c.node[2].data_dir));

    assert_int_equal(unlink(filler), 0);
    /* A few more writes, so that every shard's leader has entries node 3 must store. */
    weft_err err;
    for (unsigned k = 0; k < 40; k++) {
        char wid[64];
        snprintf(wid, sizeof wid, "after-%u", k);
        assert_int_equal(df_start(cl, wid, &err), 0);
    }
    if (hc_wait_caught_up(&c, 3, DF_CATCH_UP_TIMEOUT_MS) != 0) {
        hc_print_stderr(&c, 80);
        fail_msg("node 3 did not catch up within %u ms after space was freed",
                 DF_CATCH_UP_TIMEOUT_MS);
    }
    assert_true(hc_alive(&c, 3));
    /* No restart of the process but the crash above. */
    assert_int_equal(c.node[2].proc.starts, starts_before + 1);
    weft_client_close(cl);
    assert_int_equal(hc_stop_all(&c), 0);
    df_umount_all(NULL);
    hc_destroy(&c);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_floor_refuses_new_work_and_recovers),
        cmocka_unit_test(test_cluster_replica_recovers_after_disk_full),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
