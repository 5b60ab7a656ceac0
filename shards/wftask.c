/* wftask.c: the workflow task of a run (DESIGN section 7, "Workflow task"): at most one in
 * flight; scheduling (sticky first, shared after sticky_timeout_ms); start; completion with
 * UNHANDLED_EVENTS detection; failure and timeout with backoff retries that stay out of
 * history ("transient") until one succeeds. */
#include <string.h>

#include "ops.h"

/* ---- Scheduling ---- */

/* Puts the scheduled task on `queue`: ready row, and the sticky fallback timer when the
 * queue is a worker's sticky queue. The state is set by the caller. */
static int wft_enqueue(sh_ctx *c, sh_run *r, weft_str queue, bool sticky) {
    r->wft.queue = queue;
    r->wft.scheduled_time_ms = c->now_ms;
    int rc = sh_ready_add(c, r, queue, WEFT_TASK_KIND_WORKFLOW, r->wft.scheduled_event_id,
                          r->wft.attempt, &r->wft.ready_seq);
    if (rc != 0 || !sticky) return rc;
    return sh_timer_add(c, c->now_ms + c->lim->sticky_timeout_ms, SH_TK_WFT_STICKY,
                        r->run_key, r->wft.scheduled_event_id, r->wft.attempt, (weft_bytes){0});
}

int sh_wft_schedule(sh_ctx *c, sh_run *r) {
    if (!sh_run_is_open(r) || r->wft.state != SH_WFT_NONE) return 0;
    WEFT_ASSERT(!r->wft.transient && r->buffered_count == 0);
    bool sticky = r->sticky_queue.len > 0;
    weft_str queue = sticky ? r->sticky_queue : r->task_queue;
    r->wft.attempt = r->wft.failures + 1;
    weft_event ev = {.event_type = WEFT_EV_WORKFLOW_TASK_SCHEDULED,
                     .task_queue = queue,
                     .start_to_close_timeout_ms = r->task_timeout_ms,
                     .attempt = r->wft.attempt};
    int rc = sh_hist_write(c, r, &ev);
    if (rc != 0) return rc;
    r->wft.scheduled_event_id = ev.event_id;
    r->wft.started_event_id = 0;
    sh_wft_set_state(c, r, SH_WFT_SCHEDULED);
    return wft_enqueue(c, r, queue, sticky);
}

/* A retry attempt: nothing is written; its ids are provisional (the next id) until it
 * completes or an outside event forces its Scheduled event out (history.c). */
static int wft_schedule_transient(sh_ctx *c, sh_run *r) {
    WEFT_ASSERT(r->wft.failures > 0 && r->buffered_count == 0);
    r->wft.transient = true;
    r->wft.scheduled_event_id = r->next_event_id;
    r->wft.started_event_id = 0;
    sh_wft_set_state(c, r, SH_WFT_SCHEDULED);
    return wft_enqueue(c, r, r->task_queue, false);
}

/* Writes a transient task's Scheduled and Started events with the ids and times the worker
 * was shown (section 7: "where WorkflowTaskScheduled(attempt)+WorkflowTaskStarted are
 * written" on success). */
static int wft_materialize(sh_ctx *c, sh_run *r) {
    WEFT_ASSERT(r->wft.transient && r->wft.state == SH_WFT_STARTED);
    WEFT_ASSERT(r->wft.scheduled_event_id == r->next_event_id);
    r->wft.transient = false;
    weft_event sched = {.event_type = WEFT_EV_WORKFLOW_TASK_SCHEDULED,
                        .event_time_ms = r->wft.scheduled_time_ms,
                        .task_queue = r->wft.queue,
                        .start_to_close_timeout_ms = r->task_timeout_ms,
                        .attempt = r->wft.attempt};
    int rc = sh_hist_write(c, r, &sched);
    if (rc != 0) return rc;
    weft_event started = {.event_type = WEFT_EV_WORKFLOW_TASK_STARTED,
                          .event_time_ms = r->wft.started_time_ms,
                          .scheduled_event_id = r->wft.scheduled_event_id,
                          .identity = r->wft.identity,
                          .request_id = r->wft.started_request_id,
                          .attempt = r->wft.attempt};
    rc = sh_hist_write(c, r, &started);
    WEFT_ASSERT(rc != 0 || started.event_id == r->wft.started_event_id);
    return rc;
}

