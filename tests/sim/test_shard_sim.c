/* test_shard_sim.c: three replicas of a real shard (shards/shard.h on LMDB, each in its own
 * temporary directory) replicated by raft_fixture through the host's fsm adapter and entry
 * framing. A miniature leader, as node/ drives the shard, starts workflows, dispatches workflow
 * and activity tasks from the current leader's queues, completes them after seeded delays and
 * fires timers at the fixture's virtual clock. The leader is killed mid-run and another takes
 * over; a follower is cut off long enough that it must catch up by snapshot. At the end every
 * table of every replica must be byte-identical (G2). Replay with WEFT_SIM_SEED=<seed>. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <ftw.h>
#include <sys/stat.h>

#include "helper_sim.h"
#include "proto/log.h"
#include "proto/msg.h"
#include "shards/shard.h"
#include "storage/store.h"

#define SERVERS 3u
#define WORKFLOWS 36u
/* Workflows started per phase, so every phase has work in flight. */
#define WORKFLOWS_PER_PHASE 12u
#define QUEUE "orders"

/* QUEUE's dispatch name in the default namespace (shards/shard.h). */
static weft_str sim_dq(void) {
    static char buf[WEFT_DISPATCH_QUEUE_BYTES_MAX];
    return weft_dispatch_queue_name(WEFT_STR_LIT(""), WEFT_STR_LIT(QUEUE), buf, sizeof buf);
}
/* Virtual time one run may take before it is declared stuck. */
#define RUN_LIMIT_MS 240000u
#define TICK_MS 50u
/* Commands in one proposed entry, at most (the host's per-turn batch, in miniature). */
#define ENTRY_CMDS_MAX 64u
#define HELD_MAX 256u
#define TOKEN_BYTES_MAX 256u

/* ---- The world ---- */

typedef struct replica {
    struct world *w;
    unsigned index;
    char dir[300];             /* this replica's state dir */
    weft_shard *shard;
    weft_group_fsm fsm;
    unsigned restores;         /* weft_shard_restore calls that succeeded */
} replica;

/* What a command's reply is for, so the callback knows what to do with it. */
typedef enum pcmd_kind {
    PC_START,          /* START of workflow `wf` */
    PC_WFT_STARTED,    /* reply body: the PollWorkflowTask response */
    PC_ACT_STARTED,    /* reply body: the PollActivityTask response */
    PC_WFT_COMPLETE,   /* `completes` says whether it carried CompleteWorkflow */
    PC_FIRE,           /* FIRE_TIMERS: the gate may fire again once it is answered */
    PC_OTHER,          /* ACT_COMPLETE, NOOP */
} pcmd_kind;

typedef struct pcmd {
    uint8_t *cmd;          /* malloc'd shard command */
    size_t len;
    pcmd_kind kind;
    unsigned wf;           /* workflow index (START, WFT_COMPLETE) */
    bool completes;        /* WFT_COMPLETE carrying CompleteWorkflow */
    struct pcmd *next;
} pcmd;

/* A task a simulated worker holds until its due time. */
typedef struct held {
    uint8_t kind;                       /* WEFT_TASK_KIND_* */
    uint8_t token[TOKEN_BYTES_MAX];
    uint32_t token_len;
    uint64_t due_ms;                    /* virtual time the worker answers */
    unsigned wf;                        /* workflow index (from the workflow id) */
    bool scheduled, act_done, timer_fired; /* WFT: what the history shows */
} held;

typedef struct world {
    sim s;
    replica reps[SERVERS];
    weft_limits limits;
    char root[256];
    pcmd *queue_head, *queue_tail;      /* commands for the next entry */
    unsigned queue_count;
    held helds[HELD_MAX];
    unsigned helds_count;
    unsigned started;                   /* START commands queued */
    unsigned start_quota;               /* workflows the current phase may have started */
    bool wf_started[WORKFLOWS];         /* START acknowledged */
    bool wf_completed[WORKFLOWS];       /* CompleteWorkflow acknowledged or seen closed */
    bool firing;                        /* a FIRE_TIMERS entry is in flight */
    unsigned leader;                    /* replica whose shard leads, SIM_NONE if none */
    uint64_t entries, wft_done, act_done, fires;
} world;

