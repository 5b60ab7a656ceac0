/* scenario_signal.c: `signal`: starts --workflows target workflows that never complete, then N
 * client threads send SignalWorkflow round-robin over them for D seconds, and finally
 * terminates the targets. Every acknowledged signal is a G1 commit deduplicated by its request
 * id (G4, G7). With --workers > 0, pollers also answer each signal's workflow task (with no
 * commands), so the load includes the task traffic a real workflow would cause. */
#include <stdio.h>
#include <stdlib.h>

#include "bench.h"

/* Shared by the threads of the three phases. */
typedef struct signal_state {
    atomic_uint next;       /* targets claimed by the setup or teardown phase */
    atomic_uint started;    /* targets started by the setup phase */
    atomic_uint terminated; /* targets terminated by the teardown phase */
} signal_state;

static void signal_target_id(const bench_config *cfg, unsigned i, char *id, size_t cap) {
    snprintf(id, cap, "bench-%s-sig-%u", cfg->run_tag, i);
}

static bool signal_setup_op(bench_thread *t) {
    signal_state *s = t->scenario;
    unsigned i = atomic_fetch_add(&s->next, 1);
    if (i >= t->cfg->workflows) return false;
    char id[BENCH_ID_BYTES];
    signal_target_id(t->cfg, i, id, sizeof id);
    if (bench_start_one(t, id, "bench-signal-target", &t->lat) == 0) {
        atomic_fetch_add(&s->started, 1);
        atomic_fetch_add(&t->ops, 1);
    }
    return true;
}

/* Round-robin over the targets: thread i sends to i, i + N, i + 2N, ... so the signals spread
 * evenly over workflows and shards. */
static bool signal_op(bench_thread *t) {
    unsigned target = (unsigned)((t->index + (t->seq - 1u) * t->cfg->threads) % t->cfg->workflows);
    char id[BENCH_ID_BYTES];
    signal_target_id(t->cfg, target, id, sizeof id);
    weft_signal_req req = {
        .workflow_id = weft_str_c(id),
        .signal_name = WEFT_STR_LIT("bench-signal"),
        .input = {.ptr = (const uint8_t *)"x", .len = 1},
    };
    weft_err err;
    uint64_t t0_us = bench_now_us();
    int rc = weft_client_signal(t->c, &req, &err);
    if (rc == 0) {
        bench_latency_add(&t->lat, bench_now_us() - t0_us);
        atomic_fetch_add(&t->ops, 1);
    } else {
        bench_errors_add(&t->errors, rc, &err);
    }
    return true;
}

static bool signal_teardown_op(bench_thread *t) {
    signal_state *s = t->scenario;
    unsigned i = atomic_fetch_add(&s->next, 1);
    if (i >= t->cfg->workflows) return false;
    char id[BENCH_ID_BYTES];
    signal_target_id(t->cfg, i, id, sizeof id);
    weft_close_req req = {.workflow_id = weft_str_c(id), .reason = WEFT_STR_LIT("bench done")};
    weft_err err;
    int rc = weft_client_terminate(t->c, &req, &err);
    if (rc == 0) {
        atomic_fetch_add(&s->terminated, 1);
        atomic_fetch_add(&t->ops, 1);
    } else {
        bench_errors_add(&t->errors, rc, &err);
    }
    return true;
}

static void signal_report(const bench_totals *setup, const bench_totals *load,
                          const bench_totals *teardown, const signal_state *s,
                          const bench_workers *w, bench_report *r) {
    double elapsed_s = (double)load->elapsed_us / 1e6;
    bench_report_figure(r, "targets_started", (double)atomic_load(&s->started), "");
    bench_report_figure(r, "signals", (double)load->ops, "");
    bench_report_figure(r, "elapsed_s", elapsed_s, "s");
    bench_report_figure(r, "signals_per_s", (double)load->ops / elapsed_s, "/s");
    bench_totals_report_seconds(load, r, "signals_per_s_min", "signals_per_s_max");
    bench_report_figure(r, "workflow_tasks_completed", (double)atomic_load(&w->wft_completed), "");
    bench_report_figure(r, "targets_terminated", (double)atomic_load(&s->terminated), "");
    bench_report_latency(r, "signal", &load->lat);
    bench_report_latency(r, "target_start", &setup->lat);
    if (w->wft_complete.count > 0) {
        bench_report_latency(r, "wft_round_trip", &w->wft_rtt);
        bench_report_latency(r, "wft_complete_call", &w->wft_complete);
    }
    bench_errors_merge(&r->errors, &setup->errors);
    bench_errors_merge(&r->errors, &load->errors);
    bench_errors_merge(&r->errors, &teardown->errors);
    bench_errors_merge(&r->errors, &w->errors);
}

/* The three phases; the setup and the teardown are bounded by BENCH_DRAIN_MS each. */
static int signal_phases(const bench_config *cfg, bench_totals *tot, signal_state *s,
                         bench_workers *w) {
    uint64_t drain_us = (uint64_t)BENCH_DRAIN_MS * 1000u;
    uint32_t setup_threads = WEFT_MIN(cfg->threads, cfg->workflows);
    int rc = bench_threads_run(cfg, setup_threads, s, signal_setup_op, drain_us, "setup", &tot[0]);
    if (rc == 0 && atomic_load(&s->started) < cfg->workflows) {
        fprintf(stderr, "weft-bench: only %u of %u signal targets started\n",
                atomic_load(&s->started), cfg->workflows);
        rc = -1;
    }
    if (rc == 0 && cfg->workers > 0) rc = bench_workers_start(w, cfg, true);
    if (rc == 0) {
        uint64_t duration_us = (uint64_t)cfg->duration_s * 1000000u;
        rc = bench_threads_run(cfg, cfg->threads, s, signal_op, duration_us, "signal", &tot[1]);
        if (cfg->workers > 0) bench_workers_stop(w);
    }
    atomic_store(&s->next, 0); /* teardown walks every target again */
    int rc2 =
        bench_threads_run(cfg, setup_threads, s, signal_teardown_op, drain_us, "teardown", &tot[2]);
    return rc != 0 ? rc : rc2;
}

int bench_scenario_signal(const bench_config *cfg, bench_report *r) {
    WEFT_ASSERT(cfg != NULL && r != NULL);
    WEFT_ASSERT(cfg->threads > 0 && cfg->workflows > 0);
    bench_totals *tot = calloc(3, sizeof *tot);
    bench_workers *w = calloc(1, sizeof *w);
    signal_state *s = calloc(1, sizeof *s);
    int rc = -1;
    if (tot != NULL && w != NULL && s != NULL) {
        rc = signal_phases(cfg, tot, s, w);
        signal_report(&tot[0], &tot[1], &tot[2], s, w, r);
    }
    free(s);
    free(w);
    free(tot);
    return rc;
}
