/* commands.c: the commands a worker returns with a workflow task (DESIGN section 7,
 * "Commands"): validation of all of them before any applies (all or nothing), then their
 * effects in order. */
#include <math.h>
#include <string.h>

#include "ops.h"

static bool cmd_is_close(uint32_t type) {
    return type == WEFT_CMD_COMPLETE_WORKFLOW || type == WEFT_CMD_FAIL_WORKFLOW ||
           type == WEFT_CMD_CANCEL_WORKFLOW || type == WEFT_CMD_CONTINUE_AS_NEW;
}

static const char *cmd_name(uint32_t type) {
    return type < WEFT_CMD__COUNT ? weft_command_type_names[type] : "Unknown";
}

/* "commands[3].timer_id" */
static const char *cmd_field(sh_ctx *c, uint32_t i, const char *member) {
    weft_str s = member[0] ? sh_str_fmt(c, "commands[%u].%s", i, member)
                           : sh_str_fmt(c, "commands[%u]", i);
    char *z = sh_alloc(c, s.len + 1);
    weft_str_copy(z, s.len + 1, s);
    return z;
}

static int cmd_bad(sh_ctx *c, uint32_t i, const char *member, const char *what) {
    return sh_reject(c, WEFT_E_INVALID_ARGUMENT, cmd_field(c, i, member), "%s: %s",
                     cmd_field(c, i, member), what);
}

/* ---- Per-command field rules (no state needed) ---- */

static int cmd_need_str(sh_ctx *c, uint32_t i, const weft_command *cmd, weft_str v,
                        const char *member) {
    if (v.len == 0) {
        return sh_reject(c, WEFT_E_INVALID_ARGUMENT, cmd_field(c, i, member),
                         "%s: %s needs %s", cmd_field(c, i, ""), cmd_name(cmd->type), member);
    }
    if (v.len > c->lim->id_bytes_max) {
        return sh_reject(c, WEFT_E_INVALID_ARGUMENT, cmd_field(c, i, member),
                         "%s is %u bytes; the limit is %u bytes (id_bytes_max): use a shorter id",
                         cmd_field(c, i, member), v.len, c->lim->id_bytes_max);
    }
    return 0;
}

/* Every duration a command carries, so that no deadline can wrap (SH_DURATION_MS_MAX). */
static int cmd_check_durations(sh_ctx *c, uint32_t i, const weft_command *cmd) {
    const struct {
        const char *name;
        uint64_t ms;
    } d[] = {
        {"schedule_to_close_timeout_ms", cmd->schedule_to_close_timeout_ms},
        {"schedule_to_start_timeout_ms", cmd->schedule_to_start_timeout_ms},
        {"start_to_close_timeout_ms", cmd->start_to_close_timeout_ms},
        {"heartbeat_timeout_ms", cmd->heartbeat_timeout_ms},
        {"retry_policy.initial_interval_ms", cmd->retry_policy.initial_interval_ms},
        {"retry_policy.maximum_interval_ms", cmd->retry_policy.maximum_interval_ms},
        {"start_to_fire_timeout_ms", cmd->start_to_fire_timeout_ms},
        {"workflow_run_timeout_ms", cmd->workflow_run_timeout_ms},
        {"workflow_task_timeout_ms", cmd->workflow_task_timeout_ms},
    };
    for (size_t k = 0; k < WEFT_ARRAY_LEN(d); k++) {
        int rc = sh_check_duration(c, cmd_field(c, i, d[k].name), d[k].ms);
        if (rc != 0) return rc;
    }
    return 0;
}

static int cmd_check_activity(sh_ctx *c, uint32_t i, const weft_command *cmd) {
    int rc = cmd_need_str(c, i, cmd, cmd->activity_id, "activity_id");
    if (rc == 0) rc = cmd_need_str(c, i, cmd, cmd->activity_type, "activity_type");
    if (rc != 0) return rc;
    if (cmd->schedule_to_close_timeout_ms == 0 && cmd->start_to_close_timeout_ms == 0) {
        return cmd_bad(c, i, "start_to_close_timeout_ms",
                       "ScheduleActivity needs start_to_close_timeout_ms or "
                       "schedule_to_close_timeout_ms, so that a lost worker is noticed");
    }
    weft_retry_policy p = cmd->retry_policy;
    return sh_act_policy_check(c, &p, cmd_field(c, i, "retry_policy"));
}

