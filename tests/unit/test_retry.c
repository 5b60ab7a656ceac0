/* test_retry.c: the activity retry rule against Temporal's formula (DESIGN section 7):
 * delay = initial x coeff^(attempt-1) capped at maximum_interval; stop at maximum_attempts,
 * when the next start would pass schedule-to-close, or for non-retryable failures. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <math.h>

#include "shards/retry.h"

typedef struct retry_case {
    const char *name;
    weft_retry_policy policy;    /* before defaults */
    uint32_t attempt;            /* the attempt that failed */
    const char *failure_type;
    bool non_retryable;
    uint64_t now_ms;
    uint64_t expire_ms;          /* scheduled + schedule_to_close, 0 = none */
    weft_retry_verdict verdict;
    uint64_t delay_ms;           /* expected when verdict is AGAIN */
} retry_case;

static weft_str nr_types[] = {{.ptr = "Fatal", .len = 5},
                              {.ptr = "Timeout:heartbeat", .len = 17}};

static const retry_case cases[] = {
    /* Defaults: 1 s, x2, capped at 100 s, unlimited. */
    {"default first retry", {0}, 1, "E", false, 0, 0, WEFT_RETRY_AGAIN, 1000},
    {"default second retry", {0}, 2, "E", false, 0, 0, WEFT_RETRY_AGAIN, 2000},
    {"default fifth retry", {0}, 5, "E", false, 0, 0, WEFT_RETRY_AGAIN, 16000},
    {"default 7th: 64 s", {0}, 7, "E", false, 0, 0, WEFT_RETRY_AGAIN, 64000},
    {"default 8th capped at 100 x initial", {0}, 8, "E", false, 0, 0, WEFT_RETRY_AGAIN, 100000},
    {"default huge attempt stays capped", {0}, 5000, "E", false, 0, 0, WEFT_RETRY_AGAIN, 100000},
    {"default unlimited attempts", {0}, 1000000, "E", false, 0, 0, WEFT_RETRY_AGAIN, 100000},
    /* Explicit policies. */
    {"coefficient 3", {.initial_interval_ms = 500, .backoff_coefficient = 3.0}, 3, "E", false, 0, 0,
     WEFT_RETRY_AGAIN, 4500},
    {"coefficient 1 is constant", {.initial_interval_ms = 700, .backoff_coefficient = 1.0}, 9, "E",
     false, 0, 0, WEFT_RETRY_AGAIN, 700},
    {"fractional coefficient", {.initial_interval_ms = 1000, .backoff_coefficient = 1.5}, 3, "E",
     false, 0, 0, WEFT_RETRY_AGAIN, 2250},
    {"explicit maximum interval",
     {.initial_interval_ms = 1000, .backoff_coefficient = 2.0, .maximum_interval_ms = 5000}, 4, "E",
     false, 0, 0, WEFT_RETRY_AGAIN, 5000},
    {"below the maximum interval",
     {.initial_interval_ms = 1000, .backoff_coefficient = 2.0, .maximum_interval_ms = 5000}, 3, "E",
     false, 0, 0, WEFT_RETRY_AGAIN, 4000},
    /* Maximum attempts counts every attempt. */
    {"maximum attempts 3, attempt 2 retries", {.maximum_attempts = 3}, 2, "E", false, 0, 0,
     WEFT_RETRY_AGAIN, 2000},
    {"maximum attempts 3, attempt 3 stops", {.maximum_attempts = 3}, 3, "E", false, 0, 0,
     WEFT_RETRY_MAXIMUM_ATTEMPTS, 0},
    {"maximum attempts 1 never retries", {.maximum_attempts = 1}, 1, "E", false, 0, 0,
     WEFT_RETRY_MAXIMUM_ATTEMPTS, 0},
    /* Schedule-to-close: stop when the next start would pass it. */
    {"fits before schedule-to-close", {0}, 1, "E", false, 10000, 12000, WEFT_RETRY_AGAIN, 1000},
    {"exactly at schedule-to-close still starts", {0}, 2, "E", false, 10000, 12000,
     WEFT_RETRY_AGAIN, 2000},
    {"passes schedule-to-close", {0}, 3, "E", false, 10000, 12000, WEFT_RETRY_TIMEOUT, 0},
    {"already past schedule-to-close", {0}, 1, "E", false, 13000, 12000, WEFT_RETRY_TIMEOUT, 0},
    /* Non-retryable failures. */
    {"non_retryable flag", {0}, 1, "E", true, 0, 0, WEFT_RETRY_NON_RETRYABLE, 0},
    {"listed type", {.non_retryable_error_types = nr_types, .non_retryable_error_types_count = 2}, 1,
     "Fatal", false, 0, 0, WEFT_RETRY_NON_RETRYABLE, 0},
    {"listed timeout type", {.non_retryable_error_types = nr_types, .non_retryable_error_types_count = 2},
     1, "Timeout:heartbeat", false, 0, 0, WEFT_RETRY_NON_RETRYABLE, 0},
    {"unlisted type retries", {.non_retryable_error_types = nr_types, .non_retryable_error_types_count = 2},
     1, "Fatalish", false, 0, 0, WEFT_RETRY_AGAIN, 1000},
    {"non-retryable wins over attempts left", {.maximum_attempts = 10}, 1, "E", true, 0, 0,
     WEFT_RETRY_NON_RETRYABLE, 0},
};