static world *world_of(sim *s) { return (world *)((char *)s - offsetof(world, s)); }

/* ---- The shard as raft's fsm ---- */

static int rep_apply(void *ctx, uint64_t index, uint64_t leader_time_ms, const weft_bytes *cmds,
                     uint32_t n, weft_reply *replies) {
    replica *r = ctx;
    int rc = weft_shard_apply(r->shard, index, leader_time_ms, cmds, n, replies);
    SIM_CHECK(&r->w->s, rc == 0);
    SIM_CHECK(&r->w->s, weft_shard_applied_index(r->shard) == index);
    return rc;
}

static int rep_snapshot(void *ctx, void **buf, size_t *len) {
    replica *r = ctx;
    weft_err err;
    weft_err_clear(&err);
    int rc = weft_shard_snapshot(r->shard, raft_malloc, buf, len, &err);
    if (rc != 0) fprintf(stderr, "snapshot: %s\n", err.message);
    SIM_CHECK(&r->w->s, rc == 0);
    return rc;
}

static int rep_restore(void *ctx, const void *buf, size_t len) {
    replica *r = ctx;
    weft_err err;
    weft_err_clear(&err);
    int rc = weft_shard_restore(r->shard, buf, len, &err);
    if (rc != 0) fprintf(stderr, "restore: %s\n", err.message);
    SIM_CHECK(&r->w->s, rc == 0);
    r->restores++;
    return rc;
}

static void rep_open(world *w, unsigned i) {
    replica *r = &w->reps[i];
    r->w = w;
    r->index = i;
    snprintf(r->dir, sizeof r->dir, "%s/replica-%u", w->root, i);
    assert_int_equal(mkdir(r->dir, 0700), 0);
    weft_err err;
    weft_err_clear(&err);
    int rc = weft_shard_open(&r->shard, 3, "sim-cluster", r->dir, &w->limits, NULL, &err);
    if (rc != 0) fail_msg("shard open: %s", err.message);
    r->fsm = (weft_group_fsm){.ctx = r,
                              .apply = rep_apply,
                              .snapshot = rep_snapshot,
                              .restore = rep_restore};
}

/* ---- Leadership: only the ready leader's shard leads (dispatch queues, timer gate) ---- */

static void world_sync_leader(world *w) {
    unsigned l = sim_ready_leader(&w->s);
    for (unsigned i = 0; i < SERVERS; i++) {
        weft_shard *sh = w->reps[i].shard;
        if (i != l && weft_shard_is_leading(sh)) weft_shard_leader_stop(sh);
    }
    if (l != SIM_NONE && !weft_shard_is_leading(w->reps[l].shard)) {
        weft_err err;
        weft_err_clear(&err);
        /* As node/ does once the own-term barrier applied: queues rebuilt from `ready`. */
        int rc = weft_shard_leader_start(w->reps[l].shard, &err);
        if (rc != 0) fprintf(stderr, "leader start: %s\n", err.message);
        SIM_CHECK(&w->s, rc == 0);
        /* Tasks held by workers of the old leader stay valid: tokens name the attempt. */
        w->firing = false;
    }
    w->leader = l;
}

/* ---- Commands ---- */

static void queue_push(world *w, uint8_t *cmd, size_t len, pcmd_kind kind, unsigned wf,
                       bool completes) {
    pcmd *p = calloc(1, sizeof *p);
    *p = (pcmd){.cmd = cmd, .len = len, .kind = kind, .wf = wf, .completes = completes};
    if (w->queue_tail) w->queue_tail->next = p;
    else w->queue_head = p;
    w->queue_tail = p;
    w->queue_count++;
}

