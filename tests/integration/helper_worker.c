/* helper_worker.c: the scripted test worker: polls, completions, command builders and history
 * queries. */
#include "helper_worker.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

int wk_poll_wft(weft_client *c, const char *queue, uint64_t timeout_ms, weft_poll_wft_resp *t,
                weft_response *h, weft_err *err) {
    weft_poll_req req = {.task_queue = weft_str_c(queue), .poll_timeout_ms = timeout_ms};
    int rc = weft_client_poll_workflow_task(c, &req, t, h, err);
    if (rc != 0) return rc;
    return t->task_token.len > 0 ? 1 : 0;
}

int wk_poll_act(weft_client *c, const char *queue, uint64_t timeout_ms, weft_poll_activity_resp *t,
                weft_response *h, weft_err *err) {
    weft_poll_req req = {.task_queue = weft_str_c(queue), .poll_timeout_ms = timeout_ms};
    int rc = weft_client_poll_activity_task(c, &req, t, h, err);
    if (rc != 0) return rc;
    return t->task_token.len > 0 ? 1 : 0;
}

int wk_complete_wft(weft_client *c, const weft_poll_wft_resp *t, const weft_command *cmds,
                    uint32_t n, weft_err *err) {
    weft_complete_wft_req req = {
        .task_token = t->task_token,
        .commands = (weft_command *)cmds,
        .commands_count = n,
    };
    return weft_client_complete_workflow_task(c, &req, err);
}

int wk_complete_act(weft_client *c, const weft_poll_activity_resp *t, const char *result,
                    weft_err *err) {
    weft_activity_req req = {
        .task_token = t->task_token,
        .result = {.ptr = (const uint8_t *)result, .len = (uint32_t)strlen(result)},
    };
    return weft_client_complete_activity(c, &req, err);
}

int wk_fail_act(weft_client *c, const weft_poll_activity_resp *t, const char *type,
                const char *message, weft_err *err) {
    weft_activity_req req = {
        .task_token = t->task_token,
        .failure = {.type = weft_str_c(type), .message = weft_str_c(message)},
    };
    return weft_client_fail_activity(c, &req, err);
}

weft_command wk_cmd_activity(const char *activity_id, const char *activity_type, const char *input,
                             uint64_t start_to_close_ms, const weft_retry_policy *retry) {
    weft_command cmd = {
        .type = WEFT_CMD_SCHEDULE_ACTIVITY,
        .activity_id = weft_str_c(activity_id),
        .activity_type = weft_str_c(activity_type),
        .input = {.ptr = (const uint8_t *)input, .len = input ? (uint32_t)strlen(input) : 0},
        .start_to_close_timeout_ms = start_to_close_ms,
    };
    if (retry != NULL) cmd.retry_policy = *retry;
    return cmd;
}

weft_command wk_cmd_timer(const char *timer_id, uint64_t fire_after_ms) {
    return (weft_command){
        .type = WEFT_CMD_START_TIMER,
        .timer_id = weft_str_c(timer_id),
        .start_to_fire_timeout_ms = fire_after_ms,
    };
}

weft_command wk_cmd_complete(const char *result) {
    return (weft_command){
        .type = WEFT_CMD_COMPLETE_WORKFLOW,
        .result = {.ptr = (const uint8_t *)result, .len = (uint32_t)strlen(result)},
    };
}

static bool wk_is_activity_event(uint32_t type) {
    return type == WEFT_EV_ACTIVITY_TASK_STARTED || type == WEFT_EV_ACTIVITY_TASK_COMPLETED ||
           type == WEFT_EV_ACTIVITY_TASK_FAILED || type == WEFT_EV_ACTIVITY_TASK_TIMED_OUT ||
           type == WEFT_EV_ACTIVITY_TASK_CANCEL_REQUESTED || type == WEFT_EV_ACTIVITY_TASK_CANCELED;
}

/* Whether event e (of the wanted type) belongs to `id`. */
static bool wk_matches(const weft_event *ev, uint32_t n, const weft_event *e, const char *id) {
    if (id == NULL) return true;
    switch (e->event_type) {
    case WEFT_EV_ACTIVITY_TASK_SCHEDULED:
        return weft_str_eq_c(e->activity_id, id);
    case WEFT_EV_TIMER_STARTED:
        return weft_str_eq_c(e->timer_id, id);
    case WEFT_EV_TIMER_FIRED:
    case WEFT_EV_TIMER_CANCELED: {
        if (e->timer_id.len > 0) return weft_str_eq_c(e->timer_id, id);
        const weft_event *s = wk_find(ev, n, WEFT_EV_TIMER_STARTED, id);
        return s != NULL && s->event_id == e->started_event_id;
    }
    case WEFT_EV_WORKFLOW_EXECUTION_SIGNALED:
        return weft_str_eq_c(e->signal_name, id);
    default:
        if (wk_is_activity_event(e->event_type)) {
            const weft_event *s = wk_find(ev, n, WEFT_EV_ACTIVITY_TASK_SCHEDULED, id);
            return s != NULL && s->event_id == e->scheduled_event_id;
        }
        return true;
    }
}

