/* retry.c: Temporal's activity retry rule (DESIGN section 7): exponential backoff capped at
 * the maximum interval, stopped by maximum attempts, by the schedule-to-close deadline and by
 * non-retryable failures. */
#include "retry.h"

#include <float.h>

/* The delay is stored (it places the retry row in the timer index), so every replica must get
 * the same integer from the same policy (G2). It is computed with IEEE-754 binary64
 * multiplications only: each is correctly rounded by the standard, so the result is the same on
 * every conforming machine, unlike pow(), which C lets each libm round its own way. That holds
 * only without excess precision and without value-changing optimisations: */
#if !defined(FLT_EVAL_METHOD) || FLT_EVAL_METHOD != 0
#error "retry.c needs FLT_EVAL_METHOD == 0 (binary64 evaluated as binary64), e.g. SSE2 on x86"
#endif
#ifdef __FAST_MATH__
#error "retry.c must not be built with -ffast-math: the retry delay must be exact IEEE-754"
#endif

void weft_retry_policy_defaults(weft_retry_policy *p) {
    WEFT_ASSERT(p != NULL);
    if (p->initial_interval_ms == 0) p->initial_interval_ms = WEFT_RETRY_INITIAL_INTERVAL_MS_DEFAULT;
    if (p->backoff_coefficient == 0.0) p->backoff_coefficient = WEFT_RETRY_BACKOFF_COEFFICIENT_DEFAULT;
    if (p->maximum_interval_ms == 0) {
        uint64_t cap = UINT64_MAX / WEFT_RETRY_MAXIMUM_INTERVAL_FACTOR;
        p->maximum_interval_ms = p->initial_interval_ms > cap
                                     ? UINT64_MAX
                                     : p->initial_interval_ms * WEFT_RETRY_MAXIMUM_INTERVAL_FACTOR;
    }
    WEFT_ASSERT(p->initial_interval_ms > 0 && p->maximum_interval_ms > 0);
}

/* base^n by repeated squaring: at most 2 x 32 correctly rounded multiplications, a fixed
 * sequence for a given n, so the bits are the same everywhere (see above). base >= 1, so the
 * result only grows, and it overflows to +inf rather than to NaN. */
static double retry_pow(double base, uint32_t n) {
    double result = 1.0;
    while (n > 0) {
        if (n & 1u) result *= base;
        n >>= 1;
        if (n > 0) base *= base;
    }
    return result;
}

uint64_t weft_retry_interval_ms(const weft_retry_policy *p, uint32_t attempt) {
    WEFT_ASSERT(p->initial_interval_ms > 0 && p->maximum_interval_ms > 0);
    WEFT_ASSERT(p->backoff_coefficient >= 1.0);
    if (attempt < 1) attempt = 1;
    double d = (double)p->initial_interval_ms * retry_pow(p->backoff_coefficient, attempt - 1);
    /* Too large (or not a number) to represent: the cap applies, as in Temporal where an
     * overflowed interval becomes the maximum interval. */
    if (!(d < (double)p->maximum_interval_ms)) return p->maximum_interval_ms;
    uint64_t v = (uint64_t)d;
    return v > 0 ? v : 1;
}

static bool retry_listed(const weft_retry_policy *p, weft_str type) {
    if (type.len == 0) return false;
    for (uint32_t i = 0; i < p->non_retryable_error_types_count; i++) {
        if (weft_str_eq(p->non_retryable_error_types[i], type)) return true;
    }
    return false;
}

weft_retry_verdict weft_retry_next(const weft_retry_policy *p, uint32_t attempt,
                                   const weft_failure *f, uint64_t now_ms, uint64_t expire_ms,
                                   uint64_t *delay_ms) {
    WEFT_ASSERT(p != NULL && delay_ms != NULL);
    WEFT_ASSERT(attempt >= 1);
    *delay_ms = 0;
    if (f != NULL && (f->non_retryable || retry_listed(p, f->type))) {
        return WEFT_RETRY_NON_RETRYABLE;
    }
    /* maximum_attempts counts every attempt, the first included. */
    if (p->maximum_attempts > 0 && attempt >= p->maximum_attempts) {
        return WEFT_RETRY_MAXIMUM_ATTEMPTS;
    }
    uint64_t delay = weft_retry_interval_ms(p, attempt);
    if (expire_ms > 0 && (now_ms >= expire_ms || delay > expire_ms - now_ms)) {
        return WEFT_RETRY_TIMEOUT;
    }
    *delay_ms = delay;
    return WEFT_RETRY_AGAIN;
}

const char *weft_retry_verdict_name(weft_retry_verdict v) {
    switch (v) {
    case WEFT_RETRY_AGAIN: return "again";
    case WEFT_RETRY_NON_RETRYABLE: return "non-retryable";
    case WEFT_RETRY_MAXIMUM_ATTEMPTS: return "maximum-attempts";
    case WEFT_RETRY_TIMEOUT: return "timeout";
    }
    return "unknown";
}
