/* read.c: the read requests (DESIGN section 10): DescribeWorkflow, GetHistory (paged, with
 * wait-for-new-events), GetResult (with wait and continue-as-new following), ListWorkflows
 * (by status, type and start-time range, newest first, paged by position) and CountWorkflows. All run in one LMDB read
 * transaction and never write. */
#include <string.h>

#include "ops.h"

/* Runs followed through continue-as-new by one GetResult, at most. */
#define SH_RESULT_HOPS_MAX 1000u
/* ListWorkflows page size when the request gives none. */
#define SH_LIST_PAGE_SIZE_DEFAULT 100u
/* ListWorkflows page size at most: the node asks each shard for one more run than the
 * client's page (WEFT_LIST_PAGE_SIZE_MAX at most) to learn whether more follow. */
#define SH_LIST_PAGE_SIZE_MAX (WEFT_LIST_PAGE_SIZE_MAX + 1u)
/* A row's position in a shard's listing: be64 start_ms, be64 run_key (the index key's tail). */
#define SH_LIST_POS_BYTES 16u

static int read_need_workflow_id(sh_ctx *c, weft_str wfid) {
    if (wfid.len > 0) return 0;
    return sh_reject(c, WEFT_E_INVALID_ARGUMENT, "workflow_id", "workflow_id is required");
}

/* ---- Describe ---- */

typedef struct pending_list {
    void *items;
    uint32_t count;
    uint32_t cap;
} pending_list;

static void *list_slot(sh_ctx *c, pending_list *l, size_t item) {
    if (l->count == l->cap) {
        uint32_t ncap = l->cap ? l->cap * 2 : 8;
        void *n = sh_alloc(c, (size_t)ncap * item);
        if (l->count > 0) memcpy(n, l->items, (size_t)l->count * item);
        l->items = n;
        l->cap = ncap;
    }
    return (uint8_t *)l->items + (size_t)l->count++ * item;
}

/* Read transactions never write, so records borrowed from LMDB stay valid until it ends. */
static int describe_act(sh_ctx *c, uint64_t sub, const void *rec, void *data) {
    const sh_act *a = rec;
    weft_pending_activity *p = list_slot(c, data, sizeof *p);
    *p = (weft_pending_activity){
        .scheduled_event_id = sub,
        .activity_id = a->activity_id,
        .activity_type = a->activity_type,
        .state = weft_str_c(a->cancel_requested ? "cancel-requested" : sh_act_state_name(a->state)),
        .attempt = a->attempt,
        .scheduled_time_ms = a->scheduled_time_ms,
        .last_started_time_ms = a->started_time_ms,
        .last_heartbeat_time_ms = a->last_heartbeat_time_ms,
        .heartbeat_details = a->heartbeat_details,
        .last_failure = a->last_failure,
        .last_worker_identity = a->identity,
        .next_attempt_time_ms = a->state == SH_ACT_BACKOFF ? a->next_attempt_time_ms : 0,
        .task_queue = a->task_queue,
    };
    return 0;
}

static int describe_timer(sh_ctx *c, uint64_t sub, const void *rec, void *data) {
    const sh_utimer *t = rec;
    weft_pending_timer *p = list_slot(c, data, sizeof *p);
    *p = (weft_pending_timer){.timer_id = t->timer_id, .started_event_id = sub, .fire_time_ms = t->fire_at_ms};
    return 0;
}

