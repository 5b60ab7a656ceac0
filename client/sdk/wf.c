/* wf.c: the API workflow code calls (worker.h, "Workflow code"): activities, timers, signals,
 * futures and waits, cancellation, deterministic helpers and closing. Every call runs on the
 * run's coroutine; a wait yields to the engine until history resolves what it waits for. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "run.h"

/* Marker names in history (DESIGN section 11: side effects and versions are markers). */
#define WF_MARKER_SIDE_EFFECT "SideEffect"
#define WF_MARKER_VERSION "Version"
/* "<version> <change id>" in a Version marker's details. */
#define WF_VERSION_DETAILS_BYTES_MAX (WEFT_WORKER_NAME_BYTES_MAX + 32u)

static wfe_run *wf_run(weft_wf *wf) {
    WEFT_ASSERT(wf != NULL && wf->run != NULL);
    wfe_run *r = wf->run;
    /* weft_wf_* may only run on the workflow's own coroutine (worker.h, "Threads"). */
    WEFT_ASSERT(r->co.running && !r->poisoned);
    return r;
}

/* ---- Information, memory, deterministic helpers ---- */

const weft_wf_info *weft_wf_info_get(weft_wf *wf) { return &wf_run(wf)->info; }

void *weft_wf_alloc(weft_wf *wf, size_t bytes) {
    return sdk_arena_alloc(&wf_run(wf)->arena, bytes);
}

weft_bytes weft_wf_bytes_copy(weft_wf *wf, weft_bytes b) { return run_bytes(wf_run(wf), b); }

uint64_t weft_wf_now_ms(weft_wf *wf) { return wf_run(wf)->now_ms; }

uint64_t weft_wf_random(weft_wf *wf) {
    wfe_run *r = wf_run(wf);
    /* xorshift64*: small, fast, and the same on every platform. */
    uint64_t x = r->rng_state;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    r->rng_state = x;
    return x * 0x2545F4914F6CDD1Dull;
}

bool weft_wf_is_replaying(weft_wf *wf) { return wf_run(wf)->replaying; }

bool weft_wf_cancel_requested(weft_wf *wf) { return wf_run(wf)->cancel_requested; }

/* Poisons the run for a misuse the code must fix; never returns. */
static void wf_panic(wfe_run *r, const char *file, int line, const char *what) {
    run_poison(r, "panic", "WorkflowPanic", "%s at %s:%d", what, file, line);
}

int weft_wf_side_effect_at(weft_wf *wf, const char *file, int line,
                           int (*fn)(void *arg, weft_bytes *out), void *arg, weft_bytes *out) {
    wfe_run *r = wf_run(wf);
    if (fn == NULL || out == NULL) wf_panic(r, file, line, "weft_wf_side_effect without fn or out");
    *out = (weft_bytes){0};
    if (r->replaying) {
        const weft_event *ev = run_peek(r);
        weft_command probe = {.type = WEFT_CMD_RECORD_MARKER,
                              .marker_name = WEFT_STR_LIT(WF_MARKER_SIDE_EFFECT)};
        /* run_emit matches the marker (or reports the divergence) like any command. */
        run_emit(r, &probe, file, line, NULL, false);
        *out = run_bytes(r, ev->details);
        return 0;
    }
    weft_bytes v = {0};
    int rc = fn(arg, &v);
    if (rc != 0) return rc;
    *out = run_bytes(r, v);
    weft_command c = {.type = WEFT_CMD_RECORD_MARKER,
                      .marker_name = WEFT_STR_LIT(WF_MARKER_SIDE_EFFECT),
                      .details = *out};
    run_emit(r, &c, file, line, NULL, false);
    return 0;
}

static version_rec *wf_version_find(wfe_run *r, const char *change_id) {
    for (version_rec *v = r->versions; v != NULL; v = v->next) {
        if (strcmp(v->change_id, change_id) == 0) return v;
    }
    return NULL;
}

