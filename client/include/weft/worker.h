/* worker.h: the libweft worker SDK: straight-line C workflows on coroutines, activities on a
 * thread pool, and the replayer (DESIGN section 11). The header is the manual.
 *
 * A workflow is a C function. Each run executes on its own coroutine, so a call such as
 * weft_wf_activity() or weft_wf_sleep() blocks the workflow, not the thread: the SDK suspends
 * the coroutine, sends the commands the code produced, and resumes it when the history holds
 * what it waits for. A run that a worker still holds in its sticky cache continues from where it
 * stopped; any other run (after a worker restart, or an eviction) is replayed from its full
 * history, and the code takes the same path again because everything it sees comes from that
 * history.
 *
 * Determinism. Workflow code must reach the same SDK calls in the same order given the same
 * history. It must not read the clock, random numbers, files or the network directly: use
 * weft_wf_now_ms(), weft_wf_random(), weft_wf_side_effect() and activities. On replay, each
 * command the code produces is matched against the history by kind and id; a mismatch fails the
 * workflow task with a non-determinism error naming the history event and the call site
 * (file:line) of the SDK call. The task is retried by the server with backoff, so deploying the
 * fixed code lets the run continue. weft_wf_get_version() lets code change while runs are open.
 *
 * Memory. Everything the SDK hands to workflow code (inputs, results, signal payloads, failure
 * texts) lives in the run's arena and stays valid until the run ends. weft_wf_alloc() gives
 * workflow code memory from the same arena. A run's coroutine may be dropped at any suspension
 * point (cache eviction, non-determinism, worker stop): memory from malloc() in workflow code
 * would leak then, so use weft_wf_alloc().
 *
 * Threads. A worker polls with its own threads, each pinned to one node of the cluster: a node
 * hands out only the tasks of the shards it leads (DESIGN section 8), so weft_worker_run lists
 * the nodes (weft_client_nodes, refreshed with ClusterStatus) and polls every one; the list is
 * fixed for the run. Per node there are workflow_concurrency pollers of the shared queue, as
 * many of the worker's sticky queue (unless the cache is off), and
 * max(1, activity_concurrency - (nodes - 1)) activity pollers. The limits hold for the worker
 * as a whole, across nodes:
 *   - at most workflow_concurrency workflow tasks are processed at once; a polled task waits
 *     for a processing slot (processing is short; polls are not limited, so that a sticky task
 *     is never stuck behind long-polls);
 *   - at most activity_concurrency activities execute at once, and a received activity never
 *     waits: a poller takes an execution slot BEFORE it polls (the server starts the task, and
 *     its timeouts, when it hands it out) and gives it back after reporting, or after an empty
 *     poll. Slots are granted first come, first served. While a node has no activity task, one
 *     of its pollers keeps a long-poll open there (one slot); once a poll of the node returns a
 *     task, all its pollers poll it, with short (1 s) polls, until one comes back empty. So
 *     every node is always polled, and a node with a backlog gets every slot that the other
 *     nodes' standing polls do not hold. With activity_concurrency below the node count the
 *     nodes take turns for the slots (a poll lasts at most 1 s while other pollers wait), so a
 *     new task may wait about a second per node before it is picked up: give
 *     activity_concurrency at least the node count.
 * With one node (or a client that knows one) this is the pool of a single server: 2 x
 * workflow_concurrency (1 x without the sticky cache) and activity_concurrency pollers, each
 * in its own long-poll. A node that cannot be reached blocks nobody: its pollers' polls fail
 * fast (a pinned poll does not spend the client's retries; an activity poller gives its slot
 * back before it backs off), log once, back off (WEFT_WORKER_POLL_BACKOFF_*) and keep trying.
 * A run may resume on a different thread than the one it suspended on, so workflow code must
 * not keep thread-local state across an SDK call.
 * The weft_wf_* functions may be called only from inside the workflow function they were given
 * to; weft_act_* only from inside the activity function (or, for the task token, anywhere the
 * copied token is kept). */
