/* ops.h: the functions shards/ files call across each other, grouped by the file that owns
 * each concept (DESIGN section 7). Private to shards/.
 *
 * Conventions: every function returns 0 or -WEFT_E_*. A negative code other than
 * -WEFT_E_INTERNAL is a rejection (c->err says why) and is only returned before the command
 * wrote anything; -WEFT_E_INTERNAL is a storage failure that stops the replica. */
#ifndef WEFT_SHARDS_OPS_H
#define WEFT_SHARDS_OPS_H

#include "state.h"

/* ---- cmd.c: the command table ---- */
/* Decodes one encoded weft_shard_cmd and applies it (after its limits stamp, if any). */
int sh_cmd_apply(sh_ctx *c, weft_bytes raw);
/* Encodes a command the leader proposes, stamped with its configured limits when they differ
 * from the applied ones (limits.c). *out is malloc'd and the caller's on success. Returns 0 or
 * -WEFT_E_RESOURCE_EXHAUSTED (out of memory). */
int sh_cmd_encode(const weft_shard *s, const weft_shard_cmd *sc, uint8_t **out, size_t *len);

/* ---- limits.c: the limits apply enforces, carried by the log (G2) ---- */
extern const weft_schema sh_limits_schema;
/* True when `l` is a stamp (an absent one decodes as all zero). */
bool sh_limits_stamped(const weft_limits *l);
/* Field by field (the struct has padding). */
bool sh_limits_equal(const weft_limits *a, const weft_limits *b);
/* Loads s->applied_limits from meta, or the defaults when no stamp was ever applied. Returns 0
 * or a storage error (-WEFT_E_INTERNAL for a record that does not decode). */
int sh_limits_load(weft_shard *s, weft_txn *t, weft_err *err);
/* The stamp the leader puts on a command it builds now: its configured limits when they differ
 * from the applied ones, else NULL. */
const weft_limits *sh_limits_stamp_for(const weft_shard *s);
/* Apply: a command carried `stamp`; from this command on the entry enforces it, and it is
 * stored in meta. No-op when absent or unchanged. 0 or -WEFT_E_INTERNAL. */
int sh_limits_on_stamp(sh_ctx *c, const weft_limits *stamp);

/* ---- token.c ---- */
/* Decodes a command's task token and checks its kind and shard; rejects with a message that
 * tells the worker to drop the task. */
int sh_token_parse(sh_ctx *c, weft_bytes token, uint32_t kind, weft_task_token *out);
/* Encodes the token of a task into the arena. */
weft_bytes sh_token_make(sh_ctx *c, uint64_t run_key, uint64_t scheduled_event_id,
                         uint32_t attempt, uint32_t kind);

/* ---- history.c: appending, buffering and reading events (G2) ---- */
/* Appends an event the run's own task produced (workflow task, command and closing events):
 * assigns the next id and the shard clock. */
int sh_hist_write(sh_ctx *c, sh_run *r, weft_event *ev);
/* Appends an event from outside (signal, cancel request, activity outcome, timer fired).
 * While a workflow task is started it is buffered, so that the worker's view stays a prefix
 * of history, and flushed after the task ends (Temporal's buffered events). *event_id is 0
 * when buffered. */
int sh_hist_add(sh_ctx *c, sh_run *r, weft_event *ev, uint64_t *event_id);
/* Writes the buffered events; *flushed counts them (may be NULL). */
int sh_hist_flush(sh_ctx *c, sh_run *r, uint32_t *flushed);
/* True when a buffered event of `type` refers to `scheduled_event_id` (activity outcome) or
 * `timer_id` (TimerFired). */
int sh_hist_buffered_has(sh_ctx *c, const sh_run *r, uint32_t type, uint64_t scheduled_event_id,
                         weft_str timer_id, bool *found);
/* Reads events [first, last] (inclusive), at most max_events and about max_bytes of encoded
 * events (at least one), into an arena array. *next_id is the first id not returned, or 0 when
 * `last` was reached. */
int sh_hist_read(sh_ctx *c, uint64_t run_key, uint64_t first, uint64_t last, uint32_t max_events,
                 size_t max_bytes, weft_event **events, uint32_t *count, uint64_t *next_id);
/* Loads one event; -WEFT_E_NOT_FOUND if absent. */
int sh_hist_get(sh_ctx *c, uint64_t run_key, uint64_t event_id, weft_event *out);
/* True when the history limits leave no room (section 7, "Limits"). */
bool sh_hist_full(sh_ctx *c, const sh_run *r);
int sh_hist_reject_full(sh_ctx *c, const sh_run *r, const char *field);

/* ---- wftask.c: the workflow task ---- */
/* Schedules a workflow task when the run is open and none is pending (scheduled, started or
 * in backoff). */