static void test_table(void **state) {
    (void)state;
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const retry_case *c = &cases[i];
        weft_retry_policy p = c->policy;
        weft_retry_policy_defaults(&p);
        weft_failure f = {.type = weft_str_c(c->failure_type), .non_retryable = c->non_retryable};
        uint64_t delay = 12345;
        weft_retry_verdict v = weft_retry_next(&p, c->attempt, &f, c->now_ms, c->expire_ms, &delay);
        if (v != c->verdict || (v == WEFT_RETRY_AGAIN && delay != c->delay_ms)) {
            fail_msg("case '%s': got %s delay %llu, want %s delay %llu", c->name,
                     weft_retry_verdict_name(v), (unsigned long long)delay,
                     weft_retry_verdict_name(c->verdict), (unsigned long long)c->delay_ms);
        }
        if (v != WEFT_RETRY_AGAIN) assert_int_equal(delay, 0);
    }
}

/* Defaults fill only zero fields. */
static void test_defaults(void **state) {
    (void)state;
    weft_retry_policy p = {0};
    weft_retry_policy_defaults(&p);
    assert_int_equal(p.initial_interval_ms, 1000);
    assert_true(p.backoff_coefficient == 2.0);
    assert_int_equal(p.maximum_interval_ms, 100000);
    assert_int_equal(p.maximum_attempts, 0);
    weft_retry_policy q = {.initial_interval_ms = 50, .maximum_interval_ms = 60};
    weft_retry_policy_defaults(&q);
    assert_int_equal(q.initial_interval_ms, 50);
    assert_int_equal(q.maximum_interval_ms, 60);
    weft_retry_policy r = {.initial_interval_ms = 30};
    weft_retry_policy_defaults(&r);
    assert_int_equal(r.maximum_interval_ms, 3000);
}

/* The formula over many attempts: monotone, exact powers until the cap, never above it. */
static void test_formula_sweep(void **state) {
    (void)state;
    weft_retry_policy p = {.initial_interval_ms = 250, .backoff_coefficient = 2.0,
                           .maximum_interval_ms = 60000};
    weft_retry_policy_defaults(&p);
    uint64_t prev = 0;
    for (uint32_t a = 1; a <= 200; a++) {
        uint64_t d = weft_retry_interval_ms(&p, a);
        double want = fmin(250.0 * pow(2.0, a - 1), 60000.0);
        assert_int_equal(d, (uint64_t)want);
        assert_true(d >= prev);
        prev = d;
    }
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_table),
        cmocka_unit_test(test_defaults),
        cmocka_unit_test(test_formula_sweep),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
