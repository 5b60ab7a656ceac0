/* worker.c: the weft_worker object (DESIGN section 11): options, the type registry, run (the
 * nodes to poll and the poller threads per node) and stop with drain, SIGTERM/SIGINT handling,
 * statistics, and the helpers its pollers share. The pollers themselves live in wftask.c
 * (workflow tasks) and activity.c (activity tasks). */
#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "worker_internal.h"

_Static_assert(WKR_WORKFLOW_CONCURRENCY_MAX <= SEM_VALUE_MAX, "wft_slots counts the concurrency");

/* ---- Small shared helpers ---- */

size_t wkr_text_copy(char *dst, size_t cap, const char *s, size_t len) {
    WEFT_ASSERT(dst != NULL && cap >= 1);
    if (s == NULL) len = 0;
    if (len > cap - 1) len = cap - 1;
    if (len > 0 && dst != s) memmove(dst, s, len);
    dst[len] = '\0';
    weft_utf8_repair(dst, len); /* a cut or invalid sequence: the server refuses invalid UTF-8 */
    WEFT_ASSERT(weft_utf8_valid(dst, len));
    return len;
}

size_t wkr_text_format(char *dst, size_t cap, const char *fmt, ...) {
    WEFT_ASSERT(dst != NULL && cap >= 1);
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(dst, cap, fmt, ap);
    va_end(ap);
    size_t len = n < 0 ? 0 : WEFT_MIN((size_t)n, cap - 1);
    /* In place: the copy only shortens or rewrites bytes. */
    return wkr_text_copy(dst, cap, dst, len);
}

void wkr_log(const weft_worker *w, const char *fmt, ...) {
    char line[WEFT_ERR_MESSAGE_BYTES_MAX * 4];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    /* One fprintf per line: stdio locks the stream per call, so threads never interleave. */
    fprintf(stderr, "weft worker %s: %s\n", w->identity, line);
}

bool wkr_stopping(const weft_worker *w) {
    return atomic_load(&w->stop);
}

/* Sleeps up to ms, waking early when the worker is stopped. */
static void wkr_sleep_unless_stopped(const weft_worker *w, uint32_t ms) {
    uint64_t deadline = weft_mono_ms() + ms;
    while (!wkr_stopping(w)) {
        uint64_t now = weft_mono_ms();
        if (now >= deadline) return;
        uint64_t slice = WEFT_MIN(deadline - now, (uint64_t)WKR_STOP_CHECK_MS);
        struct timespec ts = {.tv_sec = 0, .tv_nsec = (long)slice * 1000000L};
        while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
        }
    }
}

void wkr_cond_init(pthread_cond_t *cv) {
    pthread_condattr_t a;
    pthread_condattr_init(&a);
    pthread_condattr_setclock(&a, CLOCK_MONOTONIC);
    int rc = pthread_cond_init(cv, &a);
    WEFT_ASSERT(rc == 0); /* glibc's cannot fail */
    pthread_condattr_destroy(&a);
}

void wkr_cond_wait_ms(pthread_cond_t *cv, pthread_mutex_t *mu, uint32_t ms) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    ts.tv_sec += (time_t)(ms / 1000u);
    ts.tv_nsec += (long)(ms % 1000u) * 1000000L;
    if (ts.tv_nsec >= 1000000000L) {
        ts.tv_sec++;
        ts.tv_nsec -= 1000000000L;
    }
    (void)pthread_cond_timedwait(cv, mu, &ts); /* timeout or wakeup: the caller re-checks */
}

/* " on node 2 (10.0.0.2:7400)" for a pinned node, "" for the routed polls. */
static void wkr_node_label(const wkr_node *node, char *buf, size_t cap) {
    buf[0] = '\0';
    if (node->node_id != 0) {
        snprintf(buf, cap, " on node %llu (%s)", (unsigned long long)node->node_id, node->address);
    }
}

