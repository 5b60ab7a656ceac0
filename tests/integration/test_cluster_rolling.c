/* test_cluster_rolling.c: the HA cluster's rolling-restart acceptance (issue 4): "All 3 nodes
 * are restarted one at a time under continuous load. The load sees no failed request once
 * client retries are counted."
 *
 * Three nodes, eight shards, replication factor 3. Worker threads poll every node (a node hands
 * out only the tasks of the shards it leads). Two load threads keep starting standard-script
 * runs (activity, a 200 ms timer, activity, one signal) and, for each, signal it and describe
 * it, through clients that know every node and retry as the test clients do (about 20 s).
 * Meanwhile node 1, then 2, then 3 is stopped gracefully (SIGTERM: it hands its leaderships
 * away first) and started again, and the cluster must be ready (every shard a ready leader)
 * before the next node goes. Then:
 *   - no call of the load failed once the client's own retries were spent (a failed start or
 *     signal is re-sent with the same request id so the run still completes, but it counts);
 *   - every acknowledged run completes, and its history keeps the standard script's invariants;
 *   - each restart's time to ready and the largest latency of any call are printed. */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "helper_cluster.h"
#include "helper_worker.h"

#define RR_NODES 3u
#define RR_SHARDS 8u
#define RR_RF 3u
#define RR_QUEUE "q-rolling"
/* Worker threads per node client: half take workflow tasks, half activity tasks. */
#define RR_THREADS_PER_NODE 4u
/* Load threads, each with its own client. */
#define RR_LOADERS 2u
/* Runs the load may start in all; beyond this the load only describes. */
#define RR_WORKFLOWS_MAX 3000u
/* Pause of a load thread between two runs. */
#define RR_PACE_MS 60u
/* Timer of every run. */
#define RR_TIMER_MS 200u
/* Workflow task timeout of every run: a task lost with a stopping node is re-dispatched. */
#define RR_WFT_TIMEOUT_MS 2000u
/* Load before the first and after the last restart. */
#define RR_WARMUP_MS 2000u
#define RR_COOLDOWN_MS 2000u
/* Load between one node's ready and the next node's stop (the cluster is ready already: this
 * only gives each configuration some load of its own). */
#define RR_SETTLE_MS 1000u
/* How long every run may take to complete once the load stopped. */
#define RR_COMPLETE_TIMEOUT_MS 60000u
/* Failed calls whose error is kept for the report. */
#define RR_ERRORS_KEPT 64u

static const char *const rr_flags[] = {"--election-timeout-ms", "2000", "--heartbeat-timeout-ms",
                                       "100", NULL};

typedef struct rr rr;

typedef struct rr_loader {
    rr *t;          /* the test */
    unsigned index; /* 0..RR_LOADERS-1 */
    weft_client *c; /* every address; this thread's own */
    pthread_t thread;
    bool running; /* thread was created and not joined yet */
} rr_loader;

struct rr {
    hc_cluster c;                        /* the three nodes */
    bool passed;                         /* teardown prints the nodes' stderr otherwise */
    weft_client *checker;                /* every address; used by the main thread */
    weft_client *workers[RR_NODES];      /* one per node, so that polls reach each node */
    wk_pool pools[RR_NODES];             /* worker threads, one pool per node client */
    rr_loader loaders[RR_LOADERS];       /* load threads */
    atomic_bool stop;                    /* tells the load threads to finish */
    atomic_bool rolling;                 /* between the first stop and the last ready */
    atomic_uint workflows;               /* slots taken in wf / run_ids */
    atomic_uint acked;                   /* runs whose start and signal were both acknowledged */
    atomic_uint_fast64_t calls;          /* load calls made (each with the client's retries) */
    atomic_uint_fast64_t calls_roll;     /* of those, made while rolling */
    atomic_uint_fast64_t failed;         /* load calls that failed after the client's retries */
    char wf[RR_WORKFLOWS_MAX][48];       /* workflow id per slot */
    char run_ids[RR_WORKFLOWS_MAX][128]; /* acknowledged run id per slot */
    atomic_bool done[RR_WORKFLOWS_MAX];  /* slot's start and signal acknowledged */
    pthread_mutex_t mu;                  /* guards what follows */
    uint64_t lat_max_ms;                 /* largest latency of any load call */
    char lat_max_what[96];               /* which call that was */
    uint64_t lat_max_roll_ms;            /* largest latency of a call made while rolling */
    char lat_max_roll_what[96];          /* which call that was */
    char errors[RR_ERRORS_KEPT][1024];   /* the first failed calls */
    unsigned errors_count;               /* entries used in errors */
};

