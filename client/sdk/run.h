/* run.h: the state of one workflow run inside the SDK, shared by the replay state machine
 * (engine.c), the workflow API (wf.c, futures.c) and command matching (match.c). Never
 * installed. */
#ifndef WEFT_SDK_RUN_H
#define WEFT_SDK_RUN_H

#include <stdbool.h>
#include <stdint.h>

#include "arena.h"
#include "coro.h"
#include "engine.h"

/* What a future stands for. */
typedef enum fut_kind {
    FUT_ACTIVITY = 1, /* ScheduleActivity; keyed by its scheduled event id once matched */
    FUT_TIMER,        /* StartTimer; keyed by its started event id once matched */
    FUT_SIGNAL,       /* the next unclaimed signal of a name */
    FUT_IMMEDIATE,    /* resolved at creation (bad argument, zero-length timer) */
} fut_kind;

struct weft_future {
    wfe_run *run;            /* owner */
    fut_kind kind;           /* what it stands for */
    bool ready;              /* resolved */
    int outcome;             /* once ready: 0, WEFT_WF_FAILED or WEFT_WF_CANCELED */
    weft_bytes result;       /* activity result or signal payload (run arena) */
    weft_wf_failure failure; /* when outcome != 0 (run arena) */
    const char *id;          /* activity_id or timer_id (run arena) */
    const char *signal_name; /* FUT_SIGNAL: the name it waits for */
    uint64_t event_id;       /* scheduled (activity) or started (timer) event id; 0 = not known */
    bool cancel_wanted;      /* activity: RequestCancelActivity still to be sent */
    bool released;           /* signal: no longer claims a signal (its wait gave up) */
    weft_future *next;       /* FUT_SIGNAL waiters list, or the pending-cancel list */
};

/* One command the code produced, with where it came from. */
typedef struct cmd_rec {
    weft_command cmd;   /* the wire command (strings in the run arena) */
    const char *file;   /* call site, for non-determinism errors */
    int line;
    weft_future *fut;   /* the future it creates (activity, timer), or NULL */
    bool optional;      /* cancels: the server writes nothing if the target already finished */
} cmd_rec;

/* A growable array of commands (malloc'd). */
typedef struct cmd_vec {
    cmd_rec *items;
    uint32_t count;
    uint32_t cap;
} cmd_vec;

/* A received signal, in arrival order. */
typedef struct sig_rec {
    const char *name;      /* signal name (run arena) */
    weft_bytes payload;    /* (run arena) */
    bool claimed;          /* handed to a future */
    struct sig_rec *next;  /* next in arrival order */
} sig_rec;

/* A decided get_version. */
typedef struct version_rec {
    const char *change_id;
    int version;
    struct version_rec *next;
} version_rec;

/* Open-addressing map from an event id to the future it resolves. */
typedef struct fut_map {
    uint64_t *keys;       /* 0 = empty slot */
    weft_future **vals;
    uint32_t cap;         /* power of two */
    uint32_t count;
} fut_map;

struct weft_wf {
    wfe_run *run; /* the run this context belongs to */
};