/* ---- Token checks ---- */

static int wft_stale(sh_ctx *c, const weft_task_token *t, const char *why) {
    return sh_reject(c, WEFT_E_NOT_FOUND, "task_token",
                     "workflow task (scheduled event %llu, attempt %u) is no longer current: %s; "
                     "drop it, the server has scheduled or will schedule what comes next",
                     (unsigned long long)t->scheduled_event_id, t->attempt, why);
}

/* Loads the run of a token whose task must be in `state` with the token's ids. */
static int wft_load_current(sh_ctx *c, const weft_task_token *t, uint32_t state, sh_run *r) {
    int rc = sh_run_load(c, t->run_key, r);
    if (rc == -WEFT_E_NOT_FOUND) return wft_stale(c, t, "the run no longer exists");
    if (rc != 0) return rc;
    if (!sh_run_is_open(r)) return wft_stale(c, t, "the run is closed");
    if (r->wft.state != state || r->wft.scheduled_event_id != t->scheduled_event_id ||
        r->wft.attempt != t->attempt) {
        return wft_stale(c, t, "it was started, completed, failed or timed out already");
    }
    return 0;
}

/* ---- Started ---- */

int sh_wft_on_started(sh_ctx *c, const weft_shard_cmd *cmd) {
    weft_task_token t;
    int rc = sh_token_parse(c, cmd->task_token, WEFT_TASK_KIND_WORKFLOW, &t);
    if (rc != 0) return rc;
    sh_run r = {0};
    rc = wft_load_current(c, &t, SH_WFT_SCHEDULED, &r);
    /* A replayed Started of the same poll answers like the first (raft may re-propose). */
    if (rc == -WEFT_E_NOT_FOUND && r.wft.state == SH_WFT_STARTED && cmd->request_id.len > 0 &&
        r.wft.scheduled_event_id == t.scheduled_event_id && r.wft.attempt == t.attempt &&
        weft_str_eq(r.wft.started_request_id, cmd->request_id) && sh_run_is_open(&r)) {
        weft_err_clear(&c->err);
        return sh_wft_poll_reply(c, &r, cmd->task_queue);
    }
    if (rc != 0) return rc;
    rc = sh_ready_del(c, &r, r.wft.queue, WEFT_TASK_KIND_WORKFLOW, r.wft.ready_seq);
    if (rc != 0) return rc;
    r.wft.ready_seq = 0;
    r.wft.identity = cmd->identity;
    r.wft.started_request_id = cmd->request_id;
    r.wft.started_time_ms = c->now_ms;
    if (r.wft.transient) {
        r.wft.started_event_id = r.wft.scheduled_event_id + 1;
    } else {
        weft_event ev = {.event_type = WEFT_EV_WORKFLOW_TASK_STARTED,
                         .scheduled_event_id = r.wft.scheduled_event_id,
                         .identity = cmd->identity,
                         .request_id = cmd->request_id,
                         .attempt = r.wft.attempt};
        rc = sh_hist_write(c, &r, &ev);
        if (rc != 0) return rc;
        r.wft.started_event_id = ev.event_id;
    }
    sh_wft_set_state(c, &r, SH_WFT_STARTED);
    rc = sh_timer_add(c, c->now_ms + r.task_timeout_ms, SH_TK_WFT_START_TO_CLOSE, r.run_key,
                      r.wft.scheduled_event_id, r.wft.attempt, (weft_bytes){0});
    if (rc == 0) rc = sh_run_store(c, &r);
    if (rc != 0) return rc;
    return sh_wft_poll_reply(c, &r, cmd->task_queue);
}

/* ---- Failure, timeout ---- */

/* Delay before retry attempt `failures + 1`: WEFT_WFT_RETRY_INITIAL_MS doubling up to
 * WEFT_WFT_RETRY_MAX_MS (section 7: "retried with backoff"). */
static uint64_t wft_retry_delay_ms(uint32_t failures) {
    WEFT_ASSERT(failures >= 1);
    uint64_t d = WEFT_WFT_RETRY_INITIAL_MS;
    for (uint32_t i = 1; i < failures && d < WEFT_WFT_RETRY_MAX_MS; i++) d *= 2;
    return WEFT_MIN(d, (uint64_t)WEFT_WFT_RETRY_MAX_MS);
}