void wkr_poll_failed(weft_worker *w, wkr_node *node, const char *what, const char *queue, int rc,
                     const weft_err *err, uint32_t *backoff_ms) {
    WEFT_ASSERT(rc < 0 && backoff_ms != NULL && node != NULL);
    if (*backoff_ms == 0) *backoff_ms = WEFT_WORKER_POLL_BACKOFF_INITIAL_MS;
    /* Every thread of a node fails at once when it goes away; one line says it for all. */
    if (!atomic_exchange(&node->poll_failing, true)) {
        char label[WEFT_CLIENT_ADDRESS_BYTES_MAX + 48];
        wkr_node_label(node, label, sizeof label);
        wkr_log(w,
                "polling %s tasks on queue %s%s failed: %s: %s; retrying with backoff up to "
                "%u ms",
                what, queue, label, weft_error_name(rc), err->message,
                WEFT_WORKER_POLL_BACKOFF_MAX_MS);
    }
    wkr_sleep_unless_stopped(w, *backoff_ms);
    *backoff_ms = WEFT_MIN(*backoff_ms * 2u, WEFT_WORKER_POLL_BACKOFF_MAX_MS);
    WEFT_ASSERT(*backoff_ms <= WEFT_WORKER_POLL_BACKOFF_MAX_MS);
}

void wkr_poll_ok(weft_worker *w, wkr_node *node, uint32_t *backoff_ms) {
    WEFT_ASSERT(node != NULL);
    *backoff_ms = 0;
    if (atomic_load(&node->poll_failing) && atomic_exchange(&node->poll_failing, false)) {
        char label[WEFT_CLIENT_ADDRESS_BYTES_MAX + 48];
        wkr_node_label(node, label, sizeof label);
        wkr_log(w, "polling works again%s", label);
    }
}

/* ---- Options ---- */

/* Checks a name given to the worker: non-empty, short enough, UTF-8. */
static int wkr_check_name(const char *name, const char *field, weft_err *err) {
    if (name == NULL || name[0] == '\0') {
        return weft_err_set(err, WEFT_E_INVALID_ARGUMENT, field, "%s is required and non-empty",
                            field);
    }
    size_t len = strnlen(name, WEFT_WORKER_NAME_BYTES_MAX + 1);
    if (len > WEFT_WORKER_NAME_BYTES_MAX) {
        return weft_err_set(err, WEFT_E_INVALID_ARGUMENT, field,
                            "%s is longer than %u bytes; use a shorter name", field,
                            WEFT_WORKER_NAME_BYTES_MAX);
    }
    if (!weft_utf8_valid(name, len)) {
        return weft_err_set(err, WEFT_E_INVALID_ARGUMENT, field, "%s is not valid UTF-8", field);
    }
    return 0;
}

/* Checks a numeric option against its maximum (0 = default, always fine). */
static int wkr_check_max(uint32_t v, uint32_t max, const char *field, weft_err *err) {
    if (v <= max) return 0;
    return weft_err_set(err, WEFT_E_INVALID_ARGUMENT, field, "%s %u is above the maximum %u", field,
                        v, max);
}

static int wkr_check_opts(const weft_worker_opts *o, weft_err *err) {
    int rc = wkr_check_name(o->task_queue, "task_queue", err);
    if (rc == 0 && o->namespace_ != NULL) rc = wkr_check_name(o->namespace_, "namespace", err);
    if (rc == 0 && o->identity != NULL) rc = wkr_check_name(o->identity, "identity", err);
    if (rc == 0) {
        rc = wkr_check_max(o->workflow_concurrency, WKR_WORKFLOW_CONCURRENCY_MAX,
                           "workflow_concurrency", err);
    }
    if (rc == 0) {
        rc = wkr_check_max(o->activity_concurrency, WKR_ACTIVITY_CONCURRENCY_MAX,
                           "activity_concurrency", err);
    }
    if (rc == 0) {
        rc = wkr_check_max(o->sticky_cache_runs, WKR_STICKY_CACHE_RUNS_MAX, "sticky_cache_runs",
                           err);
    }
    if (rc == 0)
        rc = wkr_check_max(o->wf_stack_bytes, WKR_WF_STACK_BYTES_MAX, "wf_stack_bytes", err);
    if (rc == 0) {
        rc = wkr_check_max(o->poll_timeout_ms, WKR_POLL_TIMEOUT_MS_MAX, "poll_timeout_ms", err);
    }
    if (rc == 0 && o->wf_stack_bytes != 0 && o->wf_stack_bytes < WEFT_WORKER_WF_STACK_BYTES_MIN) {
        rc = weft_err_set(err, WEFT_E_INVALID_ARGUMENT, "wf_stack_bytes",
                          "wf_stack_bytes %u is below the minimum %u; leave it 0 for the default",
                          o->wf_stack_bytes, WEFT_WORKER_WF_STACK_BYTES_MIN);
    }
    return rc;
}

