/* worker.c: the bench's worker: pollers that run the bench workflow (K sequential activities,
 * an optional timer, then CompleteWorkflow) and complete every activity at once, timing each
 * workflow task's round trip and each completion call. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench.h"

/* After a failed call, a pause keeps a poller from spinning on a server that refuses work. */
#define WORKER_ERROR_PAUSE_MS 50u
/* The bench activity's result. */
#define WORKER_ACTIVITY_RESULT "ok"

/* One poller thread: what it polls and the stats it merges into the pool when it ends. */
typedef struct worker_thread {
    bench_workers *pool;              /* owner */
    bool workflow_tasks;              /* true: workflow tasks; false: activity tasks */
    uint32_t index;                   /* within its kind, for the client's name */
    weft_client *c;                   /* this thread's own client */
    bench_latency rtt;                /* workflow task round trips */
    bench_latency complete;           /* completion calls */
    bench_latency dispatch;           /* activity tasks: scheduled (shard clock) -> poll answered */
    bench_errors errors;              /* failed calls */
    char activity_id[BENCH_ID_BYTES]; /* the command being sent borrows it */
} worker_thread;

/* What the history says about the bench workflow's progress. */
typedef struct worker_progress {
    uint32_t scheduled;        /* ActivityTaskScheduled events */
    uint32_t completed;        /* ActivityTaskCompleted events */
    bool timer_started;        /* TimerStarted seen */
    bool timer_fired;          /* TimerFired seen */
    uint64_t wft_scheduled_ms; /* event time of this task's WorkflowTaskScheduled, 0 if unseen */
} worker_progress;

static worker_progress worker_read(const weft_poll_wft_resp *t) {
    worker_progress p = {0};
    for (uint32_t i = 0; i < t->events_count; i++) {
        const weft_event *e = &t->events[i];
        p.scheduled += e->event_type == WEFT_EV_ACTIVITY_TASK_SCHEDULED;
        p.completed += e->event_type == WEFT_EV_ACTIVITY_TASK_COMPLETED;
        p.timer_started |= e->event_type == WEFT_EV_TIMER_STARTED;
        p.timer_fired |= e->event_type == WEFT_EV_TIMER_FIRED;
        if (e->event_id == t->scheduled_event_id) p.wft_scheduled_ms = e->event_time_ms;
    }
    WEFT_ASSERT(p.completed <= p.scheduled);
    return p;
}

/* The bench workflow, decided from state alone, so any task (a retry, a replay) gets the right
 * commands. Returns the number of commands written to cmd (room for one). */
static uint32_t worker_decide(worker_thread *th, const worker_progress *p, weft_command *cmd) {
    const bench_config *cfg = th->pool->cfg;
    if (th->pool->never_complete) return 0;
    if (p->completed < cfg->activities) {
        if (p->scheduled > p->completed) return 0; /* the activity is running */
        snprintf(th->activity_id, sizeof th->activity_id, "a%u", p->completed + 1u);
        *cmd = (weft_command){
            .type = WEFT_CMD_SCHEDULE_ACTIVITY,
            .activity_id = weft_str_c(th->activity_id),
            .activity_type = WEFT_STR_LIT("bench-activity"),
            .start_to_close_timeout_ms = BENCH_ACTIVITY_TIMEOUT_MS,
        };
        return 1;
    }
    if (cfg->timer_ms > 0 && !p->timer_fired) {
        if (p->timer_started) return 0;
        *cmd = (weft_command){.type = WEFT_CMD_START_TIMER,
                              .timer_id = WEFT_STR_LIT("t"),
                              .start_to_fire_timeout_ms = cfg->timer_ms};
        return 1;
    }
    *cmd = (weft_command){.type = WEFT_CMD_COMPLETE_WORKFLOW,
                          .result = {.ptr = (const uint8_t *)"done", .len = 4}};
    return 1;
}

static void worker_failed(worker_thread *th, int rc, const weft_err *err) {
    bench_errors_add(&th->errors, rc, err);
    bench_sleep_ms(WORKER_ERROR_PAUSE_MS);
}

/* Decides a polled workflow task and completes it, timing the completion and the round trip.
 * Returns 0 or the error to count. */
static int worker_answer_wft(worker_thread *th, const weft_poll_wft_resp *t, weft_err *err) {
    WEFT_ASSERT(t->task_token.len > 0);
    if (t->next_event_id > 0 && !th->pool->never_complete) {
        /* A partial history would make the decision wrong: leave the task to time out (the
         * limits in bench.h keep this from happening with weftd's default frame size). */
        return weft_err_set(err, WEFT_E_RESOURCE_EXHAUSTED, "events",
                            "the history of %.*s did not fit in one poll reply; use fewer "
                            "--activities or a larger weftd --frame-bytes-max",
                            (int)t->workflow_id.len, t->workflow_id.ptr);
    }
    worker_progress p = worker_read(t);
    weft_command cmd;
    weft_complete_wft_req done = {.task_token = t->task_token, .commands = &cmd};
    done.commands_count = worker_decide(th, &p, &cmd);
    uint64_t t0_us = bench_now_us();
    int rc = weft_client_complete_workflow_task(th->c, &done, err);
    if (rc != 0) return rc;
    bench_latency_add(&th->complete, bench_now_us() - t0_us);
    uint64_t now_ms = weft_wall_ms(); /* same host: the shard clock is this wall clock */
    if (p.wft_scheduled_ms > 0 && now_ms >= p.wft_scheduled_ms)
        bench_latency_add(&th->rtt, (now_ms - p.wft_scheduled_ms) * 1000u);
    atomic_fetch_add(&th->pool->wft_completed, 1);
    return 0;
}