const weft_event *wk_find(const weft_event *ev, uint32_t n, uint32_t type, const char *id) {
    for (uint32_t i = 0; i < n; i++) {
        if (ev[i].event_type == type && wk_matches(ev, n, &ev[i], id)) return &ev[i];
    }
    return NULL;
}

uint32_t wk_count(const weft_event *ev, uint32_t n, uint32_t type, const char *id) {
    uint32_t count = 0;
    for (uint32_t i = 0; i < n; i++) {
        if (ev[i].event_type == type && wk_matches(ev, n, &ev[i], id)) count++;
    }
    return count;
}

bool wk_activity_closed(const weft_event *ev, uint32_t n, const char *activity_id) {
    return wk_find(ev, n, WEFT_EV_ACTIVITY_TASK_COMPLETED, activity_id) != NULL ||
           wk_find(ev, n, WEFT_EV_ACTIVITY_TASK_FAILED, activity_id) != NULL ||
           wk_find(ev, n, WEFT_EV_ACTIVITY_TASK_TIMED_OUT, activity_id) != NULL ||
           wk_find(ev, n, WEFT_EV_ACTIVITY_TASK_CANCELED, activity_id) != NULL;
}

/* Appends one page's events to h. */
static int wk_history_append(wk_history *h, const weft_history_resp *page) {
    if (page->events_count == 0) return 0;
    weft_event *grown = realloc(h->events, (h->count + page->events_count) * sizeof *grown);
    if (grown == NULL) return -1;
    h->events = grown;
    memcpy(h->events + h->count, page->events, page->events_count * sizeof *grown);
    h->count += page->events_count;
    return 0;
}

int wk_history_get(weft_client *c, const char *workflow_id, const char *run_id, wk_history *h,
                   weft_err *err) {
    memset(h, 0, sizeof *h);
    uint64_t next = 1;
    for (;;) {
        if (h->pages_count == WK_HISTORY_PAGES_MAX) {
            return weft_err_set(err, WEFT_E_RESOURCE_EXHAUSTED, "", "history longer than %u pages",
                                WK_HISTORY_PAGES_MAX);
        }
        weft_history_req req = {
            .workflow_id = weft_str_c(workflow_id),
            .run_id = weft_str_c(run_id),
            .first_event_id = next,
        };
        weft_history_resp page;
        int rc = weft_client_history(c, &req, &page, &h->pages[h->pages_count++], err);
        if (rc != 0) return rc;
        if (wk_history_append(h, &page) != 0) {
            return weft_err_set(err, WEFT_E_RESOURCE_EXHAUSTED, "", "out of memory");
        }
        h->closed = page.closed;
        if (page.events_count == 0 || page.next_event_id <= next) return 0;
        next = page.next_event_id; /* an empty page ends the loop */
    }
}

void wk_history_free(wk_history *h) {
    for (uint32_t i = 0; i < h->pages_count; i++)
        weft_response_free(&h->pages[i]);
    free(h->events);
    memset(h, 0, sizeof *h);
}

int wk_history_encode(const wk_history *h, uint8_t **buf, size_t *len) {
    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    msgpack_packer pk;
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    int rc = msgpack_pack_array(&pk, h->count);
    for (uint32_t i = 0; rc == 0 && i < h->count; i++) {
        rc = weft_schema_encode(&weft_event_schema, &h->events[i], &pk);
    }
    if (rc != 0) {
        msgpack_sbuffer_destroy(&sb);
        return -1;
    }
    *buf = (uint8_t *)sb.data;
    *len = sb.size;
    return 0;
}