/* The sticky queue of this worker instance: "<task_queue>:sticky:<identity>:<16 hex>". The
 * random suffix keeps two workers with one identity (a restart with the same pid, two workers
 * in one process) from stealing each other's tasks; the prefix is cut to fit a name. */
static int wkr_sticky_name(weft_worker *w, weft_err *err) {
    char rid[WEFT_CLIENT_REQUEST_ID_BYTES];
    int rc = weft_request_id_new(rid, err);
    if (rc != 0) return rc;
    char prefix[2 * WKR_NAME_BUF_BYTES + 16];
    int n = snprintf(prefix, sizeof prefix, "%s:sticky:%s", w->task_queue, w->identity);
    WEFT_ASSERT(n > 0);
    size_t room = WEFT_WORKER_NAME_BYTES_MAX - 1 - WKR_STICKY_SUFFIX_HEX_BYTES;
    char cut[WKR_NAME_BUF_BYTES];
    wkr_text_copy(cut, room + 1, prefix, strlen(prefix));
    wkr_text_format(w->sticky_queue, sizeof w->sticky_queue, "%s:%.*s", cut,
                    (int)WKR_STICKY_SUFFIX_HEX_BYTES, rid);
    WEFT_ASSERT(strlen(w->sticky_queue) <= WEFT_WORKER_NAME_BYTES_MAX);
    return 0;
}

static void wkr_apply_opts(weft_worker *w, const weft_worker_opts *o) {
    snprintf(w->namespace_, sizeof w->namespace_, "%s",
             o->namespace_ ? o->namespace_ : WEFT_DEFAULT_NAMESPACE);
    snprintf(w->task_queue, sizeof w->task_queue, "%s", o->task_queue);
    if (o->identity != NULL) {
        snprintf(w->identity, sizeof w->identity, "%s", o->identity);
    } else {
        char host[256] = "unknown-host";
        (void)gethostname(host, sizeof host - 1);
        host[sizeof host - 1] = '\0';
        char id[sizeof host + 32];
        snprintf(id, sizeof id, "%s:%ld", host, (long)getpid());
        wkr_text_copy(w->identity, sizeof w->identity, id, strlen(id));
    }
    w->workflow_concurrency = o->workflow_concurrency ? o->workflow_concurrency
                                                      : WEFT_WORKER_WORKFLOW_CONCURRENCY_DEFAULT;
    w->activity_concurrency = o->activity_concurrency ? o->activity_concurrency
                                                      : WEFT_WORKER_ACTIVITY_CONCURRENCY_DEFAULT;
    w->sticky_cache_runs =
        o->sticky_cache_runs ? o->sticky_cache_runs : WEFT_WORKER_STICKY_CACHE_RUNS_DEFAULT;
    w->sticky_cache_disabled = o->sticky_cache_disabled;
    w->wf_stack_bytes = o->wf_stack_bytes ? o->wf_stack_bytes : WEFT_WORKER_WF_STACK_BYTES_DEFAULT;
    w->poll_timeout_ms =
        o->poll_timeout_ms ? o->poll_timeout_ms : WEFT_WORKER_POLL_TIMEOUT_MS_DEFAULT;
    w->no_workflows = o->no_workflows;
    w->no_activities = o->no_activities;
    w->handle_signals = o->handle_signals;
}

