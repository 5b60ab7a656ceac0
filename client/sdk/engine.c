/* engine.c: the replay state machine of one workflow run (engine.h, DESIGN section 11).
 *
 * History is a sequence of workflow tasks. At each WorkflowTaskStarted that a
 * WorkflowTaskCompleted follows, the code runs one "step" (until every path it follows waits)
 * and each command it produces must equal, in order, the command events that the completion
 * wrote (replay). At the current task's WorkflowTaskStarted, the step's commands are new: they
 * are returned to the worker, and kept as `sent` until the next task's events show what the
 * server made of them (sticky continuation). Everything between steps (activity outcomes,
 * timers firing, signals, cancel requests) resolves futures in history order, so the code sees
 * the same world on every replay. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <xxhash.h>

#include "run.h"

/* Initial size of the event-id -> future map (grows by doubling at half load). */
#define RUN_FUT_MAP_SLOTS_MIN 64u
/* Room for one event or command description in an error message. */
#define RUN_DESCRIBE_BYTES 320u

/* ---- Arena helpers ---- */

static void *run_alloc(wfe_run *r, size_t n) {
    void *p = sdk_arena_alloc(&r->arena, n);
    if (p == NULL) run_poison(r, "resource-exhausted", "OutOfMemory", "the worker ran out of memory");
    return p;
}

char *run_strdup(wfe_run *r, weft_str s) {
    char *p = run_alloc(r, (size_t)s.len + 1);
    if (p == NULL) return (char *)"";
    if (s.len > 0) memcpy(p, s.ptr, s.len);
    p[s.len] = '\0';
    return p;
}

char *run_cstrdup(wfe_run *r, const char *s) { return run_strdup(r, weft_str_c(s)); }

weft_bytes run_bytes(wfe_run *r, weft_bytes b) {
    if (b.len == 0) return (weft_bytes){0};
    uint8_t *p = run_alloc(r, b.len);
    if (p == NULL) return (weft_bytes){0};
    memcpy(p, b.ptr, b.len);
    return (weft_bytes){.ptr = p, .len = b.len};
}

char *run_printf(wfe_run *r, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0) return (char *)"";
    char *p = run_alloc(r, (size_t)n + 1);
    if (p == NULL) return (char *)"";
    va_start(ap, fmt);
    vsnprintf(p, (size_t)n + 1, fmt, ap);
    va_end(ap);
    return p;
}

/* ---- Poisoning and yielding ---- */

static bool run_in_coroutine(const wfe_run *r) { return r->co.running; }

void run_poison(wfe_run *r, const char *cause, const char *type, const char *fmt, ...) {
    if (!r->poisoned) {
        /* The message goes into a fixed buffer first: the arena may be what ran out. */
        char msg[WEFT_FAILURE_MESSAGE_BYTES_MAX];
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(msg, sizeof msg, fmt, ap);
        va_end(ap);
        r->poisoned = true;
        r->cause = cause;
        char *m = sdk_arena_strdup(&r->arena, weft_str_c(msg));
        char *t = sdk_arena_strdup(&r->arena, weft_str_c(type));
        r->failure = (weft_failure){.type = weft_str_c(t != NULL ? t : "OutOfMemory"),
                                    .message = weft_str_c(m != NULL ? m : "out of memory"),
                                    .non_retryable = false};
    }
    if (run_in_coroutine(r)) {
        /* The engine never resumes a poisoned run: this coroutine's frames are abandoned. */
        for (;;) sdk_coro_yield(&r->co);
    }
}

void run_yield(wfe_run *r) {
    WEFT_ASSERT(run_in_coroutine(r));
    sdk_coro_yield(&r->co);
    WEFT_ASSERT(!r->poisoned);
}

/* ---- The event-id -> future map ---- */

static uint32_t fut_slot(uint64_t key, uint32_t cap) {
    return (uint32_t)(XXH3_64bits(&key, sizeof key) & (cap - 1));
}

