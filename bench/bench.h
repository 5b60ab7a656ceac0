/* bench.h: weft-bench, a load generator for weftd that reports figures, never pass or fail:
 * its limits, its configuration, latency histograms, the report and the scenarios. */
#ifndef WEFT_BENCH_H
#define WEFT_BENCH_H

#include <limits.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "proto/base.h"
#include "proto/limits.h"
#include "weft/client.h"

/* ---- Limits (every one bounds a run in time or memory) ---- */

/* Client threads of one scenario (starters, signallers). Each opens its own connection. */
#define BENCH_THREADS_MAX 256u
/* Worker threads per task kind: --workers N runs N workflow-task and N activity-task pollers. */
#define BENCH_WORKERS_MAX 128u
/* Sequential activities of one bench workflow. The worker decides from the history one poll
 * returns, so the whole history must fit in one poll reply (weftd sends up to half a frame of
 * events): about 6 events per activity, each well under BENCH_EVENT_BYTES_ESTIMATE. */
#define BENCH_ACTIVITIES_MAX 1000u
#define BENCH_EVENTS_PER_ACTIVITY 6u
#define BENCH_EVENT_BYTES_ESTIMATE 256u
/* Workflows of one run: ids and counters are 32-bit. */
#define BENCH_WORKFLOWS_MAX 1000000u
/* A run's measured phase: loads are bounded in time, whatever the other flags say. */
#define BENCH_DURATION_S_MAX 3600u
/* After the measured phase, how long in-flight workflows may take to finish before the bench
 * stops waiting for them (they are then reported as unfinished). */
#define BENCH_DRAIN_MS 30000u
/* Long-poll time of worker polls and result waits: short, so that the bench stops quickly. */
#define BENCH_POLL_MS 1000u
/* Activity start-to-close timeout in bench workflows: bench activities are instant, so a
 * timeout only fires when a task was lost, and the lost attempt is retried this soon. */
#define BENCH_ACTIVITY_TIMEOUT_MS 30000u
/* The optional timer of the workflow scenario. */
#define BENCH_TIMER_MS_MAX 600000u
/* Shards of a spawned weftd (weftd allows 1..1024). */
#define BENCH_SHARDS_MAX 1024u
/* Extra flags passed to a spawned weftd with --weftd-arg. */
#define BENCH_WEFTD_ARGS_MAX 16u
/* How long a spawned weftd may take to have every shard ready. */
#define BENCH_WEFTD_READY_MS 30000u
/* How long a SIGTERM'd weftd may take to stop before it is killed. */
#define BENCH_WEFTD_STOP_MS 30000u
/* Workflow ids, names and queue names the bench builds, including the NUL. */
#define BENCH_ID_BYTES 128u
/* A "host:port" address, including the NUL. */
#define BENCH_ADDRESS_BYTES 64u
/* Named figures (rates, counts) and latency rows in one report. */
#define BENCH_FIGURES_MAX 24u
#define BENCH_LATENCIES_MAX 8u

_Static_assert(BENCH_POLL_MS < BENCH_DRAIN_MS, "a poll must end well within the drain");
_Static_assert((BENCH_ACTIVITIES_MAX + 2u) * BENCH_EVENTS_PER_ACTIVITY <
                   WEFT_HISTORY_EVENTS_MAX_DEFAULT,
               "a bench workflow's history fits weftd's default history-events-max");
_Static_assert((uint64_t)(BENCH_ACTIVITIES_MAX + 2u) * BENCH_EVENTS_PER_ACTIVITY *
                       BENCH_EVENT_BYTES_ESTIMATE <
                   WEFT_FRAME_BYTES_MAX_DEFAULT / 2u,
               "a bench workflow's history fits one poll reply at weftd's default frame size");
_Static_assert(BENCH_ID_BYTES <= WEFT_CLIENT_ADDRESS_BYTES_MAX, "ids fit the client's strings");

/* ---- Configuration (weft-bench.c parses it from the flags) ---- */

