/* workflow.c: the order saga (DESIGN section 11). Charge, reserve and ship; if a step fails,
 * undo the completed steps in reverse order and fail with the original failure. On success,
 * sleep durably, send a survey and complete. Canceling the workflow before it completes undoes
 * the order the same way and closes it as canceled. */
#include <stdio.h>
#include <string.h>

#include "order.h"

/* Retry delays of forward steps stop growing here. */
#define ORDER_RETRY_INTERVAL_MAX_MS 5000u
/* "attempts" in the input: at least one, and few enough that a failing step gives up soon. */
#define ORDER_ATTEMPTS_MAX 100u
/* Text that lists the compensations done ("release, refund"), in the failure or the log. */
#define ORDER_UNDO_TEXT_BYTES 512u

/* A forward step and the activity that undoes it. */
typedef struct order_step {
    const char *activity;     /* forward activity type */
    const char *compensation; /* activity type that undoes it */
    const char *result_key;   /* the service's id in its result */
} order_step;

static const order_step order_steps[] = {
    {"charge", "refund", "receipt"},
    {"reserve", "release", "reservation"},
    {"ship", "cancel_shipment", "tracking"},
};
#define ORDER_STEPS_COUNT (sizeof order_steps / sizeof order_steps[0])

/* The input, read once before the first blocking call: no jansson object is held across a
 * suspension point, where the SDK may drop the coroutine (its malloc'd memory would leak).
 * Strings live in the run's arena. */
typedef struct order_input {
    uint64_t sleep_ms;            /* "sleep": before the survey */
    bool fail[ORDER_STEPS_COUNT]; /* "fail_charge", "fail_reserve", "fail_ship" */
    uint64_t activity_ms;         /* "activity_ms": how long each activity takes */
    long long amount_cents;       /* "amount_cents" */
    const char *sku;              /* "sku" */
    weft_activity_opts step_opts; /* forward steps and the survey: few attempts */
    weft_activity_opts undo_opts; /* compensations: retried until they succeed */
} order_input;

/* Prints one line about the order, but not while replaying (it was printed the first time). */
#define order_log(wf, ...) example_wf_log((wf), "order", __VA_ARGS__)

/* Reads the keys of the input object (README.md lists them). Unknown keys are refused, so that
 * a typo such as "fail-ship" is not silently ignored. Returns 0, or -1 with a message. */
static int order_input_unpack(weft_wf *wf, json_t *v, order_input *in, char *msg, size_t cap) {
    const char *sleep = ORDER_SLEEP_DEFAULT, *timeout = ORDER_ACTIVITY_TIMEOUT_DEFAULT;
    const char *retry_initial = ORDER_RETRY_INITIAL_DEFAULT, *heartbeat = NULL;
    const char *sku = ORDER_SKU_DEFAULT;
    int fail[ORDER_STEPS_COUNT] = {0};
    json_int_t attempts = ORDER_ATTEMPTS_DEFAULT, activity_ms = 0;
    json_int_t amount = ORDER_AMOUNT_CENTS_DEFAULT;
    json_error_t jerr;
    if (json_unpack_ex(v, &jerr, 0, "{s?s s?s s?s s?s s?b s?b s?b s?I s?I s?I s?s !}", "sleep",
                       &sleep, "activity_timeout", &timeout, "retry_initial", &retry_initial,
                       "heartbeat_timeout", &heartbeat, "fail_charge", &fail[0], "fail_reserve",
                       &fail[1], "fail_ship", &fail[2], "attempts", &attempts, "activity_ms",
                       &activity_ms, "amount_cents", &amount, "sku", &sku) != 0) {
        snprintf(msg, cap, "bad input: %s", jerr.text);
        return -1;
    }
    if (attempts < 1 || attempts > (json_int_t)ORDER_ATTEMPTS_MAX || activity_ms < 0 ||
        activity_ms > (json_int_t)ORDER_ACTIVITY_MS_MAX || strlen(sku) >= ORDER_SKU_BYTES_MAX) {
        snprintf(msg, cap,
                 "bad input: attempts must be 1..%u, activity_ms 0..%u and sku "
                 "shorter than %u bytes",
                 ORDER_ATTEMPTS_MAX, ORDER_ACTIVITY_MS_MAX, ORDER_SKU_BYTES_MAX);
        return -1;
    }
    uint64_t timeout_ms = 0, retry_ms = 0, heartbeat_ms = 0;
    if (example_duration(sleep, "sleep", &in->sleep_ms, msg, cap) != 0 ||
        example_duration(timeout, "activity_timeout", &timeout_ms, msg, cap) != 0 ||
        example_duration(retry_initial, "retry_initial", &retry_ms, msg, cap) != 0 ||
        example_duration(heartbeat, "heartbeat_timeout", &heartbeat_ms, msg, cap) != 0) {
        return -1;
    }
    for (size_t i = 0; i < ORDER_STEPS_COUNT; i++)
        in->fail[i] = fail[i] != 0;
    in->activity_ms = (uint64_t)activity_ms;
    in->amount_cents = (long long)amount;
    in->sku = example_wf_strdup(wf, sku);
    in->step_opts = (weft_activity_opts){
        .start_to_close_timeout_ms = timeout_ms,
        .heartbeat_timeout_ms = heartbeat_ms,
        .retry = {.initial_interval_ms = retry_ms,
                  .backoff_coefficient = 2.0,
                  .maximum_interval_ms = ORDER_RETRY_INTERVAL_MAX_MS,
                  .maximum_attempts = (uint32_t)attempts},
    };
    /* An order must not stay half undone: compensations retry without a limit (0). A
     * compensation that keeps failing shows in `weft workflow describe` as a pending
     * activity with its last failure, for an operator to fix. */
    in->undo_opts = in->step_opts;
    in->undo_opts.retry.maximum_attempts = 0;
    return 0;
}

