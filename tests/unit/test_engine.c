/* test_engine.c: the workflow replay engine (client/sdk/engine.c) against histories that a tiny
 * in-test server writes the way shards/ does. Every task is answered twice: by a cached run fed
 * only the new events (sticky), and by a fresh run replaying the whole history; both must
 * produce the same commands. Divergent code must be reported with the event and call site. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "client/sdk/engine.h"
#include "weft/worker.h"

/* ---- A tiny server: history as shards/ writes it ---- */

#define HS_EVENTS_MAX 512

typedef struct hs {
    weft_event ev[HS_EVENTS_MAX];
    char *strs[HS_EVENTS_MAX * 4]; /* copies the events point into */
    uint32_t strs_count;
    uint32_t n;
    uint64_t now_ms;
    uint64_t started_id; /* the task in flight */
} hs;

static weft_str hs_str(hs *h, weft_str s) {
    if (s.len == 0) return (weft_str){0};
    char *p = malloc(s.len);
    memcpy(p, s.ptr, s.len);
    h->strs[h->strs_count++] = p;
    return (weft_str){.ptr = p, .len = s.len};
}

static weft_bytes hs_bytes(hs *h, weft_bytes b) {
    weft_str s = hs_str(h, (weft_str){.ptr = (const char *)b.ptr, .len = b.len});
    return (weft_bytes){.ptr = (const uint8_t *)s.ptr, .len = s.len};
}

static weft_event *hs_add(hs *h, uint32_t type) {
    assert_true(h->n < HS_EVENTS_MAX);
    weft_event *e = &h->ev[h->n];
    *e = (weft_event){.event_id = h->n + 1, .event_time_ms = h->now_ms += 10, .event_type = type};
    h->n++;
    return e;
}

static void hs_free(hs *h) {
    for (uint32_t i = 0; i < h->strs_count; i++) free(h->strs[i]);
    memset(h, 0, sizeof *h);
}

static uint64_t hs_task(hs *h) {
    hs_add(h, WEFT_EV_WORKFLOW_TASK_SCHEDULED);
    weft_event *s = hs_add(h, WEFT_EV_WORKFLOW_TASK_STARTED);
    s->scheduled_event_id = s->event_id - 1;
    h->started_id = s->event_id;
    return s->event_id;
}

static void hs_start(hs *h, const char *type, const char *input) {
    weft_event *e = hs_add(h, WEFT_EV_WORKFLOW_EXECUTION_STARTED);
    e->workflow_type = weft_str_c(type);
    e->task_queue = WEFT_STR_LIT("q");
    e->input = (weft_bytes){.ptr = (const uint8_t *)input, .len = (uint32_t)strlen(input)};
    e->first_run_id = WEFT_STR_LIT("run-1");
    hs_task(h);
}

static uint64_t hs_find_sched(hs *h, const char *activity_id) {
    for (uint32_t i = 0; i < h->n; i++) {
        if (h->ev[i].event_type == WEFT_EV_ACTIVITY_TASK_SCHEDULED &&
            weft_str_eq_c(h->ev[i].activity_id, activity_id)) {
            return h->ev[i].event_id;
        }
    }
    fail_msg("no activity %s", activity_id);
    return 0;
}