static int rr_setup(void **state) {
    static rr t;
    memset(&t, 0, sizeof t);
    pthread_mutex_init(&t.mu, NULL);
    *state = &t;
    if (hc_start(&t.c, RR_NODES, RR_SHARDS, RR_RF, rr_flags) != 0) return -1;
    if (hc_client(&t.c, "rolling-checker", &t.checker) != 0) return -1;
    for (unsigned k = 0; k < RR_LOADERS; k++) {
        t.loaders[k].t = &t;
        t.loaders[k].index = k;
        if (hc_client(&t.c, "rolling-load", &t.loaders[k].c) != 0) return -1;
    }
    for (unsigned id = 1; id <= RR_NODES; id++) {
        if (hc_node_client(&t.c, id, "rolling-worker", &t.workers[id - 1]) != 0) return -1;
    }
    return 0;
}

static void rr_stop_load(rr *t) {
    atomic_store(&t->stop, true);
    for (unsigned k = 0; k < RR_LOADERS; k++) {
        if (t->loaders[k].running) pthread_join(t->loaders[k].thread, NULL);
        t->loaders[k].running = false;
    }
}

static int rr_teardown(void **state) {
    rr *t = *state;
    rr_stop_load(t);
    for (unsigned k = 0; k < RR_NODES; k++)
        if (t->pools[k].threads_count > 0) wk_pool_stop(&t->pools[k]);
    if (!t->passed) hc_print_stderr(&t->c, WEFTD_STDERR_TAIL_LINES);
    weft_client_close(t->checker);
    for (unsigned k = 0; k < RR_LOADERS; k++)
        weft_client_close(t->loaders[k].c);
    for (unsigned k = 0; k < RR_NODES; k++)
        weft_client_close(t->workers[k]);
    hc_destroy(&t->c);
    pthread_mutex_destroy(&t->mu);
    return 0;
}

/* Counts one load call that took `ms` and ended with rc (0 or the error after the client's
 * retries). */
static void rr_note(rr *t, const char *op, const char *wf, int rc, const weft_err *err,
                    uint64_t ms) {
    bool rolling = atomic_load(&t->rolling);
    atomic_fetch_add(&t->calls, 1);
    if (rolling) atomic_fetch_add(&t->calls_roll, 1);
    if (rc != 0) atomic_fetch_add(&t->failed, 1);
    pthread_mutex_lock(&t->mu);
    if (ms > t->lat_max_ms) {
        t->lat_max_ms = ms;
        snprintf(t->lat_max_what, sizeof t->lat_max_what, "%s %s", op, wf);
    }
    if (rolling && ms > t->lat_max_roll_ms) {
        t->lat_max_roll_ms = ms;
        snprintf(t->lat_max_roll_what, sizeof t->lat_max_roll_what, "%s %s", op, wf);
    }
    if (rc != 0 && t->errors_count < RR_ERRORS_KEPT) {
        snprintf(t->errors[t->errors_count++], sizeof t->errors[0],
                 "%s %s: %s %s (after %llu ms%s)", op, wf, weft_error_name(rc), err->message,
                 (unsigned long long)ms, rolling ? ", while rolling" : "");
    }
    pthread_mutex_unlock(&t->mu);
}

/* Starts the run of slot i, re-sending the same request (same request id) after a failure so
 * that the run exists in the end; every failure is counted. Returns false when the load is
 * told to stop before the start is acknowledged. */
static bool rr_start(rr *t, weft_client *c, unsigned i) {
    char rid[96], input[64];
    snprintf(rid, sizeof rid, "start-%s", t->wf[i]);
    wk_script_input(input, sizeof input, RR_TIMER_MS, 1);
    weft_start_req s = {
        .workflow_id = weft_str_c(t->wf[i]),
        .workflow_type = WEFT_STR_LIT("rolling"),
        .task_queue = WEFT_STR_LIT(RR_QUEUE),
        .input = {.ptr = (const uint8_t *)input, .len = (uint32_t)strlen(input)},
        .request_id = weft_str_c(rid),
        .workflow_task_timeout_ms = RR_WFT_TIMEOUT_MS,
    };
    for (;;) {
        weft_response h = {0};
        weft_start_resp r;
        weft_err err;
        weft_err_clear(&err);
        uint64_t t0 = weft_mono_ms();
        int rc = weft_client_start(c, &s, &r, &h, &err);
        rr_note(t, "start", t->wf[i], rc, &err, weft_mono_ms() - t0);
        if (rc == 0) weft_str_copy(t->run_ids[i], sizeof t->run_ids[i], r.run_id);
        weft_response_free(&h);
        if (rc == 0) return true;
        if (atomic_load(&t->stop)) return false;
        weftd_sleep_ms(200);
    }
}