/* Only a task whose Started event is in history gets a Failed/TimedOut event, which makes
 * the first failure of a streak the only one recorded (later attempts are transient). */
static int wft_write_failure(sh_ctx *c, sh_run *r, weft_str cause, const weft_failure *f,
                             weft_str identity, bool timeout) {
    weft_event ev = {.scheduled_event_id = r->wft.scheduled_event_id,
                     .started_event_id = r->wft.started_event_id,
                     .attempt = r->wft.attempt};
    if (timeout) {
        ev.event_type = WEFT_EV_WORKFLOW_TASK_TIMED_OUT;
        ev.timeout_type = WEFT_TIMEOUT_START_TO_CLOSE;
    } else {
        ev.event_type = WEFT_EV_WORKFLOW_TASK_FAILED;
        ev.cause = cause;
        ev.failure = *f;
        ev.identity = identity;
    }
    return sh_hist_write(c, r, &ev);
}

static int wft_failed(sh_ctx *c, sh_run *r, weft_str cause, const weft_failure *f,
                      weft_str identity, bool timeout) {
    WEFT_ASSERT(r->wft.state == SH_WFT_STARTED && sh_run_is_open(r));
    int rc = 0;
    if (!r->wft.transient) rc = wft_write_failure(c, r, cause, f, identity, timeout);
    if (rc != 0) return rc;
    r->wft.transient = false;
    r->wft.failures++;
    r->wft.last_failure = *f;
    r->wft.last_failure_cause = cause;
    /* The worker's cache may be what failed: the retry goes to the shared queue. */
    r->sticky_queue = (weft_str){0};
    r->sticky_identity = (weft_str){0};
    sh_wft_set_state(c, r, SH_WFT_BACKOFF);
    rc = sh_hist_flush(c, r, NULL);
    if (rc != 0) return rc;
    uint64_t failed_sched = r->wft.scheduled_event_id;
    r->wft.attempt = r->wft.failures + 1;
    uint64_t delay = wft_retry_delay_ms(r->wft.failures);
    WEFT_LOGF(WEFT_LOG_DEBUG, c->s->shard_id, "run %llu workflow task failed %u times (%.*s); retry in %llu ms",
              (unsigned long long)r->run_key, r->wft.failures, (int)cause.len, cause.ptr,
              (unsigned long long)delay);
    return sh_timer_add(c, c->now_ms + delay, SH_TK_WFT_RETRY, r->run_key, failed_sched,
                        r->wft.attempt, (weft_bytes){0});
}

int sh_wft_on_fail(sh_ctx *c, const weft_shard_cmd *cmd) {
    weft_fail_wft_req req;
    int rc = sh_decode(c, &weft_fail_wft_req_schema, cmd->body.ptr, cmd->body.len, false, false,
                       &req);
    weft_task_token t;
    if (rc == 0) rc = sh_token_parse(c, req.task_token, WEFT_TASK_KIND_WORKFLOW, &t);
    sh_run r;
    if (rc == 0) rc = wft_load_current(c, &t, SH_WFT_STARTED, &r);
    if (rc != 0) return rc;
    weft_str cause = req.cause.len > 0 ? req.cause : WEFT_STR_LIT("UNSPECIFIED");
    rc = wft_failed(c, &r, cause, &req.failure, req.identity, false);
    if (rc == 0) rc = sh_run_store(c, &r);
    if (rc != 0) return rc;
    return sh_reply_empty(c);
}

/* ---- Completion ---- */

static int wft_write_completed(sh_ctx *c, sh_run *r, const weft_complete_wft_req *req,
                               uint64_t *completed_id) {
    int rc = r->wft.transient ? wft_materialize(c, r) : 0;
    if (rc != 0) return rc;
    weft_event ev = {.event_type = WEFT_EV_WORKFLOW_TASK_COMPLETED,
                     .scheduled_event_id = r->wft.scheduled_event_id,
                     .started_event_id = r->wft.started_event_id,
                     .identity = req->identity,
                     .sticky_queue = req->sticky_queue};
    rc = sh_hist_write(c, r, &ev);
    *completed_id = ev.event_id;
    return rc;
}

