/* activity.c: activities (DESIGN section 7, "Activities"): scheduling, the started update
 * (whose apply reply is the poll response), completion, failure with retries, heartbeats, cancellation and the four timeouts.
 * Attempts write no events; the final outcome writes ActivityTaskStarted (with the attempt)
 * followed by Completed, Failed, TimedOut or Canceled. */
#include <math.h>
#include <string.h>

#include "ops.h"
#include "retry.h"

/* ---- Policy ---- */

int sh_act_policy_check(sh_ctx *c, weft_retry_policy *p, const char *field) {
    double k = p->backoff_coefficient;
    if (isnan(k) || isinf(k) || (k != 0.0 && k < 1.0)) {
        return sh_reject(c, WEFT_E_INVALID_ARGUMENT, field,
                         "%s.backoff_coefficient is %g; it must be at least 1 (or 0 for the "
                         "default 2)",
                         field, k);
    }
    if (p->maximum_interval_ms != 0 && p->maximum_interval_ms < p->initial_interval_ms) {
        return sh_reject(c, WEFT_E_INVALID_ARGUMENT, field,
                         "%s.maximum_interval_ms (%llu) is below initial_interval_ms (%llu): "
                         "raise it, or leave it 0 for 100 x initial",
                         field, (unsigned long long)p->maximum_interval_ms,
                         (unsigned long long)p->initial_interval_ms);
    }
    weft_retry_policy_defaults(p);
    return 0;
}

/* ---- Scheduling ---- */

/* Puts the current attempt on its queue with its schedule-to-start deadline. */
static int act_enqueue(sh_ctx *c, sh_run *r, sh_act *a) {
    sh_act_set_state(c, r->run_key, a, SH_ACT_SCHEDULED);
    a->queued_time_ms = c->now_ms;
    int rc = sh_ready_add(c, r, a->task_queue, WEFT_TASK_KIND_ACTIVITY,
                          a->scheduled_event_id, a->attempt, &a->ready_seq);
    if (rc != 0 || a->schedule_to_start_timeout_ms == 0) return rc;
    return sh_timer_add(c, c->now_ms + a->schedule_to_start_timeout_ms, SH_TK_ACT_SCHED_TO_START,
                        r->run_key, a->scheduled_event_id, a->attempt, (weft_bytes){0});
}

/* Temporal's effective timeouts: start-to-close defaults to schedule-to-close and never
 * exceeds it; a heartbeat timeout longer than start-to-close would never fire first. */
static void act_timeouts(const weft_command *cmd, sh_act *a) {
    a->schedule_to_close_timeout_ms = cmd->schedule_to_close_timeout_ms;
    a->schedule_to_start_timeout_ms = cmd->schedule_to_start_timeout_ms;
    a->start_to_close_timeout_ms = cmd->start_to_close_timeout_ms;
    a->heartbeat_timeout_ms = cmd->heartbeat_timeout_ms;
    uint64_t s2c = a->schedule_to_close_timeout_ms;
    if (a->start_to_close_timeout_ms == 0 || (s2c > 0 && a->start_to_close_timeout_ms > s2c)) {
        a->start_to_close_timeout_ms = s2c;
    }
    if (s2c > 0 && a->schedule_to_start_timeout_ms > s2c) a->schedule_to_start_timeout_ms = s2c;
    if (a->heartbeat_timeout_ms > a->start_to_close_timeout_ms) {
        a->heartbeat_timeout_ms = a->start_to_close_timeout_ms;
    }
}