static bool fut_map_grow(fut_map *m) {
    uint32_t cap = m->cap == 0 ? RUN_FUT_MAP_SLOTS_MIN : m->cap * 2;
    uint64_t *keys = calloc(cap, sizeof *keys);
    weft_future **vals = calloc(cap, sizeof *vals);
    if (keys == NULL || vals == NULL) {
        free(keys);
        free(vals);
        return false;
    }
    for (uint32_t i = 0; i < m->cap; i++) {
        if (m->keys[i] == 0) continue;
        uint32_t s = fut_slot(m->keys[i], cap);
        while (keys[s] != 0) s = (s + 1) & (cap - 1);
        keys[s] = m->keys[i];
        vals[s] = m->vals[i];
    }
    free(m->keys);
    free(m->vals);
    m->keys = keys;
    m->vals = vals;
    m->cap = cap;
    return true;
}

void run_fut_bind(wfe_run *r, weft_future *f) {
    WEFT_ASSERT(f->event_id != 0);
    fut_map *m = &r->futs;
    if ((m->count + 1) * 2 > m->cap && !fut_map_grow(m)) {
        run_poison(r, "resource-exhausted", "OutOfMemory", "the worker ran out of memory");
        return;
    }
    uint32_t s = fut_slot(f->event_id, m->cap);
    while (m->keys[s] != 0 && m->keys[s] != f->event_id) s = (s + 1) & (m->cap - 1);
    if (m->keys[s] == 0) m->count++;
    m->keys[s] = f->event_id;
    m->vals[s] = f;
}

static weft_future *fut_find(const wfe_run *r, uint64_t event_id) {
    const fut_map *m = &r->futs;
    if (m->cap == 0 || event_id == 0) return NULL;
    uint32_t s = fut_slot(event_id, m->cap);
    while (m->keys[s] != 0) {
        if (m->keys[s] == event_id) return m->vals[s];
        s = (s + 1) & (m->cap - 1);
    }
    return NULL;
}

/* ---- Futures ---- */

weft_future *run_fut_new(wfe_run *r, fut_kind kind) {
    weft_future *f = run_alloc(r, sizeof *f);
    if (f == NULL) return NULL; /* only outside the coroutine; inside, poison did not return */
    *f = (weft_future){.run = r, .kind = kind};
    return f;
}

void run_fut_resolve(weft_future *f, int outcome, weft_bytes result, const char *type,
                     const char *message, weft_bytes details, uint32_t attempt) {
    WEFT_ASSERT(!f->ready);
    WEFT_ASSERT(outcome == 0 || outcome == WEFT_WF_FAILED || outcome == WEFT_WF_CANCELED);
    wfe_run *r = f->run;
    f->ready = true;
    f->outcome = outcome;
    f->result = run_bytes(r, result);
    if (outcome != 0) {
        f->failure = (weft_wf_failure){.type = run_cstrdup(r, type),
                                       .message = run_cstrdup(r, message),
                                       .details = run_bytes(r, details),
                                       .attempt = attempt};
    }
}

/* ---- Commands ---- */

static bool cmd_vec_push(cmd_vec *v, const cmd_rec *c) {
    if (v->count == v->cap) {
        uint32_t cap = v->cap == 0 ? 16 : v->cap * 2;
        cmd_rec *items = realloc(v->items, (size_t)cap * sizeof *items);
        if (items == NULL) return false;
        v->items = items;
        v->cap = cap;
    }
    v->items[v->count++] = *c;
    return true;
}

static void run_nondeterminism(wfe_run *r, const weft_event *ev, const weft_command *cmd,
                               const char *file, int line) {
    char e[RUN_DESCRIBE_BYTES], c[RUN_DESCRIBE_BYTES];
    if (ev == NULL) {
        run_poison(r, "non-determinism", "NonDeterministicError",
                   "non-determinism: the code produced %s at %s:%d, but the history of this "
                   "workflow task records no further command (run %s); restore the previous "
                   "code, or guard the change with weft_wf_get_version",
                   match_describe_command(cmd, c, sizeof c), file, line, r->info.run_id);
    } else {
        run_poison(r, "non-determinism", "NonDeterministicError",
                   "non-determinism: history event %s does not match %s produced at %s:%d "
                   "(run %s); restore the previous code, or guard the change with "
                   "weft_wf_get_version",
                   match_describe_event(ev, e, sizeof e), match_describe_command(cmd, c, sizeof c),
                   file, line, r->info.run_id);
    }
}

