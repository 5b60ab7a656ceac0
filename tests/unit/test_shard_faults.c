/* test_shard_faults.c: countdown fault injection (storage/fault.h) swept over the shard state
 * machine, the SQLite way (STYLE rule 13). A workload is recorded once through the harness,
 * replayed fault-free to learn every command's reply, every table after every entry, and how
 * many storage operations each entry makes; then, for every countdown N, it is replayed with
 * the N+1st storage operation failing. Each replay must stop exactly at the entry holding
 * that operation, poison the store, and after a restart on the same directory hold exactly
 * what was committed before the fault; re-applying the rest must reproduce the fault-free
 * replies and tables byte for byte (G9, STYLE rule 10). Snapshot, restore and the leader-side
 * reads (dispatch, timer gate, client reads) are swept the same way.
 *
 * The sweep found two bugs, since fixed and checked on every run: a failed commit left the
 * uncommitted commands' replies in place (shard.c), and a storage failure while a dispatch
 * FIFO refilled was answered "no task" without stopping the replica (dispatch.c).
 *
 * WEFT_FAULT_VERBOSE=1 prints the sweep's size. WEFT_LOG=<level> shows the shard's log (it is
 * silenced otherwise: every injected failure logs an error). */
#include "test_shard_harness.h"

#include <errno.h>
#include <ftw.h>
#include <limits.h>
#include <lmdb.h>
#include <sys/stat.h>

#include "shards/apply.h" /* struct weft_shard, to reach the replica's store */
#include "storage/fault.h"
#include "storage/store.h"

/* Entries in the workload once its commands are grouped into raft entries. */
#define FX_ENTRIES_MAX 128
/* Commands grouped into one entry at most: several commands per entry make a fault in a later
 * command roll back the earlier commands' writes too (one transaction per entry). */
#define FX_BATCH_MAX 3
/* The identity every shard of this test opens with (the harness uses the same). */
#define FX_SHARD_ID 7
#define FX_CLUSTER_ID "test-cluster"
/* Closed runs and request ids expire inside the workload, so retention and dedup expiry run
 * under faults too. */
#define FX_RETENTION_MS 4000
#define FX_DEDUP_TTL_MS 9000

_Static_assert(WEFT_TBL_META == 0, "fx_dump_take skips meta by starting at table 1");

/* One raft entry of the replayed workload. Entry i carries raft index i + 1. */
typedef struct fx_entry {
    uint64_t time_ms;              /* the leader time it is stamped with */
    uint32_t n;                    /* commands in it */
    weft_bytes cmds[FX_BATCH_MAX]; /* encoded commands, borrowed from the harness log */
} fx_entry;

/* Every table of a store, serialised in key order: (table, key length, key, value length,
 * value) per row. */
typedef struct fx_dump {
    char *bytes; /* malloc'd (open_memstream) */
    size_t len;  /* bytes in it */
} fx_dump;

/* The fault-free reference every faulted replay is held to. */
typedef struct fx_ref {
    th *h;                                  /* the harness run that recorded the commands */
    weft_limits limits;                     /* every shard of the test opens with these */
    fx_entry entries[FX_ENTRIES_MAX];       /* the workload */
    uint32_t entries_count;                 /* entries in it */
    weft_reply replies[FX_ENTRIES_MAX][FX_BATCH_MAX]; /* each command's fault-free reply */
    uint64_t ops_before[FX_ENTRIES_MAX + 1]; /* seam operations before entry i; [count]: all */
    fx_dump dumps[FX_ENTRIES_MAX + 1];      /* every table with i entries applied */
    uint32_t multi_entries_count;           /* entries holding more than one command */
} fx_ref;

/* What one faulted replay of the sweep ran into, for the summary. */
typedef struct fx_sweep_stats {
    uint64_t points_count;          /* countdowns that injected a fault */
    uint64_t commit_faults_count;   /* of those, faults at an entry's commit */
    uint32_t entries_hit[FX_ENTRIES_MAX]; /* faults per entry: every entry must be hit */
} fx_sweep_stats;

/* ---- Helpers ---- */

static bool fx_verbose(void) { return getenv("WEFT_FAULT_VERBOSE") != NULL; }

/* Every injected failure logs an error line; thousands of them would bury a real failure.
 * One level above ERROR prints nothing (the logger compares levels numerically). */
static void fx_log_quiet(void) {
    if (getenv("WEFT_LOG") == NULL) weft_log_set_level((weft_log_level)(WEFT_LOG_ERROR + 1));
}

/* Directories go to tmpfs when there is one: the sweep commits tens of thousands of
 * transactions and an fsync per commit on a real disk would take minutes. */
static void fx_dir_make(char *dir, size_t size) {
    const char *base = access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp";
    snprintf(dir, size, "%s/weft-shard-faults-XXXXXX", base);
    assert_non_null(mkdtemp(dir));
}

static int fx_rm_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw) {
    (void)sb, (void)flag, (void)ftw;
    return remove(path);
}

/* Removes a test directory. In-process (th_rmdir runs a shell): the sweep removes thousands
 * of them, and forking a sanitizer build that often costs more than the sweep itself. */
static void fx_rmdir(const char *dir) {
    assert_int_equal(nftw(dir, fx_rm_entry, 8, FTW_DEPTH | FTW_PHYS), 0);
}

static weft_shard *fx_open(fx_ref *r, const char *dir) {
    weft_shard *s = NULL;
    weft_err err;
    weft_err_clear(&err);
    int rc = weft_shard_open(&s, FX_SHARD_ID, FX_CLUSTER_ID, dir, &r->limits, NULL, &err);
    if (rc != 0) fprintf(stderr, "open %s: %s\n", dir, err.message);
    assert_int_equal(rc, 0);
    assert_false(weft_store_poisoned(s->store));
    return s;
}

