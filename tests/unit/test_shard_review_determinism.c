/* test_shard_review_determinism.c: replicas whose nodes run with different configured limits
 * (DESIGN section 7: "Every limit is a named constant that the config can override"; each node
 * reads its own config file) must still hold byte-identical tables after the same log (G2,
 * section 5: "Apply reads no local clock, no randomness and no leader-only memory"). The limits
 * apply enforces are therefore the leader's, carried by the log, not the applying node's.
 * The followers here apply without replies, as a node's followers do (nobody waits on them),
 * so the same holds for the outcomes they skip building. */
#include "test_shard_harness.h"

#include "shards/apply.h" /* struct weft_shard, to read the replica's store */
#include "storage/store.h"

/* Every table of a shard, in key order: (table, key length, key, value length, value). */
static void dump(th *h, char **out, size_t *len) {
    FILE *f = open_memstream(out, len);
    assert_non_null(f);
    weft_txn *t = NULL;
    weft_err err;
    weft_err_clear(&err);
    assert_int_equal(weft_txn_begin(h->s->store, false, &t, &err), 0);
    for (int tbl = 0; tbl < WEFT_TBL__COUNT; tbl++) {
        weft_cursor *cur = NULL;
        assert_int_equal(weft_cursor_open(t, (weft_table)tbl, &cur, &err), 0);
        weft_val k, v;
        int rc = weft_cursor_seek(cur, NULL, 0, &k, &v, &err);
        while (rc == 0) {
            uint32_t kl = (uint32_t)k.len, vl = (uint32_t)v.len;
            fwrite(&tbl, sizeof tbl, 1, f);
            fwrite(&kl, sizeof kl, 1, f);
            fwrite(k.ptr, 1, k.len, f);
            fwrite(&vl, sizeof vl, 1, f);
            fwrite(v.ptr, 1, v.len, f);
            rc = weft_cursor_next(cur, &k, &v, &err);
        }
        assert_int_equal(rc, -WEFT_E_NOT_FOUND);
        weft_cursor_close(cur);
    }
    weft_txn_abort(t);
    fclose(f);
}

static void assert_same_tables(th *a, th *b) {
    char *da = NULL, *db = NULL;
    size_t la = 0, lb = 0;
    dump(a, &da, &la);
    dump(b, &db, &lb);
    assert_true(la > 0);
    if (la != lb || memcmp(da, db, la) != 0) {
        size_t i = 0;
        while (i < la && i < lb && da[i] == db[i])
            i++;
        fail_msg("replicas diverged: %zu and %zu bytes of tables, first difference at byte %zu", la,
                 lb, i);
    }
    free(da);
    free(db);
}

/* Applies a's entries [from, to) to b at their own indexes and leader times. */
/* Applies a's log to b as a follower does: no replies (nobody waits on b), so b skips the
 * outcomes that read storage to build (weft_shard_apply), and must still end in a's state. */
static void replay(th *a, th *b, unsigned from, unsigned to) {
    for (unsigned i = from; i < to; i++) {
        b->now_ms = a->log[i].time_ms;
        b->index = a->log[i].index;
        weft_bytes cmd = {.ptr = a->log[i].cmd, .len = (uint32_t)a->log[i].len};
        assert_int_equal(weft_shard_apply(b->s, b->index, b->now_ms, &cmd, 1, NULL), 0);
    }
}

/* A workload on which every apply-time limit leaves a mark: request-id dedup (dedup_ttl_ms),
 * sticky fallback (sticky_timeout_ms), the default task timeout, the history cap, pending
 * timers, and retention. */
static void workload(th *h) {
    weft_start_req req = th_start_req("d-1");
    req.request_id = WEFT_STR_LIT("start-1");
    assert_int_equal(th_request(h, WEFT_MSG_START_WORKFLOW, &req), 0);
    weft_poll_wft_resp wt;
    assert_int_equal(th_poll_wft(h, "q", &wt), 0);
    weft_command timers[2] = {th_cmd_timer("t1", 3000), th_cmd_timer("t2", 4000)};
    /* Two timers may exceed this leader's pending_timers_max: then the task fails instead. */
    th_complete_wft(h, wt.task_token, timers, 2, "sticky-1");
    th_start(h, "d-2");
    for (int i = 0; i < 12; i++)
        th_signal(h, "d-1", "s", NULL); /* may hit the history cap */
    th_advance(h, 2500);
    th_advance(h, 3000);
    weft_close_req term = {.workflow_id = WEFT_STR_LIT("d-2"), .request_id = WEFT_STR_LIT("t-1")};
    assert_int_equal(th_request(h, WEFT_MSG_TERMINATE_WORKFLOW, &term), 0);
    th_advance(h, 90000);
    th_advance(h, 3600000);
}

