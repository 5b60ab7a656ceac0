/* worker_internal.h: the weft_worker object shared by worker.c (lifecycle, registry, signals,
 * stats), wftask.c (workflow-task pollers) and activity.c (activity pollers and executors);
 * never installed (DESIGN section 11). */
#ifndef WEFT_SDK_WORKER_INTERNAL_H
#define WEFT_SDK_WORKER_INTERNAL_H

#include <pthread.h>
#include <semaphore.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "cache.h"
#include "engine.h"
#include "weft/worker.h"

/* ---- Limits of this layer (the public ones are in weft/worker.h) ---- */

/* Concurrency options' maxima. Each poller thread holds a connection and, for workflows, runs
 * coroutines on its own stack; beyond this a process should run more workers, not more threads. */
#define WKR_WORKFLOW_CONCURRENCY_MAX 1024u
#define WKR_ACTIVITY_CONCURRENCY_MAX 1024u
/* Threads one run may start in all (pollers of every node and kind). The pollers are per node
 * (worker.h, "Threads"), so a big concurrency times a big cluster is refused at
 * weft_worker_run with RESOURCE_EXHAUSTED rather than half-started. One node with both
 * concurrencies at their maxima (2 x 1024 workflow + 1024 activity pollers) fits. */
#define WKR_THREADS_MAX 4096u
/* Poll wait of an activity poller whose slot others may want: a poller that polls a node
 * beyond that node's one standing poll (the node just had work), or that got its slot while
 * other pollers queued for one. An idle node then gives its slot back within this. */
#define WKR_ACT_SHORT_POLL_MS 1000u
/* Runs one sticky cache may hold. Every cached run keeps its coroutine stack mapped. */
#define WKR_STICKY_CACHE_RUNS_MAX 100000u
/* Largest coroutine stack accepted: a bigger one is a mistake, not a need. */
#define WKR_WF_STACK_BYTES_MAX (64u * 1024u * 1024u)
/* Longest long-poll a worker asks for. A stop waits for the polls in flight, so a longer one
 * would only delay shutdown; the server answers an idle poll after 60 s anyway. */
#define WKR_POLL_TIMEOUT_MS_MAX 60000u
/* Granularity at which a sleeping thread (poll backoff) checks for a stop. */
#define WKR_STOP_CHECK_MS 50u
/* How long a task waits for its run while another task of the same run is still being
 * processed. The server dispatches a run's next task only once the previous completion applied,
 * so the holder is about to put the run back; a longer wait means the holder is stuck (its task
 * timed out) and the waiter replays instead. */
#define WKR_CACHE_TAKE_WAIT_MS 1000u
/* Workers of one process that may have handle_signals on while they run. */
#define WKR_SIGNAL_WORKERS_MAX 64u
/* Length of the random suffix that makes a sticky queue name unique per worker instance. */
#define WKR_STICKY_SUFFIX_HEX_BYTES 16u
/* A registered name, or one of the worker's strings, with its NUL. */
#define WKR_NAME_BUF_BYTES (WEFT_WORKER_NAME_BYTES_MAX + 1u)

_Static_assert(2u * WKR_WORKFLOW_CONCURRENCY_MAX + WKR_ACTIVITY_CONCURRENCY_MAX <= WKR_THREADS_MAX,
               "one node at the maximum concurrencies must fit the thread limit");
_Static_assert(WKR_ACT_SHORT_POLL_MS >= WKR_STOP_CHECK_MS, "a short poll is still a long-poll");
_Static_assert(WEFT_WORKER_POLL_TIMEOUT_MS_DEFAULT <= WKR_POLL_TIMEOUT_MS_MAX,
               "the default poll must be accepted");
_Static_assert(WEFT_WORKER_POLL_BACKOFF_INITIAL_MS <= WEFT_WORKER_POLL_BACKOFF_MAX_MS,
               "the backoff starts below its cap");
_Static_assert(WEFT_WORKER_WF_STACK_BYTES_MIN <= WEFT_WORKER_WF_STACK_BYTES_DEFAULT &&
                   WEFT_WORKER_WF_STACK_BYTES_DEFAULT <= WKR_WF_STACK_BYTES_MAX,
               "the default stack must be accepted");
_Static_assert(WEFT_WORKER_STICKY_CACHE_RUNS_DEFAULT <= WKR_STICKY_CACHE_RUNS_MAX,
               "the default cache must be accepted");
