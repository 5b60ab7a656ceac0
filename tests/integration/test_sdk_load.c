/* test_sdk_load.c: 1,000 concurrent workflows with parallel activities, run by a real
 * weft_worker against a real weftd, once with the sticky cache on and once with it off. Both
 * passes must complete every workflow and produce identical histories: the same commands with
 * the same ids, inputs and results, and the same final result (event times, identities and the
 * interleaving of activity outcomes with workflow tasks depend on timing and are left out).
 * WEFT_LOAD_WORKFLOWS overrides the count. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "helper_sdk.h"
#include "helper_weftd.h"
#include "helper_worker.h"
#include "weft/json.h"
#include "weft/worker.h"

#define LOAD_WORKFLOWS_DEFAULT 1000u
#define LOAD_QUEUE "load"
#define LOAD_PARALLEL 3u
#define LOAD_TIMER_MS 50u
#define LOAD_RESULT_WAIT_MS 120000u
/* Room for one workflow's projected history. */
#define LOAD_PROJECTION_BYTES 4096u

/* Three activities in parallel, a timer, then one activity over their results. */
static int wf_fanout(weft_wf *wf, weft_bytes input, weft_bytes *out, void *arg) {
    (void)arg;
    weft_activity_opts o = {.start_to_close_timeout_ms = 10000,
                            .retry = {.initial_interval_ms = 200}};
    weft_future *fs[LOAD_PARALLEL];
    for (unsigned i = 0; i < LOAD_PARALLEL; i++) {
        char *in = weft_wf_alloc(wf, input.len + 8);
        snprintf(in, input.len + 8, "%.*s-%c", (int)input.len, (const char *)input.ptr, 'a' + i);
        fs[i] = weft_wf_activity_start(wf, "step", weft_bytes_c(in), &o);
    }
    if (weft_wf_await_all(wf, fs, LOAD_PARALLEL) != 0) {
        return weft_wf_fail(wf, "StepFailed", weft_wf_last_failure(wf)->message);
    }
    if (weft_wf_sleep(wf, LOAD_TIMER_MS) != 0) return weft_wf_cancel_done(wf);
    weft_bytes r[LOAD_PARALLEL];
    size_t cap = 16;
    for (unsigned i = 0; i < LOAD_PARALLEL; i++) {
        if (weft_future_result(fs[i], &r[i]) != 0) return weft_wf_fail(wf, "NoResult", "step");
        cap += r[i].len + 1;
    }
    char *all = weft_wf_alloc(wf, cap);
    all[0] = '\0';
    for (unsigned i = 0; i < LOAD_PARALLEL; i++) {
        strncat(all, (const char *)r[i].ptr, r[i].len);
        strcat(all, "+");
    }
    return weft_wf_activity(wf, "sum", weft_bytes_c(all), &o, out) == 0
               ? 0
               : weft_wf_fail(wf, "SumFailed", weft_wf_last_failure(wf)->message);
}

/* Echoes its input with a mark, so results are checkable. */
static int act_step(weft_act *act, weft_bytes input, weft_bytes *out, void *arg) {
    const char *mark = arg;
    char *p = weft_act_alloc(act, input.len + 8);
    int n = snprintf(p, input.len + 8, "%.*s%s", (int)input.len, (const char *)input.ptr, mark);
    *out = (weft_bytes){.ptr = (const uint8_t *)p, .len = (uint32_t)n};
    return 0;
}

static uint32_t load_count(void) {
    const char *e = getenv("WEFT_LOAD_WORKFLOWS");
    return e != NULL && atoi(e) > 0 ? (uint32_t)atoi(e) : LOAD_WORKFLOWS_DEFAULT;
}

/* The timing-independent part of a history: every command event with its ids and payloads,
 * and the close event's result. */
static void project(const wk_history *h, char *buf, size_t cap) {
    size_t used = 0;
    buf[0] = '\0';
    for (uint32_t i = 0; i < h->count && used < cap; i++) {
        const weft_event *e = &h->events[i];
        switch (e->event_type) {
        case WEFT_EV_ACTIVITY_TASK_SCHEDULED:
        case WEFT_EV_TIMER_STARTED:
        case WEFT_EV_MARKER_RECORDED:
        case WEFT_EV_WORKFLOW_EXECUTION_COMPLETED:
        case WEFT_EV_WORKFLOW_EXECUTION_FAILED:
            used += (size_t)snprintf(
                buf + used, cap - used, "%s|%.*s|%.*s|%.*s|%.*s|%llu|%.*s\n",
                weft_event_type_names[e->event_type], (int)e->activity_id.len, e->activity_id.ptr,
                (int)e->activity_type.len, e->activity_type.ptr, (int)e->input.len,
                (const char *)e->input.ptr, (int)e->timer_id.len, e->timer_id.ptr,
                (unsigned long long)e->start_to_fire_timeout_ms, (int)e->result.len,
                (const char *)e->result.ptr);
            break;
        default:
            break;
        }
    }
    assert_true(used < cap);
}