static void limits_small(weft_limits *l) {
    l->sticky_timeout_ms = 2000;
    l->workflow_task_timeout_ms = 7000;
    l->retention_ms = 60000;
    l->dedup_ttl_ms = 30000;
    l->history_events_max = 12;
    l->pending_timers_max = 1;
}

/* The leader runs with non-default limits, a follower with the defaults. */
static void test_follower_with_other_limits(void **state) {
    (void)state;
    th *a = th_new();
    limits_small(&a->limits);
    a->record = true;
    th_open(a);
    workload(a);
    th *b = th_new();
    th_open(b);
    replay(a, b, 0, a->log_count);
    assert_same_tables(a, b);
    th_free(a);
    th_free(b);
}

/* The leader runs with the defaults, a follower with smaller limits. */
static void test_follower_with_smaller_limits(void **state) {
    (void)state;
    th *a = th_new();
    a->record = true;
    th_open(a);
    workload(a);
    th *b = th_new();
    limits_small(&b->limits);
    th_open(b);
    replay(a, b, 0, a->log_count);
    assert_same_tables(a, b);
    th_free(a);
    th_free(b);
}

/* The leader's config changes while it leads (a reload), and a follower restarts with yet
 * another config halfway: both keep following the log. */
static void test_limits_change_and_restart(void **state) {
    (void)state;
    th *a = th_new();
    a->record = true;
    th_open(a);
    th_start(a, "c-1");
    weft_poll_wft_resp wt;
    assert_int_equal(th_poll_wft(a, "q", &wt), 0);
    assert_int_equal(th_complete_wft(a, wt.task_token, NULL, 0, "sticky-1"), 0);
    unsigned half = a->log_count;
    limits_small(&a->limits); /* the shard borrows a->limits: this is the reload */
    workload(a);

    th *b = th_new();
    th_open(b);
    replay(a, b, 0, half + 3);
    /* Restart the follower with a config of its own. */
    weft_shard_close(b->s);
    b->limits.sticky_timeout_ms = 60000;
    b->limits.retention_ms = 1;
    b->limits.history_events_max = 1000;
    th_open_dir(b, b->dir);
    replay(a, b, half + 3, a->log_count);
    assert_same_tables(a, b);
    th_free(a);
    th_free(b);
}

/* The leader's limits do take effect: its reload shortens the sticky fallback. */
static void test_reload_takes_effect(void **state) {
    (void)state;
    th *h = th_new();
    th_open(h);
    th_start(h, "r-1");
    weft_poll_wft_resp wt;
    assert_int_equal(th_poll_wft(h, "q", &wt), 0);
    h->limits.sticky_timeout_ms = 1000;
    assert_int_equal(th_complete_wft(h, wt.task_token, NULL, 0, "sticky-1"), 0);
    assert_int_equal(th_signal(h, "r-1", "s", NULL), 0); /* a task on the sticky queue */
    th_advance(h, 1000);
    assert_int_equal(th_poll_wft(h, "sticky-1", &wt), -1); /* fell back already */
    assert_int_equal(th_poll_wft(h, "q", &wt), 0);
    th_free(h);
}

/* ---- A seeded random workload, replayed on a follower ---- */

typedef struct rnd {
    uint64_t s;
} rnd;

static uint32_t rnd_u32(rnd *r, uint32_t n) {
    r->s ^= r->s << 13;
    r->s ^= r->s >> 7;
    r->s ^= r->s << 17;
    return (uint32_t)(r->s % n);
}

#define RW_TOKENS 16

typedef struct rw {
    th *h;
    rnd r;
    weft_bytes wft[RW_TOKENS], act[RW_TOKENS]; /* tokens seen, current or stale */
    uint32_t wft_n, act_n;
    weft_bytes wft_last, act_last; /* the latest ones: most often current */
    char names[64][32];            /* stable storage for generated ids */
    uint32_t names_n;
} rw;

static const char *rw_name(rw *w, const char *prefix, uint32_t n) {
    char *p = w->names[w->names_n++ % 64];
    snprintf(p, 32, "%s-%u", prefix, n);
    return p;
}