/* weft_worker_stop runs in signal handlers: it may only touch lock-free atomics. */
_Static_assert(ATOMIC_BOOL_LOCK_FREE == 2, "weft_worker_stop needs a lock-free atomic_bool");
_Static_assert(ATOMIC_POINTER_LOCK_FREE == 2, "the signal handler reads workers lock-free");

/* One registered workflow or activity type. */
typedef struct wkr_type {
    char name[WKR_NAME_BUF_BYTES]; /* the type, NUL-terminated */
    weft_workflow_fn wf_fn;        /* workflow types: the code; NULL for activities */
    weft_activity_fn act_fn;       /* activity types: the code; NULL for workflows */
    void *arg;                     /* registration argument, borrowed */
} wkr_type;

/* A thread of a running worker and what it polls. */
typedef enum wkr_role {
    WKR_ROLE_WFT_SHARED, /* workflow tasks of the shared task queue */
    WKR_ROLE_WFT_STICKY, /* workflow tasks of this worker's sticky queue */
    WKR_ROLE_ACTIVITY,   /* activity tasks of the shared task queue */
} wkr_role;

/* A node the worker polls during one run (worker.c builds the list from weft_client_nodes). */
typedef struct wkr_node {
    uint64_t node_id; /* pinned polls (weft_client_poll_*_on); 0: the client's routed polls */
    char address[WEFT_CLIENT_ADDRESS_BYTES_MAX]; /* for log lines */
    atomic_bool poll_failing; /* a poll of this node failed and none succeeded since */
    /* activity pollers of this node (activity.c): see wkr_act_thread_main */
    pthread_mutex_t mu;   /* guards the two below */
    pthread_cond_t cv;    /* signalled when polling drops or busy is set (CLOCK_MONOTONIC) */
    uint32_t act_polling; /* activity pollers in a poll of this node or queued for its slot */
    bool act_busy;        /* the latest activity poll of this node returned a task */
} wkr_node;

typedef struct wkr_thread {
    weft_worker *w;   /* owner */
    wkr_node *node;   /* the node this thread polls */
    wkr_role role;    /* what the thread polls */
    pthread_t thread; /* the thread, valid while started */
    bool started;     /* pthread_create succeeded */
} wkr_thread;

/* The activity execution slots: activity_concurrency of them, granted in FIFO order. A poller
 * takes one BEFORE it polls (a task received is already started on the server and must run at
 * once) and gives it back after reporting, or after an empty or failed poll. FIFO matters: a
 * poller that gives a slot back and asks again at once would otherwise overtake a poller of
 * another node that has been waiting (sem_t makes no such promise), and could starve it. */
typedef struct wkr_slots {
    pthread_mutex_t mu;   /* guards the fields below */
    pthread_cond_t cv;    /* broadcast on every change (CLOCK_MONOTONIC) */
    uint32_t free;        /* slots not held */
    uint64_t next_ticket; /* ticket the next waiter draws */
    uint64_t serving;     /* the ticket whose turn it is */
} wkr_slots;

/* Counters behind weft_worker_stats (cached_runs and cache_evictions come from the cache). */
typedef struct wkr_counters {
    atomic_uint_fast64_t workflow_tasks_completed; /* CompleteWorkflowTask accepted */
    atomic_uint_fast64_t workflow_tasks_failed;    /* FailWorkflowTask sent */
    atomic_uint_fast64_t sticky_hits;              /* tasks fed to a cached run */
    atomic_uint_fast64_t sticky_misses;            /* tasks replayed from the full history */
    atomic_uint_fast64_t activities_completed;     /* CompleteActivity accepted */
    atomic_uint_fast64_t activities_failed;        /* FailActivity accepted */
} wkr_counters;