/* Parses "<version> <change id>" and checks the change id. */
static bool wf_version_parse(weft_bytes d, const char *change_id, int *version) {
    char buf[WF_VERSION_DETAILS_BYTES_MAX];
    if (d.len == 0 || d.len >= sizeof buf) return false;
    memcpy(buf, d.ptr, d.len);
    buf[d.len] = '\0';
    char *sp = strchr(buf, ' ');
    if (sp == NULL || strcmp(sp + 1, change_id) != 0) return false;
    *sp = '\0';
    char *end = NULL;
    long v = strtol(buf, &end, 10);
    if (end == buf || *end != '\0' || v < -1 || v > 1000000) return false;
    *version = (int)v;
    return true;
}

int weft_wf_get_version_at(weft_wf *wf, const char *file, int line, const char *change_id,
                           int min_version, int max_version) {
    wfe_run *r = wf_run(wf);
    if (change_id == NULL || change_id[0] == '\0' || strlen(change_id) > WEFT_WORKER_NAME_BYTES_MAX ||
        min_version > max_version || min_version < WEFT_WF_DEFAULT_VERSION) {
        wf_panic(r, file, line, "weft_wf_get_version needs a change id and min <= max");
    }
    version_rec *known = wf_version_find(r, change_id);
    int v;
    if (known != NULL) {
        v = known->version;
    } else if (r->replaying) {
        /* Recorded here in history: the run took the new path. Absent: it predates the change. */
        const weft_event *ev = run_peek(r);
        v = WEFT_WF_DEFAULT_VERSION;
        if (ev != NULL && ev->event_type == WEFT_EV_MARKER_RECORDED &&
            weft_str_eq_c(ev->marker_name, WF_MARKER_VERSION) &&
            wf_version_parse(ev->details, change_id, &v)) {
            run_consume(r);
        }
    } else {
        v = max_version;
        char *details = run_printf(r, "%d %s", v, change_id);
        weft_command c = {.type = WEFT_CMD_RECORD_MARKER,
                          .marker_name = WEFT_STR_LIT(WF_MARKER_VERSION),
                          .details = {.ptr = (const uint8_t *)details,
                                      .len = (uint32_t)strlen(details)}};
        run_emit(r, &c, file, line, NULL, false);
    }
    if (known == NULL) {
        version_rec *rec = weft_wf_alloc(wf, sizeof *rec);
        if (rec == NULL) wf_panic(r, file, line, "out of memory in weft_wf_get_version");
        *rec = (version_rec){.change_id = run_cstrdup(r, change_id), .version = v,
                             .next = r->versions};
        r->versions = rec;
    }
    if (v < min_version || v > max_version) {
        run_poison(r, "non-determinism", "NonDeterministicError",
                   "non-determinism: change '%s' is at version %d in this run's history, but the "
                   "code at %s:%d supports only %d..%d; keep the old branch until such runs "
                   "have closed",
                   change_id, v, file, line, min_version, max_version);
    }
    return v;
}

/* ---- Futures and waits ---- */

static weft_future *wf_fut_failed_now(wfe_run *r, const char *type, const char *message) {
    weft_future *f = run_fut_new(r, FUT_IMMEDIATE);
    run_fut_resolve(f, WEFT_WF_FAILED, (weft_bytes){0}, type, message, (weft_bytes){0}, 0);
    return f;
}

/* Next deterministic id, or the caller's. */
static const char *wf_next_id(wfe_run *r, const char *given) {
    r->seq++;
    if (given != NULL && given[0] != '\0') return run_cstrdup(r, given);
    return run_printf(r, "%u", r->seq);
}

static bool wf_name_ok(const char *s) {
    return s != NULL && s[0] != '\0' && strlen(s) <= WEFT_WORKER_NAME_BYTES_MAX;
}

