/* threads.c: the client threads of a scenario: each opens its own client (so one thread's call
 * never waits for another's connection), loops the scenario's op, and its counters are merged
 * when it ends. The main thread samples throughput once a second meanwhile. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench.h"

/* Throughput is sampled once a second: per-second figures show stalls that averages hide. */
#define THREADS_SECOND_US 1000000u
/* The sampler's nap between checks, short so that it notices the last thread ending soon. */
#define THREADS_NAP_MS 50u

/* What each thread needs: its slot, the op, the deadline and the shared done counter. */
typedef struct threads_arg {
    bench_thread *t;         /* this thread's slot */
    bench_op_fn op;          /* the scenario's op */
    uint64_t deadline_us;    /* stop looping after this */
    atomic_uint *done_count; /* threads that have finished */
    uint64_t end_us;         /* when the thread finished its last op */
} threads_arg;

static void *threads_main(void *p) {
    threads_arg *a = p;
    WEFT_ASSERT(a->t != NULL && a->op != NULL);
    while (!atomic_load(&bench_stop) && bench_now_us() < a->deadline_us) {
        a->t->seq++;
        if (!a->op(a->t)) break;
    }
    a->end_us = bench_now_us();
    atomic_fetch_add(a->done_count, 1);
    return NULL;
}

static uint64_t threads_ops(const bench_thread *ts, uint32_t count) {
    uint64_t sum = 0;
    for (uint32_t i = 0; i < count; i++)
        sum += atomic_load(&ts[i].ops);
    return sum;
}

/* Samples the threads once a second until every one has finished, filling per_second. Only
 * seconds that end before the deadline, while every thread is still running, count as whole
 * seconds: the ramp-down after them would read as a stall. */
static void threads_sample(const bench_thread *ts, uint32_t count, atomic_uint *done_count,
                           uint64_t t0_us, uint64_t deadline_us, const char *what,
                           bench_totals *out) {
    uint64_t prev_ops = 0;
    uint32_t second = 0;
    while (atomic_load(done_count) < count) {
        uint64_t next_us = t0_us + (uint64_t)(second + 1u) * THREADS_SECOND_US;
        uint64_t now_us = bench_now_us();
        if (now_us < next_us) {
            uint64_t wait_ms = (next_us - now_us) / 1000u;
            bench_sleep_ms((uint32_t)WEFT_MIN(wait_ms + 1u, THREADS_NAP_MS));
            continue;
        }
        uint64_t ops = threads_ops(ts, count);
        if (second < BENCH_SECONDS_MAX) out->per_second[second] = ops - prev_ops;
        if (second < BENCH_SECONDS_MAX && next_us <= deadline_us && atomic_load(done_count) == 0)
            out->seconds = second + 1u;
        fprintf(stderr, "  %-10s %4us  ops=%-10llu %8llu/s\n", what, second + 1u,
                (unsigned long long)ops, (unsigned long long)(ops - prev_ops));
        prev_ops = ops;
        second++;
    }
}

/* Opens every thread's client before any load starts, so connection setup is not measured. */
static int threads_open(const bench_config *cfg, bench_thread *ts, uint32_t count, void *scenario,
                        const char *what) {
    for (uint32_t i = 0; i < count; i++) {
        ts[i].cfg = cfg;
        ts[i].scenario = scenario;
        ts[i].index = i;
        char name[BENCH_ID_BYTES];
        snprintf(name, sizeof name, "bench-%s-%u", what, i);
        if (bench_client_open(cfg, name, &ts[i].c) != 0) return -1;
    }
    return 0;
}

static void threads_merge(bench_thread *ts, uint32_t count, bench_totals *out) {
    for (uint32_t i = 0; i < count; i++) {
        out->ops += atomic_load(&ts[i].ops);
        bench_latency_merge(&out->lat, &ts[i].lat);
        bench_latency_merge(&out->lat2, &ts[i].lat2);
        bench_errors_merge(&out->errors, &ts[i].errors);
        weft_client_close(ts[i].c);
    }
}

int bench_threads_run(const bench_config *cfg, uint32_t count, void *scenario, bench_op_fn op,
                      uint64_t duration_us, const char *what, bench_totals *out) {
    WEFT_ASSERT(cfg != NULL && op != NULL && out != NULL);
    WEFT_ASSERT(count > 0 && count <= BENCH_THREADS_MAX);
    memset(out, 0, sizeof *out);
    bench_thread *ts = calloc(count, sizeof *ts);
    threads_arg *args = calloc(count, sizeof *args);
    pthread_t *tids = calloc(count, sizeof *tids);
    atomic_uint done_count;
    atomic_init(&done_count, 0);
    uint32_t started = 0;
    int rc = ts == NULL || args == NULL || tids == NULL ? -1 : 0;
    if (rc == 0) rc = threads_open(cfg, ts, count, scenario, what);
    uint64_t t0_us = bench_now_us();
    uint64_t deadline_us = t0_us + duration_us;
    for (; rc == 0 && started < count; started++) {
        args[started] = (threads_arg){
            .t = &ts[started], .op = op, .deadline_us = deadline_us, .done_count = &done_count};
        if (pthread_create(&tids[started], NULL, threads_main, &args[started]) != 0) rc = -1;
    }
    if (rc != 0) {
        fprintf(stderr, "weft-bench: could not start the %s threads\n", what);
        atomic_store(&bench_stop, true); /* the started ones end at their next op */
    }
    threads_sample(ts, started, &done_count, t0_us, deadline_us, what, out);
    /* Elapsed ends with the last thread, not with the sampler noticing it. */
    uint64_t end_us = t0_us;
    for (uint32_t i = 0; i < started; i++) {
        pthread_join(tids[i], NULL);
        end_us = WEFT_MAX(end_us, args[i].end_us);
    }
    out->elapsed_us = end_us - t0_us;
    if (ts != NULL) threads_merge(ts, count, out);
    free(tids);
    free(args);
    free(ts);
    WEFT_ASSERT(out->seconds <= BENCH_SECONDS_MAX);
    return rc;
}

void bench_totals_report_seconds(const bench_totals *t, bench_report *r, const char *min_key,
                                 const char *max_key) {
    WEFT_ASSERT(t != NULL && r != NULL);
    WEFT_ASSERT(t->seconds <= BENCH_SECONDS_MAX);
    uint64_t lo = UINT64_MAX, hi = 0;
    for (uint32_t i = 0; i < t->seconds; i++) {
        lo = WEFT_MIN(lo, t->per_second[i]);
        hi = WEFT_MAX(hi, t->per_second[i]);
    }
    if (t->seconds == 0) lo = 0;
    bench_report_figure(r, min_key, (double)lo, "/s (slowest whole second)");
    bench_report_figure(r, max_key, (double)hi, "/s (fastest whole second)");
}