/* Wraps a client request as a shard command, validated by the leader's shard. */
static bool client_cmd(world *w, uint32_t msg_type, const void *req, uint8_t **cmd,
                       size_t *len, const char *run_id) {
    const weft_op *op = weft_op_find(msg_type);
    SIM_CHECK(&w->s, op != NULL);
    uint8_t *body = NULL;
    size_t body_len = 0;
    SIM_CHECK(&w->s, weft_schema_encode_buf(op->req_schema, req, &body, &body_len) == 0);
    weft_err err;
    weft_err_clear(&err);
    int rc = weft_shard_client_cmd(w->reps[w->leader].shard, msg_type, body, body_len,
                                   weft_str_c(run_id), cmd, len, &err);
    free(body);
    if (rc != 0) fprintf(stderr, "client cmd %s: %s\n", op->name, err.message);
    SIM_CHECK(&w->s, rc == 0);
    return true;
}

static void wf_id(unsigned wf, char *buf, size_t cap) { snprintf(buf, cap, "order-%02u", wf); }

static void start_workflow(world *w) {
    unsigned wf = w->started;
    char id[32], run[40];
    wf_id(wf, id, sizeof id);
    /* The leader generates run ids; here from the seed, so a replay is identical. */
    snprintf(run, sizeof run, "run-%016llx", (unsigned long long)sim_rand(&w->s, 0));
    weft_start_req req = {.workflow_id = weft_str_c(id),
                          .workflow_type = WEFT_STR_LIT("order"),
                          .task_queue = WEFT_STR_LIT(QUEUE),
                          .input = {.ptr = (const uint8_t *)"in", .len = 2},
                          .request_id = weft_str_c(run)};
    uint8_t *cmd = NULL;
    size_t len = 0;
    client_cmd(w, WEFT_MSG_START_WORKFLOW, &req, &cmd, &len, run);
    queue_push(w, cmd, len, PC_START, wf, false);
    w->started++;
}

static unsigned wf_from_id(weft_str id) {
    unsigned wf = 0;
    if (id.len >= 8) wf = (unsigned)strtoul(id.ptr + 6, NULL, 10);
    return wf < WORKFLOWS ? wf : 0;
}

static held *held_add(world *w, uint8_t kind, weft_bytes token, unsigned wf) {
    SIM_CHECK(&w->s, w->helds_count < HELD_MAX && token.len <= TOKEN_BYTES_MAX);
    held *h = &w->helds[w->helds_count++];
    memset(h, 0, sizeof *h);
    h->kind = kind;
    memcpy(h->token, token.ptr, token.len);
    h->token_len = token.len;
    h->wf = wf;
    /* Workers take between 20 ms and 2 s. */
    h->due_ms = sim_time_ms(&w->s) + 20 + sim_rand(&w->s, 2000);
    return h;
}

/* Workflow task handed over: what does the history say? */
static void on_wft_started(world *w, const weft_reply *r) {
    if (r->err.code != 0) return; /* stale or lost: the task times out and is retried */
    msgpack_unpacked up;
    msgpack_unpacked_init(&up);
    weft_poll_wft_resp resp;
    weft_err err;
    int rc = weft_schema_decode_buf(&weft_poll_wft_resp_schema, r->body, r->body_len, &resp, &up,
                                    &w->limits, &err);
    SIM_CHECK(&w->s, rc == 0 && resp.task_token.len > 0);
    held *h = held_add(w, WEFT_TASK_KIND_WORKFLOW, resp.task_token, wf_from_id(resp.workflow_id));
    for (uint32_t i = 0; i < resp.events_count; i++) {
        uint32_t t = resp.events[i].event_type;
        if (t == WEFT_EV_ACTIVITY_TASK_SCHEDULED) h->scheduled = true;
        if (t == WEFT_EV_ACTIVITY_TASK_COMPLETED) h->act_done = true;
        if (t == WEFT_EV_TIMER_FIRED) h->timer_fired = true;
    }
    msgpack_unpacked_destroy(&up);
}