static int read_describe(sh_ctx *c, const uint8_t *body, size_t len) {
    weft_describe_req req;
    int rc = sh_decode(c, &weft_describe_req_schema, body, len, false, false, &req);
    if (rc == 0) rc = read_need_workflow_id(c, req.workflow_id);
    sh_run r;
    if (rc == 0) rc = sh_run_find(c, sh_namespace(req.namespace_), req.workflow_id, req.run_id, &r);
    if (rc != 0) return rc;
    weft_describe_resp resp = {0};
    sh_vis_info(&r, &resp.info);
    pending_list acts = {0}, timers = {0};
    sh_act abuf;
    sh_utimer tbuf;
    rc = sh_part_scan(c, r.run_key, SH_PART_ACTIVITY, &sh_act_schema, &abuf, describe_act, &acts);
    if (rc == 0) {
        rc = sh_part_scan(c, r.run_key, SH_PART_TIMER, &sh_utimer_schema, &tbuf, describe_timer,
                          &timers);
    }
    if (rc != 0) return rc;
    resp.pending_activities = acts.items;
    resp.pending_activities_count = acts.count;
    resp.pending_timers = timers.items;
    resp.pending_timers_count = timers.count;
    resp.workflow_task_pending = r.wft.state != SH_WFT_NONE;
    if (resp.workflow_task_pending) resp.workflow_task_state = weft_str_c(sh_wft_state_name(r.wft.state));
    resp.workflow_task_attempt = r.wft.attempt;
    resp.sticky_queue = r.sticky_queue;
    resp.workflow_task_failures = r.wft.failures;
    resp.last_workflow_task_failure = r.wft.last_failure;
    return sh_reply_body(c, &weft_describe_resp_schema, &resp);
}

/* ---- History ---- */

static int read_history(sh_ctx *c, const uint8_t *body, size_t len, bool final,
                        weft_read_wait *wait) {
    weft_history_req req;
    int rc = sh_decode(c, &weft_history_req_schema, body, len, false, false, &req);
    if (rc == 0) rc = read_need_workflow_id(c, req.workflow_id);
    sh_run r;
    if (rc == 0) rc = sh_run_find(c, sh_namespace(req.namespace_), req.workflow_id, req.run_id, &r);
    if (rc != 0) return rc;
    uint64_t first = req.first_event_id > 0 ? req.first_event_id : 1;
    /* The page size has no field in weft_limits: WEFT_HISTORY_PAGE_EVENTS_DEFAULT is the cap. */
    uint32_t max = req.max_events > 0 ? WEFT_MIN(req.max_events, WEFT_HISTORY_PAGE_EVENTS_DEFAULT)
                                      : WEFT_HISTORY_PAGE_EVENTS_DEFAULT;
    uint64_t last = r.next_event_id - 1;
    weft_history_resp resp = {.run_id = r.run_id, .closed = !sh_run_is_open(&r)};
    rc = sh_hist_read(c, r.run_key, first, last, max, c->lim->frame_bytes_max / 2,
                      &resp.events, &resp.events_count, &resp.next_event_id);
    if (rc != 0) return rc;
    if (resp.next_event_id == 0) resp.next_event_id = WEFT_MAX(first, last + 1);
    if (resp.events_count == 0 && sh_run_is_open(&r) && req.wait_new_events && !final) {
        wait->should_wait = true;
        wait->run_key = r.run_key;
    }
    return sh_reply_body(c, &weft_history_resp_schema, &resp);
}

/* ---- Result ---- */

static int read_follow(sh_ctx *c, sh_run *r) {
    for (uint32_t hops = 0; r->status == WEFT_STATUS_CONTINUED && r->continued_to_run_id.len > 0;
         hops++) {
        if (hops == SH_RESULT_HOPS_MAX) {
            return sh_reject(c, WEFT_E_FAILED_PRECONDITION, "run_id",
                             "the run continued as new more than %u times: ask for the result "
                             "of a later run id",
                             SH_RESULT_HOPS_MAX);
        }
        weft_str next = r->continued_to_run_id;
        int rc = sh_run_find(c, r->namespace_, r->workflow_id, next, r);
        if (rc != 0) return rc;
    }
    return 0;
}

static int read_result(sh_ctx *c, const uint8_t *body, size_t len, bool final,
                       weft_read_wait *wait) {
    weft_result_req req;
    int rc = sh_decode(c, &weft_result_req_schema, body, len, false, false, &req);
    if (rc == 0) rc = read_need_workflow_id(c, req.workflow_id);
    sh_run r;
    if (rc == 0) rc = sh_run_find(c, sh_namespace(req.namespace_), req.workflow_id, req.run_id, &r);
    if (rc == 0 && req.follow_runs) rc = read_follow(c, &r);
    if (rc != 0) return rc;
    weft_result_resp resp = {.run_id = r.run_id, .status = r.status};
    if (sh_run_is_open(&r)) {
        if (req.wait && !final) {
            wait->should_wait = true;
            wait->run_key = r.run_key;
        }
    } else {
        resp.result = r.result;
        resp.failure = r.failure;
        resp.continued_run_id = r.continued_to_run_id;
    }
    return sh_reply_body(c, &weft_result_resp_schema, &resp);
}

