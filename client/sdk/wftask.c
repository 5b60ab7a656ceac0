/* wftask.c: the workflow side of a worker (DESIGN sections 7 "Workflow task", 8 and 11): threads
 * that poll the shared queue and this worker's sticky queue, each pinned to one node of the
 * cluster, and the processing of one workflow task: pick the cached run or replay the full
 * history on a fresh one, feed the new events to the engine (engine.h), and complete or fail
 * the task with what the code produced. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "worker_internal.h"

/* Events one task may need fed at once: twenty times the server's default history limit (the
 * limit is configurable), and a bound on the array a corrupt started_event_id could ask for. */
#define WFT_EVENTS_MAX (1024u * 1024u)
/* History page holders reserved at first; the array doubles as pages arrive. */
#define WFT_PAGES_INITIAL 8u
/* Causes and failure types this file reports with FailWorkflowTask (the engine's own causes,
 * "non-determinism", "panic" and "resource-exhausted", come in wfe_task_result). */
#define WFT_CAUSE_UNKNOWN_TYPE "unknown-workflow-type"
#define WFT_FAILURE_UNKNOWN_TYPE "UnknownWorkflowType"
#define WFT_CAUSE_RESOURCE "resource-exhausted"
#define WFT_CAUSE_WORKER "worker-error"
#define WFT_FAILURE_WORKER "WorkerError"

/* One workflow task being processed, and the memory its events borrow from. */
typedef struct wft_job {
    weft_worker *w;              /* the worker */
    const weft_poll_wft_resp *t; /* the polled task, borrowed from the poll's holder */
    const weft_event *events;    /* what to feed: t->events or `owned` */
    uint32_t events_count;       /* entries in events */
    weft_event *owned;           /* gathered copy (malloc'd), NULL when t->events is fed as is */
    weft_response *pages;        /* GetHistory holders the gathered events borrow from */
    uint32_t pages_count;        /* holders used */
    uint32_t pages_cap;          /* holders allocated */
    uint64_t ticket;             /* hold on the run's cache key, 0 when none */
} wft_job;

/* Names the run in log lines. */
#define WFT_LOG_FMT "workflow %.*s (run %.*s, type %.*s, task attempt %u)"
#define WFT_LOG_ARGS(t)                                                                            \
    (int)(t)->workflow_id.len, (t)->workflow_id.ptr, (int)(t)->run_id.len, (t)->run_id.ptr,        \
        (int)(t)->workflow_type.len, (t)->workflow_type.ptr, (t)->attempt

/* Frees what the job's events borrow from; the job may gather again afterwards. */
static void wft_job_release(wft_job *j) {
    for (uint32_t i = 0; i < j->pages_count; i++)
        weft_response_free(&j->pages[i]);
    free(j->pages);
    free(j->owned);
    j->pages = NULL;
    j->pages_count = j->pages_cap = 0;
    j->owned = NULL;
    j->events = NULL;
    j->events_count = 0;
}

/* ---- Gathering the events to feed ---- */

/* A zeroed holder for one more history page, or NULL when out of memory. */
static weft_response *wft_page_new(wft_job *j) {
    if (j->pages_count == j->pages_cap) {
        uint32_t cap = j->pages_cap ? j->pages_cap * 2 : WFT_PAGES_INITIAL;
        weft_response *grown = realloc(j->pages, (size_t)cap * sizeof *grown);
        if (grown == NULL) return NULL;
        j->pages = grown;
        j->pages_cap = cap;
    }
    weft_response *h = &j->pages[j->pages_count++];
    memset(h, 0, sizeof *h);
    return h;
}

/* Appends the events of `evs` from id *next up to (excluding) `end` to j->owned, which has
 * room for `cap`; ids must be dense. Events below *next are skipped (already there). */