/* Starts `n` workflows, runs them to completion with one worker, returns their projections. */
static char **load_pass(weftd *d, const char *tag, bool sticky, uint32_t n,
                        weft_worker_stats *stats) {
    weft_client *c = NULL;
    assert_int_equal(weftd_client(d, tag, &c), 0);
    weft_worker_opts o = {.task_queue = LOAD_QUEUE,
                          .workflow_concurrency = 8,
                          .activity_concurrency = 16,
                          .sticky_cache_disabled = !sticky,
                          .poll_timeout_ms = 1000};
    weft_worker *w = NULL;
    weft_err err;
    assert_int_equal(weft_worker_new(c, &o, &w, &err), 0);
    assert_int_equal(weft_worker_register_workflow(w, "fanout", wf_fanout, NULL, &err), 0);
    assert_int_equal(weft_worker_register_activity(w, "step", act_step, "!", &err), 0);
    assert_int_equal(weft_worker_register_activity(w, "sum", act_step, "=", &err), 0);
    sdk_runner run;
    sdk_runner_start(&run, w);

    uint64_t t0 = weft_mono_ms();
    for (uint32_t i = 0; i < n; i++) {
        char id[64], in[32];
        snprintf(id, sizeof id, "load-%s-%04u", tag, i);
        snprintf(in, sizeof in, "w%04u", i);
        sdk_start(c, id, "fanout", LOAD_QUEUE, in, NULL, 0);
    }
    uint64_t t1 = weft_mono_ms();
    char **proj = calloc(n, sizeof *proj);
    for (uint32_t i = 0; i < n; i++) {
        char id[64], got[128], want[128];
        snprintf(id, sizeof id, "load-%s-%04u", tag, i);
        uint32_t status = sdk_result(c, id, LOAD_RESULT_WAIT_MS, got, sizeof got);
        if (status != WEFT_STATUS_COMPLETED) weftd_print_stderr(d, 40);
        assert_int_equal(status, WEFT_STATUS_COMPLETED);
        snprintf(want, sizeof want, "w%04u-a!+w%04u-b!+w%04u-c!+=", i, i, i);
        assert_string_equal(got, want);
        wk_history hist = {0};
        assert_int_equal(wk_history_get(c, id, NULL, &hist, &err), 0);
        proj[i] = malloc(LOAD_PROJECTION_BYTES);
        project(&hist, proj[i], LOAD_PROJECTION_BYTES);
        wk_history_free(&hist);
    }
    uint64_t t2 = weft_mono_ms();
    assert_int_equal(sdk_runner_stop(&run), 0);
    weft_worker_stats_get(w, stats);
    fprintf(stderr,
            "load %s: %u workflows started in %llu ms, all completed after %llu ms; "
            "workflow tasks %llu, sticky hits %llu, misses %llu, evictions %llu, activities %llu\n",
            tag, n, (unsigned long long)(t1 - t0), (unsigned long long)(t2 - t0),
            (unsigned long long)stats->workflow_tasks_completed,
            (unsigned long long)stats->sticky_hits, (unsigned long long)stats->sticky_misses,
            (unsigned long long)stats->cache_evictions,
            (unsigned long long)stats->activities_completed);
    weft_worker_free(w);
    weft_client_close(c);
    return proj;
}

static void test_load_sticky_on_and_off(void **state) {
    (void)state;
    uint32_t n = load_count();
    weftd d = {0};
    assert_int_equal(weftd_start(&d, NULL), 0);
    weft_worker_stats on, off;
    char **a = load_pass(&d, "on", true, n, &on);
    char **b = load_pass(&d, "off", false, n, &off);
    for (uint32_t i = 0; i < n; i++) {
        if (strcmp(a[i], b[i]) != 0) {
            fprintf(stderr, "workflow %u differs:\n--- cache on\n%s--- cache off\n%s", i, a[i],
                    b[i]);
        }
        assert_string_equal(a[i], b[i]);
        free(a[i]);
        free(b[i]);
    }
    free(a);
    free(b);
    /* The cache was used when on, and never when off. */
    assert_true(on.sticky_hits > 0);
    assert_int_equal(off.sticky_hits, 0);
    assert_true(off.sticky_misses >= off.workflow_tasks_completed);
    assert_int_equal(on.workflow_tasks_failed, 0);
    assert_int_equal(off.workflow_tasks_failed, 0);
    assert_int_equal(weftd_stop(&d), 0);
    weftd_destroy(&d);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_load_sticky_on_and_off),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
