/* helper_worker.h: a tiny scripted worker for integration tests of the server: a test decides a
 * workflow's next commands by reading the history events of the polled task, with no SDK in
 * between (the SDK has its own tests: test_worker_*, test_sdk_*, test_example_*). */
#ifndef WEFT_TESTS_HELPER_WORKER_H
#define WEFT_TESTS_HELPER_WORKER_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "proto/msg.h" /* tests see the tree's internals: schemas, limits, WEFT_ASSERT */
#include "weft/client.h"

/* Pages one wk_history may hold; WEFT_HISTORY_PAGE_EVENTS_DEFAULT events each. */
#define WK_HISTORY_PAGES_MAX 64u
/* Commands one scripted decision may produce. */
#define WK_COMMANDS_MAX 8u

/* ---- Polling and completing ---- */

/* Polls a workflow task on `queue` for up to timeout_ms. Returns 1 with *t filled (borrowing
 * from h), 0 when the poll came back empty, or a negative error. */
int wk_poll_wft(weft_client *c, const char *queue, uint64_t timeout_ms, weft_poll_wft_resp *t,
                weft_response *h, weft_err *err);
/* The same for activity tasks. */
int wk_poll_act(weft_client *c, const char *queue, uint64_t timeout_ms, weft_poll_activity_resp *t,
                weft_response *h, weft_err *err);
/* CompleteWorkflowTask for task t with `n` commands (no sticky queue: every task carries the
 * full history). */
int wk_complete_wft(weft_client *c, const weft_poll_wft_resp *t, const weft_command *cmds,
                    uint32_t n, weft_err *err);
/* CompleteActivity with a string result / FailActivity with a failure type and message. */
int wk_complete_act(weft_client *c, const weft_poll_activity_resp *t, const char *result,
                    weft_err *err);
int wk_fail_act(weft_client *c, const weft_poll_activity_resp *t, const char *type,
                const char *message, weft_err *err);

/* ---- Command builders (strings are borrowed: keep them alive until the completion) ---- */

weft_command wk_cmd_activity(const char *activity_id, const char *activity_type, const char *input,
                             uint64_t start_to_close_ms, const weft_retry_policy *retry);
weft_command wk_cmd_timer(const char *timer_id, uint64_t fire_after_ms);
weft_command wk_cmd_complete(const char *result);

/* ---- Reading a history (events borrowed from a poll or a wk_history) ---- */

/* The first event of `type` (and, when id is not NULL, for that activity id, timer id or
 * signal name); NULL if none. Activity outcome events are matched through their
 * scheduled_event_id, timer events through timer_id or started_event_id. */
const weft_event *wk_find(const weft_event *ev, uint32_t n, uint32_t type, const char *id);
/* Events of `type` (and id, as wk_find). */
uint32_t wk_count(const weft_event *ev, uint32_t n, uint32_t type, const char *id);
/* True when the activity's final outcome (completed, failed, timed out, canceled) is recorded. */
bool wk_activity_closed(const weft_event *ev, uint32_t n, const char *activity_id);

/* ---- Whole histories ---- */

/* A run's full history, paged in through GetHistory; events borrow from the held pages. */
typedef struct wk_history {
    weft_event *events;                        /* malloc'd struct copies */
    uint32_t count;                            /* entries in events */
    weft_response pages[WK_HISTORY_PAGES_MAX]; /* holders the events borrow from */
    uint32_t pages_count;                      /* holders used */
    bool closed;                               /* the run is closed */
} wk_history;

/* Reads every event of (default namespace, workflow_id, run_id or current run). Returns 0 or a
 * negative error. Free with wk_history_free even on failure. */
int wk_history_get(weft_client *c, const char *workflow_id, const char *run_id, wk_history *h,
                   weft_err *err);
void wk_history_free(wk_history *h);
/* Encodes every event (schema order, deterministic) into one malloc'd buffer, for comparing
 * histories byte for byte. Returns 0 or -1. */
int wk_history_encode(const wk_history *h, uint8_t **buf, size_t *len);
/* What a restart must give back for one run: its describe response and its whole history,
 * both encoded (deterministically), so they compare byte for byte. */
typedef struct wk_capture {
    uint8_t *describe;   /* encoded DescribeWorkflow response (malloc'd) */
    size_t describe_len; /* bytes */
    uint8_t *history;    /* encoded event list (malloc'd) */
    size_t history_len;  /* bytes */
} wk_capture;

/* Captures (default namespace, workflow_id, run_id). Returns 0, or the failing call's error
 * (printed to stderr with the workflow id). `cap` must be zeroed or freed first. */