static int cmd_check_fields(sh_ctx *c, uint32_t i, const weft_command *cmd) {
    int rc = cmd_check_durations(c, i, cmd);
    if (rc != 0) return rc;
    switch (cmd->type) {
    case WEFT_CMD_SCHEDULE_ACTIVITY: return cmd_check_activity(c, i, cmd);
    case WEFT_CMD_REQUEST_CANCEL_ACTIVITY:
        if (cmd->scheduled_event_id == 0) {
            return cmd_bad(c, i, "scheduled_event_id",
                           "RequestCancelActivity needs scheduled_event_id (the id of the "
                           "activity's ActivityTaskScheduled event)");
        }
        return 0;
    case WEFT_CMD_START_TIMER: {
        rc = cmd_need_str(c, i, cmd, cmd->timer_id, "timer_id");
        if (rc == 0 && cmd->start_to_fire_timeout_ms == 0) {
            rc = cmd_bad(c, i, "start_to_fire_timeout_ms",
                         "StartTimer needs start_to_fire_timeout_ms > 0");
        }
        return rc;
    }
    case WEFT_CMD_CANCEL_TIMER: return cmd_need_str(c, i, cmd, cmd->timer_id, "timer_id");
    case WEFT_CMD_RECORD_MARKER: return cmd_need_str(c, i, cmd, cmd->marker_name, "marker_name");
    case WEFT_CMD_COMPLETE_WORKFLOW:
    case WEFT_CMD_FAIL_WORKFLOW:
    case WEFT_CMD_CANCEL_WORKFLOW:
    case WEFT_CMD_CONTINUE_AS_NEW: return 0;
    }
    return cmd_bad(c, i, "type", "the command type is required (ScheduleActivity, StartTimer, ...)");
}

/* ---- Rules that need the run ---- */

typedef struct cmds_ids {
    weft_str *items; /* arena copies */
    uint32_t count;
    uint32_t cap;
} cmds_ids;

static bool ids_has(const cmds_ids *ids, weft_str s) {
    for (uint32_t i = 0; i < ids->count; i++) {
        if (weft_str_eq(ids->items[i], s)) return true;
    }
    return false;
}

static void ids_add(sh_ctx *c, cmds_ids *ids, weft_str s) {
    if (ids->count == ids->cap) {
        uint32_t ncap = ids->cap ? ids->cap * 2 : 16;
        weft_str *n = sh_alloc(c, (size_t)ncap * sizeof *n);
        if (ids->count > 0) memcpy(n, ids->items, (size_t)ids->count * sizeof *n);
        ids->items = n;
        ids->cap = ncap;
    }
    ids->items[ids->count++] = sh_str_dup(c, s);
}

static int collect_act_id(sh_ctx *c, uint64_t sub, const void *rec, void *data) {
    (void)sub;
    ids_add(c, data, ((const sh_act *)rec)->activity_id);
    return 0;
}

static int collect_timer_id(sh_ctx *c, uint64_t sub, const void *rec, void *data) {
    (void)sub;
    ids_add(c, data, ((const sh_utimer *)rec)->timer_id);
    return 0;
}

/* Validation state across the batch. */
typedef struct cmds_check {
    const sh_run *run;
    cmds_ids activity_ids;   /* pending plus scheduled in this batch */
    cmds_ids timer_ids;      /* pending plus started in this batch */
    cmds_ids canceled_timers;
    uint64_t *canceled_acts; /* scheduled ids canceled in this batch */
    uint32_t canceled_acts_count;
    sh_cmds_plan *plan;
} cmds_check;

static int check_schedule_activity(sh_ctx *c, cmds_check *k, uint32_t i, const weft_command *cmd) {
    if (ids_has(&k->activity_ids, cmd->activity_id)) {
        return cmd_bad(c, i, "activity_id",
                       sh_str_fmt(c, "activity id '%.*s' is already used by a pending activity of "
                                     "this run: give each pending activity a unique id",
                                  (int)cmd->activity_id.len, cmd->activity_id.ptr).ptr);
    }
    ids_add(c, &k->activity_ids, cmd->activity_id);
    uint32_t total = k->run->pending_activities + ++k->plan->new_activities;
    uint32_t max = c->lim->pending_activities_max;
    if (total > max) {
        return sh_reject(c, WEFT_E_RESOURCE_EXHAUSTED, cmd_field(c, i, ""),
                         "%s: ScheduleActivity would make %u pending activities; the limit is "
                         "pending_activities_max=%u: wait for some to finish, or ContinueAsNew",
                         cmd_field(c, i, ""), total, max);
    }
    return 0;
}

