/* weft-bench.c: the entry point: flags (one table, which --help prints), the scenario table,
 * an optional spawned weftd, and the report. Exit 0 when the load ran (whatever the figures
 * and error counts: a benchmark reports, it does not judge), 1 when it could not run, 2 for
 * bad flags. */
#include <errno.h>
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "bench.h"

atomic_bool bench_stop;

uint64_t bench_now_us(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

void bench_sleep_ms(uint32_t ms) {
    struct timespec ts = {.tv_sec = ms / 1000u, .tv_nsec = (long)(ms % 1000u) * 1000000L};
    nanosleep(&ts, NULL); /* a signal cuts it short, so that a stop is noticed at once */
}

int bench_client_open(const bench_config *cfg, const char *who, weft_client **out) {
    WEFT_ASSERT(cfg != NULL && who != NULL && out != NULL);
    weft_client_opts o = {.client_name = who};
    weft_err err;
    weft_err_clear(&err);
    int rc = weft_client_open(cfg->address, &o, out, &err);
    if (rc != 0) {
        fprintf(stderr, "weft-bench: %s: cannot connect to %s: %s: %s\n", who, cfg->address,
                weft_error_name(rc), err.message);
    }
    WEFT_ASSERT(rc != 0 || *out != NULL);
    return rc;
}

/* ---- Scenarios: one row each ---- */

typedef struct bench_scenario {
    const char *name;                                     /* --scenario value */
    int (*run)(const bench_config *cfg, bench_report *r); /* runs the load */
    bool needs_workers;                                   /* refuses --workers 0 */
    const char *doc;                                      /* --help line */
} bench_scenario;

static const bench_scenario scenarios[] = {
    {"start", bench_scenario_start, false,
     "--threads clients issue StartWorkflow for --duration-s: starts/s and latency"},
    {"workflow", bench_scenario_workflow, true,
     "--workflows of --activities sequential activities, --threads in flight: workflows/s, "
     "activities/s, latencies"},
    {"signal", bench_scenario_signal, false,
     "--threads clients signal --workflows open runs for --duration-s: signals/s and latency"},
};

/* ---- Flags: one row each; parsing and --help come from the rows ---- */

typedef enum flag_kind {
    FLAG_U32,       /* an integer in [min, max] at offset */
    FLAG_CHARS,     /* a string copied into the char array at offset (size max) */
    FLAG_PTR,       /* a string kept as a const char * at offset (borrowed from argv) */
    FLAG_BOOL,      /* no value: sets the bool at offset */
    FLAG_WEFTD_ARG, /* appended to weftd_args */
    FLAG_HELP,      /* prints the help */
} flag_kind;

typedef struct bench_flag {
    const char *name;  /* "--threads" */
    const char *value; /* what the value looks like, NULL for none */
    flag_kind kind;    /* how it is parsed */
    size_t offset;     /* field of bench_config */
    uint32_t min, max; /* FLAG_U32 range; FLAG_CHARS capacity in max */
    const char *doc;   /* --help line */
} bench_flag;

#define OFF(f) offsetof(bench_config, f)
static const bench_flag flags[] = {
    {"--scenario", "NAME", FLAG_PTR, OFF(scenario), 0, 0, "start | workflow | signal [start]"},
    {"--address", "HOST:PORT", FLAG_CHARS, OFF(address), 0, BENCH_ADDRESS_BYTES,
     "weftd to load [127.0.0.1:7400]"},
    {"--spawn", "WEFTD", FLAG_PTR, OFF(spawn_path), 0, 0,
     "start this weftd binary on a temp dir and free ports; SIGTERM it at the end"},
    {"--shards", "N", FLAG_U32, OFF(shards), 1, BENCH_SHARDS_MAX, "--spawn: weftd --shards [8]"},
    {"--weftd-arg", "FLAG", FLAG_WEFTD_ARG, 0, 0, 0,
     "--spawn: pass one more flag to weftd (repeat; e.g. --weftd-arg=--log-level=warn)"},
    {"--keep", NULL, FLAG_BOOL, OFF(keep_data), 0, 0, "--spawn: keep weftd's data dir and log"},
    {"--duration-s", "S", FLAG_U32, OFF(duration_s), 1, BENCH_DURATION_S_MAX,
     "measured phase; the workflow scenario stops starting after it [10]"},
    {"--threads", "N", FLAG_U32, OFF(threads), 1, BENCH_THREADS_MAX,
     "client threads, one connection each; workflow: workflows in flight [8]"},
    {"--workflows", "N", FLAG_U32, OFF(workflows), 1, BENCH_WORKFLOWS_MAX,
     "workflow: how many to run; signal: open runs to signal [1000]"},
    {"--activities", "K", FLAG_U32, OFF(activities), 0, BENCH_ACTIVITIES_MAX,
     "workflow: sequential activities per workflow [1]"},
    {"--timer-ms", "MS", FLAG_U32, OFF(timer_ms), 0, BENCH_TIMER_MS_MAX,
     "workflow: a timer after the activities, 0 = none [0]"},
    {"--workers", "N", FLAG_U32, OFF(workers), 0, BENCH_WORKERS_MAX,
     "pollers per task kind (N workflow-task + N activity-task threads) [4; signal: 0]"},
    {"--task-queue", "NAME", FLAG_CHARS, OFF(task_queue), 0, BENCH_ID_BYTES,
     "task queue of the bench workflows [bench-<run tag>, unique per run]"},
    {"--json", NULL, FLAG_BOOL, OFF(json), 0, 0, "also print one JSON line of the results"},
    {"--help", NULL, FLAG_HELP, 0, 0, 0, "this help"},
};
#undef OFF

static void bench_help(void) {
    printf("usage: weft-bench [flags]   (figures only: a benchmark never passes or fails)\n\n"
           "scenarios:\n");
    for (size_t i = 0; i < WEFT_ARRAY_LEN(scenarios); i++)
        printf("  %-10s %s\n", scenarios[i].name, scenarios[i].doc);
    printf("\nflags:\n");
    for (size_t i = 0; i < WEFT_ARRAY_LEN(flags); i++) {
        char left[64];
        snprintf(left, sizeof left, "%s%s%s", flags[i].name, flags[i].value ? " " : "",
                 flags[i].value ? flags[i].value : "");
        printf("  %-24s %s\n", left, flags[i].doc);
    }
}

/* Parses an unsigned decimal in [min, max]. Returns 0 or -1. */
static int flag_u32(const char *s, uint32_t min, uint32_t max, uint32_t *out) {
    char *end = NULL;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (s[0] < '0' || s[0] > '9' || *end != '\0' || errno != 0 || v < min || v > max) return -1;
    *out = (uint32_t)v;
    return 0;
}

/* Applies one flag's value to cfg. Returns 0, 1 for --help, or 2 after printing why. */
static int flag_apply(const bench_flag *f, const char *value, bench_config *cfg) {
    char *field = (char *)cfg + f->offset;
    switch (f->kind) {
    case FLAG_U32:
        if (flag_u32(value, f->min, f->max, (uint32_t *)(void *)field) == 0) return 0;
        fprintf(stderr, "weft-bench: %s must be an integer from %u to %u (got \"%s\")\n", f->name,
                f->min, f->max, value);
        return 2;
    case FLAG_CHARS:
        if (strlen(value) > 0 && strlen(value) < f->max) {
            memcpy(field, value, strlen(value) + 1);
            return 0;
        }
        fprintf(stderr, "weft-bench: %s must be 1 to %u bytes\n", f->name, f->max - 1u);
        return 2;
    case FLAG_PTR:
        *(const char **)(void *)field = value;
        return 0;
    case FLAG_BOOL:
        *(bool *)(void *)field = true;
        return 0;
    case FLAG_WEFTD_ARG:
        if (cfg->weftd_args_count < BENCH_WEFTD_ARGS_MAX) {
            cfg->weftd_args[cfg->weftd_args_count++] = value;
            return 0;
        }
        fprintf(stderr, "weft-bench: at most %u --weftd-arg\n", BENCH_WEFTD_ARGS_MAX);
        return 2;
    case FLAG_HELP:
        bench_help();
        return 1;
    }
    WEFT_ASSERT(!"unknown flag kind");
    return 2;
}

/* Finds the row of argv[*i] ("--name value" or "--name=value") and applies it. */
static int flag_parse_one(int argc, char **argv, int *i, bench_config *cfg) {
    const char *arg = argv[*i];
    const char *eq = strchr(arg, '=');
    size_t name_len = eq != NULL ? (size_t)(eq - arg) : strlen(arg);
    for (size_t k = 0; k < WEFT_ARRAY_LEN(flags); k++) {
        const bench_flag *f = &flags[k];
        if (strlen(f->name) != name_len || strncmp(f->name, arg, name_len) != 0) continue;
        if (f->value == NULL && eq != NULL) {
            fprintf(stderr, "weft-bench: %s takes no value\n", f->name);
            return 2;
        }
        if (f->value == NULL) return flag_apply(f, NULL, cfg);
        if (eq != NULL) return flag_apply(f, eq + 1, cfg);
        if (*i + 1 >= argc) {
            fprintf(stderr, "weft-bench: %s needs a value (%s)\n", f->name, f->value);
            return 2;
        }
        return flag_apply(f, argv[++*i], cfg);
    }
    fprintf(stderr, "weft-bench: unknown flag \"%s\"; run weft-bench --help\n", arg);
    return 2;
}

static void bench_defaults(bench_config *cfg) {
    memset(cfg, 0, sizeof *cfg);
    cfg->scenario = "start";
    snprintf(cfg->address, sizeof cfg->address, "127.0.0.1:7400");
    cfg->duration_s = 10;
    cfg->threads = 8;
    cfg->workflows = 1000;
    cfg->activities = 1;
    cfg->workers = UINT32_MAX; /* "not given": the scenario's default applies */
    cfg->shards = 8;
    /* Unique per run, so that ids and the task queue never meet those of an earlier run on the
     * same server (a leftover task would be polled by this run's workers). */
    snprintf(cfg->run_tag, sizeof cfg->run_tag, "%llx-%x", (unsigned long long)weft_wall_ms(),
             (unsigned)getpid());
}

/* Returns the scenario row, or NULL after printing why the flags do not fit together. */
static const bench_scenario *bench_check(bench_config *cfg) {
    const bench_scenario *s = NULL;
    for (size_t i = 0; i < WEFT_ARRAY_LEN(scenarios); i++) {
        if (strcmp(scenarios[i].name, cfg->scenario) == 0) s = &scenarios[i];
    }
    if (s == NULL) {
        fprintf(stderr, "weft-bench: unknown scenario \"%s\"; run weft-bench --help\n",
                cfg->scenario);
        return NULL;
    }
    if (cfg->workers == UINT32_MAX) cfg->workers = s->needs_workers ? 4u : 0u;
    if (s->needs_workers && cfg->workers == 0) {
        fprintf(stderr, "weft-bench: scenario %s needs --workers of at least 1\n", s->name);
        return NULL;
    }
    if (cfg->task_queue[0] == '\0')
        snprintf(cfg->task_queue, sizeof cfg->task_queue, "bench-%s", cfg->run_tag);
    return s;
}

static int bench_parse(int argc, char **argv, bench_config *cfg) {
    bench_defaults(cfg);
    for (int i = 1; i < argc; i++) {
        int rc = flag_parse_one(argc, argv, &i, cfg);
        if (rc != 0) return rc;
    }
    return 0;
}

static void bench_on_signal(int sig) {
    (void)sig;
    atomic_store(&bench_stop, true);
}

static void bench_signals(void) {
    struct sigaction sa = {0};
    sa.sa_handler = bench_on_signal; /* no SA_RESTART: a sleep ends at once */
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);
}

