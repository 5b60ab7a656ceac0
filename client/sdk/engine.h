/* engine.h: one workflow run's replay state machine and coroutine (DESIGN section 11): feeds
 * history events to the workflow code, matches the commands the code produces against the
 * history, and returns the new commands of the current workflow task. Knows no sockets: the
 * worker (worker.c) and the replayer (replayer.c) drive it. */
#ifndef WEFT_SDK_ENGINE_H
#define WEFT_SDK_ENGINE_H

#include <stdbool.h>
#include <stdint.h>

#include "proto/msg.h"
#include "weft/worker.h"

typedef struct wfe_run wfe_run;

/* What a run needs to start. Strings are borrowed during wfe_run_new (copied into the run). */
typedef struct wfe_run_params {
    weft_str namespace_;
    weft_str workflow_id;
    weft_str run_id;
    weft_str workflow_type;
    weft_str task_queue;
    weft_workflow_fn fn;   /* the registered code */
    void *arg;             /* its registration argument */
    uint32_t stack_bytes;  /* coroutine stack, >= WEFT_WORKER_WF_STACK_BYTES_MIN */
} wfe_run_params;

/* Creates a run that has seen no event yet. On success *out belongs to the caller
 * (wfe_run_free). Errors: INVALID_ARGUMENT (stack too small, NULL fn), RESOURCE_EXHAUSTED
 * (memory, mmap of the stack). */
int wfe_run_new(const wfe_run_params *p, wfe_run **out, weft_err *err);

/* Frees the run, its arena and its coroutine stack, wherever the coroutine is suspended. NULL is
 * a no-op. */
void wfe_run_free(wfe_run *r);

/* Outcome of one wfe_run_feed. */
typedef struct wfe_task_result {
    /* Commands of the current workflow task, in order. Owned by the run: valid until the next
     * wfe_run_feed or wfe_run_free. Empty when the task is only replayed (current = 0). */
    weft_command *commands;
    uint32_t commands_count;
    bool closes;           /* the last command closes the run (complete, fail, cancel, CAN) */
    /* When `failed`: the task must be failed with FailWorkflowTask(cause, failure), and the run
     * is poisoned (every later feed fails the same way; free it). */
    bool failed;
    const char *cause;     /* "non-determinism", "panic" (code misuse), "resource-exhausted" */
    weft_failure failure;  /* type and message (borrowed from the run, like commands) */
} wfe_task_result;

/* Feeds `events` (borrowed during the call) to the run. They must continue its history:
 * events[0].event_id == wfe_run_next_event_id(r), ids dense. The code runs at every
 * WorkflowTaskStarted that a WorkflowTaskCompleted follows in `events` (replay: its commands are
 * matched against the command events that follow), and, when `current_started_event_id` is not
 * 0, at that WorkflowTaskStarted, which must be the last event: the commands it produces are
 * the new ones, returned in *out. With current_started_event_id 0 (the replayer) the events are
 * only replayed; a trailing WorkflowTaskStarted without completion is skipped.
 * Returns 0 with *out filled (out->failed tells whether the task must be failed), or
 * -WEFT_E_INVALID_ARGUMENT when `events` do not continue the run (wrong first id, gaps, a
 * current id that is not the last WorkflowTaskStarted): the caller replays from the full
 * history on a fresh run. */
int wfe_run_feed(wfe_run *r, const weft_event *events, uint32_t events_count,
                 uint64_t current_started_event_id, wfe_task_result *out, weft_err *err);

/* The id the next fed event must have (1 for a fresh run). */
uint64_t wfe_run_next_event_id(const wfe_run *r);

/* True once the run produced (or replayed) a close command, or history closed it. */
bool wfe_run_closed(const wfe_run *r);

/* The run id given at creation (NUL-terminated, owned by the run). */
const char *wfe_run_id(const wfe_run *r);

#endif