static void fx_dump_take(weft_store *st, bool with_meta, fx_dump *out) {
    FILE *f = open_memstream(&out->bytes, &out->len);
    assert_non_null(f);
    weft_err err;
    weft_err_clear(&err);
    weft_txn *t = NULL;
    assert_int_equal(weft_txn_begin(st, false, &t, &err), 0);
    for (int tbl = with_meta ? 0 : 1; tbl < WEFT_TBL__COUNT; tbl++) {
        weft_cursor *cur = NULL;
        assert_int_equal(weft_cursor_open(t, (weft_table)tbl, &cur, &err), 0);
        weft_val k, v;
        int rc = weft_cursor_seek(cur, NULL, 0, &k, &v, &err);
        while (rc == 0) {
            uint8_t id = (uint8_t)tbl;
            fwrite(&id, 1, 1, f);
            fwrite(&k.len, sizeof k.len, 1, f);
            fwrite(k.ptr, 1, k.len, f);
            fwrite(&v.len, sizeof v.len, 1, f);
            fwrite(v.ptr, 1, v.len, f);
            rc = weft_cursor_next(cur, &k, &v, &err);
        }
        assert_int_equal(rc, -WEFT_E_NOT_FOUND);
        weft_cursor_close(cur);
    }
    weft_txn_abort(t);
    assert_int_equal(fclose(f), 0);
}

static void fx_dump_free(fx_dump *d) {
    free(d->bytes);
    d->bytes = NULL;
    d->len = 0;
}

/* Asserts that the shard's tables are byte-identical to `want`. */
static void fx_dump_expect(weft_shard *s, const fx_dump *want, const char *what, long countdown) {
    fx_dump got = {0};
    fx_dump_take(s->store, true, &got);
    bool same = got.len == want->len && memcmp(got.bytes, want->bytes, got.len) == 0;
    fx_dump_free(&got);
    if (!same) fail_msg("%s: tables differ from the fault-free run (countdown %ld)", what, countdown);
}

static void fx_reply_expect(const weft_reply *got, const weft_reply *want, uint32_t entry,
                            long countdown) {
    if (got->err.code != want->err.code || strcmp(got->err.message, want->err.message) != 0 ||
        strcmp(got->err.field, want->err.field) != 0) {
        fail_msg("entry %u (countdown %ld): reply error %d '%s', fault-free run said %d '%s'",
                 entry, countdown, got->err.code, got->err.message, want->err.code,
                 want->err.message);
    }
    assert_int_equal(got->body_len, want->body_len);
    if (want->body_len > 0) assert_memory_equal(got->body, want->body, want->body_len);
}

static bool fx_replies_empty(const weft_reply *replies, uint32_t n) {
    for (uint32_t j = 0; j < n; j++) {
        if (replies[j].body != NULL || replies[j].body_len != 0 || replies[j].err.code != 0) {
            return false;
        }
    }
    return true;
}

static void fx_replies_reset(weft_reply *replies, uint32_t n) {
    for (uint32_t j = 0; j < n; j++) weft_reply_reset(&replies[j]);
}

/* Applies entry i (raft index i + 1); replies[] are zeroed first, as the raft adapter does. */
static int fx_apply(weft_shard *s, const fx_entry *e, uint32_t i, weft_reply *replies) {
    WEFT_ASSERT(e->n >= 1 && e->n <= FX_BATCH_MAX);
    memset(replies, 0, FX_BATCH_MAX * sizeof *replies);
    return weft_shard_apply(s, (uint64_t)i + 1, e->time_ms, e->cmds, e->n, replies);
}

/* Live buffers handed out by fx_alloc: a failed snapshot must not keep one. */
static int fx_alloc_live;
static void *fx_alloc(size_t n) {
    fx_alloc_live++;
    return malloc(n);
}
static void fx_alloc_free(void *p) {
    if (p == NULL) return;
    fx_alloc_live--;
    free(p);
}

/* The error each countdown injects: both kinds of message travel through the sweep. */
static int fx_error_for(long countdown) { return countdown % 2 == 0 ? EIO : MDB_MAP_FULL; }

/* What the poison message must quote for an injected `error`. */
static const char *fx_error_text(int error) {
    return error == MDB_MAP_FULL ? "shard state is full" : mdb_strerror(error);
}

/* ---- The workload ---- */

/* Polls the next workflow task, which must belong to `wfid`. */
static void fx_poll_wft(th *h, const char *wfid, weft_poll_wft_resp *wt) {
    assert_int_equal(th_poll_wft(h, "q", wt), 0);
    if (!weft_str_eq_c(wt->workflow_id, wfid)) {
        fail_msg("polled a task of %.*s, expected %s", (int)wt->workflow_id.len,
                 wt->workflow_id.ptr, wfid);
    }
}

/* The scheduled event id of activity `id` among a task's events (0 if absent). */
static uint64_t fx_scheduled_id(const weft_poll_wft_resp *wt, const char *id) {
    for (uint32_t i = 0; i < wt->events_count; i++) {
        const weft_event *ev = &wt->events[i];
        if (ev->event_type == WEFT_EV_ACTIVITY_TASK_SCHEDULED && weft_str_eq_c(ev->activity_id, id)) {
            return ev->event_id;
        }
    }
    return 0;
}

static void fx_requeue(th *h, weft_bytes token) {
    weft_shard_cmd rq = {.type = WEFT_SC_TASK_REQUEUE, .task_token = token};
    uint8_t *cmd = NULL;
    size_t len = 0;
    assert_int_equal(weft_schema_encode_buf(&weft_shard_cmd_schema, &rq, &cmd, &len), 0);
    assert_int_equal(th_apply(h, cmd, len), 0);
    free(cmd);
}

/* The second half: signal-with-start, a sticky queue, an activity that times out and is
 * retried, a marker, cancelling a timer and an activity, a workflow that fails, a requeued
 * task and a run timeout. */
