/* fuzz_workflow.c: see fuzz_workflow.h. Deterministic, as workflow code must be. */
#include "fuzz_workflow.h"

#include <string.h>

/* Timeouts the workflow asks for: small, so the generator's shard clock reaches them soon. */
#define FW_ACTIVITY_START_TO_CLOSE_MS 30000u
#define FW_RACE_TIMER_MS 5000u
#define FW_SIGNAL_WAIT_MS 20000u
#define FW_SLEEP_MS 1000u

static int fw_side_effect(void *arg, weft_bytes *out) {
    (void)arg;
    static const char value[] = "side-effect-42";
    *out = (weft_bytes){.ptr = (const uint8_t *)value, .len = (uint32_t)strlen(value)};
    return 0;
}

int fuzz_workflow(weft_wf *wf, weft_bytes input, weft_bytes *out, void *arg) {
    (void)arg;
    int version = weft_wf_get_version(wf, "fuzz-change", WEFT_WF_DEFAULT_VERSION, 1);
    weft_bytes side = {0};
    if (weft_wf_side_effect(wf, fw_side_effect, NULL, &side) != 0)
        return weft_wf_fail(wf, "SideEffect", "the side effect failed");
    weft_activity_opts opts = {.start_to_close_timeout_ms = FW_ACTIVITY_START_TO_CLOSE_MS,
                               .retry = {.maximum_attempts = 3, .initial_interval_ms = 1000}};
    weft_bytes charged = {0};
    int rc = weft_wf_activity(wf, "charge", input, &opts, &charged);
    if (rc == WEFT_WF_CANCELED) return weft_wf_cancel_done(wf);
    if (rc != 0) return weft_wf_fail(wf, "ChargeFailed", "the charge activity failed");
    weft_future *race[2] = {weft_wf_activity_start(wf, "ship", charged, &opts),
                            weft_wf_timer_start(wf, FW_RACE_TIMER_MS)};
    size_t first = 0;
    rc = weft_wf_await_any(wf, race, 2, &first);
    if (rc == WEFT_WF_CANCELED) return weft_wf_cancel_done(wf);
    if (first == 1) weft_future_cancel_at(wf, __FILE__, __LINE__, race[0]);
    weft_bytes approval = {0};
    rc = weft_wf_signal_wait(wf, FUZZ_SIGNAL_NAME, FW_SIGNAL_WAIT_MS, &approval);
    if (rc == WEFT_WF_CANCELED) return weft_wf_cancel_done(wf);
    if (weft_wf_sleep(wf, FW_SLEEP_MS) == WEFT_WF_CANCELED) return weft_wf_cancel_done(wf);
    if (version == WEFT_WF_DEFAULT_VERSION) return weft_wf_continue_as_new(wf, input);
    *out = rc == WEFT_WF_TIMED_OUT ? side : approval;
    return WEFT_WF_RESULT_COMPLETE;
}
