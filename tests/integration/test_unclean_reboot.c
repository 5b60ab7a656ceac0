/* test_unclean_reboot.c: the MDB_NOSYNC rule of DESIGN section 5. Shard envs run without fsync;
 * weftd trusts them after a clean stop or a process crash in the same boot, and rebuilds them
 * from the raft snapshot and log after a crash in an earlier boot ("reboots" are faked through
 * --boot-id-file, the documented test seam). Every restart must give back byte-identical
 * describe and history for every run, and a rebuild must really replace the env files.
 *
 * First, unit checks of the storage side: a no-sync store flushes at close, a flush failure is
 * reported by close. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <errno.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "helper_weftd.h"
#include "helper_worker.h"
#include "storage/fault.h"
#include "storage/store.h"

#define UR_SHARDS 2u
#define UR_DONE_RUNS 30u /* run to completion before the first crash */
#define UR_OPEN_RUNS 4u  /* started on a queue nobody polls until after the rebuild */
#define UR_RUNS (UR_DONE_RUNS + UR_OPEN_RUNS)
#define UR_QUEUE "q-reboot"
#define UR_IDLE_QUEUE "q-reboot-idle"
#define UR_WORKER_THREADS 6u
#define UR_COMPLETE_TIMEOUT_MS 90000u
/* Reads issued, at most, to leave every shard with applied entries past its last snapshot. */
#define UR_LOG_TAIL_READS_MAX 64u
/* The file a trusted env keeps and a rebuilt one loses: proof the env dir was emptied. */
#define UR_CANARY_NAME "canary"
#define UR_LOG_LINE_BYTES 4096u

typedef struct ur {
    weftd w;                      /* the server */
    bool passed;                  /* teardown prints stderr otherwise */
    char dir[WEFTD_DIR_BYTES];    /* own temp dir: the boot id file */
    char boot_id_path[PATH_MAX];  /* dir/boot_id, given as --boot-id-file */
    weft_client *c;               /* main-thread client */
    weft_client *workers;         /* shared by the pool */
    wk_pool pool;                 /* worker threads */
    char run_ids[UR_RUNS][128];   /* run id per workflow */
    wk_capture expected[UR_RUNS]; /* what every restart must give back */
} ur;

/* ---- Small helpers ---- */

/* Best effort: a leftover temp file fails nothing, so the walk goes on. */
static int ur_rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw) {
    (void)st;
    (void)flag;
    (void)ftw;
    (void)remove(path);
    return 0;
}

static void ur_rm_tree(const char *dir) {
    if (dir[0] != '\0') nftw(dir, ur_rm_entry, 8, FTW_DEPTH | FTW_PHYS);
}

static void ur_file_put(const char *path, const char *text) {
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    assert_true(fputs(text, f) >= 0);
    assert_int_equal(fclose(f), 0);
}

static bool ur_file_exists(const char *path) {
    struct stat st;
    return stat(path, &st) == 0;
}

static void ur_state_path(const ur *t, uint32_t shard, const char *leaf, char *out, size_t cap) {
    int n = snprintf(out, cap, "%s/shards/%u/state/%s", t->w.data_dir, shard, leaf);
    assert_true(n > 0 && (size_t)n < cap);
}

/* ---- The weftd log ---- */

/* Calls `line_cb` on every stderr line written since the latest "==== weftd start" banner, or
 * on every line of every start when `whole` is set. */
static void ur_log_scan(const ur *t, bool whole, void (*line_cb)(const char *line, void *arg),
                        void *arg) {
    FILE *f = fopen(t->w.stderr_path, "r");
    assert_non_null(f);
    char line[UR_LOG_LINE_BYTES];
    long start_offset = 0;
    while (!whole && fgets(line, sizeof line, f) != NULL) {
        if (strncmp(line, "==== weftd start ", 17) == 0) start_offset = ftell(f);
    }
    assert_int_equal(fseek(f, start_offset, SEEK_SET), 0);
    while (fgets(line, sizeof line, f) != NULL)
        line_cb(line, arg);
    fclose(f);
}

typedef struct ur_count {
    const char *needle; /* substring searched */
    unsigned count;     /* lines holding it */
} ur_count;

static void ur_count_cb(const char *line, void *arg) {
    ur_count *c = arg;
    c->count += strstr(line, c->needle) != NULL;
}

static unsigned ur_log_count(const ur *t, const char *needle) {
    ur_count c = {.needle = needle, .count = 0};
    ur_log_scan(t, false, ur_count_cb, &c);
    return c.count;
}