/* The cache stores wfe_run; it frees them through this. */
static void wkr_cache_free_run(void *item) {
    wfe_run_free(item);
}

int weft_worker_new(weft_client *client, const weft_worker_opts *opts, weft_worker **out,
                    weft_err *err) {
    if (out != NULL) *out = NULL;
    if (client == NULL || opts == NULL || out == NULL) {
        return weft_err_set(err, WEFT_E_INVALID_ARGUMENT, "", "client, opts and out are required");
    }
    int rc = wkr_check_opts(opts, err);
    if (rc != 0) return rc;
    weft_worker *w = calloc(1, sizeof *w);
    if (w == NULL) return weft_err_set(err, WEFT_E_RESOURCE_EXHAUSTED, "", "out of memory");
    w->client = client;
    wkr_apply_opts(w, opts);
    if (!w->sticky_cache_disabled) {
        rc = wkr_sticky_name(w, err);
        if (rc == 0 && wkr_cache_new(w->sticky_cache_runs, wkr_cache_free_run, &w->cache) != 0) {
            rc = weft_err_set(err, WEFT_E_RESOURCE_EXHAUSTED, "sticky_cache_runs",
                              "out of memory for a sticky cache of %u runs", w->sticky_cache_runs);
        }
        if (rc != 0) {
            free(w);
            return rc;
        }
    }
    /* Shared and sticky pollers together process at most workflow_concurrency tasks at once.
     * sem_init fails only for a value above SEM_VALUE_MAX, which the options check excludes. */
    int sem_rc = sem_init(&w->wft_slots, 0, w->workflow_concurrency);
    WEFT_ASSERT(sem_rc == 0);
    pthread_mutex_init(&w->mu, NULL);
    atomic_init(&w->stop, false);
    *out = w;
    return 0;
}

void weft_worker_free(weft_worker *w) {
    if (w == NULL) return;
    pthread_mutex_lock(&w->mu);
    WEFT_ASSERT(!w->running); /* freeing a running worker would free memory its threads use */
    pthread_mutex_unlock(&w->mu);
    wkr_cache_free(w->cache);
    sem_destroy(&w->wft_slots);
    pthread_mutex_destroy(&w->mu);
    free(w);
}

/* ---- Registry ---- */

static const wkr_type *wkr_type_find(const wkr_type *types, uint32_t count, weft_str name) {
    for (uint32_t i = 0; i < count; i++) {
        if (weft_str_eq_c(name, types[i].name)) return &types[i];
    }
    return NULL;
}

const wkr_type *wkr_workflow_find(const weft_worker *w, weft_str type) {
    return wkr_type_find(w->workflows, w->workflows_count, type);
}

const wkr_type *wkr_activity_find(const weft_worker *w, weft_str type) {
    return wkr_type_find(w->activities, w->activities_count, type);
}

/* Adds `t` to one of the worker's tables, under the worker's lock. */
static int wkr_register(weft_worker *w, bool workflow, const wkr_type *t, weft_err *err) {
    const char *what = workflow ? "workflow" : "activity";
    wkr_type *types = workflow ? w->workflows : w->activities;
    uint32_t *count = workflow ? &w->workflows_count : &w->activities_count;
    int rc = 0;
    pthread_mutex_lock(&w->mu);
    if (w->running) {
        rc = weft_err_set(err, WEFT_E_INVALID_ARGUMENT, "type",
                          "cannot register %s type '%s' while the worker runs; register every "
                          "type before weft_worker_run",
                          what, t->name);
    } else if (wkr_type_find(types, *count, weft_str_c(t->name)) != NULL) {
        rc = weft_err_set(err, WEFT_E_INVALID_ARGUMENT, "type",
                          "%s type '%s' is already registered on this worker", what, t->name);
    } else if (*count == WEFT_WORKER_TYPES_MAX) {
        rc = weft_err_set(err, WEFT_E_RESOURCE_EXHAUSTED, "type",
                          "a worker holds at most %u %s types (WEFT_WORKER_TYPES_MAX); split them "
                          "across task queues",
                          WEFT_WORKER_TYPES_MAX, what);
    } else {
        types[(*count)++] = *t;
    }
    pthread_mutex_unlock(&w->mu);
    return rc;
}