static void fx_workload_more(th *h) {
    weft_start_req sws = th_start_req("w5");
    sws.request_id = WEFT_STR_LIT("req-w5");
    sws.signal_name = WEFT_STR_LIT("hello");
    sws.signal_input = (weft_bytes){.ptr = (const uint8_t *)"hi", .len = 2};
    assert_int_equal(th_request(h, WEFT_MSG_SIGNAL_WITH_START, &sws), 0);
    weft_poll_wft_resp wt;
    fx_poll_wft(h, "w5", &wt);
    weft_command c[3] = {th_cmd_activity("b1", "slow"), th_cmd_timer("t2", 60000),
                         {.type = WEFT_CMD_RECORD_MARKER, .marker_name = WEFT_STR_LIT("m")}};
    c[0].start_to_close_timeout_ms = 1000;
    c[0].retry_policy.maximum_attempts = 2;
    assert_int_equal(th_complete_wft(h, wt.task_token, c, 3, "sticky-1"), 0);
    weft_poll_activity_resp b1;
    assert_int_equal(th_poll_act(h, "q", &b1), 0);
    assert_true(weft_str_eq_c(b1.activity_id, "b1"));
    th_advance(h, 1000); /* attempt 1 times out: retried after 1 s */
    th_advance(h, 1000);
    assert_int_equal(th_poll_act(h, "q", &b1), 0);
    assert_int_equal(b1.attempt, 2);
    assert_int_equal(th_act(h, WEFT_MSG_COMPLETE_ACTIVITY, b1.task_token, "b1-done", NULL), 0);

    assert_int_equal(th_poll_wft(h, "sticky-1", &wt), 0);
    assert_true(wt.sticky);
    weft_command c2[2] = {th_cmd_activity("b2", "never"),
                          {.type = WEFT_CMD_CANCEL_TIMER, .timer_id = WEFT_STR_LIT("t2")}};
    assert_int_equal(th_complete_wft(h, wt.task_token, c2, 2, "sticky-1"), 0);
    assert_int_equal(th_signal(h, "w5", "poke", "sig-5"), 0);
    assert_int_equal(th_poll_wft(h, "sticky-1", &wt), 0);
    uint64_t b2 = fx_scheduled_id(&wt, "b2");
    assert_true(b2 > 0);
    weft_command c3 = {.type = WEFT_CMD_REQUEST_CANCEL_ACTIVITY, .scheduled_event_id = b2};
    assert_int_equal(th_complete_wft(h, wt.task_token, &c3, 1, "sticky-1"), 0);
    assert_int_equal(th_poll_wft(h, "sticky-1", &wt), 0); /* b2 was canceled before it started */
    weft_command fail = {.type = WEFT_CMD_FAIL_WORKFLOW,
                         .failure = {.type = WEFT_STR_LIT("Broken"),
                                     .message = WEFT_STR_LIT("gave up")}};
    assert_int_equal(th_complete_wft(h, wt.task_token, &fail, 1, NULL), 0);

    weft_start_req w6 = th_start_req("w6");
    w6.workflow_run_timeout_ms = 3000;
    assert_int_equal(th_request(h, WEFT_MSG_START_WORKFLOW, &w6), 0);
    fx_poll_wft(h, "w6", &wt);
    fx_requeue(h, wt.task_token); /* its poller vanished: timed out, a new task at once */
    fx_poll_wft(h, "w6", &wt);
    th_advance(h, 3000); /* the run times out with its task started */
    weft_describe_resp d;
    th_describe(h, "w6", &d);
    assert_int_equal(d.info.status, WEFT_STATUS_TIMED_OUT);
}

/* Starts, a deduplicated start, workflow tasks with activity and timer commands, an activity
 * that fails and is retried, a heartbeat, signals (one duplicate), timers firing, a workflow
 * task failure and its transient retry, continue-as-new, terminate, cancel, stale and
 * rejected requests, and retention and dedup expiry of what closed. Every outcome is checked,
 * so a change in the state machine shows here rather than as a puzzling sweep failure. */
static void fx_workload(th *h) {
    th_start(h, "w1");
    weft_start_req w2 = th_start_req("w2");
    w2.request_id = WEFT_STR_LIT("req-w2");
    assert_int_equal(th_request(h, WEFT_MSG_START_WORKFLOW, &w2), 0);
    assert_int_equal(th_request(h, WEFT_MSG_START_WORKFLOW, &w2), 0); /* deduplicated (G4) */
    th_start(h, "w3");

    weft_poll_wft_resp wt;
    fx_poll_wft(h, "w1", &wt);
    weft_command c1[3] = {th_cmd_activity("a1", "charge"), th_cmd_timer("t1", 3000),
                          th_cmd_activity("a2", "ship")};
    c1[0].retry_policy = (weft_retry_policy){.initial_interval_ms = 1000,
                                             .backoff_coefficient = 2.0,
                                             .maximum_attempts = 3};
    assert_int_equal(th_complete_wft(h, wt.task_token, c1, 3, NULL), 0);

    weft_poll_wft_resp wt2;
    fx_poll_wft(h, "w2", &wt2);
    assert_int_equal(th_fail_wft(h, wt2.task_token, "non-determinism"), 0);

    weft_poll_activity_resp a1, a2;
    assert_int_equal(th_poll_act(h, "q", &a1), 0);
    assert_true(weft_str_eq_c(a1.activity_id, "a1"));
    assert_int_equal(th_act(h, WEFT_MSG_HEARTBEAT_ACTIVITY, a1.task_token, NULL, NULL), 0);
    assert_int_equal(th_act(h, WEFT_MSG_FAIL_ACTIVITY, a1.task_token, NULL, "Transient"), 0);
    assert_int_equal(th_poll_act(h, "q", &a2), 0);
    assert_int_equal(th_signal(h, "w1", "approve", "sig-1"), 0);
    assert_int_equal(th_signal(h, "w1", "approve", "sig-1"), 0); /* duplicate: once (G7) */
    weft_close_req term = {.workflow_id = WEFT_STR_LIT("w3"), .reason = WEFT_STR_LIT("test")};
    assert_int_equal(th_request(h, WEFT_MSG_TERMINATE_WORKFLOW, &term), 0);

    assert_true(th_advance(h, 1000) >= 2); /* a1's retry and w2's task retry */
    weft_poll_activity_resp again;
    assert_int_equal(th_poll_act(h, "q", &again), 0);
    assert_int_equal(again.attempt, 2);
    assert_int_equal(th_act(h, WEFT_MSG_COMPLETE_ACTIVITY, again.task_token, "charged", NULL), 0);
    /* G5: the failed attempt's late result is refused. */
    assert_int_equal(th_act(h, WEFT_MSG_COMPLETE_ACTIVITY, a1.task_token, "late", NULL),
                     WEFT_E_NOT_FOUND);

    fx_poll_wft(h, "w1", &wt); /* the signal scheduled it before w2's retry was due */
    assert_int_equal(th_complete_wft(h, wt.task_token, NULL, 0, NULL), 0);
    /* w2's transient retry continues as new. */
    fx_poll_wft(h, "w2", &wt2);
    assert_int_equal(wt2.attempt, 2);
    weft_command can = {.type = WEFT_CMD_CONTINUE_AS_NEW,
                        .input = {.ptr = (const uint8_t *)"next", .len = 4}};
    assert_int_equal(th_complete_wft(h, wt2.task_token, &can, 1, NULL), 0);
    assert_int_equal(th_act(h, WEFT_MSG_COMPLETE_ACTIVITY, a2.task_token, "shipped", NULL), 0);

    assert_true(th_advance(h, 2000) >= 1); /* t1 */
    fx_poll_wft(h, "w2", &wt2); /* the continued run's first task */
    weft_close_req cancel = {.workflow_id = WEFT_STR_LIT("w2"), .request_id = WEFT_STR_LIT("c-1")};
    assert_int_equal(th_request(h, WEFT_MSG_CANCEL_WORKFLOW, &cancel), 0);
    weft_command cancelled = {.type = WEFT_CMD_CANCEL_WORKFLOW};
    assert_int_equal(th_complete_wft(h, wt2.task_token, &cancelled, 1, NULL),
                     WEFT_E_FAILED_PRECONDITION); /* UNHANDLED_EVENTS: the cancel request */

    fx_poll_wft(h, "w1", &wt); /* a2's result and t1 */
    weft_command done = th_cmd_complete("ok");
    assert_int_equal(th_complete_wft(h, wt.task_token, &done, 1, NULL), 0);
    assert_int_equal(th_signal(h, "w1", "late", "sig-2"), WEFT_E_FAILED_PRECONDITION);
    fx_poll_wft(h, "w2", &wt2);
    assert_int_equal(th_complete_wft(h, wt2.task_token, &cancelled, 1, NULL), 0);

    fx_workload_more(h);

    /* Retention deletes the closed runs; later the dedup records expire. */
    th_advance(h, FX_RETENTION_MS);
    assert_int_equal(th_request(h, WEFT_MSG_TERMINATE_WORKFLOW, &term), WEFT_E_NOT_FOUND);
    th_advance(h, FX_DEDUP_TTL_MS);
    th_start(h, "w4");
}