static void run_bind_match(wfe_run *r, weft_future *f, const weft_event *ev) {
    if (f == NULL) return;
    f->event_id = ev->event_id;
    run_fut_bind(r, f);
}

const weft_event *run_peek(wfe_run *r) {
    if (!r->replaying || r->batch_pos >= r->batch_count) return NULL;
    return r->batch[r->batch_pos];
}

void run_consume(wfe_run *r) {
    WEFT_ASSERT(r->replaying && r->batch_pos < r->batch_count);
    r->batch_pos++;
}

void run_emit(wfe_run *r, const weft_command *cmd, const char *file, int line, weft_future *fut,
              bool optional) {
    WEFT_ASSERT(!r->poisoned && !r->closed);
    if (r->replaying) {
        const weft_event *ev = run_peek(r);
        if (ev != NULL && match_command(cmd, ev)) {
            run_bind_match(r, fut, ev);
            run_consume(r);
            return;
        }
        /* A cancel whose target finished while the task ran writes nothing (shards/). */
        if (optional) return;
        run_nondeterminism(r, ev, cmd, file, line);
        return;
    }
    if (r->out.count >= WEFT_WF_COMMANDS_PER_TASK_MAX) {
        run_poison(r, "resource-exhausted", "TooManyCommands",
                   "the workflow produced more than %u commands in one workflow task "
                   "(WEFT_WF_COMMANDS_PER_TASK_MAX) at %s:%d; wait on part of them before "
                   "starting more",
                   WEFT_WF_COMMANDS_PER_TASK_MAX, file, line);
        return;
    }
    cmd_rec rec = {.cmd = *cmd, .file = file, .line = line, .fut = fut, .optional = optional};
    if (!cmd_vec_push(&r->out, &rec)) {
        run_poison(r, "resource-exhausted", "OutOfMemory", "the worker ran out of memory");
    }
}

/* ---- Lifecycle ---- */

int wfe_run_new(const wfe_run_params *p, wfe_run **out, weft_err *err) {
    WEFT_ASSERT(p != NULL && out != NULL);
    *out = NULL;
    if (p->fn == NULL) return weft_err_set(err, WEFT_E_INVALID_ARGUMENT, "fn", "no workflow function");
    if (p->stack_bytes < WEFT_WORKER_WF_STACK_BYTES_MIN) {
        return weft_err_set(err, WEFT_E_INVALID_ARGUMENT, "wf_stack_bytes",
                            "a workflow stack of %u bytes is below the minimum of %u "
                            "(WEFT_WORKER_WF_STACK_BYTES_MIN)",
                            p->stack_bytes, WEFT_WORKER_WF_STACK_BYTES_MIN);
    }
    wfe_run *r = calloc(1, sizeof *r);
    if (r == NULL) return weft_err_set(err, WEFT_E_RESOURCE_EXHAUSTED, NULL, "out of memory");
    r->wf.run = r;
    r->fn = p->fn;
    r->fn_arg = p->arg;
    r->next_event_id = 1;
    r->info = (weft_wf_info){
        .namespace_ = run_strdup(r, p->namespace_.len ? p->namespace_
                                                      : WEFT_STR_LIT(WEFT_DEFAULT_NAMESPACE)),
        .workflow_id = run_strdup(r, p->workflow_id),
        .run_id = run_strdup(r, p->run_id),
        .workflow_type = run_strdup(r, p->workflow_type),
        .task_queue = run_strdup(r, p->task_queue),
        .first_run_id = "",
        .continued_from_run_id = "",
    };
    int rc = r->poisoned ? -WEFT_E_RESOURCE_EXHAUSTED
                         : sdk_coro_init(&r->co, p->stack_bytes, wf_main, r);
    if (rc != 0) {
        wfe_run_free(r);
        return weft_err_set(err, WEFT_E_RESOURCE_EXHAUSTED, NULL,
                            "could not allocate a workflow stack of %u bytes",
                            p->stack_bytes);
    }
    *out = r;
    return 0;
}