int sh_act_schedule(sh_ctx *c, sh_run *r, const weft_command *cmd, uint64_t completed_id) {
    (void)completed_id;
    sh_act a = {.activity_id = cmd->activity_id,
                .activity_type = cmd->activity_type,
                .task_queue = cmd->task_queue.len > 0 ? cmd->task_queue : r->task_queue,
                .input = cmd->input,
                .attempt = 1,
                .retry_policy = cmd->retry_policy,
                .scheduled_time_ms = c->now_ms};
    int rc = sh_act_policy_check(c, &a.retry_policy, "retry_policy");
    WEFT_ASSERT(rc == 0); /* validated with the batch */
    act_timeouts(cmd, &a);
    weft_event ev = {.event_type = WEFT_EV_ACTIVITY_TASK_SCHEDULED,
                     .activity_id = a.activity_id,
                     .activity_type = a.activity_type,
                     .task_queue = a.task_queue,
                     .input = a.input,
                     .schedule_to_close_timeout_ms = a.schedule_to_close_timeout_ms,
                     .schedule_to_start_timeout_ms = a.schedule_to_start_timeout_ms,
                     .start_to_close_timeout_ms = a.start_to_close_timeout_ms,
                     .heartbeat_timeout_ms = a.heartbeat_timeout_ms,
                     .retry_policy = a.retry_policy};
    rc = sh_hist_write(c, r, &ev);
    if (rc != 0) return rc;
    a.scheduled_event_id = ev.event_id;
    rc = act_enqueue(c, r, &a);
    if (rc == 0 && a.schedule_to_close_timeout_ms > 0) {
        rc = sh_timer_add(c, c->now_ms + a.schedule_to_close_timeout_ms, SH_TK_ACT_SCHED_TO_CLOSE,
                          r->run_key, a.scheduled_event_id, 0, (weft_bytes){0});
    }
    if (rc == 0) rc = sh_act_store(c, r->run_key, &a);
    if (rc != 0) return rc;
    r->pending_activities++;
    return 0;
}

/* ---- Final outcomes ---- */

/* Writes [ActivityTaskStarted,] outcome; deletes the activity and asks for a workflow task
 * (section 7: "Every final outcome schedules a workflow task if none pending"). */
static int act_finish(sh_ctx *c, sh_run *r, sh_act *a, weft_event *outcome, bool started) {
    uint64_t started_id = 0;
    int rc = 0;
    if (a->state == SH_ACT_SCHEDULED) {
        rc = sh_ready_del(c, r, a->task_queue, WEFT_TASK_KIND_ACTIVITY, a->ready_seq);
    }
    if (rc == 0 && started) {
        weft_event ev = {.event_type = WEFT_EV_ACTIVITY_TASK_STARTED,
                         .event_time_ms = a->started_time_ms,
                         .scheduled_event_id = a->scheduled_event_id,
                         .attempt = a->attempt,
                         .identity = a->identity,
                         .failure = a->last_failure};
        rc = sh_hist_add(c, r, &ev, &started_id);
    }
    if (rc != 0) return rc;
    outcome->scheduled_event_id = a->scheduled_event_id;
    outcome->started_event_id = started_id;
    outcome->attempt = a->attempt;
    rc = sh_hist_add(c, r, outcome, NULL);
    if (rc == 0) rc = sh_act_delete(c, r->run_key, a->scheduled_event_id);
    if (rc != 0) return rc;
    WEFT_ASSERT(r->pending_activities > 0);
    r->pending_activities--;
    WEFT_LOGF(WEFT_LOG_DEBUG, c->s->shard_id, "run %llu activity %llu attempt %u: %s -> closed (%s)",
              (unsigned long long)r->run_key, (unsigned long long)a->scheduled_event_id,
              a->attempt, sh_act_state_name(a->state), weft_event_type_names[outcome->event_type]);
    rc = sh_wft_schedule(c, r);
    return rc != 0 ? rc : sh_run_store(c, r);
}

/* The attempt failed and the policy allows another: wait, then schedule it again. */
static int act_backoff(sh_ctx *c, sh_run *r, sh_act *a, const weft_failure *f, uint64_t delay) {
    int rc = 0;
    if (a->state == SH_ACT_SCHEDULED) {
        rc = sh_ready_del(c, r, a->task_queue, WEFT_TASK_KIND_ACTIVITY, a->ready_seq);
        sh_act_set_state(c, r->run_key, a, SH_ACT_STARTED); /* its Started was lost */
    }
    if (rc != 0) return rc;
    a->last_failure = *f;
    sh_act_set_state(c, r->run_key, a, SH_ACT_BACKOFF);
    a->attempt++;
    a->ready_seq = 0;
    a->next_attempt_time_ms = c->now_ms + delay;
    rc = sh_timer_add(c, a->next_attempt_time_ms, SH_TK_ACT_RETRY, r->run_key,
                      a->scheduled_event_id, a->attempt, (weft_bytes){0});
    return rc != 0 ? rc : sh_act_store(c, r->run_key, a);
}

static uint64_t act_expire_ms(const sh_act *a) {
    return a->schedule_to_close_timeout_ms > 0
               ? a->scheduled_time_ms + a->schedule_to_close_timeout_ms
               : 0;
}