static int check_cancel_activity(sh_ctx *c, cmds_check *k, uint32_t i, const weft_command *cmd) {
    uint64_t id = cmd->scheduled_event_id;
    for (uint32_t j = 0; j < k->canceled_acts_count; j++) {
        if (k->canceled_acts[j] == id) {
            return cmd_bad(c, i, "scheduled_event_id", "this activity is canceled twice in one task");
        }
    }
    k->canceled_acts[k->canceled_acts_count++] = id;
    sh_act a;
    int rc = sh_act_load(c, k->run->run_key, id, &a);
    if (rc == 0 && a.cancel_requested) {
        return cmd_bad(c, i, "scheduled_event_id", "the activity already has a cancel request");
    }
    if (rc != -WEFT_E_NOT_FOUND) return rc;
    /* Finished while this task ran: its outcome is buffered and reaches the next task. */
    bool buffered = false;
    rc = sh_hist_buffered_has(c, k->run, 0, id, (weft_str){0}, &buffered);
    if (rc != 0 || buffered) return rc;
    return cmd_bad(c, i, "scheduled_event_id",
                   sh_str_fmt(c, "no pending activity was scheduled by event %llu: use the id "
                                 "of a pending activity's ActivityTaskScheduled event",
                              (unsigned long long)id).ptr);
}

static int check_start_timer(sh_ctx *c, cmds_check *k, uint32_t i, const weft_command *cmd) {
    if (ids_has(&k->timer_ids, cmd->timer_id)) {
        return cmd_bad(c, i, "timer_id",
                       sh_str_fmt(c, "timer id '%.*s' is already used by a pending timer of this "
                                     "run: give each pending timer a unique id",
                                  (int)cmd->timer_id.len, cmd->timer_id.ptr).ptr);
    }
    ids_add(c, &k->timer_ids, cmd->timer_id);
    uint32_t total = k->run->pending_timers + ++k->plan->new_timers;
    uint32_t max = c->lim->pending_timers_max;
    if (total > max) {
        return sh_reject(c, WEFT_E_RESOURCE_EXHAUSTED, cmd_field(c, i, ""),
                         "%s: StartTimer would make %u pending timers; the limit is "
                         "pending_timers_max=%u: wait for some to fire, or ContinueAsNew",
                         cmd_field(c, i, ""), total, max);
    }
    return 0;
}

static int check_cancel_timer(sh_ctx *c, cmds_check *k, uint32_t i, const weft_command *cmd) {
    if (ids_has(&k->canceled_timers, cmd->timer_id)) {
        return cmd_bad(c, i, "timer_id", "this timer is canceled twice in one task");
    }
    ids_add(c, &k->canceled_timers, cmd->timer_id);
    if (ids_has(&k->timer_ids, cmd->timer_id)) return 0;
    bool buffered = false;
    int rc = sh_hist_buffered_has(c, k->run, WEFT_EV_TIMER_FIRED, 0, cmd->timer_id, &buffered);
    if (rc != 0 || buffered) return rc;
    return cmd_bad(c, i, "timer_id",
                   sh_str_fmt(c, "no pending timer has id '%.*s': cancel only timers that were "
                                 "started and have not fired",
                              (int)cmd->timer_id.len, cmd->timer_id.ptr).ptr);
}

static int check_state(sh_ctx *c, cmds_check *k, uint32_t i, const weft_command *cmd) {
    switch (cmd->type) {
    case WEFT_CMD_SCHEDULE_ACTIVITY: return check_schedule_activity(c, k, i, cmd);
    case WEFT_CMD_REQUEST_CANCEL_ACTIVITY: return check_cancel_activity(c, k, i, cmd);
    case WEFT_CMD_START_TIMER: return check_start_timer(c, k, i, cmd);
    case WEFT_CMD_CANCEL_TIMER: return check_cancel_timer(c, k, i, cmd);
    default: return 0;
    }
}