int wk_capture_run(weft_client *c, const char *workflow_id, const char *run_id, wk_capture *cap,
                   weft_err *err) {
    WEFT_ASSERT(cap->describe == NULL && cap->history == NULL);
    weft_describe_req q = {.workflow_id = weft_str_c(workflow_id), .run_id = weft_str_c(run_id)};
    weft_describe_resp d;
    weft_response h = {0};
    int rc = weft_client_describe(c, &q, &d, &h, err);
    if (rc == 0 && weft_schema_encode_buf(&weft_describe_resp_schema, &d, &cap->describe,
                                          &cap->describe_len) != 0) {
        rc = weft_err_set(err, WEFT_E_INTERNAL, "", "cannot encode the describe response");
    }
    weft_response_free(&h);
    if (rc == 0) {
        wk_history hist;
        rc = wk_history_get(c, workflow_id, run_id, &hist, err);
        if (rc == 0 && wk_history_encode(&hist, &cap->history, &cap->history_len) != 0) {
            rc = weft_err_set(err, WEFT_E_INTERNAL, "", "cannot encode the history");
        }
        wk_history_free(&hist);
    }
    if (rc != 0)
        fprintf(stderr, "capture %s: %s %s\n", workflow_id, weft_error_name(rc), err->message);
    return rc;
}

bool wk_capture_equal(const wk_capture *a, const wk_capture *b) {
    return a->describe_len == b->describe_len && a->history_len == b->history_len &&
           memcmp(a->describe, b->describe, a->describe_len) == 0 &&
           memcmp(a->history, b->history, a->history_len) == 0;
}

void wk_capture_free(wk_capture *cap) {
    free(cap->describe);
    free(cap->history);
    memset(cap, 0, sizeof *cap);
}

void wk_history_print(const weft_event *ev, uint32_t n) {
    for (uint32_t i = 0; i < n; i++) {
        uint32_t t = ev[i].event_type;
        fprintf(stderr, "  %3llu %-36s attempt=%u t=%llu\n", (unsigned long long)ev[i].event_id,
                t < WEFT_EV__COUNT ? weft_event_type_names[t] : "?", ev[i].attempt,
                (unsigned long long)ev[i].event_time_ms);
    }
}

void wk_script_input(char *buf, size_t cap, uint64_t timer_ms, uint32_t signals) {
    snprintf(buf, cap, "timer_ms=%" PRIu64 ";signals=%u", timer_ms, signals);
}

/* Reads the script's parameters from the WorkflowExecutionStarted input. */
static void wk_script_params(const weft_event *ev, uint32_t n, uint64_t *timer_ms,
                             uint32_t *signals) {
    *timer_ms = 100;
    *signals = 0;
    const weft_event *st = wk_find(ev, n, WEFT_EV_WORKFLOW_EXECUTION_STARTED, NULL);
    if (st == NULL || st->input.len == 0 || st->input.len >= 128) return;
    char in[128];
    memcpy(in, st->input.ptr, st->input.len);
    in[st->input.len] = '\0';
    unsigned long long t = 0;
    unsigned k = 0;
    if (sscanf(in, "timer_ms=%llu;signals=%u", &t, &k) == 2) {
        *timer_ms = t;
        *signals = k;
    }
}

uint32_t wk_script_decide(const weft_poll_wft_resp *t, weft_command *cmds) {
    static const weft_retry_policy retry = {
        .initial_interval_ms = 100,
        .backoff_coefficient = 2.0,
        .maximum_interval_ms = 1000,
    };
    const weft_event *ev = t->events;
    uint32_t n = t->events_count;
    uint64_t timer_ms;
    uint32_t signals;
    wk_script_params(ev, n, &timer_ms, &signals);
    if (!wk_find(ev, n, WEFT_EV_ACTIVITY_TASK_SCHEDULED, "a1")) {
        cmds[0] = wk_cmd_activity("a1", "work", "one", WK_SCRIPT_ACTIVITY_TIMEOUT_MS, &retry);
        return 1;
    }
    if (!wk_activity_closed(ev, n, "a1")) return 0;
    if (!wk_find(ev, n, WEFT_EV_TIMER_STARTED, "t1")) {
        cmds[0] = wk_cmd_timer("t1", timer_ms);
        return 1;
    }
    if (!wk_find(ev, n, WEFT_EV_TIMER_FIRED, "t1")) return 0;
    if (!wk_find(ev, n, WEFT_EV_ACTIVITY_TASK_SCHEDULED, "a2")) {
        cmds[0] = wk_cmd_activity("a2", "work", "two", WK_SCRIPT_ACTIVITY_TIMEOUT_MS, &retry);
        return 1;
    }
    if (!wk_activity_closed(ev, n, "a2")) return 0;
    if (wk_count(ev, n, WEFT_EV_WORKFLOW_EXECUTION_SIGNALED, "sig") < signals) return 0;
    cmds[0] = wk_cmd_complete("ok");
    return 1;
}