weft_future *weft_wf_activity_start_at(weft_wf *wf, const char *file, int line, const char *type,
                                       weft_bytes input, const weft_activity_opts *opts) {
    wfe_run *r = wf_run(wf);
    weft_activity_opts o = opts != NULL ? *opts : (weft_activity_opts){0};
    if (!wf_name_ok(type)) {
        return wf_fut_failed_now(r, "INVALID_ARGUMENT",
                                 run_printf(r, "activity type must be 1 to %u bytes (%s:%d)",
                                            WEFT_WORKER_NAME_BYTES_MAX, file, line));
    }
    if (o.task_queue != NULL && !wf_name_ok(o.task_queue)) {
        return wf_fut_failed_now(r, "INVALID_ARGUMENT",
                                 run_printf(r, "task_queue must be 1 to %u bytes (%s:%d)",
                                            WEFT_WORKER_NAME_BYTES_MAX, file, line));
    }
    if (o.start_to_close_timeout_ms == 0 && o.schedule_to_close_timeout_ms == 0) {
        o.start_to_close_timeout_ms = WEFT_ACTIVITY_START_TO_CLOSE_MS_DEFAULT;
    }
    weft_future *f = run_fut_new(r, FUT_ACTIVITY);
    f->id = wf_next_id(r, o.activity_id);
    weft_retry_policy rp = o.retry;
    if (rp.non_retryable_error_types_count > 0) {
        weft_str *types = weft_wf_alloc(wf, rp.non_retryable_error_types_count * sizeof *types);
        if (types == NULL) wf_panic(r, file, line, "out of memory scheduling an activity");
        for (uint32_t i = 0; i < rp.non_retryable_error_types_count; i++) {
            types[i] = weft_str_c(run_strdup(r, rp.non_retryable_error_types[i]));
        }
        rp.non_retryable_error_types = types;
    }
    weft_command c = {
        .type = WEFT_CMD_SCHEDULE_ACTIVITY,
        .activity_id = weft_str_c(f->id),
        .activity_type = weft_str_c(run_cstrdup(r, type)),
        .task_queue = weft_str_c(o.task_queue != NULL ? run_cstrdup(r, o.task_queue) : NULL),
        .input = run_bytes(r, input),
        .schedule_to_close_timeout_ms = o.schedule_to_close_timeout_ms,
        .schedule_to_start_timeout_ms = o.schedule_to_start_timeout_ms,
        .start_to_close_timeout_ms = o.start_to_close_timeout_ms,
        .heartbeat_timeout_ms = o.heartbeat_timeout_ms,
        .retry_policy = rp,
    };
    run_emit(r, &c, file, line, f, false);
    return f;
}

weft_future *weft_wf_timer_start_at(weft_wf *wf, const char *file, int line,
                                    uint64_t duration_ms) {
    wfe_run *r = wf_run(wf);
    if (duration_ms == 0) {
        weft_future *f = run_fut_new(r, FUT_IMMEDIATE);
        run_fut_resolve(f, 0, (weft_bytes){0}, NULL, NULL, (weft_bytes){0}, 0);
        return f;
    }
    weft_future *f = run_fut_new(r, FUT_TIMER);
    f->id = wf_next_id(r, NULL);
    weft_command c = {.type = WEFT_CMD_START_TIMER,
                      .timer_id = weft_str_c(f->id),
                      .start_to_fire_timeout_ms = duration_ms};
    run_emit(r, &c, file, line, f, false);
    return f;
}

/* ---- Signals ---- */

void wf_signal_deliver(wfe_run *r, weft_str name, weft_bytes payload) {
    weft_future *prev = NULL;
    for (weft_future *f = r->sig_wait_head; f != NULL; prev = f, f = f->next) {
        if (!weft_str_eq_c(name, f->signal_name)) continue;
        if (prev != NULL) prev->next = f->next;
        else r->sig_wait_head = f->next;
        if (r->sig_wait_tail == f) r->sig_wait_tail = prev;
        f->next = NULL;
        run_fut_resolve(f, 0, payload, NULL, NULL, (weft_bytes){0}, 0);
        return;
    }
    sig_rec *s = sdk_arena_alloc(&r->arena, sizeof *s);
    if (s == NULL) {
        run_poison(r, "resource-exhausted", "OutOfMemory", "the worker ran out of memory");
        return;
    }
    *s = (sig_rec){.name = run_strdup(r, name), .payload = run_bytes(r, payload)};
    if (r->sig_tail != NULL) r->sig_tail->next = s;
    else r->sig_head = s;
    r->sig_tail = s;
}

weft_future *weft_wf_signal_future(weft_wf *wf, const char *name) {
    wfe_run *r = wf_run(wf);
    if (!wf_name_ok(name)) {
        return wf_fut_failed_now(r, "INVALID_ARGUMENT", "signal name must be 1 to 1000 bytes");
    }
    weft_future *f = run_fut_new(r, FUT_SIGNAL);
    f->signal_name = run_cstrdup(r, name);
    for (sig_rec *s = r->sig_head; s != NULL; s = s->next) {
        if (!s->claimed && strcmp(s->name, name) == 0) {
            s->claimed = true;
            run_fut_resolve(f, 0, s->payload, NULL, NULL, (weft_bytes){0}, 0);
            return f;
        }
    }
    if (r->sig_wait_tail != NULL) r->sig_wait_tail->next = f;
    else r->sig_wait_head = f;
    r->sig_wait_tail = f;
    return f;
}

