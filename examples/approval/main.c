/* main.c: approval-worker, the approval example: a workflow that waits for a human decision.
 * It waits for an 'approve' or a 'reject' signal, whichever comes first, for at most the
 * input's timeout (a durable timer), then notifies (an activity) and completes with the
 * decision: approved, rejected or timed_out. */
#include <stdio.h>

#include "example.h" /* examples/common: the flags, the worker run, input helpers */

#define APPROVAL_WORKFLOW_TYPE "approval"
/* Input keys: "timeout" (a duration) and "request" (what is to be approved). */
#define APPROVAL_TIMEOUT_DEFAULT "1h"
/* Attempts of the notify activity; 10 s each. */
#define APPROVAL_NOTIFY_ATTEMPTS 3u
#define APPROVAL_NOTIFY_TIMEOUT_MS (10u * 1000u)

/* ---- The workflow ---- */

/* Prints one line about the request, but not while replaying (it was printed the first time). */
#define approval_log(wf, ...) example_wf_log((wf), "approval", __VA_ARGS__)

/* Reads {"timeout": "1h", "request": "..."} before the first blocking call (no jansson memory
 * is held across a suspension point). *request is copied into the arena. Returns 0, or -1 with
 * a message. */
static int approval_input_parse(weft_wf *wf, weft_bytes input, uint64_t *timeout_ms,
                                const char **request, char *msg, size_t cap) {
    json_t *v = example_input_json(input, msg, cap);
    if (v == NULL) return -1;
    const char *timeout = APPROVAL_TIMEOUT_DEFAULT, *req = "";
    json_error_t jerr;
    int rc = json_unpack_ex(v, &jerr, 0, "{s?s s?s !}", "timeout", &timeout, "request", &req);
    if (rc != 0) snprintf(msg, cap, "bad input: %s", jerr.text);
    if (rc == 0) rc = example_duration(timeout, "timeout", timeout_ms, msg, cap);
    if (rc == 0) *request = example_wf_strdup(wf, req);
    json_decref(v);
    return rc;
}

/* The signal's payload as JSON when it is JSON, else as a string; null when there was none. */
static json_t *approval_payload_json(weft_bytes payload) {
    if (payload.len == 0) return json_null();
    weft_err err;
    json_t *v = weft_json_parse(payload, "signal", &err);
    return v != NULL ? v : json_stringn((const char *)payload.ptr, payload.len);
}

/* Tells whoever asked (an activity: it talks to the outside world), then completes. */
static int approval_finish(weft_wf *wf, const char *request, const char *decision,
                           weft_bytes payload, weft_bytes *out) {
    weft_activity_opts opts = {
        .start_to_close_timeout_ms = APPROVAL_NOTIFY_TIMEOUT_MS,
        .retry = {.initial_interval_ms = 200,
                  .backoff_coefficient = 2.0,
                  .maximum_attempts = APPROVAL_NOTIFY_ATTEMPTS},
    };
    json_t *v = json_pack("{s:s s:s s:o}", "request", request, "decision", decision, "signal",
                          approval_payload_json(payload));
    weft_bytes result = v != NULL ? weft_wf_json(wf, v) : (weft_bytes){0};
    json_decref(v);
    if (result.len == 0) return weft_wf_fail(wf, "OutOfMemory", "cannot build the result");
    weft_bytes ignored;
    if (weft_wf_activity(wf, "notify", result, &opts, &ignored) == WEFT_WF_CANCELED) {
        return weft_wf_cancel_done(wf);
    }
    /* A failed notification does not change the decision; the result still holds it. */
    *out = result;
    approval_log(wf, "%s", decision);
    return WEFT_WF_RESULT_COMPLETE;
}

static int approval_workflow(weft_wf *wf, weft_bytes input, weft_bytes *out, void *arg) {
    (void)arg;
    uint64_t timeout_ms = 0;
    const char *request = "";
    char msg[WEFT_FAILURE_MESSAGE_BYTES_MAX];
    if (approval_input_parse(wf, input, &timeout_ms, &request, msg, sizeof msg) != 0) {
        return weft_wf_fail(wf, "InvalidInput", msg);
    }
    approval_log(wf, "waiting up to %llu ms for 'approve' or 'reject'",
                 (unsigned long long)timeout_ms);
    /* Three futures, one wait: whichever resolves first decides. Signals sent before this
     * point are buffered, so none is missed. The timer is durable: it fires on time also when
     * no worker runs at that moment, and the next worker replays to this very wait. */
    weft_future *fs[3] = {
        weft_wf_signal_future(wf, "approve"),
        weft_wf_signal_future(wf, "reject"),
        weft_wf_timer_start(wf, timeout_ms),
    };
    size_t index = 0;
    int rc = weft_wf_await_any(wf, fs, 3, &index);
    if (rc == WEFT_WF_CANCELED && index == 3) { /* the workflow was canceled */
        weft_future_cancel(wf, fs[2]);
        approval_log(wf, "canceled");
        return weft_wf_cancel_done(wf);
    }
    static const char *const decisions[3] = {"approved", "rejected", "timed_out"};
    weft_bytes payload = {0};
    if (index < 2) {
        weft_future_result(fs[index], &payload);
        weft_future_cancel(wf, fs[2]); /* the timer is no longer needed */
    }
    return approval_finish(wf, request, decisions[index], payload, out);
}

/* The notify activity: stands for a mail or a chat message. */
static int approval_notify(weft_act *act, weft_bytes input, weft_bytes *out, void *arg) {
    (void)arg;
    const weft_act_info *info = weft_act_info_get(act);
    printf("[notify] approval %s (attempt %u): %.*s\n", info->workflow_id, info->attempt,
           (int)input.len, (const char *)input.ptr);
    *out = weft_bytes_c("\"notified\"");
    return 0;
}

/* ---- The worker binary (examples/common parses the flags and runs it) ---- */

static const char approval_usage[] =
    "usage: approval-worker [flags]\n"
    "Runs the workflow type 'approval': waits for an 'approve' or 'reject' signal, at most the\n"
    "input's timeout. SIGTERM or Ctrl-C drains and stops it.\n"
    "\n"
    "  --address HOST:PORT[,...]  weftd to connect to (default $WEFT_ADDRESS, else 127.0.0.1:7400)\n"
    "  --namespace NS             namespace (default: the default namespace)\n"
    "  --task-queue Q             task queue to serve (default approvals)\n"
    "  --identity NAME            worker identity in histories (default host:pid)\n"
    "  --no-sticky-cache          replay every workflow task from the full history\n"
    "  --help                     print this and exit\n"
    "\n"
    "Try:  weft workflow start --type approval --task-queue approvals --id po-1 \\\n"
    "        --input '{\"request\":\"new laptop\",\"timeout\":\"10m\"}'\n"
    "      weft workflow signal --id po-1 --name approve --input '{\"by\":\"alice\"}'\n"
    "      weft workflow result --id po-1 --wait\n";

/* What the worker runs: the workflow type and its activity. */
static int approval_register(weft_worker *w, void *arg, weft_err *err) {
    (void)arg;
    int rc = weft_worker_register_workflow(w, APPROVAL_WORKFLOW_TYPE, approval_workflow, NULL, err);
    if (rc == 0) rc = weft_worker_register_activity(w, "notify", approval_notify, NULL, err);
    return rc;
}

int main(int argc, char **argv) {
    static const example_worker worker = {
        .name = "approval-worker",
        .usage = approval_usage,
        .task_queue = "approvals",
        .register_types = approval_register,
    };
    return example_main(&worker, argc, argv);
}