#ifndef WEFT_WORKER_H
#define WEFT_WORKER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "weft/client.h"

WEFT_BEGIN_DECLS

/* ---- Limits and defaults (units at the end of every name; weft_worker_opts overrides) ---- */

/* Workflow tasks processed at once (also the shared-queue pollers per node; see Threads). */
#define WEFT_WORKER_WORKFLOW_CONCURRENCY_DEFAULT 4u
/* Activity executions at once, over all nodes (see Threads for the pollers per node). */
#define WEFT_WORKER_ACTIVITY_CONCURRENCY_DEFAULT 8u
/* Suspended runs kept in the sticky cache (least recently used evicted first). */
#define WEFT_WORKER_STICKY_CACHE_RUNS_DEFAULT 1000u
/* Stack of one workflow coroutine. Guard pages below it turn an overflow into a crash at once. */
#define WEFT_WORKER_WF_STACK_BYTES_DEFAULT (256u * 1024u)
#define WEFT_WORKER_WF_STACK_BYTES_MIN (64u * 1024u)
/* Long-poll wait asked of the server. Short enough that a stop drains within it. */
#define WEFT_WORKER_POLL_TIMEOUT_MS_DEFAULT 5000u
/* Backoff after a failed poll (node unreachable), per poller, doubled up to the maximum. */
#define WEFT_WORKER_POLL_BACKOFF_INITIAL_MS 100u
#define WEFT_WORKER_POLL_BACKOFF_MAX_MS 5000u
/* Registered workflow and activity types per worker. */
#define WEFT_WORKER_TYPES_MAX 256u
/* Names (types, queues, identities, signal names, change ids) are limited like server ids. */
#define WEFT_WORKER_NAME_BYTES_MAX 1000u
/* Commands one workflow task may produce (above it the task fails with RESOURCE_EXHAUSTED). */
#define WEFT_WF_COMMANDS_PER_TASK_MAX 2000u
/* Futures one await_all / await_any call may take. */
#define WEFT_WF_AWAIT_FUTURES_MAX 2000u
/* Failure type and message as kept by the SDK (longer ones are truncated). */
#define WEFT_FAILURE_TYPE_BYTES_MAX 256u
#define WEFT_FAILURE_MESSAGE_BYTES_MAX 2048u

/* ---- Outcomes of workflow calls ----
 * The blocking weft_wf_* calls return 0 or one of these negative codes. They are outcomes the
 * workflow is expected to handle, not bugs. Any other negative value is a -WEFT_E_* code from
 * weft/errors.h (INVALID_ARGUMENT for a bad argument, RESOURCE_EXHAUSTED for a limit). */
#define WEFT_WF_FAILED (-100)    /* the activity failed or timed out for good; see the failure */
#define WEFT_WF_CANCELED (-101)  /* canceled (the future, or the workflow: see cancellation) */
#define WEFT_WF_TIMED_OUT (-102) /* the wait for a signal ran out of time */
/* Returned by weft_wf_get_version when the history predates the change (Temporal's -1). */
#define WEFT_WF_DEFAULT_VERSION (-1)

/* What a workflow function returns (or any of the weft_wf_* close helpers below, which return
 * these values so that `return weft_wf_fail(...)` reads naturally). */
#define WEFT_WF_RESULT_COMPLETE 0          /* complete with *out */
#define WEFT_WF_RESULT_FAIL (-200)         /* weft_wf_fail() was called */
#define WEFT_WF_RESULT_CANCEL (-201)       /* weft_wf_cancel_done() was called */
#define WEFT_WF_RESULT_CONTINUE (-202)     /* weft_wf_continue_as_new() was called */

/* What an activity function returns besides 0 (complete with *out). */
#define WEFT_ACT_RESULT_FAIL (-300)  /* weft_act_fail() was called */
#define WEFT_ACT_RESULT_ASYNC (-301) /* weft_act_async() was called: completed later by token */

