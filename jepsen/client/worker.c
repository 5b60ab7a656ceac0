/* worker.c: `weft-jepsen worker`, the SDK worker of the harness's workflow types
 * (jepsen/FORMAT.md): jepsen-ledger and its activity jepsen-step, which append ledger.jsonl;
 * jepsen-timers, which appends wakes.jsonl; jepsen-signals. Several worker processes may share
 * the two files: each line is one write(2) to a file opened O_APPEND. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "jepsen.h"

/* Activities of jepsen-ledger: short, so a killed leader's attempt times out soon and the
 * retry policy brings the next attempt within seconds. */
#define WORKER_STEP_START_TO_CLOSE_MS 10000u
#define WORKER_STEP_RETRY_INITIAL_MS 500u
#define WORKER_STEP_RETRY_MAX_MS 2000u

/* What every workflow and activity of this worker shares. */
typedef struct worker_ctx {
    jepsen_log ledger;                    /* ledger.jsonl */
    jepsen_log wakes;                     /* wakes.jsonl */
    char identity[JEPSEN_NAME_BYTES_MAX]; /* this worker's name, in ledger lines */
} worker_ctx;

static weft_worker *worker_running; /* for the signal handler */

static void worker_on_signal(int sig) {
    (void)sig;
    if (worker_running != NULL) weft_worker_stop(worker_running); /* async-signal-safe */
}

/* Reads an unsigned integer key of the JSON input (absent: `dflt`). Returns -1 when the key
 * holds something else. */
static int input_uint(weft_bytes input, const char *key, uint64_t dflt, uint64_t *out) {
    *out = dflt;
    if (input.len == 0) return 0;
    weft_err err;
    json_t *v = weft_json_parse(input, "input", &err);
    if (v == NULL) return -1;
    json_t *k = json_object_get(v, key);
    int rc = 0;
    if (k != NULL && (!json_is_integer(k) || json_integer_value(k) < 0)) rc = -1;
    if (k != NULL && rc == 0) *out = (uint64_t)json_integer_value(k);
    json_decref(v);
    return rc;
}

/* ---- jepsen-ledger and jepsen-step ---- */

static int step_activity(weft_act *act, weft_bytes input, weft_bytes *out, void *arg) {
    worker_ctx *ctx = arg;
    const weft_act_info *ai = weft_act_info_get(act);
    uint64_t step = 0;
    if (input_uint(input, "step", 0, &step) != 0 || step == 0) {
        return weft_act_fail(act, "BadInput", "jepsen-step input must be {\"step\": i >= 1}", true);
    }
    json_t *line = json_object();
    json_object_set_new(line, "workflow_id", json_string(ai->workflow_id));
    json_object_set_new(line, "run_id", json_string(ai->run_id));
    json_object_set_new(line, "step", json_integer((json_int_t)step));
    json_object_set_new(line, "attempt", json_integer(ai->attempt));
    json_object_set_new(line, "worker", json_string(ctx->identity));
    json_object_set_new(line, "time_ms", json_integer((json_int_t)jepsen_now_ms()));
    int rc = jepsen_log_write(&ctx->ledger, line);
    json_decref(line);
    if (rc != 0) return weft_act_fail(act, "LedgerWrite", "cannot append ledger.jsonl", false);
    *out = weft_bytes_c("{}");
    return 0;
}

static int ledger_workflow(weft_wf *wf, weft_bytes input, weft_bytes *out, void *arg) {
    (void)arg;
    uint64_t steps = 0;
    if (input_uint(input, "steps", 1, &steps) != 0 || steps == 0 || steps > JEPSEN_STEPS_MAX) {
        return weft_wf_fail(wf, "BadInput", "jepsen-ledger input must be {\"steps\": 1..100}");
    }
    weft_activity_opts o = {
        .start_to_close_timeout_ms = WORKER_STEP_START_TO_CLOSE_MS,
        .retry = {.initial_interval_ms = WORKER_STEP_RETRY_INITIAL_MS,
                  .backoff_coefficient = 2.0,
                  .maximum_interval_ms = WORKER_STEP_RETRY_MAX_MS},
    };
    for (uint64_t i = 1; i <= steps; i++) {
        char in[64];
        snprintf(in, sizeof in, "{\"step\":%llu}", (unsigned long long)i);
        weft_bytes res;
        int rc = weft_wf_activity(wf, JEPSEN_ACT_STEP, weft_bytes_c(in), &o, &res);
        if (rc != 0) {
            const weft_wf_failure *f = weft_wf_last_failure(wf);
            return weft_wf_fail(wf, "StepFailed", f != NULL ? f->message : "step failed");
        }
    }
    char *res = weft_wf_alloc(wf, 64);
    if (res == NULL) return weft_wf_fail(wf, "OutOfMemory", "no arena memory for the result");
    snprintf(res, 64, "{\"steps\":%llu}", (unsigned long long)steps);
    *out = weft_bytes_c(res);
    return WEFT_WF_RESULT_COMPLETE;
}

/* ---- jepsen-timers ---- */

/* A side effect: the worker's real time, recorded in history so that a replay (another worker,
 * or after an eviction) sees the time the sleep was first issued, not the replay's time. */