int weft_worker_register_workflow(weft_worker *w, const char *type, weft_workflow_fn fn, void *arg,
                                  weft_err *err) {
    if (w == NULL || fn == NULL) {
        return weft_err_set(err, WEFT_E_INVALID_ARGUMENT, "", "worker and fn are required");
    }
    int rc = wkr_check_name(type, "type", err);
    if (rc != 0) return rc;
    wkr_type t = {.wf_fn = fn, .arg = arg};
    snprintf(t.name, sizeof t.name, "%s", type);
    return wkr_register(w, true, &t, err);
}

int weft_worker_register_activity(weft_worker *w, const char *type, weft_activity_fn fn, void *arg,
                                  weft_err *err) {
    if (w == NULL || fn == NULL) {
        return weft_err_set(err, WEFT_E_INVALID_ARGUMENT, "", "worker and fn are required");
    }
    int rc = wkr_check_name(type, "type", err);
    if (rc != 0) return rc;
    wkr_type t = {.act_fn = fn, .arg = arg};
    snprintf(t.name, sizeof t.name, "%s", type);
    return wkr_register(w, false, &t, err);
}

/* ---- Signals ----
 * The handler may only touch lock-free atomics. Workers with handle_signals register in a fixed
 * table while they run; the first one installs the handlers, the last one restores what was
 * there before. `in_handler` lets an unregistering worker wait out a handler that may still
 * hold its pointer, so the worker can be freed right after run returns. */

static _Atomic(weft_worker *) wkr_signal_workers[WKR_SIGNAL_WORKERS_MAX];
static atomic_int wkr_signal_in_handler;
static pthread_mutex_t wkr_signal_mu = PTHREAD_MUTEX_INITIALIZER;  /* guards the two below */
static unsigned wkr_signal_users;                                  /* registered workers */
static struct sigaction wkr_signal_prev_term, wkr_signal_prev_int; /* restored by the last */

static void wkr_signal_handler(int sig) {
    (void)sig;
    int saved_errno = errno;
    atomic_fetch_add(&wkr_signal_in_handler, 1);
    for (unsigned i = 0; i < WKR_SIGNAL_WORKERS_MAX; i++) {
        weft_worker *w = atomic_load(&wkr_signal_workers[i]);
        if (w != NULL) weft_worker_stop(w);
    }
    atomic_fetch_sub(&wkr_signal_in_handler, 1);
    errno = saved_errno;
}

static int wkr_signals_register(weft_worker *w, weft_err *err) {
    int rc = 0;
    pthread_mutex_lock(&wkr_signal_mu);
    unsigned slot = 0;
    while (slot < WKR_SIGNAL_WORKERS_MAX && atomic_load(&wkr_signal_workers[slot]) != NULL)
        slot++;
    if (slot == WKR_SIGNAL_WORKERS_MAX) {
        rc = weft_err_set(err, WEFT_E_RESOURCE_EXHAUSTED, "handle_signals",
                          "more than %u running workers handle signals; let one of them do it",
                          WKR_SIGNAL_WORKERS_MAX);
    } else {
        if (wkr_signal_users == 0) {
            struct sigaction sa;
            memset(&sa, 0, sizeof sa);
            sa.sa_handler = wkr_signal_handler;
            sigemptyset(&sa.sa_mask);
            sa.sa_flags = SA_RESTART;
            sigaction(SIGTERM, &sa, &wkr_signal_prev_term);
            sigaction(SIGINT, &sa, &wkr_signal_prev_int);
        }
        wkr_signal_users++;
        atomic_store(&wkr_signal_workers[slot], w);
    }
    pthread_mutex_unlock(&wkr_signal_mu);
    return rc;
}