/* Activity task handed over once its Started applied (DESIGN section 8). */
static void on_act_started(world *w, const weft_reply *r) {
    if (r->err.code != 0) return; /* stale or lost: nobody holds the attempt */
    msgpack_unpacked up;
    msgpack_unpacked_init(&up);
    weft_poll_activity_resp ar;
    weft_err err;
    int rc = weft_schema_decode_buf(&weft_poll_activity_resp_schema, r->body, r->body_len, &ar,
                                    &up, &w->limits, &err);
    SIM_CHECK(&w->s, rc == 0 && ar.task_token.len > 0);
    held_add(w, WEFT_TASK_KIND_ACTIVITY, ar.task_token, wf_from_id(ar.workflow_id));
    msgpack_unpacked_destroy(&up);
}

/* The order workflow: charge (an activity) and wait (a timer), then complete. */
static void complete_wft(world *w, const held *h) {
    weft_command cmds[2];
    uint32_t n = 0;
    bool completes = false;
    if (!h->scheduled) {
        cmds[n++] = (weft_command){.type = WEFT_CMD_SCHEDULE_ACTIVITY,
                                   .activity_id = WEFT_STR_LIT("charge-1"),
                                   .activity_type = WEFT_STR_LIT("charge"),
                                   .start_to_close_timeout_ms = 20000};
        cmds[n++] = (weft_command){.type = WEFT_CMD_START_TIMER,
                                   .timer_id = WEFT_STR_LIT("cool-off"),
                                   .start_to_fire_timeout_ms = 1000 + sim_rand(&w->s, 3000)};
    } else if (h->act_done && h->timer_fired) {
        cmds[n++] = (weft_command){.type = WEFT_CMD_COMPLETE_WORKFLOW,
                                   .result = {.ptr = (const uint8_t *)"done", .len = 4}};
        completes = true;
    }
    weft_complete_wft_req req = {.task_token = {h->token, h->token_len},
                                 .identity = WEFT_STR_LIT("sim-worker"),
                                 .commands = n ? cmds : NULL,
                                 .commands_count = n};
    uint8_t *cmd = NULL;
    size_t len = 0;
    client_cmd(w, WEFT_MSG_COMPLETE_WORKFLOW_TASK, &req, &cmd, &len, "");
    queue_push(w, cmd, len, PC_WFT_COMPLETE, h->wf, completes);
    w->wft_done++;
}

static void complete_activity(world *w, const held *h) {
    weft_activity_req req = {.task_token = {h->token, h->token_len},
                             .identity = WEFT_STR_LIT("sim-worker"),
                             .result = {.ptr = (const uint8_t *)"charged", .len = 7}};
    uint8_t *cmd = NULL;
    size_t len = 0;
    client_cmd(w, WEFT_MSG_COMPLETE_ACTIVITY, &req, &cmd, &len, "");
    queue_push(w, cmd, len, PC_OTHER, h->wf, false);
    w->act_done++;
}

/* ---- Dispatch and timers on the leader ---- */

static void dispatch(world *w) {
    weft_shard *sh = w->reps[w->leader].shard;
    weft_ready_task t;
    weft_err err;
    while (weft_shard_dispatch_pop(sh, sim_dq(), WEFT_TASK_KIND_WORKFLOW, &t)) {
        char poll_id[32];
        snprintf(poll_id, sizeof poll_id, "poll-%016llx", (unsigned long long)sim_rand(&w->s, 0));
        uint8_t *cmd = NULL;
        size_t len = 0;
        weft_err_clear(&err);
        int rc = weft_shard_workflow_dispatch(sh, &t, WEFT_STR_LIT("sim-worker"),
                                              WEFT_STR_LIT(QUEUE), weft_str_c(poll_id), &cmd,
                                              &len, &err);
        if (rc == -WEFT_E_NOT_FOUND) continue;
        SIM_CHECK(&w->s, rc == 0);
        queue_push(w, cmd, len, PC_WFT_STARTED, 0, false);
    }
    while (weft_shard_dispatch_pop(sh, sim_dq(), WEFT_TASK_KIND_ACTIVITY, &t)) {
        uint8_t *cmd = NULL;
        size_t len = 0;
        weft_err_clear(&err);
        int rc = weft_shard_activity_dispatch(sh, &t, WEFT_STR_LIT("sim-worker"), &cmd, &len,
                                              &err);
        if (rc == -WEFT_E_NOT_FOUND) continue;
        SIM_CHECK(&w->s, rc == 0);
        /* The worker gets the task from the Started's apply reply (DESIGN section 8). */
        queue_push(w, cmd, len, PC_ACT_STARTED, 0, false);
    }
}