struct wfe_run {
    struct weft_wf wf;        /* what workflow code holds */
    sdk_arena arena;          /* everything that lives as long as the run */
    weft_wf_info info;        /* ids and names (arena) */
    weft_workflow_fn fn;      /* the registered code */
    void *fn_arg;             /* its registration argument */
    sdk_coro co;              /* the coroutine the code runs on */
    /* history position */
    uint64_t next_event_id;   /* id the next fed event must have */
    weft_bytes input;         /* from WorkflowExecutionStarted (arena) */
    uint64_t now_ms;          /* event time of the latest WorkflowTaskStarted */
    uint64_t rng_state;       /* xorshift64* state, seeded from the run's ids in history */
    uint32_t seq;             /* source of deterministic activity and timer ids */
    /* the step in progress (the code running between two waits) */
    bool replaying;           /* the step's commands are already in history */
    const weft_event **batch; /* replay: the command events the step must reproduce */
    uint32_t batch_count;
    uint32_t batch_pos;       /* next batch event to match */
    cmd_vec out;              /* the current task's new commands */
    cmd_vec sent;             /* the previous current task's commands, awaiting their events */
    uint64_t sent_started_id; /* the WorkflowTaskStarted those commands answered */
    weft_future *cancel_queue; /* activities whose RequestCancelActivity waits for their id */
    /* lookups */
    fut_map futs;             /* event id -> future (activities and timers) */
    sig_rec *sig_head, *sig_tail;        /* signals in arrival order */
    weft_future *sig_wait_head, *sig_wait_tail; /* signal futures waiting, in creation order */
    version_rec *versions;    /* get_version decisions */
    /* cancellation */
    bool cancel_requested;    /* WorkflowExecutionCancelRequested seen */
    bool cancel_delivered;    /* a wait already returned WEFT_WF_CANCELED for it */
    /* closing */
    bool fn_returned;         /* the workflow function returned */
    bool closed;              /* a close command was produced or replayed, or history closed */
    weft_failure close_failure; /* set by weft_wf_fail */
    weft_bytes continue_input;  /* set by weft_wf_continue_as_new */
    weft_wf_failure last_failure; /* of the latest call that did not return 0 */
    /* a poisoned run fails every task; it never resumes its coroutine again */
    bool poisoned;
    const char *cause;          /* "non-determinism", "panic", "resource-exhausted" */
    weft_failure failure;       /* type and message of the task failure (arena) */
};

/* ---- engine.c ---- */

/* Poisons the run: the task fails with `cause` and a message built from fmt. When called from
 * the coroutine, it never returns (the coroutine is abandoned). */
void run_poison(wfe_run *r, const char *cause, const char *type, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* From the coroutine: returns to the engine until the next step. */
void run_yield(wfe_run *r);

/* Records a command. Replaying: matches it against the next history command event (a mismatch
 * poisons the run and does not return). Otherwise: appends it to the task's commands. */
void run_emit(wfe_run *r, const weft_command *cmd, const char *file, int line, weft_future *fut,
              bool optional);

/* The next command event of the step being replayed, or NULL (not replaying, or none left). */
const weft_event *run_peek(wfe_run *r);
/* Consumes the event run_peek returned. */
void run_consume(wfe_run *r);

/* Registers `f` under its event id (f->event_id must be set). */
void run_fut_bind(wfe_run *r, weft_future *f);

/* A fresh future of `kind` in the run's arena (poisons on out of memory). */
weft_future *run_fut_new(wfe_run *r, fut_kind kind);

/* Resolves a pending future. `failure` may be NULL (then a failure of `type`/`message`
 * strings is built when outcome != 0). */
void run_fut_resolve(weft_future *f, int outcome, weft_bytes result, const char *type,
                     const char *message, weft_bytes details, uint32_t attempt);

/* Arena helpers that poison the run when out of memory, so callers need no checks. */
char *run_strdup(wfe_run *r, weft_str s);
char *run_cstrdup(wfe_run *r, const char *s);
weft_bytes run_bytes(wfe_run *r, weft_bytes b);
char *run_printf(wfe_run *r, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* ---- match.c ---- */

/* True when `ev` is the history event that `cmd` produces. */
bool match_command(const weft_command *cmd, const weft_event *ev);
/* True for event types that only a workflow task's commands write. */
bool match_is_command_event(uint32_t event_type);
/* One-line descriptions for error messages ("ActivityTaskScheduled (activity_id 1, type
 * charge)"), into buf. */
const char *match_describe_event(const weft_event *ev, char *buf, size_t cap);
const char *match_describe_command(const weft_command *cmd, char *buf, size_t cap);

/* ---- wf.c ---- */

/* The coroutine's entry: runs the workflow function and emits its close command. */
void wf_main(void *run);

/* A signal event arrived: hands it to the oldest waiting future of its name, or buffers it. */
void wf_signal_deliver(wfe_run *r, weft_str name, weft_bytes payload);

#endif
