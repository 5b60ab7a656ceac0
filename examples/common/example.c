/* example.c: the flags, the worker run and the workflow helpers every example shares. */
#include "example.h"

#include <getopt.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* getopt_long values of the common flags; an extra flag i gets EXAMPLE_OPT_EXTRA + i. */
enum {
    EXAMPLE_OPT_ADDRESS = 256,
    EXAMPLE_OPT_NAMESPACE,
    EXAMPLE_OPT_TASK_QUEUE,
    EXAMPLE_OPT_IDENTITY,
    EXAMPLE_OPT_NO_STICKY_CACHE,
    EXAMPLE_OPT_HELP,
    EXAMPLE_OPT_EXTRA,
};

static const struct option example_common_opts[] = {
    {"address", required_argument, NULL, EXAMPLE_OPT_ADDRESS},
    {"namespace", required_argument, NULL, EXAMPLE_OPT_NAMESPACE},
    {"task-queue", required_argument, NULL, EXAMPLE_OPT_TASK_QUEUE},
    {"identity", required_argument, NULL, EXAMPLE_OPT_IDENTITY},
    {"no-sticky-cache", no_argument, NULL, EXAMPLE_OPT_NO_STICKY_CACHE},
    {"help", no_argument, NULL, EXAMPLE_OPT_HELP},
};
#define EXAMPLE_COMMON_OPTS_COUNT (sizeof example_common_opts / sizeof example_common_opts[0])

/* Stores one flag's value. Returns 1 after --help, -1 for a bad flag, else 0. */
static int example_flag_apply(const example_worker *x, int ch, example_flags *f) {
    switch (ch) {
    case EXAMPLE_OPT_ADDRESS:
        f->address = optarg;
        return 0;
    case EXAMPLE_OPT_NAMESPACE:
        f->namespace_ = optarg;
        return 0;
    case EXAMPLE_OPT_TASK_QUEUE:
        f->task_queue = optarg;
        return 0;
    case EXAMPLE_OPT_IDENTITY:
        f->identity = optarg;
        return 0;
    case EXAMPLE_OPT_NO_STICKY_CACHE:
        f->no_sticky_cache = true;
        return 0;
    case EXAMPLE_OPT_HELP:
        return 1;
    default:
        break;
    }
    if (ch < EXAMPLE_OPT_EXTRA || x->extra == NULL) return -1;
    const example_flag *e = &x->extra[ch - EXAMPLE_OPT_EXTRA];
    if (e->value != NULL) *e->value = optarg;
    if (e->set != NULL) *e->set = true;
    return 0;
}

int example_flags_parse(const example_worker *x, int argc, char **argv, example_flags *f) {
    struct option opts[EXAMPLE_COMMON_OPTS_COUNT + EXAMPLE_EXTRA_FLAGS_MAX + 1];
    size_t n = 0;
    for (; n < EXAMPLE_COMMON_OPTS_COUNT; n++)
        opts[n] = example_common_opts[n];
    for (size_t i = 0; x->extra != NULL && x->extra[i].name != NULL; i++) {
        if (i == EXAMPLE_EXTRA_FLAGS_MAX) {
            fprintf(stderr, "%s: more than %u flags of its own\n", x->name,
                    EXAMPLE_EXTRA_FLAGS_MAX);
            return -1;
        }
        opts[n++] = (struct option){x->extra[i].name,
                                    x->extra[i].value != NULL ? required_argument : no_argument,
                                    NULL, EXAMPLE_OPT_EXTRA + (int)i};
    }
    opts[n] = (struct option){NULL, 0, NULL, 0};
    const char *env = getenv("WEFT_ADDRESS");
    *f = (example_flags){.address = env != NULL && env[0] != '\0' ? env : EXAMPLE_ADDRESS_DEFAULT,
                         .task_queue = x->task_queue};
    int ch, rc = 0;
    while (rc == 0 && (ch = getopt_long(argc, argv, "", opts, NULL)) != -1)
        rc = example_flag_apply(x, ch, f);
    if (rc == 0 && optind < argc) {
        fprintf(stderr, "%s: unexpected argument '%s'\n", x->name, argv[optind]);
        rc = -1;
    }
    if (rc != 0) fputs(x->usage, rc > 0 ? stdout : stderr);
    return rc;
}

/* Registers the types, runs until stopped, and prints what the worker did. */
static int example_serve(const example_worker *x, weft_worker *w, const example_flags *f,
                         weft_err *err) {
    int rc = x->register_types(w, x->arg, err);
    if (rc != 0) return rc;
    printf("%s: serving task queue '%s' at %s%s%s; Ctrl-C drains and stops\n", x->name,
           f->task_queue, f->address, x->note != NULL ? "; " : "", x->note != NULL ? x->note : "");
    rc = weft_worker_run(w, err);
    weft_worker_stats s;
    weft_worker_stats_get(w, &s);
    printf("%s: stopped after %llu workflow tasks and %llu activities\n", x->name,
           (unsigned long long)s.workflow_tasks_completed,
           (unsigned long long)(s.activities_completed + s.activities_failed));
    return rc;
}

/* Monotonic milliseconds, for the wait below. */
static uint64_t example_mono_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static uint64_t example_min_u64(uint64_t a, uint64_t b) { return a < b ? a : b; }