static weft_command rw_command(rw *w, bool last) {
    weft_command c = {0};
    uint32_t k = rnd_u32(&w->r, last ? 9 : 5);
    switch (k) {
    case 0:
        c = th_cmd_activity(rw_name(w, "a", rnd_u32(&w->r, 4)), "work");
        c.start_to_close_timeout_ms = 1000 + rnd_u32(&w->r, 6000);
        if (rnd_u32(&w->r, 2)) c.heartbeat_timeout_ms = 500 + rnd_u32(&w->r, 2000);
        if (rnd_u32(&w->r, 2)) c.schedule_to_start_timeout_ms = 500 + rnd_u32(&w->r, 4000);
        if (rnd_u32(&w->r, 2)) c.schedule_to_close_timeout_ms = 2000 + rnd_u32(&w->r, 20000);
        c.retry_policy.initial_interval_ms = 100 + rnd_u32(&w->r, 1000);
        c.retry_policy.backoff_coefficient = 1.0 + rnd_u32(&w->r, 40) / 16.0;
        c.retry_policy.maximum_attempts = rnd_u32(&w->r, 5);
        break;
    case 1:
        c = th_cmd_timer(rw_name(w, "t", rnd_u32(&w->r, 4)), 1 + rnd_u32(&w->r, 8000));
        break;
    case 2:
        c.type = WEFT_CMD_CANCEL_TIMER;
        c.timer_id = weft_str_c(rw_name(w, "t", rnd_u32(&w->r, 4)));
        break;
    case 3:
        c.type = WEFT_CMD_REQUEST_CANCEL_ACTIVITY;
        c.scheduled_event_id = 1 + rnd_u32(&w->r, 30);
        break;
    case 4:
        c.type = WEFT_CMD_RECORD_MARKER;
        c.marker_name = WEFT_STR_LIT("m");
        break;
    case 5:
        c = th_cmd_complete("done");
        break;
    case 6:
        c.type = WEFT_CMD_FAIL_WORKFLOW;
        c.failure.type = WEFT_STR_LIT("Boom");
        break;
    case 7:
        c.type = WEFT_CMD_CANCEL_WORKFLOW;
        break;
    default:
        c.type = WEFT_CMD_CONTINUE_AS_NEW;
        c.input = (weft_bytes){.ptr = (const uint8_t *)"next", .len = 4};
        break;
    }
    return c;
}

static void rw_keep(weft_bytes *arr, uint32_t *n, weft_bytes t, rnd *r) {
    if (*n < RW_TOKENS)
        arr[(*n)++] = t;
    else
        arr[rnd_u32(r, RW_TOKENS)] = t;
}