int main(int argc, char **argv) {
    static bench_config cfg;
    static bench_report report;
    static bench_weftd weftd;
    int rc = bench_parse(argc, argv, &cfg);
    if (rc == 1) return 0;
    if (rc != 0) return 2;
    const bench_scenario *s = bench_check(&cfg);
    if (s == NULL) return 2;
    atomic_init(&bench_stop, false);
    bench_signals();
    if (cfg.spawn_path != NULL && bench_weftd_start(&weftd, &cfg) != 0) return 1;
    /* One connection first: an unreachable weftd is an error, not a report of zeros. */
    weft_client *probe = NULL;
    if (bench_client_open(&cfg, "bench-probe", &probe) != 0) {
        if (cfg.spawn_path != NULL) bench_weftd_stop(&weftd, true, NULL, 0);
        return 1;
    }
    weft_client_close(probe);
    report.cfg = &cfg;
    fprintf(stderr, "weft-bench: scenario %s against %s, run tag %s\n", s->name, cfg.address,
            cfg.run_tag);
    bench_cpu_sample cpu0 = bench_cpu_take(weftd.pid);
    rc = s->run(&cfg, &report);
    bench_cpu_sample cpu1 = bench_cpu_take(weftd.pid);
    bench_cpu_report(&cpu0, &cpu1, cfg.spawn_path != NULL, &report);
    if (cfg.spawn_path != NULL) {
        bench_weftd_report_usage(&weftd, &report);
        bench_weftd_stop(&weftd, cfg.keep_data, report.weftd_note, sizeof report.weftd_note);
    }
    bench_report_print(&report);
    return rc == 0 ? 0 : 1;
}