/* A signal future whose wait gave up stops claiming signals. */
static void wf_signal_release(wfe_run *r, weft_future *f) {
    if (f->ready || f->released) return;
    f->released = true;
    weft_future *prev = NULL;
    for (weft_future *t = r->sig_wait_head; t != NULL; prev = t, t = t->next) {
        if (t != f) continue;
        if (prev != NULL) prev->next = t->next;
        else r->sig_wait_head = t->next;
        if (r->sig_wait_tail == t) r->sig_wait_tail = prev;
        t->next = NULL;
        return;
    }
}

/* ---- Waiting ---- */

typedef bool (*wf_cond_fn)(weft_future *const *fs, size_t n);

static bool wf_all_ready(weft_future *const *fs, size_t n) {
    for (size_t i = 0; i < n; i++) {
        if (!fs[i]->ready) return false;
    }
    return true;
}

static bool wf_any_ready(weft_future *const *fs, size_t n) {
    for (size_t i = 0; i < n; i++) {
        if (fs[i]->ready) return true;
    }
    return n == 0;
}

/* Yields until cond holds, or returns WEFT_WF_CANCELED once for a workflow cancel request. */
static int wf_block(wfe_run *r, wf_cond_fn cond, weft_future *const *fs, size_t n) {
    for (;;) {
        if (cond(fs, n)) return 0;
        if (r->cancel_requested && !r->cancel_delivered) {
            r->cancel_delivered = true;
            return WEFT_WF_CANCELED;
        }
        run_yield(r);
    }
}

static void wf_check_futures(wfe_run *r, weft_future *const *fs, size_t n) {
    if (n > WEFT_WF_AWAIT_FUTURES_MAX) {
        run_poison(r, "panic", "WorkflowPanic", "await of %zu futures exceeds %u "
                   "(WEFT_WF_AWAIT_FUTURES_MAX)", n, WEFT_WF_AWAIT_FUTURES_MAX);
    }
    for (size_t i = 0; i < n; i++) {
        if (fs == NULL || fs[i] == NULL || fs[i]->run != r) {
            run_poison(r, "panic", "WorkflowPanic",
                       "await of a NULL future or a future of another run (index %zu)", i);
        }
    }
}

static void wf_note_failure(wfe_run *r, const weft_future *f, int rc) {
    if (rc == 0) return;
    if (f != NULL && f->ready && f->outcome != 0) {
        r->last_failure = f->failure;
    } else {
        r->last_failure = (weft_wf_failure){.type = "Canceled",
                                            .message = "the workflow's cancellation was requested"};
    }
}

int weft_wf_await(weft_wf *wf, weft_future *f) {
    wfe_run *r = wf_run(wf);
    wf_check_futures(r, &f, 1);
    int rc = wf_block(r, wf_all_ready, &f, 1);
    if (rc == 0) rc = f->outcome;
    wf_note_failure(r, f, rc);
    return rc;
}

int weft_wf_await_all(weft_wf *wf, weft_future *const *fs, size_t n) {
    wfe_run *r = wf_run(wf);
    wf_check_futures(r, fs, n);
    int rc = wf_block(r, wf_all_ready, fs, n);
    if (rc != 0) {
        wf_note_failure(r, NULL, rc);
        return rc;
    }
    for (size_t i = 0; i < n; i++) {
        if (fs[i]->outcome != 0) {
            wf_note_failure(r, fs[i], fs[i]->outcome);
            return fs[i]->outcome;
        }
    }
    return 0;
}