static void rw_step(rw *w) {
    th *h = w->h;
    const char *wfid = rw_name(w, "w", rnd_u32(&w->r, 4));
    switch (rnd_u32(&w->r, 11)) {
    case 0: {
        weft_start_req req = th_start_req(wfid);
        req.request_id = weft_str_c(rw_name(w, "sr", rnd_u32(&w->r, 6)));
        req.id_conflict_policy = rnd_u32(&w->r, WEFT_CONFLICT__COUNT);
        req.id_reuse_policy = rnd_u32(&w->r, WEFT_REUSE__COUNT);
        if (rnd_u32(&w->r, 3) == 0) req.workflow_run_timeout_ms = 5000 + rnd_u32(&w->r, 30000);
        bool sws = rnd_u32(&w->r, 3) == 0;
        if (sws) req.signal_name = WEFT_STR_LIT("go");
        th_request(h, sws ? WEFT_MSG_SIGNAL_WITH_START : WEFT_MSG_START_WORKFLOW, &req);
        break;
    }
    case 1:
        th_signal(h, wfid, "s", rnd_u32(&w->r, 2) ? rw_name(w, "sig", rnd_u32(&w->r, 8)) : NULL);
        break;
    case 2:
    case 3: {
        weft_poll_wft_resp wt;
        if (th_poll_wft(h, rnd_u32(&w->r, 3) ? "q" : "sticky-1", &wt) == 0) {
            rw_keep(w->wft, &w->wft_n, wt.task_token, &w->r);
            w->wft_last = wt.task_token;
        }
        break;
    }
    case 4: {
        if (w->wft_n == 0) break;
        weft_command cmds[4];
        uint32_t n = rnd_u32(&w->r, 5);
        for (uint32_t i = 0; i < n; i++)
            cmds[i] = rw_command(w, i + 1 == n);
        th_complete_wft(h, rnd_u32(&w->r, 4) ? w->wft_last : w->wft[rnd_u32(&w->r, w->wft_n)], cmds,
                        n, rnd_u32(&w->r, 2) ? "sticky-1" : NULL);
        break;
    }
    case 5:
        if (w->wft_n > 0) th_fail_wft(h, w->wft[rnd_u32(&w->r, w->wft_n)], "nondeterminism");
        break;
    case 6: {
        weft_poll_activity_resp a;
        if (th_poll_act(h, "q", &a) == 0) {
            rw_keep(w->act, &w->act_n, a.task_token, &w->r);
            w->act_last = a.task_token;
        }
        break;
    }
    case 7: {
        if (w->act_n == 0) break;
        static const uint32_t types[] = {WEFT_MSG_COMPLETE_ACTIVITY, WEFT_MSG_FAIL_ACTIVITY,
                                         WEFT_MSG_HEARTBEAT_ACTIVITY};
        uint32_t t = types[rnd_u32(&w->r, 3)];
        th_act(h, t, rnd_u32(&w->r, 3) ? w->act_last : w->act[rnd_u32(&w->r, w->act_n)], "r",
               t == WEFT_MSG_FAIL_ACTIVITY ? "Oops" : NULL);
        break;
    }
    case 8: {
        bool act = rnd_u32(&w->r, 2) && w->act_n > 0;
        if (!act && w->wft_n == 0) break;
        weft_shard_cmd rq = {.type = WEFT_SC_TASK_REQUEUE,
                             .task_token = act ? w->act[rnd_u32(&w->r, w->act_n)]
                                               : w->wft[rnd_u32(&w->r, w->wft_n)]};
        uint8_t *cmd = NULL;
        size_t len = 0;
        assert_int_equal(weft_schema_encode_buf(&weft_shard_cmd_schema, &rq, &cmd, &len), 0);
        th_apply(h, cmd, len);
        free(cmd);
        break;
    }
    case 9: {
        weft_close_req req = {.workflow_id = weft_str_c(wfid),
                              .request_id = weft_str_c(rw_name(w, "cr", rnd_u32(&w->r, 6)))};
        th_request(h, rnd_u32(&w->r, 2) ? WEFT_MSG_CANCEL_WORKFLOW : WEFT_MSG_TERMINATE_WORKFLOW,
                   &req);
        break;
    }
    default:
        th_advance(h, rnd_u32(&w->r, 7000));
        break;
    }
}

static bool ev_closes(uint32_t t) {
    return t == WEFT_EV_WORKFLOW_EXECUTION_COMPLETED || t == WEFT_EV_WORKFLOW_EXECUTION_FAILED ||
           t == WEFT_EV_WORKFLOW_EXECUTION_TIMED_OUT || t == WEFT_EV_WORKFLOW_EXECUTION_CANCELED ||
           t == WEFT_EV_WORKFLOW_EXECUTION_TERMINATED ||
           t == WEFT_EV_WORKFLOW_EXECUTION_CONTINUED_AS_NEW;
}

static bool ev_act_outcome(uint32_t t) {
    return t == WEFT_EV_ACTIVITY_TASK_COMPLETED || t == WEFT_EV_ACTIVITY_TASK_FAILED ||
           t == WEFT_EV_ACTIVITY_TASK_TIMED_OUT || t == WEFT_EV_ACTIVITY_TASK_CANCELED;
}

static bool ev_wft_outcome(uint32_t t) {
    return t == WEFT_EV_WORKFLOW_TASK_COMPLETED || t == WEFT_EV_WORKFLOW_TASK_FAILED ||
           t == WEFT_EV_WORKFLOW_TASK_TIMED_OUT;
}