/* Loads the ids the batch must not collide with, only when the batch creates any. */
static int check_init(sh_ctx *c, cmds_check *k, const weft_complete_wft_req *req) {
    bool acts = false, timers = false;
    for (uint32_t i = 0; i < req->commands_count; i++) {
        acts |= req->commands[i].type == WEFT_CMD_SCHEDULE_ACTIVITY;
        timers |= req->commands[i].type == WEFT_CMD_START_TIMER ||
                  req->commands[i].type == WEFT_CMD_CANCEL_TIMER;
    }
    k->canceled_acts = sh_alloc(c, ((size_t)req->commands_count + 1) * sizeof(uint64_t));
    int rc = 0;
    if (acts) {
        sh_act a;
        rc = sh_part_scan(c, k->run->run_key, SH_PART_ACTIVITY, &sh_act_schema, &a, collect_act_id,
                          &k->activity_ids);
    }
    if (rc == 0 && timers) {
        sh_utimer t;
        rc = sh_part_scan(c, k->run->run_key, SH_PART_TIMER, &sh_utimer_schema, &t,
                          collect_timer_id, &k->timer_ids);
    }
    return rc;
}

static int check_order(sh_ctx *c, const weft_complete_wft_req *req, sh_cmds_plan *plan) {
    uint32_t n = req->commands_count;
    if (n > c->lim->commands_per_task_max) {
        return sh_reject(c, WEFT_E_RESOURCE_EXHAUSTED, "commands",
                         "commands holds %u commands; the limit is commands_per_task_max=%u: "
                         "split the work over several workflow tasks",
                         n, c->lim->commands_per_task_max);
    }
    for (uint32_t i = 0; i < n; i++) {
        int rc = cmd_check_fields(c, i, &req->commands[i]);
        if (rc != 0) return rc;
        if (cmd_is_close(req->commands[i].type) && i + 1 < n) {
            return sh_reject(c, WEFT_E_INVALID_ARGUMENT, cmd_field(c, i, "type"),
                             "%s: %s closes the workflow, so it must be the last command "
                             "(it is command %u of %u)",
                             cmd_field(c, i, ""), cmd_name(req->commands[i].type), i + 1, n);
        }
    }
    plan->has_close = n > 0 && cmd_is_close(req->commands[n - 1].type);
    return 0;
}

int sh_cmds_validate(sh_ctx *c, const sh_run *r, const weft_complete_wft_req *req,
                     sh_cmds_plan *plan) {
    memset(plan, 0, sizeof *plan);
    int rc = check_order(c, req, plan);
    if (rc != 0) return rc;
    uint32_t n = req->commands_count;
    bool grows = n > (plan->has_close ? 1u : 0u);
    if (grows && sh_hist_full(c, r)) return sh_hist_reject_full(c, r, "commands");
    cmds_check k = {.run = r, .plan = plan};
    rc = check_init(c, &k, req);
    for (uint32_t i = 0; rc == 0 && i < n; i++) rc = check_state(c, &k, i, &req->commands[i]);
    return rc;
}

/* ---- Effects ---- */

static int apply_marker(sh_ctx *c, sh_run *r, const weft_command *cmd) {
    weft_event ev = {.event_type = WEFT_EV_MARKER_RECORDED,
                     .marker_name = cmd->marker_name,
                     .details = cmd->details};
    return sh_hist_write(c, r, &ev);
}

static int apply_cancel_activity(sh_ctx *c, sh_run *r, const weft_command *cmd, bool *need) {
    sh_act a;
    int rc = sh_act_load(c, r->run_key, cmd->scheduled_event_id, &a);
    /* Not pending: it finished while the task ran (validated); its outcome says enough. */
    if (rc == -WEFT_E_NOT_FOUND) return 0;
    if (rc != 0) return rc;
    return sh_act_request_cancel(c, r, cmd->scheduled_event_id, need);
}