int sh_wft_schedule(sh_ctx *c, sh_run *r);
int sh_wft_on_started(sh_ctx *c, const weft_shard_cmd *cmd);
int sh_wft_on_complete(sh_ctx *c, const weft_shard_cmd *cmd);
int sh_wft_on_fail(sh_ctx *c, const weft_shard_cmd *cmd);
int sh_wft_on_requeue(sh_ctx *c, sh_run *r, const weft_task_token *t);
int sh_wft_on_timer(sh_ctx *c, sh_run *r, const sh_timer_row *row);
/* Drops the pending task of a run that is being closed without a worker (terminate, timeout):
 * deletes its ready row and, if its Started event was written, records WorkflowTaskFailed
 * (cause FORCE_CLOSE) so Started is always followed by an outcome. */
int sh_wft_abandon(sh_ctx *c, sh_run *r);
/* Builds the PollWorkflowTask response for the started task into reply->body. */
int sh_wft_poll_reply(sh_ctx *c, const sh_run *r, weft_str polled_queue);

/* ---- commands.c: the commands of a workflow task completion ---- */
typedef struct sh_cmds_plan { /* what validation learned about a batch */
    bool has_close;               /* the last command closes the run */
    uint32_t new_activities;      /* ScheduleActivity commands */
    uint32_t new_timers;          /* StartTimer commands */
} sh_cmds_plan;
/* Validates every command (all or nothing): rejects INVALID_ARGUMENT naming
 * "commands[i].field", or RESOURCE_EXHAUSTED naming the limit. */
int sh_cmds_validate(sh_ctx *c, const sh_run *r, const weft_complete_wft_req *req,
                     sh_cmds_plan *plan);
/* Applies validated commands in order. *need_task is set when an effect needs a new workflow
 * task (an activity canceled before it started). */
int sh_cmds_apply(sh_ctx *c, sh_run *r, const weft_complete_wft_req *req, uint64_t completed_id,
                  bool *need_task);

/* ---- activity.c ---- */
int sh_act_schedule(sh_ctx *c, sh_run *r, const weft_command *cmd, uint64_t completed_id);
/* RequestCancelActivity: cancels at once when not running (setting *need_task), else marks
 * it. A pending activity is required (validated before). */
int sh_act_request_cancel(sh_ctx *c, sh_run *r, uint64_t scheduled_event_id, bool *need_task);
int sh_act_on_started(sh_ctx *c, const weft_shard_cmd *cmd);
int sh_act_on_complete(sh_ctx *c, const weft_shard_cmd *cmd);
int sh_act_on_fail(sh_ctx *c, const weft_shard_cmd *cmd);
int sh_act_on_heartbeat(sh_ctx *c, const weft_shard_cmd *cmd);
int sh_act_on_requeue(sh_ctx *c, sh_run *r, const weft_task_token *t);
int sh_act_on_timer(sh_ctx *c, sh_run *r, const sh_timer_row *row);
/* Deletes every pending activity of a closing run (records and ready rows). */
int sh_act_drop_all(sh_ctx *c, sh_run *r);
/* Fills the default retry policy fields (section 7) and validates them; field is the path
 * prefix for errors. */
int sh_act_policy_check(sh_ctx *c, weft_retry_policy *p, const char *field);

/* ---- usertimer.c: StartTimer / CancelTimer / TimerFired ---- */
int sh_utimer_start(sh_ctx *c, sh_run *r, const weft_command *cmd);
int sh_utimer_cancel(sh_ctx *c, sh_run *r, weft_str timer_id);
int sh_utimer_on_fire(sh_ctx *c, sh_run *r, const sh_timer_row *row);
int sh_utimer_drop_all(sh_ctx *c, sh_run *r);
/* Finds a pending timer by id: *started_event_id 0 when none. */
int sh_utimer_find(sh_ctx *c, uint64_t run_key, weft_str timer_id, uint64_t *started_event_id);

/* ---- timers.c: the timer index (section 9) ---- */
int sh_timer_add(sh_ctx *c, uint64_t fire_at_ms, uint32_t kind, uint64_t run_key, uint64_t ref,
                 uint32_t attempt, weft_bytes key);
int sh_timers_on_fire(sh_ctx *c, const weft_shard_cmd *cmd);

/* ---- dispatch.c: the ready table and the FIFOs (section 8) ---- */
/* `queue` is a task queue of run r's namespace; the row is filed under its dispatch name. */
int sh_ready_add(sh_ctx *c, const sh_run *r, weft_str queue, uint8_t kind,
                 uint64_t scheduled_event_id, uint32_t attempt, uint64_t *seq);
int sh_ready_del(sh_ctx *c, const sh_run *r, weft_str queue, uint8_t kind, uint64_t seq);
/* After commit, on the leader: queue the ready tasks in memory and tell the observer. */
void sh_dispatch_after_commit(weft_shard *s, const sh_effects *fx);
void sh_dispatch_free(sh_dispatch *d);

