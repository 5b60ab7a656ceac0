/* state.h: the shard's stored records (DESIGN section 6): execution, run, activity, user
 * timer, dedup, timer-index and ready rows, as structs with schemas, plus their load/store and
 * the three state-machine setters (run status, workflow task, activity). Private to shards/. */
#ifndef WEFT_SHARDS_STATE_H
#define WEFT_SHARDS_STATE_H

#include "apply.h"

/* Parts of a run's rows in the runs table: (run key, part, sub). */
enum sh_run_part {
    SH_PART_RUN = 0,      /* sub 0: the run record */
    SH_PART_ACTIVITY = 1, /* sub = ActivityTaskScheduled event id */
    SH_PART_TIMER = 2,    /* sub = TimerStarted event id */
    SH_PART_DEDUP = 3,    /* sub = xxh3_64 of a signal request id (probed on collision) */
    SH_PART_BUFFER = 4,   /* sub = 1..n: events that arrived while a workflow task ran */
};

/* The pending workflow task (section 7: at most one per run). */
enum sh_wft_state {
    SH_WFT_NONE = 0,      /* no task pending */
    SH_WFT_SCHEDULED = 1, /* ready on a queue */
    SH_WFT_STARTED = 2,   /* a worker holds it */
    SH_WFT_BACKOFF = 3,   /* failed; the next attempt waits for a retry timer */
};

typedef struct sh_wft {
    uint32_t state;               /* enum sh_wft_state; changed only by sh_wft_set_state */
    uint64_t scheduled_event_id;  /* WorkflowTaskScheduled id (provisional when transient) */
    uint64_t started_event_id;    /* WorkflowTaskStarted id (synthetic when transient) */
    uint32_t attempt;             /* 1, or 1 + failures since the last success */
    bool transient;               /* Scheduled/Started not written: a retry (section 7) */
    weft_str queue;               /* queue the ready row is on (sticky or shared) */
    uint64_t ready_seq;           /* the ready row's sequence, while scheduled */
    uint64_t scheduled_time_ms;   /* shard clock when it was (re)queued */
    uint64_t started_time_ms;     /* shard clock when a poller took it */
    weft_str identity;            /* the worker that started it */
    weft_str started_request_id;  /* the poll that started it: replays answer the same */
    uint32_t failures;            /* consecutive failures and timeouts since the last success */
    weft_failure last_failure;    /* the latest one (describe shows it) */
    weft_str last_failure_cause;  /* its cause, e.g. "non-determinism", "timeout" */
} sh_wft;

/* The run record (part 0). */
typedef struct sh_run {
    uint64_t run_key;                   /* shard-local key of the run */
    weft_str namespace_;                /* namespace of the workflow id */
    weft_str workflow_id;               /* the user's id */
    weft_str run_id;                    /* this run (leader-generated or derived) */
    weft_str workflow_type;             /* name the worker registered */
    weft_str task_queue;                /* the shared queue workflow tasks go to */
    uint32_t status;                    /* enum weft_status; only sh_run_set_status changes it */
    uint64_t run_timeout_ms;            /* 0 = none */
    uint64_t execution_timeout_ms;      /* 0 = none; spans continue-as-new */
    uint64_t execution_expire_ms;       /* absolute end of the execution, 0 = none */
    uint64_t task_timeout_ms;           /* workflow task start-to-close */
    uint64_t start_time_ms;             /* shard clock at WorkflowExecutionStarted */
    uint64_t close_time_ms;             /* shard clock at the closing event, 0 while open */
    uint64_t next_event_id;             /* id the next history event gets */
    uint64_t history_bytes;             /* encoded bytes written so far */
    weft_str first_run_id;              /* first run of the continue-as-new chain */
    weft_str continued_from_run_id;
    weft_str continued_to_run_id;
    weft_str start_request_id;          /* request id of the start that created it */
    bool cancel_requested;              /* WorkflowExecutionCancelRequested was written */
    weft_bytes result;                  /* completed */
    weft_failure failure;               /* failed, canceled, terminated, timed out */
    sh_wft wft;                         /* the pending workflow task */
    weft_str sticky_queue;              /* worker cache to prefer for the next task */
    weft_str sticky_identity;           /* the worker that owns it */
    uint64_t previous_started_event_id; /* Started id of the last completed task */
    uint32_t pending_activities;        /* part 1 records */
    uint32_t pending_timers;            /* part 2 records */
    uint32_t buffered_count;            /* events buffered in part 4 */
    uint32_t signal_dedup_count;        /* request ids remembered in part 3 */
} sh_run;