int wk_capture_run(weft_client *c, const char *workflow_id, const char *run_id, wk_capture *cap,
                   weft_err *err);
bool wk_capture_equal(const wk_capture *a, const wk_capture *b);
void wk_capture_free(wk_capture *cap);

/* Prints "id type attempt" per event, for failure messages. */
void wk_history_print(const weft_event *ev, uint32_t n);

/* ---- The standard script and a threaded worker pool ---- */

/* Worker threads one pool may run. */
#define WK_POOL_THREADS_MAX 16u
/* Long-poll time of pool threads: short, so that stop is quick. */
#define WK_POOL_POLL_MS 300u
/* Activity start-to-close in the standard script: a dispatch lost in a crash is retried after
 * this long. */
#define WK_SCRIPT_ACTIVITY_TIMEOUT_MS 3000u

/* The standard script, configured by the workflow input "timer_ms=N;signals=K": activity a1,
 * then timer t1 of N ms, then activity a2, then wait until K signals named "sig" arrived, then
 * complete with result "ok". State-based: any task, replayed or not, gets the right commands.
 * Thread-safe. Returns the number of commands written to cmds (WK_COMMANDS_MAX room). */
uint32_t wk_script_decide(const weft_poll_wft_resp *t, weft_command *cmds);
/* Formats the input of the standard script into buf. */
void wk_script_input(char *buf, size_t cap, uint64_t timer_ms, uint32_t signals);

/* Threads that poll one task queue and run the standard script: even-numbered threads take
 * workflow tasks, odd-numbered ones activity tasks (which always succeed). Errors (a crash
 * in the middle, stale tasks) are counted, not fatal. */
typedef struct wk_pool {
    weft_client *c;                         /* shared by every thread; borrowed */
    const char *queue;                      /* task queue; borrowed */
    uint64_t node_id;                       /* polls pinned to this node; 0: the client's pick */
    pthread_t threads[WK_POOL_THREADS_MAX]; /* running threads */
    unsigned threads_count;                 /* entries used in threads */
    atomic_bool stop;                       /* set by wk_pool_stop */
    atomic_uint_fast64_t wft_completed;     /* workflow tasks completed */
    atomic_uint_fast64_t act_completed;     /* activity tasks completed */
    atomic_uint_fast64_t errors;            /* failed calls */
} wk_pool;

/* Starts `threads` threads (<= WK_POOL_THREADS_MAX). Returns 0 or -1. */
int wk_pool_start(wk_pool *p, weft_client *c, const char *queue, unsigned threads);
/* The same, with every poll pinned to node `node_id` (weft_client_poll_*_on), as a cluster's
 * workers must: a node hands out only the tasks of the shards it leads, and an unpinned poll
 * stays on whichever node answered last, so it would not come back to a node that restarted
 * and took leaderships back. */
int wk_pool_start_on(wk_pool *p, weft_client *c, const char *queue, unsigned threads,
                     uint64_t node_id);
/* Stops and joins the threads (each finishes its current poll first). */
void wk_pool_stop(wk_pool *p);
/* Activities completed across `count` pools. */
uint64_t wk_pools_activities(const wk_pool *pools, unsigned count);
/* Prints each pool's counters, pool k as "worker on node k+1" (one pool per node). */
void wk_pools_print(const wk_pool *pools, unsigned count);

/* ---- Driving runs of the standard script to the end (crash and failover tests) ---- */

/* Starts a run with request s, re-sending the same request (so the same request id) after
 * every failure until it is acknowledged (G4); each failure is printed and counted in
 * *resends. Copies the acknowledged run id into run_id (cap bytes). */
void wk_start_acked(weft_client *c, const weft_start_req *s, char *run_id, size_t cap,
                    atomic_uint *resends);
/* Waits, through long-polled results, until workflow_id's current run completes: that run
 * must be run_id (G1/G4) and running until then. Returns 0, or -1 having said why on stderr
 * (with the run's history once deadline_ms, on the weft_mono_ms clock, has passed). */
int wk_await_completed(weft_client *c, const char *workflow_id, const char *run_id,
                       uint64_t deadline_ms);
/* True when the closed history h of a standard-script run keeps the invariants every such run
 * keeps: event ids dense from 1, timer t1 fired no earlier than its TimerStarted time plus its
 * duration (G6), two activities completed, one WorkflowExecutionCompleted and that one last.
 * Then sets *timer_due_ms and *timer_fired_ms when they are not NULL. */
bool wk_script_history_ok(const wk_history *h, uint64_t *timer_due_ms, uint64_t *timer_fired_ms);

#endif