/* Per shard, from the log: the snapshot restored and where raft's replay ended (latest start
 * only), or the last snapshot taken (every start). */
typedef struct ur_replay {
    unsigned long long restored[UR_SHARDS]; /* "restored snapshot at index N"; 0 if none */
    unsigned long long applied[UR_SHARDS];  /* "raft started: ..., applied N" */
    unsigned long long snapshot[UR_SHARDS]; /* last "snapshot of B bytes at index N" taken */
} ur_replay;

static void ur_replay_cb(const char *line, void *arg) {
    ur_replay *r = arg;
    const char *p = strstr(line, "shard=");
    unsigned shard = 0;
    unsigned long long a = 0, b = 0;
    if (p == NULL || sscanf(p, "shard=%u", &shard) != 1 || shard >= UR_SHARDS) return;
    if (sscanf(p, "shard=%*u restored snapshot at index %llu", &a) == 1) r->restored[shard] = a;
    if (sscanf(p, "shard=%*u raft started: last index %llu, applied %llu", &a, &b) == 2)
        r->applied[shard] = b;
    if (sscanf(p, "shard=%*u snapshot of %llu bytes at index %llu", &a, &b) == 2)
        r->snapshot[shard] = b;
}

static void ur_replay_read(const ur *t, bool whole, ur_replay *r) {
    memset(r, 0, sizeof *r);
    ur_log_scan(t, whole, ur_replay_cb, r);
}

/* ---- Workflows ---- */

static void ur_wf_id(unsigned i, char *buf, size_t cap) {
    snprintf(buf, cap, "reboot-%u", i);
}

static void ur_start(ur *t, unsigned i, const char *queue) {
    char wf[64], input[64];
    ur_wf_id(i, wf, sizeof wf);
    wk_script_input(input, sizeof input, 40u + (i % 3u) * 40u, i % 2u);
    weft_start_req s = {
        .workflow_id = weft_str_c(wf),
        .workflow_type = WEFT_STR_LIT("reboot"),
        .task_queue = weft_str_c(queue),
        .input = {.ptr = (const uint8_t *)input, .len = (uint32_t)strlen(input)},
        .workflow_task_timeout_ms = 2000,
    };
    weft_response h = {0};
    weft_start_resp r;
    weft_err err;
    int rc = weft_client_start(t->c, &s, &r, &h, &err);
    if (rc != 0) fprintf(stderr, "start %s: %s %s\n", wf, weft_error_name(rc), err.message);
    assert_int_equal(rc, 0);
    weft_str_copy(t->run_ids[i], sizeof t->run_ids[i], r.run_id);
    weft_response_free(&h);
}

/* The script of odd-numbered runs waits for one signal named "sig". */
static void ur_signal(ur *t, unsigned i) {
    char wf[64], request_id[64];
    ur_wf_id(i, wf, sizeof wf);
    snprintf(request_id, sizeof request_id, "reboot-sig-%u", i);
    weft_signal_req s = {.workflow_id = weft_str_c(wf),
                         .signal_name = WEFT_STR_LIT("sig"),
                         .request_id = weft_str_c(request_id)};
    weft_err err;
    int rc = weft_client_signal(t->c, &s, &err);
    if (rc != 0) fprintf(stderr, "signal %s: %s %s\n", wf, weft_error_name(rc), err.message);
    assert_int_equal(rc, 0);
}

static void ur_await_completed(ur *t, unsigned i, uint64_t deadline_ms) {
    char wf[64];
    ur_wf_id(i, wf, sizeof wf);
    uint32_t status = WEFT_STATUS_RUNNING;
    while (status == WEFT_STATUS_RUNNING) {
        assert_true(weft_mono_ms() < deadline_ms);
        weft_result_req q = {.workflow_id = weft_str_c(wf), .wait = true, .wait_timeout_ms = 5000};
        weft_result_resp r;
        weft_response h = {0};
        weft_err err;
        assert_int_equal(weft_client_result(t->c, &q, &r, &h, &err), 0);
        status = r.status;
        weft_response_free(&h);
    }
    assert_int_equal(status, WEFT_STATUS_COMPLETED);
}

/* Runs workflows [first, last) to completion on `queue` with a worker pool. */
static void ur_complete(ur *t, const char *queue, unsigned first, unsigned last) {
    assert_int_equal(wk_pool_start(&t->pool, t->workers, queue, UR_WORKER_THREADS), 0);
    for (unsigned i = first; i < last; i++) {
        if (i % 2u == 1u) ur_signal(t, i);
    }
    uint64_t deadline_ms = weft_mono_ms() + UR_COMPLETE_TIMEOUT_MS;
    for (unsigned i = first; i < last; i++)
        ur_await_completed(t, i, deadline_ms);
    wk_pool_stop(&t->pool);
}