/* Durations, for readability of workflow code. */
#define WEFT_SECOND_MS 1000ull
#define WEFT_MINUTE_MS (60ull * WEFT_SECOND_MS)
#define WEFT_HOUR_MS (60ull * WEFT_MINUTE_MS)
#define WEFT_DAY_MS (24ull * WEFT_HOUR_MS)

typedef struct weft_worker weft_worker;
typedef struct weft_wf weft_wf;         /* a running workflow; valid inside its function */
typedef struct weft_act weft_act;       /* a running activity; valid inside its function */
typedef struct weft_future weft_future; /* owned by its run; valid until the run ends */

/* A workflow. `input` borrows from the run's arena. On WEFT_WF_RESULT_COMPLETE the SDK copies
 * *out (which must stay valid until the function returns: static memory, weft_wf_alloc(), or a
 * payload the SDK handed out), so `out` starts as the empty payload. `arg` is the pointer given
 * at registration. */
typedef int (*weft_workflow_fn)(weft_wf *wf, weft_bytes input, weft_bytes *out, void *arg);

/* An activity. Runs on a pool thread; may block, do I/O, and call weft_act_heartbeat().
 * `input` is valid during the call. *out is copied after the function returns; point it at
 * memory valid until then (weft_act_alloc(), static, or the caller's buffer that outlives the
 * function). Return 0, weft_act_fail(...) or weft_act_async(...). */
typedef int (*weft_activity_fn)(weft_act *act, weft_bytes input, weft_bytes *out, void *arg);

/* ---- The worker ---- */

/* Options of weft_worker_new. Zero fields take the defaults. Strings are copied. */
typedef struct weft_worker_opts {
    const char *namespace_;          /* NULL = WEFT_DEFAULT_NAMESPACE */
    const char *task_queue;          /* required: the shared queue this worker serves */
    const char *identity;            /* NULL = "<host>:<pid>" */
    uint32_t workflow_concurrency;   /* tasks processed at once, all nodes together;
                                        0 = WEFT_WORKER_WORKFLOW_CONCURRENCY_DEFAULT */
    uint32_t activity_concurrency;   /* activities executing at once, all nodes together;
                                        0 = WEFT_WORKER_ACTIVITY_CONCURRENCY_DEFAULT */
    uint32_t sticky_cache_runs;      /* 0 = WEFT_WORKER_STICKY_CACHE_RUNS_DEFAULT */
    bool sticky_cache_disabled;      /* true: every task replays from the full history */
    uint32_t wf_stack_bytes;         /* 0 = WEFT_WORKER_WF_STACK_BYTES_DEFAULT */
    uint32_t poll_timeout_ms;        /* 0 = WEFT_WORKER_POLL_TIMEOUT_MS_DEFAULT */
    bool no_workflows;               /* true: poll activity tasks only */
    bool no_activities;              /* true: poll workflow tasks only */
    bool handle_signals;             /* true: SIGTERM and SIGINT stop weft_worker_run (drain) */
} weft_worker_opts;

/* Creates a worker that uses `client` (borrowed; must outlive the worker) to poll `opts`'
 * task queue. Register types before weft_worker_run. On success *out belongs to the caller
 * (weft_worker_free). Errors: INVALID_ARGUMENT (missing task_queue, a name too long, a stack
 * below WEFT_WORKER_WF_STACK_BYTES_MIN), RESOURCE_EXHAUSTED. */
int weft_worker_new(weft_client *client, const weft_worker_opts *opts, weft_worker **out,
                    weft_err *err);

/* Registers workflow type `type` (copied) with `fn`; `arg` is passed to every run (borrowed,
 * must outlive the worker). Errors: INVALID_ARGUMENT (empty or too long, registered twice,
 * worker running), RESOURCE_EXHAUSTED (WEFT_WORKER_TYPES_MAX). */
int weft_worker_register_workflow(weft_worker *w, const char *type, weft_workflow_fn fn,
                                  void *arg, weft_err *err);

/* Registers activity type `type` with `fn`. Errors as for workflows. */
int weft_worker_register_activity(weft_worker *w, const char *type, weft_activity_fn fn,
                                  void *arg, weft_err *err);