/* ---- List and count ---- */

typedef struct list_query {
    weft_table tbl;       /* which index */
    weft_key prefix;      /* (ns, status-or-type) part of every key */
    uint32_t status;      /* filter when listing by type with a status too; 0 = any */
    uint64_t min_ms, max_ms;
} list_query;

/* Status filter: vis_status; type filter alone: vis_type; neither: the "*" rows. */
static void list_plan(const weft_list_req *req, weft_str ns, list_query *q) {
    memset(q, 0, sizeof *q);
    weft_key_reset(&q->prefix);
    weft_key_ident(&q->prefix, ns);
    if (req->workflow_type.len > 0) {
        q->tbl = WEFT_TBL_VIS_TYPE;
        weft_key_ident(&q->prefix, req->workflow_type);
        q->status = req->status;
    } else {
        q->tbl = WEFT_TBL_VIS_STATUS;
        const char *name = req->status != 0 ? weft_status_names[req->status] : "*";
        weft_key_ident(&q->prefix, weft_str_c(name));
    }
    q->min_ms = req->start_time_min_ms;
    q->max_ms = req->start_time_max_ms;
}

/* The first key to read for a count: the prefix plus the start-time minimum. */
static void count_start(const list_query *q, weft_key *start) {
    *start = q->prefix;
    weft_key_u64(start, q->min_ms);
}

typedef struct list_walk {
    uint32_t want;                 /* list: rows to collect */
    weft_execution_info *items;
    uint8_t *positions;            /* list: SH_LIST_POS_BYTES per item collected */
    uint32_t count;
    uint64_t total;                /* count: rows that pass the filters */
} list_walk;

/* Checks that `k` is a row of the query's index: the prefix, then (start_ms, run_key). */
static bool list_key_ours(const list_query *q, weft_val k) {
    size_t p = q->prefix.len;
    return k.len == p + SH_LIST_POS_BYTES && memcmp(k.ptr, q->prefix.bytes, p) == 0;
}

/* Decodes a row's summary and applies the status filter: *keep says whether it passes. */
static int list_row_info(sh_ctx *c, const list_query *q, weft_val v, weft_execution_info *info,
                         bool *keep) {
    int rc = sh_decode(c, &weft_execution_info_schema, v.ptr, v.len, false, true, info);
    if (rc != 0) {
        c->err.code = WEFT_E_INTERNAL;
        return -WEFT_E_INTERNAL;
    }
    *keep = q->status == 0 || info->status == q->status;
    return 0;
}

/* One row of a count, oldest first: *stop past the range. */
static int count_row(sh_ctx *c, const list_query *q, weft_val k, weft_val v, list_walk *w,
                     bool *stop) {
    if (!list_key_ours(q, k)) {
        *stop = true;
        return 0;
    }
    uint64_t start_ms = weft_be64_get((const uint8_t *)k.ptr + q->prefix.len);
    if (q->max_ms > 0 && start_ms > q->max_ms) {
        *stop = true;
        return 0;
    }
    weft_execution_info info;
    bool keep = false;
    int rc = list_row_info(c, q, v, &info, &keep);
    if (rc == 0 && keep) w->total++;
    return rc;
}

static int count_walk_index(sh_ctx *c, const list_query *q, const weft_key *start,
                            list_walk *w) {
    weft_cursor *cur = NULL;
    int rc = weft_cursor_open(c->txn, q->tbl, &cur, &c->err);
    if (rc != 0) return -WEFT_E_INTERNAL;
    weft_val k, v;
    weft_err scratch;
    weft_err_clear(&scratch);
    int crc = weft_cursor_seek(cur, start->bytes, start->len, &k, &v, &scratch);
    bool stop = false;
    while (crc == 0 && rc == 0 && !stop) {
        rc = count_row(c, q, k, v, w, &stop);
        if (rc == 0 && !stop) crc = weft_cursor_next(cur, &k, &v, &scratch);
    }
    weft_cursor_close(cur);
    if (rc != 0) return rc;
    if (crc != 0 && crc != -WEFT_E_NOT_FOUND) {
        c->err = scratch;
        return -WEFT_E_INTERNAL;
    }
    return 0;
}