static void fire_timers(world *w) {
    if (w->firing) return;
    weft_shard *sh = w->reps[w->leader].shard;
    uint64_t now = WEFT_MAX(sim_time_ms(&w->s), weft_shard_clock_ms(sh));
    uint8_t *cmd = NULL;
    size_t len = 0;
    uint32_t count = 0;
    weft_err err;
    weft_err_clear(&err);
    SIM_CHECK(&w->s, weft_shard_fire_cmd(sh, now, 100, &cmd, &len, &count, &err) == 0);
    if (count == 0) {
        free(cmd);
        return;
    }
    w->firing = true;
    w->fires += count;
    queue_push(w, cmd, len, PC_FIRE, 0, false);
}

static void answer_due_tasks(world *w) {
    uint64_t now = sim_time_ms(&w->s);
    unsigned kept = 0;
    for (unsigned i = 0; i < w->helds_count; i++) {
        held *h = &w->helds[i];
        if (h->due_ms > now) {
            w->helds[kept++] = *h;
            continue;
        }
        if (h->kind == WEFT_TASK_KIND_WORKFLOW) complete_wft(w, h);
        else complete_activity(w, h);
    }
    w->helds_count = kept;
}

/* ---- Proposing the queue as one entry ---- */

typedef struct entry_ctx {
    world *w;
    unsigned n;
    pcmd *cmds[ENTRY_CMDS_MAX];
} entry_ctx;

static void entry_cb(sim *s, void *data, int status, weft_applied *ap) {
    entry_ctx *e = data;
    world *w = world_of(s);
    for (unsigned i = 0; i < e->n; i++) {
        pcmd *p = e->cmds[i];
        const weft_reply *r = status == 0 && ap != NULL ? &ap->replies[i] : NULL;
        if (r != NULL && r->err.code == 0) {
            if (p->kind == PC_START) w->wf_started[p->wf] = true;
            if (p->kind == PC_WFT_COMPLETE && p->completes) w->wf_completed[p->wf] = true;
        }
        if (r != NULL && p->kind == PC_WFT_STARTED) on_wft_started(w, r);
        if (r != NULL && p->kind == PC_ACT_STARTED) on_act_started(w, r);
        /* Fired or lost with its entry: either way the gate may look again. */
        if (p->kind == PC_FIRE) w->firing = false;
        free(p->cmd);
        free(p);
    }
    free(e);
}

static void flush(world *w) {
    if (w->queue_count == 0) return;
    entry_ctx *e = calloc(1, sizeof *e);
    e->w = w;
    weft_bytes cmds[ENTRY_CMDS_MAX];
    for (pcmd *p = w->queue_head; p != NULL && e->n < ENTRY_CMDS_MAX; p = p->next) {
        cmds[e->n] = (weft_bytes){p->cmd, (uint32_t)p->len};
        e->cmds[e->n++] = p;
    }
    if (sim_propose(&w->s, w->leader, cmds, e->n, entry_cb, e) != 0) {
        free(e); /* busy or not leader: the queue waits */
        return;
    }
    for (unsigned i = 0; i < e->n; i++) {
        w->queue_head = w->queue_head->next;
        w->queue_count--;
    }
    if (w->queue_head == NULL) w->queue_tail = NULL;
    w->entries++;
}

/* ---- Checking ---- */