/* History invariants of one run (G2, G5, section 7). */
static void check_history(const weft_event *ev, uint32_t n, uint32_t status) {
    for (uint32_t i = 0; i < n; i++) {
        const weft_event *e = &ev[i];
        assert_int_equal(e->event_id, i + 1);
        if (ev_closes(e->event_type)) assert_int_equal(i + 1, n);
        if (e->event_type == WEFT_EV_ACTIVITY_TASK_STARTED) {
            /* Written together with the final outcome, right before it. */
            assert_true(i + 1 < n && ev_act_outcome(ev[i + 1].event_type));
            assert_int_equal(ev[i + 1].scheduled_event_id, e->scheduled_event_id);
            assert_int_equal(ev[i + 1].started_event_id, e->event_id);
        }
        if (ev_act_outcome(e->event_type) || e->event_type == WEFT_EV_ACTIVITY_TASK_STARTED ||
            e->event_type == WEFT_EV_ACTIVITY_TASK_CANCEL_REQUESTED) {
            uint64_t s = e->scheduled_event_id;
            assert_true(s >= 1 && s < e->event_id);
            assert_int_equal(ev[s - 1].event_type, WEFT_EV_ACTIVITY_TASK_SCHEDULED);
        }
        if (ev_act_outcome(e->event_type)) {
            for (uint32_t j = i + 1; j < n; j++) {
                /* G5: one outcome per scheduled activity. */
                assert_false(ev_act_outcome(ev[j].event_type) &&
                             ev[j].scheduled_event_id == e->scheduled_event_id);
            }
        }
        if (e->event_type == WEFT_EV_WORKFLOW_TASK_STARTED || ev_wft_outcome(e->event_type)) {
            uint64_t s = e->scheduled_event_id;
            assert_true(s >= 1 && s < e->event_id);
            assert_int_equal(ev[s - 1].event_type, WEFT_EV_WORKFLOW_TASK_SCHEDULED);
        }
        if (ev_wft_outcome(e->event_type)) {
            uint64_t st = e->started_event_id;
            assert_true(st >= 1 && st < e->event_id);
            assert_int_equal(ev[st - 1].event_type, WEFT_EV_WORKFLOW_TASK_STARTED);
            for (uint32_t j = i + 1; j < n; j++) {
                assert_false(ev_wft_outcome(ev[j].event_type) && ev[j].started_event_id == st);
            }
        }
    }
    if (n > 0) assert_true((status == WEFT_STATUS_RUNNING) != ev_closes(ev[n - 1].event_type));
}

/* G6: nothing fires before its time on the shard clock (event times are that clock). */
static void check_never_early(const weft_event *ev, uint32_t n) {
    for (uint32_t i = 0; i < n; i++) {
        const weft_event *e = &ev[i];
        if (e->event_type == WEFT_EV_TIMER_FIRED) {
            const weft_event *st = &ev[e->started_event_id - 1];
            assert_int_equal(st->event_type, WEFT_EV_TIMER_STARTED);
            assert_true(e->event_time_ms >= st->event_time_ms + st->start_to_fire_timeout_ms);
        }
        if (e->event_type != WEFT_EV_ACTIVITY_TASK_TIMED_OUT) continue;
        const weft_event *sched = &ev[e->scheduled_event_id - 1];
        const weft_event *started = e->started_event_id > 0 ? &ev[e->started_event_id - 1] : NULL;
        uint64_t bound = 0;
        switch (e->timeout_type) {
        case WEFT_TIMEOUT_SCHEDULE_TO_START:
            bound = sched->event_time_ms + sched->schedule_to_start_timeout_ms;
            break;
        case WEFT_TIMEOUT_SCHEDULE_TO_CLOSE:
            bound = sched->event_time_ms + sched->schedule_to_close_timeout_ms;
            break;
        case WEFT_TIMEOUT_START_TO_CLOSE:
            assert_non_null(started);
            bound = started->event_time_ms + sched->start_to_close_timeout_ms;
            break;
        case WEFT_TIMEOUT_HEARTBEAT:
            assert_non_null(started);
            bound = started->event_time_ms + sched->heartbeat_timeout_ms;
            break;
        default:
            fail_msg("ActivityTaskTimedOut %llu has no timeout type",
                     (unsigned long long)e->event_id);
        }
        if (e->event_time_ms < bound) {
            fail_msg("ActivityTaskTimedOut %llu (%s) at %llu, before %llu",
                     (unsigned long long)e->event_id, weft_timeout_type_names[e->timeout_type],
                     (unsigned long long)e->event_time_ms, (unsigned long long)bound);
        }
    }
}