static int wft_append(wft_job *j, uint32_t cap, uint64_t *next, uint64_t end, const weft_event *evs,
                      uint32_t n, weft_err *err) {
    for (uint32_t i = 0; i < n && *next < end; i++) {
        uint64_t id = evs[i].event_id;
        if (id < *next) continue;
        if (id != *next) {
            return weft_err_set(err, WEFT_E_INTERNAL, "events",
                                "history has a gap: event %llu follows event %llu",
                                (unsigned long long)id, (unsigned long long)(*next - 1));
        }
        WEFT_ASSERT(j->events_count < cap);
        j->owned[j->events_count++] = evs[i];
        (*next)++;
    }
    return 0;
}

/* Reads history pages of the run from id *next up to (excluding) `end` into j->owned. */
static int wft_fetch(wft_job *j, uint32_t cap, uint64_t *next, uint64_t end, weft_err *err) {
    const weft_poll_wft_resp *t = j->t;
    while (*next < end) {
        weft_response *h = wft_page_new(j);
        if (h == NULL) return weft_err_set(err, WEFT_E_RESOURCE_EXHAUSTED, "", "out of memory");
        weft_history_req req = {
            .namespace_ = weft_str_c(j->w->namespace_),
            .workflow_id = t->workflow_id,
            .run_id = t->run_id,
            .first_event_id = *next,
        };
        weft_history_resp page;
        int rc = weft_client_history(j->w->client, &req, &page, h, err);
        if (rc != 0) {
            weft_err_prefix(err, "GetHistory from event %llu: ", (unsigned long long)*next);
            return rc;
        }
        uint64_t before = *next;
        rc = wft_append(j, cap, next, end, page.events, page.events_count, err);
        if (rc != 0) return rc;
        if (*next == before) {
            return weft_err_set(err, WEFT_E_INTERNAL, "", "history ends before event %llu",
                                (unsigned long long)*next);
        }
    }
    return 0;
}

/* Checks that the events to feed run densely from `from` to the task's WorkflowTaskStarted. */
static int wft_check_dense(const wft_job *j, uint64_t from, weft_err *err) {
    uint64_t last = j->t->started_event_id;
    bool ok = j->events_count == last - from + 1;
    for (uint32_t i = 0; ok && i < j->events_count; i++)
        ok = j->events[i].event_id == from + i;
    if (ok) return 0;
    return weft_err_set(err, WEFT_E_INTERNAL, "events",
                        "the task's events do not run from %llu to its started event %llu",
                        (unsigned long long)from, (unsigned long long)last);
}

/* Collects the task's events from id `from` to started_event_id into j->events. The response
 * holds them all when it is complete (not sticky, next_event_id 0). Otherwise the missing parts
 * come from GetHistory: [from, first event of the response) on a sticky miss, and
 * [next_event_id, ...) when the response was cut short; events of the response at or after
 * next_event_id are synthetic (a transient task's Scheduled/Started) and go last. */
static int wft_gather(wft_job *j, uint64_t from, weft_err *err) {
    const weft_poll_wft_resp *t = j->t;
    wft_job_release(j);
    WEFT_ASSERT(from >= 1);
    if (t->started_event_id < from || t->started_event_id - from + 1 > WFT_EVENTS_MAX) {
        return weft_err_set(err, WEFT_E_INTERNAL, "started_event_id",
                            "the task's started event %llu cannot follow event %llu",
                            (unsigned long long)t->started_event_id,
                            (unsigned long long)(from - 1));
    }
    if (t->next_event_id == 0 && t->events_count > 0 && t->events[0].event_id == from) {
        j->events = t->events;
        j->events_count = t->events_count;
        return wft_check_dense(j, from, err);
    }
    uint32_t cap = (uint32_t)(t->started_event_id - from + 1);
    j->owned = malloc((size_t)cap * sizeof *j->owned);
    if (j->owned == NULL) return weft_err_set(err, WEFT_E_RESOURCE_EXHAUSTED, "", "out of memory");
    uint32_t split = t->events_count; /* events before it are real history */
    while (t->next_event_id != 0 && split > 0 && t->events[split - 1].event_id >= t->next_event_id)
        split--;
    uint64_t end = t->started_event_id + 1, next = from;
    uint64_t head_first = split > 0 ? t->events[0].event_id
                                    : (split < t->events_count ? t->events[split].event_id : end);
    int rc = wft_fetch(j, cap, &next, head_first, err);
    if (rc == 0) rc = wft_append(j, cap, &next, end, t->events, split, err);
    if (rc == 0 && t->next_event_id != 0) {
        uint64_t tail_first = split < t->events_count ? t->events[split].event_id : end;
        rc = wft_fetch(j, cap, &next, tail_first, err);
        if (rc == 0) {
            rc = wft_append(j, cap, &next, end, t->events + split, t->events_count - split, err);
        }
    }
    j->events = j->owned;
    return rc != 0 ? rc : wft_check_dense(j, from, err);
}