/* Signals the run of slot i once ("sig", which the script waits for), re-sending the same
 * request id after a failure (counted). */
static bool rr_signal(rr *t, weft_client *c, unsigned i) {
    char rid[96];
    snprintf(rid, sizeof rid, "sig-%s", t->wf[i]);
    weft_signal_req s = {
        .workflow_id = weft_str_c(t->wf[i]),
        .run_id = weft_str_c(t->run_ids[i]),
        .signal_name = WEFT_STR_LIT("sig"),
        .input = {.ptr = (const uint8_t *)"x", .len = 1},
        .request_id = weft_str_c(rid),
    };
    for (;;) {
        weft_err err;
        weft_err_clear(&err);
        uint64_t t0 = weft_mono_ms();
        int rc = weft_client_signal(c, &s, &err);
        rr_note(t, "signal", t->wf[i], rc, &err, weft_mono_ms() - t0);
        if (rc == 0) return true;
        if (atomic_load(&t->stop)) return false;
        weftd_sleep_ms(200);
    }
}

/* Describes the run of slot i (linearizable, through its shard's leader). */
static void rr_describe(rr *t, weft_client *c, unsigned i) {
    weft_describe_req q = {.workflow_id = weft_str_c(t->wf[i]),
                           .run_id = weft_str_c(t->run_ids[i])};
    weft_describe_resp r;
    weft_response h = {0};
    weft_err err;
    weft_err_clear(&err);
    uint64_t t0 = weft_mono_ms();
    int rc = weft_client_describe(c, &q, &r, &h, &err);
    rr_note(t, "describe", t->wf[i], rc, &err, weft_mono_ms() - t0);
    weft_response_free(&h);
}

static void *rr_load_main(void *arg) {
    rr_loader *l = arg;
    rr *t = l->t;
    unsigned n = 0, last = UINT32_MAX;
    while (!atomic_load(&t->stop)) {
        unsigned i = atomic_fetch_add(&t->workflows, 1);
        if (i >= RR_WORKFLOWS_MAX) {
            atomic_fetch_sub(&t->workflows, 1);
            /* Out of slots: keep the load up by describing the last run again. */
            if (last != UINT32_MAX) rr_describe(t, l->c, last);
            weftd_sleep_ms(RR_PACE_MS);
            continue;
        }
        snprintf(t->wf[i], sizeof t->wf[i], "rolling-%u-%u", l->index, n++);
        if (!rr_start(t, l->c, i)) break;
        if (!rr_signal(t, l->c, i)) break;
        atomic_store(&t->done[i], true);
        atomic_fetch_add(&t->acked, 1);
        last = i;
        rr_describe(t, l->c, i);
        weftd_sleep_ms(RR_PACE_MS);
    }
    return NULL;
}

/* Stops node id gracefully, starts it again and waits until the cluster is ready. */
static void rr_roll_one(rr *t, unsigned id) {
    unsigned led = 0;
    for (uint32_t s = 0; s < RR_SHARDS; s++)
        led += hc_leader(&t->c, s) == id;
    uint64_t calls0 = atomic_load(&t->calls), failed0 = atomic_load(&t->failed);
    uint64_t t0 = weft_mono_ms();
    int code = hc_stop(&t->c, id);
    uint64_t t1 = weft_mono_ms();
    if (code != 0) fail_msg("node %u exited with %d after SIGTERM", id, code);
    int rc = hc_restart(&t->c, id);
    uint64_t t2 = weft_mono_ms();
    if (rc != 0) fail_msg("the cluster is not ready after node %u's restart", id);
    unsigned led_after = 0;
    for (uint32_t s = 0; s < RR_SHARDS; s++)
        led_after += hc_leader(&t->c, s) == id;
    fprintf(stderr,
            "node %u (led %u shards): stop %llu ms, start to cluster ready %llu ms, total %llu "
            "ms; %llu load calls meanwhile, %llu failed; it leads %u shards now\n",
            id, led, (unsigned long long)(t1 - t0), (unsigned long long)(t2 - t1),
            (unsigned long long)(t2 - t0), (unsigned long long)(atomic_load(&t->calls) - calls0),
            (unsigned long long)(atomic_load(&t->failed) - failed0), led_after);
}