int weft_wf_await_any(weft_wf *wf, weft_future *const *fs, size_t n, size_t *index) {
    wfe_run *r = wf_run(wf);
    wf_check_futures(r, fs, n);
    size_t idx = n;
    int rc = wf_block(r, wf_any_ready, fs, n);
    if (rc == 0) {
        for (size_t i = 0; i < n; i++) {
            if (fs[i]->ready) {
                idx = i;
                break;
            }
        }
        rc = idx < n ? fs[idx]->outcome : 0;
    }
    if (index != NULL) *index = idx;
    wf_note_failure(r, idx < n ? fs[idx] : NULL, rc);
    return rc;
}

bool weft_future_ready(const weft_future *f) { return f != NULL && f->ready; }

int weft_future_result(const weft_future *f, weft_bytes *out) {
    if (out != NULL) *out = (weft_bytes){0};
    if (f == NULL || !f->ready) return -WEFT_E_FAILED_PRECONDITION;
    if (out != NULL) *out = f->result;
    return f->outcome;
}

const weft_wf_failure *weft_future_failure(const weft_future *f) {
    return f != NULL && f->ready && f->outcome != 0 ? &f->failure : NULL;
}

const weft_wf_failure *weft_wf_last_failure(weft_wf *wf) {
    wfe_run *r = wf_run(wf);
    return r->last_failure.type != NULL ? &r->last_failure : NULL;
}

int weft_future_cancel_at(weft_wf *wf, const char *file, int line, weft_future *f) {
    wfe_run *r = wf_run(wf);
    wf_check_futures(r, &f, 1);
    if (f->ready) return 0;
    switch (f->kind) {
    case FUT_TIMER: {
        weft_command c = {.type = WEFT_CMD_CANCEL_TIMER, .timer_id = weft_str_c(f->id)};
        run_emit(r, &c, file, line, NULL, true);
        break;
    }
    case FUT_ACTIVITY:
        if (f->event_id != 0) {
            weft_command c = {.type = WEFT_CMD_REQUEST_CANCEL_ACTIVITY,
                              .scheduled_event_id = f->event_id};
            run_emit(r, &c, file, line, NULL, true);
        } else {
            /* Scheduled in this very task: its event id exists only once the server wrote it,
             * so the request goes out first thing in the next task (engine.c). */
            f->cancel_wanted = true;
            f->next = r->cancel_queue;
            r->cancel_queue = f;
        }
        /* The future resolves with what the activity reports: ActivityTaskCanceled, or its
         * result if it finished first, so a saga knows whether the step took effect. */
        return 0;
    case FUT_SIGNAL: wf_signal_release(r, f); break;
    case FUT_IMMEDIATE: break;
    }
    run_fut_resolve(f, WEFT_WF_CANCELED, (weft_bytes){0}, "Canceled",
                    run_printf(r, "canceled by the workflow at %s:%d", file, line),
                    (weft_bytes){0}, 0);
    return 0;
}

/* ---- Blocking conveniences ---- */

int weft_wf_activity_at(weft_wf *wf, const char *file, int line, const char *type,
                        weft_bytes input, const weft_activity_opts *opts, weft_bytes *out) {
    if (out != NULL) *out = (weft_bytes){0};
    weft_future *f = weft_wf_activity_start_at(wf, file, line, type, input, opts);
    int rc = weft_wf_await(wf, f);
    if (rc == WEFT_WF_CANCELED && !f->ready) {
        /* The workflow's cancel interrupted the wait: the activity is asked to stop too, and
         * this call returns at once (its outcome is not awaited; use a future for that). */
        weft_future_cancel_at(wf, file, line, f);
        wf_note_failure(wf->run, NULL, rc);
    }
    if (rc == 0 && out != NULL) *out = f->result;
    return rc;
}

int weft_wf_sleep_at(weft_wf *wf, const char *file, int line, uint64_t duration_ms) {
    weft_future *f = weft_wf_timer_start_at(wf, file, line, duration_ms);
    int rc = weft_wf_await(wf, f);
    if (rc == WEFT_WF_CANCELED && !f->ready) weft_future_cancel_at(wf, file, line, f);
    return rc;
}