/* ---- start.c ---- */
typedef struct sh_new_run {
    weft_str namespace_, workflow_id;  /* the execution */
    weft_str run_id;                   /* from the leader, or derived for continue-as-new */
    weft_str workflow_type, task_queue;
    weft_bytes input;                  /* WorkflowExecutionStarted input */
    uint64_t run_timeout_ms;           /* 0 = none */
    uint64_t execution_timeout_ms;     /* 0 = none */
    uint64_t execution_expire_ms;      /* inherited deadline of the chain, 0 = compute */
    uint64_t task_timeout_ms;          /* 0 = workflow_task_timeout_ms */
    weft_str first_run_id;             /* empty: this run starts the chain */
    weft_str continued_from_run_id;    /* the run this one continues, if any */
    weft_str request_id, identity;     /* of the start request */
} sh_new_run;
int sh_start_on_cmd(sh_ctx *c, const weft_shard_cmd *cmd, bool with_signal);
/* Creates a run (Started event, records, indexes, timeouts) without its first task. */
int sh_run_create(sh_ctx *c, const sh_new_run *p, sh_run *out);
/* Validates a start request's fields (shared by client_cmd and apply). */
int sh_start_validate(sh_ctx *c, weft_start_req *req, weft_str run_id, bool with_signal);
/* Deterministic run id of the run that continues `old_run_id` (section 7): 32 hex digits, the
 * form of the leader's random run ids. */
weft_str sh_run_id_derive(sh_ctx *c, weft_str old_run_id, uint64_t event_id);

/* ---- signal.c ---- */
int sh_signal_on_cmd(sh_ctx *c, const weft_shard_cmd *cmd);
/* Checks that a signal can reach `r` (open, under the limits); no writes. *dup is set when
 * the request id was already delivered to this run (G7). */
int sh_signal_check(sh_ctx *c, const sh_run *r, weft_str request_id, bool *dup);
/* Appends WorkflowExecutionSignaled and remembers the request id. */
int sh_signal_deliver(sh_ctx *c, sh_run *r, weft_str name, weft_bytes input, weft_str identity,
                      weft_str request_id);
int sh_signal_validate(sh_ctx *c, const weft_signal_req *req);

/* ---- close.c: closing runs, cancel, terminate, timeouts, retention ---- */
/* Closes an open run: drops pending work, writes `ev` (the closing event), sets the status,
 * moves visibility and arms retention. */
int sh_run_close(sh_ctx *c, sh_run *r, uint32_t status, weft_event *ev);
int sh_cancel_on_cmd(sh_ctx *c, const weft_shard_cmd *cmd);
int sh_terminate_on_cmd(sh_ctx *c, const weft_shard_cmd *cmd);
/* Terminates `r` (terminate-existing, and TERMINATE). */
int sh_run_terminate(sh_ctx *c, sh_run *r, weft_str reason, weft_bytes details,
                     weft_str identity, weft_str request_id);
int sh_close_on_timer(sh_ctx *c, sh_run *r, const sh_timer_row *row);
int sh_retention_on_timer(sh_ctx *c, const sh_timer_row *row);
int sh_close_validate(sh_ctx *c, const weft_close_req *req);

/* ---- dedup.c: request-id dedup (G4) ---- */
/* Looks up the first outcome of a request id. *found false when new. Rejects a request id
 * reused by another kind of request. */
int sh_dedup_find(sh_ctx *c, weft_str ns, weft_str request_id, uint32_t op, bool *found,
                  sh_dedup *out);
/* Records an outcome and arms its expiry (dedup_ttl_ms). No-op for an empty request id. */
int sh_dedup_record(sh_ctx *c, weft_str ns, weft_str request_id, const sh_dedup *d);
/* Records the outcome `rc` (0 or a rejection that came before any write since `writes`) and,
 * for a rejection, answers with it. Returns 0 or a storage failure; the caller answers a
 * success (reply->err.code is 0) itself. */
int sh_dedup_finish(sh_ctx *c, weft_str ns, weft_str request_id, sh_dedup *d, int rc,
                    uint64_t writes);
/* Answers a request from its recorded outcome. */
int sh_dedup_reply(sh_ctx *c, const sh_dedup *d, bool start_resp);
int sh_dedup_on_expiry(sh_ctx *c, const sh_timer_row *row);
/* Per-run signal request ids (part 3). */
int sh_seen_has(sh_ctx *c, uint64_t run_key, weft_str request_id, bool *found);
int sh_seen_add(sh_ctx *c, sh_run *r, weft_str request_id);

/* ---- namespace.c: the namespace registry ---- */
int sh_ns_validate(sh_ctx *c, const weft_register_ns_req *req);
int sh_ns_on_register(sh_ctx *c, const weft_shard_cmd *cmd);
int sh_ns_read_describe(sh_ctx *c, const uint8_t *body, size_t len);
int sh_ns_read_list(sh_ctx *c, const uint8_t *body, size_t len);

/* ---- visibility.c ---- */
int sh_vis_insert(sh_ctx *c, const sh_run *r);
int sh_vis_close(sh_ctx *c, const sh_run *r);
int sh_vis_delete(sh_ctx *c, const sh_run *r);
/* The summary that list returns for a run. */
void sh_vis_info(const sh_run *r, weft_execution_info *out);

#endif