static int order_input_parse(weft_wf *wf, weft_bytes input, order_input *in, char *msg,
                             size_t cap) {
    json_t *v = example_input_json(input, msg, cap);
    if (v == NULL) return -1;
    int rc = order_input_unpack(wf, v, in, msg, cap);
    json_decref(v);
    return rc;
}

/* The input of every activity: what the fake services need, and whether to fail. */
static weft_bytes order_activity_input(weft_wf *wf, const order_input *in, bool fail) {
    json_t *v = json_pack("{s:s s:I s:s s:I s:b}", "order", weft_wf_info_get(wf)->workflow_id,
                          "amount_cents", (json_int_t)in->amount_cents, "sku", in->sku,
                          "activity_ms", (json_int_t)in->activity_ms, "fail", (int)fail);
    weft_bytes b = v != NULL ? weft_wf_json(wf, v) : (weft_bytes){0};
    json_decref(v);
    return b;
}

/* The string under `key` in an activity's JSON result, copied into the arena ("" if none). */
static const char *order_result_id(weft_wf *wf, weft_bytes result, const char *key) {
    weft_err err;
    json_t *v = weft_json_parse(result, "activity result", &err);
    const char *s = json_string_value(json_object_get(v, key));
    const char *copy = example_wf_strdup(wf, s != NULL ? s : "");
    json_decref(v);
    return copy;
}

/* Waits for f to resolve. A workflow cancel arriving meanwhile is noted (the caller asks
 * weft_wf_cancel_requested) but does not stop the wait: f's outcome is still needed. */
static int order_await_outcome(weft_wf *wf, weft_future *f) {
    int rc = weft_wf_await(wf, f);
    if (rc == WEFT_WF_CANCELED && !weft_future_ready(f)) rc = weft_wf_await(wf, f);
    return rc;
}

/* Runs one forward activity to its outcome. If the workflow's cancel interrupts the wait, the
 * activity may still be running: ask it to stop and wait for what it reports, because a step
 * that completed after all must be undone too. Returns 0 with *result, WEFT_WF_FAILED or
 * WEFT_WF_CANCELED with *failure. */
static int order_call(weft_wf *wf, const order_input *in, const char *type, bool fail,
                      weft_bytes *result, const weft_wf_failure **failure) {
    weft_future *f =
        weft_wf_activity_start(wf, type, order_activity_input(wf, in, fail), &in->step_opts);
    int rc = weft_wf_await(wf, f);
    if (rc == WEFT_WF_CANCELED && !weft_future_ready(f)) {
        weft_future_cancel(wf, f);
        rc = order_await_outcome(wf, f);
    }
    *failure = weft_future_failure(f);
    if (rc == 0) weft_future_result(f, result);
    return rc;
}

/* Undoes the first `done` steps, last first, and returns which it undid ("release, refund") in
 * the arena. A workflow cancel arriving now does not interrupt them. */