/* Polls and executes tasks on the worker's own threads (the calling thread waits) until
 * weft_worker_stop() (or SIGTERM/SIGINT with opts.handle_signals). It first lists the
 * cluster's nodes (weft_client_nodes with refresh; if ClusterStatus fails, the nodes the client
 * already knows, with a line on stderr) and polls each of them (see Threads); a node added to
 * the cluster later is polled from the next run. Stopping drains: no new poll starts, tasks
 * already received run to completion and are reported, then it returns 0. Poll failures
 * (a node down) are retried with backoff and logged to stderr, never returned.
 * Errors: INVALID_ARGUMENT (nothing registered, or already running), RESOURCE_EXHAUSTED
 * (threads could not be created, or the pollers of every node would exceed the worker's
 * limit of 4096 threads: lower the concurrency options). */
int weft_worker_run(weft_worker *w, weft_err *err);

/* Asks a running worker to drain and return from weft_worker_run. Async-signal-safe; may be
 * called from any thread, before or during run. */
void weft_worker_stop(weft_worker *w);

/* Frees a worker that is not running (every cached run is dropped). NULL is a no-op. */
void weft_worker_free(weft_worker *w);

/* Counters, for tests and operators. A snapshot; safe to call from any thread. */
typedef struct weft_worker_stats {
    uint64_t workflow_tasks_completed;  /* CompleteWorkflowTask accepted */
    uint64_t workflow_tasks_failed;     /* FailWorkflowTask sent (non-determinism, panic) */
    uint64_t sticky_hits;               /* tasks fed to a cached run */
    uint64_t sticky_misses;             /* tasks that replayed from the full history */
    uint64_t cache_evictions;           /* runs dropped to stay within sticky_cache_runs */
    uint64_t activities_completed;      /* CompleteActivity accepted */
    uint64_t activities_failed;         /* FailActivity accepted */
    uint32_t cached_runs;               /* runs in the cache now */
} weft_worker_stats;
void weft_worker_stats_get(weft_worker *w, weft_worker_stats *out);

/* ---- Workflow code: information and memory ---- */

/* Facts about the run. Strings are NUL-terminated and live as long as the run. */
typedef struct weft_wf_info {
    const char *namespace_;
    const char *workflow_id;
    const char *run_id;
    const char *workflow_type;
    const char *task_queue;
    const char *first_run_id;          /* first run of a continue-as-new chain */
    const char *continued_from_run_id; /* "" unless this run continues another */
} weft_wf_info;
const weft_wf_info *weft_wf_info_get(weft_wf *wf);

/* `bytes` bytes from the run's arena, 16-aligned, freed when the run ends. NULL only when out
 * of memory. */
void *weft_wf_alloc(weft_wf *wf, size_t bytes);

/* Copies a payload into the run's arena; returns the empty payload when out of memory. */
weft_bytes weft_wf_bytes_copy(weft_wf *wf, weft_bytes b);

/* ---- Workflow code: deterministic helpers ---- */

/* The workflow's clock: the time the current workflow task started, from history. It only moves
 * when the workflow blocks. */
uint64_t weft_wf_now_ms(weft_wf *wf);

/* A deterministic pseudo-random number, seeded from the run id. */
uint64_t weft_wf_random(weft_wf *wf);

/* True while the workflow is replaying history it already produced (for logging: print only
 * when this is false, or lines repeat on every replay). */
bool weft_wf_is_replaying(weft_wf *wf);

/* Runs fn(arg, out) once and records its result in history (a SideEffect marker); on replay
 * the recorded result is returned and fn is not called. *out borrows from the run's arena.
 * fn must not block for long; use an activity for I/O. Returns 0, or fn's nonzero return (not
 * recorded; fn runs again on the next attempt of the task), or a non-determinism failure of the
 * task. */
int weft_wf_side_effect_at(weft_wf *wf, const char *file, int line,
                           int (*fn)(void *arg, weft_bytes *out), void *arg, weft_bytes *out);
#define weft_wf_side_effect(wf, fn, arg, out) \
    weft_wf_side_effect_at((wf), __FILE__, __LINE__, (fn), (arg), (out))