/* Applies a task's commands like shards/commands.c. */
static void hs_complete(hs *h, const weft_command *c, uint32_t n) {
    weft_event *done = hs_add(h, WEFT_EV_WORKFLOW_TASK_COMPLETED);
    done->started_event_id = h->started_id;
    for (uint32_t i = 0; i < n; i++) {
        weft_event *e;
        switch (c[i].type) {
        case WEFT_CMD_SCHEDULE_ACTIVITY:
            e = hs_add(h, WEFT_EV_ACTIVITY_TASK_SCHEDULED);
            e->activity_id = hs_str(h, c[i].activity_id);
            e->activity_type = hs_str(h, c[i].activity_type);
            e->input = hs_bytes(h, c[i].input);
            break;
        case WEFT_CMD_START_TIMER:
            e = hs_add(h, WEFT_EV_TIMER_STARTED);
            e->timer_id = hs_str(h, c[i].timer_id);
            e->start_to_fire_timeout_ms = c[i].start_to_fire_timeout_ms;
            break;
        case WEFT_CMD_CANCEL_TIMER:
            e = hs_add(h, WEFT_EV_TIMER_CANCELED);
            e->timer_id = hs_str(h, c[i].timer_id);
            break;
        case WEFT_CMD_REQUEST_CANCEL_ACTIVITY:
            e = hs_add(h, WEFT_EV_ACTIVITY_TASK_CANCEL_REQUESTED);
            e->scheduled_event_id = c[i].scheduled_event_id;
            break;
        case WEFT_CMD_RECORD_MARKER:
            e = hs_add(h, WEFT_EV_MARKER_RECORDED);
            e->marker_name = hs_str(h, c[i].marker_name);
            e->details = hs_bytes(h, c[i].details);
            break;
        case WEFT_CMD_COMPLETE_WORKFLOW:
            e = hs_add(h, WEFT_EV_WORKFLOW_EXECUTION_COMPLETED);
            e->result = hs_bytes(h, c[i].result);
            break;
        case WEFT_CMD_FAIL_WORKFLOW:
            e = hs_add(h, WEFT_EV_WORKFLOW_EXECUTION_FAILED);
            e->failure.type = hs_str(h, c[i].failure.type);
            e->failure.message = hs_str(h, c[i].failure.message);
            break;
        case WEFT_CMD_CANCEL_WORKFLOW: hs_add(h, WEFT_EV_WORKFLOW_EXECUTION_CANCELED); break;
        case WEFT_CMD_CONTINUE_AS_NEW:
            e = hs_add(h, WEFT_EV_WORKFLOW_EXECUTION_CONTINUED_AS_NEW);
            e->input = hs_bytes(h, c[i].input);
            break;
        default: fail_msg("unexpected command %u", c[i].type);
        }
    }
    h->started_id = 0;
}

static void hs_activity_done(hs *h, const char *activity_id, const char *result) {
    uint64_t sched = hs_find_sched(h, activity_id);
    weft_event *s = hs_add(h, WEFT_EV_ACTIVITY_TASK_STARTED);
    s->scheduled_event_id = sched;
    s->attempt = 1;
    weft_event *c = hs_add(h, WEFT_EV_ACTIVITY_TASK_COMPLETED);
    c->scheduled_event_id = sched;
    c->started_event_id = s->event_id;
    c->result = (weft_bytes){.ptr = (const uint8_t *)result, .len = (uint32_t)strlen(result)};
}

static void hs_activity_failed(hs *h, const char *activity_id, const char *type) {
    uint64_t sched = hs_find_sched(h, activity_id);
    weft_event *s = hs_add(h, WEFT_EV_ACTIVITY_TASK_STARTED);
    s->scheduled_event_id = sched;
    s->attempt = 3;
    weft_event *c = hs_add(h, WEFT_EV_ACTIVITY_TASK_FAILED);
    c->scheduled_event_id = sched;
    c->started_event_id = s->event_id;
    c->attempt = 3;
    c->failure.type = weft_str_c(type);
    c->failure.message = WEFT_STR_LIT("it broke");
}

static void hs_timer_fired(hs *h, const char *timer_id) {
    for (uint32_t i = 0; i < h->n; i++) {
        if (h->ev[i].event_type == WEFT_EV_TIMER_STARTED && weft_str_eq_c(h->ev[i].timer_id, timer_id)) {
            weft_event *e = hs_add(h, WEFT_EV_TIMER_FIRED);
            e->timer_id = weft_str_c(timer_id);
            e->started_event_id = h->ev[i].event_id;
            return;
        }
    }
    fail_msg("no timer %s", timer_id);
}

static void hs_signal(hs *h, const char *name, const char *payload) {
    weft_event *e = hs_add(h, WEFT_EV_WORKFLOW_EXECUTION_SIGNALED);
    e->signal_name = weft_str_c(name);
    e->input = (weft_bytes){.ptr = (const uint8_t *)payload, .len = (uint32_t)strlen(payload)};
}

/* ---- Driving the engine: sticky and full replay side by side ---- */

typedef struct drv {
    hs h;
    wfe_run *sticky;        /* fed only new events */
    uint64_t fed_through;   /* last event id the sticky run saw */
    weft_workflow_fn fn;
    void *arg;
    wfe_task_result res;    /* of the sticky run */
} drv;