/* ---- Reporting ---- */

/* FailWorkflowTask: the server retries the task with backoff, and describe shows why. */
static void wft_fail(wft_job *j, const char *cause, const weft_failure *f) {
    const weft_poll_wft_resp *t = j->t;
    weft_worker *w = j->w;
    wkr_log(w, WFT_LOG_FMT ": workflow task failed: %s: %.*s: %.*s", WFT_LOG_ARGS(t), cause,
            (int)f->type.len, f->type.ptr, (int)f->message.len, f->message.ptr);
    weft_fail_wft_req req = {
        .namespace_ = weft_str_c(w->namespace_),
        .task_token = t->task_token,
        .identity = weft_str_c(w->identity),
        .cause = weft_str_c(cause),
        .failure = *f,
    };
    weft_err err;
    int rc = weft_client_fail_workflow_task(w->client, &req, &err);
    if (rc == 0) {
        atomic_fetch_add(&w->counters.workflow_tasks_failed, 1);
    } else {
        wkr_log(w, WFT_LOG_FMT ": FailWorkflowTask refused: %s: %s", WFT_LOG_ARGS(t),
                weft_error_name(rc), err.message);
    }
}

/* Fails the task with the SDK's own failure (`type`, `message` copied and made valid UTF-8). */
static void wft_fail_text(wft_job *j, const char *cause, const char *type, const char *message) {
    char text[WEFT_FAILURE_MESSAGE_BYTES_MAX];
    size_t len = wkr_text_copy(text, sizeof text, message, strlen(message));
    weft_failure f = {.type = weft_str_c(type), .message = {.ptr = text, .len = (uint32_t)len}};
    wft_fail(j, cause, &f);
}

static void wft_fail_unknown_type(wft_job *j) {
    const weft_poll_wft_resp *t = j->t;
    weft_worker *w = j->w;
    char msg[WEFT_FAILURE_MESSAGE_BYTES_MAX];
    wkr_text_format(
        msg, sizeof msg,
        "workflow type '%.*s' is not registered on worker %s (task queue %s); register it "
        "with weft_worker_register_workflow on the workers of this task queue, or start the "
        "workflow on a task queue whose workers have it",
        (int)t->workflow_type.len, t->workflow_type.ptr, w->identity, w->task_queue);
    wft_fail_text(j, WFT_CAUSE_UNKNOWN_TYPE, WFT_FAILURE_UNKNOWN_TYPE, msg);
}

/* Completes the task with the new commands, then keeps the run in the cache (stickiness) or
 * frees it. Owns `run`. */
static void wft_complete(wft_job *j, wfe_run *run, const wfe_task_result *res) {
    const weft_poll_wft_resp *t = j->t;
    weft_worker *w = j->w;
    bool keep = w->cache != NULL && !res->closes && !wfe_run_closed(run);
    weft_complete_wft_req req = {
        .namespace_ = weft_str_c(w->namespace_),
        .task_token = t->task_token,
        .identity = weft_str_c(w->identity),
        .commands = res->commands,
        .commands_count = res->commands_count,
        .sticky_queue = keep ? weft_str_c(w->sticky_queue) : (weft_str){0},
    };
    weft_err err;
    int rc = weft_client_complete_workflow_task(w->client, &req, &err);
    if (rc != 0) {
        /* UNHANDLED_EVENTS, a stale task, the server gone: the next task replays in full. */
        wkr_log(w, WFT_LOG_FMT ": CompleteWorkflowTask refused: %s: %s", WFT_LOG_ARGS(t),
                weft_error_name(rc), err.message);
        wfe_run_free(run);
        return;
    }
    atomic_fetch_add(&w->counters.workflow_tasks_completed, 1);
    if (keep) {
        /* The run's next task may already wait in wkr_cache_take for this. */
        (void)wkr_cache_put(w->cache, t->run_id, j->ticket, run);
        j->ticket = 0;
    } else {
        wfe_run_free(run);
    }
}