/* Groups the harness log into entries of 1, 3 and 2 commands in turn (or of one command each
 * when `grouped` is false), never across a change of leader time (grouping must not change
 * what the shard clock says to any command). */
static void fx_entries_group(fx_ref *r, bool grouped) {
    static const uint32_t sizes[] = {1, 3, 2};
    th *h = r->h;
    uint32_t turn = 0;
    for (unsigned i = 0; i < h->log_count;) {
        assert_true(r->entries_count < FX_ENTRIES_MAX);
        fx_entry *e = &r->entries[r->entries_count++];
        e->time_ms = h->log[i].time_ms;
        uint32_t want = grouped ? sizes[turn++ % 3] : 1;
        while (e->n < want && i < h->log_count && h->log[i].time_ms == e->time_ms) {
            e->cmds[e->n++] = (weft_bytes){.ptr = h->log[i].cmd, .len = (uint32_t)h->log[i].len};
            i++;
        }
        if (e->n > 1) r->multi_entries_count++;
    }
}

/* Replays the workload fault-free into a fresh shard, recording the replies, the tables after
 * every entry and each entry's storage operations (the seam armed with a countdown that never
 * runs out is an operation counter). */
static void fx_ref_replay(fx_ref *r) {
    char dir[128];
    fx_dir_make(dir, sizeof dir);
    weft_shard *s = fx_open(r, dir);
    fx_dump_take(s->store, true, &r->dumps[0]);
    for (uint32_t i = 0; i < r->entries_count; i++) {
        weft_store_fault_arm(s->store, LONG_MAX, EIO);
        weft_reply replies[FX_BATCH_MAX];
        assert_int_equal(fx_apply(s, &r->entries[i], i, replies), 0);
        assert_int_equal(weft_store_fault_hits(s->store), 0);
        uint64_t ops = weft_store_fault_ops(s->store);
        weft_store_fault_disarm(s->store);
        assert_true(ops > 0); /* at least the applied index and the commit */
        r->ops_before[i + 1] = r->ops_before[i] + ops;
        for (uint32_t j = 0; j < r->entries[i].n; j++) {
            weft_reply_move(&r->replies[i][j], &replies[j]);
        }
        fx_dump_take(s->store, true, &r->dumps[i + 1]);
    }
    assert_int_equal(weft_shard_applied_index(s), r->entries_count);
    weft_shard_close(s);
    fx_rmdir(dir);
}

static fx_ref *fx_ref_new(bool grouped) {
    fx_log_quiet();
    fx_ref *r = calloc(1, sizeof *r);
    assert_non_null(r);
    r->h = calloc(1, sizeof *r->h);
    assert_non_null(r->h);
    th *h = r->h;
    th_init(h);
    fx_log_quiet(); /* th_init set its own level */
    h->limits.retention_ms = FX_RETENTION_MS;
    h->limits.dedup_ttl_ms = FX_DEDUP_TTL_MS;
    h->record = true;
    th_open(h);
    fx_workload(h);
    r->limits = h->limits;
    fx_entries_group(r, grouped);
    assert_true(grouped == (r->multi_entries_count > 0));
    fx_ref_replay(r);
    /* Grouping commands into entries changed only the applied index in meta: every other
     * table matches the one-command-per-entry harness run byte for byte. */
    fx_dump a = {0}, b = {0};
    fx_dump_take(h->s->store, false, &a);
    char dir[128];
    fx_dir_make(dir, sizeof dir);
    weft_shard *s = fx_open(r, dir);
    for (uint32_t i = 0; i < r->entries_count; i++) {
        weft_reply replies[FX_BATCH_MAX];
        assert_int_equal(fx_apply(s, &r->entries[i], i, replies), 0);
        fx_replies_reset(replies, r->entries[i].n);
    }
    fx_dump_take(s->store, false, &b);
    weft_shard_close(s);
    fx_rmdir(dir);
    assert_int_equal(a.len, b.len);
    assert_memory_equal(a.bytes, b.bytes, a.len);
    fx_dump_free(&a);
    fx_dump_free(&b);
    return r;
}