int weft_wf_signal_wait_at(weft_wf *wf, const char *file, int line, const char *name,
                           uint64_t timeout_ms, weft_bytes *payload) {
    wfe_run *r = wf_run(wf);
    if (payload != NULL) *payload = (weft_bytes){0};
    weft_future *fs[2];
    fs[0] = weft_wf_signal_future(wf, name);
    size_t n = 1;
    if (!fs[0]->ready && timeout_ms > 0) fs[n++] = weft_wf_timer_start_at(wf, file, line, timeout_ms);
    size_t idx = n;
    int rc = weft_wf_await_any(wf, fs, n, &idx);
    if (fs[0]->ready) {
        if (n == 2 && !fs[1]->ready) weft_future_cancel_at(wf, file, line, fs[1]);
        if (fs[0]->outcome == 0 && payload != NULL) *payload = fs[0]->result;
        return fs[0]->outcome;
    }
    wf_signal_release(r, fs[0]);
    if (rc == WEFT_WF_CANCELED && n == 2 && !fs[1]->ready) weft_future_cancel_at(wf, file, line, fs[1]);
    if (rc == WEFT_WF_CANCELED) return rc;
    r->last_failure = (weft_wf_failure){
        .type = "Timeout:signal",
        .message = run_printf(r, "no '%s' signal within %llu ms", name,
                              (unsigned long long)timeout_ms)};
    return WEFT_WF_TIMED_OUT;
}

/* ---- Closing ---- */

int weft_wf_fail(weft_wf *wf, const char *type, const char *message) {
    wfe_run *r = wf_run(wf);
    r->close_failure = (weft_failure){
        .type = weft_str_c(run_cstrdup(r, type != NULL && type[0] ? type : "WorkflowError")),
        .message = weft_str_c(run_cstrdup(r, message != NULL ? message : "")),
    };
    return WEFT_WF_RESULT_FAIL;
}

int weft_wf_cancel_done(weft_wf *wf) {
    (void)wf_run(wf);
    return WEFT_WF_RESULT_CANCEL;
}

int weft_wf_continue_as_new(weft_wf *wf, weft_bytes input) {
    wfe_run *r = wf_run(wf);
    r->continue_input = run_bytes(r, input);
    return WEFT_WF_RESULT_CONTINUE;
}

/* The close command for what the workflow function returned. */
static weft_command wf_close_command(wfe_run *r, int rc, weft_bytes out) {
    switch (rc) {
    case WEFT_WF_RESULT_COMPLETE:
        return (weft_command){.type = WEFT_CMD_COMPLETE_WORKFLOW, .result = run_bytes(r, out)};
    case WEFT_WF_RESULT_FAIL:
        if (r->close_failure.type.len == 0) {
            r->close_failure = (weft_failure){.type = WEFT_STR_LIT("WorkflowError"),
                                              .message = WEFT_STR_LIT("the workflow failed")};
        }
        return (weft_command){.type = WEFT_CMD_FAIL_WORKFLOW, .failure = r->close_failure};
    case WEFT_WF_RESULT_CANCEL: return (weft_command){.type = WEFT_CMD_CANCEL_WORKFLOW};
    case WEFT_WF_RESULT_CONTINUE:
        return (weft_command){.type = WEFT_CMD_CONTINUE_AS_NEW, .input = r->continue_input};
    default:
        break;
    }
    if (rc == WEFT_WF_CANCELED && r->cancel_requested) {
        return (weft_command){.type = WEFT_CMD_CANCEL_WORKFLOW};
    }
    /* Any other code fails the workflow, carrying the latest failure the code saw. */
    const weft_wf_failure *lf = r->last_failure.type != NULL ? &r->last_failure : NULL;
    weft_failure f = {
        .type = weft_str_c(lf != NULL ? lf->type : "WorkflowError"),
        .message = weft_str_c(run_printf(r, "the workflow function returned %d%s%s", rc,
                                         lf != NULL ? ": " : "", lf != NULL ? lf->message : "")),
    };
    return (weft_command){.type = WEFT_CMD_FAIL_WORKFLOW, .failure = f};
}

void wf_main(void *arg) {
    wfe_run *r = arg;
    weft_bytes out = {0};
    int rc = r->fn(&r->wf, r->input, &out, r->fn_arg);
    r->fn_returned = true;
    weft_command c = wf_close_command(r, rc, out);
    char site[WEFT_WORKER_NAME_BYTES_MAX + 32];
    snprintf(site, sizeof site, "the return of workflow %s", r->info.workflow_type);
    run_emit(r, &c, run_cstrdup(r, site), 0, NULL, false);
    r->closed = true;
}