static wfe_run *drv_new_run(drv *d) {
    wfe_run_params p = {.workflow_id = WEFT_STR_LIT("wf-1"),
                        .run_id = WEFT_STR_LIT("run-1"),
                        .workflow_type = WEFT_STR_LIT("t"),
                        .task_queue = WEFT_STR_LIT("q"),
                        .fn = d->fn,
                        .arg = d->arg,
                        .stack_bytes = WEFT_WORKER_WF_STACK_BYTES_DEFAULT};
    wfe_run *r = NULL;
    weft_err err;
    assert_int_equal(wfe_run_new(&p, &r, &err), 0);
    return r;
}

static bool cmds_equal(const wfe_task_result *a, const wfe_task_result *b) {
    if (a->commands_count != b->commands_count || a->failed != b->failed) return false;
    for (uint32_t i = 0; i < a->commands_count; i++) {
        const weft_command *x = &a->commands[i], *y = &b->commands[i];
        if (x->type != y->type || !weft_str_eq(x->activity_id, y->activity_id) ||
            !weft_str_eq(x->activity_type, y->activity_type) || !weft_str_eq(x->timer_id, y->timer_id) ||
            x->start_to_fire_timeout_ms != y->start_to_fire_timeout_ms ||
            x->scheduled_event_id != y->scheduled_event_id ||
            !weft_str_eq(x->marker_name, y->marker_name) || x->result.len != y->result.len ||
            (x->result.len && memcmp(x->result.ptr, y->result.ptr, x->result.len) != 0) ||
            x->input.len != y->input.len ||
            (x->input.len && memcmp(x->input.ptr, y->input.ptr, x->input.len) != 0)) {
            return false;
        }
    }
    return true;
}

/* Answers the task in flight with both runs, checks they agree, applies the commands. */
static const wfe_task_result *drv_task(drv *d) {
    weft_err err;
    if (d->sticky == NULL) d->sticky = drv_new_run(d);
    uint32_t from = (uint32_t)d->fed_through;
    assert_int_equal(wfe_run_feed(d->sticky, &d->h.ev[from], d->h.n - from, d->h.started_id,
                                  &d->res, &err), 0);
    d->fed_through = d->h.n;
    wfe_run *fresh = drv_new_run(d);
    wfe_task_result full;
    assert_int_equal(wfe_run_feed(fresh, d->h.ev, d->h.n, d->h.started_id, &full, &err), 0);
    assert_true(cmds_equal(&d->res, &full));
    wfe_run_free(fresh);
    if (!d->res.failed) hs_complete(&d->h, d->res.commands, d->res.commands_count);
    return &d->res;
}

static void drv_free(drv *d) {
    wfe_run_free(d->sticky);
    hs_free(&d->h);
}

static weft_bytes B(const char *s) {
    return (weft_bytes){.ptr = (const uint8_t *)s, .len = (uint32_t)strlen(s)};
}

static bool bytes_is(weft_bytes b, const char *s) {
    return b.len == strlen(s) && memcmp(b.ptr, s, b.len) == 0;
}

/* ---- Workflows under test ---- */

/* charge, then reserve and ship in parallel, then sleep 1 s, then wait for "go" (5 s timeout). */
static int wf_order(weft_wf *wf, weft_bytes input, weft_bytes *out, void *arg) {
    bool swapped = arg != NULL; /* the "changed code": reserve before charge */
    weft_bytes r;
    if (weft_wf_activity(wf, swapped ? "reserve" : "charge", input, NULL, &r) != 0) {
        return weft_wf_fail(wf, "ChargeFailed", weft_wf_last_failure(wf)->message);
    }
    weft_future *par[2] = {weft_wf_activity_start(wf, swapped ? "charge" : "reserve", r, NULL),
                           weft_wf_activity_start(wf, "ship", r, NULL)};
    if (weft_wf_await_all(wf, par, 2) != 0) return weft_wf_fail(wf, "StepFailed", "parallel");
    if (weft_wf_sleep(wf, 1000) != 0) return weft_wf_cancel_done(wf);
    weft_bytes go;
    int rc = weft_wf_signal_wait(wf, "go", 5000, &go);
    *out = rc == 0 ? go : B("timeout");
    return 0;
}