static void fx_ref_free(fx_ref *r) {
    for (uint32_t i = 0; i < r->entries_count; i++) {
        fx_replies_reset(r->replies[i], r->entries[i].n);
    }
    for (uint32_t i = 0; i <= r->entries_count; i++) fx_dump_free(&r->dumps[i]);
    th_close(r->h);
    free(r->h);
    free(r);
}

/* ---- The apply sweep ---- */

/* Replays with the seam armed at `countdown` until an apply fails. Returns the failing entry,
 * or entries_count when the workload ran clean. */
static uint32_t fx_replay_until_fault(fx_ref *r, weft_shard *s, long countdown,
                                      fx_sweep_stats *st) {
    for (uint32_t i = 0; i < r->entries_count; i++) {
        const fx_entry *e = &r->entries[i];
        weft_reply replies[FX_BATCH_MAX];
        int rc = fx_apply(s, e, i, replies);
        /* The fault-free counts say which entry holds operation `countdown` (0-based). */
        bool fault_here = (uint64_t)countdown < r->ops_before[i + 1];
        if (rc == 0) {
            /* (a) No injected fault hides behind a successful apply. */
            assert_int_equal(weft_store_fault_hits(s->store), 0);
            if (fault_here) fail_msg("entry %u applied although countdown %ld falls in it", i, countdown);
            for (uint32_t j = 0; j < e->n; j++) fx_reply_expect(&replies[j], &r->replies[i][j], i, countdown);
            fx_replies_reset(replies, e->n);
            continue;
        }
        /* (a) It fails exactly at the entry that holds the failing operation. */
        assert_int_equal(rc, -WEFT_E_INTERNAL);
        if (!fault_here) fail_msg("entry %u failed; countdown %ld falls in a later one", i, countdown);
        assert_true((uint64_t)countdown >= r->ops_before[i]);
        bool at_commit = (uint64_t)countdown == r->ops_before[i + 1] - 1;
        if (at_commit) st->commit_faults_count++;
        /* A failed apply answers nothing: the entry is not applied, so no reply may leave,
         * not even when the commit itself is what failed (STYLE rule 10). */
        if (!fx_replies_empty(replies, e->n)) {
            fail_msg("entry %u (countdown %ld, %s): apply failed but left replies behind", i,
                     countdown, at_commit ? "at the commit" : "before the commit");
        }
        fx_replies_reset(replies, e->n);
        st->entries_hit[i]++;
        return i;
    }
    return r->entries_count;
}

/* (b) A store that failed is poisoned, names the first failure, and refuses everything. */
static void fx_expect_stopped(fx_ref *r, weft_shard *s, uint32_t failed, int error) {
    assert_true(weft_store_poisoned(s->store));
    assert_int_equal(weft_store_fault_hits(s->store), 1);
    assert_int_equal(weft_shard_applied_index(s), failed);
    weft_reply replies[FX_BATCH_MAX];
    for (uint32_t i = failed; i < r->entries_count && i < failed + 2; i++) {
        assert_int_equal(fx_apply(s, &r->entries[i], i, replies), -WEFT_E_INTERNAL);
        assert_true(fx_replies_empty(replies, r->entries[i].n));
    }
    weft_err err;
    weft_err_clear(&err);
    uint64_t index = 0;
    assert_int_equal(weft_store_applied_index(s->store, &index, &err), -WEFT_E_INTERNAL);
    if (strstr(err.message, fx_error_text(error)) == NULL) {
        fail_msg("poison message '%s' does not quote '%s'", err.message, fx_error_text(error));
    }
    assert_non_null(strstr(err.message, "restart"));
    void *buf = NULL;
    size_t len = 0;
    assert_int_equal(weft_shard_snapshot(s, fx_alloc, &buf, &len, &err), -WEFT_E_INTERNAL);
    assert_null(buf);
    weft_describe_req req = {.workflow_id = WEFT_STR_LIT("w1")};
    uint8_t *body = NULL;
    size_t body_len = 0;
    assert_int_equal(weft_schema_encode_buf(&weft_describe_req_schema, &req, &body, &body_len), 0);
    weft_reply reply = {0};
    weft_read_wait wait;
    assert_true(weft_shard_read(s, WEFT_MSG_DESCRIBE_WORKFLOW, body, body_len, false, &reply,
                                &wait) < 0);
    assert_null(reply.body);
    weft_reply_reset(&reply);
    free(body);
    assert_int_equal(weft_store_fault_hits(s->store), 1); /* the poison checks came first */
}

/* (c) After a restart on the same directory the state is exactly what committed before the
 * fault; re-applying the rest reproduces the fault-free replies and tables. */
static void fx_expect_recovers(fx_ref *r, const char *dir, uint32_t failed, long countdown) {
    weft_shard *s = fx_open(r, dir);
    assert_int_equal(weft_shard_applied_index(s), failed);
    fx_dump_expect(s, &r->dumps[failed], "after the restart", countdown);
    for (uint32_t i = failed; i < r->entries_count; i++) {
        weft_reply replies[FX_BATCH_MAX];
        assert_int_equal(fx_apply(s, &r->entries[i], i, replies), 0);
        for (uint32_t j = 0; j < r->entries[i].n; j++) {
            fx_reply_expect(&replies[j], &r->replies[i][j], i, countdown);
        }
        fx_replies_reset(replies, r->entries[i].n);
    }
    fx_dump_expect(s, &r->dumps[r->entries_count], "after re-applying the rest", countdown);
    weft_shard_close(s);
}

/* One countdown. Returns true when the workload ran clean (the countdown outlasted it). */
static bool fx_sweep_one(fx_ref *r, long countdown, fx_sweep_stats *st) {
    int error = fx_error_for(countdown);
    char dir[128];
    fx_dir_make(dir, sizeof dir);
    weft_shard *s = fx_open(r, dir);
    weft_store_fault_arm(s->store, countdown, error);
    uint32_t failed = fx_replay_until_fault(r, s, countdown, st);
    bool clean = failed == r->entries_count;
    if (clean) {
        assert_int_equal(weft_store_fault_hits(s->store), 0);
        assert_int_equal(weft_store_fault_ops(s->store), r->ops_before[r->entries_count]);
        weft_store_fault_disarm(s->store);
        fx_dump_expect(s, &r->dumps[r->entries_count], "clean run", countdown);
        weft_shard_close(s);
    } else {
        st->points_count++;
        fx_expect_stopped(r, s, failed, error);
        weft_shard_close(s);
        fx_expect_recovers(r, dir, failed, countdown);
    }
    fx_rmdir(dir);
    return clean;
}