static void wkr_signals_unregister(weft_worker *w) {
    pthread_mutex_lock(&wkr_signal_mu);
    for (unsigned i = 0; i < WKR_SIGNAL_WORKERS_MAX; i++) {
        weft_worker *expected = w;
        if (atomic_compare_exchange_strong(&wkr_signal_workers[i], &expected, NULL)) {
            WEFT_ASSERT(wkr_signal_users > 0);
            wkr_signal_users--;
        }
    }
    if (wkr_signal_users == 0) {
        sigaction(SIGTERM, &wkr_signal_prev_term, NULL);
        sigaction(SIGINT, &wkr_signal_prev_int, NULL);
    }
    pthread_mutex_unlock(&wkr_signal_mu);
    /* A handler that loaded w before the slot was cleared finishes within microseconds. */
    while (atomic_load(&wkr_signal_in_handler) != 0) {
        struct timespec ts = {.tv_sec = 0, .tv_nsec = 100000L};
        nanosleep(&ts, NULL);
    }
}

/* ---- Run and stop ---- */

void weft_worker_stop(weft_worker *w) {
    if (w != NULL) atomic_store(&w->stop, true);
}

/* Threads the worker starts, and whether each kind polls. */
typedef struct wkr_plan {
    bool workflows;        /* poll workflow tasks */
    bool sticky;           /* also poll the sticky queue */
    bool activities;       /* poll activity tasks */
    uint32_t wft_per_node; /* shared-queue pollers per node (as many on the sticky queue) */
    uint32_t act_per_node; /* activity pollers per node */
    uint64_t total;        /* threads, over every node */
} wkr_plan;

static wkr_plan wkr_plan_kinds(const weft_worker *w) {
    wkr_plan p = {
        .workflows = !w->no_workflows && w->workflows_count > 0,
        .activities = !w->no_activities && w->activities_count > 0,
    };
    p.sticky = p.workflows && !w->sticky_cache_disabled;
    return p;
}

/* Thread counts for w->nodes_count nodes (worker.h, "Threads"). Workflow pollers do not hold a
 * processing slot while they poll, so each node gets the full count: a node that leads every
 * busy shard can keep all workflow_concurrency slots busy. As many sticky pollers as shared
 * ones: with the cache on most tasks arrive on the sticky queue, and one that waits there
 * longer than the server's sticky timeout (5 s) moves to the shared queue and replays in full.
 * Activity pollers are counted by wkr_act_pollers_per_node (activity.c). */
static int wkr_plan_counts(const weft_worker *w, wkr_plan *p, weft_err *err) {
    uint32_t nodes = w->nodes_count;
    WEFT_ASSERT(nodes >= 1);
    p->wft_per_node = p->workflows ? w->workflow_concurrency : 0;
    p->act_per_node = p->activities ? wkr_act_pollers_per_node(w->activity_concurrency, nodes) : 0;
    uint64_t per_node = (uint64_t)p->wft_per_node * (p->sticky ? 2u : 1u) + p->act_per_node;
    p->total = per_node * nodes;
    WEFT_ASSERT(p->total > 0);
    if (p->total > WKR_THREADS_MAX) {
        return weft_err_set(err, WEFT_E_RESOURCE_EXHAUSTED, "workflow_concurrency",
                            "polling %u nodes would take %llu threads (%llu per node), above "
                            "the limit of %u; lower workflow_concurrency or "
                            "activity_concurrency, or run more worker processes",
                            nodes, (unsigned long long)p->total, (unsigned long long)per_node,
                            WKR_THREADS_MAX);
    }
    return 0;
}