typedef struct bench_config {
    const char *scenario;                         /* "start", "workflow" or "signal" */
    char address[BENCH_ADDRESS_BYTES];            /* weftd client address, host:port */
    const char *spawn_path;                       /* --spawn: weftd binary to run, NULL = connect */
    const char *weftd_args[BENCH_WEFTD_ARGS_MAX]; /* --weftd-arg values, borrowed from argv */
    uint32_t weftd_args_count;                    /* entries used in weftd_args */
    bool keep_data;                               /* --keep: leave the spawned weftd's dir behind */
    uint32_t duration_s;                          /* measured phase (the cap, for workflow) */
    uint32_t threads;                             /* client threads / workflows kept in flight */
    uint32_t workflows;                           /* workflow: total to run; signal: targets */
    uint32_t activities;                          /* sequential activities per workflow */
    uint32_t timer_ms;                /* workflow: a timer after the activities, 0 = none */
    uint32_t workers;                 /* pollers per task kind */
    uint32_t shards;                  /* --spawn: weftd --shards */
    char task_queue[BENCH_ID_BYTES];  /* task queue of every bench workflow */
    char run_tag[BENCH_ID_BYTES / 2]; /* unique per run: prefixes ids so runs never clash */
    bool json;                        /* print the JSON line too */
} bench_config;

/* Run-wide stop flag: set by SIGINT / SIGTERM, and by scenarios when their time is up. */
extern atomic_bool bench_stop;

/* Microseconds of the monotonic clock. */
uint64_t bench_now_us(void);
/* Sleeps ms milliseconds (or less if interrupted by a signal). */
void bench_sleep_ms(uint32_t ms);
/* Opens one client to cfg->address for a bench thread. Returns 0 or the client's error, which
 * is printed to stderr with `who`. */
int bench_client_open(const bench_config *cfg, const char *who, weft_client **out);

/* ---- Latency histograms (latency.c) ---- */

/* Log-linear buckets: exact below 2^BENCH_LAT_SUB_BITS us, then 2^BENCH_LAT_SUB_BITS buckets
 * per power of two, so a reported percentile is within about 3% of the true value. */
#define BENCH_LAT_SUB_BITS 5u
#define BENCH_LAT_SUB_COUNT (1u << BENCH_LAT_SUB_BITS)
/* Largest recordable latency is 2^(BENCH_LAT_MSB_MAX+1) us (about 19 minutes); longer ones
 * land in the last bucket (max stays exact). */
#define BENCH_LAT_MSB_MAX 30u
#define BENCH_LAT_BUCKETS ((BENCH_LAT_MSB_MAX - BENCH_LAT_SUB_BITS + 2u) * BENCH_LAT_SUB_COUNT)

typedef struct bench_latency {
    uint64_t buckets[BENCH_LAT_BUCKETS]; /* samples per bucket */
    uint64_t count;                      /* samples recorded */
    uint64_t sum_us;                     /* for the mean */
    uint64_t max_us;                     /* exact maximum */
} bench_latency;

/* Records one sample of `us` microseconds. */
void bench_latency_add(bench_latency *l, uint64_t us);
/* Adds every sample of `from` into `into`. */
void bench_latency_merge(bench_latency *into, const bench_latency *from);
/* The value below which `q` (0..1] of the samples lie (bucket midpoint), 0 when empty. */
uint64_t bench_latency_quantile_us(const bench_latency *l, double q);

/* Per-thread counters of a scenario; merged into one when the threads are joined. */
typedef struct bench_errors {
    uint64_t by_code[WEFT_E__COUNT]; /* failed calls per weft error code */
    char first_message[WEFT_E__COUNT][WEFT_ERR_MESSAGE_BYTES_MAX]; /* first of each code */
} bench_errors;

/* Counts a failed call and keeps the first message of its code. */
void bench_errors_add(bench_errors *e, int rc, const weft_err *err);
void bench_errors_merge(bench_errors *into, const bench_errors *from);
uint64_t bench_errors_total(const bench_errors *e);

/* ---- The report (report.c): one set of rows printed as a table and as one JSON line ---- */

/* A named figure: a rate, a count or a duration. */
typedef struct bench_figure {
    const char *key;  /* JSON key and table label, e.g. "starts_per_s" */
    double value;     /* the figure */
    const char *unit; /* shown in the table, e.g. "/s" */
} bench_figure;

/* A named latency distribution. */
typedef struct bench_latency_row {
    const char *key;   /* e.g. "start" */
    bench_latency lat; /* a copy, so the scenario may free its own */
} bench_latency_row;