/* A failed or timed-out attempt: retry per policy, or record the final outcome `final`. */
static int act_attempt_failed(sh_ctx *c, sh_run *r, sh_act *a, const weft_failure *f,
                              weft_event *final) {
    uint64_t delay = 0;
    weft_retry_verdict v = weft_retry_next(&a->retry_policy, a->attempt, f, c->now_ms,
                                           act_expire_ms(a), &delay);
    WEFT_LOGF(WEFT_LOG_DEBUG, c->s->shard_id, "run %llu activity %llu attempt %u failed: retry %s",
              (unsigned long long)r->run_key, (unsigned long long)a->scheduled_event_id,
              a->attempt, weft_retry_verdict_name(v));
    if (v == WEFT_RETRY_AGAIN && !a->cancel_requested) return act_backoff(c, r, a, f, delay);
    return act_finish(c, r, a, final, true);
}

/* ---- Tokens ---- */

static int act_stale(sh_ctx *c, const weft_task_token *t, const char *why) {
    return sh_reject(c, WEFT_E_NOT_FOUND, "task_token",
                     "activity task (scheduled event %llu, attempt %u) is no longer current: %s; "
                     "its result is not recorded (each activity records one outcome)",
                     (unsigned long long)t->scheduled_event_id, t->attempt, why);
}

/* Loads the run and activity of a token whose attempt must be current; `scheduled_ok` also
 * accepts the attempt while its Started has not applied. weftd hands a task out only after its
 * Started applied, but a node of an earlier version pipelined the two, and its Started may have
 * been lost with its leader: the worker did run the current attempt, so its result counts. */
static int act_load_current(sh_ctx *c, const weft_task_token *t, bool scheduled_ok, sh_run *r,
                            sh_act *a) {
    int rc = sh_run_load(c, t->run_key, r);
    if (rc == -WEFT_E_NOT_FOUND) return act_stale(c, t, "the run no longer exists");
    if (rc != 0) return rc;
    if (!sh_run_is_open(r)) return act_stale(c, t, "the run is closed");
    rc = sh_act_load(c, t->run_key, t->scheduled_event_id, a);
    if (rc == -WEFT_E_NOT_FOUND) {
        return act_stale(c, t, "the activity already completed, failed, timed out or was canceled");
    }
    if (rc != 0) return rc;
    bool state_ok = a->state == SH_ACT_STARTED || (scheduled_ok && a->state == SH_ACT_SCHEDULED);
    if (a->attempt != t->attempt || !state_ok) {
        return act_stale(c, t, sh_str_fmt(c, "the current attempt is %u (%s)", a->attempt,
                                          sh_act_state_name(a->state)).ptr);
    }
    return 0;
}

static int act_load_req(sh_ctx *c, const weft_shard_cmd *cmd, weft_activity_req *req,
                        weft_task_token *t) {
    int rc = sh_decode(c, &weft_activity_req_schema, cmd->body.ptr, cmd->body.len, false, false,
                       req);
    if (rc != 0) return rc;
    return sh_token_parse(c, req->task_token, WEFT_TASK_KIND_ACTIVITY, t);
}

/* ---- Commands ---- */

/* The PollActivityTask response for an attempt whose Started has just applied: the apply reply
 * of ACT_STARTED, which the leader hands to the poller, so that what the worker is told is
 * what committed (section 8: a task leaves the node only after its Started entry has
 * committed). */
static int act_poll_reply(sh_ctx *c, const sh_run *r, const sh_act *a, weft_bytes token) {
    WEFT_ASSERT(a->state == SH_ACT_STARTED && token.len > 0);
    if (!c->reply_wanted) return 0; /* a follower: the poller waits on the leader */
    weft_poll_activity_resp p = {.task_token = token,
                                 .workflow_id = r->workflow_id,
                                 .run_id = r->run_id,
                                 .workflow_type = r->workflow_type,
                                 .activity_id = a->activity_id,
                                 .activity_type = a->activity_type,
                                 .input = a->input,
                                 .attempt = a->attempt,
                                 .scheduled_event_id = a->scheduled_event_id,
                                 .scheduled_time_ms = a->scheduled_time_ms,
                                 .started_time_ms = a->started_time_ms,
                                 .schedule_to_close_timeout_ms = a->schedule_to_close_timeout_ms,
                                 .start_to_close_timeout_ms = a->start_to_close_timeout_ms,
                                 .heartbeat_timeout_ms = a->heartbeat_timeout_ms,
                                 .heartbeat_details = a->heartbeat_details};
    return sh_reply_body(c, &weft_poll_activity_resp_schema, &p);
}