enum sh_act_state {
    SH_ACT_SCHEDULED = 1, /* ready on a queue */
    SH_ACT_STARTED = 2,   /* a worker runs the current attempt */
    SH_ACT_BACKOFF = 3,   /* waiting for the retry timer of the next attempt */
};

/* A pending activity (part 1, sub = scheduled event id). */
typedef struct sh_act {
    uint64_t scheduled_event_id;        /* its ActivityTaskScheduled event */
    uint32_t state;                     /* enum sh_act_state; only sh_act_set_state changes it */
    weft_str activity_id;               /* unique among the run's pending activities */
    weft_str activity_type;             /* name the activity worker registered */
    weft_str task_queue;                /* where its tasks are dispatched */
    weft_bytes input;                   /* handed to every attempt */
    uint32_t attempt;                   /* current (or next, in backoff) attempt, from 1 */
    weft_retry_policy retry_policy;     /* with defaults filled in */
    uint64_t schedule_to_close_timeout_ms; /* all attempts; 0 = none */
    uint64_t schedule_to_start_timeout_ms; /* queue wait per attempt; 0 = none */
    uint64_t start_to_close_timeout_ms;    /* one attempt */
    uint64_t heartbeat_timeout_ms;         /* between heartbeats; 0 = none */
    uint64_t scheduled_time_ms;         /* first scheduling: schedule-to-close counts from it */
    uint64_t started_time_ms;           /* current attempt */
    weft_str identity;                  /* worker of the current (or last) attempt */
    uint64_t last_heartbeat_time_ms;    /* 0 until the current attempt heartbeats */
    weft_bytes heartbeat_details;       /* handed to the next attempt */
    weft_failure last_failure;          /* of the previous attempt */
    bool cancel_requested;              /* the workflow asked; reported by heartbeats */
    uint64_t ready_seq;                 /* ready row, while scheduled */
    uint64_t next_attempt_time_ms;      /* while in backoff */
    uint64_t queued_time_ms;            /* when the current attempt last went on its queue:
                                           schedule-to-start counts from it (a requeued
                                           attempt gets a fresh window) */
} sh_act;

/* A pending user timer (part 2, sub = TimerStarted event id). */
typedef struct sh_utimer {
    uint64_t started_event_id;   /* its TimerStarted event */
    weft_str timer_id;           /* unique among the run's pending timers */
    uint64_t fire_at_ms;         /* due time on the shard clock */
} sh_utimer;

/* A remembered signal request id (part 3). */
typedef struct sh_seen {
    weft_str request_id;         /* the full id (the key holds only its hash) */
} sh_seen;

/* (ns, workflow id) -> the current (latest) run. */
typedef struct sh_exec {
    uint64_t run_key;             /* the current run's key */
    weft_str run_id;              /* and its id */
    uint32_t status;              /* mirror of the run's status */
    weft_str start_request_id;    /* request id of the start that created the run */
} sh_exec;

/* Kinds of rows in the timer index (section 9). */
enum sh_timer_kind {
    SH_TK_USER = 1,              /* ref = TimerStarted id */
    SH_TK_ACT_SCHED_TO_START,    /* ref = scheduled id, attempt */
    SH_TK_ACT_START_TO_CLOSE,    /* ref = scheduled id, attempt */
    SH_TK_ACT_SCHED_TO_CLOSE,    /* ref = scheduled id */
    SH_TK_ACT_HEARTBEAT,         /* ref = scheduled id, attempt */
    SH_TK_ACT_RETRY,             /* ref = scheduled id, attempt = the next attempt */
    SH_TK_WFT_START_TO_CLOSE,    /* ref = WFT scheduled id, attempt */
    SH_TK_WFT_STICKY,            /* ref = WFT scheduled id, attempt: sticky fallback */
    SH_TK_WFT_RETRY,             /* attempt = the next attempt */
    SH_TK_RUN_TIMEOUT,           /* run timeout */
    SH_TK_EXEC_TIMEOUT,          /* execution timeout (spans continue-as-new) */
    SH_TK_RETENTION,             /* delete the closed run */
    SH_TK_DEDUP_EXPIRY,          /* key = the dedup row to delete */
};