/* Closed runs: ask the leader's shard (a stale read is enough for a test's progress check). */
static void refresh_completed(world *w) {
    for (unsigned wf = 0; wf < WORKFLOWS && wf < w->started; wf++) {
        if (w->wf_completed[wf]) continue;
        char id[32];
        wf_id(wf, id, sizeof id);
        weft_result_req req = {.workflow_id = weft_str_c(id)};
        uint8_t *body = NULL;
        size_t len = 0;
        SIM_CHECK(&w->s, weft_schema_encode_buf(&weft_result_req_schema, &req, &body, &len) == 0);
        weft_reply reply;
        memset(&reply, 0, sizeof reply);
        weft_read_wait wait;
        int rc = weft_shard_read(w->reps[w->leader].shard, WEFT_MSG_GET_RESULT, body, len, true,
                                 &reply, &wait);
        free(body);
        if (rc == 0) {
            msgpack_unpacked up;
            msgpack_unpacked_init(&up);
            weft_result_resp resp;
            weft_err err;
            if (weft_schema_decode_buf(&weft_result_resp_schema, reply.body, reply.body_len, &resp,
                                       &up, &w->limits, &err) == 0 &&
                resp.status == WEFT_STATUS_COMPLETED) {
                w->wf_completed[wf] = true;
            }
            msgpack_unpacked_destroy(&up);
        }
        weft_reply_reset(&reply);
    }
}

static unsigned completed_count(world *w) {
    unsigned n = 0;
    for (unsigned i = 0; i < WORKFLOWS; i++) n += w->wf_completed[i];
    return n;
}

/* A table's rows as one byte string: for each row, key length, key, value length, value. */
typedef struct table_dump {
    uint64_t rows;
    uint8_t *bytes;
    size_t len, cap;
} table_dump;

static void dump_put(table_dump *d, const void *p, size_t n) {
    if (d->len + n > d->cap) {
        d->cap = (d->len + n) * 2 + 256;
        d->bytes = realloc(d->bytes, d->cap);
    }
    if (n > 0) memcpy(d->bytes + d->len, p, n);
    d->len += n;
}

static void dump_val(table_dump *d, weft_val v) {
    uint64_t n = v.len;
    dump_put(d, &n, sizeof n);
    dump_put(d, v.ptr, v.len);
}

/* Every table of a replica's env, row by row in key order. */
static void dump_store(world *w, const char *dir, table_dump out[WEFT_TBL__COUNT]) {
    weft_store *st = NULL;
    weft_err err;
    weft_err_clear(&err);
    weft_store_opts opts = {0};
    int rc = weft_store_open(&st, dir, &opts, &err);
    if (rc != 0) fprintf(stderr, "store open %s: %s\n", dir, err.message);
    SIM_CHECK(&w->s, rc == 0);
    weft_txn *t = NULL;
    SIM_CHECK(&w->s, weft_txn_begin(st, false, &t, &err) == 0);
    for (unsigned tbl = 0; tbl < WEFT_TBL__COUNT; tbl++) {
        weft_cursor *c = NULL;
        SIM_CHECK(&w->s, weft_cursor_open(t, (weft_table)tbl, &c, &err) == 0);
        table_dump *d = &out[tbl];
        memset(d, 0, sizeof *d);
        weft_val k, v;
        for (rc = weft_cursor_seek(c, NULL, 0, &k, &v, &err); rc == 0;
             rc = weft_cursor_next(c, &k, &v, &err)) {
            dump_val(d, k);
            dump_val(d, v);
            d->rows++;
        }
        SIM_CHECK(&w->s, rc == -WEFT_E_NOT_FOUND);
        weft_cursor_close(c);
    }
    weft_txn_abort(t);
    weft_store_close(st);
}

/* ---- The run ---- */

static void step(world *w) {
    world_sync_leader(w);
    if (w->leader != SIM_NONE) {
        if (w->started < w->start_quota && sim_rand(&w->s, 100) < 30) start_workflow(w);
        dispatch(w);
        answer_due_tasks(w);
        fire_timers(w);
        flush(w);
    }
    sim_run_ms(&w->s, TICK_MS);
}

static void run_for(world *w, unsigned ms) {
    for (unsigned t = 0; t < ms; t += TICK_MS) step(w);
}

static int rm_cb(const char *path, const struct stat *sb, int flag, struct FTW *ftw) {
    (void)sb;
    (void)flag;
    (void)ftw;
    return remove(path);
}