static int real_now_effect(void *arg, weft_bytes *out) {
    char *buf = arg;
    snprintf(buf, 32, "%llu", (unsigned long long)jepsen_now_ms());
    *out = weft_bytes_c(buf);
    return 0;
}

/* The durations of the input's "timers_ms" into the arena. Returns the count, or -1. */
static int timers_input(weft_wf *wf, weft_bytes input, uint64_t **out) {
    weft_err err;
    json_t *v = input.len ? weft_json_parse(input, "input", &err) : NULL;
    json_t *a = v != NULL ? json_object_get(v, "timers_ms") : NULL;
    int n = -1;
    if (json_is_array(a) && json_array_size(a) <= JEPSEN_TIMERS_MAX) {
        n = (int)json_array_size(a);
        *out = weft_wf_alloc(wf, sizeof(uint64_t) * (size_t)(n + 1));
        for (int i = 0; i < n && *out != NULL; i++) {
            json_t *d = json_array_get(a, (size_t)i);
            if (!json_is_integer(d) || json_integer_value(d) <= 0) n = -1;
            if (n >= 0) (*out)[i] = (uint64_t)json_integer_value(d);
        }
        if (*out == NULL) n = -1;
    }
    json_decref(v); /* no jansson memory across a suspension point */
    return n;
}

static void timers_write_wake(worker_ctx *ctx, weft_wf *wf, int index, uint64_t duration_ms,
                              uint64_t prev_ms) {
    const weft_wf_info *info = weft_wf_info_get(wf);
    json_t *line = json_object();
    json_object_set_new(line, "workflow_id", json_string(info->workflow_id));
    json_object_set_new(line, "run_id", json_string(info->run_id));
    json_object_set_new(line, "index", json_integer(index));
    json_object_set_new(line, "duration_ms", json_integer((json_int_t)duration_ms));
    json_object_set_new(line, "wake_time_ms", json_integer((json_int_t)jepsen_now_ms()));
    json_object_set_new(line, "prev_time_ms", json_integer((json_int_t)prev_ms));
    jepsen_log_write(&ctx->wakes, line);
    json_decref(line);
}

static int timers_workflow(weft_wf *wf, weft_bytes input, weft_bytes *out, void *arg) {
    worker_ctx *ctx = arg;
    uint64_t *durations = NULL;
    int n = timers_input(wf, input, &durations);
    if (n < 0) {
        return weft_wf_fail(wf, "BadInput",
                            "jepsen-timers input must be {\"timers_ms\": [d > 0, ...]} (<= 100)");
    }
    for (int i = 0; i < n; i++) {
        char buf[32];
        weft_bytes prev;
        if (weft_wf_side_effect(wf, real_now_effect, buf, &prev) != 0) {
            return weft_wf_fail(wf, "SideEffect", "recording the real time failed");
        }
        char prev_text[32];
        weft_str_copy(prev_text, sizeof prev_text, (weft_str){(const char *)prev.ptr, prev.len});
        uint64_t prev_ms = strtoull(prev_text, NULL, 10);
        int rc = weft_wf_sleep(wf, durations[i]);
        if (rc != 0) return weft_wf_fail(wf, "SleepFailed", "a sleep did not complete");
        /* Only the first time this run gets past the sleep: a replay writes nothing. */
        if (!weft_wf_is_replaying(wf)) timers_write_wake(ctx, wf, i, durations[i], prev_ms);
    }
    char *res = weft_wf_alloc(wf, 64);
    if (res == NULL) return weft_wf_fail(wf, "OutOfMemory", "no arena memory for the result");
    snprintf(res, 64, "{\"woken\":%d}", n);
    *out = weft_bytes_c(res);
    return WEFT_WF_RESULT_COMPLETE;
}

/* ---- jepsen-signals ---- */

/* One received signal, kept in the run's arena. */
typedef struct signal_rec {
    const char *process; /* arena copy */
    int64_t seq;
} signal_rec;

/* Parses one signal's {"process": p, "seq": k} into the arena. Returns 0 or -1. */
static int signal_parse(weft_wf *wf, weft_bytes payload, signal_rec *rec) {
    weft_err err;
    json_t *v = weft_json_parse(payload, "signal input", &err);
    if (v == NULL) return -1;
    json_t *p = json_object_get(v, "process"), *k = json_object_get(v, "seq");
    int rc = json_is_string(p) && json_is_integer(k) ? 0 : -1;
    if (rc == 0) {
        size_t len = strlen(json_string_value(p));
        char *copy = weft_wf_alloc(wf, len + 1);
        if (copy == NULL) rc = -1;
        if (copy != NULL) memcpy(copy, json_string_value(p), len + 1);
        rec->process = copy;
        rec->seq = json_integer_value(k);
    }
    json_decref(v);
    return rc;
}

static int signals_result(weft_wf *wf, const signal_rec *recs, uint64_t n, weft_bytes *out) {
    json_t *list = json_array();
    for (uint64_t i = 0; i < n; i++) {
        json_array_append_new(list, json_pack("[sI]", recs[i].process, (json_int_t)recs[i].seq));
    }
    json_t *res = json_pack("{so}", "signals", list);
    *out = weft_wf_json(wf, res);
    json_decref(res);
    return WEFT_WF_RESULT_COMPLETE;
}