int sh_act_on_started(sh_ctx *c, const weft_shard_cmd *cmd) {
    weft_task_token t;
    int rc = sh_token_parse(c, cmd->task_token, WEFT_TASK_KIND_ACTIVITY, &t);
    sh_run r;
    sh_act a;
    if (rc == 0) rc = act_load_current(c, &t, true, &r, &a);
    if (rc == 0 && a.state != SH_ACT_SCHEDULED) rc = act_stale(c, &t, "it was started already");
    if (rc != 0) return rc;
    rc = sh_ready_del(c, &r, a.task_queue, WEFT_TASK_KIND_ACTIVITY, a.ready_seq);
    if (rc != 0) return rc;
    sh_act_set_state(c, r.run_key, &a, SH_ACT_STARTED);
    a.ready_seq = 0;
    a.started_time_ms = c->now_ms;
    a.identity = cmd->identity;
    a.last_heartbeat_time_ms = 0;
    if (a.start_to_close_timeout_ms > 0) {
        rc = sh_timer_add(c, c->now_ms + a.start_to_close_timeout_ms, SH_TK_ACT_START_TO_CLOSE,
                          r.run_key, a.scheduled_event_id, a.attempt, (weft_bytes){0});
    }
    if (rc == 0 && a.heartbeat_timeout_ms > 0) {
        rc = sh_timer_add(c, c->now_ms + a.heartbeat_timeout_ms, SH_TK_ACT_HEARTBEAT, r.run_key,
                          a.scheduled_event_id, a.attempt, (weft_bytes){0});
    }
    if (rc == 0) rc = sh_act_store(c, r.run_key, &a);
    if (rc != 0) return rc;
    return act_poll_reply(c, &r, &a, cmd->task_token);
}

/* A result for an attempt whose Started never applied still counts: the attempt is current,
 * so the worker did run it; the Started event gets the identity from the request. */
static void act_adopt(sh_ctx *c, sh_act *a, const weft_activity_req *req) {
    if (a->state == SH_ACT_SCHEDULED) {
        a->started_time_ms = c->now_ms;
        a->identity = req->identity;
    }
}

int sh_act_on_complete(sh_ctx *c, const weft_shard_cmd *cmd) {
    weft_activity_req req;
    weft_task_token t;
    sh_run r;
    sh_act a;
    int rc = act_load_req(c, cmd, &req, &t);
    if (rc == 0) rc = act_load_current(c, &t, true, &r, &a);
    if (rc != 0) return rc;
    act_adopt(c, &a, &req);
    a.last_failure = (weft_failure){0};
    weft_event ev = {.event_type = WEFT_EV_ACTIVITY_TASK_COMPLETED,
                     .result = req.result,
                     .identity = req.identity};
    rc = act_finish(c, &r, &a, &ev, true);
    return rc != 0 ? rc : sh_reply_empty(c);
}

int sh_act_on_fail(sh_ctx *c, const weft_shard_cmd *cmd) {
    weft_activity_req req;
    weft_task_token t;
    sh_run r;
    sh_act a;
    int rc = act_load_req(c, cmd, &req, &t);
    if (rc == 0) rc = act_load_current(c, &t, true, &r, &a);
    if (rc != 0) return rc;
    act_adopt(c, &a, &req);
    weft_event ev = {.identity = req.identity};
    if (a.cancel_requested) {
        /* The workflow asked for cancellation and the worker gave up: that is the outcome. */
        ev.event_type = WEFT_EV_ACTIVITY_TASK_CANCELED;
        ev.details = req.failure.details;
        rc = act_finish(c, &r, &a, &ev, true);
    } else {
        ev.event_type = WEFT_EV_ACTIVITY_TASK_FAILED;
        ev.failure = req.failure;
        rc = act_attempt_failed(c, &r, &a, &req.failure, &ev);
    }
    return rc != 0 ? rc : sh_reply_empty(c);
}

int sh_act_on_heartbeat(sh_ctx *c, const weft_shard_cmd *cmd) {
    weft_activity_req req;
    weft_task_token t;
    sh_run r;
    sh_act a;
    int rc = act_load_req(c, cmd, &req, &t);
    if (rc == 0) rc = act_load_current(c, &t, false, &r, &a);
    if (rc != 0) return rc;
    a.last_heartbeat_time_ms = c->now_ms;
    a.heartbeat_details = req.details;
    rc = sh_act_store(c, r.run_key, &a);
    if (rc != 0) return rc;
    weft_heartbeat_resp resp = {.cancel_requested = a.cancel_requested};
    return sh_reply_body(c, &weft_heartbeat_resp_schema, &resp);
}