/* Thread context: the pool and whether this thread takes workflow or activity tasks. */
typedef struct wk_thread_arg {
    wk_pool *pool;  /* owner */
    bool workflows; /* true: workflow tasks, false: activity tasks */
} wk_thread_arg;

static wk_thread_arg wk_thread_args[WK_POOL_THREADS_MAX * 4];
static atomic_uint wk_thread_args_used;

/* After a failed call (the server is restarting, or the task went stale) a short pause keeps a
 * thread from spinning on a dead server faster than the client's own backoff. */
static void wk_pause_after_error(void) {
    struct timespec ts = {.tv_sec = 0, .tv_nsec = 50 * 1000000L};
    nanosleep(&ts, NULL);
}

static void wk_pool_one_wft(wk_pool *p) {
    weft_response h = {0};
    weft_poll_wft_resp task;
    weft_err err;
    weft_poll_req req = {.task_queue = weft_str_c(p->queue), .poll_timeout_ms = WK_POOL_POLL_MS};
    int rc = p->node_id != 0
                 ? weft_client_poll_workflow_task_on(p->c, p->node_id, &req, &task, &h, &err)
                 : weft_client_poll_workflow_task(p->c, &req, &task, &h, &err);
    if (rc == 0) rc = task.task_token.len > 0 ? 1 : 0;
    if (rc == 1) {
        weft_command cmds[WK_COMMANDS_MAX];
        uint32_t n = wk_script_decide(&task, cmds);
        rc = wk_complete_wft(p->c, &task, cmds, n, &err) == 0 ? 1 : -1;
        if (rc == 1) atomic_fetch_add(&p->wft_completed, 1);
    }
    weft_response_free(&h);
    if (rc < 0) {
        atomic_fetch_add(&p->errors, 1);
        wk_pause_after_error();
    }
}

static void wk_pool_one_act(wk_pool *p) {
    weft_response h = {0};
    weft_poll_activity_resp task;
    weft_err err;
    weft_poll_req req = {.task_queue = weft_str_c(p->queue), .poll_timeout_ms = WK_POOL_POLL_MS};
    int rc = p->node_id != 0
                 ? weft_client_poll_activity_task_on(p->c, p->node_id, &req, &task, &h, &err)
                 : weft_client_poll_activity_task(p->c, &req, &task, &h, &err);
    if (rc == 0) rc = task.task_token.len > 0 ? 1 : 0;
    if (rc == 1) {
        rc = wk_complete_act(p->c, &task, "done", &err) == 0 ? 1 : -1;
        if (rc == 1) atomic_fetch_add(&p->act_completed, 1);
    }
    weft_response_free(&h);
    if (rc < 0) {
        atomic_fetch_add(&p->errors, 1);
        wk_pause_after_error();
    }
}

static void *wk_pool_main(void *arg) {
    wk_thread_arg *a = arg;
    while (!atomic_load(&a->pool->stop)) {
        if (a->workflows) {
            wk_pool_one_wft(a->pool);
        } else {
            wk_pool_one_act(a->pool);
        }
    }
    return NULL;
}

int wk_pool_start(wk_pool *p, weft_client *c, const char *queue, unsigned threads) {
    return wk_pool_start_on(p, c, queue, threads, 0);
}

int wk_pool_start_on(wk_pool *p, weft_client *c, const char *queue, unsigned threads,
                     uint64_t node_id) {
    if (threads == 0 || threads > WK_POOL_THREADS_MAX) return -1;
    memset(p, 0, sizeof *p);
    p->c = c;
    p->queue = queue;
    p->node_id = node_id;
    atomic_init(&p->stop, false);
    for (unsigned i = 0; i < threads; i++) {
        unsigned slot = atomic_fetch_add(&wk_thread_args_used, 1);
        if (slot >= WEFT_ARRAY_LEN(wk_thread_args)) return -1;
        wk_thread_args[slot] = (wk_thread_arg){.pool = p, .workflows = i % 2 == 0};
        if (pthread_create(&p->threads[i], NULL, wk_pool_main, &wk_thread_args[slot]) != 0) {
            wk_pool_stop(p);
            return -1;
        }
        p->threads_count++;
    }
    return 0;
}

uint64_t wk_pools_activities(const wk_pool *pools, unsigned count) {
    uint64_t n = 0;
    for (unsigned k = 0; k < count; k++)
        n += atomic_load(&pools[k].act_completed);
    return n;
}