/* Versioning (Temporal's GetVersion). New code path: returns max_version and records it for
 * change_id (a Version marker). On replay returns what was recorded, or
 * WEFT_WF_DEFAULT_VERSION when the history predates the change. A recorded version outside
 * [min_version, max_version] fails the task (the code no longer supports that run). */
int weft_wf_get_version_at(weft_wf *wf, const char *file, int line, const char *change_id,
                           int min_version, int max_version);
#define weft_wf_get_version(wf, change_id, min_v, max_v) \
    weft_wf_get_version_at((wf), __FILE__, __LINE__, (change_id), (min_v), (max_v))

/* ---- Workflow code: activities, timers, signals and futures ---- */

/* Options of one activity call. Zero fields take the defaults; a NULL pointer takes them all:
 * start_to_close 60 s, the server's default retry policy (unlimited attempts, 1 s doubling). */
typedef struct weft_activity_opts {
    const char *task_queue;               /* NULL = the workflow's task queue */
    const char *activity_id;              /* NULL = a deterministic id from the call order */
    uint64_t schedule_to_close_timeout_ms;
    uint64_t schedule_to_start_timeout_ms;
    uint64_t start_to_close_timeout_ms;   /* 0 and no schedule_to_close: 60 s */
    uint64_t heartbeat_timeout_ms;
    weft_retry_policy retry;              /* maximum_attempts 1 = no retries */
} weft_activity_opts;
#define WEFT_ACTIVITY_START_TO_CLOSE_MS_DEFAULT 60000ull

/* Schedules an activity and returns its future at once. `type` and `input` are copied. Never
 * NULL: a bad argument gives a future already failed with INVALID_ARGUMENT's message. */
weft_future *weft_wf_activity_start_at(weft_wf *wf, const char *file, int line, const char *type,
                                       weft_bytes input, const weft_activity_opts *opts);
#define weft_wf_activity_start(wf, type, input, opts) \
    weft_wf_activity_start_at((wf), __FILE__, __LINE__, (type), (input), (opts))

/* Schedules an activity and waits for it: weft_wf_activity_start then weft_wf_await then
 * weft_future_result. Returns 0 with *out (arena), WEFT_WF_FAILED (weft_wf_last_failure says
 * why), or WEFT_WF_CANCELED: the activity was canceled, or the workflow's cancel interrupted the
 * wait (the activity is then asked to cancel and this call returns at once; to learn whether it
 * took effect after all, use weft_wf_activity_start and await its future). */
int weft_wf_activity_at(weft_wf *wf, const char *file, int line, const char *type,
                        weft_bytes input, const weft_activity_opts *opts, weft_bytes *out);
#define weft_wf_activity(wf, type, input, opts, out) \
    weft_wf_activity_at((wf), __FILE__, __LINE__, (type), (input), (opts), (out))

/* Starts a durable timer of `duration_ms` (> 0) and returns its future, which resolves with 0
 * when it fires, or WEFT_WF_CANCELED if weft_future_cancel() cancels it. */
weft_future *weft_wf_timer_start_at(weft_wf *wf, const char *file, int line,
                                    uint64_t duration_ms);
#define weft_wf_timer_start(wf, ms) weft_wf_timer_start_at((wf), __FILE__, __LINE__, (ms))

/* Sleeps durably: a timer and a wait. Returns 0, or WEFT_WF_CANCELED when the workflow's cancel
 * interrupts it (the timer is canceled then). */
int weft_wf_sleep_at(weft_wf *wf, const char *file, int line, uint64_t duration_ms);
#define weft_wf_sleep(wf, ms) weft_wf_sleep_at((wf), __FILE__, __LINE__, (ms))

/* A future for the next signal named `name` that this code has not consumed yet (signals are
 * buffered from the run's start, per name, in arrival order). Resolves with the payload. */
weft_future *weft_wf_signal_future(weft_wf *wf, const char *name);