static world *world_new(uint64_t seed) {
    world *w = calloc(1, sizeof *w);
    weft_limits_default(&w->limits);
    snprintf(w->root, sizeof w->root, "/tmp/weft-shard-sim-XXXXXX");
    assert_non_null(mkdtemp(w->root));
    const weft_group_fsm *fsms[SERVERS];
    for (unsigned i = 0; i < SERVERS; i++) {
        rep_open(w, i);
        fsms[i] = &w->reps[i].fsm;
    }
    sim_opts o;
    sim_opts_default(&o);
    o.servers = SERVERS;
    o.snapshot_threshold = 16;
    o.snapshot_trailing = 4;
    sim_init(&w->s, &o, fsms, seed);
    w->leader = SIM_NONE;
    return w;
}

/* The leader dies mid-run; another takes over and the work goes on. */
static void phase_leader_loss(world *w) {
    unsigned dead = w->leader;
    sim_kill(&w->s, dead);
    unsigned next = sim_wait_ready_leader(&w->s, 20000);
    SIM_CHECK(&w->s, next != SIM_NONE && next != dead);
    w->start_quota += WORKFLOWS_PER_PHASE;
    run_for(w, 8000);
    sim_revive(&w->s, dead);
    run_for(w, 3000);
}

/* A follower is cut off while the others snapshot past it, then rejoins; returns it. */
static unsigned phase_lagging_follower(world *w, unsigned *restores_before) {
    unsigned l = w->leader != SIM_NONE ? w->leader : sim_wait_ready_leader(&w->s, 20000);
    SIM_CHECK(&w->s, l != SIM_NONE);
    unsigned lagging = (l + 1) % SERVERS;
    uint64_t lag_from = raft_last_applied(sim_raft(&w->s, lagging));
    *restores_before = w->reps[lagging].restores;
    sim_isolate(&w->s, lagging);
    w->start_quota += WORKFLOWS_PER_PHASE;
    uint64_t cut_at = sim_time_ms(&w->s);
    while (sim_time_ms(&w->s) - cut_at < 60000) {
        run_for(w, 1000);
        /* Long enough that the leader's log no longer holds what the follower needs. */
        if (w->leader != SIM_NONE &&
            sim_raft(&w->s, w->leader)->log.offset > lag_from + w->s.opts.snapshot_trailing &&
            sim_time_ms(&w->s) - cut_at > 5000) {
            break;
        }
    }
    SIM_CHECK(&w->s, w->reps[lagging].restores == *restores_before);
    sim_rejoin(&w->s, lagging);
    return lagging;
}

/* Heals, commits a no-op in the final term and waits until every replica applied it. */
static void phase_converge(world *w) {
    sim_heal(&w->s);
    uint64_t target = 0;
    for (int tries = 0; tries < 100 && target == 0; tries++) {
        step(w);
        if (w->leader == SIM_NONE || w->queue_count > 0) continue;
        weft_shard_cmd noop = {.type = WEFT_SC_NOOP};
        uint8_t *cmd = NULL;
        size_t len = 0;
        SIM_CHECK(&w->s, weft_schema_encode_buf(&weft_shard_cmd_schema, &noop, &cmd, &len) == 0);
        queue_push(w, cmd, len, PC_OTHER, 0, false);
        flush(w);
        run_for(w, 2000);
        if (w->queue_count == 0 && w->leader != SIM_NONE) {
            target = raft_last_applied(sim_raft(&w->s, w->leader));
        }
    }
    SIM_CHECK(&w->s, target > 0);
    SIM_CHECK(&w->s, sim_wait_applied(&w->s, target, 30000));
    uint64_t applied = weft_shard_applied_index(w->reps[0].shard);
    for (unsigned i = 0; i < SERVERS; i++) {
        SIM_CHECK(&w->s, weft_shard_applied_index(w->reps[i].shard) == applied);
    }
}

/* Closes raft, then the shards (LMDB allows one handle per env per process), and compares
 * every table of every replica. */