static void fx_apply_sweep(bool grouped) {
    fx_ref *r = fx_ref_new(grouped);
    fx_sweep_stats *st = calloc(1, sizeof *st);
    assert_non_null(st);
    uint64_t total = r->ops_before[r->entries_count];
    long countdown = 0;
    while (!fx_sweep_one(r, countdown, st)) {
        countdown++;
        assert_true((uint64_t)countdown <= total);
    }
    /* Every operation of the workload was a fault point, and the first clean run is the one
     * whose countdown outlasts them all. */
    assert_int_equal((uint64_t)countdown, total);
    assert_int_equal(st->points_count, total);
    assert_int_equal(st->commit_faults_count, r->entries_count);
    for (uint32_t i = 0; i < r->entries_count; i++) assert_true(st->entries_hit[i] >= 2);
    if (fx_verbose()) {
        printf("apply sweep: %llu countdown points over %u entries (%u with several commands)\n",
               (unsigned long long)total, r->entries_count, r->multi_entries_count);
    }
    free(st);
    fx_ref_free(r);
}

/* Entries of one to three commands: a fault in a later command must undo the earlier ones. */
static void test_apply_sweep(void **state) {
    (void)state;
    fx_apply_sweep(true);
}

/* One command per entry, as a leader proposes under light load: every command's own commit
 * is a fault point. */
static void test_apply_sweep_single(void **state) {
    (void)state;
    fx_apply_sweep(false);
}

/* ---- Snapshot ---- */

/* A snapshot that meets a storage failure fails cleanly: INTERNAL, no buffer kept, the store
 * poisoned; after a restart the state is untouched and a snapshot succeeds. */
static void test_snapshot_faults(void **state) {
    (void)state;
    fx_ref *r = fx_ref_new(true);
    char dir[128];
    fx_dir_make(dir, sizeof dir);
    weft_shard *s = fx_open(r, dir);
    for (uint32_t i = 0; i < r->entries_count; i++) {
        weft_reply replies[FX_BATCH_MAX];
        assert_int_equal(fx_apply(s, &r->entries[i], i, replies), 0);
        fx_replies_reset(replies, r->entries[i].n);
    }
    long countdown = 0;
    for (;; countdown++) {
        assert_true(countdown < 64); /* a snapshot is a handful of operations */
        weft_store_fault_arm(s->store, countdown, fx_error_for(countdown));
        void *buf = NULL;
        size_t len = 0;
        weft_err err;
        weft_err_clear(&err);
        int rc = weft_shard_snapshot(s, fx_alloc, &buf, &len, &err);
        if (rc == 0) {
            assert_int_equal(weft_store_fault_hits(s->store), 0);
            assert_int_equal(weft_store_fault_ops(s->store), countdown);
            uint64_t index = 0;
            assert_int_equal(weft_store_snapshot_applied_index(buf, len, &index, &err), 0);
            assert_int_equal(index, r->entries_count);
            fx_alloc_free(buf);
            break;
        }
        assert_int_equal(rc, -WEFT_E_INTERNAL);
        assert_null(buf);
        assert_int_equal(len, 0);
        assert_int_equal(fx_alloc_live, 0);
        assert_true(weft_store_poisoned(s->store));
        assert_non_null(strstr(err.message, fx_error_text(fx_error_for(countdown))));
        assert_non_null(strstr(err.message, "snapshot"));
        /* The failure stops the replica's storage: the next apply refuses. */
        weft_reply replies[FX_BATCH_MAX];
        assert_int_equal(fx_apply(s, &r->entries[0], r->entries_count, replies),
                         -WEFT_E_INTERNAL);
        assert_true(fx_replies_empty(replies, r->entries[0].n));
        weft_shard_close(s);
        s = fx_open(r, dir);
        assert_int_equal(weft_shard_applied_index(s), r->entries_count);
        fx_dump_expect(s, &r->dumps[r->entries_count], "after a failed snapshot", countdown);
    }
    assert_true(countdown >= 3); /* at least begin, the applied index and the copy */
    assert_int_equal(fx_alloc_live, 0);
    if (fx_verbose()) printf("snapshot sweep: %ld countdown points\n", countdown);
    weft_shard_close(s);
    fx_rmdir(dir);
    fx_ref_free(r);
}

/* ---- Restore ---- */

/* The entry count the restore target holds before the restore (the "old" state). */
static uint32_t fx_restore_old_entries(const fx_ref *r) { return r->entries_count / 2; }

/* Builds the restore target: a shard holding the first `entries` entries. */
static weft_shard *fx_target_make(fx_ref *r, char *dir, size_t dir_size, uint32_t entries) {
    fx_dir_make(dir, dir_size);
    weft_shard *s = fx_open(r, dir);
    for (uint32_t i = 0; i < entries; i++) {
        weft_reply replies[FX_BATCH_MAX];
        assert_int_equal(fx_apply(s, &r->entries[i], i, replies), 0);
        fx_replies_reset(replies, r->entries[i].n);
    }
    return s;
}

/* A snapshot image of the whole workload's state, from a fault-free replay. */
static void fx_image_make(fx_ref *r, void **buf, size_t *len) {
    char dir[128];
    weft_shard *s = fx_target_make(r, dir, sizeof dir, r->entries_count);
    weft_err err;
    weft_err_clear(&err);
    assert_int_equal(weft_shard_snapshot(s, fx_alloc, buf, len, &err), 0);
    weft_shard_close(s);
    fx_rmdir(dir);
}

/* After a failed restore and a restart the env holds either the old state, intact, or the
 * whole new one: nothing in between. Returns true for the new one. */