static void worker_one_wft(worker_thread *th, const weft_poll_req *poll) {
    weft_response h = {0};
    weft_poll_wft_resp t;
    weft_err err;
    int rc = weft_client_poll_workflow_task(th->c, poll, &t, &h, &err);
    if (rc == 0 && t.task_token.len == 0) {
        atomic_fetch_add(&th->pool->empty_polls, 1);
    } else if (rc == 0) {
        rc = worker_answer_wft(th, &t, &err);
    }
    weft_response_free(&h);
    if (rc != 0) worker_failed(th, rc, &err);
}

/* Completes a polled activity task at once, timing its dispatch and the completion call.
 * Returns 0 or the error to count. */
static int worker_answer_act(worker_thread *th, const weft_poll_activity_resp *t, weft_err *err) {
    WEFT_ASSERT(t->task_token.len > 0);
    /* Measured with the bench's own clock, not t->started_time_ms, so that the figure does not
     * depend on the server's clock. */
    uint64_t now_ms = weft_wall_ms();
    if (t->scheduled_time_ms > 0 && now_ms >= t->scheduled_time_ms)
        bench_latency_add(&th->dispatch, (now_ms - t->scheduled_time_ms) * 1000u);
    weft_activity_req done = {
        .task_token = t->task_token,
        .result = {.ptr = (const uint8_t *)WORKER_ACTIVITY_RESULT,
                   .len = sizeof WORKER_ACTIVITY_RESULT - 1},
    };
    uint64_t t0_us = bench_now_us();
    int rc = weft_client_complete_activity(th->c, &done, err);
    if (rc != 0) return rc;
    bench_latency_add(&th->complete, bench_now_us() - t0_us);
    atomic_fetch_add(&th->pool->act_completed, 1);
    return 0;
}

static void worker_one_act(worker_thread *th, const weft_poll_req *poll) {
    weft_response h = {0};
    weft_poll_activity_resp t;
    weft_err err;
    int rc = weft_client_poll_activity_task(th->c, poll, &t, &h, &err);
    if (rc == 0 && t.task_token.len == 0) {
        atomic_fetch_add(&th->pool->empty_polls, 1);
    } else if (rc == 0) {
        rc = worker_answer_act(th, &t, &err);
    }
    weft_response_free(&h);
    if (rc != 0) worker_failed(th, rc, &err);
}

/* Merges a finished thread's stats into the pool. */
static void worker_merge(worker_thread *th) {
    bench_workers *w = th->pool;
    pthread_mutex_lock(&w->mu);
    if (th->workflow_tasks) {
        bench_latency_merge(&w->wft_rtt, &th->rtt);
        bench_latency_merge(&w->wft_complete, &th->complete);
    } else {
        bench_latency_merge(&w->act_complete, &th->complete);
        bench_latency_merge(&w->act_dispatch, &th->dispatch);
    }
    bench_errors_merge(&w->errors, &th->errors);
    pthread_mutex_unlock(&w->mu);
}

static void *worker_main(void *arg) {
    worker_thread *th = arg;
    WEFT_ASSERT(th->pool != NULL && th->c != NULL);
    weft_poll_req poll = {.task_queue = weft_str_c(th->pool->cfg->task_queue),
                          .poll_timeout_ms = BENCH_POLL_MS};
    while (!atomic_load(&th->pool->stop) && !atomic_load(&bench_stop)) {
        if (th->workflow_tasks) {
            worker_one_wft(th, &poll);
        } else {
            worker_one_act(th, &poll);
        }
    }
    worker_merge(th);
    weft_client_close(th->c);
    free(th);
    return NULL;
}

/* Starts one poller of the given kind. Returns 0 or -1 (printed). */
static int worker_spawn(bench_workers *w, bool workflow_tasks, uint32_t index, pthread_t *tid) {
    worker_thread *th = calloc(1, sizeof *th);
    if (th == NULL) return -1;
    *th = (worker_thread){.pool = w, .workflow_tasks = workflow_tasks, .index = index};
    char name[BENCH_ID_BYTES];
    snprintf(name, sizeof name, "bench-%s-worker-%u", workflow_tasks ? "wft" : "act", index);
    if (bench_client_open(w->cfg, name, &th->c) != 0) {
        free(th);
        return -1;
    }
    if (pthread_create(tid, NULL, worker_main, th) != 0) {
        fprintf(stderr, "weft-bench: cannot start %s\n", name);
        weft_client_close(th->c);
        free(th);
        return -1;
    }
    return 0;
}

int bench_workers_start(bench_workers *w, const bench_config *cfg, bool never_complete) {
    WEFT_ASSERT(w != NULL && cfg != NULL);
    WEFT_ASSERT(cfg->workers > 0 && cfg->workers <= BENCH_WORKERS_MAX);
    memset(w, 0, sizeof *w);
    w->cfg = cfg;
    w->never_complete = never_complete;
    pthread_mutex_init(&w->mu, NULL);
    for (uint32_t i = 0; i < cfg->workers; i++) {
        if (worker_spawn(w, true, i, &w->wft_threads[i]) != 0) goto stop_started;
        w->wft_threads_count++;
        if (worker_spawn(w, false, i, &w->act_threads[i]) != 0) goto stop_started;
        w->act_threads_count++;
    }
    return 0;
stop_started:
    bench_workers_stop(w);
    return -1;
}

void bench_workers_stop(bench_workers *w) {
    WEFT_ASSERT(w != NULL);
    atomic_store(&w->stop, true);
    for (uint32_t i = 0; i < w->wft_threads_count; i++)
        pthread_join(w->wft_threads[i], NULL);
    for (uint32_t i = 0; i < w->act_threads_count; i++)
        pthread_join(w->act_threads[i], NULL);
    w->wft_threads_count = 0;
    w->act_threads_count = 0;
    WEFT_ASSERT(atomic_load(&w->stop));
}