/* ---- Feeding ---- */

/* Feeds the task to the cached run (taken from the cache, may be NULL) when it is the
 * continuation the server expects; returns the run, or NULL when the task must replay the full
 * history (the cached run is freed then). */
static wfe_run *wft_feed_cached(wft_job *j, wfe_run *run, wfe_task_result *res) {
    const weft_poll_wft_resp *t = j->t;
    if (run == NULL) return NULL;
    uint64_t next = wfe_run_next_event_id(run);
    if (!t->sticky || next != t->previous_started_event_id + 1) {
        wfe_run_free(run); /* the server moved on without this copy (fallback, a failed task) */
        return NULL;
    }
    weft_err err;
    int rc = wft_gather(j, next, &err);
    if (rc == 0) rc = wfe_run_feed(run, j->events, j->events_count, t->started_event_id, res, &err);
    if (rc == 0) return run;
    if (rc != -WEFT_E_INVALID_ARGUMENT) {
        wkr_log(j->w, WFT_LOG_FMT ": feeding the cached run failed (%s: %s); replaying in full",
                WFT_LOG_ARGS(t), weft_error_name(rc), err.message);
    }
    wfe_run_free(run);
    return NULL;
}

/* The workflow's own task queue, from its WorkflowExecutionStarted event: a sticky task's
 * queue is this worker's sticky queue, which the code must never see. */
static weft_str wft_workflow_queue(const wft_job *j) {
    const weft_event *first = j->events_count > 0 ? &j->events[0] : NULL;
    if (first != NULL && first->event_type == WEFT_EV_WORKFLOW_EXECUTION_STARTED &&
        first->task_queue.len > 0) {
        return first->task_queue;
    }
    return weft_str_c(j->w->task_queue);
}

/* Replays the full history on a fresh run; returns the run, or NULL when the task was failed
 * or dropped (logged). */
static wfe_run *wft_feed_fresh(wft_job *j, const wkr_type *reg, wfe_task_result *res) {
    const weft_poll_wft_resp *t = j->t;
    weft_worker *w = j->w;
    weft_err err;
    int rc = wft_gather(j, 1, &err);
    if (rc != 0) {
        /* Most likely the server is unreachable: the task times out and is dispatched again. */
        wkr_log(w, WFT_LOG_FMT ": cannot read the history: %s: %s; dropping the task",
                WFT_LOG_ARGS(t), weft_error_name(rc), err.message);
        return NULL;
    }
    wfe_run_params p = {
        .namespace_ = weft_str_c(w->namespace_),
        .workflow_id = t->workflow_id,
        .run_id = t->run_id,
        .workflow_type = t->workflow_type,
        .task_queue = wft_workflow_queue(j),
        .fn = reg->wf_fn,
        .arg = reg->arg,
        .stack_bytes = w->wf_stack_bytes,
    };
    wfe_run *run = NULL;
    rc = wfe_run_new(&p, &run, &err);
    if (rc != 0) {
        wft_fail_text(j, rc == -WEFT_E_RESOURCE_EXHAUSTED ? WFT_CAUSE_RESOURCE : WFT_CAUSE_WORKER,
                      WFT_FAILURE_WORKER, err.message);
        return NULL;
    }
    rc = wfe_run_feed(run, j->events, j->events_count, t->started_event_id, res, &err);
    if (rc != 0) {
        wfe_run_free(run);
        wft_fail_text(j, WFT_CAUSE_WORKER, WFT_FAILURE_WORKER, err.message);
        return NULL;
    }
    return run;
}