void wfe_run_free(wfe_run *r) {
    if (r == NULL) return;
    sdk_coro_free(&r->co);
    free(r->out.items);
    free(r->sent.items);
    free(r->batch);
    free(r->futs.keys);
    free(r->futs.vals);
    sdk_arena_free(&r->arena);
    free(r);
}

uint64_t wfe_run_next_event_id(const wfe_run *r) { return r->next_event_id; }
bool wfe_run_closed(const wfe_run *r) { return r->closed; }
const char *wfe_run_id(const wfe_run *r) { return r->info.run_id; }

/* ---- Events between steps ---- */

static void on_started(wfe_run *r, const weft_event *ev) {
    r->input = run_bytes(r, ev->input);
    r->info.first_run_id = run_strdup(r, ev->first_run_id);
    r->info.continued_from_run_id = run_strdup(r, ev->continued_run_id);
    if (r->info.workflow_type[0] == '\0') r->info.workflow_type = run_strdup(r, ev->workflow_type);
    if (r->info.task_queue[0] == '\0') r->info.task_queue = run_strdup(r, ev->task_queue);
    /* Seeded from what history says about the run, so the replayer draws the same numbers. */
    uint64_t seed = XXH3_64bits(ev->continued_run_id.ptr ? ev->continued_run_id.ptr : "",
                                ev->continued_run_id.len);
    r->rng_state = XXH3_64bits_withSeed(ev->first_run_id.ptr ? ev->first_run_id.ptr : "",
                                        ev->first_run_id.len, seed) | 1u;
    r->now_ms = ev->event_time_ms;
}

static void on_activity_outcome(wfe_run *r, const weft_event *ev) {
    weft_future *f = fut_find(r, ev->scheduled_event_id);
    if (f == NULL) {
        char d[RUN_DESCRIBE_BYTES];
        run_poison(r, "non-determinism", "NonDeterministicError",
                   "non-determinism: history event %s concerns an activity the code never "
                   "scheduled (scheduled_event_id %llu)",
                   match_describe_event(ev, d, sizeof d),
                   (unsigned long long)ev->scheduled_event_id);
        return;
    }
    if (f->ready) return; /* canceled by the code already (try-cancel) */
    char msg[WEFT_FAILURE_MESSAGE_BYTES_MAX];
    switch (ev->event_type) {
    case WEFT_EV_ACTIVITY_TASK_COMPLETED:
        run_fut_resolve(f, 0, ev->result, NULL, NULL, (weft_bytes){0}, ev->attempt);
        return;
    case WEFT_EV_ACTIVITY_TASK_FAILED:
        weft_str_copy(msg, sizeof msg, ev->failure.message);
        {
            char type[WEFT_FAILURE_TYPE_BYTES_MAX];
            weft_str_copy(type, sizeof type, ev->failure.type);
            run_fut_resolve(f, WEFT_WF_FAILED, (weft_bytes){0}, type, msg, ev->failure.details,
                            ev->attempt);
        }
        return;
    case WEFT_EV_ACTIVITY_TASK_TIMED_OUT: {
        uint32_t tt = ev->timeout_type < WEFT_TIMEOUT__COUNT ? ev->timeout_type : 0;
        char type[WEFT_FAILURE_TYPE_BYTES_MAX];
        snprintf(type, sizeof type, "Timeout:%s", weft_timeout_type_names[tt]);
        if (ev->failure.message.len > 0) {
            weft_str_copy(msg, sizeof msg, ev->failure.message);
        } else {
            snprintf(msg, sizeof msg, "activity %s timed out (%s)", f->id,
                     weft_timeout_type_names[tt]);
        }
        run_fut_resolve(f, WEFT_WF_FAILED, (weft_bytes){0}, type, msg, ev->failure.details,
                        ev->attempt);
        return;
    }
    default:
        WEFT_ASSERT(ev->event_type == WEFT_EV_ACTIVITY_TASK_CANCELED);
        snprintf(msg, sizeof msg, "activity %s was canceled", f->id);
        run_fut_resolve(f, WEFT_WF_CANCELED, (weft_bytes){0}, "Canceled", msg, ev->details,
                        ev->attempt);
        return;
    }
}