static int apply_close(sh_ctx *c, sh_run *r, const weft_command *cmd) {
    weft_event ev = {0};
    uint32_t status = 0;
    switch (cmd->type) {
    case WEFT_CMD_COMPLETE_WORKFLOW:
        ev.event_type = WEFT_EV_WORKFLOW_EXECUTION_COMPLETED;
        ev.result = cmd->result;
        status = WEFT_STATUS_COMPLETED;
        break;
    case WEFT_CMD_FAIL_WORKFLOW:
        ev.event_type = WEFT_EV_WORKFLOW_EXECUTION_FAILED;
        ev.failure = cmd->failure;
        status = WEFT_STATUS_FAILED;
        break;
    default:
        WEFT_ASSERT(cmd->type == WEFT_CMD_CANCEL_WORKFLOW);
        ev.event_type = WEFT_EV_WORKFLOW_EXECUTION_CANCELED;
        ev.details = cmd->details;
        status = WEFT_STATUS_CANCELED;
        break;
    }
    return sh_run_close(c, r, status, &ev);
}

/* ContinueAsNew: closes this run and starts its successor with a derived run id; the chain
 * keeps first_run_id and the execution deadline (section 7). */
static int apply_continue(sh_ctx *c, sh_run *r, const weft_command *cmd) {
    sh_new_run p = {
        .namespace_ = r->namespace_,
        .workflow_id = r->workflow_id,
        .run_id = sh_run_id_derive(c, r->run_id, r->next_event_id),
        .workflow_type = cmd->workflow_type.len > 0 ? cmd->workflow_type : r->workflow_type,
        .task_queue = cmd->task_queue.len > 0 ? cmd->task_queue : r->task_queue,
        .input = cmd->input,
        .run_timeout_ms = cmd->workflow_run_timeout_ms ? cmd->workflow_run_timeout_ms
                                                       : r->run_timeout_ms,
        .execution_timeout_ms = r->execution_timeout_ms,
        .execution_expire_ms = r->execution_expire_ms,
        .task_timeout_ms = cmd->workflow_task_timeout_ms ? cmd->workflow_task_timeout_ms
                                                         : r->task_timeout_ms,
        .first_run_id = r->first_run_id,
        .continued_from_run_id = r->run_id,
    };
    weft_event ev = {.event_type = WEFT_EV_WORKFLOW_EXECUTION_CONTINUED_AS_NEW,
                     .continued_run_id = p.run_id,
                     .workflow_type = p.workflow_type,
                     .task_queue = p.task_queue,
                     .input = p.input,
                     .workflow_run_timeout_ms = p.run_timeout_ms,
                     .workflow_task_timeout_ms = p.task_timeout_ms};
    int rc = sh_run_close(c, r, WEFT_STATUS_CONTINUED, &ev);
    if (rc != 0) return rc;
    sh_run next;
    rc = sh_run_create(c, &p, &next);
    if (rc == 0) rc = sh_wft_schedule(c, &next);
    if (rc == 0) rc = sh_run_store(c, &next);
    return rc;
}

static int apply_one(sh_ctx *c, sh_run *r, const weft_command *cmd, uint64_t completed_id,
                     bool *need) {
    switch (cmd->type) {
    case WEFT_CMD_SCHEDULE_ACTIVITY: return sh_act_schedule(c, r, cmd, completed_id);
    case WEFT_CMD_REQUEST_CANCEL_ACTIVITY: return apply_cancel_activity(c, r, cmd, need);
    case WEFT_CMD_START_TIMER: return sh_utimer_start(c, r, cmd);
    case WEFT_CMD_CANCEL_TIMER: return sh_utimer_cancel(c, r, cmd->timer_id);
    case WEFT_CMD_RECORD_MARKER: return apply_marker(c, r, cmd);
    case WEFT_CMD_CONTINUE_AS_NEW: return apply_continue(c, r, cmd);
    default: return apply_close(c, r, cmd);
    }
}

int sh_cmds_apply(sh_ctx *c, sh_run *r, const weft_complete_wft_req *req, uint64_t completed_id,
                  bool *need_task) {
    WEFT_ASSERT(r->wft.state == SH_WFT_NONE && sh_run_is_open(r));
    for (uint32_t i = 0; i < req->commands_count; i++) {
        WEFT_ASSERT(sh_run_is_open(r)); /* a close command is last (validated) */
        int rc = apply_one(c, r, &req->commands[i], completed_id, need_task);
        if (rc != 0) return rc;
    }
    return 0;
}
