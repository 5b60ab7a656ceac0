/* retry.h: the activity retry policy as a pure function, with Temporal's semantics (DESIGN
 * section 7, "Retry policy"). No state, no clock: callers pass the shard clock. */
#ifndef WEFT_SHARDS_RETRY_H
#define WEFT_SHARDS_RETRY_H

#include <stdint.h>

#include "../proto/msg.h"

/* Defaults for zero fields (section 7): initial 1 s, coefficient 2, maximum interval
 * 100 x initial, unlimited attempts. */
#define WEFT_RETRY_INITIAL_INTERVAL_MS_DEFAULT 1000u
#define WEFT_RETRY_BACKOFF_COEFFICIENT_DEFAULT 2.0
#define WEFT_RETRY_MAXIMUM_INTERVAL_FACTOR 100u

/* Failure types weft uses for activity timeouts. Listing one of the retryable ones in
 * non_retryable_error_types stops retries on that timeout. */
#define WEFT_RETRY_TIMEOUT_START_TO_CLOSE "Timeout:start-to-close"
#define WEFT_RETRY_TIMEOUT_HEARTBEAT "Timeout:heartbeat"

typedef enum weft_retry_verdict {
    WEFT_RETRY_AGAIN = 0,        /* retry after *delay_ms */
    WEFT_RETRY_NON_RETRYABLE,    /* the failure is non-retryable or its type is listed */
    WEFT_RETRY_MAXIMUM_ATTEMPTS, /* the attempt that failed was the last allowed */
    WEFT_RETRY_TIMEOUT,          /* the next attempt would start after schedule-to-close */
} weft_retry_verdict;

/* Fills zero fields with the defaults above. */
void weft_retry_policy_defaults(weft_retry_policy *p);

/* The delay before the attempt after `attempt` (which just failed; from 1):
 * initial x coeff^(attempt-1), capped at maximum_interval_ms (overflow caps too).
 * Computed with IEEE-754 binary64 multiplications only (no libm), so every replica gets the
 * same integer (G2). `p` must have its defaults filled. */
uint64_t weft_retry_interval_ms(const weft_retry_policy *p, uint32_t attempt);

/* Decides whether attempt `attempt` (which failed with `f` at `now_ms`) is retried.
 * `expire_ms` is scheduled time + schedule_to_close, or 0 when there is no such bound.
 * `p` must have its defaults filled. *delay_ms is set when the verdict is WEFT_RETRY_AGAIN. */
weft_retry_verdict weft_retry_next(const weft_retry_policy *p, uint32_t attempt,
                                   const weft_failure *f, uint64_t now_ms, uint64_t expire_ms,
                                   uint64_t *delay_ms);

const char *weft_retry_verdict_name(weft_retry_verdict v);

#endif