static void on_timer_fired(wfe_run *r, const weft_event *ev) {
    weft_future *f = fut_find(r, ev->started_event_id);
    if (f == NULL || f->kind != FUT_TIMER) {
        char d[RUN_DESCRIBE_BYTES];
        run_poison(r, "non-determinism", "NonDeterministicError",
                   "non-determinism: history event %s concerns a timer the code never started",
                   match_describe_event(ev, d, sizeof d));
        return;
    }
    if (!f->ready) run_fut_resolve(f, 0, (weft_bytes){0}, NULL, NULL, (weft_bytes){0}, 0);
}

/* Applies an event that is not a workflow task boundary. */
static void on_event(wfe_run *r, const weft_event *ev) {
    switch (ev->event_type) {
    case WEFT_EV_ACTIVITY_TASK_COMPLETED:
    case WEFT_EV_ACTIVITY_TASK_FAILED:
    case WEFT_EV_ACTIVITY_TASK_TIMED_OUT:
    case WEFT_EV_ACTIVITY_TASK_CANCELED: on_activity_outcome(r, ev); break;
    case WEFT_EV_TIMER_FIRED: on_timer_fired(r, ev); break;
    case WEFT_EV_WORKFLOW_EXECUTION_SIGNALED:
        wf_signal_deliver(r, ev->signal_name, ev->input);
        break;
    case WEFT_EV_WORKFLOW_EXECUTION_CANCEL_REQUESTED: r->cancel_requested = true; break;
    case WEFT_EV_WORKFLOW_EXECUTION_TERMINATED:
    case WEFT_EV_WORKFLOW_EXECUTION_TIMED_OUT:
    case WEFT_EV_WORKFLOW_EXECUTION_COMPLETED:
    case WEFT_EV_WORKFLOW_EXECUTION_FAILED:
    case WEFT_EV_WORKFLOW_EXECUTION_CANCELED:
    case WEFT_EV_WORKFLOW_EXECUTION_CONTINUED_AS_NEW: r->closed = true; break;
    default: break; /* task bookkeeping and command events: handled by the steps */
    }
}

/* ---- Steps ---- */

/* The command events a completed task wrote: from `from` up to the next WorkflowTaskStarted. */
static uint32_t collect_batch(wfe_run *r, const weft_event *evs, uint32_t n, uint32_t from) {
    free(r->batch);
    r->batch = NULL;
    r->batch_count = 0;
    r->batch_pos = 0;
    uint32_t count = 0;
    for (uint32_t i = from; i < n && evs[i].event_type != WEFT_EV_WORKFLOW_TASK_STARTED; i++) {
        count += match_is_command_event(evs[i].event_type);
    }
    if (count == 0) return 0;
    r->batch = malloc((size_t)count * sizeof *r->batch);
    if (r->batch == NULL) {
        run_poison(r, "resource-exhausted", "OutOfMemory", "the worker ran out of memory");
        return 0;
    }
    for (uint32_t i = from; i < n && evs[i].event_type != WEFT_EV_WORKFLOW_TASK_STARTED; i++) {
        if (match_is_command_event(evs[i].event_type)) r->batch[r->batch_count++] = &evs[i];
    }
    return count;
}

/* Activity cancels that had to wait for the activity's scheduled event id go first. */
static void step_send_deferred_cancels(wfe_run *r) {
    weft_future **pp = &r->cancel_queue;
    while (*pp != NULL && !r->poisoned) {
        weft_future *f = *pp;
        if (f->event_id == 0) {
            pp = &f->next;
            continue;
        }
        *pp = f->next;
        f->next = NULL;
        f->cancel_wanted = false;
        weft_command c = {.type = WEFT_CMD_REQUEST_CANCEL_ACTIVITY, .scheduled_event_id = f->event_id};
        run_emit(r, &c, "weft_future_cancel (deferred)", 0, NULL, true);
    }
}