static void order_run(drv *d, bool signal_in_time) {
    hs_start(&d->h, "order", "{\"sku\":1}");
    const wfe_task_result *t = drv_task(d);
    assert_int_equal(t->commands_count, 1);
    assert_int_equal(t->commands[0].type, WEFT_CMD_SCHEDULE_ACTIVITY);
    assert_true(weft_str_eq_c(t->commands[0].activity_type, "charge"));
    assert_true(weft_str_eq_c(t->commands[0].activity_id, "1"));
    assert_true(bytes_is(t->commands[0].input, "{\"sku\":1}"));
    hs_activity_done(&d->h, "1", "receipt");
    hs_task(&d->h);
    t = drv_task(d);
    assert_int_equal(t->commands_count, 2);
    assert_true(weft_str_eq_c(t->commands[0].activity_type, "reserve"));
    assert_true(weft_str_eq_c(t->commands[1].activity_type, "ship"));
    assert_true(bytes_is(t->commands[1].input, "receipt"));
    /* ship finishes first: the workflow still waits for reserve (no commands). */
    hs_activity_done(&d->h, "3", "shipped");
    hs_task(&d->h);
    t = drv_task(d);
    assert_int_equal(t->commands_count, 0);
    hs_activity_done(&d->h, "2", "reserved");
    hs_task(&d->h);
    t = drv_task(d);
    assert_int_equal(t->commands_count, 1);
    assert_int_equal(t->commands[0].type, WEFT_CMD_START_TIMER);
    assert_int_equal(t->commands[0].start_to_fire_timeout_ms, 1000);
    hs_timer_fired(&d->h, "4");
    hs_task(&d->h);
    t = drv_task(d);
    assert_int_equal(t->commands_count, 1); /* the signal wait's timeout timer */
    assert_int_equal(t->commands[0].type, WEFT_CMD_START_TIMER);
    assert_int_equal(t->commands[0].start_to_fire_timeout_ms, 5000);
    if (signal_in_time) {
        hs_signal(&d->h, "go", "yes");
    } else {
        hs_timer_fired(&d->h, "5");
    }
    hs_task(&d->h);
    t = drv_task(d);
    uint32_t last = t->commands_count - 1;
    assert_true(t->closes);
    assert_int_equal(t->commands[last].type, WEFT_CMD_COMPLETE_WORKFLOW);
    assert_true(bytes_is(t->commands[last].result, signal_in_time ? "yes" : "timeout"));
    if (signal_in_time) {
        /* The timeout timer is canceled before completing. */
        assert_int_equal(t->commands_count, 2);
        assert_int_equal(t->commands[0].type, WEFT_CMD_CANCEL_TIMER);
    }
}

static void test_order_sticky_equals_replay(void **state) {
    (void)state;
    for (int s = 0; s < 2; s++) {
        drv d = {.fn = wf_order};
        order_run(&d, s == 0);
        drv_free(&d);
    }
}

/* The replayer: the same code replays a finished history cleanly; swapped activities diverge
 * and the report names the event and the call site. */
static void test_replayer_divergence(void **state) {
    (void)state;
    drv d = {.fn = wf_order};
    order_run(&d, true);
    weft_replayer *rp = NULL;
    weft_err err;
    assert_int_equal(weft_replayer_new(&rp, &err), 0);
    assert_int_equal(weft_replayer_register_workflow(rp, "order", wf_order, NULL, &err), 0);
    assert_int_equal(weft_replayer_replay(rp, d.h.ev, d.h.n, &err), 0);
    weft_replayer_free(rp);

    assert_int_equal(weft_replayer_new(&rp, &err), 0);
    assert_int_equal(weft_replayer_register_workflow(rp, "order", wf_order, (void *)1, &err), 0);
    assert_int_equal(weft_replayer_replay(rp, d.h.ev, d.h.n, &err), -WEFT_E_FAILED_PRECONDITION);
    assert_non_null(strstr(err.message, "non-determinism"));
    assert_non_null(strstr(err.message, "ActivityTaskScheduled (activity_id 1, type charge)"));
    assert_non_null(strstr(err.message, "ScheduleActivity (activity_id 1, type reserve)"));
    assert_non_null(strstr(err.message, "test_engine.c:"));
    weft_replayer_free(rp);
    drv_free(&d);
}