int sh_act_on_requeue(sh_ctx *c, sh_run *r, const weft_task_token *t) {
    sh_act a;
    int rc = sh_act_load(c, r->run_key, t->scheduled_event_id, &a);
    if (rc == -WEFT_E_NOT_FOUND || (rc == 0 && (a.state != SH_ACT_STARTED || a.attempt != t->attempt))) {
        return act_stale(c, t, "it is not started with this token");
    }
    if (rc != 0) return rc;
    /* No event was written for the start, so the same attempt simply goes back. */
    rc = act_enqueue(c, r, &a);
    if (rc == 0) rc = sh_act_store(c, r->run_key, &a);
    return rc != 0 ? rc : sh_reply_empty(c);
}

/* ---- Cancellation ---- */

int sh_act_request_cancel(sh_ctx *c, sh_run *r, uint64_t scheduled_event_id, bool *need_task) {
    sh_act a;
    int rc = sh_act_load(c, r->run_key, scheduled_event_id, &a);
    WEFT_ASSERT(rc != -WEFT_E_NOT_FOUND); /* validated */
    if (rc != 0) return rc;
    weft_event req = {.event_type = WEFT_EV_ACTIVITY_TASK_CANCEL_REQUESTED,
                      .scheduled_event_id = scheduled_event_id};
    rc = sh_hist_write(c, r, &req);
    if (rc != 0) return rc;
    if (a.state == SH_ACT_STARTED) {
        /* The worker learns it from its next heartbeat and decides. */
        a.cancel_requested = true;
        return sh_act_store(c, r->run_key, &a);
    }
    if (a.state == SH_ACT_SCHEDULED) {
        rc = sh_ready_del(c, r, a.task_queue, WEFT_TASK_KIND_ACTIVITY, a.ready_seq);
        if (rc != 0) return rc;
    }
    weft_event done = {.event_type = WEFT_EV_ACTIVITY_TASK_CANCELED,
                       .scheduled_event_id = scheduled_event_id,
                       .attempt = a.attempt};
    rc = sh_hist_write(c, r, &done);
    if (rc == 0) rc = sh_act_delete(c, r->run_key, scheduled_event_id);
    if (rc != 0) return rc;
    WEFT_ASSERT(r->pending_activities > 0);
    r->pending_activities--;
    *need_task = true;
    return 0;
}

/* ---- Timers ---- */

static weft_failure act_timeout_failure(sh_ctx *c, const sh_act *a, uint32_t type, uint64_t ms) {
    const char *name = weft_timeout_type_names[type];
    return (weft_failure){
        .type = sh_str_fmt(c, "Timeout:%s", name),
        .message = sh_str_fmt(c, "activity attempt %u exceeded its %s timeout of %llu ms",
                              a->attempt, name, (unsigned long long)ms),
    };
}

static int act_timed_out(sh_ctx *c, sh_run *r, sh_act *a, uint32_t type, uint64_t ms) {
    weft_failure f = act_timeout_failure(c, a, type, ms);
    weft_event ev = {.event_type = WEFT_EV_ACTIVITY_TASK_TIMED_OUT,
                     .timeout_type = type,
                     .failure = a->last_failure.type.len > 0 || a->last_failure.message.len > 0
                                    ? a->last_failure
                                    : f,
                     .details = a->heartbeat_details};
    bool retryable = type == WEFT_TIMEOUT_START_TO_CLOSE || type == WEFT_TIMEOUT_HEARTBEAT;
    if (retryable) return act_attempt_failed(c, r, a, &f, &ev);
    return act_finish(c, r, a, &ev, a->state == SH_ACT_STARTED);
}

/* One heartbeat timer per attempt: when it fires early relative to the last heartbeat it is
 * armed again for the real deadline (section 9). */
static int act_heartbeat_due(sh_ctx *c, sh_run *r, sh_act *a) {
    uint64_t last = WEFT_MAX(a->last_heartbeat_time_ms, a->started_time_ms);
    uint64_t deadline = last + a->heartbeat_timeout_ms;
    if (deadline > c->now_ms) {
        return sh_timer_add(c, deadline, SH_TK_ACT_HEARTBEAT, r->run_key, a->scheduled_event_id,
                            a->attempt, (weft_bytes){0});
    }
    return act_timed_out(c, r, a, WEFT_TIMEOUT_HEARTBEAT, a->heartbeat_timeout_ms);
}