typedef struct bench_report {
    const bench_config *cfg;                          /* borrowed */
    bench_figure figures[BENCH_FIGURES_MAX];          /* in print order */
    uint32_t figures_count;                           /* entries used */
    bench_latency_row latencies[BENCH_LATENCIES_MAX]; /* in print order */
    uint32_t latencies_count;                         /* entries used */
    bench_errors errors;                              /* failed calls of every thread */
    char weftd_note[256];                             /* spawned weftd: exit and log summary */
} bench_report;

void bench_report_figure(bench_report *r, const char *key, double value, const char *unit);
void bench_report_latency(bench_report *r, const char *key, const bench_latency *lat);
/* Prints the table to stdout, then the JSON line if cfg->json. */
void bench_report_print(const bench_report *r);

/* ---- Spawning weftd (spawn.c) ---- */

typedef struct bench_weftd {
    pid_t pid;                             /* running weftd, 0 when none */
    char dir[PATH_MAX / 2];                /* mkdtemp'd root: data/ and weftd.log */
    char log_path[PATH_MAX];               /* dir/weftd.log: weftd's stdout and stderr */
    char listen[BENCH_ADDRESS_BYTES];      /* --listen 127.0.0.1:port */
    char raft_listen[BENCH_ADDRESS_BYTES]; /* --raft-listen 127.0.0.1:port */
} bench_weftd;

/* Starts cfg->spawn_path on a fresh temp dir and two free loopback ports with --shards and the
 * --weftd-arg flags, waits until every shard is ready, and writes its address into
 * cfg->address. Returns 0, or -1 after printing why (the process, if any, is stopped). */
int bench_weftd_start(bench_weftd *w, bench_config *cfg);
/* What the running weftd has used so far: peak resident MiB and the MiB its data dir takes on
 * disk, reported as figures into r. */
void bench_weftd_report_usage(const bench_weftd *w, bench_report *r);
/* SIGTERM and wait (kill -9 after BENCH_WEFTD_STOP_MS); summarises the exit status and the
 * log's WARN and ERROR lines into note (capacity cap); removes the dir unless keep. */
void bench_weftd_stop(bench_weftd *w, bool keep, char *note, size_t cap);

/* ---- Client threads (threads.c): N threads, each with its own client, looping one op ---- */

/* Seconds of per-second throughput kept: the measured phase plus the drain. */
#define BENCH_SECONDS_MAX (BENCH_DURATION_S_MAX + BENCH_DRAIN_MS / 1000u + 1u)

/* One client thread of a scenario. */
typedef struct bench_thread {
    const bench_config *cfg;  /* borrowed */
    void *scenario;           /* the scenario's shared state, borrowed */
    uint32_t index;           /* 0..count-1 */
    weft_client *c;           /* this thread's own client */
    uint64_t seq;             /* operations attempted: makes ids unique within the thread */
    atomic_uint_fast64_t ops; /* operations that succeeded, read live by the progress line */
    bench_latency lat;        /* latency of the scenario's main operation */
    bench_latency lat2;       /* a second latency, when the scenario has one */
    bench_errors errors;      /* failed calls */
} bench_thread;

/* One operation of a scenario, run in a loop by every thread until the deadline or the stop
 * flag. Returns false when the thread has no more work. */
typedef bool (*bench_op_fn)(bench_thread *t);

/* What the threads of one run did, merged. */
typedef struct bench_totals {
    uint64_t ops;        /* successful operations */
    uint64_t elapsed_us; /* from the first thread's start to the last one's end */
    bench_latency lat;   /* merged bench_thread.lat */
    bench_latency lat2;  /* merged bench_thread.lat2 */
    bench_errors errors; /* merged failures */
    uint64_t per_second[BENCH_SECONDS_MAX]; /* ops completed in each second of the run */
    uint32_t seconds; /* whole seconds of full load: before the deadline, every
                         thread still running; a prefix of per_second */
} bench_totals;

/* Opens `count` clients, then runs `count` threads of `op` until each returns false,
 * `duration_us` has passed since the clients were open, or bench_stop is set, printing a progress
 * line labelled `what` to stderr each second. An op that is running at the deadline finishes; the
 * op must bound its own waits. `scenario` is borrowed. Returns 0, or -1 when a thread could not
 * start (printed). */