typedef struct sh_timer_row {
    uint64_t run_key;            /* target run (0 for dedup expiry) */
    uint32_t kind;               /* enum sh_timer_kind */
    uint64_t ref;                /* event id the target is keyed by (see the kinds) */
    uint32_t attempt;            /* attempt the deadline belongs to: a later one ignores it */
    weft_bytes key;              /* DEDUP_EXPIRY: the dedup table key */
} sh_timer_row;

/* ready (queue, kind, seq) -> this. */
typedef struct sh_ready_row {
    uint64_t run_key;            /* the task's run */
    uint64_t scheduled_event_id; /* workflow task or activity scheduled id */
    uint32_t attempt;            /* the attempt that is ready */
    weft_str task_queue;         /* full name: long names are hashed in the key */
    uint32_t kind;               /* WEFT_TASK_KIND_* */
    weft_str namespace_;         /* the queue's namespace; the key uses the dispatch name */
} sh_ready_row;

/* dedup (ns, request id) -> the first outcome of a start/signal/cancel/terminate (G4). */
typedef struct sh_dedup {
    uint32_t op;                 /* enum weft_shard_cmd_type of the first request */
    weft_str run_id;             /* the run it created or reached */
    bool started;                /* START: a new run was created */
    uint32_t code;               /* 0, or the error it was answered with */
    weft_str field;              /* the error's field, if any */
    weft_str message;            /* the error's message */
} sh_dedup;

extern const weft_schema sh_run_schema, sh_act_schema, sh_utimer_schema, sh_seen_schema,
    sh_exec_schema, sh_timer_row_schema, sh_ready_row_schema, sh_dedup_schema;

/* Load/store. Loads return 0, -WEFT_E_NOT_FOUND or -WEFT_E_INTERNAL. */
int sh_exec_load(sh_ctx *c, weft_str ns, weft_str workflow_id, sh_exec *out);
int sh_exec_store(sh_ctx *c, weft_str ns, weft_str workflow_id, const sh_exec *e);
int sh_run_load(sh_ctx *c, uint64_t run_key, sh_run *out);
int sh_run_store(sh_ctx *c, const sh_run *r);
int sh_act_load(sh_ctx *c, uint64_t run_key, uint64_t scheduled_event_id, sh_act *out);
int sh_act_store(sh_ctx *c, uint64_t run_key, const sh_act *a);
int sh_act_delete(sh_ctx *c, uint64_t run_key, uint64_t scheduled_event_id);
int sh_utimer_load(sh_ctx *c, uint64_t run_key, uint64_t started_event_id, sh_utimer *out);
int sh_utimer_store(sh_ctx *c, uint64_t run_key, const sh_utimer *t);
int sh_utimer_delete(sh_ctx *c, uint64_t run_key, uint64_t started_event_id);

/* Finds a run by (ns, workflow id, run id); an empty run id means the current run. Rejects
 * NOT_FOUND with a message naming what was looked for. */
int sh_run_find(sh_ctx *c, weft_str ns, weft_str workflow_id, weft_str run_id, sh_run *out);

/* The single setters (STYLE rule 9): assert the transition is legal and log it. */
void sh_run_set_status(sh_ctx *c, sh_run *r, uint32_t status);
void sh_wft_set_state(sh_ctx *c, sh_run *r, uint32_t state);
void sh_act_set_state(sh_ctx *c, uint64_t run_key, sh_act *a, uint32_t state);

bool sh_run_is_open(const sh_run *r);
const char *sh_wft_state_name(uint32_t state);
const char *sh_act_state_name(uint32_t state);

/* Iterates the rows of one part of a run: calls `cb` with each decoded record (borrowing
 * LMDB memory: valid only inside the callback, which must not write). Stops early when cb
 * returns non-zero and returns that value. */
typedef int (*sh_part_cb)(sh_ctx *c, uint64_t sub, const void *rec, void *data);
int sh_part_scan(sh_ctx *c, uint64_t run_key, uint8_t part, const weft_schema *schema,
                 void *rec_buf, sh_part_cb cb, void *data);

#endif
