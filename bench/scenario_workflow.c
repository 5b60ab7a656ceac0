/* scenario_workflow.c: `workflow`: W workflows of K sequential activities (and an optional
 * timer), run by --workers pollers of each task kind. --threads starter threads each keep one
 * workflow in flight: start it, wait for its result, start the next. Measures workflows and
 * activities per second, the end-to-end latency a client sees (start sent -> result read) and
 * the workflow task round trip (WorkflowTaskScheduled -> completion acknowledged). */
#include <stdio.h>
#include <stdlib.h>

#include "bench.h"

/* Shared by the starter threads. */
typedef struct workflow_state {
    atomic_uint next;           /* workflows claimed so far */
    atomic_uint unfinished;     /* still running when the drain ended */
    atomic_uint not_completed;  /* closed some other way than completed */
    uint64_t drain_deadline_us; /* result waits give up after this */
} workflow_state;

/* Waits for the run of `id` to close, BENCH_POLL_MS per call, until the drain deadline.
 * Returns the run's status (RUNNING when the wait gave up) or -1 after a failed call. */
static int workflow_wait(bench_thread *t, const char *id, const workflow_state *s) {
    weft_result_req req = {
        .workflow_id = weft_str_c(id), .wait = true, .wait_timeout_ms = BENCH_POLL_MS};
    for (;;) {
        weft_response h = {0};
        weft_result_resp resp;
        weft_err err;
        int rc = weft_client_result(t->c, &req, &resp, &h, &err);
        uint32_t status = rc == 0 ? resp.status : WEFT_STATUS_UNSPECIFIED;
        weft_response_free(&h);
        if (rc != 0) {
            bench_errors_add(&t->errors, rc, &err);
            return -1;
        }
        if (status != WEFT_STATUS_RUNNING) return (int)status;
        if (bench_now_us() >= s->drain_deadline_us || atomic_load(&bench_stop)) {
            return WEFT_STATUS_RUNNING;
        }
    }
}

/* One workflow: claim an index, start it, wait for its result. lat = end to end, lat2 = the
 * start call. */
static bool workflow_op(bench_thread *t) {
    workflow_state *s = t->scenario;
    unsigned i = atomic_fetch_add(&s->next, 1);
    if (i >= t->cfg->workflows) return false;
    char id[BENCH_ID_BYTES];
    snprintf(id, sizeof id, "bench-%s-wf-%u", t->cfg->run_tag, i);
    uint64_t t0_us = bench_now_us();
    if (bench_start_one(t, id, "bench-workflow", &t->lat2) != 0) return true;
    int status = workflow_wait(t, id, s);
    if (status == WEFT_STATUS_COMPLETED) {
        bench_latency_add(&t->lat, bench_now_us() - t0_us);
        atomic_fetch_add(&t->ops, 1);
    } else if (status == WEFT_STATUS_RUNNING) {
        atomic_fetch_add(&s->unfinished, 1);
    } else if (status >= 0) {
        atomic_fetch_add(&s->not_completed, 1);
    }
    return true;
}

static void workflow_report(const bench_config *cfg, const bench_totals *t, const workflow_state *s,
                            const bench_workers *w, bench_report *r) {
    double elapsed_s = (double)t->elapsed_us / 1e6;
    uint64_t acts = atomic_load(&w->act_completed), wfts = atomic_load(&w->wft_completed);
    bench_report_figure(r, "workflows_completed", (double)t->ops, "");
    bench_report_figure(r, "workflows_unfinished", (double)atomic_load(&s->unfinished), "");
    bench_report_figure(r, "workflows_not_completed", (double)atomic_load(&s->not_completed),
                        "(failed, timed out...)");
    bench_report_figure(r, "elapsed_s", elapsed_s, "s");
    bench_report_figure(r, "workflows_per_s", (double)t->ops / elapsed_s, "/s");
    bench_report_figure(r, "activities_per_s", (double)acts / elapsed_s, "/s");
    bench_report_figure(r, "workflow_tasks_per_s", (double)wfts / elapsed_s, "/s");
    bench_report_figure(r, "empty_polls", (double)atomic_load(&w->empty_polls), "");
    bench_totals_report_seconds(t, r, "workflows_per_s_min", "workflows_per_s_max");
    bench_report_latency(r, "workflow_end_to_end", &t->lat);
    bench_report_latency(r, "start", &t->lat2);
    bench_report_latency(r, "wft_round_trip", &w->wft_rtt);
    bench_report_latency(r, "wft_complete_call", &w->wft_complete);
    bench_report_latency(r, "activity_sched_to_poll", &w->act_dispatch);
    bench_report_latency(r, "activity_complete_call", &w->act_complete);
    bench_errors_merge(&r->errors, &t->errors);
    bench_errors_merge(&r->errors, &w->errors);
    WEFT_ASSERT(cfg->workflows >= t->ops);
}

int bench_scenario_workflow(const bench_config *cfg, bench_report *r) {
    WEFT_ASSERT(cfg != NULL && r != NULL);
    WEFT_ASSERT(cfg->threads > 0 && cfg->workers > 0 && cfg->workflows > 0);
    bench_totals *t = calloc(1, sizeof *t);
    bench_workers *w = calloc(1, sizeof *w);
    workflow_state *s = calloc(1, sizeof *s);
    int rc = t == NULL || w == NULL || s == NULL ? -1 : 0;
    if (rc == 0) rc = bench_workers_start(w, cfg, false);
    if (rc != 0) goto free_all;
    uint64_t duration_us = (uint64_t)cfg->duration_s * 1000000u;
    /* Set a little early (before the starters' clients are open): the drain is a bound, not
     * a measurement. */
    s->drain_deadline_us = bench_now_us() + duration_us + (uint64_t)BENCH_DRAIN_MS * 1000u;
    uint32_t threads = WEFT_MIN(cfg->threads, cfg->workflows);
    rc = bench_threads_run(cfg, threads, s, workflow_op, duration_us, "workflow", t);
    bench_workers_stop(w);
    workflow_report(cfg, t, s, w, r);
free_all:
    free(s);
    free(w);
    free(t);
    return rc;
}