/* ---- Captures ---- */

static void ur_capture_run(ur *t, unsigned i, wk_capture *cap) {
    char wf[64];
    ur_wf_id(i, wf, sizeof wf);
    weft_err err;
    assert_int_equal(wk_capture_run(t->c, wf, t->run_ids[i], cap, &err), 0);
}

static void ur_capture_all(ur *t) {
    for (unsigned i = 0; i < UR_RUNS; i++) {
        wk_capture_free(&t->expected[i]);
        ur_capture_run(t, i, &t->expected[i]);
    }
}

static void ur_expect_same_state(ur *t, const char *after) {
    unsigned differing = 0;
    for (unsigned i = 0; i < UR_RUNS; i++) {
        wk_capture now = {0};
        ur_capture_run(t, i, &now);
        if (!wk_capture_equal(&now, &t->expected[i])) {
            fprintf(stderr, "run reboot-%u differs after %s\n", i, after);
            differing++;
        }
        wk_capture_free(&now);
    }
    assert_int_equal(differing, 0);
}

/* ---- Crash set-ups ---- */

/* Leaves every shard with applied entries past its last snapshot, so a rebuild needs the log
 * as well as the snapshot: each read rides on a barrier entry of its run's shard. */
static void ur_leave_log_tail(ur *t) {
    for (unsigned reads = 0;; reads++) {
        weft_response h = {0};
        weft_cluster_status_resp s;
        weft_err err;
        assert_int_equal(weft_client_cluster_status(t->c, &s, &h, &err), 0);
        ur_replay r;
        ur_replay_read(t, true, &r);
        bool tail_everywhere = s.shards_count == UR_SHARDS;
        for (uint32_t i = 0; i < s.shards_count && i < UR_SHARDS; i++) {
            assert_true(r.snapshot[i] > 0); /* the threshold is low enough for one per shard */
            tail_everywhere &= s.shards[i].applied_index > r.snapshot[i];
        }
        weft_response_free(&h);
        if (tail_everywhere) return;
        assert_true(reads < UR_LOG_TAIL_READS_MAX);
        wk_capture cap = {0};
        ur_capture_run(t, reads % UR_RUNS, &cap);
        wk_capture_free(&cap);
    }
}

static void ur_plant_canaries(const ur *t) {
    for (uint32_t i = 0; i < UR_SHARDS; i++) {
        char path[PATH_MAX + 64];
        ur_state_path(t, i, UR_CANARY_NAME, path, sizeof path);
        ur_file_put(path, "a trusted env keeps this file; a rebuilt one loses it\n");
    }
}

/* Every shard's canary is present (trusted env) or gone (rebuilt env), and an env exists. */
static void ur_expect_canaries(const ur *t, bool present) {
    for (uint32_t i = 0; i < UR_SHARDS; i++) {
        char path[PATH_MAX + 64];
        ur_state_path(t, i, UR_CANARY_NAME, path, sizeof path);
        if (ur_file_exists(path) != present)
            fprintf(stderr, "%s is %s\n", path, present ? "gone" : "still there");
        assert_int_equal(ur_file_exists(path), present);
        ur_state_path(t, i, "data.mdb", path, sizeof path);
        assert_true(ur_file_exists(path));
    }
}

static void ur_expect_trusted(ur *t, const char *why_needle) {
    assert_int_equal(ur_log_count(t, "state env discarded"), 0);
    assert_int_equal(ur_log_count(t, why_needle), 1);
    assert_int_equal(ur_log_count(t, "restored snapshot"), 0);
    ur_expect_canaries(t, true);
}

/* Every shard logged its discard with the reason, restored its snapshot into the empty env,
 * and at least one replayed log entries past it. */
static void ur_expect_rebuilt(ur *t, const char *why_needle) {
    assert_int_equal(ur_log_count(t, "state env discarded"), UR_SHARDS);
    assert_int_equal(ur_log_count(t, why_needle), UR_SHARDS);
    ur_replay r;
    ur_replay_read(t, false, &r);
    bool replayed_log = false;
    for (uint32_t i = 0; i < UR_SHARDS; i++) {
        if (r.restored[i] == 0) fprintf(stderr, "shard %u restored no snapshot\n", i);
        assert_true(r.restored[i] > 0);
        assert_true(r.applied[i] >= r.restored[i]);
        replayed_log |= r.applied[i] > r.restored[i];
    }
    assert_true(replayed_log);
    ur_expect_canaries(t, false);
}