/* Tries to reach --address until a node answers or EXAMPLE_CONNECT_WAIT_MS pass, printing
 * each refusal as it comes (at most one line per EXAMPLE_CONNECT_PROGRESS_MS): a worker that
 * waits in silence looks hung. Returns 0 once a node answered. */
static int example_wait_reachable(const example_worker *x, const example_flags *f, weft_err *err) {
    uint64_t start_ms = example_mono_ms();
    uint64_t deadline_ms = start_ms + EXAMPLE_CONNECT_WAIT_MS;
    uint64_t backoff_ms = EXAMPLE_CONNECT_BACKOFF_INITIAL_MS;
    uint64_t said_ms = 0;
    weft_client_opts probe_opts = {.client_name = x->name, .no_retries = true};
    for (unsigned attempt = 1;; attempt++) {
        weft_client *probe = NULL;
        int rc = weft_client_open(f->address, &probe_opts, &probe, err);
        weft_client_close(probe);
        if (rc != -WEFT_E_UNAVAILABLE && rc != -WEFT_E_DEADLINE_EXCEEDED) return rc;
        uint64_t now_ms = example_mono_ms();
        if (now_ms >= deadline_ms) {
            weft_err_prefix(err, "cannot reach %s (--address) after %u tries in %.1f s", f->address,
                            attempt, (double)(now_ms - start_ms) / 1000.0);
            return rc;
        }
        if (attempt == 1) {
            fprintf(stderr, "%s: %s; retrying for up to %u s\n", x->name, err->message,
                    EXAMPLE_CONNECT_WAIT_MS / 1000u);
            said_ms = now_ms;
        } else if (now_ms - said_ms >= EXAMPLE_CONNECT_PROGRESS_MS) {
            fprintf(stderr, "%s: still cannot reach %s (try %u, %.1f s left)\n", x->name,
                    f->address, attempt, (double)(deadline_ms - now_ms) / 1000.0);
            said_ms = now_ms;
        }
        uint64_t pause_ms = example_min_u64(backoff_ms, deadline_ms - now_ms);
        usleep((useconds_t)(pause_ms * 1000u));
        backoff_ms = example_min_u64(backoff_ms * 2u, (uint64_t)EXAMPLE_CONNECT_BACKOFF_MAX_MS);
    }
}

int example_worker_run(const example_worker *x, const example_flags *f) {
    weft_err err;
    weft_err_clear(&err);
    weft_client *client = NULL;
    weft_worker *worker = NULL;
    weft_client_opts copts = {.client_name = x->name, .identity = f->identity};
    /* The worker's own client keeps the library's retries, for a leader's failover. */
    int rc = example_wait_reachable(x, f, &err);
    if (rc == 0) rc = weft_client_open(f->address, &copts, &client, &err);
    if (rc == 0) {
        weft_worker_opts wopts = {
            .namespace_ = f->namespace_,
            .task_queue = f->task_queue,
            .identity = f->identity,
            .sticky_cache_disabled = f->no_sticky_cache,
            .no_workflows = x->no_workflows,
            .no_activities = x->no_activities,
            .handle_signals = true, /* SIGTERM or Ctrl-C: finish the tasks in hand, then stop */
        };
        rc = weft_worker_new(client, &wopts, &worker, &err);
    }
    if (rc == 0) rc = example_serve(x, worker, f, &err);
    if (rc != 0) fprintf(stderr, "%s: %s: %s\n", x->name, weft_error_name(rc), err.message);
    weft_worker_free(worker);
    weft_client_close(client);
    return rc == 0 ? 0 : EXAMPLE_EXIT_FAILURE;
}

int example_main(const example_worker *x, int argc, char **argv) {
    setvbuf(stdout, NULL, _IOLBF, 0); /* one line at a time, also into a file or a pipe */
    example_flags f;
    int rc = example_flags_parse(x, argc, argv, &f);
    if (rc != 0) return rc > 0 ? 0 : EXAMPLE_EXIT_USAGE;
    return example_worker_run(x, &f);
}

void example_wf_log(weft_wf *wf, const char *kind, const char *fmt, ...) {
    if (weft_wf_is_replaying(wf)) return; /* printed the first time already */
    char line[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    printf("%s %s: %s\n", kind, weft_wf_info_get(wf)->workflow_id, line);
}

json_t *example_input_json(weft_bytes input, char *msg, size_t cap) {
    if (input.len == 0) {
        json_t *v = json_object();
        if (v == NULL) snprintf(msg, cap, "out of memory");
        return v;
    }
    weft_err err;
    json_t *v = weft_json_parse(input, "input", &err);
    if (v == NULL) snprintf(msg, cap, "%s", err.message);
    return v;
}

int example_duration(const char *text, const char *key, uint64_t *ms, char *msg, size_t cap) {
    if (text == NULL) return 0;
    weft_err err;
    if (weft_duration_parse(text, key, ms, &err) == 0) return 0;
    snprintf(msg, cap, "%s", err.message);
    return -1;
}

const char *example_wf_strdup(weft_wf *wf, const char *s) {
    size_t len = strlen(s);
    char *copy = weft_wf_alloc(wf, len + 1);
    if (copy == NULL) return "";
    memcpy(copy, s, len + 1);
    return copy;
}