/* A worker whose code changed fails the task (non-determinism), naming the call site. */
static void test_changed_code_fails_task(void **state) {
    (void)state;
    drv d = {.fn = wf_order};
    hs_start(&d.h, "order", "{}");
    drv_task(&d);
    hs_activity_done(&d.h, "1", "receipt");
    hs_task(&d.h);
    wfe_run *r = NULL;
    d.arg = (void *)1;
    r = drv_new_run(&d);
    wfe_task_result res;
    weft_err err;
    assert_int_equal(wfe_run_feed(r, d.h.ev, d.h.n, d.h.started_id, &res, &err), 0);
    assert_true(res.failed);
    assert_string_equal(res.cause, "non-determinism");
    assert_non_null(strstr(res.failure.message.ptr, "event 5 ActivityTaskScheduled"));
    /* A poisoned run stays poisoned. */
    assert_int_equal(wfe_run_feed(r, NULL, 0, 0, &res, &err), 0);
    assert_true(res.failed);
    wfe_run_free(r);
    drv_free(&d);
}

/* Failures reach the code with their type and message; the workflow fails with them. */
static void test_activity_failure(void **state) {
    (void)state;
    drv d = {.fn = wf_order};
    hs_start(&d.h, "order", "{}");
    drv_task(&d);
    hs_activity_failed(&d.h, "1", "CardDeclined");
    hs_task(&d.h);
    const wfe_task_result *t = drv_task(&d);
    assert_int_equal(t->commands_count, 1);
    assert_int_equal(t->commands[0].type, WEFT_CMD_FAIL_WORKFLOW);
    assert_true(weft_str_eq_c(t->commands[0].failure.type, "ChargeFailed"));
    assert_true(weft_str_eq_c(t->commands[0].failure.message, "it broke"));
    drv_free(&d);
}

/* Cancellation is delivered once; the code compensates and closes as canceled. */
static int wf_cancellable(weft_wf *wf, weft_bytes input, weft_bytes *out, void *arg) {
    (void)input, (void)out, (void)arg;
    weft_future *f = weft_wf_activity_start(wf, "long", B("x"), NULL);
    int rc = weft_wf_await(wf, f);
    if (rc == WEFT_WF_CANCELED) {
        if (!weft_wf_cancel_requested(wf)) return weft_wf_fail(wf, "Unexpected", "no cancel");
        weft_future_cancel(wf, f);
        /* The activity's own outcome: the future waits for what the server records. */
        if (weft_wf_await(wf, f) != WEFT_WF_CANCELED) {
            return weft_wf_fail(wf, "Unexpected", "the activity was not canceled");
        }
        if (weft_wf_activity(wf, "compensate", B("x"), NULL, NULL) != 0) return -1;
        return weft_wf_cancel_done(wf);
    }
    return 0;
}

static void test_cancel_and_compensate(void **state) {
    (void)state;
    drv d = {.fn = wf_cancellable};
    hs_start(&d.h, "c", "");
    drv_task(&d);
    hs_add(&d.h, WEFT_EV_WORKFLOW_EXECUTION_CANCEL_REQUESTED);
    hs_task(&d.h);
    const wfe_task_result *t = drv_task(&d);
    assert_int_equal(t->commands_count, 1);
    assert_int_equal(t->commands[0].type, WEFT_CMD_REQUEST_CANCEL_ACTIVITY);
    assert_int_equal(t->commands[0].scheduled_event_id, 5);
    weft_event *canceled = hs_add(&d.h, WEFT_EV_ACTIVITY_TASK_CANCELED);
    canceled->scheduled_event_id = 5;
    hs_task(&d.h);
    t = drv_task(&d);
    assert_int_equal(t->commands_count, 1);
    assert_true(weft_str_eq_c(t->commands[0].activity_type, "compensate"));
    hs_activity_done(&d.h, "2", "ok");
    hs_task(&d.h);
    t = drv_task(&d);
    assert_int_equal(t->commands_count, 1);
    assert_int_equal(t->commands[0].type, WEFT_CMD_CANCEL_WORKFLOW);
    drv_free(&d);
}

/* Side effects run once and replay from the marker; random and now are deterministic;
 * get_version records the new path and old histories take the default. */
static int g_side_calls;
static int side_fn(void *arg, weft_bytes *out) {
    (void)arg;
    g_side_calls++;
    static char buf[32];
    snprintf(buf, sizeof buf, "v%d", g_side_calls);
    *out = B(buf);
    return 0;
}