/* A success resets the failure streak and remembers where the worker's cache stands. */
static void wft_succeeded(sh_ctx *c, sh_run *r, const weft_complete_wft_req *req) {
    r->previous_started_event_id = r->wft.started_event_id;
    r->wft.failures = 0;
    r->wft.last_failure = (weft_failure){0};
    r->wft.last_failure_cause = (weft_str){0};
    r->wft.identity = (weft_str){0};
    r->wft.started_request_id = (weft_str){0};
    r->sticky_queue = req->sticky_queue;
    r->sticky_identity = req->sticky_queue.len > 0 ? req->identity : (weft_str){0};
    sh_wft_set_state(c, r, SH_WFT_NONE);
}

static int wft_complete(sh_ctx *c, sh_run *r, const weft_complete_wft_req *req) {
    uint64_t completed_id = 0;
    int rc = wft_write_completed(c, r, req, &completed_id);
    if (rc != 0) return rc;
    wft_succeeded(c, r, req);
    bool need_task = false;
    rc = sh_cmds_apply(c, r, req, completed_id, &need_task);
    if (rc != 0) return rc;
    if (sh_run_is_open(r)) {
        uint32_t flushed = 0;
        rc = sh_hist_flush(c, r, &flushed);
        /* Events that arrived while the task ran need a task of their own (section 7). */
        if (rc == 0 && (flushed > 0 || need_task)) rc = sh_wft_schedule(c, r);
    }
    if (rc == 0) rc = sh_run_store(c, r);
    if (rc != 0) return rc;
    return sh_reply_empty(c);
}

/* A close command raced with new events: none of the commands apply, the task is recorded
 * as failed (not counted as a failure: the worker did nothing wrong) and a new one carries
 * the events (section 7). */
static int wft_unhandled(sh_ctx *c, sh_run *r, const weft_complete_wft_req *req) {
    int rc = r->wft.transient ? wft_materialize(c, r) : 0;
    if (rc != 0) return rc;
    weft_event ev = {.event_type = WEFT_EV_WORKFLOW_TASK_FAILED,
                     .scheduled_event_id = r->wft.scheduled_event_id,
                     .started_event_id = r->wft.started_event_id,
                     .cause = WEFT_STR_LIT("UNHANDLED_EVENTS"),
                     .identity = req->identity,
                     .attempt = r->wft.attempt};
    rc = sh_hist_write(c, r, &ev);
    if (rc != 0) return rc;
    r->wft.failures = 0;
    r->wft.last_failure = (weft_failure){0};
    r->wft.last_failure_cause = (weft_str){0};
    /* The worker's cached run already ran past the close; it must replay from history. */
    r->sticky_queue = (weft_str){0};
    r->sticky_identity = (weft_str){0};
    sh_wft_set_state(c, r, SH_WFT_NONE);
    rc = sh_hist_flush(c, r, NULL);
    if (rc == 0) rc = sh_wft_schedule(c, r);
    if (rc == 0) rc = sh_run_store(c, r);
    if (rc != 0) return rc;
    return sh_reply_error(c, WEFT_E_FAILED_PRECONDITION, "commands",
                          "UNHANDLED_EVENTS: new events arrived while the task ran; the next "
                          "task carries them, so handle them before closing the workflow");
}

/* Commands that fail validation apply none of their effects; the task fails (Temporal's
 * bad-command causes), is retried with backoff, and the caller learns which field was bad. */
static int wft_bad_commands(sh_ctx *c, sh_run *r, const weft_complete_wft_req *req) {
    weft_err why = c->err;
    weft_err_clear(&c->err);
    weft_failure f = {.type = WEFT_STR_LIT("BadCommand"),
                      .message = sh_str_dup(c, weft_str_c(why.message)),
                      .non_retryable = false};
    int rc = wft_failed(c, r, WEFT_STR_LIT("BAD_COMMAND"), &f, req->identity, false);
    if (rc == 0) rc = sh_run_store(c, r);
    if (rc != 0) return rc;
    return sh_reply_error(c, why.code, why.field, "%s", why.message);
}