struct weft_worker {
    weft_client *client; /* borrowed; outlives the worker */
    /* options, resolved to their defaults by weft_worker_new; immutable afterwards */
    char namespace_[WKR_NAME_BUF_BYTES];   /* namespace of every request */
    char task_queue[WKR_NAME_BUF_BYTES];   /* the shared queue */
    char identity[WKR_NAME_BUF_BYTES];     /* identity of every request */
    char sticky_queue[WKR_NAME_BUF_BYTES]; /* this instance's sticky queue, "" when disabled */
    uint32_t workflow_concurrency;         /* tasks processed at once; pollers per node/queue */
    uint32_t activity_concurrency;         /* activities executing at once (act_slots) */
    uint32_t sticky_cache_runs;            /* cache capacity */
    bool sticky_cache_disabled;            /* every task replays from the full history */
    uint32_t wf_stack_bytes;               /* coroutine stack per run */
    uint32_t poll_timeout_ms;              /* long-poll wait asked of the server */
    bool no_workflows;                     /* never poll workflow tasks */
    bool no_activities;                    /* never poll activity tasks */
    bool handle_signals;                   /* SIGTERM/SIGINT stop a running worker */
    /* registry: written only while not running (under mu), read lock-free by the threads */
    pthread_mutex_t mu;                         /* guards the registry and `running` */
    wkr_type workflows[WEFT_WORKER_TYPES_MAX];  /* registered workflow types */
    uint32_t workflows_count;                   /* entries used in workflows */
    wkr_type activities[WEFT_WORKER_TYPES_MAX]; /* registered activity types */
    uint32_t activities_count;                  /* entries used in activities */
    bool running;                               /* inside weft_worker_run */
    /* shared by the threads */
    atomic_bool stop;      /* set by weft_worker_stop (async-signal-safe); cleared by run */
    wkr_cache *cache;      /* sticky cache of wfe_run, NULL when disabled */
    sem_t wft_slots;       /* workflow_concurrency: workflow tasks processed at once */
    wkr_counters counters; /* statistics */
    /* set by weft_worker_run before the threads start, immutable while they run */
    wkr_node *nodes;           /* the nodes polled (one entry with node_id 0: routed polls) */
    uint32_t nodes_count;      /* entries in nodes */
    uint32_t act_cold_pollers; /* activity pollers that may poll an idle node at once */
    wkr_slots act_slots;       /* activity_concurrency execution slots */
};

/* ---- worker.c ---- */

/* The registered workflow / activity type called `type`, or NULL. */
const wkr_type *wkr_workflow_find(const weft_worker *w, weft_str type);
const wkr_type *wkr_activity_find(const weft_worker *w, weft_str type);

/* True once weft_worker_stop was called for the current run. */
bool wkr_stopping(const weft_worker *w);

/* Prints one line "weft worker <identity>: <message>" to stderr. */
void wkr_log(const weft_worker *w, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* After a failed poll of `node`: logs the first failure of the node's outage (one line for
 * all its threads), then sleeps *backoff_ms (interrupted by a stop) and doubles it up to the
 * maximum. */
void wkr_poll_failed(weft_worker *w, wkr_node *node, const char *what, const char *queue, int rc,
                     const weft_err *err, uint32_t *backoff_ms);
/* After a successful poll of `node`: resets the backoff and ends the node's outage (logging
 * the recovery). */
void wkr_poll_ok(weft_worker *w, wkr_node *node, uint32_t *backoff_ms);

/* Waits on `cv` (CLOCK_MONOTONIC, `mu` held) for at most ms. */
void wkr_cond_wait_ms(pthread_cond_t *cv, pthread_mutex_t *mu, uint32_t ms);
/* Initialises a condition variable on CLOCK_MONOTONIC (for wkr_cond_wait_ms). */
void wkr_cond_init(pthread_cond_t *cv);

/* Copies `s` into `dst` (capacity `cap` >= 1), truncated, NUL-terminated and valid UTF-8
 * (invalid or cut sequences become '?'), because the server refuses invalid strings.
 * Returns the bytes written before the NUL. */
size_t wkr_text_copy(char *dst, size_t cap, const char *s, size_t len);
/* Formats into `dst` with the same guarantees (truncated, NUL-terminated, valid UTF-8). */
size_t wkr_text_format(char *dst, size_t cap, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* ---- wftask.c ---- */

/* Thread body of WKR_ROLE_WFT_SHARED and WKR_ROLE_WFT_STICKY threads (arg: wkr_thread). */
void *wkr_wft_thread_main(void *arg);

/* ---- activity.c ---- */

/* Thread body of WKR_ROLE_ACTIVITY threads (arg: wkr_thread). */
void *wkr_act_thread_main(void *arg);

/* Activity pollers per node for `nodes` nodes and `concurrency` slots, and how many of a
 * node's pollers may poll it at once while it is idle (worker.h, "Threads"). */
uint32_t wkr_act_pollers_per_node(uint32_t concurrency, uint32_t nodes);
uint32_t wkr_act_cold_pollers(uint32_t concurrency, uint32_t nodes);

/* The activity slots (run start: all free; run end: destroyed). */
void wkr_slots_init(wkr_slots *s, uint32_t count);
void wkr_slots_destroy(wkr_slots *s);

#endif