/* Runs the code until it waits again. `replay`: its commands must reproduce r->batch. */
static void step_run(wfe_run *r, bool replay, uint64_t started_event_id) {
    WEFT_ASSERT(!r->poisoned && !r->co.running);
    r->replaying = replay;
    if (!r->closed) step_send_deferred_cancels(r);
    if (!r->poisoned && !r->fn_returned && !r->closed) sdk_coro_resume(&r->co);
    if (r->poisoned || !replay) return;
    if (r->batch_pos < r->batch_count) {
        char d[RUN_DESCRIBE_BYTES];
        run_poison(r, "non-determinism", "NonDeterministicError",
                   "non-determinism: history event %s was written by workflow task %llu, but "
                   "the code no longer produces it there (run %s); restore the previous code, "
                   "or guard the change with weft_wf_get_version",
                   match_describe_event(r->batch[r->batch_pos], d, sizeof d),
                   (unsigned long long)started_event_id, r->info.run_id);
    }
    r->replaying = false;
}

/* Sticky continuation: what the server wrote for the commands we sent last time. Any
 * disagreement means our cached state is not the server's; the caller replays from scratch. */
static int confirm_sent(wfe_run *r, weft_err *err) {
    uint32_t pos = 0;
    for (uint32_t i = 0; i < r->sent.count; i++) {
        cmd_rec *c = &r->sent.items[i];
        if (pos < r->batch_count && match_command(&c->cmd, r->batch[pos])) {
            run_bind_match(r, c->fut, r->batch[pos]);
            pos++;
        } else if (!c->optional) {
            return weft_err_set(err, WEFT_E_INVALID_ARGUMENT, "events",
                                "the history does not record the commands this worker sent "
                                "for task %llu; replay from the full history",
                                (unsigned long long)r->sent_started_id);
        }
    }
    if (pos != r->batch_count) {
        return weft_err_set(err, WEFT_E_INVALID_ARGUMENT, "events",
                            "the history records commands this worker did not send for task "
                            "%llu; replay from the full history",
                            (unsigned long long)r->sent_started_id);
    }
    r->sent.count = 0;
    r->sent_started_id = 0;
    r->batch_pos = r->batch_count;
    return 0;
}

static int feed_check(const wfe_run *r, const weft_event *evs, uint32_t n, uint64_t current,
                      weft_err *err) {
    if (n == 0) return weft_err_set(err, WEFT_E_INVALID_ARGUMENT, "events", "no events to feed");
    for (uint32_t i = 0; i < n; i++) {
        if (evs[i].event_id != r->next_event_id + i) {
            return weft_err_set(err, WEFT_E_INVALID_ARGUMENT, "events",
                                "event %u has id %llu where %llu was expected: the events do "
                                "not continue this run's history",
                                i, (unsigned long long)evs[i].event_id,
                                (unsigned long long)(r->next_event_id + i));
        }
    }
    if (r->next_event_id == 1 && evs[0].event_type != WEFT_EV_WORKFLOW_EXECUTION_STARTED) {
        return weft_err_set(err, WEFT_E_INVALID_ARGUMENT, "events",
                            "a history must start with WorkflowExecutionStarted, not %s",
                            weft_event_type_names[evs[0].event_type < WEFT_EV__COUNT
                                                      ? evs[0].event_type : 0]);
    }
    const weft_event *last = &evs[n - 1];
    if (current != 0 && (last->event_id != current ||
                         last->event_type != WEFT_EV_WORKFLOW_TASK_STARTED)) {
        return weft_err_set(err, WEFT_E_INVALID_ARGUMENT, "events",
                            "the current task's WorkflowTaskStarted (%llu) must be the last event",
                            (unsigned long long)current);
    }
    if (r->sent_started_id != 0 && (evs[0].event_type != WEFT_EV_WORKFLOW_TASK_COMPLETED ||
                                    evs[0].started_event_id != r->sent_started_id)) {
        return weft_err_set(err, WEFT_E_INVALID_ARGUMENT, "events",
                            "the previous task did not complete as sent; replay from the full "
                            "history");
    }
    return 0;
}