static int signals_workflow(weft_wf *wf, weft_bytes input, weft_bytes *out, void *arg) {
    (void)arg;
    uint64_t expect = 0;
    if (input_uint(input, "expect", 0, &expect) != 0 || expect == 0 ||
        expect > JEPSEN_SIGNALS_EXPECT_MAX) {
        return weft_wf_fail(wf, "BadInput", "jepsen-signals input must be {\"expect\": 1..10000}");
    }
    signal_rec *recs = weft_wf_alloc(wf, sizeof *recs * expect);
    if (recs == NULL) return weft_wf_fail(wf, "OutOfMemory", "no arena memory for the signals");
    for (uint64_t i = 0; i < expect; i++) {
        weft_bytes payload;
        int rc = weft_wf_signal_wait(wf, JEPSEN_SIGNAL_NAME, 0, &payload);
        if (rc != 0) return weft_wf_fail(wf, "SignalWait", "waiting for a signal failed");
        if (signal_parse(wf, payload, &recs[i]) != 0) {
            return weft_wf_fail(wf, "BadSignal", "a signal's input is not {process, seq}");
        }
    }
    return signals_result(wf, recs, expect, out);
}

/* ---- the subcommand ---- */

static int worker_register(weft_worker *w, worker_ctx *ctx, weft_err *err) {
    int rc = weft_worker_register_workflow(w, JEPSEN_WF_LEDGER, ledger_workflow, ctx, err);
    if (rc == 0) rc = weft_worker_register_workflow(w, JEPSEN_WF_TIMERS, timers_workflow, ctx, err);
    if (rc == 0)
        rc = weft_worker_register_workflow(w, JEPSEN_WF_SIGNALS, signals_workflow, ctx, err);
    if (rc == 0) rc = weft_worker_register_activity(w, JEPSEN_ACT_STEP, step_activity, ctx, err);
    return rc;
}

static int worker_serve(const char *address, worker_ctx *ctx) {
    weft_client *client = NULL;
    if (jepsen_client_open(address, ctx->identity, 5000, 3, &client) != 0) return 1;
    weft_err err;
    weft_err_clear(&err);
    weft_worker *w = NULL;
    weft_worker_opts o = {
        .task_queue = JEPSEN_TASK_QUEUE,
        .identity = ctx->identity,
        .workflow_concurrency = 8,
        .activity_concurrency = 8,
        .poll_timeout_ms = 2000, /* a stop drains within this */
    };
    int rc = weft_worker_new(client, &o, &w, &err);
    if (rc == 0) rc = worker_register(w, ctx, &err);
    if (rc == 0) {
        worker_running = w;
        signal(SIGTERM, worker_on_signal);
        signal(SIGINT, worker_on_signal);
        fprintf(stderr, "weft-jepsen worker %s: serving %s at %s\n", ctx->identity,
                JEPSEN_TASK_QUEUE, address);
        rc = weft_worker_run(w, &err);
        worker_running = NULL;
    }
    if (rc != 0) {
        fprintf(stderr, "weft-jepsen worker %s: %s %s\n", ctx->identity, weft_error_name(rc),
                err.message);
    } else {
        weft_worker_stats s;
        weft_worker_stats_get(w, &s);
        fprintf(stderr,
                "weft-jepsen worker %s: stopped after %llu workflow tasks, %llu activities\n",
                ctx->identity, (unsigned long long)s.workflow_tasks_completed,
                (unsigned long long)s.activities_completed);
    }
    weft_worker_free(w);
    weft_client_close(client);
    return rc == 0 ? 0 : 1;
}

int jepsen_cmd_worker(int argc, char **argv) {
    const char *address = NULL, *ledger = NULL, *wakes = NULL, *identity = "w1";
    const jepsen_flag flags[] = {
        {"address", &address, NULL, "every node's client address, comma-separated"},
        {"ledger", &ledger, NULL, "ledger.jsonl to append activity executions to"},
        {"wakes", &wakes, NULL, "wakes.jsonl to append timer wakes to"},
        {"identity", &identity, NULL, "this worker's name (default w1)"},
        {NULL, NULL, NULL, NULL},
    };
    if (jepsen_flags_parse("worker", flags, argc, argv, 2) != 0) return 2;
    if (address == NULL || ledger == NULL || wakes == NULL) {
        fprintf(stderr, "weft-jepsen worker: --address, --ledger and --wakes are required\n");
        return 2;
    }
    worker_ctx ctx = {.ledger.fd = -1, .wakes.fd = -1};
    snprintf(ctx.identity, sizeof ctx.identity, "%s", identity);
    int rc = 1;
    if (jepsen_log_open(&ctx.ledger, ledger) == 0 && jepsen_log_open(&ctx.wakes, wakes) == 0) {
        rc = worker_serve(address, &ctx);
    }
    jepsen_log_close(&ctx.ledger);
    jepsen_log_close(&ctx.wakes);
    return rc;
}