static bool fx_restore_outcome(fx_ref *r, const char *dir, long countdown) {
    char tmp[192];
    snprintf(tmp, sizeof tmp, "%s/restore.tmp", dir);
    weft_shard *s = fx_open(r, dir);
    assert_int_equal(access(tmp, F_OK), -1); /* a half-written image never survives a restart */
    uint32_t old = fx_restore_old_entries(r);
    bool is_new = weft_shard_applied_index(s) == r->entries_count;
    if (!is_new) {
        assert_int_equal(weft_shard_applied_index(s), old);
        fx_dump_expect(s, &r->dumps[old], "old state after a failed restore", countdown);
        /* Still a working replica: raft's log brings it to the end. */
        for (uint32_t i = old; i < r->entries_count; i++) {
            weft_reply replies[FX_BATCH_MAX];
            assert_int_equal(fx_apply(s, &r->entries[i], i, replies), 0);
            fx_replies_reset(replies, r->entries[i].n);
        }
    }
    fx_dump_expect(s, &r->dumps[r->entries_count], "state after a failed restore", countdown);
    weft_shard_close(s);
    return is_new;
}

static void test_restore_faults(void **state) {
    (void)state;
    fx_ref *r = fx_ref_new(true);
    void *image = NULL;
    size_t image_len = 0;
    fx_image_make(r, &image, &image_len);
    long countdown = 0;
    long first_new = -1; /* the first countdown whose failure left the new state in place */
    long old_count = 0;  /* failures that left the old state readable */
    for (;; countdown++) {
        assert_true(countdown < 256);
        char dir[128];
        weft_shard *s = fx_target_make(r, dir, sizeof dir, fx_restore_old_entries(r));
        /* EIO throughout: most restore steps are syscalls, which fail with an errno. */
        weft_store_fault_arm(s->store, countdown, EIO);
        weft_err err;
        weft_err_clear(&err);
        int rc = weft_shard_restore(s, image, image_len, &err);
        if (rc == 0) {
            assert_int_equal(weft_store_fault_hits(s->store), 0);
            assert_int_equal(weft_shard_applied_index(s), r->entries_count);
            weft_store_fault_disarm(s->store);
            fx_dump_expect(s, &r->dumps[r->entries_count], "restored", countdown);
            weft_shard_close(s);
            fx_rmdir(dir);
            break;
        }
        assert_int_equal(rc, -WEFT_E_INTERNAL);
        assert_true(weft_store_poisoned(s->store));
        /* The message quotes the failure. Failures inside storage name the restore too; the
         * shard's own reload of meta afterwards reports the bare storage failure. */
        if (strstr(err.message, fx_error_text(EIO)) == NULL) {
            fail_msg("countdown %ld: '%s' does not quote the failure", countdown, err.message);
        }
        weft_reply replies[FX_BATCH_MAX];
        assert_int_equal(fx_apply(s, &r->entries[0], r->entries_count, replies),
                         -WEFT_E_INTERNAL);
        weft_shard_close(s);
        bool is_new = fx_restore_outcome(r, dir, countdown);
        fx_rmdir(dir);
        /* Old until the rename lands, new from then on: never back. */
        if (is_new && first_new < 0) first_new = countdown;
        if (!is_new) {
            assert_true(first_new < 0);
            old_count++;
        }
    }
    /* The write, its fsync and the directory fsync come before the rename. */
    assert_true(old_count >= 3);
    assert_true(first_new > 0);
    if (fx_verbose()) {
        printf("restore sweep: %ld countdown points, %ld left the old state\n", countdown,
               old_count);
    }
    fx_alloc_free(image);
    fx_ref_free(r);
}

/* ---- Leader-side reads ---- */

/* What a leader-side call answered: its code and the bytes it produced. */
typedef struct fx_answer {
    int rc;          /* the call's return code */
    uint8_t *bytes;  /* what it built (command, response body, timer time), malloc'd */
    size_t len;      /* bytes in it */
} fx_answer;

static void fx_answer_free(fx_answer *a) {
    free(a->bytes);
    memset(a, 0, sizeof *a);
}

static void fx_answer_bytes(fx_answer *a, const void *p, size_t len) {
    a->bytes = malloc(len > 0 ? len : 1);
    assert_non_null(a->bytes);
    if (len > 0) memcpy(a->bytes, p, len);
    a->len = len;
}

static void fx_probe_next_timer(weft_shard *s, fx_answer *a) {
    uint64_t at = 0;
    weft_err err;
    weft_err_clear(&err);
    a->rc = weft_shard_next_timer(s, &at, &err);
    if (a->rc == 0) fx_answer_bytes(a, &at, sizeof at);
}

static void fx_probe_fire(weft_shard *s, fx_answer *a) {
    uint8_t *cmd = NULL;
    size_t len = 0;
    uint32_t count = 0;
    weft_err err;
    weft_err_clear(&err);
    a->rc = weft_shard_fire_cmd(s, UINT64_MAX / 2, 1000, &cmd, &len, &count, &err);
    if (a->rc == 0) fx_answer_bytes(a, cmd, len);
    if (a->rc != 0) assert_int_equal(count, 0);
    free(cmd);
}

/* Pops the first task of `kind` on "q" and builds its Started command, as node does. "No task"
 * answers -WEFT_E_NOT_FOUND: dispatch_pop has no error channel of its own. */
static void fx_probe_dispatch(weft_shard *s, uint8_t kind, fx_answer *a) {
    weft_ready_task t;
    if (!weft_shard_dispatch_pop(s, th_dq("q"), kind, &t)) {
        /* A stopped replica is a failure, not an empty queue. */
        a->rc = weft_shard_failed(s) ? -WEFT_E_INTERNAL : -WEFT_E_NOT_FOUND;
        return;
    }
    uint8_t *cmd = NULL;
    size_t cmd_len = 0;
    weft_err err;
    weft_err_clear(&err);
    if (kind == WEFT_TASK_KIND_WORKFLOW) {
        a->rc = weft_shard_workflow_dispatch(s, &t, WEFT_STR_LIT("w"), WEFT_STR_LIT("q"),
                                             WEFT_STR_LIT("poll-f"), &cmd, &cmd_len, &err);
    } else {
        a->rc = weft_shard_activity_dispatch(s, &t, WEFT_STR_LIT("w"), &cmd, &cmd_len, &err);
    }
    if (a->rc == 0) fx_answer_bytes(a, cmd, cmd_len);
    free(cmd);
}
static void fx_probe_wft(weft_shard *s, fx_answer *a) {
    fx_probe_dispatch(s, WEFT_TASK_KIND_WORKFLOW, a);
}
static void fx_probe_act(weft_shard *s, fx_answer *a) {
    fx_probe_dispatch(s, WEFT_TASK_KIND_ACTIVITY, a);
}

