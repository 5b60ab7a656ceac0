/* scenario_start.c: `start`: N client threads issue StartWorkflow with unique ids for D
 * seconds. Every acknowledged start is a G1 commit: proposed through raft, fsynced and applied
 * before the reply, so this measures the write path's throughput and latency. The runs it
 * starts stay open (nothing polls the bench's own task queue). */
#include <stdio.h>
#include <stdlib.h>

#include "bench.h"

int bench_start_one(bench_thread *t, const char *id, const char *type, bench_latency *lat) {
    WEFT_ASSERT(t != NULL && t->c != NULL && id != NULL && type != NULL);
    weft_start_req req = {
        .workflow_id = weft_str_c(id),
        .workflow_type = weft_str_c(type),
        .task_queue = weft_str_c(t->cfg->task_queue),
    };
    weft_response h = {0};
    weft_start_resp resp;
    weft_err err;
    uint64_t t0_us = bench_now_us();
    int rc = weft_client_start(t->c, &req, &resp, &h, &err);
    uint64_t took_us = bench_now_us() - t0_us;
    if (rc == 0) {
        WEFT_ASSERT(resp.run_id.len > 0);
        if (lat != NULL) bench_latency_add(lat, took_us);
    } else {
        bench_errors_add(&t->errors, rc, &err);
    }
    weft_response_free(&h);
    return rc;
}

static bool start_op(bench_thread *t) {
    char id[BENCH_ID_BYTES];
    snprintf(id, sizeof id, "bench-%s-start-%u-%llu", t->cfg->run_tag, t->index,
             (unsigned long long)t->seq);
    if (bench_start_one(t, id, "bench-start", &t->lat) == 0) atomic_fetch_add(&t->ops, 1);
    return true;
}

int bench_scenario_start(const bench_config *cfg, bench_report *r) {
    WEFT_ASSERT(cfg != NULL && r != NULL);
    WEFT_ASSERT(cfg->threads > 0 && cfg->duration_s > 0);
    bench_totals *t = calloc(1, sizeof *t);
    if (t == NULL) return -1;
    uint64_t duration_us = (uint64_t)cfg->duration_s * 1000000u;
    int rc = bench_threads_run(cfg, cfg->threads, NULL, start_op, duration_us, "start", t);
    double elapsed_s = (double)t->elapsed_us / 1e6;
    bench_report_figure(r, "starts", (double)t->ops, "");
    bench_report_figure(r, "elapsed_s", elapsed_s, "s");
    bench_report_figure(r, "starts_per_s", (double)t->ops / elapsed_s, "/s");
    bench_totals_report_seconds(t, r, "starts_per_s_min", "starts_per_s_max");
    bench_report_latency(r, "start", &t->lat);
    bench_errors_merge(&r->errors, &t->errors);
    free(t);
    return rc;
}