/* Waits for the next `name` signal for at most timeout_ms (0 = forever). Returns 0 with *payload
 * (arena), WEFT_WF_TIMED_OUT, or WEFT_WF_CANCELED (workflow cancel). A timeout uses a durable
 * timer, so it survives worker and server restarts. */
int weft_wf_signal_wait_at(weft_wf *wf, const char *file, int line, const char *name,
                           uint64_t timeout_ms, weft_bytes *payload);
#define weft_wf_signal_wait(wf, name, timeout_ms, payload) \
    weft_wf_signal_wait_at((wf), __FILE__, __LINE__, (name), (timeout_ms), (payload))

/* Waits for one future. Returns its outcome (0, WEFT_WF_FAILED, WEFT_WF_CANCELED), or
 * WEFT_WF_CANCELED early when the workflow's cancel interrupts the wait (see below; the future
 * stays pending and may be awaited again or canceled). */
int weft_wf_await(weft_wf *wf, weft_future *f);

/* Waits until every future resolved. Returns 0 when all succeeded, else the outcome of the
 * first (in array order) that did not; or WEFT_WF_CANCELED early (workflow cancel). */
int weft_wf_await_all(weft_wf *wf, weft_future *const *fs, size_t n);

/* Waits until at least one future resolved; *index receives the lowest index of a resolved one.
 * Returns that future's outcome, or WEFT_WF_CANCELED early (workflow cancel; *index = n). */
int weft_wf_await_any(weft_wf *wf, weft_future *const *fs, size_t n, size_t *index);

/* True once the future resolved. */
bool weft_future_ready(const weft_future *f);

/* The resolved outcome: 0, WEFT_WF_FAILED or WEFT_WF_CANCELED; -WEFT_E_FAILED_PRECONDITION
 * while pending. *out (may be NULL) receives the result payload (arena). */
int weft_future_result(const weft_future *f, weft_bytes *out);

/* Why a future failed or was canceled: type and message (NUL-terminated) and details, valid
 * while the run lives. NULL while pending or after success. */
typedef struct weft_wf_failure {
    const char *type;    /* e.g. "PaymentDeclined", "Timeout:start-to-close", "Canceled" */
    const char *message;
    weft_bytes details;
    uint32_t attempt;    /* activity attempts made, when an activity */
} weft_wf_failure;
const weft_wf_failure *weft_future_failure(const weft_future *f);

/* The failure of the latest weft_wf_activity / sleep / signal_wait call that did not return 0. */
const weft_wf_failure *weft_wf_last_failure(weft_wf *wf);

/* Cancels a pending future. A timer is canceled (CancelTimer) and its future resolves
 * WEFT_WF_CANCELED at once. An activity gets RequestCancelActivity (in the next workflow task
 * when it was scheduled in this one; a running attempt learns of it from its heartbeat), and its
 * future resolves with what the activity reports: usually WEFT_WF_CANCELED, or its result if it
 * finished first, so a saga knows whether the step took effect; await it. A signal future stops
 * claiming signals and resolves WEFT_WF_CANCELED. A resolved future is left as it is. Returns 0. */
int weft_future_cancel_at(weft_wf *wf, const char *file, int line, weft_future *f);
#define weft_future_cancel(wf, f) weft_future_cancel_at((wf), __FILE__, __LINE__, (f))

/* ---- Workflow code: cancellation ----
 * CancelWorkflow (weft workflow cancel) records a request; the code decides what it means.
 * The request is delivered to the waits exactly once: the wait in progress when it arrives, or
 * the next one, returns WEFT_WF_CANCELED. Waits after that behave normally, so the code can run
 * compensating activities and then `return weft_wf_cancel_done(wf)`. weft_wf_cancel_requested()
 * tells at any time. */
bool weft_wf_cancel_requested(weft_wf *wf);

/* ---- Workflow code: closing ---- */

/* Fails the workflow with `type` and `message` (copied). Returns WEFT_WF_RESULT_FAIL. */
int weft_wf_fail(weft_wf *wf, const char *type, const char *message);