static void fx_probe_read(weft_shard *s, uint32_t msg_type, const weft_schema *schema,
                          const void *req, fx_answer *a) {
    uint8_t *body = NULL;
    size_t len = 0;
    assert_int_equal(weft_schema_encode_buf(schema, req, &body, &len), 0);
    weft_reply reply = {0};
    weft_read_wait wait;
    a->rc = weft_shard_read(s, msg_type, body, len, true, &reply, &wait);
    if (a->rc == 0) {
        fx_answer_bytes(a, reply.body, reply.body_len);
    } else {
        /* A refused read answers with its error and no body. */
        assert_null(reply.body);
        assert_int_equal(reply.err.code, -a->rc);
    }
    weft_reply_reset(&reply);
    free(body);
}
static void fx_probe_history(weft_shard *s, fx_answer *a) {
    weft_history_req req = {.workflow_id = WEFT_STR_LIT("w1")};
    fx_probe_read(s, WEFT_MSG_GET_HISTORY, &weft_history_req_schema, &req, a);
}
static void fx_probe_describe(weft_shard *s, fx_answer *a) {
    weft_describe_req req = {.workflow_id = WEFT_STR_LIT("w5")};
    fx_probe_read(s, WEFT_MSG_DESCRIBE_WORKFLOW, &weft_describe_req_schema, &req, a);
}
static void fx_probe_result(weft_shard *s, fx_answer *a) {
    weft_result_req req = {.workflow_id = WEFT_STR_LIT("w2"), .follow_runs = true};
    fx_probe_read(s, WEFT_MSG_GET_RESULT, &weft_result_req_schema, &req, a);
}
static void fx_probe_list(weft_shard *s, fx_answer *a) {
    weft_list_req req = {.page_size = 3};
    fx_probe_read(s, WEFT_MSG_LIST_WORKFLOWS, &weft_list_req_schema, &req, a);
}

typedef struct fx_probe {
    const char *name;                         /* for messages */
    void (*run)(weft_shard *s, fx_answer *a); /* the call */
} fx_probe;

static const fx_probe fx_probes[] = {
    {"next_timer", fx_probe_next_timer}, {"fire_cmd", fx_probe_fire},
    {"workflow dispatch", fx_probe_wft},  {"activity dispatch", fx_probe_act},
    {"history", fx_probe_history},        {"describe", fx_probe_describe},
    {"result", fx_probe_result},          {"list", fx_probe_list},
};

/* Faulted dispatches that answered "no task" rather than an error (see fx_probe_sweep). */

static weft_shard *fx_reopen_leading(fx_ref *r, weft_shard *s, const char *dir) {
    weft_shard_close(s);
    s = fx_open(r, dir);
    weft_err err;
    weft_err_clear(&err);
    assert_int_equal(weft_shard_leader_start(s, &err), 0);
    return s;
}

/* Sweeps one probe at the current state: every countdown until the call runs clean. A call
 * that met a fault answers an error and leaves the store poisoned; a call that ran clean
 * answers exactly what the unarmed call did. Returns the countdown points swept. */
static long fx_probe_sweep(fx_ref *r, weft_shard **s, const char *dir, const fx_probe *p,
                           uint32_t entries) {
    fx_answer want = {0};
    *s = fx_reopen_leading(r, *s, dir);
    p->run(*s, &want);
    assert_false(weft_store_poisoned((*s)->store));
    long countdown = 0;
    for (;; countdown++) {
        assert_true(countdown < 4096);
        *s = fx_reopen_leading(r, *s, dir);
        weft_store_fault_arm((*s)->store, countdown, fx_error_for(countdown));
        fx_answer got = {0};
        p->run(*s, &got);
        uint64_t hits = weft_store_fault_hits((*s)->store);
        if (hits == 0) {
            if (got.rc != want.rc || got.len != want.len ||
                (got.len > 0 && memcmp(got.bytes, want.bytes, got.len) != 0)) {
                fail_msg("%s after %u entries, countdown %ld: clean call answered differently",
                         p->name, entries, countdown);
            }
            fx_answer_free(&got);
            break;
        }
        assert_true(weft_store_poisoned((*s)->store));
        /* A storage failure is an error, never an answer. */
        if (got.rc != -WEFT_E_INTERNAL) {
            fail_msg("%s after %u entries, countdown %ld: answered %d despite a storage failure",
                     p->name, entries, countdown, got.rc);
        }
        fx_answer_free(&got);
    }
    fx_answer_free(&want);
    return countdown;
}

/* Leader-side calls (dispatch, the timer gate, reads) run in read transactions outside apply;
 * under a storage failure each must refuse rather than answer from a half-read state. Swept at
 * every fourth entry of the workload. */
static void test_leader_reads_faults(void **state) {
    (void)state;
    fx_ref *r = fx_ref_new(true);
    char dir[128];
    fx_dir_make(dir, sizeof dir);
    weft_shard *s = fx_open(r, dir);
    long points = 0;
    for (uint32_t done = 0; done <= r->entries_count; done++) {
        if (done % 4 == 0 || done == r->entries_count) {
            for (size_t i = 0; i < sizeof fx_probes / sizeof fx_probes[0]; i++) {
                points += fx_probe_sweep(r, &s, dir, &fx_probes[i], done);
            }
            s = fx_reopen_leading(r, s, dir);
            fx_dump_expect(s, &r->dumps[done], "after the leader-side sweep", -1);
        }
        if (done == r->entries_count) break;
        weft_reply replies[FX_BATCH_MAX];
        assert_int_equal(fx_apply(s, &r->entries[done], done, replies), 0);
        fx_replies_reset(replies, r->entries[done].n);
    }
    if (fx_verbose()) {
        printf("leader-side sweep: %ld countdown points\n", points);
    }
    weft_shard_close(s);
    fx_rmdir(dir);
    fx_ref_free(r);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_apply_sweep),
        cmocka_unit_test(test_apply_sweep_single),
        cmocka_unit_test(test_snapshot_faults),
        cmocka_unit_test(test_restore_faults),
        cmocka_unit_test(test_leader_reads_faults),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