int sh_wft_on_complete(sh_ctx *c, const weft_shard_cmd *cmd) {
    weft_complete_wft_req req;
    int rc = sh_decode(c, &weft_complete_wft_req_schema, cmd->body.ptr, cmd->body.len, false,
                       false, &req);
    weft_task_token t;
    if (rc == 0) rc = sh_token_parse(c, req.task_token, WEFT_TASK_KIND_WORKFLOW, &t);
    sh_run r;
    if (rc == 0) rc = wft_load_current(c, &t, SH_WFT_STARTED, &r);
    if (rc != 0) return rc;
    sh_cmds_plan plan;
    rc = sh_cmds_validate(c, &r, &req, &plan);
    if (rc == -WEFT_E_INTERNAL) return rc;
    if (rc != 0) return wft_bad_commands(c, &r, &req);
    if (r.buffered_count > 0 && plan.has_close) return wft_unhandled(c, &r, &req);
    return wft_complete(c, &r, &req);
}

/* ---- Timers, requeue, abandon ---- */

/* The sticky worker did not pick the task up in time: it moves to the shared queue and the
 * run stops preferring that worker (section 7: "falls back to the shared queue after 5 s"). */
static int wft_sticky_fallback(sh_ctx *c, sh_run *r) {
    int rc = sh_ready_del(c, r, r->wft.queue, WEFT_TASK_KIND_WORKFLOW, r->wft.ready_seq);
    if (rc != 0) return rc;
    r->sticky_queue = (weft_str){0};
    r->sticky_identity = (weft_str){0};
    return wft_enqueue(c, r, r->task_queue, false);
}

int sh_wft_on_timer(sh_ctx *c, sh_run *r, const sh_timer_row *row) {
    sh_wft *w = &r->wft;
    bool same = w->scheduled_event_id == row->ref && w->attempt == row->attempt;
    int rc = 0;
    switch (row->kind) {
    case SH_TK_WFT_START_TO_CLOSE: {
        if (w->state != SH_WFT_STARTED || !same) return 0;
        /* A requeued transient attempt is started again under the same ids: the row of its
         * earlier start is stale, only the latest start's may time it out (G6). */
        if (c->now_ms - WEFT_MIN(w->started_time_ms, c->now_ms) < r->task_timeout_ms) return 0;
        weft_failure f = {.type = WEFT_STR_LIT("Timeout:start-to-close"),
                          .message = sh_str_fmt(c, "workflow task was not completed within %llu "
                                                   "ms (workflow_task_timeout_ms)",
                                                (unsigned long long)r->task_timeout_ms)};
        rc = wft_failed(c, r, WEFT_STR_LIT("TIMEOUT"), &f, (weft_str){0}, true);
        break;
    }
    case SH_TK_WFT_STICKY:
        if (w->state != SH_WFT_SCHEDULED || !same || r->sticky_queue.len == 0 ||
            !weft_str_eq(w->queue, r->sticky_queue)) {
            return 0;
        }
        rc = wft_sticky_fallback(c, r);
        break;
    case SH_TK_WFT_RETRY:
        if (w->state != SH_WFT_BACKOFF || w->attempt != row->attempt) return 0;
        rc = wft_schedule_transient(c, r);
        break;
    default: WEFT_ASSERT(false && "not a workflow task timer");
    }
    if (rc != 0) return rc;
    return sh_run_store(c, r);
}

/* The poller of a started task vanished before it got the task (section 8). A transient
 * attempt simply goes back on its queue; a recorded one is closed as timed out and a fresh
 * task is scheduled at once (no backoff, not counted as a failure). */
int sh_wft_on_requeue(sh_ctx *c, sh_run *r, const weft_task_token *t) {
    if (r->wft.state != SH_WFT_STARTED || r->wft.scheduled_event_id != t->scheduled_event_id ||
        r->wft.attempt != t->attempt) {
        return wft_stale(c, t, "it is not started with this token");
    }
    int rc = 0;
    bool transient = r->wft.transient;
    if (!transient) {
        weft_failure none = {0};
        rc = wft_write_failure(c, r, (weft_str){0}, &none, (weft_str){0}, true);
    }
    if (rc != 0) return rc;
    r->wft.transient = false;
    sh_wft_set_state(c, r, SH_WFT_NONE);
    rc = sh_hist_flush(c, r, NULL);
    if (rc == 0) rc = transient ? wft_schedule_transient(c, r) : sh_wft_schedule(c, r);
    if (rc == 0) rc = sh_run_store(c, r);
    if (rc != 0) return rc;
    return sh_reply_empty(c);
}