/* Starts the threads of `plan` into th[], node by node; returns the number started. */
static uint32_t wkr_start_threads(weft_worker *w, const wkr_plan *plan, wkr_thread *th) {
    uint32_t n = 0;
    for (uint32_t k = 0; k < w->nodes_count; k++) {
        wkr_node *node = &w->nodes[k];
        for (uint32_t i = 0; i < plan->wft_per_node; i++) {
            th[n++] = (wkr_thread){.w = w, .node = node, .role = WKR_ROLE_WFT_SHARED};
            if (plan->sticky) {
                th[n++] = (wkr_thread){.w = w, .node = node, .role = WKR_ROLE_WFT_STICKY};
            }
        }
        for (uint32_t i = 0; i < plan->act_per_node; i++) {
            th[n++] = (wkr_thread){.w = w, .node = node, .role = WKR_ROLE_ACTIVITY};
        }
    }
    WEFT_ASSERT(n == plan->total);
    uint32_t started = 0;
    for (uint32_t i = 0; i < n; i++) {
        void *(*main_fn)(void *) =
            th[i].role == WKR_ROLE_ACTIVITY ? wkr_act_thread_main : wkr_wft_thread_main;
        if (pthread_create(&th[i].thread, NULL, main_fn, &th[i]) != 0) break;
        th[i].started = true;
        started++;
    }
    return started;
}

/* Marks the worker running (or says why it cannot run). */
static int wkr_run_begin(weft_worker *w, wkr_plan *plan, weft_err *err) {
    int rc = 0;
    pthread_mutex_lock(&w->mu);
    *plan = wkr_plan_kinds(w);
    if (w->running) {
        rc = weft_err_set(err, WEFT_E_INVALID_ARGUMENT, "", "the worker is already running");
    } else if (!plan->workflows && !plan->activities) {
        rc = weft_err_set(err, WEFT_E_INVALID_ARGUMENT, "",
                          "nothing to run on task queue %s: register a workflow (unless "
                          "no_workflows) or an activity (unless no_activities) first",
                          w->task_queue);
    } else {
        w->running = true;
    }
    pthread_mutex_unlock(&w->mu);
    return rc;
}

static void wkr_run_end(weft_worker *w) {
    pthread_mutex_lock(&w->mu);
    WEFT_ASSERT(w->running);
    w->running = false;
    /* The stop belonged to this run; a later run starts afresh. */
    atomic_store(&w->stop, false);
    pthread_mutex_unlock(&w->mu);
}

/* The node list of this run: the client's nodes, refreshed with ClusterStatus (a node answers
 * a poll only with tasks of the shards it leads, so every node is polled; DESIGN section 8).
 * When the client knows one node (a single-node server) or none by id, one entry with node id
 * 0 stands for "any node": its pollers use the client's routed polls, as before clusters. */
static int wkr_nodes_build(weft_worker *w, weft_err *err) {
    weft_node_ref *refs = calloc(WEFT_CLIENT_NODES_MAX, sizeof *refs);
    if (refs == NULL) return weft_err_set(err, WEFT_E_RESOURCE_EXHAUSTED, "", "out of memory");
    uint32_t count = 0;
    weft_err lerr;
    /* A worker stopped before it ran returns at once: no round trip for the node list. */
    bool refresh = !wkr_stopping(w);
    int rc = weft_client_nodes(w->client, refresh, refs, WEFT_CLIENT_NODES_MAX, &count, &lerr);
    if (rc != 0) {
        wkr_log(w,
                "could not refresh the cluster's node list (%s: %s); polling the nodes the "
                "client already knows",
                weft_error_name(rc), lerr.message);
        if (weft_client_nodes(w->client, false, refs, WEFT_CLIENT_NODES_MAX, &count, &lerr) != 0) {
            count = 0;
        }
    }
    WEFT_ASSERT(count <= WEFT_CLIENT_NODES_MAX);
    uint32_t n = count > 1 ? count : 1;
    w->nodes = calloc(n, sizeof *w->nodes);
    if (w->nodes == NULL) {
        free(refs);
        return weft_err_set(err, WEFT_E_RESOURCE_EXHAUSTED, "", "out of memory");
    }
    w->nodes_count = n;
    for (uint32_t i = 0; i < n; i++) {
        wkr_node *node = &w->nodes[i];
        node->node_id = count > 1 ? refs[i].node_id : 0;
        if (count > 0) snprintf(node->address, sizeof node->address, "%s", refs[i].address);
        atomic_init(&node->poll_failing, false);
        pthread_mutex_init(&node->mu, NULL);
        wkr_cond_init(&node->cv);
    }
    if (count > 1) {
        char line[WEFT_ERR_MESSAGE_BYTES_MAX];
        size_t used = 0;
        for (uint32_t i = 0; i < n && used < sizeof line; i++) {
            int k = snprintf(line + used, sizeof line - used, "%s%llu (%s)", i ? ", " : "",
                             (unsigned long long)refs[i].node_id, refs[i].address);
            if (k < 0) break;
            used += (size_t)k;
        }
        wkr_log(w, "polling %u nodes: %s", n, line);
    }
    free(refs);
    return 0;
}