/* ---- Storage unit checks ---- */

static void ur_store_put_some(weft_store *s) {
    weft_txn *txn = NULL;
    weft_err err;
    assert_int_equal(weft_txn_begin(s, true, &txn, &err), 0);
    for (uint64_t k = 1; k <= 100; k++)
        assert_int_equal(weft_meta_put_u64(txn, WEFT_META_NEXT_SEQ, k, &err), 0);
    assert_int_equal(weft_meta_put_u64(txn, WEFT_META_APPLIED_INDEX, 42, &err), 0);
    assert_int_equal(weft_txn_commit(txn, &err), 0);
}

static void ur_store_dir(char *out, size_t cap) {
    const char *tmp = getenv("TMPDIR");
    snprintf(out, cap, "%s/weft-ur-store-XXXXXX", tmp && tmp[0] ? tmp : "/tmp");
    assert_non_null(mkdtemp(out));
}

/* A no-sync store's commits survive close and reopen; a durable store's close flushes nothing
 * (an armed fault seam with no operations left would fail any flush). */
static void test_store_close_flushes(void **state) {
    (void)state;
    char dir[WEFTD_DIR_BYTES];
    ur_store_dir(dir, sizeof dir);
    weft_err err;
    weft_store *s = NULL;
    assert_int_equal(weft_store_open(&s, dir, &(weft_store_opts){.no_sync = true}, &err), 0);
    ur_store_put_some(s);
    assert_int_equal(weft_store_sync(s, &err), 0);
    assert_int_equal(weft_store_close(s), 0);
    assert_int_equal(weft_store_open(&s, dir, NULL, &err), 0);
    uint64_t applied = 0;
    assert_int_equal(weft_store_applied_index(s, &applied, &err), 0);
    assert_int_equal(applied, 42);
    weft_store_fault_arm(s, 0, EIO);
    assert_int_equal(weft_store_close(s), 0);
    ur_rm_tree(dir);
}

/* A NOSYNC store's close flushes, and a failed flush is reported by close and not retried
 * (the poisoned store refuses a second flush). */
static void test_store_flush_failure_kept(void **state) {
    (void)state;
    char dir[WEFTD_DIR_BYTES];
    ur_store_dir(dir, sizeof dir);
    weft_err err;
    weft_store *s = NULL;
    assert_int_equal(weft_store_open(&s, dir, &(weft_store_opts){.no_sync = true}, &err), 0);
    ur_store_put_some(s);
    weft_store_fault_arm(s, 0, EIO);
    assert_int_equal(weft_store_sync(s, &err), -WEFT_E_INTERNAL);
    assert_non_null(strstr(err.message, "mdb_env_sync"));
    assert_int_equal(weft_store_fault_hits(s), 1);
    weft_store_fault_disarm(s);
    assert_int_equal(weft_store_sync(s, &err), -WEFT_E_INTERNAL); /* poisoned: never retried */
    assert_non_null(strstr(err.message, dir));
    assert_int_equal(weft_store_close(s), -WEFT_E_INTERNAL);
    ur_rm_tree(dir);
}

/* ---- The weftd scenario ---- */

static int ur_setup(void **state) {
    static ur t;
    memset(&t, 0, sizeof t);
    const char *tmp = getenv("TMPDIR");
    snprintf(t.dir, sizeof t.dir, "%s/weft-ur-XXXXXX", tmp && tmp[0] ? tmp : "/tmp");
    if (mkdtemp(t.dir) == NULL) return -1;
    snprintf(t.boot_id_path, sizeof t.boot_id_path, "%s/boot_id", t.dir);
    ur_file_put(t.boot_id_path, "boot-one\n");
    const char *const flags[] = {"--shards",
                                 "2",
                                 "--snapshot-threshold",
                                 "16",
                                 "--snapshot-trailing",
                                 "8",
                                 "--election-timeout-ms",
                                 "300",
                                 "--heartbeat-timeout-ms",
                                 "50",
                                 "--boot-id-file",
                                 t.boot_id_path,
                                 NULL};
    if (weftd_start(&t.w, flags) != 0) return -1;
    if (weftd_client(&t.w, "reboot", &t.c) != 0) return -1;
    if (weftd_client(&t.w, "reboot-workers", &t.workers) != 0) return -1;
    *state = &t;
    return 0;
}