/* Closes the workflow as canceled. Returns WEFT_WF_RESULT_CANCEL. */
int weft_wf_cancel_done(weft_wf *wf);

/* Closes this run and starts a new run of the same workflow id with `input` (copied): same
 * type and task queue, a fresh history. Returns WEFT_WF_RESULT_CONTINUE. */
int weft_wf_continue_as_new(weft_wf *wf, weft_bytes input);

/* ---- Activity code ---- */

typedef struct weft_act_info {
    const char *namespace_;
    const char *workflow_id;
    const char *run_id;
    const char *activity_id;
    const char *activity_type;
    uint32_t attempt;               /* 1 for the first */
    uint64_t scheduled_time_ms;
    uint64_t started_time_ms;
    uint64_t deadline_ms;           /* start-to-close or schedule-to-close deadline, 0 if none */
    uint64_t heartbeat_timeout_ms;  /* 0 if none */
    weft_bytes heartbeat_details;   /* of the previous attempt's last heartbeat */
} weft_act_info;
const weft_act_info *weft_act_info_get(weft_act *act);

/* Bytes freed after the activity's outcome is reported. NULL when out of memory. */
void *weft_act_alloc(weft_act *act, size_t bytes);

/* Records progress (`details` copied) and learns whether cancellation was requested. Returns 0,
 * WEFT_WF_CANCELED when the workflow asked to cancel this activity (return weft_act_canceled
 * then), or a -WEFT_E_* code when the server could not be told (NOT_FOUND: this attempt is no
 * longer current, stop working). */
int weft_act_heartbeat(weft_act *act, weft_bytes details);

/* True once a heartbeat learned of a cancel request. */
bool weft_act_cancel_requested(weft_act *act);

/* Fails this attempt with `type` and `message` (copied). `non_retryable` stops retries.
 * Returns WEFT_ACT_RESULT_FAIL. */
int weft_act_fail(weft_act *act, const char *type, const char *message, bool non_retryable);

/* Reports the activity as canceled (after a cancel request). Returns WEFT_ACT_RESULT_FAIL. */
int weft_act_canceled(weft_act *act);

/* The task token of this attempt (borrowed; valid during the call). Keep a copy to complete the
 * activity later from anywhere with weft_activity_complete_by_token(). */
weft_bytes weft_act_task_token(weft_act *act);

/* Leaves the activity open when the function returns: someone completes it later by token.
 * Returns WEFT_ACT_RESULT_ASYNC. */
int weft_act_async(weft_act *act);

/* Completes or fails an activity by its task token (any thread, any process with a client).
 * `ns` NULL = default namespace. Errors are those of weft_client_complete_activity /
 * weft_client_fail_activity. */
int weft_activity_complete_by_token(weft_client *c, const char *ns, weft_bytes task_token,
                                    weft_bytes result, weft_err *err);
int weft_activity_fail_by_token(weft_client *c, const char *ns, weft_bytes task_token,
                                const char *type, const char *message, bool non_retryable,
                                weft_err *err);

/* ---- Replayer ---- */

typedef struct weft_replayer weft_replayer;

/* A replayer holds registered workflow types, like a worker without a server. */
int weft_replayer_new(weft_replayer **out, weft_err *err);
int weft_replayer_register_workflow(weft_replayer *r, const char *type, weft_workflow_fn fn,
                                    void *arg, weft_err *err);
void weft_replayer_free(weft_replayer *r);

/* Replays `events` (borrowed; a whole history from event 1, e.g. from weft_history_load_json)
 * through the registered code. Returns 0 when the code produces exactly the commands the history
 * records; -WEFT_E_FAILED_PRECONDITION with err->message naming the first divergent event and
 * the call site; -WEFT_E_NOT_FOUND when the workflow type is not registered;
 * -WEFT_E_INVALID_ARGUMENT when the history is malformed (does not start with
 * WorkflowExecutionStarted, ids not dense). */
int weft_replayer_replay(weft_replayer *r, const weft_event *events, uint32_t events_count,
                         weft_err *err);

WEFT_END_DECLS

#endif