static void wkr_nodes_free(weft_worker *w) {
    for (uint32_t i = 0; i < w->nodes_count; i++) {
        pthread_cond_destroy(&w->nodes[i].cv);
        pthread_mutex_destroy(&w->nodes[i].mu);
    }
    free(w->nodes);
    w->nodes = NULL;
    w->nodes_count = 0;
}

int weft_worker_run(weft_worker *w, weft_err *err) {
    if (w == NULL) return weft_err_set(err, WEFT_E_INVALID_ARGUMENT, "", "worker is required");
    wkr_plan plan;
    int rc = wkr_run_begin(w, &plan, err);
    if (rc != 0) return rc;
    rc = wkr_nodes_build(w, err);
    bool nodes = rc == 0;
    if (rc == 0) rc = wkr_plan_counts(w, &plan, err);
    wkr_thread *th = NULL;
    if (rc == 0) {
        th = calloc(plan.total, sizeof *th);
        if (th == NULL) rc = weft_err_set(err, WEFT_E_RESOURCE_EXHAUSTED, "", "out of memory");
    }
    if (rc == 0) {
        w->act_cold_pollers = wkr_act_cold_pollers(w->activity_concurrency, w->nodes_count);
        wkr_slots_init(&w->act_slots, w->activity_concurrency);
    }
    bool signals = false;
    if (rc == 0 && w->handle_signals) {
        rc = wkr_signals_register(w, err);
        signals = rc == 0;
    }
    uint32_t started = 0;
    if (rc == 0) {
        started = wkr_start_threads(w, &plan, th);
        if (started < plan.total) {
            rc = weft_err_set(err, WEFT_E_RESOURCE_EXHAUSTED, "",
                              "could only create %u of %llu worker threads; lower the "
                              "concurrency options or raise the process's thread limit",
                              started, (unsigned long long)plan.total);
            weft_worker_stop(w);
        }
    }
    /* The calling thread only waits: the threads notice a stop within one poll and drain. */
    for (uint32_t i = 0; th != NULL && i < plan.total; i++) {
        if (th[i].started) pthread_join(th[i].thread, NULL);
    }
    if (signals) wkr_signals_unregister(w);
    if (th != NULL) wkr_slots_destroy(&w->act_slots);
    free(th);
    if (nodes) wkr_nodes_free(w);
    wkr_run_end(w);
    return rc;
}

void weft_worker_stats_get(weft_worker *w, weft_worker_stats *out) {
    WEFT_ASSERT(w != NULL && out != NULL);
    memset(out, 0, sizeof *out);
    const wkr_counters *c = &w->counters;
    out->workflow_tasks_completed = atomic_load(&c->workflow_tasks_completed);
    out->workflow_tasks_failed = atomic_load(&c->workflow_tasks_failed);
    out->sticky_hits = atomic_load(&c->sticky_hits);
    out->sticky_misses = atomic_load(&c->sticky_misses);
    out->activities_completed = atomic_load(&c->activities_completed);
    out->activities_failed = atomic_load(&c->activities_failed);
    if (w->cache != NULL) wkr_cache_stats(w->cache, &out->cached_runs, &out->cache_evictions);
}
