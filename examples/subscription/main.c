/* main.c: subscription-worker, the subscription example: a billing loop that lives as long as
 * the subscription. Each period it bills (an activity) and sleeps the period (a durable timer).
 * After `cycles_per_run` cycles it continues as new, carrying its state into the input of a
 * fresh run, so that no history grows without bound. It completes after `cycles` cycles in
 * all, with the total billed. */
#include <stdio.h>

#include "example.h" /* examples/common: the flags, the worker run, input helpers */

#define SUBSCRIPTION_WORKFLOW_TYPE "subscription"
/* Input defaults (README.md lists the keys). */
#define SUBSCRIPTION_PERIOD_DEFAULT "1s"
#define SUBSCRIPTION_CYCLES_DEFAULT 5
#define SUBSCRIPTION_CYCLES_PER_RUN_DEFAULT 2
#define SUBSCRIPTION_AMOUNT_CENTS_DEFAULT 999
/* Bounds of the counts in the input. A real subscription would loop forever; the example
 * stops so that a test can wait for its result. */
#define SUBSCRIPTION_CYCLES_MAX 100000
/* Billing: 10 s per attempt, 5 attempts starting 200 ms apart. */
#define SUBSCRIPTION_BILL_TIMEOUT_MS (10u * 1000u)
#define SUBSCRIPTION_BILL_ATTEMPTS 5u

/* ---- The workflow ---- */

/* The input of every run: the terms, and the state carried over from the previous runs. */
typedef struct subscription_state {
    const char *period;        /* "period": a duration, kept as text to carry it on (arena) */
    uint64_t period_ms;        /* the period parsed */
    json_int_t cycles;         /* "cycles": cycles in all */
    json_int_t cycles_per_run; /* "cycles_per_run": cycles before continuing as new */
    json_int_t amount_cents;   /* "amount_cents": billed per cycle */
    json_int_t done;           /* "done": cycles billed by earlier runs (carried) */
    json_int_t total_cents;    /* "total_cents": billed by earlier runs (carried) */
    json_int_t runs;           /* "runs": this run's number in the chain, from 1 (carried) */
} subscription_state;

/* Prints one line about the subscription, but not while replaying (it was printed the first
 * time). */
#define subscription_log(wf, ...) example_wf_log((wf), "subscription", __VA_ARGS__)

static int subscription_check(subscription_state *s, char *msg, size_t cap) {
    if (s->cycles < 1 || s->cycles > SUBSCRIPTION_CYCLES_MAX || s->cycles_per_run < 1 ||
        s->amount_cents < 0 || s->done < 0 || s->done > s->cycles || s->runs < 1) {
        snprintf(msg, cap,
                 "bad input: cycles must be 1..%d, cycles_per_run >= 1, "
                 "amount_cents >= 0",
                 SUBSCRIPTION_CYCLES_MAX);
        return -1;
    }
    return 0;
}

/* Reads the input before the first blocking call (no jansson memory across a suspension).
 * Returns 0, or -1 with a message. */
static int subscription_parse(weft_wf *wf, weft_bytes input, subscription_state *s, char *msg,
                              size_t cap) {
    json_t *v = example_input_json(input, msg, cap);
    if (v == NULL) return -1;
    const char *period = SUBSCRIPTION_PERIOD_DEFAULT;
    *s = (subscription_state){.cycles = SUBSCRIPTION_CYCLES_DEFAULT,
                              .cycles_per_run = SUBSCRIPTION_CYCLES_PER_RUN_DEFAULT,
                              .amount_cents = SUBSCRIPTION_AMOUNT_CENTS_DEFAULT,
                              .runs = 1};
    json_error_t jerr;
    int rc = json_unpack_ex(v, &jerr, 0, "{s?s s?I s?I s?I s?I s?I s?I !}", "period", &period,
                            "cycles", &s->cycles, "cycles_per_run", &s->cycles_per_run,
                            "amount_cents", &s->amount_cents, "done", &s->done, "total_cents",
                            &s->total_cents, "runs", &s->runs);
    if (rc != 0) snprintf(msg, cap, "bad input: %s", jerr.text);
    if (rc == 0) rc = subscription_check(s, msg, cap);
    if (rc == 0) rc = example_duration(period, "period", &s->period_ms, msg, cap);
    if (rc == 0) {
        const char *copy = example_wf_strdup(wf, period); /* "" when out of memory */
        s->period = copy[0] != '\0' ? copy : SUBSCRIPTION_PERIOD_DEFAULT;
    }
    json_decref(v);
    return rc;
}

/* The state as JSON: the input of the next run, or (with final) the result. */
static weft_bytes subscription_json(weft_wf *wf, const subscription_state *s) {
    json_t *v = json_pack("{s:s s:I s:I s:I s:I s:I s:I}", "period", s->period, "cycles", s->cycles,
                          "cycles_per_run", s->cycles_per_run, "amount_cents", s->amount_cents,
                          "done", s->done, "total_cents", s->total_cents, "runs", s->runs);
    weft_bytes b = v != NULL ? weft_wf_json(wf, v) : (weft_bytes){0};
    json_decref(v);
    return b;
}