/* The exclusive upper bound (start_ms, run_key) of a listing: the lower of the page token's
 * position and the start-time maximum's successor. *bounded is false when neither is given. */
static int list_bound(sh_ctx *c, const list_query *q, weft_bytes token, bool *bounded,
                      uint64_t *bound_ms, uint64_t *bound_key) {
    *bounded = false;
    if (token.len != 0 && token.len != SH_LIST_POS_BYTES) {
        return sh_reject(c, WEFT_E_INVALID_ARGUMENT, "next_page_token",
                         "next_page_token is not a shard position (%u bytes, want %u): pass "
                         "the last position of the previous page",
                         token.len, SH_LIST_POS_BYTES);
    }
    if (token.len == SH_LIST_POS_BYTES) {
        *bounded = true;
        *bound_ms = weft_be64_get(token.ptr);
        *bound_key = weft_be64_get(token.ptr + 8);
    }
    if (q->max_ms > 0 && q->max_ms < UINT64_MAX &&
        (!*bounded || q->max_ms + 1 < *bound_ms ||
         (q->max_ms + 1 == *bound_ms && *bound_key > 0))) {
        *bounded = true;
        *bound_ms = q->max_ms + 1;
        *bound_key = 0;
    }
    return 0;
}

/* Positions the cursor at the newest row strictly below the bound (or the table's last row
 * when unbounded): seek to the first key at or above it, then step back. */
static int list_seek_newest(const list_query *q, bool bounded, uint64_t bound_ms,
                            uint64_t bound_key, weft_cursor *cur, weft_val *k, weft_val *v,
                            weft_err *err) {
    weft_key at = q->prefix;
    if (bounded) {
        weft_key_u64(&at, bound_ms);
        weft_key_u64(&at, bound_key);
    } else {
        /* Above every row of the prefix: no run has start time and run key UINT64_MAX. */
        weft_key_u64(&at, UINT64_MAX);
        weft_key_u64(&at, UINT64_MAX);
    }
    int crc = weft_cursor_seek(cur, at.bytes, at.len, k, v, err);
    if (crc == 0) return weft_cursor_prev(cur, k, v, err);
    if (crc == -WEFT_E_NOT_FOUND) return weft_cursor_last(cur, k, v, err);
    return crc;
}

/* Collects up to w->want rows newest first, strictly below the bound, down to the start-time
 * minimum, with each row's position (start_ms, run_key). */
static int list_walk_newest(sh_ctx *c, const list_query *q, bool bounded, uint64_t bound_ms,
                            uint64_t bound_key, list_walk *w) {
    weft_cursor *cur = NULL;
    int rc = weft_cursor_open(c->txn, q->tbl, &cur, &c->err);
    if (rc != 0) return -WEFT_E_INTERNAL;
    weft_val k, v;
    weft_err scratch;
    weft_err_clear(&scratch);
    int crc = list_seek_newest(q, bounded, bound_ms, bound_key, cur, &k, &v, &scratch);
    while (crc == 0 && rc == 0 && w->count < w->want && list_key_ours(q, k)) {
        const uint8_t *pos = (const uint8_t *)k.ptr + q->prefix.len;
        if (weft_be64_get(pos) < q->min_ms) break;
        bool keep = false;
        rc = list_row_info(c, q, v, &w->items[w->count], &keep);
        if (rc == 0 && keep) {
            memcpy(w->positions + (size_t)w->count * SH_LIST_POS_BYTES, pos, SH_LIST_POS_BYTES);
            w->count++;
        }
        if (rc == 0) crc = weft_cursor_prev(cur, &k, &v, &scratch);
    }
    weft_cursor_close(cur);
    if (rc != 0) return rc;
    if (crc != 0 && crc != -WEFT_E_NOT_FOUND) {
        c->err = scratch;
        return -WEFT_E_INTERNAL;
    }
    return 0;
}