int sh_wft_abandon(sh_ctx *c, sh_run *r) {
    int rc = 0;
    switch (r->wft.state) {
    case SH_WFT_NONE: break;
    case SH_WFT_SCHEDULED:
        rc = sh_ready_del(c, r, r->wft.queue, WEFT_TASK_KIND_WORKFLOW, r->wft.ready_seq);
        break;
    case SH_WFT_STARTED:
        if (!r->wft.transient) {
            weft_event ev = {.event_type = WEFT_EV_WORKFLOW_TASK_FAILED,
                             .scheduled_event_id = r->wft.scheduled_event_id,
                             .started_event_id = r->wft.started_event_id,
                             .cause = WEFT_STR_LIT("FORCE_CLOSE"),
                             .attempt = r->wft.attempt};
            rc = sh_hist_write(c, r, &ev);
        }
        break;
    case SH_WFT_BACKOFF: break;
    }
    if (rc != 0) return rc;
    r->wft.transient = false;
    r->wft.ready_seq = 0;
    if (r->wft.state != SH_WFT_NONE) sh_wft_set_state(c, r, SH_WFT_NONE);
    return sh_hist_flush(c, r, NULL);
}

/* ---- The poll response ---- */

/* The synthetic Scheduled/Started pair of a transient attempt, appended to what history
 * holds (Temporal's transient workflow task events). */
static void wft_synthetic(const sh_run *r, weft_event *sched, weft_event *started) {
    *sched = (weft_event){.event_id = r->wft.scheduled_event_id,
                          .event_time_ms = r->wft.scheduled_time_ms,
                          .event_type = WEFT_EV_WORKFLOW_TASK_SCHEDULED,
                          .task_queue = r->wft.queue,
                          .start_to_close_timeout_ms = r->task_timeout_ms,
                          .attempt = r->wft.attempt};
    *started = (weft_event){.event_id = r->wft.started_event_id,
                            .event_time_ms = r->wft.started_time_ms,
                            .event_type = WEFT_EV_WORKFLOW_TASK_STARTED,
                            .scheduled_event_id = r->wft.scheduled_event_id,
                            .identity = r->wft.identity,
                            .request_id = r->wft.started_request_id,
                            .attempt = r->wft.attempt};
}

int sh_wft_poll_reply(sh_ctx *c, const sh_run *r, weft_str polled_queue) {
    WEFT_ASSERT(r->wft.state == SH_WFT_STARTED);
    /* The history read below changes nothing: a replica whose poller is elsewhere skips it
     * (a third of a follower's apply work before; issue 11). */
    if (!c->reply_wanted) return 0;
    weft_poll_wft_resp resp = {
        .task_token = sh_token_make(c, r->run_key, r->wft.scheduled_event_id, r->wft.attempt,
                                    WEFT_TASK_KIND_WORKFLOW),
        .workflow_id = r->workflow_id,
        .run_id = r->run_id,
        .workflow_type = r->workflow_type,
        .task_queue = r->wft.queue,
        .attempt = r->wft.attempt,
        .scheduled_event_id = r->wft.scheduled_event_id,
        .started_event_id = r->wft.started_event_id,
        .previous_started_event_id = r->previous_started_event_id,
    };
    resp.sticky = polled_queue.len > 0 && r->previous_started_event_id > 0 &&
                  weft_str_eq(polled_queue, r->sticky_queue) &&
                  weft_str_eq(r->wft.queue, r->sticky_queue);
    uint64_t first = resp.sticky ? r->previous_started_event_id + 1 : 1;
    weft_event *evs = NULL;
    uint32_t n = 0;
    /* Half a frame for events leaves room for the rest of the response (section 10). */
    int rc = sh_hist_read(c, r->run_key, first, r->next_event_id - 1, UINT32_MAX,
                          c->lim->frame_bytes_max / 2, &evs, &n, &resp.next_event_id);
    if (rc != 0) return rc;
    if (r->wft.transient) {
        weft_event *all = sh_alloc(c, ((size_t)n + 2) * sizeof *all);
        if (n > 0) memcpy(all, evs, (size_t)n * sizeof *all);
        wft_synthetic(r, &all[n], &all[n + 1]);
        evs = all;
        n += 2;
    }
    resp.events = evs;
    resp.events_count = n;
    return sh_reply_body(c, &weft_poll_wft_resp_schema, &resp);
}