static void check_all_histories(th *h) {
    weft_list_req req = {.page_size = 1000};
    weft_list_resp resp;
    assert_int_equal(th_read(h, WEFT_MSG_LIST_WORKFLOWS, &weft_list_req_schema, &req,
                             &weft_list_resp_schema, &resp, false, NULL),
                     0);
    for (uint32_t i = 0; i < resp.executions_count; i++) {
        const weft_execution_info *x = &resp.executions[i];
        char wfid[64], run[64];
        snprintf(wfid, sizeof wfid, "%.*s", (int)x->workflow_id.len, x->workflow_id.ptr);
        snprintf(run, sizeof run, "%.*s", (int)x->run_id.len, x->run_id.ptr);
        weft_event *ev = NULL;
        uint32_t n = th_history(h, wfid, run, &ev);
        check_history(ev, n, x->status);
        check_never_early(ev, n);
    }
}

/* Many seeds: the leader (with its own limits for odd seeds) runs a random workload; a follower
 * that is not leading, has no observer and runs other limits replays it. */
static void test_random_workloads(void **state) {
    (void)state;
    /* WEFT_REVIEW_SEEDS=N runs more seeds (a soak); a failure replays from its seed. */
    const char *env = getenv("WEFT_REVIEW_SEEDS");
    uint64_t seeds = env != NULL ? strtoull(env, NULL, 10) : 12;
    for (uint64_t seed = 1; seed <= seeds; seed++) {
        th *a = th_new();
        if (seed % 2) limits_small(&a->limits);
        a->record = true;
        th_open(a);
        if (env != NULL) fprintf(stderr, "seed %llu\n", (unsigned long long)seed);
        rw w = {.h = a, .r = {.s = seed * 0x9e3779b97f4a7c15ull}};
        for (int i = 0; i < 400 && a->log_count < 4000 && a->unpacked_count < 3500; i++) {
            rw_step(&w);
        }
        th *b = th_new();
        if (seed % 3 == 0) b->limits.history_events_max = 40;
        th_open(b);
        weft_shard_leader_stop(b->s);
        weft_shard_set_observer(b->s, NULL);
        /* The follower restarts now and then, and raft hands it entries it already applied
         * again: those are no-ops (section 5). Halfway, a third replica is built from its
         * snapshot and follows the rest of the log. */
        unsigned half = a->log_count / 2, from = 0;
        void *image = NULL;
        size_t image_len = 0;
        while (from < a->log_count) {
            unsigned to = WEFT_MIN(a->log_count, from + 1 + rnd_u32(&w.r, 60));
            replay(a, b, from, to);
            if (from <= half && half < to) {
                weft_err err;
                weft_err_clear(&err);
                assert_int_equal(weft_shard_snapshot(b->s, malloc, &image, &image_len, &err), 0);
            }
            weft_shard_close(b->s);
            th_open_dir(b, b->dir);
            weft_shard_leader_stop(b->s);
            weft_shard_set_observer(b->s, NULL);
            unsigned back = WEFT_MIN(to, 1 + rnd_u32(&w.r, 4));
            uint64_t applied = weft_shard_applied_index(b->s);
            for (unsigned i = to - back; i < to; i++) {
                weft_reply reply = {0};
                weft_bytes cmd = {.ptr = a->log[i].cmd, .len = (uint32_t)a->log[i].len};
                assert_true(a->log[i].index <= applied);
                assert_int_equal(
                    weft_shard_apply(b->s, a->log[i].index, a->log[i].time_ms, &cmd, 1, &reply), 0);
                assert_null(reply.body);
                assert_int_equal(reply.err.code, 0);
            }
            assert_int_equal(weft_shard_applied_index(b->s), applied);
            from = to;
        }
        assert_same_tables(a, b);
        check_all_histories(a);

        th *c = th_new();
        c->limits.sticky_timeout_ms = 1; /* its own config, again */
        th_open(c);
        weft_err err;
        weft_err_clear(&err);
        assert_non_null(image);
        assert_int_equal(weft_shard_restore(c->s, image, image_len, &err), 0);
        free(image);
        assert_true(weft_shard_applied_index(c->s) > 0);
        unsigned next = 0;
        while (next < a->log_count && a->log[next].index <= weft_shard_applied_index(c->s))
            next++;
        replay(a, c, next, a->log_count);
        assert_same_tables(a, c);
        th_free(a);
        th_free(b);
        th_free(c);
    }
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_follower_with_other_limits),
        cmocka_unit_test(test_follower_with_smaller_limits),
        cmocka_unit_test(test_limits_change_and_restart),
        cmocka_unit_test(test_reload_takes_effect),
        cmocka_unit_test(test_random_workloads),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