static const char *order_compensate(weft_wf *wf, const order_input *in, size_t done) {
    char text[ORDER_UNDO_TEXT_BYTES] = "nothing";
    size_t len = 0;
    for (size_t i = done; i-- > 0;) {
        const char *type = order_steps[i].compensation;
        weft_future *f =
            weft_wf_activity_start(wf, type, order_activity_input(wf, in, false), &in->undo_opts);
        int rc = order_await_outcome(wf, f);
        const weft_wf_failure *failure = weft_future_failure(f);
        int n =
            snprintf(text + len, sizeof text - len, "%s%s%s%s", len > 0 ? ", " : "", type,
                     rc == 0 ? "" : " FAILED: ", rc == 0 || failure == NULL ? "" : failure->type);
        if (n > 0) len += (size_t)n;
        if (len >= sizeof text) len = sizeof text - 1; /* truncated; keep appending nothing */
        order_log(wf, "%s %s", type, rc == 0 ? "done" : "failed");
    }
    return example_wf_strdup(wf, text);
}

/* A step failed for good: undo the steps before it, then fail with the step's own failure. */
static int order_fail(weft_wf *wf, const order_input *in, size_t done,
                      const weft_wf_failure *failure) {
    const char *type = failure != NULL ? failure->type : "StepFailed";
    const char *why = failure != NULL ? failure->message : "no failure recorded";
    uint32_t attempts = failure != NULL ? failure->attempt : 0;
    order_log(wf, "%s failed (%s: %s); compensating", order_steps[done].activity, type, why);
    const char *undone = order_compensate(wf, in, done);
    char msg[WEFT_FAILURE_MESSAGE_BYTES_MAX];
    snprintf(msg, sizeof msg, "%s failed after %u attempt(s): %s; compensated: %s",
             order_steps[done].activity, attempts, why, undone);
    return weft_wf_fail(wf, type, msg);
}

/* The workflow was canceled: undo what was done and close as canceled. */
static int order_cancel(weft_wf *wf, const order_input *in, size_t done) {
    order_log(wf, "cancel requested; compensating");
    const char *undone = order_compensate(wf, in, done);
    order_log(wf, "canceled; compensated: %s", undone);
    return weft_wf_cancel_done(wf);
}

/* After shipping: the survey is a courtesy, so its failure does not fail the order. */
static int order_finish(weft_wf *wf, const order_input *in, const char *const ids[],
                        weft_bytes *out) {
    weft_bytes result = {0};
    const weft_wf_failure *failure = NULL;
    int rc = order_call(wf, in, "send_survey", false, &result, &failure);
    if (weft_wf_cancel_requested(wf)) return order_cancel(wf, in, ORDER_STEPS_COUNT);
    const char *survey = "sent";
    if (rc != 0) survey = failure != NULL ? failure->type : "failed";
    json_t *v = json_pack("{s:s s:s s:s s:s s:s s:s}", "order", weft_wf_info_get(wf)->workflow_id,
                          "status", "completed", "receipt", ids[0], "reservation", ids[1],
                          "tracking", ids[2], "survey", survey);
    *out = v != NULL ? weft_wf_json(wf, v) : (weft_bytes){0};
    json_decref(v);
    if (out->len == 0) return weft_wf_fail(wf, "OutOfMemory", "cannot build the result");
    order_log(wf, "completed (survey %s)", survey);
    return WEFT_WF_RESULT_COMPLETE;
}

int order_workflow(weft_wf *wf, weft_bytes input, weft_bytes *out, void *arg) {
    (void)arg;
    order_input in = {0};
    char msg[WEFT_FAILURE_MESSAGE_BYTES_MAX];
    if (order_input_parse(wf, input, &in, msg, sizeof msg) != 0) {
        return weft_wf_fail(wf, "InvalidInput", msg);
    }
    const char *ids[ORDER_STEPS_COUNT] = {0};
    const weft_wf_failure *failure = NULL;
    size_t done = 0;
    int rc = 0;
    while (done < ORDER_STEPS_COUNT && rc == 0 && !weft_wf_cancel_requested(wf)) {
        weft_bytes result = {0};
        rc = order_call(wf, &in, order_steps[done].activity, in.fail[done], &result, &failure);
        if (rc != 0) break;
        ids[done] = order_result_id(wf, result, order_steps[done].result_key);
        order_log(wf, "%s done (%s)", order_steps[done].activity, ids[done]);
        done++;
    }
    if (weft_wf_cancel_requested(wf)) return order_cancel(wf, &in, done);
    if (rc != 0) return order_fail(wf, &in, done, failure);
    /* A durable timer: the worker may stop, crash or be replaced while it runs. */
    order_log(wf, "shipped; sleeping %llu ms before the survey", (unsigned long long)in.sleep_ms);
    if (weft_wf_sleep(wf, in.sleep_ms) != 0 || weft_wf_cancel_requested(wf)) {
        return order_cancel(wf, &in, done);
    }
    return order_finish(wf, &in, ids, out);
}