static int read_count(sh_ctx *c, const list_query *q) {
    weft_key start;
    count_start(q, &start);
    list_walk w = {.want = UINT32_MAX};
    int rc = count_walk_index(c, q, &start, &w);
    if (rc != 0) return rc;
    weft_count_resp resp = {.count = w.total};
    return sh_reply_body(c, &weft_count_resp_schema, &resp);
}

/* A shard's list page, newest first. The node (node/reads.c) merges the shards' pages into
 * the global order, so the page token here is a position, not a client's token: the request's
 * is the exclusive bound (SH_LIST_POS_BYTES: be64 start_ms, be64 run_key), and the answer's
 * holds the position of every row returned, in order, so the node can place each one. */
static int read_list(sh_ctx *c, const uint8_t *body, size_t len, bool count_only) {
    weft_list_req req;
    int rc = sh_decode(c, &weft_list_req_schema, body, len, false, false, &req);
    if (rc != 0) return rc;
    list_query q;
    list_plan(&req, sh_namespace(req.namespace_), &q);
    if (count_only) return read_count(c, &q);
    bool bounded = false;
    uint64_t bound_ms = 0, bound_key = 0;
    rc = list_bound(c, &q, req.next_page_token, &bounded, &bound_ms, &bound_key);
    if (rc != 0) return rc;
    uint32_t page = req.page_size > 0 ? WEFT_MIN(req.page_size, SH_LIST_PAGE_SIZE_MAX)
                                      : SH_LIST_PAGE_SIZE_DEFAULT;
    list_walk w = {.want = page};
    w.items = sh_alloc(c, (size_t)page * sizeof *w.items);
    w.positions = sh_alloc(c, (size_t)page * SH_LIST_POS_BYTES);
    rc = list_walk_newest(c, &q, bounded, bound_ms, bound_key, &w);
    if (rc != 0) return rc;
    weft_list_resp resp = {
        .executions = w.items,
        .executions_count = w.count,
        .next_page_token = {.ptr = w.positions, .len = w.count * SH_LIST_POS_BYTES},
    };
    return sh_reply_body(c, &weft_list_resp_schema, &resp);
}

/* ---- Entry point ---- */

static int read_route(sh_ctx *c, uint32_t msg_type, const uint8_t *body, size_t len, bool final,
                      weft_read_wait *wait) {
    switch (msg_type) {
    case WEFT_MSG_DESCRIBE_WORKFLOW: return read_describe(c, body, len);
    case WEFT_MSG_GET_HISTORY: return read_history(c, body, len, final, wait);
    case WEFT_MSG_GET_RESULT: return read_result(c, body, len, final, wait);
    case WEFT_MSG_LIST_WORKFLOWS: return read_list(c, body, len, false);
    case WEFT_MSG_COUNT_WORKFLOWS: return read_list(c, body, len, true);
    case WEFT_MSG_DESCRIBE_NAMESPACE: return sh_ns_read_describe(c, body, len);
    case WEFT_MSG_LIST_NAMESPACES: return sh_ns_read_list(c, body, len);
    }
    return sh_reject(c, WEFT_E_INVALID_ARGUMENT, "msg_type",
                     "message type %u is not a shard read request", msg_type);
}

int weft_shard_read(weft_shard *s, uint32_t msg_type, const uint8_t *body, size_t body_len,
                    bool final, weft_reply *reply, weft_read_wait *wait) {
    WEFT_ASSERT(s != NULL && reply != NULL && wait != NULL);
    memset(wait, 0, sizeof *wait);
    weft_reply_reset(reply);
    if (s->failed) {
        weft_err_set(&reply->err, WEFT_E_UNAVAILABLE, NULL,
                     "shard %u stopped after a storage failure: retry on another replica",
                     s->shard_id);
        return -WEFT_E_UNAVAILABLE;
    }
    weft_txn *t = NULL;
    int rc = weft_txn_begin(s->store, false, &t, &reply->err);
    if (rc != 0) return rc;
    sh_ctx c;
    sh_ctx_init(&c, s, t, s->clock_ms, NULL);
    c.reply = reply;
    rc = read_route(&c, msg_type, body, body_len, final, wait);
    if (rc != 0) {
        sh_reply_from_err(&c);
        memset(wait, 0, sizeof *wait);
    }
    weft_txn_abort(t);
    sh_ctx_close(&c);
    return rc;
}