static int ur_teardown(void **state) {
    ur *t = *state;
    if (t->pool.threads_count > 0) wk_pool_stop(&t->pool);
    if (!t->passed) weftd_print_stderr(&t->w, WEFTD_STDERR_TAIL_LINES);
    for (unsigned i = 0; i < UR_RUNS; i++)
        wk_capture_free(&t->expected[i]);
    weft_client_close(t->c);
    weft_client_close(t->workers);
    weftd_destroy(&t->w);
    ur_rm_tree(t->dir);
    return 0;
}

/* Completed runs, open runs (odd ones with a signal still owed), then the capture. */
static void ur_fill(ur *t) {
    for (unsigned i = 0; i < UR_RUNS; i++)
        ur_start(t, i, i < UR_DONE_RUNS ? UR_QUEUE : UR_IDLE_QUEUE);
    ur_complete(t, UR_QUEUE, 0, UR_DONE_RUNS);
    ur_capture_all(t);
    ur_leave_log_tail(t);
}

/* kill -9 (or SIGTERM), a new boot id when asked, a fresh canary in every env, a restart. */
static void ur_crash_restart(ur *t, bool clean_stop, const char *boot_id) {
    if (clean_stop) {
        assert_int_equal(weftd_stop(&t->w), 0);
    } else {
        weftd_kill9(&t->w);
    }
    if (boot_id != NULL) ur_file_put(t->boot_id_path, boot_id);
    ur_plant_canaries(t);
    assert_int_equal(weftd_restart(&t->w), 0);
}

static void test_unclean_reboot(void **state) {
    ur *t = *state;
    ur_fill(t);

    /* a. A process crash in the same boot: the page cache kept every commit. */
    ur_crash_restart(t, false, NULL);
    ur_expect_trusted(t, "the machine has not restarted since (boot id boot-one)");
    ur_expect_same_state(t, "kill -9 in the same boot");

    /* b. A crash in an earlier boot: every env is rebuilt from the snapshot and the log. */
    ur_leave_log_tail(t);
    ur_crash_restart(t, false, "boot-two\n");
    ur_expect_rebuilt(t, "the machine restarted (boot id boot-one, now boot-two)");
    ur_expect_same_state(t, "kill -9 and a new boot id");
    ur_complete(t, UR_IDLE_QUEUE, UR_DONE_RUNS, UR_RUNS);
    ur_capture_all(t);

    /* c. A clean stop flushed every env: trusted whatever the boot id. */
    ur_crash_restart(t, true, "boot-three\n");
    assert_true(weftd_stderr_contains(&t->w, "clean stop recorded"));
    ur_expect_trusted(t, "the last run stopped cleanly");
    ur_expect_same_state(t, "SIGTERM and a new boot id");
    t->passed = true;
}

/* Never guess: without a boot id LMDB stays durable, a no-sync crash is rebuilt, and a durable
 * run's crash is trusted; an unreadable run.state is rebuilt. */
static void test_unknown_boot(void **state) {
    ur *t = *state;
    ur_fill(t);

    /* d. The last run skipped fsync and this boot's id is unreadable: rebuild. */
    assert_int_equal(unlink(t->boot_id_path), 0);
    ur_leave_log_tail(t);
    weftd_kill9(&t->w);
    ur_plant_canaries(t);
    assert_int_equal(weftd_restart(&t->w), 0);
    assert_int_equal(ur_log_count(t, "cannot read the boot id"), 1);
    ur_expect_rebuilt(t, "a machine restart cannot be ruled out");
    ur_expect_same_state(t, "kill -9 without a boot id");

    /* e. That run fsynced every commit: its crash is trusted even under a new boot id. */
    ur_crash_restart(t, false, "boot-four\n");
    ur_expect_trusted(t, "fsynced every LMDB commit");
    ur_expect_same_state(t, "kill -9 of a durable run");

    /* f. A damaged run.state says nothing: rebuild. */
    ur_leave_log_tail(t);
    weftd_kill9(&t->w);
    char path[PATH_MAX + 16];
    snprintf(path, sizeof path, "%s/run.state", t->w.data_dir);
    ur_file_put(path, "clean = maybe\n");
    ur_plant_canaries(t);
    assert_int_equal(weftd_restart(&t->w), 0);
    ur_expect_rebuilt(t, "run.state is unusable");
    ur_expect_same_state(t, "kill -9 and a damaged run.state");
    t->passed = true;
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_store_close_flushes),
        cmocka_unit_test(test_store_flush_failure_kept),
        cmocka_unit_test_setup_teardown(test_unclean_reboot, ur_setup, ur_teardown),
        cmocka_unit_test_setup_teardown(test_unknown_boot, ur_setup, ur_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