static void feed_result(wfe_run *r, uint64_t current, wfe_task_result *out) {
    *out = (wfe_task_result){0};
    if (r->poisoned) {
        out->failed = true;
        out->cause = r->cause;
        out->failure = r->failure;
        return;
    }
    if (current == 0) return;
    /* The commands now wait for the next task's events (sticky) in `sent`; the array the
     * caller reads is that same storage, valid until the next feed. */
    cmd_vec tmp = r->sent;
    r->sent = r->out;
    r->out = tmp;
    r->out.count = 0;
    r->sent_started_id = current;
    free(r->batch);
    r->batch = NULL;
    r->batch_count = r->batch_pos = 0;
    if (r->sent.count == 0) return;
    /* Expose the wire commands contiguously. */
    weft_command *cmds = sdk_arena_alloc(&r->arena, (size_t)r->sent.count * sizeof *cmds);
    if (cmds == NULL) {
        run_poison(r, "resource-exhausted", "OutOfMemory", "the worker ran out of memory");
        feed_result(r, current, out);
        return;
    }
    for (uint32_t i = 0; i < r->sent.count; i++) cmds[i] = r->sent.items[i].cmd;
    out->commands = cmds;
    out->commands_count = r->sent.count;
    uint32_t last = cmds[r->sent.count - 1].type;
    out->closes = last == WEFT_CMD_COMPLETE_WORKFLOW || last == WEFT_CMD_FAIL_WORKFLOW ||
                  last == WEFT_CMD_CANCEL_WORKFLOW || last == WEFT_CMD_CONTINUE_AS_NEW;
}

int wfe_run_feed(wfe_run *r, const weft_event *evs, uint32_t n, uint64_t current,
                 wfe_task_result *out, weft_err *err) {
    WEFT_ASSERT(r != NULL && out != NULL && !r->co.running);
    *out = (wfe_task_result){0};
    if (r->poisoned) {
        feed_result(r, current, out);
        return 0;
    }
    int rc = feed_check(r, evs, n, current, err);
    if (rc != 0) return rc;
    for (uint32_t i = 0; i < n && !r->poisoned; i++) {
        const weft_event *ev = &evs[i];
        r->next_event_id = ev->event_id + 1;
        switch (ev->event_type) {
        case WEFT_EV_WORKFLOW_EXECUTION_STARTED: on_started(r, ev); break;
        case WEFT_EV_WORKFLOW_TASK_STARTED: {
            bool completed = i + 1 < n && evs[i + 1].event_type == WEFT_EV_WORKFLOW_TASK_COMPLETED;
            bool is_current = current != 0 && ev->event_id == current;
            r->now_ms = WEFT_MAX(r->now_ms, ev->event_time_ms);
            if (completed) {
                collect_batch(r, evs, n, i + 2);
                if (!r->poisoned) step_run(r, true, ev->event_id);
            } else if (is_current) {
                step_run(r, false, ev->event_id);
            }
            break;
        }
        case WEFT_EV_WORKFLOW_TASK_COMPLETED:
            if (r->sent_started_id != 0 && ev->started_event_id == r->sent_started_id) {
                collect_batch(r, evs, n, i + 1);
                rc = r->poisoned ? 0 : confirm_sent(r, err);
                if (rc != 0) return rc;
            }
            break;
        case WEFT_EV_WORKFLOW_TASK_FAILED:
        case WEFT_EV_WORKFLOW_TASK_TIMED_OUT:
            /* A task this worker answered failed on the server: our state is ahead of it. */
            if (r->sent_started_id != 0 && ev->started_event_id == r->sent_started_id) {
                return weft_err_set(err, WEFT_E_INVALID_ARGUMENT, "events",
                                    "the task this worker completed was recorded as failed; "
                                    "replay from the full history");
            }
            break;
        default: on_event(r, ev); break;
        }
    }
    feed_result(r, current, out);
    return 0;
}