void wk_pools_print(const wk_pool *pools, unsigned count) {
    for (unsigned k = 0; k < count; k++) {
        fprintf(stderr, "worker on node %u: workflow tasks %llu, activities %llu, errors %llu\n",
                k + 1, (unsigned long long)atomic_load(&pools[k].wft_completed),
                (unsigned long long)atomic_load(&pools[k].act_completed),
                (unsigned long long)atomic_load(&pools[k].errors));
    }
}

void wk_pool_stop(wk_pool *p) {
    atomic_store(&p->stop, true);
    for (unsigned i = 0; i < p->threads_count; i++)
        pthread_join(p->threads[i], NULL);
    p->threads_count = 0;
}

void wk_start_acked(weft_client *c, const weft_start_req *s, char *run_id, size_t cap,
                    atomic_uint *resends) {
    for (;;) {
        weft_response h = {0};
        weft_start_resp r;
        weft_err err;
        int rc = weft_client_start(c, s, &r, &h, &err);
        if (rc == 0) weft_str_copy(run_id, cap, r.run_id);
        weft_response_free(&h);
        if (rc == 0) return;
        fprintf(stderr, "start %.*s: %s %s (re-sending)\n", (int)s->workflow_id.len,
                s->workflow_id.ptr, weft_error_name(rc), err.message);
        atomic_fetch_add(resends, 1);
        struct timespec ts = {.tv_sec = 0, .tv_nsec = 200 * 1000000L};
        nanosleep(&ts, NULL);
    }
}

int wk_await_completed(weft_client *c, const char *workflow_id, const char *run_id,
                       uint64_t deadline_ms) {
    for (;;) {
        weft_result_req q = {
            .workflow_id = weft_str_c(workflow_id), .wait = true, .wait_timeout_ms = 5000};
        weft_result_resp r;
        weft_response h = {0};
        weft_err err;
        int rc = weft_client_result(c, &q, &r, &h, &err);
        if (rc != 0) {
            fprintf(stderr, "result %s: %s %s\n", workflow_id, weft_error_name(rc), err.message);
            weft_response_free(&h);
            return -1;
        }
        bool same_run = weft_str_eq_c(r.run_id, run_id);
        uint32_t status = r.status;
        weft_response_free(&h);
        if (!same_run) {
            fprintf(stderr, "result %s: not the acknowledged run %s\n", workflow_id, run_id);
            return -1;
        }
        if (status == WEFT_STATUS_COMPLETED) return 0;
        if (status != WEFT_STATUS_RUNNING) {
            fprintf(stderr, "result %s: status %u, neither running nor completed\n", workflow_id,
                    status);
            return -1;
        }
        if (weft_mono_ms() >= deadline_ms) {
            fprintf(stderr, "%s still running at the deadline\n", workflow_id);
            wk_history hist;
            if (wk_history_get(c, workflow_id, run_id, &hist, &err) == 0)
                wk_history_print(hist.events, hist.count);
            wk_history_free(&hist);
            return -1;
        }
    }
}

bool wk_script_history_ok(const wk_history *h, uint64_t *timer_due_ms, uint64_t *timer_fired_ms) {
    const weft_event *ev = h->events;
    bool ok = h->closed && h->count > 0;
    for (uint32_t k = 0; ok && k < h->count; k++)
        ok = ev[k].event_id == k + 1;
    const weft_event *ts = wk_find(ev, h->count, WEFT_EV_TIMER_STARTED, "t1");
    const weft_event *tf = wk_find(ev, h->count, WEFT_EV_TIMER_FIRED, "t1");
    ok = ok && ts != NULL && tf != NULL && ts->start_to_fire_timeout_ms > 0;
    uint64_t due = ok ? ts->event_time_ms + ts->start_to_fire_timeout_ms : 0;
    ok = ok && tf->event_time_ms >= due; /* G6: never early */
    ok = ok && wk_count(ev, h->count, WEFT_EV_ACTIVITY_TASK_COMPLETED, NULL) == 2;
    ok = ok && wk_count(ev, h->count, WEFT_EV_WORKFLOW_EXECUTION_COMPLETED, NULL) == 1;
    ok = ok && ev[h->count - 1].event_type == WEFT_EV_WORKFLOW_EXECUTION_COMPLETED;
    if (ok && timer_due_ms != NULL) *timer_due_ms = due;
    if (ok && timer_fired_ms != NULL) *timer_fired_ms = tf->event_time_ms;
    return ok;
}