static void world_compare_and_free(world *w) {
    sim_close(&w->s);
    while (w->queue_head != NULL) {
        pcmd *p = w->queue_head;
        w->queue_head = p->next;
        free(p->cmd);
        free(p);
    }
    for (unsigned i = 0; i < SERVERS; i++) weft_shard_close(w->reps[i].shard);
    table_dump dumps[SERVERS][WEFT_TBL__COUNT];
    for (unsigned i = 0; i < SERVERS; i++) dump_store(w, w->reps[i].dir, dumps[i]);
    for (unsigned tbl = 0; tbl < WEFT_TBL__COUNT; tbl++) {
        for (unsigned i = 1; i < SERVERS; i++) {
            bool same = dumps[i][tbl].len == dumps[0][tbl].len &&
                        (dumps[0][tbl].len == 0 ||
                         memcmp(dumps[i][tbl].bytes, dumps[0][tbl].bytes, dumps[0][tbl].len) == 0);
            if (!same) {
                fprintf(stderr, "table %u differs: replica 0 %llu rows, replica %u %llu rows\n",
                        tbl, (unsigned long long)dumps[0][tbl].rows, i,
                        (unsigned long long)dumps[i][tbl].rows);
            }
            SIM_CHECK(&w->s, same);
        }
    }
    SIM_CHECK(&w->s, dumps[0][WEFT_TBL_HISTORY].rows >= WORKFLOWS * 10);
    for (unsigned i = 0; i < SERVERS; i++) {
        for (unsigned tbl = 0; tbl < WEFT_TBL__COUNT; tbl++) free(dumps[i][tbl].bytes);
    }
    nftw(w->root, rm_cb, 16, FTW_DEPTH | FTW_PHYS);
    free(w);
}

static void run_world(uint64_t seed) {
    world *w = world_new(seed);
    /* Phase 1: steady work. */
    SIM_CHECK(&w->s, sim_wait_ready_leader(&w->s, 10000) != SIM_NONE);
    w->start_quota = WORKFLOWS_PER_PHASE;
    run_for(w, 8000);
    SIM_CHECK(&w->s, w->leader != SIM_NONE);
    phase_leader_loss(w);
    unsigned lag_restores = 0;
    unsigned lagging = phase_lagging_follower(w, &lag_restores);
    /* Finish every workflow. */
    while (completed_count(w) < WORKFLOWS && sim_time_ms(&w->s) < RUN_LIMIT_MS) {
        run_for(w, 1000);
        if (w->leader != SIM_NONE) refresh_completed(w);
    }
    fprintf(stderr,
            "shard sim: seed 0x%016llx: %u/%u workflows completed by %llu ms; %llu entries, "
            "%llu workflow tasks, %llu activities, %llu timers fired; restores %u/%u/%u\n",
            (unsigned long long)seed, completed_count(w), WORKFLOWS,
            (unsigned long long)sim_time_ms(&w->s), (unsigned long long)w->entries,
            (unsigned long long)w->wft_done, (unsigned long long)w->act_done,
            (unsigned long long)w->fires, w->reps[0].restores, w->reps[1].restores,
            w->reps[2].restores);
    SIM_CHECK(&w->s, completed_count(w) == WORKFLOWS);
    /* The cut-off follower caught up by snapshot: its state was replaced by an image. */
    SIM_CHECK(&w->s, w->reps[lagging].restores > lag_restores);
    phase_converge(w);
    world_compare_and_free(w);
}

static void test_shard_replicas_identical(void **state) {
    (void)state;
    unsigned runs = sim_seed_count();
    /* Real LMDB envs are slower than the toy: three seeds unless told otherwise. */
    if (getenv("WEFT_SIM_SEED") == NULL && getenv("WEFT_SIM_RUNS") == NULL && runs > 3) runs = 3;
    for (unsigned k = 0; k < runs; k++) run_world(sim_seed_at(k));
}

int main(void) {
    weft_log_set_level(WEFT_LOG_ERROR);
    const char *level = getenv("WEFT_LOG");
    if (level != NULL && weft_log_level_parse(level) >= 0) {
        weft_log_set_level((weft_log_level)weft_log_level_parse(level));
    }
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_shard_replicas_identical),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