/* Waits for slot i's run to complete and checks its history. */
static void rr_check_run(rr *t, unsigned i, uint64_t deadline, uint64_t *late_max) {
    assert_int_equal(wk_await_completed(t->checker, t->wf[i], t->run_ids[i], deadline), 0);
    wk_history h;
    weft_err err;
    int rc = wk_history_get(t->checker, t->wf[i], t->run_ids[i], &h, &err);
    if (rc != 0) {
        wk_history_free(&h);
        fail_msg("history of %s: %s %s", t->wf[i], weft_error_name(rc), err.message);
    }
    uint64_t due = 0, fired = 0;
    bool ok = wk_script_history_ok(&h, &due, &fired);
    if (!ok) {
        fprintf(stderr, "history of %s breaks an invariant:\n", t->wf[i]);
        wk_history_print(h.events, h.count);
    } else if (fired - due > *late_max) {
        *late_max = fired - due;
    }
    wk_history_free(&h);
    assert_true(ok);
}

static void test_cluster_rolling(void **state) {
    rr *t = *state;
    for (unsigned k = 0; k < RR_NODES; k++) {
        assert_int_equal(
            wk_pool_start_on(&t->pools[k], t->workers[k], RR_QUEUE, RR_THREADS_PER_NODE, k + 1), 0);
    }
    for (unsigned k = 0; k < RR_LOADERS; k++) {
        assert_int_equal(pthread_create(&t->loaders[k].thread, NULL, rr_load_main, &t->loaders[k]),
                         0);
        t->loaders[k].running = true;
    }
    weftd_sleep_ms(RR_WARMUP_MS);
    if (atomic_load(&t->acked) == 0 || wk_pools_activities(t->pools, RR_NODES) == 0)
        fail_msg("no load before the roll: %u runs acknowledged, %llu activities",
                 atomic_load(&t->acked),
                 (unsigned long long)wk_pools_activities(t->pools, RR_NODES));
    fprintf(stderr, "before the roll: %u runs acknowledged, %llu activities completed\n",
            atomic_load(&t->acked), (unsigned long long)wk_pools_activities(t->pools, RR_NODES));

    uint64_t roll0 = weft_mono_ms();
    atomic_store(&t->rolling, true);
    for (unsigned id = 1; id <= RR_NODES; id++) {
        rr_roll_one(t, id);
        if (id < RR_NODES) weftd_sleep_ms(RR_SETTLE_MS);
    }
    atomic_store(&t->rolling, false);
    uint64_t roll_ms = weft_mono_ms() - roll0;
    weftd_sleep_ms(RR_COOLDOWN_MS);
    rr_stop_load(t);

    unsigned n = atomic_load(&t->workflows);
    uint64_t failed = atomic_load(&t->failed);
    pthread_mutex_lock(&t->mu);
    fprintf(stderr,
            "roll of %u nodes took %llu ms; load: %llu calls (%llu while rolling), %llu failed "
            "after the client's retries; %u runs started\n",
            RR_NODES, (unsigned long long)roll_ms, (unsigned long long)atomic_load(&t->calls),
            (unsigned long long)atomic_load(&t->calls_roll), (unsigned long long)failed, n);
    fprintf(stderr, "max latency of a load call: %llu ms (%s); while rolling: %llu ms (%s)\n",
            (unsigned long long)t->lat_max_ms, t->lat_max_what,
            (unsigned long long)t->lat_max_roll_ms, t->lat_max_roll_what);
    for (unsigned k = 0; k < t->errors_count; k++)
        fprintf(stderr, "failed call: %s\n", t->errors[k]);
    pthread_mutex_unlock(&t->mu);

    /* Every acknowledged run completes, with a sound history. */
    uint64_t deadline = weft_mono_ms() + RR_COMPLETE_TIMEOUT_MS;
    uint64_t late_max = 0;
    unsigned checked = 0;
    for (unsigned i = 0; i < n; i++) {
        if (!atomic_load(&t->done[i])) continue;
        rr_check_run(t, i, deadline, &late_max);
        checked++;
    }
    for (unsigned k = 0; k < RR_NODES; k++)
        wk_pool_stop(&t->pools[k]);
    fprintf(stderr, "all %u acknowledged runs completed; timers fired at most %llu ms late\n",
            checked, (unsigned long long)late_max);
    wk_pools_print(t->pools, RR_NODES);

    /* The acceptance: no call of the load failed once the client's retries were spent. */
    assert_int_equal(failed, 0);
    assert_int_equal(hc_stop_all(&t->c), 0);
    t->passed = true;
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_cluster_rolling, rr_setup, rr_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