int bench_threads_run(const bench_config *cfg, uint32_t count, void *scenario, bench_op_fn op,
                      uint64_t duration_us, const char *what, bench_totals *out);
/* Reports the slowest and fastest whole second of a run (stalls show as a low minimum). */
void bench_totals_report_seconds(const bench_totals *t, bench_report *r, const char *min_key,
                                 const char *max_key);

/* ---- CPU accounting (host.c): on a small, possibly shared machine the figures mean little
 * without knowing who else used the cores during the run ---- */

/* utime + stime of process pid, in seconds, from /proc/PID/stat; -1 when unreadable. */
double bench_proc_cpu_s(pid_t pid);

typedef struct bench_cpu_sample {
    double host_busy_s; /* every core's non-idle time since boot (/proc/stat), seconds */
    double self_s;      /* this process's user + system time */
    double weftd_s;     /* the spawned weftd's user + system time, 0 when not spawned */
} bench_cpu_sample;

/* Takes a sample; weftd_pid 0 when no weftd was spawned. */
bench_cpu_sample bench_cpu_take(pid_t weftd_pid);
/* Reports bench_cpu_s, weftd_cpu_s (when spawned) and other_cpu_s: the CPU time every other
 * process of the host used between the two samples (with --address it includes weftd). */
void bench_cpu_report(const bench_cpu_sample *before, const bench_cpu_sample *after, bool spawned,
                      bench_report *r);

/* ---- Scenarios ---- */

/* Each runs its load against cfg->address, bounded by cfg->duration_s (plus BENCH_DRAIN_MS),
 * and fills r. Returns 0, or -1 when the load could not run at all (printed). */
int bench_scenario_start(const bench_config *cfg, bench_report *r);
/* Starts workflow `id` (borrowed) of `type` on cfg->task_queue with t's client; on success
 * adds the call's latency to `lat` (may be NULL). Counts a failure in t->errors. Returns 0 or
 * the client's error. Shared by every scenario that starts workflows. */
int bench_start_one(bench_thread *t, const char *id, const char *type, bench_latency *lat);
int bench_scenario_workflow(const bench_config *cfg, bench_report *r);
int bench_scenario_signal(const bench_config *cfg, bench_report *r);

/* ---- The bench worker (worker.c): pollers that run the bench workflow ---- */

/* What the bench workflow does, read by every decision: `activities` sequential activities,
 * then a timer of timer_ms when it is not 0, then CompleteWorkflow. A workflow that gets
 * signals completes nothing until its WFT answers (the signal scenario's workflows never end). */
typedef struct bench_workers {
    const bench_config *cfg;                  /* borrowed */
    bool never_complete;                      /* signal scenario: decisions return no commands */
    pthread_t wft_threads[BENCH_WORKERS_MAX]; /* workflow-task pollers */
    pthread_t act_threads[BENCH_WORKERS_MAX]; /* activity-task pollers */
    uint32_t wft_threads_count;               /* started */
    uint32_t act_threads_count;               /* started */
    atomic_bool stop;                         /* set by bench_workers_stop */
    atomic_uint_fast64_t wft_completed;       /* workflow tasks completed */
    atomic_uint_fast64_t act_completed;       /* activity tasks completed */
    atomic_uint_fast64_t empty_polls;         /* polls that timed out empty */
    pthread_mutex_t mu;                       /* guards the merged stats below */
    bench_latency wft_rtt;      /* WorkflowTaskScheduled event time -> completion acknowledged */
    bench_latency wft_complete; /* CompleteWorkflowTask call */
    bench_latency act_complete; /* CompleteActivity call */
    bench_latency act_dispatch; /* ActivityTaskScheduled time -> the poll answered with it */
    bench_errors errors;        /* failed worker calls */
} bench_workers;

/* Starts cfg->workers pollers of each kind on cfg->task_queue. Returns 0 or -1 (printed; the
 * threads that did start are stopped). */
int bench_workers_start(bench_workers *w, const bench_config *cfg, bool never_complete);
/* Stops and joins every poller (each ends its current poll, at most BENCH_POLL_MS). */
void bench_workers_stop(bench_workers *w);

#endif