/* Bills cycle s->done + 1. The activity id names the cycle, so the history reads plainly. */
static int subscription_bill(weft_wf *wf, const subscription_state *s) {
    char id[32], input[128];
    snprintf(id, sizeof id, "bill-%lld", (long long)s->done + 1);
    snprintf(input, sizeof input, "{\"cycle\":%lld,\"amount_cents\":%lld}", (long long)s->done + 1,
             (long long)s->amount_cents);
    weft_activity_opts opts = {
        .activity_id = id,
        .start_to_close_timeout_ms = SUBSCRIPTION_BILL_TIMEOUT_MS,
        .retry = {.initial_interval_ms = 200,
                  .backoff_coefficient = 2.0,
                  .maximum_attempts = SUBSCRIPTION_BILL_ATTEMPTS},
    };
    weft_bytes receipt;
    return weft_wf_activity(wf, "bill", weft_bytes_c(input), &opts, &receipt);
}

static int subscription_workflow(weft_wf *wf, weft_bytes input, weft_bytes *out, void *arg) {
    (void)arg;
    subscription_state s;
    char msg[WEFT_FAILURE_MESSAGE_BYTES_MAX];
    if (subscription_parse(wf, input, &s, msg, sizeof msg) != 0) {
        return weft_wf_fail(wf, "InvalidInput", msg);
    }
    subscription_log(wf, "run %lld starts at cycle %lld of %lld", (long long)s.runs,
                     (long long)s.done + 1, (long long)s.cycles);
    for (json_int_t in_run = 0; s.done < s.cycles; in_run++) {
        if (in_run == s.cycles_per_run) {
            /* Close this run and start a fresh one with the state as its input: the history
             * of a subscription that runs for years stays a few events long. */
            s.runs++;
            subscription_log(wf, "continuing as new after %lld cycles", (long long)s.done);
            return weft_wf_continue_as_new(wf, subscription_json(wf, &s));
        }
        int rc = subscription_bill(wf, &s);
        /* Canceling the workflow ends the subscription: nothing to undo. */
        if (rc == WEFT_WF_CANCELED) return weft_wf_cancel_done(wf);
        if (rc != 0) {
            const weft_wf_failure *f = weft_wf_last_failure(wf);
            snprintf(msg, sizeof msg, "billing cycle %lld failed: %s", (long long)s.done + 1,
                     f != NULL ? f->message : "unknown failure");
            return weft_wf_fail(wf, f != NULL ? f->type : "BillingFailed", msg);
        }
        s.done++;
        s.total_cents += s.amount_cents;
        subscription_log(wf, "cycle %lld billed (%lld cents in all)", (long long)s.done,
                         (long long)s.total_cents);
        if (s.done < s.cycles && weft_wf_sleep(wf, s.period_ms) != 0) {
            return weft_wf_cancel_done(wf);
        }
    }
    *out = subscription_json(wf, &s);
    subscription_log(wf, "completed: %lld cycles, %lld cents, %lld runs", (long long)s.done,
                     (long long)s.total_cents, (long long)s.runs);
    return WEFT_WF_RESULT_COMPLETE;
}

/* The bill activity: stands for a charge at a payment provider, with an idempotency key. */
static int subscription_bill_activity(weft_act *act, weft_bytes input, weft_bytes *out, void *arg) {
    (void)arg;
    const weft_act_info *info = weft_act_info_get(act);
    char *receipt = weft_act_alloc(act, 2 * WEFT_WORKER_NAME_BYTES_MAX + 32);
    if (receipt == NULL) return weft_act_fail(act, "OutOfMemory", "no memory", false);
    /* "<workflow-id>-<activity-id>": the activity id names the cycle, and the workflow id
     * stays the same across continue-as-new, so the key is unique per billed cycle. */
    int n = sprintf(receipt, "\"receipt-%s-%s\"", info->workflow_id, info->activity_id);
    printf("[billing] %.*s (idempotency key %s-%s, attempt %u)\n", (int)input.len,
           (const char *)input.ptr, info->workflow_id, info->activity_id, info->attempt);
    *out = (weft_bytes){.ptr = (const uint8_t *)receipt, .len = (uint32_t)n};
    return 0;
}

/* ---- The worker binary (examples/common parses the flags and runs it) ---- */

static const char subscription_usage[] =
    "usage: subscription-worker [flags]\n"
    "Runs the workflow type 'subscription': bill, sleep a period, repeat; continue as new\n"
    "every cycles_per_run cycles. SIGTERM or Ctrl-C drains and stops it.\n"
    "\n"
    "  --address HOST:PORT[,...]  weftd to connect to (default $WEFT_ADDRESS, else 127.0.0.1:7400)\n"
    "  --namespace NS             namespace (default: the default namespace)\n"
    "  --task-queue Q             task queue to serve (default subscriptions)\n"
    "  --identity NAME            worker identity in histories (default host:pid)\n"
    "  --no-sticky-cache          replay every workflow task from the full history\n"
    "  --help                     print this and exit\n"
    "\n"
    "Try:  weft workflow start --type subscription --task-queue subscriptions --id sub-1 \\\n"
    "        --input '{\"period\":\"1s\",\"cycles\":5,\"cycles_per_run\":2}'\n"
    "      weft workflow result --id sub-1 --wait\n";

/* What the worker runs: the workflow type and its activity. */
static int subscription_register(weft_worker *w, void *arg, weft_err *err) {
    (void)arg;
    int rc = weft_worker_register_workflow(w, SUBSCRIPTION_WORKFLOW_TYPE, subscription_workflow,
                                           NULL, err);
    if (rc == 0) {
        rc = weft_worker_register_activity(w, "bill", subscription_bill_activity, NULL, err);
    }
    return rc;
}

int main(int argc, char **argv) {
    static const example_worker worker = {
        .name = "subscription-worker",
        .usage = subscription_usage,
        .task_queue = "subscriptions",
        .register_types = subscription_register,
    };
    return example_main(&worker, argc, argv);
}