static int wf_helpers(weft_wf *wf, weft_bytes input, weft_bytes *out, void *arg) {
    (void)input;
    int v = weft_wf_get_version(wf, "use-side", WEFT_WF_DEFAULT_VERSION, arg ? 2 : 1);
    weft_bytes se = {0};
    if (v >= 1) assert_int_equal(weft_wf_side_effect(wf, side_fn, NULL, &se), 0);
    uint64_t r1 = weft_wf_random(wf);
    uint64_t t0 = weft_wf_now_ms(wf);
    weft_wf_sleep(wf, 10);
    assert_true(weft_wf_now_ms(wf) > t0);
    char *s = weft_wf_alloc(wf, 64);
    snprintf(s, 64, "%d:%.*s:%llu", v, (int)se.len, (const char *)se.ptr,
             (unsigned long long)(r1 % 1000));
    *out = B(s);
    return 0;
}

static void test_side_effect_version_random(void **state) {
    (void)state;
    g_side_calls = 0;
    drv d = {.fn = wf_helpers};
    hs_start(&d.h, "h", "");
    const wfe_task_result *t = drv_task(&d);
    /* The fresh full replay also ran the current step and called fn: once per run, per task. */
    assert_int_equal(t->commands_count, 3);
    assert_true(weft_str_eq_c(t->commands[0].marker_name, "Version"));
    assert_true(weft_str_eq_c(t->commands[1].marker_name, "SideEffect"));
    int calls = g_side_calls;
    hs_timer_fired(&d.h, "1");
    hs_task(&d.h);
    t = drv_task(&d);
    /* Replaying the marker does not call fn again. */
    assert_int_equal(g_side_calls, calls);
    assert_int_equal(t->commands[0].type, WEFT_CMD_COMPLETE_WORKFLOW);
    char want[64];
    memcpy(want, t->commands[0].result.ptr, t->commands[0].result.len);
    want[t->commands[0].result.len] = '\0';
    assert_true(strncmp(want, "1:v1:", 5) == 0);
    /* Newer code (max version 2) replays the old history at version 1. */
    weft_replayer *rp = NULL;
    weft_err err;
    assert_int_equal(weft_replayer_new(&rp, &err), 0);
    assert_int_equal(weft_replayer_register_workflow(rp, "h", wf_helpers, (void *)1, &err), 0);
    assert_int_equal(weft_replayer_replay(rp, d.h.ev, d.h.n, &err), 0);
    weft_replayer_free(rp);
    drv_free(&d);
}

/* Continue-as-new carries the input. */
static int wf_loop(weft_wf *wf, weft_bytes input, weft_bytes *out, void *arg) {
    (void)out, (void)arg;
    int n = input.len ? atoi((const char *)input.ptr) : 0;
    weft_wf_activity(wf, "bill", input, NULL, NULL);
    char *next = weft_wf_alloc(wf, 16);
    snprintf(next, 16, "%d", n + 1);
    return weft_wf_continue_as_new(wf, B(next));
}

static void test_continue_as_new(void **state) {
    (void)state;
    drv d = {.fn = wf_loop};
    hs_start(&d.h, "loop", "4");
    drv_task(&d);
    hs_activity_done(&d.h, "1", "");
    hs_task(&d.h);
    const wfe_task_result *t = drv_task(&d);
    assert_int_equal(t->commands_count, 1);
    assert_int_equal(t->commands[0].type, WEFT_CMD_CONTINUE_AS_NEW);
    assert_true(bytes_is(t->commands[0].input, "5"));
    drv_free(&d);
}

/* A sticky feed that does not continue the run is refused (the worker replays instead). */
static void test_feed_must_continue(void **state) {
    (void)state;
    drv d = {.fn = wf_order};
    hs_start(&d.h, "order", "{}");
    drv_task(&d);
    hs_activity_done(&d.h, "1", "r");
    hs_task(&d.h);
    weft_err err;
    wfe_task_result res;
    /* Skips the WorkflowTaskCompleted the run must confirm first. */
    assert_int_equal(wfe_run_feed(d.sticky, &d.h.ev[d.fed_through + 1],
                                  d.h.n - (uint32_t)d.fed_through - 1, d.h.started_id, &res, &err),
                     -WEFT_E_INVALID_ARGUMENT);
    drv_free(&d);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_order_sticky_equals_replay),
        cmocka_unit_test(test_replayer_divergence),
        cmocka_unit_test(test_changed_code_fails_task),
        cmocka_unit_test(test_activity_failure),
        cmocka_unit_test(test_cancel_and_compensate),
        cmocka_unit_test(test_side_effect_version_random),
        cmocka_unit_test(test_continue_as_new),
        cmocka_unit_test(test_feed_must_continue),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