static void wft_process(weft_worker *w, const weft_poll_wft_resp *t) {
    wft_job j = {.w = w, .t = t};
    const wkr_type *reg = wkr_workflow_find(w, t->workflow_type);
    if (reg == NULL) {
        wft_fail_unknown_type(&j);
        return;
    }
    /* Hold the run's key for the whole task, cached run or not: the run's next task waits for
     * this one to put the run back instead of replaying it. */
    void *cached = NULL;
    if (w->cache != NULL && t->run_id.len > 0) {
        j.ticket = wkr_cache_take(w->cache, t->run_id, WKR_CACHE_TAKE_WAIT_MS, &cached);
    }
    wfe_task_result res;
    memset(&res, 0, sizeof res);
    wfe_run *run = wft_feed_cached(&j, cached, &res);
    bool hit = run != NULL;
    if (run == NULL) run = wft_feed_fresh(&j, reg, &res);
    if (run != NULL) {
        atomic_fetch_add(hit ? &w->counters.sticky_hits : &w->counters.sticky_misses, 1);
        if (res.failed) {
            /* Non-determinism or a misuse: the run is poisoned; a fixed deploy replays it. */
            wft_fail(&j, res.cause != NULL ? res.cause : WFT_CAUSE_WORKER, &res.failure);
            wfe_run_free(run);
        } else {
            wft_complete(&j, run, &res);
        }
    }
    if (j.ticket != 0) wkr_cache_release(w->cache, t->run_id, j.ticket);
    wft_job_release(&j);
}

/* ---- Threads ---- */

/* Waits for one of the worker's workflow_concurrency processing slots. Polls are not limited,
 * only processing: a sticky task must not wait in its queue behind shared-queue long-polls. */
static void wft_slot_acquire(weft_worker *w) {
    while (sem_wait(&w->wft_slots) != 0) {
        WEFT_ASSERT(errno == EINTR); /* a signal; anything else is a bug */
    }
}

static int wft_poll(weft_worker *w, const wkr_node *n, const weft_poll_req *req,
                    weft_poll_wft_resp *task, weft_response *h, weft_err *err) {
    if (n->node_id == 0) return weft_client_poll_workflow_task(w->client, req, task, h, err);
    return weft_client_poll_workflow_task_on(w->client, n->node_id, req, task, h, err);
}

void *wkr_wft_thread_main(void *arg) {
    wkr_thread *th = arg;
    weft_worker *w = th->w;
    wkr_node *node = th->node;
    WEFT_ASSERT(th->role == WKR_ROLE_WFT_SHARED || th->role == WKR_ROLE_WFT_STICKY);
    WEFT_ASSERT(node != NULL);
    const char *queue = th->role == WKR_ROLE_WFT_STICKY ? w->sticky_queue : w->task_queue;
    WEFT_ASSERT(queue[0] != '\0');
    weft_poll_req req = {
        .namespace_ = weft_str_c(w->namespace_),
        .task_queue = weft_str_c(queue),
        .identity = weft_str_c(w->identity),
        .poll_timeout_ms = w->poll_timeout_ms,
    };
    uint32_t backoff_ms = 0;
    while (!wkr_stopping(w)) {
        weft_response h = {0};
        weft_poll_wft_resp task;
        weft_err err;
        int rc = wft_poll(w, node, &req, &task, &h, &err);
        if (rc != 0) {
            weft_response_free(&h);
            wkr_poll_failed(w, node, "workflow", queue, rc, &err, &backoff_ms);
            continue;
        }
        wkr_poll_ok(w, node, &backoff_ms);
        /* A task received is processed and reported even when a stop came meanwhile (drain). */
        if (task.task_token.len > 0) {
            wft_slot_acquire(w);
            wft_process(w, &task);
            sem_post(&w->wft_slots);
        }
        weft_response_free(&h);
    }
    return NULL;
}