static int act_retry_due(sh_ctx *c, sh_run *r, sh_act *a) {
    int rc = act_enqueue(c, r, a);
    a->next_attempt_time_ms = 0;
    return rc != 0 ? rc : sh_act_store(c, r->run_key, a);
}

/* A requeued attempt (TASK_REQUEUE, section 8) is queued and started again under the same
 * token, so a row armed for its earlier queueing or start matches it too. Only the row of the
 * latest one may time it out (G6: never early); the earlier row is stale. */
static bool act_due(const sh_ctx *c, uint64_t since_ms, uint64_t timeout_ms) {
    return c->now_ms - WEFT_MIN(since_ms, c->now_ms) >= timeout_ms;
}

int sh_act_on_timer(sh_ctx *c, sh_run *r, const sh_timer_row *row) {
    sh_act a;
    int rc = sh_act_load(c, r->run_key, row->ref, &a);
    if (rc == -WEFT_E_NOT_FOUND) return 0; /* finished: a stale row (section 9) */
    if (rc != 0) return rc;
    bool same = a.attempt == row->attempt;
    switch (row->kind) {
    case SH_TK_ACT_SCHED_TO_START:
        if (!same || a.state != SH_ACT_SCHEDULED) return 0;
        if (!act_due(c, a.queued_time_ms, a.schedule_to_start_timeout_ms)) return 0;
        return act_timed_out(c, r, &a, WEFT_TIMEOUT_SCHEDULE_TO_START, a.schedule_to_start_timeout_ms);
    case SH_TK_ACT_START_TO_CLOSE:
        if (!same || a.state != SH_ACT_STARTED) return 0;
        if (!act_due(c, a.started_time_ms, a.start_to_close_timeout_ms)) return 0;
        return act_timed_out(c, r, &a, WEFT_TIMEOUT_START_TO_CLOSE, a.start_to_close_timeout_ms);
    case SH_TK_ACT_HEARTBEAT:
        if (!same || a.state != SH_ACT_STARTED) return 0;
        return act_heartbeat_due(c, r, &a);
    case SH_TK_ACT_SCHED_TO_CLOSE:
        return act_timed_out(c, r, &a, WEFT_TIMEOUT_SCHEDULE_TO_CLOSE, a.schedule_to_close_timeout_ms);
    case SH_TK_ACT_RETRY:
        if (!same || a.state != SH_ACT_BACKOFF) return 0;
        return act_retry_due(c, r, &a);
    }
    WEFT_ASSERT(false && "not an activity timer");
    return 0;
}

/* ---- Closing runs ---- */

typedef struct act_drop {
    uint64_t sched;
    uint32_t state;
    weft_str queue;
    uint64_t ready_seq;
} act_drop;

typedef struct act_drops {
    act_drop *items;
    uint32_t count;
    uint32_t cap;
} act_drops;

static int act_collect(sh_ctx *c, uint64_t sub, const void *rec, void *data) {
    const sh_act *a = rec;
    act_drops *d = data;
    if (d->count == d->cap) {
        uint32_t ncap = d->cap ? d->cap * 2 : 16;
        act_drop *n = sh_alloc(c, (size_t)ncap * sizeof *n);
        if (d->count > 0) memcpy(n, d->items, (size_t)d->count * sizeof *n);
        d->items = n;
        d->cap = ncap;
    }
    d->items[d->count++] = (act_drop){.sched = sub,
                                      .state = a->state,
                                      .queue = sh_str_dup(c, a->task_queue),
                                      .ready_seq = a->ready_seq};
    return 0;
}

int sh_act_drop_all(sh_ctx *c, sh_run *r) {
    act_drops d = {0};
    sh_act buf;
    int rc = sh_part_scan(c, r->run_key, SH_PART_ACTIVITY, &sh_act_schema, &buf, act_collect, &d);
    for (uint32_t i = 0; rc == 0 && i < d.count; i++) {
        if (d.items[i].state == SH_ACT_SCHEDULED) {
            rc = sh_ready_del(c, r, d.items[i].queue, WEFT_TASK_KIND_ACTIVITY, d.items[i].ready_seq);
        }
        if (rc == 0) rc = sh_act_delete(c, r->run_key, d.items[i].sched);
    }
    if (rc == 0) r->pending_activities = 0;
    return rc;
}
